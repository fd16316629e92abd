/* crmctl stats: counters and latency histograms of a running crmd, read
 * through the admin Stats request over TLS. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmclient.h"
#include "crmctl.h"
#include "pbjson.h"

/* The q-quantile estimated as the upper bound of the bucket it falls in. */
static uint64_t quantile_us(const Crm__Histogram *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	uint64_t seen = 0;
	for (size_t i = 0; i < h->n_bucket_count && i < h->n_bucket_upper_us; i++) {
		seen += h->bucket_count[i];
		if (seen > rank)
			return h->bucket_upper_us[i];
	}
	return h->n_bucket_upper_us ? h->bucket_upper_us[h->n_bucket_upper_us - 1] : 0;
}

static void print_us(uint64_t us)
{
	if (us == UINT64_MAX)
		printf(" %9s", ">10s");
	else if (us >= 1000)
		printf(" %7.1fms", (double)us / 1000);
	else
		printf(" %7lluus", (unsigned long long)us);
}

static void print_stats(const Crm__StatsReply *s)
{
	printf("crmd %s\n\n", s->version);
	for (size_t i = 0; i < s->n_counters; i++)
		printf("%-28s %llu\n", s->counters[i]->name,
		       (unsigned long long)s->counters[i]->value);
	printf("\n%-18s %9s %9s %9s %9s\n", "request", "count", "mean", "p50 <=", "p99 <=");
	for (size_t i = 0; i < s->n_histograms; i++) {
		const Crm__Histogram *h = s->histograms[i];
		if (h->count == 0)
			continue;
		printf("%-18s %9llu", h->name, (unsigned long long)h->count);
		print_us(h->sum_us / h->count);
		print_us(quantile_us(h, 0.50));
		print_us(quantile_us(h, 0.99));
		printf("\n");
	}
}

int ctl_cmd_stats(const struct crm_config *cfg, int argc, char **argv)
{
	const char *server = NULL, *ca = NULL, *user = NULL;
	bool pw_stdin = false, json = false;
	const struct ctl_opt opts[] = {
		{"server", CTL_OPT_VALUE, &server},
		{"ca", CTL_OPT_VALUE, &ca},
		{"user", CTL_OPT_VALUE, &user},
		{"password-stdin", CTL_OPT_FLAG, &pw_stdin},
		{"json", CTL_OPT_FLAG, &json},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("stats", argc, argv, opts);
	if (rc != CTL_OK)
		return rc;
	if (!user) {
		ctl_err("stats: give an admin account with --user NAME");
		return CTL_USAGE;
	}
	char default_server[160], default_ca[600];
	if (!server) {
		snprintf(default_server, sizeof default_server, "%s:%d", cfg->listen_host,
			 cfg->listen_port);
		server = default_server;
	}
	if (!ca)
		ca = getenv("CRM_CA");
	if (!ca) {
		/* The CA lies beside the server certificate crmctl certs wrote. */
		const char *slash = strrchr(cfg->cert_file, '/');
		int dirlen = slash ? (int)(slash - cfg->cert_file) : 1;
		snprintf(default_ca, sizeof default_ca, "%.*s/ca.pem", dirlen,
			 slash ? cfg->cert_file : ".");
		ca = default_ca;
	}
	char password[1024];
	if (!ctl_read_password(user, pw_stdin, false, password, sizeof password))
		return CTL_FAIL;
	struct crmc_options opt = {.server = server, .ca_file = ca, .client_name = "crmctl"};
	char err[512];
	struct crmc *c = crmc_connect(&opt, NULL, err, sizeof err);
	if (!c) {
		sodium_memzero(password, sizeof password);
		ctl_err("stats: %s", err);
		return CTL_FAIL;
	}
	Crm__LoginRequest lr = CRM__LOGIN_REQUEST__INIT;
	lr.username = (char *)user;
	lr.password = password;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGIN;
	req.login = &lr;
	Crm__Envelope *resp = crmc_call(c, &req, 30000, err, sizeof err);
	sodium_memzero(password, sizeof password);
	if (!resp || crmc_status(resp) != CRM__CODE__OK) {
		ctl_err("stats: login failed: %s", resp ? crmc_status_message(resp) : err);
		goto failed;
	}
	crm__envelope__free_unpacked(resp, NULL);
	Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
	Crm__Envelope sreq = CRM__ENVELOPE__INIT;
	sreq.body_case = CRM__ENVELOPE__BODY_STATS;
	sreq.stats = &sr;
	resp = crmc_call(c, &sreq, 30000, err, sizeof err);
	if (!resp || crmc_status(resp) != CRM__CODE__OK) {
		ctl_err("stats: %s", resp ? crmc_status_message(resp) : err);
		goto failed;
	}
	if (json) {
		pbjson_print(stdout, &resp->stats_reply->base, 0);
		fputc('\n', stdout);
	} else {
		print_stats(resp->stats_reply);
	}
	crm__envelope__free_unpacked(resp, NULL);
	crmc_close(c);
	return CTL_OK;
failed:
	if (resp)
		crm__envelope__free_unpacked(resp, NULL);
	crmc_close(c);
	return CTL_FAIL;
}
