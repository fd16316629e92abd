#include "tlsstream.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define READ_CHUNK 65536
#define CLOSE_GRACE_MS 2000

struct write_req {
	uv_write_t req;
	size_t len;
	uint8_t *data;              /* the stream's output buffer, now the write's */
};

/* ---- memory BIOs that hold nothing while a stream is idle
 *
 * OpenSSL's BIO_s_mem keeps the largest buffer it ever held, for the life
 * of the connection: the handshake's flight out and the largest read in.
 * Over 10,000 idle desk connections that was most of crmd's memory. These
 * two BIOs read from and write to the stream's own fields instead (struct
 * tls_stream: in_ptr, keep, out), which are empty, and freed, between
 * reads and writes. */

static BIO_METHOD *stream_bio_method;
static pthread_once_t stream_bio_once = PTHREAD_ONCE_INIT;

static int sbio_read(BIO *b, char *out, int len)
{
	struct tls_stream *ts = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (ts->in_len == 0) {
		BIO_set_retry_read(b); /* no data yet, not end of file */
		return -1;
	}
	size_t n = ts->in_len < (size_t)len ? ts->in_len : (size_t)len;
	memcpy(out, ts->in_ptr, n);
	ts->in_ptr += n;
	ts->in_len -= n;
	return (int)n;
}

static int sbio_write(BIO *b, const char *data, int len)
{
	struct tls_stream *ts = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	size_t need = ts->out_len + (size_t)len;
	if (need > ts->out_cap) {
		size_t cap = ts->out_cap ? ts->out_cap : 2048;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(ts->out, cap);
		if (!p)
			return -1;
		ts->out = p;
		ts->out_cap = cap;
	}
	memcpy(ts->out + ts->out_len, data, (size_t)len);
	ts->out_len = need;
	return len;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	struct tls_stream *ts = BIO_get_data(b);
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return ts && b == ts->rbio ? (long)ts->in_len : 0;
	case BIO_CTRL_WPENDING:
		return ts && b == ts->wbio ? (long)ts->out_len : 0;
	default:
		return 0;
	}
}

static int sbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void stream_bio_setup(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "crm stream");
	if (m && BIO_meth_set_read(m, sbio_read) == 1 && BIO_meth_set_write(m, sbio_write) == 1 &&
	    BIO_meth_set_ctrl(m, sbio_ctrl) == 1 && BIO_meth_set_create(m, sbio_create) == 1) {
		stream_bio_method = m;
		return;
	}
	BIO_meth_free(m);
}

static BIO *stream_bio_new(struct tls_stream *ts)
{
	pthread_once(&stream_bio_once, stream_bio_setup);
	BIO *b = stream_bio_method ? BIO_new(stream_bio_method) : NULL;
	if (b)
		BIO_set_data(b, ts);
	return b;
}

/* After OpenSSL has read what it could: ciphertext still unread (the owner
 * paused, or closed) is kept on the heap until it is read, so the shared
 * read buffer can take the next read. False when out of memory. */
static bool keep_unread(struct tls_stream *ts)
{
	if (ts->in_len == 0 || ts->closing) {
		free(ts->keep);
		ts->keep = NULL;
		ts->in_ptr = NULL;
		ts->in_len = 0;
		return true;
	}
	if (ts->keep && ts->in_ptr == ts->keep)
		return true;
	uint8_t *copy = malloc(ts->in_len);
	if (!copy)
		return false;
	/* in_ptr may point into the old copy: move before freeing it. */
	memcpy(copy, ts->in_ptr, ts->in_len);
	free(ts->keep);
	ts->keep = copy;
	ts->in_ptr = copy;
	return true;
}

static void ssl_reason(char *out, size_t cap, const char *prefix)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(out, cap, "%s: %s", prefix, buf);
}

static void report_error(struct tls_stream *ts, const char *reason)
{
	if (ts->error_reported || ts->closing)
		return;
	ts->error_reported = true;
	if (ts->ops->on_error)
		ts->ops->on_error(ts, reason);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct tls_stream *ts = h->data;
	if (--ts->handles_open > 0)
		return;
	SSL_free(ts->ssl);
	ts->ssl = NULL;
	free(ts->out);
	free(ts->keep);
	ts->out = ts->keep = NULL;
	ts->in_ptr = NULL;
	ts->out_len = ts->out_cap = ts->in_len = 0;
	if (ts->ops->on_closed)
		ts->ops->on_closed(ts);
}

