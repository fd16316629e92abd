-- 0024_plan_costs: the same rules, cheaper to run (issue 5's benchmark:
-- `crm tasks` and a follow-up with its next task).
--
-- Measured with pg_stat_statements (track = all, track_planning = on) and
-- track_functions = all on the ops/bench group (1M customers, 10M
-- follow-ups), one pgbench client running crmd's statements:
--
-- * The policies that make a follow-up, task, order... visible when its
--   relation is called crm.relation_visible, a PL/pgSQL function, once per
--   row: 9.5 us a call, 400 calls for one consultant's list of 200 tasks
--   (3.8 of its 9.5 ms). The same test as a scalar sub-select runs in the
--   policy's own plan as one index probe per row (a sub-select, not an
--   EXISTS: the planner hashes an EXISTS and reads every visible relation
--   first, 0013's note). The function stays for whoever calls it.
-- * PostgreSQL 15 plans the body of a SQL function that it cannot inline
--   at every call. crm.task_payload (a five-table join) cost 0.9 ms per
--   task a write sends to the outbox, crm.relation_next_refresh 0.45 ms
--   per follow-up, twice (the plan and the write); the other record kinds'
--   payload functions are the same shape. As PL/pgSQL their plans are kept
--   per connection. crm.pb_text is declared STABLE (convert_to is), so it
--   inlines where it was planned per field.
-- * crm.task_outcome returned one row of two columns, which PostgreSQL does
--   not inline: a task list ran a SQL function executor per task (1.1 ms
--   for 200). Declared as returning a set (always one row), the planner
--   inlines it into the query that calls it; callers are unchanged.
-- * crm.followup_add read back the tasks it wrote by a query over the
--   array of their ids, which PostgreSQL planned anew at every call
--   (custom plans for each array: 1.36 ms a follow-up); it now reads them
--   one id at a time by a statement planned once. It reads back what it
--   returns before it appends to the outbox, so that the outbox counter
--   (one row, locked until commit: DESIGN.md "Sync") is held for the
--   appends and the commit only, not for the reads too.
-- * crm.followup_apply updated the relation twice (last contact and
--   version, then crm.relation_next_refresh's next follow-up): two new row
--   versions, each entered in every index of crm.relations. It now writes
--   the relation once, last, with the next follow-up computed in the same
--   statement.

-- ------------------------------------------------------------ policies

DO $$
DECLARE
    p record;
    v_probe text;
    n integer := 0;
BEGIN
    FOR p IN SELECT pol.tablename, pol.policyname, pol.qual FROM pg_policies pol
              WHERE pol.schemaname = 'crm' AND pol.qual LIKE '%crm.relation_visible(relation_id)%'
    LOOP
        v_probe := format('((SELECT true FROM crm.relations r WHERE r.id = %I.relation_id)'
                          ' IS NOT NULL)', p.tablename);
        EXECUTE format('ALTER POLICY %I ON crm.%I USING (%s)', p.policyname, p.tablename,
                       replace(p.qual, 'crm.relation_visible(relation_id)', v_probe));
        n := n + 1;
    END LOOP;
    -- read: followups, tasks, attachments, orders, opportunities,
    -- opportunity stages, test drives, referrals, surveys, complaints,
    -- template sends; update: orders, opportunities, complaints
    IF n <> 14 THEN
        RAISE EXCEPTION '0024 expects 14 policies calling crm.relation_visible, found %', n;
    END IF;
END
$$;

-- ------------------------------------------------------------ plans kept

-- Every crm.*_payload(uuid) is one SELECT of one bytea; the same SELECT
-- in PL/pgSQL.
DO $$
DECLARE
    f record;
    n integer := 0;
BEGIN
    FOR f IN SELECT p.proname, p.prosrc, p.provolatile
               FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
              WHERE p.pronamespace = 'crm'::regnamespace AND l.lanname = 'sql'
                AND p.proname LIKE '%\_payload' AND p.prorettype = 'bytea'::regtype
                AND p.proargtypes = '2950'::oidvector AND p.proargnames = '{p_id}'
                AND NOT p.prosecdef
    LOOP
        EXECUTE format('CREATE OR REPLACE FUNCTION crm.%I(p_id uuid) RETURNS bytea'
                       ' LANGUAGE plpgsql %s AS %L',
                       f.proname,
                       CASE f.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE'
                                          ELSE 'VOLATILE' END,
                       E'BEGIN\n    RETURN (' || rtrim(btrim(f.prosrc, E' \n\t'), ';')
                       || E');\nEND\n');
        n := n + 1;
    END LOOP;
    -- task (0013), vehicle, visit (0017), opportunity, order, test drive
    -- (0018), referral, organization, survey, complaint (0019), attachment
    -- (0020), template (0022)
    IF n <> 12 THEN
        RAISE EXCEPTION '0024 expects 12 SQL payload functions, found %', n;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION crm.relation_next_refresh(p_relation_id uuid) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE crm.relations r
       SET next_followup_at = n.due
      FROM (SELECT min(t.due_at) AS due FROM crm.tasks t
             WHERE t.relation_id = p_relation_id AND t.status = 'open') n
     WHERE r.id = p_relation_id AND r.next_followup_at IS DISTINCT FROM n.due;
END
$$;

CREATE OR REPLACE FUNCTION crm.store_manager(p_store_id uuid) RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT u.id FROM crm.users u
             WHERE u.store_id = p_store_id AND NOT u.disabled
               AND u.role IN ('sales_manager', 'store_manager')
             ORDER BY u.role = 'sales_manager' DESC, u.username
             LIMIT 1);
