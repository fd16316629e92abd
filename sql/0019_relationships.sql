-- 0019_relationships: referrals, fleet and key accounts, satisfaction
-- surveys (CSI, SSI) and complaints (issue 6 "Relationships").
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.referrals: who referred whom. The referred customer's relation at
--   a store is referred at most once; the referrer is any customer the
--   caller may read. The reward moves none -> pending -> granted | refused
--   (none may go straight to granted or refused); granted and refused are
--   final, and only a sales or store manager decides them.
-- * crm.organizations: fleet and key accounts of a store (kind, name,
--   owner), their contacts (customers of the store, with a role and a
--   title) and purchase plans. An organization is one record on the wire:
--   adding a contact or a plan bumps its version and sends it whole.
-- * crm.survey_questions: the questionnaire per kind (csi: service, ssi:
--   sales), seeded here, changed by group admins (a question is retired,
--   never removed, so old answers keep their meaning). crm.surveys and
--   crm.survey_scores: one survey per subject, every active question of
--   its kind answered once, each score from 1 to the question's scale
--   (5 or 10, kept with the score).
-- * crm.complaints: received -> assigned -> in_handling -> resolved ->
--   closed, forward only, with one way back: a resolved complaint the
--   customer is not satisfied with is reopened to in_handling (a note is
--   required; the history keeps both moves). Closed is final. The due time
--   comes from crm.complaint_policy by priority unless given; overdue is
--   derived (not yet resolved and due before the time asked about). The
--   follow-ups (type 'complaint', sql/0013) that handled a complaint are
--   linked to it in crm.complaint_followups.
-- * Subjects that live in tables other migrations are adding while this
--   one is written: a referral's opportunity (crm.opportunities, sql/0018),
--   a survey's delivery (an order of crm.orders, sql/0018) or service visit
--   (crm.service_visits, sql/0017) are plain uuid columns, checked to exist
--   (crm.subject_exists) when the table is there, unchecked when it is not.
-- * Every write appends its record to the outbox (payload encoded here, as
--   crm.task_payload does: no plan step in crmd), which also audits it as a
--   'change' (sql/0011). An erasure blanks the free text of all four (a
--   trigger on crm.customers, like sql/0013's).
-- * Row-level security: referrals, surveys and complaints are visible with
--   their relation and written by its store; organizations by their store's
--   people (a consultant: own and unowned ones), group roles read all.

-- ------------------------------------------------------------ tables

CREATE TABLE crm.referrals (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    referrer_id uuid NOT NULL REFERENCES crm.customers (id),
    referred_id uuid NOT NULL REFERENCES crm.customers (id),
    relation_id uuid NOT NULL UNIQUE REFERENCES crm.relations (id),  -- the referred's
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    opportunity_id uuid,                        -- crm.opportunities when it exists
    note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    reward_status text NOT NULL DEFAULT 'none'
        CHECK (reward_status IN ('none', 'pending', 'granted', 'refused')),
    reward_note text NOT NULL DEFAULT '' CHECK (char_length(reward_note) <= 500),
    reward_by uuid REFERENCES crm.users (id),
    reward_at timestamptz,
    created_by uuid REFERENCES crm.users (id),
    created_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK (referrer_id <> referred_id),
    CHECK ((reward_status = 'none') = (reward_at IS NULL))
);
CREATE INDEX referrals_referrer ON crm.referrals (referrer_id);
CREATE INDEX referrals_referred ON crm.referrals (referred_id);
CREATE INDEX referrals_store ON crm.referrals (store_id, created_at);

CREATE TABLE crm.organizations (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('government', 'state_enterprise', 'private_enterprise',
                                       'taxi', 'rental', 'foreign_enterprise')),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    owner_id uuid REFERENCES crm.users (id),   -- NULL: the store's, no one's own
    note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    created_by uuid REFERENCES crm.users (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1)
);
CREATE UNIQUE INDEX organizations_store_name ON crm.organizations (store_id, lower(name));

CREATE TABLE crm.org_contacts (
    organization_id uuid NOT NULL REFERENCES crm.organizations (id),
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    role text NOT NULL CHECK (role IN ('decision_maker', 'purchasing', 'fleet_manager',
                                       'finance', 'user', 'other')),
    title text NOT NULL DEFAULT '' CHECK (char_length(title) <= 100),
    added_by uuid REFERENCES crm.users (id),
    added_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, customer_id)
);
CREATE INDEX org_contacts_customer ON crm.org_contacts (customer_id);

CREATE TABLE crm.purchase_plans (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES crm.organizations (id),
    model text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 100),
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100000),
    expected_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('planned', 'negotiating', 'ordered', 'delivered',
                                           'cancelled')),
    note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    created_by uuid REFERENCES crm.users (id),
    created_at timestamptz NOT NULL
);
CREATE INDEX purchase_plans_org ON crm.purchase_plans (organization_id, expected_at);

CREATE TABLE crm.survey_questions (
    kind text NOT NULL CHECK (kind IN ('csi', 'ssi')),
    number smallint NOT NULL CHECK (number BETWEEN 1 AND 50),
    text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 200),
    scale_max smallint NOT NULL CHECK (scale_max IN (5, 10)),
    active boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES crm.users (id),
    PRIMARY KEY (kind, number)
);
INSERT INTO crm.survey_questions (kind, number, text, scale_max) VALUES
    ('csi', 1, '对本次维修保养的总体满意度', 10),
    ('csi', 2, '服务顾问的专业和态度', 5),
    ('csi', 3, '维修质量（一次修复）', 5),
    ('csi', 4, '交车准时', 5),
    ('csi', 5, '向亲友推荐本店的可能性', 10),
    ('ssi', 1, '对购车经历的总体满意度', 10),
    ('ssi', 2, '销售顾问的专业和态度', 5),
    ('ssi', 3, '交车过程与车辆讲解', 5),
    ('ssi', 4, '向亲友推荐本店的可能性', 10);

CREATE TABLE crm.surveys (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('csi', 'ssi')),
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    subject_kind text NOT NULL CHECK (subject_kind IN ('delivery', 'service_visit')),
    subject_id uuid NOT NULL,                   -- an order or a service visit
    at timestamptz NOT NULL,                    -- when the customer answered
    comment text NOT NULL DEFAULT '' CHECK (char_length(comment) <= 1000),
    by_user uuid REFERENCES crm.users (id),
    created_at timestamptz NOT NULL,
    CHECK ((kind = 'csi') = (subject_kind = 'service_visit')),
    UNIQUE (kind, subject_id)
);
CREATE INDEX surveys_relation ON crm.surveys (relation_id, at);
CREATE INDEX surveys_customer ON crm.surveys (customer_id, at);
CREATE INDEX surveys_store ON crm.surveys (store_id, at);

CREATE TABLE crm.survey_scores (
    survey_id uuid NOT NULL REFERENCES crm.surveys (id),
    number smallint NOT NULL,
    score smallint NOT NULL,
    scale_max smallint NOT NULL CHECK (scale_max IN (5, 10)),
    PRIMARY KEY (survey_id, number),
    CHECK (score BETWEEN 1 AND scale_max)
);

-- Due time of a complaint by priority, from when it was received.
CREATE TABLE crm.complaint_policy (
    priority text PRIMARY KEY CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    due_hours integer NOT NULL CHECK (due_hours BETWEEN 1 AND 8760)
);
INSERT INTO crm.complaint_policy (priority, due_hours) VALUES
    ('urgent', 4), ('high', 24), ('normal', 72), ('low', 168);

