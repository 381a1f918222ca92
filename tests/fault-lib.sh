# fault-lib.sh: helpers for the fault and crash tiers (sourced after testlib.sh,
# nx_tmpdir and, for vSphere, vcsim-lib.sh). Every process started here is
# stopped by PID in fp_stop_all (call it from the EXIT trap).

FP_PIDS=""
FPY=/usr/bin/python3
PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
export PYTHONDONTWRITEBYTECODE
FAULTPROXY="$top_srcdir/tests/faultproxy/faultproxy.py"
VSCHECK="$top_srcdir/tests/faultproxy/vsphere_check.py"

fp_require() {
    [ -x "$FPY" ] || skip_all "/usr/bin/python3 not found (the fault proxy needs it)"
    command -v curl >/dev/null 2>&1 || skip_all "curl (the command) not found"
    command -v timeout >/dev/null 2>&1 || skip_all "timeout (coreutils) not found"
}

# fp_start NAME UPSTREAM-URL [faultproxy options...]: sets FP_PORT, FP_PID,
# FP_CTL (the control URL base); log in $NX_TMP/NAME.log, stderr in NAME.err
fp_start() {
    name=$1
    up=$2
    shift 2
    rm -f "$NX_TMP/$name.port"
    "$FPY" "$FAULTPROXY" --upstream "$up" --port-file "$NX_TMP/$name.port" \
        --log "$NX_TMP/$name.log" "$@" >"$NX_TMP/$name.out" 2>"$NX_TMP/$name.err" &
    FP_PID=$!
    FP_PIDS="$FP_PIDS $FP_PID"
    i=0
    while [ $i -lt 100 ] && [ ! -s "$NX_TMP/$name.port" ]; do
        kill -0 "$FP_PID" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    [ -s "$NX_TMP/$name.port" ] || {
        echo "fault proxy did not start:" >&2
        cat "$NX_TMP/$name.err" >&2
        return 1
    }
    FP_PORT=$(cat "$NX_TMP/$name.port")
    FP_SCHEME=http
    case " $* " in *" --tls-cert "*) FP_SCHEME=https ;; esac
    FP_CTL="$FP_SCHEME://127.0.0.1:$FP_PORT/faultproxy"
}

# fp_config JSON: change the running proxy's settings (rate, seed, rules...)
fp_config() {
    curl -s -k --fail -X POST --data "$1" "$FP_CTL/config" >/dev/null
}

fp_stats() {
    curl -s -k "$FP_CTL/stats"
}

fp_stop_all() {
    nx_stop $FP_PIDS
    FP_PIDS=""
}

# fp_fault_summary LOG: "N requests, N faults (kind N, ...)"
fp_fault_summary() {
    "$FPY" - "$1" <<'EOF'
import json, sys, collections
n, c = 0, collections.Counter()
for l in open(sys.argv[1]):
    d = json.loads(l)
    n += 1
    if d.get("fault"):
        c[d["fault"]] += 1
print("%d requests, %d faults (%s)" % (n, sum(c.values()),
      ", ".join("%s %d" % kv for kv in sorted(c.items())) or "none"))
EOF
}

# vs_collect PREFIX: govc's view of every VM and distributed portgroup
vs_collect() {
    govc object.collect -json -type m / name runtime.powerState config.hardware.device \
        config.extraConfig >"$1.vms.json" 2>"$1.govc.err" &&
        govc object.collect -json -type DistributedVirtualPortgroup / name config.key \
            config.defaultPortConfig >"$1.pgs.json" 2>>"$1.govc.err"
}

# vs_state_ok PLAN PREFIX [partial]: the state matches the plan (problems in
# PREFIX.state); partial: only the plan's tenants are looked at
vs_state_ok() {
    vs_collect "$2" || return 1
    "$FPY" "$VSCHECK" state "$1" "$2.vms.json" "$2.pgs.json" $3 >"$2.state"
}

# vs_trace_counts TRACE START [END] > JSON
vs_trace_counts() {
    "$FPY" "$VSCHECK" trace "$@"
}

file_size() {
    stat -c %s "$1" 2>/dev/null || echo 0
}

# vs_add_dv_portgroups DVS-MOREF FIRST LAST: portgroups dv-N with VLAN N in one
# AddDVPortgroup_Task (vcsim_soap)
vs_add_dv_portgroups() {
    specs=""
    v=$2
    while [ "$v" -le "$3" ]; do
        specs="$specs<spec><name>dv-$v</name><type>earlyBinding</type><numPorts>8</numPorts><defaultPortConfig xsi:type=\"VMwareDVSPortSetting\"><vlan xsi:type=\"VmwareDistributedVirtualSwitchVlanIdSpec\"><inherited>false</inherited><vlanId>$v</vlanId></vlan></defaultPortConfig></spec>"
        v=$((v + 1))
    done
    vcsim_soap "<AddDVPortgroup_Task xmlns=\"urn:vim25\"><_this type=\"DistributedVirtualSwitch\">$1</_this>$specs</AddDVPortgroup_Task>" |
        grep -q "<returnval type=\"Task\">"
}

# vs_plan FILE URI N [SECOND-NETWORK-TENANTS]: N tenants t000.. on the 4 hosts
# of a default vcsim (DC0_H0, DC0_C0_H0..H2), tenant i on host i%4 with VLAN
# 100+i/4 on DVS0; tenants listed (by number) get a second network, VLAN
# 150+i/4. Also a standalone file for one tenant: vs_plan FILE URI N "" TENANT.
vs_plan() {
    "$FPY" - "$@" <<'EOF'
import sys
out, uri, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
second = {int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "").split()}
only = int(sys.argv[5]) if len(sys.argv) > 5 else None
hosts = ["DC0_H0", "DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
with open(out, "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">\n'
            '  <gateway address="cc-gateway.sp.example.com" port="6180"/>\n')
    for h, t in enumerate(hosts):
        f.write('  <host name="h%d" uri="%s" target="%s" production-network="VM Network"'
                ' vlan-switch="DVS0"/>\n' % (h, uri, t))
    for i in range(n):
        if only is not None and i != only:
            continue
        nets = '<network name="n" vlan="%d"/>' % (100 + i // 4)
        if i in second:
            nets += '<network name="m" vlan="%d"/>' % (150 + i // 4)
        f.write('  <hardware-plan name="p%03d" host="h%d">%s</hardware-plan>\n'
                '  <tenant name="t%03d"><subscribe plan="p%03d"/></tenant>\n' % (i, i % 4, nets, i, i))
    f.write('</netext-plan>\n')
EOF
}

# dvs_moref: the moref of DVS0
dvs_moref() {
    govc ls -i /DC0/network/DVS0 2>/dev/null | sed 's/.*://'
}
