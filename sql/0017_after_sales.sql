-- 0017_after_sales: vehicles, service visits, base customers, maintenance
-- reminders and value classes (issue 6 "Vehicles and service"; DESIGN.md
-- "Domain": after-sales base customers, value classes).
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.vehicles: one car, by VIN (unique group-wide), owned by a customer,
--   sold by a store. crm.vehicle_register is the one way a vehicle is
--   written; other migrations call it from inside their own write
--   functions (order delivery, sql/0018). Its outbox payload is encoded
--   here (crm.vehicle_payload, a packed crm.Vehicle) because those callers
--   have no crmd-packed record.
-- * crm.service_visits: a car serviced at a store (date, mileage, type,
--   amount in fen), recorded by that store's service advisors and store
--   managers; payload encoded here too (crm.visit_payload).
-- * Base customers per store are derived at a given time from the visits
--   (crm.base_rows): archived, active, loyal, lost by the brand's policy
--   (crm.service_policy). A return after being lost is a row of
--   crm.base_events, written by trigger when the visit is recorded.
-- * Maintenance reminders (crm.reminders_apply) are tasks of sql/0013 for
--   the store's service advisors, cadence_key 'svc/' || vehicle id, at most
--   one open per car; value classes (crm.value_classes_compute) are stored
--   per store with the time of computation. Both run on request and daily
--   from crmd's timer (crm.service_daily). Base events and value classes
--   are derived from the visits, which sync: each side derives its own, and
--   neither goes to the outbox. Reminder tasks go as 'task' changes.
-- * Scope: a vehicle, a visit, an event, a value class follows its customer
--   (crm.customer_access, sql/0012): visible when the customer is; a
--   vehicle written when the caller may write the customer, a visit only by
--   the servicing store. A store with no relation to the customer neither
--   sees nor writes its cars.

-- ------------------------------------------------------------ vehicles

-- VIN: ISO 3779, 17 characters of A-Z and 0-9 without I, O and Q (they
-- read as 1 and 0). Stored upper case.
CREATE TABLE crm.vehicles (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),   -- the selling store
    vin text NOT NULL UNIQUE CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    model text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 100),
    plate text NOT NULL DEFAULT '' CHECK (char_length(plate) <= 20),
    purchased_on date,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    created_by uuid REFERENCES crm.users (id)   -- empty when it came by sync
);
CREATE INDEX vehicles_customer ON crm.vehicles (customer_id, created_at);
CREATE INDEX vehicles_store ON crm.vehicles (store_id);
CREATE INDEX vehicles_plate ON crm.vehicles (plate) WHERE plate <> '';

