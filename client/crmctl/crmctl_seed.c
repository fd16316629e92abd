/* crmctl seed: a large, realistic dealer group for benchmarks and demos;
 * this file loads what crmctl_seed_gen.c generates.
 *
 * Every table is streamed in its own COPY pass, generating the customers
 * again for each: nothing is held in memory but one customer at a time,
 * and a first pass only counts rows, for the progress bar. Customer and
 * relation ids are UUIDv7 built from their synthetic creation time, so id
 * order is creation order, as for records made through crmd.
 *
 * The whole seed is one transaction: secondary indexes, unique constraints
 * and foreign keys of the seeded tables are dropped, the rows are copied in,
 * and then every dropped definition is recreated from the text PostgreSQL
 * itself gave for it (pg_get_indexdef, pg_get_constraintdef), so that the
 * schema ends exactly as the migrations define it, and every foreign key and
 * unique rule is checked once over the whole table. A failure or an
 * interrupt rolls all of it back. No outbox rows are written: this is bulk
 * demo data, not writes made at a store. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crmctl.h"
#include "crmctl_seed.h"

#define SEED_GROUP "示例汽车集团"
#define SEED_MAX_STORES 999
#define SEED_MAX_CUSTOMERS 100000000L
#define SEED_SAMPLE_TARGET 20000

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

/* ------------------------------------------------------------ COPY output */

static void cb_flush(struct copy_buf *b)
{
	if (b->failed || b->len == 0)
		return;
	if (PQputCopyData(b->db, b->data, (int)b->len) != 1) {
		ctl_err("sending COPY data: %s", PQerrorMessage(b->db));
		b->failed = true;
	}
	b->len = 0;
}

static void cb_reserve(struct copy_buf *b, size_t more)
{
	if (b->len + more > b->cap)
		cb_flush(b);
}

void cb_str(struct copy_buf *b, const char *s)
{
	size_t n = strlen(s);
	cb_reserve(b, n + 1);
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

void cb_char(struct copy_buf *b, char ch)
{
	cb_reserve(b, 1);
	b->data[b->len++] = ch;
}

/* Text fields here come from the tables above or are digits and letters:
 * none holds a tab, newline or backslash, so no COPY escaping is needed. */
void cb_field(struct copy_buf *b, const char *s, bool last)
{
	cb_str(b, s);
	cb_char(b, last ? '\n' : '\t');
}

void cb_null(struct copy_buf *b, bool last)
{
	cb_field(b, "\\N", last);
}

void cb_int(struct copy_buf *b, long long v, bool last)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%lld", v);
	cb_field(b, tmp, last);
}

/* UTC timestamp with milliseconds. */
void cb_time(struct copy_buf *b, int64_t ms, bool last)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char tmp[96];
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	cb_field(b, tmp, last);
}

void cb_time_or_null(struct copy_buf *b, int64_t ms, bool last)
{
	if (ms)
		cb_time(b, ms, last);
	else
		cb_null(b, last);
}

static const char *owner_id(const struct seed *s, const struct gen_relation *rel)
{
	return rel->owner < 0 ? NULL : s->stores[rel->store].consultant_id[rel->owner];
}

/* crm.mask_phone (sql/0005, 0016) of one phone. */
static void mask_phone(const char *p, char *out, size_t cap)
{
	size_t n = strlen(p);
	bool mobile = n == 14 && !strncmp(p, "+861", 4) && p[4] >= '3' && p[4] <= '9' &&
		      strspn(p + 5, "0123456789") == 9;
	bool city = !strncmp(p, "+8610", 5) || (!strncmp(p, "+862", 4) && p[4] >= '0' &&
						  p[4] <= '9');
	size_t head = mobile ? 6 : city ? 5 : 6, tail = mobile ? 4 : 2;
	head = head < n ? head : n;
	tail = tail < n ? tail : n;
	snprintf(out, cap, "%.*s****%s", (int)head, p, p + n - tail);
}

/* The two copies of the customer's phones that sql/0037 keeps on its row,
 * as crm.customer_phones_text makes them: the primary phone (the first
 * generated) first, then the other (a customer has at most two). */
static void write_phone_copies(const struct gen_customer *c, struct copy_buf *b)
{
	for (int masked = 0; masked < 2; masked++) {
		for (int k = 0; k < c->nphones; k++) {
			char m[32];
			if (masked)
				mask_phone(c->phones[k], m, sizeof m);
			if (k)
				cb_char(b, '\x1f');
			cb_str(b, masked ? m : c->phones[k]);
			cb_str(b, k == 0 ? "\x1e" "mobile\x1e" "true" : "\x1e" "mobile\x1e" "false");
		}
		if (!c->nphones)
			cb_str(b, "\\N");
		cb_char(b, masked ? '\n' : '\t');
	}
}

