/* Attachments of follow-ups (issue 5; sql/0020) over TLS against
 * PostgreSQL: round trips with the SHA-256 checked (a small text and a
 * ~9.9 MiB image), exactly 10 MiB allowed and one byte more refused (at
 * begin, and when the chunks run past the declared size), a wrong hash, a
 * wrong size, a chunk out of order or overlapping and a file that is not
 * what its media type says refused with nothing stored, another store's
 * user and a colleague who does not own the customer cannot read it, a
 * commit (and a begin) sent again answers existed and writes the outbox
 * once, the download stream waits for credit, and an upload in progress
 * is never visible and is deleted when its connection closes.
 *
 * The consultant made here (att.consultant1) works at BJ01. */
#include <openssl/evp.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "attach-test-pw-1"
#define MIB (1u << 20)
#define LIMIT (10u * MIB)
#define CHUNK (256u << 10)

static PGconn *db;

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

static const char *field_of(const Crm__Envelope *e)
{
	return e && e->status && e->status->field ? e->status->field : "";
}

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static struct crmc *login_user(const char *user, const char *password)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, password) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

static void sha256_hex(const uint8_t *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Bytes that start like a PNG file; the rest from a fixed generator. */
static uint8_t *png_bytes(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len);
	uint32_t x = seed;
	for (size_t i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (uint8_t)(x >> 24);
	}
	if (len >= 8)
		memcpy(p, "\x89PNG\r\n\x1a\n", 8);
	return p;
}

/* A customer with a relation and one follow-up, by `c`; the customer's
 * and the follow-up's ids. */
static bool make_followup(struct crmc *c, char cid[37], char fid[37])
{
	char phone[16], rid[37];
	it_phone(phone);
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)"附件客户";
	cu.phone = phone;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = (char *)"walk_in";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = code_of(e) == CRM__CODE__OK;
	it_free(e);
	if (!ok)
		return false;
	uuid_v7_new(fid);
	Crm__Followup f = CRM__FOLLOWUP__INIT;
	f.id = fid;
	f.relation_id = rid;
	f.method = (char *)"visit";
	f.type = (char *)"negotiation";
	f.content = (char *)"报价单已发";
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &f;
	Crm__Envelope freq = CRM__ENVELOPE__INIT;
	freq.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	freq.followup_add = &fa;
	e = it_call(c, &freq);
	ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "followup add: %s\n", e ? crmc_status_message(e) : "no answer");
	it_free(e);
	return ok;
}

static Crm__Envelope *begin(struct crmc *c, const char *id, const char *fid, const char *name,
			    const char *media, uint64_t size, const char *sha)
{
	Crm__AttachmentInfo a = CRM__ATTACHMENT_INFO__INIT;
	a.id = (char *)id;
	a.followup_id = (char *)fid;
	a.name = (char *)name;
	a.media_type = (char *)media;
	a.size = size;
	a.sha256 = (char *)sha;
	Crm__AttachmentBegin ab = CRM__ATTACHMENT_BEGIN__INIT;
	ab.attachment = &a;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_BEGIN;
	req.attachment_begin = &ab;
	return it_call(c, &req);
}

static uint64_t send_chunk(struct crmc *c, const char *id, uint64_t offset, const uint8_t *data,
			   size_t len)
{
	Crm__AttachmentChunk ch = CRM__ATTACHMENT_CHUNK__INIT;
	ch.id = (char *)id;
	ch.offset = offset;
	ch.data.data = (uint8_t *)data;
	ch.data.len = len;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_CHUNK;
	req.attachment_chunk = &ch;
	return crmc_send(c, &req);
}

static Crm__Envelope *wait_id(struct crmc *c, uint64_t id)
{
	char err[256];
	Crm__Envelope *e = crmc_wait(c, id, 60000, err, sizeof err);
	if (!e)
		fprintf(stderr, "no answer: %s\n", err);
	return e;
}

static Crm__Envelope *commit(struct crmc *c, const char *id)
{
	Crm__AttachmentCommit cm = CRM__ATTACHMENT_COMMIT__INIT;
	cm.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_COMMIT;
	req.attachment_commit = &cm;
	return it_call(c, &req);
}

/* Sends data in chunks of `chunk`, four unanswered at most; the code of the
 * first refusal, or OK. */
