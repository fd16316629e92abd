/* The SQL text of every prepared statement in stmts.h: each one is a single
 * call of a function from sql/, with every value a parameter. Parameters are
 * cast explicitly so each statement prepares with fixed types, whatever
 * overloads later migrations add. */
#include "stmts.h"

#define STMT(id, fn_call, n) [id] = {#id, fn_call, n}

const struct stmt_def stmt_defs[STMT__COUNT] = {
	STMT(STMT_LOGIN_LOOKUP,
	     "SELECT * FROM crm.login_lookup($1::text)", 1),
	STMT(STMT_SESSION_OPEN,
	     "SELECT * FROM crm.session_open($1::uuid, $2::text, $3::integer, $4::text)", 4),
	STMT(STMT_LOGIN_FAILED,
	     "SELECT crm.login_failed($1::text, $2::text, $3::text)", 3),
	STMT(STMT_SESSION_RESUME,
	     "SELECT * FROM crm.session_resume($1::text)", 1),
	STMT(STMT_SESSION_CLOSE,
	     "SELECT crm.session_close($1::uuid)", 1),
	STMT(STMT_SESSION_WHOAMI,
	     "SELECT * FROM crm.session_whoami($1::uuid)", 1),
	STMT(STMT_CUSTOMER_CREATE,
	     "SELECT * FROM crm.customer_create($1::uuid, $2::text, $3::text, $4::text, $5::bytea)", 5),
	STMT(STMT_CUSTOMER_GET,
	     "SELECT * FROM crm.customer_get($1::uuid, $2::text)", 2),
	STMT(STMT_CUSTOMER_LIST,
	     "SELECT * FROM crm.customer_list($1::uuid, $2::text, $3::integer)", 3),
	/* ---- customer records: writes (h_customer.c, h_relation.c) */
	/* ---- customer records: queries (h_query.c) */
	/* ---- accounts and audit (h_auth.c) */
};
