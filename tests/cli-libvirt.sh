#!/bin/sh
# cli-libvirt.sh: the netext-deploy command line against libvirt's test
# driver (a node file shipped in examples/; its state lives in one process).
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
nx_tmpdir
trap 'rm -rf "$NX_TMP"' EXIT
ND=$NETEXT_DEPLOY
NODE="test://$top_srcdir/examples/testnode.xml"
ACME=$top_srcdir/examples/acme.xml
SEED=$top_srcdir/examples/seed.xml

# --- usage and help ------------------------------------------------------
expect_exit 0 "--help" "$ND" --help
for word in subscribe unsubscribe status validate --tenant --connect --dry-run --json \
    --verbose --quiet --credentials --cacert --thumbprint --insecure --timeout --version; do
    check "--help mentions $word" grep -q -e "$word" "$NX_TMP/out"
done
expect_exit 0 "--version" "$ND" --version
check "--version lists the libvirt provider" grep -q "libvirt" "$NX_TMP/out"
expect_exit 64 "no command" "$ND"
expect_exit 64 "unknown command" "$ND" frobnicate "$ACME"
expect_exit 64 "unknown option" "$ND" --frob subscribe "$ACME"
expect_exit 64 "no plan" "$ND" subscribe
expect_exit 64 "unsubscribe needs --tenant" "$ND" unsubscribe "$SEED"
expect_exit 64 "subscribe of a plan with 2 tenants needs --tenant" "$ND" --connect "$NODE" subscribe "$SEED"
expect_exit 66 "missing plan file" "$ND" validate /nonexistent.xml
expect_exit 65 "tenant not in the plan" "$ND" --connect "$NODE" subscribe --tenant nobody "$SEED"

# --- validation: bad input changes nothing, not even a connection ---------
expect_exit 0 "validate a good plan" "$ND" validate "$ACME"
check "validate counts the appliances" grep -q "1 provider-side appliances" "$NX_TMP/out"
bad=$top_srcdir/tests/data/bad/port-22.xml
expect_exit 65 "port 22 is refused" "$ND" --connect "qemu+tcp://127.0.0.1:1/system" subscribe "$bad"
check "error names file and line" grep -q "port-22.xml:10: .*port 22 is reserved" "$NX_TMP/err"
check "no connection was attempted" sh -c "! grep -q -i connect '$NX_TMP/err'"
expect_exit 65 "--json on an invalid plan" "$ND" --json validate "$bad"
check_json "invalid result is JSON" "not (d['result']!='invalid' or d['exit_code']!=65 or not d['problems'])"

truncate -s 257M "$NX_TMP/huge.xml"
expect_exit 65 "a plan over 256 MiB is refused before it is read" "$ND" validate "$NX_TMP/huge.xml"
check "says why" grep -q "huge.xml:0: plan is larger than 256 MiB" "$NX_TMP/err"
rm -f "$NX_TMP/huge.xml"
expect_exit 65 "entity expansion (billion laughs) is refused" "$ND" validate "$top_srcdir/tests/data/bad/billion-laughs.xml"
check "DOCTYPE refused with its line" grep -q "billion-laughs.xml:2: a DOCTYPE is not allowed" "$NX_TMP/err"

# --- deploy, dry run, JSON, status -----------------------------------------
expect_exit 0 "dry run" "$ND" --connect "$NODE" --dry-run subscribe "$ACME"
check "dry run says what would be created" grep -q "^would create .*netext-acme-esx1.*6 vNICs" "$NX_TMP/out"
check "dry run changes nothing" grep -q "nothing changed" "$NX_TMP/out"
expect_exit 0 "subscribe" "$ND" --connect "$NODE" subscribe "$ACME"
check "subscribe created the appliance" grep -q "^create .*netext-acme-esx1 (tenant acme, host esx1): 6 vNICs" "$NX_TMP/out"
check "and powered it on" grep -q "^power-on .*netext-acme-esx1" "$NX_TMP/out"
check "summary line" grep -q "subscribe: 2 changes made, 0 failed" "$NX_TMP/out"
expect_exit 0 "subscribe --json" "$ND" --connect "$NODE" --json subscribe "$ACME"
check_json "JSON result: changed, 2 changes, create+power-on done" \
    "d['result']=='changed' and d['changes']==2 and [(a['action'],a['status']) for a in d['actions']]==[('create','done'),('power-on','done')]"
check "JSON mode keeps stdout to the document" sh -c "test \$(wc -l < '$NX_TMP/out') = 1"
expect_exit 0 "status" "$ND" --connect "$NODE" status "$SEED"
check "status lists every appliance as missing" sh -c "test \$(grep -c ' missing' '$NX_TMP/out') = 3"
expect_exit 0 "unsubscribe (nothing there in a fresh test driver)" "$ND" --connect "$NODE" unsubscribe --tenant acme "$ACME"
check "unsubscribe says up to date" grep -q "up to date" "$NX_TMP/out"

