-- 0012_row_level_security: PostgreSQL enforces the scope of customer data
-- again, under the handlers' checks (DESIGN.md "Security", dealercrm
-- issue 4).
--
-- crmd's role (crm.app_user) is not a superuser, owns no table and has no
-- BYPASSRLS (checked at the end). Every request function starts with
-- crm.session_begin, which sets for its transaction only
-- (set_config(..., true)) crm.role, crm.store_id ('' for group roles) and
-- crm.user_id; the policies read those. A connection that began no session
-- sees no customer row and can write none.
--
-- Who sees what (one rule, crm.customer_access, decides for customers):
--   relations   group roles: all. Store roles: their store's (a consultant:
--               own relations and the store pool), and the relations at
--               other stores of a customer they may see: the card and the
--               replies show a customer's history at every store.
--               Written only by their own store (a consultant: own and pool).
--   customers,  group roles: all. Store roles: customers with a relation they
--   phones      see at their store, or that their store registered and has
--               no relation to (crm.customer_access). Written when
--               customer_access says 'write'.
--   intents, level history, handovers: follow their relation; written only
--               by the relation's store.
--   collisions  group roles; the stores involved; anyone who may see the
--               customer.
--
-- What must cross those lines runs as definer, each narrow and each doing
-- its own check:
--   crm.customer_access      the scope rule itself (the policies call it)
--   crm.find_customer        is this phone a customer anywhere in the group
--   crm.customer_ids_by_phone  (0007) ids for a phone search
--   crm.phone_taken          is this phone another customer's (an update)
--   crm.customer_exists,     a customer, a relation by id, so that another
--   crm.relation_row         store's answers "not yours" (403) rather than
--                            "no such" (404), as before
--   crm.customer_create      lead protection: who protects this customer at
--                            the other stores of the brand
-- Everything else a request does (lists, cards, gets, updates, level
-- changes, handovers) runs as crmd's role under the policies: a wrong check
-- in a handler or a request function still cannot reach another store's
-- rows. Reveal, export and erase (0005, 0009), the audit log (0004) and the
-- outbox (0001, 0011) were definer before this and stay so.
--
-- Policies only call functions that are cheap per row and keep the index
-- conditions of the lists usable: the planner uses a condition of a query
-- on a table with policies as an index condition only when it is
-- leakproof (=, <, > on uuid, text, timestamps are; LIKE, lower() and
-- pg_trgm's operators are not), which is why 0007 searches phones by range,
-- names by stored lower-cased columns, and keeps LIKE and trigrams on
-- crm.customer_names (a list of names, no customer in it, no policy).

-- ------------------------------------------------------------ the caller

-- Inlined into the policies (one SQL expression each).
CREATE FUNCTION crm.rls_role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('crm.role', true), '') $$;

CREATE FUNCTION crm.rls_store() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('crm.store_id', true), '')::uuid $$;

CREATE FUNCTION crm.rls_user() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('crm.user_id', true), '')::uuid $$;

CREATE FUNCTION crm.rls_group() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('crm.role', true) IN ('group_admin', 'group_analyst'),
                      false) $$;

-- ------------------------------------------------------------ definer helpers

-- The rule of 0002, unchanged, now PL/pgSQL (its plans kept per
-- connection: the policies call it per row) and definer (it must see the
-- relations the policies hide to answer, and a policy calling it must not
-- recurse into itself).
CREATE OR REPLACE FUNCTION crm.customer_access(p_customer_id uuid, p_user_id uuid, p_role text,
                                               p_store_id uuid)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    IF p_role = 'group_admin' THEN
        RETURN 'write';
    ELSIF p_role = 'group_analyst' THEN
        RETURN 'read';
    ELSIF p_store_id IS NULL OR p_role IS NULL OR p_role = 'store_node' THEN
        RETURN NULL;
    ELSIF EXISTS (SELECT 1 FROM crm.relations r
                   WHERE r.customer_id = p_customer_id AND r.store_id = p_store_id
                     AND (p_role <> 'consultant' OR r.owner_id IS NULL
                          OR r.owner_id = p_user_id)) THEN
        RETURN 'write';
    ELSIF EXISTS (SELECT 1 FROM crm.customers c
                   WHERE c.id = p_customer_id AND c.store_id = p_store_id
                     AND NOT EXISTS (SELECT 1 FROM crm.relations r
                                      WHERE r.customer_id = c.id
                                        AND r.store_id = p_store_id)) THEN
        RETURN 'read';
    END IF;
    RETURN NULL;
