#!/bin/sh
# bench/run.sh: `make bench`. Runs the plan pipeline benchmark at 100, 1,000
# and 10,000 tenants, prints a table, writes bench-results.json in the build
# directory, and fails when a target is missed:
#   10,000 tenants: parse + validate + desired state + diff < 1000 ms CPU,
#                   peak RSS < 64 MiB;
#   growth: 10x the tenants costs at most 15x the time (linear, not quadratic).
# Other suites (vSphere request counts, ...) add themselves below.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
BENCH=$top_builddir/bench/bench-plan
OUT=$top_builddir/bench-results.json
fail=0
echo "netext-deploy benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
printf '%-9s %10s %9s %11s %10s %12s %10s %12s\n' tenants parse_ms valid_ms desired_ms diff_ms total_ms cpu_ms peak_rss_MiB
echo "{" > "$OUT.tmp"
first=1
for n in 100 1000 10000; do
    line=$("$BENCH" "$n") || { echo "bench-plan $n failed"; exit 1; }
    eval "$(echo "$line" | tr ' ' '\n' | sed 's/^/b_/')"
    rss_mib=$(awk "BEGIN{printf \"%.1f\", $b_peak_rss_kib/1024}")
    printf '%-9s %10s %9s %11s %10s %12s %10s %12s\n' "$n" "$b_parse_ms" "$b_validate_ms" \
        "$b_desired_ms" "$b_diff_create_ms" "$b_total_ms" "$b_cpu_ms" "$rss_mib"
    [ $first = 1 ] || echo "," >> "$OUT.tmp"
    first=0
    printf '  "plan_%s": {"total_ms": %s, "cpu_ms": %s, "peak_rss_kib": %s}' "$n" "$b_total_ms" \
        "$b_cpu_ms" "$b_peak_rss_kib" >> "$OUT.tmp"
    eval "cpu_$n=$b_cpu_ms; rss_$n=$b_peak_rss_kib"
done
echo "" >> "$OUT.tmp"
echo "}" >> "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
target() { # target "what" "condition in awk"
    if awk "BEGIN{exit !($2)}"; then echo "PASS  $1"; else echo "FAIL  $1"; fail=1; fi
}
target "10,000 tenants: CPU ${cpu_10000} ms < 1000 ms" "$cpu_10000 < 1000"
target "10,000 tenants: peak RSS $((rss_10000 / 1024)) MiB < 64 MiB" "$rss_10000 < 65536"
target "growth 1,000 -> 10,000 tenants: x$(awk "BEGIN{printf \"%.1f\", $cpu_10000/($cpu_1000+0.1)}") time (<= 15)" "$cpu_10000 <= 15 * ($cpu_1000 + 5)"
for extra in "$top_srcdir"/bench/*-bench.sh; do
    [ -e "$extra" ] || continue
    sh "$extra"
    rc=$?
    case $rc in
    0) ;;
    77) echo "SKIP  ${extra##*/} (exit 77: it says why above)" ;;
    *) fail=1 ;;
    esac
done
echo "results: $OUT"
exit $fail
