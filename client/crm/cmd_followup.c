/* crm followup add|list, crm tasks, crm task done|skip|reassign and
 * crm policy cadence show|set|remove (issue 5), and the follow-ups and
 * open tasks that `crm customer show` adds to the card. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm.h"
#include "textcheck.h"

static const char followup_usage[] =
	"crm followup add CUSTOMER_OR_RELATION_ID --method M --type T --content TEXT\n"
	"       [--feedback TEXT] [--at TIME] [--task TASK_ID] [--id UUID]\n"
	"       [--next TIME [--next-method M] [--next-purpose TEXT]]\n"
	"crm followup list CUSTOMER_OR_RELATION_ID [--limit N]\n"
	"  M: phone, wechat, visit, sms, email, other\n"
	"  T: first_contact, needs_analysis, model_presentation, invitation, test_drive,\n"
	"     negotiation, delivery, after_sales_call, care, complaint\n"
	"  TIME: \"YYYY-MM-DD HH:MM\" (local time), or +30m, +2h, +3d from now.\n"
	"  With a customer id, your store's relation to the customer is used.";

static const char tasks_usage[] =
	"crm tasks [today|overdue|week|open|closed] [--owner USER] [--store CODE]\n"
	"          [--at TIME] [--limit N]\n"
	"  today (default) includes the overdue ones; week runs to Sunday night.\n"
	"  --owner and --store: managers (their store), group roles (any).";

static const char task_usage[] =
	"crm task done TASK_ID --method M --type T --content TEXT [--feedback TEXT]\n"
	"       [--at TIME] [--next TIME [--next-method M] [--next-purpose TEXT]]\n"
	"crm task skip TASK_ID --reason TEXT\n"
	"crm task reassign TASK_ID --to USER [--reason TEXT]     (managers)\n"
	"  done records the follow-up that completes the task (see crm followup add).";

static const char policy_usage[] =
	"crm policy cadence show\n"
	"crm policy cadence set LEVEL EVENT STEP --after DURATION --method M --purpose TEXT\n"
	"       [--assignee owner|manager] [--covers any|own]     (group admins)\n"
	"crm policy cadence remove LEVEL EVENT STEP                (group admins)\n"
	"  LEVEL: N H A B C O D T; EVENT: level, first_visit, followup; STEP: 1..9\n"
	"  DURATION: 30m, 2h, 7d. --covers any (default): any open task due by then\n"
	"  covers the rule; own: only an open task of this rule does.";

static const char *const method_names[] = {"phone", "wechat", "visit", "sms", "email", "other",
					   NULL};
static const char *const type_names[] = {"first_contact", "needs_analysis", "model_presentation",
					 "invitation", "test_drive", "negotiation", "delivery",
					 "after_sales_call", "care", "complaint", NULL};

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

/* "30m", "2h", "7d" (or plain minutes) -> minutes. */
static bool parse_minutes(const char *s, uint64_t *minutes)
{
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || n == 0)
		return false;
	uint64_t unit = !*end ? 1 : !strcmp(end, "m") ? 1 : !strcmp(end, "h") ? 60
			: !strcmp(end, "d") ? 1440 : 0;
	if (!unit || n > 525600 / unit)
		return false;
	*minutes = n * unit;
	return true;
}

/* A local time, or "+DURATION" from now. */
static bool parse_when(const char *s, int64_t *ms, char *why, size_t whycap)
{
	uint64_t minutes;
	if (s[0] == '+') {
		if (!parse_minutes(s + 1, &minutes)) {
			snprintf(why, whycap, "\"%s\" is not +N followed by m, h or d", s);
			return false;
		}
		*ms = (int64_t)time(NULL) * 1000 + (int64_t)minutes * 60000;
		return true;
	}
	return parse_local_time(s, ms, why, whycap);
}

static void print_task(const Crm__Task *k, const char *done)
{
	char due[32];
	format_ms(k->due_at, due, sizeof due);
	printf("%s: %s\n  due %s  %s  %s\n  owner %s  status %s", done, k->id, due,
	       method_word(k->method), k->purpose, *k->owner ? k->owner : "(pool)", k->status);
	if (*k->reason)
		printf(" (%s)", k->reason);
	printf("\n");
}

