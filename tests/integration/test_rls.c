/* Row-level security (sql/0012_row_level_security.sql), seen from crmd's own
 * database role with direct SQL: no handler check in between. The scope is
 * set as crm.session_begin sets it (set_config(..., true) inside a
 * transaction), once through crm.session_begin itself with a real session.
 *
 * Fixture rows (written as the superuser, which bypasses RLS): at BJ01 a
 * relation of the demo consultant ("mine"), one of the store pool, one of a
 * colleague; at SH01 one of SH01's consultant. Each has a customer, a phone,
 * an intent and a level history row. */
#include <stdio.h>
#include <sys/time.h>

#include "itest.h"

enum { MINE, POOL, COLLEAGUE, OTHER_STORE, NROWS };

static PGconn *db;  /* superuser */
static PGconn *app; /* crmd's role */
static char customer[NROWS][37], relation[NROWS][37];
static char bj01[37], sh01[37], me[37], colleague[37], manager[37];
/* The four relation ids / customer ids as a uuid[] literal parameter. */
static char relation_set[4 * 40 + 4], customer_set[4 * 40 + 4];

/* The password crmd's role connects with, from the fixture's crmd.ini (as
 * test_accounts.c reads it). */
static bool copy_value(PGconn *c, const char *sql, const char *param, char *out, size_t cap)
{
	const char *v = it_db_value(c, sql, param);
	if (!v)
		return false;
	snprintf(out, cap, "%s", v);
	return true;
}

