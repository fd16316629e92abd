/* crmctl seed: the follow-ups of every relation and the open task each
 * relation's cadence leaves (issue 5's benchmark: a million customers, ten
 * million follow-ups).
 *
 * --followups N follow-ups are spread over the relations in proportion to
 * a weight: busier levels (H, O) and longer-running relations have more.
 * A counting pass adds the weights up; each writing pass then gives a
 * relation floor(N * (before + w) / total) - floor(N * before / total)
 * follow-ups, so the total is exactly N and every pass agrees without
 * holding anything but a running sum.
 *
 * A relation's follow-ups lie between its first contact and its last one
 * (relations.last_contact_at is the newest follow-up's time), the first a
 * first contact, the last one fitting its level. Its open task is due at
 * relations.next_followup_at (the generator's next contact), set by the
 * last follow-up if it has one (a person's purpose), else by the cadence
 * rule of its level (sql/0013 crm.cadence_rules), so next_followup_at is
 * the due time of the relation's earliest open task, as crmd keeps it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmctl_seed.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

__extension__ typedef unsigned __int128 u128;

struct gen_followup {
	char id[37];
	int64_t at_ms;
	const char *method, *type, *feedback;
	char content[192];
};

struct seed_fu {
	uint64_t weight_total;   /* from the counting pass */
	uint64_t weight_before;  /* of the relations already written in this pass */
	struct gen_followup *v;
	int cap;
};

bool seed_fu_init(struct seed *s)
{
	s->fu = calloc(1, sizeof *s->fu);
	return s->fu != NULL;
}

void seed_fu_free(struct seed *s)
{
	if (s->fu)
		free(s->fu->v);
	free(s->fu);
	s->fu = NULL;
}

void seed_fu_rewind(struct seed *s)
{
	s->fu->weight_before = 0;
}

static uint64_t isqrt(uint64_t v)
{
	uint64_t r = 0;
	while ((r + 1) * (r + 1) <= v)
		r++;
	return r;
}

static uint64_t relation_weight(const struct gen_relation *rel)
{
	unsigned factor;
	switch (rel->level) {
	case 'H': case 'O': factor = 30; break;
	case 'A': case 'D': factor = 25; break;
	case 'B': factor = 20; break;
	case 'C': case 'T': factor = 15; break;
	default: factor = strcmp(rel->status, "dormant") ? 10 : 5; break;
	}
	int64_t days = (rel->last_ms - rel->first_ms) / DAY_MS;
	return factor * (4 + isqrt(days > 0 ? (uint64_t)days : 0));
}

void seed_fu_count(struct seed *s, const struct gen_customer *c, long long *tasks)
{
	for (int k = 0; k < c->nrelations; k++) {
		s->fu->weight_total += relation_weight(&c->rel[k]);
		if (c->rel[k].next_ms)
			(*tasks)++;
	}
}

/* ------------------------------------------------------------ what they say */

static const char *const first_texts[] = {
	"首次到店，介绍了在售车型和优惠政策", "来电咨询，留了电话，约了到店时间",
	"车展登记，简单介绍了车型", "线上留资，电话确认了购车意向", "朋友介绍来店，看了展车",
};
static const char *const needs_texts[] = {
	"了解了用车需求：家用为主，周末出游", "预算和配置需求已确认", "客户关心油耗和保养费用",
	"家里两个孩子，需要大空间", "客户在对比竞品车型",
};
static const char *const presentation_texts[] = {
	"六方位绕车介绍，客户对内饰满意", "介绍了安全配置和智能驾驶", "讲解了金融方案和置换补贴",
};
static const char *const invitation_texts[] = {
	"邀约周末到店试驾", "邀请参加店内团购会", "邀约到店看新到现车",
};
static const char *const test_drive_texts[] = {
	"试驾完成，客户对动力满意", "试驾后关注噪音和底盘", "家人一起试驾，反馈不错",
};
static const char *const negotiation_texts[] = {
	"谈了价格，客户希望再优惠一些", "报价已发，客户考虑中", "确认了颜色和交车时间",
};
static const char *const delivery_texts[] = {
	"交车完成，讲解了车辆使用", "确认交车时间和所需材料", "交车仪式，客户很满意",
};
static const char *const after_sales_texts[] = {
	"交车后回访，用车正常", "提醒首保时间", "回访保养体验，客户满意",
};
static const char *const care_texts[] = {
	"节日问候", "生日祝福短信", "天气转凉，提醒检查轮胎", "发送新车型上市信息",
};
static const char *const complaint_texts[] = {
	"客户反映等待时间长，已致歉并跟进", "处理客户对报价的疑问", "订单取消原因已记录",
};
static const char *const feedbacks[] = {
	"", "", "", "考虑中", "再比较一下", "价格有点高", "满意", "下周再联系",
	"需要和家人商量", "对车型很感兴趣", "暂时不买", "等年底优惠",
};
static const char *const purposes[] = {
	"电话回访，确认试驾时间", "发送报价单并跟进", "邀约到店看车", "确认贷款方案",
	"回访客户考虑结果", "提醒客户活动时间",
};

