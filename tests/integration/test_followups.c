/* Follow-ups, tasks and the cadence policy (issue 5; sql/0013) over TLS
 * against PostgreSQL: a follow-up moves the relation's last contact and
 * version and writes the outbox exactly as stored; the cadence policy
 * yields the tasks of each level and event, never twice; task lists at a
 * fixed clock; done, skip and reassign and who may do them; compliance
 * (on time, late by how much, missed); row-level security on the tables.
 *
 * Consultants made here (fu.*) work at BJ01 so that no other test's tasks
 * meet theirs; the demo's managers of BJ01 and SH01 act on them. */
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "followups-test-pw-1"
#define MINUTE_MS 60000LL
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

static PGconn *db;

/* ------------------------------------------------------------ helpers */

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

static struct crmc *login_user(const char *user, const char *password)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, password) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

static struct crmc *login_at(const char *role, const char *store)
{
	return it_login_demo(role, store);
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

static const char *field_of(const Crm__Envelope *e)
{
	return e && e->status && e->status->field ? e->status->field : "";
}

static int64_t now_ms_(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A customer and its relation at the caller's store, owned by the caller. */
static bool make_customer(struct crmc *c, const char *name, char cid[37], char rid[37])
{
	char phone[16];
	it_phone(phone);
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)name;
	cu.phone = phone;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = (char *)"walk_in";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "create %s: %s\n", name, e ? crmc_status_message(e) : "no answer");
	it_free(e);
	return ok;
}

static bool rename_customer(struct crmc *c, const char *cid, const char *name)
{
	uint64_t version =
		(uint64_t)db_ll("SELECT version FROM crm.customers WHERE id = $1::uuid", cid);
	Crm__Envelope *e = it_rename(c, cid, version, name);
	bool ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "rename to %s: %s\n", name, e ? crmc_status_message(e) : "no answer");
	it_free(e);
	return ok;
}

static uint64_t relation_version(const char *rid)
{
	return (uint64_t)db_ll("SELECT version FROM crm.relations WHERE id = $1::uuid", rid);
}

struct fu_args {
	const char *relation_id, *task_id, *method, *type, *content;
	int64_t at;                /* 0: now */
	int64_t next_due;          /* 0: no next task */
	const char *next_method, *next_purpose;
	const char *id;            /* NULL: a new one */
};

/* A FollowupAdd request and what it points to. */
struct fu_req {
	char id[37];
	Crm__Followup f;
	Crm__NextTask next;
	Crm__FollowupAdd fa;
	Crm__Envelope req;
};

static Crm__Envelope *fu_req_init(struct fu_req *q, const struct fu_args *a)
{
	if (a->id)
		snprintf(q->id, sizeof q->id, "%s", a->id);
	else
		uuid_v7_new(q->id);
	crm__followup__init(&q->f);
	q->f.id = q->id;
	q->f.relation_id = (char *)(a->relation_id ? a->relation_id : "");
	q->f.task_id = (char *)(a->task_id ? a->task_id : "");
	q->f.method = (char *)(a->method ? a->method : "phone");
	q->f.type = (char *)(a->type ? a->type : "needs_analysis");
	q->f.content = (char *)(a->content ? a->content : "called about the test drive");
	q->f.feedback = (char *)"interested";
	q->f.at = a->at;
	crm__next_task__init(&q->next);
	q->next.due_at = a->next_due;
	q->next.method = (char *)(a->next_method ? a->next_method : "");
	q->next.purpose = (char *)(a->next_purpose ? a->next_purpose : "");
	crm__followup_add__init(&q->fa);
	q->fa.followup = &q->f;
	q->fa.next = a->next_due ? &q->next : NULL;
	crm__envelope__init(&q->req);
	q->req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	q->req.followup_add = &q->fa;
	return &q->req;
}

static Crm__Envelope *add_followup(struct crmc *c, const struct fu_args *a)
{
	struct fu_req q;
	return it_call(c, fu_req_init(&q, a));
}

static bool ok_followup(const Crm__Envelope *e)
{
	bool ok = code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_FOLLOWUP_REPLY &&
		  e->followup_reply->followup && e->followup_reply->relation;
	if (!ok)
		fprintf(stderr, "  follow-up refused: %s (%s)\n", e ? crmc_status_message(e) : "-",
			field_of(e));
	return ok;
}

/* A task list of at most `limit` tasks (0: crmd's default). */
static Crm__Envelope *list_tasks_limit(struct crmc *c, const char *window, const char *owner,
				       const char *store, const char *customer_id, uint32_t limit,
				       int64_t at)
{
	Crm__TaskList tl = CRM__TASK_LIST__INIT;
	tl.window = (char *)window;
	tl.owner = (char *)(owner ? owner : "");
	tl.store_code = (char *)(store ? store : "");
	tl.customer_id = (char *)(customer_id ? customer_id : "");
	tl.limit = limit;
	tl.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TASK_LIST;
	req.task_list = &tl;
	return it_call(c, &req);
}

static Crm__Envelope *list_tasks(struct crmc *c, const char *window, const char *owner,
				 const char *store, const char *customer_id, int64_t at)
{
	return list_tasks_limit(c, window, owner, store, customer_id, 0, at);
}

static Crm__Envelope *skip_task(struct crmc *c, const char *id, const char *reason)
{
	Crm__TaskSkip ts = CRM__TASK_SKIP__INIT;
	ts.id = (char *)id;
	ts.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TASK_SKIP;
	req.task_skip = &ts;
	return it_call(c, &req);
}

static Crm__Envelope *reassign_task(struct crmc *c, const char *id, const char *to)
{
	Crm__TaskReassign tr = CRM__TASK_REASSIGN__INIT;
	tr.id = (char *)id;
	tr.to_owner = (char *)to;
	tr.reason = (char *)"on leave";
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TASK_REASSIGN;
	req.task_reassign = &tr;
	return it_call(c, &req);
}

static Crm__Envelope *set_level(struct crmc *c, const char *rid, const char *level)
{
	Crm__LevelSet ls = CRM__LEVEL_SET__INIT;
	ls.relation_id = (char *)rid;
	ls.version = relation_version(rid);
	ls.level = (char *)level;
	ls.reason = (char *)"test";
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LEVEL_SET;
	req.level_set = &ls;
	return it_call(c, &req);
}

static long open_tasks(const char *rid, const char *key_like)
{
	const char *params[] = {rid, key_like};
	PGresult *res = PQexecParams(db, "SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid"
					 " AND status = 'open' AND cadence_key LIKE $2",
				     2, NULL, params, NULL, NULL, 0);
	long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return n;
}

/* due_at of the relation's open task of rule `key` minus the time of its
 * latest level change, in ms; -1 when there is no such task. */
static long long due_after_level_change(const char *rid, const char *key)
{
	const char *params[] = {rid, key};
	PGresult *res = PQexecParams(
		db,
		"SELECT crm.ms(t.due_at) - crm.ms((SELECT max(changed_at) FROM crm.level_changes"
		"   WHERE relation_id = t.relation_id))"
		"  FROM crm.tasks t WHERE t.relation_id = $1::uuid AND t.cadence_key = $2"
		"   AND t.status = 'open'",
		2, NULL, params, NULL, NULL, 0);
	long long v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
			      ? atoll(PQgetvalue(res, 0, 0))
			      : -1;
	PQclear(res);
	return v;
}

static bool next_followup_is_earliest_open_task(const char *rid)
{
	return db_long("SELECT count(*) FROM crm.relations r WHERE r.id = $1::uuid"
		       " AND r.next_followup_at IS NOT DISTINCT FROM (SELECT min(due_at)"
		       " FROM crm.tasks t WHERE t.relation_id = r.id AND t.status = 'open')",
		       rid) == 1;
}

/* The latest outbox payload of `id` is `record`, packed. */
static bool outbox_holds(const char *id, const ProtobufCMessage *record)
{
	PGresult *res = PQexecParams(db, "SELECT payload FROM crm.outbox WHERE entity_id = $1::uuid"
					 " ORDER BY seq DESC LIMIT 1",
				     1, NULL, (const char *[]){id}, NULL, NULL, 1);
	bool same = false;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		size_t n = protobuf_c_message_get_packed_size(record);
		uint8_t *want = malloc(n + 1);
		if (want) {
			protobuf_c_message_pack(record, want);
			same = (size_t)PQgetlength(res, 0, 0) == n &&
			       memcmp(PQgetvalue(res, 0, 0), want, n) == 0;
			free(want);
		}
	}
	PQclear(res);
	if (!same)
		fprintf(stderr, "  outbox payload of %s differs from the record\n", id);
	return same;
}

/* The latest outbox payload of task `t` is `t` as sync carries it: without
 * the fields a list derives (customer name, owner's name, level, overdue,
 * outcome, lateness). */
static bool outbox_holds_task(const Crm__Task *t)
{
	Crm__Task bare = *t;
	bare.customer_name = (char *)"";
	bare.owner_name = (char *)"";
	bare.level = (char *)"";
	bare.overdue = false;
	bare.outcome = (char *)"";
	bare.late_by_ms = 0;
	return outbox_holds(t->id, &bare.base);
}

/* The latest outbox change of task `id`, decoded; NULL when none. */
static Crm__Task *outbox_task(const char *id)
{
	PGresult *res = PQexecParams(db, "SELECT payload FROM crm.outbox WHERE entity_id = $1::uuid"
					 " AND entity = 'task' ORDER BY seq DESC LIMIT 1",
				     1, NULL, (const char *[]){id}, NULL, NULL, 1);
	Crm__Task *t = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		t = crm__task__unpack(NULL, (size_t)PQgetlength(res, 0, 0),
				      (const uint8_t *)PQgetvalue(res, 0, 0));
	PQclear(res);
	return t;
}

