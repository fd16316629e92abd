/* crm vehicle add|list|show and crm visit add|list (issue 6, after-sales),
 * and the vehicles, visits and base classes that `crm customer show` adds
 * to the card. Base customers, reminders, value classes and the policy:
 * cmd_service_base.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm.h"
#include "pbjson.h"
#include "textcheck.h"

static const char vehicle_usage[] =
	"crm vehicle add CUSTOMER_ID --vin VIN --model MODEL [--plate PLATE]\n"
	"       [--purchased YYYY-MM-DD] [--store CODE] [--id UUID]\n"
	"crm vehicle list CUSTOMER_ID | --vin VIN | --plate PLATE [--limit N]\n"
	"crm vehicle show VIN_OR_ID          the vehicle and its service visits\n"
	"  VIN: 17 characters, letters A-Z and digits, never I, O or Q.\n"
	"  --store: the selling store (default yours; group admins must give it).";

static const char visit_usage[] =
	"crm visit add VIN_OR_VEHICLE_ID --mileage KM --type T --amount YUAN\n"
	"       [--at TIME] [--note TEXT] [--id UUID]\n"
	"crm visit list VIN_OR_VEHICLE_ID | --customer ID | --store CODE [--limit N]\n"
	"  T: maintenance, repair, warranty, accident. YUAN: 1280 or 1280.50.\n"
	"  TIME: \"YYYY-MM-DD HH:MM\" or \"YYYY-MM-DD\" (local time); default now.";

/* ------------------------------------------------------------ checks */

/* Why `vin` is no VIN (the same rule as crm.vin_check), or NULL. `out`
 * gets it upper case. */
static const char *vin_problem(const char *vin, char out[18], char *why, size_t whycap)
{
	size_t n = strlen(vin);
	if (n != 17) {
		snprintf(why, whycap, "vin must be 17 characters (got %zu)", utf8_chars(vin));
		return why;
	}
	for (size_t i = 0; i < 17; i++) {
		char c = vin[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == 'I' || c == 'O' || c == 'Q') {
			snprintf(why, whycap, "vin must not contain the letters I, O or Q");
			return why;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
			snprintf(why, whycap,
				 "vin may contain only the letters A-Z (not I, O, Q) and digits 0-9");
			return why;
		}
		out[i] = c;
	}
	out[17] = '\0';
	return NULL;
}

/* "1280", "1280.5", "1280.50" yuan -> fen. */
static bool parse_fen(const char *s, int64_t *fen)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return false;
	unsigned long long yuan = strtoull(s, &end, 10);
	if (end == s || yuan > 1000000000ULL)
		return false;
	int64_t cents = 0;
	if (*end == '.') {
		const char *d = end + 1;
		size_t nd = strspn(d, "0123456789");
		if (nd < 1 || nd > 2 || d[nd])
			return false;
		cents = (d[0] - '0') * 10 + (nd == 2 ? d[1] - '0' : 0);
	} else if (*end) {
		return false;
	}
	*fen = (int64_t)yuan * 100 + cents;
	return true;
}

void svc_format_fen(int64_t fen, char *out, size_t cap)
{
	if (fen % 100)
		snprintf(out, cap, "%lld.%02lld", (long long)(fen / 100), (long long)(fen % 100));
	else
		snprintf(out, cap, "%lld", (long long)(fen / 100));
}

static bool is_uuid(const char *s)
{
	uint8_t raw[16];
	return uuid_parse(s, raw);
}

/* The reply of `req`, or NULL after printing why (exit code in *rc):
 * an error status, or a body other than `body`. */
Crm__Envelope *svc_call(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase body,
			int *rc)
{
	Crm__Envelope *resp = cli_call(cli, req, rc);
	if (!resp)
		return NULL;
	if (crmc_status(resp) != CRM__CODE__OK)
		*rc = cli_fail_response(cli, resp);
	else if (resp->body_case != body)
		*rc = cli_unexpected(cli, resp);
	else
		return resp;
	crm__envelope__free_unpacked(resp, NULL);
	return NULL;
}

/* ------------------------------------------------------------ printing */

void svc_table_print(struct table *t, const char *indent)
{
	if (!*indent && !isatty(STDOUT_FILENO)) {
		table_print_tsv_header(t, stdout);
		table_print_tsv_rows(t, stdout);
		return;
	}
	table_fit(t);
	table_print_header(t, stdout, indent);
	table_print_rows(t, stdout, indent);
}

