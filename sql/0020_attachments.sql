-- 0020_attachments: files attached to follow-ups (issue 5: a quote, a
-- photo, a PDF), up to 10 MiB each.
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.attachments: one row per file, with its follow-up, relation and
--   store, name, media type, size, SHA-256, who uploaded it and when. A row
--   with stored_at NULL is an upload in progress: no read ever returns it,
--   and it is deleted when its upload fails, when crmd's connection closes
--   (crm.attachment_abandon) or, should crmd die, by the sweep at the next
--   begin once untouched for an hour (crm.attachment_sweep).
-- * crm.attachment_chunks: the bytes, as the chunks arrived (each at most
--   1 MiB, keyed by its offset), so that crmd holds no whole file: each
--   chunk is written in its own transaction as it comes. Stored without
--   compression (photos and PDFs are compressed already). PostgreSQL is the
--   only durable store: backups and replicas have the files too.
-- * crmd checks the offsets as chunks arrive and hashes them incrementally
--   (OpenSSL); crm.attachment_commit checks again that the chunks follow
--   each other without gap or overlap and add up to the declared size, then
--   makes the row visible and appends the AttachmentInfo (metadata only,
--   never the bytes; encoded here, crm.attachment_payload) to the outbox.
-- * Row-level security: an attachment is visible when its relation is, and
--   written only by its uploader at the relation's store; its chunks follow
--   it. Erasing a customer deletes the bytes of the customer's attachments
--   and blanks their names (crm.erase_attachments).

-- ------------------------------------------------------------ tables

CREATE TABLE crm.attachments (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    followup_id uuid NOT NULL REFERENCES crm.followups (id),
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    media_type text NOT NULL,
    size integer NOT NULL CHECK (size BETWEEN 1 AND 10485760),
    sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
    uploaded_by uuid NOT NULL REFERENCES crm.users (id),
    started_at timestamptz NOT NULL,
    touched_at timestamptz NOT NULL,            -- the last begin or chunk
    stored_at timestamptz,                      -- NULL: upload in progress
    erased_at timestamptz                       -- the customer was erased: no bytes
);
CREATE INDEX attachments_followup ON crm.attachments (followup_id, stored_at);
CREATE INDEX attachments_relation ON crm.attachments (relation_id);
CREATE INDEX attachments_pending ON crm.attachments (touched_at) WHERE stored_at IS NULL;

CREATE TABLE crm.attachment_chunks (
    attachment_id uuid NOT NULL REFERENCES crm.attachments (id) ON DELETE CASCADE,
    byte_offset integer NOT NULL CHECK (byte_offset >= 0),
    data bytea NOT NULL CHECK (octet_length(data) BETWEEN 1 AND 1048576),
    PRIMARY KEY (attachment_id, byte_offset)
);
ALTER TABLE crm.attachment_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The media types accepted; crmd checks the first bytes of the common ones.
CREATE FUNCTION crm.attachment_media_ok(p_media_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce(p_media_type IN (
        'application/pdf', 'image/jpeg', 'image/png', 'image/webp', 'image/heic', 'text/plain',
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
        'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
        'application/vnd.openxmlformats-officedocument.presentationml.presentation'), false)
$$;

ALTER TABLE crm.attachments ADD CHECK (crm.attachment_media_ok(media_type));

-- The ATTACHMENT columns of server/stmts.h (the fields of AttachmentInfo,
-- in order), then stored_at and erased_at for the functions' filters.
CREATE VIEW crm.attachment_view WITH (security_invoker = true) AS
SELECT a.id, a.followup_id, a.name, a.media_type, a.size::bigint AS size,
       encode(a.sha256, 'hex') AS sha256, u.username AS uploaded_by,
       coalesce(crm.ms(a.stored_at), 0) AS created_at_ms, a.relation_id, r.customer_id,
       s.code AS store_code, a.stored_at, a.erased_at
  FROM crm.attachments a
  JOIN crm.relations r ON r.id = a.relation_id
  JOIN crm.stores s ON s.id = a.store_id
  JOIN crm.users u ON u.id = a.uploaded_by;

-- ------------------------------------------------------------ helpers

-- The outbox payload: a packed crm.AttachmentInfo (proto/crm.proto), the
-- metadata only. Sync does not carry the bytes.
CREATE FUNCTION crm.attachment_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.followup_id::text)
        || crm.pb_text(3, v.name) || crm.pb_text(4, v.media_type) || crm.pb_int(5, v.size)
        || crm.pb_text(6, v.sha256) || crm.pb_text(7, v.uploaded_by)
        || crm.pb_int(8, v.created_at_ms) || crm.pb_text(9, v.relation_id::text)
        || crm.pb_text(10, v.customer_id::text) || crm.pb_text(11, v.store_code)
      FROM crm.attachment_view v
     WHERE v.id = p_id
