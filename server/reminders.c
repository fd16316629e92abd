/* Pushed reminders (issue 5): see reminders.h for the design.
 *
 * State: the subscriptions (connection, the session it subscribed with,
 * since when), and one cursor (due time in microseconds, task id): every
 * open task due at or before it has been looked at. A look reads the tasks
 * due after the cursor and no later than now for the subscribed sessions,
 * pushes each to the subscriptions of its sessions that began no later
 * than its due time, and moves the cursor to now (or, when the page was
 * full, to its last task, and looks again at once).
 *
 * Rules a reader must not break:
 *   - A subscription is added before its catch-up query runs: a look that
 *     ran in between would move the cursor past tasks due after `since`
 *     without it, and neither the catch-up (due before `since`) nor a later
 *     look would have them.
 *   - Nothing is pushed to a connection whose output is stalled (the client
 *     reads nothing): reminders then cost it no memory, and what it missed
 *     is in the catch-up of its next subscription. The send timeout closes
 *     such a connection (conn.c).
 *   - While no connection is subscribed, the cursor follows the clock and no
 *     query runs. */
#include "reminders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "log.h"
#include "stmts.h"

#define TICK_MS 1000
#define PAGE_ROWS 500                   /* tasks per look; a full page looks again */
#define CATCHUP_DEFAULT 200
#define CATCHUP_MAX 1000
#define TASK_NCOLS 20                   /* the TASK columns of stmts.h */
#define DUE_COL_TASK 2                  /* sessions, due_at_us, then TASK columns */
#define CURSOR_ID_LAST "ffffffff-ffff-ffff-ffff-ffffffffffff"

struct reminder_sub {
	struct conn *conn;
	char session_id[37];            /* the session it subscribed with */
	int64_t since_ms;               /* tasks due from then on are pushed */
};

struct reminders {
	struct server *srv;
	struct pool *db;                /* a pool of one connection, of its own */
	uv_timer_t tick;
	int open_handles;               /* the timer and the pool, until closed */
	bool db_started;                /* connecting (after the request pool was up) */
	bool closing;
	bool looking;                   /* a look's query is running */
	bool db_failing;                /* the last look failed: log the outage once */
	int64_t cursor_us;
	char cursor_id[37];
	int64_t upto_ms;                /* the running look's upper bound */
	struct reminder_sub *subs;
	size_t nsubs, cap;
};

/* ------------------------------------------------------------ subscriptions */

static struct reminder_sub *sub_of(struct reminders *rem, const struct conn *c)
{
	for (size_t i = 0; i < rem->nsubs; i++)
		if (rem->subs[i].conn == c)
			return &rem->subs[i];
	return NULL;
}

static void sub_remove(struct reminders *rem, struct reminder_sub *s)
{
	s->conn->subscribed = false;
	*s = rem->subs[--rem->nsubs];
}

/* Adds or renews the connection's subscription; false when out of memory. */
static bool sub_set(struct reminders *rem, struct conn *c, int64_t since_ms)
{
	struct reminder_sub *s = sub_of(rem, c);
	if (!s) {
		if (rem->nsubs == rem->cap) {
			size_t cap = rem->cap ? rem->cap * 2 : 16;
			struct reminder_sub *n = realloc(rem->subs, cap * sizeof *n);
			if (!n)
				return false;
			rem->subs = n;
			rem->cap = cap;
		}
		s = &rem->subs[rem->nsubs++];
		s->conn = c;
	}
	snprintf(s->session_id, sizeof s->session_id, "%s", c->session.session_id);
	s->since_ms = since_ms;
	c->subscribed = true;
	return true;
}

/* A subscription lasts while its connection serves the session it
 * subscribed with: a logout, or a login as someone else, ends it. */
static bool sub_live(const struct reminder_sub *s)
{
	const struct conn *c = s->conn;
	return c->state == CONN_READY && c->session.active &&
	       !strcmp(c->session.session_id, s->session_id);
}

void reminders_conn_closed(struct conn *c)
{
	struct reminders *rem = c->srv->reminders;
	struct reminder_sub *s = rem ? sub_of(rem, c) : NULL;
	if (s)
		sub_remove(rem, s);
	c->subscribed = false;
}

/* ------------------------------------------------------------ pushing */

/* An open task seen at `now`: overdue once past its due time, and then
 * "missed" until done (crm.task_outcome's words). */
static void task_state_at(Crm__Task *t, int64_t now)
{
	t->overdue = t->due_at < now;
	t->outcome = t->overdue ? "missed" : "open";
}

