/* Chaos: crmd killed with SIGKILL under a write load loses no acknowledged
 * write and writes none twice; PostgreSQL restarted under load answers
 * UNAVAILABLE, then full service within 5 s; slow and hostile clients are
 * cut off by their limits while another client keeps its latency; 10,000
 * connections opened and dropped at once leave crmd's descriptors and
 * memory where they were.
 *
 * test_faults.c covers PostgreSQL stopped between single requests and
 * SIGTERM under load; test_limits.c a silent client on the fixture's crmd.
 * Everything here that kills or loads a crmd runs on a second crmd on the
 * fixture's database (it_crmd_spawn), except the PostgreSQL restart, which
 * runs against the fixture's own cluster and crmd: integration tests hold
 * the lock "crmd", so no other test runs meanwhile. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "itest.h"
#include "textcheck.h"
#include "tlsstream.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- crmd seen from outside */

static int proc_fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* VmRSS in KiB, -1 when unknown. */
static long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

static int log_count(const char *log, const char *needle)
{
	FILE *f = fopen(log, "r");
	char line[4096];
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static bool log_has(const char *log, const char *needle)
{
	return log_count(log, needle) > 0;
}

/* The reason crmd logged for closing the connection from local port
 * `port` (event=conn.close ... peer=127.0.0.1:PORT ... reason="..."). */
static bool logged_close(const char *log, int port, char *reason, size_t cap)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return false;
	char line[4096], peer[48];
	snprintf(peer, sizeof peer, " peer=127.0.0.1:%d ", port);
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		if (!strstr(line, "event=conn.close") || !strstr(line, peer))
			continue;
		const char *r = strstr(line, "reason=\"");
		const char *end = r ? strchr(r + 8, '"') : NULL;
		if (r && end)
			snprintf(reason, cap, "%.*s", (int)(end - r - 8), r + 8);
		found = true;
	}
	fclose(f);
	return found;
}

/* ---- a client without the client library, for what it cannot do */

static SSL_CTX *raw_ctx;

static int tcp_connect(const char *server, int rcvbuf, bool nonblocking)
{
	const char *colon = strrchr(server, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static int local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	return getsockname(fd, (struct sockaddr *)&sa, &len) == 0 ? ntohs(sa.sin_port) : -1;
}

static bool pack_frame(struct bytebuf *out, const Crm__Envelope *env)
{
	return frame_append_envelope(out, env);
}

static void pack_hello(struct bytebuf *out)
{
	Crm__Hello h = CRM__HELLO__INIT;
	h.protocol_version = CRM__PROTOCOL_VERSION__PROTOCOL_VERSION;
	h.client_name = "chaos";
	h.client_version = "1";
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.id = 1;
	env.body_case = CRM__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	pack_frame(out, &env);
}

static void pack_ping(struct bytebuf *out, uint64_t id)
{
	Crm__Ping p = CRM__PING__INIT;
	p.nonce = id;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.id = id;
	env.body_case = CRM__ENVELOPE__BODY_PING;
	env.ping = &p;
	pack_frame(out, &env);
}

static bool ssl_write_all(SSL *ssl, const uint8_t *p, size_t n)
{
	size_t written;
	while (n > 0) {
		if (SSL_write_ex(ssl, p, n, &written) != 1)
			return false;
		p += written;
		n -= written;
	}
	return true;
}

/* Reads one frame of up to 16 KiB (blocking) when nothing else is on the
 * way; NULL when the connection ended. */
static Crm__Envelope *ssl_read_env(SSL *ssl)
{
	uint8_t buf[16384];
	size_t have = 0, got, len = 0;
	while (have < 4 || have < 4 + len) {
		if (have == sizeof buf || SSL_read_ex(ssl, buf + have, sizeof buf - have, &got) != 1)
			return NULL;
		have += got;
		if (have >= 4)
			len = ((size_t)buf[0] << 24) | ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) |
			      buf[3];
	}
	return crm__envelope__unpack(NULL, len, buf + 4);
}

