/* The frame codec: every split point, several frames per read, zero length,
 * the size limit, and garbage. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frame.h"

#define LIMIT 4096

static Crm__Envelope *make_env(uint64_t id, const char *name)
{
	static Crm__Customer cu;
	static Crm__CustomerCreate cc;
	static Crm__Envelope env;
	crm__customer__init(&cu);
	crm__customer_create__init(&cc);
	crm__envelope__init(&env);
	cu.name = (char *)name;
	cu.phone = "+8613812345678";
	cc.customer = &cu;
	env.id = id;
	env.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	env.customer_create = &cc;
	return &env;
}

/* Feeds `wire` to a decoder in pieces cut at `cut`, the way reads arrive,
 * and returns how many frames with ascending ids came out intact. */
static int decode_in_pieces(const uint8_t *wire, size_t len, size_t cut)
{
	struct bytebuf in = {0};
	int frames = 0;
	size_t fed = 0;
	while (fed < len) {
		size_t n = cut && cut < len - fed ? cut : len - fed;
		bytebuf_append(&in, wire + fed, n);
		fed += n;
		for (;;) {
			const uint8_t *payload;
			size_t plen, used;
			uint32_t announced;
			enum frame_status st = frame_parse(bytebuf_head(&in), bytebuf_len(&in), LIMIT,
							   &payload, &plen, &used, &announced);
			if (st != FRAME_READY)
				break;
			Crm__Envelope *env = crm__envelope__unpack(NULL, plen, payload);
			if (env && env->id == (uint64_t)frames + 1 &&
			    env->body_case == CRM__ENVELOPE__BODY_CUSTOMER_CREATE &&
			    strcmp(env->customer_create->customer->name, "张伟") == 0)
				frames++;
			if (env)
				crm__envelope__free_unpacked(env, NULL);
			bytebuf_consume(&in, used);
		}
	}
	int leftover = (int)bytebuf_len(&in);
	bytebuf_free(&in);
	return leftover ? -1 : frames;
}

static void test_split_at_every_byte_boundary(void)
{
	struct bytebuf wire = {0};
	frame_append_envelope(&wire, make_env(1, "张伟"));
	size_t len = bytebuf_len(&wire);
	for (size_t first = 1; first < len; first++) {
		/* Two reads: [0, first) and [first, len). */
		struct bytebuf in = {0};
		const uint8_t *payload;
		size_t plen, used;
		bytebuf_append(&in, bytebuf_head(&wire), first);
		CHECK(frame_parse(bytebuf_head(&in), bytebuf_len(&in), LIMIT, &payload, &plen, &used,
				  NULL) == FRAME_NEED_MORE);
		bytebuf_append(&in, bytebuf_head(&wire) + first, len - first);
		CHECK(frame_parse(bytebuf_head(&in), bytebuf_len(&in), LIMIT, &payload, &plen, &used,
				  NULL) == FRAME_READY);
		CHECK(used == len);
		bytebuf_free(&in);
	}
	/* One byte per read. */
	CHECK(decode_in_pieces(bytebuf_head(&wire), len, 1) == 1);
	bytebuf_free(&wire);
}

static void test_several_frames_in_one_read(void)
{
	struct bytebuf wire = {0};
	for (uint64_t id = 1; id <= 50; id++)
		frame_append_envelope(&wire, make_env(id, "张伟"));
	CHECK(decode_in_pieces(bytebuf_head(&wire), bytebuf_len(&wire), 0) == 50);
	CHECK(decode_in_pieces(bytebuf_head(&wire), bytebuf_len(&wire), 7) == 50);
	CHECK(decode_in_pieces(bytebuf_head(&wire), bytebuf_len(&wire), 1000) == 50);
	bytebuf_free(&wire);
}

