-- 0035_group_sorts: a group-wide list by last contact, next follow-up or
-- level reads one page, not the group (issue 3; the analysts' lists).
--
-- A group-wide list (group roles) is every customer with each of its
-- relations, or alone when it has none, and these two orders are the
-- relation's key, empty keys last. The one query joined all 1,000,000
-- customers to all 1,150,000 relations and sorted them for every page:
-- about 1 s a page for a group analyst on the ops/bench group, whatever
-- the page (pgbench, one client, pages of 100: 0.99 s the first by last
-- contact descending, 1.06 s after row 5,000; next follow-up 1.05 and
-- 1.12 s; level 2.4 and 3.9 s).
--
-- By level there was no group-wide index at all; relations_level_rank is
-- one, in the order of the list's tie-breakers (customer, relation).
--
-- Such a list with no filter now reads, as a store's list does since
-- 0033, the rows with a key from the key's own index
-- (relations_last_contact, relations_next_followup, relations_level_rank:
-- ascending, empty keys last), each joined to its customer, and the rows without a key (the
-- relations without one and the customers without a relation) by
-- customer id. All rows with a key come before all rows without, so the
-- second part is read only when the first gives less than a page: the
-- parts are appended in that order and the page is cut from the front
-- (PostgreSQL's Append returns its parts in order; no parallel plans here,
-- customer_query turns them off), then sorted as before. The second part
-- can be slow on a group where few rows lack a key: its reads go through
-- all customers in id order until a page of them is found; that happens
-- only for the pages at the end of the list. Same rows, order and cursors
-- (test_query's group-wide sorted pages with ties and empty keys pass).

CREATE INDEX relations_level_rank ON crm.relations (crm.level_rank(level), customer_id, id);

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := pg_get_functiondef(fn);
    patches constant text[][] := ARRAY[
        [$x$    v_page text;
$x$,
         $x$    v_page text;
    v_p1 text;                 --   a group list's rows with a key (0035)
$x$],
        [$x$    v_split := v_store_list AND v_sort IN ('last_contact', 'next_followup') AND v_names = ''
               AND cardinality(v_where) = CASE WHEN me.role = 'consultant' THEN 2 ELSE 1 END;
$x$,
         $x$    v_split := (v_sort IN ('last_contact', 'next_followup')
                OR (v_sort = 'level' AND NOT v_store_list)) AND v_names = ''
               AND cardinality(v_where) = CASE WHEN NOT v_store_list THEN 0
                                               WHEN me.role = 'consultant' THEN 2 ELSE 1 END;
$x$],
        [$x$        v_iorder := format('k %s NULLS %s', v_dir,
            CASE WHEN v_dir = CASE v_sort WHEN 'last_contact' THEN 'DESC' ELSE 'ASC' END
                 THEN 'LAST' ELSE 'FIRST' END);
        FOR i IN 1 .. cardinality(v_tb) LOOP
            v_iorder := v_iorder || format(', t%s %s', i, v_dir);
        END LOOP;
        v_page := format(
$x$,
         $x$        -- The group-wide indexes (relations_last_contact, _next_followup,
        -- _level_rank) are all ascending (sql/0035).
        v_iorder := format('k %s NULLS %s', v_dir,
            CASE WHEN v_dir = CASE WHEN v_sort = 'last_contact' AND v_store_list
                                   THEN 'DESC' ELSE 'ASC' END
                 THEN 'LAST' ELSE 'FIRST' END);
        FOR i IN 1 .. cardinality(v_tb) LOOP
            v_iorder := v_iorder || format(', t%s %s', i, v_dir);
        END LOOP;
        IF NOT v_store_list THEN
            -- The rows with a key, from the key's index, then (only when
            -- those end within the page) the rows without one by customer.
            -- The first part's cursor condition on the relation's own
            -- columns (its customer id, its id: the row's tie-breakers),
            -- so that the index takes the key's part of it.
            v_p1 := CASE
                WHEN v_ck_ts IS NOT NULL OR v_ck_int IS NOT NULL
                    THEN format('%1$s IS NOT NULL AND (%1$s, r.customer_id, r.id) %2$s (%3$s, $18, $19)',
                                v_key, v_cmp, v_key_param)
                WHEN v_c_cid IS NOT NULL THEN 'false'
                ELSE format('%s IS NOT NULL', v_key) END;
            v_page := format(
                'SELECT * FROM ((SELECT %s FROM crm.relations r'
                ' JOIN crm.customers c ON c.id = r.customer_id WHERE %s ORDER BY %s LIMIT $20)'
                ' UNION ALL (SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $20)) u LIMIT $20',
                v_cols, v_p1, v_iorder,
                v_cols, v_from, v_nl,
                (SELECT string_agg(format('t%s %s', n, v_dir), ', ')
                   FROM generate_series(1, cardinality(v_tb)) AS n));
        ELSE
        v_page := format(
$x$],
        [$x$            v_cols, v_from, v_cond, v_nl, v_iorder, v_order);
$x$,
         $x$            v_cols, v_from, v_cond, v_nl, v_iorder, v_order);
        END IF;
$x$]];
    i integer;
BEGIN
    FOR i IN 1 .. array_length(patches, 1) LOOP
        IF (char_length(def) - char_length(replace(def, patches[i][1], '')))
           <> char_length(patches[i][1]) THEN
            RAISE EXCEPTION 'crm.customer_query is not as 0035 expects (patch %)', i;
        END IF;
        def := replace(def, patches[i][1], patches[i][2]);
    END LOOP;
    EXECUTE def;
END
$$;
