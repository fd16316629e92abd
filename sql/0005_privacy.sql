-- 0005_privacy: masking of phones and WeChat IDs, reveal with a reason,
-- and the personal-information requests (export everything held on one
-- customer; erase a customer in place). Every reveal and export is written
-- to the audit log (crm.audit_append) in the same transaction as the read.
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- Masking lives in crm.customer_view, which every customer reply, list row
-- and card reads, so that no code path can forget it. Whether a row is
-- masked is decided per row from the scope crm.session_begin set for the
-- transaction (crm.role, crm.user_id, crm.store_id):
--   * unmasked: group admins; the consultant who owns a relation to the
--     customer; sales and store managers for customers with a relation at
--     their store (or registered by their store); store nodes (machine
--     identity for sync, which must carry the real values);
--   * masked: everyone else (other consultants, service advisors, call
--     center agents, group analysts), and any reader without a scope.
-- The write functions of 0002 never read the view for what they store;
-- crmd reads the record it merges an update into through
-- crm.customer_get_for_write, which unmasks for that one transaction
-- (crm.contact_unmasked) and only when the version matches, so masked text
-- is never written back and the outbox carries the real values.
--
-- The request functions here are
-- SECURITY DEFINER with a fixed search_path: each starts with
-- crm.session_begin and checks the caller's right itself, and then reads
-- the customer's relations and history at every store (a reply, an export).
-- Email is not masked: it is not used to reach customers by phone, the
-- profile needs it visible to whoever writes to the customer, and the
-- issue names phones and WeChat only.

-- ------------------------------------------------------------ erasure mark

ALTER TABLE crm.customers ADD COLUMN erased_at timestamptz;

-- ------------------------------------------------------------ masks

