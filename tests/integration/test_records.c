/* Customer records over TLS against PostgreSQL: the profile, phones unique
 * across all of a customer's phones, lead protection and collisions,
 * versioned updates, levels and their history, handover, input checks, and
 * one outbox change per record written.
 *
 * The demo group has BJ01 and SH01 (same brand) and GZ01 (another brand),
 * one user per role each; the second and third consultants of BJ01 that
 * these rules need are added here as the database superuser. */
#include <time.h>

#include "itest.h"
#include "textcheck.h"

#define TEST_PASSWORD "records-test-pw-1"

static PGconn *db;
static char started_at[64]; /* database time when this test began */

/* ------------------------------------------------------------ helpers */

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static const char *db_text(const char *sql, const char *param)
{
	return it_db_value(db, sql, param);
}

static long outbox_count(void)
{
	return db_long("SELECT count(*) FROM crm.outbox", NULL);
}

/* A store user made here (consultants beyond the demo's one per store). */
static bool add_user(const char *username, const char *display, const char *role,
		     const char *store)
{
	return it_add_user(db, username, display, role, store, TEST_PASSWORD);
}

static struct crmc *login_user(const char *user, const char *password)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, password) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

/* The demo user with `role` at `store`. */
static struct crmc *login_at(const char *role, const char *store)
{
	return it_login_demo(role, store);
}

static struct crmc *login_added(const char *user)
{
	return login_user(user, TEST_PASSWORD);
}

static Crm__Envelope *send_create(struct crmc *c, Crm__Customer *cu, Crm__Relation *rel)
{
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = cu;
	cc.relation = rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	return it_call(c, &req);
}

/* Registers `name`/`phone` with a new customer id and relation id (kept in
 * `id` / `rel_id` when not NULL); `owner` names the relation's owner. */
static Crm__Envelope *create(struct crmc *c, const char *name, const char *phone,
			     const char *owner, char *id, char *rel_id)
{
	char cid[37], rid[37];
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	if (id)
		memcpy(id, cid, 37);
	if (rel_id)
		memcpy(rel_id, rid, 37);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)name;
	cu.phone = (char *)phone;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.owner = (char *)(owner ? owner : "");
	rel.source = (char *)"walk_in";
	return send_create(c, &cu, &rel);
}

static Crm__Envelope *update_customer(struct crmc *c, const char *id, uint64_t version,
				      const char **fields, size_t nfields, Crm__Customer *cu)
{
	Crm__CustomerUpdate u = CRM__CUSTOMER_UPDATE__INIT;
	u.id = (char *)id;
	u.version = version;
	u.fields = (char **)fields;
	u.n_fields = nfields;
	u.customer = cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_UPDATE;
	req.customer_update = &u;
	return it_call(c, &req);
}

static Crm__Envelope *update_relation(struct crmc *c, const char *id, uint64_t version,
				      const char **fields, size_t nfields, Crm__Relation *rel)
{
	Crm__RelationUpdate u = CRM__RELATION_UPDATE__INIT;
	u.id = (char *)id;
	u.version = version;
	u.fields = (char **)fields;
	u.n_fields = nfields;
	u.relation = rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_RELATION_UPDATE;
	req.relation_update = &u;
	return it_call(c, &req);
}

static Crm__Envelope *set_level(struct crmc *c, const char *rel_id, uint64_t version,
				const char *level, const char *reason)
{
	Crm__LevelSet ls = CRM__LEVEL_SET__INIT;
	ls.relation_id = (char *)rel_id;
	ls.version = version;
	ls.level = (char *)level;
	ls.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LEVEL_SET;
	req.level_set = &ls;
	return it_call(c, &req);
}

static Crm__Envelope *hand_over(struct crmc *c, const char **ids, size_t n, const char *from,
				const char *to, const char *reason)
{
	Crm__HandoverRequest h = CRM__HANDOVER_REQUEST__INIT;
	h.relation_ids = (char **)ids;
	h.n_relation_ids = n;
	h.from_owner = (char *)(from ? from : "");
	h.to_owner = (char *)to;
	h.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_HANDOVER;
	req.handover = &h;
	return it_call(c, &req);
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__UNAVAILABLE;
}

static bool ok_customer(const Crm__Envelope *e)
{
	if (e && crmc_status(e) != CRM__CODE__OK)
		fprintf(stderr, "  status %s: %s\n", crmc_code_name(crmc_status(e)),
			crmc_status_message(e));
	return e && crmc_status(e) == CRM__CODE__OK && e->customer && e->customer->customer;
}

static bool contains(const char *s, const char *part)
{
	if (s && strstr(s, part))
		return true;
	fprintf(stderr, "  \"%s\" lacks \"%s\"\n", s ? s : "(null)", part);
	return false;
}

static void expect_invalid(Crm__Envelope *e, const char *field, const char *words)
{
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	if (e && e->status) {
		CHECK_STR(e->status->field, field);
		CHECK(contains(e->status->message, words));
	}
	it_free(e);
}

/* A landline unique to this run, from a unique mobile's digits. */
static void landline(char out[20])
{
	char m[16];
	it_phone(m);
	snprintf(out, 20, "010-6%.7s", m + 4);
}

/* The newest outbox change of `id` packs exactly `record` (the record as
 * the reply shows it after the write). */
static bool outbox_holds(const char *id, const ProtobufCMessage *record)
{
	PGresult *res = PQexecParams(db, "SELECT payload FROM crm.outbox WHERE entity_id = $1::uuid"
					 " ORDER BY seq DESC LIMIT 1",
				     1, NULL, (const char *[]){id}, NULL, NULL, 1);
	bool same = false;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		size_t n = protobuf_c_message_get_packed_size(record);
		uint8_t *want = malloc(n + 1);
		if (want) {
			protobuf_c_message_pack(record, want);
			same = (size_t)PQgetlength(res, 0, 0) == n &&
			       memcmp(PQgetvalue(res, 0, 0), want, n) == 0;
			free(want);
		}
	}
	PQclear(res);
	if (!same)
		fprintf(stderr, "  outbox payload of %s differs from the record\n", id);
	return same;
}

/* ------------------------------------------------------------ tests */

