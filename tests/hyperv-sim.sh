#!/bin/bash
# hyperv-sim.sh: netext-deploy's Hyper-V provider against the WS-Management
# simulator (tests/hyperv-sim/hyperv_sim.py) on 127.0.0.1: deploy, second run
# up to date, vNIC add/remove, VLAN read-back failure, job failure,
# interrupted create, auth failure, malformed answers, unsubscribe.
# Assertions read the simulator's own state (GET /state), not our output.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
PY=$NX_PY

hv_sim_require
require_provider hyperv

# our own lock and state directory: other tiers deploy tenant acme too
nx_tmpdir
tmp=$NX_TMP
trap 'hv_sim_stop_all; rm -rf "$tmp"' EXIT

pw="sim pw $RANDOM&<$RANDOM>"
printf '%s\n' "$pw" >"$tmp/pw"
chmod 600 "$tmp/pw"
hv_sim_start sim --password-file "$tmp/pw" --switch Production --switch VLAN-Switch --switch Spare ||
    { not_ok "the simulator starts"; finish; exit 1; }
port=$HV_SIM_PORT
uri=$HV_SIM_URI

{
    echo "user = administrator"
    echo "password = $pw"
} >"$tmp/creds"
chmod 600 "$tmp/creds"
{
    echo "user = administrator"
    echo "password = wrong-$pw"
} >"$tmp/badcreds"
chmod 600 "$tmp/badcreds"

# plan VLANS...: the tenant's networks on hv1
plan() {
    {
        echo '<?xml version="1.0" encoding="UTF-8"?>'
        echo '<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">'
        echo '  <gateway address="cc-gateway.sp.example.com" port="6180"/>'
        echo '  <defaults folder="Cloud_Connect_Replication"/>'
        echo "  <host name=\"hv1\" uri=\"$uri\" production-network=\"Production\" vlan-switch=\"VLAN-Switch\"/>"
        echo '  <hardware-plan name="Silver" host="hv1">'
        for v in "$@"; do echo "    <network name=\"net$v\" vlan=\"$v\"/>"; done
        echo '  </hardware-plan>'
        echo '  <tenant name="acme">'
        echo '    <subscribe plan="Silver"/>'
        echo '    <appliance host="hv1"><static ip="192.0.2.10/24" gateway="192.0.2.1"/></appliance>'
        echo '  </tenant>'
        echo '</netext-plan>'
    } >"$tmp/plan.xml"
}

