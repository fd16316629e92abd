/* Login, sessions and logout against real crmd and PostgreSQL. */
#include "itest.h"

static Crm__Envelope *whoami(struct crmc *c)
{
	Crm__WhoAmIRequest w = CRM__WHO_AM_IREQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_WHOAMI;
	req.whoami = &w;
	return it_call(c, &req);
}

static void test_login_with_right_password_opens_a_session(void)
{
	char user[128], pw[128];
	CHECK(it_demo_user("consultant", "BJ01", user, sizeof user, pw, sizeof pw));
	struct crmc *c = it_connect();
	if (!c)
		return;
	Crm__LoginRequest lr = CRM__LOGIN_REQUEST__INIT;
	lr.username = user;
	lr.password = pw;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGIN;
	req.login = &lr;
	Crm__Envelope *resp = it_call(c, &req);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	if (resp && resp->body_case == CRM__ENVELOPE__BODY_LOGIN_REPLY) {
		CHECK(strlen(resp->login_reply->token) == 64);
		CHECK_STR(resp->login_reply->user->username, user);
		CHECK(resp->login_reply->user->role == CRM__ROLE__CONSULTANT);
		CHECK_STR(resp->login_reply->user->store_code, "BJ01");
		CHECK(resp->login_reply->expires_at > 0);
		/* Only the token's hash is stored. */
		PGconn *db = it_db();
		const char *n = it_db_value(db,
			"SELECT count(*) FROM crm.sessions WHERE token_hash = "
			"sha256(convert_to($1, 'UTF8'))", resp->login_reply->token);
		CHECK(n && strcmp(n, "1") == 0);
		n = it_db_value(db, "SELECT count(*) FROM crm.sessions WHERE token_hash::text LIKE "
				    "'%' || $1 || '%'", resp->login_reply->token);
		CHECK(n && strcmp(n, "0") == 0);
		PQfinish(db);

		/* The token resumes the session on a new connection. */
		struct crmc *c2 = it_connect();
		Crm__ResumeRequest rr = CRM__RESUME_REQUEST__INIT;
		rr.token = resp->login_reply->token;
		Crm__Envelope req2 = CRM__ENVELOPE__INIT;
		req2.body_case = CRM__ENVELOPE__BODY_RESUME;
		req2.resume = &rr;
		Crm__Envelope *r2 = c2 ? it_call(c2, &req2) : NULL;
		CHECK(r2 && crmc_status(r2) == CRM__CODE__OK);
		CHECK(r2 && r2->session && strcmp(r2->session->user->username, user) == 0);
		it_free(r2);
		if (c2)
			crmc_close(c2);
	}
	it_free(resp);
	resp = whoami(c);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->session &&
	      strcmp(resp->session->user->username, user) == 0);
	it_free(resp);
	crmc_close(c);
}

static void test_wrong_password_is_refused_and_recorded(void)
{
	char user[128], pw[128];
	CHECK(it_demo_user("service_advisor", "SH01", user, sizeof user, pw, sizeof pw));
	PGconn *db = it_db();
	const char *v = it_db_value(db, "SELECT count(*) FROM crm.login_failures WHERE username = $1", user);
	long before = v ? atol(v) : -1;
	struct crmc *c = it_connect();
	if (!c) {
		PQfinish(db);
		return;
	}
	CHECK(it_login_as(c, user, "not-the-password") == CRM__CODE__UNAUTHENTICATED);
	CHECK(it_login_as(c, "nobody-by-this-name", "whatever123") == CRM__CODE__UNAUTHENTICATED);
	v = it_db_value(db, "SELECT count(*) FROM crm.login_failures WHERE username = $1", user);
	CHECK(v && atol(v) == before + 1);
	/* Still not logged in. */
	Crm__Envelope *resp = whoami(c);
	CHECK(resp && crmc_status(resp) == CRM__CODE__UNAUTHENTICATED);
	it_free(resp);
	/* The right password still works after a wrong one. */
	CHECK(it_login_as(c, user, pw) == CRM__CODE__OK);
	crmc_close(c);
	PQfinish(db);
}

static void test_logout_revokes_the_token(void)
{
	char user[128], pw[128];
	CHECK(it_demo_user("sales_manager", NULL, user, sizeof user, pw, sizeof pw));
	struct crmc *c = it_connect();
	if (!c)
		return;
	Crm__LoginRequest lr = CRM__LOGIN_REQUEST__INIT;
	lr.username = user;
	lr.password = pw;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGIN;
	req.login = &lr;
	Crm__Envelope *login = it_call(c, &req);
	CHECK(login && crmc_status(login) == CRM__CODE__OK);
	if (!login || crmc_status(login) != CRM__CODE__OK) {
		it_free(login);
		crmc_close(c);
		return;
	}
	Crm__LogoutRequest lo = CRM__LOGOUT_REQUEST__INIT;
	Crm__Envelope req2 = CRM__ENVELOPE__INIT;
	req2.body_case = CRM__ENVELOPE__BODY_LOGOUT;
	req2.logout = &lo;
	Crm__Envelope *resp = it_call(c, &req2);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
	resp = whoami(c);
	CHECK(resp && crmc_status(resp) == CRM__CODE__UNAUTHENTICATED);
	it_free(resp);
	/* The old token no longer resumes anything. */
	Crm__ResumeRequest rr = CRM__RESUME_REQUEST__INIT;
	rr.token = login->login_reply->token;
	Crm__Envelope req3 = CRM__ENVELOPE__INIT;
	req3.body_case = CRM__ENVELOPE__BODY_RESUME;
	req3.resume = &rr;
	resp = it_call(c, &req3);
	CHECK(resp && crmc_status(resp) == CRM__CODE__UNAUTHENTICATED);
	it_free(resp);
	it_free(login);
	crmc_close(c);
}

static void test_stats_need_an_admin(void)
{
	struct crmc *c = it_login("consultant");
	if (!c)
		return;
	Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_STATS;
	req.stats = &sr;
	Crm__Envelope *resp = it_call(c, &req);
	CHECK(resp && crmc_status(resp) == CRM__CODE__PERMISSION_DENIED);
	it_free(resp);
	crmc_close(c);
	c = it_login("group_admin");
	if (!c)
		return;
	resp = it_call(c, &req);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK && resp->stats_reply);
	if (resp && resp->stats_reply) {
		bool has_logins = false, has_hist = false;
		for (size_t i = 0; i < resp->stats_reply->n_counters; i++)
			if (!strcmp(resp->stats_reply->counters[i]->name, "logins_ok") &&
			    resp->stats_reply->counters[i]->value >= 1)
				has_logins = true;
		for (size_t i = 0; i < resp->stats_reply->n_histograms; i++)
			if (!strcmp(resp->stats_reply->histograms[i]->name, "auth.login") &&
			    resp->stats_reply->histograms[i]->count >= 1)
				has_hist = true;
		CHECK(has_logins);
		CHECK(has_hist);
	}
	it_free(resp);
	crmc_close(c);
}

int main(void)
{
	it_init();
	test_login_with_right_password_opens_a_session();
	test_wrong_password_is_refused_and_recorded();
	test_logout_revokes_the_token();
	test_stats_need_an_admin();
	return it_summary();
}
