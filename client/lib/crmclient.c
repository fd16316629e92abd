#include "crmclient.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "frame.h"
#include "tlsstream.h"

#define CLIENT_MAX_FRAME (64u << 20)

struct queued {
	struct queued *next;
	Crm__Envelope *env;
};

struct crmc {
	uv_loop_t loop;
	uv_timer_t timer;
	uv_connect_t connect_req;
	struct tls_stream ts;
	SSL_CTX *ctx;
	struct bytebuf in;
	struct bytebuf out;
	struct queued *head, *tail;
	uint64_t next_id;
	bool connected;          /* TCP connected */
	bool handshaken;
	bool closed;             /* stream reported an error or closed */
	bool ts_live;            /* ts handles exist and need closing */
	bool timed_out;
	int connect_status;
	char error[384];
	Crm__Envelope *hello;
	ProtobufCAllocator *alloc; /* of the envelopes unpacked; NULL: malloc */
};

static void enqueue(struct crmc *c, Crm__Envelope *env)
{
	struct queued *q = malloc(sizeof *q);
	if (!q) {
		crm__envelope__free_unpacked(env, c->alloc);
		return;
	}
	q->env = env;
	q->next = NULL;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
}

static void on_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
	struct crmc *c = ts->owner;
	if (!bytebuf_append(&c->in, data, len)) {
		snprintf(c->error, sizeof c->error, "out of memory");
		c->closed = true;
		return;
	}
	for (;;) {
		const uint8_t *payload;
		size_t plen, used;
		uint32_t announced;
		enum frame_status st = frame_parse(bytebuf_head(&c->in), bytebuf_len(&c->in),
						   CLIENT_MAX_FRAME, &payload, &plen, &used,
						   &announced);
		if (st == FRAME_NEED_MORE)
			break;
		if (st == FRAME_TOO_LARGE) {
			snprintf(c->error, sizeof c->error,
				 "the server sent a frame of %u bytes, over the client's limit", announced);
			c->closed = true;
			tls_stream_abort(ts);
			return;
		}
		Crm__Envelope *env = crm__envelope__unpack(c->alloc, plen, payload);
		bytebuf_consume(&c->in, used);
		if (!env) {
			snprintf(c->error, sizeof c->error, "the server sent a malformed frame");
			c->closed = true;
			tls_stream_abort(ts);
			return;
		}
		enqueue(c, env);
	}
}

static void on_handshake(struct tls_stream *ts)
{
	struct crmc *c = ts->owner;
	c->handshaken = true;
}

static void on_error(struct tls_stream *ts, const char *reason)
{
	struct crmc *c = ts->owner;
	if (!c->error[0])
		snprintf(c->error, sizeof c->error, "%s", reason);
	c->closed = true;
}

static void on_closed(struct tls_stream *ts)
{
	struct crmc *c = ts->owner;
	c->ts_live = false;
	c->closed = true;
}

static const struct tls_stream_ops client_ops = {
	.on_handshake = on_handshake,
	.on_data = on_data,
	.on_error = on_error,
	.on_closed = on_closed,
};

static void on_connect(uv_connect_t *req, int status)
{
	struct crmc *c = req->data;
	c->connect_status = status;
	if (status < 0) {
		snprintf(c->error, sizeof c->error, "cannot connect: %s", uv_strerror(status));
		c->closed = true;
		return;
	}
	c->connected = true;
	if (tls_stream_start(&c->ts) != 0) {
		snprintf(c->error, sizeof c->error, "cannot start reading");
		c->closed = true;
	}
}

static void on_timer(uv_timer_t *t)
{
	struct crmc *c = t->data;
	c->timed_out = true;
}

/* Runs the loop until `done(c, arg)` holds, the connection closes, or the
 * timeout passes. Output is flushed first. */
static bool run_until(struct crmc *c, bool (*done)(struct crmc *, void *), void *arg,
		      int timeout_ms)
{
	crmc_flush(c);
	c->timed_out = false;
	/* The loop's clock stands still while nothing runs it: without this the
	 * timeout would count from when the loop last ran, not from now. */
	uv_update_time(&c->loop);
	if (timeout_ms > 0)
		uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
	while (!done(c, arg) && !c->closed && !c->timed_out)
		uv_run(&c->loop, UV_RUN_ONCE);
	uv_timer_stop(&c->timer);
	return done(c, arg);
}

static bool is_handshaken(struct crmc *c, void *arg)
{
	(void)arg;
	return c->handshaken;
}

static bool has_frame(struct crmc *c, void *arg)
{
	(void)arg;
	return c->head != NULL;
}

struct want_id {
	uint64_t id;
	Crm__Envelope *found;
};

