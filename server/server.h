/* crmd's core structures: the server, its connections and their requests.
 *
 * Data flow: tls_stream delivers plaintext -> conn.in -> frames -> Envelope
 * -> the handler table (dispatch.c) -> a handler runs prepared SQL through
 * the pool -> req_reply() packs the response into conn.out -> the flusher
 * writes every dirty connection's output once per loop pass. */
#ifndef CRM_SERVER_H
#define CRM_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "config.h"
#include "crm.pb-c.h"
#include "frame.h"
#include "pool.h"
#include "stats.h"
#include "tlsstream.h"

struct request;
struct crl_http;
struct reminders;

enum conn_state {
	CONN_HANDSHAKE,  /* TCP accepted, TLS handshake running */
	CONN_HELLO,      /* TLS up; the first frame must be a Hello */
	CONN_READY,      /* serving requests */
	CONN_CLOSING,    /* no more input is read; closing once output is written */
};

struct session {
	bool active;
	char session_id[37];
	char user_id[37];
	char username[64];
	char store_code[32];
	Crm__Role role;
};

struct conn {
	struct tls_stream ts;
	struct server *srv;
	struct conn *prev, *next;      /* the server's list of connections */
	struct conn *dirty_next;       /* the flusher's list, when `dirty` */
	bool dirty;
	enum conn_state state;
	uint64_t number;               /* for logs */
	struct bytebuf in;             /* plaintext read, not yet parsed */
	struct bytebuf out;            /* frames packed, not yet encrypted */
	struct request *requests;      /* in flight, newest first */
	int in_flight;
	uint64_t frame_started_ms;     /* loop time of a partial frame's first byte; 0: none */
	bool output_stalled;           /* reading paused: output over max_output_bytes */
	bool in_input;                 /* inside process_input (conn.c) */
	bool input_again;              /* called again meanwhile: go round once more */
	struct attach_upload *uploads; /* attachment uploads in progress (h_attach.c) */
	bool subscribed;               /* asked for reminders (reminders.c holds it) */
	struct session session;
};

struct request {
	struct conn *conn;             /* NULL once the connection is gone */
	struct request *prev, *next;
	uint64_t id;                   /* the client's envelope id */
	const struct handler *h;
	Crm__Envelope *env;            /* the decoded request */
	uint64_t started_ns;
	struct pool_query *query;      /* the statement running for it, if any */
	bool in_worker;                /* a thread-pool job holds it */
	struct request *hash_next;     /* queue of logins waiting for a hash slot */
	bool hash_queued;
	/* followup.add: waiting to be recorded, or in the group statement
	 * running for it (h_followup.c, "Together"). */
	struct request *followup_next;
	bool followup_queued;
	struct followup_group *followup_group;
	int64_t followup_write_at;
	/* Streams: frames the client still allows, and where the next page starts. */
	uint32_t credit;
	bool stream_waiting;           /* out of credit, waiting for StreamCredit */
	char cursor[37];
	uint32_t remaining;            /* 0 means no limit */
	uint32_t page_size;
	uint64_t stream_offset;        /* attachment.get: where the next frame starts */
	/* Login state. */
	uv_work_t work;
	char *password;
	char *password_hash;
	bool password_ok;
	bool user_known;
	char token[65];
	char user_id[37];
	Crm__User *user;
	/* A handler's own state across its statements; req_free calls
	 * hctx_free on it (h_template.c's sends). */
	void *hctx;
	void (*hctx_free)(void *hctx);
};

typedef void (*handler_fn)(struct request *r);

/* The customer data a request reaches. A role never reaches past its own:
 * a consultant their own relations and the store pool, other store roles
 * their store, group roles the group (DESIGN.md "Security"). */
enum handler_scope {
	SCOPE_NONE = 0,                /* no customer data: the caller's own session */
	SCOPE_OWN,                     /* own relations (and the store pool) */
	SCOPE_STORE,                   /* the caller's store */
	SCOPE_GROUP,                   /* every store */
	/* As far as the caller's role reaches, except that a consultant reaches
	 * only the relations they own, not the store pool (a pool lead is
	 * handed over to them first). Not an order: a row's value, never a
	 * role's. */
	SCOPE_OWNED,
};

