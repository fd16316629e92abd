-- 0036_task_rows: a task row carries what its list shows and what its
-- policy asks of its relation (issue 5's benchmark: `crm tasks` for one
-- consultant, 200 rows).
--
-- A consultant's 200 open tasks, pgbench with one client as crmd's role
-- (`BEGIN; set the scope; SELECT ... LIMIT 200; COMMIT`, 4 s runs, three
-- runs alternating), on the ops/bench group:
--   crm.tasks alone, under its policy                   1.04 ms
--   the same, joined to crm.relations for three columns  1.38 ms
--   the same as superuser (no policy)                    0.67 ms
-- so per list the view's join to crm.relations cost about 0.33 ms and the
-- policy's probe of crm.relations about 0.37 ms, each an index probe of
-- crm.relations per task. And crm.task_list returned each row as one
-- composite value (task crm.task_view) that crmd's statement took apart
-- with (x.task).*: each of its 23 columns is a separate field selection
-- that walks the row from its start (nocachegetattr), 9 % of PostgreSQL's
-- time in a perf profile of the tasks mix. Returned as plain columns:
-- 2.12 -> 1.81 ms a list (pgbench, one client, two runs each way).
--
-- * crm.tasks gets copies of its relation's customer_id, customer_name
--   (as written: 0026), level and owner_id (relation_owner_id). A trigger
--   fills them on every insert, and on any update that names them, from
--   the relation, so no caller can set them; a trigger on crm.relations
--   rewrites them on the relation's tasks when the relation's copy
--   changes (a handover, a level change, a rename through 0026's trigger).
--   The insert trigger also refuses a task whose store is not its
--   relation's store (none in the bench group or the suite's data).
-- * crm.task_view reads the copies; it no longer joins crm.relations. The
--   rows are the same: every task has a relation (foreign key, not null),
--   and the policy below lets a task through exactly when the relation's
--   policy lets the relation through.
-- * tasks_read is relations_read (0029) written on the copies: store_id is
--   the relation's (checked above), relation_owner_id its owner_id,
--   customer_id its customer_id. A change to relations_read must be made
--   here as well; test_rls checks that each scope sees a task exactly
--   when it sees the task's relation, before and after a handover.
-- * crm.task_list returns the columns of crm.task_view that crmd reads
--   (not store_id, owner_id and due_at), then overdue, outcome and
--   late_by_ms, as plain columns. crmd's statement (server/stmts.c)
--   changes with it.
-- * crm.function_patched: the checked text replacement that 0016 and
--   0032 to 0035 each wrote out, once.
--
-- The migration writes every task once (the copies); on the bench group's
-- 1.26 million tasks it took 38 s.

ALTER TABLE crm.tasks
    ADD COLUMN customer_id uuid,
    ADD COLUMN customer_name text,
    ADD COLUMN level character(1),
    ADD COLUMN relation_owner_id uuid;

UPDATE crm.tasks t
   SET customer_id = r.customer_id, customer_name = r.customer_name, level = r.level,
       relation_owner_id = r.owner_id
  FROM crm.relations r
 WHERE r.id = t.relation_id;

ALTER TABLE crm.tasks
    ALTER COLUMN customer_id SET NOT NULL,
    ALTER COLUMN level SET NOT NULL;

-- Definer: the relation is read whoever writes the task (a hub applying a
-- store's batch, a cadence rule run for another person's relation).
CREATE FUNCTION crm.task_relation_copy() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT x.store_id, x.customer_id, x.customer_name, x.level, x.owner_id INTO r
      FROM crm.relations x WHERE x.id = NEW.relation_id;
    IF NOT FOUND THEN
        RETURN NEW;    -- the foreign key names the missing relation
    END IF;
    IF NEW.store_id IS DISTINCT FROM r.store_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_id',
            MESSAGE = 'a task belongs to its relation''s store';
    END IF;
    NEW.customer_id := r.customer_id;
    NEW.customer_name := r.customer_name;
    NEW.level := r.level;
    NEW.relation_owner_id := r.owner_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER tasks_relation_copy
    BEFORE INSERT OR UPDATE OF relation_id, store_id, customer_id, customer_name, level,
                               relation_owner_id
    ON crm.tasks FOR EACH ROW EXECUTE FUNCTION crm.task_relation_copy();

