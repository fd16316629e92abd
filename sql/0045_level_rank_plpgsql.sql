-- 0045_level_rank_plpgsql: the level index costs less per write (issue 5:
-- recording a follow-up with its next task).
--
-- pgbench running a follow-up with its next task, one client, with
-- track_functions (after 0044): crm.level_rank(bpchar) ran twice a
-- follow-up (the two indexes on it take a new entry at each update of the
-- relation), 25 us in all.
--
-- It was an SQL function that could not be inlined (NULLIF is not strict,
-- the function is), and such a function is parsed and planned again at
-- every call. In PL/pgSQL its expression is planned once per connection:
-- 4 us for the two calls. Same result, still IMMUTABLE, STRICT and
-- LEAKPROOF, so the indexes on it stay valid and the lists' plans do not
-- change.
--
-- Tried and left: crm.pb_varint (a PL/pgSQL loop, 51 calls a follow-up,
-- 57 us) as an SQL expression for numbers under 16384, inlined into the
-- encodings. The encodings then took 316 us a follow-up instead of 224:
-- PL/pgSQL prepares each expression anew in every transaction, and the
-- inlined expressions were several times larger.

CREATE OR REPLACE FUNCTION crm.level_rank(p_level bpchar) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT LEAKPROOF
AS $$
BEGIN
    RETURN nullif(strpos('HABCNODT', p_level::text), 0);
END
$$;