static const Crm__Task *task_with_key(const Crm__FollowupReply *fr, const char *key)
{
	for (size_t i = 0; i < fr->n_tasks; i++)
		if (!strcmp(fr->tasks[i]->cadence_key, key))
			return fr->tasks[i];
	return NULL;
}

/* ------------------------------------------------------------ tests */

/* A first visit at level N: the relation's last contact, version and
 * next follow-up move; the thank-you (2 h) and first call (24 h) tasks
 * come; the outbox holds the follow-up and relation exactly as stored and
 * each task; a second visit and a retry add nothing. */
static void test_first_visit_follow_up(struct crmc *c)
{
	char cid[37], rid[37];
	CHECK(make_customer(c, "首访客户", cid, rid));
	uint64_t v0 = relation_version(rid);
	int64_t at = now_ms_() - 5 * MINUTE_MS;
	char fid[37];
	uuid_v7_new(fid);
	long outbox_before = db_long("SELECT count(*) FROM crm.outbox", NULL);
	struct fu_args a = {.relation_id = rid, .method = "visit", .type = "first_contact",
			    .content = "came to the showroom, looked at the SUV", .at = at,
			    .id = fid};
	Crm__Envelope *e = add_followup(c, &a);
	if (ok_followup(e)) {
		const Crm__FollowupReply *fr = e->followup_reply;
		CHECK(!fr->existed);
		CHECK_STR(fr->followup->id, fid);
		CHECK(fr->followup->at == at);
		CHECK_STR(fr->followup->method, "visit");
		CHECK_STR(fr->followup->customer_id, cid);
		CHECK(fr->relation->last_contact_at == at);
		CHECK(fr->relation->version == v0 + 1);
		CHECK(fr->n_tasks == 2);
		const Crm__Task *thanks = task_with_key(fr, "N/first_visit/1");
		const Crm__Task *call = task_with_key(fr, "N/first_visit/2");
		CHECK(thanks && thanks->due_at == at + 2 * HOUR_MS && !strcmp(thanks->method, "wechat"));
		CHECK(call && call->due_at == at + 24 * HOUR_MS && !strcmp(call->method, "phone"));
		CHECK(fr->relation->next_followup_at == at + 2 * HOUR_MS);
		CHECK(next_followup_is_earliest_open_task(rid));
		/* The outbox: follow-up, relation, two tasks; packed as stored. */
		CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before + 4);
		CHECK(outbox_holds(fid, &fr->followup->base));
		CHECK(outbox_holds(rid, &fr->relation->base));
		for (size_t i = 0; i < fr->n_tasks; i++) {
			CHECK(outbox_holds_task(fr->tasks[i]));
			Crm__Task *ob = outbox_task(fr->tasks[i]->id);
			CHECK(ob && !strcmp(ob->id, fr->tasks[i]->id) &&
			      ob->due_at == fr->tasks[i]->due_at && !strcmp(ob->status, "open") &&
			      !strcmp(ob->relation_id, rid) &&
			      !strcmp(ob->cadence_key, fr->tasks[i]->cadence_key) && ob->version == 1 &&
			      !strcmp(ob->owner, fr->tasks[i]->owner));
			if (ob)
				crm__task__free_unpacked(ob, NULL);
		}
		CHECK(db_ll("SELECT crm.ms(last_contact_at) FROM crm.relations WHERE id = $1::uuid",
			    rid) == at);
	}
	it_free(e);
	/* The same id again: nothing new. */
	long outbox_mid = db_long("SELECT count(*) FROM crm.outbox", NULL);
	e = add_followup(c, &a);
	CHECK(ok_followup(e) && e->followup_reply->existed && e->followup_reply->n_tasks == 0);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_mid);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) == 1);
	/* A second visit is no first visit: no more first-visit tasks. */
	struct fu_args b = {.relation_id = rid, .method = "visit", .type = "test_drive",
			    .content = "test drive"};
	e = add_followup(c, &b);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks == 0);
	CHECK(ok_followup(e) && e->followup_reply->relation->version == v0 + 2);
	it_free(e);
	CHECK(open_tasks(rid, "N/first_visit/%") == 2);
	/* An earlier contact recorded late does not move last contact back. */
	struct fu_args old = {.relation_id = rid, .method = "phone", .type = "care",
			      .content = "late note", .at = at - DAY_MS};
	e = add_followup(c, &old);
	CHECK(ok_followup(e) && e->followup_reply->relation->last_contact_at > at);
	it_free(e);
}

/* Levels H, A, B, C by level.set: the task of the level, due after the
 * policy's interval from the change; an open task that comes earlier
 * covers the next level's; the same rule never twice. */
static void test_level_changes_create_tasks(struct crmc *c)
{
	static const struct {
		const char *level;
		long long days;
	} cases[] = {{"H", 2}, {"A", 4}, {"B", 7}, {"C", 14}};
	for (size_t i = 0; i < 4; i++) {
		char cid[37], rid[37], key[16];
		CHECK(make_customer(c, "级别客户", cid, rid));
		Crm__Envelope *e = set_level(c, rid, cases[i].level);
		CHECK(code_of(e) == CRM__CODE__OK);
		it_free(e);
		snprintf(key, sizeof key, "%s/level/1", cases[i].level);
		CHECK(due_after_level_change(rid, key) == cases[i].days * DAY_MS);
		CHECK(open_tasks(rid, "%") == 1);
		CHECK(next_followup_is_earliest_open_task(rid));
	}
	/* H (2 days) then A (4 days): the H task covers A's; back to H: the H
	 * task is still open, so nothing new. */
	char cid[37], rid[37];
	CHECK(make_customer(c, "反复客户", cid, rid));
	it_free(set_level(c, rid, "H"));
	it_free(set_level(c, rid, "A"));
	CHECK(open_tasks(rid, "%") == 1 && open_tasks(rid, "H/level/1") == 1);
	it_free(set_level(c, rid, "H"));
	CHECK(open_tasks(rid, "%") == 1);
	/* C (14 days) then H (2 days): the C task does not cover H's. */
	char cid2[37], rid2[37];
	CHECK(make_customer(c, "升级客户", cid2, rid2));
	it_free(set_level(c, rid2, "C"));
	it_free(set_level(c, rid2, "H"));
	CHECK(open_tasks(rid2, "C/level/1") == 1 && open_tasks(rid2, "H/level/1") == 1);
	CHECK(next_followup_is_earliest_open_task(rid2));

	/* A follow-up at H while the H task is open: covered, nothing new.
	 * Completing the H task with a follow-up leaves none open: the
	 * periodic H task (every 2 days from that contact) comes. */
	Crm__Envelope *e = list_tasks(c, "open", NULL, NULL, cid, 0);
	const char *task_id = NULL;
	char tid[37] = "";
	if (code_of(e) == CRM__CODE__OK && e->task_page->n_tasks == 1) {
		snprintf(tid, sizeof tid, "%s", e->task_page->tasks[0]->id);
		task_id = tid;
	}
	CHECK(task_id != NULL);
	it_free(e);
	struct fu_args a = {.relation_id = rid, .content = "quick call"};
	e = add_followup(c, &a);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks == 0);
	it_free(e);
	int64_t at = now_ms_();
	struct fu_args d = {.task_id = task_id, .content = "discussed the offer", .at = at};
	e = add_followup(c, &d);
	if (ok_followup(e)) {
		const Crm__FollowupReply *fr = e->followup_reply;
		CHECK(fr->n_tasks == 2);
		CHECK(fr->n_tasks >= 1 && !strcmp(fr->tasks[0]->id, tid) &&
		      !strcmp(fr->tasks[0]->status, "done") &&
		      !strcmp(fr->tasks[0]->followup_id, fr->followup->id) &&
		      !strcmp(fr->tasks[0]->outcome, "on_time"));
		CHECK_STR(fr->followup->task_id, tid);
		CHECK_STR(fr->followup->relation_id, rid);
		/* Both tasks go to the outbox as answered: the done one with its
		 * follow-up, closing time and closer. */
		for (size_t i = 0; i < fr->n_tasks; i++)
			CHECK(outbox_holds_task(fr->tasks[i]));
		const Crm__Task *next = task_with_key(fr, "H/followup/1");
		CHECK(next && next->due_at == at + 2 * DAY_MS);
		CHECK(fr->relation->next_followup_at == at + 2 * DAY_MS);
	}
	it_free(e);
	/* Done is final. */
	struct fu_args again = {.task_id = task_id, .content = "again"};
	e = add_followup(c, &again);
	CHECK(code_of(e) == CRM__CODE__CONFLICT && !strcmp(field_of(e), "task_id"));
	it_free(e);
}

/* Orders set O, D and T (not level.set): a level-change row written in
 * the relation's store's scope brings the policy's tasks; one applied
 * without that scope (sync) brings none. */
