/* Customer queries: the streamed list and search, and the customer card.
 *
 * A list is a stream of CustomerPage frames. Each frame is one call of
 * STMT_CUSTOMER_LIST (sql/0003 crm.customer_query) with the request's
 * filters and the cursor of the row before it, fetched only when the client
 * has credit. The SQL side owns scope, ordering and the cursor format; this
 * file validates the request, turns `text` into a name or phone search, and
 * streams the rows. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stmts.h"
#include "textcheck.h"

#define LIST_PAGE_DEFAULT 100
#define LIST_PAGE_MAX 500
#define LIST_MAX_DAYS 36500
#define LIST_MAX_VALUES 16      /* entries of levels / sources */
#define CURSOR_MAX_BYTES 2048
#define SUFFIX_MIN_DIGITS 4
#define SUFFIX_MAX_DIGITS 20

/* Column layout of STMT_CUSTOMER_LIST and STMT_CUSTOMER_CARD (stmts.h). */
#define LIST_COL_RELATION CUSTOMER_NCOLS
#define LIST_COL_CURSOR (CUSTOMER_NCOLS + RELATION_NCOLS)
#define CARD_COL_CUSTOMER 1
#define CARD_COL_RELATION (1 + CUSTOMER_NCOLS)
#define CARD_COL_EVENT (1 + CUSTOMER_NCOLS + RELATION_NCOLS)

static const char *const level_names[] = {"H", "A", "B", "C", "N", "O", "D", "T"};
static const char *const source_names[] = {"walk_in", "referral", "online", "auto_show",
					   "phone_in", "roadshow", "fleet", "other"};
static const char *const sort_names[] = {"", "created", "updated", "name", "last_contact",
					 "next_followup", "level", "relevance"};
