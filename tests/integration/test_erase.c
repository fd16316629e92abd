/* Erasure of a customer (personal-information request) over TLS against
 * PostgreSQL, beyond the profile that test_privacy.c checks:
 *   - the Customer record erase appends to the outbox says erased, with
 *     when, and the reply, the card and list rows say so too;
 *   - every free text on the customer's store relations (first contact
 *     place, scenario, feedback, intents' configuration and needs, level
 *     change reasons) is blank, and each relation's erased record is in the
 *     outbox, written by the same transaction as the customer's;
 *   - counts, levels, sources, models, budgets and dates stay;
 *   - text stored verbatim (emoji, SQL metacharacters) is gone;
 *   - a second erase is harmless: OK with existed = true, nothing written;
 *   - callers other than group admins are denied and nothing changes;
 *   - a plan that went stale (a relation changed between the read and the
 *     write) writes nothing;
 *   - crm customer get / show print "erased on DATE".
 *
 * The customer has a relation at BJ01 and one at GZ01 (another brand). */
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

static PGconn *db;

static char cid[37], rid_bj[37], rid_gz[37], phone[24];

/* Text as people type it, stored verbatim before the erase. */
static const char place[] = "展厅😀'; DROP TABLE crm.customers; --";
static const char scenario[] = "朋友介绍 \"引号\" %_\\ 🚗 ' OR '1'='1";
static const char feedback[] = "张先生说周末带太太来试驾 😀 $$; SELECT 1; $$";
static const char configuration[] = "白色 😀 '); DELETE FROM crm.relations; --";
static const char needs[] = "接送孩子上学 🚸 %' --";
static const char level_reason[] = "张先生已试驾 😀 '; UPDATE crm.customers SET name = 'x'; --";

/* ------------------------------------------------------------ helpers */

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

