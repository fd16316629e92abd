/* crmctl entry point: global options, configuration, command dispatch. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crmctl.h"

static const char usage_text[] =
	"usage: crmctl [-c FILE] [--set section.key=value]... COMMAND [OPTIONS]\n"
	"\n"
	"  init [--sql-dir DIR]          create the crmd role and the database, then migrate\n"
	"  migrate [--sql-dir DIR]       apply the sql/NNNN_*.sql files not yet applied\n"
	"  store add --code C --name N --city C --brand B [--group NAME]\n"
	"  user add --username U --role ROLE [--store CODE] [--display-name N]\n"
	"           [--password-stdin] [--if-missing]\n"
	"  user disable NAME | enable NAME   disabling ends the user's sessions at once\n"
	"  user unlock NAME                  lift a lockout after failed logins\n"
	"  user password NAME [--password-stdin]   set a new password; ends sessions\n"
	"                                passwords: at least 10 characters, two kinds of\n"
	"                                characters (a-z, A-Z, 0-9, others), not the username\n"
	"  session list [--user U]       live sessions, or every session of U\n"
	"  session revoke ID | --user U  end a session, or every live session of U\n"
	"  demo --logins FILE            demo group: 3 stores and their users\n"
	"  seed --customers M --logins FILE [--stores N] [--consultants K] [--seed S]\n"
	"       [--followups F] [--password P] [--keep-indexes] [--no-vacuum]\n"
	"                                a generated group for benchmarks: N stores (default\n"
	"                                8, codes SD001..) of 8 brands, a sales manager and K\n"
	"                                consultants (default 6) each, M customers with\n"
	"                                phones, relations, intents and level history, the\n"
	"                                open task each relation's cadence leaves, and F\n"
	"                                follow-ups (default 0) spread over the relations. One\n"
	"                                transaction, loaded with COPY; writes no outbox rows\n"
	"                                (bulk demo data, not store writes) and locks the\n"
	"                                customer tables while it runs. Refuses a database\n"
	"                                that already has a seeded group. Same --seed (default\n"
	"                                1) on the same day gives the same data. Logins (one\n"
	"                                password, --password or generated) go to FILE, sample\n"
	"                                customers for crm-bench to FILE.sample\n"
	"  certs --dir DIR [--host NAME]... [--ip ADDR]... [--force] [--crl-url URL]\n"
	"                                group CA and server certificate (--crl-url: where\n"
	"                                the group publishes the CRL of certs crl)\n"
	"  certs crl --dir DIR [--out FILE] [--days N]   the group CA's CRL (default 7 days)\n"
	"  certs store CODE --dir DIR [--out DIR] [--days N]\n"
	"                                client certificate + key of store CODE's node\n"
	"                                (ECDSA P-256, from the CA in DIR; node user made)\n"
	"  certs revoke SERIAL | --store CODE [--reason TEXT]\n"
	"  stats --user U [--password-stdin] [--server H:P] [--ca FILE] [--json]\n"
	"                                counters and latency of a running crmd\n"
	"\n"
	"  -c FILE   configuration (default: crmd.ini when present)\n"
	"  --set     override one configuration key after the file, e.g. --set db.port=5433\n"
	"\n"
	"roles: consultant sales_manager service_advisor call_center store_manager\n"
	"       store_node (these need --store); group_analyst group_admin\n";

void ctl_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("crmctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int ctl_parse(const char *cmd, int argc, char **argv, const struct ctl_opt *opts)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			ctl_err("%s: unexpected argument \"%s\" (see crmctl --help)", cmd, a);
			return CTL_USAGE;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct ctl_opt *o = opts;
		while (o->name && (strlen(o->name) != len || strncmp(o->name, name, len) != 0))
			o++;
		if (!o->name) {
			ctl_err("%s: unknown option --%.*s (see crmctl --help)", cmd, (int)len, name);
			return CTL_USAGE;
		}
		if (o->kind == CTL_OPT_FLAG) {
			if (eq) {
				ctl_err("%s: --%s takes no value", cmd, o->name);
				return CTL_USAGE;
			}
			*(bool *)o->out = true;
			continue;
		}
		const char *value = eq ? eq + 1 : NULL;
		if (!value) {
			if (i + 1 >= argc) {
				ctl_err("%s: --%s needs a value", cmd, o->name);
				return CTL_USAGE;
			}
			value = argv[++i];
		}
		if (o->kind == CTL_OPT_VALUE) {
			*(const char **)o->out = value;
		} else {
			struct ctl_list *l = o->out;
			if (l->n == CTL_LIST_MAX) {
				ctl_err("%s: at most %d --%s options", cmd, CTL_LIST_MAX, o->name);
				return CTL_USAGE;
			}
			l->v[l->n++] = value;
		}
	}
	return CTL_OK;
}

static int dispatch(const struct crm_config *cfg, int argc, char **argv)
{
	const char *cmd = argv[0];
	if (!strcmp(cmd, "init"))
		return ctl_cmd_init(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return ctl_cmd_migrate(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "store"))
		return ctl_cmd_store(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "user"))
		return ctl_cmd_user(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "demo"))
		return ctl_cmd_demo(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "seed"))
		return ctl_cmd_seed(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "certs"))
		return ctl_cmd_certs(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "session"))
		return ctl_cmd_session(cfg, argc - 1, argv + 1);
	if (!strcmp(cmd, "stats"))
		return ctl_cmd_stats(cfg, argc - 1, argv + 1);
	ctl_err("unknown command \"%s\" (see crmctl --help)", cmd);
	return CTL_USAGE;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	const char *sets[64];
	int nsets = 0;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return CTL_OK;
		}
		if (!strcmp(a, "--version")) {
			printf("crmctl %s\n", CRM_VERSION);
			return CTL_OK;
		}
		if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			if (++i >= argc) {
				ctl_err("%s needs a file name", a);
				return CTL_USAGE;
			}
			config_path = argv[i];
		} else if (!strcmp(a, "--set")) {
			if (++i >= argc || !strchr(argv[i], '=')) {
				ctl_err("--set needs section.key=value");
				return CTL_USAGE;
			}
			if (nsets == (int)(sizeof sets / sizeof sets[0])) {
				ctl_err("too many --set options");
				return CTL_USAGE;
			}
			sets[nsets++] = argv[i];
		} else {
			ctl_err("unknown option %s (see crmctl --help)", a);
			return CTL_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return CTL_USAGE;
	}

	struct crm_config cfg;
	char err[512];
	config_defaults(&cfg);
	if (!config_path && access("crmd.ini", F_OK) == 0)
		config_path = "crmd.ini";
	if (config_path && !config_load(&cfg, config_path, err, sizeof err)) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	for (int s = 0; s < nsets; s++) {
		char key[128];
		const char *eq = strchr(sets[s], '=');
		size_t klen = (size_t)(eq - sets[s]);
		if (klen >= sizeof key) {
			ctl_err("--set %s: key too long", sets[s]);
			return CTL_USAGE;
		}
		memcpy(key, sets[s], klen);
		key[klen] = '\0';
		if (!config_set(&cfg, key, eq + 1, err, sizeof err)) {
			ctl_err("--set: %s", err);
			return CTL_USAGE;
		}
	}
	return dispatch(&cfg, argc - i, argv + i);
}
