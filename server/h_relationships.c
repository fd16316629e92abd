/* Relationships (issue 6; sql/0019): referrals, fleet and key accounts,
 * satisfaction surveys (CSI, SSI) and complaints.
 *
 * Every request is one statement: the SQL function checks scope and rules,
 * writes, and appends the record it wrote to the outbox with a payload it
 * encodes itself (no plan step: none of these writes changes a record crmd
 * would have to pack). The handlers check the shape of the input (UUIDs,
 * text a person typed) and turn the rows into pages. A write answers with
 * the page of its one record; `existed` says a retried id wrote nothing.
 *
 * Lists inside a record (an organization's contacts and plans, a survey's
 * scores, a complaint's history and follow-ups) come as one text column,
 * fields joined by U+001E and items by U+001F, as a customer's phones do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

/* Result shapes (stmts.h): outcome, the view's columns, extras. */
#define REFERRAL_NCOLS (1 + 16 + 1)
#define ORG_NCOLS (1 + 12 + 2 + 1)
#define SURVEY_NCOLS (1 + 14 + 1)
#define COMPLAINT_NCOLS (1 + 21 + 3 + 1)
#define QUESTION_NCOLS 7
#define LIST_LIMIT_DEFAULT 100
/* Scores of one survey: at most one per question number. */
#define SURVEY_SCORES_MAX 50

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

/* ------------------------------------------------------------ input checks */

static bool limit_ok(struct request *r, uint32_t limit, char out[16])
{
	if (limit > 1000) {
		invalid(r, "limit", "limit must be from 1 to 1000");
		return false;
	}
	snprintf(out, 16, "%u", limit ? limit : LIST_LIMIT_DEFAULT);
	return true;
}

/* An event time from a request: 0 is now. */
static void fmt_at(char out[24], int64_t at)
{
	snprintf(out, 24, "%lld", (long long)(at ? at : now_ms()));
}

static void fail_oom(struct request *r, struct scratch *sc)
{
	scratch_free(sc);
	req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
}

/* ------------------------------------------------------------ joined lists */

/* Splits a copy of `text` (in `sc`) at `sep`: at most `max` parts in
 * `parts`; returns how many, or -1 when out of memory. "" has none. */
static int split_copy(const char *text, char sep, char **parts, int max, struct scratch *sc)
{
	if (!*text)
		return 0;
	size_t len = strlen(text);
	char *copy = scratch_alloc(sc, len + 1);
	if (!copy)
		return -1;
	memcpy(copy, text, len + 1);
	int n = 0;
	char *p = copy;
	while (n < max) {
		parts[n++] = p;
		char *end = strchr(p, sep);
		if (!end)
			break;
		*end = '\0';
		p = end + 1;
	}
	return n;
}

/* Splits an item (already a private copy) into exactly `n` fields in
 * place; missing trailing fields are "". */
static void split_fields(char *item, char **fields, int n)
{
	char *p = item;
	for (int i = 0; i < n; i++) {
		if (!p) {
			fields[i] = (char *)"";
			continue;
		}
		fields[i] = p;
		char *end = strchr(p, FIELD_SEP);
		if (end)
			*end = '\0';
		p = end ? end + 1 : NULL;
	}
}

/* The items of a joined-list column, each split into `nfields` fields:
 * fills `*items` (an array of nitems * nfields pointers in `sc`). Returns
 * the number of items or -1 when out of memory. */
static int joined_list(const char *text, int nfields, char ***items, struct scratch *sc)
{
	int count = 1;
	for (const char *p = text; *p; p++)
		count += *p == LIST_SEP;
	if (!*text) {
		*items = NULL;
		return 0;
	}
	char **parts = scratch_alloc(sc, (size_t)count * sizeof *parts);
	char **fields = scratch_alloc(sc, (size_t)count * (size_t)nfields * sizeof *fields);
	if (!parts || !fields)
		return -1;
	int n = split_copy(text, LIST_SEP, parts, count, sc);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		split_fields(parts[i], fields + (size_t)i * (size_t)nfields, nfields);
	*items = fields;
	return n;
}

static int64_t text_i64(const char *s)
{
	return s && *s ? strtoll(s, NULL, 10) : 0;
}

/* ------------------------------------------------------------ row readers */

