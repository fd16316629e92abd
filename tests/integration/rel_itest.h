/* Helpers of the relationship tests (test_relationships.c,
 * test_surveys_complaints.c): the requests of sql/0019 built from a few
 * arguments, and the database's side of a write (outbox, audit log). */
#ifndef CRM_REL_ITEST_H
#define CRM_REL_ITEST_H

#include "itest.h"

#define REL_PASSWORD "relationships-test-pw-1"
#define HOUR_MS (3600 * 1000LL)
#define DAY_MS (24 * HOUR_MS)

/* The superuser connection and the fixed clock the tests run at (ten days
 * ago, on the hour); set by rel_setup. */
extern PGconn *rel_db;
extern int64_t rel_t0;
/* Connects, fixes the clock, adds rs.consultant1 and rs.consultant2 at
 * BJ01 (password REL_PASSWORD). */
bool rel_setup(void);

long rel_db_long(const char *sql, const char *param);
Crm__Code rel_code_of(const Crm__Envelope *e);
const char *rel_field_of(const Crm__Envelope *e);
/* The call's status is `want`; prints the message when not. */
bool rel_is(const Crm__Envelope *e, Crm__Code want);
struct crmc *rel_login_user(const char *user);
/* A customer and its relation at the caller's store, owned by the caller. */
bool rel_make_customer(struct crmc *c, const char *name, char cid[37], char rid[37]);
/* Outbox rows and 'change' audit entries of one record. */
long rel_outbox_count(const char *entity, const char *id);
long rel_audit_count(const char *entity, const char *id);
/* The latest outbox payload of `id` (binary, malloc'ed); false when none. */
bool rel_outbox_latest(const char *id, uint8_t **out, size_t *len);
bool rel_table_exists(const char *name);
/* A follow-up of `type` on relation `rid` at `at`; its id in `fid`. */
bool rel_followup(struct crmc *c, const char *rid, const char *type, int64_t at, char fid[37]);
/* The same with its next task: a phone call due at `next_due` for
 * `next_purpose`. */
bool rel_followup_next(struct crmc *c, const char *rid, const char *type, int64_t at,
		       int64_t next_due, const char *next_purpose, char fid[37]);
/* A subject a survey may name: an order of relation `rid` (sql/0018) or a
 * service visit (sql/0017), made directly in the database when its table
 * exists, a new id when it does not. */
bool rel_make_subject(const char *kind, const char *rid, char id[37]);

/* Requests; NULL arguments are "". */
Crm__Envelope *rel_referral_add(struct crmc *c, const char *id, const char *referrer,
				const char *referred, const char *opportunity, const char *status);
Crm__Envelope *rel_reward(struct crmc *c, const char *id, const char *status, const char *note,
			  int64_t at);
Crm__Envelope *rel_referral_list(struct crmc *c, const char *customer, const char *status);
const Crm__Referral *rel_one_referral(const Crm__Envelope *e);
Crm__Envelope *rel_org_add(struct crmc *c, const char *id, const char *kind, const char *name);
Crm__Envelope *rel_org_contact(struct crmc *c, const char *org, const char *customer,
			       const char *role, const char *title);
/* A plan of `quantity` 帕萨特, expected 60 days after rel_t0. */
Crm__Envelope *rel_plan_add(struct crmc *c, const char *org, uint32_t quantity,
			    const char *status);
Crm__Envelope *rel_org_list(struct crmc *c, const char *id, const char *customer);
const Crm__Organization *rel_one_org(const Crm__Envelope *e);
/* `scores`: (question, score) pairs; answered at rel_t0 + 2 h. */
Crm__Envelope *rel_survey_add(struct crmc *c, const char *id, const char *kind,
			      const char *customer, const char *subject_kind,
			      const char *subject_id, const unsigned (*scores)[2], size_t n);
Crm__Envelope *rel_question_set(struct crmc *c, const char *kind, unsigned number,
				const char *text, unsigned scale, bool active);
Crm__Envelope *rel_complaint_add(struct crmc *c, const char *id, const char *customer,
				 const char *priority, int64_t received, int64_t due);
Crm__Envelope *rel_complaint_assign(struct crmc *c, const char *id, const char *to, int64_t at);
Crm__Envelope *rel_complaint_move(struct crmc *c, const char *id, const char *to,
				  const char *note, const char *followup, int64_t at);
Crm__Envelope *rel_complaint_list(struct crmc *c, const char *id, bool overdue_only, int64_t at);
const Crm__Complaint *rel_one_complaint(const Crm__Envelope *e);
bool rel_page_has_complaint(const Crm__Envelope *e, const char *id);

#endif