struct fu_type {
	const char *type;
	const char *const *texts;
	size_t ntexts;
};

#define FT(name, t) {name, t, NELEM(t)}
static const struct fu_type t_first = FT("first_contact", first_texts);
static const struct fu_type t_needs = FT("needs_analysis", needs_texts);
static const struct fu_type t_present = FT("model_presentation", presentation_texts);
static const struct fu_type t_invite = FT("invitation", invitation_texts);
static const struct fu_type t_drive = FT("test_drive", test_drive_texts);
static const struct fu_type t_nego = FT("negotiation", negotiation_texts);
static const struct fu_type t_delivery = FT("delivery", delivery_texts);
static const struct fu_type t_after = FT("after_sales_call", after_sales_texts);
static const struct fu_type t_care = FT("care", care_texts);
static const struct fu_type t_complaint = FT("complaint", complaint_texts);

/* The last contact fits the level the relation is at now. */
static const struct fu_type *last_type(struct rng *r, char level)
{
	unsigned x = (unsigned)rng_range(r, 0, 3);
	switch (level) {
	case 'H': return x ? &t_nego : &t_drive;
	case 'A': return x == 0 ? &t_present : x == 1 ? &t_drive : &t_invite;
	case 'B': return x ? &t_needs : &t_invite;
	case 'C': return x ? &t_care : &t_needs;
	case 'O': return x ? &t_nego : &t_delivery;
	case 'D': return x == 0 ? &t_delivery : x == 1 ? &t_after : &t_care;
	case 'T': return &t_complaint;
	default: return &t_first;
	}
}

static const struct fu_type *middle_type(struct rng *r)
{
	static const struct fu_type *const mid[] = {&t_needs, &t_needs, &t_present, &t_invite,
						    &t_invite, &t_drive, &t_nego, &t_care};
	return mid[rng_range(r, 0, NELEM(mid))];
}

static const char *pick_method(struct rng *r, const struct fu_type *t, const char *source)
{
	if (t == &t_first)
		return !strcmp(source, "walk_in") || !strcmp(source, "referral") ? "visit"
		       : !strcmp(source, "online") ? "wechat" : "phone";
	if (t == &t_drive || t == &t_delivery)
		return "visit";
	unsigned x = (unsigned)rng_range(r, 0, 100);
	return x < 55 ? "phone" : x < 85 ? "wechat" : x < 93 ? "visit" : x < 98 ? "sms" : "other";
}

static int cmp_at(const void *a, const void *b)
{
	int64_t x = ((const struct gen_followup *)a)->at_ms, y = ((const struct gen_followup *)b)->at_ms;
	return x < y ? -1 : x > y;
}

/* The follow-ups of relation k of customer c, oldest first, in fu->v
 * (their texts only when `texts`); advances the running weight. Returns
 * how many, or -1 when out of memory. */
static int relation_followups(const struct seed *s, const struct gen_customer *c, int k,
			      bool texts)
{
	struct seed_fu *fu = s->fu;
	const struct gen_relation *rel = &c->rel[k];
	uint64_t w = relation_weight(rel);
	u128 n_total = (u128)(uint64_t)s->followups;
	uint64_t before = fu->weight_before;
	fu->weight_before += w;
	if (s->followups == 0 || fu->weight_total == 0)
		return 0;
	int n = (int)(n_total * (before + w) / fu->weight_total - n_total * before / fu->weight_total);
	if (n == 0)
		return 0;
	if (n > fu->cap) {
		int cap = fu->cap ? fu->cap : 64;
		while (cap < n)
			cap *= 2;
		struct gen_followup *v = realloc(fu->v, (size_t)cap * sizeof *v);
		if (!v)
			return -1;
		fu->v = v;
		fu->cap = cap;
	}
	/* Keyed by the relation id's own stream: the same in every pass. */
	uint64_t key = 0;
	for (const char *p = rel->id; *p; p++)
		key = key * 31 + (unsigned char)*p;
	/* Times and ids from one stream, texts from another: the task pass
	 * draws no texts and must still see the same ids. */
	struct rng r = rng_for(s->seed, 5, key), rt = rng_for(s->seed, 7, key);
	/* Times: the first at the first contact, the last at the last contact,
	 * the rest in between; one alone is the last contact. */
	struct gen_followup *v = fu->v;
	int64_t first = rel->first_ms, last = rel->last_ms > first ? rel->last_ms : first;
	for (int i = 0; i < n; i++)
		v[i].at_ms = rng_range(&r, first, last + 1);
	if (n >= 2)
		v[0].at_ms = first;
	v[n - 1].at_ms = last;
	qsort(v, (size_t)n, sizeof *v, cmp_at);
	const char *model = rel->nintents ? rel->intents[0].model->name : "";
	for (int i = 0; i < n; i++) {
		struct gen_followup *f = &v[i];
		uuid_v7_at(&r, f->at_ms, f->id);
		if (!texts)
			continue;
		const struct fu_type *t = i == n - 1 && (n > 1 || last - first > DAY_MS)
						  ? last_type(&rt, rel->level)
					  : i == 0 ? &t_first : middle_type(&rt);
		f->type = t->type;
		f->method = pick_method(&rt, t, rel->source);
		const char *text = t->texts[rng_range(&rt, 0, (int64_t)t->ntexts)];
		if (*model && t != &t_care && t != &t_complaint && rng_chance(&rt, 60))
			snprintf(f->content, sizeof f->content, "%s（%s）", text, model);
		else
			snprintf(f->content, sizeof f->content, "%s", text);
		f->feedback = feedbacks[rng_range(&rt, 0, NELEM(feedbacks))];
	}
	return n;
}

