-- 0046_record_path_costs: what recording a follow-up and reading one
-- record cost PostgreSQL that was not the data (issues 3 and 5: the
-- benchmark's p99 targets).
--
-- Counted with ops/sqlcost (instructions of PostgreSQL's backend per
-- request, callgrind) on the ops/bench group, 1,000,000 customers and 10
-- million follow-ups. Each item below alone; the figures are the change it
-- made where it was tried, in the order they were tried.
--
-- * Protobuf in fewer PL/pgSQL steps. A follow-up encodes its Followup,
--   its Relation and its tasks for the outbox; that was 1.73 million of the
--   8.5 million instructions (the three encoders returning a constant
--   instead: 6.81 million). Each field was an inlined crm.pb_text or
--   crm.pb_int, whose expression PL/pgSQL builds again in every
--   transaction, and two calls of crm.pb_varint, a loop of three
--   statements a byte (six bytes for a time in milliseconds). (These two
--   counts, the follow-up's pair at the end of this item and
--   crm.followup_add's pair under "No hash table" were taken with
--   crm.pb_text and crm.pb_int rewritten in PL/pgSQL, a step tried on the
--   way: 8,812,288 -> 8,667,692 by itself, left out once crm.pb_pack took
--   their place.)
--   - crm.pb_varint computes all its bytes in one expression: same bytes
--     (compared with the loop on 30,022 values, every length from 1 to 9
--     bytes and the largest bigint); every encoder in the database uses it.
--   - crm.pb_pack encodes a message's fields from two arrays (field
--     numbers, values as text) in one call, a key and length of one byte
--     each written in one step. crm.followup_payload_of,
--     crm.relation_payload_of and crm.task_payload_of use it; same bytes as
--     before on 3,000 follow-ups, 3,000 tasks, 3,000 relations and the
--     1,550 relations with intents (test_followups also compares them with
--     crmd's protobuf-c). Follow-up: 8,538,811 -> 7,849,101.
-- * The first-visit checks are planned once. `p_method = 'visit' AND NOT
--   EXISTS (...)` in crm.followup_apply, and its twin in
--   crm.cadence_apply, got a plan for the call's values every time: with
--   the values the planner folds the condition to false, so the plan for
--   any values always looked dearer. Now an IF on the method and then the
--   query. Follow-up: 8,913,868 -> 8,812,288.
-- * No hash table of the stores for one row. crm.relation_view,
--   crm.task_view, crm.followup_view and crm.customer_view join the 20
--   stores; for one row the planner prefers reading all 20 and hashing
--   them (1.2 units) to one index look-up (2.4), and building that hash
--   table is what costs: 13 % of a customer read. Off in the functions
--   that read records one by one: crm.session_begin (every request:
--   425,138 -> 399,391 for the session alone), crm.customer_get (get mix:
--   2,217,006 -> 1,920,777) and crm.followup_add (8,667,692 -> 8,474,094).
--   A function's settings hold for everything it calls; nothing these
--   three call joins more than a handful of rows.
-- * A list's cursors lose base64's line breaks through replace(), not
--   translate(), which looks at each character: 13,000 instructions a row.
--   Same text. crm.customer_query; name search 8,678,162 -> 8,413,498,
--   filtered list 10,151,220 -> 9,737,075.
-- * crm.outbox_subject and crm.audit_actor run as their caller. Only
--   crm.outbox_append_all and crm.audit_append call them, both SECURITY
--   DEFINER with the same owner and search_path, and only that owner may
--   execute them; switching the identity and search_path again for each
--   record cost 7,845,611 -> 7,778,840 a follow-up.

-- ---------------------------------------------------------------- protobuf

CREATE OR REPLACE FUNCTION crm.pb_varint(p_value bigint) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT
AS $$
DECLARE
    n integer;
BEGIN
    IF p_value < 128 THEN
        IF p_value < 0 THEN
            RAISE EXCEPTION 'pb_varint: negative value %', p_value;
        END IF;
        RETURN set_byte('\x00'::bytea, 0, p_value::integer);
    END IF;
    n := CASE WHEN p_value < 16384 THEN 2 WHEN p_value < 2097152 THEN 3
              WHEN p_value < 268435456 THEN 4 WHEN p_value < 34359738368 THEN 5
              WHEN p_value < 4398046511104 THEN 6 WHEN p_value < 562949953421312 THEN 7
              WHEN p_value < 72057594037927936 THEN 8 ELSE 9 END;
    -- Seven bits a byte, lowest first, the high bit set on all but the last.
    RETURN set_byte(substring(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(
               set_byte('\x000000000000000000'::bytea,
                   0, (p_value & 127 | 128)::integer),
                   1, (p_value >> 7 & 127 | 128)::integer),
                   2, (p_value >> 14 & 127 | 128)::integer),
                   3, (p_value >> 21 & 127 | 128)::integer),
                   4, (p_value >> 28 & 127 | 128)::integer),
                   5, (p_value >> 35 & 127 | 128)::integer),
                   6, (p_value >> 42 & 127 | 128)::integer),
                   7, (p_value >> 49 & 127 | 128)::integer) FROM 1 FOR n),
               n - 1, (p_value >> (7 * (n - 1)))::integer);
