-- 0010_crl: what crmd needs to publish the group CA's certificate
-- revocation list (server.crl_listen, server/crl_http.c).
--
-- crmd signs the CRL itself with the group CA key; the database only says
-- which serials are revoked and since when. crmctl certs crl reads the same
-- table as the admin; crmd has no privilege on crm.revoked_certs and reads
-- it through this one definer function.

-- crmd (STMT_CRL_ENTRIES): every revoked serial (upper-case hex, as
-- crm.revoked_certs keeps it) with the time it was revoked, in unix
-- milliseconds, ordered by serial.
CREATE FUNCTION crm.crl_entries()
RETURNS TABLE (serial text, revoked_at_ms bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = crm, pg_temp
AS $$ SELECT r.serial, crm.ms(r.revoked_at) FROM crm.revoked_certs r ORDER BY r.serial $$;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    REVOKE ALL ON FUNCTION crm.crl_entries() FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.crl_entries() TO %I', app);
END
$$;