static void test_profile_round_trip(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	PGresult *m = PQexec(db, "INSERT INTO crm.models VALUES ('一汽奥迪', 'Q5L', 'suv')"
				 " ON CONFLICT DO NOTHING");
	PQclear(m);
	char id[37], rid[37], mobile[16], land[20], written[32];
	uuid_v7_new(id);
	uuid_v7_new(rid);
	it_phone(mobile);
	landline(land);
	snprintf(written, sizeof written, "+86 %.3s %.4s %.4s", mobile, mobile + 3, mobile + 7);
	Crm__Phone second = CRM__PHONE__INIT;
	second.number = land;
	Crm__Phone *phones[] = {&second};
	char *tags[] = {"VIP", "老客户"};
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = id;
	cu.name = " 李雪　"; /* stored, and sent to the outbox, without the blanks */
	cu.phone = written;
	cu.phones = phones;
	cu.n_phones = 1;
	cu.gender = "female";
	cu.age_band = "25-34";
	cu.wechat = "lixue_88";
	cu.email = "lixue@example.cn";
	cu.occupation = "教师";
	cu.region = "北京市朝阳区";
	cu.tags = tags;
	cu.n_tags = 2;
	cu.important = true;
	Crm__Intent i1 = CRM__INTENT__INIT, i2 = CRM__INTENT__INIT;
	i1.model = "Q5L";
	i1.configuration = "白色 豪华型";
	i1.budget_min = 400000;
	i1.budget_max = 500000;
	i1.needs = "家用，周末自驾";
	i2.model = "A6L";
	i2.body_type = "sedan";
	Crm__Intent *intents[] = {&i1, &i2};
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = "referral";
	rel.first_contact_at = 1764000000000;
	rel.first_contact_place = "展厅";
	rel.first_contact_scenario = "周末试驾活动";
	rel.first_feedback = "对空间满意";
	rel.intents = intents;
	rel.n_intents = 2;
	long before = outbox_count();
	Crm__Envelope *e = send_create(c, &cu, &rel);
	CHECK(ok_customer(e));
	for (int pass = 0; pass < 2 && ok_customer(e); pass++) {
		const Crm__CustomerReply *cr = e->customer;
		const Crm__Customer *got = cr->customer;
		char canonical[24], land_canonical[24];
		snprintf(canonical, sizeof canonical, "+86%s", mobile);
		snprintf(land_canonical, sizeof land_canonical, "+8610%s", land + 4);
		CHECK(!cr->existed);
		CHECK_STR(got->id, id);
		CHECK_STR(got->name, "李雪");
		CHECK_STR(got->phone, canonical);
		CHECK(got->n_phones == 2);
		if (got->n_phones == 2) {
			CHECK_STR(got->phones[0]->number, canonical);
			CHECK(got->phones[0]->primary);
			CHECK_STR(got->phones[0]->kind, "mobile");
			CHECK_STR(got->phones[1]->number, land_canonical);
			CHECK(!got->phones[1]->primary);
			CHECK_STR(got->phones[1]->kind, "landline");
		}
		CHECK_STR(got->gender, "female");
		CHECK(got->birth_year == 0);
		CHECK_STR(got->age_band, "25-34");
		CHECK_STR(got->wechat, "lixue_88");
		CHECK_STR(got->email, "lixue@example.cn");
		CHECK_STR(got->occupation, "教师");
		CHECK_STR(got->region, "北京市朝阳区");
		CHECK(got->n_tags == 2 && !strcmp(got->tags[0], "VIP") && !strcmp(got->tags[1], "老客户"));
		CHECK(got->important);
		CHECK(got->version == 1);
		CHECK_STR(got->created_by, "bj01.consultant");
		CHECK_STR(got->store_code, "BJ01");
		const Crm__Relation *r = cr->relation;
		CHECK(r != NULL);
		if (r) {
			CHECK_STR(r->id, rid);
			CHECK_STR(r->customer_id, id);
			CHECK_STR(r->store_code, "BJ01");
			CHECK_STR(r->owner, "bj01.consultant");
			CHECK_STR(r->level, "N");
			CHECK_STR(r->source, "referral");
			CHECK_STR(r->status, "active");
			CHECK(r->first_contact_at == 1764000000000);
			/* The first contact counts as the last until follow-ups exist. */
			CHECK(r->last_contact_at == 1764000000000);
			CHECK_STR(r->first_contact_place, "展厅");
			CHECK_STR(r->first_contact_scenario, "周末试驾活动");
			CHECK_STR(r->first_feedback, "对空间满意");
			CHECK(r->version == 1);
			CHECK(r->protected_until == r->created_at + 30LL * 86400000);
			CHECK(r->n_intents == 2);
			if (r->n_intents == 2) {
				CHECK_STR(r->intents[0]->model, "Q5L");
				CHECK_STR(r->intents[0]->body_type, "suv"); /* from crm.models */
				CHECK_STR(r->intents[0]->configuration, "白色 豪华型");
				CHECK(r->intents[0]->budget_min == 400000);
				CHECK(r->intents[0]->budget_max == 500000);
				CHECK_STR(r->intents[0]->needs, "家用，周末自驾");
				CHECK_STR(r->intents[1]->body_type, "sedan");
			}
		}
		CHECK(cr->n_other_relations == 0);
		if (pass == 0) {
			/* The outbox holds the records exactly as the reply shows them. */
			CHECK(outbox_count() == before + 2);
			PGresult *res = PQexecParams(
				db, "SELECT entity, payload FROM crm.outbox WHERE entity_id IN ($1, $2)"
				    " ORDER BY seq", 2, NULL, (const char *[]){id, rid}, NULL,
				(const int[]){0, 0}, 1);
			CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 2);
			if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 2) {
				Crm__Customer *pc = crm__customer__unpack(
					NULL, (size_t)PQgetlength(res, 0, 1),
					(const uint8_t *)PQgetvalue(res, 0, 1));
				Crm__Relation *pr = crm__relation__unpack(
					NULL, (size_t)PQgetlength(res, 1, 1),
					(const uint8_t *)PQgetvalue(res, 1, 1));
				CHECK(pc && pr);
				if (pc && pr) {
					uint8_t a[4096], b[4096];
					CHECK(crm__customer__get_packed_size(pc) ==
					      crm__customer__get_packed_size(got));
					size_t na = crm__customer__pack(pc, a);
					size_t nb = crm__customer__pack(got, b);
					CHECK(na == nb && memcmp(a, b, na) == 0);
					na = crm__relation__pack(pr, a);
					nb = crm__relation__pack(r, b);
					CHECK(na == nb && memcmp(a, b, na) == 0);
				}
				if (pc)
					crm__customer__free_unpacked(pc, NULL);
				if (pr)
					crm__relation__free_unpacked(pr, NULL);
			}
			PQclear(res);
			long first = db_long("SELECT count(*) FROM crm.level_changes WHERE relation_id ="
					     " $1::uuid AND from_level IS NULL AND to_level = 'N'", rid);
			CHECK(first == 1);
			it_free(e);
			e = it_get(c, id);
			CHECK(ok_customer(e));
		}
	}
	it_free(e);
	crmc_close(c);
}

