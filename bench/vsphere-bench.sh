#!/bin/sh
# vsphere-bench.sh: issue 7's vSphere figures against vcsim (run by `make
# bench` through bench/run.sh, or alone from a build directory).
#
# A batch of N (default 1,000) new tenants, one provider appliance each
# (production vNIC + 3 tenant VLANs), on a fresh vcsim started here:
#   - with -delay 20 (a WAN/vCenter round trip) at -j 4 (the CLI default) and
#     other -j values, and without delay;
#   - SOAP requests per appliance counted by vcsim (-trace), beyond the run's
#     login (RetrieveServiceContent, Login) and inventory (CreateContainerView,
#     RetrievePropertiesEx), and the ratio of the wall time to the lower bound
#     ceil(N/J) x (requests per appliance) x 20 ms;
#   - a no-change re-run of the same N tenants: requests beyond login, wall;
#   - the peer: the same appliances made with govc (vm.create with the first
#     NIC, vm.network.add for the 3 VLANs, vm.change -e for marker and payload,
#     vm.power -on), in a shell loop; a subset of M (default 10) tenants is
#     measured and extrapolated linearly to N (printed as such).
# Targets (exit 1 when missed): <= 3 requests per appliance; wall <= 1.5 x
# the bound at -j 4; re-run <= 3 requests beyond login and < 2 s; >= 20x
# faster than govc at 20 ms.
# VLAN ownership is per plan host, so every tenant gets its own plan host on
# one of two ESXi hosts and the VLANs 101-103 (3 portgroups instead of 3,000).
# With xorriso, the same batch at 20 ms again with an appliance image (an ISO
# 9660 file of NX_BENCH_IMAGE_MIB, default 25, MiB), its re-run too: uploads
# (from the -v log lines) apart from SOAP requests; targets: <= 3 requests per
# appliance, one upload (every appliance is on LocalDS_0), none in the re-run.
# Environment: NX_BENCH_TENANTS, NX_BENCH_GOVC_SUBSET, NX_BENCH_JOBS (extra -j
# values, default "8 16"), NX_BENCH_IMAGE_MIB, NX_BENCH_JSON.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
export top_srcdir
. "$top_srcdir/bench/bench-lib.sh"
. "$top_srcdir/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"
N=${NX_BENCH_TENANTS:-1000}
M=${NX_BENCH_GOVC_SUBSET:-10}
JOBS=${NX_BENCH_JOBS:-8 16}
DEFAULT_J=4
DELAY_MS=20
[ -x "$NETEXT_DEPLOY" ] || { echo "vsphere-bench: $NETEXT_DEPLOY not found" >&2; exit 1; }
nx_tmpdir
BENCH_TMP=$NX_TMP
trap 'vcsim_stop_all; rm -rf "$NX_TMP"' EXIT INT TERM
if ! command -v vcsim >/dev/null 2>&1 || ! command -v govc >/dev/null 2>&1; then
    echo "vsphere-bench: SKIP: vcsim/govc not installed (../shared/tools/install-vcsim)"
    exit 0
fi
vcsim_require
vcsim_credentials
ND="$NETEXT_DEPLOY --credentials $NX_TMP/credentials --cacert $NX_TMP/vcsim-cert.pem"

trace_total() { vcsim_trace_count "$1"; }
trace_method() { # trace_method FILE METHOD
    tr -d '\000' <"$1" | grep -a '^Request: ' | grep -a -c "<soapenv:Body><$2[ >]"
}

# new_vcsim NAME DELAY: a fresh simulator with the portgroups and the plan
new_vcsim() {
    CUR_TRACE="$NX_TMP/trace-$1"
    vcsim_start "vcsim-$1" -delay "$2" -trace -trace-file "$CUR_TRACE" || exit 1
    vcsim_batch_setup || { echo "vsphere-bench: portgroups" >&2; exit 1; }
    vcsim_batch_plan "$NX_TMP/plan-$1.xml" "$N" "$VCSIM_URI"
    : >"$CUR_TRACE"
}

