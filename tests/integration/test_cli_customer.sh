#!/usr/bin/env bash
# End-to-end test of crm's customer-record commands as the people of store BJ01
# use them: a consultant registers a customer with profile and intent, reads the
# card, updates with the right and a stale version, sets the level, lists and
# searches (aligned table with Chinese names, TSV when piped, JSON pages); a
# second consultant meets the first one's protected lead (a collision); the
# sales manager hands a customer over. Also usage errors (exit 2) and an
# invalid phone (exit 6).
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

consultant=bj01.consultant
manager=bj01.sales_manager
second=bj01.second
if [[ -z $(password_of "$consultant") || -z $(password_of "$manager") ]]; then
	not_ok "$consultant and $manager in $logins" "$(awk '{ print $1, $3, $4 }' "$logins" 2>&1)"
	echo "$passed passed, $failed failed"
	exit 1
fi

# ------------------------------------------------------------ usage errors
as "$consultant"
some_id=$(printf '0192f0c4-8a6e-7c3b-9d2e-%012d' $((RANDOM)))
run customer add --name 张伟
expect_rc "customer add without --phone is a usage error" 2 && expect_err "the usage error names --phone" "--phone"
run customer add --name 张伟 --phone 13800000000 --gender x
expect_rc "customer add --gender x is a usage error" 2 && expect_err "the error names the gender" "--gender"
run customer add --name 张伟 --phone 13800000000 --birth-year 1990 --age-band 25-34
expect_rc "customer add with --birth-year and --age-band is a usage error" 2
run customer add --name 张伟 --phone 13800000000 --intent "途观L:truck"
expect_rc "customer add --intent with an unknown body type is a usage error" 2 &&
	expect_err "the error names the body type" "truck"
run customer update "$some_id" --name 张三
expect_rc "customer update without --version is a usage error" 2 &&
	expect_err "the error says where to read the version" "crm customer get"
run customer update "$some_id" --version 1
expect_rc "customer update with nothing to change is a usage error" 2
run customer get not-a-uuid
expect_rc "customer get with a malformed id is a usage error" 2
run customer list --columns name,bogus
expect_rc "customer list with an unknown column is a usage error" 2 &&
	expect_err "the error names the bad column" "bogus" &&
	expect_err "the error lists the valid columns" "relation_id"
run customer list --sort phone
expect_rc "customer list --sort phone is a usage error" 2
run customer list --level H,X
expect_rc "customer list --level X is a usage error" 2
run customer search
expect_rc "customer search without text is a usage error" 2
run level set "$some_id" O --reason x
expect_rc "level set O (set by orders) is a usage error" 2
run level set "$some_id" B
expect_rc "level set without --reason is a usage error" 2
run relation update "$some_id" --place x
expect_rc "relation update without --version is a usage error" 2
run customer handover --to someone --reason x
expect_rc "customer handover without --relation or --from is a usage error" 2
run customer frobnicate
expect_rc "an unknown customer subcommand is a usage error" 2
run --json customer list --columns nope
expect_rc "usage error with --json" 2 && expect_out "usage error with --json is a JSON error" '"error"'

run --help
expect_rc "crm --help" 0
for cmd in "customer add" "customer get" "customer show" "customer update" "customer list" \
	"customer search" "customer handover" "relation update" "level set"; do
	expect_out "crm --help shows $cmd" "$cmd"
done

# ------------------------------------------------------------ sessions
login "$consultant" "$(password_of "$consultant")"
login "$manager" "$(password_of "$manager")"
# Kept in the fixture's directory, so that a second run against the same
# fixture logs in with the password the user was made with.
second_password_file=$CRM_TEST_DIR/$second.password
[[ -s $second_password_file ]] ||
	printf 'Second%05d%05d\n' $RANDOM $RANDOM >"$second_password_file"
second_password=$(cat "$second_password_file")
if printf '%s\n' "$second_password" |
	"$crmctl" -c "$CRMD_CONFIG" user add --username "$second" --role consultant --store BJ01 \
		--display-name 赵云 --password-stdin --if-missing >"$work/ctl" 2>&1; then
	ok "crmctl adds a second consultant at BJ01"
	login "$second" "$second_password"
else
	not_ok "crmctl adds a second consultant at BJ01" "$(cat "$work/ctl")"
fi

# ------------------------------------------------------------ invalid phone
as "$consultant"
run customer add --name 王芳 --phone 12345
expect_rc "customer add with phone 12345 is invalid input" 6 &&
	expect_err "the error names customer.phone" "customer.phone"
