/* The customer-records handlers' shared parts: the write path to the
 * outbox, input checks of customer and relation fields, list texts, and
 * the replies built from REPLY rows (see h_records.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "stmts.h"

/* ------------------------------------------------------------ texts */

static void tb_reserve(struct textbuf *b, size_t more)
{
	if (b->oom || b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void tb_add(struct textbuf *b, const char *s)
{
	size_t n = strlen(s ? s : "");
	tb_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s ? s : "", n);
	b->len += n;
	b->p[b->len] = '\0';
}

void tb_addc(struct textbuf *b, char c)
{
	char s[2] = {c, '\0'};
	tb_add(b, s);
}

void tb_addu(struct textbuf *b, uint64_t v)
{
	char s[24];
	snprintf(s, sizeof s, "%" PRIu64, v);
	tb_add(b, s);
}

const char *tb_str(const struct textbuf *b)
{
	return b->p ? b->p : "";
}

void tb_free(struct textbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------ the write path */

void write_with_outbox(struct request *r, int stmt, int nparams, const char *const *values,
		       const ProtobufCMessage *const *records, size_t nrecords, pool_cb cb)
{
	enum { MAX_PARAMS = 32 };
	if (nparams + 1 > MAX_PARAMS) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "too many statement parameters");
		return;
	}
	size_t total = 0;
	for (size_t i = 0; i < nrecords; i++)
		total += 4 + protobuf_c_message_get_packed_size(records[i]);
	if (total > INT32_MAX) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "the change is too large");
		return;
	}
	uint8_t *bundle = malloc(total ? total : 1);
	if (!bundle) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	size_t pos = 0;
	for (size_t i = 0; i < nrecords; i++) {
		size_t n = protobuf_c_message_get_packed_size(records[i]);
		bundle[pos] = (uint8_t)(n >> 24);
		bundle[pos + 1] = (uint8_t)(n >> 16);
		bundle[pos + 2] = (uint8_t)(n >> 8);
		bundle[pos + 3] = (uint8_t)n;
		protobuf_c_message_pack(records[i], bundle + pos + 4);
		pos += 4 + n;
	}
	const char *vals[MAX_PARAMS];
	int lengths[MAX_PARAMS] = {0}, binary[MAX_PARAMS] = {0};
	for (int i = 0; i < nparams; i++)
		vals[i] = values[i];
	vals[nparams] = (const char *)bundle;
	lengths[nparams] = (int)total;
	binary[nparams] = 1;
	req_db(r, stmt, nparams + 1, vals, lengths, binary, cb);
	free(bundle); /* the pool copied it */
}

/* ------------------------------------------------------------ checks */

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

const char *phone_kind(const char *canonical)
{
	bool mobile = strlen(canonical) == 14 && canonical[3] == '1' && canonical[4] >= '3' &&
		      canonical[4] <= '9';
	return mobile ? "mobile" : "landline";
}

static bool phone_add(struct phone_set *ps, const char *num, bool primary)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->number[i], num) == 0)
			return true;
	if (ps->n == PHONES_MAX)
		return false;
	if (primary) {
		memmove(ps->number[1], ps->number[0], ps->n * sizeof ps->number[0]);
		snprintf(ps->number[0], PHONE_CANONICAL_MAX, "%s", num);
	} else {
		snprintf(ps->number[ps->n], PHONE_CANONICAL_MAX, "%s", num);
	}
	ps->n++;
	return true;
}

/* customer.phone is the primary; customer.phones may add others and mark
 * the primary itself when customer.phone is empty. Exactly one primary. */