-- Mobile +8613812345678 -> +86138****5678. Landline: the area code (2
-- digits for 10 and 2x, else 3) and the last 2 digits.
CREATE FUNCTION crm.mask_phone(p_phone text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_phone ~ '^\+861[3-9][0-9]{9}$' THEN left(p_phone, 6) || '****' || right(p_phone, 4)
        WHEN p_phone ~ '^\+86(10|2[0-9])' THEN left(p_phone, 5) || '****' || right(p_phone, 2)
        ELSE left(p_phone, 6) || '****' || right(p_phone, 2)
    END
$$;

-- First 2 and last 2 characters with **** between; IDs shorter than 8
-- characters are all stars ("****", which also hides their length).
CREATE FUNCTION crm.mask_wechat(p_wechat text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_wechat = '' THEN ''
        WHEN char_length(p_wechat) < 8 THEN '****'
        ELSE left(p_wechat, 2) || '****' || right(p_wechat, 2)
    END
$$;

-- True when the caller of this transaction sees the contact details of the
-- customer unmasked (see the top of this file).
CREATE FUNCTION crm.contact_unmasked(p_customer_id uuid, p_customer_store uuid)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN current_setting('crm.contact_unmasked', true) = 'on' THEN true
        WHEN current_setting('crm.role', true) IN ('group_admin', 'store_node') THEN true
        WHEN current_setting('crm.role', true) = 'consultant' THEN
            EXISTS (SELECT 1 FROM crm.relations r
                     WHERE r.customer_id = p_customer_id
                       AND r.owner_id = nullif(current_setting('crm.user_id', true), '')::uuid)
        WHEN current_setting('crm.role', true) IN ('sales_manager', 'store_manager') THEN
            p_customer_store = nullif(current_setting('crm.store_id', true), '')::uuid
            OR EXISTS (SELECT 1 FROM crm.relations r
                        WHERE r.customer_id = p_customer_id
                          AND r.store_id = nullif(current_setting('crm.store_id', true), '')::uuid)
        ELSE false
    END
$$;

-- The same columns as 0002's view, phone, wechat and phones masked where
-- crm.contact_unmasked says so.
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
          FROM crm.customer_phones p WHERE p.customer_id = c.id) AS phones
  FROM crm.customers c
  CROSS JOIN LATERAL (SELECT crm.contact_unmasked(c.id, c.store_id) AS unmasked) m
  LEFT JOIN crm.users u ON u.id = c.created_by
  LEFT JOIN crm.stores s ON s.id = c.store_id;

-- The CUSTOMER columns of one customer, never masked: only for the
-- functions below, after they checked the caller's right.
CREATE FUNCTION crm.customer_unmasked(p_id uuid) RETURNS SETOF crm.customer_view
LANGUAGE sql STABLE
AS $$
    SELECT c.id, c.name, c.phone, c.version,
           crm.ms(c.created_at), crm.ms(c.updated_at),
           coalesce(u.username, ''), coalesce(s.code, ''),
           c.gender, coalesce(c.birth_year, 0), c.age_band, c.wechat, c.email,
           c.occupation, c.region, array_to_string(c.tags, E'\x1f'), c.important,
           (SELECT string_agg(p.phone || E'\x1e' || p.kind || E'\x1e' || p.is_primary::text,
                              E'\x1f' ORDER BY p.is_primary DESC, p.added_at, p.phone)
              FROM crm.customer_phones p WHERE p.customer_id = c.id)
      FROM crm.customers c
      LEFT JOIN crm.users u ON u.id = c.created_by
      LEFT JOIN crm.stores s ON s.id = c.store_id
     WHERE c.id = p_id
$$;

-- ------------------------------------------------------------ the update read

-- STMT_CUSTOMER_GET_FOR_WRITE: the REPLY rows crmd merges a customer update
-- into. Unmasked when the caller may write the customer and `p_version` is
-- its version (the merge then writes back the real values); masked
-- otherwise, which is what crmd shows in a stale answer. An erased
-- customer is not changed any more (erasure always wins).
CREATE FUNCTION crm.customer_get_for_write(p_session_id uuid, p_id text, p_version bigint)
RETURNS TABLE (outcome text, kind text, message text, cu crm.customer_view,
               rel crm.relation_view, col crm.lead_collision_view)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    c crm.customers;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    SELECT x.* INTO c FROM crm.customers x WHERE x.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    IF crm.customer_access(v_id, me.user_id, me.role, me.store_id) IS DISTINCT FROM 'write' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = crm.customer_denied(me.role);
    END IF;
    IF c.erased_at IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'id',
            MESSAGE = 'this customer was erased on request and cannot be changed';
    END IF;
    IF c.version = p_version THEN
        PERFORM set_config('crm.contact_unmasked', 'on', true);
    END IF;
    RETURN QUERY SELECT * FROM crm.customer_reply('ok', '', v_id, me.store_id, NULL);
END
$$;

-- ------------------------------------------------------------ reveal

-- Who may reveal a customer's contact details (with a reason, audited):
-- NULL when the caller may, else why not.
CREATE FUNCTION crm.reveal_refusal(p_customer_id uuid, p_user_id uuid, p_role text,
                                   p_store_id uuid)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN p_role = 'group_admin' THEN NULL
        WHEN p_role = 'group_analyst' THEN 'group analysts never see contact details'
        WHEN p_role = 'consultant' THEN
            CASE WHEN EXISTS (SELECT 1 FROM crm.relations r
                               WHERE r.customer_id = p_customer_id AND r.owner_id = p_user_id)
                 THEN NULL
                 ELSE 'consultants reveal the contact details of their own customers only' END
        WHEN p_role IN ('sales_manager', 'store_manager', 'call_center', 'service_advisor') THEN
            CASE WHEN crm.customer_access(p_customer_id, p_user_id, p_role, p_store_id) IS NOT NULL
                 THEN NULL
                 ELSE 'this customer has no relation at your store' END
        ELSE 'your role cannot reveal contact details'
    END
$$;

CREATE FUNCTION crm.check_reason(p_reason text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := btrim(coalesce(p_reason, ''), E' \t\r\n\u3000');
BEGIN
    IF v = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reason',
            MESSAGE = 'reason is required: say why you need it';
    END IF;
    IF char_length(v) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reason',
            MESSAGE = 'reason must be at most 500 characters';
    END IF;
    RETURN v;
END
$$;

-- STMT_CUSTOMER_REVEAL: the customer's unmasked CUSTOMER columns, and one
-- audit entry 'customer.reveal' in the same transaction. A refusal is not
-- an error (which would roll the audit entry back): outcome 'denied', a
-- message, NULL columns, and a 'denied' audit entry.
CREATE FUNCTION crm.customer_reveal(p_session_id uuid, p_id text, p_reason text)
RETURNS TABLE (outcome text, message text, cu crm.customer_view)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_reason text;
    v_refusal text;
    v_version bigint;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    v_reason := crm.check_reason(p_reason);
    SELECT c.version INTO v_version FROM crm.customers c WHERE c.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    v_refusal := crm.reveal_refusal(v_id, me.user_id, me.role, me.store_id);
    IF v_refusal IS NOT NULL THEN
        PERFORM crm.audit_append('customer.reveal', p_outcome => 'denied', p_entity => 'customer',
            p_entity_id => v_id::text, p_customer_id => v_id, p_reason => v_refusal,
            p_details => jsonb_build_object('reason_given', v_reason));
        RETURN QUERY SELECT 'denied'::text, v_refusal, NULL::crm.customer_view;
        RETURN;
    END IF;
    PERFORM crm.audit_append('customer.reveal', p_entity => 'customer',
        p_entity_id => v_id::text, p_customer_id => v_id, p_after_version => v_version,
        p_reason => v_reason, p_details => jsonb_build_object('fields', jsonb_build_array('phones', 'wechat')));
    RETURN QUERY SELECT 'ok'::text, ''::text, u FROM crm.customer_unmasked(v_id) u;
END
$$;

-- ------------------------------------------------------------ export

-- Everything held on one customer as one JSON document: the profile with
-- unmasked contact details, every relation with its intents, the level
-- history, collisions and handovers. Times are unix milliseconds.
CREATE FUNCTION crm.customer_document(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'customer', (SELECT jsonb_build_object(
                'id', c.id, 'name', c.name, 'phone', c.phone,
                'phones', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'number', p.phone, 'kind', p.kind, 'primary', p.is_primary,
                                'added_at', crm.ms(p.added_at))
                            ORDER BY p.is_primary DESC, p.added_at, p.phone)
                        FROM crm.customer_phones p WHERE p.customer_id = c.id), '[]'),
                'gender', c.gender, 'birth_year', coalesce(c.birth_year, 0),
                'age_band', c.age_band, 'wechat', c.wechat, 'email', c.email,
                'occupation', c.occupation, 'region', c.region, 'tags', to_jsonb(c.tags),
                'important', c.important, 'version', c.version,
                'created_at', crm.ms(c.created_at), 'updated_at', crm.ms(c.updated_at),
                'created_by', coalesce(u.username, ''), 'store_code', coalesce(s.code, ''),
                'erased_at', coalesce(crm.ms(c.erased_at), 0))
              FROM crm.customers c
              LEFT JOIN crm.users u ON u.id = c.created_by
              LEFT JOIN crm.stores s ON s.id = c.store_id
             WHERE c.id = p_id),
        'relations', coalesce((SELECT jsonb_agg(
                (to_jsonb(rv) - 'store_id' - 'owner_id' - 'intents' - 'customer_id')
                || jsonb_build_object('intents', coalesce((SELECT jsonb_agg(
                        to_jsonb(i) - 'relation_id' ORDER BY i.position)
                      FROM crm.relation_intents i WHERE i.relation_id = rv.id), '[]'))
                ORDER BY rv.created_at_ms, rv.id)
              FROM crm.relation_view rv WHERE rv.customer_id = p_id), '[]'),
        'level_history', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'relation_id', lc.relation_id, 'store_code', s.code,
                'from_level', coalesce(lc.from_level::text, ''), 'to_level', lc.to_level::text,
                'changed_by', coalesce(u.username, ''), 'at', crm.ms(lc.changed_at),
                'reason', lc.reason) ORDER BY lc.changed_at, lc.id)
              FROM crm.level_changes lc
              JOIN crm.relations r ON r.id = lc.relation_id
              JOIN crm.stores s ON s.id = r.store_id
              LEFT JOIN crm.users u ON u.id = lc.changed_by
             WHERE r.customer_id = p_id), '[]'),
        'collisions', coalesce((SELECT jsonb_agg(to_jsonb(k) - 'customer_id' ORDER BY k.at_ms, k.id)
              FROM crm.lead_collision_view k WHERE k.customer_id = p_id), '[]'),
        'handovers', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'relation_id', h.relation_id, 'store_code', s.code,
                'from_owner', coalesce(fu.username, ''), 'to_owner', tu.username,
                'by', bu.username, 'at', crm.ms(h.at), 'reason', h.reason)
                ORDER BY h.at, h.id)
              FROM crm.handovers h
              JOIN crm.relations r ON r.id = h.relation_id
              JOIN crm.stores s ON s.id = r.store_id
              JOIN crm.users tu ON tu.id = h.to_owner_id
              JOIN crm.users bu ON bu.id = h.by_user
              LEFT JOIN crm.users fu ON fu.id = h.from_owner_id
             WHERE r.customer_id = p_id), '[]'))
