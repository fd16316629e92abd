-- 0034_tasks_closed: `crm tasks closed` reads one person's closed tasks by
-- an index (issue 5).
--
-- A person's closed tasks, latest due first, had no index to be read
-- from: tasks_owner_open holds only open tasks, and the plan read every
-- task of the group. On the ops/bench group (1.19 million tasks) a
-- consultant's `crm tasks closed` took 220 ms; with the partial index
-- below it is a range read that stops at the page. A store's closed
-- tasks keep tasks_store_due, read backwards.

CREATE INDEX tasks_owner_closed ON crm.tasks (owner_id, due_at DESC, id DESC)
    WHERE status <> 'open';