/* The copy of the relation's intents that sql/0037 keeps on its row, as
 * crm.relation_intents_text makes it. */
static void write_intents_copy(const struct gen_relation *rel, struct copy_buf *b)
{
	for (int p = 0; p < rel->nintents; p++) {
		const struct gen_intent *in = &rel->intents[p];
		char nums[64];
		snprintf(nums, sizeof nums, "\x1e%d\x1e%d\x1e", in->budget_min, in->budget_max);
		if (p)
			cb_char(b, '\x1f');
		cb_str(b, in->model->name);
		cb_char(b, '\x1e');
		cb_str(b, in->model->body);
		cb_char(b, '\x1e');
		cb_str(b, in->configuration);
		cb_str(b, nums);
		cb_str(b, in->needs);
	}
	if (!rel->nintents)
		cb_str(b, "\\N");
	cb_char(b, '\n');
}

static long long write_customer(const struct seed *s, const struct gen_customer *c,
				struct copy_buf *b)
{
	const struct seed_store *st = &s->stores[c->rel[0].store];
	cb_field(b, c->id, false);
	cb_field(b, c->name, false);
	cb_field(b, c->phones[0], false);
	cb_time(b, c->created_ms, false);
	cb_time(b, c->created_ms, false);
	cb_field(b, st->consultant_id[c->rel[0].creator], false);
	cb_field(b, st->id, false);
	cb_field(b, c->female ? "female" : "male", false);
	if (c->birth_year)
		cb_int(b, c->birth_year, false);
	else
		cb_null(b, false);
	cb_field(b, c->age_band, false);
	cb_field(b, c->wechat, false);
	cb_field(b, c->email, false);
	cb_field(b, c->occupation, false);
	cb_field(b, c->region, false);
	cb_char(b, '{');
	for (int k = 0; k < c->ntags; k++) {
		if (k)
			cb_char(b, ',');
		cb_str(b, c->tags[k]);
	}
	cb_field(b, "}", false);
	cb_field(b, c->important ? "t" : "f", false);
	write_phone_copies(c, b);
	return 1;
}

static long long write_phones(const struct seed *s, const struct gen_customer *c,
			      struct copy_buf *b)
{
	(void)s;
	for (int k = 0; k < c->nphones; k++) {
		cb_field(b, c->phones[k], false);
		cb_field(b, c->id, false);
		cb_field(b, k == 0 ? "t" : "f", false);
		cb_field(b, "mobile", false);
		cb_time(b, c->phone_added_ms[k], true);
	}
	return c->nphones;
}

static long long write_relations(const struct seed *s, const struct gen_customer *c,
				 struct copy_buf *b)
{
	for (int k = 0; k < c->nrelations; k++) {
		const struct gen_relation *rel = &c->rel[k];
		const struct seed_store *st = &s->stores[rel->store];
		const char *owner = owner_id(s, rel);
		char level[2] = {rel->level, '\0'};
		cb_field(b, rel->id, false);
		cb_field(b, c->id, false);
		cb_field(b, st->id, false);
		if (owner)
			cb_field(b, owner, false);
		else
			cb_null(b, false);
		cb_field(b, level, false);
		cb_field(b, rel->source, false);
		cb_time(b, rel->first_ms, false);
		cb_field(b, rel->place, false);
		cb_field(b, rel->scenario, false);
		cb_field(b, rel->feedback, false);
		cb_field(b, rel->status, false);
		cb_time(b, rel->first_ms + (int64_t)s->protection_days * DAY_MS, false);
		cb_time_or_null(b, rel->last_ms, false);
		cb_time_or_null(b, rel->next_ms, false);
		cb_time(b, rel->created_ms, false);
		cb_time(b, rel->updated_ms, false);
		cb_field(b, st->consultant_id[rel->creator], false);
		write_intents_copy(rel, b);
	}
	return c->nrelations;
}

static long long write_intents(const struct seed *s, const struct gen_customer *c,
			       struct copy_buf *b)
{
	(void)s;
	long long n = 0;
	for (int k = 0; k < c->nrelations; k++) {
		const struct gen_relation *rel = &c->rel[k];
		for (int p = 0; p < rel->nintents; p++, n++) {
			const struct gen_intent *in = &rel->intents[p];
			cb_field(b, rel->id, false);
			cb_int(b, p, false);
			cb_field(b, in->model->name, false);
			cb_field(b, in->model->body, false);
			cb_field(b, in->configuration, false);
			cb_int(b, in->budget_min, false);
			cb_int(b, in->budget_max, false);
			cb_field(b, in->needs, true);
		}
	}
	return n;
}

