#!/usr/bin/env bash
# End-to-end test of crm attach as BJ01's consultant uses it: a quote (text)
# and a photo (~3 MiB PNG) attached to a follow-up, listed (table and
# --json), shown under the follow-up by followup list and customer show,
# read back byte for byte (SHA-256 checked by crm), never over an existing
# file without --force; a file over 10 MiB and a file of no accepted type
# are refused with nothing stored; another store's consultant reads
# nothing; usage errors exit 2.
# Runs under the ctest fixture "crm" (needs $CRM_TEST_ENV from harness.sh);
# the checks and helpers are in cli_lib.sh.
# shellcheck source=cli_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

consultant=bj01.consultant
outsider=sh01.consultant
if [[ -z $(password_of "$consultant") || -z $(password_of "$outsider") ]]; then
	echo "no demo logins for $consultant / $outsider" >&2
	exit 1
fi
login "$consultant" "$(password_of "$consultant")"

run --json customer add --name 附件测试 --phone "$(mobile)" --source walk-in
expect_rc "the consultant registers a customer" 0
cid=$(json customer.id)
run --json followup add "$cid" --method visit --type negotiation --content 发了报价单和展车照片
expect_rc "a follow-up to attach to" 0
fid=$(json followup.id)

# ------------------------------------------------------------ put
printf '途观L 330TSI 两驱豪华版\n落地价：246,000 元\n' >"$work/报价单.txt"
run --json attach put "$fid" "$work/报价单.txt"
expect_rc "attach put a quote" 0
expect_eq "stored" "$(json stored)" true
expect_eq "its name is the file's" "$(json attachment.name)" 报价单.txt
expect_eq "its type found from its bytes" "$(json attachment.media_type)" text/plain
expect_eq "its SHA-256" "$(json attachment.sha256)" "$(sha256sum <"$work/报价单.txt" | cut -d' ' -f1)"
quote=$(json attachment.id)

# A photo of several chunks: PNG signature, then random bytes.
{ printf '\211PNG\r\n\032\n'; head -c $((3 * 1024 * 1024 + 77)) /dev/urandom; } >"$work/photo.png"
run attach put "$fid" "$work/photo.png" --name 展车照片.png
expect_rc "attach put a photo in chunks" 0
expect_out "the photo is stored" "stored 展车照片.png"
expect_out "as an image" image/png
if [[ -z $err ]]; then ok "quiet when not on a terminal"; else not_ok "quiet when piped" "stderr: $err"; fi
photo=$(awk '/^  id /{print $2}' <<<"$out")

# Refusals: nothing is stored.
pdf_of_size() { { printf '%%PDF-1.7\n'; head -c "$(($1 - 9))" /dev/zero; } >"$2"; }
pdf_of_size $((10 * 1024 * 1024 + 1)) "$work/big.pdf"
run --json attach put "$fid" "$work/big.pdf"
expect_rc "a file over 10 MiB is refused" 6
expect_out "the refusal names the size" '"field": "attachment.size"'
expect_err "and says the limit" "10 MiB"
pdf_of_size $((10 * 1024 * 1024)) "$work/exact.pdf"
run attach put "$fid" "$work/exact.pdf"
expect_rc "exactly 10 MiB is accepted" 0
printf 'MZ\0\0\0binary' >"$work/tool.exe"
run attach put "$fid" "$work/tool.exe"
expect_rc "a file of no accepted type is refused" 6
run attach put "$fid" "$work/报价单.txt" --type image/png
expect_rc "a file that is not what --type says is refused" 6
expect_err "naming the type" image/png
run attach put "$fid"
expect_rc "put without a file is a usage error" 2
run attach put not-an-id "$work/报价单.txt"
expect_rc "put with a bad follow-up id is a usage error" 2

# ------------------------------------------------------------ list
run attach list "$fid"
expect_rc "attach list" 0
expect_out "the list has the quote" 报价单.txt
expect_out "and the photo" 展车照片.png
nlisted=$(grep -c . <<<"$out")
expect_eq "three attachments, no refused one" "$nlisted" 3
run --json attach list "$fid"
expect_rc "attach list --json" 0
expect_out "the JSON page has the photo's id" "\"id\": \"$photo\""
run followup list "$cid"
expect_rc "followup list" 0
expect_out "the follow-up shows its attachments" "attachment: 展车照片.png (3.0 MiB, image/png)"
run --json followup list "$cid"
expect_eq "followup list --json carries them" "$(json followups.attachments.name)" 报价单.txt
run customer show "$cid"
expect_rc "customer show" 0
expect_out "the card shows them under the follow-up" "attachment: 报价单.txt"

# ------------------------------------------------------------ get
cd "$work" || exit 1
mkdir -p got && cd got || exit 1
run attach get "$photo"
expect_rc "attach get under its own name" 0
if cmp -s 展车照片.png ../photo.png; then ok "the photo comes back byte for byte"; else not_ok "the photo differs"; fi
run attach get "$photo"
expect_rc "get never writes over an existing file" 5
expect_err "and says so" "--force"
run attach get "$photo" --force
expect_rc "get --force replaces it" 0
run --json attach get "$quote" -o "$work/quote-copy.txt"
expect_rc "get -o FILE --json" 0
expect_eq "the JSON is the attachment" "$(json sha256)" "$(sha256sum <"$work/报价单.txt" | cut -d' ' -f1)"
if cmp -s "$work/quote-copy.txt" "$work/报价单.txt"; then ok "the quote comes back"; else not_ok "the quote differs"; fi
rc=0
"$crm" attach get "$quote" -o - >"$work/stdout-copy.txt" 2>"$work/err" || rc=$?
expect_rc "get -o - to standard output" 0
if cmp -s "$work/stdout-copy.txt" "$work/报价单.txt"; then ok "standard output has the bytes"; else not_ok "standard output differs"; fi
ls -a >"$work/listing"
if grep -q '\.part-' "$work/listing"; then not_ok "no partial file is left" "$(cat "$work/listing")"; else ok "no partial file is left"; fi
cd "$work" || exit 1
run attach get 0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6e -o "$work/none"
expect_rc "an unknown attachment is not found" 3
run attach get
expect_rc "get without an id is a usage error" 2

# ------------------------------------------------------------ another store
login "$outsider" "$(password_of "$outsider")"
run --json attach get "$photo" -o "$work/stolen.png"
expect_rc "another store's consultant cannot read it" 3
if [[ -e $work/stolen.png ]]; then not_ok "nothing was written for them"; else ok "nothing was written for them"; fi
run --json attach list "$fid"
expect_rc "their list is empty" 0
if [[ $out == *"$photo"* ]]; then not_ok "the list hides the photo" "$out"; else ok "the list hides the photo"; fi
run attach put "$fid" "$work/报价单.txt"
expect_rc "they cannot attach to it" 3

echo "$passed passed, $failed failed"
((failed == 0))
