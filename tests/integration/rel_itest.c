/* Helpers of the relationship tests: see rel_itest.h. */
#include <time.h>

#include "rel_itest.h"
#include "textcheck.h"

PGconn *rel_db;
int64_t rel_t0;

bool rel_setup(void)
{
	it_init();
	rel_db = it_db();
	if (PQstatus(rel_db) != CONNECTION_OK)
		return false;
	rel_t0 = ((int64_t)time(NULL) * 1000 / HOUR_MS) * HOUR_MS - 10 * DAY_MS;
	return it_add_user(rel_db, "rs.consultant1", "任一", "consultant", "BJ01", REL_PASSWORD) &&
	       it_add_user(rel_db, "rs.consultant2", "任二", "consultant", "BJ01", REL_PASSWORD);
}

/* ------------------------------------------------------------ helpers */

long rel_db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(rel_db, sql, param);
	return v ? atol(v) : -1;
}

Crm__Code rel_code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

const char *rel_field_of(const Crm__Envelope *e)
{
	return e && e->status && e->status->field ? e->status->field : "";
}

/* The call's status is `want`; prints the message when not. */
bool rel_is(const Crm__Envelope *e, Crm__Code want)
{
	if (rel_code_of(e) == want)
		return true;
	fprintf(stderr, "  got %d (%s, field %s), want %d\n", (int)rel_code_of(e),
		e ? crmc_status_message(e) : "no answer", rel_field_of(e), (int)want);
	return false;
}

struct crmc *rel_login_user(const char *user)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, REL_PASSWORD) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

/* A customer and its relation at the caller's store, owned by the caller. */
bool rel_make_customer(struct crmc *c, const char *name, char cid[37], char rid[37])
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
	rel.source = (char *)"referral";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = rel_is(e, CRM__CODE__OK);
	it_free(e);
	return ok;
}

/* Outbox rows and 'change' audit entries of one record. */
long rel_outbox_count(const char *entity, const char *id)
{
	const char *params[] = {entity, id};
	PGresult *res = PQexecParams(rel_db, "SELECT count(*) FROM crm.outbox WHERE entity = $1"
					 " AND entity_id = $2::uuid", 2, NULL, params, NULL, NULL, 0);
	long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return n;
}

long rel_audit_count(const char *entity, const char *id)
{
	const char *params[] = {entity, id};
	PGresult *res = PQexecParams(rel_db, "SELECT count(*) FROM crm.audit_log WHERE action = 'change'"
					 " AND entity = $1 AND entity_id = $2", 2, NULL, params,
				     NULL, NULL, 0);
	long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return n;
}

/* The latest outbox payload of `id` (binary), in `out`; false when none. */
bool rel_outbox_latest(const char *id, uint8_t **out, size_t *len)
{
	PGresult *res = PQexecParams(rel_db, "SELECT payload FROM crm.outbox WHERE entity_id = $1::uuid"
					 " ORDER BY seq DESC LIMIT 1",
				     1, NULL, (const char *[]){id}, NULL, NULL, 1);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (ok) {
		*len = (size_t)PQgetlength(res, 0, 0);
		*out = malloc(*len + 1);
		ok = *out != NULL;
		if (ok)
			memcpy(*out, PQgetvalue(res, 0, 0), *len);
	}
	PQclear(res);
	return ok;
}

bool rel_table_exists(const char *name)
{
	return rel_db_long("SELECT count(*) FROM pg_class WHERE oid = to_regclass($1)", name) == 1;
}

/* ------------------------------------------------------------ requests */

Crm__Envelope *rel_referral_add(struct crmc *c, const char *id, const char *referrer,
				   const char *referred, const char *opportunity, const char *status)
{
	Crm__Referral f = CRM__REFERRAL__INIT;
	f.id = (char *)id;
	f.referrer_id = (char *)referrer;
	f.referred_id = (char *)referred;
	f.opportunity_id = (char *)(opportunity ? opportunity : "");
	f.reward_status = (char *)(status ? status : "");
	f.note = (char *)"老客户介绍";
	Crm__ReferralAdd ra = CRM__REFERRAL_ADD__INIT;
	ra.referral = &f;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_ADD;
	req.referral_add = &ra;
	return it_call(c, &req);
}

