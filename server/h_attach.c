/* Attachments of follow-ups (issue 5; sql/0020): a quote, a photo, a PDF,
 * up to 10 MiB each.
 *
 * Frames are limited (server.max_frame_bytes), so a file travels in chunks.
 * An upload belongs to the connection that began it:
 *   attachment.begin   declares id, follow-up, name, media type, size and
 *                      SHA-256; the database keeps a row that no read returns
 *                      until the commit;
 *   attachment.chunk   the bytes, in order: crmd checks each offset as the
 *                      chunk arrives, hashes it (OpenSSL, incrementally) and
 *                      writes it to the database in its own transaction, so
 *                      crmd never holds a whole file; chunks may be pipelined
 *                      (at most CHUNKS_IN_FLIGHT per connection);
 *   attachment.commit  waits for the chunks still being written, compares
 *                      size and hash with the declared ones, and stores the
 *                      attachment, or refuses naming the mismatch.
 * Anything refused (a chunk out of order, too many bytes, a wrong hash, a
 * failed write) deletes the upload before the answer goes out: nothing of
 * it is stored. A connection that closes deletes its uploads in progress;
 * the database sweeps those of a crmd that died (crm.attachment_sweep).
 *
 * attachment.get streams the file back, one stored chunk per frame, each
 * fetched only when the client has credit (as customer.list pages). */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "log.h"
#include "stmts.h"

#define ATTACH_MAX_BYTES (10u << 20)
#define CHUNK_MAX_BYTES (1u << 20)
#define UPLOADS_PER_CONN 4
#define CHUNKS_IN_FLIGHT 8        /* per connection: bounds what crmd holds */
#define LIST_MAX_IDS 1000
#define ATTACH_NCOLS 11           /* ATTACHMENT columns (stmts.h) */
#define ATTACH_VIEW_NCOLS (ATTACH_NCOLS + 2)
#define READ_COL_OFFSET ATTACH_VIEW_NCOLS
#define READ_COL_HEX (ATTACH_VIEW_NCOLS + 1)

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

/* An upload in progress on a connection. */
struct attach_upload {
	struct attach_upload *next;
	char id[37];
	char session_id[37];           /* the session that began it, for the cleanup */
	char media_type[96];
	char sha256[65];               /* declared, hex */
	char computed[65];             /* what the bytes hash to, once all are in */
	uint64_t size;                 /* declared */
	uint64_t received;             /* bytes accepted so far, in order of arrival */
	EVP_MD_CTX *md;                /* hash of the accepted bytes; NULL once final */
	int in_flight;                 /* chunks the database has not answered yet */
	struct request *commit_waiting;/* a commit that waits for those chunks */
	/* Refused: no chunk or commit is taken any more; the row is being
	 * deleted (abandon_pending), then the upload is freed once no chunk is
	 * in flight. */
	bool failed;
	bool abandon_pending;
	Crm__Code failure_code;
	const char *failure_field;
	char failure[320];
};

static const char *const media_types[] = {
	"application/pdf", "image/jpeg", "image/png", "image/webp", "image/heic", "text/plain",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation", NULL,
};

static bool media_type_ok(const char *s)
{
	for (const char *const *m = media_types; *m; m++)
		if (!strcmp(s, *m))
			return true;
	return false;
}

/* Whether the first bytes of the file fit its media type, where that is
 * cheap to tell: signatures of PDF, JPEG, PNG, WebP, HEIC and of the ZIP
 * container of Office documents; plain text has no NUL byte. */
static bool magic_ok(const char *media, const uint8_t *d, size_t n)
{
	if (!strcmp(media, "application/pdf"))
		return n >= 5 && !memcmp(d, "%PDF-", 5);
	if (!strcmp(media, "image/jpeg"))
		return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff;
	if (!strcmp(media, "image/png"))
		return n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8);
	if (!strcmp(media, "image/webp"))
		return n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4);
	if (!strcmp(media, "image/heic")) {
		static const char *const brands[] = {"heic", "heix", "hevc", "hevx", "heim",
						     "heis", "mif1", "msf1"};
		if (n < 12 || memcmp(d + 4, "ftyp", 4))
			return false;
		for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
			if (!memcmp(d + 8, brands[i], 4))
				return true;
		return false;
	}
	if (!strcmp(media, "text/plain"))
		return !memchr(d, 0, n);
	return n >= 4 && !memcmp(d, "PK\x03\x04", 4); /* the Office Open XML types */
}

