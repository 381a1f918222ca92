#!/bin/sh
# hyperv-bench.sh: issue 7's Hyper-V figures against the project's WS-Man
# simulator (tests/hyperv-sim/hyperv_sim.py, HTTP on 127.0.0.1, Basic auth),
# run by `make bench` through bench/run.sh, or alone from a build directory.
#
# A batch of N (default 20; the simulator answers ~20 requests a second, so
# 1,000 tenants would take about 40 minutes: the time for 1,000 is
# extrapolated linearly and printed as such) new tenants, one appliance each
# (production vNIC + 3 VLANs, 200 tenants per plan host), then a no-change
# re-run: wall time and WS-Man requests per appliance, counted by the
# simulator (GET /state counters). The Hyper-V provider is not concurrent, so
# -j does not change its request stream. No pass/fail target of its own except
# that the batch succeeds and the re-run changes nothing.
# Environment: NX_BENCH_HYPERV_TENANTS, NX_BENCH_JSON.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
export top_srcdir
. "$top_srcdir/bench/bench-lib.sh"
. "$top_srcdir/tests/testlib.sh"
N=${NX_BENCH_HYPERV_TENANTS:-20}
[ -x "$NETEXT_DEPLOY" ] || { echo "hyperv-bench: $NETEXT_DEPLOY not found" >&2; exit 1; }
require_provider hyperv
[ -f "$HV_SIM" ] || skip_all "no Hyper-V simulator ($HV_SIM)"
hv_sim_require
nx_tmpdir
BENCH_TMP=$NX_TMP
trap 'hv_sim_stop_all; rm -rf "$NX_TMP"' EXIT INT TERM
umask 077
pw="bench-pw-$$"
printf '%s\n' "$pw" >"$NX_TMP/pw"
printf 'user = administrator\npassword = %s\n' "$pw" >"$NX_TMP/creds"
hv_sim_start sim --password-file "$NX_TMP/pw" --switch Production --switch VLAN-Switch ||
    { echo "hyperv-bench: the simulator did not start" >&2; exit 1; }
port=$HV_SIM_PORT
uri=$HV_SIM_URI
requests() {
    curl -s "http://127.0.0.1:$port/state" |
        "$BENCH_PY" -c 'import json,sys; print(json.load(sys.stdin)["counters"]["requests"])'
}
bench_plan "$NX_TMP/plan.xml" "$N" "$uri" hv Production VLAN-Switch
ND="$NETEXT_DEPLOY --credentials $NX_TMP/creds"
r0=$(requests)
bench_time deploy $ND -q batch "$NX_TMP/plan.xml"
r1=$(requests)
bench_time again $ND -q batch "$NX_TMP/plan.xml"
r2=$(requests)
made=$(grep -c ' changed$' "$BENCH_TMP/deploy.out")
still=$(grep -c ' changed$' "$BENCH_TMP/again.out")
rpa=$(awk "BEGIN{printf \"%.2f\", ($r1 - $r0 - 3) / $N}")
echo
echo "Hyper-V simulator (WS-Man over HTTP on 127.0.0.1), $N new tenants, 1 appliance each (4 vNICs)"
printf '%-28s %8s %9s %9s %8s\n' run wall_s requests req/appl RSS_MiB
printf '%-28s %8s %9s %9s %8s\n' "deploy" "$deploy_s" "$((r1 - r0))" "$rpa" "$((deploy_kib / 1024))"
printf '%-28s %8s %9s %9s %8s\n' "no-change re-run" "$again_s" "$((r2 - r1))" "-" "$((again_kib / 1024))"
echo "(req/appl: requests of the deploying run, less 3 for the run's own setup, divided by $N)"
full=$(awk "BEGIN{printf \"%.0f\", $deploy_s / $N * 1000}")
[ "$N" = 1000 ] || echo "1,000 tenants, extrapolated linearly from $N: ${full} s"
bench_target "Hyper-V: $made of $N tenants changed" "$deploy_rc == 0 && $made == $N"
bench_target "Hyper-V: the re-run changes nothing ($still changed)" "$again_rc == 0 && $still == 0"
bench_json hyperv "{\"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"tenants\": $N,
 \"deploy\": {\"wall_s\": $deploy_s, \"requests\": $((r1 - r0)), \"requests_per_appliance\": $rpa, \"peak_rss_kib\": $deploy_kib},
 \"extrapolated_1000_s\": $full,
 \"rerun\": {\"wall_s\": $again_s, \"requests\": $((r2 - r1)), \"peak_rss_kib\": $again_kib},
 \"targets_met\": $([ $BENCH_FAIL = 0 ] && echo true || echo false)}"
exit $BENCH_FAIL
