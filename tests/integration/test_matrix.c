/* The permission matrix of issue 4, over TLS against the fixture's crmd and
 * PostgreSQL: every request that touches customer data x every role x
 * target, each cell one row of `cells` below with the outcome the
 * documentation gives:
 *   - allowed, or refused with the status the code uses for that request
 *     (PERMISSION_DENIED; NOT_FOUND where the SQL hides what is out of
 *     scope: the card, a handover of another store's relation);
 *   - phones and WeChat masked or not (sql/0005 crm.contact_unmasked), or
 *     for a list whether the row comes back at all;
 *   - the audit log (issue 4 audits every permission denial): a refusal
 *     leaves one 'denied' entry of the caller for that request (the handler
 *     table's permission.denied, or the SQL's own customer.reveal /
 *     customer.export / audit.list refusal), and a reveal, export or erase
 *     one 'ok' entry for the customer. A NOT_FOUND answer is not counted
 *     as a refusal.
 *
 * Allow or deny comes from docs/PERMISSIONS.md: `own relations` is a
 * consultant's relations and the store pool, `owned relations` (reveal,
 * level) the consultant's relations only, `own store` every relation of
 * the store, `group` all. Every write that succeeds leaves one 'change'
 * entry per record it wrote (who, which record, version before and after),
 * and a refused one none; `crm audit --action change` shows them. The callers work at a store of their own (MX01),
 * made here with its users, so that no other test meets them; MX02 is
 * another store of another brand. Targets:
 *   MINE   a relation of MX01 owned by MX01's consultant (the caller, when
 *          the caller is that consultant; only consultants own relations)
 *   STORE  a relation of MX01 owned by MX01's second consultant
 *   POOL   a relation of MX01 in the store pool (no owner)
 *   OTHER  a customer with a relation at MX02 only
 *   NEW    (create) a phone nobody registered
 *   audit.list: STORE the caller's store's entries, OTHER MX02's;
 *   admin.stats: NONE.
 * The store node is MX01's, logged in with its client certificate on a
 * second crmd that asks for one (the fixture's does not).
 *
 * Reads and the updates of profile and relation use one customer per
 * target; level, handover and erase get fresh customers for every cell. The
 * audit entries of refusals are counted per caller and request at the end,
 * since the handler table writes them after answering. */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "matrix-test-pw-1"
#define HOME_STORE "MX01"
#define OTHER_STORE "MX02"

enum request {
	Q_GET, Q_CARD, Q_LIST, Q_REVEAL, Q_EXPORT, Q_AUDIT, Q_STATS, Q_UPDATE, Q_RELATION,
	Q_CREATE, Q_LEVEL, Q_HANDOVER, Q_ERASE, NREQUESTS
};
static const char *const request_names[NREQUESTS] = {
	"customer.get", "customer.card", "customer.list", "customer.reveal", "customer.export",
	"audit.list", "admin.stats", "customer.update", "relation.update", "customer.create",
	"level.set", "customer.handover", "customer.erase",
};

enum role {
	R_CONSULTANT, R_SALES_MANAGER, R_SERVICE_ADVISOR, R_CALL_CENTER, R_STORE_MANAGER,
	R_GROUP_ANALYST, R_GROUP_ADMIN, R_STORE_NODE, NROLES
};
static const char *const role_names[NROLES] = {
	"consultant", "sales_manager", "service_advisor", "call_center", "store_manager",
	"group_analyst", "group_admin", "store_node",
};

enum target { T_MINE, T_STORE, T_POOL, T_OTHER, T_NEW, T_NONE, NTARGETS };
static const char *const target_names[NTARGETS] = {"mine", "store", "pool", "other", "new",
						   "none"};

/* What comes back of the customer's contact details. */
enum view {
	V_NA,      /* no contact details in the reply (or a refusal) */
	V_CLEAR,   /* the real phone and WeChat */
	V_MASKED,  /* +86171****2345, wx****01 */
	V_ABSENT,  /* list: the row does not come back */
};
static const char *const view_names[] = {"-", "unmasked", "masked", "absent"};

enum audit {
	A_NONE,    /* no entry of its own */
	A_DENIED,  /* one 'denied' entry of the caller for this request */
	A_OK,      /* one 'ok' entry of the action for the customer */
};
static const char *const audit_names[] = {"none", "denied entry", "ok entry"};

struct cell {
	enum request req;
	enum role role;
	enum target target;
	Crm__Code code;
	enum view view;
	enum audit audit;
};

#define C_OK CRM__CODE__OK
#define C_DENIED CRM__CODE__PERMISSION_DENIED
#define C_NOT_FOUND CRM__CODE__NOT_FOUND
#define CELL(q, r, t, code, view, audit) {Q_##q, R_##r, T_##t, C_##code, V_##view, A_##audit}

