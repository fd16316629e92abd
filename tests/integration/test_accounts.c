/* Accounts and the audit log against real crmd and PostgreSQL: lockout after
 * repeated wrong passwords and the admin unlock, throttling by source
 * address, the password policy, session list/revoke, disabling a user, idle
 * expiry, the audit log's append-only rule for crmd's role, audited
 * permission denials, and `crm audit` (protocol and command line). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

static int64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ------------------------------------------------------------ helpers */

/* Runs a shell command with `input` (may be NULL) as its standard input;
 * its output and errors go to `out`. Returns the exit status. */
static int run(const char *input, char *out, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int run(const char *input, char *out, size_t cap, const char *fmt, ...)
{
	char cmd[4096], in_path[] = "/tmp/crm-test-in.XXXXXX";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int fd = mkstemp(in_path);
	if (fd < 0)
		return -1;
	if (input && (write(fd, input, strlen(input)) < 0 || write(fd, "\n", 1) < 0)) {
		close(fd);
		unlink(in_path);
		return -1;
	}
	close(fd);
	char full[4400];
	snprintf(full, sizeof full, "( %s ) <%s 2>&1", cmd, in_path);
	FILE *p = popen(full, "r");
	size_t n = 0;
	if (out && cap)
		out[0] = '\0';
	if (p) {
		char buf[1024];
		size_t got;
		while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
			if (out && n + 1 < cap) {
				size_t take = got < cap - n - 1 ? got : cap - n - 1;
				memcpy(out + n, buf, take);
				n += take;
				out[n] = '\0';
			}
		}
	}
	int status = p ? pclose(p) : -1;
	unlink(in_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int crmctl(const char *input, char *out, size_t cap, const char *args)
{
	return run(input, out, cap, "'%s/crmctl' -c '%s' %s", it_env("CRM_BUILD_DIR"),
		   it_env("CRMD_CONFIG"), args);
}

/* A user of store BJ01 made for this run, with a password that meets the
 * policy. */
static bool make_user(const char *name, const char *password)
{
	char args[256], out[2048];
	snprintf(args, sizeof args, "user add --username %s --role consultant --store BJ01"
				    " --password-stdin", name);
	int rc = crmctl(password, out, sizeof out, args);
	if (rc != 0)
		fprintf(stderr, "crmctl %s: %s\n", args, out);
	return rc == 0;
}

static void unique_name(char *out, size_t cap, const char *prefix)
{
	static int n;
	snprintf(out, cap, "%s%ld.%d", prefix, (long)getpid(), n++);
}

/* Logs in; returns the status and copies the message. */
static Crm__Code login_msg(struct crmc *c, const char *user, const char *password, char *msg,
			   size_t cap)
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
	if (msg)
		snprintf(msg, cap, "%s", crmc_status_message(resp));
	it_free(resp);
	return code;
}

static Crm__Code whoami(struct crmc *c, char *msg, size_t cap)
{
	Crm__WhoAmIRequest w = CRM__WHO_AM_IREQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_WHOAMI;
	req.whoami = &w;
	Crm__Envelope *resp = it_call(c, &req);
	if (!resp)
		return CRM__CODE__UNAVAILABLE;
	Crm__Code code = crmc_status(resp);
	if (msg)
		snprintf(msg, cap, "%s", crmc_status_message(resp));
	it_free(resp);
	return code;
}

static long db_count(PGconn *db, const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static bool db_exec(PGconn *db, const char *sql)
{
	PGresult *res = PQexec(db, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "db: %s: %s\n", sql, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

/* The SQLSTATE a statement fails with ("" when it succeeds). */
static const char *db_error_state(PGconn *db, const char *sql)
{
	static char state[8];
	PGresult *res = PQexec(db, sql);
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	snprintf(state, sizeof state, "%s", s ? s : "");
	PQclear(res);
	return state;
}

static Crm__Envelope *audit_query(struct crmc *c, Crm__AuditQuery *q)
{
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_AUDIT_QUERY;
	req.audit_query = q;
	return it_call(c, &req);
}

/* ------------------------------------------------------------ tests */

static void test_password_policy_is_enforced_with_a_clear_message(void)
{
	char name[64], out[2048];
	unique_name(name, sizeof name, "t.password"); /* 10+ characters whatever the pid */
	char args[256];
	snprintf(args, sizeof args, "user add --username %s --role consultant --store BJ01"
				    " --password-stdin", name);
	CHECK(crmctl("Sh0rt!", out, sizeof out, args) != 0);
	CHECK(strstr(out, "at least 10 characters") != NULL);
	CHECK(crmctl("abcdefghijkl", out, sizeof out, args) != 0);
	CHECK(strstr(out, "two kinds of characters") != NULL);
	CHECK(crmctl("1234567890123", out, sizeof out, args) != 0);
	CHECK(strstr(out, "only digits") != NULL);
	/* The username itself, in any case, is refused. */
	char upper[64];
	snprintf(upper, sizeof upper, "%s", name);
	upper[0] = 'T';
	CHECK(crmctl(upper, out, sizeof out, args) != 0);
	if (!strstr(out, "must not be the username"))
		fprintf(stderr, "crmctl with password %s said: %s\n", upper, out);
	CHECK(strstr(out, "must not be the username") != NULL);
	PGconn *db = it_db();
	CHECK(db_count(db, "SELECT count(*) FROM crm.users WHERE username = $1", name) == 0);
	CHECK(crmctl("Good-pass-42", out, sizeof out, args) == 0);
	CHECK(db_count(db, "SELECT count(*) FROM crm.users WHERE username = $1", name) == 1);
	/* crmctl user password applies the same policy, then works. */
	char pargs[128];
	snprintf(pargs, sizeof pargs, "user password %s --password-stdin", name);
	CHECK(crmctl("short", out, sizeof out, pargs) != 0);
	CHECK(strstr(out, "at least 10 characters") != NULL);
	CHECK(crmctl("Another-pass-43", out, sizeof out, pargs) == 0);
	struct crmc *c = it_connect();
	if (c) {
		CHECK(login_msg(c, name, "Good-pass-42", NULL, 0) == CRM__CODE__UNAUTHENTICATED);
		CHECK(login_msg(c, name, "Another-pass-43", NULL, 0) == CRM__CODE__OK);
		crmc_close(c);
	}
	/* Every demo password meets the policy (crmctl demo made them). */
	FILE *f = fopen(it_env("CRM_LOGINS"), "r");
	CHECK(f != NULL);
	if (f) {
		char u[128], p[128], r[64], s[64];
		int n = 0, weak = 0;
		while (fscanf(f, "%127s %127s %63s %63s", u, p, r, s) == 4) {
			n++;
			bool l = false, up = false, d = false;
			for (char *q = p; *q; q++) {
				l |= *q >= 'a' && *q <= 'z';
				up |= *q >= 'A' && *q <= 'Z';
				d |= *q >= '0' && *q <= '9';
			}
			if (strlen(p) < 10 || l + up + d < 2 || !strcasecmp(u, p))
				weak++;
		}
		fclose(f);
		CHECK(n >= 17);
		CHECK(weak == 0);
	}
	PQfinish(db);
}

static void test_repeated_wrong_passwords_lock_the_account_until_unlocked(void)
{
	char name[64], msg[512], out[2048];
	unique_name(name, sizeof name, "t.lock");
	const char *password = "Right-pass-77";
	CHECK(make_user(name, password));
	struct crmc *c = it_connect();
	if (!c)
		return;
	PGconn *db = it_db();
	/* Policy default: 5 wrong passwords within 15 minutes lock for 15. */
	for (int i = 0; i < 5; i++) {
		CHECK(login_msg(c, name, "Wrong-pass-00", msg, sizeof msg) ==
		      CRM__CODE__UNAUTHENTICATED);
		CHECK(strstr(msg, "wrong username or password") != NULL);
	}
	CHECK(login_msg(c, name, password, msg, sizeof msg) == CRM__CODE__UNAUTHENTICATED);
	CHECK(strstr(msg, "locked") != NULL);
	CHECK(strstr(msg, "until 20") != NULL && strstr(msg, "UTC") != NULL);
	CHECK(strstr(msg, "crmctl user unlock") != NULL);
	/* Every attempt is recorded, the refused right password included. */
	CHECK(db_count(db, "SELECT count(*) FROM crm.login_failures WHERE username = $1", name) == 6);
	CHECK(db_count(db, "SELECT count(*) FROM crm.login_failures WHERE username = $1"
			   " AND reason = 'account locked'", name) == 1);
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE actor_username = $1"
			   " AND action = 'auth.login_failed' AND outcome = 'failed'"
			   " AND source_addr = '127.0.0.1'", name) == 6);
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE subject = $1"
			   " AND action = 'account.locked'", name) == 1);
	CHECK(db_count(db, "SELECT count(*) FROM crm.users WHERE username = $1"
			   " AND locked_until > now() + interval '14 minutes'", name) == 1);
	/* The admin unlock restores the login, and is audited. */
	char args[128];
	snprintf(args, sizeof args, "user unlock %s", name);
	CHECK(crmctl(NULL, out, sizeof out, args) == 0);
	CHECK(strstr(out, "unlocked") != NULL);
	CHECK(login_msg(c, name, password, NULL, 0) == CRM__CODE__OK);
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE subject = $1"
			   " AND action = 'account.unlocked' AND actor_username LIKE 'crmctl%'",
		       name) == 1);
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE actor_username = $1"
			   " AND action = 'auth.login' AND source_addr = '127.0.0.1'", name) == 1);
	/* After a success the earlier failures no longer count: one more wrong
	 * password does not lock again. */
	struct crmc *c2 = it_connect();
	if (c2) {
		CHECK(login_msg(c2, name, "Wrong-pass-00", NULL, 0) == CRM__CODE__UNAUTHENTICATED);
		CHECK(login_msg(c2, name, password, NULL, 0) == CRM__CODE__OK);
		crmc_close(c2);
	}
	PQfinish(db);
	crmc_close(c);
}

