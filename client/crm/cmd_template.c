/* crm template add|list|show|update|render|send (message templates, issue
 * 5) and crm compliance (follow-up compliance per person over a period). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm.h"
#include "textcheck.h"

static const char template_usage[] =
	"crm template add --name NAME --channel sms|wechat|email --body TEXT [--inactive] [--id UUID]\n"
	"crm template list [--all] [--channel C]\n"
	"crm template show TEMPLATE_ID\n"
	"crm template update TEMPLATE_ID --version V [--name NAME] [--channel C] [--body TEXT]\n"
	"       [--active | --inactive]\n"
	"crm template render TEMPLATE_ID CUSTOMER_ID [--relation RELATION_ID] [--model MODEL]\n"
	"       [--date DATE] [--allow-blanks]\n"
	"crm template send TEMPLATE_ID CUSTOMER_ID [render options] [--type care|invitation]\n"
	"       [--task TASK_ID] [--id FOLLOWUP_UUID]\n"
	"  The body's placeholders: {name} {consultant} {store} {model} {date}; {{ and }}\n"
	"  are braces. Group admins write group-wide templates, store managers their\n"
	"  store's. DATE: YYYY-MM-DD (or with HH:MM), default the next task's due day.\n"
	"  send records a follow-up of the template's channel (type care by default);\n"
	"  give a failed send's --id again to retry it: it is sent once.";

static const char compliance_usage[] =
	"crm compliance [--since DATE] [--until DATE] [--store CODE] [--owner USER] [--at TIME]\n"
	"  Tasks due from --since (default 30 days before --until) to --until (default\n"
	"  now or --at), per person: on time, late (average and longest), missed, open.\n"
	"  Consultants see their own; managers their store's; group roles any store.";

static const char *const channel_names[] = {"sms", "wechat", "email", NULL};

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static bool is_uuid(const char *s)
{
	uint8_t raw[16];
	return s && uuid_parse(s, raw);
}

/* A day ("YYYY-MM-DD", taken at noon local time, so that any client time
 * zone within 12 hours of the group's names the same day) or a local time. */
static bool parse_day(const char *s, int64_t *ms, char *why, size_t whycap)
{
	if (!parse_local_time(s, ms, why, whycap))
		return false;
	if (strlen(s) == 10)
		*ms += 12 * 3600 * 1000LL;
	return true;
}

/* 95 minutes -> "1h35m"; 3 days 2 hours -> "3d2h". */
static void format_duration(int64_t ms, char *out, size_t cap)
{
	int64_t m = (ms + 30000) / 60000;
	if (ms <= 0)
		snprintf(out, cap, "-");
	else if (m < 60)
		snprintf(out, cap, "%lldm", (long long)(m ? m : 1));
	else if (m < 1440)
		snprintf(out, cap, "%lldh%02lldm", (long long)(m / 60), (long long)(m % 60));
	else
		snprintf(out, cap, "%lldd%lldh", (long long)(m / 1440), (long long)(m % 1440 / 60));
}

static const char *channel_word(const char *c)
{
	return !strcmp(c, "sms") ? "SMS" : !strcmp(c, "email") ? "email" : method_word(c);
}

static void print_template(const Crm__MessageTemplate *t)
{
	printf("template %s (version %llu, %s)\n", t->id, (unsigned long long)t->version,
	       t->active ? "active" : "inactive");
	printf("  name     %s\n", t->name);
	if (*t->store_code)
		printf("  scope    store %s\n", t->store_code);
	else
		printf("  scope    group-wide\n");
	printf("  channel  %s\n", channel_word(t->channel));
	printf("  body     %s\n", t->body);
	printf("  uses     ");
	for (size_t i = 0; i < t->n_placeholders; i++)
		printf("%s{%s}", i ? " " : "", t->placeholders[i]);
	printf("%s\n", t->n_placeholders ? "" : "no placeholders");
}

/* Sends `req`, expects a reply of `body_case`; prints it with `print`
 * (or as JSON). A CONFLICT with a template carries the current one. */
