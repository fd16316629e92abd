-- 0002_customer_records: the group-wide customer's full profile and phones,
-- each store's relation to a customer (owner, level, source, first contact,
-- intents), level history, lead-protection collisions, handovers, and the
-- group policy that sets the protection period.
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- ------------------------------------------------------------ policy

-- The group's policy, one row. Later issues add columns (cadence, windows).
CREATE TABLE crm.group_policy (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    lead_protection_days integer NOT NULL DEFAULT 30
        CHECK (lead_protection_days BETWEEN 1 AND 365),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO crm.group_policy (singleton) VALUES (true);

-- ------------------------------------------------------------ customer profile

ALTER TABLE crm.customers
    ADD COLUMN gender text NOT NULL DEFAULT '' CHECK (gender IN ('', 'male', 'female')),
    ADD COLUMN birth_year integer CHECK (birth_year BETWEEN 1900 AND 2100),
    ADD COLUMN age_band text NOT NULL DEFAULT ''
        CHECK (age_band IN ('', '18-24', '25-34', '35-44', '45-54', '55+')),
    ADD COLUMN wechat text NOT NULL DEFAULT '' CHECK (char_length(wechat) <= 64),
    ADD COLUMN email text NOT NULL DEFAULT '' CHECK (char_length(email) <= 254),
    ADD COLUMN occupation text NOT NULL DEFAULT '' CHECK (char_length(occupation) <= 100),
    ADD COLUMN region text NOT NULL DEFAULT '' CHECK (char_length(region) <= 100),
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 32),
    ADD COLUMN important boolean NOT NULL DEFAULT false;

-- Text for fuzzy name search: every CJK character becomes a word of its
-- own, so pg_trgm compares Chinese names by the characters they share
-- ("王小明" and "王晓明" share two of three) while Latin names keep their
-- ordinary trigrams. Immutable: it is the key of an index.
CREATE FUNCTION crm.name_grams(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT lower(regexp_replace(p_name,
        '([\u2E80-\u2FDF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F])',
        ' \1 ', 'g'))
$$;

CREATE INDEX customers_name ON crm.customers (name text_pattern_ops);
CREATE INDEX customers_name_grams ON crm.customers
    USING gin (crm.name_grams(name) public.gin_trgm_ops);
CREATE INDEX customers_tags ON crm.customers USING gin (tags);

-- Every phone of every customer; a number belongs to one customer only.
-- customers.phone is the primary one and is always also here.
-- phone_rev (the number reversed) makes "last N digits" a prefix search.
CREATE TABLE crm.customer_phones (
    phone text PRIMARY KEY CHECK (phone ~ '^\+86[0-9]{6,12}$'),
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    is_primary boolean NOT NULL DEFAULT false,
    kind text NOT NULL CHECK (kind IN ('mobile', 'landline')),
    added_at timestamptz NOT NULL DEFAULT now(),
    phone_rev text GENERATED ALWAYS AS (reverse(phone)) STORED
);
CREATE INDEX customer_phones_customer ON crm.customer_phones (customer_id);
CREATE INDEX customer_phones_rev ON crm.customer_phones (phone_rev text_pattern_ops);
CREATE UNIQUE INDEX customer_phones_one_primary ON crm.customer_phones (customer_id)
    WHERE is_primary;

INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind)
SELECT c.phone, c.id, true,
       CASE WHEN c.phone ~ '^\+861[3-9][0-9]{9}$' THEN 'mobile' ELSE 'landline' END
  FROM crm.customers c;

-- ------------------------------------------------------------ store relations

-- A store's own account of a customer: at most one per customer and store.
-- Written only by its store (DESIGN.md "Sync"). owner_id NULL is the
-- store's pool. protected_until ends the owner's lead protection.
CREATE TABLE crm.relations (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    owner_id uuid REFERENCES crm.users (id),
    level char(1) NOT NULL DEFAULT 'N' CHECK (level IN ('H', 'A', 'B', 'C', 'N', 'O', 'D', 'T')),
    source text NOT NULL DEFAULT 'other'
        CHECK (source IN ('walk_in', 'referral', 'online', 'auto_show', 'phone_in',
                          'roadshow', 'fleet', 'other')),
    first_contact_at timestamptz,
    first_contact_place text NOT NULL DEFAULT '' CHECK (char_length(first_contact_place) <= 100),
    first_contact_scenario text NOT NULL DEFAULT ''
        CHECK (char_length(first_contact_scenario) <= 200),
    first_feedback text NOT NULL DEFAULT '' CHECK (char_length(first_feedback) <= 1000),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'dormant', 'closed')),
    protected_until timestamptz NOT NULL,
    last_contact_at timestamptz,
    next_followup_at timestamptz,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid REFERENCES crm.users (id),
    UNIQUE (customer_id, store_id)
);
CREATE INDEX relations_store_created ON crm.relations (store_id, created_at, id);
CREATE INDEX relations_store_owner ON crm.relations (store_id, owner_id);
CREATE INDEX relations_store_level ON crm.relations (store_id, level);
CREATE INDEX relations_store_last_contact ON crm.relations (store_id, last_contact_at);
CREATE INDEX relations_store_next_followup ON crm.relations (store_id, next_followup_at);
CREATE INDEX relations_owner ON crm.relations (owner_id);

