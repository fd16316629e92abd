/* The first visit of a walk-in (issue 5; sql/0021): registering a walk-in
 * customer with the time of their first contact records their first visit,
 * and the cadence policy's N first_visit rules bring their tasks (a
 * thank-you message within 2 hours, a first call within 24) in the same
 * transaction, to the outbox; a visit follow-up later adds no second pair,
 * even when the first pair is done; a registration from another source, or
 * a walk-in without a first contact time, brings none; a relation update
 * that makes a relation with a first contact a walk-in brings them then.
 *
 * The consultant made here (fv.*) works at GZ01. Times are fixed: the
 * first contact is given in the request, the due times follow from it. */
#include <time.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "first-visit-test-pw-1"
#define MINUTE_MS 60000LL
#define HOUR_MS (60 * MINUTE_MS)

static PGconn *db;

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static long long db_ll(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atoll(v) : -1;
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

/* A first contact 10 minutes ago, whole minutes. */
static int64_t recent_first_contact(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000;
	return now - now % MINUTE_MS - 10 * MINUTE_MS;
}

/* Registers a customer with the caller's relation; `first_contact` 0 for
 * none. The reply (OK) or NULL; the relation id goes to `rid`. */
static Crm__Envelope *register_customer(struct crmc *c, const char *name, const char *source,
					int64_t first_contact, char rid[37])
{
	char cid[37], phone[16];
	it_phone(phone);
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)name;
	cu.phone = phone;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = (char *)source;
	rel.first_contact_at = first_contact;
	rel.first_contact_place = (char *)"展厅";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	if (code_of(e) != CRM__CODE__OK || !e->customer->relation) {
		fprintf(stderr, "create %s: %s\n", name, e ? crmc_status_message(e) : "no answer");
		it_free(e);
		return NULL;
	}
	return e;
}

static long first_visit_tasks(const char *rid)
{
	return db_long("SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid"
		       " AND cadence_key LIKE 'N/first_visit/%'", rid);
}

/* The first-visit task of `step` on the relation: due time, and whether
 * its method, owner and status are as the policy says; -1 when absent. */
static long long first_visit_due(const char *rid, int step, const char *method)
{
	char sql[512];
	snprintf(sql, sizeof sql,
		 "SELECT crm.ms(t.due_at) FROM crm.tasks t JOIN crm.users u ON u.id = t.owner_id"
		 " WHERE t.relation_id = $1::uuid AND t.cadence_key = 'N/first_visit/%d'"
		 " AND t.method = '%s' AND u.username = 'fv.consultant1' AND t.status = 'open'",
		 step, method);
	return db_ll(sql, rid);
}

/* Every task of the relation is in the outbox, packed as stored. */
static bool tasks_in_outbox(const char *rid)
{
	PGresult *res = PQexecParams(
		db,
		"SELECT t.id::text, crm.ms(t.due_at), t.cadence_key, o.payload FROM crm.tasks t"
		" LEFT JOIN LATERAL (SELECT x.payload FROM crm.outbox x WHERE x.entity = 'task'"
		"   AND x.entity_id = t.id ORDER BY x.seq DESC LIMIT 1) o ON true"
		" WHERE t.relation_id = $1::uuid",
		1, NULL, (const char *[]){rid}, NULL, NULL, 1);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;
	for (int i = 0; ok && i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, 3)) {
			ok = false;
			break;
		}
		Crm__Task *t = crm__task__unpack(NULL, (size_t)PQgetlength(res, i, 3),
						 (const uint8_t *)PQgetvalue(res, i, 3));
		/* Binary results: id and key are text either way, the bigint is
		 * big-endian. */
		uint64_t due = 0;
		for (int k = 0; k < 8; k++)
			due = due << 8 | (uint8_t)PQgetvalue(res, i, 1)[k];
		ok = t && !strcmp(t->id, PQgetvalue(res, i, 0)) && t->due_at == (int64_t)due &&
		     !strcmp(t->cadence_key, PQgetvalue(res, i, 2)) && !strcmp(t->status, "open") &&
		     !strcmp(t->relation_id, rid);
		if (t)
			crm__task__free_unpacked(t, NULL);
	}
	PQclear(res);
	return ok;
}