/* The matrix: request, role, target, status, contact details, audit. */
static const struct cell cells[] = {
	/* GET */
	CELL(GET, CONSULTANT, MINE, OK, CLEAR, NONE),
	CELL(GET, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(GET, CONSULTANT, POOL, OK, MASKED, NONE),
	CELL(GET, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(GET, SALES_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(GET, SALES_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(GET, SALES_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(GET, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(GET, SERVICE_ADVISOR, MINE, OK, MASKED, NONE),
	CELL(GET, SERVICE_ADVISOR, STORE, OK, MASKED, NONE),
	CELL(GET, SERVICE_ADVISOR, POOL, OK, MASKED, NONE),
	CELL(GET, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(GET, CALL_CENTER, MINE, OK, MASKED, NONE),
	CELL(GET, CALL_CENTER, STORE, OK, MASKED, NONE),
	CELL(GET, CALL_CENTER, POOL, OK, MASKED, NONE),
	CELL(GET, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(GET, STORE_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(GET, STORE_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(GET, STORE_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(GET, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(GET, GROUP_ANALYST, MINE, OK, MASKED, NONE),
	CELL(GET, GROUP_ANALYST, STORE, OK, MASKED, NONE),
	CELL(GET, GROUP_ANALYST, POOL, OK, MASKED, NONE),
	CELL(GET, GROUP_ANALYST, OTHER, OK, MASKED, NONE),
	CELL(GET, GROUP_ADMIN, MINE, OK, CLEAR, NONE),
	CELL(GET, GROUP_ADMIN, STORE, OK, CLEAR, NONE),
	CELL(GET, GROUP_ADMIN, POOL, OK, CLEAR, NONE),
	CELL(GET, GROUP_ADMIN, OTHER, OK, CLEAR, NONE),
	CELL(GET, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(GET, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(GET, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(GET, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* CARD */
	CELL(CARD, CONSULTANT, MINE, OK, CLEAR, NONE),
	CELL(CARD, CONSULTANT, STORE, NOT_FOUND, NA, NONE),
	CELL(CARD, CONSULTANT, POOL, OK, MASKED, NONE),
	CELL(CARD, CONSULTANT, OTHER, NOT_FOUND, NA, NONE),
	CELL(CARD, SALES_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(CARD, SALES_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(CARD, SALES_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(CARD, SALES_MANAGER, OTHER, NOT_FOUND, NA, NONE),
	CELL(CARD, SERVICE_ADVISOR, MINE, OK, MASKED, NONE),
	CELL(CARD, SERVICE_ADVISOR, STORE, OK, MASKED, NONE),
	CELL(CARD, SERVICE_ADVISOR, POOL, OK, MASKED, NONE),
	CELL(CARD, SERVICE_ADVISOR, OTHER, NOT_FOUND, NA, NONE),
	CELL(CARD, CALL_CENTER, MINE, OK, MASKED, NONE),
	CELL(CARD, CALL_CENTER, STORE, OK, MASKED, NONE),
	CELL(CARD, CALL_CENTER, POOL, OK, MASKED, NONE),
	CELL(CARD, CALL_CENTER, OTHER, NOT_FOUND, NA, NONE),
	CELL(CARD, STORE_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(CARD, STORE_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(CARD, STORE_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(CARD, STORE_MANAGER, OTHER, NOT_FOUND, NA, NONE),
	CELL(CARD, GROUP_ANALYST, MINE, OK, MASKED, NONE),
	CELL(CARD, GROUP_ANALYST, STORE, OK, MASKED, NONE),
	CELL(CARD, GROUP_ANALYST, POOL, OK, MASKED, NONE),
	CELL(CARD, GROUP_ANALYST, OTHER, OK, MASKED, NONE),
	CELL(CARD, GROUP_ADMIN, MINE, OK, CLEAR, NONE),
	CELL(CARD, GROUP_ADMIN, STORE, OK, CLEAR, NONE),
	CELL(CARD, GROUP_ADMIN, POOL, OK, CLEAR, NONE),
	CELL(CARD, GROUP_ADMIN, OTHER, OK, CLEAR, NONE),
	CELL(CARD, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(CARD, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(CARD, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(CARD, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* LIST */
	CELL(LIST, CONSULTANT, MINE, OK, CLEAR, NONE),
	CELL(LIST, CONSULTANT, STORE, OK, ABSENT, NONE),
	CELL(LIST, CONSULTANT, POOL, OK, MASKED, NONE),
	CELL(LIST, CONSULTANT, OTHER, OK, ABSENT, NONE),
	CELL(LIST, SALES_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(LIST, SALES_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(LIST, SALES_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(LIST, SALES_MANAGER, OTHER, OK, ABSENT, NONE),
	CELL(LIST, SERVICE_ADVISOR, MINE, OK, MASKED, NONE),
	CELL(LIST, SERVICE_ADVISOR, STORE, OK, MASKED, NONE),
	CELL(LIST, SERVICE_ADVISOR, POOL, OK, MASKED, NONE),
	CELL(LIST, SERVICE_ADVISOR, OTHER, OK, ABSENT, NONE),
	CELL(LIST, CALL_CENTER, MINE, OK, MASKED, NONE),
	CELL(LIST, CALL_CENTER, STORE, OK, MASKED, NONE),
	CELL(LIST, CALL_CENTER, POOL, OK, MASKED, NONE),
	CELL(LIST, CALL_CENTER, OTHER, OK, ABSENT, NONE),
	CELL(LIST, STORE_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(LIST, STORE_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(LIST, STORE_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(LIST, STORE_MANAGER, OTHER, OK, ABSENT, NONE),
	CELL(LIST, GROUP_ANALYST, MINE, OK, MASKED, NONE),
	CELL(LIST, GROUP_ANALYST, STORE, OK, MASKED, NONE),
	CELL(LIST, GROUP_ANALYST, POOL, OK, MASKED, NONE),
	CELL(LIST, GROUP_ANALYST, OTHER, OK, MASKED, NONE),
	CELL(LIST, GROUP_ADMIN, MINE, OK, CLEAR, NONE),
	CELL(LIST, GROUP_ADMIN, STORE, OK, CLEAR, NONE),
	CELL(LIST, GROUP_ADMIN, POOL, OK, CLEAR, NONE),
	CELL(LIST, GROUP_ADMIN, OTHER, OK, CLEAR, NONE),
	CELL(LIST, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(LIST, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(LIST, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(LIST, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* REVEAL */
	CELL(REVEAL, CONSULTANT, MINE, OK, CLEAR, OK),
	CELL(REVEAL, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(REVEAL, CONSULTANT, POOL, DENIED, NA, DENIED),
	CELL(REVEAL, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(REVEAL, SALES_MANAGER, MINE, OK, CLEAR, OK),
	CELL(REVEAL, SALES_MANAGER, STORE, OK, CLEAR, OK),
	CELL(REVEAL, SALES_MANAGER, POOL, OK, CLEAR, OK),
	CELL(REVEAL, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(REVEAL, SERVICE_ADVISOR, MINE, OK, CLEAR, OK),
	CELL(REVEAL, SERVICE_ADVISOR, STORE, OK, CLEAR, OK),
	CELL(REVEAL, SERVICE_ADVISOR, POOL, OK, CLEAR, OK),
	CELL(REVEAL, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(REVEAL, CALL_CENTER, MINE, OK, CLEAR, OK),
	CELL(REVEAL, CALL_CENTER, STORE, OK, CLEAR, OK),
	CELL(REVEAL, CALL_CENTER, POOL, OK, CLEAR, OK),
	CELL(REVEAL, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(REVEAL, STORE_MANAGER, MINE, OK, CLEAR, OK),
	CELL(REVEAL, STORE_MANAGER, STORE, OK, CLEAR, OK),
	CELL(REVEAL, STORE_MANAGER, POOL, OK, CLEAR, OK),
	CELL(REVEAL, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(REVEAL, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(REVEAL, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(REVEAL, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(REVEAL, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(REVEAL, GROUP_ADMIN, MINE, OK, CLEAR, OK),
	CELL(REVEAL, GROUP_ADMIN, STORE, OK, CLEAR, OK),
	CELL(REVEAL, GROUP_ADMIN, POOL, OK, CLEAR, OK),
	CELL(REVEAL, GROUP_ADMIN, OTHER, OK, CLEAR, OK),
	CELL(REVEAL, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(REVEAL, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(REVEAL, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(REVEAL, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* EXPORT */
	CELL(EXPORT, CONSULTANT, MINE, DENIED, NA, DENIED),
	CELL(EXPORT, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(EXPORT, CONSULTANT, POOL, DENIED, NA, DENIED),
	CELL(EXPORT, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(EXPORT, SALES_MANAGER, MINE, DENIED, NA, DENIED),
	CELL(EXPORT, SALES_MANAGER, STORE, DENIED, NA, DENIED),
	CELL(EXPORT, SALES_MANAGER, POOL, DENIED, NA, DENIED),
	CELL(EXPORT, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(EXPORT, SERVICE_ADVISOR, MINE, DENIED, NA, DENIED),
	CELL(EXPORT, SERVICE_ADVISOR, STORE, DENIED, NA, DENIED),
	CELL(EXPORT, SERVICE_ADVISOR, POOL, DENIED, NA, DENIED),
	CELL(EXPORT, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(EXPORT, CALL_CENTER, MINE, DENIED, NA, DENIED),
	CELL(EXPORT, CALL_CENTER, STORE, DENIED, NA, DENIED),
	CELL(EXPORT, CALL_CENTER, POOL, DENIED, NA, DENIED),
	CELL(EXPORT, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(EXPORT, STORE_MANAGER, MINE, OK, CLEAR, OK),
	CELL(EXPORT, STORE_MANAGER, STORE, OK, CLEAR, OK),
	CELL(EXPORT, STORE_MANAGER, POOL, OK, CLEAR, OK),
	CELL(EXPORT, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(EXPORT, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(EXPORT, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(EXPORT, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(EXPORT, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(EXPORT, GROUP_ADMIN, MINE, OK, CLEAR, OK),
	CELL(EXPORT, GROUP_ADMIN, STORE, OK, CLEAR, OK),
	CELL(EXPORT, GROUP_ADMIN, POOL, OK, CLEAR, OK),
	CELL(EXPORT, GROUP_ADMIN, OTHER, OK, CLEAR, OK),
	CELL(EXPORT, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(EXPORT, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(EXPORT, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(EXPORT, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* AUDIT */
	CELL(AUDIT, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(AUDIT, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(AUDIT, SALES_MANAGER, STORE, DENIED, NA, DENIED),
	CELL(AUDIT, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(AUDIT, SERVICE_ADVISOR, STORE, DENIED, NA, DENIED),
	CELL(AUDIT, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(AUDIT, CALL_CENTER, STORE, DENIED, NA, DENIED),
	CELL(AUDIT, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(AUDIT, STORE_MANAGER, STORE, OK, NA, NONE),
	CELL(AUDIT, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(AUDIT, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(AUDIT, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(AUDIT, GROUP_ADMIN, STORE, OK, NA, NONE),
	CELL(AUDIT, GROUP_ADMIN, OTHER, OK, NA, NONE),
	CELL(AUDIT, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(AUDIT, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* STATS */
	CELL(STATS, CONSULTANT, NONE, DENIED, NA, DENIED),
	CELL(STATS, SALES_MANAGER, NONE, DENIED, NA, DENIED),
	CELL(STATS, SERVICE_ADVISOR, NONE, DENIED, NA, DENIED),
	CELL(STATS, CALL_CENTER, NONE, DENIED, NA, DENIED),
	CELL(STATS, STORE_MANAGER, NONE, OK, NA, NONE),
	CELL(STATS, GROUP_ANALYST, NONE, DENIED, NA, DENIED),
	CELL(STATS, GROUP_ADMIN, NONE, OK, NA, NONE),
	CELL(STATS, STORE_NODE, NONE, DENIED, NA, DENIED),

	/* UPDATE */
	CELL(UPDATE, CONSULTANT, MINE, OK, CLEAR, NONE),
	CELL(UPDATE, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(UPDATE, CONSULTANT, POOL, OK, MASKED, NONE),
	CELL(UPDATE, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(UPDATE, SALES_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(UPDATE, SALES_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(UPDATE, SALES_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(UPDATE, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(UPDATE, SERVICE_ADVISOR, MINE, OK, MASKED, NONE),
	CELL(UPDATE, SERVICE_ADVISOR, STORE, OK, MASKED, NONE),
	CELL(UPDATE, SERVICE_ADVISOR, POOL, OK, MASKED, NONE),
	CELL(UPDATE, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(UPDATE, CALL_CENTER, MINE, OK, MASKED, NONE),
	CELL(UPDATE, CALL_CENTER, STORE, OK, MASKED, NONE),
	CELL(UPDATE, CALL_CENTER, POOL, OK, MASKED, NONE),
	CELL(UPDATE, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(UPDATE, STORE_MANAGER, MINE, OK, CLEAR, NONE),
	CELL(UPDATE, STORE_MANAGER, STORE, OK, CLEAR, NONE),
	CELL(UPDATE, STORE_MANAGER, POOL, OK, CLEAR, NONE),
	CELL(UPDATE, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(UPDATE, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(UPDATE, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(UPDATE, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(UPDATE, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(UPDATE, GROUP_ADMIN, MINE, OK, CLEAR, NONE),
	CELL(UPDATE, GROUP_ADMIN, STORE, OK, CLEAR, NONE),
	CELL(UPDATE, GROUP_ADMIN, POOL, OK, CLEAR, NONE),
	CELL(UPDATE, GROUP_ADMIN, OTHER, OK, CLEAR, NONE),
	CELL(UPDATE, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(UPDATE, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(UPDATE, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(UPDATE, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* RELATION */
	CELL(RELATION, CONSULTANT, MINE, OK, NA, NONE),
	CELL(RELATION, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(RELATION, CONSULTANT, POOL, OK, NA, NONE),
	CELL(RELATION, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, SALES_MANAGER, MINE, OK, NA, NONE),
	CELL(RELATION, SALES_MANAGER, STORE, OK, NA, NONE),
	CELL(RELATION, SALES_MANAGER, POOL, OK, NA, NONE),
	CELL(RELATION, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, SERVICE_ADVISOR, MINE, OK, NA, NONE),
	CELL(RELATION, SERVICE_ADVISOR, STORE, OK, NA, NONE),
	CELL(RELATION, SERVICE_ADVISOR, POOL, OK, NA, NONE),
	CELL(RELATION, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, CALL_CENTER, MINE, OK, NA, NONE),
	CELL(RELATION, CALL_CENTER, STORE, OK, NA, NONE),
	CELL(RELATION, CALL_CENTER, POOL, OK, NA, NONE),
	CELL(RELATION, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, STORE_MANAGER, MINE, OK, NA, NONE),
	CELL(RELATION, STORE_MANAGER, STORE, OK, NA, NONE),
	CELL(RELATION, STORE_MANAGER, POOL, OK, NA, NONE),
	CELL(RELATION, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ADMIN, MINE, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ADMIN, STORE, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ADMIN, POOL, DENIED, NA, DENIED),
	CELL(RELATION, GROUP_ADMIN, OTHER, DENIED, NA, DENIED),
	CELL(RELATION, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(RELATION, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(RELATION, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(RELATION, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* CREATE */
	CELL(CREATE, CONSULTANT, NEW, OK, CLEAR, NONE),
	CELL(CREATE, CONSULTANT, OTHER, OK, CLEAR, NONE),
	CELL(CREATE, SALES_MANAGER, NEW, OK, CLEAR, NONE),
	CELL(CREATE, SALES_MANAGER, OTHER, OK, CLEAR, NONE),
	CELL(CREATE, SERVICE_ADVISOR, NEW, OK, MASKED, NONE),
	CELL(CREATE, SERVICE_ADVISOR, OTHER, OK, MASKED, NONE),
	CELL(CREATE, CALL_CENTER, NEW, OK, MASKED, NONE),
	CELL(CREATE, CALL_CENTER, OTHER, OK, MASKED, NONE),
	CELL(CREATE, STORE_MANAGER, NEW, OK, CLEAR, NONE),
	CELL(CREATE, STORE_MANAGER, OTHER, OK, CLEAR, NONE),
	CELL(CREATE, GROUP_ANALYST, NEW, DENIED, NA, DENIED),
	CELL(CREATE, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(CREATE, GROUP_ADMIN, NEW, OK, CLEAR, NONE),
	CELL(CREATE, GROUP_ADMIN, OTHER, OK, CLEAR, NONE),
	CELL(CREATE, STORE_NODE, NEW, DENIED, NA, DENIED),
	CELL(CREATE, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* LEVEL */
	CELL(LEVEL, CONSULTANT, MINE, OK, NA, NONE),
	CELL(LEVEL, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(LEVEL, CONSULTANT, POOL, DENIED, NA, DENIED),
	CELL(LEVEL, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, SALES_MANAGER, MINE, OK, NA, NONE),
	CELL(LEVEL, SALES_MANAGER, STORE, OK, NA, NONE),
	CELL(LEVEL, SALES_MANAGER, POOL, OK, NA, NONE),
	CELL(LEVEL, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, SERVICE_ADVISOR, MINE, DENIED, NA, DENIED),
	CELL(LEVEL, SERVICE_ADVISOR, STORE, DENIED, NA, DENIED),
	CELL(LEVEL, SERVICE_ADVISOR, POOL, DENIED, NA, DENIED),
	CELL(LEVEL, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, CALL_CENTER, MINE, DENIED, NA, DENIED),
	CELL(LEVEL, CALL_CENTER, STORE, DENIED, NA, DENIED),
	CELL(LEVEL, CALL_CENTER, POOL, DENIED, NA, DENIED),
	CELL(LEVEL, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, STORE_MANAGER, MINE, OK, NA, NONE),
	CELL(LEVEL, STORE_MANAGER, STORE, OK, NA, NONE),
	CELL(LEVEL, STORE_MANAGER, POOL, OK, NA, NONE),
	CELL(LEVEL, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ADMIN, MINE, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ADMIN, STORE, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ADMIN, POOL, DENIED, NA, DENIED),
	CELL(LEVEL, GROUP_ADMIN, OTHER, DENIED, NA, DENIED),
	CELL(LEVEL, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(LEVEL, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(LEVEL, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(LEVEL, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* HANDOVER */
	CELL(HANDOVER, CONSULTANT, MINE, DENIED, NA, DENIED),
	CELL(HANDOVER, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(HANDOVER, CONSULTANT, POOL, DENIED, NA, DENIED),
	CELL(HANDOVER, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(HANDOVER, SALES_MANAGER, MINE, OK, NA, NONE),
	CELL(HANDOVER, SALES_MANAGER, STORE, OK, NA, NONE),
	CELL(HANDOVER, SALES_MANAGER, POOL, OK, NA, NONE),
	CELL(HANDOVER, SALES_MANAGER, OTHER, NOT_FOUND, NA, NONE),
	CELL(HANDOVER, SERVICE_ADVISOR, MINE, DENIED, NA, DENIED),
	CELL(HANDOVER, SERVICE_ADVISOR, STORE, DENIED, NA, DENIED),
	CELL(HANDOVER, SERVICE_ADVISOR, POOL, DENIED, NA, DENIED),
	CELL(HANDOVER, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(HANDOVER, CALL_CENTER, MINE, DENIED, NA, DENIED),
	CELL(HANDOVER, CALL_CENTER, STORE, DENIED, NA, DENIED),
	CELL(HANDOVER, CALL_CENTER, POOL, DENIED, NA, DENIED),
	CELL(HANDOVER, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(HANDOVER, STORE_MANAGER, MINE, OK, NA, NONE),
	CELL(HANDOVER, STORE_MANAGER, STORE, OK, NA, NONE),
	CELL(HANDOVER, STORE_MANAGER, POOL, OK, NA, NONE),
	CELL(HANDOVER, STORE_MANAGER, OTHER, NOT_FOUND, NA, NONE),
	CELL(HANDOVER, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ADMIN, MINE, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ADMIN, STORE, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ADMIN, POOL, DENIED, NA, DENIED),
	CELL(HANDOVER, GROUP_ADMIN, OTHER, DENIED, NA, DENIED),
	CELL(HANDOVER, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(HANDOVER, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(HANDOVER, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(HANDOVER, STORE_NODE, OTHER, DENIED, NA, DENIED),

	/* ERASE */
	CELL(ERASE, CONSULTANT, MINE, DENIED, NA, DENIED),
	CELL(ERASE, CONSULTANT, STORE, DENIED, NA, DENIED),
	CELL(ERASE, CONSULTANT, POOL, DENIED, NA, DENIED),
	CELL(ERASE, CONSULTANT, OTHER, DENIED, NA, DENIED),
	CELL(ERASE, SALES_MANAGER, MINE, DENIED, NA, DENIED),
	CELL(ERASE, SALES_MANAGER, STORE, DENIED, NA, DENIED),
	CELL(ERASE, SALES_MANAGER, POOL, DENIED, NA, DENIED),
	CELL(ERASE, SALES_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(ERASE, SERVICE_ADVISOR, MINE, DENIED, NA, DENIED),
	CELL(ERASE, SERVICE_ADVISOR, STORE, DENIED, NA, DENIED),
	CELL(ERASE, SERVICE_ADVISOR, POOL, DENIED, NA, DENIED),
	CELL(ERASE, SERVICE_ADVISOR, OTHER, DENIED, NA, DENIED),
	CELL(ERASE, CALL_CENTER, MINE, DENIED, NA, DENIED),
	CELL(ERASE, CALL_CENTER, STORE, DENIED, NA, DENIED),
	CELL(ERASE, CALL_CENTER, POOL, DENIED, NA, DENIED),
	CELL(ERASE, CALL_CENTER, OTHER, DENIED, NA, DENIED),
	CELL(ERASE, STORE_MANAGER, MINE, DENIED, NA, DENIED),
	CELL(ERASE, STORE_MANAGER, STORE, DENIED, NA, DENIED),
	CELL(ERASE, STORE_MANAGER, POOL, DENIED, NA, DENIED),
	CELL(ERASE, STORE_MANAGER, OTHER, DENIED, NA, DENIED),
	CELL(ERASE, GROUP_ANALYST, MINE, DENIED, NA, DENIED),
	CELL(ERASE, GROUP_ANALYST, STORE, DENIED, NA, DENIED),
	CELL(ERASE, GROUP_ANALYST, POOL, DENIED, NA, DENIED),
	CELL(ERASE, GROUP_ANALYST, OTHER, DENIED, NA, DENIED),
	CELL(ERASE, GROUP_ADMIN, MINE, OK, NA, OK),
	CELL(ERASE, GROUP_ADMIN, STORE, OK, NA, OK),
	CELL(ERASE, GROUP_ADMIN, POOL, OK, NA, OK),
	CELL(ERASE, GROUP_ADMIN, OTHER, OK, NA, OK),
	CELL(ERASE, STORE_NODE, MINE, DENIED, NA, DENIED),
	CELL(ERASE, STORE_NODE, STORE, DENIED, NA, DENIED),
	CELL(ERASE, STORE_NODE, POOL, DENIED, NA, DENIED),
	CELL(ERASE, STORE_NODE, OTHER, DENIED, NA, DENIED),
};

#define NCELLS (sizeof cells / sizeof cells[0])

/* A customer a cell works on, and its store relation. */
struct target_ref {
	char cid[37], rid[37];
	char phone[24], wechat[40];
};

static PGconn *db;
static struct crmc *conns[NROLES];
static char usernames[NROLES][64];
static struct crmc *second_consultant, *other_consultant;  /* MX01's second, MX02's */
static struct target_ref shared[T_OTHER + 1];
static char tag[32];
static long audit_mark;         /* the last audit entry before the first cell */
static int cells_failed;

/* ------------------------------------------------------------ helpers */

static long db_count(const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	long v = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = atol(PQgetvalue(res, 0, 0));
	else
		fprintf(stderr, "db: %s: %s\n", sql, PQresultErrorMessage(res));
	PQclear(res);
	return v;
}

static long audit_max(void)
{
	return db_count("SELECT coalesce(max(id), 0) FROM crm.audit_log", 0, NULL);
}

static uint64_t version_of(const char *table, const char *id)
{
	const char *sql = !strcmp(table, "customers")
				  ? "SELECT version FROM crm.customers WHERE id = $1::uuid"
				  : "SELECT version FROM crm.relations WHERE id = $1::uuid";
	const char *params[] = {id};
	long v = db_count(sql, 1, params);
	return v > 0 ? (uint64_t)v : 0;
}

/* The real values as a masked reader sees them (sql/0005). */
static void masked_phone(const char *p, char *out, size_t cap)
{
	size_t n = strlen(p);
	snprintf(out, cap, "%.6s****%s", p, n >= 4 ? p + n - 4 : p);
}

static void masked_wechat(const char *w, char *out, size_t cap)
{
	size_t n = strlen(w);
	if (n < 8)
		snprintf(out, cap, "****");
	else
		snprintf(out, cap, "%.2s****%s", w, w + n - 2);
}

/* V_CLEAR or V_MASKED when every phone and the WeChat ID are the target's,
 * all real or all masked; V_NA for anything else. */
static enum view view_of(const Crm__Customer *cu, const struct target_ref *t)
{
	char mp[48], mw[64];
	masked_phone(t->phone, mp, sizeof mp);
	masked_wechat(t->wechat, mw, sizeof mw);
	if (!cu || !cu->phone || !cu->wechat || cu->n_phones != 1)
		return V_NA;
	if (!strcmp(cu->phone, t->phone) && !strcmp(cu->phones[0]->number, t->phone) &&
	    !strcmp(cu->wechat, t->wechat))
		return V_CLEAR;
	if (!strcmp(cu->phone, mp) && !strcmp(cu->phones[0]->number, mp) && !strcmp(cu->wechat, mw))
		return V_MASKED;
	return V_NA;
}

static struct crmc *login_as(const char *user)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, PASSWORD) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

/* Registers a new customer through `c` (its store's relation opened with
 * the default owner: a consultant themself, anyone else the store pool). */
static bool make_customer(struct crmc *c, bool tagged, struct target_ref *t)
{
	static unsigned n;
	char digits[16];
	it_phone(digits);
	snprintf(t->phone, sizeof t->phone, "+86%s", digits);
	snprintf(t->wechat, sizeof t->wechat, "wx_mx%ld_%u", (long)getpid(), n++);
	uuid_v7_new(t->cid);
	char *tags[] = {tag};
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = t->cid;
	cu.name = (char *)"矩阵客户";
	cu.phone = t->phone;
	cu.wechat = t->wechat;
	cu.tags = tagged ? tags : NULL;
	cu.n_tags = tagged ? 1 : 0;
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *resp = c ? it_call(c, &req) : NULL;
	bool ok = resp && crmc_status(resp) == CRM__CODE__OK && resp->customer &&
		  resp->customer->relation;
	if (ok)
		snprintf(t->rid, sizeof t->rid, "%s", resp->customer->relation->id);
	else
		fprintf(stderr, "setup: create: %s\n", resp ? crmc_status_message(resp) : "no answer");
	it_free(resp);
	return ok;
}

/* A customer of the kind `target` names, made by the user it belongs to. */
static bool make_target(enum target target, bool tagged, struct target_ref *t)
{
	switch (target) {
	case T_MINE:
		return make_customer(conns[R_CONSULTANT], tagged, t);
	case T_STORE:
		return make_customer(second_consultant, tagged, t);
	case T_POOL:
		return make_customer(conns[R_CALL_CENTER], tagged, t);
	case T_OTHER:
		return make_customer(other_consultant, tagged, t);
	default:
		return false;
	}
}

/* ------------------------------------------------------------ setup */

static bool add_store(const char *code, const char *name, const char *brand)
{
	const char *params[] = {code, name, brand};
	PGresult *res = PQexecParams(
		db,
		"INSERT INTO crm.stores (code, name, city, brand, group_id)"
		" SELECT $1, $2, '测试市', $3, g.id FROM crm.groups g ON CONFLICT (code) DO NOTHING",
		3, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "add store %s: %s\n", code, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static bool setup_people(void)
{
	static const struct {
		enum role role;
		const char *username, *display, *store;
	} people[] = {
		{R_CONSULTANT, "mx01.consultant", "矩阵顾问", HOME_STORE},
		{R_SALES_MANAGER, "mx01.sales_manager", "矩阵销售经理", HOME_STORE},
		{R_SERVICE_ADVISOR, "mx01.service_advisor", "矩阵服务顾问", HOME_STORE},
		{R_CALL_CENTER, "mx01.call_center", "矩阵客服", HOME_STORE},
		{R_STORE_MANAGER, "mx01.store_manager", "矩阵店长", HOME_STORE},
		{R_GROUP_ANALYST, "mx.group_analyst", "矩阵分析师", NULL},
		{R_GROUP_ADMIN, "mx.group_admin", "矩阵管理员", NULL},
	};
	bool ok = add_store(HOME_STORE, "矩阵测试店", "矩阵品牌甲") &&
		  add_store(OTHER_STORE, "矩阵对照店", "矩阵品牌乙") &&
		  it_add_user(db, "mx01.consultant2", "矩阵顾问二", "consultant", HOME_STORE,
			      PASSWORD) &&
		  it_add_user(db, "mx02.consultant", "对照顾问", "consultant", OTHER_STORE, PASSWORD);
	for (size_t i = 0; ok && i < sizeof people / sizeof people[0]; i++) {
		snprintf(usernames[people[i].role], sizeof usernames[0], "%s", people[i].username);
		ok = it_add_user(db, people[i].username, people[i].display, role_names[people[i].role],
				 people[i].store, PASSWORD) &&
		     (conns[people[i].role] = login_as(people[i].username)) != NULL;
	}
	return ok && (second_consultant = login_as("mx01.consultant2")) != NULL &&
	       (other_consultant = login_as("mx02.consultant")) != NULL;
}

/* MX01's store node: a certificate from crmctl, and a second crmd that asks
 * for client certificates. */
static bool setup_store_node(struct it_crmd *node_crmd)
{
	char dir[512], cadir[512], cmd[4096], cert[600], key[600];
	snprintf(dir, sizeof dir, "%s/matrix-%ld", it_env("CRM_TEST_DIR"), (long)getpid());
	snprintf(cadir, sizeof cadir, "%s", it_env("CRM_CA"));
	*strrchr(cadir, '/') = '\0';
	snprintf(cmd, sizeof cmd,
		 "mkdir -p '%s' && '%s/crmctl' -c '%s' certs store " HOME_STORE
		 " --dir '%s' --out '%s' >'%s/certs.out' 2>&1",
		 dir, it_env("CRM_BUILD_DIR"), it_env("CRMD_CONFIG"), cadir, dir, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "crmctl certs store failed: see %s/certs.out\n", dir);
		return false;
	}
	const char *user = it_db_value(db, "SELECT u.username FROM crm.users u JOIN crm.stores s"
					   " ON s.id = u.store_id WHERE s.code = $1"
					   " AND u.role = 'store_node'", HOME_STORE);
	if (!user)
		return false;
	snprintf(usernames[R_STORE_NODE], sizeof usernames[0], "%s", user);
	char client_ca[600];
	snprintf(client_ca, sizeof client_ca, "server.client_ca=%s", it_env("CRM_CA"));
	const char *sets[] = {client_ca, NULL};
	if (!it_crmd_spawn(node_crmd, sets, "event=auth.revocation_loaded"))
		return false;
	snprintf(cert, sizeof cert, "%s/store-" HOME_STORE ".pem", dir);
	snprintf(key, sizeof key, "%s/store-" HOME_STORE ".key", dir);
	conns[R_STORE_NODE] = it_connect_cert(node_crmd->server, cert, key);
	return conns[R_STORE_NODE] != NULL;
}

static bool setup_targets(void)
{
	snprintf(tag, sizeof tag, "matrix%ld", (long)getpid());
	for (int t = T_MINE; t <= T_OTHER; t++)
		if (!make_target((enum target)t, true, &shared[t]))
			return false;
	/* An entry of MX02 for audit.list (logins are the caller's store's). */
	struct crmc *c = login_as("mx02.consultant");
	if (c)
		crmc_close(c);
	return c != NULL;
}

/* ------------------------------------------------------------ the cells */

static void report(const struct cell *k, const char *got)
{
	cells_failed++;
	fprintf(stderr, "MATRIX %s %s %s: expected %s, %s, audit %s; got %s\n",
		request_names[k->req], role_names[k->role], target_names[k->target],
		crmc_code_name(k->code), view_names[k->view], audit_names[k->audit], got);
}

/* customer.list once per role: what comes back of each shared target. */
static struct {
	bool done;
	Crm__Code code;
	char message[256];
	enum view seen[T_OTHER + 1];
} listed[NROLES];

static void list_for(enum role role)
{
	if (listed[role].done)
		return;
	listed[role].done = true;
	for (int t = T_MINE; t <= T_OTHER; t++)
		listed[role].seen[t] = V_ABSENT;
	Crm__CustomerList cl = CRM__CUSTOMER_LIST__INIT;
	cl.tag = tag;
	cl.page_size = 100;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = &cl;
	req.credit = 8;
	struct crmc *c = conns[role];
	uint64_t id = crmc_send(c, &req);
	for (;;) {
		char err[256] = "";
		Crm__Envelope *resp = crmc_wait(c, id, 30000, err, sizeof err);
		listed[role].code = resp ? crmc_status(resp) : CRM__CODE__UNAVAILABLE;
		snprintf(listed[role].message, sizeof listed[role].message, "%s",
			 resp ? crmc_status_message(resp) : err);
		if (!resp || listed[role].code != CRM__CODE__OK || !resp->customer_page) {
			it_free(resp);
			return;
		}
		for (size_t i = 0; i < resp->customer_page->n_rows; i++) {
			const Crm__Customer *cu = resp->customer_page->rows[i]->customer;
			for (int t = T_MINE; cu && t <= T_OTHER; t++)
				if (!strcmp(cu->id, shared[t].cid))
					listed[role].seen[t] = view_of(cu, &shared[t]);
		}
		bool more = resp->more;
		it_free(resp);
		if (!more)
			return;
		crmc_stream_credit(c, id, 1);
	}
}

static void run_list_cell(const struct cell *k)
{
	list_for(k->role);
	char got[400];
	Crm__Code code = listed[k->role].code;
	if (code != k->code) {
		snprintf(got, sizeof got, "%s (%s)", crmc_code_name(code), listed[k->role].message);
		report(k, got);
	} else if (code == CRM__CODE__OK && listed[k->role].seen[k->target] != k->view) {
		snprintf(got, sizeof got, "the row %s",
			 listed[k->role].seen[k->target] == V_NA ? "with other contact details"
								  : view_names[listed[k->role].seen[k->target]]);
		report(k, got);
	} else {
		return;
	}
	CHECK(false);
}

/* The request of a cell, with what it needs of the target. */
static Crm__Envelope *call_cell(const struct cell *k, const struct target_ref *t,
				struct target_ref *created)
{
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	char *reason = (char *)"矩阵测试";
	char *name_field[] = {(char *)"name"}, *feedback_field[] = {(char *)"first_feedback"};
	Crm__CustomerGet get = CRM__CUSTOMER_GET__INIT;
	Crm__CustomerCardRequest card = CRM__CUSTOMER_CARD_REQUEST__INIT;
	Crm__CustomerReveal reveal = CRM__CUSTOMER_REVEAL__INIT;
	Crm__CustomerExport export = CRM__CUSTOMER_EXPORT__INIT;
	Crm__CustomerErase erase = CRM__CUSTOMER_ERASE__INIT;
	Crm__AuditQuery audit = CRM__AUDIT_QUERY__INIT;
	Crm__StatsRequest stats = CRM__STATS_REQUEST__INIT;
	Crm__Customer profile = CRM__CUSTOMER__INIT;
	Crm__CustomerUpdate update = CRM__CUSTOMER_UPDATE__INIT;
	Crm__Relation relation = CRM__RELATION__INIT;
	Crm__RelationUpdate relation_update = CRM__RELATION_UPDATE__INIT;
	Crm__CustomerCreate create = CRM__CUSTOMER_CREATE__INIT;
	Crm__LevelSet level = CRM__LEVEL_SET__INIT;
	Crm__HandoverRequest handover = CRM__HANDOVER_REQUEST__INIT;
	char *rel_ids[] = {(char *)t->rid};
	switch (k->req) {
	case Q_GET:
		get.id = (char *)t->cid;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_GET;
		req.customer_get = &get;
		break;
	case Q_CARD:
		card.id = (char *)t->cid;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CARD_GET;
		req.customer_card_get = &card;
		break;
	case Q_REVEAL:
		reveal.id = (char *)t->cid;
		reveal.reason = reason;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_REVEAL;
		req.customer_reveal = &reveal;
		break;
	case Q_EXPORT:
		export.id = (char *)t->cid;
		export.reason = reason;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_EXPORT;
		req.customer_export = &export;
		break;
	case Q_ERASE:
		erase.id = (char *)t->cid;
		erase.reason = reason;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_ERASE;
		req.customer_erase = &erase;
		break;
	case Q_AUDIT:
		/* The caller's store's entries: a store role asks for all it may
		 * read (the SQL confines it to its store), a group role names the
		 * store. Another store's: named. */
		audit.store_code = (char *)(k->target == T_OTHER ? OTHER_STORE
					    : k->role < R_GROUP_ANALYST ? "" : HOME_STORE);
		audit.page_size = 100;
		req.body_case = CRM__ENVELOPE__BODY_AUDIT_QUERY;
		req.audit_query = &audit;
		break;
	case Q_STATS:
		req.body_case = CRM__ENVELOPE__BODY_STATS;
		req.stats = &stats;
		break;
	case Q_UPDATE:
		profile.name = (char *)"矩阵客户乙";
		update.id = (char *)t->cid;
		update.version = version_of("customers", t->cid);
		update.fields = name_field;
		update.n_fields = 1;
		update.customer = &profile;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_UPDATE;
		req.customer_update = &update;
		break;
	case Q_RELATION:
		relation.first_feedback = (char *)"矩阵回访";
		relation_update.id = (char *)t->rid;
		relation_update.version = version_of("relations", t->rid);
		relation_update.fields = feedback_field;
		relation_update.n_fields = 1;
		relation_update.relation = &relation;
		req.body_case = CRM__ENVELOPE__BODY_RELATION_UPDATE;
		req.relation_update = &relation_update;
		break;
	case Q_CREATE:
		/* NEW: a phone nobody has; OTHER: the phone of MX02's customer. */
		*created = *t;
		uuid_v7_new(created->cid);
		profile.id = created->cid;
		profile.name = (char *)"矩阵新客";
		profile.phone = created->phone;
		profile.wechat = created->wechat;
		create.customer = &profile;
		req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
		req.customer_create = &create;
		break;
	case Q_LEVEL:
		level.relation_id = (char *)t->rid;
		level.version = version_of("relations", t->rid);
		level.level = (char *)"H";
		level.reason = reason;
		req.body_case = CRM__ENVELOPE__BODY_LEVEL_SET;
		req.level_set = &level;
		break;
	case Q_HANDOVER:
		/* To a consultant of MX01 who does not own it yet. */
		handover.relation_ids = rel_ids;
		handover.n_relation_ids = 1;
		handover.to_owner = (char *)(k->target == T_MINE ? "mx01.consultant2"
								 : "mx01.consultant");
		handover.reason = reason;
		req.body_case = CRM__ENVELOPE__BODY_HANDOVER;
		req.handover = &handover;
		break;
	default:
		return NULL;
	}
	return it_call(conns[k->role], &req);
}

/* What an allowed cell must have answered; "" when it did, else what it
 * got instead. */
static void check_answer(const struct cell *k, const Crm__Envelope *resp,
			 const struct target_ref *t, const struct target_ref *created, char *got,
			 size_t cap)
{
	const Crm__Customer *cu = NULL;
	const char *want_id = t->cid;
	got[0] = '\0';
	switch (k->req) {
	case Q_GET:
	case Q_UPDATE:
	case Q_CREATE:
	case Q_ERASE:
		cu = resp->customer ? resp->customer->customer : NULL;
		if (k->req == Q_CREATE && k->target == T_NEW)
			want_id = created->cid;
		if (k->req == Q_UPDATE && cu && strcmp(cu->name, "矩阵客户乙"))
			snprintf(got, cap, "the name unchanged (%s)", cu->name);
		if (k->req == Q_ERASE && cu && strcmp(cu->name, "已删除客户"))
			snprintf(got, cap, "the name kept (%s)", cu->name);
		/* Store roles open their store's relation; group roles none. */
		if (k->req == Q_CREATE && resp->customer &&
		    (k->role < R_GROUP_ANALYST) !=
			    (resp->customer->relation &&
			     !strcmp(resp->customer->relation->store_code, HOME_STORE)))
			snprintf(got, cap, "%s relation of " HOME_STORE,
				 resp->customer->relation ? "a" : "no");
		break;
	case Q_CARD:
		cu = resp->customer_card ? resp->customer_card->customer : NULL;
		break;
	case Q_REVEAL:
		if (!resp->customer_reveal_reply)
			snprintf(got, cap, "no reveal reply");
		else if (strcmp(resp->customer_reveal_reply->phone, t->phone) ||
			 strcmp(resp->customer_reveal_reply->wechat, t->wechat))
			snprintf(got, cap, "revealed %s %s", resp->customer_reveal_reply->phone,
				 resp->customer_reveal_reply->wechat);
		return;
	case Q_EXPORT:
		if (!resp->customer_export_reply ||
		    !strstr(resp->customer_export_reply->document, t->phone) ||
		    !strstr(resp->customer_export_reply->document, t->wechat))
			snprintf(got, cap, "a document without the real phone and WeChat");
		return;
	case Q_AUDIT: {
		const char *store = k->target == T_OTHER ? OTHER_STORE : HOME_STORE;
		const Crm__AuditPage *p = resp->audit_page;
		if (!p || p->n_entries == 0) {
			snprintf(got, cap, "no entries");
			return;
		}
		for (size_t i = 0; i < p->n_entries; i++)
			if (strcmp(p->entries[i]->store_code, store)) {
				snprintf(got, cap, "an entry of store \"%s\" (%s)",
					 p->entries[i]->store_code, p->entries[i]->action);
				return;
			}
		return;
	}
	case Q_STATS:
		if (!resp->stats_reply || resp->stats_reply->n_counters == 0)
			snprintf(got, cap, "no counters");
		return;
	case Q_RELATION:
		if (!resp->relation || !resp->relation->relation ||
		    strcmp(resp->relation->relation->id, t->rid) ||
		    strcmp(resp->relation->relation->first_feedback, "矩阵回访"))
			snprintf(got, cap, "no relation with the new first feedback");
		return;
	case Q_LEVEL:
		if (!resp->relation || !resp->relation->relation ||
		    strcmp(resp->relation->relation->level, "H"))
			snprintf(got, cap, "no relation at level H");
		return;
	case Q_HANDOVER:
		if (!resp->handover_reply || resp->handover_reply->moved != 1 ||
		    strcmp(resp->handover_reply->relation_ids[0], t->rid))
			snprintf(got, cap, "not the one relation moved");
		return;
	default:
		return;
	}
	if (got[0])
		return;
	if (!cu || strcmp(cu->id, want_id)) {
		snprintf(got, cap, "not customer %s", want_id);
		return;
	}
	if (k->view != V_NA) {
		enum view v = view_of(cu, k->req == Q_CREATE ? created : t);
		if (v != k->view)
			snprintf(got, cap, "%s contact details (phone %s, wechat %s)",
				 v == V_NA ? "other" : view_names[v], cu->phone, cu->wechat);
	}
}

/* ------------------------------------------------------------ change entries */

/* A record a write changes: its kind, its id (NULL: the customer's MX01
 * relation, whose id the server chose) and its version before. */
struct change {
	const char *entity, *id;
	uint64_t before;
};

static bool is_write(enum request q)
{
	return q == Q_UPDATE || q == Q_RELATION || q == Q_CREATE || q == Q_LEVEL ||
	       q == Q_HANDOVER || q == Q_ERASE;
}

/* The records an allowed write cell changes, given the versions read just
 * before the call. */
static int changes_of(const struct cell *k, const struct target_ref *t,
		      const struct target_ref *created, uint64_t customer_v, uint64_t relation_v,
		      struct change *out)
{
	int n = 0;
	switch (k->req) {
	case Q_UPDATE:
		out[n++] = (struct change){"customer", t->cid, customer_v};
		break;
	case Q_RELATION:
	case Q_LEVEL:
	case Q_HANDOVER:
		out[n++] = (struct change){"relation", t->rid, relation_v};
		break;
	case Q_ERASE:
		out[n++] = (struct change){"customer", t->cid, customer_v};
		out[n++] = (struct change){"relation", t->rid, relation_v};
		break;
	case Q_CREATE:
		/* A new customer; a store role also opens MX01's relation (for
		 * MX02's customer only that: another brand, no collision). */
		if (k->target == T_NEW)
			out[n++] = (struct change){"customer", created->cid, 0};
		if (k->role < R_GROUP_ANALYST)
			out[n++] = (struct change){"relation", NULL, 0};
		break;
	default:
		break;
	}
	return n;
}

/* Since `mark`: exactly the 'change' entries of customers and relations
 * `want` lists for customer `cid`, each once, by the caller, with version
 * before -> before + 1; none when the cell was refused (the tasks a level
 * change makes have entries of their own, sql/0023). "" when so, else what
 * was found. */
static void check_changes(const struct cell *k, const char *cid, long mark,
			  const struct change *want, int nwant, char *got, size_t cap)
{
	char mark_s[24];
	snprintf(mark_s, sizeof mark_s, "%ld", mark);
	const char *all[] = {mark_s, cid};
	long n = db_count("SELECT count(*) FROM crm.audit_log WHERE id > $1::bigint"
			  " AND action = 'change' AND customer_id = $2::uuid"
			  " AND entity IN ('customer', 'relation')", 2, all);
	if (n != nwant) {
		snprintf(got, cap, "%ld change audit entries, expected %d", n, nwant);
		return;
	}
	for (int i = 0; i < nwant; i++) {
		char before[24], after[24];
		snprintf(before, sizeof before, "%llu", (unsigned long long)want[i].before);
		snprintf(after, sizeof after, "%llu", (unsigned long long)want[i].before + 1);
		const char *params[] = {mark_s, cid, want[i].entity, want[i].id, before, after,
					usernames[k->role], HOME_STORE};
		long one = db_count(
			"SELECT count(*) FROM crm.audit_log a WHERE a.id > $1::bigint"
			" AND a.action = 'change' AND a.outcome = 'ok' AND a.customer_id = $2::uuid"
			" AND a.entity = $3 AND a.entity_id = coalesce($4, (SELECT r.id::text"
			"   FROM crm.relations r JOIN crm.stores s ON s.id = r.store_id"
			"  WHERE r.customer_id = $2::uuid AND s.code = $8))"
			" AND a.before_version = $5::bigint AND a.after_version = $6::bigint"
			" AND a.actor_username = $7", 8, params);
		if (one != 1) {
			snprintf(got, cap, "no change audit entry of %s %s v%s->v%s by %s",
				 want[i].entity, want[i].id ? want[i].id : "(MX01's)", before, after,
				 usernames[k->role]);
			return;
		}
	}
}

static void run_cell(const struct cell *k)
{
	if (k->req == Q_LIST) {
		run_list_cell(k);
		return;
	}
	struct target_ref fresh, created;
	const struct target_ref *t = k->target <= T_OTHER ? &shared[k->target] : &fresh;
	memset(&fresh, 0, sizeof fresh);
	memset(&created, 0, sizeof created);
	/* Writes that change who owns what, the level or the customer itself
	 * get a customer of their own; a create a new phone or MX02's. */
	bool own = k->req == Q_LEVEL || k->req == Q_HANDOVER || k->req == Q_ERASE ||
		   (k->req == Q_CREATE && k->target == T_OTHER);
	if (own && !make_target(k->target, false, &fresh)) {
		report(k, "no customer to work on (setup failed)");
		CHECK(false);
		return;
	}
	if (own)
		t = &fresh;
	if (k->req == Q_CREATE && k->target == T_NEW) {
		char digits[16];
		it_phone(digits);
		snprintf(fresh.phone, sizeof fresh.phone, "+86%s", digits);
		snprintf(fresh.wechat, sizeof fresh.wechat, "wx_new%ld_%s", (long)getpid(), digits);
	}
	uint64_t customer_v = t->cid[0] ? version_of("customers", t->cid) : 0;
	uint64_t relation_v = t->rid[0] ? version_of("relations", t->rid) : 0;
	long mark = audit_max();
	Crm__Envelope *resp = call_cell(k, t, &created);
	Crm__Code code = resp ? crmc_status(resp) : CRM__CODE__UNAVAILABLE;
	char got[512] = "";
	if (code != k->code)
		snprintf(got, sizeof got, "%s (%s)", crmc_code_name(code),
			 !resp ? "no answer" : code == CRM__CODE__OK ? "answered" : crmc_status_message(resp));
	else if (code != CRM__CODE__OK && resp->body_case != CRM__ENVELOPE__BODY__NOT_SET)
		snprintf(got, sizeof got, "%s with a body (%d)", crmc_code_name(code),
			 (int)resp->body_case);
	else if (code == CRM__CODE__OK)
		check_answer(k, resp, t, &created, got, sizeof got);
	it_free(resp);
	if (!got[0] && k->audit == A_OK) {
		char mark_s[24];
		snprintf(mark_s, sizeof mark_s, "%ld", mark);
		const char *params[] = {mark_s, request_names[k->req], t->cid, usernames[k->role]};
		long n = db_count("SELECT count(*) FROM crm.audit_log WHERE id > $1::bigint"
				  " AND action = $2 AND outcome = 'ok' AND customer_id = $3::uuid"
				  " AND actor_username = $4", 4, params);
		if (n != 1)
			snprintf(got, sizeof got, "%ld ok audit entries", n);
	}
	if (!got[0] && is_write(k->req)) {
		struct change want[2];
		int nwant = code == CRM__CODE__OK
				    ? changes_of(k, t, &created, customer_v, relation_v, want)
				    : 0;
		check_changes(k, k->req == Q_CREATE && k->target == T_NEW ? created.cid : t->cid,
			      mark, want, nwant, got, sizeof got);
	}
	if (got[0]) {
		report(k, got);
		CHECK(false);
	} else {
		CHECK(true);
	}
}

/* The 'denied' entries a caller's refusals of one request must leave, and
 * the targets of those cells. One list call per role answers all its list
 * cells. */
static long denied_wanted(enum request q, enum role r, char *which, size_t cap)
{
	long want = 0;
	which[0] = '\0';
	for (size_t i = 0; i < NCELLS; i++)
		if (cells[i].req == q && cells[i].role == r && cells[i].audit == A_DENIED) {
			want++;
			size_t n = strlen(which);
			snprintf(which + n, cap - n, "%s%s", n ? ", " : "",
				 target_names[cells[i].target]);
		}
	return q == Q_LIST && want > 1 ? 1 : want;
}

/* Per caller and request, as many 'denied' entries as the cells expect. The
 * handler table writes them after answering, so wait until they stop
 * coming. */
static void check_denied_entries(void)
{
	char which[128], mark_s[24];
	long want_total = 0;
	for (int q = 0; q < NREQUESTS; q++)
		for (int r = 0; r < NROLES; r++)
			want_total += denied_wanted((enum request)q, (enum role)r, which, sizeof which);
	snprintf(mark_s, sizeof mark_s, "%ld", audit_mark);
	const char *all[] = {mark_s};
	long seen = -1, stable = 0;
	for (int i = 0; i < 100 && stable < 10; i++) {
		long n = db_count("SELECT count(*) FROM crm.audit_log WHERE id > $1::bigint"
				  " AND outcome = 'denied'", 1, all);
		if (n >= want_total)
			break;
		stable = n == seen ? stable + 1 : 0;
		seen = n;
		usleep(100 * 1000);
	}
	for (int q = 0; q < NREQUESTS; q++)
		for (int r = 0; r < NROLES; r++) {
			long want = denied_wanted((enum request)q, (enum role)r, which, sizeof which);
			const char *params[] = {mark_s, usernames[r], request_names[q]};
			long got = db_count("SELECT count(*) FROM crm.audit_log WHERE id > $1::bigint"
					    " AND outcome = 'denied' AND actor_username = $2"
					    " AND (action = $3 OR details->>'request' = $3)",
					    3, params);
			if (got != want)
				fprintf(stderr, "MATRIX AUDIT %s %s: expected %ld denied entries (%s),"
					" got %ld\n", request_names[q], role_names[r], want,
					want ? which : "none", got);
			CHECK(got == want);
		}
	/* A refusal raised in SQL is written by crmd with the request and the
	 * SQL's message; one by the handler table says so. */
	const char *sql_refusal[] = {mark_s, usernames[R_CONSULTANT], "customer.get",
				     "this customer belongs to another consultant or has no relation"
				     " at your store", "sql"};
	const char *table_refusal[] = {mark_s, usernames[R_CONSULTANT], "customer.export",
				       "role may not call customer.export", "handler table"};
	const char *by_whom = "SELECT count(*) FROM crm.audit_log WHERE id > $1::bigint"
			      " AND action = 'permission.denied' AND outcome = 'denied'"
			      " AND actor_username = $2 AND details->>'request' = $3"
			      " AND reason = $4 AND details->>'refused_by' = $5";
	CHECK(db_count(by_whom, 5, sql_refusal) == 2);
	CHECK(db_count(by_whom, 5, table_refusal) == 4);
}

/* Runs `crm ARGS` logged in as `user` (a config dir of its own); its
 * output (stdout and stderr) goes to `out`. Returns the exit status. */
static int run_crm(const char *user, const char *args, char *out, size_t cap)
{
	char dir[512], cmd[2048];
	snprintf(dir, sizeof dir, "%s/matrix-cli-%ld-%s", it_env("CRM_TEST_DIR"), (long)getpid(),
		 user);
	snprintf(cmd, sizeof cmd,
		 "mkdir -p '%s' && export CRM_CONFIG_DIR='%s' && "
		 "printf '%%s\\n' '" PASSWORD "' | '%s/crm' login --user '%s' --password-stdin"
		 " >/dev/null 2>&1 && ( '%s/crm' %s ) </dev/null 2>&1",
		 dir, dir, it_env("CRM_BUILD_DIR"), user, it_env("CRM_BUILD_DIR"), args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* An update leaves one 'change' entry (the store's, with the versions),
 * and `crm audit --action change` lists it for the store's manager. */
static void test_change_listed_by_crm_audit(void)
{
	const struct target_ref *t = &shared[T_POOL];
	uint64_t v = version_of("customers", t->cid);
	long mark = audit_max();
	struct cell k = {Q_UPDATE, R_STORE_MANAGER, T_POOL, C_OK, V_CLEAR, A_NONE};
	Crm__Envelope *resp = call_cell(&k, t, NULL);
	CHECK(resp && crmc_status(resp) == CRM__CODE__OK);
	it_free(resp);
	struct change want = {"customer", t->cid, v};
	char got[512] = "";
	check_changes(&k, t->cid, mark, &want, 1, got, sizeof got);
	if (got[0])
		fprintf(stderr, "change entry: %s\n", got);
	CHECK(got[0] == '\0');
	char mark_s[24];
	snprintf(mark_s, sizeof mark_s, "%ld", mark);
	const char *params[] = {mark_s, t->cid, HOME_STORE};
	CHECK(db_count("SELECT count(*) FROM crm.audit_log a JOIN crm.stores s ON s.id = a.store_id"
		       " WHERE a.id > $1::bigint AND a.action = 'change'"
		       " AND a.customer_id = $2::uuid AND s.code = $3", 3, params) == 1);

	char out[16384], args[256], line[160];
	snprintf(args, sizeof args, "audit --action change --customer %s --limit 5", t->cid);
	int rc = run_crm(usernames[R_STORE_MANAGER], args, out, sizeof out);
	snprintf(line, sizeof line, "customer %s v%llu->v%llu", t->cid, (unsigned long long)v,
		 (unsigned long long)v + 1);
	bool listed = false;
	for (const char *l = out; *l && !listed;) {
		size_t len = strcspn(l, "\n");
		char one[512];
		snprintf(one, sizeof one, "%.*s", (int)len, l);
		listed = strstr(one, " change ") && strstr(one, usernames[R_STORE_MANAGER]) &&
			 strstr(one, HOME_STORE) && strstr(one, line);
		l += len + (l[len] == '\n');
	}
	if (rc != 0 || !listed)
		fprintf(stderr, "crm %s: exit %d, no line with \"%s\":\n%s\n", args, rc, line, out);
	CHECK(rc == 0 && listed);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	struct it_crmd node_crmd = {0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool ready = setup_people() && setup_store_node(&node_crmd) && setup_targets();
	CHECK(ready);
	if (ready) {
		audit_mark = audit_max();
		for (size_t i = 0; i < NCELLS; i++)
			run_cell(&cells[i]);
		check_denied_entries();
		test_change_listed_by_crm_audit();
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("matrix: %zu cells, %d failed, %.1f s\n", NCELLS, cells_failed,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (int r = 0; r < NROLES; r++)
		if (conns[r])
			crmc_close(conns[r]);
	if (second_consultant)
		crmc_close(second_consultant);
	if (other_consultant)
		crmc_close(other_consultant);
	if (node_crmd.pid)
		CHECK(it_crmd_stop(&node_crmd));
	PQfinish(db);
	return it_summary();
}
