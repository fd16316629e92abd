-- 0043_followup_rows_once: a follow-up reads what it wrote once (issue 5:
-- recording a follow-up with its next task).
--
-- crm.followup_add (0030) read the follow-up, its relation and each task
-- through their views to answer, then again, one by one, inside
-- crm.followup_payload, crm.relation_payload and crm.task_payload to encode
-- them for the outbox. pgbench, one client, track_functions, 500
-- follow-ups on the ops/bench group: the three payload functions took
-- 0.40 ms of the statement's 1.63.
--
-- * The encodings now take the row: crm.followup_payload_of,
--   crm.relation_payload_of and crm.task_payload_of give the same bytes as
--   before, from a followup_view, relation_view or task_view row. The
--   functions by id read the row and call them, so each record has one
--   encoding.
-- * crm.followup_add reads each row once, answers with it and encodes it.
-- * An intent's nested message goes through crm.pb_message with a column
--   of a subquery kept apart (OFFSET 0): with the whole encoded intent as
--   its argument the planner would not inline it, and an SQL function that
--   is not inlined is parsed again on every call.

CREATE FUNCTION crm.relation_payload_of(v crm.relation_view) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN crm.pb_text(1, v.id::text) || crm.pb_text(2, v.customer_id::text)
        || crm.pb_text(3, v.store_code) || crm.pb_text(4, v.store_name)
        || crm.pb_text(5, v.brand) || crm.pb_text(6, v.owner) || crm.pb_text(7, v.owner_name)
        || crm.pb_text(8, v.level) || crm.pb_text(9, v.source)
        || crm.pb_int(10, v.first_contact_at_ms) || crm.pb_text(11, v.first_contact_place)
        || crm.pb_text(12, v.first_contact_scenario) || crm.pb_text(13, v.first_feedback)
        || coalesce((SELECT string_agg(crm.pb_message(14, m.body), ''::bytea ORDER BY m.position)
                       FROM (SELECT i.position,
                                    crm.pb_text(1, i.model) || crm.pb_text(2, i.body_type)
                                    || crm.pb_text(3, i.configuration)
                                    || crm.pb_int(4, i.budget_min) || crm.pb_int(5, i.budget_max)
                                    || crm.pb_text(6, i.needs) AS body
                               FROM crm.relation_intents i
                              WHERE i.relation_id = v.id
                             OFFSET 0) m), ''::bytea)
        || crm.pb_text(15, v.status) || crm.pb_int(16, v.version)
        || crm.pb_int(17, v.created_at_ms) || crm.pb_int(18, v.updated_at_ms)
        || crm.pb_int(19, v.protected_until_ms) || crm.pb_int(20, v.last_contact_at_ms)
        || crm.pb_int(21, v.next_followup_at_ms);
END
$$;

CREATE FUNCTION crm.followup_payload_of(f crm.followup_view) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN crm.pb_text(1, f.id::text) || crm.pb_text(2, f.relation_id::text)
        || crm.pb_text(3, f.customer_id::text) || crm.pb_text(4, f.store_code)
        || crm.pb_text(5, f.method) || crm.pb_text(6, f.type) || crm.pb_int(7, f.at_ms)
        || crm.pb_text(8, f.content) || crm.pb_text(9, f.feedback)
        || crm.pb_text(10, f.by_user) || crm.pb_text(11, f.task_id)
        || crm.pb_int(12, f.created_at_ms);
END
$$;

-- The fields sync needs (0013): not the derived ones (customer name,
-- level, overdue, compliance). The view's '' and 0 for a missing owner,
-- closer or time encode as the nothing the tables' NULLs did.
CREATE FUNCTION crm.task_payload_of(t crm.task_view) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN crm.pb_text(1, t.id::text) || crm.pb_text(2, t.relation_id::text)
        || crm.pb_text(3, t.customer_id::text) || crm.pb_text(5, t.store_code)
        || crm.pb_text(6, t.owner) || crm.pb_int(8, t.due_at_ms)
        || crm.pb_text(9, t.method) || crm.pb_text(10, t.purpose)
        || crm.pb_text(11, t.status) || crm.pb_text(12, t.reason)
        || crm.pb_text(13, t.followup_id) || crm.pb_text(14, t.cadence_key)
        || crm.pb_int(15, t.created_at_ms) || crm.pb_int(16, t.closed_at_ms)
        || crm.pb_text(17, t.closed_by) || crm.pb_int(18, t.version)
        || crm.pb_text(20, t.set_by_followup);
END
$$;

CREATE OR REPLACE FUNCTION crm.relation_payload(p_id uuid) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v crm.relation_view;
BEGIN
    SELECT x.* INTO v FROM crm.relation_view x WHERE x.id = p_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN crm.relation_payload_of(v);
END
$$;

CREATE OR REPLACE FUNCTION crm.followup_payload(p_id uuid) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    f crm.followup_view;
BEGIN
    SELECT x.* INTO f FROM crm.followup_view x WHERE x.id = p_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN crm.followup_payload_of(f);