/* ------------------------------------------------------------ ids */

/* The caller's store relation of `id` when it names a customer, else `id`
 * itself taken as a relation id. EXIT_OK or the exit code printed. */
static int relation_of(struct cli *cli, const char *id, char rel_id[37])
{
	Crm__CustomerGet g = CRM__CUSTOMER_GET__INIT;
	g.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
	req.customer_get = &g;
	int rc;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	Crm__Code code = crmc_status(resp);
	rc = EXIT_OK;
	if (code == CRM__CODE__NOT_FOUND) {
		snprintf(rel_id, 37, "%s", id);
	} else if (code != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER || !resp->customer) {
		rc = cli_unexpected(cli, resp);
	} else if (!resp->customer->relation || !*resp->customer->relation->id) {
		rc = cli_fail(cli, EXIT_NOT_FOUND, "NOT_FOUND", "relation_id",
			      "customer %s has no relation at your store", id);
	} else {
		snprintf(rel_id, 37, "%s", resp->customer->relation->id);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

/* ------------------------------------------------------------ followup add, task done */

struct followup_opts {
	Crm__Followup f;
	Crm__NextTask next;
	bool has_next;
	char id[37];
};

/* Options of a follow-up, shared by followup add and task done. -1: not
 * one of them. */
static int followup_opt(const struct cli *cli, const char *u, int argc, char **argv, int *i,
			struct followup_opts *o)
{
	static const char *const names[] = {"--method", "--type", "--content", "--feedback", "--at",
					    "--next", "--next-method", "--next-purpose", NULL};
	const char *a = argv[*i], *v;
	if (!in_list(a, names))
		return -1;
	int rc = cli_opt_value(cli, u, argc, argv, i, &v);
	if (rc != EXIT_OK)
		return rc;
	char why[256];
	if (!strcmp(a, "--method") || !strcmp(a, "--next-method")) {
		if (!in_list(v, method_names))
			return cli_usage(cli, u, "%s \"%s\": one of phone, wechat, visit, sms, email, other",
					 a, v);
		if (a[2] == 'm')
			o->f.method = (char *)v;
		else
			o->next.method = (char *)v;
	} else if (!strcmp(a, "--type")) {
		if (!in_list(v, type_names))
			return cli_usage(cli, u, "--type \"%s\" is not a follow-up type", v);
		o->f.type = (char *)v;
	} else if (!strcmp(a, "--content")) {
		o->f.content = (char *)v;
	} else if (!strcmp(a, "--feedback")) {
		o->f.feedback = (char *)v;
	} else if (!strcmp(a, "--at")) {
		if (!parse_local_time(v, &o->f.at, why, sizeof why))
			return cli_usage(cli, u, "--at: %s", why);
	} else if (!strcmp(a, "--next")) {
		if (!parse_when(v, &o->next.due_at, why, sizeof why))
			return cli_usage(cli, u, "--next: %s", why);
		o->has_next = true;
	} else {
		o->next.purpose = (char *)v;
	}
	return EXIT_OK;
}

static int followup_send(struct cli *cli, struct followup_opts *o, const char *u)
{
	if (!*o->f.method || !*o->f.type || !*o->f.content)
		return cli_usage(cli, u, "--method, --type and --content are required");
	if ((*o->next.method || *o->next.purpose) && !o->has_next)
		return cli_usage(cli, u, "--next-method and --next-purpose describe --next: give --next");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	char rel_id[37] = "";
	if (*o->f.relation_id) {
		if ((rc = relation_of(cli, o->f.relation_id, rel_id)) != EXIT_OK)
			return rc;
		o->f.relation_id = rel_id;
	}
	if (!o->id[0])
		uuid_v7_new(o->id);
	o->f.id = o->id;
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &o->f;
	fa.next = o->has_next ? &o->next : NULL;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	req.followup_add = &fa;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_FOLLOWUP_REPLY || !resp->followup_reply ||
		   !resp->followup_reply->followup) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->followup_reply->base);
	} else {
		const Crm__FollowupReply *fr = resp->followup_reply;
		printf("%s %s\n", fr->existed ? "follow-up already recorded:" : "follow-up recorded:",
		       fr->followup->id);
		print_followup_line(fr->followup, "  ");
		for (size_t i = 0; i < fr->n_tasks; i++) {
			const Crm__Task *k = fr->tasks[i];
			char due[32];
			format_ms(k->due_at, due, sizeof due);
			printf("  task %s %s: due %s, %s, %s\n", k->id,
			       !strcmp(k->status, "open") ? "set" : k->status, due,
			       method_word(k->method), k->purpose);
		}
		if (fr->relation) {
			char next[32];
			format_ms(fr->relation->next_followup_at, next, sizeof next);
			printf("  next follow-up: %s\n", next);
		}
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static void followup_opts_init(struct followup_opts *o)
{
	memset(o, 0, sizeof *o);
	crm__followup__init(&o->f);
	crm__next_task__init(&o->next);
}

static int followup_add(struct cli *cli, int argc, char **argv)
{
	const char *u = followup_usage;
	struct followup_opts o;
	followup_opts_init(&o);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v;
		int rc = followup_opt(cli, u, argc, argv, &i, &o);
		if (rc >= 0 && rc != EXIT_OK)
			return rc;
		if (rc == EXIT_OK || !strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--task") || !strcmp(a, "--id")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			uint8_t raw[16];
			if (!uuid_parse(v, raw))
				return cli_usage(cli, u, "%s \"%s\" is not a UUID", a, v);
			if (a[2] == 't')
				o.f.task_id = (char *)v;
			else
				snprintf(o.id, sizeof o.id, "%s", v);
		} else if (a[0] == '-' || *o.f.relation_id) {
			return cli_usage(cli, u, "followup add: unknown argument %s", a);
		} else {
			o.f.relation_id = (char *)a;
		}
	}
	uint8_t raw[16];
	if (!*o.f.relation_id)
		return cli_usage(cli, u, "followup add: give the customer (or relation) ID");
	if (!uuid_parse(o.f.relation_id, raw))
		return cli_usage(cli, u, "followup add: \"%s\" is not an ID (a UUID)", o.f.relation_id);
	return followup_send(cli, &o, u);
}