# deploy NAME DELAY J: sets <NAME>_s, _kib, _req, _rpa, _bound, _ratio
deploy() {
    dn=$1 delay=$2 j=$3
    new_vcsim "$dn" "$delay"
    bench_time "$dn" $ND ${DEPLOY_OPTS:--q} -j "$j" batch "$NX_TMP/plan-$dn.xml"
    eval "rc=\$${dn}_rc s=\$${dn}_s"
    if [ "$rc" != 0 ]; then
        echo "vsphere-bench: batch of $N with -j $j failed (exit $rc):" >&2
        tail -5 "$NX_TMP/$dn.out" >&2
        BENCH_FAIL=1
    fi
    made=$(grep -c ' changed$' "$NX_TMP/$dn.out")
    total=$(trace_total "$NX_TMP/trace-$dn")
    setup=$(($(trace_method "$NX_TMP/trace-$dn" RetrieveServiceContent) + \
        $(trace_method "$NX_TMP/trace-$dn" Login) + \
        $(trace_method "$NX_TMP/trace-$dn" CreateContainerView) + 1))
    rpa=$(awk "BEGIN{printf \"%.3f\", ($total - $setup) / $N}")
    bound=$(awk "BEGIN{printf \"%.2f\", int(($N + $j - 1) / $j) * $rpa * $DELAY_MS / 1000}")
    ratio=$(awk "BEGIN{ if ($bound > 0) printf \"%.2f\", $s / $bound; else print \"-\" }")
    eval "${dn}_req=$total ${dn}_rpa=$rpa ${dn}_bound=$bound ${dn}_ratio=$ratio ${dn}_made=$made"
    printf '%-34s %5s %8s %9s %8s %9s %7s %8s\n' "netext-deploy, delay ${delay} ms" "$j" "$s" \
        "$total" "$rpa" "$bound" "$ratio" "$((${dn}_kib / 1024))"
}

# govc_peer NAME: M tenants with govc; sets <NAME>_s (for M), _req
govc_peer() {
    dn=$1
    : >"$CUR_TRACE"
    payload=$(head -c 1536 /dev/urandom | base64 -w0)
    govc folder.create /DC0/vm/govc-peer >/dev/null 2>&1
    govc pool.create /DC0/host/DC0_H0/Resources/govc-peer >/dev/null 2>&1
    govc pool.create /DC0/host/DC0_C0/Resources/govc-peer >/dev/null 2>&1
    cat >"$NX_TMP/peer.sh" <<PEOF
i=1
while [ \$i -le $M ]; do
    if [ \$((i % 2)) = 0 ]; then h=DC0_H0; p=/DC0/host/DC0_H0/Resources/govc-peer
    else h=DC0_C0_H0; p=/DC0/host/DC0_C0/Resources/govc-peer; fi
    vm=peer-\$i
    mac=\$(printf '00:50:56:3e:%02x:%02x' \$((i / 256)) \$((i % 256)))
    govc vm.create -on=false -host "\$h" -pool "\$p" -folder /DC0/vm/govc-peer -ds LocalDS_0 \
        -c 1 -m 512 -g otherLinux64Guest -net "VM Network" -net.adapter vmxnet3 \
        -net.address "\$mac" "\$vm" || exit 1
    for v in 101 102 103; do
        mac=\$(printf '00:50:56:3f:%02x:%02x' \$((i % 256)) \$v)
        govc vm.network.add -vm "\$vm" -net dv-\$v -net.adapter vmxnet3 -net.address "\$mac" || exit 1
    done
    govc vm.change -vm "\$vm" -e "netext-deploy.marker=peer tenant \$i" \
        -e "guestinfo.netext.payload=$payload" -e guestinfo.netext.payload.encoding=base64 || exit 1
    govc vm.power -on "\$vm" >/dev/null || exit 1
    i=\$((i + 1))
done
PEOF
    bench_time "$dn" sh "$NX_TMP/peer.sh"
    eval "rc=\$${dn}_rc"
    [ "$rc" = 0 ] || { echo "vsphere-bench: the govc peer failed:" >&2; tail -5 "$NX_TMP/$dn.out" >&2; BENCH_FAIL=1; }
    eval "${dn}_req=$(trace_total "$CUR_TRACE")"
}

echo
echo "vSphere (vcsim on 127.0.0.1), $N new tenants, 1 appliance each (4 vNICs: production + 3 VLANs)"
printf '%-34s %5s %8s %9s %8s %9s %7s %8s\n' "run" "-j" "wall_s" "requests" "req/appl" "bound_s" "ratio" "RSS_MiB"

