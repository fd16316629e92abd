/* Pushed reminders (issue 5; server/reminders.c, sql/0021) over TLS
 * against PostgreSQL, at the real clock: a task due in about a second is
 * pushed to its owner's subscribed connections within 2 seconds of its due
 * time, and to no other consultant's, nor to a connection that did not
 * subscribe; a task done or skipped before it falls due is not pushed; what
 * fell due before a subscription comes in its catch-up and is not pushed
 * again; store-pool tasks go to the store's managers; an unsubscribed or
 * logged-out connection gets nothing more; reminders go on after PostgreSQL restarts,
 * including the one that fell due while it was down.
 *
 * Consultants made here (rm.*) work at GZ01 so that their tasks meet no
 * other test's; the demo's GZ01 sales manager watches the pool. */
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "reminders-test-pw-1"
#define PUSH_LIMIT_MS 2000 /* the figure: pushed within 2 s of the due time */

static PGconn *db;

/* ------------------------------------------------------------ helpers */

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

static struct crmc *login_user(const char *user)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, PASSWORD) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

/* A customer and the caller's store's relation (owned by the caller when a
 * consultant, else the store pool's). Retries while the database comes
 * back after a restart. */
static bool make_customer(struct crmc *c, const char *name, char rid[37])
{
	for (int attempt = 0; attempt < 60; attempt++) {
		char cid[37], phone[16];
		it_phone(phone);
		uuid_v7_new(cid);
		uuid_v7_new(rid);
		Crm__Customer cu = CRM__CUSTOMER__INIT;
		cu.id = cid;
		cu.name = (char *)name;
		cu.phone = phone;
		Crm__Relation rel = CRM__RELATION__INIT;
		rel.id = rid;
		rel.source = (char *)"phone_in";
		Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
		cc.customer = &cu;
		cc.relation = &rel;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
		req.customer_create = &cc;
		Crm__Envelope *e = it_call(c, &req);
		Crm__Code code = code_of(e);
		if (code != CRM__CODE__OK && code != CRM__CODE__UNAVAILABLE)
			fprintf(stderr, "create %s: %s\n", name, e ? crmc_status_message(e) : "no answer");
		it_free(e);
		if (code == CRM__CODE__OK)
			return true;
		if (code != CRM__CODE__UNAVAILABLE)
			return false;
		usleep(250 * 1000);
	}
	return false;
}

/* Records a phone follow-up on `rid` whose next task is due at `due`;
 * the new task's id goes to `task_id`. */
static bool task_due_at(struct crmc *c, const char *rid, int64_t due, const char *purpose,
			char task_id[37])
{
	char id[37];
	uuid_v7_new(id);
	Crm__Followup f = CRM__FOLLOWUP__INIT;
	f.id = id;
	f.relation_id = (char *)rid;
	f.method = (char *)"phone";
	f.type = (char *)"needs_analysis";
	f.content = (char *)"called; will call back";
	Crm__NextTask next = CRM__NEXT_TASK__INIT;
	next.due_at = due;
	next.purpose = (char *)purpose;
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &f;
	fa.next = &next;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	req.followup_add = &fa;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = code_of(e) == CRM__CODE__OK && e->body_case == CRM__ENVELOPE__BODY_FOLLOWUP_REPLY;
	task_id[0] = '\0';
	for (size_t i = 0; ok && i < e->followup_reply->n_tasks; i++)
		if (!strcmp(e->followup_reply->tasks[i]->purpose, purpose))
			snprintf(task_id, 37, "%s", e->followup_reply->tasks[i]->id);
	if (!ok || !task_id[0])
		fprintf(stderr, "follow-up with next task: %s\n", e ? crmc_status_message(e) : "no answer");
	it_free(e);
	return ok && task_id[0];
}

/* Subscribes (or unsubscribes); the reply, or NULL. */
static Crm__Envelope *subscribe(struct crmc *c, bool off)
{
	Crm__ReminderSubscribe rs = CRM__REMINDER_SUBSCRIBE__INIT;
	rs.off = off;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBE;
	req.reminder_subscribe = &rs;
	Crm__Envelope *e = it_call(c, &req);
	if (code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBED) {
		fprintf(stderr, "subscribe: %s\n", e ? crmc_status_message(e) : "no answer");
		it_free(e);
		return NULL;
	}
	return e;
}

/* What one connection received until a deadline. */
struct seen {
	int frames;                /* every frame */
	int pushes;                /* TaskDue frames */
	char ids[32][37];          /* their task ids */
	int64_t at[32];            /* wall clock at arrival */
	int64_t due[32];
	bool well_formed;          /* each: id 0, kind task.due, text, open task */
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof *s);
	s->well_formed = true;
}