static Crm__Code send_all(struct crmc *c, const char *id, const uint8_t *data, size_t len,
			  size_t chunk)
{
	uint64_t pending[4];
	int n = 0;
	size_t sent = 0;
	Crm__Code code = CRM__CODE__OK;
	while (sent < len || n > 0) {
		if (sent < len && n < 4) {
			size_t k = len - sent < chunk ? len - sent : chunk;
			pending[n++] = send_chunk(c, id, sent, data + sent, k);
			sent += k;
			continue;
		}
		Crm__Envelope *e = wait_id(c, pending[0]);
		if (code == CRM__CODE__OK)
			code = code_of(e);
		it_free(e);
		memmove(pending, pending + 1, (size_t)(n - 1) * sizeof pending[0]);
		n--;
	}
	return code;
}

/* Begin, chunks, commit. The commit's reply (NULL when an earlier step was
 * refused: *code says how). */
static Crm__Envelope *upload(struct crmc *c, const char *id, const char *fid, const char *name,
			     const char *media, const uint8_t *data, size_t len, Crm__Code *code)
{
	char sha[65];
	sha256_hex(data, len, sha);
	Crm__Envelope *e = begin(c, id, fid, name, media, len, sha);
	*code = code_of(e);
	if (*code != CRM__CODE__OK) {
		fprintf(stderr, "begin: %s\n", e ? crmc_status_message(e) : "-");
		it_free(e);
		return NULL;
	}
	it_free(e);
	if ((*code = send_all(c, id, data, len, CHUNK)) != CRM__CODE__OK)
		return NULL;
	e = commit(c, id);
	*code = code_of(e);
	return e;
}

/* Streams the attachment back with `credit` frames of credit; the bytes
 * (malloc'd) and the metadata of the first frame. */
static uint8_t *download(struct crmc *c, const char *id, uint32_t credit, size_t *len,
			 char sha[65], Crm__Code *code)
{
	Crm__AttachmentGet ag = CRM__ATTACHMENT_GET__INIT;
	ag.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_GET;
	req.attachment_get = &ag;
	req.credit = credit;
	uint64_t rid = crmc_send(c, &req);
	uint8_t *out = NULL;
	size_t size = 0;
	*len = 0;
	*code = CRM__CODE__OK;
	sha[0] = '\0';
	for (bool more = true; more;) {
		Crm__Envelope *e = wait_id(c, rid);
		if (!e || code_of(e) != CRM__CODE__OK ||
		    e->body_case != CRM__ENVELOPE__BODY_ATTACHMENT_DATA) {
			*code = e ? code_of(e) : CRM__CODE__UNAVAILABLE;
			it_free(e);
			free(out);
			return NULL;
		}
		Crm__AttachmentData *ad = e->attachment_data;
		if (ad->attachment) {
			size = ad->attachment->size;
			snprintf(sha, 65, "%s", ad->attachment->sha256);
			out = malloc(size ? size : 1);
		}
		if (out && ad->offset == *len && *len + ad->data.len <= size) {
			memcpy(out + *len, ad->data.data, ad->data.len);
			*len += ad->data.len;
		}
		more = e->more;
		if (more)
			crmc_stream_credit(c, rid, 1);
		it_free(e);
	}
	return out;
}

static long rows_of(const char *id)
{
	return db_long("SELECT (SELECT count(*) FROM crm.attachments WHERE id = $1::uuid)"
		       " + (SELECT count(*) FROM crm.attachment_chunks WHERE attachment_id = $1::uuid)",
		       id);
}

/* ------------------------------------------------------------ tests */

