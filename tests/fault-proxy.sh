#!/bin/sh
# fault-proxy.sh: the fault-injecting proxy's own checks (every fault kind,
# rules, seeded rates, the log), against an upstream in the same process.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
[ -x "$NX_PY" ] || skip_all "$NX_PY not found"
exec timeout 120 "$NX_PY" "$top_srcdir/tests/faultproxy/faultproxy.py" --self-test