/* Reads whatever `c` receives until the wall clock passes `until`, or,
 * when `want` is set, until the push of that task arrives. */
static void collect(struct crmc *c, struct seen *s, int64_t until, const char *want)
{
	char err[256];
	for (;;) {
		int64_t left = until - wall_ms();
		if (left <= 0)
			return;
		Crm__Envelope *e = crmc_recv(c, (int)left, err, sizeof err);
		if (!e)
			return;
		s->frames++;
		if (e->body_case == CRM__ENVELOPE__BODY_TASK_DUE && e->task_due->task) {
			const Crm__TaskDue *td = e->task_due;
			if (s->pushes < 32) {
				snprintf(s->ids[s->pushes], 37, "%s", td->task->id);
				s->at[s->pushes] = wall_ms();
				s->due[s->pushes] = td->task->due_at;
			}
			s->pushes++;
			if (e->id != 0 || !td->event || strcmp(td->event->kind, "task.due") != 0 ||
			    !*td->event->text || strcmp(td->task->status, "open") != 0)
				s->well_formed = false;
			bool done = want && !strcmp(td->task->id, want);
			it_free(e);
			if (done)
				return;
			continue;
		}
		it_free(e);
	}
}

/* The push of `id` in `s`: its index, or -1. */
static int pushed(const struct seen *s, const char *id)
{
	for (int i = 0; i < s->pushes && i < 32; i++)
		if (!strcmp(s->ids[i], id))
			return i;
	return -1;
}

static bool overdue_has(const Crm__ReminderSubscribed *rs, const char *id)
{
	for (size_t i = 0; i < rs->n_overdue; i++)
		if (!strcmp(rs->overdue[i]->id, id))
			return true;
	return false;
}

/* ------------------------------------------------------------ tests */

/* A task due in a second reaches its owner's watching connection within
 * 2 s of its due time (not before it), the other consultant's watching
 * connection gets nothing, nor does the owner's connection that did not
 * subscribe; done and skipped tasks are not pushed. */
static void test_pushed_to_the_owner_within_2_seconds(struct crmc *writer, struct crmc *watch1,
						    struct crmc *watch2)
{
	char rid[37], due_task[37], done_task[37], skipped_task[37];
	CHECK(make_customer(writer, "提醒客户甲", rid));
	int64_t due = wall_ms() + 1200;
	CHECK(task_due_at(writer, rid, due, "call back about the quote", due_task));
	CHECK(task_due_at(writer, rid, due, "send the brochure", done_task));
	CHECK(task_due_at(writer, rid, due, "invite to the test drive", skipped_task));
	/* Closed before they fall due: done by a follow-up, skipped. */
	char fid[37];
	uuid_v7_new(fid);
	Crm__Followup f = CRM__FOLLOWUP__INIT;
	f.id = fid;
	f.task_id = done_task;
	f.method = (char *)"wechat";
	f.type = (char *)"care";
	f.content = (char *)"sent the brochure";
	Crm__FollowupAdd fa = CRM__FOLLOWUP_ADD__INIT;
	fa.followup = &f;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_FOLLOWUP_ADD;
	req.followup_add = &fa;
	Crm__Envelope *e = it_call(writer, &req);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	Crm__TaskSkip ts = CRM__TASK_SKIP__INIT;
	ts.id = skipped_task;
	ts.reason = (char *)"customer travelling";
	Crm__Envelope sreq = CRM__ENVELOPE__INIT;
	sreq.body_case = CRM__ENVELOPE__BODY_TASK_SKIP;
	sreq.task_skip = &ts;
	e = it_call(writer, &sreq);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	CHECK(wall_ms() < due); /* the closing came before the due time */

	struct seen s1, s2, sw;
	seen_init(&s1);
	seen_init(&s2);
	seen_init(&sw);
	collect(watch1, &s1, due + PUSH_LIMIT_MS + 1500, NULL);
	collect(watch2, &s2, wall_ms() + 10, NULL);
	collect(writer, &sw, wall_ms() + 10, NULL);
	int k = pushed(&s1, due_task);
	CHECK(k >= 0);
	if (k >= 0) {
		int64_t late = s1.at[k] - due;
		printf("pushed %lld ms after the due time\n", (long long)late);
		CHECK(s1.due[k] == due);
		CHECK(late >= 0 && late <= PUSH_LIMIT_MS);
	}
	CHECK(s1.well_formed);
	CHECK(pushed(&s1, done_task) < 0);
	CHECK(pushed(&s1, skipped_task) < 0);
	CHECK(pushed(&s2, due_task) < 0);
	CHECK(s2.pushes == 0);
	/* The owner's own connection that did not subscribe gets no frame. */
	CHECK(sw.frames == 0);
}

