/* The handler table and the life of a request: permission checks, replies,
 * errors, streams, and the hand-off to the database pool. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "reminders.h"
#include "server.h"


#define STORE_ROLES                                                                        \
	(ROLE_BIT(CRM__ROLE__CONSULTANT) | ROLE_BIT(CRM__ROLE__SALES_MANAGER) |            \
	 ROLE_BIT(CRM__ROLE__SERVICE_ADVISOR) | ROLE_BIT(CRM__ROLE__CALL_CENTER) |         \
	 ROLE_BIT(CRM__ROLE__STORE_MANAGER))
#define GROUP_ROLES (ROLE_BIT(CRM__ROLE__GROUP_ANALYST) | ROLE_BIT(CRM__ROLE__GROUP_ADMIN))
#define PEOPLE (STORE_ROLES | GROUP_ROLES)
#define WRITERS (STORE_ROLES | ROLE_BIT(CRM__ROLE__GROUP_ADMIN))
#define MANAGERS (ROLE_BIT(CRM__ROLE__SALES_MANAGER) | ROLE_BIT(CRM__ROLE__STORE_MANAGER))
#define LEVEL_SETTERS (ROLE_BIT(CRM__ROLE__CONSULTANT) | MANAGERS)

/* Accounts and audit (h_auth.c, h_audit.c). */
void h_audit_list(struct request *r);
/* Follow-ups, tasks and cadence (h_followup.c). */
void h_followup_add(struct request *r);
void h_followup_list(struct request *r);
void h_task_list(struct request *r);
void h_task_skip(struct request *r);
void h_task_reassign(struct request *r);
void h_cadence_get(struct request *r);
void h_cadence_set(struct request *r);
/* After-sales (h_service.c). */
void h_vehicle_add(struct request *r);
void h_vehicle_list(struct request *r);
void h_visit_add(struct request *r);
void h_visit_list(struct request *r);
void h_base_list(struct request *r);
void h_reminders_run(struct request *r);
void h_value_recompute(struct request *r);
void h_service_policy_get(struct request *r);
void h_service_policy_set(struct request *r);
/* Sales: opportunities, orders, test drives (h_sales.c). */
void h_opportunity_add(struct request *r);
void h_opportunity_stage(struct request *r);
void h_opportunity_lose(struct request *r);
void h_opportunity_list(struct request *r);
void h_order_place(struct request *r);
void h_order_deliver(struct request *r);
void h_order_cancel(struct request *r);
void h_order_list(struct request *r);
void h_test_drive_add(struct request *r);
void h_test_drive_list(struct request *r);
/* Relationships: referrals, organizations, surveys, complaints (h_relationships.c). */
void h_referral_add(struct request *r);
void h_referral_reward(struct request *r);
void h_referral_list(struct request *r);
void h_org_add(struct request *r);
void h_org_list(struct request *r);
void h_org_contact_add(struct request *r);
void h_org_plan_add(struct request *r);
void h_survey_add(struct request *r);
void h_survey_list(struct request *r);
void h_survey_questions_get(struct request *r);
void h_survey_question_set(struct request *r);
void h_complaint_add(struct request *r);
void h_complaint_assign(struct request *r);
void h_complaint_move(struct request *r);
void h_complaint_list(struct request *r);
/* Message templates, the sender, compliance (h_template.c). */
void h_template_save(struct request *r);
void h_template_get(struct request *r);
void h_template_list(struct request *r);
void h_template_render(struct request *r);
void h_template_send(struct request *r);
void h_compliance(struct request *r);

/* What the server does: message -> who may call it -> handler, then the
 * widest scope of data it reaches and what it does (the permission table:
 * crmd --permissions prints it, docs/PERMISSIONS.md is that output). */