CREATE TABLE crm.complaints (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    status text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'assigned', 'in_handling', 'resolved', 'closed')),
    priority text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    category text NOT NULL DEFAULT 'other'
        CHECK (category IN ('sales', 'service', 'product', 'staff', 'price', 'other')),
    content text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 2000),
    assignee_id uuid REFERENCES crm.users (id),
    received_at timestamptz NOT NULL,
    due_at timestamptz NOT NULL,
    resolution text NOT NULL DEFAULT '' CHECK (char_length(resolution) <= 1000),
    resolved_at timestamptz,
    closed_at timestamptz,
    created_by uuid REFERENCES crm.users (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK (due_at > received_at),
    CHECK (status = 'received' OR assignee_id IS NOT NULL),
    CHECK ((status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX complaints_relation ON crm.complaints (relation_id, received_at);
CREATE INDEX complaints_customer ON crm.complaints (customer_id, received_at);
CREATE INDEX complaints_store_open ON crm.complaints (store_id, due_at)
    WHERE status IN ('received', 'assigned', 'in_handling');
CREATE INDEX complaints_assignee ON crm.complaints (assignee_id, due_at);

-- Every move of a complaint, the first (NULL -> received) included.
CREATE TABLE crm.complaint_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES crm.complaints (id),
    from_status text,
    to_status text NOT NULL,
    assignee_id uuid REFERENCES crm.users (id),
    by_user uuid REFERENCES crm.users (id),
    at timestamptz NOT NULL,
    note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 1000)
);
CREATE INDEX complaint_events_complaint ON crm.complaint_events (complaint_id, id);

-- The follow-ups that handled a complaint (each handles one complaint).
CREATE TABLE crm.complaint_followups (
    complaint_id uuid NOT NULL REFERENCES crm.complaints (id),
    followup_id uuid NOT NULL UNIQUE REFERENCES crm.followups (id),
    linked_by uuid REFERENCES crm.users (id),
    linked_at timestamptz NOT NULL,
    PRIMARY KEY (complaint_id, followup_id)
);

-- ------------------------------------------------------------ views

-- The REFERRAL columns of server/stmts.h, in order, then store_id. Names
-- of customers the caller may not read are "".
CREATE VIEW crm.referral_view WITH (security_invoker = true) AS
SELECT f.id, f.referrer_id, coalesce(a.name, '') AS referrer_name, f.referred_id,
       coalesce(b.name, '') AS referred_name, f.relation_id, s.code AS store_code,
       coalesce(f.opportunity_id::text, '') AS opportunity_id, f.note, f.reward_status,
       f.reward_note, coalesce(rb.username, '') AS reward_by,
       coalesce(crm.ms(f.reward_at), 0) AS reward_at_ms, coalesce(cb.username, '') AS created_by,
       crm.ms(f.created_at) AS created_at_ms, f.version, f.store_id
  FROM crm.referrals f
  JOIN crm.stores s ON s.id = f.store_id
  LEFT JOIN crm.customers a ON a.id = f.referrer_id
  LEFT JOIN crm.customers b ON b.id = f.referred_id
  LEFT JOIN crm.users rb ON rb.id = f.reward_by
  LEFT JOIN crm.users cb ON cb.id = f.created_by;

-- The ORGANIZATION columns: contacts are customer_id, name, role, title,
-- added_by, added_at_ms joined by U+001E, contacts by U+001F; plans are
-- id, model, quantity, expected_at_ms, status, note, created_by,
-- created_at_ms likewise. Then store_id, owner_id.
CREATE VIEW crm.organization_view WITH (security_invoker = true) AS
SELECT o.id, o.kind, o.name, s.code AS store_code, coalesce(u.username, '') AS owner,
       coalesce(u.display_name, '') AS owner_name, o.note, coalesce(cb.username, '') AS created_by,
       crm.ms(o.created_at) AS created_at_ms, o.version,
       coalesce((SELECT string_agg(k.customer_id || E'\x1e' || coalesce(c.name, '') || E'\x1e'
                                   || k.role || E'\x1e' || k.title || E'\x1e'
                                   || coalesce(ab.username, '') || E'\x1e' || crm.ms(k.added_at),
                                   E'\x1f' ORDER BY k.added_at, k.customer_id)
                   FROM crm.org_contacts k
                   LEFT JOIN crm.customers c ON c.id = k.customer_id
                   LEFT JOIN crm.users ab ON ab.id = k.added_by
                  WHERE k.organization_id = o.id), '') AS contacts,
       coalesce((SELECT string_agg(p.id || E'\x1e' || p.model || E'\x1e' || p.quantity
                                   || E'\x1e' || crm.ms(p.expected_at) || E'\x1e' || p.status
                                   || E'\x1e' || p.note || E'\x1e' || coalesce(pb.username, '')
                                   || E'\x1e' || crm.ms(p.created_at),
                                   E'\x1f' ORDER BY p.expected_at, p.id)
                   FROM crm.purchase_plans p
                   LEFT JOIN crm.users pb ON pb.id = p.created_by
                  WHERE p.organization_id = o.id), '') AS plans,
       o.store_id, o.owner_id
  FROM crm.organizations o
  JOIN crm.stores s ON s.id = o.store_id
  LEFT JOIN crm.users u ON u.id = o.owner_id
  LEFT JOIN crm.users cb ON cb.id = o.created_by;

-- The SURVEY columns: scores are number, score, scale_max, question text
-- joined by U+001E, scores by U+001F, in question order; score_percent is
-- the sum of scores over the sum of scales, rounded. Then store_id.
CREATE VIEW crm.survey_view WITH (security_invoker = true) AS
SELECT v.id, v.kind, v.customer_id, coalesce(c.name, '') AS customer_name, v.relation_id,
       s.code AS store_code, v.subject_kind, v.subject_id, crm.ms(v.at) AS at_ms,
       coalesce((SELECT string_agg(x.number || E'\x1e' || x.score || E'\x1e' || x.scale_max
                                   || E'\x1e' || coalesce(q.text, ''), E'\x1f' ORDER BY x.number)
                   FROM crm.survey_scores x
                   LEFT JOIN crm.survey_questions q ON q.kind = v.kind AND q.number = x.number
                  WHERE x.survey_id = v.id), '') AS scores,
       v.comment, coalesce(u.username, '') AS by_user, crm.ms(v.created_at) AS created_at_ms,
       coalesce((SELECT round(100.0 * sum(x.score) / sum(x.scale_max))::integer
                   FROM crm.survey_scores x WHERE x.survey_id = v.id), 0) AS score_percent,
       v.store_id
  FROM crm.surveys v
  JOIN crm.stores s ON s.id = v.store_id
  LEFT JOIN crm.customers c ON c.id = v.customer_id
  LEFT JOIN crm.users u ON u.id = v.by_user;

-- The COMPLAINT columns: events are from_status, to_status, by, at_ms,
-- note, assignee joined by U+001E, events by U+001F, oldest first;
-- followup_ids joined by U+001F, by link time. Then store_id, assignee_id,
-- due_at.
CREATE VIEW crm.complaint_view WITH (security_invoker = true) AS
SELECT k.id, k.customer_id, coalesce(c.name, '') AS customer_name, k.relation_id,
       s.code AS store_code, k.status, k.priority, k.category, k.content,
       coalesce(a.username, '') AS assignee, coalesce(a.display_name, '') AS assignee_name,
       crm.ms(k.received_at) AS received_at_ms, crm.ms(k.due_at) AS due_at_ms, k.resolution,
       coalesce(crm.ms(k.resolved_at), 0) AS resolved_at_ms,
       coalesce(crm.ms(k.closed_at), 0) AS closed_at_ms, coalesce(cb.username, '') AS created_by,
       crm.ms(k.created_at) AS created_at_ms, k.version,
       coalesce((SELECT string_agg(coalesce(e.from_status, '') || E'\x1e' || e.to_status
                                   || E'\x1e' || coalesce(eb.username, '') || E'\x1e'
                                   || crm.ms(e.at) || E'\x1e' || e.note || E'\x1e'
                                   || coalesce(ea.username, ''), E'\x1f' ORDER BY e.id)
                   FROM crm.complaint_events e
                   LEFT JOIN crm.users eb ON eb.id = e.by_user
                   LEFT JOIN crm.users ea ON ea.id = e.assignee_id
                  WHERE e.complaint_id = k.id), '') AS events,
       coalesce((SELECT string_agg(l.followup_id::text, E'\x1f'
                                   ORDER BY l.linked_at, l.followup_id)
                   FROM crm.complaint_followups l WHERE l.complaint_id = k.id), '')
           AS followup_ids,
       k.store_id, k.assignee_id, k.due_at
  FROM crm.complaints k
  JOIN crm.stores s ON s.id = k.store_id
  LEFT JOIN crm.customers c ON c.id = k.customer_id
  LEFT JOIN crm.users a ON a.id = k.assignee_id
  LEFT JOIN crm.users cb ON cb.id = k.created_by;

-- ------------------------------------------------------------ helpers

-- A length-delimited field holding an embedded message (the wire encoding
-- of sql/0013's crm.pb_text, for bytes).
CREATE FUNCTION crm.relationship_pb_nested(p_field integer, p_value bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE
AS $$
    SELECT crm.pb_varint(p_field << 3 | 2) || crm.pb_varint(octet_length(coalesce(p_value, '')))
        || coalesce(p_value, '')
$$;

-- Whether subject p_kind ('opportunity', 'delivery': an order,
-- 'service_visit') p_id exists, the caller may see it, and it is of
-- relation p_relation_id (an opportunity or order: that relation; a
-- visit: its customer at its store). True when the table does not exist
-- (sql/0017 and 0018 add them). Constant statement texts.
CREATE FUNCTION crm.subject_exists(p_kind text, p_id uuid, p_relation_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_table text := CASE p_kind WHEN 'opportunity' THEN 'crm.opportunities'
                                WHEN 'delivery' THEN 'crm.orders'
                                WHEN 'service_visit' THEN 'crm.service_visits' END;
    v_found boolean;
BEGIN
    IF v_table IS NULL OR to_regclass(v_table) IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE CASE p_kind
        WHEN 'opportunity' THEN
            'SELECT EXISTS (SELECT 1 FROM crm.opportunities WHERE id = $1 AND relation_id = $2)'
        WHEN 'delivery' THEN
            'SELECT EXISTS (SELECT 1 FROM crm.orders WHERE id = $1 AND relation_id = $2)'
        ELSE 'SELECT EXISTS (SELECT 1 FROM crm.service_visits v JOIN crm.relations r'
             ' ON r.id = $2 AND r.customer_id = v.customer_id AND r.store_id = v.store_id'
             ' WHERE v.id = $1)' END
       INTO v_found USING p_id, p_relation_id;
    RETURN v_found;
END
$$;

-- The store relation a relationship record is written on, locked: the
-- relation p_relation_id, else customer p_customer_id's relation at the
-- caller's store. The caller must be able to write it (a consultant: own
-- relations and the pool's). DC404 / DC403 otherwise.
CREATE FUNCTION crm.relationship_relation(p_user_id uuid, p_role text, p_store_id uuid,
                                          p_customer_id text, p_relation_id text)
RETURNS crm.relations
LANGUAGE plpgsql
AS $$
DECLARE
    r crm.relations;
    v_cust uuid;
BEGIN
    IF coalesce(p_relation_id, '') <> '' THEN
        r := crm.relation_row(crm.check_uuid(p_relation_id, 'relation_id'), true);
        IF r.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'relation_id',
                MESSAGE = 'no such relation';
        END IF;
    ELSE
        v_cust := crm.check_uuid(p_customer_id, 'customer_id');
        SELECT x.* INTO r FROM crm.relations x
         WHERE x.customer_id = v_cust AND x.store_id = p_store_id FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            IF NOT crm.customer_exists(v_cust) THEN
                RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'customer_id',
                    MESSAGE = 'no such customer';
            END IF;
            IF p_store_id IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'DC403',
                    MESSAGE = 'only the people of a store record this, on its own relations';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = crm.customer_denied(p_role);
        END IF;
    END IF;
    PERFORM crm.relation_check_access(r, p_user_id, p_role, p_store_id, true);
    RETURN r;
END
$$;

-- A write time or an event time from a request: required, not in the
-- future (five minutes' slack for desk clocks).
CREATE FUNCTION crm.relationship_time(p_ms bigint, p_field text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p_ms IS NULL OR p_ms <= 0 OR crm.from_ms(p_ms) > now() + interval '5 minutes' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s must be a time in unix milliseconds, not in the future',
                             p_field);
    END IF;
    RETURN crm.from_ms(p_ms);
END
$$;

-- Text a person typed: trimmed, at most p_max characters, required or not.
CREATE FUNCTION crm.relationship_text(p_text text, p_field text, p_max integer,
                                      p_required boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := btrim(coalesce(p_text, ''), E' \t\r\n\u3000');
BEGIN
    IF p_required AND v = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s is required', p_field);
    END IF;
    IF char_length(v) > p_max THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s must be at most %s characters', p_field, p_max);
    END IF;
    RETURN v;
END
$$;

-- An enabled person of store p_store_id (not a store node), by username.
CREATE FUNCTION crm.store_person(p_store_id uuid, p_username text, p_field text) RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v uuid;
BEGIN
    SELECT u.id INTO v FROM crm.users u
     WHERE u.username = lower(btrim(coalesce(p_username, ''))) AND u.store_id = p_store_id
       AND NOT u.disabled AND u.role <> 'store_node';
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = p_field,
            MESSAGE = format('%s: %s is not an enabled person of the store', p_field,
                             coalesce(nullif(p_username, ''), '(empty)'));
    END IF;
    RETURN v;
END
$$;

-- ------------------------------------------------------------ outbox payloads

-- Packed crm.Referral (proto/crm.proto), without the derived names.
CREATE FUNCTION crm.referral_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, f.id::text) || crm.pb_text(2, f.referrer_id::text)
        || crm.pb_text(4, f.referred_id::text) || crm.pb_text(6, f.relation_id::text)
        || crm.pb_text(7, s.code) || crm.pb_text(8, f.opportunity_id::text)
        || crm.pb_text(9, f.note) || crm.pb_text(10, f.reward_status)
        || crm.pb_text(11, f.reward_note) || crm.pb_text(12, rb.username)
        || crm.pb_int(13, crm.ms(f.reward_at)) || crm.pb_text(14, cb.username)
        || crm.pb_int(15, crm.ms(f.created_at)) || crm.pb_int(16, f.version)
      FROM crm.referrals f
      JOIN crm.stores s ON s.id = f.store_id
      LEFT JOIN crm.users rb ON rb.id = f.reward_by
      LEFT JOIN crm.users cb ON cb.id = f.created_by
     WHERE f.id = p_id
$$;

-- Packed crm.Organization with its contacts (OrgContact, field 11) and
-- plans (PurchasePlan, field 12).
CREATE FUNCTION crm.organization_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, o.id::text) || crm.pb_text(2, o.kind) || crm.pb_text(3, o.name)
        || crm.pb_text(4, s.code) || crm.pb_text(5, u.username) || crm.pb_text(7, o.note)
        || crm.pb_text(8, cb.username) || crm.pb_int(9, crm.ms(o.created_at))
        || crm.pb_int(10, o.version)
        || coalesce((SELECT string_agg(crm.relationship_pb_nested(11,
                        crm.pb_text(1, o.id::text) || crm.pb_text(2, k.customer_id::text)
                        || crm.pb_text(4, k.role) || crm.pb_text(5, k.title)
                        || crm.pb_text(6, ab.username) || crm.pb_int(7, crm.ms(k.added_at))),
                        ''::bytea ORDER BY k.added_at, k.customer_id)
                       FROM crm.org_contacts k LEFT JOIN crm.users ab ON ab.id = k.added_by
                      WHERE k.organization_id = o.id), '')
        || coalesce((SELECT string_agg(crm.relationship_pb_nested(12,
                        crm.pb_text(1, p.id::text) || crm.pb_text(2, o.id::text)
                        || crm.pb_text(3, p.model) || crm.pb_int(4, p.quantity)
                        || crm.pb_int(5, crm.ms(p.expected_at)) || crm.pb_text(6, p.status)
                        || crm.pb_text(7, p.note) || crm.pb_text(8, pb.username)
                        || crm.pb_int(9, crm.ms(p.created_at))),
                        ''::bytea ORDER BY p.expected_at, p.id)
                       FROM crm.purchase_plans p LEFT JOIN crm.users pb ON pb.id = p.created_by
                      WHERE p.organization_id = o.id), '')
      FROM crm.organizations o
      JOIN crm.stores s ON s.id = o.store_id
      LEFT JOIN crm.users u ON u.id = o.owner_id
      LEFT JOIN crm.users cb ON cb.id = o.created_by
     WHERE o.id = p_id
$$;

-- Packed crm.Survey with its scores (SurveyScore, field 10).
CREATE FUNCTION crm.survey_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.kind)
        || crm.pb_text(3, v.customer_id::text) || crm.pb_text(5, v.relation_id::text)
        || crm.pb_text(6, s.code) || crm.pb_text(7, v.subject_kind)
        || crm.pb_text(8, v.subject_id::text) || crm.pb_int(9, crm.ms(v.at))
        || coalesce((SELECT string_agg(crm.relationship_pb_nested(10,
                        crm.pb_int(1, x.number) || crm.pb_int(2, x.score)
                        || crm.pb_int(3, x.scale_max)), ''::bytea ORDER BY x.number)
                       FROM crm.survey_scores x WHERE x.survey_id = v.id), '')
        || crm.pb_text(11, v.comment) || crm.pb_text(12, u.username)
        || crm.pb_int(13, crm.ms(v.created_at))
      FROM crm.surveys v
      JOIN crm.stores s ON s.id = v.store_id
      LEFT JOIN crm.users u ON u.id = v.by_user
     WHERE v.id = p_id
$$;

-- Packed crm.Complaint with its history (ComplaintEvent, field 21) and the
-- follow-ups that handled it (field 22); not the derived overdue.
CREATE FUNCTION crm.complaint_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, k.id::text) || crm.pb_text(2, k.customer_id::text)
        || crm.pb_text(4, k.relation_id::text) || crm.pb_text(5, s.code)
        || crm.pb_text(6, k.status) || crm.pb_text(7, k.priority) || crm.pb_text(8, k.category)
        || crm.pb_text(9, k.content) || crm.pb_text(10, a.username)
        || crm.pb_int(12, crm.ms(k.received_at)) || crm.pb_int(13, crm.ms(k.due_at))
        || crm.pb_text(15, k.resolution) || crm.pb_int(16, crm.ms(k.resolved_at))
        || crm.pb_int(17, crm.ms(k.closed_at)) || crm.pb_text(18, cb.username)
        || crm.pb_int(19, crm.ms(k.created_at)) || crm.pb_int(20, k.version)
        || coalesce((SELECT string_agg(crm.relationship_pb_nested(21,
                        crm.pb_text(1, e.from_status) || crm.pb_text(2, e.to_status)
                        || crm.pb_text(3, eb.username) || crm.pb_int(4, crm.ms(e.at))
                        || crm.pb_text(5, e.note) || crm.pb_text(6, ea.username)),
                        ''::bytea ORDER BY e.id)
                       FROM crm.complaint_events e
                       LEFT JOIN crm.users eb ON eb.id = e.by_user
                       LEFT JOIN crm.users ea ON ea.id = e.assignee_id
                      WHERE e.complaint_id = k.id), '')
        || coalesce((SELECT string_agg(crm.pb_text(22, l.followup_id::text), ''::bytea
                                       ORDER BY l.linked_at, l.followup_id)
                       FROM crm.complaint_followups l WHERE l.complaint_id = k.id), '')
      FROM crm.complaints k
      JOIN crm.stores s ON s.id = k.store_id
      LEFT JOIN crm.users a ON a.id = k.assignee_id
      LEFT JOIN crm.users cb ON cb.id = k.created_by
     WHERE k.id = p_id
$$;

-- ------------------------------------------------------------ referrals

-- STMT_REFERRAL_ADD: customer p_referrer_id referred p_referred_id, whose
-- relation (p_relation_id, else theirs at the caller's store) the caller
-- may write; p_reward_status none (default) or pending. A retry with the
-- same id answers outcome 'existed' and writes nothing; a relation already
-- referred is DC410. Outcome, then REFERRAL columns.
CREATE FUNCTION crm.referral_add(p_session_id uuid, p_id text, p_referrer_id text,
                                 p_referred_id text, p_relation_id text, p_opportunity_id text,
                                 p_note text, p_reward_status text, p_write_at_ms bigint)
RETURNS TABLE (outcome text, rf crm.referral_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_referrer uuid;
    v_opp uuid;
    v_at timestamptz;
    r crm.relations;
    v_status text := coalesce(nullif(p_reward_status, ''), 'none');
    v_note text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id', true);
    v_at := crm.relationship_time(p_write_at_ms, 'at');
    IF EXISTS (SELECT 1 FROM crm.referrals f WHERE f.id = v_id) THEN
        RETURN QUERY SELECT 'existed', v FROM crm.referral_view v WHERE v.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'this referral id is another store''s';
        END IF;
        RETURN;
    END IF;
    v_referrer := crm.check_uuid(p_referrer_id, 'referrer_id');
    IF coalesce(p_relation_id, '') = '' AND coalesce(p_referred_id, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'referred_id',
            MESSAGE = 'referred_id (or the referred customer''s relation_id) is required';
    END IF;
    r := crm.relationship_relation(me.user_id, me.role, me.store_id, p_referred_id,
                                   p_relation_id);
    IF coalesce(p_referred_id, '') <> ''
       AND r.customer_id <> crm.check_uuid(p_referred_id, 'referred_id') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation_id',
            MESSAGE = 'relation_id is not a relation of referred_id';
    END IF;
    IF v_referrer = r.customer_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'referrer_id',
            MESSAGE = 'a customer cannot refer themselves';
    END IF;
    IF NOT crm.customer_exists(v_referrer) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'referrer_id',
            MESSAGE = 'referrer_id: no such customer';
    END IF;
    IF crm.customer_access(v_referrer, me.user_id, me.role, me.store_id) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'referrer_id: ' || crm.customer_denied(me.role);
    END IF;
    IF coalesce(p_opportunity_id, '') <> '' THEN
        v_opp := crm.check_uuid(p_opportunity_id, 'opportunity_id');
        IF NOT crm.subject_exists('opportunity', v_opp, r.id) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'opportunity_id',
                MESSAGE = 'opportunity_id: no such opportunity of the referred customer''s relation';
        END IF;
    END IF;
    IF v_status NOT IN ('none', 'pending') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reward_status',
            MESSAGE = 'a new referral''s reward_status is none or pending (grant it with crm referral reward)';
    END IF;
    v_note := crm.relationship_text(p_note, 'note', 500, false);
    IF EXISTS (SELECT 1 FROM crm.referrals f WHERE f.relation_id = r.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'referred_id',
            MESSAGE = 'this customer''s relation at the store already has a referral';
    END IF;
    INSERT INTO crm.referrals (id, referrer_id, referred_id, relation_id, store_id,
                               opportunity_id, note, reward_status, reward_by, reward_at,
                               created_by, created_at)
    VALUES (v_id, v_referrer, r.customer_id, r.id, r.store_id, v_opp, v_note, v_status,
            CASE WHEN v_status <> 'none' THEN me.user_id END,
            CASE WHEN v_status <> 'none' THEN v_at END, me.user_id, v_at);
    PERFORM crm.outbox_append('referral', v_id, crm.referral_payload(v_id));
    RETURN QUERY SELECT 'ok', v FROM crm.referral_view v WHERE v.id = v_id;
END
$$;

-- STMT_REFERRAL_REWARD: moves the reward: to pending (anyone who may write
-- the relation), or to granted or refused (its store's sales or store
-- manager; a reason is required to refuse). Granted and refused are
-- final. Setting the status it has changes nothing. REFERRAL columns.
CREATE FUNCTION crm.referral_reward(p_session_id uuid, p_id text, p_status text, p_note text,
                                    p_at_ms bigint)
RETURNS SETOF crm.referral_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    f crm.referrals;
    r crm.relations;
    v_at timestamptz;
    v_note text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_at := crm.relationship_time(p_at_ms, 'at');
    IF p_status IS NULL OR p_status NOT IN ('pending', 'granted', 'refused') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reward_status',
            MESSAGE = 'reward_status must be pending, granted or refused';
    END IF;
    v_note := crm.relationship_text(p_note, 'note', 500, p_status = 'refused');
    SELECT x.* INTO f FROM crm.referrals x WHERE x.id = crm.check_uuid(p_id, 'id') FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such referral';
    END IF;
    r := crm.relation_row(f.relation_id, false);
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, true);
    IF p_status IN ('granted', 'refused') AND me.role NOT IN ('sales_manager', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a sales manager or store manager grants or refuses a referral reward';
    END IF;
    IF f.reward_status = p_status THEN
        RETURN QUERY SELECT v.* FROM crm.referral_view v WHERE v.id = f.id;
        RETURN;
    END IF;
    IF f.reward_status IN ('granted', 'refused') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'reward_status',
            MESSAGE = format('the reward was already %s; that is final', f.reward_status);
    END IF;
    UPDATE crm.referrals x
       SET reward_status = p_status, reward_note = v_note, reward_by = me.user_id,
           reward_at = v_at, version = x.version + 1
     WHERE x.id = f.id;
    PERFORM crm.outbox_append('referral', f.id, crm.referral_payload(f.id));
    RETURN QUERY SELECT v.* FROM crm.referral_view v WHERE v.id = f.id;
END
$$;

-- STMT_REFERRAL_LIST: REFERRAL columns, newest first: those a customer
-- made or received (p_customer_id), else the caller's store's (group
-- roles: every store's, or p_store_code's); optionally of one reward
-- status. Row-level security keeps a consultant to their own and the
-- pool's relations.
CREATE FUNCTION crm.referral_list(p_session_id uuid, p_customer_id text, p_reward_status text,
                                  p_store_code text, p_limit integer)
RETURNS SETOF crm.referral_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_cust uuid;
    v_store uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no referrals';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF coalesce(p_reward_status, '') NOT IN ('', 'none', 'pending', 'granted', 'refused') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reward_status',
            MESSAGE = 'reward_status must be none, pending, granted or refused';
    END IF;
    IF coalesce(p_customer_id, '') <> '' THEN
        v_cust := crm.check_uuid(p_customer_id, 'customer_id');
    ELSE
        v_store := me.store_id;
        IF coalesce(p_store_code, '') <> '' THEN
            SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                    MESSAGE = format('store_code: no store %s', p_store_code);
            END IF;
            IF me.store_id IS NOT NULL AND v_store <> me.store_id THEN
                RAISE EXCEPTION USING ERRCODE = 'DC403',
                    MESSAGE = 'only group roles list another store''s referrals';
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.referral_view v
     WHERE (v_cust IS NULL OR v.referrer_id = v_cust OR v.referred_id = v_cust)
       AND (v_store IS NULL OR v.store_id = v_store)
       AND (coalesce(p_reward_status, '') = '' OR v.reward_status = p_reward_status)
     ORDER BY v.created_at_ms DESC, v.id DESC
     LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ organizations

-- The organization a store person writes, locked: of their store, and for
-- a consultant their own or the store's unowned one. DC404 otherwise (an
-- organization out of scope is not revealed).
CREATE FUNCTION crm.org_for_write(p_id text, p_field text, p_user_id uuid, p_role text,
                                  p_store_id uuid)
RETURNS crm.organizations
LANGUAGE plpgsql
AS $$
DECLARE
    o crm.organizations;
BEGIN
    IF p_store_id IS NULL OR p_role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only the people of the organization''s store change it';
    END IF;
    SELECT x.* INTO o FROM crm.organizations x
     WHERE x.id = crm.check_uuid(p_id, p_field) FOR NO KEY UPDATE;
    IF NOT FOUND OR o.store_id <> p_store_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = p_field,
            MESSAGE = format('no organization %s at your store', p_id);
    END IF;
    IF p_role = 'consultant' AND o.owner_id IS NOT NULL AND o.owner_id <> p_user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'this organization belongs to another consultant';
    END IF;
    RETURN o;
END
$$;

-- The ORGANIZATION columns and the contact_role column ("" here).
CREATE FUNCTION crm.org_reply(p_outcome text, p_id uuid)
RETURNS TABLE (outcome text, org crm.organization_view, contact_role text)
LANGUAGE sql STABLE
AS $$
    SELECT p_outcome, v, ''::text FROM crm.organization_view v WHERE v.id = p_id
$$;

-- STMT_ORG_ADD: a store person registers an organization of their store.
-- Owner: "" the caller; a manager may name another enabled person of the
-- store. A retry with the same id answers 'existed'; a name the store
-- already has (any case) is DC410.
CREATE FUNCTION crm.org_add(p_session_id uuid, p_id text, p_kind text, p_name text,
                            p_owner text, p_note text, p_write_at_ms bigint)
RETURNS TABLE (outcome text, org crm.organization_view, contact_role text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_at timestamptz;
    v_owner uuid;
    v_name text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.store_id IS NULL OR me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'organizations are registered by the people of a store';
    END IF;
    v_id := crm.check_uuid(p_id, 'id', true);
    v_at := crm.relationship_time(p_write_at_ms, 'at');
    IF EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = v_id) THEN
        RETURN QUERY SELECT * FROM crm.org_reply('existed', v_id);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'this organization id is in use outside your scope';
        END IF;
        RETURN;
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('government', 'state_enterprise', 'private_enterprise',
                                        'taxi', 'rental', 'foreign_enterprise') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'kind',
            MESSAGE = 'kind must be government, state_enterprise, private_enterprise, taxi,'
                      ' rental or foreign_enterprise';
    END IF;
    v_name := crm.relationship_text(p_name, 'name', 100, true);
    IF coalesce(btrim(p_owner), '') = '' THEN
        v_owner := me.user_id;
    ELSE
        v_owner := crm.store_person(me.store_id, p_owner, 'owner');
        IF v_owner <> me.user_id AND me.role NOT IN ('sales_manager', 'store_manager') THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403', COLUMN = 'owner',
                MESSAGE = 'only a manager registers an organization for another person';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM crm.organizations o
                WHERE o.store_id = me.store_id AND lower(o.name) = lower(v_name)) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'name',
            MESSAGE = format('the store already has an organization named %s', v_name);
    END IF;
    INSERT INTO crm.organizations (id, kind, name, store_id, owner_id, note, created_by,
                                   created_at, updated_at)
    VALUES (v_id, p_kind, v_name, me.store_id, v_owner,
            crm.relationship_text(p_note, 'note', 500, false), me.user_id, v_at, v_at);
    PERFORM crm.outbox_append('organization', v_id, crm.organization_payload(v_id));
    RETURN QUERY SELECT * FROM crm.org_reply('ok', v_id);
END
$$;

-- STMT_ORG_CONTACT_ADD: links a customer the caller may write (a relation
-- at the store) to the organization with a role and title; again for the
-- same customer changes role and title. ORGANIZATION columns.
CREATE FUNCTION crm.org_contact_add(p_session_id uuid, p_org_id text, p_customer_id text,
                                    p_role text, p_title text, p_write_at_ms bigint)
RETURNS TABLE (outcome text, org crm.organization_view, contact_role text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    o crm.organizations;
    v_cust uuid;
    v_at timestamptz;
    v_title text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_at := crm.relationship_time(p_write_at_ms, 'at');
    o := crm.org_for_write(p_org_id, 'organization_id', me.user_id, me.role, me.store_id);
    v_cust := crm.check_uuid(p_customer_id, 'customer_id');
    IF coalesce(p_role, '') NOT IN ('decision_maker', 'purchasing', 'fleet_manager', 'finance',
                                    'user', 'other') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'role',
            MESSAGE = 'role must be decision_maker, purchasing, fleet_manager, finance, user'
                      ' or other';
    END IF;
    v_title := crm.relationship_text(p_title, 'title', 100, false);
    IF NOT crm.customer_exists(v_cust) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'customer_id',
            MESSAGE = 'no such customer';
    END IF;
    IF crm.customer_access(v_cust, me.user_id, me.role, me.store_id) IS DISTINCT FROM 'write' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = crm.customer_denied(me.role);
    END IF;
    INSERT INTO crm.org_contacts AS k (organization_id, customer_id, role, title, added_by,
                                       added_at)
    VALUES (o.id, v_cust, p_role, v_title, me.user_id, v_at)
    ON CONFLICT (organization_id, customer_id) DO UPDATE
       SET role = EXCLUDED.role, title = EXCLUDED.title;
    UPDATE crm.organizations x SET version = x.version + 1, updated_at = v_at WHERE x.id = o.id;
    PERFORM crm.outbox_append('organization', o.id, crm.organization_payload(o.id));
    RETURN QUERY SELECT * FROM crm.org_reply('ok', o.id);
END
$$;

-- STMT_PLAN_ADD: a purchase plan of the organization. A retry with the
-- same plan id answers 'existed'. ORGANIZATION columns.
CREATE FUNCTION crm.plan_add(p_session_id uuid, p_id text, p_org_id text, p_model text,
                             p_quantity integer, p_expected_ms bigint, p_status text,
                             p_note text, p_write_at_ms bigint)
RETURNS TABLE (outcome text, org crm.organization_view, contact_role text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    o crm.organizations;
    v_id uuid;
    v_at timestamptz;
    v_status text := coalesce(nullif(p_status, ''), 'planned');
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id', true);
    v_at := crm.relationship_time(p_write_at_ms, 'at');
    o := crm.org_for_write(p_org_id, 'organization_id', me.user_id, me.role, me.store_id);
    IF EXISTS (SELECT 1 FROM crm.purchase_plans p WHERE p.id = v_id) THEN
        RETURN QUERY SELECT * FROM crm.org_reply('existed', o.id);
        RETURN;
    END IF;
    IF p_quantity IS NULL OR p_quantity NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'quantity',
            MESSAGE = 'quantity must be from 1 to 100000';
    END IF;
    IF coalesce(p_expected_ms, 0) <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'expected_at',
            MESSAGE = 'expected_at (the expected purchase date) is required';
    END IF;
    IF v_status NOT IN ('planned', 'negotiating', 'ordered', 'delivered', 'cancelled') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'status',
            MESSAGE = 'status must be planned, negotiating, ordered, delivered or cancelled';
    END IF;
    INSERT INTO crm.purchase_plans (id, organization_id, model, quantity, expected_at, status,
                                    note, created_by, created_at)
    VALUES (v_id, o.id, crm.relationship_text(p_model, 'model', 100, true), p_quantity,
            crm.from_ms(p_expected_ms), v_status,
            crm.relationship_text(p_note, 'note', 500, false), me.user_id, v_at);
    UPDATE crm.organizations x SET version = x.version + 1, updated_at = v_at WHERE x.id = o.id;
    PERFORM crm.outbox_append('organization', o.id, crm.organization_payload(o.id));
    RETURN QUERY SELECT * FROM crm.org_reply('ok', o.id);
END
$$;

-- STMT_ORG_LIST: ORGANIZATION columns and contact_role (the role of
-- p_customer_id in it when given, else ""), by name: one organization
-- (p_id; DC404 when out of scope), a customer's, or the caller's store's
-- (group roles: every store's or p_store_code's), optionally of one kind.
-- Row-level security keeps a consultant to their own and unowned ones.
CREATE FUNCTION crm.org_list(p_session_id uuid, p_id text, p_customer_id text, p_kind text,
                             p_store_code text, p_limit integer)
RETURNS TABLE (outcome text, org crm.organization_view, contact_role text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_cust uuid;
    v_store uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no organizations';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF coalesce(p_id, '') <> '' THEN
        v_id := crm.check_uuid(p_id, 'id');
        RETURN QUERY SELECT * FROM crm.org_reply('ok', v_id);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
                MESSAGE = 'no such organization in your scope';
        END IF;
        RETURN;
    END IF;
    IF coalesce(p_customer_id, '') <> '' THEN
        v_cust := crm.check_uuid(p_customer_id, 'customer_id');
        RETURN QUERY
        SELECT 'ok', v, k.role FROM crm.org_contacts k
          JOIN crm.organization_view v ON v.id = k.organization_id
         WHERE k.customer_id = v_cust
           AND (coalesce(p_kind, '') = '' OR v.kind = p_kind)
         ORDER BY v.name, v.id
         LIMIT p_limit;
        RETURN;
    END IF;
    v_store := me.store_id;
    IF coalesce(p_store_code, '') <> '' THEN
        SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                MESSAGE = format('store_code: no store %s', p_store_code);
        END IF;
        IF me.store_id IS NOT NULL AND v_store <> me.store_id THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'only group roles list another store''s organizations';
        END IF;
    END IF;
    RETURN QUERY
    SELECT 'ok', v, ''::text FROM crm.organization_view v
     WHERE (v_store IS NULL OR v.store_id = v_store)
       AND (coalesce(p_kind, '') = '' OR v.kind = p_kind)
     ORDER BY v.name, v.id
     LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ surveys

-- STMT_SURVEY_QUESTIONS: the questionnaire of a kind ('' both), by kind
-- and number: kind, number, text, scale_max, active, updated_at_ms,
-- updated_by.
CREATE FUNCTION crm.survey_questions_get(p_session_id uuid, p_kind text)
RETURNS TABLE (kind text, number integer, text text, scale_max integer, active boolean,
               updated_at_ms bigint, updated_by text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM crm.session_begin(p_session_id);
    IF coalesce(p_kind, '') NOT IN ('', 'csi', 'ssi') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'kind',
            MESSAGE = 'kind must be csi (service) or ssi (sales)';
    END IF;
    RETURN QUERY
    SELECT q.kind, q.number::integer, q.text, q.scale_max::integer, q.active,
           crm.ms(q.updated_at), coalesce(u.username, '')
      FROM crm.survey_questions q LEFT JOIN crm.users u ON u.id = q.updated_by
     WHERE coalesce(p_kind, '') = '' OR q.kind = p_kind
     ORDER BY q.kind, q.number;
END
$$;

-- STMT_SURVEY_QUESTION_SET: a group admin adds or changes question
-- p_number of a kind, or retires it (p_active false). Audited. The kind's
-- questions, as crm.survey_questions_get.
CREATE FUNCTION crm.survey_question_set(p_session_id uuid, p_kind text, p_number integer,
                                        p_text text, p_scale_max integer, p_active boolean)
RETURNS TABLE (kind text, number integer, text text, scale_max integer, active boolean,
               updated_at_ms bigint, updated_by text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_text text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role <> 'group_admin' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a group admin changes the survey questions';
    END IF;
    IF coalesce(p_kind, '') NOT IN ('csi', 'ssi') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'question.kind',
            MESSAGE = 'question.kind must be csi (service) or ssi (sales)';
    END IF;
    IF p_number IS NULL OR p_number NOT BETWEEN 1 AND 50 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'question.number',
            MESSAGE = 'question.number must be from 1 to 50';
    END IF;
    IF p_scale_max IS NULL OR p_scale_max NOT IN (5, 10) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'question.scale_max',
            MESSAGE = 'question.scale_max must be 5 or 10';
    END IF;
    v_text := crm.relationship_text(p_text, 'question.text', 200, true);
    INSERT INTO crm.survey_questions AS q (kind, number, text, scale_max, active, updated_at,
                                          updated_by)
    VALUES (p_kind, p_number, v_text, p_scale_max, coalesce(p_active, true), now(), me.user_id)
    ON CONFLICT (kind, number) DO UPDATE
       SET text = EXCLUDED.text, scale_max = EXCLUDED.scale_max, active = EXCLUDED.active,
           updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by;
    PERFORM crm.audit_append('policy.survey_question', p_entity => 'survey_question',
        p_entity_id => p_kind || '/' || p_number,
        p_details => jsonb_build_object('text', v_text, 'scale_max', p_scale_max,
                                        'active', coalesce(p_active, true)));
    RETURN QUERY SELECT * FROM crm.survey_questions_get(p_session_id, p_kind);
END
$$;

-- STMT_SURVEY_ADD: the customer's answers to the kind's questionnaire, on
-- their relation at the caller's store (or p_relation_id), about a
-- delivery (ssi: an order id) or a service visit (csi: a visit id).
-- p_scores is "number:score" pairs joined by commas; every active
-- question must be answered once, each from 1 to its scale. One survey
-- per kind and subject (DC410). A retry with the same id answers
-- 'existed'. Outcome, then SURVEY columns.
CREATE FUNCTION crm.survey_add(p_session_id uuid, p_id text, p_kind text, p_customer_id text,
                               p_relation_id text, p_subject_kind text, p_subject_id text,
                               p_at_ms bigint, p_scores text, p_comment text,
                               p_write_at_ms bigint)
RETURNS TABLE (outcome text, sv crm.survey_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    r crm.relations;
    v_id uuid;
    v_subject uuid;
    v_at timestamptz;
    v_write timestamptz;
    v_pair text;
    v_number integer;
    v_score integer;
    v_scale integer;
    v_numbers integer[] := '{}';
    v_missing integer;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id', true);
    v_write := crm.relationship_time(p_write_at_ms, 'created_at');
    IF EXISTS (SELECT 1 FROM crm.surveys v WHERE v.id = v_id) THEN
        RETURN QUERY SELECT 'existed', v FROM crm.survey_view v WHERE v.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'this survey id is in use outside your scope';
        END IF;
        RETURN;
    END IF;
    IF coalesce(p_kind, '') NOT IN ('csi', 'ssi') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'kind',
            MESSAGE = 'kind must be csi (service) or ssi (sales)';
    END IF;
    IF coalesce(p_subject_kind, '') <> (CASE p_kind WHEN 'csi' THEN 'service_visit'
                                                    ELSE 'delivery' END) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'subject_kind',
            MESSAGE = 'subject_kind must be service_visit for a csi survey and delivery for'
                      ' an ssi survey';
    END IF;
    v_subject := crm.check_uuid(p_subject_id, 'subject_id');
    v_at := crm.relationship_time(p_at_ms, 'at');
    r := crm.relationship_relation(me.user_id, me.role, me.store_id, p_customer_id,
                                   p_relation_id);
    IF NOT crm.subject_exists(p_subject_kind, v_subject, r.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'subject_id',
            MESSAGE = format('subject_id: no such %s of this customer at the store',
                             CASE p_subject_kind WHEN 'delivery' THEN 'order'
                                                 ELSE 'service visit' END);
    END IF;
    IF EXISTS (SELECT 1 FROM crm.surveys v WHERE v.kind = p_kind AND v.subject_id = v_subject) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'subject_id',
            MESSAGE = format('this %s already has a %s survey',
                             replace(p_subject_kind, '_', ' '), p_kind);
    END IF;
    INSERT INTO crm.surveys (id, kind, customer_id, relation_id, store_id, subject_kind,
                             subject_id, at, comment, by_user, created_at)
    VALUES (v_id, p_kind, r.customer_id, r.id, r.store_id, p_subject_kind, v_subject, v_at,
            crm.relationship_text(p_comment, 'comment', 1000, false), me.user_id, v_write);
    FOREACH v_pair IN ARRAY string_to_array(coalesce(p_scores, ''), ',') LOOP
        IF v_pair !~ '^[0-9]{1,2}:[0-9]{1,2}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'scores',
                MESSAGE = format('scores: "%s" is not a question number and a score', v_pair);
        END IF;
        v_number := split_part(v_pair, ':', 1)::integer;
        v_score := split_part(v_pair, ':', 2)::integer;
        SELECT q.scale_max INTO v_scale FROM crm.survey_questions q
         WHERE q.kind = p_kind AND q.number = v_number AND q.active;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'scores',
                MESSAGE = format('scores: the %s questionnaire has no question %s', p_kind,
                                 v_number);
        END IF;
        IF v_number = ANY (v_numbers) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'scores',
                MESSAGE = format('scores: question %s is answered twice', v_number);
        END IF;
        IF v_score NOT BETWEEN 1 AND v_scale THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'scores',
                MESSAGE = format('scores: question %s is scored from 1 to %s, not %s',
                                 v_number, v_scale, v_score);
        END IF;
        v_numbers := v_numbers || v_number;
        INSERT INTO crm.survey_scores (survey_id, number, score, scale_max)
        VALUES (v_id, v_number, v_score, v_scale);
    END LOOP;
    SELECT min(q.number) INTO v_missing FROM crm.survey_questions q
     WHERE q.kind = p_kind AND q.active AND NOT q.number = ANY (v_numbers);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'scores',
            MESSAGE = format('scores: question %s of the %s questionnaire is not answered',
                             v_missing, p_kind);
    END IF;
    PERFORM crm.outbox_append('survey', v_id, crm.survey_payload(v_id));
    RETURN QUERY SELECT 'ok', v FROM crm.survey_view v WHERE v.id = v_id;
END
$$;

-- STMT_SURVEY_LIST: SURVEY columns, newest first: a customer's, else the
-- caller's store's (group roles: every store's or p_store_code's);
-- optionally of one kind.
CREATE FUNCTION crm.survey_list(p_session_id uuid, p_customer_id text, p_kind text,
                                p_store_code text, p_limit integer)
RETURNS SETOF crm.survey_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_cust uuid;
    v_store uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no surveys';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF coalesce(p_kind, '') NOT IN ('', 'csi', 'ssi') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'kind',
            MESSAGE = 'kind must be csi (service) or ssi (sales)';
    END IF;
    IF coalesce(p_customer_id, '') <> '' THEN
        v_cust := crm.check_uuid(p_customer_id, 'customer_id');
    ELSE
        v_store := me.store_id;
        IF coalesce(p_store_code, '') <> '' THEN
            SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                    MESSAGE = format('store_code: no store %s', p_store_code);
            END IF;
            IF me.store_id IS NOT NULL AND v_store <> me.store_id THEN
                RAISE EXCEPTION USING ERRCODE = 'DC403',
                    MESSAGE = 'only group roles list another store''s surveys';
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.survey_view v
     WHERE (v_cust IS NULL OR v.customer_id = v_cust)
       AND (v_store IS NULL OR v.store_id = v_store)
       AND (coalesce(p_kind, '') = '' OR v.kind = p_kind)
     ORDER BY v.at_ms DESC, v.id DESC
     LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ complaints

-- The reply of a complaint write: outcome, COMPLAINT columns, overdue as
-- of p_at.
CREATE FUNCTION crm.complaint_reply(p_outcome text, p_id uuid, p_at timestamptz)
RETURNS TABLE (outcome text, cp crm.complaint_view, overdue boolean)
LANGUAGE sql STABLE
AS $$
    SELECT p_outcome, v, v.status IN ('received', 'assigned', 'in_handling') AND v.due_at < p_at
      FROM crm.complaint_view v WHERE v.id = p_id
$$;

-- STMT_COMPLAINT_ADD: a complaint received at p_received_ms on the
-- customer's relation at the caller's store (or p_relation_id), which the
-- caller may write. Due at p_due_ms, else received + the policy's hours
-- for the priority. A retry with the same id answers 'existed'.
CREATE FUNCTION crm.complaint_add(p_session_id uuid, p_id text, p_customer_id text,
                                  p_relation_id text, p_priority text, p_category text,
                                  p_content text, p_received_ms bigint, p_due_ms bigint,
                                  p_write_at_ms bigint)
RETURNS TABLE (outcome text, cp crm.complaint_view, overdue boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    r crm.relations;
    v_id uuid;
    v_write timestamptz;
    v_received timestamptz;
    v_due timestamptz;
    v_priority text := coalesce(nullif(p_priority, ''), 'normal');
    v_category text := coalesce(nullif(p_category, ''), 'other');
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id', true);
    v_write := crm.relationship_time(p_write_at_ms, 'created_at');
    IF EXISTS (SELECT 1 FROM crm.complaints k WHERE k.id = v_id) THEN
        RETURN QUERY SELECT * FROM crm.complaint_reply('existed', v_id, v_write);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'this complaint id is in use outside your scope';
        END IF;
        RETURN;
    END IF;
    IF v_priority NOT IN ('low', 'normal', 'high', 'urgent') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'priority',
            MESSAGE = 'priority must be low, normal, high or urgent';
    END IF;
    IF v_category NOT IN ('sales', 'service', 'product', 'staff', 'price', 'other') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'category',
            MESSAGE = 'category must be sales, service, product, staff, price or other';
    END IF;
    v_received := crm.relationship_time(p_received_ms, 'received_at');
    IF coalesce(p_due_ms, 0) <> 0 THEN
        v_due := crm.from_ms(p_due_ms);
        IF v_due <= v_received THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'due_at',
                MESSAGE = 'due_at must be after received_at';
        END IF;
    ELSE
        SELECT v_received + p.due_hours * interval '1 hour' INTO v_due
          FROM crm.complaint_policy p WHERE p.priority = v_priority;
    END IF;
    r := crm.relationship_relation(me.user_id, me.role, me.store_id, p_customer_id,
                                   p_relation_id);
    INSERT INTO crm.complaints (id, customer_id, relation_id, store_id, priority, category,
                                content, received_at, due_at, created_by, created_at,
                                updated_at)
    VALUES (v_id, r.customer_id, r.id, r.store_id, v_priority, v_category,
            crm.relationship_text(p_content, 'content', 2000, true), v_received, v_due,
            me.user_id, v_write, v_write);
    INSERT INTO crm.complaint_events (complaint_id, from_status, to_status, by_user, at)
    VALUES (v_id, NULL, 'received', me.user_id, v_received);
    PERFORM crm.outbox_append('complaint', v_id, crm.complaint_payload(v_id));
    RETURN QUERY SELECT * FROM crm.complaint_reply('ok', v_id, v_write);
END
$$;

-- The complaint a store person acts on, locked: of their store and in
-- their scope (a consultant: on a relation they own or the pool's).
CREATE FUNCTION crm.complaint_for_write(p_id text, p_user_id uuid, p_role text,
                                        p_store_id uuid)
RETURNS crm.complaints
LANGUAGE plpgsql
AS $$
DECLARE
    k crm.complaints;
BEGIN
    IF p_store_id IS NULL OR p_role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only the people of the complaint''s store handle it';
    END IF;
    SELECT x.* INTO k FROM crm.complaints x WHERE x.id = crm.check_uuid(p_id, 'id') FOR UPDATE;
    IF NOT FOUND OR k.store_id <> p_store_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
            MESSAGE = format('no complaint %s at your store', p_id);
    END IF;
    PERFORM crm.relation_check_access(crm.relation_row(k.relation_id, false), p_user_id, p_role,
                                      p_store_id, true);
    RETURN k;
END
$$;

-- STMT_COMPLAINT_ASSIGN: a sales or store manager gives the complaint to
-- an enabled person of the store: received -> assigned; an assigned or
-- in-handling one changes hands and keeps its status. Resolved and closed
-- complaints are not reassigned (DC409).
CREATE FUNCTION crm.complaint_assign(p_session_id uuid, p_id text, p_assignee text,
                                     p_note text, p_at_ms bigint)
RETURNS TABLE (outcome text, cp crm.complaint_view, overdue boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    k crm.complaints;
    v_to uuid;
    v_at timestamptz;
    v_status text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('sales_manager', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a sales manager or store manager assigns complaints';
    END IF;
    v_at := crm.relationship_time(p_at_ms, 'at');
    k := crm.complaint_for_write(p_id, me.user_id, me.role, me.store_id);
    v_to := crm.store_person(me.store_id, p_assignee, 'assignee');
    -- A consultant reaches only the customers they own and the pool's
    -- (DESIGN.md "Security"): one who could not see the complaint could
    -- not handle it.
    IF EXISTS (SELECT 1 FROM crm.users u JOIN crm.relations r ON r.id = k.relation_id
                WHERE u.id = v_to AND u.role = 'consultant'
                  AND r.owner_id IS NOT NULL AND r.owner_id <> v_to) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'assignee',
            MESSAGE = format('assignee: %s is a consultant who does not own this customer;'
                             ' hand the customer over first (crm customer handover)',
                             p_assignee);
    END IF;
    IF k.status IN ('resolved', 'closed') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'id',
            MESSAGE = format('the complaint is %s; only an open one is assigned', k.status);
    END IF;
    IF v_at < k.received_at THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'at must not be before the complaint was received';
    END IF;
    v_status := CASE WHEN k.status = 'received' THEN 'assigned' ELSE k.status END;
    UPDATE crm.complaints x
       SET status = v_status, assignee_id = v_to, updated_at = v_at, version = x.version + 1
     WHERE x.id = k.id;
    INSERT INTO crm.complaint_events (complaint_id, from_status, to_status, assignee_id, by_user,
                                      at, note)
    VALUES (k.id, k.status, v_status, v_to, me.user_id, v_at,
            crm.relationship_text(p_note, 'note', 1000, false));
    PERFORM crm.outbox_append('complaint', k.id, crm.complaint_payload(k.id));
    RETURN QUERY SELECT * FROM crm.complaint_reply('ok', k.id, v_at);
END
$$;

-- STMT_COMPLAINT_MOVE: the moves after assignment, each by the assignee or
-- a sales or store manager (closing: a manager or a call-center agent):
--   in_handling  from assigned; from in_handling only to link a follow-up;
--                from resolved: reopened, a note saying why is required
--   resolved     from in_handling, the resolution (p_note) required
--   closed       from resolved; final
-- Anything else is DC409 naming the status. p_followup_id links a
-- follow-up of type 'complaint' on the complaint's relation (to
-- in_handling or resolved).
CREATE FUNCTION crm.complaint_move(p_session_id uuid, p_id text, p_to_status text,
                                   p_note text, p_followup_id text, p_at_ms bigint)
RETURNS TABLE (outcome text, cp crm.complaint_view, overdue boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    k crm.complaints;
    v_at timestamptz;
    v_note text;
    v_fu uuid;
    v_manager boolean;
    v_allowed boolean;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_at := crm.relationship_time(p_at_ms, 'at');
    IF coalesce(p_to_status, '') NOT IN ('in_handling', 'resolved', 'closed') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'to_status',
            MESSAGE = 'to_status must be in_handling, resolved or closed (assign with crm'
                      ' complaint assign)';
    END IF;
    k := crm.complaint_for_write(p_id, me.user_id, me.role, me.store_id);
    v_allowed := CASE p_to_status
        WHEN 'in_handling' THEN k.status IN ('assigned', 'resolved')
                                OR (k.status = 'in_handling' AND coalesce(p_followup_id, '') <> '')
        WHEN 'resolved' THEN k.status = 'in_handling'
        ELSE k.status = 'resolved' END;
    IF NOT v_allowed THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'to_status',
            MESSAGE = format('a complaint that is %s cannot move to %s%s', k.status, p_to_status,
                CASE WHEN k.status = 'received' THEN ': assign it first'
                     WHEN k.status = 'closed' THEN ': it is closed'
                     WHEN p_to_status = 'closed' THEN ': resolve it first'
                     WHEN k.status = 'assigned' THEN ': handle it first'
                     ELSE '' END);
    END IF;
    v_manager := me.role IN ('sales_manager', 'store_manager');
    IF p_to_status = 'closed' THEN
        IF NOT v_manager AND me.role <> 'call_center' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'only a manager or a call-center agent closes a complaint';
        END IF;
    ELSIF NOT v_manager AND k.assignee_id IS DISTINCT FROM me.user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only the complaint''s assignee or a manager handles it';
    END IF;
    v_note := crm.relationship_text(p_note, CASE WHEN p_to_status = 'resolved' THEN 'resolution'
                                                 ELSE 'note' END, 1000,
                                    p_to_status = 'resolved'
                                    OR (p_to_status = 'in_handling' AND k.status = 'resolved'));
    IF v_at < k.received_at THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'at must not be before the complaint was received';
    END IF;
    IF coalesce(p_followup_id, '') <> '' THEN
        IF p_to_status = 'closed' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'followup_id',
                MESSAGE = 'followup_id is linked while handling or resolving, not on closing';
        END IF;
        v_fu := crm.check_uuid(p_followup_id, 'followup_id');
        IF NOT EXISTS (SELECT 1 FROM crm.followups f
                        WHERE f.id = v_fu AND f.relation_id = k.relation_id
                          AND f.type = 'complaint') THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'followup_id',
                MESSAGE = 'followup_id must be a follow-up of type complaint with this customer'
                          ' at this store';
        END IF;
        IF EXISTS (SELECT 1 FROM crm.complaint_followups l WHERE l.followup_id = v_fu) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'followup_id',
                MESSAGE = 'this follow-up is already linked to a complaint';
        END IF;
        INSERT INTO crm.complaint_followups (complaint_id, followup_id, linked_by, linked_at)
        VALUES (k.id, v_fu, me.user_id, v_at);
    END IF;
    UPDATE crm.complaints x
       SET status = p_to_status,
           resolution = CASE WHEN p_to_status = 'resolved' THEN v_note ELSE x.resolution END,
           resolved_at = CASE WHEN p_to_status = 'resolved' THEN v_at
                              WHEN p_to_status = 'in_handling' THEN NULL
                              ELSE x.resolved_at END,
           closed_at = CASE WHEN p_to_status = 'closed' THEN v_at END,
           updated_at = v_at, version = x.version + 1
     WHERE x.id = k.id;
    INSERT INTO crm.complaint_events (complaint_id, from_status, to_status, by_user, at, note)
    VALUES (k.id, k.status, p_to_status, me.user_id, v_at, v_note);
    PERFORM crm.outbox_append('complaint', k.id, crm.complaint_payload(k.id));
    RETURN QUERY SELECT * FROM crm.complaint_reply('ok', k.id, v_at);
END
$$;

-- STMT_COMPLAINT_LIST: outcome ('ok'), COMPLAINT columns, overdue (at
-- p_at_ms): one complaint (p_id; DC404 out of scope), a customer's, else
-- the caller's store's (group roles: every store's or p_store_code's),
-- filtered by status ('open': not yet resolved), assignee, overdue only.
-- Open ones by due time, others newest first.
CREATE FUNCTION crm.complaint_list(p_session_id uuid, p_id text, p_customer_id text,
                                   p_status text, p_assignee text, p_store_code text,
                                   p_overdue_only boolean, p_at_ms bigint, p_limit integer)
RETURNS TABLE (outcome text, cp crm.complaint_view, overdue boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_at timestamptz;
    v_cust uuid;
    v_store uuid;
    v_assignee uuid;
    v_status text := coalesce(p_status, '');
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no complaints';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF v_status NOT IN ('', 'open', 'received', 'assigned', 'in_handling', 'resolved',
                        'closed') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'status',
            MESSAGE = 'status must be open, received, assigned, in_handling, resolved or closed';
    END IF;
    v_at := CASE WHEN coalesce(p_at_ms, 0) > 0 THEN crm.from_ms(p_at_ms) ELSE now() END;
    IF coalesce(p_id, '') <> '' THEN
        RETURN QUERY SELECT * FROM crm.complaint_reply('ok', crm.check_uuid(p_id, 'id'), v_at);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
                MESSAGE = 'no such complaint in your scope';
        END IF;
        RETURN;
    END IF;
    IF coalesce(p_customer_id, '') <> '' THEN
        v_cust := crm.check_uuid(p_customer_id, 'customer_id');
    ELSE
        v_store := me.store_id;
        IF coalesce(p_store_code, '') <> '' THEN
            SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                    MESSAGE = format('store_code: no store %s', p_store_code);
            END IF;
            IF me.store_id IS NOT NULL AND v_store <> me.store_id THEN
                RAISE EXCEPTION USING ERRCODE = 'DC403',
                    MESSAGE = 'only group roles list another store''s complaints';
            END IF;
        END IF;
    END IF;
    IF coalesce(p_assignee, '') <> '' THEN
        SELECT u.id INTO v_assignee FROM crm.users u
         WHERE u.username = lower(btrim(p_assignee))
           AND (me.store_id IS NULL OR u.store_id = me.store_id);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'assignee',
                MESSAGE = format('assignee: %s is not a user of your store', p_assignee);
        END IF;
    END IF;
    RETURN QUERY
    SELECT 'ok', v, v.status IN ('received', 'assigned', 'in_handling') AND v.due_at < v_at
      FROM crm.complaint_view v
     WHERE (v_cust IS NULL OR v.customer_id = v_cust)
       AND (v_store IS NULL OR v.store_id = v_store)
       AND (v_assignee IS NULL OR v.assignee_id = v_assignee)
       AND (v_status = '' OR v.status = v_status
            OR (v_status = 'open' AND v.status IN ('received', 'assigned', 'in_handling')))
       AND (NOT coalesce(p_overdue_only, false)
            OR (v.status IN ('received', 'assigned', 'in_handling') AND v.due_at < v_at))
     ORDER BY v.status IN ('resolved', 'closed'),
              CASE WHEN v.status IN ('resolved', 'closed') THEN NULL ELSE v.due_at END,
              v.received_at_ms DESC, v.id
     LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ erasure

-- Erasure (crm.customer_erase, 0009) blanks what people typed about the
-- customer here too, in the erasure's transaction: referral notes, the
-- contact titles, survey comments, complaint texts and their history's
-- notes. Counts, statuses and scores stay for the reports. Definer, as
-- sql/0013's crm.erase_followups: the erasing admin's scope has no store.
CREATE FUNCTION crm.erase_relationships() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    UPDATE crm.referrals f
       SET note = CASE WHEN f.note = '' THEN '' ELSE '已删除' END,
           reward_note = CASE WHEN f.reward_note = '' THEN '' ELSE '已删除' END
     WHERE f.referred_id = NEW.id OR f.referrer_id = NEW.id;
    UPDATE crm.org_contacts k SET title = '' WHERE k.customer_id = NEW.id;
    UPDATE crm.surveys v SET comment = '' WHERE v.customer_id = NEW.id;
    UPDATE crm.complaints k
       SET content = '已删除', resolution = CASE WHEN k.resolution = '' THEN '' ELSE '已删除' END
     WHERE k.customer_id = NEW.id;
    UPDATE crm.complaint_events e SET note = ''
      FROM crm.complaints k WHERE k.customer_id = NEW.id AND e.complaint_id = k.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_erase_relationships AFTER UPDATE OF erased_at ON crm.customers
    FOR EACH ROW WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL)
    EXECUTE FUNCTION crm.erase_relationships();

-- ------------------------------------------------------------ row-level security

-- Referrals, surveys and complaints, and the children of complaints, are
-- visible exactly when their relation is (sql/0013's crm.relation_visible)
-- and written only by the relation's store. Organizations: group roles
-- read all; a store's people read and write their store's (a consultant:
-- own and unowned ones); contacts and plans follow their organization.
ALTER TABLE crm.referrals ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.referrals FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.org_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.org_contacts FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.purchase_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.purchase_plans FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.surveys ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.surveys FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.survey_scores ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.survey_scores FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.complaints ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.complaints FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.complaint_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.complaint_events FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.complaint_followups ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.complaint_followups FORCE ROW LEVEL SECURITY;

CREATE POLICY referrals_read ON crm.referrals FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY referrals_insert ON crm.referrals FOR INSERT
    WITH CHECK (store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));
CREATE POLICY referrals_update ON crm.referrals FOR UPDATE
    USING (store_id = crm.rls_store()) WITH CHECK (store_id = crm.rls_store());

CREATE POLICY organizations_read ON crm.organizations FOR SELECT
    USING (crm.rls_group()
           OR (store_id = crm.rls_store()
               AND (crm.rls_role() <> 'consultant' OR owner_id IS NULL
                    OR owner_id = crm.rls_user())));
CREATE POLICY organizations_insert ON crm.organizations FOR INSERT
    WITH CHECK (store_id = crm.rls_store());
CREATE POLICY organizations_update ON crm.organizations FOR UPDATE
    USING (store_id = crm.rls_store()
           AND (crm.rls_role() <> 'consultant' OR owner_id IS NULL OR owner_id = crm.rls_user()))
    WITH CHECK (store_id = crm.rls_store());

CREATE POLICY org_contacts_read ON crm.org_contacts FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = organization_id));
CREATE POLICY org_contacts_insert ON crm.org_contacts FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = organization_id
                          AND o.store_id = crm.rls_store()));
CREATE POLICY org_contacts_update ON crm.org_contacts FOR UPDATE
    USING (EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = organization_id
                     AND o.store_id = crm.rls_store()))
    WITH CHECK (EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = organization_id
                          AND o.store_id = crm.rls_store()));

CREATE POLICY purchase_plans_read ON crm.purchase_plans FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = organization_id));
CREATE POLICY purchase_plans_insert ON crm.purchase_plans FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.organizations o WHERE o.id = organization_id
                          AND o.store_id = crm.rls_store()));

CREATE POLICY surveys_read ON crm.surveys FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY surveys_insert ON crm.surveys FOR INSERT
    WITH CHECK (store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));

CREATE POLICY survey_scores_read ON crm.survey_scores FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.surveys v WHERE v.id = survey_id));
CREATE POLICY survey_scores_insert ON crm.survey_scores FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.surveys v WHERE v.id = survey_id
                          AND v.store_id = crm.rls_store()));