static void test_phone_unique_across_all_phones(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char id1[37], id2[37], rid2[37], p1[16], p2[16];
	uuid_v7_new(id1);
	it_phone(p1);
	it_phone(p2);
	Crm__Phone sec = CRM__PHONE__INIT;
	sec.number = p2;
	Crm__Phone *phones[] = {&sec};
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = id1;
	cu.name = "周一";
	cu.phone = p1;
	cu.phones = phones;
	cu.n_phones = 1;
	Crm__Envelope *a = send_create(c, &cu, NULL);
	CHECK(ok_customer(a));
	long before = outbox_count();
	char other_writing[32];
	snprintf(other_writing, sizeof other_writing, "0086-%s", p2);
	Crm__Envelope *b = create(c, "周二", other_writing, "", id2, rid2);
	CHECK(ok_customer(b));
	if (ok_customer(b)) {
		CHECK(b->customer->existed);
		CHECK_STR(b->customer->customer->id, id1);
		CHECK_STR(b->customer->customer->name, "周一");
	}
	CHECK(db_long("SELECT count(*) FROM crm.customers WHERE id = $1::uuid", id2) == 0);
	/* The first create opened the store's relation already: nothing new. */
	CHECK(outbox_count() == before);
	it_free(a);
	it_free(b);
	crmc_close(c);
}

/* Message names the owner, the store and the protection end (UTC+8). */
static void check_collision(Crm__Envelope *e, const char *customer_id, const char *owner,
			    const char *owner_store, const char *attempted_by,
			    const char *attempted_store)
{
	CHECK(code_of(e) == CRM__CODE__CONFLICT);
	if (!e || !e->customer) {
		CHECK(!"a collision carries a CustomerReply");
		return;
	}
	const Crm__CustomerReply *cr = e->customer;
	CHECK(cr->customer && !strcmp(cr->customer->id, customer_id));
	CHECK(cr->collision != NULL);
	if (!cr->collision)
		return;
	const Crm__Collision *k = cr->collision;
	CHECK_STR(k->customer_id, customer_id);
	CHECK_STR(k->owner, owner);
	CHECK_STR(k->owner_store_code, owner_store);
	CHECK_STR(k->attempted_by, attempted_by);
	CHECK_STR(k->attempted_store_code, attempted_store);
	CHECK(k->protected_until > k->at);
	time_t t = (time_t)(k->protected_until / 1000) + 8 * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	char end[32];
	strftime(end, sizeof end, "%Y-%m-%d %H:%M", &tm);
	const char *msg = e->status ? e->status->message : "";
	CHECK(contains(msg, owner));
	CHECK(contains(msg, owner_store));
	CHECK(contains(msg, end));
	long rows = db_long("SELECT count(*) FROM crm.lead_collisions k JOIN crm.users u"
			    " ON u.id = k.attempted_by WHERE k.customer_id = $1::uuid", customer_id);
	CHECK(rows >= 1);
}

static void test_collision_same_store_other_consultant(void)
{
	struct crmc *first = login_at("consultant", "BJ01");
	struct crmc *second = login_added("bj01.consultant2");
	if (!first || !second)
		goto out;
	char id[37], rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(first, "韩梅梅", phone, "", id, rid);
	CHECK(ok_customer(a));
	long out_before = outbox_count();
	Crm__Envelope *b = create(second, "韩梅梅", phone, "", NULL, NULL);
	check_collision(b, id, "bj01.consultant", "BJ01", "bj01.consultant2", "BJ01");
	CHECK(outbox_count() == out_before);
	CHECK(db_long("SELECT count(*) FROM crm.lead_collisions WHERE customer_id = $1::uuid", id) == 1);
	CHECK_STR(db_text("SELECT u.username FROM crm.relations r JOIN crm.users u ON u.id = r.owner_id"
			  " WHERE r.id = $1::uuid", rid), "bj01.consultant");
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", id) == 1);
	it_free(a);
	it_free(b);
out:
	if (first)
		crmc_close(first);
	if (second)
		crmc_close(second);
}