$$;

-- STMT_CUSTOMER_EXPORT: the document of crm.customer_document (with who
-- exported it, when, and why) and one audit entry 'customer.export' with
-- the row counts, in the same transaction. Group admins export any
-- customer, store managers those with a relation at their store. A
-- refusal answers outcome 'denied' and is audited as such.
CREATE FUNCTION crm.customer_export(p_session_id uuid, p_id text, p_reason text)
RETURNS TABLE (outcome text, message text, document text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_reason text;
    v_refusal text;
    v_doc jsonb;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    v_reason := crm.check_reason(p_reason);
    PERFORM 1 FROM crm.customers c WHERE c.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    v_refusal := CASE
        WHEN me.role = 'group_admin' THEN NULL
        WHEN me.role = 'store_manager' THEN
            CASE WHEN EXISTS (SELECT 1 FROM crm.relations r
                               WHERE r.customer_id = v_id AND r.store_id = me.store_id)
                 THEN NULL ELSE 'this customer has no relation at your store' END
        ELSE 'only group admins and store managers export personal information' END;
    IF v_refusal IS NOT NULL THEN
        PERFORM crm.audit_append('customer.export', p_outcome => 'denied', p_entity => 'customer',
            p_entity_id => v_id::text, p_customer_id => v_id, p_reason => v_refusal,
            p_details => jsonb_build_object('reason_given', v_reason));
        RETURN QUERY SELECT 'denied'::text, v_refusal, NULL::text;
        RETURN;
    END IF;
    v_doc := crm.customer_document(v_id) || jsonb_build_object(
        'exported_at', crm.ms(now()), 'exported_by', me.username, 'reason', v_reason);
    PERFORM crm.audit_append('customer.export', p_entity => 'customer',
        p_entity_id => v_id::text, p_customer_id => v_id,
        p_after_version => (v_doc #>> '{customer,version}')::bigint, p_reason => v_reason,
        p_details => jsonb_build_object(
            'relations', jsonb_array_length(v_doc -> 'relations'),
            'level_history', jsonb_array_length(v_doc -> 'level_history'),
            'collisions', jsonb_array_length(v_doc -> 'collisions'),
            'handovers', jsonb_array_length(v_doc -> 'handovers')));
    RETURN QUERY SELECT 'ok'::text, ''::text, v_doc::text;
END
$$;

-- ------------------------------------------------------------ erase

-- The phone an erased customer keeps: "+860" and 11 digits from the id. No
-- China number starts with 0 after +86, so it reaches nobody, and it still
-- satisfies the phone CHECK. The next free one when taken.
CREATE FUNCTION crm.erased_phone(p_id uuid) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v bigint := ('x' || substr(md5(p_id::text), 1, 15))::bit(60)::bigint % 100000000000;
    v_phone text;
BEGIN
    LOOP
        v_phone := '+860' || lpad(v::text, 11, '0');
        EXIT WHEN NOT EXISTS (SELECT 1 FROM crm.customer_phones p
                               WHERE p.phone = v_phone AND p.customer_id <> p_id);
        v := (v + 1) % 100000000000;
    END LOOP;
    RETURN v_phone;
END
$$;

-- STMT_ERASE_PLAN: what crmd needs to pack the erased record: the CUSTOMER
-- columns as they are now (unmasked: group admins only), the placeholder
-- phone, and whether the customer is erased already.
CREATE FUNCTION crm.customer_erase_plan(p_session_id uuid, p_id text)
RETURNS TABLE (cu crm.customer_view, erased_phone text, erased boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_erased timestamptz;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role <> 'group_admin' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a group admin erases customers';
    END IF;
    v_id := crm.check_uuid(p_id, 'id');
    SELECT c.erased_at INTO v_erased FROM crm.customers c WHERE c.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    RETURN QUERY SELECT u, crm.erased_phone(v_id), v_erased IS NOT NULL
                   FROM crm.customer_unmasked(v_id) u;
END
$$;

-- STMT_CUSTOMER_ERASE: anonymizes the customer in place if the version is
-- still the one read (else 'stale' and the current record): name
-- '已删除客户', the one placeholder phone (every other phone removed, so
-- the old numbers can be registered again), WeChat, email, occupation,
-- region, tags, birth year and age band cleared. Gender and the importance
-- flag stay (they identify nobody), and so do the customer row, its
-- relations, level history, collisions and handovers, so reports keep
-- their counts. Writes the outbox change (bundle: the packed erased
-- Customer) and the audit entry 'customer.erase' in the same transaction.
CREATE FUNCTION crm.customer_erase(p_session_id uuid, p_id text, p_version bigint,
                                   p_reason text, p_phone text, p_at_ms bigint,
                                   p_payloads bytea)
RETURNS TABLE (outcome text, kind text, message text, cu crm.customer_view,
               rel crm.relation_view, col crm.lead_collision_view)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_reason text;
    c crm.customers;
    v_old text[];
    v_at timestamptz;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role <> 'group_admin' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a group admin erases customers';
    END IF;
    v_id := crm.check_uuid(p_id, 'id');
    v_reason := crm.check_reason(p_reason);
    IF p_at_ms IS NULL OR p_payloads IS NULL OR p_phone IS NULL OR p_phone !~ '^\+860[0-9]{11}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
            MESSAGE = 'write time, placeholder phone and outbox payload are required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    SELECT array_agg(p.phone ORDER BY p.phone) INTO v_old
      FROM crm.customer_phones p WHERE p.customer_id = v_id;
    PERFORM crm.lock_phones(coalesce(v_old, '{}') || p_phone);
    SELECT x.* INTO c FROM crm.customers x WHERE x.id = v_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    IF c.erased_at IS NOT NULL THEN
        RETURN QUERY SELECT * FROM crm.customer_reply('existed', '', v_id, NULL, NULL);
        RETURN;
    END IF;
    IF c.version <> p_version THEN
        RETURN QUERY SELECT * FROM crm.customer_reply(
            'stale', format('the customer was changed meanwhile (version %s, you read %s); '
                            'try again', c.version, p_version), v_id, NULL, NULL);
        RETURN;
    END IF;
    DELETE FROM crm.customer_phones p WHERE p.customer_id = v_id;
    INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind, added_at)
    VALUES (p_phone, v_id, true, crm.phone_kind(p_phone), v_at);
    UPDATE crm.customers x
       SET name = '已删除客户', phone = p_phone, wechat = '', email = '', occupation = '',
           region = '', tags = '{}', birth_year = NULL, age_band = '',
           erased_at = v_at, version = x.version + 1, updated_at = v_at
     WHERE x.id = v_id;
    PERFORM crm.audit_append('customer.erase', p_entity => 'customer',
        p_entity_id => v_id::text, p_customer_id => v_id, p_before_version => c.version,
        p_after_version => c.version + 1, p_reason => v_reason,
        p_details => jsonb_build_object(
            'phones_removed', cardinality(coalesce(v_old, '{}')),
            'relations_kept', (SELECT count(*) FROM crm.relations r WHERE r.customer_id = v_id)));
    PERFORM crm.outbox_append('customer', v_id, crm.payload_part(p_payloads, 0));
    RETURN QUERY SELECT * FROM crm.customer_reply('ok', '', v_id, NULL, NULL);
END
$$;

-- ------------------------------------------------------------ grants

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
    fn text;
    crmd_calls text[] := ARRAY[
        'crm.mask_phone(text)',
        'crm.mask_wechat(text)',
        'crm.contact_unmasked(uuid, uuid)',
        'crm.customer_unmasked(uuid)',
        'crm.customer_get_for_write(uuid, text, bigint)',
        'crm.reveal_refusal(uuid, uuid, text, uuid)',
        'crm.check_reason(text)',
        'crm.customer_reveal(uuid, text, text)',
        'crm.customer_document(uuid)',
        'crm.customer_export(uuid, text, text)',
        'crm.erased_phone(uuid)',
        'crm.customer_erase_plan(uuid, text)',
        'crm.customer_erase(uuid, text, bigint, text, text, bigint, bytea)'];
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    FOREACH fn IN ARRAY crmd_calls LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, app);
    END LOOP;
    EXECUTE format('GRANT SELECT ON crm.customer_view TO %I', app);
END
$$;
