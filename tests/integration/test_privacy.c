/* Privacy over TLS against PostgreSQL: phones and WeChat masked per role in
 * get, card and list rows (search still matches the stored numbers),
 * updates by masked writers keep the real values, reveal and export with a
 * reason and exactly one audit entry each (refusals audited too), and
 * erasure that anonymizes in place, keeps the counts, writes the outbox
 * and the audit log, and frees the old phone.
 *
 * A second consultant of BJ01 (not the owner) is added here as the database
 * superuser; everyone else is a demo user. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define TEST_PASSWORD "privacy-test-pw-1"
#define OTHER_CONSULTANT "bj01.privacy2"

static PGconn *db;

/* The customer every test reads: registered by BJ01's consultant. */
static char cid[37], rid[37];
static char mobile[24], landline[24], wechat[] = "wxid_privacy01";
static char mobile_masked[24], landline_masked[24];
static const char wechat_masked[] = "wx****01";

/* ------------------------------------------------------------ helpers */

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static bool add_user(const char *username, const char *display, const char *role,
		     const char *store)
{
	return it_add_user(db, username, display, role, store, TEST_PASSWORD);
}

/* The demo user of `role` at `store` (NULL: group roles), logged in. */
static struct crmc *login(const char *role, const char *store)
{
	return it_login_demo(role, store);
}

static struct crmc *login_other_consultant(void)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, OTHER_CONSULTANT, TEST_PASSWORD) != CRM__CODE__OK) {
		crmc_close(c);
		return NULL;
	}
	return c;
}

static long audit_count(const char *action, const char *outcome)
{
	char sql[256];
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM crm.audit_log WHERE customer_id = $1::uuid"
		 " AND action = '%s' AND outcome = '%s'", action, outcome);
	return db_long(sql, cid);
}

/* Phone, phones and WeChat are the stored ones (or all masked). */
static void check_contact(const Crm__Customer *cu, bool masked, int line)
{
	const char *want_mobile = masked ? mobile_masked : mobile;
	const char *want_landline = masked ? landline_masked : landline;
	const char *want_wechat = masked ? wechat_masked : wechat;
	bool ok = cu && cu->phone && !strcmp(cu->phone, want_mobile) && cu->n_phones == 2 &&
		  !strcmp(cu->phones[0]->number, want_mobile) &&
		  !strcmp(cu->phones[1]->number, want_landline) && cu->phones[0]->primary &&
		  !strcmp(cu->phones[1]->kind, "landline") && !strcmp(cu->wechat, want_wechat);
	if (!ok)
		fprintf(stderr, "line %d: expected %s contact details, got phone %s wechat %s\n",
			line, masked ? "masked" : "unmasked", cu && cu->phone ? cu->phone : "(none)",
			cu && cu->wechat ? cu->wechat : "(none)");
	CHECK(ok);
}

static Crm__Envelope *card(struct crmc *c, const char *id)
{
	Crm__CustomerCardRequest cr = CRM__CUSTOMER_CARD_REQUEST__INIT;
	cr.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CARD_GET;
	req.customer_card_get = &cr;
	return it_call(c, &req);
}

/* Runs a list by phone (full or last digits) and checks the row of our
 * customer: found, and masked or not. */
static void check_search(struct crmc *c, const char *phone, bool masked, int line)
{
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.phone = (char *)phone;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = &cl;
	req.credit = 4;
	uint64_t id = crmc_send(c, &req);
	char err[256];
	bool found = false;
	for (;;) {
		Crm__Envelope *resp = crmc_wait(c, id, 20000, err, sizeof err);
		if (!resp || crmc_status(resp) != CRM__CODE__OK || !resp->customer_page) {
			fprintf(stderr, "line %d: search %s: %s\n", line, phone,
				resp ? crmc_status_message(resp) : err);
			CHECK(false);
			it_free(resp);
			return;
		}
		for (size_t i = 0; i < resp->customer_page->n_rows; i++) {
			const Crm__Customer *cu = resp->customer_page->rows[i]->customer;
			if (cu && !strcmp(cu->id, cid) && !found) {
				found = true;
				check_contact(cu, masked, line);
			}
		}
		bool more = resp->more;
		it_free(resp);
		if (!more)
			break;
		crmc_stream_credit(c, id, 1);
	}
	if (!found)
		fprintf(stderr, "line %d: search %s did not find the customer\n", line, phone);
	CHECK(found);
}

