-- 0028_outbox_batch: a write holds the outbox counter for as short a time
-- as it can (issue 5's benchmark: a follow-up with its next task).
--
-- The outbox sequence is a one-row counter updated in the writing
-- transaction (DESIGN.md "Sync": gapless, in commit order), so its row lock
-- is held from a write's first outbox append until the write commits, and
-- writes pass that point one at a time. ops/bench with CRM_BENCH_PROFILE=1
-- shows what that costs: at 16 connections a follow-up spent 30.5 of its 34
-- ms waiting for the counter (pg_stat_statements: the counter's UPDATE,
-- three a follow-up). Every append did its work with the lock held: it
-- looked up the record's customer and store, then crm.audit_append looked
-- up the writer (user, session) and inserted the audit entry; a follow-up
-- made three to four appends, and the tasks' payloads were encoded between
-- them.
--
-- * crm.outbox_append_all appends several records at once: the records'
--   subjects and the writer are looked up first, then the counter is
--   advanced once by the number of records, then the outbox rows and their
--   'change' audit entries are inserted by one statement each. Sequence
--   numbers and clocks are those the appends one by one would have given
--   (consecutive, the clock strictly increasing), and each record's audit
--   entry is the same (0023's subjects, audit_append's writer).
-- * crm.outbox_append is that function for one record; crm.tasks_to_outbox
--   encodes all the tasks' payloads first and appends them in one call;
--   crm.followup_add appends the follow-up, the relation and the tasks in
--   one call.
-- * crm.audit_actor is crm.audit_append's rule for who writes (0011), as a
--   function of its own that both use.
--
-- Measured the same way afterwards: the wait at the counter 25.5 ms of a
-- follow-up's 29.3 (pgbench, 16 clients). What remains under the lock is
-- mostly the commit itself, whose WAL flush carries the whole
-- transaction's WAL (31 KiB a follow-up; ops/lib.sh now compresses WAL).

-- ------------------------------------------------------------ who writes

-- The writer of an audit entry, as crm.audit_append (0011) decides it: the
-- given actor, else the session's user; the given store, else the
-- session's, else the user's; the session's address unless one is given.
CREATE FUNCTION crm.audit_actor(p_actor_id uuid, p_actor_name text, p_store_id uuid,
                                p_source_addr text,
                                OUT o_actor uuid, OUT o_name text, OUT o_role text,
                                OUT o_store uuid, OUT o_session uuid, OUT o_addr text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_setting text;
BEGIN
    o_actor := p_actor_id;
    o_name := p_actor_name;
    o_store := p_store_id;
    o_addr := p_source_addr;
    v_setting := nullif(current_setting('crm.session_id', true), '');
    IF v_setting IS NOT NULL THEN
        o_session := v_setting::uuid;
    END IF;
    IF o_actor IS NULL AND o_name IS NULL THEN
        v_setting := nullif(current_setting('crm.user_id', true), '');
        IF v_setting IS NOT NULL THEN
            o_actor := v_setting::uuid;
        END IF;
        IF o_store IS NULL THEN
            v_setting := nullif(current_setting('crm.store_id', true), '');
            IF v_setting IS NOT NULL THEN
                o_store := v_setting::uuid;
            END IF;
        END IF;
    END IF;
    IF o_actor IS NOT NULL THEN
        SELECT coalesce(o_name, u.username), u.role, coalesce(o_store, u.store_id)
          INTO o_name, o_role, o_store
          FROM crm.users u WHERE u.id = o_actor;
    END IF;
    IF o_addr IS NULL AND o_session IS NOT NULL THEN
        SELECT s.source_addr INTO o_addr FROM crm.sessions s WHERE s.id = o_session;
    END IF;
END
$$;

-- 0011's function; the writer by crm.audit_actor.
CREATE OR REPLACE FUNCTION crm.audit_append(
    p_action text,
    p_outcome text DEFAULT 'ok',
    p_entity text DEFAULT NULL,
    p_entity_id text DEFAULT NULL,
    p_customer_id uuid DEFAULT NULL,
    p_before_version bigint DEFAULT NULL,
    p_after_version bigint DEFAULT NULL,
    p_reason text DEFAULT NULL,
    p_details jsonb DEFAULT NULL,
    p_subject text DEFAULT NULL,
    p_source_addr text DEFAULT NULL,
    p_actor_id uuid DEFAULT NULL,
    p_actor_name text DEFAULT NULL,
    p_store_id uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    a record;
    v_id bigint;
BEGIN
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'action',
            MESSAGE = 'audit action must be lower-case words joined by dots, e.g. customer.update';
    END IF;
    IF p_outcome IS NULL OR p_outcome NOT IN ('ok', 'failed', 'denied') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'outcome',
            MESSAGE = 'audit outcome must be ok, failed or denied';
    END IF;
    IF p_details IS NOT NULL AND jsonb_typeof(p_details) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'details',
            MESSAGE = 'audit details must be a JSON object';
    END IF;
    a := crm.audit_actor(p_actor_id, p_actor_name, p_store_id, p_source_addr);
    INSERT INTO crm.audit_log (action, outcome, actor_id, actor_username, actor_role,
                               store_id, session_id, source_addr, subject, entity,
                               entity_id, customer_id, before_version, after_version,
                               reason, details)
    VALUES (p_action, p_outcome, a.o_actor, left(a.o_name, 200), a.o_role, a.o_store,
            a.o_session, left(a.o_addr, 200), left(p_subject, 200), left(p_entity, 64),
            left(p_entity_id, 200), p_customer_id, p_before_version, p_after_version,
            left(p_reason, 500), p_details)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- ------------------------------------------------------------ subjects

-- The customer, store and version a record's 'change' entry names (0023's
-- lookups, one index probe each).
CREATE FUNCTION crm.outbox_subject(p_entity text, p_entity_id uuid,
                                   OUT o_customer uuid, OUT o_store uuid,
                                   OUT o_version bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_relation uuid;
BEGIN
    CASE p_entity
    WHEN 'customer' THEN
        SELECT c.version, c.id INTO o_version, o_customer
          FROM crm.customers c WHERE c.id = p_entity_id;
    WHEN 'relation' THEN
        SELECT r.version, r.customer_id, r.store_id INTO o_version, o_customer, o_store
          FROM crm.relations r WHERE r.id = p_entity_id;
    WHEN 'followup' THEN
        SELECT x.relation_id, x.store_id INTO v_relation, o_store
          FROM crm.followups x WHERE x.id = p_entity_id;
    WHEN 'task' THEN
        SELECT x.relation_id, x.store_id, x.version INTO v_relation, o_store, o_version
          FROM crm.tasks x WHERE x.id = p_entity_id;
    WHEN 'attachment' THEN
        SELECT x.relation_id, x.store_id INTO v_relation, o_store
          FROM crm.attachments x WHERE x.id = p_entity_id;
    WHEN 'opportunity' THEN
        SELECT x.relation_id, x.store_id, x.version INTO v_relation, o_store, o_version
          FROM crm.opportunities x WHERE x.id = p_entity_id;
    WHEN 'order' THEN
        SELECT x.relation_id, x.store_id, x.version INTO v_relation, o_store, o_version
          FROM crm.orders x WHERE x.id = p_entity_id;
    WHEN 'test_drive' THEN
        SELECT x.relation_id, x.store_id INTO v_relation, o_store
          FROM crm.test_drives x WHERE x.id = p_entity_id;
    WHEN 'vehicle' THEN
        SELECT x.customer_id, x.store_id, x.version INTO o_customer, o_store, o_version
          FROM crm.vehicles x WHERE x.id = p_entity_id;
    WHEN 'service_visit' THEN
        SELECT x.customer_id, x.store_id INTO o_customer, o_store
          FROM crm.service_visits x WHERE x.id = p_entity_id;
    WHEN 'referral' THEN
        SELECT x.referred_id, x.store_id, x.version INTO o_customer, o_store, o_version
          FROM crm.referrals x WHERE x.id = p_entity_id;
    WHEN 'survey' THEN
        SELECT x.customer_id, x.store_id INTO o_customer, o_store
          FROM crm.surveys x WHERE x.id = p_entity_id;
    WHEN 'complaint' THEN
        SELECT x.customer_id, x.store_id, x.version INTO o_customer, o_store, o_version
          FROM crm.complaints x WHERE x.id = p_entity_id;
    WHEN 'organization' THEN
        SELECT x.store_id, x.version INTO o_store, o_version
          FROM crm.organizations x WHERE x.id = p_entity_id;
    WHEN 'template' THEN
        SELECT x.store_id, x.version INTO o_store, o_version
          FROM crm.message_templates x WHERE x.id = p_entity_id;
    ELSE
        NULL;  -- a kind not known here: audited without a subject
    END CASE;
    IF o_customer IS NULL AND v_relation IS NOT NULL THEN
        SELECT r.customer_id INTO o_customer FROM crm.relations r WHERE r.id = v_relation;
    END IF;
END
$$;

-- ------------------------------------------------------------ appends

-- Appends records p_entities[i], p_ids[i], p_payloads[i] to the outbox in
-- that order, each with its 'change' audit entry; returns the last
-- sequence number (0 for none).
CREATE FUNCTION crm.outbox_append_all(p_entities text[], p_ids uuid[], p_payloads bytea[],
                                      p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    n integer := coalesce(cardinality(p_ids), 0);
    v_customers uuid[] := '{}';
    v_stores uuid[] := '{}';
    v_versions bigint[] := '{}';
    s record;
    a record;
    v_seq bigint;
    v_hlc bigint;
BEGIN
    IF n = 0 AND coalesce(cardinality(p_entities), 0) = 0
       AND coalesce(cardinality(p_payloads), 0) = 0 THEN
        RETURN 0;
    END IF;
    IF n = 0 OR cardinality(p_entities) IS DISTINCT FROM n
       OR cardinality(p_payloads) IS DISTINCT FROM n
       OR array_position(p_entities, NULL) IS NOT NULL
       OR array_position(p_ids, NULL) IS NOT NULL
       OR array_position(p_payloads, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400',
            MESSAGE = 'outbox change needs an entity, an id and a payload';
    END IF;
    -- Before the lock: what each entry names, and who writes.
    FOR i IN 1 .. n LOOP
        s := crm.outbox_subject(p_entities[i], p_ids[i]);
        v_customers[i] := s.o_customer;
        v_stores[i] := s.o_store;
        v_versions[i] := s.o_version;
    END LOOP;
    a := crm.audit_actor(NULL, NULL, NULL, NULL);
    -- Locked from here until commit. The clock as n appends one by one:
    -- the first past both the last one and now, the others one apart.
    UPDATE crm.outbox_counter
       SET seq = seq + n,
           hlc = greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16,
                          hlc + 1) + n - 1
     WHERE singleton
    RETURNING seq, hlc INTO v_seq, v_hlc;
    INSERT INTO crm.outbox (seq, entity, entity_id, payload, schema_version, hlc)
    SELECT v_seq - n + x.k, x.e, x.id, x.p, p_schema_version, v_hlc - n + x.k
      FROM unnest(p_entities, p_ids, p_payloads) WITH ORDINALITY AS x(e, id, p, k);
    -- crm.audit_append's entry for each, writer looked up once.
    INSERT INTO crm.audit_log (action, outcome, actor_id, actor_username, actor_role,
                               store_id, session_id, source_addr, entity, entity_id,
                               customer_id, before_version, after_version, details)
    SELECT 'change', 'ok', a.o_actor, left(a.o_name, 200), a.o_role,
           coalesce(x.st, a.o_store), a.o_session, left(a.o_addr, 200), left(x.e, 64),
           x.id::text, x.cu, x.v - 1, x.v, jsonb_build_object('outbox_seq', v_seq - n + x.k)
      FROM unnest(p_entities, p_ids, v_customers, v_stores, v_versions)
           WITH ORDINALITY AS x(e, id, cu, st, v, k)
     ORDER BY x.k;
    RETURN v_seq;
END
$$;

CREATE OR REPLACE FUNCTION crm.outbox_append(p_entity text, p_entity_id uuid, p_payload bytea,
                                             p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    RETURN crm.outbox_append_all(ARRAY[p_entity], ARRAY[p_entity_id], ARRAY[p_payload],
                                 p_schema_version);
END
$$;

CREATE OR REPLACE FUNCTION crm.tasks_to_outbox(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM crm.outbox_append_all(
        array_fill('task'::text, ARRAY[cardinality(p_ids)]), p_ids,
        ARRAY(SELECT crm.task_payload(t.id)
                FROM unnest(p_ids) WITH ORDINALITY AS t(id, n) ORDER BY t.n));
END
$$;

-- 0024's function; its appends in one call.
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
    IF p_at_ms IS NULL OR p_write_at_ms IS NULL OR p_payloads IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
            MESSAGE = 'follow-up time, write time and outbox payload are required';
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
    IF r.version <> p_version THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'relation_id',
            MESSAGE = 'the relation changed while the follow-up was recorded; try again';
    END IF;
    v_ids := crm.followup_apply(r, me.user_id, me.role, me.store_id, v_id, p_method, p_type,
                                crm.from_ms(p_at_ms), p_content, p_feedback, p_task_id,
                                crm.from_ms(p_next_due_ms), p_next_method, p_next_purpose,
                                crm.from_ms(p_write_at_ms));
    SELECT coalesce(crm.ms(x.next_followup_at), 0) INTO v_next
      FROM crm.relations x WHERE x.id = r.id;
    IF v_next <> coalesce(p_expect_next_ms, 0) THEN
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
        ARRAY[crm.payload_part(p_payloads, 0), crm.payload_part(p_payloads, 1)]
            || ARRAY(SELECT crm.task_payload(t.id)
                       FROM unnest(v_ids) WITH ORDINALITY AS t(id, n) ORDER BY t.n));
END
$$;

-- ------------------------------------------------------------ grants

REVOKE ALL ON FUNCTION crm.audit_actor(uuid, text, uuid, text),
    crm.outbox_subject(text, uuid),
    crm.outbox_append_all(text[], uuid[], bytea[], integer) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' crm.outbox_append_all(text[], uuid[], bytea[], integer) TO %I', app);
END
$$;
