#include "stats.h"

const uint64_t stats_bucket_upper_us[STATS_BUCKETS] = {
	100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
	200000, 500000, 1000000, 2000000, 5000000, 10000000,
};

static const char *const counter_names[ST__COUNT] = {
	[ST_CONN_ACCEPTED] = "connections_accepted",
	[ST_CONN_REFUSED_LIMIT] = "connections_refused_limit",
	[ST_CONN_OPEN] = "connections_open",
	[ST_TLS_HANDSHAKE_FAILED] = "tls_handshakes_failed",
	[ST_FRAMES_IN] = "frames_in",
	[ST_FRAMES_OUT] = "frames_out",
	[ST_FRAMES_TOO_LARGE] = "frames_too_large",
	[ST_FRAMES_MALFORMED] = "frames_malformed",
	[ST_REQUESTS] = "requests",
	[ST_RESPONSES_OK] = "responses_ok",
	[ST_RESPONSES_ERROR] = "responses_error",
	[ST_UNAVAILABLE] = "responses_unavailable",
	[ST_LOGIN_OK] = "logins_ok",
	[ST_LOGIN_FAILED] = "logins_failed",
	[ST_TIMEOUTS] = "connection_timeouts",
	[ST_PAUSED_IN_FLIGHT] = "reads_paused_in_flight",
	[ST_PAUSED_OUTPUT] = "reads_paused_output",
	[ST_AUDIT_DENIED_DROPPED] = "audit_denied_not_written",
	[ST_FOLLOWUP_GROUPS] = "followup_groups",
	[ST_FOLLOWUPS_GROUPED] = "followups_grouped",
};

const char *stats_counter_name(enum stat_counter c) { return counter_names[c]; }

void stats_observe(struct histogram *h, uint64_t us)
{
	int i = 0;
	while (i < STATS_BUCKETS && us > stats_bucket_upper_us[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum_us += us;
}
