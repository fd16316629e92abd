/* crm-bench: load generator for crmd. Opens N TLS connections, logs each in
 * as a seeded user (crmctl seed --logins FILE), keeps `depth` requests of
 * one mix in flight on each for a fixed time, and prints throughput and
 * exact latency percentiles (every latency is kept and sorted).
 *
 * Requests are drawn from FILE.sample, the sample customers crmctl seed
 * writes: ids for CustomerGet (customers the logged-in consultant owns, or
 * their store's pool), the last 4 digits of phones, and names, some with one
 * character changed, for fuzzy search; relations the consultant owns, to
 * record follow-ups on. Connections that log in as the same user draw from
 * disjoint shares of that user's relations, and a connection never has two
 * follow-ups of one relation in flight: each write reads the relation's
 * version first, and two at once would conflict.
 *
 * With --pgbench-script it instead prints a pgbench script that runs the
 * same SQL statement crmd runs for the mix (server/stmts.c), with
 * parameters drawn from the same distribution; ops/bench compares the two.
 *
 * With --probe it instead times a fixed piece of CPU work (SHA-256 of 32 MiB,
 * five times) and prints the median: ops/bench runs it before every run, so
 * that a host which slowed the cores shows as a slow probe.
 *
 * One thread per connection: the client library is synchronous per
 * connection and each connection has its own event loop. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "crmclient.h"
#include "textcheck.h"

#define MAX_DEPTH 256
#define RECV_TIMEOUT_MS 30000
#define LIST_ROWS 20
#define SCRIPT_VALUES 500

enum mix { MIX_GET, MIX_PHONE, MIX_NAME, MIX_FILTER, MIX_FOLLOWUP, MIX_TASKS, MIX_MIXED };
static const char *const mix_names[] = {"get", "phone", "name", "filter", "followup", "tasks",
					"mixed"};
/* What one follow-up of the followup mix says, and the next task it sets. */
#define FOLLOWUP_CONTENT "电话回访，介绍了新到现车，客户考虑中"
#define FOLLOWUP_FEEDBACK "考虑中"
#define NEXT_PURPOSE "回访客户考虑结果"
#define NEXT_DUE_MS (2 * 86400000LL)
#define TASK_ROWS 200 /* crm tasks' default */

struct sample {
	char id[37];
	char store[16];
	char owner[48];
	char phone[24];
	char name[64];
	char relation[37];       /* the relation at `store`; "" in an older sample */
};

struct login {
	char user[64], password[128], role[32], store[16];
	char token[80];          /* after the first login */
	int *own;                /* sample indexes this user may get */
	int nown;
	int *mine;               /* sample indexes of relations this user owns */
	int nmine;
	int users;               /* connections logged in as this user */
};

/* Replies are unpacked into one block, reused once every piece of the
 * replies in it has been freed. protobuf-c allocates each string and
 * message of a reply on its own (about 5,000 pieces for a page of 200
 * tasks), and malloc and free of those were about half of this program's
 * CPU, taken from the cores it shares with the server it measures. */
struct spill {
	struct spill *next;
	_Alignas(max_align_t) unsigned char data[];
};

struct arena {
	ProtobufCAllocator pa;   /* pa.allocator_data is the arena */
	unsigned char *block;
	size_t cap, used;
	size_t live;             /* pieces handed out and not freed */
	size_t round;            /* bytes handed out since the block was last empty */
	struct spill *spill;     /* pieces that did not fit in the block */
};

static void *arena_alloc(void *data, size_t n)
{
	struct arena *a = data;
	size_t m = (n + 15) & ~(size_t)15;
	a->round += m;
	if (a->cap - a->used >= m) {
		void *p = a->block + a->used;
		a->used += m;
		a->live++;
		return p;
	}
	struct spill *s = malloc(sizeof *s + m);
	if (!s)
		return NULL;
	s->next = a->spill;
	a->spill = s;
	a->live++;
	return s->data;
}

static void arena_release(struct arena *a)
{
	while (a->spill) {
		struct spill *s = a->spill;
		a->spill = s->next;
		free(s);
	}
}

static void arena_free(void *data, void *p)
{
	struct arena *a = data;
	(void)p;
	if (--a->live > 0)
		return;
	arena_release(a);
	/* Next time, room for all that this round needed. */
	if (a->round > a->cap) {
		free(a->block);
		a->cap = a->round * 2;
		a->block = malloc(a->cap);
		if (!a->block)
			a->cap = 0;
	}
	a->used = 0;
	a->round = 0;
}

static void arena_init(struct arena *a)
{
	memset(a, 0, sizeof *a);
	a->pa.alloc = arena_alloc;
	a->pa.free = arena_free;
	a->pa.allocator_data = a;
}

static void arena_destroy(struct arena *a)
{
	arena_release(a);
	free(a->block);
}