-- Intended models and needs of a relation, in the order given.
CREATE TABLE crm.relation_intents (
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    position smallint NOT NULL CHECK (position BETWEEN 0 AND 15),
    model text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 100),
    body_type text NOT NULL DEFAULT ''
        CHECK (body_type IN ('', 'sedan', 'suv', 'mpv', 'hatchback', 'wagon', 'coupe',
                             'pickup', 'other')),
    configuration text NOT NULL DEFAULT '' CHECK (char_length(configuration) <= 200),
    budget_min integer NOT NULL DEFAULT 0 CHECK (budget_min >= 0),
    budget_max integer NOT NULL DEFAULT 0 CHECK (budget_max >= 0),
    needs text NOT NULL DEFAULT '' CHECK (char_length(needs) <= 1000),
    PRIMARY KEY (relation_id, position),
    CHECK (budget_max = 0 OR budget_max >= budget_min)
);
CREATE INDEX relation_intents_model ON crm.relation_intents (lower(model));
CREATE INDEX relation_intents_body_type ON crm.relation_intents (body_type);

-- Every level a relation has had: the first row has from_level NULL.
CREATE TABLE crm.level_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    from_level char(1),
    to_level char(1) NOT NULL,
    changed_by uuid REFERENCES crm.users (id),
    changed_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 500)
);
CREATE INDEX level_changes_relation ON crm.level_changes (relation_id, changed_at);

-- A second registration of a protected lead: who tried, where, when, and
-- whose protection it met.
CREATE TABLE crm.lead_collisions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    owner_relation_id uuid NOT NULL REFERENCES crm.relations (id),
    owner_id uuid REFERENCES crm.users (id),
    owner_store_id uuid NOT NULL REFERENCES crm.stores (id),
    brand text NOT NULL,
    protected_until timestamptz NOT NULL,
    attempted_by uuid NOT NULL REFERENCES crm.users (id),
    attempted_store_id uuid NOT NULL REFERENCES crm.stores (id),
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_collisions_customer ON crm.lead_collisions (customer_id, at);

-- A manager moved a relation to another consultant.
CREATE TABLE crm.handovers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    from_owner_id uuid REFERENCES crm.users (id),
    to_owner_id uuid NOT NULL REFERENCES crm.users (id),
    by_user uuid NOT NULL REFERENCES crm.users (id),
    at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500)
);
CREATE INDEX handovers_relation ON crm.handovers (relation_id, at);

-- Vehicle models the group sells, so an intent for a known model gets its
-- body type ("intends an SUV") without the consultant typing it.
CREATE TABLE crm.models (
    brand text NOT NULL CHECK (char_length(brand) BETWEEN 1 AND 50),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    body_type text NOT NULL
        CHECK (body_type IN ('sedan', 'suv', 'mpv', 'hatchback', 'wagon', 'coupe',
                             'pickup', 'other')),
    PRIMARY KEY (brand, name)
);
CREATE INDEX models_name ON crm.models (lower(name));

-- The CUSTOMER columns of server/stmts.h, in order. Lists travel as one
-- text each, split by crmd: tags joined by U+001F; phones as
-- "number U+001E kind U+001E t|f(primary)" joined by U+001F, primary first.
-- Text fields cannot hold control characters (crmd refuses them), so the
-- separators are unambiguous.
CREATE VIEW crm.customer_view WITH (security_invoker = true) AS
SELECT c.id, c.name, c.phone, c.version,
       crm.ms(c.created_at) AS created_at_ms, crm.ms(c.updated_at) AS updated_at_ms,
       coalesce(u.username, '') AS created_by, coalesce(s.code, '') AS store_code,
       c.gender, coalesce(c.birth_year, 0) AS birth_year, c.age_band, c.wechat, c.email,
       c.occupation, c.region, array_to_string(c.tags, E'\x1f') AS tags, c.important,
       (SELECT string_agg(p.phone || E'\x1e' || p.kind || E'\x1e' || p.is_primary::text, E'\x1f'
                          ORDER BY p.is_primary DESC, p.added_at, p.phone)
          FROM crm.customer_phones p WHERE p.customer_id = c.id) AS phones
  FROM crm.customers c
  LEFT JOIN crm.users u ON u.id = c.created_by
  LEFT JOIN crm.stores s ON s.id = c.store_id;

-- The RELATION columns of server/stmts.h, in order (then store_id and
-- owner_id for filtering). Intents travel as one text: each intent's
-- model, body_type, configuration, budget_min, budget_max, needs joined by
-- U+001E, intents joined by U+001F in position order.
CREATE VIEW crm.relation_view WITH (security_invoker = true) AS
SELECT r.id, r.customer_id, s.code AS store_code, s.name AS store_name, s.brand,
       coalesce(u.username, '') AS owner, coalesce(u.display_name, '') AS owner_name,
       r.level::text AS level, r.source, coalesce(crm.ms(r.first_contact_at), 0) AS first_contact_at_ms,
       r.first_contact_place, r.first_contact_scenario, r.first_feedback, r.status,
       r.version, crm.ms(r.created_at) AS created_at_ms, crm.ms(r.updated_at) AS updated_at_ms,
       crm.ms(r.protected_until) AS protected_until_ms,
       coalesce(crm.ms(r.last_contact_at), 0) AS last_contact_at_ms,
       coalesce(crm.ms(r.next_followup_at), 0) AS next_followup_at_ms,
       (SELECT string_agg(concat_ws(E'\x1e', i.model, i.body_type, i.configuration,
                                    i.budget_min, i.budget_max, i.needs), E'\x1f'
                          ORDER BY i.position)
          FROM crm.relation_intents i WHERE i.relation_id = r.id) AS intents,
       r.store_id, r.owner_id
  FROM crm.relations r
  JOIN crm.stores s ON s.id = r.store_id
  LEFT JOIN crm.users u ON u.id = r.owner_id;

