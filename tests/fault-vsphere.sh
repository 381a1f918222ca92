#!/bin/sh
# fault-vsphere.sh: netext-deploy's vSphere provider through the fault proxy
# (tests/faultproxy) in front of vcsim, at fault rates FAULT_RATES (default
# "0.1 0.3"), seeded by FAULT_SEED (printed; set it to replay a run).
# Every run must end with success or a clear error (no crash, no hang: each
# run is bounded by --timeout and an outer timeout), nothing may be changed
# twice (vcsim's -trace-file counts the changing calls per object), re-runs
# must converge to "up to date", and govc must see exactly the planned state.
# Then the half-way failures: a power-on that fails (the call, or its task)
# after the VM exists, and a vNIC change that fails: reported per tenant
# (exit 1, the action failed in --json) and finished by the next run.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"
. "$top_srcdir/tests/fault-lib.sh"

require_provider vsphere
slow_tier
nx_tmpdir
trap 'fp_stop_all; vcsim_stop_all; [ -n "$NX_KEEP" ] || rm -rf "$NX_TMP"' EXIT INT TERM
vcsim_require
fp_require
N=${FAULT_TENANTS:-16}
RATES=${FAULT_RATES:-0.2}
SEED=${FAULT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
MAXRUNS=${FAULT_MAX_RUNS:-6}
RUN_LIMIT=${FAULT_RUN_LIMIT:-90} # seconds; a run that takes longer hangs
echo "# fault-vsphere: $N tenants, rates $RATES, seed $SEED (FAULT_SEED=$SEED replays)"
TRACE=$NX_TMP/trace.log
vcsim_start vcsim -trace -trace-file "$TRACE" || { not_ok "vcsim starts"; finish; exit 1; }
vcsim_credentials
DVS=$(dvs_moref)
check "inventory: portgroups dv-100..dv-199 on DVS0" vs_add_dv_portgroups "$DVS" 100 199
fp_start proxy "https://127.0.0.1:$VCSIM_PORT" --upstream-cacert "$NX_TMP/vcsim-cert.pem" \
    --tls-cert "$NX_TMP/vcsim-cert.pem" --tls-key "$NX_TMP/vcsim-key.pem" --seed "$SEED" ||
    { not_ok "fault proxy starts"; finish; exit 1; }
PURI="vsphere://127.0.0.1:$FP_PORT/sdk"
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" --timeout 30 "$@"; }

# ---- one fault on one call: exactly what each fault must lead to --------------------
vs_plan "$NX_TMP/one.xml" "$PURI" "$N" "" 3
# targeted LABEL RULE-JSON [TIMEOUT]: subscribe t003 from nothing with this one
# fault; sets rc, el and the vcsim counts in $NX_TMP/tc.json
targeted() {
    govc vm.destroy netext-t003-h3 >/dev/null 2>&1
    start=$(file_size "$TRACE")
    fp_config "{\"rate\": 0, \"rules\": [$2]}"
    t0=$(date +%s)
    timeout "$RUN_LIMIT" "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
        --timeout "${3:-30}" -v subscribe --tenant t003 "$NX_TMP/one.xml" >"$NX_TMP/t.out" 2>"$NX_TMP/t.err"
    rc=$?
    el=$(($(date +%s) - t0))
    fp_config '{"rules": []}'
    [ $rc = 0 ] || ND subscribe --tenant t003 "$NX_TMP/one.xml" >/dev/null 2>&1
    vs_trace_counts "$TRACE" "$start" >"$NX_TMP/tc.json"
    case $rc in
    0 | 1 | 69 | 76) ok "$1: the run ends (exit $rc, ${el}s)" ;;
    124) not_ok "$1: the run hangs (killed after ${RUN_LIMIT}s)" ;;
    *) not_ok "$1: the run ends with exit $rc" ;;
    esac
    [ $rc = 0 ] || check "$1: a clear error" sh -c "grep -v '^netext-deploy: \(warning\|info\|debug\):' '$NX_TMP/t.err' | grep -q '^netext-deploy: '"
}
creates() { "$FPY" -c "import json; print(json.load(open('$NX_TMP/tc.json'))['CreateVM_Task'].get('netext-t003-h3', 0))"; }
for f in drop-before drop-after http-500 http-503 soap-fault truncate cut; do
    targeted "$f on CreateVM_Task" "{\"method\": \"CreateVM_Task\", \"fault\": \"$f\"}"
    check "$f on CreateVM_Task: one CreateVM_Task reached vcsim ($(creates))" test "$(creates)" = 1
