/* Shared by the customer-records handlers (h_customer.c: create, get;
 * h_relation.c: updates, levels, handover): the one write path to the
 * outbox, the checks of what people type into a record, and the readers of
 * the REPLY rows of stmts.h. */
#ifndef CRM_H_RECORDS_H
#define CRM_H_RECORDS_H

#include "server.h"
#include "textcheck.h"

/* crm.relation_view: the RELATION columns, then store_id and owner_id. */
#define RELATION_VIEW_NCOLS (RELATION_NCOLS + 2)
#define COLLISION_NCOLS 11
/* Where each part of a REPLY row (stmts.h) starts. */
#define REPLY_COL_CUSTOMER 3
#define REPLY_COL_RELATION (REPLY_COL_CUSTOMER + CUSTOMER_NCOLS)
#define REPLY_COL_COLLISION (REPLY_COL_RELATION + RELATION_VIEW_NCOLS)
#define REPLY_NCOLS (REPLY_COL_COLLISION + COLLISION_NCOLS)

#define PHONES_MAX 10
#define TAGS_MAX 32
#define INTENTS_MAX 16
/* Separators of lists that travel as one text (see sql/0002). */
#define LIST_SEP '\x1f'
#define FIELD_SEP '\x1e'

/* A customer's phones, canonical, the primary first. */
struct phone_set {
	size_t n;
	char number[PHONES_MAX][PHONE_CANONICAL_MAX];
};

/* A growing NUL-terminated text; `oom` sticks once memory ran out. */
struct textbuf {
	char *p;
	size_t len, cap;
	bool oom;
};
void tb_add(struct textbuf *b, const char *s);
void tb_addc(struct textbuf *b, char c);
void tb_addu(struct textbuf *b, uint64_t v);
void tb_free(struct textbuf *b);
/* The text so far ("" when empty). */
const char *tb_str(const struct textbuf *b);

/* The one path for writes: the records as written are packed into one
 * bundle (each a 4-byte big-endian length, then the bytes) passed as the
 * last parameter, and the SQL function appends each record it really
 * wrote to the outbox in the same transaction (crm.outbox_append). */
void write_with_outbox(struct request *r, int stmt, int nparams, const char *const *values,
		       const ProtobufCMessage *const *records, size_t nrecords, pool_cb cb);

/* Input checks. Each fails the request with INVALID_ARGUMENT naming the
 * field, and returns false. */
bool phones_collect(struct request *r, const Crm__Customer *cu, struct phone_set *ps);
bool profile_check(struct request *r, const Crm__Customer *cu);
bool relation_check(struct request *r, const Crm__Relation *rel, bool creating);
const char *phone_kind(const char *canonical);
/* A copy of `text` in `s` without the spaces (ASCII and U+3000) around it,
 * as the database stores names; NULL when out of memory. */
char *trim_blanks(const char *text, struct scratch *s);
/* Phones as one text, primary first; Crm__Phone records in `s`. */
void phones_text(const struct phone_set *ps, struct textbuf *b);
bool phones_to_customer(const struct phone_set *ps, Crm__Customer *cu, struct scratch *s);
void tags_text(const Crm__Customer *cu, struct textbuf *b);
void intents_text(const Crm__Relation *rel, struct textbuf *b);
/* Copies the intents into `s`, taking for an empty body type the one in
 * `body_types` (U+001F-joined, position by position). */
bool intents_fill(Crm__Relation *rel, const char *body_types, struct scratch *s);

/* Answers from REPLY rows: a CustomerReply, with status CONFLICT and the
 * rows' message when the outcome is 'collision', 'stale' or 'retry', or with
 * `conflict` as the message when it is not NULL. */
void reply_customer_rows(struct request *r, const PGresult *res, const char *conflict);
/* A RelationReply of the RELATION columns at `col` of row 0; `conflict`
 * answers CONFLICT with `message`. */
void reply_relation_row(struct request *r, const PGresult *res, int col, bool conflict,
			const char *message);
/* True when the result has `ncols` columns; otherwise fails the request. */
bool result_shape_ok(struct request *r, const PGresult *res, int ncols);

#endif
