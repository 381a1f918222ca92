#!/bin/sh
# fault-proxy.sh: the fault-injecting proxy's own checks (every fault kind,
# rules, seeded rates, the log), against an upstream in the same process.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 not found"; exit 77; }
exec timeout 120 /usr/bin/python3 "$top_srcdir/tests/faultproxy/faultproxy.py" --self-test
