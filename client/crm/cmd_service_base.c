/* crm base list|counts, crm service reminders run|policy and crm value
 * recompute (issue 6, after-sales): base customers at a time, maintenance
 * reminders, value classes and the brands' after-sales policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"

static const char base_usage[] =
	"crm base list [--class archived|active|loyal|lost] [--store CODE] [--at TIME]\n"
	"              [--limit N]\n"
	"crm base counts [--store CODE] [--at TIME]\n"
	"  archived: a visit ever; active: a visit in the last 12 months; loyal: at\n"
	"  least the brand's number of visits in 12 months; lost: no visit within the\n"
	"  brand's window (default 6 months). Store roles see their store.";

static const char service_usage[] =
	"crm service reminders run [--store CODE] [--at TIME]\n"
	"  creates the maintenance reminder tasks now due (service advisors, store\n"
	"  managers; group admins for --store or every store).\n"
	"crm service policy show\n"
	"crm service policy set BRAND|default [--lost-months N] [--loyal-visits N]\n"
	"       [--reminder-months N] [--reminder-km N] [--lead-days N] [--a-pct P]\n"
	"       [--b-pct P]                                     (group admins)\n"
	"crm service policy remove BRAND                       (group admins)\n"
	"  default is the group's policy, for brands without one; set starts from\n"
	"  the brand's current values (else the default's) and changes those given.";

static const char value_usage[] =
	"crm value recompute [--store CODE] [--at TIME]\n"
	"  value classes from the last 12 months' spend: A the top 5%, B the next 15%,\n"
	"  C the rest with spend (brand policy). Managers and group admins.";

static void print_base(Crm__BaseCustomer *const *b, size_t n, const char *indent)
{
	static const char *const headers[] = {"customer", "store", "classes", "visits",
					      "12 months", "last visit", "returned", "value",
					      "customer id"};
	struct table t;
	if (!table_init(&t, 9, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		char classes[64], visits[16], v12[16], last[32], ret[32], value[64], spend[32];
		svc_base_classes(b[i], classes, sizeof classes);
		snprintf(visits, sizeof visits, "%u", b[i]->visits);
		snprintf(v12, sizeof v12, "%u", b[i]->visits_12m);
		format_ms(b[i]->last_visit_at, last, sizeof last);
		format_ms(b[i]->returned_at, ret, sizeof ret);
		svc_format_fen(b[i]->spend_12m, spend, sizeof spend);
		snprintf(value, sizeof value, "%s%s%s%s", b[i]->value_class,
			 *b[i]->value_class ? " (" : "", *b[i]->value_class ? spend : "",
			 *b[i]->value_class ? " yuan)" : "");
		const char *cells[] = {b[i]->customer_name, b[i]->store_code, classes, visits, v12,
				       last, ret, value, b[i]->customer_id};
		table_add(&t, cells);
	}
	svc_table_print(&t, indent);
	table_free(&t);
}

/* ------------------------------------------------------------ base, reminders, value */

/* --store CODE and --at TIME, shared by base, service and value. -1: not
 * one of them. */
static int store_at_opt(const struct cli *cli, const char *u, int argc, char **argv, int *i,
			char **store, int64_t *at)
{
	const char *a = argv[*i], *val;
	if (strcmp(a, "--store") && strcmp(a, "--at"))
		return -1;
	int rc = cli_opt_value(cli, u, argc, argv, i, &val);
	if (rc != EXIT_OK)
		return rc;
	char why[160];
	if (!strcmp(a, "--store"))
		*store = (char *)val;
	else if (!parse_local_time(val, at, why, sizeof why))
		return cli_usage(cli, u, "--at: %s", why);
	return EXIT_OK;
}

