/* Follow-ups, tasks and the cadence policy (issue 5; sql/0013).
 *
 * followup.add is one statement (STMT_FOLLOWUP_ADD, sql/0030): the
 * database writes the follow-up, the tasks and the relation under the
 * relation's row lock and encodes the Followup, the Relation and the tasks
 * for the outbox itself, from what it stored, as it encodes tasks
 * everywhere (the cadence creates tasks inside level.set, where crmd packs
 * nothing). The other relation writes still plan first and pack in crmd;
 * so does a template send (h_template.c), through the same statement with
 * its packed records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

#define FOLLOWUP_NCOLS 12
#define TASK_NCOLS 20
#define TASK_VIEW_NCOLS (TASK_NCOLS + 3) /* then store_id, owner_id, due_at */
#define CADENCE_NCOLS 10
/* STMT_FOLLOWUP_ADD rows: outcome, kind, then the three views. */
#define ADD_COL_FOLLOWUP 2
#define ADD_COL_RELATION (ADD_COL_FOLLOWUP + FOLLOWUP_NCOLS)
#define ADD_COL_TASK (ADD_COL_RELATION + RELATION_VIEW_NCOLS)
#define ADD_NCOLS (ADD_COL_TASK + TASK_VIEW_NCOLS)
/* A follow-up may be recorded a little after the fact, never ahead. */
#define FOLLOWUP_FUTURE_SLACK_MS (5 * 60 * 1000)

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

static const char *const methods[] = {"phone", "wechat", "visit", "sms", "email", "other", NULL};
static const char *const types[] = {"first_contact", "needs_analysis", "model_presentation",
				    "invitation", "test_drive", "negotiation", "delivery",
				    "after_sales_call", "care", "complaint", NULL};

/* ------------------------------------------------------------ readers */

/* ------------------------------------------------------------ followup.add */

/* Parameters $1..$13 of STMT_FOLLOWUP_ADD, from the request. */
struct followup_params {
	char at[24], next_due[24], write_at[24];
	const char *v[13];
};

static void followup_params_fill(struct request *r, struct followup_params *p, int64_t write_at)
{
	const Crm__FollowupAdd *in = r->env->followup_add;
	const Crm__Followup *f = in->followup;
	const Crm__NextTask *next = in->next;
	fmt_i64(p->at, sizeof p->at, f->at);
	fmt_i64(p->write_at, sizeof p->write_at, write_at);
	if (next)
		fmt_i64(p->next_due, sizeof p->next_due, next->due_at);
	const char *v[13] = {
		r->conn->session.session_id, f->id, f->relation_id, f->task_id, f->method, f->type,
		p->at, f->content, f->feedback, next ? p->next_due : NULL,
		next ? next->method : "", next ? next->purpose : "", p->write_at,
	};
	memcpy(p->v, v, sizeof v);
}

/* The reply to one follow-up from `rows` rows of STMT_FOLLOWUP_ADD's
 * columns starting at `row0`, its outcome in column `c0`. */
static void followup_reply(struct request *r, const PGresult *res, int row0, int rows, int c0)
{
	if (rows == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "relation_id", "no such relation");
		return;
	}
	struct scratch sc = {0};
	Crm__Followup fu;
	Crm__Relation rel;
	Crm__FollowupReply fr = CRM__FOLLOWUP_REPLY__INIT;
	Crm__Task *tasks = scratch_alloc(&sc, (size_t)rows * sizeof *tasks);
	Crm__Task **ptrs = scratch_alloc(&sc, (size_t)rows * sizeof *ptrs);
	bool ok = tasks && ptrs;
	for (int i = row0; ok && i < row0 + rows; i++) {
		if (!strcmp(PQgetvalue(res, i, c0 + 1), "followup")) {
			row_to_followup(res, i, c0 + ADD_COL_FOLLOWUP, &fu);
			ok = row_to_relation(res, i, c0 + ADD_COL_RELATION, &rel, &sc);
			fr.followup = &fu;
			fr.relation = &rel;
		} else {
			row_to_task(res, i, c0 + ADD_COL_TASK, &tasks[fr.n_tasks]);
			task_outcome_now(&tasks[fr.n_tasks]);
			ptrs[fr.n_tasks] = &tasks[fr.n_tasks];
			fr.n_tasks++;
		}
	}
	if (!ok) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	fr.tasks = ptrs;
	fr.existed = !strcmp(PQgetvalue(res, row0, c0), "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_REPLY;
	resp.followup_reply = &fr;
	req_reply(r, &resp);
	scratch_free(&sc);
}

