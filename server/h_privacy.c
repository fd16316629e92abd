/* Privacy requests: reveal a customer's masked contact details, export
 * everything held on a customer, erase (anonymize) a customer.
 *
 * Masking itself is not here: crm.customer_view masks phones and WeChat
 * per row for every reader (sql/0005), so no handler can forget it. Each
 * request here is one SQL function that checks the caller's right, reads
 * and writes the audit entry in one transaction; a refusal comes back as
 * outcome 'denied' rather than an error so that its audit entry commits.
 * Erase reads the record and its relations first (STMT_ERASE_PLAN) and
 * writes the erased records through write_with_outbox(), the one write
 * path to the outbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

#define ERASED_NAME "已删除客户"

/* id must be a UUID and reason given (at most 500 characters); otherwise
 * the request is answered and false returned. */
static bool id_and_reason_ok(struct request *r, const char *id, const char *reason)
{
	uint8_t raw[16];
	if (!uuid_parse(id ? id : "", raw)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "id",
			 "id must be a UUID like 0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
		return false;
	}
	char why[256];
	if (!text_field_ok("reason", reason ? reason : "", 500, true, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "reason", "%s (say why you need it)", why);
		return false;
	}
	return true;
}

/* A result of outcome, message, ...: false (request answered) unless the
 * call succeeded with the expected shape and outcome 'ok'. */
