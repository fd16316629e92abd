/* Readers of result rows shared by the handlers, and small helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "server.h"
#include "textcheck.h"

static const char *const role_names[] = {
	[CRM__ROLE__ROLE_UNSPECIFIED] = "unspecified",
	[CRM__ROLE__CONSULTANT] = "consultant",
	[CRM__ROLE__SALES_MANAGER] = "sales_manager",
	[CRM__ROLE__SERVICE_ADVISOR] = "service_advisor",
	[CRM__ROLE__CALL_CENTER] = "call_center",
	[CRM__ROLE__STORE_MANAGER] = "store_manager",
	[CRM__ROLE__GROUP_ANALYST] = "group_analyst",
	[CRM__ROLE__GROUP_ADMIN] = "group_admin",
	[CRM__ROLE__STORE_NODE] = "store_node",
};

const char *role_name(Crm__Role role)
{
	if ((unsigned)role < sizeof role_names / sizeof role_names[0] && role_names[role])
		return role_names[role];
	return "unknown";
}

Crm__Role role_from_name(const char *name)
{
	for (size_t i = 1; i < sizeof role_names / sizeof role_names[0]; i++)
		if (role_names[i] && strcmp(role_names[i], name) == 0)
			return (Crm__Role)i;
	return CRM__ROLE__ROLE_UNSPECIFIED;
}

int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Strings point into `res`: pack the message before the result is freed. */
void row_to_user(const PGresult *res, int row, int col, Crm__User *u)
{
	crm__user__init(u);
	u->id = PQgetvalue(res, row, col);
	u->username = PQgetvalue(res, row, col + 1);
	u->display_name = PQgetvalue(res, row, col + 2);
	u->role = role_from_name(PQgetvalue(res, row, col + 3));
	u->store_code = PQgetvalue(res, row, col + 4);
	u->store_name = PQgetvalue(res, row, col + 5);
}

void *scratch_alloc(struct scratch *s, size_t size)
{
	if (s->oom)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void **p = realloc(s->ptrs, cap * sizeof *p);
		if (!p) {
			s->oom = true;
			return NULL;
		}
		s->ptrs = p;
		s->cap = cap;
	}
	void *mem = calloc(1, size ? size : 1);
	if (!mem) {
		s->oom = true;
		return NULL;
	}
	s->ptrs[s->n++] = mem;
	return mem;
}

void scratch_free(struct scratch *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ptrs[i]);
	free(s->ptrs);
	memset(s, 0, sizeof *s);
}

/* Splits a copy of `text` at `sep` into a scratch array of pointers into
 * that copy. An empty or NULL text is an empty list. */
static char **split_list(struct scratch *s, const char *text, char sep, size_t *n_out)
{
	*n_out = 0;
	if (!text || !*text)
		return NULL;
	size_t len = strlen(text), n = 1;
	for (size_t i = 0; i < len; i++)
		n += text[i] == sep;
	char *copy = scratch_alloc(s, len + 1);
	char **items = scratch_alloc(s, n * sizeof *items);
	if (!copy || !items)
		return NULL;
	memcpy(copy, text, len + 1);
	size_t k = 0;
	items[k++] = copy;
	for (char *p = copy; *p; p++)
		if (*p == sep) {
			*p = '\0';
			items[k++] = p + 1;
		}
	*n_out = n;
	return items;
}

int64_t col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Strings point into `res` and `s`: pack the message before either is
 * freed. False when out of memory. */
