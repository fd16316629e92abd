/* The SQL text of every prepared statement in stmts.h: each one is a single
 * call of a function from sql/, with every value a parameter. Parameters are
 * cast explicitly so each statement prepares with fixed types, whatever
 * overloads later migrations add. */
#include "stmts.h"

#define STMT(id, fn_call, n) [id] = {#id, fn_call, n}

const struct stmt_def stmt_defs[STMT__COUNT] = {
	STMT(STMT_SESSION_RESUME,
	     "SELECT * FROM crm.session_resume($1::text)", 1),
	STMT(STMT_SESSION_WHOAMI,
	     "SELECT * FROM crm.session_whoami($1::uuid)", 1),
/* Functions answering a CustomerReply return composite columns; this
 * expands them into the REPLY columns of stmts.h. */
#define REPLY_SELECT "SELECT x.outcome, x.kind, x.message, (x.cu).*, (x.rel).*, (x.col).* FROM "
	STMT(STMT_CUSTOMER_CREATE,
	     REPLY_SELECT "crm.customer_create($1::uuid, $2::text, $3::text, $4::text, $5::text,"
	     " $6::integer, $7::text, $8::text, $9::text, $10::text, $11::text, $12::text,"
	     " $13::boolean, $14::bigint, $15::text, $16::text, $17::text, $18::text, $19::text,"
	     " $20::bigint, $21::text, $22::text, $23::text, $24::text, $25::text, $26::bigint,"
	     " $27::bytea) x", 27),
	STMT(STMT_CUSTOMER_GET,
	     REPLY_SELECT "crm.customer_get($1::uuid, $2::text) x", 2),
	STMT(STMT_CUSTOMER_LIST,
	     "SELECT * FROM crm.customer_query($1::uuid, $2::text, $3::text, $4::text, $5::text,"
	     " $6::text, $7::text, $8::text, $9::text, $10::text, $11::boolean, $12::integer,"
	     " $13::boolean, $14::text, $15::text, $16::boolean, $17::text, $18::integer)", 18),
	/* ---- customer records: writes (h_customer.c, h_relation.c) */
	STMT(STMT_CREATE_CONTEXT,
	     "SELECT * FROM crm.create_context($1::uuid, $2::text, $3::text, $4::text, $5::text)", 5),
	STMT(STMT_CUSTOMER_UPDATE,
	     REPLY_SELECT "crm.customer_update($1::uuid, $2::text, $3::bigint, $4::text, $5::text,"
	     " $6::text, $7::integer, $8::text, $9::text, $10::text, $11::text, $12::text,"
	     " $13::text, $14::boolean, $15::bigint, $16::bytea) x", 16),
	STMT(STMT_RELATION_GET,
	     "SELECT (x.rel).*, x.body_types FROM crm.relation_get($1::uuid, $2::text, $3::text) x", 3),
	STMT(STMT_RELATION_UPDATE,
	     "SELECT x.outcome, (x.rel).* FROM crm.relation_update($1::uuid, $2::text, $3::bigint,"
	     " $4::text, $5::bigint, $6::text, $7::text, $8::text, $9::text, $10::text, $11::bigint,"
	     " $12::bytea) x", 12),
	STMT(STMT_LEVEL_SET_PLAN,
	     "SELECT (x.rel).*, x.after_next_followup_ms, x.at_ms FROM crm.level_set_plan($1::uuid,"
	     " $2::text, $3::bigint, $4::text, $5::text, $6::bigint) x", 6),
	STMT(STMT_LEVEL_SET,
	     "SELECT x.outcome, (x.rel).* FROM crm.level_set_checked($1::uuid, $2::text, $3::bigint,"
	     " $4::text, $5::text, $6::bigint, $7::bigint, $8::bytea) x", 8),
	STMT(STMT_HANDOVER_PLAN,
	     "SELECT (x.rel).*, x.to_owner, x.to_owner_name FROM crm.handover_plan($1::uuid, $2::text, $3::text,"
	     " $4::text) x", 4),
	STMT(STMT_HANDOVER,
	     "SELECT * FROM crm.handover($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::bigint,"
	     " $7::bytea)", 7),
	/* ---- customer records: queries (h_query.c) */
	STMT(STMT_CUSTOMER_CARD,
	     "SELECT * FROM crm.customer_card($1::uuid, $2::text)", 2),
	/* ---- accounts and audit (h_auth.c, h_audit.c; sql/0004) */
	STMT(STMT_LOGIN_BEGIN,
	     "SELECT * FROM crm.login_begin($1::text, $2::text)", 2),
	STMT(STMT_LOGIN_FAIL,
	     "SELECT crm.login_fail($1::text, $2::text, $3::text, $4::uuid)", 4),
	STMT(STMT_LOGIN_OPEN,
	     "SELECT * FROM crm.login_open($1::uuid, $2::text, $3::integer, $4::text)", 4),
	STMT(STMT_LOGOUT,
	     "SELECT crm.session_logout($1::uuid, $2::text)", 2),
	STMT(STMT_AUDIT_DENIED,
	     "SELECT crm.audit_denied($1::uuid, $2::text, $3::text, $4::text)", 4),
	STMT(STMT_AUDIT_LIST,
	     "SELECT * FROM crm.audit_list($1::uuid, $2::text, $3::text, $4::text, $5::bigint,"
	     " $6::bigint, $7::text, $8::bigint, $9::integer)", 9),
	STMT(STMT_REVOKED_CERTS,
	     "SELECT * FROM crm.revoked_cert_serials()", 0),
	STMT(STMT_CERT_LOGIN,
	     "SELECT * FROM crm.cert_login($1::text, $2::text, $3::integer, $4::text)", 4),
	/* ---- privacy (h_privacy.c; sql/0005) */
	STMT(STMT_CUSTOMER_GET_FOR_WRITE,
	     REPLY_SELECT "crm.customer_get_for_write($1::uuid, $2::text, $3::bigint) x", 3),
	STMT(STMT_CUSTOMER_REVEAL,
	     "SELECT x.outcome, x.message, (x.cu).* FROM crm.customer_reveal($1::uuid, $2::text,"
	     " $3::text) x", 3),
	STMT(STMT_CUSTOMER_EXPORT,
	     "SELECT * FROM crm.customer_export($1::uuid, $2::text, $3::text)", 3),
	STMT(STMT_ERASE_PLAN,
	     "SELECT (x.cu).*, x.erased_phone, (x.rel).* FROM crm.customer_erase_plan($1::uuid,"
	     " $2::text) x", 2),
	STMT(STMT_CUSTOMER_ERASE,
	     REPLY_SELECT "crm.customer_erase($1::uuid, $2::text, $3::bigint, $4::text, $5::text,"
	     " $6::text, $7::text, $8::bigint, $9::bytea) x", 9),
	/* ---- the group CA's CRL (crl_http.c; sql/0010) */
	STMT(STMT_CRL_ENTRIES,
	     "SELECT * FROM crm.crl_entries()", 0),
	/* ---- follow-ups, tasks and cadence (h_followup.c; sql/0013) */
	STMT(STMT_FOLLOWUP_PLAN,
	     "SELECT (x.rel).*, x.after_last_contact_ms, x.after_next_followup_ms, x.existed"
	     " FROM crm.followup_plan($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text,"
	     " $7::bigint, $8::text, $9::text, $10::bigint, $11::text, $12::text, $13::bigint) x", 13),
	STMT(STMT_FOLLOWUP_ADD,
	     "SELECT x.outcome, x.kind, (x.fu).*, (x.rel).*, (x.task).* FROM crm.followup_add("
	     "$1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::text,"
	     " $9::text, $10::bigint, $11::text, $12::text, $13::bigint, $14::bigint, $15::bigint,"
	     " $16::bytea) x", 16),
	STMT(STMT_FOLLOWUP_ADD_BATCH,
	     "SELECT x.item, x.err_state, x.err_column, x.err_message, x.outcome, x.kind, (x.fu).*,"
	     " (x.rel).*, (x.task).* FROM crm.followup_add_batch($1::text[]) x", 1),
	STMT(STMT_FOLLOWUP_LIST,
	     "SELECT * FROM crm.followup_list($1::uuid, $2::text, $3::text, $4::integer)", 4),
	STMT(STMT_TASK_LIST,
	     "SELECT * FROM crm.task_list($1::uuid, $2::text, $3::text, $4::text, $5::text,"
	     " $6::text, $7::bigint, $8::integer)", 8),
	STMT(STMT_TASK_SKIP,
	     "SELECT * FROM crm.task_skip($1::uuid, $2::text, $3::text, $4::bigint)", 4),
	STMT(STMT_TASK_REASSIGN,
	     "SELECT * FROM crm.task_reassign($1::uuid, $2::text, $3::text, $4::text, $5::bigint)", 5),
	STMT(STMT_CADENCE_GET,
	     "SELECT * FROM crm.cadence_get($1::uuid)", 1),
	STMT(STMT_CADENCE_SET,
	     "SELECT * FROM crm.cadence_set($1::uuid, $2::text, $3::text, $4::integer, $5::integer,"
	     " $6::text, $7::text, $8::text, $9::boolean)", 9),
	/* ---- relationships (h_relationships.c; sql/0019) */
	STMT(STMT_REFERRAL_ADD,
	     "SELECT x.outcome, (x.rf).* FROM crm.referral_add($1::uuid, $2::text, $3::text,"
	     " $4::text, $5::text, $6::text, $7::text, $8::text, $9::bigint) x", 9),
	STMT(STMT_REFERRAL_REWARD,
	     "SELECT 'ok'::text, * FROM crm.referral_reward($1::uuid, $2::text, $3::text, $4::text,"
	     " $5::bigint)", 5),
	STMT(STMT_REFERRAL_LIST,
	     "SELECT 'ok'::text, * FROM crm.referral_list($1::uuid, $2::text, $3::text, $4::text,"
	     " $5::integer)", 5),
	STMT(STMT_ORG_ADD,
	     "SELECT x.outcome, (x.org).*, x.contact_role FROM crm.org_add($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::text, $6::text, $7::bigint) x", 7),
	STMT(STMT_ORG_CONTACT_ADD,
	     "SELECT x.outcome, (x.org).*, x.contact_role FROM crm.org_contact_add($1::uuid,"
	     " $2::text, $3::text, $4::text, $5::text, $6::bigint) x", 6),
	STMT(STMT_PLAN_ADD,
	     "SELECT x.outcome, (x.org).*, x.contact_role FROM crm.plan_add($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::integer, $6::bigint, $7::text, $8::text, $9::bigint) x", 9),
	STMT(STMT_ORG_LIST,
	     "SELECT x.outcome, (x.org).*, x.contact_role FROM crm.org_list($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::text, $6::integer) x", 6),
	STMT(STMT_SURVEY_QUESTIONS,
	     "SELECT * FROM crm.survey_questions_get($1::uuid, $2::text)", 2),
	STMT(STMT_SURVEY_QUESTION_SET,
	     "SELECT * FROM crm.survey_question_set($1::uuid, $2::text, $3::integer, $4::text,"
	     " $5::integer, $6::boolean)", 6),
	STMT(STMT_SURVEY_ADD,
	     "SELECT x.outcome, (x.sv).* FROM crm.survey_add($1::uuid, $2::text, $3::text, $4::text,"
	     " $5::text, $6::text, $7::text, $8::bigint, $9::text, $10::text, $11::bigint) x", 11),
	STMT(STMT_SURVEY_LIST,
	     "SELECT 'ok'::text, * FROM crm.survey_list($1::uuid, $2::text, $3::text, $4::text,"
	     " $5::integer)", 5),
	STMT(STMT_COMPLAINT_ADD,
	     "SELECT x.outcome, (x.cp).*, x.overdue FROM crm.complaint_add($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::text, $6::text, $7::text, $8::bigint, $9::bigint,"
	     " $10::bigint) x", 10),
	STMT(STMT_COMPLAINT_ASSIGN,
	     "SELECT x.outcome, (x.cp).*, x.overdue FROM crm.complaint_assign($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::bigint) x", 5),
	STMT(STMT_COMPLAINT_MOVE,
	     "SELECT x.outcome, (x.cp).*, x.overdue FROM crm.complaint_move($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::text, $6::bigint) x", 6),
	STMT(STMT_COMPLAINT_LIST,
	     "SELECT x.outcome, (x.cp).*, x.overdue FROM crm.complaint_list($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::text, $6::text, $7::boolean, $8::bigint, $9::integer) x", 9),
	/* ---- after-sales (h_service.c; sql/0017) */
	STMT(STMT_VEHICLE_ADD,
	     "SELECT x.existed, (x.veh).* FROM crm.vehicle_add($1::uuid, $2::text, $3::text,"
	     " $4::text, $5::text, $6::text, $7::text, $8::text, $9::bigint) x", 9),
	STMT(STMT_VEHICLE_LIST,
	     "SELECT * FROM crm.vehicle_list($1::uuid, $2::text, $3::text, $4::text, $5::text,"
	     " $6::integer)", 6),
	STMT(STMT_VISIT_ADD,
	     "SELECT x.existed, (x.vis).* FROM crm.visit_add($1::uuid, $2::text, $3::text,"
	     " $4::bigint, $5::bigint, $6::text, $7::bigint, $8::text, $9::bigint) x", 9),
	STMT(STMT_VISIT_LIST,
	     "SELECT * FROM crm.visit_list($1::uuid, $2::text, $3::text, $4::text, $5::integer)", 5),
	STMT(STMT_BASE_LIST,
	     "SELECT * FROM crm.base_list($1::uuid, $2::text, $3::text, $4::text, $5::bigint,"
	     " $6::integer)", 6),
	STMT(STMT_REMINDERS_RUN,
	     "SELECT x.outcome, x.vehicle_id, (x.task).* FROM crm.reminders_run($1::uuid, $2::text,"
	     " $3::bigint) x", 3),
	STMT(STMT_VALUE_RECOMPUTE,
	     "SELECT * FROM crm.value_recompute($1::uuid, $2::text, $3::bigint)", 3),
	STMT(STMT_SERVICE_DAILY,
	     "SELECT * FROM crm.service_daily(crm.from_ms($1::bigint))", 1),
	STMT(STMT_SERVICE_POLICY_GET,
	     "SELECT * FROM crm.service_policy_get($1::uuid)", 1),
	STMT(STMT_SERVICE_POLICY_SET,
	     "SELECT * FROM crm.service_policy_set($1::uuid, $2::text, $3::boolean, $4::integer,"
	     " $5::integer, $6::integer, $7::integer, $8::integer, $9::double precision,"
	     " $10::double precision)", 10),
	/* ---- attachments of follow-ups (h_attach.c; sql/0020) */
	STMT(STMT_ATTACH_BEGIN,
	     "SELECT x.outcome, (x.att).* FROM crm.attachment_begin($1::uuid, $2::text, $3::text,"
	     " $4::text, $5::text, $6::bigint, $7::text) x", 7),
	STMT(STMT_ATTACH_CHUNK,
	     "SELECT crm.attachment_chunk($1::uuid, $2::text, $3::bigint, $4::bytea)", 4),
	STMT(STMT_ATTACH_COMMIT,
	     "SELECT x.outcome, (x.att).* FROM crm.attachment_commit($1::uuid, $2::text,"
	     " $3::text) x", 3),
	STMT(STMT_ATTACH_ABANDON,
	     "SELECT crm.attachment_abandon($1::uuid, $2::text)", 2),
	STMT(STMT_ATTACH_READ,
	     "SELECT (x.att).*, x.chunk_offset, x.chunk_hex FROM crm.attachment_read($1::uuid,"
	     " $2::text, $3::bigint) x", 3),
	STMT(STMT_ATTACH_LIST,
	     "SELECT * FROM crm.attachment_list($1::uuid, $2::text)", 2),
	/* ---- sales: opportunities, orders, test drives (h_sales.c; sql/0018) */
	STMT(STMT_OPPORTUNITY_WRITE,
	     "SELECT x.outcome, (x.opp).* FROM crm.opportunity_write($1::uuid, $2::text, $3::text,"
	     " $4::bigint, $5::text, $6::text, $7::text, $8::bigint, $9::text, $10::text, $11::text,"
	     " $12::bigint, $13::bigint) x", 13),
	STMT(STMT_OPPORTUNITY_LIST,
	     "SELECT * FROM crm.opportunity_list($1::uuid, $2::text, $3::text, $4::text, $5::text,"
	     " $6::integer)", 6),
	STMT(STMT_ORDER_WRITE,
	     "SELECT x.outcome, x.rel_changed, (x.ord).*, (x.opp).*, (x.rel).* FROM crm.order_write("
	     "$1::uuid, $2::text, $3::boolean, $4::text, $5::bigint, $6::text, $7::text, $8::text,"
	     " $9::text, $10::bigint, $11::bigint, $12::text, $13::text, $14::text, $15::text,"
	     " $16::bigint, $17::bigint, $18::bigint, $19::bigint, $20::bytea) x", 20),
	STMT(STMT_ORDER_LIST,
	     "SELECT * FROM crm.order_list($1::uuid, $2::text, $3::text, $4::text, $5::text,"
	     " $6::integer)", 6),
	STMT(STMT_TEST_DRIVE_ADD,
	     "SELECT x.outcome, (x.td).*, (x.opp).* FROM crm.test_drive_add($1::uuid, $2::text,"
	     " $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::text, $9::bigint) x", 9),
	STMT(STMT_TEST_DRIVE_LIST,
	     "SELECT * FROM crm.test_drive_list($1::uuid, $2::text, $3::text, $4::integer)", 4),
	/* ---- pushed reminders (reminders.c; sql/0021) */
	STMT(STMT_REMINDERS_DUE,
	     "SELECT x.sessions, x.due_at_us, (x.task).* FROM crm.reminders_due($1::text,"
	     " $2::bigint, $3::uuid, $4::bigint, $5::integer) x", 5),
	STMT(STMT_REMINDER_CATCHUP,
	     "SELECT * FROM crm.reminder_catchup($1::uuid, $2::bigint, $3::integer)", 3),
	/* ---- message templates, sending, compliance (h_template.c; sql/0022) */
	STMT(STMT_TEMPLATE_SAVE,
	     "SELECT x.outcome, (x.tpl).* FROM crm.template_save($1::uuid, $2::text, $3::bigint,"
	     " $4::text, $5::text, $6::text, $7::boolean, $8::bigint) x", 8),
	STMT(STMT_TEMPLATE_LIST,
	     "SELECT * FROM crm.template_list($1::uuid, $2::text, $3::boolean, $4::text)", 4),
	STMT(STMT_TEMPLATE_CONTEXT,
	     "SELECT (x.tpl).*, x.customer_id, x.relation_id, x.customer_name, x.consultant,"
	     " x.store_name, x.first_model, x.date_year, x.date_month, x.date_day"
	     " FROM crm.template_context($1::uuid, $2::text, $3::text, $4::text, $5::bigint) x", 5),
	STMT(STMT_TEMPLATE_SEND,
	     "SELECT x.outcome, x.kind, (x.fu).*, (x.rel).*, (x.task).*, x.recipient, x.spooled"
	     " FROM crm.template_send($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text,"
	     " $7::bigint, $8::text, $9::bigint, $10::bigint, $11::bigint, $12::text, $13::bigint,"
	     " $14::text, $15::bytea) x", 15),
	STMT(STMT_TEMPLATE_SPOOLED,
	     "SELECT crm.template_spooled($1::uuid, $2::text)", 2),
	STMT(STMT_COMPLIANCE,
	     "SELECT * FROM crm.compliance_report($1::uuid, $2::bigint, $3::bigint, $4::text,"
	     " $5::text, $6::bigint)", 6),
};
