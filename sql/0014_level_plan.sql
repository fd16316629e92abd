-- 0014_level_plan: level.set writes the relation as it will be stored.
--
-- Since 0013 a level change can create tasks (the cadence policy, through
-- the trigger on crm.level_changes), and the earliest open task is the
-- relation's next follow-up: the level change moves next_followup_at. crmd
-- packs the Relation it sends to the outbox before the write, so it must
-- know that value first. As for follow-ups (crm.followup_plan): a plan runs
-- the whole write and rolls it back, crmd packs the relation with what the
-- plan found, and the write refuses when the result differs (another write
-- moved the tasks in between), so the outbox never holds a relation other
-- than the one stored.

-- STMT_LEVEL_SET_PLAN: the RELATION columns as they are now, the relation's
-- next follow-up (unix ms, 0 none) after the change, and the write time to
-- use for the write (the tasks' due times follow from it). Raises what
-- crm.level_set raises (403, 404, 400); a stale version comes back as the
-- current relation, whose version tells crmd.
CREATE FUNCTION crm.level_set_plan(p_session_id uuid, p_id text, p_version bigint,
                                   p_level text, p_reason text, p_at_ms bigint)
RETURNS TABLE (rel crm.relation_view, after_next_followup_ms bigint, at_ms bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_outcome text;
    v_next bigint;
    v_id uuid;
BEGIN
    -- The caller's scope for this transaction, outside the block: rolling
    -- the block back also undoes the settings made inside it, and the
    -- policies would then show nothing.
    PERFORM crm.session_begin(p_session_id);
    BEGIN
        -- A bundle of one empty record: the plan's outbox rows are rolled
        -- back with everything else.
        SELECT x.outcome, coalesce((x.rel).next_followup_at_ms, 0), (x.rel).id
          INTO v_outcome, v_next, v_id
          FROM crm.level_set(p_session_id, p_id, p_version, p_level, p_reason, p_at_ms,
                             '\x0000000100'::bytea) x;
        RAISE EXCEPTION USING ERRCODE = 'DC999', MESSAGE = 'plan only';
    EXCEPTION WHEN SQLSTATE 'DC999' THEN
        NULL;
    END;
    RETURN QUERY SELECT v, v_next, p_at_ms FROM crm.relation_view v WHERE v.id = v_id;
END
$$;

-- STMT_LEVEL_SET: crm.level_set, and the relation's next follow-up must be
-- the one the plan found (p_expect_next_ms), else nothing is written.
CREATE FUNCTION crm.level_set_checked(p_session_id uuid, p_id text, p_version bigint,
                                      p_level text, p_reason text, p_at_ms bigint,
                                      p_expect_next_ms bigint, p_payloads bytea)
RETURNS TABLE (outcome text, rel crm.relation_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    w record;
BEGIN
    SELECT x.outcome, x.rel, coalesce((x.rel).next_followup_at_ms, 0) AS next INTO w
      FROM crm.level_set(p_session_id, p_id, p_version, p_level, p_reason, p_at_ms,
                         p_payloads) x;
    IF w.outcome = 'ok' AND w.next <> p_expect_next_ms THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409',
            MESSAGE = 'the relation''s tasks changed while its level was being set; try again';
    END IF;
    RETURN QUERY SELECT w.outcome, w.rel;
END
$$;

REVOKE ALL ON FUNCTION crm.level_set_plan(uuid, text, bigint, text, text, bigint),
    crm.level_set_checked(uuid, text, bigint, text, text, bigint, bigint, bytea) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' crm.level_set_plan(uuid, text, bigint, text, text, bigint),'
                   ' crm.level_set_checked(uuid, text, bigint, text, text, bigint, bigint, bytea)'
                   ' TO %I', app);
END
$$;
