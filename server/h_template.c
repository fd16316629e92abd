/* Message templates, sending them, and the follow-up compliance report
 * (issue 5; sql/0022).
 *
 * Placeholders are parsed here and nowhere else: template_walk checks a
 * body when it is saved and fills it when it is rendered, so what was
 * accepted is exactly what renders. The database gives the values
 * (STMT_TEMPLATE_CONTEXT: as the caller may read them, the day of {date}
 * already in the group's time zone).
 *
 * template.send, step by step (each step a statement of its own):
 *   1. context, then render (as template.render);
 *   2. STMT_FOLLOWUP_PLAN: what the follow-up will make of the relation,
 *      so the Followup and Relation packed for the outbox are as stored;
 *   3. STMT_TEMPLATE_SEND: the follow-up through crm.followup_add (cadence,
 *      last contact, outbox), the send noted, the recipient's real address
 *      read and audited, in one transaction;
 *   4. after that committed, the sender takes the message, named by the
 *      follow-up id (sender.h), off the loop thread;
 *   5. STMT_TEMPLATE_SPOOLED marks it taken, then the reply.
 * Record first, hand over after commit: no message leaves without its
 * follow-up. A retry with the same follow-up id records nothing (the id
 * exists) and hands the message over again only if it was never marked
 * taken (the earlier try failed or crmd stopped between 3 and 5); the
 * sender writes the same file name again, so a gateway that has not yet
 * picked the first one up still sees one message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h_records.h"
#include "log.h"
#include "sender.h"
#include "stmts.h"

#define TEMPLATE_NCOLS 10
#define TEMPLATE_VIEW_NCOLS (TEMPLATE_NCOLS + 1) /* then store_id */
#define CONTEXT_NCOLS (TEMPLATE_VIEW_NCOLS + 9)
#define FOLLOWUP_NCOLS 12
#define TASK_VIEW_NCOLS 23
/* STMT_TEMPLATE_SEND rows: outcome, kind, the three views, recipient, spooled. */
#define SEND_COL_FOLLOWUP 2
#define SEND_COL_RELATION (SEND_COL_FOLLOWUP + FOLLOWUP_NCOLS)
#define SEND_COL_TASK (SEND_COL_RELATION + RELATION_VIEW_NCOLS)
#define SEND_COL_RECIPIENT (SEND_COL_TASK + TASK_VIEW_NCOLS)
#define SEND_NCOLS (SEND_COL_RECIPIENT + 2)
#define COMPLIANCE_NCOLS 10

#define BODY_MAX_CHARS 1000
#define NAME_MAX_CHARS 100
/* The follow-up's content limit (sql/0013). */
#define MESSAGE_MAX_CHARS 2000

#define invalid(r, field, ...) req_fail((r), CRM__CODE__INVALID_ARGUMENT, (field), __VA_ARGS__)

static const char *const channels[] = {"sms", "wechat", "email", NULL};

/* ------------------------------------------------------------ placeholders */

enum placeholder { PH_NAME, PH_CONSULTANT, PH_STORE, PH_MODEL, PH_DATE, PH__COUNT };
static const char *const placeholder_names[PH__COUNT] = {"name", "consultant", "store",
							 "model", "date"};

