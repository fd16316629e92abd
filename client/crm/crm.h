/* crm, the desk client: shared state of one invocation. */
#ifndef CRM_CLI_H
#define CRM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
/* Like cli_fail_response, for errors whose response carries a body (a
 * collision, a stale version): with --json the document holds the error
 * and the body under `key`, the body's name in the Envelope. */
int cli_fail_response_body(const struct cli *cli, const Crm__Envelope *resp, const char *key,
			   const ProtobufCMessage *body);
int cli_fail(const struct cli *cli, int exit_code, const char *code_name, const char *field,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A usage error of `cmd` (exit 2): the problem, then the command's usage. */
int cli_usage(const struct cli *cli, const char *cmd_usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The value of option argv[*i]: moves *i to it, or prints a usage error
 * (returned) when it is missing. */
int cli_opt_value(const struct cli *cli, const char *cmd_usage, int argc, char **argv, int *i,
		  const char **out);
/* The options of one kind of record: handles argv[*i] and returns EXIT_OK
 * or a usage error, or -1 when argv[*i] is not one of its options. */
typedef int (*cli_record_opt_fn)(const struct cli *cli, const char *cmd_usage, int argc,
				 char **argv, int *i, void *opts);
/* The arguments of a versioned update ("customer update", "relation
 * update"): the record's ID (a UUID), --version V, --json, and the record's
 * own options through `opt`. `noun` names the record in messages; the
 * --version hint names the customer ID when `hint_with_id`. Returns EXIT_OK
 * or the usage error it printed. */
int cli_versioned_update_args(const struct cli *cli, const char *cmd_usage, const char *what,
			      const char *noun, bool hint_with_id, int argc, char **argv,
			      cli_record_opt_fn opt, void *opts, const char **id,
			      uint64_t *version);
/* A reply whose body is not the one the request expects. */
int cli_unexpected(const struct cli *cli, const Crm__Envelope *resp);
/* Sends a request and waits; prints transport errors. NULL on failure with
 * *exit_code set. */
Crm__Envelope *cli_call(struct cli *cli, Crm__Envelope *req, int *exit_code);
/* One list request for customer show's card: the reply, or NULL unless it
 * answered OK with `want` (a refusal leaves that part of the card empty). */
Crm__Envelope *card_list(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase want);
void print_json(const ProtobufCMessage *msg);

/* Commands. */
int cmd_login(struct cli *cli, int argc, char **argv);
int cmd_logout(struct cli *cli, int argc, char **argv);
int cmd_whoami(struct cli *cli, int argc, char **argv);
int cmd_customer(struct cli *cli, int argc, char **argv);
int cmd_relation(struct cli *cli, int argc, char **argv);
int cmd_level(struct cli *cli, int argc, char **argv);
/* cmd_privacy.c: customer reveal, export and erase (reason required, audited). */
int customer_reveal(struct cli *cli, int argc, char **argv);
int customer_export(struct cli *cli, int argc, char **argv);
int customer_erase(struct cli *cli, int argc, char **argv);

/* cmd_customer_list.c: list and search (`text` set for search). */
int customer_list(struct cli *cli, int argc, char **argv, const char *cmd_usage, bool search);
extern const char customer_list_usage[], customer_search_usage[];

/* cmd_relation.c: relation options shared by customer add and relation
 * update. The strings point into argv (intent specs are split in place). */
#define RELATION_MAX_INTENTS 16
struct relation_opts {
	Crm__Relation rel;
	Crm__Intent intents[RELATION_MAX_INTENTS];
	Crm__Intent *intent_ptrs[RELATION_MAX_INTENTS];
	const char *fields[8];   /* RelationUpdate.fields, in the order given */
	size_t n_fields;
	bool clear_intents;      /* --no-intents */
};
void relation_opts_init(struct relation_opts *o);
/* Takes argv[*i] when it is a relation option (moving *i past its value).
 * Returns -1 when it is not one, else EXIT_OK or the exit code of a usage
 * error already printed. `update` allows --status and --no-intents. */
int relation_opt(const struct cli *cli, const char *cmd_usage, int argc, char **argv, int *i,
		 struct relation_opts *o, bool update);

/* cmd_followup.c: follow-ups, tasks, the cadence policy; and the card's
 * latest follow-ups and open tasks (customer show), which point into the
 * replies kept in `held` until card_drop_followups. */
int cmd_followup(struct cli *cli, int argc, char **argv);
int cmd_tasks(struct cli *cli, int argc, char **argv);
int cmd_task(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);
/* cmd_template.c: message templates (add, list, show, update, render,
 * send) and the follow-up compliance report. */
int cmd_template(struct cli *cli, int argc, char **argv);
int cmd_compliance(struct cli *cli, int argc, char **argv);
/* cmd_watch.c: tasks as they fall due (reminder.subscribe), until Ctrl-C. */
int cmd_watch(struct cli *cli, int argc, char **argv);
void card_add_followups(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[2]);
void card_drop_followups(Crm__CustomerCard *card, Crm__Envelope *held[2]);
/* cmd_attach.c: crm attach put|get|list; the attachments of follow-ups
 * (one attachment.list) for followup list and customer show, emptied again
 * by attach_drop_followups before the follow-ups' reply is freed. */
int cmd_attach(struct cli *cli, int argc, char **argv);
void attach_fill_followups(struct cli *cli, Crm__Followup **f, size_t n);
void attach_drop_followups(Crm__Followup **f, size_t n);
void format_size(uint64_t bytes, char *out, size_t cap);
/* cmd_sales.c: opportunities, orders, test drives; the card's (customer
 * show), pointing into the replies kept in `held` until card_drop_sales. */
int cmd_opp(struct cli *cli, int argc, char **argv);
int cmd_order(struct cli *cli, int argc, char **argv);
int cmd_testdrive(struct cli *cli, int argc, char **argv);
void card_add_sales(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[3]);
void card_drop_sales(Crm__CustomerCard *card, Crm__Envelope *held[3]);
void print_card_sales(const Crm__CustomerCard *card);
/* card.c: a follow-up in two lines; tasks as a table; "WeChat" for wechat;
 * the card's open tasks and latest follow-ups. */
void print_card_followups(const Crm__CustomerCard *card);
void print_followup_line(const Crm__Followup *f, const char *indent);
void print_task_table(Crm__Task *const *tasks, size_t n, const char *indent);
const char *method_word(const char *m);

/* cmd_service.c: vehicles, visits, base customers, reminders, value
 * classes (after-sales); and the card's vehicles, latest visits and base
 * classes (customer show), which point into `held` until card_drop_service. */
int cmd_vehicle(struct cli *cli, int argc, char **argv);
int cmd_visit(struct cli *cli, int argc, char **argv);
int cmd_base(struct cli *cli, int argc, char **argv);
int cmd_service(struct cli *cli, int argc, char **argv);
int cmd_value(struct cli *cli, int argc, char **argv);
void card_add_service(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[3]);
void card_drop_service(Crm__CustomerCard *card, Crm__Envelope *held[3]);
void print_card_service(const Crm__CustomerCard *card);
/* Shared by cmd_service.c and cmd_service_base.c: the reply of `req` when
 * its status is OK and its body `body`, else NULL after printing why (exit
 * code in *rc); fen as yuan ("1280.50"); a base row's classes as words. */
Crm__Envelope *svc_call(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase body,
			int *rc);
void svc_format_fen(int64_t fen, char *out, size_t cap);
void svc_base_classes(const Crm__BaseCustomer *b, char *out, size_t cap);
/* A table of the service commands: aligned, or tab-separated when it is a
 * list of its own (no indent) and stdout is no terminal. */
struct table;
void svc_table_print(struct table *t, const char *indent);

/* cmd_relationships.c, cmd_org.c, cmd_complaint.c: referrals,
 * organizations, surveys, complaints (issue 6), and their part of the card
 * (customer show): the lists point into the replies kept in `held` until
 * card_drop_relationships. */
int cmd_referral(struct cli *cli, int argc, char **argv);
int cmd_org(struct cli *cli, int argc, char **argv);
int cmd_survey(struct cli *cli, int argc, char **argv);
int cmd_complaint(struct cli *cli, int argc, char **argv);
void card_add_relationships(struct cli *cli, Crm__CustomerCard *card, Crm__Envelope *held[4]);
void card_drop_relationships(Crm__CustomerCard *card, Crm__Envelope *held[4]);
void print_card_relationships(const Crm__CustomerCard *card);
void print_complaint_rows(Crm__Complaint *const *items, size_t n, const char *indent);
/* Sends `req` in the saved session; prints the reply's body (JSON with
 * --json, else `print`) when it is `want`, else the error. Exit code. */
typedef void (*rel_print_fn)(const Crm__Envelope *resp);
int rel_call(struct cli *cli, Crm__Envelope *req, Crm__Envelope__BodyCase want,
	     rel_print_fn print);
bool rel_uuid_arg(const char *s);
/* A local time or date for option `opt`; EXIT_OK or the usage error printed. */
int rel_time_arg(const struct cli *cli, const char *u, const char *opt, const char *v,
		 int64_t *ms);

/* card.c: how records look on a terminal. Times are local. */
void format_ms(int64_t ms, char *out, size_t cap);
void print_customer_brief(const Crm__CustomerReply *reply);
void print_relation_brief(const Crm__Relation *rel, const char *indent);
void print_card(const Crm__CustomerCard *card);
/* The collision message: whose lead it is, where, until when, what to do. */
void print_collision(FILE *out, const Crm__Collision *col, const char *phone);
void format_budget(uint32_t min, uint32_t max, char *out, size_t cap);
void format_intent(const Crm__Intent *in, char *out, size_t cap);

/* table.c: columns aligned by display width (CJK characters are two wide). */
int text_width(const char *s);
void print_padded(const char *s, int width);
/* Copies the longest start of `s` that fits `max_width` columns, ending in
 * "…" when it had to cut. Never splits a UTF-8 sequence. */
void text_truncate(const char *s, int max_width, char *out, size_t cap);

/* A table that buffers its rows to size its columns. Cells are copied. */
struct table {
	int ncols;
	const char **headers;
	int *widths;
	int *max_widths;         /* 0: no limit */
	char **cells;            /* nrows * ncols */
	size_t nrows, cap;
};
bool table_init(struct table *t, int ncols, const char *const *headers);
bool table_add(struct table *t, const char *const *cells);
/* Widths: the widest of header and cells, at most max_widths[c]; widths only
 * grow, so later batches keep the columns of earlier ones. */
void table_fit(struct table *t);
/* Padded columns two spaces apart, each line after `indent`; the last column
 * is not padded. Cells wider than their column are cut with "…". */
void table_print_header(const struct table *t, FILE *out, const char *indent);
void table_print_rows(const struct table *t, FILE *out, const char *indent);
/* Tab-separated: tabs and newlines inside cells become spaces. */
void table_print_tsv_header(const struct table *t, FILE *out);
void table_print_tsv_rows(const struct table *t, FILE *out);
void table_clear_rows(struct table *t);
void table_free(struct table *t);

/* Columns of crm customer list. */
enum list_column {
	COL_ID, COL_NAME, COL_PHONE, COL_GENDER, COL_LEVEL, COL_SOURCE, COL_OWNER,
	COL_OWNER_NAME, COL_STORE, COL_MODEL, COL_BUDGET, COL_REGION, COL_TAGS,
	COL_IMPORTANT, COL_LAST_CONTACT, COL_NEXT_FOLLOWUP, COL_CREATED, COL_RELATION_ID,
	COL_VERSION, COL_RELATION_VERSION, COL__COUNT
};
#define LIST_MAX_COLUMNS 32
extern const char *const list_column_names[COL__COUNT];
extern const char list_default_columns[];
/* Parses "name,phone,level": false with the reason (naming the bad column
 * and listing the valid ones) in `why`. */
bool columns_parse(const char *spec, enum list_column *cols, int *ncols, char *why,
		   size_t whycap);

/* parse.c: pure parsers of command-line values. Each returns false with a
 * reason in `why` that names the value. */
/* "YYYY-MM-DD HH:MM", "YYYY-MM-DDTHH:MM" or "YYYY-MM-DD", local time. */
bool parse_local_time(const char *s, int64_t *ms, char *why, size_t whycap);
/* A whole number in [min, max]. */
bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Yuan: "250000", "25万", "25w", "250k", "25.5万". */
bool parse_yuan(const char *s, uint32_t *out, char *why, size_t whycap);
/* MODEL[:BODY_TYPE[:BUDGET_MIN-BUDGET_MAX[:CONFIG]]]; splits `spec` in place,
 * so the intent's strings point into it. A budget without "-" is both ends. */
bool parse_intent(char *spec, Crm__Intent *out, char *why, size_t whycap);
/* The canonical spelling of a value from a fixed set, or NULL. Levels in
 * either case; sources with "-" or "_"; genders also as 男/女. */
const char *parse_level(const char *s, const char *allowed);
const char *parse_source(const char *s);
const char *parse_gender(const char *s);
const char *parse_age_band(const char *s);
const char *parse_body_type(const char *s);
const char *parse_status(const char *s);
const char *parse_sort(const char *s);
extern const char source_names[], age_band_names[], body_type_names[], sort_names[];

#endif
