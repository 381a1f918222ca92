# bench-lib.sh: helpers for bench/*-bench.sh (sourced).
#   bench_json NAME JSON   merge {"NAME": JSON} into $NX_BENCH_JSON (default
#                          bench-results-NAME.json in the build directory)
#   bench_target "what" "awk condition"   PASS/FAIL line; FAIL sets BENCH_FAIL=1
#   bench_time VAR CMD...  run CMD; VAR_s = wall seconds, VAR_kib = peak RSS
#   bench_plan FILE N URI HOST PRODUCTION VLAN_SWITCH   a batch plan
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${NETEXT_DEPLOY:=$top_builddir/src/netext-deploy}"
BENCH_FAIL=0
BENCH_PY=/usr/bin/python3
[ -x "$BENCH_PY" ] || BENCH_PY=python3

bench_json() {
    file=${NX_BENCH_JSON:-$top_builddir/bench-results-$1.json}
    "$BENCH_PY" - "$file" "$1" "$2" <<'PYEOF'
import json, os, sys
path, name, val = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = {}
if os.path.exists(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {"previous": data}
data[name] = val
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(data, f, indent=1, sort_keys=True)
    f.write("\n")
os.replace(tmp, path)
PYEOF
    echo "results: $file"
}

bench_target() {
    if awk "BEGIN{exit !($2)}"; then
        echo "PASS  $1"
    else
        echo "FAIL  $1"
        BENCH_FAIL=1
    fi
}

# bench_time VAR CMD...: VAR_s (wall, s), VAR_kib (peak RSS), VAR_rc; output in $BENCH_TMP/VAR.out
bench_time() {
    v=$1
    shift
    /usr/bin/time -f "%e %M" -o "$BENCH_TMP/$v.time" "$@" >"$BENCH_TMP/$v.out" 2>&1
    eval "${v}_rc=$?"
    set -- $(tail -1 "$BENCH_TMP/$v.time")
    eval "${v}_s=$1 ${v}_kib=$2"
}

# bench_plan FILE N URI HOST PRODUCTION VLAN_SWITCH: N new tenants, one
# provider appliance each (production vNIC + 3 VLANs), 200 tenants per plan
# host (named HOST0, HOST1, ...; all with URI, the production network
# PRODUCTION and the VLAN switch VLAN_SWITCH), VLANs 2, 3, 4, ... per host.
bench_plan() {
    "$BENCH_PY" - "$@" <<'PYEOF'
import sys
out, n, uri, host, prod, switch = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
hosts = max(1, n // 200)
with open(out, "w") as f:
    f.write("<netext-plan xmlns='urn:netext-deploy:plan:1' version='1'>\n"
            "<gateway address='gw.example.com'/>\n")
    for h in range(hosts):
        f.write("<host name='%s%d' uri='%s' production-network='%s' "
                "vlan-switch='%s'/>\n" % (host, h, uri, prod, switch))
    for i in range(n):
        h, slot = i % hosts, i // hosts
        f.write("<hardware-plan name='p%d' host='%s%d'>" % (i, host, h))
        for k in range(3):
            f.write("<network name='n%d' vlan='%d'/>" % (k, 2 + slot * 3 + k))
        f.write("</hardware-plan>\n<tenant name='t%05d'><subscribe plan='p%d'/></tenant>\n" % (i, i))
    f.write("</netext-plan>\n")
PYEOF
}
