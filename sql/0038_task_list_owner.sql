-- 0038_task_list_owner: one person's open tasks read without joining
-- each task to its owner (issue 5's benchmark: `crm tasks` for one
-- consultant, 200 rows).
--
-- crm.task_list's path for one person's open tasks read crm.task_view,
-- which joins every task to crm.users for its owner's name (the same
-- person on every row of this list) and again for who closed it (nobody,
-- on an open task). pgbench, the same 200 tasks as crmd's role with the
-- scope set (`BEGIN; set the scope; SELECT ...; COMMIT`): one client,
-- three rounds alternating, 1.40 to 1.69 ms through the view against 1.34
-- to 1.44 ms with the owner looked up once; 16 clients, two rounds, 1,147
-- and 1,385 lists a second against 1,281 and 1,459.
--
-- The path now looks its owner up once and reads crm.tasks with its store;
-- the columns are crm.task_view's expressions (0036), and who closed a
-- task is looked up only for a task that has one. test_followups checks
-- a consultant's list against the tasks' owner, name and store.

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.task_list(uuid, text, text, text, text, text, bigint, integer)'::regprocedure;
    def text := crm.function_patched(fn, ARRAY[
        [$x$    v_store uuid;
$x$,
         $x$    v_store uuid;
    v_owner_name text;
    v_owner_display text;
$x$],
        [$x$        RETURN QUERY
        SELECT t.id, t.relation_id, t.customer_id, t.customer_name, t.store_code, t.owner, t.owner_name, t.due_at_ms, t.method, t.purpose, t.status, t.reason, t.followup_id, t.cadence_key, t.created_at_ms, t.closed_at_ms, t.closed_by, t.version, t.level, t.set_by_followup, t.due_at < v_at, o.outcome, o.late_by_ms
          FROM crm.task_view t
         CROSS JOIN LATERAL crm.task_outcome(t.status, t.due_at,
                                             crm.from_ms(nullif(t.closed_at_ms, 0)), v_at) o
         WHERE t.owner_id = v_owner AND t.status = 'open' AND t.due_at < v_until$x$,
         $x$        SELECT coalesce(u.username, ''), coalesce(u.display_name, '')
          INTO v_owner_name, v_owner_display
          FROM crm.users u WHERE u.id = v_owner;
        RETURN QUERY
        SELECT t.id, t.relation_id, t.customer_id, t.customer_name, s.code,
               coalesce(v_owner_name, ''), coalesce(v_owner_display, ''),
               crm.ms(t.due_at), t.method, t.purpose, t.status, t.reason,
               coalesce(t.followup_id::text, ''), t.cadence_key, crm.ms(t.created_at),
               coalesce(crm.ms(t.closed_at), 0),
               CASE WHEN t.closed_by IS NULL THEN ''
                    ELSE coalesce((SELECT cb.username FROM crm.users cb
                                    WHERE cb.id = t.closed_by), '') END,
               t.version, t.level::text, coalesce(t.set_by_followup::text, ''),
               t.due_at < v_at, o.outcome, o.late_by_ms
          FROM crm.tasks t
          JOIN crm.stores s ON s.id = t.store_id
         CROSS JOIN LATERAL crm.task_outcome(t.status, t.due_at, t.closed_at, v_at) o
         WHERE t.owner_id = v_owner AND t.status = 'open' AND t.due_at < v_until$x$]]);
BEGIN
    EXECUTE def;
END
$$;
