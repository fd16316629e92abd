/* crm customer add | get | show | update | handover, and the dispatch of
 * crm customer's subcommands (list and search are in cmd_customer_list.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm.h"
#include "textcheck.h"

static const char add_usage[] =
	"crm customer add --name NAME --phone PHONE [--phone PHONE]... [--gender male|female]\n"
	"       [--birth-year YEAR | --age-band 18-24|25-34|35-44|45-54|55+] [--wechat ID]\n"
	"       [--email ADDR] [--occupation TEXT] [--region TEXT] [--tag TAG]... [--important]\n"
	"       [--level H|A|B|C|N] [--source SOURCE] [--owner USER]\n"
	"       [--first-contact \"YYYY-MM-DD HH:MM\"] [--place TEXT] [--scenario TEXT]\n"
	"       [--feedback TEXT] [--intent MODEL[:BODY_TYPE[:MIN-MAX[:CONFIG]]]]... [--needs TEXT]\n"
	"       [--id UUID] [--relation-id UUID]\n"
	"  The first phone is the primary one. SOURCE is one of walk_in, referral, online,\n"
	"  auto_show, phone_in, roadshow, fleet, other. Budgets are in yuan (250000, 25万).";
static const char get_usage[] = "crm customer get ID";
static const char show_usage[] = "crm customer show ID";
static const char update_usage[] =
	"crm customer update ID --version V [--name NAME] [--phone PHONE]... [--gender male|female]\n"
	"       [--birth-year YEAR] [--age-band BAND] [--wechat ID] [--email ADDR]\n"
	"       [--occupation TEXT] [--region TEXT] [--tag TAG]... [--no-tags]\n"
	"       [--important | --not-important]\n"
	"  Sets exactly the fields given; --phone replaces the phone list (the first is the\n"
	"  primary). V is the version printed by crm customer get ID.";
static const char handover_usage[] =
	"crm customer handover (--relation ID [--relation ID]... | --from USER) --to USER\n"
	"       --reason TEXT\n"
	"  Managers: moves relations of your store to consultant USER.";

#define CUSTOMER_MAX_PHONES 10
#define CUSTOMER_MAX_TAGS 32

/* The profile options of add and update. Strings point into argv. */
struct profile_opts {
	Crm__Customer cu;
	Crm__Phone phones[CUSTOMER_MAX_PHONES];
	Crm__Phone *phone_ptrs[CUSTOMER_MAX_PHONES];
	char canonical[CUSTOMER_MAX_PHONES][PHONE_CANONICAL_MAX];
	char *tags[CUSTOMER_MAX_TAGS];
	const char *fields[16];  /* CustomerUpdate.fields, in the order given */
	size_t n_fields;
	bool clear_tags;
};

static void profile_init(struct profile_opts *p)
{
	memset(p, 0, sizeof *p);
	crm__customer__init(&p->cu);
	for (size_t i = 0; i < CUSTOMER_MAX_PHONES; i++) {
		crm__phone__init(&p->phones[i]);
		p->phones[i].number = p->canonical[i];
		p->phone_ptrs[i] = &p->phones[i];
	}
	p->cu.phones = p->phone_ptrs;
	p->cu.tags = p->tags;
}

static void profile_field(struct profile_opts *p, const char *field)
{
	for (size_t i = 0; i < p->n_fields; i++)
		if (!strcmp(p->fields[i], field))
			return;
	if (p->n_fields < sizeof p->fields / sizeof p->fields[0])
		p->fields[p->n_fields++] = field;
}

static bool profile_has(const struct profile_opts *p, const char *field)
{
	for (size_t i = 0; i < p->n_fields; i++)
		if (!strcmp(p->fields[i], field))
			return true;
	return false;
}

static int this_year(void)
{
	time_t now = time(NULL);
	struct tm tm;
	return localtime_r(&now, &tm) ? tm.tm_year + 1900 : 2100;
}

/* Takes argv[*i] when it is a profile option: -1 when it is not, else
 * EXIT_OK or the exit code of an error already printed. */