deploy d20 $DELAY_MS $DEFAULT_J
# the no-change re-run of the same tenants, same simulator
: >"$NX_TMP/trace-d20"
bench_time again $ND -q -j $DEFAULT_J batch "$NX_TMP/plan-d20.xml"
again_req=$(trace_total "$NX_TMP/trace-d20")
again_login=$(($(trace_method "$NX_TMP/trace-d20" RetrieveServiceContent) + $(trace_method "$NX_TMP/trace-d20" Login)))
again_beyond=$((again_req - again_login))
again_changed=$(grep -c ' changed$' "$NX_TMP/again.out")
printf '%-34s %5s %8s %9s %8s %9s %7s %8s\n' "no-change re-run, delay 20 ms" $DEFAULT_J "$again_s" \
    "$again_req" "-" "-" "-" "$((again_kib / 1024))"
# the peer on the same simulator (its VMs do not disturb the figures above)
govc_peer peer20
peer20_per=$(awk "BEGIN{printf \"%.3f\", $peer20_s / $M}")
peer20_full=$(awk "BEGIN{printf \"%.1f\", $peer20_per * $N}")
peer20_rpa=$(awk "BEGIN{printf \"%.1f\", $peer20_req / $M}")
printf '%-34s %5s %8s %9s %8s %9s %7s %8s\n' "govc loop, delay 20 ms ($M measured)" 1 "$peer20_s" \
    "$peer20_req" "$peer20_rpa" "-" "-" "-"
vcsim_stop "$VCSIM_PID"

for j in $JOBS; do
    deploy "d20j$j" $DELAY_MS "$j"
    vcsim_stop "$VCSIM_PID"
done

# the appliance image: uploads counted apart (log lines "vsphere: uploaded
# NAME to [DS] (BYTES bytes in SECONDS s)")
uploads() { # uploads NAME: sets <NAME>_up (count), _up_s (seconds), _up_mib
    u=$(grep -c 'vsphere: uploaded ' "$NX_TMP/$1.out")
    us=$(sed -n 's/.*vsphere: uploaded .* bytes in \([0-9.]*\) s).*/\1/p' "$NX_TMP/$1.out" |
        awk '{t += $1} END {printf "%.2f", t}')
    ub=$(sed -n 's/.*vsphere: uploaded .* (\([0-9]*\) bytes in .*/\1/p' "$NX_TMP/$1.out" |
        awk '{t += $1} END {printf "%.1f", t / 1048576}')
    eval "${1}_up=$u ${1}_up_s=$us ${1}_up_mib=$ub"
}
IMG_MIB=${NX_BENCH_IMAGE_MIB:-25}
image_json=""
if command -v xorriso >/dev/null 2>&1; then
    mkdir -p "$NX_TMP/isodir/boot"
    head -c $((IMG_MIB * 1048576)) /dev/urandom >"$NX_TMP/isodir/boot/filler"
    xorriso -as mkisofs -quiet -o "$NX_TMP/bench.iso" "$NX_TMP/isodir" >/dev/null 2>&1 ||
        { echo "vsphere-bench: xorriso failed" >&2; exit 1; }
    DEPLOY_OPTS="-v --image $NX_TMP/bench.iso"
    deploy d20img $DELAY_MS $DEFAULT_J
    uploads d20img
    echo "  image ($IMG_MIB MiB): $d20img_up upload(s), $d20img_up_mib MiB in $d20img_up_s s (not in the SOAP requests)"
    : >"$NX_TMP/trace-d20img"
    bench_time againimg $ND $DEPLOY_OPTS -j $DEFAULT_J batch "$NX_TMP/plan-d20img.xml"
    uploads againimg
    againimg_req=$(trace_total "$NX_TMP/trace-d20img")
    againimg_changed=$(grep -c ' changed$' "$NX_TMP/againimg.out")
    printf '%-34s %5s %8s %9s %8s %9s %7s %8s\n' "  its no-change re-run" $DEFAULT_J "$againimg_s" \
        "$againimg_req" "-" "-" "-" "$((againimg_kib / 1024))"
    echo "  re-run: $againimg_up upload(s), $againimg_changed tenants changed"
    vcsim_stop "$VCSIM_PID"
    DEPLOY_OPTS=
    image_json=",
 \"delay20_image\": {\"image_mib\": $IMG_MIB, \"wall_s\": $d20img_s, \"requests\": $d20img_req,
   \"requests_per_appliance\": $d20img_rpa, \"uploads\": $d20img_up, \"upload_s\": $d20img_up_s,
   \"rerun_wall_s\": $againimg_s, \"rerun_requests\": $againimg_req, \"rerun_uploads\": $againimg_up}"
else
    echo "  (no xorriso: the run with an appliance image is left out)"
fi