Crm__Envelope *rel_reward(struct crmc *c, const char *id, const char *status,
			     const char *note, int64_t at)
{
	Crm__ReferralReward rw = CRM__REFERRAL_REWARD__INIT;
	rw.id = (char *)id;
	rw.reward_status = (char *)status;
	rw.note = (char *)(note ? note : "");
	rw.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_REWARD;
	req.referral_reward = &rw;
	return it_call(c, &req);
}

Crm__Envelope *rel_referral_list(struct crmc *c, const char *customer, const char *status)
{
	Crm__ReferralList rl = CRM__REFERRAL_LIST__INIT;
	rl.customer_id = (char *)(customer ? customer : "");
	rl.reward_status = (char *)(status ? status : "");
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_LIST;
	req.referral_list = &rl;
	return it_call(c, &req);
}

const Crm__Referral *rel_one_referral(const Crm__Envelope *e)
{
	return rel_code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_REFERRAL_PAGE &&
			       e->referral_page->n_referrals == 1
		       ? e->referral_page->referrals[0]
		       : NULL;
}

Crm__Envelope *rel_org_add(struct crmc *c, const char *id, const char *kind, const char *name)
{
	Crm__Organization o = CRM__ORGANIZATION__INIT;
	o.id = (char *)id;
	o.kind = (char *)kind;
	o.name = (char *)name;
	Crm__OrgAdd oa = CRM__ORG_ADD__INIT;
	oa.organization = &o;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_ADD;
	req.org_add = &oa;
	return it_call(c, &req);
}

Crm__Envelope *rel_org_contact(struct crmc *c, const char *org, const char *customer,
				  const char *role, const char *title)
{
	Crm__OrgContactAdd ca = CRM__ORG_CONTACT_ADD__INIT;
	ca.organization_id = (char *)org;
	ca.customer_id = (char *)customer;
	ca.role = (char *)role;
	ca.title = (char *)title;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_CONTACT_ADD;
	req.org_contact_add = &ca;
	return it_call(c, &req);
}

Crm__Envelope *rel_plan_add(struct crmc *c, const char *org, uint32_t quantity,
			       const char *status)
{
	char id[37];
	uuid_v7_new(id);
	Crm__PurchasePlan p = CRM__PURCHASE_PLAN__INIT;
	p.id = id;
	p.organization_id = (char *)org;
	p.model = (char *)"帕萨特";
	p.quantity = quantity;
	p.expected_at = rel_t0 + 60 * DAY_MS;
	p.status = (char *)(status ? status : "");
	Crm__PlanAdd pa = CRM__PLAN_ADD__INIT;
	pa.plan = &p;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_PLAN_ADD;
	req.org_plan_add = &pa;
	return it_call(c, &req);
}

Crm__Envelope *rel_org_list(struct crmc *c, const char *id, const char *customer)
{
	Crm__OrgList ol = CRM__ORG_LIST__INIT;
	ol.id = (char *)(id ? id : "");
	ol.customer_id = (char *)(customer ? customer : "");
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_LIST;
	req.org_list = &ol;
	return it_call(c, &req);
}

const Crm__Organization *rel_one_org(const Crm__Envelope *e)
{
	return rel_code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_ORG_PAGE &&
			       e->org_page->n_organizations == 1
		       ? e->org_page->organizations[0]
		       : NULL;
}

