#!/bin/sh
# cli-tenant.sh: export-bundle, rescan, batch and locking through the command
# line, on libvirt test-driver node files written here (their state lives in
# one process, so every run starts from the node file).
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
nx_tmpdir
SERVER_PID=
HOLDER_PID=
cleanup() {
    [ -n "$HOLDER_PID" ] && kill "$HOLDER_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$NX_TMP"
}
trap cleanup EXIT

ND=$NETEXT_DEPLOY
export NETEXT_DEPLOY_STATE_DIR="$NX_TMP/state"
SEED=$top_srcdir/examples/seed.xml

# --- export-bundle -------------------------------------------------------------
expect_exit 64 "export-bundle needs -o" "$ND" --tenant acme export-bundle "$SEED"
expect_exit 65 "export-bundle of an unknown tenant" "$ND" --tenant nobody -o "$NX_TMP/x" export-bundle "$SEED"
umask 022
expect_exit 0 "export-bundle" "$ND" --tenant acme -o "$NX_TMP/acme.bundle" export-bundle "$SEED"
check "the bundle is 0600 despite umask 022" sh -c "test \$(stat -c %a '$NX_TMP/acme.bundle') = 600"
check "the bundle lists the 6 extended networks" sh -c "test \$(grep -c '<network ' '$NX_TMP/acme.bundle') = 6"
check "the bundle names the gateway" grep -q 'gateway address="198.51.100.7" port="6180"' "$NX_TMP/acme.bundle"
expect_exit 0 "export-bundle to stdout when asked with -o -" "$ND" --tenant globex -o - export-bundle "$SEED"
check "stdout bundle" grep -q 'tenant="globex"' "$NX_TMP/out"

# --- the tenant's source host: production VMs on LAN (3) and DB (1) -----------
node=$NX_TMP/tenant-node.xml
{
    echo "<node>"
    for n in LAN DB; do
        echo "<network><name>$n</name><forward mode='bridge'/><bridge name='br-$n'/></network>"
    done
    for i in 1 2 3 4; do
        net=LAN; [ $i = 4 ] && net=DB
        echo "<domain type='test'><name>prod$i</name><memory>65536</memory><os><type>hvm</type></os>"
        echo "<devices><interface type='network'><source network='$net'/></interface></devices></domain>"
    done
    echo "</node>"
} > "$node"
NODE="test://$node"
# an SP plan extending one network to tenant initech
cat > "$NX_TMP/sp.xml" <<XML
<netext-plan xmlns="urn:netext-deploy:plan:1">
  <gateway address="gw.sp.example.com"/>
  <host name="esx1" uri="test:///default" production-network="prod" vlan-switch="v"/>
  <hardware-plan name="p" host="esx1"><network name="lan" vlan="10"/></hardware-plan>
  <tenant name="initech"><subscribe plan="p"/></tenant>
</netext-plan>
XML
"$ND" --tenant initech -o "$NX_TMP/initech.bundle" export-bundle "$NX_TMP/sp.xml"
cat > "$NX_TMP/tenant.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="initech.bundle">
  <source-host name="src" uri="qemu:///never-used"/>