-- The VIN in the stored form (upper case, no blanks), or DC400 naming the
-- field 'vin' with the reason in plain words.
CREATE FUNCTION crm.vin_check(p_vin text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v text := upper(btrim(coalesce(p_vin, ''), E' \t\r\n\u3000'));
BEGIN
    IF v = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'vin', MESSAGE = 'vin is required';
    END IF;
    IF char_length(v) <> 17 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'vin',
            MESSAGE = format('vin must be 17 characters (got %s)', char_length(v));
    END IF;
    IF v ~ '[IOQ]' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'vin',
            MESSAGE = 'vin must not contain the letters I, O or Q';
    END IF;
    IF v !~ '^[A-HJ-NPR-Z0-9]{17}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'vin',
            MESSAGE = 'vin may contain only the letters A-Z (not I, O, Q) and digits 0-9';
    END IF;
    RETURN v;
END
$$;

-- The vehicle holding a VIN anywhere in the group (definer: the VIN is
-- unique group-wide, also across rows the caller's policies hide).
CREATE FUNCTION crm.vehicle_by_vin(p_vin text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$ SELECT v.id FROM crm.vehicles v WHERE v.vin = p_vin $$;

-- Whether a vehicle exists at all ("not yours" rather than "none").
CREATE FUNCTION crm.vehicle_exists(p_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM crm.vehicles v WHERE v.id = p_id) $$;

-- The outbox payload of a vehicle: a packed crm.Vehicle (proto/crm.proto)
-- with the fields sync needs (not the derived customer name).
CREATE FUNCTION crm.vehicle_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.customer_id::text)
        || crm.pb_text(4, s.code) || crm.pb_text(5, v.vin) || crm.pb_text(6, v.model)
        || crm.pb_text(7, v.plate) || crm.pb_text(8, to_char(v.purchased_on, 'YYYY-MM-DD'))
        || crm.pb_int(9, crm.ms(v.created_at)) || crm.pb_text(10, u.username)
        || crm.pb_int(11, v.version)
      FROM crm.vehicles v
      JOIN crm.stores s ON s.id = v.store_id
      LEFT JOIN crm.users u ON u.id = v.created_by
     WHERE v.id = p_id
$$;

-- Registers a vehicle for the caller's session (crm.session_begin must have
-- run in this transaction) and appends it to the outbox; returns its id.
-- For other migrations' write functions (order delivery) and for
-- crm.vehicle_add. Idempotent on p_id: a vehicle with that id already
-- there is returned as it is and nothing is written. Raises
--   DC400 COLUMN vin / model / plate / customer_id / store_id / id: bad input
--   DC404 COLUMN customer_id: no such customer
--   DC403: the caller may not write this customer (sql/0012's rule)
--   DC410 COLUMN vin: the VIN belongs to another vehicle
-- The caller's role is the caller's to check (who may sell or register).
CREATE FUNCTION crm.vehicle_register(p_id uuid, p_customer_id uuid, p_store_id uuid,
                                     p_vin text, p_model text, p_plate text,
                                     p_purchased_on date, p_at timestamptz)
RETURNS uuid
LANGUAGE plpgsql
AS $$
DECLARE
    v_vin text;
    v_model text := btrim(coalesce(p_model, ''), E' \t\r\n\u3000');
    v_plate text := upper(regexp_replace(coalesce(p_plate, ''), '[\s\u3000·•-]', '', 'g'));
    v_other uuid;
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'id', MESSAGE = 'vehicle id is required';
    END IF;
    IF crm.vehicle_exists(p_id) THEN
        RETURN p_id;
    END IF;
    v_vin := crm.vin_check(p_vin);
    IF v_model = '' OR char_length(v_model) > 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'model',
            MESSAGE = 'model is required (at most 100 characters)';
    END IF;
    IF char_length(v_plate) > 20 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'plate',
            MESSAGE = 'plate must be at most 20 characters';
    END IF;
    IF p_at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at', MESSAGE = 'write time is required';
    END IF;
    IF p_purchased_on IS NOT NULL AND p_purchased_on > (p_at + interval '1 day')::date THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'purchased_on',
            MESSAGE = 'purchase date must not be in the future';
    END IF;
    IF p_customer_id IS NULL OR NOT crm.customer_exists(p_customer_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'customer_id',
            MESSAGE = 'no such customer';
    END IF;
    IF crm.rls_customer(p_customer_id) IS DISTINCT FROM 'write' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = crm.customer_denied(coalesce(crm.rls_role(), ''));
    END IF;
    IF p_store_id IS NULL OR NOT EXISTS (SELECT 1 FROM crm.stores s WHERE s.id = p_store_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_id',
            MESSAGE = 'selling store is required and must be a store of the group';
    END IF;
    v_other := crm.vehicle_by_vin(v_vin);
    IF v_other IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'vin',
            MESSAGE = format('vin %s is already registered to another vehicle', v_vin);
    END IF;
    BEGIN
        INSERT INTO crm.vehicles (id, customer_id, store_id, vin, model, plate, purchased_on,
                                  created_at, created_by)
        VALUES (p_id, p_customer_id, p_store_id, v_vin, v_model, v_plate, p_purchased_on,
                p_at, crm.rls_user());
    EXCEPTION WHEN unique_violation THEN
        -- A concurrent registration of the same id or VIN committed first.
        IF crm.vehicle_exists(p_id) AND crm.vehicle_by_vin(v_vin) = p_id THEN
            RETURN p_id;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'vin',
            MESSAGE = format('vin %s is already registered to another vehicle', v_vin);
    END;
    PERFORM crm.outbox_append('vehicle', p_id, crm.vehicle_payload(p_id));
    RETURN p_id;
END
$$;

-- ------------------------------------------------------------ service visits

-- customer_id: the vehicle's owner when the visit was recorded (base
-- customers and value classes count by customer). store_id: the store
-- that serviced the car; only it records the visit.
CREATE TABLE crm.service_visits (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    vehicle_id uuid NOT NULL REFERENCES crm.vehicles (id),
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    at timestamptz NOT NULL,                    -- when the car was serviced
    mileage integer NOT NULL CHECK (mileage BETWEEN 0 AND 2000000),  -- km
    type text NOT NULL CHECK (type IN ('maintenance', 'repair', 'warranty', 'accident')),
    amount bigint NOT NULL CHECK (amount BETWEEN 0 AND 100000000000), -- fen
    note text NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    by_user uuid REFERENCES crm.users (id),     -- the advisor who recorded it
    created_at timestamptz NOT NULL
);
CREATE INDEX service_visits_vehicle_at ON crm.service_visits (vehicle_id, at DESC);
CREATE INDEX service_visits_store_customer_at ON crm.service_visits (store_id, customer_id, at);
CREATE INDEX service_visits_customer_at ON crm.service_visits (customer_id, at DESC);

-- A customer who comes back to a store after being lost there (no visit
-- within the brand's window) is a 'returned' event, at the visit's time.
-- Decided when the visit is recorded, from the visits recorded before it.
CREATE TABLE crm.base_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    kind text NOT NULL CHECK (kind IN ('returned')),
    at timestamptz NOT NULL,                    -- the visit that brought them back
    lost_since timestamptz NOT NULL,            -- the previous visit + the window
    visit_id uuid NOT NULL UNIQUE REFERENCES crm.service_visits (id)
);
CREATE INDEX base_events_store_at ON crm.base_events (store_id, at);
CREATE INDEX base_events_customer ON crm.base_events (customer_id, store_id, at);

-- ------------------------------------------------------------ policy

-- Per brand ('' is the group default, used for brands without a row):
--   lost_after_months  no visit within this many months: lost (default 6)
--   loyal_visits       at least this many visits in 12 months: loyal
--   reminder_months    maintenance due this many months after a visit
--   reminder_km        ... or after this many km, at the car's average
--                      daily distance, whichever comes first
--   reminder_lead_days a reminder task is created this many days ahead
--   value_a_pct, value_b_pct  the top a% of the store's customers by
--                      trailing 12-month spend are A, the next b% B, the
--                      rest with spend C
CREATE TABLE crm.service_policy (
    brand text PRIMARY KEY CHECK (char_length(brand) <= 50),
    lost_after_months integer NOT NULL DEFAULT 6 CHECK (lost_after_months BETWEEN 1 AND 60),
    loyal_visits integer NOT NULL DEFAULT 3 CHECK (loyal_visits BETWEEN 1 AND 100),
    reminder_months integer NOT NULL DEFAULT 6 CHECK (reminder_months BETWEEN 1 AND 60),
    reminder_km integer NOT NULL DEFAULT 10000 CHECK (reminder_km BETWEEN 500 AND 100000),
    reminder_lead_days integer NOT NULL DEFAULT 14 CHECK (reminder_lead_days BETWEEN 0 AND 90),
    value_a_pct numeric(5, 2) NOT NULL DEFAULT 5 CHECK (value_a_pct > 0 AND value_a_pct <= 100),
    value_b_pct numeric(5, 2) NOT NULL DEFAULT 15 CHECK (value_b_pct >= 0 AND value_b_pct <= 100),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES crm.users (id),
    CHECK (value_a_pct + value_b_pct <= 100)
);
INSERT INTO crm.service_policy (brand) VALUES ('');

-- The policy of a brand (its row, else the group default).
CREATE FUNCTION crm.service_policy_of(p_brand text) RETURNS crm.service_policy
LANGUAGE sql STABLE
AS $$
    SELECT p.* FROM crm.service_policy p
     WHERE p.brand = p_brand OR p.brand = ''
     ORDER BY p.brand = p_brand DESC LIMIT 1
$$;

-- ------------------------------------------------------------ value classes

-- The last computation of each store's value classes: one row per customer
-- with spend at the store in the 12 months before computed_at. Derived
-- from the visits (which sync), so each side computes its own; not in the
-- outbox.
CREATE TABLE crm.value_classes (
    customer_id uuid NOT NULL REFERENCES crm.customers (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    class char(1) NOT NULL CHECK (class IN ('A', 'B', 'C')),
    spend bigint NOT NULL CHECK (spend > 0),    -- fen, trailing 12 months
    rank integer NOT NULL CHECK (rank >= 1),    -- 1 + customers spending more
    computed_at timestamptz NOT NULL,
    computed_by uuid REFERENCES crm.users (id), -- NULL: crmd's timer
    PRIMARY KEY (customer_id, store_id)
);
CREATE INDEX value_classes_store ON crm.value_classes (store_id, class);

-- ------------------------------------------------------------ views

-- The VEHICLE columns of server/stmts.h, in order.
CREATE VIEW crm.vehicle_view WITH (security_invoker = true) AS
SELECT v.id, v.customer_id, c.name AS customer_name, s.code AS store_code, v.vin, v.model,
       v.plate, coalesce(to_char(v.purchased_on, 'YYYY-MM-DD'), '') AS purchased_on,
       crm.ms(v.created_at) AS created_at_ms, coalesce(u.username, '') AS created_by,
       v.version
  FROM crm.vehicles v
  JOIN crm.customers c ON c.id = v.customer_id
  JOIN crm.stores s ON s.id = v.store_id
  LEFT JOIN crm.users u ON u.id = v.created_by;

-- The VISIT columns of server/stmts.h, in order.
CREATE VIEW crm.visit_view WITH (security_invoker = true) AS
SELECT sv.id, sv.vehicle_id, v.vin, sv.customer_id, s.code AS store_code,
       crm.ms(sv.at) AS at_ms, sv.mileage, sv.type, sv.amount, sv.note,
       coalesce(u.username, '') AS by_user, crm.ms(sv.created_at) AS created_at_ms,
       EXISTS (SELECT 1 FROM crm.base_events e WHERE e.visit_id = sv.id) AS returned
  FROM crm.service_visits sv
  JOIN crm.vehicles v ON v.id = sv.vehicle_id
  JOIN crm.stores s ON s.id = sv.store_id
  LEFT JOIN crm.users u ON u.id = sv.by_user;

-- The outbox payload of a visit: a packed crm.ServiceVisit without the
-- derived 'returned'.
CREATE FUNCTION crm.visit_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, x.id::text) || crm.pb_text(2, x.vehicle_id::text)
        || crm.pb_text(3, x.vin) || crm.pb_text(4, x.customer_id::text)
        || crm.pb_text(5, x.store_code) || crm.pb_int(6, x.at_ms)
        || crm.pb_int(7, x.mileage) || crm.pb_text(8, x.type) || crm.pb_int(9, x.amount)
        || crm.pb_text(10, x.note) || crm.pb_text(11, x.by_user)
        || crm.pb_int(12, x.created_at_ms)
      FROM crm.visit_view x WHERE x.id = p_id
$$;

-- Records the 'returned' event of a new visit (definer: the event table
-- is derived and crmd may not write it directly).
CREATE FUNCTION crm.visit_returned() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_prev timestamptz;
    v_window interval;
BEGIN
    SELECT make_interval(months => (crm.service_policy_of(s.brand)).lost_after_months)
      INTO v_window FROM crm.stores s WHERE s.id = NEW.store_id;
    SELECT max(x.at) INTO v_prev FROM crm.service_visits x
     WHERE x.customer_id = NEW.customer_id AND x.store_id = NEW.store_id
       AND x.at < NEW.at AND x.id <> NEW.id;
    IF v_prev IS NOT NULL AND v_prev <= NEW.at - v_window THEN
        INSERT INTO crm.base_events (customer_id, store_id, kind, at, lost_since, visit_id)
        VALUES (NEW.customer_id, NEW.store_id, 'returned', NEW.at, v_prev + v_window, NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER service_visits_returned AFTER INSERT ON crm.service_visits
    FOR EACH ROW EXECUTE FUNCTION crm.visit_returned();

-- Erasure (crm.customer_erase, 0009): the plate and what staff typed
-- about the customer's visits go, and so does the plate in the purposes of
-- maintenance reminders; the VIN stays (the car exists, and the VIN is
-- unique in the group), as do mileages and amounts (counts and sums).
CREATE FUNCTION crm.erase_service() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    UPDATE crm.vehicles v SET plate = '', version = v.version + 1
     WHERE v.customer_id = NEW.id AND v.plate <> '';
    UPDATE crm.service_visits sv SET note = ''
     WHERE sv.customer_id = NEW.id AND sv.note <> '';
    UPDATE crm.tasks t SET purpose = '已删除'
      FROM crm.relations r
     WHERE r.customer_id = NEW.id AND t.relation_id = r.id AND t.cadence_key LIKE 'svc/%';
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_erase_service AFTER UPDATE OF erased_at ON crm.customers
    FOR EACH ROW WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL)
    EXECUTE FUNCTION crm.erase_service();

-- ------------------------------------------------------------ classification

-- Base customers of each store (or of p_store_id) at p_at, from the visits
-- the caller sees: a customer with at least one visit at the store up to
-- p_at is archived there; active with a visit in the 12 months before
-- p_at; loyal with at least the brand's loyal_visits in those 12 months;
-- lost with no visit in the brand's window (lost_after_months) before
-- p_at. A visit exactly one window before p_at is outside it.
CREATE FUNCTION crm.base_rows(p_store_id uuid, p_customer_id uuid, p_at timestamptz)
RETURNS TABLE (customer_id uuid, store_id uuid, visits integer, visits_12m integer,
               last_visit_at timestamptz, archived boolean, active boolean, loyal boolean,
               lost boolean)
LANGUAGE sql STABLE
AS $$
    SELECT v.customer_id, v.store_id, count(*)::integer,
           count(*) FILTER (WHERE v.at > p_at - interval '12 months')::integer,
           max(v.at), true,
           max(v.at) > p_at - interval '12 months',
           count(*) FILTER (WHERE v.at > p_at - interval '12 months') >= pol.loyal_visits,
           max(v.at) <= p_at - make_interval(months => pol.lost_after_months)
      FROM crm.service_visits v
      JOIN crm.stores s ON s.id = v.store_id
      CROSS JOIN LATERAL crm.service_policy_of(s.brand) pol
     WHERE v.at <= p_at
       AND (p_store_id IS NULL OR v.store_id = p_store_id)
       AND (p_customer_id IS NULL OR v.customer_id = p_customer_id)
     GROUP BY v.customer_id, v.store_id, pol.loyal_visits, pol.lost_after_months
$$;

-- Recomputes the value classes of one store at p_at (definer: it reads
-- and replaces every row of the store, whoever asks; the callers check).
-- Ranks customers by spend at the store in the 12 months before p_at;
-- rank = 1 + the number spending more, so ties share a class: A when
-- rank <= ceil(n * a%), B when rank <= ceil(n * (a + b)%), else C.
CREATE FUNCTION crm.value_classes_compute(p_store_id uuid, p_at timestamptz, p_by uuid)
RETURNS TABLE (a integer, b integer, c integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    pol crm.service_policy;
BEGIN
    -- One computation of a store at a time: a second one waits, then
    -- replaces what the first wrote (each statement sees it committed).
    PERFORM pg_advisory_xact_lock(hashtextextended('crm.value_classes/' || p_store_id, 0));
    SELECT (crm.service_policy_of(s.brand)).* INTO pol FROM crm.stores s WHERE s.id = p_store_id;
    DELETE FROM crm.value_classes x WHERE x.store_id = p_store_id;
    INSERT INTO crm.value_classes (customer_id, store_id, class, spend, rank, computed_at,
                                   computed_by)
    SELECT r.customer_id, p_store_id,
           CASE WHEN r.rnk <= ceil(r.n * pol.value_a_pct / 100) THEN 'A'
                WHEN r.rnk <= ceil(r.n * (pol.value_a_pct + pol.value_b_pct) / 100) THEN 'B'
                ELSE 'C' END,
           r.spend, r.rnk, p_at, p_by
      FROM (SELECT t.customer_id, t.spend, rank() OVER (ORDER BY t.spend DESC) AS rnk,
                   count(*) OVER () AS n
              FROM (SELECT v.customer_id, sum(v.amount) AS spend
                      FROM crm.service_visits v
                     WHERE v.store_id = p_store_id AND v.at <= p_at
                       AND v.at > p_at - interval '12 months'
                     GROUP BY v.customer_id
                    HAVING sum(v.amount) > 0) t) r;
    RETURN QUERY
    SELECT count(*) FILTER (WHERE x.class = 'A')::integer,
           count(*) FILTER (WHERE x.class = 'B')::integer,
           count(*) FILTER (WHERE x.class = 'C')::integer
      FROM crm.value_classes x WHERE x.store_id = p_store_id;
END
$$;

-- ------------------------------------------------------------ maintenance reminders

-- Creates the maintenance reminder tasks of one store due by p_at plus the
-- brand's lead days (definer: a reminder is a task for the store's service
-- advisors whoever runs it, crmd's timer included; the callers check).
-- A vehicle belongs to the store of its latest visit up to p_at. Its next
-- service is due reminder_months after that visit, or earlier when its
-- average daily distance reaches reminder_km sooner: the distance runs
-- from the purchase date (at 0 km) when known, else from the first visit,
-- to the latest visit. A vehicle has no new reminder while a reminder task
-- of it is open or one was created after its latest visit. The task goes
-- to the advisor who recorded the latest visit when still an enabled
-- service advisor of the store, else the store's first enabled service
-- advisor, else the pool, on the owner's relation at the store.
-- Returns a row per vehicle due: outcome 'created' (task_id set), 'open'
-- (covered by a reminder already) or 'no_relation' (the owner has no
-- relation at the store to put a task on).
CREATE FUNCTION crm.reminders_apply(p_store_id uuid, p_at timestamptz, p_by uuid)
RETURNS TABLE (outcome text, vehicle_id uuid, task_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    pol crm.service_policy;
    v_tz text;
    d record;
    v_rel uuid;
    v_owner uuid;
    v_id uuid;
    v_key text;
BEGIN
    -- One run of a store at a time, so that two runs (the timer's and a
    -- person's) never both find a car without its reminder.
    PERFORM pg_advisory_xact_lock(hashtextextended('crm.reminders/' || p_store_id, 0));
    SELECT (crm.service_policy_of(s.brand)).* INTO pol FROM crm.stores s WHERE s.id = p_store_id;
    SELECT gp.time_zone INTO v_tz FROM crm.group_policy gp;
    FOR d IN
        WITH last AS (
            SELECT DISTINCT ON (sv.vehicle_id) sv.vehicle_id, sv.store_id, sv.at, sv.mileage,
                   sv.by_user
              FROM crm.service_visits sv
             WHERE sv.at <= p_at
             ORDER BY sv.vehicle_id, sv.at DESC, sv.id DESC),
        start AS (
            SELECT DISTINCT ON (sv.vehicle_id) sv.vehicle_id, sv.at, sv.mileage
              FROM crm.service_visits sv
             WHERE sv.at <= p_at
             ORDER BY sv.vehicle_id, sv.at, sv.id),
        due AS (
            SELECT l.vehicle_id, v.customer_id, v.model, v.vin, v.plate, l.at AS last_at,
                   l.mileage, l.by_user,
                   l.at + make_interval(months => pol.reminder_months) AS by_months,
                   CASE WHEN rate.km_per_day > 0
                        THEN l.at + make_interval(secs => pol.reminder_km / rate.km_per_day * 86400)
                   END AS by_km,
                   rate.km_per_day
              FROM last l
              JOIN crm.vehicles v ON v.id = l.vehicle_id
              JOIN start f ON f.vehicle_id = l.vehicle_id
              CROSS JOIN LATERAL (
                  SELECT CASE
                      WHEN v.purchased_on IS NOT NULL
                           AND l.at - (v.purchased_on::timestamp AT TIME ZONE v_tz) >= interval '1 day'
                      THEN l.mileage / (extract(epoch FROM l.at - (v.purchased_on::timestamp
                                                                   AT TIME ZONE v_tz)) / 86400)
                      WHEN l.at - f.at >= interval '1 day' AND l.mileage > f.mileage
                      THEN (l.mileage - f.mileage) / (extract(epoch FROM l.at - f.at) / 86400)
                  END::double precision AS km_per_day) rate
             WHERE l.store_id = p_store_id)
        SELECT x.*, least(x.by_months, coalesce(x.by_km, x.by_months)) AS due_at,
               x.by_km IS NOT NULL AND x.by_km < x.by_months AS by_mileage
          FROM due x
         WHERE least(x.by_months, coalesce(x.by_km, x.by_months))
               <= p_at + make_interval(days => pol.reminder_lead_days)
         ORDER BY x.vehicle_id
    LOOP
        v_key := 'svc/' || d.vehicle_id;
        PERFORM 1 FROM crm.tasks t
         WHERE t.cadence_key = v_key AND (t.status = 'open' OR t.created_at > d.last_at);
        IF FOUND THEN
            RETURN QUERY SELECT 'open'::text, d.vehicle_id, NULL::uuid;
            CONTINUE;
        END IF;
        SELECT r.id INTO v_rel FROM crm.relations r
         WHERE r.customer_id = d.customer_id AND r.store_id = p_store_id;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'no_relation'::text, d.vehicle_id, NULL::uuid;
            CONTINUE;
        END IF;
        SELECT u.id INTO v_owner FROM crm.users u
         WHERE u.store_id = p_store_id AND NOT u.disabled AND u.role = 'service_advisor'
         ORDER BY u.id = d.by_user DESC, u.username LIMIT 1;
        v_id := crm.uuid_v7(p_at);
        INSERT INTO crm.tasks (id, relation_id, store_id, owner_id, due_at, method, purpose,
                               cadence_key, created_at, created_by)
        VALUES (v_id, v_rel, p_store_id, v_owner, d.due_at, 'phone',
                left(format('maintenance due %s: %s %s (%s)',
                            to_char(d.due_at AT TIME ZONE v_tz, 'YYYY-MM-DD'), d.model,
                            coalesce(nullif(d.plate, ''), d.vin),
                            CASE WHEN d.by_mileage
                                 THEN format('about %s km at %s km a day',
                                             d.mileage + pol.reminder_km,
                                             round(d.km_per_day::numeric, 1))
                                 ELSE format('%s months since the last service',
                                             pol.reminder_months) END), 200),
                v_key, p_at, p_by);
        PERFORM crm.relation_next_refresh(v_rel);
        PERFORM crm.tasks_to_outbox(ARRAY[v_id]);
        RETURN QUERY SELECT 'created'::text, d.vehicle_id, v_id;
    END LOOP;
END
$$;

-- crmd's timer (server/h_service.c), with no session: the reminders and
-- the value classes of every store at p_at. Returns what it did.
CREATE FUNCTION crm.service_daily(p_at timestamptz)
RETURNS TABLE (stores integer, tasks_created integer, classified integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    s record;
    v_tasks integer := 0;
    v_classified integer := 0;
    v_stores integer := 0;
    v integer;
BEGIN
    FOR s IN SELECT st.id FROM crm.stores st ORDER BY st.code LOOP
        v_stores := v_stores + 1;
        SELECT count(*) INTO v FROM crm.reminders_apply(s.id, p_at, NULL) x
         WHERE x.outcome = 'created';
        v_tasks := v_tasks + v;
        SELECT x.a + x.b + x.c INTO v FROM crm.value_classes_compute(s.id, p_at, NULL) x;
        v_classified := v_classified + v;
    END LOOP;
    RETURN QUERY SELECT v_stores, v_tasks, v_classified;
END
$$;

-- ------------------------------------------------------------ request functions

-- The store a request names: its code, or the caller's store when empty.
-- Store roles may name only their own store; group roles any (p_required:
-- a group role must name one). NULL: a group role named none.
CREATE FUNCTION crm.service_store(p_my_store uuid, p_store_code text, p_required boolean)
RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_id uuid;
BEGIN
    IF coalesce(p_store_code, '') = '' THEN
        IF p_my_store IS NULL AND p_required THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                MESSAGE = 'store_code is required for group roles';
        END IF;
        RETURN p_my_store;
    END IF;
    SELECT s.id INTO v_id FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
            MESSAGE = format('store_code: no store %s', p_store_code);
    END IF;
    IF p_my_store IS NOT NULL AND v_id <> p_my_store THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'you may only work on your own store''s service data';
    END IF;
    RETURN v_id;
END
$$;

-- STMT_VEHICLE_ADD: registers a vehicle (crm vehicle add). Sales and
-- service staff of a store and group admins; the selling store is the
-- caller's unless named (group admins must name it). -> existed, VEHICLE
-- columns.
CREATE FUNCTION crm.vehicle_add(p_session_id uuid, p_id text, p_customer_id text,
                                p_store_code text, p_vin text, p_model text, p_plate text,
                                p_purchased_on text, p_at_ms bigint)
RETURNS TABLE (existed boolean, veh crm.vehicle_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_store uuid;
    v_date date;
    v_existed boolean;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('consultant', 'sales_manager', 'service_advisor', 'store_manager',
                       'group_admin') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'your role cannot register vehicles';
    END IF;
    v_id := crm.check_uuid(p_id, 'id', true);
    PERFORM crm.check_uuid(p_customer_id, 'customer_id');
    IF coalesce(p_store_code, '') = '' THEN
        IF me.store_id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                MESSAGE = 'store_code (the selling store) is required for group roles';
        END IF;
        v_store := me.store_id;
    ELSE
        SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                MESSAGE = format('store_code: no store %s', p_store_code);
        END IF;
    END IF;
    IF coalesce(p_purchased_on, '') <> '' THEN
        IF p_purchased_on !~ '^\d{4}-\d{2}-\d{2}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'purchased_on',
                MESSAGE = 'purchased_on must be a date YYYY-MM-DD';
        END IF;
        BEGIN
            v_date := p_purchased_on::date;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'purchased_on',
                MESSAGE = format('purchased_on: %s is not a date', p_purchased_on);
        END;
    END IF;
    v_existed := crm.vehicle_exists(v_id);
    PERFORM crm.vehicle_register(v_id, p_customer_id::uuid, v_store, p_vin, p_model, p_plate,
                                 v_date, crm.from_ms(p_at_ms));
    RETURN QUERY SELECT v_existed, x FROM crm.vehicle_view x WHERE x.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'this vehicle id belongs to a vehicle you may not see';
    END IF;
END
$$;

-- STMT_VEHICLE_LIST: one vehicle by id or by VIN, or vehicles by plate or
-- of a customer, as the caller may see them (a vehicle follows its
-- customer's scope). By id or VIN: DC404 when there is none, DC403 when
-- its customer is out of the caller's scope. -> VEHICLE columns.
CREATE FUNCTION crm.vehicle_list(p_session_id uuid, p_id text, p_customer_id text,
                                 p_vin text, p_plate text, p_limit integer)
RETURNS SETOF crm.vehicle_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_id uuid;
    v_customer uuid;
    v_plate text := upper(regexp_replace(coalesce(p_plate, ''), '[\s\u3000·•-]', '', 'g'));
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF coalesce(p_id, '') <> '' THEN
        v_id := crm.check_uuid(p_id, 'id');
    ELSIF coalesce(p_vin, '') <> '' THEN
        v_id := crm.vehicle_by_vin(crm.vin_check(p_vin));
        IF v_id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'vin',
                MESSAGE = format('no vehicle with vin %s', upper(btrim(p_vin)));
        END IF;
    END IF;
    IF v_id IS NOT NULL THEN
        IF NOT crm.vehicle_exists(v_id) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id', MESSAGE = 'no such vehicle';
        END IF;
        RETURN QUERY SELECT x.* FROM crm.vehicle_view x WHERE x.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'this vehicle''s owner has no relation at your store';
        END IF;
        RETURN;
    END IF;
    IF coalesce(p_customer_id, '') <> '' THEN
        v_customer := crm.check_uuid(p_customer_id, 'customer_id');
    ELSIF v_plate = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'customer_id',
            MESSAGE = 'give a customer_id, vin, plate or id';
    END IF;
    RETURN QUERY
    SELECT x.* FROM crm.vehicle_view x
     WHERE (v_customer IS NULL OR x.customer_id = v_customer)
       AND (v_plate = '' OR x.plate = v_plate)
     ORDER BY x.created_at_ms, x.id
     LIMIT coalesce(nullif(p_limit, 0), 100);
END
$$;

-- STMT_VISIT_ADD: records a service visit at the caller's store (service
-- advisors, store managers). Idempotent on id. The mileage may not go
-- below an earlier visit's of the same car nor above a later one's.
-- -> existed, VISIT columns.
CREATE FUNCTION crm.visit_add(p_session_id uuid, p_id text, p_vehicle_id text, p_at_ms bigint,
                              p_mileage bigint, p_type text, p_amount bigint, p_note text,
                              p_write_at_ms bigint)
RETURNS TABLE (existed boolean, vis crm.visit_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_vehicle uuid;
    veh crm.vehicles;
    v_note text := btrim(coalesce(p_note, ''));
    v_at timestamptz;
    other record;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('service_advisor', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only service advisors and store managers record service visits';
    END IF;
    v_id := crm.check_uuid(p_id, 'id', true);
    v_vehicle := crm.check_uuid(p_vehicle_id, 'vehicle_id');
    IF EXISTS (SELECT 1 FROM crm.service_visits x WHERE x.id = v_id) THEN
        RETURN QUERY SELECT true, x FROM crm.visit_view x WHERE x.id = v_id;
        RETURN;
    END IF;
    IF p_at_ms IS NULL OR p_at_ms <= 0 OR p_write_at_ms IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'at (the visit time) is required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    IF p_mileage IS NULL OR p_mileage NOT BETWEEN 0 AND 2000000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'mileage',
            MESSAGE = 'mileage must be from 0 to 2,000,000 km';
    END IF;
    IF p_type IS NULL OR p_type NOT IN ('maintenance', 'repair', 'warranty', 'accident') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'type',
            MESSAGE = 'type must be maintenance, repair, warranty or accident';
    END IF;
    IF p_amount IS NULL OR p_amount NOT BETWEEN 0 AND 100000000000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'amount',
            MESSAGE = 'amount must be from 0 to 1,000,000,000 yuan, in fen';
    END IF;
    IF char_length(v_note) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'note',
            MESSAGE = 'note must be at most 500 characters';
    END IF;
    IF NOT crm.vehicle_exists(v_vehicle) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'vehicle_id',
            MESSAGE = 'no such vehicle';
    END IF;
    SELECT x.* INTO veh FROM crm.vehicles x WHERE x.id = v_vehicle;
    IF NOT FOUND OR crm.rls_customer(veh.customer_id) IS DISTINCT FROM 'write' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'this vehicle''s owner has no relation at your store';
    END IF;
    SELECT x.at, x.mileage INTO other FROM crm.service_visits x
     WHERE x.vehicle_id = v_vehicle AND x.at <= v_at AND x.mileage > p_mileage
     ORDER BY x.mileage DESC LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'mileage',
            MESSAGE = format('mileage %s km is below the %s km of an earlier visit (%s)',
                             p_mileage, other.mileage, to_char(other.at, 'YYYY-MM-DD'));
    END IF;
    SELECT x.at, x.mileage INTO other FROM crm.service_visits x
     WHERE x.vehicle_id = v_vehicle AND x.at >= v_at AND x.mileage < p_mileage
     ORDER BY x.mileage LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'mileage',
            MESSAGE = format('mileage %s km is above the %s km of a later visit (%s)',
                             p_mileage, other.mileage, to_char(other.at, 'YYYY-MM-DD'));
    END IF;
    INSERT INTO crm.service_visits (id, vehicle_id, customer_id, store_id, at, mileage, type,
                                    amount, note, by_user, created_at)
    VALUES (v_id, v_vehicle, veh.customer_id, me.store_id, v_at, p_mileage, p_type, p_amount,
            v_note, me.user_id, crm.from_ms(p_write_at_ms));
    PERFORM crm.outbox_append('service_visit', v_id, crm.visit_payload(v_id));
    RETURN QUERY SELECT false, x FROM crm.visit_view x WHERE x.id = v_id;
END
$$;

-- STMT_VISIT_LIST: visits of a vehicle, of a customer, or of a store
-- (store roles: their own), newest first. -> VISIT columns.
CREATE FUNCTION crm.visit_list(p_session_id uuid, p_vehicle_id text, p_customer_id text,
                               p_store_code text, p_limit integer)
RETURNS SETOF crm.visit_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_vehicle uuid;
    v_customer uuid;
    v_store uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF coalesce(p_vehicle_id, '') <> '' THEN
        v_vehicle := crm.check_uuid(p_vehicle_id, 'vehicle_id');
        IF NOT crm.vehicle_exists(v_vehicle) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'vehicle_id',
                MESSAGE = 'no such vehicle';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM crm.vehicles x WHERE x.id = v_vehicle) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'this vehicle''s owner has no relation at your store';
        END IF;
    ELSIF coalesce(p_customer_id, '') <> '' THEN
        v_customer := crm.check_uuid(p_customer_id, 'customer_id');
    ELSE
        v_store := crm.service_store(me.store_id, p_store_code, true);
    END IF;
    RETURN QUERY
    SELECT x.* FROM crm.visit_view x
      JOIN crm.service_visits sv ON sv.id = x.id
     WHERE (v_vehicle IS NULL OR sv.vehicle_id = v_vehicle)
       AND (v_customer IS NULL OR sv.customer_id = v_customer)
       AND (v_store IS NULL OR sv.store_id = v_store)
     ORDER BY sv.at DESC, sv.id DESC
     LIMIT coalesce(nullif(p_limit, 0), 50);
END
$$;

-- STMT_BASE_LIST: base customers at p_at_ms. Of one customer (at every
-- store the caller sees), else of a store (store roles: their own; group
-- roles: one store or all). The first row is kind 'counts' with only
-- n_archived, n_active, n_loyal, n_lost set (of the whole list, not only
-- the class asked), then kind 'customer' rows of the class asked ('' all),
-- latest visit first. -> kind, BASE columns: customer_id, customer_name,
-- store_code, visits, visits_12m, last_visit_at_ms, archived, active,
-- loyal, lost, returned_at_ms, value_class, spend, value_computed_at_ms;
-- then n_archived, n_active, n_loyal, n_lost.
CREATE FUNCTION crm.base_list(p_session_id uuid, p_class text, p_store_code text,
                              p_customer_id text, p_at_ms bigint, p_limit integer)
RETURNS TABLE (kind text, customer_id uuid, customer_name text, store_code text,
               visits integer, visits_12m integer, last_visit_at_ms bigint, archived boolean,
               active boolean, loyal boolean, lost boolean, returned_at_ms bigint,
               value_class text, spend bigint, value_computed_at_ms bigint,
               n_archived integer, n_active integer, n_loyal integer, n_lost integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_store uuid;
    v_customer uuid;
    v_at timestamptz;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF coalesce(p_class, '') NOT IN ('', 'archived', 'active', 'loyal', 'lost') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'class',
            MESSAGE = 'class must be archived, active, loyal or lost';
    END IF;
    IF coalesce(p_at_ms, 0) <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'at must be a time in unix milliseconds';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    IF coalesce(p_customer_id, '') <> '' THEN
        v_customer := crm.check_uuid(p_customer_id, 'customer_id');
    ELSE
        v_store := crm.service_store(me.store_id, p_store_code, false);
    END IF;
    -- One pass over the visits for the counts and the rows.
    RETURN QUERY
    WITH b AS MATERIALIZED (SELECT * FROM crm.base_rows(v_store, v_customer, v_at))
    SELECT 'counts'::text, NULL::uuid, NULL::text, NULL::text, NULL::integer, NULL::integer,
           NULL::bigint, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean,
           NULL::bigint, NULL::text, NULL::bigint, NULL::bigint,
           count(*) FILTER (WHERE b.archived)::integer, count(*) FILTER (WHERE b.active)::integer,
           count(*) FILTER (WHERE b.loyal)::integer, count(*) FILTER (WHERE b.lost)::integer
      FROM b
    UNION ALL
    (SELECT 'customer'::text, b.customer_id, c.name, s.code, b.visits, b.visits_12m,
            crm.ms(b.last_visit_at), b.archived, b.active, b.loyal, b.lost,
            coalesce((SELECT crm.ms(max(e.at)) FROM crm.base_events e
                       WHERE e.customer_id = b.customer_id AND e.store_id = b.store_id
                         AND e.at <= v_at), 0),
            coalesce(vc.class::text, ''), coalesce(vc.spend, 0),
            coalesce(crm.ms(vc.computed_at), 0), NULL::integer, NULL::integer, NULL::integer,
            NULL::integer
       FROM b
       JOIN crm.customers c ON c.id = b.customer_id
       JOIN crm.stores s ON s.id = b.store_id
       LEFT JOIN crm.value_classes vc ON vc.customer_id = b.customer_id
                                     AND vc.store_id = b.store_id
      WHERE coalesce(p_class, '') = ''
         OR (p_class = 'archived' AND b.archived) OR (p_class = 'active' AND b.active)
         OR (p_class = 'loyal' AND b.loyal) OR (p_class = 'lost' AND b.lost)
      ORDER BY b.last_visit_at DESC, b.customer_id
      LIMIT coalesce(nullif(p_limit, 0), 200));
END
$$;

-- STMT_REMINDERS_RUN: creates the maintenance reminders due at p_at_ms
-- (crm service reminders run): service advisors and store managers for
-- their store, group admins for one store or every store. -> outcome
-- ('created', 'open', 'no_relation'), vehicle_id, then all columns of
-- crm.task_view (NULL unless created).
CREATE FUNCTION crm.reminders_run(p_session_id uuid, p_store_code text, p_at_ms bigint)
RETURNS TABLE (outcome text, vehicle_id uuid, task crm.task_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_store uuid;
    v_at timestamptz;
    s record;
    r record;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('service_advisor', 'store_manager', 'group_admin') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only service advisors, store managers and group admins run reminders';
    END IF;
    IF coalesce(p_at_ms, 0) <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'at must be a time in unix milliseconds';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    v_store := crm.service_store(me.store_id, p_store_code, false);
    FOR s IN SELECT st.id FROM crm.stores st
              WHERE v_store IS NULL OR st.id = v_store ORDER BY st.code LOOP
        -- The tasks are read by statements of their own: a query does not
        -- see what a function it calls inserts.
        FOR r IN SELECT * FROM crm.reminders_apply(s.id, v_at, me.user_id) LOOP
            RETURN QUERY
            SELECT r.outcome, r.vehicle_id, t
              FROM (SELECT 1) one LEFT JOIN crm.task_view t ON t.id = r.task_id;
        END LOOP;
    END LOOP;
END
$$;

-- STMT_VALUE_RECOMPUTE: recomputes the value classes at p_at_ms (crm
-- value recompute): store and sales managers for their store, group admins
-- for one store or every store. Audited. -> store_code, a, b, c,
-- computed_at_ms per store.
CREATE FUNCTION crm.value_recompute(p_session_id uuid, p_store_code text, p_at_ms bigint)
RETURNS TABLE (store_code text, a integer, b integer, c integer, computed_at_ms bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_store uuid;
    v_at timestamptz;
    s record;
    n record;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('sales_manager', 'store_manager', 'group_admin') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only managers and group admins recompute value classes';
    END IF;
    IF coalesce(p_at_ms, 0) <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'at',
            MESSAGE = 'at must be a time in unix milliseconds';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    v_store := crm.service_store(me.store_id, p_store_code, false);
    FOR s IN SELECT st.id, st.code FROM crm.stores st
              WHERE v_store IS NULL OR st.id = v_store ORDER BY st.code LOOP
        SELECT * INTO n FROM crm.value_classes_compute(s.id, v_at, me.user_id);
        PERFORM crm.audit_append('value.recompute', p_entity => 'store', p_entity_id => s.code,
            p_details => jsonb_build_object('at_ms', p_at_ms, 'a', n.a, 'b', n.b, 'c', n.c));
        RETURN QUERY SELECT s.code, n.a, n.b, n.c, p_at_ms;
    END LOOP;
END
$$;

-- STMT_SERVICE_POLICY_GET: every brand's after-sales policy ('' the group
-- default first). -> SERVICE_POLICY columns: brand, lost_after_months,
-- loyal_visits, reminder_months, reminder_km, reminder_lead_days,
-- value_a_pct, value_b_pct, updated_at_ms, updated_by.
CREATE FUNCTION crm.service_policy_get(p_session_id uuid)
RETURNS TABLE (brand text, lost_after_months integer, loyal_visits integer,
               reminder_months integer, reminder_km integer, reminder_lead_days integer,
               value_a_pct double precision, value_b_pct double precision,
               updated_at_ms bigint, updated_by text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM crm.session_begin(p_session_id);
    RETURN QUERY
    SELECT p.brand, p.lost_after_months, p.loyal_visits, p.reminder_months, p.reminder_km,
           p.reminder_lead_days, p.value_a_pct::double precision,
           p.value_b_pct::double precision, crm.ms(p.updated_at), coalesce(u.username, '')
      FROM crm.service_policy p
      LEFT JOIN crm.users u ON u.id = p.updated_by
     ORDER BY p.brand;
END
$$;

-- STMT_SERVICE_POLICY_SET: a group admin sets a brand's policy (insert or
-- replace; brand '' the group default), or removes a brand's row so that
-- the default applies (p_remove; the default stays). Audited. ->
-- SERVICE_POLICY rows, as crm.service_policy_get.
CREATE FUNCTION crm.service_policy_set(p_session_id uuid, p_brand text, p_remove boolean,
                                       p_lost_after_months integer, p_loyal_visits integer,
                                       p_reminder_months integer, p_reminder_km integer,
                                       p_reminder_lead_days integer,
                                       p_value_a_pct double precision,
                                       p_value_b_pct double precision)
RETURNS TABLE (brand text, lost_after_months integer, loyal_visits integer,
               reminder_months integer, reminder_km integer, reminder_lead_days integer,
               value_a_pct double precision, value_b_pct double precision,
               updated_at_ms bigint, updated_by text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_brand text := btrim(coalesce(p_brand, ''));
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role <> 'group_admin' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only a group admin changes the after-sales policy';
    END IF;
    IF char_length(v_brand) > 50 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'brand',
            MESSAGE = 'brand must be at most 50 characters';
    END IF;
    IF coalesce(p_remove, false) THEN
        IF v_brand = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'brand',
                MESSAGE = 'the group default cannot be removed; set it instead';
        END IF;
        DELETE FROM crm.service_policy x WHERE x.brand = v_brand;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'brand',
                MESSAGE = format('brand %s has no policy of its own', v_brand);
        END IF;
    ELSE
        IF p_lost_after_months IS NULL OR p_lost_after_months NOT BETWEEN 1 AND 60 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'lost_after_months',
                MESSAGE = 'lost_after_months must be from 1 to 60';
        END IF;
        IF p_loyal_visits IS NULL OR p_loyal_visits NOT BETWEEN 1 AND 100 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'loyal_visits',
                MESSAGE = 'loyal_visits must be from 1 to 100';
        END IF;
        IF p_reminder_months IS NULL OR p_reminder_months NOT BETWEEN 1 AND 60 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reminder_months',
                MESSAGE = 'reminder_months must be from 1 to 60';
        END IF;
        IF p_reminder_km IS NULL OR p_reminder_km NOT BETWEEN 500 AND 100000 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reminder_km',
                MESSAGE = 'reminder_km must be from 500 to 100000';
        END IF;
        IF p_reminder_lead_days IS NULL OR p_reminder_lead_days NOT BETWEEN 0 AND 90 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'reminder_lead_days',
                MESSAGE = 'reminder_lead_days must be from 0 to 90';
        END IF;
        IF p_value_a_pct IS NULL OR NOT (p_value_a_pct > 0 AND p_value_a_pct <= 100) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'value_a_pct',
                MESSAGE = 'value_a_pct must be above 0 and at most 100';
        END IF;
        IF p_value_b_pct IS NULL OR p_value_b_pct < 0 OR p_value_a_pct + p_value_b_pct > 100 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'value_b_pct',
                MESSAGE = 'value_b_pct must be 0 or more, and value_a_pct + value_b_pct at most 100';
        END IF;
        INSERT INTO crm.service_policy AS x (brand, lost_after_months, loyal_visits,
                                             reminder_months, reminder_km, reminder_lead_days,
                                             value_a_pct, value_b_pct, updated_at, updated_by)
        VALUES (v_brand, p_lost_after_months, p_loyal_visits, p_reminder_months, p_reminder_km,
                p_reminder_lead_days, round(p_value_a_pct::numeric, 2),
                round(p_value_b_pct::numeric, 2), now(), me.user_id)
        ON CONFLICT ON CONSTRAINT service_policy_pkey DO UPDATE
           SET lost_after_months = EXCLUDED.lost_after_months,
               loyal_visits = EXCLUDED.loyal_visits, reminder_months = EXCLUDED.reminder_months,
               reminder_km = EXCLUDED.reminder_km,
               reminder_lead_days = EXCLUDED.reminder_lead_days,
               value_a_pct = EXCLUDED.value_a_pct, value_b_pct = EXCLUDED.value_b_pct,
               updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by;
    END IF;
    PERFORM crm.audit_append('policy.service', p_entity => 'service_policy',
        p_entity_id => v_brand,
        p_details => jsonb_build_object('remove', coalesce(p_remove, false),
                                        'lost_after_months', p_lost_after_months,
                                        'loyal_visits', p_loyal_visits,
                                        'reminder_months', p_reminder_months,
                                        'reminder_km', p_reminder_km,
                                        'reminder_lead_days', p_reminder_lead_days,
                                        'value_a_pct', p_value_a_pct,
                                        'value_b_pct', p_value_b_pct));
    RETURN QUERY SELECT * FROM crm.service_policy_get(p_session_id);
END
$$;

-- ------------------------------------------------------------ row-level security

-- A vehicle, a visit, a return event or a value class is visible when its
-- customer is (sql/0012's rule). Vehicles are written by whoever may write
-- the customer; visits only by the store that serviced the car. Events
-- and value classes are written by the definer functions above alone.
ALTER TABLE crm.vehicles ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.vehicles FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.service_visits ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.service_visits FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.base_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.base_events FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.value_classes ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.value_classes FORCE ROW LEVEL SECURITY;

CREATE POLICY vehicles_read ON crm.vehicles FOR SELECT
    USING (crm.rls_customer(customer_id) IS NOT NULL);
CREATE POLICY vehicles_insert ON crm.vehicles FOR INSERT
    WITH CHECK (crm.rls_customer(customer_id) = 'write');
CREATE POLICY vehicles_update ON crm.vehicles FOR UPDATE
    USING (crm.rls_customer(customer_id) = 'write')
    WITH CHECK (crm.rls_customer(customer_id) = 'write');

CREATE POLICY service_visits_read ON crm.service_visits FOR SELECT
    USING (crm.rls_customer(customer_id) IS NOT NULL);
CREATE POLICY service_visits_insert ON crm.service_visits FOR INSERT
    WITH CHECK (store_id = crm.rls_store() AND crm.rls_customer(customer_id) = 'write');

CREATE POLICY base_events_read ON crm.base_events FOR SELECT
    USING (crm.rls_customer(customer_id) IS NOT NULL);
CREATE POLICY value_classes_read ON crm.value_classes FOR SELECT
    USING (crm.rls_customer(customer_id) IS NOT NULL);

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.vehicles, crm.service_visits, crm.base_events, crm.value_classes,
    crm.service_policy, crm.vehicle_view, crm.visit_view FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.vin_check(text), crm.vehicle_by_vin(text), crm.vehicle_exists(uuid),
    crm.vehicle_payload(uuid),
    crm.vehicle_register(uuid, uuid, uuid, text, text, text, date, timestamptz),
    crm.service_policy_of(text), crm.visit_payload(uuid), crm.visit_returned(),
    crm.erase_service(),
    crm.base_rows(uuid, uuid, timestamptz),
    crm.value_classes_compute(uuid, timestamptz, uuid),
    crm.reminders_apply(uuid, timestamptz, uuid), crm.service_daily(timestamptz),
    crm.service_store(uuid, text, boolean),
    crm.vehicle_add(uuid, text, text, text, text, text, text, text, bigint),
    crm.vehicle_list(uuid, text, text, text, text, integer),
    crm.visit_add(uuid, text, text, bigint, bigint, text, bigint, text, bigint),
    crm.visit_list(uuid, text, text, text, integer),
    crm.base_list(uuid, text, text, text, bigint, integer),
    crm.reminders_run(uuid, text, bigint), crm.value_recompute(uuid, text, bigint),
    crm.service_policy_get(uuid),
    crm.service_policy_set(uuid, text, boolean, integer, integer, integer, integer, integer,
                           double precision, double precision)
    FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.vin_check(text), crm.vehicle_by_vin(text),'
                   ' crm.vehicle_exists(uuid), crm.vehicle_payload(uuid),'
                   ' crm.vehicle_register(uuid, uuid, uuid, text, text, text, date, timestamptz),'
                   ' crm.service_policy_of(text), crm.visit_payload(uuid),'
                   ' crm.base_rows(uuid, uuid, timestamptz),'
                   ' crm.value_classes_compute(uuid, timestamptz, uuid),'
                   ' crm.reminders_apply(uuid, timestamptz, uuid), crm.service_daily(timestamptz),'
                   ' crm.service_store(uuid, text, boolean),'
                   ' crm.vehicle_add(uuid, text, text, text, text, text, text, text, bigint),'
                   ' crm.vehicle_list(uuid, text, text, text, text, integer),'
                   ' crm.visit_add(uuid, text, text, bigint, bigint, text, bigint, text, bigint),'
                   ' crm.visit_list(uuid, text, text, text, integer),'
                   ' crm.base_list(uuid, text, text, text, bigint, integer),'
                   ' crm.reminders_run(uuid, text, bigint), crm.value_recompute(uuid, text, bigint),'
                   ' crm.service_policy_get(uuid),'
                   ' crm.service_policy_set(uuid, text, boolean, integer, integer, integer,'
                   '   integer, integer, double precision, double precision)'
                   ' TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.vehicles TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON crm.service_visits TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON crm.service_policy TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.base_events, crm.value_classes,'
                   ' crm.vehicle_view, crm.visit_view TO %I', app);
END
$$;
