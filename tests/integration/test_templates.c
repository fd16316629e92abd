/* Message templates, sending them, and the compliance report (issue 5;
 * sql/0022) over TLS against PostgreSQL: placeholders checked at save and
 * filled with Chinese names and store names; a placeholder without a value
 * is refused, naming it; a consultant renders only for relations they may
 * read; a send writes exactly one spool file with the rendered text and
 * the real phone, records one follow-up of the template's channel with its
 * outbox entries, and a retry sends nothing more; the "none" sender
 * refuses and records nothing; compliance per person at a fixed clock.
 *
 * Sends go to crmds started here (it_crmd_spawn), each with a spool folder
 * of its own under $CRM_TEST_DIR; the rest to the fixture's crmd. People
 * made here (tpl.*) work at BJ01 and SH01. */
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "templates-test-pw-1"
#define MINUTE_MS 60000LL
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

static PGconn *db;
/* Made per run: the compliance test counts every task this person has. */
static char consultant3[64];

/* ------------------------------------------------------------ helpers */

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

static const char *field_of(const Crm__Envelope *e)
{
	return e && e->status && e->status->field ? e->status->field : "";
}

static const char *message_of(const Crm__Envelope *e)
{
	return e ? crmc_status_message(e) : "";
}

static int64_t now_ms_(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct crmc *login_to(const char *server, const char *user, const char *password)
{
	struct crmc *c = server ? it_connect_cert(server, NULL, NULL) : it_connect();
	if (c && it_login_as(c, user, password) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

/* A customer and its relation at the caller's store, owned by the caller;
 * `model` NULL: no intended model. */
static bool make_customer(struct crmc *c, const char *name, const char *model, char cid[37],
			  char rid[37], char phone[16])
{
	it_phone(phone);
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)name;
	cu.phone = phone;
	Crm__Intent in = CRM__INTENT__INIT;
	Crm__Intent *intents[] = {&in};
	in.model = (char *)model;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = (char *)"walk_in";
	if (model) {
		rel.intents = intents;
		rel.n_intents = 1;
	}
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "create %s: %s\n", name, message_of(e));
	it_free(e);
	return ok;
}

/* `base` made unique for this run (names are unique per scope, and a
 * rerun on the same database must not meet the last run's). Four at a
 * time. */
static const char *nm(const char *base)
{
	static char names[4][128];
	static int next;
	char *n = names[next++ % 4];
	snprintf(n, sizeof names[0], "%s-%d", base, (int)getpid());
	return n;
}

static Crm__Envelope *save_template(struct crmc *c, const char *id, uint64_t version,
				    const char *name, const char *channel, const char *body)
{
	Crm__MessageTemplate t = CRM__MESSAGE_TEMPLATE__INIT;
	t.id = (char *)id;
	t.name = (char *)(name ? nm(name) : "");
	t.channel = (char *)(channel ? channel : "");
	t.body = (char *)(body ? body : "");
	Crm__TemplateSave ts = CRM__TEMPLATE_SAVE__INIT;
	ts.template_ = &t;
	ts.version = version;
	char *fields[] = {(char *)"body"};
	if (version) {
		ts.fields = fields;
		ts.n_fields = 1;
	}
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_SAVE;
	req.template_save = &ts;
	return it_call(c, &req);
}

/* A new template; its id in `id`. */
static bool add_template(struct crmc *c, const char *name, const char *channel, const char *body,
			 char id[37])
{
	uuid_v7_new(id);
	Crm__Envelope *e = save_template(c, id, 0, name, channel, body);
	bool ok = code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_TEMPLATE_REPLY;
	if (!ok)
		fprintf(stderr, "  template %s refused: %s\n", name, message_of(e));
	it_free(e);
	return ok;
}

struct render_args {
	const char *template_id, *customer_id, *relation_id, *model;
	int64_t date;
	bool allow_blanks;
};

static void render_fill(Crm__TemplateRender *tr, const struct render_args *a)
{
	crm__template_render__init(tr);
	tr->template_id = (char *)a->template_id;
	tr->customer_id = (char *)(a->customer_id ? a->customer_id : "");
	tr->relation_id = (char *)(a->relation_id ? a->relation_id : "");
	tr->model = (char *)(a->model ? a->model : "");
	tr->date = a->date;
	tr->allow_blanks = a->allow_blanks;
}

static Crm__Envelope *render(struct crmc *c, const struct render_args *a)
{
	Crm__TemplateRender tr;
	render_fill(&tr, a);
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_RENDER;
	req.template_render = &tr;
	return it_call(c, &req);
}

static Crm__Envelope *send_message(struct crmc *c, const struct render_args *a, const char *followup_id)
{
	Crm__TemplateRender tr;
	render_fill(&tr, a);
	Crm__TemplateSend ts = CRM__TEMPLATE_SEND__INIT;
	ts.render = &tr;
	ts.followup_id = (char *)followup_id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_SEND;
	req.template_send = &ts;
	return it_call(c, &req);
}

static const char *rendered_text(const Crm__Envelope *e)
{
	if (code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_TEMPLATE_RENDERED) {
		fprintf(stderr, "  render refused: %s (%s)\n", message_of(e), field_of(e));
		return "";
	}
	return e->template_rendered->text;
}

/* 2030-01-DD HH:00 in Shanghai, unix ms. */
static int64_t shanghai_ms(int y, int mo, int d, int h)
{
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	return ((int64_t)timegm(&tm) - 8 * 3600) * 1000;
}

/* Files in `dir` whose names end in ".json" (and any other entry not
 * starting with "."), and whether `name` is among them. */
static int spool_files(const char *dir, const char *name, bool *found)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (found)
		*found = false;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		if (found && name && !strcmp(e->d_name, name))
			*found = true;
	}
	closedir(d);
	return n;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	if (buf && fread(buf, 1, 65535, f) == 0 && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static const char *store_name(const char *code)
{
	static char name[256];
	const char *v = it_db_value(db, "SELECT name FROM crm.stores WHERE code = $1", code);
	snprintf(name, sizeof name, "%s", v ? v : "?");
	return name;
}

/* A follow-up at `at` on relation `rid` that sets a task due at `due`
 * (its id in `task`), or with `done` set, that completes task `done`. */
static bool followup_at(struct crmc *c, const char *rid, const char *done, int64_t at,
			int64_t due, char task[37])
{
	char fid[37];
	uuid_v7_new(fid);
	Crm__Followup f = CRM__FOLLOWUP__INIT;
	f.id = fid;
	f.relation_id = (char *)(done ? "" : rid);
	f.task_id = (char *)(done ? done : "");
	f.method = (char *)"phone";
	f.type = (char *)"needs_analysis";
	f.content = (char *)(done ? "已回访" : "计划回访");
	f.at = at;
	Crm__NextTask next = CRM__NEXT_TASK__INIT;
	next.due_at = due;
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &f;
	fa.next = done ? NULL : &next;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	req.followup_add = &fa;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = code_of(e) == CRM__CODE__OK && e->followup_reply->n_tasks == 1;
	if (ok && task)
		snprintf(task, 37, "%s", e->followup_reply->tasks[0]->id);
	if (!ok)
		fprintf(stderr, "  follow-up refused: %s\n", message_of(e));
	it_free(e);
	return ok;
}

/* ------------------------------------------------------------ tests */

/* Group admins save group-wide templates, store managers their store's;
 * an unknown placeholder or an unbalanced brace is refused at save,
 * naming it; lengths and UTF-8 are checked; a retry of the same id
 * answers existed; a stale version is a conflict with the current
 * template; the outbox carries each version. */
static void test_save_checks(struct crmc *admin, struct crmc *manager, struct crmc *consultant)
{
	char id[37];
	CHECK(add_template(admin, "到店邀请", "sms",
			   "{name}您好，{store}{consultant}诚邀您{date}到店品鉴{model}。", id));
	Crm__Envelope *e = save_template(admin, id, 0, "到店邀请", "sms", "{name}");
	CHECK(code_of(e) == CRM__CODE__OK && e->template_reply->existed &&
	      e->template_reply->template_->version == 1 &&
	      e->template_reply->template_->n_placeholders == 5 &&
	      !strcmp(e->template_reply->template_->placeholders[1], "store") &&
	      !strcmp(e->template_reply->template_->store_code, ""));
	it_free(e);

	char other[37];
	uuid_v7_new(other);
	e = save_template(admin, other, 0, "坏模板", "sms", "{name}您好，{姓名}到店");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "template.body") &&
	      strstr(message_of(e), "unknown placeholder {姓名}") &&
	      strstr(message_of(e), "character 10"));
	it_free(e);
	e = save_template(admin, other, 0, "坏模板", "sms", "您好{name，欢迎");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && strstr(message_of(e), "\"{\"") &&
	      strstr(message_of(e), "not closed"));
	it_free(e);
	e = save_template(admin, other, 0, "坏模板", "sms", "您好} {name}");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && strstr(message_of(e), "\"}\"") &&
	      strstr(message_of(e), "character 3"));
	it_free(e);
	e = save_template(admin, other, 0, "坏模板", "sms", "\xe4\xbd");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "template.body"));
	it_free(e);
	char long_body[1100];
	memset(long_body, 'x', 1001);
	long_body[1001] = '\0';
	e = save_template(admin, other, 0, "坏模板", "sms", long_body);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "template.body"));
	it_free(e);
	e = save_template(admin, other, 0, "坏模板", "fax", "{name}");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "template.channel"));
	it_free(e);
	/* Braces written twice are braces. */
	CHECK(add_template(admin, "括号", "wechat", "{{会员}}{name}", other));
	/* The same name in the same scope. */
	char dup[37];
	uuid_v7_new(dup);
	e = save_template(admin, dup, 0, "到店邀请", "sms", "{name}");
	CHECK(code_of(e) == CRM__CODE__ALREADY_EXISTS && !strcmp(field_of(e), "template.name"));
	it_free(e);

	/* A store manager's template is the store's; the same name is free there. */
	char store_tpl[37];
	CHECK(add_template(manager, "到店邀请", "sms", "{name}，{store}欢迎您", store_tpl));
	CHECK(db_long("SELECT count(*) FROM crm.message_templates t JOIN crm.stores s"
		      " ON s.id = t.store_id WHERE t.id = $1::uuid AND s.code = 'BJ01'", store_tpl) == 1);
	/* Consultants only use templates; the group's are not the manager's. */
	e = save_template(consultant, dup, 0, "顾问模板", "sms", "{name}");
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = save_template(manager, id, 1, NULL, NULL, "{name}");
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);

	/* Updates carry the version read. */
	e = save_template(admin, id, 1, NULL, NULL, "{name}您好，{store}{consultant}诚邀您{date}到店。");
	CHECK(code_of(e) == CRM__CODE__OK && e->template_reply->template_->version == 2);
	it_free(e);
	e = save_template(admin, id, 1, NULL, NULL, "{name}");
	CHECK(code_of(e) == CRM__CODE__CONFLICT && e->body_case == CRM__ENVELOPE__BODY_TEMPLATE_REPLY &&
	      e->template_reply->template_->version == 2 &&
	      strstr(e->template_reply->template_->body, "诚邀您"));
	it_free(e);
	e = save_template(admin, id, 2, NULL, NULL, "{nme}");
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && strstr(message_of(e), "{nme}"));
	it_free(e);

	/* The outbox holds each version as stored. */
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'template'"
		      " AND entity_id = $1::uuid", id) == 2);
	PGresult *res = PQexecParams(db, "SELECT payload FROM crm.outbox WHERE entity_id = $1::uuid"
					 " ORDER BY seq DESC LIMIT 1",
				     1, NULL, (const char *[]){id}, NULL, NULL, 1);
	Crm__MessageTemplate *ob = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		ob = crm__message_template__unpack(NULL, (size_t)PQgetlength(res, 0, 0),
						   (const uint8_t *)PQgetvalue(res, 0, 0));
	PQclear(res);
	CHECK(ob && !strcmp(ob->id, id) && ob->version == 2 && ob->active &&
	      !strcmp(ob->channel, "sms") && !strcmp(ob->name, nm("到店邀请")) &&
	      strstr(ob->body, "诚邀您") && !strcmp(ob->updated_by, "group.admin") &&
	      !strcmp(ob->store_code, ""));
	if (ob)
		crm__message_template__free_unpacked(ob, NULL);

	/* Lists: everyone sees the group's; a store's people see their store's. */
	Crm__TemplateList tl = CRM__TEMPLATE_LIST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TEMPLATE_LIST;
	req.template_list = &tl;
	e = it_call(consultant, &req);
	bool group_seen = false, store_seen = false;
	for (size_t i = 0; code_of(e) == CRM__CODE__OK && i < e->template_page->n_templates; i++) {
		group_seen = group_seen || !strcmp(e->template_page->templates[i]->id, id);
		store_seen = store_seen || !strcmp(e->template_page->templates[i]->id, store_tpl);
	}
	CHECK(group_seen && store_seen);
	it_free(e);
}

