-- 0018_sales: opportunities, orders and test drives on a store relation
-- (issue 6, "Sales"; DESIGN.md "Domain": levels, sales process).
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.opportunities: a chance of a sale on a relation. Its stage follows
--   the nine showroom steps and only moves forward; every move is a row of
--   crm.opportunity_stages (from, to, who, when). Status open, won (an
--   order was placed for it) or lost (with a defeat reason: competitor,
--   price, postponed, unreachable, or other with text).
-- * crm.orders: model, configuration, price and deposit (fen). placed ->
--   delivered or cancelled, nothing else. Placing moves the relation to
--   level O, delivery to D (and registers the vehicle through
--   crm.vehicle_register, sql/0017), cancellation to T unless another
--   order of the relation is still placed. Each level move is a row of
--   crm.level_changes, so the cadence policy's trigger (sql/0013) creates
--   the level's tasks in the same transaction. A relation already at the
--   level (a second order) does not move again, and a cancellation moves
--   only an ordered relation (O) with no other order still placed.
-- * crm.test_drives: time, model, consultant; recording one moves its
--   opportunity to stage test_drive when the opportunity is earlier.
-- * Writes: an order write changes the relation, which crmd packs for the
--   outbox. As for level.set (sql/0014), crmd first runs the write as a
--   plan (p_plan: the whole write, rolled back) that returns the relation
--   as it will be stored, packs that, and the write refuses (DC409) when
--   the relation comes out otherwise. Opportunities, orders and test
--   drives are encoded here for the outbox (like crm.task_payload), so the
--   payload is exactly the row stored. crm.outbox_append audits each one
--   as a 'change'.
-- * Scope: consultants write on the relations they may change (their own
--   and the pool's; orders, which move levels, only their own, as
--   level.set); managers on their store's; group roles read. Row-level
--   security: a row is visible when its relation is, written only by the
--   relation's store.

-- ------------------------------------------------------------ tables

CREATE TABLE crm.opportunities (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    stage text NOT NULL
        CHECK (stage IN ('prospecting', 'reception', 'needs_analysis', 'presentation',
                         'test_drive', 'negotiation', 'deal', 'delivery', 'post_sale')),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    model text NOT NULL DEFAULT '' CHECK (char_length(model) <= 100),
    expected_price_fen bigint NOT NULL DEFAULT 0 CHECK (expected_price_fen >= 0),
    defeat_reason text NOT NULL DEFAULT ''
        CHECK (defeat_reason IN ('', 'competitor', 'price', 'postponed', 'unreachable', 'other')),
    defeat_text text NOT NULL DEFAULT '' CHECK (char_length(defeat_text) <= 500),
    competitor_brand text NOT NULL DEFAULT '' CHECK (char_length(competitor_brand) <= 50),
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    created_by uuid NOT NULL REFERENCES crm.users (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK ((status = 'lost') = (defeat_reason <> '')),
    CHECK (defeat_reason <> 'other' OR defeat_text <> ''),
    CHECK ((status = 'open') = (closed_at IS NULL))
);
CREATE INDEX opportunities_relation ON crm.opportunities (relation_id, opened_at);
CREATE INDEX opportunities_store_status ON crm.opportunities (store_id, status, opened_at);

-- Every stage an opportunity has had: the first row has from_stage NULL.
CREATE TABLE crm.opportunity_stages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id uuid NOT NULL REFERENCES crm.opportunities (id),
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    from_stage text,
    to_stage text NOT NULL,
    changed_by uuid NOT NULL REFERENCES crm.users (id),
    changed_at timestamptz NOT NULL
);
CREATE INDEX opportunity_stages_opportunity ON crm.opportunity_stages (opportunity_id, id);

CREATE TABLE crm.orders (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    opportunity_id uuid REFERENCES crm.opportunities (id),
    model text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 100),
    configuration text NOT NULL DEFAULT '' CHECK (char_length(configuration) <= 200),
    price_fen bigint NOT NULL CHECK (price_fen > 0),
    deposit_fen bigint NOT NULL DEFAULT 0 CHECK (deposit_fen >= 0 AND deposit_fen <= price_fen),
    status text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'delivered', 'cancelled')),
    placed_at timestamptz NOT NULL,
    delivered_at timestamptz,
    cancelled_at timestamptz,
    cancel_reason text NOT NULL DEFAULT '' CHECK (char_length(cancel_reason) <= 500),
    vin text NOT NULL DEFAULT '',
    plate text NOT NULL DEFAULT '',
    vehicle_id uuid,                            -- crm.vehicles (sql/0017) once delivered
    created_by uuid NOT NULL REFERENCES crm.users (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL AND vehicle_id IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL AND cancel_reason <> ''))
);
CREATE INDEX orders_relation ON crm.orders (relation_id, placed_at);
CREATE INDEX orders_store_status ON crm.orders (store_id, status, placed_at);
-- One order per opportunity that won.
CREATE UNIQUE INDEX orders_opportunity ON crm.orders (opportunity_id)
    WHERE opportunity_id IS NOT NULL AND status <> 'cancelled';

CREATE TABLE crm.test_drives (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    opportunity_id uuid REFERENCES crm.opportunities (id),
    model text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 100),
    consultant_id uuid NOT NULL REFERENCES crm.users (id),
    at timestamptz NOT NULL,
    note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    created_by uuid NOT NULL REFERENCES crm.users (id),
    created_at timestamptz NOT NULL
);
CREATE INDEX test_drives_relation ON crm.test_drives (relation_id, at);

-- ------------------------------------------------------------ views

