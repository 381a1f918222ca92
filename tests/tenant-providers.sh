#!/bin/sh
# tenant-providers.sh: the tenant side through the vSphere provider (vcsim)
# and the Hyper-V provider (the WS-Man simulator): the default appliance on
# the detected production network, rescan adding and removing appliances as
# the provider's bundle gains and loses networks (with the count of changing
# calls), a no-op rescan, and custom settings: two production networks with a
# static address. Checked through govc and the simulator's own state.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
slow_tier
nx_tmpdir
. "$top_srcdir/tests/vcsim-lib.sh"
PY=$NX_PY
trap 'vcsim_stop_all; hv_sim_stop_all; rm -rf "$NX_TMP"' EXIT

# sp_bundle NAME NET...: export tenant initech's bundle with those networks
sp_bundle() {
    out=$1
    shift
    {
        echo '<netext-plan xmlns="urn:netext-deploy:plan:1"><gateway address="gw.sp.example.com"/>'
        echo '<host name="esx1" uri="test:///default" production-network="p" vlan-switch="v"/>'
        echo '<hardware-plan name="p" host="esx1">'
        v=10
        for n in "$@"; do echo "<network name=\"$n\" vlan=\"$v\"/>"; v=$((v + 1)); done
        echo '</hardware-plan><tenant name="initech"><subscribe plan="p"/></tenant></netext-plan>'
    } >"$NX_TMP/sp.xml"
    "$NETEXT_DEPLOY" --tenant initech -o "$NX_TMP/$out" export-bundle "$NX_TMP/sp.xml"
}

# json_count ACTION: how many actions of that kind the last --json run did
json_count() {
    "$PY" -c "import json,sys; d=json.load(open('$NX_TMP/out')); print(sum(1 for a in d['actions'] if a['action']=='$1' and a['status']=='done'))"
}
json_changes() {
    "$PY" -c "import json; print(json.load(open('$NX_TMP/out'))['changes'])"
}

# scenario PROVIDER PRODNET1 PRODNET2: uses $SRC_HOST (the <source-host>
# element), ND (the command), list_appliances and payload_of NAME
scenario() {
    p=$1 n1=$2 n2=$3
    cat >"$NX_TMP/auto.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="bundle.xml">
  $SRC_HOST
</netext-tenant>
XML
    # the SP extends one network named like a production network
    sp_bundle bundle.xml "$n1"
    expect_exit 0 "$p: default rescan" ND --json rescan "$NX_TMP/auto.xml"
    check "$p: one appliance, on '$n1'" test "$(list_appliances)" = "netext-t-initech-$(echo "$n1" | tr -c 'A-Za-z0-9._\n-' _)"
    payload_of "$n1" >"$NX_TMP/payload"
    check "$p: its payload says DHCP" grep -q "<dhcp/>" "$NX_TMP/payload"
    expect_exit 0 "$p: unchanged rescan" ND --json rescan "$NX_TMP/auto.xml"
    check "$p: unchanged: 0 changing calls" test "$(json_changes)" = 0
    ND rescan "$NX_TMP/auto.xml" >"$NX_TMP/text"
    check "$p: unchanged: one line says so" test "$(grep -c . "$NX_TMP/text")" = 1
    # the SP extends a second network: one more appliance
    sp_bundle bundle.xml "$n1" "$n2"
    expect_exit 0 "$p: rescan after a network was added" ND --json rescan "$NX_TMP/auto.xml"
    check "$p: exactly one appliance created" test "$(json_count create)" = 1
    check "$p: none removed" test "$(json_count remove)" = 0
    check "$p: two appliances now" test "$(list_appliances | wc -l)" = 2
    # and takes it back: that appliance goes
    sp_bundle bundle.xml "$n1"
    expect_exit 0 "$p: rescan after the network was removed" ND --json rescan "$NX_TMP/auto.xml"
    check "$p: exactly one removed, 1 changing call" sh -c "test $(json_count remove) = 1 && test $(json_changes) = 1"
    check "$p: one appliance left" test "$(list_appliances | wc -l)" = 1
    # custom: two production networks, one with a static address
    sp_bundle bundle.xml web db
    cat >"$NX_TMP/custom.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="bundle.xml">
  $SRC_HOST
  <appliance host="src" production-network="$n1" extends="web">
    <static ip="192.0.2.50/24" gateway="192.0.2.1"><dns>192.0.2.53</dns></static>
  </appliance>
  <appliance host="src" production-network="$n2" extends="db"/>
</netext-tenant>
XML
    expect_exit 0 "$p: custom settings" ND --json rescan "$NX_TMP/custom.xml"
    check "$p: two appliances, the default one replaced" test "$(list_appliances | wc -l)" = 2
    payload_of "$n1" >"$NX_TMP/payload"
    check "$p: the static address is in the payload" grep -q 'static ip="192.0.2.50/24" gateway="192.0.2.1"' "$NX_TMP/payload"
    expect_exit 0 "$p: custom, unchanged" ND --json rescan "$NX_TMP/custom.xml"
    check "$p: custom unchanged: 0 changing calls" test "$(json_changes)" = 0
    cat >"$NX_TMP/none.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="bundle.xml">
  $SRC_HOST
  <no-appliances/>
</netext-tenant>
XML
    expect_exit 0 "$p: omitted" ND --json rescan "$NX_TMP/none.xml"
    check "$p: all tenant-side appliances removed" test -z "$(list_appliances)"
}