/* Placeholders filled with Chinese names, the store's name, the owner's
 * display name, the first intended model (or the one given) and the day in
 * the group's time zone; {date} defaults to the next task's due day. */
static void test_render_fills_placeholders(struct crmc *admin, struct crmc *c)
{
	char tid[37], cid[37], rid[37], phone[16];
	CHECK(add_template(admin, "试驾邀请", "sms",
			   "{name}您好！我是{store}的{consultant}，诚邀您{date}来试驾{model}。{{限时}}",
			   tid));
	CHECK(make_customer(c, "欧阳娜娜", "途观L", cid, rid, phone));
	char want[512];
	/* 20:00 UTC on the 14th is 04:00 on the 15th in Shanghai. */
	struct render_args a = {.template_id = tid, .customer_id = cid,
				.date = shanghai_ms(2030, 1, 15, 4)};
	Crm__Envelope *e = render(c, &a);
	snprintf(want, sizeof want, "欧阳娜娜您好！我是%s的谭一，诚邀您2030年1月15日来试驾途观L。{限时}",
		 store_name("BJ01"));
	CHECK_STR(rendered_text(e), want);
	CHECK(code_of(e) == CRM__CODE__OK && !strcmp(e->template_rendered->relation_id, rid) &&
	      !strcmp(e->template_rendered->channel, "sms") && e->template_rendered->n_blanks == 0 &&
	      e->template_rendered->template_version == 1 && !e->template_rendered->followup);
	it_free(e);
	/* A model given overrides the intent; the relation id works too. */
	a.model = "奥迪Q5L";
	a.customer_id = NULL;
	a.relation_id = rid;
	a.date = shanghai_ms(2030, 2, 1, 23);
	e = render(c, &a);
	CHECK(strstr(rendered_text(e), "来试驾奥迪Q5L。") && strstr(rendered_text(e), "2030年2月1日"));
	it_free(e);

	/* No date given: the next open task's due day. */
	char task[37];
	CHECK(followup_at(c, rid, NULL, 0, shanghai_ms(2030, 3, 8, 10), task));
	struct render_args b = {.template_id = tid, .customer_id = cid};
	e = render(c, &b);
	CHECK(strstr(rendered_text(e), "诚邀您2030年3月8日来试驾途观L"));
	it_free(e);

	/* An inactive template renders nothing. */
	Crm__MessageTemplate t = CRM__MESSAGE_TEMPLATE__INIT;
	t.id = tid;
	t.active = false;
	char *fields[] = {(char *)"active"};
	Crm__TemplateSave ts = CRM__TEMPLATE_SAVE__INIT;
	ts.template_ = &t;
	ts.version = 1;
	ts.fields = fields;
	ts.n_fields = 1;
	Crm__Envelope sreq = CRM__ENVELOPE__INIT;
	sreq.body_case = CRM__ENVELOPE__BODY_TEMPLATE_SAVE;
	sreq.template_save = &ts;
	e = it_call(admin, &sreq);
	CHECK(code_of(e) == CRM__CODE__OK && !e->template_reply->template_->active);
	it_free(e);
	e = render(c, &b);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "template_id") &&
	      strstr(message_of(e), "inactive"));
	it_free(e);
}

