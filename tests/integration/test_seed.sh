#!/usr/bin/env bash
# crmctl seed: a generated group lands whole and consistent, and leaves the
# schema exactly as the migrations define it. Seeds 4 stores and 2,000
# customers into the test cluster, then checks counts, phones (valid mobiles,
# unique, one primary each), levels and sources, owners (a consultant of the
# relation's store or the pool), intents from the store brand's catalog, level
# history, UUIDv7 order, follow-ups (--followups: exactly that many, within
# each relation's contacts, the newest at its last contact) and the one open
# task per relation with a next contact (due then, its owner's, set by the
# newest follow-up), that a second seed is refused and changes nothing,
# that the same --seed gives the same data, that a piped run prints no
# progress bar (and a terminal run does), and that a seeded consultant can log
# in and list and search their customers through crmd.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh).
set -euo pipefail

[[ -n ${CRM_TEST_ENV:-} && -f $CRM_TEST_ENV ]] || {
	echo "CRM_TEST_ENV is not set or missing; run through ctest (fixture crm)" >&2
	exit 1
}
set -a
# shellcheck source=/dev/null
source "$CRM_TEST_ENV"
set +a
# shellcheck source=SCRIPTDIR/../../ops/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/ops/lib.sh"
crm=$CRM_BUILD_DIR/crm
crmctl=$CRM_BUILD_DIR/crmctl

CRM_CONFIG_DIR=$(mktemp -d)
export CRM_CONFIG_DIR
work=$(mktemp -d)
second_db=crm_seed_again
cleanup() {
	PGPASSWORD=$CRM_PG_PASSWORD "$(crm_pg_bin)/dropdb" -h 127.0.0.1 -p "$CRM_PG_PORT" \
		-U postgres --if-exists "$second_db" >/dev/null 2>&1 || true
	rm -rf "$CRM_CONFIG_DIR" "$work"
}
trap cleanup EXIT

passed=0 failed=0
ok() {
	passed=$((passed + 1))
	echo "ok   $1"
}
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1"
	shift
	local line
	for line in "$@"; do echo "     $line"; done
}

