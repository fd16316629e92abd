-- 0031_plan_cache: statements that were planned again at every call.
--
-- PL/pgSQL keeps a statement's plan, but for one with parameters it makes
-- a plan for the values of each of the first five calls and then keeps
-- making them as long as the plan for any value (the generic plan) looks
-- dearer than those. A LIMIT given as a parameter is enough to make it
-- look dearer (the planner assumes a tenth of the rows), so sql/0025's
-- statement for a person's open tasks, the desk's `crm tasks`, was
-- planned at every call: 1.4 ms of planning for 4.3 ms of execution
-- (pg_stat_statements over crm-bench's six mixes through crmd, 16
-- connections). Its generic plan is the same plan: the range of
-- tasks_owner_open for the owner up to the window's end, in due order,
-- stopped at the limit. pgbench, one client, as crmd's role, 200 tasks
-- of a consultant's 'today': 2.78 -> 1.40 ms a list; with a limit of 1
-- (the call's fixed cost) 1.26 -> 0.26 ms.
--
-- The same for the phone search's range of a store's reversed numbers
-- (crm.customer_ids_by_phone, 0.06 ms a call), whose conditions are
-- index ranges for any value.
--
-- SQL-language functions that cannot be inlined are planned at every
-- call in PostgreSQL 15; the three below run once or twice per request
-- (a customer read; a name search) and are now PL/pgSQL, which keeps
-- their plans. Same results.

ALTER FUNCTION crm.task_list(uuid, text, text, text, text, text, bigint, integer)
    SET plan_cache_mode = force_generic_plan;

ALTER FUNCTION crm.customer_ids_by_phone(text, text)
    SET plan_cache_mode = force_generic_plan;

CREATE OR REPLACE FUNCTION crm.customer_exists(p_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM crm.customers c WHERE c.id = p_id);
END
$$;

CREATE OR REPLACE FUNCTION crm.name_cjk_chars(p_name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(DISTINCT ch COLLATE "C"), '{}')
              FROM regexp_split_to_table(p_name, '') AS ch
             WHERE ch ~ '[\u2E80-\u2FDF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F]');
END
$$;

CREATE OR REPLACE FUNCTION crm.name_pair_keys(p_name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
DECLARE
    a text[] := crm.name_cjk_chars(p_name);
BEGIN
    IF cardinality(a) = 1 THEN
        RETURN a;
    END IF;
    RETURN ARRAY(SELECT a[i] || a[j]
                   FROM generate_subscripts(a, 1) AS i, generate_subscripts(a, 1) AS j
                  WHERE i < j ORDER BY i, j);
END
$$;
