/* crm referral add|list|reward and crm survey add|list|questions|question
 * (issue 6 "Relationships"), the helpers the relationship commands share
 * (cmd_org.c, cmd_complaint.c), and what `crm customer show` adds to the
 * card: the customer's referrals, organizations, surveys and complaints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "textcheck.h"

static const char referral_usage[] =
	"crm referral add REFERRED_CUSTOMER_ID --by REFERRER_CUSTOMER_ID [--opportunity ID]\n"
	"       [--note TEXT] [--pending] [--id UUID]\n"
	"crm referral list [CUSTOMER_ID] [--status none|pending|granted|refused] [--store CODE]\n"
	"       [--limit N]\n"
	"crm referral reward REFERRAL_ID pending|granted|refused [--note TEXT]\n"
	"  The referred customer's relation at your store is the one referred.\n"
	"  Managers grant or refuse a reward (refusing needs --note); that is final.";

static const char survey_usage[] =
	"crm survey add CUSTOMER_ID csi --visit VISIT_ID | ssi --order ORDER_ID\n"
	"       --score N=S [--score N=S]... [--comment TEXT] [--at TIME] [--id UUID]\n"
	"crm survey list [CUSTOMER_ID] [--kind csi|ssi] [--store CODE] [--limit N]\n"
	"crm survey questions [csi|ssi]\n"
	"crm survey question KIND NUMBER --text TEXT --scale 5|10 [--retire]   (group admins)\n"
	"  csi: service, about a service visit; ssi: sales, about a delivery (the order).\n"
	"  Every active question is answered: --score 1=9 gives question 1 a 9.";

/* ------------------------------------------------------------ shared */

bool rel_uuid_arg(const char *s)
{
	uint8_t raw[16];
	return s && uuid_parse(s, raw);
}

int rel_call(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase want,
	     rel_print_fn print)
{
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope *resp = cli_call(cli, req, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != want)
		rc = cli_unexpected(cli, resp);
	else if (cli->json) {
		const ProtobufCMessage *body = NULL;
		switch (want) {
		case CRM__ENVELOPE__BODY_REFERRAL_PAGE: body = &resp->referral_page->base; break;
		case CRM__ENVELOPE__BODY_ORG_PAGE: body = &resp->org_page->base; break;
		case CRM__ENVELOPE__BODY_SURVEY_PAGE: body = &resp->survey_page->base; break;
		case CRM__ENVELOPE__BODY_SURVEY_QUESTIONS: body = &resp->survey_questions->base; break;
		case CRM__ENVELOPE__BODY_COMPLAINT_PAGE: body = &resp->complaint_page->base; break;
		default: break;
		}
		if (body)
			print_json(body);
	} else {
		print(resp);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

/* "2026-11-25" or "2026-11-25 09:30", local time. No "+3d" as follow-ups
 * take: these are times things happened, or dates. */
int rel_time_arg(const struct cli *cli, const char *u, const char *opt, const char *v,
		 int64_t *ms)
{
	char why[256];
	if (!parse_local_time(v, ms, why, sizeof why))
		return cli_usage(cli, u, "%s: %s", opt, why);
	return EXIT_OK;
}

/* ------------------------------------------------------------ referrals */

static void print_referral_rows(Crm__Referral *const *items, size_t n, const char *indent)
{
	static const char *const headers[] = {"REFERRER", "REFERRED", "STORE", "REWARD", "BY",
					      "CREATED", "ID"};
	struct table t;
	if (!table_init(&t, 7, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__Referral *f = items[i];
		char when[32];
		format_ms(f->created_at, when, sizeof when);
		const char *cells[] = {*f->referrer_name ? f->referrer_name : f->referrer_id,
				       *f->referred_name ? f->referred_name : f->referred_id,
				       f->store_code, f->reward_status, f->created_by, when, f->id};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, indent);
	table_print_rows(&t, stdout, indent);
	table_free(&t);
}

/* The one referral a write answers with. */
static void print_referral_one(const Crm__Envelope *resp)
{
	const Crm__ReferralPage *p = resp->referral_page;
	if (!p->n_referrals)
		return;
	const Crm__Referral *f = p->referrals[0];
	printf("referral %s%s\n", f->id, p->existed ? " (already recorded)" : "");
	printf("  %s referred %s at %s\n", *f->referrer_name ? f->referrer_name : f->referrer_id,
	       *f->referred_name ? f->referred_name : f->referred_id, f->store_code);
	printf("  reward %s", f->reward_status);
	if (*f->reward_by) {
		char when[32];
		format_ms(f->reward_at, when, sizeof when);
		printf(" (%s, %s)", f->reward_by, when);
	}
	printf("\n");
	if (*f->opportunity_id)
		printf("  opportunity %s\n", f->opportunity_id);
	if (*f->note)
		printf("  note %s\n", f->note);
	if (*f->reward_note)
		printf("  reward note %s\n", f->reward_note);
}

static void print_referral_list(const Crm__Envelope *resp)
{
	const Crm__ReferralPage *p = resp->referral_page;
	if (!p->n_referrals)
		printf("no referrals\n");
	else
		print_referral_rows(p->referrals, p->n_referrals, "");
}

static int referral_add(struct cli *cli, int argc, char **argv)
{
	const char *u = referral_usage, *v;
	Crm__Referral f = CRM__REFERRAL__INIT;
	char id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--pending")) {
			f.reward_status = (char *)"pending";
			continue;
		}
		if (!strcmp(a, "--by") || !strcmp(a, "--opportunity") || !strcmp(a, "--note") ||
		    !strcmp(a, "--id")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (strcmp(a, "--note") && !rel_uuid_arg(v))
				return cli_usage(cli, u, "%s \"%s\" is not an ID (a UUID)", a, v);
			if (!strcmp(a, "--by"))
				f.referrer_id = (char *)v;
			else if (!strcmp(a, "--opportunity"))
				f.opportunity_id = (char *)v;
			else if (!strcmp(a, "--note"))
				f.note = (char *)v;
			else
				snprintf(id, sizeof id, "%s", v);
		} else if (a[0] == '-' || *f.referred_id) {
			return cli_usage(cli, u, "referral add: unknown argument %s", a);
		} else if (!rel_uuid_arg(a)) {
			return cli_usage(cli, u, "referral add: \"%s\" is not a customer ID", a);
		} else {
			f.referred_id = (char *)a;
		}
	}
	if (!*f.referred_id || !*f.referrer_id)
		return cli_usage(cli, u, "referral add: give the referred customer's ID and --by "
				 "the referrer's");
	if (!id[0])
		uuid_v7_new(id);
	f.id = id;
	Crm__ReferralAdd ra = CRM__REFERRAL_ADD__INIT;
	ra.referral = &f;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_ADD;
	req.referral_add = &ra;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_REFERRAL_PAGE, print_referral_one);
}