static int base_list(struct cli *cli, int argc, char **argv, bool counts_only)
{
	const char *u = base_usage, *limit_text = NULL;
	Crm__BaseList bl = CRM__BASE_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		int rc = store_at_opt(cli, u, argc, argv, &i, &bl.store_code, &bl.at);
		if (rc >= 0 && rc != EXIT_OK)
			return rc;
		if (rc == EXIT_OK || !strcmp(a, "--json"))
			continue;
		if (counts_only || (strcmp(a, "--class") && strcmp(a, "--limit")))
			return cli_usage(cli, u, "base: unknown argument %s", a);
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &val)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--limit"))
			limit_text = val;
		else
			bl.class_ = (char *)val;
	}
	if (*bl.class_ && strcmp(bl.class_, "archived") && strcmp(bl.class_, "active") &&
	    strcmp(bl.class_, "loyal") && strcmp(bl.class_, "lost"))
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "class",
				"class \"%s\" must be archived, active, loyal or lost", bl.class_);
	uint64_t limit = 200;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	bl.limit = counts_only ? 1 : (uint32_t)limit;
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_BASE_LIST;
	req.base_list = &bl;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_BASE_PAGE, &rc);
	if (!resp)
		return rc;
	Crm__BasePage *p = resp->base_page;
	if (counts_only) {
		/* Only the counts: the one row asked for to get them is dropped. */
		for (size_t i = 0; i < p->n_customers; i++)
			crm__base_customer__free_unpacked(p->customers[i], NULL);
		p->n_customers = 0;
	}
	if (cli->json) {
		print_json(&p->base);
	} else {
		char at[32];
		format_ms(p->at, at, sizeof at);
		printf("base customers at %s: archived %u, active %u, loyal %u, lost %u\n", at,
		       p->archived, p->active, p->loyal, p->lost);
		if (!counts_only && p->n_customers)
			print_base(p->customers, p->n_customers, "");
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

int cmd_base(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return base_list(cli, argc - 1, argv + 1, false);
	if (argc >= 1 && !strcmp(argv[0], "counts"))
		return base_list(cli, argc - 1, argv + 1, true);
	return cli_usage(cli, base_usage,
			 argc ? "base: unknown subcommand \"%s\" (list, counts)"
			      : "base: give a subcommand: list or counts%s",
			 argc ? argv[0] : "");
}

static void print_policies(const Crm__ServicePolicies *sp)
{
	static const char *const headers[] = {"brand", "lost after", "loyal visits", "reminder",
					      "lead days", "A %", "B %", "updated", "by"};
	struct table t;
	if (!table_init(&t, 9, headers))
		return;
	for (size_t i = 0; i < sp->n_policies; i++) {
		const Crm__ServicePolicy *p = sp->policies[i];
		char lost[32], loyal[16], rem[48], lead[16], a[16], b[16], at[32];
		snprintf(lost, sizeof lost, "%u months", p->lost_after_months);
		snprintf(loyal, sizeof loyal, "%u", p->loyal_visits);
		snprintf(rem, sizeof rem, "%u months or %u km", p->reminder_months, p->reminder_km);
		snprintf(lead, sizeof lead, "%u", p->reminder_lead_days);
		snprintf(a, sizeof a, "%g", p->value_a_pct);
		snprintf(b, sizeof b, "%g", p->value_b_pct);
		format_ms(p->updated_at, at, sizeof at);
		const char *cells[] = {*p->brand ? p->brand : "(default)", lost, loyal, rem, lead, a,
				       b, at, p->updated_by};
		table_add(&t, cells);
	}
	svc_table_print(&t, "");
	table_free(&t);
}

static int policy_reply(struct cli *cli, Crm__Envelope *req)
{
	int rc;
	Crm__Envelope *resp = svc_call(cli, req, CRM__ENVELOPE__BODY_SERVICE_POLICIES, &rc);
	if (!resp)
		return rc;
	if (cli->json)
		print_json(&resp->service_policies->base);
	else
		print_policies(resp->service_policies);
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

/* service policy show|set|remove. `set` reads the policies first: the
 * request carries every field, the command changes only those given. */
static int service_policy(struct cli *cli, int argc, char **argv)
{
	const char *u = service_usage;
	const char *sub = argc ? argv[0] : "";
	Crm__ServicePolicyGet get = CRM__SERVICE_POLICY_GET__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_SERVICE_POLICY_GET;
	req.service_policy_get = &get;
	if (!strcmp(sub, "show")) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "--json"))
				return cli_usage(cli, u, "service policy show: unknown argument %s", argv[i]);
		int rc = cli_connect_session(cli);
		return rc != EXIT_OK ? rc : policy_reply(cli, &req);
	}
	if (strcmp(sub, "set") && strcmp(sub, "remove"))
		return cli_usage(cli, u, "service policy: give show, set or remove%s", "");
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage(cli, u, "service policy %s: give the brand (or default)", sub);
	const char *brand = strcmp(argv[1], "default") ? argv[1] : "";
	static const char *const names[] = {"--lost-months", "--loyal-visits", "--reminder-months",
					    "--reminder-km", "--lead-days", "--a-pct", "--b-pct"};
	static const char *const fields[] = {"lost_after_months", "loyal_visits",
					     "reminder_months", "reminder_km",
					     "reminder_lead_days", "value_a_pct", "value_b_pct"};
	const char *given[7] = {NULL};
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		size_t k = 0;
		while (k < 7 && strcmp(argv[i], names[k]))
			k++;
		if (k == 7 || sub[0] == 'r')
			return cli_usage(cli, u, "service policy %s: unknown argument %s", sub, argv[i]);
		int rc = cli_opt_value(cli, u, argc, argv, &i, &given[k]);
		if (rc != EXIT_OK)
			return rc;
	}
	uint64_t num[5] = {0};
	double pct[2] = {0};
	for (size_t k = 0; k < 7; k++) {
		if (!given[k])
			continue;
		char *end;
		if (k < 5 ? !parse_uint(given[k], 0, 1000000, &num[k])
			  : ((pct[k - 5] = strtod(given[k], &end)), end == given[k] || *end))
			return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", fields[k],
					"%s \"%s\" must be a number", names[k], given[k]);
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__ServicePolicy p = CRM__SERVICE_POLICY__INIT;
	p.brand = (char *)brand;
	if (sub[0] == 's') {
		Crm__Envelope *cur = svc_call(cli, &req, CRM__ENVELOPE__BODY_SERVICE_POLICIES, &rc);
		if (!cur)
			return rc;
		const Crm__ServicePolicy *base = NULL;
		for (size_t i = 0; i < cur->service_policies->n_policies; i++) {
			const Crm__ServicePolicy *x = cur->service_policies->policies[i];
			if (!strcmp(x->brand, brand) || (!base && !*x->brand))
				base = x;
		}
		if (base) {
			p.lost_after_months = base->lost_after_months;
			p.loyal_visits = base->loyal_visits;
			p.reminder_months = base->reminder_months;
			p.reminder_km = base->reminder_km;
			p.reminder_lead_days = base->reminder_lead_days;
			p.value_a_pct = base->value_a_pct;
			p.value_b_pct = base->value_b_pct;
		}
		crm__envelope__free_unpacked(cur, NULL);
		uint32_t *value[5] = {&p.lost_after_months, &p.loyal_visits, &p.reminder_months,
				      &p.reminder_km, &p.reminder_lead_days};
		for (size_t k = 0; k < 5; k++)
			if (given[k])
				*value[k] = (uint32_t)num[k];
		if (given[5])
			p.value_a_pct = pct[0];
		if (given[6])
			p.value_b_pct = pct[1];
	}
	Crm__ServicePolicySet set = CRM__SERVICE_POLICY_SET__INIT;
	set.policy = &p;
	set.remove = sub[0] == 'r';
	Crm__Envelope sreq = CRM__ENVELOPE__INIT;
	sreq.body_case = CRM__ENVELOPE__BODY_SERVICE_POLICY_SET;
	sreq.service_policy_set = &set;
	return policy_reply(cli, &sreq);
}

