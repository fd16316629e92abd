/* crmd's CRL distribution point (crl_http.h): a second, plain-HTTP listener
 * that answers GET /group-ca.crl with the group CA's current CRL.
 *
 * Freshness: a request finds the CRL in memory; when that one is older than
 * CRL_MIN_AGE_MS it is rebuilt first from crm.crl_entries() and signed
 * anew, and every request that arrived meanwhile gets the new one. So a
 * revocation is published within a second of its commit, nothing is done
 * while nobody asks, and however many requests arrive the database sees at
 * most one query and the CA key one signature a second. When the database
 * is unreachable the last CRL is served until its nextUpdate, then 503.
 *
 * The HTTP is deliberately minimal and strict: one request per connection,
 * a request line and headers of at most CRL_MAX_REQUEST bytes ending in
 * CRLF CRLF (a bare LF, a NUL, a folded header or a body is a 400), GET
 * only (405 otherwise), the one path (404 otherwise), HTTP/1.0 or 1.1, and
 * every answer closes the connection. A client costs one slot of
 * CRL_MAX_CONNS for at most CRL_REQUEST_TIMEOUT_MS + CRL_ANSWER_TIMEOUT_MS,
 * its request buffer and a reference to the shared CRL bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl_http.h"
#include "log.h"
#include "server.h"
#include "stmts.h"

#define CRL_MAX_REQUEST 2048         /* request line and headers, bytes */
#define CRL_MAX_CONNS 64             /* past this, new connections are closed at once */
#define CRL_REQUEST_TIMEOUT_MS 5000  /* to send the whole request head */
#define CRL_ANSWER_TIMEOUT_MS 5000   /* to take the answer and close */
#define CRL_LINGER_BYTES 65536       /* dropped after answering, before closing */
#define CRL_MIN_AGE_MS 1000          /* a CRL younger than this is served as is */

/* One signed CRL in DER. Answers being written hold a reference, so a
 * newer CRL can replace it meanwhile; freed with the last reference. */
struct crl_der {
	int refs;
	size_t len;
	unsigned char bytes[];
};

enum crl_conn_state {
	CRL_CONN_READING,    /* reading the request head */
	CRL_CONN_WAITING,    /* a valid GET waits for the CRL to be rebuilt */
	CRL_CONN_ANSWERING,  /* the answer is being written; no more input is read */
	CRL_CONN_LINGERING,  /* answered and shut down for writing: what the client
			      * still sends is dropped until it closes, so that it
			      * reads the answer rather than a reset */
	CRL_CONN_CLOSED,     /* uv_close called on both handles */
};

struct crl_http;

struct crl_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;                /* the deadline of the current state */
	struct crl_http *ch;
	struct crl_conn *prev, *next;    /* the listener's connections */
	enum crl_conn_state state;
	int open_handles;                /* freed when both are closed */
	char peer[64];
	char in[CRL_MAX_REQUEST];        /* the request head as received */
	size_t in_len;
	size_t lingered;                 /* bytes dropped while lingering */
	char head[256];                  /* the answer's status line and headers */
	struct crl_der *crl;             /* the body, when it is the CRL */
	uv_write_t write;
	uv_shutdown_t shutdown;
};

struct crl_http {
	struct server *srv;
	uv_tcp_t listener;
	X509 *ca;
	EVP_PKEY *ca_key;
	char host[64];
	int port;
	struct crl_der *crl;             /* the latest CRL; NULL until the first */
	int64_t crl_made_ms;             /* when it was signed (mono_ms) */
	int64_t crl_expires_ms;          /* its nextUpdate */
	uint64_t crl_number;             /* its CRL Number */
	int crl_entries;                 /* revoked serials in it; -1: none yet */
	bool refreshing;                 /* a crm.crl_entries() call is running */
	struct pool_query *refresh;      /* that call, for pool_forget */
	int64_t refresh_tried_ms;        /* when the last call was sent (mono_ms) */
	struct crl_conn *conns;
	int nconns;
	int handles;                     /* open libuv handles: listener, 2 per connection */
	bool stopping;
};

/* Ages are measured on the monotonic clock, so that a wall clock set back
 * does not keep an old CRL "young"; expiry is wall-clock, like nextUpdate. */