/* ------------------------------------------------------------ together
 *
 * Every follow-up appends to the outbox under the one-row counter
 * (DESIGN.md "Sync"), whose row lock is held until the commit's WAL flush:
 * one by one, follow-ups wait for each other's flushes (sql/0047). So at
 * most followups_running_max follow-up statements run at once; the next
 * follow-ups wait here, and when a statement ends, those waiting (up to
 * FOLLOWUP_GROUP_MAX) go as one statement, STMT_FOLLOWUP_ADD_BATCH: one
 * commit for all of them, each still answered with its own records or its
 * own error. A follow-up that finds nothing running goes alone, through
 * STMT_FOLLOWUP_ADD, at once. */

#define FOLLOWUP_GROUP_MAX 8
#define FOLLOWUP_ARGS 13
/* STMT_FOLLOWUP_ADD_BATCH: item, err_state, err_column, err_message, then
 * STMT_FOLLOWUP_ADD's columns. */
#define BATCH_COL_ADD 4

struct followup_group {
	struct server *srv;
	int n;
	struct request *r[FOLLOWUP_GROUP_MAX]; /* NULL once its connection is gone */
};

static void followups_next(struct server *srv);

static void on_followups_recorded(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct followup_group *g = arg;
	struct server *srv = g->srv;
	bool batch = g->n > 1;
	int ncols = (batch ? BATCH_COL_ADD : 0) + ADD_NCOLS;
	bool shape_ok = res && PQnfields(res) == ncols;
	int rows = shape_ok ? PQntuples(res) : 0;
	/* A batch's rows come item by item in the order it recorded them (by
	 * relation, sql/0048): where each item's rows start, and how many. */
	int first[FOLLOWUP_GROUP_MAX], count[FOLLOWUP_GROUP_MAX] = {0};
	for (int i = 0; i < g->n; i++)
		first[i] = batch ? -1 : 0;
	if (!batch)
		count[0] = rows;
	for (int row = 0; batch && row < rows; row++) {
		int i = atoi(PQgetvalue(res, row, 0));
		if (i < 0 || i >= g->n || (first[i] >= 0 && first[i] + count[i] != row))
			continue; /* not in its item's one run of rows: ignored */
		if (first[i] < 0)
			first[i] = row;
		count[i]++;
	}
	srv->followups_running--;
	for (int i = 0; i < g->n; i++) {
		struct request *r = g->r[i];
		if (!r)
			continue;
		r->followup_group = NULL;
		if (fail_on_error(r, err) || !result_shape_ok(r, res, ncols))
			continue;
		if (batch && count[i] > 0 && !PQgetisnull(res, first[i], 1)) {
			/* This follow-up failed alone, in its subtransaction. */
			struct pool_error e = {0};
			const char *state = PQgetvalue(res, first[i], 1);
			e.code = pool_code_for_sqlstate(state);
			snprintf(e.sqlstate, sizeof e.sqlstate, "%s", state);
			snprintf(e.field, sizeof e.field, "%s", PQgetvalue(res, first[i], 2));
			snprintf(e.message, sizeof e.message, "%s", PQgetvalue(res, first[i], 3));
			req_fail_db(r, &e);
			continue;
		}
		followup_reply(r, res, first[i] < 0 ? 0 : first[i], count[i], batch ? BATCH_COL_ADD : 0);
	}
	free(g);
	followups_next(srv);
}

/* One element of a text[] literal: NULL, or the text quoted. */
static void array_elem(struct textbuf *b, const char *s, bool first)
{
	if (!first)
		tb_addc(b, ',');
	if (!s) {
		tb_add(b, "NULL");
		return;
	}
	tb_addc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			tb_addc(b, '\\');
		tb_addc(b, *s);
	}
	tb_addc(b, '"');
}

static void followup_group_run(struct followup_group *g)
{
	struct server *srv = g->srv;
	struct followup_params p;
	srv->followups_running++;
	if (g->n == 1) {
		struct request *r = g->r[0];
		followup_params_fill(r, &p, r->followup_write_at);
		/* No version read, next follow-up expected or records packed: the
		 * statement encodes what it writes. */
		const char *params[16] = {0};
		memcpy(params, p.v, sizeof p.v);
		pool_exec(srv->pool, STMT_FOLLOWUP_ADD, 16, params, NULL, NULL,
			  on_followups_recorded, g);
		return;
	}
	struct textbuf lit = {0};
	tb_addc(&lit, '{');
	for (int i = 0; i < g->n; i++) {
		followup_params_fill(g->r[i], &p, g->r[i]->followup_write_at);
		for (int k = 0; k < FOLLOWUP_ARGS; k++)
			array_elem(&lit, p.v[k], i == 0 && k == 0);
	}
	tb_addc(&lit, '}');
	srv->stats.counters[ST_FOLLOWUP_GROUPS]++;
	srv->stats.counters[ST_FOLLOWUPS_GROUPED] += (uint64_t)g->n;
	if (lit.oom) {
		tb_free(&lit);
		struct pool_error e = {.code = CRM__CODE__RESOURCE_EXHAUSTED};
		snprintf(e.message, sizeof e.message, "out of memory");
		on_followups_recorded(g, NULL, &e);
		return;
	}
	const char *param = tb_str(&lit);
	/* The pool copies the parameter; on a full queue it has answered. */
	pool_exec(srv->pool, STMT_FOLLOWUP_ADD_BATCH, 1, &param, NULL, NULL,
		  on_followups_recorded, g);
	tb_free(&lit);
}

