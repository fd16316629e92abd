-- 0015_store_phones: a store's phone search reads its own phones.
--
-- A search by the last digits of a phone found every customer in the group
-- whose phone ends so (crm.customer_ids_by_phone, 0007: about 100 for four
-- digits among a million customers) and then probed the caller's store's
-- relations once per customer to keep the five or so that are the store's:
-- half the cost of the request. crm.store_phones holds each phone once per
-- store that has a relation to its customer, so a store's search is one
-- range scan of its own phones. Kept by the triggers below, which nothing
-- else writes past; crmd's role has no privilege on it and reaches it only
-- through crm.customer_ids_by_phone.

CREATE TABLE crm.store_phones (
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    phone_rev text NOT NULL,
    customer_id uuid NOT NULL REFERENCES crm.customers (id)
);
-- One phone is one customer's, and a customer has one relation per store.
CREATE UNIQUE INDEX store_phones_key ON crm.store_phones (store_id, phone_rev text_pattern_ops)
    INCLUDE (customer_id);
CREATE INDEX store_phones_customer ON crm.store_phones (customer_id);

INSERT INTO crm.store_phones (store_id, phone_rev, customer_id)
SELECT r.store_id, p.phone_rev, p.customer_id
  FROM crm.relations r JOIN crm.customer_phones p ON p.customer_id = r.customer_id;

-- Statement-level, so that a bulk load (COPY) adds its rows in one insert.
CREATE FUNCTION crm.store_phones_on_relations() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    INSERT INTO crm.store_phones (store_id, phone_rev, customer_id)
    SELECT r.store_id, p.phone_rev, p.customer_id
      FROM new_rows r JOIN crm.customer_phones p ON p.customer_id = r.customer_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER relations_store_phones AFTER INSERT ON crm.relations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.store_phones_on_relations();

CREATE FUNCTION crm.store_phones_on_phones_added() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    INSERT INTO crm.store_phones (store_id, phone_rev, customer_id)
    SELECT r.store_id, p.phone_rev, p.customer_id
      FROM new_rows p JOIN crm.relations r ON r.customer_id = p.customer_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_phones_added_store_phones AFTER INSERT ON crm.customer_phones
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.store_phones_on_phones_added();

CREATE FUNCTION crm.store_phones_on_phones_removed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    DELETE FROM crm.store_phones s
     USING old_rows o
     WHERE s.customer_id = o.customer_id AND s.phone_rev = o.phone_rev;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_phones_removed_store_phones AFTER DELETE ON crm.customer_phones
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.store_phones_on_phones_removed();

-- A phone's number never changes in place (a changed phone is a removed
-- and an added one); say so rather than let store_phones drift.
CREATE FUNCTION crm.customer_phones_number_fixed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'a phone number is removed and added, never changed in place';
END
$$;
CREATE TRIGGER customer_phones_number_fixed BEFORE UPDATE OF phone, customer_id
    ON crm.customer_phones FOR EACH ROW
    WHEN (OLD.phone IS DISTINCT FROM NEW.phone OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION crm.customer_phones_number_fixed();

-- As in 0007, and a caller with a store gets the customers of its own
-- store's phones: the only ones its list would keep.
CREATE OR REPLACE FUNCTION crm.customer_ids_by_phone(p_phone text, p_rev text) RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_ids uuid[] := '{}';
    v_store uuid := nullif(current_setting('crm.store_id', true), '')::uuid;
    v_end text;
BEGIN
    IF p_phone IS NOT NULL THEN
        SELECT coalesce(array_agg(p.customer_id), '{}') INTO v_ids
          FROM crm.customer_phones p WHERE p.phone = p_phone;
    END IF;
    IF p_rev IS NOT NULL AND p_rev <> '' THEN
        v_end := left(p_rev, -1) || chr(ascii(right(p_rev, 1)) + 1);
        IF v_store IS NOT NULL THEN
            SELECT v_ids || coalesce(array_agg(s.customer_id), '{}') INTO v_ids
              FROM crm.store_phones s
             WHERE s.store_id = v_store
               AND s.phone_rev OPERATOR(pg_catalog.~>=~) p_rev
               AND s.phone_rev OPERATOR(pg_catalog.~<~) v_end;
        ELSE
            SELECT v_ids || coalesce(array_agg(p.customer_id), '{}') INTO v_ids
              FROM crm.customer_phones p
             WHERE p.phone_rev OPERATOR(pg_catalog.~>=~) p_rev
               AND p.phone_rev OPERATOR(pg_catalog.~<~) v_end;
        END IF;
    END IF;
    RETURN ARRAY(SELECT DISTINCT u FROM unnest(v_ids) AS u);
END
$$;

REVOKE ALL ON crm.store_phones FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.store_phones_on_relations(), crm.store_phones_on_phones_added(),
    crm.store_phones_on_phones_removed(), crm.customer_phones_number_fixed() FROM PUBLIC;