static bool sha256_hex_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/* A file name as people see it: UTF-8, no path, no control characters. */
static bool name_ok(struct request *r, const char *name)
{
	char why[256];
	if (!text_field_ok("attachment.name", name, 255, true, why, sizeof why)) {
		invalid(r, "attachment.name", "%s", why);
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\') {
			invalid(r, "attachment.name",
				"attachment.name must be a file name without a path or control characters");
			return false;
		}
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		invalid(r, "attachment.name", "attachment.name must be a file name");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ uploads */

static struct attach_upload *upload_find(struct conn *c, const char *id)
{
	for (struct attach_upload *u = c->uploads; u; u = u->next)
		if (!strcmp(u->id, id))
			return u;
	return NULL;
}

static void upload_free(struct conn *c, struct attach_upload *u)
{
	for (struct attach_upload **pp = &c->uploads; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	EVP_MD_CTX_free(u->md);
	free(u);
}

/* A refused upload goes once its row is deleted and no chunk is in flight. */
static void upload_maybe_free(struct conn *c, struct attach_upload *u)
{
	if (u->failed && !u->abandon_pending && u->in_flight == 0 && !u->commit_waiting)
		upload_free(c, u);
}

static int uploads_chunks_in_flight(const struct conn *c)
{
	int n = 0;
	for (const struct attach_upload *u = c->uploads; u; u = u->next)
		n += u->in_flight;
	return n;
}

static int uploads_count(const struct conn *c)
{
	int n = 0;
	for (const struct attach_upload *u = c->uploads; u; u = u->next)
		n++;
	return n;
}

static const char *request_upload_id(const struct request *r)
{
	switch (r->env->body_case) {
	case CRM__ENVELOPE__BODY_ATTACHMENT_CHUNK:
		return r->env->attachment_chunk->id;
	case CRM__ENVELOPE__BODY_ATTACHMENT_COMMIT:
		return r->env->attachment_commit->id;
	default:
		return "";
	}
}

static void on_abandoned_quietly(void *arg, const PGresult *res, const struct pool_error *err)
{
	(void)arg;
	(void)res;
	if (err->code != CRM__CODE__OK)
		log_info("attach.abandon_failed", "reason=\"%s\" (the sweep deletes it later)",
			 err->message);
}

void attach_conn_closed(struct conn *c)
{
	while (c->uploads) {
		struct attach_upload *u = c->uploads;
		/* Not waited for: nothing of an upload in progress is ever read. */
		const char *params[] = {u->session_id, u->id};
		pool_exec(c->srv->pool, STMT_ATTACH_ABANDON, 2, params, NULL, NULL,
			  on_abandoned_quietly, NULL);
		u->commit_waiting = NULL; /* detached with the connection's requests */
		upload_free(c, u);
	}
}

static void reply_attachment(struct request *r, Crm__AttachmentInfo *info, uint64_t received,
			     bool stored, bool existed)
{
	Crm__AttachmentReply ar = CRM__ATTACHMENT_REPLY__INIT;
	ar.attachment = info;
	ar.received = received;
	ar.stored = stored;
	ar.existed = existed;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_REPLY;
	resp.attachment_reply = &ar;
	req_reply(r, &resp);
}

static void row_to_info(const PGresult *res, int row, int col, Crm__AttachmentInfo *a)
{
	crm__attachment_info__init(a);
	a->id = PQgetvalue(res, row, col);
	a->followup_id = PQgetvalue(res, row, col + 1);
	a->name = PQgetvalue(res, row, col + 2);
	a->media_type = PQgetvalue(res, row, col + 3);
	a->size = (uint64_t)col_i64(res, row, col + 4);
	a->sha256 = PQgetvalue(res, row, col + 5);
	a->uploaded_by = PQgetvalue(res, row, col + 6);
	a->created_at = col_i64(res, row, col + 7);
	a->relation_id = PQgetvalue(res, row, col + 8);
	a->customer_id = PQgetvalue(res, row, col + 9);
	a->store_code = PQgetvalue(res, row, col + 10);
}

/* The row is gone: answer the request that caused the refusal, and a commit
 * that waited on the upload. */
static void on_failed_abandoned(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	(void)res;
	r->query = NULL;
	struct conn *c = r->conn;
	struct attach_upload *u = upload_find(c, request_upload_id(r));
	if (!u) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "upload state lost");
		return;
	}
	if (err->code != CRM__CODE__OK)
		log_info("attach.abandon_failed", "id=%s reason=\"%s\" (the sweep deletes it later)",
			 u->id, err->message);
	u->abandon_pending = false;
	if (u->commit_waiting && u->commit_waiting != r)
		req_fail(u->commit_waiting, u->failure_code, u->failure_field, "%s", u->failure);
	u->commit_waiting = NULL;
	req_fail(r, u->failure_code, u->failure_field, "%s", u->failure);
	upload_maybe_free(c, u);
}