-- The OPPORTUNITY columns of server/stmts.h, in order. The history travels
-- as one text: each change's from, to, by, at_ms joined by U+001E,
-- changes joined by U+001F, oldest first.
CREATE VIEW crm.opportunity_view WITH (security_invoker = true) AS
SELECT o.id, o.relation_id, r.customer_id, s.code AS store_code, o.stage, o.status, o.model,
       o.expected_price_fen, o.defeat_reason, o.defeat_text, o.competitor_brand, o.version,
       crm.ms(o.opened_at) AS opened_at_ms, coalesce(crm.ms(o.closed_at), 0) AS closed_at_ms,
       crm.ms(o.created_at) AS created_at_ms, crm.ms(o.updated_at) AS updated_at_ms,
       u.username AS created_by,
       (SELECT string_agg(concat_ws(E'\x1e', coalesce(h.from_stage, ''), h.to_stage,
                                    hu.username, crm.ms(h.changed_at)), E'\x1f' ORDER BY h.id)
          FROM crm.opportunity_stages h JOIN crm.users hu ON hu.id = h.changed_by
         WHERE h.opportunity_id = o.id) AS history
  FROM crm.opportunities o
  JOIN crm.relations r ON r.id = o.relation_id
  JOIN crm.stores s ON s.id = o.store_id
  JOIN crm.users u ON u.id = o.created_by;

-- The ORDER columns of server/stmts.h, in order.
CREATE VIEW crm.order_view WITH (security_invoker = true) AS
SELECT o.id, o.relation_id, r.customer_id, s.code AS store_code,
       coalesce(o.opportunity_id::text, '') AS opportunity_id, o.model, o.configuration,
       o.price_fen, o.deposit_fen, o.status, crm.ms(o.placed_at) AS placed_at_ms,
       coalesce(crm.ms(o.delivered_at), 0) AS delivered_at_ms,
       coalesce(crm.ms(o.cancelled_at), 0) AS cancelled_at_ms, o.cancel_reason, o.vin, o.plate,
       coalesce(o.vehicle_id::text, '') AS vehicle_id, o.version, u.username AS created_by,
       crm.ms(o.created_at) AS created_at_ms, crm.ms(o.updated_at) AS updated_at_ms
  FROM crm.orders o
  JOIN crm.relations r ON r.id = o.relation_id
  JOIN crm.stores s ON s.id = o.store_id
  JOIN crm.users u ON u.id = o.created_by;

-- The TEST_DRIVE columns of server/stmts.h, in order.
CREATE VIEW crm.test_drive_view WITH (security_invoker = true) AS
SELECT t.id, t.relation_id, r.customer_id, s.code AS store_code,
       coalesce(t.opportunity_id::text, '') AS opportunity_id, t.model,
       cu.username AS consultant, cu.display_name AS consultant_name, crm.ms(t.at) AS at_ms,
       t.note, u.username AS created_by, crm.ms(t.created_at) AS created_at_ms
  FROM crm.test_drives t
  JOIN crm.relations r ON r.id = t.relation_id
  JOIN crm.stores s ON s.id = t.store_id
  JOIN crm.users cu ON cu.id = t.consultant_id
  JOIN crm.users u ON u.id = t.created_by;

-- ------------------------------------------------------------ outbox payloads

-- A length-delimited field holding an embedded message.
CREATE FUNCTION crm.pb_message(p_field integer, p_value bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE
AS $$
    SELECT crm.pb_varint(p_field << 3 | 2) || crm.pb_varint(octet_length(p_value)) || p_value
$$;

-- A packed crm.Opportunity (proto/crm.proto, sales section), history
-- included as StageChange messages.
CREATE FUNCTION crm.opportunity_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.relation_id::text)
        || crm.pb_text(3, v.customer_id::text) || crm.pb_text(4, v.store_code)
        || crm.pb_text(5, v.stage) || crm.pb_text(6, v.status) || crm.pb_text(7, v.model)
        || crm.pb_int(8, v.expected_price_fen) || crm.pb_text(9, v.defeat_reason)
        || crm.pb_text(10, v.defeat_text) || crm.pb_text(11, v.competitor_brand)
        || crm.pb_int(12, v.version) || crm.pb_int(13, v.opened_at_ms)
        || crm.pb_int(14, v.closed_at_ms) || crm.pb_int(15, v.created_at_ms)
        || crm.pb_int(16, v.updated_at_ms) || crm.pb_text(17, v.created_by)
        || coalesce((SELECT string_agg(crm.pb_message(18,
                                 crm.pb_text(1, h.from_stage) || crm.pb_text(2, h.to_stage)
                                 || crm.pb_text(3, hu.username)
                                 || crm.pb_int(4, crm.ms(h.changed_at))), ''::bytea ORDER BY h.id)
                       FROM crm.opportunity_stages h JOIN crm.users hu ON hu.id = h.changed_by
                      WHERE h.opportunity_id = v.id), ''::bytea)
      FROM crm.opportunity_view v
     WHERE v.id = p_id
$$;

-- A packed crm.SalesOrder.
CREATE FUNCTION crm.order_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.relation_id::text)
        || crm.pb_text(3, v.customer_id::text) || crm.pb_text(4, v.store_code)
        || crm.pb_text(5, v.opportunity_id) || crm.pb_text(6, v.model)
        || crm.pb_text(7, v.configuration) || crm.pb_int(8, v.price_fen)
        || crm.pb_int(9, v.deposit_fen) || crm.pb_text(10, v.status)
        || crm.pb_int(11, v.placed_at_ms) || crm.pb_int(12, v.delivered_at_ms)
        || crm.pb_int(13, v.cancelled_at_ms) || crm.pb_text(14, v.cancel_reason)
        || crm.pb_text(15, v.vin) || crm.pb_text(16, v.plate) || crm.pb_text(17, v.vehicle_id)
        || crm.pb_int(18, v.version) || crm.pb_text(19, v.created_by)
        || crm.pb_int(20, v.created_at_ms) || crm.pb_int(21, v.updated_at_ms)
      FROM crm.order_view v
     WHERE v.id = p_id
$$;

-- A packed crm.TestDrive.
CREATE FUNCTION crm.test_drive_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.relation_id::text)
        || crm.pb_text(3, v.customer_id::text) || crm.pb_text(4, v.store_code)
        || crm.pb_text(5, v.opportunity_id) || crm.pb_text(6, v.model)
        || crm.pb_text(7, v.consultant) || crm.pb_text(8, v.consultant_name)
        || crm.pb_int(9, v.at_ms) || crm.pb_text(10, v.note) || crm.pb_text(11, v.created_by)
        || crm.pb_int(12, v.created_at_ms)
      FROM crm.test_drive_view v
     WHERE v.id = p_id
