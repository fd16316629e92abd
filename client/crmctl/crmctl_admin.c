/* crmctl store add / user add, and the store and user operations that
 * `demo` reuses. These run as the admin with parameterised SQL; the table
 * constraints in sql/ have the last word, the checks here only give plainer
 * messages first. */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "crmctl.h"

static const char *const store_roles[] = {"consultant", "sales_manager", "service_advisor",
					  "call_center", "store_manager", "store_node", NULL};
static const char *const group_roles[] = {"group_analyst", "group_admin", NULL};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

bool ctl_role_valid(const char *role)
{
	return in_list(store_roles, role) || in_list(group_roles, role);
}

bool ctl_role_needs_store(const char *role)
{
	return in_list(store_roles, role);
}

static bool store_code_ok(const char *code)
{
	size_t n = strlen(code);
	if (n < 2 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = code[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '_' || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

static bool username_ok(const char *u)
{
	size_t n = strlen(u);
	if (n < 2 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = u[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '.' || c == '_' || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------ stores */

bool ctl_store_add(PGconn *db, const char *group_name, const char *code, const char *name,
		   const char *city, const char *brand, bool *created)
{
	if (!ctl_run(db, "starting a transaction", "BEGIN", 0, NULL))
		return false;
	PGresult *res = ctl_query(db, "creating the group",
				  "INSERT INTO crm.groups (name) VALUES ($1)"
				  " ON CONFLICT DO NOTHING RETURNING name", 1, &group_name);
	if (!res)
		goto failed;
	if (PQntuples(res) > 0)
		printf("created group %s\n", group_name);
	PQclear(res);
	const char *params[] = {code, name, city, brand};
	res = ctl_query(db, "adding the store",
			"INSERT INTO crm.stores (code, name, city, brand, group_id)"
			" SELECT $1, $2, $3, $4, id FROM crm.groups"
			" ON CONFLICT (code) DO NOTHING RETURNING id", 4, params);
	if (!res)
		goto failed;
	*created = PQntuples(res) > 0;
	PQclear(res);
	if (!ctl_run(db, "committing", "COMMIT", 0, NULL))
		goto failed;
	return true;
failed:
	PQclear(PQexec(db, "ROLLBACK"));
	return false;
}

int ctl_cmd_store(const struct crm_config *cfg, int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "add") != 0) {
		ctl_err("store: expected \"store add --code C --name N --city C --brand B\"");
		return CTL_USAGE;
	}
	const char *code = NULL, *name = NULL, *city = NULL, *brand = NULL;
	const char *group = "示例汽车集团";
	const struct ctl_opt opts[] = {
		{"code", CTL_OPT_VALUE, &code},   {"name", CTL_OPT_VALUE, &name},
		{"city", CTL_OPT_VALUE, &city},   {"brand", CTL_OPT_VALUE, &brand},
		{"group", CTL_OPT_VALUE, &group}, {NULL, 0, NULL},
	};
	int rc = ctl_parse("store add", argc - 1, argv + 1, opts);
	if (rc)
		return rc;
	if (!code || !name || !city || !brand) {
		ctl_err("store add: --code, --name, --city and --brand are all required");
		return CTL_USAGE;
	}
	if (!store_code_ok(code)) {
		ctl_err("store add: code \"%s\" must be 2 to 16 capital letters, digits, _ or -"
			" (e.g. BJ01)", code);
		return CTL_USAGE;
	}
	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		return CTL_FAIL;
	bool created = false;
	bool ok = ctl_store_add(db, group, code, name, city, brand, &created);
	PQfinish(db);
	if (!ok)
		return CTL_FAIL;
	if (created)
		printf("created store %s %s (%s, %s)\n", code, name, city, brand);
	else
		printf("store %s exists; nothing changed\n", code);
	return CTL_OK;
}

/* ------------------------------------------------------------ users */

bool ctl_user_add(PGconn *db, const char *username, const char *display_name,
		  const char *role, const char *store_code, const char *password,
		  bool reset_existing, enum ctl_user_outcome *outcome)
{
	char hash[crypto_pwhash_STRBYTES], why[256];
	/* Every password crmctl sets meets the policy, whoever the caller. */
	if (!ctl_password_check(username, password, why, sizeof why)) {
		ctl_err("user %s: %s; nothing changed", username, why);
		return false;
	}
	if (sodium_init() < 0) {
		ctl_err("libsodium failed to initialise");
		return false;
	}
	if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		ctl_err("hashing the password failed (out of memory?)");
		return false;
	}
	const char *params[] = {username, display_name, role, store_code, hash};
	const char *sql =
		reset_existing
			? "INSERT INTO crm.users (username, display_name, role, store_id, password_hash)"
			  " VALUES ($1, $2, $3, (SELECT id FROM crm.stores WHERE code = $4), $5)"
			  " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash"
			  " RETURNING xmax = 0"
			: "INSERT INTO crm.users (username, display_name, role, store_id, password_hash)"
			  " VALUES ($1, $2, $3, (SELECT id FROM crm.stores WHERE code = $4), $5)"
			  " ON CONFLICT (username) DO NOTHING RETURNING true";
	PGresult *res = ctl_query(db, "adding the user", sql, 5, params);
	sodium_memzero(hash, sizeof hash);
	if (!res)
		return false;
	if (PQntuples(res) == 0)
		*outcome = CTL_USER_EXISTS;
	else
		*outcome = PQgetvalue(res, 0, 0)[0] == 't' ? CTL_USER_CREATED : CTL_USER_RESET;
	PQclear(res);
	return true;
}

/* Reads one line into buf without its line end. False at EOF or when the
 * line does not fit. */
static bool read_line(FILE *f, char *buf, size_t cap)
{
	if (!fgets(buf, (int)cap, f))
		return false;
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] != '\n' && !feof(f))
		return false;
	buf[strcspn(buf, "\r\n")] = '\0';
	return true;
}

static bool ask_tty(FILE *tty, const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	int fd = fileno(tty);
	bool have_termios = tcgetattr(fd, &old) == 0;
	if (have_termios) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	fputs(prompt, tty);
	fflush(tty);
	bool ok = read_line(tty, buf, cap);
	if (have_termios)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputc('\n', tty);
	fflush(tty);
	return ok;
}

bool ctl_read_password(const char *username, bool from_stdin, bool confirm, char *buf,
		       size_t cap)
{
	if (from_stdin) {
		if (!read_line(stdin, buf, cap)) {
			ctl_err("--password-stdin: expected the password as one line on standard input");
			return false;
		}
		return true;
	}
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	FILE *tty = fd >= 0 ? fdopen(fd, "r+") : NULL;
	if (!tty) {
		if (fd >= 0)
			close(fd);
		ctl_err("no terminal to ask for the password; use --password-stdin");
		return false;
	}
	char prompt[160], again[1024];
	snprintf(prompt, sizeof prompt, "Password for %s: ", username);
	bool ok = ask_tty(tty, prompt, buf, cap);
	if (ok && confirm)
		ok = ask_tty(tty, "Repeat the password: ", again, sizeof again);
	else
		snprintf(again, sizeof again, "%s", buf);
	fclose(tty);
	if (ok && strcmp(buf, again) != 0) {
		ctl_err("the two passwords differ; nothing changed");
		ok = false;
	} else if (!ok) {
		ctl_err("no password read; nothing changed");
	}
	sodium_memzero(again, sizeof again);
	return ok;
}

int ctl_cmd_user(const struct crm_config *cfg, int argc, char **argv)
{
	if (argc < 1) {
		ctl_err("user: expected \"user add --username U --role ROLE ...\", or user disable,"
			" enable, unlock or password NAME");
		return CTL_USAGE;
	}
	if (strcmp(argv[0], "add") != 0)
		return ctl_cmd_user_account(cfg, argc, argv);
	const char *username = NULL, *role = NULL, *store = NULL, *display = NULL;
	bool pw_stdin = false, if_missing = false;
	const struct ctl_opt opts[] = {
		{"username", CTL_OPT_VALUE, &username},
		{"role", CTL_OPT_VALUE, &role},
		{"store", CTL_OPT_VALUE, &store},
		{"display-name", CTL_OPT_VALUE, &display},
		{"password-stdin", CTL_OPT_FLAG, &pw_stdin},
		{"if-missing", CTL_OPT_FLAG, &if_missing},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("user add", argc - 1, argv + 1, opts);
	if (rc)
		return rc;
	if (!username || !role) {
		ctl_err("user add: --username and --role are required");
		return CTL_USAGE;
	}
	if (!username_ok(username)) {
		ctl_err("user add: username \"%s\" must be 2 to 64 lower-case letters, digits,"
			" '.', '_' or '-' (e.g. bj01.wang)", username);
		return CTL_USAGE;
	}
	if (!ctl_role_valid(role)) {
		ctl_err("user add: unknown role \"%s\" (see crmctl --help)", role);
		return CTL_USAGE;
	}
	if (ctl_role_needs_store(role) && !store) {
		ctl_err("user add: role %s works at a store: give --store CODE", role);
		return CTL_USAGE;
	}
	if (!ctl_role_needs_store(role) && store) {
		ctl_err("user add: role %s is group-wide: leave out --store", role);
		return CTL_USAGE;
	}

	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		return CTL_FAIL;
	rc = CTL_FAIL;
	char password[1024] = "";
	PGresult *res = ctl_query(db, "looking up the user",
				  "SELECT 1 FROM crm.users WHERE username = $1", 1, &username);
	if (!res)
		goto out;
	bool exists = PQntuples(res) > 0;
	PQclear(res);
	if (exists) {
		if (if_missing) {
			printf("user %s exists; unchanged\n", username);
			rc = CTL_OK;
		} else {
			ctl_err("user %s already exists (add --if-missing to accept that)", username);
		}
		goto out;
	}
	if (store) {
		res = ctl_query(db, "looking up the store", "SELECT 1 FROM crm.stores WHERE code = $1",
				1, &store);
		if (!res)
			goto out;
		bool found = PQntuples(res) > 0;
		PQclear(res);
		if (!found) {
			ctl_err("store %s not found; add it first with crmctl store add", store);
			goto out;
		}
	}
	if (!ctl_read_password(username, pw_stdin, true, password, sizeof password))
		goto out;
	char why[256];
	if (!ctl_password_check(username, password, why, sizeof why)) {
		ctl_err("%s; nothing changed", why);
		goto out;
	}
	enum ctl_user_outcome outcome;
	if (!ctl_user_add(db, username, display ? display : username, role, store, password,
			  false, &outcome))
		goto out;
	if (outcome == CTL_USER_EXISTS) {
		/* Another crmctl won the race between our check and insert. */
		if (if_missing) {
			printf("user %s exists; unchanged\n", username);
			rc = CTL_OK;
		} else {
			ctl_err("user %s already exists (add --if-missing to accept that)", username);
		}
		goto out;
	}
	printf("created user %s (%s%s%s)\n", username, role, store ? ", store " : "",
	       store ? store : "");
	rc = CTL_OK;
out:
	sodium_memzero(password, sizeof password);
	PQfinish(db);
	return rc;
}