static void followups_next(struct server *srv)
{
	int most = srv->followups_running_max > 0 ? srv->followups_running_max : 1;
	while (srv->followup_queue && srv->followups_running < most) {
		struct followup_group *g = calloc(1, sizeof *g);
		if (!g) {
			struct request *r = srv->followup_queue;
			srv->followup_queue = r->followup_next;
			if (!srv->followup_queue)
				srv->followup_queue_tail = NULL;
			r->followup_next = NULL;
			r->followup_queued = false;
			req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
			continue;
		}
		g->srv = srv;
		while (srv->followup_queue && g->n < FOLLOWUP_GROUP_MAX) {
			struct request *r = srv->followup_queue;
			srv->followup_queue = r->followup_next;
			r->followup_next = NULL;
			r->followup_queued = false;
			r->followup_group = g;
			g->r[g->n++] = r;
		}
		if (!srv->followup_queue)
			srv->followup_queue_tail = NULL;
		followup_group_run(g);
	}
}

void followup_forget(struct request *r)
{
	if (r->followup_group) {
		struct followup_group *g = r->followup_group;
		for (int i = 0; i < g->n; i++)
			if (g->r[i] == r)
				g->r[i] = NULL;
		r->followup_group = NULL;
	}
	if (r->followup_queued) {
		struct server *srv = r->conn->srv;
		struct request **pp = &srv->followup_queue, *prev = NULL;
		while (*pp && *pp != r) {
			prev = *pp;
			pp = &(*pp)->followup_next;
		}
		if (*pp)
			*pp = r->followup_next;
		if (srv->followup_queue_tail == r)
			srv->followup_queue_tail = prev;
		r->followup_queued = false;
	}
}

void h_followup_add(struct request *r)
{
	Crm__FollowupAdd *in = r->env->followup_add;
	Crm__Followup *f = in->followup;
	if (!f) {
		invalid(r, "followup", "followup is required");
		return;
	}
	if (!uuid_ok(r, "followup.id", f->id, true) ||
	    !uuid_ok(r, "followup.relation_id", f->relation_id, false) ||
	    !uuid_ok(r, "followup.task_id", f->task_id, false))
		return;
	if (!*f->relation_id && !*f->task_id) {
		invalid(r, "followup.relation_id",
			"followup.relation_id is required (or the task_id the follow-up completes)");
		return;
	}
	if (!one_of(f->method, methods)) {
		invalid(r, "followup.method",
			"followup.method must be phone, wechat, visit, sms, email or other");
		return;
	}
	if (!one_of(f->type, types)) {
		invalid(r, "followup.type",
			"followup.type must be first_contact, needs_analysis, model_presentation,"
			" invitation, test_drive, negotiation, delivery, after_sales_call, care or"
			" complaint");
		return;
	}
	int64_t now = now_ms();
	if (f->at == 0)
		f->at = now;
	if (f->at < 0 || f->at > now + FOLLOWUP_FUTURE_SLACK_MS) {
		invalid(r, "followup.at",
			"followup.at must be a time in unix milliseconds, not in the future");
		return;
	}
	if (!text_ok(r, "followup.content", f->content, 2000, true) ||
	    !text_ok(r, "followup.feedback", f->feedback, 1000, false))
		return;
	/* Stored as the database keeps it, so the packed record matches. */
	struct scratch sc = {0};
	char *content = trim_blanks(f->content, &sc);
	if (!content) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	if (!*content) {
		scratch_free(&sc);
		invalid(r, "followup.content", "followup.content is required");
		return;
	}
	/* The request owns its decoded message: keep the trimmed text there. */
	size_t len = strlen(content);
	memmove(f->content, content, len + 1);
	scratch_free(&sc);
	if (in->next) {
		Crm__NextTask *next = in->next;
		if (next->due_at <= 0 || next->due_at < f->at) {
			invalid(r, "next.due_at",
				"next.due_at is required, in unix milliseconds, not before the follow-up");
			return;
		}
		if (*next->method && !one_of(next->method, methods)) {
			invalid(r, "next.method",
				"next.method must be phone, wechat, visit, sms, email or other");
			return;
		}
		if (!text_ok(r, "next.purpose", next->purpose, 200, false))
			return;
	}
	struct server *srv = r->conn->srv;
	r->followup_write_at = now;
	r->followup_queued = true;
	if (srv->followup_queue_tail)
		srv->followup_queue_tail->followup_next = r;
	else
		srv->followup_queue = r;
	srv->followup_queue_tail = r;
	followups_next(srv);
}