static bool order_level(const char *rid, const char *from, const char *to, bool scoped)
{
	const char *params[] = {rid, from, to, scoped ? "t" : "f"};
	PGresult *res = PQexec(db, "BEGIN");
	PQclear(res);
	res = PQexecParams(db,
			   "SELECT set_config('crm.store_id', CASE WHEN $2::boolean THEN"
			   "  (SELECT store_id::text FROM crm.relations WHERE id = $1::uuid) ELSE ''"
			   "  END, true), set_config('crm.role', 'sales_manager', true)",
			   2, NULL, (const char *[]){rid, params[3]}, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	res = PQexecParams(db, "UPDATE crm.relations SET level = $2 WHERE id = $1::uuid", 2, NULL,
			   (const char *[]){rid, to}, NULL, NULL, 0);
	ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	res = PQexecParams(db,
			   "INSERT INTO crm.level_changes (relation_id, from_level, to_level, reason)"
			   " VALUES ($1::uuid, $2, $3, 'order')",
			   3, NULL, params, NULL, NULL, 0);
	ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "order level: %s\n", PQresultErrorMessage(res));
	PQclear(res);
	res = PQexec(db, ok ? "COMMIT" : "ROLLBACK");
	PQclear(res);
	return ok;
}

static void test_order_levels_create_tasks(struct crmc *c)
{
	char cid[37], rid[37];
	CHECK(make_customer(c, "订车客户", cid, rid));
	CHECK(order_level(rid, "N", "O", true));
	CHECK(due_after_level_change(rid, "O/level/1") == 3 * DAY_MS);
	/* Delivery: the store's sales manager calls within 24 h, the owner
	 * visits within the month; the open O task stays (no rule covers it). */
	CHECK(order_level(rid, "O", "D", true));
	CHECK(due_after_level_change(rid, "D/level/1") == DAY_MS);
	CHECK(due_after_level_change(rid, "D/level/2") == 30 * DAY_MS);
	CHECK(db_long("SELECT count(*) FROM crm.tasks t JOIN crm.users u ON u.id = t.owner_id"
		      " WHERE t.relation_id = $1::uuid AND t.cadence_key = 'D/level/1'"
		      " AND u.role = 'sales_manager'", rid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.tasks t JOIN crm.relations r ON r.id = t.relation_id"
		      " WHERE t.relation_id = $1::uuid AND t.cadence_key = 'D/level/2'"
		      " AND t.owner_id = r.owner_id", rid) == 1);
	CHECK(next_followup_is_earliest_open_task(rid));
	/* The owner sees the manager's task but may not skip it. */
	char mtid[37] = "";
	const char *v = it_db_value(db, "SELECT id FROM crm.tasks WHERE relation_id = $1::uuid"
				    " AND cadence_key = 'D/level/1'", rid);
	snprintf(mtid, sizeof mtid, "%s", v ? v : "");
	Crm__Envelope *e = skip_task(c, mtid, "not needed");
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	/* Delivered again (a replayed change): no duplicates. */
	CHECK(order_level(rid, "O", "D", true));
	CHECK(open_tasks(rid, "D/%") == 2);

	char cid2[37], rid2[37];
	CHECK(make_customer(c, "退订客户", cid2, rid2));
	CHECK(order_level(rid2, "N", "O", true));
	CHECK(order_level(rid2, "O", "T", true));
	CHECK(due_after_level_change(rid2, "T/level/1") == 7 * DAY_MS);

	char cid3[37], rid3[37];
	CHECK(make_customer(c, "同步客户", cid3, rid3));
	CHECK(order_level(rid3, "N", "O", false));
	CHECK(open_tasks(rid3, "%") == 0);
}

/* Done on time, done late (by exactly how much), skipped (missed), and
 * open past due (missed, overdue). */
static void test_compliance(struct crmc *c)
{
	char cid[37], rid[37];
	CHECK(make_customer(c, "合规客户", cid, rid));
	int64_t at = now_ms_() - 30 * MINUTE_MS;
	/* Due 30 minutes ago (set by a contact recorded late). */
	struct fu_args a = {.relation_id = rid, .at = at, .next_due = at,
			    .next_purpose = "send the quote"};
	Crm__Envelope *e = add_followup(c, &a);
	char late_id[37] = "";
	if (ok_followup(e) && e->followup_reply->n_tasks == 1) {
		snprintf(late_id, sizeof late_id, "%s", e->followup_reply->tasks[0]->id);
		CHECK_STR(e->followup_reply->tasks[0]->purpose, "send the quote");
		CHECK(e->followup_reply->tasks[0]->overdue);
		CHECK_STR(e->followup_reply->tasks[0]->outcome, "missed");
	}
	CHECK(late_id[0]);
	it_free(e);
	e = list_tasks(c, "overdue", NULL, NULL, cid, 0);
	CHECK(code_of(e) == CRM__CODE__OK && e->task_page->n_tasks == 1 &&
	      e->task_page->tasks[0]->overdue && !strcmp(e->task_page->tasks[0]->outcome, "missed"));
	it_free(e);
	/* Done 20 minutes after its due time. */
	struct fu_args d = {.task_id = late_id, .at = at + 20 * MINUTE_MS, .content = "sent it",
			    .next_due = now_ms_() + DAY_MS, .next_purpose = "询问报价意见"};
	e = add_followup(c, &d);
	char next_id[37] = "";
	if (ok_followup(e) && e->followup_reply->n_tasks == 2) {
		const Crm__Task *done = e->followup_reply->tasks[0];
		CHECK_STR(done->status, "done");
		CHECK_STR(done->outcome, "late");
		CHECK(done->late_by_ms == 20 * MINUTE_MS);
		snprintf(next_id, sizeof next_id, "%s", e->followup_reply->tasks[1]->id);
		CHECK_STR(e->followup_reply->tasks[1]->set_by_followup, e->followup_reply->followup->id);
	} else {
		CHECK(false);
	}
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.task_compliance WHERE task_id = $1::uuid"
		      " AND outcome = 'late' AND late_by_ms = 1200000", late_id) == 1);
	/* Skipping needs a reason; a skipped task is missed and final. */
	e = skip_task(c, next_id, "");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "reason"));
	it_free(e);
	e = skip_task(c, next_id, "customer abroad for a month");
	CHECK(code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_TASK_REPLY &&
	      !strcmp(e->task_reply->task->status, "skipped") &&
	      !strcmp(e->task_reply->task->reason, "customer abroad for a month") &&
	      !strcmp(e->task_reply->task->outcome, "missed"));
	it_free(e);
	Crm__Task *ob = outbox_task(next_id);
	CHECK(ob && !strcmp(ob->status, "skipped") && ob->version == 2 && ob->closed_at > 0 &&
	      !strcmp(ob->purpose, "询问报价意见") &&
	      !strcmp(ob->reason, "customer abroad for a month") &&
	      !strcmp(ob->closed_by, "fu.consultant1"));
	if (ob)
		crm__task__free_unpacked(ob, NULL);
	e = skip_task(c, next_id, "again");
	CHECK(code_of(e) == CRM__CODE__CONFLICT);
	it_free(e);
	/* The person's closed tasks (`crm tasks closed`, sql/0034's index):
	 * both, the later due first, none open. */
	e = list_tasks(c, "closed", NULL, NULL, NULL, 0);
	int at_next = -1, at_late = -1, open_listed = 0;
	if (code_of(e) == CRM__CODE__OK) {
		for (size_t i = 0; i < e->task_page->n_tasks; i++) {
			const Crm__Task *t = e->task_page->tasks[i];
			open_listed += !strcmp(t->status, "open");
			if (!strcmp(t->id, next_id))
				at_next = (int)i;
			if (!strcmp(t->id, late_id))
				at_late = (int)i;
		}
	}
	CHECK(at_next >= 0 && at_late > at_next && open_listed == 0);
	it_free(e);
	/* No open task left: no next follow-up. */
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE id = $1::uuid"
		      " AND next_followup_at IS NULL", rid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.task_compliance WHERE task_id = $1::uuid"
		      " AND outcome = 'missed'", next_id) == 1);
}

static int64_t shanghai_ms(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return ((int64_t)timegm(&tm) - 8 * 3600) * 1000;
}

static bool page_is(const Crm__Envelope *e, const char *const *purposes, size_t n)
{
	if (code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_TASK_PAGE) {
		fprintf(stderr, "  task list refused: %s\n", e ? crmc_status_message(e) : "-");
		return false;
	}
	bool ok = e->task_page->n_tasks == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = !strcmp(e->task_page->tasks[i]->purpose, purposes[i]);
	if (!ok) {
		fprintf(stderr, "  got %zu tasks:", e->task_page->n_tasks);
		for (size_t i = 0; i < e->task_page->n_tasks; i++)
			fprintf(stderr, " %s", e->task_page->tasks[i]->purpose);
		fprintf(stderr, "\n");
	}
	return ok;
}

/* Lists at a fixed clock, Tuesday 2030-01-15 12:00 in Shanghai (the
 * group's time zone): overdue, today (with the overdue), this week (to
 * Sunday night), all open. */