static void test_collision_other_store_same_brand(void)
{
	struct crmc *bj = login_at("consultant", "BJ01");
	struct crmc *sh = login_at("consultant", "SH01");
	if (!bj || !sh)
		goto out;
	char id[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(bj, "李雷", phone, "", id, NULL);
	CHECK(ok_customer(a));
	long out_before = outbox_count();
	Crm__Envelope *b = create(sh, "李雷", phone, "", NULL, NULL);
	check_collision(b, id, "bj01.consultant", "BJ01", "sh01.consultant", "SH01");
	CHECK(outbox_count() == out_before);
	CHECK(db_long("SELECT count(*) FROM crm.lead_collisions k JOIN crm.stores s"
		      " ON s.id = k.attempted_store_id WHERE k.customer_id = $1::uuid"
		      " AND s.code = 'SH01'", id) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", id) == 1);
	it_free(a);
	it_free(b);
out:
	if (bj)
		crmc_close(bj);
	if (sh)
		crmc_close(sh);
}

static void test_other_brand_opens_its_own_relation_and_sees_the_others(void)
{
	struct crmc *bj = login_at("consultant", "BJ01");
	struct crmc *gz = login_at("consultant", "GZ01");
	if (!bj || !gz)
		goto out;
	char id[37], rid_bj[37], rid_gz[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(bj, "王强", phone, "", id, rid_bj);
	CHECK(ok_customer(a));
	long out_before = outbox_count();
	Crm__Envelope *b = create(gz, "王强", phone, "", NULL, rid_gz);
	CHECK(ok_customer(b));
	if (ok_customer(b)) {
		const Crm__CustomerReply *cr = b->customer;
		CHECK(cr->existed);
		CHECK_STR(cr->customer->id, id);
		CHECK(cr->collision == NULL);
		CHECK(cr->relation && !strcmp(cr->relation->id, rid_gz) &&
		      !strcmp(cr->relation->store_code, "GZ01") &&
		      !strcmp(cr->relation->owner, "gz01.consultant") &&
		      !strcmp(cr->relation->customer_id, id));
		CHECK(cr->n_other_relations == 1);
		if (cr->n_other_relations == 1) {
			CHECK_STR(cr->other_relations[0]->id, rid_bj);
			CHECK_STR(cr->other_relations[0]->store_code, "BJ01");
			CHECK_STR(cr->other_relations[0]->owner, "bj01.consultant");
		}
	}
	CHECK(outbox_count() == out_before + 1);
	CHECK(db_long("SELECT count(*) FROM crm.lead_collisions WHERE customer_id = $1::uuid", id) == 0);
	/* customer.get shows the same to the other brand's store. */
	Crm__Envelope *g = it_get(gz, id);
	CHECK(ok_customer(g) && g->customer->relation && g->customer->n_other_relations == 1);
	it_free(g);
	it_free(a);
	it_free(b);
out:
	if (bj)
		crmc_close(bj);
	if (gz)
		crmc_close(gz);
}

static void test_same_consultant_or_same_id_again_returns_the_record(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char id[37], rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "赵六", phone, "", id, rid);
	CHECK(ok_customer(a));
	long out_before = outbox_count();
	long coll_before = db_long("SELECT count(*) FROM crm.lead_collisions", NULL);
	Crm__Envelope *b = create(c, "赵六", phone, "", NULL, NULL);
	CHECK(ok_customer(b) && b->customer->existed && !strcmp(b->customer->customer->id, id) &&
	      b->customer->relation && !strcmp(b->customer->relation->id, rid));
	/* The same ids retried. */
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = id;
	cu.name = "赵六";
	cu.phone = phone;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	Crm__Envelope *again = send_create(c, &cu, &rel);
	CHECK(ok_customer(again) && again->customer->existed &&
	      again->customer->relation && again->customer->relation->version == 1);
	CHECK(outbox_count() == out_before);
	CHECK(db_long("SELECT count(*) FROM crm.lead_collisions", NULL) == coll_before);
	it_free(a);
	it_free(b);
	it_free(again);
	crmc_close(c);
}

static void test_after_protection_ends_no_collision(void)
{
	struct crmc *bj = login_at("consultant", "BJ01");
	struct crmc *bj2 = login_added("bj01.consultant2");
	struct crmc *sh = login_at("consultant", "SH01");
	if (!bj || !bj2 || !sh)
		goto out;
	char id[37], rid[37], rid_sh[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(bj, "钱七", phone, "", id, rid);
	CHECK(ok_customer(a));
	PGresult *res = PQexecParams(db, "UPDATE crm.relations SET protected_until = now() -"
					 " interval '1 day' WHERE id = $1::uuid",
				     1, NULL, (const char *[]){rid}, NULL, NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);
	long coll_before = db_long("SELECT count(*) FROM crm.lead_collisions", NULL);
	/* Same store: the existing relation, its owner unchanged. */
	Crm__Envelope *b = create(bj2, "钱七", phone, "", NULL, NULL);
	CHECK(ok_customer(b) && b->customer->existed && b->customer->relation &&
	      !strcmp(b->customer->relation->id, rid) &&
	      !strcmp(b->customer->relation->owner, "bj01.consultant"));
	/* Another store of the brand: its own relation. */
	Crm__Envelope *s = create(sh, "钱七", phone, "", NULL, rid_sh);
	CHECK(ok_customer(s) && s->customer->existed && s->customer->relation &&
	      !strcmp(s->customer->relation->id, rid_sh) &&
	      !strcmp(s->customer->relation->owner, "sh01.consultant"));
	CHECK(db_long("SELECT count(*) FROM crm.lead_collisions", NULL) == coll_before);
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", id) == 2);
	it_free(a);
	it_free(b);
	it_free(s);
out:
	if (bj)
		crmc_close(bj);
	if (bj2)
		crmc_close(bj2);
	if (sh)
		crmc_close(sh);
}

static void test_relation_owner_rules(void)
{
	struct crmc *cc = login_at("call_center", "BJ01");
	struct crmc *cons = login_at("consultant", "BJ01");
	struct crmc *admin = it_login("group_admin");
	struct crmc *analyst = it_login("group_analyst");
	if (!cc || !cons || !admin || !analyst)
		goto out;
	char phone[16];
	it_phone(phone);
	Crm__Envelope *e = create(cc, "孙八", phone, "", NULL, NULL);
	CHECK(ok_customer(e) && e->customer->relation && !strcmp(e->customer->relation->owner, ""));
	it_free(e);
	it_phone(phone);
	e = create(cc, "孙九", phone, "bj01.consultant2", NULL, NULL);
	CHECK(ok_customer(e) && e->customer->relation &&
	      !strcmp(e->customer->relation->owner, "bj01.consultant2"));
	it_free(e);
	it_phone(phone);
	e = create(cons, "孙十", phone, "bj01.consultant2", NULL, NULL);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	expect_invalid(create(cc, "孙十", phone, "bj01.sales_manager", NULL, NULL),
		       "relation.owner", "not an enabled consultant");
	expect_invalid(create(cc, "孙十", phone, "sh01.consultant", NULL, NULL), "relation.owner",
		       "not an enabled consultant");
	char id[37];
	long before = outbox_count();
	e = create(admin, "孙十", phone, "", id, NULL);
	CHECK(ok_customer(e) && e->customer->relation == NULL);
	CHECK(outbox_count() == before + 1);
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", id) == 0);
	it_free(e);
	it_phone(phone);
	e = create(analyst, "孙十一", phone, "", NULL, NULL);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
out:
	if (cc)
		crmc_close(cc);
	if (cons)
		crmc_close(cons);
	if (admin)
		crmc_close(admin);
	if (analyst)
		crmc_close(analyst);
}

static void test_stale_version_on_customer_update(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char id[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "吴一", phone, "", id, NULL);
	CHECK(ok_customer(a));
	it_free(a);
	const char *fields[] = {"name", "region"};
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.name = "吴一一";
	cu.region = "北京市海淀区";
	long before = outbox_count();
	Crm__Envelope *u = update_customer(c, id, 1, fields, 2, &cu);
	CHECK(ok_customer(u) && u->customer->customer->version == 2 &&
	      !strcmp(u->customer->customer->name, "吴一一") &&
	      !strcmp(u->customer->customer->region, "北京市海淀区") &&
	      !strcmp(u->customer->customer->phone + 3, phone));
	CHECK(ok_customer(u) && outbox_holds(id, &u->customer->customer->base));
	CHECK(outbox_count() == before + 1);
	it_free(u);
	cu.name = "stale write";
	u = update_customer(c, id, 1, fields, 1, &cu);
	CHECK(code_of(u) == CRM__CODE__CONFLICT);
	CHECK(u && u->customer && u->customer->customer &&
	      u->customer->customer->version == 2 &&
	      !strcmp(u->customer->customer->name, "吴一一"));
	CHECK_STR(db_text("SELECT name FROM crm.customers WHERE id = $1::uuid", id), "吴一一");
	CHECK(db_long("SELECT version FROM crm.customers WHERE id = $1::uuid", id) == 2);
	CHECK(outbox_count() == before + 1);
	it_free(u);
	crmc_close(c);
}

static void test_who_may_update(void)
{
	struct crmc *own = login_at("consultant", "BJ01");
	struct crmc *peer = login_added("bj01.consultant2");
	struct crmc *sh = login_at("consultant", "SH01");
	struct crmc *mgr = login_at("store_manager", "BJ01");
	struct crmc *admin = it_login("group_admin");
	if (!own || !peer || !sh || !mgr || !admin)
		goto out;
	char id[37], rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(own, "许一", phone, "", id, rid);
	CHECK(ok_customer(a));
	it_free(a);
	long before = outbox_count();
	const char *fields[] = {"occupation"};
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.occupation = "医生";
	Crm__Envelope *e = update_customer(peer, id, 1, fields, 1, &cu);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = update_customer(sh, id, 1, fields, 1, &cu);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = it_get(sh, id);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	const char *rfields[] = {"status"};
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.status = "dormant";
	e = update_relation(peer, rid, 1, rfields, 1, &rel);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = update_relation(sh, rid, 1, rfields, 1, &rel);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	CHECK(outbox_count() == before);
	e = update_customer(mgr, id, 1, fields, 1, &cu);
	CHECK(ok_customer(e) && e->customer->customer->version == 2);
	it_free(e);
	cu.occupation = "律师";
	e = update_customer(admin, id, 2, fields, 1, &cu);
	CHECK(ok_customer(e) && !strcmp(e->customer->customer->occupation, "律师"));
	it_free(e);
	e = update_relation(mgr, rid, 1, rfields, 1, &rel);
	CHECK(code_of(e) == CRM__CODE__OK && e->relation && e->relation->relation &&
	      !strcmp(e->relation->relation->status, "dormant"));
	it_free(e);
	CHECK(outbox_count() == before + 3);
out:
	if (own)
		crmc_close(own);
	if (peer)
		crmc_close(peer);
	if (sh)
		crmc_close(sh);
	if (mgr)
		crmc_close(mgr);
	if (admin)
		crmc_close(admin);
}

static void test_customer_update_fields_and_phones(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char id[37], other[37], p1[16], p2[16], p3[16], po[16];
	it_phone(p1);
	it_phone(p2);
	it_phone(p3);
	it_phone(po);
	Crm__Envelope *a = create(c, "郑一", p1, "", id, NULL);
	Crm__Envelope *b = create(c, "郑二", po, "", other, NULL);
	CHECK(ok_customer(a) && ok_customer(b));
	it_free(a);
	it_free(b);
	long before = outbox_count();
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	const char *bad[] = {"name", "shoe_size"};
	cu.name = "x";
	expect_invalid(update_customer(c, id, 1, bad, 2, &cu), "fields", "shoe_size");
	/* Replace the phones: p2 primary, p3 second; p1 leaves. */
	Crm__Phone ph2 = CRM__PHONE__INIT, ph3 = CRM__PHONE__INIT;
	ph2.number = p2;
	ph2.primary = true;
	ph3.number = p3;
	Crm__Phone *list[] = {&ph3, &ph2};
	cu.phones = list;
	cu.n_phones = 2;
	const char *phones_field[] = {"phones"};
	Crm__Envelope *u = update_customer(c, id, 1, phones_field, 1, &cu);
	CHECK(ok_customer(u));
	if (ok_customer(u)) {
		const Crm__Customer *got = u->customer->customer;
		CHECK(!strcmp(got->phone + 3, p2) && got->n_phones == 2 && got->phones[0]->primary &&
		      !strcmp(got->phones[0]->number + 3, p2) &&
		      !strcmp(got->phones[1]->number + 3, p3));
		CHECK_STR(got->name, "郑一"); /* not listed: unchanged */
	}
	it_free(u);
	char canon[24];
	snprintf(canon, sizeof canon, "+86%s", p2);
	CHECK_STR(db_text("SELECT phone FROM crm.customers WHERE id = $1::uuid", id), canon);
	snprintf(canon, sizeof canon, "+86%s", p1);
	CHECK(db_long("SELECT count(*) FROM crm.customer_phones WHERE phone = $1", canon) == 0);
	/* A phone of another customer. */
	Crm__Phone pho = CRM__PHONE__INIT;
	pho.number = po;
	Crm__Phone *list2[] = {&ph2, &pho};
	cu.phones = list2;
	u = update_customer(c, id, 2, phones_field, 1, &cu);
	CHECK(code_of(u) == CRM__CODE__CONFLICT);
	CHECK(u && u->status && contains(u->status->message, "belongs to another customer"));
	it_free(u);
	/* Two primaries, and birth year with age band. */
	ph3.primary = true;
	cu.phones = list;
	expect_invalid(update_customer(c, id, 2, phones_field, 1, &cu), "customer.phones",
		       "exactly one");
	const char *both[] = {"birth_year", "age_band"};
	cu.birth_year = 1990;
	cu.age_band = "25-34";
	expect_invalid(update_customer(c, id, 2, both, 2, &cu), "customer.birth_year", "not both");
	CHECK(outbox_count() == before + 1);
	crmc_close(c);
}

static void test_stale_version_on_relation_update(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "冯一", phone, "", NULL, rid);
	CHECK(ok_customer(a));
	it_free(a);
	const char *fields[] = {"source", "first_feedback", "intents"};
	Crm__Intent in = CRM__INTENT__INIT;
	in.model = "Q5L";
	in.budget_min = 300000;
	Crm__Intent *intents[] = {&in};
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.source = "online";
	rel.first_feedback = "想要四驱";
	rel.intents = intents;
	rel.n_intents = 1;
	long before = outbox_count();
	Crm__Envelope *u = update_relation(c, rid, 1, fields, 3, &rel);
	CHECK(code_of(u) == CRM__CODE__OK && u->relation && u->relation->relation);
	if (code_of(u) == CRM__CODE__OK && u->relation && u->relation->relation) {
		const Crm__Relation *got = u->relation->relation;
		CHECK(got->version == 2);
		CHECK_STR(got->source, "online");
		CHECK_STR(got->first_feedback, "想要四驱");
		CHECK(got->n_intents == 1 && !strcmp(got->intents[0]->body_type, "suv"));
		CHECK_STR(got->level, "N");
		CHECK(outbox_holds(rid, &got->base));
	}
	it_free(u);
	rel.source = "fleet";
	u = update_relation(c, rid, 1, fields, 1, &rel);
	CHECK(code_of(u) == CRM__CODE__CONFLICT);
	CHECK(u && u->relation && u->relation->relation && u->relation->relation->version == 2 &&
	      !strcmp(u->relation->relation->source, "online"));
	it_free(u);
	CHECK_STR(db_text("SELECT source FROM crm.relations WHERE id = $1::uuid", rid), "online");
	const char *level_field[] = {"level"};
	expect_invalid(update_relation(c, rid, 2, level_field, 1, &rel), "fields", "level.set");
	Crm__Intent bad = CRM__INTENT__INIT;
	bad.model = "Q7";
	bad.budget_min = 500000;
	bad.budget_max = 400000;
	Crm__Intent *bads[] = {&bad};
	rel.intents = bads;
	expect_invalid(update_relation(c, rid, 2, fields + 2, 1, &rel), "relation.intents",
		       "budget_max");
	CHECK(outbox_count() == before + 1);
	crmc_close(c);
}

static void test_stale_version_on_level_set(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "陈一", phone, "", NULL, rid);
	CHECK(ok_customer(a));
	it_free(a);
	long before_seq = db_long("SELECT coalesce(max(seq), 0) FROM crm.outbox", NULL);
	Crm__Envelope *l = set_level(c, rid, 1, "H", "下周来签约");
	CHECK(code_of(l) == CRM__CODE__OK && l->relation && l->relation->relation &&
	      !strcmp(l->relation->relation->level, "H") && l->relation->relation->version == 2);
	CHECK(code_of(l) == CRM__CODE__OK && outbox_holds(rid, &l->relation->relation->base));
	it_free(l);
	l = set_level(c, rid, 1, "A", "stale");
	CHECK(code_of(l) == CRM__CODE__CONFLICT);
	CHECK(l && l->relation && l->relation->relation &&
	      !strcmp(l->relation->relation->level, "H") && l->relation->relation->version == 2);
	it_free(l);
	CHECK_STR(db_text("SELECT level::text FROM crm.relations WHERE id = $1::uuid", rid), "H");
	/* One relation record for the one write (the refused stale one wrote
	 * none); the tasks the cadence policy gives level H travel as task
	 * records of the same transaction (sql/0013), and the relation record
	 * carries the next follow-up they give. */
	char sql[400];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM crm.outbox WHERE seq > %ld AND entity ="
		 " 'relation' AND entity_id = $1::uuid", before_seq);
	CHECK(db_long(sql, rid) == 1);
	long tasks = db_long("SELECT count(*) FROM crm.tasks WHERE relation_id = $1::uuid", rid);
	CHECK(tasks >= 1);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM crm.outbox WHERE seq > %ld AND entity ="
		 " 'task' AND entity_id IN (SELECT id FROM crm.tasks WHERE relation_id = $1::uuid)",
		 before_seq);
	CHECK(db_long(sql, rid) == tasks);
	CHECK_STR(db_text("SELECT (crm.ms(next_followup_at) = (SELECT crm.ms(min(due_at)) FROM"
			  " crm.tasks t WHERE t.relation_id = r.id AND t.status = 'open'))::text"
			  " FROM crm.relations r WHERE r.id = $1::uuid", rid), "true");
	crmc_close(c);
}

