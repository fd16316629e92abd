-- 0050_row_checks: the tables every follow-up writes check their rows with one
-- function each instead of one CHECK constraint per rule (issue 5: recording
-- a follow-up with its next task, p99 at 16 desks).
--
-- PostgreSQL keeps a CHECK constraint as the text of its expression tree and
-- reads that text back, plans it and prepares it in every statement that
-- inserts or updates the table, however few rows it writes. A follow-up
-- writes crm.followups (4 checks), crm.relations (7), crm.tasks (9) and
-- crm.audit_log (8): in a group of 8 follow-ups (crm.followup_add_batch)
-- that was 8.9 % of the backend's instructions, 6.1 % in reading the
-- expressions back from their text alone, against 0.6 % in evaluating them.
-- A function's body is compiled once per connection, so each table now has
-- one CHECK, a call of crm.<table>_row_ok, which tests the same rules in the
-- same order and returns true. ops/sqlcost fgroup (8 follow-ups of 8
-- consultants with their next tasks, 40 groups after 10, on the bench
-- group): 59,229,978 instructions a group before, 54,930,043 after.
--
-- The rules are those of the constraints this replaces, word for word; a
-- rule whose value is NULL passes, as a CHECK does (IF NOT NULL is false). A
-- row that breaks one is refused with SQLSTATE 23514 (check_violation) as
-- before, now naming the table, the column and the rule: crmd passes the
-- column on as the error's field. The handlers check every field before
-- they write, so these are the last guard, not the desk's messages.
--
-- The price is paid by bulk loads: a row costs about 0.5 us more to check
-- through the function than through inline rules (crmctl seed's 10 million
-- follow-ups: some 5 s more). Other tables keep their CHECK constraints:
-- they are written far less often than once per follow-up. Adding the new constraints reads each
-- table once (on the bench group, 1,000,000 customers: about 30 s in all,
-- 13 s of it the audit log).