/* A task that fell due before a connection subscribed is in that
 * subscription's catch-up (`since` is after its due time) and is not pushed
 * to it; after unsubscribing, nothing is pushed. */
static void test_catch_up_lists_what_fell_due_while_away(struct crmc *writer)
{
	char rid[37], task[37];
	CHECK(make_customer(writer, "提醒客户乙", rid));
	int64_t due = wall_ms() + 300;
	CHECK(task_due_at(writer, rid, due, "call while away", task));
	usleep(1500 * 1000);
	struct crmc *w = login_user("rm.consultant1");
	CHECK(w != NULL);
	if (!w)
		return;
	Crm__Envelope *e = subscribe(w, false);
	CHECK(e != NULL);
	if (e) {
		const Crm__ReminderSubscribed *rs = e->reminder_subscribed;
		CHECK(rs->on);
		CHECK(rs->since > due);
		CHECK(overdue_has(rs, task));
		for (size_t i = 0; i < rs->n_overdue; i++)
			CHECK(rs->overdue[i]->overdue && rs->overdue[i]->due_at < rs->since &&
			      !strcmp(rs->overdue[i]->owner, "rm.consultant1"));
	}
	it_free(e);
	struct seen s;
	seen_init(&s);
	collect(w, &s, wall_ms() + 2500, NULL);
	CHECK(pushed(&s, task) < 0);
	/* Unsubscribed: a task falling due now is not pushed. */
	e = subscribe(w, true);
	CHECK(e && !e->reminder_subscribed->on);
	it_free(e);
	due = wall_ms() + 800;
	CHECK(task_due_at(writer, rid, due, "call after unsubscribing", task));
	seen_init(&s);
	collect(w, &s, due + PUSH_LIMIT_MS + 500, NULL);
	CHECK(s.pushes == 0);
	crmc_close(w);
}

/* A store-pool task (no owner) goes to the store's watching sales
 * manager, not to a watching consultant of the store. */
static void test_pool_tasks_go_to_managers(struct crmc *watch1)
{
	struct crmc *manager = it_login_demo("sales_manager", "GZ01");
	CHECK(manager != NULL);
	if (!manager)
		return;
	Crm__Envelope *e = subscribe(manager, false);
	CHECK(e != NULL);
	it_free(e);
	char rid[37];
	CHECK(make_customer(manager, "提醒公海客户", rid)); /* a manager's registration: the pool's */
	CHECK(it_db_value(db, "SELECT 1 FROM crm.relations WHERE id = $1::uuid AND owner_id IS NULL",
			  rid) != NULL);
	/* A pool task as the cadence policy makes them (owner NULL), due in a
	 * second: written directly, as no request sets a pool task so soon. */
	int64_t due = wall_ms() + 1000;
	char due_s[24], task[37];
	snprintf(due_s, sizeof due_s, "%lld", (long long)due);
	uuid_v7_new(task);
	const char *params[] = {task, rid, due_s};
	PGresult *res = PQexecParams(
		db,
		"INSERT INTO crm.tasks (id, relation_id, store_id, owner_id, due_at, method, purpose,"
		" cadence_key, created_at) SELECT $1::uuid, r.id, r.store_id, NULL, crm.from_ms($3::bigint),"
		" 'phone', 'pool call', 'N/level/1', now() FROM crm.relations r WHERE r.id = $2::uuid",
		3, NULL, params, NULL, NULL, 0);
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK && atoi(PQcmdTuples(res)) == 1);
	PQclear(res);
	struct seen sm, s1;
	seen_init(&sm);
	seen_init(&s1);
	collect(manager, &sm, due + PUSH_LIMIT_MS + 500, task);
	collect(watch1, &s1, wall_ms() + 10, NULL);
	int k = pushed(&sm, task);
	CHECK(k >= 0 && sm.at[k] - due <= PUSH_LIMIT_MS);
	CHECK(pushed(&s1, task) < 0);
	crmc_close(manager);
}

/* A logout ends the connection's subscription; another connection of the
 * same person still gets the task. */
