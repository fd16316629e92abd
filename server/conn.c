/* One client connection: TLS, framing, the hello, limits and flow control.
 * No request logic lives here; frames go to dispatch(). */
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"
#include "reminders.h"
#include "server.h"

static const struct tls_stream_ops conn_ops;

/* Connections in the TLS handshake, and handshakes ended since the heap
 * was last trimmed (one loop, one server per process). */
static int conns_handshaking;
static int handshakes_untrimmed;

/* A burst of handshakes (10,000 desks connecting after an outage) leaves
 * the heap full of holes: each handshake's temporaries, tens of KiB, sit
 * between the few KiB each connection keeps. Once the burst is over (no
 * handshake in progress), glibc hands the free pages back: measured about
 * 450 -> 230 MiB with 10,000 connections opened at once. */
static void handshake_ended(void)
{
	conns_handshaking--;
	if (++handshakes_untrimmed >= 256 && conns_handshaking == 0) {
		handshakes_untrimmed = 0;
#ifdef __GLIBC__
		malloc_trim(0);
#endif
	}
}

static inline struct conn *conn_of(struct tls_stream *ts) { return ts->owner; }

static size_t output_bytes(const struct conn *c)
{
	return bytebuf_len(&c->out) + c->ts.write_queued;
}

/* Appends a frame to the connection's output; written by the flusher. */
static void conn_send(struct conn *c, Crm__Envelope *env)
{
	if (!frame_append_envelope(&c->out, env)) {
		log_error("conn.out_of_memory", "conn=%llu", (unsigned long long)c->number);
		tls_stream_abort(&c->ts);
		return;
	}
	c->srv->stats.counters[ST_FRAMES_OUT]++;
	server_mark_dirty(c);
}

/* Sends an error frame, then closes once it is written. Other connections
 * are untouched. Also used by h_auth.c when a client certificate is refused. */
void conn_fail(struct conn *c, Crm__Code code, const char *message)
{
	if (c->state == CONN_CLOSING)
		return;
	log_info("conn.error", "conn=%llu peer=%s code=%d reason=\"%s\"",
		 (unsigned long long)c->number, c->ts.peer, code, message);
	Crm__Status st = CRM__STATUS__INIT;
	st.code = code;
	st.message = (char *)message;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.status = &st;
	conn_send(c, &env);
	c->state = CONN_CLOSING;
	tls_stream_pause(&c->ts);
	/* Flush now: tls_stream_close lets written data go before closing. */
	if (bytebuf_len(&c->out) && c->ts.handshake_done) {
		tls_stream_write(&c->ts, bytebuf_head(&c->out), bytebuf_len(&c->out));
		bytebuf_consume(&c->out, bytebuf_len(&c->out));
	}
	tls_stream_close(&c->ts);
}

static bool serving(const struct conn *c)
{
	return c->state == CONN_HELLO || c->state == CONN_READY;
}

/* After the handshake one timer (the tls_stream deadline) enforces the limit
 * the connection is waiting under:
 *   - output over max_output_bytes: send_timeout_ms since it went over or
 *     since the last write completed (track_output arms it, not this);
 *   - a partial frame: frame_timeout_ms from its first byte, however slowly
 *     the rest trickles in (each byte would otherwise renew the idle time);
 *   - else, or while reading is paused for the in-flight limit:
 *     idle_timeout_ms from now. */
static void arm_deadline(struct conn *c)
{
	const struct crm_config *cfg = c->srv->cfg;
	if (!serving(c) || c->output_stalled)
		return;
	if (c->frame_started_ms && !c->ts.paused) {
		uint64_t elapsed = uv_now(c->srv->loop) - c->frame_started_ms;
		uint64_t limit = (uint64_t)cfg->frame_timeout_ms;
		tls_stream_deadline(&c->ts, elapsed < limit ? limit - elapsed : 1, "frame read");
		return;
	}
	tls_stream_deadline(&c->ts, (uint64_t)cfg->idle_timeout_ms, "idle connection");
}

/* Output is stalled from when it goes over max_output_bytes until it is back
 * under half of that (reading resumes there too, see on_drain). A client
 * that takes none of it for send_timeout_ms is closed: pausing its reads
 * bounds its memory, this frees its connection. `wrote`: a socket write just
 * completed, so the client took something and the time starts again. */
static void track_output(struct conn *c, bool wrote)
{
	if (!serving(c))
		return;
	size_t out = output_bytes(c), max = c->srv->cfg->max_output_bytes;
	bool was = c->output_stalled;
	if (out > max)
		c->output_stalled = true;
	else if (out <= max / 2)
		c->output_stalled = false;
	if (c->output_stalled && (!was || wrote))
		tls_stream_deadline(&c->ts, (uint64_t)c->srv->cfg->send_timeout_ms, "send");
	else if (was && !c->output_stalled)
		arm_deadline(c);
}

