/* Sales (issue 6; sql/0018) over TLS against PostgreSQL, at a fixed clock
 * (every write names its time): opportunity stages move forward and keep
 * their history; a lost opportunity needs its reason; a stale version is
 * a CONFLICT with the current record; placing an order moves the relation
 * to O with the O task, delivery to D with the manager's call and the
 * first-month visit and the vehicle registered, cancellation to T with its
 * call; no task twice; wrong transitions refused; test drives move the
 * opportunity; another store's consultant is refused; the outbox holds
 * each record exactly as stored, and each is audited.
 *
 * Consultants made here (sa.*) work at GZ01, where no other test writes
 * orders. */
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "sales-test-pw-1"
#define HOUR_MS (60 * 60000LL)
#define DAY_MS (24 * HOUR_MS)

static PGconn *db;
static int64_t t0; /* the fixed clock: 2026-11-02 10:00 Asia/Shanghai */
static char vin1[24], vin2[24]; /* unique group-wide: fresh ones per run */

/* ------------------------------------------------------------ helpers */

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

static const char *field_of(const Crm__Envelope *e)
{
	return e && e->status && e->status->field ? e->status->field : "";
}

static struct crmc *login_user(const char *user)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, PASSWORD) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
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

static Crm__Envelope *opp_add(struct crmc *c, const char *id, const char *rid, const char *stage,
			      int64_t at)
{
	Crm__Opportunity o = CRM__OPPORTUNITY__INIT;
	o.id = (char *)id;
	o.relation_id = (char *)rid;
	o.stage = (char *)stage;
	o.model = (char *)"凯美瑞";
	o.expected_price_fen = 22980000;
	Crm__OpportunityAdd add = CRM__OPPORTUNITY_ADD__INIT;
	add.opportunity = &o;
	add.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_ADD;
	req.opportunity_add = &add;
	return it_call(c, &req);
}

static Crm__Envelope *opp_stage(struct crmc *c, const char *id, uint64_t version,
				const char *stage, int64_t at)
{
	Crm__OpportunityStage st = CRM__OPPORTUNITY_STAGE__INIT;
	st.id = (char *)id;
	st.version = version;
	st.stage = (char *)stage;
	st.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_STAGE;
	req.opportunity_stage = &st;
	return it_call(c, &req);
}

static Crm__Envelope *opp_lose(struct crmc *c, const char *id, uint64_t version,
			       const char *reason, const char *text, const char *brand, int64_t at)
{
	Crm__OpportunityLose lo = CRM__OPPORTUNITY_LOSE__INIT;
	lo.id = (char *)id;
	lo.version = version;
	lo.reason = (char *)reason;
	lo.text = (char *)text;
	lo.competitor_brand = (char *)brand;
	lo.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_LOSE;
	req.opportunity_lose = &lo;
	return it_call(c, &req);
}

static Crm__Envelope *order_place(struct crmc *c, const char *id, const char *rid,
				  const char *opp, int64_t at)
{
	Crm__SalesOrder o = CRM__SALES_ORDER__INIT;
	o.id = (char *)id;
	o.relation_id = (char *)rid;
	o.opportunity_id = (char *)(opp ? opp : "");
	o.model = (char *)"凯美瑞";
	o.configuration = (char *)"2.5G 豪华版 铂金珍珠白";
	o.price_fen = 22980000;
	o.deposit_fen = 500000;
	o.placed_at = at;
	Crm__OrderPlace op = CRM__ORDER_PLACE__INIT;
	op.order = &o;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORDER_PLACE;
	req.order_place = &op;
	return it_call(c, &req);
}

static Crm__Envelope *order_deliver(struct crmc *c, const char *id, uint64_t version,
				    const char *vin, const char *vehicle_id, int64_t at)
{
	Crm__OrderDeliver d = CRM__ORDER_DELIVER__INIT;
	d.id = (char *)id;
	d.version = version;
	d.vin = (char *)vin;
	d.plate = (char *)"粤A·12345";
	d.vehicle_id = (char *)vehicle_id;
	d.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORDER_DELIVER;
	req.order_deliver = &d;
	return it_call(c, &req);
}