static void test_failures_from_one_address_are_throttled_not_locked(void)
{
	PGconn *db = it_db();
	char user[128], pw[128], msg[512];
	CHECK(it_demo_user("consultant", "GZ01", user, sizeof user, pw, sizeof pw));
	CHECK(db_exec(db, "DELETE FROM crm.login_failures WHERE source_addr = '127.0.0.1'"));
	CHECK(db_exec(db, "UPDATE crm.group_policy SET addr_max_failures = 3, addr_window_s = 60"));
	struct crmc *c = it_connect();
	if (c) {
		for (int i = 0; i < 3; i++)
			CHECK(login_msg(c, "nobody.here", "Whatever-123", NULL, 0) ==
			      CRM__CODE__UNAUTHENTICATED);
		/* Now even the right password of another account waits. */
		CHECK(login_msg(c, user, pw, msg, sizeof msg) == CRM__CODE__RESOURCE_EXHAUSTED);
		const char *after = strstr(msg, "retry after ");
		CHECK(after != NULL);
		int secs = after ? atoi(after + 12) : -1;
		CHECK(secs >= 1 && secs <= 60);
		CHECK(strstr(msg, "127.0.0.1") != NULL);
		CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE action ="
				   " 'auth.login_throttled' AND actor_username = $1", user) == 1);
		/* The account itself is not locked: once the address's failures
		 * age out (here: are removed), it logs in. */
		CHECK(db_count(db, "SELECT count(*) FROM crm.users WHERE username = $1"
				   " AND locked_until IS NOT NULL", user) == 0);
		CHECK(db_exec(db, "DELETE FROM crm.login_failures WHERE source_addr = '127.0.0.1'"));
		CHECK(login_msg(c, user, pw, NULL, 0) == CRM__CODE__OK);
		crmc_close(c);
	}
	CHECK(db_exec(db, "UPDATE crm.group_policy SET addr_max_failures = 20, addr_window_s = 300"));
	PQfinish(db);
}

