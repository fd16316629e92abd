/* The PostgreSQL connection pool: see pool.h for the contract.
 *
 * Each connection is a small state machine driven by one uv_poll_t on its
 * libpq socket and one uv_timer_t (connect timeout, reconnect backoff):
 *
 *   DOWN -> CONNECTING -> PREPARING -> IDLE <-> BUSY
 *     ^         |            |          |        |
 *     +---------+------------+----------+--------+   on any failure, after
 *                                                    a backoff delay
 *
 * Admission: with active_limit set, a queued call waits, even with a
 * connection idle, while that many statements started less than
 * POOL_SLOW_MS ago are running. Desk requests are short and use the CPU
 * all along; more of them at once than the database host has cores only
 * adds switching between backends and waits on the same locks (the
 * outbox counter), so each takes longer and the slowest much longer. A
 * statement past POOL_SLOW_MS (a report, a statement waiting on a lock)
 * stops counting, so it never holds the short ones back while a
 * connection is free; the pool's timer dispatches again when the oldest
 * counted statement reaches that age.
 *
 * Rules a reader must not break:
 *   - PQsocket() may change across PQconnectPoll() calls and reconnects.
 *     A poll handle is only ever closed, never re-pointed: conn_watch()
 *     closes the old one and creates the new one from the old one's close
 *     callback, so no handle is re-initialised while closing and no fd is
 *     watched twice.
 *   - The poll is closed before PQfinish(), while its fd is still open, so
 *     libuv can drop it from epoll.
 *   - User callbacks may call pool_exec() or pool_close() re-entrantly. Code
 *     that calls back into the user does so last and touches nothing
 *     afterwards except through a fresh look at the pool's state. Memory is
 *     freed only after every handle's close callback, so the pool stays valid
 *     until the loop turns.
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "stmts.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000          /* back within 2 s of PostgreSQL's return */
#define DEFAULT_MAX_QUEUE 1024      /* when pool_options.max_queue <= 0 */
#define DEFAULT_CONNECT_TIMEOUT_S 5
#define UNAVAILABLE_MESSAGE "database unavailable, retry later"

enum conn_state {
	CONN_DOWN,       /* no PGconn; the timer (if running) starts a reconnect */
	CONN_CONNECTING, /* PQconnectPoll under way; the timer bounds it */
	CONN_PREPARING,  /* connected; PQsendPrepare of stmt_defs[prep_next] in flight */
	CONN_IDLE,       /* connected, prepared, nothing running */
	CONN_BUSY,       /* connected, prepared, running `q` */
	CONN_CLOSED,     /* pool_close ran; handles closing or closed */
};

struct pool_query {
	struct pool_query *next;       /* FIFO link while queued */
	int stmt;
	int nparams;
	pool_cb cb;                    /* NULL once forgotten */
	void *arg;
	bool in_exec;                  /* pool_exec has not returned yet */
	bool answered;                 /* callback ran during pool_exec */
	bool held;                     /* waited for active_limit (counted once) */
	const char **values;           /* copies, stored after the struct */
	int *lengths;
	int *formats;
};

struct pool_conn {
	struct pool *pool;
	int index;
	enum conn_state state;
	PGconn *pg;
	uv_poll_t *poll;        /* watches poll_fd; NULL when none */
	int poll_fd;
	ino_t poll_ino;         /* tells a new socket that reused the fd number */
	int poll_events;        /* events the poll is started with */
	int want_events;        /* what libpq needs; re-applied after a close */
	bool poll_closing;      /* the old poll's close callback is pending */
	uv_timer_t timer;
	uint64_t backoff_ms;    /* delay before the next reconnect */
	bool failing;           /* failed since it was last up: log quietly */
	int prep_next;
	PGresult *result;       /* the result of the statement in flight */
	struct pool_query *q;   /* BUSY: the call being run */
	uint64_t started_ms;    /* BUSY: loop time the call was sent */
};

struct pool {
	uv_loop_t *loop;
	char *host, *dbname, *user, *password;
	char port[16];
	char name[24];                    /* log prefix; "" for the request pool */
	int connect_timeout_s;
	int max_queue;
	int size;
	int active_limit;                 /* 0: none (see "Admission" above) */
	uv_timer_t admit_timer;           /* dispatches when a statement turns slow */
	struct pool_conn *conns;
	struct pool_query *head, *tail;   /* waiting calls, oldest first */
	int queued;
	int running;
	uint64_t held_back;               /* calls that waited for active_limit */
	bool started;
	bool closing;
	int open_handles;
	void (*done)(void *arg);
	void *done_arg;
};

