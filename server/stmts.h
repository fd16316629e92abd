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
 * CUSTOMER columns: the 20 columns of view crm.customer_view (sql/0002,
 *                   0005 masking, 0009 erasure):
 *                   id, name, phone, version, created_at_ms, updated_at_ms,
 *                   created_by, store_code, gender, birth_year, age_band,
 *                   wechat, email, occupation, region, tags, important, phones,
 *                   erased, erased_at_ms
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
	/* $1 token_hash -> session_id, expires_at_ms, USER columns. DC401 if dead. */
	STMT_SESSION_RESUME,
	/* $1 session_id -> expires_at_ms, USER columns. DC401 if dead. */
	STMT_SESSION_WHOAMI,
	/* Customer records (sql/0002). REPLY columns: outcome ('ok', 'existed',
	 * 'collision', 'stale', 'retry'), kind ('customer', 'relation' = the caller's
	 * store's, 'other', 'collision'), message, then all columns of
	 * crm.customer_view (CUSTOMER), crm.relation_view (RELATION, then
	 * store_id, owner_id) and crm.lead_collision_view, NULL where the row is
	 * of another kind. See REPLY_COL_* in h_records.h.
	 *
	 * $1 session_id, $2 id, $3 name, $4 phones (canonical, primary first,
	 * joined by U+001F), $5 gender, $6 birth_year, $7 age_band, $8 wechat,
	 * $9 email, $10 occupation, $11 region, $12 tags (U+001F), $13 important,
	 * $14 write time ms, $15 relation id (NULL: no relation; group roles),
	 * $16 relation's customer id (from STMT_CREATE_CONTEXT), $17 owner
	 * username ("" pool), $18 level, $19 source, $20 first_contact_at ms,
	 * $21 place, $22 scenario, $23 first feedback, $24 status, $25 intents
	 * (fields U+001E, intents U+001F), $26 protected_until ms, $27 outbox
	 * bundle (binary: Customer, Relation) -> REPLY rows. */
	STMT_CUSTOMER_CREATE,
	/* $1 session_id, $2 id -> REPLY rows. DC404 absent, DC403 out of scope. */
	STMT_CUSTOMER_GET,
	/* One page of a customer list (sql/0003 crm.customer_query): $1 session_id,
	 * $2 name, $3 name_match, $4 phone (canonical), $5 phone digits (last
	 * 4+), $6 levels and $7 sources (comma-separated), $8 model, $9 owner,
	 * $10 tag, $11 important_only, $12 contacted_within_days,
	 * $13 followup_overdue, $14 store_code, $15 sort, $16 descending,
	 * $17 after (cursor), $18 count; NULL or "" = not given
	 * -> CUSTOMER columns, RELATION columns (NULL: no relation), cursor. */
	STMT_CUSTOMER_LIST,
	/* ---- customer records: writes (h_customer.c, h_relation.c) */
	/* $1 session_id, $2 customer id, $3 phones (U+001F), $4 owner ("" default),
	 * $5 models (U+001F) -> existing_customer_id, owner, owner_name,
	 * store_code, store_name, brand, protection_days, body_types (U+001F). */
	STMT_CREATE_CONTEXT,
	/* $1 session_id, $2 id, $3 version read, $4 name, $5 phones (U+001F,
	 * primary first), $6 gender, $7 birth_year, $8 age_band, $9 wechat,
	 * $10 email, $11 occupation, $12 region, $13 tags, $14 important,
	 * $15 write time ms, $16 bundle (Customer) -> REPLY rows; outcome
	 * 'stale' when the version moved on. */
	STMT_CUSTOMER_UPDATE,
	/* $1 session_id, $2 relation id, $3 models (U+001F) -> all columns of
	 * crm.relation_view, body_types (U+001F). */
	STMT_RELATION_GET,
	/* $1 session_id, $2 id, $3 version read, $4 source, $5 first_contact_at
	 * ms, $6 place, $7 scenario, $8 first feedback, $9 status, $10 intents,
	 * $11 write time ms, $12 bundle (Relation) -> outcome ('ok', 'stale'),
	 * all columns of crm.relation_view. */
	STMT_RELATION_UPDATE,
	/* $1 session_id, $2 relation id, $3 version read, $4 level, $5 reason,
	 * $6 write time ms -> all columns of crm.relation_view as they are now,
	 * the next follow-up (ms, 0 none) after the change, the write time: the
	 * level change run and rolled back (the cadence may add tasks). */
	STMT_LEVEL_SET_PLAN,
	/* $1 session_id, $2 relation id, $3 version read, $4 level, $5 reason,
	 * $6 write time ms, $7 the next follow-up the plan found, $8 bundle
	 * (Relation) -> outcome ('ok', 'stale', 'unchanged'), all columns of
	 * crm.relation_view; CONFLICT when the next follow-up came out other
	 * than planned. */
	STMT_LEVEL_SET,
	/* $1 session_id, $2 relation ids (U+001F) or NULL, $3 from_owner or NULL,
	 * $4 to_owner -> all columns of crm.relation_view, to_owner,
	 * to_owner_name: the relations the handover would move, by id. */
	STMT_HANDOVER_PLAN,
	/* $1 session_id, $2 relation ids (U+001F), $3 versions read (U+001F),
	 * $4 to_owner, $5 reason, $6 write time ms, $7 bundle (Relations, in
	 * order) -> relation_id per moved relation. DC409 if one changed. */
	STMT_HANDOVER,
	/* ---- customer records: queries (h_query.c) */
	/* $1 session_id, $2 id -> kind, CUSTOMER columns, RELATION columns, then
	 * e_relation_id, e_store_code, e_at_ms, e_s1..e_s6, e_n1: 'head' rows
	 * (customer and each relation, the caller's store first), then 'level',
	 * 'collision' and 'handover' rows, newest first (sql/0003
	 * crm.customer_card). DC404 when absent or out of the caller's scope. */
	STMT_CUSTOMER_CARD,
	/* ---- accounts and audit (h_auth.c, h_audit.c; sql/0004) */
	/* $1 username, $2 source address -> USER columns, password_hash, disabled,
	 * locked_until_ms, retry_after_s. Always one row: retry_after_s > 0 means
	 * too many failures from the address; user_id NULL an unknown user;
	 * locked_until_ms set a locked account (the attempt is already recorded). */
	STMT_LOGIN_BEGIN,
	/* $1 username, $2 source address, $3 reason, $4 user_id (NULL: unknown)
	 * -> locked_until_ms (NULL unless this failure locked the account). */
	STMT_LOGIN_FAIL,
	/* $1 user_id, $2 token_hash, $3 ttl seconds, $4 source address
	 * -> session_id, expires_at_ms. Audited. DC401 when locked meanwhile. */
	STMT_LOGIN_OPEN,
	/* $1 session_id, $2 source address -> nothing. Revokes and audits. */
	STMT_LOGOUT,
	/* $1 session_id, $2 request name, $3 source address, $4 the refusal's
	 * message when SQL raised it (NULL: the handler table) -> nothing. */
	STMT_AUDIT_DENIED,
	/* $1 session_id, $2 username, $3 customer_id, $4 action, $5 since_ms,
	 * $6 until_ms, $7 store_code, $8 before_id, $9 count -> AUDIT columns:
	 * id, at_ms, action, outcome, username, role, store_code, source_addr,
	 * subject, entity, entity_id, customer_id, before_version,
	 * after_version, reason, details. Newest first. */
	STMT_AUDIT_LIST,
	/* no parameters -> serial (upper-case hex), one row per revoked cert. */
	STMT_REVOKED_CERTS,
	/* $1 serial, $2 token_hash, $3 ttl seconds, $4 source address
	 * -> session_id, expires_at_ms, USER columns, refusal (non-NULL: refused,
	 * the rest NULL). */
	STMT_CERT_LOGIN,
	/* ---- privacy (h_privacy.c; sql/0005) */
	/* $1 session_id, $2 id, $3 version read -> REPLY rows, unmasked when the
	 * caller may write the customer and the version matches (the read a
	 * customer update merges into). DC409 when the customer was erased. */
	STMT_CUSTOMER_GET_FOR_WRITE,
	/* $1 session_id, $2 id, $3 reason -> outcome ('ok', 'denied'), message,
	 * CUSTOMER columns unmasked (NULL when denied). Audited either way. */
	STMT_CUSTOMER_REVEAL,
	/* $1 session_id, $2 id, $3 reason -> outcome ('ok', 'denied'), message,
	 * document (JSON text, NULL when denied). Audited either way. */
	STMT_CUSTOMER_EXPORT,
	/* $1 session_id, $2 id -> CUSTOMER columns (unmasked), the placeholder
	 * phone, all columns of crm.relation_view: a row per relation in id
	 * order, one row with NULL relation columns when there is none
	 * (sql/0009). Group admins only. */
	STMT_ERASE_PLAN,
	/* $1 session_id, $2 id, $3 version read, $4 reason, $5 placeholder
	 * phone, $6 relation ids and $7 their versions read (U+001F, every
	 * relation of the customer), $8 write time ms, $9 outbox bundle (the
	 * erased Customer, then each erased Relation in the order of $6)
	 * -> REPLY rows (outcome 'ok', 'existed' already erased, 'stale'). */
	STMT_CUSTOMER_ERASE,
	/* ---- the group CA's CRL (crl_http.c; sql/0010) */
	/* no parameters -> serial (upper-case hex), revoked_at_ms; one row per
	 * revoked certificate, ordered by serial. */
	STMT_CRL_ENTRIES,
	/* ---- follow-ups, tasks and cadence (h_followup.c; sql/0013)
	 * FOLLOWUP columns: the 12 of view crm.followup_view: id, relation_id,
	 * customer_id, store_code, method, type, at_ms, content, feedback,
	 * by_user, task_id ("" none), created_at_ms.
	 * TASK columns: the first 20 of view crm.task_view: id, relation_id,
	 * customer_id, customer_name, store_code, owner, owner_name, due_at_ms,
	 * method, purpose, status, reason, followup_id, cadence_key,
	 * created_at_ms, closed_at_ms, closed_by, version, level,
	 * set_by_followup; then store_id, owner_id, due_at.
	 * CADENCE columns: level, event, step, due_after_minutes, method,
	 * purpose, assignee, any_task_covers, updated_at_ms, updated_by. */
	/* $1 session_id, $2 follow-up id, $3 relation id ("" = the task's),
	 * $4 task id it completes (""), $5 method, $6 type, $7 at ms, $8 content,
	 * $9 feedback, $10 next due ms (NULL none), $11 next method, $12 next
	 * purpose, $13 write time ms -> all columns of crm.relation_view,
	 * after_last_contact_ms, after_next_followup_ms, existed. Writes
	 * nothing. */
	STMT_FOLLOWUP_PLAN,
	/* $1..$13 as STMT_FOLLOWUP_PLAN, $14 relation version planned,
	 * $15 next_followup_at ms planned, $16 bundle (Followup, Relation)
	 * -> outcome ('ok', 'existed'), kind ('followup', 'task'), FOLLOWUP
	 * columns, all columns of crm.relation_view, all of crm.task_view (NULL
	 * where the row is of the other kind). DC409 when the plan is stale.
	 * With $14..$16 NULL (followup.add) there is no plan: the database
	 * encodes the records it wrote (sql/0030). */
	STMT_FOLLOWUP_ADD,
	/* $1 text[]: $1..$13 of STMT_FOLLOWUP_ADD for each of several
	 * follow-ups -> item (from 0), err_state, err_column, err_message (a
	 * follow-up that failed: one row, the rest NULL), then the columns of
	 * STMT_FOLLOWUP_ADD. One commit for all (sql/0047). */
	STMT_FOLLOWUP_ADD_BATCH,
	/* $1 session_id, $2 relation id, $3 customer id, $4 limit -> FOLLOWUP
	 * columns, newest first. */
	STMT_FOLLOWUP_LIST,
	/* $1 session_id, $2 window, $3 owner, $4 store code, $5 relation id,
	 * $6 customer id, $7 at ms (0 now), $8 limit -> all columns of
	 * crm.task_view, overdue, outcome, late_by_ms. */
	STMT_TASK_LIST,
	/* $1 session_id, $2 task id, $3 reason, $4 write time ms -> all columns
	 * of crm.task_view. */
	STMT_TASK_SKIP,
	/* $1 session_id, $2 task id, $3 to_owner, $4 reason, $5 write time ms
	 * -> all columns of crm.task_view. */
	STMT_TASK_REASSIGN,
	/* $1 session_id -> CADENCE rows. */
	STMT_CADENCE_GET,
	/* $1 session_id, $2 level, $3 event, $4 step, $5 due_after_minutes
	 * (0 removes), $6 method, $7 purpose, $8 assignee, $9 any_task_covers
	 * -> CADENCE rows (all rules). Group admins only. */
	STMT_CADENCE_SET,
	/* ---- relationships (h_relationships.c; sql/0019). Every statement
	 * but the questions' answers outcome ('ok', or 'existed' for a
	 * create retried with its id), then the record's columns; times are
	 * unix ms, write times crmd's clock.
	 * REFERRAL columns: the 16 of crm.referral_view, then store_id.
	 * ORGANIZATION columns: the 12 of crm.organization_view (contacts and
	 * plans as U+001E/U+001F-joined text), store_id, owner_id, then
	 * contact_role.
	 * SURVEY columns: the 14 of crm.survey_view (scores joined likewise),
	 * then store_id.
	 * COMPLAINT columns: the 21 of crm.complaint_view (events and
	 * followup_ids joined likewise), store_id, assignee_id, due_at, then
	 * overdue. */
	/* $1 session_id, $2 id, $3 referrer_id, $4 referred_id, $5 relation_id,
	 * $6 opportunity_id, $7 note, $8 reward_status, $9 write time
	 * -> outcome, REFERRAL. */
	STMT_REFERRAL_ADD,
	/* $1 session_id, $2 id, $3 reward_status, $4 note, $5 at -> REFERRAL. */
	STMT_REFERRAL_REWARD,
	/* $1 session_id, $2 customer_id, $3 reward_status, $4 store_code,
	 * $5 limit -> REFERRAL rows. */
	STMT_REFERRAL_LIST,
	/* $1 session_id, $2 id, $3 kind, $4 name, $5 owner, $6 note, $7 write
	 * time -> outcome, ORGANIZATION. */
	STMT_ORG_ADD,
	/* $1 session_id, $2 organization_id, $3 customer_id, $4 role, $5 title,
	 * $6 write time -> outcome, ORGANIZATION. */
	STMT_ORG_CONTACT_ADD,
	/* $1 session_id, $2 plan id, $3 organization_id, $4 model, $5 quantity,
	 * $6 expected_at, $7 status, $8 note, $9 write time -> outcome,
	 * ORGANIZATION. */
	STMT_PLAN_ADD,
	/* $1 session_id, $2 id, $3 customer_id, $4 kind, $5 store_code,
	 * $6 limit -> outcome, ORGANIZATION rows. */
	STMT_ORG_LIST,
	/* $1 session_id, $2 kind -> kind, number, text, scale_max, active,
	 * updated_at_ms, updated_by. */
	STMT_SURVEY_QUESTIONS,
	/* $1 session_id, $2 kind, $3 number, $4 text, $5 scale_max, $6 active
	 * -> as STMT_SURVEY_QUESTIONS. Group admins only. */
	STMT_SURVEY_QUESTION_SET,
	/* $1 session_id, $2 id, $3 kind, $4 customer_id, $5 relation_id,
	 * $6 subject_kind, $7 subject_id, $8 at, $9 scores ("n:score,..."),
	 * $10 comment, $11 write time -> outcome, SURVEY. */
	STMT_SURVEY_ADD,
	/* $1 session_id, $2 customer_id, $3 kind, $4 store_code, $5 limit
	 * -> SURVEY rows. */
	STMT_SURVEY_LIST,
	/* $1 session_id, $2 id, $3 customer_id, $4 relation_id, $5 priority,
	 * $6 category, $7 content, $8 received_at, $9 due_at (0 policy),
	 * $10 write time -> outcome, COMPLAINT. */
	STMT_COMPLAINT_ADD,
	/* $1 session_id, $2 id, $3 assignee, $4 note, $5 at -> outcome,
	 * COMPLAINT. */
	STMT_COMPLAINT_ASSIGN,
	/* $1 session_id, $2 id, $3 to_status, $4 note, $5 followup_id, $6 at
	 * -> outcome, COMPLAINT. */
	STMT_COMPLAINT_MOVE,
	/* $1 session_id, $2 id, $3 customer_id, $4 status, $5 assignee,
	 * $6 store_code, $7 overdue_only, $8 at, $9 limit -> outcome,
	 * COMPLAINT rows. */
	STMT_COMPLAINT_LIST,
	/* ---- after-sales (h_service.c; sql/0017)
	 * VEHICLE columns: the 11 of view crm.vehicle_view: id, customer_id,
	 * customer_name, store_code, vin, model, plate, purchased_on
	 * (YYYY-MM-DD or ""), created_at_ms, created_by, version.
	 * VISIT columns: the 13 of view crm.visit_view: id, vehicle_id, vin,
	 * customer_id, store_code, at_ms, mileage, type, amount (fen), note,
	 * by_user, created_at_ms, returned.
	 * BASE columns: customer_id, customer_name, store_code, visits,
	 * visits_12m, last_visit_at_ms, archived, active, loyal, lost,
	 * returned_at_ms, value_class, spend, value_computed_at_ms. */
	/* $1 session_id, $2 id, $3 customer id, $4 selling store code ("" the
	 * caller's), $5 vin, $6 model, $7 plate, $8 purchased_on (YYYY-MM-DD or
	 * ""), $9 write time ms -> existed, VEHICLE columns. DC410 (vin) when
	 * the VIN is another vehicle's. */
	STMT_VEHICLE_ADD,
	/* $1 session_id, $2 id, $3 customer id, $4 vin, $5 plate, $6 limit
	 * -> VEHICLE columns. */
	STMT_VEHICLE_LIST,
	/* $1 session_id, $2 id, $3 vehicle id, $4 at ms, $5 mileage km,
	 * $6 type, $7 amount fen, $8 note, $9 write time ms -> existed, VISIT
	 * columns. */
	STMT_VISIT_ADD,
	/* $1 session_id, $2 vehicle id, $3 customer id, $4 store code,
	 * $5 limit -> VISIT columns, newest first. */
	STMT_VISIT_LIST,
	/* $1 session_id, $2 class, $3 store code, $4 customer id, $5 at ms,
	 * $6 limit -> kind ('counts' first, then 'customer'), BASE columns,
	 * n_archived, n_active, n_loyal, n_lost (set on the 'counts' row). */
	STMT_BASE_LIST,
	/* $1 session_id, $2 store code, $3 at ms -> outcome ('created', 'open',
	 * 'no_relation'), vehicle_id, all columns of crm.task_view (NULL unless
	 * created). */
	STMT_REMINDERS_RUN,
	/* $1 session_id, $2 store code, $3 at ms -> store_code, a, b, c,
	 * computed_at_ms per store. */
	STMT_VALUE_RECOMPUTE,
	/* crmd's daily timer, no session: $1 at ms -> stores, tasks_created,
	 * classified. */
	STMT_SERVICE_DAILY,
	/* $1 session_id -> SERVICE_POLICY rows: brand, lost_after_months,
	 * loyal_visits, reminder_months, reminder_km, reminder_lead_days,
	 * value_a_pct, value_b_pct, updated_at_ms, updated_by. */
	STMT_SERVICE_POLICY_GET,
	/* $1 session_id, $2 brand, $3 remove, $4 lost_after_months,
	 * $5 loyal_visits, $6 reminder_months, $7 reminder_km,
	 * $8 reminder_lead_days, $9 value_a_pct, $10 value_b_pct
	 * -> SERVICE_POLICY rows. Group admins only. */
	STMT_SERVICE_POLICY_SET,
	/* ---- attachments of follow-ups (h_attach.c; sql/0020)
	 * ATTACHMENT columns: the first 11 of view crm.attachment_view, the
	 * fields of AttachmentInfo in order: id, followup_id, name, media_type,
	 * size, sha256 (hex), uploaded_by, created_at_ms (0 while uploading),
	 * relation_id, customer_id, store_code; then stored_at, erased_at. */
	/* $1 session_id, $2 id, $3 followup id, $4 name, $5 media type, $6 size,
	 * $7 sha256 (hex) -> outcome ('ok', 'existed'), ATTACHMENT columns. */
	STMT_ATTACH_BEGIN,
	/* $1 session_id, $2 id, $3 offset, $4 data (binary bytea) -> bytes held. */
	STMT_ATTACH_CHUNK,
	/* $1 session_id, $2 id, $3 sha256 crmd computed (NULL: crmd has no
	 * upload of it) -> outcome ('ok', 'existed'), ATTACHMENT columns. */
	STMT_ATTACH_COMMIT,
	/* $1 session_id, $2 id -> nothing: deletes the caller's upload in
	 * progress. */
	STMT_ATTACH_ABANDON,
	/* $1 session_id, $2 id, $3 offset -> ATTACHMENT columns, chunk_offset,
	 * chunk_hex (NULL: no chunk starts there). */
	STMT_ATTACH_READ,
	/* $1 session_id, $2 follow-up ids (U+001F) -> ATTACHMENT columns. */
	STMT_ATTACH_LIST,
	/* ---- pushed reminders (reminders.c; sql/0021) */
	/* No session (reminders.c's own connection): $1 session ids (U+001F),
	 * $2 cursor due time us, $3 cursor task id, $4 up to ms, $5 limit
	 * -> sessions (U+001F), due_at_us, TASK columns; by (due_at, id). */
	STMT_REMINDERS_DUE,
	/* $1 session_id, $2 since ms, $3 limit -> TASK columns, oldest first:
	 * the caller's open tasks (managers: and the pool's) due before $2. */
	STMT_REMINDER_CATCHUP,
	/* ---- sales: opportunities, orders, test drives (h_sales.c; sql/0018)
	 * OPPORTUNITY columns: the 18 of view crm.opportunity_view: id,
	 * relation_id, customer_id, store_code, stage, status, model,
	 * expected_price_fen, defeat_reason, defeat_text, competitor_brand,
	 * version, opened_at_ms, closed_at_ms, created_at_ms, updated_at_ms,
	 * created_by, history (from, to, by, at_ms joined by U+001E, changes
	 * by U+001F, oldest first).
	 * ORDER columns: the 21 of view crm.order_view: id, relation_id,
	 * customer_id, store_code, opportunity_id, model, configuration,
	 * price_fen, deposit_fen, status, placed_at_ms, delivered_at_ms,
	 * cancelled_at_ms, cancel_reason, vin, plate, vehicle_id, version,
	 * created_by, created_at_ms, updated_at_ms.
	 * TEST_DRIVE columns: the 12 of view crm.test_drive_view: id,
	 * relation_id, customer_id, store_code, opportunity_id, model,
	 * consultant, consultant_name, at_ms, note, created_by, created_at_ms. */
	/* $1 session_id, $2 action (add, stage, lose), $3 id, $4 version read,
	 * $5 relation id, $6 stage, $7 model, $8 expected price fen, $9 defeat
	 * reason, $10 text, $11 competitor brand, $12 at ms, $13 write time ms
	 * -> outcome ('ok', 'existed', 'stale'), OPPORTUNITY columns. */
	STMT_OPPORTUNITY_WRITE,
	/* $1 session_id, $2 id, $3 relation id, $4 customer id, $5 status,
	 * $6 limit -> OPPORTUNITY columns, newest first. */
	STMT_OPPORTUNITY_LIST,
	/* $1 session_id, $2 action (place, deliver, cancel), $3 plan (run and
	 * roll back), $4 id, $5 version read, $6 relation id, $7 opportunity
	 * id, $8 model, $9 configuration, $10 price fen, $11 deposit fen,
	 * $12 vin, $13 plate, $14 vehicle id, $15 reason, $16 at ms, $17 write
	 * time ms, $18 relation version expected after, $19 next follow-up ms
	 * expected after, $20 bundle (Relation; NULL for a plan) -> outcome
	 * ('ok', 'existed', 'stale'), rel_changed, ORDER columns, OPPORTUNITY
	 * columns (NULL: none), all columns of crm.relation_view (as the write
	 * leaves it). DC409 when the relation came out other than expected. */
	STMT_ORDER_WRITE,
	/* $1 session_id, $2 id, $3 relation id, $4 customer id, $5 status,
	 * $6 limit -> ORDER columns, newest first. */
	STMT_ORDER_LIST,
	/* $1 session_id, $2 id, $3 relation id, $4 opportunity id, $5 model,
	 * $6 consultant, $7 at ms, $8 note, $9 write time ms -> outcome ('ok',
	 * 'existed'), TEST_DRIVE columns, OPPORTUNITY columns (NULL: none). */
	STMT_TEST_DRIVE_ADD,
	/* $1 session_id, $2 relation id, $3 customer id, $4 limit
	 * -> TEST_DRIVE columns, newest first. */
	STMT_TEST_DRIVE_LIST,
	/* ---- message templates, sending, compliance (h_template.c; sql/0022)
	 * TEMPLATE columns: the 10 of view crm.template_view: id, store_code,
	 * name, channel, body, version, active, created_at_ms, updated_at_ms,
	 * updated_by; then store_id. */
	/* $1 session_id, $2 id, $3 version read (0 creates), $4 name, $5 channel,
	 * $6 body, $7 active (NULL: keep; on create true), $8 write time ms
	 * -> outcome ('ok', 'existed', 'stale'), all columns of
	 * crm.template_view. */
	STMT_TEMPLATE_SAVE,
	/* $1 session_id, $2 id ("" all), $3 include_inactive, $4 channel
	 * -> all columns of crm.template_view. */
	STMT_TEMPLATE_LIST,
	/* $1 session_id, $2 template id, $3 customer id, $4 relation id,
	 * $5 date ms (0: the next task's) -> all columns of crm.template_view,
	 * customer_id, relation_id, customer_name, consultant, store_name,
	 * first_model, date_year, date_month, date_day (NULL: no value). */
	STMT_TEMPLATE_CONTEXT,
	/* $1 session_id, $2 follow-up id, $3 relation id, $4 task id, $5 channel,
	 * $6 type, $7 at ms, $8 content, $9 write time ms, $10 relation version
	 * planned, $11 next_followup_at ms planned, $12 template id,
	 * $13 template version, $14 sender, $15 bundle (Followup, Relation)
	 * -> the rows of STMT_FOLLOWUP_ADD, then recipient, spooled. */
	STMT_TEMPLATE_SEND,
	/* $1 session_id, $2 follow-up id -> nothing: the sender took it. */
	STMT_TEMPLATE_SPOOLED,
	/* $1 session_id, $2 since ms, $3 until ms, $4 store code, $5 owner,
	 * $6 at ms -> store_code, owner, owner_name, tasks, on_time, late,
	 * missed, still_open, late_avg_ms, late_max_ms. */
	STMT_COMPLIANCE,
	STMT__COUNT
};

struct stmt_def {
	const char *name;
	const char *sql;
	int nparams;
};

extern const struct stmt_def stmt_defs[STMT__COUNT];

#endif
