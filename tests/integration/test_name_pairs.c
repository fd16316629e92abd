/* The fuzzy name search of sql/0016 (a Chinese name's character pairs)
 * finds exactly what pg_trgm's similarity at 0.4 finds, ranked the same
 * way: for names of one, two, three, four and five characters, repeated
 * characters, names mixing Latin letters (which keep the trigram path),
 * and for a name added after the migration (the pairs follow the names).
 *
 * Customers are written directly (superuser) with rare characters and a
 * tag of this run; crm.customer_query runs as a group admin's session,
 * and the expected list is computed here with pg_trgm over the same
 * customers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "itest.h"

static PGconn *db;
static char run[32];
static char session[37];

/* One value of a query with text parameters ("" for a command); NULL on
 * error (printed). */
static const char *sqln(const char *q, int n, const char *const *values)
{
	static char out[4096];
	PGresult *res = PQexecParams(db, q, n, NULL, values, NULL, NULL, 0);
	const char *v = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		snprintf(out, sizeof out, "%s", PQgetvalue(res, 0, 0));
		v = out;
	} else if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		out[0] = '\0';
		v = out;
	} else {
		fprintf(stderr, "%s\n  %s", q, PQresultErrorMessage(res));
	}
	PQclear(res);
	return v;
}

static const char *sql3(const char *q, int n, const char *a, const char *b, const char *c)
{
	return sqln(q, n, (const char *[]){a, b, c});
}

static const char *sql(const char *q, int n, const char *a, const char *b)
{
	return sql3(q, n, a, b, NULL);
}

static bool customer(const char *name)
{
	char phone[16];
	it_phone(phone);
	return sql3("WITH c AS (INSERT INTO crm.customers (id, name, phone, tags, created_at,"
		   "  updated_at) VALUES (gen_random_uuid(), $1, '+86' || $2, ARRAY[$3], now(), now())"
		   " RETURNING id, phone)"
		   " INSERT INTO crm.customer_phones (phone, customer_id, is_primary, kind)"
		   " SELECT phone, id, true, 'mobile' FROM c",
		   3, name, phone, run) != NULL;
}

/* "same" when the search's customers of this run are those pg_trgm finds
 * (similar at 0.4, or starting with the query), in an order that never
 * ranks a customer above one with a higher expected relevance; otherwise
 * what differs. */
static const char *compare_as(const char *sess, const char *query, const char *store)
{
	return sqln(
		"WITH got AS ("
		"  SELECT q.id, q.ordinality AS ord FROM crm.customer_query($1::uuid, $2, 'fuzzy', NULL, NULL,"
		"   NULL, NULL, NULL, NULL, NULL, false, 0, false, NULL, 'relevance', false, NULL,"
		"   501) WITH ORDINALITY AS q"
		"  JOIN crm.customers c ON c.id = q.id WHERE $3 = ANY (c.tags)),"
		" want AS ("
		"  SELECT c.id, (CASE WHEN lower(c.name) = lower($2) THEN 4"
		"    WHEN starts_with(lower(c.name), lower($2)) THEN 2 ELSE 0 END) * 1000000"
		"    + (similarity(crm.name_grams(lower(c.name)), crm.name_grams(lower($2)))"
		"       * 1000000)::integer AS rel"
		"   FROM crm.customers c WHERE $3 = ANY (c.tags)"
		"    AND (similarity(crm.name_grams(lower(c.name)), crm.name_grams(lower($2))) >= 0.4"
		"         OR starts_with(lower(c.name), lower($2)))"
		"    AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM crm.relations r"
		"         JOIN crm.stores s ON s.id = r.store_id WHERE r.customer_id = c.id"
		"          AND s.code = $4))),"
		" ranked AS ("
		"  SELECT g.ord, w.rel, lag(w.rel) OVER (ORDER BY g.ord) AS before"
		"   FROM got g JOIN want w ON w.id = g.id)"
		" SELECT CASE"
		"  WHEN (SELECT count(*) FROM got) = 0 AND (SELECT count(*) FROM want) = 0"
		"   THEN 'nothing found'"
		"  WHEN EXISTS (SELECT id FROM got EXCEPT SELECT id FROM want)"
		"   OR EXISTS (SELECT id FROM want EXCEPT SELECT id FROM got)"
		"   THEN format('found %s, pg_trgm %s: %s', (SELECT count(*) FROM got),"
		"    (SELECT count(*) FROM want), (SELECT string_agg(c.name, ' ') FROM"
		"    ((SELECT id FROM got EXCEPT SELECT id FROM want) UNION ALL"
		"     (SELECT id FROM want EXCEPT SELECT id FROM got)) d"
		"    JOIN crm.customers c ON c.id = d.id))"
		"  WHEN EXISTS (SELECT 1 FROM ranked WHERE rel > before) THEN 'out of order'"
		"  ELSE 'same' END",
		4, (const char *[]){sess, query, run, store});
}