static Crm__Envelope *reveal(struct crmc *c, const char *id, const char *reason)
{
	Crm__CustomerReveal rv = CRM__CUSTOMER_REVEAL__INIT;
	rv.id = (char *)id;
	rv.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_REVEAL;
	req.customer_reveal = &rv;
	return it_call(c, &req);
}

static Crm__Envelope *export_customer(struct crmc *c, const char *id, const char *reason)
{
	Crm__CustomerExport ex = CRM__CUSTOMER_EXPORT__INIT;
	ex.id = (char *)id;
	ex.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_EXPORT;
	req.customer_export = &ex;
	return it_call(c, &req);
}

static Crm__Envelope *erase(struct crmc *c, const char *id, const char *reason)
{
	Crm__CustomerErase ce = CRM__CUSTOMER_ERASE__INIT;
	ce.id = (char *)id;
	ce.reason = (char *)reason;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_ERASE;
	req.customer_erase = &ce;
	return it_call(c, &req);
}

static bool field_is(const Crm__Envelope *resp, const char *field)
{
	return resp && resp->status && resp->status->field && !strcmp(resp->status->field, field);
}

/* The Customer of the newest outbox change of our customer; free it with
 * crm__customer__free_unpacked. */
static Crm__Customer *last_outbox_customer(void)
{
	const char *hex = it_db_value(db,
				      "SELECT encode(payload, 'hex') FROM crm.outbox WHERE entity ="
				      " 'customer' AND entity_id = $1::uuid ORDER BY seq DESC LIMIT 1",
				      cid);
	if (!hex)
		return NULL;
	size_t n = strlen(hex) / 2;
	uint8_t *bytes = malloc(n ? n : 1);
	if (!bytes)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		bytes[i] = (uint8_t)v;
	}
	Crm__Customer *cu = crm__customer__unpack(NULL, n, bytes);
	free(bytes);
	return cu;
}

static uint64_t current_version(void)
{
	return (uint64_t)db_long("SELECT version FROM crm.customers WHERE id = $1::uuid", cid);
}

/* ------------------------------------------------------------ tests */

/* BJ01's consultant registers the customer with a mobile, a landline and
 * a WeChat ID; the owner's reply is unmasked. */
static bool setup_customer(void)
{
	struct crmc *c = login("consultant", "BJ01");
	if (!c)
		return false;
	char digits[16];
	it_phone(digits);
	snprintf(mobile, sizeof mobile, "+86%s", digits);
	snprintf(landline, sizeof landline, "+86106%s", digits + 4);
	snprintf(mobile_masked, sizeof mobile_masked, "+86%.3s****%s", digits, digits + 7);
	snprintf(landline_masked, sizeof landline_masked, "+8610****%s", landline + strlen(landline) - 2);
	uuid_v7_new(cid);
	Crm__Phone p1 = CRM__PHONE__INIT, p2 = CRM__PHONE__INIT;
	p1.number = mobile;
	p1.primary = true;
	p2.number = landline;
	Crm__Phone *phones[] = {&p1, &p2};
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)"林晓红";
	cu.phones = phones;
	cu.n_phones = 2;
	cu.wechat = wechat;
	cu.email = (char *)"lin@example.com";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *resp = it_call(c, &req);
	bool ok = resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
		  resp->customer->relation;
	CHECK(ok);
	if (ok) {
		check_contact(resp->customer->customer, false, __LINE__);
		snprintf(rid, sizeof rid, "%s", resp->customer->relation->id);
	} else if (resp) {
		fprintf(stderr, "create: %s\n", crmc_status_message(resp));
	}
	it_free(resp);
	crmc_close(c);
	return ok;
}