END
$$;

ALTER FUNCTION crm.pb_text(integer, text) STABLE;

-- ------------------------------------------------------------ task outcome

-- 0013's rule, unchanged; a set of one row so that it inlines. The view
-- that uses it goes and comes back as it was.
DROP VIEW crm.task_compliance;
DROP FUNCTION crm.task_outcome(text, timestamptz, timestamptz, timestamptz);

CREATE FUNCTION crm.task_outcome(p_status text, p_due timestamptz, p_closed timestamptz,
                                 p_at timestamptz)
RETURNS TABLE (outcome text, late_by_ms bigint)
LANGUAGE sql IMMUTABLE ROWS 1
AS $$
    SELECT CASE
             WHEN p_status = 'done' AND p_closed <= p_due THEN 'on_time'
             WHEN p_status = 'done' THEN 'late'
             WHEN p_status = 'skipped' OR p_due < p_at THEN 'missed'
             ELSE 'open' END,
           CASE WHEN p_status = 'done' AND p_closed > p_due
                THEN crm.ms(p_closed) - crm.ms(p_due) ELSE 0 END
$$;

CREATE VIEW crm.task_compliance WITH (security_invoker = true) AS
SELECT t.id AS task_id, t.store_id, t.owner_id, t.relation_id, t.due_at, t.closed_at,
       t.status, t.cadence_key, o.outcome, o.late_by_ms
  FROM crm.tasks t
  CROSS JOIN LATERAL crm.task_outcome(t.status, t.due_at, t.closed_at, now()) o;

-- ------------------------------------------------------------ followup_apply

-- 0013's function; the relation is written once, last (see the top of
-- this file).
CREATE OR REPLACE FUNCTION crm.followup_apply(
    r crm.relations, p_user_id uuid, p_role text, p_store_id uuid, p_id uuid, p_method text,
    p_type text, p_at timestamptz, p_content text, p_feedback text, p_task_id text,
    p_next_due timestamptz, p_next_method text, p_next_purpose text, p_write_at timestamptz)
RETURNS uuid[]
LANGUAGE plpgsql
AS $$
DECLARE
    t crm.tasks;
    v_ids uuid[] := '{}';
    v_next uuid;
