#!/usr/bin/env bash
# End-to-end test of crm's sales commands as GZ01's people use them: a
# consultant opens an opportunity, moves its stage (a stale --version is
# exit 5 with the current record), records a test drive, places an order
# linked to it (level O), delivers it with a VIN (level D, the vehicle),
# and a second customer's order is cancelled (level T); a lost opportunity
# needs its reason; wrong transitions exit 5; the card shows opportunities,
# orders and test drives; another store's consultant gets exit 4. Every
# command with --json; usage errors exit 2.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

consultant=gz01.consultant
other=sh01.consultant
if [[ -z $(password_of "$consultant") || -z $(password_of "$other") ]]; then
	echo "no demo logins for $consultant / $other" >&2
	exit 1
fi
login "$consultant" "$(password_of "$consultant")"

run --json customer add --name 黄嘉 --phone "$(mobile)" --source walk-in
expect_rc "the consultant registers a customer" 0
cid=$(json customer.id)

# ------------------------------------------------------------ opportunities
run --json opp add "$cid" --model 凯美瑞 --price 22.98万 --at "2026-11-02 10:00"
expect_rc "opp add" 0
opp=$(json opportunity.id)
expect_eq "a new opportunity is at prospecting" "$(json opportunity.stage)" prospecting
expect_eq "the expected price in fen" "$(json opportunity.expected_price_fen)" 22980000
expect_eq "its history begins" "$(json opportunity.history.to_stage)" prospecting

run --json opp stage "$opp" reception --version 1 --at "2026-11-02 10:05"
expect_rc "opp stage forward" 0
expect_eq "the stage moved" "$(json opportunity.stage)" reception
expect_eq "the version moved" "$(json opportunity.version)" 2
run --json opp stage "$opp" needs_analysis --version 1
expect_rc "a stale version is a conflict" 5
expect_eq "the conflict carries the current record" "$(json opportunity_reply.opportunity.version)" 2
expect_out "and names the code" '"code": "CONFLICT"'
run opp stage "$opp" prospecting --version 2
expect_rc "a stage backwards is refused" 6
run opp stage "$opp" nowhere --version 2
expect_rc "an unknown stage is a usage error" 2
run opp stage "$opp" needs_analysis
expect_rc "--version is required" 2

run --json testdrive add "$cid" --model 凯美瑞 --opportunity "$opp" --at "2026-11-02 11:00" \
	--note 高速试驾
expect_rc "testdrive add" 0
expect_eq "the test drive's consultant" "$(json test_drive.consultant)" "$consultant"
expect_eq "it moves the opportunity to test_drive" "$(json opportunity.stage)" test_drive
run --json testdrive list "$cid"
expect_rc "testdrive list" 0
expect_eq "the test drive is listed" "$(json test_drives.note)" 高速试驾

run opp show "$opp"
expect_rc "opp show" 0
expect_out "the history shows each move" "reception -> test_drive"

# ------------------------------------------------------------ a lost one
run --json opp add "$cid" --model 汉兰达 --stage presentation
expect_rc "a second opportunity" 0
lost=$(json opportunity.id)
run opp lose "$lost" --version 1
expect_rc "lose without --reason is a usage error" 2
run opp lose "$lost" --version 1 --reason other
expect_rc "other needs --text" 2
run --json opp lose "$lost" --version 1 --reason competitor --brand 比亚迪
expect_rc "opp lose with a competitor" 0
expect_eq "the opportunity is lost" "$(json opportunity.status)" lost
expect_eq "the competitor's brand is kept" "$(json opportunity.competitor_brand)" 比亚迪
run --json opp list "$cid" --status lost
expect_eq "the lost list has it" "$(json opportunities.id)" "$lost"

# ------------------------------------------------------------ orders
# VINs are unique group-wide: a fresh one per run.
vin=LFV3A23C0K3$(printf '%06d' $((RANDOM * 32768 + RANDOM)) | tail -c 6)
vin2=LFV3A23C0K4$(printf '%06d' $((RANDOM * 32768 + RANDOM)) | tail -c 6)
run --json order place "$cid" --model 凯美瑞 --config "2.5G 豪华版" --price 229800 \
	--deposit 5000 --opportunity "$opp" --at "2026-11-03 15:00"
expect_rc "order place" 0
ord=$(json order.id)
expect_eq "the relation moves to O" "$(json relation.level)" O
expect_eq "the opportunity is won" "$(json opportunity.status)" won
expect_eq "at stage deal" "$(json opportunity.stage)" deal
expect_eq "the deposit in fen" "$(json order.deposit_fen)" 500000
run --json tasks open
expect_out "the cadence sets the O task" "follow up until delivery (O: every 3 days)"

run order deliver "$ord" --version 1 --vin LFV3A23C0K300001I
expect_rc "a VIN with I is refused" 6
run order deliver "$ord" --version 1
expect_rc "--vin is required" 2
run --json order deliver "$ord" --version 1 --vin $vin --plate 粤A88888 \
	--at "2026-11-10 10:00"
expect_rc "order deliver" 0
expect_eq "the relation moves to D" "$(json relation.level)" D
expect_eq "the order is delivered" "$(json order.status)" delivered
expect_eq "with its VIN" "$(json order.vin)" $vin
run order cancel "$ord" --version 2 --reason 反悔
expect_rc "a delivered order cannot be cancelled" 5
run --json order list "$cid" --status delivered
expect_eq "order list by status" "$(json orders.id)" "$ord"

run --json customer add --name 黄嘉二 --phone "$(mobile)" --source walk-in
cid2=$(json customer.id)
rid2=$(json relation.id)
run --json order place "$cid2" --model 卡罗拉 --price 12.98万
ord2=$(json order.id)
expect_eq "a second customer's order: O" "$(json relation.level)" O
run order cancel "$ord2" --version 1
expect_rc "cancel without --reason is a usage error" 2
run --json order cancel "$ord2" --version 1 --reason 资金不足
expect_rc "order cancel" 0
expect_eq "the relation moves to T" "$(json relation.level)" T
run order deliver "$ord2" --version 2 --vin $vin2
expect_rc "a cancelled order cannot be delivered" 5

# ------------------------------------------------------------ the card
run --json customer show "$cid"
expect_rc "customer show --json" 0
expect_eq "the card has the orders" "$(json orders.id)" "$ord"
expect_eq "and the test drives" "$(json test_drives.model)" 凯美瑞
expect_out "and the opportunities" "\"id\": \"$lost\""
run customer show "$cid"
expect_out "the card's opportunities section" "Opportunities"
expect_out "the card's orders section" "$vin"
expect_out "the card's test drives section" "Test drives"

# ------------------------------------------------------------ scope
login "$other" "$(password_of "$other")"
run opp add "$rid2" --model 卡罗拉
expect_rc "another store's consultant may not open an opportunity here" 4
run --json order list "$cid"
expect_rc "nor read the orders" 3

echo "$passed passed, $failed failed"
((failed == 0))