/* Refuses the upload: deletes its row (and so its chunks), then answers
 * `r` with the reason. */
static void upload_fail(struct request *r, struct attach_upload *u, Crm__Code code,
			const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void upload_fail(struct request *r, struct attach_upload *u, Crm__Code code,
			const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->failure, sizeof u->failure, fmt, ap);
	va_end(ap);
	u->failed = true;
	u->abandon_pending = true;
	u->failure_code = code;
	u->failure_field = field;
	if (u->commit_waiting == r)
		u->commit_waiting = NULL;
	log_info("attach.refused", "conn=%llu id=%s reason=\"%s\"",
		 (unsigned long long)r->conn->number, u->id, u->failure);
	const char *params[] = {u->session_id, u->id};
	req_db(r, STMT_ATTACH_ABANDON, 2, params, NULL, NULL, on_failed_abandoned);
}

/* Answers a request about an upload that was refused earlier. */
static void refuse_failed(struct request *r, const struct attach_upload *u)
{
	req_fail(r, CRM__CODE__CONFLICT, "id", "upload of %s was refused (%s); begin it again",
		 u->id, u->failure);
}

/* ------------------------------------------------------------ attachment.begin */

static void on_begun(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, 1 + ATTACH_VIEW_NCOLS))
		return;
	if (PQntuples(res) != 1) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "attachment.begin answered no row");
		return;
	}
	Crm__AttachmentInfo info;
	row_to_info(res, 0, 1, &info);
	if (!strcmp(PQgetvalue(res, 0, 0), "existed")) {
		reply_attachment(r, &info, info.size, true, true);
		return;
	}
	const Crm__AttachmentInfo *in = r->env->attachment_begin->attachment;
	struct conn *c = r->conn;
	struct attach_upload *u = upload_find(c, in->id);
	if (u && !u->failed && !u->in_flight && !u->commit_waiting)
		upload_free(c, u); /* began again: start over */
	else if (u) {
		req_fail(r, CRM__CODE__CONFLICT, "attachment.id",
			 "attachment %s is still being written; wait for its answers", in->id);
		return;
	}
	u = calloc(1, sizeof *u);
	if (u)
		u->md = EVP_MD_CTX_new();
	if (!u || !u->md || !EVP_DigestInit_ex(u->md, EVP_sha256(), NULL)) {
		if (u)
			EVP_MD_CTX_free(u->md);
		free(u);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	snprintf(u->id, sizeof u->id, "%s", in->id);
	snprintf(u->session_id, sizeof u->session_id, "%s", c->session.session_id);
	snprintf(u->media_type, sizeof u->media_type, "%s", in->media_type);
	snprintf(u->sha256, sizeof u->sha256, "%s", in->sha256);
	u->size = in->size;
	u->next = c->uploads;
	c->uploads = u;
	reply_attachment(r, &info, 0, false, false);
}

