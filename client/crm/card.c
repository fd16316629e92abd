/* How customer records look on a terminal: the brief form of add, get and
 * update, the whole card of show, and the collision message. Times are
 * shown in local time; columns are aligned by display width. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crm.h"

/* "12.3 KiB", "4.0 MiB", "512 bytes" (attachments). */
void format_size(uint64_t bytes, char *out, size_t cap)
{
	if (bytes < 1024)
		snprintf(out, cap, "%llu bytes", (unsigned long long)bytes);
	else if (bytes < 1024 * 1024)
		snprintf(out, cap, "%.1f KiB", (double)bytes / 1024);
	else
		snprintf(out, cap, "%.1f MiB", (double)bytes / (1024 * 1024));
}

void format_ms(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms <= 0 || !localtime_r(&t, &tm))
		snprintf(out, cap, "-");
	else
		strftime(out, cap, "%Y-%m-%d %H:%M", &tm);
}

static void format_yuan(uint32_t v, char *out, size_t cap)
{
	if (v >= 10000 && v % 10000 == 0)
		snprintf(out, cap, "%u万", v / 10000);
	else if (v >= 10000 && v % 1000 == 0)
		snprintf(out, cap, "%u.%u万", v / 10000, v % 10000 / 1000);
	else
		snprintf(out, cap, "%u", v);
}

void format_budget(uint32_t min, uint32_t max, char *out, size_t cap)
{
	char a[32], b[32];
	format_yuan(min, a, sizeof a);
	format_yuan(max, b, sizeof b);
	if (!min && !max)
		snprintf(out, cap, "%s", "");
	else if (min == max)
		snprintf(out, cap, "%s", a);
	else if (!max)
		snprintf(out, cap, "≥%s", a);
	else if (!min)
		snprintf(out, cap, "≤%s", b);
	else
		snprintf(out, cap, "%s-%s", a, b);
}

void format_intent(const Crm__Intent *in, char *out, size_t cap)
{
	char budget[80];
	format_budget(in->budget_min, in->budget_max, budget, sizeof budget);
	const char *parts[] = {in->model, in->body_type, budget, in->configuration, in->needs};
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (!parts[i] || !*parts[i] || n >= cap)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", parts[i]);
	}
}

static bool set(const char *s) { return s && *s; }

/* One "label  value" line; labels are ASCII, so printf pads them. */
static void kv(const char *indent, const char *label, const char *value)
{
	if (set(value))
		printf("%s%-16s%s\n", indent, label, value);
}

static void kv_time(const char *indent, const char *label, int64_t ms)
{
	char when[32];
	if (ms > 0) {
		format_ms(ms, when, sizeof when);
		kv(indent, label, when);
	}
}

static void join(char *const *items, size_t n, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? ", " : "", items[i]);
}

static void print_profile(const Crm__Customer *c, const char *indent)
{
	char buf[2048];
	size_t used = 0;
	buf[0] = '\0';
	/* Its profile is blank for good: say so instead of printing nothing. */
	if (c->erased) {
		format_ms(c->erased_at, buf, sizeof buf);
		printf("%serased on %s: personal information removed on request\n", indent, buf);
		return;
	}
	for (size_t i = 0; i < c->n_phones && used < sizeof buf; i++) {
		const Crm__Phone *p = c->phones[i];
		used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s%s", i ? ", " : "",
					 p->number, p->primary && c->n_phones > 1 ? " (primary)" : "");
	}
	kv(indent, c->n_phones > 1 ? "phones" : "phone", c->n_phones ? buf : c->phone);
	kv(indent, "gender", c->gender);
	if (c->birth_year) {
		snprintf(buf, sizeof buf, "%u", c->birth_year);
		kv(indent, "birth year", buf);
	}
	kv(indent, "age band", c->age_band);
	kv(indent, "wechat", c->wechat);
	kv(indent, "email", c->email);
	kv(indent, "occupation", c->occupation);
	kv(indent, "region", c->region);
	join(c->tags, c->n_tags, buf, sizeof buf);
	kv(indent, "tags", buf);
	if (c->important)
		kv(indent, "important", "yes");
}

static void owner_text(const char *username, const char *display, char *out, size_t cap)
{
	if (!set(username))
		snprintf(out, cap, "the store pool");
	else if (set(display))
		snprintf(out, cap, "%s (%s)", display, username);
	else
		snprintf(out, cap, "%s", username);
}

void print_relation_brief(const Crm__Relation *rel, const char *indent)
{
	char owner[256], line[512];
	owner_text(rel->owner, rel->owner_name, owner, sizeof owner);
	printf("%sstore %s %s: level %s, owner %s\n", indent, rel->store_code, rel->store_name,
	       set(rel->level) ? rel->level : "-", owner);
	char sub[16];
	snprintf(sub, sizeof sub, "%s  ", indent);
	snprintf(line, sizeof line, "%s (version %llu)", rel->id, (unsigned long long)rel->version);
	kv(sub, "relation", line);
	kv(sub, "source", rel->source);
	if (set(rel->status) && strcmp(rel->status, "active") != 0)
		kv(sub, "status", rel->status);
	for (size_t i = 0; i < rel->n_intents; i++) {
		format_intent(rel->intents[i], line, sizeof line);
		kv(sub, i ? "" : "intents", line);
	}
	kv_time(sub, "protected until", rel->protected_until);
	kv_time(sub, "next follow-up", rel->next_followup_at);
}

