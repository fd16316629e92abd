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

static void on_followup_added(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, ADD_NCOLS))
		return;
	int rows = PQntuples(res);
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
	for (int i = 0; ok && i < rows; i++) {
		if (!strcmp(PQgetvalue(res, i, 1), "followup")) {
			row_to_followup(res, i, ADD_COL_FOLLOWUP, &fu);
			ok = row_to_relation(res, i, ADD_COL_RELATION, &rel, &sc);
			fr.followup = &fu;
			fr.relation = &rel;
		} else {
			row_to_task(res, i, ADD_COL_TASK, &tasks[fr.n_tasks]);
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
	fr.existed = !strcmp(PQgetvalue(res, 0, 0), "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_REPLY;
	resp.followup_reply = &fr;
	req_reply(r, &resp);
	scratch_free(&sc);
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
	struct followup_params p;
	followup_params_fill(r, &p, now);
	/* No version read, next follow-up expected or records packed: the
	 * statement encodes what it writes. */
	const char *params[16] = {0};
	memcpy(params, p.v, sizeof p.v);
	req_db(r, STMT_FOLLOWUP_ADD, 16, params, NULL, NULL, on_followup_added);
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
