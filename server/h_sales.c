/* Sales: opportunities, orders and test drives on a store relation
 * (issue 6; sql/0018).
 *
 * Opportunities and test drives touch no relation: one statement writes
 * them, and the database encodes them for the outbox itself.
 *
 * An order write moves the relation's level (O, D, T) and with it the
 * cadence policy's tasks, so it runs in two steps like level.set: the plan
 * (STMT_ORDER_WRITE with plan = true: the whole write, rolled back) shows
 * the relation as the write will leave it; crmd packs that relation and
 * runs the write, which refuses (CONFLICT, nothing written) when the
 * relation comes out at another version or next follow-up. The plan's
 * write time (the order's updated_at) is the write's, so the packed record
 * is the stored one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

#define OPPORTUNITY_NCOLS 18
#define ORDER_NCOLS 21
#define TEST_DRIVE_NCOLS 12
/* STMT_ORDER_WRITE rows: outcome, rel_changed, ORDER, OPPORTUNITY, relation. */
#define OW_COL_ORDER 2
#define OW_COL_OPP (OW_COL_ORDER + ORDER_NCOLS)
#define OW_COL_REL (OW_COL_OPP + OPPORTUNITY_NCOLS)
#define OW_NCOLS (OW_COL_REL + RELATION_VIEW_NCOLS)
#define ORDER_COL_UPDATED_AT 20
/* STMT_TEST_DRIVE_ADD rows: outcome, TEST_DRIVE, OPPORTUNITY. */
#define TD_COL_OPP (1 + TEST_DRIVE_NCOLS)
/* An event may be recorded after the fact, never ahead. */
#define FUTURE_SLACK_MS (5 * 60 * 1000)
/* 10 billion yuan: far above any car, far below int64. */
#define MONEY_MAX_FEN 1000000000000ULL
#define STALE_FMT "the %s was changed meanwhile (version %llu, you read %llu); reload it and try again"

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

static const char *const stages[] = {"prospecting", "reception", "needs_analysis",
				     "presentation", "test_drive", "negotiation",
				     "deal", "delivery", "post_sale", NULL};
static const char *const defeat_reasons[] = {"competitor", "price", "postponed", "unreachable",
					     "other", NULL};

/* `*at` 0 becomes now; a time ahead of now (beyond a little slack) or
 * before 1970 is refused. */
static bool at_ok(struct request *r, const char *field, int64_t *at)
{
	int64_t now = now_ms();
	if (*at == 0)
		*at = now;
	if (*at < 0 || *at > now + FUTURE_SLACK_MS) {
		invalid(r, field, "%s must be a time in unix milliseconds, not in the future", field);
		return false;
	}
	return true;
}

static bool version_ok(struct request *r, uint64_t version)
{
	if (version == 0 || version > INT64_MAX) {
		invalid(r, "version", "version is required: the version you read");
		return false;
	}
	return true;
}

static void out_of_memory(struct request *r)
{
	req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
}

/* ------------------------------------------------------------ readers */

static uint64_t col_u64(const PGresult *res, int row, int col)
{
	int64_t v = col_i64(res, row, col);
	return v > 0 ? (uint64_t)v : 0;
}

/* The history text (changes by U+001F, fields by U+001E) as StageChange
 * records in `s`. False when out of memory. */