void print_customer_brief(const Crm__CustomerReply *reply)
{
	const Crm__Customer *c = reply->customer;
	if (!c)
		return;
	char line[256];
	printf("%s\n", c->name);
	kv("  ", "id", c->id);
	snprintf(line, sizeof line, "%llu", (unsigned long long)c->version);
	kv("  ", "version", line);
	print_profile(c, "  ");
	if (reply->relation)
		print_relation_brief(reply->relation, "  ");
	for (size_t i = 0; i < reply->n_other_relations; i++) {
		const Crm__Relation *o = reply->other_relations[i];
		char owner[256];
		owner_text(o->owner, o->owner_name, owner, sizeof owner);
		printf("  also at store %s %s: level %s, owner %s\n", o->store_code, o->store_name,
		       set(o->level) ? o->level : "-", owner);
	}
}

void print_collision(FILE *out, const Crm__Collision *col, const char *phone)
{
	char until[32], owner[256];
	format_ms(col->protected_until, until, sizeof until);
	owner_text(col->owner, col->owner_name, owner, sizeof owner);
	fprintf(out,
		"crm: %s is a protected lead of %s at store %s %s%s%s%s until %s.\n"
		"crm: Your registration was recorded as a collision, not as a new customer.\n"
		"crm: A manager of store %s can hand the lead over (crm customer handover).\n",
		set(phone) ? phone : "this customer", owner, col->owner_store_code,
		col->owner_store_name, set(col->brand) ? " (" : "", set(col->brand) ? col->brand : "",
		set(col->brand) ? ")" : "", until, col->owner_store_code);
}

static void section(const char *title)
{
	printf("\n%s\n", title);
}

static void print_card_relation(const Crm__Relation *rel)
{
	char line[1024], owner[256];
	printf("  %s %s%s%s%s\n", rel->store_code, rel->store_name, set(rel->brand) ? " (" : "",
	       set(rel->brand) ? rel->brand : "", set(rel->brand) ? ")" : "");
	const char *in = "    ";
	snprintf(line, sizeof line, "%s (version %llu)", rel->id, (unsigned long long)rel->version);
	kv(in, "relation", line);
	owner_text(rel->owner, rel->owner_name, owner, sizeof owner);
	kv(in, "owner", owner);
	kv(in, "level", rel->level);
	kv(in, "status", rel->status);
	kv(in, "source", rel->source);
	kv_time(in, "first contact", rel->first_contact_at);
	kv(in, "place", rel->first_contact_place);
	kv(in, "scenario", rel->first_contact_scenario);
	kv(in, "first feedback", rel->first_feedback);
	kv_time(in, "protected until", rel->protected_until);
	kv_time(in, "last contact", rel->last_contact_at);
	kv_time(in, "next follow-up", rel->next_followup_at);
	kv_time(in, "registered", rel->created_at);
	if (rel->n_intents == 0)
		return;
	printf("%sintents\n", in);
	static const char *const heads[] = {"model", "body", "budget", "configuration", "needs"};
	struct table t;
	if (!table_init(&t, 5, heads))
		return;
	for (size_t i = 0; i < rel->n_intents; i++) {
		const Crm__Intent *it = rel->intents[i];
		char budget[80];
		format_budget(it->budget_min, it->budget_max, budget, sizeof budget);
		const char *cells[] = {it->model, it->body_type, budget, it->configuration, it->needs};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "      ");
	table_print_rows(&t, stdout, "      ");
	table_free(&t);
}

static void print_history(const Crm__CustomerCard *card)
{
	section("Level history");
	if (!card->n_level_history) {
		printf("  none\n");
		return;
	}
	static const char *const heads[] = {"when", "store", "change", "by", "reason"};
	struct table t;
	if (!table_init(&t, 5, heads))
		return;
	for (size_t i = 0; i < card->n_level_history; i++) {
		const Crm__LevelChange *lc = card->level_history[i];
		char when[32], change[32];
		format_ms(lc->at, when, sizeof when);
		if (set(lc->from_level))
			snprintf(change, sizeof change, "%s → %s", lc->from_level, lc->to_level);
		else
			snprintf(change, sizeof change, "%s", lc->to_level);
		const char *cells[] = {when, lc->store_code, change, lc->changed_by, lc->reason};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "  ");
	table_print_rows(&t, stdout, "  ");
	table_free(&t);
}

