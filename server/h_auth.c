/* Login, session resume, logout, whoami, and the binding of a connection
 * that presented a store node's client certificate.
 *
 * A login first asks the database (crm.login_begin) whether the source
 * address is throttled or the account locked; only then is the password
 * checked. Password checks run Argon2id in libuv's thread pool, at most
 * auth.max_concurrent_hashes at a time (each hash takes tens of MiB); further
 * logins wait in a bounded FIFO. Every success and failure is recorded in the
 * audit log by the SQL functions, in the transaction that acts on it.
 * Tokens are 256 random bits; only their SHA-256 reaches the database. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "server.h"
#include "stmts.h"
#include "textcheck.h"

#define MAX_QUEUED_LOGINS 256

/* Unknown usernames are checked against this hash so that a wrong username
 * costs the same time as a wrong password. */
static char dummy_hash[crypto_pwhash_STRBYTES];

static void hash_start(struct server *srv, struct request *r);

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void token_hash_hex(const char *token, char out[65])
{
	uint8_t h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const uint8_t *)token, strlen(token));
	hex_encode(h, sizeof h, out);
}

/* The source address without its port, for the login records and the
 * audit log (h_audit.c uses it too). */
void auth_peer_ip(const struct conn *c, char *out, size_t cap)
{
	snprintf(out, cap, "%s", c->ts.peer);
	char *colon = strrchr(out, ':');
	if (colon)
		*colon = '\0';
}