struct worker {
	pthread_t thread;
	int index;
	struct crmc *c;
	struct arena arena;      /* of c's replies */
	struct login *login;
	uint64_t rng;
	int share;               /* of the login's relations: mine[k], k % users == share */
	/* results */
	uint32_t *lat_us;
	uint32_t *sent_us;       /* since the measured window opened, for --timeline */
	size_t nlat, caplat;
	uint64_t errors, done_total;
	char first_error[640];
};

static struct {
	const char *server, *ca, *logins, *sample_path, *mix_name, *role;
	int connections, depth;
	double duration_s, warmup_s;
	enum mix mix;
	uint64_t seed;
	struct sample *samples;
	int nsamples;
	struct login *logins_v;
	int nlogins;
	double t_start, t_measure, t_end;
	atomic_int failed_workers;
} g = {
	.connections = 64, .depth = 1, .duration_s = 10, .warmup_s = 2, .mix = MIX_MIXED,
	.seed = 1, .role = "consultant",
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(next_rand(s) % n) : 0;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("crm-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ------------------------------------------------------------ input files */

static void read_logins(void)
{
	FILE *f = fopen(g.logins, "r");
	if (!f)
		die("cannot read the logins file %s: %s", g.logins, strerror(errno));
	char line[512];
	int cap = 0;
	while (fgets(line, sizeof line, f)) {
		struct login l = {0};
		if (sscanf(line, "%63s %127s %31s %15s", l.user, l.password, l.role, l.store) != 4 ||
		    l.user[0] == '#' || strcmp(l.role, g.role) != 0)
			continue;
		if (g.nlogins == cap) {
			cap = cap ? cap * 2 : 64;
			g.logins_v = realloc(g.logins_v, (size_t)cap * sizeof *g.logins_v);
			if (!g.logins_v)
				die("out of memory");
		}
		g.logins_v[g.nlogins++] = l;
	}
	fclose(f);
	if (g.nlogins == 0)
		die("no %s in %s (crmctl seed --logins writes it)", g.role, g.logins);
}

static void read_samples(void)
{
	FILE *f = fopen(g.sample_path, "r");
	if (!f)
		die("cannot read the sample file %s: %s (crmctl seed writes it next to the logins)",
		    g.sample_path, strerror(errno));
	char line[512];
	int cap = 0;
	while (fgets(line, sizeof line, f)) {
		struct sample s = {0};
		if (sscanf(line, "%36s %15s %47s %23s %63s %36s", s.id, s.store, s.owner, s.phone,
			   s.name, s.relation) < 5)
			continue;
		if (g.nsamples == cap) {
			cap = cap ? cap * 2 : 4096;
			g.samples = realloc(g.samples, (size_t)cap * sizeof *g.samples);
			if (!g.samples)
				die("out of memory");
		}
		g.samples[g.nsamples++] = s;
	}
	fclose(f);
	if (g.nsamples == 0)
		die("%s holds no sample customers", g.sample_path);
	/* What each login may read: its own customers and its store's pool
	 * (consultants), or everything of its store (managers), or all. */
	for (int i = 0; i < g.nlogins; i++) {
		struct login *l = &g.logins_v[i];
		l->own = calloc((size_t)g.nsamples, sizeof *l->own);
		l->mine = calloc((size_t)g.nsamples, sizeof *l->mine);
		if (!l->own || !l->mine)
			die("out of memory");
		for (int k = 0; k < g.nsamples; k++) {
			const struct sample *s = &g.samples[k];
			bool visible;
			if (!strcmp(l->role, "consultant"))
				visible = !strcmp(s->store, l->store) &&
					  (!strcmp(s->owner, l->user) || !strcmp(s->owner, "-"));
			else if (strcmp(l->store, "-") != 0)
				visible = !strcmp(s->store, l->store);
			else
				visible = true;
			if (visible)
				l->own[l->nown++] = k;
			if (s->relation[0] && !strcmp(s->store, l->store) && !strcmp(s->owner, l->user))
				l->mine[l->nmine++] = k;
		}
	}
}

/* ------------------------------------------------------------ request drawing */

/* A name like the seeded ones: a sample name, half of the time with one
 * character after the surname swapped for that of another sample name
 * (王晓明 -> 王晓敏), as a person half-remembers it. UTF-8: CJK
 * characters are 3 bytes. */
static void draw_name(uint64_t *rng, char *out, size_t cap)
{
	const char *a = g.samples[below(rng, (uint32_t)g.nsamples)].name;
	snprintf(out, cap, "%s", a);
	size_t len = strlen(out);
	if (len < 6 || len % 3 != 0 || below(rng, 2) == 0)
		return;
	const char *b = g.samples[below(rng, (uint32_t)g.nsamples)].name;
	size_t blen = strlen(b);
	if (blen < 6 || blen % 3 != 0)
		return;
	size_t pos = 3 * (1 + below(rng, (uint32_t)(len / 3 - 1)));
	size_t from = 3 * (1 + below(rng, (uint32_t)(blen / 3 - 1)));
	memcpy(out + pos, b + from, 3);
}

static void draw_suffix(uint64_t *rng, char out[5])
{
	const char *p = g.samples[below(rng, (uint32_t)g.nsamples)].phone;
	size_t n = strlen(p);
	snprintf(out, 5, "%s", n >= 4 ? p + n - 4 : "0000");
}

static const char *const filter_levels[][3] = {{"H", "A", NULL}, {"B", NULL, NULL},
					       {"C", NULL, NULL}, {"H", "A", "B"}};

static const char *draw_get_id(uint64_t *rng, const struct login *l)
{
	if (l->nown)
		return g.samples[l->own[below(rng, (uint32_t)l->nown)]].id;
	return g.samples[below(rng, (uint32_t)g.nsamples)].id;
}

/* A relation of the worker's share of its login's, not one of the
 * `nbusy` in flight (when the share allows). */
static const char *draw_relation(struct worker *w, char (*busy)[37], int nbusy)
{
	const struct login *l = w->login;
	int n = (l->nmine - w->share + l->users - 1) / l->users;
	const char *rel = NULL;
	for (int tries = 0; tries < 16; tries++) {
		int k = w->share + l->users * (int)below(&w->rng, (uint32_t)n);
		rel = g.samples[l->mine[k]].relation;
		bool taken = false;
		for (int i = 0; i < nbusy && !taken; i++)
			taken = !strcmp(busy[i], rel);
		if (!taken)
			break;
	}
	return rel;
}

/* Storage for one request's fields, alive until it is packed. */
struct req_buf {
	Crm__Envelope env;
	Crm__CustomerGet get;
	Crm__CustomerList list;
	Crm__FollowupAdd add;
	Crm__Followup followup;
	Crm__NextTask next;
	Crm__TaskList tasks;
	char text[64];
	char id[37];
	char *levels[3];
};

static enum mix pick_kind(uint64_t *rng)
{
	return g.mix == MIX_MIXED ? (enum mix)below(rng, 4) : g.mix;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `busy`: relations of follow-ups in flight on this connection. */
static void build_request(struct worker *w, struct req_buf *b, enum mix kind, char (*busy)[37],
			  int nbusy)
{
	crm__envelope__init(&b->env);
	if (kind == MIX_FOLLOWUP) {
		crm__followup_add__init(&b->add);
		crm__followup__init(&b->followup);
		crm__next_task__init(&b->next);
		uuid_v7_new(b->id);
		snprintf(b->text, sizeof b->text, "%s", draw_relation(w, busy, nbusy));
		b->followup.id = b->id;
		b->followup.relation_id = b->text;
		b->followup.method = "phone";
		b->followup.type = "needs_analysis";
		b->followup.content = FOLLOWUP_CONTENT;
		b->followup.feedback = FOLLOWUP_FEEDBACK;
		b->next.due_at = wall_ms() + NEXT_DUE_MS;
		b->next.method = "phone";
		b->next.purpose = NEXT_PURPOSE;
		b->add.followup = &b->followup;
		b->add.next = &b->next;
		b->env.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
		b->env.followup_add = &b->add;
		return;
	}
	if (kind == MIX_TASKS) {
		crm__task_list__init(&b->tasks);
		b->tasks.window = "today";
		b->tasks.limit = TASK_ROWS;
		b->env.body_case = CRM__ENVELOPE__BODY_TASK_LIST;
		b->env.task_list = &b->tasks;
		return;
	}
	if (kind == MIX_GET) {
		crm__customer_get__init(&b->get);
		snprintf(b->text, sizeof b->text, "%s", draw_get_id(&w->rng, w->login));
		b->get.id = b->text;
		b->env.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
		b->env.customer_get = &b->get;
		return;
	}
	crm__customer_list__init(&b->list);
	b->list.page_size = LIST_ROWS;
	b->list.limit = LIST_ROWS;
	if (kind == MIX_PHONE) {
		draw_suffix(&w->rng, b->text);
		b->list.phone = b->text;
	} else if (kind == MIX_NAME) {
		draw_name(&w->rng, b->text, sizeof b->text);
		b->list.name = b->text;
		b->list.name_match = "fuzzy";
	} else {
		const char *const *lv = filter_levels[below(&w->rng, 4)];
		size_t n = 0;
		while (n < 3 && lv[n]) {
			b->levels[n] = (char *)lv[n];
			n++;
		}
		b->list.levels = b->levels;
		b->list.n_levels = n;
		b->list.contacted_within_days = 30;
		b->list.model = "suv";
	}
	b->env.credit = 2;
	b->env.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	b->env.customer_list = &b->list;
}

/* ------------------------------------------------------------ connections */

static struct crmc *open_conn(struct login *l)
{
	struct crmc_options opt = {.server = g.server, .ca_file = g.ca,
				   .client_name = "crm-bench", .timeout_ms = 20000};
	char err[512];
	Crm__Code code;
	struct crmc *c = crmc_connect(&opt, &code, err, sizeof err);
	if (!c)
		die("cannot connect to %s: %s", g.server, err);
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	Crm__LoginRequest login = CRM__LOGIN_REQUEST__INIT;
	Crm__ResumeRequest resume = CRM__RESUME_REQUEST__INIT;
	if (l->token[0]) {
		resume.token = l->token;
		req.body_case = CRM__ENVELOPE__BODY_RESUME;
		req.resume = &resume;
	} else {
		login.username = l->user;
		login.password = l->password;
		req.body_case = CRM__ENVELOPE__BODY_LOGIN;
		req.login = &login;
	}
	Crm__Envelope *resp = crmc_call(c, &req, 60000, err, sizeof err);
	if (!resp)
		die("logging in as %s: %s", l->user, err);
	if (crmc_status(resp) != CRM__CODE__OK)
		die("logging in as %s: %s: %s", l->user, crmc_code_name(crmc_status(resp)),
		    crmc_status_message(resp));
	if (!l->token[0]) {
		if (resp->body_case != CRM__ENVELOPE__BODY_LOGIN_REPLY)
			die("logging in as %s: unexpected reply", l->user);
		snprintf(l->token, sizeof l->token, "%s", resp->login_reply->token);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return c;
}

/* ------------------------------------------------------------ the run */

static void record(struct worker *w, double sent_at, double done_at)
{
	if (w->nlat == w->caplat) {
		w->caplat = w->caplat ? w->caplat * 2 : 65536;
		w->lat_us = realloc(w->lat_us, w->caplat * sizeof *w->lat_us);
		w->sent_us = realloc(w->sent_us, w->caplat * sizeof *w->sent_us);
		if (!w->lat_us || !w->sent_us)
			die("out of memory");
	}
	double us = (done_at - sent_at) * 1e6;
	w->lat_us[w->nlat] = us > 4e9 ? 4000000000u : (uint32_t)us;
	w->sent_us[w->nlat] = (uint32_t)((sent_at - g.t_measure) * 1e6);
	w->nlat++;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	double sent_at[MAX_DEPTH];
	uint64_t ids[MAX_DEPTH];
	char busy[MAX_DEPTH][37]; /* the followup mix's relation of each in flight */
	int inflight = 0;
	char err[512];
	/* Wait for the common start so warm-up covers every connection. */
	while (now_s() < g.t_start) {
		struct timespec nap = {0, 1000000};
		nanosleep(&nap, NULL);
	}
	for (;;) {
		double t = now_s();
		bool sending = t < g.t_end;
		while (sending && inflight < g.depth) {
			struct req_buf b;
			build_request(w, &b, pick_kind(&w->rng), busy, inflight);
			busy[inflight][0] = '\0';
			if (b.env.body_case == CRM__ENVELOPE__BODY_FOLLOWUP_ADD)
				memcpy(busy[inflight], b.text, sizeof busy[inflight] - 1);
			busy[inflight][sizeof busy[inflight] - 1] = '\0';
			ids[inflight] = crmc_send(w->c, &b.env);
			sent_at[inflight] = now_s();
			inflight++;
		}
		if (inflight == 0)
			break;
		if (!crmc_flush(w->c)) {
			snprintf(w->first_error, sizeof w->first_error, "connection lost while sending");
			atomic_fetch_add(&g.failed_workers, 1);
			break;
		}
		Crm__Envelope *env = crmc_recv(w->c, RECV_TIMEOUT_MS, err, sizeof err);
		if (!env) {
			snprintf(w->first_error, sizeof w->first_error, "%s", err);
			atomic_fetch_add(&g.failed_workers, 1);
			break;
		}
		double done_at = now_s();
		int slot = -1;
		for (int i = 0; i < inflight; i++)
			if (ids[i] == env->id)
				slot = i;
		if (slot >= 0 && !env->more) {
			if (crmc_status(env) != CRM__CODE__OK) {
				w->errors++;
				if (!w->first_error[0])
					snprintf(w->first_error, sizeof w->first_error, "%s: %s",
						 crmc_code_name(crmc_status(env)),
						 crmc_status_message(env));
			}
			/* Every request sent in the measured window counts, however
			 * late its answer, so the slow ones at the end are not lost. */
			if (sent_at[slot] >= g.t_measure)
				record(w, sent_at[slot], done_at);
			w->done_total++;
			inflight--;
			ids[slot] = ids[inflight];
			sent_at[slot] = sent_at[inflight];
			memcpy(busy[slot], busy[inflight], sizeof busy[slot]);
		}
		crm__envelope__free_unpacked(env, &w->arena.pa);
	}
	return NULL;
}

/* --timeline: every measured request, connection by connection, so that a tail can
 * be placed in time (a stall hits every connection at once). */
static bool write_timeline(const char *path, const struct worker *w)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "crm-bench: cannot write %s: %s\n", path, strerror(errno));
		return false;
	}
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	double opened = (double)wall.tv_sec + wall.tv_nsec / 1e9 - (now_s() - g.t_measure);
	fprintf(f, "# measured window opened at %.3f (Unix time)\n", opened);
	fputs("sent_ms latency_ms connection\n", f);
	for (int i = 0; i < g.connections; i++)
		for (size_t k = 0; k < w[i].nlat; k++)
			fprintf(f, "%.3f %.3f %d\n", w[i].sent_us[k] / 1000.0,
				w[i].lat_us[k] / 1000.0, i);
	if (fclose(f) != 0) {
		fprintf(stderr, "crm-bench: writing %s: %s\n", path, strerror(errno));
		return false;
	}
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The smallest latency with at least p of all at or below it. */
static double percentile_ms(const uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t rank = (size_t)(p * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1] / 1000.0;
}

/* ------------------------------------------------------------ pgbench script */

static void sql_text_array(FILE *out, char **values, int n)
{
	fputs("(ARRAY[", out);
	for (int i = 0; i < n; i++)
		fprintf(out, "%s'%s'", i ? "," : "", values[i]);
	fputs("])", out);
}

/* The statement crmd runs for `group` follow-ups that arrive together
 * (h_followup.c, STMT_FOLLOWUP_ADD_BATCH, sql/0047): those of `group`
 * sessions in a row from client_id * group on, each on a relation its user
 * owns, with its next task; crmd's 13 values an item, as text. */
static void followup_group_script(FILE *out, int group, const char *sid_array, char **values,
				  int n, int nsid)
{
	fputs("SELECT b.* FROM (SELECT crm.ms(clock_timestamp()) AS now_ms) i,"
	      " crm.followup_add_batch(ARRAY[", out);
	for (int j = 0; j < group; j++) {
		char k[96];
		snprintf(k, sizeof k, "(:client_id::int * %d + %d) %% %d", group, j, nsid);
		fprintf(out, "%s%s[%s + 1], crm.uuid_v7(clock_timestamp())::text, ", j ? ", " : "",
			sid_array, k);
		sql_text_array(out, values, n);
		fprintf(out,
			"[(%s) * %d + :v::int], '', 'phone', 'needs_analysis', i.now_ms::text,"
			" 'pgbench %s', '%s', (i.now_ms + %lld)::text, 'phone', '%s',"
			" i.now_ms::text",
			k, SCRIPT_VALUES, FOLLOWUP_CONTENT, FOLLOWUP_FEEDBACK, (long long)NEXT_DUE_MS,
			NEXT_PURPOSE);
	}
	fputs("]) b;\n", out);
}

/* The SQL crmd runs for the mix (server/stmts.c STMT_CUSTOMER_GET and
 * STMT_CUSTOMER_LIST, in the parameters h_query.c passes), as a pgbench
 * script. Sessions come from `sessions` ("username session-id" lines, in
 * the order crm-bench uses the logins); pgbench client k runs as session
 * k mod n, as crm-bench's connection k logs in as login k mod n. */
static void pgbench_script(const char *sessions_path, int group)
{
	FILE *f = fopen(sessions_path, "r");
	if (!f)
		die("cannot read %s: %s", sessions_path, strerror(errno));
	char line[256], user[64], sid[64];
	char *sids[1024];
	struct login *users[1024];
	int nsid = 0;
	while (nsid < 1024 && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%63s %63s", user, sid) != 2)
			continue;
		struct login *l = NULL;
		for (int i = 0; i < g.nlogins && !l; i++)
			if (!strcmp(g.logins_v[i].user, user))
				l = &g.logins_v[i];
		if (!l)
			die("%s: user %s is not in %s", sessions_path, user, g.logins);
		users[nsid] = l;
		sids[nsid++] = strdup(sid);
	}
	fclose(f);
	if (nsid == 0)
		die("%s names no sessions", sessions_path);
	uint64_t rng = g.seed * 7919 + 17;
	size_t nvalues = (size_t)nsid * SCRIPT_VALUES;
	char (*store)[64] = calloc(nvalues, sizeof *store);
	char **values = calloc(nvalues, sizeof *values);
	if (!store || !values)
		die("out of memory");
	int n = 0;
	FILE *out = stdout;
	fprintf(out, "-- crm-bench --pgbench-script %s: the SQL crmd runs for this mix\n",
		mix_names[g.mix]);
	fprintf(out, "\\set v random(1, %d)\n", SCRIPT_VALUES);
	/* pgbench has no per-client constant, so the session is drawn as
	 * client_id mod n through :client_id. */
	char sid_expr[64 * 1024];
	size_t o = (size_t)snprintf(sid_expr, sizeof sid_expr, "(ARRAY[");
	for (int i = 0; i < nsid; i++)
		o += (size_t)snprintf(sid_expr + o, sizeof sid_expr - o, "%s'%s'", i ? "," : "",
				      sids[i]);
	char sid_array[64 * 1024];
	snprintf(sid_array, sizeof sid_array, "%.*s])", (int)o, sid_expr);
	snprintf(sid_expr + o, sizeof sid_expr - o, "])[:client_id::int %% %d + 1]::uuid", nsid);
	switch (g.mix) {
	case MIX_GET:
		/* ids per session: row (client mod n), column v */
		for (int s = 0; s < nsid; s++)
			for (int k = 0; k < SCRIPT_VALUES; k++, n++) {
				snprintf(store[n], sizeof store[n], "%s", draw_get_id(&rng, users[s]));
				values[n] = store[n];
			}
		fprintf(out,
			"SELECT x.outcome, x.kind, x.message, (x.cu).*, (x.rel).*, (x.col).* FROM"
			" crm.customer_get(%s, ", sid_expr);
		sql_text_array(out, values, n);
		fprintf(out, "[(:client_id::int %% %d) * %d + :v::int]::text) x;\n", nsid, SCRIPT_VALUES);
		break;
	case MIX_PHONE:
	case MIX_NAME:
		for (int k = 0; k < SCRIPT_VALUES; k++, n++) {
			if (g.mix == MIX_PHONE)
				draw_suffix(&rng, store[n]);
			else
				draw_name(&rng, store[n], sizeof store[n]);
			values[n] = store[n];
		}
		fprintf(out, "SELECT * FROM crm.customer_query(%s, ", sid_expr);
		if (g.mix == MIX_NAME) {
			sql_text_array(out, values, n);
			fputs("[:v::int]::text, 'fuzzy'::text, NULL::text, NULL::text,", out);
		} else {
			fputs("NULL::text, NULL::text, NULL::text, ", out);
			sql_text_array(out, values, n);
			fputs("[:v::int]::text,", out);
		}
		fprintf(out, " NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,"
			     " false, 0, false, NULL::text, NULL::text, false, NULL::text, %d);\n",
			LIST_ROWS + 1);
		break;
	case MIX_FOLLOWUP:
		/* The one statement crmd runs (h_followup.c, sql/0030): the
		 * database encodes the outbox records itself. */
		for (int s = 0; s < nsid; s++) {
			if (users[s]->nmine == 0)
				die("%s owns none of the sampled relations", users[s]->user);
			for (int k = 0; k < SCRIPT_VALUES; k++, n++) {
				int idx = users[s]->mine[below(&rng, (uint32_t)users[s]->nmine)];
				snprintf(store[n], sizeof store[n], "%s", g.samples[idx].relation);
				values[n] = store[n];
			}
		}
		if (group > 1) {
			followup_group_script(out, group, sid_array, values, n, nsid);
			break;
		}
		fprintf(out,
			"SELECT x.outcome, x.kind, (x.fu).*, (x.rel).*, (x.task).* FROM"
			" (SELECT crm.uuid_v7(clock_timestamp())::text AS fid,"
			" crm.ms(clock_timestamp()) AS now_ms, ");
		sql_text_array(out, values, n);
		fprintf(out, "[(:client_id::int %% %d) * %d + :v::int]::text AS rid) i,"
			     " crm.followup_add(%s, i.fid, i.rid, ''::text, 'phone'::text,"
			     " 'needs_analysis'::text, i.now_ms, 'pgbench %s'::text, '%s'::text,"
			     " i.now_ms + %lld, 'phone'::text, '%s'::text, i.now_ms, NULL::bigint,"
			     " NULL::bigint, NULL::bytea) x;\n",
			nsid, SCRIPT_VALUES, sid_expr, FOLLOWUP_CONTENT, FOLLOWUP_FEEDBACK,
			(long long)NEXT_DUE_MS, NEXT_PURPOSE);
		break;
	case MIX_TASKS:
		fprintf(out,
			"SELECT * FROM crm.task_list(%s, 'today'::text, ''::text, ''::text, ''::text,"
			" ''::text, crm.ms(now()), %d);\n",
			sid_expr, TASK_ROWS);
		break;
	default: {
		fputs("\\set l random(1, 4)\n", out);
		fprintf(out, "SELECT * FROM crm.customer_query(%s, NULL::text, NULL::text,"
			     " NULL::text, NULL::text, (ARRAY['H,A','B','C','H,A,B'])[:l::int]::text,"
			     " NULL::text, 'suv'::text, NULL::text, NULL::text, false, 30, false,"
			     " NULL::text, NULL::text, false, NULL::text, %d);\n",
			sid_expr, LIST_ROWS + 1);
		break;
	}
	}
	for (int i = 0; i < nsid; i++)
		free(sids[i]);
	free(store);
	free(values);
}

/* ------------------------------------------------------------ host probe */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The same work every time; only the host's speed changes its time. */
static int probe(void)
{
	enum { BLOCK = 1 << 20, BLOCKS = 32, SAMPLES = 5 };
	unsigned char *buf = malloc(BLOCK), md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	double ms[SAMPLES];
	if (!buf)
		die("out of memory");
	for (size_t i = 0; i < BLOCK; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 24);
	for (int s = 0; s < SAMPLES; s++) {
		double t0 = now_s();
		for (int b = 0; b < BLOCKS; b++) {
			if (!EVP_Digest(buf, BLOCK, md, &mdlen, EVP_sha256(), NULL))
				die("SHA-256 failed");
			buf[b] ^= md[0]; /* each block depends on the last digest */
		}
		ms[s] = (now_s() - t0) * 1000;
	}
	free(buf);
	qsort(ms, SAMPLES, sizeof ms[0], cmp_double);
	printf("probe_ms=%.1f probe_min_ms=%.1f probe_max_ms=%.1f\n", ms[SAMPLES / 2], ms[0],
	       ms[SAMPLES - 1]);
	return 0;
}

/* ------------------------------------------------------------ main */

static const char usage_text[] =
	"usage: crm-bench --server H:P --ca FILE --logins FILE [options]\n"
	"  --sample FILE        sample customers (default: LOGINS.sample)\n"
	"  --connections N      TLS connections, one thread each (default 64)\n"
	"  --depth D            requests in flight per connection (default 1, max 256)\n"
	"  --duration S         measured seconds, after the warm-up (default 10)\n"
	"  --warmup S           seconds run but not measured (default 2)\n"
	"  --mix M              get | phone | name | filter | followup | tasks | mixed\n"
	"                       (default mixed)\n"
	"  --role R             which logins to use (default consultant)\n"
	"  --seed S             random seed for the requests (default 1)\n"
	"  --pgbench-script SESSIONS   print the pgbench script of the mix instead;\n"
	"                       SESSIONS has \"username session-id\" lines\n"
	"  --group N            with --pgbench-script and --mix followup: N follow-ups\n"
	"                       of N sessions in one statement, as crmd records those\n"
	"                       that arrive together (1..64, default 1)\n"
	"  --timeline FILE      also write every measured request to FILE, one line\n"
	"                       each: ms since the measured window opened, when it\n"
	"                       was sent, its latency in ms, and its connection\n"
	"  --probe              time a fixed piece of CPU work (SHA-256 of 32 MiB)\n"
	"                       instead: probe_ms=MEDIAN of 5; the host's speed\n"
	"Mixes: get = CustomerGet of a customer the user may see; phone = list by the\n"
	"last 4 digits of a seeded phone; name = fuzzy name search; filter = contacted\n"
	"within 30 days, intended model suv, a level filter. Lists ask for 20 rows.\n"
	"followup = record a follow-up with its next task (due in 2 days) on a relation\n"
	"the user owns; tasks = crm tasks: the user's open tasks due by the end of today\n"
	"(overdue ones too), 200 at most; mixed = get, phone, name and filter at random.\n";

int main(int argc, char **argv)
{
	const char *script_sessions = NULL, *timeline = NULL;
	int group = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(a, "--probe"))
			return probe();
		if (i + 1 >= argc) {
			fprintf(stderr, "crm-bench: %s needs a value\n%s", a, usage_text);
			return 2;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--server"))
			g.server = v;
		else if (!strcmp(a, "--ca"))
			g.ca = v;
		else if (!strcmp(a, "--logins"))
			g.logins = v;
		else if (!strcmp(a, "--sample"))
			g.sample_path = v;
		else if (!strcmp(a, "--connections"))
			g.connections = atoi(v);
		else if (!strcmp(a, "--depth"))
			g.depth = atoi(v);
		else if (!strcmp(a, "--duration"))
			g.duration_s = atof(v);
		else if (!strcmp(a, "--warmup"))
			g.warmup_s = atof(v);
		else if (!strcmp(a, "--role"))
			g.role = v;
		else if (!strcmp(a, "--seed"))
			g.seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--pgbench-script"))
			script_sessions = v;
		else if (!strcmp(a, "--timeline"))
			timeline = v;
		else if (!strcmp(a, "--group"))
			group = atoi(v);
		else if (!strcmp(a, "--mix")) {
			g.mix_name = v;
			size_t k = 0;
			while (k < sizeof mix_names / sizeof mix_names[0] && strcmp(mix_names[k], v))
				k++;
			if (k == sizeof mix_names / sizeof mix_names[0]) {
				fprintf(stderr, "crm-bench: --mix must be get, phone, name, filter,"
						" followup, tasks or mixed, not %s\n", v);
				return 2;
			}
			g.mix = (enum mix)k;
		} else {
			fprintf(stderr, "crm-bench: unknown option %s\n%s", a, usage_text);
			return 2;
		}
	}
	if (!g.logins || (!script_sessions && (!g.server || !g.ca))) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (g.connections < 1 || g.connections > 4096 || g.depth < 1 || g.depth > MAX_DEPTH ||
	    g.duration_s <= 0 || g.warmup_s < 0) {
		fprintf(stderr, "crm-bench: connections 1..4096, depth 1..%d, duration > 0\n",
			MAX_DEPTH);
		return 2;
	}
	if (group < 1 || group > 64 || (group > 1 && (!script_sessions || g.mix != MIX_FOLLOWUP))) {
		fputs("crm-bench: --group takes 1..64, with --pgbench-script and --mix followup\n",
		      stderr);
		return 2;
	}
	char sample_default[4096];
	if (!g.sample_path) {
		snprintf(sample_default, sizeof sample_default, "%s.sample", g.logins);
		g.sample_path = sample_default;
	}
	read_logins();
	read_samples();
	if (script_sessions) {
		pgbench_script(script_sessions, group);
		return 0;
	}

	struct worker *w = calloc((size_t)g.connections, sizeof *w);
	if (!w)
		die("out of memory");
	double t0 = now_s();
	for (int i = 0; i < g.connections; i++) {
		w[i].index = i;
		w[i].login = &g.logins_v[i % g.nlogins];
		w[i].share = w[i].login->users++;
		w[i].rng = g.seed * 1000003 + (uint64_t)i;
	}
	for (int i = 0; i < g.connections && g.mix == MIX_FOLLOWUP; i++)
		if (w[i].login->nmine <= w[i].share)
			die("%s owns %d of the sampled relations, too few for %d connections%s",
			    w[i].login->user, w[i].login->nmine, w[i].login->users,
			    g.nsamples && !g.samples[0].relation[0]
				    ? " (the sample has no relation ids: seed again with this crmctl)"
				    : "");
	for (int i = 0; i < g.connections; i++) {
		w[i].c = open_conn(w[i].login);
		arena_init(&w[i].arena);
		crmc_set_allocator(w[i].c, &w[i].arena.pa);
	}
	fprintf(stderr, "crm-bench: %d connections logged in (%d distinct %s users) in %.1f s\n",
		g.connections, g.connections < g.nlogins ? g.connections : g.nlogins, g.role,
		now_s() - t0);
	g.t_start = now_s() + 0.2;
	g.t_measure = g.t_start + g.warmup_s;
	g.t_end = g.t_measure + g.duration_s;
	for (int i = 0; i < g.connections; i++)
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
			die("cannot start a thread");
	size_t total = 0;
	uint64_t errors = 0;
	const char *first_error = NULL;
	for (int i = 0; i < g.connections; i++) {
		pthread_join(w[i].thread, NULL);
		total += w[i].nlat;
		errors += w[i].errors;
		if (!first_error && w[i].first_error[0])
			first_error = w[i].first_error;
	}
	uint32_t *all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		die("out of memory");
	size_t o = 0;
	for (int i = 0; i < g.connections; i++) {
		memcpy(all + o, w[i].lat_us, w[i].nlat * sizeof *all);
		o += w[i].nlat;
	}
	qsort(all, total, sizeof *all, cmp_u32);
	double ops = (double)total / g.duration_s;
	printf("mix=%s connections=%d depth=%d duration_s=%.0f requests=%zu errors=%" PRIu64
	       " ops_s=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
	       mix_names[g.mix], g.connections, g.depth, g.duration_s, total, errors, ops,
	       percentile_ms(all, total, 0.50), percentile_ms(all, total, 0.90),
	       percentile_ms(all, total, 0.99), percentile_ms(all, total, 0.999),
	       total ? all[total - 1] / 1000.0 : 0);
	if (first_error)
		fprintf(stderr, "crm-bench: first error: %s\n", first_error);
	if (timeline && !write_timeline(timeline, w))
		return 1;
	int failed = atomic_load(&g.failed_workers);
	if (failed)
		fprintf(stderr, "crm-bench: %d connections failed\n", failed);
	for (int i = 0; i < g.connections; i++) {
		crmc_close(w[i].c);
		arena_destroy(&w[i].arena);
		free(w[i].lat_us);
		free(w[i].sent_us);
	}
	free(all);
	free(w);
	for (int i = 0; i < g.nlogins; i++) {
		free(g.logins_v[i].own);
		free(g.logins_v[i].mine);
	}
	free(g.logins_v);
	free(g.samples);
	return failed || errors ? 1 : 0;
}
