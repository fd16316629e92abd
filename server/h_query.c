/* Customer queries: the streamed list and search, and the customer card. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stmts.h"
#include "textcheck.h"

static void on_page(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	int rows = PQntuples(res);
	uint32_t want = r->page_size;
	if (r->remaining && r->remaining < want)
		want = r->remaining;
	int send = rows < (int)want ? rows : (int)want;
	struct scratch sc = {0};
	Crm__Customer *items = calloc((size_t)send + 1, sizeof *items);
	Crm__Customer **ptrs = calloc((size_t)send + 1, sizeof *ptrs);
	if (!items || !ptrs) {
		free(items);
		free(ptrs);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < send; i++) {
		row_to_customer(res, i, 0, &items[i], &sc);
		ptrs[i] = &items[i];
	}
	if (send > 0)
		snprintf(r->cursor, sizeof r->cursor, "%s", items[send - 1].id);
	if (r->remaining)
		r->remaining -= (uint32_t)send;
	bool more = rows > send && !(r->env->customer_list->limit && r->remaining == 0);
	Crm__CustomerPage page = CRM__CUSTOMER_PAGE__INIT;
	page.customers = ptrs;
	page.n_customers = (size_t)send;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER_PAGE;
	resp.customer_page = &page;
	req_stream_frame(r, &resp, more);
	free(items);
	free(ptrs);
	scratch_free(&sc);
	if (more)
		h_customer_list_more(r);
}

/* Fetches the next page when the client has credit; one more row than a
 * page tells whether another frame follows. */
void h_customer_list_more(struct request *r)
{
	if (r->credit == 0) {
		r->stream_waiting = true;
		return;
	}
	uint32_t want = r->page_size;
	if (r->remaining && r->remaining < want)
		want = r->remaining;
	char count[16];
	snprintf(count, sizeof count, "%u", want + 1);
	const char *params[] = {r->conn->session.session_id, r->cursor[0] ? r->cursor : NULL, count};
	req_db(r, STMT_CUSTOMER_LIST, 3, params, NULL, NULL, on_page);
}

void h_customer_list(struct request *r)
{
	const Crm__CustomerList *in = r->env->customer_list;
	uint8_t raw[16];
	if (in->after_id && *in->after_id && !uuid_parse(in->after_id, raw)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "after_id", "after_id must be a UUID");
		return;
	}
	if (in->page_size > 500) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "page_size",
			 "page_size may be at most 500, got %u", in->page_size);
		return;
	}
	r->page_size = in->page_size ? in->page_size : 100;
	r->remaining = in->limit;
	snprintf(r->cursor, sizeof r->cursor, "%s", in->after_id ? in->after_id : "");
	h_customer_list_more(r);
}

void h_customer_card(struct request *r)
{
	req_fail(r, CRM__CODE__INTERNAL, NULL, "customer.card is not built yet");
}