static void test_lists_at_a_fixed_clock(struct crmc *c)
{
	char cid[37], rid[37];
	CHECK(make_customer(c, "清单客户", cid, rid));
	static const struct {
		int d, h, mi;
		const char *purpose;
	} due[] = {{15, 10, 0, "a-morning"},  {15, 20, 0, "b-evening"},  {16, 9, 0, "c-wednesday"},
		   {20, 22, 0, "d-sunday"},   {21, 9, 0, "e-next-monday"}};
	for (size_t i = 0; i < 5; i++) {
		struct fu_args a = {.relation_id = rid, .content = "planning",
				    .next_due = shanghai_ms(2030, 1, due[i].d, due[i].h, due[i].mi),
				    .next_purpose = due[i].purpose};
		Crm__Envelope *e = add_followup(c, &a);
		CHECK(ok_followup(e));
		it_free(e);
	}
	int64_t at = shanghai_ms(2030, 1, 15, 12, 0);
	Crm__Envelope *e = list_tasks(c, "overdue", NULL, NULL, NULL, at);
	CHECK(page_is(e, (const char *const[]){"a-morning"}, 1));
	it_free(e);
	e = list_tasks(c, "today", NULL, NULL, NULL, at);
	CHECK(page_is(e, (const char *const[]){"a-morning", "b-evening"}, 2));
	CHECK(code_of(e) == CRM__CODE__OK && e->task_page->n_tasks == 2 &&
	      e->task_page->tasks[0]->overdue && !e->task_page->tasks[1]->overdue &&
	      !strcmp(e->task_page->tasks[0]->customer_name, "清单客户"));
	/* one person's list reads its owner once (sql/0038): each row names
	 * the task's owner, the owner's display name and the task's store */
	for (size_t i = 0; code_of(e) == CRM__CODE__OK && i < e->task_page->n_tasks; i++) {
		const Crm__Task *t = e->task_page->tasks[i];
		char row[512];
		snprintf(row, sizeof row, "{\"%s\",\"%s\",\"%s\",\"%s\",\"\"}", t->id, t->owner,
			 t->owner_name, t->store_code);
		CHECK(db_long("SELECT count(*) FROM crm.tasks t JOIN crm.users u ON u.id = t.owner_id"
			      " JOIN crm.stores s ON s.id = t.store_id"
			      " WHERE ARRAY[t.id::text, u.username, u.display_name, s.code,"
			      "             coalesce(t.closed_by::text, '')] = $1::text[]",
			      row) == 1);
		CHECK(t->owner[0] && t->owner_name[0] && !t->closed_by[0]);
	}
	it_free(e);
	/* A task shows its customer's name as it is now, whoever renamed it,
	 * also when only its letter case changed (sql/0026). */
	static const char *const names[] = {"Amy 清单", "AMY 清单"};
	for (size_t i = 0; i < 2; i++) {
		CHECK(rename_customer(c, cid, names[i]));
		e = list_tasks(c, "today", NULL, NULL, NULL, at);
		CHECK(code_of(e) == CRM__CODE__OK && e->task_page->n_tasks == 2 &&
		      !strcmp(e->task_page->tasks[0]->customer_name, names[i]) &&
		      !strcmp(e->task_page->tasks[1]->customer_name, names[i]));
		it_free(e);
	}
	e = list_tasks(c, "week", NULL, NULL, NULL, at);
	CHECK(page_is(e, (const char *const[]){"a-morning", "b-evening", "c-wednesday", "d-sunday"},
		      4));
	it_free(e);
	e = list_tasks(c, "open", NULL, NULL, NULL, at);
	CHECK(page_is(e, (const char *const[]){"a-morning", "b-evening", "c-wednesday", "d-sunday",
					       "e-next-monday"},
		      5));
	it_free(e);
	/* A minute before the first one falls due, nothing is overdue. */
	e = list_tasks(c, "overdue", NULL, NULL, NULL, shanghai_ms(2030, 1, 15, 9, 59));
	CHECK(page_is(e, NULL, 0));
	it_free(e);
	e = list_tasks(c, "sometime", NULL, NULL, NULL, at);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "window"));
	it_free(e);
}

/* Where the tasks of purpose "tie" start in the page, or -1 unless all n
 * are there, one after another, in increasing id. */
static int ties_in_id_order(const Crm__Envelope *e, size_t n)
{
	if (code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_TASK_PAGE)
		return -1;
	int first = -1;
	size_t seen = 0;
	for (size_t i = 0; i < e->task_page->n_tasks; i++) {
		const Crm__Task *t = e->task_page->tasks[i];
		if (strcmp(t->purpose, "tie"))
			continue;
		if (first < 0)
			first = (int)i;
		if (i != (size_t)first + seen ||
		    (seen > 0 && strcmp(e->task_page->tasks[i - 1]->id, t->id) >= 0))
			return -1;
		seen++;
	}
	return seen == n ? first : -1;
}

/* Tasks due at the same moment come in id order, in a person's list and
 * in the store's, and a limit keeps the first of them in that order
 * (crm.task_list orders by due time, then id; sql/0049 indexes it so). */
static void test_tasks_due_together_in_id_order(struct crmc *c)
{
	enum { TIES = 4 };
	int64_t due = shanghai_ms(2031, 3, 3, 10, 0);
	for (int i = 0; i < TIES; i++) {
		char cid[37], rid[37];
		CHECK(make_customer(c, "同时客户", cid, rid));
		struct fu_args a = {.relation_id = rid, .content = "same time",
				    .next_due = due, .next_purpose = "tie"};
		Crm__Envelope *e = add_followup(c, &a);
		CHECK(ok_followup(e));
		it_free(e);
	}
	int64_t at = shanghai_ms(2031, 3, 1, 9, 0);
	Crm__Envelope *e = list_tasks_limit(c, "open", NULL, NULL, NULL, 1000, at);
	int first = ties_in_id_order(e, TIES);
	CHECK(first >= 0);
	char *smallest[2] = {NULL, NULL};
	for (int k = 0; first >= 0 && k < 2; k++)
		smallest[k] = strdup(e->task_page->tasks[first + k]->id);
	it_free(e);
	if (first >= 0) {
		/* Cut just after the second of them: the two smallest ids. */
		e = list_tasks_limit(c, "open", NULL, NULL, NULL, (uint32_t)first + 2, at);
		CHECK(code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_TASK_PAGE &&
		      e->task_page->n_tasks == (size_t)first + 2 &&
		      !strcmp(e->task_page->tasks[first]->id, smallest[0]) &&
		      !strcmp(e->task_page->tasks[first + 1]->id, smallest[1]));
		it_free(e);
	}
	free(smallest[0]);
	free(smallest[1]);
	/* The store's list, as its sales manager sees it. */
	struct crmc *mgr = login_at("sales_manager", "BJ01");
	CHECK(mgr != NULL);
	if (mgr) {
		e = list_tasks_limit(mgr, "open", NULL, "BJ01", NULL, 1000, at);
		CHECK(ties_in_id_order(e, TIES) >= 0 && e->task_page->n_tasks < 1000);
		it_free(e);
		crmc_close(mgr);
	}
}

/* A follow-up's records reach the outbox in one append (sql/0028): the
 * follow-up, its relation and the task it sets, in that order, with
 * consecutive sequence numbers and increasing clocks; each has its own
 * 'change' audit entry with its sequence number, customer, store and
 * versions. */
static void test_outbox_of_one_followup(struct crmc *c)
{
	char cid[37], rid[37], fid[37];
	CHECK(make_customer(c, "出库客户", cid, rid));
	long long before = db_ll("SELECT coalesce(max(seq), 0) FROM crm.outbox", NULL);
	uuid_v7_new(fid);
	struct fu_args a = {.relation_id = rid, .id = fid, .content = "outbox",
			    .next_due = now_ms_() + 2 * DAY_MS, .next_purpose = "outbox-next"};
	Crm__Envelope *e = add_followup(c, &a);
	CHECK(ok_followup(e));
	it_free(e);
	char sql[2048];
	/* This relation's records written after `before`. */
	const char *mine = "crm.outbox o WHERE o.seq > %lld AND (o.entity_id = $1::uuid"
			   " OR o.entity_id IN (SELECT f.id FROM crm.followups f WHERE f.relation_id = $1::uuid)"
			   " OR o.entity_id IN (SELECT t.id FROM crm.tasks t WHERE t.relation_id = $1::uuid))";
	char from[512];
	snprintf(from, sizeof from, mine, before);
	snprintf(sql, sizeof sql, "SELECT string_agg(o.entity, ',' ORDER BY o.seq) FROM %s", from);
	const char *v = it_db_value(db, sql, rid);
	CHECK(v && !strcmp(v, "followup,relation,task"));
	if (!v || strcmp(v, "followup,relation,task"))
		fprintf(stderr, "  outbox: %s\n", v ? v : "(none)");
	snprintf(sql, sizeof sql,
		 "SELECT (max(seq) - min(seq) + 1 = count(*) AND bool_and(hlc > prev))::text FROM"
		 " (SELECT o.seq, o.hlc, lag(o.hlc) OVER (ORDER BY o.seq) AS prev FROM %s) x", from);
	v = it_db_value(db, sql, rid);
	CHECK(v && !strcmp(v, "true"));
	/* One entry each, naming what it should; versions where there are. */
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM %s AND 1 = (SELECT count(*) FROM crm.audit_log a"
		 " WHERE a.action = 'change' AND a.entity = o.entity AND a.entity_id = o.entity_id::text"
		 "   AND (a.details->>'outbox_seq')::bigint = o.seq"
		 "   AND a.customer_id = (SELECT r.customer_id FROM crm.relations r WHERE r.id = $1::uuid)"
		 "   AND a.store_id = (SELECT r.store_id FROM crm.relations r WHERE r.id = $1::uuid)"
		 "   AND CASE o.entity"
		 "       WHEN 'relation' THEN a.after_version = (SELECT r.version FROM crm.relations r"
		 "                                                WHERE r.id = $1::uuid)"
		 "                            AND a.before_version = a.after_version - 1"
		 "       WHEN 'task' THEN a.after_version = 1 AND a.before_version = 0"
		 "       ELSE a.after_version IS NULL END)", from);
	CHECK(db_long(sql, rid) == 3);
}

/* The Relation and Followup crm.followup_add encodes itself (sql/0030)
 * are the bytes crmd's protobuf-c gives for the same rows: a relation with
 * intents (one with every field, one with the model only), packed by crmd
 * for a level change, against crm.relation_payload of the same row; and
 * the follow-up's record against crmd's own packing of it. */