static long long write_levels(const struct seed *s, const struct gen_customer *c,
			      struct copy_buf *b)
{
	long long n = 0;
	for (int k = 0; k < c->nrelations; k++) {
		const struct gen_relation *rel = &c->rel[k];
		const char *by = owner_id(s, rel);
		if (!by)
			by = s->stores[rel->store].consultant_id[rel->creator];
		for (int l = 0; l < rel->nlevels; l++, n++) {
			const struct gen_level *lv = &rel->levels[l];
			char from[2] = {lv->from, '\0'}, to[2] = {lv->to, '\0'};
			cb_field(b, rel->id, false);
			if (lv->from)
				cb_field(b, from, false);
			else
				cb_null(b, false);
			cb_field(b, to, false);
			cb_field(b, by, false);
			cb_time(b, lv->at_ms, false);
			cb_field(b, l == 0 ? "首次登记" : "", true);
		}
	}
	return n;
}

/* Positions in seeded_tables below. */
enum { TABLE_FOLLOWUPS = 5, TABLE_TASKS = 6 };

static long long count_rows(const struct gen_customer *c, int table)
{
	long long n = 0;
	switch (table) {
	case 0: return 1;
	case 1: return c->nphones;
	case 2: return c->nrelations;
	case 3:
		for (int k = 0; k < c->nrelations; k++)
			n += c->rel[k].nintents;
		return n;
	case TABLE_FOLLOWUPS:
	case TABLE_TASKS:
		return 0; /* counted by seed_fu_count */
	default:
		for (int k = 0; k < c->nrelations; k++)
			n += c->rel[k].nlevels;
		return n;
	}
}

struct seeded_table {
	const char *name;
	const char *copy;
	long long (*write)(const struct seed *, const struct gen_customer *, struct copy_buf *);
};

static const struct seeded_table seeded_tables[] = {
	{"customers",
	 "COPY crm.customers (id, name, phone, created_at, updated_at, created_by, store_id,"
	 " gender, birth_year, age_band, wechat, email, occupation, region, tags, important,"
	 " phones_shown, phones_masked) FROM STDIN",
	 write_customer},
	{"customer_phones",
	 "COPY crm.customer_phones (phone, customer_id, is_primary, kind, added_at) FROM STDIN",
	 write_phones},
	{"relations",
	 "COPY crm.relations (id, customer_id, store_id, owner_id, level, source,"
	 " first_contact_at, first_contact_place, first_contact_scenario, first_feedback,"
	 " status, protected_until, last_contact_at, next_followup_at, created_at,"
	 " updated_at, created_by, intents_text) FROM STDIN",
	 write_relations},
	{"relation_intents",
	 "COPY crm.relation_intents (relation_id, position, model, body_type, configuration,"
	 " budget_min, budget_max, needs) FROM STDIN",
	 write_intents},
	{"level_changes",
	 "COPY crm.level_changes (relation_id, from_level, to_level, changed_by, changed_at,"
	 " reason) FROM STDIN",
	 write_levels},
	{"followups",
	 "COPY crm.followups (id, relation_id, store_id, method, type, at, content, feedback,"
	 " by_user, created_at) FROM STDIN",
	 seed_write_followups},
	{"tasks",
	 "COPY crm.tasks (id, relation_id, store_id, owner_id, due_at, method, purpose,"
	 " cadence_key, set_by_followup, created_at, created_by) FROM STDIN",
	 seed_write_tasks},
};
#define NTABLES NELEM(seeded_tables)

/* ------------------------------------------------------------ progress */