# ---- vSphere (vcsim) ---------------------------------------------------------
vsphere() {
    vcsim_start vcsim || { not_ok "vcsim did not start"; return; }
    vcsim_credentials
    # vcsim's VMs on DC0_H0 use DC0_DVPG0; one of them also joins "VM Network"
    govc vm.network.add -vm DC0_H0_VM1 -net "VM Network" >/dev/null || { not_ok "govc vm.network.add"; return; }
    SRC_HOST="<source-host name=\"src\" uri=\"$VCSIM_URI\" target=\"DC0_H0\" folder=\"NetExt\" resource-pool=\"NetExt\"/>"
    ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" "$@"; }
    list_appliances() { govc ls /DC0/vm/NetExt 2>/dev/null | sed 's|.*/||' | grep '^netext-t-' | sort; }
    payload_of() {
        vm=netext-t-initech-$1
        # vcsim 0.24 appends extraConfig values on ReconfigVM instead of
        # replacing the key's value as vSphere does: the last one is current
        govc vm.info -e "/DC0/vm/NetExt/$vm" | sed -n 's/.*guestinfo.netext.payload: *//p' | tail -1 | base64 -d
    }
    scenario vsphere "DC0_DVPG0" "VM Network"
    check "vsphere: appliances are in the selected folder and pool" \
        sh -c "govc ls /DC0/host/DC0_H0/Resources/NetExt >/dev/null 2>&1 || govc find / -type p -name NetExt | grep -q NetExt"
}

# ---- Hyper-V (the simulator) ---------------------------------------------------
hyperv() {
    printf 'tp-%s\n' "$$" >"$NX_TMP/hvpw"
    chmod 600 "$NX_TMP/hvpw"
    hv_sim_start hv --password-file "$NX_TMP/hvpw" --switch LAN --switch DB --job-polls 0 \
        --seed-vm prod1:LAN --seed-vm prod2:LAN --seed-vm prod3:DB
    port=$HV_SIM_PORT
    printf 'user = administrator\npassword = %s\n' "$(cat "$NX_TMP/hvpw")" >"$NX_TMP/hvcreds"
    chmod 600 "$NX_TMP/hvcreds"
    SRC_HOST="<source-host name=\"src\" uri=\"hyperv+http://127.0.0.1:$port/wsman\" folder=\"NetExt\"/>"
    ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/hvcreds" "$@" 2>>"$NX_TMP/hv-nd.err"; }
    list_appliances() {
        curl -s "http://127.0.0.1:$port/state" | "$PY" -c '
import json, sys
for v in sorted(json.load(sys.stdin)["vms"], key=lambda v: v["name"]):
    if v["name"].startswith("netext-t-"):
        print(v["name"])'
    }
    payload_of() {
        curl -s "http://127.0.0.1:$port/state" | "$PY" -c '
import base64, json, sys
vm = [v for v in json.load(sys.stdin)["vms"] if v["name"] == "netext-t-initech-" + sys.argv[1]][0]
kvp = vm["kvp"]
n = int(kvp["netext-deploy.payload.count"])
print(base64.b64decode("".join(kvp["netext-deploy.payload.%03d" % i] for i in range(n))).decode())' "$1"
    }
    scenario hyperv LAN DB
}


if command -v vcsim >/dev/null 2>&1 && command -v govc >/dev/null 2>&1 &&
    has_provider vsphere; then
    vsphere
else
    echo "# vSphere part skipped: vcsim/govc or the provider missing"
fi
if [ -x "$PY" ] && has_provider hyperv; then
    hyperv
else
    echo "# Hyper-V part skipped: python3 or the provider missing"
fi
[ "$NX_N" -gt 0 ] || skip_all "neither provider could be tested"
finish
