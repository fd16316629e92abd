/* crmctl: administration of a dealercrm database and its certificates.
 * Shared pieces of the command files: option parsing, database helpers and
 * the store/user operations that both the plain commands and `demo` use. */
#ifndef CRMCTL_H
#define CRMCTL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

/* ---- options (crmctl_main.c) */

enum ctl_opt_kind {
	CTL_OPT_VALUE, /* --name VALUE or --name=VALUE: const char ** */
	CTL_OPT_FLAG,  /* --name: bool * */
	CTL_OPT_LIST,  /* repeatable --name VALUE: struct ctl_list * */
};

#define CTL_LIST_MAX 32
struct ctl_list {
	const char *v[CTL_LIST_MAX];
	int n;
};

struct ctl_opt {
	const char *name;  /* without the leading "--" */
	enum ctl_opt_kind kind;
	void *out;
};

/* Parses argv[0..argc) against `opts` (terminated by a NULL name). Prints a
 * usage error naming `cmd` and returns CTL_USAGE on anything unknown. */
int ctl_parse(const char *cmd, int argc, char **argv, const struct ctl_opt *opts);
/* Prints "crmctl: <message>" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- database (crmctl_db.c) */

/* Connects as db.admin_user to `dbname`; prints why not and returns NULL. */
PGconn *ctl_admin_connect(const struct crm_config *cfg, const char *dbname);
/* Runs one parameterised statement; on failure prints "crmctl: <what>:
 * <reason>" and returns NULL. The caller PQclear()s the result. */
PGresult *ctl_query(PGconn *db, const char *what, const char *sql, int nparams,
		    const char *const *params);
bool ctl_run(PGconn *db, const char *what, const char *sql, int nparams,
	     const char *const *params);

int ctl_cmd_init(const struct crm_config *cfg, int argc, char **argv);
int ctl_cmd_migrate(const struct crm_config *cfg, int argc, char **argv);

/* ---- stores and users (crmctl_admin.c) */

bool ctl_role_valid(const char *role);
bool ctl_role_needs_store(const char *role);

/* Creates store `code` (and the group row on first use). *created tells
 * whether it was new. False after printing an error. */
bool ctl_store_add(PGconn *db, const char *group_name, const char *code, const char *name,
		   const char *city, const char *brand, bool *created);

enum ctl_user_outcome { CTL_USER_CREATED, CTL_USER_EXISTS, CTL_USER_RESET };
/* Creates the user with an Argon2id hash of `password`. An existing username
 * is left alone (CTL_USER_EXISTS), or gets the new password when
 * `reset_existing` (CTL_USER_RESET). False after printing an error. */
bool ctl_user_add(PGconn *db, const char *username, const char *display_name,
		  const char *role, const char *store_code, const char *password,
		  bool reset_existing, enum ctl_user_outcome *outcome);

/* A password from one line of stdin, or asked on the terminal without echo
 * (twice when `confirm`). False after printing why. */
bool ctl_read_password(const char *username, bool from_stdin, bool confirm, char *buf,
		       size_t cap);

int ctl_cmd_store(const struct crm_config *cfg, int argc, char **argv);
int ctl_cmd_user(const struct crm_config *cfg, int argc, char **argv);

/* ---- accounts and sessions (crmctl_accounts.c) */

/* The password policy: at least 10 characters, at least two kinds of
 * characters (lower-case, capitals, digits, others), not the username
 * (NULL: not checked). False with the reason for a person in `why`. */
bool ctl_password_check(const char *username, const char *password, char *why, size_t cap);
/* "crmctl (OS user)", the actor crmctl's changes are audited under. */
const char *ctl_actor(void);
/* user disable|enable|unlock|password NAME */
int ctl_cmd_user_account(const struct crm_config *cfg, int argc, char **argv);
int ctl_cmd_session(const struct crm_config *cfg, int argc, char **argv);

/* ---- demo data and certificates */

int ctl_cmd_demo(const struct crm_config *cfg, int argc, char **argv);
int ctl_cmd_certs(const struct crm_config *cfg, int argc, char **argv);
int ctl_cmd_stats(const struct crm_config *cfg, int argc, char **argv);
/* crmctl_seed.c: a large generated group for benchmarks. */
int ctl_cmd_seed(const struct crm_config *cfg, int argc, char **argv);

#endif