static Crm__Envelope *followup(struct crmc *c, const char *rid, const char *task_id,
			       const char *method, const char *type)
{
	char id[37];
	uuid_v7_new(id);
	Crm__Followup f = CRM__FOLLOWUP__INIT;
	f.id = id;
	f.relation_id = (char *)(task_id ? "" : rid);
	f.task_id = (char *)(task_id ? task_id : "");
	f.method = (char *)method;
	f.type = (char *)type;
	f.content = (char *)"到店看车";
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &f;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	req.followup_add = &fa;
	Crm__Envelope *e = it_call(c, &req);
	if (code_of(e) != CRM__CODE__OK)
		fprintf(stderr, "follow-up: %s\n", e ? crmc_status_message(e) : "no answer");
	return e;
}

static size_t first_visit_in_reply(const Crm__Envelope *e)
{
	size_t n = 0;
	for (size_t i = 0; e && e->body_case == CRM__ENVELOPE__BODY_FOLLOWUP_REPLY &&
			   i < e->followup_reply->n_tasks; i++)
		n += strstr(e->followup_reply->tasks[i]->cadence_key, "first_visit") != NULL;
	return n;
}

/* ------------------------------------------------------------ tests */

static void test_walk_in_registration_is_the_first_visit(struct crmc *c)
{
	int64_t fc = recent_first_contact();
	long outbox_before = db_long("SELECT count(*) FROM crm.outbox", NULL);
	char rid[37];
	Crm__Envelope *e = register_customer(c, "到店客户", "walk_in", fc, rid);
	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_STR(e->customer->relation->level, "N");
	/* The reply already shows the thank-you message as the next follow-up. */
	CHECK(e->customer->relation->next_followup_at == fc + 2 * HOUR_MS);
	it_free(e);
	CHECK(first_visit_tasks(rid) == 2);
	CHECK(first_visit_due(rid, 1, "wechat") == fc + 2 * HOUR_MS);
	CHECK(first_visit_due(rid, 2, "phone") == fc + 24 * HOUR_MS);
	CHECK(db_ll("SELECT crm.ms(next_followup_at) FROM crm.relations WHERE id = $1::uuid", rid) ==
	      fc + 2 * HOUR_MS);
	/* Customer, relation and the two tasks, in one transaction. */
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before + 4);
	CHECK(tasks_in_outbox(rid));

	/* The customer's first visit follow-up, later: no second pair. */
	e = followup(c, rid, NULL, "visit", "first_contact");
	CHECK(code_of(e) == CRM__CODE__OK);
	CHECK(first_visit_in_reply(e) == 0);
	it_free(e);
	CHECK(first_visit_tasks(rid) == 2);
}

/* The pair done, and only then the first visit follow-up: still none. */
static void test_visit_after_the_pair_is_done_adds_none(struct crmc *c)
{
	int64_t fc = recent_first_contact();
	char rid[37];
	Crm__Envelope *e = register_customer(c, "已回访客户", "walk_in", fc, rid);
	CHECK(e != NULL);
	it_free(e);
	for (int step = 1; step <= 2; step++) {
		char sql[256], task[37] = "";
		snprintf(sql, sizeof sql,
			 "SELECT id::text FROM crm.tasks WHERE relation_id = $1::uuid"
			 " AND cadence_key = 'N/first_visit/%d'", step);
		const char *v = it_db_value(db, sql, rid);
		snprintf(task, sizeof task, "%s", v ? v : "");
		CHECK(task[0]);
		e = followup(c, rid, task, step == 1 ? "wechat" : "phone", "care");
		CHECK(code_of(e) == CRM__CODE__OK);
		it_free(e);
	}
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid"
		      " AND cadence_key LIKE 'N/first_visit/%' AND status = 'done'", rid) == 2);
	e = followup(c, rid, NULL, "visit", "needs_analysis");
	CHECK(code_of(e) == CRM__CODE__OK);
	CHECK(first_visit_in_reply(e) == 0);
	it_free(e);
	CHECK(first_visit_tasks(rid) == 2);
}

