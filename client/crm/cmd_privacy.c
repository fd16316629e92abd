/* crm customer reveal / export / erase: the privacy requests. Each needs a
 * reason, which the server writes to the audit log with the request. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm.h"
#include "textcheck.h"

static const char reveal_usage[] = "crm customer reveal ID --reason TEXT [--json]";
static const char export_usage[] = "crm customer export ID --reason TEXT [--out FILE]";
static const char erase_usage[] = "crm customer erase ID --reason TEXT [--yes] [--json]";

struct privacy_args {
	const char *id, *reason, *out;
	bool yes;
};

/* ID, --reason, and --out (export) or --yes (erase) when `cmd` takes it. */
static int privacy_args(const struct cli *cli, const char *u, const char *cmd, int argc,
			char **argv, bool takes_out, bool takes_yes, struct privacy_args *a)
{
	memset(a, 0, sizeof *a);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		int rc;
		if (!strcmp(arg, "--json"))
			continue;
		if (!strcmp(arg, "--reason")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &a->reason)) != EXIT_OK)
				return rc;
		} else if (takes_out && !strcmp(arg, "--out")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &a->out)) != EXIT_OK)
				return rc;
		} else if (takes_yes && !strcmp(arg, "--yes")) {
			a->yes = true;
		} else if (arg[0] == '-' && arg[1]) {
			return cli_usage(cli, u, "%s: unknown option %s", cmd, arg);
		} else if (a->id) {
			return cli_usage(cli, u, "%s: unexpected argument %s", cmd, arg);
		} else {
			a->id = arg;
		}
	}
	uint8_t raw[16];
	if (!a->id)
		return cli_usage(cli, u, "%s: give the customer's ID", cmd);
	if (!uuid_parse(a->id, raw))
		return cli_usage(cli, u, "%s: \"%s\" is not a customer ID (a UUID)", cmd, a->id);
	if (!a->reason || !*a->reason)
		return cli_usage(cli, u, "%s: --reason is required: say why (it is audited)", cmd);
	return EXIT_OK;
}

int customer_reveal(struct cli *cli, int argc, char **argv)
{
	struct privacy_args a;
	int rc = privacy_args(cli, reveal_usage, "customer reveal", argc, argv, false, false, &a);
	if (rc != EXIT_OK || (rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;
	Crm__CustomerReveal rv = CRM__CUSTOMER_REVEAL__INIT;
	rv.id = (char *)a.id;
	rv.reason = (char *)a.reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_REVEAL;
	req.customer_reveal = &rv;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	const Crm__CustomerRevealReply *rr = resp->customer_reveal_reply;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER_REVEAL_REPLY || !rr) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&rr->base);
	} else {
		for (size_t k = 0; k < rr->n_phones; k++)
			printf("phone   %s  %s%s\n", rr->phones[k]->number, rr->phones[k]->kind,
			       rr->phones[k]->primary ? "  primary" : "");
		printf("wechat  %s\n", *rr->wechat ? rr->wechat : "-");
		fprintf(stderr, "this reveal was written to the audit log\n");
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

/* Writes the document to `path`, readable by the owner only: it is
 * personal information. */
static int write_document(const struct cli *cli, const char *path, const char *doc)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", "out", "cannot write %s: %s", path,
				strerror(errno));
	size_t len = strlen(doc), done = 0;
	while (done < len) {
		ssize_t n = write(fd, doc + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = errno;
			close(fd);
			return cli_fail(cli, EXIT_OTHER, "INTERNAL", "out", "cannot write %s: %s", path,
					strerror(e));
		}
		done += (size_t)n;
	}
	if (write(fd, "\n", 1) != 1 || close(fd) != 0)
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", "out", "cannot write %s: %s", path,
				strerror(errno));
	return EXIT_OK;
}

int customer_export(struct cli *cli, int argc, char **argv)
{
	struct privacy_args a;
	int rc = privacy_args(cli, export_usage, "customer export", argc, argv, true, false, &a);
	if (rc != EXIT_OK || (rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;
	Crm__CustomerExport ex = CRM__CUSTOMER_EXPORT__INIT;
	ex.id = (char *)a.id;
	ex.reason = (char *)a.reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_EXPORT;
	req.customer_export = &ex;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	const Crm__CustomerExportReply *er = resp->customer_export_reply;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER_EXPORT_REPLY || !er) {
		rc = cli_unexpected(cli, resp);
	} else if (a.out) {
		rc = write_document(cli, a.out, er->document);
		if (rc == EXIT_OK && !cli->json)
			fprintf(stderr, "wrote %s (this export was written to the audit log)\n", a.out);
	} else {
		printf("%s\n", er->document);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

/* On a terminal, asks before erasing; false when the answer is not yes. */
static bool confirm_erase(const char *id)
{
	fprintf(stderr,
		"Erase customer %s? Name, phones, WeChat, email, occupation, region, tags and\n"
		"birth year are removed for good; relations and history stay. Type yes: ",
		id);
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcmp(line, "yes");
}

int customer_erase(struct cli *cli, int argc, char **argv)
{
	struct privacy_args a;
	int rc = privacy_args(cli, erase_usage, "customer erase", argc, argv, false, true, &a);
	if (rc != EXIT_OK)
		return rc;
	if (!a.yes) {
		if (!isatty(STDIN_FILENO))
			return cli_usage(cli, erase_usage,
					 "customer erase: not on a terminal: give --yes to confirm");
		if (!confirm_erase(a.id))
			return cli_fail(cli, EXIT_OTHER, "CANCELLED", NULL, "not erased");
	}
	if ((rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;
	Crm__CustomerErase ce = CRM__CUSTOMER_ERASE__INIT;
	ce.id = (char *)a.id;
	ce.reason = (char *)a.reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_ERASE;
	req.customer_erase = &ce;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	const Crm__CustomerReply *cr = resp->customer;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER || !cr || !cr->customer) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&cr->base);
	} else {
		printf("%s customer %s (version %llu)\n", cr->existed ? "already erased:" : "erased",
		       cr->customer->id, (unsigned long long)cr->customer->version);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}
