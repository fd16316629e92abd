#include "itest.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "textcheck.h"

void it_init(void)
{
	const char *path = getenv("CRM_TEST_ENV");
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f) {
		fprintf(stderr, "CRM_TEST_ENV does not name the fixture's env file: run through ctest\n");
		exit(1);
	}
	char line[2048];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		setenv(line, eq + 1, 1);
	}
	fclose(f);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

const char *it_env(const char *key)
{
	const char *v = getenv(key);
	return v ? v : "";
}

struct crmc *it_connect(void)
{
	struct crmc_options opt = {
		.server = it_env("CRM_SERVER"),
		.ca_file = it_env("CRM_CA"),
		.client_name = "itest",
	};
	char err[512];
	struct crmc *c = crmc_connect(&opt, NULL, err, sizeof err);
	if (!c)
		fprintf(stderr, "connect: %s\n", err);
	return c;
}

bool it_demo_user(const char *role, const char *store, char *user, size_t ucap, char *password,
		  size_t pcap)
{
	FILE *f = fopen(it_env("CRM_LOGINS"), "r");
	if (!f)
		return false;
	char u[128], p[128], r[64], s[64];
	bool found = false;
	while (fscanf(f, "%127s %127s %63s %63s", u, p, r, s) == 4) {
		if (strcmp(r, role) == 0 && (!store || strcmp(s, store) == 0)) {
			snprintf(user, ucap, "%s", u);
			snprintf(password, pcap, "%s", p);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

Crm__Envelope *it_call(struct crmc *c, Crm__Envelope *req)
{
	char err[512];
	Crm__Envelope *resp = crmc_call(c, req, 30000, err, sizeof err);
	if (!resp)
		fprintf(stderr, "call: %s\n", err);
	return resp;
}

void it_free(Crm__Envelope *env)
{
	if (env)
		crm__envelope__free_unpacked(env, NULL);
}

Crm__Code it_login_as(struct crmc *c, const char *user, const char *password)
{
	Crm__LoginRequest lr = CRM__LOGIN_REQUEST__INIT;
	lr.username = (char *)user;
	lr.password = (char *)password;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGIN;
	req.login = &lr;
	Crm__Envelope *resp = it_call(c, &req);
	if (!resp)
		return CRM__CODE__UNAVAILABLE;
	Crm__Code code = crmc_status(resp);
	it_free(resp);
	return code;
}

struct crmc *it_login(const char *role)
{
	return it_login_demo(role, NULL);
}

uint64_t it_send_create(struct crmc *c, const char *id, const char *name, const char *phone)
{
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = (char *)id;
	cu.name = (char *)name;
	cu.phone = (char *)phone;
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	return crmc_send(c, &req);
}

Crm__Envelope *it_create(struct crmc *c, const char *id, const char *name, const char *phone)
{
	uint64_t rid = it_send_create(c, id, name, phone);
	char err[512];
	Crm__Envelope *resp = crmc_wait(c, rid, 30000, err, sizeof err);
	if (!resp)
		fprintf(stderr, "create: %s\n", err);
	return resp;
}

Crm__Envelope *it_get(struct crmc *c, const char *id)
{
	Crm__CustomerGet g = CRM__CUSTOMER_GET__INIT;
	g.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
	req.customer_get = &g;
	return it_call(c, &req);
}

uint64_t it_send_rename(struct crmc *c, const char *id, uint64_t version, const char *name)
{
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.name = (char *)name;
	const char *fields[] = {"name"};
	Crm__CustomerUpdate u = CRM__CUSTOMER_UPDATE__INIT;
	u.id = (char *)id;
	u.version = version;
	u.fields = (char **)fields;
	u.n_fields = 1;
	u.customer = &cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_UPDATE;
	req.customer_update = &u;
	uint64_t rid = crmc_send(c, &req);
	crmc_flush(c);
	return rid;
}

Crm__Envelope *it_rename(struct crmc *c, const char *id, uint64_t version, const char *name)
{
	uint64_t rid = it_send_rename(c, id, version, name);
	char err[512];
	Crm__Envelope *resp = crmc_wait(c, rid, 30000, err, sizeof err);
	if (!resp)
		fprintf(stderr, "rename: %s\n", err);
	return resp;
}

/* 17 + the last 4 digits of the pid + a 5-digit counter: unique within a
 * process and between the test processes of one run (their pids are close
 * together, far from wrapping), so no test meets another's customer. */
void it_phone(char out[16])
{
	static unsigned counter;
	snprintf(out, 16, "17%04u%05u", (unsigned)getpid() % 10000u, counter++ % 100000u);
}

int it_harness(const char *cmd, const char *arg)
{
	char line[4096];
	snprintf(line, sizeof line, "bash '%s' %s '%s' %s", it_env("CRM_HARNESS"), cmd,
		 it_env("CRM_TEST_DIR"), arg ? arg : "");
	int rc = system(line);
	/* crmd's pid may have changed. */
	it_init();
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

PGconn *it_db(void)
{
	const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
	const char *vals[] = {"127.0.0.1", it_env("CRM_PG_PORT"), "crm", "postgres",
			      it_env("CRM_PG_PASSWORD"), NULL};
	PGconn *db = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(db) != CONNECTION_OK)
		fprintf(stderr, "db: %s\n", PQerrorMessage(db));
	return db;
}

PGconn *it_db_app(void)
{
	FILE *f = fopen(it_env("CRMD_CONFIG"), "r");
	if (!f)
		return NULL;
	char line[512], pw[512] = "";
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "password = ", 11)) {
			line[strcspn(line, "\r\n")] = '\0';
			snprintf(pw, sizeof pw, "%s", line + 11);
		}
	fclose(f);
	if (!pw[0])
		return NULL;
	const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
	const char *vals[] = {"127.0.0.1", it_env("CRM_PG_PORT"), "crm", "crmd", pw, NULL};
	PGconn *app = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(app) != CONNECTION_OK) {
		fprintf(stderr, "crmd's role: %s\n", PQerrorMessage(app));
		PQfinish(app);
		return NULL;
	}
	return app;
}

