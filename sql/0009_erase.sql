-- 0009_erase: an erasure that the other side of sync can recognise, and that
-- also removes what people typed about the customer on the store relations.
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.customer_view gains two columns at its end, erased and
--   erased_at_ms (from crm.customers.erased_at, 0005), so every customer
--   reply, list row and card says whether the customer was erased, and
--   crmd fills Customer.erased / erased_at from them. Masking is 0005's,
--   unchanged.
-- * Functions that return the view's columns one by one (RETURNS TABLE
--   and cv.*) must list the two new columns too, or they fail at run time
--   ("structure of query does not match function result type"):
--   crm.customer_query (0007) and crm.customer_card (0003) get them after
--   `phones`; functions that return the view's row type (cu
--   crm.customer_view) follow by themselves.
-- * crm.customer_erase also blanks the free text of every relation of the
--   customer and appends each relation to the outbox, after the erased
--   Customer, in the same transaction.

-- ------------------------------------------------------------ the view

-- The view as 0007 left it (0005's masking), and whether (and when) the
-- customer was erased.
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
  CROSS JOIN LATERAL (SELECT crm.contact_unmasked(c.id, c.store_id) AS unmasked OFFSET 0) m
  LEFT JOIN crm.users u ON u.id = c.created_by
  LEFT JOIN crm.stores s ON s.id = c.store_id;

-- 0005's, with the two new columns.
CREATE OR REPLACE FUNCTION crm.customer_unmasked(p_id uuid) RETURNS SETOF crm.customer_view
LANGUAGE sql STABLE
AS $$
    SELECT c.id, c.name, c.phone, c.version,
           crm.ms(c.created_at), crm.ms(c.updated_at),
           coalesce(u.username, ''), coalesce(s.code, ''),
           c.gender, coalesce(c.birth_year, 0), c.age_band, c.wechat, c.email,
           c.occupation, c.region, array_to_string(c.tags, E'\x1f'), c.important,
           (SELECT string_agg(p.phone || E'\x1e' || p.kind || E'\x1e' || p.is_primary::text,
                              E'\x1f' ORDER BY p.is_primary DESC, p.added_at, p.phone)
              FROM crm.customer_phones p WHERE p.customer_id = c.id),
           c.erased_at IS NOT NULL, coalesce(crm.ms(c.erased_at), 0)
      FROM crm.customers c
      LEFT JOIN crm.users u ON u.id = c.created_by
      LEFT JOIN crm.stores s ON s.id = c.store_id
     WHERE c.id = p_id
$$;

-- ------------------------------------------------------------ list and card

-- crm.customer_query and crm.customer_card are re-created from their
-- definitions as they stand, with only the two columns added to their
-- result after `phones`: this file carries no second copy of their bodies,
-- and later work on them (0007 rewrote the list) is kept. Fails when a
-- result does not have the customer columns this expects.
DO $$
DECLARE
    fn regprocedure;
    def text;
    v_sig text;
    v_old constant text := 'important boolean, phones text, ';
    v_new constant text := 'important boolean, phones text, erased boolean, erased_at_ms bigint, ';
BEGIN
    FOREACH fn IN ARRAY ARRAY[
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure,
        'crm.customer_card(uuid, text)'::regprocedure]
    LOOP
        v_sig := fn::text;
        def := pg_get_functiondef(fn);
        IF (char_length(def) - char_length(replace(def, v_old, ''))) <> char_length(v_old) THEN
            RAISE EXCEPTION '% does not return the customer columns 0009 expects', v_sig;
        END IF;
        EXECUTE format('DROP FUNCTION %s', v_sig);
        EXECUTE replace(def, v_old, v_new);
    END LOOP;
END
$$;

-- ------------------------------------------------------------ erase

DROP FUNCTION crm.customer_erase_plan(uuid, text);
DROP FUNCTION crm.customer_erase(uuid, text, bigint, text, text, bigint, bytea);

-- STMT_ERASE_PLAN: what crmd needs to pack the erased records: the
-- CUSTOMER columns as they are now (unmasked: group admins only; erased
-- says whether it is erased already), the placeholder phone, and the
-- customer's relations (all of crm.relation_view), one row each in id
-- order; one row with NULL relation columns when there is none.
CREATE FUNCTION crm.customer_erase_plan(p_session_id uuid, p_id text)
RETURNS TABLE (cu crm.customer_view, erased_phone text, rel crm.relation_view)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role <> 'group_admin' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a group admin erases customers';
    END IF;
    v_id := crm.check_uuid(p_id, 'id');
    PERFORM 1 FROM crm.customers c WHERE c.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    RETURN QUERY SELECT u, crm.erased_phone(v_id), r
                   FROM crm.customer_unmasked(v_id) u
                   LEFT JOIN crm.relation_view r ON r.customer_id = v_id
                  ORDER BY r.id;
END
$$;

-- STMT_CUSTOMER_ERASE: anonymizes the customer in place, as 0005 did, and
-- blanks what people typed about them on every relation of the customer:
-- first contact place, scenario and feedback, the configuration and needs
-- of each intent, and the reasons of the level history. What reports
-- count stays: the relations with their owner, level, source, status,
-- dates and intended models, body types and budgets, the level history
-- (levels, who, when), collisions and handovers. Each relation's version
-- goes up by one.
--
-- crmd packed the records from crm.customer_erase_plan: p_relation_ids and
-- p_relation_versions (U+001F-joined, in the bundle's order) are every
-- relation of the customer with the version it read. If the customer's
-- version or its relations changed since (a relation written, added), the
-- packed records are not what would be stored: 'stale' and the current
-- record, nothing written. Erasing an erased customer writes nothing
-- ('existed').
--
-- Bundle: the erased Customer, then each relation in the order of
-- p_relation_ids. The outbox gets them all, in that order, with the audit
-- entry 'customer.erase', in one transaction.
CREATE FUNCTION crm.customer_erase(p_session_id uuid, p_id text, p_version bigint,
                                   p_reason text, p_phone text, p_relation_ids text,
                                   p_relation_versions text, p_at_ms bigint, p_payloads bytea)
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
    v_rel_ids uuid[];
    v_rel_versions text[] := string_to_array(coalesce(p_relation_versions, ''), E'\x1f');
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
    SELECT coalesce(array_agg(crm.check_uuid(t.item, 'relation_ids') ORDER BY t.ord), '{}')
      INTO v_rel_ids
      FROM unnest(string_to_array(coalesce(p_relation_ids, ''), E'\x1f')) WITH ORDINALITY t(item, ord);
    IF cardinality(v_rel_ids) <> cardinality(v_rel_versions)
       OR EXISTS (SELECT 1 FROM unnest(v_rel_versions) v WHERE v !~ '^[0-9]{1,18}$') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation_ids',
            MESSAGE = 'each relation needs the version read';
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
    -- The relations as read: every one of them (as many as listed, each
    -- listed with its current version), locked until commit.
    PERFORM 1 FROM crm.relations r WHERE r.customer_id = v_id ORDER BY r.id FOR NO KEY UPDATE;
    IF (SELECT count(*) FROM crm.relations r WHERE r.customer_id = v_id) <> cardinality(v_rel_ids)
       OR EXISTS (SELECT 1 FROM crm.relations r
                   WHERE r.customer_id = v_id
                     AND NOT EXISTS (SELECT 1 FROM unnest(v_rel_ids, v_rel_versions) AS l(id, version)
                                      WHERE l.id = r.id AND l.version::bigint = r.version)) THEN
        RETURN QUERY SELECT * FROM crm.customer_reply(
            'stale', 'the customer''s store relations were changed meanwhile; try again',
            v_id, NULL, NULL);
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
    UPDATE crm.relations x
       SET first_contact_place = '', first_contact_scenario = '', first_feedback = '',
           version = x.version + 1, updated_at = v_at
     WHERE x.customer_id = v_id;
    UPDATE crm.relation_intents i SET configuration = '', needs = ''
     WHERE i.relation_id = ANY (v_rel_ids) AND (i.configuration <> '' OR i.needs <> '');
    UPDATE crm.level_changes l SET reason = ''
     WHERE l.relation_id = ANY (v_rel_ids) AND l.reason <> '';
    PERFORM crm.audit_append('customer.erase', p_entity => 'customer',
        p_entity_id => v_id::text, p_customer_id => v_id, p_before_version => c.version,
        p_after_version => c.version + 1, p_reason => v_reason,
        p_details => jsonb_build_object(
            'phones_removed', cardinality(coalesce(v_old, '{}')),
            'relations_kept', cardinality(v_rel_ids),
            'relations_erased', v_rel_ids));
    PERFORM crm.outbox_append('customer', v_id, crm.payload_part(p_payloads, 0));
    FOR k IN 1 .. cardinality(v_rel_ids) LOOP
        PERFORM crm.outbox_append('relation', v_rel_ids[k], crm.payload_part(p_payloads, k));
    END LOOP;
    RETURN QUERY SELECT * FROM crm.customer_reply('ok', '', v_id, NULL, NULL);
END
$$;

-- ------------------------------------------------------------ grants

REVOKE ALL ON FUNCTION
    crm.customer_query(uuid, text, text, text, text, text, text, text, text, text, boolean,
                       integer, boolean, text, text, boolean, text, integer),
    crm.customer_card(uuid, text),
    crm.customer_erase_plan(uuid, text),
    crm.customer_erase(uuid, text, bigint, text, text, text, text, bigint, bytea)
    FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' crm.customer_query(uuid, text, text, text, text, text, text, text, text,'
                   ' text, boolean, integer, boolean, text, text, boolean, text, integer),'
                   ' crm.customer_card(uuid, text), crm.customer_erase_plan(uuid, text),'
                   ' crm.customer_erase(uuid, text, bigint, text, text, text, text, bigint, bytea)'
                   ' TO %I', app);
END
$$;