static int64_t mono_ms(void)
{
	return (int64_t)(uv_hrtime() / 1000000);
}

static void crl_der_unref(struct crl_der *d)
{
	if (d && --d->refs == 0)
		free(d);
}

static void crl_http_free(struct crl_http *ch)
{
	crl_der_unref(ch->crl);
	X509_free(ch->ca);
	EVP_PKEY_free(ch->ca_key);
	free(ch);
}

static void maybe_free(struct crl_http *ch)
{
	if (ch->stopping && ch->handles == 0)
		crl_http_free(ch);
}

/* ------------------------------------------------------------ the CRL */

static bool add_authority_key_id(X509_CRL *crl, X509 *ca)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
						  "keyid:always");
	if (!ext)
		return false;
	int ok = X509_CRL_add_ext(crl, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1;
}

static bool add_revoked(X509_CRL *crl, const char *serial_hex, int64_t revoked_at_ms)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)(revoked_at_ms / 1000));
	bool ok = rev && when && BN_hex2bn(&bn, serial_hex) == (int)strlen(serial_hex) &&
		  (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
		  X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
		  X509_REVOKED_set_revocationDate(rev, when) == 1 &&
		  X509_CRL_add0_revoked(crl, rev) == 1;
	if (!ok)
		X509_REVOKED_free(rev);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	BN_free(bn);
	return ok;
}

/* A CRL of the rows of crm.crl_entries() (serial, revoked_at_ms), or of no
 * serial when `res` is NULL, signed now with the CA key and valid for
 * server.crl_valid_s: version 2, with the CRL Number and Authority Key
 * Identifier extensions RFC 5280 asks for. NULL on failure (logged). */
static struct crl_der *crl_build(struct crl_http *ch, const PGresult *res, uint64_t number)
{
	time_t now = time(NULL);
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *this_update = ASN1_TIME_set(NULL, now);
	ASN1_TIME *next_update = ASN1_TIME_set(NULL, now + ch->srv->cfg->crl_valid_s);
	ASN1_INTEGER *crl_number = ASN1_INTEGER_new();
	struct crl_der *der = NULL;
	bool ok = crl && this_update && next_update && crl_number &&
		  ASN1_INTEGER_set_uint64(crl_number, number) == 1 &&
		  X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
		  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ch->ca)) == 1 &&
		  X509_CRL_set1_lastUpdate(crl, this_update) == 1 &&
		  X509_CRL_set1_nextUpdate(crl, next_update) == 1 &&
		  X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, 0) == 1 &&
		  add_authority_key_id(crl, ch->ca);
	for (int i = 0; ok && res && i < PQntuples(res); i++)
		ok = add_revoked(crl, PQgetvalue(res, i, 0), strtoll(PQgetvalue(res, i, 1), NULL, 10));
	ok = ok && X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, ch->ca_key, EVP_sha256()) > 0;
	int len = ok ? i2d_X509_CRL(crl, NULL) : -1;
	if (len > 0 && (der = malloc(sizeof *der + (size_t)len)) != NULL) {
		unsigned char *p = der->bytes;
		der->refs = 1;
		der->len = (size_t)len;
		if (i2d_X509_CRL(crl, &p) != len) {
			free(der);
			der = NULL;
		}
	}
	if (!der) {
		char why[256] = "out of memory";
		unsigned long e = ERR_get_error();
		if (e)
			ERR_error_string_n(e, why, sizeof why);
		ERR_clear_error();
		log_error("crl.sign_failed", "reason=\"%s\"", why);
	}
	X509_CRL_free(crl);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	ASN1_INTEGER_free(crl_number);
	return der;
}

/* ------------------------------------------------------------ answers */

static void on_handle_closed(uv_handle_t *h)
{
	struct crl_conn *c = h->data;
	struct crl_http *ch = c->ch;
	ch->handles--;
	if (--c->open_handles > 0)
		return;
	crl_der_unref(c->crl);
	free(c);
	maybe_free(ch);
}