static int profile_opt(const struct cli *cli, const char *u, int argc, char **argv, int *i,
		       struct profile_opts *p, bool update)
{
	const char *a = argv[*i], *v = NULL;
	Crm__Customer *cu = &p->cu;
	if (!strcmp(a, "--important") || (update && !strcmp(a, "--not-important"))) {
		bool want = !strcmp(a, "--important");
		if (profile_has(p, "important") && cu->important != want)
			return cli_usage(cli, u, "--important and --not-important contradict each other");
		cu->important = want;
		profile_field(p, "important");
		return EXIT_OK;
	}
	if (update && !strcmp(a, "--no-tags")) {
		if (cu->n_tags)
			return cli_usage(cli, u, "--no-tags and --tag contradict each other");
		p->clear_tags = true;
		profile_field(p, "tags");
		return EXIT_OK;
	}
	static const char *const with_value[] = {"--name", "--phone", "--gender", "--birth-year",
						 "--age-band", "--wechat", "--email", "--occupation",
						 "--region", "--tag", NULL};
	size_t k = 0;
	for (; with_value[k]; k++)
		if (!strcmp(a, with_value[k]))
			break;
	if (!with_value[k])
		return -1;
	int rc = cli_opt_value(cli, u, argc, argv, i, &v);
	if (rc != EXIT_OK)
		return rc;
	if (!strcmp(a, "--name")) {
		cu->name = (char *)v;
		profile_field(p, "name");
	} else if (!strcmp(a, "--phone")) {
		char why[256];
		size_t n = cu->n_phones;
		const char *field = n ? "customer.phones" : "customer.phone";
		if (n == CUSTOMER_MAX_PHONES)
			return cli_usage(cli, u, "at most %d phones", CUSTOMER_MAX_PHONES);
		if (!phone_normalize(v, p->canonical[n], why, sizeof why))
			return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", field, "%s: %s", field, why);
		for (size_t k2 = 0; k2 < n; k2++)
			if (!strcmp(p->canonical[k2], p->canonical[n]))
				return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", field,
						"%s: %s is given twice", field, p->canonical[n]);
		p->phones[n].primary = n == 0;
		cu->n_phones++;
		cu->phone = p->canonical[0];
		profile_field(p, "phones");
	} else if (!strcmp(a, "--gender")) {
		if (!(cu->gender = (char *)parse_gender(v)))
			return cli_usage(cli, u, "--gender \"%s\": give male or female", v);
		profile_field(p, "gender");
	} else if (!strcmp(a, "--birth-year")) {
		uint64_t y = 0;
		int now = this_year();
		bool clear = update && !strcmp(v, "0");
		if (!clear && !parse_uint(v, 1900, (uint64_t)now, &y))
			return cli_usage(cli, u, "--birth-year \"%s\": give a year from 1900 to %d%s", v, now,
					 update ? " (0 clears it)" : "");
		cu->birth_year = (uint32_t)y;
		profile_field(p, "birth_year");
	} else if (!strcmp(a, "--age-band")) {
		if (!*v && update)
			cu->age_band = "";
		else if (!(cu->age_band = (char *)parse_age_band(v)))
			return cli_usage(cli, u, "--age-band \"%s\": give one of %s", v, age_band_names);
		profile_field(p, "age_band");
	} else if (!strcmp(a, "--wechat")) {
		cu->wechat = (char *)v;
		profile_field(p, "wechat");
	} else if (!strcmp(a, "--email")) {
		if (*v && !strchr(v, '@'))
			return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "customer.email",
					"customer.email: \"%s\" is not an e-mail address", v);
		cu->email = (char *)v;
		profile_field(p, "email");
	} else if (!strcmp(a, "--occupation")) {
		cu->occupation = (char *)v;
		profile_field(p, "occupation");
	} else if (!strcmp(a, "--region")) {
		cu->region = (char *)v;
		profile_field(p, "region");
	} else if (!strcmp(a, "--tag")) {
		if (p->clear_tags)
			return cli_usage(cli, u, "--no-tags and --tag contradict each other");
		if (cu->n_tags == CUSTOMER_MAX_TAGS)
			return cli_usage(cli, u, "at most %d tags", CUSTOMER_MAX_TAGS);
		if (!*v)
			return cli_usage(cli, u, "--tag needs a non-empty tag");
		p->tags[cu->n_tags++] = (char *)v;
		profile_field(p, "tags");
	}
	return EXIT_OK;
}

