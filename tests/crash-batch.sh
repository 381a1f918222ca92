#!/bin/sh
# crash-batch.sh: kill -9 netext-deploy at random points of a 200-tenant batch
# against vcsim (whose state outlives the killed process), re-run it to
# completion, and check convergence each time:
#   - govc sees exactly the planned state: one appliance per tenant, found by
#     marker, powered on, with exactly the planned vNICs (no duplicate, no
#     orphan, no missing or extra vNIC);
#   - vcsim's -trace-file shows no tenant changed twice across the killed run
#     and its re-runs: one CreateVM_Task per appliance that was missing, none
#     for the others; one ReconfigVM_Task per appliance whose networks changed;
#     one PowerOnVM_Task per new appliance; no PowerOff or Destroy.
# Trial 1 deploys everything from nothing; later trials first remove a random
# share of the appliances with govc and give a random set of tenants a second
# network (or take it away), so the killed run is creating, powering on and
# reconfiguring at once. The kill comes after a random delay (seeded) within
# the time the work is expected to take.
#
#   CRASH_TRIALS   trials (default 5; `make crash-test` runs 20)
#   CRASH_TENANTS  tenants (default 200)
#   CRASH_SEED     first seed (default random); trial k uses CRASH_SEED+k-1
#   CRASH_SEEDS    explicit seeds, one per trial (replays a sequence of trials)
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"
. "$top_srcdir/tests/fault-lib.sh"

require_provider vsphere
slow_tier
nx_tmpdir
ND_PID=
trap '[ -n "$ND_PID" ] && kill -9 "$ND_PID" 2>/dev/null; vcsim_stop_all; [ -n "$NX_KEEP" ] || rm -rf "$NX_TMP"' EXIT INT TERM
vcsim_require
fp_require
N=${CRASH_TENANTS:-200}
TRIALS=${CRASH_TRIALS:-5}
BASE=${CRASH_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
if [ -n "${CRASH_SEEDS:-}" ]; then
    SEEDS=$CRASH_SEEDS
else
    SEEDS=$(seq "$BASE" $((BASE + TRIALS - 1)) | tr '\n' ' ')
fi
echo "# crash-batch: $N tenants, seeds $SEEDS"
TRACE=$NX_TMP/trace.log
vcsim_start vcsim -trace -trace-file "$TRACE" || { not_ok "vcsim starts"; finish; exit 1; }
vcsim_credentials
vs_add_dv_portgroups "$(dvs_moref)" 100 $((150 + (N - 1) / 4)) || { not_ok "portgroups"; finish; exit 1; }
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" "$@"; }
PER_CHANGE=${CRASH_PER_CHANGE:-0.06} # seconds per change; measured again after every trial
prev_second=""
SUMMARY=""
NKILLED=0
k=0
for seed in $SEEDS; do
    k=$((k + 1))
    tstart=$(date +%s)
    # what this trial removes and changes, from its seed
    "$FPY" - "$seed" "$N" "$k" "$prev_second" >"$NX_TMP/trial" <<'EOF'
import random, sys
seed, n, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prev = {int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "").split()}
r = random.Random(seed)
second = sorted(i for i in range(n) if r.random() < 0.3)
if k == 1:
    gone = list(range(n))