/* The character number (1-based, in code points) of byte `off` of `s`. */
static size_t char_at(const char *s, size_t off)
{
	size_t n = 1;
	for (size_t i = 0; i < off; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* Walks a template body (valid UTF-8). With `out`, appends the text with
 * each placeholder replaced by values[p] ("" when NULL); without, only
 * checks. `used` collects the placeholders met, each once, in order of
 * first use. False with the reason (naming the placeholder or the brace
 * and where it is) when the body is not a valid template. "{{" and "}}"
 * are literal braces. */
static bool template_walk(const char *body, const char *const *values, struct textbuf *out,
			  enum placeholder used[PH__COUNT], size_t *n_used, char *why,
			  size_t whycap)
{
	size_t n = 0;
	for (size_t i = 0; body[i];) {
		char c = body[i];
		if ((c == '{' && body[i + 1] == '{') || (c == '}' && body[i + 1] == '}')) {
			if (out)
				tb_addc(out, c);
			i += 2;
			continue;
		}
		if (c == '}') {
			snprintf(why, whycap,
				 "template.body: the \"}\" at character %zu has no opening \"{\""
				 " (write }} for a brace)", char_at(body, i));
			return false;
		}
		if (c != '{') {
			size_t run = strcspn(body + i, "{}");
			for (size_t k = 0; out && k < run; k++)
				tb_addc(out, body[i + k]);
			i += run;
			continue;
		}
		size_t len = strcspn(body + i + 1, "{}");
		if (body[i + 1 + len] != '}') {
			snprintf(why, whycap,
				 "template.body: the \"{\" at character %zu is not closed"
				 " (write {{ for a brace)", char_at(body, i));
			return false;
		}
		int p = -1;
		for (int k = 0; k < PH__COUNT; k++)
			if (strlen(placeholder_names[k]) == len &&
			    !strncmp(body + i + 1, placeholder_names[k], len))
				p = k;
		if (p < 0) {
			/* Quote at most 40 bytes of the name, cut on a character. */
			size_t shown = len > 40 ? 40 : len;
			while (shown > 0 && shown < len &&
			       ((unsigned char)body[i + 1 + shown] & 0xC0) == 0x80)
				shown--;
			snprintf(why, whycap,
				 "template.body: unknown placeholder {%.*s%s} at character %zu; use"
				 " {name}, {consultant}, {store}, {model} or {date}",
				 (int)shown, body + i + 1, shown < len ? "…" : "", char_at(body, i));
			return false;
		}
		bool seen = false;
		for (size_t k = 0; k < n; k++)
			seen = seen || used[k] == (enum placeholder)p;
		if (!seen)
			used[n++] = (enum placeholder)p;
		if (out && values[p])
			tb_add(out, values[p]);
		i += len + 2;
	}
	*n_used = n;
	return true;
}

/* A body people typed: one line of valid UTF-8, 1..1000 characters, and a
 * valid template. */
static bool body_ok(struct request *r, const char *body)
{
	char why[512];
	enum placeholder used[PH__COUNT];
	size_t n;
	if (!text_field_ok("template.body", body ? body : "", BODY_MAX_CHARS, true, why, sizeof why) ||
	    !template_walk(body, NULL, NULL, used, &n, why, sizeof why)) {
		invalid(r, "template.body", "%s", why);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ readers */

static bool row_to_template(const PGresult *res, int row, int col, Crm__MessageTemplate *t,
			    struct scratch *sc)
{
	crm__message_template__init(t);
	t->id = PQgetvalue(res, row, col);
	t->store_code = PQgetvalue(res, row, col + 1);
	t->name = PQgetvalue(res, row, col + 2);
	t->channel = PQgetvalue(res, row, col + 3);
	t->body = PQgetvalue(res, row, col + 4);
	t->version = (uint64_t)col_i64(res, row, col + 5);
	t->active = !strcmp(PQgetvalue(res, row, col + 6), "t");
	t->created_at = col_i64(res, row, col + 7);
	t->updated_at = col_i64(res, row, col + 8);
	t->updated_by = PQgetvalue(res, row, col + 9);
	enum placeholder used[PH__COUNT];
	size_t n = 0;
	char why[256];
	if (!template_walk(t->body, NULL, NULL, used, &n, why, sizeof why))
		n = 0; /* stored before a rule changed: shown, never rendered */
	if (!n)
		return true;
	t->placeholders = scratch_alloc(sc, n * sizeof *t->placeholders);
	if (!t->placeholders)
		return false;
	for (size_t k = 0; k < n; k++)
		t->placeholders[k] = (char *)placeholder_names[used[k]];
	t->n_placeholders = n;
	return true;
}

/* The readers of sql/0013's views, as h_followup.c has them (static there). */
/* A task as a reply shows it: with its compliance as of now. */
static void row_to_task_now(const PGresult *res, int row, int col, Crm__Task *t)
{
	row_to_task(res, row, col, t);
	task_outcome_now(t);
}

/* ------------------------------------------------------------ template.save */

static void on_template_saved(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, 1 + TEMPLATE_VIEW_NCOLS))
		return;
	if (PQntuples(res) != 1) {
		req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such template");
		return;
	}
	struct scratch sc = {0};
	Crm__MessageTemplate t;
	if (!row_to_template(res, 0, 1, &t, &sc)) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	Crm__TemplateReply tr = CRM__TEMPLATE_REPLY__INIT;
	tr.template_ = &t;
	tr.existed = !strcmp(outcome, "existed");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TEMPLATE_REPLY;
	resp.template_reply = &tr;
	Crm__Status st = CRM__STATUS__INIT;
	char msg[200];
	if (!strcmp(outcome, "stale")) {
		snprintf(msg, sizeof msg,
			 "the template was changed meanwhile (version %llu, you read %llu); reload it"
			 " and try again",
			 (unsigned long long)t.version,
			 (unsigned long long)r->env->template_save->version);
		st.code = CRM__CODE__CONFLICT;
		st.message = msg;
		st.field = (char *)"version";
		resp.status = &st;
	}
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_template_save(struct request *r)
{
	const Crm__TemplateSave *in = r->env->template_save;
	const Crm__MessageTemplate *t = in->template_;
	if (!t) {
		invalid(r, "template", "template is required");
		return;
	}
	bool create = in->version == 0;
	bool set_name = create, set_channel = create, set_body = create, set_active = false;
	if (create) {
		if (!uuid_is_v7(t->id)) {
			invalid(r, "template.id", "template.id must be a UUID version 7 chosen by the client");
			return;
		}
	} else if (!uuid_ok(r, "template.id", t->id, true)) {
		return;
	}
	for (size_t i = 0; i < in->n_fields; i++) {
		const char *f = in->fields[i];
		if (!strcmp(f, "name"))
			set_name = true;
		else if (!strcmp(f, "channel"))
			set_channel = true;
		else if (!strcmp(f, "body"))
			set_body = true;
		else if (!strcmp(f, "active"))
			set_active = true;
		else {
			invalid(r, "fields", "fields: \"%.40s\" is not one of name, channel, body, active",
				f);
			return;
		}
	}
	if (!create && !set_name && !set_channel && !set_body && !set_active) {
		invalid(r, "fields", "fields: name what to change (name, channel, body, active)");
		return;
	}
	char why[256];
	if (set_name && !text_field_ok("template.name", t->name, NAME_MAX_CHARS, true, why,
				       sizeof why)) {
		invalid(r, "template.name", "%s", why);
		return;
	}
	if (set_channel && !one_of(t->channel, channels)) {
		invalid(r, "template.channel", "template.channel must be sms, wechat or email");
		return;
	}
	if (set_body && !body_ok(r, t->body))
		return;
	char version[24], at[24];
	fmt_i64(version, sizeof version, (int64_t)in->version);
	fmt_i64(at, sizeof at, now_ms());
	const char *params[] = {
		r->conn->session.session_id, t->id, version,
		set_name ? t->name : NULL, set_channel ? t->channel : NULL,
		set_body ? t->body : NULL, set_active ? (t->active ? "true" : "false") : NULL, at,
	};
	req_db(r, STMT_TEMPLATE_SAVE, 8, params, NULL, NULL, on_template_saved);
}

/* ------------------------------------------------------------ template.get, template.list */

static void on_templates_listed(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, TEMPLATE_VIEW_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__MessageTemplate *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__MessageTemplate **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	bool ok = items && ptrs;
	for (int i = 0; ok && i < rows; i++) {
		ok = row_to_template(res, i, 0, &items[i], &sc);
		ptrs[i] = &items[i];
	}
	if (!ok) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	Crm__TemplatePage page = CRM__TEMPLATE_PAGE__INIT;
	Crm__TemplateReply tr = CRM__TEMPLATE_REPLY__INIT;
	if (r->env->body_case == CRM__ENVELOPE__BODY_TEMPLATE_GET) {
		if (rows != 1) {
			scratch_free(&sc);
			req_fail(r, CRM__CODE__NOT_FOUND, "id", "no such template");
			return;
		}
		tr.template_ = &items[0];
		resp.body_case = CRM__ENVELOPE__BODY_TEMPLATE_REPLY;
		resp.template_reply = &tr;
	} else {
		page.templates = ptrs;
		page.n_templates = (size_t)rows;
		resp.body_case = CRM__ENVELOPE__BODY_TEMPLATE_PAGE;
		resp.template_page = &page;
	}
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_template_get(struct request *r)
{
	const Crm__TemplateGet *in = r->env->template_get;
	if (!uuid_ok(r, "id", in->id, true))
		return;
	const char *params[] = {r->conn->session.session_id, in->id, "true", ""};
	req_db(r, STMT_TEMPLATE_LIST, 4, params, NULL, NULL, on_templates_listed);
}

void h_template_list(struct request *r)
{
	const Crm__TemplateList *in = r->env->template_list;
	if (*in->channel && !one_of(in->channel, channels)) {
		invalid(r, "channel", "channel must be sms, wechat or email");
		return;
	}
	const char *params[] = {r->conn->session.session_id, "",
				in->include_inactive ? "true" : "false", in->channel};
	req_db(r, STMT_TEMPLATE_LIST, 4, params, NULL, NULL, on_templates_listed);
}

/* ------------------------------------------------------------ rendering */

static bool render_check(struct request *r, const Crm__TemplateRender *in)
{
	char why[256];
	if (!in) {
		invalid(r, "render", "render is required");
		return false;
	}
	if (!uuid_ok(r, "template_id", in->template_id, true) ||
	    !uuid_ok(r, "customer_id", in->customer_id, false) ||
	    !uuid_ok(r, "relation_id", in->relation_id, false))
		return false;
	if (!*in->customer_id && !*in->relation_id) {
		invalid(r, "customer_id", "customer_id (or relation_id) is required");
		return false;
	}
	if (!text_field_ok("model", in->model, NAME_MAX_CHARS, false, why, sizeof why)) {
		invalid(r, "model", "%s", why);
		return false;
	}
	if (in->date < 0) {
		invalid(r, "date", "date must be a time in unix milliseconds");
		return false;
	}
	return true;
}

static void context_query(struct request *r, const Crm__TemplateRender *in, pool_cb cb)
{
	char date[24];
	fmt_i64(date, sizeof date, in->date);
	const char *params[] = {r->conn->session.session_id, in->template_id, in->customer_id,
				in->relation_id, date};
	req_db(r, STMT_TEMPLATE_CONTEXT, 5, params, NULL, NULL, cb);
}

/* A rendered message: the reply's fields point into the context result and
 * into `text`. */
struct rendered {
	Crm__TemplateRendered out;
	char *blanks[PH__COUNT];
	char *text;                    /* malloc'd, trimmed */
	char date[48];
};

/* Fills the template of the context row for `in`. False when the request
 * was answered with the reason (a placeholder without a value, a message
 * too long or empty). */
static bool render(struct request *r, const Crm__TemplateRender *in, const PGresult *res,
		   struct rendered *rd)
{
	crm__template_rendered__init(&rd->out);
	const char *body = PQgetvalue(res, 0, 4);
	const int c = TEMPLATE_VIEW_NCOLS;
	const char *values[PH__COUNT];
	values[PH_NAME] = PQgetvalue(res, 0, c + 2);
	values[PH_CONSULTANT] = PQgetisnull(res, 0, c + 3) ? NULL : PQgetvalue(res, 0, c + 3);
	values[PH_STORE] = PQgetvalue(res, 0, c + 4);
	values[PH_MODEL] = *in->model ? in->model
			   : PQgetisnull(res, 0, c + 5) ? NULL : PQgetvalue(res, 0, c + 5);
	values[PH_DATE] = NULL;
	if (!PQgetisnull(res, 0, c + 6)) {
		snprintf(rd->date, sizeof rd->date, "%s年%s月%s日", PQgetvalue(res, 0, c + 6),
			 PQgetvalue(res, 0, c + 7), PQgetvalue(res, 0, c + 8));
		values[PH_DATE] = rd->date;
	}
	enum placeholder used[PH__COUNT];
	size_t n_used = 0;
	struct textbuf tb = {0};
	char why[512];
	if (!template_walk(body, values, &tb, used, &n_used, why, sizeof why)) {
		tb_free(&tb);
		req_fail(r, CRM__CODE__INTERNAL, "template_id", "the stored template is not valid: %s",
			 why);
		return false;
	}
	for (size_t k = 0; k < n_used; k++) {
		enum placeholder p = used[k];
		if (values[p])
			continue;
		if (in->allow_blanks) {
			rd->blanks[rd->out.n_blanks++] = (char *)placeholder_names[p];
			continue;
		}
		tb_free(&tb);
		if (p == PH_CONSULTANT)
			invalid(r, "relation_id",
				"{consultant} has no value: the customer is in the store pool (no owning"
				" consultant); allow blanks, or hand the customer over first");
		else if (p == PH_MODEL)
			invalid(r, "model",
				"{model} has no value: the relation has no intended model; give the model");
		else
			invalid(r, "date",
				"{date} has no value: the relation has no open task; give the date");
		return false;
	}
	if (tb.oom) {
		tb_free(&tb);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return false;
	}
	struct scratch sc = {0};
	char *trimmed = trim_blanks(tb_str(&tb), &sc);
	rd->text = trimmed ? strdup(trimmed) : NULL;
	scratch_free(&sc);
	tb_free(&tb);
	if (!rd->text) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return false;
	}
	size_t chars = utf8_chars(rd->text);
	if (chars == 0 || chars > MESSAGE_MAX_CHARS) {
		if (chars)
			invalid(r, "template_id", "the message would be %zu characters, over the limit of %d",
				chars, MESSAGE_MAX_CHARS);
		else
			invalid(r, "template_id", "the message is empty: nothing to send");
		free(rd->text);
		rd->text = NULL;
		return false;
	}
	rd->out.text = rd->text;
	rd->out.channel = PQgetvalue(res, 0, 3);
	rd->out.template_id = PQgetvalue(res, 0, 0);
	rd->out.template_version = (uint64_t)col_i64(res, 0, 5);
	rd->out.customer_id = PQgetvalue(res, 0, c);
	rd->out.relation_id = PQgetvalue(res, 0, c + 1);
	rd->out.blanks = rd->blanks;
	return true;
}

static void on_render_context(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, CONTEXT_NCOLS))
		return;
	if (PQntuples(res) != 1) {
		req_fail(r, CRM__CODE__NOT_FOUND, "template_id", "no such template");
		return;
	}
	struct rendered rd = {0};
	if (!render(r, r->env->template_render, res, &rd))
		return;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TEMPLATE_RENDERED;
	resp.template_rendered = &rd.out;
	req_reply(r, &resp);
	free(rd.text);
}

void h_template_render(struct request *r)
{
	const Crm__TemplateRender *in = r->env->template_render;
	if (render_check(r, in))
		context_query(r, in, on_render_context);
}

/* ------------------------------------------------------------ template.send */

/* What a send carries from one statement to the next (request.hctx). */
struct send_state {
	char *text;
	char channel[8];
	char template_id[37];
	uint64_t template_version;
	char customer_id[37];
	char relation_id[37];
	char store_code[32];
	char *blanks[PH__COUNT];
	size_t n_blanks;
	int64_t write_at;
	/* After the write: the FollowupReply packed, the recipient, and
	 * whether the message was handed over before (a retry). */
	uint8_t *reply;
	size_t reply_len;
	char *recipient;
	bool spooled;
	struct sender *sender;
};

static void send_state_free(void *p)
{
	struct send_state *s = p;
	if (!s)
		return;
	free(s->text);
	free(s->reply);
	free(s->recipient);
	free(s);
}

/* +86138****5678 for a phone; the first two and last two characters of
 * anything else. */
static void mask_recipient(const char *to, char *out, size_t cap)
{
	size_t n = strlen(to);
	if (!strncmp(to, "+86", 3) && n >= 10)
		snprintf(out, cap, "%.6s****%s", to, to + n - 4);
	else if (n >= 8)
		snprintf(out, cap, "%.2s****%s", to, to + n - 2);
	else
		snprintf(out, cap, "****");
}

/* The reply: the rendered message and the follow-up, sent or not. */
static void send_reply(struct request *r, bool sent)
{
	struct send_state *s = r->hctx;
	Crm__FollowupReply *fr = crm__followup_reply__unpack(NULL, s->reply_len, s->reply);
	if (!fr) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "the follow-up reply could not be read back");
		return;
	}
	char masked[64];
	mask_recipient(s->recipient, masked, sizeof masked);
	Crm__TemplateRendered out = CRM__TEMPLATE_RENDERED__INIT;
	out.text = s->text;
	out.channel = s->channel;
	out.template_id = s->template_id;
	out.template_version = s->template_version;
	out.customer_id = s->customer_id;
	out.relation_id = s->relation_id;
	out.blanks = s->blanks;
	out.n_blanks = s->n_blanks;
	out.followup = fr;
	out.sender = (char *)sender_name(s->sender);
	out.sent = sent;
	out.sent_before = s->spooled;
	out.recipient = masked;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_TEMPLATE_RENDERED;
	resp.template_rendered = &out;
	req_reply(r, &resp);
	crm__followup_reply__free_unpacked(fr, NULL);
}