CREATE POLICY complaints_read ON crm.complaints FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY complaints_insert ON crm.complaints FOR INSERT
    WITH CHECK (store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));
CREATE POLICY complaints_update ON crm.complaints FOR UPDATE
    USING (store_id = crm.rls_store() AND crm.relation_visible(relation_id))
    WITH CHECK (store_id = crm.rls_store());

CREATE POLICY complaint_events_read ON crm.complaint_events FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.complaints k WHERE k.id = complaint_id));
CREATE POLICY complaint_events_insert ON crm.complaint_events FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.complaints k WHERE k.id = complaint_id
                          AND k.store_id = crm.rls_store()));

CREATE POLICY complaint_followups_read ON crm.complaint_followups FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.complaints k WHERE k.id = complaint_id));
CREATE POLICY complaint_followups_insert ON crm.complaint_followups FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.complaints k WHERE k.id = complaint_id
                          AND k.store_id = crm.rls_store()));

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.referrals, crm.organizations, crm.org_contacts, crm.purchase_plans,
    crm.survey_questions, crm.surveys, crm.survey_scores, crm.complaint_policy, crm.complaints,
    crm.complaint_events, crm.complaint_followups, crm.referral_view, crm.organization_view,
    crm.survey_view, crm.complaint_view FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.erase_relationships() FROM PUBLIC;

