/* After-sales: vehicles, service visits, base customers, maintenance
 * reminders and value classes (issue 6; sql/0017).
 *
 * Each request is one SQL call; the database encodes the outbox payloads
 * of vehicles and visits itself (crm.vehicle_payload, crm.visit_payload),
 * because order delivery (sql/0018) registers vehicles inside its own
 * write where crmd packs nothing. Reminder tasks travel as 'task' changes
 * like the cadence's. Base classes are computed at the time a request
 * names (tests pass a fixed clock); value classes are stored with the time
 * of their computation.
 *
 * crmd runs the reminders and the value classes of every store once per
 * service.daily_run_s (0: never), first at service.daily_hour (nightly),
 * through crm.service_daily, with no session: the SQL side does what the
 * policy says, for every store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h_records.h"
#include "log.h"
#include "stmts.h"

#define VEHICLE_NCOLS 11
#define VISIT_NCOLS 13
#define BASE_NCOLS 14
#define TASK_VIEW_NCOLS 23 /* crm.task_view: the TASK columns, store_id, owner_id, due_at */
/* A visit may be recorded a little after the fact, never ahead. */
#define VISIT_FUTURE_SLACK_MS (5 * 60 * 1000)

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

static bool limit_ok(struct request *r, uint32_t limit, uint32_t dflt, char out[16])
{
	if (limit > 1000) {
		invalid(r, "limit", "limit must be from 1 to 1000");
		return false;
	}
	snprintf(out, 16, "%u", limit ? limit : dflt);
	return true;
}

static bool is_true(const PGresult *res, int row, int col)
{
	return !strcmp(PQgetvalue(res, row, col), "t");
}

/* ------------------------------------------------------------ readers */

static void row_to_vehicle(const PGresult *res, int row, int col, Crm__Vehicle *v)
{
	crm__vehicle__init(v);
	v->id = PQgetvalue(res, row, col);
	v->customer_id = PQgetvalue(res, row, col + 1);
	v->customer_name = PQgetvalue(res, row, col + 2);
	v->store_code = PQgetvalue(res, row, col + 3);
	v->vin = PQgetvalue(res, row, col + 4);
	v->model = PQgetvalue(res, row, col + 5);
	v->plate = PQgetvalue(res, row, col + 6);
	v->purchased_on = PQgetvalue(res, row, col + 7);
	v->created_at = col_i64(res, row, col + 8);
	v->created_by = PQgetvalue(res, row, col + 9);
	v->version = (uint64_t)col_i64(res, row, col + 10);
}

static void row_to_visit(const PGresult *res, int row, int col, Crm__ServiceVisit *v)
{
	crm__service_visit__init(v);
	v->id = PQgetvalue(res, row, col);
	v->vehicle_id = PQgetvalue(res, row, col + 1);
	v->vin = PQgetvalue(res, row, col + 2);
	v->customer_id = PQgetvalue(res, row, col + 3);
	v->store_code = PQgetvalue(res, row, col + 4);
	v->at = col_i64(res, row, col + 5);
	v->mileage = (uint32_t)col_i64(res, row, col + 6);
	v->type = PQgetvalue(res, row, col + 7);
	v->amount = col_i64(res, row, col + 8);
	v->note = PQgetvalue(res, row, col + 9);
	v->by = PQgetvalue(res, row, col + 10);
	v->created_at = col_i64(res, row, col + 11);
	v->returned = is_true(res, row, col + 12);
}

static void row_to_base(const PGresult *res, int row, int col, Crm__BaseCustomer *b)
{
	crm__base_customer__init(b);
	b->customer_id = PQgetvalue(res, row, col);
	b->customer_name = PQgetvalue(res, row, col + 1);
	b->store_code = PQgetvalue(res, row, col + 2);
	b->visits = (uint32_t)col_i64(res, row, col + 3);
	b->visits_12m = (uint32_t)col_i64(res, row, col + 4);
	b->last_visit_at = col_i64(res, row, col + 5);
	b->archived = is_true(res, row, col + 6);
	b->active = is_true(res, row, col + 7);
	b->loyal = is_true(res, row, col + 8);
	b->lost = is_true(res, row, col + 9);
	b->returned_at = col_i64(res, row, col + 10);
	b->value_class = PQgetvalue(res, row, col + 11);
	b->spend_12m = col_i64(res, row, col + 12);
	b->value_computed_at = col_i64(res, row, col + 13);
}