static void row_to_referral(const PGresult *res, int row, Crm__Referral *f)
{
	crm__referral__init(f);
	int c = 1;
	f->id = PQgetvalue(res, row, c++);
	f->referrer_id = PQgetvalue(res, row, c++);
	f->referrer_name = PQgetvalue(res, row, c++);
	f->referred_id = PQgetvalue(res, row, c++);
	f->referred_name = PQgetvalue(res, row, c++);
	f->relation_id = PQgetvalue(res, row, c++);
	f->store_code = PQgetvalue(res, row, c++);
	f->opportunity_id = PQgetvalue(res, row, c++);
	f->note = PQgetvalue(res, row, c++);
	f->reward_status = PQgetvalue(res, row, c++);
	f->reward_note = PQgetvalue(res, row, c++);
	f->reward_by = PQgetvalue(res, row, c++);
	f->reward_at = col_i64(res, row, c++);
	f->created_by = PQgetvalue(res, row, c++);
	f->created_at = col_i64(res, row, c++);
	f->version = (uint64_t)col_i64(res, row, c++);
}

static bool row_to_org(const PGresult *res, int row, Crm__Organization *o, struct scratch *sc)
{
	crm__organization__init(o);
	o->id = PQgetvalue(res, row, 1);
	o->kind = PQgetvalue(res, row, 2);
	o->name = PQgetvalue(res, row, 3);
	o->store_code = PQgetvalue(res, row, 4);
	o->owner = PQgetvalue(res, row, 5);
	o->owner_name = PQgetvalue(res, row, 6);
	o->note = PQgetvalue(res, row, 7);
	o->created_by = PQgetvalue(res, row, 8);
	o->created_at = col_i64(res, row, 9);
	o->version = (uint64_t)col_i64(res, row, 10);
	o->contact_role = PQgetvalue(res, row, ORG_NCOLS - 1);

	char **f;
	int n = joined_list(PQgetvalue(res, row, 11), 6, &f, sc);
	if (n < 0)
		return false;
	Crm__OrgContact *contacts = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *contacts);
	Crm__OrgContact **cp = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *cp);
	if (!contacts || !cp)
		return false;
	for (int i = 0; i < n; i++) {
		char **x = f + (size_t)i * 6;
		Crm__OrgContact *k = &contacts[i];
		crm__org_contact__init(k);
		k->organization_id = o->id;
		k->customer_id = x[0];
		k->customer_name = x[1];
		k->role = x[2];
		k->title = x[3];
		k->added_by = x[4];
		k->added_at = text_i64(x[5]);
		cp[i] = k;
	}
	o->contacts = cp;
	o->n_contacts = (size_t)n;

	n = joined_list(PQgetvalue(res, row, 12), 8, &f, sc);
	if (n < 0)
		return false;
	Crm__PurchasePlan *plans = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *plans);
	Crm__PurchasePlan **pp = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *pp);
	if (!plans || !pp)
		return false;
	for (int i = 0; i < n; i++) {
		char **x = f + (size_t)i * 8;
		Crm__PurchasePlan *p = &plans[i];
		crm__purchase_plan__init(p);
		p->id = x[0];
		p->organization_id = o->id;
		p->model = x[1];
		p->quantity = (uint32_t)text_i64(x[2]);
		p->expected_at = text_i64(x[3]);
		p->status = x[4];
		p->note = x[5];
		p->created_by = x[6];
		p->created_at = text_i64(x[7]);
		pp[i] = p;
	}
	o->plans = pp;
	o->n_plans = (size_t)n;
	return true;
}