static bool history_fill(Crm__Opportunity *o, const char *text, struct scratch *s)
{
	o->n_history = 0;
	o->history = NULL;
	if (!text || !*text)
		return true;
	size_t len = strlen(text), n = 1;
	for (size_t i = 0; i < len; i++)
		n += text[i] == LIST_SEP;
	char *copy = scratch_alloc(s, len + 1);
	Crm__StageChange *items = scratch_alloc(s, n * sizeof *items);
	Crm__StageChange **ptrs = scratch_alloc(s, n * sizeof *ptrs);
	if (!copy || !items || !ptrs)
		return false;
	memcpy(copy, text, len + 1);
	char *p = copy;
	for (size_t k = 0; k < n; k++) {
		char *end = strchr(p, LIST_SEP);
		if (end)
			*end = '\0';
		char *f[4] = {p, "", "", ""};
		for (int j = 1; j < 4; j++) {
			char *sep = strchr(f[j - 1], FIELD_SEP);
			if (!sep)
				break;
			*sep = '\0';
			f[j] = sep + 1;
		}
		crm__stage_change__init(&items[k]);
		items[k].from_stage = f[0];
		items[k].to_stage = f[1];
		items[k].by = f[2];
		items[k].at = strtoll(f[3], NULL, 10);
		ptrs[k] = &items[k];
		p = end ? end + 1 : p + strlen(p);
	}
	o->history = ptrs;
	o->n_history = n;
	return true;
}

static bool row_to_opportunity(const PGresult *res, int row, int col, Crm__Opportunity *o,
			       struct scratch *s)
{
	crm__opportunity__init(o);
	o->id = PQgetvalue(res, row, col);
	o->relation_id = PQgetvalue(res, row, col + 1);
	o->customer_id = PQgetvalue(res, row, col + 2);
	o->store_code = PQgetvalue(res, row, col + 3);
	o->stage = PQgetvalue(res, row, col + 4);
	o->status = PQgetvalue(res, row, col + 5);
	o->model = PQgetvalue(res, row, col + 6);
	o->expected_price_fen = col_u64(res, row, col + 7);
	o->defeat_reason = PQgetvalue(res, row, col + 8);
	o->defeat_text = PQgetvalue(res, row, col + 9);
	o->competitor_brand = PQgetvalue(res, row, col + 10);
	o->version = col_u64(res, row, col + 11);
	o->opened_at = col_i64(res, row, col + 12);
	o->closed_at = col_i64(res, row, col + 13);
	o->created_at = col_i64(res, row, col + 14);
	o->updated_at = col_i64(res, row, col + 15);
	o->created_by = PQgetvalue(res, row, col + 16);
	return history_fill(o, PQgetvalue(res, row, col + 17), s);
}

static void row_to_order(const PGresult *res, int row, int col, Crm__SalesOrder *o)
{
	crm__sales_order__init(o);
	o->id = PQgetvalue(res, row, col);
	o->relation_id = PQgetvalue(res, row, col + 1);
	o->customer_id = PQgetvalue(res, row, col + 2);
	o->store_code = PQgetvalue(res, row, col + 3);
	o->opportunity_id = PQgetvalue(res, row, col + 4);
	o->model = PQgetvalue(res, row, col + 5);
	o->configuration = PQgetvalue(res, row, col + 6);
	o->price_fen = col_u64(res, row, col + 7);
	o->deposit_fen = col_u64(res, row, col + 8);
	o->status = PQgetvalue(res, row, col + 9);
	o->placed_at = col_i64(res, row, col + 10);
	o->delivered_at = col_i64(res, row, col + 11);
	o->cancelled_at = col_i64(res, row, col + 12);
	o->cancel_reason = PQgetvalue(res, row, col + 13);
	o->vin = PQgetvalue(res, row, col + 14);
	o->plate = PQgetvalue(res, row, col + 15);
	o->vehicle_id = PQgetvalue(res, row, col + 16);
	o->version = col_u64(res, row, col + 17);
	o->created_by = PQgetvalue(res, row, col + 18);
	o->created_at = col_i64(res, row, col + 19);
	o->updated_at = col_i64(res, row, col + 20);
}

static void row_to_test_drive(const PGresult *res, int row, int col, Crm__TestDrive *t)
{
	crm__test_drive__init(t);
	t->id = PQgetvalue(res, row, col);
	t->relation_id = PQgetvalue(res, row, col + 1);
	t->customer_id = PQgetvalue(res, row, col + 2);
	t->store_code = PQgetvalue(res, row, col + 3);
	t->opportunity_id = PQgetvalue(res, row, col + 4);
	t->model = PQgetvalue(res, row, col + 5);
	t->consultant = PQgetvalue(res, row, col + 6);
	t->consultant_name = PQgetvalue(res, row, col + 7);
	t->at = col_i64(res, row, col + 8);
	t->note = PQgetvalue(res, row, col + 9);
	t->created_by = PQgetvalue(res, row, col + 10);
	t->created_at = col_i64(res, row, col + 11);
}

