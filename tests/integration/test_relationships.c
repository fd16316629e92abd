/* Relationships (issue 6; sql/0019) over TLS against PostgreSQL, at a fixed
 * clock: referrals and their reward status; organizations with contacts
 * and purchase plans; who may do what; the outbox and the audit of every
 * write; erasure of the free text of all four kinds of record; row-level
 * security on the tables. Surveys and complaints are in
 * test_surveys_complaints.c; the helpers in rel_itest.c.
 *
 * Consultants made here (rs.*) work at BJ01; the demo's managers of BJ01
 * and SH01 act on their records. */
#include "rel_itest.h"
#include "textcheck.h"

/* ------------------------------------------------------------ referrals */

/* Who referred whom, once per referred relation; the reward moves none ->
 * pending -> granted, managers decide, granted and refused are final; the
 * outbox and the audit hold every write. */
static void test_referrals(struct crmc *c1, struct crmc *c2, struct crmc *mgr,
			   struct crmc *sh_mgr)
{
	char a[37], ar[37], b[37], br[37], d[37], dr[37], id[37], id2[37];
	CHECK(rel_make_customer(c1, "老客户甲", a, ar));
	CHECK(rel_make_customer(c1, "新客户乙", b, br));
	CHECK(rel_make_customer(c1, "新客户丁", d, dr));
	uuid_v7_new(id);

	Crm__Envelope *e = rel_referral_add(c1, id, a, b, NULL, NULL);
	const Crm__Referral *f = rel_one_referral(e);
	CHECK(f && !e->referral_page->existed);
	CHECK(f && !strcmp(f->referrer_id, a) && !strcmp(f->referred_id, b) &&
	      !strcmp(f->relation_id, br) && !strcmp(f->referrer_name, "老客户甲") &&
	      !strcmp(f->reward_status, "none") && f->reward_at == 0 && f->version == 1 &&
	      !strcmp(f->store_code, "BJ01") && !strcmp(f->created_by, "rs.consultant1"));
	it_free(e);
	CHECK(rel_outbox_count("referral", id) == 1);
	CHECK(rel_audit_count("referral", id) == 1);
	uint8_t *buf;
	size_t len;
	if (rel_outbox_latest(id, &buf, &len)) {
		Crm__Referral *ob = crm__referral__unpack(NULL, len, buf);
		CHECK(ob && !strcmp(ob->id, id) && !strcmp(ob->referrer_id, a) &&
		      !strcmp(ob->relation_id, br) && !strcmp(ob->reward_status, "none") &&
		      ob->version == 1);
		if (ob)
			crm__referral__free_unpacked(ob, NULL);
		free(buf);
	} else {
		CHECK(!"the referral is in the outbox");
	}