void tls_stream_abort(struct tls_stream *ts)
{
	if (ts->handles_open == 0 || uv_is_closing((uv_handle_t *)&ts->tcp))
		return;
	ts->closing = true;
	uv_close((uv_handle_t *)&ts->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&ts->timer, on_handle_closed);
}

static void fail(struct tls_stream *ts, const char *reason)
{
	report_error(ts, reason);
	tls_stream_abort(ts);
}

static void on_write_done(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct tls_stream *ts = req->data;
	ts->write_queued -= w->len;
	free(w->data);
	free(w);
	if (status < 0) {
		if (status != UV_ECANCELED) {
			char why[128];
			snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
			fail(ts, why);
		}
		return;
	}
	if (!ts->closing && ts->ops->on_drain)
		ts->ops->on_drain(ts);
}

/* Moves everything OpenSSL produced into one socket write; the output
 * buffer itself goes with it, freed when the write completes. */
static bool flush_out(struct tls_stream *ts)
{
	if (ts->out_len == 0 || uv_is_closing((uv_handle_t *)&ts->tcp))
		return true;
	struct write_req *w = malloc(sizeof *w);
	if (!w) {
		fail(ts, "out of memory");
		return false;
	}
	size_t n = ts->out_len;
	w->data = ts->out;
	w->len = n;
	w->req.data = ts;
	ts->out = NULL;
	ts->out_len = ts->out_cap = 0;
	uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)n);
	int rc = uv_write(&w->req, (uv_stream_t *)&ts->tcp, &buf, 1, on_write_done);
	if (rc < 0) {
		free(w->data);
		free(w);
		char why[128];
		snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
		fail(ts, why);
		return false;
	}
	ts->write_queued += (size_t)n;
	return true;
}

/* Runs the handshake, then SSL_read until OpenSSL wants more ciphertext or
 * the owner pauses. Every call is followed by a flush: SSL_read can produce
 * output too (session tickets, key updates, alerts). */
static void pump(struct tls_stream *ts)
{
	if (ts->in_pump || ts->closing)
		return;
	ts->in_pump = true;
	if (!ts->handshake_done) {
		ERR_clear_error();
		int rc = SSL_do_handshake(ts->ssl);
		if (!flush_out(ts))
			goto out;
		if (rc != 1) {
			int e = SSL_get_error(ts->ssl, rc);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				char why[384], what[256] = "TLS handshake failed";
				/* Say why a certificate did not verify (revoked, expired,
				 * unknown CA, ...): OpenSSL's error queue does not. */
				long v = SSL_get_verify_result(ts->ssl);
				if (v != X509_V_OK)
					snprintf(what, sizeof what, "TLS handshake failed (certificate: %s)",
						 X509_verify_cert_error_string(v));
				ssl_reason(why, sizeof why, what);
				fail(ts, why);
			}
			goto out;
		}
		ts->handshake_done = true;
		tls_stream_deadline(ts, 0, NULL);
		if (ts->ops->on_handshake)
			ts->ops->on_handshake(ts);
	}
	uint8_t buf[16384];
	while (!ts->paused && !ts->closing) {
		ERR_clear_error();
		int n = SSL_read(ts->ssl, buf, sizeof buf);
		if (n > 0) {
			ts->ops->on_data(ts, buf, (size_t)n);
			continue;
		}
		int e = SSL_get_error(ts->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			fail(ts, "connection closed by peer");
		} else {
			char why[384];
			ssl_reason(why, sizeof why, "TLS error");
			fail(ts, why);
		}
		break;
	}
	if (!ts->closing)
		flush_out(ts);
out:
	ts->in_pump = false;
	if (!keep_unread(ts))
		fail(ts, "out of memory");
}

/* One read buffer per thread (one loop per thread), shared by all of its
 * streams: libuv calls on_alloc and then on_read for one stream at a time,
 * and on_read leaves nothing in the buffer (keep_unread). Per-connection
 * read buffers cost 64 KiB each while a read was pending. */
