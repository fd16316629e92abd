/* The query side of customer records over TLS against PostgreSQL: name and
 * phone search, every filter, scope by role, sorts with keyset pagination,
 * cursors, refused input, and the customer card.
 *
 * The data is written directly with SQL as the superuser (the write side is
 * another request's job), each row tagged with this run's tag, and every
 * list filters on that tag so that customers made by other tests sharing the
 * database never show up. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

static PGconn *db;
static char run[32];       /* this run's tag; every customer made here has it */
static char run_flt[48];   /* and the filter fixtures this one */
static char run_vip[48];

/* ------------------------------------------------------------ SQL helpers */

/* Runs `sql` with text parameters (NULL = SQL NULL); the first value of the
 * first row, or "" when there is none. A failed statement is a failed check. */
static const char *sql(const char *text, int n, ...)
{
	static char value[256];
	const char *params[16];
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		params[i] = va_arg(ap, const char *);
	va_end(ap);
	PGresult *res = PQexecParams(db, text, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	CHECK(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		fprintf(stderr, "sql: %s\n%s\n", PQresultErrorMessage(res), text);
	value[0] = '\0';
	if (st == PGRES_TUPLES_OK && PQntuples(res) > 0)
		snprintf(value, sizeof value, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

/* A customer with this run's tag (and `tag2` when not empty), its phone
 * +86`phone` as primary, made `age` ago (an SQL interval). */
static void customer(char id[37], const char *name, const char *phone, const char *tag2,
		     bool important, const char *age)
{
	snprintf(id, 37, "%s",
		 sql("WITH c AS (INSERT INTO crm.customers (id, name, phone, tags, important,"
		     "  created_at, updated_at)"
		     " VALUES (gen_random_uuid(), $1, '+86' || $2,"
		     "  ARRAY[$3] || CASE WHEN $4 = '' THEN '{}'::text[] ELSE ARRAY[$4] END,"
		     "  $5::boolean, now() - $6::interval, now() - $6::interval)"
		     " RETURNING id, phone),"
		     " p AS (INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind)"
		     "  SELECT phone, id, true, 'mobile' FROM c)"
		     " SELECT id::text FROM c",
		     6, name, phone, run, tag2, important ? "true" : "false", age ? age : "0"));
}

static void second_phone(const char *customer_id, const char *phone)
{
	sql("INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind)"
	    " VALUES ('+86' || $2, $1::uuid, false, 'mobile')",
	    2, customer_id, phone);
}

/* A relation of `customer_id` at `store`; owner "" is the pool. last and
 * next are intervals before / after now ("" = NULL), age when it was made. */
static void relation(char id[37], const char *customer_id, const char *store, const char *owner,
		     const char *level, const char *source, const char *last, const char *next,
		     const char *age)
{
	snprintf(id, 37, "%s",
		 sql("INSERT INTO crm.relations (id, customer_id, store_id, owner_id, level, source,"
		     "  protected_until, last_contact_at, next_followup_at, created_at, updated_at)"
		     " SELECT gen_random_uuid(), $1::uuid, s.id,"
		     "  (SELECT u.id FROM crm.users u WHERE u.username = nullif($3, '')), $4, $5,"
		     "  now() + interval '30 days', now() - nullif($6, '')::interval,"
		     "  now() + nullif($7, '')::interval, now() - $8::interval, now() - $8::interval"
		     " FROM crm.stores s WHERE s.code = $2 RETURNING id::text",
		     8, customer_id, store, owner, level, source, last, next, age ? age : "0"));
}

static void intent(const char *relation_id, int position, const char *model,
		   const char *body_type)
{
	char pos[8];
	snprintf(pos, sizeof pos, "%d", position);
	sql("INSERT INTO crm.relation_intents (relation_id, position, model, body_type)"
	    " VALUES ($1::uuid, $2::smallint, $3, $4)",
	    4, relation_id, pos, model, body_type);
}

/* A unique 11-digit mobile number for this run whose last 7 digits are
 * unique too: 13 + 2 digits from the run + the 7 given. */
static void phone_with_tail(char out[16], const char *tail7)
{
	snprintf(out, 16, "13%c%c%.7s", run[strlen(run) - 2], run[strlen(run) - 1], tail7);
}

/* ------------------------------------------------------------ list helpers */

struct row {
	char cid[37], rid[37], name[64], store[16], level[4], owner[64];
	int64_t c_created, c_updated, r_created, r_updated, last_contact, next_followup;
	size_t n_intents;
};

struct list {
	Crm__Code code;
	char field[64];
	int n, frames;
	bool frames_have_cursor;
	char cursor_after_first[1024]; /* next_cursor of the first frame */
	struct row rows[200];
};

static struct crmc *login(const char *role, const char *store)
{
	struct crmc *c = it_login_demo(role, store);
	CHECK(c != NULL);
	return c;
}

static const char *username(const char *role, const char *store)
{
	static char user[128];
	char pw[128];
	if (!it_demo_user(role, store, user, sizeof user, pw, sizeof pw))
		return "";
	return user;
}

static void row_from(const Crm__CustomerRow *r, struct row *w)
{
	memset(w, 0, sizeof *w);
	snprintf(w->cid, sizeof w->cid, "%s", r->customer->id);
	snprintf(w->name, sizeof w->name, "%s", r->customer->name);
	w->c_created = r->customer->created_at;
	w->c_updated = r->customer->updated_at;
	if (r->relation) {
		snprintf(w->rid, sizeof w->rid, "%s", r->relation->id);
		snprintf(w->store, sizeof w->store, "%s", r->relation->store_code);
		snprintf(w->level, sizeof w->level, "%s", r->relation->level);
		snprintf(w->owner, sizeof w->owner, "%s", r->relation->owner);
		w->r_created = r->relation->created_at;
		w->r_updated = r->relation->updated_at;
		w->last_contact = r->relation->last_contact_at;
		w->next_followup = r->relation->next_followup_at;
		w->n_intents = r->relation->n_intents;
	}
}

/* Sends the list `cl` as it is and hands each frame to `on_page`, granting
 * credit as the frames come, until the last frame or until `on_page` says
 * stop (the stream is then left unread: close the connection). The status;
 * a refusal's field in `field`. */
static Crm__Code list_stream(struct crmc *c, Crm__CustomerList *cl,
			     bool (*on_page)(const Crm__CustomerPage *page, void *arg), void *arg,
			     char *field, size_t field_cap)
{
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = cl;
	req.credit = 4;
	uint64_t id = crmc_send(c, &req);
	char err[256];
	for (;;) {
		Crm__Envelope *resp = crmc_wait(c, id, 20000, err, sizeof err);
		if (!resp) {
			CHECK(false);
			return CRM__CODE__UNAVAILABLE;
		}
		Crm__Code code = crmc_status(resp);
		if (code != CRM__CODE__OK) {
			snprintf(field, field_cap, "%s",
				 resp->status && resp->status->field ? resp->status->field : "");
			it_free(resp);
			return code;
		}
		const Crm__CustomerPage *page = resp->customer_page;
		CHECK(page != NULL);
		bool go_on = page && on_page(page, arg);
		bool more = resp->more;
		it_free(resp);
		if (!page || !more || !go_on)
			return code;
		crmc_stream_credit(c, id, 1);
	}
}

static bool collect_page(const Crm__CustomerPage *page, void *arg)
{
	struct list *out = arg;
	out->frames++;
	if (page->n_rows > 0 && !*page->next_cursor)
		out->frames_have_cursor = false;
	if (out->frames == 1)
		snprintf(out->cursor_after_first, sizeof out->cursor_after_first, "%s",
			 page->next_cursor);
	for (size_t i = 0; i < page->n_rows && out->n < 200; i++)
		row_from(page->rows[i], &out->rows[out->n++]);
	return true;
}

/* Runs the list `cl` (this run's tag added unless it has one) and collects
 * every frame's rows. */
static void list_run(struct crmc *c, Crm__CustomerList *cl, struct list *out)
{
	memset(out, 0, sizeof *out);
	out->frames_have_cursor = true;
	if (!c) {
		out->code = CRM__CODE__UNAVAILABLE;
		return;
	}
	if (!cl->tag || !*cl->tag)
		cl->tag = run;
	out->code = list_stream(c, cl, collect_page, out, out->field, sizeof out->field);
}

static bool has_customer(const struct list *l, const char *cid)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->rows[i].cid, cid))
			return true;
	return false;
}

static int index_of(const struct list *l, const char *cid)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->rows[i].cid, cid))
			return i;
	return -1;
}