static void on_spool_marked(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	(void)res;
	r->query = NULL;
	/* The message is with the sender either way; without the mark a retry
	 * hands it over once more, under the same name. */
	if (err->code != CRM__CODE__OK)
		log_warn("template.unmarked", "followup=%s reason=\"%s\"",
			 r->env->template_send->followup_id, err->message);
	send_reply(r, true);
}

static void on_sent(void *arg, bool ok, const char *error)
{
	struct request *r = arg;
	r->in_worker = false;
	if (!r->conn) {
		/* The client left; the follow-up stands and a retry finishes it. */
		req_free(r);
		return;
	}
	if (!ok) {
		req_fail(r, CRM__CODE__UNAVAILABLE, "followup_id",
			 "the follow-up %s is recorded, but the sender did not take the message (%s):"
			 " send again with the same follow-up id",
			 r->env->template_send->followup_id, error);
		return;
	}
	const char *params[] = {r->conn->session.session_id, r->env->template_send->followup_id};
	req_db(r, STMT_TEMPLATE_SPOOLED, 2, params, NULL, NULL, on_spool_marked);
}

/* The write committed: keep the reply, then hand the message over unless
 * an earlier try did. */
static void on_send_written(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	struct send_state *s = r->hctx;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, SEND_NCOLS))
		return;
	int rows = PQntuples(res);
	if (rows == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "relation_id", "no such relation");
		return;
	}
	struct scratch sc = {0};
	Crm__Followup fu;
	Crm__Relation rel;
	Crm__FollowupReply fr = CRM__FOLLOWUP_REPLY__INIT;
	Crm__Task *tasks = scratch_alloc(&sc, (size_t)rows * sizeof *tasks);
	Crm__Task **ptrs = scratch_alloc(&sc, (size_t)rows * sizeof *ptrs);
	bool ok = tasks && ptrs;
	for (int i = 0; ok && i < rows; i++) {
		if (!strcmp(PQgetvalue(res, i, 1), "followup")) {
			row_to_followup(res, i, SEND_COL_FOLLOWUP, &fu);
			ok = row_to_relation(res, i, SEND_COL_RELATION, &rel, &sc);
			fr.followup = &fu;
			fr.relation = &rel;
		} else {
			row_to_task_now(res, i, SEND_COL_TASK, &tasks[fr.n_tasks]);
			ptrs[fr.n_tasks] = &tasks[fr.n_tasks];
			fr.n_tasks++;
		}
	}
	fr.tasks = ptrs;
	fr.existed = !strcmp(PQgetvalue(res, 0, 0), "existed");
	if (ok) {
		s->reply_len = protobuf_c_message_get_packed_size(&fr.base);
		s->reply = malloc(s->reply_len ? s->reply_len : 1);
		s->recipient = strdup(PQgetvalue(res, 0, SEND_COL_RECIPIENT));
		ok = s->reply && s->recipient;
	}
	if (ok)
		protobuf_c_message_pack(&fr.base, s->reply);
	s->spooled = !strcmp(PQgetvalue(res, 0, SEND_COL_RECIPIENT + 1), "t");
	if (fr.existed && fr.followup) {
		/* A retry: the stored follow-up is the message to send. */
		free(s->text);
		s->text = strdup(fr.followup->content);
		snprintf(s->channel, sizeof s->channel, "%s", fr.followup->method);
		ok = ok && s->text;
	}
	scratch_free(&sc);
	if (!ok) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	if (s->spooled) {
		send_reply(r, true);
		return;
	}
	struct sender_message m = {
		.id = r->env->template_send->followup_id,
		.channel = s->channel,
		.to = s->recipient,
		.text = s->text,
		.customer_id = s->customer_id,
		.relation_id = s->relation_id,
		.store_code = s->store_code,
		.template_id = s->template_id,
		.template_version = s->template_version,
		.by = r->conn->session.username,
		.created_at = s->write_at,
	};
	char why[300];
	if (!sender_send(s->sender, r->conn->srv->loop, &m, on_sent, r, why, sizeof why)) {
		req_fail(r, CRM__CODE__UNAVAILABLE, "followup_id",
			 "the follow-up %s is recorded, but the sender did not take the message (%s):"
			 " send again with the same follow-up id",
			 m.id, why);
		return;
	}
	r->in_worker = true;
}

