/* crm complaint add|assign|handle|resolve|close|list|show (issue 6
 * "Relationships"; sql/0019). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "textcheck.h"

static const char complaint_usage[] =
	"crm complaint add CUSTOMER_ID --content TEXT [--priority low|normal|high|urgent]\n"
	"       [--category sales|service|product|staff|price|other] [--received TIME]\n"
	"       [--due TIME] [--id UUID]\n"
	"crm complaint assign COMPLAINT_ID --to USER [--note TEXT] [--at TIME]   (managers)\n"
	"crm complaint handle COMPLAINT_ID [--followup FOLLOWUP_ID] [--note TEXT] [--at TIME]\n"
	"crm complaint resolve COMPLAINT_ID --resolution TEXT [--followup ID] [--at TIME]\n"
	"crm complaint close COMPLAINT_ID [--note TEXT] [--at TIME]\n"
	"crm complaint list [--customer ID] [--status open|STATUS] [--assignee USER]\n"
	"       [--store CODE] [--overdue] [--at TIME] [--limit N]\n"
	"crm complaint show COMPLAINT_ID [--at TIME]\n"
	"  received -> assigned -> in_handling -> resolved -> closed; handle reopens a\n"
	"  resolved complaint (--note saying why). Due: by priority unless --due.\n"
	"  TIME: \"YYYY-MM-DD HH:MM\" (local time).";

void print_complaint_rows(Crm__Complaint *const *items, size_t n, const char *indent)
{
	static const char *const headers[] = {"STATUS", "PRIORITY", "CUSTOMER", "ASSIGNEE", "DUE",
					      "OVERDUE", "CONTENT", "ID"};
	struct table t;
	if (!table_init(&t, 8, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__Complaint *k = items[i];
		char due[32], content[64];
		format_ms(k->due_at, due, sizeof due);
		text_truncate(k->content, 30, content, sizeof content);
		const char *cells[] = {k->status, k->priority, k->customer_name, k->assignee, due,
				       k->overdue ? "overdue" : "", content, k->id};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, indent);
	table_print_rows(&t, stdout, indent);
	table_free(&t);
}

static void print_complaint_one(const Crm__Envelope *resp)
{
	const Crm__ComplaintPage *p = resp->complaint_page;
	if (!p->n_complaints)
		return;
	const Crm__Complaint *k = p->complaints[0];
	char when[32];
	printf("complaint %s%s\n", k->id, p->existed ? " (already recorded)" : "");
	printf("  customer  %s (%s) at %s\n", k->customer_name, k->customer_id, k->store_code);
	printf("  status    %s%s\n", k->status, k->overdue ? "  OVERDUE" : "");
	printf("  priority  %s, %s\n", k->priority, k->category);
	format_ms(k->received_at, when, sizeof when);
	printf("  received  %s\n", when);
	format_ms(k->due_at, when, sizeof when);
	printf("  due       %s\n", when);
	if (*k->assignee)
		printf("  assignee  %s (%s)\n", k->assignee_name, k->assignee);
	printf("  content   %s\n", k->content);
	if (*k->resolution)
		printf("  resolution %s\n", k->resolution);
	for (size_t i = 0; i < k->n_followup_ids; i++)
		printf("  follow-up %s\n", k->followup_ids[i]);
	if (k->n_events)
		printf("  history\n");
	for (size_t i = 0; i < k->n_events; i++) {
		const Crm__ComplaintEvent *e = k->events[i];
		format_ms(e->at, when, sizeof when);
		printf("    %s  %s -> %s  by %s%s%s%s%s\n", when, *e->from_status ? e->from_status : "-",
		       e->to_status, e->by, *e->assignee ? " to " : "", e->assignee,
		       *e->note ? ": " : "", e->note);
	}
}

static void print_complaint_list(const Crm__Envelope *resp)
{
	const Crm__ComplaintPage *p = resp->complaint_page;
	if (!p->n_complaints)
		printf("no complaints\n");
	else
		print_complaint_rows(p->complaints, p->n_complaints, "");
}

static int complaint_add(struct cli *cli, int argc, char **argv)
{
	const char *u = complaint_usage, *v;
	Crm__Complaint k = CRM__COMPLAINT__INIT;
	char id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--content") || !strcmp(a, "--priority") || !strcmp(a, "--category") ||
		    !strcmp(a, "--received") || !strcmp(a, "--due") || !strcmp(a, "--id")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--content"))
				k.content = (char *)v;
			else if (!strcmp(a, "--priority"))
				k.priority = (char *)v;
			else if (!strcmp(a, "--category"))
				k.category = (char *)v;
			else if (!strcmp(a, "--received"))
				rc = rel_time_arg(cli, u, a, v, &k.received_at);
			else if (!strcmp(a, "--due"))
				rc = rel_time_arg(cli, u, a, v, &k.due_at);
			else if (!rel_uuid_arg(v))
				return cli_usage(cli, u, "--id \"%s\" is not a UUID", v);
			else
				snprintf(id, sizeof id, "%s", v);
			if (rc != EXIT_OK)
				return rc;
		} else if (a[0] == '-' || *k.customer_id || !rel_uuid_arg(a)) {
			return cli_usage(cli, u, "complaint add: unknown argument %s", a);
		} else {
			k.customer_id = (char *)a;
		}
	}
	if (!*k.customer_id)
		return cli_usage(cli, u, "complaint add: give the customer's ID");
	if (!*k.content)
		return cli_usage(cli, u, "complaint add: --content is required");
	if (!id[0])
		uuid_v7_new(id);
	k.id = id;
	Crm__ComplaintAdd ca = CRM__COMPLAINT_ADD__INIT;
	ca.complaint = &k;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_ADD;
	req.complaint_add = &ca;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_COMPLAINT_PAGE, print_complaint_one);
}

/* assign (to_status NULL), handle, resolve, close: the complaint's ID and
 * the options of the move. */