bool phones_collect(struct request *r, const Crm__Customer *cu, struct phone_set *ps)
{
	char why[256], num[PHONE_CANONICAL_MAX], primary[PHONE_CANONICAL_MAX] = "";
	ps->n = 0;
	if ((cu->phone && *cu->phone) || cu->n_phones == 0) {
		if (!phone_normalize(cu->phone ? cu->phone : "", primary, why, sizeof why)) {
			invalid(r, "customer.phone", "customer.phone: %s", why);
			return false;
		}
	}
	size_t marked = 0;
	for (size_t i = 0; i < cu->n_phones; i++) {
		const Crm__Phone *p = cu->phones[i];
		if (!phone_normalize(p->number ? p->number : "", num, why, sizeof why)) {
			invalid(r, "customer.phones", "customer.phones[%zu]: %s", i, why);
			return false;
		}
		if (!p->primary)
			continue;
		if (marked++ && strcmp(num, primary) != 0) {
			invalid(r, "customer.phones", "customer.phones: mark exactly one phone primary");
			return false;
		}
		if (primary[0] && strcmp(num, primary) != 0) {
			invalid(r, "customer.phones",
				"customer.phones[%zu] is marked primary but customer.phone is %s", i,
				primary);
			return false;
		}
		snprintf(primary, sizeof primary, "%s", num);
	}
	if (!primary[0]) {
		if (cu->n_phones != 1) {
			invalid(r, "customer.phones", "customer.phones: mark exactly one phone primary");
			return false;
		}
		phone_normalize(cu->phones[0]->number, primary, why, sizeof why);
	}
	phone_add(ps, primary, true);
	for (size_t i = 0; i < cu->n_phones; i++) {
		phone_normalize(cu->phones[i]->number, num, why, sizeof why);
		if (!phone_add(ps, num, false)) {
			invalid(r, "customer.phones", "a customer has at most %d phones", PHONES_MAX);
			return false;
		}
	}
	return true;
}

static bool email_ok(const char *e)
{
	if (!*e)
		return true;
	const char *at = strchr(e, '@');
	if (!at || at == e || strchr(at + 1, '@'))
		return false;
	const char *dot = strrchr(at + 1, '.');
	if (!dot || dot == at + 1 || dot[1] == '\0')
		return false;
	for (const char *p = e; *p; p++)
		if (*p == ' ' || *p == ',' || *p == ';' || *p == '<' || *p == '>')
			return false;
	return true;
}

/* Every profile field but the phones. */
bool profile_check(struct request *r, const Crm__Customer *cu)
{
	static const char *const genders[] = {"", "male", "female", NULL};
	static const char *const bands[] = {"", "18-24", "25-34", "35-44", "45-54", "55+", NULL};
	if (!text_ok(r, "customer.name", cu->name, 100, true))
		return false;
	if (!one_of(cu->gender ? cu->gender : "", genders)) {
		invalid(r, "customer.gender", "customer.gender must be male, female or empty");
		return false;
	}
	if (cu->birth_year && (cu->birth_year < 1900 || cu->birth_year > 2100)) {
		invalid(r, "customer.birth_year", "customer.birth_year must be from 1900 to 2100");
		return false;
	}
	if (!one_of(cu->age_band ? cu->age_band : "", bands)) {
		invalid(r, "customer.age_band",
			"customer.age_band must be 18-24, 25-34, 35-44, 45-54, 55+ or empty");
		return false;
	}
	if (cu->birth_year && cu->age_band && *cu->age_band) {
		invalid(r, "customer.birth_year",
			"give customer.birth_year or customer.age_band, not both");
		return false;
	}
	if (!text_ok(r, "customer.wechat", cu->wechat, 64, false) ||
	    !text_ok(r, "customer.email", cu->email, 254, false) ||
	    !text_ok(r, "customer.occupation", cu->occupation, 100, false) ||
	    !text_ok(r, "customer.region", cu->region, 100, false))
		return false;
	if (!email_ok(cu->email ? cu->email : "")) {
		invalid(r, "customer.email", "customer.email is not an address like name@example.com");
		return false;
	}
	if (cu->n_tags > TAGS_MAX) {
		invalid(r, "customer.tags", "a customer has at most %d tags", TAGS_MAX);
		return false;
	}
	for (size_t i = 0; i < cu->n_tags; i++) {
		char field[48];
		snprintf(field, sizeof field, "customer.tags[%zu]", i);
		char why[256];
		if (!text_field_ok(field, cu->tags[i], 32, true, why, sizeof why)) {
			invalid(r, "customer.tags", "%s", why);
			return false;
		}
	}
	return true;
}

