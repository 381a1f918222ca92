#!/bin/bash
# appliance-e2e.sh: real appliance VMs, deployed by netext-deploy, extend two
# networks at layer 2 between a "production VM" and its "replica".
#
# On the private libvirtd + QEMU (TCG) + Open vSwitch of tests/libvirtd-lib.sh:
#
#   prodvm1 --+-- lan1 --[tapp-lan1]==TCP==+                  +-- VLAN 101 -- replica1
#             |  10.1.0.0/24  (tenant      |     gw (socat)    |  (web)
#   prodvm2 --+-- lan2 --[tapp-lan2]==TCP==+==> 198.51.100.1 ==> [SP appliance]
#                10.2.0.0/24  appliances)       :6281/:6282  |  192.0.2.10
#                                                             +-- VLAN 102 -- replica2
#                                                                 (db)
#
# netext-deploy `subscribe` deploys the SP appliance (production vNIC + VLANs
# 101 and 102, the image uploaded to a storage pool), `export-bundle` and
# `rescan` the two tenant appliances (one per production network, the image
# used in place). All three boot the appliance ISO (`make appliance`), read
# their payload from fw_cfg and run netext-bootstrap, which reports
# `netext-status:` lines on the serial console (logged by virtlogd). The
# cloud gateway is a socat relay in its own namespace. prodvmN and replicaN
# are network namespaces on OVS ports; they ping each other both ways, and
# each sees the other's real MAC. Prints: subscribe to first ping, boot to
# state=ok per appliance, memory per appliance. A second run of each side
# changes nothing; unsubscribe and `rescan` with no appliances remove all.
#
# Root only; exits 77 (skip) with the reason when QEMU, Open vSwitch or the
# image are missing. Every process is stopped by PID (lvd_stop for the
# daemons and QEMU; the socat relays by their PIDs). On a failure it says
# what the gateway sees; NX_E2E_HOLD=SECONDS then keeps everything running
# that long to look around.
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${top_builddir:-.}
. "$srcdir/tests/libvirtd-lib.sh"
DATA=$srcdir/tests/data/libvirtd
NETEXT_DEPLOY=${NETEXT_DEPLOY:-$builddir/src/netext-deploy}
IMAGE=${NX_APPLIANCE_IMAGE:-$builddir/appliance/netext-appliance.iso}
BOOT_LIMIT=${NX_E2E_BOOT_LIMIT:-120} # seconds for every appliance to report state=ok

[ -n "${NX_SKIP_SLOW_TIERS:-}" ] && lvd_skip "NX_SKIP_SLOW_TIERS is set"
lvd_check_prereqs
for p in ip socat ping xmllint setsid ethtool; do
    command -v "$p" >/dev/null 2>&1 || lvd_skip "$p not installed (see tests/debian-test-deps)"
done
[ -f "$IMAGE" ] || lvd_skip "no appliance image at $IMAGE (run 'make appliance' first)"
[ -x "$NETEXT_DEPLOY" ] || lvd_fail "no netext-deploy at $NETEXT_DEPLOY"
IMAGE=$(cd "$(dirname "$IMAGE")" && pwd)/$(basename "$IMAGE")

