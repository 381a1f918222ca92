#!/bin/sh
# vsphere-requests.sh [N]: SOAP requests the vSphere provider makes, counted
# by vcsim itself (-trace -trace-file), not by the provider.
#
# Deploys N and then 2N new appliances (one tenant, N plan hosts on one ESXi
# host, 2 vNICs each) on fresh simulators, and a second, up-to-date run.
# Requests grow as  R(n) = setup + per_appliance * n;  per_appliance =
# (R(2N) - R(N)) / N must be <= 3 and the up-to-date run must stay at the
# per-run setup (login + inventory + logout). Exits non-zero on regression.
# Run from a build tree: NETEXT_DEPLOY=src/netext-deploy bench/vsphere-requests.sh
N=${1:-10}
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${NETEXT_DEPLOY:=$PWD/src/netext-deploy}"
export top_srcdir
. "$top_srcdir/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"
[ -x "$NETEXT_DEPLOY" ] || { echo "netext-deploy not found: set NETEXT_DEPLOY" >&2; exit 2; }
nx_tmpdir
trap 'vcsim_stop_all; rm -rf "$NX_TMP"' EXIT INT TERM
vcsim_require
vcsim_credentials

plan() { # plan FILE N URI
    {
        echo '<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">'
        echo '<gateway address="gw.example.com"/>'
        i=1
        while [ $i -le "$2" ]; do
            echo "<host name=\"esx$i\" uri=\"$3\" target=\"DC0_H0\" production-network=\"VM Network\"/>"
            echo "<hardware-plan name=\"p$i\" host=\"esx$i\"><network name=\"n\" vlan=\"101\"/></hardware-plan>"
            i=$((i + 1))
        done
        echo '<tenant name="acme">'
        i=1
        while [ $i -le "$2" ]; do
            echo "<subscribe plan=\"p$i\"/><appliance host=\"esx$i\"><dhcp/></appliance>"
            i=$((i + 1))
        done
        echo '</tenant></netext-plan>'
    } >"$1"
}

# measure N: prints "requests-of-the-deploying-run requests-of-the-next-run"
measure() {
    n=$1
    vcsim_start "vcsim-$n" -trace -trace-file "$NX_TMP/trace-$n" || exit 2
    govc dvs.portgroup.add -dvs DVS0 -vlan 101 dv-101 >/dev/null 2>&1 || exit 2
    plan "$NX_TMP/plan-$n.xml" "$n" "$VCSIM_URI"
    : >"$NX_TMP/trace-$n"
    "$NETEXT_DEPLOY" -q --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
        subscribe "$NX_TMP/plan-$n.xml" >"$NX_TMP/out-$n" 2>&1 || {
        echo "deploying $n appliances failed:" >&2
        cat "$NX_TMP/out-$n" >&2
        exit 2
    }
    deploy=$(vcsim_trace_count "$NX_TMP/trace-$n")
    vcsim_trace_methods "$NX_TMP/trace-$n" >"$NX_TMP/methods-$n"
    created=$(govc find / -type m -name 'netext-acme-*' | wc -l)
    [ "$created" = "$n" ] || { echo "expected $n appliances, found $created" >&2; exit 2; }
    : >"$NX_TMP/trace-$n"
    "$NETEXT_DEPLOY" -q --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
        subscribe "$NX_TMP/plan-$n.xml" >"$NX_TMP/out2-$n" 2>&1 || exit 2
    again=$(vcsim_trace_count "$NX_TMP/trace-$n")
    vcsim_stop "$VCSIM_PID"
    echo "$deploy $again"
}

set -- $(measure "$N")
R1=$1
UPTODATE=$2
set -- $(measure $((2 * N)))
R2=$1
echo "vSphere SOAP requests (counted by vcsim -trace), ${N} and $((2 * N)) new appliances, 2 vNICs each:"
echo "  deploy $N appliances:        $R1 requests"
echo "  deploy $((2 * N)) appliances:        $R2 requests"
echo "  up-to-date run (setup only): $UPTODATE requests"
echo "  per-method, $N appliances:"
sed 's/^/    /' "$NX_TMP/methods-$N"
SLOPE_X100=$(((R2 - R1) * 100 / N))
SETUP=$((R1 - (R2 - R1)))
printf '  per appliance: %d.%02d requests (target <= 3); per-run constant: %d (login, inventory,\n' \
    $((SLOPE_X100 / 100)) $((SLOPE_X100 % 100)) "$SETUP"
echo "    folder + pool creation, task reads at settle, logout)"
status=0
if [ "$SLOPE_X100" -gt 300 ]; then
    echo "REGRESSION: more than 3 requests per appliance" >&2
    status=1
fi
if [ "$UPTODATE" -gt 6 ]; then
    echo "REGRESSION: an up-to-date run makes $UPTODATE requests (expected login + inventory + logout)" >&2
    status=1
fi
exit $status