/* "2026-11-25 14:05:09 UTC" */
static void format_utc(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void bind_session(struct conn *c, const char *session_id, const Crm__User *u)
{
	struct session *s = &c->session;
	memset(s, 0, sizeof *s);
	s->active = true;
	snprintf(s->session_id, sizeof s->session_id, "%s", session_id);
	snprintf(s->user_id, sizeof s->user_id, "%s", u->id);
	snprintf(s->username, sizeof s->username, "%s", u->username);
	snprintf(s->store_code, sizeof s->store_code, "%s", u->store_code);
	s->role = u->role;
}

static Crm__User *user_dup(const Crm__User *u)
{
	Crm__User *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	crm__user__init(d);
	d->id = strdup(u->id);
	d->username = strdup(u->username);
	d->display_name = strdup(u->display_name);
	d->role = u->role;
	d->store_code = strdup(u->store_code);
	d->store_name = strdup(u->store_name);
	return d;
}

static void on_session_open(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	struct conn *c = r->conn;
	bind_session(c, PQgetvalue(res, 0, 0), r->user);
	c->srv->stats.counters[ST_LOGIN_OK]++;
	log_info("auth.login", "conn=%llu user=%s role=%s", (unsigned long long)c->number,
		 r->user->username, role_name(r->user->role));
	Crm__LoginReply lr = CRM__LOGIN_REPLY__INIT;
	lr.token = r->token;
	lr.user = r->user;
	lr.expires_at = strtoll(PQgetvalue(res, 0, 1), NULL, 10) / 1000;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_LOGIN_REPLY;
	resp.login_reply = &lr;
	req_reply(r, &resp);
}

static void on_failure_recorded(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	r->conn->srv->stats.counters[ST_LOGIN_FAILED]++;
	if (err->code == CRM__CODE__OK && !PQgetisnull(res, 0, 0)) {
		char until[40];
		format_utc(strtoll(PQgetvalue(res, 0, 0), NULL, 10), until, sizeof until);
		log_info("auth.locked", "conn=%llu user=%s until=\"%s\"",
			 (unsigned long long)r->conn->number, r->env->login->username, until);
	}
	bool disabled = r->user_known && !r->user;
	if (r->user_known && r->password_ok && disabled)
		req_fail(r, CRM__CODE__UNAUTHENTICATED, NULL,
			 "this account is disabled: ask your store manager or the group admin");
	else if (r->user_known && r->password_ok && r->user->role == CRM__ROLE__STORE_NODE)
		req_fail(r, CRM__CODE__UNAUTHENTICATED, NULL,
			 "store node accounts sign in with their client certificate, not a password");
	else
		req_fail(r, CRM__CODE__UNAUTHENTICATED, NULL, "wrong username or password");
}

static void login_finish(struct request *r)
{
	struct conn *c = r->conn;
	const char *username = r->env->login->username;
	/* r->user is NULL for a disabled account (on_login_lookup). */
	bool disabled = r->user_known && !r->user;
	bool node = r->user && r->user->role == CRM__ROLE__STORE_NODE;
	if (!r->password_ok || !r->user_known || disabled || node) {
		char ip[64];
		auth_peer_ip(c, ip, sizeof ip);
		const char *reason = !r->user_known    ? "unknown user"
				     : !r->password_ok ? "wrong password"
				     : disabled         ? "account disabled"
							: "store node password login";
		log_info("auth.login_failed", "conn=%llu user=%s reason=\"%s\"",
			 (unsigned long long)c->number, username, reason);
		const char *params[] = {username, ip, reason, r->user_known ? r->user_id : NULL};
		req_db(r, STMT_LOGIN_FAIL, 4, params, NULL, NULL, on_failure_recorded);
		return;
	}
	uint8_t raw[32];
	randombytes_buf(raw, sizeof raw);
	hex_encode(raw, sizeof raw, r->token);
	char hash[65], ttl[16], ip[64];
	token_hash_hex(r->token, hash);
	snprintf(ttl, sizeof ttl, "%d", c->srv->cfg->session_ttl_s);
	auth_peer_ip(c, ip, sizeof ip);
	const char *params[] = {r->user->id, hash, ttl, ip};
	req_db(r, STMT_LOGIN_OPEN, 4, params, NULL, NULL, on_session_open);
}

static void hash_work(uv_work_t *w)
{
	struct request *r = w->data;
	r->password_ok = crypto_pwhash_str_verify(r->password_hash, r->password,
						  strlen(r->password)) == 0;
}

static void hash_done(uv_work_t *w, int status)
{
	struct request *r = w->data;
	struct server *srv = r->conn ? r->conn->srv : NULL;
	r->in_worker = false;
	if (status != 0)
		r->password_ok = false;
	if (!srv) {
		/* The connection went away while hashing; hand the slot on. */
		srv = (struct server *)r->work.loop->data;
		srv->hashes_running--;
		req_free(r);
		auth_hash_slot_freed(srv);
		return;
	}
	srv->hashes_running--;
	auth_hash_slot_freed(srv);
	login_finish(r);
}

static void hash_start(struct server *srv, struct request *r)
{
	srv->hashes_running++;
	r->in_worker = true;
	r->work.data = r;
	if (uv_queue_work(srv->loop, &r->work, hash_work, hash_done) != 0) {
		r->in_worker = false;
		srv->hashes_running--;
		req_fail(r, CRM__CODE__INTERNAL, NULL, "cannot schedule the password check");
	}
}

void auth_hash_slot_freed(struct server *srv)
{
	while (srv->hash_queue && srv->hashes_running < srv->cfg->max_concurrent_hashes) {
		struct request *r = srv->hash_queue;
		srv->hash_queue = r->hash_next;
		if (!srv->hash_queue)
			srv->hash_queue_tail = NULL;
		r->hash_next = NULL;
		r->hash_queued = false;
		srv->hash_queued--;
		if (!r->conn) {
			req_free(r);
			continue;
		}
		hash_start(srv, r);
	}
}

static void hash_enqueue(struct request *r)
{
	struct server *srv = r->conn->srv;
	if (srv->hashes_running < srv->cfg->max_concurrent_hashes) {
		hash_start(srv, r);
		return;
	}
	if (srv->hash_queued >= MAX_QUEUED_LOGINS) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL,
			 "too many logins at once: retry in a few seconds");
		return;
	}
	r->hash_queued = true;
	if (srv->hash_queue_tail)
		srv->hash_queue_tail->hash_next = r;
	else
		srv->hash_queue = r;
	srv->hash_queue_tail = r;
	srv->hash_queued++;
}

