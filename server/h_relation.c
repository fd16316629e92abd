/* Updates of customer records: customer profile, store relation, level,
 * and handover.
 *
 * Each write reads the record first (scoped to the caller), answers
 * CONFLICT with the current record when the version read is stale, merges
 * the fields asked for, checks the result and writes it through
 * write_with_outbox() together with the version read: the SQL function
 * writes only if the version is still that one (else it answers 'stale'
 * with the current record), so the packed record is exactly what is
 * stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

#define STALE_MESSAGE "the %s was changed meanwhile (version %llu, you read %llu); reload it and try again"

static bool has_field(char **fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i], name) == 0)
			return true;
	return false;
}

/* Every name in `fields` must be in `known`; `hint` explains names that
 * are set elsewhere. */
static bool fields_check(struct request *r, char **fields, size_t n, const char *const *known,
			 const char *(*hint)(const char *name))
{
	if (n == 0) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "fields", "fields: list the fields to set");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strcmp(fields[i], *k) == 0;
		if (ok)
			continue;
		if (!utf8_valid(fields[i], strlen(fields[i]))) {
			req_fail(r, CRM__CODE__INVALID_ARGUMENT, "fields",
				 "fields: a name is not valid UTF-8 text");
			return false;
		}
		/* Quote at most 64 bytes, never half a character: the message
		 * is a protobuf string and must stay valid UTF-8. */
		int len = (int)strnlen(fields[i], 64);
		while (len > 0 && (fields[i][len] & 0xC0) == 0x80)
			len--;
		const char *why = hint ? hint(fields[i]) : NULL;
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "fields", "fields: \"%.*s\" %s", len,
			 fields[i], why ? why : "is not a field that can be set here");
		return false;
	}
	return true;
}

static bool version_given(struct request *r, uint64_t version)
{
	if (version)
		return true;
	req_fail(r, CRM__CODE__INVALID_ARGUMENT, "version",
		 "version is required: send the version you read");
	return false;
}

static bool id_ok(struct request *r, const char *field, const char *id)
{
	uint8_t raw[16];
	if (uuid_parse(id, raw))
		return true;
	req_fail(r, CRM__CODE__INVALID_ARGUMENT, field, "%s must be a UUID", field);
	return false;
}

/* ------------------------------------------------------------ customer.update */

static const char *const customer_fields[] = {"name", "gender", "birth_year", "age_band",
					      "phones", "wechat", "email", "occupation",
					      "region", "tags", "important", NULL};

static const char *customer_field_hint(const char *name)
{
	if (!strcmp(name, "phone"))
		return "is not settable: set \"phones\" (the primary is customer.phone)";
	return NULL;
}

static void on_customer_written(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	reply_customer_rows(r, res, NULL);
}

/* The current phones of a customer read by row_to_customer, primary first. */
static void phones_of(const Crm__Customer *cu, struct phone_set *ps)
{
	ps->n = 0;
	for (size_t i = 0; i < cu->n_phones && ps->n < PHONES_MAX; i++)
		snprintf(ps->number[ps->n++], PHONE_CANONICAL_MAX, "%s", cu->phones[i]->number);
}

