# shellcheck shell=sh
# testlib.sh: helpers for the shell test tiers (sourced).
# Every check prints "ok N - what" or "not ok N - what"; finish prints the
# plain "N passed, N failed" line and exits non-zero on any failure.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${NETEXT_DEPLOY:=$top_builddir/src/netext-deploy}"
: "${NETEXT_BOOTSTRAP:=$top_builddir/src/bootstrap/netext-bootstrap}"
NX_PASS=0
NX_FAIL=0
NX_N=0

ok() {
    NX_N=$((NX_N + 1))
    NX_PASS=$((NX_PASS + 1))
    echo "ok $NX_N - $*"
}

not_ok() {
    NX_N=$((NX_N + 1))
    NX_FAIL=$((NX_FAIL + 1))
    echo "not ok $NX_N - $*"
}

# check "description" command...: passes when the command succeeds
check() {
    desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# expect_exit CODE "description" command...
expect_exit() {
    want=$1
    desc=$2
    shift 2
    "$@" >"$NX_TMP/out" 2>"$NX_TMP/err"
    got=$?
    if [ "$got" = "$want" ]; then
        ok "$desc (exit $got)"
    else
        not_ok "$desc: exit $got, wanted $want"
        sed 's/^/    | /' "$NX_TMP/out" "$NX_TMP/err" | head -20
    fi
}

# check_json "description" PYTHON-EXPRESSION: passes when the expression is
# true of the JSON document in $NX_TMP/out (the last expect_exit's stdout);
# d is the document, t its "totals" (None when it has none)
check_json() {
    check "$1" "${NX_PY:-/usr/bin/python3}" -c "import json, sys
d = json.load(open(sys.argv[1]))
t = d.get('totals') if isinstance(d, dict) else None
sys.exit(not ($2))" "$NX_TMP/out"
}

skip_all() {
    echo "SKIP: $*"
    exit 77
}

finish() {
    echo "$NX_PASS passed, $NX_FAIL failed"
    [ "$NX_FAIL" = 0 ]
}

nx_tmpdir() {
    NX_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nx-test.XXXXXX")
    # each test its own locks: tiers run in parallel under make -j
    NETEXT_DEPLOY_STATE_DIR=$NX_TMP/state
    export NX_TMP NETEXT_DEPLOY_STATE_DIR
}

# nx_stop PID...: stops processes this test started (kill, then wait, so
# that none outlives the test); PIDs may be empty
nx_stop() {
    for nx_p in "$@"; do
        kill "$nx_p" 2>/dev/null
        wait "$nx_p" 2>/dev/null
    done
    return 0
}

# ---- what a tier needs: each skips the whole tier (exit 77) with the reason --

# slow_tier [WHY]: a slow tier, skipped when NX_SKIP_SLOW_TIERS is set
slow_tier() {
    [ -z "${NX_SKIP_SLOW_TIERS:-}" ] || skip_all "NX_SKIP_SLOW_TIERS is set${1:+ ($1)}"
}

# require_root [WHY]
require_root() {
    [ "$(id -u)" = 0 ] || skip_all "needs root${1:+ ($1)}"
}

# require_cmd COMMAND [REASON]: COMMAND must be on PATH
require_cmd() {
    command -v "$1" >/dev/null 2>&1 || skip_all "${2:-$1 not installed}"
}

# require_netns: root, ip(8) and /dev/net/tun, and network namespaces can
# be made here (one is made and removed)
require_netns() {
    require_root "network namespaces"
    require_cmd ip "ip is not installed (see tests/debian-test-deps)"
    [ -c /dev/net/tun ] || skip_all "no /dev/net/tun"
    ip netns add "nx$$-probe" 2>/dev/null || skip_all "cannot create network namespaces here"
    ip netns del "nx$$-probe"
}

# bootstrap_stop NETNS ROOT: stops what netext-bootstrap --root ROOT started
# in network namespace NETNS: its own "stop", then (belt and braces) every
# tunnel whose pid file is under ROOT and whose command line names ROOT
bootstrap_stop() {
    [ -d "$2" ] || return 0
    ip netns exec "$1" "$NETEXT_BOOTSTRAP" --root "$2" -q stop 2>/dev/null
    for nx_f in "$2"/run/netext/*.pid; do
        [ -f "$nx_f" ] || continue
        nx_p=$(cat "$nx_f")
        grep -q "$2" "/proc/$nx_p/cmdline" 2>/dev/null && kill "$nx_p"
    done
    return 0
}

# has_provider NAME: netext-deploy --version lists provider NAME
has_provider() {
    "$NETEXT_DEPLOY" --version 2>/dev/null | grep -q "^providers:.* $1\( \|\$\)"
}

# require_provider NAME: netext-deploy is built, with provider NAME
require_provider() {
    [ -x "$NETEXT_DEPLOY" ] || skip_all "netext-deploy not built ($NETEXT_DEPLOY)"
    has_provider "$1" || skip_all "netext-deploy was built without the $1 provider"
}

# ---- the Hyper-V WS-Management simulator (tests/hyperv-sim/hyperv_sim.py) ----
NX_PY=/usr/bin/python3
HV_SIM="$top_srcdir/tests/hyperv-sim/hyperv_sim.py"
HV_SIM_PIDS=""

# hv_sim_require: what hv_sim_start needs (python3, curl)
hv_sim_require() {
    [ -x "$NX_PY" ] || skip_all "$NX_PY not found (the Hyper-V simulator needs it)"
    require_cmd curl "curl not installed"
}

# hv_sim_start NAME [simulator options...]: starts a simulator on 127.0.0.1
# (a free port; stdout and stderr in $NX_TMP/NAME.out, NAME.err) and waits
# until it answers GET /state. Sets HV_SIM_PID, HV_SIM_PORT, HV_SIM_URL (its
# http(s)://127.0.0.1:PORT) and HV_SIM_URI (the plan's hyperv+http:// URI).
# Every simulator started is stopped by hv_sim_stop_all (call it from the
# EXIT trap). Returns 1, with the simulator's stderr, when it does not start.
# shellcheck disable=SC2034 # HV_SIM_URL, HV_SIM_URI: read by the tiers
hv_sim_start() {
    hv_name=$1
    shift
    hv_scheme=http
    for hv_a in "$@"; do [ "$hv_a" = --tls-cert ] && hv_scheme=https; done
    rm -f "$NX_TMP/$hv_name.port"
    "$NX_PY" "$HV_SIM" --port 0 --port-file "$NX_TMP/$hv_name.port" "$@" \
        >"$NX_TMP/$hv_name.out" 2>"$NX_TMP/$hv_name.err" &
    HV_SIM_PID=$!
    HV_SIM_PIDS="$HV_SIM_PIDS $HV_SIM_PID"
    HV_SIM_PORT='' HV_SIM_URL='' HV_SIM_URI=''
    hv_i=0
    while [ $hv_i -lt 100 ] && kill -0 "$HV_SIM_PID" 2>/dev/null; do
        if [ -s "$NX_TMP/$hv_name.port" ]; then
            HV_SIM_PORT=$(cat "$NX_TMP/$hv_name.port")
            if curl -s -k -o /dev/null "$hv_scheme://127.0.0.1:$HV_SIM_PORT/state"; then
                HV_SIM_URL="$hv_scheme://127.0.0.1:$HV_SIM_PORT"
                HV_SIM_URI="hyperv+http://127.0.0.1:$HV_SIM_PORT/wsman"
                return 0
            fi
        fi
        sleep 0.1
        hv_i=$((hv_i + 1))
    done
    hv_sim_stop "$HV_SIM_PID"
    echo "the Hyper-V simulator $hv_name did not start:" >&2
    cat "$NX_TMP/$hv_name.err" >&2
    return 1
}

# hv_sim_stop PID: stops one simulator hv_sim_start started
hv_sim_stop() {
    nx_stop "$1"
    hv_left=
    for hv_p in $HV_SIM_PIDS; do [ "$hv_p" = "$1" ] || hv_left="$hv_left $hv_p"; done
    HV_SIM_PIDS=$hv_left
}

hv_sim_stop_all() {
    nx_stop $HV_SIM_PIDS
    HV_SIM_PIDS=""
}