	/* A retry writes nothing; the relation is referred once. */
	e = rel_referral_add(c1, id, a, b, NULL, NULL);
	CHECK(rel_one_referral(e) && e->referral_page->existed);
	it_free(e);
	CHECK(rel_outbox_count("referral", id) == 1);
	uuid_v7_new(id2);
	e = rel_referral_add(c1, id2, d, b, NULL, NULL);
	CHECK(rel_is(e, CRM__CODE__ALREADY_EXISTS) && !strcmp(rel_field_of(e), "referred_id"));
	it_free(e);
	e = rel_referral_add(c1, id2, b, b, NULL, NULL);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "referrer_id"));
	it_free(e);
	e = rel_referral_add(c1, id2, a, d, NULL, "granted");
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "reward_status"));
	it_free(e);
	/* An opportunity must be one of the referred relation's (checked once
	 * sql/0018's table is there). */
	char opp[37];
	uuid_v7_new(opp);
	e = rel_referral_add(c1, id2, a, d, opp, NULL);
	CHECK(rel_code_of(e) == (rel_table_exists("crm.opportunities") ? CRM__CODE__NOT_FOUND
							       : CRM__CODE__OK));
	it_free(e);
	PGresult *res = PQexecParams(rel_db, "DELETE FROM crm.referrals WHERE id = $1::uuid", 1, NULL,
				     (const char *[]){id2}, NULL, NULL, 0);
	PQclear(res);

	/* Scope: another consultant's customer, another store's manager. */
	e = rel_referral_add(c2, id2, a, d, NULL, NULL);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_referral_list(c2, b, NULL);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->referral_page->n_referrals == 0);
	it_free(e);
	e = rel_reward(sh_mgr, id, "granted", NULL, rel_t0);
	CHECK(rel_is(e, CRM__CODE__NOT_FOUND)); /* another store's: not revealed */
	it_free(e);

	/* The reward: pending by the consultant; only managers decide. */
	e = rel_reward(c1, id, "pending", NULL, rel_t0 + HOUR_MS);
	f = rel_one_referral(e);
	CHECK(f && !strcmp(f->reward_status, "pending") && !strcmp(f->reward_by, "rs.consultant1") &&
	      f->reward_at == rel_t0 + HOUR_MS && f->version == 2);
	it_free(e);
	e = rel_reward(c1, id, "granted", NULL, rel_t0 + 2 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_reward(mgr, id, "refused", "", rel_t0 + 2 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "note"));
	it_free(e);
	e = rel_reward(mgr, id, "granted", "送保养券两张", rel_t0 + 3 * HOUR_MS);
	f = rel_one_referral(e);
	CHECK(f && !strcmp(f->reward_status, "granted") && f->reward_at == rel_t0 + 3 * HOUR_MS &&
	      strstr(f->reward_by, "sales_manager") && !strcmp(f->reward_note, "送保养券两张"));
	it_free(e);
	e = rel_reward(mgr, id, "refused", "重复", rel_t0 + 4 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT) && !strcmp(rel_field_of(e), "reward_status"));
	it_free(e);
	e = rel_reward(c1, id, "pending", NULL, rel_t0 + 4 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT));
	it_free(e);
	CHECK(rel_outbox_count("referral", id) == 3);
	CHECK(rel_audit_count("referral", id) == 3);

	/* With the opportunity that came of it (one of the referred relation's,
	 * made in the database while sql/0018 has no test helper); then none
	 * -> refused directly, with a reason. */
	uuid_v7_new(id2);
	if (rel_table_exists("crm.opportunities")) {
		const char *params[] = {opp, dr};
		res = PQexecParams(rel_db,
				   "INSERT INTO crm.opportunities (id, relation_id, store_id, stage,"
				   " opened_at, created_by, created_at, updated_at) SELECT $1::uuid, r.id,"
				   " r.store_id, 'reception', now(), r.created_by, now(), now()"
				   " FROM crm.relations r WHERE r.id = $2::uuid",
				   2, NULL, params, NULL, NULL, 0);
		CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
		PQclear(res);
	}
	e = rel_referral_add(c1, id2, a, d, opp, NULL);
	CHECK(rel_one_referral(e) && !strcmp(rel_one_referral(e)->reward_status, "none") &&
	      !strcmp(rel_one_referral(e)->opportunity_id, opp));
	it_free(e);
	e = rel_reward(mgr, id2, "refused", "介绍人不符合活动条件", rel_t0);
	CHECK(rel_one_referral(e) && !strcmp(rel_one_referral(e)->reward_status, "refused"));
	it_free(e);

	/* Lists: what the referrer made; by status. */
	e = rel_referral_list(c1, a, NULL);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->referral_page->n_referrals == 2);
	it_free(e);
	e = rel_referral_list(mgr, a, "granted");
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->referral_page->n_referrals == 1 &&
	      !strcmp(e->referral_page->referrals[0]->id, id));
	it_free(e);
	e = rel_referral_list(c1, NULL, "bogus");
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "reward_status"));
	it_free(e);
}

/* ------------------------------------------------------------ organizations */

