/* Satisfaction surveys and complaints (issue 6; sql/0019) over TLS against
 * PostgreSQL, at a fixed clock: the questionnaires and the validation of
 * scores (scale, every question once), one survey per subject; every
 * complaint move allowed and refused, the due time by priority, overdue
 * derived, the follow-ups that handled it; who may do what; the outbox and
 * the audit of every write. Helpers in rel_itest.c. */
#include "rel_itest.h"
#include "textcheck.h"

/* ------------------------------------------------------------ surveys */

static void test_surveys(struct crmc *c1, struct crmc *c2, struct crmc *admin)
{
	char cid[37], rid[37], order[37], visit[37], id[37];
	CHECK(rel_make_customer(c1, "满意度客户", cid, rid));
	CHECK(rel_make_subject("delivery", rid, order));
	CHECK(rel_make_subject("service_visit", rid, visit));

	/* The seeded questionnaires. */
	Crm__SurveyQuestionsGet g = CRM__SURVEY_QUESTIONS_GET__INIT;
	g.kind = (char *)"csi";
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_QUESTIONS_GET;
	req.survey_questions_get = &g;
	Crm__Envelope *e = it_call(c1, &req);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->survey_questions->n_questions == 5 &&
	      e->survey_questions->questions[0]->scale_max == 10 &&
	      e->survey_questions->questions[1]->scale_max == 5);
	it_free(e);

	static const unsigned ssi_ok[][2] = {{1, 9}, {2, 5}, {3, 4}, {4, 10}};
	static const unsigned ssi_over[][2] = {{1, 9}, {2, 6}, {3, 4}, {4, 10}};
	static const unsigned ssi_missing[][2] = {{1, 9}, {2, 5}, {4, 10}};
	static const unsigned ssi_unknown[][2] = {{1, 9}, {2, 5}, {3, 4}, {4, 10}, {9, 3}};
	static const unsigned ssi_twice[][2] = {{1, 9}, {2, 5}, {3, 4}, {4, 10}, {2, 4}};
	static const unsigned csi_ok[][2] = {{1, 8}, {2, 4}, {3, 3}, {4, 5}, {5, 9}};
	uuid_v7_new(id);
	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, ssi_over, 4);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "scores") &&
	      strstr(crmc_status_message(e), "from 1 to 5"));
	it_free(e);
	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, ssi_missing, 3);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && strstr(crmc_status_message(e), "question 3"));
	it_free(e);
	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, ssi_unknown, 5);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && strstr(crmc_status_message(e), "no question 9"));
	it_free(e);
	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, ssi_twice, 5);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && strstr(crmc_status_message(e), "twice"));
	it_free(e);
	static const unsigned zero[][2] = {{1, 0}};
	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, zero, 1);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "survey.scores"));
	it_free(e);
	e = rel_survey_add(c1, id, "ssi", cid, "service_visit", visit, ssi_ok, 4);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "subject_kind"));
	it_free(e);
	e = rel_survey_add(c2, id, "ssi", cid, "delivery", order, ssi_ok, 4);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	CHECK(rel_db_long("SELECT count(*) FROM crm.surveys WHERE id = $1::uuid", id) == 0);

	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, ssi_ok, 4);
	CHECK(rel_is(e, CRM__CODE__OK));
	const Crm__Survey *v = rel_code_of(e) == CRM__CODE__OK && e->survey_page->n_surveys == 1
				       ? e->survey_page->surveys[0]
				       : NULL;
	/* (9 + 5 + 4 + 10) / (10 + 5 + 5 + 10) = 93.3% */
	CHECK(v && v->n_scores == 4 && v->score_percent == 93 && v->scores[1]->scale_max == 5 &&
	      *v->scores[0]->question && !strcmp(v->relation_id, rid) && v->at == rel_t0 + 2 * HOUR_MS);
	it_free(e);
	CHECK(rel_outbox_count("survey", id) == 1 && rel_audit_count("survey", id) == 1);
	uint8_t *buf;
	size_t len;
	if (rel_outbox_latest(id, &buf, &len)) {
		Crm__Survey *ob = crm__survey__unpack(NULL, len, buf);
		CHECK(ob && ob->n_scores == 4 && ob->scores[3]->score == 10 &&
		      !strcmp(ob->subject_id, order) && !strcmp(ob->kind, "ssi"));
		if (ob)
			crm__survey__free_unpacked(ob, NULL);
		free(buf);
	} else {
		CHECK(!"the survey is in the outbox");
	}
	e = rel_survey_add(c1, id, "ssi", cid, "delivery", order, ssi_ok, 4);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->survey_page->existed);
	it_free(e);
	char id2[37];
	uuid_v7_new(id2);
	e = rel_survey_add(c1, id2, "ssi", cid, "delivery", order, ssi_ok, 4);
	CHECK(rel_is(e, CRM__CODE__ALREADY_EXISTS) && !strcmp(rel_field_of(e), "subject_id"));
	it_free(e);
	if (rel_table_exists("crm.orders")) {
		char stranger[37];
		uuid_v7_new(stranger);
		e = rel_survey_add(c1, id2, "ssi", cid, "delivery", stranger, ssi_ok, 4);
		CHECK(rel_is(e, CRM__CODE__NOT_FOUND) && !strcmp(rel_field_of(e), "subject_id"));
		it_free(e);
	}

	/* A group admin retires a question: it is no longer asked. */
	e = rel_question_set(c1, "csi", 5, "x", 10, false);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_question_set(admin, "csi", 5, "向亲友推荐本店的可能性", 7, false);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "question.scale_max"));
	it_free(e);
	e = rel_question_set(admin, "csi", 5, "向亲友推荐本店的可能性", 10, false);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->survey_questions->n_questions == 5 &&
	      !e->survey_questions->questions[4]->active);
	it_free(e);
	CHECK(rel_db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'policy.survey_question'"
		      " AND entity_id = $1", "csi/5") >= 1);
	uuid_v7_new(id2);
	e = rel_survey_add(c1, id2, "csi", cid, "service_visit", visit, csi_ok, 5);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && strstr(crmc_status_message(e), "no question 5"));
	it_free(e);
	e = rel_survey_add(c1, id2, "csi", cid, "service_visit", visit, csi_ok, 4);
	v = rel_code_of(e) == CRM__CODE__OK ? e->survey_page->surveys[0] : NULL;
	/* (8 + 4 + 3 + 5) / (10 + 5 + 5 + 5) = 80% */
	CHECK(v && v->n_scores == 4 && v->score_percent == 80);
	it_free(e);
	e = rel_question_set(admin, "csi", 5, "向亲友推荐本店的可能性", 10, true);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->survey_questions->questions[4]->active);
	it_free(e);

	/* The customer's surveys, newest first; another consultant sees none. */
	Crm__SurveyList sl = CRM__SURVEY_LIST__INIT;
	sl.customer_id = cid;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_LIST;
	req.survey_list = &sl;
	e = it_call(c1, &req);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->survey_page->n_surveys == 2);
	it_free(e);
	e = it_call(c2, &req);
	CHECK(rel_code_of(e) == CRM__CODE__OK && e->survey_page->n_surveys == 0);
	it_free(e);
}