/* ------------------------------------------------------------ fixtures */

/* Names and phones for the search tests, at BJ01, pool-owned. */
static char wang_xiaoming[37], wang_xiaoming2[37], wang_xiaomingzhu[37], wang_xm_fuzzy[37],
	li_hua[37], latin[37], latin_other[37];
static char phone_wxm[16], phone_li[16], phone_second[16];

static void fixture_names(void)
{
	char rid[37], p[16];
	phone_with_tail(phone_wxm, "0012345");
	customer(wang_xiaoming, "王小明", phone_wxm, "", false, "3 days");
	relation(rid, wang_xiaoming, "BJ01", "", "A", "walk_in", "", "", "3 days");
	phone_with_tail(p, "0023456");
	customer(wang_xiaoming2, "王小明", p, "", false, "2 days");
	relation(rid, wang_xiaoming2, "BJ01", "", "A", "walk_in", "", "", "2 days");
	phone_with_tail(p, "0034567");
	customer(wang_xiaomingzhu, "王小明珠", p, "", false, "1 day");
	relation(rid, wang_xiaomingzhu, "BJ01", "", "B", "walk_in", "", "", "1 day");
	phone_with_tail(p, "0045678");
	customer(wang_xm_fuzzy, "王晓明", p, "", false, "4 days");
	relation(rid, wang_xm_fuzzy, "BJ01", "", "B", "walk_in", "", "", "4 days");
	phone_with_tail(phone_li, "0056789");
	customer(li_hua, "李华", phone_li, "", false, "5 days");
	relation(rid, li_hua, "BJ01", "", "C", "walk_in", "", "", "5 days");
	phone_with_tail(phone_second, "0067890");
	second_phone(li_hua, phone_second);
	phone_with_tail(p, "0078901");
	customer(latin, "Johnathan Smith", p, "", false, "6 days");
	relation(rid, latin, "BJ01", "", "C", "walk_in", "", "", "6 days");
	phone_with_tail(p, "0089012");
	customer(latin_other, "Maria Lopez", p, "", false, "7 days");
	relation(rid, latin_other, "BJ01", "", "C", "walk_in", "", "", "7 days");
}

/* ------------------------------------------------------------ name search */

static void test_name_exact_finds_only_that_name(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "王小明";
	cl.name_match = "exact";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 2);
	CHECK(has_customer(&l, wang_xiaoming) && has_customer(&l, wang_xiaoming2));
	if (c)
		crmc_close(c);
}

static void test_name_prefix_finds_names_starting_with_it(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "王小";
	cl.name_match = "prefix";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 3);
	CHECK(has_customer(&l, wang_xiaoming) && has_customer(&l, wang_xiaoming2) &&
	      has_customer(&l, wang_xiaomingzhu));
	CHECK(!has_customer(&l, wang_xm_fuzzy));
	if (c)
		crmc_close(c);
}

static void test_name_fuzzy_chinese_finds_similar_characters(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "王小明"; /* name_match defaults to fuzzy */
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 4);
	CHECK(has_customer(&l, wang_xm_fuzzy));
	CHECK(!has_customer(&l, li_hua));
	/* Ranked: the two exact names, then the prefix, then 王晓明. */
	CHECK(l.n == 4 && index_of(&l, wang_xiaomingzhu) == 2 && index_of(&l, wang_xm_fuzzy) == 3);
	/* And the other way round: 王晓明 finds 王小明. */
	cl.name = "王晓明";
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(index_of(&l, wang_xm_fuzzy) == 0);
	CHECK(has_customer(&l, wang_xiaoming));
	if (c)
		crmc_close(c);
}

/* Two characters: names with both, in any place, and a one-character name
 * that is one of them; not names sharing only one character. */
static void test_name_fuzzy_two_chinese_characters(void)
{
	static const char *const names[] = {"晓明", "明", "李晓"};
	char ids[3][37], rid[37], p[16], tail[8];
	for (int i = 0; i < 3; i++) {
		snprintf(tail, sizeof tail, "00950%02d", i);
		phone_with_tail(p, tail);
		customer(ids[i], names[i], p, "", false, "1 day");
		relation(rid, ids[i], "BJ01", "", "N", "walk_in", "", "", "1 day");
	}
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "晓明";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 3 && index_of(&l, ids[0]) == 0 && has_customer(&l, ids[1]) &&
	      has_customer(&l, wang_xm_fuzzy));
	CHECK(!has_customer(&l, ids[2]) && !has_customer(&l, wang_xiaoming));
	if (c)
		crmc_close(c);
}

static void test_name_fuzzy_latin_finds_misspelling_any_case(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "jonathan smith";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, latin));
	cl.name = "JOHNATHAN SMITH";
	cl.name_match = "exact";
	list_run(c, &cl, &l);
	CHECK(l.n == 1 && has_customer(&l, latin));
	if (c)
		crmc_close(c);
}

static void test_text_name_ranks_exact_then_prefix_then_fuzzy(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.text = " 王小明 ";
	cl.page_size = 1;
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 4 && l.frames == 4);
	CHECK(l.n == 4 && (index_of(&l, wang_xiaoming) < 2) && (index_of(&l, wang_xiaoming2) < 2) &&
	      index_of(&l, wang_xiaomingzhu) == 2 && index_of(&l, wang_xm_fuzzy) == 3);
	if (c)
		crmc_close(c);
}

