#!/usr/bin/env bash
# TLS policy of crmd, checked with OpenSSL's own client: TLS 1.3 by default,
# TLS 1.2 only with AEAD suites, nothing older, a certificate that verifies
# against the group CA.
set -uo pipefail
# shellcheck disable=SC1090
source "$CRM_TEST_ENV"
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

handshake() { # extra s_client args...; prints the session summary
	timeout 10 openssl s_client -connect "$CRM_SERVER" -CAfile "$CRM_CA" \
		-verify_return_error -brief "$@" </dev/null 2>&1
}

out=$(handshake)
if grep -q 'Protocol version: TLSv1.3' <<<"$out" && grep -q 'Verification: OK' <<<"$out"; then
	ok "default handshake is TLS 1.3 with a verified certificate"
else
	bad "default handshake: $out"
fi

out=$(handshake -tls1_2 -cipher 'ECDHE-ECDSA-AES128-GCM-SHA256')
if grep -q 'Protocol version: TLSv1.2' <<<"$out"; then
	ok "TLS 1.2 with an AEAD suite is accepted"
else
	bad "TLS 1.2 with AES-GCM: $out"
fi

for cipher in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384 ECDHE-ECDSA-AES128-SHA256; do
	out=$(handshake -tls1_2 -cipher "$cipher")
	if grep -q 'Protocol version' <<<"$out"; then
		bad "TLS 1.2 with non-AEAD $cipher was accepted"
	else
		ok "TLS 1.2 with non-AEAD $cipher is refused"
	fi
done

for old in -tls1 -tls1_1; do
	out=$(handshake "$old" -cipher 'DEFAULT:@SECLEVEL=0')
	if grep -q 'Protocol version' <<<"$out"; then
		bad "$old was accepted"
	else
		ok "$old is refused"
	fi
done

# A client that trusts another CA refuses the server.
tmp=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
	-keyout "$tmp/k.pem" -out "$tmp/ca.pem" -days 1 2>/dev/null
out=$(timeout 10 openssl s_client -connect "$CRM_SERVER" -CAfile "$tmp/ca.pem" \
	-verify_return_error -brief </dev/null 2>&1)
rm -rf "$tmp"
if grep -q 'Protocol version' <<<"$out"; then
	bad "a client trusting another CA completed the handshake"
else
	ok "a client trusting another CA refuses the server"
fi

echo "$passed passed, $failed failed"
((failed == 0))