static void fmt_count(long long v, char *out, size_t cap)
{
	char raw[32];
	snprintf(raw, sizeof raw, "%lld", v);
	size_t n = strlen(raw), o = 0;
	for (size_t i = 0; i < n && o + 2 < cap; i++) {
		if (i && (n - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = raw[i];
	}
	out[o] = '\0';
}

/* One line on stderr, redrawn at most ten times a second, only on a
 * terminal: a pipe or a log file gets just the summary at the end. */
static void progress(struct seed *s, bool force)
{
	if (!s->tty)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double since = (double)(now.tv_sec - s->last_draw.tv_sec) +
		       (now.tv_nsec - s->last_draw.tv_nsec) / 1e9;
	if (!force && since < 0.1)
		return;
	s->last_draw = now;
	double t = elapsed_s(&s->started);
	double frac = s->rows_total ? (double)s->rows_done / (double)s->rows_total : 1;
	double rate = t > 0 ? (double)s->rows_done / t : 0;
	char bar[32], done[32], total[32], eta[32] = "--:--";
	int w = 24, fill = (int)(frac * w);
	for (int i = 0; i < w; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[w] = '\0';
	fmt_count(s->rows_done, done, sizeof done);
	fmt_count(s->rows_total, total, sizeof total);
	if (rate > 0 && s->rows_done < s->rows_total) {
		int left = (int)((double)(s->rows_total - s->rows_done) / rate);
		snprintf(eta, sizeof eta, "%d:%02d", left / 60, left % 60);
	}
	fprintf(stderr, "\r\033[Kseed [%s] %s/%s rows  %.0fk rows/s  ETA %s  %s", bar, done,
		total, rate / 1000, eta, s->phase);
	fflush(stderr);
}

static void progress_phase(struct seed *s, const char *phase)
{
	s->phase = phase;
	progress(s, true);
}

/* ------------------------------------------------------------ database steps */

static bool copy_table(struct seed *s, PGconn *db, const struct seeded_table *t,
		       long long *rows)
{
	PGresult *res = PQexec(db, t->copy);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		ctl_err("starting COPY into crm.%s: %s", t->name, PQerrorMessage(db));
		PQclear(res);
		return false;
	}
	PQclear(res);
	struct copy_buf b = {db, malloc(1 << 20), 0, 1 << 20, false};
	seed_fu_rewind(s);
	if (!b.data) {
		ctl_err("out of memory");
		PQputCopyEnd(db, "out of memory");
		PQclear(PQgetResult(db));
		return false;
	}
	struct gen_customer c;
	*rows = 0;
	for (long i = 0; i < s->customers && !b.failed; i++) {
		gen_customer(s, i, &c);
		long long n = t->write(s, &c, &b);
		*rows += n;
		s->rows_done += n;
		if ((i & 1023) == 0)
			progress(s, false);
	}
	cb_flush(&b);
	free(b.data);
	bool ok = !b.failed;
	if (PQputCopyEnd(db, ok ? NULL : "seed failed") != 1) {
		ctl_err("ending COPY into crm.%s: %s", t->name, PQerrorMessage(db));
		ok = false;
	}
	while ((res = PQgetResult(db)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && ok) {
			const char *msg = PQresultErrorMessage(res);
			ctl_err("COPY into crm.%s: %.*s", t->name, (int)strcspn(msg, "\n"), msg);
			const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
			const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
			if (detail)
				fprintf(stderr, "  detail: %s\n", detail);
			if (context)
				fprintf(stderr, "  context: %s\n", context);
			ok = false;
		}
		PQclear(res);
	}
	return ok;
}

/* What is dropped before the load and made again after it, in the order
 * to make it again: indexes, then unique constraints, then foreign keys. */
struct redo {
	char **sql;
	int n;
};

static bool redo_add(struct redo *r, const char *sql)
{
	char **grown = realloc(r->sql, (size_t)(r->n + 1) * sizeof *grown);
	if (!grown)
		return false;
	r->sql = grown;
	r->sql[r->n] = strdup(sql);
	if (!r->sql[r->n])
		return false;
	r->n++;
	return true;
}

static void redo_free(struct redo *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->sql[i]);
	free(r->sql);
	r->sql = NULL;
	r->n = 0;
}

#define SEEDED_TABLES_ARRAY \
	"'{customers,customer_phones,relations,relation_intents,level_changes,followups,tasks}'::text[]"

/* sql/0037's copies (a customer's phones, a relation's intents) are
 * written with the rows here (write_customer, write_relations). The
 * triggers that compute them after a write of the phones or intents, and
 * the guards that clear a copy given at insert, would compute all of them
 * again: off for the load, on again before the commit (and, as the rest,
 * undone by a rollback). test_seed checks the copies. */
static bool copy_triggers(PGconn *db, bool on)
{
	static const char *const triggers[][2] = {
		{"customers", "customers_phones_guard_insert"},
		{"customer_phones", "customer_phones_copy_on_insert"},
		{"relations", "relations_intents_guard_insert"},
		{"relation_intents", "relation_intents_copy_on_insert"},
	};
	for (size_t i = 0; i < NELEM(triggers); i++) {
		char sql[160];
		snprintf(sql, sizeof sql, "ALTER TABLE crm.%s %s TRIGGER %s", triggers[i][0],
			 on ? "ENABLE" : "DISABLE", triggers[i][1]);
		if (!ctl_run(db, "switching a copy trigger for the load", sql, 0, NULL))
			return false;
	}
	return true;
}

/* Lists the secondary indexes, unique constraints and foreign keys of the
 * seeded tables (primary keys stay: other tables' foreign keys rest on
 * them), remembers how to make each again, and drops them. */
static bool drop_secondary(PGconn *db, struct redo *redo, int *nindexes, int *nconstraints)
{
	static const char list_sql[] =
		/* foreign keys first, as they may rest on the unique constraints */
		"SELECT 1 AS ord, format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass,"
		"              c.conname),"
		"       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass,"
		"              c.conname, pg_get_constraintdef(c.oid)), 3 AS redo_ord"
		"  FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
		"  JOIN pg_namespace n ON n.oid = t.relnamespace"
		" WHERE n.nspname = 'crm' AND t.relname = ANY(" SEEDED_TABLES_ARRAY ")"
		"   AND c.contype = 'f'"
		" UNION ALL "
		"SELECT 2, format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass,"
		"              c.conname),"
		"       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass,"
		"              c.conname, pg_get_constraintdef(c.oid)), 2"
		"  FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
		"  JOIN pg_namespace n ON n.oid = t.relnamespace"
		" WHERE n.nspname = 'crm' AND t.relname = ANY(" SEEDED_TABLES_ARRAY ")"
		"   AND c.contype = 'u'"
		"   AND NOT EXISTS (SELECT 1 FROM pg_constraint f"
		"                    WHERE f.contype = 'f' AND f.conindid = c.conindid)"
		" UNION ALL "
		"SELECT 3, format('DROP INDEX %s', i.indexrelid::regclass),"
		"       pg_get_indexdef(i.indexrelid), 1"
		"  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
		"  JOIN pg_namespace n ON n.oid = t.relnamespace"
		" WHERE n.nspname = 'crm' AND t.relname = ANY(" SEEDED_TABLES_ARRAY ")"
		"   AND NOT i.indisprimary"
		"   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid"
		"                      AND k.contype IN ('p', 'u', 'x'))"
		" ORDER BY 1, 2";
	PGresult *res = ctl_query(db, "listing the seeded tables' indexes and constraints",
				  list_sql, 0, NULL);
	if (!res)
		return false;
	bool ok = true;
	*nindexes = *nconstraints = 0;
	/* redo in redo_ord order: indexes, unique constraints, foreign keys */
	for (int pass = 1; pass <= 3 && ok; pass++)
		for (int row = 0; row < PQntuples(res) && ok; row++)
			if (atoi(PQgetvalue(res, row, 3)) == pass)
				ok = redo_add(redo, PQgetvalue(res, row, 2));
	for (int row = 0; row < PQntuples(res) && ok; row++) {
		ok = ctl_run(db, "dropping an index or constraint for the load",
			     PQgetvalue(res, row, 1), 0, NULL);
		if (atoi(PQgetvalue(res, row, 0)) == 3)
			(*nindexes)++;
		else
			(*nconstraints)++;
	}
	PQclear(res);
	if (!ok)
		ctl_err("seed: could not set the tables up for the load");
	return ok;
}

static bool load_taken_phones(struct seed *s, PGconn *db)
{
	PGresult *res = ctl_query(db, "reading the phones already in the database",
				  "SELECT substr(phone, 4)::bigint FROM crm.customer_phones"
				  " WHERE phone ~ '^\\+861[3-9][0-9]{9}$' ORDER BY 1", 0, NULL);
	if (!res)
		return false;
	s->ntaken = (size_t)PQntuples(res);
	s->taken = calloc(s->ntaken + 1, sizeof *s->taken);
	if (!s->taken) {
		PQclear(res);
		ctl_err("out of memory");
		return false;
	}
	for (size_t i = 0; i < s->ntaken; i++)
		s->taken[i] = strtoull(PQgetvalue(res, (int)i, 0), NULL, 10);
	PQclear(res);
	return true;
}

/* Stores SD001.., each with a sales manager and consultants; one group
 * analyst for the whole group. One password hash for all of them. */
static bool insert_org(struct seed *s, PGconn *db, const char *hash, const char *group_id)
{
	struct rng r = rng_for(s->seed, 2, 0);
	for (int i = 0; i < s->nstores; i++) {
		struct seed_store *st = &s->stores[i];
		seed_store_layout(i, &r, st);
		const char *p[] = {st->id, st->code, st->name, seed_city_name(st->city),
				   seed_brand_name(st->brand), group_id};
		if (!ctl_run(db, "adding a seeded store",
			     "INSERT INTO crm.stores (id, code, name, city, brand, group_id)"
			     " VALUES ($1, $2, $3, $4, $5, $6)", 6, p))
			return false;
		char user[32], display[32];
		for (int k = -1; k < s->consultants; k++) {
			char *id = k < 0 ? st->manager_id : st->consultant_id[k];
			uuid_v4(&r, id);
			if (k < 0)
				snprintf(user, sizeof user, "sd%03d.manager", i + 1);
			else
				snprintf(user, sizeof user, "sd%03d.c%02d", i + 1, k + 1);
			if (k >= 0)
				snprintf(st->consultant_user[k], sizeof st->consultant_user[k], "%s", user);
			gen_name(&r, rng_chance(&r, 40), display, sizeof display);
			const char *u[] = {id, user, display, k < 0 ? "sales_manager" : "consultant",
					   st->id, hash};
			if (!ctl_run(db, "adding a seeded user",
				     "INSERT INTO crm.users (id, username, display_name, role,"
				     " store_id, password_hash) VALUES ($1, $2, $3, $4, $5, $6)",
				     6, u))
				return false;
		}
	}
	char analyst_id[37];
	uuid_v4(&r, analyst_id);
	const char *a[] = {analyst_id, "sd.analyst", "集团数据分析", hash};
	if (!ctl_run(db, "adding the seeded group analyst",
		     "INSERT INTO crm.users (id, username, display_name, role, password_hash)"
		     " VALUES ($1, $2, $3, 'group_analyst', $4)", 4, a))
		return false;
	/* Each brand's catalog, for intents and the model filter. */
	for (int b = 0; b < seed_brand_count(); b++)
		for (int m = 0; m < seed_models_per_brand(); m++) {
			const struct model *mo = seed_model(b, m);
			const char *p[] = {seed_brand_name(b), mo->name, mo->body};
			if (!ctl_run(db, "adding the model catalog",
				     "INSERT INTO crm.models (brand, name, body_type)"
				     " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", 3, p))
				return false;
		}
	/* Where a second relation may go: a store of another brand, preferring
	 * the same city, as customers shop around locally. */
	for (int i = 0; i < s->nstores; i++) {
		struct seed_store *st = &s->stores[i];
		st->others = calloc((size_t)s->nstores, sizeof *st->others);
		if (!st->others) {
			ctl_err("out of memory");
			return false;
		}
		for (int pass = 0; pass < 2 && st->nothers == 0; pass++)
			for (int j = 0; j < s->nstores; j++)
				if (s->stores[j].brand != st->brand &&
				    (pass == 1 || s->stores[j].city == st->city))
					st->others[st->nothers++] = j;
	}
	return true;
}

/* ------------------------------------------------------------ files */

static FILE *open_private(const char *path, char *tmp, size_t cap)
{
	snprintf(tmp, cap, "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		ctl_err("cannot create %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return f;
}

static bool close_private(FILE *f, const char *tmp, const char *path)
{
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
}

/* The logins (username password role store, as `demo` writes them). */
static bool write_logins(const struct seed *s, const char *path, const char *password)
{
	char tmp[4096];
	FILE *f = open_private(path, tmp, sizeof tmp);
	if (!f)
		return false;
	for (int i = 0; i < s->nstores; i++) {
		fprintf(f, "sd%03d.manager %s sales_manager %s\n", i + 1, password,
			s->stores[i].code);
		for (int k = 0; k < s->consultants; k++)
			fprintf(f, "%s %s consultant %s\n", s->stores[i].consultant_user[k], password,
				s->stores[i].code);
	}
	fprintf(f, "sd.analyst %s group_analyst -\n", password);
	return close_private(f, tmp, path);
}

/* FILE.sample: customers spread over the whole seed, one a line: customer
 * id, store code, owner username ("-" for the pool), primary phone, name,
 * the id of the relation at that store.
 * The benchmark draws its requests from it. */
static bool write_sample(const struct seed *s, const char *path, long *written)
{
	char sample[4096], tmp[4200];
	snprintf(sample, sizeof sample, "%s.sample", path);
	FILE *f = open_private(sample, tmp, sizeof tmp);
	if (!f)
		return false;
	long stride = s->customers / SEED_SAMPLE_TARGET;
	if (stride < 1)
		stride = 1;
	struct gen_customer c;
	*written = 0;
	for (long i = 0; i < s->customers; i += stride) {
		gen_customer(s, i, &c);
		const struct gen_relation *rel = &c.rel[0];
		const struct seed_store *st = &s->stores[rel->store];
		fprintf(f, "%s %s %s %s %s %s\n", c.id, st->code,
			rel->owner < 0 ? "-" : st->consultant_user[rel->owner], c.phones[0], c.name,
			rel->id);
		(*written)++;
	}
	return close_private(f, tmp, sample);
}

/* ------------------------------------------------------------ the command */

static bool parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		ctl_err("seed: --%s must be a whole number from %ld to %ld, got \"%s\"", opt, lo,
			hi, v);
		return false;
	}
	*out = n;
	return true;
}