static void print_vehicles(Crm__Vehicle *const *v, size_t n, const char *indent)
{
	static const char *const headers[] = {"vin", "model", "plate", "purchased", "owner",
					      "sold by", "id"};
	struct table t;
	if (!table_init(&t, 7, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const char *cells[] = {v[i]->vin, v[i]->model, v[i]->plate, v[i]->purchased_on,
				       v[i]->customer_name, v[i]->store_code, v[i]->id};
		table_add(&t, cells);
	}
	svc_table_print(&t, indent);
	table_free(&t);
}

static void print_visits(Crm__ServiceVisit *const *v, size_t n, const char *indent)
{
	static const char *const headers[] = {"at", "store", "vin", "km", "type", "yuan", "by",
					      "note"};
	struct table t;
	if (!table_init(&t, 8, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		char at[32], km[16], yuan[32], note[600];
		format_ms(v[i]->at, at, sizeof at);
		snprintf(km, sizeof km, "%u", v[i]->mileage);
		svc_format_fen(v[i]->amount, yuan, sizeof yuan);
		snprintf(note, sizeof note, "%s%s", v[i]->returned ? "(returned) " : "", v[i]->note);
		const char *cells[] = {at, v[i]->store_code, v[i]->vin, km, v[i]->type, yuan,
				       v[i]->by, note};
		table_add(&t, cells);
	}
	svc_table_print(&t, indent);
	table_free(&t);
}

void svc_base_classes(const Crm__BaseCustomer *b, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s%s", b->archived ? "archived" : "", b->active ? " active" : "",
		 b->loyal ? " loyal" : "", b->lost ? " lost" : "");
}

/* ------------------------------------------------------------ vehicle */

/* The vehicle named by a VIN or an id; the reply holds it. */
static Crm__Envelope *vehicle_find(struct cli *cli, const char *vin_or_id, const char *u,
				   int *rc)
{
	Crm__VehicleList vl = CRM__VEHICLE_LIST__INIT;
	char vin[18], why[128];
	if (is_uuid(vin_or_id)) {
		vl.id = (char *)vin_or_id;
	} else if (vin_problem(vin_or_id, vin, why, sizeof why)) {
		*rc = cli_usage(cli, u, "\"%s\" is neither a vehicle ID nor a VIN: %s", vin_or_id,
				why);
		return NULL;
	} else {
		vl.vin = vin;
	}
	if ((*rc = cli_connect_session(cli)) != EXIT_OK)
		return NULL;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_LIST;
	req.vehicle_list = &vl;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VEHICLE_PAGE, rc);
	if (resp && !resp->vehicle_page->n_vehicles) {
		crm__envelope__free_unpacked(resp, NULL);
		*rc = cli_fail(cli, EXIT_NOT_FOUND, "NOT_FOUND", "vin", "no vehicle %s", vin_or_id);
		return NULL;
	}
	return resp;
}