/* TLS and the hello over a blocking socket already connected. */
static SSL *raw_tls_hello(int fd)
{
	SSL *ssl = SSL_new(raw_ctx);
	if (!ssl)
		return NULL;
	SSL_set_fd(ssl, fd);
	struct bytebuf hello = {0};
	pack_hello(&hello);
	Crm__Envelope *reply = NULL;
	bool ok = SSL_connect(ssl) == 1 &&
		  ssl_write_all(ssl, bytebuf_head(&hello), bytebuf_len(&hello)) &&
		  (reply = ssl_read_env(ssl)) != NULL && crmc_status(reply) == CRM__CODE__OK;
	it_free(reply);
	bytebuf_free(&hello);
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* crmc_recv's timeout runs on the connection's own loop, whose clock is
 * read when that loop last ran: a connection left alone for longer than the
 * timeout finds its timer already due, and the loop then waits for I/O with
 * no timer left. So the loads below call it only while an answer is
 * pending, and a watchdog bounds each test instead. */
static void on_watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_chaos: a test ran past its watchdog (hung?)\n";
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

/* ---- 1. SIGKILL under a write load */

#define K9_CONNS 4
#define K9_WINDOW 32
#define K9_MAX 60000

struct write_rec {
	char id[37];
	char phone[16];      /* as sent: 11 digits */
	bool acked;          /* the client saw OK */
	bool answered;       /* the client saw any answer */
};

/* How the database holds each write of `w[0..n)` picked by `pick`: rows
 * with its id, with its phone, its phone row, its store relations, outbox
 * records of the customer and of its relations. */
struct held {
	int by_id, by_phone, phone_rows, relations, outbox_customer, outbox_relation;
};

static bool held_by_db(PGconn *db, const struct write_rec *w, const int *pick, int n,
		       struct held *out)
{
	size_t cap = (size_t)n * 64 + 16;
	char *ids = malloc(cap), *phones = malloc(cap);
	size_t a = 0, b = 0;
	ids[a++] = '{';
	phones[b++] = '{';
	for (int i = 0; i < n; i++) {
		a += (size_t)snprintf(ids + a, cap - a, "%s%s", i ? "," : "", w[pick[i]].id);
		b += (size_t)snprintf(phones + b, cap - b, "%s+86%s", i ? "," : "",
				      w[pick[i]].phone);
	}
	snprintf(ids + a, cap - a, "}");
	snprintf(phones + b, cap - b, "}");
	const char *params[] = {ids, phones};
	/* Superuser: row-level security does not hide anything here. Outbox
	 * counts are grouped once rather than looked up per row (no index on
	 * entity_id). */
	PGresult *res = PQexecParams(
		db,
		"SELECT (SELECT count(*) FROM crm.customers c WHERE c.id = t.id),"
		"       (SELECT count(*) FROM crm.customers c WHERE c.phone = t.phone),"
		"       (SELECT count(*) FROM crm.customer_phones p"
		"         WHERE p.phone = t.phone AND p.customer_id = t.id),"
		"       (SELECT count(*) FROM crm.relations r WHERE r.customer_id = t.id),"
		"       coalesce(oc.n, 0), coalesce(orl.n, 0)"
		"  FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS t(id, phone, ord)"
		"  LEFT JOIN (SELECT o.entity_id, count(*) AS n FROM crm.outbox o"
		"              WHERE o.entity = 'customer' GROUP BY 1) oc ON oc.entity_id = t.id"
		"  LEFT JOIN (SELECT r.customer_id, count(*) AS n FROM crm.outbox o"
		"               JOIN crm.relations r ON r.id = o.entity_id"
		"              WHERE o.entity = 'relation' GROUP BY 1) orl ON orl.customer_id = t.id"
		" ORDER BY t.ord",
		2, NULL, params, NULL, NULL, 0);
	free(ids);
	free(phones);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == n;
	if (!ok)
		fprintf(stderr, "held_by_db: %s\n", PQresultErrorMessage(res));
	for (int i = 0; ok && i < n; i++) {
		out[i].by_id = atoi(PQgetvalue(res, i, 0));
		out[i].by_phone = atoi(PQgetvalue(res, i, 1));
		out[i].phone_rows = atoi(PQgetvalue(res, i, 2));
		out[i].relations = atoi(PQgetvalue(res, i, 3));
		out[i].outbox_customer = atoi(PQgetvalue(res, i, 4));
		out[i].outbox_relation = atoi(PQgetvalue(res, i, 5));
	}
	PQclear(res);
	return ok;
}

static bool held_once(const struct held *h)
{
	return h->by_id == 1 && h->by_phone == 1 && h->phone_rows == 1 && h->relations == 1 &&
	       h->outbox_customer == 1 && h->outbox_relation == 1;
}

static bool held_not_at_all(const struct held *h)
{
	return h->by_id == 0 && h->by_phone == 0 && h->phone_rows == 0 && h->relations == 0 &&
	       h->outbox_customer == 0 && h->outbox_relation == 0;
}

static void test_sigkill_under_write_load_keeps_every_acknowledged_write_once(void)
{
	struct it_crmd a = {0}, b = {0};
	struct write_rec *w = calloc(K9_MAX, sizeof *w);
	static int index_of[K9_CONNS][K9_MAX];
	int *pick = calloc(K9_MAX, sizeof *pick);
	struct held *held = calloc(K9_MAX, sizeof *held);
	struct crmc *conns[K9_CONNS] = {0};
	PGconn *db = it_db();
	char mine[4096] = "{}"; /* the new crmd's database sessions */
	CHECK(it_crmd_spawn(&a, NULL, "event=db.up"));
	if (!a.pid)
		goto out;
	for (int k = 0; k < K9_CONNS; k++) {
		conns[k] = it_login_at(a.server, "consultant");
		CHECK(conns[k] != NULL);
		if (!conns[k])
			goto out;
	}
	/* Pipelined creates with client ids on every connection; SIGKILL after
	 * 1.5 s, then read until every connection has seen the end. */
	uint64_t base[K9_CONNS] = {0};
	int sent[K9_CONNS] = {0}, answered[K9_CONNS] = {0};
	int next = 0, acks = 0, errors = 0;
	bool killed = false;
	double t0 = now_s(), t_kill = 0;
	bool any_open = true;
	while (any_open && now_s() - t0 < 30) {
		any_open = false;
		for (int k = 0; k < K9_CONNS; k++) {
			struct crmc *c = conns[k];
			if (!crmc_is_open(c))
				continue;
			any_open = true;
			while (!killed && sent[k] - answered[k] < K9_WINDOW && next < K9_MAX &&
			       sent[k] < K9_MAX) {
				struct write_rec *r = &w[next];
				uuid_v7_new(r->id);
				it_phone(r->phone);
				uint64_t id = it_send_create(c, r->id, "断电测试", r->phone);
				if (sent[k] == 0)
					base[k] = id;
				index_of[k][id - base[k]] = next;
				sent[k]++;
				next++;
			}
			if (!killed && answered[k] == sent[k])
				continue; /* see on_watchdog */
			char err[256];
			Crm__Envelope *resp = crmc_recv(c, killed ? 200 : 20, err, sizeof err);
			if (!resp)
				continue;
			if (resp->id != 0 && resp->id >= base[k] && resp->id - base[k] < (uint64_t)sent[k]) {
				struct write_rec *r = &w[index_of[k][resp->id - base[k]]];
				answered[k]++;
				r->answered = true;
				if (crmc_status(resp) == CRM__CODE__OK) {
					r->acked = true;
					acks++;
				} else {
					errors++;
					if (errors < 5)
						fprintf(stderr, "create: %s: %s\n",
							crmc_code_name(crmc_status(resp)),
							crmc_status_message(resp));
				}
			}
			it_free(resp);
		}
		if (!killed && now_s() - t0 > 1.5) {
			/* The dead crmd's sessions, as it dies: those named
			 * after its pid (the fixture's crmd may open sessions
			 * meanwhile, its reminders' for one). */
			char app[32];
			snprintf(app, sizeof app, "crmd/%ld", (long)a.pid);
			const char *m = it_db_value(
				db,
				"SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity"
				" WHERE usename = 'crmd' AND application_name = $1",
				app);
			snprintf(mine, sizeof mine, "%s", m ? m : "{}");
			CHECK(strcmp(mine, "{}") != 0);
			CHECK(kill(a.pid, SIGKILL) == 0);
			int status = 0;
			CHECK(waitpid(a.pid, &status, 0) == a.pid && WIFSIGNALED(status) &&
			      WTERMSIG(status) == SIGKILL);
			a.pid = 0;
			killed = true;
			t_kill = now_s();
		}
	}
	CHECK(killed);
	/* Killed, so it never got to exit through it_crmd_stop's check. */
	CHECK(!log_has(a.log, "AddressSanitizer") && !log_has(a.log, "runtime error:"));
	int unanswered = 0;
	for (int i = 0; i < next; i++)
		unanswered += !w[i].answered;
	printf("sigkill: %d creates sent in %.2f s, %d acknowledged, %d errors, %d unanswered\n",
	       next, t_kill - t0, acks, errors, unanswered);
	CHECK(acks > 100);
	CHECK(errors == 0);
	CHECK(unanswered > 0); /* the kill did land mid-load */
	for (int k = 0; k < K9_CONNS; k++) {
		CHECK(!crmc_is_open(conns[k]));
		crmc_close(conns[k]);
		conns[k] = NULL;
	}

	/* A statement running when crmd died still commits: PostgreSQL finds
	 * its client gone only when it answers. Wait for the dead crmd's
	 * sessions to end before looking. */
	double t_gone = now_s();
	const char *left = "?";
	while (now_s() - t_gone < 10) {
		left = it_db_value(db,
				   "SELECT count(*) FROM pg_stat_activity WHERE usename = 'crmd'"
				   " AND pid = ANY($1::int[])",
				   mine);
		if (!left || !strcmp(left, "0"))
			break;
		usleep(20 * 1000);
	}
	if (!left || strcmp(left, "0"))
		fprintf(stderr, "sessions left: %s\n",
			it_db_value(db,
				    "SELECT string_agg(format('%s %s %s %s %s', pid, backend_start,"
				    " state, client_port, left(query, 60)), '; ') FROM pg_stat_activity"
				    " WHERE usename = 'crmd' AND pid = ANY($1::int[])",
				    mine));
	CHECK(left && !strcmp(left, "0"));
	printf("sigkill: the dead crmd's database sessions ended %.3f s after the kill\n",
	       now_s() - t_kill);

	/* Every acknowledged write is in the database once, whole; every other
	 * one is there whole or not at all. */
	for (int i = 0; i < next; i++)
		pick[i] = i;
	CHECK(held_by_db(db, w, pick, next, held));
	int acked_once = 0, acked_bad = 0, lost_committed = 0, lost_absent = 0, torn = 0;
	for (int i = 0; i < next; i++) {
		if (w[i].acked) {
			if (held_once(&held[i]))
				acked_once++;
			else if (acked_bad++ < 5)
				fprintf(stderr,
					"acknowledged %s: id %d phone %d phone rows %d relations %d outbox %d/%d\n",
					w[i].id, held[i].by_id, held[i].by_phone, held[i].phone_rows,
					held[i].relations, held[i].outbox_customer,
					held[i].outbox_relation);
		} else if (held_once(&held[i])) {
			lost_committed++;
		} else if (held_not_at_all(&held[i])) {
			lost_absent++;
		} else {
			torn++;
		}
	}
	printf("sigkill: acknowledged and held once %d/%d; not acknowledged: %d committed, "
	       "%d absent, %d partly written\n",
	       acked_once, acks, lost_committed, lost_absent, torn);
	CHECK(acked_bad == 0 && acked_once == acks);
	CHECK(torn == 0);

	/* A new crmd on the same database; the client retries what it did not
	 * see acknowledged, with the same ids, and a sample of what it did. */
	CHECK(it_crmd_spawn(&b, NULL, "event=db.up"));
	struct crmc *c = b.pid ? it_login_at(b.server, "consultant") : NULL;
	CHECK(c != NULL);
	int retried = 0, retry_ok = 0, retry_existed = 0, acked_existed = 0, acked_sampled = 0;
	int sample_every = acks / 50 > 0 ? acks / 50 : 1;
	for (int i = 0, seen_acked = 0; c && i < next; i++) {
		bool sample = w[i].acked && seen_acked++ % sample_every == 0;
		if (w[i].acked && !sample)
			continue;
		Crm__Envelope *resp = it_create(c, w[i].id, "断电测试", w[i].phone);
		bool ok = resp && crmc_status(resp) == CRM__CODE__OK && resp->customer;
		bool existed = ok && resp->customer->existed;
		if (!ok && resp)
			fprintf(stderr, "retry %s: %s: %s\n", w[i].id,
				crmc_code_name(crmc_status(resp)), crmc_status_message(resp));
		if (w[i].acked) {
			acked_sampled++;
			acked_existed += existed;
		} else {
			retried++;
			retry_ok += ok;
			retry_existed += existed;
		}
		CHECK(ok);
		it_free(resp);
	}
	printf("sigkill: retried %d unacknowledged (%d answered OK, %d existed), %d acknowledged "
	       "(%d existed)\n",
	       retried, retry_ok, retry_existed, acked_sampled, acked_existed);
	CHECK(retry_ok == retried);
	CHECK(retry_existed == lost_committed);
	CHECK(acked_existed == acked_sampled && acked_sampled > 0);
	if (c)
		crmc_close(c);

	/* Now every write the client made is there exactly once. */
	CHECK(held_by_db(db, w, pick, next, held));
	int once = 0;
	for (int i = 0; i < next; i++)
		once += held_once(&held[i]);
	printf("sigkill: after the retries %d/%d writes held exactly once\n", once, next);
	CHECK(once == next);
	CHECK(it_crmd_stop(&b));
out:
	PQfinish(db);
	for (int k = 0; k < K9_CONNS; k++)
		if (conns[k])
			crmc_close(conns[k]);
	if (a.pid > 0) {
		kill(a.pid, SIGKILL);
		waitpid(a.pid, NULL, 0);
	}
	if (b.pid > 0)
		it_crmd_stop(&b);
	free(w);
	free(pick);
	free(held);
}

/* ---- 2. PostgreSQL restarted under load */

#define PG_CONNS 4
#define PG_WINDOW 4
#define PG_MAX 400000
#define PG_OUTAGE_S 3

struct timed_req {
	double sent, answered;
	Crm__Code code;
	bool done;
};

/* Runs pg-stop, waits PG_OUTAGE_S, runs pg-start, and reports on `fd` the
 * monotonic time after each: "down T" and "up T". */
static void restart_postgres(int fd)
{
	char line[64];
	int rc = it_harness("pg-stop", NULL);
	snprintf(line, sizeof line, "down %.6f %d\n", now_s(), rc);
	if (write(fd, line, strlen(line)) < 0)
		_exit(1);
	sleep(PG_OUTAGE_S);
	rc = it_harness("pg-start", NULL);
	snprintf(line, sizeof line, "up %.6f %d\n", now_s(), rc);
	if (write(fd, line, strlen(line)) < 0)
		_exit(1);
	_exit(0);
}

static void test_postgres_restart_under_load_answers_unavailable_then_recovers(void)
{
	struct timed_req *reqs = calloc(PG_MAX, sizeof *reqs);
	static int index_of[PG_CONNS][PG_MAX];
	struct crmc *conns[PG_CONNS] = {0};
	pid_t crmd = (pid_t)atoi(it_env("CRMD_PID"));
	for (int k = 0; k < PG_CONNS; k++) {
		conns[k] = it_login("consultant");
		CHECK(conns[k] != NULL);
		if (!conns[k])
			goto out;
	}
	int pipefd[2];
	CHECK(pipe(pipefd) == 0);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	uint64_t base[PG_CONNS] = {0};
	int sent[PG_CONNS] = {0}, answered[PG_CONNS] = {0};
	double last_send[PG_CONNS] = {0};
	int next = 0, down_rc = -1, up_rc = -1;
	double t0 = now_s(), t_down = 0, t_up = 0;
	pid_t child = -1;
	char pbuf[256];
	size_t plen = 0;
	/* Load for 1 s, restart PostgreSQL, and keep loading until 8 s after it
	 * is back. Each connection keeps PG_WINDOW creates in flight and sends
	 * at most one every 2 ms, so the outage's quick refusals do not spin. */
	while (now_s() - t0 < 60 && !(t_up > 0 && now_s() - t_up > 8)) {
		if (child < 0 && now_s() - t0 > 1.0) {
			child = fork();
			if (child == 0) {
				close(pipefd[0]);
				restart_postgres(pipefd[1]);
			}
		}
		ssize_t n = read(pipefd[0], pbuf + plen, sizeof pbuf - 1 - plen);
		if (n > 0) {
			plen += (size_t)n;
			pbuf[plen] = '\0';
			char *p = strstr(pbuf, "down ");
			if (p && !t_down)
				sscanf(p, "down %lf %d", &t_down, &down_rc);
			p = strstr(pbuf, "up ");
			if (p && !t_up)
				sscanf(p, "up %lf %d", &t_up, &up_rc);
		}
		for (int k = 0; k < PG_CONNS; k++) {
			struct crmc *c = conns[k];
			if (!crmc_is_open(c))
				continue;
			double now = now_s();
			if (sent[k] - answered[k] < PG_WINDOW && now - last_send[k] >= 0.002 &&
			    next < PG_MAX) {
				char id[37], phone[16];
				uuid_v7_new(id);
				it_phone(phone);
				uint64_t rid = it_send_create(c, id, "重启测试", phone);
				crmc_flush(c);
				if (sent[k] == 0)
					base[k] = rid;
				index_of[k][rid - base[k]] = next;
				reqs[next].sent = now;
				sent[k]++;
				next++;
				last_send[k] = now;
			}
			if (answered[k] == sent[k])
				continue; /* see on_watchdog */
			char err[256];
			Crm__Envelope *resp = crmc_recv(c, 1, err, sizeof err);
			if (!resp)
				continue;
			if (resp->id >= base[k] && resp->id - base[k] < (uint64_t)sent[k]) {
				struct timed_req *r = &reqs[index_of[k][resp->id - base[k]]];
				r->answered = now_s();
				r->code = crmc_status(resp);
				r->done = true;
				answered[k]++;
			}
			it_free(resp);
		}
	}
	/* What is still in flight gets 5 s more. */
	for (int k = 0; k < PG_CONNS; k++) {
		char err[256];
		while (crmc_is_open(conns[k]) && answered[k] < sent[k]) {
			Crm__Envelope *resp = crmc_recv(conns[k], 5000, err, sizeof err);
			if (!resp)
				break;
			if (resp->id >= base[k] && resp->id - base[k] < (uint64_t)sent[k]) {
				struct timed_req *r = &reqs[index_of[k][resp->id - base[k]]];
				r->answered = now_s();
				r->code = crmc_status(resp);
				r->done = true;
				answered[k]++;
			}
			it_free(resp);
		}
	}
	int status = -1;
	if (child > 0)
		waitpid(child, &status, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	CHECK(child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(down_rc == 0 && up_rc == 0 && t_down > 0 && t_up > 0);

	int ok = 0, unavailable = 0, other = 0, unanswered = 0, ok_in_outage = 0;
	int unavailable_in_outage = 0;
	double slowest = 0;
	long last_bad = -1;
	for (int i = 0; i < next; i++) {
		struct timed_req *r = &reqs[i];
		if (!r->done) {
			unanswered++;
			last_bad = i;
			continue;
		}
		double took = r->answered - r->sent;
		if (took > slowest)
			slowest = took;
		if (r->code == CRM__CODE__OK) {
			ok++;
			/* Sent after the stop, answered within the outage's sleep:
			 * there was no database to commit it. */
			ok_in_outage += r->sent > t_down && r->answered < t_down + PG_OUTAGE_S;
		} else {
			last_bad = i;
			if (r->code == CRM__CODE__UNAVAILABLE) {
				unavailable++;
				unavailable_in_outage += r->sent > t_down && r->sent < t_up;
			} else if (other++ < 5) {
				fprintf(stderr, "restart: request answered %s\n", crmc_code_name(r->code));
			}
		}
	}
	/* Full service: from the first request after which every request was
	 * answered OK, measured from the moment PostgreSQL accepted connections
	 * again (pg-start returns after pg_isready). */
	double full = last_bad + 1 < next ? reqs[last_bad + 1].sent : -1;
	double recovery = full - t_up;
	double steady = t_up + 8 - full;
	printf("restart: %d requests: %d OK, %d UNAVAILABLE (%d sent during the outage), %d other, "
	       "%d unanswered; slowest answer %.3f s\n",
	       next, ok, unavailable, unavailable_in_outage, other, unanswered, slowest);
	printf("restart: PostgreSQL down %.2f s (stop to start); full service %.2f s after it "
	       "accepted connections again, then %.1f s without an error\n",
	       t_up - t_down, recovery, steady);
	CHECK(other == 0);
	CHECK(unanswered == 0);
	CHECK(slowest < 2.0);
	CHECK(unavailable_in_outage > 0);
	CHECK(ok > 0 && full > 0);
	CHECK(recovery < 5.0);
	CHECK(steady > 2.0);
	CHECK(ok_in_outage == 0);
	for (int k = 0; k < PG_CONNS; k++)
		CHECK(crmc_is_open(conns[k]));
	/* The fixture's crmd is the same process, still up. */
	CHECK(crmd > 0 && kill(crmd, 0) == 0 && (pid_t)atoi(it_env("CRMD_PID")) == crmd);
out:
	for (int k = 0; k < PG_CONNS; k++)
		if (conns[k])
			crmc_close(conns[k]);
	free(reqs);
}

/* ---- 3. Slow clients */

#define SLOW_HANDSHAKE_MS 1500
#define SLOW_FRAME_MS 2000
#define SLOW_SEND_MS 2000
#define GOOD_BOUND_S 0.200

/* Never reads: logs in, then asks for a page of 500 customers every 50 ms
 * (80 at most, about 12 MiB of answers: more than the kernel's socket
 * buffers take, 4 MiB at most here, plus crmd's max_output_bytes), then
 * sleeps. Pings would need 300,000 requests for the same; one page at a
 * time keeps the database free for the other client. */
static void never_reads(int fd)
{
	SSL *ssl = raw_tls_hello(fd);
	char user[128], pw[128];
	if (!ssl || !it_demo_user("group_admin", NULL, user, sizeof user, pw, sizeof pw))
		_exit(2);
	Crm__LoginRequest lr = CRM__LOGIN_REQUEST__INIT;
	lr.username = user;
	lr.password = pw;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.id = 2;
	env.body_case = CRM__ENVELOPE__BODY_LOGIN;
	env.login = &lr;
	struct bytebuf out = {0};
	pack_frame(&out, &env);
	Crm__Envelope *reply = NULL;
	if (!ssl_write_all(ssl, bytebuf_head(&out), bytebuf_len(&out)) ||
	    !(reply = ssl_read_env(ssl)) || crmc_status(reply) != CRM__CODE__OK) {
		fprintf(stderr, "never_reads: login failed\n");
		_exit(2);
	}
	it_free(reply);
	bytebuf_free(&out);
	for (int i = 0; i < 80; i++) {
		Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
		cl.page_size = 500;
		cl.limit = 500;
		Crm__Envelope list = CRM__ENVELOPE__INIT;
		list.id = 3 + (uint64_t)i;
		list.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
		list.customer_list = &cl;
		pack_frame(&out, &list);
		bool ok = ssl_write_all(ssl, bytebuf_head(&out), bytebuf_len(&out));
		bytebuf_free(&out);
		if (!ok)
			break; /* cut off */
		usleep(50 * 1000);
	}
	for (;;)
		pause();
}

struct slow {
	const char *name;
	const char *reason;   /* what crmd must log when it cuts the client off */
	double limit_s;
	int fd;
	int port;
	double start;         /* when its limit started to run (about) */
	double closed;        /* when crmd logged the close; 0: not yet */
	char logged[160];
};

static void test_slow_clients_are_cut_off_while_others_keep_their_latency(void)
{
	char set_hs[64], set_frame[64], set_send[64];
	snprintf(set_hs, sizeof set_hs, "server.handshake_timeout_ms=%d", SLOW_HANDSHAKE_MS);
	snprintf(set_frame, sizeof set_frame, "server.frame_timeout_ms=%d", SLOW_FRAME_MS);
	snprintf(set_send, sizeof set_send, "server.send_timeout_ms=%d", SLOW_SEND_MS);
	const char *sets[] = {set_hs, set_frame, set_send, "server.max_output_bytes=65536", NULL};
	struct it_crmd d = {0};
	CHECK(it_crmd_spawn(&d, sets, "event=db.up"));
	if (!d.pid)
		return;
	struct crmc *good = it_login_at(d.server, "group_admin");
	CHECK(good != NULL);
	SSL *trickle_ssl = NULL;
	SSL *half = NULL;
	pid_t child = -1;
	struct slow s[3] = {
		{"handshake never finished", "TLS handshake timed out", SLOW_HANDSHAKE_MS / 1000.0},
		{"frame a byte a second", "frame read timed out", SLOW_FRAME_MS / 1000.0},
		{"responses never read", "send timed out", SLOW_SEND_MS / 1000.0},
	};
	if (!good)
		goto out;
	/* A customer for the good client to read back. */
	char cid[37], phone[16];
	uuid_v7_new(cid);
	it_phone(phone);
	Crm__Envelope *cr = it_create(good, cid, "延迟测试", phone);
	CHECK(cr && crmc_status(cr) == CRM__CODE__OK);
	it_free(cr);
	uint64_t timeouts_before = it_stat(good, "connection_timeouts");

	/* (a) Half a ClientHello, then silence. */
	s[0].fd = tcp_connect(d.server, 0, false);
	half = SSL_new(raw_ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(half, rb, wb);
	SSL_set_connect_state(half);
	SSL_do_handshake(half);
	char hello[2048];
	int hello_len = BIO_read(wb, hello, sizeof hello);
	CHECK(s[0].fd >= 0 && hello_len > 10);
	s[0].start = now_s();
	if (s[0].fd >= 0 && hello_len > 10)
		CHECK(write(s[0].fd, hello, (size_t)hello_len / 2) == hello_len / 2);

	/* (b) TLS and the hello, then a ping frame one byte a second. */
	s[1].fd = tcp_connect(d.server, 0, false);
	trickle_ssl = s[1].fd >= 0 ? raw_tls_hello(s[1].fd) : NULL;
	CHECK(trickle_ssl != NULL);
	struct bytebuf ping = {0};
	pack_ping(&ping, 2);
	size_t trickled = 0;
	double next_byte = now_s();
	s[1].start = next_byte;

	/* (c) A child that sends pings and never reads an answer; its receive
	 * buffer is small so that the answers back up into crmd quickly. */
	s[2].fd = tcp_connect(d.server, 4096, false);
	CHECK(s[2].fd >= 0);
	s[2].start = now_s();
	child = fork();
	if (child == 0)
		never_reads(s[2].fd);
	for (int i = 0; i < 3; i++)
		s[i].port = s[i].fd >= 0 ? local_port(s[i].fd) : -1;

	/* Meanwhile the good client: a ping, a customer read, a stats read,
	 * one at a time, until every slow client is cut off (or 15 s). */
	int calls = 0, late = 0;
	double slowest = 0, sum = 0;
	double t0 = now_s();
	while (now_s() - t0 < 15) {
		int open = 0;
		for (int i = 0; i < 3; i++) {
			if (!s[i].closed && s[i].port > 0 &&
			    logged_close(d.log, s[i].port, s[i].logged, sizeof s[i].logged))
				s[i].closed = now_s();
			open += !s[i].closed;
		}
		if (!open)
			break;
		if (trickle_ssl && !s[1].closed && now_s() >= next_byte && trickled < bytebuf_len(&ping)) {
			size_t w;
			SSL_write_ex(trickle_ssl, bytebuf_head(&ping) + trickled, 1, &w);
			trickled++;
			next_byte += 1.0;
		}
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		Crm__Ping p = CRM__PING__INIT;
		Crm__CustomerGet g = CRM__CUSTOMER_GET__INIT;
		Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
		switch (calls % 3) {
		case 0:
			req.body_case = CRM__ENVELOPE__BODY_PING;
			req.ping = &p;
			break;
		case 1:
			g.id = cid;
			req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
			req.customer_get = &g;
			break;
		default:
			req.body_case = CRM__ENVELOPE__BODY_STATS;
			req.stats = &sr;
		}
		char err[256];
		double t = now_s();
		Crm__Envelope *resp = crmc_call(good, &req, 2000, err, sizeof err);
		double took = now_s() - t;
		CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
		it_free(resp);
		calls++;
		sum += took;
		late += took > GOOD_BOUND_S;
		if (took > slowest)
			slowest = took;
		usleep(20 * 1000);
	}
	for (int i = 0; i < 3; i++) {
		double after = s[i].closed ? s[i].closed - s[i].start : -1;
		printf("slow client \"%s\": closed after %.2f s (limit %.1f s), reason \"%s\"\n",
		       s[i].name, after, s[i].limit_s, s[i].closed ? s[i].logged : "-");
		CHECK(s[i].closed > 0);
		CHECK(strcmp(s[i].logged, s[i].reason) == 0);
		/* Not before its limit; the log is polled every ~20 ms and the
		 * child (c) needs a moment to fill its buffers. */
		CHECK(after >= s[i].limit_s - 0.1);
		CHECK(after <= s[i].limit_s + 3.0);
	}
	printf("good client meanwhile: %d requests, mean %.1f ms, slowest %.1f ms (bound %.0f ms)\n",
	       calls, calls ? sum / calls * 1000 : 0, slowest * 1000, GOOD_BOUND_S * 1000);
	CHECK(calls >= 20);
	CHECK(late == 0);
	/* (b) sent only a few bytes of its frame before the cut. */
	CHECK(trickled >= 2 && trickled < bytebuf_len(&ping));
	/* crmd counted the three as timeouts, and nothing else timed out. */
	CHECK(it_stat(good, "connection_timeouts") - timeouts_before == 3);
	bytebuf_free(&ping);
out:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (trickle_ssl)
		SSL_free(trickle_ssl);
	if (half)
		SSL_free(half);
	for (int i = 0; i < 3; i++)
		if (s[i].fd > 0)
			close(s[i].fd);
	if (good)
		crmc_close(good);
	CHECK(it_crmd_stop(&d));
}

/* ---- 3b. Framing across a pause (found by the never-reading client) */

/* With one request in flight allowed, a create pauses reading; when it ends,
 * reading resumes and the pings behind it are answered at once, each ending
 * inside the resumed parse. That used to parse the input again from inside,
 * and the outer parse then consumed its frame's length from the wrong place:
 * answers went missing or the connection died on a "frame too large". */
static void test_pipelined_requests_keep_their_framing_across_a_pause(void)
{
	const char *sets[] = {"server.max_in_flight=1", NULL};
	struct it_crmd d = {0};
	CHECK(it_crmd_spawn(&d, sets, "event=db.up"));
	if (!d.pid)
		return;
	struct crmc *c = it_login_at(d.server, "consultant");
	CHECK(c != NULL);
	enum { PINGS = 20 };
	bool seen[PINGS + 1] = {false};
	int answered = 0, wrong = 0;
	for (int round = 0; c && round < 3; round++) {
		char id[37], phone[16];
		uuid_v7_new(id);
		it_phone(phone);
		uint64_t first = it_send_create(c, id, "暂停测试", phone);
		for (int i = 0; i < PINGS; i++) {
			Crm__Ping p = CRM__PING__INIT;
			Crm__Envelope env = CRM__ENVELOPE__INIT;
			env.id = first + 1 + (uint64_t)i;
			p.nonce = env.id * 7;
			env.body_case = CRM__ENVELOPE__BODY_PING;
			env.ping = &p;
			crmc_send(c, &env);
		}
		memset(seen, 0, sizeof seen);
		for (int i = 0; i <= PINGS; i++) {
			char err[256];
			Crm__Envelope *resp = crmc_recv(c, 5000, err, sizeof err);
			if (!resp) {
				fprintf(stderr, "framing: %s\n", err);
				break;
			}
			uint64_t k = resp->id - first;
			bool right = resp->id >= first && k <= PINGS && !seen[k] &&
				     crmc_status(resp) == CRM__CODE__OK &&
				     (k == 0 ? resp->body_case == CRM__ENVELOPE__BODY_CUSTOMER
					     : resp->pong && resp->pong->nonce == resp->id * 7);
			if (right)
				seen[k] = true;
			answered++;
			wrong += !right;
			it_free(resp);
		}
	}
	printf("framing: %d of %d pipelined answers after pauses, %d wrong\n", answered,
	       3 * (PINGS + 1), wrong);
	CHECK(answered == 3 * (PINGS + 1));
	CHECK(wrong == 0);
	CHECK(c && crmc_is_open(c));
	if (c)
		crmc_close(c);
	CHECK(it_crmd_stop(&d));
}

/* ---- 4. 10,000 connections at once */

#define STORM_CONNS 10000
#define STORM_WARMUP 500
/* crmd's resident memory after the storm may exceed its baseline by this
 * much: the allocator keeps some freed memory for reuse. */
#define STORM_RSS_TOLERANCE_KIB (16 * 1024)

enum storm_state { ST_CONNECTING, ST_HANDSHAKE, ST_HELLO, ST_READY, ST_FAILED };

struct storm_conn {
	int fd;
	SSL *ssl;
	enum storm_state state;
	short want;            /* POLLIN or POLLOUT */
	uint8_t in[512];
	size_t inlen;
};

/* Drives one connection as far as it goes without blocking. */
static void storm_step(struct storm_conn *c, const struct bytebuf *hello)
{
	if (c->state == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
			c->state = ST_FAILED;
			return;
		}
		c->ssl = SSL_new(raw_ctx);
		if (!c->ssl) {
			c->state = ST_FAILED;
			return;
		}
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_connect_state(c->ssl);
		c->state = ST_HANDSHAKE;
	}
	if (c->state == ST_HANDSHAKE) {
		int rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return;
			}
			ERR_clear_error();
			c->state = ST_FAILED;
			return;
		}
		size_t w;
		if (SSL_write_ex(c->ssl, bytebuf_head(hello), bytebuf_len(hello), &w) != 1 ||
		    w != bytebuf_len(hello)) {
			c->state = ST_FAILED;
			return;
		}
		c->state = ST_HELLO;
	}
	if (c->state == ST_HELLO) {
		for (;;) {
			size_t got;
			if (SSL_read_ex(c->ssl, c->in + c->inlen, sizeof c->in - c->inlen, &got) != 1) {
				int e = SSL_get_error(c->ssl, 0);
				if (e == SSL_ERROR_WANT_READ) {
					c->want = POLLIN;
					return;
				}
				ERR_clear_error();
				c->state = ST_FAILED;
				return;
			}
			c->inlen += got;
			if (c->inlen >= 4) {
				size_t need = 4 + (((size_t)c->in[0] << 24) | ((size_t)c->in[1] << 16) |
						   ((size_t)c->in[2] << 8) | c->in[3]);
				if (c->inlen >= need) {
					c->state = ST_READY;
					return;
				}
				if (c->inlen == sizeof c->in) {
					c->state = ST_FAILED;
					return;
				}
			}
		}
	}
}

struct storm_result {
	int ready, failed;
	double connect_s, ready_s;
};

/* Opens `n` connections at once (non-blocking connects issued back to
 * back), completes TLS and the hello on each, and returns with all of them
 * open. */
static struct storm_conn *storm_open(const char *server, int n, struct storm_result *res)
{
	struct storm_conn *cs = calloc((size_t)n, sizeof *cs);
	struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
	int *at = calloc((size_t)n, sizeof *at);
	struct bytebuf hello = {0};
	pack_hello(&hello);
	memset(res, 0, sizeof *res);
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		cs[i].fd = tcp_connect(server, 0, true);
		cs[i].state = cs[i].fd >= 0 ? ST_CONNECTING : ST_FAILED;
		cs[i].want = POLLOUT;
	}
	int connected = 0;
	while (now_s() - t0 < (UNDER_ASAN ? 150 : 60)) {
		int m = 0;
		for (int i = 0; i < n; i++) {
			if (cs[i].state == ST_READY || cs[i].state == ST_FAILED)
				continue;
			pfd[m] = (struct pollfd){.fd = cs[i].fd, .events = cs[i].want};
			at[m++] = i;
		}
		if (m == 0)
			break;
		if (poll(pfd, (nfds_t)m, 100) <= 0)
			continue;
		for (int j = 0; j < m; j++) {
			if (!pfd[j].revents)
				continue;
			struct storm_conn *c = &cs[at[j]];
			bool was_connecting = c->state == ST_CONNECTING;
			storm_step(c, &hello);
			if (was_connecting && c->state != ST_FAILED && ++connected == n)
				res->connect_s = now_s() - t0;
		}
	}
	for (int i = 0; i < n; i++) {
		res->ready += cs[i].state == ST_READY;
		res->failed += cs[i].state != ST_READY;
	}
	res->ready_s = now_s() - t0;
	bytebuf_free(&hello);
	free(pfd);
	free(at);
	return cs;
}