static void test_mask_functions(void)
{
	CHECK_STR(it_db_value(db, "SELECT crm.mask_phone('+8613812345678')", NULL),
		  "+86138****5678");
	CHECK_STR(it_db_value(db, "SELECT crm.mask_phone('+861062345678')", NULL),
		  "+8610****78");
	CHECK_STR(it_db_value(db, "SELECT crm.mask_phone('+867551234567')", NULL),
		  "+86755****67");
	CHECK_STR(it_db_value(db, "SELECT crm.mask_wechat('wxid_abcdef')", NULL), "wx****ef");
	CHECK_STR(it_db_value(db, "SELECT crm.mask_wechat('abc123')", NULL), "****");
	CHECK_STR(it_db_value(db, "SELECT crm.mask_wechat('')", NULL), "");
}

/* Who sees what in get and card: the owner, managers of the store and
 * group admins unmasked; the store's service advisor, call-center agent
 * and group analysts masked; the store's other consultant neither (the
 * customer is another consultant's, not the pool's). */
static void test_masking_per_role(void)
{
	static const struct {
		const char *role, *store;
		bool masked;
	} who[] = {
		{"consultant", "BJ01", false},   {"sales_manager", "BJ01", false},
		{"store_manager", "BJ01", false}, {"group_admin", NULL, false},
		{"service_advisor", "BJ01", true}, {"call_center", "BJ01", true},
		{"group_analyst", NULL, true},
	};
	for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
		struct crmc *c = login(who[i].role, who[i].store);
		CHECK(c != NULL);
		if (!c)
			continue;
		Crm__Envelope *resp = it_get(c, cid);
		CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer);
		if (resp && resp->customer) {
			check_contact(resp->customer->customer, who[i].masked, __LINE__);
			/* Email is not masked. */
			CHECK_STR(resp->customer->customer->email, "lin@example.com");
		}
		it_free(resp);
		resp = card(c, cid);
		CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer_card);
		if (resp && resp->customer_card)
			check_contact(resp->customer_card->customer, who[i].masked, __LINE__);
		it_free(resp);
		crmc_close(c);
	}
	/* The store's other consultant may not open the card: the customer is
	 * another consultant's (a consultant sees own customers and the store
	 * pool), so it is NOT_FOUND, as another store's customer is; get
	 * refuses outright. */
	struct crmc *c = login_other_consultant();
	CHECK(c != NULL);
	if (c) {
		Crm__Envelope *resp = card(c, cid);
		CHECK(resp && crmc_status(resp) == CRM__CODE__NOT_FOUND && !resp->customer_card);
		it_free(resp);
		resp = it_get(c, cid);
		CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
		it_free(resp);
		crmc_close(c);
	}
}

/* The search matches the stored numbers, so a masked caller still finds
 * the customer by full phone and by its last digits; the row is masked. */
static void test_search_by_phone_for_masked_callers(void)
{
	const char *roles[][2] = {{"service_advisor", "BJ01"}, {"call_center", "BJ01"},
				  {"group_analyst", NULL}};
	char suffix[8];
	snprintf(suffix, sizeof suffix, "%s", mobile + strlen(mobile) - 6);
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		struct crmc *c = login(roles[i][0], roles[i][1]);
		if (!c) {
			CHECK(false);
			continue;
		}
		check_search(c, mobile, true, __LINE__);
		check_search(c, mobile + 3, true, __LINE__);
		check_search(c, suffix, true, __LINE__);
		crmc_close(c);
	}
	struct crmc *owner = login("consultant", "BJ01");
	if (owner) {
		check_search(owner, suffix, false, __LINE__);
		crmc_close(owner);
	}
}

/* A masked writer changes the name: the phones and WeChat stored and sent
 * to the outbox stay the real ones; the reply stays masked. A stale
 * version answers CONFLICT with the masked record. */
