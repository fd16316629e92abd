-- 0011_scope_fixes: the permission matrix of issue 4 made true (see
-- tests/integration/test_matrix.c and docs/PERMISSIONS.md).
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.customer_card_check: a consultant opens the card of a customer
--   only through a relation at their store that they own or that is in the
--   store pool (DESIGN.md "Security": own customers and the store's pool).
--   Another consultant's customer is NOT_FOUND, as another store's is.
-- * crm.audit_denied gains the refusal's message, so crmd writes the same
--   permission.denied entry for a refusal raised inside SQL (DC403) as for
--   one by its handler table (server/dispatch.c req_fail_db).
-- * Every change is audited: crm.outbox_append, which every write function
--   calls once per record it wrote, in its transaction, also appends an
--   audit entry 'change' (who, which record, the version before and
--   after). Actions may now be a single word ('change': a record of any
--   kind was written), so the action grammar of crm.audit_log and
--   crm.audit_append is widened to one or more words joined by dots.

-- ------------------------------------------------------------ the card

-- Raises DC404 unless the caller may open the card of p_id: group roles any
-- customer; a consultant a customer with a relation at their store that
-- they own or that is in the store pool; other store roles a customer with
-- a relation at their store. Replaces 0003's, which let a consultant open
-- every card of the store.
CREATE OR REPLACE FUNCTION crm.customer_card_check(p_session_id uuid, p_id text)
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
    ELSIF me.role = 'consultant' THEN
        PERFORM 1 FROM crm.relations r
         WHERE r.customer_id = v_id AND r.store_id = me.store_id
           AND (r.owner_id = me.user_id OR r.owner_id IS NULL);
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

-- ------------------------------------------------------------ the action grammar

ALTER TABLE crm.audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE crm.audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$');

-- 0004's, with the wider action grammar: lower-case words joined by dots,
-- the domain first ('customer.reveal'), or one word for an action that is
-- not of one domain ('change'). Parameters as documented in 0004.
CREATE OR REPLACE FUNCTION crm.audit_append(
    p_action text,
    p_outcome text DEFAULT 'ok',
    p_entity text DEFAULT NULL,
    p_entity_id text DEFAULT NULL,
    p_customer_id uuid DEFAULT NULL,
    p_before_version bigint DEFAULT NULL,
    p_after_version bigint DEFAULT NULL,
    p_reason text DEFAULT NULL,
    p_details jsonb DEFAULT NULL,
    p_subject text DEFAULT NULL,
    p_source_addr text DEFAULT NULL,
    p_actor_id uuid DEFAULT NULL,
    p_actor_name text DEFAULT NULL,
    p_store_id uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_actor uuid := p_actor_id;
    v_name text := p_actor_name;
    v_role text;
    v_store uuid := p_store_id;
    v_session uuid;
    v_addr text := p_source_addr;
    v_setting text;
    v_id bigint;
BEGIN
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'action',
            MESSAGE = 'audit action must be lower-case words joined by dots, e.g. customer.update';
    END IF;
    IF p_outcome IS NULL OR p_outcome NOT IN ('ok', 'failed', 'denied') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'outcome',
            MESSAGE = 'audit outcome must be ok, failed or denied';
    END IF;
    IF p_details IS NOT NULL AND jsonb_typeof(p_details) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'details',
            MESSAGE = 'audit details must be a JSON object';
    END IF;
    v_setting := nullif(current_setting('crm.session_id', true), '');
    IF v_setting IS NOT NULL THEN
        v_session := v_setting::uuid;
    END IF;
    IF v_actor IS NULL AND v_name IS NULL THEN
        v_setting := nullif(current_setting('crm.user_id', true), '');
        IF v_setting IS NOT NULL THEN
            v_actor := v_setting::uuid;
        END IF;
        IF v_store IS NULL THEN
            v_setting := nullif(current_setting('crm.store_id', true), '');
            IF v_setting IS NOT NULL THEN
                v_store := v_setting::uuid;
            END IF;
        END IF;
    END IF;
    IF v_actor IS NOT NULL THEN
        SELECT coalesce(v_name, u.username), u.role, coalesce(v_store, u.store_id)
          INTO v_name, v_role, v_store
          FROM crm.users u WHERE u.id = v_actor;
    END IF;
    IF v_addr IS NULL AND v_session IS NOT NULL THEN
        SELECT s.source_addr INTO v_addr FROM crm.sessions s WHERE s.id = v_session;
    END IF;
    INSERT INTO crm.audit_log (action, outcome, actor_id, actor_username, actor_role,
                               store_id, session_id, source_addr, subject, entity,
                               entity_id, customer_id, before_version, after_version,
                               reason, details)
    VALUES (p_action, p_outcome, v_actor, left(v_name, 200), v_role, v_store, v_session,
            left(v_addr, 200), left(p_subject, 200), left(p_entity, 64),
            left(p_entity_id, 200), p_customer_id, p_before_version, p_after_version,
            left(p_reason, 500), p_details)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- ------------------------------------------------------------ refusals

-- crmd (STMT_AUDIT_DENIED): a refusal, written after it was sent; a dead
-- session still leaves an entry. p_message NULL: the handler table refused
-- the caller's role; else the message of the DC403 a SQL function raised
-- (its transaction was rolled back, so this is the refusal's only trace).
CREATE FUNCTION crm.audit_denied(p_session_id uuid, p_request text, p_source_addr text,
                                 p_message text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_user uuid;
    v_request text := left(p_request, 100);
BEGIN
    SELECT s.user_id INTO v_user FROM crm.sessions s WHERE s.id = p_session_id;
    PERFORM set_config('crm.session_id', coalesce(p_session_id::text, ''), true);
    PERFORM crm.audit_append('permission.denied', p_outcome => 'denied',
        p_reason => coalesce(left(p_message, 500), 'role may not call ' || v_request),
        p_details => jsonb_build_object(
            'request', v_request,
            'refused_by', CASE WHEN p_message IS NULL THEN 'handler table' ELSE 'sql' END),
        p_source_addr => p_source_addr, p_actor_id => v_user);
END
$$;

-- 0004's three-argument form, for a crmd built before this migration.
CREATE OR REPLACE FUNCTION crm.audit_denied(p_session_id uuid, p_request text,
                                            p_source_addr text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$ SELECT crm.audit_denied(p_session_id, p_request, p_source_addr, NULL::text) $$;

-- ------------------------------------------------------------ every change audited

-- 0001's, unchanged for the outbox, and in the same transaction one audit
-- entry 'change' for the record written: the session's user (crm.user_id,
-- set by crm.session_begin), the record's kind and id, the customer it
-- belongs to, and its version before and after the write. Every write
-- function calls this once per record it wrote, after writing it, and
-- every write sets a new record's version to 1 or bumps it by exactly one
-- (customer_create, customer_update, relation_update, level_set, handover,
-- customer_erase of 0002, 0005 and 0009), so the version before is the
-- version now minus one: 0 for a record just created. A relation's entry
-- belongs to the relation's store (its store manager reads it). Entities
-- other than customer and relation are audited without versions.
CREATE OR REPLACE FUNCTION crm.outbox_append(p_entity text, p_entity_id uuid, p_payload bytea,
                                             p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_seq bigint;
    v_hlc bigint;
    v_version bigint;
    v_customer uuid;
    v_store uuid;
BEGIN
    IF p_entity IS NULL OR p_entity_id IS NULL OR p_payload IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400',
            MESSAGE = 'outbox change needs an entity, an id and a payload';
    END IF;
    UPDATE crm.outbox_counter
       SET seq = seq + 1,
           hlc = greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16,
                          hlc + 1)
     WHERE singleton
    RETURNING seq, hlc INTO v_seq, v_hlc;
    INSERT INTO crm.outbox (seq, entity, entity_id, payload, schema_version, hlc)
    VALUES (v_seq, p_entity, p_entity_id, p_payload, p_schema_version, v_hlc);

    IF p_entity = 'customer' THEN
        SELECT c.version, c.id INTO v_version, v_customer
          FROM crm.customers c WHERE c.id = p_entity_id;
    ELSIF p_entity = 'relation' THEN
        SELECT r.version, r.customer_id, r.store_id INTO v_version, v_customer, v_store
          FROM crm.relations r WHERE r.id = p_entity_id;
    END IF;
    PERFORM crm.audit_append('change', p_entity => p_entity,
        p_entity_id => p_entity_id::text, p_customer_id => v_customer,
        p_before_version => v_version - 1, p_after_version => v_version,
        p_details => jsonb_build_object('outbox_seq', v_seq),
        p_store_id => v_store);
    RETURN v_seq;
END
$$;

-- ------------------------------------------------------------ grants

REVOKE ALL ON FUNCTION crm.audit_denied(uuid, text, text, text) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.audit_denied(uuid, text, text, text) TO %I',
                   app);
END
$$;
