-- 0051_followup_entries: a follow-up in a group builds its outbox entries
-- from the records it holds instead of looking them up again (issue 5: the
-- benchmark's p99 target for recording a follow-up).
--
-- crm.followup_record (0047) ended with crm.outbox_entries, which finds
-- for each record the customer, store and version it concerns
-- (crm.outbox_subject) and who writes (crm.audit_actor): for a follow-up
-- with its next task five look-ups of rows the function had just written
-- or read (the follow-up, the relation twice, the task and the relation
-- again), the user's row again, and the session's source address, in five
-- PL/pgSQL calls. In a single-client pgbench run of crm.followup_add with
-- track_functions on, those calls took 72 us of the follow-up's 1,267.
--
-- Now the follow-up takes them from what it has: the relation row it
-- locked (its customer and store: a follow-up and its tasks belong to that
-- relation, crm.followup_apply makes sure), the relation and the tasks as
-- read back after the writes (their versions and stores), and the session
-- crm.session_begin opened (the user, name, role and store). Only the
-- session's source address is read, by crm.session_source_addr: crmd's
-- role may not read crm.sessions. The entries are the ones
-- crm.outbox_entries would have made, field for field; test_followups
-- compares a group's audit entries with the relation's and the session's
-- rows.
--
-- crm.outbox_entries stays for every other write, and crm.followup_add
-- (a follow-up alone) keeps calling it.
--
-- `ops/sqlcost followup8 40` (a group of 8 follow-ups with their next
-- tasks), the function before and after in turn, twice: 53,722,336 and
-- 54,012,111 instructions a group before, 51,292,340 and 51,630,599 after
-- (-4.5 %); 48 statements and 32 PL/pgSQL calls fewer a group.

-- The source address of the session crm.session_begin opened in this
-- transaction, as crm.audit_actor reads it; NULL without one.
CREATE FUNCTION crm.session_source_addr()
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_setting text := nullif(current_setting('crm.session_id', true), '');
    v_addr text;
BEGIN
    IF v_setting IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT s.source_addr INTO v_addr FROM crm.sessions s WHERE s.id = v_setting::uuid;
    RETURN v_addr;
END
$$;

DO $patch$
DECLARE
    fn constant regprocedure :=
        'crm.followup_record(uuid, text, text, text, text, text, bigint, text, text, bigint,'
        ' text, text, bigint, bigint, bigint, bytea)'::regprocedure;
BEGIN
    EXECUTE crm.function_patched(fn, ARRAY[
        [$x$    v_payloads bytea[];$x$,
         $x$    v_payloads bytea[];
    v_entries crm.outbox_entry[];
    v_addr text;$x$],
        [$x$    -- One look-up a task: a join with unnest(v_ids) gets a generic plan$x$,
         $x$    -- The outbox entries, as crm.outbox_entries would make them
    -- (crm.outbox_subject, crm.audit_actor), from the records in hand.
    v_addr := crm.session_source_addr();
    v_entries := ARRAY[
        ROW('followup', v_id, v_payloads[1], r.customer_id, r.store_id, NULL::bigint,
            me.user_id, me.username, me.role, me.store_id, p_session_id,
            v_addr)::crm.outbox_entry,
        ROW('relation', r.id, v_payloads[2], r.customer_id, v_rel.store_id, v_rel.version,
            me.user_id, me.username, me.role, me.store_id, p_session_id,
            v_addr)::crm.outbox_entry];
    -- One look-up a task: a join with unnest(v_ids) gets a generic plan$x$],
        [$x$        v_payloads := v_payloads || crm.task_payload_of(v_task);$x$,
         $x$        v_entries := v_entries
            || ROW('task', v_task.id, crm.task_payload_of(v_task), r.customer_id,
                   v_task.store_id, v_task.version, me.user_id, me.username, me.role,
                   me.store_id, p_session_id, v_addr)::crm.outbox_entry;$x$],
        [$x$    entries := crm.outbox_entries(
        ARRAY['followup', 'relation']
            || array_fill('task'::text, ARRAY[coalesce(cardinality(v_ids), 0)]),
        ARRAY[v_id, r.id] || v_ids, v_payloads);$x$,
         $x$    -- A record that could not be read back has no payload: refused as
    -- crm.outbox_entries refuses it.
    FOR i IN 1 .. cardinality(v_entries) LOOP
        IF (v_entries[i]).entity_id IS NULL OR (v_entries[i]).payload IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400',
                MESSAGE = 'outbox change needs an entity, an id and a payload';
        END IF;
    END LOOP;
    entries := v_entries;$x$]]);
END
$patch$;

REVOKE ALL ON FUNCTION crm.session_source_addr() FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.session_source_addr() TO %I', app);
END
$$;