static void test_organizations(struct crmc *c1, struct crmc *c2, struct crmc *mgr,
			       struct crmc *sh_mgr, struct crmc *analyst)
{
	char oid[37], a[37], ar[37], x[37], xr[37], name[64];
	CHECK(rel_make_customer(c1, "车队主管王", a, ar));
	CHECK(rel_make_customer(c2, "别人的客户", x, xr));
	uuid_v7_new(oid);
	snprintf(name, sizeof name, "顺达出租车公司%.6s", oid + 30);
	Crm__Envelope *e = rel_org_add(c1, oid, "taxi", name);
	const Crm__Organization *o = rel_one_org(e);
	CHECK(o && !strcmp(o->kind, "taxi") && !strcmp(o->owner, "rs.consultant1") &&
	      !strcmp(o->store_code, "BJ01") && o->version == 1 && o->n_contacts == 0);
	it_free(e);
	CHECK(rel_outbox_count("organization", oid) == 1 && rel_audit_count("organization", oid) == 1);
	char other[37];
	uuid_v7_new(other);
	e = rel_org_add(c1, other, "rental", name);
	CHECK(rel_is(e, CRM__CODE__ALREADY_EXISTS) && !strcmp(rel_field_of(e), "name"));
	it_free(e);
	e = rel_org_add(c1, other, "airline", "某航空");
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "kind"));
	it_free(e);
	e = rel_org_add(analyst, other, "government", "某政府机关");
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);

	/* Contacts: a customer of the caller's; again changes the title. */
	e = rel_org_contact(c1, oid, a, "fleet_manager", "车队主管");
	o = rel_one_org(e);
	CHECK(o && o->version == 2 && o->n_contacts == 1 &&
	      !strcmp(o->contacts[0]->customer_id, a) && !strcmp(o->contacts[0]->role, "fleet_manager"));
	it_free(e);
	e = rel_org_contact(c1, oid, a, "decision_maker", "总经理");
	o = rel_one_org(e);
	CHECK(o && o->version == 3 && o->n_contacts == 1 &&
	      !strcmp(o->contacts[0]->title, "总经理"));
	it_free(e);
	e = rel_org_contact(c1, oid, x, "user", "");
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_org_contact(c1, oid, a, "boss", "");
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "role"));
	it_free(e);

	/* Plans. */
	e = rel_plan_add(c1, oid, 0, NULL);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "plan.quantity"));
	it_free(e);
	e = rel_plan_add(c1, oid, 20, "dreaming");
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "status"));
	it_free(e);
	e = rel_plan_add(c1, oid, 20, "negotiating");
	o = rel_one_org(e);
	CHECK(o && o->version == 4 && o->n_plans == 1 && o->plans[0]->quantity == 20 &&
	      !strcmp(o->plans[0]->status, "negotiating") &&
	      o->plans[0]->expected_at == rel_t0 + 60 * DAY_MS);
	it_free(e);
	uint8_t *buf;
	size_t len;
	if (rel_outbox_latest(oid, &buf, &len)) {
		Crm__Organization *ob = crm__organization__unpack(NULL, len, buf);
		CHECK(ob && ob->version == 4 && ob->n_contacts == 1 && ob->n_plans == 1 &&
		      !strcmp(ob->contacts[0]->customer_id, a) && ob->plans[0]->quantity == 20);
		if (ob)
			crm__organization__free_unpacked(ob, NULL);
		free(buf);
	} else {
		CHECK(!"the organization is in the outbox");
	}
	CHECK(rel_outbox_count("organization", oid) == 4 && rel_audit_count("organization", oid) == 4);

	/* Who sees it: its owner and the store's managers; not another
	 * consultant, not another store. */
	e = rel_org_list(c2, oid, NULL);
	CHECK(rel_is(e, CRM__CODE__NOT_FOUND));
	it_free(e);
	e = rel_plan_add(c2, oid, 5, NULL);
	CHECK(rel_is(e, CRM__CODE__NOT_FOUND));
	it_free(e);
	e = rel_org_list(mgr, oid, NULL);
	CHECK(rel_one_org(e) && rel_one_org(e)->n_plans == 1);
	it_free(e);
	e = rel_org_list(sh_mgr, oid, NULL);
	CHECK(rel_is(e, CRM__CODE__NOT_FOUND));
	it_free(e);
	e = rel_org_list(analyst, oid, NULL);
	CHECK(rel_one_org(e) != NULL);
	it_free(e);
	e = rel_org_list(c1, NULL, a);
	CHECK(rel_one_org(e) && !strcmp(rel_one_org(e)->contact_role, "decision_maker"));
	it_free(e);
}

/* ------------------------------------------------------------ erasure, security */

