-- 0047_followup_group_commit: follow-ups recorded together share one commit
-- (issue 5: the benchmark's p99 target for recording a follow-up).
--
-- Every write appends to the outbox under the one-row counter DESIGN.md
-- asks for (gapless, in commit order), and the counter's row lock is held
-- until the commit has flushed its WAL. So follow-ups commit one after
-- another, one WAL flush each, and while one waits for its flush the
-- statement behind it waits for the lock: at 16 desk clients on two cores,
-- 14 % of the statements' time was spent in the flush and 5 % waiting for
-- the lock, and the cores stood idle 7 to 12 % of the time (pg_stat_activity
-- sampled every 5 ms; vmstat). The same run without waiting for the flush
-- (synchronous_commit off, measured once to size the cost, never a
-- setting here: it can lose committed follow-ups) did 1,235 follow-ups a
-- second against 709 to 913.
--
-- crmd now records follow-ups that arrive while others are running as one
-- statement, crm.followup_add_batch: each follow-up in its own
-- subtransaction, so one that fails (a stale version, a relation out of
-- reach) is answered with its own error and leaves the others alone; then
-- one append for all of them, one counter update, one flush. The outbox
-- and audit entries are what they would have been one by one: the same
-- records, each entry's actor the user who recorded it, the sequence still
-- gapless and in commit order.
--
-- * crm.outbox_append_all is split in two. crm.outbox_entries looks up
--   what each record names and who writes it, as the caller's session sees
--   it, before any lock; crm.outbox_append_entries takes the counter and
--   writes the entries and their audit rows. crm.outbox_append_all is the
--   two in turn, so every other write appends as before.
-- * crm.followup_record is crm.followup_add without the append: its last
--   row (kind 'outbox') carries the entries instead. crm.followup_add
--   itself is unchanged, so a follow-up alone costs what it did.

CREATE TYPE crm.outbox_entry AS (
    entity text,
    entity_id uuid,
    payload bytea,
    customer_id uuid,      -- the record's subject, crm.outbox_subject
    store_id uuid,
    version bigint,
    actor_id uuid,         -- who writes, crm.audit_actor
    actor_name text,
    actor_role text,
    actor_store uuid,
    session_id uuid,
    source_addr text
);

-- ---------------------------------------------------------------- the outbox in two steps

CREATE FUNCTION crm.outbox_entries(p_entities text[], p_ids uuid[], p_payloads bytea[])
RETURNS crm.outbox_entry[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    n integer := coalesce(cardinality(p_ids), 0);
    v crm.outbox_entry[] := '{}';
    s record;
    a record;
BEGIN
    IF n = 0 AND coalesce(cardinality(p_entities), 0) = 0
       AND coalesce(cardinality(p_payloads), 0) = 0 THEN
        RETURN v;
    END IF;
    IF n = 0 OR cardinality(p_entities) IS DISTINCT FROM n
       OR cardinality(p_payloads) IS DISTINCT FROM n
       OR array_position(p_entities, NULL) IS NOT NULL
       OR array_position(p_ids, NULL) IS NOT NULL
       OR array_position(p_payloads, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400',
            MESSAGE = 'outbox change needs an entity, an id and a payload';
    END IF;
    a := crm.audit_actor(NULL, NULL, NULL, NULL);
    FOR i IN 1 .. n LOOP
        s := crm.outbox_subject(p_entities[i], p_ids[i]);
        v[i] := ROW(p_entities[i], p_ids[i], p_payloads[i], s.o_customer, s.o_store,
                    s.o_version, a.o_actor, a.o_name, a.o_role, a.o_store, a.o_session,
                    a.o_addr)::crm.outbox_entry;
    END LOOP;
    RETURN v;
END
$$;

CREATE FUNCTION crm.outbox_append_entries(p_entries crm.outbox_entry[],
                                          p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    n integer := coalesce(cardinality(p_entries), 0);
    v_seq bigint;
    v_hlc bigint;
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    -- Locked from here until commit. The clock as n appends one by one:
    -- the first past both the last one and now, the others one apart.
    UPDATE crm.outbox_counter
       SET seq = seq + n,
           hlc = greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16,
                          hlc + 1) + n - 1
     WHERE singleton
    RETURNING seq, hlc INTO v_seq, v_hlc;
    INSERT INTO crm.outbox (seq, entity, entity_id, payload, schema_version, hlc)
    SELECT v_seq - n + x.k, x.entity, x.entity_id, x.payload, p_schema_version, v_hlc - n + x.k
      FROM unnest(p_entries) WITH ORDINALITY
           AS x(entity, entity_id, payload, customer_id, store_id, version, actor_id,
                actor_name, actor_role, actor_store, session_id, source_addr, k);
    -- crm.audit_append's entry for each.
    INSERT INTO crm.audit_log (action, outcome, actor_id, actor_username, actor_role,
                               store_id, session_id, source_addr, entity, entity_id,
                               customer_id, before_version, after_version, details)
    SELECT 'change', 'ok', x.actor_id, left(x.actor_name, 200), x.actor_role,
           coalesce(x.store_id, x.actor_store), x.session_id, left(x.source_addr, 200),
           left(x.entity, 64), x.entity_id::text, x.customer_id, x.version - 1, x.version,
           jsonb_build_object('outbox_seq', v_seq - n + x.k)
      FROM unnest(p_entries) WITH ORDINALITY
           AS x(entity, entity_id, payload, customer_id, store_id, version, actor_id,
                actor_name, actor_role, actor_store, session_id, source_addr, k)
     ORDER BY x.k;
    RETURN v_seq;
END
$$;

CREATE OR REPLACE FUNCTION crm.outbox_append_all(p_entities text[], p_ids uuid[],
                                                 p_payloads bytea[],
                                                 p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    RETURN crm.outbox_append_entries(crm.outbox_entries(p_entities, p_ids, p_payloads),
                                     p_schema_version);
END
$$;

-- ---------------------------------------------------------------- a follow-up without its append

DO $patch$
DECLARE
    def text := crm.function_patched(
        'crm.followup_add(uuid, text, text, text, text, text, bigint, text, text, bigint,'
        ' text, text, bigint, bigint, bigint, bytea)'::regprocedure, ARRAY[
        ['CREATE OR REPLACE FUNCTION crm.followup_add(',
         'CREATE FUNCTION crm.followup_record('],
        ['task crm.task_view)',
         'task crm.task_view, entries crm.outbox_entry[])'],
        [$x$SELECT 'existed', 'followup', f, v, NULL::crm.task_view$x$,
         $x$SELECT 'existed', 'followup', f, v, NULL::crm.task_view, NULL::crm.outbox_entry[]$x$],
        [$x$    -- Last, in one call: the outbox counter is locked from there until commit.
    PERFORM crm.outbox_append_all($x$,
         $x$    -- Appended by the caller (crm.followup_add_batch), with others.
    kind := 'outbox';
    task := NULL;
    entries := crm.outbox_entries($x$],
        [$x$v_payloads);
END$x$,
         $x$v_payloads);
    RETURN NEXT;
END$x$]]);
BEGIN
    EXECUTE def;
END
$patch$;

-- ---------------------------------------------------------------- several at once

-- p_args: 13 values a follow-up, crm.followup_add's first 13 parameters in
-- order. Rows: each follow-up's rows as crm.followup_add returns them, or
-- one row with its error; `item` counts from 0.
CREATE FUNCTION crm.followup_add_batch(p_args text[])
RETURNS TABLE (item integer, err_state text, err_column text, err_message text,
               outcome text, kind text, fu crm.followup_view, rel crm.relation_view,
               task crm.task_view)
LANGUAGE plpgsql
SET enable_hashjoin = off
AS $$
#variable_conflict use_column
DECLARE
    n integer := coalesce(cardinality(p_args), 0) / 13;
    b integer;
    x record;
    failed boolean;
    i_outcome text[];
    i_kind text[];
    i_fu crm.followup_view[];
    i_rel crm.relation_view[];
    i_task crm.task_view[];
    i_entries crm.outbox_entry[];
    v_entries crm.outbox_entry[] := '{}';
BEGIN
    IF n = 0 OR cardinality(p_args) <> n * 13 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400',
            MESSAGE = 'a batch of follow-ups needs 13 values for each follow-up';
    END IF;
    FOR i IN 0 .. n - 1 LOOP
        b := i * 13;
        i_outcome := '{}';
        i_kind := '{}';
        i_fu := '{}';
        i_rel := '{}';
        i_task := '{}';
        i_entries := NULL;
        failed := false;
        -- A subtransaction: a follow-up that fails takes back only its own writes.
        BEGIN
            FOR x IN SELECT * FROM crm.followup_record(
                         p_args[b + 1]::uuid, p_args[b + 2], p_args[b + 3], p_args[b + 4],
                         p_args[b + 5], p_args[b + 6], p_args[b + 7]::bigint, p_args[b + 8],
                         p_args[b + 9], p_args[b + 10]::bigint, p_args[b + 11],
                         p_args[b + 12], p_args[b + 13]::bigint, NULL, NULL, NULL) LOOP
                IF x.kind = 'outbox' THEN
                    i_entries := x.entries;
                ELSE
                    i_outcome := array_append(i_outcome, x.outcome);
                    i_kind := array_append(i_kind, x.kind);
                    i_fu := array_append(i_fu, x.fu);
                    i_rel := array_append(i_rel, x.rel);
                    i_task := array_append(i_task, x.task);
                END IF;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            failed := true;
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_column = COLUMN_NAME,
                                    err_message = MESSAGE_TEXT;
        END;
        item := i;
        IF failed THEN
            outcome := NULL;
            kind := NULL;
            fu := NULL;
            rel := NULL;
            task := NULL;
            RETURN NEXT;
        ELSE
            v_entries := v_entries || i_entries;
            err_state := NULL;
            err_column := NULL;
            err_message := NULL;
            FOR k IN 1 .. cardinality(i_kind) LOOP
                outcome := i_outcome[k];
                kind := i_kind[k];
                fu := i_fu[k];
                rel := i_rel[k];
                task := i_task[k];
                RETURN NEXT;
            END LOOP;
        END IF;
    END LOOP;
    -- Last, in one call: the outbox counter is locked from there until commit.
    PERFORM crm.outbox_append_entries(v_entries);
END
$$;

-- ---------------------------------------------------------------- privileges

REVOKE ALL ON FUNCTION crm.outbox_entries(text[], uuid[], bytea[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.outbox_append_entries(crm.outbox_entry[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.followup_record(uuid, text, text, text, text, text, bigint, text,
                                           text, bigint, text, text, bigint, bigint, bigint,
                                           bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.followup_add_batch(text[]) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.outbox_entries(text[], uuid[], bytea[]),'
                   ' crm.outbox_append_entries(crm.outbox_entry[], integer),'
                   ' crm.followup_record(uuid, text, text, text, text, text, bigint, text,'
                   ' text, bigint, text, text, bigint, bigint, bigint, bytea),'
                   ' crm.followup_add_batch(text[]) TO %I', app);
END
$$;