static const struct handler handlers[] = {
	{CRM__ENVELOPE__BODY_LOGIN, "auth.login", false, ROLES_ALL, false, h_login,
	 SCOPE_NONE, "log in with username and password"},
	{CRM__ENVELOPE__BODY_RESUME, "auth.resume", false, ROLES_ALL, false, h_resume,
	 SCOPE_NONE, "resume a session by its token"},
	{CRM__ENVELOPE__BODY_LOGOUT, "auth.logout", true, ROLES_ALL, false, h_logout,
	 SCOPE_NONE, "end the caller's session"},
	{CRM__ENVELOPE__BODY_WHOAMI, "auth.whoami", true, ROLES_ALL, false, h_whoami,
	 SCOPE_NONE, "the caller's user, role and store"},
	{CRM__ENVELOPE__BODY_PING, "ping", false, ROLES_ALL, false, h_ping,
	 SCOPE_NONE, "liveness check"},
	/* Group analysts only read: no write (create, update, relation, level,
	 * handover, erase) lists them. */
	{CRM__ENVELOPE__BODY_CUSTOMER_CREATE, "customer.create", true, WRITERS, false, h_customer_create,
	 SCOPE_GROUP, "register a customer and the store's relation (lead protection)"},
	{CRM__ENVELOPE__BODY_CUSTOMER_GET, "customer.get", true, PEOPLE, false, h_customer_get,
	 SCOPE_GROUP, "read one customer and their relations"},
	{CRM__ENVELOPE__BODY_CUSTOMER_LIST, "customer.list", true, PEOPLE, true, h_customer_list,
	 SCOPE_GROUP, "list and search customers (streamed)", h_customer_list_more},
	{CRM__ENVELOPE__BODY_CUSTOMER_CARD_GET, "customer.card", true, PEOPLE, false, h_customer_card,
	 SCOPE_GROUP, "a customer's card: relations at every store and history"},
	{CRM__ENVELOPE__BODY_CUSTOMER_UPDATE, "customer.update", true, WRITERS, false, h_customer_update,
	 SCOPE_GROUP, "change a customer's profile and phones"},
	{CRM__ENVELOPE__BODY_RELATION_UPDATE, "relation.update", true, STORE_ROLES, false, h_relation_update,
	 SCOPE_STORE, "change a store relation (source, first contact, status, intents)"},
	{CRM__ENVELOPE__BODY_LEVEL_SET, "level.set", true, LEVEL_SETTERS, false, h_level_set,
	 SCOPE_OWNED, "set a relation's level H, A, B or C"},
	{CRM__ENVELOPE__BODY_HANDOVER, "customer.handover", true, MANAGERS, false, h_handover,
	 SCOPE_STORE, "move relations to another consultant of the store"},
	{CRM__ENVELOPE__BODY_STATS, "admin.stats", true,
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN) | ROLE_BIT(CRM__ROLE__STORE_MANAGER), false, h_stats,
	 SCOPE_NONE, "this server's counters and latencies"},
	/* The first hello of a connection with a client certificate (conn.c). */
	{CRM__ENVELOPE__BODY_HELLO, "auth.cert_login", false, ROLES_ALL, false, h_cert_login,
	 SCOPE_NONE, "log in with a client certificate"},
	{CRM__ENVELOPE__BODY_AUDIT_QUERY, "audit.list", true,
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN) | ROLE_BIT(CRM__ROLE__STORE_MANAGER), false, h_audit_list,
	 SCOPE_GROUP, "read the audit log"},
	/* Privacy (h_privacy.c). Group analysts never see contact details, and
	 * a consultant reveals only customers they own; the SQL functions decide
	 * per customer and audit their refusals too. */
	{CRM__ENVELOPE__BODY_CUSTOMER_REVEAL, "customer.reveal", true,
	 STORE_ROLES | ROLE_BIT(CRM__ROLE__GROUP_ADMIN), false,
	 h_customer_reveal, SCOPE_OWNED, "show a customer's masked phones and WeChat (reason, audited)"},
	{CRM__ENVELOPE__BODY_CUSTOMER_EXPORT, "customer.export", true,
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN) | ROLE_BIT(CRM__ROLE__STORE_MANAGER), false,
	 h_customer_export, SCOPE_GROUP, "everything held on one customer (reason, audited)"},
	{CRM__ENVELOPE__BODY_CUSTOMER_ERASE, "customer.erase", true, ROLE_BIT(CRM__ROLE__GROUP_ADMIN),
	 false, h_customer_erase, SCOPE_GROUP, "anonymize a customer, keeping counts (reason, audited)"},
	/* Follow-ups and tasks (h_followup.c). Only the relation's store
	 * writes them; a consultant the relations they own and the pool's, and
	 * their own and the pool's tasks; managers reassign. */
	{CRM__ENVELOPE__BODY_FOLLOWUP_ADD, "followup.add", true, STORE_ROLES, false, h_followup_add,
	 SCOPE_STORE, "record a follow-up, complete a task, set the next one"},
	{CRM__ENVELOPE__BODY_FOLLOWUP_LIST, "followup.list", true, PEOPLE, false, h_followup_list,
	 SCOPE_GROUP, "a relation's or customer's follow-ups, newest first"},
	{CRM__ENVELOPE__BODY_TASK_LIST, "task.list", true, PEOPLE, false, h_task_list,
	 SCOPE_GROUP, "tasks due today, overdue, this week (own; managers: a person's or the store's)"},
	{CRM__ENVELOPE__BODY_TASK_SKIP, "task.skip", true, STORE_ROLES, false, h_task_skip,
	 SCOPE_STORE, "skip an open task, with a reason"},
	{CRM__ENVELOPE__BODY_TASK_REASSIGN, "task.reassign", true, MANAGERS, false, h_task_reassign,
	 SCOPE_STORE, "give an open task to another person of the store"},
	{CRM__ENVELOPE__BODY_CADENCE_GET, "policy.cadence_get", true, PEOPLE, false, h_cadence_get,
	 SCOPE_NONE, "the group's cadence policy"},
	{CRM__ENVELOPE__BODY_CADENCE_SET, "policy.cadence_set", true, ROLE_BIT(CRM__ROLE__GROUP_ADMIN),
	 false, h_cadence_set, SCOPE_NONE, "set or remove a rule of the cadence policy"},
	/* After-sales (h_service.c). A vehicle follows its customer's scope;
	 * a visit is recorded only by the store that serviced the car. */
	{CRM__ENVELOPE__BODY_VEHICLE_ADD, "vehicle.add", true,
	 ROLE_BIT(CRM__ROLE__CONSULTANT) | MANAGERS | ROLE_BIT(CRM__ROLE__SERVICE_ADVISOR) |
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN), false, h_vehicle_add,
	 SCOPE_GROUP, "register a customer's vehicle (VIN checked, unique in the group)"},
	{CRM__ENVELOPE__BODY_VEHICLE_LIST, "vehicle.list", true, PEOPLE, false, h_vehicle_list,
	 SCOPE_GROUP, "a vehicle by id or VIN, or vehicles by customer or plate"},
	{CRM__ENVELOPE__BODY_VISIT_ADD, "visit.add", true,
	 ROLE_BIT(CRM__ROLE__SERVICE_ADVISOR) | ROLE_BIT(CRM__ROLE__STORE_MANAGER), false,
	 h_visit_add, SCOPE_STORE, "record a service visit at the caller's store"},
	{CRM__ENVELOPE__BODY_VISIT_LIST, "visit.list", true, PEOPLE, false, h_visit_list,
	 SCOPE_GROUP, "service visits of a vehicle, a customer or a store, newest first"},
	{CRM__ENVELOPE__BODY_BASE_LIST, "base.list", true, PEOPLE, false, h_base_list,
	 SCOPE_GROUP, "base customers (archived, active, loyal, lost) at a time, with counts"},
	{CRM__ENVELOPE__BODY_REMINDERS_RUN, "service.reminders_run", true,
	 ROLE_BIT(CRM__ROLE__SERVICE_ADVISOR) | ROLE_BIT(CRM__ROLE__STORE_MANAGER) |
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN), false, h_reminders_run,
	 SCOPE_STORE, "create the maintenance reminder tasks now due"},
	{CRM__ENVELOPE__BODY_VALUE_RECOMPUTE, "value.recompute", true,
	 MANAGERS | ROLE_BIT(CRM__ROLE__GROUP_ADMIN), false, h_value_recompute,
	 SCOPE_GROUP, "recompute value classes A, B, C from 12-month spend (audited)"},
	{CRM__ENVELOPE__BODY_SERVICE_POLICY_GET, "policy.service_get", true, PEOPLE, false,
	 h_service_policy_get, SCOPE_NONE, "the after-sales policy of each brand"},
	{CRM__ENVELOPE__BODY_SERVICE_POLICY_SET, "policy.service_set", true,
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN), false, h_service_policy_set,
	 SCOPE_NONE, "set or remove a brand's after-sales policy (audited)"},
	/* Pushed reminders (reminders.c): a person's own tasks; managers' also
	 * the store pool's. */
	{CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBE, "reminder.subscribe", true, PEOPLE, false,
	 h_reminder_subscribe, SCOPE_STORE, "push the caller's tasks as they fall due; list those already due"},
	/* Sales (h_sales.c). Consultants and managers of the relation's store
	 * write; orders move levels, so a consultant places and changes them
	 * on owned relations only (as level.set). */
	{CRM__ENVELOPE__BODY_OPPORTUNITY_ADD, "opportunity.add", true, LEVEL_SETTERS, false,
	 h_opportunity_add, SCOPE_STORE, "open a sales opportunity on a relation"},
	{CRM__ENVELOPE__BODY_OPPORTUNITY_STAGE, "opportunity.stage", true, LEVEL_SETTERS, false,
	 h_opportunity_stage, SCOPE_STORE, "move an opportunity's stage forward"},
	{CRM__ENVELOPE__BODY_OPPORTUNITY_LOSE, "opportunity.lose", true, LEVEL_SETTERS, false,
	 h_opportunity_lose, SCOPE_STORE, "close an opportunity as lost, with its defeat reason"},
	{CRM__ENVELOPE__BODY_OPPORTUNITY_LIST, "opportunity.list", true, PEOPLE, false,
	 h_opportunity_list, SCOPE_GROUP, "one opportunity, or a relation's, customer's or the caller's"},
	{CRM__ENVELOPE__BODY_ORDER_PLACE, "order.place", true, LEVEL_SETTERS, false, h_order_place,
	 SCOPE_OWNED, "place an order (the relation moves to O)"},
	{CRM__ENVELOPE__BODY_ORDER_DELIVER, "order.deliver", true, LEVEL_SETTERS, false,
	 h_order_deliver, SCOPE_OWNED, "deliver an order: register the vehicle, level D"},
	{CRM__ENVELOPE__BODY_ORDER_CANCEL, "order.cancel", true, LEVEL_SETTERS, false,
	 h_order_cancel, SCOPE_OWNED, "cancel a placed order, with a reason (level T)"},
	{CRM__ENVELOPE__BODY_ORDER_LIST, "order.list", true, PEOPLE, false, h_order_list,
	 SCOPE_GROUP, "one order, or a relation's, customer's or the caller's"},
	{CRM__ENVELOPE__BODY_TEST_DRIVE_ADD, "test_drive.add", true, LEVEL_SETTERS, false,
	 h_test_drive_add, SCOPE_STORE, "record a test drive"},
	{CRM__ENVELOPE__BODY_TEST_DRIVE_LIST, "test_drive.list", true, PEOPLE, false,
	 h_test_drive_list, SCOPE_GROUP, "a relation's, customer's or the caller's test drives"},
	/* Relationships (h_relationships.c). The relation's store writes
	 * referrals, surveys and complaints (a consultant on the relations
	 * they own and the pool's); managers grant rewards and assign
	 * complaints; organizations are their store's. */
	{CRM__ENVELOPE__BODY_REFERRAL_ADD, "referral.add", true, STORE_ROLES, false, h_referral_add,
	 SCOPE_STORE, "record who referred a customer to the store"},
	{CRM__ENVELOPE__BODY_REFERRAL_REWARD, "referral.reward", true, STORE_ROLES, false,
	 h_referral_reward, SCOPE_STORE, "move a referral's reward (managers grant or refuse)"},
	{CRM__ENVELOPE__BODY_REFERRAL_LIST, "referral.list", true, PEOPLE, false, h_referral_list,
	 SCOPE_GROUP, "a customer's or the store's referrals"},
	{CRM__ENVELOPE__BODY_ORG_ADD, "org.add", true, STORE_ROLES, false, h_org_add, SCOPE_STORE,
	 "register a fleet or key account of the store"},
	{CRM__ENVELOPE__BODY_ORG_LIST, "org.list", true, PEOPLE, false, h_org_list, SCOPE_GROUP,
	 "one organization, a customer's, or the store's"},
	{CRM__ENVELOPE__BODY_ORG_CONTACT_ADD, "org.contact_add", true, STORE_ROLES, false,
	 h_org_contact_add, SCOPE_STORE, "link a customer to an organization with a role"},
	{CRM__ENVELOPE__BODY_ORG_PLAN_ADD, "org.plan_add", true, STORE_ROLES, false, h_org_plan_add,
	 SCOPE_STORE, "add an organization's purchase plan"},
	{CRM__ENVELOPE__BODY_SURVEY_ADD, "survey.add", true, STORE_ROLES, false, h_survey_add,
	 SCOPE_STORE, "record a CSI or SSI satisfaction survey"},
	{CRM__ENVELOPE__BODY_SURVEY_LIST, "survey.list", true, PEOPLE, false, h_survey_list,
	 SCOPE_GROUP, "a customer's or the store's surveys"},
	{CRM__ENVELOPE__BODY_SURVEY_QUESTIONS_GET, "survey.questions", true, PEOPLE, false,
	 h_survey_questions_get, SCOPE_NONE, "the CSI and SSI questionnaires"},
	{CRM__ENVELOPE__BODY_SURVEY_QUESTION_SET, "survey.question_set", true,
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN), false, h_survey_question_set, SCOPE_NONE,
	 "add, change or retire a survey question"},
	{CRM__ENVELOPE__BODY_COMPLAINT_ADD, "complaint.add", true, STORE_ROLES, false,
	 h_complaint_add, SCOPE_STORE, "record a customer's complaint"},
	{CRM__ENVELOPE__BODY_COMPLAINT_ASSIGN, "complaint.assign", true, MANAGERS, false,
	 h_complaint_assign, SCOPE_STORE, "give a complaint to a person of the store"},
	{CRM__ENVELOPE__BODY_COMPLAINT_MOVE, "complaint.move", true, STORE_ROLES, false,
	 h_complaint_move, SCOPE_STORE, "handle, resolve, reopen or close a complaint"},
	{CRM__ENVELOPE__BODY_COMPLAINT_LIST, "complaint.list", true, PEOPLE, false,
	 h_complaint_list, SCOPE_GROUP, "one complaint, a customer's or the store's (overdue derived)"},
	/* Message templates (h_template.c): group admins write group-wide
	 * ones, store managers their store's; rendering reads a relation the
	 * caller may read; sending records a follow-up, so only the relation's
	 * store sends. */
	{CRM__ENVELOPE__BODY_TEMPLATE_SAVE, "template.save", true,
	 ROLE_BIT(CRM__ROLE__GROUP_ADMIN) | ROLE_BIT(CRM__ROLE__STORE_MANAGER), false,
	 h_template_save, SCOPE_NONE, "add or change a message template (group-wide or the store's)"},
	{CRM__ENVELOPE__BODY_TEMPLATE_GET, "template.get", true, PEOPLE, false, h_template_get,
	 SCOPE_NONE, "one message template"},
	{CRM__ENVELOPE__BODY_TEMPLATE_LIST, "template.list", true, PEOPLE, false, h_template_list,
	 SCOPE_NONE, "the message templates the caller may use"},
	{CRM__ENVELOPE__BODY_TEMPLATE_RENDER, "template.render", true, PEOPLE, false,
	 h_template_render, SCOPE_GROUP, "fill a template's placeholders for a customer"},
	{CRM__ENVELOPE__BODY_TEMPLATE_SEND, "template.send", true, STORE_ROLES, false,
	 h_template_send, SCOPE_STORE, "send a template's message and record it as a follow-up"},
	{CRM__ENVELOPE__BODY_COMPLIANCE_QUERY, "task.compliance", true, PEOPLE, false, h_compliance,
	 SCOPE_GROUP, "tasks done on time, late and missed, per person, over a period"},
	/* Attachments of follow-ups (h_attach.c): uploaded like follow-ups are
	 * written (the relation's store), read like follow-ups are read. */
	{CRM__ENVELOPE__BODY_ATTACHMENT_BEGIN, "attachment.begin", true, STORE_ROLES, false,
	 h_attach_begin, SCOPE_STORE, "start uploading a file to a follow-up (10 MiB at most)"},
	{CRM__ENVELOPE__BODY_ATTACHMENT_CHUNK, "attachment.chunk", true, STORE_ROLES, false,
	 h_attach_chunk, SCOPE_STORE, "the next piece of an upload"},
	{CRM__ENVELOPE__BODY_ATTACHMENT_COMMIT, "attachment.commit", true, STORE_ROLES, false,
	 h_attach_commit, SCOPE_STORE, "check an upload's size and SHA-256 and store it"},
	{CRM__ENVELOPE__BODY_ATTACHMENT_GET, "attachment.get", true, PEOPLE, true, h_attach_get,
	 SCOPE_GROUP, "read an attachment back (streamed)", h_attach_get_more},
	{CRM__ENVELOPE__BODY_ATTACHMENT_LIST, "attachment.list", true, PEOPLE, false, h_attach_list,
	 SCOPE_GROUP, "the attachments of follow-ups"},
};

