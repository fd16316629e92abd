/* crm: the desk client's scriptable commands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "pbjson.h"
#include "textcheck.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: crm [--server HOST:PORT] [--ca FILE] [--json] COMMAND ...\n"
		"\n"
		"session:\n"
		"  login [--user NAME] [--password-stdin]   start a session\n"
		"  logout                                  end the session\n"
		"  whoami                                  show who is logged in\n"
		"\n"
		"customers:\n"
		"  customer add --name NAME --phone PHONE [--phone PHONE]... [--gender male|female]\n"
		"      [--birth-year YEAR | --age-band 18-24|25-34|35-44|45-54|55+] [--wechat ID]\n"
		"      [--email ADDR] [--occupation TEXT] [--region TEXT] [--tag TAG]... [--important]\n"
		"      [--level H|A|B|C|N] [--source SOURCE] [--owner USER]\n"
		"      [--first-contact \"YYYY-MM-DD HH:MM\"] [--place TEXT] [--scenario TEXT]\n"
		"      [--feedback TEXT] [--intent MODEL[:BODY_TYPE[:MIN-MAX[:CONFIG]]]]... [--needs TEXT]\n"
		"      [--id UUID] [--relation-id UUID]\n"
		"  customer get ID                         the customer and your store's relation\n"
		"  customer show ID                        the whole card: stores, intents, history\n"
		"  customer update ID --version V [--name NAME] [--phone PHONE]... [--gender G]\n"
		"      [--birth-year Y] [--age-band B] [--wechat W] [--email E] [--occupation O]\n"
		"      [--region R] [--tag T]... [--no-tags] [--important | --not-important]\n"
		"  customer list [FILTERS] [--sort KEY] [--desc] [--limit N] [--after CURSOR]\n"
		"      [--columns C1,C2,...] [--format table|tsv]\n"
		"  customer search TEXT [FILTERS] ...      a phone, its last 4+ digits, or a name\n"
		"      FILTERS: --level H,A,... --source walk_in,... --model M --owner USER --tag T\n"
		"      --important --contacted-within DAYS --overdue --store CODE --name NAME\n"
		"      --name-match exact|prefix|fuzzy --phone PHONE\n"
		"  customer handover (--relation ID [--relation ID]... | --from USER) --to USER\n"
		"      --reason TEXT                       managers: move relations to a consultant\n"
		"  customer reveal ID --reason TEXT        show masked phones and WeChat (audited)\n"
		"  customer export ID --reason TEXT [--out FILE]\n"
		"                                          everything held on a customer, JSON (audited)\n"
		"  customer erase ID --reason TEXT [--yes] group admins: anonymize (asks unless --yes)\n"
		"  relation update RELATION_ID --version V [--source S] [--first-contact TIME]\n"
		"      [--place P] [--scenario S] [--feedback F] [--intent SPEC]... [--needs TEXT]\n"
		"      [--no-intents] [--status active|dormant|closed]\n"
		"  level set CUSTOMER_OR_RELATION_ID H|A|B|C --reason TEXT [--version V]\n"
		"\n"
		"follow-ups and tasks:\n"
		"  followup add CUSTOMER_OR_RELATION_ID --method M --type T --content TEXT\n"
		"      [--feedback TEXT] [--at TIME] [--task TASK_ID] [--next TIME]\n"
		"      [--next-method M] [--next-purpose TEXT]   record a contact, set the next\n"
		"  followup list CUSTOMER_OR_RELATION_ID [--limit N]\n"
		"  tasks [today|overdue|week|open|closed] [--owner USER] [--store CODE] [--at TIME]\n"
		"  task done TASK_ID --method M --type T --content TEXT [...followup add options]\n"
		"  task skip TASK_ID --reason TEXT\n"
		"  task reassign TASK_ID --to USER [--reason TEXT]   managers\n"
		"  attach put FOLLOWUP_ID FILE [--name NAME] [--type MEDIA_TYPE]\n"
		"                                          attach a file of up to 10 MiB\n"
		"  attach get ATTACHMENT_ID [-o FILE|-] [--force]   read it back (SHA-256 checked)\n"
		"  attach list FOLLOWUP_ID                 a follow-up's attachments\n"
		"  policy cadence show | set LEVEL EVENT STEP --after 2d --method M --purpose TEXT\n"
		"      [--assignee owner|manager] [--covers any|own] | remove LEVEL EVENT STEP\n"
		"  compliance [--since DATE] [--until DATE] [--store CODE] [--owner USER] [--at TIME]\n"
		"                                          tasks on time, late, missed, per person\n"
		"\n"
		"message templates ({name} {consultant} {store} {model} {date}):\n"
		"  template add --name NAME --channel sms|wechat|email --body TEXT [--inactive]\n"
		"  template list [--all] [--channel C] | show ID\n"
		"  template update ID --version V [--name N] [--channel C] [--body T] [--active|--inactive]\n"
		"  template render ID CUSTOMER_ID [--relation ID] [--model M] [--date DATE] [--allow-blanks]\n"
		"  template send ID CUSTOMER_ID [render options] [--type care|invitation] [--task TASK_ID]\n"
		"      [--id FOLLOWUP_UUID]                send it and record the follow-up\n"
		"  watch                                   print your tasks as they fall due (Ctrl-C ends)\n"
		"\n"
		"sales (amounts in yuan: 258000 or 25.8万):\n"
		"  opp add CUSTOMER_OR_RELATION_ID [--stage S] [--model M] [--price YUAN] [--at TIME]\n"
		"  opp list [CUSTOMER_OR_RELATION_ID] [--status open|won|lost]\n"
		"  opp stage OPP_ID STAGE --version V | opp show OPP_ID\n"
		"  opp lose OPP_ID --version V --reason competitor|price|postponed|unreachable|other\n"
		"      [--text TEXT] [--brand BRAND]      a lost opportunity keeps its reason\n"
		"  order place CUSTOMER_OR_RELATION_ID --model M --price YUAN [--deposit YUAN]\n"
		"      [--config TEXT] [--opportunity OPP_ID] [--at TIME]   level O\n"
		"  order deliver ORDER_ID --version V --vin VIN [--plate P]  level D, vehicle\n"
		"  order cancel ORDER_ID --version V --reason TEXT           level T\n"
		"  order list [CUSTOMER_OR_RELATION_ID] [--status S]\n"
		"  testdrive add CUSTOMER_OR_RELATION_ID --model M [--consultant USER]\n"
		"      [--opportunity OPP_ID] [--at TIME] [--note TEXT]\n"
		"  testdrive list [CUSTOMER_OR_RELATION_ID]\n"
		"\n"
		"after-sales:\n"
		"  vehicle add CUSTOMER_ID --vin VIN --model M [--plate P] [--purchased DATE]\n"
		"      [--store CODE]                      register a car (VIN: 17, no I, O, Q)\n"
		"  vehicle list CUSTOMER_ID | --vin VIN | --plate P\n"
		"  vehicle show VIN_OR_ID                  a car and its service visits\n"
		"  visit add VIN_OR_ID --mileage KM --type maintenance|repair|warranty|accident\n"
		"      --amount YUAN [--at TIME] [--note TEXT]   service advisors, store managers\n"
		"  visit list VIN_OR_ID | --customer ID | --store CODE\n"
		"  base list [--class archived|active|loyal|lost] [--store CODE] [--at TIME]\n"
		"  base counts [--store CODE] [--at TIME]  base customers per class\n"
		"  service reminders run [--store CODE] [--at TIME]   maintenance reminder tasks\n"
		"  value recompute [--store CODE] [--at TIME]   value classes A/B/C (managers)\n"
		"\n"
		"relationships:\n"
		"  referral add REFERRED_ID --by REFERRER_ID [--opportunity ID] [--note T] [--pending]\n"
		"  referral list [CUSTOMER_ID] [--status S] | reward REFERRAL_ID pending|granted|refused\n"
		"  org add --kind KIND --name NAME [--owner USER] | show ORG_ID | list [--customer ID]\n"
		"  org contact add ORG_ID CUSTOMER_ID --role ROLE [--title T]\n"
		"  org plan add ORG_ID --model M --quantity N --expected DATE [--status S]\n"
		"  survey add CUSTOMER_ID csi --visit ID | ssi --order ID --score N=S...\n"
		"  survey list [CUSTOMER_ID] | questions [csi|ssi] | question KIND N --text T --scale 5|10\n"
		"  complaint add CUSTOMER_ID --content T [--priority P] [--category C] [--due TIME]\n"
		"  complaint assign|handle|resolve|close COMPLAINT_ID ... | list [--overdue] | show ID\n"
		"\n"
		"administration:\n"
		"  audit [--user U] [--customer ID] [--action A] [--since T] [--until T]\n"
		"        [--store CODE] [--limit N]       the audit log (admins, store managers)\n"
		"\n"
		"The server and CA come from the flags, else CRM_SERVER and CRM_CA, else\n"
		"[client] server= and ca= in $CRM_CONFIG_DIR/crm.ini (default\n"
		"~/.config/dealercrm/crm.ini).\n"
		"Lists print aligned columns on a terminal and tab-separated lines otherwise;\n"
		"--json prints one JSON document whose keys are the protocol's field names.\n"
		"Exit codes: 0 ok, 2 usage, 3 not found, 4 not logged in or not allowed,\n"
		"5 conflict (a stale version or a protected lead), 6 invalid input,\n"
		"7 server unavailable, 1 other.\n");
}

int exit_for_code(Crm__Code code)
{
	switch (code) {
	case CRM__CODE__OK: return EXIT_OK;
	case CRM__CODE__NOT_FOUND: return EXIT_NOT_FOUND;
	case CRM__CODE__UNAUTHENTICATED:
	case CRM__CODE__PERMISSION_DENIED: return EXIT_AUTH;
	case CRM__CODE__CONFLICT:
	case CRM__CODE__ALREADY_EXISTS: return EXIT_CONFLICT;
	case CRM__CODE__INVALID_ARGUMENT: return EXIT_INVALID;
	case CRM__CODE__UNAVAILABLE: return EXIT_UNAVAILABLE;
	default: return EXIT_OTHER;
	}
}

void print_json(const ProtobufCMessage *msg)
{
	pbjson_print(stdout, msg, 0);
	fputc('\n', stdout);
}

int cli_fail(const struct cli *cli, int exit_code, const char *code_name, const char *field,
	     const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "crm: %s\n", msg);
	if (cli->json) {
		printf("{\"error\": {\"code\": ");
		pbjson_string(stdout, code_name);
		printf(", \"message\": ");
		pbjson_string(stdout, msg);
		printf(", \"field\": ");
		pbjson_string(stdout, field ? field : "");
		printf("}}\n");
	}
	return exit_code;
}

int cli_fail_response(const struct cli *cli, const Crm__Envelope *resp)
{
	Crm__Code code = crmc_status(resp);
	const char *field = resp->status && resp->status->field ? resp->status->field : "";
	return cli_fail(cli, exit_for_code(code), crmc_code_name(code), field, "%s",
			crmc_status_message(resp));
}

int cli_fail_response_body(const struct cli *cli, const Crm__Envelope *resp, const char *key,
			   const ProtobufCMessage *body)
{
	if (!cli->json || !body)
		return cli_fail_response(cli, resp);
	Crm__Code code = crmc_status(resp);
	const char *field = resp->status && resp->status->field ? resp->status->field : "";
	fprintf(stderr, "crm: %s\n", crmc_status_message(resp));
	printf("{\n  \"error\": {\"code\": ");
	pbjson_string(stdout, crmc_code_name(code));
	printf(", \"message\": ");
	pbjson_string(stdout, crmc_status_message(resp));
	printf(", \"field\": ");
	pbjson_string(stdout, field);
	printf("},\n  ");
	pbjson_string(stdout, key);
	printf(": ");
	pbjson_print(stdout, body, 1);
	printf("\n}\n");
	return exit_for_code(code);
}

int cli_usage(const struct cli *cli, const char *cmd_usage, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	int rc = cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL, "%s", msg);
	if (cmd_usage)
		fprintf(stderr, "usage: %s\n", cmd_usage);
	return rc;
}

int cli_opt_value(const struct cli *cli, const char *cmd_usage, int argc, char **argv, int *i,
		  const char **out)
{
	if (*i + 1 >= argc)
		return cli_usage(cli, cmd_usage, "%s needs a value", argv[*i]);
	*out = argv[++*i];
	return EXIT_OK;
}

int cli_versioned_update_args(const struct cli *cli, const char *u, const char *what,
			      const char *noun, bool hint_with_id, int argc, char **argv,
			      cli_record_opt_fn opt, void *opts, const char **id,
			      uint64_t *version)
{
	const char *version_text = NULL;
	*id = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--version")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &version_text)) != EXIT_OK)
				return rc;
			continue;
		}
		if ((rc = opt(cli, u, argc, argv, &i, opts)) >= 0) {
			if (rc != EXIT_OK)
				return rc;
			continue;
		}
		if (a[0] == '-' || *id)
			return cli_usage(cli, u, "%s: unknown argument %s", what, a);
		*id = a;
	}
	uint8_t raw[16];
	if (!*id)
		return cli_usage(cli, u, "%s: give the %s's ID", what, noun);
	if (!uuid_parse(*id, raw))
		return cli_usage(cli, u, "%s: \"%s\" is not a %s ID (a UUID)", what, *id, noun);
	if (!version_text)
		return cli_usage(cli, u,
				 "%s: --version is required, so that a change made meanwhile is not "
				 "overwritten; crm customer get %s prints it",
				 what, hint_with_id ? *id : "CUSTOMER_ID");
	if (!parse_uint(version_text, 1, UINT64_MAX, version))
		return cli_usage(cli, u, "--version \"%s\" is not a version number", version_text);
	return EXIT_OK;
}

int cli_unexpected(const struct cli *cli, const Crm__Envelope *resp)
{
	return cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL,
			"the server answered with an unexpected message (body %d)",
			(int)resp->body_case);
}

int cli_connect(struct cli *cli)
{
	if (!cli->server[0])
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "server",
				"no server given: pass --server HOST:PORT or set CRM_SERVER");
	if (!cli->ca[0])
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "ca",
				"no CA file given: pass --ca FILE or set CRM_CA");
	struct crmc_options opt = {.server = cli->server, .ca_file = cli->ca, .client_name = "crm"};
	char err[512];
	Crm__Code code;
	cli->conn = crmc_connect(&opt, &code, err, sizeof err);
	if (!cli->conn)
		return cli_fail(cli, exit_for_code(code), crmc_code_name(code), NULL, "%s", err);
	return EXIT_OK;
}

Crm__Envelope *cli_call(struct cli *cli, Crm__Envelope *req, int *exit_code)
{
	char err[512];
	Crm__Envelope *resp = crmc_call(cli->conn, req, 30000, err, sizeof err);
	if (!resp)
		*exit_code = cli_fail(cli, EXIT_UNAVAILABLE, "UNAVAILABLE", NULL,
				      "lost the server: %s", err);
	return resp;
}

Crm__Envelope *card_list(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase want)
{
	int rc;
	Crm__Envelope *resp = cli_call(cli, req, &rc);
	if (resp && (crmc_status(resp) != CRM__CODE__OK || resp->body_case != want)) {
		crm__envelope__free_unpacked(resp, NULL);
		resp = NULL;
	}
	return resp;
}

int cli_connect_session(struct cli *cli)
{
	char token[200];
	if (!session_load(cli, token, sizeof token))
		return cli_fail(cli, EXIT_AUTH, "UNAUTHENTICATED", NULL,
				"not logged in to %s: run crm login", cli->server);
	int rc = cli_connect(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__ResumeRequest rr = CRM__RESUME_REQUEST__INIT;
	rr.token = token;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_RESUME;
	req.resume = &rr;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK) {
		if (crmc_status(resp) == CRM__CODE__UNAUTHENTICATED) {
			crm__envelope__free_unpacked(resp, NULL);
			return cli_fail(cli, EXIT_AUTH, "UNAUTHENTICATED", NULL,
					"your session has expired or was ended: run crm login");
		}
		rc = cli_fail_response(cli, resp);
		crm__envelope__free_unpacked(resp, NULL);
		return rc;
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct cli cli;
	memset(&cli, 0, sizeof cli);
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			cli.json = true;
		} else if ((!strcmp(a, "--server") || !strcmp(a, "--ca")) && i + 1 < argc) {
			char *dst = a[2] == 's' ? cli.server : cli.ca;
			size_t cap = a[2] == 's' ? sizeof cli.server : sizeof cli.ca;
			snprintf(dst, cap, "%s", argv[++i]);
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "crm: unknown option %s\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* --json may also follow the command, as scripts tend to write it. */
	for (int k = i; k < argc; k++)
		if (!strcmp(argv[k], "--json"))
			cli.json = true;
	const char *env_server = getenv("CRM_SERVER"), *env_ca = getenv("CRM_CA");
	if (!cli.server[0] && env_server)
		snprintf(cli.server, sizeof cli.server, "%s", env_server);
	if (!cli.ca[0] && env_ca)
		snprintf(cli.ca, sizeof cli.ca, "%s", env_ca);
	cli_find_config_dir(&cli);
	cli_load_config_file(&cli);

	int cmd_audit(struct cli *cli, int argc, char **argv); /* cmd_audit.c */
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} commands[] = {
		{"attach", cmd_attach},
		{"audit", cmd_audit},
		{"login", cmd_login},
		{"logout", cmd_logout},
		{"whoami", cmd_whoami},
		{"customer", cmd_customer},
		{"relation", cmd_relation},
		{"level", cmd_level},
		{"followup", cmd_followup},
		{"tasks", cmd_tasks},
		{"task", cmd_task},
		{"policy", cmd_policy},
		{"referral", cmd_referral},
		{"org", cmd_org},
		{"survey", cmd_survey},
		{"complaint", cmd_complaint},
		{"vehicle", cmd_vehicle},
		{"visit", cmd_visit},
		{"base", cmd_base},
		{"service", cmd_service},
		{"value", cmd_value},
		{"template", cmd_template},
		{"compliance", cmd_compliance},
		{"opp", cmd_opp},
		{"order", cmd_order},
		{"testdrive", cmd_testdrive},
		{"watch", cmd_watch},
	};
	int rc = -1;
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
		if (!strcmp(argv[i], commands[k].name)) {
			rc = commands[k].fn(&cli, argc - i - 1, argv + i + 1);
			break;
		}
	}
	if (rc < 0) {
		fprintf(stderr, "crm: unknown command \"%s\"\n", argv[i]);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	if (cli.conn)
		crmc_close(cli.conn);
	return rc;
}
