/* crm opp add|list|stage|lose|show, crm order place|deliver|cancel|list,
 * crm testdrive add|list (issue 6, sales), and the opportunities, orders
 * and test drives that `crm customer show` adds to the card. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm.h"
#include "textcheck.h"

static const char opp_usage[] =
	"crm opp add CUSTOMER_OR_RELATION_ID [--stage S] [--model M] [--price YUAN]\n"
	"       [--at TIME] [--id UUID]\n"
	"crm opp list [CUSTOMER_OR_RELATION_ID] [--status open|won|lost] [--limit N]\n"
	"crm opp stage OPP_ID STAGE --version V [--at TIME]\n"
	"crm opp lose OPP_ID --version V --reason R [--text TEXT] [--brand BRAND] [--at TIME]\n"
	"crm opp show OPP_ID\n"
	"  STAGE: prospecting, reception, needs_analysis, presentation, test_drive,\n"
	"         negotiation (by hand); deal and delivery follow the order; post_sale\n"
	"         after delivery. Stages only move forward.\n"
	"  R: competitor (--brand names it), price, postponed, unreachable, other (--text)\n"
	"  YUAN: 258000, 25.8万; TIME: \"YYYY-MM-DD HH:MM\" (local), default now.";

static const char order_usage[] =
	"crm order place CUSTOMER_OR_RELATION_ID --model M --price YUAN [--deposit YUAN]\n"
	"       [--config TEXT] [--opportunity OPP_ID] [--at TIME] [--id UUID]\n"
	"crm order deliver ORDER_ID --version V --vin VIN [--plate PLATE] [--at TIME]\n"
	"       [--vehicle-id UUID]\n"
	"crm order cancel ORDER_ID --version V --reason TEXT [--at TIME]\n"
	"crm order list [CUSTOMER_OR_RELATION_ID] [--status placed|delivered|cancelled]\n"
	"       [--limit N]\n"
	"  Placing moves the relation to level O, delivery to D (the vehicle is\n"
	"  registered), cancelling to T; the cadence policy sets the follow-up tasks.";

static const char testdrive_usage[] =
	"crm testdrive add CUSTOMER_OR_RELATION_ID --model M [--consultant USER]\n"
	"       [--opportunity OPP_ID] [--at TIME] [--note TEXT] [--id UUID]\n"
	"crm testdrive list [CUSTOMER_OR_RELATION_ID] [--limit N]";

static const char *const stage_names[] = {"prospecting", "reception", "needs_analysis",
					  "presentation", "test_drive", "negotiation",
					  "deal", "delivery", "post_sale", NULL};
static const char *const reason_names[] = {"competitor", "price", "postponed", "unreachable",
					   "other", NULL};

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

static void format_fen(uint64_t fen, char *out, size_t cap)
{
	if (fen % 100)
		snprintf(out, cap, "%llu.%02llu", (unsigned long long)(fen / 100),
			 (unsigned long long)(fen % 100));
	else
		snprintf(out, cap, "%llu", (unsigned long long)(fen / 100));
}

/* Yuan as typed ("258000", "25.8万") -> fen. */
static int yuan_opt(const struct cli *cli, const char *u, const char *opt, const char *v,
		    uint64_t *fen)
{
	uint32_t yuan;
	char why[128];
	if (!parse_yuan(v, &yuan, why, sizeof why))
		return cli_usage(cli, u, "%s: %s", opt, why);
	*fen = (uint64_t)yuan * 100;
	return EXIT_OK;
}

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
	if (code == CRM__CODE__NOT_FOUND)
		snprintf(rel_id, 37, "%s", id);
	else if (code != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER || !resp->customer)
		rc = cli_unexpected(cli, resp);
	else if (!resp->customer->relation || !*resp->customer->relation->id)
		rc = cli_fail(cli, EXIT_NOT_FOUND, "NOT_FOUND", "relation_id",
			      "customer %s has no relation at your store", id);
	else
		snprintf(rel_id, 37, "%s", resp->customer->relation->id);
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

/* Sends `req`; on an error prints it (with the current record under `key`
 * for a CONFLICT that carries one) and returns NULL with *rc set. */