static bool row_to_survey(const PGresult *res, int row, Crm__Survey *v, struct scratch *sc)
{
	crm__survey__init(v);
	v->id = PQgetvalue(res, row, 1);
	v->kind = PQgetvalue(res, row, 2);
	v->customer_id = PQgetvalue(res, row, 3);
	v->customer_name = PQgetvalue(res, row, 4);
	v->relation_id = PQgetvalue(res, row, 5);
	v->store_code = PQgetvalue(res, row, 6);
	v->subject_kind = PQgetvalue(res, row, 7);
	v->subject_id = PQgetvalue(res, row, 8);
	v->at = col_i64(res, row, 9);
	v->comment = PQgetvalue(res, row, 11);
	v->by = PQgetvalue(res, row, 12);
	v->created_at = col_i64(res, row, 13);
	v->score_percent = (uint32_t)col_i64(res, row, 14);
	char **f;
	int n = joined_list(PQgetvalue(res, row, 10), 4, &f, sc);
	if (n < 0)
		return false;
	Crm__SurveyScore *scores = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *scores);
	Crm__SurveyScore **sp = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *sp);
	if (!scores || !sp)
		return false;
	for (int i = 0; i < n; i++) {
		char **x = f + (size_t)i * 4;
		crm__survey_score__init(&scores[i]);
		scores[i].number = (uint32_t)text_i64(x[0]);
		scores[i].score = (uint32_t)text_i64(x[1]);
		scores[i].scale_max = (uint32_t)text_i64(x[2]);
		scores[i].question = x[3];
		sp[i] = &scores[i];
	}
	v->scores = sp;
	v->n_scores = (size_t)n;
	return true;
}

static bool row_to_complaint(const PGresult *res, int row, Crm__Complaint *k,
			     struct scratch *sc)
{
	crm__complaint__init(k);
	k->id = PQgetvalue(res, row, 1);
	k->customer_id = PQgetvalue(res, row, 2);
	k->customer_name = PQgetvalue(res, row, 3);
	k->relation_id = PQgetvalue(res, row, 4);
	k->store_code = PQgetvalue(res, row, 5);
	k->status = PQgetvalue(res, row, 6);
	k->priority = PQgetvalue(res, row, 7);
	k->category = PQgetvalue(res, row, 8);
	k->content = PQgetvalue(res, row, 9);
	k->assignee = PQgetvalue(res, row, 10);
	k->assignee_name = PQgetvalue(res, row, 11);
	k->received_at = col_i64(res, row, 12);
	k->due_at = col_i64(res, row, 13);
	k->resolution = PQgetvalue(res, row, 14);
	k->resolved_at = col_i64(res, row, 15);
	k->closed_at = col_i64(res, row, 16);
	k->created_by = PQgetvalue(res, row, 17);
	k->created_at = col_i64(res, row, 18);
	k->version = (uint64_t)col_i64(res, row, 19);
	k->overdue = !strcmp(PQgetvalue(res, row, COMPLAINT_NCOLS - 1), "t");

	char **f;
	int n = joined_list(PQgetvalue(res, row, 20), 6, &f, sc);
	if (n < 0)
		return false;
	Crm__ComplaintEvent *events = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *events);
	Crm__ComplaintEvent **ep = scratch_alloc(sc, (size_t)(n ? n : 1) * sizeof *ep);
	if (!events || !ep)
		return false;
	for (int i = 0; i < n; i++) {
		char **x = f + (size_t)i * 6;
		Crm__ComplaintEvent *e = &events[i];
		crm__complaint_event__init(e);
		e->from_status = x[0];
		e->to_status = x[1];
		e->by = x[2];
		e->at = text_i64(x[3]);
		e->note = x[4];
		e->assignee = x[5];
		ep[i] = e;
	}
	k->events = ep;
	k->n_events = (size_t)n;

	const char *ids = PQgetvalue(res, row, 21);
	int count = 1;
	for (const char *p = ids; *p; p++)
		count += *p == LIST_SEP;
	char **idp = scratch_alloc(sc, (size_t)count * sizeof *idp);
	if (!idp)
		return false;
	n = split_copy(ids, LIST_SEP, idp, count, sc);
	if (n < 0)
		return false;
	k->followup_ids = idp;
	k->n_followup_ids = (size_t)n;
	return true;
}

/* ------------------------------------------------------------ replies */

/* Each reply: the rows as items of the page; existed from row 0. */