static bool outcome_ok(struct request *r, const PGresult *res, const struct pool_error *err,
		       int ncols)
{
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return false;
	}
	if (!result_shape_ok(r, res, ncols))
		return false;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such customer");
		return false;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "ok") != 0) {
		req_fail(r, CRM__CODE__PERMISSION_DENIED, NULL, "%s", PQgetvalue(res, 0, 1));
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ reveal */

static void on_revealed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (!outcome_ok(r, res, err, 2 + CUSTOMER_NCOLS))
		return;
	struct scratch sc = {0};
	Crm__Customer cu;
	if (!row_to_customer(res, 0, 2, &cu, &sc)) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	Crm__CustomerRevealReply rr = CRM__CUSTOMER_REVEAL_REPLY__INIT;
	rr.id = cu.id;
	rr.phone = cu.phone;
	rr.phones = cu.phones;
	rr.n_phones = cu.n_phones;
	rr.wechat = cu.wechat;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER_REVEAL_REPLY;
	resp.customer_reveal_reply = &rr;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_customer_reveal(struct request *r)
{
	const Crm__CustomerReveal *in = r->env->customer_reveal;
	if (!id_and_reason_ok(r, in->id, in->reason))
		return;
	const char *params[] = {r->conn->session.session_id, in->id, in->reason};
	req_db(r, STMT_CUSTOMER_REVEAL, 3, params, NULL, NULL, on_revealed);
}

/* ------------------------------------------------------------ export */

static void on_exported(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (!outcome_ok(r, res, err, 3))
		return;
	Crm__CustomerExportReply er = CRM__CUSTOMER_EXPORT_REPLY__INIT;
	er.id = r->env->customer_export->id;
	er.document = PQgetvalue(res, 0, 2);
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER_EXPORT_REPLY;
	resp.customer_export_reply = &er;
	req_reply(r, &resp);
}

void h_customer_export(struct request *r)
{
	const Crm__CustomerExport *in = r->env->customer_export;
	if (!id_and_reason_ok(r, in->id, in->reason))
		return;
	const char *params[] = {r->conn->session.session_id, in->id, in->reason};
	req_db(r, STMT_CUSTOMER_EXPORT, 3, params, NULL, NULL, on_exported);
}

/* ------------------------------------------------------------ erase */

static void on_erased(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	reply_customer_rows(r, res, NULL);
}

/* STMT_ERASE_PLAN's columns: the customer, the placeholder phone, and a
 * relation per row. */
#define PLAN_COL_PHONE CUSTOMER_NCOLS
#define PLAN_COL_RELATION (CUSTOMER_NCOLS + 1)
#define PLAN_NCOLS (PLAN_COL_RELATION + RELATION_VIEW_NCOLS)

/* Blanks what people typed about the customer on a relation, as
 * crm.customer_erase stores it (sql/0009), as the next version. */
static void erase_relation_text(Crm__Relation *rel, int64_t at)
{
	rel->first_contact_place = rel->first_contact_scenario = rel->first_feedback = (char *)"";
	for (size_t i = 0; i < rel->n_intents; i++)
		rel->intents[i]->configuration = rel->intents[i]->needs = (char *)"";
	rel->version++;
	rel->updated_at = at;
}

/* The plan rows: the customer as it is, the placeholder phone, each
 * relation. Packs the erased records exactly as crm.customer_erase stores
 * them and writes them: the Customer first, then every relation, whose
 * ids and versions read let the SQL refuse a plan that went stale. */
static void on_erase_plan(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, PLAN_NCOLS))
		return;
	int nrows = PQntuples(res);
	if (nrows == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such customer");
		return;
	}
	const Crm__CustomerErase *in = r->env->customer_erase;
	struct scratch sc = {0};
	struct textbuf rel_ids = {0}, rel_versions = {0};
	Crm__Customer rec;
	struct phone_set ps = {.n = 1};
	const ProtobufCMessage **records = scratch_alloc(&sc, (size_t)(nrows + 1) * sizeof *records);
	Crm__Relation *rels = scratch_alloc(&sc, (size_t)nrows * sizeof *rels);
	if (!records || !rels || !row_to_customer(res, 0, 0, &rec, &sc)) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	snprintf(ps.number[0], PHONE_CANONICAL_MAX, "%s", PQgetvalue(res, 0, PLAN_COL_PHONE));
	char version_s[24], at_s[24];
	snprintf(version_s, sizeof version_s, "%llu", (unsigned long long)rec.version);
	int64_t at = now_ms();
	snprintf(at_s, sizeof at_s, "%lld", (long long)at);
	rec.name = (char *)ERASED_NAME;
	rec.wechat = rec.email = rec.occupation = rec.region = rec.age_band = (char *)"";
	rec.birth_year = 0;
	rec.tags = NULL;
	rec.n_tags = 0;
	rec.version++;
	rec.updated_at = at;
	rec.erased = true;
	rec.erased_at = at;
	if (!phones_to_customer(&ps, &rec, &sc)) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	size_t nrecords = 0;
	records[nrecords++] = &rec.base;
	for (int i = 0; i < nrows; i++) {
		if (PQgetisnull(res, i, PLAN_COL_RELATION))
			continue;
		Crm__Relation *rel = &rels[nrecords - 1];
		if (!row_to_relation(res, i, PLAN_COL_RELATION, rel, &sc)) {
			req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
			goto done;
		}
		if (nrecords > 1) {
			tb_addc(&rel_ids, LIST_SEP);
			tb_addc(&rel_versions, LIST_SEP);
		}
		tb_add(&rel_ids, rel->id);
		tb_addu(&rel_versions, rel->version);
		erase_relation_text(rel, at);
		records[nrecords++] = &rel->base;
	}
	if (rel_ids.oom || rel_versions.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	const char *params[] = {r->conn->session.session_id, in->id, version_s, in->reason,
				ps.number[0], tb_str(&rel_ids), tb_str(&rel_versions), at_s};
	write_with_outbox(r, STMT_CUSTOMER_ERASE, (int)(sizeof params / sizeof params[0]), params,
			  records, nrecords, on_erased);
done:
	tb_free(&rel_ids);
	tb_free(&rel_versions);
	scratch_free(&sc);
}

void h_customer_erase(struct request *r)
{
	const Crm__CustomerErase *in = r->env->customer_erase;
	if (!id_and_reason_ok(r, in->id, in->reason))
		return;
	const char *params[] = {r->conn->session.session_id, in->id};
	req_db(r, STMT_ERASE_PLAN, 2, params, NULL, NULL, on_erase_plan);
}
