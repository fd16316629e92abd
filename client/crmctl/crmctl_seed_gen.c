/* crmctl seed: the generator. Everything is derived from --seed and the
 * customer's index, so the loader can stream every table in its own COPY
 * pass by generating the customers again. Names come from weighted common
 * surnames and given-name characters; brands carry their real models with
 * body types and prices; phones are valid mobiles from a bijection, so they
 * are unique without any retry. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crmctl_seed.h"
#include "textcheck.h"

/* ------------------------------------------------------------ randomness */

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng rng_for(uint64_t seed, uint64_t stream, uint64_t index)
{
	struct rng r = {mix64(mix64(seed ^ (stream << 56)) + index)};
	return r;
}

uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

/* Uniform in [0, n). The bias of a 64-bit modulo is far below anything a
 * benchmark could notice. */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rng_next(r) % n) : 0;
}

int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return hi <= lo ? lo : lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo));
}

bool rng_chance(struct rng *r, unsigned percent)
{
	return rng_below(r, 1000) < percent * 10;
}

/* ------------------------------------------------------------ weighted tables */

struct weighted {
	const char *text;
	unsigned weight;
};

/* Picks from a table of weights; the total is summed on every call, which
 * costs less than the COPY of one row. */
static const char *pick_w(struct rng *r, const struct weighted *t, size_t n)
{
	unsigned total = 0;
	for (size_t i = 0; i < n; i++)
		total += t[i].weight;
	unsigned x = rng_below(r, total);
	for (size_t i = 0; i < n; i++) {
		if (x < t[i].weight)
			return t[i].text;
		x -= t[i].weight;
	}
	return t[n - 1].text;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define PICK_W(r, t) pick_w((r), (t), NELEM(t))
#define PICK(r, t) ((t)[rng_below((r), NELEM(t))])

/* Surnames by their share of the population (per 10,000, rounded). */
static const struct weighted surnames[] = {
	{"王", 710}, {"李", 700}, {"张", 670}, {"刘", 540}, {"陈", 450}, {"杨", 310},
	{"黄", 220}, {"赵", 200}, {"吴", 180}, {"周", 170}, {"徐", 130}, {"孙", 120},
	{"马", 120}, {"朱", 110}, {"胡", 100}, {"郭", 100}, {"何", 90},  {"高", 90},
	{"林", 90},  {"罗", 90},  {"郑", 80},  {"梁", 80},  {"谢", 60},  {"宋", 60},
	{"唐", 60},  {"许", 50},  {"韩", 50},  {"冯", 50},  {"邓", 50},  {"曹", 50},
	{"彭", 50},  {"曾", 50},  {"肖", 40},  {"田", 40},  {"董", 40},  {"袁", 40},
	{"潘", 40},  {"于", 40},  {"蒋", 40},  {"蔡", 40},  {"余", 40},  {"杜", 40},
	{"叶", 40},  {"程", 40},  {"苏", 30},  {"魏", 30},  {"吕", 30},  {"丁", 30},
	{"任", 30},  {"沈", 30},  {"姚", 30},  {"卢", 30},  {"姜", 30},  {"崔", 30},
	{"钟", 30},  {"谭", 30},  {"陆", 30},  {"汪", 30},  {"范", 30},  {"金", 30},
	{"石", 30},  {"廖", 30},  {"贾", 30},  {"夏", 30},  {"韦", 30},  {"付", 30},
	{"方", 30},  {"白", 30},  {"邹", 30},  {"孟", 30},  {"熊", 30},  {"秦", 30},
	{"邱", 30},  {"江", 30},  {"尹", 30},  {"薛", 20},  {"闫", 20},  {"段", 20},
	{"雷", 20},  {"侯", 20},  {"龙", 20},  {"史", 20},  {"陶", 20},  {"黎", 20},
	{"贺", 20},  {"顾", 20},  {"毛", 20},  {"郝", 20},  {"龚", 20},  {"邵", 20},
	{"万", 20},  {"钱", 20},  {"严", 20},  {"覃", 10},  {"武", 20},  {"戴", 20},
	{"莫", 10},  {"孔", 10},  {"向", 10},  {"汤", 10},  {"欧阳", 3}, {"司马", 1},
	{"诸葛", 1}, {"上官", 1},
};

static const struct weighted given_male[] = {
	{"伟", 30}, {"强", 20}, {"磊", 20}, {"军", 20}, {"洋", 15}, {"勇", 15}, {"杰", 18},
	{"涛", 15}, {"明", 20}, {"超", 15}, {"刚", 10}, {"平", 10}, {"辉", 12}, {"鹏", 12},
	{"华", 15}, {"飞", 10}, {"鑫", 10}, {"波", 10}, {"斌", 10}, {"宇", 15}, {"浩", 15},
	{"凯", 10}, {"健", 10}, {"俊", 12}, {"帆", 8},  {"帅", 8},  {"旭", 8},  {"宁", 8},
	{"龙", 10}, {"林", 10}, {"阳", 10}, {"建", 12}, {"国", 12}, {"志", 12}, {"文", 12},
	{"亮", 10}, {"成", 10}, {"东", 10}, {"海", 10}, {"峰", 10}, {"晨", 8},  {"博", 8},
	{"子", 10}, {"小", 10}, {"晓", 10}, {"家", 8},  {"嘉", 6},  {"天", 8},  {"一", 6},
	{"思", 5},  {"泽", 6},  {"轩", 6},  {"睿", 5},  {"永", 8},  {"德", 6},  {"春", 5},
};

static const struct weighted given_female[] = {
	{"芳", 25}, {"娜", 20}, {"敏", 20}, {"静", 20}, {"丽", 20}, {"艳", 15}, {"娟", 12},
	{"霞", 12}, {"秀", 10}, {"英", 12}, {"玲", 12}, {"燕", 10}, {"萍", 10}, {"红", 10},
	{"婷", 15}, {"雪", 12}, {"琳", 12}, {"颖", 10}, {"慧", 12}, {"莉", 8},  {"倩", 10},
	{"洁", 8},  {"梅", 8},  {"晶", 8},  {"丹", 10}, {"蕾", 6},  {"琴", 6},  {"云", 8},
	{"兰", 8},  {"薇", 6},  {"佳", 10}, {"欣", 12}, {"悦", 8},  {"怡", 8},  {"小", 10},
	{"晓", 12}, {"子", 8},  {"雨", 10}, {"梦", 6},  {"思", 8},  {"诗", 6},  {"美", 6},
	{"玉", 6},  {"春", 6},  {"月", 5},
};

/* A Chinese name: surname and one (20%) or two given-name characters. */
void gen_name(struct rng *r, bool female, char *out, size_t cap)
{
	const struct weighted *g = female ? given_female : given_male;
	size_t ng = female ? NELEM(given_female) : NELEM(given_male);
	const char *s = PICK_W(r, surnames);
	const char *a = pick_w(r, g, ng);
	if (rng_chance(r, 20))
		snprintf(out, cap, "%s%s", s, a);
	else
		snprintf(out, cap, "%s%s%s", s, a, pick_w(r, g, ng));
}

/* ------------------------------------------------------------ the group */


struct brand {
	const char *name;
	struct model models[8];
};

/* Brands as the dealer networks are named (a JV's network is its own brand
 * for lead protection), each with real models, body types and list prices. */
static const struct brand brands[] = {
	{"上汽大众", {{"帕萨特", "sedan", 180, 260}, {"朗逸", "sedan", 100, 150},
		      {"途观L", "suv", 220, 300}, {"途昂", "suv", 300, 400},
		      {"途岳", "suv", 160, 220}, {"威然", "mpv", 290, 400},
		      {"凌渡L", "sedan", 150, 200}, {"ID.4 X", "suv", 170, 270}}},
	{"广汽丰田", {{"凯美瑞", "sedan", 170, 270}, {"雷凌", "sedan", 110, 150},
		      {"汉兰达", "suv", 270, 350}, {"威兰达", "suv", 170, 270},
		      {"锋兰达", "suv", 120, 160}, {"赛那", "mpv", 300, 400},
		      {"致炫", "hatchback", 70, 100}, {"bZ4X", "suv", 170, 220}}},
	{"东风本田", {{"思域", "sedan", 130, 180}, {"英仕派", "sedan", 170, 250},
		      {"享域", "sedan", 100, 130}, {"CR-V", "suv", 180, 270},
		      {"艾力绅", "mpv", 270, 350}, {"XR-V", "suv", 120, 160},
		      {"UR-V", "suv", 230, 300}, {"思域HATCHBACK", "hatchback", 140, 180}}},
	{"上汽通用别克", {{"君越", "sedan", 220, 280}, {"君威", "sedan", 170, 230},
			  {"英朗", "sedan", 100, 130}, {"昂科威Plus", "suv", 200, 270},
			  {"昂科拉", "suv", 130, 170}, {"GL8 ES陆尊", "mpv", 280, 380},
			  {"GL8 陆上公务舱", "mpv", 230, 280}, {"威朗Pro", "sedan", 120, 150}}},
	{"华晨宝马", {{"3系", "sedan", 300, 400}, {"5系", "sedan", 430, 550},
		      {"X1", "suv", 280, 350}, {"X3", "suv", 390, 480},
		      {"iX3", "suv", 400, 450}, {"1系", "sedan", 200, 270},
		      {"i3", "sedan", 350, 420}, {"X5", "suv", 600, 800}}},
	{"一汽奥迪", {{"A4L", "sedan", 300, 400}, {"A6L", "sedan", 420, 650},
		      {"Q5L", "suv", 400, 500}, {"Q3", "suv", 280, 350},
		      {"A3", "hatchback", 200, 280}, {"Q4 e-tron", "suv", 300, 400},
		      {"Q2L", "suv", 220, 270}, {"Q6", "suv", 450, 600}}},
	{"东风日产", {{"轩逸", "sedan", 100, 150}, {"天籁", "sedan", 180, 240},
		      {"奇骏", "suv", 180, 260}, {"逍客", "suv", 130, 190},
		      {"楼兰", "suv", 230, 300}, {"劲客", "suv", 100, 130},
		      {"骐达", "hatchback", 90, 120}, {"艾睿雅", "suv", 250, 330}}},
	{"比亚迪", {{"汉", "sedan", 180, 280}, {"秦PLUS", "sedan", 80, 150},
		    {"海豹", "sedan", 180, 280}, {"宋PLUS", "suv", 150, 200},
		    {"唐", "suv", 220, 300}, {"元PLUS", "suv", 130, 160},
		    {"海豚", "hatchback", 100, 130}, {"宋MAX", "mpv", 120, 160}}},
};
#define NBRANDS NELEM(brands)
#define NMODELS 8

struct city {
	const char *name;
	const char *districts[5];
};

static const struct city cities[] = {
	{"北京", {"朝阳区", "海淀区", "丰台区", "通州区", "大兴区"}},
	{"上海", {"浦东新区", "闵行区", "徐汇区", "宝山区", "嘉定区"}},
	{"广州", {"天河区", "白云区", "番禺区", "海珠区", "黄埔区"}},
	{"深圳", {"南山区", "福田区", "宝安区", "龙岗区", "龙华区"}},
	{"成都", {"武侯区", "高新区", "锦江区", "成华区", "双流区"}},
	{"杭州", {"西湖区", "余杭区", "萧山区", "滨江区", "拱墅区"}},
	{"武汉", {"武昌区", "洪山区", "江汉区", "汉阳区", "江夏区"}},
	{"南京", {"鼓楼区", "江宁区", "建邺区", "玄武区", "栖霞区"}},
	{"西安", {"雁塔区", "未央区", "长安区", "碑林区", "灞桥区"}},
	{"重庆", {"渝北区", "江北区", "九龙坡区", "南岸区", "沙坪坝区"}},
	{"天津", {"南开区", "河西区", "和平区", "西青区", "滨海新区"}},
	{"苏州", {"工业园区", "姑苏区", "吴中区", "相城区", "虎丘区"}},
};
#define NCITIES NELEM(cities)

static const char *const store_places[] = {"中心", "高新", "城东", "城西", "城南", "城北",
					   "机场路", "二环", "开发区", "新城"};

/* Mobile prefixes the demo and the tests do not use (they use 138, 139 and
 * 199); phones already in the database are avoided anyway. */
static const char *const phone_prefixes[] = {
	"130", "131", "132", "133", "134", "135", "136", "137", "150", "151",
	"152", "153", "155", "156", "157", "158", "159", "166", "177", "180",
	"181", "182", "183", "185", "186", "187", "188", "189", "191", "198",
};
#define NPREFIXES NELEM(phone_prefixes)

static const char *const occupations[] = {
	"教师", "医生", "护士", "工程师", "程序员", "公务员", "个体经营", "企业管理", "销售",
	"会计", "律师", "设计师", "司机", "自由职业", "退休", "金融", "房地产", "餐饮", "建筑",
	"外贸"};

static const char *const tag_names[] = {"首购", "增购", "换购", "家用", "商务", "网约车",
					"价格敏感", "重视服务", "新能源意向", "团购", "老客户",
					"转介绍"};

static const struct weighted sources[] = {
	{"walk_in", 35}, {"online", 25}, {"phone_in", 12}, {"referral", 10},
	{"auto_show", 7}, {"roadshow", 5}, {"fleet", 2},   {"other", 4},
};

static const char *const scenarios[] = {
	"周末全家来店看车", "下班后顺路看车", "咨询置换补贴", "对比竞品后到店", "预约试驾",
	"询问最低价", "为家人选车", "公司用车需求", "咨询首付和贷款方案", "看新上市车型"};

static const char *const feedbacks[] = {
	"对外观很满意，觉得价格偏高", "空间满意，还想再对比", "试驾感受好，等促销活动",
	"关注油耗和保养费用", "需要和家人商量", "对金融方案感兴趣", "嫌等车周期长",
	"基本满意，近期决定", "只是先了解一下", "对配置有疑问，要再看看"};

static const char *const configurations[] = {"豪华版 白色", "尊贵版 黑色", "舒适版 灰色",
					     "运动版 蓝色", "旗舰版 白色", "两驱 精英版",
					     "四驱 豪华版", "", ""};

static const char *const needs_texts[] = {"家用代步", "二胎家庭，要大空间", "上下班通勤",
					  "商务接待", "置换旧车", "看重安全配置", "看重油耗",
					  "想上新能源牌照", "周末自驾游", ""};

static const char *source_place(struct rng *r, const char *source, const char *city,
				 char *buf, size_t cap)
{
	static const char *const online[] = {"汽车之家线索", "懂车帝线索", "官网预约",
					     "抖音直播间"};
	static const char *const roadshow[] = {"商场外展", "社区巡展"};
	if (!strcmp(source, "walk_in"))
		return "展厅";
	if (!strcmp(source, "online"))
		return PICK(r, online);
	if (!strcmp(source, "phone_in"))
		return "来电";
	if (!strcmp(source, "referral"))
		return "老客户推荐";
	if (!strcmp(source, "auto_show")) {
		snprintf(buf, cap, "%s国际车展", city);
		return buf;
	}
	if (!strcmp(source, "roadshow"))
		return PICK(r, roadshow);
	if (!strcmp(source, "fleet"))
		return "企业团购洽谈";
	return "售后转介绍";
}

/* ------------------------------------------------------------ phones */

/* A bijection of [0, 2^(2h)) (a 4-round Feistel network keyed by the seed),
 * walked until the value falls inside [0, prefixes * 10^8): distinct slots
 * always give distinct phones, with no retry on chance. */
static uint64_t feistel(const struct seed *s, uint64_t x)
{
	int h = s->feistel_half_bits;
	uint64_t mask = (1ULL << h) - 1;
	uint64_t limit = (uint64_t)NPREFIXES * 100000000ULL;
	do {
		uint64_t l = x >> h, r = x & mask;
		for (int round = 0; round < 4; round++) {
			uint64_t f = mix64(r ^ ((uint64_t)s->feistel_keys[round] << 32)) & mask;
			uint64_t nl = r;
			r = l ^ f;
			l = nl;
		}
		x = (l << h) | r;
	} while (x >= limit);
	return x;
}

static bool phone_taken(const struct seed *s, uint64_t number)
{
	size_t lo = 0, hi = s->ntaken;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->taken[mid] == number)
			return true;
		if (s->taken[mid] < number)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Phone `which` (0 primary, 1 second) of customer i. Slots of a clashing
 * phone move to a later generation, g * 2M + 2i + which, which no other
 * customer's slot can be. */
static void seed_phone(const struct seed *s, long i, int which, char out[16])
{
	uint64_t span = 2 * (uint64_t)s->customers;
	for (uint64_t g = 0;; g++) {
		uint64_t x = feistel(s, g * span + 2 * (uint64_t)i + (uint64_t)which);
		uint64_t pre = x / 100000000ULL, rest = x % 100000000ULL;
		uint64_t number = (uint64_t)atoi(phone_prefixes[pre]) * 100000000ULL + rest;
		if (!phone_taken(s, number)) {
			snprintf(out, 16, "+86%" PRIu64, number);
			return;
		}
	}
}

/* ------------------------------------------------------------ one customer */





void uuid_v7_at(struct rng *r, int64_t ms, char out[37])
{
	uint8_t id[16];
	uint64_t a = rng_next(r), b = rng_next(r);
	memcpy(id + 6, &a, 2);
	memcpy(id + 8, &b, 8);
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
	id[6] = (uint8_t)(0x70 | (id[6] & 0x0f));
	id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
	uuid_format(id, out);
}

void uuid_v4(struct rng *r, char out[37])
{
	uint8_t id[16];
	uint64_t a = rng_next(r), b = rng_next(r);
	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
	id[6] = (uint8_t)(0x40 | (id[6] & 0x0f));
	id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
	uuid_format(id, out);
}

/* Level by how long ago the relation began: young leads are mostly N..B,
 * old ones settle into C, delivered, cancelled or a stale N. */
static char pick_level(struct rng *r, int64_t age_days)
{
	static const char levels[] = "NHABCODT";
	static const unsigned young[] = {35, 10, 15, 20, 15, 3, 0, 2};
	static const unsigned mid[] = {10, 5, 10, 20, 30, 8, 10, 7};
	static const unsigned old[] = {18, 3, 5, 14, 30, 2, 20, 8};
	const unsigned *w = age_days < 30 ? young : age_days < 120 ? mid : old;
	unsigned x = rng_below(r, 100);
	for (int i = 0; i < 8; i++) {
		if (x < w[i])
			return levels[i];
		x -= w[i];
	}
	return 'C';
}

static void gen_relation(const struct seed *s, struct rng *r, int store, int64_t created_ms,
			 struct gen_relation *rel)
{
	const struct seed_store *st = &s->stores[store];
	int64_t now = s->now_ms;
	rel->store = store;
	rel->created_ms = created_ms;
	rel->first_ms = created_ms;
	uuid_v7_at(r, created_ms, rel->id);
	rel->creator = (int)rng_below(r, (uint32_t)s->consultants);
	rel->owner = rng_chance(r, 12) ? -1 : rel->creator;
	rel->source = PICK_W(r, sources);
	rel->place = source_place(r, rel->source, cities[st->city].name, rel->place_buf,
				  sizeof rel->place_buf);
	rel->scenario = PICK(r, scenarios);
	rel->feedback = PICK(r, feedbacks);
	int64_t age_days = (now - created_ms) / DAY_MS;
	rel->level = pick_level(r, age_days);

	/* Last contact, and the next one the consultant planned (DESIGN.md
	 * cadence): mostly ahead, overdue for a realistic minority. */
	int64_t last, cadence = 0;
	unsigned overdue_pct = 20;
	switch (rel->level) {
	case 'H': last = now - rng_range(r, 0, 4 * DAY_MS); cadence = 3, overdue_pct = 25; break;
	case 'A': last = now - rng_range(r, 0, 9 * DAY_MS); cadence = 7; break;
	case 'B': last = now - rng_range(r, 0, 18 * DAY_MS); cadence = 14; break;
	case 'C': last = now - rng_range(r, 0, 75 * DAY_MS); cadence = 45; break;
	case 'O': last = now - rng_range(r, 0, 20 * DAY_MS); cadence = 10, overdue_pct = 10; break;
	case 'D': last = now - rng_range(r, 0, 120 * DAY_MS); cadence = 60, overdue_pct = 15; break;
	case 'T': last = now - rng_range(r, 30 * DAY_MS, 400 * DAY_MS); break;
	default: /* N: a fresh lead, or one that was never followed up */
		if (age_days < 30)
			last = now - rng_range(r, 0, age_days * DAY_MS + 1);
		else
			last = created_ms + rng_range(r, 0, 7 * DAY_MS);
		cadence = 2, overdue_pct = 30;
		break;
	}
	if (last < created_ms)
		last = created_ms + rng_range(r, 0, (now - created_ms) / 4 + 1);
	if (last > now)
		last = now;
	rel->last_ms = last;
	rel->next_ms = 0;
	if (cadence) {
		int64_t late_room = now - last;
		if (late_room > cadence * DAY_MS)
			late_room = cadence * DAY_MS;
		if (late_room > DAY_MS / 24 && rng_chance(r, overdue_pct))
			rel->next_ms = now - rng_range(r, DAY_MS / 24, late_room);
		else
			rel->next_ms = now + rng_range(r, DAY_MS / 24, cadence * DAY_MS);
	}
	rel->status = "active";
	if (rel->level == 'T') {
		rel->status = "closed";
	} else if (rel->level == 'N' && age_days > 90 && rng_chance(r, 85)) {
		rel->status = "dormant";
		rel->next_ms = 0;
	}

	/* Level history: N first, then the way to today's level. */
	int64_t span = last - created_ms;
	rel->nlevels = 0;
	rel->levels[rel->nlevels++] = (struct gen_level){0, 'N', created_ms};
	if (rel->level == 'D' || rel->level == 'T' || rel->level == 'O') {
		int64_t ordered = created_ms + span / 2;
		rel->levels[rel->nlevels++] = (struct gen_level){'N', 'O', ordered};
		if (rel->level != 'O')
			rel->levels[rel->nlevels++] = (struct gen_level){'O', rel->level, last};
	} else if (rel->level != 'N') {
		rel->levels[rel->nlevels++] =
			(struct gen_level){'N', rel->level, created_ms + span * 3 / 4};
	}
	rel->updated_ms = last > rel->levels[rel->nlevels - 1].at_ms
				  ? last : rel->levels[rel->nlevels - 1].at_ms;

	const struct brand *b = &brands[st->brand];
	rel->nintents = rng_chance(r, 30) ? 2 : 1;
	int first_model = (int)rng_below(r, NMODELS);
	for (int k = 0; k < rel->nintents; k++) {
		struct gen_intent *in = &rel->intents[k];
		in->model = &b->models[(first_model + k * (1 + (int)rng_below(r, NMODELS - 1))) %
				       NMODELS];
		in->configuration = PICK(r, configurations);
		in->needs = PICK(r, needs_texts);
		if (rng_chance(r, 10)) {
			in->budget_min = in->budget_max = 0;
		} else {
			int lo = in->model->price_lo, hi = in->model->price_hi;
			int min_k = lo + (int)rng_below(r, (uint32_t)((hi - lo) / 2 + 1));
			in->budget_min = min_k / 10 * 10000;
			in->budget_max = in->budget_min + (2 + (int)rng_below(r, 7)) * 10000;
		}
	}
}

/* Customer i, the same for a given seed and day whichever pass asks. */
void gen_customer(const struct seed *s, long i, struct gen_customer *c)
{
	struct rng r = rng_for(s->seed, 1, (uint64_t)i);
	int64_t span = 730 * DAY_MS;
	int64_t step = span / s->customers;
	c->created_ms = s->now_ms - span + step * i + rng_range(&r, 0, step > 1 ? step : 1);
	uuid_v7_at(&r, c->created_ms, c->id);
	c->female = rng_chance(&r, 38);
	gen_name(&r, c->female, c->name, sizeof c->name);

	int store = (int)rng_below(&r, (uint32_t)s->nstores);
	const struct seed_store *st = &s->stores[store];
	const struct city *city = &cities[st->city];
	unsigned age_kind = rng_below(&r, 100);
	c->birth_year = 0;
	c->age_band = "";
	if (age_kind < 55) {
		/* triangular around the late 1980s: most buyers are 25 to 45 */
		c->birth_year = 1962 + (int)(rng_below(&r, 22) + rng_below(&r, 22));
	} else if (age_kind < 85) {
		static const struct weighted bands[] = {
			{"18-24", 6}, {"25-34", 38}, {"35-44", 33}, {"45-54", 16}, {"55+", 7}};
		c->age_band = PICK_W(&r, bands);
	}
	c->occupation = rng_chance(&r, 70) ? PICK(&r, occupations) : "";
	if (rng_chance(&r, 85))
		snprintf(c->region, sizeof c->region, "%s市%s", city->name,
			 city->districts[rng_below(&r, 5)]);
	else
		c->region[0] = '\0';
	c->ntags = (int)rng_below(&r, 4);
	int t0 = (int)rng_below(&r, NELEM(tag_names));
	for (int k = 0; k < c->ntags; k++)
		c->tags[k] = tag_names[(t0 + k * 5) % NELEM(tag_names)];
	c->important = rng_chance(&r, 6);
	c->wechat[0] = c->email[0] = '\0';
	if (rng_chance(&r, 40)) {
		static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
		memcpy(c->wechat, "wxid_", 5);
		for (int k = 0; k < 10; k++)
			c->wechat[5 + k] = alnum[rng_below(&r, 36)];
		c->wechat[15] = '\0';
	}
	if (rng_chance(&r, 8))
		snprintf(c->email, sizeof c->email, "%" PRId64 "@qq.com",
			 rng_range(&r, 100000000, 3000000000LL));

	c->nphones = rng_chance(&r, 8) ? 2 : 1;
	seed_phone(s, i, 0, c->phones[0]);
	c->phone_added_ms[0] = c->created_ms;
	if (c->nphones == 2) {
		seed_phone(s, i, 1, c->phones[1]);
		c->phone_added_ms[1] = c->created_ms + rng_range(&r, 0, s->now_ms - c->created_ms + 1);
	}

	c->nrelations = 1;
	gen_relation(s, &r, store, c->created_ms, &c->rel[0]);
	if (st->nothers > 0 && rng_chance(&r, 15)) {
		int other = st->others[rng_below(&r, (uint32_t)st->nothers)];
		int64_t room = s->now_ms - c->created_ms;
		int64_t later = c->created_ms + rng_range(&r, DAY_MS / 24, room > DAY_MS ? room : DAY_MS);
		if (later < s->now_ms) {
			gen_relation(s, &r, other, later, &c->rel[1]);
			c->nrelations = 2;
		}
	}
}

void seed_store_layout(int i, struct rng *r, struct seed_store *st)
{
	st->brand = i % (int)NBRANDS;
	st->city = (i * 7 + i / (int)NBRANDS) % (int)NCITIES;
	snprintf(st->code, sizeof st->code, "SD%03d", i + 1);
	snprintf(st->name, sizeof st->name, "%s%s%s店", brands[st->brand].name,
		 cities[st->city].name, store_places[(i / (int)NBRANDS) % NELEM(store_places)]);
	uuid_v4(r, st->id);
}

const char *seed_brand_name(int brand) { return brands[brand].name; }
const char *seed_city_name(int city) { return cities[city].name; }
int seed_brand_count(void) { return (int)NBRANDS; }
int seed_models_per_brand(void) { return NMODELS; }
const struct model *seed_model(int brand, int m) { return &brands[brand].models[m]; }

void seed_phones_init(struct seed *s)
{
	struct rng kr = rng_for(s->seed, 3, 0);
	for (int k = 0; k < 4; k++)
		s->feistel_keys[k] = (uint32_t)rng_next(&kr);
	uint64_t limit = (uint64_t)NPREFIXES * 100000000ULL;
	s->feistel_half_bits = 1;
	while ((1ULL << (2 * s->feistel_half_bits)) < limit)
		s->feistel_half_bits++;
}