/* A query with up to 9 text parameters; NULL with the error printed. */
static PGresult *db_query(const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "db: %s: %s\n", sql, PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Everything the erase must keep, as one text: relations with owner,
 * level, source, status, dates; intents with model, body type, budgets;
 * level history with levels, who and when; collisions and handovers. */
static const char kept_sql[] =
	"SELECT concat_ws('|',"
	" (SELECT string_agg(concat_ws(',', r.id, r.store_id, r.owner_id, r.level, r.source,"
	"   r.status, r.first_contact_at, r.protected_until, r.last_contact_at,"
	"   r.next_followup_at, r.created_at), ';' ORDER BY r.id)"
	"   FROM crm.relations r WHERE r.customer_id = $1::uuid),"
	" (SELECT string_agg(concat_ws(',', i.relation_id, i.position, i.model, i.body_type,"
	"   i.budget_min, i.budget_max), ';' ORDER BY i.relation_id, i.position)"
	"   FROM crm.relation_intents i JOIN crm.relations r ON r.id = i.relation_id"
	"   WHERE r.customer_id = $1::uuid),"
	" (SELECT string_agg(concat_ws(',', l.id, l.from_level, l.to_level, l.changed_by,"
	"   l.changed_at), ';' ORDER BY l.id)"
	"   FROM crm.level_changes l JOIN crm.relations r ON r.id = l.relation_id"
	"   WHERE r.customer_id = $1::uuid),"
	" (SELECT count(*) FROM crm.lead_collisions k WHERE k.customer_id = $1::uuid),"
	" (SELECT count(*) FROM crm.handovers h JOIN crm.relations r ON r.id = h.relation_id"
	"   WHERE r.customer_id = $1::uuid))";

/* Everything about the customer, as one text: to show that nothing at all
 * changed. */
static const char all_sql[] =
	"SELECT md5(concat_ws('|',"
	" (SELECT row(c.*)::text FROM crm.customers c WHERE c.id = $1::uuid),"
	" (SELECT string_agg(row(p.*)::text, ';' ORDER BY p.phone) FROM crm.customer_phones p"
	"   WHERE p.customer_id = $1::uuid),"
	" (SELECT string_agg(row(r.*)::text, ';' ORDER BY r.id) FROM crm.relations r"
	"   WHERE r.customer_id = $1::uuid),"
	" (SELECT string_agg(row(i.*)::text, ';' ORDER BY i.relation_id, i.position)"
	"   FROM crm.relation_intents i JOIN crm.relations r ON r.id = i.relation_id"
	"   WHERE r.customer_id = $1::uuid),"
	" (SELECT string_agg(row(l.*)::text, ';' ORDER BY l.id)"
	"   FROM crm.level_changes l JOIN crm.relations r ON r.id = l.relation_id"
	"   WHERE r.customer_id = $1::uuid),"
	" (SELECT count(*) FROM crm.outbox o WHERE o.entity_id = $1::uuid OR o.entity_id IN"
	"   (SELECT r.id FROM crm.relations r WHERE r.customer_id = $1::uuid))))";

static char *db_text(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return strdup(v ? v : "(error)");
}

/* How many of the customer's stored texts contain `needle`. */
static long texts_containing(const char *needle)
{
	const char *params[] = {cid, needle};
	PGresult *res = db_query(
		"SELECT (SELECT count(*) FROM crm.relations r WHERE r.customer_id = $1::uuid"
		"   AND strpos(concat_ws('|', r.first_contact_place, r.first_contact_scenario,"
		"   r.first_feedback), $2) > 0)"
		" + (SELECT count(*) FROM crm.relation_intents i JOIN crm.relations r"
		"   ON r.id = i.relation_id WHERE r.customer_id = $1::uuid"
		"   AND strpos(concat_ws('|', i.configuration, i.needs), $2) > 0)"
		" + (SELECT count(*) FROM crm.level_changes l JOIN crm.relations r"
		"   ON r.id = l.relation_id WHERE r.customer_id = $1::uuid AND strpos(l.reason, $2) > 0)"
		" + (SELECT count(*) FROM crm.customers c WHERE c.id = $1::uuid"
		"   AND strpos(concat_ws('|', c.name, c.wechat, c.email, c.occupation, c.region,"
		"   array_to_string(c.tags, '|')), $2) > 0)",
		2, params);
	long n = res ? atol(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	return n;
}

static uint8_t *unhex(const char *hex, size_t *n)
{
	*n = strlen(hex) / 2;
	uint8_t *bytes = malloc(*n ? *n : 1);
	for (size_t i = 0; bytes && i < *n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		bytes[i] = (uint8_t)v;
	}
	return bytes;
}

static long max_outbox_seq(void)
{
	return db_long("SELECT coalesce(max(seq), 0) FROM crm.outbox", NULL);
}

static struct crmc *login(const char *role, const char *store)
{
	return it_login_demo(role, store);
}

static Crm__Envelope *erase(struct crmc *c, const char *id, const char *reason)
{
	Crm__CustomerErase ce = CRM__CUSTOMER_ERASE__INIT;
	ce.id = (char *)id;
	ce.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_ERASE;
	req.customer_erase = &ce;
	return it_call(c, &req);
}

/* Registers the customer (phone `phone`, id `id`) with a relation of the
 * caller's store carrying every kind of free text; the relation id goes to
 * `rid`. */
static bool register_with_text(struct crmc *c, const char *id, char rid[37])
{
	uuid_v7_new(rid);
	Crm__Intent in1 = CRM__INTENT__INIT, in2 = CRM__INTENT__INIT;
	in1.model = (char *)"Q5L";
	in1.body_type = (char *)"suv";
	in1.configuration = (char *)configuration;
	in1.budget_min = 400000;
	in1.budget_max = 500000;
	in1.needs = (char *)needs;
	in2.model = (char *)"A6L";
	in2.body_type = (char *)"sedan";
	in2.needs = (char *)needs;
	Crm__Intent *intents[] = {&in1, &in2};
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.customer_id = (char *)id;
	rel.source = (char *)"referral";
	rel.first_contact_at = 1763000000000;
	rel.first_contact_place = (char *)place;
	rel.first_contact_scenario = (char *)scenario;
	rel.first_feedback = (char *)feedback;
	rel.intents = intents;
	rel.n_intents = 2;
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = (char *)id;
	cu.name = (char *)"张伟明";
	cu.phone = phone;
	cu.region = (char *)"北京市朝阳区😀";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *resp = it_call(c, &req);
	bool ok = resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
		  resp->customer->relation && !strcmp(resp->customer->relation->id, rid);
	if (!ok)
		fprintf(stderr, "register: %s\n", resp ? crmc_status_message(resp) : "no answer");
	it_free(resp);
	return ok;
}

static bool set_level(struct crmc *c, const char *rid)
{
	char sql[] = "SELECT version FROM crm.relations WHERE id = $1::uuid";
	Crm__LevelSet ls = CRM__LEVEL_SET__INIT;
	ls.relation_id = (char *)rid;
	ls.version = (uint64_t)db_long(sql, rid);
	ls.level = (char *)"H";
	ls.reason = (char *)level_reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LEVEL_SET;
	req.level_set = &ls;
	Crm__Envelope *resp = it_call(c, &req);
	bool ok = resp && crmc_status(resp) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "level set: %s\n", resp ? crmc_status_message(resp) : "no answer");
	it_free(resp);
	return ok;
}

/* The customer with a relation at BJ01 (level H, with a reason) and one at
 * GZ01, both with every free text. */
static bool setup(void)
{
	char digits[16];
	it_phone(digits);
	snprintf(phone, sizeof phone, "+86%s", digits);
	uuid_v7_new(cid);
	struct crmc *bj = login("consultant", "BJ01");
	struct crmc *gz = login("consultant", "GZ01");
	bool ok = bj && gz && register_with_text(bj, cid, rid_bj) && set_level(bj, rid_bj) &&
		  register_with_text(gz, cid, rid_gz);
	if (bj)
		crmc_close(bj);
	if (gz)
		crmc_close(gz);
	return ok;
}

/* ------------------------------------------------------------ tests */

/* The text went in verbatim: otherwise "gone after erase" proves nothing. */
static void test_text_stored_verbatim(void)
{
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", cid) == 2);
	const char *params[] = {cid, place, scenario, feedback, configuration, needs, level_reason};
	PGresult *res = db_query(
		"SELECT (SELECT count(*) FROM crm.relations r WHERE r.customer_id = $1::uuid"
		"   AND r.first_contact_place = $2 AND r.first_contact_scenario = $3"
		"   AND r.first_feedback = $4),"
		" (SELECT count(*) FROM crm.relation_intents i JOIN crm.relations r"
		"   ON r.id = i.relation_id WHERE r.customer_id = $1::uuid AND i.needs = $6"
		"   AND (i.configuration = $5 OR i.model = 'A6L')),"
		" (SELECT count(*) FROM crm.level_changes l JOIN crm.relations r"
		"   ON r.id = l.relation_id WHERE r.customer_id = $1::uuid AND l.reason = $7)",
		7, params);
	CHECK(res != NULL);
	if (res) {
		CHECK(atol(PQgetvalue(res, 0, 0)) == 2);
		CHECK(atol(PQgetvalue(res, 0, 1)) == 4);
		CHECK(atol(PQgetvalue(res, 0, 2)) == 1);
		PQclear(res);
	}
	CHECK(texts_containing("😀") > 0);
	CHECK(texts_containing("DROP TABLE") > 0);
}

/* Store roles, analysts and consultants are refused; not one byte of the
 * customer, its relations or the outbox changes. */
static void test_erase_denied_to_non_admins(void)
{
	char *before = db_text(all_sql, cid);
	static const struct {
		const char *role, *store;
	} callers[] = {
		{"consultant", "BJ01"}, {"store_manager", "BJ01"}, {"sales_manager", "GZ01"},
		{"group_analyst", NULL}, {"call_center", "BJ01"},
	};
	for (size_t i = 0; i < sizeof callers / sizeof callers[0]; i++) {
		struct crmc *c = login(callers[i].role, callers[i].store);
		CHECK(c != NULL);
		if (!c)
			continue;
		Crm__Envelope *resp = erase(c, cid, "客户要求删除");
		CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
		if (resp && crmc_status(resp) != CRM__CODE__PERMISSION_DENIED)
			fprintf(stderr, "%s: erase answered %d\n", callers[i].role, crmc_status(resp));
		it_free(resp);
		crmc_close(c);
	}
	char *after = db_text(all_sql, cid);
	CHECK_STR(after, before);
	free(before);
	free(after);
}

/* The session a logged-in connection of `username` holds. */
static bool session_of(const char *username, char out[37])
{
	const char *v = it_db_value(db,
				    "SELECT s.id FROM crm.sessions s JOIN crm.users u ON u.id = s.user_id"
				    " WHERE u.username = $1 AND s.revoked_at IS NULL"
				    " ORDER BY s.created_at DESC LIMIT 1",
				    username);
	if (!v)
		return false;
	snprintf(out, 37, "%s", v);
	return true;
}

/* crm.customer_erase refuses records packed from a stale plan: a relation
 * version that moved on, a relation left out, a relation listed twice. */
static void test_stale_plan_writes_nothing(void)
{
	char user[128], pw[128], sid[37];
	struct crmc *admin = login("group_admin", NULL);
	bool ready = admin && it_demo_user("group_admin", NULL, user, sizeof user, pw, sizeof pw) &&
		     session_of(user, sid);
	CHECK(ready);
	if (!ready) {
		if (admin)
			crmc_close(admin);
		return;
	}
	char *before = db_text(all_sql, cid);
	char version[24], rel_ids[80], stale_versions[48], both_versions[48];
	snprintf(version, sizeof version, "%ld",
		 db_long("SELECT version FROM crm.customers WHERE id = $1::uuid", cid));
	long v_bj = db_long("SELECT version FROM crm.relations WHERE id = $1::uuid", rid_bj);
	long v_gz = db_long("SELECT version FROM crm.relations WHERE id = $1::uuid", rid_gz);
	snprintf(rel_ids, sizeof rel_ids, "%s\x1f%s", rid_bj, rid_gz);
	snprintf(stale_versions, sizeof stale_versions, "%ld\x1f%ld", v_bj - 1, v_gz);
	snprintf(both_versions, sizeof both_versions, "%ld\x1f%ld", v_bj, v_gz);
	char one_id[40], one_version[24], twice_ids[80], twice_versions[48];
	snprintf(one_id, sizeof one_id, "%s", rid_bj);
	snprintf(one_version, sizeof one_version, "%ld", v_bj);
	snprintf(twice_ids, sizeof twice_ids, "%s\x1f%s", rid_bj, rid_bj);
	snprintf(twice_versions, sizeof twice_versions, "%ld\x1f%ld", v_bj, v_bj);
	const char *cases[][2] = {
		{rel_ids, stale_versions}, {one_id, one_version}, {twice_ids, twice_versions}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *params[] = {sid, cid, version, cases[i][0], cases[i][1]};
		PGresult *res = db_query(
			"SELECT DISTINCT x.outcome FROM crm.customer_erase($1::uuid, $2::text, $3::bigint,"
			" 'test', crm.erased_phone($2::text::uuid), $4::text, $5::text,"
			" (extract(epoch FROM now()) * 1000)::bigint, '\\x00000000'::bytea) x",
			5, params);
		CHECK(res && PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "stale"));
		PQclear(res);
	}
	char *after = db_text(all_sql, cid);
	CHECK_STR(after, before);
	free(before);
	free(after);
	crmc_close(admin);
}