/* Drops them all at once: every other one with a reset, the rest with a
 * plain close (FIN), as crashed and vanished clients do. */
static void storm_drop(struct storm_conn *cs, int n)
{
	for (int i = 0; i < n; i++) {
		if (cs[i].fd < 0)
			continue;
		if (i % 2) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		close(cs[i].fd);
	}
	for (int i = 0; i < n; i++)
		if (cs[i].ssl)
			SSL_free(cs[i].ssl);
	free(cs);
}

/* Waits up to `secs` for crmd's descriptors to be back at `fds` and its
 * memory within `rss_kib`; the seconds it took, or -1. */
static double wait_back(pid_t pid, int fds, long rss_kib, double secs, int *fds_now, long *rss_now)
{
	double t0 = now_s();
	for (;;) {
		*fds_now = proc_fd_count(pid);
		*rss_now = proc_rss_kib(pid);
		if (*fds_now <= fds && (rss_kib < 0 || *rss_now <= rss_kib))
			return now_s() - t0;
		if (now_s() - t0 > secs)
			return -1;
		usleep(50 * 1000);
	}
}

static void test_ten_thousand_connections_at_once_leave_no_leak(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t want = STORM_CONNS + 1000;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	printf("storm: RLIMIT_NOFILE %llu (crmd inherits it)\n", (unsigned long long)rl.rlim_cur);
	CHECK(rl.rlim_cur >= want);
	if (rl.rlim_cur < want)
		return;
	/* Room above the storm, and handshakes that do not time out while
	 * 10,000 of them wait their turn. */
	const char *sets[] = {"server.max_connections=12000", "server.handshake_timeout_ms=60000",
			      NULL};
	struct it_crmd d = {0};
	CHECK(it_crmd_spawn(&d, sets, "event=db.up"));
	if (!d.pid)
		return;
	/* Warm up with a smaller storm, so that one-time allocations are in the
	 * baseline. */
	struct storm_result r;
	struct storm_conn *cs = storm_open(d.server, STORM_WARMUP, &r);
	CHECK(r.ready == STORM_WARMUP);
	storm_drop(cs, STORM_WARMUP);
	int fds_now;
	long rss_now;
	sleep(2);
	int base_fds = proc_fd_count(d.pid);
	long base_rss = proc_rss_kib(d.pid);
	printf("storm: baseline %d descriptors, VmRSS %ld KiB\n", base_fds, base_rss);

	cs = storm_open(d.server, STORM_CONNS, &r);
	int peak_fds = proc_fd_count(d.pid);
	long peak_rss = proc_rss_kib(d.pid);
	printf("storm: %d connections: TCP up in %.2f s, TLS + hello done on %d in %.2f s (%d "
	       "failed); crmd %d descriptors, VmRSS %ld KiB (%.1f KiB a connection)\n",
	       STORM_CONNS, r.connect_s, r.ready, r.ready_s, r.failed, peak_fds, peak_rss,
	       (double)(peak_rss - base_rss) / STORM_CONNS);
	CHECK(r.ready == STORM_CONNS);
	CHECK(peak_fds >= base_fds + STORM_CONNS);
	storm_drop(cs, STORM_CONNS);
	/* Descriptors must come back exactly; memory within the tolerance,
	 * except under ASan, whose allocator keeps freed memory in quarantine. */
	long rss_limit = UNDER_ASAN ? -1 : base_rss + STORM_RSS_TOLERANCE_KIB;
	double back = wait_back(d.pid, base_fds, rss_limit, 10, &fds_now, &rss_now);
	printf("storm: dropped; back to %d descriptors and VmRSS %ld KiB after %.2f s "
	       "(baseline %d, %ld KiB; tolerance %s)\n",
	       fds_now, rss_now, back, base_fds, base_rss,
	       UNDER_ASAN ? "memory not checked under ASan" : "+16 MiB");
	CHECK(back >= 0);
	CHECK(fds_now == base_fds);

	/* And it still serves: a login, a write, and its own count of
	 * connections says only this one is open. */
	struct crmc *admin = it_login_at(d.server, "group_admin");
	CHECK(admin != NULL);
	if (admin) {
		char id[37], phone[16];
		uuid_v7_new(id);
		it_phone(phone);
		Crm__Envelope *resp = it_create(admin, id, "风暴之后", phone);
		CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
		it_free(resp);
		CHECK(it_stat(admin, "connections_open") == 1);
		CHECK(it_stat(admin, "connections_refused_limit") == 0);
		CHECK(it_stat(admin, "tls_handshakes_failed") == 0);
		crmc_close(admin);
	}
	CHECK(it_crmd_stop(&d));
}