static void test_levels_o_d_t_are_refused(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "褚一", phone, "", NULL, rid);
	CHECK(ok_customer(a));
	it_free(a);
	long before = outbox_count();
	expect_invalid(set_level(c, rid, 1, "O", ""), "level", "orders");
	expect_invalid(set_level(c, rid, 1, "D", ""), "level", "orders");
	expect_invalid(set_level(c, rid, 1, "T", ""), "level", "orders");
	expect_invalid(set_level(c, rid, 1, "N", ""), "level", "first level");
	expect_invalid(set_level(c, rid, 1, "Z", ""), "level", "H, A, B or C");
	CHECK(outbox_count() == before);
	CHECK_STR(db_text("SELECT level::text FROM crm.relations WHERE id = $1::uuid", rid), "N");
	/* The sales manager of the store may; a consultant of another's relation may not. */
	struct crmc *mgr = login_at("sales_manager", "BJ01");
	struct crmc *other = login_added("bj01.consultant2");
	if (mgr && other) {
		Crm__Envelope *l = set_level(other, rid, 1, "B", "");
		CHECK(code_of(l) == CRM__CODE__PERMISSION_DENIED);
		it_free(l);
		l = set_level(mgr, rid, 1, "B", "经理评估");
		CHECK(code_of(l) == CRM__CODE__OK);
		it_free(l);
	}
	if (mgr)
		crmc_close(mgr);
	if (other)
		crmc_close(other);
	crmc_close(c);
}

