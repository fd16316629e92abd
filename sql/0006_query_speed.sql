-- 0006_query_speed: cheaper customer lists (dealercrm issue 3). Same
-- functions, same results; only how PostgreSQL gets there changes.
--
-- Measured on a seeded group of 1,000,000 customers (ops/bench), one
-- consultant's store list per call, crm.customer_query at one client:
--
-- * crm.ms was not inlined: extract(epoch FROM timestamptz) is STABLE, so
--   the planner refuses to inline it into an IMMUTABLE function, and every
--   call ran as a SQL function of its own: about 8 calls per row of a page
--   through the customer and relation views (168 calls for a 21-row page;
--   157,752 calls for 939 filter pages in pg_stat_statements). The body
--   below gives the same number through immutable functions only (the
--   wall-clock time in UTC, whose epoch is the instant's epoch), so it is
--   inlined into the views and every query that uses it.
--
-- * A store list in the default order (created) with filters on the
--   relation (level, contacted within N days, owner) walked
--   relations_store_created and read each relation's heap row to test the
--   filters: 894 of 1,530 buffers of a "contacted within 30 days, level H
--   or A, SUV" page. The index below carries the columns those filters
--   read (owner_id, level, last_contact_at, store_id) and the customer the page joins, so the walk
--   is an index-only scan: 26 buffers for the same page.

CREATE OR REPLACE FUNCTION crm.ms(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT floor(extract(epoch FROM t AT TIME ZONE 'UTC') * 1000)::bigint $$;

CREATE INDEX relations_store_created_cover ON crm.relations (store_id, created_at, id)
    INCLUDE (customer_id, owner_id, level, last_contact_at);
-- It has the key of relations_store_created (0002) and more: that one
-- would only cost every write to crm.relations.
DROP INDEX crm.relations_store_created;
