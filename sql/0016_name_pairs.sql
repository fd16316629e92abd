-- 0016_name_pairs: similar Chinese names found by their character pairs,
-- and the contact masking of crm.customer_view without a function call
-- per row (issue 3: list latency).
--
-- * A fuzzy name search ranks names by pg_trgm's similarity of
--   crm.name_grams, where every Chinese character is a word of its own and
--   so two trigrams of its own: for a name of Chinese characters only,
--   with k distinct characters, against a name B sharing m of them, the
--   similarity is 2m / (2k + t(B) - 2m), t(B) being B's trigram count.
--   At the 0.4 floor a match shares at least two characters (or, for
--   k = 2, is a name of one character that is one of the two). So every
--   match is found by looking up the query's character pairs in
--   crm.name_pairs (each name's pairs of distinct characters, and its
--   only character when it has one), and its similarity follows from the
--   number of pairs it shares, without pg_trgm. The trigram search read
--   the posting lists of common characters (王 is in a tenth of all
--   names) and ranked each candidate with similarity(): 6 ms of CPU per
--   search on the 275,000 names of a million-customer group, against 0.4
--   here, with the same names and the same relevance in millionths
--   (checked against the trigram path over 500 names; test_query checks
--   both on its own data). Names with other characters keep the trigram
--   path.
-- * crm.customer_view decided masking by calling crm.contact_unmasked
--   (PL/pgSQL) once per row; the same rule written into the view is
--   planned once with the query; and its masks are inlined (below): the
--   customer rows of a 21-row page cost 0.42 ms of CPU instead of 0.68.

-- ------------------------------------------------------------ pairs

-- A name's distinct Chinese characters (crm.name_grams's set), in byte
-- order.
CREATE FUNCTION crm.name_cjk_chars(p_name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(array_agg(DISTINCT ch COLLATE "C"), '{}')
      FROM regexp_split_to_table(p_name, '') AS ch
     WHERE ch ~ '[\u2E80-\u2FDF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F]'
$$;

-- The keys a name is filed under: each pair of its distinct Chinese
-- characters (in byte order, so a pair has one spelling), or its one
-- character when it has only one.
CREATE FUNCTION crm.name_pair_keys(p_name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE WHEN cardinality(a) = 1 THEN a
                ELSE ARRAY(SELECT a[i] || a[j]
                             FROM generate_subscripts(a, 1) AS i, generate_subscripts(a, 1) AS j
                            WHERE i < j ORDER BY i, j) END
      FROM crm.name_cjk_chars(p_name) AS a
$$;

-- ntrgm: the name's trigram count (t(B) above). Index-only: the search
-- reads nothing else.
CREATE TABLE crm.name_pairs (
    pair text NOT NULL,
    name_lower text NOT NULL,
    ntrgm smallint NOT NULL,
    PRIMARY KEY (pair, name_lower) INCLUDE (ntrgm)
);

-- Names are only ever added to crm.customer_names (0003); their pairs
-- with them, in the same statement's transaction. Definer: crmd reads
-- the table and writes neither.
CREATE FUNCTION crm.name_pairs_add() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    INSERT INTO crm.name_pairs (pair, name_lower, ntrgm)
    SELECT k.pair, n.name_lower, cardinality(public.show_trgm(n.grams))
      FROM new_names n, unnest(crm.name_pair_keys(n.name_lower)) AS k(pair)
     ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_names_pairs AFTER INSERT ON crm.customer_names
    REFERENCING NEW TABLE AS new_names
    FOR EACH STATEMENT EXECUTE FUNCTION crm.name_pairs_add();
INSERT INTO crm.name_pairs (pair, name_lower, ntrgm)
SELECT k.pair, n.name_lower, cardinality(public.show_trgm(n.grams))
  FROM crm.customer_names n, unnest(crm.name_pair_keys(n.name_lower)) AS k(pair)
 ORDER BY 1, 2;

-- ------------------------------------------------------------ the search

-- crm.customer_query as 0009 left it, with a third way of finding the
-- names of a fuzzy search: a name of two or more distinct Chinese
-- characters and nothing else is looked up by its pairs ($24: the pairs,
-- and for a name of two characters each of them; $25: k). The names
-- starting with it are found and ranked as before; a name that is both
-- keeps its better relevance.
DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := pg_get_functiondef(fn);
    patches constant text[][] := ARRAY[
        -- the two new parameters of the page query
        [$x$    v_pair text[];             -- $23  LIKE patterns on grams and as names
$x$,
         $x$    v_pair text[];             -- $23  LIKE patterns on grams and as names
    v_pair_keys text[];        -- $24: a Chinese name's pair keys (0016)
    v_cjk_count integer;       -- $25: its distinct characters
$x$],
        -- a Chinese name takes the pairs' way
        [$x$                               ' OR n.name_lower = ANY ($23))';
            END IF;
$x$,
         $x$                               ' OR n.name_lower = ANY ($23))';
            END IF;
            IF v_name ~ ('^' || v_cjk || '+$') THEN
                v_cjk_count := cardinality(crm.name_cjk_chars(v_name));
                IF v_cjk_count >= 2 THEN
                    v_pair_keys := crm.name_pair_keys(v_name)
                        || CASE WHEN v_cjk_count = 2 THEN crm.name_cjk_chars(v_name)
                                ELSE '{}'::text[] END;
                    v_name_cond := NULL;
                END IF;
            END IF;
$x$],
        -- its CTE of names
        [$x$        v_names := format(
            'nm AS MATERIALIZED (SELECT n.name_lower, (CASE WHEN n.name_lower = $3 THEN 4'
$x$,
         $x$        IF v_name_cond IS NULL THEN
            v_names := 'nm AS MATERIALIZED (SELECT x.name_lower, max(x.rel) AS rel FROM ('
                'SELECT n.name_lower, (CASE WHEN n.name_lower = $3 THEN 4 ELSE 2 END) * 1000000'
                ' + (public.similarity(n.grams, $5) * 1000000)::integer AS rel'
                ' FROM crm.customer_names n WHERE n.name_lower OPERATOR(pg_catalog.~>=~) $3'
                ' AND n.name_lower OPERATOR(pg_catalog.~<~) $4'
                ' UNION ALL SELECT s.name_lower, (s.sim * 1000000)::integer FROM ('
                'SELECT p.name_lower, (2 * p.m)::real / (2 * $25 + p.ntrgm - 2 * p.m)::real AS sim'
                ' FROM (SELECT np.name_lower, np.ntrgm, CASE WHEN min(char_length(np.pair)) = 1'
                ' THEN 1 ELSE round((1 + sqrt(1 + 8 * count(*))) / 2)::integer END AS m'
                ' FROM crm.name_pairs np WHERE np.pair = ANY ($24)'
                ' GROUP BY np.name_lower, np.ntrgm) p) s WHERE s.sim >= 0.4'
                ') x GROUP BY x.name_lower), ';
        ELSE
        v_names := format(
            'nm AS MATERIALIZED (SELECT n.name_lower, (CASE WHEN n.name_lower = $3 THEN 4'
$x$],
        [$x$            ' FROM crm.customer_names n WHERE %s), ', v_name_cond);
$x$,
         $x$            ' FROM crm.customer_names n WHERE %s), ', v_name_cond);
        END IF;
$x$],
        -- and the parameters' types and values
        [$x$                       ' uuid, integer, uuid[], text[], text[]) AS %s', v_plan, v_sql);
$x$,
         $x$                       ' uuid, integer, uuid[], text[], text[], text[], integer) AS %s',
                       v_plan, v_sql);
$x$],
        [$x$                   ' %L, %L, %L, %L, %L, %L, %L, %L)', v_plan,
$x$,
         $x$                   ' %L, %L, %L, %L, %L, %L, %L, %L, %L, %L)', v_plan,
$x$],
        -- statements prepared by the former definition, in connections
        -- open across the migration, take two parameters fewer
        [$x$    v_plan := 'crm_list_' || md5(v_sql);
$x$,
         $x$    v_plan := 'crm_list16_' || md5(v_sql);
$x$],
        [$x$                   v_phone_ids, v_pair_like, v_pair)
$x$,
         $x$                   v_phone_ids, v_pair_like, v_pair, v_pair_keys, v_cjk_count)
