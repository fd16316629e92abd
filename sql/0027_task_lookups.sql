-- 0027_task_lookups: two look-ups of tasks that read far more than they
-- need.
--
-- * crm.cadence_apply asked whether an open task covers a rule with
--   PERFORM, which runs its query to the end: every open task of the
--   relation was read, where the first one that covers the rule is enough.
--   On the ops/bench group, whose benchmarked relations collect open tasks
--   (each benchmark follow-up sets a next task and completes none), that
--   was 0.38 ms a call, 1.4 calls a follow-up; a relation with 272 open
--   tasks read all 272. Now an EXISTS, which stops at the first.
-- * The maintenance reminders (0017, crm.reminders_apply) look for a
--   vehicle's reminder task by its cadence key ('svc/' and the vehicle),
--   for which no index existed: a sequential scan of every task of the
--   group, once per vehicle due: 130 ms each on the ops/bench group (991,041
--   tasks, one core), 0.07 ms with the index.

-- 0021's function; only the covering test changed.
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
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM crm.tasks t
             WHERE t.relation_id = rel.id AND t.status = 'open'
               AND (t.cadence_key = v_key OR (rule.any_task_covers AND t.due_at <= v_due)));
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

CREATE INDEX tasks_cadence_key ON crm.tasks (cadence_key);