run --json customer add --name 王芳 --phone 12345
expect_rc "invalid phone with --json" 6 && expect_out "the JSON error names the field" '"customer.phone"'

# ------------------------------------------------------------ add with profile and intent
phone1=$(mobile)
phone1b=$(mobile)
run --json customer add --name 张伟 --phone "${phone1:0:3} ${phone1:3:4} ${phone1:7:4}" --phone "$phone1b" \
	--gender male --birth-year 1988 --wechat "zw$phone1" --email zw@example.com --occupation 教师 \
	--region 北京市朝阳区 --tag 高意向 --important --level A --source walk-in \
	--first-contact "2026-11-20 10:30" --place 展厅 --scenario 周末看车 --feedback 喜欢外观 \
	--intent "途观L:suv:20万-30万:两驱豪华版" --needs 空间大
cid="" rid="" cver="" rver=""
if expect_rc "customer add with profile and intent" 0; then
	cid=$(json customer.id)
	rid=$(json relation.id)
	cver=$(json customer.version)
	rver=$(json relation.version)
	expect_eq "add: the primary phone is canonical" "$(json customer.phone)" "+86$phone1"
	expect_eq "add: gender" "$(json customer.gender)" male
	expect_eq "add: birth year" "$(json customer.birth_year)" 1988
	expect_eq "add: important" "$(json customer.important)" true
	expect_eq "add: existed is false" "$(json existed)" false
	expect_eq "add: the relation's level is A" "$(json relation.level)" A
	expect_eq "add: the relation's source is walk_in" "$(json relation.source)" walk_in
	expect_eq "add: the owner is the consultant" "$(json relation.owner)" "$consultant"
	expect_eq "add: the intent's model" "$(json relation.intents.model)" 途观L
	expect_eq "add: the intent's budget" "$(json relation.intents.budget_max)" 300000
	expect_out "add: the second phone is kept" "+86$phone1b"
	if [[ -n $cid && -n $rid && $cid != "$rid" ]]; then
		ok "add: a customer id and a relation id ($cid, $rid)"
	else
		not_ok "add: a customer id and a relation id" "stdout: $out"
	fi
fi

run customer add --name 张伟 --phone "$phone1" --id "${cid:-$some_id}"
expect_rc "the same create again" 0 && expect_out "the retry says the customer was already registered" "already registered"

if [[ -n $cid ]]; then
	run customer show "$cid"
	if expect_rc "customer show" 0; then
		for want in 张伟 "+86$phone1" "+86$phone1b" 北京市朝阳区 高意向 教师 \
			Customer Stores "Level history" Collisions BJ01 "$rid" 途观L 20万-30万 \
			两驱豪华版 空间大 展厅 周末看车 喜欢外观 "2026-11-20 10:30" walk_in; do
			expect_out "show: the card has $want" "$want"
		done
	fi
	run --json customer show "$cid"
	expect_rc "customer show --json" 0 &&
		expect_out "show --json has level_history" '"level_history"' &&
		expect_out "show --json has collisions" '"collisions"'

	run --json customer get "$cid"
	if expect_rc "customer get --json" 0; then
		for key in customer existed relation collision other_relations phones tags version \
			protected_until level owner intents; do
			expect_out "get --json has the key $key" "\"$key\":"
		done
	fi
	run customer get "$cid"
	expect_rc "customer get" 0 && expect_out "get prints the relation id" "$rid" &&
		expect_out "get prints the level" "level A"

	# ------------------------------------------------------------ update
	run customer update "$cid" --version "$cver" --occupation 工程师 --tag 高意向 --tag 换购
	expect_rc "customer update with the version read" 0 && expect_out "update prints the new occupation" 工程师
	run --json customer get "$cid"
	expect_eq "update: the version went up" "$(json customer.version)" "$((cver + 1))"
	expect_eq "update: other fields are left alone" "$(json customer.wechat)" "zw$phone1"
	run customer update "$cid" --version "$cver" --occupation 医生
	expect_rc "customer update with a stale version is a conflict" 5 &&
		expect_err "the stale update says to re-read" "crm customer get $cid" &&
		expect_out "the stale update prints the current record" 工程师
	run --json customer update "$cid" --version "$cver" --occupation 医生
	expect_rc "stale update with --json" 5 && expect_out "the JSON has the error" '"CONFLICT"' &&
		expect_out "the JSON has the current record" 工程师

	run --json customer get "$cid"
	cver=$(json customer.version)
	run --json customer update "$cid" --version "$cver" --no-tags --not-important
	expect_rc "customer update --no-tags --not-important" 0 &&
		expect_eq "update: the tags are cleared" "$(json customer.tags)" "[]" &&
		expect_eq "update: the customer is no longer important" "$(json customer.important)" false &&
		expect_eq "update: the occupation is left alone" "$(json customer.occupation)" 工程师

	# ------------------------------------------------------------ level set
	run level set "$cid" B --reason 预算待定
	expect_rc "level set by customer id" 0 && expect_out "level set prints the level" "level set to B"
	run --json customer get "$cid"
	expect_eq "level set: the relation's level is B" "$(json relation.level)" B
	rver_now=$(json relation.version)
	run level set "$rid" H --reason 试驾满意 --version "$rver"
	expect_rc "level set by relation id with a stale version is a conflict" 5 &&
		expect_err "the stale level set says to re-read and how" "re-read it (crm customer get $cid)"
	run level set "$rid" H --reason 试驾满意
	expect_rc "level set by relation id without --version is a usage error" 2
	run level set "$rid" H --reason 试驾满意 --version "$rver_now"
	expect_rc "level set by relation id with its version" 0
	run customer show "$cid"
	expect_out "show: the level history has A → B" "A → B" && expect_out "show: the level history has the reason" 预算待定

	# ------------------------------------------------------------ relation update
	run --json customer get "$cid"
	rver_now=$(json relation.version)
	run relation update "$rid" --version "$rver_now" --feedback 喜欢内饰 --intent "A6L:sedan:40万-50万"
	expect_rc "relation update" 0 && expect_out "relation update prints the new intent" A6L
	run relation update "$rid" --version "$rver_now" --feedback 不喜欢
	expect_rc "relation update with a stale version is a conflict" 5