/* A placeholder without a value is refused, naming it, unless blanks are
 * allowed; then it renders empty and the reply lists it. */
static void test_missing_value(struct crmc *admin, struct crmc *c)
{
	char tid[37], cid[37], rid[37], phone[16];
	CHECK(add_template(admin, "车型关怀", "sms", "{name}，您关注的{model}有新到店。{date}", tid));
	CHECK(make_customer(c, "司马光", NULL, cid, rid, phone));
	struct render_args a = {.template_id = tid, .customer_id = cid,
				.date = shanghai_ms(2030, 1, 15, 12)};
	Crm__Envelope *e = render(c, &a);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "model") &&
	      strstr(message_of(e), "{model}"));
	it_free(e);
	a.date = 0;
	a.model = "A6L";
	e = render(c, &a);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "date") &&
	      strstr(message_of(e), "{date}"));
	it_free(e);
	a.model = NULL;
	a.allow_blanks = true;
	e = render(c, &a);
	CHECK_STR(rendered_text(e), "司马光，您关注的有新到店。");
	CHECK(code_of(e) == CRM__CODE__OK && e->template_rendered->n_blanks == 2 &&
	      !strcmp(e->template_rendered->blanks[0], "model") &&
	      !strcmp(e->template_rendered->blanks[1], "date"));
	it_free(e);
}

