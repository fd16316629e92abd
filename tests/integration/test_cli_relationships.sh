#!/usr/bin/env bash
# End-to-end test of crm's relationship commands as SH01's people use them:
# a consultant records a referral (a second one for the same customer is a
# conflict), asks for the reward, which only the manager grants; registers a
# taxi company with a contact and a purchase plan; records an SSI survey
# (scores checked against the questionnaire) and a complaint, which the
# manager assigns, the consultant handles with a follow-up and resolves,
# and the call center closes; lists at a fixed clock show it overdue before
# it was resolved; `customer show` has all four. Table output and --json;
# usage errors exit 2, refusals 4, conflicts 5, invalid input 6.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
# shellcheck source=SCRIPTDIR/../../ops/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/ops/lib.sh"

consultant=sh01.consultant
manager=sh01.sales_manager
agent=sh01.call_center
for u in $consultant $manager $agent; do
	if [[ -z $(password_of "$u") ]]; then
		echo "no demo login for $u" >&2
		exit 1
	fi
done

sql() {
	PGPASSWORD=$CRM_PG_PASSWORD "$(crm_pg_bin)/psql" -h 127.0.0.1 -p "$CRM_PG_PORT" \
		-U postgres -d crm -X -A -t -v ON_ERROR_STOP=1 -c "$1"
}

login "$consultant" "$(password_of "$consultant")"
run --json customer add --name 周老板 --phone "$(mobile)" --source walk-in
expect_rc "the referrer is registered" 0
referrer=$(json customer.id)
run --json customer add --name 吴先生 --phone "$(mobile)" --source referral
expect_rc "the referred customer is registered" 0
referred=$(json customer.id)
referred_relation=$(json relation.id)

# ------------------------------------------------------------ referrals
run --json referral add "$referred" --by "$referrer" --note 周老板介绍的朋友
expect_rc "referral add" 0
expect_eq "the referrer" "$(json referrals.referrer_id)" "$referrer"
expect_eq "the referred customer's relation" "$(json referrals.relation_id)" "$referred_relation"
expect_eq "no reward yet" "$(json referrals.reward_status)" none
referral=$(json referrals.id)
run --json referral add "$referred" --by "$referrer"
expect_rc "a customer's relation is referred once" 5
expect_out "the conflict names the field" '"field": "referred_id"'
run referral add "$referred"
expect_rc "--by is required" 2
run referral reward "$referral" pending
expect_rc "the consultant asks for the reward" 0
expect_out "the reward is pending" "reward pending"
run referral reward "$referral" granted
expect_rc "a consultant may not grant it" 4
run referral reward "$referral" refused
expect_rc "refusing needs --note" 2
run referral list "$referrer"
expect_rc "referral list as a table" 0
expect_out "the table names the referred customer" 吴先生
expect_out "the table has the status" pending

login "$manager" "$(password_of "$manager")"
run --json referral reward "$referral" granted --note 赠送保养一次
expect_rc "the manager grants the reward" 0
expect_eq "granted" "$(json referrals.reward_status)" granted
expect_eq "by the manager" "$(json referrals.reward_by)" "$manager"
run referral reward "$referral" refused --note 改主意
expect_rc "a granted reward is final" 5

# ------------------------------------------------------------ organizations
as "$consultant"
name="强生出租汽车公司$RANDOM"
run --json org add --kind taxi --name "$name"
expect_rc "org add" 0
org=$(json organizations.id)
expect_eq "the owner is the consultant" "$(json organizations.owner)" "$consultant"
run org add --kind airline --name 某航空
expect_rc "an unknown kind is refused by the server" 6
run org add --kind taxi
expect_rc "--name is required" 2
run --json org contact add "$org" "$referrer" --role fleet_manager --title 车队长
expect_rc "org contact add" 0
expect_eq "the contact's role" "$(json organizations.contacts.role)" fleet_manager
run --json org plan add "$org" --model 帕萨特 --quantity 20 --expected 2027-03-01 --status negotiating
expect_rc "org plan add" 0
expect_eq "the plan's quantity" "$(json organizations.plans.quantity)" 20
expect_eq "the organization's version" "$(json organizations.version)" 3
run org plan add "$org" --model 帕萨特 --quantity 0 --expected 2027-03-01
expect_rc "a quantity of 0 is a usage error" 2
run org show "$org"
expect_rc "org show" 0
expect_out "the contact's title" 车队长
expect_out "the plan's model" 帕萨特
expect_out "the plan's date" 2027-03-01
run org list --kind taxi
expect_rc "org list" 0
expect_out "the list has the company" "$name"

# ------------------------------------------------------------ surveys
order=$(sql "SELECT gen_random_uuid()")
sql "INSERT INTO crm.orders (id, relation_id, store_id, model, price_fen, placed_at, created_by,
       created_at, updated_at)
     SELECT '$order', r.id, r.store_id, '途观L', 25000000, now(), r.created_by, now(), now()
       FROM crm.relations r WHERE r.id = '$referred_relation'" >/dev/null
