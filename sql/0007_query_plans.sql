-- 0007_query_plans: customer lists that cost PostgreSQL less per call
-- (dealercrm issue 3). Same functions, same arguments, same rows.
--
-- Measured on the ops/bench group (1,000,000 customers, 20 stores), one
-- consultant's list at one client (pgbench -M prepared -c 1 on the SQL crmd
-- runs), before this migration:
--
-- * crm.contact_unmasked (0005) was a SQL function whose body has
--   sub-selects, so the planner could not inline it, and each of its three
--   uses per customer_view row (phone, WeChat, the phones list) planned its
--   body again: 0.8 ms of the 0.9 ms a one-customer customer_view read
--   took. As PL/pgSQL its two queries are planned once per connection.
--
-- * crm.customer_query planned the whole page query, the customer and
--   relation views included, with EXECUTE on every call: 1.4 ms of planning
--   and 1.8 ms of execution for a two-row phone search page, where the page
--   itself (which rows, in which order) takes 0.6 ms to plan and 0.15 ms to
--   run. Now the EXECUTE'd query finds the page only (customer ids,
--   relation ids, cursors), and a static query, planned once per
--   connection, reads those rows through the views.
--
-- * A store list that needs no customer column to choose its rows (every
--   phone search, every filter on the relation) no longer joins
--   crm.customers to find them: the relation's customer_id is enough.

CREATE OR REPLACE FUNCTION crm.contact_unmasked(p_customer_id uuid, p_customer_store uuid)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_role text := current_setting('crm.role', true);
BEGIN
    IF current_setting('crm.contact_unmasked', true) = 'on'
       OR v_role IN ('group_admin', 'store_node') THEN
        RETURN true;
    ELSIF v_role = 'consultant' THEN
        RETURN EXISTS (SELECT 1 FROM crm.relations r
                        WHERE r.customer_id = p_customer_id
                          AND r.owner_id = nullif(current_setting('crm.user_id', true), '')::uuid);
    ELSIF v_role IN ('sales_manager', 'store_manager') THEN
        RETURN p_customer_store = nullif(current_setting('crm.store_id', true), '')::uuid
            OR EXISTS (SELECT 1 FROM crm.relations r
                        WHERE r.customer_id = p_customer_id
                          AND r.store_id = nullif(current_setting('crm.store_id', true), '')::uuid);
    END IF;
    RETURN false;
END
$$;

-- The customers with the phone p_phone (canonical) or a phone ending in
-- the digits whose reverse is p_rev: the last digits are a range of
-- reversed numbers, as LIKE 'rev%' gives with a constant pattern, so the
-- plan (made once per connection) is an index-only range scan of
-- customer_phones_rev_cover. Definer: a search looks for the phone in the
-- whole group, and the page query that takes these ids then keeps only the
-- relations the caller may see (row-level security, 0012); ids alone tell
-- nothing about a customer.
CREATE FUNCTION crm.customer_ids_by_phone(p_phone text, p_rev text) RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_ids uuid[] := '{}';
BEGIN
    IF p_phone IS NOT NULL THEN
        SELECT coalesce(array_agg(p.customer_id), '{}') INTO v_ids
          FROM crm.customer_phones p WHERE p.phone = p_phone;
    END IF;
    IF p_rev IS NOT NULL AND p_rev <> '' THEN
        SELECT v_ids || coalesce(array_agg(p.customer_id), '{}') INTO v_ids
          FROM crm.customer_phones p
         WHERE p.phone_rev OPERATOR(pg_catalog.~>=~) p_rev
           AND p.phone_rev OPERATOR(pg_catalog.~<~)
               (left(p_rev, -1) || chr(ascii(right(p_rev, 1)) + 1));
    END IF;
    RETURN ARRAY(SELECT DISTINCT u FROM unnest(v_ids) AS u);
END
$$;
REVOKE ALL ON FUNCTION crm.customer_ids_by_phone(text, text) FROM PUBLIC;

