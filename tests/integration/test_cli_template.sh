#!/usr/bin/env bash
# End-to-end test of crm's message templates and the compliance report: a
# group admin adds a template with Chinese text (an unknown placeholder is
# refused at save, naming it; a stale version is a conflict); a consultant
# of BJ01 renders it for a customer (Chinese name, store name, their own
# name, the intended model, a date as 2030年1月15日), is told which
# placeholder has no value, sends it (one spool file with the text and the
# real phone, one sms follow-up), and a retry with the same --id sends
# nothing more; another store's customer is refused; crm compliance runs.
# Sends go to a crmd started here with its spool folder in the scratch
# directory. Runs under the ctest fixture "crm"; helpers in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
# shellcheck source=../../ops/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/ops/lib.sh"

admin=group.admin
consultant=bj01.consultant
other=sh01.consultant
for u in "$admin" "$consultant" "$other"; do
	[[ -n $(password_of "$u") ]] || {
		echo "no demo login for $u" >&2
		exit 1
	}
done

# ------------------------------------------------------------ our crmd
spool=$work/spool
port=$(crm_free_port)
"$CRM_BUILD_DIR/crmd" -c "$CRMD_CONFIG" --set "server.listen_port=$port" \
	--set sender.kind=spool --set "sender.spool_dir=$spool" \
	</dev/null >"$work/crmd.log" 2>&1 &
crmd_pid=$!
trap 'kill -TERM "$crmd_pid" 2>/dev/null; wait "$crmd_pid" 2>/dev/null; rm -rf "$work"' EXIT
# Listening, and its database pool up.
ready() { grep -q 'event=server.listening' "$work/crmd.log" && grep -q 'event=db.up' "$work/crmd.log"; }
for ((i = 0; i < 200; i++)); do
	ready && break
	sleep 0.1
done
ready || {
	echo "our crmd did not start:" >&2
	cat "$work/crmd.log" >&2
	exit 1
}
export CRM_SERVER=127.0.0.1:$port

# ------------------------------------------------------------ templates
login "$admin" "$(password_of "$admin")"
tag=$$
body='{name}您好！我是{store}的{consultant}，诚邀您{date}来试驾{model}。'
run --json template add --name "试驾邀请$tag" --channel sms --body "$body"
expect_rc "a group admin adds a template" 0
tid=$(json template.id)
expect_eq "its channel" "$(json template.channel)" sms
expect_eq "it is group-wide" "$(json template.store_code)" ""
expect_out "its placeholders are listed" '"consultant"'

run template add --name "坏$tag" --channel sms --body '{name}您好，{姓名}'
expect_rc "an unknown placeholder is refused at save" 6
expect_err "the refusal names the placeholder" "unknown placeholder {姓名}"
run template add --name "坏$tag" --channel sms --body '您好{name'
expect_rc "an unclosed brace is refused" 6
expect_err "the refusal names the brace" 'the "{" at character 3 is not closed'
run template add --name "坏$tag" --channel fax --body x
expect_rc "an unknown channel is a usage error" 2
run template add --name "坏$tag" --channel sms
expect_rc "a body is required" 2

run template list
expect_rc "template list" 0
expect_out "the list has the template" "试驾邀请$tag"
run template show "$tid"
expect_rc "template show" 0
expect_out "show prints the body" "$body"
run template update "$tid" --version 1 --body "$body（限时）"
expect_rc "the admin updates the body" 0
run --json template update "$tid" --version 1 --body "$body"
expect_rc "a stale version is a conflict" 5
expect_eq "the conflict carries the current version" "$(json template_reply.template.version)" 2
run --json template update "$tid" --version 2 --body "$body"
expect_rc "and the current version goes through" 0

# ------------------------------------------------------------ render
login "$consultant" "$(password_of "$consultant")"
phone=$(mobile)
run --json customer add --name 欧阳娜娜 --phone "$phone" --intent 途观L:suv
expect_rc "the consultant registers a customer with a model" 0
cid=$(json customer.id)
store=$(json relation.store_name)
me=$(json relation.owner_name)
run template render "$tid" "$cid" --date 2030-01-15
expect_rc "render with a date" 0
expect_eq "the placeholders are filled" "$out" \
	"欧阳娜娜您好！我是${store}的${me}，诚邀您2030年1月15日来试驾途观L。"
run template render "$tid" "$cid" --date 2030-01-15 --model 奥迪Q5L
expect_out "a model given replaces the intent's" "来试驾奥迪Q5L。"
run template render "$tid" "$cid"
expect_rc "no date and no open task" 6
expect_err "the error names {date}" "{date}"

run --json customer add --name 司马光 --phone "$(mobile)"
nocar=$(json customer.id)
run template render "$tid" "$nocar" --date 2030-01-15
expect_rc "no intended model" 6
expect_err "the error names {model}" "{model}"
run --json template render "$tid" "$nocar" --date 2030-01-15 --allow-blanks
expect_rc "blanks allowed" 0
expect_out "the blank is reported" '"model"'
run template render not-a-uuid "$cid"
expect_rc "a bad template id is a usage error" 2

