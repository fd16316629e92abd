#!/usr/bin/env bash
# End-to-end test of crm's follow-up and task commands as BJ01's people use
# them: a consultant records a first visit with the next task (the cadence
# adds the thank-you and the first call), lists tasks and follow-ups (table
# and --json), completes a task with a follow-up, skips one (reason
# required); the card shows open tasks and the latest follow-ups; managers
# reassign, consultants may not; the cadence policy is shown to everyone and
# changed by a group admin only. Usage errors exit 2.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

consultant=bj01.consultant
manager=bj01.sales_manager
if [[ -z $(password_of "$consultant") || -z $(password_of "$manager") ]]; then
	echo "no demo logins for $consultant / $manager" >&2
	exit 1
fi
login "$consultant" "$(password_of "$consultant")"

run --json customer add --name 林晓 --phone "$(mobile)" --source walk-in
expect_rc "the consultant registers a customer" 0
cid=$(json customer.id)

# ------------------------------------------------------------ follow-up add
run --json followup add "$cid" --method visit --type first_contact --content 到店看车 \
	--feedback 喜欢内饰 --next +3d --next-purpose 回访报价
expect_rc "followup add with the customer id, a next task" 0
expect_eq "the follow-up's method" "$(json followup.method)" visit
expect_eq "the follow-up's customer" "$(json followup.customer_id)" "$cid"
expect_eq "the next task comes first" "$(json tasks.purpose)" 回访报价
expect_eq "the relation's version moved on" "$(json relation.version)" 2
ntasks=$(grep -c '"cadence_key"' <<<"$out")
expect_eq "the next task and the first visit's two tasks" "$ntasks" 3
expect_out "the thank-you message task is set" "thank-you message after the first visit"
next_task=$(json tasks.id)

run followup add "$cid" --method fax --type care --content x
expect_rc "an unknown method is a usage error" 2
run followup add "$cid" --method phone --type care
expect_rc "content is required" 2
run followup add "$cid" --method phone --type care --content x --next-purpose y
expect_rc "--next-purpose without --next is a usage error" 2

# ------------------------------------------------------------ lists
run tasks open
expect_rc "tasks open as a table" 0
expect_out "the table has the customer's name" 林晓
expect_out "the table has the purpose" 回访报价
run --json tasks open
expect_rc "tasks open --json" 0
expect_out "the JSON page lists the next task" "\"id\": \"$next_task\""
run tasks someday
expect_rc "an unknown window is a usage error" 2
run --json tasks overdue --at "2099-01-01 09:00"
expect_rc "overdue at a fixed clock" 0
expect_out "every open task is overdue in 2099" "\"overdue\": true"
run tasks --store BJ01
expect_rc "a consultant may not list the store's tasks" 4

run followup list "$cid"
expect_rc "followup list as text" 0
expect_out "the follow-up's content" 到店看车
expect_out "the customer's feedback" 喜欢内饰
run --json followup list "$cid"
expect_eq "followup list --json" "$(json followups.content)" 到店看车

# ------------------------------------------------------------ done, skip
run --json task done "$next_task" --method phone --type negotiation --content 电话报价
expect_rc "task done records the follow-up" 0
expect_eq "the completed task is done" "$(json tasks.status)" done
expect_eq "the follow-up names the task" "$(json followup.task_id)" "$next_task"
run task done "$next_task" --method phone --type negotiation --content 再次
expect_rc "a done task cannot be done again" 5

run --json tasks open
# this customer's thank-you (the consultant has others' from other tests)
thanks=$(awk -v cid="$cid" '/"id": /{id=$2} /"customer_id": /{c=$2}
	/thank-you message/ && index(c, cid) {print id; exit}' <<<"$out" | tr -d '",')
run task skip "$thanks"
expect_rc "skip without --reason is a usage error" 2
run task skip "$thanks" --reason 客户出差
expect_rc "skip with a reason" 0
expect_out "the skip is confirmed" "task skipped"
run task reassign "$thanks" --to "$manager"
expect_rc "a consultant may not reassign" 4

# ------------------------------------------------------------ the card
run customer show "$cid"
expect_rc "customer show" 0
expect_out "the card lists the open tasks" "Open tasks"
expect_out "the card lists the latest follow-ups" "Latest follow-ups"
expect_out "the first call is open" "first call after the first visit"
run --json customer show "$cid"
expect_rc "customer show --json" 0
expect_eq "the card's latest follow-up" "$(json followups.content)" 电话报价
expect_eq "the card's open task" "$(json open_tasks.purpose)" "first call after the first visit"

# ------------------------------------------------------------ reassign
run --json tasks open
call=$(awk '/"id": /{id=$2} /first call after the first visit/{print id; exit}' <<<"$out" | tr -d '",')
login "$manager" "$(password_of "$manager")"
run --json task reassign "$call" --to bj01.call_center --reason 顾问休假
expect_rc "the sales manager reassigns the call" 0
expect_eq "the new owner" "$(json task.owner)" bj01.call_center
run --json tasks open --owner bj01.call_center
expect_out "the manager lists the agent's tasks" "\"id\": \"$call\""

# ------------------------------------------------------------ policy
run policy cadence show
expect_rc "the policy is shown to a manager" 0
expect_out "the policy has the delivery call" "manager call within 24 hours of delivery"
run policy cadence set T level 1 --after 5d --method phone --purpose 退订回访
expect_rc "a sales manager may not change the policy" 4
admin_password=$(password_of group.admin)
if [[ -n $admin_password ]]; then
	login group.admin "$admin_password"
	run --json policy cadence set T level 1 --after 5d --method phone --purpose 退订回访
	expect_rc "a group admin changes a rule" 0
	expect_out "the rule is 5 days now" '"due_after_minutes": 7200'
	run policy cadence set T level 1 --after 7d --method phone \
		--purpose "call within 7 days of the cancelled order" --covers own
	expect_rc "and puts it back" 0
	run policy cadence set T level 1 --after 7x --method phone --purpose x
	expect_rc "a bad duration is a usage error" 2

	# Erasure blanks what people typed in follow-ups too.
	run customer erase "$cid" --reason 客户要求删除 --yes
	expect_rc "the group admin erases the customer" 0
	run --json followup list "$cid"
	expect_rc "the erased customer's follow-ups are still listed" 0
	expect_eq "their content is gone" "$(json followups.content)" 已删除
	if [[ $out == *到店看车* || $out == *喜欢内饰* || $out == *电话报价* ]]; then
		not_ok "no follow-up text of the erased customer remains" "stdout: $out"
	else
		ok "no follow-up text of the erased customer remains"
	fi
fi

echo "$passed passed, $failed failed"
((failed == 0))