/* The plan is in: pack the Followup and the Relation as they will be
 * stored (as h_followup.c does), and write. */
static void on_send_planned(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	struct send_state *s = r->hctx;
	const Crm__TemplateSend *in = r->env->template_send;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, RELATION_VIEW_NCOLS + 3))
		return;
	if (PQntuples(res) == 0) {
		req_fail(r, CRM__CODE__NOT_FOUND, "relation_id", "no such relation");
		return;
	}
	struct scratch sc = {0};
	Crm__Relation rel;
	if (!row_to_relation(res, 0, 0, &rel, &sc)) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	snprintf(s->store_code, sizeof s->store_code, "%s", rel.store_code);
	uint64_t version_read = rel.version;
	int64_t after_next = col_i64(res, 0, RELATION_VIEW_NCOLS + 1);
	if (strcmp(PQgetvalue(res, 0, RELATION_VIEW_NCOLS + 2), "t") != 0) {
		rel.version++;
		rel.updated_at = s->write_at;
		rel.last_contact_at = col_i64(res, 0, RELATION_VIEW_NCOLS);
		rel.next_followup_at = after_next;
	}
	const char *type = *in->type ? in->type : "care";
	Crm__Followup fu = CRM__FOLLOWUP__INIT;
	fu.id = in->followup_id;
	fu.relation_id = rel.id;
	fu.customer_id = rel.customer_id;
	fu.store_code = rel.store_code;
	fu.method = s->channel;
	fu.type = (char *)type;
	fu.at = s->write_at;
	fu.content = s->text;
	fu.feedback = (char *)"";
	fu.by = r->conn->session.username;
	fu.task_id = in->task_id;
	fu.created_at = s->write_at;
	char at[24], version[24], next[24], tversion[24];
	fmt_i64(at, sizeof at, s->write_at);
	fmt_i64(version, sizeof version, (int64_t)version_read);
	fmt_i64(next, sizeof next, after_next);
	fmt_i64(tversion, sizeof tversion, (int64_t)s->template_version);
	const char *params[] = {
		r->conn->session.session_id, in->followup_id, s->relation_id, in->task_id, s->channel,
		type, at, s->text, at, version, next, s->template_id, tversion,
		sender_name(s->sender),
	};
	const ProtobufCMessage *records[] = {&fu.base, &rel.base};
	write_with_outbox(r, STMT_TEMPLATE_SEND, 14, params, records, 2, on_send_written);
	scratch_free(&sc);
}