END
$$;

-- The caller's access to a customer, from the transaction's scope.
CREATE FUNCTION crm.rls_customer(p_customer_id uuid) RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT crm.customer_access(p_customer_id, crm.rls_user(), crm.rls_role(), crm.rls_store()) $$;

ALTER FUNCTION crm.find_customer(uuid, text[]) SECURITY DEFINER SET search_path = crm, pg_temp;
ALTER FUNCTION crm.customer_create SECURITY DEFINER SET search_path = crm, pg_temp;

-- The first of p_phones that belongs to a customer other than p_id.
CREATE FUNCTION crm.phone_taken(p_phones text[], p_id uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    SELECT p.phone FROM crm.customer_phones p
     WHERE p.phone = ANY (p_phones) AND p.customer_id <> p_id
     ORDER BY array_position(p_phones, p.phone) LIMIT 1
$$;

-- One relation (all NULL when there is none), locked for the write that
-- follows when p_lock. The caller checks the access (crm.relation_check_access
-- and the like); the write itself runs under the policies.
CREATE FUNCTION crm.relation_row(p_id uuid, p_lock boolean) RETURNS crm.relations
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    r crm.relations;
BEGIN
    IF p_lock THEN
        SELECT x.* INTO r FROM crm.relations x WHERE x.id = p_id FOR NO KEY UPDATE;
    ELSE
        SELECT x.* INTO r FROM crm.relations x WHERE x.id = p_id;
    END IF;
    RETURN r;
END
$$;

-- Whether a customer exists at all: "not yours" (403) rather than "none"
-- (404) for another store's customer.
CREATE FUNCTION crm.customer_exists(p_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM crm.customers c WHERE c.id = p_id) $$;

-- The functions of 0002 that read a customer, a relation or a phone across
-- stores, now through the helpers above; otherwise as they were.

CREATE OR REPLACE FUNCTION crm.customer_get(p_session_id uuid, p_id text)
RETURNS TABLE (outcome text, kind text, message text, cu crm.customer_view,
               rel crm.relation_view, col crm.lead_collision_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    IF NOT crm.customer_exists(v_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    IF crm.customer_access(v_id, me.user_id, me.role, me.store_id) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = crm.customer_denied(me.role);
    END IF;
    RETURN QUERY SELECT * FROM crm.customer_reply('ok', '', v_id, me.store_id, NULL);
END
$$;


CREATE OR REPLACE FUNCTION crm.relation_get(p_session_id uuid, p_id text, p_models text)
RETURNS TABLE (rel crm.relation_view, body_types text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    r crm.relations;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    r := crm.relation_row(v_id, false);
    IF r.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such relation';
    END IF;
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, false);
    RETURN QUERY
    SELECT v, crm.model_body_types(v.brand, p_models)
      FROM crm.relation_view v WHERE v.id = v_id;
END
$$;


CREATE OR REPLACE FUNCTION crm.relation_update(
    p_session_id uuid, p_id text, p_version bigint, p_source text,
    p_first_contact_at_ms bigint, p_first_contact_place text, p_first_contact_scenario text,
    p_first_feedback text, p_status text, p_intents text, p_at_ms bigint, p_payloads bytea)
RETURNS TABLE (outcome text, rel crm.relation_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    r crm.relations;
    v_brand text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    IF p_at_ms IS NULL OR p_payloads IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
            MESSAGE = 'write time and outbox payload are required';
    END IF;
    r := crm.relation_row(v_id, true);
    IF r.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such relation';
    END IF;
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, true);
    IF r.version <> p_version THEN
        RETURN QUERY SELECT 'stale', v FROM crm.relation_view v WHERE v.id = v_id;
        RETURN;
    END IF;
    SELECT s.brand INTO v_brand FROM crm.stores s WHERE s.id = r.store_id;
    UPDATE crm.relations x
       SET source = coalesce(nullif(p_source, ''), 'other'),
           first_contact_at = CASE WHEN coalesce(p_first_contact_at_ms, 0) <> 0
                                   THEN crm.from_ms(p_first_contact_at_ms) END,
           first_contact_place = coalesce(p_first_contact_place, ''),
           first_contact_scenario = coalesce(p_first_contact_scenario, ''),
           first_feedback = coalesce(p_first_feedback, ''),
           status = coalesce(nullif(p_status, ''), 'active'),
           version = x.version + 1, updated_at = crm.from_ms(p_at_ms)
     WHERE x.id = v_id;
    PERFORM crm.intents_replace(v_id, v_brand, p_intents);
    PERFORM crm.outbox_append('relation', v_id, crm.payload_part(p_payloads, 0));
    RETURN QUERY SELECT 'ok', v FROM crm.relation_view v WHERE v.id = v_id;
END
$$;


CREATE OR REPLACE FUNCTION crm.level_set(p_session_id uuid, p_id text, p_version bigint, p_level text,
                              p_reason text, p_at_ms bigint, p_payloads bytea)
RETURNS TABLE (outcome text, rel crm.relation_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    r crm.relations;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'relation_id');
    IF p_level IN ('O', 'D', 'T') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'level',
            MESSAGE = 'levels O, D and T are set by orders (ordered, delivered, cancelled), not by hand';
    END IF;
    IF p_level IS NULL OR p_level NOT IN ('H', 'A', 'B', 'C') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'level',
            MESSAGE = 'level must be H, A, B or C';
    END IF;
    IF char_length(coalesce(p_reason, '')) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reason',
            MESSAGE = 'reason must be at most 500 characters';
    END IF;
    IF me.role NOT IN ('consultant', 'sales_manager', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only consultants and sales or store managers set levels';
    END IF;
    r := crm.relation_row(v_id, true);
    IF r.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'relation_id',
            MESSAGE = 'no such relation';
    END IF;
    IF r.store_id IS DISTINCT FROM me.store_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only the relation''s own store may set its level';
    END IF;
    IF me.role = 'consultant' AND r.owner_id IS DISTINCT FROM me.user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'consultants set the level of their own relations only';
    END IF;
    IF r.version <> p_version THEN
        RETURN QUERY SELECT 'stale', v FROM crm.relation_view v WHERE v.id = v_id;
        RETURN;
    END IF;
    IF r.level = p_level THEN
        RETURN QUERY SELECT 'unchanged', v FROM crm.relation_view v WHERE v.id = v_id;
        RETURN;
    END IF;
    UPDATE crm.relations x
       SET level = p_level, version = x.version + 1, updated_at = crm.from_ms(p_at_ms)
     WHERE x.id = v_id;
    INSERT INTO crm.level_changes (relation_id, from_level, to_level, changed_by, changed_at, reason)
    VALUES (v_id, r.level, p_level, me.user_id, crm.from_ms(p_at_ms), coalesce(p_reason, ''));
    PERFORM crm.outbox_append('relation', v_id, crm.payload_part(p_payloads, 0));
    RETURN QUERY SELECT 'ok', v FROM crm.relation_view v WHERE v.id = v_id;
END
$$;


CREATE OR REPLACE FUNCTION crm.customer_update(
    p_session_id uuid, p_id text, p_version bigint, p_name text, p_phones text,
    p_gender text, p_birth_year integer, p_age_band text, p_wechat text, p_email text,
    p_occupation text, p_region text, p_tags text, p_important boolean, p_at_ms bigint,
    p_payloads bytea)
RETURNS TABLE (outcome text, kind text, message text, cu crm.customer_view,
               rel crm.relation_view, col crm.lead_collision_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_name text := btrim(p_name, E' \t\r\n\u3000');
    v_phones text[];
    v_version bigint;
    v_taken text;
    v_at timestamptz;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    IF v_name IS NULL OR v_name = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'customer.name',
            MESSAGE = 'customer.name is required';
    END IF;
    v_phones := crm.check_phones(p_phones, 'customer.phones');
    IF p_at_ms IS NULL OR p_payloads IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
            MESSAGE = 'write time and outbox payload are required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    PERFORM 1 FROM crm.customers c WHERE c.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    IF crm.customer_access(v_id, me.user_id, me.role, me.store_id) IS DISTINCT FROM 'write' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = crm.customer_denied(me.role);
    END IF;
    PERFORM crm.lock_phones(v_phones);
    SELECT c.version INTO v_version FROM crm.customers c WHERE c.id = v_id FOR NO KEY UPDATE;
    IF v_version <> p_version THEN
        RETURN QUERY SELECT * FROM crm.customer_reply(
            'stale', format('the customer was changed meanwhile (version %s, you read %s); '
                            'reload it and try again', v_version, p_version),
            v_id, me.store_id, NULL);
        RETURN;
    END IF;
    v_taken := crm.phone_taken(v_phones, v_id);
    IF v_taken IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'customer.phones',
            MESSAGE = format('phone %s belongs to another customer', v_taken);
    END IF;
    DELETE FROM crm.customer_phones p WHERE p.customer_id = v_id AND p.phone <> ALL (v_phones);
    UPDATE crm.customer_phones p SET is_primary = false
     WHERE p.customer_id = v_id AND p.is_primary AND p.phone <> v_phones[1];
    INSERT INTO crm.customer_phones AS p (phone, customer_id, is_primary, kind, added_at)
    SELECT t.p, v_id, t.ord = 1, crm.phone_kind(t.p), v_at
      FROM unnest(v_phones) WITH ORDINALITY t(p, ord)
    ON CONFLICT (phone) DO UPDATE SET is_primary = EXCLUDED.is_primary
     WHERE p.customer_id = EXCLUDED.customer_id;
    UPDATE crm.customers c
       SET name = v_name, phone = v_phones[1], gender = coalesce(p_gender, ''),
           birth_year = nullif(p_birth_year, 0), age_band = coalesce(p_age_band, ''),
           wechat = coalesce(p_wechat, ''), email = coalesce(p_email, ''),
           occupation = coalesce(p_occupation, ''), region = coalesce(p_region, ''),
           tags = string_to_array(coalesce(p_tags, ''), E'\x1f'),
           important = coalesce(p_important, false),
           version = c.version + 1, updated_at = v_at
     WHERE c.id = v_id;
    PERFORM crm.outbox_append('customer', v_id, crm.payload_part(p_payloads, 0));
    RETURN QUERY SELECT * FROM crm.customer_reply('ok', '', v_id, me.store_id, NULL);
END
$$;


-- ------------------------------------------------------------ policies

ALTER TABLE crm.relations ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.relations FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.customers FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.customer_phones ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.customer_phones FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.relation_intents ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.relation_intents FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.level_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.level_changes FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.lead_collisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.lead_collisions FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.handovers ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.handovers FORCE ROW LEVEL SECURITY;

-- The cheap tests first: a row of the caller's own scope never reaches
-- crm.rls_customer.
CREATE POLICY relations_read ON crm.relations FOR SELECT
    USING (crm.rls_group()
           OR (store_id = crm.rls_store()
               AND (crm.rls_role() <> 'consultant' OR owner_id IS NULL
                    OR owner_id = crm.rls_user()))
           OR crm.rls_customer(customer_id) IS NOT NULL);
CREATE POLICY relations_write ON crm.relations FOR UPDATE
    USING (store_id = crm.rls_store()
           AND (crm.rls_role() <> 'consultant' OR owner_id IS NULL
                OR owner_id = crm.rls_user()))
    WITH CHECK (store_id = crm.rls_store());
-- No INSERT policy: relations are opened by crm.customer_create only.

-- crm.customer_access's rule, its common case (a relation the caller sees
-- at their store) written out so that it costs an index probe rather than
-- a function call per row.
CREATE POLICY customers_read ON crm.customers FOR SELECT
    USING (crm.rls_group()
           OR EXISTS (SELECT 1 FROM crm.relations r
                       WHERE r.customer_id = customers.id AND r.store_id = crm.rls_store()
                         AND (crm.rls_role() <> 'consultant' OR r.owner_id IS NULL
                              OR r.owner_id = crm.rls_user()))
           OR (store_id = crm.rls_store() AND crm.rls_customer(id) IS NOT NULL));
CREATE POLICY customers_write ON crm.customers FOR UPDATE
    USING (crm.rls_customer(id) = 'write')
    WITH CHECK (crm.rls_customer(id) = 'write');
-- No INSERT policy: customers are registered by crm.customer_create only.

-- The customers rule again, on the phone's customer (going through
-- crm.customers instead would evaluate that table's policy under this one:
-- twice the work for every phone read).
CREATE POLICY customer_phones_read ON crm.customer_phones FOR SELECT
    USING (crm.rls_group()
           OR EXISTS (SELECT 1 FROM crm.relations r
                       WHERE r.customer_id = customer_phones.customer_id
                         AND r.store_id = crm.rls_store()
                         AND (crm.rls_role() <> 'consultant' OR r.owner_id IS NULL
                              OR r.owner_id = crm.rls_user()))
           OR crm.rls_customer(customer_id) IS NOT NULL);
CREATE POLICY customer_phones_insert ON crm.customer_phones FOR INSERT
    WITH CHECK (crm.rls_customer(customer_id) = 'write');
CREATE POLICY customer_phones_update ON crm.customer_phones FOR UPDATE
    USING (crm.rls_customer(customer_id) = 'write')
    WITH CHECK (crm.rls_customer(customer_id) = 'write');
CREATE POLICY customer_phones_delete ON crm.customer_phones FOR DELETE
    USING (crm.rls_customer(customer_id) = 'write');

-- Children of a relation: visible with it (the sub-select is itself under
-- the relations policy), written by its store only.
CREATE POLICY relation_intents_read ON crm.relation_intents FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id));
CREATE POLICY relation_intents_insert ON crm.relation_intents FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                          AND r.store_id = crm.rls_store()));
CREATE POLICY relation_intents_update ON crm.relation_intents FOR UPDATE
    USING (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                     AND r.store_id = crm.rls_store()))
    WITH CHECK (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                          AND r.store_id = crm.rls_store()));
