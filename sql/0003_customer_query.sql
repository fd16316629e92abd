-- 0003_customer_query: the read side of customer records: the list and
-- search behind CustomerList (one page per call, keyset pagination) and the
-- customer card, with the indexes their plans need.
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds). Scope is
-- enforced here in SQL until row-level security arrives:
--   * store roles see customers that have a relation at their store, one row
--     per customer with that store's relation; a consultant only the
--     relations they own and the store's pool (owner NULL);
--   * group roles see everything: one row per relation (a customer at two
--     stores is two rows) plus customers without any relation as rows with
--     an empty relation; store_code narrows a group list to one store.

-- ------------------------------------------------------------ helpers

-- Position of a level in the order H A B C N O D T (1..8): the key of
-- sort=level. Immutable: it is part of an index.
CREATE FUNCTION crm.level_rank(p_level text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT nullif(strpos('HABCNODT', p_level), 0) $$;

-- A LIKE pattern matching every text that starts with p_text (LIKE's
-- wildcards and its escape character in p_text match themselves).
CREATE FUNCTION crm.like_prefix(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_') || '%' $$;

-- ------------------------------------------------------------ names

-- Every distinct customer name, lower-cased: name searches (exact, prefix,
-- similar) run here and then fetch the customers of the names found. A
-- million customers carry far fewer distinct names, so the trigram index
-- here is a fraction of one on crm.customers, and no customer row is read
-- before its name is known to match. Names are only added (a name nobody
-- has any more matches no customer and does no harm).
CREATE TABLE crm.customer_names (
    name_lower text PRIMARY KEY,
    -- stored: the trigram recheck and the ranking read it instead of running
    -- crm.name_grams's regular expression again for every name
    grams text NOT NULL GENERATED ALWAYS AS (crm.name_grams(name_lower)) STORED
);
CREATE INDEX customer_names_grams ON crm.customer_names USING gin (grams public.gin_trgm_ops);
CREATE INDEX customer_names_prefix ON crm.customer_names (name_lower text_pattern_ops);

-- Statement-level, so a bulk load (COPY) adds its names in one insert. In
-- name order, so that concurrent adders never wait on each other in a
-- cycle. Definer: crmd may read the table but not write it.
CREATE FUNCTION crm.customer_names_add() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    INSERT INTO crm.customer_names (name_lower)
    SELECT DISTINCT lower(n.name) FROM new_rows n ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_names_on_insert AFTER INSERT ON crm.customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.customer_names_add();
CREATE TRIGGER customers_names_on_update AFTER UPDATE ON crm.customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.customer_names_add();
INSERT INTO crm.customer_names (name_lower)
SELECT DISTINCT lower(c.name) FROM crm.customers c ORDER BY 1 ON CONFLICT DO NOTHING;

-- ------------------------------------------------------------ indexes

-- The customers of a name, read from the index alone (an index-only scan
-- of an expression needs the column itself in the index too).
CREATE INDEX customers_name_lower ON crm.customers (lower(name), id) INCLUDE (name);
-- Group-wide lists run in customer order: sort=created, updated, name.
CREATE INDEX customers_created ON crm.customers (created_at, id);
CREATE INDEX customers_updated ON crm.customers (updated_at, id);
CREATE INDEX customers_name_c ON crm.customers ((name COLLATE "C"), id);
-- Store lists run in relation order: sort=updated, level, last_contact,
-- next_followup (created: relations_store_created of 0002).
CREATE INDEX relations_store_updated ON crm.relations (store_id, updated_at, id);
CREATE INDEX relations_store_level_rank ON crm.relations (store_id, crm.level_rank(level), id);
-- In the direction people mostly want: most recently contacted first, the
-- follow-up due soonest first (both with the NULLs last, as the lists put
-- them). The other directions sort the filtered rows instead.
CREATE INDEX relations_store_last_contact_id
    ON crm.relations (store_id, last_contact_at DESC NULLS LAST, id DESC);
CREATE INDEX relations_store_next_followup_id ON crm.relations (store_id, next_followup_at, id);
-- Lists filtered by "contacted within N days" and "follow-up overdue" across
-- the whole group.
CREATE INDEX relations_last_contact ON crm.relations (last_contact_at);
CREATE INDEX relations_next_followup ON crm.relations (next_followup_at);
-- Everything on a card, newest first.
CREATE INDEX lead_collisions_customer_at ON crm.lead_collisions (customer_id, at DESC, id DESC);
CREATE INDEX relations_customer ON crm.relations (customer_id);

-- The earlier list ordered by id alone; crm.customer_query replaces it.
DROP FUNCTION crm.customer_list(uuid, text, integer);

-- ------------------------------------------------------------ list and search

-- STMT_CUSTOMER_LIST: one page of a customer list. Returns up to p_count
-- rows: the CUSTOMER columns, the RELATION columns (all NULL for a customer
-- without a relation in a group-wide list), and the row's cursor: the
-- opaque text that resumes the list right after that row (p_after).
--
-- Parameters (NULL or '' = not given):
--   p_name, p_name_match   name search: 'exact', 'prefix' or 'fuzzy'
--                          (exact, prefix and similar names, default)
--   p_phone, p_phone_digits  phone search: a canonical number (+86...) and/or
--                          4+ digits that end one of the customer's phones
--   p_levels, p_sources    comma-separated; any of
--   p_model                intent model (equal or prefix, any case) or body
--                          type, from the intent or from crm.models
--   p_owner (username), p_tag, p_important_only, p_contacted_within_days,
--   p_followup_overdue, p_store_code (group roles: one store)
--   p_sort                 created (default), updated, name, last_contact,
--                          next_followup, level; with a name search and no
--                          sort, relevance (exact, then prefix, then by
--                          similarity of crm.name_grams), best first
--   p_descending           reverses the sort (not relevance)
--
-- Sort keys: a store list (a store role, or a group role with store_code)
-- is a list of that store's relations, so created/updated are the
-- relation's; a group-wide list runs in customer order, so created/updated
-- are the customer's (each customer's rows stay together). last_contact,
-- next_followup and level are the relation's; rows without one (NULL) come
-- last in both directions. Ties are broken by the row's unique id (the
-- relation id in store lists sorted by relation columns, the customer id in
-- store lists sorted by name or relevance, customer id then relation id in
-- group-wide lists; relevance puts the lower-cased name before the ids),
-- which the cursor carries with the key, so no row repeats or goes missing
-- across pages.
--
-- The query is built with EXECUTE format(...) because its shape (which
-- filters, which sort and index) decides the plan. Every value goes through
-- USING as a parameter ($1..$23, always the same list); format() only
-- inserts fragments written in this function (column expressions, ASC/DESC,
-- comparison operators) chosen from whitelisted inputs.
CREATE FUNCTION crm.customer_query(
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
    v_name_like text;          -- $4: prefix pattern of lower(name)
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
        v_name_like := crm.like_prefix(v_name);
        v_name_grams := crm.name_grams(v_name);
        CASE coalesce(nullif(p_name_match, ''), 'fuzzy')
        WHEN 'exact' THEN
            v_name_cond := 'n.name_lower = $3';
        WHEN 'prefix' THEN
            v_name_cond := 'n.name_lower LIKE $4';
        WHEN 'fuzzy' THEN
            -- The similarity floor of the % operator, for this transaction:
            -- 0.4 keeps 王晓明 for 王小明 (0.5) and leaves out names that
            -- share one character of three (0.25 to 0.33), which would
            -- make the search return a large part of the table.
            PERFORM set_config('pg_trgm.similarity_threshold', '0.4', true);
            v_name_cond := '(n.name_lower LIKE $4 OR n.grams OPERATOR(public.%) $5)';
            -- Two Chinese characters: the trigram index lets through every
            -- name with either one (tens of thousands), but a name of two or
            -- more characters reaches 0.4 only with both, and a name of one
            -- only by being one of them. Saying so keeps the same matches
            -- and lets the index find just those.
            IF v_name ~ ('^' || v_cjk || '{2}$') THEN
                v_pair_like := ARRAY['% ' || substr(v_name, 1, 1) || ' %',
                                     '% ' || substr(v_name, 2, 1) || ' %'];
                v_pair := ARRAY[substr(v_name, 1, 1), substr(v_name, 2, 1)];
                v_name_cond := '(n.name_lower LIKE $4 OR (n.grams OPERATOR(public.%) $5'
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
            ' WHEN n.name_lower LIKE $4 THEN 2 ELSE 0 END) * 1000000'
            ' + (public.similarity(n.grams, $5) * 1000000)::integer AS rel'
            ' FROM crm.customer_names n WHERE %s), ', v_name_cond);
        v_customers := format(
            '(SELECT c0.id, nm2.rel, nm2.name_lower AS nl FROM (SELECT * FROM nm%s) nm2'
            ' CROSS JOIN LATERAL (SELECT c1.id FROM crm.customers c1'
            ' WHERE lower(c1.name) = nm2.name_lower OFFSET 0) c0)',
            CASE WHEN coalesce(nullif(p_sort, ''), 'relevance') = 'relevance'
                 THEN ' ORDER BY rel DESC, name_lower DESC' ELSE '' END);
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
        -- (EXECUTE: planned with the values, so LIKE gets its index range.)
        EXECUTE 'SELECT coalesce(array_agg(DISTINCT p.customer_id), ''{}'')'
                ' FROM crm.customer_phones p WHERE p.phone = $1 OR p.phone_rev LIKE $2'
            INTO v_phone_ids USING v_phone, v_phone_rev_like;
        v_where := v_where || 'c.id = ANY ($21)'::text;
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
    IF v_customers IS NULL THEN
        v_customers := 'crm.customers c';
    ELSIF v_tag IS NULL AND NOT coalesce(p_important_only, false)
          AND v_key NOT LIKE 'c.%' THEN
        v_customers := v_customers || ' c';
        v_key := replace(v_key, 'cand.', 'c.');
        v_tb := ARRAY(SELECT replace(t, 'cand.', 'c.') FROM unnest(v_tb) AS t);
    ELSE
        v_customers := v_customers || ' cand JOIN crm.customers c ON c.id = cand.id';
    END IF;
    IF v_store_list THEN
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

    v_sql := format(
        'WITH %spage AS (SELECT c.id AS cid, r.id AS rid, %s AS k, %s'
        ' FROM %s WHERE %s ORDER BY %s LIMIT $20)'
        ' SELECT cv.*, rv.id, rv.customer_id, rv.store_code, rv.store_name, rv.brand,'
        ' rv.owner, rv.owner_name, rv.level, rv.source, rv.first_contact_at_ms,'
        ' rv.first_contact_place, rv.first_contact_scenario, rv.first_feedback, rv.status,'
        ' rv.version, rv.created_at_ms, rv.updated_at_ms, rv.protected_until_ms,'
        ' rv.last_contact_at_ms, rv.next_followup_at_ms, rv.intents,'
        ' translate(encode(convert_to(jsonb_build_array(%L::text, %s, p.cid, p.rid, %s)::text,'
        ' ''UTF8''), ''base64''), E''\n'', '''')'
        ' FROM page p JOIN crm.customer_view cv ON cv.id = p.cid'
        ' LEFT JOIN crm.relation_view rv ON rv.id = p.rid'
        ' ORDER BY %s',
        v_names, v_key,
        (SELECT string_agg(format('%s AS t%s', e, n), ', ')
           FROM unnest(v_tb) WITH ORDINALITY AS u(e, n)),
        v_from,
        CASE WHEN cardinality(v_where) = 0 THEN 'true'
             ELSE array_to_string(v_where, ' AND ') END,
        v_order, v_sort_tag, v_key_ms,
        CASE WHEN v_sort = 'relevance' THEN 'p.t1' ELSE 'NULL::text' END, v_order);

    RETURN QUERY EXECUTE v_sql
        USING v_store, me.user_id, v_name, v_name_like, v_name_grams, v_phone,
              v_phone_rev_like, v_levels, v_sources, v_model, v_model_like, v_owner,
              v_tag, v_since, v_ck_ts, v_ck_text, v_ck_int, v_c_cid, v_c_rid, p_count,
              v_phone_ids, v_pair_like, v_pair;
END
$fn$;

-- ------------------------------------------------------------ the card

-- Raises DC404 unless the caller may open the card of p_id: group roles any
-- customer, store roles a customer with a relation at their store.
CREATE FUNCTION crm.customer_card_check(p_session_id uuid, p_id text)
RETURNS TABLE (customer_id uuid, store_id uuid)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node cannot open cards';
    END IF;
    IF p_id IS NULL OR p_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'id', MESSAGE = 'id must be a UUID';
    END IF;
    v_id := p_id::uuid;
    IF me.store_id IS NULL THEN
        PERFORM 1 FROM crm.customers c WHERE c.id = v_id;
    ELSE
        PERFORM 1 FROM crm.relations r WHERE r.customer_id = v_id AND r.store_id = me.store_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
            MESSAGE = format('no customer with id %s', p_id);
    END IF;
    RETURN QUERY SELECT v_id, me.store_id;
END
$$;

-- STMT_CUSTOMER_CARD: the whole card of one customer in one call, as rows
-- of one shape: kind, the CUSTOMER columns, the RELATION columns, then the
-- event columns e_relation_id, e_store_code, e_at_ms, e_s1 .. e_s6, e_n1.
--   kind 'head' (first): the customer and one store's relation, a row per
--     relation, the caller's store first, then by store code; one row with
--     NULL RELATION columns when the customer has no relation.
--   kind 'level': e_relation_id, e_store_code, e_at_ms, e_s1 from_level (''
--     for the first), e_s2 to_level, e_s3 changed_by, e_s4 reason
--   kind 'collision': e_relation_id (the protected relation), e_store_code
--     (its store), e_at_ms, e_s1 owner, e_s2 owner_name, e_s3 owner store
--     name, e_s4 brand, e_s5 attempted_by, e_s6 attempted store code,
--     e_n1 protected_until_ms
--   kind 'handover': e_relation_id, e_store_code, e_at_ms, e_s1 from_owner
--     ('' = the pool), e_s2 to_owner, e_s3 by, e_s4 reason
-- Event rows carry NULL CUSTOMER and RELATION columns and come by kind in
-- the order above, each newest first, from every store. DC404 as
-- crm.customer_card_check.
CREATE FUNCTION crm.customer_card(p_session_id uuid, p_id text)
RETURNS TABLE (
    kind text,
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
    e_relation_id uuid, e_store_code text, e_at_ms bigint, e_s1 text, e_s2 text, e_s3 text,
    e_s4 text, e_s5 text, e_s6 text, e_n1 bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    k record;
BEGIN
    SELECT * INTO k FROM crm.customer_card_check(p_session_id, p_id);
    RETURN QUERY
    SELECT 'head'::text, cv.*, rv.id, rv.customer_id, rv.store_code, rv.store_name, rv.brand,
           rv.owner, rv.owner_name, rv.level, rv.source, rv.first_contact_at_ms,
           rv.first_contact_place, rv.first_contact_scenario, rv.first_feedback, rv.status,
           rv.version, rv.created_at_ms, rv.updated_at_ms, rv.protected_until_ms,
           rv.last_contact_at_ms, rv.next_followup_at_ms, rv.intents,
           NULL::uuid, NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text,
           NULL::text, NULL::text, NULL::text, NULL::bigint
      FROM crm.customer_view cv
      LEFT JOIN crm.relation_view rv ON rv.customer_id = cv.id
     WHERE cv.id = k.customer_id
     ORDER BY rv.store_id IS NOT DISTINCT FROM k.store_id DESC, rv.store_code, rv.id;

    -- "LEFT JOIN ... ON false" gives the NULL CUSTOMER and RELATION columns
    -- their types.
    RETURN QUERY
    SELECT e.kind, cv.*, rv.id, rv.customer_id, rv.store_code, rv.store_name, rv.brand,
           rv.owner, rv.owner_name, rv.level, rv.source, rv.first_contact_at_ms,
           rv.first_contact_place, rv.first_contact_scenario, rv.first_feedback, rv.status,
           rv.version, rv.created_at_ms, rv.updated_at_ms, rv.protected_until_ms,
           rv.last_contact_at_ms, rv.next_followup_at_ms, rv.intents,
           e.relation_id, e.store_code, e.at_ms, e.s1, e.s2, e.s3, e.s4, e.s5, e.s6, e.n1
      FROM (
        SELECT 1 AS o, 'level'::text AS kind, lc.relation_id, s.code AS store_code,
               crm.ms(lc.changed_at) AS at_ms, coalesce(lc.from_level::text, '') AS s1,
               lc.to_level::text AS s2, coalesce(u.username, '') AS s3, lc.reason AS s4,
               ''::text AS s5, ''::text AS s6, 0::bigint AS n1, lc.changed_at AS at,
               lc.id AS seq
          FROM crm.relations r
          JOIN crm.level_changes lc ON lc.relation_id = r.id
          JOIN crm.stores s ON s.id = r.store_id
          LEFT JOIN crm.users u ON u.id = lc.changed_by
         WHERE r.customer_id = k.customer_id
        UNION ALL
        SELECT 2, 'collision', lc.owner_relation_id, os.code, crm.ms(lc.at),
               coalesce(ou.username, ''), coalesce(ou.display_name, ''), os.name, lc.brand,
               au.username, ast.code, crm.ms(lc.protected_until), lc.at, lc.id
          FROM crm.lead_collisions lc
          JOIN crm.stores os ON os.id = lc.owner_store_id
          JOIN crm.stores ast ON ast.id = lc.attempted_store_id
          JOIN crm.users au ON au.id = lc.attempted_by
          LEFT JOIN crm.users ou ON ou.id = lc.owner_id
         WHERE lc.customer_id = k.customer_id
        UNION ALL
        SELECT 3, 'handover', h.relation_id, s.code, crm.ms(h.at),
               coalesce(fu.username, ''), tu.username, bu.username, h.reason, '', '',
               0::bigint, h.at, h.id
          FROM crm.relations r
          JOIN crm.handovers h ON h.relation_id = r.id
          JOIN crm.stores s ON s.id = r.store_id
          JOIN crm.users tu ON tu.id = h.to_owner_id
          JOIN crm.users bu ON bu.id = h.by_user
          LEFT JOIN crm.users fu ON fu.id = h.from_owner_id
         WHERE r.customer_id = k.customer_id
      ) e
      LEFT JOIN crm.customer_view cv ON false
      LEFT JOIN crm.relation_view rv ON false
     ORDER BY e.o, e.at DESC, e.seq DESC;
END
$$;

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.customer_names FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.customer_names_add(), crm.level_rank(text), crm.like_prefix(text),
    crm.customer_query(uuid, text, text, text, text, text, text, text, text, text, boolean,
                       integer, boolean, text, text, boolean, text, integer),
    crm.customer_card_check(uuid, text), crm.customer_card(uuid, text) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.level_rank(text), crm.like_prefix(text),'
                   ' crm.customer_query(uuid, text, text, text, text, text, text, text, text,'
                   ' text, boolean, integer, boolean, text, text, boolean, text, integer),'
                   ' crm.customer_card_check(uuid, text), crm.customer_card(uuid, text)'
                   ' TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.customer_phones, crm.relations, crm.relation_intents,'
                   ' crm.models, crm.level_changes, crm.lead_collisions, crm.handovers,'
                   ' crm.customer_view, crm.relation_view, crm.customer_names TO %I', app);
END
$$;