static int referral_list(struct cli *cli, int argc, char **argv)
{
	const char *u = referral_usage, *v, *limit_text = NULL;
	Crm__ReferralList rl = CRM__REFERRAL_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--status") || !strcmp(a, "--store") || !strcmp(a, "--limit")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--status"))
				rl.reward_status = (char *)v;
			else if (!strcmp(a, "--store"))
				rl.store_code = (char *)v;
			else
				limit_text = v;
		} else if (a[0] == '-' || *rl.customer_id || !rel_uuid_arg(a)) {
			return cli_usage(cli, u, "referral list: unknown argument %s", a);
		} else {
			rl.customer_id = (char *)a;
		}
	}
	uint64_t limit = 100;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	rl.limit = (uint32_t)limit;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_LIST;
	req.referral_list = &rl;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_REFERRAL_PAGE, print_referral_list);
}

static int referral_reward(struct cli *cli, int argc, char **argv)
{
	const char *u = referral_usage, *id = NULL, *status = NULL;
	Crm__ReferralReward rw = CRM__REFERRAL_REWARD__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--note")) {
			const char *v;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			rw.note = (char *)v;
		} else if (a[0] == '-' || (id && status)) {
			return cli_usage(cli, u, "referral reward: unknown argument %s", a);
		} else if (!id) {
			id = a;
		} else {
			status = a;
		}
	}
	if (!rel_uuid_arg(id))
		return cli_usage(cli, u, "referral reward: give the referral's ID");
	if (!status || (strcmp(status, "pending") && strcmp(status, "granted") &&
			strcmp(status, "refused")))
		return cli_usage(cli, u, "referral reward: the status is pending, granted or refused");
	if (!strcmp(status, "refused") && !*rw.note)
		return cli_usage(cli, u, "referral reward: refusing needs --note saying why");
	rw.id = (char *)id;
	rw.reward_status = (char *)status;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_REWARD;
	req.referral_reward = &rw;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_REFERRAL_PAGE, print_referral_one);
}