static void test_update_by_masked_writer_keeps_real_values(void)
{
	struct crmc *c = login("service_advisor", "BJ01");
	if (!c) {
		CHECK(false);
		return;
	}
	uint64_t version = current_version();
	Crm__Envelope *resp = it_rename(c, cid, version, "林晓虹");
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer);
	if (resp && resp->customer) {
		CHECK_STR(resp->customer->customer->name, "林晓虹");
		check_contact(resp->customer->customer, true, __LINE__);
	} else if (resp) {
		fprintf(stderr, "update: %s\n", crmc_status_message(resp));
	}
	it_free(resp);
	CHECK(current_version() == version + 1);
	CHECK_STR(it_db_value(db, "SELECT wechat FROM crm.customers WHERE id = $1::uuid", cid),
		  wechat);
	char both[64];
	snprintf(both, sizeof both, "%s,%s", mobile, landline);
	CHECK_STR(it_db_value(db, "SELECT string_agg(phone, ',' ORDER BY is_primary DESC)"
				  " FROM crm.customer_phones WHERE customer_id = $1::uuid", cid),
		  both);
	Crm__Customer *out = last_outbox_customer();
	CHECK(out != NULL);
	if (out) {
		CHECK_STR(out->name, "林晓虹");
		check_contact(out, false, __LINE__);
		crm__customer__free_unpacked(out, NULL);
	}
	/* Stale: the answer carries the current record, masked. */
	resp = it_rename(c, cid, version, "林晓虹");
	CHECK(resp && crmc_status(resp) == CRM__CODE__CONFLICT);
	if (resp && resp->customer)
		check_contact(resp->customer->customer, true, __LINE__);
	else
		CHECK(false);
	it_free(resp);
	crmc_close(c);
}

/* A reveal answers the real values and writes exactly one audit entry; a
 * refusal writes a 'denied' one; no reason is refused naming reason. */
static void test_reveal(void)
{
	struct crmc *cc = login("call_center", "BJ01");
	if (!cc) {
		CHECK(false);
		return;
	}
	long ok_before = audit_count("customer.reveal", "ok");
	Crm__Envelope *resp = reveal(cc, cid, "客户来电要求回拨");
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer_reveal_reply);
	if (resp && resp->customer_reveal_reply) {
		const Crm__CustomerRevealReply *rr = resp->customer_reveal_reply;
		CHECK_STR(rr->id, cid);
		CHECK_STR(rr->phone, mobile);
		CHECK(rr->n_phones == 2 && !strcmp(rr->phones[0]->number, mobile) &&
		      !strcmp(rr->phones[1]->number, landline));
		CHECK_STR(rr->wechat, wechat);
	}
	it_free(resp);
	CHECK(audit_count("customer.reveal", "ok") == ok_before + 1);
	CHECK_STR(it_db_value(db, "SELECT reason || '|' || actor_role FROM crm.audit_log"
				  " WHERE customer_id = $1::uuid AND action = 'customer.reveal'"
				  " ORDER BY id DESC LIMIT 1", cid),
		  "客户来电要求回拨|call_center");

	/* No reason, or only blanks: refused naming reason, nothing audited. */
	resp = reveal(cc, cid, "");
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT && field_is(resp, "reason"));
	it_free(resp);
	resp = reveal(cc, cid, "   ");
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT && field_is(resp, "reason"));
	it_free(resp);
	CHECK(audit_count("customer.reveal", "ok") == ok_before + 1);
	/* Reading again afterwards is masked again: a reveal is one read. */
	resp = it_get(cc, cid);
	if (resp && resp->customer)
		check_contact(resp->customer->customer, true, __LINE__);
	else
		CHECK(false);
	it_free(resp);
	crmc_close(cc);

	struct crmc *sa = login("service_advisor", "BJ01");
	resp = sa ? reveal(sa, cid, "保养提醒回访") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
	if (sa)
		crmc_close(sa);
	CHECK(audit_count("customer.reveal", "ok") == ok_before + 2);

	/* Refused: a group analyst never (by the handler table, which audits
	 * the refusal just after answering it); another consultant of the
	 * store not (by SQL, audited as a denied reveal of this customer). */
	const char *analyst_denials =
		"SELECT count(*) FROM crm.audit_log WHERE action = 'permission.denied'"
		" AND actor_role = 'group_analyst' AND details->>'request' = $1";
	long analyst_before = db_long(analyst_denials, "customer.reveal");
	long denied_before = audit_count("customer.reveal", "denied");
	struct crmc *an = login("group_analyst", NULL);
	resp = an ? reveal(an, cid, "分析需要") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED &&
	      !resp->customer_reveal_reply);
	it_free(resp);
	if (an)
		crmc_close(an);
	long analyst_after = analyst_before;
	for (int i = 0; i < 50 && analyst_after == analyst_before; i++) {
		usleep(100 * 1000);
		analyst_after = db_long(analyst_denials, "customer.reveal");
	}
	CHECK(analyst_after == analyst_before + 1);
	struct crmc *other = login_other_consultant();
	resp = other ? reveal(other, cid, "想联系") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
	it_free(resp);
	if (other)
		crmc_close(other);
	CHECK(audit_count("customer.reveal", "denied") == denied_before + 1);
	CHECK_STR(it_db_value(db, "SELECT actor_username || '|' || reason FROM crm.audit_log"
				  " WHERE customer_id = $1::uuid AND action = 'customer.reveal'"
				  " AND outcome = 'denied' ORDER BY id DESC LIMIT 1", cid),
		  OTHER_CONSULTANT "|consultants reveal the contact details of their own customers only");
	CHECK(audit_count("customer.reveal", "ok") == ok_before + 2);
}

