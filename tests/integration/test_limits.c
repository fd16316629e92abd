/* Connection limits: handshake timeout, non-TLS input on the TLS port, the
 * in-flight limit that pauses reading instead of buffering without bound,
 * and the database admission limit (db.active_limit). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "itest.h"
#include "textcheck.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int raw_connect(void)
{
	const char *server = it_env("CRM_SERVER");
	const char *colon = strrchr(server, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Seconds until the server closes `fd` (reads and drops whatever comes). */
static double seconds_until_closed(int fd, double limit)
{
	double t0 = now_s();
	char buf[4096];
	while (now_s() - t0 < limit) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			return now_s() - t0;
	}
	return -1;
}

static void test_silent_client_is_cut_off_at_handshake_timeout(void)
{
	struct crm_config cfg;
	char err[256];
	config_defaults(&cfg);
	CHECK(config_load(&cfg, it_env("CRMD_CONFIG"), err, sizeof err));
	double limit = cfg.handshake_timeout_ms / 1000.0;
	int fd = raw_connect();
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	double took = seconds_until_closed(fd, limit + 5);
	printf("silent client closed after %.2f s (handshake_timeout_ms %d)\n", took,
	       cfg.handshake_timeout_ms);
	CHECK(took >= limit - 0.2);
	CHECK(took <= limit + 1.5);
	close(fd);
}

static void test_plaintext_on_tls_port_is_refused_and_others_go_on(void)
{
	int fd = raw_connect();
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK(write(fd, http, sizeof http - 1) == (ssize_t)(sizeof http - 1));
	double took = seconds_until_closed(fd, 5);
	CHECK(took >= 0 && took < 1.0);
	close(fd);
	struct crmc *c = it_login("consultant");
	CHECK(c != NULL);
	if (c)
		crmc_close(c);
}

/* Receives `n` answers (30 s at most each); how many were OK. */
static int answers_ok(struct crmc *c, int n)
{
	int ok = 0;
	char err[256];
	for (int i = 0; i < n; i++) {
		Crm__Envelope *resp = crmc_recv(c, 30000, err, sizeof err);
		if (!resp)
			break;
		ok += crmc_status(resp) == CRM__CODE__OK;
		it_free(resp);
	}
	return ok;
}

static void test_in_flight_limit_pauses_reading(void)
{
	struct crmc *admin = it_login("group_admin");
	struct crmc *c = it_login("consultant");
	CHECK(admin && c);
	if (!admin || !c)
		goto out;
	const Crm__HelloReply *h = crmc_server_hello(c);
	uint64_t before = it_stat(admin, "reads_paused_in_flight");
	/* Twice the limit in one burst: the server must stop reading at the
	 * limit, then answer every request as earlier ones finish. */
	int n = (int)h->max_in_flight * 2;
	for (int i = 0; i < n; i++) {
		char id[37], phone[16];
		uuid_v7_new(id);
		it_phone(phone);
		it_send_create(c, id, "限流测试", phone);
	}
	crmc_flush(c);
	int ok = answers_ok(c, n);
	CHECK(ok == n);
	uint64_t after = it_stat(admin, "reads_paused_in_flight");
	printf("max_in_flight %u: %d requests answered, reads paused %llu times\n",
	       h->max_in_flight, ok, (unsigned long long)(after - before));
	CHECK(after != UINT64_MAX && after > before);
out:
	if (admin)
		crmc_close(admin);
	if (c)
		crmc_close(c);
}

/* Sends `n` reads of customer `id` in one burst; true when all are OK. */
static bool burst_of_gets(struct crmc *c, const char *id, int n)
{
	Crm__CustomerGet g = CRM__CUSTOMER_GET__INIT;
	g.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
	req.customer_get = &g;
	for (int i = 0; i < n; i++)
		crmc_send(c, &req);
	crmc_flush(c);
	return answers_ok(c, n) == n;
}