$$;

-- Deletes uploads untouched for p_idle: crmd deletes those of a closed
-- connection itself; this catches those of a crmd that died. Definer: it
-- deletes other people's abandoned uploads (never a stored attachment).
CREATE FUNCTION crm.attachment_sweep(p_idle interval DEFAULT interval '1 hour')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM crm.attachments a
     WHERE a.stored_at IS NULL AND a.touched_at < now() - p_idle;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The caller's upload in progress p_id, locked; DC404 when there is none.
CREATE FUNCTION crm.attachment_pending(p_id uuid, p_user_id uuid) RETURNS crm.attachments
LANGUAGE plpgsql
AS $$
DECLARE
    a crm.attachments;
BEGIN
    SELECT x.* INTO a FROM crm.attachments x WHERE x.id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND OR a.uploaded_by <> p_user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
            MESSAGE = format('no upload of attachment %s is in progress; begin it again', p_id);
    END IF;
    IF a.stored_at IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'id',
            MESSAGE = format('attachment %s is stored already', p_id);
    END IF;
    RETURN a;
END
$$;

-- ------------------------------------------------------------ upload

-- STMT_ATTACH_BEGIN: starts (or starts again) the caller's upload of a file
-- to a follow-up of a relation the caller may write. Rows: outcome ('ok',
-- or 'existed': stored already with this size and hash, send nothing),
-- ATTACHMENT columns.
CREATE FUNCTION crm.attachment_begin(p_session_id uuid, p_id text, p_followup_id text,
                                     p_name text, p_media_type text, p_size bigint,
                                     p_sha256 text)
