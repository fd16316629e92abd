/* crm-idle: what idle desk connections cost crmd, and how fast it shakes
 * hands.
 *
 * Phase 1 opens --connections TLS connections (default 10,000), at most
 * --concurrency handshakes at a time, sends each a hello and waits for the
 * reply, then holds them all idle for --settle seconds and reads crmd's
 * resident memory (/proc/PID/status of --pid) against what it was before:
 * the difference divided by the connections is the cost of one.
 *
 * Phase 2 closes them, then for --handshake-seconds keeps --concurrency
 * connections cycling (connect, full TLS handshake, close) and counts the
 * handshakes completed per second, and crmd's CPU time per handshake from
 * /proc/PID/stat: on a machine where this client shares the cores with
 * crmd, CPU per handshake says what crmd alone would sustain.
 *
 * One thread, one libuv loop, the same TLS stream code as crmd
 * (common/tlsstream.c), so 10,000 connections cost this side about as
 * little as they cost the server. No session resumption: every handshake
 * is a full one. The server certificate is verified against --ca when it
 * is given (without it, not: the load is the same for the server). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "tlsstream.h"

enum phase { PHASE_OPEN, PHASE_HOLD, PHASE_CLOSE, PHASE_CYCLE, PHASE_DONE };

struct client {
	struct tls_stream ts;
	uv_connect_t connect;
	struct bytebuf in;
	bool ready;      /* hello answered (phase 1) */
	bool counted;    /* its handshake was counted (phase 2) */
	int slot;
};