static void test_sql_payloads_match_crmds(struct crmc *c)
{
	char cid[37], rid[37], phone[16];
	it_phone(phone);
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)"编码客户";
	cu.phone = phone;
	Crm__Intent i1 = CRM__INTENT__INIT, i2 = CRM__INTENT__INIT;
	i1.model = (char *)"途观L";
	i1.body_type = (char *)"suv";
	i1.configuration = (char *)"330TSI 豪华版, 白色";
	i1.budget_min = 200000;
	i1.budget_max = 260000;
	i1.needs = (char *)"七座, 周末自驾";
	i2.model = (char *)"帕萨特";
	Crm__Intent *intents[] = {&i1, &i2};
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = (char *)"walk_in";
	rel.first_contact_place = (char *)"展厅";
	rel.intents = intents;
	rel.n_intents = 2;
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	e = set_level(c, rid, "A");
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	const char *same = "SELECT (o.payload = crm.relation_payload(o.entity_id))::text"
			   "  FROM crm.outbox o WHERE o.entity = 'relation' AND o.entity_id = $1::uuid"
			   " ORDER BY o.seq DESC LIMIT 1";
	const char *v = it_db_value(db, same, rid);
	CHECK(v && !strcmp(v, "true"));
	/* A follow-up recorded by crmd in one statement: its relation's record
	 * is the SQL encoding, and the relation's last contact moved. */
	char fid[37];
	uuid_v7_new(fid);
	struct fu_args a = {.relation_id = rid, .id = fid, .content = "编码 follow-up",
			    .next_due = now_ms_() + DAY_MS, .next_purpose = "报价"};
	e = add_followup(c, &a);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks == 1);
	int64_t last = ok_followup(e) ? e->followup_reply->relation->last_contact_at : -1;
	/* The next task it set, as crmd packs it (set_by_followup included). */
	if (ok_followup(e) && e->followup_reply->n_tasks == 1) {
		CHECK_STR(e->followup_reply->tasks[0]->set_by_followup, fid);
		CHECK(outbox_holds_task(e->followup_reply->tasks[0]));
	}
	it_free(e);
	v = it_db_value(db, same, rid);
	CHECK(v && !strcmp(v, "true"));
	CHECK(db_ll("SELECT crm.ms(last_contact_at) FROM crm.relations WHERE id = $1::uuid", rid) ==
	      last);
	/* The Followup crmd packs from the reply is the one in the outbox. */
	Crm__Envelope *list = NULL;
	Crm__FollowupList fl = CRM__FOLLOWUP_LIST__INIT;
	fl.relation_id = rid;
	fl.limit = 1;
	Crm__Envelope lreq = CRM__ENVELOPE__INIT;
	lreq.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_LIST;
	lreq.followup_list = &fl;
	list = it_call(c, &lreq);
	CHECK(code_of(list) == CRM__CODE__OK && list->followup_page &&
	      list->followup_page->n_followups == 1);
	if (code_of(list) == CRM__CODE__OK && list->followup_page &&
	    list->followup_page->n_followups == 1) {
		Crm__Followup *f = list->followup_page->followups[0];
		size_t len = protobuf_c_message_get_packed_size(&f->base);
		uint8_t *buf = malloc(len ? len : 1);
		char *hex = malloc(2 * len + 1);
		if (buf && hex) {
			protobuf_c_message_pack(&f->base, buf);
			for (size_t i = 0; i < len; i++)
				snprintf(hex + 2 * i, 3, "%02x", buf[i]);
			hex[2 * len] = 0;
			const char *params[] = {fid, hex};
			PGresult *res = PQexecParams(
				db,
				"SELECT (o.payload = decode($2, 'hex'))::text FROM crm.outbox o"
				" WHERE o.entity = 'followup' AND o.entity_id = $1::uuid",
				2, NULL, params, NULL, NULL, 0);
			CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			      !strcmp(PQgetvalue(res, 0, 0), "true"));
			PQclear(res);
		}
		free(buf);
		free(hex);
	}
	it_free(list);
}

/* Who may do what with follow-ups and tasks. */
static void test_permissions(struct crmc *c1, struct crmc *c2)
{
	char cid[37], rid[37];
	CHECK(make_customer(c1, "权限客户", cid, rid));
	struct fu_args a = {.relation_id = rid, .next_due = now_ms_() + DAY_MS,
			    .next_purpose = "call back"};
	Crm__Envelope *e = add_followup(c1, &a);
	char tid[37] = "";
	if (ok_followup(e) && e->followup_reply->n_tasks == 1)
		snprintf(tid, sizeof tid, "%s", e->followup_reply->tasks[0]->id);
	CHECK(tid[0]);
	it_free(e);

	/* Another consultant of the store does not reach someone else's
	 * customer (row-level security hides it: not found). */
	struct fu_args other = {.relation_id = rid};
	e = add_followup(c2, &other);
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	e = skip_task(c2, tid, "not mine");
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	struct fu_args done = {.task_id = tid};
	e = add_followup(c2, &done);
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) == 1);
	e = reassign_task(c1, tid, "fu.consultant2");
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = list_tasks(c1, "open", "fu.consultant2", NULL, NULL, 0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = list_tasks(c1, "open", NULL, "BJ01", NULL, 0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);

	/* The store's sales manager reassigns it; the new owner sees it. */
	struct crmc *mgr = login_at("sales_manager", "BJ01");
	e = reassign_task(mgr, tid, "gz01.consultant");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "to_owner"));
	it_free(e);
	/* A manager records follow-ups on any relation of the store. */
	struct fu_args by_mgr = {.relation_id = rid, .content = "manager's courtesy call"};
	e = add_followup(mgr, &by_mgr);
	CHECK(ok_followup(e) && !strcmp(e->followup_reply->followup->by, "bj01.sales_manager"));
	it_free(e);
	/* A consultant who does not own the customer could not see the task. */
	e = reassign_task(mgr, tid, "fu.consultant2");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "to_owner"));
	it_free(e);
	e = reassign_task(mgr, tid, "bj01.call_center");
	CHECK(code_of(e) == CRM__CODE__OK && !strcmp(e->task_reply->task->owner, "bj01.call_center") &&
	      e->task_reply->task->version == 2);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.task_reassignments WHERE task_id = $1::uuid"
		      " AND reason = 'on leave'", tid) == 1);
	Crm__Task *ob = outbox_task(tid);
	CHECK(ob && !strcmp(ob->owner, "bj01.call_center") && ob->version == 2);
	if (ob)
		crm__task__free_unpacked(ob, NULL);
	struct crmc *agent = login_at("call_center", "BJ01");
	e = list_tasks(agent, "open", NULL, NULL, NULL, 0);
	bool listed = false;
	for (size_t i = 0; code_of(e) == CRM__CODE__OK && i < e->task_page->n_tasks; i++)
		listed = listed || !strcmp(e->task_page->tasks[i]->id, tid);
	CHECK(listed);
	it_free(e);
	/* The former owner no longer acts on it; the new one does. */
	e = skip_task(c1, tid, "mine no more");
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = list_tasks(mgr, "open", "bj01.call_center", NULL, NULL, 0);
	CHECK(code_of(e) == CRM__CODE__OK && e->task_page->n_tasks >= 1);
	it_free(e);
	struct fu_args by_agent = {.task_id = tid, .content = "called for the owner"};
	e = add_followup(agent, &by_agent);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks >= 1 &&
	      !strcmp(e->followup_reply->tasks[0]->status, "done") &&
	      !strcmp(e->followup_reply->followup->by, "bj01.call_center"));
	it_free(e);
	crmc_close(agent);
	e = list_tasks(mgr, "open", NULL, "BJ01", NULL, 0);
	CHECK(code_of(e) == CRM__CODE__OK && e->task_page->n_tasks >= 1);
	it_free(e);
	e = list_tasks(mgr, "open", NULL, "SH01", NULL, 0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	crmc_close(mgr);

	/* Another store's manager finds no such task; a group analyst records
	 * nothing but reads; a consultant of another store reads nothing. */
	struct crmc *sh = login_at("sales_manager", "SH01");
	e = reassign_task(sh, tid, "sh01.consultant");
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	crmc_close(sh);
	struct crmc *analyst = it_login("group_analyst");
	e = add_followup(analyst, &other);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	Crm__FollowupList fl = CRM__FOLLOWUP_LIST__INIT;
	fl.customer_id = cid;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_LIST;
	req.followup_list = &fl;
	e = it_call(analyst, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->followup_page->n_followups == 3 &&
	      !strcmp(e->followup_page->followups[0]->relation_id, rid));
	it_free(e);
	crmc_close(analyst);
	struct crmc *gz = login_at("consultant", "GZ01");
	e = it_call(gz, &req);
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	crmc_close(gz);
}

/* On a store-pool relation the next task is the one who set it: a
 * call-center agent's call back, then a consultant's. */
