#!/usr/bin/env bash
# End-to-end test of crm's after-sales commands as BJ01's people use them:
# a service advisor registers a customer's car (crm checks the VIN before
# sending and names the field), records visits, finds the car by VIN and
# plate, lists base customers and their counts at a fixed clock, runs the
# maintenance reminders (twice: no duplicate); the store manager recomputes
# value classes, the advisor may not; the card shows the car, the visits,
# the base and value classes; another store's advisor and a consultant are
# refused. Table and --json output; usage errors exit 2.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

advisor=bj01.service_advisor
manager=bj01.store_manager
consultant=bj01.consultant
other=sh01.service_advisor
for u in $advisor $manager $consultant $other; do
	[[ -n $(password_of "$u") ]] || {
		echo "no demo login for $u" >&2
		exit 1
	}
done
# A VIN of this run only: digits after the maker's letters, never I, O, Q.
vin=$(printf 'LSVCL%06d%06d' $((RANDOM * 30 + RANDOM % 30)) $((RANDOM * 30 + RANDOM % 30)))
plate="京N·$((RANDOM % 90000 + 10000))"

login "$advisor" "$(password_of "$advisor")"
run --json customer add --name 赵师傅 --phone "$(mobile)" --source walk-in
expect_rc "the advisor registers a customer" 0
cid=$(json customer.id)

# ------------------------------------------------------------ vehicle add
run vehicle add "$cid" --vin LSVAA4182E212345I --model 帕萨特
expect_rc "a VIN with I is refused before sending" 6
expect_err "the error names the field and the reason" "vin must not contain the letters I, O or Q"
run --json vehicle add "$cid" --vin LSVAA4182E2123 --model 帕萨特
expect_rc "a short VIN is refused" 6
expect_out "--json names the field" '"field": "vin"'
expect_out "the reason says 17 characters" "17 characters (got 14)"
run vehicle add "$cid" --model 帕萨特
expect_rc "--vin is required" 2
run vehicle add "$cid" --vin "$vin" --model 帕萨特 --purchased 2024-13-01
expect_rc "a bad purchase date is invalid input" 6

lower=$(tr 'A-Z' 'a-z' <<<"$vin")
run --json vehicle add "$cid" --vin "$lower" --model 帕萨特 --plate "$plate" --purchased 2024-12-01
expect_rc "vehicle add" 0
expect_eq "the VIN is stored upper case" "$(json vehicle.vin)" "$vin"
expect_eq "the selling store is the advisor's" "$(json vehicle.store_code)" BJ01
expect_eq "the plate without its dot" "$(json vehicle.plate)" "${plate/·/}"
expect_eq "the purchase date" "$(json vehicle.purchased_on)" 2024-12-01
vid=$(json vehicle.id)
run vehicle add "$cid" --vin "$vin" --model 途观
expect_rc "the same VIN on another vehicle is a conflict" 5
expect_err "the conflict says why" "already registered to another vehicle"

# ------------------------------------------------------------ lists
run vehicle list "$cid"
expect_rc "vehicle list by customer as a table" 0
expect_out "the table shows the VIN" "$vin"
expect_out "the table shows the owner" 赵师傅
run --json vehicle list --plate "$plate"
expect_eq "vehicle list --plate finds it" "$(json vehicles.id)" "$vid"
run --json vehicle list --vin "$vin"
expect_eq "vehicle list --vin finds it" "$(json vehicles.customer_id)" "$cid"
run vehicle list --vin NOTAVIN
expect_rc "vehicle list with a bad VIN" 6

# ------------------------------------------------------------ visits
run visit add "$vin" --mileage 5000 --type oilchange --amount 680
expect_rc "an unknown visit type is invalid input" 6
run visit add "$vin" --mileage 5000 --type maintenance --amount 6.805
expect_rc "an amount with three decimals is invalid input" 6
run visit add "$vin" --type maintenance --amount 680
expect_rc "--mileage is required" 2
run --json visit add "$vin" --mileage 5000 --type maintenance --amount 680.50 --at 2025-01-10
expect_rc "visit add by VIN" 0
expect_eq "the amount is kept in fen" "$(json visit.amount)" 68050
expect_eq "the visit's store" "$(json visit.store_code)" BJ01
run visit add "$vid" --mileage 9000 --type repair --amount 1200 --at 2025-04-10 --note 更换刹车片
expect_rc "visit add by vehicle id, as a table" 0
expect_out "the table shows the note" 更换刹车片
run visit add "$vid" --mileage 8000 --type repair --amount 100 --at 2025-05-10
expect_rc "the odometer cannot run backwards" 6
expect_err "the error names the mileage" "below the 9000 km"