done
fp_config '{"delay": [7, 7]}'
targeted "an answer to CreateVM_Task later than --timeout 5" '{"method": "CreateVM_Task", "fault": "delay"}' 5
fp_config '{"delay": [0.2, 1.5]}'
check "late CreateVM_Task answer: one CreateVM_Task reached vcsim ($(creates))" test "$(creates)" = 1
mw=$(tr -d '\000' <"$TRACE" | tail -c +"$start" | grep -a -o '<maxWaitSeconds>[0-9]*' | sed 's/.*>//' | sort -n | tail -1)
check "WaitForUpdatesEx asks the server to wait less than --timeout 5 (maxWaitSeconds ${mw:-none})" \
    test "${mw:-0}" -lt 5
for f in truncate cut; do
    targeted "$f on the Login answer" "{\"method\": \"Login\", \"fault\": \"$f\"}"
    check "$f on the Login answer: not reported as refused credentials (exit $rc, wanted 0)" test $rc = 0
done
targeted "drop-after on PowerOnVM_Task" '{"method": "PowerOnVM_Task", "fault": "drop-after"}'
check "drop-after on PowerOnVM_Task: at most 2 PowerOnVM_Task (the retry finds it on)" "$FPY" -c "
import json, sys; c = json.load(open('$NX_TMP/tc.json')); sys.exit(not (sum(c['PowerOnVM_Task'].values()) <= 2 and sum(c['CreateVM_Task'].values()) == 1))"
targeted "a truncated WaitForUpdatesEx answer (its task's update is lost)" \
    '{"method": "WaitForUpdatesEx", "fault": "truncate", "skip": 1}'
targeted "a dropped WaitForUpdatesEx answer" '{"method": "WaitForUpdatesEx", "fault": "drop-after", "skip": 1}'
vs_state_ok "$NX_TMP/one.xml" "$NX_TMP/s0"
check "after the single faults: no duplicate, the planned state ($(tail -1 "$NX_TMP/s0.state"))" test $? = 0
grep -v '^state:' "$NX_TMP/s0.state" | grep . | head -5 | sed 's/^/#     /'

# ---- random faults at each rate -------------------------------------------------------
# run_until_ok LABEL PLAN: batch runs through the faulty proxy until one exits
# 0; every run must end cleanly. Sets RUNS and BAD (descriptions of bad ends).
run_until_ok() {
    RUNS=0
    BAD=""
    while [ $RUNS -lt "$MAXRUNS" ]; do
        RUNS=$((RUNS + 1))
        t0=$(date +%s)
        timeout "$RUN_LIMIT" "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
            --timeout 30 -j 4 batch "$2" >"$NX_TMP/run.out" 2>"$NX_TMP/run.err"
        rc=$?
        el=$(($(date +%s) - t0))
        echo "#   $1 run $RUNS: exit $rc in ${el}s: $(tail -1 "$NX_TMP/run.out")"
        case $rc in
        0) return 0 ;;
        1 | 65 | 69 | 75 | 76)
            # a clear error: an "error:" line naming what failed
            grep -v "^netext-deploy: \(warning\|info\|debug\):" "$NX_TMP/run.err" |
                grep -q "^netext-deploy: \|failed\|\.xml:[0-9]*: " || {
                BAD="$BAD run $RUNS exit $rc without an error message;"
                sed 's/^/    | /' "$NX_TMP/run.err" | tail -5
            }
            ;;
        124) BAD="$BAD run $RUNS hung (killed after ${RUN_LIMIT}s);" ;;
        *)
            BAD="$BAD run $RUNS ended with exit $rc;"
            sed 's/^/    | /' "$NX_TMP/run.err" | tail -5
            ;;
        esac
        grep -a "error:" "$NX_TMP/run.err" | sed 's/^/#     /' | head -3
    done
    return 1
}

