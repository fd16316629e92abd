/* Connection limits: handshake timeout, non-TLS input on the TLS port, and
 * the in-flight limit that pauses reading instead of buffering without
 * bound. */
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

static uint64_t counter(struct crmc *admin, const char *name)
{
	Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_STATS;
	req.stats = &sr;
	Crm__Envelope *resp = it_call(admin, &req);
	uint64_t v = UINT64_MAX;
	for (size_t i = 0; resp && resp->stats_reply && i < resp->stats_reply->n_counters; i++)
		if (!strcmp(resp->stats_reply->counters[i]->name, name))
			v = resp->stats_reply->counters[i]->value;
	it_free(resp);
	return v;
}

static void test_in_flight_limit_pauses_reading(void)
{
	struct crmc *admin = it_login("group_admin");
	struct crmc *c = it_login("consultant");
	CHECK(admin && c);
	if (!admin || !c)
		goto out;
	const Crm__HelloReply *h = crmc_server_hello(c);
	uint64_t before = counter(admin, "reads_paused_in_flight");
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
	int ok = 0;
	char err[256];
	for (int i = 0; i < n; i++) {
		Crm__Envelope *resp = crmc_recv(c, 30000, err, sizeof err);
		if (!resp)
			break;
		ok += crmc_status(resp) == CRM__CODE__OK;
		it_free(resp);
	}
	CHECK(ok == n);
	uint64_t after = counter(admin, "reads_paused_in_flight");
	printf("max_in_flight %u: %d requests answered, reads paused %llu times\n",
	       h->max_in_flight, ok, (unsigned long long)(after - before));
	CHECK(after != UINT64_MAX && after > before);
out:
	if (admin)
		crmc_close(admin);
	if (c)
		crmc_close(c);
}

int main(void)
{
	it_init();
	test_silent_client_is_cut_off_at_handshake_timeout();
	test_plaintext_on_tls_port_is_refused_and_others_go_on();
	test_in_flight_limit_pauses_reading();
	return it_summary();
}