static void on_customer_read(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, REPLY_NCOLS))
		return;
	const Crm__CustomerUpdate *in = r->env->customer_update;
	const Crm__Customer *want = in->customer;
	struct scratch sc = {0};
	struct textbuf phones = {0}, tags = {0};
	Crm__Customer rec;
	bool found = false;
	for (int i = 0; i < PQntuples(res) && !found; i++)
		if (!strcmp(PQgetvalue(res, i, 1), "customer"))
			found = row_to_customer(res, i, REPLY_COL_CUSTOMER, &rec, &sc);
	if (!found) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such customer");
		goto done;
	}
	if (rec.version != in->version) {
		char msg[200];
		snprintf(msg, sizeof msg, STALE_MESSAGE, "customer", (unsigned long long)rec.version,
			 (unsigned long long)in->version);
		reply_customer_rows(r, res, msg);
		goto done;
	}
	char **f = in->fields;
	size_t nf = in->n_fields;
	if (has_field(f, nf, "name") && !(rec.name = trim_blanks(want->name, &sc))) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	if (has_field(f, nf, "gender"))
		rec.gender = want->gender;
	if (has_field(f, nf, "birth_year")) {
		rec.birth_year = want->birth_year;
		if (want->birth_year && !has_field(f, nf, "age_band"))
			rec.age_band = (char *)"";
	}
	if (has_field(f, nf, "age_band")) {
		rec.age_band = want->age_band;
		if (*want->age_band && !has_field(f, nf, "birth_year"))
			rec.birth_year = 0;
	}
	if (has_field(f, nf, "wechat"))
		rec.wechat = want->wechat;
	if (has_field(f, nf, "email"))
		rec.email = want->email;
	if (has_field(f, nf, "occupation"))
		rec.occupation = want->occupation;
	if (has_field(f, nf, "region"))
		rec.region = want->region;
	if (has_field(f, nf, "tags")) {
		rec.tags = want->tags;
		rec.n_tags = want->n_tags;
	}
	if (has_field(f, nf, "important"))
		rec.important = want->important;
	struct phone_set ps;
	if (has_field(f, nf, "phones")) {
		if (!phones_collect(r, want, &ps))
			goto done;
	} else {
		phones_of(&rec, &ps);
	}
	if (!profile_check(r, &rec))
		goto done;
	int64_t at = now_ms();
	rec.version++;
	rec.updated_at = at;
	if (!phones_to_customer(&ps, &rec, &sc)) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	phones_text(&ps, &phones);
	tags_text(&rec, &tags);
	if (phones.oom || tags.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	char version_s[24], birth_s[16], at_s[24];
	fmt_i64(version_s, sizeof version_s, (int64_t)in->version);
	snprintf(birth_s, sizeof birth_s, "%u", rec.birth_year);
	fmt_i64(at_s, sizeof at_s, at);
	const char *params[] = {
		r->conn->session.session_id, in->id, version_s, rec.name, tb_str(&phones),
		rec.gender, birth_s, rec.age_band, rec.wechat, rec.email, rec.occupation,
		rec.region, tb_str(&tags), rec.important ? "true" : "false", at_s,
	};
	const ProtobufCMessage *records[] = {&rec.base};
	write_with_outbox(r, STMT_CUSTOMER_UPDATE, (int)(sizeof params / sizeof params[0]), params,
			  records, 1, on_customer_written);
done:
	tb_free(&phones);
	tb_free(&tags);
	scratch_free(&sc);
}

void h_customer_update(struct request *r)
{
	const Crm__CustomerUpdate *in = r->env->customer_update;
	if (!id_ok(r, "id", in->id) || !version_given(r, in->version) ||
	    !fields_check(r, in->fields, in->n_fields, customer_fields, customer_field_hint))
		return;
	if (!in->customer) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer",
			 "customer is required: it carries the values of the fields to set");
		return;
	}
	struct phone_set ps;
	if (has_field(in->fields, in->n_fields, "phones") && !phones_collect(r, in->customer, &ps))
		return;
	/* Unmasked only when the version matches (sql/0005): the merge then
	 * writes back the real phones and WeChat, a stale answer stays masked. */
	char version_s[24];
	fmt_i64(version_s, sizeof version_s, (int64_t)in->version);
	const char *params[] = {r->conn->session.session_id, in->id, version_s};
	req_db(r, STMT_CUSTOMER_GET_FOR_WRITE, 3, params, NULL, NULL, on_customer_read);
}

/* ------------------------------------------------------------ relation.update */

static const char *const relation_fields[] = {"source", "first_contact_at",
					      "first_contact_place", "first_contact_scenario",
					      "first_feedback", "intents", "status", NULL};

static const char *relation_field_hint(const char *name)
{
	if (!strcmp(name, "level"))
		return "is set with level.set";
	if (!strcmp(name, "owner"))
		return "changes only by a manager's handover";
	return NULL;
}