# twice_check LABEL START EXPECT-CREATES: nothing changed twice in the trace
# since byte START. A write may reach vcsim a second time only when the proxy
# lost the answer of the first (drop-after, truncate, cut, delay past the
# timeout) and the retry policy (docs/internals/vsphere.md, Retries) allows it: power-on
# and the payload's ReconfigVM_Task; never a create or a vNIC change.
twice_check() {
    vs_trace_counts "$TRACE" "$2" >"$NX_TMP/counts.json"
    "$FPY" - "$NX_TMP/counts.json" "$NX_TMP/proxy.log" "$3" "$NX_TMP/$1.twice" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
lost = {}
for l in open(sys.argv[2]):
    d = json.loads(l)
    if d.get("forwarded") and d.get("fault") in ("drop-after", "truncate", "cut", "delay"):
        k = (d["method"], d.get("obj"))
        lost[k] = lost.get(k, 0) + 1
want = set(sys.argv[3].split())
bad = []
for name, n in c["CreateVM_Task"].items():
    if n > 1 or name not in want:
        bad.append("CreateVM_Task %s: %d times" % (name, n))
for name in want - set(c["CreateVM_Task"]):
    bad.append("CreateVM_Task %s: never" % name)
for vm, n in c["ReconfigVM_Task:devices"].items():
    if n > 1:
        bad.append("ReconfigVM_Task (vNICs) %s: %d times" % (vm, n))
for vm, n in c["ReconfigVM_Task:config"].items():
    if n > 1 + lost.get(("ReconfigVM_Task", vm), 0):
        bad.append("ReconfigVM_Task (payload) %s: %d times, %d answers lost" % (vm, n, lost.get(("ReconfigVM_Task", vm), 0)))
for vm, n in c["PowerOnVM_Task"].items():
    if n > 1 + lost.get(("PowerOnVM_Task", vm), 0):
        bad.append("PowerOnVM_Task %s: %d times, %d answers lost" % (vm, n, lost.get(("PowerOnVM_Task", vm), 0)))
for m in ("Destroy_Task", "PowerOffVM_Task"):
    for vm, n in c[m].items():
        bad.append("%s %s: %d times (nothing is to be removed)" % (m, vm, n))
open(sys.argv[4], "w").write("\n".join(bad) + "\n")
sys.exit(1 if bad else 0)
EOF
}

names() { # names PLAN: the appliance names the plan wants
    "$FPY" -c "
import re, sys
print(' '.join('netext-t%s-h%d' % (t, int(t) % 4) for t in re.findall(r'<tenant name=\"t(\d+)\"', open(sys.argv[1]).read())))" "$1"
}

# second-network sets: a seeded choice per phase
pick() { "$FPY" -c "import random; r = random.Random('$1'); print(' '.join(str(i) for i in range($N) if r.random() < 0.3))"; }

