/* The row checks of the tables every follow-up writes (sql/0050): a row
 * that breaks a rule is refused with check_violation naming the table, the
 * column and the constraint, and the row stored before is unchanged; a rule
 * counts characters, not bytes; a NULL passes, as it did a CHECK
 * constraint. The rows are made through crmd, so crmd's own role has just
 * run every one of the four checks. */
#include "rel_itest.h"

/* Runs `sql` ($1 = `id`) as the superuser; it must fail with SQLSTATE 23514
 * on `table`.`column`, the message naming both. */
static void check_refused(const char *sql, const char *id, const char *table, const char *column)
{
	PGresult *res = PQexecParams(rel_db, sql, id ? 1 : 0, NULL, id ? &id : NULL, NULL, NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
	CHECK_STR(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23514");
	CHECK_STR(PQresultErrorField(res, PG_DIAG_TABLE_NAME), table);
	CHECK_STR(PQresultErrorField(res, PG_DIAG_COLUMN_NAME), column);
	char constraint[64], named[96];
	snprintf(constraint, sizeof constraint, "%s_row_check", table);
	CHECK_STR(PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME), constraint);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(named, sizeof named, "%s.%s ", table, column);
	CHECK(msg && strstr(msg, named) == msg);
	if (PQresultStatus(res) != PGRES_FATAL_ERROR)
		fprintf(stderr, "not refused: %s\n", sql);
	PQclear(res);
}

/* Runs `sql` ($1 = `id`) in a transaction that is rolled back; true when
 * the statement succeeded. */
static bool passes(const char *sql, const char *id)
{
	PQclear(PQexec(rel_db, "BEGIN"));
	PGresult *res = PQexecParams(rel_db, sql, id ? 1 : 0, NULL, id ? &id : NULL, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "refused: %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	PQclear(PQexec(rel_db, "ROLLBACK"));
	return ok;
}

static const char *value(const char *sql, const char *id)
{
	return it_db_value(rel_db, sql, id);
}

static void test_followups(const char *fid)
{
	check_refused("UPDATE crm.followups SET type = 'gossip' WHERE id = $1::uuid", fid, "followups",
		      "type");
	check_refused("UPDATE crm.followups SET content = '' WHERE id = $1::uuid", fid, "followups",
		      "content");
	CHECK_STR(value("SELECT type || ' ' || content FROM crm.followups WHERE id = $1::uuid", fid),
		  "needs_analysis 致电客户处理投诉");
	/* 2,000 characters of three bytes each pass; one more does not. */
	CHECK(passes("UPDATE crm.followups SET content = repeat('访', 2000) WHERE id = $1::uuid", fid));
	check_refused("UPDATE crm.followups SET content = repeat('访', 2001) WHERE id = $1::uuid", fid,
		      "followups", "content");
}

static void test_relations(const char *rid)
{
	const char *level = value("SELECT level FROM crm.relations WHERE id = $1::uuid", rid);
	char before[8];
	snprintf(before, sizeof before, "%s", level ? level : "?");
	check_refused("UPDATE crm.relations SET level = 'Z' WHERE id = $1::uuid", rid, "relations",
		      "level");
	check_refused("UPDATE crm.relations SET source = 'rumour' WHERE id = $1::uuid", rid,
		      "relations", "source");
	check_refused("UPDATE crm.relations SET version = 0 WHERE id = $1::uuid", rid, "relations",
		      "version");
	CHECK_STR(value("SELECT level FROM crm.relations WHERE id = $1::uuid", rid), before);
	CHECK(passes("UPDATE crm.relations SET first_feedback = repeat('满', 1000) WHERE id = $1::uuid",
		     rid));
	check_refused("UPDATE crm.relations SET first_feedback = repeat('满', 1001) WHERE id = $1::uuid",
		      rid, "relations", "first_feedback");
}

static void test_tasks(const char *tid)
{
	check_refused("UPDATE crm.tasks SET method = 'fax' WHERE id = $1::uuid", tid, "tasks", "method");
	check_refused("UPDATE crm.tasks SET status = 'skipped', closed_at = now(), reason = '' "
		      "WHERE id = $1::uuid",
		      tid, "tasks", "reason");
	check_refused("UPDATE crm.tasks SET status = 'skipped' WHERE id = $1::uuid", tid, "tasks",
		      "closed_at");
	check_refused("UPDATE crm.tasks SET status = 'done', closed_at = now() WHERE id = $1::uuid", tid,
		      "tasks", "followup_id");
	CHECK_STR(value("SELECT status || ' ' || (closed_at IS NULL) || ' ' || method "
			"FROM crm.tasks WHERE id = $1::uuid",
			tid),
		  "open true phone");
	CHECK(passes("UPDATE crm.tasks SET status = 'skipped', closed_at = now(), "
		     "reason = '客户出差' WHERE id = $1::uuid",
		     tid));
}

static void test_audit_log(void)
{
	const char *n = value("SELECT count(*) FROM crm.audit_log", NULL);
	char before[32];
	snprintf(before, sizeof before, "%s", n ? n : "?");
	check_refused("INSERT INTO crm.audit_log (action, outcome) VALUES ('Customer Read', 'ok')", NULL,
		      "audit_log", "action");
	check_refused("INSERT INTO crm.audit_log (action, outcome) VALUES ('customer.read', 'maybe')",
		      NULL, "audit_log", "outcome");
	check_refused("INSERT INTO crm.audit_log (action, outcome, reason) "
		      "VALUES ('customer.read', 'ok', repeat('因', 501))",
		      NULL, "audit_log", "reason");
	CHECK_STR(value("SELECT count(*) FROM crm.audit_log", NULL), before);
	/* NULL where a rule would read the value: passes, as under a CHECK. */
	CHECK(passes("INSERT INTO crm.audit_log (action, outcome, actor_username, entity, entity_id, "
		     "reason, source_addr, subject) "
		     "VALUES ('customer.read', 'ok', NULL, NULL, NULL, NULL, NULL, NULL)",
		     NULL));
}

int main(void)
{
	if (!rel_setup()) {
		fprintf(stderr, "no database\n");
		return 1;
	}
	struct crmc *c = rel_login_user("rs.consultant1");
	char cid[37], rid[37], fid[37], tid[37] = "";
	bool made = c && rel_make_customer(c, "行检客户", cid, rid) &&
		    rel_followup_next(c, rid, "needs_analysis", rel_t0 + 2 * HOUR_MS,
				      rel_t0 + 26 * HOUR_MS, "确认试驾时间", fid);
	CHECK(made);
	const char *t = made ? value("SELECT id FROM crm.tasks WHERE relation_id = $1::uuid "
				     "AND status = 'open' AND purpose = '确认试驾时间'",
				     rid)
			     : NULL;
	CHECK(t && *t);
	if (t)
		snprintf(tid, sizeof tid, "%s", t);
	if (made) {
		test_followups(fid);
		test_relations(rid);
		if (*tid)
			test_tasks(tid);
		test_audit_log();
	}
	if (c)
		crmc_close(c);
	PQfinish(rel_db);
	return it_summary();
}