/* Reading stops while a connection is at its in-flight limit or has more
 * output queued than allowed: a client that pipelines without end or never
 * reads costs bounded memory. Counted when reading goes from on to off. */
static bool should_pause(struct conn *c)
{
	const struct crm_config *cfg = c->srv->cfg;
	enum stat_counter why;
	track_output(c, false);
	if (c->in_flight >= cfg->max_in_flight)
		why = ST_PAUSED_IN_FLIGHT;
	else if (c->output_stalled)
		why = ST_PAUSED_OUTPUT;
	else
		return false;
	if (!c->ts.paused)
		c->srv->stats.counters[why]++;
	return true;
}

/* Fills the hello reply; h_auth.c answers the hello of a connection with a
 * client certificate once it is bound. */
void conn_hello_reply(struct conn *c, Crm__HelloReply *hr)
{
	hr->protocol_version = CRM__PROTOCOL_VERSION__PROTOCOL_VERSION;
	hr->server_name = "crmd";
	hr->server_version = CRM_VERSION;
	hr->node_role = (char *)c->srv->cfg->node_role;
	hr->max_frame_bytes = (uint32_t)c->srv->cfg->max_frame_bytes;
	hr->max_in_flight = (uint32_t)c->srv->cfg->max_in_flight;
	static char *features[] = {"pipelining", "streams", "events"};
	hr->features = features;
	hr->n_features = 3;
}

/* Returns true when it took ownership of `env` (a client certificate's
 * hello goes on to the handler table, which binds the connection to the
 * store node and then answers). */
static bool handle_hello(struct conn *c, Crm__Envelope *env)
{
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	Crm__HelloReply hr = CRM__HELLO_REPLY__INIT;
	resp.id = env->id;
	resp.body_case = CRM__ENVELOPE__BODY_HELLO_REPLY;
	resp.hello_reply = &hr;
	conn_hello_reply(c, &hr);
	if (env->hello->protocol_version != CRM__PROTOCOL_VERSION__PROTOCOL_VERSION) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "protocol version %u is not supported; this server speaks version %d: upgrade the client",
			 env->hello->protocol_version, CRM__PROTOCOL_VERSION__PROTOCOL_VERSION);
		Crm__Status st = CRM__STATUS__INIT;
		st.code = CRM__CODE__INVALID_ARGUMENT;
		st.message = msg;
		st.field = "hello.protocol_version";
		resp.status = &st;
		conn_send(c, &resp);
		conn_fail(c, CRM__CODE__INVALID_ARGUMENT, msg);
		return false;
	}
	char name[80], serial[80];
	log_info("conn.hello", "conn=%llu client=%s version=%s", (unsigned long long)c->number,
		 log_quote(name, sizeof name, env->hello->client_name),
		 env->hello->client_version ? env->hello->client_version : "");
	c->state = CONN_READY;
	if (tls_stream_peer_serial(&c->ts, serial, sizeof serial)) {
		dispatch(c, env); /* h_cert_login answers */
		return true;
	}
	conn_send(c, &resp);
	return false;
}

/* Flow control messages refer to a stream by its request id; they get no
 * reply of their own. */
static void handle_stream_control(struct conn *c, Crm__Envelope *env)
{
	struct request *r = req_find(c, env->id);
	if (!r || !r->h->streamed)
		return; /* the stream already ended: nothing to do */
	if (env->body_case == CRM__ENVELOPE__BODY_STREAM_CANCEL) {
		r->remaining = 1; /* the next frame is the last */
		r->credit = r->credit ? r->credit : 1;
	} else {
		uint64_t credit = (uint64_t)r->credit + env->stream_credit->frames;
		r->credit = credit > 1024 ? 1024 : (uint32_t)credit;
	}
	if (r->stream_waiting && r->credit > 0 && r->h->more) {
		r->stream_waiting = false;
		r->h->more(r);
	}
}

static void handle_frame(struct conn *c, const uint8_t *payload, size_t len)
{
	c->srv->stats.counters[ST_FRAMES_IN]++;
	Crm__Envelope *env = frame_unpack_envelope(payload, len);
	if (!env) {
		c->srv->stats.counters[ST_FRAMES_MALFORMED]++;
		conn_fail(c, CRM__CODE__INVALID_ARGUMENT,
			  "malformed frame: the payload is not a valid Envelope message");
		return;
	}
	if (c->state == CONN_HELLO) {
		if (env->body_case != CRM__ENVELOPE__BODY_HELLO) {
			crm__envelope__free_unpacked(env, NULL);
			conn_fail(c, CRM__CODE__INVALID_ARGUMENT,
				  "the first message on a connection must be a hello");
			return;
		}
		if (!handle_hello(c, env))
			crm__envelope__free_unpacked(env, NULL);
		return;
	}
	if (env->body_case == CRM__ENVELOPE__BODY_STREAM_CREDIT ||
	    env->body_case == CRM__ENVELOPE__BODY_STREAM_CANCEL) {
		handle_stream_control(c, env);
		crm__envelope__free_unpacked(env, NULL);
		return;
	}
	dispatch(c, env); /* takes ownership of env */
}