/* An erasure blanks the free text of all four, in its transaction. */
static void test_erasure(struct crmc *c1)
{
	char a[37], ar[37], b[37], br[37], rf[37], cp[37];
	CHECK(rel_make_customer(c1, "待删甲", a, ar));
	CHECK(rel_make_customer(c1, "待删乙", b, br));
	uuid_v7_new(rf);
	uuid_v7_new(cp);
	Crm__Envelope *e = rel_referral_add(c1, rf, a, b, NULL, NULL);
	CHECK(rel_one_referral(e) != NULL);
	it_free(e);
	e = rel_complaint_add(c1, cp, b, "low", rel_t0, 0);
	CHECK(rel_one_complaint(e) != NULL);
	it_free(e);
	char org[37], name[64], sv[37], order[37];
	uuid_v7_new(org);
	snprintf(name, sizeof name, "待删公司%.6s", org + 30);
	e = rel_org_add(c1, org, "private_enterprise", name);
	it_free(e);
	e = rel_org_contact(c1, org, b, "purchasing", "采购部王经理");
	CHECK(rel_one_org(e) && rel_one_org(e)->n_contacts == 1);
	it_free(e);
	static const unsigned ssi_ok[][2] = {{1, 9}, {2, 5}, {3, 4}, {4, 10}};
	uuid_v7_new(sv);
	CHECK(rel_make_subject("delivery", br, order));
	e = rel_survey_add(c1, sv, "ssi", b, "delivery", order, ssi_ok, 4);
	CHECK(rel_is(e, CRM__CODE__OK));
	it_free(e);
	CHECK(rel_db_long("WITH x AS (UPDATE crm.customers SET erased_at = now()"
		      " WHERE id = $1::uuid RETURNING 1) SELECT count(*) FROM x", b) == 1);
	CHECK(rel_db_long("SELECT count(*) FROM crm.referrals WHERE id = $1::uuid AND note = '已删除'",
		      rf) == 1);
	CHECK(rel_db_long("SELECT count(*) FROM crm.complaints WHERE id = $1::uuid"
		      " AND content = '已删除'", cp) == 1);
	CHECK(rel_db_long("SELECT count(*) FROM crm.org_contacts WHERE customer_id = $1::uuid"
		      " AND title = ''", b) == 1);
	CHECK(rel_db_long("SELECT count(*) FROM crm.surveys WHERE id = $1::uuid AND comment = ''",
		      sv) == 1);
	/* What was not about them stays. */
	CHECK(rel_db_long("SELECT count(*) FROM crm.survey_scores WHERE survey_id = $1::uuid", sv) == 4);
}

static void test_row_level_security(void)
{
	CHECK(rel_db_long("SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace"
		      " AND relname IN ('referrals', 'organizations', 'org_contacts',"
		      " 'purchase_plans', 'surveys', 'survey_scores', 'complaints',"
		      " 'complaint_events', 'complaint_followups')"
		      " AND relrowsecurity AND relforcerowsecurity", NULL) == 9);
	CHECK(rel_db_long("SELECT count(*) FROM pg_roles r WHERE r.rolname = 'crmd'"
		      " AND (has_table_privilege(r.oid, 'crm.complaints', 'DELETE')"
		      "   OR has_table_privilege(r.oid, 'crm.complaint_events', 'UPDATE')"
		      "   OR has_table_privilege(r.oid, 'crm.surveys', 'UPDATE'))", NULL) == 0);
	/* As crmd with no session, nothing is visible. */
	PGresult *res = PQexec(rel_db, "BEGIN");
	PQclear(res);
	res = PQexec(rel_db, "SET LOCAL ROLE crmd");
	PQclear(res);
	res = PQexec(rel_db, "SELECT (SELECT count(*) FROM crm.complaints)"
			 " + (SELECT count(*) FROM crm.referrals) + (SELECT count(*) FROM crm.surveys)"
			 " + (SELECT count(*) FROM crm.organizations)");
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(res, 0, 0), "0"));
	PQclear(res);
	res = PQexec(rel_db, "ROLLBACK");
	PQclear(res);
}

int main(void)
{
	if (!rel_setup())
		return 1;
	struct crmc *c1 = rel_login_user("rs.consultant1");
	struct crmc *c2 = rel_login_user("rs.consultant2");
	struct crmc *mgr = it_login_demo("sales_manager", "BJ01");
	struct crmc *sh_mgr = it_login_demo("sales_manager", "SH01");
	struct crmc *analyst = it_login_demo("group_analyst", NULL);
	if (!c1 || !c2 || !mgr || !sh_mgr || !analyst)
		return 1;
	test_referrals(c1, c2, mgr, sh_mgr);
	test_organizations(c1, c2, mgr, sh_mgr, analyst);
	test_erasure(c1);
	test_row_level_security();
	struct crmc *all[] = {c1, c2, mgr, sh_mgr, analyst};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		crmc_close(all[i]);
	PQfinish(rel_db);
	return it_summary();
}