static void on_login_lookup(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	/* Columns: USER (0-5), password_hash 6, disabled 7, locked_until_ms 8,
	 * retry_after_s 9. */
	int retry_after = atoi(PQgetvalue(res, 0, 9));
	if (retry_after > 0) {
		char ip[64];
		auth_peer_ip(r->conn, ip, sizeof ip);
		log_info("auth.throttled", "conn=%llu addr=%s retry_after_s=%d",
			 (unsigned long long)r->conn->number, ip, retry_after);
		r->conn->srv->stats.counters[ST_LOGIN_FAILED]++;
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL,
			 "too many failed logins from %s: retry after %d seconds", ip, retry_after);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		r->user_known = false;
		r->password_hash = strdup(dummy_hash);
	} else {
		Crm__User u;
		row_to_user(res, 0, 0, &u);
		r->user_known = true;
		snprintf(r->user_id, sizeof r->user_id, "%s", u.id);
		if (!PQgetisnull(res, 0, 8)) {
			/* Locked: the attempt is already recorded; the password is not
			 * checked, so a lock cannot be used to test passwords. */
			char until[40];
			format_utc(strtoll(PQgetvalue(res, 0, 8), NULL, 10), until, sizeof until);
			log_info("auth.login_failed", "conn=%llu user=%s reason=\"account locked\"",
				 (unsigned long long)r->conn->number, u.username);
			r->conn->srv->stats.counters[ST_LOGIN_FAILED]++;
			req_fail(r, CRM__CODE__UNAUTHENTICATED, NULL,
				 "account %s is locked after repeated failed logins until %s; wait until"
				 " then, or ask the group admin to unlock it (crmctl user unlock %s)",
				 u.username, until, u.username);
			return;
		}
		r->password_hash = strdup(PQgetvalue(res, 0, 6));
		bool disabled = PQgetvalue(res, 0, 7)[0] == 't';
		r->user = disabled ? NULL : user_dup(&u);
		if (!disabled && !r->user) {
			req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
			return;
		}
	}
	if (!r->password_hash) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	hash_enqueue(r);
}

void auth_init(void)
{
	char pw[33];
	uint8_t raw[16];
	randombytes_buf(raw, sizeof raw);
	hex_encode(raw, sizeof raw, pw);
	if (crypto_pwhash_str(dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		log_error("auth.init", "reason=\"cannot compute the reference hash\"");
}

void h_login(struct request *r)
{
	const Crm__LoginRequest *in = r->env->login;
	if (!in->username || !*in->username) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "login.username", "username is required");
		return;
	}
	if (strlen(in->username) > 64) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "login.username",
			 "username is longer than 64 bytes");
		return;
	}
	if (!utf8_valid(in->username, strlen(in->username))) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "login.username",
			 "username is not valid UTF-8 text");
		return;
	}
	if (!in->password || !*in->password) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "login.password", "password is required");
		return;
	}
	if (strlen(in->password) > 1024) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "login.password",
			 "password is longer than 1024 bytes");
		return;
	}
	r->password = strdup(in->password);
	if (!r->password) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	char ip[64];
	auth_peer_ip(r->conn, ip, sizeof ip);
	const char *params[] = {in->username, ip};
	req_db(r, STMT_LOGIN_BEGIN, 2, params, NULL, NULL, on_login_lookup);
}

static void reply_session(struct request *r, const PGresult *res, int expires_col, int user_col)
{
	Crm__User u;
	row_to_user(res, 0, user_col, &u);
	Crm__SessionInfo si = CRM__SESSION_INFO__INIT;
	si.user = &u;
	si.expires_at = strtoll(PQgetvalue(res, 0, expires_col), NULL, 10) / 1000;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_SESSION;
	resp.session = &si;
	req_reply(r, &resp);
}

static void on_resume(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	Crm__User u;
	row_to_user(res, 0, 2, &u);
	bind_session(r->conn, PQgetvalue(res, 0, 0), &u);
	reply_session(r, res, 1, 2);
}

