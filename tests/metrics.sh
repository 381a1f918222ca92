#!/bin/sh
# metrics.sh: --metrics FILE (Prometheus text format, written atomically at
# the end of a run) against libvirt's test driver. The format is checked by
# tests/metrics-check.py and, when Debian's prometheus package is installed,
# by `promtool check metrics`.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
nx_tmpdir
trap 'rm -rf "$NX_TMP"' EXIT
ND=$NETEXT_DEPLOY
NODE="test://$top_srcdir/examples/testnode.xml"
ACME=$top_srcdir/examples/acme.xml
SEED=$top_srcdir/examples/seed.xml
M=$NX_TMP/prom/netext.prom
mkdir -p "$NX_TMP/prom"
require_cmd python3 "python3 is missing"

VER=$("$ND" --version | sed -n 's/^netext-deploy //p')
mcheck() { python3 "$top_srcdir/tests/metrics-check.py" "$M" "$@"; }
promtool_check() {
    command -v promtool >/dev/null 2>&1 || return 0
    promtool check metrics <"$M"
}

expect_exit 0 "--help mentions --metrics" "$ND" --help
check "--help: --metrics" grep -q -e "--metrics FILE" "$NX_TMP/out"

# a first deployment: one tenant changed
expect_exit 0 "subscribe --metrics" "$ND" -q --connect "$NODE" --metrics "$M" subscribe "$ACME"
check "the file is 0644" test "$(stat -c %a "$M")" = 644
check "well formed; one tenant changed, exit 0" mcheck \
    "netext_deploy_run_info{command=\"subscribe\",dry_run=\"false\",version=\"$VER\"}=1" \
    'netext_deploy_tenants{result="changed"}=1' 'netext_deploy_tenants{result="up-to-date"}=0' \
    'netext_deploy_tenants{result="failed"}=0' 'netext_deploy_tenants{result="invalid"}=0' \
    'netext_deploy_run_exit_code=0' 'netext_deploy_run_success=1' \
    'netext_deploy_run_reached_hypervisors=1' 'netext_deploy_appliances=1' \
    'netext_deploy_changes>0' 'netext_deploy_failed_actions=0' \
    "netext_deploy_endpoint_changes{endpoint=\"$NODE\",provider=\"libvirt\"}>0" \
    'netext_deploy_phase_duration_seconds{phase="connect"}>0' \
    'netext_deploy_phase_duration_seconds{phase="changes"}>0' \
    'netext_deploy_run_duration_seconds>0'
sed 's/^/    | /' "$M" | grep -v '^    | #' | head -40
now=$(date +%s)
ts=$(sed -n 's/^netext_deploy_run_timestamp_seconds //p' "$M")
check "the timestamp is now (${ts%.*} vs $now)" test $((now - ${ts%.*})) -le 60 -a $((now - ${ts%.*})) -ge 0
check "promtool check metrics (when installed)" promtool_check
check "no temporary file left" test "$(ls "$NX_TMP/prom")" = netext.prom

# a dry run: planned, no change; the file is replaced (a new inode: renamed)
ino=$(stat -c %i "$M")
expect_exit 0 "dry run --metrics" "$ND" -q --connect "$NODE" -n --metrics "$M" subscribe "$ACME"
check "planned, no change, dry_run=true" mcheck \
    "netext_deploy_run_info{command=\"subscribe\",dry_run=\"true\",version=\"$VER\"}=1" \
    'netext_deploy_tenants{result="planned"}=1' 'netext_deploy_changes=0' \
    'netext_deploy_phase_duration_seconds{phase="changes"}=0'
check "replaced by a rename (inode $ino -> $(stat -c %i "$M"))" test "$(stat -c %i "$M")" != "$ino"

# a batch of two tenants
expect_exit 0 "batch --metrics" "$ND" -q --connect "$NODE" --metrics "$M" batch "$SEED"
check "batch: two tenants changed" mcheck "netext_deploy_run_info{command=\"batch\",dry_run=\"false\",version=\"$VER\"}=1" \
    'netext_deploy_tenants{result="changed"}=2' 'netext_deploy_run_exit_code=0'
check "promtool check metrics, batch (when installed)" promtool_check

# a refused placement (test:///default has none of the plan's networks)
expect_exit 65 "refused placement --metrics" "$ND" -q --connect test:///default --metrics "$M" subscribe "$ACME"
check "refused: exit 65, one tenant refused, no change" mcheck 'netext_deploy_tenants{result="refused"}=1' \
    'netext_deploy_run_exit_code=65' 'netext_deploy_run_success=0' 'netext_deploy_changes=0' \
    'netext_deploy_endpoint_changes{endpoint="test:///default",provider="libvirt"}=0'

# an invalid plan: stopped before any connection, the file still says so
bad=$top_srcdir/tests/data/bad/port-22.xml
expect_exit 65 "invalid plan --metrics" "$ND" --connect "$NODE" --metrics "$M" subscribe "$bad"
check "invalid: exit 65, did not reach the hypervisors, no endpoint" mcheck \
    'netext_deploy_run_exit_code=65' 'netext_deploy_run_reached_hypervisors=0' 'netext_deploy_changes=0'
check "invalid: no endpoint series" sh -c "! grep -q '^netext_deploy_endpoint' '$M'"

# an unwritable place: the run's own status wins over 73 when it failed, else 73
expect_exit 73 "--metrics into a missing directory: exit 73" "$ND" -q --connect "$NODE" \
    --metrics "$NX_TMP/nodir/x.prom" subscribe "$ACME"
check "the error names the file" grep -q "nodir/x.prom" "$NX_TMP/err"
expect_exit 65 "a failed run keeps its status when the metrics cannot be written" "$ND" -q \
    --connect "$NODE" --metrics "$NX_TMP/nodir/x.prom" subscribe "$bad"

# the checker itself must be able to fail
printf 'netext_deploy_x 1\n' >"$NX_TMP/prom/bad.prom"
check "the checker refuses a sample without TYPE" sh -c "! python3 '$top_srcdir/tests/metrics-check.py' '$NX_TMP/prom/bad.prom' >/dev/null"
printf '# HELP a b\n# TYPE a gauge\na{x="1} 1\n' >"$NX_TMP/prom/bad.prom"
check "the checker refuses bad label quoting" sh -c "! python3 '$top_srcdir/tests/metrics-check.py' '$NX_TMP/prom/bad.prom' >/dev/null"
finish