static bool exec_ok(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "db: %s: %s\n", sql, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

/* One customer with a phone and a relation (owner NULL: the pool) with an
 * intent and a level history row. */
static bool make_relation(int k, const char *store, const char *owner, const char *creator)
{
	char digits[16], phone[20], name[64];
	it_phone(digits); /* 11 digits, stored canonical: +86... */
	snprintf(phone, sizeof phone, "+86%s", digits);
	snprintf(name, sizeof name, "RLS test %d", k);
	const char *sql =
		"WITH c AS (INSERT INTO crm.customers (id, name, phone, created_by, store_id)"
		"           VALUES (gen_random_uuid(), $1, $2, $3::uuid, $4::uuid) RETURNING id),"
		" p AS (INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind)"
		"       SELECT $2, c.id, true, 'mobile' FROM c),"
		" r AS (INSERT INTO crm.relations (id, customer_id, store_id, owner_id, level,"
		"                                  protected_until, created_by)"
		"       SELECT gen_random_uuid(), c.id, $4::uuid, $5::uuid, 'A',"
		"              now() + interval '30 days', $3::uuid FROM c"
		"       RETURNING id, customer_id),"
		" i AS (INSERT INTO crm.relation_intents (relation_id, position, model)"
		"       SELECT r.id, 0, 'Q5L' FROM r),"
		" l AS (INSERT INTO crm.level_changes (relation_id, from_level, to_level, changed_by,"
		"                                      reason)"
		"       SELECT r.id, NULL, 'A', $3::uuid, 'rls test' FROM r)"
		" SELECT customer_id::text, id::text FROM r";
	const char *values[] = {name, phone, creator, store, owner};
	PGresult *res = PQexecParams(db, sql, 5, NULL, values, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (ok) {
		snprintf(customer[k], sizeof customer[k], "%s", PQgetvalue(res, 0, 0));
		snprintf(relation[k], sizeof relation[k], "%s", PQgetvalue(res, 0, 1));
	} else {
		fprintf(stderr, "fixture: %s\n", PQresultErrorMessage(res));
	}
	PQclear(res);
	return ok;
}

static bool fixture(void)
{
	char user[128], pw[128];
	if (!copy_value(db, "SELECT id::text FROM crm.stores WHERE code = $1", "BJ01", bj01,
			sizeof bj01) ||
	    !copy_value(db, "SELECT id::text FROM crm.stores WHERE code = $1", "SH01", sh01,
			sizeof sh01))
		return false;
	if (!it_demo_user("consultant", "BJ01", user, sizeof user, pw, sizeof pw) ||
	    !copy_value(db, "SELECT id::text FROM crm.users WHERE username = $1", user, me,
			sizeof me))
		return false;
	if (!it_demo_user("store_manager", "BJ01", user, sizeof user, pw, sizeof pw) ||
	    !copy_value(db, "SELECT id::text FROM crm.users WHERE username = $1", user, manager,
			sizeof manager))
		return false;
	char sh_consultant[37];
	if (!it_demo_user("consultant", "SH01", user, sizeof user, pw, sizeof pw) ||
	    !copy_value(db, "SELECT id::text FROM crm.users WHERE username = $1", user,
			sh_consultant, sizeof sh_consultant))
		return false;
	/* A colleague at BJ01 who never logs in. */
	struct timeval tv;
	gettimeofday(&tv, NULL);
	char colleague_name[64];
	snprintf(colleague_name, sizeof colleague_name, "bj01.rls%ld%06ld", (long)tv.tv_sec,
		 (long)tv.tv_usec);
	const char *values[] = {colleague_name, bj01};
	PGresult *res = PQexecParams(
		db,
		"INSERT INTO crm.users (username, display_name, role, store_id, password_hash)"
		" VALUES ($1, 'RLS colleague', 'consultant', $2::uuid, '$argon2id$never-logs-in')"
		" RETURNING id::text",
		2, NULL, values, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (ok)
		snprintf(colleague, sizeof colleague, "%s", PQgetvalue(res, 0, 0));
	else
		fprintf(stderr, "fixture: %s\n", PQresultErrorMessage(res));
	PQclear(res);
	if (!ok)
		return false;
	if (!make_relation(MINE, bj01, me, me) || !make_relation(POOL, bj01, NULL, manager) ||
	    !make_relation(COLLEAGUE, bj01, colleague, colleague) ||
	    !make_relation(OTHER_STORE, sh01, sh_consultant, sh_consultant))
		return false;
	snprintf(relation_set, sizeof relation_set, "{%s,%s,%s,%s}", relation[0], relation[1],
		 relation[2], relation[3]);
	snprintf(customer_set, sizeof customer_set, "{%s,%s,%s,%s}", customer[0], customer[1],
		 customer[2], customer[3]);
	return true;
}

/* Begins a transaction as crmd's role with the scope crm.session_begin
 * would set. role NULL: no scope at all. */
static bool begin_scope(const char *role, const char *store, const char *user)
{
	if (!exec_ok(app, "BEGIN"))
		return false;
	if (!role)
		return true;
	const char *values[] = {role, store ? store : "", user};
	PGresult *res = PQexecParams(app,
				     "SELECT set_config('crm.role', $1, true),"
				     " set_config('crm.store_id', $2, true),"
				     " set_config('crm.user_id', $3, true)",
				     3, NULL, values, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "scope: %s\n", PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static void end_scope(void) { exec_ok(app, "ROLLBACK"); }

/* count(*) as crmd's role in the current transaction; -1 on error. */
static long app_count(const char *sql, const char *param)
{
	const char *v = it_db_value(app, sql, param);
	return v ? atol(v) : -1;
}

/* How many of the fixture's relations, customers, phones, intents and level
 * history rows of one fixture row the caller sees. */
static long sees_relation(int k)
{
	return app_count("SELECT count(*) FROM crm.relations WHERE id = $1::uuid", relation[k]);
}
static long sees_customer(int k)
{
	return app_count("SELECT count(*) FROM crm.customers WHERE id = $1::uuid", customer[k]);
}
static long sees_phones(int k)
{
	return app_count("SELECT count(*) FROM crm.customer_phones WHERE customer_id = $1::uuid",
			 customer[k]);
}
static long sees_intents(int k)
{
	return app_count("SELECT count(*) FROM crm.relation_intents WHERE relation_id = $1::uuid",
			 relation[k]);
}
static long sees_levels(int k)
{
	return app_count("SELECT count(*) FROM crm.level_changes WHERE relation_id = $1::uuid",
			 relation[k]);
}

/* Rows an UPDATE as crmd's role touched; -1 on error. */
static long app_update(const char *sql, const char *param)
{
	const char *values[] = {param};
	PGresult *res = PQexecParams(app, sql, 1, NULL, values, NULL, NULL, 0);
	long n = PQresultStatus(res) == PGRES_COMMAND_OK ? atol(PQcmdTuples(res)) : -1;
	if (n < 0)
		fprintf(stderr, "update: %s\n", PQresultErrorMessage(res));
	PQclear(res);
	return n;
}

static void test_crmd_role_cannot_bypass_row_level_security(void)
{
	CHECK_STR(it_db_value(app, "SELECT (rolsuper OR rolbypassrls)::text FROM pg_roles"
				   " WHERE rolname = current_user", NULL), "false");
	CHECK_STR(it_db_value(app, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'crm'"
				   " AND tableowner = current_user", NULL), "0");
	CHECK_STR(it_db_value(db, "SELECT count(*)::text FROM pg_class c"
				  " JOIN pg_namespace n ON n.oid = c.relnamespace"
				  " WHERE n.nspname = 'crm' AND c.relrowsecurity AND c.relforcerowsecurity"
				  " AND c.relname = ANY ($1::text[])",
			      "{customers,customer_phones,relations,relation_intents,level_changes,"
			      "lead_collisions,handovers}"),
		  "7");
}

static void test_no_scope_sees_nothing(void)
{
	CHECK(begin_scope(NULL, NULL, NULL));
	CHECK(app_count("SELECT count(*) FROM crm.relations", NULL) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.customers", NULL) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.customer_phones", NULL) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.relation_intents", NULL) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.level_changes", NULL) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.customer_view", NULL) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.relation_view", NULL) == 0);
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = ANY ($1::uuid[])",
			 relation_set) == 0);
	end_scope();
	/* The superuser does see them: the rows are there. */
	CHECK_STR(it_db_value(db, "SELECT count(*)::text FROM crm.relations"
				  " WHERE id = ANY ($1::uuid[])", relation_set), "4");
}