void h_resume(struct request *r)
{
	const char *token = r->env->resume->token;
	if (!token || strlen(token) != 64 || strspn(token, "0123456789abcdef") != 64) {
		req_fail(r, CRM__CODE__UNAUTHENTICATED, "resume.token",
			 "the saved session is not valid: log in again (crm login)");
		return;
	}
	char hash[65];
	token_hash_hex(token, hash);
	const char *params[] = {hash};
	req_db(r, STMT_SESSION_RESUME, 1, params, NULL, NULL, on_resume);
}

static void on_logout(void *arg, const PGresult *res, const struct pool_error *err)
{
	(void)res;
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK && err->code != CRM__CODE__UNAUTHENTICATED) {
		req_fail_db(r, err);
		return;
	}
	log_info("auth.logout", "conn=%llu user=%s", (unsigned long long)r->conn->number,
		 r->conn->session.username);
	memset(&r->conn->session, 0, sizeof r->conn->session);
	Crm__LogoutReply lr = CRM__LOGOUT_REPLY__INIT;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_LOGOUT_REPLY;
	resp.logout_reply = &lr;
	req_reply(r, &resp);
}

void h_logout(struct request *r)
{
	char ip[64];
	auth_peer_ip(r->conn, ip, sizeof ip);
	const char *params[] = {r->conn->session.session_id, ip};
	req_db(r, STMT_LOGOUT, 2, params, NULL, NULL, on_logout);
}

static void on_whoami(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	reply_session(r, res, 0, 1);
}

void h_whoami(struct request *r)
{
	const char *params[] = {r->conn->session.session_id};
	req_db(r, STMT_SESSION_WHOAMI, 1, params, NULL, NULL, on_whoami);
}

/* ------------------------------------------------------------ client certificates
 *
 * A connection whose TLS handshake carried a client certificate that
 * verified against server.client_ca (and is not in the revocation list the
 * handshake consults) sends its hello as usual; conn.c hands that hello to
 * h_cert_login instead of answering it, which asks crm.cert_login for a
 * session of the certificate's store node and answers the hello once the
 * connection is bound. The database has the last word: a serial revoked
 * since the list was loaded, or never issued, is refused there. */


static void on_cert_login(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	struct conn *c = r->conn;
	char serial[80] = "";
	tls_stream_peer_serial(&c->ts, serial, sizeof serial);
	if (err->code != CRM__CODE__OK || !PQgetisnull(res, 0, 8)) {
		char msg[400];
		Crm__Code code = err->code != CRM__CODE__OK ? err->code : CRM__CODE__UNAUTHENTICATED;
		if (err->code != CRM__CODE__OK)
			snprintf(msg, sizeof msg, "client certificate %s not checked: %s", serial,
				 err->message);
		else
			snprintf(msg, sizeof msg, "client certificate %s refused: %s", serial,
				 PQgetvalue(res, 0, 8));
		log_info("auth.cert_refused", "conn=%llu serial=%s reason=\"%s\"",
			 (unsigned long long)c->number, serial, msg);
		c->srv->stats.counters[ST_LOGIN_FAILED]++;
		req_fail(r, code, "hello", "%s", msg);
		conn_fail(c, code, msg);
		return;
	}
	Crm__User u;
	row_to_user(res, 0, 2, &u);
	bind_session(c, PQgetvalue(res, 0, 0), &u);
	c->srv->stats.counters[ST_LOGIN_OK]++;
	log_info("auth.cert_login", "conn=%llu user=%s store=%s serial=%s",
		 (unsigned long long)c->number, u.username, u.store_code, serial);
	Crm__HelloReply hr = CRM__HELLO_REPLY__INIT;
	conn_hello_reply(c, &hr);
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_HELLO_REPLY;
	resp.hello_reply = &hr;
	req_reply(r, &resp);
}