/* Another source, or a walk-in without a first contact time: none at
 * registration. The walk-in without a time gets them at its first visit
 * follow-up, as before. */
static void test_other_registrations_bring_none(struct crmc *c)
{
	int64_t fc = recent_first_contact();
	long outbox_before = db_long("SELECT count(*) FROM crm.outbox", NULL);
	char referral[37], untimed[37];
	Crm__Envelope *e = register_customer(c, "转介绍客户", "referral", fc, referral);
	CHECK(e != NULL);
	CHECK(e && e->customer->relation->next_followup_at == 0);
	it_free(e);
	CHECK(first_visit_tasks(referral) == 0);
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before + 2);
	e = register_customer(c, "未记时间客户", "walk_in", 0, untimed);
	CHECK(e != NULL);
	it_free(e);
	CHECK(first_visit_tasks(untimed) == 0);
	e = followup(c, untimed, NULL, "visit", "first_contact");
	CHECK(first_visit_in_reply(e) == 2);
	it_free(e);
	CHECK(first_visit_tasks(untimed) == 2);
}

/* A relation update that makes a relation with a first contact time a
 * walk-in records its first visit then; updating it again adds nothing. */
static void test_relation_update_to_walk_in(struct crmc *c)
{
	int64_t fc = recent_first_contact();
	char rid[37];
	Crm__Envelope *e = register_customer(c, "电话来客户", "phone_in", fc, rid);
	CHECK(e != NULL);
	uint64_t version = e ? e->customer->relation->version : 0;
	it_free(e);
	CHECK(first_visit_tasks(rid) == 0);
	long outbox_before = db_long("SELECT count(*) FROM crm.outbox", NULL);
	for (int pass = 0; pass < 2; pass++) {
		Crm__Relation rel = CRM__RELATION__INIT;
		rel.source = (char *)"walk_in";
		rel.first_contact_at = fc - pass * MINUTE_MS;
		const char *fields[] = {"source", "first_contact_at"};
		Crm__RelationUpdate ru = CRM__RELATION_UPDATE__INIT;
		ru.id = rid;
		ru.version = version;
		ru.fields = (char **)fields;
		ru.n_fields = 2;
		ru.relation = &rel;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_RELATION_UPDATE;
		req.relation_update = &ru;
		e = it_call(c, &req);
		CHECK(code_of(e) == CRM__CODE__OK && e->relation && e->relation->relation);
		if (code_of(e) == CRM__CODE__OK && e->relation && e->relation->relation) {
			version = e->relation->relation->version;
			CHECK(e->relation->relation->next_followup_at == fc + 2 * HOUR_MS);
		}
		it_free(e);
		CHECK(first_visit_tasks(rid) == 2);
	}
	CHECK(first_visit_due(rid, 1, "wechat") == fc + 2 * HOUR_MS);
	/* Two relation changes and the two tasks. */
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before + 4);
	CHECK(tasks_in_outbox(rid));
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(it_add_user(db, "fv.consultant1", "方一", "consultant", "GZ01", PASSWORD));
	struct crmc *c = it_connect();
	if (!c || it_login_as(c, "fv.consultant1", PASSWORD) != CRM__CODE__OK)
		return 1;
	test_walk_in_registration_is_the_first_visit(c);
	test_visit_after_the_pair_is_done_adds_none(c);
	test_other_registrations_bring_none(c);
	test_relation_update_to_walk_in(c);
	crmc_close(c);
	PQfinish(db);
	return it_summary();
}