static void push_task(struct conn *c, Crm__Task *task, int64_t now)
{
	if (c->output_stalled) {
		log_info("reminder.skipped", "conn=%llu task=%s reason=\"output stalled\"",
			 (unsigned long long)c->number, task->id);
		return;
	}
	char text[512];
	snprintf(text, sizeof text, "task due: %s: %s (%s)", task->customer_name, task->purpose,
		 task->method);
	Crm__Event ev = CRM__EVENT__INIT;
	ev.kind = "task.due";
	ev.text = text;
	ev.at = now;
	Crm__TaskDue td = CRM__TASK_DUE__INIT;
	td.event = &ev;
	td.task = task;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.body_case = CRM__ENVELOPE__BODY_TASK_DUE;
	env.task_due = &td;
	conn_send_response(c, &env);
}

/* Everything due up to `ms` has been looked at. The cursor never goes
 * back (the clock may): that would push tasks a second time. */
static void cursor_to(struct reminders *rem, int64_t ms)
{
	if (ms * 1000 < rem->cursor_us)
		return;
	rem->cursor_us = ms * 1000;
	snprintf(rem->cursor_id, sizeof rem->cursor_id, "%s", CURSOR_ID_LAST);
}

static void look(struct reminders *rem);

static void on_due(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct reminders *rem = arg;
	rem->looking = false;
	if (rem->closing)
		return;
	if (err->code != CRM__CODE__OK || PQnfields(res) != DUE_COL_TASK + TASK_NCOLS + 3) {
		/* The cursor stays: the next look reads what this one missed. */
		char m[300];
		if (!rem->db_failing)
			log_warn("reminders.look_failed", "code=%d message=%s", err->code,
				 log_quote(m, sizeof m, err->code ? err->message : "unexpected columns"));
		rem->db_failing = true;
		return;
	}
	if (rem->db_failing)
		log_info("reminders.look_ok", "upto_ms=%lld", (long long)rem->upto_ms);
	rem->db_failing = false;
	int rows = PQntuples(res);
	int64_t now = now_ms();
	for (int i = 0; i < rows; i++) {
		const char *sessions = PQgetvalue(res, i, 0);
		Crm__Task task;
		row_to_task(res, i, DUE_COL_TASK, &task);
		task_state_at(&task, now);
		for (size_t k = 0; k < rem->nsubs; k++) {
			struct reminder_sub *s = &rem->subs[k];
			if (task.due_at >= s->since_ms && sub_live(s) && strstr(sessions, s->session_id))
				push_task(s->conn, &task, now);
		}
		rem->cursor_us = col_i64(res, i, 1);
		snprintf(rem->cursor_id, sizeof rem->cursor_id, "%s", task.id);
	}
	if (rows < PAGE_ROWS) {
		cursor_to(rem, rem->upto_ms);
		return;
	}
	look(rem); /* a full page: the rest now, not in a second */
}

/* Reads what fell due since the cursor, for the live subscriptions. */
static void look(struct reminders *rem)
{
	if (rem->looking || rem->closing)
		return;
	for (size_t k = 0; k < rem->nsubs;) {
		if (sub_live(&rem->subs[k]))
			k++;
		else
			sub_remove(rem, &rem->subs[k]);
	}
	int64_t now = now_ms();
	if (rem->nsubs == 0) {
		cursor_to(rem, now);
		return;
	}
	char *sessions = malloc(rem->nsubs * 37);
	if (!sessions)
		return; /* the next tick tries again */
	size_t len = 0;
	for (size_t k = 0; k < rem->nsubs; k++) {
		if (k)
			sessions[len++] = '\x1f';
		memcpy(sessions + len, rem->subs[k].session_id, 36);
		len += 36;
	}
	sessions[len] = '\0';
	char after[24], upto[24], limit[16];
	rem->upto_ms = now;
	snprintf(after, sizeof after, "%lld", (long long)rem->cursor_us);
	snprintf(upto, sizeof upto, "%lld", (long long)now);
	snprintf(limit, sizeof limit, "%d", PAGE_ROWS);
	const char *params[] = {sessions, after, rem->cursor_id, upto, limit};
	rem->looking = true;
	/* The callback may run before this returns (the connection is down). */
	pool_exec(rem->db, STMT_REMINDERS_DUE, 5, params, NULL, NULL, on_due, rem);
	free(sessions);
}

/* The connection is opened once the request pool is up, so that at
 * start-up it takes nothing from the connections requests wait for. */
static void on_tick(uv_timer_t *t)
{
	struct reminders *rem = t->data;
	if (!rem->db_started) {
		if (!rem->srv->pool || !pool_ready(rem->srv->pool))
			return;
		rem->db_started = true;
		pool_start(rem->db);
	}
	if (pool_ready(rem->db)) /* else the cursor waits for the connection */
		look(rem);
}

