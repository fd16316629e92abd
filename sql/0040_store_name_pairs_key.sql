-- 0040_store_name_pairs_key: crm.store_name_pairs (0039) without its
-- foreign key to crm.stores.
--
-- The table is filed only by triggers from crm.relations, whose store_id
-- already references crm.stores, and stores are never deleted; the key
-- checked each filed row once more. Filing all 1,149,546 relations of the
-- bench group (1,000,000 customers, 2,328,242 rows) took 45.7 s with it
-- and 34.8 s without, on a copy of a freshly seeded group; seeding such a
-- group files them all during the relations' COPY.
ALTER TABLE crm.store_name_pairs DROP CONSTRAINT store_name_pairs_store_id_fkey;