static void test_level_history_rows(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	char rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "卫一", phone, "", NULL, rid);
	CHECK(ok_customer(a));
	it_free(a);
	Crm__Envelope *l = set_level(c, rid, 1, "H", "预约试驾");
	CHECK(code_of(l) == CRM__CODE__OK);
	it_free(l);
	l = set_level(c, rid, 2, "A", "价格还在比较");
	CHECK(code_of(l) == CRM__CODE__OK);
	it_free(l);
	const char *h = db_text(
		"SELECT string_agg(coalesce(from_level::text, '-') || '>' || to_level || ':' ||"
		" u.username || ':' || reason, ';' ORDER BY lc.id) FROM crm.level_changes lc"
		" JOIN crm.users u ON u.id = lc.changed_by WHERE lc.relation_id = $1::uuid", rid);
	CHECK_STR(h, "->N:bj01.consultant:registered;N>H:bj01.consultant:预约试驾;"
		     "H>A:bj01.consultant:价格还在比较");
	crmc_close(c);
}

static void test_handover_single_and_bulk(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	struct crmc *c3 = login_added("bj01.consultant3");
	struct crmc *mgr = login_at("sales_manager", "BJ01");
	if (!c || !c3 || !mgr)
		goto out;
	char cid[37], rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "蒋一", phone, "", cid, rid);
	CHECK(ok_customer(a));
	int64_t until = ok_customer(a) && a->customer->relation ? a->customer->relation->protected_until : 0;
	it_free(a);
	long before = outbox_count();
	const char *ids[] = {rid};
	Crm__Envelope *h = hand_over(mgr, ids, 1, NULL, "bj01.consultant2", "王磊休假");
	CHECK(code_of(h) == CRM__CODE__OK && h->handover_reply && h->handover_reply->moved == 1);
	it_free(h);
	CHECK(outbox_count() == before + 1);
	Crm__Envelope *g = it_get(mgr, cid);
	CHECK(ok_customer(g) && g->customer->relation &&
	      !strcmp(g->customer->relation->owner, "bj01.consultant2") &&
	      outbox_holds(rid, &g->customer->relation->base));
	it_free(g);
	CHECK_STR(db_text("SELECT u.username || ':' || r.version FROM crm.relations r"
			  " JOIN crm.users u ON u.id = r.owner_id WHERE r.id = $1::uuid", rid),
		  "bj01.consultant2:2");
	/* The lead stays protected for the store: protected_until is kept. */
	char until_s[24];
	snprintf(until_s, sizeof until_s, "%lld", (long long)until);
	{
		const char *params[] = {rid, until_s};
		PGresult *res = PQexecParams(db, "SELECT crm.ms(protected_until) = $2::bigint FROM"
						 " crm.relations WHERE id = $1::uuid", 2, NULL, params,
					     NULL, NULL, 0);
		CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		      !strcmp(PQgetvalue(res, 0, 0), "t"));
		PQclear(res);
	}
	CHECK_STR(db_text("SELECT f.username || '>' || t.username || ':' || b.username || ':' || h.reason"
			  " FROM crm.handovers h JOIN crm.users f ON f.id = h.from_owner_id"
			  " JOIN crm.users t ON t.id = h.to_owner_id JOIN crm.users b ON b.id = h.by_user"
			  " WHERE h.relation_id = $1::uuid", rid),
		  "bj01.consultant>bj01.consultant2:bj01.sales_manager:王磊休假");
	/* Bulk: everything consultant3 owns at the store. */
	PGresult *res = PQexec(db, "UPDATE crm.relations SET owner_id = NULL WHERE owner_id ="
				   " (SELECT id FROM crm.users WHERE username = 'bj01.consultant3')");
	PQclear(res);
	for (int i = 0; i < 3; i++) {
		it_phone(phone);
		a = create(c3, "沈家", phone, "", NULL, NULL);
		CHECK(ok_customer(a));
		it_free(a);
	}
	before = outbox_count();
	struct crmc *sm = login_at("store_manager", "BJ01");
	h = sm ? hand_over(sm, NULL, 0, "bj01.consultant3", "bj01.consultant2", "离职交接") : NULL;
	CHECK(code_of(h) == CRM__CODE__OK && h->handover_reply && h->handover_reply->moved == 3 &&
	      h->handover_reply->n_relation_ids == 3);
	it_free(h);
	if (sm)
		crmc_close(sm);
	CHECK(outbox_count() == before + 3);
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE owner_id ="
		      " (SELECT id FROM crm.users WHERE username = 'bj01.consultant3')", NULL) == 0);
	CHECK(db_long("SELECT count(*) FROM crm.handovers h JOIN crm.users f ON f.id ="
		      " h.from_owner_id WHERE f.username = 'bj01.consultant3' AND h.at >= $1::timestamptz",
		      started_at) == 3);