static _Thread_local uint8_t read_buffer[READ_CHUNK];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = (char *)read_buffer;
	buf->len = sizeof read_buffer;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct tls_stream *ts = s->data;
	if (nread > 0 && !ts->closing) {
		size_t n = (size_t)nread;
		if (ts->in_len == 0) {
			ts->in_ptr = (const uint8_t *)buf->base;
			ts->in_len = n;
		} else {
			/* Some was kept from before: the new data goes after it. */
			size_t off = (size_t)(ts->in_ptr - ts->keep);
			memmove(ts->keep, ts->keep + off, ts->in_len);
			uint8_t *p = realloc(ts->keep, ts->in_len + n);
			if (!p) {
				fail(ts, "out of memory");
				return;
			}
			memcpy(p + ts->in_len, buf->base, n);
			ts->keep = p;
			ts->in_ptr = p;
			ts->in_len += n;
		}
		pump(ts);
		/* Nothing may point into read_buffer past this call (pump keeps
		 * the rest itself, unless it returned at once). */
		if (!keep_unread(ts))
			fail(ts, "out of memory");
	} else if (nread < 0) {
		if (nread == UV_EOF) {
			fail(ts, "connection closed by peer");
		} else {
			char why[128];
			snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)nread));
			fail(ts, why);
		}
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct tls_stream *ts = t->data;
	if (ts->closing) {
		tls_stream_abort(ts);
		return;
	}
	char why[96];
	snprintf(why, sizeof why, "%s timed out", ts->deadline_what ? ts->deadline_what : "connection");
	fail(ts, why);
}

void tls_stream_deadline(struct tls_stream *ts, uint64_t ms, const char *what)
{
	if (ts->closing)
		return;
	ts->deadline_what = what;
	if (ms == 0)
		uv_timer_stop(&ts->timer);
	else
		uv_timer_start(&ts->timer, on_deadline, ms, 0);
}

int tls_stream_init(uv_loop_t *loop, struct tls_stream *ts, SSL_CTX *ctx, bool is_server,
		    const char *server_name, const struct tls_stream_ops *ops, void *owner)
{
	memset(ts, 0, sizeof *ts);
	ts->ops = ops;
	ts->owner = owner;
	ts->ssl = SSL_new(ctx);
	if (!ts->ssl)
		return -1;
	ts->rbio = stream_bio_new(ts);
	ts->wbio = stream_bio_new(ts);
	if (!ts->rbio || !ts->wbio) {
		BIO_free(ts->rbio);
		BIO_free(ts->wbio);
		SSL_free(ts->ssl);
		return -1;
	}
	SSL_set_bio(ts->ssl, ts->rbio, ts->wbio);
	if (is_server) {
		SSL_set_accept_state(ts->ssl);
	} else {
		SSL_set_connect_state(ts->ssl);
		if (server_name && *server_name) {
			unsigned char addr[16];
			bool is_ip = inet_pton(AF_INET, server_name, addr) == 1 ||
				     inet_pton(AF_INET6, server_name, addr) == 1;
			int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ts->ssl), server_name)
				       : SSL_set1_host(ts->ssl, server_name);
			if (!is_ip)
				SSL_set_tlsext_host_name(ts->ssl, server_name);
			if (ok != 1) {
				SSL_free(ts->ssl);
				return -1;
			}
		}
	}
	int rc = uv_tcp_init(loop, &ts->tcp);
	if (rc < 0) {
		SSL_free(ts->ssl);
		return rc;
	}
	uv_timer_init(loop, &ts->timer);
	ts->tcp.data = ts;
	ts->timer.data = ts;
	ts->handles_open = 2;
	return 0;
}

static void fill_peer(struct tls_stream *ts)
{
	struct sockaddr_storage sa;
	int len = sizeof sa;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (uv_tcp_getpeername(&ts->tcp, (struct sockaddr *)&sa, &len) == 0) {
		if (sa.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&sa;
			uv_ip4_name(in, ip, sizeof ip);
			port = ntohs(in->sin_port);
		} else if (sa.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
			uv_ip6_name(in6, ip, sizeof ip);
			port = ntohs(in6->sin6_port);
		}
	}
	snprintf(ts->peer, sizeof ts->peer, "%s:%d", ip, port);
}

int tls_stream_start(struct tls_stream *ts)
{
	fill_peer(ts);
	uv_tcp_nodelay(&ts->tcp, 1);
	int rc = uv_read_start((uv_stream_t *)&ts->tcp, on_alloc, on_read);
	if (rc < 0)
		return rc;
	ts->reading = true;
	if (!SSL_is_server(ts->ssl))
		pump(ts);
	return 0;
}