static void test_logout_ends_the_subscription(void)
{
	struct crmc *writer = login_user("rm.consultant2");
	struct crmc *gone = login_user("rm.consultant2");
	struct crmc *stays = login_user("rm.consultant2");
	CHECK(writer && gone && stays);
	if (!writer || !gone || !stays)
		goto done;
	Crm__Envelope *e = subscribe(gone, false);
	CHECK(e != NULL);
	it_free(e);
	e = subscribe(stays, false);
	CHECK(e != NULL);
	it_free(e);
	Crm__LogoutRequest lo = CRM__LOGOUT_REQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGOUT;
	req.logout = &lo;
	e = it_call(gone, &req);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	char rid[37], task[37];
	CHECK(make_customer(writer, "提醒客户戊", rid));
	int64_t due = wall_ms() + 1000;
	CHECK(task_due_at(writer, rid, due, "call after the logout", task));
	struct seen ss, sg;
	seen_init(&ss);
	seen_init(&sg);
	collect(stays, &ss, due + PUSH_LIMIT_MS + 500, task);
	collect(gone, &sg, wall_ms() + 10, NULL);
	CHECK(pushed(&ss, task) >= 0);
	CHECK(sg.pushes == 0);
done:
	crmc_close(writer);
	crmc_close(gone);
	crmc_close(stays);
}

/* PostgreSQL stops and starts again: the task that fell due meanwhile is
 * pushed once the reminders' connection is back, and one due after it is
 * pushed within 2 s again. */
static void test_reminders_survive_a_postgres_restart(struct crmc *writer, struct crmc *watch1)
{
	char rid[37], during[37], after[37];
	CHECK(make_customer(writer, "提醒客户丙", rid));
	int64_t due = wall_ms() + 1500;
	CHECK(task_due_at(writer, rid, due, "due during the outage", during));
	CHECK(it_harness("pg-stop", NULL) == 0);
	usleep(2500 * 1000); /* the task falls due while PostgreSQL is down */
	struct seen s;
	seen_init(&s);
	collect(watch1, &s, wall_ms() + 10, NULL);
	CHECK(pushed(&s, during) < 0);
	CHECK(it_harness("pg-start", NULL) == 0);
	int64_t back = wall_ms();
	collect(watch1, &s, back + 15000, during);
	int k = pushed(&s, during);
	CHECK(k >= 0);
	if (k >= 0)
		printf("after the restart the missed task came %lld ms after PostgreSQL started\n",
		       (long long)(s.at[k] - back));
	CHECK(crmc_is_open(watch1));
	/* The writer's session survived too (sessions live in PostgreSQL). */
	CHECK(make_customer(writer, "提醒客户丁", rid));
	due = wall_ms() + 1000;
	CHECK(task_due_at(writer, rid, due, "due after the restart", after));
	seen_init(&s);
	collect(watch1, &s, due + PUSH_LIMIT_MS + 1500, after);
	k = pushed(&s, after);
	CHECK(k >= 0 && s.at[k] - due <= PUSH_LIMIT_MS);
}

/* A subscription needs a login, and its catch-up limit is bounded. */
static void test_subscribe_needs_a_session(void)
{
	struct crmc *c = it_connect();
	CHECK(c != NULL);
	if (!c)
		return;
	Crm__ReminderSubscribe rs = CRM__REMINDER_SUBSCRIBE__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBE;
	req.reminder_subscribe = &rs;
	Crm__Envelope *e = it_call(c, &req);
	CHECK(code_of(e) == CRM__CODE__UNAUTHENTICATED);
	it_free(e);
	rs.limit = 5000;
	CHECK(it_login_as(c, "rm.consultant2", PASSWORD) == CRM__CODE__OK);
	e = it_call(c, &req);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT && e->status &&
	      !strcmp(e->status->field, "limit"));
	it_free(e);
	crmc_close(c);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(it_add_user(db, "rm.consultant1", "任一", "consultant", "GZ01", PASSWORD));
	CHECK(it_add_user(db, "rm.consultant2", "任二", "consultant", "GZ01", PASSWORD));
	struct crmc *writer = login_user("rm.consultant1");
	struct crmc *watch1 = login_user("rm.consultant1");
	struct crmc *watch2 = login_user("rm.consultant2");
	if (!writer || !watch1 || !watch2)
		return 1;
	Crm__Envelope *e1 = subscribe(watch1, false);
	Crm__Envelope *e2 = subscribe(watch2, false);
	CHECK(e1 && e1->reminder_subscribed->on && e1->reminder_subscribed->since > 0);
	CHECK(e2 != NULL);
	it_free(e1);
	it_free(e2);
	test_subscribe_needs_a_session();
	test_pushed_to_the_owner_within_2_seconds(writer, watch1, watch2);
	test_catch_up_lists_what_fell_due_while_away(writer);
	test_pool_tasks_go_to_managers(watch1);
	test_logout_ends_the_subscription();
	test_reminders_survive_a_postgres_restart(writer, watch1);
	crmc_close(writer);
	crmc_close(watch1);
	crmc_close(watch2);
	PQfinish(db);
	return it_summary();
}