static void test_pool_relation_next_task_is_the_callers(struct crmc *c1)
{
	struct crmc *agent = login_at("call_center", "BJ01");
	char cid[37], rid[37];
	CHECK(make_customer(agent, "热线客户", cid, rid));
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE id = $1::uuid AND owner_id IS NULL",
		      rid) == 1);
	struct fu_args a = {.relation_id = rid, .method = "phone", .type = "first_contact",
			    .content = "called the hotline", .next_due = now_ms_() + HOUR_MS,
			    .next_purpose = "call back with prices"};
	Crm__Envelope *e = add_followup(agent, &a);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks == 1 &&
	      !strcmp(e->followup_reply->tasks[0]->owner, "bj01.call_center"));
	it_free(e);
	crmc_close(agent);
	struct fu_args b = {.relation_id = rid, .content = "invited to the showroom",
			    .type = "invitation", .next_due = now_ms_() + DAY_MS,
			    .next_purpose = "confirm the visit"};
	e = add_followup(c1, &b);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks == 1 &&
	      !strcmp(e->followup_reply->tasks[0]->owner, "fu.consultant1"));
	it_free(e);
}

/* The write refuses a stale plan and writes nothing: the relation's
 * version moved on, or its tasks give another next follow-up than the one
 * crmd packed. (crmd runs plan and write back to back; this calls the SQL
 * function as crmd would, with the stale values.) */
static const char *add_with_plan(const char *session, const char *rid, const char *version,
				 const char *expect_next)
{
	char fid[37];
	uuid_v7_new(fid);
	const char *params[] = {session, fid, rid, version, expect_next};
	PGresult *res = PQexecParams(
		db,
		"SELECT x.outcome FROM crm.followup_add($1::uuid, $2, $3, '', 'phone', 'care',"
		" crm.ms(now()), 'checked the plan', '', NULL, '', '', crm.ms(now()), $4::bigint,"
		" $5::bigint, '\\x'::bytea) x",
		5, NULL, params, NULL, NULL, 0);
	static char state[8];
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	snprintf(state, sizeof state, "%s",
		 PQresultStatus(res) == PGRES_TUPLES_OK ? "ok" : st ? st : "?");
	PQclear(res);
	return state;
}

static void test_stale_plan_is_refused(struct crmc *c)
{
	char cid[37], rid[37], session[37] = "";
	CHECK(make_customer(c, "计划客户", cid, rid));
	const char *v = it_db_value(db, "INSERT INTO crm.sessions (user_id, token_hash, expires_at)"
				    " SELECT u.id, decode(md5(random()::text) || md5(random()::text),"
				    " 'hex'), now() + interval '10 minutes' FROM crm.users u"
				    " WHERE u.username = $1 RETURNING id", "fu.consultant1");
	snprintf(session, sizeof session, "%s", v ? v : "");
	CHECK(session[0]);
	char version[24];
	snprintf(version, sizeof version, "%llu", (unsigned long long)relation_version(rid));
	long before = db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid);
	CHECK_STR(add_with_plan(session, rid, "999", "0"), "DC409");
	CHECK_STR(add_with_plan(session, rid, version, "12345"), "DC409");
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) ==
	      before);
	CHECK(relation_version(rid) == (uint64_t)atoll(version));
	/* With the plan's values the same call is accepted: every follow-up
	 * through crmd above went this way. */
}

/* A handover moves the former owner's open tasks with the relation; a
 * manager's task stays the manager's. */
static void test_handover_moves_open_tasks(struct crmc *c1, struct crmc *c2)
{
	char cid[37], rid[37];
	CHECK(make_customer(c1, "交接客户", cid, rid));
	struct fu_args a = {.relation_id = rid, .next_due = now_ms_() + DAY_MS,
			    .next_purpose = "call after the handover"};
	Crm__Envelope *e = add_followup(c1, &a);
	char tid[37] = "";
	if (ok_followup(e) && e->followup_reply->n_tasks == 1)
		snprintf(tid, sizeof tid, "%s", e->followup_reply->tasks[0]->id);
	it_free(e);
	struct crmc *mgr = login_at("sales_manager", "BJ01");
	char *ids[] = {rid};
	Crm__HandoverRequest h = CRM__HANDOVER_REQUEST__INIT;
	h.relation_ids = ids;
	h.n_relation_ids = 1;
	h.to_owner = (char *)"fu.consultant2";
	h.reason = (char *)"consultant moved to fleet sales";
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_HANDOVER;
	req.handover = &h;
	e = it_call(mgr, &req);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	crmc_close(mgr);
	CHECK_STR(it_db_value(db, "SELECT u.username FROM crm.tasks t JOIN crm.users u"
			      " ON u.id = t.owner_id WHERE t.id = $1::uuid", tid),
		  "fu.consultant2");
	Crm__Task *ob = outbox_task(tid);
	CHECK(ob && !strcmp(ob->owner, "fu.consultant2") && ob->version == 2);
	if (ob)
		crm__task__free_unpacked(ob, NULL);
	/* The new owner completes it; the former owner no longer reaches it. */
	e = skip_task(c1, tid, "not mine any more");
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	struct fu_args d = {.task_id = tid, .content = "called after the handover"};
	e = add_followup(c2, &d);
	CHECK(ok_followup(e) && e->followup_reply->n_tasks >= 1 &&
	      !strcmp(e->followup_reply->tasks[0]->status, "done"));
	it_free(e);
}

/* The policy: readable by everyone, changed only by a group admin, and a
 * change applies to the next level change. */
static void test_cadence_policy(struct crmc *c)
{
	Crm__CadencePolicyGet g = CRM__CADENCE_POLICY_GET__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CADENCE_GET;
	req.cadence_get = &g;
	Crm__Envelope *e = it_call(c, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->cadence_policy->n_rules == 16 &&
	      !strcmp(e->cadence_policy->rules[0]->level, "N"));
	it_free(e);

	Crm__CadenceRule rule = CRM__CADENCE_RULE__INIT;
	rule.level = (char *)"B";
	rule.event = (char *)"level";
	rule.step = 1;
	rule.due_after_minutes = 3 * 1440;
	rule.method = (char *)"wechat";
	rule.purpose = (char *)"B: every 3 days this month";
	rule.assignee = (char *)"owner";
	rule.any_task_covers = true;
	Crm__CadencePolicySet s = CRM__CADENCE_POLICY_SET__INIT;
	s.rule = &rule;
	Crm__Envelope sreq = CRM__ENVELOPE__INIT;
	sreq.body_case = CRM__ENVELOPE__BODY_CADENCE_SET;
	sreq.cadence_set = &s;
	struct crmc *sm = login_at("store_manager", "BJ01");
	e = it_call(sm, &sreq);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	crmc_close(sm);
	struct crmc *admin = it_login("group_admin");
	e = it_call(admin, &sreq);
	CHECK(code_of(e) == CRM__CODE__OK && e->cadence_policy->n_rules == 16);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'policy.cadence'"
		      " AND entity_id = 'B/level/1'", NULL) >= 1);
	char cid[37], rid[37];
	CHECK(make_customer(c, "政策客户", cid, rid));
	it_free(set_level(c, rid, "B"));
	CHECK(due_after_level_change(rid, "B/level/1") == 3 * DAY_MS);
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid"
		      " AND method = 'wechat' AND purpose = 'B: every 3 days this month'", rid) == 1);
	rule.purpose = (char *)"";
	e = it_call(admin, &sreq);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "rule.purpose"));
	it_free(e);
	rule.level = (char *)"\xff";
	e = it_call(admin, &sreq);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "rule.level"));
	it_free(e);
	rule.level = (char *)"B";
	/* Back to the default. */
	rule.due_after_minutes = 7 * 1440;
	rule.method = (char *)"phone";
	rule.purpose = (char *)"follow up (B: every 7 days)";
	e = it_call(admin, &sreq);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	crmc_close(admin);
}

/* Row-level security and grants on the new tables, as crmd's role. */
static void test_row_level_security(struct crmc *c)
{
	char cid[37], rid[37];
	CHECK(make_customer(c, "安全客户", cid, rid));
	CHECK(db_long("SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace"
		      " AND relname IN ('followups', 'tasks', 'task_reassignments')"
		      " AND relrowsecurity", NULL) == 3);
	CHECK(db_long("SELECT count(*) FROM pg_roles r WHERE r.rolname = 'crmd'"
		      " AND (has_table_privilege(r.oid, 'crm.followups', 'UPDATE')"
		      "   OR has_table_privilege(r.oid, 'crm.followups', 'DELETE')"
		      "   OR has_table_privilege(r.oid, 'crm.tasks', 'DELETE'))", NULL) == 0);
	/* As crmd, scoped to another store: the insert is refused. */
	char store[37] = "", owner[37] = "";
	const char *v = it_db_value(db, "SELECT store_id FROM crm.relations WHERE id = $1::uuid", rid);
	snprintf(store, sizeof store, "%s", v ? v : "");
	v = it_db_value(db, "SELECT owner_id FROM crm.relations WHERE id = $1::uuid", rid);
	snprintf(owner, sizeof owner, "%s", v ? v : "");
	PGresult *res = PQexec(db, "BEGIN");
	PQclear(res);
	res = PQexec(db, "SELECT set_config('crm.store_id', (SELECT id::text FROM crm.stores"
			 " WHERE code = 'SH01'), true)");
	PQclear(res);
	res = PQexec(db, "SET LOCAL ROLE crmd");
	PQclear(res);
	const char *params[] = {rid, store, owner};
	res = PQexecParams(db,
			   "INSERT INTO crm.followups (id, relation_id, store_id, method, type, at,"
			   " content, by_user, created_at) VALUES (gen_random_uuid(), $1::uuid,"
			   " $2::uuid, 'phone', 'care', now(), 'x', $3::uuid, now())",
			   3, NULL, params, NULL, NULL, 0);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR && state && !strcmp(state, "42501"));
	PQclear(res);
	res = PQexec(db, "ROLLBACK");
	PQclear(res);
}