/* A consultant renders only for relations they may read: not another
 * store's customer, not a colleague's; a store's template only for its
 * store's customers. */
static void test_scope(struct crmc *admin, struct crmc *c1, struct crmc *c2,
		       struct crmc *sh_consultant, struct crmc *manager)
{
	char tid[37], store_tpl[37];
	CHECK(add_template(admin, "范围", "sms", "{name}您好，{store}", tid));
	CHECK(add_template(manager, "本店专用", "sms", "{name}您好", store_tpl));
	char cid[37], rid[37], phone[16], sh_cid[37], sh_rid[37];
	CHECK(make_customer(c1, "诸葛亮", "Q3", cid, rid, phone));
	CHECK(make_customer(sh_consultant, "上官婉儿", "Q3", sh_cid, sh_rid, phone));
	struct render_args other_store = {.template_id = tid, .customer_id = sh_cid};
	Crm__Envelope *e = render(c1, &other_store);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	struct render_args other_store_rel = {.template_id = tid, .relation_id = sh_rid};
	e = render(c1, &other_store_rel);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	struct render_args colleague = {.template_id = tid, .customer_id = cid};
	e = render(c2, &colleague);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = render(c1, &colleague);
	CHECK(strstr(rendered_text(e), "诸葛亮您好"));
	it_free(e);
	/* The store manager reads the store's relations. */
	e = render(manager, &colleague);
	CHECK(strstr(rendered_text(e), "诸葛亮您好"));
	it_free(e);
	/* BJ01's own template is not SH01's to see. */
	struct render_args foreign_tpl = {.template_id = store_tpl, .customer_id = sh_cid};
	e = render(sh_consultant, &foreign_tpl);
	CHECK(code_of(e) == CRM__CODE__NOT_FOUND && !strcmp(field_of(e), "template_id"));
	it_free(e);
	/* Nor may a send reach another store's customer: nothing recorded. */
	char fid[37];
	uuid_v7_new(fid);
	e = send_message(c1, &other_store, fid);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE id = $1::uuid", fid) == 0);
}