static int complaint_move(struct cli *cli, int argc, char **argv, const char *what,
			  const char *to_status)
{
	const char *u = complaint_usage, *v, *id = NULL, *to = NULL, *note = "", *followup = "";
	int64_t at = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		bool takes = !strcmp(a, "--at") || !strcmp(a, "--note") ||
			     (!to_status && !strcmp(a, "--to")) ||
			     (to_status && strcmp(to_status, "closed") && !strcmp(a, "--followup")) ||
			     (to_status && !strcmp(to_status, "resolved") && !strcmp(a, "--resolution"));
		if (takes) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--at")) {
				if ((rc = rel_time_arg(cli, u, a, v, &at)) != EXIT_OK)
					return rc;
			} else if (!strcmp(a, "--to")) {
				to = v;
			} else if (!strcmp(a, "--followup")) {
				if (!rel_uuid_arg(v))
					return cli_usage(cli, u, "--followup \"%s\" is not a follow-up ID", v);
				followup = v;
			} else {
				note = v;
			}
		} else if (a[0] == '-' || id || !rel_uuid_arg(a)) {
			return cli_usage(cli, u, "complaint %s: unknown argument %s", what, a);
		} else {
			id = a;
		}
	}
	if (!id)
		return cli_usage(cli, u, "complaint %s: give the complaint's ID", what);
	if (!to_status && !to)
		return cli_usage(cli, u, "complaint assign: --to USER is required");
	if (to_status && !strcmp(to_status, "resolved") && !*note)
		return cli_usage(cli, u, "complaint resolve: --resolution is required");
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	Crm__ComplaintAssign ca = CRM__COMPLAINT_ASSIGN__INIT;
	Crm__ComplaintMove cm = CRM__COMPLAINT_MOVE__INIT;
	if (!to_status) {
		ca.id = (char *)id;
		ca.assignee = (char *)to;
		ca.note = (char *)note;
		ca.at = at;
		req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_ASSIGN;
		req.complaint_assign = &ca;
	} else {
		cm.id = (char *)id;
		cm.to_status = (char *)to_status;
		cm.note = (char *)note;
		cm.followup_id = (char *)followup;
		cm.at = at;
		req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_MOVE;
		req.complaint_move = &cm;
	}
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_COMPLAINT_PAGE, print_complaint_one);
}

static int complaint_list(struct cli *cli, int argc, char **argv, bool show)
{
	const char *u = complaint_usage, *v, *limit_text = NULL;
	Crm__ComplaintList cl = CRM__COMPLAINT_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!show && !strcmp(a, "--overdue")) {
			cl.overdue_only = true;
			continue;
		}
		bool takes = !strcmp(a, "--at") ||
			     (!show && (!strcmp(a, "--customer") || !strcmp(a, "--status") ||
					!strcmp(a, "--assignee") || !strcmp(a, "--store") ||
					!strcmp(a, "--limit")));
		if (takes) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				return rc;
			if (!strcmp(a, "--at")) {
				if ((rc = rel_time_arg(cli, u, a, v, &cl.at)) != EXIT_OK)
					return rc;
			} else if (!strcmp(a, "--customer")) {
				if (!rel_uuid_arg(v))
					return cli_usage(cli, u, "--customer \"%s\" is not a customer ID", v);
				cl.customer_id = (char *)v;
			} else if (!strcmp(a, "--status")) {
				cl.status = (char *)v;
			} else if (!strcmp(a, "--assignee")) {
				cl.assignee = (char *)v;
			} else if (!strcmp(a, "--store")) {
				cl.store_code = (char *)v;
			} else {
				limit_text = v;
			}
		} else if (show && a[0] != '-' && !*cl.id && rel_uuid_arg(a)) {
			cl.id = (char *)a;
		} else {
			return cli_usage(cli, u, "complaint %s: unknown argument %s",
					 show ? "show" : "list", a);
		}
	}
	if (show && !*cl.id)
		return cli_usage(cli, u, "complaint show: give the complaint's ID");
	uint64_t limit = 100;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	cl.limit = (uint32_t)limit;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLAINT_LIST;
	req.complaint_list = &cl;
	return rel_call(cli, &req, CRM__ENVELOPE__BODY_COMPLAINT_PAGE,
			show ? print_complaint_one : print_complaint_list);
}

int cmd_complaint(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc >= 1 ? argv[0] : "";
	argc--;
	argv++;
	if (!strcmp(sub, "add"))
		return complaint_add(cli, argc, argv);
	if (!strcmp(sub, "assign"))
		return complaint_move(cli, argc, argv, sub, NULL);
	if (!strcmp(sub, "handle"))
		return complaint_move(cli, argc, argv, sub, "in_handling");
	if (!strcmp(sub, "resolve"))
		return complaint_move(cli, argc, argv, sub, "resolved");
	if (!strcmp(sub, "close"))
		return complaint_move(cli, argc, argv, sub, "closed");
	if (!strcmp(sub, "list"))
		return complaint_list(cli, argc, argv, false);
	if (!strcmp(sub, "show"))
		return complaint_list(cli, argc, argv, true);
	return cli_usage(cli, complaint_usage,
			 "complaint: add, assign, handle, resolve, close, list or show");
}
