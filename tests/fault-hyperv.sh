#!/bin/sh
# fault-hyperv.sh: netext-deploy's Hyper-V provider through the fault proxy
# (tests/faultproxy) in front of the WS-Management simulator
# (tests/hyperv-sim/hyperv_sim.py). Single faults on DefineSystem and on the
# power-on, then seeded random faults at FAULT_RATES (default 0.2; seed
# FAULT_SEED, printed). Every run ends with success or a clear error, never a
# crash or a hang; re-runs converge to "up to date"; the simulator's own state
# (GET /state: VMs, vNICs, VLANs, KVP payload, jobs) must match the plan, with
# one DefineSystem job per appliance (nothing created twice). Then the
# half-way failures: a job failing after DefineSystem (adding a vNIC, the
# power-on): reported per tenant (exit 1, the action failed in --json) and
# finished by the next run.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$top_srcdir/tests/fault-lib.sh"

require_provider hyperv
slow_tier
nx_tmpdir
trap 'fp_stop_all; hv_sim_stop_all; [ -n "$NX_KEEP" ] || rm -rf "$NX_TMP"' EXIT INT TERM
fp_require
N=${FAULT_TENANTS:-8}
RATES=${FAULT_RATES:-0.2}
SEED=${FAULT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
# Method calls are repeated only when they certainly did not run (no
# connection, 502-504), so under 20 % faults each run advances each tenant by
# a few calls and leaves the rest to the next: convergence takes several runs.
MAXRUNS=${FAULT_MAX_RUNS:-15}
RUN_LIMIT=${FAULT_RUN_LIMIT:-90}
echo "# fault-hyperv: $N tenants, rates $RATES, seed $SEED (FAULT_SEED=$SEED replays)"

umask 077
printf 'sim-pw-%s\n' "$SEED" >"$NX_TMP/pw"
hv_sim_start sim --password-file "$NX_TMP/pw" --auth basic --switch Production --switch VLAN-Switch ||
    { not_ok "the simulator starts"; finish; exit 1; }
SIM=$HV_SIM_URL
printf 'user = administrator\npassword = sim-pw-%s\n' "$SEED" >"$NX_TMP/creds"
fp_start proxy "$SIM" --seed "$SEED" || { not_ok "fault proxy starts"; finish; exit 1; }
PURI="hyperv+http://127.0.0.1:$FP_PORT/wsman"

# plan FILE [ONLY-TENANT-NUMBER] [SECOND-NETWORK-TENANTS]
plan() {
    "$FPY" - "$1" "$PURI" "$N" "${2:-}" "${3:-}" <<'EOF'
import sys
out, uri, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
only = int(sys.argv[4]) if sys.argv[4] else None
second = {int(x) for x in sys.argv[5].split()}
with open(out, "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">\n'
            '  <gateway address="cc-gateway.sp.example.com" port="6180"/>\n'
            '  <host name="hv1" uri="%s" production-network="Production" vlan-switch="VLAN-Switch"/>\n' % uri)
    for i in range(n):
        if only is not None and i != only:
            continue
        nets = '<network name="n" vlan="%d"/>' % (100 + i)
        if i in second:
            nets += '<network name="m" vlan="%d"/>' % (200 + i)
        f.write('  <hardware-plan name="p%02d" host="hv1">%s</hardware-plan>\n'
                '  <tenant name="t%02d"><subscribe plan="p%02d"/></tenant>\n' % (i, nets, i, i))
    f.write("</netext-plan>\n")
EOF
}
control() { curl -s -X POST --data "$1" "$SIM/control" >/dev/null; }
# state_check PLAN [partial]: the simulator's state against the plan; prints
# problems and a summary line; exit 1 on any problem
state_check() {
    curl -s "$SIM/state" >"$NX_TMP/state.json"
    "$FPY" - "$1" "$NX_TMP/state.json" "${2:-}" <<'EOF'
import base64, hashlib, json, re, sys
plan = open(sys.argv[1]).read()
d = json.load(open(sys.argv[2]))
partial = sys.argv[3] == "partial"
want = {}
for t, nets in re.findall(r'<hardware-plan name="p\d+" host="hv1">(.*?)</hardware-plan>\s*<tenant name="(t\d+)"', plan):
    pass
for nets, t in re.findall(r'<hardware-plan name="p\d+" host="hv1">(.*?)</hardware-plan>\s*<tenant name="(t\d+)"', plan):
    want[t] = sorted(["Production/0"] + ["VLAN-Switch/%s" % v for v in re.findall(r'vlan="(\d+)"', nets)])
bad = []
seen = {}
for v in d["vms"]:
    notes = " ".join(v.get("notes") or [])
    m = re.search(r"netext-deploy:1 .*tenant=(\S+)", notes)
    if not m:
        if (v["name"] or "").startswith("netext-"):
            bad.append("%s: an appliance name without a marker" % v["name"])
        continue
    t = m.group(1)
    if partial and t not in want:
        continue
    if t in seen:
        bad.append("duplicate appliance for %s: %s and %s" % (t, seen[t], v["name"]))
        continue
    seen[t] = v["name"]
    if t not in want:
        bad.append("orphan: %s marked for %s" % (v["name"], t))
        continue
    if v["name"] != "netext-%s-hv1" % t:
        bad.append("%s: named otherwise" % v["name"])
    if v["state"] != 2:
        bad.append("%s: EnabledState %s, not running" % (v["name"], v["state"]))
    nics = sorted("%s/%s" % (n["switch"], n["vlan"] or 0) for n in v["nics"])
    if nics != want[t]:
        bad.append("%s: vNICs %s, wanted %s" % (v["name"], nics, want[t]))
    kvp = v.get("kvp") or {}
    try:
        k = int(kvp["netext-deploy.payload.count"])
        data = base64.b64decode("".join(kvp["netext-deploy.payload.%03d" % i] for i in range(k)))
        if hashlib.sha256(data).hexdigest() != kvp["netext-deploy.payload.sha256"] or \
                ("digest=" + kvp["netext-deploy.payload.sha256"]) not in notes:
            bad.append("%s: payload and marker digest disagree" % v["name"])
    except (KeyError, ValueError):
        bad.append("%s: no complete payload in KVP" % v["name"])
for t in want:
    if t not in seen:
        bad.append("missing: no appliance for %s" % t)
print("\n".join(bad)) if bad else None
print("state: %d appliances expected, %d found, %d problems" % (len(want), len(seen), len(bad)))
sys.exit(1 if bad else 0)
EOF
}
jobs() { # jobs METHOD: how many jobs the simulator ran for METHOD
    curl -s "$SIM/state" | "$FPY" -c "import json, sys; print(sum(1 for j in json.load(sys.stdin)['jobs'] if j['method'] == '$1'))"
}
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/creds" --timeout 30 "$@"; }

# ---- one fault on one call -------------------------------------------------------
plan "$NX_TMP/one.xml" 3
targeted() { # targeted LABEL RULE-JSON
    ND -q unsubscribe --tenant t03 "$NX_TMP/one.xml" >/dev/null 2>&1
    d0=$(jobs DefineSystem)
    fp_config "{\"rate\": 0, \"rules\": [$2]}"
    t0=$(date +%s)
    timeout "$RUN_LIMIT" "$NETEXT_DEPLOY" --credentials "$NX_TMP/creds" --timeout 30 -v \
        subscribe --tenant t03 "$NX_TMP/one.xml" >"$NX_TMP/t.out" 2>"$NX_TMP/t.err"
    rc=$?
    el=$(($(date +%s) - t0))
    fp_config '{"rules": []}'
    case $rc in
    0 | 1 | 69 | 76) ok "$1: the run ends (exit $rc, ${el}s)" ;;
    124) not_ok "$1: the run hangs (killed after ${RUN_LIMIT}s)" ;;
    *) not_ok "$1: the run ends with exit $rc" ;;
    esac
    [ $rc = 0 ] || check "$1: a clear error" sh -c "grep -v '^netext-deploy: \(warning\|info\|debug\):' '$NX_TMP/t.err' | grep -q '^netext-deploy: '"
    ND subscribe --tenant t03 "$NX_TMP/one.xml" >/dev/null 2>&1
    ND --json subscribe --tenant t03 "$NX_TMP/one.xml" >"$NX_TMP/json" 2>/dev/null
    check "$1: then up to date" "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/json')); sys.exit(d['changes'] != 0)"
    state_check "$NX_TMP/one.xml" partial >"$NX_TMP/s"
    check "$1: the simulator holds the planned appliance ($(tail -1 "$NX_TMP/s"))" test $? = 0
    grep -v '^state:' "$NX_TMP/s" | grep . | head -3 | sed 's/^/#     /'
    DEFINES=$(($(jobs DefineSystem) - d0))
}
for f in drop-before drop-after http-500 http-503 soap-fault truncate cut delay; do
    targeted "$f on DefineSystem" "{\"method\": \"DefineSystem\", \"fault\": \"$f\"}"
    check "$f on DefineSystem: one DefineSystem in all ($DEFINES)" test "$DEFINES" = 1