static void test_sessions_are_listed_and_revoked(void)
{
	char name[64], out[8192], args[256];
	unique_name(name, sizeof name, "t.sess");
	const char *password = "Session-pass-1";
	CHECK(make_user(name, password));
	struct crmc *a = it_connect(), *b = it_connect();
	if (!a || !b) {
		if (a)
			crmc_close(a);
		if (b)
			crmc_close(b);
		return;
	}
	CHECK(login_msg(a, name, password, NULL, 0) == CRM__CODE__OK);
	CHECK(login_msg(b, name, password, NULL, 0) == CRM__CODE__OK);
	PGconn *db = it_db();
	char first[64] = "";
	const char *v = it_db_value(db, "SELECT s.id FROM crm.sessions s JOIN crm.users u"
					" ON u.id = s.user_id WHERE u.username = $1"
					" ORDER BY s.created_at LIMIT 1", name);
	if (v)
		snprintf(first, sizeof first, "%s", v);
	snprintf(args, sizeof args, "session list --user %s", name);
	CHECK(crmctl(NULL, out, sizeof out, args) == 0);
	CHECK(first[0] && strstr(out, first) != NULL);
	CHECK(strstr(out, "live") != NULL);
	CHECK(crmctl(NULL, out, sizeof out, "session list") == 0);
	CHECK(first[0] && strstr(out, first) != NULL);
	/* Revoking the first session: its connection is logged out on its next
	 * request; the other one goes on. */
	snprintf(args, sizeof args, "session revoke %s", first);
	CHECK(crmctl(NULL, out, sizeof out, args) == 0);
	char msg[256];
	CHECK(whoami(a, msg, sizeof msg) == CRM__CODE__UNAUTHENTICATED);
	CHECK(whoami(a, NULL, 0) == CRM__CODE__UNAUTHENTICATED);
	CHECK(whoami(b, NULL, 0) == CRM__CODE__OK);
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE action = 'session.revoked'"
			   " AND entity_id = $1", first) == 1);
	/* Revoking again is refused plainly. */
	CHECK(crmctl(NULL, out, sizeof out, args) != 0);
	CHECK(strstr(out, "no live session") != NULL);
	snprintf(args, sizeof args, "session revoke --user %s", name);
	CHECK(crmctl(NULL, out, sizeof out, args) == 0);
	CHECK(strstr(out, "revoked 1 live session") != NULL);
	CHECK(whoami(b, NULL, 0) == CRM__CODE__UNAUTHENTICATED);
	PQfinish(db);
	crmc_close(a);
	crmc_close(b);
}