static void on_referrals(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, REFERRAL_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Referral *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Referral **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		fail_oom(r, &sc);
		return;
	}
	for (int i = 0; i < rows; i++) {
		row_to_referral(res, i, &items[i]);
		ptrs[i] = &items[i];
	}
	Crm__ReferralPage page = CRM__REFERRAL_PAGE__INIT;
	page.referrals = ptrs;
	page.n_referrals = (size_t)rows;
	page.existed = rows > 0 && !strcmp(PQgetvalue(res, 0, 0), "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_REFERRAL_PAGE;
	resp.referral_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

static void on_orgs(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, ORG_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Organization *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Organization **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	bool ok = items && ptrs;
	for (int i = 0; ok && i < rows; i++) {
		ok = row_to_org(res, i, &items[i], &sc);
		ptrs[i] = &items[i];
	}
	if (!ok) {
		fail_oom(r, &sc);
		return;
	}
	Crm__OrgPage page = CRM__ORG_PAGE__INIT;
	page.organizations = ptrs;
	page.n_organizations = (size_t)rows;
	page.existed = rows > 0 && !strcmp(PQgetvalue(res, 0, 0), "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_ORG_PAGE;
	resp.org_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

static void on_surveys(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, SURVEY_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Survey *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Survey **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	bool ok = items && ptrs;
	for (int i = 0; ok && i < rows; i++) {
		ok = row_to_survey(res, i, &items[i], &sc);
		ptrs[i] = &items[i];
	}
	if (!ok) {
		fail_oom(r, &sc);
		return;
	}
	Crm__SurveyPage page = CRM__SURVEY_PAGE__INIT;
	page.surveys = ptrs;
	page.n_surveys = (size_t)rows;
	page.existed = rows > 0 && !strcmp(PQgetvalue(res, 0, 0), "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_SURVEY_PAGE;
	resp.survey_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

static void on_questions(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, QUESTION_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__SurveyQuestion *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__SurveyQuestion **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		fail_oom(r, &sc);
		return;
	}
	for (int i = 0; i < rows; i++) {
		Crm__SurveyQuestion *q = &items[i];
		crm__survey_question__init(q);
		q->kind = PQgetvalue(res, i, 0);
		q->number = (uint32_t)col_i64(res, i, 1);
		q->text = PQgetvalue(res, i, 2);
		q->scale_max = (uint32_t)col_i64(res, i, 3);
		q->active = !strcmp(PQgetvalue(res, i, 4), "t");
		q->updated_at = col_i64(res, i, 5);
		q->updated_by = PQgetvalue(res, i, 6);
		ptrs[i] = q;
	}
	Crm__SurveyQuestions page = CRM__SURVEY_QUESTIONS__INIT;
	page.questions = ptrs;
	page.n_questions = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_SURVEY_QUESTIONS;
	resp.survey_questions = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

static void on_complaints(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, COMPLAINT_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Complaint *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Complaint **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	bool ok = items && ptrs;
	for (int i = 0; ok && i < rows; i++) {
		ok = row_to_complaint(res, i, &items[i], &sc);
		ptrs[i] = &items[i];
	}
	if (!ok) {
		fail_oom(r, &sc);
		return;
	}
	Crm__ComplaintPage page = CRM__COMPLAINT_PAGE__INIT;
	page.complaints = ptrs;
	page.n_complaints = (size_t)rows;
	page.existed = rows > 0 && !strcmp(PQgetvalue(res, 0, 0), "existed");
	page.at = r->env->body_case == CRM__ENVELOPE__BODY_COMPLAINT_LIST && r->env->complaint_list->at
			  ? r->env->complaint_list->at
			  : now_ms();
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_COMPLAINT_PAGE;
	resp.complaint_page = &page;
	req_reply(r, &resp);
	scratch_free(&sc);
}

/* ------------------------------------------------------------ referrals */

void h_referral_add(struct request *r)
{
	const Crm__Referral *f = r->env->referral_add->referral;
	if (!f) {
		invalid(r, "referral", "referral is required");
		return;
	}
	if (!uuid_ok(r, "referral.id", f->id, true) ||
	    !uuid_ok(r, "referral.referrer_id", f->referrer_id, true) ||
	    !uuid_ok(r, "referral.referred_id", f->referred_id, false) ||
	    !uuid_ok(r, "referral.relation_id", f->relation_id, false) ||
	    !uuid_ok(r, "referral.opportunity_id", f->opportunity_id, false) ||
	    !text_ok(r, "referral.note", f->note, 500, false) ||
	    !text_ok(r, "referral.reward_status", f->reward_status, 16, false))
		return;
	if (!*f->referred_id && !*f->relation_id) {
		invalid(r, "referral.referred_id",
			"referral.referred_id (or the referred customer's relation_id) is required");
		return;
	}
	char at[24];
	fmt_at(at, 0);
	const char *params[] = {r->conn->session.session_id, f->id, f->referrer_id, f->referred_id,
				f->relation_id, f->opportunity_id, f->note, f->reward_status, at};
	req_db(r, STMT_REFERRAL_ADD, 9, params, NULL, NULL, on_referrals);
}

void h_referral_reward(struct request *r)
{
	const Crm__ReferralReward *in = r->env->referral_reward;
	if (!uuid_ok(r, "id", in->id, true) ||
	    !text_ok(r, "reward_status", in->reward_status, 16, true) ||
	    !text_ok(r, "note", in->note, 500, false))
		return;
	char at[24];
	fmt_at(at, in->at);
	const char *params[] = {r->conn->session.session_id, in->id, in->reward_status, in->note,
				at};
	req_db(r, STMT_REFERRAL_REWARD, 5, params, NULL, NULL, on_referrals);
}

void h_referral_list(struct request *r)
{
	const Crm__ReferralList *in = r->env->referral_list;
	char limit[16];
	if (!uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "reward_status", in->reward_status, 16, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false) || !limit_ok(r, in->limit, limit))
		return;
	const char *params[] = {r->conn->session.session_id, in->customer_id, in->reward_status,
				in->store_code, limit};
	req_db(r, STMT_REFERRAL_LIST, 5, params, NULL, NULL, on_referrals);
}

/* ------------------------------------------------------------ organizations */

void h_org_add(struct request *r)
{
	const Crm__Organization *o = r->env->org_add->organization;
	if (!o) {
		invalid(r, "organization", "organization is required");
		return;
	}
	if (!uuid_ok(r, "organization.id", o->id, true) ||
	    !text_ok(r, "organization.kind", o->kind, 32, true) ||
	    !text_ok(r, "organization.name", o->name, 100, true) ||
	    !text_ok(r, "organization.owner", o->owner, 64, false) ||
	    !text_ok(r, "organization.note", o->note, 500, false))
		return;
	char at[24];
	fmt_at(at, 0);
	const char *params[] = {r->conn->session.session_id, o->id, o->kind, o->name, o->owner,
				o->note, at};
	req_db(r, STMT_ORG_ADD, 7, params, NULL, NULL, on_orgs);
}

void h_org_contact_add(struct request *r)
{
	const Crm__OrgContactAdd *in = r->env->org_contact_add;
	if (!uuid_ok(r, "organization_id", in->organization_id, true) ||
	    !uuid_ok(r, "customer_id", in->customer_id, true) ||
	    !text_ok(r, "role", in->role, 32, true) || !text_ok(r, "title", in->title, 100, false))
		return;
	char at[24];
	fmt_at(at, 0);
	const char *params[] = {r->conn->session.session_id, in->organization_id, in->customer_id,
				in->role, in->title, at};
	req_db(r, STMT_ORG_CONTACT_ADD, 6, params, NULL, NULL, on_orgs);
}

void h_org_plan_add(struct request *r)
{
	const Crm__PurchasePlan *p = r->env->org_plan_add->plan;
	if (!p) {
		invalid(r, "plan", "plan is required");
		return;
	}
	if (!uuid_ok(r, "plan.id", p->id, true) ||
	    !uuid_ok(r, "plan.organization_id", p->organization_id, true) ||
	    !text_ok(r, "plan.model", p->model, 100, true) ||
	    !text_ok(r, "plan.status", p->status, 16, false) ||
	    !text_ok(r, "plan.note", p->note, 500, false))
		return;
	if (p->quantity < 1 || p->quantity > 100000) {
		invalid(r, "plan.quantity", "plan.quantity must be from 1 to 100000");
		return;
	}
	if (p->expected_at <= 0) {
		invalid(r, "plan.expected_at",
			"plan.expected_at (the expected purchase date, unix ms) is required");
		return;
	}
	char quantity[16], expected[24], at[24];
	snprintf(quantity, sizeof quantity, "%u", p->quantity);
	snprintf(expected, sizeof expected, "%lld", (long long)p->expected_at);
	fmt_at(at, 0);
	const char *params[] = {r->conn->session.session_id, p->id, p->organization_id, p->model,
				quantity, expected, p->status, p->note, at};
	req_db(r, STMT_PLAN_ADD, 9, params, NULL, NULL, on_orgs);
}

void h_org_list(struct request *r)
{
	const Crm__OrgList *in = r->env->org_list;
	char limit[16];
	if (!uuid_ok(r, "id", in->id, false) || !uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "kind", in->kind, 32, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false) || !limit_ok(r, in->limit, limit))
		return;
	const char *params[] = {r->conn->session.session_id, in->id, in->customer_id, in->kind,
				in->store_code, limit};
	req_db(r, STMT_ORG_LIST, 6, params, NULL, NULL, on_orgs);
}

/* ------------------------------------------------------------ surveys */

void h_survey_add(struct request *r)
{
	const Crm__Survey *v = r->env->survey_add->survey;
	if (!v) {
		invalid(r, "survey", "survey is required");
		return;
	}
	if (!uuid_ok(r, "survey.id", v->id, true) ||
	    !text_ok(r, "survey.kind", v->kind, 8, true) ||
	    !uuid_ok(r, "survey.customer_id", v->customer_id, false) ||
	    !uuid_ok(r, "survey.relation_id", v->relation_id, false) ||
	    !text_ok(r, "survey.subject_kind", v->subject_kind, 16, true) ||
	    !uuid_ok(r, "survey.subject_id", v->subject_id, true) ||
	    !text_ok(r, "survey.comment", v->comment, 1000, false))
		return;
	if (!*v->customer_id && !*v->relation_id) {
		invalid(r, "survey.customer_id",
			"survey.customer_id (or the customer's relation_id) is required");
		return;
	}
	if (v->n_scores == 0 || v->n_scores > SURVEY_SCORES_MAX) {
		invalid(r, "survey.scores", "survey.scores must answer the questions (1 to %d)",
			SURVEY_SCORES_MAX);
		return;
	}
	/* "number:score" pairs; numbers and scores are at most two digits. */
	char scores[SURVEY_SCORES_MAX * 6 + 1];
	size_t len = 0;
	for (size_t i = 0; i < v->n_scores; i++) {
		const Crm__SurveyScore *s = v->scores[i];
		if (s->number < 1 || s->number > 50 || s->score < 1 || s->score > 10) {
			invalid(r, "survey.scores",
				"survey.scores: question %u scored %u; questions run from 1 to 50 and"
				" scores from 1 to 5 or 10",
				s->number, s->score);
			return;
		}
		len += (size_t)snprintf(scores + len, sizeof scores - len, "%s%u:%u", i ? "," : "",
					s->number, s->score);
	}
	char at[24], write_at[24];
	fmt_at(at, v->at);
	fmt_at(write_at, 0);
	const char *params[] = {r->conn->session.session_id, v->id, v->kind, v->customer_id,
				v->relation_id, v->subject_kind, v->subject_id, at, scores,
				v->comment, write_at};
	req_db(r, STMT_SURVEY_ADD, 11, params, NULL, NULL, on_surveys);
}

void h_survey_list(struct request *r)
{
	const Crm__SurveyList *in = r->env->survey_list;
	char limit[16];
	if (!uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "kind", in->kind, 8, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false) || !limit_ok(r, in->limit, limit))
		return;
	const char *params[] = {r->conn->session.session_id, in->customer_id, in->kind,
				in->store_code, limit};
	req_db(r, STMT_SURVEY_LIST, 5, params, NULL, NULL, on_surveys);
}

void h_survey_questions_get(struct request *r)
{
	const Crm__SurveyQuestionsGet *in = r->env->survey_questions_get;
	if (!text_ok(r, "kind", in->kind, 8, false))
		return;
	const char *params[] = {r->conn->session.session_id, in->kind};
	req_db(r, STMT_SURVEY_QUESTIONS, 2, params, NULL, NULL, on_questions);
}

void h_survey_question_set(struct request *r)
{
	const Crm__SurveyQuestion *q = r->env->survey_question_set->question;
	if (!q) {
		invalid(r, "question", "question is required");
		return;
	}
	if (!text_ok(r, "question.kind", q->kind, 8, true) ||
	    !text_ok(r, "question.text", q->text, 200, true))
		return;
	if (q->number < 1 || q->number > 50) {
		invalid(r, "question.number", "question.number must be from 1 to 50");
		return;
	}
	if (q->scale_max != 5 && q->scale_max != 10) {
		invalid(r, "question.scale_max", "question.scale_max must be 5 or 10");
		return;
	}
	char number[16], scale[16];
	snprintf(number, sizeof number, "%u", q->number);
	snprintf(scale, sizeof scale, "%u", q->scale_max);
	const char *params[] = {r->conn->session.session_id, q->kind, number, q->text, scale,
				q->active ? "true" : "false"};
	req_db(r, STMT_SURVEY_QUESTION_SET, 6, params, NULL, NULL, on_questions);
}

/* ------------------------------------------------------------ complaints */

void h_complaint_add(struct request *r)
{
	const Crm__Complaint *k = r->env->complaint_add->complaint;
	if (!k) {
		invalid(r, "complaint", "complaint is required");
		return;
	}
	if (!uuid_ok(r, "complaint.id", k->id, true) ||
	    !uuid_ok(r, "complaint.customer_id", k->customer_id, false) ||
	    !uuid_ok(r, "complaint.relation_id", k->relation_id, false) ||
	    !text_ok(r, "complaint.priority", k->priority, 16, false) ||
	    !text_ok(r, "complaint.category", k->category, 16, false) ||
	    !text_ok(r, "complaint.content", k->content, 2000, true))
		return;
	if (!*k->customer_id && !*k->relation_id) {
		invalid(r, "complaint.customer_id",
			"complaint.customer_id (or the customer's relation_id) is required");
		return;
	}
	if (k->due_at < 0) {
		invalid(r, "complaint.due_at", "complaint.due_at must be a time in unix milliseconds");
		return;
	}
	char received[24], due[24], write_at[24];
	fmt_at(received, k->received_at);
	snprintf(due, sizeof due, "%lld", (long long)k->due_at);
	fmt_at(write_at, 0);
	const char *params[] = {r->conn->session.session_id, k->id, k->customer_id, k->relation_id,
				k->priority, k->category, k->content, received, due, write_at};
	req_db(r, STMT_COMPLAINT_ADD, 10, params, NULL, NULL, on_complaints);
}

void h_complaint_assign(struct request *r)
{
	const Crm__ComplaintAssign *in = r->env->complaint_assign;
	if (!uuid_ok(r, "id", in->id, true) || !text_ok(r, "assignee", in->assignee, 64, true) ||
	    !text_ok(r, "note", in->note, 1000, false))
		return;
	char at[24];
	fmt_at(at, in->at);
	const char *params[] = {r->conn->session.session_id, in->id, in->assignee, in->note, at};
	req_db(r, STMT_COMPLAINT_ASSIGN, 5, params, NULL, NULL, on_complaints);
}

void h_complaint_move(struct request *r)
{
	const Crm__ComplaintMove *in = r->env->complaint_move;
	if (!uuid_ok(r, "id", in->id, true) ||
	    !text_ok(r, "to_status", in->to_status, 16, true) ||
	    !text_ok(r, "note", in->note, 1000, false) ||
	    !uuid_ok(r, "followup_id", in->followup_id, false))
		return;
	char at[24];
	fmt_at(at, in->at);
	const char *params[] = {r->conn->session.session_id, in->id, in->to_status, in->note,
				in->followup_id, at};
	req_db(r, STMT_COMPLAINT_MOVE, 6, params, NULL, NULL, on_complaints);
}

void h_complaint_list(struct request *r)
{
	const Crm__ComplaintList *in = r->env->complaint_list;
	char limit[16];
	if (!uuid_ok(r, "id", in->id, false) || !uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !text_ok(r, "status", in->status, 16, false) ||
	    !text_ok(r, "assignee", in->assignee, 64, false) ||
	    !text_ok(r, "store_code", in->store_code, 16, false) || !limit_ok(r, in->limit, limit))
		return;
	if (in->at < 0) {
		invalid(r, "at", "at must be a time in unix milliseconds");
		return;
	}
	char at[24];
	fmt_at(at, in->at);
	const char *params[] = {r->conn->session.session_id, in->id, in->customer_id, in->status,
				in->assignee, in->store_code, in->overdue_only ? "true" : "false",
				at, limit};
	req_db(r, STMT_COMPLAINT_LIST, 9, params, NULL, NULL, on_complaints);
}
