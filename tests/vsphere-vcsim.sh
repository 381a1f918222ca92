#!/bin/sh
# vsphere-vcsim.sh: the vSphere provider against vcsim, VMware's simulator.
# Builds an inventory with govc (2 hosts, a distributed switch with VLAN
# portgroups, standard portgroups with VLANs, a StoragePod, a VVol datastore),
# deploys through netext-deploy and checks the result independently with govc.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"

require_provider vsphere
nx_tmpdir
trap 'vcsim_stop_all; [ -n "$NX_KEEP" ] || rm -rf "$NX_TMP"' EXIT INT TERM
vcsim_require
vcsim_start vcsim -standalone-host 1 -cluster 1 -host 1 || { not_ok "vcsim starts"; finish; exit 1; }
vcsim_credentials
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" "$@"; }
nvms() { govc find / -type m | wc -l; }

# ---- inventory ------------------------------------------------------------
H1=/DC0/host/DC0_H0/DC0_H0
H2=/DC0/host/DC0_C0/DC0_C0_H0
{
    for v in 101 102 103; do govc dvs.portgroup.add -dvs DVS0 -vlan $v dv-$v || exit 1; done
    govc host.portgroup.add -host $H1 -vswitch vSwitch0 -vlan 300 std-300 &&
        govc host.portgroup.add -host $H2 -vswitch vSwitch0 -vlan 101 std-101 &&
        govc folder.create -pod /DC0/datastore/pod1 &&
        mkdir -p "$NX_TMP/ds-pod" &&
        govc datastore.create -type local -name ds-pod -path "$NX_TMP/ds-pod" $H2 &&
        govc object.mv /DC0/datastore/ds-pod /DC0/datastore/pod1
} >"$NX_TMP/setup.log" 2>&1
check "inventory: DVS portgroups, standard VLAN portgroups, a StoragePod" test $? = 0
# a VVol datastore: vcsim has no flag for it, so CreateNasDatastore with type VVOL
DSS=$(govc object.collect -s $H2 configManager.datastoreSystem | sed 's/.*://')
mkdir -p "$NX_TMP/vvol-ds"
vcsim_soap "<CreateNasDatastore xmlns=\"urn:vim25\"><_this type=\"HostDatastoreSystem\">$DSS</_this><spec><remoteHost>127.0.0.1</remoteHost><remotePath>/vvol</remotePath><localPath>$NX_TMP/vvol-ds</localPath><accessMode>readWrite</accessMode><type>VVOL</type></spec></CreateNasDatastore>" >"$NX_TMP/vvol.xml"
check "inventory: VVol datastore vvol-ds" test "$(govc object.collect -s /DC0/datastore/vvol-ds summary.type)" = VVOL