$x$]];
    i integer;
BEGIN
    FOR i IN 1 .. array_length(patches, 1) LOOP
        IF (char_length(def) - char_length(replace(def, patches[i][1], '')))
           <> char_length(patches[i][1]) THEN
            RAISE EXCEPTION 'crm.customer_query is not as 0016 expects (patch %)', i;
        END IF;
        def := replace(def, patches[i][1], patches[i][2]);
    END LOOP;
    EXECUTE def;
END
$$;

-- ------------------------------------------------------------ masking

-- 0009's view; crm.contact_unmasked's rule (which stays, for the
-- functions that call it) written in place.
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
          FROM crm.customer_phones p WHERE p.customer_id = c.id) AS phones,
       c.erased_at IS NOT NULL AS erased, coalesce(crm.ms(c.erased_at), 0) AS erased_at_ms
  FROM crm.customers c
  CROSS JOIN LATERAL (
      SELECT CASE
             WHEN current_setting('crm.contact_unmasked', true) = 'on'
                  OR current_setting('crm.role', true) IN ('group_admin', 'store_node') THEN true
             WHEN current_setting('crm.role', true) = 'consultant' THEN
                  EXISTS (SELECT 1 FROM crm.relations r
                           WHERE r.customer_id = c.id
                             AND r.owner_id = nullif(current_setting('crm.user_id', true), '')::uuid)
             WHEN current_setting('crm.role', true) IN ('sales_manager', 'store_manager') THEN
                  c.store_id = nullif(current_setting('crm.store_id', true), '')::uuid
                  OR EXISTS (SELECT 1 FROM crm.relations r
                              WHERE r.customer_id = c.id
                                AND r.store_id = nullif(current_setting('crm.store_id', true), '')::uuid)
             ELSE false END AS unmasked
      OFFSET 0) m
  LEFT JOIN crm.users u ON u.id = c.created_by
  LEFT JOIN crm.stores s ON s.id = c.store_id;

-- Masks are computed for every phone of every row a list shows. Declared
-- STRICT, a SQL function whose body is a CASE (not strict itself) is not
-- inlined, and each call ran its own executor: a quarter of a page's
-- customer reads. Without STRICT they inline; a NULL gives NULL as before
-- (every branch of both CASEs is NULL for a NULL argument).
ALTER FUNCTION crm.mask_phone(text) CALLED ON NULL INPUT;
ALTER FUNCTION crm.mask_wechat(text) CALLED ON NULL INPUT;

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.name_pairs FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.name_pairs_add(), crm.name_cjk_chars(text), crm.name_pair_keys(text)
    FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT SELECT ON crm.name_pairs TO %I', app);
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.name_cjk_chars(text), crm.name_pair_keys(text)'
                   ' TO %I', app);
END
$$;