out:
	if (c)
		crmc_close(c);
	if (c3)
		crmc_close(c3);
	if (mgr)
		crmc_close(mgr);
}

static void test_handover_refused(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	struct crmc *mgr = login_at("sales_manager", "BJ01");
	if (!c || !mgr)
		goto out;
	char rid[37], phone[16];
	it_phone(phone);
	Crm__Envelope *a = create(c, "杨一", phone, "", NULL, rid);
	CHECK(ok_customer(a));
	it_free(a);
	long before = outbox_count();
	const char *ids[] = {rid};
	Crm__Envelope *h = hand_over(c, ids, 1, NULL, "bj01.consultant2", "想要");
	CHECK(code_of(h) == CRM__CODE__PERMISSION_DENIED);
	it_free(h);
	expect_invalid(hand_over(mgr, ids, 1, NULL, "bj01.sales_manager", "换人"), "to_owner",
		       "not an enabled consultant");
	expect_invalid(hand_over(mgr, ids, 1, NULL, "sh01.consultant", "换人"), "to_owner",
		       "not an enabled consultant");
	expect_invalid(hand_over(mgr, ids, 1, NULL, "bj01.consultant2", ""), "reason", "required");
	expect_invalid(hand_over(mgr, ids, 1, "bj01.consultant", "bj01.consultant2", "两者"),
		       "relation_ids", "not both");
	struct crmc *sh = login_at("sales_manager", "SH01");
	if (sh) {
		h = hand_over(sh, ids, 1, NULL, "sh01.consultant", "跨店");
		CHECK(code_of(h) == CRM__CODE__NOT_FOUND);
		it_free(h);
		crmc_close(sh);
	}
	CHECK(outbox_count() == before);
	CHECK_STR(db_text("SELECT u.username FROM crm.relations r JOIN crm.users u ON u.id = r.owner_id"
			  " WHERE r.id = $1::uuid", rid), "bj01.consultant");
out:
	if (c)
		crmc_close(c);
	if (mgr)
		crmc_close(mgr);
}