/* ------------------------------------------------------------ followup.list */

static void on_followups_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, FOLLOWUP_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Followup *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Followup **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	Crm__FollowupPage page = CRM__FOLLOWUP_PAGE__INIT;
	for (int i = 0; i < rows; i++) {
		row_to_followup(res, i, 0, &items[i]);
		ptrs[i] = &items[i];
	}
	page.followups = ptrs;
	page.n_followups = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_PAGE;
	resp.followup_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_followup_list(struct request *r)
{
	const Crm__FollowupList *in = r->env->followup_list;
	if (!uuid_ok(r, "relation_id", in->relation_id, false) ||
	    !uuid_ok(r, "customer_id", in->customer_id, false))
		return;
	if (!*in->relation_id == !*in->customer_id) {
		invalid(r, "relation_id", "give relation_id or customer_id (one of them)");
		return;
	}
	if (in->limit > 1000) {
		invalid(r, "limit", "limit must be from 1 to 1000");
		return;
	}
	char limit[16];
	snprintf(limit, sizeof limit, "%u", in->limit ? in->limit : 50);
	const char *params[] = {r->conn->session.session_id, in->relation_id, in->customer_id,
				limit};
	req_db(r, STMT_FOLLOWUP_LIST, 4, params, NULL, NULL, on_followups_listed);
}

/* ------------------------------------------------------------ task.list */

static void on_tasks_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	/* sql/0036: the task's columns up to set_by_followup, then these three */
	if (fail_on_error(r, err) || !result_shape_ok(r, res, TASK_NCOLS + 3))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Task *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Task **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	Crm__TaskPage page = CRM__TASK_PAGE__INIT;
	for (int i = 0; i < rows; i++) {
		row_to_task(res, i, 0, &items[i]);
		items[i].overdue = !strcmp(PQgetvalue(res, i, TASK_NCOLS), "t");
		items[i].outcome = PQgetvalue(res, i, TASK_NCOLS + 1);
		items[i].late_by_ms = col_i64(res, i, TASK_NCOLS + 2);
		ptrs[i] = &items[i];
	}
	page.tasks = ptrs;
	page.n_tasks = (size_t)rows;
	page.at = r->env->task_list->at;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TASK_PAGE;
	resp.task_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_task_list(struct request *r)
{
	Crm__TaskList *in = r->env->task_list;
	static const char *const windows[] = {"", "today", "overdue", "week", "open", "closed",
					      NULL};
	if (!one_of(in->window, windows)) {
		invalid(r, "window", "window must be today, overdue, week, open or closed");
		return;
	}
	if (!uuid_ok(r, "relation_id", in->relation_id, false) ||
	    !uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "owner", in->owner, 64, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false))
		return;
	if (in->limit > 1000 || in->at < 0) {
		invalid(r, in->at < 0 ? "at" : "limit",
			in->at < 0 ? "at must be a time in unix milliseconds"
				   : "limit must be from 1 to 1000");
		return;
	}
	if (in->at == 0)
		in->at = now_ms();
	char at[24], limit[16];
	fmt_i64(at, sizeof at, in->at);
	snprintf(limit, sizeof limit, "%u", in->limit ? in->limit : 200);
	const char *params[] = {r->conn->session.session_id, in->window, in->owner,
				in->store_code, in->relation_id, in->customer_id, at, limit};
	req_db(r, STMT_TASK_LIST, 8, params, NULL, NULL, on_tasks_listed);
}

/* ------------------------------------------------------------ task.skip, task.reassign */

static void on_task_written(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, TASK_VIEW_NCOLS))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such task");
		return;
	}
	Crm__Task t;
	row_to_task(res, 0, 0, &t);
	task_outcome_now(&t);
	Crm__TaskReply tr = CRM__TASK_REPLY__INIT;
	tr.task = &t;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TASK_REPLY;
	resp.task_reply = &tr;
	req_reply(r, &resp);
}

