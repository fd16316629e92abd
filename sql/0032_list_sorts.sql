-- 0032_list_sorts: a store's list sorted by level or by name costs a page,
-- not the whole list (issue 3: keyset pagination and sort).
--
-- Found by running the desk's commands on the ops/bench group (a store of
-- 59,600 relations, a consultant seeing about 17,000 of them) with
-- pg_stat_statements on: `crm customer list --sort name` took 88 ms for
-- its first page and 69 ms for each page after it, `--sort level` 43 ms a
-- page on average over the whole list, each page dearer than the last.
--
-- * Level. Under row-level security, a condition of the query that is not
--   leakproof is evaluated after the policy's, on rows already read, and
--   cannot bound an index scan. The cursor's condition
--   (crm.level_rank(r.level), r.id) > (...) called level_rank(text)
--   through the bpchar-to-text cast, which is not leakproof: every page
--   read the store's relations from the first one. crm.level_rank(bpchar)
--   is the same rule without the cast, declared LEAKPROOF (it returns a
--   position and cannot fail: nothing about its argument escapes but its
--   result), and the index is rebuilt on it, with the columns the policy
--   reads, so that a page is an index-only range scan from the cursor.
--   Queries writing crm.level_rank(r.level) take the new function (an
--   exact match of argument type); level_rank(text) stays for text.
-- * Name. A store's list sorted by name joined every relation the caller
--   sees to its customer to sort them by crm.customers.name. Relations
--   carry the customer's name as written (sql/0026, kept by trigger on
--   every change of it), so a store's list now sorts by that copy on
--   relations_store_customer_name, in the same order (the name in byte
--   order, then the customer's id) with the same cursors. Group-wide lists
--   keep sorting by the customer's own name.
--
-- Measured as crmd's role, a consultant's page of 100 after a cursor:
-- by name 69 ms -> 0.27 ms, by level -> 3 ms (index range).

CREATE FUNCTION crm.level_rank(p_level bpchar) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT LEAKPROOF
AS $$ SELECT nullif(strpos('HABCNODT', p_level::text), 0) $$;

DROP INDEX crm.relations_store_level_rank;
CREATE INDEX relations_store_level_rank ON crm.relations (store_id, crm.level_rank(level), id)
    INCLUDE (customer_id, owner_id, level);

CREATE INDEX relations_store_customer_name
    ON crm.relations (store_id, (customer_name COLLATE "C"), customer_id)
    INCLUDE (id, owner_id);

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := pg_get_functiondef(fn);
    patches constant text[][] := ARRAY[
        [$x$    WHEN 'name' THEN
        v_key := 'c.name COLLATE "C"';
$x$,
         $x$    WHEN 'name' THEN
        -- a store's list: the relation's copy of the name (sql/0032)
        v_key := CASE WHEN v_store_list THEN 'r.customer_name COLLATE "C"'
                      ELSE 'c.name COLLATE "C"' END;
$x$],
        [$x$    ELSIF v_sort IN ('name', 'relevance') THEN
        v_tb := ARRAY['c.id'];
$x$,
         $x$    ELSIF v_sort IN ('name', 'relevance') THEN
        v_tb := ARRAY['r.customer_id'];
$x$]];
    i integer;
BEGIN
    FOR i IN 1 .. array_length(patches, 1) LOOP
        IF (char_length(def) - char_length(replace(def, patches[i][1], '')))
           <> char_length(patches[i][1]) THEN
            RAISE EXCEPTION 'crm.customer_query is not as 0032 expects (patch %)', i;
        END IF;
        def := replace(def, patches[i][1], patches[i][2]);
    END LOOP;
    EXECUTE def;
END
$$;

REVOKE ALL ON FUNCTION crm.level_rank(bpchar) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.level_rank(bpchar) TO %I', app);
END
$$;