static void test_disabling_a_user_ends_their_live_session(void)
{
	char name[64], out[2048], args[128], msg[256];
	unique_name(name, sizeof name, "t.dis");
	const char *password = "Disable-pass-2";
	CHECK(make_user(name, password));
	struct crmc *c = it_connect();
	if (!c)
		return;
	CHECK(login_msg(c, name, password, NULL, 0) == CRM__CODE__OK);
	CHECK(whoami(c, NULL, 0) == CRM__CODE__OK);
	snprintf(args, sizeof args, "user disable %s", name);
	CHECK(crmctl(NULL, out, sizeof out, args) == 0);
	CHECK(strstr(out, "1 live session(s) ended") != NULL);
	CHECK(whoami(c, NULL, 0) == CRM__CODE__UNAUTHENTICATED);
	CHECK(login_msg(c, name, password, msg, sizeof msg) == CRM__CODE__UNAUTHENTICATED);
	CHECK(strstr(msg, "disabled") != NULL);
	snprintf(args, sizeof args, "user enable %s", name);
	CHECK(crmctl(NULL, out, sizeof out, args) == 0);
	CHECK(login_msg(c, name, password, NULL, 0) == CRM__CODE__OK);
	PGconn *db = it_db();
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE subject = $1 AND action IN"
			   " ('account.disabled', 'account.enabled', 'session.revoked')", name) == 3);
	PQfinish(db);
	crmc_close(c);
}

static void test_idle_sessions_expire_and_use_keeps_them_alive(void)
{
	char name[64], msg[256];
	unique_name(name, sizeof name, "t.idle");
	const char *password = "Idle-pass-333";
	CHECK(make_user(name, password));
	PGconn *db = it_db();
	CHECK(db_exec(db, "UPDATE crm.group_policy SET session_idle_s = 3"));
	struct crmc *c = it_connect();
	if (c) {
		CHECK(login_msg(c, name, password, NULL, 0) == CRM__CODE__OK);
		/* Used every second for five seconds: longer than the timeout. */
		for (int i = 0; i < 5; i++) {
			sleep(1);
			CHECK(whoami(c, NULL, 0) == CRM__CODE__OK);
		}
		sleep(5);
		CHECK(whoami(c, msg, sizeof msg) == CRM__CODE__UNAUTHENTICATED);
		CHECK(strstr(msg, "without use") != NULL);
		crmc_close(c);
	}
	CHECK(db_exec(db, "UPDATE crm.group_policy SET session_idle_s = 1800"));
	PQfinish(db);
}

/* The password crmd's role connects with, from the fixture's crmd.ini. */
static bool app_password(char *out, size_t cap)
{
	FILE *f = fopen(it_env("CRMD_CONFIG"), "r");
	if (!f)
		return false;
	char line[512];
	bool found = false;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "password = ", 11)) {
			line[strcspn(line, "\r\n")] = '\0';
			size_t n = strlen(line + 11);
			n = n < cap ? n : cap - 1;
			memcpy(out, line + 11, n);
			out[n] = '\0';
			found = true;
		}
	}
	fclose(f);
	return found;
}

