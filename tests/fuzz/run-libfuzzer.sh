#!/bin/sh
# run-libfuzzer.sh: `make fuzz`. Builds the core with clang and
# -fsanitize=fuzzer-no-link,address,undefined in its own build directory,
# links each fuzz target with libFuzzer, and runs it for FUZZ_SECONDS
# (default 60) on a copy of its seed corpus. Fails on any crash, leak,
# sanitizer report or hang (-timeout=10 per input). Findings are kept in
# $FUZZ_OUT (default _build-fuzz/findings).
set -eu
top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/../..}" && pwd)
B=${FUZZ_BUILD:-$top_srcdir/_build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-$B/findings}
command -v clang >/dev/null || { echo "make fuzz: clang is not installed (apt-get install clang libclang-rt-14-dev)"; exit 77; }
mkdir -p "$B" "$OUT"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$B/Makefile" ]; then
    (cd "$B" && CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $SAN" \
        "$top_srcdir/configure" -q >/dev/null)
fi
make -C "$B" -j2 libnetext.a >/dev/null
flags=$(make --no-print-directory -s -C "$B" print-fuzz-flags)
fail=0
for t in plan bundle template marker soap wsman payload; do
    src=$top_srcdir/tests/fuzz/fuzz-$t.c
    case "$flags" in *"NO_$t"*) echo "fuzz-$t: provider not built, skipped"; continue ;; esac
    clang -g -O1 -fsanitize=fuzzer $SAN -I"$top_srcdir/src" -I"$top_srcdir/providers/hyperv" \
        -I"$B/src" -I"$B" $(echo "$flags" | sed 's/NO_[a-z]*//g') "$src" "$B/libnetext.a" \
        $(make --no-print-directory -s -C "$B" print-fuzz-libs) -o "$B/fuzz-$t"
    corpus=$B/corpus-$t
    mkdir -p "$corpus"
    case $t in
    plan) cp "$top_srcdir"/examples/*.xml "$top_srcdir"/tests/data/bad/*.xml "$top_srcdir"/tests/fuzz/corpus/plan/* "$corpus"/ ;;
    soap) cp "$top_srcdir"/tests/data/soap/* "$corpus"/ 2>/dev/null || true ;;
    wsman) cp "$top_srcdir"/tests/data/wsman/* "$corpus"/ 2>/dev/null || true ;;
    *) cp "$top_srcdir"/tests/fuzz/corpus/$t/* "$corpus"/ 2>/dev/null || true ;;
    esac
    echo "fuzz-$t: ${SECONDS_EACH}s"
    if ! (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 "$B/fuzz-$t" -max_total_time="$SECONDS_EACH" \
        -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "$corpus" > "$OUT/fuzz-$t.log" 2>&1); then
        echo "fuzz-$t: FAILED (see $OUT/fuzz-$t.log)"
        tail -30 "$OUT/fuzz-$t.log"
        fail=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$OUT/fuzz-$t.log" | tail -2 | sed "s/^/fuzz-$t: /"
    fi
done
exit $fail