#define NHANDLERS (sizeof handlers / sizeof handlers[0])
_Static_assert(NHANDLERS <= STATS_MAX_HISTOGRAMS, "a latency histogram per handler");

const struct handler *handler_for(Crm__Envelope__BodyCase body)
{
	for (size_t i = 0; i < NHANDLERS; i++)
		if (handlers[i].body == body)
			return &handlers[i];
	return NULL;
}

size_t handler_count(void) { return NHANDLERS; }
const struct handler *handler_at(size_t i) { return i < NHANDLERS ? &handlers[i] : NULL; }

/* The data a role reaches at most, whatever the request. */
static enum handler_scope role_scope(Crm__Role role)
{
	switch (role) {
	case CRM__ROLE__CONSULTANT:
		return SCOPE_OWN;
	case CRM__ROLE__GROUP_ANALYST:
	case CRM__ROLE__GROUP_ADMIN:
		return SCOPE_GROUP;
	default:
		return SCOPE_STORE;
	}
}

/* What `role` reaches with request `h`: the narrower of the request's and
 * the role's scope; SCOPE_OWNED narrows only a consultant's. */
static enum handler_scope reach_of(const struct handler *h, Crm__Role role)
{
	enum handler_scope reach = role_scope(role);
	if (h->scope == SCOPE_OWNED)
		return reach == SCOPE_OWN ? SCOPE_OWNED : reach;
	return h->scope < reach ? h->scope : reach;
}