static int vehicle_add(struct cli *cli, int argc, char **argv)
{
	const char *u = vehicle_usage;
	Crm__Vehicle v = CRM__VEHICLE__INIT;
	char id[37] = "";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (a[0] != '-') {
			if (*v.customer_id)
				return cli_usage(cli, u, "vehicle add: unknown argument %s", a);
			v.customer_id = (char *)a;
			continue;
		}
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &val)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--vin"))
			v.vin = (char *)val;
		else if (!strcmp(a, "--model"))
			v.model = (char *)val;
		else if (!strcmp(a, "--plate"))
			v.plate = (char *)val;
		else if (!strcmp(a, "--purchased"))
			v.purchased_on = (char *)val;
		else if (!strcmp(a, "--store"))
			v.store_code = (char *)val;
		else if (!strcmp(a, "--id") && is_uuid(val))
			snprintf(id, sizeof id, "%s", val);
		else
			return cli_usage(cli, u, "vehicle add: unknown or bad option %s %s", a, val);
	}
	if (!*v.customer_id || !is_uuid(v.customer_id))
		return cli_usage(cli, u, "vehicle add: give the customer ID (a UUID)");
	if (!*v.vin || !*v.model)
		return cli_usage(cli, u, "vehicle add: --vin and --model are required");
	char vin[18], why[128];
	if (vin_problem(v.vin, vin, why, sizeof why))
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "vin", "vin \"%s\": %s", v.vin,
				why);
	v.vin = vin;
	int64_t ms;
	if (*v.purchased_on && !parse_local_time(v.purchased_on, &ms, why, sizeof why))
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "purchased_on",
				"purchased_on: %s", why);
	if (!id[0])
		uuid_v7_new(id);
	v.id = id;
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__VehicleAdd va = CRM__VEHICLE_ADD__INIT;
	va.vehicle = &v;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_ADD;
	req.vehicle_add = &va;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VEHICLE_REPLY, &rc);
	if (!resp)
		return rc;
	const Crm__VehicleReply *vr = resp->vehicle_reply;
	if (cli->json) {
		print_json(&vr->base);
	} else if (vr->vehicle) {
		printf("%s %s\n", vr->existed ? "vehicle already registered:" : "vehicle registered:",
		       vr->vehicle->id);
		print_vehicles(&vr->vehicle, 1, "  ");
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

static int vehicle_list(struct cli *cli, int argc, char **argv)
{
	const char *u = vehicle_usage, *limit_text = NULL;
	Crm__VehicleList vl = CRM__VEHICLE_LIST__INIT;
	char vin[18], why[128];
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (a[0] != '-') {
			if (*vl.customer_id || !is_uuid(a))
				return cli_usage(cli, u, "vehicle list: \"%s\" is not a customer ID", a);
			vl.customer_id = (char *)a;
			continue;
		}
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &val)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--vin")) {
			if (vin_problem(val, vin, why, sizeof why))
				return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "vin",
						"vin \"%s\": %s", val, why);
			vl.vin = vin;
		} else if (!strcmp(a, "--plate")) {
			vl.plate = (char *)val;
		} else if (!strcmp(a, "--limit")) {
			limit_text = val;
		} else {
			return cli_usage(cli, u, "vehicle list: unknown option %s", a);
		}
	}
	uint64_t limit = 100;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	vl.limit = (uint32_t)limit;
	if (!*vl.customer_id && !*vl.vin && !*vl.plate)
		return cli_usage(cli, u, "vehicle list: give a customer ID, --vin or --plate");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_LIST;
	req.vehicle_list = &vl;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VEHICLE_PAGE, &rc);
	if (!resp)
		return rc;
	const Crm__VehiclePage *p = resp->vehicle_page;
	if (cli->json)
		print_json(&p->base);
	else if (!p->n_vehicles)
		printf("no vehicles\n");
	else
		print_vehicles(p->vehicles, p->n_vehicles, "");
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

static int vehicle_show(struct cli *cli, int argc, char **argv)
{
	const char *u = vehicle_usage, *key = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (argv[i][0] == '-' || key)
			return cli_usage(cli, u, "vehicle show: unknown argument %s", argv[i]);
		key = argv[i];
	}
	if (!key)
		return cli_usage(cli, u, "vehicle show: give a VIN or a vehicle ID");
	int rc;
	Crm__Envelope *vresp = vehicle_find(cli, key, u, &rc);
	if (!vresp)
		return rc;
	Crm__Vehicle *v = vresp->vehicle_page->vehicles[0];
	Crm__VisitList vl = CRM__VISIT_LIST__INIT;
	vl.vehicle_id = v->id;
	vl.limit = 1000;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_LIST;
	req.visit_list = &vl;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VISIT_PAGE, &rc);
	if (resp) {
		rc = EXIT_OK;
		if (cli->json) {
			/* One document: the vehicle, and its visits newest first. */
			const Crm__VisitPage *p = resp->visit_page;
			printf("{\n  \"vehicle\": ");
			pbjson_print(stdout, &v->base, 1);
			printf(",\n  \"visits\": [");
			for (size_t i = 0; i < p->n_visits; i++) {
				printf("%s\n    ", i ? "," : "");
				pbjson_print(stdout, &p->visits[i]->base, 2);
			}
			printf("%s]\n}\n", p->n_visits ? "\n  " : "");
		} else {
			print_vehicles(&v, 1, "");
			printf("\nService visits\n");
			if (!resp->visit_page->n_visits)
				printf("  none\n");
			else
				print_visits(resp->visit_page->visits, resp->visit_page->n_visits, "  ");
		}
		crm__envelope__free_unpacked(resp, NULL);
	}
	crm__envelope__free_unpacked(vresp, NULL);
	return rc;
}