static void test_audit_log_is_append_only(void)
{
	char pw[256];
	CHECK(app_password(pw, sizeof pw));
	const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
	const char *vals[] = {"127.0.0.1", it_env("CRM_PG_PORT"), "crm", "crmd", pw, NULL};
	PGconn *app = PQconnectdbParams(keys, vals, 0);
	CHECK(PQstatus(app) == CONNECTION_OK);
	PGconn *db = it_db();
	long before = db_count(db, "SELECT count(*) FROM crm.audit_log", NULL);
	CHECK(before > 0);
	/* crmd's role: no UPDATE, DELETE, TRUNCATE, not even a direct INSERT
	 * or SELECT; only the definer function appends. */
	CHECK_STR(db_error_state(app, "UPDATE crm.audit_log SET reason = 'edited'"), "42501");
	CHECK_STR(db_error_state(app, "DELETE FROM crm.audit_log"), "42501");
	CHECK_STR(db_error_state(app, "TRUNCATE crm.audit_log"), "42501");
	CHECK_STR(db_error_state(app, "INSERT INTO crm.audit_log (action, outcome)"
				      " VALUES ('x.y', 'ok')"), "42501");
	CHECK_STR(db_error_state(app, "SELECT count(*) FROM crm.audit_log"), "42501");
	CHECK_STR(db_error_state(app, "SELECT crm.audit_purge(now() - interval '1000 days', 'x')"),
		  "42501");
	CHECK_STR(db_error_state(app, "SELECT crm.audit_append('test.by_crmd',"
				      " p_reason => 'appended by crmd''s role')"), "");
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE action = 'test.by_crmd'",
		       NULL) >= 1);
	/* Even the owner cannot change or delete entries, except through the
	 * retention function, which keeps 180 days. */
	CHECK_STR(db_error_state(db, "UPDATE crm.audit_log SET reason = 'edited'"), "DC403");
	CHECK_STR(db_error_state(db, "DELETE FROM crm.audit_log"), "DC403");
	CHECK_STR(db_error_state(db, "TRUNCATE crm.audit_log"), "DC403");
	CHECK_STR(db_error_state(db, "SELECT crm.audit_purge(now() - interval '10 days', 'test')"),
		  "DC400");
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log", NULL) >= before + 1);
	CHECK(db_count(db, "SELECT count(*) FROM crm.audit_log WHERE reason = 'edited'", NULL) == 0);
	PQfinish(app);
	PQfinish(db);
}

static void test_permission_denials_are_audited_without_delay(void)
{
	char user[128], pw[128];
	CHECK(it_demo_user("call_center", "SH01", user, sizeof user, pw, sizeof pw));
	struct crmc *c = it_connect();
	if (!c)
		return;
	CHECK(login_msg(c, user, pw, NULL, 0) == CRM__CODE__OK);
	PGconn *db = it_db();
	long before = db_count(db, "SELECT count(*) FROM crm.audit_log WHERE actor_username = $1"
				   " AND action = 'permission.denied'", user);
	Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_STATS;
	req.stats = &sr;
	Crm__Envelope *resp = it_call(c, &req);
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
	it_free(resp);
	/* Written after the reply: poll for it briefly. */
	long after = before;
	for (int i = 0; i < 50 && after == before; i++) {
		usleep(100 * 1000);
		after = db_count(db, "SELECT count(*) FROM crm.audit_log WHERE actor_username = $1"
				     " AND action = 'permission.denied' AND outcome = 'denied'"
				     " AND details->>'request' = 'admin.stats'"
				     " AND source_addr = '127.0.0.1'", user);
	}
	CHECK(after == before + 1);
	PQfinish(db);
	crmc_close(c);
}