static bool has_id(struct crmc *c, void *arg)
{
	struct want_id *w = arg;
	if (w->found)
		return true;
	struct queued **pp = &c->head, *prev = NULL;
	for (struct queued *q = c->head; q; prev = q, q = q->next) {
		if (q->env->id == w->id) {
			*pp = q->next;
			if (c->tail == q)
				c->tail = prev;
			w->found = q->env;
			free(q);
			return true;
		}
		pp = &q->next;
	}
	return false;
}

static bool split_host_port(const char *server, char *host, size_t hostcap, int *port)
{
	const char *colon = strrchr(server, ':');
	if (!colon || colon == server)
		return false;
	const char *h = server;
	size_t hl = (size_t)(colon - server);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= hostcap)
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return false;
	*port = (int)p;
	return true;
}

static void close_and_drain(struct crmc *c)
{
	if (c->ts_live) {
		tls_stream_abort(&c->ts);
		while (c->ts_live)
			uv_run(&c->loop, UV_RUN_ONCE);
	}
}

struct crmc *crmc_connect(const struct crmc_options *opt, Crm__Code *code, char *err,
			  size_t errcap)
{
	/* A write to a connection the server closed must come back as EPIPE,
	 * not kill the program. */
	signal(SIGPIPE, SIG_IGN);
	Crm__Code dummy;
	if (!code)
		code = &dummy;
	*code = CRM__CODE__UNAVAILABLE;
	char host[256];
	int port;
	if (!opt->server || !split_host_port(opt->server, host, sizeof host, &port)) {
		snprintf(err, errcap, "server address \"%s\" is not HOST:PORT",
			 opt->server ? opt->server : "");
		*code = CRM__CODE__INVALID_ARGUMENT;
		return NULL;
	}
	struct sockaddr_storage addr;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
		/* Resolve a name synchronously: crm runs one command at a time. */
		uv_loop_t tmp;
		uv_loop_init(&tmp);
		uv_getaddrinfo_t gai;
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		int rc = uv_getaddrinfo(&tmp, &gai, NULL, host, NULL, &hints);
		if (rc != 0 || !gai.addrinfo) {
			snprintf(err, errcap, "cannot resolve %s: %s", host, uv_strerror(rc));
			uv_loop_close(&tmp);
			return NULL;
		}
		memcpy(&addr, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
		((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)port);
		uv_freeaddrinfo(gai.addrinfo);
		uv_loop_close(&tmp);
	}
	struct crmc *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	c->next_id = 1;
	uv_loop_init(&c->loop);
	uv_timer_init(&c->loop, &c->timer);
	c->timer.data = c;
	c->ctx = tls_client_ctx(opt->ca_file, err, errcap);
	if (!c->ctx) {
		*code = CRM__CODE__INVALID_ARGUMENT;
		goto failed;
	}
	if ((opt->cert_file && *opt->cert_file) || (opt->key_file && *opt->key_file)) {
		if (!opt->cert_file || !*opt->cert_file || !opt->key_file || !*opt->key_file) {
			snprintf(err, errcap, "a client certificate needs both its file and its key");
			*code = CRM__CODE__INVALID_ARGUMENT;
			goto failed;
		}
		if (!tls_client_use_cert(c->ctx, opt->cert_file, opt->key_file, err, errcap)) {
			*code = CRM__CODE__INVALID_ARGUMENT;
			goto failed;
		}
	}
	if (opt->crl_file && *opt->crl_file &&
	    !tls_client_use_crl(c->ctx, opt->crl_file, err, errcap)) {
		*code = CRM__CODE__INVALID_ARGUMENT;
		goto failed;
	}
	if (tls_stream_init(&c->loop, &c->ts, c->ctx, false, host, &client_ops, c) != 0) {
		snprintf(err, errcap, "cannot set up TLS");
		goto failed;
	}
	c->ts_live = true;
	c->connect_req.data = c;
	int timeout = opt->timeout_ms > 0 ? opt->timeout_ms : 10000;
	int rc = uv_tcp_connect(&c->connect_req, &c->ts.tcp, (struct sockaddr *)&addr, on_connect);
	if (rc != 0) {
		snprintf(err, errcap, "cannot connect to %s: %s", opt->server, uv_strerror(rc));
		goto failed;
	}
	if (!run_until(c, is_handshaken, NULL, timeout)) {
		snprintf(err, errcap, "cannot reach crmd at %s: %s", opt->server,
			 c->error[0] ? c->error : "timed out");
		goto failed;
	}
	Crm__Hello hello = CRM__HELLO__INIT;
	hello.protocol_version = opt->protocol_version ? opt->protocol_version
						       : CRM__PROTOCOL_VERSION__PROTOCOL_VERSION;
	hello.client_name = (char *)(opt->client_name ? opt->client_name : "crmclient");
	hello.client_version = CRM_VERSION;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.body_case = CRM__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	c->hello = crmc_call(c, &env, timeout, err, errcap);
	if (!c->hello)
		goto failed;
	if (crmc_status(c->hello) != CRM__CODE__OK ||
	    c->hello->body_case != CRM__ENVELOPE__BODY_HELLO_REPLY) {
		*code = crmc_status(c->hello);
		snprintf(err, errcap, "%s", crmc_status_message(c->hello));
		goto failed;
	}
	*code = CRM__CODE__OK;
	return c;
failed:
	crmc_close(c);
	return NULL;
}