/* ------------------------------------------------------------ reminder.subscribe */

static void on_catchup(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	struct reminders *rem = r->conn->srv->reminders;
	if (err->code != CRM__CODE__OK) {
		/* Not subscribed after all: the request failed. */
		struct reminder_sub *s = rem ? sub_of(rem, r->conn) : NULL;
		if (s)
			sub_remove(rem, s);
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, TASK_NCOLS + 3))
		return;
	struct reminder_sub *s = rem ? sub_of(rem, r->conn) : NULL;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__Task *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__Task **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	int64_t now = now_ms();
	for (int i = 0; i < rows; i++) {
		row_to_task(res, i, 0, &items[i]);
		task_state_at(&items[i], now);
		ptrs[i] = &items[i];
	}
	Crm__ReminderSubscribed rs = CRM__REMINDER_SUBSCRIBED__INIT;
	rs.since = s ? s->since_ms : 0;
	rs.on = s != NULL;
	rs.overdue = ptrs;
	rs.n_overdue = (size_t)rows;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBED;
	resp.reminder_subscribed = &rs;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_reminder_subscribe(struct request *r)
{
	Crm__ReminderSubscribe *in = r->env->reminder_subscribe;
	struct conn *c = r->conn;
	struct reminders *rem = c->srv->reminders;
	if (in->off) {
		struct reminder_sub *s = rem ? sub_of(rem, c) : NULL;
		if (s)
			sub_remove(rem, s);
		Crm__ReminderSubscribed rs = CRM__REMINDER_SUBSCRIBED__INIT;
		Crm__Envelope resp = CRM__ENVELOPE__INIT;
		resp.body_case = CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBED;
		resp.reminder_subscribed = &rs;
		req_reply(r, &resp);
		return;
	}
	if (in->limit > CATCHUP_MAX) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "limit", "limit must be from 1 to %d",
			 CATCHUP_MAX);
		return;
	}
	if (!rem || rem->closing) {
		req_fail(r, CRM__CODE__UNAVAILABLE, NULL,
			 "reminders are not running on this server; retry later");
		return;
	}
	int64_t since = now_ms();
	if (!sub_set(rem, c, since)) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	char since_s[24], limit[16];
	snprintf(since_s, sizeof since_s, "%lld", (long long)since);
	snprintf(limit, sizeof limit, "%u", in->limit ? in->limit : CATCHUP_DEFAULT);
	const char *params[] = {c->session.session_id, since_s, limit};
	req_db(r, STMT_REMINDER_CATCHUP, 3, params, NULL, NULL, on_catchup);
}

/* ------------------------------------------------------------ start and stop */

static void reminders_free_if_closed(struct reminders *rem)
{
	if (--rem->open_handles > 0)
		return;
	free(rem->subs);
	free(rem);
}

static void on_tick_closed(uv_handle_t *h)
{
	reminders_free_if_closed(h->data);
}

static void on_db_closed(void *arg)
{
	reminders_free_if_closed(arg);
}

bool reminders_start(struct server *srv, char *err, size_t errcap)
{
	const struct crm_config *cfg = srv->cfg;
	struct reminders *rem = calloc(1, sizeof *rem);
	if (!rem) {
		snprintf(err, errcap, "out of memory");
		return false;
	}
	struct pool_options po = {
		.host = cfg->db_host,
		.port = cfg->db_port,
		.dbname = cfg->db_name,
		.user = cfg->db_user,
		.password = cfg->db_password,
		.size = 1,
		.connect_timeout_s = cfg->db_connect_timeout_s,
		.max_queue = 4,
		.name = "reminders",
	};
	rem->db = pool_new(srv->loop, &po);
	if (!rem->db) {
		free(rem);
		snprintf(err, errcap, "cannot create the reminders' database connection");
		return false;
	}
	rem->srv = srv;
	rem->cursor_us = now_ms() * 1000;
	snprintf(rem->cursor_id, sizeof rem->cursor_id, "%s", CURSOR_ID_LAST);
	uv_timer_init(srv->loop, &rem->tick);
	rem->tick.data = rem;
	rem->open_handles = 2;
	uv_timer_start(&rem->tick, on_tick, TICK_MS, TICK_MS);
	srv->reminders = rem;
	return true;
}

void reminders_stop(struct server *srv)
{
	struct reminders *rem = srv->reminders;
	if (!rem)
		return;
	srv->reminders = NULL;
	rem->closing = true;
	for (size_t k = 0; k < rem->nsubs; k++)
		rem->subs[k].conn->subscribed = false;
	rem->nsubs = 0;
	uv_close((uv_handle_t *)&rem->tick, on_tick_closed);
	pool_close(rem->db, on_db_closed, rem);
}