static void conn_connect(struct pool_conn *c);
static void conn_fail(struct pool_conn *c, const char *reason);
static void pool_dispatch(struct pool *p);
static void on_timer(uv_timer_t *t);

/* ------------------------------------------------------------ errors */

Crm__Code pool_code_for_sqlstate(const char *s)
{
	if (!s || strlen(s) != 5)
		return CRM__CODE__UNAVAILABLE;
	static const struct {
		const char *state;
		Crm__Code code;
	} exact[] = {
		{"DC400", CRM__CODE__INVALID_ARGUMENT},
		{"DC401", CRM__CODE__UNAUTHENTICATED},
		{"DC403", CRM__CODE__PERMISSION_DENIED},
		{"DC404", CRM__CODE__NOT_FOUND},
		{"DC409", CRM__CODE__CONFLICT},
		{"DC410", CRM__CODE__ALREADY_EXISTS},
		{"23505", CRM__CODE__ALREADY_EXISTS},
		{"42501", CRM__CODE__PERMISSION_DENIED},
		{"57P01", CRM__CODE__UNAVAILABLE},   /* admin shutdown */
		{"57P02", CRM__CODE__UNAVAILABLE},   /* crash shutdown */
		{"57P03", CRM__CODE__UNAVAILABLE},   /* cannot connect now */
		{"40001", CRM__CODE__UNAVAILABLE},   /* serialization failure */
		{"40P01", CRM__CODE__UNAVAILABLE},   /* deadlock detected */
	};
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (strcmp(s, exact[i].state) == 0)
			return exact[i].code;
	if (!strncmp(s, "22", 2) || !strncmp(s, "23", 2))
		return CRM__CODE__INVALID_ARGUMENT;
	if (!strncmp(s, "08", 2) || !strncmp(s, "53", 2))
		return CRM__CODE__UNAVAILABLE;
	return CRM__CODE__INTERNAL;
}

/* Copies the first line of `s` into `out`. */
static void copy_line(char *out, size_t cap, const char *s)
{
	size_t n = s ? strcspn(s, "\n") : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, s, n);
	out[n] = '\0';
}

