#!/usr/bin/env bash
# The group CA's CRL that crmd publishes over HTTP (server.crl_listen, here
# the fixture's crmd): the server certificate names it, curl fetches it, it is
# signed by the group CA (and not by another), a certificate revoked with
# crmctl appears in it within a few seconds and then fails a CRL check, and
# the listener refuses everything else: wrong path 404, POST and HEAD 405,
# bad or oversized requests 400 and cut off, one request per connection, at
# most 64 connections, idle ones closed after 5 s. It keeps serving the last
# CRL while PostgreSQL is down and publishes fresh ones when it is back.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh).
set -uo pipefail

[[ -n ${CRM_TEST_ENV:-} && -f $CRM_TEST_ENV ]] || {
	echo "CRM_TEST_ENV is not set or missing; run through ctest (fixture crm)" >&2
	exit 1
}
set -a
# shellcheck source=/dev/null
source "$CRM_TEST_ENV"
set +a
crmctl=$CRM_BUILD_DIR/crmctl
url=$CRM_CRL_URL
hostport=${url#http://}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
base=http://$hostport
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
check() { # NAME COMMAND...: ok when COMMAND succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name" "command: $*"; fi
}

# fetch FILE [curl args...]: GET the CRL into FILE; prints "CODE TYPE SIZE".
fetch() {
	local file=$1
	shift
	curl -sS --max-time 10 -o "$file" -w '%{http_code} %{content_type} %{size_download}' \
		"$@" "$url" 2>"$work/curl.err"
}

# serials FILE: the revoked serials of a DER CRL, one a line.
serials() {
	openssl crl -inform DER -in "$1" -noout -text 2>/dev/null |
		sed -n 's/^ *Serial Number: *\([0-9A-Fa-f]*\).*/\1/p'
}

# raw TEXT: sends TEXT (printf format) on a new connection and prints what
# comes back until crmd closes it (at most 8 s).
raw() {
	local fd
	exec {fd}<>"/dev/tcp/$host/$port" || return 1
	# shellcheck disable=SC2059 # the request is the format on purpose
	printf "$1" >&"$fd"
	timeout 8 cat <&"$fd"
	local rc=$?
	exec {fd}>&-
	return $rc
}

status_of() { head -n 1 | tr -d '\r' | awk '{print $2}'; }

# ---------------------------------------------------------------- the CRL

cdp=$(openssl x509 -in "$CRM_TEST_DIR/certs/server.pem" -noout -ext crlDistributionPoints 2>&1)
if grep -qF "URI:$url" <<<"$cdp"; then
	ok "the server certificate names the CRL at $url"
else
	not_ok "the server certificate names the CRL" "$cdp"
fi

got=$(fetch "$work/a.crl")
read -r code type size <<<"$got"
if [[ $code == 200 && $type == application/pkix-crl && $size -gt 0 &&
	$size == $(stat -c %s "$work/a.crl") ]]; then
	ok "GET $url: 200 application/pkix-crl, $size bytes"
else
	not_ok "GET $url" "got: $got" "$(cat "$work/curl.err")"
fi

out=$(openssl crl -inform DER -in "$work/a.crl" -CAfile "$CRM_CA" -noout 2>&1)
if grep -q 'verify OK' <<<"$out"; then
	ok "the CRL's signature verifies with the group CA"
else
	not_ok "openssl crl -CAfile group CA" "$out"
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
	-keyout "$work/other.key" -out "$work/other.pem" -days 1 2>/dev/null
out=$(openssl crl -inform DER -in "$work/a.crl" -CAfile "$work/other.pem" -noout 2>&1)
if grep -q 'verify OK' <<<"$out"; then
	not_ok "a CRL check against another CA fails" "$out"
else
	ok "a CRL check against another CA fails"
fi

text=$(openssl crl -inform DER -in "$work/a.crl" -noout -text 2>&1)
issuer=$(openssl crl -inform DER -in "$work/a.crl" -noout -issuer 2>&1)
ca_subject=$(openssl x509 -in "$CRM_CA" -noout -subject 2>&1)
next=$(openssl crl -inform DER -in "$work/a.crl" -noout -nextupdate 2>&1)
next_s=$(date -d "${next#nextUpdate=}" +%s 2>/dev/null || echo 0)
if [[ ${issuer#issuer=} == "${ca_subject#subject=}" ]] && grep -q 'Version 2' <<<"$text" &&
	grep -q 'X509v3 CRL Number' <<<"$text" && grep -q 'X509v3 Authority Key Identifier' <<<"$text" &&
	((next_s > $(date +%s) + 3600)); then
	ok "the CRL is a v2 CRL of the group CA with CRL Number and AKI, next update $next"
else
	not_ok "CRL fields" "$issuer" "$ca_subject" "$next" "$text"
fi

# ---------------------------------------------------------------- revocation

out=$("$crmctl" -c "$CRMD_CONFIG" certs store GZ01 --dir "$CRM_TEST_DIR/certs" --out "$work" \
	--days 2 </dev/null 2>&1)
serial=$(sed -n 's/.*serial \([0-9A-F]*\);.*/\1/p' <<<"$out")
if [[ -n $serial && -s $work/store-GZ01.pem ]]; then
	ok "crmctl certs store GZ01 issued serial $serial"
else
	not_ok "crmctl certs store GZ01" "$out"
fi

# crl_check FILE: openssl verify -crl_check of the store certificate.
crl_check() {
	openssl crl -inform DER -in "$1" -out "$work/crl.pem" 2>/dev/null
	cat "$CRM_CA" "$work/crl.pem" >"$work/ca+crl.pem"
	openssl verify -crl_check -CAfile "$work/ca+crl.pem" "$work/store-GZ01.pem" 2>&1
}

fetch "$work/b.crl" >/dev/null
if ! serials "$work/b.crl" | grep -qx "$serial"; then
	ok "the new serial is not in the CRL before it is revoked"
else
	not_ok "serial listed before revocation"
fi
out=$(crl_check "$work/b.crl")
if grep -q ': OK' <<<"$out"; then
	ok "the store certificate passes a CRL check before it is revoked"
else
	not_ok "CRL check before revocation" "$out"
fi

out=$("$crmctl" -c "$CRMD_CONFIG" certs revoke "$serial" --reason 'test_crl' </dev/null 2>&1)
grep -q "revoked certificate $serial" <<<"$out" || not_ok "crmctl certs revoke $serial" "$out"
t0=$(date +%s%N)
listed=no
for ((i = 0; i < 40; i++)); do
	fetch "$work/c.crl" >/dev/null
	if serials "$work/c.crl" | grep -qx "$serial"; then
		listed=yes
		break
	fi
	sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
if [[ $listed == yes ]] && ((ms < 3000)); then
	ok "the revoked serial is in the CRL $ms ms after crmctl certs revoke"
else
	not_ok "revoked serial in the CRL (listed=$listed after $ms ms)" "$(serials "$work/c.crl")"
fi
out=$(crl_check "$work/c.crl")
if grep -q 'certificate revoked' <<<"$out"; then
	ok "the revoked store certificate fails a CRL check"
else
	not_ok "CRL check after revocation" "$out"
fi
out=$(openssl crl -inform DER -in "$work/c.crl" -CAfile "$CRM_CA" -noout 2>&1)
check "the new CRL verifies too" grep -q 'verify OK' <<<"$out"

# ---------------------------------------------------------------- refusals

# http_code ARGS...: the status curl saw.
http_code() { curl -s --max-time 10 -o "$work/body" -w '%{http_code}' "$@"; }

for path in / /group-ca.crl/ /group-ca.crl?x=1 /GROUP-CA.CRL /../group-ca.crl /ca.pem; do
	code=$(http_code --path-as-is "$base$path")
	if [[ $code == 404 ]]; then ok "GET $path: 404"; else not_ok "GET $path: 404" "got $code"; fi
done
code=$(http_code -D "$work/headers" -X POST --data 'x=1' "$url")
if [[ $code == 405 ]] && grep -qi '^Allow: GET' "$work/headers"; then
	ok "POST: 405 with Allow: GET"
else
	not_ok "POST: 405" "got $code" "$(cat "$work/headers")"
fi
code=$(raw 'POST /group-ca.crl HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\na\nb\n' | status_of)
check "POST with a body of bare LFs: 405 (a body is not parsed)" test "$code" = 405
code=$(http_code -I "$url")
check "HEAD: 405" test "$code" = 405

pad=$(head -c 3000 /dev/zero | tr '\0' a)
code=$(http_code -H "X-Pad: $pad" "$url")
check "a 3,000-byte request head: 400" test "$code" = 400

# An endless request is cut off: crmd reads 2 KiB, answers 400, drops at most
# 64 KiB more and closes, so a 64 MiB write fails long before it is done.
exec {big}<>"/dev/tcp/$host/$port"
if (set -o pipefail; yes 'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -c 67108864 >&"$big") \
	2>/dev/null; then
	not_ok "an endless request is cut off" "64 MiB were written without error"
else
	ok "an endless request is cut off (the 64 MiB write fails)"
fi
exec {big}>&-

declare -A bad=(
	["bare LF line ends"]='GET /group-ca.crl HTTP/1.0\n\n'
	["HTTP/1.1 without Host"]='GET /group-ca.crl HTTP/1.1\r\n\r\n'
	["two Host headers"]='GET /group-ca.crl HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'
	["HTTP/2.0"]='GET /group-ca.crl HTTP/2.0\r\nHost: a\r\n\r\n'
	["HTTP/0.9 request line"]='GET /group-ca.crl\r\n\r\n'
	["a folded header"]='GET /group-ca.crl HTTP/1.1\r\nHost: a\r\n  b\r\n\r\n'
	["a space before the colon"]='GET /group-ca.crl HTTP/1.1\r\nHost : a\r\n\r\n'
	["a GET with a body"]='GET /group-ca.crl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc'
	["an absolute URL"]='GET http://a/group-ca.crl HTTP/1.1\r\nHost: a\r\n\r\n'
	["two spaces in the request line"]='GET  /group-ca.crl HTTP/1.1\r\nHost: a\r\n\r\n'
)
for name in "${!bad[@]}"; do
	code=$(raw "${bad[$name]}" | status_of)
	if [[ $code == 400 ]]; then ok "$name: 400"; else not_ok "$name: 400" "got '$code'"; fi
done

out=$(raw 'GET /group-ca.crl HTTP/1.0\r\n\r\n' | head -c 300 | tr -d '\r')
if [[ $(status_of <<<"$out") == 200 ]] && grep -q '^Connection: close' <<<"$out"; then
	ok "HTTP/1.0 without Host: 200, Connection: close"
else
	not_ok "HTTP/1.0 GET" "$out"
fi

# Two requests in one write, keep-alive asked for: one answer, then close.
req='GET /group-ca.crl HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n'
raw "$req$req" >"$work/two"
rc=$?
n=$(grep -ac '^HTTP/1.1 ' "$work/two")
if ((rc == 0 && n == 1)); then
	ok "one request per connection: two pipelined requests get one answer, then close"
else
	not_ok "one request per connection" "cat exit $rc, $n status lines"
fi

# ---------------------------------------------------------------- limits

# 70 idle connections: 64 are held (the limit), the rest closed at once, and
# the held ones are closed 5 s later for not sending a request.
fds=()
for ((i = 0; i < 70; i++)); do
	exec {fd}<>"/dev/tcp/$host/$port"
	fds+=("$fd")
done
t0=$SECONDS
sleep 0.5
held=0 closed=0
for fd in "${fds[@]}"; do
	read -r -t 0.05 -u "$fd" _
	if (($? > 128)); then held=$((held + 1)); else closed=$((closed + 1)); fi
done
if ((held == 64 && closed == 6)); then
	ok "70 connections: 64 held, 6 closed at once"
else
	not_ok "connection limit" "held $held, closed $closed"
fi
code=$(http_code "$url")
check "a 71st connection while 64 are held gets no answer" test "$code" != 200
s=$((7 - (SECONDS - t0)))
((s > 0)) && sleep "$s"
left=0
for fd in "${fds[@]}"; do
	read -r -t 0.05 -u "$fd" _
	(($? > 128)) && left=$((left + 1))
	exec {fd}>&-
done
check "idle connections are closed after 5 s (open after 6 s: $left)" test "$left" = 0
code=$(http_code "$url")
check "served again once they are gone" test "$code" = 200

# ---------------------------------------------------------------- configuration

# start_fails NAME WANT SETS...: crmd with the fixture's configuration, its
# TLS port anywhere free, and SETS refuses to start, saying WANT.
start_fails() {
	local name=$1 want=$2 args=() set
	shift 2
	for set in "$@"; do args+=(--set "$set"); done
	out=$(timeout 20 "$CRM_BUILD_DIR/crmd" -c "$CRMD_CONFIG" --set server.listen_port=0 \
		"${args[@]}" 2>&1 </dev/null)
	rc=$?
	if ((rc != 0 && rc != 124)) && grep -qF "$want" <<<"$out"; then
		ok "$name: crmd refuses to start: $want"
	else
		not_ok "$name" "exit $rc" "$(grep -v '^ts=' <<<"$out" | head -n 5)"
	fi
}
start_fails "CRL port taken" "server.crl_listen: cannot listen on $hostport" \
	"server.crl_listen=$hostport"
start_fails "CRL listen not HOST:PORT" "server.crl_listen: expected HOST:PORT" \
	"server.crl_listen=7444"
start_fails "missing CA key" "server.crl_ca_key: cannot read $work/none.key" \
	"server.crl_listen=127.0.0.1:1" "server.crl_ca_key=$work/none.key"
start_fails "a key that is not the CA's" "is not the key of server.crl_ca_cert" \
	"server.crl_listen=127.0.0.1:1" "server.crl_ca_key=$CRM_TEST_DIR/certs/server.key"
start_fails "a certificate that is not a CA" "is not a CA certificate allowed to sign CRLs" \
	"server.crl_listen=127.0.0.1:1" "server.crl_ca_cert=$CRM_TEST_DIR/certs/server.pem" \
	"server.crl_ca_key=$CRM_TEST_DIR/certs/server.key"

# ---------------------------------------------------------------- database down

bash "$CRM_HARNESS" pg-stop "$CRM_TEST_DIR" >/dev/null 2>&1
sleep 1.2
got=$(fetch "$work/d.crl")
# The CRL made before the database went away: a newer one proves it is back.
before=$(openssl crl -inform DER -in "$work/d.crl" -noout -lastupdate 2>&1)
if [[ ${got%% *} == 200 ]] && serials "$work/d.crl" | grep -qx "$serial"; then
	ok "PostgreSQL down: the last CRL is still served ($before)"
else
	not_ok "CRL while PostgreSQL is down" "got: $got"
fi
got=$(fetch "$work/d2.crl")
if [[ ${got%% *} == 200 ]] && cmp -s "$work/d.crl" "$work/d2.crl"; then
	ok "PostgreSQL down: the same CRL again, not a new one"
else
	not_ok "second CRL while PostgreSQL is down" "got: $got"
fi
bash "$CRM_HARNESS" pg-start "$CRM_TEST_DIR" >/dev/null 2>&1
fresh=no
for ((i = 0; i < 60; i++)); do
	sleep 1.1
	fetch "$work/e.crl" >/dev/null
	after=$(openssl crl -inform DER -in "$work/e.crl" -noout -lastupdate 2>/dev/null)
	if [[ -n $after && $after != "$before" ]] &&
		serials "$work/e.crl" | grep -qx "$serial"; then
		fresh=yes
		break
	fi
done
check "PostgreSQL back: a fresh CRL is published ($after)" test "$fresh" = yes

kill -0 "$CRMD_PID" 2>/dev/null
check "crmd is still running" test $? = 0

echo "$passed passed, $failed failed"
((failed == 0))
