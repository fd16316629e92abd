/* crm org add|show|list|contact add|plan add: fleet and key accounts
 * (issue 6 "Relationships"; sql/0019). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "textcheck.h"

static const char org_usage[] =
	"crm org add --kind KIND --name NAME [--owner USER] [--note TEXT] [--id UUID]\n"
	"crm org show ORG_ID\n"
	"crm org list [--customer ID] [--kind KIND] [--store CODE] [--limit N]\n"
	"crm org contact add ORG_ID CUSTOMER_ID --role ROLE [--title TEXT]\n"
	"crm org plan add ORG_ID --model MODEL --quantity N --expected YYYY-MM-DD\n"
	"       [--status STATUS] [--note TEXT] [--id UUID]\n"
	"  KIND: government, state_enterprise, private_enterprise, taxi, rental,\n"
	"        foreign_enterprise\n"
	"  ROLE: decision_maker, purchasing, fleet_manager, finance, user, other\n"
	"  STATUS: planned (default), negotiating, ordered, delivered, cancelled";

static void print_org_one(const Crm__Envelope *resp)
{
	const Crm__OrgPage *p = resp->org_page;
	if (!p->n_organizations)
		return;
	const Crm__Organization *o = p->organizations[0];
	char when[32];
	printf("%s%s\n", o->name, p->existed ? " (already recorded)" : "");
	printf("  id       %s\n  kind     %s\n  store    %s\n", o->id, o->kind, o->store_code);
	if (*o->owner)
		printf("  owner    %s (%s)\n", o->owner_name, o->owner);
	if (*o->note)
		printf("  note     %s\n", o->note);
	printf("  version  %llu\n", (unsigned long long)o->version);
	if (o->n_contacts) {
		static const char *const headers[] = {"CONTACT", "ROLE", "TITLE", "CUSTOMER ID"};
		struct table t;
		printf("\nContacts\n");
		if (table_init(&t, 4, headers)) {
			for (size_t i = 0; i < o->n_contacts; i++) {
				const Crm__OrgContact *k = o->contacts[i];
				const char *cells[] = {k->customer_name, k->role, k->title, k->customer_id};
				table_add(&t, cells);
			}
			table_fit(&t);
			table_print_header(&t, stdout, "  ");
			table_print_rows(&t, stdout, "  ");
			table_free(&t);
		}
	}
	if (o->n_plans) {
		static const char *const headers[] = {"MODEL", "QTY", "EXPECTED", "STATUS", "NOTE"};
		struct table t;
		printf("\nPurchase plans\n");
		if (table_init(&t, 5, headers)) {
			for (size_t i = 0; i < o->n_plans; i++) {
				const Crm__PurchasePlan *pl = o->plans[i];
				char qty[16];
				snprintf(qty, sizeof qty, "%u", pl->quantity);
				format_ms(pl->expected_at, when, sizeof when);
				when[10] = '\0'; /* the date */
				const char *cells[] = {pl->model, qty, when, pl->status, pl->note};
				table_add(&t, cells);
			}
			table_fit(&t);
			table_print_header(&t, stdout, "  ");
			table_print_rows(&t, stdout, "  ");
			table_free(&t);
		}
	}
}

static void print_org_list(const Crm__Envelope *resp)
{
	const Crm__OrgPage *p = resp->org_page;
	if (!p->n_organizations) {
		printf("no organizations\n");
		return;
	}
	static const char *const headers[] = {"NAME", "KIND", "STORE", "OWNER", "CONTACTS",
					      "PLANS", "ID"};
	struct table t;
	if (!table_init(&t, 7, headers))
		return;
	for (size_t i = 0; i < p->n_organizations; i++) {
		const Crm__Organization *o = p->organizations[i];
		char contacts[16], plans[16];
		snprintf(contacts, sizeof contacts, "%zu", o->n_contacts);
		snprintf(plans, sizeof plans, "%zu", o->n_plans);
		const char *cells[] = {o->name, o->kind, o->store_code, o->owner, contacts, plans,
				       o->id};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "");
	table_print_rows(&t, stdout, "");
	table_free(&t);
}

static int org_add(struct cli *cli, int argc, char **argv)
{
	const char *u = org_usage, *v;
	Crm__Organization o = CRM__ORGANIZATION__INIT;
	char id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (strcmp(a, "--kind") && strcmp(a, "--name") && strcmp(a, "--owner") &&
		    strcmp(a, "--note") && strcmp(a, "--id"))
			return cli_usage(cli, u, "org add: unknown argument %s", a);
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--kind"))
			o.kind = (char *)v;
		else if (!strcmp(a, "--name"))
			o.name = (char *)v;
		else if (!strcmp(a, "--owner"))
			o.owner = (char *)v;
		else if (!strcmp(a, "--note"))
			o.note = (char *)v;
		else if (!rel_uuid_arg(v))
			return cli_usage(cli, u, "--id \"%s\" is not a UUID", v);
		else
			snprintf(id, sizeof id, "%s", v);
	}
	if (!*o.kind || !*o.name)
		return cli_usage(cli, u, "org add: --kind and --name are required");
	if (!id[0])
		uuid_v7_new(id);
	o.id = id;
	Crm__OrgAdd oa = CRM__ORG_ADD__INIT;
	oa.organization = &o;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_ADD;
	req.org_add = &oa;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_ORG_PAGE, print_org_one);
}