static void conn_close(struct crl_conn *c)
{
	if (c->state == CRL_CONN_CLOSED)
		return;
	c->state = CRL_CONN_CLOSED;
	struct crl_http *ch = c->ch;
	if (c->prev)
		c->prev->next = c->next;
	else
		ch->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ch->nconns--;
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void answer_crl(struct crl_conn *c);

static void on_timeout(uv_timer_t *t)
{
	struct crl_conn *c = t->data;
	log_debug("crl.timeout", "peer=%s state=%d", c->peer, (int)c->state);
	if (c->state == CRL_CONN_WAITING)
		answer_crl(c); /* the database is slow: the last CRL, or 503 */
	else
		conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct crl_conn *c = h->data;
	static char sink[4096]; /* lingering: read and dropped */
	if (c->state == CRL_CONN_READING) {
		buf->base = c->in + c->in_len;
		buf->len = sizeof c->in - c->in_len;
	} else {
		buf->base = sink;
		buf->len = sizeof sink;
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct crl_conn *c = req->data;
	if (c->state == CRL_CONN_CLOSED)
		return;
	if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
	struct crl_conn *c = req->data;
	if (c->state == CRL_CONN_CLOSED)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	c->state = CRL_CONN_LINGERING;
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
		conn_close(c);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	default: return "Service Unavailable";
	}
}

/* Writes the answer and closes: with the CRL when `crl` is given (a
 * reference is taken), else with `text` as a plain-text body. */
static void answer(struct crl_conn *c, int status, struct crl_der *crl, const char *text)
{
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->state = CRL_CONN_ANSWERING;
	uv_timer_start(&c->timer, on_timeout, CRL_ANSWER_TIMEOUT_MS, 0);
	const char *extra = status == 405 ? "Allow: GET\r\n"
			    : status == 503 ? "Retry-After: 5\r\n" : "";
	size_t body_len = crl ? crl->len : strlen(text);
	int n = snprintf(c->head, sizeof c->head,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "%sConnection: close\r\n\r\n",
			 status, reason_phrase(status),
			 crl ? "application/pkix-crl" : "text/plain; charset=utf-8", body_len, extra);
	if (crl) {
		crl->refs++;
		c->crl = crl;
	}
	uv_buf_t bufs[2] = {
		uv_buf_init(c->head, (unsigned)n),
		uv_buf_init(crl ? (char *)crl->bytes : (char *)text, (unsigned)body_len),
	};
	log_debug("crl.request", "peer=%s status=%d bytes=%zu", c->peer, status, body_len);
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, bufs, 2, on_written) != 0)
		conn_close(c);
}

/* The CRL if the one in memory is still valid, else 503. */
static void answer_crl(struct crl_conn *c)
{
	struct crl_http *ch = c->ch;
	if (ch->crl && now_ms() < ch->crl_expires_ms)
		answer(c, 200, ch->crl, NULL);
	else
		answer(c, 503, NULL, "the CRL is not available now: crmd cannot reach its database;"
				     " try again shortly\n");
}

/* ------------------------------------------------------------ refresh */

static void on_entries(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct crl_http *ch = arg;
	ch->refresh = NULL;
	ch->refreshing = false;
	if (err->code != CRM__CODE__OK) {
		char why[300];
		log_warn("crl.refresh_failed", "code=%d reason=%s", (int)err->code,
			 log_quote(why, sizeof why, err->message));
	} else {
		int64_t now = now_ms();
		/* Increasing, also across restarts: the time, or one more. */
		uint64_t number = ch->crl_number + 1 > (uint64_t)now ? ch->crl_number + 1
								    : (uint64_t)now;
		struct crl_der *der = crl_build(ch, res, number);
		if (der) {
			crl_der_unref(ch->crl);
			ch->crl = der;
			ch->crl_number = number;
			ch->crl_made_ms = mono_ms();
			ch->crl_expires_ms = now + (int64_t)ch->srv->cfg->crl_valid_s * 1000;
			if (PQntuples(res) != ch->crl_entries)
				log_info("crl.published", "revoked=%d bytes=%zu number=%llu",
					 PQntuples(res), der->len, (unsigned long long)number);
			ch->crl_entries = PQntuples(res);
		}
	}
	struct crl_conn *next;
	for (struct crl_conn *c = ch->conns; c; c = next) {
		next = c->next;
		if (c->state == CRL_CONN_WAITING)
			answer_crl(c);
	}
}