bool row_to_customer(const PGresult *res, int row, int col, Crm__Customer *cu,
		     struct scratch *s)
{
	crm__customer__init(cu);
	cu->id = PQgetvalue(res, row, col);
	cu->name = PQgetvalue(res, row, col + 1);
	cu->phone = PQgetvalue(res, row, col + 2);
	cu->version = (uint64_t)col_i64(res, row, col + 3);
	cu->created_at = col_i64(res, row, col + 4);
	cu->updated_at = col_i64(res, row, col + 5);
	cu->created_by = PQgetvalue(res, row, col + 6);
	cu->store_code = PQgetvalue(res, row, col + 7);
	cu->gender = PQgetvalue(res, row, col + 8);
	cu->birth_year = (uint32_t)col_i64(res, row, col + 9);
	cu->age_band = PQgetvalue(res, row, col + 10);
	cu->wechat = PQgetvalue(res, row, col + 11);
	cu->email = PQgetvalue(res, row, col + 12);
	cu->occupation = PQgetvalue(res, row, col + 13);
	cu->region = PQgetvalue(res, row, col + 14);
	cu->tags = split_list(s, PQgetvalue(res, row, col + 15), '\x1f', &cu->n_tags);
	cu->important = PQgetvalue(res, row, col + 16)[0] == 't';
	size_t n;
	char **phones = split_list(s, PQgetvalue(res, row, col + 17), '\x1f', &n);
	if (n) {
		cu->phones = scratch_alloc(s, n * sizeof *cu->phones);
		Crm__Phone *items = scratch_alloc(s, n * sizeof *items);
		if (!cu->phones || !items)
			return false;
		for (size_t i = 0; i < n; i++) {
			size_t nf;
			char **f = split_list(s, phones[i], '\x1e', &nf);
			crm__phone__init(&items[i]);
			if (nf == 3) {
				items[i].number = f[0];
				items[i].kind = f[1];
				items[i].primary = f[2][0] == 't';
			}
			cu->phones[i] = &items[i];
		}
		cu->n_phones = n;
	}
	cu->erased = PQgetvalue(res, row, col + 18)[0] == 't';
	cu->erased_at = col_i64(res, row, col + 19);
	return !s->oom;
}

bool row_to_relation(const PGresult *res, int row, int col, Crm__Relation *rel,
		     struct scratch *s)
{
	crm__relation__init(rel);
	rel->id = PQgetvalue(res, row, col);
	rel->customer_id = PQgetvalue(res, row, col + 1);
	rel->store_code = PQgetvalue(res, row, col + 2);
	rel->store_name = PQgetvalue(res, row, col + 3);
	rel->brand = PQgetvalue(res, row, col + 4);
	rel->owner = PQgetvalue(res, row, col + 5);
	rel->owner_name = PQgetvalue(res, row, col + 6);
	rel->level = PQgetvalue(res, row, col + 7);
	rel->source = PQgetvalue(res, row, col + 8);
	rel->first_contact_at = col_i64(res, row, col + 9);
	rel->first_contact_place = PQgetvalue(res, row, col + 10);
	rel->first_contact_scenario = PQgetvalue(res, row, col + 11);
	rel->first_feedback = PQgetvalue(res, row, col + 12);
	rel->status = PQgetvalue(res, row, col + 13);
	rel->version = (uint64_t)col_i64(res, row, col + 14);
	rel->created_at = col_i64(res, row, col + 15);
	rel->updated_at = col_i64(res, row, col + 16);
	rel->protected_until = col_i64(res, row, col + 17);
	rel->last_contact_at = col_i64(res, row, col + 18);
	rel->next_followup_at = col_i64(res, row, col + 19);
	size_t n;
	char **intents = split_list(s, PQgetvalue(res, row, col + 20), '\x1f', &n);
	if (n) {
		rel->intents = scratch_alloc(s, n * sizeof *rel->intents);
		Crm__Intent *items = scratch_alloc(s, n * sizeof *items);
		if (!rel->intents || !items)
			return false;
		for (size_t i = 0; i < n; i++) {
			size_t nf;
			char **f = split_list(s, intents[i], '\x1e', &nf);
			crm__intent__init(&items[i]);
			if (nf == 6) {
				items[i].model = f[0];
				items[i].body_type = f[1];
				items[i].configuration = f[2];
				items[i].budget_min = (uint32_t)strtoul(f[3], NULL, 10);
				items[i].budget_max = (uint32_t)strtoul(f[4], NULL, 10);
				items[i].needs = f[5];
			}
			rel->intents[i] = &items[i];
		}
		rel->n_intents = n;
	}
	return !s->oom;
}