/* The answer to add, get and update. `phone` and `relation_id` are those
 * being registered (add); `update` says that a CONFLICT means a stale
 * version. */
static int finish_customer(struct cli *cli, Crm__Envelope *resp, const char *phone,
			   const char *relation_id, bool update)
{
	int rc = EXIT_OK;
	bool has_body = resp->body_case == CRM__ENVELOPE__BODY_CUSTOMER && resp->customer;
	const Crm__CustomerReply *reply = has_body ? resp->customer : NULL;
	Crm__Code code = crmc_status(resp);
	if (code == CRM__CODE__CONFLICT && reply && reply->collision) {
		/* Our own words, in local time, replace the server's message. */
		if (cli->json)
			rc = cli_fail_response_body(cli, resp, "customer", &reply->base);
		else
			rc = exit_for_code(code);
		print_collision(stderr, reply->collision, phone);
	} else if (code == CRM__CODE__CONFLICT && update && reply && reply->customer) {
		rc = cli_fail_response_body(cli, resp, "customer", &reply->base);
		if (!cli->json) {
			printf("current record:\n");
			print_customer_brief(reply);
		}
		fprintf(stderr, "crm: re-read it (crm customer get %s) and retry with --version %llu\n",
			reply->customer->id, (unsigned long long)reply->customer->version);
	} else if (code != CRM__CODE__OK) {
		rc = cli_fail_response_body(cli, resp, "customer", reply ? &reply->base : NULL);
	} else if (!reply || !reply->customer) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&reply->base);
	} else {
		if (reply->existed) {
			const Crm__Customer *c = reply->customer;
			char when[32];
			format_ms(c->created_at, when, sizeof when);
			printf("already registered: this customer was registered on %s%s%s\n", when,
			       c->created_by && *c->created_by ? " by " : "",
			       c->created_by ? c->created_by : "");
			/* The group-wide record existed; our store's relation
			 * may still be the one this create sent. */
			if (relation_id && reply->relation && reply->relation->id &&
			    !strcmp(reply->relation->id, relation_id))
				printf("your store's relation to the customer is new\n");
		}
		print_customer_brief(reply);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static int customer_add(struct cli *cli, int argc, char **argv)
{
	const char *u = add_usage, *id = NULL, *relation_id = NULL;
	struct profile_opts p;
	struct relation_opts r;
	profile_init(&p);
	relation_opts_init(&r);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--id") || !strcmp(a, "--relation-id")) {
			const char **dst = !strcmp(a, "--id") ? &id : &relation_id;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
			if (!uuid_is_v7(*dst))
				return cli_usage(cli, u, "%s \"%s\" is not a UUID version 7", a, *dst);
			continue;
		}
		if ((rc = profile_opt(cli, u, argc, argv, &i, &p, false)) >= 0 ||
		    (rc = relation_opt(cli, u, argc, argv, &i, &r, false)) >= 0) {
			if (rc != EXIT_OK)
				return rc;
			continue;
		}
		return cli_usage(cli, u, "customer add: unknown argument %s", a);
	}
	if (!p.cu.name || !*p.cu.name)
		return cli_usage(cli, u, "customer add: --name is required");
	if (!p.cu.n_phones)
		return cli_usage(cli, u, "customer add: --phone is required");
	if (p.cu.birth_year && profile_has(&p, "age_band"))
		return cli_usage(cli, u, "customer add: give --birth-year or --age-band, not both");
	char new_id[37], new_relation_id[37];
	/* Chosen here so that a retry after a lost answer is the same create. */
	if (!id) {
		uuid_v7_new(new_id);
		id = new_id;
	}
	if (!relation_id) {
		uuid_v7_new(new_relation_id);
		relation_id = new_relation_id;
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	p.cu.id = (char *)id;
	/* The server ignores the relation for callers without a store. */
	r.rel.id = (char *)relation_id;
	r.rel.customer_id = (char *)id;
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &p.cu;
	cc.relation = &r.rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	return resp ? finish_customer(cli, resp, p.cu.phone, relation_id, false) : rc;
}