static Crm__Envelope *call_expect(struct cli *cli, Crm__Envelope *req,
				  Crm__Envelope__BodyCase want, const char *key, int *rc)
{
	Crm__Envelope *resp = cli_call(cli, req, rc);
	if (!resp)
		return NULL;
	Crm__Code code = crmc_status(resp);
	if (code != CRM__CODE__OK) {
		const ProtobufCMessage *body = NULL;
		if (code == CRM__CODE__CONFLICT && resp->body_case == want) {
			if (want == CRM__ENVELOPE__BODY_OPPORTUNITY_REPLY)
				body = &resp->opportunity_reply->base;
			else if (want == CRM__ENVELOPE__BODY_ORDER_REPLY)
				body = &resp->order_reply->base;
		}
		*rc = cli_fail_response_body(cli, resp, key, body);
	} else if (resp->body_case != want) {
		*rc = cli_unexpected(cli, resp);
	} else {
		*rc = EXIT_OK;
		return resp;
	}
	crm__envelope__free_unpacked(resp, NULL);
	return NULL;
}

/* ------------------------------------------------------------ printing */

static void print_opportunity(const Crm__Opportunity *o, bool history)
{
	char price[32], when[32];
	format_fen(o->expected_price_fen, price, sizeof price);
	format_ms(o->opened_at, when, sizeof when);
	printf("opportunity %s  version %llu\n", o->id, (unsigned long long)o->version);
	printf("  stage %s  status %s", o->stage, o->status);
	if (*o->defeat_reason) {
		printf(" (%s", o->defeat_reason);
		if (*o->competitor_brand)
			printf(": %s", o->competitor_brand);
		if (*o->defeat_text)
			printf(": %s", o->defeat_text);
		printf(")");
	}
	printf("\n  model %s  expected price %s 元  opened %s by %s  store %s\n",
	       *o->model ? o->model : "-", price, when, o->created_by, o->store_code);
	for (size_t i = 0; history && i < o->n_history; i++) {
		const Crm__StageChange *h = o->history[i];
		format_ms(h->at, when, sizeof when);
		printf("    %s  %s -> %s  by %s\n", when, *h->from_stage ? h->from_stage : "(new)",
		       h->to_stage, h->by);
	}
}

static void print_order(const Crm__SalesOrder *o)
{
	char price[32], deposit[32], when[32];
	format_fen(o->price_fen, price, sizeof price);
	format_fen(o->deposit_fen, deposit, sizeof deposit);
	format_ms(o->placed_at, when, sizeof when);
	printf("order %s  version %llu  %s\n", o->id, (unsigned long long)o->version, o->status);
	printf("  %s%s%s  price %s 元  deposit %s 元  placed %s by %s\n", o->model,
	       *o->configuration ? " " : "", o->configuration, price, deposit, when, o->created_by);
	if (o->delivered_at) {
		format_ms(o->delivered_at, when, sizeof when);
		printf("  delivered %s  VIN %s  plate %s  vehicle %s\n", when, o->vin,
		       *o->plate ? o->plate : "-", o->vehicle_id);
	}
	if (o->cancelled_at) {
		format_ms(o->cancelled_at, when, sizeof when);
		printf("  cancelled %s: %s\n", when, o->cancel_reason);
	}
}

static void print_test_drive(const Crm__TestDrive *t)
{
	char when[32];
	format_ms(t->at, when, sizeof when);
	printf("test drive %s\n  %s  %s  with %s (%s)%s%s\n", t->id, when, t->model,
	       t->consultant_name, t->consultant, *t->note ? "  " : "", t->note);
}

/* Aligned on a terminal and in the card (`indent` non-empty), tab-separated
 * into a pipe, like crm's other lists. */
static void table_out(struct table *t, const char *indent)
{
	table_fit(t);
	if (!*indent && !isatty(STDOUT_FILENO)) {
		table_print_tsv_header(t, stdout);
		table_print_tsv_rows(t, stdout);
	} else {
		table_print_header(t, stdout, indent);
		table_print_rows(t, stdout, indent);
	}
	table_free(t);
}

