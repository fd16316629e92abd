-- 0053_pb_pack_varints: crm.pb_pack writes a varint field's key, and a
-- value below 128, itself instead of calling crm.pb_varint for them.
--
-- A follow-up encodes its Followup, its Relation and its tasks for the
-- outbox (0046), and their integer fields (times, versions) went through
-- two calls of crm.pb_varint each: one for the key, one for the value. In
-- a single-client pgbench run of crm.followup_add with track_functions on
-- (2026-11-27), 32 calls a follow-up. A key is one byte below field 16
-- and two below field 2048 (every field of proto/crm.proto); a version is
-- mostly one byte. Those are now written in the loop; a longer value (a
-- time in milliseconds) still goes through crm.pb_varint, which also
-- refuses a negative one as before.
--
-- Same bytes: test_followups compares the outbox's records with crmd's
-- protobuf-c encoding of the same records, and the two versions gave the
-- same bytes for every field number from 1 to 2,100 as a varint and as a
-- string, with values at each varint length's edges, NULL and '' (52,500
-- messages); both refuse a negative value.
--
-- `ops/sqlcost followup8 40`, after and before in turn, twice: 51,084,824
-- and 50,683,872 instructions a group after, 51,349,787 and 51,385,976
-- before (0.5 to 1.4 %).

DO $patch$
BEGIN
    EXECUTE crm.function_patched('crm.pb_pack(integer[], text[])'::regprocedure, ARRAY[
        [$x$    v text;
BEGIN$x$,
         $x$    v text;
    n bigint;
BEGIN$x$],
        [$x$            CONTINUE WHEN v = '0';
            out := out || crm.pb_varint(-f << 3) || crm.pb_varint(v::bigint);$x$,
         $x$            CONTINUE WHEN v = '0';
            n := v::bigint;
            -- key (wire type 0): one byte below field 16, two below 2048
            out := out
                || CASE WHEN f > -16 THEN set_byte('\x00'::bytea, 0, -f << 3)
                        WHEN f > -2048 THEN set_byte(set_byte('\x0000'::bytea,
                                                0, (-f << 3) & 127 | 128), 1, -f >> 4)
                        ELSE crm.pb_varint(-f << 3) END
                || CASE WHEN n BETWEEN 0 AND 127 THEN set_byte('\x00'::bytea, 0, n::integer)
                        ELSE crm.pb_varint(n) END;$x$]]);
END
$patch$;