/* Checks the relation record of the outbox against the stored relation. */
static void check_outbox_relation(const Crm__Relation *rel)
{
	CHECK_STR(rel->first_contact_place, "");
	CHECK_STR(rel->first_contact_scenario, "");
	CHECK_STR(rel->first_feedback, "");
	CHECK(rel->n_intents == 2);
	for (size_t i = 0; i < rel->n_intents; i++) {
		CHECK_STR(rel->intents[i]->configuration, "");
		CHECK_STR(rel->intents[i]->needs, "");
	}
	if (rel->n_intents == 2) {
		CHECK_STR(rel->intents[0]->model, "Q5L");
		CHECK(rel->intents[0]->budget_min == 400000 && rel->intents[0]->budget_max == 500000);
		CHECK_STR(rel->intents[1]->model, "A6L");
	}
	CHECK_STR(rel->source, "referral");
	CHECK(rel->first_contact_at == 1763000000000);
	CHECK_STR(rel->customer_id, cid);
	/* Exactly what is stored now: version, level, time of the change. */
	const char *params[] = {rel->id};
	PGresult *res = db_query("SELECT version, level, updated_at_ms FROM crm.relation_view"
				 " WHERE id = $1::uuid",
				 1, params);
	CHECK(res && PQntuples(res) == 1);
	if (res && PQntuples(res) == 1) {
		CHECK(rel->version == strtoull(PQgetvalue(res, 0, 0), NULL, 10));
		CHECK_STR(rel->level, PQgetvalue(res, 0, 1));
		CHECK(rel->updated_at == strtoll(PQgetvalue(res, 0, 2), NULL, 10));
	}
	PQclear(res);
}

