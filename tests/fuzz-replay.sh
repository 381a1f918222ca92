#!/bin/sh
# fuzz-replay.sh: every fuzz target's replay driver over its seed corpus and
# 64 deterministic mutations of each seed (make check). The libFuzzer runs
# are `make fuzz` (tests/fuzz/run-libfuzzer.sh).
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
d=$top_builddir/tests/fuzz
s=$top_srcdir
run() { # target corpus...
    t=$1
    shift
    if [ ! -x "$d/replay-$t" ]; then
        case $t in
        soap | wsman) echo "# replay-$t not built (provider not configured)"; return ;;
        esac
        not_ok "replay-$t is missing"
        return
    fi
    check "replay $t" "$d/replay-$t" "$@"
}
run plan "$s/examples" "$s/tests/data/bad" "$s/tests/fuzz/corpus/plan"
run bundle "$s/tests/fuzz/corpus/bundle"
run template "$s/tests/fuzz/corpus/template"
run marker "$s/tests/fuzz/corpus/marker"
run soap "$s/tests/data/soap"
run wsman "$s/tests/data/wsman"
run payload "$s/tests/fuzz/corpus/payload"
finish