int cmd_service(struct cli *cli, int argc, char **argv)
{
	const char *u = service_usage;
	if (argc >= 1 && !strcmp(argv[0], "policy"))
		return service_policy(cli, argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[0], "reminders") || strcmp(argv[1], "run"))
		return cli_usage(cli, u, "service: give \"reminders run\" or \"policy\"%s", "");
	Crm__RemindersRun rr = CRM__REMINDERS_RUN__INIT;
	for (int i = 2; i < argc; i++) {
		int rc = store_at_opt(cli, u, argc, argv, &i, &rr.store_code, &rr.at);
		if (rc >= 0 && rc != EXIT_OK)
			return rc;
		if (rc < 0 && strcmp(argv[i], "--json"))
			return cli_usage(cli, u, "service reminders run: unknown argument %s", argv[i]);
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REMINDERS_RUN;
	req.reminders_run = &rr;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_REMINDERS_REPLY, &rc);
	if (!resp)
		return rc;
	const Crm__RemindersReply *r = resp->reminders_reply;
	if (cli->json) {
		print_json(&r->base);
	} else {
		printf("vehicles due: %u; reminders created: %zu; already reminded: %u;"
		       " owner without a relation at the store: %u\n",
		       r->due, r->n_tasks, r->already_open, r->no_relation);
		if (r->n_tasks)
			print_task_table(r->tasks, r->n_tasks, "  ");
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

int cmd_value(struct cli *cli, int argc, char **argv)
{
	const char *u = value_usage;
	if (argc < 1 || strcmp(argv[0], "recompute"))
		return cli_usage(cli, u, "value: the command is \"value recompute\"%s", "");
	Crm__ValueRecompute vr = CRM__VALUE_RECOMPUTE__INIT;
	for (int i = 1; i < argc; i++) {
		int rc = store_at_opt(cli, u, argc, argv, &i, &vr.store_code, &vr.at);
		if (rc >= 0 && rc != EXIT_OK)
			return rc;
		if (rc < 0 && strcmp(argv[i], "--json"))
			return cli_usage(cli, u, "value recompute: unknown argument %s", argv[i]);
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VALUE_RECOMPUTE;
	req.value_recompute = &vr;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VALUE_REPLY, &rc);
	if (!resp)
		return rc;
	const Crm__ValueReply *r = resp->value_reply;
	if (cli->json) {
		print_json(&r->base);
	} else {
		char at[32];
		format_ms(r->computed_at, at, sizeof at);
		printf("value classes computed at %s\n", at);
		for (size_t i = 0; i < r->n_stores; i++)
			printf("  %s: A %u, B %u, C %u\n", r->stores[i]->store_code, r->stores[i]->a,
			       r->stores[i]->b, r->stores[i]->c);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