fi

# ------------------------------------------------------------ list and search
tag=对齐$RANDOM
declare -A phones=()
for name in 欧阳娜娜 李雷 "Han Meimei"; do
	p=$(mobile)
	phones[$name]=$p
	run customer add --name "$name" --phone "$p" --tag "$tag" --intent 凯美瑞
	expect_rc "customer add $name for the list" 0 || true
done

run customer list --tag "$tag" --columns name,phone,level,owner_name,model --format table
if expect_rc "customer list --columns as a table" 0; then
	header=$(head -n 1 <<<"$out")
	expect_eq "the header names the columns" "$(tr -s ' ' <<<"$header")" "name phone level owner_name model"
	phone_col=$(width "${header%%phone*}")
	owner_col=$(width "${header%%owner_name*}")
	model_col=$(width "${header%%model*}")
	rows=0
	while IFS= read -r line; do
		rows=$((rows + 1))
		for name in "${!phones[@]}"; do
			[[ $line == "$name "* ]] || continue
			expect_eq "$name: the phone column starts at column $phone_col" \
				"$(width "${line%%+86*}")" "$phone_col"
			expect_eq "$name: the owner_name column starts at column $owner_col" \
				"$(width "${line%%王磊*}")" "$owner_col"
			expect_eq "$name: the model column starts at column $model_col" \
				"$(width "${line%%凯美瑞*}")" "$model_col"
		done
	done < <(tail -n +2 <<<"$out")
	expect_eq "the table has a row per customer" "$rows" 3
fi

run customer list --tag "$tag" --columns name,phone,level
if expect_rc "customer list piped" 0; then
	expect_eq "piped: the header is tab-separated" "$(head -n 1 <<<"$out")" $'name\tphone\tlevel'
	expect_eq "piped: a line per customer" "$(tail -n +2 <<<"$out" | grep -c $'\t+86')" 3
	expect_out "piped: a row is tab-separated" $'欧阳娜娜\t+86'"${phones[欧阳娜娜]}"$'\tN'
fi

run --json customer list --tag "$tag" --limit 2 --sort name
if expect_rc "customer list --json --limit 2" 0; then
	expect_out "list --json has rows" '"rows": ['
	expect_eq "list --json --limit 2 gives 2 rows" "$(grep -c '"customer": {' <<<"$out")" 2
	cursor=$(grep -o '"next_cursor": "[^"]*"' <<<"$out" | sed 's/.*: "\(.*\)"/\1/')
	if [[ -n $cursor ]]; then
		ok "list --json gives a next_cursor"
		run --json customer list --tag "$tag" --sort name --after "$cursor"
		expect_rc "customer list --after the cursor" 0 &&
			expect_eq "the rest of the list is one row" "$(grep -c '"customer": {' <<<"$out")" 1
	else
		not_ok "list --json gives a next_cursor" "stdout: $out"
	fi
