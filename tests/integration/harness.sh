#!/usr/bin/env bash
# Integration-test harness: a private PostgreSQL cluster and a crmd in a state
# directory. Used by the ctest fixture (tests/integration/CMakeLists.txt) and by
# integration tests through $CRM_HARNESS.
#
#   harness.sh start DIR BUILD_DIR   fresh cluster + crmd; writes DIR/env
#   harness.sh stop DIR              stop crmd and the cluster; remove DIR
#                                    (kept when CRM_KEEP_TEST_DIR=1)
#   harness.sh pg-stop DIR           stop PostgreSQL (immediate mode)
#   harness.sh pg-start DIR          start PostgreSQL again
#   harness.sh crmd-start DIR        start crmd again; updates CRMD_PID in DIR/env
#   harness.sh crmd-kill DIR SIGNAL  signal crmd; for TERM/INT/QUIT/KILL wait for
#                                    it to exit and print exit=N
#
# crmd runs under a small bash wrapper that records its exit status in
# DIR/crmd.exit, since the harness process is not crmd's parent.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../../ops/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/ops/lib.sh"

usage() {
	sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

abspath() {
	if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$PWD/$1"; fi
}

# Value of KEY in DIR/env.
env_get() {
	sed -n "s/^$2=//p" "$1/env" | tail -n 1
}

env_set() {
	local dir=$1 key=$2 value=$3
	if grep -q "^$key=" "$dir/env"; then
		sed -i "s|^$key=.*|$key=$value|" "$dir/env"
	else
		printf '%s=%s\n' "$key" "$value" >>"$dir/env"
	fi
}

show_logs() {
	local dir=$1 f
	for f in "$dir/crmctl.log" "$dir/crmd.log" "${PGDATA_DIR:-$dir/pg}/server.log"; do
		[[ -s $f ]] || continue
		printf '\n----- last 50 lines of %s -----\n' "$f" >&2
		tail -n 50 "$f" >&2 || true
	done
}

fail() {
	printf 'harness: %s\n' "$1" >&2
	show_logs "$2"
	# A failed start leaves nothing running; the state stays for a look.
	if [[ ${STARTING:-0} == 1 ]]; then
		crmd_alive "$2" && kill -KILL "$(crmd_pid "$2")" 2>/dev/null
		[[ -f ${PGDATA_DIR:-$2/pg}/PG_VERSION ]] && crm_pg_stop "${PGDATA_DIR:-$2/pg}" immediate 2>/dev/null
	fi
	exit 1
}

crmd_pid() {
	[[ -s $1/crmd.pid ]] && cat "$1/crmd.pid"
}

crmd_alive() {
	local pid
	pid=$(crmd_pid "$1") || return 1
	kill -0 "$pid" 2>/dev/null && [[ ! -e $1/crmd.exit ]]
}

# Starts crmd in the background, detached from our session so that ctest does
# not wait for it, and waits (max 20 s) for a new event=server.listening line.
start_crmd() {
	local dir=$1 build=$2 before i pid
	crmd_alive "$dir" && fail "crmd already runs (pid $(crmd_pid "$dir"))" "$dir"
	[[ -x $build/crmd ]] || fail "$build/crmd: not built" "$dir"
	touch "$dir/crmd.log"
	before=$(wc -l <"$dir/crmd.log")
	rm -f "$dir/crmd.exit" "$dir/crmd.pid"
	# The wrapper starts crmd, writes its pid, waits, and records the status.
	# The CRL listener is set on the command line, not in crmd.ini: tests
	# start more crmds from that file, and each would try to take its port.
	# shellcheck disable=SC2016 # expanded by the wrapper's bash
	setsid bash -c '
		crl=""
		[[ -s $2/crl_listen ]] && crl=$(cat "$2/crl_listen")
		"$1/crmd" -c "$2/crmd.ini" --set "server.crl_listen=$crl" \
			</dev/null >>"$2/crmd.log" 2>&1 &
		echo $! >"$2/crmd.pid.tmp"
		mv "$2/crmd.pid.tmp" "$2/crmd.pid"
		status=0
		wait $! || status=$?
		echo "$status" >"$2/crmd.exit"
	' crmd-wrapper "$build" "$dir" </dev/null >/dev/null 2>&1 &
	# Listening is not serving: a login before crmd's database pool is up is
	# answered UNAVAILABLE, and the next test would fail for it. So wait for
	# this crmd's (the log's new lines) event=db.up too; every caller starts
	# crmd with PostgreSQL up.
	for ((i = 0; i < 200; i++)); do
		if [[ -s $dir/crmd.pid ]] &&
			tail -n "+$((before + 1))" "$dir/crmd.log" | grep -q 'event=db\.up'; then
			pid=$(cat "$dir/crmd.pid")
			[[ -f $dir/env ]] && env_set "$dir" CRMD_PID "$pid"
			return 0
		fi
		if [[ -e $dir/crmd.exit ]]; then
			fail "crmd exited with status $(cat "$dir/crmd.exit") before serving" "$dir"
		fi
		sleep 0.1
	done
	fail "crmd did not log event=db.up within 20 s" "$dir"
}

# Waits up to $2 seconds for crmd to exit; prints its exit status.
wait_crmd_exit() {
	local dir=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		if [[ -s $dir/crmd.exit ]]; then
			cat "$dir/crmd.exit"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

pgdata_of() {
	local d
	d=$(env_get "$1" CRM_PG_DATA 2>/dev/null || true)
	printf '%s\n' "${d:-$1/pg}"
}

cmd_start() {
	local dir build pgdata pgport port crlport superpass dbpass blocker
	(($# == 2)) || usage
	dir=$(abspath "$1")
	build=$(abspath "$2")
	[[ -x $build/crmctl && -x $build/crmd ]] || {
		echo "harness: $build has no crmd/crmctl; build first" >&2
		exit 1
	}
	# Leftovers of an earlier run that was not stopped.
	if [[ -e $dir ]]; then
		CRM_KEEP_TEST_DIR=0 cmd_stop "$dir" >/dev/null 2>&1 || true
		rm -rf "$dir"
	fi
	mkdir -p "$dir"
	STARTING=1
	pgdata=$dir/pg
	# As root the cluster belongs to postgres, which must be able to reach it;
	# a checkout under a private home directory cannot, so use /tmp then.
	if ! blocker=$(crm_pg_can_reach "$dir" 2>&1); then
		echo "harness: postgres cannot traverse $blocker; putting the cluster under /tmp" >&2
		pgdata=$(mktemp -d /tmp/crm-test-pg.XXXXXX)/pg
		chmod 755 "$(dirname "$pgdata")"
	fi
	PGDATA_DIR=$pgdata
	pgport=$(crm_free_port)
	port=$(crm_free_port)
	while [[ $port == "$pgport" ]]; do port=$(crm_free_port); done
	crlport=$(crm_free_port)
	while [[ $crlport == "$pgport" || $crlport == "$port" ]]; do crlport=$(crm_free_port); done
	printf '127.0.0.1:%s\n' "$crlport" >"$dir/crl_listen"
	superpass=$(crm_random_secret 16)
	dbpass=$(crm_random_secret 16)

	(crm_pg_init "$pgdata" "$pgport" "$superpass") 2>>"$dir/crmctl.log" ||
		fail "crm_pg_init failed" "$dir"
	(crm_pg_start "$pgdata" && crm_pg_wait "$pgport") 2>>"$dir/crmctl.log" ||
		fail "PostgreSQL did not start" "$dir"

	(
		umask 077
		cat >"$dir/crmd.ini" <<INI
; written by tests/integration/harness.sh
[server]
listen_host = 127.0.0.1
listen_port = $port
role = group
cert = $dir/certs/server.pem
key = $dir/certs/server.key
; the group CA that signs the CRL crmd serves (server.crl_listen: harness.sh
; passes it to the fixture's crmd only)
crl_ca_cert = $dir/certs/ca.pem
crl_ca_key = $dir/certs/ca.key
drain_timeout_ms = 10000
; short, so that tests/integration/test_limits.c runs quickly
handshake_timeout_ms = 1500

[db]
host = 127.0.0.1
port = $pgport
name = crm
user = crmd
password = $dbpass
admin_user = postgres
admin_password = $superpass

[log]
level = info
INI
	)

	local step
	for step in "init" "certs --dir $dir/certs --crl-url http://127.0.0.1:$crlport/group-ca.crl" "demo --logins $dir/logins.txt"; do
		# shellcheck disable=SC2086 # step is split into arguments on purpose
		printf '$ crmctl %s\n' "$step" >>"$dir/crmctl.log"
		# shellcheck disable=SC2086
		"$build/crmctl" -c "$dir/crmd.ini" $step </dev/null >>"$dir/crmctl.log" 2>&1 ||
			fail "crmctl $step failed" "$dir"
	done

	start_crmd "$dir" "$build"
	cat >"$dir/env" <<ENV
CRM_SERVER=127.0.0.1:$port
CRM_CA=$dir/certs/ca.pem
CRM_CRL_URL=http://127.0.0.1:$crlport/group-ca.crl
CRM_TEST_DIR=$dir
CRM_BUILD_DIR=$build
CRM_PG_PORT=$pgport
CRM_PG_DATA=$pgdata
CRM_PG_PASSWORD=$superpass
CRM_LOGINS=$dir/logins.txt
CRMD_CONFIG=$dir/crmd.ini
CRMD_LOG=$dir/crmd.log
CRMD_PID=$(crmd_pid "$dir")
ENV
	echo "harness: crmd listening on 127.0.0.1:$port (pid $(crmd_pid "$dir")), PostgreSQL on 127.0.0.1:$pgport; state in $dir"
}

cmd_stop() {
	local dir pgdata pid status="" rc=0
	(($# == 1)) || usage
	dir=$(abspath "$1")
	[[ -d $dir ]] || return 0
	pgdata=$(pgdata_of "$dir")
	PGDATA_DIR=$pgdata
	if crmd_alive "$dir"; then
		pid=$(crmd_pid "$dir")
		kill -TERM "$pid" 2>/dev/null || true
		if ! status=$(wait_crmd_exit "$dir" 15); then
			echo "harness: crmd (pid $pid) still runs 15 s after SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			wait_crmd_exit "$dir" 5 >/dev/null || true
			rc=1
		elif [[ $status != 0 ]]; then
			echo "harness: crmd exited with status $status after SIGTERM" >&2
			rc=1
		fi
	fi
	# Sanitizer reports anywhere in crmd's life fail the run.
	if [[ -f $dir/crmd.log ]] &&
		grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$dir/crmd.log"; then
		echo "harness: sanitizer report in $dir/crmd.log" >&2
		rc=1
	fi
	if [[ -f $pgdata/PG_VERSION ]]; then
		crm_pg_stop "$pgdata" fast 2>/dev/null || crm_pg_stop "$pgdata" immediate || true
	fi
	((rc == 0)) || show_logs "$dir"
	if [[ ${CRM_KEEP_TEST_DIR:-0} != 1 ]]; then
		rm -rf "$dir"
		if [[ $pgdata != "$dir/pg" && $pgdata == /tmp/crm-test-pg.*/pg ]]; then
			rm -rf "$(dirname "$pgdata")"
		fi
	else
		echo "harness: kept $dir (CRM_KEEP_TEST_DIR=1)"
	fi
	return "$rc"
}

need_env() {
	[[ -f $1/env ]] || {
		echo "harness: $1/env missing; run harness.sh start first" >&2
		exit 1
	}
}

cmd_pg_stop() {
	(($# == 1)) || usage
	local dir
	dir=$(abspath "$1")
	need_env "$dir"
	crm_pg_stop "$(pgdata_of "$dir")" immediate
}

cmd_pg_start() {
	(($# == 1)) || usage
	local dir
	dir=$(abspath "$1")
	need_env "$dir"
	PGDATA_DIR=$(pgdata_of "$dir")
	crm_pg_start "$PGDATA_DIR"
	crm_pg_wait "$(env_get "$dir" CRM_PG_PORT)"
}

cmd_crmd_start() {
	(($# == 1)) || usage
	local dir
	dir=$(abspath "$1")
	need_env "$dir"
	PGDATA_DIR=$(pgdata_of "$dir")
	start_crmd "$dir" "$(env_get "$dir" CRM_BUILD_DIR)"
	echo "harness: crmd serving again (pid $(crmd_pid "$dir"))"
}

cmd_crmd_kill() {
	(($# == 2)) || usage
	local dir sig pid status
	dir=$(abspath "$1")
	sig=${2#SIG}
	need_env "$dir"
	crmd_alive "$dir" || {
		echo "harness: crmd is not running" >&2
		exit 1
	}
	pid=$(crmd_pid "$dir")
	kill -s "$sig" "$pid"
	case $sig in
	TERM | INT | QUIT | KILL | 15 | 2 | 3 | 9)
		status=$(wait_crmd_exit "$dir" 30) || {
			echo "harness: crmd (pid $pid) did not exit within 30 s of SIG$sig" >&2
			exit 1
		}
		echo "exit=$status"
		;;
	esac
}

(($# >= 1)) || usage
command=$1
shift
case $command in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
pg-stop) cmd_pg_stop "$@" ;;
pg-start) cmd_pg_start "$@" ;;
crmd-start) cmd_crmd_start "$@" ;;
crmd-kill) cmd_crmd_kill "$@" ;;
*) usage ;;
esac