/* The erase: reply, store, outbox. */
static void test_erase_blanks_relations_and_flags_the_outbox(void)
{
	char *kept_before = db_text(kept_sql, cid);
	long seq_before = max_outbox_seq();
	long rel_versions_before = db_long(
		"SELECT sum(version) FROM crm.relations WHERE customer_id = $1::uuid", cid);
	struct crmc *admin = login("group_admin", NULL);
	if (!admin) {
		CHECK(false);
		return;
	}
	Crm__Envelope *resp = erase(admin, cid, "客户依法要求删除个人信息");
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
	      resp->customer->customer);
	int64_t erased_at = 0;
	if (resp && resp->customer && resp->customer->customer) {
		const Crm__Customer *cu = resp->customer->customer;
		CHECK(!resp->customer->existed);
		CHECK(cu->erased);
		CHECK(cu->erased_at > 0);
		CHECK_STR(cu->name, "已删除客户");
		CHECK_STR(cu->region, "");
		erased_at = cu->erased_at;
		CHECK(cu->updated_at == erased_at);
	} else if (resp) {
		fprintf(stderr, "erase: %s\n", crmc_status_message(resp));
	}
	it_free(resp);

	/* Store: free text blank, everything counted kept, versions up. */
	char *kept_after = db_text(kept_sql, cid);
	CHECK_STR(kept_after, kept_before);
	free(kept_before);
	free(kept_after);
	CHECK(db_long("SELECT sum(version) FROM crm.relations WHERE customer_id = $1::uuid", cid) ==
	      rel_versions_before + 2);
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid"
		      " AND first_contact_place = '' AND first_contact_scenario = ''"
		      " AND first_feedback = ''", cid) == 2);
	CHECK(db_long("SELECT count(*) FROM crm.relation_intents i JOIN crm.relations r"
		      " ON r.id = i.relation_id WHERE r.customer_id = $1::uuid"
		      " AND i.configuration = '' AND i.needs = ''", cid) == 4);
	CHECK(db_long("SELECT count(*) FROM crm.level_changes l JOIN crm.relations r"
		      " ON r.id = l.relation_id WHERE r.customer_id = $1::uuid AND l.reason <> ''",
		      cid) == 0);
	CHECK(texts_containing("😀") == 0);
	CHECK(texts_containing("🚗") == 0);
	CHECK(texts_containing("DROP TABLE") == 0);
	CHECK(texts_containing("张") == 0);

	/* Outbox: the customer, then both relations, one transaction. */
	char after_s[24];
	snprintf(after_s, sizeof after_s, "%ld", seq_before);
	const char *params[] = {after_s, cid};
	PGresult *res = db_query(
		"SELECT o.seq, o.entity, o.entity_id, encode(o.payload, 'hex'), o.xmin::text"
		" FROM crm.outbox o WHERE o.seq > $1::bigint AND (o.entity_id = $2::uuid"
		" OR o.entity_id IN (SELECT r.id FROM crm.relations r WHERE r.customer_id = $2::uuid))"
		" ORDER BY o.seq",
		2, params);
	CHECK(res && PQntuples(res) == 3);
	if (res && PQntuples(res) == 3) {
		CHECK_STR(PQgetvalue(res, 0, 1), "customer");
		CHECK_STR(PQgetvalue(res, 0, 2), cid);
		bool one_xact = !strcmp(PQgetvalue(res, 0, 4), PQgetvalue(res, 1, 4)) &&
				!strcmp(PQgetvalue(res, 0, 4), PQgetvalue(res, 2, 4));
		CHECK(one_xact);
		CHECK(atol(PQgetvalue(res, 1, 0)) == atol(PQgetvalue(res, 0, 0)) + 1 &&
		      atol(PQgetvalue(res, 2, 0)) == atol(PQgetvalue(res, 0, 0)) + 2);
		size_t n;
		uint8_t *bytes = unhex(PQgetvalue(res, 0, 3), &n);
		Crm__Customer *out = bytes ? crm__customer__unpack(NULL, n, bytes) : NULL;
		free(bytes);
		CHECK(out != NULL);
		if (out) {
			CHECK(out->erased);
			CHECK(out->erased_at == erased_at);
			CHECK_STR(out->name, "已删除客户");
			CHECK_STR(out->region, "");
			crm__customer__free_unpacked(out, NULL);
		}
		bool saw_bj = false, saw_gz = false;
		for (int i = 1; i < 3; i++) {
			CHECK_STR(PQgetvalue(res, i, 1), "relation");
			bytes = unhex(PQgetvalue(res, i, 3), &n);
			Crm__Relation *rel = bytes ? crm__relation__unpack(NULL, n, bytes) : NULL;
			free(bytes);
			CHECK(rel != NULL && !strcmp(rel->id, PQgetvalue(res, i, 2)));
			if (!rel)
				continue;
			saw_bj = saw_bj || !strcmp(rel->id, rid_bj);
			saw_gz = saw_gz || !strcmp(rel->id, rid_gz);
			CHECK(rel->updated_at == erased_at);
			check_outbox_relation(rel);
			crm__relation__free_unpacked(rel, NULL);
		}
		CHECK(saw_bj && saw_gz);
	}
	PQclear(res);
	crmc_close(admin);
}