-- Referrals, surveys, complaint events and links are never removed;
-- surveys never change. Trigger functions need no grant.
DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
    fn text;
    crmd_calls text[] := ARRAY[
        'crm.relationship_pb_nested(integer, bytea)',
        'crm.subject_exists(text, uuid, uuid)',
        'crm.relationship_relation(uuid, text, uuid, text, text)',
        'crm.relationship_time(bigint, text)',
        'crm.relationship_text(text, text, integer, boolean)',
        'crm.store_person(uuid, text, text)',
        'crm.referral_payload(uuid)',
        'crm.organization_payload(uuid)',
        'crm.survey_payload(uuid)',
        'crm.complaint_payload(uuid)',
        'crm.referral_add(uuid, text, text, text, text, text, text, text, bigint)',
        'crm.referral_reward(uuid, text, text, text, bigint)',
        'crm.referral_list(uuid, text, text, text, integer)',
        'crm.org_for_write(text, text, uuid, text, uuid)',
        'crm.org_reply(text, uuid)',
        'crm.org_add(uuid, text, text, text, text, text, bigint)',
        'crm.org_contact_add(uuid, text, text, text, text, bigint)',
        'crm.plan_add(uuid, text, text, text, integer, bigint, text, text, bigint)',
        'crm.org_list(uuid, text, text, text, text, integer)',
        'crm.survey_questions_get(uuid, text)',
        'crm.survey_question_set(uuid, text, integer, text, integer, boolean)',
        'crm.survey_add(uuid, text, text, text, text, text, text, bigint, text, text, bigint)',
        'crm.survey_list(uuid, text, text, text, integer)',
        'crm.complaint_reply(text, uuid, timestamptz)',
        'crm.complaint_add(uuid, text, text, text, text, text, text, bigint, bigint, bigint)',
        'crm.complaint_for_write(text, uuid, text, uuid)',
        'crm.complaint_assign(uuid, text, text, text, bigint)',
        'crm.complaint_move(uuid, text, text, text, text, bigint)',
        'crm.complaint_list(uuid, text, text, text, text, text, boolean, bigint, integer)'];
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    FOREACH fn IN ARRAY crmd_calls LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, app);
    END LOOP;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.referrals, crm.organizations,'
                   ' crm.org_contacts, crm.complaints TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON crm.purchase_plans, crm.surveys, crm.survey_scores,'
                   ' crm.complaint_events, crm.complaint_followups TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.survey_questions TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.complaint_policy, crm.referral_view,'
                   ' crm.organization_view, crm.survey_view, crm.complaint_view TO %I', app);
END
$$;