-- STMT_CUSTOMER_LIST, as in 0003 (parameters, sort keys, cursors).
CREATE OR REPLACE FUNCTION crm.customer_query(
    p_session_id uuid, p_name text, p_name_match text, p_phone text, p_phone_digits text,
    p_levels text, p_sources text, p_model text, p_owner text, p_tag text,
    p_important_only boolean, p_contacted_within_days integer, p_followup_overdue boolean,
    p_store_code text, p_sort text, p_descending boolean, p_after text, p_count integer)
RETURNS TABLE (
    id uuid, name text, phone text, version bigint, created_at_ms bigint,
    updated_at_ms bigint, created_by text, store_code text, gender text, birth_year integer,
    age_band text, wechat text, email text, occupation text, region text, tags text,
    important boolean, phones text,
    r_id uuid, r_customer_id uuid, r_store_code text, r_store_name text, r_brand text,
    r_owner text, r_owner_name text, r_level text, r_source text,
    r_first_contact_at_ms bigint, r_first_contact_place text, r_first_contact_scenario text,
    r_first_feedback text, r_status text, r_version bigint, r_created_at_ms bigint,
    r_updated_at_ms bigint, r_protected_until_ms bigint, r_last_contact_at_ms bigint,
    r_next_followup_at_ms bigint, r_intents text,
    cursor text)