/* Erasing again answers OK with existed = true and writes nothing: not the
 * store, not the outbox, not the audit log. */
static void test_second_erase_is_harmless(void)
{
	char *before = db_text(all_sql, cid);
	long seq_before = max_outbox_seq();
	long audited = db_long("SELECT count(*) FROM crm.audit_log WHERE customer_id = $1::uuid"
			       " AND action = 'customer.erase'", cid);
	struct crmc *admin = login("group_admin", NULL);
	Crm__Envelope *resp = admin ? erase(admin, cid, "重复请求") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
	      resp->customer->existed && resp->customer->customer &&
	      resp->customer->customer->erased);
	it_free(resp);
	if (admin)
		crmc_close(admin);
	char *after = db_text(all_sql, cid);
	CHECK_STR(after, before);
	free(before);
	free(after);
	char seq_s[24];
	snprintf(seq_s, sizeof seq_s, "%ld", seq_before);
	const char *params[] = {seq_s, cid};
	PGresult *res = db_query(
		"SELECT count(*) FROM crm.outbox o WHERE o.seq > $1::bigint AND (o.entity_id = $2::uuid"
		" OR o.entity_id IN (SELECT r.id FROM crm.relations r WHERE r.customer_id = $2::uuid))",
		2, params);
	CHECK(res && atol(PQgetvalue(res, 0, 0)) == 0);
	PQclear(res);
	CHECK(db_long("SELECT count(*) FROM crm.audit_log WHERE customer_id = $1::uuid"
		      " AND action = 'customer.erase'", cid) == audited);
}

