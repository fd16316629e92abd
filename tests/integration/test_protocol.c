/* The wire protocol against a real crmd over TLS: hello, pipelining,
 * malformed and oversized frames, stream flow control. */
#include <stdlib.h>
#include <unistd.h>

#include "frame.h"
#include "itest.h"
#include "textcheck.h"

static void test_hello_reports_server_and_limits(void)
{
	struct crmc *c = it_connect();
	CHECK(c != NULL);
	if (!c)
		return;
	const Crm__HelloReply *h = crmc_server_hello(c);
	CHECK(h->protocol_version == CRM__PROTOCOL_VERSION__PROTOCOL_VERSION);
	CHECK_STR(h->server_name, "crmd");
	CHECK(h->max_frame_bytes == 4u << 20);
	CHECK(h->n_features >= 1);
	crmc_close(c);
}

static void test_unknown_protocol_version_gets_a_clear_error(void)
{
	struct crmc_options opt = {
		.server = it_env("CRM_SERVER"), .ca_file = it_env("CRM_CA"),
		.client_name = "itest", .protocol_version = 99,
	};
	char err[512] = "";
	Crm__Code code = CRM__CODE__OK;
	struct crmc *c = crmc_connect(&opt, &code, err, sizeof err);
	CHECK(c == NULL);
	CHECK(code == CRM__CODE__INVALID_ARGUMENT);
	CHECK(strstr(err, "protocol version 99") != NULL);
	if (c)
		crmc_close(c);
}

static void test_requests_before_login_are_refused(void)
{
	struct crmc *c = it_connect();
	if (!c)
		return;
	Crm__Envelope *resp = it_get(c, "0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
	CHECK(resp && crmc_status(resp) == CRM__CODE__UNAUTHENTICATED);
	it_free(resp);
	crmc_close(c);
}

static void test_thousand_pipelined_requests_answered_with_matching_ids(void)
{
	struct crmc *c = it_login("consultant");
	CHECK(c != NULL);
	if (!c)
		return;
	enum { N = 1000 };
	static char ids[N][37];
	static bool answered[N + 1];
	memset(answered, 0, sizeof answered);
	uint64_t first = 0;
	for (int i = 0; i < N; i++) {
		char phone[16];
		uuid_v7_new(ids[i]);
		it_phone(phone);
		uint64_t id = it_send_create(c, ids[i], "流水线客户", phone);
		if (i == 0)
			first = id;
	}
	crmc_flush(c);
	int got = 0, ok = 0, matched = 0;
	char err[256];
	while (got < N) {
		Crm__Envelope *resp = crmc_recv(c, 60000, err, sizeof err);
		if (!resp) {
			fprintf(stderr, "pipelining: %s after %d answers\n", err, got);
			break;
		}
		if (resp->id == 0) { /* a pushed event */
			it_free(resp);
			continue;
		}
		got++;
		uint64_t k = resp->id - first;
		if (resp->id >= first && k < N && !answered[k]) {
			answered[k] = true;
			if (crmc_status(resp) == CRM__CODE__OK &&
			    resp->body_case == CRM__ENVELOPE__BODY_CUSTOMER &&
			    strcmp(resp->customer->customer->id, ids[k]) == 0)
				matched++;
			ok += crmc_status(resp) == CRM__CODE__OK;
		}
		it_free(resp);
	}
	CHECK(got == N);
	CHECK(ok == N);
	CHECK(matched == N);
	crmc_close(c);
}

static void test_malformed_frame_closes_only_that_connection(void)
{
	struct crmc *bad = it_login("consultant");
	struct crmc *good = it_login("consultant");
	CHECK(bad && good);
	if (!bad || !good)
		goto out;
	/* A frame whose payload is not a protobuf Envelope. */
	const uint8_t garbage[] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	crmc_send_raw(bad, garbage, sizeof garbage);
	char err[256];
	Crm__Envelope *resp = crmc_recv(bad, 10000, err, sizeof err);
	CHECK(resp != NULL);
	if (resp) {
		CHECK(resp->id == 0);
		CHECK(crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT);
		CHECK(strstr(crmc_status_message(resp), "malformed") != NULL);
		it_free(resp);
	}
	resp = crmc_recv(bad, 10000, err, sizeof err);
	CHECK(resp == NULL && !crmc_is_open(bad));
	it_free(resp);
	/* The other client is served as before. */
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	resp = it_create(good, id, "李娜", phone);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
out:
	if (bad)
		crmc_close(bad);
	if (good)
		crmc_close(good);
}

static void test_oversized_frame_gets_error_then_close(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	/* Announce 64 MiB; send only the header. The server must not wait. */
	const uint8_t header[] = {0x04, 0x00, 0x00, 0x00};
	crmc_send_raw(c, header, sizeof header);
	char err[256];
	Crm__Envelope *resp = crmc_recv(c, 10000, err, sizeof err);
	CHECK(resp != NULL);
	if (resp) {
		CHECK(crmc_status(resp) == CRM__CODE__RESOURCE_EXHAUSTED);
		CHECK(strstr(crmc_status_message(resp), "exceeds the limit") != NULL);
		it_free(resp);
	}
	CHECK(crmc_recv(c, 10000, err, sizeof err) == NULL);
	crmc_close(c);
}

static void test_zero_length_frame_is_an_empty_request(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	const uint8_t empty[] = {0, 0, 0, 0};
	crmc_send_raw(c, empty, sizeof empty);
	char err[256];
	Crm__Envelope *resp = crmc_recv(c, 10000, err, sizeof err);
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT);
	CHECK(resp && strstr(crmc_status_message(resp), "no body") != NULL);
	it_free(resp);
	/* The connection stays usable: a well-formed frame with no body is
	 * answered, not punished. */
	Crm__Ping ping = CRM__PING__INIT;
	ping.nonce = 42;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_PING;
	req.ping = &ping;
	resp = it_call(c, &req);
	CHECK(resp && resp->body_case == CRM__ENVELOPE__BODY_PONG && resp->pong->nonce == 42);
	it_free(resp);
	crmc_close(c);
}

