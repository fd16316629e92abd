/* crmctl init and migrate, and the admin connection they share with the
 * other commands. Identifiers and literals that come from configuration go
 * through PQescapeIdentifier / PQescapeLiteral; everything else is a
 * parameter. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmctl.h"

#ifndef CRM_SQL_DIR
#define CRM_SQL_DIR "sql"
#endif

/* Migrations of one database never run concurrently: any lock number will
 * do as long as it is always this one. */
#define MIGRATE_LOCK_KEY "7418862110"

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void print_pg_error(const char *what, PGconn *db, const PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = PQerrorMessage(db);
	size_t n = strcspn(msg, "\n");
	ctl_err("%s: %.*s", what, (int)n, msg);
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	if (detail)
		fprintf(stderr, "  detail: %s\n", detail);
	if (hint)
		fprintf(stderr, "  hint: %s\n", hint);
}

PGconn *ctl_admin_connect(const struct crm_config *cfg, const char *dbname)
{
	char port[16];
	snprintf(port, sizeof port, "%d", cfg->db_port);
	const char *keys[] = {"host", "port", "dbname", "user", "password",
			      "application_name", "client_encoding", "connect_timeout", NULL};
	const char *vals[] = {cfg->db_host, port, dbname, cfg->db_admin_user,
			      cfg->db_admin_password, "crmctl", "UTF8", "10", NULL};
	PGconn *db = PQconnectdbParams(keys, vals, 0);
	if (!db) {
		ctl_err("out of memory");
		return NULL;
	}
	if (PQstatus(db) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(db);
		ctl_err("cannot connect to PostgreSQL at %s:%s as %s (database %s): %.*s",
			cfg->db_host, port, cfg->db_admin_user, dbname,
			(int)strcspn(msg, "\n"), msg);
		fprintf(stderr, "  check [db] host, port, admin_user and admin_password in the"
				" configuration; crmctl init creates the database\n");
		PQfinish(db);
		return NULL;
	}
	PQsetNoticeProcessor(db, ignore_notice, NULL);
	return db;
}

PGresult *ctl_query(PGconn *db, const char *what, const char *sql, int nparams,
		    const char *const *params)
{
	PGresult *res = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	print_pg_error(what, db, res);
	PQclear(res);
	return NULL;
}

bool ctl_run(PGconn *db, const char *what, const char *sql, int nparams,
	     const char *const *params)
{
	PGresult *res = ctl_query(db, what, sql, nparams, params);
	PQclear(res);
	return res != NULL;
}

/* Runs SQL built with escaped identifiers/literals (DDL takes no parameters). */
static bool run_built(PGconn *db, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool run_built(PGconn *db, const char *what, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof sql) {
		ctl_err("%s: statement too long", what);
		return false;
	}
	return ctl_run(db, what, sql, 0, NULL);
}

static bool exists(PGconn *db, const char *what, const char *sql, const char *param,
		   bool *out)
{
	PGresult *res = ctl_query(db, what, sql, 1, &param);
	if (!res)
		return false;
	*out = PQntuples(res) > 0;
	PQclear(res);
	return true;
}

/* ------------------------------------------------------------ init */

static bool ensure_role(PGconn *db, const struct crm_config *cfg)
{
	const char *name = cfg->db_user;
	PGresult *res = ctl_query(db, "looking up the application role",
				  "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1",
				  1, &name);
	if (!res)
		return false;
	bool found = PQntuples(res) > 0;
	bool super = found && PQgetvalue(res, 0, 0)[0] == 't';
	bool bypass = found && PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);

	char *ident = PQescapeIdentifier(db, name, strlen(name));
	char *pw_literal = NULL;
	if (cfg->db_password[0]) {
		/* Hash on this side so the plain password never reaches the
		 * server's statement log. */
		char *hashed = PQencryptPasswordConn(db, cfg->db_password, name, NULL);
		if (!hashed) {
			print_pg_error("hashing the role password", db, NULL);
			PQfreemem(ident);
			return false;
		}
		pw_literal = PQescapeLiteral(db, hashed, strlen(hashed));
		PQfreemem(hashed);
	}
	bool ok;
	if (!found) {
		ok = run_built(db, "creating the application role",
			       "CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE%s%s",
			       ident, pw_literal ? " PASSWORD " : "", pw_literal ? pw_literal : "");
		if (ok)
			printf("created role %s\n", name);
	} else {
		ok = run_built(db, "updating the application role", "ALTER ROLE %s LOGIN%s%s%s%s",
			       ident, super ? " NOSUPERUSER" : "", bypass ? " NOBYPASSRLS" : "",
			       pw_literal ? " PASSWORD " : "", pw_literal ? pw_literal : "");
		if (ok)
			printf("role %s exists%s\n", name, pw_literal ? "; password set" : "");
	}
	if (ok && !pw_literal)
		fprintf(stderr, "crmctl: note: db.password is empty; crmd can connect only where"
				" pg_hba.conf does not ask for a password\n");
	PQfreemem(ident);
	PQfreemem(pw_literal);
	return ok;
}