/* The TASK columns of stmts.h at `col` (the reminders' tasks). */
/* An array of `n` pointers to `n` zeroed items of `size` in `sc`. */
static void **items_alloc(struct scratch *sc, size_t n, size_t size)
{
	size_t k = n ? n : 1;
	char *items = scratch_alloc(sc, k * size);
	void **ptrs = scratch_alloc(sc, k * sizeof *ptrs);
	if (!items || !ptrs)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ptrs[i] = items + i * size;
	return ptrs;
}

static void fail_oom(struct request *r, struct scratch *sc)
{
	scratch_free(sc);
	req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
}

/* ------------------------------------------------------------ vehicles */

static void on_vehicle_added(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 1 + VEHICLE_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such vehicle");
		return;
	}
	Crm__Vehicle v;
	row_to_vehicle(res, 0, 1, &v);
	Crm__VehicleReply vr = CRM__VEHICLE_REPLY__INIT;
	vr.vehicle = &v;
	vr.existed = is_true(res, 0, 0);
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_VEHICLE_REPLY;
	resp.vehicle_reply = &vr;
	req_reply(r, &resp);
}

void h_vehicle_add(struct request *r)
{
	const Crm__Vehicle *v = r->env->vehicle_add->vehicle;
	if (!v) {
		invalid(r, "vehicle", "vehicle is required");
		return;
	}
	if (!uuid_ok(r, "vehicle.id", v->id, true) ||
	    !uuid_ok(r, "vehicle.customer_id", v->customer_id, true) ||
	    !text_ok(r, "vehicle.vin", v->vin, 40, true) ||
	    !text_ok(r, "vehicle.model", v->model, 100, true) ||
	    !text_ok(r, "vehicle.plate", v->plate, 40, false) ||
	    !text_ok(r, "vehicle.store_code", v->store_code, 16, false) ||
	    !text_ok(r, "vehicle.purchased_on", v->purchased_on, 10, false))
		return;
	char at[24];
	fmt_i64(at, sizeof at, now_ms());
	const char *params[] = {r->conn->session.session_id, v->id, v->customer_id, v->store_code,
				v->vin, v->model, v->plate, v->purchased_on, at};
	req_db(r, STMT_VEHICLE_ADD, 9, params, NULL, NULL, on_vehicle_added);
}

static void on_vehicles_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, VEHICLE_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Vehicle **ptrs = (Crm__Vehicle **)items_alloc(&sc, (size_t)rows, sizeof(Crm__Vehicle));
	if (!ptrs) {
		fail_oom(r, &sc);
		return;
	}
	for (int i = 0; i < rows; i++)
		row_to_vehicle(res, i, 0, ptrs[i]);
	Crm__VehiclePage page = CRM__VEHICLE_PAGE__INIT;
	page.vehicles = ptrs;
	page.n_vehicles = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_VEHICLE_PAGE;
	resp.vehicle_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_vehicle_list(struct request *r)
{
	const Crm__VehicleList *in = r->env->vehicle_list;
	char limit[16];
	if (!uuid_ok(r, "id", in->id, false) || !uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "vin", in->vin, 40, false) || !text_ok(r, "plate", in->plate, 40, false) ||
	    !limit_ok(r, in->limit, 100, limit))
		return;
	if (!*in->id && !*in->vin && !*in->customer_id && !*in->plate) {
		invalid(r, "customer_id", "give a customer_id, vin, plate or id");
		return;
	}
	const char *params[] = {r->conn->session.session_id, in->id, in->customer_id, in->vin,
				in->plate, limit};
	req_db(r, STMT_VEHICLE_LIST, 6, params, NULL, NULL, on_vehicles_listed);
}

/* ------------------------------------------------------------ visits */

static void on_visit_added(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 1 + VISIT_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__PERMISSION_DENIED, NULL,
			 "this visit id belongs to a visit you may not see");
		return;
	}
	Crm__ServiceVisit v;
	row_to_visit(res, 0, 1, &v);
	Crm__VisitReply vr = CRM__VISIT_REPLY__INIT;
	vr.visit = &v;
	vr.existed = is_true(res, 0, 0);
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_VISIT_REPLY;
	resp.visit_reply = &vr;
	req_reply(r, &resp);
}