static void test_round_trip(struct crmc *c, const char *fid, const char *name,
			    const char *media, const uint8_t *data, size_t len)
{
	char id[37], sha[65], got_sha[65];
	uuid_v7_new(id);
	sha256_hex(data, len, sha);
	Crm__Code code;
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	Crm__Envelope *e = upload(c, id, fid, name, media, data, len, &code);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(code == CRM__CODE__OK);
	CHECK(e && e->attachment_reply && e->attachment_reply->stored &&
	      !e->attachment_reply->existed);
	if (e && e->attachment_reply && e->attachment_reply->attachment) {
		CHECK_STR(e->attachment_reply->attachment->sha256, sha);
		CHECK(e->attachment_reply->attachment->size == len);
		CHECK_STR(e->attachment_reply->attachment->name, name);
		CHECK_STR(e->attachment_reply->attachment->uploaded_by, "att.consultant1");
	}
	it_free(e);
	size_t got_len;
	uint8_t *got = download(c, id, 2, &got_len, got_sha, &code);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	CHECK(code == CRM__CODE__OK && got);
	CHECK(got_len == len && got && memcmp(got, data, len) == 0);
	CHECK_STR(got_sha, sha);
	char check[65] = "";
	if (got)
		sha256_hex(got, got_len, check);
	CHECK_STR(check, sha); /* the bytes read back hash to what was stored */
	free(got);
	printf("round trip of %zu bytes: upload %.0f ms, download %.0f ms\n", len,
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	       (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6);
	/* The outbox carries the metadata, never the bytes. */
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'attachment'"
		      " AND entity_id = $1::uuid", id) == 1);
	CHECK(db_long("SELECT max(octet_length(payload)) FROM crm.outbox WHERE entity = 'attachment'"
		      " AND entity_id = $1::uuid", id) < 600);
}

static void test_limit(struct crmc *c, const char *fid)
{
	char id[37], sha[65];
	Crm__Code code;
	uint8_t *data = png_bytes(LIMIT + 1, 7);

	/* Exactly 10 MiB is allowed. */
	uuid_v7_new(id);
	Crm__Envelope *e = upload(c, id, fid, "limit.png", "image/png", data, LIMIT, &code);
	CHECK(code == CRM__CODE__OK && e && e->attachment_reply->stored);
	it_free(e);

	/* One byte more is refused at begin, before any byte is sent. */
	uuid_v7_new(id);
	sha256_hex(data, LIMIT + 1, sha);
	e = begin(c, id, fid, "big.png", "image/png", LIMIT + 1, sha);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "attachment.size");
	CHECK(e && strstr(crmc_status_message(e), "10 MiB"));
	it_free(e);
	CHECK(rows_of(id) == 0);

	/* Chunks that run past the declared size are refused too. */
	uuid_v7_new(id);
	sha256_hex(data, 1000, sha);
	e = begin(c, id, fid, "short.png", "image/png", 1000, sha);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	e = wait_id(c, send_chunk(c, id, 0, data, 1001));
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "data");
	it_free(e);
	CHECK(rows_of(id) == 0);
	free(data);
}

static void test_refusals_store_nothing(struct crmc *c, const char *fid)
{
	char id[37], sha[65];
	uint8_t *data = png_bytes(3000, 11);

	/* A wrong hash: every byte arrives, the commit is refused. */
	uuid_v7_new(id);
	sha256_hex(data, 2999, sha);
	Crm__Envelope *e = begin(c, id, fid, "hash.png", "image/png", 3000, sha);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	CHECK(send_all(c, id, data, 3000, 1000) == CRM__CODE__OK);
	CHECK(rows_of(id) == 4); /* the row and three chunks, until the commit */
	e = commit(c, id);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "sha256");
	CHECK(e && strstr(crmc_status_message(e), sha));
	it_free(e);
	CHECK(rows_of(id) == 0);
	e = commit(c, id); /* and it stays refused */
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);

	/* Fewer bytes than declared. */
	uuid_v7_new(id);
	sha256_hex(data, 3000, sha);
	e = begin(c, id, fid, "size.png", "image/png", 3000, sha);
	it_free(e);
	CHECK(send_all(c, id, data, 2000, 1000) == CRM__CODE__OK);
	e = commit(c, id);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "size");
	it_free(e);
	CHECK(rows_of(id) == 0);

	/* A chunk out of order. */
	uuid_v7_new(id);
	e = begin(c, id, fid, "gap.png", "image/png", 3000, sha);
	it_free(e);
	e = wait_id(c, send_chunk(c, id, 1000, data + 1000, 1000));
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "offset");
	it_free(e);
	CHECK(rows_of(id) == 0);

	/* Overlapping chunks, pipelined: the second is refused, and the third
	 * finds the upload refused. */
	uuid_v7_new(id);
	e = begin(c, id, fid, "overlap.png", "image/png", 3000, sha);
	it_free(e);
	uint64_t a = send_chunk(c, id, 0, data, 1000);
	uint64_t b = send_chunk(c, id, 500, data + 500, 1000);
	uint64_t k = send_chunk(c, id, 1500, data + 1500, 1000);
	e = wait_id(c, a);
	it_free(e);
	e = wait_id(c, b);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "offset");
	it_free(e);
	e = wait_id(c, k);
	CHECK(code_of(e) != CRM__CODE__OK);
	it_free(e);
	CHECK(rows_of(id) == 0);

	/* Not the file its media type says. */
	uuid_v7_new(id);
	const char *text = "just some text, no PDF at all";
	sha256_hex((const uint8_t *)text, strlen(text), sha);
	e = begin(c, id, fid, "fake.pdf", "application/pdf", strlen(text), sha);
	it_free(e);
	e = wait_id(c, send_chunk(c, id, 0, (const uint8_t *)text, strlen(text)));
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "attachment.media_type");
	it_free(e);
	CHECK(rows_of(id) == 0);

	/* A media type outside the list, a name with a path. */
	e = begin(c, id, fid, "x.exe", "application/x-msdownload", 3000, sha);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "attachment.media_type");
	it_free(e);
	e = begin(c, id, fid, "../etc/passwd", "text/plain", 3000, sha);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "attachment.name");
	it_free(e);
	free(data);
}