int cmd_referral(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "add"))
		return referral_add(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return referral_list(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "reward"))
		return referral_reward(cli, argc - 1, argv + 1);
	return cli_usage(cli, referral_usage, "referral: add, list or reward");
}

/* ------------------------------------------------------------ surveys */

static void print_survey_rows(Crm__Survey *const *items, size_t n, const char *indent)
{
	static const char *const headers[] = {"KIND", "CUSTOMER", "STORE", "SCORE", "SUBJECT",
					      "AT", "ID"};
	struct table t;
	if (!table_init(&t, 7, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__Survey *v = items[i];
		char when[32], score[16], subject[64];
		format_ms(v->at, when, sizeof when);
		snprintf(score, sizeof score, "%u%%", v->score_percent);
		snprintf(subject, sizeof subject, "%s %.8s",
			 !strcmp(v->subject_kind, "delivery") ? "order" : "visit", v->subject_id);
		const char *cells[] = {!strcmp(v->kind, "csi") ? "CSI" : "SSI", v->customer_name,
				       v->store_code, score, subject, when, v->id};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, indent);
	table_print_rows(&t, stdout, indent);
	table_free(&t);
}

/* The one survey a write answers with. */
static void print_survey_one(const Crm__Envelope *resp)
{
	const Crm__SurveyPage *p = resp->survey_page;
	if (!p->n_surveys)
		return;
	const Crm__Survey *v = p->surveys[0];
	char when[32];
	format_ms(v->at, when, sizeof when);
	printf("%s survey %s%s\n", !strcmp(v->kind, "csi") ? "CSI" : "SSI", v->id,
	       p->existed ? " (already recorded)" : "");
	printf("  %s at %s, %s; %s %s\n", v->customer_name, v->store_code, when,
	       !strcmp(v->subject_kind, "delivery") ? "order" : "service visit", v->subject_id);
	for (size_t i = 0; i < v->n_scores; i++) {
		const Crm__SurveyScore *s = v->scores[i];
		printf("  %2u. %u/%u  %s\n", s->number, s->score, s->scale_max, s->question);
	}
	printf("  score %u%%\n", v->score_percent);
	if (*v->comment)
		printf("  comment %s\n", v->comment);
}

static void print_survey_list(const Crm__Envelope *resp)
{
	const Crm__SurveyPage *p = resp->survey_page;
	if (!p->n_surveys)
		printf("no surveys\n");
	else
		print_survey_rows(p->surveys, p->n_surveys, "");
}

#define SURVEY_SCORES_MAX 50

static int survey_add(struct cli *cli, int argc, char **argv)
{
	const char *u = survey_usage, *v;
	Crm__Survey s = CRM__SURVEY__INIT;
	Crm__SurveyScore scores[SURVEY_SCORES_MAX];
	Crm__SurveyScore *score_ptrs[SURVEY_SCORES_MAX];
	size_t n = 0;
	char id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--visit") || !strcmp(a, "--order") || !strcmp(a, "--score") ||
		    !strcmp(a, "--comment") || !strcmp(a, "--at") || !strcmp(a, "--id")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--visit") || !strcmp(a, "--order")) {
				if (!rel_uuid_arg(v))
					return cli_usage(cli, u, "%s \"%s\" is not an ID (a UUID)", a, v);
				s.subject_kind = (char *)(a[2] == 'v' ? "service_visit" : "delivery");
				s.subject_id = (char *)v;
			} else if (!strcmp(a, "--score")) {
				unsigned number, score;
				char extra;
				if (sscanf(v, "%u=%u%c", &number, &score, &extra) != 2)
					return cli_usage(cli, u,
							 "--score \"%s\": write QUESTION=SCORE, e.g. 1=9", v);
				if (n == SURVEY_SCORES_MAX)
					return cli_usage(cli, u, "at most %d --score", SURVEY_SCORES_MAX);
				crm__survey_score__init(&scores[n]);
				scores[n].number = number;
				scores[n].score = score;
				score_ptrs[n] = &scores[n];
				n++;
			} else if (!strcmp(a, "--comment")) {
				s.comment = (char *)v;
			} else if (!strcmp(a, "--at")) {
				if ((rc = rel_time_arg(cli, u, a, v, &s.at)) != EXIT_OK)
					return rc;
			} else {
				if (!rel_uuid_arg(v))
					return cli_usage(cli, u, "--id \"%s\" is not a UUID", v);
				snprintf(id, sizeof id, "%s", v);
			}
		} else if (a[0] == '-') {
			return cli_usage(cli, u, "survey add: unknown argument %s", a);
		} else if (!*s.customer_id) {
			if (!rel_uuid_arg(a))
				return cli_usage(cli, u, "survey add: \"%s\" is not a customer ID", a);
			s.customer_id = (char *)a;
		} else if (!*s.kind && (!strcmp(a, "csi") || !strcmp(a, "ssi"))) {
			s.kind = (char *)a;
		} else {
			return cli_usage(cli, u, "survey add: unknown argument %s", a);
		}
	}
	if (!*s.customer_id || !*s.kind)
		return cli_usage(cli, u, "survey add: give the customer's ID and csi or ssi");
	if (!*s.subject_id)
		return cli_usage(cli, u, "survey add: a csi survey needs --visit, an ssi survey --order");
	if (!n)
		return cli_usage(cli, u, "survey add: give the scores (--score N=S per question)");
	if (!id[0])
		uuid_v7_new(id);
	s.id = id;
	s.scores = score_ptrs;
	s.n_scores = n;
	Crm__SurveyAdd sa = CRM__SURVEY_ADD__INIT;
	sa.survey = &s;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_ADD;
	req.survey_add = &sa;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_SURVEY_PAGE, print_survey_one);
}