void h_attach_begin(struct request *r)
{
	Crm__AttachmentInfo *a = r->env->attachment_begin->attachment;
	uint8_t raw[16];
	if (!a) {
		invalid(r, "attachment", "attachment is required");
		return;
	}
	if (!uuid_is_v7(a->id)) {
		invalid(r, "attachment.id", "attachment.id must be a UUID version 7");
		return;
	}
	if (!uuid_parse(a->followup_id, raw)) {
		invalid(r, "attachment.followup_id", "attachment.followup_id must be a UUID");
		return;
	}
	if (!name_ok(r, a->name))
		return;
	if (!media_type_ok(a->media_type)) {
		char why[256];
		if (!text_field_ok("attachment.media_type", a->media_type, 100, true, why, sizeof why))
			invalid(r, "attachment.media_type", "%s", why);
		else
			invalid(r, "attachment.media_type",
				"attachment.media_type %s is not accepted: PDF, JPEG, PNG, WebP, HEIC,"
				" plain text or an Office document (.docx, .xlsx, .pptx)", a->media_type);
		return;
	}
	if (a->size == 0 || a->size > ATTACH_MAX_BYTES) {
		invalid(r, "attachment.size",
			a->size ? "attachment.size: %llu bytes is over the limit of 10 MiB"
				  " (10485760 bytes); nothing was stored"
				: "attachment.size: an empty file (%llu bytes) cannot be attached",
			(unsigned long long)a->size);
		return;
	}
	if (!sha256_hex_ok(a->sha256)) {
		invalid(r, "attachment.sha256", "attachment.sha256 must be 64 lower-case hexadecimal digits");
		return;
	}
	struct attach_upload *u = upload_find(r->conn, a->id);
	if (u && (u->in_flight || u->commit_waiting || u->abandon_pending)) {
		req_fail(r, CRM__CODE__CONFLICT, "attachment.id",
			 "attachment %s is still being written; wait for its answers", a->id);
		return;
	}
	if (!u && uploads_count(r->conn) >= UPLOADS_PER_CONN) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL,
			 "at most %d uploads at a time on one connection", UPLOADS_PER_CONN);
		return;
	}
	char size[24];
	snprintf(size, sizeof size, "%llu", (unsigned long long)a->size);
	const char *params[] = {r->conn->session.session_id, a->id, a->followup_id, a->name,
				a->media_type, size, a->sha256};
	req_db(r, STMT_ATTACH_BEGIN, 7, params, NULL, NULL, on_begun);
}

/* ------------------------------------------------------------ attachment.commit */

static void on_committed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	struct conn *c = r->conn;
	struct attach_upload *u = upload_find(c, r->env->attachment_commit->id);
	if (err->code == CRM__CODE__UNAVAILABLE || (err->code != CRM__CODE__OK && !u)) {
		req_fail_db(r, err); /* kept: the commit may be sent again */
		return;
	}
	if (err->code != CRM__CODE__OK) {
		upload_fail(r, u, err->code, err->field[0] ? err->field : NULL, "%s", err->message);
		return;
	}
	if (!result_shape_ok(r, res, 1 + ATTACH_VIEW_NCOLS))
		return;
	if (PQntuples(res) != 1) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "attachment.commit answered no row");
		return;
	}
	if (u)
		upload_free(c, u);
	Crm__AttachmentInfo info;
	row_to_info(res, 0, 1, &info);
	reply_attachment(r, &info, info.size, true, !strcmp(PQgetvalue(res, 0, 0), "existed"));
}

/* Every chunk is written: check size and hash, then store. */
static void commit_run(struct request *r, struct attach_upload *u)
{
	if (!u->computed[0]) {
		if (u->received != u->size) {
			upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "size",
				    "received %llu bytes, but the declared size is %llu; nothing was stored",
				    (unsigned long long)u->received, (unsigned long long)u->size);
			return;
		}
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		if (!EVP_DigestFinal_ex(u->md, md, &mdlen) || mdlen != 32) {
			upload_fail(r, u, CRM__CODE__INTERNAL, NULL, "could not compute SHA-256");
			return;
		}
		EVP_MD_CTX_free(u->md);
		u->md = NULL;
		for (unsigned int i = 0; i < mdlen; i++)
			snprintf(u->computed + 2 * i, 3, "%02x", md[i]);
		if (strcmp(u->computed, u->sha256) != 0) {
			upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "sha256",
				    "the bytes received have SHA-256 %s, not the declared %s;"
				    " nothing was stored", u->computed, u->sha256);
			return;
		}
	}
	const char *params[] = {r->conn->session.session_id, u->id, u->computed};
	req_db(r, STMT_ATTACH_COMMIT, 3, params, NULL, NULL, on_committed);
}