/* Parses and handles whole frames from c->in while the limits allow. */
static void parse_input(struct conn *c)
{
	size_t max = c->srv->cfg->max_frame_bytes;
	if (c->srv->draining)
		return; /* requests not yet read stay unanswered: never acknowledged */
	while (c->state == CONN_HELLO || c->state == CONN_READY) {
		if (should_pause(c)) {
			tls_stream_pause(&c->ts);
			arm_deadline(c);
			return;
		}
		const uint8_t *payload;
		size_t plen, used;
		uint32_t announced = 0;
		enum frame_status st = frame_parse(bytebuf_head(&c->in), bytebuf_len(&c->in), max,
						   &payload, &plen, &used, &announced);
		if (st == FRAME_NEED_MORE)
			break;
		if (st == FRAME_TOO_LARGE) {
			char msg[128];
			snprintf(msg, sizeof msg, "frame of %u bytes exceeds the limit of %zu bytes",
				 announced, max);
			c->srv->stats.counters[ST_FRAMES_TOO_LARGE]++;
			conn_fail(c, CRM__CODE__RESOURCE_EXHAUSTED, msg);
			return;
		}
		/* Unpack copies what it keeps, so the frame can be consumed first. */
		handle_frame(c, payload, plen);
		bytebuf_consume(&c->in, used);
		c->frame_started_ms = 0;
	}
	if (!serving(c))
		return;
	/* What is left is the start of the next frame, or nothing: then the
	 * buffer goes too, as an idle connection should cost next to nothing. */
	if (bytebuf_len(&c->in) == 0) {
		c->frame_started_ms = 0;
		bytebuf_free(&c->in);
	} else if (c->frame_started_ms == 0)
		c->frame_started_ms = uv_now(c->srv->loop);
	tls_stream_resume(&c->ts);
	arm_deadline(c);
}

/* Not re-entered: a handler that answers at once (ping, a refusal) ends its
 * request inside handle_frame, and conn_request_done would parse c->in again
 * under the loop above, which then consumed the length of its frame from
 * wherever the inner call had left c->in: the stream lost its framing. A
 * call from inside (that, or on_data when the resume at the end reads more)
 * only asks the outer call to go round once more. */
static void process_input(struct conn *c)
{
	if (c->in_input) {
		c->input_again = true;
		return;
	}
	c->in_input = true;
	do {
		c->input_again = false;
		parse_input(c);
	} while (c->input_again && serving(c));
	c->in_input = false;
}