LANGUAGE plpgsql
AS $fn$
#variable_conflict use_column
DECLARE
    me record;
    nil constant uuid := '00000000-0000-0000-0000-000000000000';
    v_store uuid;              -- $1: the store of a store list
    v_name text;               -- $3: lower(name)
    v_name_like text;          -- $4: the end of the names starting with $3
    v_name_grams text;         -- $5
    v_phone text;              -- $6
    v_phone_rev_like text;     -- $7
    v_phone_ids uuid[];        -- $21: the customers a phone search finds
    v_pair_like text[];        -- $22: a two-character name's characters, as
    v_pair text[];             -- $23  LIKE patterns on grams and as names
    -- the CJK characters of crm.name_grams
    v_cjk constant text := '[\u2E80-\u2FDF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF'
                           '\uF900-\uFAFF\U00020000-\U0003134F]';
    v_levels text[];           -- $8
    v_sources text[];          -- $9
    v_model text;              -- $10: lower(model)
    v_model_like text;         -- $11
    v_owner uuid;              -- $12
    v_tag text;                -- $13
    v_since timestamptz;       -- $14
    v_ck_ts timestamptz;       -- $15..$17: cursor key as timestamp, text, integer
    v_ck_text text;            --   ($16 is the name tie-breaker for relevance)
    v_ck_int integer;
    v_c_cid uuid;              -- $18, $19: cursor's customer and relation id
    v_c_rid uuid;
    v_store_list boolean;
    v_sort text := coalesce(nullif(p_sort, ''), '');
    v_sort_tag text;
    v_dir text;
    v_cmp text;
    v_key text;                -- key expression
    v_key_param text;          -- the cursor's key as a parameter
    v_key_ms text;             -- how the key enters the cursor
    v_nullable boolean := false;
    v_tb text[];               -- tie-breaking expressions
    v_tb_param text[];
    v_from text;
    v_customers text;          -- all customers (c), or those a name search finds
    v_name_cond text;
    v_names text;              -- the CTE of the names a name search finds
    v_where text[] := ARRAY[]::text[];
    v_order text;
    v_sql text;
    v_cur jsonb;
    v_cid text := 'c.id';      -- the customer id of a row in the page query
    v_cids uuid[];             -- the page: customers, relations, cursors
    v_rids uuid[];
    v_curs text[];
    v_plan text;
    v_rev text;                -- the digits searched, reversed
    i integer;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node cannot list customers';
    END IF;
    -- A page is a short query and many run at once: a parallel plan would
    -- take cores from the others for little gain (and is the sign of a plan
    -- reading much of a table, which the indexes here are meant to avoid),
    -- and JIT compiling, which a rough estimate can set off, costs a
    -- hundred times the query.
    PERFORM set_config('max_parallel_workers_per_gather', '0', true),
            set_config('jit', 'off', true);

    -- ---- which rows: the scope
    IF p_store_code IS NOT NULL AND p_store_code <> '' THEN
        SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(p_store_code);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                MESSAGE = format('store_code: no store %s', p_store_code);
        END IF;
        IF me.store_id IS NOT NULL AND v_store <> me.store_id THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403', COLUMN = 'store_code',
                MESSAGE = 'store_code: you can list only your own store';
        END IF;
    END IF;
    IF me.store_id IS NOT NULL THEN
        v_store := me.store_id;
    END IF;
    v_store_list := v_store IS NOT NULL;
    IF v_store_list THEN
        v_where := v_where || 'r.store_id = $1'::text;
        IF me.role = 'consultant' THEN
            v_where := v_where || '(r.owner_id = $2 OR r.owner_id IS NULL)'::text;
        END IF;
    END IF;

    -- ---- the customers: all, or those of the names a name search finds
    v_names := '';
    v_name := nullif(lower(btrim(coalesce(p_name, ''), E' \t\u3000')), '');
    IF v_name IS NOT NULL THEN
        -- Names starting with v_name are the range [v_name, v_name_like)
        -- of the byte order (text_pattern_ops): the last character one code
        -- point up (over the surrogates). A range, unlike LIKE, is an index
        -- condition in a plan made for any value.
        v_name_like := left(v_name, -1) || chr(CASE ascii(right(v_name, 1))
                                                WHEN 55295 THEN 57344
                                                ELSE ascii(right(v_name, 1)) + 1 END);
        v_name_grams := crm.name_grams(v_name);
        CASE coalesce(nullif(p_name_match, ''), 'fuzzy')
        WHEN 'exact' THEN
            v_name_cond := 'n.name_lower = $3';
        WHEN 'prefix' THEN
            v_name_cond := '(n.name_lower OPERATOR(pg_catalog.~>=~) $3'
                           ' AND n.name_lower OPERATOR(pg_catalog.~<~) $4)';
        WHEN 'fuzzy' THEN
            -- The similarity floor of the % operator, for this transaction:
            -- 0.4 keeps 王晓明 for 王小明 (0.5) and leaves out names that
            -- share one character of three (0.25 to 0.33), which would
            -- make the search return a large part of the table.
            PERFORM set_config('pg_trgm.similarity_threshold', '0.4', true);
            v_name_cond := '((n.name_lower OPERATOR(pg_catalog.~>=~) $3'
                           ' AND n.name_lower OPERATOR(pg_catalog.~<~) $4)'
                           ' OR n.grams OPERATOR(public.%) $5)';
            -- Two Chinese characters: the trigram index lets through every
            -- name with either one (tens of thousands), but a name of two or
            -- more characters reaches 0.4 only with both, and a name of one
            -- only by being one of them. Saying so keeps the same matches
            -- and lets the index find just those.
            IF v_name ~ ('^' || v_cjk || '{2}$') THEN
                v_pair_like := ARRAY['% ' || substr(v_name, 1, 1) || ' %',
                                     '% ' || substr(v_name, 2, 1) || ' %'];
                v_pair := ARRAY[substr(v_name, 1, 1), substr(v_name, 2, 1)];
                v_name_cond := '((n.name_lower OPERATOR(pg_catalog.~>=~) $3'
                               ' AND n.name_lower OPERATOR(pg_catalog.~<~) $4)'
                               ' OR (n.grams OPERATOR(public.%) $5'
                               ' AND n.grams LIKE $22[1] AND n.grams LIKE $22[2])'
                               ' OR n.name_lower = ANY ($23))';
            END IF;
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'name_match',
                MESSAGE = 'name_match must be exact, prefix or fuzzy';
        END CASE;
        -- rel: exact beats prefix beats similar; similarity in
        -- millionths keeps it an integer, which a cursor carries exactly.
        -- A list by relevance runs in the order (rel, name, customer id):
        -- the names are sorted, each name's customers come from the index,
        -- and only a name's few customers need sorting by id, so the page
        -- is cut after reading about as many customers as it shows, however
        -- many similar names there are. The names found
        -- are few: MATERIALIZED and OFFSET 0 keep them a trigram index scan
        -- followed by a per-name index lookup of the customers, where the
        -- planner's guess of their number (trigram estimates are rough)
        -- would otherwise lead it to scan every name or hash the whole
        -- customers table.
        v_names := format(
            'nm AS MATERIALIZED (SELECT n.name_lower, (CASE WHEN n.name_lower = $3 THEN 4'
            ' WHEN starts_with(n.name_lower, $3) THEN 2 ELSE 0 END) * 1000000'
            ' + (public.similarity(n.grams, $5) * 1000000)::integer AS rel'
            ' FROM crm.customer_names n WHERE %s), ', v_name_cond);
        -- A store list takes each name's customers from the store's own
        -- relations (relations_store_name): a probe per name found, where
        -- the customers of every similar name in the group (a thousand
        -- and more for common names) would each need a probe of their own
        -- to learn whether they are the store's.
        v_customers := format(
            '(SELECT c0.id, nm2.rel, nm2.name_lower AS nl FROM (SELECT * FROM nm%s) nm2'
            ' CROSS JOIN LATERAL (%s OFFSET 0) c0)',
            CASE WHEN coalesce(nullif(p_sort, ''), 'relevance') = 'relevance'
                 THEN ' ORDER BY rel DESC, name_lower DESC' ELSE '' END,
            CASE WHEN v_store_list
                 THEN 'SELECT r1.customer_id AS id FROM crm.relations r1 WHERE r1.store_id = $1'
                      ' AND r1.customer_name_lower = nm2.name_lower'
                      || CASE WHEN me.role = 'consultant'
                              THEN ' AND (r1.owner_id = $2 OR r1.owner_id IS NULL)' ELSE '' END
                 ELSE 'SELECT c1.id FROM crm.customers c1 WHERE c1.name_lower = nm2.name_lower'
            END);
    END IF;

    -- ---- filters

    IF (p_phone IS NOT NULL AND p_phone <> '') OR (p_phone_digits IS NOT NULL AND p_phone_digits <> '') THEN
        IF p_phone IS NOT NULL AND p_phone <> '' THEN
            IF p_phone !~ '^\+86[0-9]{6,12}$' THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'phone',
                    MESSAGE = 'phone must be a China number in the form +8613812345678';
            END IF;
            v_phone := p_phone;
        END IF;
        IF p_phone_digits IS NOT NULL AND p_phone_digits <> '' THEN
            IF p_phone_digits !~ '^[0-9]{4,20}$' THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'phone',
                    MESSAGE = 'phone: give the full number or at least its last 4 digits';
            END IF;
            v_phone_rev_like := reverse(p_phone_digits) || '%';
        END IF;
        -- The customers are found first, and the page query gets their ids
        -- as a value: the planner then knows how few they are. Given the
        -- condition on the phones instead, it guesses far too many matches
        -- and may walk a whole store's list in order, looking for them.
        -- crm.customer_ids_by_phone: an index-only range scan.
        IF v_phone_rev_like IS NOT NULL THEN
            v_rev := reverse(p_phone_digits);
        END IF;
        v_phone_ids := crm.customer_ids_by_phone(v_phone, v_rev);
    END IF;

    IF p_levels IS NOT NULL AND p_levels <> '' THEN
        v_levels := string_to_array(upper(p_levels), ',');
        FOR i IN 1 .. cardinality(v_levels) LOOP
            IF v_levels[i] !~ '^[HABCNODT]$' THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'levels',
                    MESSAGE = format('levels: unknown level %s (use H, A, B, C, N, O, D or T)',
                                     v_levels[i]);
            END IF;
        END LOOP;
        v_where := v_where || 'r.level = ANY ($8::bpchar[])'::text;
    END IF;

    IF p_sources IS NOT NULL AND p_sources <> '' THEN
        v_sources := string_to_array(p_sources, ',');
        FOR i IN 1 .. cardinality(v_sources) LOOP
            IF v_sources[i] NOT IN ('walk_in', 'referral', 'online', 'auto_show', 'phone_in',
                                    'roadshow', 'fleet', 'other') THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'sources',
                    MESSAGE = format('sources: unknown source %s', v_sources[i]);
            END IF;
        END LOOP;
        v_where := v_where || 'r.source = ANY ($9)'::text;
    END IF;

    IF p_model IS NOT NULL AND btrim(p_model) <> '' THEN
        v_model := lower(btrim(p_model));
        v_model_like := crm.like_prefix(v_model);
        v_where := v_where ||
            ('EXISTS (SELECT 1 FROM crm.relation_intents i WHERE i.relation_id = r.id'
             ' AND (lower(i.model) LIKE $11 OR i.body_type = $10'
             ' OR EXISTS (SELECT 1 FROM crm.models m'
             ' WHERE lower(m.name) = lower(i.model) AND m.body_type = $10)))')::text;
    END IF;

    IF p_owner IS NOT NULL AND p_owner <> '' THEN
        SELECT u.id INTO v_owner FROM crm.users u WHERE u.username = lower(btrim(p_owner));
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'owner',
                MESSAGE = format('owner: no user %s', p_owner);
        END IF;
        v_where := v_where || 'r.owner_id = $12'::text;
    END IF;

    IF p_tag IS NOT NULL AND p_tag <> '' THEN
        v_tag := p_tag;
        v_where := v_where || 'c.tags @> ARRAY[$13]'::text;
    END IF;

    IF p_important_only THEN
        v_where := v_where || 'c.important'::text;
    END IF;

    IF p_contacted_within_days IS NOT NULL AND p_contacted_within_days <> 0 THEN
        IF p_contacted_within_days < 0 OR p_contacted_within_days > 36500 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'contacted_within_days',
                MESSAGE = 'contacted_within_days must be from 1 to 36500';
        END IF;
        v_since := now() - make_interval(days => p_contacted_within_days);
        v_where := v_where || 'r.last_contact_at >= $14'::text;
    END IF;

    IF p_followup_overdue THEN
        v_where := v_where || 'r.next_followup_at < now()'::text;
    END IF;

    -- ---- order: key expression, tie-breakers, direction
    IF v_sort = '' THEN
        v_sort := CASE WHEN v_name IS NOT NULL THEN 'relevance' ELSE 'created' END;
    END IF;
    v_dir := CASE WHEN p_descending AND v_sort <> 'relevance' THEN 'DESC' ELSE 'ASC' END;
    CASE v_sort
    WHEN 'created' THEN
        v_key := CASE WHEN v_store_list THEN 'r.created_at' ELSE 'c.created_at' END;
    WHEN 'updated' THEN
        v_key := CASE WHEN v_store_list THEN 'r.updated_at' ELSE 'c.updated_at' END;
    WHEN 'last_contact' THEN
        v_key := 'r.last_contact_at';
        v_nullable := true;
    WHEN 'next_followup' THEN
        v_key := 'r.next_followup_at';
        v_nullable := true;
    WHEN 'name' THEN
        v_key := 'c.name COLLATE "C"';
    WHEN 'level' THEN
        v_key := 'crm.level_rank(r.level)';
        v_nullable := NOT v_store_list;
    WHEN 'relevance' THEN
        IF v_name IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'sort',
                MESSAGE = 'sort: relevance needs a name search';
        END IF;
        v_key := 'cand.rel';   -- c.rel when the customers table is left out below
        v_dir := 'DESC';
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'sort',
            MESSAGE = format('sort: unknown sort %s (use created, updated, name, '
                             'last_contact, next_followup or level)', p_sort);
    END CASE;
    v_cmp := CASE v_dir WHEN 'ASC' THEN '>' ELSE '<' END;
    v_key_param := CASE
        WHEN v_sort IN ('created', 'updated', 'last_contact', 'next_followup') THEN '$15'
        WHEN v_sort = 'name' THEN '$16 COLLATE "C"'
        ELSE '$17' END;
    v_key_ms := CASE
        WHEN v_sort IN ('created', 'updated', 'last_contact', 'next_followup')
            THEN 'to_jsonb((extract(epoch FROM p.k) * 1000000)::bigint)'
        ELSE 'to_jsonb(p.k)' END;
    IF v_sort = 'relevance' THEN
        -- the name comes between relevance and the ids (see v_customers)
        v_tb := ARRAY['cand.nl', 'c.id'];
        v_tb_param := ARRAY['$16', '$18'];
        IF NOT v_store_list THEN
            v_tb := v_tb || format('coalesce(r.id, %L::uuid)', nil);
            v_tb_param := v_tb_param || format('coalesce($19, %L::uuid)', nil);
        END IF;
    ELSIF NOT v_store_list THEN
        v_tb := ARRAY['c.id', format('coalesce(r.id, %L::uuid)', nil)];
        v_tb_param := ARRAY['$18', format('coalesce($19, %L::uuid)', nil)];
    ELSIF v_sort IN ('name', 'relevance') THEN
        v_tb := ARRAY['c.id'];
        v_tb_param := ARRAY['$18'];
    ELSE
        v_tb := ARRAY['r.id'];
        v_tb_param := ARRAY['$19'];
    END IF;
    -- ---- from: the customers, then their relations. A name search that
    -- needs no customer column before the page is cut (no customer filter,
    -- no customer sort key) leaves crm.customers out of the page query: the
    -- candidates' ids are all it uses, and the page's rows are read after.
    IF v_customers IS NULL AND v_store_list AND v_tag IS NULL
       AND NOT coalesce(p_important_only, false) AND v_key NOT LIKE 'c.%'
       AND NOT ('c.id' = ANY (v_tb)) THEN
        -- nothing but the customer's id: the relation has it
        v_cid := 'r.customer_id';
    ELSIF v_customers IS NULL THEN
        v_customers := 'crm.customers c';
    ELSIF v_tag IS NULL AND NOT coalesce(p_important_only, false)
          AND v_key NOT LIKE 'c.%' THEN
        v_customers := v_customers || ' c';
        v_key := replace(v_key, 'cand.', 'c.');
        v_tb := ARRAY(SELECT replace(t, 'cand.', 'c.') FROM unnest(v_tb) AS t);
    ELSE
        v_customers := v_customers || ' cand JOIN crm.customers c ON c.id = cand.id';
    END IF;
    IF v_phone_ids IS NOT NULL THEN
        v_where := v_where || format('%s = ANY ($21)', v_cid);
    END IF;
    IF v_cid = 'r.customer_id' THEN
        v_from := 'crm.relations r';
    ELSIF v_store_list THEN
        v_from := format('crm.relations r JOIN %s ON c.id = r.customer_id', v_customers);
    ELSE
        v_from := format('%s LEFT JOIN crm.relations r ON r.customer_id = c.id', v_customers);
    END IF;

    -- The cursor is valid only for the same sort, direction and kind of list.
    v_sort_tag := v_sort || '/' || lower(v_dir) || '/' ||
                  CASE WHEN v_store_list THEN 'store' ELSE 'group' END;

    -- ---- where the page starts: a cursor is base64 of the JSON array
    -- [sort tag, key (timestamps in epoch microseconds), customer id,
    -- relation id or null, name for relevance or null]
    IF p_after IS NOT NULL AND p_after <> '' THEN
        BEGIN
            v_cur := convert_from(decode(p_after, 'base64'), 'UTF8')::jsonb;
            IF jsonb_typeof(v_cur) <> 'array' OR jsonb_array_length(v_cur) <> 5
               OR v_cur->>0 IS DISTINCT FROM v_sort_tag THEN
                RAISE EXCEPTION 'cursor of another list';
            END IF;
            IF jsonb_typeof(v_cur->1) <> 'null' THEN
                CASE
                WHEN v_key_param = '$15' THEN
                    v_ck_ts := timestamptz 'epoch' + (v_cur->>1)::bigint * interval '1 microsecond';
                WHEN v_sort = 'name' THEN
                    v_ck_text := v_cur->>1;
                ELSE
                    v_ck_int := (v_cur->>1)::integer;
                END CASE;
            ELSIF NOT v_nullable THEN
                RAISE EXCEPTION 'cursor without a key';
            END IF;
            v_c_cid := (v_cur->>2)::uuid;
            v_c_rid := (v_cur->>3)::uuid;
            IF v_c_cid IS NULL THEN
                RAISE EXCEPTION 'cursor without a customer';
            END IF;
            IF v_sort = 'relevance' THEN
                v_ck_text := v_cur->>4;
                IF v_ck_text IS NULL THEN
                    RAISE EXCEPTION 'cursor without a name';
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'after',
                MESSAGE = 'after: not a cursor of this list (same sort and filters needed)';
        END;
        IF jsonb_typeof(v_cur->1) = 'null' THEN
            -- Rows without a key come last: only those after the cursor's id.
            v_where := v_where || format('(%s IS NULL AND (%s) %s (%s))', v_key,
                array_to_string(v_tb, ', '), v_cmp, array_to_string(v_tb_param, ', '));
        ELSE
            v_where := v_where || format('((%s, %s) %s (%s, %s)%s)', v_key,
                array_to_string(v_tb, ', '), v_cmp, v_key_param,
                array_to_string(v_tb_param, ', '),
                CASE WHEN v_nullable THEN format(' OR %s IS NULL', v_key) ELSE '' END);
        END IF;
    END IF;

    IF p_count IS NULL OR p_count < 1 OR p_count > 501 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'page_size',
            MESSAGE = 'page_size must be from 1 to 500';
    END IF;

    -- NULLS LAST only where there are NULLs: on a NOT NULL key it would
    -- keep the planner from reading an index backwards for DESC.
    v_order := format('k %s%s', v_dir, CASE WHEN v_nullable THEN ' NULLS LAST' ELSE '' END);
    FOR i IN 1 .. cardinality(v_tb) LOOP
        v_order := v_order || format(', t%s %s', i, v_dir);
    END LOOP;

    -- The page: which rows, in which order, each with its cursor.
    v_sql := format(
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
    -- Planned once per connection and list shape, for any values: every
    -- condition is one an index takes as a parameter (ranges, =, ANY, the
    -- trigram operators), none needs the value at planning time.
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    v_plan := 'crm_list_' || md5(v_sql);
    IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements ps WHERE ps.name = v_plan) THEN
        EXECUTE format('PREPARE %I (uuid, uuid, text, text, text, text, text, text[], text[],'
                       ' text, text, uuid, text, timestamptz, timestamptz, text, integer, uuid,'
                       ' uuid, integer, uuid[], text[], text[]) AS %s', v_plan, v_sql);
    END IF;
    EXECUTE format('EXECUTE %I (%L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L,'
                   ' %L, %L, %L, %L, %L, %L, %L, %L)', v_plan,
                   v_store, me.user_id, v_name, v_name_like, v_name_grams, v_phone,
                   v_phone_rev_like, v_levels, v_sources, v_model, v_model_like, v_owner,
                   v_tag, v_since, v_ck_ts, v_ck_text, v_ck_int, v_c_cid, v_c_rid, p_count,
                   v_phone_ids, v_pair_like, v_pair)
        INTO v_cids, v_rids, v_curs;

    -- Its rows, through the views (masking included): the same query for
    -- every list, planned once per connection.
    RETURN QUERY
    SELECT cv.*, rv.id, rv.customer_id, rv.store_code, rv.store_name, rv.brand,
           rv.owner, rv.owner_name, rv.level, rv.source, rv.first_contact_at_ms,
           rv.first_contact_place, rv.first_contact_scenario, rv.first_feedback, rv.status,
           rv.version, rv.created_at_ms, rv.updated_at_ms, rv.protected_until_ms,
           rv.last_contact_at_ms, rv.next_followup_at_ms, rv.intents, p.cur
      FROM unnest(v_cids, v_rids, v_curs) WITH ORDINALITY AS p(cid, rid, cur, ord)
      JOIN crm.customer_view cv ON cv.id = p.cid
      LEFT JOIN crm.relation_view rv ON rv.id = p.rid
     ORDER BY p.ord;