void crmc_close(struct crmc *c)
{
	if (!c)
		return;
	close_and_drain(c);
	uv_close((uv_handle_t *)&c->timer, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	uv_loop_close(&c->loop);
	while (c->head) {
		struct queued *q = c->head;
		c->head = q->next;
		crm__envelope__free_unpacked(q->env, c->alloc);
		free(q);
	}
	if (c->hello)
		crm__envelope__free_unpacked(c->hello, NULL);
	bytebuf_free(&c->in);
	bytebuf_free(&c->out);
	SSL_CTX_free(c->ctx);
	free(c);
}

const Crm__HelloReply *crmc_server_hello(const struct crmc *c) { return c->hello->hello_reply; }

void crmc_set_allocator(struct crmc *c, ProtobufCAllocator *a) { c->alloc = a; }

bool crmc_is_open(const struct crmc *c) { return !c->closed; }

uint64_t crmc_send(struct crmc *c, Crm__Envelope *env)
{
	if (env->id == 0)
		env->id = c->next_id++;
	else if (env->id >= c->next_id)
		c->next_id = env->id + 1;
	frame_append_envelope(&c->out, env);
	return env->id;
}

bool crmc_send_raw(struct crmc *c, const void *data, size_t len)
{
	return bytebuf_append(&c->out, data, len);
}

bool crmc_flush(struct crmc *c)
{
	if (bytebuf_len(&c->out) == 0)
		return true;
	if (c->closed || !c->handshaken)
		return false;
	bool ok = tls_stream_write(&c->ts, bytebuf_head(&c->out), bytebuf_len(&c->out));
	bytebuf_consume(&c->out, bytebuf_len(&c->out));
	return ok;
}

Crm__Envelope *crmc_recv(struct crmc *c, int timeout_ms, char *err, size_t errcap)
{
	if (!run_until(c, has_frame, NULL, timeout_ms)) {
		snprintf(err, errcap, "%s",
			 c->closed ? (c->error[0] ? c->error : "connection closed") : "timed out");
		return NULL;
	}
	struct queued *q = c->head;
	c->head = q->next;
	if (!c->head)
		c->tail = NULL;
	Crm__Envelope *env = q->env;
	free(q);
	return env;
}

Crm__Envelope *crmc_wait(struct crmc *c, uint64_t id, int timeout_ms, char *err, size_t errcap)
{
	struct want_id w = {id, NULL};
	if (!run_until(c, has_id, &w, timeout_ms)) {
		snprintf(err, errcap, "%s",
			 c->closed ? (c->error[0] ? c->error : "connection closed")
				   : "no answer from the server in time");
		return NULL;
	}
	return w.found;
}

Crm__Envelope *crmc_call(struct crmc *c, Crm__Envelope *req, int timeout_ms, char *err,
			 size_t errcap)
{
	uint64_t id = crmc_send(c, req);
	return crmc_wait(c, id, timeout_ms > 0 ? timeout_ms : 30000, err, errcap);
}

void crmc_stream_credit(struct crmc *c, uint64_t id, uint32_t frames)
{
	Crm__StreamCredit sc = CRM__STREAM_CREDIT__INIT;
	sc.frames = frames;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.id = id;
	env.body_case = CRM__ENVELOPE__BODY_STREAM_CREDIT;
	env.stream_credit = &sc;
	frame_append_envelope(&c->out, &env);
}

Crm__Code crmc_status(const Crm__Envelope *env)
{
	return env->status ? env->status->code : CRM__CODE__OK;
}

const char *crmc_status_message(const Crm__Envelope *env)
{
	if (env->status && env->status->message && *env->status->message)
		return env->status->message;
	return crmc_code_name(crmc_status(env));
}

const char *crmc_code_name(Crm__Code code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&crm__code__descriptor, (int)code);
	return v ? v->name : "UNKNOWN";
}
