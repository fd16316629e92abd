-- 0041_consultant_lists: a consultant's store list by creation reads their
-- own rows and the store's unowned ones from an index of their own, and
-- crm.relations keeps its visibility map current (issue 3: filtered list
-- latency).
--
-- A consultant sees, at their store, the relations they own and those no
-- one owns (0012). Their list by creation read relations_store_created_cover
-- from the store's first row and dropped every row of the other
-- consultants: for crm-bench's filtered list (levels H and A, contacted
-- within 30 days, an SUV intended; the bench group, 20 stores of about
-- 57,000 relations, 6 consultants each), 1,604 index entries for 21 rows.
--
-- * relations_store_owner_created orders a store's relations by owner
--   (none as the nil uuid, so that "no owner" is one key an equality
--   reaches), then by creation, and carries what the list's conditions
--   read. crm.customer_query reads the consultant's range and the
--   unowned range, each in the index's order, and merges them: 441
--   entries for the same 21 rows. It replaces relations_store_owner
--   (store_id, owner_id), whose lookups relations_owner serves as well:
--   an owner is a user of one store.
-- * crm.relations is vacuumed after 2 % of its rows changed instead of
--   20 %. A follow-up updates its relation, so the table changes all day;
--   a page changed since the last vacuum is not all-visible, and an
--   index-only scan reads the row from the heap for each of its entries.
--   On the bench group after a few hundred thousand follow-ups, the
--   filtered list above read 2,479 buffers with 1,604 heap fetches, and
--   913 after VACUUM.
--
-- On one consultant of the bench group (pgbench, one client, the page
-- query alone as superuser, alternating): 0.27-0.28 ms a page against
-- 0.37-0.39.

CREATE INDEX relations_store_owner_created ON crm.relations
    (store_id, owner_id, created_at, id) INCLUDE (customer_id, level, last_contact_at);
CREATE INDEX relations_store_unowned_created ON crm.relations (store_id, created_at, id)
    INCLUDE (customer_id, owner_id, level, last_contact_at) WHERE owner_id IS NULL;
DROP INDEX crm.relations_store_owner;
ALTER TABLE crm.relations SET (autovacuum_vacuum_scale_factor = 0.02,
                               autovacuum_analyze_scale_factor = 0.02);
ANALYZE crm.relations;

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := crm.function_patched(fn, ARRAY[
        [$x$    ELSE
        v_page := format('SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $20',
                         v_cols, v_from, v_cond, v_order);
    END IF;
$x$,
         $x$    ELSIF v_store_list AND me.role = 'consultant' AND v_sort = 'created'
          AND v_names = '' AND v_phone_ids IS NULL
          AND strpos(v_cond, '(r.owner_id = $2 OR r.owner_id IS NULL)') > 0 THEN
        -- A consultant's list by creation (0041): their rows from
        -- relations_store_owner_created and the unowned ones from
        -- relations_store_unowned_created, each in its index's order,
        -- merged.
        v_page := format(
            'SELECT * FROM ((SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $20)'
            ' UNION ALL (SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $20)) u'
            ' ORDER BY %s LIMIT $20',
            v_cols, v_from,
            replace(v_cond, '(r.owner_id = $2 OR r.owner_id IS NULL)', 'r.owner_id = $2'),
            v_order,
            v_cols, v_from,
            replace(v_cond, '(r.owner_id = $2 OR r.owner_id IS NULL)', 'r.owner_id IS NULL'),
            v_order, v_order);
    ELSE
        v_page := format('SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $20',
                         v_cols, v_from, v_cond, v_order);
    END IF;
$x$]]);
BEGIN
    EXECUTE def;
END
$$;