static void test_store_manager_sees_own_store_not_another(void)
{
	CHECK(begin_scope("store_manager", bj01, manager));
	for (int k = MINE; k <= COLLEAGUE; k++) {
		CHECK(sees_relation(k) == 1);
		CHECK(sees_customer(k) == 1);
		CHECK(sees_phones(k) == 1);
		CHECK(sees_intents(k) == 1);
		CHECK(sees_levels(k) == 1);
	}
	CHECK(sees_relation(OTHER_STORE) == 0);
	CHECK(sees_customer(OTHER_STORE) == 0);
	CHECK(sees_phones(OTHER_STORE) == 0);
	CHECK(sees_intents(OTHER_STORE) == 0);
	CHECK(sees_levels(OTHER_STORE) == 0);
	CHECK(app_count("SELECT count(*) FROM crm.relation_view WHERE id = ANY ($1::uuid[])",
			relation_set) == 3);
	/* Another store's relations show only for this store's customers
	 * (their history at every store is on the card). */
	CHECK(app_count("SELECT count(*) FROM crm.relations r WHERE r.store_id <> $1::uuid"
			" AND NOT EXISTS (SELECT 1 FROM crm.relations m"
			" WHERE m.customer_id = r.customer_id AND m.store_id = $1::uuid)",
			bj01) == 0);
	/* Writes to another store's rows find nothing to change. */
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = $1::uuid",
			 relation[OTHER_STORE]) == 0);
	CHECK(app_update("UPDATE crm.customers SET occupation = 'rls' WHERE id = $1::uuid",
			 customer[OTHER_STORE]) == 0);
	CHECK(app_update("DELETE FROM crm.relation_intents WHERE relation_id = $1::uuid",
			 relation[OTHER_STORE]) == 0);
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = $1::uuid",
			 relation[MINE]) == 1);
	end_scope();
	CHECK_STR(it_db_value(db, "SELECT status FROM crm.relations WHERE id = $1::uuid",
			      relation[OTHER_STORE]), "active");
	CHECK_STR(it_db_value(db, "SELECT count(*)::text FROM crm.relation_intents"
				  " WHERE relation_id = $1::uuid", relation[OTHER_STORE]), "1");
	/* Nor can a relation be opened in another store's name. */
	CHECK(begin_scope("store_manager", bj01, manager));
	const char *values[] = {customer[OTHER_STORE], sh01};
	PGresult *res = PQexecParams(app,
				     "INSERT INTO crm.relations (id, customer_id, store_id,"
				     " protected_until) VALUES (gen_random_uuid(), $1::uuid,"
				     " $2::uuid, now())",
				     2, NULL, values, NULL, NULL, 0);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	CHECK_STR(state ? state : "", "42501");
	PQclear(res);
	end_scope();
}

static void test_consultant_sees_own_and_pool_not_a_colleagues(void)
{
	CHECK(begin_scope("consultant", bj01, me));
	CHECK(sees_relation(MINE) == 1);
	CHECK(sees_relation(POOL) == 1);
	CHECK(sees_relation(COLLEAGUE) == 0);
	CHECK(sees_relation(OTHER_STORE) == 0);
	CHECK(sees_intents(MINE) == 1 && sees_levels(MINE) == 1);
	CHECK(sees_intents(POOL) == 1 && sees_levels(POOL) == 1);
	CHECK(sees_intents(COLLEAGUE) == 0 && sees_levels(COLLEAGUE) == 0);
	CHECK(sees_intents(OTHER_STORE) == 0 && sees_levels(OTHER_STORE) == 0);
	CHECK(sees_customer(OTHER_STORE) == 0 && sees_phones(OTHER_STORE) == 0);
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = $1::uuid",
			 relation[COLLEAGUE]) == 0);
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = $1::uuid",
			 relation[POOL]) == 1);
	end_scope();
	CHECK_STR(it_db_value(db, "SELECT status FROM crm.relations WHERE id = $1::uuid",
			      relation[COLLEAGUE]), "active");
}

