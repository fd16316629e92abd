#!/usr/bin/env bash
# The permission table has one source: the handler table in server/dispatch.c.
# docs/PERMISSIONS.md must be exactly what `crmd --permissions` prints, and the
# table must name every role, including the store node's machine identity.
# Regenerate with: crmd --permissions > docs/PERMISSIONS.md
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
doc=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/docs/PERMISSIONS.md
printed=$(mktemp)
trap 'rm -f "$printed"' EXIT

passed=0 failed=0
ok() {
	passed=$((passed + 1))
	echo "ok   $1"
}
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1"
}

if "$CRM_BUILD_DIR/crmd" --permissions >"$printed"; then
	ok "crmd --permissions exits 0"
else
	not_ok "crmd --permissions exits 0"
fi

if diff -u "$doc" "$printed"; then
	ok "docs/PERMISSIONS.md is what crmd --permissions prints"
else
	not_ok "docs/PERMISSIONS.md differs from crmd --permissions (regenerate it)"
fi

header=$(grep -m1 '^| Request |' "$printed" || true)
for role in consultant sales_manager service_advisor call_center store_manager \
	group_analyst group_admin store_node; do
	if [[ $header == *"| $role |"* ]]; then
		ok "the table has a column for $role"
	else
		not_ok "the table has a column for $role"
	fi
done

# Spot checks against what dispatch() enforces, so a wrong table cannot pass
# just because the file was regenerated from it.
row() { grep -m1 "^| $1 |" "$printed" || true; }
[[ $(row customer.handover) == "| customer.handover | yes | no | own store |"* ]] &&
	ok "handover: managers only, their store" || not_ok "handover row: $(row customer.handover)"
[[ $(row customer.list) == "| customer.list | yes | own relations |"* ]] &&
	ok "customer.list: a consultant reaches own relations" ||
	not_ok "customer.list row: $(row customer.list)"
[[ $(row ping) == "| ping | no |"* ]] && ok "ping needs no login" || not_ok "ping row: $(row ping)"

echo "$passed passed, $failed failed"
((failed == 0))