static void test_retry_and_scope(struct crmc *c, const char *fid, struct crmc *other_store,
				 struct crmc *colleague)
{
	char id[37], sha[65];
	Crm__Code code;
	const char *text = "报价：途观L 两驱豪华版 23.8 万\n";
	size_t len = strlen(text);
	uuid_v7_new(id);
	Crm__Envelope *e = upload(c, id, fid, "报价.txt", "text/plain", (const uint8_t *)text, len,
				  &code);
	CHECK(code == CRM__CODE__OK);
	it_free(e);
	sha256_hex((const uint8_t *)text, len, sha);

	/* The commit sent again (a lost answer), on this connection and another. */
	e = commit(c, id);
	CHECK(code_of(e) == CRM__CODE__OK && e->attachment_reply->existed &&
	      e->attachment_reply->stored);
	it_free(e);
	struct crmc *again = login_user("att.consultant1", PASSWORD);
	e = again ? commit(again, id) : NULL;
	CHECK(code_of(e) == CRM__CODE__OK && e->attachment_reply->existed);
	it_free(e);
	/* A begin sent again: stored already, nothing to send. */
	e = again ? begin(again, id, fid, "报价.txt", "text/plain", len, sha) : NULL;
	if (code_of(e) != CRM__CODE__OK)
		fprintf(stderr, "begin again: %s\n", e ? crmc_status_message(e) : "-");
	CHECK(code_of(e) == CRM__CODE__OK && e->attachment_reply->existed);
	it_free(e);
	if (again)
		crmc_close(again);
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'attachment'"
		      " AND entity_id = $1::uuid", id) == 1);

	/* The list shows it; another store's consultant and a colleague who
	 * does not own the customer read nothing of it. */
	char *ids[] = {(char *)fid};
	Crm__AttachmentList al = CRM__ATTACHMENT_LIST__INIT;
	al.followup_ids = ids;
	al.n_followup_ids = 1;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_LIST;
	req.attachment_list = &al;
	e = it_call(c, &req);
	bool listed = false;
	for (size_t i = 0; e && e->attachment_page && i < e->attachment_page->n_attachments; i++)
		listed |= !strcmp(e->attachment_page->attachments[i]->id, id);
	CHECK(listed);
	it_free(e);
	struct crmc *outsiders[] = {other_store, colleague};
	for (int i = 0; i < 2; i++) {
		if (!outsiders[i]) {
			CHECK(!"outsider logged in");
			continue;
		}
		size_t got_len;
		char got_sha[65];
		uint8_t *got = download(outsiders[i], id, 8, &got_len, got_sha, &code);
		CHECK(!got && code == CRM__CODE__NOT_FOUND);
		free(got);
		e = it_call(outsiders[i], &req);
		CHECK(code_of(e) == CRM__CODE__OK && e->attachment_page->n_attachments == 0);
		it_free(e);
		e = begin(outsiders[i], id, fid, "x.txt", "text/plain", len, sha);
		CHECK(code_of(e) != CRM__CODE__OK);
		it_free(e);
	}
}

