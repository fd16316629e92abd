/* libFuzzer target: the frame decoder (common/frame.c) as crmd's
 * connections use it (server/conn.c process_input).
 *
 * Input: byte 0 picks the frame size limit, byte 1 the size of each read
 * (1 to 256 bytes), the rest is the byte stream a client sent. The stream is
 * decoded twice: once whole, and once read by read through a bytebuf that
 * is consumed frame by frame, the way conn.c does. Both must find the same
 * frames and stop at the same place; every frame stays inside the bytes
 * received; a frame whose payload unpacks as an Envelope is packed again
 * with frame_append_envelope and must decode to the same bytes. A
 * violation aborts, which libFuzzer reports as a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define MAX_FRAMES 4096

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_frame: %s\n", what);
	abort();
}

#define REQUIRE(cond)                                                                      \
	do {                                                                               \
		if (!(cond))                                                               \
			fail(#cond);                                                       \
	} while (0)

struct frame_ref {
	size_t offset;                 /* of the payload, in the whole stream */
	size_t len;
};

/* What a connection would see of the whole stream at once. */
struct decoded {
	struct frame_ref frames[MAX_FRAMES];
	size_t n;
	size_t rest;                   /* bytes left after the last frame */
	bool too_large;
	uint32_t announced;
};

static void decode_whole(const uint8_t *buf, size_t len, size_t limit, struct decoded *d)
{
	size_t at = 0;
	d->n = 0;
	d->too_large = false;
	while (d->n < MAX_FRAMES) {
		const uint8_t *payload = NULL;
		size_t plen = 0, used = 0;
		uint32_t announced = 0;
		enum frame_status st =
			frame_parse(buf + at, len - at, limit, &payload, &plen, &used, &announced);
		if (st == FRAME_NEED_MORE) {
			/* Too short for a header, or for the payload announced. */
			REQUIRE(len - at < FRAME_HEADER_BYTES ||
				len - at - FRAME_HEADER_BYTES < announced);
			break;
		}
		if (st == FRAME_TOO_LARGE) {
			REQUIRE(announced > limit);
			d->too_large = true;
			d->announced = announced;
			break;
		}
		REQUIRE(st == FRAME_READY);
		REQUIRE(plen <= limit && plen == announced);
		REQUIRE(used == FRAME_HEADER_BYTES + plen && used <= len - at);
		REQUIRE(payload == buf + at + FRAME_HEADER_BYTES);
		d->frames[d->n].offset = at + FRAME_HEADER_BYTES;
		d->frames[d->n].len = plen;
		d->n++;
		at += used;
	}
	d->rest = len - at;
}

/* A decoded Envelope, packed again, decodes to the same payload. */
static void check_repack(const uint8_t *payload, size_t len, size_t limit)
{
	Crm__Envelope *env = frame_unpack_envelope(payload, len);
	if (!env)
		return; /* conn.c answers "malformed frame" and closes */
	struct bytebuf out = {0};
	REQUIRE(frame_append_envelope(&out, env));
	size_t packed = crm__envelope__get_packed_size(env);
	const uint8_t *p2 = NULL;
	size_t len2 = 0, used2 = 0;
	uint32_t announced2 = 0;
	size_t limit2 = packed > limit ? packed : limit;
	REQUIRE(frame_parse(bytebuf_head(&out), bytebuf_len(&out), limit2, &p2, &len2, &used2,
			    &announced2) == FRAME_READY);
	REQUIRE(len2 == packed && used2 == bytebuf_len(&out));
	Crm__Envelope *again = frame_unpack_envelope(p2, len2);
	REQUIRE(again != NULL);
	REQUIRE(crm__envelope__get_packed_size(again) == packed);
	uint8_t *p3 = malloc(packed ? packed : 1);
	REQUIRE(p3 != NULL);
	REQUIRE(crm__envelope__pack(again, p3) == packed);
	REQUIRE(memcmp(p3, p2, packed) == 0);
	free(p3);
	crm__envelope__free_unpacked(again, NULL);
	crm__envelope__free_unpacked(env, NULL);
	bytebuf_free(&out);
}

static const size_t limits[] = {0, 1, 64, 4096, 4u << 20};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct decoded whole;
	if (size < 2)
		return 0;
	size_t limit = limits[data[0] % (sizeof limits / sizeof limits[0])];
	size_t chunk = (size_t)data[1] + 1;
	const uint8_t *stream = data + 2;
	size_t len = size - 2;
	decode_whole(stream, len, limit, &whole);

	/* Read by read, consuming each frame as it is handled. */
	struct bytebuf in = {0};
	size_t fed = 0, k = 0;
	bool closed = false;
	while (fed < len && !closed) {
		size_t n = len - fed < chunk ? len - fed : chunk;
		REQUIRE(bytebuf_append(&in, stream + fed, n));
		fed += n;
		REQUIRE(in.start <= in.end && in.end <= in.cap);
		while (k < MAX_FRAMES) {
			const uint8_t *payload = NULL;
			size_t plen = 0, used = 0;
			uint32_t announced = 0;
			enum frame_status st = frame_parse(bytebuf_head(&in), bytebuf_len(&in), limit,
							   &payload, &plen, &used, &announced);
			if (st == FRAME_NEED_MORE)
				break;
			if (st == FRAME_TOO_LARGE) {
				/* conn.c closes here: the same frame as when whole. */
				REQUIRE(whole.too_large && k == whole.n);
				REQUIRE(announced == whole.announced);
				closed = true;
				break;
			}
			REQUIRE(k < whole.n);
			REQUIRE(plen == whole.frames[k].len);
			REQUIRE(payload >= in.data && used <= bytebuf_len(&in));
			REQUIRE(memcmp(payload, stream + whole.frames[k].offset, plen) == 0);
			check_repack(payload, plen, limit);
			bytebuf_consume(&in, used);
			k++;
		}
		if (k == MAX_FRAMES)
			break;
	}
	if (!closed && k < MAX_FRAMES) {
		REQUIRE(k == whole.n);
		if (whole.too_large)
			fail("the whole stream hit the size limit but the reads never did");
		REQUIRE(bytebuf_len(&in) == whole.rest);
	}
	bytebuf_free(&in);
	return 0;
}