/* True once a statement of crmd's role waits on a lock (up to 10 s). */
static bool crmd_waits_on_a_lock(PGconn *db)
{
	for (int i = 0; i < 100; i++) {
		const char *v = it_db_value(db, "SELECT count(*) FROM pg_stat_activity"
					    " WHERE usename = $1 AND wait_event_type = 'Lock'",
					    "crmd");
		if (v && atoi(v) > 0)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* db.active_limit = 1 with 3 connections: a burst of reads waits in crmd
 * for its turn, though connections are free (db_statements_held_back), and
 * all are answered. A statement stuck on a row lock stops counting once it
 * has run 20 ms: a read sent behind it is answered while the lock is still
 * held. With db.active_limit = 0 the same burst is never held back. */
static void test_active_limit_holds_back_short_statements_but_not_behind_a_stuck_one(void)
{
	const char *limited[] = {"db.pool_size=3", "db.active_limit=1", NULL};
	const char *unlimited[] = {"db.pool_size=3", "db.active_limit=0", NULL};
	struct it_crmd d = {0}, u = {0};
	struct crmc *admin = NULL, *a = NULL, *b = NULL, *uadmin = NULL;
	PGconn *lock = NULL, *db = NULL;
	CHECK(it_crmd_spawn(&d, limited, "event=db.up"));
	if (!d.pid)
		return;
	admin = it_login_at(d.server, "group_admin");
	a = it_login_at(d.server, "consultant");
	b = it_login_at(d.server, "consultant");
	lock = it_db();
	db = it_db();
	CHECK(admin && a && b);
	if (!admin || !a || !b)
		goto out;
	char x[37], y[37], phone[16];
	uuid_v7_new(x);
	it_phone(phone);
	Crm__Envelope *cr = it_create(a, x, "准入测试甲", phone);
	CHECK(cr && crmc_status(cr) == CRM__CODE__OK);
	uint64_t version = cr && cr->customer && cr->customer->customer
				   ? cr->customer->customer->version : 0;
	it_free(cr);
	uuid_v7_new(y);
	it_phone(phone);
	cr = it_create(a, y, "准入测试乙", phone);
	CHECK(cr && crmc_status(cr) == CRM__CODE__OK);
	it_free(cr);

	uint64_t held0 = it_stat(admin, "db_statements_held_back");
	CHECK(burst_of_gets(b, y, 40));
	uint64_t held1 = it_stat(admin, "db_statements_held_back");
	printf("active_limit 1: a burst of 40 reads, %llu held back\n",
	       (unsigned long long)(held1 - held0));
	CHECK(held0 != UINT64_MAX && held1 > held0);

	/* The rename waits on the row lock; the read behind it must not. */
	PQclear(PQexec(lock, "BEGIN"));
	CHECK(it_db_value(lock, "SELECT id::text FROM crm.customers WHERE id = $1::uuid FOR UPDATE",
			  x) != NULL);
	uint64_t rename = it_send_rename(a, x, version, "准入测试丙");
	CHECK(crmd_waits_on_a_lock(db));
	double t0 = now_s();
	Crm__Envelope *g = it_get(b, y);
	double waited = now_s() - t0;
	CHECK(g && crmc_status(g) == CRM__CODE__OK);
	it_free(g);
	printf("a read behind a statement stuck on a lock: answered in %.3f s\n", waited);
	CHECK(waited < 3.0);
	char err[256];
	Crm__Envelope *early = crmc_recv(a, 200, err, sizeof err);
	CHECK(early == NULL); /* still stuck: the lock is held */
	it_free(early);
	PQclear(PQexec(lock, "ROLLBACK"));
	Crm__Envelope *rn = crmc_wait(a, rename, 10000, err, sizeof err);
	CHECK(rn && crmc_status(rn) == CRM__CODE__OK);
	it_free(rn);

	CHECK(it_crmd_spawn(&u, unlimited, "event=db.up"));
	uadmin = u.pid ? it_login_at(u.server, "group_admin") : NULL;
	CHECK(uadmin != NULL);
	if (uadmin) {
		CHECK(burst_of_gets(uadmin, y, 40));
		CHECK(it_stat(uadmin, "db_statements_held_back") == 0);
	}
out:
	if (lock)
		PQfinish(lock);
	if (db)
		PQfinish(db);
	if (admin)
		crmc_close(admin);
	if (a)
		crmc_close(a);
	if (b)
		crmc_close(b);
	if (uadmin)
		crmc_close(uadmin);
	CHECK(it_crmd_stop(&d));
	if (u.pid)
		CHECK(it_crmd_stop(&u));
}

int main(void)
{
	it_init();
	test_silent_client_is_cut_off_at_handshake_timeout();
	test_plaintext_on_tls_port_is_refused_and_others_go_on();
	test_in_flight_limit_pauses_reading();
	test_active_limit_holds_back_short_statements_but_not_behind_a_stuck_one();
	return it_summary();
}