static void on_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
	struct conn *c = conn_of(ts);
	if (c->state == CONN_CLOSING)
		return;
	if (!bytebuf_append(&c->in, data, len)) {
		conn_fail(c, CRM__CODE__RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	process_input(c); /* and arms the deadline */
}

static void on_handshake(struct tls_stream *ts)
{
	struct conn *c = conn_of(ts);
	c->state = CONN_HELLO;
	handshake_ended();
	tls_stream_deadline(ts, (uint64_t)c->srv->cfg->idle_timeout_ms, "idle connection");
	log_debug("conn.tls", "conn=%llu peer=%s version=%s cipher=%s",
		  (unsigned long long)c->number, ts->peer, SSL_get_version(ts->ssl),
		  SSL_get_cipher_name(ts->ssl));
}

static void on_error(struct tls_stream *ts, const char *reason)
{
	struct conn *c = conn_of(ts);
	if (!ts->handshake_done)
		c->srv->stats.counters[ST_TLS_HANDSHAKE_FAILED]++;
	if (strstr(reason, "timed out"))
		c->srv->stats.counters[ST_TIMEOUTS]++;
	log_info("conn.close", "conn=%llu peer=%s reason=\"%s\" in_flight=%d",
		 (unsigned long long)c->number, ts->peer, reason, c->in_flight);
	c->state = CONN_CLOSING;
}

static void on_drain(struct tls_stream *ts)
{
	struct conn *c = conn_of(ts);
	track_output(c, true);
	if (c->ts.paused && serving(c) && output_bytes(c) <= c->srv->cfg->max_output_bytes / 2)
		process_input(c);
}

static void on_closed(struct tls_stream *ts)
{
	struct conn *c = conn_of(ts);
	struct server *srv = c->srv;
	if (!ts->handshake_done)
		handshake_ended();
	attach_conn_closed(c);
	if (c->subscribed)
		reminders_conn_closed(c);
	while (c->requests) {
		struct request *r = c->requests;
		c->requests = r->next;
		req_detach(r);
	}
	if (c->dirty) {
		/* Unlink from the flusher's list. */
		struct conn **pp = &srv->dirty;
		while (*pp && *pp != c)
			pp = &(*pp)->dirty_next;
		if (*pp)
			*pp = c->dirty_next;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	srv->stats.counters[ST_CONN_OPEN] = (uint64_t)srv->nconns;
	bytebuf_free(&c->in);
	bytebuf_free(&c->out);
	free(c);
	server_conn_closed(srv);
	if (srv->draining && srv->nconns == 0)
		server_drain(srv, NULL);
}

static const struct tls_stream_ops conn_ops = {
	.on_handshake = on_handshake,
	.on_data = on_data,
	.on_error = on_error,
	.on_drain = on_drain,
	.on_closed = on_closed,
};

static void reject_closed(uv_handle_t *h) { free(h); }

void conn_accept(struct server *srv)
{
	if (srv->nconns >= srv->cfg->max_connections || srv->draining) {
		/* Accept and close at once so the backlog does not fill up. */
		uv_tcp_t *t = malloc(sizeof *t);
		if (!t)
			return;
		uv_tcp_init(srv->loop, t);
		if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t) == 0)
			srv->stats.counters[ST_CONN_REFUSED_LIMIT]++;
		uv_close((uv_handle_t *)t, reject_closed);
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->srv = srv;
	if (tls_stream_init(srv->loop, &c->ts, srv->ssl_ctx, true, NULL, &conn_ops, c) != 0) {
		free(c);
		return;
	}
	c->number = ++srv->conn_counter;
	c->state = CONN_HANDSHAKE;
	conns_handshaking++;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	if (srv->nconns > srv->conns_peak)
		srv->conns_peak = srv->nconns;
	srv->stats.counters[ST_CONN_ACCEPTED]++;
	srv->stats.counters[ST_CONN_OPEN] = (uint64_t)srv->nconns;
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->ts.tcp) != 0 ||
	    tls_stream_start(&c->ts) != 0) {
		tls_stream_abort(&c->ts);
		return;
	}
	tls_stream_deadline(&c->ts, (uint64_t)srv->cfg->handshake_timeout_ms, "TLS handshake");
	log_debug("conn.open", "conn=%llu peer=%s", (unsigned long long)c->number, c->ts.peer);
}

void conn_push_event(struct conn *c, const char *kind, const char *text)
{
	if (c->state != CONN_READY)
		return;
	Crm__Event ev = CRM__EVENT__INIT;
	ev.kind = (char *)kind;
	ev.text = (char *)text;
	ev.at = now_ms();
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.body_case = CRM__ENVELOPE__BODY_EVENT;
	env.event = &ev;
	conn_send(c, &env);
}

/* Sends the response frame of a request; used by dispatch.c. */
void conn_send_response(struct conn *c, Crm__Envelope *env)
{
	if (c->state == CONN_CLOSING && !c->srv->draining)
		return;
	conn_send(c, env);
}

void conn_request_done(struct conn *c)
{
	if (c->srv->draining) {
		if (c->in_flight == 0 && c->state != CONN_CLOSING) {
			c->state = CONN_CLOSING;
			/* Written by the flusher, then closed there. */
			server_mark_dirty(c);
		}
		return;
	}
	if (c->ts.paused && (c->state == CONN_READY || c->state == CONN_HELLO))
		process_input(c);
}

/* The flusher: encrypts and writes each dirty connection's output, once per
 * loop pass, so pipelined responses share TLS records and syscalls. */
void conn_flush(struct conn *c)
{
	if (bytebuf_len(&c->out) && c->ts.handshake_done && !c->ts.closing) {
		tls_stream_write(&c->ts, bytebuf_head(&c->out), bytebuf_len(&c->out));
		bytebuf_free(&c->out); /* encrypted now: an idle connection keeps no buffer */
	}
	/* Answers can pile up past the bound without any input to pause. */
	track_output(c, false);
	if (c->srv->draining && c->in_flight == 0)
		tls_stream_close(&c->ts);
}

/* The drain: every client hears why; idle connections close once that
 * event is written, busy ones stop reading and close after their last
 * answer (conn_request_done). */
void conn_close_all(struct server *srv)
{
	for (struct conn *c = srv->conns; c; c = c->next) {
		conn_push_event(c, "server.draining",
				"the server is shutting down; requests in progress will finish");
		tls_stream_pause(&c->ts);
		if (c->in_flight == 0) {
			c->state = CONN_CLOSING;
			server_mark_dirty(c);
		}
	}
}