static void on_send_context(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	struct send_state *s = r->hctx;
	const Crm__TemplateSend *in = r->env->template_send;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, CONTEXT_NCOLS))
		return;
	if (PQntuples(res) != 1) {
		req_fail(r, CRM__CODE__NOT_FOUND, "template_id", "no such template");
		return;
	}
	struct rendered rd = {0};
	if (!render(r, in->render, res, &rd))
		return;
	s->text = rd.text;
	snprintf(s->channel, sizeof s->channel, "%s", rd.out.channel);
	snprintf(s->template_id, sizeof s->template_id, "%s", rd.out.template_id);
	snprintf(s->customer_id, sizeof s->customer_id, "%s", rd.out.customer_id);
	snprintf(s->relation_id, sizeof s->relation_id, "%s", rd.out.relation_id);
	s->template_version = rd.out.template_version;
	memcpy(s->blanks, rd.blanks, sizeof s->blanks);
	s->n_blanks = rd.out.n_blanks;
	/* $1..$13 of STMT_FOLLOWUP_PLAN: the follow-up the send records. */
	char at[24];
	fmt_i64(at, sizeof at, s->write_at);
	const char *params[] = {
		r->conn->session.session_id, in->followup_id, s->relation_id, in->task_id,
		s->channel, *in->type ? in->type : "care", at, s->text, "", NULL, "", "", at,
	};
	req_db(r, STMT_FOLLOWUP_PLAN, 13, params, NULL, NULL, on_send_planned);
}