done
for f in drop-after truncate; do
    targeted "$f on RequestStateChange (power-on)" "{\"method\": \"RequestStateChange\", \"fault\": \"$f\"}"
    check "$f on the power-on: one DefineSystem ($DEFINES)" test "$DEFINES" = 1
done
targeted "drop-after on a job poll (Get)" '{"method": "Get", "fault": "drop-after", "skip": 1}'

# ---- random faults ------------------------------------------------------------------
for rate in $RATES; do
    plan "$NX_TMP/all.xml" "" ""
    ND -q unsubscribe --tenant t03 "$NX_TMP/all.xml" >/dev/null 2>&1
    d0=$(jobs DefineSystem)
    : >"$NX_TMP/proxy.log"
    fp_config "{\"rate\": $rate, \"seed\": $SEED}"
    runs=0
    bad=""
    rc=1
    t0=$(date +%s)
    while [ $runs -lt "$MAXRUNS" ] && [ $rc != 0 ]; do
        runs=$((runs + 1))
        timeout "$RUN_LIMIT" "$NETEXT_DEPLOY" --credentials "$NX_TMP/creds" --timeout 30 -j 4 \
            batch "$NX_TMP/all.xml" >"$NX_TMP/run.out" 2>"$NX_TMP/run.err"
        rc=$?
        echo "#   rate $rate run $runs: exit $rc: $(tail -1 "$NX_TMP/run.out")"
        grep -v "^netext-deploy: \(warning\|info\|debug\):" "$NX_TMP/run.err" | grep -a "^netext-deploy: " | head -2 | sed 's/^/#     /'
        case $rc in
        0) ;;
        1 | 65 | 69 | 75 | 76) grep -v "^netext-deploy: \(warning\|info\|debug\):" "$NX_TMP/run.err" |
            grep -q "^netext-deploy: \|failed\|\.xml:[0-9]*: " || {
            bad="$bad run $runs exit $rc without a message;"
            tail -3 "$NX_TMP/run.err" | sed 's/^/#     | /'
        } ;;
        124) bad="$bad run $runs hung;" ;;
        *) bad="$bad run $runs exit $rc;" ;;
        esac
    done
    fp_config '{"rate": 0}'
    echo "#   proxy: $(fp_fault_summary "$NX_TMP/proxy.log")"
    check "rate $rate: a run under faults succeeded within $MAXRUNS runs ($runs runs, $(($(date +%s) - t0))s)" test $rc = 0
    check "rate $rate: every run ended cleanly${bad:+ ($bad)}" test -z "$bad"
    ND batch "$NX_TMP/all.xml" >"$NX_TMP/run.out" 2>"$NX_TMP/run.err"
    check "rate $rate: then a run without faults finishes what is left (exit $?)" test $? = 0
    ND --json batch "$NX_TMP/all.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
    check "rate $rate: then up to date" "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/json')); sys.exit(d['changes'] != 0 or d['exit_code'] != 0)"
    state_check "$NX_TMP/all.xml" >"$NX_TMP/s"
    check "rate $rate: the simulator holds the planned state ($(tail -1 "$NX_TMP/s"))" test $? = 0
    grep -v '^state:' "$NX_TMP/s" | grep . | head -5 | sed 's/^/#     /'
    d1=$(jobs DefineSystem)
    check "rate $rate: one DefineSystem per new appliance ($((d1 - d0)) for $((N - 0)) tenants, t03 re-created)" \
        test $((d1 - d0)) -le "$N"
