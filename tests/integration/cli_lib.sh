#!/usr/bin/env bash
# Shared by the crm end-to-end scripts (test_cli_*.sh), which source it: the
# fixture's environment, a scratch directory, and the checks they count.
# The scripts run under the ctest fixture "crm" (they need $CRM_TEST_ENV from
# harness.sh). No -e: a failed check is counted and the script goes on.
set -uo pipefail

[[ -n ${CRM_TEST_ENV:-} && -f $CRM_TEST_ENV ]] || {
	echo "CRM_TEST_ENV is not set or missing; run through ctest (fixture crm)" >&2
	exit 1
}
set -a
# shellcheck source=/dev/null
source "$CRM_TEST_ENV"
set +a
crm=$CRM_BUILD_DIR/crm
crmctl=$CRM_BUILD_DIR/crmctl
logins=$CRM_TEST_DIR/logins.txt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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

# as USER: the following runs are USER's (each user has a config dir of its own,
# so each keeps its own session).
as() {
	CRM_CONFIG_DIR=$work/cfg-$1
	export CRM_CONFIG_DIR
	mkdir -p "$CRM_CONFIG_DIR"
}

# run ARGS...: runs crm; sets $rc, $out, $err.
run() {
	rc=0
	"$crm" "$@" </dev/null >"$work/out" 2>"$work/err" || rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
}

expect_rc() {
	if [[ $rc == "$2" ]]; then
		ok "$1 (exit $rc)"
		return 0
	fi
	not_ok "$1: exit $rc, want $2" "stdout: $out" "stderr: $err"
	return 1
}

expect_out() {
	if [[ $out == *"$2"* ]]; then
		ok "$1"
	else
		not_ok "$1: stdout lacks \"$2\"" "stdout: $out" "stderr: $err"
	fi
}

expect_err() {
	if [[ $err == *"$2"* ]]; then
		ok "$1"
	else
		not_ok "$1: stderr lacks \"$2\"" "stdout: $out" "stderr: $err"
	fi
}

expect_eq() {
	if [[ $2 == "$3" ]]; then
		ok "$1"
	else
		not_ok "$1: got \"$2\", want \"$3\"" "stdout: $out" "stderr: $err"
	fi
}

# json PATH: the value at PATH (keys joined by ".", array levels skipped, first
# match) in $out, as pretty-printed by crm --json (one key a line).
json() {
	awk -v want="$1" '
	{
		line = $0
		sub(/^[ \t]+/, "", line)
		key = ""
		rest = line
		if (match(line, /^"[^"]*": /)) {
			key = substr(line, 2, RLENGTH - 4)
			rest = substr(line, RLENGTH + 1)
		}
		if (rest ~ /^[{[]$/) {
			stack[++depth] = key
			next
		}
		if (rest ~ /^[]}],?$/) {
			depth--
			next
		}
		if (key == "" || found)
			next
		path = ""
		for (i = 1; i <= depth; i++)
			if (stack[i] != "")
				path = path stack[i] "."
		if (path key == want) {
			sub(/,$/, "", rest)
			gsub(/^"|"$/, "", rest)
			print rest
			found = 1
		}
	}' <<<"$out"
}

# width TEXT: display width of TEXT (CJK characters are two columns).
width() {
	printf '%s' "$1" | LC_ALL=C.UTF-8 wc -L
}

# A random mobile per customer, so that a rerun or another test's customers
# cannot collide with ours.
mobile() {
	printf '1%d%04d%04d' $((35 + RANDOM % 5)) $((RANDOM % 10000)) $((RANDOM % 10000))
}

password_of() {
	awk -v u="$1" '$1 == u { print $2 }' "$logins"
}

login() {
	as "$1"
	rc=0
	printf '%s\n' "$2" | "$crm" login --user "$1" --password-stdin >"$work/out" 2>"$work/err" || rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
	expect_rc "login as $1" 0
}