else:
    gone = sorted(r.sample(range(n), r.randint(n // 10, n // 2)))
changed = sorted((set(second) ^ prev) - set(gone)) if k > 1 else []
print("SECOND='%s'" % " ".join(map(str, second)))
print("GONE='%s'" % " ".join(map(str, gone)))
print("CHANGED='%s'" % " ".join(map(str, changed)))
print("WORK=%d" % (2 * len(gone) + len(changed)))
print("FRACTION=%.3f" % r.uniform(0.05, 0.85))
EOF
    . "$NX_TMP/trial"
    vs_plan "$NX_TMP/plan.xml" "$VCSIM_URI" "$N" "$SECOND"
    gone_names=$(for i in $GONE; do printf 'netext-t%03d-h%d ' "$i" $((i % 4)); done)
    if [ $k -gt 1 ] && [ -n "$gone_names" ]; then
        # shellcheck disable=SC2086
        govc vm.destroy $gone_names >"$NX_TMP/destroy.log" 2>&1 ||
            { not_ok "trial $k: govc vm.destroy"; continue; }
    fi
    delay=$("$FPY" -c "print('%.2f' % max(0.2, $FRACTION * $WORK * $PER_CHANGE))")
    start=$(file_size "$TRACE")
    # the run to kill
    # started directly (not through a shell function), so $! is netext-deploy itself
    "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
        -j 4 batch "$NX_TMP/plan.xml" >"$NX_TMP/killed.out" 2>"$NX_TMP/killed.err" &
    ND_PID=$!
    sleep "$delay"
    if kill -9 "$ND_PID" 2>/dev/null; then
        wait "$ND_PID" 2>/dev/null
        killed="killed after ${delay}s ($(grep -c '^batch: \[' "$NX_TMP/killed.err") tenants done)"
        NKILLED=$((NKILLED + 1))
    else
        wait "$ND_PID"
        killed="finished before the kill at ${delay}s (exit $?)"
        # calibrate: this run's seconds per change
        pc=$(sed -n 's/.*; \([0-9]*\) changes in \([0-9.]*\) s.*/\2 \1/p' "$NX_TMP/killed.out" |
            awk '$2 > 20 { printf "%.3f", $1 / $2 }')
        [ -n "$pc" ] && PER_CHANGE=$pc
    fi
    ND_PID=
    # re-run to completion
    runs=0
    rc=1
    r0=$(date +%s.%N)
    while [ $runs -lt 3 ] && [ $rc != 0 ]; do
        runs=$((runs + 1))
        timeout 900 "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" \
            -j 4 --json batch "$NX_TMP/plan.xml" >"$NX_TMP/rerun.json" 2>"$NX_TMP/rerun.err"
        rc=$?
    done
    r1=$(date +%s.%N)
    rchanges=$("$FPY" -c "import json; print(json.load(open('$NX_TMP/rerun.json'))['changes'])" 2>/dev/null || echo 0)
    [ "$rchanges" -gt 20 ] 2>/dev/null &&
        PER_CHANGE=$("$FPY" -c "print('%.3f' % (($r1 - $r0) / $rchanges))")
    problems=""
    [ $rc = 0 ] || problems="$problems re-run exit $rc ($(grep -a error: "$NX_TMP/rerun.err" | head -1));"
    ND --json batch "$NX_TMP/plan.xml" >"$NX_TMP/final.json" 2>"$NX_TMP/final.err"
    "$FPY" -c "import json,sys; d=json.load(open('$NX_TMP/final.json')); sys.exit(not (d['totals']['up-to-date']==$N and d['changes']==0))" ||
        problems="$problems not up to date after the re-run;"
    vs_state_ok "$NX_TMP/plan.xml" "$NX_TMP/t$k" ||
        problems="$problems state: $(grep -v '^state:' "$NX_TMP/t$k.state" | head -3 | tr '\n' ';')"
    vs_trace_counts "$TRACE" "$start" >"$NX_TMP/counts.json"
    "$FPY" - "$NX_TMP/counts.json" "$NX_TMP/t$k.vms.json" "$GONE" "$CHANGED" "$VSCHECK" \
        >"$NX_TMP/twice" <<'EOF' || problems="$problems changed twice: $(head -3 "$NX_TMP/twice" | tr '\n' ';')"
import json, sys, importlib.util
spec = importlib.util.spec_from_file_location("vc", sys.argv[5])
vc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vc)
c = json.load(open(sys.argv[1]))
names = {ref: v.get("name") for ref, v in vc.objects(sys.argv[2]).items()}
name = lambda i: "netext-t%03d-h%d" % (i, i % 4)
gone = {name(int(i)) for i in sys.argv[3].split()}
changed = {name(int(i)) for i in sys.argv[4].split()}
bad = []
for n in sorted(set(c["CreateVM_Task"]) | gone):
    got = c["CreateVM_Task"].get(n, 0)
    if got != (1 if n in gone else 0):
        bad.append("CreateVM_Task %s: %d times, wanted %d" % (n, got, n in gone))
for kind in ("devices", "config"):
    re_ = {names.get(r, r): v for r, v in c["ReconfigVM_Task:" + kind].items()}
    for n in sorted(set(re_) | changed):
        if re_.get(n, 0) != (1 if n in changed else 0):
            bad.append("ReconfigVM_Task (%s) %s: %d times, wanted %d" % (kind, n, re_.get(n, 0), n in changed))
po = {names.get(r, r): v for r, v in c["PowerOnVM_Task"].items()}
for n in sorted(set(po) | gone):
    if po.get(n, 0) != (1 if n in gone else 0):
        bad.append("PowerOnVM_Task %s: %d times, wanted %d" % (n, po.get(n, 0), n in gone))
for m in ("PowerOffVM_Task", "Destroy_Task"):
    for r, v in c[m].items():
        bad.append("%s %s: %d times" % (m, names.get(r, r), v))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
    ncreate=$("$FPY" -c "import json; c=json.load(open('$NX_TMP/counts.json')); print(sum(c['CreateVM_Task'].values()), sum(c['ReconfigVM_Task'].values()), sum(c['PowerOnVM_Task'].values()))")
    set -- $GONE
    ngone=$#
    set -- $CHANGED
    nchanged=$#
    msg="trial $k seed $seed: removed $ngone, vNIC changes $nchanged; $killed; $runs re-run(s); creates/reconfigs/power-ons in vcsim: $(echo "$ncreate" | tr ' ' /); $(($(date +%s) - tstart))s"
    if [ -z "$problems" ]; then
        ok "$msg"
        SUMMARY="$SUMMARY $seed:ok"
    else
        not_ok "$msg:$problems"
        SUMMARY="$SUMMARY $seed:FAILED"
        [ -n "$NX_KEEP" ] && cp "$NX_TMP/plan.xml" "$NX_TMP/plan-$k.xml"
    fi
    prev_second=$SECOND
done
echo "# crash-batch: $k trials with $N tenants, $NKILLED killed mid-run; seeds and results:$SUMMARY"
echo "# replay: CRASH_SEEDS='<the seeds above>' (trial 1 deploys from nothing, each later trial changes a share of what the one before left; kill times also depend on the measured speed)"
finish