control() { curl -s -X POST --data "$1" "http://127.0.0.1:$port/control" >/dev/null; }
# a summary of the simulator's state: one line per VM
state() {
    curl -s "http://127.0.0.1:$port/state" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for v in sorted(d["vms"], key=lambda v: v["name"]):
    nics = sorted("%s/%s" % (n["switch"], n["vlan"] or 0) for n in v["nics"])
    print(v["name"], "state=%s" % v["state"], " ".join(nics))'
}
sim() { curl -s "http://127.0.0.1:$port/state" | "$PY" -c "import json, sys; d = json.load(sys.stdin); $1"; }
run() { # run ARGS...: stdout in $tmp/out, stderr in $tmp/err, status in $rc
    "$NETEXT_DEPLOY" --credentials "$tmp/creds" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
jfield() { "$PY" -c "import json, sys; print(json.load(open('$tmp/out'))['$1'])" 2>/dev/null; }

# ---- more VLANs than a Windows Server 2016 VM has network adapters --------------
plan 201 202 203 204 205 206 207 208 209 210 211 212
before=$(sim 'print(d["counters"]["invokes"])')
run subscribe --tenant acme "$tmp/plan.xml"
after=$(sim 'print(d["counters"]["invokes"])')
if [ $rc = 65 ] && grep -q "would need 13 vNICs (the production network and 12 VLANs), more than the 8 a VM can have on hyperv" "$tmp/err" &&
    [ -z "$(state)" ] && [ "$before" = "$after" ]; then
    ok "12 VLANs on one host: refused before any change (exit 65, no VM, no method invoked)"
else not_ok "12 VLANs: rc=$rc invokes $before->$after state=$(state) $(cat "$tmp/err")"; fi

# ---- deploy --------------------------------------------------------------------
plan 101 102
run --json subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && [ "$(state)" = "netext-acme-hv1 state=2 Production/0 VLAN-Switch/101 VLAN-Switch/102" ]; then
    ok "deploy: one running VM, production vNIC + VLANs 101, 102 (read from the simulator)"
else not_ok "deploy: rc=$rc state=$(state) $(cat "$tmp/err")"; fi
grep -q "plain HTTP" "$tmp/err" && ok "hyperv+http: warned about plain HTTP" || not_ok "no plain-HTTP warning"

out=$(sim '
v = d["vms"][0]
import base64, hashlib
n = int(v["kvp"]["netext-deploy.payload.count"])
data = base64.b64decode("".join(v["kvp"]["netext-deploy.payload.%03d" % i] for i in range(n)))
ok = hashlib.sha256(data).hexdigest() == v["kvp"]["netext-deploy.payload.sha256"]
print(v["subtype"], v["config_root"] == v["snapshot_root"] == v["swap_root"], v["config_root"],
      ok, ("digest=" + v["kvp"]["netext-deploy.payload.sha256"]) in v["notes"][0],
      all(n["static"] and n["mac"].startswith("02") for n in v["nics"]), data[:5])')
if [ "$out" = 'Microsoft:Hyper-V:SubType:2 True C:\ProgramData\Microsoft\Windows\Hyper-V\Cloud_Connect_Replication\acme True True True b'"'"'<?xml'"'" ]; then
    ok "generation 2, data roots in Cloud_Connect_Replication\\acme, KVP payload intact, marker digest, static 02: MACs"
else not_ok "VM settings: $out"; fi

# ---- second run --------------------------------------------------------------
before=$(sim 'print(d["counters"]["invokes"])')
run --json subscribe --tenant acme "$tmp/plan.xml"
after=$(sim 'print(d["counters"]["invokes"])')
if [ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && [ "$(jfield result)" = up-to-date ] && [ "$before" = "$after" ]; then
    ok "second run: up to date, 0 changes, no method invoked"
else not_ok "second run: rc=$rc changes=$(jfield changes) invokes $before->$after"; fi

run status --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && grep -q "netext-acme-hv1.*up to date" "$tmp/out"; then ok "status: up to date"
else not_ok "status: rc=$rc $(cat "$tmp/out" "$tmp/err")"; fi

# ---- vNIC add/remove ---------------------------------------------------------
plan 101 103 104
before=$(sim 'print(d["counters"]["invokes"])')
run --dry-run -v -v subscribe --tenant acme "$tmp/plan.xml"
after=$(sim 'print(d["counters"]["invokes"])')
if [ $rc = 0 ] && [ "$before" = "$after" ] && grep -q "add-vnic.*VLAN 103" "$tmp/out" &&
    grep -q "remove-vnic.*VLAN 102" "$tmp/out"; then
    ok "dry run: lists the vNIC changes, invokes nothing"
else not_ok "dry run: rc=$rc invokes $before->$after $(cat "$tmp/out" "$tmp/err")"; fi
cp "$tmp/err" "$tmp/debug.log" # -v -v: checked for the password below
grep -q "wsman: Enumerate" "$tmp/debug.log" && ok "-v -v logs the WS-Man operations" || not_ok "no debug log: $(head -3 "$tmp/debug.log")"
run --json subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && [ "$(state)" = "netext-acme-hv1 state=2 Production/0 VLAN-Switch/101 VLAN-Switch/103 VLAN-Switch/104" ]; then
    ok "plan change: VLAN 102 removed, 103 and 104 added"
else not_ok "vNIC change: rc=$rc state=$(state) $(cat "$tmp/err")"; fi
run --json subscribe --tenant acme "$tmp/plan.xml"
[ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "after the change: up to date" || not_ok "after change: $(cat "$tmp/out")"

# ---- VLAN read-back failure ----------------------------------------------------
control '{"drop_vlan": true}'
plan 101 103 104 105
run subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 1 ] && grep -q "VLAN 105 did not apply" "$tmp/err"; then
    ok "VLAN dropped silently by the host: read back, reported, exit 1"
else not_ok "VLAN read-back: rc=$rc $(cat "$tmp/err")"; fi
control '{"drop_vlan": false}'
run --json subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && [ "$(state)" = "netext-acme-hv1 state=2 Production/0 VLAN-Switch/101 VLAN-Switch/103 VLAN-Switch/104 VLAN-Switch/105" ]; then
    ok "next run converges: the untagged vNIC replaced by one on VLAN 105"
else not_ok "after VLAN failure: rc=$rc state=$(state) $(cat "$tmp/err")"; fi

# ---- job failure -----------------------------------------------------------------
control '{"fail_next_job": "Simulated failure: insufficient system resources", "fail_method": "AddResourceSettings"}'
plan 101 103 104 105 106
run subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 1 ] && grep -q "AddResourceSettings failed: job ended in exception (error 32768): Simulated failure: insufficient system resources" "$tmp/err"; then
    ok "failed Msvm_ConcreteJob: its error text reported, exit 1"
else not_ok "job failure: rc=$rc $(cat "$tmp/err")"; fi
run --json subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && state | grep -q "VLAN-Switch/106"; then ok "next run adds the vNIC that failed"
else not_ok "after job failure: rc=$rc state=$(state)"; fi

# ---- interrupted create: converges, no duplicate ---------------------------------
plan 101 103 104 105 106
sed -i 's/<tenant name="acme">/<tenant name="beta"><subscribe plan="Silver2"\/><appliance host="hv1"><static ip="192.0.2.11\/24" gateway="192.0.2.1"\/><\/appliance><\/tenant>\n  <tenant name="acme">/; s/<\/hardware-plan>/<\/hardware-plan>\n  <hardware-plan name="Silver2" host="hv1"><network name="b1" vlan="201"\/><\/hardware-plan>/' "$tmp/plan.xml"
control '{"fail_next_job": "Simulated failure: KVP component not ready", "fail_method": "AddKvpItems"}'
run subscribe --tenant beta "$tmp/plan.xml"
first=$rc
run --json subscribe --tenant beta "$tmp/plan.xml"
n=$(sim 'print(sum(1 for v in d["vms"] if v["name"] == "netext-beta-hv1"))')
kvp=$(sim 'v = [v for v in d["vms"] if v["name"] == "netext-beta-hv1"][0]; print(("digest=" + v["kvp"].get("netext-deploy.payload.sha256", "none")) in v["notes"][0])')
if [ "$first" = 1 ] && [ $rc = 0 ] && [ "$n" = 1 ] && [ "$kvp" = True ]; then
    ok "create interrupted after DefineSystem: next run completes it (1 VM, payload and digest in place)"
else not_ok "interrupted create: first=$first rc=$rc vms=$n kvp=$kvp $(cat "$tmp/err")"; fi

# ---- authentication failure ------------------------------------------------------
"$NETEXT_DEPLOY" --credentials "$tmp/badcreds" subscribe --tenant acme "$tmp/plan.xml" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 77 ] && grep -q "authentication failed (HTTP 401)" "$tmp/err"; then ok "wrong password: exit 77, clear message"
else not_ok "auth failure: rc=$rc $(cat "$tmp/err")"; fi
if grep -qF -- "$pw" "$tmp/out" "$tmp/err" "$tmp/debug.log" "$tmp/sim.out" "$tmp/sim.err"; then
    not_ok "the password appeared in an output"
else ok "the password never appears in outputs, debug logs or simulator logs"; fi

# ---- NTLM (libcurl's NTLMv2) instead of Basic ---------------------------------------
sed "s|$uri|$uri?auth=ntlm|" "$tmp/plan.xml" >"$tmp/ntlm.xml"
"$NETEXT_DEPLOY" --credentials "$tmp/creds" --json subscribe --tenant acme "$tmp/ntlm.xml" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 0 ] && [ "$(jfield changes)" = 0 ]; then ok "?auth=ntlm: NTLM handshake, then up to date"
else not_ok "ntlm: rc=$rc $(cat "$tmp/err")"; fi
"$NETEXT_DEPLOY" --credentials "$tmp/badcreds" status --tenant acme "$tmp/ntlm.xml" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 77 ] && grep -q "authentication failed (HTTP 401)" "$tmp/err"; then ok "?auth=ntlm with a wrong password: exit 77"
else not_ok "ntlm bad password: rc=$rc $(cat "$tmp/err")"; fi