</netext-tenant>
XML
expect_exit 0 "validate a tenant configuration" "$ND" validate "$NX_TMP/tenant.xml"
check "validate says defaults" grep -q "(defaults), 1 extended networks" "$NX_TMP/out"
expect_exit 0 "rescan: default appliance on the detected network" "$ND" --connect "$NODE" rescan "$NX_TMP/tenant.xml"
check "created on LAN (3 of 4 production VMs)" grep -q "^create .*netext-t-initech-LAN .*production 'LAN'" "$NX_TMP/out"
expect_exit 0 "rescan --json" "$ND" --connect "$NODE" --json rescan "$NX_TMP/tenant.xml"
check_json "rescan JSON: changed, 2 changes" "d['result']=='changed' and d['changes']==2"
expect_exit 64 "subscribe refuses a tenant configuration" "$ND" --connect "$NODE" subscribe "$NX_TMP/tenant.xml"
expect_exit 64 "rescan refuses a provider plan" "$ND" --connect "$NODE" rescan "$NX_TMP/sp.xml"
check "rescan says what it wants" grep -q "rescan: give a <netext-tenant> configuration" "$NX_TMP/err"
expect_exit 64 "batch refuses a tenant configuration" "$ND" --connect "$NODE" batch "$NX_TMP/tenant.xml"
check "batch says what it wants" grep -q "batch: give provider plans" "$NX_TMP/err"
expect_exit 64 "rotate refuses a tenant configuration" "$ND" rotate "$NX_TMP/tenant.xml"
check "rotate says where the PKI lives" grep -q "rotate: the tunnel PKI lives on the provider side" "$NX_TMP/err"
# custom: two production networks, one static address
sed 's#<network name="lan" vlan="10"/>#<network name="LAN" vlan="10"/><network name="DB" vlan="11"/>#' "$NX_TMP/sp.xml" > "$NX_TMP/sp2.xml"
"$ND" --tenant initech -o "$NX_TMP/two.bundle" export-bundle "$NX_TMP/sp2.xml"
cat > "$NX_TMP/custom.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="two.bundle">
  <source-host name="src" uri="qemu:///never-used"/>
  <appliance host="src" production-network="LAN"><static ip="10.0.0.9/24" gateway="10.0.0.1"/></appliance>
  <appliance host="src" production-network="DB"/>
</netext-tenant>
XML
expect_exit 0 "rescan: two production networks -> two appliances" "$ND" --connect "$NODE" rescan "$NX_TMP/custom.xml"
check "two creates" sh -c "test \$(grep -c '^create ' '$NX_TMP/out') = 2"
chmod 644 "$NX_TMP/two.bundle"
expect_exit 65 "a bundle readable by others is refused" "$ND" --connect "$NODE" rescan "$NX_TMP/custom.xml"
chmod 600 "$NX_TMP/two.bundle"
cat > "$NX_TMP/tie.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="two.bundle">
  <source-host name="src" uri="qemu:///never-used"/>
</netext-tenant>
XML
expect_exit 0 "default with two extended networks: matched to production networks by name" "$ND" --connect "$NODE" rescan "$NX_TMP/tie.xml"
check "one appliance per matched network" sh -c "test \$(grep -c '^create ' '$NX_TMP/out') = 2"
sed 's/name="DB"/name="Storage"/' "$NX_TMP/sp2.xml" > "$NX_TMP/sp3.xml"
"$ND" --tenant initech -o "$NX_TMP/two.bundle" export-bundle "$NX_TMP/sp3.xml"
expect_exit 0 "an extended network with no production network of its name is reported" "$ND" --connect "$NODE" rescan "$NX_TMP/tie.xml"
check "as not extended" grep -q "extended network 'Storage' (VLAN 11 on SP host 'esx1') is not extended" "$NX_TMP/err"
cat > "$NX_TMP/omit.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="two.bundle">
  <source-host name="src" uri="qemu:///never-used"/><no-appliances/>
</netext-tenant>
XML
expect_exit 0 "omitting tenant appliances" "$ND" --connect "$NODE" rescan "$NX_TMP/omit.xml"
check "says so" grep -q "omitted" "$NX_TMP/err"

# --- lock contention: a run that hangs on its hypervisor holds the lock -------
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(8)
conns = []
end = time.time() + 120
while time.time() < end:
    s.settimeout(1)
    try: conns.append(s.accept()[0])
    except socket.timeout: pass