static void test_second_hello_is_refused(void)
{
	/* The hello opens a connection once; another one is not a request. */
	struct crmc *c = it_connect();
	if (!c)
		return;
	Crm__Hello hello = CRM__HELLO__INIT;
	hello.protocol_version = 1;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_HELLO;
	req.hello = &hello;
	Crm__Envelope *resp = it_call(c, &req);
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT);
	it_free(resp);
	crmc_close(c);
}

static void test_stream_sends_no_more_than_its_credit(void)
{
	struct crmc *c = it_login("group_admin");
	if (!c)
		return;
	/* Enough customers exist after the pipelining test for many pages. */
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.page_size = 10;
	cl.limit = 100;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = &cl;
	req.credit = 2;
	uint64_t id = crmc_send(c, &req);
	char err[256];
	int frames = 0, customers = 0;
	bool last_seen = false;
	for (int i = 0; i < 2; i++) {
		Crm__Envelope *resp = crmc_wait(c, id, 10000, err, sizeof err);
		CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->more);
		if (resp) {
			frames++;
			customers += (int)resp->customer_page->n_rows;
		}
		it_free(resp);
	}
	/* Out of credit: nothing more may arrive. */
	Crm__Envelope *extra = crmc_wait(c, id, 700, err, sizeof err);
	CHECK(extra == NULL);
	it_free(extra);
	while (!last_seen) {
		crmc_stream_credit(c, id, 1);
		Crm__Envelope *resp = crmc_wait(c, id, 10000, err, sizeof err);
		CHECK(resp != NULL);
		if (!resp)
			break;
		frames++;
		customers += (int)resp->customer_page->n_rows;
		last_seen = !resp->more;
		it_free(resp);
	}
	CHECK(customers == 100);
	CHECK(frames == 10);
	crmc_close(c);
}

/* crmc_set_allocator: every reply from then on is unpacked through the
 * allocator given, and freed through it, including one still queued when
 * the connection closes. */
struct counting {
	ProtobufCAllocator pa;
	long allocs, live;
};

static void *counting_alloc(void *data, size_t n)
{
	struct counting *a = data;
	void *p = malloc(n ? n : 1);
	if (p) {
		a->allocs++;
		a->live++;
	}
	return p;
}

static void counting_free(void *data, void *p)
{
	struct counting *a = data;
	a->live--;
	free(p);
}

static void test_replies_come_from_the_allocator_set(void)
{
	struct crmc *c = it_login("consultant");
	CHECK(c != NULL);
	if (!c)
		return;
	struct counting a = {.pa = {counting_alloc, counting_free, NULL}};
	a.pa.allocator_data = &a;
	crmc_set_allocator(c, &a.pa);
	const char *missing = "0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e";
	Crm__Envelope *resp = it_get(c, missing);
	CHECK(resp && crmc_status(resp) == CRM__CODE__NOT_FOUND);
	CHECK(a.allocs > 0 && a.live > 0);
	if (resp)
		crm__envelope__free_unpacked(resp, &a.pa);
	CHECK(a.live == 0);
	/* Two requests; the answer to the second only: the first's stays
	 * queued until the connection closes. */
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	Crm__CustomerGet get = CRM__CUSTOMER_GET__INIT;
	get.id = (char *)missing;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
	req.customer_get = &get;
	crmc_send(c, &req);
	req.id = 0;
	char err[256];
	resp = crmc_call(c, &req, 10000, err, sizeof err);
	CHECK(resp && crmc_status(resp) == CRM__CODE__NOT_FOUND);
	if (resp)
		crm__envelope__free_unpacked(resp, &a.pa);
	crmc_close(c);
	CHECK(a.live == 0);
}

int main(void)
{
	it_init();
	test_hello_reports_server_and_limits();
	test_unknown_protocol_version_gets_a_clear_error();
	test_requests_before_login_are_refused();
	test_thousand_pipelined_requests_answered_with_matching_ids();
	test_malformed_frame_closes_only_that_connection();
	test_oversized_frame_gets_error_then_close();
	test_zero_length_frame_is_an_empty_request();
	test_second_hello_is_refused();
	test_stream_sends_no_more_than_its_credit();
	test_replies_come_from_the_allocator_set();
	return it_summary();
}