/* A send: one spool file named after the follow-up, with the rendered text
 * and the real phone; one follow-up of the template's channel (type care)
 * with the text as content, its outbox entries as stored, the recipient
 * read audited. A retry sends nothing more; once the send is unmarked
 * (a crash before the mark), a retry writes the same file again. */
static void test_send_and_retry(struct crmc *admin, const char *spool_dir, struct crmc *c)
{
	char tid[37], cid[37], rid[37], phone[16];
	CHECK(add_template(admin, "生日关怀", "sms", "{name}您好，{store}{consultant}祝您生日快乐！",
			   tid));
	CHECK(make_customer(c, "慕容复", "Q7", cid, rid, phone));
	char fid[37], file[64], path[600];
	uuid_v7_new(fid);
	snprintf(file, sizeof file, "%s.json", fid);
	snprintf(path, sizeof path, "%s/%s", spool_dir, file);
	long outbox_before = db_long("SELECT count(*) FROM crm.outbox", NULL);
	long audits_before = db_long("SELECT count(*) FROM crm.audit_log WHERE action ="
				     " 'message.recipient' AND customer_id = $1::uuid", cid);
	int files_before = spool_files(spool_dir, NULL, NULL);
	struct render_args a = {.template_id = tid, .customer_id = cid};
	Crm__Envelope *e = send_message(c, &a, fid);
	char want[512];
	snprintf(want, sizeof want, "慕容复您好，%s谭一祝您生日快乐！", store_name("BJ01"));
	CHECK_STR(rendered_text(e), want);
	if (code_of(e) == CRM__CODE__OK && e->template_rendered->followup) {
		const Crm__TemplateRendered *t = e->template_rendered;
		const Crm__FollowupReply *fr = t->followup;
		CHECK(t->sent && !t->sent_before && !strcmp(t->sender, "spool") && !fr->existed);
		CHECK(fr->followup && !strcmp(fr->followup->id, fid) &&
		      !strcmp(fr->followup->method, "sms") && !strcmp(fr->followup->type, "care") &&
		      !strcmp(fr->followup->content, want));
		CHECK(fr->relation && fr->relation->last_contact_at == fr->followup->at);
		/* The recipient shows masked; the file has the real number. */
		CHECK(strstr(t->recipient, "****") && !strstr(t->recipient, phone + 3));
	} else {
		CHECK(false);
	}
	it_free(e);
	bool found;
	CHECK(spool_files(spool_dir, file, &found) == files_before + 1 && found);
	char *content = read_file(path);
	char real[32];
	snprintf(real, sizeof real, "\"to\": \"+86%s\"", phone);
	CHECK(content && strstr(content, want) && strstr(content, real) &&
	      strstr(content, "\"channel\": \"sms\"") && strstr(content, fid));
	free(content);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid"
		      " AND method = 'sms' AND type = 'care'", rid) == 1);
	/* The follow-up and the relation in the outbox, nothing else. */
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before + 2);
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'followup'"
		      " AND entity_id = $1::uuid", fid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.template_sends WHERE followup_id = $1::uuid"
		      " AND spooled_at IS NOT NULL", fid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'message.recipient'"
		      " AND customer_id = $1::uuid", cid) == audits_before + 1);

	/* The same follow-up id again: nothing recorded, nothing sent. */
	unlink(path);
	e = send_message(c, &a, fid);
	CHECK(code_of(e) == CRM__CODE__OK && e->template_rendered->sent &&
	      e->template_rendered->sent_before && e->template_rendered->followup &&
	      e->template_rendered->followup->existed);
	it_free(e);
	CHECK(spool_files(spool_dir, file, &found) == files_before && !found);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before + 2);

	/* Recorded but never handed over (crmd stopped in between): the retry
	 * hands it over once, under the same name. */
	PQclear(PQexecParams(db, "UPDATE crm.template_sends SET spooled_at = NULL"
				 " WHERE followup_id = $1::uuid",
			     1, NULL, (const char *[]){fid}, NULL, NULL, 0));
	e = send_message(c, &a, fid);
	CHECK(code_of(e) == CRM__CODE__OK && e->template_rendered->followup &&
	      e->template_rendered->followup->existed && e->template_rendered->sent &&
	      !e->template_rendered->sent_before);
	it_free(e);
	e = send_message(c, &a, fid);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	CHECK(spool_files(spool_dir, file, &found) == files_before + 1 && found);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.template_sends WHERE followup_id = $1::uuid"
		      " AND spooled_at IS NOT NULL", fid) == 1);

	/* An invitation, by WeChat, to a customer without a WeChat ID: refused
	 * before anything is recorded. */
	char wtid[37], wfid[37];
	CHECK(add_template(admin, "微信邀请", "wechat", "{name}，周末试驾会见！", wtid));
	uuid_v7_new(wfid);
	struct render_args w = {.template_id = wtid, .customer_id = cid};
	e = send_message(c, &w, wfid);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "recipient") &&
	      strstr(message_of(e), "WeChat"));
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE id = $1::uuid", wfid) == 0);
	CHECK(spool_files(spool_dir, NULL, NULL) == files_before + 1);
}