int cmd_vehicle(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "add"))
		return vehicle_add(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return vehicle_list(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "show"))
		return vehicle_show(cli, argc - 1, argv + 1);
	return cli_usage(cli, vehicle_usage,
			 argc ? "vehicle: unknown subcommand \"%s\" (add, list, show)"
			      : "vehicle: give a subcommand: add, list or show%s",
			 argc ? argv[0] : "");
}

/* ------------------------------------------------------------ visit */

static int visit_add(struct cli *cli, int argc, char **argv)
{
	const char *u = visit_usage, *key = NULL;
	Crm__ServiceVisit v = CRM__SERVICE_VISIT__INIT;
	char id[37] = "", why[160];
	bool has_mileage = false, has_amount = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (a[0] != '-') {
			if (key)
				return cli_usage(cli, u, "visit add: unknown argument %s", a);
			key = a;
			continue;
		}
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &val)) != EXIT_OK)
			return rc;
		uint64_t km;
		if (!strcmp(a, "--mileage")) {
			if (!parse_uint(val, 0, 2000000, &km))
				return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "mileage",
						"mileage \"%s\" must be a whole number of km from 0 to"
						" 2000000", val);
			v.mileage = (uint32_t)km;
			has_mileage = true;
		} else if (!strcmp(a, "--type")) {
			v.type = (char *)val;
		} else if (!strcmp(a, "--amount")) {
			if (!parse_fen(val, &v.amount))
				return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "amount",
						"amount \"%s\" must be yuan, like 1280 or 1280.50", val);
			has_amount = true;
		} else if (!strcmp(a, "--at")) {
			if (!parse_local_time(val, &v.at, why, sizeof why))
				return cli_usage(cli, u, "--at: %s", why);
		} else if (!strcmp(a, "--note")) {
			v.note = (char *)val;
		} else if (!strcmp(a, "--id") && is_uuid(val)) {
			snprintf(id, sizeof id, "%s", val);
		} else {
			return cli_usage(cli, u, "visit add: unknown or bad option %s %s", a, val);
		}
	}
	if (!key)
		return cli_usage(cli, u, "visit add: give the vehicle's VIN or ID");
	if (!has_mileage || !*v.type || !has_amount)
		return cli_usage(cli, u, "visit add: --mileage, --type and --amount are required");
	if (strcmp(v.type, "maintenance") && strcmp(v.type, "repair") &&
	    strcmp(v.type, "warranty") && strcmp(v.type, "accident"))
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "type",
				"type \"%s\" must be maintenance, repair, warranty or accident", v.type);
	int rc;
	Crm__Envelope *vresp = vehicle_find(cli, key, u, &rc);
	if (!vresp)
		return rc;
	if (!id[0])
		uuid_v7_new(id);
	v.id = id;
	v.vehicle_id = vresp->vehicle_page->vehicles[0]->id;
	Crm__VisitAdd va = CRM__VISIT_ADD__INIT;
	va.visit = &v;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_ADD;
	req.visit_add = &va;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VISIT_REPLY, &rc);
	if (resp) {
		rc = EXIT_OK;
		const Crm__VisitReply *vr = resp->visit_reply;
		if (cli->json) {
			print_json(&vr->base);
		} else if (vr->visit) {
			printf("%s %s\n", vr->existed ? "visit already recorded:" : "visit recorded:",
			       vr->visit->id);
			print_visits(&vr->visit, 1, "  ");
			if (vr->visit->returned)
				printf("  the customer is back after being lost\n");
		}
		crm__envelope__free_unpacked(resp, NULL);
	}
	crm__envelope__free_unpacked(vresp, NULL);
	return rc;
}

static int visit_list(struct cli *cli, int argc, char **argv)
{
	const char *u = visit_usage, *key = NULL, *limit_text = NULL;
	Crm__VisitList vl = CRM__VISIT_LIST__INIT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (a[0] != '-') {
			if (key)
				return cli_usage(cli, u, "visit list: unknown argument %s", a);
			key = a;
			continue;
		}
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &val)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--customer") && is_uuid(val))
			vl.customer_id = (char *)val;
		else if (!strcmp(a, "--store"))
			vl.store_code = (char *)val;
		else if (!strcmp(a, "--limit"))
			limit_text = val;
		else
			return cli_usage(cli, u, "visit list: unknown or bad option %s %s", a, val);
	}
	uint64_t limit = 50;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	vl.limit = (uint32_t)limit;
	int rc;
	Crm__Envelope *vresp = NULL;
	if (key) {
		if (!(vresp = vehicle_find(cli, key, u, &rc)))
			return rc;
		vl.vehicle_id = vresp->vehicle_page->vehicles[0]->id;
	} else if ((rc = cli_connect_session(cli)) != EXIT_OK) {
		return rc;
	}
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_LIST;
	req.visit_list = &vl;
	Crm__Envelope *resp = svc_call(cli, &req, CRM__ENVELOPE__BODY_VISIT_PAGE, &rc);
	if (resp) {
		rc = EXIT_OK;
		const Crm__VisitPage *p = resp->visit_page;
		if (cli->json)
			print_json(&p->base);
		else if (!p->n_visits)
			printf("no service visits\n");
		else
			print_visits(p->visits, p->n_visits, "");
		crm__envelope__free_unpacked(resp, NULL);
	}
	if (vresp)
		crm__envelope__free_unpacked(vresp, NULL);
	return rc;
}