const char *it_db_value(PGconn *db, const char *sql, const char *param)
{
	static char value[1024];
	const char *params[] = {param};
	PGresult *res = PQexecParams(db, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
		fprintf(stderr, "db: %s: %s\n", sql, PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	snprintf(value, sizeof value, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

bool it_add_user(PGconn *db, const char *username, const char *display, const char *role,
		 const char *store_code, const char *password)
{
	char hash[crypto_pwhash_STRBYTES];
	if (sodium_init() < 0 ||
	    crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return false;
	const char *params[] = {username, display, role, store_code, hash};
	PGresult *res = PQexecParams(
		db,
		"INSERT INTO crm.users (username, display_name, role, store_id, password_hash)"
		" VALUES ($1, $2, $3, (SELECT s.id FROM crm.stores s WHERE s.code = $4), $5)"
		" ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
		" disabled = false, locked_until = NULL",
		5, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK && atoi(PQcmdTuples(res)) == 1;
	if (!ok)
		fprintf(stderr, "add user %s: %s\n", username, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static bool file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

bool it_crmd_spawn(struct it_crmd *d, const char *const *sets, const char *ready)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	if (port < 0)
		return false;
	snprintf(d->server, sizeof d->server, "127.0.0.1:%d", port);
	snprintf(d->log, sizeof d->log, "%s/crmd-%d.log", it_env("CRM_TEST_DIR"), port);
	char bin[512], listen[64];
	snprintf(bin, sizeof bin, "%s/crmd", it_env("CRM_BUILD_DIR"));
	snprintf(listen, sizeof listen, "server.listen_port=%d", port);
	const char *argv[64] = {"crmd", "-c", it_env("CRMD_CONFIG"), "--set", listen};
	size_t n = 5;
	for (size_t i = 0; sets && sets[i] && n + 3 < sizeof argv / sizeof argv[0]; i++) {
		argv[n++] = "--set";
		argv[n++] = sets[i];
	}
	argv[n] = NULL;
	/* A log left by an earlier crmd on the same port (ports are reused)
	 * would show its "listening" before this one truncates the file. */
	unlink(d->log);
	d->pid = fork();
	if (d->pid == 0) {
		int out = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(out, 1);
		dup2(out, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; d->pid > 0 && i < 200; i++) {
		if (file_has(d->log, "event=server.listening") && (!ready || file_has(d->log, ready)))
			return true;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			break;
		}
		usleep(100 * 1000);
	}
	fprintf(stderr, "crmd on %s did not start; see %s\n", d->server, d->log);
	it_crmd_stop(d);
	return false;
}

bool it_crmd_stop(struct it_crmd *d)
{
	int status = -1;
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, &status, 0);
	}
	d->pid = 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	       !file_has(d->log, "AddressSanitizer") && !file_has(d->log, "LeakSanitizer") &&
	       !file_has(d->log, "runtime error:");
}

struct crmc *it_connect_cert(const char *server, const char *cert, const char *key)
{
	struct crmc_options opt = {
		.server = server,
		.ca_file = it_env("CRM_CA"),
		.client_name = "itest",
		.cert_file = cert,
		.key_file = key,
	};
	char err[512];
	struct crmc *c = crmc_connect(&opt, NULL, err, sizeof err);
	if (!c)
		fprintf(stderr, "connect to %s: %s\n", server, err);
	return c;
}

struct crmc *it_login_demo(const char *role, const char *store)
{
	char user[128], pw[128];
	if (!it_demo_user(role, store, user, sizeof user, pw, sizeof pw)) {
		fprintf(stderr, "no demo user %s at %s\n", role, store ? store : "-");
		return NULL;
	}
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, pw) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

void it_show_crmd_log(int lines)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/crmd.log", it_env("CRM_TEST_DIR"));
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "(no crmd log at %s)\n", path);
		return;
	}
	/* Two passes: count the lines, then print the last ones. */
	long total = 0;
	int ch;
	while ((ch = getc(f)) != EOF)
		total += ch == '\n';
	rewind(f);
	long skip = total > lines ? total - lines : 0, at = 0;
	fprintf(stderr, "--- last %ld lines of %s ---\n", total - skip, path);
	char buf[4096];
	while (fgets(buf, sizeof buf, f)) {
		if (at >= skip)
			fputs(buf, stderr);
		if (strchr(buf, '\n'))
			at++;
	}
	fprintf(stderr, "--- end of crmd log ---\n");
	fclose(f);
}

struct crmc *it_login_at(const char *server, const char *role)
{
	char user[128], pw[128];
	if (!it_demo_user(role, NULL, user, sizeof user, pw, sizeof pw)) {
		fprintf(stderr, "no demo user with role %s\n", role);
		return NULL;
	}
	struct crmc *c = it_connect_cert(server, NULL, NULL);
	if (c && it_login_as(c, user, pw) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s on %s failed\n", user, server);
		crmc_close(c);
		return NULL;
	}
	return c;
}

uint64_t it_stat(struct crmc *c, const char *name)
{
	Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_STATS;
	req.stats = &sr;
	Crm__Envelope *resp = it_call(c, &req);
	uint64_t v = UINT64_MAX;
	for (size_t i = 0; resp && resp->stats_reply && i < resp->stats_reply->n_counters; i++)
		if (!strcmp(resp->stats_reply->counters[i]->name, name))
			v = resp->stats_reply->counters[i]->value;
	it_free(resp);
	return v;
}