static bool ensure_database(PGconn *db, const struct crm_config *cfg)
{
	bool found;
	const char *name = cfg->db_name;
	if (!exists(db, "looking up the database", "SELECT 1 FROM pg_database WHERE datname = $1",
		    name, &found))
		return false;
	char *ident = PQescapeIdentifier(db, name, strlen(name));
	char *user = PQescapeIdentifier(db, cfg->db_user, strlen(cfg->db_user));
	bool ok = true;
	if (!found) {
		ok = run_built(db, "creating the database",
			       "CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0", ident);
		if (ok)
			printf("created database %s\n", name);
	} else {
		printf("database %s exists\n", name);
	}
	/* Only crmd (and the admin) may connect. */
	ok = ok && run_built(db, "restricting database access",
			     "REVOKE ALL ON DATABASE %s FROM PUBLIC", ident);
	ok = ok && run_built(db, "granting database access",
			     "GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s", ident, user);
	PQfreemem(ident);
	PQfreemem(user);
	return ok;
}

static const char *sql_dir_choice(const char *flag)
{
	if (flag)
		return flag;
	const char *env = getenv("CRM_SQL_DIR");
	return env && *env ? env : CRM_SQL_DIR;
}

static int migrate(const struct crm_config *cfg, const char *sql_dir);

int ctl_cmd_init(const struct crm_config *cfg, int argc, char **argv)
{
	const char *sql_dir = NULL;
	const struct ctl_opt opts[] = {{"sql-dir", CTL_OPT_VALUE, &sql_dir}, {NULL, 0, NULL}};
	int rc = ctl_parse("init", argc, argv, opts);
	if (rc)
		return rc;
	if (!strcmp(cfg->db_user, cfg->db_admin_user)) {
		ctl_err("db.user and db.admin_user are both \"%s\": crmd must connect as its own"
			" role, not as the admin", cfg->db_user);
		return CTL_FAIL;
	}
	PGconn *db = ctl_admin_connect(cfg, "postgres");
	if (!db)
		return CTL_FAIL;
	bool ok = ensure_role(db, cfg) && ensure_database(db, cfg);
	PQfinish(db);
	if (!ok)
		return CTL_FAIL;
	return migrate(cfg, sql_dir_choice(sql_dir));
}

/* ------------------------------------------------------------ migrate */