static void print_collisions(const Crm__CustomerCard *card)
{
	section("Collisions");
	if (!card->n_collisions) {
		printf("  none\n");
		return;
	}
	static const char *const heads[] = {"when", "tried by", "at store", "owner", "owner's store",
					    "protected until"};
	struct table t;
	if (!table_init(&t, 6, heads))
		return;
	for (size_t i = 0; i < card->n_collisions; i++) {
		const Crm__Collision *col = card->collisions[i];
		char when[32], until[32], owner[256], store[256];
		format_ms(col->at, when, sizeof when);
		format_ms(col->protected_until, until, sizeof until);
		owner_text(col->owner, col->owner_name, owner, sizeof owner);
		snprintf(store, sizeof store, "%s %s", col->owner_store_code, col->owner_store_name);
		const char *cells[] = {when, col->attempted_by, col->attempted_store_code, owner, store,
				       until};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "  ");
	table_print_rows(&t, stdout, "  ");
	table_free(&t);
}

static void print_handovers(const Crm__CustomerCard *card)
{
	section("Handovers");
	if (!card->n_handovers) {
		printf("  none\n");
		return;
	}
	static const char *const heads[] = {"when", "store", "from", "to", "by", "reason"};
	struct table t;
	if (!table_init(&t, 6, heads))
		return;
	for (size_t i = 0; i < card->n_handovers; i++) {
		const Crm__Handover *h = card->handovers[i];
		char when[32];
		format_ms(h->at, when, sizeof when);
		const char *cells[] = {when, h->store_code, set(h->from_owner) ? h->from_owner : "(pool)",
				       h->to_owner, h->by, h->reason};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, "  ");
	table_print_rows(&t, stdout, "  ");
	table_free(&t);
}

/* Follow-ups and tasks (crm followup, crm tasks, and the card). */

const char *method_word(const char *m)
{
	return !strcmp(m, "wechat") ? "WeChat" : m;
}

void print_followup_line(const Crm__Followup *f, const char *indent)
{
	char when[32];
	format_ms(f->at, when, sizeof when);
	printf("%s%s  %s  %s  by %s", indent, when, method_word(f->method), f->type, f->by);
	if (f->store_code && *f->store_code)
		printf(" at %s", f->store_code);
	printf("\n%s  %s\n", indent, f->content);
	if (f->feedback && *f->feedback)
		printf("%s  feedback: %s\n", indent, f->feedback);
	for (size_t i = 0; i < f->n_attachments; i++) {
		char size[32];
		format_size(f->attachments[i]->size, size, sizeof size);
		printf("%s  attachment: %s (%s, %s) %s\n", indent, f->attachments[i]->name, size,
		       f->attachments[i]->media_type, f->attachments[i]->id);
	}
}

static const char *task_state(const Crm__Task *t)
{
	if (!strcmp(t->status, "open"))
		return t->overdue ? "OVERDUE" : "open";
	return t->status;
}

void print_task_table(Crm__Task *const *tasks, size_t n, const char *indent)
{
	static const char *const headers[] = {"due", "state", "customer", "method", "purpose",
					      "owner", "id"};
	struct table t;
	if (!table_init(&t, 7, headers))
		return;
	for (size_t i = 0; i < n; i++) {
		const Crm__Task *k = tasks[i];
		char due[32];
		format_ms(k->due_at, due, sizeof due);
		const char *cells[] = {due, task_state(k), k->customer_name, method_word(k->method),
				       k->purpose, *k->owner ? k->owner : "(pool)", k->id};
		table_add(&t, cells);
	}
	table_fit(&t);
	table_print_header(&t, stdout, indent);
	table_print_rows(&t, stdout, indent);
	table_free(&t);
}

void print_card_followups(const Crm__CustomerCard *card)
{
	if (card->n_open_tasks) {
		printf("\nOpen tasks\n");
		print_task_table(card->open_tasks, card->n_open_tasks, "  ");
	}
	if (card->n_followups) {
		printf("\nLatest follow-ups\n");
		for (size_t i = 0; i < card->n_followups; i++)
			print_followup_line(card->followups[i], "  ");
	}
}

void print_card(const Crm__CustomerCard *card)
{
	const Crm__Customer *c = card->customer;
	if (!c)
		return;
	char line[512], when[32];
	printf("%s\n", c->name);
	section("Customer");
	kv("  ", "id", c->id);
	print_profile(c, "  ");
	format_ms(c->created_at, when, sizeof when);
	snprintf(line, sizeof line, "%s%s%s%s%s", when, set(c->created_by) ? " by " : "",
		 set(c->created_by) ? c->created_by : "", set(c->store_code) ? " at " : "",
		 set(c->store_code) ? c->store_code : "");
	kv("  ", "created", line);
	kv_time("  ", "updated", c->updated_at);
	snprintf(line, sizeof line, "%llu", (unsigned long long)c->version);
	kv("  ", "version", line);

	section("Stores");
	if (!card->n_relations)
		printf("  none: no store has registered this customer\n");
	for (size_t i = 0; i < card->n_relations; i++) {
		if (i)
			printf("\n");
		print_card_relation(card->relations[i]);
	}
	print_history(card);
	print_collisions(card);
	print_handovers(card);
	print_card_followups(card);
}