/* After a relation write: outcome, then the RELATION columns. */
static void on_relation_written(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, 1 + RELATION_VIEW_NCOLS))
		return;
	bool stale = PQntuples(res) > 0 && !strcmp(PQgetvalue(res, 0, 0), "stale");
	char msg[200] = "";
	if (stale)
		snprintf(msg, sizeof msg,
			 "the relation was changed meanwhile (version %s); reload it and try again",
			 PQgetvalue(res, 0, 1 + 14));
	reply_relation_row(r, res, 1, stale, msg);
}

/* Reads the relation that starts a row of `ncols` columns (STMT_RELATION_GET,
 * STMT_LEVEL_SET_PLAN) into `cur`; answers CONFLICT with it when its version
 * is not `version`. False when the request is answered. */
static bool relation_read(struct request *r, const PGresult *res, const struct pool_error *err,
			  int ncols, uint64_t version, Crm__Relation *cur, struct scratch *sc)
{
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return false;
	}
	if (!result_shape_ok(r, res, ncols))
		return false;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such relation");
		return false;
	}
	if (!row_to_relation(res, 0, 0, cur, sc)) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return false;
	}
	if (cur->version != version) {
		char msg[200];
		snprintf(msg, sizeof msg, STALE_MESSAGE, "relation", (unsigned long long)cur->version,
			 (unsigned long long)version);
		reply_relation_row(r, res, 0, true, msg);
		return false;
	}
	return true;
}

static void on_relation_read(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	const Crm__RelationUpdate *in = r->env->relation_update;
	const Crm__Relation *want = in->relation;
	struct scratch sc = {0};
	struct textbuf intents = {0};
	Crm__Relation rec;
	if (!relation_read(r, res, err, RELATION_VIEW_NCOLS + 1, in->version, &rec, &sc))
		goto done;
	char **f = in->fields;
	size_t nf = in->n_fields;
	if (has_field(f, nf, "source"))
		rec.source = *want->source ? want->source : (char *)"other";
	if (has_field(f, nf, "first_contact_at"))
		rec.first_contact_at = want->first_contact_at;
	if (has_field(f, nf, "first_contact_place"))
		rec.first_contact_place = want->first_contact_place;
	if (has_field(f, nf, "first_contact_scenario"))
		rec.first_contact_scenario = want->first_contact_scenario;
	if (has_field(f, nf, "first_feedback"))
		rec.first_feedback = want->first_feedback;
	if (has_field(f, nf, "status"))
		rec.status = *want->status ? want->status : (char *)"active";
	if (has_field(f, nf, "intents")) {
		rec.intents = want->intents;
		rec.n_intents = want->n_intents;
	}
	if (!relation_check(r, &rec, false))
		goto done;
	if (has_field(f, nf, "intents") &&
	    !intents_fill(&rec, PQgetvalue(res, 0, RELATION_VIEW_NCOLS), &sc)) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	intents_text(&rec, &intents);
	if (intents.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	int64_t at = now_ms();
	rec.version++;
	rec.updated_at = at;
	char version_s[24], fc_s[24], at_s[24];
	fmt_i64(version_s, sizeof version_s, (int64_t)in->version);
	fmt_i64(fc_s, sizeof fc_s, rec.first_contact_at);
	fmt_i64(at_s, sizeof at_s, at);
	const char *params[] = {
		r->conn->session.session_id, in->id, version_s, rec.source, fc_s,
		rec.first_contact_place, rec.first_contact_scenario, rec.first_feedback, rec.status,
		tb_str(&intents), at_s,
	};
	const ProtobufCMessage *records[] = {&rec.base};
	write_with_outbox(r, STMT_RELATION_UPDATE, (int)(sizeof params / sizeof params[0]), params,
			  records, 1, on_relation_written);
done:
	tb_free(&intents);
	scratch_free(&sc);
}

void h_relation_update(struct request *r)
{
	const Crm__RelationUpdate *in = r->env->relation_update;
	if (!id_ok(r, "id", in->id) || !version_given(r, in->version) ||
	    !fields_check(r, in->fields, in->n_fields, relation_fields, relation_field_hint))
		return;
	if (!in->relation) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "relation",
			 "relation is required: it carries the values of the fields to set");
		return;
	}
	struct textbuf models = {0};
	if (has_field(in->fields, in->n_fields, "intents"))
		for (size_t i = 0; i < in->relation->n_intents; i++) {
			if (i)
				tb_addc(&models, LIST_SEP);
			tb_add(&models, in->relation->intents[i]->model);
		}
	if (models.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
	} else {
		const char *params[] = {r->conn->session.session_id, in->id, tb_str(&models)};
		req_db(r, STMT_RELATION_GET, 3, params, NULL, NULL, on_relation_read);
	}
	tb_free(&models);
}

