-- 0026_task_view_name: a task's row reads its customer's name from the
-- relation (issue 5's benchmark: `crm tasks` for one consultant).
--
-- crm.task_view joined crm.customers for one column, the name, and with it
-- that table's policy: an index probe of crm.relations per task besides
-- the customer's own. On the ops/bench group that join was 2.9 of the 4.4
-- ms EXPLAIN ANALYZE gives for a consultant's 200 open tasks as crmd's
-- role. Relations already carry the name lower-cased for searches (0007);
-- they now carry it as written too, kept by the same two triggers.
--
-- Nothing becomes visible that was not: a task is visible when its
-- relation is (0024), and a relation is visible only to someone who may
-- read its customer (0012: the relations policy's branches each satisfy
-- one of the customers policy's), so the inner join to crm.customers never
-- removed a row the relation let through.

ALTER TABLE crm.relations ADD COLUMN customer_name text;
UPDATE crm.relations r SET customer_name = c.name
  FROM crm.customers c WHERE c.id = r.customer_id;

CREATE OR REPLACE FUNCTION crm.relation_name_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    SELECT lower(c.name), c.name INTO NEW.customer_name_lower, NEW.customer_name
      FROM crm.customers c WHERE c.id = NEW.customer_id;
    RETURN NEW;
END
$$;

-- A renamed (or erased) customer: every store's relation follows, whoever
-- renamed it. Now on any change of the name, not only of its lower case.
CREATE OR REPLACE FUNCTION crm.relation_name_on_rename() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    UPDATE crm.relations r SET customer_name_lower = lower(NEW.name), customer_name = NEW.name
     WHERE r.customer_id = NEW.id;
    RETURN NULL;
END
$$;
DROP TRIGGER customers_name_to_relations ON crm.customers;
CREATE TRIGGER customers_name_to_relations AFTER UPDATE OF name ON crm.customers
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION crm.relation_name_on_rename();

-- 0013's view, the same columns; customer_name from the relation.
CREATE OR REPLACE VIEW crm.task_view WITH (security_invoker = true) AS
SELECT t.id, t.relation_id, r.customer_id, r.customer_name,
       s.code AS store_code,
       coalesce(o.username, '') AS owner, coalesce(o.display_name, '') AS owner_name,
       crm.ms(t.due_at) AS due_at_ms, t.method, t.purpose, t.status, t.reason,
       coalesce(t.followup_id::text, '') AS followup_id, t.cadence_key,
       crm.ms(t.created_at) AS created_at_ms, coalesce(crm.ms(t.closed_at), 0) AS closed_at_ms,
       coalesce(cb.username, '') AS closed_by, t.version, r.level::text AS level,
       coalesce(t.set_by_followup::text, '') AS set_by_followup,
       t.store_id, t.owner_id, t.due_at
  FROM crm.tasks t
  JOIN crm.relations r ON r.id = t.relation_id
  JOIN crm.stores s ON s.id = t.store_id
  LEFT JOIN crm.users o ON o.id = t.owner_id
  LEFT JOIN crm.users cb ON cb.id = t.closed_by;