void h_cert_login(struct request *r)
{
	struct conn *c = r->conn;
	char serial[80];
	/* Only conn.c's first hello with a certificate comes here; a later
	 * hello is answered as before: it is not a request. */
	if (c->session.active || !tls_stream_peer_serial(&c->ts, serial, sizeof serial)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "body",
			 "this message is not a request the server accepts");
		return;
	}
	/* The session needs a token hash; nobody ever holds this token. */
	uint8_t raw[32];
	char token[65], hash[65], ttl[16], ip[64];
	randombytes_buf(raw, sizeof raw);
	hex_encode(raw, sizeof raw, token);
	token_hash_hex(token, hash);
	sodium_memzero(token, sizeof token);
	snprintf(ttl, sizeof ttl, "%d", c->srv->cfg->session_ttl_s);
	auth_peer_ip(c, ip, sizeof ip);
	const char *params[] = {serial, hash, ttl, ip};
	req_db(r, STMT_CERT_LOGIN, 4, params, NULL, NULL, on_cert_login);
}

/* The revocation list: loaded when crmd starts and every
 * auth.revocation_refresh_s after, into the TLS context the handshake
 * checks. The timer is unreferenced: it never keeps the loop alive. */
static uv_timer_t revocation_timer;
static bool revocation_timer_open;
static bool revocation_loading;
static int revoked_count = -1;   /* serials in the last list loaded */

static void revocation_refresh(uv_timer_t *t);

/* Next load after the configured period, or in a second after a failure. */
static void revocation_schedule(struct server *srv, bool loaded)
{
	if (!revocation_timer_open)
		return;
	uint64_t every = (uint64_t)srv->cfg->revocation_refresh_s * 1000;
	uv_timer_start(&revocation_timer, revocation_refresh,
		       loaded || every < 1000 ? every : 1000, 0);
}

static void on_revoked_certs(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct server *srv = arg;
	revocation_loading = false;
	bool loaded = false;
	const char **serials = NULL;
	if (err->code != CRM__CODE__OK) {
		log_warn("auth.revocation_load_failed", "reason=\"%s\"", err->message);
		goto out;
	}
	int n = PQntuples(res);
	serials = calloc(n ? (size_t)n : 1, sizeof *serials);
	if (!serials) {
		log_error("auth.revocation_load_failed", "reason=\"out of memory\"");
		goto out;
	}
	for (int i = 0; i < n; i++)
		serials[i] = PQgetvalue(res, i, 0);
	loaded = tls_server_set_revoked(srv->ssl_ctx, serials, (size_t)n);
	if (!loaded) {
		log_error("auth.revocation_load_failed", "reason=\"out of memory\"");
	} else if (n != revoked_count) {
		/* Logged on the first load and whenever the list changes. */
		log_info("auth.revocation_loaded", "revoked=%d", n);
		revoked_count = n;
	}
out:
	free(serials);
	revocation_schedule(srv, loaded);
}

static void revocation_refresh(uv_timer_t *t)
{
	struct server *srv = t->data;
	if (revocation_loading || !srv->pool)
		return;
	revocation_loading = true;
	/* A NULL return means the callback already ran (pool down) and has
	 * scheduled the next try. */
	pool_exec(srv->pool, STMT_REVOKED_CERTS, 0, NULL, NULL, NULL, on_revoked_certs, srv);
}

void auth_certs_start(struct server *srv)
{
	if (!srv->cfg->client_ca_file[0])
		return;
	uv_timer_init(srv->loop, &revocation_timer);
	revocation_timer.data = srv;
	revocation_timer_open = true;
	/* The first load runs once the loop does; until it succeeds client
	 * certificates are refused (tlsstream.c). */
	uv_timer_start(&revocation_timer, revocation_refresh, 0, 0);
	uv_unref((uv_handle_t *)&revocation_timer);
}

void auth_certs_stop(void)
{
	if (!revocation_timer_open)
		return;
	revocation_timer_open = false;
	uv_timer_stop(&revocation_timer);
	uv_close((uv_handle_t *)&revocation_timer, NULL);
}