static void test_name_search_follows_a_rename(void)
{
	char id[37], rid[37], p[16];
	phone_with_tail(p, "0090123");
	customer(id, "改名前", p, "", false, "1 day");
	relation(rid, id, "BJ01", "", "N", "walk_in", "", "", "1 day");
	sql("UPDATE crm.customers SET name = '改名后甲' WHERE id = $1::uuid", 1, id);
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "改名后甲";
	cl.name_match = "exact";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, id));
	cl.name = "改名前";
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK && l.n == 0);
	if (c)
		crmc_close(c);
}

static void test_customer_created_through_crmd_is_found_by_name(void)
{
	struct crmc *c = login("group_admin", NULL);
	char id[37], phone[16];
	uuid_v7_new(id);
	it_phone(phone);
	Crm__Envelope *resp = c ? it_create(c, id, "经由服务创建", phone) : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
	/* Into this run's lists (the tag), without touching the name. */
	sql("UPDATE crm.customers SET tags = tags || $2::text WHERE id = $1::uuid", 2, id, run);
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.text = "经由服务";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, id));
	if (c)
		crmc_close(c);
}

/* Pages of a relevance list, with ties between several names, hold the
 * same rows in the same order as one big page. */
static void relevance_pages_match_one_page(const char *role, const char *store, int expect)
{
	struct crmc *c = login(role, store);
	static struct list big, small;
	Crm__CustomerList one = CRM__CUSTOMER_LIST__INIT;
	one.text = "甲乙丙";
	list_run(c, &one, &big);
	Crm__CustomerList paged = CRM__CUSTOMER_LIST__INIT;
	paged.text = "甲乙丙";
	paged.page_size = 2;
	list_run(c, &paged, &small);
	CHECK(big.code == CRM__CODE__OK && small.code == CRM__CODE__OK);
	CHECK(big.n == expect && small.n == expect && small.frames == (expect + 1) / 2);
	bool same = big.n == small.n;
	for (int i = 0; same && i < big.n; i++)
		same = !strcmp(big.rows[i].cid, small.rows[i].cid) &&
		       !strcmp(big.rows[i].rid, small.rows[i].rid);
	CHECK(same);
	CHECK(big.n > 0 && !strcmp(big.rows[0].name, "甲乙丙"));
	if (c)
		crmc_close(c);
}

static void test_relevance_pages_with_ties_are_complete(void)
{
	static const char *const names[] = {"甲乙丁", "甲乙丁", "甲戊丙", "己乙丙",
					    "甲乙丙", "甲乙丙庚", "甲乙"};
	char id[37], rid[37], p[16], tail[8];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(tail, sizeof tail, "50000%02zu", i);
		phone_with_tail(p, tail);
		customer(id, names[i], p, "", false, "1 day");
		relation(rid, id, "GZ01", "", "N", "walk_in", "", "", "1 day");
		if (i == 2)
			relation(rid, id, "SH01", "", "N", "walk_in", "", "", "1 day");
	}
	relevance_pages_match_one_page("store_manager", "GZ01", 7);
	relevance_pages_match_one_page("group_admin", NULL, 8);
}

/* ------------------------------------------------------------ phone search */

static void test_phone_full_number_in_another_writing(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	char written[40];
	snprintf(written, sizeof written, "0086 %.3s-%.4s-%.4s", phone_li, phone_li + 3,
		 phone_li + 7);
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.phone = written;
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, li_hua));
	/* The same through `text`. */
	Crm__CustomerList t = CRM__CUSTOMER_LIST__INIT;
	t.text = written;
	list_run(c, &t, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, li_hua));
	if (c)
		crmc_close(c);
}

static void test_phone_suffix_of_4_digits(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.text = (char *)phone_wxm + 7; /* "2345" */
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	/* 0012345 and 0023456: only the first ends in 2345. */
	CHECK(l.n == 1 && has_customer(&l, wang_xiaoming));
	Crm__CustomerList p = CRM__CUSTOMER_LIST__INIT;
	p.phone = "23-45";
	list_run(c, &p, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, wang_xiaoming));
	if (c)
		crmc_close(c);
}

static void test_phone_suffix_of_7_digits(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.phone = "005 6789";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, li_hua));
	if (c)
		crmc_close(c);
}

static void test_phone_suffix_matches_a_secondary_phone(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.text = "0067890";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	CHECK(l.n == 1 && has_customer(&l, li_hua));
	if (c)
		crmc_close(c);
}

