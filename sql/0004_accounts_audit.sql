-- 0004_accounts_audit: the append-only audit log and its writer, login
-- throttling and account lockout, idle session expiry and last use, session
-- and account administration for crmctl, and the client certificates of
-- store nodes (issued and revoked).
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds). Nothing here
-- depends on objects of 0002 or 0003 except crm.group_policy, which this
-- file creates itself when it is missing.
--
-- Who may do what:
--   * crmd's role (crm.app_user) gets EXECUTE on the functions marked
--     "crmd" below and no privilege at all on crm.audit_log: it appends only
--     through crm.audit_append (SECURITY DEFINER) and reads only through
--     crm.audit_list, which checks the caller's role and store.
--   * The functions marked "crmctl" run as the admin (crmctl); they are not
--     granted to crmd.
--   * A trigger refuses UPDATE, DELETE and TRUNCATE of crm.audit_log even for
--     its owner. The one way to delete is crm.audit_purge (crmctl), which
--     removes entries older than its minimum retention and logs that it did.

-- ------------------------------------------------------------ policy

CREATE TABLE IF NOT EXISTS crm.group_policy (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO crm.group_policy (singleton) VALUES (true) ON CONFLICT DO NOTHING;

-- Lockout: max_failed_logins wrong passwords for one account within
-- failed_login_window_s lock it for lockout_s (or until an admin unlocks it).
-- Throttling: addr_max_failures failed logins of any accounts from one source
-- address within addr_window_s make further logins from that address wait
-- (RESOURCE_EXHAUSTED with the seconds to wait); no address is ever blocked
-- for longer than the window, so a store behind one NAT address is slowed,
-- not locked out. A session unused for session_idle_s ends.
ALTER TABLE crm.group_policy
    ADD COLUMN max_failed_logins integer NOT NULL DEFAULT 5
        CHECK (max_failed_logins BETWEEN 1 AND 100),
    ADD COLUMN failed_login_window_s integer NOT NULL DEFAULT 900
        CHECK (failed_login_window_s BETWEEN 10 AND 86400),
    ADD COLUMN lockout_s integer NOT NULL DEFAULT 900
        CHECK (lockout_s BETWEEN 10 AND 7 * 86400),
    ADD COLUMN addr_max_failures integer NOT NULL DEFAULT 20
        CHECK (addr_max_failures BETWEEN 1 AND 100000),
    ADD COLUMN addr_window_s integer NOT NULL DEFAULT 300
        CHECK (addr_window_s BETWEEN 1 AND 86400),
    ADD COLUMN session_idle_s integer NOT NULL DEFAULT 1800
        CHECK (session_idle_s BETWEEN 2 AND 7 * 86400);

-- ------------------------------------------------------------ accounts

-- locked_until: refused until then. lock_reset_at: wrong passwords before it
-- no longer count towards a lockout (set by a login, a lock, an unlock).
ALTER TABLE crm.users
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN lock_reset_at timestamptz,
    ADD COLUMN password_changed_at timestamptz;

-- last_seen_at: last authenticated call, kept to within a minute (written
-- only when older than that, so reads stay cheap). cert_serial: the client
-- certificate a store node's session was opened with.
ALTER TABLE crm.sessions
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN revoked_by text,
    ADD COLUMN cert_serial text;
CREATE INDEX sessions_live ON crm.sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_cert ON crm.sessions (cert_serial) WHERE cert_serial IS NOT NULL;
CREATE INDEX login_failures_addr_at ON crm.login_failures (source_addr, at);

-- ------------------------------------------------------------ audit log

-- One row per thing that happened. actor_*: who did it (NULL actor_id for
-- unknown users and for crmctl, whose actor_username says "crmctl ...").
-- store_id: the store the entry belongs to, which scopes what a store
-- manager may read. No foreign keys: entries outlive what they name.
CREATE TABLE crm.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    action text NOT NULL CHECK (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
    outcome text NOT NULL CHECK (outcome IN ('ok', 'failed', 'denied')),
    actor_id uuid,
    actor_username text CHECK (char_length(actor_username) <= 200),
    actor_role text,
    store_id uuid,
    session_id uuid,
    source_addr text CHECK (char_length(source_addr) <= 200),
    subject text CHECK (char_length(subject) <= 200),
    entity text CHECK (char_length(entity) <= 64),
    entity_id text CHECK (char_length(entity_id) <= 200),
    customer_id uuid,
    before_version bigint,
    after_version bigint,
    reason text CHECK (char_length(reason) <= 500),
    details jsonb
);
CREATE INDEX audit_log_at ON crm.audit_log (at);
CREATE INDEX audit_log_actor ON crm.audit_log (actor_username, id);
CREATE INDEX audit_log_subject ON crm.audit_log (subject, id) WHERE subject IS NOT NULL;
CREATE INDEX audit_log_customer ON crm.audit_log (customer_id, id) WHERE customer_id IS NOT NULL;
CREATE INDEX audit_log_store ON crm.audit_log (store_id, id);
CREATE INDEX audit_log_action ON crm.audit_log (action text_pattern_ops, id);

-- Refuses every UPDATE, DELETE and TRUNCATE, the owner's too, except the
-- DELETE that crm.audit_purge runs with crm.audit_retention set for its
-- transaction.
CREATE FUNCTION crm.audit_log_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = crm, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('crm.audit_retention', true) = 'purge' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'DC403',
        MESSAGE = format('the audit log is append-only: %s is refused'
                         ' (old entries go only through crm.audit_purge)', TG_OP);
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON crm.audit_log
    FOR EACH ROW EXECUTE FUNCTION crm.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON crm.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm.audit_log_guard();

-- crm.audit_append: the one way into the audit log (crmd, and every SQL
-- function that audits what it does). Call it in the same transaction as
-- the action it records, so both commit or neither does; it returns the
-- entry's id. Use named arguments; all but p_action are optional:
--   p_action          what happened: lower-case words joined by dots, the
--                     domain first: 'customer.update', 'customer.reveal',
--                     'customer.export', 'sync.pull', 'auth.login', ...
--   p_outcome         'ok' (default), 'failed' or 'denied'
--   p_entity          the kind of record acted on: 'customer', 'relation', ...
--   p_entity_id       its id (text)
--   p_customer_id     the customer the entry concerns, for `crm audit
--                     --customer` (set it for every customer-data entry)
--   p_before_version  the record's version before a change (NULL: created)
--   p_after_version   its version after (NULL: read only, or deleted)
--   p_reason          plain words: why it failed or was denied, or the
--                     reason a person gave
--   p_details         a jsonb object with anything else (fields changed,
--                     row counts of an export, the request name, ...)
--   p_subject         the account or session acted on, when that is not
--                     the actor (session revoked, account locked, ...)
--   p_source_addr     client address; default: the session's
--   p_actor_id        default: crm.user_id, set by crm.session_begin
--   p_actor_name      default: that user's username
--   p_store_id        the store the entry belongs to (a store manager sees
--                     its store's entries); default: crm.store_id, set by
--                     crm.session_begin (NULL for group roles)
-- The session (crm.session_id) is recorded when one is set.
CREATE FUNCTION crm.audit_append(
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
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$' THEN
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

-- crmctl: deletes entries older than p_before, which must be at least 180
-- days ago, and records that it did. Returns the number deleted.
CREATE FUNCTION crm.audit_purge(p_before timestamptz, p_by text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF p_before IS NULL OR p_before > now() - interval '180 days' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'before',
            MESSAGE = 'audit entries are kept for at least 180 days';
    END IF;
    PERFORM set_config('crm.audit_retention', 'purge', true);
    DELETE FROM crm.audit_log WHERE at < p_before;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM set_config('crm.audit_retention', '', true);
    PERFORM crm.audit_append('audit.purged', p_actor_name => p_by,
                             p_details => jsonb_build_object('before', p_before,
                                                             'deleted', v_count));
    RETURN v_count;
END
$$;

-- crmd (STMT_AUDIT_DENIED): the handler table refused a request. Runs after
-- the refusal was sent; a dead session still leaves an entry.
CREATE FUNCTION crm.audit_denied(p_session_id uuid, p_request text, p_source_addr text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_user uuid;
BEGIN
    SELECT s.user_id INTO v_user FROM crm.sessions s WHERE s.id = p_session_id;
    PERFORM set_config('crm.session_id', coalesce(p_session_id::text, ''), true);
    PERFORM crm.audit_append('permission.denied', p_outcome => 'denied',
                             p_reason => 'role may not call ' || left(p_request, 100),
                             p_details => jsonb_build_object('request', left(p_request, 100)),
                             p_source_addr => p_source_addr, p_actor_id => v_user);
END
$$;

-- ------------------------------------------------------------ sessions

-- Replaces 0001's: also ends sessions unused for group_policy.session_idle_s
-- and keeps last_seen_at, written only when older than a quarter of the idle
-- timeout or a minute, whichever is less.
CREATE OR REPLACE FUNCTION crm.session_begin(p_session_id uuid)
RETURNS TABLE (user_id uuid, username text, display_name text, role text,
               store_id uuid, store_code text, store_name text, expires_at_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    r record;
    v_idle integer;
BEGIN
    SELECT u.id AS uid, u.username AS uname, u.display_name AS dname, u.role AS urole,
           u.store_id AS sid, st.code AS scode, st.name AS sname,
           crm.ms(s.expires_at) AS exp, s.last_seen_at AS seen
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
    SELECT p.session_idle_s INTO v_idle FROM crm.group_policy p WHERE p.singleton;
    v_idle := coalesce(v_idle, 1800);
    IF r.seen < now() - make_interval(secs => v_idle) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC401',
            MESSAGE = format('session ended after %s without use; log in again',
                             CASE WHEN v_idle % 60 = 0 THEN (v_idle / 60) || ' minutes'
                                  ELSE v_idle || ' seconds' END);
    END IF;
    -- Not in a read-only transaction (a read on a streaming replica, say):
    -- there the last use is simply not advanced. SKIP LOCKED: when a
    -- concurrent request of the same session is already refreshing it, this
    -- one does not wait for that transaction to commit.
    IF r.seen < now() - make_interval(secs => least(60, greatest(1, v_idle / 4)))
       AND current_setting('transaction_read_only') = 'off' THEN
        UPDATE crm.sessions s SET last_seen_at = now()
         WHERE s.id = (SELECT s2.id FROM crm.sessions s2 WHERE s2.id = p_session_id
                          FOR UPDATE SKIP LOCKED);
    END IF;
    PERFORM set_config('crm.session_id', p_session_id::text, true),
            set_config('crm.user_id', r.uid::text, true),
            set_config('crm.role', r.urole, true),
            set_config('crm.store_id', coalesce(r.sid::text, ''), true);
    RETURN QUERY SELECT r.uid, r.uname, r.dname, r.urole, r.sid, r.scode, r.sname, r.exp;
END
$$;

-- Replaces 0001's: a resumed session must also be live by crm.session_begin's
-- rules (idle timeout included), and resuming counts as use.
CREATE OR REPLACE FUNCTION crm.session_resume(p_token_hash_hex text)
RETURNS TABLE (session_id uuid, expires_at_ms bigint, user_id uuid, username text,
               display_name text, role text, store_code text, store_name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_id uuid;
BEGIN
    IF p_token_hash_hex IS NOT NULL AND p_token_hash_hex ~ '^[0-9a-fA-F]{64}$' THEN
        SELECT s.id INTO v_id FROM crm.sessions s
         WHERE s.token_hash = decode(p_token_hash_hex, 'hex');
    END IF;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC401',
            MESSAGE = 'session expired or signed out; log in again';
    END IF;
    RETURN QUERY
    SELECT v_id, b.expires_at_ms, b.user_id, b.username, b.display_name, b.role,
           b.store_code, b.store_name
      FROM crm.session_begin(v_id) b;
END
$$;

-- crmd (STMT_LOGIN_BEGIN): before a password is checked. Always one row.
--   retry_after_s > 0: too many failed logins from this address; nothing
--                      else is filled in (and the password is not checked).
--   user_id NULL:      no such user.
--   locked_until_ms:   the account is locked until then (the attempt is
--                      recorded as failed here; the password is not checked).
CREATE FUNCTION crm.login_begin(p_username text, p_source_addr text)
RETURNS TABLE (user_id uuid, username text, display_name text, role text,
               store_code text, store_name text, password_hash text, disabled boolean,
               locked_until_ms bigint, retry_after_s integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    pol record;
    v_name text := left(lower(btrim(coalesce(p_username, ''))), 200);
    v_addr text := left(p_source_addr, 200);
    v_count integer;
    v_edge timestamptz;
    u record;
BEGIN
    SELECT * INTO pol FROM crm.group_policy p WHERE p.singleton;
    IF v_addr IS NOT NULL THEN
        SELECT count(*) INTO v_count FROM crm.login_failures f
         WHERE f.source_addr = v_addr
           AND f.at > now() - make_interval(secs => pol.addr_window_s);
        IF v_count >= pol.addr_max_failures THEN
            -- Below the limit again once this many of the oldest have aged out.
            SELECT f.at INTO v_edge FROM crm.login_failures f
             WHERE f.source_addr = v_addr
               AND f.at > now() - make_interval(secs => pol.addr_window_s)
             ORDER BY f.at
             OFFSET v_count - pol.addr_max_failures LIMIT 1;
            PERFORM crm.audit_append('auth.login_throttled', p_outcome => 'denied',
                p_reason => 'too many failed logins from this address',
                p_source_addr => v_addr, p_actor_name => v_name);
            RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::text,
                NULL::text, NULL::text, false, NULL::bigint,
                greatest(1, ceil(extract(epoch FROM
                    v_edge + make_interval(secs => pol.addr_window_s) - now()))::integer);
            RETURN;
        END IF;
    END IF;
    SELECT us.id, us.username, us.display_name, us.role, s.code, s.name, us.password_hash,
           us.disabled, us.locked_until, us.store_id
      INTO u
      FROM crm.users us
      LEFT JOIN crm.stores s ON s.id = us.store_id
     WHERE us.username = v_name;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::text, false, NULL::bigint, 0;
        RETURN;
    END IF;
    IF u.locked_until IS NOT NULL AND u.locked_until > now() THEN
        INSERT INTO crm.login_failures (username, source_addr, reason)
        VALUES (v_name, v_addr, 'account locked');
        PERFORM crm.audit_append('auth.login_failed', p_outcome => 'failed',
            p_reason => 'account locked', p_source_addr => v_addr, p_actor_id => u.id,
            p_details => jsonb_build_object('locked_until', u.locked_until));
        RETURN QUERY SELECT u.id, u.username, u.display_name, u.role, u.code, u.name,
            NULL::text, u.disabled, crm.ms(u.locked_until), 0;
        RETURN;
    END IF;
    RETURN QUERY SELECT u.id, u.username, u.display_name, u.role, u.code, u.name,
        u.password_hash, u.disabled, NULL::bigint, 0;
END
$$;

-- crmd (STMT_LOGIN_FAIL): a login failed (p_user_id NULL for an unknown
-- user). Records it in crm.login_failures and the audit log; a wrong password
-- that reaches group_policy.max_failed_logins within the window locks the
-- account. Returns locked_until_ms when this failure locked it, else NULL.
CREATE FUNCTION crm.login_fail(p_username text, p_source_addr text, p_reason text,
                               p_user_id uuid)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    pol record;
    u record;
    v_name text := left(lower(btrim(coalesce(p_username, ''))), 200);
    v_addr text := left(p_source_addr, 200);
    v_reason text := left(coalesce(p_reason, ''), 200);
    v_count integer;
    v_until timestamptz;
BEGIN
    INSERT INTO crm.login_failures (username, source_addr, reason)
    VALUES (v_name, v_addr, v_reason);
    PERFORM crm.audit_append('auth.login_failed', p_outcome => 'failed', p_reason => v_reason,
                             p_source_addr => v_addr, p_actor_id => p_user_id,
                             p_actor_name => CASE WHEN p_user_id IS NULL THEN v_name END);
    IF p_user_id IS NULL OR v_reason <> 'wrong password' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO pol FROM crm.group_policy p WHERE p.singleton;
    SELECT us.username, us.lock_reset_at, us.locked_until INTO u
      FROM crm.users us WHERE us.id = p_user_id FOR UPDATE;
    IF NOT FOUND OR (u.locked_until IS NOT NULL AND u.locked_until > now()) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO v_count FROM crm.login_failures f
     WHERE f.username = u.username AND f.reason = 'wrong password'
       AND f.at > greatest(now() - make_interval(secs => pol.failed_login_window_s),
                           coalesce(u.lock_reset_at, '-infinity'));
    IF v_count < pol.max_failed_logins THEN
        RETURN NULL;
    END IF;
    v_until := now() + make_interval(secs => pol.lockout_s);
    UPDATE crm.users SET locked_until = v_until, lock_reset_at = now() WHERE id = p_user_id;
    PERFORM crm.audit_append('account.locked', p_outcome => 'ok', p_actor_id => p_user_id,
        p_subject => u.username, p_source_addr => v_addr,
        p_reason => format('%s wrong passwords within %s seconds', v_count,
                           pol.failed_login_window_s),
        p_details => jsonb_build_object('locked_until', v_until));
    RETURN crm.ms(v_until);
END
$$;

-- crmd (STMT_LOGIN_OPEN): the password was right. Opens the session (0001's
-- crm.session_open), clears the failure count and records the login.
CREATE FUNCTION crm.login_open(p_user_id uuid, p_token_hash_hex text, p_ttl_s integer,
                               p_source_addr text)
RETURNS TABLE (session_id uuid, expires_at_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_until timestamptz;
    o record;
BEGIN
    SELECT us.locked_until INTO v_until FROM crm.users us WHERE us.id = p_user_id FOR UPDATE;
    IF v_until IS NOT NULL AND v_until > now() THEN
        RAISE EXCEPTION USING ERRCODE = 'DC401',
            MESSAGE = format('this account is locked until %s UTC after repeated failed logins',
                             to_char(v_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'));
    END IF;
    SELECT * INTO o FROM crm.session_open(p_user_id, p_token_hash_hex, p_ttl_s, p_source_addr) so;
    UPDATE crm.users SET lock_reset_at = now(), locked_until = NULL WHERE id = p_user_id;
    PERFORM set_config('crm.session_id', o.session_id::text, true);
    PERFORM crm.audit_append('auth.login', p_actor_id => p_user_id,
                             p_source_addr => p_source_addr);
    RETURN QUERY SELECT o.session_id, o.expires_at_ms;
END
$$;

-- crmd (STMT_LOGOUT): signs out and records it. Signing out of a session
-- that has already ended is not an error.
CREATE FUNCTION crm.session_logout(p_session_id uuid, p_source_addr text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_user uuid;
BEGIN
    UPDATE crm.sessions SET revoked_at = now(), revoked_by = 'logout'
     WHERE id = p_session_id AND revoked_at IS NULL
    RETURNING user_id INTO v_user;
    IF FOUND THEN
        PERFORM set_config('crm.session_id', p_session_id::text, true);
        PERFORM crm.audit_append('auth.logout', p_actor_id => v_user,
                                 p_source_addr => p_source_addr);
    END IF;
END
$$;

-- ------------------------------------------------------------ audit reads

-- crmd (STMT_AUDIT_LIST): a page of the audit log, newest first. Group
-- admins read everything (p_store_code narrows it); store managers read
-- their store's entries only. p_username matches the actor or the subject;
-- p_action is exact, or a prefix when it ends in ".".
CREATE FUNCTION crm.audit_list(p_session_id uuid, p_username text, p_customer_id text,
                               p_action text, p_since_ms bigint, p_until_ms bigint,
                               p_store_code text, p_before_id bigint, p_count integer)
RETURNS TABLE (id bigint, at_ms bigint, action text, outcome text, username text,
               role text, store_code text, source_addr text, subject text, entity text,
               entity_id text, customer_id uuid, before_version bigint,
               after_version bigint, reason text, details text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_store uuid;
    v_customer uuid;
    v_user text := nullif(lower(btrim(coalesce(p_username, ''))), '');
    v_action text := nullif(btrim(coalesce(p_action, '')), '');
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('group_admin', 'store_manager') THEN
        PERFORM crm.audit_append('permission.denied', p_outcome => 'denied',
            p_reason => 'role may not read the audit log',
            p_details => jsonb_build_object('request', 'audit.list'));
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = format('the %s role may not read the audit log', me.role);
    END IF;
    IF p_store_code IS NOT NULL AND p_store_code <> '' THEN
        SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(p_store_code);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'store_code',
                MESSAGE = format('no store with code %s', p_store_code);
        END IF;
    END IF;
    IF me.role = 'store_manager' THEN
        IF v_store IS NOT NULL AND v_store IS DISTINCT FROM me.store_id THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403', COLUMN = 'store_code',
                MESSAGE = 'a store manager reads the audit log of their own store only';
        END IF;
        v_store := me.store_id;
    END IF;
    IF p_customer_id IS NOT NULL AND p_customer_id <> '' THEN
        IF p_customer_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'customer_id',
                MESSAGE = 'customer id must be a UUID';
        END IF;
        v_customer := p_customer_id::uuid;
    END IF;
    IF v_action IS NOT NULL AND v_action !~ '^[a-z][a-z_.]*$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'action',
            MESSAGE = 'action must be lower-case words joined by dots, e.g. auth.login or auth.';
    END IF;
    IF p_count IS NULL OR p_count < 1 OR p_count > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'page_size',
            MESSAGE = 'page size must be from 1 to 500';
    END IF;
    RETURN QUERY
    SELECT a.id, crm.ms(a.at), a.action, a.outcome, a.actor_username, a.actor_role,
           s.code, a.source_addr, a.subject, a.entity, a.entity_id, a.customer_id,
           a.before_version, a.after_version, a.reason, a.details::text
      FROM crm.audit_log a
      LEFT JOIN crm.stores s ON s.id = a.store_id
     WHERE (v_store IS NULL OR a.store_id = v_store)
       AND (v_user IS NULL OR a.actor_username = v_user OR a.subject = v_user)
       AND (v_customer IS NULL OR a.customer_id = v_customer)
       AND (v_action IS NULL
            OR (right(v_action, 1) = '.' AND starts_with(a.action, v_action))
            OR a.action = v_action)
       AND (p_since_ms IS NULL OR p_since_ms = 0
            OR a.at >= to_timestamp(p_since_ms / 1000.0))
       AND (p_until_ms IS NULL OR p_until_ms = 0
            OR a.at < to_timestamp(p_until_ms / 1000.0))
       AND (p_before_id IS NULL OR p_before_id = 0 OR a.id < p_before_id)
     ORDER BY a.id DESC
     LIMIT p_count;
END
$$;

-- ------------------------------------------------------------ administration (crmctl)

-- Ends sessions: one by id, or every live one of a user. Returns how many.
CREATE FUNCTION crm.admin_session_revoke(p_session_id uuid, p_username text, p_by text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    r record;
    v_count integer := 0;
BEGIN
    FOR r IN
        UPDATE crm.sessions s SET revoked_at = now(), revoked_by = left(p_by, 200)
          FROM crm.users u
         WHERE u.id = s.user_id AND s.revoked_at IS NULL AND s.expires_at > now()
           AND ((p_session_id IS NOT NULL AND s.id = p_session_id)
                OR (p_username IS NOT NULL AND u.username = lower(btrim(p_username))))
        RETURNING s.id, u.username, u.store_id
    LOOP
        v_count := v_count + 1;
        PERFORM crm.audit_append('session.revoked', p_actor_name => p_by,
            p_subject => r.username, p_entity => 'session', p_entity_id => r.id::text,
            p_store_id => r.store_id);
    END LOOP;
    RETURN v_count;
END
$$;

-- Disables or enables an account. Disabling ends its sessions at once.
-- Returns the number of sessions ended. DC404 for an unknown user.
CREATE FUNCTION crm.admin_user_set_disabled(p_username text, p_disabled boolean, p_by text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    u record;
    v_ended integer := 0;
BEGIN
    UPDATE crm.users SET disabled = p_disabled WHERE username = lower(btrim(p_username))
    RETURNING id, username, store_id INTO u;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', MESSAGE = format('no user %s', p_username);
    END IF;
    PERFORM crm.audit_append(CASE WHEN p_disabled THEN 'account.disabled'
                                  ELSE 'account.enabled' END,
                             p_actor_name => p_by, p_subject => u.username,
                             p_store_id => u.store_id);
    IF p_disabled THEN
        v_ended := crm.admin_session_revoke(NULL, u.username, p_by);
    END IF;
    RETURN v_ended;
END
$$;

-- Unlocks an account locked by failed logins; earlier failures stop
-- counting. Returns whether it was locked. DC404 for an unknown user.
CREATE FUNCTION crm.admin_user_unlock(p_username text, p_by text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    u record;
BEGIN
    SELECT id, username, store_id, locked_until INTO u FROM crm.users
     WHERE username = lower(btrim(p_username)) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', MESSAGE = format('no user %s', p_username);
    END IF;
    UPDATE crm.users SET locked_until = NULL, lock_reset_at = now() WHERE id = u.id;
    PERFORM crm.audit_append('account.unlocked', p_actor_name => p_by,
        p_subject => u.username, p_store_id => u.store_id,
        p_details => jsonb_build_object('was_locked',
                                        coalesce(u.locked_until > now(), false)));
    RETURN coalesce(u.locked_until > now(), false);
END
$$;

-- Sets a new password hash (Argon2id, made by crmctl after its policy
-- check), ends the user's sessions, and records it.
CREATE FUNCTION crm.admin_user_set_password(p_username text, p_password_hash text, p_by text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    u record;
BEGIN
    UPDATE crm.users SET password_hash = p_password_hash, password_changed_at = now(),
                         locked_until = NULL, lock_reset_at = now()
     WHERE username = lower(btrim(p_username))
    RETURNING id, username, store_id INTO u;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', MESSAGE = format('no user %s', p_username);
    END IF;
    PERFORM crm.audit_append('account.password_changed', p_actor_name => p_by,
                             p_subject => u.username, p_store_id => u.store_id);
    RETURN crm.admin_session_revoke(NULL, u.username, p_by);
END
$$;

-- Sessions, newest first: every live one, or every one of p_username.
CREATE FUNCTION crm.admin_session_list(p_username text)
RETURNS TABLE (id uuid, username text, role text, store_code text, created_at timestamptz,
               last_seen_at timestamptz, expires_at timestamptz, revoked_at timestamptz,
               source_addr text, state text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
    SELECT s.id, u.username, u.role, st.code, s.created_at, s.last_seen_at, s.expires_at,
           s.revoked_at, s.source_addr,
           CASE WHEN s.revoked_at IS NOT NULL THEN 'revoked'
                WHEN u.disabled THEN 'disabled'
                WHEN s.expires_at <= now() THEN 'expired'
                WHEN s.last_seen_at < now() - make_interval(secs =>
                     (SELECT p.session_idle_s FROM crm.group_policy p WHERE p.singleton))
                     THEN 'idle'
                ELSE 'live' END
      FROM crm.sessions s
      JOIN crm.users u ON u.id = s.user_id
      LEFT JOIN crm.stores st ON st.id = u.store_id
     WHERE CASE WHEN p_username IS NULL OR p_username = ''
                THEN s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled
                ELSE u.username = lower(btrim(p_username)) END
     ORDER BY s.created_at DESC
     LIMIT 1000
$$;

-- ------------------------------------------------------------ store certificates

-- Client certificates issued by `crmctl certs store`, by serial (upper-case
-- hex without leading zeros, as OpenSSL's BN_bn2hex writes it), each bound
-- to the store_node user it logs in as.
CREATE TABLE crm.store_certs (
    serial text PRIMARY KEY CHECK (serial ~ '^[0-9A-F]{1,64}$'),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    user_id uuid NOT NULL REFERENCES crm.users (id),
    issued_at timestamptz NOT NULL DEFAULT now(),
    not_after timestamptz NOT NULL,
    issued_by text
);
CREATE INDEX store_certs_store ON crm.store_certs (store_id);

-- Revoked certificate serials. crmd loads them at start and every
-- auth.revocation_refresh_s (refusing such certificates in the TLS
-- handshake), and crm.cert_login checks here again on every binding.
CREATE TABLE crm.revoked_certs (
    serial text PRIMARY KEY CHECK (serial ~ '^[0-9A-F]{1,64}$'),
    revoked_at timestamptz NOT NULL DEFAULT now(),
    revoked_by text,
    reason text
);

-- crmctl certs store: records a new certificate of store p_store_code and
-- makes its node user (role store_node, a password nobody knows) when
-- missing. Returns the node's username.
CREATE FUNCTION crm.admin_cert_issue(p_store_code text, p_serial text, p_node_username text,
                                     p_password_hash text, p_not_after timestamptz,
                                     p_by text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_store record;
    v_user record;
BEGIN
    SELECT id, code, name INTO v_store FROM crm.stores WHERE code = p_store_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'store',
            MESSAGE = format('no store with code %s; add it first with crmctl store add',
                             p_store_code);
    END IF;
    SELECT id, username, role, store_id INTO v_user FROM crm.users
     WHERE username = p_node_username;
    IF FOUND AND (v_user.role <> 'store_node' OR v_user.store_id <> v_store.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'username',
            MESSAGE = format('user %s exists and is not the store node of %s',
                             p_node_username, p_store_code);
    END IF;
    IF NOT FOUND THEN
        INSERT INTO crm.users (username, display_name, role, store_id, password_hash)
        VALUES (p_node_username, 'store node ' || v_store.code, 'store_node', v_store.id,
                p_password_hash)
        RETURNING id, username INTO v_user;
        PERFORM crm.audit_append('account.created', p_actor_name => p_by,
            p_subject => p_node_username, p_store_id => v_store.id,
            p_details => jsonb_build_object('role', 'store_node'));
    END IF;
    INSERT INTO crm.store_certs (serial, store_id, user_id, not_after, issued_by)
    VALUES (p_serial, v_store.id, v_user.id, p_not_after, left(p_by, 200));
    PERFORM crm.audit_append('cert.issued', p_actor_name => p_by, p_subject => v_user.username,
        p_entity => 'certificate', p_entity_id => p_serial, p_store_id => v_store.id);
    RETURN v_user.username;
END
$$;

-- crmctl certs revoke: revokes one serial, or every certificate of a store
-- (p_serial NULL), and ends the sessions opened with them. Returns the
-- serials newly revoked.
CREATE FUNCTION crm.admin_cert_revoke(p_serial text, p_store_code text, p_by text,
                                      p_reason text)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    r record;
    v_found boolean := false;
BEGIN
    IF p_serial IS NULL AND (p_store_code IS NULL OR p_store_code = '') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', MESSAGE = 'give a serial or a store';
    END IF;
    IF p_serial IS NOT NULL AND p_serial !~ '^[0-9A-F]{1,64}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'serial',
            MESSAGE = 'a serial is hexadecimal digits, e.g. 4F3A...';
    END IF;
    IF p_serial IS NULL THEN
        PERFORM 1 FROM crm.stores WHERE code = p_store_code;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'store',
                MESSAGE = format('no store with code %s', p_store_code);
        END IF;
    END IF;
    FOR r IN
        SELECT c.serial, c.store_id, u.username
          FROM crm.store_certs c JOIN crm.users u ON u.id = c.user_id
         WHERE (p_serial IS NOT NULL AND c.serial = p_serial)
            OR (p_serial IS NULL AND c.store_id = (SELECT id FROM crm.stores
                                                    WHERE code = p_store_code))
    LOOP
        v_found := true;
        INSERT INTO crm.revoked_certs (serial, revoked_by, reason)
        VALUES (r.serial, left(p_by, 200), left(p_reason, 200))
        ON CONFLICT (serial) DO NOTHING;
        IF FOUND THEN
            UPDATE crm.sessions SET revoked_at = now(), revoked_by = left(p_by, 200)
             WHERE cert_serial = r.serial AND revoked_at IS NULL;
            PERFORM crm.audit_append('cert.revoked', p_actor_name => p_by,
                p_subject => r.username, p_entity => 'certificate', p_entity_id => r.serial,
                p_store_id => r.store_id, p_reason => p_reason);
            RETURN NEXT r.serial;
        END IF;
    END LOOP;
    -- A serial this database never issued is still refused once listed.
    IF p_serial IS NOT NULL AND NOT v_found THEN
        INSERT INTO crm.revoked_certs (serial, revoked_by, reason)
        VALUES (p_serial, left(p_by, 200), left(p_reason, 200))
        ON CONFLICT (serial) DO NOTHING;
        IF FOUND THEN
            PERFORM crm.audit_append('cert.revoked', p_actor_name => p_by,
                p_entity => 'certificate', p_entity_id => p_serial, p_reason => p_reason);
            RETURN NEXT p_serial;
        END IF;
    END IF;
END
$$;

-- crmd (STMT_REVOKED_CERTS): every revoked serial.
CREATE FUNCTION crm.revoked_cert_serials()
RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$ SELECT serial FROM crm.revoked_certs ORDER BY serial $$;

-- crmd (STMT_CERT_LOGIN): a connection presented a client certificate that
-- verified against the group CA. Opens a session for the store node it was
-- issued to. A revoked or unknown serial, or a disabled node, is refused:
-- then `refusal` says why and the other columns are NULL (a row rather than
-- an error, so that the audit entry of the refusal commits).
CREATE FUNCTION crm.cert_login(p_serial text, p_token_hash_hex text, p_ttl_s integer,
                               p_source_addr text)
RETURNS TABLE (session_id uuid, expires_at_ms bigint, user_id uuid, username text,
               display_name text, role text, store_code text, store_name text,
               refusal text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c record;
    o record;
    v_why text;
BEGIN
    SELECT u.id AS uid, u.username AS uname, u.display_name AS dname, u.role AS urole,
           u.disabled AS udisabled, st.code AS scode, st.name AS sname,
           EXISTS (SELECT 1 FROM crm.revoked_certs r WHERE r.serial = k.serial) AS revoked
      INTO c
      FROM crm.store_certs k
      JOIN crm.users u ON u.id = k.user_id
      JOIN crm.stores st ON st.id = k.store_id
     WHERE k.serial = p_serial;
    IF NOT FOUND THEN
        v_why := 'certificate not issued to a store node of this group';
        IF EXISTS (SELECT 1 FROM crm.revoked_certs r WHERE r.serial = p_serial) THEN
            v_why := 'certificate revoked';
        END IF;
    ELSIF c.revoked THEN
        v_why := 'certificate revoked';
    ELSIF c.udisabled THEN
        v_why := 'store node account disabled';
    ELSIF c.urole <> 'store_node' THEN
        v_why := 'certificate not issued to a store node';
    END IF;
    IF v_why IS NOT NULL THEN
        PERFORM crm.audit_append('auth.cert_login_failed', p_outcome => 'failed',
            p_reason => v_why, p_source_addr => p_source_addr,
            p_actor_id => c.uid, p_entity => 'certificate', p_entity_id => left(p_serial, 64));
        RETURN QUERY SELECT NULL::uuid, NULL::bigint, NULL::uuid, NULL::text, NULL::text,
            NULL::text, NULL::text, NULL::text, v_why;
        RETURN;
    END IF;
    SELECT * INTO o FROM crm.session_open(c.uid, p_token_hash_hex, p_ttl_s, p_source_addr) so;
    UPDATE crm.sessions SET cert_serial = p_serial WHERE id = o.session_id;
    PERFORM set_config('crm.session_id', o.session_id::text, true);
    PERFORM crm.audit_append('auth.cert_login', p_actor_id => c.uid,
        p_source_addr => p_source_addr, p_entity => 'certificate', p_entity_id => p_serial);
    RETURN QUERY SELECT o.session_id, o.expires_at_ms, c.uid, c.uname, c.dname, c.urole,
        c.scode, c.sname, NULL::text;
END
$$;

-- ------------------------------------------------------------ grants

-- New functions are executable by PUBLIC until revoked: take that back for
-- this file's functions, then give crmd exactly the calls it makes. crmd
-- gets nothing on crm.audit_log, crm.store_certs or crm.revoked_certs.
DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
    fn text;
    crmd_calls text[] := ARRAY[
        'crm.audit_append(text, text, text, text, uuid, bigint, bigint, text, jsonb, text,'
        ' text, uuid, text, uuid)',
        'crm.audit_denied(uuid, text, text)',
        'crm.session_begin(uuid)',
        'crm.session_resume(text)',
        'crm.login_begin(text, text)',
        'crm.login_fail(text, text, text, uuid)',
        'crm.login_open(uuid, text, integer, text)',
        'crm.session_logout(uuid, text)',
        'crm.audit_list(uuid, text, text, text, bigint, bigint, text, bigint, integer)',
        'crm.revoked_cert_serials()',
        'crm.cert_login(text, text, integer, text)'];
    admin_only text[] := ARRAY[
        'crm.audit_log_guard()',
        'crm.audit_purge(timestamptz, text)',
        'crm.admin_session_revoke(uuid, text, text)',
        'crm.admin_user_set_disabled(text, boolean, text)',
        'crm.admin_user_unlock(text, text)',
        'crm.admin_user_set_password(text, text, text)',
        'crm.admin_session_list(text)',
        'crm.admin_cert_issue(text, text, text, text, timestamptz, text)',
        'crm.admin_cert_revoke(text, text, text, text)'];
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    FOREACH fn IN ARRAY crmd_calls || admin_only LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;
    FOREACH fn IN ARRAY crmd_calls LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, app);
    END LOOP;
END
$$;
REVOKE ALL ON crm.audit_log, crm.store_certs, crm.revoked_certs FROM PUBLIC;
