/* crm audit: read the audit log (group admins: all of it; store managers:
 * their store's). Pages of AuditQuery/AuditPage, newest first, until
 * --limit entries or the end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm.h"

int cmd_audit(struct cli *cli, int argc, char **argv);

static const char audit_usage[] =
	"usage: crm audit [--user NAME] [--customer ID] [--action ACTION|PREFIX.]\n"
	"                 [--since TIME] [--until TIME] [--store CODE] [--limit N] [--json]\n"
	"  TIME: YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\" (local time), or an age such as\n"
	"        30m, 12h, 7d (that long ago). --limit 0: every entry (default 100).";

static int usage_error(const struct cli *cli, const char *fmt, const char *arg)
{
	char msg[256];
	snprintf(msg, sizeof msg, fmt, arg);
	fprintf(stderr, "%s\n", audit_usage);
	return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL, "audit: %s", msg);
}

/* Local date/time, or an age before now. False when it is neither. */
static bool parse_when(const char *s, int64_t *ms)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (end != s && n > 0 && end[0] && !end[1] && strchr("mhd", end[0])) {
		long unit = end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : 86400;
		*ms = ((int64_t)time(NULL) - (int64_t)n * unit) * 1000;
		return true;
	}
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *rest = strptime(s, "%Y-%m-%d", &tm);
	if (!rest)
		return false;
	if (*rest) {
		const char *t = rest + 1;
		if (*rest != ' ' && *rest != 'T')
			return false;
		const char *r2 = strptime(t, "%H:%M:%S", &tm);
		if (!r2)
			r2 = strptime(t, "%H:%M", &tm);
		if (!r2 || *r2)
			return false;
	}
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	if (t == (time_t)-1)
		return false;
	*ms = (int64_t)t * 1000;
	return true;
}

static void print_entry(const Crm__AuditEntry *e)
{
	char when[32] = "";
	time_t t = (time_t)(e->at / 1000);
	struct tm tm;
	if (localtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	char what[256] = "";
	if (e->subject && *e->subject)
		snprintf(what, sizeof what, "%s", e->subject);
	if (e->entity && *e->entity) {
		size_t n = strlen(what);
		snprintf(what + n, sizeof what - n, "%s%s %s", n ? " " : "", e->entity,
			 e->entity_id ? e->entity_id : "");
	}
	if (e->before_version || e->after_version) {
		size_t n = strlen(what);
		snprintf(what + n, sizeof what - n, " v%" PRIu64 "->v%" PRIu64, e->before_version,
			 e->after_version);
	}
	printf("%-19s  %-24s  %-6s  %-20s  %-6s  %-15s  %s%s%s\n", when, e->action, e->outcome,
	       e->username && *e->username ? e->username : "-",
	       e->store_code && *e->store_code ? e->store_code : "-",
	       e->source_addr && *e->source_addr ? e->source_addr : "-", what,
	       e->reason && *e->reason ? (*what ? "; " : "") : "",
	       e->reason && *e->reason ? e->reason : "");
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
	Crm__AuditQuery q = CRM__AUDIT_QUERY__INIT;
	long limit = 100;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("%s\n", audit_usage);
			return EXIT_OK;
		}
		if (i + 1 >= argc)
			return usage_error(cli, "unknown argument or missing value: %s", a);
		const char *v = argv[++i];
		if (!strcmp(a, "--user")) {
			q.username = (char *)v;
		} else if (!strcmp(a, "--customer")) {
			q.customer_id = (char *)v;
		} else if (!strcmp(a, "--action")) {
			q.action = (char *)v;
		} else if (!strcmp(a, "--store")) {
			q.store_code = (char *)v;
		} else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
			int64_t ms;
			if (!parse_when(v, &ms))
				return usage_error(cli, "\"%s\" is not a time (YYYY-MM-DD [HH:MM], or 30m,"
							" 12h, 7d ago)", v);
			if (a[2] == 's')
				q.since = ms;
			else
				q.until = ms;
		} else if (!strcmp(a, "--limit")) {
			char *end;
			limit = strtol(v, &end, 10);
			if (*end || end == v || limit < 0 || limit > 1000000)
				return usage_error(cli, "--limit %s: expected a whole number, 0 for all", v);
		} else {
			return usage_error(cli, "unknown argument %s", a);
		}
	}
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;

	/* Pages are kept until printed: with --json the entries of every page
	 * form one document. */
	Crm__Envelope **pages = NULL;
	size_t npages = 0, total = 0;
	Crm__AuditEntry **all = NULL;
	rc = EXIT_OK;
	for (;;) {
		long want = limit == 0 ? 500 : limit - (long)total;
		q.page_size = (uint32_t)(want > 500 ? 500 : want);
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_AUDIT_QUERY;
		req.audit_query = &q;
		Crm__Envelope *resp = cli_call(cli, &req, &rc);
		if (!resp)
			goto out;
		if (crmc_status(resp) != CRM__CODE__OK) {
			rc = cli_fail_response(cli, resp);
			crm__envelope__free_unpacked(resp, NULL);
			goto out;
		}
		Crm__Envelope **np = realloc(pages, (npages + 1) * sizeof *np);
		Crm__AuditEntry **na =
			realloc(all, (total + resp->audit_page->n_entries + 1) * sizeof *na);
		if (np)
			pages = np;
		if (na)
			all = na;
		if (!np || !na) {
			crm__envelope__free_unpacked(resp, NULL);
			rc = cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "out of memory");
			goto out;
		}
		pages[npages++] = resp;
		for (size_t k = 0; k < resp->audit_page->n_entries; k++)
			all[total++] = resp->audit_page->entries[k];
		if (!cli->json)
			for (size_t k = 0; k < resp->audit_page->n_entries; k++) {
				if (total == resp->audit_page->n_entries && k == 0)
					printf("%-19s  %-24s  %-6s  %-20s  %-6s  %-15s  %s\n", "TIME",
					       "ACTION", "RESULT", "USER", "STORE", "FROM", "WHAT");
				print_entry(resp->audit_page->entries[k]);
			}
		q.before_id = resp->audit_page->next_before_id;
		if (q.before_id == 0 || (limit && (long)total >= limit))
			break;
	}
	if (cli->json) {
		Crm__AuditPage page = CRM__AUDIT_PAGE__INIT;
		page.entries = all;
		page.n_entries = total;
		page.next_before_id = q.before_id;
		print_json(&page.base);
	} else if (total == 0) {
		printf("no audit entries match\n");
	}
out:
	for (size_t k = 0; k < npages; k++)
		crm__envelope__free_unpacked(pages[k], NULL);
	free(pages);
	free(all);
	return rc;
}