static int survey_list(struct cli *cli, int argc, char **argv)
{
	const char *u = survey_usage, *v, *limit_text = NULL;
	Crm__SurveyList sl = CRM__SURVEY_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--kind") || !strcmp(a, "--store") || !strcmp(a, "--limit")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--kind"))
				sl.kind = (char *)v;
			else if (!strcmp(a, "--store"))
				sl.store_code = (char *)v;
			else
				limit_text = v;
		} else if (a[0] == '-' || *sl.customer_id || !rel_uuid_arg(a)) {
			return cli_usage(cli, u, "survey list: unknown argument %s", a);
		} else {
			sl.customer_id = (char *)a;
		}
	}
	uint64_t limit = 100;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	sl.limit = (uint32_t)limit;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_LIST;
	req.survey_list = &sl;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_SURVEY_PAGE, print_survey_list);
}

static void print_questions(const Crm__Envelope *resp)
{
	const Crm__SurveyQuestions *q = resp->survey_questions;
	for (size_t i = 0; i < q->n_questions; i++) {
		const Crm__SurveyQuestion *x = q->questions[i];
		printf("%s %2u  1-%-2u  %s%s\n", !strcmp(x->kind, "csi") ? "CSI" : "SSI", x->number,
		       x->scale_max, x->text, x->active ? "" : "  (retired)");
	}
}

static int survey_questions(struct cli *cli, int argc, char **argv)
{
	Crm__SurveyQuestionsGet g = CRM__SURVEY_QUESTIONS_GET__INIT;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (*g.kind || (strcmp(argv[i], "csi") && strcmp(argv[i], "ssi")))
			return cli_usage(cli, survey_usage, "survey questions: csi or ssi, or nothing");
		g.kind = argv[i];
	}
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_QUESTIONS_GET;
	req.survey_questions_get = &g;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_SURVEY_QUESTIONS, print_questions);
}

static int survey_question_set(struct cli *cli, int argc, char **argv)
{
	const char *u = survey_usage, *v, *number = NULL, *scale = NULL;
	Crm__SurveyQuestion q = CRM__SURVEY_QUESTION__INIT;
	q.active = true;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--retire")) {
			q.active = false;
		} else if (!strcmp(a, "--text") || !strcmp(a, "--scale")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (a[2] == 't')
				q.text = (char *)v;
			else
				scale = v;
		} else if (a[0] == '-' || (*q.kind && number)) {
			return cli_usage(cli, u, "survey question: unknown argument %s", a);
		} else if (!*q.kind) {
			q.kind = (char *)a;
		} else {
			number = a;
		}
	}
	uint64_t n, s;
	if (strcmp(q.kind, "csi") && strcmp(q.kind, "ssi"))
		return cli_usage(cli, u, "survey question: the kind is csi or ssi");
	if (!number || !parse_uint(number, 1, 50, &n))
		return cli_usage(cli, u, "survey question: the number is from 1 to 50");
	if (!scale || !parse_uint(scale, 5, 10, &s) || (s != 5 && s != 10))
		return cli_usage(cli, u, "survey question: --scale is 5 or 10");
	if (!*q.text)
		return cli_usage(cli, u, "survey question: --text is required");
	q.number = (uint32_t)n;
	q.scale_max = (uint32_t)s;
	Crm__SurveyQuestionSet qs = CRM__SURVEY_QUESTION_SET__INIT;
	qs.question = &q;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_QUESTION_SET;
	req.survey_question_set = &qs;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_SURVEY_QUESTIONS, print_questions);
}