static const char *compare(const char *query) { return compare_as(session, query, NULL); }

/* The search agrees with pg_trgm for `query` and finds at least
 * `min_found` of this run's customers (so that agreeing on nothing passes
 * only where nothing is expected). */
static void expect_same_as(const char *sess, const char *query, const char *store,
			   int min_found)
{
	const char *v = compare_as(sess, query, store);
	if (!v || strcmp(v, "same") != 0)
		fprintf(stderr, "query %s: %s\n", query, v ? v : "(error)");
	CHECK(v && strcmp(v, "same") == 0);
	char n[16];
	snprintf(n, sizeof n, "%d", min_found);
	const char *values[] = {sess, n, query, run};
	PGresult *res = PQexecParams(
		db,
		"SELECT count(*) >= $2::integer FROM crm.customer_query($1::uuid, $3, 'fuzzy',"
		" NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, 0, false, NULL, NULL, false,"
		" NULL, 501) q JOIN crm.customers c ON c.id = q.id WHERE $4 = ANY (c.tags)",
		4, NULL, values, NULL, NULL, 0);
	bool enough = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		      strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (!enough)
		fprintf(stderr, "query %s: fewer than %d found\n", query, min_found);
	PQclear(res);
	CHECK(enough);
}

static void expect_same(const char *query, int min_found)
{
	expect_same_as(session, query, NULL, min_found);
}