static int call_and_print(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase want,
			  void (*print)(const Crm__Envelope *resp), const char *retry_hint)
{
	int rc;
	Crm__Envelope *resp = cli_call(cli, req, &rc);
	if (!resp) {
		if (retry_hint)
			fprintf(stderr, "crm: %s\n", retry_hint);
		return rc;
	}
	rc = EXIT_OK;
	Crm__Code code = crmc_status(resp);
	/* A send recorded but not handed over names the follow-up. */
	if (retry_hint && code != CRM__CODE__OK && resp->status && resp->status->field &&
	    !strcmp(resp->status->field, "followup_id"))
		fprintf(stderr, "crm: %s\n", retry_hint);
	if (code == CRM__CODE__CONFLICT && resp->body_case == CRM__ENVELOPE__BODY_TEMPLATE_REPLY &&
	    resp->template_reply->template_) {
		rc = cli_fail_response_body(cli, resp, "template_reply", &resp->template_reply->base);
		if (!cli->json)
			print_template(resp->template_reply->template_);
	} else if (code != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != want) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		const ProtobufCMessage *body =
			want == CRM__ENVELOPE__BODY_TEMPLATE_REPLY ? &resp->template_reply->base
			: want == CRM__ENVELOPE__BODY_TEMPLATE_PAGE ? &resp->template_page->base
			: want == CRM__ENVELOPE__BODY_TEMPLATE_RENDERED ? &resp->template_rendered->base
									 : &resp->compliance_report->base;
		print_json(body);
	} else {
		print(resp);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

/* ------------------------------------------------------------ add, update, show, list */

static void print_template_reply(const Crm__Envelope *resp)
{
	const Crm__TemplateReply *tr = resp->template_reply;
	if (tr->existed)
		printf("(already saved)\n");
	print_template(tr->template_);
}

struct template_opts {
	Crm__MessageTemplate t;
	const char *fields[4];
	size_t n_fields;
	char id[37];
};

static void field_once(struct template_opts *o, const char *f)
{
	for (size_t i = 0; i < o->n_fields; i++)
		if (!strcmp(o->fields[i], f))
			return;
	o->fields[o->n_fields++] = f;
}

/* --name, --channel, --body, --active, --inactive. -1: not one of them. */
static int template_opt(const struct cli *cli, const char *u, int argc, char **argv, int *i,
			struct template_opts *o)
{
	const char *a = argv[*i], *v;
	int rc;
	if (!strcmp(a, "--active") || !strcmp(a, "--inactive")) {
		o->t.active = a[2] == 'a';
		field_once(o, "active");
		return EXIT_OK;
	}
	if (strcmp(a, "--name") && strcmp(a, "--channel") && strcmp(a, "--body"))
		return -1;
	if ((rc = cli_opt_value(cli, u, argc, argv, i, &v)) != EXIT_OK)
		return rc;
	if (a[2] == 'n') {
		o->t.name = (char *)v;
		field_once(o, "name");
	} else if (a[2] == 'c') {
		if (!in_list(v, channel_names))
			return cli_usage(cli, u, "--channel \"%s\": sms, wechat or email", v);
		o->t.channel = (char *)v;
		field_once(o, "channel");
	} else {
		o->t.body = (char *)v;
		field_once(o, "body");
	}
	return EXIT_OK;
}

static int template_save(struct cli *cli, int argc, char **argv, bool create)
{
	const char *u = template_usage, *id = NULL, *version_text = NULL;
	struct template_opts o;
	memset(&o, 0, sizeof o);
	crm__message_template__init(&o.t);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc = template_opt(cli, u, argc, argv, &i, &o);
		if (rc >= 0 && rc != EXIT_OK)
			return rc;
		if (rc == EXIT_OK || !strcmp(a, "--json"))
			continue;
		if (create && !strcmp(a, "--id")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &id)) != EXIT_OK)
				return rc;
			if (!uuid_is_v7(id))
				return cli_usage(cli, u, "--id \"%s\" is not a UUID version 7", id);
		} else if (!create && !strcmp(a, "--version")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &version_text)) != EXIT_OK)
				return rc;
		} else if (create || a[0] == '-' || id) {
			return cli_usage(cli, u, "template %s: unknown argument %s",
					 create ? "add" : "update", a);
		} else {
			id = a;
		}
	}
	Crm__TemplateSave ts = CRM__TEMPLATE_SAVE__INIT;
	if (create) {
		if (!*o.t.name || !*o.t.channel || !*o.t.body)
			return cli_usage(cli, u, "template add: --name, --channel and --body are required");
		if (id)
			snprintf(o.id, sizeof o.id, "%s", id);
		else
			uuid_v7_new(o.id);
		o.t.id = o.id;
	} else {
		if (!is_uuid(id))
			return cli_usage(cli, u, "template update: give the template's ID (a UUID)");
		if (!version_text || !parse_uint(version_text, 1, UINT64_MAX, &ts.version))
			return cli_usage(cli, u,
					 "template update: --version V is required (crm template show %s"
					 " prints it)", id);
		if (!o.n_fields)
			return cli_usage(cli, u,
					 "template update: say what to change (--name, --channel, --body,"
					 " --active, --inactive)");
		o.t.id = (char *)id;
		ts.fields = (char **)o.fields;
		ts.n_fields = o.n_fields;
	}
	if (create) {
		/* --inactive on add is the one field given beyond the required. */
		bool inactive = false;
		for (size_t i = 0; i < o.n_fields; i++)
			inactive = inactive || (!strcmp(o.fields[i], "active") && !o.t.active);
		o.t.active = !inactive;
		if (inactive) {
			static const char *const active_field[] = {"active"};
			ts.fields = (char **)active_field;
			ts.n_fields = 1;
		}
	}
	ts.template_ = &o.t;
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_SAVE;
	req.template_save = &ts;
	return call_and_print(cli, &req, CRM__ENVELOPE__BODY_TEMPLATE_REPLY, print_template_reply, NULL);
}