static int org_show(struct cli *cli, int argc, char **argv)
{
	Crm__OrgList ol = CRM__ORG_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (*ol.id || !rel_uuid_arg(argv[i]))
			return cli_usage(cli, org_usage, "org show: unknown argument %s", argv[i]);
		ol.id = argv[i];
	}
	if (!*ol.id)
		return cli_usage(cli, org_usage, "org show: give the organization's ID");
	ol.limit = 1;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_LIST;
	req.org_list = &ol;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_ORG_PAGE, print_org_one);
}

static int org_list(struct cli *cli, int argc, char **argv)
{
	const char *u = org_usage, *v, *limit_text = NULL;
	Crm__OrgList ol = CRM__ORG_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (strcmp(a, "--customer") && strcmp(a, "--kind") && strcmp(a, "--store") &&
		    strcmp(a, "--limit"))
			return cli_usage(cli, u, "org list: unknown argument %s", a);
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--customer")) {
			if (!rel_uuid_arg(v))
				return cli_usage(cli, u, "--customer \"%s\" is not a customer ID", v);
			ol.customer_id = (char *)v;
		} else if (!strcmp(a, "--kind")) {
			ol.kind = (char *)v;
		} else if (!strcmp(a, "--store")) {
			ol.store_code = (char *)v;
		} else {
			limit_text = v;
		}
	}
	uint64_t limit = 100;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	ol.limit = (uint32_t)limit;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_LIST;
	req.org_list = &ol;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_ORG_PAGE, print_org_list);
}

static int org_contact_add(struct cli *cli, int argc, char **argv)
{
	const char *u = org_usage, *v;
	Crm__OrgContactAdd ca = CRM__ORG_CONTACT_ADD__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--role") || !strcmp(a, "--title")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (a[2] == 'r')
				ca.role = (char *)v;
			else
				ca.title = (char *)v;
		} else if (a[0] == '-' || !rel_uuid_arg(a) || *ca.customer_id) {
			return cli_usage(cli, u, "org contact add: unknown argument %s", a);
		} else if (!*ca.organization_id) {
			ca.organization_id = (char *)a;
		} else {
			ca.customer_id = (char *)a;
		}
	}
	if (!*ca.customer_id)
		return cli_usage(cli, u, "org contact add: give the organization's and the customer's ID");
	if (!*ca.role)
		return cli_usage(cli, u, "org contact add: --role is required");
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_CONTACT_ADD;
	req.org_contact_add = &ca;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_ORG_PAGE, print_org_one);
}

static int org_plan_add(struct cli *cli, int argc, char **argv)
{
	const char *u = org_usage, *v;
	Crm__PurchasePlan p = CRM__PURCHASE_PLAN__INIT;
	char id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--model") || !strcmp(a, "--quantity") || !strcmp(a, "--expected") ||
		    !strcmp(a, "--status") || !strcmp(a, "--note") || !strcmp(a, "--id")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			uint64_t q;
			if (!strcmp(a, "--model")) {
				p.model = (char *)v;
			} else if (!strcmp(a, "--quantity")) {
				if (!parse_uint(v, 1, 100000, &q))
					return cli_usage(cli, u, "--quantity \"%s\" must be from 1 to 100000",
							 v);
				p.quantity = (uint32_t)q;
			} else if (!strcmp(a, "--expected")) {
				if ((rc = rel_time_arg(cli, u, a, v, &p.expected_at)) != EXIT_OK)
					return rc;
			} else if (!strcmp(a, "--status")) {
				p.status = (char *)v;
			} else if (!strcmp(a, "--note")) {
				p.note = (char *)v;
			} else if (!rel_uuid_arg(v)) {
				return cli_usage(cli, u, "--id \"%s\" is not a UUID", v);
			} else {
				snprintf(id, sizeof id, "%s", v);
			}
		} else if (a[0] == '-' || *p.organization_id || !rel_uuid_arg(a)) {
			return cli_usage(cli, u, "org plan add: unknown argument %s", a);
		} else {
			p.organization_id = (char *)a;
		}
	}
	if (!*p.organization_id)
		return cli_usage(cli, u, "org plan add: give the organization's ID");
	if (!*p.model || !p.quantity || !p.expected_at)
		return cli_usage(cli, u, "org plan add: --model, --quantity and --expected are required");
	if (!id[0])
		uuid_v7_new(id);
	p.id = id;
	Crm__PlanAdd pa = CRM__PLAN_ADD__INIT;
	pa.plan = &p;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ORG_PLAN_ADD;
	req.org_plan_add = &pa;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_ORG_PAGE, print_org_one);
}

int cmd_org(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc >= 1 ? argv[0] : "";
	if (!strcmp(sub, "add"))
		return org_add(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "show"))
		return org_show(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return org_list(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "contact") && argc >= 2 && !strcmp(argv[1], "add"))
		return org_contact_add(cli, argc - 2, argv + 2);
	if (!strcmp(sub, "plan") && argc >= 2 && !strcmp(argv[1], "add"))
		return org_plan_add(cli, argc - 2, argv + 2);
	return cli_usage(cli, org_usage, "org: add, show, list, contact add or plan add");
}
