/* Customers over TLS against PostgreSQL: create, get, idempotent retries,
 * one customer per phone, bad input refused with the field named. */
#include "itest.h"
#include "textcheck.h"

static void test_add_then_get(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	char written[32];
	snprintf(written, sizeof written, "+86 %.3s-%.4s-%.4s", phone, phone + 3, phone + 7);
	Crm__Envelope *resp = it_create(c, id, "张伟", written);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	if (resp && resp->customer) {
		CHECK(!resp->customer->existed);
		CHECK(resp->customer->customer->version == 1);
		char canonical[24];
		snprintf(canonical, sizeof canonical, "+86%s", phone);
		CHECK_STR(resp->customer->customer->phone, canonical);
	}
	it_free(resp);
	resp = it_get(c, id);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	if (resp && resp->customer) {
		CHECK_STR(resp->customer->customer->id, id);
		CHECK_STR(resp->customer->customer->name, "张伟");
		CHECK_STR(resp->customer->customer->store_code, "BJ01");
	}
	it_free(resp);
	/* The write and its outbox change are one transaction. */
	PGconn *db = it_db();
	const char *n = it_db_value(db, "SELECT count(*) FROM crm.outbox WHERE entity = 'customer' "
					"AND entity_id = $1::uuid", id);
	CHECK(n && strcmp(n, "1") == 0);
	PQfinish(db);
	crmc_close(c);
}

static void test_retried_create_returns_the_same_record(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	Crm__Envelope *first = it_create(c, id, "王芳", phone);
	Crm__Envelope *again = it_create(c, id, "王芳", phone);
	CHECK(first && again && crmc_status(first) == CRM__CODE__OK &&
	      crmc_status(again) == CRM__CODE__OK);
	if (first && again && first->customer && again->customer) {
		CHECK(again->customer->existed);
		CHECK_STR(again->customer->customer->id, first->customer->customer->id);
		CHECK(again->customer->customer->version == first->customer->customer->version);
		CHECK(again->customer->customer->created_at == first->customer->customer->created_at);
	}
	PGconn *db = it_db();
	const char *n = it_db_value(db, "SELECT count(*) FROM crm.customers WHERE id = $1::uuid", id);
	CHECK(n && strcmp(n, "1") == 0);
	n = it_db_value(db, "SELECT count(*) FROM crm.outbox WHERE entity_id = $1::uuid", id);
	CHECK(n && strcmp(n, "1") == 0);
	PQfinish(db);
	it_free(first);
	it_free(again);
	crmc_close(c);
}

static void test_same_phone_is_the_same_customer(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	char id1[37], id2[37], phone[16], other_writing[32];
	uuid_v7_new(id1);
	uuid_v7_new(id2);
	it_phone(phone);
	snprintf(other_writing, sizeof other_writing, "0086 %s", phone);
	Crm__Envelope *a = it_create(c, id1, "刘洋", phone);
	Crm__Envelope *b = it_create(c, id2, "刘洋洋", other_writing);
	CHECK(a && b && crmc_status(b) == CRM__CODE__OK);
	if (b && b->customer) {
		CHECK(b->customer->existed);
		CHECK_STR(b->customer->customer->id, id1);
		CHECK_STR(b->customer->customer->name, "刘洋");
	}
	Crm__Envelope *g = it_get(c, id2);
	CHECK(g && crmc_status(g) == CRM__CODE__NOT_FOUND);
	it_free(a);
	it_free(b);
	it_free(g);
	crmc_close(c);
}

static void expect_invalid(struct crmc *c, const char *id, const char *name, const char *phone,
			   const char *field, const char *words)
{
	Crm__Envelope *resp = it_create(c, id, name, phone);
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT);
	if (resp && resp->status) {
		CHECK_STR(resp->status->field, field);
		if (!strstr(resp->status->message, words)) {
			fprintf(stderr, "message \"%s\" lacks \"%s\"\n", resp->status->message, words);
			CHECK(!"the message names the problem");
		}
	}
	it_free(resp);
}

static void test_bad_input_is_refused_and_nothing_changes(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	PGconn *db = it_db();
	const char *v = it_db_value(db, "SELECT count(*) FROM crm.customers", NULL);
	long before = v ? atol(v) : -1;
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	expect_invalid(c, id, "赵敏", "12345", "customer.phone", "11 digits");
	expect_invalid(c, id, "赵敏", "+1 415 555 0100", "customer.phone", "+86");
	expect_invalid(c, id, "赵敏", "138'; DROP TABLE crm.customers;--", "customer.phone",
		       "only digits");
	expect_invalid(c, id, "", phone, "customer.name", "required");
	expect_invalid(c, id, "\xe5\xbc", phone, "customer.name", "UTF-8");
	expect_invalid(c, id, "a\x01b", phone, "customer.name", "control character");
	expect_invalid(c, "0192f0c4-8a6e-4c3b-9d2e-1f2a3b4c5d6e", "赵敏", phone, "customer.id",
		       "UUID version 7");
	expect_invalid(c, "not-a-uuid", "赵敏", phone, "customer.id", "UUID");
	char longname[400] = "";
	for (int i = 0; i < 101; i++)
		strcat(longname, "赵");
	expect_invalid(c, id, longname, phone, "customer.name", "longer than 100");
	v = it_db_value(db, "SELECT count(*) FROM crm.customers", NULL);
	CHECK(v && atol(v) == before);
	Crm__Envelope *g = it_get(c, "definitely not an id");
	CHECK(g && crmc_status(g) == CRM__CODE__INVALID_ARGUMENT);
	it_free(g);
	PQfinish(db);
	crmc_close(c);
}

static void test_metacharacters_and_emoji_are_stored_verbatim(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	const char *names[] = {
		"O'Brien\"; DROP TABLE crm.customers; --",
		"王小明 😀🚗",
		"%_\\ $1 ::text",
		"𠀀𪚥 (rare CJK)",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char id[37], phone[16];
		uuid_v7_new(id);
		it_phone(phone);
		Crm__Envelope *resp = it_create(c, id, names[i], phone);
		CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
		it_free(resp);
		resp = it_get(c, id);
		CHECK(resp && resp->customer && strcmp(resp->customer->customer->name, names[i]) == 0);
		it_free(resp);
	}
	PGconn *db = it_db();
	const char *n = it_db_value(db, "SELECT count(*) FROM crm.customers WHERE name = $1", names[0]);
	CHECK(n && atol(n) >= 1);
	PQfinish(db);
	crmc_close(c);
}

static void test_outbox_sequence_is_gapless(void)
{
	PGconn *db = it_db();
	const char *v = it_db_value(db, "SELECT (max(seq) - min(seq) + 1 = count(*))::text FROM crm.outbox",
				    NULL);
	CHECK(v && strcmp(v, "true") == 0);
	PQfinish(db);
}

int main(void)
{
	it_init();
	test_add_then_get();
	test_retried_create_returns_the_same_record();
	test_same_phone_is_the_same_customer();
	test_bad_input_is_refused_and_nothing_changes();
	test_metacharacters_and_emoji_are_stored_verbatim();
	test_outbox_sequence_is_gapless();
	return it_summary();
}