static Crm__Envelope *order_cancel(struct crmc *c, const char *id, uint64_t version,
				   const char *reason, int64_t at)
{
	Crm__OrderCancel oc = CRM__ORDER_CANCEL__INIT;
	oc.id = (char *)id;
	oc.version = version;
	oc.reason = (char *)reason;
	oc.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORDER_CANCEL;
	req.order_cancel = &oc;
	return it_call(c, &req);
}

static Crm__Envelope *test_drive(struct crmc *c, const char *rid, const char *opp, int64_t at)
{
	char id[37];
	uuid_v7_new(id);
	Crm__TestDrive t = CRM__TEST_DRIVE__INIT;
	t.id = id;
	t.relation_id = (char *)rid;
	t.opportunity_id = (char *)(opp ? opp : "");
	t.model = (char *)"凯美瑞";
	t.note = (char *)"试驾高速路段";
	t.at = at;
	Crm__TestDriveAdd add = CRM__TEST_DRIVE_ADD__INIT;
	add.test_drive = &t;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_ADD;
	req.test_drive_add = &add;
	return it_call(c, &req);
}

static const Crm__Opportunity *opp_of(const Crm__Envelope *e)
{
	if (!e || e->body_case != CRM__ENVELOPE__BODY_OPPORTUNITY_REPLY || !e->opportunity_reply)
		return NULL;
	return e->opportunity_reply->opportunity;
}

static const Crm__OrderReply *order_of(const Crm__Envelope *e)
{
	if (!e || e->body_case != CRM__ENVELOPE__BODY_ORDER_REPLY || !e->order_reply ||
	    !e->order_reply->order || !e->order_reply->relation)
		return NULL;
	return e->order_reply;
}

static bool ok_reply(const Crm__Envelope *e)
{
	if (code_of(e) == CRM__CODE__OK)
		return true;
	fprintf(stderr, "  refused: %s (%s)\n", e ? crmc_status_message(e) : "no answer",
		field_of(e));
	return false;
}

/* The latest outbox payload of `id` as `entity` is `record`, packed. */
static bool outbox_holds(const char *entity, const char *id, const ProtobufCMessage *record)
{
	const char *params[] = {id, entity};
	PGresult *res = PQexecParams(db, "SELECT payload FROM crm.outbox WHERE entity_id = $1::uuid"
					 " AND entity = $2 ORDER BY seq DESC LIMIT 1",
				     2, NULL, params, NULL, NULL, 1);
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
		fprintf(stderr, "  outbox payload of %s %s differs from the record\n", entity, id);
	return same;
}

static long outbox_count(const char *entity, const char *id)
{
	const char *params[] = {id, entity};
	PGresult *res = PQexecParams(db, "SELECT count(*) FROM crm.outbox WHERE entity_id = $1::uuid"
					 " AND entity = $2",
				     2, NULL, params, NULL, NULL, 0);
	long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return n;
}

static long open_tasks(const char *rid, const char *key)
{
	const char *params[] = {rid, key};
	PGresult *res = PQexecParams(db, "SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid"
					 " AND status = 'open' AND cadence_key = $2",
				     2, NULL, params, NULL, NULL, 0);
	long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return n;
}

/* due_at (ms) of the relation's open task of rule `key`; -1 when none. */
static long long task_due(const char *rid, const char *key)
{
	const char *params[] = {rid, key};
	PGresult *res = PQexecParams(db, "SELECT crm.ms(due_at) FROM crm.tasks WHERE relation_id ="
					 " $1::uuid AND cadence_key = $2 AND status = 'open'",
				     2, NULL, params, NULL, NULL, 0);
	long long v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
			      ? atoll(PQgetvalue(res, 0, 0))
			      : -1;
	PQclear(res);
	return v;
}