/* Export: everything on the customer, unmasked, one audit entry with the
 * counts; store managers of other stores and other roles refused. */
static void test_export(void)
{
	struct crmc *admin = login("group_admin", NULL);
	if (!admin) {
		CHECK(false);
		return;
	}
	long before = audit_count("customer.export", "ok");
	Crm__Envelope *resp = export_customer(admin, cid, "客户依法申请查阅个人信息");
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer_export_reply);
	if (resp && resp->customer_export_reply) {
		const char *doc = resp->customer_export_reply->document;
		CHECK(doc[0] == '{');
		CHECK(strstr(doc, mobile) != NULL);
		CHECK(strstr(doc, landline) != NULL);
		CHECK(strstr(doc, wechat) != NULL);
		CHECK(strstr(doc, "lin@example.com") != NULL);
		CHECK(strstr(doc, rid) != NULL);
		CHECK(strstr(doc, "\"level_history\": [{") != NULL);
		CHECK(strstr(doc, "\"to_level\": \"N\"") != NULL);
		CHECK(strstr(doc, "\"collisions\": []") != NULL);
		CHECK(strstr(doc, "\"handovers\": []") != NULL);
		CHECK(strstr(doc, "\"reason\": \"客户依法申请查阅个人信息\"") != NULL);
	}
	it_free(resp);
	CHECK(audit_count("customer.export", "ok") == before + 1);
	CHECK_STR(it_db_value(db, "SELECT details->>'relations' || '/' || (details->>'level_history')"
				  " FROM crm.audit_log WHERE customer_id = $1::uuid"
				  " AND action = 'customer.export' ORDER BY id DESC LIMIT 1", cid),
		  "1/1");
	resp = export_customer(admin, cid, "");
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT && field_is(resp, "reason"));
	it_free(resp);
	crmc_close(admin);

	struct crmc *sm = login("store_manager", "BJ01");
	resp = sm ? export_customer(sm, cid, "门店处理查阅申请") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
	if (sm)
		crmc_close(sm);
	CHECK(audit_count("customer.export", "ok") == before + 2);

	long denied = audit_count("customer.export", "denied");
	struct crmc *sh = login("store_manager", "SH01");
	resp = sh ? export_customer(sh, cid, "查阅") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
	it_free(resp);
	if (sh)
		crmc_close(sh);
	CHECK(audit_count("customer.export", "denied") == denied + 1);

	struct crmc *owner = login("consultant", "BJ01");
	resp = owner ? export_customer(owner, cid, "查阅") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
	it_free(resp);
	if (owner)
		crmc_close(owner);
	CHECK(audit_count("customer.export", "ok") == before + 2);
}

/* ------------------------------------------------------------ the crm client */

/* Runs crm ARGS as demo `role` (its own config dir, so its own session),
 * stdin from /dev/null (not a terminal); the output (stdout and stderr)
 * goes to `out`. Returns the exit status. */
