#!/bin/sh
# tunnel-e2e.sh: the layer-2 tunnel end to end, with real software in network
# namespaces (root only).
#
#   prodvm --+                                             +-- replica  (VLAN 101 "web")
#            |-- tenant LAN --+-- tapp ==TCP==> gw ==TCP==> papp -+
#   gw ------+  (10.1.0.0/24) |  (netext-bootstrap,   socat   (netext-bootstrap,
#                             |   OpenVPN client)     relay    OpenVPN server) +-- replica2 (VLAN 102 "db",
#                                                                                   not extended)
#   inet -- internet -- gw -- SP production (192.0.2.0/24) -- papp
#
# Each VLAN is its own bridge (the vSwitch applies the VLAN; this kernel has no
# 802.1Q subinterfaces). Both payloads come from `netext-deploy payload`: the
# SP appliance's from the plan, the tenant appliance's from a <netext-tenant>
# configuration and the bundle `netext-deploy export-bundle` made; each appliance gets its payload the way its hypervisor would
# deliver it (papp: libvirt fw_cfg, base64; tapp: Hyper-V KVP pool items), and
# netext-bootstrap itself writes and starts OpenVPN. Proves: ping both ways
# with real MACs in ARP, recovery after a gateway restart (< 10 s), full site
# failover (public IP rule reaches the replica, port 22 does not, replicas
# reach the internet through SNAT), and that partial and full site failover
# exclude each other.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"

slow_tier
require_netns
for t in openvpn socat nft ping setsid base64; do
    require_cmd $t "$t is not installed (see tests/debian-test-deps)"
done
PY=/usr/bin/python3
[ -x $PY ] || skip_all "no /usr/bin/python3 (builds the Hyper-V KVP pool file)"
BOOT=$NETEXT_BOOTSTRAP
PLAN=$top_srcdir/tests/data/tunnel/plan.xml
[ -x "$NETEXT_DEPLOY" ] && [ -x "$BOOT" ] || { echo "FAIL: build netext-deploy and netext-bootstrap first"; exit 1; }

P=nxe$$-

T=$(mktemp -d /tmp/nx-tunnel-e2e.XXXXXX)
chmod 0700 "$T"
NSES="sw prodvm tapp gw papp replica replica2 inet"
PIDS=""    # process groups (setsid) of the listeners this test starts
GW_PIDS=""

