/* Every SQL statement crmd runs, prepared on each pool connection at connect.
 * Each is one call of a function from sql/; all values are parameters.
 *
 * Authenticated calls take the session id (uuid text) as $1; the SQL side
 * checks that the session is live (not expired, not revoked, user enabled),
 * sets the caller's scope for this transaction with set_config(..., true)
 * and raises SQLSTATE DC401 when it is not.
 *
 * Errors raised by the SQL functions use SQLSTATE class DC:
 *   DC400 invalid argument (COLUMN names the field)   DC401 unauthenticated
 *   DC403 permission denied   DC404 not found   DC409 conflict
 *   DC410 already exists
 * Result column lists below are in order; timestamps are unix milliseconds.
 *
 * USER columns:     user_id, username, display_name, role, store_code, store_name
 * CUSTOMER columns: the 18 columns of view crm.customer_view (sql/0002):
 *                   id, name, phone, version, created_at_ms, updated_at_ms,
 *                   created_by, store_code, gender, birth_year, age_band,
 *                   wechat, email, occupation, region, tags, important, phones
 * RELATION columns: the first 21 columns of view crm.relation_view:
 *                   id, customer_id, store_code, store_name, brand, owner,
 *                   owner_name, level, source, first_contact_at_ms,
 *                   first_contact_place, first_contact_scenario,
 *                   first_feedback, status, version, created_at_ms,
 *                   updated_at_ms, protected_until_ms, last_contact_at_ms,
 *                   next_followup_at_ms, intents
 * Read them with row_to_customer / row_to_relation (server.h).
 */
#ifndef CRM_STMTS_H
#define CRM_STMTS_H

enum stmt_id {
	/* $1 username -> USER columns, password_hash, disabled. No row: unknown. */
	STMT_LOGIN_LOOKUP,
	/* $1 user_id, $2 token_hash (hex of SHA-256 of the token), $3 ttl seconds,
	 * $4 source address -> session_id, expires_at_ms */
	STMT_SESSION_OPEN,
	/* $1 username, $2 source address, $3 reason -> nothing. Records a failed login. */
	STMT_LOGIN_FAILED,
	/* $1 token_hash -> session_id, expires_at_ms, USER columns. DC401 if dead. */
	STMT_SESSION_RESUME,
	/* $1 session_id -> nothing. Revokes. */
	STMT_SESSION_CLOSE,
	/* $1 session_id -> expires_at_ms, USER columns. DC401 if dead. */
	STMT_SESSION_WHOAMI,
	/* $1 session_id, $2 id, $3 name, $4 phone (canonical), $5 outbox payload
	 * (bytea, binary) -> CUSTOMER columns, existed (bool). Same id again, or a
	 * phone that already has a customer: that customer, existed = true,
	 * nothing written. Otherwise inserts and appends to the outbox in the
	 * same transaction. */
	STMT_CUSTOMER_CREATE,
	/* $1 session_id, $2 id -> CUSTOMER columns. DC404 when absent. */
	STMT_CUSTOMER_GET,
	/* $1 session_id, $2 after_id (NULL from the start), $3 count
	 * -> CUSTOMER columns, ordered by id. */
	STMT_CUSTOMER_LIST,
	/* ---- customer records: writes (h_customer.c, h_relation.c) */
	/* ---- customer records: queries (h_query.c) */
	/* ---- accounts and audit (h_auth.c) */
	STMT__COUNT
};

struct stmt_def {
	const char *name;
	const char *sql;
	int nparams;
};

extern const struct stmt_def stmt_defs[STMT__COUNT];

#endif