static int followup_list(struct cli *cli, int argc, char **argv)
{
	const char *u = followup_usage, *id = NULL, *limit_text = NULL;
	for (int i = 0; i < argc; i++) {
		int rc;
		if (!strcmp(argv[i], "--json"))
			continue;
		if (!strcmp(argv[i], "--limit")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &limit_text)) != EXIT_OK)
				return rc;
		} else if (argv[i][0] == '-' || id) {
			return cli_usage(cli, u, "followup list: unknown argument %s", argv[i]);
		} else {
			id = argv[i];
		}
	}
	uint8_t raw[16];
	uint64_t limit = 50;
	if (!id || !uuid_parse(id, raw))
		return cli_usage(cli, u, "followup list: give the customer (or relation) ID");
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope *resp = NULL;
	/* A customer id first; an id that is no customer's is a relation's. */
	for (int pass = 0; pass < 2; pass++) {
		Crm__FollowupList fl = CRM__FOLLOWUP_LIST__INIT;
		if (pass == 0)
			fl.customer_id = (char *)id;
		else
			fl.relation_id = (char *)id;
		fl.limit = (uint32_t)limit;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_LIST;
		req.followup_list = &fl;
		if (resp)
			crm__envelope__free_unpacked(resp, NULL);
		if (!(resp = cli_call(cli, &req, &rc)))
			return rc;
		if (crmc_status(resp) != CRM__CODE__NOT_FOUND)
			break;
	}
	Crm__FollowupPage *fp = crmc_status(resp) == CRM__CODE__OK &&
		resp->body_case == CRM__ENVELOPE__BODY_FOLLOWUP_PAGE ? resp->followup_page : NULL;
	if (fp)
		attach_fill_followups(cli, fp->followups, fp->n_followups);
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_FOLLOWUP_PAGE || !resp->followup_page) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->followup_page->base);
	} else if (!resp->followup_page->n_followups) {
		printf("no follow-ups yet\n");
	} else {
		for (size_t i = 0; i < resp->followup_page->n_followups; i++)
			print_followup_line(resp->followup_page->followups[i], "");
	}
	if (fp)
		attach_drop_followups(fp->followups, fp->n_followups);
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_followup(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "add"))
		return followup_add(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return followup_list(cli, argc - 1, argv + 1);
	return cli_usage(cli, followup_usage,
			 argc ? "followup: unknown subcommand \"%s\" (add, list)"
			      : "followup: give a subcommand: add or list%s",
			 argc ? argv[0] : "");
}