/* Envelope with status CONFLICT and `message` when `conflict`. */
static void reply_body(struct request *r, Crm__Envelope *resp, bool conflict, const char *message)
{
	Crm__Status st = CRM__STATUS__INIT;
	if (conflict) {
		st.code = CRM__CODE__CONFLICT;
		st.message = (char *)message;
		resp->status = &st;
	}
	req_reply(r, resp);
}

/* ------------------------------------------------------------ opportunities */

static void on_opportunity_written(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 1 + OPPORTUNITY_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such opportunity");
		return;
	}
	struct scratch sc = {0};
	Crm__Opportunity o;
	if (!row_to_opportunity(res, 0, 1, &o, &sc)) {
		scratch_free(&sc);
		out_of_memory(r);
		return;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	bool stale = !strcmp(outcome, "stale");
	char msg[200] = "";
	if (stale) {
		uint64_t read = r->env->body_case == CRM__ENVELOPE__BODY_OPPORTUNITY_STAGE
					? r->env->opportunity_stage->version
					: r->env->opportunity_lose->version;
		snprintf(msg, sizeof msg, STALE_FMT, "opportunity", (unsigned long long)o.version,
			 (unsigned long long)read);
	}
	Crm__OpportunityReply reply = CRM__OPPORTUNITY_REPLY__INIT;
	reply.opportunity = &o;
	reply.existed = !strcmp(outcome, "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_REPLY;
	resp.opportunity_reply = &reply;
	reply_body(r, &resp, stale, msg);
	scratch_free(&sc);
}

/* Runs STMT_OPPORTUNITY_WRITE; NULL strings are sent as "". */
static void opportunity_write(struct request *r, const char *action, const char *id,
			      uint64_t version, const char *relation_id, const char *stage,
			      const char *model, uint64_t price, const char *reason,
			      const char *text, const char *brand, int64_t at)
{
	char version_s[24], price_s[24], at_s[24], write_s[24];
	fmt_i64(version_s, sizeof version_s, (int64_t)version);
	fmt_i64(price_s, sizeof price_s, (int64_t)price);
	fmt_i64(at_s, sizeof at_s, at);
	fmt_i64(write_s, sizeof write_s, now_ms());
	const char *params[] = {r->conn->session.session_id, action, id, version_s,
				relation_id ? relation_id : "", stage ? stage : "",
				model ? model : "", price_s, reason ? reason : "",
				text ? text : "", brand ? brand : "", at_s, write_s};
	req_db(r, STMT_OPPORTUNITY_WRITE, 13, params, NULL, NULL, on_opportunity_written);
}

void h_opportunity_add(struct request *r)
{
	Crm__OpportunityAdd *in = r->env->opportunity_add;
	Crm__Opportunity *o = in->opportunity;
	if (!o) {
		invalid(r, "opportunity", "opportunity is required");
		return;
	}
	if (!uuid_ok(r, "opportunity.id", o->id, true) ||
	    !uuid_ok(r, "opportunity.relation_id", o->relation_id, true) ||
	    !text_ok(r, "opportunity.model", o->model, 100, false) || !at_ok(r, "at", &in->at))
		return;
	if (*o->stage && !one_of(o->stage, stages)) {
		invalid(r, "opportunity.stage",
			"opportunity.stage must be one of prospecting, reception, needs_analysis,"
			" presentation, test_drive, negotiation");
		return;
	}
	if (o->expected_price_fen > MONEY_MAX_FEN) {
		invalid(r, "opportunity.expected_price_fen",
			"opportunity.expected_price_fen is out of range (fen)");
		return;
	}
	opportunity_write(r, "add", o->id, 0, o->relation_id, o->stage, o->model,
			  o->expected_price_fen, NULL, NULL, NULL, in->at);
}

void h_opportunity_stage(struct request *r)
{
	Crm__OpportunityStage *in = r->env->opportunity_stage;
	if (!uuid_ok(r, "id", in->id, true) || !version_ok(r, in->version) ||
	    !at_ok(r, "at", &in->at))
		return;
	if (!one_of(in->stage, stages)) {
		invalid(r, "stage",
			"stage must be one of prospecting, reception, needs_analysis, presentation,"
			" test_drive, negotiation, deal, delivery, post_sale");
		return;
	}
	opportunity_write(r, "stage", in->id, in->version, NULL, in->stage, NULL, 0, NULL, NULL,
			  NULL, in->at);
}

void h_opportunity_lose(struct request *r)
{
	Crm__OpportunityLose *in = r->env->opportunity_lose;
	if (!uuid_ok(r, "id", in->id, true) || !version_ok(r, in->version) ||
	    !at_ok(r, "at", &in->at))
		return;
	if (!one_of(in->reason, defeat_reasons)) {
		invalid(r, "reason",
			"a lost opportunity needs its defeat reason: competitor, price, postponed,"
			" unreachable or other");
		return;
	}
	if (!text_ok(r, "text", in->text, 500, !strcmp(in->reason, "other")) ||
	    !text_ok(r, "competitor_brand", in->competitor_brand, 50, false))
		return;
	opportunity_write(r, "lose", in->id, in->version, NULL, NULL, NULL, 0, in->reason, in->text,
			  in->competitor_brand, in->at);
}

static void on_opportunities_listed(void *arg, const PGresult *res,
				    const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, OPPORTUNITY_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Opportunity *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Opportunity **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	bool ok = items && ptrs;
	for (int i = 0; ok && i < rows; i++) {
		ok = row_to_opportunity(res, i, 0, &items[i], &sc);
		ptrs[i] = &items[i];
	}
	if (!ok) {
		scratch_free(&sc);
		out_of_memory(r);
		return;
	}
	if (rows == 0 && *r->env->opportunity_list->id) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such opportunity");
		return;
	}
	Crm__OpportunityPage page = CRM__OPPORTUNITY_PAGE__INIT;
	page.opportunities = ptrs;
	page.n_opportunities = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_PAGE;
	resp.opportunity_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

/* The filters every sales list shares. */
static bool list_filters_ok(struct request *r, const char *id, const char *relation_id,
			    const char *customer_id, uint32_t limit)
{
	if (!uuid_ok(r, "id", id, false) || !uuid_ok(r, "relation_id", relation_id, false) ||
	    !uuid_ok(r, "customer_id", customer_id, false))
		return false;
	if ((*id != '\0') + (*relation_id != '\0') + (*customer_id != '\0') > 1) {
		invalid(r, "id", "give at most one of id, relation_id and customer_id");
		return false;
	}
	if (limit > 1000) {
		invalid(r, "limit", "limit must be from 1 to 1000");
		return false;
	}
	return true;
}

void h_opportunity_list(struct request *r)
{
	const Crm__OpportunityList *in = r->env->opportunity_list;
	static const char *const statuses[] = {"", "open", "won", "lost", NULL};
	if (!list_filters_ok(r, in->id, in->relation_id, in->customer_id, in->limit))
		return;
	if (!one_of(in->status, statuses)) {
		invalid(r, "status", "status must be open, won or lost");
		return;
	}
	char limit[16];
	snprintf(limit, sizeof limit, "%u", in->limit ? in->limit : 50);
	const char *params[] = {r->conn->session.session_id, in->id, in->relation_id,
				in->customer_id, in->status, limit};
	req_db(r, STMT_OPPORTUNITY_LIST, 6, params, NULL, NULL, on_opportunities_listed);
}

/* ------------------------------------------------------------ orders */

/* Parameters $1..$19 of STMT_ORDER_WRITE for the request's action. */
struct order_params {
	char version[24], price[24], deposit[24], at[24], write_at[24], expect_version[24],
		expect_next[24];
	const char *v[19];
};

static void order_params_fill(struct request *r, struct order_params *p, bool plan,
			      int64_t write_at, uint64_t expect_version, int64_t expect_next)
{
	const char *action = "", *id = "", *relation_id = "", *opportunity_id = "", *model = "",
		   *configuration = "", *vin = "", *plate = "", *vehicle_id = "", *reason = "";
	uint64_t version = 0, price = 0, deposit = 0;
	int64_t at = 0;
	switch (r->env->body_case) {
	case CRM__ENVELOPE__BODY_ORDER_PLACE: {
		const Crm__SalesOrder *o = r->env->order_place->order;
		action = "place";
		id = o->id;
		relation_id = o->relation_id;
		opportunity_id = o->opportunity_id;
		model = o->model;
		configuration = o->configuration;
		price = o->price_fen;
		deposit = o->deposit_fen;
		at = o->placed_at;
		break;
	}
	case CRM__ENVELOPE__BODY_ORDER_DELIVER: {
		const Crm__OrderDeliver *d = r->env->order_deliver;
		action = "deliver";
		id = d->id;
		version = d->version;
		vin = d->vin;
		plate = d->plate;
		vehicle_id = d->vehicle_id;
		at = d->at;
		break;
	}
	default: {
		const Crm__OrderCancel *c = r->env->order_cancel;
		action = "cancel";
		id = c->id;
		version = c->version;
		reason = c->reason;
		at = c->at;
		break;
	}
	}
	fmt_i64(p->version, sizeof p->version, (int64_t)version);
	fmt_i64(p->price, sizeof p->price, (int64_t)price);
	fmt_i64(p->deposit, sizeof p->deposit, (int64_t)deposit);
	fmt_i64(p->at, sizeof p->at, at);
	fmt_i64(p->write_at, sizeof p->write_at, write_at);
	fmt_i64(p->expect_version, sizeof p->expect_version, (int64_t)expect_version);
	fmt_i64(p->expect_next, sizeof p->expect_next, expect_next);
	const char *v[19] = {
		r->conn->session.session_id, action, plan ? "true" : "false", id, p->version,
		relation_id, opportunity_id, model, configuration, p->price, p->deposit, vin, plate,
		vehicle_id, reason, p->at, p->write_at, plan ? NULL : p->expect_version,
		plan ? NULL : p->expect_next,
	};
	memcpy(p->v, v, sizeof v);
}

static uint64_t order_version_read(const struct request *r)
{
	switch (r->env->body_case) {
	case CRM__ENVELOPE__BODY_ORDER_DELIVER:
		return r->env->order_deliver->version;
	case CRM__ENVELOPE__BODY_ORDER_CANCEL:
		return r->env->order_cancel->version;
	default:
		return 0;
	}
}

/* An OrderReply from row 0 of STMT_ORDER_WRITE; CONFLICT with the current
 * order when the outcome is 'stale'. */
static void reply_order_row(struct request *r, const PGresult *res)
{
	struct scratch sc = {0};
	Crm__SalesOrder o;
	Crm__Opportunity opp;
	Crm__Relation rel;
	Crm__OrderReply reply = CRM__ORDER_REPLY__INIT;
	row_to_order(res, 0, OW_COL_ORDER, &o);
	reply.order = &o;
	bool ok = row_to_relation(res, 0, OW_COL_REL, &rel, &sc);
	reply.relation = &rel;
	if (ok && !PQgetisnull(res, 0, OW_COL_OPP)) {
		ok = row_to_opportunity(res, 0, OW_COL_OPP, &opp, &sc);
		reply.opportunity = &opp;
	}
	if (!ok) {
		scratch_free(&sc);
		out_of_memory(r);
		return;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	bool stale = !strcmp(outcome, "stale");
	char msg[200] = "";
	if (stale)
		snprintf(msg, sizeof msg, STALE_FMT, "order", (unsigned long long)o.version,
			 (unsigned long long)order_version_read(r));
	reply.existed = !strcmp(outcome, "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ORDER_REPLY;
	resp.order_reply = &reply;
	reply_body(r, &resp, stale, msg);
	scratch_free(&sc);
}

static void on_order_written(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, OW_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such order");
		return;
	}
	reply_order_row(r, res);
}

/* The plan is in: an answer already (existed, stale), or the relation as
 * the write will leave it, to pack for the outbox. */
static void on_order_planned(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, OW_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such order");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "ok")) {
		reply_order_row(r, res);
		return;
	}
	struct scratch sc = {0};
	Crm__Relation rel;
	if (!row_to_relation(res, 0, OW_COL_REL, &rel, &sc)) {
		scratch_free(&sc);
		out_of_memory(r);
		return;
	}
	int64_t write_at = col_i64(res, 0, OW_COL_ORDER + ORDER_COL_UPDATED_AT);
	struct order_params p;
	order_params_fill(r, &p, false, write_at, rel.version, rel.next_followup_at);
	const ProtobufCMessage *records[] = {&rel.base};
	write_with_outbox(r, STMT_ORDER_WRITE, 19, p.v, records, 1, on_order_written);
	scratch_free(&sc);
}

static void order_plan(struct request *r)
{
	struct order_params p;
	order_params_fill(r, &p, true, now_ms(), 0, 0);
	const char *params[20];
	memcpy(params, p.v, sizeof p.v);
	params[19] = NULL;
	req_db(r, STMT_ORDER_WRITE, 20, params, NULL, NULL, on_order_planned);
}

void h_order_place(struct request *r)
{
	Crm__SalesOrder *o = r->env->order_place->order;
	if (!o) {
		invalid(r, "order", "order is required");
		return;
	}
	if (!uuid_ok(r, "order.id", o->id, true) ||
	    !uuid_ok(r, "order.relation_id", o->relation_id, true) ||
	    !uuid_ok(r, "order.opportunity_id", o->opportunity_id, false) ||
	    !text_ok(r, "order.model", o->model, 100, true) ||
	    !text_ok(r, "order.configuration", o->configuration, 200, false) ||
	    !at_ok(r, "order.placed_at", &o->placed_at))
		return;
	if (o->price_fen == 0 || o->price_fen > MONEY_MAX_FEN) {
		invalid(r, "order.price_fen", "order.price_fen is required (in fen, more than 0)");
		return;
	}
	if (o->deposit_fen > o->price_fen) {
		invalid(r, "order.deposit_fen", "order.deposit_fen must not exceed the price");
		return;
	}
	order_plan(r);
}

void h_order_deliver(struct request *r)
{
	Crm__OrderDeliver *in = r->env->order_deliver;
	if (!uuid_ok(r, "id", in->id, true) || !version_ok(r, in->version) ||
	    !text_ok(r, "vin", in->vin, 32, true) || !text_ok(r, "plate", in->plate, 20, false) ||
	    !uuid_ok(r, "vehicle_id", in->vehicle_id, true) || !at_ok(r, "at", &in->at))
		return;
	order_plan(r);
}

void h_order_cancel(struct request *r)
{
	Crm__OrderCancel *in = r->env->order_cancel;
	if (!uuid_ok(r, "id", in->id, true) || !version_ok(r, in->version) ||
	    !text_ok(r, "reason", in->reason, 500, true) || !at_ok(r, "at", &in->at))
		return;
	order_plan(r);
}

static void on_orders_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, ORDER_NCOLS))
		return;
	int rows = PQntuples(res);
	if (rows == 0 && *r->env->order_list->id) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such order");
		return;
	}
	struct scratch sc = {0};
	Crm__SalesOrder *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__SalesOrder **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		out_of_memory(r);
		return;
	}
	for (int i = 0; i < rows; i++) {
		row_to_order(res, i, 0, &items[i]);
		ptrs[i] = &items[i];
	}
	Crm__OrderPage page = CRM__ORDER_PAGE__INIT;
	page.orders = ptrs;
	page.n_orders = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ORDER_PAGE;
	resp.order_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_order_list(struct request *r)
{
	const Crm__OrderList *in = r->env->order_list;
	static const char *const statuses[] = {"", "placed", "delivered", "cancelled", NULL};
	if (!list_filters_ok(r, in->id, in->relation_id, in->customer_id, in->limit))
		return;
	if (!one_of(in->status, statuses)) {
		invalid(r, "status", "status must be placed, delivered or cancelled");
		return;
	}
	char limit[16];
	snprintf(limit, sizeof limit, "%u", in->limit ? in->limit : 50);
	const char *params[] = {r->conn->session.session_id, in->id, in->relation_id,
				in->customer_id, in->status, limit};
	req_db(r, STMT_ORDER_LIST, 6, params, NULL, NULL, on_orders_listed);
}