END
$$;

-- A message from parallel arrays: p_fields[i] is the field number of
-- p_values[i], a string when positive, a varint (written as text) when
-- negative. NULL, '' and 0 are left out, as proto3 leaves out defaults.
CREATE FUNCTION crm.pb_pack(p_fields integer[], p_values text[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    out bytea := '';
    b bytea;
    f integer;
    v text;
BEGIN
    IF cardinality(p_fields) IS DISTINCT FROM cardinality(p_values) THEN
        RAISE EXCEPTION 'pb_pack: % field numbers for % values',
            cardinality(p_fields), cardinality(p_values);
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_fields), 0) LOOP
        v := p_values[i];
        CONTINUE WHEN v IS NULL OR v = '';
        f := p_fields[i];
        IF f < 0 THEN
            CONTINUE WHEN v = '0';
            out := out || crm.pb_varint(-f << 3) || crm.pb_varint(v::bigint);
            CONTINUE;
        END IF;
        b := convert_to(v, 'UTF8');
        IF f < 16 AND octet_length(b) < 128 THEN
            -- key and length a byte each
            out := out || set_byte(set_byte('\x0000'::bytea, 0, f << 3 | 2), 1, octet_length(b))
                || b;
        ELSE
            out := out || crm.pb_varint(f << 3 | 2) || crm.pb_varint(octet_length(b)) || b;
        END IF;
    END LOOP;
    RETURN out;
END
$$;

CREATE OR REPLACE FUNCTION crm.followup_payload_of(f crm.followup_view) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN crm.pb_pack('{1,2,3,4,5,6,-7,8,9,10,11,-12}',
        ARRAY[f.id::text, f.relation_id::text, f.customer_id::text, f.store_code, f.method,
              f.type, f.at_ms::text, f.content, f.feedback, f.by_user, f.task_id,
              f.created_at_ms::text]);
END
$$;

CREATE OR REPLACE FUNCTION crm.task_payload_of(t crm.task_view) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN crm.pb_pack('{1,2,3,5,6,-8,9,10,11,12,13,14,-15,-16,17,-18,20}',
        ARRAY[t.id::text, t.relation_id::text, t.customer_id::text, t.store_code, t.owner,
              t.due_at_ms::text, t.method, t.purpose, t.status, t.reason, t.followup_id,
              t.cadence_key, t.created_at_ms::text, t.closed_at_ms::text, t.closed_by,
              t.version::text, t.set_by_followup]);
END
$$;

