/* crmctl user disable|enable|unlock|password, crmctl session list|revoke,
 * and the password policy every password crmctl sets must meet.
 *
 * The changes go through the admin functions of sql/0004, which record each
 * one in the audit log in the same transaction, with "crmctl" and the
 * operating-system user as the actor. */
#include <pwd.h>
#include <stdlib.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "crmctl.h"

#define PASSWORD_MIN_CHARS 10

/* ------------------------------------------------------------ password policy */

bool ctl_password_check(const char *username, const char *password, char *why, size_t cap)
{
	char dummy[8];
	if (!why) {
		why = dummy;
		cap = sizeof dummy;
	}
	size_t chars = 0;
	bool lower = false, upper = false, digit = false, other = false;
	for (const unsigned char *p = (const unsigned char *)password; *p; p++) {
		if ((*p & 0xC0) != 0x80)
			chars++;
		if (*p >= 'a' && *p <= 'z')
			lower = true;
		else if (*p >= 'A' && *p <= 'Z')
			upper = true;
		else if (*p >= '0' && *p <= '9')
			digit = true;
		else
			other = true; /* punctuation, spaces, and any non-ASCII character */
	}
	if (chars < PASSWORD_MIN_CHARS) {
		snprintf(why, cap, "the password must be at least %d characters long (it has %zu)",
			 PASSWORD_MIN_CHARS, chars);
		return false;
	}
	if (lower + upper + digit + other < 2) {
		snprintf(why, cap, "the password must mix at least two kinds of characters (lower-case"
				   " letters, capitals, digits, others); it has only %s",
			 lower ? "lower-case letters" : upper ? "capitals" : digit ? "digits"
							 : "other characters");
		return false;
	}
	if (username && strcasecmp(username, password) == 0) {
		snprintf(why, cap, "the password must not be the username");
		return false;
	}
	return true;
}

/* Who is acting, for the audit log: crmctl runs as the database admin, so
 * the operating-system user is what names the person. */
const char *ctl_actor(void)
{
	static char actor[160];
	if (!actor[0]) {
		const struct passwd *pw = getpwuid(getuid());
		const char *sudo_user = getenv("SUDO_USER");
		snprintf(actor, sizeof actor, "crmctl (%s%s%s)", pw ? pw->pw_name : "unknown",
			 sudo_user ? " via sudo from " : "", sudo_user ? sudo_user : "");
	}
	return actor;
}

/* ------------------------------------------------------------ users */

static const char user_usage[] =
	"user add --username U --role ROLE ... | disable NAME | enable NAME | unlock NAME |"
	" password NAME [--password-stdin]";