/* ------------------------------------------------------------ test drives */

static void on_test_drive_added(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, TD_COL_OPP + OPPORTUNITY_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "test_drive.relation_id", "no such relation");
		return;
	}
	struct scratch sc = {0};
	Crm__TestDrive td;
	Crm__Opportunity opp;
	Crm__TestDriveReply reply = CRM__TEST_DRIVE_REPLY__INIT;
	row_to_test_drive(res, 0, 1, &td);
	reply.test_drive = &td;
	if (!PQgetisnull(res, 0, TD_COL_OPP)) {
		if (!row_to_opportunity(res, 0, TD_COL_OPP, &opp, &sc)) {
			scratch_free(&sc);
			out_of_memory(r);
			return;
		}
		reply.opportunity = &opp;
	}
	reply.existed = !strcmp(PQgetvalue(res, 0, 0), "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_REPLY;
	resp.test_drive_reply = &reply;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_test_drive_add(struct request *r)
{
	Crm__TestDrive *t = r->env->test_drive_add->test_drive;
	if (!t) {
		invalid(r, "test_drive", "test_drive is required");
		return;
	}
	if (!uuid_ok(r, "test_drive.id", t->id, true) ||
	    !uuid_ok(r, "test_drive.relation_id", t->relation_id, true) ||
	    !uuid_ok(r, "test_drive.opportunity_id", t->opportunity_id, false) ||
	    !text_ok(r, "test_drive.model", t->model, 100, true) ||
	    !text_ok(r, "test_drive.consultant", t->consultant, 64, false) ||
	    !text_ok(r, "test_drive.note", t->note, 500, false) ||
	    !at_ok(r, "test_drive.at", &t->at))
		return;
	char at[24], write_at[24];
	fmt_i64(at, sizeof at, t->at);
	fmt_i64(write_at, sizeof write_at, now_ms());
	const char *params[] = {r->conn->session.session_id, t->id, t->relation_id,
				t->opportunity_id, t->model, t->consultant, at, t->note, write_at};
	req_db(r, STMT_TEST_DRIVE_ADD, 9, params, NULL, NULL, on_test_drive_added);
}

static void on_test_drives_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, TEST_DRIVE_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__TestDrive *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__TestDrive **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		out_of_memory(r);
		return;
	}
	for (int i = 0; i < rows; i++) {
		row_to_test_drive(res, i, 0, &items[i]);
		ptrs[i] = &items[i];
	}
	Crm__TestDrivePage page = CRM__TEST_DRIVE_PAGE__INIT;
	page.test_drives = ptrs;
	page.n_test_drives = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_PAGE;
	resp.test_drive_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_test_drive_list(struct request *r)
{
	const Crm__TestDriveList *in = r->env->test_drive_list;
	if (!list_filters_ok(r, "", in->relation_id, in->customer_id, in->limit))
		return;
	char limit[16];
	snprintf(limit, sizeof limit, "%u", in->limit ? in->limit : 50);
	const char *params[] = {r->conn->session.session_id, in->relation_id, in->customer_id,
				limit};
	req_db(r, STMT_TEST_DRIVE_LIST, 4, params, NULL, NULL, on_test_drives_listed);
}