END
$$;

CREATE OR REPLACE FUNCTION crm.task_payload(p_id uuid) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    t crm.task_view;
BEGIN
    SELECT x.* INTO t FROM crm.task_view x WHERE x.id = p_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN crm.task_payload_of(t);
END
$$;

-- 0030's function, patched: the rows it answers with are the rows it
-- encodes.
DO $patch$
DECLARE
    fn constant regprocedure :=
        'crm.followup_add(uuid, text, text, text, text, text, bigint, text, text, bigint,'
        ' text, text, bigint, bigint, bigint, bytea)'::regprocedure;
BEGIN
    EXECUTE crm.function_patched(fn, ARRAY[
        [$x$    v_next bigint;
    i integer;
BEGIN$x$,
         $x$    v_fu crm.followup_view;
    v_rel crm.relation_view;
    v_task crm.task_view;
    v_payloads bytea[];
    i integer;
BEGIN$x$],
        [$x$    SELECT coalesce(crm.ms(x.next_followup_at), 0) INTO v_next
      FROM crm.relations x WHERE x.id = r.id;
    IF p_expect_next_ms IS NOT NULL AND v_next <> p_expect_next_ms THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'relation_id',
            MESSAGE = 'the relation''s tasks changed while the follow-up was recorded; try again';
    END IF;
    RETURN QUERY
    SELECT 'ok', 'followup', f, v, NULL::crm.task_view
      FROM crm.followup_view f JOIN crm.relation_view v ON v.id = f.relation_id
     WHERE f.id = v_id;
    FOR i IN 1 .. coalesce(array_length(v_ids, 1), 0) LOOP
        RETURN QUERY
        SELECT 'ok', 'task', NULL::crm.followup_view, NULL::crm.relation_view, t
          FROM crm.task_view t WHERE t.id = v_ids[i];
    END LOOP;
    -- Last, in one call: the outbox counter is locked from there until commit.
    PERFORM crm.outbox_append_all(
        ARRAY['followup', 'relation']
            || array_fill('task'::text, ARRAY[coalesce(cardinality(v_ids), 0)]),
        ARRAY[v_id, r.id] || v_ids,
        CASE WHEN p_payloads IS NULL
             THEN ARRAY[crm.followup_payload(v_id), crm.relation_payload(r.id)]
             ELSE ARRAY[crm.payload_part(p_payloads, 0), crm.payload_part(p_payloads, 1)] END
            || ARRAY(SELECT crm.task_payload(t.id)
                       FROM unnest(v_ids) WITH ORDINALITY AS t(id, n) ORDER BY t.n));
$x$,
         $x$    SELECT x.* INTO v_fu FROM crm.followup_view x WHERE x.id = v_id;
    SELECT x.* INTO v_rel FROM crm.relation_view x WHERE x.id = r.id;
    IF p_expect_next_ms IS NOT NULL AND v_rel.next_followup_at_ms <> p_expect_next_ms THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'relation_id',
            MESSAGE = 'the relation''s tasks changed while the follow-up was recorded; try again';
    END IF;
    outcome := 'ok';
    kind := 'followup';
    fu := v_fu;
    rel := v_rel;
    task := NULL;
    RETURN NEXT;
    IF p_payloads IS NULL THEN
        v_payloads := ARRAY[crm.followup_payload_of(v_fu), crm.relation_payload_of(v_rel)];
    ELSE
        v_payloads := ARRAY[crm.payload_part(p_payloads, 0), crm.payload_part(p_payloads, 1)];
    END IF;
    -- One look-up a task: a join with unnest(v_ids) gets a generic plan
    -- that took 0.4 ms for two tasks.
    kind := 'task';
    fu := NULL;
    rel := NULL;
    FOR i IN 1 .. coalesce(cardinality(v_ids), 0) LOOP
        SELECT x.* INTO v_task FROM crm.task_view x WHERE x.id = v_ids[i];
        task := v_task;
        RETURN NEXT;
        v_payloads := v_payloads || crm.task_payload_of(v_task);
    END LOOP;
    -- Last, in one call: the outbox counter is locked from there until commit.
    PERFORM crm.outbox_append_all(
        ARRAY['followup', 'relation']
            || array_fill('task'::text, ARRAY[coalesce(cardinality(v_ids), 0)]),
        ARRAY[v_id, r.id] || v_ids, v_payloads);
$x$]]);
END
$patch$;

REVOKE ALL ON FUNCTION crm.relation_payload_of(crm.relation_view),
    crm.followup_payload_of(crm.followup_view), crm.task_payload_of(crm.task_view) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.relation_payload_of(crm.relation_view),'
                   ' crm.followup_payload_of(crm.followup_view),'
                   ' crm.task_payload_of(crm.task_view) TO %I', app);
END
$$;