# ------------------------------------------------------------ send
run --json template send "$tid" "$cid" --date 2030-01-15
expect_rc "send" 0
expect_eq "the message went to the spool sender" "$(json sender)" spool
expect_eq "it was sent" "$(json sent)" true
fid=$(json followup.followup.id)
expect_eq "the follow-up's method is the channel" "$(json followup.followup.method)" sms
nfiles=$(find "$spool" -maxdepth 1 -name '*.json' | wc -l)
expect_eq "exactly one spool file" "$nfiles" 1
if [[ -f $spool/$fid.json ]] && grep -q "欧阳娜娜您好" "$spool/$fid.json" &&
	grep -q "\"to\": \"+86$phone\"" "$spool/$fid.json"; then
	ok "the file is named after the follow-up and holds the text and the real phone"
else
	not_ok "the spool file" "$(ls -la "$spool" 2>&1)" "$(cat "$spool"/*.json 2>&1)"
fi
run --json followup list "$cid"
expect_eq "one sms follow-up recorded" "$(grep -c '"method": "sms"' <<<"$out")" 1
expect_eq "its content is the message" "$(json followups.content)" \
	"欧阳娜娜您好！我是${store}的${me}，诚邀您2030年1月15日来试驾途观L。"
run template send "$tid" "$cid" --date 2030-01-15 --id "$fid"
expect_rc "the same send again" 0
expect_out "it says it was sent before" "before (not again)"
expect_eq "still one spool file" "$(find "$spool" -maxdepth 1 -name '*.json' | wc -l)" 1
run --json followup list "$cid"
expect_eq "still one follow-up" "$(grep -c '"method": "sms"' <<<"$out")" 1
run --json template send "$tid" "$cid" --date 2030-01-16 --type invitation
expect_rc "an invitation" 0
expect_eq "its follow-up type" "$(json followup.followup.type)" invitation
expect_eq "two spool files now" "$(find "$spool" -maxdepth 1 -name '*.json' | wc -l)" 2
run template send "$tid" "$cid" --type greeting
expect_rc "an unknown type is a usage error" 2

# The sender fails after the follow-up is recorded (the spool folder's name
# is taken by a file): exit 7 and the command that retries it; that retry
# sends it once.
mv "$spool" "$spool.away" && : >"$spool"
run template send "$tid" "$nocar" --date '2030-01-15 10:00' --model 'A6L 新款'
expect_rc "a send whose sender fails" 7
expect_err "it says the follow-up is recorded" "is recorded, but the sender did not take the message"
retry=$(sed -n 's/^crm: to retry this message without sending it twice: crm //p' <<<"$err")
expect_out_retry=$retry
rm -f "$spool" && mv "$spool.away" "$spool"
eval "run $retry"
expect_rc "the retry it printed" 0
expect_out "the retry sends the recorded message" "sent SMS now"
expect_eq "one more spool file" "$(find "$spool" -maxdepth 1 -name '*.json' | wc -l)" 3
run --json followup list "$nocar"
expect_eq "one follow-up for it" "$(grep -c '"method": "sms"' <<<"$out")" 1
eval "run $expect_out_retry"
expect_out "a second retry sends nothing" "before (not again)"
expect_eq "still three spool files" "$(find "$spool" -maxdepth 1 -name '*.json' | wc -l)" 3

# Another store's customer is not ours to message.
login "$other" "$(password_of "$other")"
run --json customer add --name 上官婉儿 --phone "$(mobile)" --intent A4L
sh_cid=$(json customer.id)
login "$consultant" "$(password_of "$consultant")"
run template render "$tid" "$sh_cid" --date 2030-01-15
expect_rc "another store's customer is refused" 4
run template send "$tid" "$sh_cid" --date 2030-01-15
expect_rc "and cannot be sent to" 4
expect_eq "no file for it" "$(find "$spool" -maxdepth 1 -name '*.json' | wc -l)" 3

# ------------------------------------------------------------ compliance
run compliance
expect_rc "crm compliance (own tasks, last 30 days)" 0
expect_out "the period is printed" "tasks due from"
run --json compliance --since 2030-01-01 --until 2030-02-01 --at "2030-02-01 09:00"
expect_rc "compliance --json at a fixed clock" 0
expect_out "the report names its clock" '"at": '
run compliance --store BJ01
expect_rc "a consultant may not report on the store" 4
run compliance --since 2030-02-01 --until 2030-01-01
expect_rc "a period backwards is a usage error" 2

# Our crmd stops cleanly and its log holds no sanitizer report.
kill -TERM "$crmd_pid"
status=0
wait "$crmd_pid" || status=$?
expect_eq "our crmd exits 0 on SIGTERM" "$status" 0
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$work/crmd.log"; then
	not_ok "no sanitizer report in our crmd's log" "$(grep -E -A5 'Sanitizer|runtime error' "$work/crmd.log")"
else
	ok "no sanitizer report in our crmd's log"
fi

echo "$passed passed, $failed failed"
((failed == 0))