/* The server sends no more frames than the client allowed. */
static void test_download_waits_for_credit(struct crmc *c, const char *fid)
{
	char id[37];
	Crm__Code code;
	uint8_t *data = png_bytes(3 * CHUNK, 5);
	uuid_v7_new(id);
	Crm__Envelope *e = upload(c, id, fid, "three.png", "image/png", data, 3 * CHUNK, &code);
	it_free(e);
	Crm__AttachmentGet ag = CRM__ATTACHMENT_GET__INIT;
	ag.id = id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_GET;
	req.attachment_get = &ag;
	req.credit = 1;
	uint64_t rid = crmc_send(c, &req);
	e = wait_id(c, rid);
	CHECK(e && e->more && e->attachment_data && e->attachment_data->data.len == CHUNK);
	it_free(e);
	char err[128];
	e = crmc_recv(c, 500, err, sizeof err);
	CHECK(e == NULL); /* out of credit: nothing comes */
	it_free(e);
	crmc_stream_credit(c, rid, 8);
	int frames = 0;
	for (bool more = true; more; frames++) {
		e = wait_id(c, rid);
		more = e && e->more;
		it_free(e);
	}
	CHECK(frames == 2);
	free(data);
}

static void test_abandoned_upload(const char *fid)
{
	char id[37], sha[65];
	uint8_t *data = png_bytes(2000, 3);
	sha256_hex(data, 2000, sha);
	uuid_v7_new(id);
	struct crmc *c = login_user("att.consultant1", PASSWORD);
	if (!c) {
		CHECK(!"login");
		return;
	}
	Crm__Envelope *e = begin(c, id, fid, "half.png", "image/png", 2000, sha);
	it_free(e);
	e = wait_id(c, send_chunk(c, id, 0, data, 1000));
	CHECK(code_of(e) == CRM__CODE__OK && e->attachment_reply->received == 1000);
	it_free(e);
	CHECK(rows_of(id) == 2);

	/* Never visible while in progress, not even to its uploader. */
	struct crmc *reader = login_user("att.consultant1", PASSWORD);
	size_t got_len;
	char got_sha[65];
	Crm__Code code;
	uint8_t *got = reader ? download(reader, id, 8, &got_len, got_sha, &code) : NULL;
	CHECK(!got && code == CRM__CODE__NOT_FOUND);
	free(got);
	/* And the commit from another connection cannot finish it. */
	e = reader ? commit(reader, id) : NULL;
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	if (reader)
		crmc_close(reader);

	/* The connection goes: the upload goes with it. */
	crmc_close(c);
	long left = -1;
	for (int i = 0; i < 50 && left != 0; i++) {
		usleep(100 * 1000);
		left = rows_of(id);
	}
	CHECK(left == 0);

	/* An upload left by a crmd that died (its connection never closed
	 * here): the next begin sweeps it once it is an hour old. */
	struct crmc *stale = login_user("att.consultant1", PASSWORD);
	char stale_id[37];
	uuid_v7_new(stale_id);
	e = stale ? begin(stale, stale_id, fid, "stale.png", "image/png", 2000, sha) : NULL;
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	CHECK(db_long("WITH u AS (UPDATE crm.attachments SET touched_at = now() - interval '61 min'"
		      " WHERE id = $1::uuid RETURNING 1) SELECT count(*) FROM u", stale_id) == 1);
	uuid_v7_new(id);
	reader = login_user("att.consultant1", PASSWORD);
	e = reader ? begin(reader, id, fid, "fresh.png", "image/png", 2000, sha) : NULL;
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	CHECK(rows_of(stale_id) == 0);
	CHECK(rows_of(id) == 1);
	if (reader)
		crmc_close(reader);
	if (stale)
		crmc_close(stale);
	free(data);
}

/* Under the handlers, PostgreSQL holds crmd's own role to the scope: as
 * crmd, scoped as another store's consultant, neither the attachment nor
 * its bytes exist; scoped as the uploader, both do. */
static long count_as(const char *user, const char *id)
{
	PGresult *res = PQexec(db, "BEGIN");
	PQclear(res);
	const char *params[] = {user};
	res = PQexecParams(db,
			   "SELECT set_config('crm.user_id', u.id::text, true),"
			   " set_config('crm.role', u.role, true),"
			   " set_config('crm.store_id', coalesce(u.store_id::text, ''), true)"
			   " FROM crm.users u WHERE u.username = $1",
			   1, NULL, params, NULL, NULL, 0);
	PQclear(res);
	res = PQexec(db, "SET LOCAL ROLE crmd");
	PQclear(res);
	long n = db_long("SELECT (SELECT count(*) FROM crm.attachments WHERE id = $1::uuid)"
			 " + (SELECT count(*) FROM crm.attachment_chunks"
			 "    WHERE attachment_id = $1::uuid)", id);
	res = PQexec(db, "ROLLBACK");
	PQclear(res);
	return n;
}