/* The sender fails after the follow-up is recorded (the spool folder's
 * name is taken by a file): UNAVAILABLE naming the follow-up; the retry
 * with the same id, once the folder can be made, records nothing more and
 * writes the one file. Runs before any other send to this folder. */
static void test_spool_failure_then_retry(struct crmc *admin, const char *spool_dir,
					  struct crmc *c)
{
	char tid[37], cid[37], rid[37], phone[16], fid[37], path[600];
	CHECK(add_template(admin, "重试", "sms", "{name}您好，欢迎再来", tid));
	CHECK(make_customer(c, "令狐冲", NULL, cid, rid, phone));
	FILE *blocker = fopen(spool_dir, "w");
	CHECK(blocker != NULL);
	if (blocker)
		fclose(blocker);
	uuid_v7_new(fid);
	struct render_args a = {.template_id = tid, .customer_id = cid};
	Crm__Envelope *e = send_message(c, &a, fid);
	CHECK(code_of(e) == CRM__CODE__UNAVAILABLE && strstr(message_of(e), fid) &&
	      !strcmp(field_of(e), "followup_id"));
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE id = $1::uuid", fid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.template_sends WHERE followup_id = $1::uuid"
		      " AND spooled_at IS NULL", fid) == 1);
	unlink(spool_dir);
	e = send_message(c, &a, fid);
	CHECK(code_of(e) == CRM__CODE__OK && e->template_rendered->sent &&
	      e->template_rendered->followup && e->template_rendered->followup->existed &&
	      !strcmp(e->template_rendered->text, "令狐冲您好，欢迎再来"));
	it_free(e);
	snprintf(path, sizeof path, "%s/%s.json", spool_dir, fid);
	char *content = read_file(path);
	CHECK(content && strstr(content, "令狐冲您好，欢迎再来"));
	free(content);
	CHECK(spool_files(spool_dir, NULL, NULL) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) == 1);
}

/* The "none" sender refuses and records nothing. */
static void test_none_sender(struct crmc *admin, const char *server)
{
	char tid[37], cid[37], rid[37], phone[16], fid[37];
	CHECK(add_template(admin, "不发送", "sms", "{name}您好", tid));
	struct crmc *c = login_to(server, "tpl.consultant1", PASSWORD);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(make_customer(c, "东方朔", NULL, cid, rid, phone));
	long outbox_before = db_long("SELECT count(*) FROM crm.outbox", NULL);
	uuid_v7_new(fid);
	struct render_args a = {.template_id = tid, .customer_id = cid};
	Crm__Envelope *e = send_message(c, &a, fid);
	CHECK(code_of(e) == CRM__CODE__UNAVAILABLE && strstr(message_of(e), "none"));
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.followups WHERE relation_id = $1::uuid", rid) == 0);
	CHECK(db_long("SELECT count(*) FROM crm.template_sends WHERE followup_id = $1::uuid", fid) ==
	      0);
	CHECK(db_long("SELECT count(*) FROM crm.outbox", NULL) == outbox_before);
	/* Rendering still works there. */
	e = render(c, &a);
	CHECK(strstr(rendered_text(e), "东方朔您好"));
	it_free(e);
	crmc_close(c);
}