static void print_template_page(const Crm__Envelope *resp)
{
	const Crm__TemplatePage *p = resp->template_page;
	if (!p->n_templates) {
		printf("no templates\n");
		return;
	}
	static const char *const headers[] = {"id", "scope", "channel", "name", "state", "body"};
	struct table t;
	if (!table_init(&t, 6, headers))
		return;
	t.max_widths[5] = 40;
	for (size_t i = 0; i < p->n_templates; i++) {
		const Crm__MessageTemplate *k = p->templates[i];
		const char *cells[] = {k->id, *k->store_code ? k->store_code : "group",
				       channel_word(k->channel), k->name,
				       k->active ? "active" : "inactive", k->body};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "");
	table_print_rows(&t, stdout, "");
	table_free(&t);
}

static int template_list(struct cli *cli, int argc, char **argv)
{
	const char *u = template_usage;
	Crm__TemplateList tl = CRM__TEMPLATE_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		int rc;
		if (!strcmp(argv[i], "--json"))
			continue;
		if (!strcmp(argv[i], "--all")) {
			tl.include_inactive = true;
		} else if (!strcmp(argv[i], "--channel")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, (const char **)&tl.channel)) !=
			    EXIT_OK)
				return rc;
			if (!in_list(tl.channel, channel_names))
				return cli_usage(cli, u, "--channel \"%s\": sms, wechat or email",
						 tl.channel);
		} else {
			return cli_usage(cli, u, "template list: unknown argument %s", argv[i]);
		}
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_LIST;
	req.template_list = &tl;
	return call_and_print(cli, &req, CRM__ENVELOPE__BODY_TEMPLATE_PAGE, print_template_page, NULL);
}

static int template_show(struct cli *cli, int argc, char **argv)
{
	const char *id = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (argv[i][0] == '-' || id)
			return cli_usage(cli, template_usage, "template show: unknown argument %s",
					 argv[i]);
		id = argv[i];
	}
	if (!is_uuid(id))
		return cli_usage(cli, template_usage, "template show: give the template's ID (a UUID)");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__TemplateGet g = CRM__TEMPLATE_GET__INIT;
	g.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_GET;
	req.template_get = &g;
	return call_and_print(cli, &req, CRM__ENVELOPE__BODY_TEMPLATE_REPLY, print_template_reply, NULL);
}

/* ------------------------------------------------------------ render, send */