P=nxa$$- # our network namespaces
NSES="gw prodvm1 prodvm2 replica1 replica2"
RELAYS="" # socat PIDs (setsid: process groups)
cleanup() {
    local pid ns
    for pid in $RELAYS; do kill -- -"$pid" 2>/dev/null; done
    lvd_stop
    for ns in $NSES; do ip netns del "$P$ns" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
step() {
    # shellcheck disable=SC2034 # read by lvd_fail
    LVD_STEP=$*
    lvd_log "--- $*"
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
nsx() {
    local ns=$1
    shift
    ip netns exec "$P$ns" "$@"
}

step "starting ovsdb-server, ovs-vswitchd, virtlogd, libvirtd"
t_start=$(now)
lvd_start
T=$LVD_TMP
POOL=Cloud_Connect_Replication_${T##*.}
lvd_cgroup_partition "$POOL" || lvd_fail "cannot create cgroup partition $POOL"

step "OVS bridges, libvirt networks, the image storage pool"
for br in nxt-prod nxt-tenants nxt-lan1 nxt-lan2; do
    lvd_vsctl add-br "$br" -- set bridge "$br" datapath_type=netdev || lvd_fail "add-br $br"
done
for n in production tenants; do
    lvd_virsh net-define "$DATA/net-$n.xml" >/dev/null || lvd_fail "net-define $n"
done
for n in lan1 lan2; do
    cat >"$T/net-$n.xml" <<EOF
<network><name>$n</name><forward mode='bridge'/><bridge name='nxt-$n'/><virtualport type='openvswitch'/></network>
EOF
    lvd_virsh net-define "$T/net-$n.xml" >/dev/null || lvd_fail "net-define $n"
done
for n in sp-production tenant-vlans lan1 lan2; do
    lvd_virsh net-start "$n" >/dev/null || lvd_fail "net-start $n"
done
mkdir -p "$T/images"
lvd_virsh pool-define-as images dir --target "$T/images" >/dev/null &&
    lvd_virsh pool-start images >/dev/null || lvd_fail "storage pool"

step "namespaces: gateway, production VMs, replicas, on OVS ports"
# plug NS IFNAME ADDR BRIDGE [VLAN]: a veth from namespace NS to an OVS port
n_veth=0
plug() {
    local ns=$1 ifn=$2 addr=$3 br=$4 vlan=${5:-} host=nxv$$-$n_veth peer=nxp$$-$n_veth
    n_veth=$((n_veth + 1))
    ip link add "$host" type veth peer name "$peer" || return 1
    ip link set "$peer" netns "$P$ns" || return 1
    nsx "$ns" ip link set "$peer" name "$ifn" || return 1
    ip link set "$host" netns "$LVD_NSPID" || return 1
    lvd_ns ip link set "$host" up || return 1
    lvd_vsctl add-port "$br" "$host" ${vlan:+tag=$vlan} || return 1
    nsx "$ns" ip addr add "$addr" dev "$ifn" || return 1
    # Open vSwitch's userspace datapath takes a veth's packets as they are,
    # TCP checksum left to the hardware included, and the guest drops them:
    # checksums are computed here (the appliances' vNICs likewise, see the
    # libvirt provider's <host csum='off'/>)
    nsx "$ns" ethtool -K "$ifn" tx off >/dev/null || return 1
    nsx "$ns" ip link set "$ifn" up
}
for ns in $NSES; do
    ip netns add "$P$ns" || lvd_skip "cannot create network namespaces here"
    nsx "$ns" ip link set lo up
done
plug gw eth0 192.0.2.1/24 nxt-prod &&
    plug gw eth1 10.1.0.1/24 nxt-lan1 &&
    plug gw eth2 10.2.0.1/24 nxt-lan2 &&
    nsx gw ip addr add 198.51.100.1/32 dev lo &&
    plug prodvm1 eth0 10.1.0.5/24 nxt-lan1 &&
    plug prodvm2 eth0 10.2.0.5/24 nxt-lan2 &&
    plug replica1 eth0 10.1.0.6/24 nxt-tenants 101 &&
    plug replica2 eth0 10.2.0.6/24 nxt-tenants 102 || lvd_fail "namespaces"
# the cloud gateway: tunnel ports relayed to the SP appliance
for port in 6281 6282; do
    setsid ip netns exec "$P"gw socat TCP-LISTEN:$port,bind=198.51.100.1,reuseaddr,fork \
        TCP:192.0.2.10:$port </dev/null >>"$T/log/socat.log" 2>&1 &
    RELAYS="$RELAYS $!"
done

# ---- plans ----------------------------------------------------------------------
cat >"$T/plan.xml" <<EOF
<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">
  <gateway address="198.51.100.1" port="6180"/>
  <defaults resource-pool="$POOL" image="$IMAGE"/>
  <host name="kvm1" uri="$LVD_URI" production-network="sp-production"
        vlan-switch="tenant-vlans" image-store="images"/>
  <hardware-plan name="Silver" host="kvm1">
    <network name="web" vlan="101"/>
    <network name="db" vlan="102"/>
  </hardware-plan>
  <tenant name="acme">
    <subscribe plan="Silver"/>
    <appliance host="kvm1"><static ip="192.0.2.10/24" gateway="192.0.2.1"/></appliance>
  </tenant>
</netext-plan>
EOF
cat >"$T/tenant.xml" <<EOF
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="acme.bundle">
  <defaults resource-pool="$POOL" image="$IMAGE"/>
  <source-host name="src" uri="$LVD_URI"/>
  <appliance host="src" production-network="lan1" extends="web">
    <static ip="10.1.0.2/24" gateway="10.1.0.1"/>
  </appliance>
  <appliance host="src" production-network="lan2" extends="db">
    <static ip="10.2.0.2/24" gateway="10.2.0.1"/>
  </appliance>
</netext-tenant>
EOF
export NETEXT_DEPLOY_STATE_DIR="$T/state"
nx() { # nx LABEL ARGS...: netext-deploy --json; $T/LABEL.json, $T/LABEL.err, RC
    local label=$1
    shift
    timeout 300 "$NETEXT_DEPLOY" --json "$@" >"$T/$label.json" 2>"$T/$label.err"
    RC=$?
}
nx_must() {
    nx "$@"
    [ "$RC" = 0 ] || {
        cat "$T/$1.json" "$T/$1.err" >&2
        lvd_fail "netext-deploy ($1): exit $RC"
    }
}
serial_log() { echo "$T/var/log/libvirt/qemu/$1-serial.log"; }
qemu_pid() { cat "$T/run/libvirt/qemu/$1.pid" 2>/dev/null; }

# what the network looks like from the gateway, for a failure message
diagnose() {
    local a
    for a in 192.0.2.10 10.1.0.2 10.2.0.2; do
        nsx gw ping -c 1 -W 1 "$a" >/dev/null 2>&1 && lvd_log "gateway reaches $a" ||
            lvd_log "gateway does not reach $a"
    done
    nsx gw ip neigh >&2
    nsx gw ss -tn >&2
    nsx gw ss -tln >&2
    nsx gw awk '/^Tcp:/ { if (n++) print "gateway TCP InCsumErrors:", $NF }' /proc/net/snmp >&2
    tail -n 20 "$T/log/socat.log" >&2
    # NX_E2E_HOLD=SECONDS keeps everything running that long, to look around
    if [ -n "${NX_E2E_HOLD:-}" ]; then
        lvd_log "holding for ${NX_E2E_HOLD}s: namespaces $P*, libvirt $LVD_URI, files $T"
        sleep "$NX_E2E_HOLD"
    fi
}

# ---- 1. deploy both sides -----------------------------------------------------------
step "subscribe (SP appliance) and export-bundle + rescan (two tenant appliances)"
t_sub=$(now)
nx_must subscribe subscribe "$T/plan.xml"
t_sub_done=$(now)
nx_must bundle --tenant acme -o "$T/acme.bundle" export-bundle "$T/plan.xml"
nx_must rescan rescan "$T/tenant.xml"
t_rescan_done=$(now)
SPA=netext-acme-kvm1
doms=$(lvd_virsh list --name | sort | xargs)
[ "$(echo "$doms" | wc -w)" = 3 ] || lvd_fail "want 3 running appliances, have: $doms"
TAPPS=$(echo "$doms" | tr ' ' '\n' | grep -vx "$SPA" | xargs)
[ "$(echo "$TAPPS" | wc -w)" = 2 ] || lvd_fail "no SP appliance $SPA among: $doms"
id=$(sha256sum "$IMAGE" | cut -c1-16)
vol="netext-appliance-$id.iso"
[ "$(lvd_virsh vol-info --pool images "$vol" --bytes | awk '/^Capacity/ {print $2}')" = \
    "$(stat -c %s "$IMAGE")" ] || lvd_fail "image not uploaded to pool images as $vol"
lvd_virsh vol-download --pool images "$vol" "$T/downloaded.iso" &&
    cmp -s "$T/downloaded.iso" "$IMAGE" || lvd_fail "uploaded volume differs from the image"
rm -f "$T/downloaded.iso"
lvd_virsh dumpxml "$SPA" | xmllint --xpath \
    "string(/domain/devices/disk[@device='cdrom']/source/@volume)" - | grep -qx "$vol" ||
    lvd_fail "$SPA: CD-ROM is not volume $vol"
for d in $TAPPS; do
    lvd_virsh dumpxml "$d" | xmllint --xpath \
        "string(/domain/devices/disk[@device='cdrom']/source/@file)" - | grep -qx "$IMAGE" ||
        lvd_fail "$d: CD-ROM is not $IMAGE"
done
lvd_log "deployed $SPA and $TAPPS, all booting the image ($vol)"

# ---- 2. boot: netext-status on the serial console --------------------------------------
step "appliances boot the image and report netext-status state=ok"
declare -A t_ok
pending="$SPA $TAPPS"
while [ -n "$pending" ]; do
    left=""
    for d in $pending; do
        if grep -q '^netext-status: .*state=ok' "$(serial_log "$d")" 2>/dev/null; then
            t_ok[$d]=$(now)
        else
            left="$left $d"
        fi
    done
    pending=$(echo "$left" | xargs)
    [ -z "$pending" ] && break
    if [ "$(secs "$t_sub" "$(now)" | cut -d. -f1)" -ge "$BOOT_LIMIT" ]; then
        for d in $pending; do
            lvd_log "$d: serial console:"
            tail -n 30 "$(serial_log "$d")" >&2
        done
        diagnose
        lvd_fail "no state=ok within ${BOOT_LIMIT}s from: $pending"
    fi
    sleep 0.2
done
grep -h '^netext-status:' "$(serial_log "$SPA")" | tail -n 1 | grep -q 'role=provider.*tunnels=2/2' ||
    lvd_fail "SP appliance: $(grep -h '^netext-status:' "$(serial_log "$SPA")" | tail -n 1)"
for d in $TAPPS; do
    grep -h '^netext-status:' "$(serial_log "$d")" | tail -n 1 | grep -q 'role=tenant.*tunnels=1/1' ||
        lvd_fail "$d: $(grep -h '^netext-status:' "$(serial_log "$d")" | tail -n 1)"
done

# ---- 3. traffic across both extended networks -----------------------------------------
step "ping both ways across both extended networks, with real MACs"
pingable() { nsx "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; }
t_ping=""
for _ in $(seq 60); do
    if pingable prodvm1 10.1.0.6; then
        t_ping=$(now)
        break
    fi
    sleep 0.5
done
[ -n "$t_ping" ] || lvd_fail "prodvm1 cannot reach replica1 (10.1.0.6) through the appliances"
mac_of() { nsx "$1" cat /sys/class/net/eth0/address; }
neigh_mac() { nsx "$1" ip neigh show "$2" dev eth0 | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
for pair in "prodvm1 10.1.0.5 replica1 10.1.0.6" "prodvm2 10.2.0.5 replica2 10.2.0.6"; do
    set -- $pair
    for _ in $(seq 40); do pingable "$1" "$4" && break; sleep 0.5; done
    nsx "$1" ping -c 3 -i 0.2 -W 2 "$4" >/dev/null || lvd_fail "$1 -> $3 ($4): no answer"
    nsx "$3" ping -c 3 -i 0.2 -W 2 "$2" >/dev/null || lvd_fail "$3 -> $1 ($2): no answer"
    [ "$(neigh_mac "$1" "$4")" = "$(mac_of "$3")" ] ||
        lvd_fail "$1 sees $4 at $(neigh_mac "$1" "$4"), not $3's MAC $(mac_of "$3")"
    [ "$(neigh_mac "$3" "$2")" = "$(mac_of "$1")" ] ||
        lvd_fail "$3 sees $2 at $(neigh_mac "$3" "$2"), not $1's MAC $(mac_of "$1")"
    lvd_log "ok: $1 <-> $3 both ways, real MACs in ARP"
done
# the networks stay apart: replica1 (web) does not reach prodvm2 (db)
nsx replica1 ip route add 10.2.0.0/24 dev eth0 2>/dev/null
pingable replica1 10.2.0.5 && lvd_fail "web's replica reaches db's production VM"

# ---- 4. figures ------------------------------------------------------------------------
mem_kib() { awk '/^VmRSS/ {print $2}' "/proc/$(qemu_pid "$1")/status" 2>/dev/null; }
echo "appliance-e2e: figures (QEMU TCG, $(nproc) cores):"
printf '  %-40s %s s\n' "subscribe (SP appliance) took" "$(secs "$t_sub" "$t_sub_done")"
printf '  %-40s %s s\n' "subscribe to first ping across the tunnel" "$(secs "$t_sub" "$t_ping")"
for d in $SPA $TAPPS; do
    started=$t_sub
    [ "$d" = "$SPA" ] || started=$t_sub_done
    guest=$(grep -h '^netext-status: .*state=ok' "$(serial_log "$d")" | tail -n 1 |
        sed -n 's/.*mem_used_kib=\([0-9]*\).*/\1/p')
    printf '  %-40s %s s after its deploy; guest uses %s MiB of 256; QEMU (TCG) RSS %s MiB\n' \
        "$d: state=ok" "$(secs "$started" "${t_ok[$d]}")" "$((${guest:-0} / 1024))" \
        "$(($(mem_kib "$d") / 1024))"
done

# ---- 5. second runs change nothing; removal ---------------------------------------------
step "second subscribe and rescan: up to date"
nx_must again subscribe "$T/plan.xml"
grep -q '"changes":0,' "$T/again.json" || lvd_fail "second subscribe changed: $(cat "$T/again.json")"
nx_must again2 rescan "$T/tenant.xml"
grep -q '"changes":0,' "$T/again2.json" || lvd_fail "second rescan changed: $(cat "$T/again2.json")"

step "unsubscribe and a tenant configuration with no appliances remove everything"
nx_must unsub --tenant acme unsubscribe "$T/plan.xml"
sed -e '/<appliance /,/<\/appliance>/d' -e 's|<source-host |<no-appliances/>\n  <source-host |' \
    "$T/tenant.xml" >"$T/tenant-none.xml"
nx_must none rescan "$T/tenant-none.xml"
left=$(lvd_virsh list --all --name | xargs)
[ -z "$left" ] || lvd_fail "appliances left: $left"
lvd_log "PASS: appliance end to end in $(secs "$t_start" "$(now)") s"
exit 0