END
$fn$;

-- The phone and relation lookups of a phone search read the index alone
-- (each replaces an index with the same key that left the table to read).
CREATE INDEX customer_phones_rev_cover ON crm.customer_phones (phone_rev text_pattern_ops)
    INCLUDE (customer_id);
DROP INDEX crm.customer_phones_rev;
ALTER TABLE crm.relations
    ADD CONSTRAINT relations_customer_store UNIQUE (customer_id, store_id)
        INCLUDE (id, owner_id, created_at),
    DROP CONSTRAINT relations_customer_id_store_id_key;
DROP INDEX crm.relations_customer;

-- Two of 0002's indexes on relations are the leading columns of two of
-- 0003's (which read the same ranges in either direction): each only cost
-- every write to a relation.
DROP INDEX crm.relations_store_last_contact;
DROP INDEX crm.relations_store_next_followup;

-- A customer's name lower-cased, as a column: name searches compare it
-- with = (which row-level security lets use an index; lower() would not
-- be, as it is not leakproof).
ALTER TABLE crm.customers ADD COLUMN name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX customers_name_lower_col ON crm.customers (name_lower, id) INCLUDE (name);
DROP INDEX crm.customers_name_lower;

-- Each relation carries its customer's name, lower-cased, for name
-- searches within a store (see crm.customer_query). Kept by the two
-- triggers below; nothing else writes it.
ALTER TABLE crm.relations ADD COLUMN customer_name_lower text;
UPDATE crm.relations r SET customer_name_lower = lower(c.name)
  FROM crm.customers c WHERE c.id = r.customer_id;
