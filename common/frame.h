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

/* Appends the frame of `env` (header and packed envelope) to `out`. */
bool frame_append_envelope(struct bytebuf *out, const Crm__Envelope *env);

#endif