# ---- malformed answers -------------------------------------------------------------
# a read whose answer is malformed is asked again (up to 4 times in all):
# malformed on every attempt, the run ends with a clear error; once, it is
# retried and succeeds
for mode in truncated garbage html doctype empty; do
    control "{\"malformed\": \"$mode\", \"malformed_count\": 4}"
    run subscribe --tenant acme "$tmp/plan.xml"
    if [ $rc != 0 ] && grep -qi "malformed\|not a SOAP\|empty answer\|DOCTYPE\|entity" "$tmp/err" &&
        ! grep -q "root:x:0" "$tmp/err"; then
        ok "malformed answer ($mode) every time: refused with a clear error (exit $rc)"
    else not_ok "malformed $mode: rc=$rc $(cat "$tmp/err")"; fi
    control "{\"malformed\": null, \"malformed_count\": 0}"
done
control '{"malformed": "truncated", "malformed_count": 1}'
run -v subscribe --tenant acme "$tmp/plan.xml"
[ $rc = 0 ] && grep -q "retry 1/3" "$tmp/err" && ok "one truncated answer to a read: retried, the run succeeds" ||
    not_ok "one truncated answer: rc=$rc $(cat "$tmp/err")"
run --json subscribe --tenant acme "$tmp/plan.xml"
[ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "after the malformed answers: up to date" ||
    not_ok "after malformed: rc=$rc $(cat "$tmp/out" "$tmp/err")"

# ---- unknown switch: refused before any change ------------------------------------
sed 's/vlan-switch="VLAN-Switch"/vlan-switch="No-Such-Switch"/' "$tmp/plan.xml" >"$tmp/plan2.xml"
before=$(sim 'print(d["counters"]["invokes"])')
"$NETEXT_DEPLOY" --credentials "$tmp/creds" subscribe --tenant acme "$tmp/plan2.xml" >"$tmp/out" 2>"$tmp/err"
rc=$?
after=$(sim 'print(d["counters"]["invokes"])')
if [ $rc = 65 ] && grep -q "virtual switch 'No-Such-Switch' does not exist" "$tmp/err" && [ "$before" = "$after" ]; then
    ok "unknown virtual switch: refused (65), nothing invoked"
else not_ok "unknown switch: rc=$rc invokes $before->$after $(cat "$tmp/err")"; fi

# ---- unsubscribe -------------------------------------------------------------------
run unsubscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && [ "$(state)" = "$(state | grep beta)" ] && ! state | grep -q acme; then
    ok "unsubscribe: powered off and destroyed; the other tenant's VM stays"
else not_ok "unsubscribe: rc=$rc state=$(state) $(cat "$tmp/err")"; fi

# ---- hosts that name new objects only through the job -----------------------------
control '{"omit_results": true}'
run --json subscribe --tenant acme "$tmp/plan.xml"
n=$(sim 'print(sum(1 for v in d["vms"] if v["name"] == "netext-acme-hv1"))')
if [ $rc = 0 ] && [ "$n" = 1 ] && [ "$(state | grep acme)" = "netext-acme-hv1 state=2 Production/0 VLAN-Switch/101 VLAN-Switch/103 VLAN-Switch/104 VLAN-Switch/105 VLAN-Switch/106" ]; then
    ok "no ResultingSystem/ResultingResourceSettings in answers: VM and settings found by query"
else not_ok "omit_results: rc=$rc vms=$n state=$(state) $(cat "$tmp/err")"; fi
control '{"omit_results": false}'
run --json subscribe --tenant acme "$tmp/plan.xml"
[ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "then up to date" || not_ok "after omit_results: $(cat "$tmp/out" "$tmp/err")"

# ---- two Hyper-V hosts, each with its own password --------------------------------
printf 'other %s\n' "$RANDOM" >"$tmp/pw2"
hv_sim_start sim2 --password-file "$tmp/pw2" --host-name HVSIM02
sim2_pid=$HV_SIM_PID
port2=$HV_SIM_PORT
uri2=$HV_SIM_URI
{
    echo "user = administrator"
    echo "password = $pw"
    echo "[$uri2]"
    echo "user = administrator"
    echo "password = $(cat "$tmp/pw2")"
} >"$tmp/creds2"
chmod 600 "$tmp/creds2"
sed "s|</netext-plan>|  <host name=\"hv2\" uri=\"$uri2\" production-network=\"Production\" vlan-switch=\"VLAN-Switch\"/>\n  <hardware-plan name=\"Bronze\" host=\"hv2\"><network name=\"x\" vlan=\"501\"/><network name=\"y\" vlan=\"502\"/></hardware-plan>\n</netext-plan>|; s|<subscribe plan=\"Silver\"/>|<subscribe plan=\"Silver\"/><subscribe plan=\"Bronze\"/>|; s|<appliance host=\"hv1\"><static ip=\"192.0.2.10/24\" gateway=\"192.0.2.1\"/></appliance>|&<appliance host=\"hv2\"><dhcp/></appliance>|" \
    "$tmp/plan.xml" >"$tmp/two.xml"
"$NETEXT_DEPLOY" --credentials "$tmp/creds2" --json subscribe --tenant acme "$tmp/two.xml" >"$tmp/out" 2>"$tmp/err"
rc=$?
s2=$(curl -s "http://127.0.0.1:$port2/state" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s:%s" % (v["name"], ",".join("%s/%s" % (n["switch"], n["vlan"] or 0) for n in v["nics"])) for v in d["vms"]))')
if [ $rc = 0 ] && [ "$s2" = "netext-acme-hv2:Production/0,VLAN-Switch/501,VLAN-Switch/502" ] &&
    [ "$(state | grep -c acme)" = 1 ]; then
    ok "two hosts: one appliance on each, credentials per URI"
else not_ok "two hosts: rc=$rc hv2=$s2 $(cat "$tmp/err")"; fi
"$NETEXT_DEPLOY" --credentials "$tmp/creds2" --json subscribe --tenant acme "$tmp/two.xml" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "two hosts: second run up to date" ||
    not_ok "two hosts again: rc=$rc $(cat "$tmp/err")"
hv_sim_stop "$sim2_pid"

# ---- tenant side: production network detected from the host's VMs --------------
hv_sim_start ssim --password-file "$tmp/pw" --switch LAN --switch DB \
    --seed-vm prod1:LAN --seed-vm prod2:LAN --seed-vm prod3:LAN --seed-vm db1:DB
ssim_pid=$HV_SIM_PID
sport=$HV_SIM_PORT
cat >"$tmp/sp.xml" <<XML
<netext-plan xmlns="urn:netext-deploy:plan:1">
  <gateway address="gw.sp.example.com"/>
  <host name="esx1" uri="test:///default" production-network="prod" vlan-switch="v"/>
  <hardware-plan name="p" host="esx1"><network name="lan" vlan="10"/></hardware-plan>
  <tenant name="initech"><subscribe plan="p"/></tenant>
</netext-plan>
XML
cat >"$tmp/tenant.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="initech.bundle">
  <source-host name="src" uri="hyperv+http://127.0.0.1:$sport/wsman"/>
</netext-tenant>
XML
if "$NETEXT_DEPLOY" --tenant initech -o "$tmp/initech.bundle" export-bundle "$tmp/sp.xml" >/dev/null 2>&1; then
    run rescan "$tmp/tenant.xml"
    got=$(curl -s "http://127.0.0.1:$sport/state" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s:%s" % (v["name"], ",".join(n["switch"] for n in v["nics"]))
               for v in d["vms"] if v["notes"] and v["notes"][0].startswith("netext-deploy:")))')
    if [ $rc = 0 ] && [ "$got" = "netext-t-initech-LAN:LAN" ]; then
        ok "tenant side: appliance on LAN, the switch 3 of 4 production VMs use"
    else not_ok "tenant side: rc=$rc appliances=$got $(cat "$tmp/err")"; fi
    run --json rescan "$tmp/tenant.xml"
    [ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "tenant side: second rescan up to date" ||
        not_ok "tenant rescan 2: rc=$rc $(cat "$tmp/out" "$tmp/err")"
else
    not_ok "export-bundle failed"
fi
hv_sim_stop "$ssim_pid"

# ---- HTTPS (the default transport) with certificate verification ---------------
if command -v openssl >/dev/null; then
    (
        cd "$tmp" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=netext test CA" \
            -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign >/dev/null 2>&1 &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout srv.key \
            -out srv.csr >/dev/null 2>&1 &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >srv.ext &&
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile srv.ext -out srv.pem >/dev/null 2>&1
    )
    hv_sim_start tsim --password-file "$tmp/pw" --tls-cert "$tmp/srv.pem" --tls-key "$tmp/srv.key"
    tsim_pid=$HV_SIM_PID
    tport=$HV_SIM_PORT
    tplan="$tmp/tplan.xml"
    sed "s|$uri|hyperv://127.0.0.1:$tport/wsman|" "$tmp/plan.xml" >"$tplan"
    "$NETEXT_DEPLOY" --credentials "$tmp/creds" status --tenant acme "$tplan" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc = 69 ] && grep -q "certificate" "$tmp/err"; then ok "https: an unknown CA is refused (exit 69)"
    else not_ok "https without CA: rc=$rc $(cat "$tmp/err")"; fi
    "$NETEXT_DEPLOY" --credentials "$tmp/creds" --cacert "$tmp/ca.pem" subscribe --tenant acme \
        "$tplan" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    n=$(curl -s --cacert "$tmp/ca.pem" "https://127.0.0.1:$tport/state" | "$PY" -c \
        'import json, sys; print(len(json.load(sys.stdin)["vms"]))')
    if [ $rc = 0 ] && [ "$n" = 1 ] && ! grep -q "plain HTTP" "$tmp/err"; then
        ok "https on the simulator with --cacert: deployed, no plain-HTTP warning"
    else not_ok "https with CA: rc=$rc vms=$n $(cat "$tmp/err")"; fi
    fp=$(openssl x509 -in "$tmp/srv.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
    "$NETEXT_DEPLOY" --credentials "$tmp/creds" --thumbprint "$fp" --json subscribe --tenant acme \
        "$tplan" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc = 0 ] && [ "$(jfield changes)" = 0 ]; then ok "https with a pinned thumbprint: up to date"
    else not_ok "https with thumbprint: rc=$rc $(cat "$tmp/err")"; fi
    hv_sim_stop "$tsim_pid"
else
    echo "# openssl not installed: HTTPS checks not run"
fi
finish
