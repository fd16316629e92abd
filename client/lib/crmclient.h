/* The client library: one TLS connection to crmd, the hello, and requests.
 *
 * Calls are synchronous for programs like crm (crmc_call), and pipelined
 * for tests and benchmarks (crmc_send many, then crmc_recv each). Frames
 * arrive in the order the server sends them, which need not be the order of
 * the requests. The library sets SIGPIPE to be ignored: a closed connection
 * is reported as an error, never as a signal. */
#ifndef CRM_CLIENT_H
#define CRM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crm.pb-c.h"

struct crmc;

struct crmc_options {
	const char *server;        /* "host:port" */
	const char *ca_file;       /* PEM file of the CA that signed the server */
	const char *client_name;   /* sent in the hello, e.g. "crm" */
	int timeout_ms;            /* connect + handshake + hello; 0: 10 s */
	uint32_t protocol_version; /* 0: the one this library speaks */
	/* A client certificate from the group CA and its key (PEM), for store
	 * nodes and other machine clients: crmd binds such a connection to the
	 * certificate's store node without a login. NULL: none. */
	const char *cert_file;
	const char *key_file;
	/* The group CA's CRL (PEM, crmctl certs crl): a server certificate listed
	 * there is refused. NULL: no revocation check of the server. */
	const char *crl_file;
};

/* Connects, completes TLS and the hello. NULL on failure, with a plain
 * reason in `err`; *code (if not NULL) gets the status code, or UNAVAILABLE
 * when the server could not be reached. */
struct crmc *crmc_connect(const struct crmc_options *opt, Crm__Code *code, char *err,
			  size_t errcap);
void crmc_close(struct crmc *c);

/* The server's hello reply. */
const Crm__HelloReply *crmc_server_hello(const struct crmc *c);

/* Queues a request; gives it the next id when env->id is 0. Returns the
 * id. Bytes leave when the library next waits (recv/call) or on flush. */
uint64_t crmc_send(struct crmc *c, Crm__Envelope *env);
/* Queues raw bytes, for tests of malformed input. */
bool crmc_send_raw(struct crmc *c, const void *data, size_t len);
bool crmc_flush(struct crmc *c);

/* The next frame from the server, whatever its id. NULL on timeout or when
 * the connection is gone (reason in err). Free with
 * crm__envelope__free_unpacked(env, NULL). */
Crm__Envelope *crmc_recv(struct crmc *c, int timeout_ms, char *err, size_t errcap);

/* Sends `req` and waits for the frame with its id; frames for other ids are
 * kept for crmc_recv. Grants stream credit automatically is NOT done here:
 * use crmc_stream_credit. */
Crm__Envelope *crmc_call(struct crmc *c, Crm__Envelope *req, int timeout_ms, char *err,
			 size_t errcap);
/* Like crmc_recv, but only the frame for `id`. */
Crm__Envelope *crmc_wait(struct crmc *c, uint64_t id, int timeout_ms, char *err, size_t errcap);

/* Envelopes unpacked from now on come from `a` (NULL: malloc), and are
 * freed with crm__envelope__free_unpacked(env, a). Set it while no reply
 * is waiting. For a load generator that would otherwise spend its time in
 * malloc and free on every reply (tests/bench/crm-bench). */
void crmc_set_allocator(struct crmc *c, ProtobufCAllocator *a);

/* Lets the stream `id` send `frames` more frames. */
void crmc_stream_credit(struct crmc *c, uint64_t id, uint32_t frames);

bool crmc_is_open(const struct crmc *c);

/* Status of a response; OK when absent. */
Crm__Code crmc_status(const Crm__Envelope *env);
const char *crmc_status_message(const Crm__Envelope *env);
const char *crmc_code_name(Crm__Code code);

#endif