/* Who records them: the owner, or for a pool relation the consultant who
 * registered it. */
static const char *relation_by(const struct seed *s, const struct gen_relation *rel)
{
	const struct seed_store *st = &s->stores[rel->store];
	return st->consultant_id[rel->owner >= 0 ? rel->owner : rel->creator];
}

long long seed_write_followups(const struct seed *s, const struct gen_customer *c,
			       struct copy_buf *b)
{
	long long rows = 0;
	for (int k = 0; k < c->nrelations; k++) {
		const struct gen_relation *rel = &c->rel[k];
		int n = relation_followups(s, c, k, true);
		if (n < 0) {
			b->failed = true;
			return rows;
		}
		const char *store_id = s->stores[rel->store].id, *by = relation_by(s, rel);
		for (int i = 0; i < n; i++, rows++) {
			const struct gen_followup *f = &s->fu->v[i];
			cb_field(b, f->id, false);
			cb_field(b, rel->id, false);
			cb_field(b, store_id, false);
			cb_field(b, f->method, false);
			cb_field(b, f->type, false);
			cb_time(b, f->at_ms, false);
			cb_field(b, f->content, false);
			cb_field(b, f->feedback, false);
			cb_field(b, by, false);
			cb_time(b, f->at_ms, true);
		}
	}
	return rows;
}

/* The policy rule (sql/0013 defaults) whose task a relation without
 * follow-ups waits on. */
static void cadence_rule(char level, const char **key, const char **purpose)
{
	switch (level) {
	case 'H': *key = "H/followup/1"; *purpose = "follow up (H: every 2 days)"; break;
	case 'A': *key = "A/followup/1"; *purpose = "follow up (A: every 4 days)"; break;
	case 'B': *key = "B/followup/1"; *purpose = "follow up (B: every 7 days)"; break;
	case 'C': *key = "C/followup/1"; *purpose = "follow up (C: every 14 days)"; break;
	case 'O':
		*key = "O/followup/1";
		*purpose = "follow up until delivery (O: every 3 days)";
		break;
	case 'D': *key = "D/followup/1"; *purpose = "contact every 2 months after delivery"; break;
	default: *key = "N/first_visit/2"; *purpose = "first call after the first visit"; break;
	}
}

long long seed_write_tasks(const struct seed *s, const struct gen_customer *c,
			   struct copy_buf *b)
{
	long long rows = 0;
	for (int k = 0; k < c->nrelations; k++) {
		const struct gen_relation *rel = &c->rel[k];
		int n = relation_followups(s, c, k, false);
		if (n < 0) {
			b->failed = true;
			return rows;
		}
		if (!rel->next_ms)
			continue;
		const struct seed_store *st = &s->stores[rel->store];
		const struct gen_followup *lastf = n ? &s->fu->v[n - 1] : NULL;
		int64_t created = lastf ? lastf->at_ms : rel->last_ms;
		uint64_t key = 0;
		for (const char *p = rel->id; *p; p++)
			key = key * 31 + (unsigned char)*p;
		struct rng r = rng_for(s->seed, 6, key);
		char id[37];
		uuid_v7_at(&r, created, id);
		const char *cadence_key = "", *purpose;
		if (lastf)
			purpose = purposes[rng_range(&r, 0, NELEM(purposes))];
		else
			cadence_rule(rel->level, &cadence_key, &purpose);
		cb_field(b, id, false);
		cb_field(b, rel->id, false);
		cb_field(b, st->id, false);
		if (rel->owner >= 0)
			cb_field(b, st->consultant_id[rel->owner], false);
		else
			cb_null(b, false);
		cb_time(b, rel->next_ms, false);
		cb_field(b, rel->level == 'N' && !lastf ? "phone" : rng_chance(&r, 80) ? "phone" : "wechat",
			 false);
		cb_field(b, purpose, false);
		cb_field(b, cadence_key, false);
		if (lastf)
			cb_field(b, lastf->id, false);
		else
			cb_null(b, false);
		cb_time(b, created, false);
		cb_field(b, relation_by(s, rel), true);
		rows++;
	}
	return rows;
}