-- Lead-protection collisions as people read them: who owns the lead, at
-- which store, until when, and who tried to register it again.
CREATE VIEW crm.lead_collision_view WITH (security_invoker = true) AS
SELECT k.id, k.customer_id, coalesce(u.username, '') AS owner,
       coalesce(u.display_name, '') AS owner_name, s.code AS owner_store_code,
       s.name AS owner_store_name, k.brand, crm.ms(k.protected_until) AS protected_until_ms,
       a.username AS attempted_by, sa.code AS attempted_store_code, crm.ms(k.at) AS at_ms
  FROM crm.lead_collisions k
  JOIN crm.stores s ON s.id = k.owner_store_id
  LEFT JOIN crm.users u ON u.id = k.owner_id
  JOIN crm.users a ON a.id = k.attempted_by
  JOIN crm.stores sa ON sa.id = k.attempted_store_id;

-- ============================================================ customer records: writes
--
-- crmd packs the record it writes (proto Customer / Relation) and passes the
-- packed records as one bytea "bundle": each record is a 4-byte big-endian
-- length and the bytes, in the order the function documents. Each write
-- function appends the records it really wrote to the outbox, last, in its
-- own transaction (crm.outbox_append). crmd chooses the write time (p_at_ms)
-- so that the timestamps in the payload are those stored.
--
-- Lists travel as one text each, as in the views: items joined by U+001F,
-- an item's fields (intents) joined by U+001E. crmd refuses control
-- characters in text fields, so the separators are unambiguous.
--
-- Results for CustomerReply ("REPLY columns", server/stmts.h): outcome
-- ('ok', 'existed', 'collision', 'stale', 'retry'), kind ('customer', 'relation' for
-- the caller's store, 'other' for other stores, 'collision'), message, then
-- the columns of crm.customer_view, crm.relation_view and
-- crm.lead_collision_view, NULL where the row is of another kind.

DROP FUNCTION crm.customer_create(uuid, text, text, text, bytea);
DROP FUNCTION crm.customer_get(uuid, text);

CREATE FUNCTION crm.from_ms(p_ms bigint) RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT to_timestamp(0) + p_ms * interval '1 millisecond' $$;

-- Record number `p_index` (from 0) of a payload bundle.
CREATE FUNCTION crm.payload_part(p_bundle bytea, p_index integer) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    pos integer := 0;
    len integer;
    total integer := coalesce(octet_length(p_bundle), 0);
BEGIN
    FOR i IN 0 .. coalesce(p_index, -1) LOOP
        IF pos + 4 > total THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
                MESSAGE = format('outbox payload bundle has no record %s', p_index);
        END IF;
        len := get_byte(p_bundle, pos) << 24 | get_byte(p_bundle, pos + 1) << 16
             | get_byte(p_bundle, pos + 2) << 8 | get_byte(p_bundle, pos + 3);
        IF len < 0 OR pos + 4 + len > total THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
                MESSAGE = 'outbox payload bundle is cut short';
        END IF;
        IF i = p_index THEN
            RETURN substring(p_bundle FROM pos + 5 FOR len);
        END IF;
        pos := pos + 4 + len;
    END LOOP;
    RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
        MESSAGE = 'outbox payload index must be 0 or more';
END
$$;

CREATE FUNCTION crm.check_uuid(p_text text, p_field text, p_v7 boolean DEFAULT false)
RETURNS uuid
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_text IS NULL OR p_text !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
       OR (p_v7 AND p_text !~* '^.{14}7.{3}-[89ab]') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s must be a UUID%s', p_field,
                             CASE WHEN p_v7 THEN ' version 7' ELSE '' END);
    END IF;
    RETURN p_text::uuid;
END
$$;

