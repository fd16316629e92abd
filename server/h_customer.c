/* Customers: create and get.
 *
 * A create by a store role registers the customer and the store's relation
 * to them in two steps: STMT_CREATE_CONTEXT reads what crmd needs to pack
 * the relation as it will be written (the owner, the store, the protection
 * period, the customer the phones already belong to, the body types of the
 * intended models), then STMT_CUSTOMER_CREATE writes through
 * write_with_outbox() and decides existing records and lead-protection
 * collisions in its transaction. When a registration of the same phone
 * slipped in between the two, the write answers 'retry' having written
 * nothing, and both steps run once more. Group roles register only the
 * customer, in one step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

static bool is_group_role(const struct session *s)
{
	return s->store_code[0] == '\0';
}

/* Validates the request; on failure the request is already answered. */
static bool create_check(struct request *r, struct phone_set *ps)
{
	const Crm__CustomerCreate *in = r->env->customer_create;
	const Crm__Customer *cu = in->customer;
	if (!cu) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer", "customer is required");
		return false;
	}
	if (!uuid_is_v7(cu->id)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "customer.id",
			 "customer.id must be a UUID version 7 chosen by the client");
		return false;
	}
	if (!profile_check(r, cu) || !phones_collect(r, cu, ps))
		return false;
	if (is_group_role(&r->conn->session) || !in->relation)
		return true;
	if (!uuid_is_v7(in->relation->id)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "relation.id",
			 "relation.id must be a UUID version 7 chosen by the client");
		return false;
	}
	char why[256];
	if (!text_field_ok("relation.owner", in->relation->owner ? in->relation->owner : "", 64,
			   false, why, sizeof why)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "relation.owner", "%s", why);
		return false;
	}
	return relation_check(r, in->relation, true);
}

static void on_created(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	reply_customer_rows(r, res, NULL);
}

static void create_context(struct request *r, const struct phone_set *ps, pool_cb cb);
static void on_context_again(void *arg, const PGresult *res, const struct pool_error *err);

/* A first write may find that the phones now belong to a customer
 * registered meanwhile, after the context was read: read it again and
 * write once more (a second 'retry' answers CONFLICT). */
static void on_created_first(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	struct phone_set ps;
	if (err->code == CRM__CODE__OK && PQnfields(res) == REPLY_NCOLS && PQntuples(res) > 0 &&
	    !strcmp(PQgetvalue(res, 0, 0), "retry")) {
		r->query = NULL;
		if (create_check(r, &ps))
			create_context(r, &ps, on_context_again);
		return;
	}
	on_created(arg, res, err);
}

/* The Customer as the create writes it when it is new. */
static bool customer_record(struct request *r, const struct phone_set *ps, int64_t at,
			    Crm__Customer *rec, struct scratch *sc)
{
	const struct session *s = &r->conn->session;
	*rec = *r->env->customer_create->customer;
	rec->version = 1;
	rec->created_at = at;
	rec->updated_at = at;
	rec->created_by = (char *)s->username;
	rec->store_code = (char *)s->store_code;
	rec->name = trim_blanks(rec->name, sc);
	return rec->name && phones_to_customer(ps, rec, sc);
}

/* The write itself. `ctx` is the STMT_CREATE_CONTEXT row (NULL for group
 * roles, which open no relation). */