/* ------------------------------------------------------------ level.set */

/* The plan is in (STMT_LEVEL_SET_PLAN: the relation now, its next follow-up
 * after the change, the write time): pack the relation as it will be
 * stored and write it. */
static void on_level_planned(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	const Crm__LevelSet *in = r->env->level_set;
	struct scratch sc = {0};
	Crm__Relation rec;
	if (!relation_read(r, res, err, RELATION_VIEW_NCOLS + 2, in->version, &rec, &sc))
		goto done;
	int64_t next = col_i64(res, 0, RELATION_VIEW_NCOLS);
	int64_t at = col_i64(res, 0, RELATION_VIEW_NCOLS + 1);
	bool change = strcmp(rec.level, in->level) != 0;
	if (change) {
		rec.level = in->level;
		rec.version++;
		rec.updated_at = at;
		rec.next_followup_at = next;
	}
	char version_s[24], at_s[24], next_s[24];
	fmt_i64(version_s, sizeof version_s, (int64_t)in->version);
	fmt_i64(at_s, sizeof at_s, at);
	fmt_i64(next_s, sizeof next_s, next);
	const char *params[] = {r->conn->session.session_id, in->relation_id, version_s, in->level,
				in->reason, at_s, next_s};
	const ProtobufCMessage *records[] = {&rec.base};
	write_with_outbox(r, STMT_LEVEL_SET, 7, params, records, 1, on_relation_written);
done:
	scratch_free(&sc);
}

void h_level_set(struct request *r)
{
	const Crm__LevelSet *in = r->env->level_set;
	if (!id_ok(r, "relation_id", in->relation_id) || !version_given(r, in->version))
		return;
	const char *level = in->level;
	if (!strcmp(level, "O") || !strcmp(level, "D") || !strcmp(level, "T")) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "level",
			 "level %s is set by orders (O ordered, D delivered, T cancelled), not by hand",
			 level);
		return;
	}
	if (!strcmp(level, "N")) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "level",
			 "level N is only the first level of a new contact; set H, A, B or C");
		return;
	}
	if (strlen(level) != 1 || !strchr("HABC", level[0])) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "level", "level must be H, A, B or C");
		return;
	}
	char why[256];
	if (!text_field_ok("reason", in->reason, 500, false, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "reason", "%s", why);
		return;
	}
	char version_s[24], at_s[24];
	fmt_i64(version_s, sizeof version_s, (int64_t)in->version);
	fmt_i64(at_s, sizeof at_s, now_ms());
	const char *params[] = {r->conn->session.session_id, in->relation_id, version_s, level,
				in->reason, at_s};
	req_db(r, STMT_LEVEL_SET_PLAN, 6, params, NULL, NULL, on_level_planned);
}

/* ------------------------------------------------------------ handover */

#define HANDOVER_MAX_IDS 1000

static void on_handover_done(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	int n = PQntuples(res);
	char **ids = calloc((size_t)n + 1, sizeof *ids);
	if (!ids) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < n; i++)
		ids[i] = PQgetvalue(res, i, 0);
	Crm__HandoverReply hr = CRM__HANDOVER_REPLY__INIT;
	hr.moved = (uint32_t)n;
	hr.relation_ids = ids;
	hr.n_relation_ids = (size_t)n;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_HANDOVER_REPLY;
	resp.handover_reply = &hr;
	req_reply(r, &resp);
	free(ids);
}