bool tls_stream_write(struct tls_stream *ts, const uint8_t *data, size_t len)
{
	if (ts->closing || !ts->handshake_done)
		return false;
	while (len > 0) {
		size_t written = 0;
		ERR_clear_error();
		if (SSL_write_ex(ts->ssl, data, len, &written) != 1) {
			char why[384];
			ssl_reason(why, sizeof why, "TLS write failed");
			fail(ts, why);
			return false;
		}
		data += written;
		len -= written;
	}
	return flush_out(ts);
}

void tls_stream_pause(struct tls_stream *ts)
{
	if (ts->paused)
		return;
	ts->paused = true;
	if (ts->reading && !ts->closing) {
		uv_read_stop((uv_stream_t *)&ts->tcp);
		ts->reading = false;
	}
}

void tls_stream_resume(struct tls_stream *ts)
{
	if (!ts->paused || ts->closing)
		return;
	ts->paused = false;
	if (!ts->reading) {
		uv_read_start((uv_stream_t *)&ts->tcp, on_alloc, on_read);
		ts->reading = true;
	}
	/* Ciphertext and plaintext buffered before the pause are handled now. */
	pump(ts);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	struct tls_stream *ts = req->data;
	free(req);
	tls_stream_abort(ts);
}

void tls_stream_close(struct tls_stream *ts)
{
	if (ts->closing || ts->handles_open == 0)
		return;
	if (ts->handshake_done) {
		ERR_clear_error();
		SSL_shutdown(ts->ssl);
		flush_out(ts);
	}
	ts->closing = true;
	if (ts->reading) {
		uv_read_stop((uv_stream_t *)&ts->tcp);
		ts->reading = false;
	}
	/* uv_shutdown runs after queued writes: the peer gets the last frames
	 * (an error frame, say) before the socket goes away. The timer bounds
	 * how long a peer that never reads can hold us. */
	uv_timer_start(&ts->timer, on_deadline, CLOSE_GRACE_MS, 0);
	uv_shutdown_t *req = malloc(sizeof *req);
	if (!req || uv_shutdown(req, (uv_stream_t *)&ts->tcp, on_shutdown) < 0) {
		free(req);
		tls_stream_abort(ts);
		return;
	}
	req->data = ts;
}

static void harden(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* TLS 1.2 only with forward-secret AEAD suites. */
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
}

/* A missing file is the common mistake: say so plainly, with the fix. */
static bool readable(const char *what, const char *path, char *err, size_t errcap)
{
	FILE *f = fopen(path, "r");
	if (f) {
		fclose(f);
		return true;
	}
	snprintf(err, errcap, "%s: cannot read %s: %s (crmctl certs --dir DIR makes the files)",
		 what, path, strerror(errno));
	return false;
}

/* ---- revocation of client certificates
 *
 * The server context carries a sorted array of revoked serials in its
 * ex_data; the verify callback looks the leaf certificate up there. crmd
 * replaces the array when it reloads crm.revoked_certs. */

struct revocation {
	bool loaded;      /* false until the first tls_server_set_revoked */
	char **serials;   /* sorted */
	size_t n;
};

static int revocation_index = -1;

static void revocation_clear(struct revocation *rv)
{
	for (size_t i = 0; i < rv->n; i++)
		free(rv->serials[i]);
	free(rv->serials);
	rv->serials = NULL;
	rv->n = 0;
}

static void revocation_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	struct revocation *rv = ptr;
	if (!rv)
		return;
	revocation_clear(rv);
	free(rv);
}

static bool revocation_attach(SSL_CTX *ctx)
{
	if (revocation_index < 0)
		revocation_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, revocation_free);
	struct revocation *rv = calloc(1, sizeof *rv);
	if (revocation_index < 0 || !rv || SSL_CTX_set_ex_data(ctx, revocation_index, rv) != 1) {
		free(rv);
		return false;
	}
	return true;
}

static int cmp_serial(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool tls_server_set_revoked(SSL_CTX *ctx, const char *const *serials, size_t n)
{
	struct revocation *rv =
		revocation_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, revocation_index);
	if (!rv)
		return false;
	char **copy = calloc(n ? n : 1, sizeof *copy);
	if (!copy)
		return false;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(serials[i]);
		if (!copy[i]) {
			for (size_t k = 0; k < i; k++)
				free(copy[k]);
			free(copy);
			return false;
		}
	}
	qsort(copy, n, sizeof *copy, cmp_serial);
	revocation_clear(rv);
	rv->serials = copy;
	rv->n = n;
	rv->loaded = true;
	return true;
}