/* ------------------------------------------------------------ a reset after a warning */

/* A TCP relay between crmd and PostgreSQL, in a child process, driven by
 * one-byte commands on a pipe and answering each with a byte: 'k' sends
 * each crmd-side connection what a backend sends when PostgreSQL stops at
 * once (a WARNING notice), resets it (SO_LINGER 0), closes the database
 * side and stops listening; 'a' listens again on the same port; 'q' ends. */
struct relay {
	pid_t pid;
	int port;
	int cmd, ack;    /* parent's ends of the two pipes */
};

enum { RELAY_MAX = 32 };

static int relay_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void relay_run(int lfd, int port, int cmd, int ack)
{
	char db[32];
	snprintf(db, sizeof db, "127.0.0.1:%s", it_env("CRM_PG_PORT"));
	int side[RELAY_MAX][2]; /* [crmd, database] */
	int n = 0;
	static const char warning[] = "SWARNING\0VWARNING\0C57P01\0"
				      "Mterminating connection due to immediate shutdown command\0";
	char notice[128];
	size_t body = sizeof warning; /* the fields and the closing zero byte */
	notice[0] = 'N';
	uint32_t len = htonl((uint32_t)(4 + body));
	memcpy(notice + 1, &len, 4);
	memcpy(notice + 5, warning, body);
	for (;;) {
		struct pollfd pf[2 + 2 * RELAY_MAX];
		int np = 0;
		pf[np++] = (struct pollfd){.fd = cmd, .events = POLLIN};
		pf[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (int i = 0; i < n; i++)
			for (int k = 0; k < 2; k++)
				pf[np++] = (struct pollfd){.fd = side[i][k], .events = POLLIN};
		if (poll(pf, (nfds_t)np, 1000) < 0 && errno != EINTR)
			_exit(1);
		if (pf[0].revents) {
			char c = 'q';
			if (read(cmd, &c, 1) != 1 || c == 'q')
				_exit(0);
			if (c == 'k') {
				for (int i = 0; i < n; i++) {
					write_all(side[i][0], notice, 5 + body);
					struct linger lg = {.l_onoff = 1, .l_linger = 0};
					setsockopt(side[i][0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
					close(side[i][0]);
					close(side[i][1]);
				}
				n = 0;
				if (lfd >= 0)
					close(lfd);
				lfd = -1;
			} else if (c == 'a' && lfd < 0) {
				lfd = relay_listen(port);
			}
			if (write(ack, &c, 1) != 1)
				_exit(1);
			continue;
		}
		if (lfd >= 0 && (pf[1].revents & POLLIN)) {
			int cfd = accept(lfd, NULL, NULL);
			int dfd = cfd >= 0 ? tcp_connect(db, 0, false) : -1;
			if (cfd >= 0 && (dfd < 0 || n == RELAY_MAX)) {
				close(cfd);
				if (dfd >= 0)
					close(dfd);
			} else if (cfd >= 0) {
				side[n][0] = cfd;
				side[n][1] = dfd;
				n++;
			}
			continue;
		}
		for (int i = 0, p = 2; i < n; i++, p += 2) {
			for (int k = 0; k < 2; k++) {
				if (!pf[p + k].revents)
					continue;
				char buf[65536];
				ssize_t r = read(side[i][k], buf, sizeof buf);
				if (r <= 0 || !write_all(side[i][1 - k], buf, (size_t)r)) {
					close(side[i][0]);
					close(side[i][1]);
					side[i][0] = side[n - 1][0];
					side[i][1] = side[n - 1][1];
					n--;
					break;
				}
			}
		}
	}
}

static bool relay_start(struct relay *r)
{
	int lfd = relay_listen(0);
	int cmd[2], ack[2];
	r->port = lfd >= 0 ? local_port(lfd) : -1;
	if (r->port < 0 || pipe(cmd) != 0 || pipe(ack) != 0)
		return false;
	r->pid = fork();
	if (r->pid == 0) {
		close(cmd[1]);
		close(ack[0]);
		relay_run(lfd, r->port, cmd[0], ack[1]);
		_exit(0);
	}
	close(lfd);
	close(cmd[0]);
	close(ack[1]);
	r->cmd = cmd[1];
	r->ack = ack[0];
	return r->pid > 0;
}

static bool relay_do(struct relay *r, char c)
{
	char got = 0;
	return write(r->cmd, &c, 1) == 1 && read(r->ack, &got, 1) == 1 && got == c;
}

static void relay_stop(struct relay *r)
{
	if (r->pid <= 0)
		return;
	if (write(r->cmd, "q", 1) != 1)
		kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	close(r->cmd);
	close(r->ack);
}

static Crm__Code create_within(struct crmc *c, int timeout_ms, double *took)
{
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	double t0 = now_s();
	uint64_t rid = it_send_create(c, id, "复位测试", phone);
	char err[256];
	Crm__Envelope *resp = crmc_wait(c, rid, timeout_ms, err, sizeof err);
	*took = now_s() - t0;
	Crm__Code code = resp ? crmc_status(resp) : CRM__CODE__INTERNAL;
	it_free(resp);
	return code;
}

/* PostgreSQL stopping at once sends each session a WARNING and resets it.
 * With crmd stopped meanwhile (SIGSTOP), both are waiting when it looks:
 * libuv reports the poll error and stops the handle, libpq reads the
 * WARNING and sees nothing wrong yet. Every pool connection must still
 * notice the reset, so that the next request is answered UNAVAILABLE at
 * once instead of waiting on a dead connection, and the pool must come back
 * when the database does. */
static void test_a_reset_after_a_warning_is_noticed_on_every_connection(void)
{
	struct relay r = {0};
	struct it_crmd d = {0};
	struct crmc *c = NULL;
	CHECK(relay_start(&r));
	if (r.pid <= 0)
		return;
	char set_port[48];
	snprintf(set_port, sizeof set_port, "db.port=%d", r.port);
	const char *sets[] = {set_port, NULL};
	CHECK(it_crmd_spawn(&d, sets, "event=reminders.db.up"));
	if (!d.pid)
		goto out;
	/* All four pool connections and the reminders' one are up. */
	for (int i = 0; i < 50 && log_count(d.log, "event=db.up") < 4; i++)
		usleep(100 * 1000);
	CHECK(log_count(d.log, "event=db.up") == 4);
	c = it_login_at(d.server, "consultant");
	CHECK(c != NULL);
	if (!c)
		goto out;
	double took;
	CHECK(create_within(c, 10000, &took) == CRM__CODE__OK);
	usleep(300 * 1000);    /* nothing in flight on any connection */

	CHECK(kill(d.pid, SIGSTOP) == 0);
	CHECK(relay_do(&r, 'k'));
	usleep(200 * 1000);
	CHECK(kill(d.pid, SIGCONT) == 0);
	for (int i = 0; i < 50 && (log_count(d.log, "event=db.down") < 4 ||
				   log_count(d.log, "event=reminders.db.down") < 1); i++)
		usleep(100 * 1000);
	CHECK(log_count(d.log, "event=db.down") == 4);
	CHECK(log_count(d.log, "event=reminders.db.down") == 1);
	int unavailable = 0;
	double slowest = 0;
	for (int i = 0; i < 3; i++) {
		Crm__Code code = create_within(c, 5000, &took);
		unavailable += code == CRM__CODE__UNAVAILABLE;
		slowest = took > slowest ? took : slowest;
	}
	printf("reset after a warning: %d of 3 answered UNAVAILABLE, slowest %.3f s; db.down"
	       " logged %d times\n", unavailable, slowest, log_count(d.log, "event=db.down"));
	CHECK(unavailable == 3);
	CHECK(slowest < 2.0);

	CHECK(relay_do(&r, 'a'));
	Crm__Code code = CRM__CODE__UNAVAILABLE;
	double t0 = now_s();
	while (code != CRM__CODE__OK && now_s() - t0 < 15) {
		code = create_within(c, 5000, &took);
		if (code != CRM__CODE__OK)
			usleep(200 * 1000);
	}
	CHECK(code == CRM__CODE__OK);
	printf("reset after a warning: %s %.2f s after the relay listened again\n",
	       code == CRM__CODE__OK ? "service back" : "still no service", now_s() - t0);
out:
	if (c)
		crmc_close(c);
	if (d.pid)
		CHECK(it_crmd_stop(&d));
	relay_stop(&r);
}

int main(void)
{
	it_init();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_watchdog);
	char err[256];
	raw_ctx = tls_client_ctx(it_env("CRM_CA"), err, sizeof err);
	if (!raw_ctx) {
		fprintf(stderr, "client TLS context: %s\n", err);
		return 1;
	}
	/* CRM_CHAOS_ONLY=N runs only the Nth test (while working on one). */
	void (*const tests[])(void) = {
		test_sigkill_under_write_load_keeps_every_acknowledged_write_once,
		test_postgres_restart_under_load_answers_unavailable_then_recovers,
		test_slow_clients_are_cut_off_while_others_keep_their_latency,
		test_pipelined_requests_keep_their_framing_across_a_pause,
		test_ten_thousand_connections_at_once_leave_no_leak,
		test_a_reset_after_a_warning_is_noticed_on_every_connection,
	};
	int only = atoi(it_env("CRM_CHAOS_ONLY"));
	double t0 = now_s();
	for (int i = 0; i < (int)(sizeof tests / sizeof tests[0]); i++) {
		if (only && only != i + 1)
			continue;
		alarm(UNDER_ASAN ? 240 : 120);
		tests[i]();
		alarm(0);
		printf("-- test %d done at %.1f s\n", i + 1, now_s() - t0);
	}
	SSL_CTX_free(raw_ctx);
	return it_summary();
}