deploy d0 0 $DEFAULT_J
govc_peer peer0
peer0_full=$(awk "BEGIN{printf \"%.1f\", $peer0_s / $M * $N}")
printf '%-34s %5s %8s %9s %8s %9s %7s %8s\n' "govc loop, no delay ($M measured)" 1 "$peer0_s" \
    "$peer0_req" "$(awk "BEGIN{printf \"%.1f\", $peer0_req / $M}")" "-" "-" "-"
vcsim_stop "$VCSIM_PID"

speedup20=$(awk "BEGIN{printf \"%.1f\", $peer20_full / $d20_s}")
speedup0=$(awk "BEGIN{printf \"%.1f\", $peer0_full / $d0_s}")
echo "govc for all $N tenants, extrapolated linearly from $M: ${peer20_full} s at 20 ms (netext-deploy ${speedup20}x faster), ${peer0_full} s without delay (${speedup0}x)"
best_j=$DEFAULT_J
best_s=$d20_s
for j in $JOBS; do
    eval "js=\$d20j${j}_s"
    if awk "BEGIN{exit !($js < $best_s)}"; then best_j=$j best_s=$js; fi
done
echo "fastest at 20 ms: -j $best_j (${best_s} s)"

bench_target "delay 20 ms: $d20_made of $N tenants changed" "$d20_made == $N"
bench_target "requests per appliance beyond login + inventory: $d20_rpa <= 3" "$d20_rpa <= 3"
bench_target "wall at -j $DEFAULT_J: ${d20_s} s = ${d20_ratio} x the bound ${d20_bound} s (<= 1.5)" "$d20_ratio <= 1.5"
bench_target "no-change re-run: $again_beyond requests beyond login (<= 3), $again_changed changed" \
    "$again_beyond <= 3 && $again_changed == 0"
bench_target "no-change re-run: ${again_s} s < 2 s" "$again_s < 2"
bench_target "vs govc at 20 ms: ${speedup20}x faster (>= 20)" "$speedup20 >= 20"
if [ -n "$image_json" ]; then
    bench_target "with an image: $d20img_made of $N tenants changed, $d20img_rpa requests per appliance (<= 3)" \
        "$d20img_made == $N && $d20img_rpa <= 3"
    bench_target "with an image: $d20img_up upload (1: one datastore), $againimg_up in the re-run, $againimg_changed changed" \
        "$d20img_up == 1 && $againimg_up == 0 && $againimg_changed == 0"
fi

jobs_json=""
for j in $JOBS; do
    eval "jobs_json=\"\$jobs_json, \\\"$j\\\": {\\\"wall_s\\\": \$d20j${j}_s, \\\"requests\\\": \$d20j${j}_req, \\\"requests_per_appliance\\\": \$d20j${j}_rpa, \\\"bound_s\\\": \$d20j${j}_bound, \\\"ratio\\\": \$d20j${j}_ratio}\""
done
bench_json vsphere "{\"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"tenants\": $N, \"default_jobs\": $DEFAULT_J,
 \"delay20\": {\"wall_s\": $d20_s, \"requests\": $d20_req, \"requests_per_appliance\": $d20_rpa,
   \"bound_s\": $d20_bound, \"ratio\": $d20_ratio, \"peak_rss_kib\": $d20_kib},
 \"delay20_by_jobs\": {\"$DEFAULT_J\": {\"wall_s\": $d20_s, \"requests\": $d20_req, \"requests_per_appliance\": $d20_rpa, \"bound_s\": $d20_bound, \"ratio\": $d20_ratio}$jobs_json},
 \"delay0\": {\"wall_s\": $d0_s, \"requests\": $d0_req, \"requests_per_appliance\": $d0_rpa, \"peak_rss_kib\": $d0_kib},
 \"rerun\": {\"wall_s\": $again_s, \"requests\": $again_req, \"beyond_login\": $again_beyond, \"peak_rss_kib\": $again_kib},
 \"govc\": {\"measured_tenants\": $M, \"delay20_measured_s\": $peer20_s, \"delay20_extrapolated_s\": $peer20_full,
   \"delay0_measured_s\": $peer0_s, \"delay0_extrapolated_s\": $peer0_full, \"requests_per_appliance\": $peer20_rpa,
   \"speedup_delay20\": $speedup20, \"speedup_delay0\": $speedup0}$image_json,
 \"targets_met\": $([ $BENCH_FAIL = 0 ] && echo true || echo false)}"
exit $BENCH_FAIL