/* ------------------------------------------------------------ tasks */

int cmd_tasks(struct cli *cli, int argc, char **argv)
{
	const char *u = tasks_usage, *window = NULL, *limit_text = NULL, *at_text = NULL;
	Crm__TaskList tl = CRM__TASK_LIST__INIT;
	static const char *const windows[] = {"today", "overdue", "week", "open", "closed", NULL};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--owner") || !strcmp(a, "--store")) {
			const char **dst = (const char **)(a[2] == 'o' ? &tl.owner : &tl.store_code);
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
		} else if (!strcmp(a, "--limit") || !strcmp(a, "--at")) {
			const char **dst = a[2] == 'l' ? &limit_text : &at_text;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
		} else if (a[0] != '-' && !window && in_list(a, windows)) {
			window = a;
		} else {
			return cli_usage(cli, u, "tasks: unknown argument %s", a);
		}
	}
	uint64_t limit = 200;
	char why[256];
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	if (at_text && !parse_when(at_text, &tl.at, why, sizeof why))
		return cli_usage(cli, u, "--at: %s", why);
	tl.window = (char *)(window ? window : "today");
	tl.limit = (uint32_t)limit;
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TASK_LIST;
	req.task_list = &tl;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_TASK_PAGE || !resp->task_page) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->task_page->base);
	} else if (!resp->task_page->n_tasks) {
		printf("no tasks (%s)\n", tl.window);
	} else {
		print_task_table(resp->task_page->tasks, resp->task_page->n_tasks, "");
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static int task_reply(struct cli *cli, Crm__Envelope *req, const char *done)
{
	int rc;
	Crm__Envelope *resp = cli_call(cli, req, &rc);
	if (!resp)
		return rc;
	rc = EXIT_OK;
	if (crmc_status(resp) != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != CRM__ENVELOPE__BODY_TASK_REPLY || !resp->task_reply ||
		 !resp->task_reply->task)
		rc = cli_unexpected(cli, resp);
	else if (cli->json)
		print_json(&resp->task_reply->base);
	else
		print_task(resp->task_reply->task, done);
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_task(struct cli *cli, int argc, char **argv)
{
	const char *u = task_usage;
	if (argc < 1 || (strcmp(argv[0], "done") && strcmp(argv[0], "skip") &&
			 strcmp(argv[0], "reassign")))
		return cli_usage(cli, u,
				 argc ? "task: unknown subcommand \"%s\" (done, skip, reassign)"
				      : "task: give a subcommand: done, skip or reassign%s",
				 argc ? argv[0] : "");
	const char *sub = argv[0], *id = NULL, *reason = NULL, *to = NULL;
	struct followup_opts o;
	followup_opts_init(&o);
	bool done = !strcmp(sub, "done");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc = done ? followup_opt(cli, u, argc, argv, &i, &o) : -1;
		if (rc >= 0 && rc != EXIT_OK)
			return rc;
		if (rc == EXIT_OK || !strcmp(a, "--json"))
			continue;
		if (!done && (!strcmp(a, "--reason") || (!strcmp(a, "--to") && sub[0] == 'r'))) {
			const char **dst = a[2] == 'r' ? &reason : &to;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
		} else if (a[0] == '-' || id) {
			return cli_usage(cli, u, "task %s: unknown argument %s", sub, a);
		} else {
			id = a;
		}
	}
	uint8_t raw[16];
	if (!id || !uuid_parse(id, raw))
		return cli_usage(cli, u, "task %s: give the task ID (a UUID; crm tasks prints it)", sub);
	if (done) {
		o.f.task_id = (char *)id;
		return followup_send(cli, &o, u);
	}
	if (sub[0] == 's' && (!reason || !*reason))
		return cli_usage(cli, u, "task skip: --reason is required");
	if (sub[0] == 'r' && (!to || !*to))
		return cli_usage(cli, u, "task reassign: --to USER is required");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	if (sub[0] == 's') {
		Crm__TaskSkip ts = CRM__TASK_SKIP__INIT;
		ts.id = (char *)id;
		ts.reason = (char *)reason;
		req.body_case = CRM__ENVELOPE__BODY_TASK_SKIP;
		req.task_skip = &ts;
		return task_reply(cli, &req, "task skipped");
	}
	Crm__TaskReassign tr = CRM__TASK_REASSIGN__INIT;
	tr.id = (char *)id;
	tr.to_owner = (char *)to;
	tr.reason = (char *)(reason ? reason : "");
	req.body_case = CRM__ENVELOPE__BODY_TASK_REASSIGN;
	req.task_reassign = &tr;
	return task_reply(cli, &req, "task reassigned");
}

/* ------------------------------------------------------------ policy cadence */

static int cadence_reply(struct cli *cli, Crm__Envelope *req)
{
	int rc;
	Crm__Envelope *resp = cli_call(cli, req, &rc);
	if (!resp)
		return rc;
	rc = EXIT_OK;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_CADENCE_POLICY || !resp->cadence_policy) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->cadence_policy->base);
	} else {
		static const char *const headers[] = {"level", "event", "step", "due after",
						      "method", "assignee", "covers", "purpose"};
		struct table t;
		if (table_init(&t, 8, headers)) {
			for (size_t i = 0; i < resp->cadence_policy->n_rules; i++) {
				const Crm__CadenceRule *k = resp->cadence_policy->rules[i];
				char step[8], after[24];
				snprintf(step, sizeof step, "%u", k->step);
				uint32_t m = k->due_after_minutes;
				if (m % 1440 == 0)
					snprintf(after, sizeof after, "%ud", m / 1440);
				else if (m % 60 == 0)
					snprintf(after, sizeof after, "%uh", m / 60);
				else
					snprintf(after, sizeof after, "%um", m);
				const char *cells[] = {k->level, k->event, step, after,
						       method_word(k->method), k->assignee,
						       k->any_task_covers ? "any" : "own", k->purpose};
				table_add(&t, cells);
			}
			table_fit(&t);
			table_print_header(&t, stdout, "");
			table_print_rows(&t, stdout, "");
			table_free(&t);
		}
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	const char *u = policy_usage;
	if (argc < 2 || strcmp(argv[0], "cadence") ||
	    (strcmp(argv[1], "show") && strcmp(argv[1], "set") && strcmp(argv[1], "remove")))
		return cli_usage(cli, u, "policy: give cadence show, set or remove");
	const char *sub = argv[1];
	const char *pos[3] = {NULL, NULL, NULL}, *after = NULL, *assignee = "owner",
		   *covers = "any";
	size_t npos = 0;
	Crm__CadenceRule rule = CRM__CADENCE_RULE__INIT;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (sub[0] == 's' && sub[1] == 'e' &&
		    (!strcmp(a, "--after") || !strcmp(a, "--method") || !strcmp(a, "--purpose") ||
		     !strcmp(a, "--assignee") || !strcmp(a, "--covers"))) {
			const char **dst = !strcmp(a, "--after")	? &after
					   : !strcmp(a, "--method")	? (const char **)&rule.method
					   : !strcmp(a, "--purpose")	? (const char **)&rule.purpose
					   : !strcmp(a, "--assignee") ? &assignee
								      : &covers;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
		} else if (a[0] != '-' && npos < 3 && strcmp(sub, "show")) {
			pos[npos++] = a;
		} else {
			return cli_usage(cli, u, "policy cadence %s: unknown argument %s", sub, a);
		}
	}
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	Crm__CadencePolicyGet get = CRM__CADENCE_POLICY_GET__INIT;
	Crm__CadencePolicySet set = CRM__CADENCE_POLICY_SET__INIT;
	if (!strcmp(sub, "show")) {
		req.body_case = CRM__ENVELOPE__BODY_CADENCE_GET;
		req.cadence_get = &get;
	} else {
		uint64_t step, minutes = 0;
		if (npos != 3)
			return cli_usage(cli, u, "policy cadence %s: give LEVEL EVENT STEP", sub);
		if (!parse_level(pos[0], "NHABCODT"))
			return cli_usage(cli, u, "level \"%s\": one of N H A B C O D T", pos[0]);
		if (strcmp(pos[1], "level") && strcmp(pos[1], "first_visit") &&
		    strcmp(pos[1], "followup"))
			return cli_usage(cli, u, "event \"%s\": level, first_visit or followup", pos[1]);
		if (!parse_uint(pos[2], 1, 9, &step))
			return cli_usage(cli, u, "step \"%s\" must be from 1 to 9", pos[2]);
		if (sub[0] == 's') {
			if (!after || !parse_minutes(after, &minutes))
				return cli_usage(cli, u, "--after DURATION is required (30m, 2h, 7d; at most a year)");
			if (!*rule.method || !in_list(rule.method, method_names))
				return cli_usage(cli, u, "--method is required: phone, wechat, visit, sms, email, other");
			if (!*rule.purpose)
				return cli_usage(cli, u, "--purpose is required");
			if (strcmp(assignee, "owner") && strcmp(assignee, "manager"))
				return cli_usage(cli, u, "--assignee \"%s\": owner or manager", assignee);
			if (strcmp(covers, "any") && strcmp(covers, "own"))
				return cli_usage(cli, u, "--covers \"%s\": any or own", covers);
		}
		rule.level = (char *)parse_level(pos[0], "NHABCODT");
		rule.event = (char *)pos[1];
		rule.step = (uint32_t)step;
		rule.due_after_minutes = (uint32_t)minutes;
		rule.assignee = (char *)assignee;
		rule.any_task_covers = !strcmp(covers, "any");
		set.rule = &rule;
		set.remove = sub[0] == 'r';
		req.body_case = CRM__ENVELOPE__BODY_CADENCE_SET;
		req.cadence_set = &set;
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	return cadence_reply(cli, &req);
}

