-- 0033_nullable_sorts: a store's list sorted by last contact or by next
-- follow-up costs a page at any depth (issue 3: keyset pagination).
--
-- Both keys can be empty, and empty keys come last in either direction.
-- After a cursor the page's condition was "(key, id) after the cursor's,
-- OR key IS NULL": an OR, which no index range can take, so each page
-- read the store's relations from the first one in index order. On the
-- ops/bench group (a consultant seeing about 17,000 relations), a page of
-- 100 deep in the list took 34 ms by last contact and 9 ms by next
-- follow-up after 500 rows; a first page by last contact ascending 16 ms,
-- as the index (last contact descending, empty last) cannot give empty
-- keys last when read backwards, and everything was sorted.
--
-- A store's list now reads the page as two index ranges: the rows with a
-- key after the cursor, and the rows without one (after the cursor's id
-- when the cursor is among them), each in the order its index gives, each
-- stopped at the page size, merged and cut to the page. Same rows, same
-- order, same cursors. Each range is written in its index's own order
-- (for the rows without a key, the place of empty keys in that order is
-- immaterial). Group-wide lists, and lists with a filter besides the
-- scope, keep the one query: a filter like levels H and A picks rows that
-- gather at the recent end of last contact, and reading the key's range
-- from the other end for them took a store manager's first page by last
-- contact ascending from 12 ms (by the levels' index, then a sort) to 46.

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := pg_get_functiondef(fn);
    patches constant text[][] := ARRAY[
        [$x$    v_plan text;
$x$,
         $x$    v_plan text;
    v_split boolean;           -- a store's list by a key that can be empty (0033)
    v_nn text;                 --   the condition of the rows with a key
    v_nl text;                 --   and of those without
    v_iorder text;             --   the order the key's index gives
    v_cols text;
    v_cond text;
    v_page text;
$x$],
        [$x$    -- The cursor is valid only for the same sort, direction and kind of list.
$x$,
         $x$    -- A store's list by last contact or next follow-up: two index ranges
    -- (sql/0033), the rows with a key and those without.
    -- Only with no filter but the scope: a filter whose rows gather at one
    -- end of the key (H and A are the recently contacted) would make the
    -- range read far for a page, where the one query finds them by their
    -- own index and sorts them.
    v_split := v_store_list AND v_sort IN ('last_contact', 'next_followup') AND v_names = ''
               AND cardinality(v_where) = CASE WHEN me.role = 'consultant' THEN 2 ELSE 1 END;
    v_nn := format('%s IS NOT NULL', v_key);
    v_nl := format('%s IS NULL', v_key);

    -- The cursor is valid only for the same sort, direction and kind of list.
$x$],
        [$x$        IF jsonb_typeof(v_cur->1) = 'null' THEN
            -- Rows without a key come last: only those after the cursor's id.
            v_where := v_where || format('(%s IS NULL AND (%s) %s (%s))', v_key,
                array_to_string(v_tb, ', '), v_cmp, array_to_string(v_tb_param, ', '));
        ELSE
$x$,
         $x$        IF v_split AND jsonb_typeof(v_cur->1) = 'null' THEN
            v_nn := 'false';
            v_nl := format('(%s IS NULL AND (%s) %s (%s))', v_key,
                array_to_string(v_tb, ', '), v_cmp, array_to_string(v_tb_param, ', '));
        ELSIF v_split THEN
            v_nn := format('((%s, %s) %s (%s, %s))', v_key,
                array_to_string(v_tb, ', '), v_cmp, v_key_param,
                array_to_string(v_tb_param, ', '));
        ELSIF jsonb_typeof(v_cur->1) = 'null' THEN
            -- Rows without a key come last: only those after the cursor's id.
            v_where := v_where || format('(%s IS NULL AND (%s) %s (%s))', v_key,
                array_to_string(v_tb, ', '), v_cmp, array_to_string(v_tb_param, ', '));
        ELSE
$x$],
        [$x$    v_sql := format(
        'WITH %spage AS (SELECT %s AS cid, r.id AS rid, %s AS k, %s'
        ' FROM %s WHERE %s ORDER BY %s LIMIT $20)'
        ' SELECT coalesce(array_agg(p.cid ORDER BY %s), ''{}''),'
        ' coalesce(array_agg(p.rid ORDER BY %s), ''{}''),'
        ' coalesce(array_agg(translate(encode(convert_to(jsonb_build_array(%L::text, %s, p.cid,'
        ' p.rid, %s)::text, ''UTF8''), ''base64''), E''\n'', '''') ORDER BY %s), ''{}'')'
        ' FROM page p',
        v_names, v_cid, v_key,
        (SELECT string_agg(format('%s AS t%s', e, n), ', ')
           FROM unnest(v_tb) WITH ORDINALITY AS u(e, n)),
        v_from,
        CASE WHEN cardinality(v_where) = 0 THEN 'true'
             ELSE array_to_string(v_where, ' AND ') END,
        v_order, v_order, v_order, v_sort_tag, v_key_ms,
        CASE WHEN v_sort = 'relevance' THEN 'p.t1' ELSE 'NULL::text' END, v_order);
$x$,
         $x$    v_cols := format('%s AS cid, r.id AS rid, %s AS k, %s', v_cid, v_key,
        (SELECT string_agg(format('%s AS t%s', e, n), ', ')
           FROM unnest(v_tb) WITH ORDINALITY AS u(e, n)));
    v_cond := CASE WHEN cardinality(v_where) = 0 THEN 'true'
                   ELSE array_to_string(v_where, ' AND ') END;
    IF v_split THEN
        -- Each range in its index's order: relations_store_last_contact_id
        -- is descending, relations_store_next_followup_id ascending, both
        -- with empty keys last; read the other way, empty keys come first.
        v_iorder := format('k %s NULLS %s', v_dir,
            CASE WHEN v_dir = CASE v_sort WHEN 'last_contact' THEN 'DESC' ELSE 'ASC' END
                 THEN 'LAST' ELSE 'FIRST' END);
        FOR i IN 1 .. cardinality(v_tb) LOOP
            v_iorder := v_iorder || format(', t%s %s', i, v_dir);
        END LOOP;
        v_page := format(
            'SELECT * FROM ((SELECT %s FROM %s WHERE %s AND %s ORDER BY %s LIMIT $20)'
            ' UNION ALL (SELECT %s FROM %s WHERE %s AND %s ORDER BY %s LIMIT $20)) u'
            ' ORDER BY %s LIMIT $20',
            v_cols, v_from, v_cond, v_nn, v_iorder,
            v_cols, v_from, v_cond, v_nl, v_iorder, v_order);
    ELSE
        v_page := format('SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $20',
                         v_cols, v_from, v_cond, v_order);
    END IF;
    v_sql := format(
        'WITH %spage AS (%s)'
        ' SELECT coalesce(array_agg(p.cid ORDER BY %s), ''{}''),'
        ' coalesce(array_agg(p.rid ORDER BY %s), ''{}''),'
        ' coalesce(array_agg(translate(encode(convert_to(jsonb_build_array(%L::text, %s, p.cid,'
        ' p.rid, %s)::text, ''UTF8''), ''base64''), E''\n'', '''') ORDER BY %s), ''{}'')'
        ' FROM page p',
        v_names, v_page, v_order, v_order, v_sort_tag, v_key_ms,
        CASE WHEN v_sort = 'relevance' THEN 'p.t1' ELSE 'NULL::text' END, v_order);
$x$]];
    i integer;
BEGIN
    FOR i IN 1 .. array_length(patches, 1) LOOP
        IF (char_length(def) - char_length(replace(def, patches[i][1], '')))
           <> char_length(patches[i][1]) THEN
            RAISE EXCEPTION 'crm.customer_query is not as 0033 expects (patch %)', i;
        END IF;
        def := replace(def, patches[i][1], patches[i][2]);
    END LOOP;
    EXECUTE def;
END
$$;