static void create_write(struct request *r, const struct phone_set *ps, const PGresult *ctx,
			 pool_cb cb)
{
	const Crm__CustomerCreate *in = r->env->customer_create;
	const struct session *s = &r->conn->session;
	struct scratch sc = {0};
	struct textbuf phones = {0}, tags = {0}, intents = {0};
	int64_t at = now_ms();
	Crm__Customer cu;
	Crm__Relation rel = CRM__RELATION__INIT;
	char rel_id[37], at_s[24], birth_s[16], fc_s[24], until_s[24];
	bool ok = customer_record(r, ps, at, &cu, &sc);
	const ProtobufCMessage *records[2] = {&cu.base, &rel.base};
	if (ctx) {
		if (in->relation)
			rel = *in->relation;
		else
			crm__relation__init(&rel);
		if (!rel.id || !*rel.id) {
			uuid_v7_new(rel_id);
			rel.id = rel_id;
		}
		const char *existing = PQgetvalue(ctx, 0, 0);
		rel.customer_id = *existing ? (char *)existing : cu.id;
		rel.owner = PQgetvalue(ctx, 0, 1);
		rel.owner_name = PQgetvalue(ctx, 0, 2);
		rel.store_code = PQgetvalue(ctx, 0, 3);
		rel.store_name = PQgetvalue(ctx, 0, 4);
		rel.brand = PQgetvalue(ctx, 0, 5);
		int64_t days = strtoll(PQgetvalue(ctx, 0, 6), NULL, 10);
		if (!rel.level || !*rel.level)
			rel.level = (char *)"N";
		if (!rel.source || !*rel.source)
			rel.source = (char *)"other";
		if (!rel.status || !*rel.status)
			rel.status = (char *)"active";
		rel.version = 1;
		rel.created_at = at;
		rel.updated_at = at;
		rel.protected_until = at + days * 86400000;
		/* The first contact is the last one until follow-ups are recorded;
		 * a lead registered without one has never been contacted. */
		rel.last_contact_at = rel.first_contact_at;
		rel.next_followup_at = 0;
		ok = intents_fill(&rel, PQgetvalue(ctx, 0, 7), &sc) && ok;
		intents_text(&rel, &intents);
	}
	phones_text(ps, &phones);
	tags_text(&cu, &tags);
	if (!ok || phones.oom || tags.oom || intents.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto done;
	}
	snprintf(at_s, sizeof at_s, "%lld", (long long)at);
	snprintf(birth_s, sizeof birth_s, "%u", cu.birth_year);
	snprintf(fc_s, sizeof fc_s, "%lld", (long long)rel.first_contact_at);
	snprintf(until_s, sizeof until_s, "%lld", (long long)rel.protected_until);
	const char *params[] = {
		s->session_id, cu.id, cu.name, tb_str(&phones), cu.gender, birth_s, cu.age_band,
		cu.wechat, cu.email, cu.occupation, cu.region, tb_str(&tags),
		cu.important ? "true" : "false", at_s,
		ctx ? rel.id : NULL, ctx ? rel.customer_id : NULL, ctx ? rel.owner : NULL,
		ctx ? rel.level : NULL, ctx ? rel.source : NULL, fc_s,
		ctx ? rel.first_contact_place : NULL, ctx ? rel.first_contact_scenario : NULL,
		ctx ? rel.first_feedback : NULL, ctx ? rel.status : NULL, tb_str(&intents),
		until_s,
	};
	write_with_outbox(r, STMT_CUSTOMER_CREATE, (int)(sizeof params / sizeof params[0]), params,
			  records, ctx ? 2 : 1, cb);
done:
	tb_free(&phones);
	tb_free(&tags);
	tb_free(&intents);
	scratch_free(&sc);
}

static bool context_ok(struct request *r, const PGresult *res, const struct pool_error *err,
		       struct phone_set *ps)
{
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return false;
	}
	if (!result_shape_ok(r, res, 8))
		return false;
	/* The same request passed before: this cannot fail. */
	return create_check(r, ps);
}

static void on_context(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	struct phone_set ps;
	if (context_ok(r, res, err, &ps))
		create_write(r, &ps, res, on_created_first);
}

static void on_context_again(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	struct phone_set ps;
	if (context_ok(r, res, err, &ps))
		create_write(r, &ps, res, on_created);
}

static void create_context(struct request *r, const struct phone_set *ps, pool_cb cb)
{
	const struct session *s = &r->conn->session;
	const Crm__Relation *rel = r->env->customer_create->relation;
	struct textbuf phones = {0}, models = {0};
	phones_text(ps, &phones);
	for (size_t i = 0; rel && i < rel->n_intents; i++) {
		if (i)
			tb_addc(&models, LIST_SEP);
		tb_add(&models, rel->intents[i]->model);
	}
	if (phones.oom || models.oom) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
	} else {
		const char *params[] = {s->session_id, r->env->customer_create->customer->id,
					tb_str(&phones), rel && rel->owner ? rel->owner : "",
					tb_str(&models)};
		req_db(r, STMT_CREATE_CONTEXT, 5, params, NULL, NULL, cb);
	}
	tb_free(&phones);
	tb_free(&models);
}

void h_customer_create(struct request *r)
{
	struct phone_set ps;
	if (!create_check(r, &ps))
		return;
	/* Group analysts never get here: the handler table refuses them. */
	const struct session *s = &r->conn->session;
	if (is_group_role(s))
		create_write(r, &ps, NULL, on_created);
	else
		create_context(r, &ps, on_context);
}

static void on_got(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	reply_customer_rows(r, res, NULL);
}

void h_customer_get(struct request *r)
{
	const char *id = r->env->customer_get->id;
	uint8_t raw[16];
	if (!uuid_parse(id, raw)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "id",
			 "id must be a UUID like 0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
		return;
	}
	const char *params[] = {r->conn->session.session_id, id};
	req_db(r, STMT_CUSTOMER_GET, 2, params, NULL, NULL, on_got);
}
