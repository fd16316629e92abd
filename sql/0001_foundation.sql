-- 0001_foundation: the group and its stores, users and sessions, customers,
-- and the outbox that carries every write to the other side of sync.
--
-- Applied by `crmctl migrate` as the admin, in one transaction together with
-- its crm.schema_migrations row, with the setting crm.app_user naming the
-- role crmd connects as (that role owns nothing and gets only the grants at
-- the end of this file). Never edit this file once landed: add 0002_... .
--
-- Conventions for every function here:
--   * crmd calls exactly one function per statement (server/stmts.h), so one
--     call is one transaction.
--   * Errors for people use SQLSTATE class DC (DC400 invalid argument with
--     COLUMN naming the field, DC401 unauthenticated, DC403 permission
--     denied, DC404 not found, DC409 conflict, DC410 already exists).
--   * Timestamps leave as unix milliseconds (crm.ms), roles as text.
--   * Functions that read password hashes or sessions are SECURITY DEFINER
--     with a fixed search_path; everything that touches customer data runs as
--     the caller (SECURITY INVOKER) so row-level security can be added later
--     on the scope that crm.session_begin sets: crm.user_id, crm.role,
--     crm.store_id (empty for group roles).

CREATE SCHEMA IF NOT EXISTS crm;
REVOKE ALL ON SCHEMA crm FROM PUBLIC;