done

# ---- half-way: a job fails after DefineSystem ----------------------------------------
plan "$NX_TMP/h.xml" 5
halfway() { # halfway LABEL METHOD ACTION
    ND -q unsubscribe --tenant t05 "$NX_TMP/h.xml" >/dev/null 2>&1
    d0=$(jobs DefineSystem)
    control "{\"fail_next_job\": \"Simulated failure ($2)\", \"fail_method\": \"$2\"}"
    ND --json subscribe --tenant t05 "$NX_TMP/h.xml" >"$NX_TMP/h.json" 2>"$NX_TMP/h.err"
    rc=$?
    check "$1: exit 1 (exit $rc)" test $rc = 1
    check "$1: --json marks $3 failed" "$FPY" -c "
import json, sys
d = json.load(open('$NX_TMP/h.json'))
a = [(x['action'], x['status']) for x in d['actions']]
print('#     actions:', a)
sys.exit(not (('$3', 'failed') in a and d['exit_code'] == 1))"
    check "$1: the error names the appliance and the job's error" \
        grep -q "netext-t05-hv1.*Simulated failure ($2)" "$NX_TMP/h.err"
    n=$(curl -s "$SIM/state" | "$FPY" -c "import json,sys; print(sum(1 for v in json.load(sys.stdin)['vms'] if v['name'] == 'netext-t05-hv1'))")
    check "$1: the VM exists ($n)" test "$n" = 1
    ND --json subscribe --tenant t05 "$NX_TMP/h.xml" >"$NX_TMP/h2.json" 2>"$NX_TMP/h2.err"
    check "$1: the next run finishes it (exit $?)" "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/h2.json')); sys.exit(not (d['exit_code']==0 and d['changes']>=1))"
    state_check "$NX_TMP/h.xml" partial >"$NX_TMP/s"
    check "$1: the simulator holds the planned appliance ($(tail -1 "$NX_TMP/s"))" test $? = 0
    check "$1: one DefineSystem in all" test $(($(jobs DefineSystem) - d0)) = 1
}
halfway "vNIC job fails after DefineSystem" AddResourceSettings create
halfway "power-on job fails after DefineSystem" RequestStateChange power-on
finish
