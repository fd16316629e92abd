-- 0037_list_copies: a customer row carries its phones as crm.customer_view
-- shows them, and a relation row its intents as crm.relation_view shows
-- them (issue 3: list latency).
--
-- Every customer list (name, phone, filters) ends by reading its page of
-- 21 customers through the two views. Each row ran two correlated
-- subqueries: the customer's phones and the relation's intents, each an
-- index scan under its table's policy (one more index probe of
-- crm.relations per row) and an ordered string_agg (a sort begun and
-- ended per row: PostgreSQL 15 sorts an aggregate's ORDER BY input even
-- when the index already returns it in that order). pgbench with one
-- client as crmd's role, a consultant's page of 21 found by a name search
-- (`BEGIN; set the scope; SELECT <the page query>; COMMIT`, 6 s runs,
-- alternating, two rounds): 1.80 to 2.20 ms with the two subqueries, 1.16
-- to 1.57 ms with both replaced by NULL, 0.36 to 0.47 ms for the scope
-- alone. So the two columns were about 40 % of the page's reading.
--
-- * crm.customers gets phones_shown and phones_masked: the view's phones
--   column for a reader who sees contacts and for one who does not, built
--   with the view's own expression (crm.mask_phone, U+001E and U+001F,
--   primary first, then by when added, then by number). crm.relations
--   gets intents_text, the view's intents column. The views read them.
-- * The copies are only written from the phone and intent rows: after
--   any insert, update or delete of crm.customer_phones or
--   crm.relation_intents, one statement rewrites the copies of the
--   customers or relations it touched (both sides of a move). A write to
--   a copy from anywhere else (any statement not run by a trigger) is
--   replaced by the value computed from the rows; a new customer or
--   relation starts with none (its phones and intents can only be
--   inserted after it: foreign keys).
-- * Visibility is unchanged: a customer's phones were readable exactly
--   when the customer is (customer_phones_read is customers_read without
--   the store condition on its last branch, which customers_read keeps),
--   and a relation's intents exactly when the relation is
--   (relation_intents_read is an EXISTS on crm.relations under its
--   policy). Masking is decided per reader as before; it only chooses
--   between the two copies.
-- * A later change of crm.mask_phone must rewrite phones_masked (run
--   crm.customer_phones_copy over every customer).
--
-- With the copies the same page reads in 0.98 to 1.25 ms (three rounds
-- against 1.50 to 1.84 for the old subqueries with their sorts taken away
-- by an index). Through crmd, 16 connections, 10 s runs of crm-bench
-- against the bench group: name searches 539 -> 618 a second, filtered
-- lists 548 -> 738 (docs/BENCHMARKS.md has the full runs).
--
-- The migration writes every customer and every relation once: 3 min 51 s
-- and 4 min 0 s on the bench group (1,000,000 customers, 1,150,000
-- relations with their 17 indexes, 2 cores). crmctl seed writes the copies
-- with the rows.

ALTER TABLE crm.customers
    ADD COLUMN phones_shown text,
    ADD COLUMN phones_masked text;
ALTER TABLE crm.relations ADD COLUMN intents_text text;

-- ------------------------------------------------------------ the copies