static void random_password(char *out, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
	out[len] = '\0';
}

int ctl_cmd_seed(const struct crm_config *cfg, int argc, char **argv)
{
	const char *stores_opt = "8", *customers_opt = NULL, *seed_opt = "1";
	const char *consultants_opt = "6", *password = NULL, *logins = NULL, *followups_opt = "0";
	bool keep_indexes = false, no_vacuum = false;
	const struct ctl_opt opts[] = {
		{"stores", CTL_OPT_VALUE, &stores_opt},
		{"customers", CTL_OPT_VALUE, &customers_opt},
		{"followups", CTL_OPT_VALUE, &followups_opt},
		{"consultants", CTL_OPT_VALUE, &consultants_opt},
		{"seed", CTL_OPT_VALUE, &seed_opt},
		{"password", CTL_OPT_VALUE, &password},
		{"logins", CTL_OPT_VALUE, &logins},
		{"keep-indexes", CTL_OPT_FLAG, &keep_indexes},
		{"no-vacuum", CTL_OPT_FLAG, &no_vacuum},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("seed", argc, argv, opts);
	if (rc)
		return rc;
	long nstores, ncustomers, nconsultants, seed_value, nfollowups;
	if (!customers_opt || !logins) {
		ctl_err("seed: --customers M and --logins FILE are required");
		return CTL_USAGE;
	}
	if (!parse_long("stores", stores_opt, 1, SEED_MAX_STORES, &nstores) ||
	    !parse_long("customers", customers_opt, 1, SEED_MAX_CUSTOMERS, &ncustomers) ||
	    !parse_long("consultants", consultants_opt, 1, SEED_MAX_CONSULTANTS, &nconsultants) ||
	    !parse_long("seed", seed_opt, 0, 2147483647L, &seed_value) ||
	    !parse_long("followups", followups_opt, 0, 100 * ncustomers, &nfollowups))
		return CTL_USAGE;
	char why[256];
	if (password && !ctl_password_check(NULL, password, why, sizeof why)) {
		ctl_err("seed: --password: %s", why);
		return CTL_USAGE;
	}
	if (sodium_init() < 0) {
		ctl_err("libsodium failed to initialise");
		return CTL_FAIL;
	}
	char generated[17];
	if (!password) {
		do
			random_password(generated, 16);
		while (!ctl_password_check(NULL, generated, why, sizeof why));
		password = generated;
	}

	struct seed s = {0};
	s.seed = (uint64_t)seed_value;
	s.customers = ncustomers;
	s.followups = nfollowups;
	s.nstores = (int)nstores;
	s.consultants = (int)nconsultants;
	s.tty = isatty(STDERR_FILENO);
	s.now_ms = (int64_t)time(NULL) / 86400 * DAY_MS;
	s.stores = calloc((size_t)nstores, sizeof *s.stores);
	seed_phones_init(&s);
	struct redo redo = {0};
	char hash[crypto_pwhash_STRBYTES] = "";
	if (!s.stores || !seed_fu_init(&s)) {
		ctl_err("out of memory");
		return CTL_FAIL;
	}
	clock_gettime(CLOCK_MONOTONIC, &s.started);

	rc = CTL_FAIL;
	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		goto out;
	PGresult *res = ctl_query(db, "looking for seeded stores",
				  "SELECT count(*) FROM crm.stores WHERE code ~ '^SD[0-9]{3}$'", 0,
				  NULL);
	if (!res)
		goto out;
	long already = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (already > 0) {
		ctl_err("seed: this database already holds a seeded group (%ld stores SD001...);"
			" seed refuses to add to it. Seed a fresh database (crmctl init), or"
			" keep the one you have", already);
		goto out;
	}

	/* One Argon2id hash for every seeded user, with the parameters of
	 * ctl_user_add, so crmd verifies them as any other password. */
	if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		ctl_err("hashing the password failed (out of memory?)");
		goto out;
	}

	if (!ctl_run(db, "starting a transaction", "BEGIN", 0, NULL) ||
	    !ctl_run(db, "raising maintenance_work_mem for the index builds",
		     "SET LOCAL maintenance_work_mem = '512MB'", 0, NULL))
		goto rollback;
	res = ctl_query(db, "reading the lead protection period",
			"SELECT lead_protection_days FROM crm.group_policy", 0, NULL);
	if (!res)
		goto rollback;
	s.protection_days = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 30;
	PQclear(res);
	const char *group_name = SEED_GROUP;
	res = ctl_query(db, "finding the group",
			"WITH made AS (INSERT INTO crm.groups (name) VALUES ($1)"
			" ON CONFLICT DO NOTHING RETURNING id)"
			" SELECT id FROM made UNION ALL SELECT id FROM crm.groups", 1, &group_name);
	if (!res)
		goto rollback;
	char group_id[37];
	snprintf(group_id, sizeof group_id, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!load_taken_phones(&s, db) || !insert_org(&s, db, hash, group_id))
		goto rollback;

	/* Counting first costs one generation pass and gives an honest ETA. */
	{
		struct gen_customer c;
		long long tasks = 0;
		for (long i = 0; i < s.customers; i++) {
			gen_customer(&s, i, &c);
			for (int t = 0; t < (int)NTABLES; t++)
				s.rows_total += count_rows(&c, t);
			seed_fu_count(&s, &c, &tasks);
		}
		s.rows_total += s.followups + tasks;
	}
	int nindexes = 0, nconstraints = 0;
	if (!keep_indexes && !drop_secondary(db, &redo, &nindexes, &nconstraints))
		goto rollback;
	long long rows[NTABLES];
	if (!copy_triggers(db, false))
		goto rollback;
	for (size_t t = 0; t < NTABLES; t++) {
		progress_phase(&s, seeded_tables[t].name);
		if (!copy_table(&s, db, &seeded_tables[t], &rows[t]))
			goto rollback;
	}
	if (!copy_triggers(db, true))
		goto rollback;
	if (redo.n) {
		char phase[64];
		for (int i = 0; i < redo.n; i++) {
			snprintf(phase, sizeof phase, "rebuilding indexes and constraints %d/%d",
				 i + 1, redo.n);
			progress_phase(&s, phase);
			if (!ctl_run(db, "rebuilding an index or constraint", redo.sql[i], 0, NULL)) {
				fprintf(stderr, "  statement: %s\n", redo.sql[i]);
				goto rollback;
			}
		}
	}
	progress_phase(&s, "committing");
	if (!ctl_run(db, "committing the seed", "COMMIT", 0, NULL))
		goto out;
	/* VACUUM sets the visibility map (index-only scans) and hint bits once,
	 * instead of the first readers doing it; ANALYZE gives the planner its
	 * statistics. Neither may run inside the transaction. */
	progress_phase(&s, no_vacuum ? "analyzing" : "vacuuming and analyzing");
	for (size_t t = 0; t < NTABLES; t++) {
		char sql[128];
		snprintf(sql, sizeof sql, "%s crm.%s", no_vacuum ? "ANALYZE" : "VACUUM (ANALYZE)",
			 seeded_tables[t].name);
		if (!ctl_run(db, "analyzing a seeded table", sql, 0, NULL))
			goto out;
	}
	if (!ctl_run(db, "analyzing stores and users", "ANALYZE crm.stores, crm.users", 0, NULL))
		goto out;
	long sampled = 0;
	if (!write_logins(&s, logins, password) || !write_sample(&s, logins, &sampled))
		goto out;
	if (s.tty)
		fputs("\r\033[K", stderr);
	printf("seed: %d stores, %d users, %lld customers, %lld phones, %lld relations,"
	       " %lld intents, %lld level changes, %lld follow-ups, %lld open tasks in %.1f s (%s);"
	       " logins in %s, %ld sample customers in %s.sample\n",
	       s.nstores, s.nstores * (s.consultants + 1) + 1, rows[0], rows[1], rows[2], rows[3],
	       rows[4], rows[TABLE_FOLLOWUPS], rows[TABLE_TASKS], elapsed_s(&s.started),
	       keep_indexes ? "indexes kept" : "indexes rebuilt", logins, sampled, logins);
	rc = CTL_OK;
	goto out;
rollback:
	if (s.tty)
		fputs("\n", stderr);
	PQclear(PQexec(db, "ROLLBACK"));
	ctl_err("seed: nothing was written (the transaction was rolled back)");
out:
	sodium_memzero(hash, sizeof hash);
	redo_free(&redo);
	if (db)
		PQfinish(db);
	for (int i = 0; i < s.nstores; i++)
		free(s.stores[i].others);
	free(s.stores);
	free(s.taken);
	seed_fu_free(&s);
	return rc;
}