bool relation_check(struct request *r, const Crm__Relation *rel, bool creating)
{
	static const char *const sources[] = {"", "walk_in", "referral", "online", "auto_show",
					      "phone_in", "roadshow", "fleet", "other", NULL};
	static const char *const statuses[] = {"", "active", "dormant", "closed", NULL};
	static const char *const bodies[] = {"", "sedan", "suv", "mpv", "hatchback", "wagon",
					     "coupe", "pickup", "other", NULL};
	const char *level = rel->level ? rel->level : "";
	if (creating && (!strcmp(level, "O") || !strcmp(level, "D") || !strcmp(level, "T"))) {
		invalid(r, "relation.level",
			"relation.level %s is set by orders (O ordered, D delivered, T cancelled)",
			level);
		return false;
	}
	if (creating && !one_of(level, (const char *const[]){"", "N", "H", "A", "B", "C", NULL})) {
		invalid(r, "relation.level", "relation.level must be N, H, A, B or C");
		return false;
	}
	if (creating && rel->owner && strlen(rel->owner) > 64) {
		invalid(r, "relation.owner", "relation.owner is not a username");
		return false;
	}
	if (!one_of(rel->source ? rel->source : "", sources)) {
		invalid(r, "relation.source",
			"relation.source must be walk_in, referral, online, auto_show, phone_in,"
			" roadshow, fleet or other");
		return false;
	}
	if (!one_of(rel->status ? rel->status : "", statuses)) {
		invalid(r, "relation.status", "relation.status must be active, dormant or closed");
		return false;
	}
	if (rel->first_contact_at < 0 || rel->first_contact_at > now_ms() + 86400000) {
		invalid(r, "relation.first_contact_at",
			"relation.first_contact_at must be a time in unix milliseconds, not in the future");
		return false;
	}
	if (!text_ok(r, "relation.first_contact_place", rel->first_contact_place, 100, false) ||
	    !text_ok(r, "relation.first_contact_scenario", rel->first_contact_scenario, 200,
		     false) ||
	    !text_ok(r, "relation.first_feedback", rel->first_feedback, 1000, false))
		return false;
	if (rel->n_intents > INTENTS_MAX) {
		invalid(r, "relation.intents", "a relation has at most %d intended models",
			INTENTS_MAX);
		return false;
	}
	for (size_t i = 0; i < rel->n_intents; i++) {
		const Crm__Intent *in = rel->intents[i];
		char field[80], why[256];
		snprintf(field, sizeof field, "relation.intents[%zu].model", i);
		if (!text_field_ok(field, in->model ? in->model : "", 100, true, why, sizeof why)) {
			invalid(r, "relation.intents", "%s", why);
			return false;
		}
		if (!one_of(in->body_type ? in->body_type : "", bodies)) {
			invalid(r, "relation.intents",
				"relation.intents[%zu].body_type must be sedan, suv, mpv, hatchback,"
				" wagon, coupe, pickup, other or empty", i);
			return false;
		}
		snprintf(field, sizeof field, "relation.intents[%zu].configuration", i);
		if (!text_field_ok(field, in->configuration ? in->configuration : "", 200, false, why,
				   sizeof why)) {
			invalid(r, "relation.intents", "%s", why);
			return false;
		}
		snprintf(field, sizeof field, "relation.intents[%zu].needs", i);
		if (!text_field_ok(field, in->needs ? in->needs : "", 1000, false, why, sizeof why)) {
			invalid(r, "relation.intents", "%s", why);
			return false;
		}
		if (in->budget_min > INT32_MAX || in->budget_max > INT32_MAX) {
			invalid(r, "relation.intents", "relation.intents[%zu]: budget too large", i);
			return false;
		}
		if (in->budget_min && in->budget_max && in->budget_max < in->budget_min) {
			invalid(r, "relation.intents",
				"relation.intents[%zu]: budget_max (%u) is below budget_min (%u)", i,
				in->budget_max, in->budget_min);
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ list texts */

char *trim_blanks(const char *text, struct scratch *s)
{
	static const char ideographic_space[] = "\xe3\x80\x80";
	const char *b = text ? text : "", *e;
	for (;;) {
		if (*b == ' ')
			b++;
		else if (!strncmp(b, ideographic_space, 3))
			b += 3;
		else
			break;
	}
	e = b + strlen(b);
	for (;;) {
		if (e > b && e[-1] == ' ')
			e--;
		else if (e - b >= 3 && !strncmp(e - 3, ideographic_space, 3))
			e -= 3;
		else
			break;
	}
	char *out = scratch_alloc(s, (size_t)(e - b) + 1);
	if (out)
		memcpy(out, b, (size_t)(e - b));
	return out;
}

void phones_text(const struct phone_set *ps, struct textbuf *b)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (i)
			tb_addc(b, LIST_SEP);
		tb_add(b, ps->number[i]);
	}
}

bool phones_to_customer(const struct phone_set *ps, Crm__Customer *cu, struct scratch *s)
{
	cu->phone = (char *)ps->number[0];
	cu->phones = scratch_alloc(s, ps->n * sizeof *cu->phones);
	Crm__Phone *items = scratch_alloc(s, ps->n * sizeof *items);
	if (!cu->phones || !items)
		return false;
	for (size_t i = 0; i < ps->n; i++) {
		crm__phone__init(&items[i]);
		items[i].number = (char *)ps->number[i];
		items[i].primary = i == 0;
		items[i].kind = (char *)phone_kind(ps->number[i]);
		cu->phones[i] = &items[i];
	}
	cu->n_phones = ps->n;
	return true;
}

void tags_text(const Crm__Customer *cu, struct textbuf *b)
{
	for (size_t i = 0; i < cu->n_tags; i++) {
		if (i)
			tb_addc(b, LIST_SEP);
		tb_add(b, cu->tags[i]);
	}
}

void intents_text(const Crm__Relation *rel, struct textbuf *b)
{
	for (size_t i = 0; i < rel->n_intents; i++) {
		const Crm__Intent *in = rel->intents[i];
		if (i)
			tb_addc(b, LIST_SEP);
		tb_add(b, in->model);
		tb_addc(b, FIELD_SEP);
		tb_add(b, in->body_type);
		tb_addc(b, FIELD_SEP);
		tb_add(b, in->configuration);
		tb_addc(b, FIELD_SEP);
		tb_addu(b, in->budget_min);
		tb_addc(b, FIELD_SEP);
		tb_addu(b, in->budget_max);
		tb_addc(b, FIELD_SEP);
		tb_add(b, in->needs);
	}
}

bool intents_fill(Crm__Relation *rel, const char *body_types, struct scratch *s)
{
	if (rel->n_intents == 0)
		return true;
	Crm__Intent **ptrs = scratch_alloc(s, rel->n_intents * sizeof *ptrs);
	Crm__Intent *items = scratch_alloc(s, rel->n_intents * sizeof *items);
	size_t len = strlen(body_types ? body_types : "");
	char *types = scratch_alloc(s, len + 1);
	if (!ptrs || !items || !types)
		return false;
	memcpy(types, body_types ? body_types : "", len + 1);
	char *next = types;
	for (size_t i = 0; i < rel->n_intents; i++) {
		char *type = next ? next : (char *)"";
		if (next) {
			char *sep = strchr(next, LIST_SEP);
			if (sep)
				*sep = '\0';
			next = sep ? sep + 1 : NULL;
		}
		items[i] = *rel->intents[i];
		if (!items[i].model)
			items[i].model = (char *)"";
		if (!items[i].configuration)
			items[i].configuration = (char *)"";
		if (!items[i].needs)
			items[i].needs = (char *)"";
		if (!items[i].body_type || !*items[i].body_type)
			items[i].body_type = type;
		ptrs[i] = &items[i];
	}
	rel->intents = ptrs;
	return true;
}

/* ------------------------------------------------------------ replies */

bool result_shape_ok(struct request *r, const PGresult *res, int ncols)
{
	if (PQnfields(res) == ncols)
		return true;
	req_fail(r, CRM__CODE__INTERNAL, NULL,
		 "the database answered %d columns where %d were expected; is the schema migrated?",
		 PQnfields(res), ncols);
	return false;
}

static int64_t col_ms(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void row_to_collision(const PGresult *res, int row, int col, Crm__Collision *k)
{
	crm__collision__init(k);
	k->customer_id = PQgetvalue(res, row, col + 1);
	k->owner = PQgetvalue(res, row, col + 2);
	k->owner_name = PQgetvalue(res, row, col + 3);
	k->owner_store_code = PQgetvalue(res, row, col + 4);
	k->owner_store_name = PQgetvalue(res, row, col + 5);
	k->brand = PQgetvalue(res, row, col + 6);
	k->protected_until = col_ms(res, row, col + 7);
	k->attempted_by = PQgetvalue(res, row, col + 8);
	k->attempted_store_code = PQgetvalue(res, row, col + 9);
	k->at = col_ms(res, row, col + 10);
}

void reply_customer_rows(struct request *r, const PGresult *res, const char *conflict)
{
	if (!result_shape_ok(r, res, REPLY_NCOLS))
		return;
	int rows = PQntuples(res);
	if (rows == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such customer");
		return;
	}
	struct scratch sc = {0};
	Crm__Customer cu;
	Crm__Collision k;
	Crm__CustomerReply cr = CRM__CUSTOMER_REPLY__INIT;
	Crm__Relation *rels = scratch_alloc(&sc, (size_t)rows * sizeof *rels);
	Crm__Relation **others = scratch_alloc(&sc, (size_t)rows * sizeof *others);
	if (!rels || !others) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	bool ok = true;
	for (int i = 0; i < rows; i++) {
		const char *kind = PQgetvalue(res, i, 1);
		if (!strcmp(kind, "customer")) {
			ok = row_to_customer(res, i, REPLY_COL_CUSTOMER, &cu, &sc) && ok;
			cr.customer = &cu;
		} else if (!strcmp(kind, "relation")) {
			ok = row_to_relation(res, i, REPLY_COL_RELATION, &rels[i], &sc) && ok;
			cr.relation = &rels[i];
		} else if (!strcmp(kind, "other")) {
			ok = row_to_relation(res, i, REPLY_COL_RELATION, &rels[i], &sc) && ok;
			others[cr.n_other_relations++] = &rels[i];
		} else if (!strcmp(kind, "collision")) {
			row_to_collision(res, i, REPLY_COL_COLLISION, &k);
			cr.collision = &k;
		}
	}
	if (!ok) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	cr.other_relations = others;
	const char *outcome = PQgetvalue(res, 0, 0);
	cr.existed = !strcmp(outcome, "existed");
	Crm__Status st = CRM__STATUS__INIT;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	if (conflict || !strcmp(outcome, "collision") || !strcmp(outcome, "stale") ||
	    !strcmp(outcome, "retry")) {
		st.code = CRM__CODE__CONFLICT;
		st.message = conflict ? (char *)conflict : PQgetvalue(res, 0, 2);
		resp.status = &st;
	}
	resp.body_case = CRM__ENVELOPE__BODY_CUSTOMER;
	resp.customer = &cr;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void reply_relation_row(struct request *r, const PGresult *res, int col, bool conflict,
			const char *message)
{
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such relation");
		return;
	}
	struct scratch sc = {0};
	Crm__Relation rel;
	if (!row_to_relation(res, 0, col, &rel, &sc)) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	Crm__RelationReply rr = CRM__RELATION_REPLY__INIT;
	rr.relation = &rel;
	Crm__Status st = CRM__STATUS__INIT;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	if (conflict) {
		st.code = CRM__CODE__CONFLICT;
		st.message = (char *)message;
		resp.status = &st;
	}
	resp.body_case = CRM__ENVELOPE__BODY_RELATION;
	resp.relation = &rr;
	req_reply(r, &resp);
	scratch_free(&sc);
}