int cmd_survey(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "add"))
		return survey_add(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return survey_list(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "questions"))
		return survey_questions(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "question"))
		return survey_question_set(cli, argc - 1, argv + 1);
	return cli_usage(cli, survey_usage, "survey: add, list, questions or question");
}

/* ------------------------------------------------------------ the card */

void card_add_relationships(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[4])
{
	char *cid = card->customer->id;
	Crm__ReferralList rl = CRM__REFERRAL_LIST__INIT;
	rl.customer_id = cid;
	rl.limit = 20;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REFERRAL_LIST;
	req.referral_list = &rl;
	if ((held[0] = card_list(cli, &req, CRM__ENVELOPE__BODY_REFERRAL_PAGE))) {
		card->referrals = held[0]->referral_page->referrals;
		card->n_referrals = held[0]->referral_page->n_referrals;
	}
	Crm__OrgList ol = CRM__ORG_LIST__INIT;
	ol.customer_id = cid;
	ol.limit = 20;
	req.body_case = CRM__ENVELOPE__BODY_ORG_LIST;
	req.org_list = &ol;
	if ((held[1] = card_list(cli, &req, CRM__ENVELOPE__BODY_ORG_PAGE))) {
		card->organizations = held[1]->org_page->organizations;
		card->n_organizations = held[1]->org_page->n_organizations;
	}
	Crm__SurveyList sl = CRM__SURVEY_LIST__INIT;
	sl.customer_id = cid;
	sl.limit = 10;
	req.body_case = CRM__ENVELOPE__BODY_SURVEY_LIST;
	req.survey_list = &sl;
	if ((held[2] = card_list(cli, &req, CRM__ENVELOPE__BODY_SURVEY_PAGE))) {
		card->surveys = held[2]->survey_page->surveys;
		card->n_surveys = held[2]->survey_page->n_surveys;
	}
	Crm__ComplaintList cl = CRM__COMPLAINT_LIST__INIT;
	cl.customer_id = cid;
	cl.limit = 20;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_LIST;
	req.complaint_list = &cl;
	if ((held[3] = card_list(cli, &req, CRM__ENVELOPE__BODY_COMPLAINT_PAGE))) {
		card->complaints = held[3]->complaint_page->complaints;
		card->n_complaints = held[3]->complaint_page->n_complaints;
	}
}

void card_drop_relationships(Crm__CustomerCard *card, Crm__Envelope *held[4])
{
	/* The lists belong to the held replies, not to the card's. */
	card->referrals = NULL;
	card->n_referrals = 0;
	card->organizations = NULL;
	card->n_organizations = 0;
	card->surveys = NULL;
	card->n_surveys = 0;
	card->complaints = NULL;
	card->n_complaints = 0;
	for (int i = 0; i < 4; i++)
		if (held[i])
			crm__envelope__free_unpacked(held[i], NULL);
}

void print_card_relationships(const Crm__CustomerCard *card)
{
	if (card->n_referrals) {
		printf("\nReferrals\n");
		print_referral_rows(card->referrals, card->n_referrals, "  ");
	}
	if (card->n_organizations) {
		printf("\nOrganizations\n");
		for (size_t i = 0; i < card->n_organizations; i++) {
			const Crm__Organization *o = card->organizations[i];
			printf("  %s  %s  %s  %s%s%s\n", o->name, o->kind, o->store_code,
			       o->contact_role, *o->owner ? "  owner " : "", o->owner);
		}
	}
	if (card->n_surveys) {
		printf("\nSurveys\n");
		print_survey_rows(card->surveys, card->n_surveys, "  ");
	}
	if (card->n_complaints) {
		printf("\nComplaints\n");
		print_complaint_rows(card->complaints, card->n_complaints, "  ");
	}
}