void h_task_skip(struct request *r)
{
	const Crm__TaskSkip *in = r->env->task_skip;
	if (!uuid_ok(r, "id", in->id, true) || !text_ok(r, "reason", in->reason, 500, true))
		return;
	char at[24];
	fmt_i64(at, sizeof at, now_ms());
	const char *params[] = {r->conn->session.session_id, in->id, in->reason, at};
	req_db(r, STMT_TASK_SKIP, 4, params, NULL, NULL, on_task_written);
}

void h_task_reassign(struct request *r)
{
	const Crm__TaskReassign *in = r->env->task_reassign;
	if (!uuid_ok(r, "id", in->id, true) || !text_ok(r, "to_owner", in->to_owner, 64, true) ||
	    !text_ok(r, "reason", in->reason, 500, false))
		return;
	char at[24];
	fmt_i64(at, sizeof at, now_ms());
	const char *params[] = {r->conn->session.session_id, in->id, in->to_owner, in->reason, at};
	req_db(r, STMT_TASK_REASSIGN, 5, params, NULL, NULL, on_task_written);
}

/* ------------------------------------------------------------ policy.cadence */

static void on_cadence(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, CADENCE_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__CadenceRule *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__CadenceRule **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < rows; i++) {
		Crm__CadenceRule *k = &items[i];
		crm__cadence_rule__init(k);
		k->level = PQgetvalue(res, i, 0);
		k->event = PQgetvalue(res, i, 1);
		k->step = (uint32_t)col_i64(res, i, 2);
		k->due_after_minutes = (uint32_t)col_i64(res, i, 3);
		k->method = PQgetvalue(res, i, 4);
		k->purpose = PQgetvalue(res, i, 5);
		k->assignee = PQgetvalue(res, i, 6);
		k->any_task_covers = !strcmp(PQgetvalue(res, i, 7), "t");
		k->updated_at = col_i64(res, i, 8);
		k->updated_by = PQgetvalue(res, i, 9);
		ptrs[i] = k;
	}
	Crm__CadencePolicy cp = CRM__CADENCE_POLICY__INIT;
	cp.rules = ptrs;
	cp.n_rules = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CADENCE_POLICY;
	resp.cadence_policy = &cp;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_cadence_get(struct request *r)
{
	const char *params[] = {r->conn->session.session_id};
	req_db(r, STMT_CADENCE_GET, 1, params, NULL, NULL, on_cadence);
}

void h_cadence_set(struct request *r)
{
	const Crm__CadencePolicySet *in = r->env->cadence_set;
	const Crm__CadenceRule *k = in->rule;
	if (!k) {
		invalid(r, "rule", "rule is required");
		return;
	}
	static const char *const levels[] = {"N", "H", "A", "B", "C", "O", "D", "T", NULL};
	static const char *const events[] = {"level", "first_visit", "followup", NULL};
	static const char *const assignees[] = {"", "owner", "manager", NULL};
	if (!one_of(k->level, levels)) {
		invalid(r, "rule.level", "rule.level must be one of N, H, A, B, C, O, D, T");
		return;
	}
	if (!one_of(k->event, events)) {
		invalid(r, "rule.event", "rule.event must be level, first_visit or followup");
		return;
	}
	if (!one_of(k->assignee, assignees)) {
		invalid(r, "rule.assignee", "rule.assignee must be owner or manager");
		return;
	}
	if (k->step < 1 || k->step > 9) {
		invalid(r, "rule.step", "rule.step must be from 1 to 9");
		return;
	}
	if (!in->remove && (k->due_after_minutes == 0 || k->due_after_minutes > 525600)) {
		invalid(r, "rule.due_after_minutes",
			"rule.due_after_minutes must be from 1 to 525600 (a year)");
		return;
	}
	if (!in->remove && !one_of(k->method, methods)) {
		invalid(r, "rule.method", "rule.method must be phone, wechat, visit, sms, email or other");
		return;
	}
	if (!in->remove && !text_ok(r, "rule.purpose", k->purpose, 200, true))
		return;
	char step[16], minutes[16];
	snprintf(step, sizeof step, "%u", k->step);
	snprintf(minutes, sizeof minutes, "%u", in->remove ? 0 : k->due_after_minutes);
	/* A removal names the rule only: its method and purpose, unchecked,
	 * do not reach the database. */
	const char *params[] = {r->conn->session.session_id, k->level, k->event, step, minutes,
				in->remove ? NULL : k->method, in->remove ? NULL : k->purpose,
				k->assignee, k->any_task_covers ? "true" : "false"};
	req_db(r, STMT_CADENCE_SET, 9, params, NULL, NULL, on_cadence);
}