static void opportunity_table(Crm__Opportunity *const *items, size_t n, const char *indent)
{
	static const char *const headers[] = {"ID", "STAGE", "STATUS", "MODEL", "PRICE", "OPENED",
					      "REASON", "VERSION"};
	struct table t;
	if (!table_init(&t, 8, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__Opportunity *o = items[i];
		char price[32], when[32], version[24];
		format_fen(o->expected_price_fen, price, sizeof price);
		format_ms(o->opened_at, when, sizeof when);
		snprintf(version, sizeof version, "%llu", (unsigned long long)o->version);
		const char *cells[] = {o->id, o->stage, o->status, o->model, price, when,
				       o->defeat_reason, version};
		table_add(&t, cells);
	}
	table_out(&t, indent);
}

static void order_table(Crm__SalesOrder *const *items, size_t n, const char *indent)
{
	static const char *const headers[] = {"ID", "STATUS", "MODEL", "PRICE", "DEPOSIT",
					      "PLACED", "VIN", "VERSION"};
	struct table t;
	if (!table_init(&t, 8, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__SalesOrder *o = items[i];
		char price[32], deposit[32], when[32], version[24];
		format_fen(o->price_fen, price, sizeof price);
		format_fen(o->deposit_fen, deposit, sizeof deposit);
		format_ms(o->placed_at, when, sizeof when);
		snprintf(version, sizeof version, "%llu", (unsigned long long)o->version);
		const char *cells[] = {o->id, o->status, o->model, price, deposit, when, o->vin,
				       version};
		table_add(&t, cells);
	}
	table_out(&t, indent);
}

static void test_drive_table(Crm__TestDrive *const *items, size_t n, const char *indent)
{
	static const char *const headers[] = {"ID", "AT", "MODEL", "CONSULTANT", "NOTE"};
	struct table t;
	if (!table_init(&t, 5, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__TestDrive *d = items[i];
		char when[32];
		format_ms(d->at, when, sizeof when);
		const char *cells[] = {d->id, when, d->model, d->consultant_name, d->note};
		table_add(&t, cells);
	}
	table_out(&t, indent);
}

void print_card_sales(const Crm__CustomerCard *card)
{
	if (card->n_opportunities) {
		printf("\nOpportunities\n");
		opportunity_table(card->opportunities, card->n_opportunities, "  ");
	}
	if (card->n_orders) {
		printf("\nOrders\n");
		order_table(card->orders, card->n_orders, "  ");
	}
	if (card->n_test_drives) {
		printf("\nTest drives\n");
		test_drive_table(card->test_drives, card->n_test_drives, "  ");
	}
}

/* ------------------------------------------------------------ shared argument handling */

/* Common options: --version, --at, --json; -1 when argv[*i] is none. */
struct common_opts {
	uint64_t version;
	int64_t at;
	const char *id;          /* --id */
	const char *pos[2];      /* positional arguments */
	int npos;
};

static int common_opt(const struct cli *cli, const char *u, int argc, char **argv, int *i,
		      struct common_opts *c)
{
	const char *a = argv[*i], *v;
	int rc;
	if (!strcmp(a, "--json"))
		return EXIT_OK;
	if (!strcmp(a, "--version") || !strcmp(a, "--at") || !strcmp(a, "--id")) {
		if ((rc = cli_opt_value(cli, u, argc, argv, i, &v)) != EXIT_OK)
			return rc;
		char why[256];
		if (a[2] == 'v') {
			if (!parse_uint(v, 1, INT64_MAX, &c->version))
				return cli_usage(cli, u, "--version \"%s\" must be a whole number", v);
		} else if (a[2] == 'a') {
			if (!parse_local_time(v, &c->at, why, sizeof why))
				return cli_usage(cli, u, "--at: %s", why);
		} else {
			if (!is_uuid(v))
				return cli_usage(cli, u, "--id \"%s\" is not a UUID", v);
			c->id = v;
		}
		return EXIT_OK;
	}
	if (a[0] == '-')
		return -1;
	if (c->npos >= 2)
		return cli_usage(cli, u, "unexpected argument %s", a);
	c->pos[c->npos++] = a;
	return EXIT_OK;
}

/* ------------------------------------------------------------ crm opp */

static int opp_reply(struct cli *cli, Crm__Envelope *req, const char *done)
{
	int rc;
	Crm__Envelope *resp = call_expect(cli, req, CRM__ENVELOPE__BODY_OPPORTUNITY_REPLY,
					  "opportunity_reply", &rc);
	if (!resp)
		return rc;
	const Crm__OpportunityReply *o = resp->opportunity_reply;
	if (cli->json) {
		print_json(&o->base);
	} else if (o->opportunity) {
		printf("%s\n", o->existed ? "opportunity already recorded" : done);
		print_opportunity(o->opportunity, true);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

static int opp_list(struct cli *cli, const char *id_kind, const char *id, const char *status,
		    uint32_t limit, bool show)
{
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope *resp = NULL;
	/* A customer id first; an id that is no customer's is a relation's. */
	for (int pass = 0; pass < (id_kind ? 1 : 2); pass++) {
		Crm__OpportunityList ol = CRM__OPPORTUNITY_LIST__INIT;
		if (id_kind)
			ol.id = (char *)id;
		else if (id && pass == 0)
			ol.customer_id = (char *)id;
		else if (id)
			ol.relation_id = (char *)id;
		ol.status = (char *)(status ? status : "");
		ol.limit = limit;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_LIST;
		req.opportunity_list = &ol;
		if (resp)
			crm__envelope__free_unpacked(resp, NULL);
		if (!(resp = cli_call(cli, &req, &rc)))
			return rc;
		if (!id || crmc_status(resp) != CRM__CODE__NOT_FOUND)
			break;
	}
	if (crmc_status(resp) != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != CRM__ENVELOPE__BODY_OPPORTUNITY_PAGE)
		rc = cli_unexpected(cli, resp);
	else if (cli->json)
		print_json(show && resp->opportunity_page->n_opportunities
				   ? &resp->opportunity_page->opportunities[0]->base
				   : &resp->opportunity_page->base);
	else if (show && resp->opportunity_page->n_opportunities)
		print_opportunity(resp->opportunity_page->opportunities[0], true);
	else if (!resp->opportunity_page->n_opportunities)
		printf("no opportunities\n");
	else
		opportunity_table(resp->opportunity_page->opportunities,
				  resp->opportunity_page->n_opportunities, "");
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_opp(struct cli *cli, int argc, char **argv)
{
	const char *u = opp_usage;
	if (argc < 1)
		return cli_usage(cli, u, "opp: give a subcommand: add, list, stage, lose or show");
	const char *sub = argv[0];
	struct common_opts c = {0};
	const char *stage = "", *model = "", *status = NULL, *reason = "", *text = "", *brand = "",
		   *limit_text = NULL;
	uint64_t price = 0;
	for (int i = 1; i < argc; i++) {
		int rc = common_opt(cli, u, argc, argv, &i, &c);
		if (rc >= 0) {
			if (rc != EXIT_OK)
				return rc;
			continue;
		}
		const char *a = argv[i], *v;
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--stage"))
			stage = v;
		else if (!strcmp(a, "--model"))
			model = v;
		else if (!strcmp(a, "--price")) {
			if ((rc = yuan_opt(cli, u, a, v, &price)) != EXIT_OK)
				return rc;
		} else if (!strcmp(a, "--status"))
			status = v;
		else if (!strcmp(a, "--reason"))
			reason = v;
		else if (!strcmp(a, "--text"))
			text = v;
		else if (!strcmp(a, "--brand"))
			brand = v;
		else if (!strcmp(a, "--limit"))
			limit_text = v;
		else
			return cli_usage(cli, u, "opp %s: unknown option %s", sub, a);
	}
	uint64_t limit = 50;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	if (c.npos > 0 && !is_uuid(c.pos[0]))
		return cli_usage(cli, u, "opp %s: \"%s\" is not an ID (a UUID)", sub, c.pos[0]);
	if (*stage && !in_list(stage, stage_names))
		return cli_usage(cli, u, "--stage \"%s\" is not a stage", stage);
	if (!strcmp(sub, "list"))
		return opp_list(cli, NULL, c.npos ? c.pos[0] : NULL, status, (uint32_t)limit, false);
	if (!strcmp(sub, "show")) {
		if (c.npos != 1)
			return cli_usage(cli, u, "opp show: give the opportunity's ID");
		return opp_list(cli, "id", c.pos[0], NULL, 1, true);
	}
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	if (!strcmp(sub, "add")) {
		if (c.npos != 1)
			return cli_usage(cli, u, "opp add: give the customer (or relation) ID");
		int rc = cli_connect_session(cli);
		char rel_id[37], id[37];
		if (rc != EXIT_OK || (rc = relation_of(cli, c.pos[0], rel_id)) != EXIT_OK)
			return rc;
		if (c.id)
			snprintf(id, sizeof id, "%s", c.id);
		else
			uuid_v7_new(id);
		Crm__Opportunity o = CRM__OPPORTUNITY__INIT;
		o.id = id;
		o.relation_id = rel_id;
		o.stage = (char *)stage;
		o.model = (char *)model;
		o.expected_price_fen = price;
		Crm__OpportunityAdd add = CRM__OPPORTUNITY_ADD__INIT;
		add.opportunity = &o;
		add.at = c.at;
		req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_ADD;
		req.opportunity_add = &add;
		return opp_reply(cli, &req, "opportunity opened");
	}
	if (!strcmp(sub, "stage")) {
		if (c.npos != 2 || !in_list(c.pos[1], stage_names))
			return cli_usage(cli, u, "opp stage: give the opportunity's ID and a stage");
		if (!c.version)
			return cli_usage(cli, u, "opp stage: --version is required (crm opp show ID)");
		Crm__OpportunityStage st = CRM__OPPORTUNITY_STAGE__INIT;
		st.id = (char *)c.pos[0];
		st.version = c.version;
		st.stage = (char *)c.pos[1];
		st.at = c.at;
		req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_STAGE;
		req.opportunity_stage = &st;
		int rc = cli_connect_session(cli);
		return rc != EXIT_OK ? rc : opp_reply(cli, &req, "stage moved");
	}
	if (!strcmp(sub, "lose")) {
		if (c.npos != 1)
			return cli_usage(cli, u, "opp lose: give the opportunity's ID");
		if (!c.version)
			return cli_usage(cli, u, "opp lose: --version is required (crm opp show ID)");
		if (!in_list(reason, reason_names))
			return cli_usage(cli, u, "opp lose: --reason must be competitor, price, postponed,"
						 " unreachable or other");
		if (!strcmp(reason, "other") && !*text)
			return cli_usage(cli, u, "opp lose: --reason other needs --text");
		Crm__OpportunityLose lo = CRM__OPPORTUNITY_LOSE__INIT;
		lo.id = (char *)c.pos[0];
		lo.version = c.version;
		lo.reason = (char *)reason;
		lo.text = (char *)text;
		lo.competitor_brand = (char *)brand;
		lo.at = c.at;
		req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_LOSE;
		req.opportunity_lose = &lo;
		int rc = cli_connect_session(cli);
		return rc != EXIT_OK ? rc : opp_reply(cli, &req, "opportunity lost");
	}
	return cli_usage(cli, u, "opp: unknown subcommand \"%s\"", sub);
}

/* ------------------------------------------------------------ crm order */

static int order_reply(struct cli *cli, Crm__Envelope *req, const char *done)
{
	int rc;
	Crm__Envelope *resp = call_expect(cli, req, CRM__ENVELOPE__BODY_ORDER_REPLY, "order_reply",
					  &rc);
	if (!resp)
		return rc;
	const Crm__OrderReply *o = resp->order_reply;
	if (cli->json) {
		print_json(&o->base);
	} else if (o->order) {
		printf("%s\n", o->existed ? "order already recorded" : done);
		print_order(o->order);
		if (o->relation) {
			char next[32];
			format_ms(o->relation->next_followup_at, next, sizeof next);
			printf("  relation level %s  next follow-up %s\n", o->relation->level, next);
		}
		if (o->opportunity)
			printf("  opportunity %s: %s, %s\n", o->opportunity->id,
			       o->opportunity->stage, o->opportunity->status);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

static int order_list(struct cli *cli, const char *id, const char *status, uint32_t limit)
{
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope *resp = NULL;
	for (int pass = 0; pass < 2; pass++) {
		Crm__OrderList ol = CRM__ORDER_LIST__INIT;
		if (id && pass == 0)
			ol.customer_id = (char *)id;
		else if (id)
			ol.relation_id = (char *)id;
		ol.status = (char *)(status ? status : "");
		ol.limit = limit;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_ORDER_LIST;
		req.order_list = &ol;
		if (resp)
			crm__envelope__free_unpacked(resp, NULL);
		if (!(resp = cli_call(cli, &req, &rc)))
			return rc;
		if (!id || crmc_status(resp) != CRM__CODE__NOT_FOUND)
			break;
	}
	if (crmc_status(resp) != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != CRM__ENVELOPE__BODY_ORDER_PAGE)
		rc = cli_unexpected(cli, resp);
	else if (cli->json)
		print_json(&resp->order_page->base);
	else if (!resp->order_page->n_orders)
		printf("no orders\n");
	else
		order_table(resp->order_page->orders, resp->order_page->n_orders, "");
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_order(struct cli *cli, int argc, char **argv)
{
	const char *u = order_usage;
	if (argc < 1)
		return cli_usage(cli, u, "order: give a subcommand: place, deliver, cancel or list");
	const char *sub = argv[0];
	struct common_opts c = {0};
	const char *model = "", *config = "", *opp = "", *vin = "", *plate = "", *vehicle = NULL,
		   *reason = "", *status = NULL, *limit_text = NULL;
	uint64_t price = 0, deposit = 0;
	for (int i = 1; i < argc; i++) {
		int rc = common_opt(cli, u, argc, argv, &i, &c);
		if (rc >= 0) {
			if (rc != EXIT_OK)
				return rc;
			continue;
		}
		const char *a = argv[i], *v;
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--model"))
			model = v;
		else if (!strcmp(a, "--config"))
			config = v;
		else if (!strcmp(a, "--price") || !strcmp(a, "--deposit")) {
			if ((rc = yuan_opt(cli, u, a, v, a[2] == 'p' ? &price : &deposit)) != EXIT_OK)
				return rc;
		} else if (!strcmp(a, "--opportunity")) {
			if (!is_uuid(v))
				return cli_usage(cli, u, "--opportunity \"%s\" is not a UUID", v);
			opp = v;
		} else if (!strcmp(a, "--vin"))
			vin = v;
		else if (!strcmp(a, "--plate"))
			plate = v;
		else if (!strcmp(a, "--vehicle-id")) {
			if (!is_uuid(v))
				return cli_usage(cli, u, "--vehicle-id \"%s\" is not a UUID", v);
			vehicle = v;
		} else if (!strcmp(a, "--reason"))
			reason = v;
		else if (!strcmp(a, "--status"))
			status = v;
		else if (!strcmp(a, "--limit"))
			limit_text = v;
		else
			return cli_usage(cli, u, "order %s: unknown option %s", sub, a);
	}
	uint64_t limit = 50;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	if (c.npos > 1 || (c.npos && !is_uuid(c.pos[0])))
		return cli_usage(cli, u, "order %s: give one ID (a UUID)", sub);
	if (!strcmp(sub, "list"))
		return order_list(cli, c.npos ? c.pos[0] : NULL, status, (uint32_t)limit);
	if (c.npos != 1)
		return cli_usage(cli, u, "order %s: give the %s ID", sub,
				 strcmp(sub, "place") ? "order's" : "customer (or relation)");
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	char id[37], rel_id[37], vehicle_id[37];
	int rc;
	if (!strcmp(sub, "place")) {
		if (!*model || !price)
			return cli_usage(cli, u, "order place: --model and --price are required");
		if ((rc = cli_connect_session(cli)) != EXIT_OK ||
		    (rc = relation_of(cli, c.pos[0], rel_id)) != EXIT_OK)
			return rc;
		if (c.id)
			snprintf(id, sizeof id, "%s", c.id);
		else
			uuid_v7_new(id);
		Crm__SalesOrder o = CRM__SALES_ORDER__INIT;
		o.id = id;
		o.relation_id = rel_id;
		o.opportunity_id = (char *)opp;
		o.model = (char *)model;
		o.configuration = (char *)config;
		o.price_fen = price;
		o.deposit_fen = deposit;
		o.placed_at = c.at;
		Crm__OrderPlace op = CRM__ORDER_PLACE__INIT;
		op.order = &o;
		req.body_case = CRM__ENVELOPE__BODY_ORDER_PLACE;
		req.order_place = &op;
		return order_reply(cli, &req, "order placed");
	}
	if (!c.version)
		return cli_usage(cli, u, "order %s: --version is required (crm order list)", sub);
	if (!strcmp(sub, "deliver")) {
		if (!*vin)
			return cli_usage(cli, u, "order deliver: --vin is required");
		if (vehicle)
			snprintf(vehicle_id, sizeof vehicle_id, "%s", vehicle);
		else
			uuid_v7_new(vehicle_id);
		Crm__OrderDeliver d = CRM__ORDER_DELIVER__INIT;
		d.id = (char *)c.pos[0];
		d.version = c.version;
		d.vin = (char *)vin;
		d.plate = (char *)plate;
		d.vehicle_id = vehicle_id;
		d.at = c.at;
		req.body_case = CRM__ENVELOPE__BODY_ORDER_DELIVER;
		req.order_deliver = &d;
		if ((rc = cli_connect_session(cli)) != EXIT_OK)
			return rc;
		return order_reply(cli, &req, "order delivered");
	}
	if (!strcmp(sub, "cancel")) {
		if (!*reason)
			return cli_usage(cli, u, "order cancel: --reason is required");
		Crm__OrderCancel oc = CRM__ORDER_CANCEL__INIT;
		oc.id = (char *)c.pos[0];
		oc.version = c.version;
		oc.reason = (char *)reason;
		oc.at = c.at;
		req.body_case = CRM__ENVELOPE__BODY_ORDER_CANCEL;
		req.order_cancel = &oc;
		if ((rc = cli_connect_session(cli)) != EXIT_OK)
			return rc;
		return order_reply(cli, &req, "order cancelled");
	}
	return cli_usage(cli, u, "order: unknown subcommand \"%s\"", sub);
}

/* ------------------------------------------------------------ crm testdrive */

static int testdrive_list(struct cli *cli, const char *id, uint32_t limit)
{
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope *resp = NULL;
	for (int pass = 0; pass < 2; pass++) {
		Crm__TestDriveList tl = CRM__TEST_DRIVE_LIST__INIT;
		if (id && pass == 0)
			tl.customer_id = (char *)id;
		else if (id)
			tl.relation_id = (char *)id;
		tl.limit = limit;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_LIST;
		req.test_drive_list = &tl;
		if (resp)
			crm__envelope__free_unpacked(resp, NULL);
		if (!(resp = cli_call(cli, &req, &rc)))
			return rc;
		if (!id || crmc_status(resp) != CRM__CODE__NOT_FOUND)
			break;
	}
	if (crmc_status(resp) != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != CRM__ENVELOPE__BODY_TEST_DRIVE_PAGE)
		rc = cli_unexpected(cli, resp);
	else if (cli->json)
		print_json(&resp->test_drive_page->base);
	else if (!resp->test_drive_page->n_test_drives)
		printf("no test drives\n");
	else
		test_drive_table(resp->test_drive_page->test_drives,
				 resp->test_drive_page->n_test_drives, "");
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_testdrive(struct cli *cli, int argc, char **argv)
{
	const char *u = testdrive_usage;
	if (argc < 1)
		return cli_usage(cli, u, "testdrive: give a subcommand: add or list");
	const char *sub = argv[0];
	struct common_opts c = {0};
	const char *model = "", *consultant = "", *opp = "", *note = "", *limit_text = NULL;
	for (int i = 1; i < argc; i++) {
		int rc = common_opt(cli, u, argc, argv, &i, &c);
		if (rc >= 0) {
			if (rc != EXIT_OK)
				return rc;
			continue;
		}
		const char *a = argv[i], *v;
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--model"))
			model = v;
		else if (!strcmp(a, "--consultant"))
			consultant = v;
		else if (!strcmp(a, "--opportunity")) {
			if (!is_uuid(v))
				return cli_usage(cli, u, "--opportunity \"%s\" is not a UUID", v);
			opp = v;
		} else if (!strcmp(a, "--note"))
			note = v;
		else if (!strcmp(a, "--limit"))
			limit_text = v;
		else
			return cli_usage(cli, u, "testdrive %s: unknown option %s", sub, a);
	}
	uint64_t limit = 50;
	if (limit_text && !parse_uint(limit_text, 1, 1000, &limit))
		return cli_usage(cli, u, "--limit \"%s\" must be from 1 to 1000", limit_text);
	if (c.npos > 1 || (c.npos && !is_uuid(c.pos[0])))
		return cli_usage(cli, u, "testdrive %s: give one ID (a UUID)", sub);
	if (!strcmp(sub, "list"))
		return testdrive_list(cli, c.npos ? c.pos[0] : NULL, (uint32_t)limit);
	if (strcmp(sub, "add"))
		return cli_usage(cli, u, "testdrive: unknown subcommand \"%s\"", sub);
	if (c.npos != 1 || !*model)
		return cli_usage(cli, u, "testdrive add: give the customer (or relation) ID and --model");
	char rel_id[37], id[37];
	int rc;
	if ((rc = cli_connect_session(cli)) != EXIT_OK ||
	    (rc = relation_of(cli, c.pos[0], rel_id)) != EXIT_OK)
		return rc;
	if (c.id)
		snprintf(id, sizeof id, "%s", c.id);
	else
		uuid_v7_new(id);
	Crm__TestDrive t = CRM__TEST_DRIVE__INIT;
	t.id = id;
	t.relation_id = rel_id;
	t.opportunity_id = (char *)opp;
	t.model = (char *)model;
	t.consultant = (char *)consultant;
	t.note = (char *)note;
	t.at = c.at;
	Crm__TestDriveAdd add = CRM__TEST_DRIVE_ADD__INIT;
	add.test_drive = &t;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_ADD;
	req.test_drive_add = &add;
	Crm__Envelope *resp = call_expect(cli, &req, CRM__ENVELOPE__BODY_TEST_DRIVE_REPLY,
					  "test_drive_reply", &rc);
	if (!resp)
		return rc;
	const Crm__TestDriveReply *r = resp->test_drive_reply;
	if (cli->json) {
		print_json(&r->base);
	} else if (r->test_drive) {
		printf("%s\n", r->existed ? "test drive already recorded" : "test drive recorded");
		print_test_drive(r->test_drive);
		if (r->opportunity)
			printf("  opportunity %s: %s, %s\n", r->opportunity->id, r->opportunity->stage,
			       r->opportunity->status);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

/* ------------------------------------------------------------ the card */

void card_add_sales(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[3])
{
	Crm__OpportunityList ol = CRM__OPPORTUNITY_LIST__INIT;
	ol.customer_id = card->customer->id;
	ol.limit = 20;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_OPPORTUNITY_LIST;
	req.opportunity_list = &ol;
	if ((held[0] = card_list(cli, &req, CRM__ENVELOPE__BODY_OPPORTUNITY_PAGE))) {
		card->opportunities = held[0]->opportunity_page->opportunities;
		card->n_opportunities = held[0]->opportunity_page->n_opportunities;
	}
	Crm__OrderList rl = CRM__ORDER_LIST__INIT;
	rl.customer_id = card->customer->id;
	rl.limit = 20;
	Crm__Envelope oreq = CRM__ENVELOPE__INIT;
	oreq.body_case = CRM__ENVELOPE__BODY_ORDER_LIST;
	oreq.order_list = &rl;
	if ((held[1] = card_list(cli, &oreq, CRM__ENVELOPE__BODY_ORDER_PAGE))) {
		card->orders = held[1]->order_page->orders;
		card->n_orders = held[1]->order_page->n_orders;
	}
	Crm__TestDriveList tl = CRM__TEST_DRIVE_LIST__INIT;
	tl.customer_id = card->customer->id;
	tl.limit = 20;
	Crm__Envelope treq = CRM__ENVELOPE__INIT;
	treq.body_case = CRM__ENVELOPE__BODY_TEST_DRIVE_LIST;
	treq.test_drive_list = &tl;
	if ((held[2] = card_list(cli, &treq, CRM__ENVELOPE__BODY_TEST_DRIVE_PAGE))) {
		card->test_drives = held[2]->test_drive_page->test_drives;
		card->n_test_drives = held[2]->test_drive_page->n_test_drives;
	}
}

void card_drop_sales(Crm__CustomerCard *card, Crm__Envelope *held[3])
{
	/* The lists belong to the held replies, not to the card's. */
	card->opportunities = NULL;
	card->n_opportunities = 0;
	card->orders = NULL;
	card->n_orders = 0;
	card->test_drives = NULL;
	card->n_test_drives = 0;
	for (int i = 0; i < 3; i++)
		if (held[i])
			crm__envelope__free_unpacked(held[i], NULL);
}
