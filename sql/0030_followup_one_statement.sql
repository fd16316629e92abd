-- 0030_followup_one_statement: a follow-up is recorded by one statement
-- (issue 5's benchmark: a follow-up with its next task).
--
-- crmd packs the records it writes for the outbox, and for a follow-up it
-- needed to know the relation as the write would leave it: so it first ran
-- crm.followup_plan, the whole write in a subtransaction rolled back, then
-- crm.followup_add with the packed records and the version and next
-- follow-up the plan saw (a change in between refused with DC409). The plan
-- cost about 0.9 ms of PostgreSQL's 2.4 per follow-up (pg_stat_statements,
-- one pgbench client) and 4 of the 11 KiB of WAL.
--
-- The Followup and the Relation are now encoded here, as the tasks and the
-- other records of sql/0013 to 0022 are: crm.followup_payload and
-- crm.relation_payload give the bytes crmd's protobuf-c gives for the same
-- rows (field order, proto3 defaults left out, each intent a nested message
-- even when empty; test_followups compares them with crmd's). crmd calls
-- crm.followup_add without the plan, with no payloads, version or expected
-- next follow-up: the function encodes what it wrote, under the relation's
-- row lock, so there is nothing to be stale. Given payloads (a template
-- send still plans, h_template.c), it checks and uses them as before.
--
-- ops/bench, followup mix, 16 connections (20 s, load 0.8): 623 requests per
-- second, p99 36.7 ms, against 478 to 530 and 40 to 44 ms in the runs
-- before it the same night; pgbench on the same statement 581 per second
-- (471 to 475 for plan and write).

-- proto Relation, from crm.relation_view and the relation's intents (each
-- a nested message, written even when empty: sql/0018's crm.pb_message).
CREATE FUNCTION crm.relation_payload(p_id uuid) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v crm.relation_view;
BEGIN
    SELECT x.* INTO v FROM crm.relation_view x WHERE x.id = p_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN crm.pb_text(1, v.id::text) || crm.pb_text(2, v.customer_id::text)
        || crm.pb_text(3, v.store_code) || crm.pb_text(4, v.store_name)
        || crm.pb_text(5, v.brand) || crm.pb_text(6, v.owner) || crm.pb_text(7, v.owner_name)
        || crm.pb_text(8, v.level) || crm.pb_text(9, v.source)
        || crm.pb_int(10, v.first_contact_at_ms) || crm.pb_text(11, v.first_contact_place)
        || crm.pb_text(12, v.first_contact_scenario) || crm.pb_text(13, v.first_feedback)
        || coalesce((SELECT string_agg(crm.pb_message(14,
                                crm.pb_text(1, i.model) || crm.pb_text(2, i.body_type)
                                || crm.pb_text(3, i.configuration) || crm.pb_int(4, i.budget_min)
                                || crm.pb_int(5, i.budget_max) || crm.pb_text(6, i.needs)),
                                ''::bytea ORDER BY i.position)
                       FROM crm.relation_intents i WHERE i.relation_id = p_id), ''::bytea)
        || crm.pb_text(15, v.status) || crm.pb_int(16, v.version)
        || crm.pb_int(17, v.created_at_ms) || crm.pb_int(18, v.updated_at_ms)
        || crm.pb_int(19, v.protected_until_ms) || crm.pb_int(20, v.last_contact_at_ms)
        || crm.pb_int(21, v.next_followup_at_ms);
END
$$;

-- proto Followup, from crm.followup_view (attachments, field 14, are never
-- in a follow-up's record).
CREATE FUNCTION crm.followup_payload(p_id uuid) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT crm.pb_text(1, f.id::text) || crm.pb_text(2, f.relation_id::text)
                || crm.pb_text(3, f.customer_id::text) || crm.pb_text(4, f.store_code)
                || crm.pb_text(5, f.method) || crm.pb_text(6, f.type) || crm.pb_int(7, f.at_ms)
                || crm.pb_text(8, f.content) || crm.pb_text(9, f.feedback)
                || crm.pb_text(10, f.by_user) || crm.pb_text(11, f.task_id)
                || crm.pb_int(12, f.created_at_ms)
              FROM crm.followup_view f WHERE f.id = p_id);
END
$$;

-- 0028's function: payloads, version and expected next follow-up optional
-- (see the top of this file).
CREATE OR REPLACE FUNCTION crm.followup_add(
    p_session_id uuid, p_id text, p_relation_id text, p_task_id text, p_method text,
    p_type text, p_at_ms bigint, p_content text, p_feedback text, p_next_due_ms bigint,
    p_next_method text, p_next_purpose text, p_write_at_ms bigint, p_version bigint,
    p_expect_next_ms bigint, p_payloads bytea)
RETURNS TABLE (outcome text, kind text, fu crm.followup_view, rel crm.relation_view,
               task crm.task_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    r crm.relations;
    v_id uuid;
    v_ids uuid[];
    v_next bigint;
    i integer;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id', true);
    IF p_at_ms IS NULL OR p_write_at_ms IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'follow-up time and write time are required';
    END IF;
    r := crm.followup_relation(p_relation_id, p_task_id, true);
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, true);
    IF EXISTS (SELECT 1 FROM crm.followups f WHERE f.id = v_id) THEN
        RETURN QUERY
        SELECT 'existed', 'followup', f, v, NULL::crm.task_view
          FROM crm.followup_view f JOIN crm.relation_view v ON v.id = f.relation_id
         WHERE f.id = v_id;
        RETURN;
    END IF;
    IF p_version IS NOT NULL AND r.version <> p_version THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'relation_id',
            MESSAGE = 'the relation changed while the follow-up was recorded; try again';
    END IF;
    v_ids := crm.followup_apply(r, me.user_id, me.role, me.store_id, v_id, p_method, p_type,
                                crm.from_ms(p_at_ms), p_content, p_feedback, p_task_id,
                                crm.from_ms(p_next_due_ms), p_next_method, p_next_purpose,
                                crm.from_ms(p_write_at_ms));
    SELECT coalesce(crm.ms(x.next_followup_at), 0) INTO v_next
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
END
$$;

REVOKE ALL ON FUNCTION crm.relation_payload(uuid), crm.followup_payload(uuid) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.relation_payload(uuid),'
                   ' crm.followup_payload(uuid) TO %I', app);
END
$$;