/* ------------------------------------------------------------ shared by the handlers */

bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s ? s : "", *list))
			return true;
	return false;
}

bool uuid_ok(struct request *r, const char *field, const char *id, bool required)
{
	uint8_t raw[16];
	if ((!id || !*id) && !required)
		return true;
	if (id && uuid_parse(id, raw))
		return true;
	req_fail(r, CRM__CODE__INVALID_ARGUMENT, field, "%s must be a UUID", field);
	return false;
}

bool text_ok(struct request *r, const char *field, const char *s, size_t max,
		    bool required)
{
	char why[256];
	if (text_field_ok(field, s ? s : "", max, required, why, sizeof why))
		return true;
	req_fail(r, CRM__CODE__INVALID_ARGUMENT, field, "%s", why);
	return false;
}

void fmt_i64(char *buf, size_t cap, int64_t v)
{
	snprintf(buf, cap, "%lld", (long long)v);
}

void row_to_followup(const PGresult *res, int row, int col, Crm__Followup *f)
{
	crm__followup__init(f);
	f->id = PQgetvalue(res, row, col);
	f->relation_id = PQgetvalue(res, row, col + 1);
	f->customer_id = PQgetvalue(res, row, col + 2);
	f->store_code = PQgetvalue(res, row, col + 3);
	f->method = PQgetvalue(res, row, col + 4);
	f->type = PQgetvalue(res, row, col + 5);
	f->at = col_i64(res, row, col + 6);
	f->content = PQgetvalue(res, row, col + 7);
	f->feedback = PQgetvalue(res, row, col + 8);
	f->by = PQgetvalue(res, row, col + 9);
	f->task_id = PQgetvalue(res, row, col + 10);
	f->created_at = col_i64(res, row, col + 11);
}

void row_to_task(const PGresult *res, int row, int col, Crm__Task *t)
{
	crm__task__init(t);
	t->id = PQgetvalue(res, row, col);
	t->relation_id = PQgetvalue(res, row, col + 1);
	t->customer_id = PQgetvalue(res, row, col + 2);
	t->customer_name = PQgetvalue(res, row, col + 3);
	t->store_code = PQgetvalue(res, row, col + 4);
	t->owner = PQgetvalue(res, row, col + 5);
	t->owner_name = PQgetvalue(res, row, col + 6);
	t->due_at = col_i64(res, row, col + 7);
	t->method = PQgetvalue(res, row, col + 8);
	t->purpose = PQgetvalue(res, row, col + 9);
	t->status = PQgetvalue(res, row, col + 10);
	t->reason = PQgetvalue(res, row, col + 11);
	t->followup_id = PQgetvalue(res, row, col + 12);
	t->cadence_key = PQgetvalue(res, row, col + 13);
	t->created_at = col_i64(res, row, col + 14);
	t->closed_at = col_i64(res, row, col + 15);
	t->closed_by = PQgetvalue(res, row, col + 16);
	t->version = (uint64_t)col_i64(res, row, col + 17);
	t->level = PQgetvalue(res, row, col + 18);
	t->set_by_followup = PQgetvalue(res, row, col + 19);
}

void task_outcome_now(Crm__Task *t)
{
	int64_t now = now_ms();
	if (!strcmp(t->status, "done")) {
		t->outcome = t->closed_at <= t->due_at ? "on_time" : "late";
		t->late_by_ms = t->closed_at > t->due_at ? t->closed_at - t->due_at : 0;
	} else if (!strcmp(t->status, "skipped") || t->due_at < now) {
		t->outcome = "missed";
	} else {
		t->outcome = "open";
	}
	t->overdue = !strcmp(t->status, "open") && t->due_at < now;
}

bool fail_on_error(struct request *r, const struct pool_error *err)
{
	r->query = NULL;
	if (err->code == CRM__CODE__OK)
		return false;
	req_fail_db(r, err);
	return true;
}
