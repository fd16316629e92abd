-- 0021_reminders: pushed reminders of tasks falling due, and the first
-- visit of a walk-in (issue 5; DESIGN.md "Tasks and cadence").
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * Reminders. crmd (server/reminders.c) keeps one database connection of
--   its own and, once a second while some connection has subscribed, asks
--   crm.reminders_due for the open tasks that fell due since its last look
--   (due_at in (cursor, now], on the partial indexes tasks_owner_open and
--   tasks_store_open of 0013), for the live sessions of the subscribed
--   connections; it pushes each task to the connections of those sessions.
--   Polling the index rather than LISTEN/NOTIFY: a NOTIFY from a trigger on
--   crm.tasks would make every task write take PostgreSQL's global notify
--   lock at commit (the writes that matter most for issue 7's benchmark),
--   and a notification says only that something changed, so a timer over
--   the same index would still be needed for the due times. One indexed
--   probe per subscribed session a second costs less, and a restarted
--   PostgreSQL loses nothing: the cursor stays where it was until the query
--   succeeds again.
--   Whose tasks: a session's user's own, and for sales and store managers
--   also their store pool's (owner NULL): the manager decides who takes a
--   pool customer (handover, reassign), and ringing every consultant's desk
--   for the same pool task would make it nobody's. crm.reminder_catchup
--   gives, by the same rule, what fell due before a subscription began
--   (while no desk was connected), so nothing is lost for later.
-- * First visit. A walk-in relation whose first contact time is recorded
--   (at registration, crm.customer_create of 0002, or later by
--   crm.relation_update) has had its first visit then: the policy's
--   first_visit rules of its level (N: thank-you message within 2 hours,
--   first call within 24) create their tasks in the same transaction, to
--   the outbox like every task. A trigger on crm.relations does it, so
--   0002's and 0012's functions stay as they are. Without a first contact
--   time the registration says nothing of when the customer came, and the
--   first follow-up with method visit counts, as before (0013).
--   A relation has one first visit: crm.cadence_apply (replaced below, one
--   condition added) creates first_visit tasks only while the relation has
--   none, open or closed, so a visit follow-up after a walk-in
--   registration adds no second thank-you and call even when the first
--   ones are done.

-- ------------------------------------------------------------ first visit

-- 0013's crm.cadence_apply, with one change: the first_visit event creates
-- nothing on a relation that already has a first_visit task (any status).
-- Everything else is as in 0013.
CREATE OR REPLACE FUNCTION crm.cadence_apply(p_relation_id uuid, p_event text, p_at timestamptz,
                                             p_by uuid, p_write_at timestamptz)
RETURNS uuid[]
LANGUAGE plpgsql
AS $$
DECLARE
    rel crm.relations;
    rule crm.cadence_rules;
    v_due timestamptz;
    v_key text;
    v_id uuid;
    v_ids uuid[] := '{}';
BEGIN
    SELECT x.* INTO rel FROM crm.relations x WHERE x.id = p_relation_id;
    -- A relation's first visit happens once (tasks_relation index).
    IF p_event = 'first_visit' AND EXISTS (
           SELECT 1 FROM crm.tasks t
            WHERE t.relation_id = rel.id AND t.cadence_key LIKE '_/first\_visit/%') THEN
        RETURN v_ids;
    END IF;
    FOR rule IN SELECT * FROM crm.cadence_rules c
                 WHERE c.level = rel.level AND c.event = p_event ORDER BY c.step LOOP
        v_due := p_at + rule.due_after_minutes * interval '1 minute';
        v_key := rule.level || '/' || rule.event || '/' || rule.step;
        PERFORM 1 FROM crm.tasks t
         WHERE t.relation_id = rel.id AND t.status = 'open'
           AND (t.cadence_key = v_key OR (rule.any_task_covers AND t.due_at <= v_due));
        CONTINUE WHEN FOUND;
        v_id := crm.uuid_v7(p_write_at);
        INSERT INTO crm.tasks (id, relation_id, store_id, owner_id, due_at, method, purpose,
                               cadence_key, created_at, created_by)
        VALUES (v_id, rel.id, rel.store_id,
                CASE rule.assignee WHEN 'manager'
                     THEN coalesce(crm.store_manager(rel.store_id), rel.owner_id)
                     ELSE rel.owner_id END,
                v_due, rule.method, rule.purpose, v_key, p_write_at, p_by);
        v_ids := v_ids || v_id;
    END LOOP;
    RETURN v_ids;
END
$$;

-- A walk-in relation got its first contact time: registered with one, or
-- a relation update set it (or made a relation with one a walk-in). The
-- first visit's tasks, at the first contact time; written by the user of
-- the session (crm.session_begin's crm.user_id) at the relation's write
-- time. Only a write by the relation's own store counts, as for level
-- changes (0013): a relation applied by sync brings its tasks with it.
CREATE FUNCTION crm.relation_first_visit() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids uuid[];
BEGIN
    IF NEW.store_id IS DISTINCT FROM nullif(current_setting('crm.store_id', true), '')::uuid
       OR coalesce(current_setting('crm.role', true), '') = 'store_node' THEN
        RETURN NULL;
    END IF;
    v_ids := crm.cadence_apply(NEW.id, 'first_visit', NEW.first_contact_at,
                               nullif(current_setting('crm.user_id', true), '')::uuid,
                               NEW.updated_at);
    IF cardinality(v_ids) > 0 THEN
        PERFORM crm.relation_next_refresh(NEW.id);
        PERFORM crm.tasks_to_outbox(v_ids);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER relations_first_visit_insert AFTER INSERT ON crm.relations
    FOR EACH ROW WHEN (NEW.source = 'walk_in' AND NEW.first_contact_at IS NOT NULL)
    EXECUTE FUNCTION crm.relation_first_visit();

CREATE TRIGGER relations_first_visit_update AFTER UPDATE OF source, first_contact_at
    ON crm.relations
    FOR EACH ROW WHEN (NEW.source = 'walk_in' AND NEW.first_contact_at IS NOT NULL
                       AND (OLD.source <> 'walk_in' OR OLD.first_contact_at IS NULL))
    EXECUTE FUNCTION crm.relation_first_visit();

-- ------------------------------------------------------------ reminders

-- Microseconds since the epoch, exactly: the cursor crmd keeps between
-- two looks (a due time may carry a fraction of a millisecond).
CREATE FUNCTION crm.us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

CREATE FUNCTION crm.from_us(p_us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT 'epoch'::timestamptz + p_us * interval '1 microsecond' $$;

-- STMT_REMINDERS_DUE: the open tasks due after the cursor (p_after_us,
-- p_after_id) and no later than p_upto_ms, of the live sessions in
-- p_sessions (ids joined by U+001F): each session's user's own tasks, and
-- the store pool's for sales and store managers. One row per task, in
-- (due_at, id) order, at most p_limit: the sessions it goes to (U+001F),
-- its due time in microseconds (the next cursor), then the TASK columns.
-- Definer: crmd's connection for reminders begins no session (it serves
-- many), so it reads past row-level security; the sessions it names are
-- checked here, and a revoked or expired session, or a disabled user, gets
-- nothing. The session's idle timeout is not applied: a connection that
-- watches is in use.
CREATE FUNCTION crm.reminders_due(p_sessions text, p_after_us bigint, p_after_id uuid,
                                  p_upto_ms bigint, p_limit integer)
RETURNS TABLE (sessions text, due_at_us bigint, task crm.task_view)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_after timestamptz := crm.from_us(p_after_us);
    v_upto timestamptz := crm.from_ms(p_upto_ms);
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 OR p_after_id IS NULL
       OR p_upto_ms IS NULL OR p_after_us IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', MESSAGE = 'reminders_due: bad arguments';
    END IF;
    RETURN QUERY
    WITH live AS (
        SELECT DISTINCT s.id AS sid, u.id AS uid, u.store_id AS store, u.role AS role
          FROM unnest(string_to_array(nullif(p_sessions, ''), E'\x1f')) AS x(txt)
          JOIN crm.sessions s ON s.id = x.txt::uuid
          JOIN crm.users u ON u.id = s.user_id
         WHERE s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled
    ), due AS (
        SELECT t.id, t.due_at, l.sid
          FROM live l JOIN crm.tasks t ON t.owner_id = l.uid
         WHERE t.status = 'open' AND t.due_at >= v_after AND t.due_at <= v_upto
           AND (t.due_at > v_after OR t.id > p_after_id)
        UNION ALL
        SELECT t.id, t.due_at, l.sid
          FROM live l JOIN crm.tasks t ON t.store_id = l.store
         WHERE l.role IN ('sales_manager', 'store_manager') AND t.owner_id IS NULL
           AND t.status = 'open' AND t.due_at >= v_after AND t.due_at <= v_upto
           AND (t.due_at > v_after OR t.id > p_after_id)
    ), page AS (
        SELECT d.id, d.due_at, string_agg(d.sid::text, E'\x1f' ORDER BY d.sid) AS sids
          FROM due d
         GROUP BY d.id, d.due_at
         ORDER BY d.due_at, d.id
         LIMIT p_limit
    )
    SELECT p.sids, crm.us(p.due_at), v
      FROM page p JOIN crm.task_view v ON v.id = p.id
     ORDER BY p.due_at, p.id;
END
$$;

-- STMT_REMINDER_CATCHUP: the caller's open tasks already due before
-- p_at_ms by the rule of crm.reminders_due (own; managers also the store
-- pool's), oldest first, at most p_limit: what fell due while no desk of
-- theirs was subscribed. TASK columns.
CREATE FUNCTION crm.reminder_catchup(p_session_id uuid, p_at_ms bigint, p_limit integer)
RETURNS SETOF crm.task_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_at timestamptz;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF p_at_ms IS NULL OR p_at_ms <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'since',
            MESSAGE = 'the subscription time is required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    RETURN QUERY
    SELECT v.* FROM crm.task_view v
     WHERE v.id IN (
           (SELECT t.id FROM crm.tasks t
             WHERE t.owner_id = me.user_id AND t.status = 'open' AND t.due_at < v_at
             ORDER BY t.due_at, t.id LIMIT p_limit)
           UNION ALL
           (SELECT t.id FROM crm.tasks t
             WHERE me.role IN ('sales_manager', 'store_manager') AND t.store_id = me.store_id
               AND t.owner_id IS NULL AND t.status = 'open' AND t.due_at < v_at
             ORDER BY t.due_at, t.id LIMIT p_limit))
     ORDER BY v.due_at, v.id
     LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ grants

REVOKE ALL ON FUNCTION crm.relation_first_visit(), crm.us(timestamptz), crm.from_us(bigint),
    crm.reminders_due(text, bigint, uuid, bigint, integer),
    crm.reminder_catchup(uuid, bigint, integer) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.us(timestamptz), crm.from_us(bigint),'
                   ' crm.reminders_due(text, bigint, uuid, bigint, integer),'
                   ' crm.reminder_catchup(uuid, bigint, integer) TO %I', app);
END
$$;