-- Canonical phones, primary first, from their U+001F-joined text.
CREATE FUNCTION crm.check_phones(p_phones text, p_field text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text[] := string_to_array(coalesce(p_phones, ''), E'\x1f');
BEGIN
    IF cardinality(v) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s is required', p_field);
    END IF;
    IF cardinality(v) > 10 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = 'a customer has at most 10 phones';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(v) p WHERE p !~ '^\+86[0-9]{6,12}$') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s must be China numbers in the form +8613812345678', p_field);
    END IF;
    IF (SELECT count(DISTINCT p) FROM unnest(v) p) <> cardinality(v) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s lists a number twice', p_field);
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION crm.phone_kind(p_phone text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT CASE WHEN p_phone ~ '^\+861[3-9][0-9]{9}$' THEN 'mobile' ELSE 'landline' END $$;

-- Serialises writers that touch the same phone numbers (create, phone
-- change), in one order so that two of them cannot deadlock.
CREATE FUNCTION crm.lock_phones(p_phones text[]) RETURNS void
LANGUAGE sql
AS $$
    SELECT count(pg_advisory_xact_lock(hashtextextended('phone:' || p, 0)))
      FROM (SELECT DISTINCT p FROM unnest(p_phones) p ORDER BY 1) x
$$;

-- What the caller may do with a customer: 'write', 'read' or NULL.
-- Group admins write any; analysts read any; store roles write customers
-- with a relation at their store (a consultant: only their own relation or
-- the store pool's) and read those their store created without one.
CREATE FUNCTION crm.customer_access(p_customer_id uuid, p_user_id uuid, p_role text,
                                    p_store_id uuid)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN p_role = 'group_admin' THEN 'write'
        WHEN p_role = 'group_analyst' THEN 'read'
        WHEN p_store_id IS NULL OR p_role = 'store_node' THEN NULL
        WHEN EXISTS (SELECT 1 FROM crm.relations r
                      WHERE r.customer_id = p_customer_id AND r.store_id = p_store_id
                        AND (p_role <> 'consultant' OR r.owner_id IS NULL
                             OR r.owner_id = p_user_id)) THEN 'write'
        WHEN EXISTS (SELECT 1 FROM crm.customers c
                      WHERE c.id = p_customer_id AND c.store_id = p_store_id
                        AND NOT EXISTS (SELECT 1 FROM crm.relations r
                                         WHERE r.customer_id = c.id
                                           AND r.store_id = p_store_id)) THEN 'read'
    END
$$;

CREATE FUNCTION crm.customer_denied(p_role text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN p_role = 'consultant'
                THEN 'this customer belongs to another consultant or has no relation at your store'
                ELSE 'this customer has no relation at your store' END
$$;

-- The rows of a CustomerReply: the customer, then the relations (the
-- caller's store first), or for a collision the collision instead.
CREATE FUNCTION crm.customer_reply(p_outcome text, p_message text, p_customer_id uuid,
                                   p_store_id uuid, p_collision_id bigint)
RETURNS TABLE (outcome text, kind text, message text, cu crm.customer_view,
               rel crm.relation_view, col crm.lead_collision_view)
LANGUAGE sql STABLE
AS $$
    SELECT p_outcome, 'customer', p_message, c, NULL::crm.relation_view,
           NULL::crm.lead_collision_view
      FROM crm.customer_view c WHERE c.id = p_customer_id
    UNION ALL
    (SELECT p_outcome, CASE WHEN r.store_id = p_store_id THEN 'relation' ELSE 'other' END,
            p_message, NULL::crm.customer_view, r, NULL::crm.lead_collision_view
       FROM crm.relation_view r
      WHERE r.customer_id = p_customer_id AND p_collision_id IS NULL
      ORDER BY r.store_id IS DISTINCT FROM p_store_id, r.created_at_ms, r.id)
    UNION ALL
    SELECT p_outcome, 'collision', p_message, NULL::crm.customer_view,
           NULL::crm.relation_view, k
      FROM crm.lead_collision_view k WHERE k.id = p_collision_id
$$;

-- The owner a registration names: "" is the caller when a consultant, else
-- the store pool (NULL); a manager or call-center agent may name an enabled
-- consultant of the store.
CREATE FUNCTION crm.resolve_owner(p_user_id uuid, p_role text, p_store_id uuid, p_owner text)
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v uuid;
BEGIN
    IF p_owner IS NULL OR btrim(p_owner) = '' THEN
        RETURN CASE WHEN p_role = 'consultant' THEN p_user_id END;
    END IF;
    SELECT u.id INTO v FROM crm.users u
     WHERE u.username = lower(btrim(p_owner)) AND u.store_id = p_store_id
       AND u.role = 'consultant' AND NOT u.disabled;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation.owner',
            MESSAGE = format('relation.owner: %s is not an enabled consultant of your store',
                             p_owner);
    END IF;
    IF v <> p_user_id AND p_role NOT IN ('sales_manager', 'store_manager', 'call_center') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', COLUMN = 'relation.owner',
            MESSAGE = 'only a manager or a call-center agent may register a customer for another consultant';
    END IF;
    RETURN v;
END
$$;

-- The customer a registration refers to: the same id, else the customer
-- holding the first listed phone, else any listed phone.
CREATE FUNCTION crm.find_customer(p_id uuid, p_phones text[]) RETURNS uuid
LANGUAGE sql STABLE
AS $$
    SELECT x.id FROM (
        SELECT c.id, 0 AS rank FROM crm.customers c WHERE c.id = p_id
        UNION ALL
        SELECT p.customer_id, 1 + array_position(p_phones, p.phone)
          FROM crm.customer_phones p WHERE p.phone = ANY (p_phones)
    ) x ORDER BY x.rank LIMIT 1
$$;

-- Body types of the listed models (U+001F-joined) for a brand, "" where
-- the model is unknown, joined the same way.
CREATE FUNCTION crm.model_body_types(p_brand text, p_models text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(string_agg(coalesce(
               (SELECT m.body_type FROM crm.models m
                 WHERE m.brand = p_brand AND lower(m.name) = lower(btrim(t.model))
                 ORDER BY m.name LIMIT 1), ''), E'\x1f' ORDER BY t.ord), '')
      FROM unnest(string_to_array(coalesce(p_models, ''), E'\x1f')) WITH ORDINALITY t(model, ord)
$$;

-- Replaces a relation's intents by the U+001F-joined list of
-- model U+001E body_type U+001E configuration U+001E budget_min U+001E
-- budget_max U+001E needs. An empty body type of a known model of the
-- brand takes the model's.
CREATE FUNCTION crm.intents_replace(p_relation_id uuid, p_brand text, p_intents text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    items text[] := string_to_array(coalesce(p_intents, ''), E'\x1f');
    f text[];
BEGIN
    IF cardinality(items) > 16 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation.intents',
            MESSAGE = 'a relation has at most 16 intended models';
    END IF;
    DELETE FROM crm.relation_intents i WHERE i.relation_id = p_relation_id;
    FOR k IN 1 .. cardinality(items) LOOP
        f := string_to_array(items[k], E'\x1e');
        IF cardinality(f) <> 6 OR f[1] = '' OR f[4] !~ '^[0-9]{1,10}$' OR f[5] !~ '^[0-9]{1,10}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation.intents',
                MESSAGE = format('relation.intents[%s] is malformed', k - 1);
        END IF;
        IF f[4]::bigint > 2147483647 OR f[5]::bigint > 2147483647 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation.intents',
                MESSAGE = format('relation.intents[%s]: budget too large', k - 1);
        END IF;
        IF f[5]::integer <> 0 AND f[5]::integer < f[4]::integer THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation.intents',
                MESSAGE = format('relation.intents[%s]: budget_max is below budget_min', k - 1);
        END IF;
        INSERT INTO crm.relation_intents (relation_id, position, model, body_type, configuration,
                                          budget_min, budget_max, needs)
        VALUES (p_relation_id, k - 1, f[1],
                CASE WHEN f[2] <> '' THEN f[2]
                     ELSE coalesce(nullif(crm.model_body_types(p_brand, f[1]), ''), '') END,
                f[3], f[4]::integer, f[5]::integer, f[6]);
    END LOOP;
END
$$;

-- STMT_CREATE_CONTEXT: what crmd needs to pack the relation a store
-- registration opens, read just before it writes. Refuses what the write
-- would refuse about the caller and the owner.
CREATE FUNCTION crm.create_context(p_session_id uuid, p_customer_id text, p_phones text,
                                   p_owner text, p_models text)
RETURNS TABLE (existing_customer_id uuid, owner text, owner_name text, store_code text,
               store_name text, brand text, protection_days integer, body_types text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    st record;
    v_owner uuid;
    v_phones text[];
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role IN ('group_analyst', 'store_node') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'your role cannot create customers';
    END IF;
    IF me.store_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation',
            MESSAGE = 'group roles register customers without a store relation';
    END IF;
    v_phones := crm.check_phones(p_phones, 'customer.phone');
    v_owner := crm.resolve_owner(me.user_id, me.role, me.store_id, p_owner);
    SELECT s.code, s.name, s.brand INTO st FROM crm.stores s WHERE s.id = me.store_id;
    RETURN QUERY
    SELECT crm.find_customer(crm.check_uuid(p_customer_id, 'customer.id', true), v_phones),
           coalesce(u.username, ''), coalesce(u.display_name, ''), st.code, st.name, st.brand,
           (SELECT gp.lead_protection_days FROM crm.group_policy gp),
           crm.model_body_types(st.brand, p_models)
      FROM (SELECT 1) one LEFT JOIN crm.users u ON u.id = v_owner;
END
$$;

-- STMT_CUSTOMER_CREATE. Registers a customer and, for store roles, the
-- store's relation. The bundle holds the packed Customer, then the packed
-- Relation; each goes to the outbox only if that record is written.
--   * Same id, or any listed phone already a customer's: that customer
--     (outcome 'existed'), its profile unchanged.
--   * Relation: a relation of this store already there is returned
--     ('existed') when it is the same id, the same owner, the store pool's,
--     or its protection has ended; otherwise (another owner, protected) and
--     when a store of the same brand holds a protected relation, the
--     attempt is recorded in crm.lead_collisions and answered 'collision'.
--     Otherwise this store's relation is opened with level and protection.
--   * 'retry': the relation was packed for another customer than the one
--     the phones belong to now (a registration raced this one); nothing is
--     written and crmd packs it again.
CREATE FUNCTION crm.customer_create(
    p_session_id uuid, p_id text, p_name text, p_phones text, p_gender text,
    p_birth_year integer, p_age_band text, p_wechat text, p_email text, p_occupation text,
    p_region text, p_tags text, p_important boolean, p_at_ms bigint,
    p_rel_id text, p_rel_customer_id text, p_rel_owner text, p_level text, p_source text,
    p_first_contact_at_ms bigint, p_first_contact_place text, p_first_contact_scenario text,
    p_first_feedback text, p_status text, p_intents text, p_protected_until_ms bigint,
    p_payloads bytea)
RETURNS TABLE (outcome text, kind text, message text, cu crm.customer_view,
               rel crm.relation_view, col crm.lead_collision_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_rel_id uuid;
    v_name text := btrim(p_name, E' \t\r\n\u3000');
    v_phones text[];
    v_at timestamptz;
    v_customer uuid;
    v_new_customer boolean := false;
    v_brand text;
    v_owner uuid;
    v_level text := coalesce(nullif(p_level, ''), 'N');
    v_mine crm.relations;
    v_protecting crm.relations;
    v_collision bigint;
    v_message text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role IN ('group_analyst', 'store_node') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'your role cannot create customers';
    END IF;
    v_id := crm.check_uuid(p_id, 'customer.id', true);
    IF v_name IS NULL OR v_name = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'customer.name',
            MESSAGE = 'customer.name is required';
    END IF;
    v_phones := crm.check_phones(p_phones, 'customer.phone');
    IF p_at_ms IS NULL OR p_payloads IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
            MESSAGE = 'write time and outbox payloads are required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    IF me.store_id IS NOT NULL THEN
        v_rel_id := crm.check_uuid(p_rel_id, 'relation.id', true);
        IF v_level NOT IN ('N', 'H', 'A', 'B', 'C') THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation.level',
                MESSAGE = 'relation.level must be N, H, A, B or C: orders set O, D and T';
        END IF;
        v_owner := crm.resolve_owner(me.user_id, me.role, me.store_id, p_rel_owner);
    END IF;

    PERFORM crm.lock_phones(v_phones);
    v_customer := crm.find_customer(v_id, v_phones);
    IF v_customer IS NULL THEN
        INSERT INTO crm.customers (id, name, phone, created_by, store_id, gender, birth_year,
                                   age_band, wechat, email, occupation, region, tags, important,
                                   created_at, updated_at)
        VALUES (v_id, v_name, v_phones[1], me.user_id, me.store_id, coalesce(p_gender, ''),
                nullif(p_birth_year, 0), coalesce(p_age_band, ''), coalesce(p_wechat, ''),
                coalesce(p_email, ''), coalesce(p_occupation, ''), coalesce(p_region, ''),
                string_to_array(coalesce(p_tags, ''), E'\x1f'), coalesce(p_important, false),
                v_at, v_at);
        INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind, added_at)
        SELECT t.p, v_id, t.ord = 1, crm.phone_kind(t.p), v_at
          FROM unnest(v_phones) WITH ORDINALITY t(p, ord);
        v_customer := v_id;
        v_new_customer := true;
    END IF;

    IF me.store_id IS NULL THEN
        IF v_new_customer THEN
            PERFORM crm.outbox_append('customer', v_id, crm.payload_part(p_payloads, 0));
        END IF;
        RETURN QUERY SELECT * FROM crm.customer_reply(
            CASE WHEN v_new_customer THEN 'ok' ELSE 'existed' END, '', v_customer, NULL, NULL);
        RETURN;
    END IF;

    -- One registration of a customer at a time decides protection.
    PERFORM pg_advisory_xact_lock(hashtextextended('customer:' || v_customer::text, 0));
    SELECT s.brand INTO v_brand FROM crm.stores s WHERE s.id = me.store_id;
    SELECT r.* INTO v_mine FROM crm.relations r
     WHERE r.customer_id = v_customer AND r.store_id = me.store_id;
    IF FOUND THEN
        IF v_mine.id = v_rel_id OR v_mine.owner_id IS NOT DISTINCT FROM v_owner
           OR v_mine.owner_id IS NULL OR v_mine.protected_until <= now() THEN
            RETURN QUERY SELECT * FROM crm.customer_reply('existed', '', v_customer,
                                                          me.store_id, NULL);
            RETURN;
        END IF;
        v_protecting := v_mine;
    ELSE
        SELECT r.* INTO v_protecting FROM crm.relations r JOIN crm.stores s ON s.id = r.store_id
         WHERE r.customer_id = v_customer AND s.brand = v_brand AND r.store_id <> me.store_id
           AND r.protected_until > now()
         ORDER BY r.created_at, r.id LIMIT 1;
    END IF;
    IF v_protecting.id IS NOT NULL THEN
        INSERT INTO crm.lead_collisions (customer_id, owner_relation_id, owner_id, owner_store_id,
                                         brand, protected_until, attempted_by, attempted_store_id)
        VALUES (v_customer, v_protecting.id, v_protecting.owner_id, v_protecting.store_id,
                v_brand, v_protecting.protected_until, me.user_id, me.store_id)
        RETURNING id INTO v_collision;
        SELECT format('this customer is a protected lead of %s at %s %s until %s (UTC+8); '
                      'your registration was recorded as a collision',
                      CASE WHEN k.owner = '' THEN 'the store pool'
                           ELSE k.owner_name || ' (' || k.owner || ')' END,
                      k.owner_store_code, k.owner_store_name,
                      to_char(crm.from_ms(k.protected_until_ms) AT TIME ZONE 'Asia/Shanghai',
                              'YYYY-MM-DD HH24:MI'))
          INTO v_message
          FROM crm.lead_collision_view k WHERE k.id = v_collision;
        RETURN QUERY SELECT * FROM crm.customer_reply('collision', v_message, v_customer,
                                                      me.store_id, v_collision);
        RETURN;
    END IF;

    -- This store opens its own relation. crmd packed it for the customer
    -- it saw just before; another customer now (one registered meanwhile
    -- with the same phone) means crmd must pack it again: 'retry', nothing
    -- written.
    IF p_rel_customer_id IS DISTINCT FROM v_customer::text THEN
        RETURN QUERY SELECT * FROM crm.customer_reply(
            'retry', 'the customer was registered by someone else meanwhile; try again',
            v_customer, me.store_id, NULL);
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = v_rel_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'relation.id',
            MESSAGE = 'relation.id is already the id of another relation';
    END IF;
    IF p_protected_until_ms IS NULL OR p_protected_until_ms < p_at_ms
       OR p_protected_until_ms > p_at_ms + 366 * 86400000::bigint THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'protected_until',
            MESSAGE = 'protection end must be within a year of the registration';
    END IF;
    INSERT INTO crm.relations (id, customer_id, store_id, owner_id, level, source,
                               first_contact_at, first_contact_place, first_contact_scenario,
                               first_feedback, status, protected_until, created_at, updated_at,
                               created_by, last_contact_at)
    VALUES (v_rel_id, v_customer, me.store_id, v_owner, v_level,
            coalesce(nullif(p_source, ''), 'other'),
            CASE WHEN coalesce(p_first_contact_at_ms, 0) <> 0
                 THEN crm.from_ms(p_first_contact_at_ms) END,
            coalesce(p_first_contact_place, ''), coalesce(p_first_contact_scenario, ''),
            coalesce(p_first_feedback, ''), coalesce(nullif(p_status, ''), 'active'),
            crm.from_ms(p_protected_until_ms), v_at, v_at, me.user_id,
            -- The first contact is the last one until follow-ups exist.
            CASE WHEN coalesce(p_first_contact_at_ms, 0) <> 0
                 THEN crm.from_ms(p_first_contact_at_ms) END);
    PERFORM crm.intents_replace(v_rel_id, v_brand, p_intents);
    INSERT INTO crm.level_changes (relation_id, from_level, to_level, changed_by, changed_at, reason)
    VALUES (v_rel_id, NULL, v_level, me.user_id, v_at, 'registered');
    IF v_new_customer THEN
        PERFORM crm.outbox_append('customer', v_id, crm.payload_part(p_payloads, 0));
    END IF;
    PERFORM crm.outbox_append('relation', v_rel_id, crm.payload_part(p_payloads, 1));
    RETURN QUERY SELECT * FROM crm.customer_reply(
        CASE WHEN v_new_customer THEN 'ok' ELSE 'existed' END, '', v_customer, me.store_id, NULL);
END
$$;

-- STMT_CUSTOMER_GET: REPLY rows of a customer the caller may see.
CREATE FUNCTION crm.customer_get(p_session_id uuid, p_id text)
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
    PERFORM 1 FROM crm.customers c WHERE c.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such customer';
    END IF;
    IF crm.customer_access(v_id, me.user_id, me.role, me.store_id) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = crm.customer_denied(me.role);
    END IF;
    RETURN QUERY SELECT * FROM crm.customer_reply('ok', '', v_id, me.store_id, NULL);
END
$$;

-- STMT_CUSTOMER_UPDATE: writes the whole profile crmd merged from the
-- record it read and the fields asked for, if the version is still the one
-- read; otherwise answers 'stale' with the current record and writes
-- nothing. The phones replace the customer's set (the first is primary).
-- Bundle: the packed Customer.
CREATE FUNCTION crm.customer_update(
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
    SELECT p.phone INTO v_taken FROM crm.customer_phones p
     WHERE p.phone = ANY (v_phones) AND p.customer_id <> v_id
     ORDER BY array_position(v_phones, p.phone) LIMIT 1;
    IF FOUND THEN
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

-- A relation the caller may change: its store's people (a consultant: own
-- relations and the store pool's). Group roles may read any.
CREATE FUNCTION crm.relation_check_access(p_relation crm.relations, p_user_id uuid,
                                          p_role text, p_store_id uuid, p_write boolean)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF NOT p_write AND p_role IN ('group_admin', 'group_analyst') THEN
        RETURN;
    END IF;
    IF p_store_id IS NULL OR p_relation.store_id <> p_store_id OR p_role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only the relation''s own store may change it';
    END IF;
    IF p_role = 'consultant' AND p_relation.owner_id IS NOT NULL
       AND p_relation.owner_id <> p_user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'this relation belongs to another consultant';
    END IF;
END
$$;

-- STMT_RELATION_GET: RELATION columns (all of crm.relation_view) and the
-- body types of the listed models for the relation's brand, read before a
-- relation write.
CREATE FUNCTION crm.relation_get(p_session_id uuid, p_id text, p_models text)
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
    SELECT x.* INTO r FROM crm.relations x WHERE x.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such relation';
    END IF;
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, false);
    RETURN QUERY
    SELECT v, crm.model_body_types(v.brand, p_models)
      FROM crm.relation_view v WHERE v.id = v_id;
END
$$;

-- STMT_RELATION_UPDATE: writes the relation fields crmd merged, if the
-- version is still the one read; else 'stale' and the current relation.
-- Bundle: the packed Relation.
CREATE FUNCTION crm.relation_update(
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
    SELECT x.* INTO r FROM crm.relations x WHERE x.id = v_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
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

-- STMT_LEVEL_SET: consultants set H, A, B, C on their own relations,
-- sales and store managers on any of their store's. Every change is a row
-- of crm.level_changes. Setting the level it has changes nothing.
-- Bundle: the packed Relation.
CREATE FUNCTION crm.level_set(p_session_id uuid, p_id text, p_version bigint, p_level text,
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
    SELECT x.* INTO r FROM crm.relations x WHERE x.id = v_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
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

-- The enabled consultant of the caller's store a handover goes to.
CREATE FUNCTION crm.handover_target(p_store_id uuid, p_to_owner text,
                                    OUT id uuid, OUT display_name text)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    SELECT x.id, x.display_name INTO id, display_name FROM crm.users x
     WHERE x.username = lower(btrim(coalesce(p_to_owner, ''))) AND x.store_id = p_store_id
       AND x.role = 'consultant' AND NOT x.disabled;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'to_owner',
            MESSAGE = format('to_owner: %s is not an enabled consultant of your store',
                             coalesce(nullif(p_to_owner, ''), '(empty)'));
    END IF;
END
$$;

-- STMT_HANDOVER_PLAN: the relations a handover would move (RELATION
-- columns, all of crm.relation_view, ordered by id) and the new owner's
-- username and display name. Either the listed relations (U+001F-joined ids) or every
-- relation `from_owner` owns at the store; those already the target's are
-- left out.
CREATE FUNCTION crm.handover_plan(p_session_id uuid, p_ids text, p_from_owner text,
                                  p_to_owner text)
RETURNS TABLE (rel crm.relation_view, to_owner text, to_owner_name text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    target record;
    v_ids uuid[] := '{}';
    v_from uuid;
    v_item text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('sales_manager', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a sales manager or store manager hands customers over';
    END IF;
    SELECT * INTO target FROM crm.handover_target(me.store_id, p_to_owner);
    FOREACH v_item IN ARRAY string_to_array(coalesce(p_ids, ''), E'\x1f') LOOP
        v_ids := v_ids || crm.check_uuid(v_item, 'relation_ids');
    END LOOP;
    IF (cardinality(v_ids) > 0) = (coalesce(p_from_owner, '') <> '') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation_ids',
            MESSAGE = 'give either relation_ids or from_owner';
    END IF;
    IF cardinality(v_ids) > 0 THEN
        SELECT i INTO v_item FROM unnest(v_ids) i
         WHERE NOT EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = i AND r.store_id = me.store_id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'relation_ids',
                MESSAGE = format('relation %s is not a relation of your store', v_item);
        END IF;
    ELSE
        SELECT u.id INTO v_from FROM crm.users u
         WHERE u.username = lower(btrim(p_from_owner)) AND u.store_id = me.store_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'from_owner',
                MESSAGE = format('from_owner: %s is not a user of your store', p_from_owner);
        END IF;
    END IF;
    RETURN QUERY
    SELECT v, lower(btrim(p_to_owner)), target.display_name FROM crm.relation_view v
     WHERE v.store_id = me.store_id
       AND (CASE WHEN v_from IS NULL THEN v.id = ANY (v_ids) ELSE v.owner_id = v_from END)
       AND v.owner_id IS DISTINCT FROM target.id
     ORDER BY v.id;
END
$$;

-- STMT_HANDOVER: moves the planned relations (U+001F-joined ids and the
-- versions read) to `to_owner`, each recorded in crm.handovers with its
-- version bumped; protected_until stays. All or nothing: a relation changed
-- since the plan is a conflict. Bundle: the packed Relations, in id order.
CREATE FUNCTION crm.handover(p_session_id uuid, p_ids text, p_versions text, p_to_owner text,
                             p_reason text, p_at_ms bigint, p_payloads bytea)
RETURNS TABLE (relation_id uuid)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    target record;
    v_ids text[] := string_to_array(coalesce(p_ids, ''), E'\x1f');
    v_versions text[] := string_to_array(coalesce(p_versions, ''), E'\x1f');
    v_reason text := btrim(coalesce(p_reason, ''));
    v_at timestamptz;
    r crm.relations;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('sales_manager', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a sales manager or store manager hands customers over';
    END IF;
    SELECT * INTO target FROM crm.handover_target(me.store_id, p_to_owner);
    IF v_reason = '' OR char_length(v_reason) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reason',
            MESSAGE = 'reason is required (at most 500 characters)';
    END IF;
    IF cardinality(v_ids) <> cardinality(v_versions) OR p_at_ms IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation_ids',
            MESSAGE = 'each relation needs the version read';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    FOR k IN 1 .. cardinality(v_ids) LOOP
        SELECT x.* INTO r FROM crm.relations x
         WHERE x.id = crm.check_uuid(v_ids[k], 'relation_ids') FOR NO KEY UPDATE;
        IF NOT FOUND OR r.store_id <> me.store_id THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'relation_ids',
                MESSAGE = format('relation %s is not a relation of your store', v_ids[k]);
        END IF;
        IF r.version::text <> v_versions[k] THEN
            RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'relation_ids',
                MESSAGE = format('relation %s changed during the handover; try again', v_ids[k]);
        END IF;
        UPDATE crm.relations x SET owner_id = target.id, version = x.version + 1, updated_at = v_at
         WHERE x.id = r.id;
        INSERT INTO crm.handovers (relation_id, from_owner_id, to_owner_id, by_user, at, reason)
        VALUES (r.id, r.owner_id, target.id, me.user_id, v_at, v_reason);
    END LOOP;
    FOR k IN 1 .. cardinality(v_ids) LOOP
        PERFORM crm.outbox_append('relation', v_ids[k]::uuid, crm.payload_part(p_payloads, k - 1));
    END LOOP;
    RETURN QUERY SELECT i::uuid FROM unnest(v_ids) i;
END
$$;

-- ------------------------------------------------------------ grants

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA crm FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.name_grams(text), crm.from_ms(bigint),'
                   ' crm.payload_part(bytea, integer), crm.check_uuid(text, text, boolean),'
                   ' crm.check_phones(text, text), crm.phone_kind(text),'
                   ' crm.lock_phones(text[]), crm.customer_access(uuid, uuid, text, uuid),'
                   ' crm.customer_denied(text),'
                   ' crm.customer_reply(text, text, uuid, uuid, bigint),'
                   ' crm.resolve_owner(uuid, text, uuid, text), crm.find_customer(uuid, text[]),'
                   ' crm.model_body_types(text, text), crm.intents_replace(uuid, text, text),'
                   ' crm.create_context(uuid, text, text, text, text),'
                   ' crm.customer_create(uuid, text, text, text, text, integer, text, text, text,'
                   '   text, text, text, boolean, bigint, text, text, text, text, text, bigint,'
                   '   text, text, text, text, text, bigint, bytea),'
                   ' crm.customer_get(uuid, text),'
                   ' crm.customer_update(uuid, text, bigint, text, text, text, integer, text,'
                   '   text, text, text, text, text, boolean, bigint, bytea),'
                   ' crm.relation_check_access(crm.relations, uuid, text, uuid, boolean),'
                   ' crm.relation_get(uuid, text, text),'
                   ' crm.relation_update(uuid, text, bigint, text, bigint, text, text, text,'
                   '   text, text, bigint, bytea),'
                   ' crm.level_set(uuid, text, bigint, text, text, bigint, bytea),'
                   ' crm.handover_target(uuid, text),'
                   ' crm.handover_plan(uuid, text, text, text),'
                   ' crm.handover(uuid, text, text, text, text, bigint, bytea) TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.customer_view, crm.relation_view, crm.lead_collision_view,'
                   ' crm.group_policy, crm.models, crm.level_changes, crm.lead_collisions,'
                   ' crm.handovers TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON crm.customer_phones,'
                   ' crm.relation_intents TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.relations TO %I', app);
    EXECUTE format('GRANT INSERT ON crm.level_changes, crm.lead_collisions, crm.handovers TO %I',
                   app);
END
$$;