static void print_rendered(const Crm__Envelope *resp)
{
	const Crm__TemplateRendered *t = resp->template_rendered;
	for (size_t i = 0; i < t->n_blanks; i++)
		fprintf(stderr, "crm: {%s} had no value and was left blank\n", t->blanks[i]);
	if (!t->followup) {
		printf("%s\n", t->text);
		return;
	}
	const Crm__FollowupReply *fr = t->followup;
	printf("%s %s %s to %s: %s\n", t->sent ? "sent" : "not sent", channel_word(t->channel),
	       t->sent_before ? "before (not again)" : "now", t->recipient, t->text);
	if (fr->followup) {
		printf("%s %s\n", fr->existed ? "follow-up already recorded:" : "follow-up recorded:",
		       fr->followup->id);
		print_followup_line(fr->followup, "  ");
	}
	for (size_t i = 0; i < fr->n_tasks; i++) {
		const Crm__Task *k = fr->tasks[i];
		char due[32];
		format_ms(k->due_at, due, sizeof due);
		printf("  task %s %s: due %s, %s, %s\n", k->id,
		       !strcmp(k->status, "open") ? "set" : k->status, due, method_word(k->method),
		       k->purpose);
	}
}

static int template_render_or_send(struct cli *cli, int argc, char **argv, bool send)
{
	const char *u = template_usage, *pos[2] = {NULL, NULL}, *date = NULL;
	size_t npos = 0;
	Crm__TemplateRender tr = CRM__TEMPLATE_RENDER__INIT;
	Crm__TemplateSend ts = CRM__TEMPLATE_SEND__INIT;
	char followup_id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v;
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--allow-blanks")) {
			tr.allow_blanks = true;
			continue;
		}
		bool send_opt = !strcmp(a, "--type") || !strcmp(a, "--task") || !strcmp(a, "--id");
		if (!strcmp(a, "--relation") || !strcmp(a, "--model") || !strcmp(a, "--date") ||
		    (send && send_opt)) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--relation") || !strcmp(a, "--task") || !strcmp(a, "--id")) {
				if (!is_uuid(v))
					return cli_usage(cli, u, "%s \"%s\" is not a UUID", a, v);
			}
			if (!strcmp(a, "--relation"))
				tr.relation_id = (char *)v;
			else if (!strcmp(a, "--model"))
				tr.model = (char *)v;
			else if (!strcmp(a, "--date"))
				date = v;
			else if (!strcmp(a, "--task"))
				ts.task_id = (char *)v;
			else if (!strcmp(a, "--id"))
				snprintf(followup_id, sizeof followup_id, "%s", v);
			else if (strcmp(v, "care") && strcmp(v, "invitation"))
				return cli_usage(cli, u, "--type \"%s\": care or invitation", v);
			else
				ts.type = (char *)v;
		} else if (a[0] == '-' || npos == 2) {
			return cli_usage(cli, u, "template %s: unknown argument %s",
					 send ? "send" : "render", a);
		} else {
			pos[npos++] = a;
		}
	}
	if (!is_uuid(pos[0]))
		return cli_usage(cli, u, "template %s: give the template's ID (a UUID)",
				 send ? "send" : "render");
	if (!pos[1] && !*tr.relation_id)
		return cli_usage(cli, u, "template %s: give the customer's ID (or --relation)",
				 send ? "send" : "render");
	if (pos[1] && !is_uuid(pos[1]))
		return cli_usage(cli, u, "\"%s\" is not a customer ID (a UUID)", pos[1]);
	char why[256];
	if (date && !parse_day(date, &tr.date, why, sizeof why))
		return cli_usage(cli, u, "--date: %s", why);
	tr.template_id = (char *)pos[0];
	tr.customer_id = (char *)(pos[1] ? pos[1] : "");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	if (send) {
		if (!followup_id[0])
			uuid_v7_new(followup_id);
		ts.render = &tr;
		ts.followup_id = followup_id;
		req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_SEND;
		req.template_send = &ts;
	} else {
		req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_RENDER;
		req.template_render = &tr;
	}
	/* A send that may be recorded but not sent (the answer was lost, or
	 * the sender failed): how to retry it without sending it twice. */
	char hint[2048];
	size_t n = (size_t)snprintf(hint, sizeof hint,
				    "to retry this message without sending it twice: crm template send");
	bool has_id = false;
	for (int i = 0; i < argc && n < sizeof hint; i++) {
		has_id = has_id || !strcmp(argv[i], "--id");
		bool quote = strpbrk(argv[i], " \t'\"$") != NULL;
		n += (size_t)snprintf(hint + n, sizeof hint - n, quote ? " '%s'" : " %s", argv[i]);
	}
	if (!has_id && n < sizeof hint)
		snprintf(hint + n, sizeof hint - n, " --id %s", followup_id);
	return call_and_print(cli, &req, CRM__ENVELOPE__BODY_TEMPLATE_RENDERED, print_rendered,
			      send ? hint : NULL);
}