# --- hypervisor errors ------------------------------------------------------
expect_exit 69 "unreachable hypervisor" "$ND" --connect "qemu+tcp://127.0.0.1:1/system" subscribe "$ACME"
check "error names the host" grep -q "host 'esx1'" "$NX_TMP/err"
sed 's/vlan-switch="tenant-vlans"/vlan-switch="no-such-net"/' "$ACME" > "$NX_TMP/badnet.xml"
expect_exit 65 "placement refused (unknown network)" "$ND" --connect "$NODE" subscribe "$NX_TMP/badnet.xml"
check "refusal names the network" grep -q "no-such-net' does not exist" "$NX_TMP/err"
check "refusal: nothing created" sh -c "! grep -q '^create' '$NX_TMP/out'"

# --- the appliance image ----------------------------------------------------
mkdir -p "$NX_TMP/isodir" && echo appliance > "$NX_TMP/isodir/README"
if command -v xorriso >/dev/null 2>&1 &&
    xorriso -as mkisofs -quiet -o "$NX_TMP/app.iso" "$NX_TMP/isodir" 2>/dev/null; then
    id=$(sha256sum "$NX_TMP/app.iso" | cut -c1-16)
    expect_exit 0 "dry run with --image" "$ND" --connect "$NODE" --image "$NX_TMP/app.iso" -n subscribe "$ACME"
    check "the create line names the image by its digest" grep -q "^would create .*; image netext-appliance-$id.iso" "$NX_TMP/out"
    check "no warning about a missing image" sh -c "! grep -q 'no appliance image' '$NX_TMP/err'"
    sed "s|<defaults |<defaults image=\"app.iso\" |" "$ACME" > "$NX_TMP/acme-img.xml"
    expect_exit 0 "<defaults image=> relative to the plan" "$ND" --connect "$NODE" -n subscribe "$NX_TMP/acme-img.xml"
    check "the plan's image is used" grep -q "; image netext-appliance-$id.iso" "$NX_TMP/out"
    expect_exit 0 "--no-image overrides the plan" "$ND" --connect "$NODE" --no-image -n subscribe "$NX_TMP/acme-img.xml"
    check "no image with --no-image" sh -c "! grep -q 'image netext-appliance' '$NX_TMP/out'"
    sed "s|<defaults |<defaults image=\"missing.iso\" |" "$ACME" > "$NX_TMP/acme-noimg.xml"
    expect_exit 66 "a plan's image that does not exist" "$ND" --connect "$NODE" subscribe "$NX_TMP/acme-noimg.xml"
    check "names the plan's line and the file" grep -q "acme-noimg.xml:8: appliance image .*missing.iso: No such file" "$NX_TMP/err"
    check "nothing was created" sh -c "! grep -q '^create' '$NX_TMP/out'"
    printf 'not an ISO' > "$NX_TMP/bad.iso"
    expect_exit 65 "--image that is not an ISO 9660 image" "$ND" --connect "$NODE" --image "$NX_TMP/bad.iso" subscribe "$ACME"
    check "says so" grep -q "bad.iso: not an ISO 9660 image" "$NX_TMP/err"
else
    echo "SKIP: xorriso is not installed: the --image checks"
fi
expect_exit 0 "no image anywhere" "$ND" --connect "$NODE" -n subscribe "$ACME"
check "warns that new appliances boot nothing" grep -q "no appliance image .*boot nothing" "$NX_TMP/err"

# --- credentials: never from argv, file must be private, never printed ------
canary="canary-$$-Zq8"
printf 'user = admin\npassword = %s\n' "$canary" > "$NX_TMP/creds"
chmod 644 "$NX_TMP/creds"
expect_exit 77 "credentials file readable by others" "$ND" --connect "$NODE" --credentials "$NX_TMP/creds" subscribe "$ACME"
check "says how to fix it" grep -q "chmod 600" "$NX_TMP/err"
chmod 600 "$NX_TMP/creds"
expect_exit 0 "private credentials file" "$ND" -vv --connect "$NODE" --credentials "$NX_TMP/creds" --json subscribe "$ACME"
check "canary password not in stdout or stderr" sh -c "! grep -q '$canary' '$NX_TMP/out' '$NX_TMP/err'"
NETEXT_DEPLOY_PASSWORD=$canary expect_exit 0 "password from the environment" "$ND" -vv --connect "$NODE" subscribe "$ACME"
check "canary (env) not in any output" sh -c "! grep -q '$canary' '$NX_TMP/out' '$NX_TMP/err'"
expect_exit 64 "no --password option exists" "$ND" --password x subscribe "$ACME"

finish
