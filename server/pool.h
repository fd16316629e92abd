/* A pool of non-blocking libpq connections driven by uv_poll.
 *
 * Every database call from crmd is one prepared statement (see stmts.h) run
 * on whichever connection is free; queued calls wait in FIFO order. Each
 * statement is a single SQL function call, so it is its own transaction and
 * its result means "committed" when the callback sees success.
 *
 * When no connection is up, pool_exec answers at once through the callback
 * with code UNAVAILABLE (never blocks, never queues without bound), while
 * the pool reconnects in the background with exponential backoff.
 */
#ifndef CRM_POOL_H
#define CRM_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "crm.pb-c.h"

struct pool;
struct pool_query;

struct pool_error {
	Crm__Code code;          /* CRM__CODE__OK when there was no error */
	char sqlstate[6];
	char message[256];       /* plain words; from PG's primary message */
	char field[64];          /* from the error's COLUMN field, if set */
};

/* Called exactly once per pool_exec, unless pool_forget() came first.
 * `res` is the statement's PGRES_TUPLES_OK / PGRES_COMMAND_OK result on
 * success and NULL on error; it is freed by the pool after the callback
 * returns. `err->code` is OK on success. */
typedef void (*pool_cb)(void *arg, const PGresult *res, const struct pool_error *err);

struct pool_options {
	const char *host;
	int port;
	const char *dbname;
	const char *user;
	const char *password;
	int size;                  /* connections */
	int connect_timeout_s;
	int max_queue;             /* queued calls beyond which RESOURCE_EXHAUSTED */
	/* At most this many statements run at once, not counting those
	 * running for over POOL_SLOW_MS: 0 for no limit but `size`. See
	 * pool.c, "Admission". */
	int active_limit;
	/* Prefixes the pool's log events ("reminders" logs reminders.db.up):
	 * NULL for the request pool, whose db.up and db.down others wait for. */
	const char *name;
};

/* A statement running this long no longer counts against active_limit. */
#define POOL_SLOW_MS 20

struct pool *pool_new(uv_loop_t *loop, const struct pool_options *opt);
/* Starts connecting; returns at once. */
void pool_start(struct pool *p);
/* True when at least one connection is connected and its statements prepared. */
bool pool_ready(const struct pool *p);

/* Runs statement `stmt` (an enum stmt_id) with `nparams` text parameters; a
 * NULL value is SQL NULL. Values are copied, so the caller may free them on
 * return. Returns a handle for pool_forget, or NULL when the callback has
 * already been called (the pool is down, or the queue is full). */
struct pool_query *pool_exec(struct pool *p, int stmt, int nparams,
			     const char *const *values, const int *lengths,
			     const int *binary, pool_cb cb, void *arg);
/* The caller is going away: the statement still runs to completion (a write
 * may commit), but the callback will not be called. */
void pool_forget(struct pool_query *q);

/* Statements queued and running. */
int pool_pending(const struct pool *p);
/* Calls that had to wait for active_limit while a connection was free. */
uint64_t pool_held_back(const struct pool *p);

/* Closes every connection; `done` runs once all handles are closed. Queued
 * calls answer UNAVAILABLE. */
void pool_close(struct pool *p, void (*done)(void *arg), void *arg);

/* Maps a failed result or a broken connection to a status. Exposed for
 * tests. `res` may be NULL (connection lost: UNAVAILABLE). */
void pool_error_from_result(const PGresult *res, const char *conn_message,
			    struct pool_error *err);
/* The status for a SQLSTATE (five characters; NULL when PostgreSQL sent
 * none, e.g. libpq lost the connection: UNAVAILABLE). Exposed for tests. */
Crm__Code pool_code_for_sqlstate(const char *sqlstate);

#endif