static const char *const name_match_names[] = {"", "exact", "prefix", "fuzzy"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

/* The request's values as the statement's text parameters. Built again for
 * every page from the request, so nothing but the cursor changes between
 * pages. */
struct list_params {
	const char *name;                 /* name search, or NULL */
	char phone[PHONE_CANONICAL_MAX];  /* canonical number, or "" */
	char digits[SUFFIX_MAX_DIGITS + 1]; /* last digits of a phone, or "" */
	char levels[LIST_MAX_VALUES * 2 + 1];
	char sources[LIST_MAX_VALUES * 12 + 1];
	char days[16];
	char count[16];
};

/* Why a request cannot run: the field and the words for a person. */
struct list_error {
	const char *field;
	char message[256];
};

static bool list_fail(struct list_error *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool list_fail(struct list_error *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	e->field = field;
	return false;
}

/* Reads `in` as a phone search: a number that normalizes (matched in
 * canonical form), and/or, after dropping spaces and dashes, only digits:
 * at least 4 of them, matched as the end of one of the customer's phones.
 * False when it is neither; `*too_short` says it was digits, but fewer
 * than 4. */
static bool phone_search(const char *in, struct list_params *p, bool *too_short)
{
	char why[128];
	*too_short = false;
	bool canonical = phone_normalize(in, p->phone, why, sizeof why);
	if (!canonical)
		p->phone[0] = '\0';
	size_t n = 0;
	bool digits = true;
	for (const char *s = in; *s && digits; s++) {
		if (*s == ' ' || *s == '-')
			continue;
		if (!isdigit((unsigned char)*s) || n == SUFFIX_MAX_DIGITS)
			digits = false;
		else
			p->digits[n++] = *s;
	}
	if (!digits || n < SUFFIX_MIN_DIGITS) {
		*too_short = digits && n > 0 && !canonical;
		n = 0;
	}
	p->digits[n] = '\0';
	return canonical || n > 0;
}

static bool blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t')
			return false;
	return true;
}

/* Validates the request and fills `p`. Every bad value is refused here with
 * the field it came in; the SQL function checks again what it relies on. */
static bool list_params_build(const Crm__CustomerList *in, uint32_t want, struct list_params *p,
			      struct list_error *e)
{
	char why[256];
	memset(p, 0, sizeof *p);
	const struct {
		const char *field, *value;
		size_t max_chars;
	} texts[] = {
		{"text", in->text, 100},         {"name", in->name, 100},
		{"name_match", in->name_match, 16}, {"phone", in->phone, 40},
		{"model", in->model, 100},       {"owner", in->owner, 64},
		{"tag", in->tag, 64},            {"store_code", in->store_code, 16},
		{"sort", in->sort, 32},          {"after", in->after, CURSOR_MAX_BYTES},
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (!text_field_ok(texts[i].field, texts[i].value, texts[i].max_chars, false, why,
				   sizeof why))
			return list_fail(e, texts[i].field, "%s", why);
	if (in->page_size > LIST_PAGE_MAX)
		return list_fail(e, "page_size", "page_size may be at most 500, got %u", in->page_size);
	if (!IN_LIST(in->name_match, name_match_names))
		return list_fail(e, "name_match", "name_match must be exact, prefix or fuzzy, not %s",
				 in->name_match);
	if (!IN_LIST(in->sort, sort_names))
		return list_fail(e, "sort",
				 "sort must be created, updated, name, last_contact, next_followup "
				 "or level, not %s", in->sort);
	if (in->contacted_within_days > LIST_MAX_DAYS)
		return list_fail(e, "contacted_within_days",
				 "contacted_within_days may be at most 36500");

	bool too_short;
	if (!blank(in->name))
		p->name = in->name;
	if (!blank(in->phone) && !phone_search(in->phone, p, &too_short))
		return list_fail(e, "phone",
				 "%s", too_short ? "phone: give the full number or at least its last 4 digits"
						 : "phone: not a phone number");
	if (!blank(in->text)) {
		struct list_params tp = {0};
		if (phone_search(in->text, &tp, &too_short)) {
			if (p->phone[0] || p->digits[0])
				return list_fail(e, "text", "give a phone in text or in phone, not both");
			memcpy(p->phone, tp.phone, sizeof p->phone);
			memcpy(p->digits, tp.digits, sizeof p->digits);
		} else if (too_short) {
			return list_fail(e, "text",
					 "text: a phone search needs at least the last 4 digits");
		} else {
			if (p->name)
				return list_fail(e, "text", "give a name in text or in name, not both");
			p->name = in->text;
		}
	}
	if (!strcmp(in->sort, "relevance") && !p->name)
		return list_fail(e, "sort", "sort by relevance needs a name search");

	if (in->n_levels > LIST_MAX_VALUES)
		return list_fail(e, "levels", "give at most 16 levels");
	for (size_t i = 0; i < in->n_levels; i++) {
		/* Checked before the refusal below quotes it: valid UTF-8, short. */
		if (!text_field_ok("levels", in->levels[i], 32, true, why, sizeof why))
			return list_fail(e, "levels", "%s", why);
		char level[2] = {(char)toupper((unsigned char)in->levels[i][0]), '\0'};
		if (strlen(in->levels[i]) != 1 || !IN_LIST(level, level_names))
			return list_fail(e, "levels",
					 "levels: %s is not a level (H, A, B, C, N, O, D or T)",
					 in->levels[i]);
		if (i)
			strcat(p->levels, ",");
		strcat(p->levels, level);
	}
	if (in->n_sources > LIST_MAX_VALUES)
		return list_fail(e, "sources", "give at most 16 sources");
	for (size_t i = 0; i < in->n_sources; i++) {
		if (!text_field_ok("sources", in->sources[i], 32, true, why, sizeof why))
			return list_fail(e, "sources", "%s", why);
		if (!IN_LIST(in->sources[i], source_names))
			return list_fail(e, "sources",
					 "sources: %s is not a source (walk_in, referral, online, "
					 "auto_show, phone_in, roadshow, fleet or other)",
					 in->sources[i]);
		if (i)
			strcat(p->sources, ",");
		strcat(p->sources, in->sources[i]);
	}
	snprintf(p->days, sizeof p->days, "%u", in->contacted_within_days);
	/* One row more than the page tells whether another page follows. */
	snprintf(p->count, sizeof p->count, "%u", want + 1);
	return true;
}

/* Rows of the frame: what the client may still take of this page. */
static uint32_t page_want(const struct request *r)
{
	uint32_t want = r->page_size;
	if (r->remaining && r->remaining < want)
		want = r->remaining;
	return want;
}

/* The next page starts after `cursor`. The request's own `after` holds it:
 * every page is the request the client would send to resume there. The
 * string is malloc'd as protobuf-c's unpacker (default allocator) does, so
 * crm__envelope__free_unpacked frees it with the request; the empty default
 * is protobuf-c's static string and is never freed. */
static bool set_after(struct request *r, const char *cursor)
{
	Crm__CustomerList *in = r->env->customer_list;
	char *copy = strdup(cursor);
	if (!copy)
		return false;
	if (in->after != protobuf_c_empty_string)
		free(in->after);
	in->after = copy;
	return true;
}

static void on_page(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	int rows = PQntuples(res);
	uint32_t want = page_want(r);
	int send = rows < (int)want ? rows : (int)want;
	struct scratch sc = {0};
	Crm__CustomerRow **ptrs = scratch_alloc(&sc, ((size_t)send + 1) * sizeof *ptrs);
	Crm__CustomerRow *items = scratch_alloc(&sc, ((size_t)send + 1) * sizeof *items);
	Crm__Customer *customers = scratch_alloc(&sc, ((size_t)send + 1) * sizeof *customers);
	Crm__Relation *relations = scratch_alloc(&sc, ((size_t)send + 1) * sizeof *relations);
	bool ok = ptrs && items && customers && relations;
	for (int i = 0; ok && i < send; i++) {
		crm__customer_row__init(&items[i]);
		ok = row_to_customer(res, i, 0, &customers[i], &sc);
		items[i].customer = &customers[i];
		if (ok && !PQgetisnull(res, i, LIST_COL_RELATION)) {
			ok = row_to_relation(res, i, LIST_COL_RELATION, &relations[i], &sc);
			items[i].relation = &relations[i];
		}
		ptrs[i] = &items[i];
	}
	if (ok && send > 0)
		ok = set_after(r, PQgetvalue(res, send - 1, LIST_COL_CURSOR));
	if (!ok) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	if (r->remaining)
		r->remaining -= (uint32_t)send;
	bool more = rows > send && !(r->env->customer_list->limit && r->remaining == 0);
	Crm__CustomerPage page = CRM__CUSTOMER_PAGE__INIT;
	page.rows = ptrs;
	page.n_rows = (size_t)send;
	page.next_cursor = r->env->customer_list->after;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER_PAGE;
	resp.customer_page = &page;
	req_stream_frame(r, &resp, more); /* frees r when it was the last frame */
	scratch_free(&sc);
	if (more)
		h_customer_list_more(r);
}

static const char *opt(const char *s)
{
	return s && *s ? s : NULL;
}

static void list_run(struct request *r, const struct list_params *p)
{
	const Crm__CustomerList *in = r->env->customer_list;
	const char *params[] = {
		r->conn->session.session_id,
		p->name,
		opt(in->name_match),
		opt(p->phone),
		opt(p->digits),
		opt(p->levels),
		opt(p->sources),
		opt(in->model),
		opt(in->owner),
		opt(in->tag),
		in->important_only ? "true" : "false",
		p->days,
		in->followup_overdue ? "true" : "false",
		opt(in->store_code),
		opt(in->sort),
		in->descending ? "true" : "false",
		opt(in->after),
		p->count,
	};
	req_db(r, STMT_CUSTOMER_LIST, (int)(sizeof params / sizeof params[0]), params, NULL, NULL,
	       on_page);
}

/* Fetches the next page when the client has credit. */
void h_customer_list_more(struct request *r)
{
	if (r->credit == 0) {
		r->stream_waiting = true;
		return;
	}
	struct list_params p;
	struct list_error e;
	if (!list_params_build(r->env->customer_list, page_want(r), &p, &e)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, e.field, "%s", e.message);
		return;
	}
	list_run(r, &p);
}

void h_customer_list(struct request *r)
{
	const Crm__CustomerList *in = r->env->customer_list;
	r->page_size = in->page_size ? in->page_size : LIST_PAGE_DEFAULT;
	r->remaining = in->limit;
	struct list_params p;
	struct list_error e;
	if (!list_params_build(in, page_want(r), &p, &e)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, e.field, "%s", e.message);
		return;
	}
	list_run(r, &p);
}