/* A valid GET of the CRL: served from memory while it is young, else after
 * a rebuild. A rebuild that failed is not retried for CRL_MIN_AGE_MS. */
static void serve_crl(struct crl_conn *c)
{
	struct crl_http *ch = c->ch;
	int64_t now = mono_ms();
	if (ch->crl && now - ch->crl_made_ms < CRL_MIN_AGE_MS) {
		answer_crl(c);
		return;
	}
	if (!ch->refreshing && now - ch->refresh_tried_ms < CRL_MIN_AGE_MS) {
		answer_crl(c);
		return;
	}
	c->state = CRL_CONN_WAITING;
	if (ch->refreshing)
		return;
	ch->refreshing = true;
	ch->refresh_tried_ms = now;
	/* The callback may run before pool_exec returns (database down). */
	struct pool_query *q = pool_exec(ch->srv->pool, STMT_CRL_ENTRIES, 0, NULL, NULL, NULL,
					 on_entries, ch);
	if (ch->refreshing)
		ch->refresh = q;
}

/* ------------------------------------------------------------ requests */

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool all_tchars(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)p[i]))
			return false;
	return n > 0;
}

static bool header_is(const char *name, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

/* Judges a complete request head (`len` bytes, ending in CRLF CRLF, free of
 * NUL and bare LF): 200 for a GET of the CRL, else the status to answer
 * with, and `why` its plain-text body. */
static int parse_request(const char *in, size_t len, const char **why)
{
	*why = "bad request: expected \"GET " CRL_HTTP_PATH " HTTP/1.1\" and headers\n";
	const char *end = memmem(in, len, "\r\n", 2);
	const char *sp1 = memchr(in, ' ', (size_t)(end - in));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
	if (!sp2 || !all_tchars(in, (size_t)(sp1 - in)) || sp2 == sp1 + 1)
		return 400;
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 400;
	size_t vlen = (size_t)(end - sp2 - 1);
	if (vlen != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8))) {
		*why = "bad request: only HTTP/1.0 and HTTP/1.1 are spoken here\n";
		return 400;
	}
	bool http11 = sp2[8] == '1';
	int hosts = 0;
	bool body = false;
	for (const char *line = end + 2;;) {
		const char *eol = memmem(line, len - (size_t)(line - in), "\r\n", 2);
		if (eol == line)
			break; /* the empty line: end of the head */
		if (*line == ' ' || *line == '\t') {
			*why = "bad request: folded header lines are not accepted\n";
			return 400;
		}
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || !all_tchars(line, (size_t)(colon - line))) {
			*why = "bad request: a header line is not \"Name: value\"\n";
			return 400;
		}
		for (const char *p = colon + 1; p < eol; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t') {
				*why = "bad request: control character in a header\n";
				return 400;
			}
		size_t nlen = (size_t)(colon - line);
		const char *v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		if (header_is(line, nlen, "Host"))
			hosts++;
		else if (header_is(line, nlen, "Transfer-Encoding") ||
			 (header_is(line, nlen, "Content-Length") && !(eol - v >= 1 && *v == '0' &&
								      (v + 1 == eol || v[1] == ' ' || v[1] == '\t'))))
			body = true;
		line = eol + 2;
	}
	if (hosts > 1 || (http11 && hosts == 0)) {
		*why = "bad request: an HTTP/1.1 request needs exactly one Host header\n";
		return 400;
	}
	if ((size_t)(sp1 - in) != 3 || memcmp(in, "GET", 3) != 0) {
		*why = "method not allowed: only GET " CRL_HTTP_PATH " is served here\n";
		return 405;
	}
	if (body) {
		*why = "bad request: a GET request carries no body\n";
		return 400;
	}
	size_t tlen = (size_t)(sp2 - sp1 - 1);
	if (sp1[1] != '/') {
		*why = "bad request: the target must be a path: " CRL_HTTP_PATH "\n";
		return 400;
	}
	if (tlen != strlen(CRL_HTTP_PATH) || memcmp(sp1 + 1, CRL_HTTP_PATH, tlen) != 0) {
		*why = "not found: this server publishes only " CRL_HTTP_PATH "\n";
		return 404;
	}
	return 200;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct crl_conn *c = s->data;
	if (c->state == CRL_CONN_CLOSED || nread == 0)
		return;
	if (nread < 0) {
		/* A client that half-closes after its request still gets the answer. */
		if (nread == UV_EOF &&
		    (c->state == CRL_CONN_WAITING || c->state == CRL_CONN_ANSWERING))
			uv_read_stop(s);
		else
			conn_close(c);
		return;
	}
	if (c->state == CRL_CONN_LINGERING) {
		c->lingered += (size_t)nread;
		if (c->lingered > CRL_LINGER_BYTES)
			conn_close(c);
		return;
	}
	if (c->state != CRL_CONN_READING)
		return;
	size_t from = c->in_len;
	c->in_len += (size_t)nread;
	size_t back = from > 3 ? from - 3 : 0;
	const char *end = memmem(c->in + back, c->in_len - back, "\r\n\r\n", 4);
	/* Only the head is judged: what follows it (a body) is never parsed. */
	size_t head_len = end ? (size_t)(end + 4 - c->in) : c->in_len;
	for (size_t i = from; i < head_len; i++) {
		if (c->in[i] == '\0' || (c->in[i] == '\n' && (i == 0 || c->in[i - 1] != '\r'))) {
			answer(c, 400, NULL, "bad request: lines end in CRLF; no NUL bytes\n");
			return;
		}
	}
	if (!end) {
		if (c->in_len == sizeof c->in)
			answer(c, 400, NULL, "bad request: the request head is longer than 2048 bytes\n");
		return;
	}
	const char *why;
	int status = parse_request(c->in, head_len, &why);
	if (status == 200)
		serve_crl(c);
	else
		answer(c, status, NULL, why);
}

