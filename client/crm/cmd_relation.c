/* A store's relation to a customer: the options shared by customer add and
 * relation update, crm relation update, and crm level set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "textcheck.h"

static const char relation_update_usage[] =
	"crm relation update RELATION_ID --version V [--source SOURCE]\n"
	"       [--first-contact \"YYYY-MM-DD HH:MM\"] [--place TEXT] [--scenario TEXT]\n"
	"       [--feedback TEXT] [--intent MODEL[:BODY_TYPE[:MIN-MAX[:CONFIG]]]]... [--needs TEXT]\n"
	"       [--no-intents] [--status active|dormant|closed]\n"
	"  RELATION_ID and V are printed by crm customer get CUSTOMER_ID.";

static const char level_set_usage[] =
	"crm level set CUSTOMER_OR_RELATION_ID H|A|B|C --reason TEXT [--version V]\n"
	"  With a customer id, your store's relation (and its version) is looked up;\n"
	"  with a relation id, give --version (crm customer get CUSTOMER_ID prints it).";

void relation_opts_init(struct relation_opts *o)
{
	memset(o, 0, sizeof *o);
	crm__relation__init(&o->rel);
	for (size_t i = 0; i < RELATION_MAX_INTENTS; i++)
		o->intent_ptrs[i] = &o->intents[i];
	o->rel.intents = o->intent_ptrs;
}

static void add_field(struct relation_opts *o, const char *field)
{
	for (size_t i = 0; i < o->n_fields; i++)
		if (!strcmp(o->fields[i], field))
			return;
	if (o->n_fields < sizeof o->fields / sizeof o->fields[0])
		o->fields[o->n_fields++] = field;
}

int relation_opt(const struct cli *cli, const char *cmd_usage, int argc, char **argv, int *i,
		 struct relation_opts *o, bool update)
{
	const char *a = argv[*i], *v = NULL;
	char why[512];
	int rc;
	Crm__Relation *rel = &o->rel;
	if (update && !strcmp(a, "--no-intents")) {
		if (rel->n_intents)
			return cli_usage(cli, cmd_usage, "--no-intents and --intent contradict each other");
		add_field(o, "intents");
		o->clear_intents = true;
		return EXIT_OK;
	}
	static const char *const with_value[] = {"--source", "--first-contact", "--place", "--scenario",
						 "--feedback", "--intent", "--needs", "--status",
						 "--level", "--owner", NULL};
	size_t k = 0;
	for (; with_value[k]; k++)
		if (!strcmp(a, with_value[k]))
			break;
	if (!with_value[k])
		return -1;
	bool add_only = !strcmp(a, "--level") || !strcmp(a, "--owner");
	if ((update && add_only) || (!update && !strcmp(a, "--status")))
		return -1;
	if ((rc = cli_opt_value(cli, cmd_usage, argc, argv, i, &v)) != EXIT_OK)
		return rc;
	if (!strcmp(a, "--source")) {
		if (!(rel->source = (char *)parse_source(v)))
			return cli_usage(cli, cmd_usage, "unknown source \"%s\" (one of %s)", v,
					 source_names);
		add_field(o, "source");
	} else if (!strcmp(a, "--first-contact")) {
		if (!parse_local_time(v, &rel->first_contact_at, why, sizeof why))
			return cli_usage(cli, cmd_usage, "--first-contact: %s", why);
		add_field(o, "first_contact_at");
	} else if (!strcmp(a, "--place")) {
		rel->first_contact_place = (char *)v;
		add_field(o, "first_contact_place");
	} else if (!strcmp(a, "--scenario")) {
		rel->first_contact_scenario = (char *)v;
		add_field(o, "first_contact_scenario");
	} else if (!strcmp(a, "--feedback")) {
		rel->first_feedback = (char *)v;
		add_field(o, "first_feedback");
	} else if (!strcmp(a, "--intent")) {
		if (o->clear_intents)
			return cli_usage(cli, cmd_usage, "--no-intents and --intent contradict each other");
		if (rel->n_intents == RELATION_MAX_INTENTS)
			return cli_usage(cli, cmd_usage, "at most %d --intent options",
					 RELATION_MAX_INTENTS);
		/* argv strings are ours to split. */
		if (!parse_intent(argv[*i], &o->intents[rel->n_intents], why, sizeof why))
			return cli_usage(cli, cmd_usage, "--intent %s", why);
		rel->n_intents++;
		add_field(o, "intents");
	} else if (!strcmp(a, "--needs")) {
		if (!rel->n_intents)
			return cli_usage(cli, cmd_usage, "--needs describes the --intent before it: give --intent first");
		o->intents[rel->n_intents - 1].needs = (char *)v;
	} else if (!strcmp(a, "--status")) {
		if (!(rel->status = (char *)parse_status(v)))
			return cli_usage(cli, cmd_usage, "unknown status \"%s\" (active, dormant or closed)", v);
		add_field(o, "status");
	} else if (!strcmp(a, "--level")) {
		if (!(rel->level = (char *)parse_level(v, "HABCN")))
			return cli_usage(cli, cmd_usage,
					 "level \"%s\": a new customer's level is H, A, B, C or N", v);
	} else if (!strcmp(a, "--owner")) {
		rel->owner = (char *)v;
	}
	return EXIT_OK;
}

