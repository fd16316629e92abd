/* crmctl seed, shared between the generator (crmctl_seed_gen.c: names,
 * the group's brands and cities, phones, one customer at a time) and the
 * loader (crmctl_seed.c: COPY, indexes, files, the command). */
#ifndef CRMCTL_SEED_H
#define CRMCTL_SEED_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SEED_MAX_CONSULTANTS 20
#define DAY_MS 86400000LL

/* A deterministic stream: splitmix64 from (seed, stream, index). */
struct rng {
	uint64_t s;
};

struct rng rng_for(uint64_t seed, uint64_t stream, uint64_t index);
uint64_t rng_next(struct rng *r);
/* True with the given chance in percent. */
bool rng_chance(struct rng *r, unsigned percent);
/* Uniform in [lo, hi); lo when hi <= lo. */
int64_t rng_range(struct rng *r, int64_t lo, int64_t hi);

struct model {
	const char *name, *body;
	int price_lo, price_hi; /* thousand yuan */
};

struct seed_store {
	char id[37];
	char code[16];
	char name[128];
	int brand, city;
	char manager_id[37];
	char consultant_id[SEED_MAX_CONSULTANTS][37];
	char consultant_user[SEED_MAX_CONSULTANTS][32];
	/* stores of other brands, to give some customers a second relation */
	int *others;
	int nothers;
};

struct seed {
	uint64_t seed;
	long customers;
	int nstores, consultants;
	struct seed_store *stores;
	int64_t now_ms;       /* start of today, UTC: same seed, same day, same data */
	int protection_days;
	uint64_t *taken;      /* phones already in the database, sorted (11 digits) */
	size_t ntaken;
	uint32_t feistel_keys[4];
	int feistel_half_bits;
	long long followups;  /* --followups: spread over all relations */
	struct seed_fu *fu;   /* the follow-up and task passes' running state */
	/* progress */
	bool tty;
	long long rows_done, rows_total;
	const char *phase;
	struct timespec started, last_draw;
};

struct gen_intent {
	const struct model *model;
	const char *configuration, *needs;
	int budget_min, budget_max;
};

struct gen_level {
	char from, to;
	int64_t at_ms;
};

struct gen_relation {
	char id[37];
	int store;
	int owner;        /* consultant index, -1: the store pool */
	int creator;      /* consultant index */
	char level;
	const char *source, *place, *scenario, *feedback, *status;
	char place_buf[64];
	int64_t created_ms, first_ms, last_ms, next_ms, updated_ms;
	int nintents;
	struct gen_intent intents[2];
	int nlevels;
	struct gen_level levels[3];
};

struct gen_customer {
	char id[37];
	char name[32];
	int64_t created_ms;
	bool female;
	int birth_year;
	const char *age_band, *occupation;
	char region[64], wechat[32], email[48];
	const char *tags[3];
	int ntags;
	bool important;
	int nphones;
	char phones[2][16];
	int64_t phone_added_ms[2];
	int nrelations;
	struct gen_relation rel[2];
};

/* A Chinese name from weighted surnames and given-name characters. */
void gen_name(struct rng *r, bool female, char *out, size_t cap);
/* A random-looking UUID (version 4) from the stream. */
void uuid_v4(struct rng *r, char out[37]);
/* A UUIDv7 of the time `ms`, its random part from the stream. */
void uuid_v7_at(struct rng *r, int64_t ms, char out[37]);
/* Keys the phone bijection from s->seed. */
void seed_phones_init(struct seed *s);
/* Brand, city, code (SD001..) and name of store i; its id from `r`. */
void seed_store_layout(int i, struct rng *r, struct seed_store *st);
const char *seed_brand_name(int brand);
const char *seed_city_name(int city);
int seed_brand_count(void);
/* Model m (0 .. seed_models_per_brand() - 1) of a brand's catalog. */
int seed_models_per_brand(void);
const struct model *seed_model(int brand, int m);
/* Customer i, the same for a given seed and day whichever pass asks. */
void gen_customer(const struct seed *s, long i, struct gen_customer *c);

/* ---- COPY text output (crmctl_seed.c) */

struct copy_buf {
	PGconn *db;
	char *data;
	size_t len, cap;
	bool failed;
};

/* Text fields written here hold no tab, newline or backslash: no COPY
 * escaping is done. `last` ends the row. */
void cb_str(struct copy_buf *b, const char *s);
void cb_char(struct copy_buf *b, char ch);
void cb_field(struct copy_buf *b, const char *s, bool last);
void cb_null(struct copy_buf *b, bool last);
void cb_int(struct copy_buf *b, long long v, bool last);
void cb_time(struct copy_buf *b, int64_t ms, bool last);
void cb_time_or_null(struct copy_buf *b, int64_t ms, bool last);

/* ---- follow-ups and open tasks (crmctl_seed_followups.c)
 *
 * --followups N are spread over the relations in proportion to a weight
 * (level and how long the relation has run), exactly N in all; each
 * relation with a next contact due gets the open task the cadence leaves. */

/* Allocates s->fu. False when out of memory. */
bool seed_fu_init(struct seed *s);
void seed_fu_free(struct seed *s);
/* Adds customer c to the weights (the counting pass). */
void seed_fu_count(struct seed *s, const struct gen_customer *c, long long *tasks);
/* Back to the first customer, before each pass that writes. */
void seed_fu_rewind(struct seed *s);
long long seed_write_followups(const struct seed *s, const struct gen_customer *c,
			       struct copy_buf *b);
long long seed_write_tasks(const struct seed *s, const struct gen_customer *c,
			   struct copy_buf *b);

#endif