int cmd_template(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	if (!strcmp(sub, "add"))
		return template_save(cli, argc - 1, argv + 1, true);
	if (!strcmp(sub, "update"))
		return template_save(cli, argc - 1, argv + 1, false);
	if (!strcmp(sub, "list"))
		return template_list(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "show"))
		return template_show(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "render"))
		return template_render_or_send(cli, argc - 1, argv + 1, false);
	if (!strcmp(sub, "send"))
		return template_render_or_send(cli, argc - 1, argv + 1, true);
	return cli_usage(cli, template_usage,
			 argc ? "template: unknown subcommand \"%s\" (add, list, show, update, render,"
				" send)"
			      : "template: give a subcommand: add, list, show, update, render or send%s",
			 sub);
}

/* ------------------------------------------------------------ compliance */

static void print_compliance(const Crm__Envelope *resp)
{
	const Crm__ComplianceReport *rep = resp->compliance_report;
	char since[32], until[32];
	format_ms(rep->since, since, sizeof since);
	format_ms(rep->until, until, sizeof until);
	printf("tasks due from %s to %s\n", since, until);
	if (!rep->n_rows) {
		printf("no tasks\n");
		return;
	}
	static const char *const headers[] = {"store", "owner",    "name",     "tasks",  "on time",
					      "late",  "avg late", "max late", "missed", "open"};
	struct table t;
	if (!table_init(&t, 10, headers))
		return;
	for (size_t i = 0; i < rep->n_rows; i++) {
		const Crm__ComplianceRow *k = rep->rows[i];
		char n[6][16], avg[24], max[24];
		snprintf(n[0], sizeof n[0], "%u", k->tasks);
		snprintf(n[1], sizeof n[1], "%u", k->on_time);
		snprintf(n[2], sizeof n[2], "%u", k->late);
		snprintf(n[3], sizeof n[3], "%u", k->missed);
		snprintf(n[4], sizeof n[4], "%u", k->open);
		format_duration(k->late_avg_ms, avg, sizeof avg);
		format_duration(k->late_max_ms, max, sizeof max);
		const char *cells[] = {k->store_code, *k->owner ? k->owner : "(pool)", k->owner_name,
				       n[0], n[1], n[2], avg, max, n[3], n[4]};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "");
	table_print_rows(&t, stdout, "");
	table_free(&t);
}

int cmd_compliance(struct cli *cli, int argc, char **argv)
{
	const char *u = compliance_usage, *since = NULL, *until = NULL, *at = NULL;
	Crm__ComplianceQuery q = CRM__COMPLIANCE_QUERY__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		const char **dst = !strcmp(a, "--since")   ? &since
				   : !strcmp(a, "--until") ? &until
				   : !strcmp(a, "--at")	   ? &at
				   : !strcmp(a, "--store") ? (const char **)&q.store_code
				   : !strcmp(a, "--owner") ? (const char **)&q.owner
							   : NULL;
		if (!dst)
			return cli_usage(cli, u, "compliance: unknown argument %s", a);
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
			return rc;
	}
	char why[256];
	if (at && !parse_local_time(at, &q.at, why, sizeof why))
		return cli_usage(cli, u, "--at: %s", why);
	if (until && !parse_local_time(until, &q.until, why, sizeof why))
		return cli_usage(cli, u, "--until: %s", why);
	if (since && !parse_local_time(since, &q.since, why, sizeof why))
		return cli_usage(cli, u, "--since: %s", why);
	if (!until)
		q.until = q.at ? q.at : (int64_t)time(NULL) * 1000;
	if (!since)
		q.since = q.until - 30 * 86400000LL;
	if (q.since >= q.until)
		return cli_usage(cli, u, "--since must come before --until");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLIANCE_QUERY;
	req.compliance_query = &q;
	return call_and_print(cli, &req, CRM__ENVELOPE__BODY_COMPLIANCE_REPORT, print_compliance, NULL);
}