/* Reads the one positional ID of get and show. */
static int id_arg(const struct cli *cli, const char *u, const char *cmd, int argc, char **argv,
		  const char **id)
{
	*id = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (argv[i][0] == '-' && argv[i][1])
			return cli_usage(cli, u, "%s: unknown option %s", cmd, argv[i]);
		if (*id)
			return cli_usage(cli, u, "%s: unexpected argument %s", cmd, argv[i]);
		*id = argv[i];
	}
	uint8_t raw[16];
	if (!*id)
		return cli_usage(cli, u, "%s: give the customer's ID", cmd);
	if (!uuid_parse(*id, raw))
		return cli_usage(cli, u, "%s: \"%s\" is not a customer ID (a UUID)", cmd, *id);
	return EXIT_OK;
}

static int customer_get(struct cli *cli, int argc, char **argv)
{
	const char *id;
	int rc = id_arg(cli, get_usage, "customer get", argc, argv, &id);
	if (rc != EXIT_OK || (rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;
	Crm__CustomerGet g = CRM__CUSTOMER_GET__INIT;
	g.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
	req.customer_get = &g;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	return resp ? finish_customer(cli, resp, NULL, NULL, false) : rc;
}

static int customer_show(struct cli *cli, int argc, char **argv)
{
	const char *id;
	int rc = id_arg(cli, show_usage, "customer show", argc, argv, &id);
	if (rc != EXIT_OK || (rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;
	Crm__CustomerCardRequest cr = CRM__CUSTOMER_CARD_REQUEST__INIT;
	cr.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CARD_GET;
	req.customer_card_get = &cr;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK)
		rc = cli_fail_response(cli, resp);
	else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER_CARD || !resp->customer_card ||
		 !resp->customer_card->customer)
		rc = cli_unexpected(cli, resp);
	else {
		Crm__Envelope *held[2] = {NULL, NULL}, *sales[3] = {NULL, NULL, NULL};
		card_add_followups(cli, resp->customer_card, held);
		Crm__Envelope *svc_held[3] = {NULL, NULL, NULL};
		card_add_service(cli, resp->customer_card, svc_held);
		card_add_sales(cli, resp->customer_card, sales);
		Crm__Envelope *rel_held[4] = {NULL, NULL, NULL, NULL};
		card_add_relationships(cli, resp->customer_card, rel_held);
		if (cli->json)
			print_json(&resp->customer_card->base);
		else {
			print_card(resp->customer_card);
			print_card_sales(resp->customer_card);
			print_card_service(resp->customer_card);
			print_card_relationships(resp->customer_card);
		}
		card_drop_sales(resp->customer_card, sales);
		card_drop_relationships(resp->customer_card, rel_held);
		card_drop_followups(resp->customer_card, held);
		card_drop_service(resp->customer_card, svc_held);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static int profile_update_opt(const struct cli *cli, const char *u, int argc, char **argv,
			      int *i, void *opts)
{
	return profile_opt(cli, u, argc, argv, i, opts, true);
}

static int customer_update(struct cli *cli, int argc, char **argv)
{
	const char *u = update_usage, *id;
	uint64_t version;
	struct profile_opts p;
	profile_init(&p);
	int rc = cli_versioned_update_args(cli, u, "customer update", "customer", true, argc, argv,
					   profile_update_opt, &p, &id, &version);
	if (rc != EXIT_OK)
		return rc;
	if (!p.n_fields)
		return cli_usage(cli, u, "customer update: nothing to change: give at least one field");
	if (profile_has(&p, "name") && !*p.cu.name)
		return cli_usage(cli, u, "customer update: --name cannot be empty");
	if (p.cu.birth_year && profile_has(&p, "age_band") && *p.cu.age_band)
		return cli_usage(cli, u, "customer update: give --birth-year or --age-band, not both");
	rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	p.cu.id = (char *)id;
	Crm__CustomerUpdate cup = CRM__CUSTOMER_UPDATE__INIT;
	cup.id = (char *)id;
	cup.version = version;
	cup.fields = (char **)p.fields;
	cup.n_fields = p.n_fields;
	cup.customer = &p.cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_UPDATE;
	req.customer_update = &cup;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	return resp ? finish_customer(cli, resp, NULL, NULL, true) : rc;
}

static int customer_handover(struct cli *cli, int argc, char **argv)
{
	const char *u = handover_usage, *from = NULL, *to = NULL, *reason = NULL;
	char **relations = calloc((size_t)argc + 1, sizeof *relations);
	size_t n_relations = 0;
	int rc = EXIT_OK;
	if (!relations)
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "out of memory");
	for (int i = 0; i < argc && rc == EXIT_OK; i++) {
		const char *a = argv[i], *v;
		uint8_t raw[16];
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--relation")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
				break;
			if (!uuid_parse(v, raw))
				rc = cli_usage(cli, u, "--relation \"%s\" is not a relation ID (a UUID)", v);
			relations[n_relations++] = (char *)v;
		} else if (!strcmp(a, "--from")) {
			rc = cli_opt_value(cli, u, argc, argv, &i, &from);
		} else if (!strcmp(a, "--to")) {
			rc = cli_opt_value(cli, u, argc, argv, &i, &to);
		} else if (!strcmp(a, "--reason")) {
			rc = cli_opt_value(cli, u, argc, argv, &i, &reason);
		} else {
			rc = cli_usage(cli, u, "customer handover: unknown argument %s", a);
		}
	}
	if (rc != EXIT_OK)
		goto done;
	if (!n_relations && !from) {
		rc = cli_usage(cli, u, "customer handover: say what moves: --relation ID or --from USER");
		goto done;
	}
	if (n_relations && from) {
		rc = cli_usage(cli, u, "customer handover: give --relation or --from, not both");
		goto done;
	}
	if (!to || !*to) {
		rc = cli_usage(cli, u, "customer handover: --to USER is required");
		goto done;
	}
	if (!reason || !*reason) {
		rc = cli_usage(cli, u, "customer handover: --reason is required; it is kept with the handover");
		goto done;
	}
	if ((rc = cli_connect_session(cli)) != EXIT_OK)
		goto done;
	Crm__HandoverRequest hr = CRM__HANDOVER_REQUEST__INIT;
	hr.relation_ids = relations;
	hr.n_relation_ids = n_relations;
	hr.from_owner = (char *)(from ? from : "");
	hr.to_owner = (char *)to;
	hr.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_HANDOVER;
	req.handover = &hr;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		goto done;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_HANDOVER_REPLY || !resp->handover_reply) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->handover_reply->base);
	} else {
		const Crm__HandoverReply *hrep = resp->handover_reply;
		printf("moved %u relation%s to %s\n", hrep->moved, hrep->moved == 1 ? "" : "s", to);
		for (size_t k = 0; k < hrep->n_relation_ids; k++)
			printf("  %s\n", hrep->relation_ids[k]);
	}
	crm__envelope__free_unpacked(resp, NULL);
done:
	free(relations);
	return rc;
}

int cmd_customer(struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} subs[] = {
		{"add", customer_add},         {"get", customer_get},
		{"show", customer_show},       {"update", customer_update},
		{"handover", customer_handover},
		{"reveal", customer_reveal},   {"export", customer_export},
		{"erase", customer_erase},
	};
	if (argc >= 1) {
		for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++)
			if (!strcmp(argv[0], subs[k].name))
				return subs[k].fn(cli, argc - 1, argv + 1);
		if (!strcmp(argv[0], "list"))
			return customer_list(cli, argc - 1, argv + 1, customer_list_usage, false);
		if (!strcmp(argv[0], "search"))
			return customer_list(cli, argc - 1, argv + 1, customer_search_usage, true);
	}
	return cli_usage(cli, NULL,
			 argc ? "customer: unknown subcommand \"%s\" (add, get, show, update, list, "
				"search, handover, reveal, export or erase)"
			      : "customer: give a subcommand: add, get, show, update, list, search, "
				"handover, reveal, export or erase%s",
			 argc ? argv[0] : "");
}
