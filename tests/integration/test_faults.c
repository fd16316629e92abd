/* Faults: PostgreSQL going away and coming back; SIGTERM under write load
 * loses no acknowledged write. */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static Crm__Code try_create(struct crmc *c, double *seconds)
{
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	double t0 = now_s();
	Crm__Envelope *resp = it_create(c, id, "故障测试", phone);
	*seconds = now_s() - t0;
	Crm__Code code = resp ? crmc_status(resp) : CRM__CODE__INTERNAL;
	it_free(resp);
	return code;
}

static void test_database_down_answers_unavailable_then_recovers(void)
{
	struct crmc *c = it_login("consultant");
	CHECK(c != NULL);
	if (!c)
		return;
	double took;
	CHECK(try_create(c, &took) == CRM__CODE__OK);
	CHECK(it_harness("pg-stop", NULL) == 0);
	/* Every request while the database is down is answered, fast. */
	int unavailable = 0;
	double slowest = 0;
	for (int i = 0; i < 5; i++) {
		Crm__Code code = try_create(c, &took);
		unavailable += code == CRM__CODE__UNAVAILABLE;
		if (took > slowest)
			slowest = took;
	}
	CHECK(unavailable == 5);
	printf("database down: 5 requests answered UNAVAILABLE, slowest %.3f s\n", slowest);
	CHECK(slowest < 2.0);
	CHECK(crmc_is_open(c));
	CHECK(it_harness("pg-start", NULL) == 0);
	double t0 = now_s();
	Crm__Code code = CRM__CODE__UNAVAILABLE;
	while (now_s() - t0 < 30) {
		code = try_create(c, &took);
		if (code == CRM__CODE__OK)
			break;
		usleep(100 * 1000);
	}
	CHECK(code == CRM__CODE__OK);
	printf("database back: service returned after %.2f s\n", now_s() - t0);
	CHECK(now_s() - t0 < 10);
	crmc_close(c);
}

#define CONNS 4
#define WINDOW 32
#define MAX_IDS 200000

static char (*ids)[37];
static bool *acked;

/* Sends creates on CONNS connections, keeping WINDOW in flight on each,
 * while a child process sends SIGTERM to crmd. Every acknowledged id must be
 * in the database afterwards. */
static void test_sigterm_under_load_loses_no_acknowledged_write(void)
{
	ids = calloc(MAX_IDS, sizeof *ids);
	acked = calloc(MAX_IDS, sizeof *acked);
	struct crmc *conns[CONNS];
	uint64_t base[CONNS];
	int sent[CONNS] = {0}, answered[CONNS] = {0};
	int next = 0, acks = 0, unavailable = 0, lost_in_flight = 0;
	for (int k = 0; k < CONNS; k++) {
		conns[k] = it_login("consultant");
		CHECK(conns[k] != NULL);
		if (!conns[k])
			return;
	}
	/* An idle desk, to hear the server say it is going away. */
	struct crmc *idle = it_login("consultant");
	CHECK(idle != NULL);
	char outfile[] = "/tmp/crm-sigterm-XXXXXX";
	int fd = mkstemp(outfile);
	close(fd);
	pid_t child = -1;
	double t0 = now_s();
	bool any_open = true;
	/* Map request id -> index into ids, per connection. */
	static int index_of[CONNS][MAX_IDS / CONNS + WINDOW];
	while (any_open && now_s() - t0 < 60) {
		any_open = false;
		for (int k = 0; k < CONNS; k++) {
			struct crmc *c = conns[k];
			if (!crmc_is_open(c))
				continue;
			any_open = true;
			while (sent[k] - answered[k] < WINDOW && next < MAX_IDS &&
			       sent[k] < MAX_IDS / CONNS) {
				char phone[16];
				uuid_v7_new(ids[next]);
				it_phone(phone);
				uint64_t id = it_send_create(c, ids[next], "停机测试", phone);
				if (sent[k] == 0)
					base[k] = id;
				index_of[k][id - base[k]] = next;
				sent[k]++;
				next++;
			}
			char err[256];
			Crm__Envelope *resp = crmc_recv(c, 200, err, sizeof err);
			if (!resp)
				continue;
			if (resp->id != 0) {
				answered[k]++;
				int idx = index_of[k][resp->id - base[k]];
				if (crmc_status(resp) == CRM__CODE__OK) {
					acked[idx] = true;
					acks++;
				} else if (crmc_status(resp) == CRM__CODE__UNAVAILABLE) {
					unavailable++;
				}
			}
			it_free(resp);
		}
		if (child < 0 && now_s() - t0 > 1.5) {
			child = fork();
			if (child == 0) {
				char cmd[4096];
				snprintf(cmd, sizeof cmd, "bash '%s' crmd-kill '%s' TERM > %s 2>&1",
					 it_env("CRM_HARNESS"), it_env("CRM_TEST_DIR"), outfile);
				_exit(system(cmd) == 0 ? 0 : 1);
			}
		}
	}
	for (int k = 0; k < CONNS; k++)
		lost_in_flight += sent[k] - answered[k];
	int status = 0;
	if (child > 0)
		waitpid(child, &status, 0);
	CHECK(child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char line[256] = "";
	FILE *f = fopen(outfile, "r");
	bool exit_zero = false;
	while (f && fgets(line, sizeof line, f))
		if (strstr(line, "exit=0"))
			exit_zero = true;
	if (f)
		fclose(f);
	unlink(outfile);
	CHECK(exit_zero);
	printf("sigterm: %d sent, %d acknowledged, %d unavailable, %d unanswered\n", next, acks,
	       unavailable, lost_in_flight);
	CHECK(acks > 100);
	for (int k = 0; k < CONNS; k++)
		crmc_close(conns[k]);
	if (idle) {
		char err[256];
		Crm__Envelope *ev = crmc_recv(idle, 5000, err, sizeof err);
		CHECK(ev && ev->id == 0 && ev->body_case == CRM__ENVELOPE__BODY_EVENT);
		CHECK(ev && ev->event && strcmp(ev->event->kind, "server.draining") == 0);
		it_free(ev);
		/* Then the connection closes. */
		CHECK(crmc_recv(idle, 5000, err, sizeof err) == NULL && !crmc_is_open(idle));
		crmc_close(idle);
	}

	/* Every acknowledged write is there, once. */
	PGconn *db = it_db();
	int found = 0, missing = 0;
	const char *params[1];
	for (int i = 0; i < next; i++) {
		if (!acked[i])
			continue;
		params[0] = ids[i];
		PGresult *res = PQexecParams(db, "SELECT count(*) FROM crm.customers WHERE id = $1::uuid",
					     1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "1") == 0)
			found++;
		else
			missing++;
		PQclear(res);
	}
	PQfinish(db);
	CHECK(missing == 0);
	CHECK(found == acks);
	CHECK(it_harness("crmd-start", NULL) == 0);
	free(ids);
	free(acked);
}

int main(void)
{
	it_init();
	test_database_down_answers_unavailable_then_recovers();
	test_sigterm_under_load_loses_no_acknowledged_write();
	return it_summary();
}