static void test_invalid_phones_name_customer_phone(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	long before = outbox_count();
	long customers = db_long("SELECT count(*) FROM crm.customers", NULL);
	const char *bad[][2] = {
		{"12345", "11 digits"},
		{"+1 415 555 0100", "+86"},
		{"138-1234-567a", "only digits"},
		{"010-123", "7 or 8 digit"},
		{"23456789", "not a Chinese phone number"},
		{"12012345678", "13 to 19"},
		{"", "required"},
		{"+86", "no number"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_invalid(create(c, "坏号码", bad[i][0], "", NULL, NULL), "customer.phone",
			       bad[i][1]);
	CHECK(outbox_count() == before);
	CHECK(db_long("SELECT count(*) FROM crm.customers", NULL) == customers);
	crmc_close(c);
}

static void test_text_fields_are_checked(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	long before = outbox_count();
	char id[37], rid[37], phone[16];
	uuid_v7_new(id);
	uuid_v7_new(rid);
	it_phone(phone);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = id;
	cu.name = "检查";
	cu.phone = phone;
	cu.email = "not-an-address";
	expect_invalid(send_create(c, &cu, NULL), "customer.email", "address");
	cu.email = "";
	cu.birth_year = 1985;
	cu.age_band = "35-44";
	expect_invalid(send_create(c, &cu, NULL), "customer.birth_year", "not both");
	cu.age_band = "";
	char *tags[33];
	for (int i = 0; i < 33; i++)
		tags[i] = "t";
	cu.tags = tags;
	cu.n_tags = 33;
	expect_invalid(send_create(c, &cu, NULL), "customer.tags", "at most 32");
	char *long_tag[] = {"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三"};
	cu.tags = long_tag;
	cu.n_tags = 1;
	expect_invalid(send_create(c, &cu, NULL), "customer.tags", "longer than 32");
	cu.n_tags = 0;
	cu.wechat = "wx\ttab";
	expect_invalid(send_create(c, &cu, NULL), "customer.wechat", "control character");
	cu.wechat = "";
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.level = "O";
	expect_invalid(send_create(c, &cu, &rel), "relation.level", "orders");
	rel.level = "";
	rel.source = "billboard";
	expect_invalid(send_create(c, &cu, &rel), "relation.source", "walk_in");
	rel.source = "";
	Crm__Intent in = CRM__INTENT__INIT;
	in.model = "Q3";
	in.body_type = "truck";
	Crm__Intent *intents[] = {&in};
	rel.intents = intents;
	rel.n_intents = 1;
	expect_invalid(send_create(c, &cu, &rel), "relation.intents", "body_type");
	CHECK(outbox_count() == before);
	CHECK(db_long("SELECT count(*) FROM crm.customers WHERE id = $1::uuid", id) == 0);
	crmc_close(c);
}

static void test_sql_metacharacters_and_emoji_are_stored_verbatim(void)
{
	struct crmc *c = login_at("consultant", "BJ01");
	if (!c)
		return;
	const char *texts[] = {"Robert'); DROP TABLE crm.customers;--", "王😀"};
	const char *tag_texts[] = {"x'); DROP TABLE t;--", "王😀"}; /* tags: 32 at most */
	for (size_t i = 0; i < 2; i++) {
		char id[37], rid[37], phone[16];
		uuid_v7_new(id);
		uuid_v7_new(rid);
		it_phone(phone);
		char *tags[] = {(char *)tag_texts[i]};
		Crm__Customer cu = CRM__CUSTOMER__INIT;
		cu.id = id;
		cu.name = (char *)texts[i];
		cu.phone = phone;
		cu.region = (char *)texts[i];
		cu.tags = tags;
		cu.n_tags = 1;
		Crm__Intent in = CRM__INTENT__INIT;
		in.model = (char *)texts[i];
		in.needs = (char *)texts[i];
		Crm__Intent *intents[] = {&in};
		Crm__Relation rel = CRM__RELATION__INIT;
		rel.id = rid;
		rel.first_feedback = (char *)texts[i];
		rel.intents = intents;
		rel.n_intents = 1;
		Crm__Envelope *e = send_create(c, &cu, &rel);
		CHECK(ok_customer(e));
		it_free(e);
		e = it_get(c, id);
		CHECK(ok_customer(e));
		if (ok_customer(e)) {
			const Crm__CustomerReply *cr = e->customer;
			CHECK_STR(cr->customer->name, texts[i]);
			CHECK_STR(cr->customer->region, texts[i]);
			CHECK(cr->customer->n_tags == 1 &&
			      !strcmp(cr->customer->tags[0], tag_texts[i]));
			CHECK(cr->relation && !strcmp(cr->relation->first_feedback, texts[i]) &&
			      cr->relation->n_intents == 1 &&
			      !strcmp(cr->relation->intents[0]->model, texts[i]) &&
			      !strcmp(cr->relation->intents[0]->needs, texts[i]));
		}
		it_free(e);
		CHECK_STR(db_text("SELECT name FROM crm.customers WHERE id = $1::uuid", id), texts[i]);
	}
	CHECK(db_long("SELECT count(*) FROM crm.customers", NULL) > 0);
	crmc_close(c);
}

static void test_outbox_rows_only_for_writes(void)
{
	/* The sequence stays gapless however many writes were refused. */
	CHECK_STR(db_text("SELECT (max(seq) - min(seq) + 1 = count(*))::text FROM crm.outbox", NULL),
		  "true");
	/* Only records of the synced kinds (other tests of the suite write
	 * the others than customers and relations into the same outbox). */
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity NOT IN ('customer', 'relation',"
		      " 'followup', 'task', 'attachment', 'template', 'vehicle', 'service_visit',"
		      " 'opportunity', 'order', 'test_drive', 'referral', 'organization', 'survey',"
		      " 'complaint')", NULL) == 0);
	/* Every relation this test wrote has one change per version. */
	long n = db_long("SELECT count(*) FROM crm.relations r WHERE r.created_at >= $1::timestamptz",
			 started_at);
	CHECK(n > 10);
	CHECK(db_long("SELECT count(*) FROM crm.relations r WHERE r.created_at >= $1::timestamptz"
		      " AND r.version <> (SELECT count(*) FROM crm.outbox o WHERE o.entity = 'relation'"
		      " AND o.entity_id = r.id)", started_at) == 0);
}

/* Four desks register one new phone at once: one customer, one relation
 * for the brand, the two others of the brand recorded as collisions, and
 * the other brand's store gets its own relation. */
static void test_simultaneous_registrations_make_one_customer(void)
{
	struct crmc *c[4] = {login_at("consultant", "BJ01"), login_added("bj01.consultant2"),
			     login_at("consultant", "SH01"), login_at("consultant", "GZ01")};
	if (!c[0] || !c[1] || !c[2] || !c[3])
		goto out;
	for (int round = 0; round < 10; round++) {
		char phone[16], canon[24], ids[4][37], rids[4][37];
		it_phone(phone);
		snprintf(canon, sizeof canon, "+86%s", phone);
		Crm__Customer cu[4];
		Crm__Relation rel[4];
		Crm__CustomerCreate cc[4];
		Crm__Envelope req[4];
		uint64_t sent[4];
		for (int k = 0; k < 4; k++) {
			uuid_v7_new(ids[k]);
			uuid_v7_new(rids[k]);
			crm__customer__init(&cu[k]);
			cu[k].id = ids[k];
			cu[k].name = "同时";
			cu[k].phone = phone;
			crm__relation__init(&rel[k]);
			rel[k].id = rids[k];
			crm__customer_create__init(&cc[k]);
			cc[k].customer = &cu[k];
			cc[k].relation = &rel[k];
			crm__envelope__init(&req[k]);
			req[k].body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
			req[k].customer_create = &cc[k];
			sent[k] = crmc_send(c[k], &req[k]);
		}
		for (int k = 0; k < 4; k++)
			crmc_flush(c[k]);
		int ok_brand = 0, collisions = 0;
		for (int k = 0; k < 4; k++) {
			char err[256];
			Crm__Envelope *e = crmc_wait(c[k], sent[k], 30000, err, sizeof err);
			Crm__Code code = code_of(e);
			if (code != CRM__CODE__OK && !(e && e->customer && e->customer->collision))
				fprintf(stderr, "  round %d desk %d: %s %s\n", round, k,
					crmc_code_name(code), e ? crmc_status_message(e) : err);
			if (k < 3) {
				ok_brand += code == CRM__CODE__OK;
				collisions += code == CRM__CODE__CONFLICT && e->customer &&
					      e->customer->collision;
			} else {
				CHECK(code == CRM__CODE__OK && e->customer->relation &&
				      !strcmp(e->customer->relation->store_code, "GZ01"));
			}
			it_free(e);
		}
		CHECK(ok_brand == 1 && collisions == 2);
		CHECK(db_long("SELECT count(*) FROM crm.customer_phones WHERE phone = $1", canon) == 1);
		CHECK(db_long("SELECT count(*) FROM crm.relations r JOIN crm.customer_phones p"
			      " ON p.customer_id = r.customer_id WHERE p.phone = $1", canon) == 2);
	}
out:
	for (int k = 0; k < 4; k++)
		if (c[k])
			crmc_close(c[k]);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	const char *now = it_db_value(db, "SELECT now()::text", NULL);
	snprintf(started_at, sizeof started_at, "%s", now ? now : "infinity");
	CHECK(add_user("bj01.consultant2", "周杰", "consultant", "BJ01"));
	CHECK(add_user("bj01.consultant3", "沈涛", "consultant", "BJ01"));
	test_profile_round_trip();
	test_phone_unique_across_all_phones();
	test_collision_same_store_other_consultant();
	test_collision_other_store_same_brand();
	test_other_brand_opens_its_own_relation_and_sees_the_others();
	test_same_consultant_or_same_id_again_returns_the_record();
	test_after_protection_ends_no_collision();
	test_relation_owner_rules();
	test_stale_version_on_customer_update();
	test_who_may_update();
	test_customer_update_fields_and_phones();
	test_stale_version_on_relation_update();
	test_stale_version_on_level_set();
	test_levels_o_d_t_are_refused();
	test_level_history_rows();
	test_handover_single_and_bulk();
	test_handover_refused();
	test_invalid_phones_name_customer_phone();
	test_text_fields_are_checked();
	test_sql_metacharacters_and_emoji_are_stored_verbatim();
	test_simultaneous_registrations_make_one_customer();
	test_outbox_rows_only_for_writes();
	PQfinish(db);
	return it_summary();
}