for rate in $RATES; do
    fp_config "{\"rate\": 0, \"rules\": []}"
    # start from nothing: remove this tier's appliances with govc
    old=$(govc find / -type m -name 'netext-*' 2>/dev/null)
    [ -z "$old" ] || govc vm.destroy $old >/dev/null 2>&1
    S1=$(pick "$SEED$rate")
    vs_plan "$NX_TMP/plan.xml" "$PURI" "$N" "$S1"
    start=$(file_size "$TRACE")
    : >"$NX_TMP/proxy.log"
    fp_config "{\"rate\": $rate, \"seed\": $SEED}"
    t0=$(date +%s)
    run_until_ok "rate $rate create" "$NX_TMP/plan.xml"
    okrc=$?
    el=$(($(date +%s) - t0))
    fp_config '{"rate": 0}'
    echo "#   proxy: $(fp_fault_summary "$NX_TMP/proxy.log")"
    check "rate $rate, create: a run under faults succeeded within $MAXRUNS runs ($RUNS runs, ${el}s)" test $okrc = 0
    check "rate $rate, create: every run ended cleanly${BAD:+ ($BAD)}" test -z "$BAD"
    ND batch "$NX_TMP/plan.xml" >"$NX_TMP/run.out" 2>"$NX_TMP/run.err"
    check "rate $rate, create: then a run without faults finishes what is left (exit $?)" test $? = 0
    ND --json batch "$NX_TMP/plan.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
    check "rate $rate, create: then up to date, 0 changes" \
        "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/json')); t=d['totals']; sys.exit(not (t['up-to-date']==$N and d['exit_code']==0))"
    vs_state_ok "$NX_TMP/plan.xml" "$NX_TMP/s1"
    check "rate $rate, create: govc sees the planned state ($(tail -1 "$NX_TMP/s1.state"))" test $? = 0
    grep -v '^state:' "$NX_TMP/s1.state" | grep . | head -5 | sed 's/^/#     /'
    twice_check create "$start" "$(names "$NX_TMP/plan.xml")"
    check "rate $rate, create: nothing created or changed twice (vcsim trace)" test $? = 0
    grep . "$NX_TMP/create.twice" | sed 's/^/#     /' | head -5

    # change: another set of tenants with a second network (add/remove vNICs)
    S2=$(pick "$SEED$rate.2")
    vs_plan "$NX_TMP/plan2.xml" "$PURI" "$N" "$S2"
    start=$(file_size "$TRACE")
    : >"$NX_TMP/proxy.log"
    fp_config "{\"rate\": $rate, \"seed\": $((SEED + 1))}"
    t0=$(date +%s)
    run_until_ok "rate $rate change" "$NX_TMP/plan2.xml"
    okrc=$?
    el=$(($(date +%s) - t0))
    fp_config '{"rate": 0}'
    echo "#   proxy: $(fp_fault_summary "$NX_TMP/proxy.log")"
    check "rate $rate, vNIC changes: a run under faults succeeded ($RUNS runs, ${el}s)" test $okrc = 0
    check "rate $rate, vNIC changes: every run ended cleanly${BAD:+ ($BAD)}" test -z "$BAD"
    ND batch "$NX_TMP/plan2.xml" >"$NX_TMP/run.out" 2>"$NX_TMP/run.err"
    check "rate $rate, vNIC changes: then a run without faults finishes what is left (exit $?)" test $? = 0
    ND --json batch "$NX_TMP/plan2.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
    check "rate $rate, vNIC changes: then up to date" \
        "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/json')); t=d['totals']; sys.exit(not (t['up-to-date']==$N and d['exit_code']==0))"
    vs_state_ok "$NX_TMP/plan2.xml" "$NX_TMP/s2"
    check "rate $rate, vNIC changes: govc sees the planned state ($(tail -1 "$NX_TMP/s2.state"))" test $? = 0
    grep -v '^state:' "$NX_TMP/s2.state" | grep . | head -5 | sed 's/^/#     /'
    twice_check change "$start" ""
    check "rate $rate, vNIC changes: no create, no vNIC change twice (vcsim trace)" test $? = 0
    grep . "$NX_TMP/change.twice" | sed 's/^/#     /' | head -5
done