-- Intents, field 14, are nested messages between fields 13 and 15.
CREATE OR REPLACE FUNCTION crm.relation_payload_of(v crm.relation_view) RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN crm.pb_pack('{1,2,3,4,5,6,7,8,9,-10,11,12,13}',
               ARRAY[v.id::text, v.customer_id::text, v.store_code, v.store_name, v.brand,
                     v.owner, v.owner_name, v.level, v.source, v.first_contact_at_ms::text,
                     v.first_contact_place, v.first_contact_scenario, v.first_feedback])
        || coalesce((SELECT string_agg(crm.pb_message(14, m.body), ''::bytea ORDER BY m.position)
                       FROM (SELECT i.position,
                                    crm.pb_pack('{1,2,3,-4,-5,6}',
                                        ARRAY[i.model, i.body_type, i.configuration,
                                              i.budget_min::text, i.budget_max::text,
                                              i.needs]) AS body
                               FROM crm.relation_intents i
                              WHERE i.relation_id = v.id
                             OFFSET 0) m), ''::bytea)
        || crm.pb_pack('{15,-16,-17,-18,-19,-20,-21}',
               ARRAY[v.status, v.version::text, v.created_at_ms::text, v.updated_at_ms::text,
                     v.protected_until_ms::text, v.last_contact_at_ms::text,
                     v.next_followup_at_ms::text]);
END
$$;

-- ---------------------------------------------------------------- first visits

DO $patch$
DECLARE
    fn regprocedure :=
        'crm.followup_apply(crm.relations, uuid, text, uuid, uuid, text, text, timestamptz,'
        ' text, text, text, timestamptz, text, text, timestamptz)'::regprocedure;
BEGIN
    EXECUTE crm.function_patched(fn, ARRAY[
        [$x$    IF p_method = 'visit' AND NOT EXISTS (
           SELECT 1 FROM crm.followups f
            WHERE f.relation_id = r.id AND f.method = 'visit' AND f.id <> p_id) THEN
        v_ids := v_ids || crm.cadence_apply(r.id, 'first_visit', p_at, p_user_id, p_write_at);
    END IF;$x$,
         $x$    IF p_method = 'visit' THEN
        IF NOT EXISTS (SELECT 1 FROM crm.followups f
                        WHERE f.relation_id = r.id AND f.method = 'visit' AND f.id <> p_id) THEN
            v_ids := v_ids || crm.cadence_apply(r.id, 'first_visit', p_at, p_user_id, p_write_at);
        END IF;
    END IF;$x$]]);
    fn := 'crm.cadence_apply(uuid, text, timestamptz, uuid, timestamptz)'::regprocedure;
    EXECUTE crm.function_patched(fn, ARRAY[
        [$x$    IF p_event = 'first_visit' AND EXISTS (
           SELECT 1 FROM crm.tasks t
            WHERE t.relation_id = rel.id AND t.cadence_key LIKE '_/first\_visit/%') THEN
        RETURN v_ids;
    END IF;$x$,
         $x$    IF p_event = 'first_visit' THEN
        IF EXISTS (SELECT 1 FROM crm.tasks t
                    WHERE t.relation_id = rel.id AND t.cadence_key LIKE '_/first\_visit/%') THEN
            RETURN v_ids;
        END IF;
    END IF;$x$]]);
END
$patch$;

-- ---------------------------------------------------------------- list cursors

DO $patch$
DECLARE
    fn constant regprocedure :=
        'crm.customer_query(uuid, text, text, text, text, text, text, text, text, text,'
        ' boolean, integer, boolean, text, text, boolean, text, integer)'::regprocedure;
BEGIN
    EXECUTE crm.function_patched(fn, ARRAY[
        [$x$' coalesce(array_agg(translate(encode(convert_to(jsonb_build_array($x$,
         $x$' coalesce(array_agg(replace(encode(convert_to(jsonb_build_array($x$]]);
END
$patch$;

-- ---------------------------------------------------------------- one record, no hash

ALTER FUNCTION crm.session_begin(uuid) SET enable_hashjoin = off;
ALTER FUNCTION crm.customer_get(uuid, text) SET enable_hashjoin = off;
ALTER FUNCTION crm.followup_add(uuid, text, text, text, text, text, bigint, text, text, bigint,
                                text, text, bigint, bigint, bigint, bytea)
    SET enable_hashjoin = off;

-- ---------------------------------------------------------------- helpers as their caller

ALTER FUNCTION crm.outbox_subject(text, uuid) SECURITY INVOKER RESET search_path;
ALTER FUNCTION crm.audit_actor(uuid, text, uuid, text) SECURITY INVOKER RESET search_path;

REVOKE ALL ON FUNCTION crm.pb_pack(integer[], text[]) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.pb_pack(integer[], text[]) TO %I', app);
END
$$;
