# testlib.sh: helpers for the shell test tiers (sourced).
# Every check prints "ok N - what" or "not ok N - what"; finish prints the
# plain "N passed, N failed" line and exits non-zero on any failure.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${NETEXT_DEPLOY:=$top_builddir/src/netext-deploy}"
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
