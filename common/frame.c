#include "frame.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void bytebuf_free(struct bytebuf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

bool bytebuf_reserve(struct bytebuf *b, size_t n)
{
	assert(b->start <= b->end && b->end <= b->cap);
	if (b->cap - b->end >= n)
		return true;
	/* Slide unconsumed bytes to the front before growing. */
	if (b->start > 0) {
		size_t live = b->end - b->start;
		memmove(b->data, b->data + b->start, live);
		b->start = 0;
		b->end = live;
		if (b->cap - b->end >= n)
			return true;
	}
	size_t need = b->end + n;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

bool bytebuf_append(struct bytebuf *b, const void *p, size_t n)
{
	if (!bytebuf_reserve(b, n))
		return false;
	memcpy(b->data + b->end, p, n);
	b->end += n;
	return true;
}

void bytebuf_consume(struct bytebuf *b, size_t n)
{
	assert(n <= b->end - b->start);
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

enum frame_status frame_parse(const uint8_t *buf, size_t len, size_t max_payload,
			      const uint8_t **payload, size_t *payload_len,
			      size_t *consumed, uint32_t *announced)
{
	if (len < FRAME_HEADER_BYTES)
		return FRAME_NEED_MORE;
	uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
		     (uint32_t)buf[2] << 8 | (uint32_t)buf[3];
	if (announced)
		*announced = n;
	if (n > max_payload)
		return FRAME_TOO_LARGE;
	if (len - FRAME_HEADER_BYTES < n)
		return FRAME_NEED_MORE;
	*payload = buf + FRAME_HEADER_BYTES;
	*payload_len = n;
	*consumed = FRAME_HEADER_BYTES + (size_t)n;
	return FRAME_READY;
}

/* True when `m` or a message inside it keeps an unknown field number 0. */
static bool has_field_zero(const ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *member = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)member;
			for (size_t k = 0; k < n; k++)
				if (items[k] && has_field_zero(items[k]))
					return true;
			continue;
		}
		/* A oneof's members share one place: only the set one is there. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
		if (sub && has_field_zero(sub))
			return true;
	}
	return false;
}

Crm__Envelope *frame_unpack_envelope(const uint8_t *payload, size_t len)
{
	Crm__Envelope *env = crm__envelope__unpack(NULL, len, payload);
	if (env && has_field_zero(&env->base)) {
		crm__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	return env;
}

bool frame_append_envelope(struct bytebuf *out, const Crm__Envelope *env)
{
	size_t n = crm__envelope__get_packed_size(env);
	if (n > UINT32_MAX || !bytebuf_reserve(out, FRAME_HEADER_BYTES + n))
		return false;
	uint8_t *p = out->data + out->end;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	crm__envelope__pack(env, p + FRAME_HEADER_BYTES);
	out->end += FRAME_HEADER_BYTES + n;
	return true;
}
