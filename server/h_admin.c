/* Health and statistics requests. */
#include <stdlib.h>

#include "server.h"

void h_ping(struct request *r)
{
	Crm__Pong pong = CRM__PONG__INIT;
	pong.nonce = r->env->ping->nonce;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_PONG;
	resp.pong = &pong;
	req_reply(r, &resp);
}

void h_stats(struct request *r)
{
	struct server *srv = r->conn->srv;
	Crm__Counter counters[ST__COUNT + 3];
	Crm__Counter *cptr[ST__COUNT + 3];
	size_t nc = 0;
	for (int i = 0; i < ST__COUNT; i++, nc++) {
		crm__counter__init(&counters[nc]);
		counters[nc].name = (char *)stats_counter_name((enum stat_counter)i);
		counters[nc].value = srv->stats.counters[i];
		cptr[nc] = &counters[nc];
	}
	crm__counter__init(&counters[nc]);
	counters[nc].name = "db_statements_pending";
	counters[nc].value = (uint64_t)pool_pending(srv->pool);
	cptr[nc] = &counters[nc];
	nc++;
	crm__counter__init(&counters[nc]);
	counters[nc].name = "db_statements_held_back";
	counters[nc].value = pool_held_back(srv->pool);
	cptr[nc] = &counters[nc];
	nc++;
	crm__counter__init(&counters[nc]);
	counters[nc].name = "db_ready";
	counters[nc].value = pool_ready(srv->pool);
	cptr[nc] = &counters[nc];
	nc++;

	size_t nh = handler_count();
	Crm__Histogram hists[STATS_MAX_HISTOGRAMS];
	Crm__Histogram *hptr[STATS_MAX_HISTOGRAMS];
	uint64_t bounds[STATS_BUCKETS + 1];
	for (int i = 0; i < STATS_BUCKETS; i++)
		bounds[i] = stats_bucket_upper_us[i];
	bounds[STATS_BUCKETS] = UINT64_MAX;
	for (size_t i = 0; i < nh; i++) {
		const struct histogram *h = &srv->stats.latency[i];
		crm__histogram__init(&hists[i]);
		hists[i].name = (char *)handler_at(i)->name;
		hists[i].bucket_upper_us = bounds;
		hists[i].n_bucket_upper_us = STATS_BUCKETS + 1;
		hists[i].bucket_count = (uint64_t *)h->buckets;
		hists[i].n_bucket_count = STATS_BUCKETS + 1;
		hists[i].count = h->count;
		hists[i].sum_us = h->sum_us;
		hptr[i] = &hists[i];
	}
	Crm__StatsReply sr = CRM__STATS_REPLY__INIT;
	sr.counters = cptr;
	sr.n_counters = nc;
	sr.histograms = hptr;
	sr.n_histograms = nh;
	sr.started_at = srv->started_at_ms;
	sr.version = CRM_VERSION;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_STATS_REPLY;
	resp.stats_reply = &sr;
	req_reply(r, &resp);
}
