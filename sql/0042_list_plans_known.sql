-- 0042_list_plans_known: crm.customer_query knows which list shapes its
-- connection has prepared without reading pg_prepared_statements on every
-- call (issue 3: list and search latency).
--
-- Before it ran a page's prepared statement, crm.customer_query (0007)
-- looked its name up in pg_prepared_statements. That view builds a row,
-- with the statement's whole text, for every statement the connection has
-- prepared: crmd prepares some 90 at connect (server/stmts.c), and each
-- list shape adds its own. With 91 statements of about 350 characters,
-- the lookup took 19 us; a string search in a setting takes 0.3 us.
--
-- * The names this connection has prepared are kept, space-separated, in
--   the session setting crm.list_plans. A name found there is run at once.
-- * A name not found there is looked up in pg_prepared_statements as
--   before, prepared if missing, then added to the setting. A setting made
--   in a transaction that then fails is undone while the statement it
--   names stays prepared (PREPARE is not transactional): the next call
--   finds it in the view and does not prepare it twice.
-- * DISCARD ALL drops the statements and resets the setting together;
--   nothing in crmd deallocates statements one by one.

DO $$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
    def text := crm.function_patched(fn, ARRAY[
        [$x$    IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements ps WHERE ps.name = v_plan) THEN
        EXECUTE format('PREPARE %I (uuid, uuid, text, text, text, text, text, text[], text[],'
                       ' text, text, uuid, text, timestamptz, timestamptz, text, integer, uuid,'
                       ' uuid, integer, uuid[], text[], text[], text[], integer) AS %s',
                       v_plan, v_sql);
    END IF;
$x$,
         $x$    -- The shapes this connection has prepared (0042).
    IF strpos(coalesce(current_setting('crm.list_plans', true), ''), v_plan || ' ') = 0 THEN
        IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements ps WHERE ps.name = v_plan) THEN
            EXECUTE format('PREPARE %I (uuid, uuid, text, text, text, text, text, text[], text[],'
                           ' text, text, uuid, text, timestamptz, timestamptz, text, integer,'
                           ' uuid, uuid, integer, uuid[], text[], text[], text[], integer) AS %s',
                           v_plan, v_sql);
        END IF;
        PERFORM set_config('crm.list_plans',
                           coalesce(current_setting('crm.list_plans', true), '') || v_plan || ' ',
                           false);
    END IF;
$x$]]);
BEGIN
    EXECUTE def;
END
$$;
