/* Customers: create (idempotent by id and by phone), get.
 * Every write goes through write_with_outbox(). */
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stmts.h"
#include "textcheck.h"

#define NAME_MAX_CHARS 100

static void reply_customer(struct request *r, const PGresult *res, bool existed)
{
	Crm__Customer cu;
	struct scratch sc = {0};
	row_to_customer(res, 0, 0, &cu, &sc);
	Crm__CustomerReply cr = CRM__CUSTOMER_REPLY__INIT;
	cr.customer = &cu;
	cr.existed = existed;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER;
	resp.customer = &cr;
	req_reply(r, &resp);
	scratch_free(&sc);
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