static void test_row_level_security(struct crmc *c, const char *fid)
{
	char id[37];
	Crm__Code code;
	const char *text = "row-level security";
	uuid_v7_new(id);
	Crm__Envelope *e = upload(c, id, fid, "rls.txt", "text/plain", (const uint8_t *)text,
				  strlen(text), &code);
	CHECK(code == CRM__CODE__OK);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace"
		      " AND relname IN ('attachments', 'attachment_chunks')"
		      " AND relrowsecurity AND relforcerowsecurity", NULL) == 2);
	CHECK(count_as("att.consultant1", id) == 2);
	CHECK(count_as("att.sh01", id) == 0);
	CHECK(count_as("att.consultant2", id) == 0); /* a colleague: not their customer */
}

/* Erasing the customer deletes the bytes and the name; reads find nothing. */
static void test_erasure_deletes_the_bytes(struct crmc *c)
{
	char cid[37], fid[37], id[37];
	Crm__Code code;
	if (!make_followup(c, cid, fid)) {
		CHECK(!"follow-up");
		return;
	}
	const char *text = "身份证复印件";
	uuid_v7_new(id);
	Crm__Envelope *e = upload(c, id, fid, "身份证.txt", "text/plain", (const uint8_t *)text,
				  strlen(text), &code);
	CHECK(code == CRM__CODE__OK);
	it_free(e);
	struct crmc *admin = it_login_demo("group_admin", NULL);
	if (!admin) {
		CHECK(!"group admin");
		return;
	}
	Crm__CustomerErase ce = CRM__CUSTOMER_ERASE__INIT;
	ce.id = cid;
	ce.reason = (char *)"客户要求删除";
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_ERASE;
	req.customer_erase = &ce;
	e = it_call(admin, &req);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	crmc_close(admin);
	CHECK(db_long("SELECT count(*) FROM crm.attachment_chunks WHERE attachment_id = $1::uuid",
		      id) == 0);
	CHECK(db_long("SELECT count(*) FROM crm.attachments WHERE id = $1::uuid"
		      " AND name = '已删除' AND erased_at IS NOT NULL", id) == 1);
	size_t got_len;
	char got_sha[65];
	uint8_t *got = download(c, id, 8, &got_len, got_sha, &code);
	CHECK(!got && code == CRM__CODE__NOT_FOUND);
	free(got);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(it_add_user(db, "att.consultant1", "安一", "consultant", "BJ01", PASSWORD));
	CHECK(it_add_user(db, "att.consultant2", "安二", "consultant", "BJ01", PASSWORD));
	CHECK(it_add_user(db, "att.sh01", "安三", "consultant", "SH01", PASSWORD));
	struct crmc *c = login_user("att.consultant1", PASSWORD);
	struct crmc *colleague = login_user("att.consultant2", PASSWORD);
	struct crmc *other_store = login_user("att.sh01", PASSWORD);
	char cid[37], fid[37];
	if (!c || !make_followup(c, cid, fid))
		return 1;

	const char *small = "客户要的报价单：途观L 330TSI，落地价 24.6 万。\n";
	test_round_trip(c, fid, "报价单.txt", "text/plain", (const uint8_t *)small, strlen(small));
	size_t big_len = 9900u * 1024u + 123u;
	uint8_t *big = png_bytes(big_len, 42);
	test_round_trip(c, fid, "展车照片.png", "image/png", big, big_len);
	free(big);
	test_limit(c, fid);
	test_refusals_store_nothing(c, fid);
	test_retry_and_scope(c, fid, other_store, colleague);
	test_download_waits_for_credit(c, fid);
	test_abandoned_upload(fid);
	test_row_level_security(c, fid);
	test_erasure_deletes_the_bytes(c);

	crmc_close(c);
	if (colleague)
		crmc_close(colleague);
	if (other_store)
		crmc_close(other_store);
	PQfinish(db);
	return it_summary();
}
