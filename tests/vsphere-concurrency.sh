#!/bin/sh
# vsphere-concurrency.sh: the vSphere provider under -j (concurrent calls on
# one connection): a batch of 48 tenants (one appliance each, production vNIC
# + 3 VLANs) deployed with -j 1 on one fresh vcsim and with -j 8 on another
# must give exactly the same appliances, as govc sees them (names, power,
# marker, payload, every vNIC's MAC and portgroup); the -j 8 run logs in once
# and a -j 8 re-run changes nothing. Then the session is removed (govc
# session.rm) while 8 threads are busy: exactly one of them logs in again.
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"
nx_tmpdir
trap 'vcsim_stop_all; rm -rf "$NX_TMP"' EXIT INT TERM
vcsim_require
vcsim_credentials
N=48

deploy() { # deploy NAME JOBS
    vcsim_start "vcsim-$1" -trace -trace-file "$NX_TMP/trace-$1" || return 1
    vcsim_batch_setup || return 1
    vcsim_batch_plan "$NX_TMP/plan-$1.xml" $N "$VCSIM_URI"
    "$NETEXT_DEPLOY" -q -j "$2" --credentials "$NX_TMP/credentials" \
        --cacert "$NX_TMP/vcsim-cert.pem" batch "$NX_TMP/plan-$1.xml" >"$NX_TMP/out-$1" 2>&1
    echo $? >"$NX_TMP/rc-$1"
    vcsim_appliances "$NX_TMP/state-$1" || return 1
}

deploy serial 1 || { not_ok "vcsim with -j 1"; finish; }
check "-j 1: batch of $N tenants succeeds" [ "$(cat "$NX_TMP/rc-serial")" = 0 ]
vcsim_stop "$VCSIM_PID"
deploy parallel 8 || { not_ok "vcsim with -j 8"; finish; }
check "-j 8: batch of $N tenants succeeds" [ "$(cat "$NX_TMP/rc-parallel")" = 0 ]
[ "$(cat "$NX_TMP/rc-parallel")" = 0 ] || cat "$NX_TMP/out-parallel"
check "-j 1: $N appliances, 4 vNICs each, powered on" \
    [ "$(grep -c 'poweredOn .*nics=[^,]*,[^,]*,[^,]*,[^,]*$' "$NX_TMP/state-serial")" = $N ]
if cmp -s "$NX_TMP/state-serial" "$NX_TMP/state-parallel"; then
    ok "-j 8 gives exactly what -j 1 gives (govc)"
else
    not_ok "-j 8 differs from -j 1 (govc):"
    diff "$NX_TMP/state-serial" "$NX_TMP/state-parallel" | head -20
fi
logins=$(tr -d '\000' <"$NX_TMP/trace-parallel" | grep -a '^Request: ' | grep -a -c '<Login ')
check "-j 8: one Login for the whole batch ($logins)" [ "$logins" = 1 ]
: >"$NX_TMP/trace-parallel"
expect_exit 0 "-j 8 re-run" "$NETEXT_DEPLOY" -j 8 --credentials "$NX_TMP/credentials" \
    --cacert "$NX_TMP/vcsim-cert.pem" batch "$NX_TMP/plan-parallel.xml"
again=$(vcsim_trace_count "$NX_TMP/trace-parallel")
check "-j 8 re-run: setup requests only ($again <= 6)" [ "$again" -le 6 ]
vcsim_appliances "$NX_TMP/state-again"
check "-j 8 re-run changes nothing (govc)" cmp -s "$NX_TMP/state-parallel" "$NX_TMP/state-again"
vcsim_stop "$VCSIM_PID"

# ---- re-login under -j 8: CreateVM_Task takes 1.5 s, so the 8 workers are
# in the middle of their calls when the session disappears
vcsim_start vcsim-relogin -method-delay CreateVM_Task:1500 -trace -trace-file "$NX_TMP/trace-rl" &&
    vcsim_batch_setup || { not_ok "vcsim for the re-login test"; finish; }
vcsim_batch_plan "$NX_TMP/plan-rl.xml" 16 "$VCSIM_URI"
: >"$NX_TMP/trace-rl"
"$NETEXT_DEPLOY" -v -j 8 --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
    batch "$NX_TMP/plan-rl.xml" >"$NX_TMP/rl.out" 2>"$NX_TMP/rl.err" &
ndpid=$!
removed=0
i=0
while [ $i -lt 100 ] && [ $removed = 0 ]; do
    key=$(govc session.ls 2>/dev/null | awk '/netext-deploy\// {print $1}')
    creates=$(tr -d '\000' <"$NX_TMP/trace-rl" | grep -a '^Request: ' | grep -a -c '<CreateVM_Task ')
    if [ -n "$key" ] && [ "$creates" -ge 1 ]; then
        govc session.rm "$key" >/dev/null 2>&1 && removed=1
    fi
    sleep 0.1
    i=$((i + 1))
done
wait $ndpid
rc=$?
check "-j 8 re-login: the session was removed during the run" test $removed = 1
check "-j 8 re-login: the batch succeeded (exit $rc)" test $rc = 0
[ $rc = 0 ] || grep -i -e "error" -e "fail" "$NX_TMP/rl.err" | head -5
logins=$(tr -d '\000' <"$NX_TMP/trace-rl" | grep -a '^Request: ' | grep -a -c '<Login ')
relogins=$(grep -c 'session lost; logging in again' "$NX_TMP/rl.err")
check "-j 8 re-login: one thread logged in again, once ($relogins; Login requests: $logins)" \
    test "$relogins" = 1 -a "$logins" = 2
vcsim_appliances "$NX_TMP/state-rl"
check "-j 8 re-login: 16 appliances, 4 vNICs each, powered on (govc)" \
    [ "$(grep -c 'poweredOn .*nics=[^,]*,[^,]*,[^,]*,[^,]*$' "$NX_TMP/state-rl")" = 16 ]
finish