/* Follow-ups that arrive while others are being recorded are recorded
 * together, one commit for several (sql/0047). Two consultants each send
 * TOGETHER at once on their connection: most on their own relation, one
 * on a relation that does not exist, one on the other's relation (hidden
 * from them), one with quotes, backslashes, SQL and an emoji in its text,
 * one again with an id already recorded, and the first consultant one
 * that would complete a call-center agent's task (refused: DC403). crmd
 * groups them (its counters say so); each is answered with its own
 * records or its own error, the refusal audited as alone; the refused
 * ones wrote nothing; and the outbox and the audit log read as if they
 * had been recorded one by one: gapless, every entry audited with the
 * user who recorded it and the relation's versions one after another. */
#define TOGETHER 10

static void test_followups_recorded_together(struct crmc *c1, struct crmc *c2)
{
	static const char *const users[2] = {"fu.consultant1", "fu.consultant2"};
	static const char *const odd_text = "他说 \"再等等\" \\ '); DROP TABLE crm.followups; -- 🚗";
	struct crmc *mgr = login_at("store_manager", "BJ01");
	CHECK(mgr != NULL);
	if (!mgr)
		return;
	struct crmc *cs[2] = {c1, c2};
	char cid[37], rid[2][37], missing[37];
	CHECK(make_customer(c1, "并一", cid, rid[0]));
	CHECK(make_customer(c2, "并二", cid, rid[1]));
	uuid_v7_new(missing);
	/* A store-pool customer whose next task the agent owns. */
	struct crmc *agent = login_at("call_center", "BJ01");
	char pool_rid[37], agents_task[37] = "";
	CHECK(agent && make_customer(agent, "并池", cid, pool_rid));
	struct fu_args pa = {.relation_id = pool_rid, .next_due = now_ms_() + HOUR_MS,
			     .next_purpose = "call back"};
	Crm__Envelope *pe = agent ? add_followup(agent, &pa) : NULL;
	if (ok_followup(pe) && pe->followup_reply->n_tasks == 1)
		snprintf(agents_task, sizeof agents_task, "%s", pe->followup_reply->tasks[0]->id);
	CHECK(agents_task[0]);
	it_free(pe);
	if (agent)
		crmc_close(agent);
	static const char *const denied_sql =
		"SELECT count(*) FROM crm.audit_log WHERE actor_username = $1"
		" AND action = 'permission.denied' AND details->>'request' = 'followup.add'";
	long denied_before = db_long(denied_sql, users[0]);
	int n_ok[2] = {TOGETHER - 4, TOGETHER - 3};
	uint64_t grouped_before = it_stat(mgr, "followups_grouped");
	char seq_before[24];
	snprintf(seq_before, sizeof seq_before, "%lld",
		 db_ll("SELECT coalesce(max(seq), 0) FROM crm.outbox", NULL));
	uint64_t version_before[2] = {relation_version(rid[0]), relation_version(rid[1])};

	static struct fu_req q[2][TOGETHER];
	uint64_t sent[2][TOGETHER];
	for (int u = 0; u < 2; u++)
		for (int k = 0; k < TOGETHER; k++) {
			struct fu_args a = {.relation_id = rid[u], .next_due = now_ms_() + 2 * DAY_MS,
					    .next_purpose = "together"};
			if (k == 3)
				a.relation_id = missing;
			if (k == 6)
				a.relation_id = rid[1 - u];
			if (k == 8)
				a.content = odd_text;
			if (k == 9)
				a.id = q[u][2].id;
			if (k == 5 && u == 0) {
				a.relation_id = NULL;
				a.task_id = agents_task;
			}
			sent[u][k] = crmc_send(cs[u], fu_req_init(&q[u][k], &a));
		}
	CHECK(crmc_flush(c1) && crmc_flush(c2));

	int ok = 0, existed = 0, not_found = 0, denied = 0;
	for (int u = 0; u < 2; u++)
		for (int k = 0; k < TOGETHER; k++) {
			char err[256];
			Crm__Envelope *e = crmc_wait(cs[u], sent[u][k], 30000, err, sizeof err);
			if (!e) {
				fprintf(stderr, "  follow-up %d of %s: %s\n", k, users[u], err);
				CHECK(e != NULL);
				continue;
			}
			if (k == 3 || k == 6) {
				CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
				not_found += code_of(e) == CRM__CODE__NOT_FOUND;
			} else if (k == 5 && u == 0) {
				CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
				denied += code_of(e) == CRM__CODE__PERMISSION_DENIED;
			} else if (ok_followup(e)) {
				const Crm__FollowupReply *fr = e->followup_reply;
				CHECK(!strcmp(fr->followup->id, q[u][k].id));
				CHECK(!strcmp(fr->relation->id, rid[u]));
				CHECK(!strcmp(fr->followup->by, users[u]));
				/* 9 sends 2's id again. They may go in two groups
				 * running at once: either can be the one recorded
				 * first, the other answers that it existed. */
				CHECK(!fr->existed || k == 2 || k == 9);
				existed += fr->existed;
				ok += !fr->existed;
			}
			it_free(e);
		}
	CHECK(ok == n_ok[0] + n_ok[1] && existed == 2 && not_found == 4 && denied == 1);
	/* The refusal's entry is written after its answer: poll briefly. */
	long denied_after = denied_before;
	for (int i = 0; i < 50 && denied_after == denied_before; i++) {
		usleep(100 * 1000);
		denied_after = db_long(denied_sql, users[0]);
	}
	CHECK(denied_after == denied_before + 1);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE id = $1::uuid", q[0][5].id) == 0);
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE id = $1::uuid AND status = 'open'",
		      agents_task) == 1);
	CHECK(it_stat(mgr, "followups_grouped") - grouped_before >= 2);

	for (int u = 0; u < 2; u++) {
		/* Nothing of the refused ones; the odd text as sent. */
		CHECK(db_long("SELECT count(*) FROM crm.followups WHERE id = $1::uuid", q[u][3].id) == 0);
		CHECK(db_long("SELECT count(*) FROM crm.followups WHERE id = $1::uuid", q[u][6].id) == 0);
		const char *v = it_db_value(db, "SELECT content FROM crm.followups WHERE id = $1::uuid",
					    q[u][8].id);
		CHECK(v && !strcmp(v, odd_text));
		CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid[u]) ==
		      n_ok[u]);
		CHECK(relation_version(rid[u]) == version_before[u] + (uint64_t)n_ok[u]);
		/* Each of the relation's entries audited with its user, the
		 * versions one after another. */
		char sql[1024];
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM crm.outbox o JOIN crm.audit_log a"
			 "    ON a.action = 'change' AND (a.details->>'outbox_seq')::bigint = o.seq"
			 " WHERE o.seq > %s AND o.entity = 'relation' AND o.entity_id = $1::uuid"
			 "   AND a.actor_username = '%s' AND a.entity_id = o.entity_id::text"
			 "   AND a.after_version BETWEEN %llu AND %llu",
			 seq_before, users[u], (unsigned long long)version_before[u] + 1,
			 (unsigned long long)version_before[u] + (unsigned long long)n_ok[u]);
		CHECK(db_long(sql, rid[u]) == n_ok[u]);
		snprintf(sql, sizeof sql,
			 "SELECT count(DISTINCT a.after_version) FROM crm.audit_log a"
			 " WHERE a.action = 'change' AND a.entity = 'relation' AND a.entity_id = $1"
			 "   AND (a.details->>'outbox_seq')::bigint > %s", seq_before);
		CHECK(db_long(sql, rid[u]) == n_ok[u]);
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM crm.outbox o JOIN crm.followups f ON f.id = o.entity_id"
			 "  JOIN crm.audit_log a"
			 "    ON a.action = 'change' AND (a.details->>'outbox_seq')::bigint = o.seq"
			 " WHERE o.seq > %s AND o.entity = 'followup' AND f.relation_id = $1::uuid"
			 "   AND a.actor_username = '%s'", seq_before, users[u]);
		CHECK(db_long(sql, rid[u]) == n_ok[u]);
		/* Every entry of the relation, its follow-ups and their tasks
		 * audited in full, as crm.outbox_subject and crm.audit_actor
		 * would have it (sql/0051 builds them from the records): the
		 * relation's customer and store, the user's id and role, one
		 * of the user's sessions and its source address, the versions
		 * one apart (none for a follow-up). */
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM crm.outbox o"
			 "  JOIN crm.audit_log a"
			 "    ON a.action = 'change' AND (a.details->>'outbox_seq')::bigint = o.seq"
			 "  JOIN crm.relations r ON r.id = $1::uuid"
			 "  JOIN crm.users u ON u.username = '%s'"
			 "  JOIN crm.sessions s ON s.id = a.session_id AND s.user_id = u.id"
			 " WHERE o.seq > %s"
			 "   AND (o.entity_id = r.id"
			 "        OR o.entity_id IN (SELECT f.id FROM crm.followups f"
			 "                            WHERE f.relation_id = r.id)"
			 "        OR o.entity_id IN (SELECT t.id FROM crm.tasks t"
			 "                            WHERE t.relation_id = r.id))"
			 "   AND a.entity = o.entity AND a.entity_id = o.entity_id::text"
			 "   AND a.actor_id = u.id AND a.actor_role = u.role"
			 "   AND a.customer_id = r.customer_id AND a.store_id = r.store_id"
			 "   AND a.source_addr = s.source_addr"
			 "   AND CASE o.entity WHEN 'followup'"
			 "            THEN a.before_version IS NULL AND a.after_version IS NULL"
			 "            ELSE a.after_version = a.before_version + 1 END",
			 users[u], seq_before);
		CHECK(db_long(sql, rid[u]) == 3 * n_ok[u]);
	}
	/* Gapless; the two relations, their follow-ups and their tasks: three
	 * entries a follow-up recorded. */
	CHECK(db_long("SELECT (max(seq) - min(seq) + 1 = count(*))::int FROM crm.outbox"
		      " WHERE seq > $1::bigint", seq_before) == 1);
	char sql[1024];
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM crm.outbox o WHERE o.seq > $1::bigint"
		 "   AND (o.entity_id IN ('%s', '%s')"
		 "        OR o.entity_id IN (SELECT f.id FROM crm.followups f"
		 "                            WHERE f.relation_id IN ('%s', '%s'))"
		 "        OR o.entity_id IN (SELECT t.id FROM crm.tasks t"
		 "                            WHERE t.relation_id IN ('%s', '%s')))",
		 rid[0], rid[1], rid[0], rid[1], rid[0], rid[1]);
	CHECK(db_long(sql, seq_before) == 3 * (n_ok[0] + n_ok[1]));
	crmc_close(mgr);
}

