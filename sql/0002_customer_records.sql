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