/* ------------------------------------------------------------ the card */

static int64_t col_ms(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static char *col_text(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col);
}

static void event_level(const PGresult *res, int i, Crm__LevelChange *lc)
{
	const int e = CARD_COL_EVENT;
	crm__level_change__init(lc);
	lc->relation_id = col_text(res, i, e);
	lc->store_code = col_text(res, i, e + 1);
	lc->at = col_ms(res, i, e + 2);
	lc->from_level = col_text(res, i, e + 3);
	lc->to_level = col_text(res, i, e + 4);
	lc->changed_by = col_text(res, i, e + 5);
	lc->reason = col_text(res, i, e + 6);
}

static void event_collision(const PGresult *res, int i, const char *customer_id,
			    Crm__Collision *co)
{
	const int e = CARD_COL_EVENT;
	crm__collision__init(co);
	co->customer_id = (char *)customer_id;
	co->owner_store_code = col_text(res, i, e + 1);
	co->at = col_ms(res, i, e + 2);
	co->owner = col_text(res, i, e + 3);
	co->owner_name = col_text(res, i, e + 4);
	co->owner_store_name = col_text(res, i, e + 5);
	co->brand = col_text(res, i, e + 6);
	co->attempted_by = col_text(res, i, e + 7);
	co->attempted_store_code = col_text(res, i, e + 8);
	co->protected_until = col_ms(res, i, e + 9);
}