-- The phones of each customer in p_ids, in crm.customer_view's form:
-- (customer_id, shown, masked); no row for a customer without phones.
CREATE FUNCTION crm.customer_phones_text(p_ids uuid[])
RETURNS TABLE (customer_id uuid, shown text, masked text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    SELECT p.customer_id,
           string_agg(p.phone || E'\x1e' || p.kind || E'\x1e' || p.is_primary::text, E'\x1f'
                      ORDER BY p.is_primary DESC, p.added_at, p.phone),
           string_agg(crm.mask_phone(p.phone) || E'\x1e' || p.kind || E'\x1e'
                      || p.is_primary::text, E'\x1f'
                      ORDER BY p.is_primary DESC, p.added_at, p.phone)
      FROM crm.customer_phones p
     WHERE p.customer_id = ANY (p_ids)
     GROUP BY p.customer_id
$$;

-- The intents of each relation in p_ids, in crm.relation_view's form.
CREATE FUNCTION crm.relation_intents_text(p_ids uuid[])
RETURNS TABLE (relation_id uuid, intents text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    SELECT i.relation_id,
           string_agg(concat_ws(E'\x1e', i.model, i.body_type, i.configuration,
                                i.budget_min, i.budget_max, i.needs), E'\x1f'
                      ORDER BY i.position)
      FROM crm.relation_intents i
     WHERE i.relation_id = ANY (p_ids)
     GROUP BY i.relation_id
$$;

-- Rewrite the copies of the customers (relations) in p_ids that differ
-- from their rows. Run by the triggers below, whose statements the guards
-- let through.
CREATE FUNCTION crm.customer_phones_copy(p_ids uuid[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    UPDATE crm.customers c
       SET phones_shown = t.shown, phones_masked = t.masked
      FROM unnest(p_ids) AS a(id)
      LEFT JOIN crm.customer_phones_text(p_ids) t ON t.customer_id = a.id
     WHERE c.id = a.id
       AND (c.phones_shown IS DISTINCT FROM t.shown OR c.phones_masked IS DISTINCT FROM t.masked)
$$;

CREATE FUNCTION crm.relation_intents_copy(p_ids uuid[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    UPDATE crm.relations r
       SET intents_text = t.intents
      FROM unnest(p_ids) AS a(id)
      LEFT JOIN crm.relation_intents_text(p_ids) t ON t.relation_id = a.id
     WHERE r.id = a.id
       AND r.intents_text IS DISTINCT FROM t.intents
$$;

-- After a statement on crm.customer_phones or crm.relation_intents: the
-- copies of the rows it touched (before and after), named by the column
-- given as the trigger's argument.
CREATE FUNCTION crm.list_copies_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_ids := ARRAY(SELECT DISTINCT (to_jsonb(n) ->> TG_ARGV[0])::uuid FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        v_ids := ARRAY(SELECT DISTINCT (to_jsonb(o) ->> TG_ARGV[0])::uuid FROM old_rows o);
    ELSE
        v_ids := ARRAY(SELECT (to_jsonb(o) ->> TG_ARGV[0])::uuid FROM old_rows o
                       UNION SELECT (to_jsonb(n) ->> TG_ARGV[0])::uuid FROM new_rows n);
    END IF;
    IF TG_TABLE_NAME = 'customer_phones' THEN
        PERFORM crm.customer_phones_copy(v_ids);
    ELSE
        PERFORM crm.relation_intents_copy(v_ids);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_phones_copy_on_insert AFTER INSERT ON crm.customer_phones
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.list_copies_changed('customer_id');
CREATE TRIGGER customer_phones_copy_on_update AFTER UPDATE ON crm.customer_phones
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.list_copies_changed('customer_id');
CREATE TRIGGER customer_phones_copy_on_delete AFTER DELETE ON crm.customer_phones
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.list_copies_changed('customer_id');
CREATE TRIGGER relation_intents_copy_on_insert AFTER INSERT ON crm.relation_intents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.list_copies_changed('relation_id');
CREATE TRIGGER relation_intents_copy_on_update AFTER UPDATE ON crm.relation_intents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.list_copies_changed('relation_id');
CREATE TRIGGER relation_intents_copy_on_delete AFTER DELETE ON crm.relation_intents
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.list_copies_changed('relation_id');

-- The guards: a new customer or relation has no phones or intents yet; a
-- copy written by a statement outside a trigger is computed again from the
-- rows.
CREATE FUNCTION crm.list_copies_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers' THEN
        NEW.phones_shown := NULL;
        NEW.phones_masked := NULL;
        IF TG_OP = 'UPDATE' THEN
            SELECT t.shown, t.masked INTO NEW.phones_shown, NEW.phones_masked
              FROM crm.customer_phones_text(ARRAY[NEW.id]) t;
        END IF;
    ELSE
        NEW.intents_text := NULL;
        IF TG_OP = 'UPDATE' THEN
            SELECT t.intents INTO NEW.intents_text
              FROM crm.relation_intents_text(ARRAY[NEW.id]) t;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER customers_phones_guard_insert BEFORE INSERT ON crm.customers
    FOR EACH ROW WHEN (NEW.phones_shown IS NOT NULL OR NEW.phones_masked IS NOT NULL)
    EXECUTE FUNCTION crm.list_copies_guard();
CREATE TRIGGER customers_phones_guard_update
    BEFORE UPDATE OF phones_shown, phones_masked ON crm.customers
    FOR EACH ROW WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION crm.list_copies_guard();
CREATE TRIGGER relations_intents_guard_insert BEFORE INSERT ON crm.relations
    FOR EACH ROW WHEN (NEW.intents_text IS NOT NULL)
    EXECUTE FUNCTION crm.list_copies_guard();
CREATE TRIGGER relations_intents_guard_update BEFORE UPDATE OF intents_text ON crm.relations
    FOR EACH ROW WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION crm.list_copies_guard();

-- Every copy, once, with the guards off (they would compute each row
-- again) and without 0003's trigger that files the names of updated
-- customers (the names do not change).
ALTER TABLE crm.customers DISABLE TRIGGER customers_phones_guard_update;
ALTER TABLE crm.customers DISABLE TRIGGER customers_names_on_update;
SELECT crm.customer_phones_copy(ARRAY(SELECT DISTINCT p.customer_id FROM crm.customer_phones p));
ALTER TABLE crm.customers ENABLE TRIGGER customers_names_on_update;
ALTER TABLE crm.customers ENABLE TRIGGER customers_phones_guard_update;
ALTER TABLE crm.relations DISABLE TRIGGER relations_intents_guard_update;
SELECT crm.relation_intents_copy(ARRAY(SELECT DISTINCT i.relation_id FROM crm.relation_intents i));
ALTER TABLE crm.relations ENABLE TRIGGER relations_intents_guard_update;

-- ------------------------------------------------------------ the views

-- 0016's view; phones from the copies.
CREATE OR REPLACE VIEW crm.customer_view WITH (security_invoker = true) AS
SELECT c.id, c.name,
       CASE WHEN m.unmasked THEN c.phone ELSE crm.mask_phone(c.phone) END AS phone,
       c.version,
       crm.ms(c.created_at) AS created_at_ms, crm.ms(c.updated_at) AS updated_at_ms,
       coalesce(u.username, '') AS created_by, coalesce(s.code, '') AS store_code,
       c.gender, coalesce(c.birth_year, 0) AS birth_year, c.age_band,
       CASE WHEN m.unmasked THEN c.wechat ELSE crm.mask_wechat(c.wechat) END AS wechat,
       c.email, c.occupation, c.region, array_to_string(c.tags, E'\x1f') AS tags, c.important,
       CASE WHEN m.unmasked THEN c.phones_shown ELSE c.phones_masked END AS phones,
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

-- 0002's view; intents from the copy.
CREATE OR REPLACE VIEW crm.relation_view WITH (security_invoker = true) AS
SELECT r.id, r.customer_id, s.code AS store_code, s.name AS store_name, s.brand,
       coalesce(u.username, '') AS owner, coalesce(u.display_name, '') AS owner_name,
       r.level::text AS level, r.source, coalesce(crm.ms(r.first_contact_at), 0) AS first_contact_at_ms,
       r.first_contact_place, r.first_contact_scenario, r.first_feedback, r.status,
       r.version, crm.ms(r.created_at) AS created_at_ms, crm.ms(r.updated_at) AS updated_at_ms,
       crm.ms(r.protected_until) AS protected_until_ms,
       coalesce(crm.ms(r.last_contact_at), 0) AS last_contact_at_ms,
       coalesce(crm.ms(r.next_followup_at), 0) AS next_followup_at_ms,
       r.intents_text AS intents,
       r.store_id, r.owner_id
  FROM crm.relations r
  JOIN crm.stores s ON s.id = r.store_id
  LEFT JOIN crm.users u ON u.id = r.owner_id;

REVOKE ALL ON FUNCTION crm.customer_phones_text(uuid[]), crm.customer_phones_copy(uuid[]),
    crm.relation_intents_text(uuid[]), crm.relation_intents_copy(uuid[]),
    crm.list_copies_changed(), crm.list_copies_guard()
    FROM PUBLIC;