run --json vehicle show "$vin"
expect_rc "vehicle show --json" 0
expect_eq "the vehicle" "$(json vehicle.vin)" "$vin"
expect_eq "the newest visit first" "$(json visits.mileage)" 9000
run vehicle show "$vin"
expect_out "vehicle show lists the visits" "Service visits"
run --json visit list --customer "$cid"
expect_eq "visit list by customer" "$(grep -c '"mileage"' <<<"$out")" 2

# ------------------------------------------------------------ base customers
run --json base list --class active --at 2025-06-01
expect_rc "base list --class active at a fixed clock" 0
expect_out "the customer is active" "\"customer_id\": \"$cid\""
run base list --class lost --at 2025-06-01
expect_rc "base list --class lost" 0
[[ $out != *"$cid"* ]] && ok "not lost within 6 months" || not_ok "not lost within 6 months" "$out"
run --json base list --class lost --at 2025-10-11
expect_out "lost 6 months after the last visit" "\"customer_id\": \"$cid\""
expect_eq "the row says lost" "$(json customers.lost)" true
run base counts --at 2025-06-01
expect_rc "base counts" 0
expect_out "the counts line" "base customers at 2025-06-01"
run --json base counts --at 2025-06-01
expect_eq "counts: no rows, only the numbers" "$(grep -c '"customer_id"' <<<"$out")" 0
run base list --class sleeping
expect_rc "an unknown class is invalid input" 6

# ------------------------------------------------------------ reminders
run --json service reminders run --at 2025-06-01
expect_rc "reminders before anything is due" 0
expect_eq "nothing due yet" "$(json due)" 0
run --json service reminders run --at 2025-09-01
expect_rc "reminders when the mileage falls due" 0
expect_eq "one reminder created" "$(json tasks.owner)" "$advisor"
expect_out "by mileage" "km a day"
task=$(json tasks.id)
run --json service reminders run --at 2025-09-02
expect_eq "no second reminder while one is open" "$(json already_open)" 1
run --json tasks open
expect_out "the reminder is in the advisor's tasks" "\"id\": \"$task\""

# ------------------------------------------------------------ value classes
run value recompute --at 2025-06-01
expect_rc "an advisor may not recompute value classes" 4
login "$manager" "$(password_of "$manager")"
run --json value recompute --at 2025-06-01
expect_rc "the store manager recomputes" 0
expect_eq "of the manager's store" "$(json stores.store_code)" BJ01
run value recompute --store SH01 --at 2025-06-01
expect_rc "not another store's" 4

# ------------------------------------------------------------ the card
as "$advisor"
run --json customer show "$cid"
expect_rc "customer show --json" 0
expect_eq "the card's vehicle" "$(json vehicles.vin)" "$vin"
expect_eq "the card's latest visit" "$(json service_visits.mileage)" 9000
expect_eq "the card's base store" "$(json service_base.store_code)" BJ01
expect_eq "the card's value class" "$(json service_base.value_class)" A
run customer show "$cid"
expect_out "the card lists vehicles" "Vehicles"
expect_out "the card shows the value class" "value class A"

# ------------------------------------------------------------ scope
login "$other" "$(password_of "$other")"
run vehicle show "$vin"
expect_rc "another store's advisor may not see the car" 4
run visit add "$vin" --mileage 12000 --type maintenance --amount 500
expect_rc "nor record its visits" 4
login "$consultant" "$(password_of "$consultant")"
run visit add "$vin" --mileage 12000 --type maintenance --amount 500
expect_rc "a consultant does not record service visits" 4

# ------------------------------------------------------------ policy
run --json service policy show
expect_rc "everyone reads the after-sales policy" 0
expect_eq "the group default: lost after 6 months" "$(json policies.lost_after_months)" 6
run service policy set 测试品牌 --loyal-visits 5
expect_rc "a consultant may not change it" 4
admin=group.admin
login "$admin" "$(password_of "$admin")"
run service policy set 测试品牌 --loyal-visits many
expect_rc "a policy number must be a number" 6
run --json service policy set 测试品牌 --loyal-visits 5 --b-pct 20
expect_rc "a group admin sets a brand's policy" 0
expect_out "the brand's row" '"brand": "测试品牌"'
expect_out "its loyal threshold" '"loyal_visits": 5'
run service policy show
expect_out "the table shows the brand" 测试品牌
run service policy set 测试品牌 --a-pct 90 --b-pct 20
expect_rc "A and B may not pass 100%" 6
run service policy remove 测试品牌
expect_rc "the brand's own policy removed" 0
[[ $out != *测试品牌* ]] && ok "the brand falls back to the default" || not_ok "brand removed" "$out"
run service policy remove default
expect_rc "the default cannot be removed" 6

echo "$passed passed, $failed failed"
((failed == 0))