/* Get, card and list rows say erased; the card's relations keep level,
 * source and models and lose the text. */
static void test_readers_see_erased(void)
{
	struct crmc *bj = login("store_manager", "BJ01");
	if (!bj) {
		CHECK(false);
		return;
	}
	Crm__Envelope *resp = it_get(bj, cid);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
	      resp->customer->customer && resp->customer->customer->erased &&
	      resp->customer->customer->erased_at > 0);
	it_free(resp);

	Crm__CustomerCardRequest cr = CRM__CUSTOMER_CARD_REQUEST__INIT;
	cr.id = cid;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CARD_GET;
	req.customer_card_get = &cr;
	resp = it_call(bj, &req);
	const Crm__CustomerCard *card = resp ? resp->customer_card : NULL;
	CHECK(card && card->customer && card->customer->erased && card->n_relations == 2);
	if (card && card->n_relations == 2) {
		const Crm__Relation *mine = card->relations[0];
		CHECK_STR(mine->id, rid_bj);
		CHECK_STR(mine->level, "H");
		CHECK_STR(mine->source, "referral");
		CHECK_STR(mine->first_feedback, "");
		CHECK(mine->n_intents == 2 && !strcmp(mine->intents[0]->model, "Q5L") &&
		      !strcmp(mine->intents[0]->needs, ""));
		CHECK(card->n_level_history == 3); /* N and H at BJ01, N at GZ01 */
		for (size_t i = 0; i < card->n_level_history; i++)
			CHECK_STR(card->level_history[i]->reason, "");
	}
	it_free(resp);

	/* The store's list: the row of the erased customer says so. */
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.model = (char *)"Q5L";
	cl.page_size = 500;
	req = (Crm__Envelope)CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = &cl;
	req.credit = 1024;
	uint64_t id = crmc_send(bj, &req);
	bool found = false;
	for (;;) {
		char err[256];
		resp = crmc_wait(bj, id, 20000, err, sizeof err);
		if (!resp || crmc_status(resp) != CRM__CODE__OK || !resp->customer_page) {
			fprintf(stderr, "list: %s\n", resp ? crmc_status_message(resp) : err);
			CHECK(false);
			it_free(resp);
			break;
		}
		for (size_t i = 0; i < resp->customer_page->n_rows; i++) {
			const Crm__CustomerRow *row = resp->customer_page->rows[i];
			if (row->customer && !strcmp(row->customer->id, cid)) {
				found = true;
				CHECK(row->customer->erased);
				CHECK(row->relation && !strcmp(row->relation->first_contact_place, ""));
			}
		}
		bool more = resp->more;
		it_free(resp);
		if (!more)
			break;
	}
	CHECK(found);
	crmc_close(bj);
}