# sql [DB] QUERY: one value (or rows, |-separated) from PostgreSQL as the superuser.
sql() {
	local db=crm
	if (($# == 2)); then
		db=$1
		shift
	fi
	PGPASSWORD=$CRM_PG_PASSWORD "$(crm_pg_bin)/psql" -h 127.0.0.1 -p "$CRM_PG_PORT" \
		-U postgres -d "$db" -X -A -t -v ON_ERROR_STOP=1 -c "$1"
}

# expect NAME GOT WANT
expect() {
	if [[ $2 == "$3" ]]; then
		ok "$1"
	else
		not_ok "$1" "got:  $2" "want: $3"
	fi
}

# The schema of the customer tables: every index and constraint definition.
schema_of() {
	sql "${1:-crm}" "SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	       SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'crm'
	       UNION ALL
	       SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
	         FROM pg_constraint WHERE connamespace = 'crm'::regnamespace) x"
}

seeded="(SELECT id FROM crm.stores WHERE code ~ '^SD[0-9]{3}\$')"
schema_before=$(schema_of crm)
customers_before=$(sql "SELECT count(*) FROM crm.customers")

# ---- a piped run: no progress bar, one summary line
rc=0
"$crmctl" -c "$CRMD_CONFIG" seed --stores 4 --customers 2000 --followups 15000 --seed 7 \
	--logins "$work/seed.txt" >"$work/out" 2>"$work/err" </dev/null || rc=$?
expect "seed --stores 4 --customers 2000 --followups 15000 exits 0" "$rc" 0
if [[ $rc != 0 ]]; then
	cat "$work/out" "$work/err"
	echo "$passed passed, $failed failed"
	exit 1
fi
if [[ ! -s $work/err ]] && ! grep -q $'\r' "$work/out"; then
	ok "a piped seed prints no progress bar"
else
	not_ok "a piped seed prints no progress bar" "stderr: $(tr '\r' '|' <"$work/err")"
fi
expect "a piped seed prints one summary line" "$(wc -l <"$work/out" | tr -d ' ')" 1
if grep -q '2000 customers' "$work/out"; then
	ok "the summary counts 2000 customers"
else
	not_ok "the summary counts 2000 customers" "$(cat "$work/out")"
fi

# ---- what was written
expect "4 seeded stores" "$(sql "SELECT count(*) FROM crm.stores WHERE id IN $seeded")" 4
expect "seeded store codes do not clash with the demo's" \
	"$(sql "SELECT count(*) FROM crm.stores WHERE code IN ('BJ01', 'SH01', 'GZ01')")" 3
expect "a sales manager and 6 consultants per store" \
	"$(sql "SELECT string_agg(role || '=' || n, ',' ORDER BY role) FROM (
	          SELECT role, count(*) n FROM crm.users WHERE store_id IN $seeded GROUP BY role) x")" \
	"consultant=24,sales_manager=4"
expect "the stores span 4 brands" \
	"$(sql "SELECT count(DISTINCT brand) FROM crm.stores WHERE id IN $seeded")" 4
expect "2000 new customers" \
	"$(sql "SELECT count(*) - $customers_before FROM crm.customers")" 2000
expect "every seeded customer belongs to a seeded store" \
	"$(sql "SELECT count(*) FROM crm.customers WHERE store_id IN $seeded")" 2000
expect "every seeded customer has a relation at its store" \
	"$(sql "SELECT count(*) FROM crm.customers c WHERE c.store_id IN $seeded AND NOT EXISTS
	          (SELECT 1 FROM crm.relations r WHERE r.customer_id = c.id AND r.store_id = c.store_id)")" 0
two=$(sql "SELECT count(*) FROM (SELECT customer_id FROM crm.relations WHERE store_id IN $seeded
            GROUP BY 1 HAVING count(*) = 2) x")
if ((two > 100 && two < 600)); then
	ok "some customers ($two) also have a relation at a second store"
else
	not_ok "some customers also have a relation at a second store" "got $two of 2000"
fi
expect "a second relation is always at a store of another brand" \
	"$(sql "SELECT count(*) FROM crm.relations a JOIN crm.relations b
	          ON a.customer_id = b.customer_id AND a.id < b.id
	        JOIN crm.stores sa ON sa.id = a.store_id JOIN crm.stores sb ON sb.id = b.store_id
	       WHERE sa.brand = sb.brand AND a.store_id IN $seeded")" 0

# ---- follow-ups and open tasks
fu="crm.followups f JOIN crm.relations r ON r.id = f.relation_id"
expect "exactly 15000 follow-ups, all on seeded relations" \
	"$(sql "SELECT count(*) FROM $fu WHERE r.store_id IN $seeded")" 15000
spread=$(sql "SELECT count(*) || ' ' || max(n) FROM (SELECT count(f.id) n FROM crm.relations r
                LEFT JOIN crm.followups f ON f.relation_id = r.id
               WHERE r.store_id IN $seeded GROUP BY r.id HAVING count(f.id) > 0) x")
read -r with_fu most <<<"$spread"
if ((with_fu > 1500 && most < 80)); then
	ok "follow-ups are spread over most relations ($with_fu have some, at most $most)"
else
	not_ok "follow-ups are spread over most relations" "got $with_fu relations, at most $most"
fi
expect "every follow-up lies within its relation's first and last contact" \
	"$(sql "SELECT count(*) FROM $fu WHERE r.store_id IN $seeded
	          AND (f.at < r.first_contact_at OR f.at > r.last_contact_at OR f.store_id <> r.store_id)")" 0
expect "a relation's newest follow-up is its last contact" \
	"$(sql "SELECT count(*) FROM crm.relations r WHERE r.store_id IN $seeded
	          AND EXISTS (SELECT 1 FROM crm.followups f WHERE f.relation_id = r.id)
	          AND (SELECT max(f.at) FROM crm.followups f WHERE f.relation_id = r.id)
	              IS DISTINCT FROM r.last_contact_at")" 0
expect "follow-ups are by the owner, or a consultant of the store for a pool relation" \
	"$(sql "SELECT count(*) FROM $fu JOIN crm.users u ON u.id = f.by_user
	        WHERE r.store_id IN $seeded AND (u.store_id <> r.store_id OR u.role <> 'consultant'
	              OR (r.owner_id IS NOT NULL AND u.id <> r.owner_id))")" 0
expect "the first of several follow-ups is a first contact" \
	"$(sql "SELECT count(*) FROM (SELECT DISTINCT ON (f.relation_id) f.type, count(*) OVER
	          (PARTITION BY f.relation_id) n FROM $fu WHERE r.store_id IN $seeded
	          ORDER BY f.relation_id, f.at, f.id) x WHERE n > 1 AND type <> 'first_contact'")" 0
expect "follow-up ids are UUIDv7 of their time" \
	"$(sql "SELECT count(*) FROM $fu WHERE r.store_id IN $seeded AND (substr(f.id::text, 15, 1) <> '7'
	          OR ('x' || lpad(replace(substr(f.id::text, 1, 13), '-', ''), 16, '0'))::bit(64)::bigint
	             <> crm.ms(f.at))")" 0
expect "every relation with a next contact has one open task due then, no other has one" \
	"$(sql "SELECT count(*) FROM crm.relations r WHERE r.store_id IN $seeded AND
	          (SELECT count(*) || ' ' || coalesce(min(crm.ms(t.due_at)), 0) FROM crm.tasks t
	            WHERE t.relation_id = r.id AND t.status = 'open')
	          <> CASE WHEN r.next_followup_at IS NULL THEN '0 0'
	                  ELSE '1 ' || crm.ms(r.next_followup_at) END")" 0
expect "an open task is its relation owner's (the pool's when none)" \
	"$(sql "SELECT count(*) FROM crm.tasks t JOIN crm.relations r ON r.id = t.relation_id
	        WHERE r.store_id IN $seeded AND (t.owner_id IS DISTINCT FROM r.owner_id
	              OR t.store_id <> r.store_id)")" 0
expect "a task's copies of its relation (sql/0036) are the relation's" \
	"$(sql "SELECT count(*) FROM crm.tasks t JOIN crm.relations r ON r.id = t.relation_id
	        WHERE r.store_id IN $seeded AND (t.customer_id, t.customer_name, t.level,
	              t.relation_owner_id) IS DISTINCT FROM (r.customer_id, r.customer_name,
	              r.level, r.owner_id)")" 0
expect "a customer's copies of its phones (sql/0037) are its phones as the view showed them" \
	"$(sql "SELECT count(*) FROM crm.customers c
	        LEFT JOIN LATERAL (
	             SELECT string_agg(p.phone || E'\\x1e' || p.kind || E'\\x1e' || p.is_primary::text,
	                               E'\\x1f' ORDER BY p.is_primary DESC, p.added_at, p.phone) AS shown,
	                    string_agg(crm.mask_phone(p.phone) || E'\\x1e' || p.kind || E'\\x1e'
	                               || p.is_primary::text, E'\\x1f'
	                               ORDER BY p.is_primary DESC, p.added_at, p.phone) AS masked
	               FROM crm.customer_phones p WHERE p.customer_id = c.id) x ON true
	        WHERE c.id IN (SELECT customer_id FROM crm.relations WHERE store_id IN $seeded)
	          AND (c.phones_shown, c.phones_masked) IS DISTINCT FROM (x.shown, x.masked)")" 0
expect "a relation's copy of its intents (sql/0037) is its intents as the view showed them" \
	"$(sql "SELECT count(*) FROM crm.relations r
	        WHERE r.store_id IN $seeded
	          AND r.intents_text IS DISTINCT FROM
	              (SELECT string_agg(concat_ws(E'\\x1e', i.model, i.body_type, i.configuration,
	                                           i.budget_min, i.budget_max, i.needs), E'\\x1f'
	                                 ORDER BY i.position)
	                 FROM crm.relation_intents i WHERE i.relation_id = r.id)")" 0
expect "every seeded relation's name is filed under its pairs at its store (sql/0039)" \
	"$(sql "SELECT count(*) FROM crm.relations r
	        CROSS JOIN LATERAL unnest(crm.name_pair_keys(r.customer_name_lower)) k(pair)
	        WHERE r.store_id IN $seeded
	          AND NOT EXISTS (SELECT 1 FROM crm.store_name_pairs p WHERE p.store_id = r.store_id
	                            AND p.pair = k.pair AND p.name_lower = r.customer_name_lower)")" 0
expect "every seeded customer has its phones copied" \
	"$(sql "SELECT count(*) FROM crm.customers c
	        WHERE c.id IN (SELECT customer_id FROM crm.relations WHERE store_id IN $seeded)
	          AND (c.phones_shown IS NULL OR c.phones_masked NOT LIKE '%****%')")" 0
expect "an open task was set by the newest follow-up, else by the level's cadence rule" \
	"$(sql "SELECT count(*) FROM crm.tasks t JOIN crm.relations r ON r.id = t.relation_id
	        WHERE r.store_id IN $seeded AND (t.set_by_followup IS DISTINCT FROM
	              (SELECT f.id FROM crm.followups f WHERE f.relation_id = r.id
	                ORDER BY f.at DESC, f.id DESC LIMIT 1)
	           OR (t.set_by_followup IS NULL) <> (t.cadence_key <> '')
	           OR (t.cadence_key <> '' AND NOT EXISTS (SELECT 1 FROM crm.cadence_rules c
	                WHERE c.level || '/' || c.event || '/' || c.step = t.cadence_key
	                  AND c.purpose = t.purpose)))")" 0

# ---- phones
expect "every seeded phone is a valid mobile (+86 1[3-9]x and 8 digits)" \
	"$(sql "SELECT count(*) FROM crm.customer_phones p JOIN crm.customers c ON c.id = p.customer_id
	        WHERE c.store_id IN $seeded AND p.phone !~ '^\+861[3-9][0-9]{9}\$'")" 0
expect "phones are unique" \
	"$(sql "SELECT count(*) - count(DISTINCT phone) FROM crm.customer_phones")" 0
expect "every seeded customer has one primary phone, its customers.phone" \
	"$(sql "SELECT count(*) FROM crm.customers c WHERE c.store_id IN $seeded AND 1 <>
	          (SELECT count(*) FROM crm.customer_phones p
	            WHERE p.customer_id = c.id AND p.is_primary AND p.phone = c.phone)")" 0
second_phones=$(sql "SELECT count(*) FROM crm.customer_phones p JOIN crm.customers c
                      ON c.id = p.customer_id WHERE c.store_id IN $seeded AND NOT p.is_primary")
if ((second_phones > 50 && second_phones < 400)); then
	ok "some customers ($second_phones) have a second phone"
else
	not_ok "some customers have a second phone" "got $second_phones"
fi

# ---- relations
expect "levels are within H A B C N O D T" \
	"$(sql "SELECT count(*) FROM crm.relations WHERE store_id IN $seeded
	          AND level NOT IN ('H','A','B','C','N','O','D','T')")" 0
expect "every level occurs" \
	"$(sql "SELECT count(DISTINCT level) FROM crm.relations WHERE store_id IN $seeded")" 8
expect "N, C and B are each more common than H" \
	"$(sql "SELECT bool_and(n > h) FROM (SELECT count(*) FILTER (WHERE level = 'H') h,
	          unnest(ARRAY[count(*) FILTER (WHERE level = 'N'), count(*) FILTER (WHERE level = 'C'),
	                       count(*) FILTER (WHERE level = 'B')]) n
	        FROM crm.relations WHERE store_id IN $seeded) x")" t
expect "sources are within the allowed set" \
	"$(sql "SELECT count(*) FROM crm.relations WHERE store_id IN $seeded AND source NOT IN
	          ('walk_in','referral','online','auto_show','phone_in','roadshow','fleet','other')")" 0
expect "every owner is a consultant of the relation's store, or the pool" \
	"$(sql "SELECT count(*) FROM crm.relations r LEFT JOIN crm.users u ON u.id = r.owner_id
	        WHERE r.store_id IN $seeded AND r.owner_id IS NOT NULL
	          AND (u.role IS DISTINCT FROM 'consultant' OR u.store_id IS DISTINCT FROM r.store_id)")" 0
pool=$(sql "SELECT count(*) FROM crm.relations WHERE store_id IN $seeded AND owner_id IS NULL")
if ((pool > 0)); then ok "some relations ($pool) are in the store pool"; else not_ok "some relations are in the store pool"; fi
expect "first contacts lie in the last 2 years, never in the future" \
	"$(sql "SELECT count(*) FROM crm.relations WHERE store_id IN $seeded AND (first_contact_at IS NULL
	          OR first_contact_at < now() - interval '731 days' OR first_contact_at > now())")" 0
fractions=$(sql "SELECT round(100 * avg((last_contact_at > now() - interval '30 days')::int)) || ' '
                 || round(100 * avg((next_followup_at < now())::int))
                 FROM crm.relations WHERE store_id IN $seeded")
read -r recent overdue <<<"$fractions"
if ((recent >= 20 && recent <= 70 && overdue >= 5 && overdue <= 45)); then
	ok "contacted within 30 days ($recent%) and overdue ($overdue%) are realistic fractions"
else
	not_ok "contacted within 30 days and overdue are realistic fractions" "got $recent% and $overdue%"
fi
expect "every relation has 1 or 2 intents" \
	"$(sql "SELECT count(*) FROM crm.relations r WHERE r.store_id IN $seeded AND
	          (SELECT count(*) FROM crm.relation_intents i WHERE i.relation_id = r.id) NOT IN (1, 2)")" 0
expect "every intent is a model of the store's brand with its body type" \
	"$(sql "SELECT count(*) FROM crm.relation_intents i JOIN crm.relations r ON r.id = i.relation_id
	        JOIN crm.stores s ON s.id = r.store_id
	        WHERE r.store_id IN $seeded AND NOT EXISTS (SELECT 1 FROM crm.models m
	          WHERE m.brand = s.brand AND m.name = i.model AND m.body_type = i.body_type)")" 0
expect "every relation's level history starts with N and ends at its level" \
	"$(sql "SELECT count(*) FROM crm.relations r WHERE r.store_id IN $seeded AND (
	          (SELECT l.from_level IS NULL AND l.to_level = 'N' FROM crm.level_changes l
	            WHERE l.relation_id = r.id ORDER BY l.changed_at, l.id LIMIT 1) IS NOT TRUE
	          OR (SELECT l.to_level FROM crm.level_changes l WHERE l.relation_id = r.id
	               ORDER BY l.changed_at DESC, l.id DESC LIMIT 1) IS DISTINCT FROM r.level)")" 0
expect "customer ids are UUIDv7 in created_at order" \
	"$(sql "SELECT count(*) FROM (SELECT id, created_at, lag(created_at) OVER (ORDER BY id) prev
	          FROM crm.customers WHERE store_id IN $seeded) x
	        WHERE created_at < prev OR substr(id::text, 15, 1) <> '7'")" 0
expect "seeding wrote no outbox rows" \
	"$(sql "SELECT count(*) FROM crm.outbox WHERE entity_id IN
	          (SELECT id FROM crm.customers WHERE store_id IN $seeded)")" 0
expect "the planner has statistics for the seeded tables" \
	"$(sql "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'crm'
	          AND relname IN ('customers','customer_phones','relations','relation_intents',
	                          'level_changes','followups','tasks')
	          AND last_analyze IS NULL AND last_autoanalyze IS NULL")" 0

schema_after=$(schema_of crm)
if [[ $schema_after == "$schema_before" ]]; then
	ok "indexes and constraints are exactly as before the seed"
else
	not_ok "indexes and constraints are exactly as before the seed" \
		"$(diff <(echo "$schema_before") <(echo "$schema_after") | head -20)"
fi

# ---- the logins file and its sample
expect "the logins file lists 4 managers, 24 consultants and an analyst" \
	"$(awk '{ n[$3]++ } END { printf "%d %d %d", n["sales_manager"], n["consultant"], n["group_analyst"] }' "$work/seed.txt")" \
	"4 24 1"
expect "the logins file is private (0600)" "$(stat -c %a "$work/seed.txt")" 600
expect "the sample holds seeded customers" \
	"$(sql "SELECT count(*) FROM crm.customers WHERE id = '$(awk 'NR == 10 { print $1 }' "$work/seed.txt.sample")'")" 1

# ---- a second seed is refused and changes nothing
rc=0
"$crmctl" -c "$CRMD_CONFIG" seed --stores 2 --customers 100 --logins "$work/again.txt" \
	>"$work/out" 2>"$work/err" </dev/null || rc=$?
if [[ $rc != 0 ]] && grep -q 'already holds a seeded group' "$work/err"; then
	ok "a second seed into the same database is refused with a reason"
else
	not_ok "a second seed into the same database is refused with a reason" "exit $rc" \
		"stderr: $(cat "$work/err")"
fi
expect "the refused seed changed nothing" \
	"$(sql "SELECT count(*) - $customers_before FROM crm.customers")" 2000

# ---- the same --seed gives the same data; a terminal run shows progress
"$crmctl" -c "$CRMD_CONFIG" --set "db.name=$second_db" init >"$work/init.log" 2>&1 ||
	not_ok "crmctl init of a second database" "$(tail -5 "$work/init.log")"
rc=0
if command -v script >/dev/null 2>&1; then
	script -qec "$(printf '%q ' "$crmctl" -c "$CRMD_CONFIG" --set "db.name=$second_db" seed \
		--stores 4 --customers 2000 --followups 15000 --seed 7 --logins "$work/seed2.txt")" \
		"$work/tty.log" \
		</dev/null >/dev/null 2>&1 || rc=$?
	if grep -q 'rows/s' "$work/tty.log"; then
		ok "a seed on a terminal draws a progress bar"
	else
		not_ok "a seed on a terminal draws a progress bar" "$(tr '\r' '\n' <"$work/tty.log" | tail -5)"
	fi
else
	"$crmctl" -c "$CRMD_CONFIG" --set "db.name=$second_db" seed --stores 4 --customers 2000 \
		--followups 15000 --seed 7 --logins "$work/seed2.txt" >/dev/null 2>&1 </dev/null || rc=$?
fi
expect "seeding a second database exits 0" "$rc" 0
digest="SELECT md5(string_agg(c.id || c.name || c.phone || r.level || r.source || coalesce(u.username, '-'),
           ',' ORDER BY c.id, r.id))
          FROM crm.customers c JOIN crm.relations r ON r.customer_id = c.id
          LEFT JOIN crm.users u ON u.id = r.owner_id WHERE c.store_id IN $seeded"
if [[ $(schema_of "$second_db") == "$schema_before" ]]; then
	ok "a fresh database seeded has the indexes and constraints of the migrations"
else
	not_ok "a fresh database seeded has the indexes and constraints of the migrations" \
		"$(diff <(echo "$schema_before") <(schema_of "$second_db") | head -20)"
fi
first=$(sql "$digest")
expect "the customers, relations and owners of a seed have a digest" "${#first}" 32
expect "the same --seed gives the same customers, relations and owners" \
	"$(sql "$second_db" "$digest")" "$first"
fu_digest="SELECT md5(string_agg(f.id || f.type || f.method || f.content || crm.ms(f.at), ','
              ORDER BY f.id)) || md5(string_agg(t.id::text || crm.ms(t.due_at) || t.purpose, ','
              ORDER BY t.id)) FROM $fu LEFT JOIN crm.tasks t ON t.set_by_followup = f.id
            WHERE r.store_id IN $seeded"