" &
SERVER_PID=$!
sleep 0.5
"$ND" -q --connect "qemu+tcp://127.0.0.1:$port/system" rescan "$NX_TMP/tenant.xml" >/dev/null 2>&1 &
HOLDER_PID=$!
held=no
for _ in $(seq 50); do
    if grep -qx "$HOLDER_PID" "$NETEXT_DEPLOY_STATE_DIR"/locks/*.lock 2>/dev/null; then held=yes; break; fi
    sleep 0.1
done
check "the first run holds the tenant's lock" test "$held" = yes
expect_exit 75 "a second rescan for the same tenant fails at once" "$ND" --connect "$NODE" rescan "$NX_TMP/tenant.xml"
check "and names the holder" grep -q "pid $HOLDER_PID" "$NX_TMP/err"
t0=$(date +%s)
expect_exit 75 "--lock-wait 2 waits, then fails" "$ND" --lock-wait 2 --connect "$NODE" rescan "$NX_TMP/tenant.xml"
check "it waited about 2 s" test $(( $(date +%s) - t0 )) -ge 2
expect_exit 0 "another tenant is not blocked" "$ND" --connect "test://$top_srcdir/examples/testnode.xml" --tenant acme subscribe "$top_srcdir/examples/acme.xml"
kill "$HOLDER_PID"; wait "$HOLDER_PID" 2>/dev/null; HOLDER_PID=
expect_exit 0 "after the holder ends, the lock is free" "$ND" --connect "$NODE" rescan "$NX_TMP/tenant.xml"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=

# --- batch ----------------------------------------------------------------------
# 210 tenants on 3 hosts: 5 share a VLAN with another tenant (invalid), 5 find
# their appliance's name taken by a foreign VM in the node (fail), 200 deploy.
bnode=$NX_TMP/batch-node.xml
plan=$NX_TMP/batch.xml
/usr/bin/python3 - "$bnode" "$plan" <<'PY'
import sys
node, plan = sys.argv[1], sys.argv[2]
with open(node, "w") as f:
    f.write("<node><network><name>prod</name><forward mode='bridge'/><bridge name='b0'/>"
            "<virtualport type='openvswitch'/></network>"
            "<network><name>v</name><forward mode='bridge'/><bridge name='b1'/>"
            "<virtualport type='openvswitch'/></network>")
    for i in range(7, 210, 42):
        f.write(f"<domain type='test'><name>netext-t{i:03d}-h{i % 3}</name><memory>65536</memory>"
                "<os><type>hvm</type></os></domain>")
    f.write("</node>\n")
with open(plan, "w") as f:
    f.write("<netext-plan xmlns='urn:netext-deploy:plan:1'><gateway address='gw'/>")
    for h in range(3):
        f.write(f"<host name='h{h}' uri='test:///default' production-network='prod' vlan-switch='v'/>")
    for i in range(210):
        vlan = 100 + i // 3
        if i % 42 == 20:
            vlan = 100 + (i - 3) // 3  # the VLAN of tenant i-3, same host
        f.write(f"<hardware-plan name='p{i}' host='h{i % 3}'><network name='n' vlan='{vlan}'/>"
                f"</hardware-plan><tenant name='t{i:03d}'><subscribe plan='p{i}'/></tenant>")
    f.write("</netext-plan>\n")
PY
expect_exit 1 "batch: some failed" "$ND" --connect "test://$bnode" -j 4 batch "$plan"
check "every tenant in the summary" sh -c "test \$(grep -c '^t[0-9]' '$NX_TMP/out') = 210"
check "summary totals" grep -q "batch: 210 tenants: 200 changed, 0 up to date, 0 planned, 5 failed, 0 refused, 5 invalid; 405 changes" "$NX_TMP/out"
check "invalid tenants are reported with file:line" sh -c "test \$(grep -c 'batch.xml:1: .*already belongs to tenant' '$NX_TMP/err') = 5"
check "plain progress lines (not a terminal)" sh -c "test \$(grep -c '^batch: \[[0-9]*/205\] tenant' '$NX_TMP/err') = 205"
check "failures carry the hypervisor's error" grep -q "^t007 .*failed: .*already exists" "$NX_TMP/out"
expect_exit 1 "batch --json" "$ND" --connect "test://$bnode" -j 8 --json batch "$plan"
check_json "JSON totals" \
    "t['tenants']==210 and t['changed']==200 and t['failed']==5 and t['invalid']==5 and len(d['tenants'])==210 and d['exit_code']==1"
expect_exit 65 "batch --dry-run: invalid tenants make it 65" "$ND" --connect "test://$bnode" --dry-run batch "$plan"
check "dry run plans and changes nothing" grep -q "205 planned, 0 failed, 0 refused, 5 invalid; 0 changes" "$NX_TMP/out"
expect_exit 65 "batch refuses everything on a problem that is not one tenant's" "$ND" --connect "test://$bnode" batch "$plan" "$top_srcdir/tests/data/bad/gateway-twice.xml"

finish