void pool_error_from_result(const PGresult *res, const char *conn_message,
			    struct pool_error *err)
{
	memset(err, 0, sizeof *err);
	if (!res) {
		err->code = CRM__CODE__UNAVAILABLE;
		copy_line(err->message, sizeof err->message, UNAVAILABLE_MESSAGE);
		return;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		err->code = CRM__CODE__OK;
		return;
	}
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	err->code = pool_code_for_sqlstate(state);
	copy_line(err->sqlstate, sizeof err->sqlstate, state);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (!msg || !*msg)
		msg = conn_message;
	if (!msg || !*msg)
		msg = err->code == CRM__CODE__UNAVAILABLE ? UNAVAILABLE_MESSAGE
							  : "database error";
	copy_line(err->message, sizeof err->message, msg);
	copy_line(err->field, sizeof err->field, PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
}

/* ------------------------------------------------------------ calls */

static struct pool_query *query_new(int stmt, int n, const char *const *values,
				    const int *lengths, const int *binary)
{
	size_t bytes = 0;
	for (int i = 0; i < n; i++) {
		if (!values || !values[i])
			continue;
		bool bin = binary && binary[i];
		bytes += (bin ? (size_t)(lengths ? lengths[i] : 0) : strlen(values[i])) + 1;
	}
	size_t head = sizeof(struct pool_query) + (size_t)n * sizeof(char *) +
		      2 * (size_t)n * sizeof(int);
	struct pool_query *q = calloc(1, head + bytes);
	if (!q)
		return NULL;
	q->stmt = stmt;
	q->nparams = n;
	q->values = (const char **)(q + 1);
	q->lengths = (int *)(q->values + n);
	q->formats = q->lengths + n;
	char *data = (char *)(q->formats + n);
	for (int i = 0; i < n; i++) {
		if (!values || !values[i])
			continue;
		bool bin = binary && binary[i];
		size_t len = bin ? (size_t)(lengths ? lengths[i] : 0) : strlen(values[i]);
		memcpy(data, values[i], len);
		data[len] = '\0';
		q->values[i] = data;
		q->lengths[i] = (int)len;
		q->formats[i] = bin ? 1 : 0;
		data += len + 1;
	}
	return q;
}

/* Runs the callback (unless forgotten) and frees the call. */
static void query_answer(struct pool_query *q, const PGresult *res,
			 const struct pool_error *err)
{
	if (q->cb)
		q->cb(q->arg, res, err);
	if (q->in_exec)
		q->answered = true;    /* pool_exec frees it and returns NULL */
	else
		free(q);
}

static void query_answer_code(struct pool_query *q, Crm__Code code, const char *message)
{
	struct pool_error err;
	memset(&err, 0, sizeof err);
	err.code = code;
	copy_line(err.message, sizeof err.message, message);
	query_answer(q, NULL, &err);
}

/* Answers every queued call with `code`. The queue is detached first, so a
 * callback that calls pool_exec cannot add to the list being answered. */
static void fail_queued(struct pool *p, Crm__Code code, const char *message)
{
	struct pool_query *q = p->head;
	p->head = p->tail = NULL;
	p->queued = 0;
	while (q) {
		struct pool_query *next = q->next;
		query_answer_code(q, code, message);
		q = next;
	}
}

/* ------------------------------------------------------------ handles */

static void pool_maybe_done(struct pool *p)
{
	if (!p->closing || p->open_handles > 0)
		return;
	void (*done)(void *) = p->done;
	void *arg = p->done_arg;
	free(p->conns);
	free(p->host);
	free(p->dbname);
	free(p->user);
	free(p->password);
	free(p);
	if (done)
		done(arg);
}

static int conn_watch(struct pool_conn *c, int events);

static void on_poll_closed(uv_handle_t *h)
{
	struct pool_conn *c = h->data;
	struct pool *p = c->pool;
	free(h);
	c->poll_closing = false;
	p->open_handles--;
	if (p->closing) {
		pool_maybe_done(p);
		return;
	}
	if (c->pg && c->want_events && conn_watch(c, c->want_events) != 0)
		conn_fail(c, "cannot watch the database socket");
}

static void poll_close(struct pool_conn *c)
{
	if (!c->poll)
		return;
	uv_close((uv_handle_t *)c->poll, on_poll_closed);
	c->poll = NULL;
	c->poll_closing = true;
	c->poll_fd = -1;
	c->poll_events = 0;
}

static ino_t socket_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Makes the connection's poll watch `events` on the current PQsocket. If the
 * socket changed, the old poll is closed and the new one is created from
 * its close callback. Returns 0 or a libuv error. */
static int conn_watch(struct pool_conn *c, int events)
{
	c->want_events = events;
	int fd = c->pg ? PQsocket(c->pg) : -1;
	if (c->poll) {
		bool same = fd == c->poll_fd;
		/* While connecting libpq may close its socket and open another
		 * that gets the same number; epoll forgot the old one. */
		if (same && c->state == CONN_CONNECTING)
			same = socket_ino(fd) == c->poll_ino;
		if (!same)
			poll_close(c);
	}
	if (c->poll_closing)
		return 0;
	if (fd < 0)
		return events ? UV_EBADF : 0;
	if (!c->poll) {
		if (!events)
			return 0;
		uv_poll_t *h = malloc(sizeof *h);
		if (!h)
			return UV_ENOMEM;
		int rc = uv_poll_init(c->pool->loop, h, fd);
		if (rc) {
			free(h);
			return rc;
		}
		h->data = c;
		c->pool->open_handles++;
		c->poll = h;
		c->poll_fd = fd;
		c->poll_ino = socket_ino(fd);
		c->poll_events = 0;
	}
	if (events != c->poll_events) {
		int rc = events ? uv_poll_start(c->poll, events, on_poll) : uv_poll_stop(c->poll);
		if (rc)
			return rc;
		c->poll_events = events;
	}
	return 0;
}

/* ------------------------------------------------------------ connections */

static void conn_teardown(struct pool_conn *c)
{
	poll_close(c);            /* before PQfinish closes the fd */
	c->want_events = 0;
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	PQclear(c->result);
	c->result = NULL;
	uv_timer_stop(&c->timer);
}

static void log_db(enum log_level level, const char *event, const struct pool_conn *c,
		   const char *reason, uint64_t retry_ms)
{
	char host[160], why[300], named[64];
	if (c->pool->name[0]) {
		snprintf(named, sizeof named, "%s.%s", c->pool->name, event);
		event = named;
	}
	log_quote(host, sizeof host, c->pool->host ? c->pool->host : "");
	if (reason)
		log_quote(why, sizeof why, reason);
	if (reason)
		log_event(level, event, "conn=%d host=%s port=%s reason=%s retry_ms=%llu",
			  c->index, host, c->pool->port, why, (unsigned long long)retry_ms);
	else
		log_event(level, event, "conn=%d host=%s port=%s db=%s", c->index, host,
			  c->pool->port, c->pool->dbname ? c->pool->dbname : "");
}

bool pool_ready(const struct pool *p)
{
	for (int i = 0; i < p->size; i++)
		if (p->conns[i].state == CONN_IDLE || p->conns[i].state == CONN_BUSY)
			return true;
	return false;
}

/* The connection broke or could not be made: answer its call UNAVAILABLE,
 * schedule a reconnect, and if no connection is left up, answer everything
 * queued UNAVAILABLE too (a queue with no connection to drain it would only
 * turn into timeouts). */
static void conn_fail(struct pool_conn *c, const char *reason)
{
	struct pool *p = c->pool;
	char why[256];
	copy_line(why, sizeof why, reason && *reason ? reason : "connection lost");
	bool was_up = c->state == CONN_IDLE || c->state == CONN_BUSY;
	struct pool_query *q = c->q;
	c->q = NULL;
	if (q)
		p->running--;
	conn_teardown(c);
	c->state = CONN_DOWN;

	uint64_t delay = c->backoff_ms;
	c->backoff_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	uv_timer_start(&c->timer, on_timer, delay, 0);
	/* One warning per outage; the retries behind it only at debug level. */
	if (was_up || !c->failing)
		log_db(LOG_WARN, "db.down", c, why, delay);
	else
		log_db(LOG_DEBUG, "db.backoff", c, why, delay);
	c->failing = true;

	if (q) {
		struct pool_error err;
		pool_error_from_result(NULL, why, &err);
		query_answer(q, NULL, &err);
	}
	if (!p->closing && !pool_ready(p))
		fail_queued(p, CRM__CODE__UNAVAILABLE, UNAVAILABLE_MESSAGE);
}

/* Sends what libpq has buffered and watches for what comes next: always
 * readable (results, or the server going away), writable while libpq still
 * holds unsent bytes. False when the connection failed. */
static bool conn_flush_and_watch(struct pool_conn *c)
{
	int r = PQflush(c->pg);
	if (r < 0) {
		conn_fail(c, PQerrorMessage(c->pg));
		return false;
	}
	if (conn_watch(c, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) != 0) {
		conn_fail(c, "cannot watch the database socket");
		return false;
	}
	return true;
}

static void conn_send_prepare(struct pool_conn *c)
{
	const struct stmt_def *d = &stmt_defs[c->prep_next];
	if (!PQsendPrepare(c->pg, d->name, d->sql, d->nparams, NULL)) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	conn_flush_and_watch(c);
}

static void on_notice(void *arg, const char *message)
{
	struct pool_conn *c = arg;
	char msg[300];
	copy_line(msg, sizeof msg, message);
	char q[320];
	log_debug("db.notice", "conn=%d message=%s", c->index, log_quote(q, sizeof q, msg));
}

static void conn_connected(struct pool_conn *c)
{
	if (PQsetnonblocking(c->pg, 1) != 0) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeProcessor(c->pg, on_notice, c);
	c->state = CONN_PREPARING;
	c->prep_next = 0;
	conn_send_prepare(c);
}

static void conn_up(struct pool_conn *c)
{
	uv_timer_stop(&c->timer);
	c->state = CONN_IDLE;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->failing = false;
	log_db(LOG_INFO, "db.up", c, NULL, 0);
	/* Stay readable while idle to notice the server going away. */
	if (conn_watch(c, UV_READABLE) != 0) {
		conn_fail(c, "cannot watch the database socket");
		return;
	}
	pool_dispatch(c->pool);
}

static void conn_connect(struct pool_conn *c)
{
	struct pool *p = c->pool;
	const char *keys[] = {"host", "port", "dbname", "user", "password",
			      "application_name", "client_encoding", "keepalives_idle",
			      "keepalives_interval", "keepalives_count", NULL};
	/* crmd/PID: pg_stat_activity tells one crmd's sessions from another's. */
	char app[32];
	snprintf(app, sizeof app, "crmd/%ld", (long)getpid());
	const char *vals[] = {p->host, p->port, p->dbname, p->user, p->password,
			      app, "UTF8", "30", "10", "3", NULL};
	c->pg = PQconnectStartParams(keys, vals, 0);
	c->state = CONN_CONNECTING;
	if (!c->pg) {
		conn_fail(c, "out of memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	uv_timer_start(&c->timer, on_timer, (uint64_t)p->connect_timeout_s * 1000, 0);
	/* libpq's rule: before the first PQconnectPoll, wait for writable. */
	if (conn_watch(c, UV_WRITABLE) != 0)
		conn_fail(c, "cannot watch the database socket");
}

static void conn_continue_connect(struct pool_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		if (conn_watch(c, UV_READABLE) != 0)
			conn_fail(c, "cannot watch the database socket");
		return;
	case PGRES_POLLING_WRITING:
		if (conn_watch(c, UV_WRITABLE) != 0)
			conn_fail(c, "cannot watch the database socket");
		return;
	case PGRES_POLLING_OK:
		conn_connected(c);
		return;
	default:
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
}

/* The timer: reconnect when DOWN, give up a connect that takes too long. */
static void on_timer(uv_timer_t *t)
{
	struct pool_conn *c = t->data;
	if (c->pool->closing)
		return;
	if (c->state == CONN_DOWN)
		conn_connect(c);
	else if (c->state == CONN_CONNECTING || c->state == CONN_PREPARING)
		conn_fail(c, "timed out connecting");
}

/* A statement (prepare or call) has returned all its results. */
static void conn_statement_done(struct pool_conn *c)
{
	struct pool *p = c->pool;
	PGresult *res = c->result;
	c->result = NULL;

	if (c->state == CONN_PREPARING) {
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st != PGRES_COMMAND_OK) {
			char why[300];
			snprintf(why, sizeof why, "preparing %s: %s", stmt_defs[c->prep_next].name,
				 res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
			PQclear(res);
			conn_fail(c, why);
			return;
		}
		PQclear(res);
		if (++c->prep_next < STMT__COUNT)
			conn_send_prepare(c);
		else
			conn_up(c);
		return;
	}

	struct pool_query *q = c->q;
	c->q = NULL;
	p->running--;
	c->state = CONN_IDLE;
	bool broken = PQstatus(c->pg) == CONNECTION_BAD;
	char conn_msg[256];
	copy_line(conn_msg, sizeof conn_msg, PQerrorMessage(c->pg));
	if (broken)
		conn_fail(c, conn_msg);
	else if (conn_watch(c, UV_READABLE) != 0)
		conn_fail(c, "cannot watch the database socket");

	struct pool_error err;
	pool_error_from_result(res, conn_msg, &err);
	if (err.code == CRM__CODE__INTERNAL) {
		char m[300];
		log_warn("db.error", "stmt=%s sqlstate=%s message=%s", stmt_defs[q->stmt].name,
			 err.sqlstate, log_quote(m, sizeof m, err.message));
	}
	/* The next call first: PostgreSQL runs it while the caller turns this
	 * result into its answer. */
	pool_dispatch(p);
	query_answer(q, err.code == CRM__CODE__OK ? res : NULL, &err);
	PQclear(res);
}

/* Socket activity on a connected connection. */
static void conn_io(struct pool_conn *c, int events)
{
	if ((events & UV_WRITABLE) && PQflush(c->pg) < 0) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	if (c->state == CONN_IDLE) {
		PGnotify *n;
		while ((n = PQnotifies(c->pg)) != NULL)
			PQfreemem(n);
		if (PQstatus(c->pg) == CONNECTION_BAD)
			conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			conn_statement_done(c);
			return;
		}
		ExecStatusType st = PQresultStatus(r);
		bool is_error = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
		if (!c->result || is_error) {
			PQclear(c->result);
			c->result = r;
		} else {
			PQclear(r);
		}
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	conn_flush_and_watch(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pool_conn *c = h->data;
	if (status < 0) {
		/* libuv reports POLLERR this way, and has stopped the handle
		 * before calling: forget what it watched, or the next
		 * conn_watch for the same events would change nothing and
		 * this connection would never be heard from again. It
		 * happens when PostgreSQL stops at once: the backend sends
		 * a WARNING and resets the connection, libpq reads the
		 * WARNING and has not yet seen the reset, and the connection
		 * looked alive, unwatched, for as long as the outage. */
		c->poll_events = 0;
		log_debug("db.poll_error", "conn=%d state=%d status=%s", c->index, (int)c->state,
			  uv_err_name(status));
		events = UV_READABLE | UV_WRITABLE;    /* let libpq find the error */
	}
	switch (c->state) {
	case CONN_CONNECTING:
		conn_continue_connect(c);
		break;
	case CONN_PREPARING:
	case CONN_IDLE:
	case CONN_BUSY:
		conn_io(c, events);
		break;
	default:
		break;
	}
	/* Still connected (libpq found nothing wrong) and not yet watched
	 * again by what ran above: watch what was asked for last. */
	if (status < 0 && c->poll == h && c->pg && c->poll_events == 0 && c->want_events &&
	    conn_watch(c, c->want_events) != 0)
		conn_fail(c, "cannot watch the database socket");
}

static void conn_send_query(struct pool_conn *c, struct pool_query *q)
{
	c->q = q;
	c->state = CONN_BUSY;
	c->started_ms = uv_now(c->pool->loop);
	c->pool->running++;
	if (!PQsendQueryPrepared(c->pg, stmt_defs[q->stmt].name, q->nparams, q->values,
				 q->lengths, q->formats, 0)) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	conn_flush_and_watch(c);
}

static void on_admit_timer(uv_timer_t *t)
{
	pool_dispatch(t->data);
}

/* True when active_limit lets another statement start now. Otherwise
 * arms the admission timer for when the oldest counted one turns slow. */
static bool pool_admits(struct pool *p)
{
	if (p->active_limit <= 0)
		return true;
	uint64_t now = uv_now(p->loop), first = UINT64_MAX;
	int counted = 0;
	for (int i = 0; i < p->size; i++) {
		const struct pool_conn *c = &p->conns[i];
		if (c->state != CONN_BUSY || now - c->started_ms >= POOL_SLOW_MS)
			continue;
		counted++;
		if (c->started_ms < first)
			first = c->started_ms;
	}
	if (counted < p->active_limit)
		return true;
	/* Counted means now - first < POOL_SLOW_MS: the delay is at least 1. */
	uv_timer_start(&p->admit_timer, on_admit_timer, first + POOL_SLOW_MS - now, 0);
	return false;
}

static void pool_dispatch(struct pool *p)
{
	while (p->head && !p->closing) {
		struct pool_conn *idle = NULL;
		for (int i = 0; i < p->size && !idle; i++)
			if (p->conns[i].state == CONN_IDLE)
				idle = &p->conns[i];
		if (!idle)
			return;
		struct pool_query *q = p->head;
		if (!pool_admits(p)) {
			if (!q->held)
				p->held_back++;
			q->held = true;
			return;
		}
		p->head = q->next;
		if (!p->head)
			p->tail = NULL;
		q->next = NULL;
		p->queued--;
		conn_send_query(idle, q);
	}
}

/* ------------------------------------------------------------ API */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct pool *pool_new(uv_loop_t *loop, const struct pool_options *opt)
{
	for (int i = 0; i < STMT__COUNT; i++) {
		if (!stmt_defs[i].name || !stmt_defs[i].sql) {
			log_error("db.config", "reason=\"statement %d has no SQL\"", i);
			return NULL;
		}
	}
	struct pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->loop = loop;
	p->size = opt->size > 0 ? opt->size : 1;
	p->connect_timeout_s = opt->connect_timeout_s > 0 ? opt->connect_timeout_s
							  : DEFAULT_CONNECT_TIMEOUT_S;
	p->max_queue = opt->max_queue > 0 ? opt->max_queue : DEFAULT_MAX_QUEUE;
	p->active_limit = opt->active_limit > 0 && opt->active_limit < p->size ? opt->active_limit : 0;
	snprintf(p->port, sizeof p->port, "%d", opt->port > 0 ? opt->port : 5432);
	snprintf(p->name, sizeof p->name, "%s", opt->name ? opt->name : "");
	p->host = dup_or_null(opt->host);
	p->dbname = dup_or_null(opt->dbname);
	p->user = dup_or_null(opt->user);
	p->password = dup_or_null(opt->password);
	p->conns = calloc((size_t)p->size, sizeof *p->conns);
	if (!p->conns || (opt->host && !p->host) || (opt->dbname && !p->dbname) ||
	    (opt->user && !p->user) || (opt->password && !p->password)) {
		free(p->conns);
		free(p->host);
		free(p->dbname);
		free(p->user);
		free(p->password);
		free(p);
		return NULL;
	}
	for (int i = 0; i < p->size; i++) {
		struct pool_conn *c = &p->conns[i];
		c->pool = p;
		c->index = i;
		c->state = CONN_DOWN;
		c->poll_fd = -1;
		c->backoff_ms = BACKOFF_MIN_MS;
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
		p->open_handles++;
	}
	uv_timer_init(loop, &p->admit_timer);
	p->admit_timer.data = p;
	p->open_handles++;
	return p;
}

void pool_start(struct pool *p)
{
	if (p->started || p->closing)
		return;
	p->started = true;
	for (int i = 0; i < p->size && !p->closing; i++)
		conn_connect(&p->conns[i]);
}

struct pool_query *pool_exec(struct pool *p, int stmt, int nparams,
			     const char *const *values, const int *lengths,
			     const int *binary, pool_cb cb, void *arg)
{
	struct pool_query tmp = {.cb = cb, .arg = arg};
	if (stmt < 0 || stmt >= STMT__COUNT || nparams != stmt_defs[stmt].nparams) {
		log_error("db.misuse", "stmt=%d nparams=%d", stmt, nparams);
		tmp.in_exec = true;
		query_answer_code(&tmp, CRM__CODE__INTERNAL, "internal error: bad statement call");
		return NULL;
	}
	tmp.in_exec = true;
	if (p->closing || !pool_ready(p)) {
		query_answer_code(&tmp, CRM__CODE__UNAVAILABLE, UNAVAILABLE_MESSAGE);
		return NULL;
	}
	if (p->queued >= p->max_queue) {
		query_answer_code(&tmp, CRM__CODE__RESOURCE_EXHAUSTED,
				  "database busy, too many calls waiting; retry later");
		return NULL;
	}
	struct pool_query *q = query_new(stmt, nparams, values, lengths, binary);
	if (!q) {
		query_answer_code(&tmp, CRM__CODE__RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	q->cb = cb;
	q->arg = arg;
	q->in_exec = true;
	if (p->tail)
		p->tail->next = q;
	else
		p->head = q;
	p->tail = q;
	p->queued++;
	pool_dispatch(p);
	if (q->answered) {
		free(q);
		return NULL;
	}
	q->in_exec = false;
	return q;
}

void pool_forget(struct pool_query *q)
{
	if (q) {
		q->cb = NULL;
		q->arg = NULL;
	}
}

int pool_pending(const struct pool *p)
{
	return p->queued + p->running;
}

uint64_t pool_held_back(const struct pool *p)
{
	return p->held_back;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct pool_conn *c = h->data;
	struct pool *p = c->pool;
	p->open_handles--;
	pool_maybe_done(p);
}

static void on_admit_timer_closed(uv_handle_t *h)
{
	struct pool *p = h->data;
	p->open_handles--;
	pool_maybe_done(p);
}

void pool_close(struct pool *p, void (*done)(void *arg), void *arg)
{
	if (p->closing)
		return;
	p->closing = true;
	p->done = done;
	p->done_arg = arg;
	/* Tear everything down first, answer afterwards: callbacks then see a
	 * pool that is consistently closed. */
	struct pool_query *running = NULL;
	for (int i = 0; i < p->size; i++) {
		struct pool_conn *c = &p->conns[i];
		if (c->q) {
			c->q->next = running;
			running = c->q;
			c->q = NULL;
			p->running--;
		}
		conn_teardown(c);
		c->state = CONN_CLOSED;
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	}
	uv_close((uv_handle_t *)&p->admit_timer, on_admit_timer_closed);
	char event[64];
	snprintf(event, sizeof event, "%s%sdb.closed", p->name, p->name[0] ? "." : "");
	log_info(event, "conns=%d", p->size);
	fail_queued(p, CRM__CODE__UNAVAILABLE, "database pool closing");
	while (running) {
		struct pool_query *next = running->next;
		query_answer_code(running, CRM__CODE__UNAVAILABLE, "database pool closing");
		running = next;
	}
}