fu_first=$(sql "$fu_digest")
expect "the follow-ups and tasks of a seed have a digest" "${#fu_first}" 64
expect "the same --seed gives the same follow-ups and tasks" \
	"$(sql "$second_db" "$fu_digest")" "$fu_first"

# ---- a seeded consultant works through crmd
read -r user password _ < <(awk '$3 == "consultant" { print; exit }' "$work/seed.txt")
rc=0
printf '%s\n' "$password" | "$crm" login --user "$user" --password-stdin >"$work/out" 2>&1 || rc=$?
expect "seeded consultant $user logs in" "$rc" 0
rc=0
"$crm" --json customer list --limit 5 >"$work/out" 2>"$work/err" || rc=$?
if [[ $rc == 0 ]] && grep -q '"rows"' "$work/out"; then
	ok "crm customer list works for the seeded consultant"
else
	not_ok "crm customer list works for the seeded consultant" "exit $rc" \
		"stdout: $(head -c 400 "$work/out")" "stderr: $(cat "$work/err")"
fi
# A customer of this consultant, found again by the last 4 digits of its phone.
read -r id _ _ phone _ < <(awk -v u="$user" '$3 == u { print; exit }' "$work/seed.txt.sample")
rc=0
"$crm" --json customer search "${phone: -4}" --limit 500 >"$work/out" 2>"$work/err" || rc=$?
if [[ $rc == 0 ]] && grep -q "$id" "$work/out"; then
	ok "crm customer search ${phone: -4} finds the consultant's customer $id"