int cmd_visit(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "add"))
		return visit_add(cli, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return visit_list(cli, argc - 1, argv + 1);
	return cli_usage(cli, visit_usage,
			 argc ? "visit: unknown subcommand \"%s\" (add, list)"
			      : "visit: give a subcommand: add or list%s",
			 argc ? argv[0] : "");
}

/* ------------------------------------------------------------ the card */

void card_add_service(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[3])
{
	Crm__VehicleList vl = CRM__VEHICLE_LIST__INIT;
	vl.customer_id = card->customer->id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_LIST;
	req.vehicle_list = &vl;
	if ((held[0] = card_list(cli, &req, CRM__ENVELOPE__BODY_VEHICLE_PAGE))) {
		card->vehicles = held[0]->vehicle_page->vehicles;
		card->n_vehicles = held[0]->vehicle_page->n_vehicles;
	}
	Crm__VisitList sl = CRM__VISIT_LIST__INIT;
	sl.customer_id = card->customer->id;
	sl.limit = 5;
	Crm__Envelope sreq = CRM__ENVELOPE__INIT;
	sreq.body_case = CRM__ENVELOPE__BODY_VISIT_LIST;
	sreq.visit_list = &sl;
	if ((held[1] = card_list(cli, &sreq, CRM__ENVELOPE__BODY_VISIT_PAGE))) {
		card->service_visits = held[1]->visit_page->visits;
		card->n_service_visits = held[1]->visit_page->n_visits;
	}
	Crm__BaseList bl = CRM__BASE_LIST__INIT;
	bl.customer_id = card->customer->id;
	Crm__Envelope breq = CRM__ENVELOPE__INIT;
	breq.body_case = CRM__ENVELOPE__BODY_BASE_LIST;
	breq.base_list = &bl;
	if ((held[2] = card_list(cli, &breq, CRM__ENVELOPE__BODY_BASE_PAGE))) {
		card->service_base = held[2]->base_page->customers;
		card->n_service_base = held[2]->base_page->n_customers;
	}
}

void card_drop_service(Crm__CustomerCard *card, Crm__Envelope *held[3])
{
	/* The lists belong to the held replies, not to the card's. */
	card->vehicles = NULL;
	card->n_vehicles = 0;
	card->service_visits = NULL;
	card->n_service_visits = 0;
	card->service_base = NULL;
	card->n_service_base = 0;
	for (int i = 0; i < 3; i++)
		if (held[i])
			crm__envelope__free_unpacked(held[i], NULL);
}

void print_card_service(const Crm__CustomerCard *card)
{
	if (card->n_vehicles) {
		printf("\nVehicles\n");
		print_vehicles(card->vehicles, card->n_vehicles, "  ");
	}
	if (card->n_service_base) {
		printf("\nService base\n");
		for (size_t i = 0; i < card->n_service_base; i++) {
			const Crm__BaseCustomer *b = card->service_base[i];
			char classes[64], last[32], spend[32];
			svc_base_classes(b, classes, sizeof classes);
			format_ms(b->last_visit_at, last, sizeof last);
			svc_format_fen(b->spend_12m, spend, sizeof spend);
			printf("  %s  %s; %u visits (%u in 12 months), last %s; value class %s",
			       b->store_code, classes, b->visits, b->visits_12m, last,
			       *b->value_class ? b->value_class : "-");
			if (*b->value_class)
				printf(" (%s yuan in 12 months)", spend);
			printf("\n");
		}
	}
	if (card->n_service_visits) {
		printf("\nLatest service visits\n");
		print_visits(card->service_visits, card->n_service_visits, "  ");
	}
}
