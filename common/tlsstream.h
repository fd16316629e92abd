/* TLS over a libuv TCP stream through OpenSSL memory BIOs, shared by crmd's
 * connections and the client library.
 *
 * Ciphertext read from the socket is written into the read BIO; SSL_read is
 * looped until it wants more; whatever OpenSSL puts in the write BIO (records,
 * handshake messages, alerts) is drained into uv_write after every SSL call.
 *
 * The owner embeds a struct tls_stream, sets `owner`, and is told of events
 * through `ops`. Handles are closed with tls_stream_close; the memory may be
 * freed only from ops->on_closed. */
#ifndef CRM_TLSSTREAM_H
#define CRM_TLSSTREAM_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tls_stream;

struct tls_stream_ops {
	/* The handshake completed; the stream may now carry data. */
	void (*on_handshake)(struct tls_stream *ts);
	/* Plaintext arrived. The owner may pause or close from inside. */
	void (*on_data)(struct tls_stream *ts, const uint8_t *data, size_t len);
	/* The connection failed, timed out or was closed by the peer. Called at
	 * most once, before the stream starts closing by itself. */
	void (*on_error)(struct tls_stream *ts, const char *reason);
	/* A socket write completed (optional). */
	void (*on_drain)(struct tls_stream *ts);
	/* Every handle is closed; the owner may free the stream now. */
	void (*on_closed)(struct tls_stream *ts);
};

struct tls_stream {
	uv_tcp_t tcp;
	uv_timer_t timer;           /* deadline: handshake, idle, close */
	SSL *ssl;
	BIO *rbio;                  /* ciphertext in: reads in_ptr; owned by ssl */
	BIO *wbio;                  /* ciphertext out: appends to out; owned by ssl */
	/* Ciphertext OpenSSL has not read yet: while on_read runs, a window
	 * into the loop thread's one read buffer; what is left when it
	 * returns (the owner paused) is copied to `keep`, the only input an
	 * idle stream can hold. */
	const uint8_t *in_ptr;
	size_t in_len;
	uint8_t *keep;              /* heap copy in_ptr points into, or NULL */
	/* Ciphertext OpenSSL produced, not yet handed to uv_write. The buffer
	 * goes with the write request: an idle stream holds none. */
	uint8_t *out;
	size_t out_len, out_cap;
	const struct tls_stream_ops *ops;
	void *owner;
	size_t write_queued;        /* bytes handed to uv_write, not yet written */
	int handles_open;
	bool handshake_done;
	bool paused;                /* the owner asked for no more plaintext */
	bool in_pump;
	bool closing;
	bool error_reported;
	bool reading;
	const char *deadline_what;  /* named in the timeout's error */
	char peer[64];              /* "ip:port" of the other side */
};

/* Sets up handles and the SSL object. `server_name` (client side only) is the
 * name or IP address the server certificate must match. Returns 0 or a
 * negative libuv error / -1 for an OpenSSL failure. On failure nothing needs
 * closing. */
int tls_stream_init(uv_loop_t *loop, struct tls_stream *ts, SSL_CTX *ctx, bool is_server,
		    const char *server_name, const struct tls_stream_ops *ops, void *owner);
/* Begins reading (and, on the client side, the handshake). Call after
 * accept or after the connect callback succeeded. */
int tls_stream_start(struct tls_stream *ts);
/* Encrypts `len` bytes of plaintext and sends them. */
bool tls_stream_write(struct tls_stream *ts, const uint8_t *data, size_t len);
void tls_stream_pause(struct tls_stream *ts);
void tls_stream_resume(struct tls_stream *ts);
/* (Re)arms the deadline: after `ms` without a new call, on_error("...timed
 * out") is reported and the stream closes. 0 disarms. `what` names it. */
void tls_stream_deadline(struct tls_stream *ts, uint64_t ms, const char *what);
/* Sends close_notify, lets queued writes finish (up to 2 s), then closes. */
void tls_stream_close(struct tls_stream *ts);
/* Closes at once, dropping queued output. */
void tls_stream_abort(struct tls_stream *ts);

/* Context for crmd: TLS 1.3 by default, 1.2 with AEAD suites only, no
 * compression or renegotiation. `client_ca` non-empty asks clients for a
 * certificate signed by it (optional: desk clients send none). A client
 * certificate that does not verify against it, or whose serial is in the
 * revocation list (tls_server_set_revoked), fails the handshake; until the
 * list has been set once, every client certificate does. NULL on failure
 * with a plain reason in `err`. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file,
			const char *client_ca, char *err, size_t errcap);
/* Context for clients: verifies the server against `ca_file`. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errcap);

/* ---- client certificates (store nodes and other machine clients) */

/* A client context presents this certificate (chain, PEM) and key. False
 * with a plain reason in `err`. */
bool tls_client_use_cert(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *err,
			 size_t errcap);
/* A client context also checks the server certificate against this CRL of
 * the group CA (PEM, crmctl certs crl): a revoked or an expired list fails
 * the handshake. False with a plain reason in `err`. */
bool tls_client_use_crl(SSL_CTX *ctx, const char *crl_file, char *err, size_t errcap);
/* Replaces the server context's list of revoked serials (upper-case hex as
 * tls_cert_serial_hex writes them; copied). False when out of memory, and
 * the old list stays. */
bool tls_server_set_revoked(SSL_CTX *ctx, const char *const *serials, size_t n);
/* The serial of `cert` as upper-case hex without leading zeros. */
bool tls_cert_serial_hex(X509 *cert, char *out, size_t cap);
/* The serial of the verified certificate the peer presented; false when it
 * presented none. */
bool tls_stream_peer_serial(struct tls_stream *ts, char *out, size_t cap);

#endif