static void test_audit_filters_and_who_may_read(void)
{
	char name[64];
	unique_name(name, sizeof name, "t.aud");
	const char *password = "Audit-pass-444";
	CHECK(make_user(name, password));
	struct crmc *u = it_connect();
	if (u) {
		CHECK(login_msg(u, name, "Wrong-pass-00", NULL, 0) == CRM__CODE__UNAUTHENTICATED);
		CHECK(login_msg(u, name, password, NULL, 0) == CRM__CODE__OK);
		crmc_close(u);
	}
	/* An entry about a customer, as the customer functions will write it. */
	PGconn *db = it_db();
	const char *cust = "0190f000-0000-7000-8000-00000000a0d1";
	CHECK(db_exec(db, "SELECT crm.audit_append('customer.reveal', p_entity => 'customer',"
			  " p_entity_id => '0190f000-0000-7000-8000-00000000a0d1',"
			  " p_customer_id => '0190f000-0000-7000-8000-00000000a0d1',"
			  " p_actor_name => 'test', p_reason => 'test entry')"));

	struct crmc *admin = it_login("group_admin");
	if (!admin) {
		PQfinish(db);
		return;
	}
	Crm__AuditQuery q = CRM__AUDIT_QUERY__INIT;
	q.username = name;
	Crm__Envelope *resp = audit_query(admin, &q);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->audit_page);
	if (resp && resp->audit_page) {
		const Crm__AuditPage *p = resp->audit_page;
		bool failed = false, ok = false, all_user = true;
		for (size_t i = 0; i < p->n_entries; i++) {
			all_user &= !strcmp(p->entries[i]->username, name) ||
				    !strcmp(p->entries[i]->subject, name);
			failed |= !strcmp(p->entries[i]->action, "auth.login_failed") &&
				  !strcmp(p->entries[i]->reason, "wrong password");
			ok |= !strcmp(p->entries[i]->action, "auth.login") &&
			      !strcmp(p->entries[i]->source_addr, "127.0.0.1");
			if (i > 0)
				CHECK(p->entries[i]->id < p->entries[i - 1]->id);
		}
		CHECK(p->n_entries >= 2);
		CHECK(all_user && failed && ok);
	}
	it_free(resp);

	/* Action: exact, and a prefix ending in "." */
	Crm__AuditQuery qa = CRM__AUDIT_QUERY__INIT;
	qa.username = name;
	qa.action = "auth.login";
	resp = audit_query(admin, &qa);
	CHECK(resp && resp->audit_page && resp->audit_page->n_entries == 1);
	it_free(resp);
	qa.action = "auth.";
	resp = audit_query(admin, &qa);
	CHECK(resp && resp->audit_page && resp->audit_page->n_entries == 2);
	it_free(resp);

	/* Customer. */
	Crm__AuditQuery qc = CRM__AUDIT_QUERY__INIT;
	qc.customer_id = (char *)cust;
	resp = audit_query(admin, &qc);
	CHECK(resp && resp->audit_page && resp->audit_page->n_entries == 1 &&
	      !strcmp(resp->audit_page->entries[0]->action, "customer.reveal") &&
	      !strcmp(resp->audit_page->entries[0]->customer_id, cust));
	it_free(resp);
	qc.customer_id = "not-a-uuid";
	resp = audit_query(admin, &qc);
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT && resp->status &&
	      !strcmp(resp->status->field, "customer_id"));
	it_free(resp);

	/* Time: nothing since an hour ahead; everything until then. */
	Crm__AuditQuery qt = CRM__AUDIT_QUERY__INIT;
	qt.username = name;
	qt.since = wall_ms() + 3600 * 1000;
	resp = audit_query(admin, &qt);
	CHECK(resp && resp->audit_page && resp->audit_page->n_entries == 0);
	it_free(resp);
	qt.since = wall_ms() - 3600 * 1000;
	qt.until = wall_ms() + 3600 * 1000;
	resp = audit_query(admin, &qt);
	CHECK(resp && resp->audit_page && resp->audit_page->n_entries >= 2);
	it_free(resp);

	/* Pages: two at a time, each older than the last. */
	Crm__AuditQuery qp = CRM__AUDIT_QUERY__INIT;
	qp.page_size = 2;
	resp = audit_query(admin, &qp);
	CHECK(resp && resp->audit_page && resp->audit_page->n_entries == 2 &&
	      resp->audit_page->next_before_id > 0);
	if (resp && resp->audit_page && resp->audit_page->n_entries == 2) {
		qp.before_id = resp->audit_page->next_before_id;
		Crm__Envelope *next = audit_query(admin, &qp);
		CHECK(next && next->audit_page && next->audit_page->n_entries == 2 &&
		      next->audit_page->entries[0]->id < qp.before_id);
		it_free(next);
	}
	it_free(resp);
	crmc_close(admin);

	/* A consultant may not read it, and the refusal is itself audited. */
	struct crmc *cons = it_login("consultant");
	if (cons) {
		Crm__AuditQuery q0 = CRM__AUDIT_QUERY__INIT;
		resp = audit_query(cons, &q0);
		CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
		it_free(resp);
		crmc_close(cons);
	}

	/* A store manager reads their store's entries only. */
	char mgr[128], mpw[128];
	CHECK(it_demo_user("store_manager", "BJ01", mgr, sizeof mgr, mpw, sizeof mpw));
	struct crmc *m = it_connect();
	if (m && login_msg(m, mgr, mpw, NULL, 0) == CRM__CODE__OK) {
		Crm__AuditQuery qm = CRM__AUDIT_QUERY__INIT;
		qm.page_size = 500;
		resp = audit_query(m, &qm);
		CHECK(resp && resp->audit_page && resp->audit_page->n_entries > 0);
		bool own = true, sees_user = false;
		for (size_t i = 0; resp && resp->audit_page && i < resp->audit_page->n_entries; i++) {
			own &= !strcmp(resp->audit_page->entries[i]->store_code, "BJ01");
			sees_user |= !strcmp(resp->audit_page->entries[i]->username, name);
		}
		CHECK(own);
		CHECK(sees_user); /* the test user works at BJ01 */
		it_free(resp);
		qm.store_code = "SH01";
		resp = audit_query(m, &qm);
		CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
		it_free(resp);
	}
	if (m)
		crmc_close(m);
	PQfinish(db);

	/* The command line: crm audit --json with filters, and exit 4 for a
	 * consultant. */
	char dir[] = "/tmp/crm-test-cli.XXXXXX";
	if (!mkdtemp(dir))
		return;
	char admin_user[128], admin_pw[128], out[65536];
	CHECK(it_demo_user("group_admin", NULL, admin_user, sizeof admin_user, admin_pw,
			   sizeof admin_pw));
	const char *crm = it_env("CRM_BUILD_DIR");
	CHECK(run(admin_pw, out, sizeof out, "CRM_CONFIG_DIR=%s '%s/crm' login --user %s"
		  " --password-stdin", dir, crm, admin_user) == 0);
	CHECK(run(NULL, out, sizeof out, "CRM_CONFIG_DIR=%s '%s/crm' --json audit --user %s"
		  " --action auth.login_failed --since 1h", dir, crm, name) == 0);
	CHECK(strstr(out, "\"action\": \"auth.login_failed\"") != NULL);
	CHECK(strstr(out, "\"action\": \"auth.login\",") == NULL);
	CHECK(run(NULL, out, sizeof out, "CRM_CONFIG_DIR=%s '%s/crm' audit --customer %s", dir,
		  crm, cust) == 0);
	CHECK(strstr(out, "customer.reveal") != NULL);
	CHECK(run(NULL, out, sizeof out, "CRM_CONFIG_DIR=%s '%s/crm' audit --since yesterday",
		  dir, crm) == 2);
	char cuser[128], cpw[128];
	CHECK(it_demo_user("consultant", "SH01", cuser, sizeof cuser, cpw, sizeof cpw));
	CHECK(run(cpw, out, sizeof out, "CRM_CONFIG_DIR=%s '%s/crm' login --user %s"
		  " --password-stdin", dir, crm, cuser) == 0);
	CHECK(run(NULL, out, sizeof out, "CRM_CONFIG_DIR=%s '%s/crm' audit", dir, crm) == 4);
	CHECK(strstr(out, "may not") != NULL);
	run(NULL, NULL, 0, "rm -rf '%s'", dir);
}

int main(void)
{
	it_init();
	test_password_policy_is_enforced_with_a_clear_message();
	test_repeated_wrong_passwords_lock_the_account_until_unlocked();
	test_failures_from_one_address_are_throttled_not_locked();
	test_sessions_are_listed_and_revoked();
	test_disabling_a_user_ends_their_live_session();
	test_idle_sessions_expire_and_use_keeps_them_alive();
	test_audit_log_is_append_only();
	test_permission_denials_are_audited_without_delay();
	test_audit_filters_and_who_may_read();
	/* Leave no failures from 127.0.0.1 behind for the tests after this one. */
	PGconn *db = it_db();
	db_exec(db, "DELETE FROM crm.login_failures WHERE source_addr = '127.0.0.1'");
	PQfinish(db);
	return it_summary();
}
