/* Helpers for integration tests: the fixture's environment, connections,
 * demo logins, direct SQL, and the harness that stops and starts servers. */
#ifndef CRM_ITEST_H
#define CRM_ITEST_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "check.h"
#include "crmclient.h"

/* Loads $CRM_TEST_ENV into the environment; exits 1 if missing. */
void it_init(void);
const char *it_env(const char *key);
/* A connected client after the hello; NULL with the reason printed. */
struct crmc *it_connect(void);
/* The first demo user with this role ("consultant", "group_admin", ...), and
 * optionally at this store (NULL: any). */
bool it_demo_user(const char *role, const char *store, char *user, size_t ucap, char *password,
		  size_t pcap);
/* Logs `c` in; returns the status code. */
Crm__Code it_login_as(struct crmc *c, const char *user, const char *password);
/* A connection logged in as the demo user of `role` at `store` (NULL: group
 * roles); NULL, with a message, when there is none or the login fails. */
struct crmc *it_login_demo(const char *role, const char *store);
/* Connects and logs in as the first demo user with `role`. */
struct crmc *it_login(const char *role);
/* Sends and waits up to 30 s; NULL when the connection failed. */
Crm__Envelope *it_call(struct crmc *c, Crm__Envelope *req);
/* Queues a customer create (not flushed). Returns the request id. */
uint64_t it_send_create(struct crmc *c, const char *id, const char *name, const char *phone);
Crm__Envelope *it_create(struct crmc *c, const char *id, const char *name, const char *phone);
Crm__Envelope *it_get(struct crmc *c, const char *id);
/* Queues a change of customer `id`'s name, read at `version` (flushed).
 * Returns the request id. */
uint64_t it_send_rename(struct crmc *c, const char *id, uint64_t version, const char *name);
/* The same, waiting up to 30 s for the answer. */
Crm__Envelope *it_rename(struct crmc *c, const char *id, uint64_t version, const char *name);
/* A unique valid mobile number for this run. */
void it_phone(char out[16]);
/* Runs `harness.sh CMD $CRM_TEST_DIR [ARG]`; returns its exit status. */
int it_harness(const char *cmd, const char *arg);
/* A superuser connection to the test database. */
PGconn *it_db(void);
/* A connection as crmd's own database role (the password from its config),
 * to call the SQL functions as crmd does; NULL if there is none. */
PGconn *it_db_app(void);
/* Runs a query that returns one value; the value as text (static buffer). */
const char *it_db_value(PGconn *db, const char *sql, const char *param);
void it_free(Crm__Envelope *env);

/* Adds (or resets the password of and enables) a user as the database
 * superuser; `store_code` NULL for group roles. */
bool it_add_user(PGconn *db, const char *username, const char *display, const char *role,
		 const char *store_code, const char *password);
/* Another crmd on the fixture's database: the fixture's configuration with
 * the `sets` overrides ("section.key=value", NULL-terminated) on a free
 * port, its log in $CRM_TEST_DIR/crmd-PORT.log. */
struct it_crmd {
	pid_t pid;
	char server[64];  /* 127.0.0.1:PORT */
	char log[512];
};
/* Starts it and waits (max 20 s) until its log shows event=server.listening
 * and `ready` (NULL: nothing more); false with the reason printed. */
bool it_crmd_spawn(struct it_crmd *d, const char *const *sets, const char *ready);
/* SIGTERM and wait; true when it exited 0 and logged no sanitizer report. */
bool it_crmd_stop(struct it_crmd *d);
/* Connects to `server` with a client certificate (NULL cert: none). */
struct crmc *it_connect_cert(const char *server, const char *cert, const char *key);
/* Connects to `server` (another crmd) and logs in as the first demo user
 * with `role`; NULL, with a message, when that fails. */
struct crmc *it_login_at(const char *server, const char *role);
/* The value of the counter `name` of the admin Stats request (`c` must be
 * logged in with the right); UINT64_MAX when there is none. */
uint64_t it_stat(struct crmc *c, const char *name);

/* Prints the last `lines` lines of the fixture crmd's log to stderr. */
void it_show_crmd_log(int lines);
/* check_summary, and when a check failed, the end of crmd's log first: a
 * failure in CI leaves nothing else behind (the fixture removes its folder). */
static inline int it_summary(void)
{
	if (check_failed)
		it_show_crmd_log(60);
	return check_summary();
}

#endif
