/* crm, the desk client: shared state of one invocation. */
#ifndef CRM_CLI_H
#define CRM_CLI_H

#include <stdbool.h>

#include "crmclient.h"

/* Exit codes, as DESIGN.md "Client contract" fixes them. */
enum {
	EXIT_OK = 0,
	EXIT_OTHER = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 3,
	EXIT_AUTH = 4,
	EXIT_CONFLICT = 5,
	EXIT_INVALID = 6,
	EXIT_UNAVAILABLE = 7,
};

struct cli {
	char server[256];
	char ca[1024];
	char config_dir[1024];
	bool json;
	struct crmc *conn;
};

/* session.c */
void cli_find_config_dir(struct cli *cli);
/* Reads server/ca from the config file where flags and env left them empty. */
void cli_load_config_file(struct cli *cli);
bool session_save(const struct cli *cli, const char *token, char *err, size_t errcap);
bool session_load(const struct cli *cli, char *token, size_t cap);
void session_remove(const struct cli *cli);

/* main.c */
int exit_for_code(Crm__Code code);
/* Connects and says hello; on failure prints why and returns the exit code. */
int cli_connect(struct cli *cli);
/* Connects and resumes the saved session. */
int cli_connect_session(struct cli *cli);
/* Prints an error response (stderr, and a JSON document with --json) and
 * returns its exit code. */
int cli_fail_response(const struct cli *cli, const Crm__Envelope *resp);
int cli_fail(const struct cli *cli, int exit_code, const char *code_name, const char *field,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends a request and waits; prints transport errors. NULL on failure with
 * *exit_code set. */
Crm__Envelope *cli_call(struct cli *cli, Crm__Envelope *req, int *exit_code);
void print_json(const ProtobufCMessage *msg);

/* Commands. */
int cmd_login(struct cli *cli, int argc, char **argv);
int cmd_logout(struct cli *cli, int argc, char **argv);
int cmd_whoami(struct cli *cli, int argc, char **argv);
int cmd_customer(struct cli *cli, int argc, char **argv);

/* table.c: columns aligned by display width (CJK characters are two wide). */
int text_width(const char *s);
void print_padded(const char *s, int width);

#endif