CREATE INDEX relations_store_name ON crm.relations (store_id, customer_name_lower)
    INCLUDE (customer_id, owner_id);

CREATE FUNCTION crm.relation_name_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    SELECT lower(c.name) INTO NEW.customer_name_lower
      FROM crm.customers c WHERE c.id = NEW.customer_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER relations_name_on_insert BEFORE INSERT ON crm.relations
    FOR EACH ROW EXECUTE FUNCTION crm.relation_name_on_insert();

-- A renamed (or erased) customer: every store's relation follows, whoever
-- renamed it (definer: the caller may not see the other stores' rows).
CREATE FUNCTION crm.relation_name_on_rename() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    UPDATE crm.relations r SET customer_name_lower = lower(NEW.name)
     WHERE r.customer_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_name_to_relations AFTER UPDATE OF name ON crm.customers
    FOR EACH ROW WHEN (lower(OLD.name) IS DISTINCT FROM lower(NEW.name))
    EXECUTE FUNCTION crm.relation_name_on_rename();
REVOKE ALL ON FUNCTION crm.relation_name_on_insert(), crm.relation_name_on_rename() FROM PUBLIC;

-- The customer view of 0005, with crm.contact_unmasked called once per
-- row: without OFFSET 0 the planner pulls the one-column subquery up and
-- copies the call into each of the three places that read it.
CREATE OR REPLACE VIEW crm.customer_view WITH (security_invoker = true) AS
SELECT c.id, c.name,
       CASE WHEN m.unmasked THEN c.phone ELSE crm.mask_phone(c.phone) END AS phone,
       c.version,
       crm.ms(c.created_at) AS created_at_ms, crm.ms(c.updated_at) AS updated_at_ms,
       coalesce(u.username, '') AS created_by, coalesce(s.code, '') AS store_code,
       c.gender, coalesce(c.birth_year, 0) AS birth_year, c.age_band,
       CASE WHEN m.unmasked THEN c.wechat ELSE crm.mask_wechat(c.wechat) END AS wechat,
       c.email, c.occupation, c.region, array_to_string(c.tags, E'\x1f') AS tags, c.important,
       (SELECT string_agg(CASE WHEN m.unmasked THEN p.phone ELSE crm.mask_phone(p.phone) END
                          || E'\x1e' || p.kind || E'\x1e' || p.is_primary::text, E'\x1f'
                          ORDER BY p.is_primary DESC, p.added_at, p.phone)
          FROM crm.customer_phones p WHERE p.customer_id = c.id) AS phones
  FROM crm.customers c
  CROSS JOIN LATERAL (SELECT crm.contact_unmasked(c.id, c.store_id) AS unmasked OFFSET 0) m
  LEFT JOIN crm.users u ON u.id = c.created_by
  LEFT JOIN crm.stores s ON s.id = c.store_id;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.customer_ids_by_phone(text, text) TO %I', app);
END
$$;