/* After the server's message about a stale version (and the current
 * record): what to do now. */
static void stale_advice(const char *read_with, uint64_t current)
{
	fprintf(stderr, "crm: re-read it (%s) and retry with --version %llu\n", read_with,
		(unsigned long long)current);
}

/* The answer to relation update and level set. */
static int finish_relation(struct cli *cli, Crm__Envelope *resp, const char *done)
{
	int rc = EXIT_OK;
	bool has_body = resp->body_case == CRM__ENVELOPE__BODY_RELATION && resp->relation &&
			resp->relation->relation;
	Crm__Code code = crmc_status(resp);
	if (code == CRM__CODE__CONFLICT && has_body) {
		const Crm__Relation *cur = resp->relation->relation;
		rc = cli_fail_response_body(cli, resp, "relation", &resp->relation->base);
		if (!cli->json) {
			printf("current record:\n");
			print_relation_brief(cur, "  ");
		}
		char read_with[128];
		snprintf(read_with, sizeof read_with, "crm customer get %s", cur->customer_id);
		stale_advice(read_with, cur->version);
	} else if (code != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (!has_body) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->relation->base);
	} else {
		printf("%s\n", done);
		print_relation_brief(resp->relation->relation, "  ");
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static int relation_update_opt(const struct cli *cli, const char *u, int argc, char **argv,
			       int *i, void *opts)
{
	return relation_opt(cli, u, argc, argv, i, opts, true);
}

static int relation_update(struct cli *cli, int argc, char **argv)
{
	const char *u = relation_update_usage, *id;
	uint64_t version;
	struct relation_opts o;
	relation_opts_init(&o);
	int rc = cli_versioned_update_args(cli, u, "relation update", "relation", false, argc, argv,
					   relation_update_opt, &o, &id, &version);
	if (rc != EXIT_OK)
		return rc;
	if (!o.n_fields)
		return cli_usage(cli, u, "relation update: nothing to change: give at least one field");
	rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__RelationUpdate ru = CRM__RELATION_UPDATE__INIT;
	ru.id = (char *)id;
	ru.version = version;
	ru.fields = (char **)o.fields;
	ru.n_fields = o.n_fields;
	o.rel.id = (char *)id;
	ru.relation = &o.rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_RELATION_UPDATE;
	req.relation_update = &ru;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	return resp ? finish_relation(cli, resp, "relation updated") : rc;
}

int cmd_relation(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "update"))
		return relation_update(cli, argc - 1, argv + 1);
	return cli_usage(cli, relation_update_usage,
			 argc ? "relation: unknown subcommand \"%s\" (update)"
			      : "relation: give a subcommand: update%s",
			 argc ? argv[0] : "");
}

/* Finds the caller's store relation of customer `id`: its id, version and
 * level. NOT_FOUND (returned, nothing printed) means no such customer. */
