-- 0049_task_due_order: a person's or a store's open tasks come out of their
-- index in the order the list shows them, with no sort (issue 5: `crm
-- tasks` latency).
--
-- crm.task_list orders open tasks by (due_at, id), so that tasks due at the
-- same moment (a cadence creates several at once) keep one order from page
-- to page. tasks_owner_open and tasks_store_open (0013) held (owner or
-- store, due_at) only: the plan read the range in due order and sorted
-- each run of equal due times by id (an incremental sort), which for the
-- bench's page of 200 tasks put every row through a tuplesort and copied it
-- again. With the id in the key the index gives the final order and the
-- limit stops the scan.
--
-- ops/sqlcost tasks (a consultant's tasks due by the end of today, 200 at
-- most, on the bench group): 12,531,464 instructions a request before,
-- 11,253,756 after.
--
-- The reminders' probes (0021: due_at in (cursor, now] for an owner or a
-- store) read the same leading columns and are served as before.

CREATE INDEX tasks_owner_open_due_id ON crm.tasks (owner_id, due_at, id)
    WHERE status = 'open';
DROP INDEX crm.tasks_owner_open;
ALTER INDEX crm.tasks_owner_open_due_id RENAME TO tasks_owner_open;

CREATE INDEX tasks_store_open_due_id ON crm.tasks (store_id, due_at, id)
    WHERE status = 'open';
DROP INDEX crm.tasks_store_open;
ALTER INDEX crm.tasks_store_open_due_id RENAME TO tasks_store_open;
