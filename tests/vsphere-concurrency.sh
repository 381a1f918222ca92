#!/bin/sh
# vsphere-concurrency.sh: the vSphere provider under -j (concurrent calls on
# one connection): a batch of 48 tenants (one appliance each, production vNIC
# + 3 VLANs) deployed with -j 1 on one fresh vcsim and with -j 8 on another
# must give exactly the same appliances, as govc sees them (names, power,
# marker, payload, every vNIC's MAC and portgroup); the -j 8 run logs in once
# and a -j 8 re-run changes nothing.
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
finish