CREATE FUNCTION crm.relation_copy_to_tasks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    UPDATE crm.tasks t
       SET customer_id = NEW.customer_id, customer_name = NEW.customer_name,
           level = NEW.level, relation_owner_id = NEW.owner_id
     WHERE t.relation_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER relations_copy_to_tasks
    AFTER UPDATE OF customer_id, customer_name, level, owner_id ON crm.relations
    FOR EACH ROW
    WHEN ((OLD.customer_id, OLD.customer_name, OLD.level, OLD.owner_id)
          IS DISTINCT FROM (NEW.customer_id, NEW.customer_name, NEW.level, NEW.owner_id))
    EXECUTE FUNCTION crm.relation_copy_to_tasks();

-- 0026's view, the same columns, without crm.relations.
CREATE OR REPLACE VIEW crm.task_view WITH (security_invoker = true) AS
SELECT t.id, t.relation_id, t.customer_id, t.customer_name,
       s.code AS store_code,
       coalesce(o.username, '') AS owner, coalesce(o.display_name, '') AS owner_name,
       crm.ms(t.due_at) AS due_at_ms, t.method, t.purpose, t.status, t.reason,
       coalesce(t.followup_id::text, '') AS followup_id, t.cadence_key,
       crm.ms(t.created_at) AS created_at_ms, coalesce(crm.ms(t.closed_at), 0) AS closed_at_ms,
       coalesce(cb.username, '') AS closed_by, t.version, t.level::text AS level,
       coalesce(t.set_by_followup::text, '') AS set_by_followup,
       t.store_id, t.owner_id, t.due_at
  FROM crm.tasks t
  JOIN crm.stores s ON s.id = t.store_id
  LEFT JOIN crm.users o ON o.id = t.owner_id
  LEFT JOIN crm.users cb ON cb.id = t.closed_by;

ALTER POLICY tasks_read ON crm.tasks
    USING ((SELECT crm.rls_group())
           OR (store_id = (SELECT crm.rls_store())
               AND ((SELECT crm.rls_role()) <> 'consultant' OR relation_owner_id IS NULL
                    OR relation_owner_id = (SELECT crm.rls_user())))
           OR crm.rls_customer(customer_id) IS NOT NULL);

-- fn's definition (pg_get_functiondef) with each patch [old, new]
-- applied; an old text that is not in it exactly once is an error, so a
-- migration never patches a function that is not what it was written for.
CREATE FUNCTION crm.function_patched(p_fn regprocedure, p_patches text[])
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    def text := pg_get_functiondef(p_fn);
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_patches, 1), 0) LOOP
        IF (char_length(def) - char_length(replace(def, p_patches[i][1], '')))
           <> char_length(p_patches[i][1]) THEN
            RAISE EXCEPTION '% is not as this migration expects (patch %)', p_fn, i;
        END IF;
        def := replace(def, p_patches[i][1], p_patches[i][2]);
    END LOOP;
    RETURN def;
END
$$;
REVOKE ALL ON FUNCTION crm.function_patched(regprocedure, text[]) FROM PUBLIC;

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.task_list(uuid, text, text, text, text, text, bigint, integer)'::regprocedure;
    cols constant text :=
        't.id, t.relation_id, t.customer_id, t.customer_name, t.store_code, t.owner,'
        ' t.owner_name, t.due_at_ms, t.method, t.purpose, t.status, t.reason, t.followup_id,'
        ' t.cadence_key, t.created_at_ms, t.closed_at_ms, t.closed_by, t.version, t.level,'
        ' t.set_by_followup';
    def text := crm.function_patched(fn, ARRAY[
        ['RETURNS TABLE(task crm.task_view, overdue boolean, outcome text, late_by_ms bigint)',
         'RETURNS TABLE(id uuid, relation_id uuid, customer_id uuid, customer_name text,'
         ' store_code text, owner text, owner_name text, due_at_ms bigint, method text,'
         ' purpose text, status text, reason text, followup_id text, cadence_key text,'
         ' created_at_ms bigint, closed_at_ms bigint, closed_by text, version bigint,'
         ' level text, set_by_followup text, overdue boolean, outcome text, late_by_ms bigint)'],
        ['SELECT t, t.due_at < v_at, o.outcome, o.late_by_ms',
         'SELECT ' || cols || ', t.due_at < v_at, o.outcome, o.late_by_ms'],
        ['SELECT t, t.status = ''open'' AND t.due_at < v_at, o.outcome, o.late_by_ms',
         'SELECT ' || cols || ', t.status = ''open'' AND t.due_at < v_at, o.outcome,'
         ' o.late_by_ms']]);
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    DROP FUNCTION crm.task_list(uuid, text, text, text, text, text, bigint, integer);
    EXECUTE def;
    REVOKE ALL ON FUNCTION crm.task_list(uuid, text, text, text, text, text, bigint, integer)
        FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' crm.task_list(uuid, text, text, text, text, text, bigint, integer) TO %I',
                   app);
END
$$;