CREATE FUNCTION crm.ms(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT floor(extract(epoch FROM t) * 1000)::bigint $$;

-- ------------------------------------------------------------ organisation

CREATE TABLE crm.groups (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One database serves one dealer group.
CREATE UNIQUE INDEX groups_one_row ON crm.groups ((true));

CREATE TABLE crm.stores (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{1,15}$'),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    city text NOT NULL CHECK (char_length(city) BETWEEN 1 AND 50),
    brand text NOT NULL CHECK (char_length(brand) BETWEEN 1 AND 50),
    group_id uuid NOT NULL REFERENCES crm.groups (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------------ people

-- Store roles work at one store (store_id required); group roles see the
-- whole group (store_id empty). store_node is the machine identity of a
-- store's crmd.
CREATE TABLE crm.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    role text NOT NULL CHECK (role IN ('consultant', 'sales_manager', 'service_advisor',
                                       'call_center', 'store_manager', 'group_analyst',
                                       'group_admin', 'store_node')),
    store_id uuid REFERENCES crm.stores (id),
    -- libsodium crypto_pwhash_str (Argon2id); never leaves the definer functions
    -- except through login_lookup.
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_store_matches_role
        CHECK ((role IN ('group_analyst', 'group_admin')) = (store_id IS NULL))
);
CREATE INDEX users_store ON crm.users (store_id);

-- Only the SHA-256 of a session token is stored; the token itself is known
-- to the client alone.
CREATE TABLE crm.sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES crm.users (id),
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    source_addr text
);
CREATE INDEX sessions_user ON crm.sessions (user_id);

-- Failed logins, for throttling and lockout. username is whatever was typed.
CREATE TABLE crm.login_failures (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    source_addr text,
    reason text NOT NULL
);
CREATE INDEX login_failures_username_at ON crm.login_failures (username, at);

-- ------------------------------------------------------------ customers

-- One person, group-wide. The phone is canonical (+86...) and unique across
-- the group: the same phone at two stores is the same customer.
CREATE TABLE crm.customers (
    id uuid PRIMARY KEY,                       -- UUIDv7 chosen by the client
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    phone text NOT NULL UNIQUE CHECK (phone ~ '^\+86[0-9]{6,12}$'),
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid REFERENCES crm.users (id), -- empty when it came by sync
    store_id uuid REFERENCES crm.stores (id)   -- store of the creating user
);
CREATE INDEX customers_store ON crm.customers (store_id);

-- The CUSTOMER columns of server/stmts.h, in order.
CREATE VIEW crm.customer_rows WITH (security_invoker = true) AS
SELECT c.id, c.name, c.phone, c.version,
       crm.ms(c.created_at) AS created_at_ms, crm.ms(c.updated_at) AS updated_at_ms,
       u.username AS created_by, s.code AS store_code
  FROM crm.customers c
  LEFT JOIN crm.users u ON u.id = c.created_by
  LEFT JOIN crm.stores s ON s.id = c.store_id;

-- ------------------------------------------------------------ outbox

-- Every write appends one change here in its own transaction. seq is gapless
-- and in commit order because it comes from the one-row counter below, whose
-- row lock is held until commit: a reader that has seen seq N has seen every
-- change up to N. A bare sequence would commit out of order and a reader
-- asking for "seq > last" would silently skip rows.
CREATE TABLE crm.outbox (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    entity text NOT NULL,
    entity_id uuid NOT NULL,
    payload bytea NOT NULL,                    -- protobuf, see proto/
    schema_version integer NOT NULL,
    hlc bigint NOT NULL,                       -- unix ms << 16 | logical counter
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crm.outbox_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq bigint NOT NULL,
    hlc bigint NOT NULL
);
INSERT INTO crm.outbox_counter (singleton, seq, hlc) VALUES (true, 0, 0);

-- The only way a row enters the outbox. It locks the counter row until the
-- caller commits, so every write function calls it last, just before it
-- returns. Definer: crmd may not write the outbox or the counter directly.
CREATE FUNCTION crm.outbox_append(p_entity text, p_entity_id uuid, p_payload bytea,
                                  p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_seq bigint;
    v_hlc bigint;
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
    RETURN v_seq;
END
$$;

-- ------------------------------------------------------------ sessions

-- Checks that the session is live and sets the caller's scope for this
-- transaction. Every authenticated function starts with it. Raises DC401
-- when the session is unknown, expired or revoked, or its user disabled.
CREATE FUNCTION crm.session_begin(p_session_id uuid)
RETURNS TABLE (user_id uuid, username text, display_name text, role text,
               store_id uuid, store_code text, store_name text, expires_at_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT u.id AS uid, u.username AS uname, u.display_name AS dname, u.role AS urole,
           u.store_id AS sid, st.code AS scode, st.name AS sname,
           crm.ms(s.expires_at) AS exp
      INTO r
      FROM crm.sessions s
      JOIN crm.users u ON u.id = s.user_id
      LEFT JOIN crm.stores st ON st.id = u.store_id
     WHERE s.id = p_session_id
       AND s.revoked_at IS NULL
       AND s.expires_at > now()
       AND NOT u.disabled;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC401',
            MESSAGE = 'session expired or signed out; log in again';
    END IF;
    PERFORM set_config('crm.session_id', p_session_id::text, true),
            set_config('crm.user_id', r.uid::text, true),
            set_config('crm.role', r.urole, true),
            set_config('crm.store_id', coalesce(r.sid::text, ''), true);
    RETURN QUERY SELECT r.uid, r.uname, r.dname, r.urole, r.sid, r.scode, r.sname, r.exp;
END
$$;

-- STMT_LOGIN_LOOKUP. No row: unknown user. Usernames are lower case.
CREATE FUNCTION crm.login_lookup(p_username text)
RETURNS TABLE (user_id uuid, username text, display_name text, role text,
               store_code text, store_name text, password_hash text, disabled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    SELECT u.id, u.username, u.display_name, u.role, s.code, s.name,
           u.password_hash, u.disabled
      FROM crm.users u
      LEFT JOIN crm.stores s ON s.id = u.store_id
     WHERE u.username = lower(btrim(p_username))
$$;

-- STMT_SESSION_OPEN, after crmd verified the password off the loop.
CREATE FUNCTION crm.session_open(p_user_id uuid, p_token_hash_hex text,
                                 p_ttl_s integer, p_source_addr text)
RETURNS TABLE (session_id uuid, expires_at_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_id uuid;
    v_expires timestamptz;
BEGIN
    IF p_token_hash_hex IS NULL OR p_token_hash_hex !~ '^[0-9a-fA-F]{64}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'token_hash',
            MESSAGE = 'token hash must be 64 hexadecimal digits';
    END IF;
    IF p_ttl_s IS NULL OR p_ttl_s < 60 OR p_ttl_s > 31 * 86400 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'ttl',
            MESSAGE = 'session lifetime must be from 60 seconds to 31 days';
    END IF;
    PERFORM 1 FROM crm.users u WHERE u.id = p_user_id AND NOT u.disabled;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC401', MESSAGE = 'user unknown or disabled';
    END IF;
    INSERT INTO crm.sessions (user_id, token_hash, expires_at, source_addr)
    VALUES (p_user_id, decode(p_token_hash_hex, 'hex'),
            now() + make_interval(secs => p_ttl_s), left(p_source_addr, 200))
    RETURNING id, expires_at INTO v_id, v_expires;
    RETURN QUERY SELECT v_id, crm.ms(v_expires);
END
$$;

-- STMT_LOGIN_FAILED. Input is whatever a client sent: stored truncated.
CREATE FUNCTION crm.login_failed(p_username text, p_source_addr text, p_reason text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    INSERT INTO crm.login_failures (username, source_addr, reason)
    VALUES (left(coalesce(p_username, ''), 200), left(p_source_addr, 200),
            left(coalesce(p_reason, ''), 200))
$$;

-- STMT_SESSION_RESUME: a client presents its token again (new connection).
CREATE FUNCTION crm.session_resume(p_token_hash_hex text)
RETURNS TABLE (session_id uuid, expires_at_ms bigint, user_id uuid, username text,
               display_name text, role text, store_code text, store_name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF p_token_hash_hex IS NOT NULL AND p_token_hash_hex ~ '^[0-9a-fA-F]{64}$' THEN
        RETURN QUERY
        SELECT s.id, crm.ms(s.expires_at), u.id, u.username, u.display_name, u.role,
               st.code, st.name
          FROM crm.sessions s
          JOIN crm.users u ON u.id = s.user_id
          LEFT JOIN crm.stores st ON st.id = u.store_id
         WHERE s.token_hash = decode(p_token_hash_hex, 'hex')
           AND s.revoked_at IS NULL
           AND s.expires_at > now()
           AND NOT u.disabled;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'DC401',
        MESSAGE = 'session expired or signed out; log in again';
END
$$;

-- STMT_SESSION_CLOSE: sign out. Closing a closed session is not an error.
CREATE FUNCTION crm.session_close(p_session_id uuid)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    UPDATE crm.sessions SET revoked_at = now()
     WHERE id = p_session_id AND revoked_at IS NULL
$$;

-- STMT_SESSION_WHOAMI.
CREATE FUNCTION crm.session_whoami(p_session_id uuid)
RETURNS TABLE (expires_at_ms bigint, user_id uuid, username text, display_name text,
               role text, store_code text, store_name text)
LANGUAGE sql VOLATILE
AS $$
    SELECT b.expires_at_ms, b.user_id, b.username, b.display_name, b.role,
           b.store_code, b.store_name
      FROM crm.session_begin(p_session_id) b
$$;

-- ------------------------------------------------------------ customer calls

-- STMT_CUSTOMER_CREATE. Idempotent: the same id again, or a phone that
-- already has a customer, returns that customer with existed = true and
-- writes nothing. Two concurrent creates of one phone: the loser's insert
-- waits for the winner, does nothing, and returns the winner's row.
CREATE FUNCTION crm.customer_create(p_session_id uuid, p_id text, p_name text,
                                    p_phone text, p_payload bytea)
RETURNS TABLE (id uuid, name text, phone text, version bigint, created_at_ms bigint,
               updated_at_ms bigint, created_by text, store_code text, existed boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_name text := btrim(p_name, E' \t\r\n\u3000');
    v_found uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role IN ('group_analyst', 'store_node') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'your role cannot create customers';
    END IF;
    IF p_id IS NULL OR p_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'id',
            MESSAGE = 'id must be a UUID version 7';
    END IF;
    v_id := p_id::uuid;
    IF v_name IS NULL OR v_name = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'name',
            MESSAGE = 'name is required';
    END IF;
    IF char_length(v_name) > 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'name',
            MESSAGE = 'name must be at most 100 characters';
    END IF;
    IF p_phone IS NULL OR p_phone !~ '^\+86[0-9]{6,12}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'phone',
            MESSAGE = 'phone must be a China number in the form +8613812345678';
    END IF;
    IF p_payload IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'payload',
            MESSAGE = 'outbox payload is required';
    END IF;

    -- A retried create (same id) wins over a phone match.
    SELECT c.id INTO v_found FROM crm.customers c
     WHERE c.id = v_id OR c.phone = p_phone
     ORDER BY c.id = v_id DESC LIMIT 1;
    IF NOT FOUND THEN
        INSERT INTO crm.customers (id, name, phone, created_by, store_id)
        VALUES (v_id, v_name, p_phone, me.user_id, me.store_id)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            PERFORM crm.outbox_append('customer', v_id, p_payload);
            RETURN QUERY SELECT v.*, false FROM crm.customer_rows v WHERE v.id = v_id;
            RETURN;
        END IF;
        -- Lost the race to a concurrent create that has committed by now.
        SELECT c.id INTO v_found FROM crm.customers c
         WHERE c.id = v_id OR c.phone = p_phone
         ORDER BY c.id = v_id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC409',
                MESSAGE = 'customer changed while being created; retry';
        END IF;
    END IF;
    RETURN QUERY SELECT v.*, true FROM crm.customer_rows v WHERE v.id = v_found;
END
$$;

-- STMT_CUSTOMER_GET. Customers are group-wide identities; per-store scope
-- arrives with row-level security on crm.customers.
CREATE FUNCTION crm.customer_get(p_session_id uuid, p_id text)
RETURNS TABLE (id uuid, name text, phone text, version bigint, created_at_ms bigint,
               updated_at_ms bigint, created_by text, store_code text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM crm.session_begin(p_session_id);
    IF p_id IS NULL OR p_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'id', MESSAGE = 'id must be a UUID';
    END IF;
    RETURN QUERY SELECT v.* FROM crm.customer_rows v WHERE v.id = p_id::uuid;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', MESSAGE = 'no such customer';
    END IF;
END
$$;

-- STMT_CUSTOMER_LIST: keyset pages ordered by id (UUIDv7 ids sort by time).
CREATE FUNCTION crm.customer_list(p_session_id uuid, p_after_id text, p_count integer)
RETURNS TABLE (id uuid, name text, phone text, version bigint, created_at_ms bigint,
               updated_at_ms bigint, created_by text, store_code text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_after uuid;
BEGIN
    PERFORM crm.session_begin(p_session_id);
    IF p_after_id IS NOT NULL AND p_after_id <> '' THEN
        IF p_after_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'after_id',
                MESSAGE = 'after_id must be a UUID';
        END IF;
        v_after := p_after_id::uuid;
    END IF;
    IF p_count IS NULL OR p_count < 1 OR p_count > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'page_size',
            MESSAGE = 'page size must be from 1 to 1000';
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.customer_rows v
     WHERE v_after IS NULL OR v.id > v_after
     ORDER BY v.id
     LIMIT p_count;
END
$$;

-- ------------------------------------------------------------ grants

-- Nothing here is for PUBLIC; crmd gets exactly what its calls need. The
-- password hash column is readable only through the definer functions.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA crm FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA crm TO %I', app);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.groups, crm.stores, crm.customer_rows TO %I', app);
    EXECUTE format('GRANT SELECT (id, username, display_name, role, store_id, disabled, created_at)'
                   ' ON crm.users TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.customers TO %I', app);
END
$$;