RETURNS TABLE (outcome text, att crm.attachment_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_followup uuid;
    v_sha bytea;
    f crm.followups;
    r crm.relations;
    a crm.attachments;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'attachment.id', true);
    v_followup := crm.check_uuid(p_followup_id, 'attachment.followup_id');
    IF p_name IS NULL OR char_length(p_name) NOT BETWEEN 1 AND 255
       OR p_name ~ '[[:cntrl:]/\\]' OR p_name IN ('.', '..') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'attachment.name',
            MESSAGE = 'attachment.name must be a file name of 1 to 255 characters,'
                      ' without a path or control characters';
    END IF;
    IF NOT crm.attachment_media_ok(p_media_type) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'attachment.media_type',
            MESSAGE = format('attachment.media_type %s is not accepted', p_media_type);
    END IF;
    IF p_size IS NULL OR p_size < 1 OR p_size > 10485760 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'attachment.size',
            MESSAGE = format('attachment.size must be from 1 byte to 10 MiB (10485760 bytes),'
                             ' not %s', p_size);
    END IF;
    IF p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'attachment.sha256',
            MESSAGE = 'attachment.sha256 must be 64 lower-case hexadecimal digits';
    END IF;
    v_sha := decode(p_sha256, 'hex');
    PERFORM crm.attachment_sweep();

    SELECT x.* INTO f FROM crm.followups x WHERE x.id = v_followup;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'attachment.followup_id',
            MESSAGE = format('no follow-up %s in your scope', p_followup_id);
    END IF;
    r := crm.relation_row(f.relation_id, false);
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, true);
    IF EXISTS (SELECT 1 FROM crm.customers c WHERE c.id = r.customer_id
                 AND c.erased_at IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'attachment.followup_id',
            MESSAGE = 'the customer was erased: nothing can be attached';
    END IF;

    -- Not locked: a row lock needs the update policy, which hides stored
    -- rows; two begins of one id meet at the primary key.
    SELECT x.* INTO a FROM crm.attachments x WHERE x.id = v_id;
    IF FOUND AND a.stored_at IS NOT NULL THEN
        IF a.sha256 = v_sha AND a.size = p_size AND a.followup_id = v_followup THEN
            RETURN QUERY SELECT 'existed', v FROM crm.attachment_view v WHERE v.id = v_id;
            RETURN;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'attachment.id',
            MESSAGE = format('attachment id %s is taken by another file', p_id);
    ELSIF FOUND AND a.uploaded_by <> me.user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'attachment.id',
            MESSAGE = format('attachment %s is being uploaded by someone else', p_id);
    ELSIF FOUND THEN
        -- The caller's earlier upload of this id never finished: start over.
        DELETE FROM crm.attachment_chunks c WHERE c.attachment_id = v_id;
        UPDATE crm.attachments x
           SET followup_id = v_followup, relation_id = r.id, store_id = r.store_id,
               name = p_name, media_type = p_media_type, size = p_size, sha256 = v_sha,
               started_at = now(), touched_at = now()
         WHERE x.id = v_id;
    ELSE
        INSERT INTO crm.attachments (id, followup_id, relation_id, store_id, name, media_type,
                                     size, sha256, uploaded_by, started_at, touched_at)
        VALUES (v_id, v_followup, r.id, r.store_id, p_name, p_media_type, p_size, v_sha,
                me.user_id, now(), now());
    END IF;
    RETURN QUERY SELECT 'ok', v FROM crm.attachment_view v WHERE v.id = v_id;
END
$$;

-- STMT_ATTACH_CHUNK: stores one chunk of the caller's upload in progress.
-- Returns the bytes the upload holds now. Chunks may commit in any order
-- (crmd pipelines them); crm.attachment_commit checks that they join up.
CREATE FUNCTION crm.attachment_chunk(p_session_id uuid, p_id text, p_offset bigint,
                                     p_data bytea)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    a crm.attachments;
    v_len integer := coalesce(octet_length(p_data), 0);
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    a := crm.attachment_pending(crm.check_uuid(p_id, 'id'), me.user_id);
    IF v_len NOT BETWEEN 1 AND 1048576 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'data',
            MESSAGE = 'a chunk holds from 1 byte to 1 MiB';
    END IF;
    IF p_offset IS NULL OR p_offset < 0 OR p_offset + v_len > a.size THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'offset',
            MESSAGE = format('a chunk of %s bytes at offset %s ends past the declared size'
                             ' of %s bytes', v_len, p_offset, a.size);
    END IF;
    INSERT INTO crm.attachment_chunks (attachment_id, byte_offset, data)
    VALUES (a.id, p_offset, p_data);
    UPDATE crm.attachments x SET touched_at = now() WHERE x.id = a.id;
    RETURN p_offset + v_len;
END
$$;

-- STMT_ATTACH_COMMIT: stores the caller's upload, whose hash crmd verified
-- (p_sha256, as it computed it), if its chunks join up to the declared
-- size; appends its AttachmentInfo to the outbox. p_sha256 NULL: crmd has
-- no upload of it (a commit sent again): 'existed' when it is stored.
-- Rows: outcome ('ok', 'existed'), ATTACHMENT columns.
CREATE FUNCTION crm.attachment_commit(p_session_id uuid, p_id text, p_sha256 text)
RETURNS TABLE (outcome text, att crm.attachment_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    a crm.attachments;
    v_chunks integer;
    v_bytes bigint;
    v_joined boolean;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'id');
    SELECT x.* INTO a FROM crm.attachments x WHERE x.id = v_id AND x.stored_at IS NOT NULL;
    IF FOUND THEN
        IF p_sha256 IS NOT NULL AND encode(a.sha256, 'hex') <> p_sha256 THEN
            RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'id',
                MESSAGE = format('attachment id %s is taken by another file', p_id);
        END IF;
        RETURN QUERY SELECT 'existed', v FROM crm.attachment_view v WHERE v.id = v_id;
        RETURN;
    END IF;
    IF p_sha256 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
            MESSAGE = format('no upload of attachment %s is in progress on this connection;'
                             ' begin it again', p_id);
    END IF;
    a := crm.attachment_pending(v_id, me.user_id);
    IF encode(a.sha256, 'hex') <> p_sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'sha256',
            MESSAGE = format('the bytes received have SHA-256 %s, not the declared %s',
                             p_sha256, encode(a.sha256, 'hex'));
    END IF;
    SELECT count(*), coalesce(sum(k.len), 0), coalesce(bool_and(k.byte_offset = k.expected), true)
      INTO v_chunks, v_bytes, v_joined
      FROM (SELECT c.byte_offset, octet_length(c.data) AS len,
                   coalesce(sum(octet_length(c.data)) OVER (ORDER BY c.byte_offset
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS expected
              FROM crm.attachment_chunks c WHERE c.attachment_id = v_id) k;
    IF NOT v_joined OR v_bytes <> a.size THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'size',
            MESSAGE = format('the upload holds %s bytes in %s chunks%s; %s were declared',
                             v_bytes, v_chunks,
                             CASE WHEN v_joined THEN '' ELSE ' with gaps or overlaps' END,
                             a.size);
    END IF;
    UPDATE crm.attachments x SET stored_at = now(), touched_at = now() WHERE x.id = v_id;
    PERFORM crm.outbox_append('attachment', v_id, crm.attachment_payload(v_id));
    RETURN QUERY SELECT 'ok', v FROM crm.attachment_view v WHERE v.id = v_id;
END
$$;

-- STMT_ATTACH_ABANDON: deletes the caller's upload in progress p_id, if
-- there is one (a refused chunk or commit, a closed connection).
CREATE FUNCTION crm.attachment_abandon(p_session_id uuid, p_id text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    DELETE FROM crm.attachments a
     WHERE a.id = crm.check_uuid(p_id, 'id') AND a.uploaded_by = me.user_id
       AND a.stored_at IS NULL;
END
$$;

-- ------------------------------------------------------------ reads

-- A stored attachment the caller may read: as its follow-up
-- (crm.readable_relations). DC404 otherwise.
CREATE FUNCTION crm.attachment_readable(p_session_id uuid, p_id text)
RETURNS crm.attachment_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v crm.attachment_view;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    SELECT x.* INTO v FROM crm.attachment_view x
     WHERE x.id = crm.check_uuid(p_id, 'id') AND x.stored_at IS NOT NULL
       AND x.erased_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
            MESSAGE = format('no attachment %s in your scope', p_id);
    END IF;
    BEGIN
        PERFORM crm.readable_relations(me.user_id, me.role, me.store_id, v.relation_id::text,
                                       NULL);
    EXCEPTION WHEN SQLSTATE 'DC404' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
            MESSAGE = format('no attachment %s in your scope', p_id);
    END;
    RETURN v;
END
$$;

-- STMT_ATTACH_READ: the attachment (ATTACHMENT columns) and its chunk that
-- starts at p_offset: chunk_offset, chunk_hex (NULL when there is none).
-- One chunk per call, so that crmd streams a file by its credit.
CREATE FUNCTION crm.attachment_read(p_session_id uuid, p_id text, p_offset bigint)
RETURNS TABLE (att crm.attachment_view, chunk_offset bigint, chunk_hex text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v crm.attachment_view;
BEGIN
    v := crm.attachment_readable(p_session_id, p_id);
    RETURN QUERY
    SELECT v, c.byte_offset::bigint, encode(c.data, 'hex')
      FROM (SELECT 1) one
      LEFT JOIN crm.attachment_chunks c
        ON c.attachment_id = v.id AND c.byte_offset = coalesce(p_offset, 0);
END
$$;

-- STMT_ATTACH_LIST: the stored attachments (ATTACHMENT columns) of the
-- listed follow-ups (U+001F-joined ids, at most 1000) whose relations the
-- caller may read, by follow-up and age.
CREATE FUNCTION crm.attachment_list(p_session_id uuid, p_followup_ids text)
RETURNS SETOF crm.attachment_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_ids uuid[];
    v_text text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no follow-ups';
    END IF;
    v_ids := '{}';
    FOREACH v_text IN ARRAY string_to_array(coalesce(p_followup_ids, ''), E'\x1f') LOOP
        v_ids := v_ids || crm.check_uuid(v_text, 'followup_ids');
    END LOOP;
    IF cardinality(v_ids) > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'followup_ids',
            MESSAGE = 'give at most 1000 follow-up ids';
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.attachment_view v
      JOIN crm.relations r ON r.id = v.relation_id
     WHERE v.followup_id = ANY (v_ids) AND v.stored_at IS NOT NULL AND v.erased_at IS NULL
       AND (me.store_id IS NULL
            OR (r.store_id = me.store_id
                AND (me.role <> 'consultant' OR r.owner_id IS NULL OR r.owner_id = me.user_id)))
     ORDER BY v.followup_id, v.stored_at, v.id;
END
$$;

-- ------------------------------------------------------------ erasure

-- Erasing a customer (0009) deletes the bytes of the customer's attachments
-- and blanks their names, in the erasure's transaction; uploads in progress
-- go. Definer: the rows are others' (0013's erase_followups does the same
-- for follow-ups). The erased customer's change in the outbox makes the
-- other side of sync do the same.
CREATE FUNCTION crm.erase_attachments() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
BEGIN
    DELETE FROM crm.attachments a USING crm.relations r
     WHERE r.customer_id = NEW.id AND a.relation_id = r.id AND a.stored_at IS NULL;
    DELETE FROM crm.attachment_chunks c USING crm.attachments a, crm.relations r
     WHERE r.customer_id = NEW.id AND a.relation_id = r.id AND c.attachment_id = a.id;
    UPDATE crm.attachments a SET name = '已删除', erased_at = now()
      FROM crm.relations r
     WHERE r.customer_id = NEW.id AND a.relation_id = r.id AND a.erased_at IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_erase_attachments AFTER UPDATE OF erased_at ON crm.customers
    FOR EACH ROW WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL)
    EXECUTE FUNCTION crm.erase_attachments();

-- ------------------------------------------------------------ row-level security

ALTER TABLE crm.attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.attachments FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.attachment_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.attachment_chunks FORCE ROW LEVEL SECURITY;

-- Visible when the relation is; written by the uploader only, at the
-- relation's store; only an upload in progress changes or goes.
CREATE POLICY attachments_read ON crm.attachments FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY attachments_insert ON crm.attachments FOR INSERT
    WITH CHECK (uploaded_by = crm.rls_user() AND store_id = crm.rls_store()
                AND EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                              AND r.store_id = crm.rls_store()));
CREATE POLICY attachments_update ON crm.attachments FOR UPDATE
    USING (uploaded_by = crm.rls_user() AND stored_at IS NULL)
    WITH CHECK (uploaded_by = crm.rls_user() AND store_id = crm.rls_store());
CREATE POLICY attachments_delete ON crm.attachments FOR DELETE
    USING (uploaded_by = crm.rls_user() AND stored_at IS NULL);

CREATE POLICY attachment_chunks_read ON crm.attachment_chunks FOR SELECT
    USING (EXISTS (SELECT 1 FROM crm.attachments a WHERE a.id = attachment_id));
CREATE POLICY attachment_chunks_insert ON crm.attachment_chunks FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.attachments a WHERE a.id = attachment_id
                          AND a.uploaded_by = crm.rls_user() AND a.stored_at IS NULL));