static void test_group_analyst_sees_every_store(void)
{
	char user[128], pw[128], analyst[37] = "";
	CHECK(it_demo_user("group_analyst", NULL, user, sizeof user, pw, sizeof pw) &&
	      copy_value(db, "SELECT id::text FROM crm.users WHERE username = $1", user, analyst,
			 sizeof analyst));
	CHECK(begin_scope("group_analyst", NULL, analyst));
	CHECK(app_count("SELECT count(*) FROM crm.relations WHERE id = ANY ($1::uuid[])",
			relation_set) == 4);
	CHECK(app_count("SELECT count(*) FROM crm.customers WHERE id = ANY ($1::uuid[])",
			customer_set) == 4);
	CHECK(app_count("SELECT count(*) FROM crm.customer_phones WHERE customer_id = ANY ($1::uuid[])",
			customer_set) == 4);
	CHECK(app_count("SELECT count(*) FROM crm.relation_intents WHERE relation_id = ANY ($1::uuid[])",
			relation_set) == 4);
	CHECK(app_count("SELECT count(*) FROM crm.level_changes WHERE relation_id = ANY ($1::uuid[])",
			relation_set) == 4);
	/* Reading all is not writing all: relations are written by their store. */
	CHECK(app_update("UPDATE crm.relations SET status = 'closed' WHERE id = ANY ($1::uuid[])",
			 relation_set) == 0);
	end_scope();
}

/* A customer of BJ01 who also has a relation at SH01: BJ01 sees that
 * relation (the customer's history) and cannot change it; SH01 sees BJ01's
 * relation as well, and neither sees the other's unrelated customers. */
static void test_shared_customer_shows_its_other_store_read_only(void)
{
	const char *values[] = {customer[MINE], sh01, manager};
	PGresult *res = PQexecParams(db,
				     "INSERT INTO crm.relations (id, customer_id, store_id, level,"
				     " protected_until, created_by) VALUES (gen_random_uuid(),"
				     " $1::uuid, $2::uuid, 'B', now(), $3::uuid) RETURNING id::text",
				     3, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "fixture: %s\n", PQresultErrorMessage(res));
	char shared[37] = "";
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(shared, sizeof shared, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	CHECK(shared[0]);
	CHECK(begin_scope("consultant", bj01, me));
	CHECK(app_count("SELECT count(*) FROM crm.relations WHERE id = $1::uuid", shared) == 1);
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = $1::uuid",
			 shared) == 0);
	end_scope();
	CHECK(begin_scope("store_manager", sh01, me));
	CHECK(sees_relation(MINE) == 1 && sees_customer(MINE) == 1);
	CHECK(sees_relation(POOL) == 0 && sees_customer(POOL) == 0);
	CHECK(app_update("UPDATE crm.relations SET status = 'dormant' WHERE id = $1::uuid",
			 relation[MINE]) == 0);
	end_scope();
	CHECK_STR(it_db_value(db, "SELECT status FROM crm.relations WHERE id = $1::uuid", shared),
		  "active");
}

/* Tasks (sql/0036): their policy is the relations policy written on the
 * task's copies of its relation's store, owner and customer, so in every
 * scope a task must be visible exactly when its relation is, also after
 * the relation changes hands. Runs after the shared-customer test: its
 * relation of MINE's customer at SH01 is the cross-store case. */
enum { SHARED = NROWS };

static bool make_task(const char *rel, char *out, size_t cap)
{
	return copy_value(db,
			  "INSERT INTO crm.tasks (id, relation_id, store_id, owner_id, due_at, method,"
			  " purpose, created_at) SELECT gen_random_uuid(), r.id, r.store_id,"
			  " r.owner_id, now() + interval '1 day', 'phone', 'rls test', now()"
			  " FROM crm.relations r WHERE r.id = $1::uuid RETURNING id::text",
			  rel, out, cap);
}

static long sees_tasks_of(const char *rel)
{
	return app_count("SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid", rel);
}

/* In the scope begun, each relation's task is seen as the relation is;
 * returns how many of the five relations are seen, -1 on a mismatch. */
static int tasks_match_relations(char (*rels)[37])
{
	int seen = 0;
	for (int k = 0; k <= SHARED; k++) {
		long r = app_count("SELECT count(*) FROM crm.relations WHERE id = $1::uuid", rels[k]);
		long t = sees_tasks_of(rels[k]);
		if (r != t || r < 0) {
			fprintf(stderr, "relation %d: %ld relation(s) seen, %ld task(s)\n", k, r, t);
			return -1;
		}
		seen += (int)r;
	}
	return seen;
}

/* A write as the superuser; true when it ran. */
static bool db_run(const char *sql, int n, const char *const *values)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, values, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "db: %s: %s\n", sql, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static bool set_owner(const char *rel, const char *owner)
{
	return db_run("UPDATE crm.relations SET owner_id = $1::uuid WHERE id = $2::uuid", 2,
		      (const char *[]){owner, rel});
}