/* `scores`: "n:s" pairs as the survey's answers. */
Crm__Envelope *rel_survey_add(struct crmc *c, const char *id, const char *kind,
				 const char *customer, const char *subject_kind,
				 const char *subject_id, const unsigned (*scores)[2], size_t n)
{
	Crm__SurveyScore s[16];
	Crm__SurveyScore *sp[16];
	for (size_t i = 0; i < n && i < 16; i++) {
		crm__survey_score__init(&s[i]);
		s[i].number = scores[i][0];
		s[i].score = scores[i][1];
		sp[i] = &s[i];
	}
	Crm__Survey v = CRM__SURVEY__INIT;
	v.id = (char *)id;
	v.kind = (char *)kind;
	v.customer_id = (char *)customer;
	v.subject_kind = (char *)subject_kind;
	v.subject_id = (char *)subject_id;
	v.at = rel_t0 + 2 * HOUR_MS;
	v.scores = sp;
	v.n_scores = n;
	v.comment = (char *)"顾问很耐心";
	Crm__SurveyAdd sa = CRM__SURVEY_ADD__INIT;
	sa.survey = &v;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_ADD;
	req.survey_add = &sa;
	return it_call(c, &req);
}

Crm__Envelope *rel_question_set(struct crmc *c, const char *kind, unsigned number,
				   const char *text, unsigned scale, bool active)
{
	Crm__SurveyQuestion q = CRM__SURVEY_QUESTION__INIT;
	q.kind = (char *)kind;
	q.number = number;
	q.text = (char *)text;
	q.scale_max = scale;
	q.active = active;
	Crm__SurveyQuestionSet qs = CRM__SURVEY_QUESTION_SET__INIT;
	qs.question = &q;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_QUESTION_SET;
	req.survey_question_set = &qs;
	return it_call(c, &req);
}

Crm__Envelope *rel_complaint_add(struct crmc *c, const char *id, const char *customer,
				    const char *priority, int64_t received, int64_t due)
{
	Crm__Complaint k = CRM__COMPLAINT__INIT;
	k.id = (char *)id;
	k.customer_id = (char *)customer;
	k.priority = (char *)priority;
	k.category = (char *)"service";
	k.content = (char *)"保养后仪表盘报警灯亮";
	k.received_at = received;
	k.due_at = due;
	Crm__ComplaintAdd ca = CRM__COMPLAINT_ADD__INIT;
	ca.complaint = &k;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_ADD;
	req.complaint_add = &ca;
	return it_call(c, &req);
}

Crm__Envelope *rel_complaint_assign(struct crmc *c, const char *id, const char *to,
				       int64_t at)
{
	Crm__ComplaintAssign a = CRM__COMPLAINT_ASSIGN__INIT;
	a.id = (char *)id;
	a.assignee = (char *)to;
	a.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_ASSIGN;
	req.complaint_assign = &a;
	return it_call(c, &req);
}

Crm__Envelope *rel_complaint_move(struct crmc *c, const char *id, const char *to,
				     const char *note, const char *followup, int64_t at)
{
	Crm__ComplaintMove m = CRM__COMPLAINT_MOVE__INIT;
	m.id = (char *)id;
	m.to_status = (char *)to;
	m.note = (char *)(note ? note : "");
	m.followup_id = (char *)(followup ? followup : "");
	m.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_MOVE;
	req.complaint_move = &m;
	return it_call(c, &req);
}

Crm__Envelope *rel_complaint_list(struct crmc *c, const char *id, bool overdue_only,
				     int64_t at)
{
	Crm__ComplaintList l = CRM__COMPLAINT_LIST__INIT;
	l.id = (char *)(id ? id : "");
	l.overdue_only = overdue_only;
	l.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_LIST;
	req.complaint_list = &l;
	return it_call(c, &req);
}

const Crm__Complaint *rel_one_complaint(const Crm__Envelope *e)
{
	return rel_code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_COMPLAINT_PAGE &&
			       e->complaint_page->n_complaints == 1
		       ? e->complaint_page->complaints[0]
		       : NULL;
}

bool rel_page_has_complaint(const Crm__Envelope *e, const char *id)
{
	if (rel_code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_COMPLAINT_PAGE)
		return false;
	for (size_t i = 0; i < e->complaint_page->n_complaints; i++)
		if (!strcmp(e->complaint_page->complaints[i]->id, id))
			return true;
	return false;
}