static const char *level_of(const char *rid)
{
	return it_db_value(db, "SELECT level FROM crm.relations WHERE id = $1::uuid", rid);
}

/* ------------------------------------------------------------ opportunities */

static void test_opportunity_stages_and_history(struct crmc *c)
{
	char cid[37], rid[37], oid[37];
	CHECK(make_customer(c, "销售甲", cid, rid));
	uuid_v7_new(oid);
	Crm__Envelope *e = opp_add(c, oid, rid, "", t0);
	const Crm__Opportunity *o = opp_of(e);
	CHECK(ok_reply(e) && o);
	if (!o)
		return;
	CHECK(!strcmp(o->stage, "prospecting") && !strcmp(o->status, "open") && o->version == 1);
	CHECK(o->opened_at == t0 && o->expected_price_fen == 22980000);
	CHECK(o->n_history == 1 && !strcmp(o->history[0]->from_stage, "") &&
	      !strcmp(o->history[0]->to_stage, "prospecting") && o->history[0]->at == t0 &&
	      !strcmp(o->history[0]->by, "sa.consultant1"));
	CHECK(outbox_holds("opportunity", oid, &o->base));
	it_free(e);

	/* The same id again records nothing. */
	e = opp_add(c, oid, rid, "", t0);
	CHECK(ok_reply(e) && e->opportunity_reply->existed);
	it_free(e);
	CHECK(outbox_count("opportunity", oid) == 1);

	e = opp_stage(c, oid, 1, "needs_analysis", t0 + HOUR_MS);
	o = opp_of(e);
	CHECK(ok_reply(e) && o && !strcmp(o->stage, "needs_analysis") && o->version == 2);
	if (o) {
		CHECK(o->n_history == 2 && !strcmp(o->history[1]->from_stage, "prospecting") &&
		      !strcmp(o->history[1]->to_stage, "needs_analysis") &&
		      o->history[1]->at == t0 + HOUR_MS);
		CHECK(outbox_holds("opportunity", oid, &o->base));
	}
	it_free(e);

	/* Backwards, and by hand to deal: refused, nothing written. */
	e = opp_stage(c, oid, 2, "reception", t0 + 2 * HOUR_MS);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "stage"));
	it_free(e);
	e = opp_stage(c, oid, 2, "deal", t0 + 2 * HOUR_MS);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "stage"));
	it_free(e);

	/* A stale version: CONFLICT with the current record. */
	e = opp_stage(c, oid, 1, "presentation", t0 + 2 * HOUR_MS);
	o = opp_of(e);
	CHECK(code_of(e) == CRM__CODE__CONFLICT && o && o->version == 2 &&
	      !strcmp(o->stage, "needs_analysis"));
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.opportunity_stages WHERE opportunity_id = $1::uuid",
		      oid) == 2);
	/* Each write is audited as a change. */
	CHECK(db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'change'"
		      " AND entity = 'opportunity' AND entity_id = $1",
		      oid) == 2);
}

static void test_lost_needs_a_reason(struct crmc *c)
{
	char cid[37], rid[37], oid[37];
	CHECK(make_customer(c, "销售乙", cid, rid));
	uuid_v7_new(oid);
	it_free(opp_add(c, oid, rid, "presentation", t0));
	Crm__Envelope *e = opp_lose(c, oid, 1, "", "", "", t0 + DAY_MS);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "reason"));
	it_free(e);
	e = opp_lose(c, oid, 1, "other", "", "", t0 + DAY_MS);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "text"));
	it_free(e);
	e = opp_lose(c, oid, 1, "cheaper", "", "", t0 + DAY_MS);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "reason"));
	it_free(e);
	CHECK(!strcmp(it_db_value(db, "SELECT status FROM crm.opportunities WHERE id = $1::uuid",
				  oid), "open"));

	e = opp_lose(c, oid, 1, "competitor", "", "比亚迪", t0 + DAY_MS);
	const Crm__Opportunity *o = opp_of(e);
	CHECK(ok_reply(e) && o && !strcmp(o->status, "lost") &&
	      !strcmp(o->defeat_reason, "competitor") && !strcmp(o->competitor_brand, "比亚迪") &&
	      o->closed_at == t0 + DAY_MS && o->version == 2);
	if (o)
		CHECK(outbox_holds("opportunity", oid, &o->base));
	it_free(e);
	/* A lost opportunity moves no more. */
	e = opp_stage(c, oid, 2, "negotiation", t0 + 2 * DAY_MS);
	CHECK(code_of(e) == CRM__CODE__CONFLICT);
	it_free(e);

	/* other with its text. */
	char oid2[37];
	uuid_v7_new(oid2);
	it_free(opp_add(c, oid2, rid, "", t0));
	e = opp_lose(c, oid2, 1, "other", "客户出国", "", t0 + DAY_MS);
	o = opp_of(e);
	CHECK(ok_reply(e) && o && !strcmp(o->defeat_reason, "other") &&
	      !strcmp(o->defeat_text, "客户出国"));
	it_free(e);
}