/* crm customer get and show print "erased on DATE" instead of empty
 * fields. Runs the crm binary with the demo store manager's login. */
static void test_cli_prints_erased(void)
{
	char user[128], pw[128], dir[256];
	CHECK(it_demo_user("store_manager", "BJ01", user, sizeof user, pw, sizeof pw));
	snprintf(dir, sizeof dir, "%s/erase-cli-%ld", it_env("CRM_TEST_DIR"), (long)getpid());
	static const char *const commands[] = {"customer get", "customer show"};
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		char cmd[2048], out[16384] = "";
		snprintf(cmd, sizeof cmd,
			 "mkdir -p '%s' && export CRM_CONFIG_DIR='%s' && "
			 "{ [ -s '%s/session' ] || printf '%%s\\n' '%s' | '%s/crm' login --user '%s'"
			 " --password-stdin >/dev/null 2>&1; } ; '%s/crm' %s %s </dev/null 2>&1",
			 dir, dir, dir, pw, it_env("CRM_BUILD_DIR"), user, it_env("CRM_BUILD_DIR"),
			 commands[i], cid);
		FILE *p = popen(cmd, "r");
		CHECK(p != NULL);
		if (!p)
			continue;
		size_t n = fread(out, 1, sizeof out - 1, p);
		out[n] = '\0';
		int status = pclose(p);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		bool says = strstr(out, "erased on 20") != NULL;
		CHECK(says);
		CHECK(strstr(out, "+860") == NULL); /* no placeholder phone shown */
		if (!says)
			fprintf(stderr, "crm %s:\n%s\n", commands[i], out);
	}
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	bool ready = setup();
	CHECK(ready);
	if (ready) {
		test_text_stored_verbatim();
		test_erase_denied_to_non_admins();
		test_stale_plan_writes_nothing();
		test_erase_blanks_relations_and_flags_the_outbox();
		test_second_erase_is_harmless();
		test_readers_see_erased();
		test_cli_prints_erased();
	}
	PQfinish(db);
	return it_summary();
}
