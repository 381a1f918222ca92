#!/bin/sh
# vsphere-fake.sh: the vSphere provider against a scripted SOAP endpoint
# (tests/data/soap/fake_vsphere.py, answers recorded from vcsim) for what
# vcsim does not do: paged inventories, NotAuthenticated inside missingSet,
# truncated, garbage, non-SOAP and late answers, and reads retried after
# transient failures (503, truncated answer, dropped connection).
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"

require_provider vsphere
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip_all "python3 not found"
nx_tmpdir
export NETEXT_DEPLOY_STATE_DIR="$NX_TMP/state"
SERVER_PID=
stop_server() {
    nx_stop $SERVER_PID
    SERVER_PID=
}
trap 'stop_server; rm -rf "$NX_TMP"' EXIT INT TERM
umask 077
printf 'user = netext\npassword = fake-secret\n' >"$NX_TMP/credentials"

# start MODE: sets URI
start() {
    stop_server
    rm -f "$NX_TMP/port" "$NX_TMP/requests"
    "$PY" "$top_srcdir/tests/data/soap/fake_vsphere.py" "$1" "$NX_TMP/port" "$NX_TMP/requests" \
        2>"$NX_TMP/server.err" &
    SERVER_PID=$!
    i=0
    while [ ! -s "$NX_TMP/port" ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    URI="vsphere+http://127.0.0.1:$(cat "$NX_TMP/port")/sdk"
    cat >"$NX_TMP/plan.xml" <<EOF
<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">
  <gateway address="gw.example.com"/>
  <host name="esx1" uri="$URI" target="DC0_H0" production-network="VM Network"/>
  <hardware-plan name="p" host="esx1"><network name="web" vlan="101"/></hardware-plan>
  <tenant name="acme"><subscribe plan="p"/></tenant>
</netext-plan>
EOF
}
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" "$@"; }
count() { grep -cx "$1" "$NX_TMP/requests"; }

start page
expect_exit 0 "paged inventory: status" ND status "$NX_TMP/plan.xml"
check "paged inventory: the continuation was fetched" test "$(count ContinueRetrievePropertiesEx)" = 1
check "paged inventory: objects of both pages used (appliance missing, no error)" \
    grep -q "netext-acme-esx1 .*missing" "$NX_TMP/out"
check "plain HTTP is warned about" grep -q "plain HTTP" "$NX_TMP/err"

start missingset
expect_exit 0 "NotAuthenticated in missingSet: status" ND -v status "$NX_TMP/plan.xml"
check "missingSet: logged in again" test "$(count Login)" = 2
check "missingSet: said so" grep -q "logging in again" "$NX_TMP/err"

for mode in truncated garbage; do
    start $mode
    expect_exit 76 "$mode inventory answer is a protocol error" ND -v status "$NX_TMP/plan.xml"
    check "$mode: reported as malformed" grep -q "RetrievePropertiesEx.*malformed XML" "$NX_TMP/err"
    check "$mode: a read is retried 3 times, not more" \
        sh -c "grep -q 'retry 3/3' '$NX_TMP/err' && ! grep -q 'retry 4/' '$NX_TMP/err'"
done

# transient failures of a read: retried with backoff (docs/internals/vsphere.md, Retries)
for mode in flaky503 flakytrunc flakydrop; do
    start $mode
    expect_exit 0 "$mode: the inventory read succeeds on a retry" ND -v status "$NX_TMP/plan.xml"
    reads=2
    [ $mode = flakydrop ] && reads=3
    check "$mode: read $reads times" test "$(count RetrievePropertiesEx)" = $reads
    check "$mode: the retry is logged" grep -q "RetrievePropertiesEx: .*retry 1/3 in [0-9]* ms" \
        "$NX_TMP/err"
done

start html
expect_exit 76 "a non-SOAP 503 page is a protocol error" ND status "$NX_TMP/plan.xml"
check "503: the status is named" grep -q "HTTP 503" "$NX_TMP/err"

start slow
expect_exit 69 "a late answer times out (--timeout 1)" ND --timeout 1 status "$NX_TMP/plan.xml"
check "timeout: said so" grep -qi "timed out\|timeout" "$NX_TMP/err"

check "the password never appears in any output" sh -c "! grep -q fake-secret '$NX_TMP/out' '$NX_TMP/err'"
stop_server
finish