static void test_test_drive_moves_the_opportunity(struct crmc *c)
{
	char cid[37], rid[37], oid[37];
	CHECK(make_customer(c, "销售丙", cid, rid));
	uuid_v7_new(oid);
	it_free(opp_add(c, oid, rid, "reception", t0));
	Crm__Envelope *e = test_drive(c, rid, oid, t0 + HOUR_MS);
	CHECK(ok_reply(e) && e->body_case == CRM__ENVELOPE__BODY_TEST_DRIVE_REPLY);
	if (code_of(e) == CRM__CODE__OK) {
		const Crm__TestDriveReply *r = e->test_drive_reply;
		CHECK(r->test_drive && r->test_drive->at == t0 + HOUR_MS &&
		      !strcmp(r->test_drive->consultant, "sa.consultant1"));
		CHECK(r->opportunity && !strcmp(r->opportunity->stage, "test_drive") &&
		      r->opportunity->version == 2 && r->opportunity->n_history == 2);
		CHECK(outbox_holds("test_drive", r->test_drive->id, &r->test_drive->base));
		CHECK(outbox_holds("opportunity", oid, &r->opportunity->base));
	}
	it_free(e);
	/* Later than test_drive already: the stage stays. */
	it_free(opp_stage(c, oid, 2, "negotiation", t0 + 2 * HOUR_MS));
	e = test_drive(c, rid, oid, t0 + 3 * HOUR_MS);
	CHECK(ok_reply(e) && e->test_drive_reply->opportunity &&
	      !strcmp(e->test_drive_reply->opportunity->stage, "negotiation") &&
	      e->test_drive_reply->opportunity->version == 3);
	it_free(e);
	/* Listed by customer, newest first. */
	Crm__TestDriveList tl = CRM__TEST_DRIVE_LIST__INIT;
	tl.customer_id = cid;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_LIST;
	req.test_drive_list = &tl;
	e = it_call(c, &req);
	CHECK(ok_reply(e) && e->test_drive_page->n_test_drives == 2 &&
	      e->test_drive_page->test_drives[0]->at == t0 + 3 * HOUR_MS);
	it_free(e);
}

/* ------------------------------------------------------------ orders */