void h_visit_add(struct request *r)
{
	Crm__ServiceVisit *v = r->env->visit_add->visit;
	if (!v) {
		invalid(r, "visit", "visit is required");
		return;
	}
	static const char *const types[] = {"maintenance", "repair", "warranty", "accident", NULL};
	if (!uuid_ok(r, "visit.id", v->id, true) ||
	    !uuid_ok(r, "visit.vehicle_id", v->vehicle_id, true) ||
	    !text_ok(r, "visit.note", v->note, 500, false))
		return;
	bool type_ok = false;
	for (const char *const *t = types; *t; t++)
		type_ok = type_ok || !strcmp(v->type, *t);
	if (!type_ok) {
		invalid(r, "visit.type", "visit.type must be maintenance, repair, warranty or accident");
		return;
	}
	int64_t now = now_ms();
	if (v->at == 0)
		v->at = now;
	if (v->at < 0 || v->at > now + VISIT_FUTURE_SLACK_MS) {
		invalid(r, "visit.at", "visit.at must be a time in unix milliseconds, not in the future");
		return;
	}
	if (v->mileage > 2000000) {
		invalid(r, "visit.mileage", "visit.mileage must be from 0 to 2,000,000 km");
		return;
	}
	if (v->amount < 0 || v->amount > 100000000000LL) {
		invalid(r, "visit.amount", "visit.amount must be from 0 to 1,000,000,000 yuan, in fen");
		return;
	}
	char at[24], mileage[16], amount[24], write_at[24];
	fmt_i64(at, sizeof at, v->at);
	snprintf(mileage, sizeof mileage, "%u", v->mileage);
	fmt_i64(amount, sizeof amount, v->amount);
	fmt_i64(write_at, sizeof write_at, now);
	const char *params[] = {r->conn->session.session_id, v->id, v->vehicle_id, at, mileage,
				v->type, amount, v->note, write_at};
	req_db(r, STMT_VISIT_ADD, 9, params, NULL, NULL, on_visit_added);
}

static void on_visits_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, VISIT_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__ServiceVisit **ptrs =
		(Crm__ServiceVisit **)items_alloc(&sc, (size_t)rows, sizeof(Crm__ServiceVisit));
	if (!ptrs) {
		fail_oom(r, &sc);
		return;
	}
	for (int i = 0; i < rows; i++)
		row_to_visit(res, i, 0, ptrs[i]);
	Crm__VisitPage page = CRM__VISIT_PAGE__INIT;
	page.visits = ptrs;
	page.n_visits = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_VISIT_PAGE;
	resp.visit_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_visit_list(struct request *r)
{
	const Crm__VisitList *in = r->env->visit_list;
	char limit[16];
	if (!uuid_ok(r, "vehicle_id", in->vehicle_id, false) ||
	    !uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false) ||
	    !limit_ok(r, in->limit, 50, limit))
		return;
	const char *params[] = {r->conn->session.session_id, in->vehicle_id, in->customer_id,
				in->store_code, limit};
	req_db(r, STMT_VISIT_LIST, 5, params, NULL, NULL, on_visits_listed);
}

/* ------------------------------------------------------------ base customers */

static void on_base_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 1 + BASE_NCOLS + 4))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__BaseCustomer **ptrs =
		(Crm__BaseCustomer **)items_alloc(&sc, (size_t)rows, sizeof(Crm__BaseCustomer));
	if (!ptrs) {
		fail_oom(r, &sc);
		return;
	}
	Crm__BasePage page = CRM__BASE_PAGE__INIT;
	for (int i = 0; i < rows; i++) {
		if (!strcmp(PQgetvalue(res, i, 0), "counts")) {
			page.archived = (uint32_t)col_i64(res, i, 1 + BASE_NCOLS);
			page.active = (uint32_t)col_i64(res, i, 2 + BASE_NCOLS);
			page.loyal = (uint32_t)col_i64(res, i, 3 + BASE_NCOLS);
			page.lost = (uint32_t)col_i64(res, i, 4 + BASE_NCOLS);
			continue;
		}
		row_to_base(res, i, 1, ptrs[page.n_customers++]);
	}
	page.customers = ptrs;
	page.at = r->env->base_list->at;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_BASE_PAGE;
	resp.base_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_base_list(struct request *r)
{
	Crm__BaseList *in = r->env->base_list;
	static const char *const classes[] = {"", "archived", "active", "loyal", "lost", NULL};
	bool class_ok = false;
	for (const char *const *c = classes; *c; c++)
		class_ok = class_ok || !strcmp(in->class_, *c);
	if (!class_ok) {
		invalid(r, "class", "class must be archived, active, loyal or lost");
		return;
	}
	char limit[16];
	if (!uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false) ||
	    !limit_ok(r, in->limit, 200, limit))
		return;
	if (in->at < 0) {
		invalid(r, "at", "at must be a time in unix milliseconds");
		return;
	}
	if (in->at == 0)
		in->at = now_ms();
	char at[24];
	fmt_i64(at, sizeof at, in->at);
	const char *params[] = {r->conn->session.session_id, in->class_, in->store_code,
				in->customer_id, at, limit};
	req_db(r, STMT_BASE_LIST, 6, params, NULL, NULL, on_base_listed);
}