static int migration_file(const struct dirent *d)
{
	const char *n = d->d_name;
	size_t len = strlen(n);
	for (int i = 0; i < 4; i++)
		if (n[i] < '0' || n[i] > '9')
			return 0;
	return n[4] == '_' && len > 9 && !strcmp(n + len - 4, ".sql");
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Line of the 1-based character position PostgreSQL reports. */
static int line_of(const char *text, const char *position)
{
	long pos = position ? strtol(position, NULL, 10) : 0;
	int line = 1;
	for (const unsigned char *p = (const unsigned char *)text; *p && pos > 1; p++) {
		if ((*p & 0xC0) != 0x80)
			pos--;
		if (*p == '\n')
			line++;
	}
	return line;
}

static bool apply_one(PGconn *db, const struct crm_config *cfg, const char *dir,
		      const char *file, int version)
{
	char path[4096], name[256], vtext[16];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	snprintf(name, sizeof name, "%.*s", (int)(strlen(file) - 4), file);
	snprintf(vtext, sizeof vtext, "%d", version);
	char *sql = read_file(path);
	if (!sql) {
		ctl_err("cannot read %s: %s", path, strerror(errno));
		return false;
	}
	const char *setting[] = {"crm.app_user", cfg->db_user};
	const char *row[] = {vtext, name};
	bool ok = ctl_run(db, "starting a transaction", "BEGIN", 0, NULL) &&
		  ctl_run(db, "setting crm.app_user", "SELECT set_config($1, $2, true)", 2,
			  setting);
	if (ok) {
		PGresult *res = PQexec(db, sql);
		ExecStatusType st = PQresultStatus(res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			char what[4608];
			const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
			if (pos)
				snprintf(what, sizeof what, "migration %s failed at %s line %d", name,
					 path, line_of(sql, pos));
			else
				snprintf(what, sizeof what, "migration %s failed", name);
			print_pg_error(what, db, res);
			const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
			if (context)
				fprintf(stderr, "  context: %s\n", context);
			ok = false;
		}
		PQclear(res);
	}
	ok = ok && ctl_run(db, "recording the migration",
			   "INSERT INTO crm.schema_migrations (version, name) VALUES ($1, $2)",
			   2, row);
	ok = ok && ctl_run(db, "committing the migration", "COMMIT", 0, NULL);
	if (!ok)
		PQclear(PQexec(db, "ROLLBACK"));
	else
		printf("applied %s\n", name);
	free(sql);
	return ok;
}

static int migrate(const struct crm_config *cfg, const char *sql_dir)
{
	struct dirent **files = NULL;
	int nfiles = scandir(sql_dir, &files, migration_file, alphasort);
	if (nfiles < 0) {
		ctl_err("cannot read the migrations directory %s: %s (set --sql-dir or"
			" CRM_SQL_DIR)", sql_dir, strerror(errno));
		return CTL_FAIL;
	}
	int rc = CTL_FAIL;
	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		goto out;
	bool role_found;
	const char *user = cfg->db_user;
	if (!exists(db, "looking up the application role",
		    "SELECT 1 FROM pg_roles WHERE rolname = $1", user, &role_found))
		goto out;
	if (!role_found) {
		ctl_err("role %s (db.user) does not exist; run crmctl init first", user);
		goto out;
	}
	if (!ctl_run(db, "taking the migration lock",
		     "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL) ||
	    !ctl_run(db, "creating schema crm", "CREATE SCHEMA IF NOT EXISTS crm", 0, NULL) ||
	    !ctl_run(db, "creating crm.schema_migrations",
		     "CREATE TABLE IF NOT EXISTS crm.schema_migrations ("
		     " version integer PRIMARY KEY,"
		     " name text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL))
		goto out;

	PGresult *done = ctl_query(db, "reading crm.schema_migrations",
				   "SELECT version, name FROM crm.schema_migrations", 0, NULL);
	if (!done)
		goto out;
	int applied = 0, prev = -1;
	rc = CTL_OK;
	for (int i = 0; i < nfiles && rc == CTL_OK; i++) {
		const char *file = files[i]->d_name;
		int version = atoi(file);
		if (version == prev) {
			ctl_err("two migrations numbered %04d in %s", version, sql_dir);
			rc = CTL_FAIL;
			break;
		}
		prev = version;
		bool seen = false;
		for (int r = 0; r < PQntuples(done) && !seen; r++) {
			if (atoi(PQgetvalue(done, r, 0)) != version)
				continue;
			seen = true;
			const char *had = PQgetvalue(done, r, 1);
			if (strncmp(had, file, strlen(had)) != 0 || file[strlen(had)] != '.')
				fprintf(stderr, "crmctl: warning: migration %04d was applied as %s,"
						" the file is now %s\n", version, had, file);
		}
		if (seen)
			continue;
		if (!apply_one(db, cfg, sql_dir, file, version))
			rc = CTL_FAIL;
		else
			applied++;
	}
	PQclear(done);
	if (rc == CTL_OK && applied == 0)
		printf("database is up to date\n");
out:
	if (db)
		PQfinish(db);
	for (int i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	return rc;
}

int ctl_cmd_migrate(const struct crm_config *cfg, int argc, char **argv)
{
	const char *sql_dir = NULL;
	const struct ctl_opt opts[] = {{"sql-dir", CTL_OPT_VALUE, &sql_dir}, {NULL, 0, NULL}};
	int rc = ctl_parse("migrate", argc, argv, opts);
	if (rc)
		return rc;
	return migrate(cfg, sql_dir_choice(sql_dir));
}