static void test_order_place_deliver(struct crmc *c)
{
	char cid[37], rid[37], oid[37], ord[37], ord2[37], veh[37];
	CHECK(make_customer(c, "销售丁", cid, rid));
	uuid_v7_new(oid);
	it_free(opp_add(c, oid, rid, "negotiation", t0));
	long rel_version = db_long("SELECT version FROM crm.relations WHERE id = $1::uuid", rid);

	/* Placing: level O with its task, the opportunity won at deal. */
	uuid_v7_new(ord);
	int64_t placed = t0 + DAY_MS;
	Crm__Envelope *e = order_place(c, ord, rid, oid, placed);
	const Crm__OrderReply *r = order_of(e);
	CHECK(ok_reply(e) && r);
	if (!r)
		return;
	CHECK(!strcmp(r->order->status, "placed") && r->order->placed_at == placed &&
	      r->order->version == 1 && r->order->price_fen == 22980000 &&
	      r->order->deposit_fen == 500000 && !strcmp(r->order->opportunity_id, oid));
	CHECK(!strcmp(r->relation->level, "O") && (long)r->relation->version == rel_version + 1);
	CHECK(r->opportunity && !strcmp(r->opportunity->stage, "deal") &&
	      !strcmp(r->opportunity->status, "won") && r->opportunity->closed_at == placed);
	CHECK(open_tasks(rid, "O/level/1") == 1 && task_due(rid, "O/level/1") == placed + 3 * DAY_MS);
	CHECK(r->relation->next_followup_at == placed + 3 * DAY_MS);
	CHECK(outbox_holds("order", ord, &r->order->base));
	CHECK(outbox_holds("relation", rid, &r->relation->base));
	CHECK(outbox_holds("opportunity", oid, &r->opportunity->base));
	CHECK(db_long("SELECT count(*) FROM crm.level_changes WHERE relation_id = $1::uuid"
		      " AND to_level = 'O' AND from_level = 'N' AND changed_at = crm.from_ms("
		      "(SELECT crm.ms(placed_at) FROM crm.orders WHERE relation_id = $1::uuid))",
		      rid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'change'"
		      " AND entity = 'order' AND entity_id = $1",
		      ord) == 1);
	/* Each change entry of the order, the opportunity and the cadence's
	 * task names the customer and the store (sql/0023). */
	static const char subjects[] =
		"SELECT %s FROM crm.audit_log a WHERE a.action = 'change' AND a.entity_id IN ("
		" SELECT x.id::text FROM crm.orders x JOIN crm.relations r ON r.id = x.relation_id"
		"  WHERE r.customer_id = $1::uuid"
		" UNION SELECT x.id::text FROM crm.opportunities x JOIN crm.relations r"
		"  ON r.id = x.relation_id WHERE r.customer_id = $1::uuid"
		" UNION SELECT x.id::text FROM crm.tasks x JOIN crm.relations r ON r.id = x.relation_id"
		"  WHERE r.customer_id = $1::uuid)";
	char q[1024];
	snprintf(q, sizeof q, subjects, "count(*)");
	CHECK(db_long(q, cid) >= 3);
	snprintf(q, sizeof q, subjects,
		 "count(*) FILTER (WHERE a.customer_id IS DISTINCT FROM $1::uuid"
		 " OR a.store_id IS NULL OR a.after_version IS NULL)");
	CHECK(db_long(q, cid) == 0);
	uint64_t version = r->order->version;
	it_free(e);

	/* The same id again: existed, nothing written. */
	e = order_place(c, ord, rid, NULL, placed);
	CHECK(ok_reply(e) && order_of(e) && e->order_reply->existed);
	it_free(e);
	CHECK(outbox_count("order", ord) == 1);

	/* The opportunity is won: a second order cannot link it. */
	uuid_v7_new(ord2);
	e = order_place(c, ord2, rid, oid, placed + HOUR_MS);
	CHECK(code_of(e) == CRM__CODE__CONFLICT && !strcmp(field_of(e), "order.opportunity_id"));
	it_free(e);
	/* A second order: already O, no level change, no second task. */
	long before = db_long("SELECT version FROM crm.relations WHERE id = $1::uuid", rid);
	e = order_place(c, ord2, rid, NULL, placed + HOUR_MS);
	CHECK(ok_reply(e) && order_of(e) && (long)e->order_reply->relation->version == before);
	it_free(e);
	CHECK(open_tasks(rid, "O/level/1") == 1);
	CHECK(db_long("SELECT count(*) FROM crm.level_changes WHERE relation_id = $1::uuid"
		      " AND to_level = 'O'", rid) == 1);

	/* A bad VIN: refused, nothing written. */
	uuid_v7_new(veh);
	int64_t delivered = placed + 10 * DAY_MS;
	e = order_deliver(c, ord, version, "LFV3A23C0K300001O" /* O: not in a VIN */, veh, delivered);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "vin"));
	it_free(e);
	CHECK(!strcmp(level_of(rid), "O"));

	/* Delivery: level D, the manager's call in 24 h, the visit in the
	 * month, the vehicle registered to the customer by the store. */
	char lower[18];
	for (int i = 0; i < 17; i++)
		lower[i] = (char)(vin1[i] >= 'A' && vin1[i] <= 'Z' ? vin1[i] + 32 : vin1[i]);
	lower[17] = '\0';
	e = order_deliver(c, ord, version, lower, veh, delivered);
	r = order_of(e);
	CHECK(ok_reply(e) && r);
	if (r) {
		CHECK(!strcmp(r->order->status, "delivered") && r->order->delivered_at == delivered &&
		      !strcmp(r->order->vin, vin1) &&
		      !strcmp(r->order->vehicle_id, veh) && r->order->version == version + 1);
		CHECK(!strcmp(r->relation->level, "D"));
		CHECK(r->opportunity && !strcmp(r->opportunity->stage, "delivery"));
		CHECK(outbox_holds("order", ord, &r->order->base));
		CHECK(outbox_holds("relation", rid, &r->relation->base));
		CHECK(outbox_holds("opportunity", oid, &r->opportunity->base));
	}
	it_free(e);
	CHECK(task_due(rid, "D/level/1") == delivered + DAY_MS);
	CHECK(task_due(rid, "D/level/2") == delivered + 30 * DAY_MS);
	CHECK(db_long("SELECT count(*) FROM crm.tasks t JOIN crm.users u ON u.id = t.owner_id"
		      " WHERE t.relation_id = $1::uuid AND t.cadence_key = 'D/level/1'"
		      " AND u.role IN ('sales_manager', 'store_manager')",
		      rid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.vehicles v JOIN crm.relations r"
		      " ON r.customer_id = v.customer_id AND r.store_id = v.store_id"
		      " JOIN crm.orders o ON o.vehicle_id = v.id AND o.vin = v.vin"
		      " WHERE r.id = $1::uuid AND o.relation_id = r.id AND v.model = '凯美瑞'"
		      " AND v.plate = '粤A12345' AND v.purchased_on = DATE '2026-11-13'",
		      rid) == 1);
	CHECK(outbox_count("vehicle", veh) == 1);

	/* Wrong transitions: a stale version is a CONFLICT with the current
	 * order; a delivered order is neither delivered again nor cancelled. */
	e = order_deliver(c, ord, version, vin1, veh, delivered);
	CHECK(code_of(e) == CRM__CODE__CONFLICT && order_of(e) &&
	      e->order_reply->order->version == version + 1);
	it_free(e);
	e = order_cancel(c, ord, version + 1, "客户反悔", delivered + HOUR_MS);
	CHECK(code_of(e) == CRM__CODE__CONFLICT && !strcmp(field_of(e), "id"));
	it_free(e);
	CHECK(!strcmp(it_db_value(db, "SELECT status FROM crm.orders WHERE id = $1::uuid", ord),
		      "delivered"));

	/* Cancelling the second order of a delivered customer: D stays. */
	e = order_cancel(c, ord2, 1, "只买一台", delivered + HOUR_MS);
	CHECK(ok_reply(e) && order_of(e) && !strcmp(e->order_reply->relation->level, "D"));
	it_free(e);
	CHECK(open_tasks(rid, "T/level/1") == 0);
}