$$;

-- ------------------------------------------------------------ helpers

-- Position of a stage among the nine showroom steps (1..9), NULL if none.
CREATE FUNCTION crm.stage_rank(p_stage text) RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$
    SELECT array_position(ARRAY['prospecting', 'reception', 'needs_analysis', 'presentation',
                                'test_drive', 'negotiation', 'deal', 'delivery', 'post_sale'],
                          p_stage)
$$;

-- Who may write sales records of relation `r`: its store's consultants
-- (the relations they may change; with p_owned only their own) and
-- sales or store managers. DC403 otherwise.
CREATE FUNCTION crm.sales_check_access(r crm.relations, p_user_id uuid, p_role text,
                                       p_store_id uuid, p_owned boolean)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p_role NOT IN ('consultant', 'sales_manager', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only consultants and sales or store managers record sales';
    END IF;
    PERFORM crm.relation_check_access(r, p_user_id, p_role, p_store_id, true);
    IF p_owned AND p_role = 'consultant' AND r.owner_id IS DISTINCT FROM p_user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'consultants place and change orders of their own relations only';
    END IF;
END
$$;

-- The relation of `p_id`, locked, or DC404 naming `p_field`.
CREATE FUNCTION crm.sales_relation(p_id uuid, p_field text) RETURNS crm.relations
LANGUAGE plpgsql
AS $$
DECLARE
    r crm.relations;
BEGIN
    r := crm.relation_row(p_id, true);
    IF r.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = p_field, MESSAGE = 'no such relation';
    END IF;
    RETURN r;
END
$$;

-- Moves an opportunity to `p_to` and records the move (nothing when it is
-- there already). Bumps the version; the caller appends it to the outbox.
CREATE FUNCTION crm.opportunity_move(p_id uuid, p_to text, p_by uuid, p_at timestamptz,
                                     p_write_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    o crm.opportunities;
BEGIN
    SELECT x.* INTO o FROM crm.opportunities x WHERE x.id = p_id FOR NO KEY UPDATE;
    IF o.stage = p_to THEN
        RETURN false;
    END IF;
    UPDATE crm.opportunities x SET stage = p_to, version = x.version + 1, updated_at = p_write_at
     WHERE x.id = p_id;
    INSERT INTO crm.opportunity_stages (opportunity_id, relation_id, from_stage, to_stage,
                                        changed_by, changed_at)
    VALUES (p_id, o.relation_id, o.stage, p_to, p_by, p_at);
    RETURN true;
END
$$;

-- Moves the relation to level `p_level` as an order event (nothing when
-- it is there already): the row in crm.level_changes brings the cadence
-- policy's tasks (sql/0013). True when the relation changed.
CREATE FUNCTION crm.sales_level(r crm.relations, p_level text, p_reason text, p_by uuid,
                                p_at timestamptz, p_write_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    IF r.level = p_level THEN
        RETURN false;
    END IF;
    UPDATE crm.relations x SET level = p_level, version = x.version + 1, updated_at = p_write_at
     WHERE x.id = r.id;
    INSERT INTO crm.level_changes (relation_id, from_level, to_level, changed_by, changed_at,
                                   reason)
    VALUES (r.id, r.level, p_level, p_by, p_at, left(p_reason, 500));
    RETURN true;
END
$$;

CREATE FUNCTION crm.sales_text(p_text text, p_field text, p_max integer, p_required boolean)
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

-- ------------------------------------------------------------ opportunities

-- STMT_OPPORTUNITY_WRITE: p_action 'add' (p_id new, p_relation_id,
-- p_stage or '' for prospecting, p_model, p_price_fen), 'stage' (p_id,
-- p_version, p_stage: forward only, up to negotiation on an open
-- opportunity; post_sale on a won one at delivery) or 'lose' (p_id,
-- p_version, p_reason, p_text, p_brand). p_at_ms: when it happened;
-- p_write_at_ms: the write time. -> outcome ('ok', 'existed' for an add
-- whose id exists, 'stale' with the current record when p_version is not
-- current), OPPORTUNITY columns.
CREATE FUNCTION crm.opportunity_write(
    p_session_id uuid, p_action text, p_id text, p_version bigint, p_relation_id text,
    p_stage text, p_model text, p_price_fen bigint, p_reason text, p_text text, p_brand text,
    p_at_ms bigint, p_write_at_ms bigint)
RETURNS TABLE (outcome text, opp crm.opportunity_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_rel uuid;
    r crm.relations;
    o crm.opportunities;
    v_at timestamptz;
    v_write timestamptz;
    v_stage text := coalesce(nullif(p_stage, ''), 'prospecting');
    v_text text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF p_at_ms IS NULL OR p_write_at_ms IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at', MESSAGE = 'time is required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    v_write := crm.from_ms(p_write_at_ms);
    IF p_action = 'add' THEN
        v_id := crm.check_uuid(p_id, 'opportunity.id', true);
        r := crm.sales_relation(crm.check_uuid(p_relation_id, 'opportunity.relation_id'),
                                'opportunity.relation_id');
        PERFORM crm.sales_check_access(r, me.user_id, me.role, me.store_id, false);
        IF EXISTS (SELECT 1 FROM crm.opportunities x WHERE x.id = v_id) THEN
            RETURN QUERY SELECT 'existed', v FROM crm.opportunity_view v WHERE v.id = v_id;
            RETURN;
        END IF;
        IF crm.stage_rank(v_stage) IS NULL OR crm.stage_rank(v_stage) > 6 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'opportunity.stage',
                MESSAGE = 'a new opportunity''s stage must be prospecting, reception,'
                          ' needs_analysis, presentation, test_drive or negotiation';
        END IF;
        IF coalesce(p_price_fen, 0) < 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'opportunity.expected_price_fen',
                MESSAGE = 'expected price must not be negative';
        END IF;
        INSERT INTO crm.opportunities (id, relation_id, store_id, stage, model,
                                       expected_price_fen, opened_at, created_by, created_at,
                                       updated_at)
        VALUES (v_id, r.id, r.store_id, v_stage,
                crm.sales_text(p_model, 'opportunity.model', 100, false),
                coalesce(p_price_fen, 0), v_at, me.user_id, v_write, v_write);
        INSERT INTO crm.opportunity_stages (opportunity_id, relation_id, from_stage, to_stage,
                                            changed_by, changed_at)
        VALUES (v_id, r.id, NULL, v_stage, me.user_id, v_at);
    ELSIF p_action IN ('stage', 'lose') THEN
        v_id := crm.check_uuid(p_id, 'id');
        SELECT x.relation_id INTO v_rel FROM crm.opportunities x WHERE x.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such opportunity';
        END IF;
        r := crm.sales_relation(v_rel, 'id');
        PERFORM crm.sales_check_access(r, me.user_id, me.role, me.store_id, false);
        SELECT x.* INTO o FROM crm.opportunities x WHERE x.id = v_id FOR NO KEY UPDATE;
        IF o.version <> coalesce(p_version, 0) THEN
            RETURN QUERY SELECT 'stale', v FROM crm.opportunity_view v WHERE v.id = v_id;
            RETURN;
        END IF;
        IF o.status = 'lost' OR (o.status = 'won' AND p_action = 'lose') THEN
            RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'id',
                MESSAGE = format('the opportunity is %s; it can no longer be %s', o.status,
                                 CASE p_action WHEN 'lose' THEN 'lost' ELSE 'moved' END);
        END IF;
        IF p_action = 'stage' THEN
            IF crm.stage_rank(p_stage) IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'stage',
                    MESSAGE = 'stage must be one of prospecting, reception, needs_analysis,'
                              ' presentation, test_drive, negotiation, deal, delivery, post_sale';
            END IF;
            IF crm.stage_rank(p_stage) <= crm.stage_rank(o.stage) THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'stage',
                    MESSAGE = format('stages only move forward: the opportunity is at %s',
                                     o.stage);
            END IF;
            IF o.status = 'open' AND crm.stage_rank(p_stage) > 6 THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'stage',
                    MESSAGE = 'deal and delivery follow the order (crm order place, deliver);'
                              ' an open opportunity moves up to negotiation';
            END IF;
            IF o.status = 'won' AND (p_stage <> 'post_sale' OR o.stage <> 'delivery') THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'stage',
                    MESSAGE = 'a won opportunity moves on by its order''s delivery, then to'
                              ' post_sale';
            END IF;
            PERFORM crm.opportunity_move(v_id, p_stage, me.user_id, v_at, v_write);
        ELSE
            IF p_reason IS NULL OR p_reason NOT IN ('competitor', 'price', 'postponed',
                                                    'unreachable', 'other') THEN
                RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reason',
                    MESSAGE = 'a lost opportunity needs its defeat reason: competitor, price,'
                              ' postponed, unreachable or other';
            END IF;
            v_text := crm.sales_text(p_text, 'text', 500, p_reason = 'other');
            UPDATE crm.opportunities x
               SET status = 'lost', defeat_reason = p_reason, defeat_text = v_text,
                   competitor_brand = CASE WHEN p_reason = 'competitor'
                                           THEN crm.sales_text(p_brand, 'competitor_brand', 50,
                                                               false)
                                           ELSE '' END,
                   closed_at = v_at, version = x.version + 1, updated_at = v_write
             WHERE x.id = v_id;
        END IF;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'action',
            MESSAGE = 'action must be add, stage or lose';
    END IF;
    PERFORM crm.outbox_append('opportunity', v_id, crm.opportunity_payload(v_id));
    RETURN QUERY SELECT 'ok', v FROM crm.opportunity_view v WHERE v.id = v_id;
END
$$;

-- Relations whose sales records the caller lists when no relation or
-- customer is named: a consultant their own and the pool's at their store,
-- other store roles their store's, group roles every one (NULL: all).
CREATE FUNCTION crm.sales_scope_ok(r_store uuid, r_owner uuid, p_user_id uuid, p_role text,
                                   p_store_id uuid)
RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
    SELECT p_role IN ('group_admin', 'group_analyst')
        OR (r_store = p_store_id
            AND (p_role <> 'consultant' OR r_owner IS NULL OR r_owner = p_user_id))
$$;

-- STMT_OPPORTUNITY_LIST: OPPORTUNITY columns, newest first: one by p_id,
-- or those of a relation or customer (crm.readable_relations), or the
-- caller's scope; p_status '' any.
CREATE FUNCTION crm.opportunity_list(p_session_id uuid, p_id text, p_relation_id text,
                                     p_customer_id text, p_status text, p_limit integer)
RETURNS SETOF crm.opportunity_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_ids uuid[];
    v_rel uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no opportunities';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF coalesce(p_status, '') NOT IN ('', 'open', 'won', 'lost') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'status',
            MESSAGE = 'status must be open, won or lost';
    END IF;
    IF coalesce(p_id, '') <> '' THEN
        SELECT x.relation_id INTO v_rel FROM crm.opportunities x
         WHERE x.id = crm.check_uuid(p_id, 'id');
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such opportunity';
        END IF;
        v_ids := crm.readable_relations(me.user_id, me.role, me.store_id, v_rel::text, NULL);
        RETURN QUERY SELECT v.* FROM crm.opportunity_view v WHERE v.id = p_id::uuid;
        RETURN;
    END IF;
    IF coalesce(p_relation_id, '') <> '' OR coalesce(p_customer_id, '') <> '' THEN
        v_ids := crm.readable_relations(me.user_id, me.role, me.store_id, p_relation_id,
                                        p_customer_id);
        RETURN QUERY
        SELECT v.* FROM crm.opportunity_view v
         WHERE v.relation_id = ANY (v_ids) AND (coalesce(p_status, '') = '' OR v.status = p_status)
         ORDER BY v.opened_at_ms DESC, v.id DESC LIMIT p_limit;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.opportunity_view v
      JOIN crm.relations r ON r.id = v.relation_id
     WHERE crm.sales_scope_ok(r.store_id, r.owner_id, me.user_id, me.role, me.store_id)
       AND (coalesce(p_status, '') = '' OR v.status = p_status)
     ORDER BY v.opened_at_ms DESC, v.id DESC LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ orders

-- The order write itself (p_action 'place', 'deliver', 'cancel'), on the
-- locked relation `r` and, except for place, the locked order `o`. Returns
-- whether the relation changed and the opportunity it changed (NULL none).
CREATE FUNCTION crm.order_apply(
    p_action text, r crm.relations, o crm.orders, p_user_id uuid, p_id uuid,
    p_opportunity_id text, p_model text, p_configuration text, p_price_fen bigint,
    p_deposit_fen bigint, p_vin text, p_plate text, p_vehicle_id text, p_reason text,
    p_at timestamptz, p_write_at timestamptz, OUT rel_changed boolean, OUT opp_id uuid)
LANGUAGE plpgsql
AS $$
DECLARE
    op crm.opportunities;
    v_vin text;
    v_vehicle uuid;
    v_tz text;
    v_reason text;
BEGIN
    rel_changed := false;
    IF p_action = 'place' THEN
        IF coalesce(p_price_fen, 0) <= 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'order.price_fen',
                MESSAGE = 'price is required (in fen, more than 0)';
        END IF;
        IF coalesce(p_deposit_fen, 0) < 0 OR coalesce(p_deposit_fen, 0) > p_price_fen THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'order.deposit_fen',
                MESSAGE = 'deposit must be from 0 to the price';
        END IF;
        IF coalesce(p_opportunity_id, '') <> '' THEN
            SELECT x.* INTO op FROM crm.opportunities x
             WHERE x.id = crm.check_uuid(p_opportunity_id, 'order.opportunity_id')
               FOR NO KEY UPDATE;
            IF NOT FOUND OR op.relation_id <> r.id THEN
                RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'order.opportunity_id',
                    MESSAGE = 'no such opportunity on this relation';
            END IF;
            IF op.status <> 'open' THEN
                RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'order.opportunity_id',
                    MESSAGE = format('the opportunity is %s; an order links an open one',
                                     op.status);
            END IF;
        END IF;
        INSERT INTO crm.orders (id, relation_id, store_id, opportunity_id, model, configuration,
                                price_fen, deposit_fen, placed_at, created_by, created_at,
                                updated_at)
        VALUES (p_id, r.id, r.store_id, op.id,
                crm.sales_text(p_model, 'order.model', 100, true),
                crm.sales_text(p_configuration, 'order.configuration', 200, false),
                p_price_fen, coalesce(p_deposit_fen, 0), p_at, p_user_id, p_write_at,
                p_write_at);
        IF op.id IS NOT NULL THEN
            PERFORM crm.opportunity_move(op.id, 'deal', p_user_id, p_at, p_write_at);
            UPDATE crm.opportunities x
               SET status = 'won', closed_at = p_at, updated_at = p_write_at,
                   version = x.version + CASE WHEN x.stage = op.stage THEN 1 ELSE 0 END
             WHERE x.id = op.id;
            opp_id := op.id;
        END IF;
        rel_changed := crm.sales_level(r, 'O', 'order placed', p_user_id, p_at, p_write_at);
        RETURN;
    END IF;
    IF o.status <> 'placed' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'id',
            MESSAGE = format('the order is %s; only a placed order can be %s', o.status,
                             CASE p_action WHEN 'deliver' THEN 'delivered' ELSE 'cancelled' END);
    END IF;
    IF p_at < o.placed_at THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'the time must not be before the order was placed';
    END IF;
    IF p_action = 'deliver' THEN
        v_vin := crm.vin_check(p_vin);
        v_vehicle := crm.check_uuid(p_vehicle_id, 'vehicle_id', true);
        SELECT p.time_zone INTO v_tz FROM crm.group_policy p WHERE p.singleton;
        PERFORM crm.vehicle_register(v_vehicle, r.customer_id, r.store_id, v_vin, o.model,
                                     p_plate, (p_at AT TIME ZONE coalesce(v_tz, 'Asia/Shanghai'))::date,
                                     p_write_at);
        UPDATE crm.orders x
           SET status = 'delivered', delivered_at = p_at, vin = v_vin,
               plate = (SELECT vh.plate FROM crm.vehicles vh WHERE vh.id = v_vehicle),
               vehicle_id = v_vehicle, version = x.version + 1, updated_at = p_write_at
         WHERE x.id = o.id;
        IF o.opportunity_id IS NOT NULL
           AND crm.opportunity_move(o.opportunity_id, 'delivery', p_user_id, p_at, p_write_at) THEN
            opp_id := o.opportunity_id;
        END IF;
        rel_changed := crm.sales_level(r, 'D', 'order delivered', p_user_id, p_at, p_write_at);
        RETURN;
    END IF;
    IF p_action <> 'cancel' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'action',
            MESSAGE = 'action must be place, deliver or cancel';
    END IF;
    v_reason := crm.sales_text(p_reason, 'reason', 500, true);
    UPDATE crm.orders x
       SET status = 'cancelled', cancelled_at = p_at, cancel_reason = v_reason,
           version = x.version + 1, updated_at = p_write_at
     WHERE x.id = o.id;
    IF o.opportunity_id IS NOT NULL THEN
        UPDATE crm.opportunities x
           SET status = 'lost', defeat_reason = 'other',
               defeat_text = left('order cancelled: ' || v_reason, 500), closed_at = p_at,
               version = x.version + 1, updated_at = p_write_at
         WHERE x.id = o.opportunity_id AND x.status = 'won';
        IF FOUND THEN
            opp_id := o.opportunity_id;
        END IF;
    END IF;
    -- Only an ordered relation (O) moves to T, and only when no other order
    -- of it is still placed: a delivered customer (D) stays delivered.
    IF r.level = 'O' AND NOT EXISTS (SELECT 1 FROM crm.orders x
                    WHERE x.relation_id = r.id AND x.status = 'placed' AND x.id <> o.id) THEN
        rel_changed := crm.sales_level(r, 'T', left('order cancelled: ' || v_reason, 500),
                                       p_user_id, p_at, p_write_at);
    END IF;
END
$$;

-- STMT_ORDER_WRITE: p_action 'place' (p_id new UUIDv7, p_relation_id,
-- p_opportunity_id or '', p_model, p_configuration, p_price_fen,
-- p_deposit_fen), 'deliver' (p_id, p_version, p_vin, p_plate,
-- p_vehicle_id new UUIDv7) or 'cancel' (p_id, p_version, p_reason).
-- p_at_ms: when it happened (the level change's time: the tasks are due
-- from it); p_write_at_ms: the write time.
-- With p_plan the write runs and is rolled back: the row shows the
-- relation as the write will leave it (crmd packs it). Without, the
-- relation must come out at p_expect_version with next follow-up
-- p_expect_next_ms (else DC409, nothing written); the bundle holds the
-- packed Relation, appended when the relation changed.
-- -> outcome ('ok'; 'existed' for a place whose id exists; 'stale' with
-- the current order when p_version is not current), rel_changed, ORDER
-- columns, OPPORTUNITY columns (NULL when none is linked), all columns of
-- crm.relation_view.
CREATE FUNCTION crm.order_write(
    p_session_id uuid, p_action text, p_plan boolean, p_id text, p_version bigint,
    p_relation_id text, p_opportunity_id text, p_model text, p_configuration text,
    p_price_fen bigint, p_deposit_fen bigint, p_vin text, p_plate text, p_vehicle_id text,
    p_reason text, p_at_ms bigint, p_write_at_ms bigint, p_expect_version bigint,
    p_expect_next_ms bigint, p_payloads bytea)
RETURNS TABLE (outcome text, rel_changed boolean, ord crm.order_view, opp crm.opportunity_view,
               rel crm.relation_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_rel uuid;
    r crm.relations;
    o crm.orders;
    w record;
    v_ord crm.order_view;
    v_opp crm.opportunity_view;
    v_relv crm.relation_view;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF p_at_ms IS NULL OR p_write_at_ms IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at', MESSAGE = 'time is required';
    END IF;
    IF p_action = 'place' THEN
        v_id := crm.check_uuid(p_id, 'order.id', true);
        v_rel := crm.check_uuid(p_relation_id, 'order.relation_id');
        r := crm.sales_relation(v_rel, 'order.relation_id');
        PERFORM crm.sales_check_access(r, me.user_id, me.role, me.store_id, true);
        IF EXISTS (SELECT 1 FROM crm.orders x WHERE x.id = v_id) THEN
            RETURN QUERY
            SELECT 'existed', false, v, p, rv
              FROM crm.order_view v
              LEFT JOIN crm.opportunity_view p ON p.id::text = v.opportunity_id
              JOIN crm.relation_view rv ON rv.id = v.relation_id
             WHERE v.id = v_id;
            RETURN;
        END IF;
    ELSE
        v_id := crm.check_uuid(p_id, 'id');
        SELECT x.relation_id INTO v_rel FROM crm.orders x WHERE x.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such order';
        END IF;
        r := crm.sales_relation(v_rel, 'id');
        PERFORM crm.sales_check_access(r, me.user_id, me.role, me.store_id, true);
        SELECT x.* INTO o FROM crm.orders x WHERE x.id = v_id FOR NO KEY UPDATE;
        IF o.version <> coalesce(p_version, 0) THEN
            RETURN QUERY
            SELECT 'stale', false, v, p, rv
              FROM crm.order_view v
              LEFT JOIN crm.opportunity_view p ON p.id::text = v.opportunity_id
              JOIN crm.relation_view rv ON rv.id = v.relation_id
             WHERE v.id = v_id;
            RETURN;
        END IF;
    END IF;
    IF p_plan THEN
        BEGIN
            SELECT * INTO w FROM crm.order_apply(p_action, r, o, me.user_id, v_id,
                p_opportunity_id, p_model, p_configuration, p_price_fen, p_deposit_fen, p_vin,
                p_plate, p_vehicle_id, p_reason, crm.from_ms(p_at_ms), crm.from_ms(p_write_at_ms));
            SELECT v.* INTO v_ord FROM crm.order_view v WHERE v.id = v_id;
            SELECT v.* INTO v_opp FROM crm.opportunity_view v WHERE v.id::text = v_ord.opportunity_id;
            SELECT v.* INTO v_relv FROM crm.relation_view v WHERE v.id = r.id;
            RAISE EXCEPTION USING ERRCODE = 'DC999', MESSAGE = 'plan only';
        EXCEPTION WHEN SQLSTATE 'DC999' THEN
            NULL;   -- rolled back: the plan writes nothing
        END;
        RETURN QUERY SELECT 'ok', w.rel_changed, v_ord, v_opp, v_relv;
        RETURN;
    END IF;
    SELECT * INTO w FROM crm.order_apply(p_action, r, o, me.user_id, v_id, p_opportunity_id,
        p_model, p_configuration, p_price_fen, p_deposit_fen, p_vin, p_plate, p_vehicle_id,
        p_reason, crm.from_ms(p_at_ms), crm.from_ms(p_write_at_ms));
    SELECT v.* INTO v_relv FROM crm.relation_view v WHERE v.id = r.id;
    IF v_relv.version <> coalesce(p_expect_version, 0)
       OR v_relv.next_followup_at_ms <> coalesce(p_expect_next_ms, 0) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'relation_id',
            MESSAGE = 'the relation changed while the order was written; try again';
    END IF;
    PERFORM crm.outbox_append('order', v_id, crm.order_payload(v_id));
    IF w.opp_id IS NOT NULL THEN
        PERFORM crm.outbox_append('opportunity', w.opp_id, crm.opportunity_payload(w.opp_id));
    END IF;
    IF w.rel_changed THEN
        PERFORM crm.outbox_append('relation', r.id, crm.payload_part(p_payloads, 0));
    END IF;
    RETURN QUERY
    SELECT 'ok', w.rel_changed, v, p, v_relv
      FROM crm.order_view v
      LEFT JOIN crm.opportunity_view p ON p.id::text = v.opportunity_id
     WHERE v.id = v_id;
END
$$;

-- STMT_ORDER_LIST: ORDER columns, newest first, like crm.opportunity_list.
CREATE FUNCTION crm.order_list(p_session_id uuid, p_id text, p_relation_id text,
                               p_customer_id text, p_status text, p_limit integer)
RETURNS SETOF crm.order_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_ids uuid[];
    v_rel uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no orders';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF coalesce(p_status, '') NOT IN ('', 'placed', 'delivered', 'cancelled') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'status',
            MESSAGE = 'status must be placed, delivered or cancelled';
    END IF;
    IF coalesce(p_id, '') <> '' THEN
        SELECT x.relation_id INTO v_rel FROM crm.orders x WHERE x.id = crm.check_uuid(p_id, 'id');
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such order';
        END IF;
        v_ids := crm.readable_relations(me.user_id, me.role, me.store_id, v_rel::text, NULL);
        RETURN QUERY SELECT v.* FROM crm.order_view v WHERE v.id = p_id::uuid;
        RETURN;
    END IF;
    IF coalesce(p_relation_id, '') <> '' OR coalesce(p_customer_id, '') <> '' THEN
        v_ids := crm.readable_relations(me.user_id, me.role, me.store_id, p_relation_id,
                                        p_customer_id);
        RETURN QUERY
        SELECT v.* FROM crm.order_view v
         WHERE v.relation_id = ANY (v_ids) AND (coalesce(p_status, '') = '' OR v.status = p_status)
         ORDER BY v.placed_at_ms DESC, v.id DESC LIMIT p_limit;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.order_view v
      JOIN crm.relations r ON r.id = v.relation_id
     WHERE crm.sales_scope_ok(r.store_id, r.owner_id, me.user_id, me.role, me.store_id)
       AND (coalesce(p_status, '') = '' OR v.status = p_status)
     ORDER BY v.placed_at_ms DESC, v.id DESC LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ test drives

-- STMT_TEST_DRIVE_ADD: records a test drive (p_consultant '' = the caller;
-- else a consultant or manager of the relation's store). A linked open
-- opportunity earlier than test_drive moves to it. -> outcome ('ok',
-- 'existed'), TEST_DRIVE columns, OPPORTUNITY columns (NULL: none linked).
CREATE FUNCTION crm.test_drive_add(p_session_id uuid, p_id text, p_relation_id text,
                                   p_opportunity_id text, p_model text, p_consultant text,
                                   p_at_ms bigint, p_note text, p_write_at_ms bigint)
RETURNS TABLE (outcome text, td crm.test_drive_view, opp crm.opportunity_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    r crm.relations;
    op crm.opportunities;
    v_consultant uuid;
    v_at timestamptz;
    v_write timestamptz;
    v_moved boolean := false;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF p_at_ms IS NULL OR p_write_at_ms IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at', MESSAGE = 'time is required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    v_write := crm.from_ms(p_write_at_ms);
    v_id := crm.check_uuid(p_id, 'test_drive.id', true);
    r := crm.sales_relation(crm.check_uuid(p_relation_id, 'test_drive.relation_id'),
                            'test_drive.relation_id');
    PERFORM crm.sales_check_access(r, me.user_id, me.role, me.store_id, false);
    IF EXISTS (SELECT 1 FROM crm.test_drives x WHERE x.id = v_id) THEN
        RETURN QUERY
        SELECT 'existed', t, p FROM crm.test_drive_view t
          LEFT JOIN crm.opportunity_view p ON p.id::text = t.opportunity_id
         WHERE t.id = v_id;
        RETURN;
    END IF;
    IF coalesce(p_consultant, '') = '' THEN
        v_consultant := me.user_id;
    ELSE
        SELECT u.id INTO v_consultant FROM crm.users u
         WHERE u.username = p_consultant AND u.store_id = r.store_id AND NOT u.disabled
           AND u.role IN ('consultant', 'sales_manager', 'store_manager');
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'test_drive.consultant',
                MESSAGE = format('%s is not a consultant or sales manager of the store',
                                 p_consultant);
        END IF;
    END IF;
    IF coalesce(p_opportunity_id, '') <> '' THEN
        SELECT x.* INTO op FROM crm.opportunities x
         WHERE x.id = crm.check_uuid(p_opportunity_id, 'test_drive.opportunity_id')
           FOR NO KEY UPDATE;
        IF NOT FOUND OR op.relation_id <> r.id THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'test_drive.opportunity_id',
                MESSAGE = 'no such opportunity on this relation';
        END IF;
    END IF;
    INSERT INTO crm.test_drives (id, relation_id, store_id, opportunity_id, model, consultant_id,
                                 at, note, created_by, created_at)
    VALUES (v_id, r.id, r.store_id, op.id, crm.sales_text(p_model, 'test_drive.model', 100, true),
            v_consultant, v_at, crm.sales_text(p_note, 'test_drive.note', 500, false),
            me.user_id, v_write);
    IF op.id IS NOT NULL AND op.status = 'open'
       AND crm.stage_rank(op.stage) < crm.stage_rank('test_drive') THEN
        v_moved := crm.opportunity_move(op.id, 'test_drive', me.user_id, v_at, v_write);
    END IF;
    PERFORM crm.outbox_append('test_drive', v_id, crm.test_drive_payload(v_id));
    IF v_moved THEN
        PERFORM crm.outbox_append('opportunity', op.id, crm.opportunity_payload(op.id));
    END IF;
    RETURN QUERY
    SELECT 'ok', t, p FROM crm.test_drive_view t
      LEFT JOIN crm.opportunity_view p ON p.id::text = t.opportunity_id
     WHERE t.id = v_id;
END
$$;

-- STMT_TEST_DRIVE_LIST: TEST_DRIVE columns, newest first, of a relation or
-- customer (crm.readable_relations) or of the caller's scope.
CREATE FUNCTION crm.test_drive_list(p_session_id uuid, p_relation_id text, p_customer_id text,
                                    p_limit integer)
RETURNS SETOF crm.test_drive_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_ids uuid[];
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no test drives';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'limit',
            MESSAGE = 'limit must be from 1 to 1000';
    END IF;
    IF coalesce(p_relation_id, '') <> '' OR coalesce(p_customer_id, '') <> '' THEN
        v_ids := crm.readable_relations(me.user_id, me.role, me.store_id, p_relation_id,
                                        p_customer_id);
        RETURN QUERY
        SELECT v.* FROM crm.test_drive_view v WHERE v.relation_id = ANY (v_ids)
         ORDER BY v.at_ms DESC, v.id DESC LIMIT p_limit;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.test_drive_view v
      JOIN crm.relations r ON r.id = v.relation_id
     WHERE crm.sales_scope_ok(r.store_id, r.owner_id, me.user_id, me.role, me.store_id)
     ORDER BY v.at_ms DESC, v.id DESC LIMIT p_limit;
END
$$;

-- ------------------------------------------------------------ row-level security

-- Visible when the relation is (its own policies decide, sql/0012),
-- written only by the relation's store.
ALTER TABLE crm.opportunities ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.opportunities FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.opportunity_stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.opportunity_stages FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.orders FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.test_drives ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.test_drives FORCE ROW LEVEL SECURITY;

CREATE POLICY opportunities_read ON crm.opportunities FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY opportunities_insert ON crm.opportunities FOR INSERT
    WITH CHECK (store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));
CREATE POLICY opportunities_update ON crm.opportunities FOR UPDATE
    USING (store_id = crm.rls_store() AND crm.relation_visible(relation_id))
    WITH CHECK (store_id = crm.rls_store());

CREATE POLICY opportunity_stages_read ON crm.opportunity_stages FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY opportunity_stages_insert ON crm.opportunity_stages FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                          AND r.store_id = crm.rls_store()));

CREATE POLICY orders_read ON crm.orders FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY orders_insert ON crm.orders FOR INSERT
    WITH CHECK (store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));
CREATE POLICY orders_update ON crm.orders FOR UPDATE
    USING (store_id = crm.rls_store() AND crm.relation_visible(relation_id))
    WITH CHECK (store_id = crm.rls_store());

CREATE POLICY test_drives_read ON crm.test_drives FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY test_drives_insert ON crm.test_drives FOR INSERT
    WITH CHECK (store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.opportunities, crm.opportunity_stages, crm.orders, crm.test_drives,
    crm.opportunity_view, crm.order_view, crm.test_drive_view FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.pb_message(integer, bytea), crm.opportunity_payload(uuid),
    crm.order_payload(uuid), crm.test_drive_payload(uuid), crm.stage_rank(text),
    crm.sales_check_access(crm.relations, uuid, text, uuid, boolean),
    crm.sales_relation(uuid, text),
    crm.opportunity_move(uuid, text, uuid, timestamptz, timestamptz),
    crm.sales_level(crm.relations, text, text, uuid, timestamptz, timestamptz),
    crm.sales_text(text, text, integer, boolean),
    crm.opportunity_write(uuid, text, text, bigint, text, text, text, bigint, text, text, text,
                          bigint, bigint),
    crm.sales_scope_ok(uuid, uuid, uuid, text, uuid),
    crm.opportunity_list(uuid, text, text, text, text, integer),
    crm.order_apply(text, crm.relations, crm.orders, uuid, uuid, text, text, text, bigint,
                    bigint, text, text, text, text, timestamptz, timestamptz),
    crm.order_write(uuid, text, boolean, text, bigint, text, text, text, text, bigint, bigint,
                    text, text, text, text, bigint, bigint, bigint, bigint, bytea),
    crm.order_list(uuid, text, text, text, text, integer),
    crm.test_drive_add(uuid, text, text, text, text, text, bigint, text, bigint),
    crm.test_drive_list(uuid, text, text, integer) FROM PUBLIC;

-- Stage history is append-only; orders and opportunities change, never
-- disappear; test drives are recorded once.
DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' crm.pb_message(integer, bytea), crm.opportunity_payload(uuid),'
                   ' crm.order_payload(uuid), crm.test_drive_payload(uuid), crm.stage_rank(text),'
                   ' crm.sales_check_access(crm.relations, uuid, text, uuid, boolean),'
                   ' crm.sales_relation(uuid, text),'
                   ' crm.opportunity_move(uuid, text, uuid, timestamptz, timestamptz),'
                   ' crm.sales_level(crm.relations, text, text, uuid, timestamptz, timestamptz),'
                   ' crm.sales_text(text, text, integer, boolean),'
                   ' crm.opportunity_write(uuid, text, text, bigint, text, text, text, bigint,'
                   '   text, text, text, bigint, bigint),'
                   ' crm.sales_scope_ok(uuid, uuid, uuid, text, uuid),'
                   ' crm.opportunity_list(uuid, text, text, text, text, integer),'
                   ' crm.order_apply(text, crm.relations, crm.orders, uuid, uuid, text, text, text,'
                   '   bigint, bigint, text, text, text, text, timestamptz, timestamptz),'
                   ' crm.order_write(uuid, text, boolean, text, bigint, text, text, text, text,'
                   '   bigint, bigint, text, text, text, text, bigint, bigint, bigint, bigint,'
                   '   bytea),'
                   ' crm.order_list(uuid, text, text, text, text, integer),'
                   ' crm.test_drive_add(uuid, text, text, text, text, text, bigint, text, bigint),'
                   ' crm.test_drive_list(uuid, text, text, integer)'
                   ' TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.opportunities, crm.orders TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON crm.opportunity_stages, crm.test_drives TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.opportunity_view, crm.order_view, crm.test_drive_view'
                   ' TO %I', app);
END
$$;