/* The plan lists the relations to move, with the new owner's username and
 * display name after the RELATION columns. */
static void on_handover_plan(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	if (!result_shape_ok(r, res, RELATION_VIEW_NCOLS + 2))
		return;
	const Crm__HandoverRequest *in = r->env->handover;
	int n = PQntuples(res);
	if (n == 0) {
		Crm__HandoverReply hr = CRM__HANDOVER_REPLY__INIT;
		Crm__Envelope resp = CRM__ENVELOPE__INIT;
		resp.body_case = CRM__ENVELOPE__BODY_HANDOVER_REPLY;
		resp.handover_reply = &hr;
		req_reply(r, &resp);
		return;
	}
	struct scratch sc = {0};
	struct textbuf ids = {0}, versions = {0};
	Crm__Relation *recs = scratch_alloc(&sc, (size_t)n * sizeof *recs);
	const ProtobufCMessage **records = scratch_alloc(&sc, (size_t)n * sizeof *records);
	bool ok = recs && records;
	int64_t at = now_ms();
	for (int i = 0; ok && i < n; i++) {
		ok = row_to_relation(res, i, 0, &recs[i], &sc);
		if (i) {
			tb_addc(&ids, LIST_SEP);
			tb_addc(&versions, LIST_SEP);
		}
		tb_add(&ids, recs[i].id);
		tb_addu(&versions, recs[i].version);
		recs[i].owner = PQgetvalue(res, i, RELATION_VIEW_NCOLS);
		recs[i].owner_name = PQgetvalue(res, i, RELATION_VIEW_NCOLS + 1);
		recs[i].version++;
		recs[i].updated_at = at;
		records[i] = &recs[i].base;
	}
	if (!ok || ids.oom || versions.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
	} else {
		char at_s[24];
		fmt_i64(at_s, sizeof at_s, at);
		const char *params[] = {r->conn->session.session_id, tb_str(&ids),
					tb_str(&versions), in->to_owner, in->reason, at_s};
		write_with_outbox(r, STMT_HANDOVER, 6, params, records, (size_t)n, on_handover_done);
	}
	tb_free(&ids);
	tb_free(&versions);
	scratch_free(&sc);
}

void h_handover(struct request *r)
{
	const Crm__HandoverRequest *in = r->env->handover;
	if (!*in->to_owner) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "to_owner",
			 "to_owner is required: the consultant who takes the customers over");
		return;
	}
	char why[256];
	if (!text_field_ok("reason", in->reason, 500, true, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "reason", "%s", why);
		return;
	}
	/* Usernames: PostgreSQL takes only valid UTF-8. */
	if (!text_field_ok("to_owner", in->to_owner, 64, true, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "to_owner", "%s", why);
		return;
	}
	if (!text_field_ok("from_owner", in->from_owner, 64, false, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "from_owner", "%s", why);
		return;
	}
	if ((in->n_relation_ids > 0) == (*in->from_owner != '\0')) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "relation_ids",
			 "give relation_ids (the relations to move) or from_owner (all of that"
			 " consultant's), not both");
		return;
	}
	if (in->n_relation_ids > HANDOVER_MAX_IDS) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "relation_ids",
			 "at most %d relation_ids per handover", HANDOVER_MAX_IDS);
		return;
	}
	struct textbuf ids = {0};
	for (size_t i = 0; i < in->n_relation_ids; i++) {
		if (!id_ok(r, "relation_ids", in->relation_ids[i])) {
			tb_free(&ids);
			return;
		}
		if (i)
			tb_addc(&ids, LIST_SEP);
		tb_add(&ids, in->relation_ids[i]);
	}
	if (ids.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
	} else {
		const char *params[] = {r->conn->session.session_id,
					in->n_relation_ids ? tb_str(&ids) : NULL,
					*in->from_owner ? in->from_owner : NULL, in->to_owner};
		req_db(r, STMT_HANDOVER_PLAN, 4, params, NULL, NULL, on_handover_plan);
	}
	tb_free(&ids);
}
