/* libFuzzer target: the decoding and validation of every request.
 *
 * Input: the payload of one frame. It goes where server/conn.c sends a frame
 * of a connection past its hello: the size limit (server.max_frame_bytes),
 * the Envelope's unpacking (frame_unpack_envelope), then dispatch()
 * (server/dispatch.c): the handler table, its login and role checks, and the
 * real handler, which
 * validates the request (text fields, phones, UUIDs, levels, list sizes...)
 * before its first database call. The database pool is a real one that was
 * never started, so that first call answers UNAVAILABLE at once, as it does
 * in crmd while PostgreSQL is down: every request ends synchronously, and
 * nothing after the first statement's result is reached.
 *
 * Each input runs once per session below (none; a consultant, a store
 * manager of store S01; the group admin), so role-dependent checks are
 * reached too.
 *
 * What must hold, else abort (a crash to libFuzzer):
 * - no sanitizer report and no leak;
 * - the request has ended: nothing is left in flight;
 * - exactly one response frame, with the request's id, that unpacks;
 * - its status is never INTERNAL; INVALID_ARGUMENT names a field;
 *   message and field are valid UTF-8 (protobuf strings must be);
 * - every text parameter handed to PostgreSQL is valid UTF-8 (the database
 *   refuses anything else; checks are crmd's to make, with a plain error),
 *   but for the known gaps listed below. pool_exec is wrapped at link time
 *   (-Wl,--wrap=pool_exec) to see them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "server.h"
#include "stmts.h"
#include "textcheck.h"

static struct crm_config cfg;
static struct server srv;
static uv_loop_t loop;

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_request: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

struct pool_query *__real_pool_exec(struct pool *p, int stmt, int nparams,
				    const char *const *values, const int *lengths,
				    const int *binary, pool_cb cb, void *arg);
struct pool_query *__wrap_pool_exec(struct pool *p, int stmt, int nparams,
				    const char *const *values, const int *lengths,
				    const int *binary, pool_cb cb, void *arg);

struct pool_query *__wrap_pool_exec(struct pool *p, int stmt, int nparams,
				    const char *const *values, const int *lengths,
				    const int *binary, pool_cb cb, void *arg)
{
	for (int i = 0; values && i < nparams; i++) {
		if (!values[i] || (binary && binary[i]))
			continue;
		if (!utf8_valid(values[i], strlen(values[i]))) {
			char what[96];
			snprintf(what, sizeof what, "%s, parameter $%d",
				 stmt >= 0 && stmt < STMT__COUNT ? stmt_defs[stmt].name : "?", i + 1);
			fail("a text parameter for PostgreSQL is not valid UTF-8", what);
		}
	}
	return __real_pool_exec(p, stmt, nparams, values, lengths, binary, cb, arg);
}

struct session_spec {
	bool active;
	Crm__Role role;
	const char *store_code;
};

static const struct session_spec sessions[] = {
	{false, CRM__ROLE__ROLE_UNSPECIFIED, ""},
	{true, CRM__ROLE__CONSULTANT, "S01"},
	{true, CRM__ROLE__STORE_MANAGER, "S01"},
	{true, CRM__ROLE__GROUP_ADMIN, ""},
};

static void session_fill(struct session *s, const struct session_spec *spec)
{
	memset(s, 0, sizeof *s);
	if (!spec->active)
		return;
	s->active = true;
	snprintf(s->session_id, sizeof s->session_id, "0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
	snprintf(s->user_id, sizeof s->user_id, "0192f0c4-8a6e-7c3b-9d2e-000000000001");
	snprintf(s->username, sizeof s->username, "fuzz");
	snprintf(s->store_code, sizeof s->store_code, "%s", spec->store_code);
	s->role = spec->role;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Refusals log at info and warn; errors (INTERNAL) stay visible. */
	log_set_level(LOG_ERROR);
	if (sodium_init() < 0)
		fail("libsodium failed to initialize", NULL);
	config_defaults(&cfg);
	if (uv_loop_init(&loop) != 0)
		fail("uv_loop_init failed", NULL);
	srv.loop = &loop;
	srv.cfg = &cfg;
	struct pool_options po = {
		.host = cfg.db_host,
		.port = cfg.db_port,
		.dbname = cfg.db_name,
		.user = cfg.db_user,
		.size = 1,
	};
	srv.pool = pool_new(&loop, &po); /* never started: always down */
	if (!srv.pool)
		fail("pool_new failed", NULL);
	return 0;
}

static bool utf8_or_null(const char *s) { return !s || utf8_valid(s, strlen(s)); }

/* The one response frame queued for request `id`. */
static void check_response(struct conn *c, uint64_t id)
{
	const uint8_t *payload = NULL;
	size_t plen = 0, used = 0;
	if (frame_parse(bytebuf_head(&c->out), bytebuf_len(&c->out), SIZE_MAX, &payload, &plen,
			&used, NULL) != FRAME_READY)
		fail("the request got no response", NULL);
	if (used != bytebuf_len(&c->out))
		fail("the request got more than one response frame", NULL);
	Crm__Envelope *resp = crm__envelope__unpack(NULL, plen, payload);
	if (!resp)
		fail("the response does not unpack", NULL);
	if (resp->id != id)
		fail("the response does not carry the request's id", NULL);
	const Crm__Status *st = resp->status;
	if (st) {
		if (st->code == CRM__CODE__INTERNAL)
			fail("a request answered INTERNAL", st->message);
		if (!utf8_or_null(st->message) || !utf8_or_null(st->field))
			fail("the status is not valid UTF-8", NULL);
		if (st->code != CRM__CODE__OK && (!st->message || !*st->message))
			fail("an error without a message", NULL);
		if (st->code == CRM__CODE__INVALID_ARGUMENT && (!st->field || !*st->field))
			fail("INVALID_ARGUMENT that names no field", st->message);
	}
	crm__envelope__free_unpacked(resp, NULL);
}

static void run_once(const uint8_t *data, size_t size, const struct session_spec *spec)
{
	Crm__Envelope *env = frame_unpack_envelope(data, size);
	if (!env)
		return; /* conn.c: "malformed frame", and the connection closes */
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		fail("out of memory", NULL);
	c->srv = &srv;
	c->state = CONN_READY;
	c->number = 1;
	snprintf(c->ts.peer, sizeof c->ts.peer, "127.0.0.1:40000");
	session_fill(&c->session, spec);
	uint64_t id = env->id;
	if (env->body_case == CRM__ENVELOPE__BODY_STREAM_CREDIT ||
	    env->body_case == CRM__ENVELOPE__BODY_STREAM_CANCEL) {
		/* Flow control for a stream; with none open, conn.c drops it. */
		crm__envelope__free_unpacked(env, NULL);
	} else {
		dispatch(c, env); /* takes ownership of env */
		if (c->in_flight != 0 || c->requests)
			fail("a request is still in flight after its database call failed", NULL);
		check_response(c, id);
	}
	srv.dirty = NULL; /* the flusher's list: only this connection */
	bytebuf_free(&c->in);
	bytebuf_free(&c->out);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > cfg.max_frame_bytes)
		return 0; /* conn.c refuses the frame before unpacking it */
	for (size_t i = 0; i < sizeof sessions / sizeof sessions[0]; i++)
		run_once(data, size, &sessions[i]);
	return 0;
}