CREATE FUNCTION crm.row_rule_broken(p_table text, p_column text, p_rule text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = p_table, COLUMN = p_column,
        CONSTRAINT = p_table || '_row_check',
        MESSAGE = format('%s.%s %s', p_table, p_column, p_rule);
END
$$;

CREATE FUNCTION crm.followups_row_ok(content text, feedback text, method text, type text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT (char_length(content) BETWEEN 1 AND 2000) THEN
        PERFORM crm.row_rule_broken('followups', 'content', 'must have 1 to 2000 characters');
    END IF;
    IF NOT (char_length(feedback) <= 1000) THEN
        PERFORM crm.row_rule_broken('followups', 'feedback', 'must have at most 1000 characters');
    END IF;
    IF NOT (method IN ('phone', 'wechat', 'visit', 'sms', 'email', 'other')) THEN
        PERFORM crm.row_rule_broken('followups', 'method',
            'must be phone, wechat, visit, sms, email or other');
    END IF;
    IF NOT (type IN ('first_contact', 'needs_analysis', 'model_presentation', 'invitation',
                     'test_drive', 'negotiation', 'delivery', 'after_sales_call', 'care',
                     'complaint')) THEN
        PERFORM crm.row_rule_broken('followups', 'type', 'is not a follow-up type');
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION crm.relations_row_ok(first_contact_place text, first_contact_scenario text,
                                     first_feedback text, level character, source text,
                                     status text, version bigint)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT (char_length(first_contact_place) <= 100) THEN
        PERFORM crm.row_rule_broken('relations', 'first_contact_place',
            'must have at most 100 characters');
    END IF;
    IF NOT (char_length(first_contact_scenario) <= 200) THEN
        PERFORM crm.row_rule_broken('relations', 'first_contact_scenario',
            'must have at most 200 characters');
    END IF;
    IF NOT (char_length(first_feedback) <= 1000) THEN
        PERFORM crm.row_rule_broken('relations', 'first_feedback',
            'must have at most 1000 characters');
    END IF;
    IF NOT (level IN ('H', 'A', 'B', 'C', 'N', 'O', 'D', 'T')) THEN
        PERFORM crm.row_rule_broken('relations', 'level', 'must be H, A, B, C, N, O, D or T');
    END IF;
    IF NOT (source IN ('walk_in', 'referral', 'online', 'auto_show', 'phone_in', 'roadshow',
                       'fleet', 'other')) THEN
        PERFORM crm.row_rule_broken('relations', 'source', 'is not a source channel');
    END IF;
    IF NOT (status IN ('active', 'dormant', 'closed')) THEN
        PERFORM crm.row_rule_broken('relations', 'status', 'must be active, dormant or closed');
    END IF;
    IF NOT (version >= 1) THEN
        PERFORM crm.row_rule_broken('relations', 'version', 'must be 1 or more');
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION crm.tasks_row_ok(status text, closed_at timestamptz, reason text, followup_id uuid,
                                 method text, purpose text, cadence_key text, version bigint)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT (char_length(cadence_key) <= 40) THEN
        PERFORM crm.row_rule_broken('tasks', 'cadence_key', 'must have at most 40 characters');
    END IF;
    IF NOT ((status = 'open') = (closed_at IS NULL)) THEN
        PERFORM crm.row_rule_broken('tasks', 'closed_at',
            'must be empty while the task is open, and set once it is not');
    END IF;
    IF NOT (status <> 'skipped' OR reason <> '') THEN
        PERFORM crm.row_rule_broken('tasks', 'reason', 'is required to skip a task');
    END IF;
    IF NOT ((status = 'done') = (followup_id IS NOT NULL)) THEN
        PERFORM crm.row_rule_broken('tasks', 'followup_id',
            'must be set when, and only when, the task is done');
    END IF;
    IF NOT (method IN ('phone', 'wechat', 'visit', 'sms', 'email', 'other')) THEN
        PERFORM crm.row_rule_broken('tasks', 'method',
            'must be phone, wechat, visit, sms, email or other');
    END IF;
    IF NOT (char_length(purpose) BETWEEN 1 AND 200) THEN
        PERFORM crm.row_rule_broken('tasks', 'purpose', 'must have 1 to 200 characters');
    END IF;
    IF NOT (char_length(reason) <= 500) THEN
        PERFORM crm.row_rule_broken('tasks', 'reason', 'must have at most 500 characters');
    END IF;
    IF NOT (status IN ('open', 'done', 'skipped')) THEN
        PERFORM crm.row_rule_broken('tasks', 'status', 'must be open, done or skipped');
    END IF;
    IF NOT (version >= 1) THEN
        PERFORM crm.row_rule_broken('tasks', 'version', 'must be 1 or more');
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION crm.audit_log_row_ok(action text, actor_username text, entity text,
                                     entity_id text, outcome text, reason text,
                                     source_addr text, subject text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)*$') THEN
        PERFORM crm.row_rule_broken('audit_log', 'action',
            'must be lower-case words joined by dots');
    END IF;
    IF NOT (char_length(actor_username) <= 200) THEN
        PERFORM crm.row_rule_broken('audit_log', 'actor_username',
            'must have at most 200 characters');
    END IF;
    IF NOT (char_length(entity) <= 64) THEN
        PERFORM crm.row_rule_broken('audit_log', 'entity', 'must have at most 64 characters');
    END IF;
    IF NOT (char_length(entity_id) <= 200) THEN
        PERFORM crm.row_rule_broken('audit_log', 'entity_id', 'must have at most 200 characters');
    END IF;
    IF NOT (outcome IN ('ok', 'failed', 'denied')) THEN
        PERFORM crm.row_rule_broken('audit_log', 'outcome', 'must be ok, failed or denied');
    END IF;
    IF NOT (char_length(reason) <= 500) THEN
        PERFORM crm.row_rule_broken('audit_log', 'reason', 'must have at most 500 characters');
    END IF;
    IF NOT (char_length(source_addr) <= 200) THEN
        PERFORM crm.row_rule_broken('audit_log', 'source_addr',
            'must have at most 200 characters');
    END IF;
    IF NOT (char_length(subject) <= 200) THEN
        PERFORM crm.row_rule_broken('audit_log', 'subject', 'must have at most 200 characters');
    END IF;
    RETURN true;
END
$$;

ALTER TABLE crm.followups
    DROP CONSTRAINT followups_content_check,
    DROP CONSTRAINT followups_feedback_check,
    DROP CONSTRAINT followups_method_check,
    DROP CONSTRAINT followups_type_check,
    ADD CONSTRAINT followups_row_check
        CHECK (crm.followups_row_ok(content, feedback, method, type));

ALTER TABLE crm.relations
    DROP CONSTRAINT relations_first_contact_place_check,
    DROP CONSTRAINT relations_first_contact_scenario_check,
    DROP CONSTRAINT relations_first_feedback_check,
    DROP CONSTRAINT relations_level_check,
    DROP CONSTRAINT relations_source_check,
    DROP CONSTRAINT relations_status_check,
    DROP CONSTRAINT relations_version_check,
    ADD CONSTRAINT relations_row_check
        CHECK (crm.relations_row_ok(first_contact_place, first_contact_scenario, first_feedback,
                                    level, source, status, version));

ALTER TABLE crm.tasks
    DROP CONSTRAINT tasks_cadence_key_check,
    DROP CONSTRAINT tasks_check,
    DROP CONSTRAINT tasks_check1,
    DROP CONSTRAINT tasks_check2,
    DROP CONSTRAINT tasks_method_check,
    DROP CONSTRAINT tasks_purpose_check,
    DROP CONSTRAINT tasks_reason_check,
    DROP CONSTRAINT tasks_status_check,
    DROP CONSTRAINT tasks_version_check,
    ADD CONSTRAINT tasks_row_check
        CHECK (crm.tasks_row_ok(status, closed_at, reason, followup_id, method, purpose,
                                cadence_key, version));

ALTER TABLE crm.audit_log
    DROP CONSTRAINT audit_log_action_check,
    DROP CONSTRAINT audit_log_actor_username_check,
    DROP CONSTRAINT audit_log_entity_check,
    DROP CONSTRAINT audit_log_entity_id_check,
    DROP CONSTRAINT audit_log_outcome_check,
    DROP CONSTRAINT audit_log_reason_check,
    DROP CONSTRAINT audit_log_source_addr_check,
    DROP CONSTRAINT audit_log_subject_check,
    ADD CONSTRAINT audit_log_row_check
        CHECK (crm.audit_log_row_ok(action, actor_username, entity, entity_id, outcome, reason,
                                    source_addr, subject));

-- Every statement that writes these tables calls them, as whichever role
-- writes: crmd's.
REVOKE ALL ON FUNCTION crm.row_rule_broken(text, text, text),
    crm.followups_row_ok(text, text, text, text),
    crm.relations_row_ok(text, text, text, character, text, text, bigint),
    crm.tasks_row_ok(text, timestamptz, text, uuid, text, text, text, bigint),
    crm.audit_log_row_ok(text, text, text, text, text, text, text, text) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.row_rule_broken(text, text, text), '
                   'crm.followups_row_ok(text, text, text, text), '
                   'crm.relations_row_ok(text, text, text, character, text, text, bigint), '
                   'crm.tasks_row_ok(text, timestamptz, text, uuid, text, text, text, bigint), '
                   'crm.audit_log_row_ok(text, text, text, text, text, text, text, text) TO %I',
                   app);
END
$$;