/* One row per request type: the one list of what the server does. */
struct handler {
	Crm__Envelope__BodyCase body;
	const char *name;              /* for logs and stats, e.g. "customer.create" */
	bool needs_session;            /* must be logged in */
	uint32_t roles;                /* allowed roles (bit per Crm__Role); 0: any */
	bool streamed;                 /* answers with several frames */
	handler_fn fn;
	/* Permission table (docs/PERMISSIONS.md, printed by crmd --permissions). */
	enum handler_scope scope;      /* widest data a caller reaches; 0: none */
	const char *summary;           /* one line: what the request does */
	/* Streams: sends the next frame once the client gave credit (conn.c). */
	handler_fn more;
};

#define ROLE_BIT(r) (1u << (r))
#define ROLES_ALL 0u

struct server {
	uv_loop_t *loop;
	const struct crm_config *cfg;
	SSL_CTX *ssl_ctx;
	struct pool *pool;
	uv_tcp_t listener;
	struct crl_http *crl;          /* the CRL listener; NULL unless server.crl_listen */
	struct reminders *reminders;   /* pushes tasks falling due (reminders.c) */
	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_prepare_t flush_prepare;
	uv_check_t flush_check;
	uv_timer_t drain_timer;
	uv_timer_t trim_timer;         /* gives freed memory back after closes */
	int conns_peak;                /* most connections open since the last trim */
	struct conn *conns;
	struct conn *dirty;
	int nconns;
	uint64_t conn_counter;
	bool draining;
	int hashes_running;
	struct request *hash_queue, *hash_queue_tail;
	int hash_queued;
	int audit_denied_pending;      /* denial audit writes not yet done */
	/* followup.add statements running, at most followups_running_max
	 * (the pool's active limit), and the follow-ups waiting to go with
	 * the next one (h_followup.c, "Together"). */
	int followups_running;
	int followups_running_max;
	struct request *followup_queue, *followup_queue_tail;
	struct stats stats;
	int64_t started_at_ms;
	int exit_code;
};

/* server.c */
int server_start(struct server *srv, uv_loop_t *loop, const struct crm_config *cfg, char *err,
		 size_t errcap);
void server_drain(struct server *srv, const char *why);
void server_mark_dirty(struct conn *c);
/* A connection closed (conn.c). */
void server_conn_closed(struct server *srv);

/* conn.c */
void conn_accept(struct server *srv);
void conn_push_event(struct conn *c, const char *kind, const char *text);
/* Called when a request ends; may resume reading or finish a drain. */
void conn_request_done(struct conn *c);
void conn_close_all(struct server *srv);
/* Queues a response frame. */
void conn_send_response(struct conn *c, Crm__Envelope *env);
/* Writes what is queued now (the flusher calls it once per loop pass). */
void conn_flush(struct conn *c);
/* An error frame, then the connection closes. */
void conn_fail(struct conn *c, Crm__Code code, const char *message);
/* Answers the hello and makes the connection ready. */
void conn_hello_reply(struct conn *c, Crm__HelloReply *hr);