CREATE POLICY attachment_chunks_delete ON crm.attachment_chunks FOR DELETE
    USING (EXISTS (SELECT 1 FROM crm.attachments a WHERE a.id = attachment_id
                     AND a.uploaded_by = crm.rls_user() AND a.stored_at IS NULL));

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.attachments, crm.attachment_chunks, crm.attachment_view FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.attachment_media_ok(text), crm.attachment_payload(uuid),
    crm.attachment_sweep(interval), crm.attachment_pending(uuid, uuid),
    crm.attachment_begin(uuid, text, text, text, text, bigint, text),
    crm.attachment_chunk(uuid, text, bigint, bytea), crm.attachment_commit(uuid, text, text),
    crm.attachment_abandon(uuid, text), crm.attachment_readable(uuid, text),
    crm.attachment_read(uuid, text, bigint), crm.attachment_list(uuid, text),
    crm.erase_attachments() FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.attachment_media_ok(text),'
                   ' crm.attachment_payload(uuid), crm.attachment_sweep(interval),'
                   ' crm.attachment_pending(uuid, uuid),'
                   ' crm.attachment_begin(uuid, text, text, text, text, bigint, text),'
                   ' crm.attachment_chunk(uuid, text, bigint, bytea),'
                   ' crm.attachment_commit(uuid, text, text),'
                   ' crm.attachment_abandon(uuid, text), crm.attachment_readable(uuid, text),'
                   ' crm.attachment_read(uuid, text, bigint), crm.attachment_list(uuid, text)'
                   ' TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON crm.attachments,'
                   ' crm.attachment_chunks TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.attachment_view TO %I', app);
END
$$;