static void test_names_by_pairs_match_trigram_similarity(void)
{
	static const char *const names[] = {
		"淼焱垚", "淼焱犇", "淼垚犇", "焱垚犇", "焱淼垚", "淼焱", "淼", "淼淼", "焱焱焱",
		"淼焱垚犇", "淼焱垚犇骉", "犇骉", "骉", "淼焱ab", "ab淼焱", "垚犇骉鑫", "鑫淼",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		CHECK(customer(names[i]));
	/* Three characters: the pairs' way (淼焱垚 finds 焱淼垚 at 1.0, the
	 * names sharing two characters at 0.5, the four-character one at 0.6). */
	expect_same("淼焱垚", 6);
	/* Two: also the one-character names that are one of them (0.5). */
	expect_same("淼焱", 4);
	expect_same("犇骉", 3);
	/* Four and five characters. */
	expect_same("淼焱垚犇", 4);
	expect_same("淼焱垚犇骉", 2);
	/* One distinct character, and Latin letters: the trigram path. */
	expect_same("淼淼", 1);
	expect_same("淼", 1);
	expect_same("淼焱ab", 1);
}

static void test_a_name_added_later_is_found_by_its_pairs(void)
{
	CHECK(compare("垚骉鑫") != NULL);
	CHECK(customer("垚骉鑫"));
	/* Itself (exact) and 垚犇骉鑫 (three of four shared: 0.75). */
	expect_same("垚骉鑫", 2);
	const char *pairs = sql("SELECT string_agg(pair, ',' ORDER BY pair) FROM crm.name_pairs"
				" WHERE name_lower = $1",
				1, "垚骉鑫", NULL);
	CHECK(pairs && strlen(pairs) > 0);
}

/* A session of a new user of this run; NULL on error. */
static const char *open_session(const char *role, const char *store, char *out, size_t cap)
{
	char user[64];
	snprintf(user, sizeof user, "%s.%s", run, role);
	if (!it_add_user(db, user, "名字测试", role, store, "Pairs-test-2030"))
		return NULL;
	const char *sid = sql("SELECT s.session_id::text FROM crm.users u,"
			      " crm.session_open(u.id, md5(random()::text) || md5(random()::text),"
			      " 600, 'test') s WHERE u.username = $1",
			      1, user, NULL);
	if (!sid)
		return NULL;
	snprintf(out, cap, "%s", sid);
	return out;
}

/* This run's customers called `name` get a relation at `store` (the pool). */
static bool relation_at(const char *name, const char *store)
{
	return sql3("INSERT INTO crm.relations (id, customer_id, store_id, level, protected_until,"
		    " created_by)"
		    " SELECT gen_random_uuid(), c.id, s.id, 'A', now() + interval '30 days', u.id"
		    " FROM crm.customers c, crm.stores s, crm.users u"
		    " WHERE c.name = $1 AND $2 = ANY (c.tags) AND s.code = $3"
		    " AND u.username = $2 || '.admin'",
		    3, name, run, store) != NULL;
}

/* sql/0039: a store list's search starts from the names the store's
 * relations carry; it finds what pg_trgm finds among the store's
 * customers, also a name the store took on later and a renamed one. */
static void test_a_store_list_searches_its_own_names(void)
{
	char sid[37];
	if (!open_session("store_manager", "BJ01", sid, sizeof sid)) {
		CHECK(!"a store manager's session");
		return;
	}
	/* At BJ01: three of the names above; the others only elsewhere. */
	CHECK(relation_at("淼焱垚", "BJ01") && relation_at("焱淼垚", "BJ01") &&
	      relation_at("淼焱犇", "BJ01") && relation_at("犇骉", "SH01"));
	expect_same_as(sid, "淼焱垚", "BJ01", 3);
	CHECK(!strcmp(compare_as(sid, "犇骉", "BJ01"), "nothing found"));
	/* A name the store takes on later, and a rename, are found there by
	 * their pairs (searched in another order: no prefix match). */
	CHECK(relation_at("犇骉", "BJ01"));
	expect_same_as(sid, "骉犇", "BJ01", 1);
	CHECK(sql("UPDATE crm.customers SET name = '骉鑫焱' WHERE name = '淼焱犇' AND $1 = ANY (tags)",
		  1, run, NULL) != NULL);
	expect_same_as(sid, "焱骉鑫", "BJ01", 1);
	expect_same_as(sid, "淼焱垚", "BJ01", 2);
	/* Every name of the store's relations is filed under its pairs. */
	CHECK_STR(sql("SELECT count(*)::text FROM crm.relations r"
		      " CROSS JOIN LATERAL unnest(crm.name_pair_keys(r.customer_name_lower)) k(pair)"
		      " WHERE NOT EXISTS (SELECT 1 FROM crm.store_name_pairs p"
		      "  WHERE p.store_id = r.store_id AND p.pair = k.pair"
		      "   AND p.name_lower = r.customer_name_lower)",
		      0, NULL, NULL),
		  "0");
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "no database connection\n");
		return 1;
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	snprintf(run, sizeof run, "pairs%ld%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
	char admin[64];
	snprintf(admin, sizeof admin, "%s.admin", run);
	const char *sid = NULL;
	if (it_add_user(db, admin, "名字测试", "group_admin", NULL, "Pairs-test-2030"))
		sid = sql("SELECT s.session_id::text FROM crm.users u,"
			  " crm.session_open(u.id, md5(random()::text) || md5(random()::text), 600, 'test') s"
			  " WHERE u.username = $1",
			  1, admin, NULL);
	if (!sid) {
		fprintf(stderr, "could not open a group admin's session\n");
		return 1;
	}
	snprintf(session, sizeof session, "%s", sid);
	test_names_by_pairs_match_trigram_similarity();
	test_a_name_added_later_is_found_by_its_pairs();
	test_a_store_list_searches_its_own_names();
	PQfinish(db);
	return it_summary();
}