static const char *scope_cell(enum handler_scope scope)
{
	switch (scope) {
	case SCOPE_OWNED:
		return "owned relations";
	case SCOPE_OWN:
		return "own relations";
	case SCOPE_STORE:
		return "own store";
	case SCOPE_GROUP:
		return "group";
	default:
		return "yes";
	}
}

/* One row per request, one column per role: "no", or the scope that role
 * reaches with it (the narrower of the request's and the role's). The
 * table is generated from handlers[] so it cannot drift from what
 * dispatch() enforces. */
void handlers_print_permissions(FILE *out)
{
	static const Crm__Role roles[] = {
		CRM__ROLE__CONSULTANT,	  CRM__ROLE__SALES_MANAGER, CRM__ROLE__SERVICE_ADVISOR,
		CRM__ROLE__CALL_CENTER,	  CRM__ROLE__STORE_MANAGER, CRM__ROLE__GROUP_ANALYST,
		CRM__ROLE__GROUP_ADMIN,	  CRM__ROLE__STORE_NODE,
	};
	const size_t nroles = sizeof roles / sizeof roles[0];
	fprintf(out, "# Permissions\n\n"
		     "Generated by `crmd --permissions` from the handler table in server/dispatch.c;\n"
		     "tests/integration/test_permissions.sh fails when this file differs.\n\n"
		     "A cell is `no` when the role may not call the request, else the data it\n"
		     "reaches: `own relations` (a consultant: the relations they own and the\n"
		     "store pool), `owned relations` (a consultant: only the relations they own;\n"
		     "a store-pool lead must first be handed over to them by a manager),\n"
		     "`own store`, `group` (every store), or `yes` for requests that touch no\n"
		     "customer data. The SQL functions behind each request check the same scopes\n"
		     "again (sql/), and PostgreSQL's row-level security holds crmd's database role\n"
		     "to them on the customer tables (sql/0012_row_level_security.sql).\n"
		     "A refusal answers PERMISSION_DENIED and leaves a `denied` audit entry,\n"
		     "whether the handler table or a SQL function refuses; a customer out of the\n"
		     "caller's scope may instead answer NOT_FOUND (the card, a handover), which\n"
		     "reveals nothing and is not audited.\n\n");
	fprintf(out, "| Request | Needs login |");
	for (size_t k = 0; k < nroles; k++)
		fprintf(out, " %s |", role_name(roles[k]));
	fprintf(out, " What it does |\n|---|---|");
	for (size_t k = 0; k < nroles; k++)
		fprintf(out, "---|");
	fprintf(out, "---|\n");
	for (size_t i = 0; i < NHANDLERS; i++) {
		const struct handler *h = &handlers[i];
		fprintf(out, "| %s | %s |", h->name, h->needs_session ? "yes" : "no");
		for (size_t k = 0; k < nroles; k++) {
			bool allowed = !h->needs_session || !h->roles || (h->roles & ROLE_BIT(roles[k]));
			fprintf(out, " %s |", !allowed ? "no" : scope_cell(reach_of(h, roles[k])));
		}
		fprintf(out, " %s |\n", h->summary ? h->summary : "");
	}
}