static void test_order_cancel(struct crmc *c)
{
	char cid[37], rid[37], oid[37], ord[37], veh[37];
	CHECK(make_customer(c, "销售戊", cid, rid));
	uuid_v7_new(oid);
	it_free(opp_add(c, oid, rid, "negotiation", t0));
	uuid_v7_new(ord);
	it_free(order_place(c, ord, rid, oid, t0 + DAY_MS));
	Crm__Envelope *e = order_cancel(c, ord, 1, "", t0 + 2 * DAY_MS);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "reason"));
	it_free(e);
	int64_t cancelled = t0 + 2 * DAY_MS;
	e = order_cancel(c, ord, 1, "资金不足", cancelled);
	const Crm__OrderReply *r = order_of(e);
	CHECK(ok_reply(e) && r);
	if (r) {
		CHECK(!strcmp(r->order->status, "cancelled") && r->order->cancelled_at == cancelled &&
		      !strcmp(r->order->cancel_reason, "资金不足"));
		CHECK(!strcmp(r->relation->level, "T"));
		CHECK(r->opportunity && !strcmp(r->opportunity->status, "lost") &&
		      !strcmp(r->opportunity->defeat_reason, "other"));
		CHECK(outbox_holds("order", ord, &r->order->base));
		CHECK(outbox_holds("relation", rid, &r->relation->base));
		CHECK(outbox_holds("opportunity", oid, &r->opportunity->base));
	}
	it_free(e);
	CHECK(open_tasks(rid, "T/level/1") == 1 && task_due(rid, "T/level/1") == cancelled + 7 * DAY_MS);
	/* A cancelled order is not delivered. */
	uuid_v7_new(veh);
	e = order_deliver(c, ord, 2, vin2, veh, cancelled + DAY_MS);
	CHECK(code_of(e) == CRM__CODE__CONFLICT && !strcmp(field_of(e), "id"));
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.vehicles WHERE id = $1::uuid", veh) == 0);
	/* Placing again: O again (the T task stays until someone calls). */
	uuid_v7_new(ord);
	e = order_place(c, ord, rid, NULL, cancelled + DAY_MS);
	CHECK(ok_reply(e) && order_of(e) && !strcmp(e->order_reply->relation->level, "O"));
	it_free(e);
	CHECK(open_tasks(rid, "O/level/1") == 1);
}