/* A desk that sends follow-ups and goes away before the answers: crmd
 * forgets it wherever its follow-ups are (waiting, or in a group
 * statement), records what it had started, and goes on recording others. */
static void test_followups_of_a_closed_connection(struct crmc *c1)
{
	char cid[37], rid[37];
	CHECK(make_customer(c1, "断线客户", cid, rid));
	uint64_t version_before = relation_version(rid);
	for (int round = 0; round < 3; round++) {
		struct crmc *gone = login_user("fu.consultant1", PASSWORD);
		CHECK(gone != NULL);
		if (!gone)
			return;
		static struct fu_req q[TOGETHER];
		for (int k = 0; k < TOGETHER; k++) {
			struct fu_args a = {.relation_id = rid, .content = "断线之前"};
			crmc_send(gone, fu_req_init(&q[k], &a));
		}
		CHECK(crmc_flush(gone));
		crmc_close(gone);
	}
	/* The next follow-up waits for whatever was still running, then is
	 * recorded; every follow-up recorded moved the relation once. */
	struct fu_args a = {.relation_id = rid, .content = "之后"};
	Crm__Envelope *e = add_followup(c1, &a);
	CHECK(ok_followup(e));
	it_free(e);
	/* One statement, one snapshot: a group of the closed desks that crmd
	 * read after this follow-up may still commit meanwhile. */
	static const char *const sql =
		"SELECT r.version - $2::bigint = (SELECT count(*) FROM crm.followups f"
		" WHERE f.relation_id = r.id) FROM crm.relations r WHERE r.id = $1::uuid";
	char before[24];
	snprintf(before, sizeof before, "%llu", (unsigned long long)version_before);
	PGresult *res = PQexecParams(db, sql, 2, NULL, (const char *[]){rid, before}, NULL, NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	      !strcmp(PQgetvalue(res, 0, 0), "t"));
	PQclear(res);
	long n = db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid);
	CHECK(n >= 1 && n <= 3 * TOGETHER + 1);
}

/* Waits (up to 10 s) until the backend of `c` waits for a lock. */
static bool waits_for_a_lock(PGconn *c)
{
	char pid[16];
	snprintf(pid, sizeof pid, "%d", PQbackendPID(c));
	for (int i = 0; i < 1000; i++) {
		if (db_long("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int"
			    " AND wait_event_type = 'Lock'", pid) == 1)
			return true;
		usleep(10000);
	}
	return false;
}

/* Sends one group of two follow-ups to crm.followup_add_batch as crmd does:
 * the first completes task `task` (no relation given), the second is on
 * relation `rid`. */
static bool send_group(PGconn *app, const char *session, const char *task, const char *rid)
{
	char id[2][37], at[24];
	uuid_v7_new(id[0]);
	uuid_v7_new(id[1]);
	snprintf(at, sizeof at, "%lld", (long long)now_ms_());
	const char *v[26] = {
		session, id[0], "", task, "phone", "needs_analysis", at, "锁序一", "", NULL, "", "", at,
		session, id[1], rid, "", "phone", "needs_analysis", at, "锁序二", "", NULL, "", "", at,
	};
	return PQsendQueryParams(app,
				 "SELECT x.item, x.err_state, x.err_message FROM crm.followup_add_batch("
				 "ARRAY[$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
				 " $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26]) x",
				 26, NULL, v, NULL, NULL, 0) == 1;
}

/* The rows of a group sent by send_group: true if both follow-ups were
 * recorded (each item answered, none with an error). */
static bool group_recorded(PGconn *app)
{
	bool ok = true, seen[2] = {false, false};
	PGresult *res;
	while ((res = PQgetResult(app))) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "group: %s\n", PQresultErrorMessage(res));
			ok = false;
		}
		for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
			int item = atoi(PQgetvalue(res, i, 0));
			if (item >= 0 && item < 2)
				seen[item] = true;
			if (!PQgetisnull(res, i, 1)) {
				fprintf(stderr, "group item %d: %s %s\n", item, PQgetvalue(res, i, 1),
					PQgetvalue(res, i, 2));
				ok = false;
			}
		}
		PQclear(res);
	}
	return ok && seen[0] && seen[1];
}

/* Two groups that share two relations lock them in one order, whatever
 * order their follow-ups came in and however a follow-up names its
 * relation (a follow-up that completes a task may give only the task).
 * Group 2 (task of lo, then hi) waits for lo, which another transaction
 * holds; group 1 (task of hi, then lo) starts after. Taken as they came,
 * group 1 would hold hi and wait for lo, group 2 would get lo and wait for
 * hi: a deadlock, one follow-up refused after deadlock_timeout. */
static void test_groups_lock_relations_in_one_order(struct crmc *c)
{
	char cid[37], rel[2][37], task[2][37] = {"", ""};
	for (int k = 0; k < 2; k++) {
		CHECK(make_customer(c, k ? "序二" : "序一", cid, rel[k]));
		struct fu_args a = {.relation_id = rel[k], .next_due = now_ms_() + HOUR_MS,
				    .next_purpose = "lock order"};
		Crm__Envelope *e = add_followup(c, &a);
		if (ok_followup(e) && e->followup_reply->n_tasks == 1)
			snprintf(task[k], sizeof task[k], "%s", e->followup_reply->tasks[0]->id);
		it_free(e);
		CHECK(task[k][0]);
	}
	/* lo sorts before hi as PostgreSQL orders uuids */
	int lo = strcmp(rel[0], rel[1]) < 0 ? 0 : 1, hi = 1 - lo;
	char session[64] = "";
	const char *s = it_db_value(db,
				    "SELECT s.session_id FROM crm.users u, crm.session_open(u.id,"
				    " md5(random()::text) || md5(random()::text), 600, 'test') s"
				    " WHERE u.username = $1",
				    "fu.consultant1");
	if (s)
		snprintf(session, sizeof session, "%s", s);
	PGconn *holder = it_db(), *g1 = it_db_app(), *g2 = it_db_app();
	CHECK(session[0] && PQstatus(holder) == CONNECTION_OK && g1 && g2);
	if (!session[0] || PQstatus(holder) != CONNECTION_OK || !g1 || !g2)
		goto out;
	const char *lo_param[] = {rel[lo]};
	PQclear(PQexec(holder, "BEGIN"));
	PGresult *res = PQexecParams(holder, "SELECT 1 FROM crm.relations WHERE id = $1::uuid FOR UPDATE",
				     1, NULL, lo_param, NULL, NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1);
	PQclear(res);
	CHECK(send_group(g2, session, task[lo], rel[hi]));
	CHECK(waits_for_a_lock(g2));
	CHECK(send_group(g1, session, task[hi], rel[lo]));
	CHECK(waits_for_a_lock(g1));
	PQclear(PQexec(holder, "COMMIT"));
	CHECK(group_recorded(g2));
	CHECK(group_recorded(g1));
	for (int k = 0; k < 2; k++) {
		CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid"
			      " AND content IN ('锁序一', '锁序二')", rel[k]) == 2);
		CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE id = $1::uuid AND status = 'done'",
			      task[k]) == 1);
	}
out:
	PQfinish(holder);
	PQfinish(g1);
	PQfinish(g2);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(it_add_user(db, "fu.consultant1", "冯一", "consultant", "BJ01", PASSWORD));
	CHECK(it_add_user(db, "fu.consultant2", "冯二", "consultant", "BJ01", PASSWORD));
	struct crmc *c1 = login_user("fu.consultant1", PASSWORD);
	struct crmc *c2 = login_user("fu.consultant2", PASSWORD);
	if (!c1 || !c2)
		return 1;
	test_first_visit_follow_up(c1);
	test_level_changes_create_tasks(c1);
	test_order_levels_create_tasks(c1);
	test_compliance(c1);
	test_lists_at_a_fixed_clock(c2);
	test_tasks_due_together_in_id_order(c2);
	test_outbox_of_one_followup(c2);
	test_sql_payloads_match_crmds(c2);
	test_permissions(c1, c2);
	test_handover_moves_open_tasks(c1, c2);
	test_stale_plan_is_refused(c1);
	test_pool_relation_next_task_is_the_callers(c1);
	test_cadence_policy(c1);
	test_row_level_security(c1);
	test_followups_recorded_together(c1, c2);
	test_followups_of_a_closed_connection(c1);
	test_groups_lock_relations_in_one_order(c1);
	crmc_close(c1);
	crmc_close(c2);
	PQfinish(db);
	return it_summary();
}