CREATE POLICY relation_intents_delete ON crm.relation_intents FOR DELETE
    USING (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                     AND r.store_id = crm.rls_store()));

CREATE POLICY level_changes_read ON crm.level_changes FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id));
CREATE POLICY level_changes_insert ON crm.level_changes FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                          AND r.store_id = crm.rls_store()));

CREATE POLICY handovers_read ON crm.handovers FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id));
CREATE POLICY handovers_insert ON crm.handovers FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                          AND r.store_id = crm.rls_store()));

CREATE POLICY lead_collisions_read ON crm.lead_collisions FOR SELECT
    USING (crm.rls_group() OR attempted_store_id = crm.rls_store()
           OR owner_store_id = crm.rls_store() OR crm.rls_customer(customer_id) IS NOT NULL);
-- No INSERT policy: collisions are recorded by crm.customer_create only.

-- ------------------------------------------------------------ grants

REVOKE ALL ON FUNCTION crm.rls_role(), crm.rls_store(), crm.rls_user(), crm.rls_group(),
    crm.rls_customer(uuid), crm.phone_taken(text[], uuid), crm.relation_row(uuid, boolean),
    crm.customer_exists(uuid) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
    r record;
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    -- The policies hold only if crmd's role cannot step around them.
    SELECT rolsuper, rolbypassrls INTO r FROM pg_roles WHERE rolname = app;
    IF r.rolsuper OR r.rolbypassrls THEN
        RAISE EXCEPTION 'crmd''s role % must be neither superuser nor BYPASSRLS', app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'crm' AND tableowner = app) THEN
        RAISE EXCEPTION 'crmd''s role % must not own tables of schema crm', app;
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.rls_role(), crm.rls_store(), crm.rls_user(),'
                   ' crm.rls_group(), crm.rls_customer(uuid), crm.phone_taken(text[], uuid),'
                   ' crm.relation_row(uuid, boolean), crm.customer_exists(uuid) TO %I', app);
END
$$;
