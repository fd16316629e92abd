/* Framing: a 4-byte big-endian payload length, then the payload (one
 * protobuf Envelope). Pure functions over byte buffers; no I/O here.
 *
 * struct bytebuf keeps the positions start <= end <= cap: bytes in
 * [start, end) are received and not yet consumed. */
#ifndef CRM_FRAME_H
#define CRM_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crm.pb-c.h"

#define FRAME_HEADER_BYTES 4

struct bytebuf {
	uint8_t *data;
	size_t start;
	size_t end;
	size_t cap;
};

void bytebuf_free(struct bytebuf *b);
static inline size_t bytebuf_len(const struct bytebuf *b) { return b->end - b->start; }
static inline uint8_t *bytebuf_head(const struct bytebuf *b) { return b->data + b->start; }
/* Makes room for `n` more bytes after end; false on allocation failure. */
bool bytebuf_reserve(struct bytebuf *b, size_t n);
bool bytebuf_append(struct bytebuf *b, const void *p, size_t n);
void bytebuf_consume(struct bytebuf *b, size_t n);

enum frame_status {
	FRAME_NEED_MORE,     /* not a whole frame yet */
	FRAME_READY,         /* *payload and *payload_len describe one frame */
	FRAME_TOO_LARGE,     /* the header announces more than the limit */
};

/* Looks for one frame at the start of buf[0..len). On FRAME_READY,
 * `*consumed` is header plus payload. On FRAME_TOO_LARGE, `*announced` is the
 * length the header claimed. Zero-length payloads are valid frames. */
enum frame_status frame_parse(const uint8_t *buf, size_t len, size_t max_payload,
			      const uint8_t **payload, size_t *payload_len,
			      size_t *consumed, uint32_t *announced);

/* Unpacks the payload of a frame; NULL when it is not a valid Envelope.
 * Stricter than crm__envelope__unpack: protobuf-c 1.4.1 accepts a field
 * number 0 when its tag is written in two bytes or more (0x82 0x00) and
 * keeps it as an unknown field, yet refuses it once packed again (0x02).
 * A record that carried one would be stored (the outbox keeps records as
 * packed) in a form that nobody can read back, so it is refused here. */
Crm__Envelope *frame_unpack_envelope(const uint8_t *payload, size_t len);

/* Appends the frame of `env` (header and packed envelope) to `out`. */
bool frame_append_envelope(struct bytebuf *out, const Crm__Envelope *env);

#endif