int ctl_cmd_user_account(const struct crm_config *cfg, int argc, char **argv)
{
	const char *verb = argv[0];
	if (argc < 2 || argv[1][0] == '-') {
		ctl_err("user %s: give the username (crmctl user %s NAME)", verb, verb);
		return CTL_USAGE;
	}
	const char *username = argv[1];
	bool pw_stdin = false;
	const struct ctl_opt pw_opts[] = {{"password-stdin", CTL_OPT_FLAG, &pw_stdin},
					  {NULL, 0, NULL}};
	const struct ctl_opt no_opts[] = {{NULL, 0, NULL}};
	bool is_password = !strcmp(verb, "password");
	if (!is_password && strcmp(verb, "disable") && strcmp(verb, "enable") &&
	    strcmp(verb, "unlock")) {
		ctl_err("user: unknown action \"%s\"; expected %s", verb, user_usage);
		return CTL_USAGE;
	}
	char cmd[32];
	snprintf(cmd, sizeof cmd, "user %s", verb);
	int rc = ctl_parse(cmd, argc - 2, argv + 2, is_password ? pw_opts : no_opts);
	if (rc)
		return rc;

	char password[1024] = "", hash[crypto_pwhash_STRBYTES] = "";
	if (is_password) {
		if (!ctl_read_password(username, pw_stdin, true, password, sizeof password))
			return CTL_FAIL;
		char why[256];
		if (!ctl_password_check(username, password, why, sizeof why)) {
			ctl_err("%s; nothing changed", why);
			sodium_memzero(password, sizeof password);
			return CTL_FAIL;
		}
		if (sodium_init() < 0 ||
		    crypto_pwhash_str(hash, password, strlen(password),
				      crypto_pwhash_OPSLIMIT_INTERACTIVE,
				      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
			ctl_err("hashing the password failed (out of memory?)");
			sodium_memzero(password, sizeof password);
			return CTL_FAIL;
		}
		sodium_memzero(password, sizeof password);
	}
	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		return CTL_FAIL;
	rc = CTL_FAIL;
	const char *by = ctl_actor();
	PGresult *res = NULL;
	if (!strcmp(verb, "disable") || !strcmp(verb, "enable")) {
		const char *params[] = {username, !strcmp(verb, "disable") ? "true" : "false", by};
		res = ctl_query(db, cmd, "SELECT crm.admin_user_set_disabled($1, $2::boolean, $3)", 3,
				params);
		if (res && !strcmp(verb, "disable"))
			printf("disabled %s; %s live session(s) ended\n", username, PQgetvalue(res, 0, 0));
		else if (res)
			printf("enabled %s\n", username);
	} else if (!strcmp(verb, "unlock")) {
		const char *params[] = {username, by};
		res = ctl_query(db, cmd, "SELECT crm.admin_user_unlock($1, $2)", 2, params);
		if (res)
			printf("%s %s; earlier failed logins no longer count\n",
			       PQgetvalue(res, 0, 0)[0] == 't' ? "unlocked" : "was not locked:",
			       username);
	} else {
		const char *params[] = {username, hash, by};
		res = ctl_query(db, cmd, "SELECT crm.admin_user_set_password($1, $2, $3)", 3, params);
		if (res)
			printf("password of %s changed; %s live session(s) ended\n", username,
			       PQgetvalue(res, 0, 0));
	}
	sodium_memzero(hash, sizeof hash);
	if (res) {
		rc = CTL_OK;
		PQclear(res);
	}
	PQfinish(db);
	return rc;
}

/* ------------------------------------------------------------ sessions */

static const char session_usage[] =
	"session list [--user U] | session revoke ID | session revoke --user U";

/* "2026-11-25 14:05" in local time, from a timestamptz text. */
static void short_time(const char *pg, char *out, size_t cap)
{
	snprintf(out, cap, "%.16s", pg);
}

static int session_list(PGconn *db, int argc, char **argv)
{
	const char *user = NULL;
	const struct ctl_opt opts[] = {{"user", CTL_OPT_VALUE, &user}, {NULL, 0, NULL}};
	int rc = ctl_parse("session list", argc, argv, opts);
	if (rc)
		return rc;
	const char *params[] = {user};
	PGresult *res = ctl_query(db, "listing sessions",
				  "SELECT id, username, role, coalesce(store_code, '-'), created_at,"
				  " last_seen_at, expires_at, coalesce(source_addr, '-'), state"
				  " FROM crm.admin_session_list($1)", 1, params);
	if (!res)
		return CTL_FAIL;
	int n = PQntuples(res);
	if (n == 0) {
		printf(user ? "no sessions of %s\n" : "no live sessions\n", user);
	} else {
		printf("%-36s  %-24s  %-15s  %-6s  %-16s  %-16s  %-16s  %-15s  %s\n", "ID", "USER",
		       "ROLE", "STORE", "CREATED", "LAST SEEN", "EXPIRES", "FROM", "STATE");
		for (int i = 0; i < n; i++) {
			char created[20], seen[20], expires[20];
			short_time(PQgetvalue(res, i, 4), created, sizeof created);
			short_time(PQgetvalue(res, i, 5), seen, sizeof seen);
			short_time(PQgetvalue(res, i, 6), expires, sizeof expires);
			printf("%-36s  %-24s  %-15s  %-6s  %-16s  %-16s  %-16s  %-15s  %s\n",
			       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			       PQgetvalue(res, i, 3), created, seen, expires, PQgetvalue(res, i, 7),
			       PQgetvalue(res, i, 8));
		}
	}
	PQclear(res);
	return CTL_OK;
}

static bool uuid_like(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	if (strlen(s) != sizeof shape - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			   (s[i] >= 'A' && s[i] <= 'F');
		if (shape[i] == '-' ? s[i] != '-' : !hex)
			return false;
	}
	return true;
}

static int session_revoke(PGconn *db, int argc, char **argv)
{
	const char *id = NULL, *user = NULL;
	if (argc >= 1 && argv[0][0] != '-') {
		id = argv[0];
		argc--;
		argv++;
	}
	const struct ctl_opt opts[] = {{"user", CTL_OPT_VALUE, &user}, {NULL, 0, NULL}};
	int rc = ctl_parse("session revoke", argc, argv, opts);
	if (rc)
		return rc;
	if (!id == !user) {
		ctl_err("session revoke: give a session ID or --user U, not both (%s)", session_usage);
		return CTL_USAGE;
	}
	if (id && !uuid_like(id)) {
		ctl_err("session revoke: \"%s\" is not a session ID (crmctl session list shows them)",
			id);
		return CTL_USAGE;
	}
	const char *params[] = {id, user, ctl_actor()};
	PGresult *res = ctl_query(db, "revoking sessions",
				  "SELECT crm.admin_session_revoke($1::uuid, $2, $3)", 3, params);
	if (!res)
		return CTL_FAIL;
	int n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (id && n == 0) {
		ctl_err("no live session %s (already ended, expired, or unknown)", id);
		return CTL_FAIL;
	}
	if (id)
		printf("revoked session %s\n", id);
	else
		printf("revoked %d live session(s) of %s\n", n, user);
	return CTL_OK;
}

int ctl_cmd_session(const struct crm_config *cfg, int argc, char **argv)
{
	if (argc < 1 || (strcmp(argv[0], "list") && strcmp(argv[0], "revoke"))) {
		ctl_err("session: expected %s", session_usage);
		return CTL_USAGE;
	}
	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		return CTL_FAIL;
	int rc = !strcmp(argv[0], "list") ? session_list(db, argc - 1, argv + 1)
					  : session_revoke(db, argc - 1, argv + 1);
	PQfinish(db);
	return rc;
}
