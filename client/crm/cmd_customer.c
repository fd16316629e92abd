/* crm customer add | get | list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm.h"
#include "textcheck.h"

static void format_ms(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms <= 0 || !localtime_r(&t, &tm))
		snprintf(out, cap, "-");
	else
		strftime(out, cap, "%Y-%m-%d %H:%M", &tm);
}

static void print_card(const Crm__Customer *c)
{
	char created[32], updated[32];
	format_ms(c->created_at, created, sizeof created);
	format_ms(c->updated_at, updated, sizeof updated);
	printf("name     %s\n", c->name);
	printf("phone    %s\n", c->phone);
	printf("id       %s\n", c->id);
	printf("version  %llu\n", (unsigned long long)c->version);
	printf("created  %s by %s%s%s\n", created, c->created_by,
	       c->store_code && *c->store_code ? " at " : "", c->store_code ? c->store_code : "");
	printf("updated  %s\n", updated);
}

static int finish_customer(struct cli *cli, Crm__Envelope *resp)
{
	int rc = EXIT_OK;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (cli->json) {
		print_json(&resp->customer->base);
	} else {
		if (resp->customer->existed)
			printf("already registered: this is the existing customer\n");
		print_card(resp->customer->customer);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static int customer_add(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL, *phone = NULL, *id = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else if (!strcmp(argv[i], "--phone") && i + 1 < argc)
			phone = argv[++i];
		else if (!strcmp(argv[i], "--id") && i + 1 < argc)
			id = argv[++i];
		else if (strcmp(argv[i], "--json") != 0)
			return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL,
					"customer add: unknown argument %s "
					"(usage: crm customer add --name NAME --phone PHONE [--id UUID])",
					argv[i]);
	}
	if (!name || !phone)
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", name ? "phone" : "name",
				"customer add: --name and --phone are required");
	char why[256], canonical[PHONE_CANONICAL_MAX];
	if (!phone_normalize(phone, canonical, why, sizeof why))
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "customer.phone",
				"customer.phone: %s", why);
	char new_id[37];
	if (!id) {
		/* Chosen here so that a retry after a lost answer is the same create. */
		uuid_v7_new(new_id);
		id = new_id;
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = (char *)id;
	cu.name = (char *)name;
	cu.phone = (char *)phone;
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	return resp ? finish_customer(cli, resp) : rc;
}

static int customer_get(struct cli *cli, int argc, char **argv)
{
	const char *id = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (id || argv[i][0] == '-')
			return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL,
					"customer get: unexpected argument %s (usage: crm customer get ID)",
					argv[i]);
		id = argv[i];
	}
	if (!id)
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "id",
				"customer get: give the customer's ID");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__CustomerGet g = CRM__CUSTOMER_GET__INIT;
	g.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
	req.customer_get = &g;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	return resp ? finish_customer(cli, resp) : rc;
}

/* Streams pages, granting credit as they are printed, so neither side holds
 * more than a few pages whatever the size of the list. */
static int customer_list(struct cli *cli, int argc, char **argv)
{
	unsigned limit = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 0)
				return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "limit",
						"customer list: --limit takes a whole number");
			limit = (unsigned)v;
		} else if (strcmp(argv[i], "--json") != 0) {
			return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL,
					"customer list: unknown argument %s", argv[i]);
		}
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.limit = limit;
	cl.page_size = 200;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = &cl;
	req.credit = 4;
	uint64_t id = crmc_send(cli->conn, &req);
	bool first = true;
	if (cli->json)
		printf("{\"customers\": [");
	else
		printf("%-36s  %-20s  %-15s\n", "id", "name", "phone");
	for (;;) {
		char err[512];
		Crm__Envelope *resp = crmc_wait(cli->conn, id, 30000, err, sizeof err);
		if (!resp) {
			if (cli->json)
				printf("]}\n");
			return cli_fail(cli, EXIT_UNAVAILABLE, "UNAVAILABLE", NULL, "lost the server: %s", err);
		}
		if (crmc_status(resp) != CRM__CODE__OK) {
			if (cli->json)
				printf("]}\n");
			rc = cli_fail_response(cli, resp);
			crm__envelope__free_unpacked(resp, NULL);
			return rc;
		}
		const Crm__CustomerPage *page = resp->customer_page;
		for (size_t k = 0; page && k < page->n_customers; k++) {
			const Crm__Customer *c = page->customers[k];
			if (cli->json) {
				printf(first ? "\n  " : ",\n  ");
				print_json(&c->base);
			} else {
				printf("%-36s  ", c->id);
				print_padded(c->name, 20);
				printf("  %s\n", c->phone);
			}
			first = false;
		}
		bool more = resp->more;
		crm__envelope__free_unpacked(resp, NULL);
		if (!more)
			break;
		crmc_stream_credit(cli->conn, id, 1);
	}
	if (cli->json)
		printf("]}\n");
	return EXIT_OK;
}

int cmd_customer(struct cli *cli, int argc, char **argv)
{
	if (argc < 1)
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL,
				"customer: give a subcommand: add, get or list");
	if (!strcmp(argv[0], "add"))
		return customer_add(cli, argc - 1, argv + 1);
	if (!strcmp(argv[0], "get"))
		return customer_get(cli, argc - 1, argv + 1);
	if (!strcmp(argv[0], "list"))
		return customer_list(cli, argc - 1, argv + 1);
	return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL,
			"customer: unknown subcommand \"%s\" (add, get or list)", argv[0]);
}