run survey questions ssi
expect_rc "survey questions" 0
expect_out "the seeded SSI questionnaire" 销售顾问的专业和态度
run --json survey add "$referred" ssi --order "$order" --score 1=9 --score 2=6 --score 3=4 --score 4=10
expect_rc "a score above the question's scale is invalid" 6
expect_out "the error names the scores" '"field": "scores"'
run --json survey add "$referred" ssi --order "$order" --score 1=9 --score 2=5
expect_rc "every question must be answered" 6
run survey add "$referred" ssi --order "$order" --score 1:9
expect_rc "a score is written N=S" 2
run --json survey add "$referred" ssi --order "$order" --score 1=9 --score 2=5 --score 3=4 \
	--score 4=10 --comment 交车很顺利 --at "2026-11-01 10:00"
expect_rc "survey add" 0
expect_eq "the survey's score" "$(json surveys.score_percent)" 93
expect_eq "the survey's subject" "$(json surveys.subject_id)" "$order"
run survey list "$referred"
expect_rc "survey list" 0
expect_out "the list has the score" 93%

# ------------------------------------------------------------ complaints
run --json complaint add "$referred" --content 提车时发现划痕 --priority high \
	--category sales --received "2026-11-01 09:00"
expect_rc "complaint add" 0
complaint=$(json complaints.id)
expect_eq "received" "$(json complaints.status)" received
received=$(json complaints.received_at)
expect_eq "high: due in 24 hours" "$(json complaints.due_at)" $((received + 86400000))
run complaint handle "$complaint"
expect_rc "a received complaint is assigned first" 5
expect_err "the refusal says so" "assign it first"
run complaint assign "$complaint" --to "$consultant"
expect_rc "a consultant may not assign" 4
run --json complaint list --overdue --at "2026-11-01 12:00"
expect_rc "overdue list at a fixed clock" 0
if grep -q "\"id\": \"$complaint\"" <<<"$out"; then
	not_ok "not overdue 3 hours after it came in" "stdout: $out"
else
	ok "not overdue 3 hours after it came in"
fi
run --json complaint list --overdue --at "2026-11-03 12:00"
expect_out "overdue two days later" "\"id\": \"$complaint\""

login "$manager" "$(password_of "$manager")"
run --json complaint assign "$complaint" --to "$consultant" --at "2026-11-01 09:30"
expect_rc "the manager assigns it" 0
expect_eq "assigned" "$(json complaints.status)" assigned
expect_eq "to the consultant" "$(json complaints.assignee)" "$consultant"

as "$consultant"
run --json followup add "$referred" --method phone --type complaint --content 致电道歉并约补漆 \
	--at "2026-11-01 10:00"
expect_rc "the consultant calls the customer" 0
fu=$(json followup.id)
run --json complaint handle "$complaint" --followup "$fu" --at "2026-11-01 10:05"
expect_rc "complaint handle links the follow-up" 0
expect_eq "in handling" "$(json complaints.status)" in_handling
if grep -A1 '"followup_ids"' <<<"$out" | grep -q "\"$fu\""; then
	ok "the follow-up that handled it"
else
	not_ok "the follow-up that handled it" "stdout: $out"
fi
run complaint resolve "$complaint"
expect_rc "resolve needs --resolution" 2
run --json complaint resolve "$complaint" --resolution 已免费补漆 --at "2026-11-02 15:00"
expect_rc "complaint resolve" 0
expect_eq "resolved" "$(json complaints.status)" resolved
run complaint close "$complaint"
expect_rc "a consultant may not close it" 4

login "$agent" "$(password_of "$agent")"
run --json complaint close "$complaint" --note 回访客户满意 --at "2026-11-03 10:00"
expect_rc "the call center closes it" 0
expect_eq "closed" "$(json complaints.status)" closed
run complaint handle "$complaint" --note 再次
expect_rc "a closed complaint stays closed" 5
run complaint show "$complaint"
expect_rc "complaint show" 0
expect_out "the history has the resolution" 已免费补漆
expect_out "the history has the assignment" "assigned  by $manager to $consultant"
run --json complaint list --overdue --at "2026-11-03 12:00"
if grep -q "\"id\": \"$complaint\"" <<<"$out"; then
	not_ok "a resolved complaint is not overdue" "stdout: $out"
else
	ok "a resolved complaint is not overdue"
fi

# ------------------------------------------------------------ the card
as "$consultant"
run customer show "$referred"
expect_rc "customer show" 0
expect_out "the card has referrals" Referrals
expect_out "the card has the surveys" Surveys
expect_out "the card has the complaint" 提车时发现划痕
run --json customer show "$referrer"
expect_rc "customer show --json" 0
expect_eq "the referrer's card has the referral" "$(json referrals.id)" "$referral"
expect_eq "and the organization" "$(json organizations.id)" "$org"
expect_eq "with the customer's role" "$(json organizations.contact_role)" fleet_manager
run --json customer show "$referred"
expect_eq "the referred's card has the complaint" "$(json complaints.id)" "$complaint"
expect_eq "and the survey" "$(json surveys.subject_id)" "$order"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