void h_attach_commit(struct request *r)
{
	const Crm__AttachmentCommit *in = r->env->attachment_commit;
	uint8_t raw[16];
	if (!uuid_parse(in->id, raw)) {
		invalid(r, "id", "id must be a UUID");
		return;
	}
	struct attach_upload *u = upload_find(r->conn, in->id);
	if (!u) {
		/* A commit sent again after a lost answer: stored, or unknown. */
		const char *params[] = {r->conn->session.session_id, in->id, NULL};
		req_db(r, STMT_ATTACH_COMMIT, 3, params, NULL, NULL, on_committed);
		return;
	}
	if (u->failed) {
		refuse_failed(r, u);
		return;
	}
	if (u->commit_waiting) {
		req_fail(r, CRM__CODE__CONFLICT, "id", "a commit of %s is already waiting", u->id);
		return;
	}
	if (u->in_flight > 0) {
		u->commit_waiting = r; /* the last chunk's answer runs it */
		return;
	}
	commit_run(r, u);
}

/* ------------------------------------------------------------ attachment.chunk */

static void on_chunk_stored(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	(void)res;
	r->query = NULL;
	struct conn *c = r->conn;
	const Crm__AttachmentChunk *in = r->env->attachment_chunk;
	struct attach_upload *u = upload_find(c, in->id);
	if (!u) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "upload state lost");
		return;
	}
	u->in_flight--;
	if (u->failed) {
		refuse_failed(r, u);
		upload_maybe_free(c, u);
		return;
	}
	if (err->code != CRM__CODE__OK) {
		upload_fail(r, u, err->code, err->field[0] ? err->field : NULL,
			    "chunk at offset %llu not stored: %s", (unsigned long long)in->offset,
			    err->message);
		return;
	}
	struct request *commit = u->in_flight == 0 ? u->commit_waiting : NULL;
	uint64_t received = in->offset + in->data.len;
	Crm__AttachmentReply ar = CRM__ATTACHMENT_REPLY__INIT;
	ar.received = received;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_REPLY;
	resp.attachment_reply = &ar;
	req_reply(r, &resp);
	if (commit) {
		u->commit_waiting = NULL;
		commit_run(commit, u);
	}
}

void h_attach_chunk(struct request *r)
{
	const Crm__AttachmentChunk *in = r->env->attachment_chunk;
	uint8_t raw[16];
	if (!uuid_parse(in->id, raw)) {
		invalid(r, "id", "id must be a UUID");
		return;
	}
	struct attach_upload *u = upload_find(r->conn, in->id);
	if (!u) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id",
			 "no upload of %s is in progress on this connection; begin it first", in->id);
		return;
	}
	if (u->failed) {
		refuse_failed(r, u);
		return;
	}
	size_t len = in->data.len;
	if (u->commit_waiting || u->computed[0]) {
		upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "offset",
			    "a chunk came after the commit; nothing was stored");
		return;
	}
	if (in->offset != u->received) {
		upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "offset",
			    "chunk at offset %llu, where %llu was expected: chunks must follow each"
			    " other without gaps or overlaps; nothing was stored",
			    (unsigned long long)in->offset, (unsigned long long)u->received);
		return;
	}
	if (len == 0 || len > CHUNK_MAX_BYTES) {
		upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "data",
			    "a chunk holds from 1 byte to 1 MiB, not %zu bytes; nothing was stored",
			    len);
		return;
	}
	if (u->received + len > u->size) {
		upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "data",
			    "%llu bytes received, more than the declared size of %llu bytes%s;"
			    " nothing was stored", (unsigned long long)(u->received + len),
			    (unsigned long long)u->size,
			    u->received + len > ATTACH_MAX_BYTES ? " and the limit of 10 MiB" : "");
		return;
	}
	if (in->offset == 0 && !magic_ok(u->media_type, in->data.data, len)) {
		upload_fail(r, u, CRM__CODE__INVALID_ARGUMENT, "attachment.media_type",
			    "the file's first bytes are not those of %s; nothing was stored",
			    u->media_type);
		return;
	}
	if (uploads_chunks_in_flight(r->conn) >= CHUNKS_IN_FLIGHT) {
		upload_fail(r, u, CRM__CODE__RESOURCE_EXHAUSTED, NULL,
			    "more than %d chunks in flight on one connection: wait for their"
			    " answers; nothing was stored", CHUNKS_IN_FLIGHT);
		return;
	}
	if (!EVP_DigestUpdate(u->md, in->data.data, len)) {
		upload_fail(r, u, CRM__CODE__INTERNAL, NULL, "could not hash the chunk");
		return;
	}
	u->received += len;
	u->in_flight++;
	char offset[24];
	snprintf(offset, sizeof offset, "%llu", (unsigned long long)in->offset);
	const char *params[] = {r->conn->session.session_id, in->id, offset,
				(const char *)in->data.data};
	const int lengths[] = {0, 0, 0, (int)len};
	const int binary[] = {0, 0, 0, 1};
	req_db(r, STMT_ATTACH_CHUNK, 4, params, lengths, binary, on_chunk_stored);
}