cleanup() {
    set +e
    for ns in tapp papp; do bootstrap_stop $P$ns "$T/root-$ns"; done
    for pid in $GW_PIDS; do kill -- -"$pid" 2>/dev/null; done
    for pid in $PIDS; do kill -- -"$pid" 2>/dev/null; done
    sleep 0.3
    for ns in $NSES; do ip netns del $P$ns 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

nsx() { ns=$1; shift; ip netns exec $P$ns "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- payloads, from netext-deploy itself ----------------------------------------
export NETEXT_DEPLOY_STATE_DIR="$T/state"
"$NETEXT_DEPLOY" payload --tenant acme --host esx1 -o "$T/provider.xml" "$PLAN" ||
    { echo "FAIL: netext-deploy payload (provider)"; exit 1; }
# the tenant side: the provider's bundle (networks, gateway, the tenant's
# tunnel credentials) and the tenant's configuration: one appliance on its
# production network "lan", extending "web"
"$NETEXT_DEPLOY" --tenant acme -o "$T/acme.bundle" export-bundle "$PLAN" ||
    { echo "FAIL: netext-deploy export-bundle"; exit 1; }
cat > "$T/tenant-config.xml" <<EOF
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="acme.bundle">
  <source-host name="src" uri="test:///default"/>
  <appliance host="src" production-network="lan" extends="web">
    <static ip="10.1.0.2/24" gateway="10.1.0.1"/>
  </appliance>
</netext-tenant>
EOF
"$NETEXT_DEPLOY" --host src -o "$T/tenant.xml" payload "$T/tenant-config.xml" ||
    { echo "FAIL: netext-deploy payload (tenant)"; exit 1; }
[ "$(stat -c %a "$T/provider.xml")" = 600 ] && ok "payload written 0600" || not_ok "payload mode"
[ "$(stat -c %a "$T/state")" = 700 ] && ok "state directory 0700" || not_ok "state dir mode"
find "$T/state" -name '*.key' | while read -r k; do
    [ "$(stat -c %a "$k")" = 600 ] || echo "FAIL: $k is not 0600"
done | grep FAIL && not_ok "key files 0600"

# a dry run shows the payload's digest, never its key
out=$("$NETEXT_DEPLOY" -n subscribe "$PLAN" 2>&1; "$NETEXT_DEPLOY" -n --json subscribe "$PLAN" 2>&1)
echo "$out" | grep -q 'PRIVATE KEY\|BEGIN CERT' && not_ok "a dry run printed tunnel credentials" ||
    ok "dry run prints no credentials"

attr() { # attr FILE ELEMENT-MATCH ATTR
    sed -n "s/.*<$2[^>]*$3=\"\([^\"]*\)\".*/\1/p" "$1" | head -1
}
P_PROD_MAC=$(attr "$T/provider.xml" production mac)
P_WEB_MAC=$(attr "$T/provider.xml" 'network name="web"' mac)
P_DB_MAC=$(attr "$T/provider.xml" 'network name="db"' mac)
T_PROD_MAC=$(attr "$T/tenant.xml" production mac)
WEB_PORT=$(attr "$T/provider.xml" 'network name="web"' tunnel-port)
DB_PORT=$(attr "$T/provider.xml" 'network name="db"' tunnel-port)
T_WEB_PORT=$(attr "$T/tenant.xml" 'extends name="web"' tunnel-port)
[ -n "$P_PROD_MAC" ] && [ -n "$P_WEB_MAC" ] && [ -n "$T_PROD_MAC" ] && [ "$WEB_PORT" = 6281 ] &&
    [ "$DB_PORT" = 6282 ] && [ "$T_WEB_PORT" = "$WEB_PORT" ] ||
    { echo "FAIL: unexpected payloads"; exit 1; }

# libvirt: base64 in fw_cfg (opt/org.netext-deploy/payload)
fw=$T/sys-papp/sys/firmware/qemu_fw_cfg/by_name/opt/org.netext-deploy/payload
mkdir -p "$fw" && base64 -w0 "$T/provider.xml" > "$fw/raw"
# Hyper-V: host-to-guest KVP items netext-deploy.payload.{count,sha256,000...}
mkdir -p "$T/sys-tapp/var/lib/hyperv"
$PY - "$T/tenant.xml" "$T/sys-tapp/var/lib/hyperv/.kvp_pool_0" <<'EOF'
import base64, hashlib, sys
data = open(sys.argv[1], 'rb').read()
b64 = base64.b64encode(data).decode()
chunks = [b64[i:i + 1000] for i in range(0, len(b64), 1000)]
items = [('netext-deploy.other', 'unrelated'), ('netext-deploy.payload.count', str(len(chunks))),
         ('netext-deploy.payload.sha256', hashlib.sha256(data).hexdigest())]
items += [('netext-deploy.payload.%03d' % i, c) for i, c in enumerate(chunks)]
with open(sys.argv[2], 'wb') as f:
    for k, v in reversed(items):  # any order
        f.write(k.encode().ljust(512, b'\0') + v.encode().ljust(2048, b'\0'))
EOF

# ---- topology ---------------------------------------------------------------------
for ns in $NSES; do ip netns add $P$ns || { echo "FAIL: netns"; exit 1; }; done
for ns in $NSES; do nsx $ns ip link set lo up; done
for br in tlan spprod v101 v102 inet; do
    nsx sw ip link add $br type bridge
    nsx sw ip link set $br up
done
n=0
plug() { # plug NS IFNAME BRIDGE [MAC]
    n=$((n + 1))
    ip link add s$n netns $P"sw" type veth peer name "$2" netns $P$1 || exit 1
    [ -n "${4:-}" ] && nsx "$1" ip link set dev "$2" address "$4"
    nsx sw ip link set s$n master "$3" up
    nsx "$1" ip link set "$2" up
}
plug prodvm eth0 tlan
plug tapp eth0 tlan "$T_PROD_MAC"
plug gw eth0 tlan
plug gw eth1 spprod
plug gw eth2 inet
plug papp eth0 spprod "$P_PROD_MAC"
plug papp eth1 v101 "$P_WEB_MAC"
plug papp eth2 v102 "$P_DB_MAC"
plug replica eth0 v101
plug replica2 eth0 v102
plug inet eth0 inet

nsx prodvm ip addr add 10.1.0.4/24 dev eth0
nsx prodvm ip route add default via 10.1.0.1
nsx replica ip addr add 10.1.0.5/24 dev eth0
nsx replica ip route add default via 10.1.0.1
nsx replica2 ip addr add 10.1.0.6/24 dev eth0
nsx gw ip addr add 10.1.0.1/24 dev eth0
nsx gw ip addr add 192.0.2.1/24 dev eth1
nsx gw ip addr add 203.0.113.1/24 dev eth2
nsx gw ip addr add 198.51.100.1/32 dev lo
nsx gw sysctl -qw net.ipv4.ip_forward=1
# the SP's public block is on the SP production network: its addresses are
# answered by the SP appliance (proxy ARP) during full site failover
nsx gw ip route add 198.51.100.10/32 dev eth1
nsx inet ip addr add 203.0.113.100/24 dev eth0
nsx inet ip route add default via 203.0.113.1

start_gateway() {
    GW_PIDS=""
    for port in $WEB_PORT $DB_PORT; do
        ip netns exec ${P}gw setsid socat TCP-LISTEN:$port,bind=198.51.100.1,reuseaddr,fork \
            TCP:192.0.2.10:$port </dev/null >/dev/null 2>&1 &
        GW_PIDS="$GW_PIDS $!"
    done
}
stop_gateway() {
    for pid in $GW_PIDS; do kill -- -"$pid" 2>/dev/null; done
    for pid in $GW_PIDS; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    done
    GW_PIDS=""
}
start_gateway

# ---- the bootstrap program in each appliance -----------------------------------------
logs() { for f in "$T"/root-*/var/log/netext/*.log; do [ -f "$f" ] && tail -5 "$f"; done; }
nsx papp "$BOOT" --root "$T/root-papp" --sysroot "$T/sys-papp" --channel fwcfg apply ||
    { echo "FAIL: bootstrap on the SP appliance"; logs; exit 1; }
nsx tapp "$BOOT" --root "$T/root-tapp" --sysroot "$T/sys-tapp" --channel hyperv apply ||
    { echo "FAIL: bootstrap on the tenant appliance"; logs; exit 1; }
for ns in papp:2 tapp:1; do
    want=${ns#*:}
    ns=${ns%:*}
    c=$(ls "$T/root-$ns/etc/netext/openvpn/" | wc -l)
    [ "$c" = "$want" ] && ok "$ns: netext-bootstrap wrote $c OpenVPN configuration(s)" ||
        not_ok "$ns: $c configs, expected $want"
    for f in "$T/root-$ns"/run/netext/nxt*.pid; do
        pid=$(cat "$f")
        grep -q openvpn /proc/$pid/cmdline 2>/dev/null || not_ok "$ns: no OpenVPN behind $f"
    done
    grep -q '^state=ok' "$T/root-$ns/run/netext/status" && ok "$ns: status ok" || not_ok "$ns: status"
done
grep -q 'netext-deploy.status' "$T/sys-tapp/var/lib/hyperv/.kvp_pool_1" &&
    ok "tenant appliance reported its status through KVP" || not_ok "no KVP status"
[ "$(stat -c %a "$T/root-papp/etc/netext/pki/appliance.key")" = 600 ] || not_ok "key mode in appliance"
nsx papp nft list table ip netext_failover >/dev/null 2>&1 && not_ok "failover rules before failover"

ping_ok() { nsx "$1" ping -c1 -W1 "$2" >/dev/null 2>&1; }
wait_ping() { # wait_ping NS ADDR SECONDS
    end=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt $end ]; do ping_ok "$1" "$2" && return 0; sleep 0.2; done
    return 1
}

# ---- partial site failover: same subnet across the tunnel ----------------------------
if wait_ping prodvm 10.1.0.5 40; then ok "tunnel up"; else
    not_ok "tunnel did not come up"
    logs
fi
nsx prodvm ping -c3 -i0.2 -W1 10.1.0.5 >/dev/null && ok "production VM -> replica" || not_ok "prodvm -> replica"
nsx replica ping -c3 -i0.2 -W1 10.1.0.4 >/dev/null && ok "replica -> production VM" || not_ok "replica -> prodvm"
# VLAN 102 ("db") is not extended by this tenant configuration: isolated
ping_ok prodvm 10.1.0.6 || ping_ok replica2 10.1.0.4 &&
    not_ok "VLAN 102 reachable although not extended" || ok "VLAN 102 (not extended) stays isolated"
mac() { nsx "$1" cat /sys/class/net/eth0/address; }
neigh() { nsx "$1" ip neigh show "$2" | sed -n 's/.* lladdr \([0-9a-f:]*\).*/\1/p'; }
[ "$(neigh prodvm 10.1.0.5)" = "$(mac replica)" ] &&
    ok "production VM sees the replica's real MAC $(mac replica)" ||
    not_ok "ARP on prodvm: $(neigh prodvm 10.1.0.5), replica is $(mac replica)"
[ "$(neigh replica 10.1.0.4)" = "$(mac prodvm)" ] &&
    ok "replica sees the production VM's real MAC $(mac prodvm)" ||
    not_ok "ARP on replica: $(neigh replica 10.1.0.4), prodvm is $(mac prodvm)"

# ---- recovery after a gateway restart --------------------------------------------------
stop_gateway
sleep 2
ping_ok prodvm 10.1.0.5 && not_ok "traffic passed with the gateway down"
t0=$(now)
echo "gateway restarted at $(date +%T.%N)"
start_gateway
if wait_ping replica 10.1.0.4 30; then
    t1=$(now)
    wait_ping prodvm 10.1.0.5 30
    t2=$(now)
    r1=$(elapsed "$t0" "$t1")
    r2=$(elapsed "$t0" "$t2")
    echo "recovery after gateway restart: provider->tenant ${r1} s, tenant->provider ${r2} s"
    awk -v a="$r1" -v b="$r2" 'BEGIN { exit !(a < 10 && b < 10) }' &&
        ok "recovered in under 10 s" || not_ok "recovery took ${r1}/${r2} s (limit 10 s)"
else
    not_ok "no recovery within 30 s after the gateway restart"
fi

# ---- failover modes: mutually exclusive --------------------------------------------------
fo() { nsx papp "$BOOT" --root "$T/root-papp" failover "$@"; }
fo partial >/dev/null && ok "partial site failover on" || not_ok "failover partial"
out=$(fo full --gateway web=10.1.0.1/24 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "mutually exclusive" &&
    ok "full refused during partial: $out" || not_ok "full during partial: rc=$rc $out"
fo none >/dev/null && ok "failover ended" || not_ok "failover none"
out=$(nsx tapp "$BOOT" --root "$T/root-tapp" failover full 2>&1) &&
    not_ok "failover accepted on the tenant appliance" || ok "tenant appliance refuses: $out"

# ---- full site failover ---------------------------------------------------------------------
ip netns exec ${P}replica setsid socat TCP-LISTEN:80,reuseaddr,fork SYSTEM:'echo replica-web' </dev/null >/dev/null 2>&1 &
PIDS="$PIDS $!"
ip netns exec ${P}replica setsid socat TCP-LISTEN:22,reuseaddr,fork SYSTEM:"echo replica-22; echo hit >> $T/port22-hits" \
    </dev/null >/dev/null 2>&1 &
PIDS="$PIDS $!"
ip netns exec ${P}inet setsid socat TCP-LISTEN:9000,reuseaddr,fork SYSTEM:'echo "from=$SOCAT_PEERADDR"' \
    </dev/null >/dev/null 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
fo full --gateway web=10.1.0.1/24 >/dev/null && ok "full site failover on" || not_ok "failover full"
out=$(fo partial 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "mutually exclusive" &&
    ok "partial refused during full" || not_ok "partial during full: rc=$rc $out"
nsx papp nft list table ip netext_failover | grep -q 'dport 22 return' || not_ok "no port 22 guard"
ans=$(nsx inet socat -T3 - TCP:198.51.100.10:8080,connect-timeout=3 </dev/null 2>/dev/null)
[ "$ans" = replica-web ] && ok "internet client reaches the replica through the public IP rule" ||
    not_ok "public IP rule: got '$ans'"
ans=$(nsx inet socat -T3 - TCP:198.51.100.10:22,connect-timeout=3 </dev/null 2>/dev/null)
[ -z "$ans" ] && [ ! -f "$T/port22-hits" ] && ok "port 22 of the public IP reaches nothing" ||
    not_ok "port 22 reached: '$ans'"
ans=$(nsx inet socat -T3 - TCP:198.51.100.10:2222,connect-timeout=3 </dev/null 2>/dev/null)
[ "$ans" = replica-22 ] && ok "public 2222 -> replica 22 (a rule may target 22; never expose 22)" ||
    not_ok "rule 2222: got '$ans'"
ans=$(nsx replica socat -T3 - TCP:203.0.113.100:9000,connect-timeout=3 </dev/null 2>/dev/null)
case $ans in
from=198.51.100.10) ok "replica reaches the internet as its public IP (SNAT): $ans" ;;
*) not_ok "replica internet access: got '$ans'" ;;
esac
ping_ok prodvm 10.1.0.5 && not_ok "tunnel still bridged during full site failover"
fo none >/dev/null && ok "full site failover ended" || not_ok "failover none after full"
nsx papp nft list table ip netext_failover >/dev/null 2>&1 && not_ok "failover rules left behind"
wait_ping prodvm 10.1.0.5 20 && ok "tunnels back after failback" || not_ok "no tunnel after failback"
nsx papp "$BOOT" --root "$T/root-papp" status

# ---- a plan change reaches the appliance: "db" no longer extended -------------------------
old102=$(cat "$T/root-papp/run/netext/nxt102.pid" 2>/dev/null)
sed '/name="db"/d' "$PLAN" > "$T/plan2.xml"
"$NETEXT_DEPLOY" payload --tenant acme --host esx1 -o "$T/provider2.xml" "$T/plan2.xml" &&
    base64 -w0 "$T/provider2.xml" > "$fw/raw" || not_ok "payload of the changed plan"
grep -q 'name="db"' "$T/provider2.xml" && not_ok "db still in the new payload"
cmp -s "$T/provider.xml" "$T/provider2.xml" && not_ok "payload unchanged"
nsx papp "$BOOT" --root "$T/root-papp" --sysroot "$T/sys-papp" apply >/dev/null ||
    not_ok "re-apply of the changed payload"
[ ! -f "$T/root-papp/etc/netext/openvpn/nxt102.conf" ] && [ -n "$old102" ] &&
    ! kill -0 "$old102" 2>/dev/null && ok "tunnel of the removed network stopped and removed" ||
    not_ok "nxt102 still there"
wait_ping prodvm 10.1.0.5 20 && ok "remaining tunnel works after the update" ||
    not_ok "no tunnel after the update"

[ -n "${NX_TUNNEL_E2E_LOGS:-}" ] && for f in "$T"/root-*/var/log/netext/*.log; do echo "== $f"; cat "$f"; done
finish
