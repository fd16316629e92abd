-- 0052_lock_order_plan: the order a group of follow-ups locks its
-- relations in (0048) is planned once per connection, not once per group.
--
-- crm.followup_lock_order was a LANGUAGE sql function. PostgreSQL does
-- not inline a SECURITY DEFINER function, and runs a SQL function that it
-- does not inline by parsing, planning and starting its query afresh for
-- the statement that calls it: once per group. With pg_stat_statements
-- loaded on the bench group (2026-11-27) its query was the only one that
-- crmd's follow-ups planned at every call. As PL/pgSQL the query is
-- prepared once per connection and its plan kept, as every other query of
-- the record path.
--
-- Same query, same result, same rights. A small gain:
-- `ops/sqlcost followup8 40`, after and before in turn, twice: 51,302,426
-- and 51,406,188 instructions a group after, 51,375,143 and 51,811,743
-- before (0.1 to 0.4 %).

CREATE OR REPLACE FUNCTION crm.followup_lock_order(p_args text[])
RETURNS integer[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_order integer[];
BEGIN
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
      INTO v_order
      FROM (SELECT item.i,
                   CASE WHEN item.by_task
                        THEN (SELECT t.relation_id FROM crm.tasks t WHERE t.id = item.task_id)
                        ELSE item.relation_id END AS k
              FROM item) x;
    RETURN v_order;
END
$$;
