/* Customers: create (idempotent by id and by phone), get, and the streamed
 * list. Every write goes through write_with_outbox(). */
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stmts.h"
#include "textcheck.h"

#define NAME_MAX_CHARS 100

static void reply_customer(struct request *r, const PGresult *res, bool existed)
{
	Crm__Customer cu;
	row_to_customer(res, 0, 0, &cu);
	Crm__CustomerReply cr = CRM__CUSTOMER_REPLY__INIT;
	cr.customer = &cu;
	cr.existed = existed;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER;
	resp.customer = &cr;
	req_reply(r, &resp);
}

static void on_created(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	reply_customer(r, res, PQgetvalue(res, 0, 8)[0] == 't');
}

/* The one path for writes: the record as written travels packed as the
 * last parameter, and the SQL function appends it to the outbox in the same
 * transaction as the write (sql/: crm.outbox_append). */
static void write_with_outbox(struct request *r, int stmt, int nparams, const char **values,
			      const ProtobufCMessage *record, pool_cb cb)
{
	size_t n = protobuf_c_message_get_packed_size(record);
	uint8_t *payload = malloc(n ? n : 1);
	if (!payload) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	protobuf_c_message_pack(record, payload);
	const char *vals[16];
	int lengths[16] = {0}, binary[16] = {0};
	for (int i = 0; i < nparams; i++)
		vals[i] = values[i];
	vals[nparams] = (const char *)payload;
	lengths[nparams] = (int)n;
	binary[nparams] = 1;
	req_db(r, stmt, nparams + 1, vals, lengths, binary, cb);
	free(payload); /* the pool copied it */
}

void h_customer_create(struct request *r)
{
	const Crm__CustomerCreate *in = r->env->customer_create;
	const Crm__Customer *cu = in->customer;
	char why[256], phone[PHONE_CANONICAL_MAX];
	if (!cu) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer", "customer is required");
		return;
	}
	if (!uuid_is_v7(cu->id)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer.id",
			 "customer.id must be a UUID version 7 chosen by the client");
		return;
	}
	if (!text_field_ok("customer.name", cu->name, NAME_MAX_CHARS, true, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer.name", "%s", why);
		return;
	}
	if (!phone_normalize(cu->phone, phone, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer.phone", "customer.phone: %s", why);
		return;
	}
	const struct session *s = &r->conn->session;
	Crm__Customer record = CRM__CUSTOMER__INIT;
	record.id = cu->id;
	record.name = cu->name;
	record.phone = phone;
	record.version = 1;
	record.created_at = now_ms();
	record.updated_at = record.created_at;
	record.created_by = (char *)s->username;
	record.store_code = (char *)s->store_code;
	const char *params[] = {s->session_id, cu->id, cu->name, phone};
	write_with_outbox(r, STMT_CUSTOMER_CREATE, 4, params, &record.base, on_created);
}

static void on_got(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no customer with id %s",
			 r->env->customer_get->id);
		return;
	}
	reply_customer(r, res, false);
}

void h_customer_get(struct request *r)
{
	const char *id = r->env->customer_get->id;
	uint8_t raw[16];
	if (!uuid_parse(id, raw)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "id",
			 "id must be a UUID like 0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
		return;
	}
	const char *params[] = {r->conn->session.session_id, id};
	req_db(r, STMT_CUSTOMER_GET, 2, params, NULL, NULL, on_got);
}

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
	Crm__Customer *items = calloc((size_t)send + 1, sizeof *items);
	Crm__Customer **ptrs = calloc((size_t)send + 1, sizeof *ptrs);
	if (!items || !ptrs) {
		free(items);
		free(ptrs);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < send; i++) {
		row_to_customer(res, i, 0, &items[i]);
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
