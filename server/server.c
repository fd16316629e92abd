/* The listening socket, signals, the output flusher and the drain. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "crl_http.h"
#include "log.h"
#include "reminders.h"
#include "server.h"


void server_mark_dirty(struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = c->srv->dirty;
	c->srv->dirty = c;
}

/* Runs before the loop blocks and after each poll phase, so output queued
 * by timers, database results and client reads all leave in one write per
 * connection per pass. */
static void flush_dirty(struct server *srv)
{
	while (srv->dirty) {
		struct conn *c = srv->dirty;
		srv->dirty = c->dirty_next;
		c->dirty = false;
		c->dirty_next = NULL;
		conn_flush(c);
	}
}

static void on_trim(uv_timer_t *t)
{
	struct server *srv = t->data;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	log_debug("server.trimmed", "connections=%d peak=%d", srv->nconns, srv->conns_peak);
	srv->conns_peak = srv->nconns;
}

/* glibc keeps freed heap for reuse: after 10,000 connections close, crmd's
 * resident memory would stay at their level for good. So once at least
 * half of the peak (and 256 or more) has closed, the free memory goes back
 * to the system a second later, once, not at every close. */
void server_conn_closed(struct server *srv)
{
	if (srv->draining || uv_is_active((uv_handle_t *)&srv->trim_timer))
		return;
	if (srv->conns_peak - srv->nconns < 256 || srv->nconns > srv->conns_peak / 2)
		return;
	uv_timer_start(&srv->trim_timer, on_trim, 1000, 0);
}

static void on_prepare(uv_prepare_t *h) { flush_dirty(h->data); }
static void on_check(uv_check_t *h) { flush_dirty(h->data); }

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	if (status < 0) {
		log_warn("server.accept_failed", "reason=\"%s\"", uv_strerror(status));
		return;
	}
	conn_accept(srv);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;
	server_drain(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_drain_timeout(uv_timer_t *t)
{
	struct server *srv = t->data;
	log_warn("server.drain_timeout", "connections=%d", srv->nconns);
	for (struct conn *c = srv->conns; c; c = c->next)
		tls_stream_abort(&c->ts);
}

static void close_quietly(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_pool_closed(void *arg)
{
	struct server *srv = arg;
	auth_certs_stop();
	service_timer_stop();
	close_quietly((uv_handle_t *)&srv->sigterm);
	close_quietly((uv_handle_t *)&srv->sigint);
	close_quietly((uv_handle_t *)&srv->flush_prepare);
	close_quietly((uv_handle_t *)&srv->flush_check);
	close_quietly((uv_handle_t *)&srv->drain_timer);
	close_quietly((uv_handle_t *)&srv->trim_timer);
	log_info("server.stopped", "exit=%d", srv->exit_code);
}

/* First call (from a signal): stop accepting, tell clients, let requests in
 * flight finish. Called again with why == NULL when the last connection
 * has closed: then the pool closes and the loop runs out of handles. */
void server_drain(struct server *srv, const char *why)
{
	if (why) {
		if (srv->draining)
			return;
		srv->draining = true;
		log_info("server.draining", "signal=%s connections=%d", why, srv->nconns);
		close_quietly((uv_handle_t *)&srv->listener);
		crl_http_stop(srv);
		reminders_stop(srv);
		uv_timer_start(&srv->drain_timer, on_drain_timeout,
			       (uint64_t)srv->cfg->drain_timeout_ms, 0);
		conn_close_all(srv);
		if (srv->nconns > 0)
			return;
	}
	if (srv->nconns > 0 || !srv->pool)
		return;
	uv_timer_stop(&srv->drain_timer);
	struct pool *p = srv->pool;
	srv->pool = NULL;
	pool_close(p, on_pool_closed, srv);
}

int server_start(struct server *srv, uv_loop_t *loop, const struct crm_config *cfg, char *err,
		 size_t errcap)
{
	memset(srv, 0, sizeof *srv);
	srv->loop = loop;
	srv->cfg = cfg;
	srv->started_at_ms = now_ms();
	loop->data = srv;
	srv->ssl_ctx = tls_server_ctx(cfg->cert_file, cfg->key_file, cfg->client_ca_file, err, errcap);
	if (!srv->ssl_ctx)
		return -1;
	auth_init();
	int active_limit = cfg->db_active_limit >= 0 ? cfg->db_active_limit
						     : (int)uv_available_parallelism();
	srv->followups_running_max = active_limit > 0 && active_limit < cfg->db_pool_size
					     ? active_limit
					     : cfg->db_pool_size;
	if (srv->followups_running_max < 1)
		srv->followups_running_max = 1;
	struct pool_options po = {
		.host = cfg->db_host,
		.port = cfg->db_port,
		.dbname = cfg->db_name,
		.user = cfg->db_user,
		.password = cfg->db_password,
		.size = cfg->db_pool_size,
		.connect_timeout_s = cfg->db_connect_timeout_s,
		.max_queue = 100000,
		.active_limit = active_limit,
	};
	srv->pool = pool_new(loop, &po);
	if (!srv->pool) {
		snprintf(err, errcap, "cannot create the database pool");
		return -1;
	}
	pool_start(srv->pool);
	auth_certs_start(srv); /* revoked client certificates, when client_ca is set */
	service_timer_start(srv); /* daily maintenance reminders and value classes */
	if (!reminders_start(srv, err, errcap))
		return -1;

	struct sockaddr_storage addr;
	if (uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&addr) != 0 &&
	    uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&addr) != 0) {
		snprintf(err, errcap, "server.listen_host: \"%s\" is not an IP address",
			 cfg->listen_host);
		return -1;
	}
	uv_tcp_init(loop, &srv->listener);
	srv->listener.data = srv;
	int rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
	if (rc != 0) {
		snprintf(err, errcap, "cannot listen on %s:%d: %s", cfg->listen_host,
			 cfg->listen_port, uv_strerror(rc));
		return -1;
	}
	if (crl_http_start(srv, err, errcap) != 0)
		return -1;
	uv_signal_init(loop, &srv->sigterm);
	uv_signal_init(loop, &srv->sigint);
	srv->sigterm.data = srv->sigint.data = srv;
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	uv_prepare_init(loop, &srv->flush_prepare);
	uv_check_init(loop, &srv->flush_check);
	srv->flush_prepare.data = srv->flush_check.data = srv;
	uv_prepare_start(&srv->flush_prepare, on_prepare);
	uv_check_start(&srv->flush_check, on_check);
	uv_timer_init(loop, &srv->drain_timer);
	srv->drain_timer.data = srv;
	uv_timer_init(loop, &srv->trim_timer);
	srv->trim_timer.data = srv;
	log_info("server.listening", "host=%s port=%d role=%s version=%s db_pool=%d db_active_limit=%d",
		 cfg->listen_host, cfg->listen_port, cfg->node_role, CRM_VERSION, cfg->db_pool_size,
		 active_limit);
	return 0;
}