# ---- half-way failures: the VM exists, then something fails -----------------------
fp_config '{"rate": 0, "rules": []}'
vs_plan "$NX_TMP/one.xml" "$PURI" "$N" "" 5
halfway() { # halfway LABEL RULE-JSON ACTION ERROR-PATTERN
    label=$1
    govc vm.destroy netext-t005-h1 >/dev/null 2>&1
    start=$(file_size "$TRACE")
    fp_config "{\"rules\": [$2]}"
    ND --json subscribe --tenant t005 "$NX_TMP/one.xml" >"$NX_TMP/h.json" 2>"$NX_TMP/h.err"
    rc=$?
    check "$label: exit 1 (exit $rc)" test $rc = 1
    check "$label: --json marks create done and $3 failed" "$FPY" -c "
import json, sys
d = json.load(open('$NX_TMP/h.json'))
a = {x['action']: x['status'] for x in d['actions']}
sys.exit(not (a.get('create') == 'done' and a.get('$3') == 'failed' and d['exit_code'] == 1))"
    check "$label: the error (--json) names the appliance and says why" "$FPY" -c "
import json, re, sys
d = json.load(open('$NX_TMP/h.json'))
sys.exit(not any(re.search('netext-t005-h1.*$4', x.get('error', '')) for x in d['actions']))"
    check "$label: the VM exists, powered off" \
        test "$(govc object.collect -s /DC0/vm/Cloud_Connect_Replication/netext-t005-h1 runtime.powerState 2>&1)" = poweredOff
    fp_config '{"rules": []}'
    ND --json subscribe --tenant t005 "$NX_TMP/one.xml" >"$NX_TMP/h2.json" 2>"$NX_TMP/h2.err"
    rc=$?
    check "$label: the next run finishes it: power-on done, no create (exit $rc)" "$FPY" -c "
import json, sys
d = json.load(open('$NX_TMP/h2.json'))
a = [(x['action'], x['status']) for x in d['actions']]
sys.exit(not (a == [('power-on', 'done')] and d['exit_code'] == 0))"
    vs_state_ok "$NX_TMP/one.xml" "$NX_TMP/h" partial
    check "$label: govc sees the planned state" test $? = 0
    c=$(vs_trace_counts "$TRACE" "$start")
    check "$label: one CreateVM_Task in all" \
        "$FPY" -c "import json,sys; c=json.loads(sys.argv[1]); sys.exit(c['CreateVM_Task'] != {'netext-t005-h1': 1})" "$c"
}
halfway "power-on refused (SOAP fault on PowerOnVM_Task)" \
    '{"method": "PowerOnVM_Task", "fault": "soap-fault", "fault_type": "InsufficientResourcesFault", "message": "Insufficient resources (injected)"}' \
    power-on InsufficientResources
halfway "power-on task failed (its completion)" '{"method": "PowerOnVM_Task", "fault": "task-error"}' power-on NicSettingMismatch

# a vNIC change refused half-way: reported, the next run re-reads and converges
vs_plan "$NX_TMP/two.xml" "$PURI" "$N" "5" 5
fp_config '{"rules": [{"method": "ReconfigVM_Task", "fault": "soap-fault", "fault_type": "TaskInProgress", "message": "busy (injected)"}]}'
ND --json subscribe --tenant t005 "$NX_TMP/two.xml" >"$NX_TMP/h.json" 2>"$NX_TMP/h.err"
rc=$?
check "vNIC change refused: exit 1 (exit $rc)" test $rc = 1
check "vNIC change refused: --json marks the change failed" "$FPY" -c "
import json, sys
d = json.load(open('$NX_TMP/h.json'))
sys.exit(not any(x['status'] == 'failed' for x in d['actions']))"
fp_config '{"rules": []}'
ND --json subscribe --tenant t005 "$NX_TMP/two.xml" >"$NX_TMP/h2.json" 2>"$NX_TMP/h2.err"
check "vNIC change refused: the next run makes it (exit $?)" \
    "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/h2.json')); sys.exit(not (d['exit_code']==0 and d['changes']>=1))"
vs_state_ok "$NX_TMP/two.xml" "$NX_TMP/h3" partial
check "vNIC change refused: govc sees the planned state ($(tail -1 "$NX_TMP/h3.state"))" test $? = 0
grep -v '^state:' "$NX_TMP/h3.state" | grep . | head -5 | sed 's/^/#     /'
finish