static int own_relation(struct cli *cli, const char *id, char rel_id[37], uint64_t *version,
			char level[2], Crm__Code *code)
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
	*code = crmc_status(resp);
	if (*code == CRM__CODE__NOT_FOUND) {
		rc = EXIT_NOT_FOUND;
	} else if (*code != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER || !resp->customer) {
		rc = cli_unexpected(cli, resp);
	} else if (!resp->customer->relation || !resp->customer->relation->id ||
		   !*resp->customer->relation->id) {
		rc = cli_fail(cli, EXIT_NOT_FOUND, "NOT_FOUND", "relation_id",
			      "customer %s has no relation at your store, so it has no level there",
			      id);
	} else {
		snprintf(rel_id, 37, "%s", resp->customer->relation->id);
		*version = resp->customer->relation->version;
		snprintf(level, 2, "%s", resp->customer->relation->level);
		rc = EXIT_OK;
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

static int level_set(struct cli *cli, int argc, char **argv)
{
	const char *u = level_set_usage, *id = NULL, *level_text = NULL, *reason = NULL,
		   *version_text = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--reason") || !strcmp(a, "--version")) {
			const char **dst = !strcmp(a, "--reason") ? &reason : &version_text;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
		} else if (a[0] == '-' && a[1]) {
			return cli_usage(cli, u, "level set: unknown option %s", a);
		} else if (!id) {
			id = a;
		} else if (!level_text) {
			level_text = a;
		} else {
			return cli_usage(cli, u, "level set: unexpected argument %s", a);
		}
	}
	uint8_t raw[16];
	uint64_t version = 0;
	if (!id || !level_text)
		return cli_usage(cli, u, "level set: give the customer (or relation) ID and the level");
	if (!uuid_parse(id, raw))
		return cli_usage(cli, u, "level set: \"%s\" is not an ID (a UUID)", id);
	const char *level = parse_level(level_text, "HABC");
	if (!level)
		return cli_usage(cli, u,
				 "level set: level \"%s\" cannot be set by hand: give H, A, B or C "
				 "(N is a new contact's level; O, D and T follow orders)",
				 level_text);
	if (!reason || !*reason)
		return cli_usage(cli, u, "level set: --reason is required; it is kept in the level history");
	if (version_text && !parse_uint(version_text, 1, UINT64_MAX, &version))
		return cli_usage(cli, u, "--version \"%s\" is not a version number", version_text);
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	char rel_id[37], from_level[2] = "";
	uint64_t rel_version = 0;
	Crm__Code code = CRM__CODE__OK;
	rc = own_relation(cli, id, rel_id, &rel_version, from_level, &code);
	if (rc == EXIT_NOT_FOUND && code == CRM__CODE__NOT_FOUND) {
		/* Not a customer: the id names a relation, whose version we
		 * cannot know without the customer. */
		if (!version_text)
			return cli_usage(cli, u,
					 "level set: %s is no customer, so it is taken as a relation ID; "
					 "give its --version (crm customer get CUSTOMER_ID prints it)",
					 id);
		snprintf(rel_id, sizeof rel_id, "%s", id);
	} else if (rc != EXIT_OK) {
		return rc;
	} else if (!version_text) {
		version = rel_version;
	}
	Crm__LevelSet ls = CRM__LEVEL_SET__INIT;
	ls.relation_id = rel_id;
	ls.version = version;
	ls.level = (char *)level;
	ls.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LEVEL_SET;
	req.level_set = &ls;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	char done[64];
	if (from_level[0] && strcmp(from_level, level) != 0)
		snprintf(done, sizeof done, "level set to %s (was %s)", level, from_level);
	else
		snprintf(done, sizeof done, "level set to %s", level);
	return resp ? finish_relation(cli, resp, done) : rc;
}

int cmd_level(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "set"))
		return level_set(cli, argc - 1, argv + 1);
	return cli_usage(cli, level_set_usage,
			 argc ? "level: unknown subcommand \"%s\" (set)"
			      : "level: give a subcommand: set%s",
			 argc ? argv[0] : "");
}