static struct {
	const char *host;
	int port;
	const char *ca;
	long pid;
	int connections, concurrency;
	double settle_s, handshake_s;
	uv_loop_t *loop;
	SSL_CTX *ctx;
	struct sockaddr_storage addr;
	enum phase phase;
	int started, ready, open, failed, handshaking;
	char first_error[256];
	struct client **all;
	uint64_t handshakes;
	double t0, t_open_done, t_cycle_end;
	uv_timer_t timer;
	/* figures */
	long rss_before_kib, rss_idle_kib, rss_after_kib, client_rss_kib;
	double cpu_before_s, cpu_after_s, cycle_s;
} g = {.connections = 10000, .concurrency = 100, .settle_s = 3, .handshake_s = 5};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(long pid)
{
	char path[64], line[256];
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%ld/status", pid);
	else
		snprintf(path, sizeof path, "/proc/self/status");
	FILE *f = fopen(path, "r");
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* utime + stime of a process, in seconds. */
static double cpu_s(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			 &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void start_more(void);

static void note_error(const char *why)
{
	g.failed++;
	if (!g.first_error[0])
		snprintf(g.first_error, sizeof g.first_error, "%s", why);
}

static void on_closed(struct tls_stream *ts)
{
	struct client *c = ts->owner;
	g.open--;
	if (c->slot >= 0)
		g.all[c->slot] = NULL;
	bytebuf_free(&c->in);
	free(c);
	start_more();
}

static void on_error(struct tls_stream *ts, const char *reason)
{
	struct client *c = ts->owner;
	if (!ts->handshake_done)
		g.handshaking--;
	if (g.phase == PHASE_OPEN || (g.phase == PHASE_CYCLE && !c->counted))
		note_error(reason);
}

static void on_handshake(struct tls_stream *ts)
{
	struct client *c = ts->owner;
	g.handshaking--;
	if (g.phase != PHASE_OPEN) {
		/* cycling, or one that finished after the cycling ended */
		if (g.phase == PHASE_CYCLE) {
			g.handshakes++;
			c->counted = true;
		}
		tls_stream_close(ts);
		return;
	}
	Crm__Hello hello = CRM__HELLO__INIT;
	hello.protocol_version = CRM__PROTOCOL_VERSION__PROTOCOL_VERSION;
	hello.client_name = "crm-idle";
	hello.client_version = "1";
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.id = 1;
	env.body_case = CRM__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	struct bytebuf out = {0};
	if (!frame_append_envelope(&out, &env) ||
	    !tls_stream_write(ts, bytebuf_head(&out), bytebuf_len(&out)))
		note_error("cannot send the hello");
	bytebuf_free(&out);
	start_more();
}

static void on_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
	struct client *c = ts->owner;
	if (c->ready || !bytebuf_append(&c->in, data, len))
		return;
	const uint8_t *payload;
	size_t plen, used;
	if (frame_parse(bytebuf_head(&c->in), bytebuf_len(&c->in), 1 << 20, &payload, &plen, &used,
			NULL) != FRAME_READY)
		return;
	Crm__Envelope *env = frame_unpack_envelope(payload, plen);
	bool ok = env && env->body_case == CRM__ENVELOPE__BODY_HELLO_REPLY &&
		  (!env->status || env->status->code == CRM__CODE__OK);
	if (env)
		crm__envelope__free_unpacked(env, NULL);
	bytebuf_free(&c->in); /* an idle connection keeps no buffer */
	if (!ok) {
		note_error("the hello was refused (is this crmd?)");
		tls_stream_close(ts);
		return;
	}
	c->ready = true;
	g.ready++;
	tls_stream_deadline(ts, 0, NULL);
	if (g.ready == g.connections) {
		g.t_open_done = now_s();
		g.phase = PHASE_HOLD;
	}
}

static const struct tls_stream_ops client_ops = {
	.on_handshake = on_handshake,
	.on_data = on_data,
	.on_error = on_error,
	.on_closed = on_closed,
};

static void on_connect(uv_connect_t *req, int status)
{
	struct client *c = req->data;
	if (status < 0) {
		char why[128];
		snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
		c->ts.error_reported = true;
		g.handshaking--;
		if (g.phase == PHASE_OPEN || g.phase == PHASE_CYCLE)
			note_error(why);
		tls_stream_abort(&c->ts);
		return;
	}
	if (tls_stream_start(&c->ts) != 0) {
		tls_stream_abort(&c->ts);
		return;
	}
	tls_stream_deadline(&c->ts, 30000, "TLS handshake");
}

static bool open_one(int slot)
{
	struct client *c = calloc(1, sizeof *c);
	if (!c)
		return false;
	c->slot = slot;
	if (tls_stream_init(g.loop, &c->ts, g.ctx, false, g.ca ? g.host : NULL, &client_ops, c) !=
	    0) {
		free(c);
		return false;
	}
	c->connect.data = c;
	if (uv_tcp_connect(&c->connect, &c->ts.tcp, (struct sockaddr *)&g.addr, on_connect) != 0) {
		tls_stream_abort(&c->ts);
		return false;
	}
	if (slot >= 0)
		g.all[slot] = c;
	g.open++;
	g.handshaking++;
	return true;
}

/* Keeps `concurrency` handshakes going while the phase wants more. */
static void start_more(void)
{
	if (g.phase == PHASE_OPEN) {
		while (g.started < g.connections && g.handshaking < g.concurrency) {
			if (!open_one(g.started)) {
				note_error("cannot open a connection (out of file descriptors?)");
				g.phase = PHASE_DONE;
				uv_stop(g.loop);
				return;
			}
			g.started++;
		}
		if (g.failed > 0) {
			g.phase = PHASE_DONE;
			uv_stop(g.loop);
		}
	} else if (g.phase == PHASE_CYCLE) {
		if (now_s() >= g.t_cycle_end)
			return;
		while (g.handshaking < g.concurrency)
			if (!open_one(-1)) {
				note_error("cannot open a connection");
				return;
			}
	} else if (g.phase == PHASE_CLOSE && g.open == 0) {
		g.phase = PHASE_CYCLE;
		g.cpu_before_s = g.pid > 0 ? cpu_s(g.pid) : 0;
		g.cycle_s = now_s();
		g.t_cycle_end = g.cycle_s + g.handshake_s;
		start_more();
	} else if (g.phase == PHASE_DONE && g.open == 0) {
		uv_stop(g.loop);
	}
}

/* Ticks ten times a second: moves from holding to closing once settled,
 * and ends the cycling phase. */
static void on_tick(uv_timer_t *t)
{
	(void)t;
	double now = now_s();
	if (g.phase == PHASE_HOLD && now - g.t_open_done >= g.settle_s) {
		g.rss_idle_kib = g.pid > 0 ? rss_kib(g.pid) : -1;
		g.client_rss_kib = rss_kib(0);
		g.phase = PHASE_CLOSE;
		for (int i = 0; i < g.connections; i++)
			if (g.all[i])
				tls_stream_close(&g.all[i]->ts);
		if (g.open == 0)
			start_more();
	} else if (g.phase == PHASE_CYCLE && now >= g.t_cycle_end) {
		g.cycle_s = now - g.cycle_s;
		g.cpu_after_s = g.pid > 0 ? cpu_s(g.pid) : 0;
		g.phase = PHASE_DONE;
		uv_timer_stop(&g.timer);
		if (g.open == 0)
			uv_stop(g.loop);
	} else if (g.phase == PHASE_OPEN && now - g.t0 > 600) {
		note_error("the connections did not all open within 10 minutes");
		g.phase = PHASE_DONE;
		uv_stop(g.loop);
	}
}

static const char usage_text[] =
	"usage: crm-idle --server H:P [--pid CRMD_PID] [options]\n"
	"  --ca FILE               verify the server against this CA (default: no check)\n"
	"  --connections N         idle connections to hold (default 10000)\n"
	"  --concurrency K         handshakes in progress at a time (default 100)\n"
	"  --settle S              seconds to hold them before measuring (default 3)\n"
	"  --handshake-seconds S   seconds of connect-handshake-close cycling (default 5; 0: skip)\n"
	"Prints one line: crmd's resident memory before, with the connections idle,\n"
	"and after; per connection; this client's own; handshakes per second.\n";

int main(int argc, char **argv)
{
	const char *server = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "crm-idle: %s needs a value\n%s", a, usage_text);
			return 2;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--server"))
			server = v;
		else if (!strcmp(a, "--ca"))
			g.ca = v;
		else if (!strcmp(a, "--pid"))
			g.pid = atol(v);
		else if (!strcmp(a, "--connections"))
			g.connections = atoi(v);
		else if (!strcmp(a, "--concurrency"))
			g.concurrency = atoi(v);
		else if (!strcmp(a, "--settle"))
			g.settle_s = atof(v);
		else if (!strcmp(a, "--handshake-seconds"))
			g.handshake_s = atof(v);
		else {
			fprintf(stderr, "crm-idle: unknown option %s\n%s", a, usage_text);
			return 2;
		}
	}
	static char host[256];
	const char *colon = server ? strrchr(server, ':') : NULL;
	if (!colon || colon == server || (size_t)(colon - server) >= sizeof host ||
	    g.connections < 1 || g.connections > 1000000 || g.concurrency < 1 ||
	    g.settle_s < 0 || g.handshake_s < 0) {
		fputs(usage_text, stderr);
		return 2;
	}
	memcpy(host, server, (size_t)(colon - server));
	g.host = host;
	g.port = atoi(colon + 1);
	if (uv_ip4_addr(host, g.port, (struct sockaddr_in *)&g.addr) != 0 &&
	    uv_ip6_addr(host, g.port, (struct sockaddr_in6 *)&g.addr) != 0) {
		fprintf(stderr, "crm-idle: --server needs an IP address and port, not %s\n", server);
		return 2;
	}
	/* Every connection is a file descriptor: raise the soft limit as far
	 * as the hard one allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)g.connections + 64) {
		fprintf(stderr, "crm-idle: %d connections need %d file descriptors; the limit is %llu"
				" (ulimit -n)\n", g.connections, g.connections + 64,
			(unsigned long long)rl.rlim_cur);
		return 2;
	}
	char err[256];
	if (g.ca) {
		g.ctx = tls_client_ctx(g.ca, err, sizeof err);
		if (!g.ctx) {
			fprintf(stderr, "crm-idle: %s\n", err);
			return 1;
		}
	} else {
		g.ctx = SSL_CTX_new(TLS_client_method());
		if (!g.ctx)
			return 1;
		SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
		SSL_CTX_set_mode(g.ctx, SSL_MODE_RELEASE_BUFFERS);
		SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
	}
	g.all = calloc((size_t)g.connections, sizeof *g.all);
	if (!g.all)
		return 1;
	g.loop = uv_default_loop();
	uv_timer_init(g.loop, &g.timer);
	uv_timer_start(&g.timer, on_tick, 100, 100);
	g.rss_before_kib = g.pid > 0 ? rss_kib(g.pid) : -1;
	if (g.pid > 0 && g.rss_before_kib < 0) {
		fprintf(stderr, "crm-idle: cannot read /proc/%ld/status\n", g.pid);
		return 1;
	}
	g.t0 = now_s();
	g.phase = PHASE_OPEN;
	start_more();
	uv_run(g.loop, UV_RUN_DEFAULT);
	double open_s = g.t_open_done > 0 ? g.t_open_done - g.t0 : 0;
	if (g.phase != PHASE_DONE || g.ready < g.connections) {
		fprintf(stderr, "crm-idle: %d of %d connections opened; first error: %s\n", g.ready,
			g.connections, g.first_error[0] ? g.first_error : "none");
		return 1;
	}
	/* Let the loop close what is still open, then crmd trim its heap. */
	while (g.open > 0 && uv_run(g.loop, UV_RUN_ONCE))
		;
	sleep(2);
	g.rss_after_kib = g.pid > 0 ? rss_kib(g.pid) : -1;
	double hs = g.cycle_s > 0 ? (double)g.handshakes / g.cycle_s : 0;
	double cpu_ms = g.handshakes && g.pid > 0
				? (g.cpu_after_s - g.cpu_before_s) * 1000.0 / (double)g.handshakes
				: 0;
	printf("idle connections=%d open_s=%.1f crmd_rss_before_kib=%ld crmd_rss_idle_kib=%ld"
	       " crmd_rss_after_kib=%ld per_conn_kib=%.1f client_rss_kib=%ld"
	       " handshakes_s=%.0f crmd_cpu_ms_per_handshake=%.3f handshake_errors=%d\n",
	       g.connections, open_s, g.rss_before_kib, g.rss_idle_kib, g.rss_after_kib,
	       g.pid > 0 ? (double)(g.rss_idle_kib - g.rss_before_kib) / g.connections : 0,
	       g.client_rss_kib, hs, cpu_ms, g.failed);
	if (g.first_error[0])
		fprintf(stderr, "crm-idle: first error: %s\n", g.first_error);
	uv_timer_stop(&g.timer);
	uv_close((uv_handle_t *)&g.timer, NULL);
	uv_run(g.loop, UV_RUN_DEFAULT);
	SSL_CTX_free(g.ctx);
	free(g.all);
	return 0;
}