static void event_handover(const PGresult *res, int i, Crm__Handover *h)
{
	const int e = CARD_COL_EVENT;
	crm__handover__init(h);
	h->relation_id = col_text(res, i, e);
	h->store_code = col_text(res, i, e + 1);
	h->at = col_ms(res, i, e + 2);
	h->from_owner = col_text(res, i, e + 3);
	h->to_owner = col_text(res, i, e + 4);
	h->by = col_text(res, i, e + 5);
	h->reason = col_text(res, i, e + 6);
}

/* Builds the card from the rows of STMT_CUSTOMER_CARD: 'head' rows (the
 * customer, and a relation each), then history rows by kind. The SQL side
 * has put every list in its order already. */
static void on_card(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	r->query = NULL;
	if (err->code != CRM__CODE__OK) {
		req_fail_db(r, err);
		return;
	}
	int rows = PQntuples(res);
	if (rows == 0 || strcmp(PQgetvalue(res, 0, 0), "head") != 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no customer with id %s",
			 r->env->customer_card_get->id);
		return;
	}
	size_t n = (size_t)rows;
	struct scratch sc = {0};
	Crm__Customer *cu = scratch_alloc(&sc, sizeof *cu);
	Crm__Relation *rels = scratch_alloc(&sc, n * sizeof *rels);
	Crm__LevelChange *levels = scratch_alloc(&sc, n * sizeof *levels);
	Crm__Collision *collisions = scratch_alloc(&sc, n * sizeof *collisions);
	Crm__Handover *handovers = scratch_alloc(&sc, n * sizeof *handovers);
	Crm__CustomerCard card = CRM__CUSTOMER_CARD__INIT;
	card.relations = scratch_alloc(&sc, n * sizeof *card.relations);
	card.level_history = scratch_alloc(&sc, n * sizeof *card.level_history);
	card.collisions = scratch_alloc(&sc, n * sizeof *card.collisions);
	card.handovers = scratch_alloc(&sc, n * sizeof *card.handovers);
	bool ok = !sc.oom && row_to_customer(res, 0, CARD_COL_CUSTOMER, cu, &sc);
	card.customer = cu;
	for (int i = 0; ok && i < rows; i++) {
		const char *kind = PQgetvalue(res, i, 0);
		if (!strcmp(kind, "head")) {
			if (PQgetisnull(res, i, CARD_COL_RELATION))
				continue;
			Crm__Relation *rel = &rels[card.n_relations];
			ok = row_to_relation(res, i, CARD_COL_RELATION, rel, &sc);
			card.relations[card.n_relations++] = rel;
		} else if (!strcmp(kind, "level")) {
			event_level(res, i, &levels[card.n_level_history]);
			card.level_history[card.n_level_history] = &levels[card.n_level_history];
			card.n_level_history++;
		} else if (!strcmp(kind, "collision")) {
			event_collision(res, i, cu->id, &collisions[card.n_collisions]);
			card.collisions[card.n_collisions] = &collisions[card.n_collisions];
			card.n_collisions++;
		} else if (!strcmp(kind, "handover")) {
			event_handover(res, i, &handovers[card.n_handovers]);
			card.handovers[card.n_handovers] = &handovers[card.n_handovers];
			card.n_handovers++;
		}
	}
	if (!ok) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CARD;
	resp.customer_card = &card;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_customer_card(struct request *r)
{
	const char *id = r->env->customer_card_get->id;
	uint8_t raw[16];
	if (!uuid_parse(id, raw)) {
		req_fail(r, CRM__CODE__INVALID_ARGUMENT, "id",
			 "id must be a UUID like 0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e");
		return;
	}
	const char *params[] = {r->conn->session.session_id, id};
	req_db(r, STMT_CUSTOMER_CARD, 2, params, NULL, NULL, on_card);
}