/* ------------------------------------------------------------ complaints */

/* Every move, allowed and refused, at a fixed clock; the due time by
 * priority; overdue derived; the follow-ups that handled it; the outbox. */
static void test_complaints(struct crmc *c1, struct crmc *c2, struct crmc *mgr,
			    struct crmc *agent)
{
	char cid[37], rid[37], id[37], fu[37], care[37];
	CHECK(rel_make_customer(c1, "投诉客户", cid, rid));
	uuid_v7_new(id);
	Crm__Envelope *e = rel_complaint_add(c1, id, cid, "high", rel_t0, 0);
	const Crm__Complaint *k = rel_one_complaint(e);
	CHECK(k && !strcmp(k->status, "received") && k->received_at == rel_t0 &&
	      k->due_at == rel_t0 + 24 * HOUR_MS && k->n_events == 1 && !*k->assignee &&
	      !strcmp(k->category, "service"));
	it_free(e);
	e = rel_complaint_add(c1, id, cid, "high", rel_t0, 0);
	CHECK(rel_one_complaint(e) && e->complaint_page->existed);
	it_free(e);
	char id2[37];
	uuid_v7_new(id2);
	e = rel_complaint_add(c1, id2, cid, "urgent", rel_t0, rel_t0 - HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "due_at"));
	it_free(e);
	e = rel_complaint_add(c1, id2, cid, "soon", rel_t0, 0);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "priority"));
	it_free(e);
	e = rel_complaint_add(c2, id2, cid, "low", rel_t0, 0);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_complaint_add(c1, id2, cid, "urgent", rel_t0, rel_t0 + 2 * HOUR_MS);
	CHECK(rel_one_complaint(e) && rel_one_complaint(e)->due_at == rel_t0 + 2 * HOUR_MS);
	it_free(e);

	/* Overdue: derived at the time asked about. */
	e = rel_complaint_list(c1, id, false, rel_t0 + HOUR_MS);
	CHECK(rel_one_complaint(e) && !rel_one_complaint(e)->overdue);
	it_free(e);
	e = rel_complaint_list(c1, id, false, rel_t0 + 25 * HOUR_MS);
	CHECK(rel_one_complaint(e) && rel_one_complaint(e)->overdue);
	it_free(e);
	e = rel_complaint_list(mgr, NULL, true, rel_t0 + 3 * HOUR_MS);
	CHECK(rel_page_has_complaint(e, id2) && !rel_page_has_complaint(e, id));
	it_free(e);
	e = rel_complaint_list(mgr, NULL, true, rel_t0 + 25 * HOUR_MS);
	CHECK(rel_page_has_complaint(e, id2) && rel_page_has_complaint(e, id));
	it_free(e);
	e = rel_complaint_list(c2, id, false, rel_t0);
	CHECK(rel_is(e, CRM__CODE__NOT_FOUND));
	it_free(e);

	/* received: only assignment moves it. */
	e = rel_complaint_move(c1, id, "in_handling", NULL, NULL, rel_t0 + HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT) && strstr(crmc_status_message(e), "assign it first"));
	it_free(e);
	e = rel_complaint_move(mgr, id, "closed", NULL, NULL, rel_t0 + HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT));
	it_free(e);
	e = rel_complaint_assign(c1, id, "rs.consultant1", rel_t0 + HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_complaint_assign(mgr, id, "nobody.here", rel_t0 + HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "assignee"));
	it_free(e);
	e = rel_complaint_assign(mgr, id, "rs.consultant2", rel_t0 + HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "assignee") &&
	      strstr(crmc_status_message(e), "does not own"));
	it_free(e);
	e = rel_complaint_assign(mgr, id, "rs.consultant1", rel_t0 + HOUR_MS);
	k = rel_one_complaint(e);
	CHECK(k && !strcmp(k->status, "assigned") && !strcmp(k->assignee, "rs.consultant1") &&
	      k->n_events == 2 && !strcmp(k->events[1]->assignee, "rs.consultant1"));
	it_free(e);

	/* assigned: resolve and close are refused; the assignee handles it,
	 * linking a follow-up of type complaint (not any other). */
	e = rel_complaint_move(c1, id, "resolved", "已更换传感器", NULL, rel_t0 + 2 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT));
	it_free(e);
	e = rel_complaint_move(c2, id, "in_handling", NULL, NULL, rel_t0 + 2 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__NOT_FOUND)); /* another consultant's customer */
	it_free(e);
	e = rel_complaint_move(agent, id, "in_handling", NULL, NULL, rel_t0 + 2 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED)); /* not the assignee */
	it_free(e);
	CHECK(rel_followup(c1, rid, "complaint", rel_t0 + 2 * HOUR_MS, fu));
	CHECK(rel_followup(c1, rid, "care", rel_t0 + 2 * HOUR_MS, care));
	e = rel_complaint_move(c1, id, "in_handling", NULL, care, rel_t0 + 2 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "followup_id"));
	it_free(e);
	e = rel_complaint_move(c1, id, "in_handling", "已联系客户", fu, rel_t0 + 2 * HOUR_MS);
	k = rel_one_complaint(e);
	CHECK(k && !strcmp(k->status, "in_handling") && k->n_followup_ids == 1 &&
	      !strcmp(k->followup_ids[0], fu));
	it_free(e);
	e = rel_complaint_move(c1, id, "in_handling", NULL, NULL, rel_t0 + 3 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT));
	it_free(e);
	e = rel_complaint_move(c1, id2, "in_handling", NULL, fu, rel_t0 + 3 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT)); /* id2 is still received */
	it_free(e);

	/* in_handling: resolve needs the resolution; then it is not overdue. */
	e = rel_complaint_move(c1, id, "resolved", "", NULL, rel_t0 + 30 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "resolution"));
	it_free(e);
	e = rel_complaint_move(c1, id, "resolved", "已更换传感器", NULL, rel_t0 + 30 * HOUR_MS);
	k = rel_one_complaint(e);
	CHECK(k && !strcmp(k->status, "resolved") && k->resolved_at == rel_t0 + 30 * HOUR_MS &&
	      !strcmp(k->resolution, "已更换传感器") && !k->overdue);
	it_free(e);
	e = rel_complaint_list(c1, id, false, rel_t0 + 40 * HOUR_MS);
	CHECK(rel_one_complaint(e) && !rel_one_complaint(e)->overdue);
	it_free(e);

	/* Reopening: back to in_handling, a reason required. */
	e = rel_complaint_move(c1, id, "in_handling", "", NULL, rel_t0 + 41 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "note"));
	it_free(e);
	e = rel_complaint_move(c1, id, "in_handling", "客户反映报警灯又亮了", NULL, rel_t0 + 41 * HOUR_MS);
	k = rel_one_complaint(e);
	CHECK(k && !strcmp(k->status, "in_handling") && k->resolved_at == 0 && k->overdue);
	it_free(e);
	e = rel_complaint_move(mgr, id, "resolved", "更换线束后正常", NULL, rel_t0 + 50 * HOUR_MS);
	CHECK(rel_one_complaint(e) && !strcmp(rel_one_complaint(e)->status, "resolved"));
	it_free(e);

	/* Closing: managers and call-center agents; then nothing moves. */
	e = rel_complaint_move(c1, id, "closed", NULL, NULL, rel_t0 + 51 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__PERMISSION_DENIED));
	it_free(e);
	e = rel_complaint_move(agent, id, "closed", "回访确认满意", NULL, rel_t0 + 52 * HOUR_MS);
	k = rel_one_complaint(e);
	CHECK(k && !strcmp(k->status, "closed") && k->closed_at == rel_t0 + 52 * HOUR_MS &&
	      k->n_events == 7);
	it_free(e);
	e = rel_complaint_move(mgr, id, "in_handling", "再次", NULL, rel_t0 + 53 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT) && strstr(crmc_status_message(e), "closed"));
	it_free(e);
	e = rel_complaint_assign(mgr, id, "rs.consultant1", rel_t0 + 53 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__CONFLICT));
	it_free(e);
	e = rel_complaint_move(mgr, id, "reopened", NULL, NULL, rel_t0 + 53 * HOUR_MS);
	CHECK(rel_is(e, CRM__CODE__INVALID_ARGUMENT) && !strcmp(rel_field_of(e), "to_status"));
	it_free(e);

	/* add, assign, handle, resolve, reopen, resolve, close. */
	CHECK(rel_outbox_count("complaint", id) == 7 && rel_audit_count("complaint", id) == 7);
	uint8_t *buf;
	size_t len;
	if (rel_outbox_latest(id, &buf, &len)) {
		Crm__Complaint *ob = crm__complaint__unpack(NULL, len, buf);
		CHECK(ob && !strcmp(ob->status, "closed") && ob->n_events == 7 &&
		      ob->n_followup_ids == 1 && !strcmp(ob->followup_ids[0], fu) && ob->version == 7);
		if (ob)
			crm__complaint__free_unpacked(ob, NULL);
		free(buf);
	} else {
		CHECK(!"the complaint is in the outbox");
	}
}

int main(void)
{
	if (!rel_setup())
		return 1;
	struct crmc *c1 = rel_login_user("rs.consultant1");
	struct crmc *c2 = rel_login_user("rs.consultant2");
	struct crmc *mgr = it_login_demo("sales_manager", "BJ01");
	struct crmc *agent = it_login_demo("call_center", "BJ01");
	struct crmc *admin = it_login_demo("group_admin", NULL);
	if (!c1 || !c2 || !mgr || !agent || !admin)
		return 1;
	test_surveys(c1, c2, admin);
	test_complaints(c1, c2, mgr, agent);
	struct crmc *all[] = {c1, c2, mgr, agent, admin};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		crmc_close(all[i]);
	PQfinish(rel_db);
	return it_summary();
}
