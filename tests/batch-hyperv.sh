#!/bin/sh
# batch-hyperv.sh: batch mode against three simulated Hyper-V hosts: 210
# tenants, of which 5 are invalid (a VLAN another tenant has on that host)
# and 5 live on a host that silently drops VLAN settings (their VLAN
# read-back fails): 200 deployed, 5 failed, 5 invalid; a re-run changes
# nothing for the 200 and retries only the failing ones. Checked against the
# simulators' own state.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
PY=$NX_PY
slow_tier
hv_sim_require
require_provider hyperv
nx_tmpdir
trap 'hv_sim_stop_all; rm -rf "$NX_TMP"' EXIT
printf 'batch-pw-%s\n' "$$" > "$NX_TMP/pw"
chmod 600 "$NX_TMP/pw"
sim() { # sim NAME: one of the three hosts
    hv_sim_start "$1" --password-file "$NX_TMP/pw" --switch Production --switch VLANs --job-polls 0 ||
        { not_ok "simulator $1 starts"; finish; exit 1; }
}
sim hv1
port1=$HV_SIM_PORT
sim hv2
port2=$HV_SIM_PORT
sim hv3
port3=$HV_SIM_PORT
curl -s -X POST --data '{"drop_vlan": true}' "http://127.0.0.1:$port2/control" > /dev/null
printf 'user = administrator\npassword = %s\n' "$(cat "$NX_TMP/pw")" > "$NX_TMP/creds"
chmod 600 "$NX_TMP/creds"
"$PY" - "$NX_TMP/plan.xml" "$port1" "$port2" "$port3" <<'PY'
import sys
path, p1, p2, p3 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(path, "w") as f:
    f.write("<netext-plan xmlns='urn:netext-deploy:plan:1'><gateway address='gw'/>")
    for h, p in (("hv1", p1), ("hv2", p2), ("hv3", p3)):
        f.write(f"<host name='{h}' uri='hyperv+http://127.0.0.1:{p}/wsman' "
                "production-network='Production' vlan-switch='VLANs'/>")
    for i in range(210):
        # the good tenants on two hosts (one connection each, in parallel)
        host = "hv2" if i % 42 == 7 else ("hv1" if i % 2 else "hv3")
        vlan = 100 + i
        if i % 42 == 20:
            vlan = 100 + i - 2   # tenant i-2's VLAN on the same host: invalid
        f.write(f"<hardware-plan name='p{i}' host='{host}'><network name='n' vlan='{vlan}'/>"
                f"</hardware-plan><tenant name='t{i:03d}'><subscribe plan='p{i}'/></tenant>")
    f.write("</netext-plan>\n")
PY
ND() { "$NETEXT_DEPLOY" -q --credentials "$NX_TMP/creds" "$@"; }
vms() { curl -s "http://127.0.0.1:$1/state" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["vms"]))'; }

t0=$(date +%s)
expect_exit 1 "batch of 210: some fail" ND -j 4 --json batch "$NX_TMP/plan.xml"
echo "# first run: $(( $(date +%s) - t0 )) s"
check_json "200 changed, 5 failed, 5 invalid" \
    "t['changed']==200 and t['failed']==5 and t['invalid']==5 and t['refused']==0"
check_json "failures are VLAN read-backs on hv2" \
    "len(bad := [x for x in d['tenants'] if x['result']=='failed'])==5 and all('VLAN' in x.get('error','') for x in bad)"
check "hv1 and hv3 hold exactly the 200 appliances" test "$(( $(vms "$port1") + $(vms "$port3") ))" = 200
expect_exit 1 "re-run: only the failing tenants are retried" ND -j 4 --json batch "$NX_TMP/plan.xml"
check_json "re-run: 200 up to date, 5 failed again" "t['up-to-date']==200 and t['failed']==5"
check "still exactly 200 appliances (no duplicate)" test "$(( $(vms "$port1") + $(vms "$port3") ))" = 200
curl -s -X POST --data '{"drop_vlan": false}' "http://127.0.0.1:$port2/control" > /dev/null
expect_exit 65 "once hv2 behaves: everything valid is done, invalid ones remain (65)" ND -j 4 --json batch "$NX_TMP/plan.xml"
check_json "205 done, 5 invalid" "t['up-to-date']==200 and t['changed']==5 and t['invalid']==5"
check "hv2 holds the 5 appliances, each once" test "$(vms "$port2")" = 5
finish