fi

# On a terminal (script(1) gives crm one): a padded table, and when --limit
# stops the list, the cursor to continue from.
if command -v script >/dev/null; then
	rc=0
	out=$(script -qec "$(printf '%q ' "$crm" customer list --tag "$tag" --columns name,phone --limit 2)" \
		/dev/null </dev/null 2>&1 | tr -d '\r') || rc=$?
	err=""
	if expect_rc "customer list on a terminal" 0; then
		if [[ $out =~ (^|$'\n')name\ \ +phone && $out != *$'\t'* ]]; then
			ok "on a terminal the columns are padded, not tab-separated"
		else
			not_ok "on a terminal the columns are padded, not tab-separated" "output: $out"
		fi
		expect_out "on a terminal --limit tells how to continue" "continue with --after "
	fi
fi

p=${phones[李雷]}
run customer search "${p: -6}" --columns name,phone
expect_rc "customer search by the phone's last 6 digits" 0 && expect_out "search by suffix finds 李雷" 李雷
run customer search 欧阳娜娜 --tag "$tag"
expect_rc "customer search by name" 0 && expect_out "search by name finds 欧阳娜娜" 欧阳娜娜

# ------------------------------------------------------------ collision
phone2=$(mobile)
run customer add --name 孙悟空 --phone "$phone2"
expect_rc "the first consultant registers $phone2" 0
as "$second"
run customer add --name 孙大圣 --phone "$phone2"
if expect_rc "a second consultant registering the same phone is a collision" 5; then
	expect_err "the collision names the owner" "$consultant"
	expect_err "the collision names the store" BJ01
	expect_err "the collision says until when" "until"
	expect_err "the collision says a manager can hand it over" "hand"
fi
run --json customer add --name 孙大圣 --phone "$phone2"
expect_rc "collision with --json" 5 && expect_out "the JSON has the collision" '"collision": {' &&
	expect_eq "the JSON collision names the owner" "$(json customer.collision.owner)" "$consultant"

# A store of another brand registers the same person: no collision, the
# group-wide record is shared and the store gets a relation of its own.
gz=gz01.consultant
if [[ -n $(password_of "$gz") ]]; then
	login "$gz" "$(password_of "$gz")"
	run customer add --name 孙悟空 --phone "$phone2" --intent 凯美瑞
	expect_rc "a store of another brand registers the same phone" 0 &&
		expect_out "it is told the customer was already registered" "already registered" &&
		expect_out "it is told its relation is new" "your store's relation to the customer is new" &&
		expect_out "it sees the customer at the other store" "also at store BJ01"
	as "$second"
fi

# ------------------------------------------------------------ handover
if [[ -n $rid ]]; then
	run customer handover --relation "$rid" --to "$second" --reason 调岗
	expect_rc "a consultant cannot hand over" 4
	as "$manager"
	run customer handover --relation "$rid" --to "$second" --reason 调岗
	expect_rc "the manager hands the customer over" 0 && expect_out "handover says what moved" "moved 1"
	run --json customer get "$cid"
	expect_eq "handover: the owner is now $second" "$(json relation.owner)" "$second"
	run customer show "$cid"
	expect_out "show: the handover is listed" 调岗
	run customer handover --from "$second" --to "$consultant" --reason 复岗
	expect_rc "the manager hands over everything $second owns" 0 && expect_out "handover --from moves relations" "moved"
	run --json customer get "$cid"
	expect_eq "handover --from: the owner is $consultant again" "$(json relation.owner)" "$consultant"
fi

# ------------------------------------------------------------ group roles
admin_password=$(password_of group.admin)
if [[ -n $admin_password ]]; then
	login group.admin "$admin_password"
	run --json customer add --name 周杰 --phone "$(mobile)" --level A
	expect_rc "a group admin registers a customer (the relation is left to the stores)" 0 &&
		expect_eq "the group admin's customer has no store relation" "$(json relation)" null
fi

# ------------------------------------------------------------ not found
as "$consultant"
run customer get 01937b6e-1111-7222-8333-444455556666
expect_rc "customer get of an unknown id is not found" 3

echo "$passed passed, $failed failed"
((failed == 0))