/* ------------------------------------------------------------ the card */

/* Adds the customer's latest follow-ups and open tasks to `card` (as the
 * caller may read them), for customer show. The replies stay in `held`
 * (free them after printing). A refusal leaves the card as it is. */
void card_add_followups(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[2])
{
	Crm__FollowupList fl = CRM__FOLLOWUP_LIST__INIT;
	fl.customer_id = card->customer->id;
	fl.limit = 5;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_LIST;
	req.followup_list = &fl;
	if ((held[0] = card_list(cli, &req, CRM__ENVELOPE__BODY_FOLLOWUP_PAGE))) {
		card->followups = held[0]->followup_page->followups;
		card->n_followups = held[0]->followup_page->n_followups;
		attach_fill_followups(cli, card->followups, card->n_followups);
	}
	Crm__TaskList tl = CRM__TASK_LIST__INIT;
	tl.customer_id = card->customer->id;
	tl.window = "open";
	tl.limit = 20;
	Crm__Envelope treq = CRM__ENVELOPE__INIT;
	treq.body_case = CRM__ENVELOPE__BODY_TASK_LIST;
	treq.task_list = &tl;
	if ((held[1] = card_list(cli, &treq, CRM__ENVELOPE__BODY_TASK_PAGE))) {
		card->open_tasks = held[1]->task_page->tasks;
		card->n_open_tasks = held[1]->task_page->n_tasks;
	}
}

void card_drop_followups(Crm__CustomerCard *card, Crm__Envelope *held[2])
{
	/* The lists belong to the held replies, not to the card's. */
	attach_drop_followups(card->followups, card->n_followups);
	card->followups = NULL;
	card->n_followups = 0;
	card->open_tasks = NULL;
	card->n_open_tasks = 0;
	for (int i = 0; i < 2; i++)
		if (held[i])
			crm__envelope__free_unpacked(held[i], NULL);
}
