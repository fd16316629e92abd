/* crm: the desk client's scriptable commands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm.h"
#include "pbjson.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: crm [--server HOST:PORT] [--ca FILE] [--json] COMMAND ...\n"
		"\n"
		"commands:\n"
		"  login [--user NAME] [--password-stdin]   start a session\n"
		"  logout                                  end the session\n"
		"  whoami                                  show who is logged in\n"
		"  customer add --name NAME --phone PHONE [--id UUID]\n"
		"  customer get ID\n"
		"  customer list [--limit N]\n"
		"\n"
		"The server and CA come from the flags, else CRM_SERVER and CRM_CA, else\n"
		"[client] server= and ca= in $CRM_CONFIG_DIR/crm.ini (default\n"
		"~/.config/dealercrm/crm.ini).\n"
		"Exit codes: 0 ok, 2 usage, 3 not found, 4 not logged in or not allowed,\n"
		"5 conflict, 6 invalid input, 7 server unavailable, 1 other.\n");
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

	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} commands[] = {
		{"login", cmd_login},
		{"logout", cmd_logout},
		{"whoami", cmd_whoami},
		{"customer", cmd_customer},
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
