-- 0048_followup_lock_order: a group of follow-ups locks its relations in
-- one order, so that two groups never wait for each other in a circle.
--
-- crm.followup_add_batch (0047) records its follow-ups one after another,
-- and each locks its relation (crm.followup_relation, FOR NO KEY UPDATE)
-- until the group commits. crmd sorted a group by the relation ids the
-- desks sent, but a follow-up that completes a task may name only the task;
-- its relation is found inside. Two groups running at once could then take
-- two relations in opposite orders: one holds A and waits for B, the other
-- holds B and waits for A, and after deadlock_timeout PostgreSQL refuses
-- one of the follow-ups (40P01). test_followups makes exactly that happen.
--
-- Now the group itself takes its follow-ups in the order of their
-- relations as PostgreSQL orders uuids, a task's relation looked up first,
-- those of one relation in the order they came. Each follow-up is still
-- answered as its own (its rows carry its item number), and crmd no longer
-- sorts.
--
-- The look-up runs as the tables' owner: before its first follow-up the
-- group has no session scope yet, and under row-level security it would
-- see no task at all. It returns only an order of the group's own items,
-- nothing of what it read. A follow-up whose relation cannot be told (a
-- malformed id, a task that does not exist) comes last; it fails on its
-- own, before it locks anything.

CREATE FUNCTION crm.followup_lock_order(p_args text[])
RETURNS integer[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    WITH item AS (
        SELECT i,
               CASE WHEN p_args[i * 13 + 3] ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    THEN p_args[i * 13 + 3]::uuid END AS relation_id,
               coalesce(p_args[i * 13 + 3], '') = '' AS by_task,
               CASE WHEN p_args[i * 13 + 4] ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    THEN p_args[i * 13 + 4]::uuid END AS task_id
          FROM generate_series(0, coalesce(cardinality(p_args), 0) / 13 - 1) AS i
    )
    SELECT coalesce(array_agg(x.i ORDER BY x.k NULLS LAST, x.i), '{}')
      FROM (SELECT item.i,
                   CASE WHEN item.by_task
                        THEN (SELECT t.relation_id FROM crm.tasks t WHERE t.id = item.task_id)
                        ELSE item.relation_id END AS k
              FROM item) x
$$;

DO $patch$
DECLARE
    def text := crm.function_patched('crm.followup_add_batch(text[])'::regprocedure, ARRAY[
        [$x$    b integer;$x$,
         $x$    i integer;
    b integer;$x$],
        [$x$    FOR i IN 0 .. n - 1 LOOP
        b := i * 13;$x$,
         $x$    -- In the order of their relations (crm.followup_lock_order).
    FOREACH i IN ARRAY crm.followup_lock_order(p_args) LOOP
        b := i * 13;$x$]]);
BEGIN
    EXECUTE def;
END
$patch$;

REVOKE ALL ON FUNCTION crm.followup_lock_order(text[]) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.followup_lock_order(text[]) TO %I', app);
END
$$;