static void test_zero_length_frame(void)
{
	const uint8_t wire[] = {0, 0, 0, 0, 0, 0, 0, 2, 0x08, 0x05};
	const uint8_t *payload;
	size_t plen, used;
	CHECK(frame_parse(wire, sizeof wire, LIMIT, &payload, &plen, &used, NULL) == FRAME_READY);
	CHECK(plen == 0 && used == 4);
	/* An empty payload is an Envelope with every field at its default. */
	Crm__Envelope *env = crm__envelope__unpack(NULL, plen, payload);
	CHECK(env && env->id == 0 && env->body_case == CRM__ENVELOPE__BODY__NOT_SET);
	if (env)
		crm__envelope__free_unpacked(env, NULL);
	CHECK(frame_parse(wire + used, sizeof wire - used, LIMIT, &payload, &plen, &used, NULL) ==
	      FRAME_READY);
	CHECK(plen == 2);
}

static void test_length_over_limit(void)
{
	uint8_t wire[4] = {0, 0, 0x10, 0x01}; /* 4097 */
	const uint8_t *payload;
	size_t plen, used;
	uint32_t announced = 0;
	CHECK(frame_parse(wire, 4, LIMIT, &payload, &plen, &used, &announced) == FRAME_TOO_LARGE);
	CHECK(announced == 4097);
	/* Exactly the limit is allowed: it waits for the payload. */
	wire[3] = 0x00;
	CHECK(frame_parse(wire, 4, LIMIT, &payload, &plen, &used, &announced) == FRAME_NEED_MORE);
	/* The largest length a header can say is refused at once, not awaited. */
	uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
	CHECK(frame_parse(huge, 4, LIMIT, &payload, &plen, &used, &announced) == FRAME_TOO_LARGE);
	CHECK(announced == 0xffffffffu);
	/* Fewer than four bytes never decide anything. */
	CHECK(frame_parse(huge, 3, LIMIT, &payload, &plen, &used, &announced) == FRAME_NEED_MORE);
}

static void test_garbage_payload_is_rejected(void)
{
	/* Random bytes in a well-formed frame: the envelope decoder refuses
	 * them (or yields a harmless envelope); it never crashes. */
	srand(12345);
	int refused = 0;
	for (int round = 0; round < 2000; round++) {
		uint8_t buf[64];
		size_t n = (size_t)(rand() % (int)sizeof buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand();
		Crm__Envelope *env = crm__envelope__unpack(NULL, n, buf);
		if (env)
			crm__envelope__free_unpacked(env, NULL);
		else
			refused++;
	}
	CHECK(refused > 1000);
	/* A truncated length-delimited field is always refused. */
	const uint8_t truncated[] = {0x0a, 0x10, 'a', 'b'};
	CHECK(crm__envelope__unpack(NULL, sizeof truncated, truncated) == NULL);
	/* protobuf-c does not check UTF-8 in strings: the handlers must (see
	 * text_field_ok and the integration tests). This pins that down. */
	struct bytebuf wire = {0};
	frame_append_envelope(&wire, make_env(1, "\xff\xfe"));
	Crm__Envelope *env = crm__envelope__unpack(NULL, bytebuf_len(&wire) - 4, bytebuf_head(&wire) + 4);
	CHECK(env != NULL);
	if (env)
		crm__envelope__free_unpacked(env, NULL);
	bytebuf_free(&wire);
}

static void test_bytebuf_keeps_positions(void)
{
	struct bytebuf b = {0};
	for (int i = 0; i < 10000; i++) {
		uint8_t x = (uint8_t)i;
		CHECK(bytebuf_append(&b, &x, 1));
		if (i % 3 == 0)
			bytebuf_consume(&b, 1);
		if (!(b.start <= b.end && b.end <= b.cap))
			CHECK(!"positions out of order");
	}
	CHECK(bytebuf_len(&b) == 10000 - 3334);
	/* The oldest unconsumed byte is 3334 % 256. */
	CHECK(bytebuf_head(&b)[0] == (uint8_t)3334);
	bytebuf_free(&b);
}

int main(void)
{
	test_split_at_every_byte_boundary();
	test_several_frames_in_one_read();
	test_zero_length_frame();
	test_length_over_limit();
	test_garbage_payload_is_rejected();
	test_bytebuf_keeps_positions();
	return check_summary();
}
