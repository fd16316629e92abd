#!/usr/bin/env bash
# End-to-end test of `crm watch` as GZ01's consultant uses it: it prints the
# task already overdue first, then a task as it falls due (tab-separated into
# a pipe, one JSON document a line with --json), ends with exit 0 on Ctrl-C
# (SIGINT), and when crmd restarts it connects again, resumes the session,
# and goes on printing what falls due. Without a session it exits 4; an
# unknown argument is a usage error (2).
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
# shellcheck source=SCRIPTDIR/../../ops/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/ops/lib.sh"

consultant=gz01.consultant
if [[ -z $(password_of "$consultant") ]]; then
	echo "no demo login for $consultant" >&2
	exit 1
fi

sql() {
	PGPASSWORD=$CRM_PG_PASSWORD "$(crm_pg_bin)/psql" -h 127.0.0.1 -p "$CRM_PG_PORT" \
		-U postgres -d crm -X -A -t -v ON_ERROR_STOP=1 -c "$1"
}

# wait_for FILE TEXT SECONDS: true once FILE holds TEXT.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# due_soon TASK: the task falls due in a second (no request sets a due time
# that close; the test moves one that crm set).
due_soon() {
	sql "UPDATE crm.tasks SET due_at = clock_timestamp() + interval '1 second'
	      WHERE id = '$1'" >/dev/null
}

watch_pid=""
stop_watch() {
	[[ -n $watch_pid ]] || return 0
	kill -INT "$watch_pid" 2>/dev/null
	watch_rc=0
	wait "$watch_pid" || watch_rc=$?
	watch_pid=""
}
trap 'stop_watch; rm -rf "$work"' EXIT

run watch --no-such-flag
expect_rc "an unknown argument is a usage error" 2
as nobody-here
run watch
expect_rc "without a session, watch exits 4" 4

login "$consultant" "$(password_of "$consultant")"
run --json customer add --name 盯盘客户 --phone "$(mobile)" --source phone-in
expect_rc "the consultant registers a customer" 0
cid=$(json customer.id)

# An overdue task: a follow-up recorded late, its next contact already past.
at=$(date -d '-90 min' '+%Y-%m-%d %H:%M')
next=$(date -d '-30 min' '+%Y-%m-%d %H:%M')
run --json followup add "$cid" --method phone --type care --content 回访 --at "$at" \
	--next "$next" --next-purpose 逾期回电
expect_rc "a follow-up whose next task is overdue" 0
overdue_task=$(json tasks.id)

# Two tasks set a day ahead, to be moved a second ahead while watching.
run --json followup add "$cid" --method phone --type care --content 再联系 --next +1d \
	--next-purpose 报价回电
expect_rc "a follow-up with a next task" 0
soon_task=$(json tasks.id)
run --json followup add "$cid" --method phone --type care --content 再联系 --next +1d \
	--next-purpose 重启后回电
expect_rc "another follow-up with a next task" 0
restart_task=$(json tasks.id)

# ------------------------------------------------------------ TSV into a pipe
"$crm" watch >"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
if wait_for "$work/watch.out" "$overdue_task" 10; then
	line=$(grep -F -- "$overdue_task" "$work/watch.out")
	IFS=$'\t' read -r state due name method purpose owner id <<<"$line"
	expect_eq "the overdue task comes first, as overdue" "$state" overdue
	expect_eq "its customer" "$name" 盯盘客户
	expect_eq "its purpose" "$purpose" 逾期回电
	expect_eq "its owner" "$owner" "$consultant"
	expect_eq "its id is the last field" "$id" "$overdue_task"
	expect_eq "its due time" "$due" "$next"
	expect_eq "its method" "$method" phone
else
	not_ok "watch lists the overdue task" "out: $(cat "$work/watch.out")" "err: $(cat "$work/watch.err")"
fi
due_soon "$soon_task"
if wait_for "$work/watch.out" "$soon_task" 4; then
	line=$(grep -F -- "$soon_task" "$work/watch.out")
	expect_eq "a task falling due is printed as due" "${line%%$'\t'*}" due
	expect_eq "…with its purpose" "$(cut -f5 <<<"$line")" 报价回电
else
	not_ok "watch prints the task falling due within 3 s" "out: $(cat "$work/watch.out")" \
		"err: $(cat "$work/watch.err")"
fi

# crmd restarts: watch connects again and goes on.
bash "$CRM_HARNESS" crmd-kill "$CRM_TEST_DIR" TERM >/dev/null
bash "$CRM_HARNESS" crmd-start "$CRM_TEST_DIR" >/dev/null
if wait_for "$work/watch.err" "connected again" 15; then
	ok "watch connects again after crmd restarts"
else
	not_ok "watch connects again after crmd restarts" "err: $(cat "$work/watch.err")"
fi
due_soon "$restart_task"
if wait_for "$work/watch.out" "$restart_task" 4; then
	ok "after the restart a task falling due is printed"
else
	not_ok "after the restart a task falling due is printed" "out: $(cat "$work/watch.out")" \
		"err: $(cat "$work/watch.err")"
fi
expect_eq "nothing is printed twice" \
	"$(grep -c -F -- "$overdue_task" "$work/watch.out")$(grep -c -F -- "$soon_task" "$work/watch.out")" 11
stop_watch
expect_eq "Ctrl-C ends watch with exit 0" "$watch_rc" 0

# ------------------------------------------------------------ --json
"$crm" --json watch >"$work/watch.json" 2>"$work/watch.err" &
watch_pid=$!
if wait_for "$work/watch.json" "$overdue_task" 10; then
	line=$(grep -F -- "\"$overdue_task\"" "$work/watch.json" | head -n 1)
	expect_eq "--json: one document a line" \
		"$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["event"]["kind"], d["task"]["id"], d["task"]["purpose"])' "$line")" \
		"task.overdue $overdue_task 逾期回电"
else
	not_ok "--json lists the overdue task" "out: $(cat "$work/watch.json")"
fi
stop_watch
expect_eq "Ctrl-C ends watch --json with exit 0" "$watch_rc" 0
bad=$(python3 -c '
import json, sys
bad = 0
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        json.loads(line)
    except ValueError:
        bad += 1
print(bad)' "$work/watch.json")
expect_eq "--json: every line is a JSON document" "$bad" 0

echo "$passed passed, $failed failed"
((failed == 0))
