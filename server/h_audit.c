/* The audit log as crmd sees it: a page of entries for `crm audit`, and the
 * entry of a request the handler table or a SQL function refused.
 *
 * Entries are written by the SQL functions (crm.audit_append, sql/0004) in
 * the transaction of what they record; crmd's database role has no
 * privilege on crm.audit_log itself. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "stmts.h"
#include "textcheck.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 500
#define AUDIT_NCOLS 16


/* Denials a hostile client can cause cost a database write each and are
 * not requests, so they are bounded here: beyond this many waiting writes,
 * a denial is counted and logged (event=auth.denied) but not written. */
#define AUDIT_DENIED_PENDING_MAX 256

static void on_denied_recorded(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct server *srv = arg;
	(void)res;
	srv->audit_denied_pending--;
	if (err->code != CRM__CODE__OK)
		log_warn("audit.write_failed", "what=permission.denied reason=\"%s\"", err->message);
}

/* Called by dispatch() when the handler table refuses a request, and by
 * req_fail_db() when a SQL function refused it (DC403: its transaction was
 * rolled back, so nothing of the refusal is written unless this writes
 * it). The reply does not wait for this, and the connection may be gone
 * before it completes (the callback does not touch it). */
void audit_denied(struct conn *c, const char *request, const char *sql_message)
{
	struct server *srv = c->srv;
	if (srv->audit_denied_pending >= AUDIT_DENIED_PENDING_MAX) {
		srv->stats.counters[ST_AUDIT_DENIED_DROPPED]++;
		return;
	}
	char ip[64];
	auth_peer_ip(c, ip, sizeof ip);
	const char *params[] = {c->session.session_id, request, ip, sql_message};
	srv->audit_denied_pending++;
	pool_exec(srv->pool, STMT_AUDIT_DENIED, 4, params, NULL, NULL, on_denied_recorded, srv);
}

static uint64_t col_u64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoull(PQgetvalue(res, row, col), NULL, 10);
}

static void on_audit_list(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	int n = PQntuples(res);
	if (PQnfields(res) != AUDIT_NCOLS) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "audit list: unexpected result shape");
		return;
	}
	Crm__AuditEntry *items = calloc(n ? (size_t)n : 1, sizeof *items);
	Crm__AuditEntry **ptrs = calloc(n ? (size_t)n : 1, sizeof *ptrs);
	if (!items || !ptrs) {
		free(items);
		free(ptrs);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	/* Strings point into `res`, which lives until this callback returns. */
	for (int i = 0; i < n; i++) {
		Crm__AuditEntry *e = &items[i];
		crm__audit_entry__init(e);
		e->id = col_u64(res, i, 0);
		e->at = (int64_t)col_u64(res, i, 1);
		e->action = PQgetvalue(res, i, 2);
		e->outcome = PQgetvalue(res, i, 3);
		e->username = PQgetvalue(res, i, 4);
		e->role = PQgetvalue(res, i, 5);
		e->store_code = PQgetvalue(res, i, 6);
		e->source_addr = PQgetvalue(res, i, 7);
		e->subject = PQgetvalue(res, i, 8);
		e->entity = PQgetvalue(res, i, 9);
		e->entity_id = PQgetvalue(res, i, 10);
		e->customer_id = PQgetvalue(res, i, 11);
		e->before_version = col_u64(res, i, 12);
		e->after_version = col_u64(res, i, 13);
		e->reason = PQgetvalue(res, i, 14);
		e->details = PQgetvalue(res, i, 15);
		ptrs[i] = e;
	}
	Crm__AuditPage page = CRM__AUDIT_PAGE__INIT;
	page.entries = ptrs;
	page.n_entries = (size_t)n;
	/* A full page may have more behind it; a short one is the last. */
	if ((uint32_t)n == r->page_size && n > 0)
		page.next_before_id = items[n - 1].id;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_AUDIT_PAGE;
	resp.audit_page = &page;
	req_reply(r, &resp);
	free(items);
	free(ptrs);
}

/* A page of the audit log. The handler table lets group admins and store
 * managers through; crm.audit_list checks the role again and confines a
 * store manager to their store. */
void h_audit_list(struct request *r);
void h_audit_list(struct request *r)
{
	const Crm__AuditQuery *q = r->env->audit_query;
	uint32_t size = q->page_size ? q->page_size : AUDIT_PAGE_DEFAULT;
	if (size > AUDIT_PAGE_MAX) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "audit_query.page_size",
			 "page size must be from 1 to %d", AUDIT_PAGE_MAX);
		return;
	}
	if (q->since && q->until && q->until <= q->since) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "audit_query.until",
			 "until must be later than since");
		return;
	}
	/* Filters go to PostgreSQL, which takes only valid UTF-8. */
	static const char *const names[] = {"audit_query.username", "audit_query.action",
					    "audit_query.store_code"};
	const char *values[] = {q->username, q->action, q->store_code};
	for (size_t i = 0; i < 3; i++) {
		char why[256];
		if (!text_field_ok(names[i], values[i] ? values[i] : "", 64, false, why, sizeof why)) {
			req_fail(r, CRM__CODE__INVALID_ARGUMENT, names[i], "%s", why);
			return;
		}
	}
	/* The same refusal as crm.audit_list's, before invalid UTF-8 reaches it. */
	uint8_t raw[16];
	if (q->customer_id && *q->customer_id && !uuid_parse(q->customer_id, raw)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer_id", "customer id must be a UUID");
		return;
	}
	r->page_size = size;
	char since[24], until[24], before[24], count[16];
	snprintf(since, sizeof since, "%" PRId64, q->since);
	snprintf(until, sizeof until, "%" PRId64, q->until);
	snprintf(before, sizeof before, "%" PRIu64, q->before_id);
	snprintf(count, sizeof count, "%u", size);
	const char *params[] = {r->conn->session.session_id,
				q->username && *q->username ? q->username : NULL,
				q->customer_id && *q->customer_id ? q->customer_id : NULL,
				q->action && *q->action ? q->action : NULL,
				since,
				until,
				q->store_code && *q->store_code ? q->store_code : NULL,
				before,
				count};
	req_db(r, STMT_AUDIT_LIST, 9, params, NULL, NULL, on_audit_list);
}