/* dispatch.c */
const struct handler *handler_for(Crm__Envelope__BodyCase body);
size_t handler_count(void);
const struct handler *handler_at(size_t i);
void dispatch(struct conn *c, Crm__Envelope *env);
/* Prints the permission table as Markdown (docs/PERMISSIONS.md). */
void handlers_print_permissions(FILE *out);
/* Appends a response with the request's id and ends the request. */
void req_reply(struct request *r, Crm__Envelope *resp);
/* Ends the request with an error status; `field` may be NULL. */
void req_fail(struct request *r, Crm__Code code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void req_fail_db(struct request *r, const struct pool_error *err);
/* A stream frame; the request stays open when `more`. Uses one credit. */
void req_stream_frame(struct request *r, Crm__Envelope *resp, bool more);
/* Runs a statement for the request; `cb` gets the request as `arg`. */
void req_db(struct request *r, int stmt, int nparams, const char *const *values,
	    const int *lengths, const int *binary, pool_cb cb);
/* Frees a request that has left its connection. */
void req_free(struct request *r);
/* The connection is gone: forget queries, orphan thread-pool work. */
void req_detach(struct request *r);
struct request *req_find(struct conn *c, uint64_t id);

/* Handler functions (h_*.c). */
void h_login(struct request *r);
void h_resume(struct request *r);
void h_logout(struct request *r);
void h_whoami(struct request *r);
void h_customer_create(struct request *r);
void h_customer_get(struct request *r);
void h_customer_list(struct request *r);
void h_customer_list_more(struct request *r);
void h_customer_update(struct request *r);
void h_relation_update(struct request *r);
void h_level_set(struct request *r);
void h_handover(struct request *r);
void h_customer_card(struct request *r);
/* The connection of a follow-up waiting or being recorded is gone. */
void followup_forget(struct request *r);
/* Attachments of follow-ups (h_attach.c). */
void h_attach_begin(struct request *r);
void h_attach_chunk(struct request *r);
void h_attach_commit(struct request *r);
void h_attach_get(struct request *r);
void h_attach_get_more(struct request *r);
void h_attach_list(struct request *r);
/* The connection is closing: its uploads in progress are deleted. */
void attach_conn_closed(struct conn *c);
/* Privacy (h_privacy.c). */
void h_customer_reveal(struct request *r);
void h_customer_export(struct request *r);
void h_customer_erase(struct request *r);
void h_stats(struct request *r);
void h_ping(struct request *r);
/* A login waiting for a hash slot; the slot frees when it finishes. */
void auth_hash_slot_freed(struct server *srv);
void h_cert_login(struct request *r);
/* The peer's address as text, for the audit log and login throttling. */
void auth_peer_ip(const struct conn *c, char *out, size_t cap);
void auth_init(void);
/* Loads revoked client certificates and keeps them fresh (h_auth.c). */
void auth_certs_start(struct server *srv);
void auth_certs_stop(void);
/* After-sales (h_service.c): the daily run of maintenance reminders and
 * value classes, every service.daily_run_s (0: off). */
void service_timer_start(struct server *srv);
void service_timer_stop(void);
/* Records a permission denial in the audit log, without delaying the
 * reply (h_audit.c): `sql_message` NULL for a refusal by the handler
 * table, else the message of the DC403 a SQL function raised. */
void audit_denied(struct conn *c, const char *request, const char *sql_message);

/* Shared result readers (h_common.c). */
void row_to_user(const PGresult *res, int row, int col, Crm__User *u);

/* Allocations that live until a reply has been packed: the readers below
 * put lists (phones, tags, intents) there. Zero-initialise, then free once. */
struct scratch {
	void **ptrs;
	size_t n, cap;
	bool oom;
};
void *scratch_alloc(struct scratch *s, size_t size); /* zeroed; NULL when out of memory */
void scratch_free(struct scratch *s);

/* Read the CUSTOMER / RELATION columns of stmts.h starting at `col`. False
 * when out of memory. */
#define CUSTOMER_NCOLS 20
#define RELATION_NCOLS 21
bool row_to_customer(const PGresult *res, int row, int col, Crm__Customer *cu,
		     struct scratch *s);
bool row_to_relation(const PGresult *res, int row, int col, Crm__Relation *rel,
		     struct scratch *s);
/* A bigint column as int64 (0 when NULL). */
int64_t col_i64(const PGresult *res, int row, int col);
Crm__Role role_from_name(const char *name);
const char *role_name(Crm__Role role);
int64_t now_ms(void);
/* Shared by the handlers (h_common.c). */
/* s is one of the NULL-terminated list (NULL counts as ""). */
bool one_of(const char *s, const char *const *list);
/* INVALID_ARGUMENT naming `field` and false unless `id` is a UUID (or
 * empty and not required). */
bool uuid_ok(struct request *r, const char *field, const char *id, bool required);
/* INVALID_ARGUMENT with text_field_ok's reason and false unless `s` is a
 * valid text field of at most `max` characters. */
bool text_ok(struct request *r, const char *field, const char *s, size_t max, bool required);
void fmt_i64(char *buf, size_t cap, int64_t v);
/* Ends the request with the database error and returns true, or returns
 * false when there is none (and the request's query is over either way). */
bool fail_on_error(struct request *r, const struct pool_error *err);
/* Rows of the FOLLOWUP and TASK columns (stmts.h), from column `col`;
 * strings point into `res`. */
void row_to_followup(const PGresult *res, int row, int col, Crm__Followup *f);
void row_to_task(const PGresult *res, int row, int col, Crm__Task *t);
/* The task's compliance as of now, for replies outside a list. */
void task_outcome_now(Crm__Task *t);

#endif
