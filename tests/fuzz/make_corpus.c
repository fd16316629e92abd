/* Writes the seed corpus of the fuzz targets:
 *
 *   fuzz_make_corpus DIR     (ops/fuzz --corpus runs it on tests/fuzz/corpus)
 *
 * DIR/fuzz_request/NAME: one Envelope for each request in the handler table
 * (server/dispatch.c), its fields filled through protobuf-c's descriptors
 * with plausible values (a UUIDv7 for ids, a mobile for phones, Chinese
 * text for names...), and one with the body left empty. Built from the
 * descriptors, the seeds follow proto/crm.proto as it changes.
 * DIR/fuzz_frame/NAME: byte streams for fuzz_frame (a limit byte, a read
 * size byte, then frames): one frame, pipelined frames read byte by byte,
 * an empty payload, a frame over the limit, a cut-off frame. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"
#include "server.h"

static void **allocs;
static size_t nallocs, capallocs;

static void *alloc(size_t n)
{
	if (nallocs == capallocs) {
		capallocs = capallocs ? 2 * capallocs : 64;
		allocs = realloc(allocs, capallocs * sizeof *allocs);
		if (!allocs)
			abort();
	}
	void *p = calloc(1, n ? n : 1);
	if (!p)
		abort();
	return allocs[nallocs++] = p;
}

static void free_all(void)
{
	for (size_t i = 0; i < nallocs; i++)
		free(allocs[i]);
	nallocs = 0;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);
	return a >= b && strcmp(s + a - b, tail) == 0;
}

static unsigned uuid_counter;

/* A value people would type into field `name` of message `msg`. */
static char *string_for(const char *msg, const char *name)
{
	/* Fields whose seeds must differ from the general rule below for the
	 * request to pass its checks and reach the database. */
	static const struct {
		const char *msg, *name, *value;
	} exact[] = {
		{"CustomerUpdate", "fields", "name"},
		{"RelationUpdate", "fields", "source"},
		{"CustomerList", "text", ""},
		{"CustomerList", "after", ""},
		{"CustomerList", "after_id", ""},
		{"CustomerList", "name_match", "prefix"},
		{"CustomerList", "sort", "created"},
		{"FollowupList", "customer_id", ""},
		{"HandoverRequest", "from_owner", ""},
		{"CadenceRule", "event", "level"},
		{"CadenceRule", "assignee", "owner"},
		{"TaskList", "window", "today"},
		{"ResumeRequest", "token",
		 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
	};
	static const struct {
		const char *name;
		const char *value;
	} known[] = {
		{"gender", "female"},     {"age_band", ""},        {"level", "H"},
		{"source", "walk_in"},    {"status", "active"},    {"body_type", "suv"},
		{"email", "zhang.wei@example.com"},                {"wechat", "wx_zhangwei"},
		{"model", "汉 EV"},       {"username", "wang.fang"}, {"password", "correct horse"},
		{"role", "consultant"},   {"store_code", "S01"},   {"method", "phone"},
		{"kind", "first_contact"}, {"type", "first_contact"}, {"owner", "bj01.consultant"},
		{"to_owner", "bj01.consultant2"}, {"assignee", "bj01.consultant"},
		{"levels", "H"},          {"sources", "walk_in"},
	};
	char *out = alloc(80);
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
		if (!strcmp(msg, exact[i].msg) && !strcmp(name, exact[i].name)) {
			snprintf(out, 80, "%s", exact[i].value);
			return out;
		}
	}
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		if (!strcmp(name, known[i].name)) {
			snprintf(out, 80, "%s", known[i].value);
			return out;
		}
	}
	if (!strcmp(name, "id") || ends_with(name, "_id") || ends_with(name, "_ids") ||
	    !strcmp(name, "cursor") || !strcmp(name, "after"))
		snprintf(out, 80, "0192f0c4-8a6e-7c3b-9d2e-%012x", ++uuid_counter);
	else if (strstr(name, "phone") || !strcmp(name, "number"))
		snprintf(out, 80, "+86 138 1234 %04u", 5678 + uuid_counter);
	else if (ends_with(name, "name"))
		snprintf(out, 80, "张伟");
	else
		snprintf(out, 80, "到店看车，%s", name);
	return out;
}

static void fill(ProtobufCMessage *m, int depth);