/* A follow-up of `type` on relation `rid` at `at`; its id in `fid`. */
bool rel_followup(struct crmc *c, const char *rid, const char *type, int64_t at, char fid[37])
{
	return rel_followup_next(c, rid, type, at, 0, NULL, fid);
}

bool rel_followup_next(struct crmc *c, const char *rid, const char *type, int64_t at,
		       int64_t next_due, const char *next_purpose, char fid[37])
{
	uuid_v7_new(fid);
	Crm__Followup f = CRM__FOLLOWUP__INIT;
	f.id = fid;
	f.relation_id = (char *)rid;
	f.method = (char *)"phone";
	f.type = (char *)type;
	f.at = at;
	f.content = (char *)"致电客户处理投诉";
	Crm__NextTask next = CRM__NEXT_TASK__INIT;
	next.due_at = next_due;
	next.method = (char *)"phone";
	next.purpose = (char *)(next_purpose ? next_purpose : "");
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &f;
	fa.next = next_due ? &next : NULL;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	req.followup_add = &fa;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = rel_is(e, CRM__CODE__OK);
	it_free(e);
	return ok;
}

/* A subject a survey may name: an order of relation `rid` (sql/0018) or a
 * service visit, made directly in the database when its table exists, a
 * new id when it does not. */
bool rel_make_subject(const char *kind, const char *rid, char id[37])
{
	uuid_v7_new(id);
	if (!strcmp(kind, "delivery") && rel_table_exists("crm.orders")) {
		const char *params[] = {id, rid};
		PGresult *res = PQexecParams(
			rel_db,
			"INSERT INTO crm.orders (id, relation_id, store_id, model, price_fen, placed_at,"
			" created_by, created_at, updated_at) SELECT $1::uuid, r.id, r.store_id, '途观L',"
			" 25000000, now(), r.created_by, now(), now() FROM crm.relations r"
			" WHERE r.id = $2::uuid",
			2, NULL, params, NULL, NULL, 0);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK && !strcmp(PQcmdTuples(res), "1");
		if (!ok)
			fprintf(stderr, "  order insert: %s\n", PQerrorMessage(rel_db));
		PQclear(res);
		return ok;
	}
	if (!strcmp(kind, "service_visit") && rel_table_exists("crm.service_visits")) {
		char vehicle[37], vin[18];
		uuid_v7_new(vehicle);
		size_t n = 0;
		for (const char *p = vehicle + 18; *p && n < 17; p++) /* the random part */
			if (*p != '-')
				vin[n++] = (char)(*p >= 'a' ? *p - 32 : *p);
		for (const char *p = vehicle; n < 17; p++)
			if (*p != '-')
				vin[n++] = (char)(*p >= 'a' ? *p - 32 : *p);
		vin[17] = '\0';
		const char *params[] = {id, rid, vehicle, vin};
		PGresult *res = PQexecParams(
			rel_db,
			"WITH r AS (SELECT customer_id, store_id FROM crm.relations WHERE id = $2::uuid),"
			" v AS (INSERT INTO crm.vehicles (id, customer_id, store_id, vin, model, created_at)"
			" SELECT $3::uuid, customer_id, store_id, $4, '途观L', now() FROM r RETURNING id)"
			" INSERT INTO crm.service_visits (id, vehicle_id, customer_id, store_id, at, mileage,"
			" type, amount, created_at) SELECT $1::uuid, v.id, r.customer_id, r.store_id, now(),"
			" 5000, 'maintenance', 80000, now() FROM r, v",
			4, NULL, params, NULL, NULL, 0);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK && !strcmp(PQcmdTuples(res), "1");
		if (!ok)
			fprintf(stderr, "  service visit insert: %s\n", PQerrorMessage(rel_db));
		PQclear(res);
		return ok;
	}
	return true;
}

