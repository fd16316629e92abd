#!/usr/bin/env bash
# End-to-end test of the crm command as a consultant uses it: log in with a demo
# login, check who we are, add a customer with a Chinese name and a spaced mobile
# number, read it back, get a clear error for a bad phone, log out.
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
crm=$CRM_BUILD_DIR/crm
logins=$CRM_TEST_DIR/logins.txt

CRM_CONFIG_DIR=$(mktemp -d)
export CRM_CONFIG_DIR
work=$(mktemp -d)
trap 'rm -rf "$CRM_CONFIG_DIR" "$work"' EXIT

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

# run NAME STDIN ARGS...: runs crm with STDIN as its input; sets $rc, $out, $err.
run() {
	local input=$1
	shift
	rc=0
	printf '%s' "$input" | "$crm" "$@" >"$work/out" 2>"$work/err" || rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
}

# expect_rc NAME WANT: checks the last run's exit code.
expect_rc() {
	if [[ $rc == "$2" ]]; then
		ok "$1 (exit $rc)"
		return 0
	fi
	not_ok "$1: exit $rc, want $2" "stdout: $out" "stderr: $err"
	return 1
}

# expect_out NAME TEXT: checks that the last run's stdout contains TEXT.
expect_out() {
	if [[ $out == *"$2"* ]]; then
		ok "$1"
	else
		not_ok "$1: stdout lacks \"$2\"" "stdout: $out" "stderr: $err"
	fi
}

read -r user password _ < <(awk 'tolower($3) == "consultant" { print; exit }' "$logins") || true
if [[ -z ${user:-} ]]; then
	not_ok "a consultant in $logins" "$(awk '{ print $1, "<password>", $3, $4 }' "$logins" 2>&1)"
	echo "$passed passed, $failed failed"
	exit 1
fi

run "not-the-password"$'\n' login --user "$user" --password-stdin
expect_rc "login with a wrong password is refused" 4 || true

run "$password"$'\n' login --user "$user" --password-stdin
expect_rc "login as consultant $user" 0 || true

run "" --json whoami
expect_rc "whoami --json after login" 0 && expect_out "whoami --json names $user" "\"$user\""

# A random mobile, so that a rerun or another test's customer cannot collide.
digits=$(printf '%04d%04d' $((RANDOM % 10000)) $((RANDOM % 10000)))
spaced="138 ${digits:0:4} ${digits:4:4}"
canonical="+86138$digits"

run "" customer add --name "张伟" --phone "$spaced"
expect_rc "customer add 张伟 with phone '$spaced'" 0 &&
	expect_out "customer add prints the phone as $canonical" "$canonical" &&
	expect_out "customer add prints the name 张伟" "张伟"

digits2=$(printf '%04d%04d' $((RANDOM % 10000)) $((RANDOM % 10000)))
run "" --json customer add --name "李娜" --phone "139 ${digits2:0:4} ${digits2:4:4}"
id=""
if expect_rc "customer add --json 李娜" 0; then
	id=$(grep -o '"id" *: *"[^"]*"' <<<"$out" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/' || true)
	if [[ -n $id ]]; then
		ok "customer add --json gives an id ($id)"
	else
		not_ok "customer add --json gives an id" "stdout: $out"
	fi
fi
if [[ -n $id ]]; then
	run "" --json customer get "$id"
	expect_rc "customer get $id --json" 0 &&
		expect_out "customer get returns the id" "\"$id\"" &&
		expect_out "customer get returns the name" "李娜" &&
		expect_out "customer get returns the canonical phone" "+86139$digits2"
fi

run "" customer add --name "王芳" --phone 12345
if expect_rc "customer add with phone 12345 is invalid input" 6; then
	if [[ ${out,,}${err,,} == *phone* ]]; then
		ok "the error for phone 12345 names the phone"
	else
		not_ok "the error for phone 12345 names the phone" "stdout: $out" "stderr: $err"
	fi
fi

run "" logout
expect_rc "logout" 0 || true
run "" whoami
expect_rc "whoami after logout is unauthenticated" 4 || true

echo "$passed passed, $failed failed"
((failed == 0))