BEGIN
    IF p_method IS NULL OR p_method NOT IN ('phone', 'wechat', 'visit', 'sms', 'email', 'other') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'method',
            MESSAGE = 'method must be phone, wechat, visit, sms, email or other';
    END IF;
    IF p_type IS NULL OR p_type NOT IN ('first_contact', 'needs_analysis', 'model_presentation',
                                        'invitation', 'test_drive', 'negotiation', 'delivery',
                                        'after_sales_call', 'care', 'complaint') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'type',
            MESSAGE = 'type must be first_contact, needs_analysis, model_presentation,'
                      ' invitation, test_drive, negotiation, delivery, after_sales_call, care'
                      ' or complaint';
    END IF;
    IF char_length(btrim(coalesce(p_content, ''))) NOT BETWEEN 1 AND 2000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'content',
            MESSAGE = 'content is required (at most 2000 characters)';
    END IF;
    IF p_next_due IS NOT NULL AND p_next_due < p_at THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'next.due_at',
            MESSAGE = 'next.due_at must not be before the follow-up';
    END IF;
    IF coalesce(p_task_id, '') <> '' THEN
        t := crm.task_for_action(p_task_id, 'task_id', p_user_id, p_role, p_store_id);
        IF t.relation_id <> r.id THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'task_id',
                MESSAGE = 'task_id is a task of another relation';
        END IF;
    END IF;
    INSERT INTO crm.followups (id, relation_id, store_id, method, type, at, content, feedback,
                               by_user, task_id, created_at)
    VALUES (p_id, r.id, r.store_id, p_method, p_type, p_at, p_content,
            coalesce(p_feedback, ''), p_user_id, t.id, p_write_at);
    IF t.id IS NOT NULL THEN
        UPDATE crm.tasks x
           SET status = 'done', followup_id = p_id, closed_at = p_at, closed_by = p_user_id,
               version = x.version + 1
         WHERE x.id = t.id;
        v_ids := v_ids || t.id;
    END IF;
    IF p_next_due IS NOT NULL THEN
        v_next := crm.uuid_v7(p_write_at);
        INSERT INTO crm.tasks (id, relation_id, store_id, owner_id, due_at, method, purpose,
                               set_by_followup, created_at, created_by)
        VALUES (v_next, r.id, r.store_id, coalesce(r.owner_id, p_user_id), p_next_due,
                coalesce(nullif(p_next_method, ''), 'phone'),
                coalesce(nullif(btrim(p_next_purpose), ''), 'follow up'), p_id, p_write_at,
                p_user_id);
        v_ids := v_ids || v_next;
    END IF;
    IF p_method = 'visit' AND NOT EXISTS (
           SELECT 1 FROM crm.followups f
            WHERE f.relation_id = r.id AND f.method = 'visit' AND f.id <> p_id) THEN
        v_ids := v_ids || crm.cadence_apply(r.id, 'first_visit', p_at, p_user_id, p_write_at);
    END IF;
    v_ids := v_ids || crm.cadence_apply(r.id, 'followup', p_at, p_user_id, p_write_at);
    UPDATE crm.relations x
       SET last_contact_at = greatest(x.last_contact_at, p_at), version = x.version + 1,
           updated_at = p_write_at,
           next_followup_at = (SELECT min(o.due_at) FROM crm.tasks o
                                WHERE o.relation_id = r.id AND o.status = 'open')
     WHERE x.id = r.id;
    RETURN v_ids;
END
$$;

-- ------------------------------------------------------------ followup_add

-- 0013's function; the read-back of the tasks written and the place of the
-- outbox appends changed (see the top of this file).
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
    -- Last: the first append locks the outbox counter until commit.
    PERFORM crm.outbox_append('followup', v_id, crm.payload_part(p_payloads, 0));
    PERFORM crm.outbox_append('relation', r.id, crm.payload_part(p_payloads, 1));
    PERFORM crm.tasks_to_outbox(v_ids);
END
$$;

-- ------------------------------------------------------------ grants

-- The functions replaced keep their privileges; the two made again get
-- 0013's.
REVOKE ALL ON FUNCTION crm.task_outcome(text, timestamptz, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON crm.task_compliance FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' crm.task_outcome(text, timestamptz, timestamptz, timestamptz) TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.task_compliance TO %I', app);
END
$$;