static void reject_closed(uv_handle_t *h)
{
	free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct crl_http *ch = listener->data;
	if (status < 0) {
		log_warn("crl.accept_failed", "reason=\"%s\"", uv_strerror(status));
		return;
	}
	if (ch->nconns >= CRL_MAX_CONNS) {
		/* Accept and close at once, so the backlog does not fill up. */
		uv_tcp_t *t = malloc(sizeof *t);
		if (!t)
			return;
		uv_tcp_init(listener->loop, t);
		if (uv_accept(listener, (uv_stream_t *)t) == 0)
			log_debug("crl.refused", "reason=\"%d connections open\"", ch->nconns);
		uv_close((uv_handle_t *)t, reject_closed);
		return;
	}
	struct crl_conn *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->ch = ch;
	uv_tcp_init(listener->loop, &c->tcp);
	uv_timer_init(listener->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	ch->handles += 2;
	c->next = ch->conns;
	if (ch->conns)
		ch->conns->prev = c;
	ch->conns = c;
	ch->nconns++;
	c->state = CRL_CONN_READING;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	struct sockaddr_storage sa;
	int salen = sizeof sa;
	strcpy(c->peer, "?");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
		if (sa.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&sa, c->peer, sizeof c->peer);
		else
			uv_ip4_name((struct sockaddr_in *)&sa, c->peer, sizeof c->peer);
	}
	uv_timer_start(&c->timer, on_timeout, CRL_REQUEST_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

/* ------------------------------------------------------------ start, stop */

static bool parse_listen(const char *text, char *host, size_t cap, int *port)
{
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text)
		return false;
	const char *h = text;
	size_t hlen = (size_t)(colon - text);
	if (h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']')
			return false;
		h++;
		hlen -= 2;
	}
	if (hlen >= cap)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
		return false;
	*port = (int)p;
	return true;
}