static uint64_t now_ns(void) { return uv_hrtime(); }

static void link_request(struct conn *c, struct request *r)
{
	r->next = c->requests;
	if (c->requests)
		c->requests->prev = r;
	c->requests = r;
	c->in_flight++;
}

static void unlink_request(struct request *r)
{
	struct conn *c = r->conn;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->requests = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	c->in_flight--;
}

void req_free(struct request *r)
{
	if (r->env)
		crm__envelope__free_unpacked(r->env, NULL);
	if (r->password) {
		sodium_memzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->password_hash);
	if (r->hctx_free)
		r->hctx_free(r->hctx);
	if (r->user) {
		free(r->user->id);
		free(r->user->username);
		free(r->user->display_name);
		free(r->user->store_code);
		free(r->user->store_name);
		free(r->user);
	}
	free(r);
}

void req_detach(struct request *r)
{
	followup_forget(r);
	if (r->query) {
		pool_forget(r->query);
		r->query = NULL;
	}
	r->conn = NULL;
	/* Thread-pool work cannot be stopped, and a login waiting for a hash
	 * slot sits in the server's queue: those are freed when their turn
	 * comes and they find no connection. */
	if (!r->in_worker && !r->hash_queued)
		req_free(r);
}

struct request *req_find(struct conn *c, uint64_t id)
{
	for (struct request *r = c->requests; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* Ends a request: statistics, unlinking, and waking the connection. */
static void req_end(struct request *r, bool ok)
{
	struct conn *c = r->conn;
	struct server *srv = c->srv;
	uint64_t us = (now_ns() - r->started_ns) / 1000;
	stats_observe(&srv->stats.latency[r->h - handlers], us);
	srv->stats.counters[ok ? ST_RESPONSES_OK : ST_RESPONSES_ERROR]++;
	unlink_request(r);
	req_free(r);
	conn_request_done(c);
}

void req_reply(struct request *r, Crm__Envelope *resp)
{
	resp->id = r->id;
	conn_send_response(r->conn, resp);
	/* A reply may carry a body with an error status (CONFLICT with the
	 * current record): it counts as an error. */
	req_end(r, !resp->status || resp->status->code == CRM__CODE__OK);
}

void req_stream_frame(struct request *r, Crm__Envelope *resp, bool more)
{
	resp->id = r->id;
	resp->more = more;
	if (!more) {
		conn_send_response(r->conn, resp);
		req_end(r, true);
		return;
	}
	conn_send_response(r->conn, resp);
	if (r->credit > 0)
		r->credit--;
}

void req_fail(struct request *r, Crm__Code code, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	Crm__Status st = CRM__STATUS__INIT;
	st.code = code;
	st.message = msg;
	st.field = (char *)(field ? field : "");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.id = r->id;
	resp.status = &st;
	if (code == CRM__CODE__UNAVAILABLE)
		r->conn->srv->stats.counters[ST_UNAVAILABLE]++;
	if (code == CRM__CODE__INTERNAL)
		log_error("request.internal", "conn=%llu id=%llu request=%s reason=\"%s\"",
			  (unsigned long long)r->conn->number, (unsigned long long)r->id,
			  r->h->name, msg);
	conn_send_response(r->conn, &resp);
	req_end(r, false);
}

void req_fail_db(struct request *r, const struct pool_error *err)
{
	/* The database says the session is over (expired, revoked, user
	 * disabled): this connection is logged out from now on. */
	if (err->code == CRM__CODE__UNAUTHENTICATED)
		memset(&r->conn->session, 0, sizeof r->conn->session);
	/* A refusal by the database (DC403 from a SQL function; 42501) is
	 * audited like one by the handler table, with the same bound on
	 * waiting writes: the refusing transaction was rolled back, so this
	 * entry is its only trace. NOT_FOUND for data out of scope is not a
	 * refusal and reveals nothing: it is not audited. */
	if (err->code == CRM__CODE__PERMISSION_DENIED && r->conn->session.active)
		audit_denied(r->conn, r->h->name, err->message);
	req_fail(r, err->code, err->field[0] ? err->field : NULL, "%s", err->message);
}

void req_db(struct request *r, int stmt, int nparams, const char *const *values,
	    const int *lengths, const int *binary, pool_cb cb)
{
	/* On NULL the callback already ran (and may have freed r). */
	struct pool_query *q = pool_exec(r->conn->srv->pool, stmt, nparams, values, lengths,
					 binary, cb, r);
	if (q)
		r->query = q;
}

static void reply_error_now(struct conn *c, uint64_t id, Crm__Code code, const char *field,
			    const char *msg)
{
	Crm__Status st = CRM__STATUS__INIT;
	st.code = code;
	st.message = (char *)msg;
	st.field = (char *)(field ? field : "");
	Crm__Envelope resp = CRM__ENVELOPE__INIT;
	resp.id = id;
	resp.status = &st;
	c->srv->stats.counters[ST_RESPONSES_ERROR]++;
	conn_send_response(c, &resp);
}

void dispatch(struct conn *c, Crm__Envelope *env)
{
	struct server *srv = c->srv;
	srv->stats.counters[ST_REQUESTS]++;
	const struct handler *h = handler_for(env->body_case);
	if (!h) {
		reply_error_now(c, env->id, CRM__CODE__INVALID_ARGUMENT, "body",
				env->body_case == CRM__ENVELOPE__BODY__NOT_SET
					? "the request has no body"
					: "this message is not a request the server accepts");
		crm__envelope__free_unpacked(env, NULL);
		return;
	}
	if (h->needs_session && !c->session.active) {
		reply_error_now(c, env->id, CRM__CODE__UNAUTHENTICATED, NULL,
				"not logged in: log in first (crm login)");
		crm__envelope__free_unpacked(env, NULL);
		return;
	}
	if (h->needs_session && h->roles && !(h->roles & ROLE_BIT(c->session.role))) {
		char msg[160];
		snprintf(msg, sizeof msg, "the %s role may not call %s", role_name(c->session.role),
			 h->name);
		reply_error_now(c, env->id, CRM__CODE__PERMISSION_DENIED, NULL, msg);
		log_info("auth.denied", "conn=%llu user=%s request=%s", (unsigned long long)c->number,
			 c->session.username, h->name);
		audit_denied(c, h->name, NULL); /* the reply above does not wait for it */
		crm__envelope__free_unpacked(env, NULL);
		return;
	}
	struct request *r = calloc(1, sizeof *r);
	if (!r) {
		reply_error_now(c, env->id, CRM__CODE__RESOURCE_EXHAUSTED, NULL, "out of memory");
		crm__envelope__free_unpacked(env, NULL);
		return;
	}
	r->conn = c;
	r->id = env->id;
	r->h = h;
	r->env = env;
	r->started_ns = now_ns();
	if (h->streamed)
		r->credit = env->credit ? (env->credit > 1024 ? 1024 : env->credit) : 8;
	link_request(c, r);
	h->fn(r);
}