# ---- the plan ---------------------------------------------------------------
plan() { # plan FILE GOLD-NETWORKS [H2-ATTRS]
    if [ $# -ge 3 ]; then h2=$3; else h2='vlan-switch="DVS0"'; fi
    cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">
  <gateway address="cc-gateway.sp.example.com" port="6180"/>
  <host name="esx1" uri="$VCSIM_URI" target="DC0_H0" production-network="VM Network"/>
  <host name="esx2" uri="$VCSIM_URI" target="DC0_C0_H0" production-network="VM Network" $h2/>
  <hardware-plan name="Silver" host="esx1">
    <network name="web" vlan="101"/>
    <network name="db" vlan="300"/>
  </hardware-plan>
  <hardware-plan name="Gold" host="esx2">
$2
  </hardware-plan>
  <tenant name="acme">
    <subscribe plan="Silver"/>
    <subscribe plan="Gold"/>
    <appliance host="esx1"><static ip="192.0.2.10/24" gateway="192.0.2.1"/></appliance>
    <appliance host="esx2"><dhcp/></appliance>
  </tenant>
</netext-plan>
EOF
}
GOLD1='<network name="app" vlan="101"/><network name="dmz" vlan="102"/>'
GOLD2='<network name="app" vlan="101"/><network name="backup" vlan="103"/>'
plan "$NX_TMP/plan.xml" "$GOLD1"

# ---- TLS ------------------------------------------------------------------------
"$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" status "$NX_TMP/plan.xml" >"$NX_TMP/out" 2>"$NX_TMP/err"
rc=$?
check "TLS: an untrusted certificate is refused by default (exit 69)" test $rc = 69
check "TLS: the refusal says why" grep -q "not trusted" "$NX_TMP/err"
TP=$(openssl x509 -in "$NX_TMP/vcsim-cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
expect_exit 0 "TLS: --thumbprint of the server certificate is accepted" \
    "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --thumbprint "$TP" status "$NX_TMP/plan.xml"
BADTP=$(echo "$TP" | tr '0-9A-F' '1-9A-F0')
expect_exit 69 "TLS: another thumbprint is refused" \
    "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --thumbprint "$BADTP" status "$NX_TMP/plan.xml"
check "TLS: the mismatch is reported" grep -q "does not match --thumbprint" "$NX_TMP/err"
expect_exit 0 "TLS: --insecure connects" \
    "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --insecure status "$NX_TMP/plan.xml"
check "TLS: --insecure warns on stderr" grep -q "warning: --insecure" "$NX_TMP/err"
expect_exit 0 "TLS: --cacert with the server's CA connects" ND status "$NX_TMP/plan.xml"

# ---- credentials ------------------------------------------------------------------
printf 'user = %s\npassword = wrong\n' "$VCSIM_USER" >"$NX_TMP/badcreds"
chmod 600 "$NX_TMP/badcreds"
expect_exit 77 "a wrong password is refused (InvalidLogin)" \
    "$NETEXT_DEPLOY" --credentials "$NX_TMP/badcreds" --cacert "$NX_TMP/vcsim-cert.pem" status "$NX_TMP/plan.xml"
check "the password never appears in the output" sh -c "! grep -q '$VCSIM_PASSWORD\|wrong' '$NX_TMP/out' '$NX_TMP/err'"

# ---- refusals before any change -------------------------------------------------
before=$(nvms)
plan "$NX_TMP/vvol.xml" "$GOLD1" 'vlan-switch="DVS0" datastore="vvol-ds"'
expect_exit 65 "VVol datastore refused" ND subscribe "$NX_TMP/vvol.xml"
check "VVol: the error names the datastore" grep -q "vvol-ds.*VVol" "$NX_TMP/err"
check "VVol: zero VMs created (tenant untouched, also on its other host)" test "$(nvms)" = "$before"
plan "$NX_TMP/pod.xml" "$GOLD1" 'vlan-switch="DVS0" datastore="pod1"'
expect_exit 65 "StoragePod refused" ND subscribe "$NX_TMP/pod.xml"
check "StoragePod: the error names it" grep -q "pod1.*StoragePod" "$NX_TMP/err"
plan "$NX_TMP/pod2.xml" "$GOLD1" 'vlan-switch="DVS0" datastore="ds-pod"'
expect_exit 65 "a datastore inside a StoragePod refused" ND subscribe "$NX_TMP/pod2.xml"
check "datastore in a pod: the error names both" grep -q "ds-pod.*pod1" "$NX_TMP/err"
cp "$NX_TMP/err" "$NX_TMP/pod2.err"
plan "$NX_TMP/ambig.xml" "$GOLD1" ''
expect_exit 65 "VLAN carried by two portgroups without vlan-switch refused" ND subscribe "$NX_TMP/ambig.xml"
check "ambiguity: the error lists the candidates" grep -q "dv-101.*std-101\|std-101.*dv-101" "$NX_TMP/err"
GOLD15=$(for v in $(seq 201 215); do printf '<network name="n%s" vlan="%s"/>' $v $v; done)
plan "$NX_TMP/many.xml" "$GOLD15"
expect_exit 65 "15 VLANs on one host refused (a VM has at most 10 vNICs)" ND subscribe "$NX_TMP/many.xml"
check "15 VLANs: the error says why" grep -q "host 'esx2': the appliance would need 16 vNICs (the production network and 15 VLANs), more than the 10 a VM can have on vsphere" "$NX_TMP/err"
check "refusals: zero VMs created" test "$(nvms)" = "$before"
check "refusals: no folder created" sh -c "! govc ls /DC0/vm | grep -q Cloud_Connect_Replication"

# ---- deploy -------------------------------------------------------------------------
expect_exit 0 "dry run" ND --dry-run subscribe "$NX_TMP/plan.xml"
check "dry run: zero VMs created" test "$(nvms)" = "$before"
expect_exit 0 "subscribe" ND --metrics "$NX_TMP/metrics.prom" subscribe "$NX_TMP/plan.xml"
check "metrics: vSphere requests counted (not 0)" awk '/^netext_deploy_endpoint_requests\{/ && $NF > 0 { found = 1 } END { exit !found }' "$NX_TMP/metrics.prom"
VM1=/DC0/vm/Cloud_Connect_Replication/netext-acme-esx1
VM2=/DC0/vm/Cloud_Connect_Replication/netext-acme-esx2
check "folder Cloud_Connect_Replication holds both appliances" \
    sh -c "govc ls /DC0/vm/Cloud_Connect_Replication | grep -c netext-acme | grep -qx 2"
POOL1=$(govc ls -i /DC0/host/DC0_H0/Resources/Cloud_Connect_Replication 2>/dev/null)
POOL2=$(govc ls -i /DC0/host/DC0_C0/Resources/Cloud_Connect_Replication 2>/dev/null)
check "resource pool under the standalone host's root pool" \
    test -n "$POOL1" -a "$(govc object.collect -s $VM1 resourcePool)" = "$POOL1"
check "resource pool under the cluster's root pool" \
    test -n "$POOL2" -a "$(govc object.collect -s $VM2 resourcePool)" = "$POOL2"
check "appliances powered on" test "$(govc object.collect -s $VM1 runtime.powerState)" = poweredOn

# NICs: type, MAC, and backing (portgroup name or DVS portgroup key -> name/VLAN)
nics() {
    govc object.collect -json "$1" config.hardware.device >"$NX_TMP/dev.json"
    "$PY" - "$NX_TMP/dev.json" <<'EOF'
import json, sys, subprocess
d = json.load(open(sys.argv[1]))
devs = d[0]["Val"]["VirtualDevice"]
out = []
for x in devs:
    if "MacAddress" not in x and "macAddress" not in x:
        continue
    g = lambda k: x.get(k, x.get(k[0].lower() + k[1:]))
    b = g("Backing")
    port = b.get("Port") or b.get("port")
    if port:
        key = port.get("PortgroupKey") or port.get("portgroupKey")
        name = subprocess.run(["govc", "ls", "-L", "DistributedVirtualPortgroup:" + key],
                              capture_output=True, text=True).stdout.strip().rsplit("/", 1)[-1]
        out.append("dvs:%s:%s:%s" % (name, g("MacAddress"), g("AddressType")))
    else:
        out.append("std:%s:%s:%s" % (b.get("DeviceName") or b.get("deviceName"), g("MacAddress"), g("AddressType")))
print("\n".join(sorted(out)))
EOF
}
nics $VM1 >"$NX_TMP/nics1"
nics $VM2 >"$NX_TMP/nics2"
check "esx1 appliance: 3 vNICs" test "$(wc -l <"$NX_TMP/nics1")" = 3
check "esx1: production on the standard portgroup 'VM Network'" grep -q "^std:VM Network:00:50:56:" "$NX_TMP/nics1"
check "esx1: VLAN 101 on the distributed portgroup dv-101" grep -q "^dvs:dv-101:00:50:56:.*:manual" "$NX_TMP/nics1"
check "esx1: VLAN 300 on the standard portgroup std-300" grep -q "^std:std-300:" "$NX_TMP/nics1"
check "esx2 appliance: 3 vNICs on VM Network, dv-101, dv-102" \
    sh -c "cut -d: -f1,2 '$NX_TMP/nics2' | tr '\n' ' ' | grep -qx 'dvs:dv-101 dvs:dv-102 std:VM Network '"
govc vm.info -e $VM1 >"$NX_TMP/info1"
check "extraConfig: ownership marker" grep -q "netext-deploy.marker: *netext-deploy:1 role=provider tenant=acme host=esx1" "$NX_TMP/info1"
check "extraConfig: payload encoding base64" grep -q "guestinfo.netext.payload.encoding: *base64" "$NX_TMP/info1"
PAYLOAD=$(sed -n 's/.*guestinfo.netext.payload: *//p' "$NX_TMP/info1" | base64 -d 2>/dev/null)
check "extraConfig: the payload decodes to the tenant's document" \
    sh -c "echo '$PAYLOAD' | grep -q 'tenant=\"acme\" host=\"esx1\"'"

# ---- idempotency ----------------------------------------------------------------------
ND --json subscribe "$NX_TMP/plan.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
check "second run: up to date, 0 changes (--json)" \
    sh -c "grep -q '\"result\":\"up-to-date\"' '$NX_TMP/json' && grep -q '\"changes\":0' '$NX_TMP/json'"
check "second run: no duplicate VM" test "$(govc ls /DC0/vm/Cloud_Connect_Replication | wc -l)" = 2

# ---- changed subscription: one VLAN out, one in ---------------------------------------
plan "$NX_TMP/plan2.xml" "$GOLD2"
ND --json subscribe "$NX_TMP/plan2.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
check "changed plan: vNICs updated" grep -q '"result":"changed"' "$NX_TMP/json"
nics $VM2 >"$NX_TMP/nics2b"
check "changed plan: esx2 appliance on VM Network, dv-101, dv-103" \
    sh -c "cut -d: -f1,2 '$NX_TMP/nics2b' | tr '\n' ' ' | grep -qx 'dvs:dv-101 dvs:dv-103 std:VM Network '"
check "changed plan: the kept vNIC kept its MAC" \
    test "$(grep dv-101 "$NX_TMP/nics2")" = "$(grep dv-101 "$NX_TMP/nics2b")"
ND --json subscribe "$NX_TMP/plan2.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
check "changed plan: next run up to date" grep -q '"result":"up-to-date"' "$NX_TMP/json"

# ---- re-login after the session is dropped ---------------------------------------------
# A second vcsim whose CreateContainerView is slow: the session is removed
# with govc while netext-deploy waits, and the next call must log in again.
SAVE_URL=$GOVC_URL
SAVE_URI=$VCSIM_URI
vcsim_start vcsim-relogin -standalone-host 1 -cluster 1 -host 1 -method-delay CreateContainerView:2500 &&
    govc dvs.portgroup.add -dvs DVS0 -vlan 101 dv-101 >/dev/null 2>&1 &&
    govc dvs.portgroup.add -dvs DVS0 -vlan 102 dv-102 >/dev/null 2>&1 &&
    govc host.portgroup.add -host $H1 -vswitch vSwitch0 -vlan 300 std-300 >/dev/null 2>&1
check "second vcsim for the re-login test" test $? = 0
sed "s|$SAVE_URI|$VCSIM_URI|" "$NX_TMP/plan.xml" >"$NX_TMP/relogin.xml"
ND -vv -t acme subscribe "$NX_TMP/relogin.xml" >"$NX_TMP/rl.out" 2>"$NX_TMP/rl.err" &
ndpid=$!
removed=0
i=0
while [ $i -lt 50 ] && [ $removed = 0 ]; do
    key=$(govc session.ls 2>/dev/null | awk '/netext-deploy\// {print $1}')
    if [ -n "$key" ]; then
        govc session.rm "$key" >/dev/null 2>&1 && removed=1
    fi
    sleep 0.1
    i=$((i + 1))
done
wait $ndpid
rc=$?
check "re-login: the session was removed during the run" test $removed = 1
check "re-login: the run succeeded (exit $rc)" test $rc = 0
check "re-login: it logged in again" grep -q "logging in again" "$NX_TMP/rl.err"
check "re-login: the appliances exist" \
    sh -c "govc ls /DC0/vm/Cloud_Connect_Replication | grep -c netext-acme | grep -qx 2"
vcsim_stop "$VCSIM_PID"
export GOVC_URL=$SAVE_URL
VCSIM_URI=$SAVE_URI

# ---- unsubscribe ----------------------------------------------------------------------
expect_exit 0 "unsubscribe" ND -t acme unsubscribe "$NX_TMP/plan2.xml"
check "unsubscribe: both appliances removed" \
    test "$(govc ls /DC0/vm/Cloud_Connect_Replication | wc -l)" = 0
check "unsubscribe: other VMs untouched" test "$(nvms)" = "$before"

# ---- tenant side: production network detected from the VMs on the host -------------
cat >"$NX_TMP/sp-t.xml" <<EOF
<netext-plan xmlns="urn:netext-deploy:plan:1">
  <gateway address="gw.sp.example.com"/>
  <host name="esx1" uri="$VCSIM_URI" target="DC0_H0" production-network="VM Network"/>
  <hardware-plan name="p" host="esx1"><network name="lan" vlan="10"/></hardware-plan>
  <tenant name="initech"><subscribe plan="p"/></tenant>
</netext-plan>
EOF
cat >"$NX_TMP/tenant.xml" <<EOF
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="initech.bundle">
  <source-host name="src" uri="$VCSIM_URI" target="DC0_H0"/>
</netext-tenant>
EOF
# the network the simulator's own VMs on DC0_H0 use, as govc sees it
PRODNAME=$(govc ls -L "$(govc object.collect -s /DC0/vm/DC0_H0_VM0 network | cut -d, -f1)" | sed 's|.*/||')
if "$NETEXT_DEPLOY" --tenant initech -o "$NX_TMP/initech.bundle" export-bundle "$NX_TMP/sp-t.xml" 2>"$NX_TMP/err"; then
    expect_exit 0 "tenant side: rescan" ND rescan "$NX_TMP/tenant.xml"
    check "tenant side: appliance on the detected production network '$PRODNAME'" \
        test "$(govc ls /DC0/vm/Cloud_Connect_Replication)" = "/DC0/vm/Cloud_Connect_Replication/netext-t-initech-$PRODNAME"
    ND --json rescan "$NX_TMP/tenant.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
    check "tenant side: second rescan up to date" grep -q '"result":"up-to-date"' "$NX_TMP/json"
else
    echo "# tenant side not tested: this build has no export-bundle"
fi

finish