/* ------------------------------------------------------------ attachment.get */

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static void attach_read(struct request *r);

static void on_read(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, ATTACH_VIEW_NCOLS + 2))
		return;
	if (PQntuples(res) != 1) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no attachment %s in your scope",
			 r->env->attachment_get->id);
		return;
	}
	Crm__AttachmentInfo info;
	row_to_info(res, 0, 0, &info);
	uint64_t offset = r->stream_offset;
	if (PQgetisnull(res, 0, READ_COL_HEX) || col_i64(res, 0, READ_COL_OFFSET) != (int64_t)offset) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "attachment %s has no bytes at offset %llu",
			 info.id, (unsigned long long)offset);
		return;
	}
	const char *hex = PQgetvalue(res, 0, READ_COL_HEX);
	size_t len = (size_t)PQgetlength(res, 0, READ_COL_HEX) / 2;
	uint8_t *data = malloc(len ? len : 1);
	if (!data) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(data);
			req_fail(r, CRM__CODE__INTERNAL, NULL, "the database sent a chunk that is not hex");
			return;
		}
		data[i] = (uint8_t)(hi << 4 | lo);
	}
	Crm__AttachmentData ad = CRM__ATTACHMENT_DATA__INIT;
	ad.attachment = offset == 0 ? &info : NULL;
	ad.offset = offset;
	ad.data.data = data;
	ad.data.len = len;
	uint64_t next = offset + len;
	/* remaining 1: the client cancelled, this frame is the last. */
	bool more = next < info.size && r->remaining != 1;
	r->stream_offset = next;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_DATA;
	resp.attachment_data = &ad;
	req_stream_frame(r, &resp, more); /* frees r when it was the last frame */
	free(data);
	if (more)
		h_attach_get_more(r);
}

static void attach_read(struct request *r)
{
	char offset[24];
	snprintf(offset, sizeof offset, "%llu", (unsigned long long)r->stream_offset);
	const char *params[] = {r->conn->session.session_id, r->env->attachment_get->id, offset};
	req_db(r, STMT_ATTACH_READ, 3, params, NULL, NULL, on_read);
}

void h_attach_get_more(struct request *r)
{
	if (r->credit == 0) {
		r->stream_waiting = true;
		return;
	}
	attach_read(r);
}

void h_attach_get(struct request *r)
{
	uint8_t raw[16];
	if (!uuid_parse(r->env->attachment_get->id, raw)) {
		invalid(r, "id", "id must be a UUID");
		return;
	}
	r->stream_offset = 0;
	attach_read(r);
}

/* ------------------------------------------------------------ attachment.list */

static void on_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, ATTACH_VIEW_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__AttachmentInfo *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__AttachmentInfo **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < rows; i++) {
		row_to_info(res, i, 0, &items[i]);
		ptrs[i] = &items[i];
	}
	Crm__AttachmentPage page = CRM__ATTACHMENT_PAGE__INIT;
	page.attachments = ptrs;
	page.n_attachments = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_PAGE;
	resp.attachment_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_attach_list(struct request *r)
{
	const Crm__AttachmentList *in = r->env->attachment_list;
	uint8_t raw[16];
	if (in->n_followup_ids == 0 || in->n_followup_ids > LIST_MAX_IDS) {
		invalid(r, "followup_ids", "give from 1 to %d follow-up ids", LIST_MAX_IDS);
		return;
	}
	struct textbuf ids = {0};
	for (size_t i = 0; i < in->n_followup_ids; i++) {
		if (!uuid_parse(in->followup_ids[i], raw)) {
			tb_free(&ids);
			invalid(r, "followup_ids", "followup_ids: item %zu is not a UUID", i + 1);
			return;
		}
		if (i)
			tb_addc(&ids, LIST_SEP);
		tb_add(&ids, in->followup_ids[i]);
	}
	if (ids.oom) {
		tb_free(&ids);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	const char *params[] = {r->conn->session.session_id, tb_str(&ids)};
	req_db(r, STMT_ATTACH_LIST, 2, params, NULL, NULL, on_listed);
	tb_free(&ids);
}