static void test_tasks_follow_their_relations(void)
{
	char rels[NROWS + 1][37], task[37] = "";
	for (int k = 0; k < NROWS; k++)
		memcpy(rels[k], relation[k], sizeof rels[k]);
	const char *values[] = {customer[MINE], sh01};
	PGresult *res = PQexecParams(db, "SELECT id::text FROM crm.relations WHERE customer_id ="
				     " $1::uuid AND store_id = $2::uuid", 2, NULL, values, NULL,
				     NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1);
	snprintf(rels[SHARED], sizeof rels[SHARED], "%s",
		 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	for (int k = 0; k <= SHARED; k++)
		CHECK(make_task(rels[k], task, sizeof task));

	/* consultant: MINE, POOL, and SHARED through MINE's customer */
	CHECK(begin_scope("consultant", bj01, me));
	CHECK(tasks_match_relations(rels) == 3);
	CHECK(sees_tasks_of(rels[COLLEAGUE]) == 0 && sees_tasks_of(rels[SHARED]) == 1);
	end_scope();
	CHECK(begin_scope("consultant", bj01, colleague));
	CHECK(tasks_match_relations(rels) == 2);
	end_scope();
	CHECK(begin_scope("store_manager", bj01, manager));
	CHECK(tasks_match_relations(rels) == 4);
	end_scope();
	CHECK(begin_scope("store_manager", sh01, manager));
	CHECK(tasks_match_relations(rels) == 3); /* SH01's two, and MINE by its customer */
	end_scope();
	CHECK(begin_scope("group_analyst", NULL, manager));
	CHECK(tasks_match_relations(rels) == 5);
	end_scope();
	CHECK(begin_scope(NULL, NULL, NULL));
	CHECK(tasks_match_relations(rels) == 0);
	end_scope();

	/* A handover: the copies follow, and with them who sees the task. */
	CHECK(set_owner(relation[MINE], colleague));
	CHECK_STR(it_db_value(db, "SELECT relation_owner_id::text FROM crm.tasks"
				  " WHERE relation_id = $1::uuid", relation[MINE]),
		  colleague);
	CHECK(begin_scope("consultant", bj01, me));
	CHECK(tasks_match_relations(rels) == 1); /* the pool only */
	end_scope();
	CHECK(begin_scope("consultant", bj01, colleague));
	CHECK(tasks_match_relations(rels) == 4);
	end_scope();
	CHECK(set_owner(relation[MINE], me));
	CHECK(begin_scope("consultant", bj01, me));
	CHECK(tasks_match_relations(rels) == 3);
	end_scope();
	CHECK(db_run("UPDATE crm.relations SET level = 'H' WHERE id = $1::uuid", 1,
		     (const char *[]){relation[MINE]}));
	CHECK_STR(it_db_value(db, "SELECT level FROM crm.tasks WHERE relation_id = $1::uuid",
			      relation[MINE]), "H");

	/* A rename reaches the task through the relation's copy (0026). */
	CHECK(db_run("UPDATE crm.customers SET name = 'RLS 改名' WHERE id = $1::uuid", 1,
		     (const char *[]){customer[MINE]}));
	CHECK_STR(it_db_value(db, "SELECT string_agg(DISTINCT customer_name, ',') FROM crm.tasks"
				  " WHERE customer_id = $1::uuid", customer[MINE]), "RLS 改名");

	/* Nobody sets the copies: a write to them is replaced by the relation's. */
	CHECK(db_run("UPDATE crm.tasks SET relation_owner_id = NULL, level = 'D',"
		     " customer_name = 'forged' WHERE relation_id = $1::uuid", 1,
		     (const char *[]){relation[MINE]}));
	char want[128];
	snprintf(want, sizeof want, "%s H RLS 改名", me);
	CHECK_STR(it_db_value(db, "SELECT relation_owner_id::text || ' ' || level || ' ' ||"
				  " customer_name FROM crm.tasks WHERE relation_id = $1::uuid",
			      relation[MINE]),
		  want);

	/* A task is at its relation's store. */
	const char *wrong[] = {relation[MINE], sh01};
	res = PQexecParams(db, "INSERT INTO crm.tasks (id, relation_id, store_id, due_at, method,"
			   " purpose, created_at) VALUES (gen_random_uuid(), $1::uuid, $2::uuid,"
			   " now(), 'phone', 'wrong store', now())", 2, NULL, wrong, NULL, NULL, 0);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	CHECK_STR(state ? state : "", "DC400");
	PQclear(res);
}

/* The audit log is not a table crmd's role can write or read directly, in
 * any scope: it appends through crm.audit_append only. */
/* The values of two queries of one id, each as its connection sees it, are
 * the same; false when either is missing. it_db_value's buffer is shared,
 * so the first is copied. */
static bool same_value(PGconn *a, const char *sql_a, PGconn *b, const char *sql_b,
		       const char *id)
{
	const char *v = it_db_value(a, sql_a, id);
	char *first = v ? strdup(v) : NULL;
	v = it_db_value(b, sql_b, id);
	bool same = first && v && !strcmp(first, v);
	if (first && v && !same)
		fprintf(stderr, "'%s' is not '%s'\n", first, v);
	free(first);
	return same;
}

static bool copy_is(const char *copy_sql, const char *rows_sql, const char *id)
{
	return same_value(db, copy_sql, db, rows_sql, id);
}

/* The superuser's value of a query of one id holds needle. */
static bool value_has(const char *sql, const char *id, const char *needle)
{
	const char *v = it_db_value(db, sql, id);
	return v && strstr(v, needle);
}

/* What crm.customer_view and crm.relation_view showed before 0037, from the
 * phone and intent rows; '-' for none. */
#define PHONES_OF(expr)                                                                    \
	"SELECT coalesce((SELECT string_agg(" expr " || E'\\x1e' || p.kind || E'\\x1e'"       \
	" || p.is_primary::text, E'\\x1f' ORDER BY p.is_primary DESC, p.added_at, p.phone)"  \
	" FROM crm.customer_phones p WHERE p.customer_id = $1::uuid), '-')"
#define SHOWN_ROWS PHONES_OF("p.phone")
#define MASKED_ROWS PHONES_OF("crm.mask_phone(p.phone)")
#define SHOWN_COPY "SELECT coalesce(phones_shown, '-') FROM crm.customers WHERE id = $1::uuid"
#define MASKED_COPY "SELECT coalesce(phones_masked, '-') FROM crm.customers WHERE id = $1::uuid"
#define INTENTS_ROWS                                                                        \
	"SELECT coalesce((SELECT string_agg(concat_ws(E'\\x1e', i.model, i.body_type,"        \
	" i.configuration, i.budget_min, i.budget_max, i.needs), E'\\x1f' ORDER BY i.position)" \
	" FROM crm.relation_intents i WHERE i.relation_id = $1::uuid), '-')"
#define INTENTS_COPY "SELECT coalesce(intents_text, '-') FROM crm.relations WHERE id = $1::uuid"

static bool phone_copies_right(const char *cust)
{
	return copy_is(SHOWN_COPY, SHOWN_ROWS, cust) && copy_is(MASKED_COPY, MASKED_ROWS, cust);
}

/* sql/0037: a customer row's copies of its phones and a relation row's copy
 * of its intents follow every write of the rows they copy, and no other
 * write sets them; the views show them to whom they showed the rows. */
static void test_list_copies_follow_phones_and_intents(void)
{
	const char *cust = customer[POOL], *rel = relation[POOL];
	CHECK(phone_copies_right(cust));
	CHECK(copy_is(INTENTS_COPY, INTENTS_ROWS, rel));
	CHECK(value_has(SHOWN_COPY, cust, "mobile"));

	/* a second phone, then made the primary one */
	char digits[16], second[20];
	it_phone(digits);
	snprintf(second, sizeof second, "+86%s", digits);
	CHECK(db_run("INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind)"
		     " VALUES ($1, $2::uuid, false, 'landline')",
		     2, (const char *[]){second, cust}));
	CHECK(phone_copies_right(cust));
	CHECK(value_has(SHOWN_COPY, cust, "\x1f"));
	CHECK(db_run("UPDATE crm.customer_phones SET is_primary = false"
		     " WHERE customer_id = $1::uuid AND is_primary",
		     1, (const char *[]){cust}));
	CHECK(db_run("UPDATE crm.customer_phones SET is_primary = true WHERE phone = $1", 1,
		     (const char *[]){second}));
	CHECK(phone_copies_right(cust));
	CHECK(value_has(SHOWN_COPY, cust, second) &&
	      !strncmp(it_db_value(db, SHOWN_COPY, cust), second, strlen(second)));

	/* shown to a reader who sees contacts, masked to one who does not */
	CHECK(begin_scope("store_manager", bj01, manager));
	CHECK(same_value(app, "SELECT phones FROM crm.customer_view WHERE id = $1::uuid", db,
			 SHOWN_ROWS, cust));
	end_scope();
	CHECK(begin_scope("group_analyst", NULL, manager));
	CHECK(same_value(app, "SELECT phones FROM crm.customer_view WHERE id = $1::uuid", db,
			 MASKED_ROWS, cust));
	end_scope();
	CHECK(value_has(MASKED_COPY, cust, "****"));

	/* a direct write is replaced by the rows' value */
	CHECK(db_run("UPDATE crm.customers SET phones_shown = 'forged', phones_masked = NULL"
		     " WHERE id = $1::uuid",
		     1, (const char *[]){cust}));
	CHECK(phone_copies_right(cust));
	CHECK(db_run("DELETE FROM crm.customer_phones WHERE phone = $1", 1,
		     (const char *[]){second}));
	CHECK(phone_copies_right(cust));
	CHECK(!value_has(SHOWN_COPY, cust, "\x1f") && value_has(SHOWN_COPY, cust, "mobile"));

	/* intents: added, changed, forged, removed */
	CHECK(db_run("INSERT INTO crm.relation_intents (relation_id, position, model, body_type,"
		     " budget_min, budget_max, needs) VALUES ($1::uuid, 1, 'X3', 'suv', 300000,"
		     " 400000, '七座; \"引号\" ''单引号''')",
		     1, (const char *[]){rel}));
	CHECK(copy_is(INTENTS_COPY, INTENTS_ROWS, rel));
	CHECK(value_has(INTENTS_COPY, rel, "单引号"));
	CHECK(db_run("UPDATE crm.relation_intents SET model = 'A6L' WHERE relation_id = $1::uuid"
		     " AND position = 0",
		     1, (const char *[]){rel}));
	CHECK(copy_is(INTENTS_COPY, INTENTS_ROWS, rel));
	CHECK(value_has(INTENTS_COPY, rel, "A6L"));
	CHECK(begin_scope("consultant", bj01, me));
	CHECK(same_value(app, "SELECT intents FROM crm.relation_view WHERE id = $1::uuid", db,
			 INTENTS_ROWS, rel));
	end_scope();
	CHECK(db_run("UPDATE crm.relations SET intents_text = 'forged' WHERE id = $1::uuid", 1,
		     (const char *[]){rel}));
	CHECK(copy_is(INTENTS_COPY, INTENTS_ROWS, rel));
	CHECK(db_run("DELETE FROM crm.relation_intents WHERE relation_id = $1::uuid", 1,
		     (const char *[]){rel}));
	CHECK_STR(it_db_value(db, INTENTS_COPY, rel), "-");
	CHECK(db_run("INSERT INTO crm.relation_intents (relation_id, position, model)"
		     " VALUES ($1::uuid, 0, 'Q5L')",
		     1, (const char *[]){rel}));
	CHECK(copy_is(INTENTS_COPY, INTENTS_ROWS, rel));
}

static void test_crmd_role_cannot_change_the_audit_log(void)
{
	CHECK_STR(it_db_value(db, "SELECT (count(*) > 0)::text FROM crm.audit_log", NULL), "true");
	CHECK(begin_scope("group_admin", NULL, manager));
	CHECK(app_update("UPDATE crm.audit_log SET action = 'rls.test' WHERE id = (SELECT"
			 " min(id) FROM crm.audit_log) AND $1 <> ''", "x") == -1);
	end_scope();
	CHECK(begin_scope("group_admin", NULL, manager));
	CHECK(app_update("DELETE FROM crm.audit_log WHERE $1 <> ''", "x") == -1);
	end_scope();
	CHECK(begin_scope("group_admin", NULL, manager));
	CHECK(app_count("SELECT count(*) FROM crm.audit_log WHERE $1 <> ''", "x") == -1);
	end_scope();
	CHECK_STR(it_db_value(db, "SELECT count(*)::text FROM crm.audit_log"
				  " WHERE action = 'rls.test'", NULL), "0");
}

/* What a list asks PostgreSQL for, as crmd's role under the policies: the
 * phone and name searches keep their index plans (a condition that is not
 * leakproof would not be used as an index condition). */
/* True when a line of the plan of `sql` (as crmd's role, in the current
 * scope) has `column` in an index condition. */
static bool index_condition_on(const char *sql, const char *column)
{
	char explain[512];
	snprintf(explain, sizeof explain, "EXPLAIN %s", sql);
	PGresult *res = PQexec(app, explain);
	bool found = false;
	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
		const char *line = PQgetvalue(res, i, 0);
		found = found || (strstr(line, "Index Cond") && strstr(line, column));
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "explain: %s\n", PQresultErrorMessage(res));
	for (int i = 0; !found && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		fprintf(stderr, "plan without an index condition on %s: %s\n", column,
			PQgetvalue(res, i, 0));
	PQclear(res);
	return found;
}

/* What the searches ask PostgreSQL for, as crmd's role under the policies:
 * their conditions stay index conditions. (The planner lets a condition
 * of a query on a table with policies into an index scan only when it is
 * leakproof: LIKE, lower() and trigram operators would be applied to every
 * row the policies let through instead.) */
static void test_searches_keep_their_indexes_under_the_policies(void)
{
	CHECK(begin_scope("consultant", bj01, me));
	/* The fixture's tables are small: without this a scan of the whole
	 * table could win whatever the conditions are. */
	CHECK(exec_ok(app, "SET LOCAL enable_seqscan = off"));
	CHECK(index_condition_on("SELECT c.id FROM crm.customers c WHERE c.name_lower = 'x'",
				 "name_lower"));
	CHECK(index_condition_on("SELECT r.id FROM crm.relations r WHERE r.customer_id ="
				 " ANY ('{00000000-0000-0000-0000-000000000001}'::uuid[])",
				 "customer_id"));
	CHECK(index_condition_on("SELECT p.customer_id FROM crm.customer_phones p"
				 " WHERE p.phone_rev OPERATOR(pg_catalog.~>=~) '4321'"
				 " AND p.phone_rev OPERATOR(pg_catalog.~<~) '4322'", "phone_rev"));
	/* A store's name search compares relations.customer_name_lower with =,
	 * whose plan depends on the table's size; what lets it be an index
	 * condition under the policies is that = on text is leakproof. */
	CHECK_STR(it_db_value(app, "SELECT string_agg(proname || '=' || proleakproof, ',' ORDER BY"
				   " proname) FROM pg_proc WHERE proname = ANY ($1::text[])",
			      "{texteq,text_pattern_ge,text_pattern_lt,uuid_eq,textlike}"),
		  "text_pattern_ge=true,text_pattern_lt=true,texteq=true,textlike=false,"
		  "uuid_eq=true");
	/* and the same test tells a condition that cannot be one */
	CHECK(!index_condition_on("SELECT c.id FROM crm.customers c WHERE lower(c.name) = 'x'",
				  "lower"));
	end_scope();
}

/* A store's phones (sql/0015) are read only through the definer lookup,
 * which keeps to the caller's store: no scope reaches the table itself. */
static void test_store_phones_only_through_the_lookup(void)
{
	CHECK(begin_scope("group_admin", NULL, manager));
	CHECK(app_count("SELECT count(*) FROM crm.store_phones WHERE $1 <> ''", "x") == -1);
	end_scope();
	char rev[16];
	const char *phone = it_db_value(db, "SELECT phone FROM crm.customer_phones"
					    " WHERE customer_id = $1::uuid", customer[OTHER_STORE]);
	CHECK(phone != NULL);
	if (!phone)
		return;
	/* the last 7 digits, reversed */
	size_t n = strlen(phone);
	for (int i = 0; i < 7; i++)
		rev[i] = phone[n - 1 - (size_t)i];
	rev[7] = '\0';
	CHECK(begin_scope("store_manager", bj01, manager));
	const char *ids = it_db_value(app, "SELECT crm.customer_ids_by_phone(NULL, $1)::text", rev);
	CHECK(ids && !strstr(ids, customer[OTHER_STORE]));
	end_scope();
	CHECK(begin_scope("store_manager", sh01, manager));
	ids = it_db_value(app, "SELECT crm.customer_ids_by_phone(NULL, $1)::text", rev);
	CHECK(ids && strstr(ids, customer[OTHER_STORE]));
	end_scope();
}

/* The real path: crm.session_begin with a session crmd opened sets the scope
 * for that transaction only. */
static void test_session_begin_sets_the_scope_for_one_transaction(void)
{
	char user[128], pw[128], session[37] = "";
	CHECK(it_demo_user("consultant", "BJ01", user, sizeof user, pw, sizeof pw));
	struct crmc *c = it_connect();
	CHECK(c && it_login_as(c, user, pw) == CRM__CODE__OK);
	CHECK(copy_value(db, "SELECT id::text FROM crm.sessions WHERE user_id = $1::uuid"
			     " AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1",
			 me, session, sizeof session));
	CHECK(exec_ok(app, "BEGIN"));
	CHECK(app_count("SELECT count(*) FROM crm.session_begin($1::uuid)", session) == 1);
	CHECK(app_count("SELECT count(*) FROM crm.relations WHERE id = ANY ($1::uuid[])",
			relation_set) == 2);
	CHECK(sees_relation(MINE) == 1 && sees_relation(POOL) == 1);
	CHECK(sees_relation(COLLEAGUE) == 0 && sees_relation(OTHER_STORE) == 0);
	CHECK(exec_ok(app, "COMMIT"));
	/* The next transaction starts without a scope. */
	CHECK(app_count("SELECT count(*) FROM crm.relations WHERE id = ANY ($1::uuid[])",
			relation_set) == 0);
	if (c)
		crmc_close(c);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	app = it_db_app();
	if (!app) {
		fprintf(stderr, "no connection as crmd's role (its password is in the config)\n");
		return 1;
	}
	if (!fixture()) {
		fprintf(stderr, "could not write the fixture rows\n");
		return 1;
	}
	test_crmd_role_cannot_bypass_row_level_security();
	test_no_scope_sees_nothing();
	test_store_manager_sees_own_store_not_another();
	test_consultant_sees_own_and_pool_not_a_colleagues();
	test_group_analyst_sees_every_store();
	test_session_begin_sets_the_scope_for_one_transaction();
	test_shared_customer_shows_its_other_store_read_only();
	test_tasks_follow_their_relations();
	test_list_copies_follow_phones_and_intents();
	test_crmd_role_cannot_change_the_audit_log();
	test_store_phones_only_through_the_lookup();
	test_searches_keep_their_indexes_under_the_policies();
	PQfinish(app);
	PQfinish(db);
	return it_summary();
}
