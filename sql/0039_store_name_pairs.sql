-- 0039_store_name_pairs: a store list's fuzzy name search starts from the
-- names at that store (issue 3: name search latency).
--
-- A fuzzy search of a Chinese name (0016) finds every similar name in the
-- group through crm.name_pairs, ranks them, and then tries them one by
-- one, best first, against the store's relations (relations_store_name)
-- until the page is full. A name that no relation of the store carries is
-- a probe that finds nothing: for 张伟峰, 380 similar names in the bench
-- group, 128 probes for a consultant's 21 rows, most of them empty. The
-- names of one store are about a sixth of those.
--
-- * crm.store_name_pairs files each (store, name) of the store's relations
--   under the name's pair keys (crm.name_pair_keys) with the name's
--   trigram count, as crm.name_pairs does for the group. A statement
--   trigger adds the names of new relations, and a row trigger the new
--   name of a renamed relation (0026's copy). Names are never removed:
--   one a store no longer carries costs a probe that finds nothing, as
--   every name did before.
-- * crm.customer_query reads it for a store list's pairs: the same names
--   as before minus those the store does not carry, whose probes found no
--   row; the same relevance, order and cursors.
-- * It holds which names a store's relations carry, nothing else. Under
--   row-level security a caller with a store reads its own store's rows,
--   a group role all of them.
--
-- Through crmd, the name mix of crm-bench (16 connections, 10 s runs, the
-- new and the old search alternating): 719 and 714 searches a second
-- against 642 and 556, PostgreSQL CPU per search 2.32 and 2.42 ms against
-- 2.77 and 3.19. On the bench group the table has 2,328,242 rows (281 MB
-- with its key); building it took 51 s.

CREATE TABLE crm.store_name_pairs (
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    pair text NOT NULL,
    name_lower text NOT NULL,
    ntrgm smallint NOT NULL,
    PRIMARY KEY (store_id, pair, name_lower) INCLUDE (ntrgm)
);
ALTER TABLE crm.store_name_pairs ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.store_name_pairs FORCE ROW LEVEL SECURITY;
CREATE POLICY store_name_pairs_read ON crm.store_name_pairs FOR SELECT
    USING ((SELECT crm.rls_group()) OR store_id = (SELECT crm.rls_store()));

-- Files each (p_stores[i], p_names[i]) under the name's pairs; the keys
-- are computed once a name.
CREATE FUNCTION crm.store_name_pairs_add(p_stores uuid[], p_names text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    WITH sn AS (SELECT DISTINCT s AS store_id, n AS name_lower
                  FROM unnest(p_stores, p_names) AS u(s, n) WHERE n IS NOT NULL),
         keys AS (SELECT x.name_lower, k.pair,
                         cardinality(public.show_trgm(crm.name_grams(x.name_lower))) AS ntrgm
                    FROM (SELECT DISTINCT name_lower FROM sn) x,
                         unnest(crm.name_pair_keys(x.name_lower)) AS k(pair))
    INSERT INTO crm.store_name_pairs (store_id, pair, name_lower, ntrgm)
    SELECT sn.store_id, keys.pair, sn.name_lower, keys.ntrgm
      FROM sn JOIN keys ON keys.name_lower = sn.name_lower
     ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION crm.relations_name_pairs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM crm.store_name_pairs_add(ARRAY(SELECT n.store_id FROM new_rows n ORDER BY n.id),
                                         ARRAY(SELECT n.customer_name_lower FROM new_rows n
                                                ORDER BY n.id));
    ELSE
        PERFORM crm.store_name_pairs_add(ARRAY[NEW.store_id], ARRAY[NEW.customer_name_lower]);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER relations_name_pairs_on_insert AFTER INSERT ON crm.relations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.relations_name_pairs();
CREATE TRIGGER relations_name_pairs_on_rename
    AFTER UPDATE OF customer_name_lower, store_id ON crm.relations FOR EACH ROW
    WHEN (OLD.customer_name_lower IS DISTINCT FROM NEW.customer_name_lower
          OR OLD.store_id IS DISTINCT FROM NEW.store_id)
    EXECUTE FUNCTION crm.relations_name_pairs();

SELECT crm.store_name_pairs_add(array_agg(r.store_id), array_agg(r.customer_name_lower))
  FROM (SELECT DISTINCT store_id, customer_name_lower FROM crm.relations) r;

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := crm.function_patched(fn, ARRAY[
        [$x$                ' FROM crm.name_pairs np WHERE np.pair = ANY ($24)'
$x$,
         $x$                || CASE WHEN v_store_list
                        THEN ' FROM crm.store_name_pairs np WHERE np.store_id = $1'
                             ' AND np.pair = ANY ($24)'
                        ELSE ' FROM crm.name_pairs np WHERE np.pair = ANY ($24)' END ||
$x$]]);
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE def;
    EXECUTE format('GRANT SELECT ON crm.store_name_pairs TO %I', app);
END
$$;
REVOKE ALL ON crm.store_name_pairs FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.store_name_pairs_add(uuid[], text[]), crm.relations_name_pairs()
    FROM PUBLIC;
