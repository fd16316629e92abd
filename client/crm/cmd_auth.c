/* crm login, logout, whoami. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "crm.h"

/* Reads one line; without echo when `hidden` and stdin is a terminal. */
static bool read_line(const char *prompt, bool hidden, char *buf, size_t cap)
{
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (prompt && tty) {
		fputs(prompt, stderr);
		fflush(stderr);
	}
	if (hidden && tty && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	} else {
		hidden = false;
	}
	bool ok = fgets(buf, (int)cap, stdin) != NULL;
	if (hidden) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (ok)
		buf[strcspn(buf, "\r\n")] = '\0';
	return ok;
}

static void print_user(const Crm__User *u, int64_t expires_at)
{
	char when[64] = "";
	time_t t = (time_t)expires_at;
	struct tm tm;
	if (expires_at && localtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
	printf("%s (%s), ", u->username, u->display_name);
	const ProtobufCEnumValue *role =
		protobuf_c_enum_descriptor_get_value(&crm__role__descriptor, (int)u->role);
	printf("role %s", role ? role->name : "?");
	if (u->store_code && *u->store_code)
		printf(", store %s %s", u->store_code, u->store_name);
	if (*when)
		printf(", session until %s", when);
	printf("\n");
}

int cmd_login(struct cli *cli, int argc, char **argv)
{
	char user[128] = "", password[1100] = "";
	bool from_stdin = false;
	for (int i = 0; i < argc; i++) {
		if ((!strcmp(argv[i], "--user") || !strcmp(argv[i], "-u")) && i + 1 < argc)
			snprintf(user, sizeof user, "%s", argv[++i]);
		else if (!strcmp(argv[i], "--password-stdin"))
			from_stdin = true;
		else if (strcmp(argv[i], "--json") != 0)
			return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", NULL,
					"login: unknown argument %s (usage: crm login [--user NAME] [--password-stdin])",
					argv[i]);
	}
	if (!user[0] && (from_stdin || !read_line("username: ", false, user, sizeof user) || !user[0]))
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "username",
				"login: give the username with --user NAME");
	if (!from_stdin && !isatty(STDIN_FILENO))
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "password",
				"login: no terminal to ask the password on: use --password-stdin");
	if (!read_line("password: ", true, password, sizeof password) || !password[0])
		return cli_fail(cli, EXIT_USAGE, "INVALID_ARGUMENT", "password",
				"login: no password given");
	int rc = cli_connect(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__LoginRequest lr = CRM__LOGIN_REQUEST__INIT;
	lr.username = user;
	lr.password = password;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGIN;
	req.login = &lr;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	memset(password, 0, sizeof password);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
		crm__envelope__free_unpacked(resp, NULL);
		return rc;
	}
	char err[512];
	if (!session_save(cli, resp->login_reply->token, err, sizeof err)) {
		crm__envelope__free_unpacked(resp, NULL);
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "%s", err);
	}
	if (cli->json) {
		Crm__SessionInfo si = CRM__SESSION_INFO__INIT;
		si.user = resp->login_reply->user;
		si.expires_at = resp->login_reply->expires_at;
		print_json(&si.base);
	} else {
		printf("logged in: ");
		print_user(resp->login_reply->user, resp->login_reply->expires_at);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

int cmd_logout(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK) {
		session_remove(cli);
		return rc;
	}
	Crm__LogoutRequest lo = CRM__LOGOUT_REQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_LOGOUT;
	req.logout = &lo;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	rc = crmc_status(resp) == CRM__CODE__OK ? EXIT_OK : cli_fail_response(cli, resp);
	crm__envelope__free_unpacked(resp, NULL);
	if (rc == EXIT_OK) {
		session_remove(cli);
		if (cli->json)
			printf("{}\n");
		else
			printf("logged out\n");
	}
	return rc;
}

int cmd_whoami(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__WhoAmIRequest w = CRM__WHO_AM_IREQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_WHOAMI;
	req.whoami = &w;
	Crm__Envelope *resp = cli_call(cli, &req, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (cli->json) {
		print_json(&resp->session->base);
	} else {
		print_user(resp->session->user, resp->session->expires_at);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}