else
	not_ok "crm customer search by the last 4 digits finds the consultant's customer" "exit $rc" \
		"stdout: $(head -c 400 "$work/out")" "stderr: $(cat "$work/err")"
fi
"$crm" logout >/dev/null 2>&1 || true

# ---- crm-bench runs every mix against the seeded group without an error
# (a second of each, not a measurement: 30 connections for 24 consultants,
# so some connections resume another's session).
bench=$CRM_BUILD_DIR/tests/bench/crm-bench
for mix in get phone name filter followup tasks; do
	rc=0
	"$bench" --server "$CRM_SERVER" --ca "$CRM_CA" --logins "$work/seed.txt" --connections 30 \
		--depth 2 --duration 1 --warmup 0 --mix "$mix" >"$work/out" 2>"$work/err" || rc=$?
	if [[ $rc == 0 ]] && grep -q "mix=$mix .* errors=0 " "$work/out" &&
		! grep -q ' requests=0 ' "$work/out"; then
		ok "crm-bench --mix $mix answers every request"
	else
		not_ok "crm-bench --mix $mix answers every request" "exit $rc" \
			"stdout: $(cat "$work/out")" "stderr: $(cat "$work/err")"
	fi
done
printf 'sd001.c01 %s\n' "$(sql "SELECT s.session_id FROM crm.users u,
	crm.session_open(u.id, md5('t') || md5('s'), 600, 'test_seed') s WHERE u.username = 'sd001.c01'")" \
	>"$work/sessions.txt"
for mix in phone followup tasks; do
	rc=0
	"$bench" --logins "$work/seed.txt" --mix $mix --pgbench-script "$work/sessions.txt" \
		>"$work/$mix.sql" 2>"$work/err" || rc=$?
	if [[ $rc == 0 ]] && PGPASSWORD=$CRM_PG_PASSWORD "$(crm_pg_bin)/pgbench" -n -M prepared -t 20 \
		-h 127.0.0.1 -p "$CRM_PG_PORT" -U postgres -f "$work/$mix.sql" crm >"$work/out" 2>&1 &&
		grep -q 'number of failed transactions: 0' "$work/out"; then
		ok "the pgbench script of mix $mix runs"
	else
		not_ok "the pgbench script of mix $mix runs" "exit $rc" "$(tail -5 "$work/out")" \
			"$(cat "$work/err")"
	fi
done
expect "the followup mix's pgbench script recorded 20 follow-ups of sd001.c01's" \
	"$(sql "SELECT count(*) FROM crm.followups f JOIN crm.users u ON u.id = f.by_user
	        WHERE u.username = 'sd001.c01' AND f.content LIKE 'pgbench%'")" 20

echo "$passed passed, $failed failed"
((failed == 0))
