/* Counters and latency histograms, read through the admin Stats request.
 * Single-threaded: only the loop thread touches them. */
#ifndef CRM_STATS_H
#define CRM_STATS_H

#include <stdint.h>

#include "crm.pb-c.h"

enum stat_counter {
	ST_CONN_ACCEPTED,
	ST_CONN_REFUSED_LIMIT,
	ST_CONN_OPEN,
	ST_TLS_HANDSHAKE_FAILED,
	ST_FRAMES_IN,
	ST_FRAMES_OUT,
	ST_FRAMES_TOO_LARGE,
	ST_FRAMES_MALFORMED,
	ST_REQUESTS,
	ST_RESPONSES_OK,
	ST_RESPONSES_ERROR,
	ST_UNAVAILABLE,
	ST_LOGIN_OK,
	ST_LOGIN_FAILED,
	ST_TIMEOUTS,
	ST_PAUSED_IN_FLIGHT,
	ST_PAUSED_OUTPUT,
	ST_AUDIT_DENIED_DROPPED,
	ST_FOLLOWUP_GROUPS,
	ST_FOLLOWUPS_GROUPED,
	ST__COUNT
};

/* Bucket upper bounds in microseconds, log-spaced from 100 us to 10 s. */
#define STATS_BUCKETS 16
#define STATS_MAX_HISTOGRAMS 96

struct histogram {
	uint64_t count;
	uint64_t sum_us;
	uint64_t buckets[STATS_BUCKETS + 1]; /* the last one: above every bound */
};

struct stats {
	uint64_t counters[ST__COUNT];
	struct histogram latency[STATS_MAX_HISTOGRAMS]; /* by handler index */
};

extern const uint64_t stats_bucket_upper_us[STATS_BUCKETS];

void stats_observe(struct histogram *h, uint64_t us);
const char *stats_counter_name(enum stat_counter c);

#endif