/* One value of field `f` of message `msg` at `p`. */
static void fill_value(const char *msg, const ProtobufCFieldDescriptor *f, void *p, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)p = !strcmp(f->name, "birth_year") ? 1990 : 1;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)p = ends_with(f->name, "_at") ? 1764000000000ull
				 : !strcmp(f->name, "until")  ? 2
							      : 1;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)p = 1.0f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = 1.0;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = 1;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		*(int *)p = e->values[e->n_values > 1 ? 1 : 0].value;
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		*(char **)p = string_for(msg, f->name);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *d = f->descriptor;
		ProtobufCMessage *sub = alloc(d->sizeof_message);
		d->message_init(sub);
		if (depth < 4)
			fill(sub, depth + 1);
		*(ProtobufCMessage **)p = sub;
		break;
	}
	}
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* Every field of `m` gets a value; repeated fields one, oneofs none. */
static void fill(ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		void *member = (char *)m + f->offset;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			continue;
		if (f->type == PROTOBUF_C_TYPE_BYTES)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			void *array = alloc(value_size(f));
			fill_value(d->short_name, f, array, depth);
			*(void **)member = array;
			*(size_t *)((char *)m + f->quantifier_offset) = 1;
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
		    f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
		fill_value(d->short_name, f, member, depth);
	}
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "fuzz_make_corpus: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz_make_corpus: cannot create %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* An Envelope with body field `f` set: filled, or empty. */
static Crm__Envelope *envelope_with(const ProtobufCFieldDescriptor *f, uint64_t id, bool filled)
{
	Crm__Envelope *env = alloc(sizeof *env);
	crm__envelope__init(env);
	env->id = id;
	const ProtobufCMessageDescriptor *d = f->descriptor;
	ProtobufCMessage *body = alloc(d->sizeof_message);
	d->message_init(body);
	if (filled)
		fill(body, 1);
	*(ProtobufCMessage **)((char *)env + f->offset) = body;
	*(uint32_t *)((char *)env + f->quantifier_offset) = f->id;
	return env;
}

static void write_envelope(const char *dir, const char *name, const Crm__Envelope *env)
{
	size_t n = crm__envelope__get_packed_size(env);
	uint8_t *p = alloc(n);
	crm__envelope__pack(env, p);
	write_file(dir, name, p, n);
}

/* A fuzz_frame input: limit index, read size - 1, then the stream. */
static void write_stream(const char *dir, const char *name, uint8_t limit, uint8_t chunk,
			 const struct bytebuf *b, size_t cut)
{
	size_t n = bytebuf_len(b) - cut;
	uint8_t *p = alloc(n + 2);
	p[0] = limit;
	p[1] = chunk;
	memcpy(p + 2, bytebuf_head(b), n);
	write_file(dir, name, p, n + 2);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_make_corpus DIR\n");
		return 2;
	}
	char req_dir[900], frame_dir[900];
	snprintf(req_dir, sizeof req_dir, "%s/fuzz_request", argv[1]);
	snprintf(frame_dir, sizeof frame_dir, "%s/fuzz_frame", argv[1]);
	make_dir(argv[1]);
	make_dir(req_dir);
	make_dir(frame_dir);

	const ProtobufCMessageDescriptor *ed = &crm__envelope__descriptor;
	const ProtobufCFieldDescriptor *create = NULL, *ping = NULL, *get = NULL;
	uint64_t id = 1;
	int requests = 0;
	for (unsigned i = 0; i < ed->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &ed->fields[i];
		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		const struct handler *h = handler_for((Crm__Envelope__BodyCase)f->id);
		bool control = f->id == CRM__ENVELOPE__BODY_STREAM_CREDIT ||
			       f->id == CRM__ENVELOPE__BODY_STREAM_CANCEL;
		if (!h && !control)
			continue; /* a reply: not something a client sends */
		char name[128];
		snprintf(name, sizeof name, "%s", h ? h->name : f->name);
		write_envelope(req_dir, name, envelope_with(f, id++, true));
		snprintf(name, sizeof name, "%s.empty", h ? h->name : f->name);
		write_envelope(req_dir, name, envelope_with(f, id++, false));
		requests++;
		if (f->id == CRM__ENVELOPE__BODY_CUSTOMER_CREATE)
			create = f;
		else if (f->id == CRM__ENVELOPE__BODY_PING)
			ping = f;
		else if (f->id == CRM__ENVELOPE__BODY_CUSTOMER_GET)
			get = f;
	}
	if (!create || !ping || !get) {
		fprintf(stderr, "fuzz_make_corpus: customer.create, customer.get or ping missing\n");
		return 1;
	}

	struct bytebuf b = {0};
	frame_append_envelope(&b, envelope_with(create, 1, true));
	write_stream(frame_dir, "one-frame", 3, 6, &b, 0);
	write_stream(frame_dir, "one-frame-cut", 3, 255, &b, 3);
	write_stream(frame_dir, "over-limit", 2, 15, &b, 0);
	frame_append_envelope(&b, envelope_with(ping, 2, true));
	frame_append_envelope(&b, envelope_with(get, 3, true));
	write_stream(frame_dir, "pipelined-bytewise", 3, 0, &b, 0);
	write_stream(frame_dir, "pipelined-4m", 4, 200, &b, 0);
	bytebuf_free(&b);
	Crm__Envelope empty = CRM__ENVELOPE__INIT;
	frame_append_envelope(&b, &empty);
	frame_append_envelope(&b, envelope_with(ping, 0, false));
	write_stream(frame_dir, "empty-payloads", 1, 2, &b, 0);
	bytebuf_free(&b);

	free_all();
	free(allocs);
	printf("fuzz_make_corpus: %d request types into %s, 6 streams into %s\n", requests,
	       req_dir, frame_dir);
	return 0;
}
