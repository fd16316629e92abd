# shellcheck shell=bash
# Shared functions for dealercrm's shell scripts (ops/, tests/integration/).
# Source it; it does not change shell options of its own.

# The checkout this file belongs to.
CRM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build, the tests and ops/run need.
CRM_DEPS=(
	build-essential cmake pkg-config
	libuv1-dev libprotobuf-c-dev protobuf-c-compiler libpq-dev libssl-dev
	libsodium-dev libinih-dev libncursesw5-dev
	postgresql postgresql-contrib
	openssl ca-certificates procps iproute2 util-linux
	testssl.sh
)

crm_log() { printf '%s\n' "$*" >&2; }
crm_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
crm_as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		crm_die "need root to run: $* (no sudo found; run this as root)"
	fi
}

# Installs the Debian packages in CRM_DEPS that are missing. Runs apt-get update
# only when something is missing, so a machine that has everything stays offline.
crm_install_deps() {
	local missing=() pkg status
	for pkg in "${CRM_DEPS[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
		[[ $status == installed ]] || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	crm_log "installing Debian packages: ${missing[*]}"
	crm_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
		crm_die "apt-get update failed"
	crm_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null ||
		crm_die "apt-get install failed for: ${missing[*]}"
}

# crm_build DIR [cmake args...]: configures and builds the checkout into DIR.
crm_build() {
	local dir=$1
	shift
	cmake -S "$CRM_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
		cmake --build "$dir" -j "${CRM_JOBS:-$(nproc)}"
}

# The bin directory of the newest PostgreSQL server installed.
crm_pg_bin() {
	local dir best="" bestv=0 v
	for dir in /usr/lib/postgresql/*/bin; do
		[[ -x $dir/initdb ]] || continue
		v=${dir#/usr/lib/postgresql/}
		v=${v%%/*}
		[[ $v =~ ^[0-9]+$ ]] || continue
		if ((v > bestv)); then
			bestv=$v
			best=$dir
		fi
	done
	[[ -n $best ]] || crm_die "no PostgreSQL server found under /usr/lib/postgresql (install the postgresql package)"
	printf '%s\n' "$best"
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses to run
# as root), else as ourselves. As root it runs from / so that a current directory
# the postgres user cannot enter does not matter: pass absolute paths.
crm_run_as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# A TCP port that no socket on this machine uses, below the kernel's ephemeral
# range so that outgoing connections do not take it before we bind it.
crm_free_port() {
	local used port i
	local hex
	used=$(awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u |
		while read -r hex; do printf '%d\n' "$((16#$hex))"; done)
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		if ! grep -qx "$port" <<<"$used"; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	crm_die "found no free TCP port"
}

# Random hex secret (no dependency beyond coreutils).
crm_random_secret() {
	od -An -N"${1:-20}" -tx1 /dev/urandom | tr -d ' \n'
}

# Succeeds when the postgres user can reach DIR (every parent traversable).
# Otherwise names the first directory in the way on stderr.
crm_pg_can_reach() {
	local dir=$1 d
	[[ $(id -u) -eq 0 ]] || return 0
	d=$dir
	while [[ ! -e $d ]]; do d=$(dirname "$d"); done
	[[ -d $d ]] || d=$(dirname "$d")
	local path=""
	local IFS=/
	local part
	for part in $d; do
		[[ -z $part ]] && continue
		path+="/$part"
		if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
			printf '%s\n' "$path" >&2
			return 1
		fi
	done
	return 0
}

# The port a cluster made by crm_pg_init listens on.
crm_pg_port() {
	local conf=$1/postgresql.conf
	[[ -r $conf ]] || crm_die "$conf: not found (no cluster at $1?)"
	sed -n 's/^port = \([0-9]*\).*/\1/p' "$conf" | tail -n 1
}

# crm_pg_init DATADIR PORT SUPERPASS: a new cluster in DATADIR (which must be
# missing or empty) whose superuser "postgres" has password SUPERPASS, listening on
# 127.0.0.1:PORT only, with its Unix socket in DATADIR.
crm_pg_init() {
	local data=$1 port=$2 pass=$3 bin blocker pwfile sockdir
	[[ $data == /* ]] || data=$PWD/$data
	bin=$(crm_pg_bin)
	mkdir -p "$(dirname "$data")"
	if ! blocker=$(crm_pg_can_reach "$(dirname "$data")" 2>&1); then
		crm_die "the postgres user cannot reach $data: $blocker is not traversable (run: chmod o+x $blocker, or put the cluster elsewhere)"
	fi
	mkdir -p "$data"
	if [[ -n $(ls -A "$data") ]]; then
		crm_die "$data: not empty; refusing to initdb over it"
	fi
	chmod 700 "$data"
	pwfile=$(mktemp)
	printf '%s\n' "$pass" >"$pwfile"
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres:postgres "$data" "$pwfile"
	fi
	if ! crm_run_as_pg "$bin/initdb" -D "$data" -U postgres -A scram-sha-256 \
		--pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --no-instructions >"$data.initdb.log" 2>&1; then
		rm -f "$pwfile"
		cat "$data.initdb.log" >&2
		crm_die "initdb failed for $data"
	fi
	rm -f "$pwfile" "$data.initdb.log"
	# A Unix socket path is limited to 107 bytes; past that, TCP only.
	sockdir=$data
	if ((${#data} > 90)); then sockdir=""; fi
	cat >>"$data/postgresql.conf" <<CONF

# --- dealercrm (ops/lib.sh crm_pg_init) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
shared_buffers = 128MB
max_connections = 100
fsync = on
# A write's commit flushes its WAL while it holds the outbox counter (one
# row, locked until commit), so WAL volume is write throughput: full-page
# images compressed, 31 -> 12 KiB a follow-up with its next task.
wal_compression = lz4
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
CONF
}

crm_pg_running() {
	crm_run_as_pg "$(crm_pg_bin)/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# crm_pg_start DATADIR: starts the cluster (log in DATADIR/server.log) unless it
# runs already, and waits until it accepts connections.
crm_pg_start() {
	local data=$1
	crm_pg_running "$data" && return 0
	if ! crm_run_as_pg "$(crm_pg_bin)/pg_ctl" -D "$data" -l "$data/server.log" \
		-w -t 60 start >/dev/null; then
		tail -n 50 "$data/server.log" >&2 2>/dev/null || true
		crm_die "PostgreSQL in $data did not start"
	fi
}

# crm_pg_stop DATADIR [MODE]: stops the cluster (fast mode unless MODE given).
crm_pg_stop() {
	local data=$1 mode=${2:-fast}
	crm_pg_running "$data" || return 0
	crm_run_as_pg "$(crm_pg_bin)/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
}

# crm_pg_wait PORT: waits (up to 30 s) until PostgreSQL on 127.0.0.1:PORT accepts
# connections.
crm_pg_wait() {
	local port=$1 i bin
	bin=$(crm_pg_bin)
	for ((i = 0; i < 60; i++)); do
		"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 && return 0
		sleep 0.5
	done
	crm_die "PostgreSQL on 127.0.0.1:$port is not accepting connections after 30 s"
}