static void test_phone_under_4_digits_refused(void)
{
	struct crmc *c = login("store_manager", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.phone = "789";
	static struct list l;
	list_run(c, &cl, &l);
	CHECK(l.code == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(l.field, "phone");
	Crm__CustomerList t = CRM__CUSTOMER_LIST__INIT;
	t.text = "7-89";
	list_run(c, &t, &l);
	CHECK(l.code == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(l.field, "text");
	if (c)
		crmc_close(c);
}

/* ------------------------------------------------------------ filters */

/* Filter fixtures, all at SH01 with the second tag run_flt (run_vip for
 * one), which the filter tests list by. */
static char f_h[37], f_a_suv[37], f_b_prefix[37], f_c_catalog[37], f_owned[37], f_imp[37],
	f_overdue[37], f_old_contact[37];

static void fixture_filters(void)
{
	char rid[37], p[16];
	const char *owner = username("consultant", "SH01");
	sql("INSERT INTO crm.models (brand, name, body_type) VALUES ('一汽奥迪', 'Q5L', 'suv')"
	    " ON CONFLICT DO NOTHING", 0);
	phone_with_tail(p, "1000001");
	customer(f_h, "过滤甲", p, run_flt, false, "1 day");
	relation(rid, f_h, "SH01", "", "H", "referral", "40 days", "", "1 day");
	intent(rid, 0, "A4L", "sedan");
	phone_with_tail(p, "1000002");
	customer(f_a_suv, "过滤乙", p, run_flt, false, "2 days");
	relation(rid, f_a_suv, "SH01", "", "A", "online", "10 days", "5 days", "2 days");
	intent(rid, 0, "A6L", "sedan");
	intent(rid, 1, "Q7", "suv");
	phone_with_tail(p, "1000003");
	customer(f_b_prefix, "过滤丙", p, run_flt, false, "3 days");
	relation(rid, f_b_prefix, "SH01", "", "B", "walk_in", "2 days", "", "3 days");
	intent(rid, 0, "a4 allroad", "wagon");
	phone_with_tail(p, "1000004");
	customer(f_c_catalog, "过滤丁", p, run_flt, false, "4 days");
	/* No body type on the intent: the catalog says Q5L is an SUV. */
	relation(rid, f_c_catalog, "SH01", "", "C", "auto_show", "29 days", "", "4 days");
	intent(rid, 0, "Q5L", "");
	phone_with_tail(p, "1000005");
	customer(f_owned, "过滤戊", p, run_flt, false, "5 days");
	relation(rid, f_owned, "SH01", owner, "N", "phone_in", "", "-1 day", "5 days");
	phone_with_tail(p, "1000006");
	customer(f_imp, "过滤己", p, run_flt, true, "6 days");
	sql("UPDATE crm.customers SET tags = tags || $2::text WHERE id = $1::uuid", 2, f_imp, run_vip);
	relation(rid, f_imp, "SH01", "", "O", "fleet", "", "", "6 days");
	phone_with_tail(p, "1000007");
	customer(f_overdue, "过滤庚", p, run_flt, false, "7 days");
	relation(rid, f_overdue, "SH01", "", "D", "roadshow", "", "-2 hours", "7 days");
	phone_with_tail(p, "1000008");
	customer(f_old_contact, "过滤辛", p, run_flt, false, "8 days");
	relation(rid, f_old_contact, "SH01", "", "T", "other", "31 days", "1 day", "8 days");
	intent(rid, 0, "汉兰达", "suv");
}

static struct list *filtered(Crm__CustomerList *cl)
{
	static struct list l;
	struct crmc *c = login("store_manager", "SH01");
	if (!cl->tag || !*cl->tag)
		cl->tag = run_flt;
	list_run(c, cl, &l);
	CHECK(l.code == CRM__CODE__OK);
	if (c)
		crmc_close(c);
	return &l;
}

static void test_filter_levels_any_of(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	char *levels[] = {"H", "b"};
	cl.levels = levels;
	cl.n_levels = 2;
	struct list *l = filtered(&cl);
	CHECK(l->n == 2 && has_customer(l, f_h) && has_customer(l, f_b_prefix));
}

static void test_filter_sources_any_of(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	char *sources[] = {"online", "fleet"};
	cl.sources = sources;
	cl.n_sources = 2;
	struct list *l = filtered(&cl);
	CHECK(l->n == 2 && has_customer(l, f_a_suv) && has_customer(l, f_imp));
}

static void test_filter_model_equal_prefix_or_body_type(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.model = "a4";     /* A4L, and "a4 allroad" */
	struct list *l = filtered(&cl);
	CHECK(l->n == 2 && has_customer(l, f_h) && has_customer(l, f_b_prefix));
	cl.model = "q7";
	l = filtered(&cl);
	CHECK(l->n == 1 && has_customer(l, f_a_suv));
	cl.model = "SUV";    /* body type on the intent, or from the catalog */
	l = filtered(&cl);
	CHECK(l->n == 3 && has_customer(l, f_a_suv) && has_customer(l, f_c_catalog) &&
	      has_customer(l, f_old_contact));
}

static void test_filter_owner(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.owner = (char *)username("consultant", "SH01");
	struct list *l = filtered(&cl);
	CHECK(l->n == 1 && has_customer(l, f_owned));
	CHECK(l->n == 1 && !strcmp(l->rows[0].owner, cl.owner));
}

static void test_filter_tag(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.tag = run_vip;
	struct list *l = filtered(&cl);
	CHECK(l->n == 1 && has_customer(l, f_imp));
}

static void test_filter_important_only(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.important_only = true;
	struct list *l = filtered(&cl);
	CHECK(l->n == 1 && has_customer(l, f_imp));
}

static void test_filter_contacted_within_days(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.contacted_within_days = 30;
	struct list *l = filtered(&cl);
	CHECK(l->n == 3 && has_customer(l, f_a_suv) && has_customer(l, f_b_prefix) &&
	      has_customer(l, f_c_catalog));
}

static void test_filter_followup_overdue(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.followup_overdue = true;
	struct list *l = filtered(&cl);
	CHECK(l->n == 2 && has_customer(l, f_owned) && has_customer(l, f_overdue));
}

static void test_contacted_within_30_days_and_intends_an_suv(void)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.contacted_within_days = 30;
	cl.model = "suv";
	struct list *l = filtered(&cl);
	/* f_old_contact intends an SUV but was contacted 31 days ago; f_b was
	 * contacted 2 days ago but wants a wagon. */
	CHECK(l->n == 2 && has_customer(l, f_a_suv) && has_customer(l, f_c_catalog));
	for (int i = 0; i < l->n; i++)
		CHECK(l->rows[i].n_intents >= 1);
}

/* ------------------------------------------------------------ scope */

static char s_mine[37], s_pool[37], s_colleague[37], s_two_stores[37], s_none[37];

static void fixture_scope(void)
{
	char rid[37], p[16];
	sql("INSERT INTO crm.users (username, display_name, role, store_id, password_hash)"
	    " SELECT 'bj01.q-colleague', '同事', 'consultant', s.id, '$argon2id$not-a-login'"
	    " FROM crm.stores s WHERE s.code = 'BJ01' ON CONFLICT (username) DO NOTHING",
	    0);
	phone_with_tail(p, "2000001");
	customer(s_mine, "范围甲", p, "scope", false, "1 day");
	relation(rid, s_mine, "BJ01", username("consultant", "BJ01"), "A", "walk_in", "", "", "1 day");
	phone_with_tail(p, "2000002");
	customer(s_pool, "范围乙", p, "scope", false, "2 days");
	relation(rid, s_pool, "BJ01", "", "A", "walk_in", "", "", "2 days");
	phone_with_tail(p, "2000003");
	customer(s_colleague, "范围丙", p, "scope", false, "3 days");
	relation(rid, s_colleague, "BJ01", "bj01.q-colleague", "A", "walk_in", "", "", "3 days");
	phone_with_tail(p, "2000004");
	customer(s_two_stores, "范围丁", p, "scope", false, "4 days");
	relation(rid, s_two_stores, "GZ01", "", "B", "walk_in", "", "", "4 days");
	relation(rid, s_two_stores, "SH01", "", "C", "walk_in", "", "", "4 days");
	phone_with_tail(p, "2000005");
	customer(s_none, "范围戊", p, "scope", false, "5 days");
}

static struct list *scoped(const char *role, const char *store, const char *store_code)
{
	static struct list l;
	struct crmc *c = login(role, store);
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "范围";
	cl.name_match = "prefix";
	if (store_code)
		cl.store_code = (char *)store_code;
	list_run(c, &cl, &l);
	if (c)
		crmc_close(c);
	return &l;
}

static void test_scope_consultant_sees_own_and_pool_not_a_colleagues(void)
{
	struct list *l = scoped("consultant", "BJ01", NULL);
	CHECK(l->code == CRM__CODE__OK);
	CHECK(l->n == 2 && has_customer(l, s_mine) && has_customer(l, s_pool));
	CHECK(!has_customer(l, s_colleague));
}

static void test_scope_store_manager_sees_the_whole_store(void)
{
	struct list *l = scoped("store_manager", "BJ01", NULL);
	CHECK(l->code == CRM__CODE__OK);
	CHECK(l->n == 3 && has_customer(l, s_mine) && has_customer(l, s_pool) &&
	      has_customer(l, s_colleague));
	for (int i = 0; i < l->n; i++)
		CHECK_STR(l->rows[i].store, "BJ01");
}

static void test_scope_other_store_sees_none_of_them(void)
{
	struct list *l = scoped("store_manager", "GZ01", NULL);
	CHECK(l->code == CRM__CODE__OK);
	CHECK(l->n == 1 && has_customer(l, s_two_stores));
	CHECK(l->n == 1 && !strcmp(l->rows[0].store, "GZ01"));
	l = scoped("sales_manager", "SH01", NULL);
	CHECK(l->n == 1 && has_customer(l, s_two_stores));
	/* A store role cannot look at another store. */
	l = scoped("store_manager", "GZ01", "BJ01");
	CHECK(l->code == CRM__CODE__PERMISSION_DENIED);
	CHECK_STR(l->field, "store_code");
}

static void test_scope_group_admin_sees_a_row_per_relation(void)
{
	struct list *l = scoped("group_admin", NULL, NULL);
	CHECK(l->code == CRM__CODE__OK);
	/* 3 at BJ01, 2 for the customer at two stores, 1 without a relation. */
	CHECK(l->n == 6);
	int two = 0, none = 0;
	for (int i = 0; i < l->n; i++) {
		if (!strcmp(l->rows[i].cid, s_two_stores))
			two++;
		if (!strcmp(l->rows[i].cid, s_none)) {
			none++;
			CHECK_STR(l->rows[i].rid, "");
		}
	}
	CHECK(two == 2 && none == 1);
	l = scoped("group_analyst", NULL, "SH01");
	CHECK(l->code == CRM__CODE__OK);
	CHECK(l->n == 1 && has_customer(l, s_two_stores) && !strcmp(l->rows[0].store, "SH01"));
}

/* ------------------------------------------------------------ sorts */

/* Nine customers at BJ01 with ties on every sort key, three of them also at
 * SH01, and one without any relation. */
static void fixture_sorts(void)
{
	static const struct {
		const char *name, *age, *level, *last, *next;
	} f[] = {
		{"排序甲", "10 days", "H", "1 day", "1 day"},
		{"排序乙", "9 days", "A", "", ""},
		{"排序乙", "9 days", "A", "1 day", "1 day"},
		{"排序乙", "9 days", "C", "", "2 days"},
		{"排序丙", "7 days", "N", "3 days", ""},
		{"排序丁", "6 days", "D", "3 days", "-1 day"},
		{"排序丁", "6 days", "D", "5 days", "-1 day"},
		{"排序戊", "4 days", "O", "", ""},
		{"排序己", "3 days", "B", "6 days", "3 days"},
	};
	char cid[37], rid[37], p[16], tail[8];
	/* Same created_at/updated_at for ties: the interval is from one now(). */
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		snprintf(tail, sizeof tail, "30000%02zu", i);
		phone_with_tail(p, tail);
		customer(cid, f[i].name, p, "sort", false, f[i].age);
		sql("UPDATE crm.customers SET created_at = date_trunc('day', now()) - $2::interval,"
		    " updated_at = date_trunc('day', now()) - $2::interval WHERE id = $1::uuid",
		    2, cid, f[i].age);
		relation(rid, cid, "BJ01", "", f[i].level, "walk_in", f[i].last, f[i].next, f[i].age);
		sql("UPDATE crm.relations SET created_at = date_trunc('day', now()) - $2::interval,"
		    " updated_at = date_trunc('day', now()) - $2::interval,"
		    " last_contact_at = date_trunc('day', now()) - nullif($3, '')::interval,"
		    " next_followup_at = date_trunc('day', now()) + nullif($4, '')::interval"
		    " WHERE id = $1::uuid",
		    4, rid, f[i].age, f[i].last, f[i].next);
		if (i % 3 == 0)
			relation(rid, cid, "SH01", "", "B", "walk_in", "", "", "1 day");
	}
	/* Renamed after its relation was made: a store's list sorts by the
	 * relation's copy of the name (sql/0032), which must follow. 排序癸 would
	 * sort last; as 排序丁 it ties with the first two. */
	phone_with_tail(p, "3000098");
	customer(cid, "排序癸", p, "sort", false, "8 days");
	relation(rid, cid, "BJ01", "", "B", "walk_in", "2 days", "", "8 days");
	sql("UPDATE crm.customers SET name = '排序丁' WHERE id = $1::uuid", 1, cid);
	phone_with_tail(p, "3000099");
	customer(cid, "排序庚", p, "sort", false, "9 days");
	sql("UPDATE crm.customers SET created_at = date_trunc('day', now()) - interval '9 days',"
	    " updated_at = date_trunc('day', now()) - interval '9 days' WHERE id = $1::uuid",
	    1, cid);
}

static int level_rank(const char *level)
{
	const char *p = *level ? strchr("HABCNODT", level[0]) : NULL;
	return p ? (int)(p - "HABCNODT") + 1 : 0;
}

/* <0, 0, >0 as a's sort key is before, equal to, after b's; 0 keys (NULL)
 * come last in both directions. */
static int key_cmp(const char *sort, bool group, const struct row *a, const struct row *b,
		   bool desc)
{
	int64_t ka, kb;
	if (!strcmp(sort, "name")) {
		int c = strcmp(a->name, b->name);
		return desc ? -c : c;
	}
	if (!strcmp(sort, "created")) {
		ka = group ? a->c_created : a->r_created;
		kb = group ? b->c_created : b->r_created;
	} else if (!strcmp(sort, "updated")) {
		ka = group ? a->c_updated : a->r_updated;
		kb = group ? b->c_updated : b->r_updated;
	} else if (!strcmp(sort, "last_contact")) {
		ka = a->last_contact;
		kb = b->last_contact;
	} else if (!strcmp(sort, "next_followup")) {
		ka = a->next_followup;
		kb = b->next_followup;
	} else {
		ka = level_rank(a->level);
		kb = level_rank(b->level);
	}
	if (ka == 0 || kb == 0)
		return (ka == 0) - (kb == 0);
	int c = ka < kb ? -1 : ka > kb;
	return desc ? -c : c;
}

static void check_sorted_pages(const char *role, const char *store, int expect_rows,
			       int expect_ties_min)
{
	static const char *const sorts[] = {"created", "updated", "name", "last_contact",
					    "next_followup", "level"};
	struct crmc *c = login(role, store);
	bool group = store == NULL;
	for (size_t s = 0; s < sizeof sorts / sizeof sorts[0]; s++) {
		for (int desc = 0; desc < 2; desc++) {
			static struct list l;
			Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
			cl.name = "排序";
			cl.name_match = "prefix";
			cl.sort = (char *)sorts[s];
			cl.descending = desc;
			cl.page_size = 2;
			list_run(c, &cl, &l);
			CHECK(l.code == CRM__CODE__OK);
			bool count_ok = l.n == expect_rows;
			bool frames_ok = l.frames == (expect_rows + 1) / 2 && l.frames_have_cursor;
			bool unique = true, ordered = true;
			int ties = 0;
			for (int i = 0; i < l.n; i++) {
				for (int j = 0; j < i; j++)
					if (!strcmp(l.rows[i].cid, l.rows[j].cid) &&
					    !strcmp(l.rows[i].rid, l.rows[j].rid))
						unique = false;
				if (i > 0) {
					int k = key_cmp(sorts[s], group, &l.rows[i - 1], &l.rows[i],
							desc);
					ordered = ordered && k <= 0;
					ties += k == 0;
				}
			}
			CHECK(count_ok && frames_ok && unique && ordered && ties >= expect_ties_min);
			if (!(count_ok && frames_ok && unique && ordered && ties >= expect_ties_min))
				fprintf(stderr, "  %s sort=%s desc=%d: rows %d (want %d), frames %d,"
						" unique %d, ordered %d, ties %d\n",
					role, sorts[s], desc, l.n, expect_rows, l.frames, unique,
					ordered, ties);
		}
	}
	if (c)
		crmc_close(c);
}

static void test_sorts_with_ties_paginate_completely_store_list(void)
{
	check_sorted_pages("store_manager", "BJ01", 10, 2);
}

static void test_sorts_with_ties_paginate_completely_group_list(void)
{
	/* 10 at BJ01, 3 more at SH01, 1 without a relation. */
	check_sorted_pages("group_admin", NULL, 14, 2);
}

static int pair_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* What check_unfiltered_pages sees of one list as its frames come. */
struct walk {
	const char *sort;
	bool group, desc, ordered;
	long n, cap;          /* rows seen; rows whose ids are kept */
	char (*pairs)[80];    /* customer/relation ids, to find repeats */
	struct row prev;
};

static bool walk_page(const Crm__CustomerPage *page, void *arg)
{
	struct walk *w = arg;
	for (size_t i = 0; i < page->n_rows; i++) {
		struct row cur;
		row_from(page->rows[i], &cur);
		if (w->n > 0 && key_cmp(w->sort, w->group, &w->prev, &cur, w->desc) > 0)
			w->ordered = false;
		if (w->n < w->cap)
			snprintf(w->pairs[w->n], sizeof w->pairs[w->n], "%s/%s", cur.cid, cur.rid);
		w->prev = cur;
		w->n++;
	}
	return w->n <= w->cap; /* more rows than there are: repeating without end */
}

/* A list with no filter at all (no run tag either: every row the role
 * sees), in about 40 pages (7 rows or more), by every sort both ways:
 * each row after the one before it, no row twice, as many rows as the
 * database holds for it. Store and group lists by last contact and next
 * follow-up read two index ranges when nothing filters them (sql/0033,
 * 0035); the filtered lists above take the one query. */
static void check_unfiltered_pages(const char *role, const char *store, const char *count_sql)
{
	static const char *const sorts[] = {"created", "updated", "name", "last_contact",
					    "next_followup", "level"};
	struct crmc *c = login(role, store);
	if (!c)
		return;
	const char *count = it_db_value(db, count_sql, store);
	long want = count ? atol(count) : 0;
	CHECK(want > 20);
	struct walk w = {.group = store == NULL, .cap = want + 64};
	w.pairs = calloc((size_t)w.cap, sizeof *w.pairs);
	for (size_t s = 0; s < sizeof sorts / sizeof sorts[0]; s++) {
		for (int desc = 0; desc < 2 && c; desc++) {
			Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
			cl.sort = (char *)sorts[s];
			cl.descending = desc;
			/* About 40 pages, however many rows the suite has made by now. */
			cl.page_size = want / 40 > 7 ? (uint32_t)(want / 40) : 7;
			w.sort = sorts[s];
			w.desc = desc;
			w.ordered = true;
			w.n = 0;
			char field[64];
			bool ok = list_stream(c, &cl, walk_page, &w, field, sizeof field) ==
				  CRM__CODE__OK && w.n <= w.cap;
			if (w.n > w.cap) {
				/* The stream was left unread: a new connection. */
				crmc_close(c);
				c = login(role, store);
			}
			long kept = w.n < w.cap ? w.n : w.cap;
			qsort(w.pairs, (size_t)kept, sizeof *w.pairs, pair_cmp);
			bool unique = true;
			for (long i = 1; i < kept; i++)
				unique = unique && strcmp(w.pairs[i - 1], w.pairs[i]) != 0;
			CHECK(ok && w.n == want && w.ordered && unique);
			if (!(ok && w.n == want && w.ordered && unique))
				fprintf(stderr, "  unfiltered %s sort=%s desc=%d: rows %ld (want %ld),"
						" ordered %d, unique %d, ok %d\n",
					role, sorts[s], desc, w.n, want, w.ordered, unique, ok);
		}
	}
	free(w.pairs);
	if (c)
		crmc_close(c);
}

static void test_unfiltered_lists_paginate_completely(void)
{
	check_unfiltered_pages("store_manager", "BJ01",
			       "SELECT count(*) FROM crm.relations r JOIN crm.stores s"
			       " ON s.id = r.store_id WHERE s.code = $1");
	check_unfiltered_pages("group_admin", NULL,
			       "SELECT count(*) FROM crm.customers c"
			       " LEFT JOIN crm.relations r ON r.customer_id = c.id");
	/* A consultant's list by creation merges two index ranges, their own
	 * rows and the unowned ones (sql/0041). */
	char sql_mine[512];
	snprintf(sql_mine, sizeof sql_mine,
		 "SELECT count(*) FROM crm.relations r JOIN crm.stores s ON s.id = r.store_id"
		 " WHERE s.code = $1 AND (r.owner_id IS NULL OR r.owner_id ="
		 " (SELECT u.id FROM crm.users u WHERE u.username = '%s'))",
		 username("consultant", "BJ01"));
	check_unfiltered_pages("consultant", "BJ01", sql_mine);
}

/* crm.customer_query keeps the list shapes its connection has prepared in
 * the setting crm.list_plans (sql/0042). A transaction that prepared one
 * and then failed takes the setting back but not the statement: the next
 * call must run the statement, not prepare it a second time. */
static void test_list_plan_survives_a_failed_transaction(void)
{
	char sid[64];
	const char *v = it_db_value(db,
				    "SELECT s.session_id FROM crm.users u, crm.session_open(u.id,"
				    " md5(random()::text) || md5(random()::text), 600, 'test_query') s"
				    " WHERE u.username = $1",
				    username("consultant", "BJ01"));
	CHECK(v != NULL);
	if (!v)
		return;
	snprintf(sid, sizeof sid, "%s", v);
	/* This connection is the test's own, not one of crmd's: nothing has
	 * prepared a list on it before. */
	const char *call = "SELECT count(*) FROM crm.customer_query($1::uuid, NULL, NULL, NULL,"
			   " NULL, NULL, NULL, NULL, NULL, NULL, false, 0, false, NULL, 'updated',"
			   " true, NULL, 5)";
	sql("BEGIN", 0);
	CHECK(it_db_value(db, call, sid) != NULL);
	sql("ROLLBACK", 0);
	v = it_db_value(db, "SELECT count(*) FROM pg_prepared_statements"
			    " WHERE name LIKE 'crm_list16_%'", NULL);
	long prepared = v ? atol(v) : 0;
	CHECK(prepared >= 1);
	v = it_db_value(db, "SELECT coalesce(current_setting('crm.list_plans', true), '')", NULL);
	CHECK(v && !strstr(v, "crm_list16_"));
	/* Again, outside a transaction: the same statement, run. */
	v = it_db_value(db, call, sid);
	CHECK(v && atol(v) == 5);
	v = it_db_value(db, "SELECT count(*) FROM pg_prepared_statements"
			    " WHERE name LIKE 'crm_list16_%'", NULL);
	CHECK(v && atol(v) == prepared);
	v = it_db_value(db, "SELECT coalesce(current_setting('crm.list_plans', true), '')", NULL);
	CHECK(v && strstr(v, "crm_list16_"));
	/* And once more, found in the setting. */
	v = it_db_value(db, call, sid);
	CHECK(v && atol(v) == 5);
}

static void test_cursor_resumes_right_after_its_row(void)
{
	struct crmc *c = login("group_admin", NULL);
	static struct list all, first, rest;
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.name = "排序";
	cl.name_match = "prefix";
	cl.sort = "level";
	list_run(c, &cl, &all);
	Crm__CustomerList one = CRM__CUSTOMER_LIST__INIT;
	one.name = "排序";
	one.name_match = "prefix";
	one.sort = "level";
	one.page_size = 5;
	one.limit = 5;
	list_run(c, &one, &first);
	CHECK(first.n == 5 && first.frames == 1 && first.cursor_after_first[0]);
	Crm__CustomerList again = CRM__CUSTOMER_LIST__INIT;
	again.name = "排序";
	again.name_match = "prefix";
	again.sort = "level";
	again.after = first.cursor_after_first;
	list_run(c, &again, &rest);
	CHECK(rest.code == CRM__CODE__OK);
	CHECK(all.n == 14 && first.n + rest.n == all.n);
	bool same = all.n == first.n + rest.n;
	for (int i = 0; same && i < all.n; i++) {
		const struct row *r = i < first.n ? &first.rows[i] : &rest.rows[i - first.n];
		same = !strcmp(r->cid, all.rows[i].cid) && !strcmp(r->rid, all.rows[i].rid);
	}
	CHECK(same);
	/* A cursor is only good for the list it came from. */
	Crm__CustomerList other = CRM__CUSTOMER_LIST__INIT;
	other.sort = "name";
	other.after = first.cursor_after_first;
	list_run(c, &other, &rest);
	CHECK(rest.code == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(rest.field, "after");
	if (c)
		crmc_close(c);
}

/* ------------------------------------------------------------ bad input */

static void expect_refused(struct crmc *c, Crm__CustomerList *cl, const char *field)
{
	static struct list l;
	list_run(c, cl, &l);
	CHECK(l.code == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(l.field, field);
}

static void test_bad_list_inputs_are_refused_naming_the_field(void)
{
	struct crmc *c = login("consultant", "BJ01");
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	char *bad_level[] = {"X"};
	cl.levels = bad_level;
	cl.n_levels = 1;
	expect_refused(c, &cl, "levels");
	Crm__CustomerList s = CRM__CUSTOMER_LIST__INIT;
	char *bad_source[] = {"walk_in", "carrier_pigeon"};
	s.sources = bad_source;
	s.n_sources = 2;
	expect_refused(c, &s, "sources");
	Crm__CustomerList o = CRM__CUSTOMER_LIST__INIT;
	o.sort = "price";
	expect_refused(c, &o, "sort");
	Crm__CustomerList p = CRM__CUSTOMER_LIST__INIT;
	p.page_size = 501;
	expect_refused(c, &p, "page_size");
	Crm__CustomerList a = CRM__CUSTOMER_LIST__INIT;
	a.after = "bm90IGEgY3Vyc29y";
	expect_refused(c, &a, "after");
	Crm__CustomerList a2 = CRM__CUSTOMER_LIST__INIT;
	a2.after = "%%%";
	expect_refused(c, &a2, "after");
	Crm__CustomerList u = CRM__CUSTOMER_LIST__INIT;
	u.name = "\xe7\x8e\x8b\xff";
	expect_refused(c, &u, "name");
	Crm__CustomerList m = CRM__CUSTOMER_LIST__INIT;
	m.name = "王";
	m.name_match = "sounds_like";
	expect_refused(c, &m, "name_match");
	Crm__CustomerList w = CRM__CUSTOMER_LIST__INIT;
	w.owner = "nobody.at.all";
	expect_refused(c, &w, "owner");
	Crm__CustomerList d = CRM__CUSTOMER_LIST__INIT;
	d.contacted_within_days = 100000;
	expect_refused(c, &d, "contacted_within_days");
	Crm__CustomerList g = CRM__CUSTOMER_LIST__INIT;
	g.store_code = "NOPE99";
	expect_refused(c, &g, "store_code");
	/* After all that the connection still serves. */
	static struct list ok;
	Crm__CustomerList fine = CRM__CUSTOMER_LIST__INIT;
	list_run(c, &fine, &ok);
	CHECK(ok.code == CRM__CODE__OK);
	if (c)
		crmc_close(c);
}

/* ------------------------------------------------------------ the card */

static char card_customer[37], card_rel_bj[37], card_rel_sh[37];

static void fixture_card(void)
{
	char p[16];
	phone_with_tail(p, "4000001");
	customer(card_customer, "卡片甲", p, "card", true, "20 days");
	relation(card_rel_bj, card_customer, "BJ01", username("consultant", "BJ01"), "A",
		 "walk_in", "1 day", "2 days", "20 days");
	intent(card_rel_bj, 0, "Q5L", "suv");
	intent(card_rel_bj, 1, "A6L", "sedan");
	relation(card_rel_sh, card_customer, "SH01", username("consultant", "SH01"), "C",
		 "online", "", "", "10 days");
	sql("INSERT INTO crm.level_changes (relation_id, from_level, to_level, changed_by, changed_at,"
	    " reason)"
	    " SELECT $1::uuid, NULL, 'N', NULL, now() - interval '20 days', 'first'"
	    " UNION ALL SELECT $1::uuid, 'N', 'B', u.id, now() - interval '15 days', 'test drive'"
	    "  FROM crm.users u WHERE u.username = $3"
	    " UNION ALL SELECT $1::uuid, 'B', 'A', u.id, now() - interval '5 days', 'budget ok'"
	    "  FROM crm.users u WHERE u.username = $3"
	    " UNION ALL SELECT $2::uuid, NULL, 'C', NULL, now() - interval '10 days', 'first'",
	    3, card_rel_bj, card_rel_sh, username("consultant", "BJ01"));
	sql("INSERT INTO crm.lead_collisions (customer_id, owner_relation_id, owner_id,"
	    " owner_store_id, brand, protected_until, attempted_by, attempted_store_id, at)"
	    " SELECT $1::uuid, $2::uuid, r.owner_id, r.store_id, '一汽奥迪', now() + interval '10 days',"
	    "  a.id, a.store_id, now() - g * interval '1 day'"
	    " FROM crm.relations r, crm.users a, generate_series(8, 9) g"
	    " WHERE r.id = $2::uuid AND a.username = $3",
	    3, card_customer, card_rel_bj, username("consultant", "SH01"));
	sql("INSERT INTO crm.handovers (relation_id, from_owner_id, to_owner_id, by_user, at, reason)"
	    " SELECT $1::uuid, NULL, c.id, m.id, now() - interval '18 days', 'from the pool'"
	    "  FROM crm.users c, crm.users m WHERE c.username = 'bj01.q-colleague' AND m.username = $2"
	    " UNION ALL"
	    " SELECT $1::uuid, q.id, c.id, m.id, now() - interval '12 days', 'colleague left'"
	    "  FROM crm.users q, crm.users c, crm.users m WHERE q.username = 'bj01.q-colleague'"
	    "  AND c.username = $3 AND m.username = $2",
	    3, card_rel_bj, username("store_manager", "BJ01"), username("consultant", "BJ01"));
}

static Crm__Envelope *card_get(struct crmc *c, const char *id)
{
	Crm__CustomerCardRequest req = CRM__CUSTOMER_CARD_REQUEST__INIT;
	req.id = (char *)id;
	Crm__Envelope env = CRM__ENVELOPE__INIT;
	env.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CARD_GET;
	env.customer_card_get = &req;
	return c ? it_call(c, &env) : NULL;
}

static void test_card_has_everything_in_order(void)
{
	struct crmc *c = login("consultant", "SH01");
	Crm__Envelope *resp = card_get(c, card_customer);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer_card);
	const Crm__CustomerCard *k = resp ? resp->customer_card : NULL;
	if (k) {
		CHECK_STR(k->customer->id, card_customer);
		CHECK_STR(k->customer->name, "卡片甲");
		CHECK(k->customer->important);
		CHECK(k->customer->n_phones == 1);
		/* The caller's store first. */
		CHECK(k->n_relations == 2);
		if (k->n_relations == 2) {
			CHECK_STR(k->relations[0]->store_code, "SH01");
			CHECK_STR(k->relations[0]->id, card_rel_sh);
			CHECK_STR(k->relations[1]->store_code, "BJ01");
			CHECK(k->relations[1]->n_intents == 2);
			if (k->relations[1]->n_intents == 2) {
				CHECK_STR(k->relations[1]->intents[0]->model, "Q5L");
				CHECK_STR(k->relations[1]->intents[1]->model, "A6L");
			}
			CHECK(k->relations[1]->last_contact_at > 0);
		}
		/* Level history of both stores, newest first. */
		CHECK(k->n_level_history == 4);
		if (k->n_level_history == 4) {
			CHECK_STR(k->level_history[0]->to_level, "A");
			CHECK_STR(k->level_history[0]->from_level, "B");
			CHECK_STR(k->level_history[0]->reason, "budget ok");
			CHECK_STR(k->level_history[1]->store_code, "SH01");
			CHECK_STR(k->level_history[3]->from_level, "");
			for (size_t i = 1; i < k->n_level_history; i++)
				CHECK(k->level_history[i - 1]->at >= k->level_history[i]->at);
		}
		CHECK(k->n_collisions == 2);
		if (k->n_collisions == 2) {
			CHECK(k->collisions[0]->at > k->collisions[1]->at);
			CHECK_STR(k->collisions[0]->owner, username("consultant", "BJ01"));
			CHECK_STR(k->collisions[0]->owner_store_code, "BJ01");
			CHECK_STR(k->collisions[0]->attempted_by, username("consultant", "SH01"));
			CHECK_STR(k->collisions[0]->attempted_store_code, "SH01");
			CHECK_STR(k->collisions[0]->customer_id, card_customer);
			CHECK(k->collisions[0]->protected_until > 0);
		}
		CHECK(k->n_handovers == 2);
		if (k->n_handovers == 2) {
			CHECK_STR(k->handovers[0]->reason, "colleague left");
			CHECK_STR(k->handovers[0]->from_owner, "bj01.q-colleague");
			CHECK_STR(k->handovers[1]->from_owner, "");
			CHECK_STR(k->handovers[1]->by, username("store_manager", "BJ01"));
			CHECK(k->handovers[0]->at > k->handovers[1]->at);
		}
	}
	it_free(resp);
	if (c)
		crmc_close(c);
	/* The other store's view puts its own relation first. */
	c = login("consultant", "BJ01");
	resp = card_get(c, card_customer);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer_card &&
	      resp->customer_card->n_relations == 2 &&
	      !strcmp(resp->customer_card->relations[0]->store_code, "BJ01"));
	it_free(resp);
	if (c)
		crmc_close(c);
}

static void test_card_not_found(void)
{
	struct crmc *c = login("group_admin", NULL);
	Crm__Envelope *resp = card_get(c, "0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
	CHECK(resp && crmc_status(resp) == CRM__CODE__NOT_FOUND);
	it_free(resp);
	resp = card_get(c, card_customer);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
	resp = card_get(c, "not-a-uuid");
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT && resp->status &&
	      !strcmp(resp->status->field, "id"));
	it_free(resp);
	if (c)
		crmc_close(c);
	/* A store where the customer has no relation: as if there were none. */
	c = login("store_manager", "GZ01");
	resp = card_get(c, card_customer);
	CHECK(resp && crmc_status(resp) == CRM__CODE__NOT_FOUND);
	it_free(resp);
	if (c)
		crmc_close(c);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	snprintf(run, sizeof run, "q%ld%02d", (long)tv.tv_sec, (int)(tv.tv_usec / 10000) % 100);
	snprintf(run_flt, sizeof run_flt, "%s-flt", run);
	snprintf(run_vip, sizeof run_vip, "%s-vip", run);
	fixture_names();
	fixture_filters();
	fixture_scope();
	fixture_sorts();
	fixture_card();

	test_name_exact_finds_only_that_name();
	test_name_prefix_finds_names_starting_with_it();
	test_name_fuzzy_chinese_finds_similar_characters();
	test_name_fuzzy_two_chinese_characters();
	test_name_fuzzy_latin_finds_misspelling_any_case();
	test_text_name_ranks_exact_then_prefix_then_fuzzy();
	test_name_search_follows_a_rename();
	test_relevance_pages_with_ties_are_complete();
	test_customer_created_through_crmd_is_found_by_name();
	test_phone_full_number_in_another_writing();
	test_phone_suffix_of_4_digits();
	test_phone_suffix_of_7_digits();
	test_phone_suffix_matches_a_secondary_phone();
	test_phone_under_4_digits_refused();
	test_filter_levels_any_of();
	test_filter_sources_any_of();
	test_filter_model_equal_prefix_or_body_type();
	test_filter_owner();
	test_filter_tag();
	test_filter_important_only();
	test_filter_contacted_within_days();
	test_filter_followup_overdue();
	test_contacted_within_30_days_and_intends_an_suv();
	test_scope_consultant_sees_own_and_pool_not_a_colleagues();
	test_scope_store_manager_sees_the_whole_store();
	test_scope_other_store_sees_none_of_them();
	test_scope_group_admin_sees_a_row_per_relation();
	test_sorts_with_ties_paginate_completely_store_list();
	test_sorts_with_ties_paginate_completely_group_list();
	test_unfiltered_lists_paginate_completely();
	test_cursor_resumes_right_after_its_row();
	test_list_plan_survives_a_failed_transaction();
	test_bad_list_inputs_are_refused_naming_the_field();
	test_card_has_everything_in_order();
	test_card_not_found();
	PQfinish(db);
	return it_summary();
}