bool tls_cert_serial_hex(X509 *cert, char *out, size_t cap)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	bool ok = hex && strlen(hex) < cap;
	if (ok)
		snprintf(out, cap, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return ok;
}

bool tls_stream_peer_serial(struct tls_stream *ts, char *out, size_t cap)
{
	X509 *cert = ts->ssl ? SSL_get0_peer_certificate(ts->ssl) : NULL;
	if (!cert || SSL_get_verify_result(ts->ssl) != X509_V_OK)
		return false;
	return tls_cert_serial_hex(cert, out, cap);
}

/* After OpenSSL's own checks against the client CA: the leaf's serial must
 * not be revoked, and the list must have been loaded at least once. */
static int verify_client(int ok, X509_STORE_CTX *store)
{
	if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
		return ok;
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct revocation *rv = ssl && revocation_index >= 0
					? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), revocation_index)
					: NULL;
	char serial[80] = "?";
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	if (cert)
		tls_cert_serial_hex(cert, serial, sizeof serial);
	if (!rv || !rv->loaded) {
		log_warn("tls.client_cert_refused", "serial=%s reason=\"revocation list not loaded yet\"",
			 serial);
		X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	const char *key = serial;
	if (bsearch(&key, rv->serials, rv->n, sizeof *rv->serials, cmp_serial)) {
		log_info("tls.client_cert_refused", "serial=%s reason=revoked", serial);
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REVOKED);
		return 0;
	}
	return 1;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file,
			const char *client_ca, char *err, size_t errcap)
{
	if (!readable("server.cert", cert_file, err, errcap) ||
	    !readable("server.key", key_file, err, errcap) ||
	    (client_ca && *client_ca && !readable("server.client_ca", client_ca, err, errcap)))
		return NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_reason(err, errcap, "cannot create TLS context");
		return NULL;
	}
	harden(ctx);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_reason(err, errcap, cert_file);
		goto failed;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_reason(err, errcap, key_file);
		goto failed;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errcap, "%s does not belong to %s", key_file, cert_file);
		goto failed;
	}
	if (client_ca && *client_ca) {
		if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
			ssl_reason(err, errcap, client_ca);
			goto failed;
		}
		/* Desk clients log in with a password; machines present a certificate:
		 * asked for, never required. */
		if (!revocation_attach(ctx)) {
			snprintf(err, errcap, "out of memory");
			goto failed;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_client);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"crmd", 4);
	return ctx;
failed:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errcap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		ssl_reason(err, errcap, "cannot create TLS context");
		return NULL;
	}
	harden(ctx);
	if (!ca_file || !*ca_file) {
		snprintf(err, errcap, "no CA file given: pass --ca FILE or set CRM_CA");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		ssl_reason(err, errcap, ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

bool tls_client_use_cert(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *err,
			 size_t errcap)
{
	const char *paths[] = {cert_file, key_file};
	for (int i = 0; i < 2; i++) {
		FILE *f = paths[i] ? fopen(paths[i], "r") : NULL;
		if (!f) {
			snprintf(err, errcap, "client %s: cannot read %s: %s (crmctl certs store CODE"
				 " makes a store node's certificate and key)", i ? "key" : "certificate",
				 paths[i] ? paths[i] : "(none given)", strerror(errno));
			return false;
		}
		fclose(f);
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_reason(err, errcap, cert_file);
		return false;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_reason(err, errcap, key_file);
		return false;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errcap, "%s does not belong to %s", key_file, cert_file);
		ERR_clear_error();
		return false;
	}
	return true;
}

bool tls_client_use_crl(SSL_CTX *ctx, const char *crl_file, char *err, size_t errcap)
{
	FILE *f = fopen(crl_file, "r");
	if (!f) {
		snprintf(err, errcap, "CRL: cannot read %s: %s (crmctl certs crl makes it)", crl_file,
			 strerror(errno));
		return false;
	}
	X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
	fclose(f);
	if (!crl) {
		ssl_reason(err, errcap, crl_file);
		return false;
	}
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	bool ok = X509_STORE_add_crl(store, crl) == 1 &&
		  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) == 1;
	X509_CRL_free(crl);
	if (!ok)
		ssl_reason(err, errcap, crl_file);
	return ok;
}