void h_template_send(struct request *r)
{
	const Crm__TemplateSend *in = r->env->template_send;
	if (!render_check(r, in->render))
		return;
	if (!uuid_is_v7(in->followup_id)) {
		invalid(r, "followup_id", "followup_id must be a UUID version 7 chosen by the client");
		return;
	}
	if (!uuid_ok(r, "task_id", in->task_id, false))
		return;
	if (*in->type && strcmp(in->type, "care") && strcmp(in->type, "invitation")) {
		invalid(r, "type", "type must be care or invitation");
		return;
	}
	char why[300];
	struct sender *sender = sender_get(r->conn->srv->cfg, why, sizeof why);
	if (!sender) {
		req_fail(r, CRM__CODE__INTERNAL, NULL, "%s", why);
		return;
	}
	if (!sender_accepts(sender, why, sizeof why)) {
		req_fail(r, CRM__CODE__UNAVAILABLE, NULL, "%s", why);
		return;
	}
	struct send_state *s = calloc(1, sizeof *s);
	if (!s) {
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	s->sender = sender;
	s->write_at = now_ms();
	r->hctx = s;
	r->hctx_free = send_state_free;
	context_query(r, in->render, on_send_context);
}

/* ------------------------------------------------------------ task.compliance */

static void on_compliance(void *arg, const PGresult *res, const struct pool_error *err)
{
	struct request *r = arg;
	if (fail_on_error(r, err) || !result_shape_ok(r, res, COMPLIANCE_NCOLS))
		return;
	int rows = PQntuples(res);
	struct scratch sc = {0};
	Crm__ComplianceRow *items = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *items);
	Crm__ComplianceRow **ptrs = scratch_alloc(&sc, (size_t)(rows ? rows : 1) * sizeof *ptrs);
	if (!items || !ptrs) {
		scratch_free(&sc);
		req_fail(r, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < rows; i++) {
		Crm__ComplianceRow *k = &items[i];
		crm__compliance_row__init(k);
		k->store_code = PQgetvalue(res, i, 0);
		k->owner = PQgetvalue(res, i, 1);
		k->owner_name = PQgetvalue(res, i, 2);
		k->tasks = (uint32_t)col_i64(res, i, 3);
		k->on_time = (uint32_t)col_i64(res, i, 4);
		k->late = (uint32_t)col_i64(res, i, 5);
		k->missed = (uint32_t)col_i64(res, i, 6);
		k->open = (uint32_t)col_i64(res, i, 7);
		k->late_avg_ms = col_i64(res, i, 8);
		k->late_max_ms = col_i64(res, i, 9);
		ptrs[i] = k;
	}
	const Crm__ComplianceQuery *in = r->env->compliance_query;
	Crm__ComplianceReport rep = CRM__COMPLIANCE_REPORT__INIT;
	rep.rows = ptrs;
	rep.n_rows = (size_t)rows;
	rep.since = in->since;
	rep.until = in->until;
	rep.at = in->at;
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.body_case = CRM__ENVELOPE__BODY_COMPLIANCE_REPORT;
	resp.compliance_report = &rep;
	req_reply(r, &resp);
	scratch_free(&sc);
}

void h_compliance(struct request *r)
{
	Crm__ComplianceQuery *in = r->env->compliance_query;
	char why[256];
	if (in->since <= 0 || in->until <= in->since) {
		invalid(r, in->since <= 0 ? "since" : "until",
			"give the period: since and until in unix milliseconds, since before until");
		return;
	}
	if (in->at < 0) {
		invalid(r, "at", "at must be a time in unix milliseconds");
		return;
	}
	if (!text_field_ok("owner", in->owner, 64, false, why, sizeof why)) {
		invalid(r, "owner", "%s", why);
		return;
	}
	if (!text_field_ok("store_code", in->store_code, 16, false, why, sizeof why)) {
		invalid(r, "store_code", "%s", why);
		return;
	}
	if (in->at == 0)
		in->at = now_ms();
	char since[24], until[24], at[24];
	fmt_i64(since, sizeof since, in->since);
	fmt_i64(until, sizeof until, in->until);
	fmt_i64(at, sizeof at, in->at);
	const char *params[] = {r->conn->session.session_id, since, until, in->store_code,
				in->owner, at};
	req_db(r, STMT_COMPLIANCE, 6, params, NULL, NULL, on_compliance);
}