static int run_crm(const char *role, const char *store, char *out, size_t cap,
		   const char *args)
{
	char user[128], pw[128], dir[256], cmd[2048];
	if (!it_demo_user(role, store, user, sizeof user, pw, sizeof pw))
		return -1;
	snprintf(dir, sizeof dir, "%s/privacy-cli-%s", it_env("CRM_TEST_DIR"), user);
	snprintf(cmd, sizeof cmd,
		 "mkdir -p '%s' && export CRM_CONFIG_DIR='%s' && "
		 "{ [ -s '%s/session' ] || printf '%%s\\n' '%s' | '%s/crm' login --user '%s'"
		 " --password-stdin >/dev/null 2>&1; } ; ( '%s/crm' %s ) </dev/null 2>&1",
		 dir, dir, dir, pw, it_env("CRM_BUILD_DIR"), user, it_env("CRM_BUILD_DIR"), args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = 0;
	out[0] = '\0';
	char buf[1024];
	size_t got;
	while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
		size_t take = got < cap - n - 1 ? got : cap - n - 1;
		memcpy(out + n, buf, take);
		n += take;
		out[n] = '\0';
	}
	int status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* crm customer reveal / export / erase: reason required, --json, --out,
 * and erase refusing to run unconfirmed without a terminal. */
static void test_cli(void)
{
	char out[16384], args[512];
	snprintf(args, sizeof args, "customer reveal %s --reason '客户来电' --json", cid);
	int rc = run_crm("call_center", "BJ01", out, sizeof out, args);
	CHECK(rc == 0);
	CHECK(strstr(out, mobile) && strstr(out, landline) && strstr(out, "\"wechat\""));
	if (rc != 0)
		fprintf(stderr, "crm %s: %d: %s\n", args, rc, out);

	snprintf(args, sizeof args, "customer reveal %s", cid);
	rc = run_crm("call_center", "BJ01", out, sizeof out, args);
	CHECK(rc == 2 && strstr(out, "--reason"));

	snprintf(args, sizeof args, "customer reveal %s --reason '分析'", cid);
	rc = run_crm("group_analyst", NULL, out, sizeof out, args);
	CHECK(rc == 4);

	char path[300];
	snprintf(path, sizeof path, "%s/privacy-export-%ld.json", it_env("CRM_TEST_DIR"),
		 (long)getpid());
	snprintf(args, sizeof args, "customer export %s --reason '查阅申请' --out '%s'", cid, path);
	rc = run_crm("group_admin", NULL, out, sizeof out, args);
	CHECK(rc == 0);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	if (f) {
		size_t n = fread(out, 1, sizeof out - 1, f);
		out[n] = '\0';
		fclose(f);
		CHECK(out[0] == '{' && strstr(out, mobile) && strstr(out, rid));
		struct stat st;
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
		unlink(path);
	}

	snprintf(args, sizeof args, "customer erase %s --reason '删除'", cid);
	rc = run_crm("group_admin", NULL, out, sizeof out, args);
	CHECK(rc == 2 && strstr(out, "--yes"));
	CHECK(db_long("SELECT count(*) FROM crm.customers WHERE id = $1::uuid AND erased_at IS NULL",
		      cid) == 1);
}

/* Erase: group admins only; anonymizes in place, keeps the relations and
 * level history, one outbox change with the erased record, one audit
 * entry; the old phone can be registered again as a new customer. */
static void test_erase(void)
{
	long relations = db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", cid);
	long levels = db_long("SELECT count(*) FROM crm.level_changes l JOIN crm.relations r"
			      " ON r.id = l.relation_id WHERE r.customer_id = $1::uuid", cid);
	long outbox = db_long("SELECT count(*) FROM crm.outbox WHERE entity_id = $1::uuid", cid);
	long audited = audit_count("customer.erase", "ok");
	uint64_t version = current_version();
	CHECK(relations == 1 && levels == 1);

	struct crmc *sm = login("store_manager", "BJ01");
	Crm__Envelope *resp = sm ? erase(sm, cid, "客户要求删除") : NULL;
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
	it_free(resp);
	if (sm)
		crmc_close(sm);
	CHECK(current_version() == version);

	struct crmc *admin = login("group_admin", NULL);
	if (!admin) {
		CHECK(false);
		return;
	}
	resp = erase(admin, cid, "");
	CHECK(resp && crmc_status(resp) == CRM__CODE__INVALID_ARGUMENT && field_is(resp, "reason"));
	it_free(resp);
	CHECK(current_version() == version);

	resp = erase(admin, cid, "客户依法要求删除个人信息");
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer);
	char placeholder[24] = "";
	if (resp && resp->customer) {
		const Crm__Customer *cu = resp->customer->customer;
		CHECK(!resp->customer->existed);
		CHECK_STR(cu->name, "已删除客户");
		CHECK(!strncmp(cu->phone, "+860", 4) && strlen(cu->phone) == 15);
		CHECK(cu->n_phones == 1);
		CHECK_STR(cu->wechat, "");
		CHECK_STR(cu->email, "");
		CHECK(cu->n_tags == 0 && cu->birth_year == 0);
		CHECK(cu->version == version + 1);
		CHECK(resp->customer->relation == NULL || resp->customer->n_other_relations == 0);
		snprintf(placeholder, sizeof placeholder, "%s", cu->phone);
	} else if (resp) {
		fprintf(stderr, "erase: %s\n", crmc_status_message(resp));
	}
	it_free(resp);
	CHECK(db_long("SELECT count(*) FROM crm.relations WHERE customer_id = $1::uuid", cid) ==
	      relations);
	CHECK(db_long("SELECT count(*) FROM crm.level_changes l JOIN crm.relations r"
		      " ON r.id = l.relation_id WHERE r.customer_id = $1::uuid", cid) == levels);
	CHECK(db_long("SELECT count(*) FROM crm.customer_phones WHERE customer_id = $1::uuid", cid) ==
	      1);
	CHECK(db_long("SELECT count(*) FROM crm.customers WHERE id = $1::uuid AND erased_at IS NOT NULL"
		      " AND name = '已删除客户' AND wechat = '' AND email = ''", cid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity_id = $1::uuid", cid) ==
	      outbox + 1);
	CHECK(audit_count("customer.erase", "ok") == audited + 1);
	Crm__Customer *out = last_outbox_customer();
	CHECK(out != NULL);
	if (out) {
		CHECK_STR(out->name, "已删除客户");
		CHECK_STR(out->phone, placeholder);
		CHECK_STR(out->wechat, "");
		CHECK(out->version == version + 1);
		crm__customer__free_unpacked(out, NULL);
	}

	/* Again: already erased, nothing written. */
	resp = erase(admin, cid, "重复请求");
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
	      resp->customer->existed);
	it_free(resp);
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity_id = $1::uuid", cid) ==
	      outbox + 1);
	crmc_close(admin);

	/* The owner can no longer change it. */
	struct crmc *owner = login("consultant", "BJ01");
	if (!owner) {
		CHECK(false);
		return;
	}
	resp = it_rename(owner, cid, version + 1, "林晓红");
	CHECK(resp && crmc_status(resp) == CRM__CODE__CONFLICT);
	it_free(resp);

	/* The old mobile is free: registering it makes a new customer. */
	char new_id[37];
	uuid_v7_new(new_id);
	resp = it_create(owner, new_id, "林晓红", mobile);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->customer);
	if (resp && resp->customer) {
		CHECK(!resp->customer->existed);
		CHECK_STR(resp->customer->customer->id, new_id);
		CHECK_STR(resp->customer->customer->phone, mobile);
	}
	it_free(resp);
	crmc_close(owner);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(add_user(OTHER_CONSULTANT, "郑毅", "consultant", "BJ01"));
	test_mask_functions();
	if (setup_customer()) {
		test_masking_per_role();
		test_search_by_phone_for_masked_callers();
		test_update_by_masked_writer_keeps_real_values();
		test_reveal();
		test_export();
		test_cli();
		test_erase();
	}
	PQfinish(db);
	return it_summary();
}