/* The order write refuses a stale plan and writes nothing: the relation
 * came out at another version or next follow-up than the one crmd packed.
 * (crmd runs plan and write back to back; this calls the SQL function as
 * crmd would, with stale values.) */
static const char *place_with_plan(const char *session, const char *rid, const char *version,
				   const char *expect_next)
{
	char id[37];
	uuid_v7_new(id);
	const char *params[] = {session, id, rid, version, expect_next};
	PGresult *res = PQexecParams(
		db,
		"SELECT x.outcome FROM crm.order_write($1::uuid, 'place', false, $2, 0, $3, '',"
		" '卡罗拉', '', 12980000, 0, '', '', '', '', crm.ms(now()), crm.ms(now()),"
		" $4::bigint, $5::bigint, '\\x00000000'::bytea) x",
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
	CHECK(make_customer(c, "计划订单", cid, rid));
	const char *v = it_db_value(db, "INSERT INTO crm.sessions (user_id, token_hash, expires_at)"
				    " SELECT u.id, decode(md5(random()::text) || md5(random()::text),"
				    " 'hex'), now() + interval '10 minutes' FROM crm.users u"
				    " WHERE u.username = $1 RETURNING id", "sa.consultant1");
	snprintf(session, sizeof session, "%s", v ? v : "");
	CHECK(session[0]);
	CHECK_STR(place_with_plan(session, rid, "999", "0"), "DC409");
	CHECK_STR(place_with_plan(session, rid, "2", "12345"), "DC409");
	CHECK(db_long("SELECT count(*) FROM crm.orders WHERE relation_id = $1::uuid", rid) == 0);
	CHECK(!strcmp(level_of(rid), "N"));
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid", rid) == 0);
}

/* ------------------------------------------------------------ scope */

static void test_scope(struct crmc *c1, struct crmc *c2, struct crmc *other_store,
		       struct crmc *analyst)
{
	char cid[37], rid[37], oid[37], ord[37];
	CHECK(make_customer(c1, "销售己", cid, rid));
	uuid_v7_new(oid);
	it_free(opp_add(c1, oid, rid, "", t0));

	/* Another store's consultant: refused, and sees nothing. */
	char id[37];
	uuid_v7_new(id);
	Crm__Envelope *e = opp_add(other_store, id, rid, "", t0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = order_place(other_store, id, rid, NULL, t0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = test_drive(other_store, rid, NULL, t0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = opp_stage(other_store, oid, 1, "reception", t0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED || code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	Crm__OpportunityList ol = CRM__OPPORTUNITY_LIST__INIT;
	ol.customer_id = cid;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_LIST;
	req.opportunity_list = &ol;
	e = it_call(other_store, &req);
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND);
	it_free(e);
	/* The refusal is audited (written just after the answer). */
	long denied = 0;
	for (int i = 0; i < 40 && denied < 1; i++) {
		denied = db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'permission.denied'"
				 " AND details->>'request' = $1 AND at > now() - interval '1 minute'",
				 "order.place");
		if (denied < 1)
			usleep(50000);
	}
	CHECK(denied >= 1);

	/* A colleague of the store: orders move levels, so only on own relations. */
	uuid_v7_new(ord);
	e = order_place(c2, ord, rid, NULL, t0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	CHECK(!strcmp(level_of(rid), "N"));

	/* Group roles read, never write. */
	e = it_call(analyst, &req);
	CHECK(ok_reply(e) && e->opportunity_page->n_opportunities == 1);
	it_free(e);
	uuid_v7_new(id);
	e = opp_add(analyst, id, rid, "", t0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);

	/* The caller's own list: this consultant's, not the colleague's. */
	Crm__OpportunityList mine = CRM__OPPORTUNITY_LIST__INIT;
	mine.status = (char *)"open";
	mine.limit = 1000;
	req.opportunity_list = &mine;
	e = it_call(c2, &req);
	bool none_of_c1 = ok_reply(e);
	for (size_t i = 0; none_of_c1 && i < e->opportunity_page->n_opportunities; i++)
		none_of_c1 = strcmp(e->opportunity_page->opportunities[i]->id, oid) != 0;
	CHECK(none_of_c1);
	it_free(e);
}

/* crmd's own role sees none of another store's sales rows (row-level
 * security under the handlers' checks). */
static void test_row_level_security(void)
{
	CHECK(db_long("SELECT count(*) FROM pg_class WHERE relname IN ('opportunities',"
		      " 'opportunity_stages', 'orders', 'test_drives') AND relrowsecurity"
		      " AND relforcerowsecurity AND relnamespace = 'crm'::regnamespace AND $1 = $1",
		      "x") == 4);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 2, .tm_hour = 2};
	t0 = (int64_t)timegm(&tm) * 1000;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(vin1, sizeof vin1, "LFV3A23C0K5%06d", rand() % 1000000);
	snprintf(vin2, sizeof vin2, "LFV3A23C0K6%06d", rand() % 1000000);
	CHECK(it_add_user(db, "sa.consultant1", "萨一", "consultant", "GZ01", PASSWORD));
	CHECK(it_add_user(db, "sa.consultant2", "萨二", "consultant", "GZ01", PASSWORD));
	struct crmc *c1 = login_user("sa.consultant1");
	struct crmc *c2 = login_user("sa.consultant2");
	struct crmc *other = it_login_demo("consultant", "SH01");
	struct crmc *analyst = it_login_demo("group_analyst", NULL);
	if (!c1 || !c2 || !other || !analyst)
		return 1;
	test_opportunity_stages_and_history(c1);
	test_lost_needs_a_reason(c1);
	test_test_drive_moves_the_opportunity(c1);
	test_order_place_deliver(c1);
	test_order_cancel(c1);
	test_stale_plan_is_refused(c1);
	test_scope(c1, c2, other, analyst);
	test_row_level_security();
	crmc_close(c1);
	crmc_close(c2);
	crmc_close(other);
	crmc_close(analyst);
	PQfinish(db);
	return it_summary();
}