/* ------------------------------------------------------------ reminders */

static void on_reminders_run(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 2 + TASK_VIEW_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Task **ptrs = (Crm__Task **)items_alloc(&sc, (size_t)rows, sizeof(Crm__Task));
	if (!ptrs) {
		fail_oom(r, &sc);
		return;
	}
	Crm__RemindersReply rr = CRM__REMINDERS_REPLY__INIT;
	for (int i = 0; i < rows; i++) {
		const char *outcome = PQgetvalue(res, i, 0);
		rr.due++;
		if (!strcmp(outcome, "open"))
			rr.already_open++;
		else if (!strcmp(outcome, "no_relation"))
			rr.no_relation++;
		else if (!PQgetisnull(res, i, 2)) {
			Crm__Task *t = ptrs[rr.n_tasks++];
			row_to_task(res, i, 2, t);
			t->outcome = "open";
		}
	}
	rr.tasks = ptrs;
	rr.at = r->env->reminders_run->at;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_REMINDERS_REPLY;
	resp.reminders_reply = &rr;
	req_reply(r, &resp);
	scratch_free(&sc);
}

/* reminders.run and value.recompute: a store ("" every store the caller
 * may run) at a time (0 now), one statement. */
static void run_for_store(struct request *r, const char *store_code, int64_t *at, int stmt,
			  pool_cb done)
{
	if (!text_ok(r, "store_code", store_code, 16, false))
		return;
	if (*at < 0) {
		invalid(r, "at", "at must be a time in unix milliseconds");
		return;
	}
	if (*at == 0)
		*at = now_ms();
	char at_s[24];
	fmt_i64(at_s, sizeof at_s, *at);
	const char *params[] = {r->conn->session.session_id, store_code, at_s};
	req_db(r, stmt, 3, params, NULL, NULL, done);
}

void h_reminders_run(struct request *r)
{
	Crm__RemindersRun *in = r->env->reminders_run;
	run_for_store(r, in->store_code, &in->at, STMT_REMINDERS_RUN, on_reminders_run);
}

/* ------------------------------------------------------------ value classes */

static void on_value_recomputed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 5))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__ValueClassCounts **ptrs =
		(Crm__ValueClassCounts **)items_alloc(&sc, (size_t)rows, sizeof(Crm__ValueClassCounts));
	if (!ptrs) {
		fail_oom(r, &sc);
		return;
	}
	for (int i = 0; i < rows; i++) {
		Crm__ValueClassCounts *k = ptrs[i];
		crm__value_class_counts__init(k);
		k->store_code = PQgetvalue(res, i, 0);
		k->a = (uint32_t)col_i64(res, i, 1);
		k->b = (uint32_t)col_i64(res, i, 2);
		k->c = (uint32_t)col_i64(res, i, 3);
	}
	Crm__ValueReply vr = CRM__VALUE_REPLY__INIT;
	vr.stores = ptrs;
	vr.n_stores = (size_t)rows;
	vr.computed_at = r->env->value_recompute->at;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_VALUE_REPLY;
	resp.value_reply = &vr;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_value_recompute(struct request *r)
{
	Crm__ValueRecompute *in = r->env->value_recompute;
	run_for_store(r, in->store_code, &in->at, STMT_VALUE_RECOMPUTE, on_value_recomputed);
}

/* ------------------------------------------------------------ policy */

static void on_service_policy(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 10))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__ServicePolicy **ptrs =
		(Crm__ServicePolicy **)items_alloc(&sc, (size_t)rows, sizeof(Crm__ServicePolicy));
	if (!ptrs) {
		fail_oom(r, &sc);
		return;
	}
	for (int i = 0; i < rows; i++) {
		Crm__ServicePolicy *p = ptrs[i];
		crm__service_policy__init(p);
		p->brand = PQgetvalue(res, i, 0);
		p->lost_after_months = (uint32_t)col_i64(res, i, 1);
		p->loyal_visits = (uint32_t)col_i64(res, i, 2);
		p->reminder_months = (uint32_t)col_i64(res, i, 3);
		p->reminder_km = (uint32_t)col_i64(res, i, 4);
		p->reminder_lead_days = (uint32_t)col_i64(res, i, 5);
		p->value_a_pct = strtod(PQgetvalue(res, i, 6), NULL);
		p->value_b_pct = strtod(PQgetvalue(res, i, 7), NULL);
		p->updated_at = col_i64(res, i, 8);
		p->updated_by = PQgetvalue(res, i, 9);
	}
	Crm__ServicePolicies sp = CRM__SERVICE_POLICIES__INIT;
	sp.policies = ptrs;
	sp.n_policies = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_SERVICE_POLICIES;
	resp.service_policies = &sp;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_service_policy_get(struct request *r)
{
	const char *params[] = {r->conn->session.session_id};
	req_db(r, STMT_SERVICE_POLICY_GET, 1, params, NULL, NULL, on_service_policy);
}