static bool load_ca(struct crl_http *ch, const struct crm_config *cfg, char *err, size_t cap)
{
	FILE *f = fopen(cfg->crl_ca_cert, "r");
	if (!f) {
		snprintf(err, cap, "server.crl_ca_cert: cannot read %s: %s", cfg->crl_ca_cert,
			 strerror(errno));
		return false;
	}
	ch->ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!ch->ca) {
		snprintf(err, cap, "server.crl_ca_cert: %s holds no PEM certificate", cfg->crl_ca_cert);
		return false;
	}
	if (X509_check_ca(ch->ca) < 1 || ((X509_get_extension_flags(ch->ca) & EXFLAG_KUSAGE) &&
					  !(X509_get_key_usage(ch->ca) & KU_CRL_SIGN))) {
		snprintf(err, cap, "server.crl_ca_cert: %s is not a CA certificate allowed to sign"
			 " CRLs (basicConstraints CA:TRUE and keyUsage cRLSign)", cfg->crl_ca_cert);
		return false;
	}
	f = fopen(cfg->crl_ca_key, "r");
	if (!f) {
		snprintf(err, cap, "server.crl_ca_key: cannot read %s: %s", cfg->crl_ca_key,
			 strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		log_warn("crl.ca_key_exposed", "path=%s mode=%03o hint=\"chmod 600 it: crmd only"
			 " reads it\"", cfg->crl_ca_key, (unsigned)(st.st_mode & 0777));
	ch->ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!ch->ca_key) {
		snprintf(err, cap, "server.crl_ca_key: %s holds no unencrypted PEM private key",
			 cfg->crl_ca_key);
		return false;
	}
	if (X509_check_private_key(ch->ca, ch->ca_key) != 1) {
		snprintf(err, cap, "server.crl_ca_key: %s is not the key of server.crl_ca_cert %s",
			 cfg->crl_ca_key, cfg->crl_ca_cert);
		return false;
	}
	return true;
}

int crl_http_start(struct server *srv, char *err, size_t errcap)
{
	const struct crm_config *cfg = srv->cfg;
	if (!cfg->crl_listen[0])
		return 0;
	struct crl_http *ch = calloc(1, sizeof *ch);
	if (!ch) {
		snprintf(err, errcap, "out of memory");
		return -1;
	}
	/* Reachable from here on, also when starting fails. */
	srv->crl = ch;
	ch->srv = srv;
	ch->crl_entries = -1;
	if (!parse_listen(cfg->crl_listen, ch->host, sizeof ch->host, &ch->port)) {
		snprintf(err, errcap, "server.crl_listen: expected HOST:PORT (e.g. 127.0.0.1:7444),"
			 " got \"%s\"", cfg->crl_listen);
		return -1;
	}
	struct sockaddr_storage addr;
	if (uv_ip4_addr(ch->host, ch->port, (struct sockaddr_in *)&addr) != 0 &&
	    uv_ip6_addr(ch->host, ch->port, (struct sockaddr_in6 *)&addr) != 0) {
		snprintf(err, errcap, "server.crl_listen: \"%s\" is not an IP address", ch->host);
		return -1;
	}
	ERR_clear_error();
	if (!load_ca(ch, cfg, err, errcap))
		return -1;
	/* Sign once now: a key that cannot sign is a start-up error, not a 503 later. */
	struct crl_der *probe = crl_build(ch, NULL, 1);
	if (!probe) {
		snprintf(err, errcap, "server.crl_ca_key: signing a CRL with %s failed",
			 cfg->crl_ca_key);
		return -1;
	}
	crl_der_unref(probe);
	uv_tcp_init(srv->loop, &ch->listener);
	ch->listener.data = ch;
	ch->handles = 1;
	int rc = uv_tcp_bind(&ch->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ch->listener, 128, on_connection);
	if (rc != 0) {
		snprintf(err, errcap, "server.crl_listen: cannot listen on %s: %s", cfg->crl_listen,
			 uv_strerror(rc));
		return -1;
	}
	log_info("crl.listening", "host=%s port=%d path=%s", ch->host, ch->port, CRL_HTTP_PATH);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct crl_http *ch = h->data;
	ch->handles--;
	maybe_free(ch);
}

void crl_http_stop(struct server *srv)
{
	struct crl_http *ch = srv->crl;
	if (!ch)
		return;
	srv->crl = NULL;
	ch->stopping = true;
	if (ch->refresh)
		pool_forget(ch->refresh);
	ch->refresh = NULL;
	while (ch->conns)
		conn_close(ch->conns);
	uv_close((uv_handle_t *)&ch->listener, on_listener_closed);
}