static Crm__Envelope *compliance(struct crmc *c, int64_t since, int64_t until, const char *store,
				 const char *owner, int64_t at)
{
	Crm__ComplianceQuery q = CRM__COMPLIANCE_QUERY__INIT;
	q.since = since;
	q.until = until;
	q.store_code = (char *)(store ? store : "");
	q.owner = (char *)(owner ? owner : "");
	q.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_COMPLIANCE_QUERY;
	req.compliance_query = &q;
	return it_call(c, &req);
}

static const Crm__ComplianceRow *row_of(const Crm__Envelope *e, const char *owner)
{
	if (code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_COMPLIANCE_REPORT) {
		fprintf(stderr, "  compliance refused: %s\n", message_of(e));
		return NULL;
	}
	for (size_t i = 0; i < e->compliance_report->n_rows; i++)
		if (!strcmp(e->compliance_report->rows[i]->owner, owner))
			return e->compliance_report->rows[i];
	return NULL;
}

/* Compliance at a fixed clock: on time, late (average and longest),
 * missed (skipped, or open past due), open; only tasks due in the period;
 * a task written by any path counts; who may see whose. */
static void test_compliance_report(struct crmc *c3, struct crmc *manager, struct crmc *analyst)
{
	char cid[37], rid[37], phone[16];
	CHECK(make_customer(c3, "公孙胜", NULL, cid, rid, phone));
	/* A past hour, so that tasks can be done "then". */
	int64_t base = (now_ms_() - 12 * DAY_MS) / HOUR_MS * HOUR_MS;
	int64_t set_at = base - HOUR_MS;
	char t[7][37];
	const int64_t due[7] = {base + HOUR_MS,	    base + 2 * HOUR_MS, base + 3 * HOUR_MS,
				base + 4 * HOUR_MS, base + 5 * HOUR_MS, base + 3 * DAY_MS,
				base + 20 * DAY_MS};
	for (int i = 0; i < 7; i++)
		CHECK(followup_at(c3, rid, NULL, set_at, due[i], t[i]));
	CHECK(followup_at(c3, rid, t[0], base + 30 * MINUTE_MS, 0, NULL));      /* on time */
	CHECK(followup_at(c3, rid, t[1], base + 3 * HOUR_MS, 0, NULL));         /* late 1 h */
	CHECK(followup_at(c3, rid, t[2], base + 6 * HOUR_MS, 0, NULL));         /* late 3 h */
	Crm__TaskSkip ts = CRM__TASK_SKIP__INIT;                /* missed */
	ts.id = t[3];
	ts.reason = (char *)"客户出国";
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_TASK_SKIP;
	req.task_skip = &ts;
	Crm__Envelope *e = it_call(c3, &req);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	/* t[4] open past due at the clock: missed; t[5] not yet due: open;
	 * t[6] due after the period: not counted. */
	int64_t since = base, until = base + 10 * DAY_MS, at = base + DAY_MS;
	e = compliance(c3, since, until, NULL, NULL, at);
	const Crm__ComplianceRow *k = row_of(e, consultant3);
	CHECK(k && k->tasks == 6 && k->on_time == 1 && k->late == 2 && k->missed == 2 &&
	      k->open == 1 && k->late_avg_ms == 2 * HOUR_MS && k->late_max_ms == 3 * HOUR_MS &&
	      !strcmp(k->store_code, "BJ01") && !strcmp(k->owner_name, "谭三"));
	CHECK(code_of(e) == CRM__CODE__OK && e->compliance_report->n_rows == 1 &&
	      e->compliance_report->at == at);
	it_free(e);
	/* Later the open one is missed too. */
	e = compliance(c3, since, until, NULL, NULL, base + 4 * DAY_MS);
	k = row_of(e, consultant3);
	CHECK(k && k->missed == 3 && k->open == 0);
	it_free(e);

	/* A task another writer adds to crm.tasks (a later migration's) counts. */
	char due_s[24];
	snprintf(due_s, sizeof due_s, "%lld", (long long)(base + 2 * DAY_MS));
	PGresult *res = PQexecParams(db,
			   "INSERT INTO crm.tasks (id, relation_id, store_id, owner_id, due_at, method,"
			   " purpose, cadence_key, created_at) SELECT crm.uuid_v7(now()), r.id,"
			   " r.store_id, r.owner_id, crm.from_ms($2::bigint), 'visit',"
			   " 'maintenance reminder', 'S/other/1', now() FROM crm.relations r"
			   " WHERE r.id = $1::uuid",
			   2, NULL, (const char *[]){rid, due_s}, NULL, NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);
	e = compliance(c3, since, until, NULL, NULL, at);
	k = row_of(e, consultant3);
	CHECK(k && k->tasks == 7 && k->open == 2);
	it_free(e);

	/* Who sees whose. */
	e = compliance(c3, since, until, "BJ01", NULL, at);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = compliance(c3, since, until, NULL, "tpl.consultant1", at);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = compliance(manager, since, until, NULL, consultant3, at);
	k = row_of(e, consultant3);
	CHECK(k && k->tasks == 7 && e->compliance_report->n_rows == 1);
	it_free(e);
	e = compliance(manager, since, until, "SH01", NULL, at);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = compliance(analyst, since, until, "BJ01", NULL, at);
	CHECK(row_of(e, consultant3) != NULL);
	it_free(e);
	/* The period is checked. */
	e = compliance(c3, until, since, NULL, NULL, at);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && !strcmp(field_of(e), "until"));
	it_free(e);
	e = compliance(c3, since, since + 400 * DAY_MS, NULL, NULL, at);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && strstr(message_of(e), "366"));
	it_free(e);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(it_add_user(db, "tpl.consultant1", "谭一", "consultant", "BJ01", PASSWORD));
	CHECK(it_add_user(db, "tpl.consultant2", "谭二", "consultant", "BJ01", PASSWORD));
	snprintf(consultant3, sizeof consultant3, "tpl.consultant3-%d", (int)getpid());
	CHECK(it_add_user(db, consultant3, "谭三", "consultant", "BJ01", PASSWORD));
	CHECK(it_add_user(db, "tpl.sh.consultant", "沈一", "consultant", "SH01", PASSWORD));
	struct crmc *admin = it_login_demo("group_admin", NULL);
	struct crmc *manager = it_login_demo("store_manager", "BJ01");
	struct crmc *analyst = it_login_demo("group_analyst", NULL);
	struct crmc *c1 = login_to(NULL, "tpl.consultant1", PASSWORD);
	struct crmc *c2 = login_to(NULL, "tpl.consultant2", PASSWORD);
	struct crmc *c3 = login_to(NULL, consultant3, PASSWORD);
	struct crmc *sh = login_to(NULL, "tpl.sh.consultant", PASSWORD);
	if (!admin || !manager || !analyst || !c1 || !c2 || !c3 || !sh)
		return 1;

	/* Two crmds of our own: one spooling into a fresh folder, one "none". */
	char spool_dir[512], spool_set[600];
	snprintf(spool_dir, sizeof spool_dir, "%s/spool-templates-%d", it_env("CRM_TEST_DIR"),
		 (int)getpid());
	snprintf(spool_set, sizeof spool_set, "sender.spool_dir=%s", spool_dir);
	struct it_crmd spool_crmd = {0}, none_crmd = {0};
	const char *spool_sets[] = {"sender.kind=spool", spool_set, NULL};
	const char *none_sets[] = {"sender.kind=none", NULL};
	CHECK(it_crmd_spawn(&spool_crmd, spool_sets, "event=db.up"));
	CHECK(it_crmd_spawn(&none_crmd, none_sets, "event=db.up"));

	test_save_checks(admin, manager, c1);
	test_render_fills_placeholders(admin, c1);
	test_missing_value(admin, c1);
	test_scope(admin, c1, c2, sh, manager);
	struct crmc *spooler = spool_crmd.pid ? login_to(spool_crmd.server, "tpl.consultant1",
							  PASSWORD)
					      : NULL;
	CHECK(spooler != NULL);
	if (spooler) {
		test_spool_failure_then_retry(admin, spool_dir, spooler);
		test_send_and_retry(admin, spool_dir, spooler);
		crmc_close(spooler);
	}
	if (none_crmd.pid)
		test_none_sender(admin, none_crmd.server);
	test_compliance_report(c3, manager, analyst);

	CHECK(it_crmd_stop(&spool_crmd));
	CHECK(it_crmd_stop(&none_crmd));
	crmc_close(admin);
	crmc_close(manager);
	crmc_close(analyst);
	crmc_close(c1);
	crmc_close(c2);
	crmc_close(c3);
	crmc_close(sh);
	PQfinish(db);
	return it_summary();
}