/* The numbers' ranges are checked by crm.service_policy_set, which names
 * the field; here only what must hold to send them. */
void h_service_policy_set(struct request *r)
{
	const Crm__ServicePolicySet *in = r->env->service_policy_set;
	const Crm__ServicePolicy *p = in->policy;
	if (!p) {
		invalid(r, "policy", "policy is required");
		return;
	}
	if (!text_ok(r, "policy.brand", p->brand, 50, false))
		return;
	if (!(p->value_a_pct >= 0 && p->value_a_pct <= 100) ||
	    !(p->value_b_pct >= 0 && p->value_b_pct <= 100)) {
		invalid(r, "policy.value_a_pct", "value_a_pct and value_b_pct must be from 0 to 100");
		return;
	}
	char n[5][16], a[32], b[32];
	snprintf(n[0], sizeof n[0], "%u", p->lost_after_months);
	snprintf(n[1], sizeof n[1], "%u", p->loyal_visits);
	snprintf(n[2], sizeof n[2], "%u", p->reminder_months);
	snprintf(n[3], sizeof n[3], "%u", p->reminder_km);
	snprintf(n[4], sizeof n[4], "%u", p->reminder_lead_days);
	snprintf(a, sizeof a, "%.2f", p->value_a_pct);
	snprintf(b, sizeof b, "%.2f", p->value_b_pct);
	const char *params[] = {r->conn->session.session_id, p->brand, in->remove ? "true" : "false",
				n[0], n[1], n[2], n[3], n[4], a, b};
	req_db(r, STMT_SERVICE_POLICY_SET, 10, params, NULL, NULL, on_service_policy);
}

/* ------------------------------------------------------------ the daily run */

/* The timer is unreferenced: it never keeps the loop alive. A run still
 * in the database when crmd drains finishes there; its callback is not
 * waited for. */
static uv_timer_t service_timer;
static bool service_timer_open;
static bool service_running;

static void on_service_daily(void *arg, const PGresult *res, const struct pool_error *err)
{
	(void)arg;
	service_running = false;
	if (err->code != CRM__CODE__OK) {
		log_warn("service.daily_failed", "reason=\"%s\"", err->message);
		return;
	}
	if (PQntuples(res) == 1 && PQnfields(res) == 3)
		log_info("service.daily", "stores=%s tasks_created=%s classified=%s",
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
}

static void service_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	if (service_running || !srv->pool || srv->draining)
		return;
	service_running = true;
	char at[24];
	fmt_i64(at, sizeof at, now_ms());
	const char *params[] = {at};
	pool_exec(srv->pool, STMT_SERVICE_DAILY, 1, params, NULL, NULL, on_service_daily, srv);
}

/* Milliseconds from now to the next `hour`:00 local time. */
static uint64_t ms_to_hour(int hour)
{
	time_t now = time(NULL);
	struct tm tm;
	if (!localtime_r(&now, &tm))
		return 3600000;
	tm.tm_hour = hour;
	tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	time_t at = mktime(&tm);
	if (at <= now) {
		tm.tm_mday++;
		tm.tm_isdst = -1;
		at = mktime(&tm);
	}
	return at > now ? (uint64_t)(at - now) * 1000 : 3600000;
}

void service_timer_start(struct server *srv)
{
	uint64_t every = (uint64_t)srv->cfg->service_daily_run_s * 1000;
	if (!every)
		return;
	uv_timer_init(srv->loop, &service_timer);
	service_timer.data = srv;
	service_timer_open = true;
	/* The first run at service.daily_hour, else an hour after start (never
	 * at once: a restart loop must not run it each time), then every
	 * period. */
	int hour = srv->cfg->service_daily_hour;
	uint64_t first = hour >= 0 ? ms_to_hour(hour) : every < 3600000 ? every : 3600000;
	uv_timer_start(&service_timer, service_tick, first, every);
	uv_unref((uv_handle_t *)&service_timer);
	log_info("service.timer", "first_in_s=%llu every_s=%d", (unsigned long long)(first / 1000),
		 srv->cfg->service_daily_run_s);
}

void service_timer_stop(void)
{
	if (!service_timer_open)
		return;
	service_timer_open = false;
	uv_timer_stop(&service_timer);
	uv_close((uv_handle_t *)&service_timer, NULL);
}
