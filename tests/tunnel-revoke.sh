#!/bin/sh
# tunnel-revoke.sh: one certificate per tenant-side appliance, with real
# OpenVPN in network namespaces (root only). Two tenant-side appliances
# (netext-t-acme-lan, netext-t-acme-lan2) get their payloads from the same bundle and
# each its own certificate; the SP appliance (netext-bootstrap, OpenVPN server
# with crl-verify) accepts both; after `netext-deploy revoke` and the SP
# payload that follows, the revoked one is refused and the other connects.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"

slow_tier
require_netns
for t in openvpn setsid base64; do
    require_cmd $t "$t is not installed (see tests/debian-test-deps)"
done
PY=/usr/bin/python3
[ -x $PY ] || skip_all "no /usr/bin/python3 (reads the payloads)"
BOOT=$NETEXT_BOOTSTRAP
PLAN=$top_srcdir/tests/data/tunnel/plan.xml
ND=$NETEXT_DEPLOY
[ -x "$ND" ] && [ -x "$BOOT" ] || { echo "FAIL: build netext-deploy and netext-bootstrap first"; exit 1; }

P=nxr$$-
T=$(mktemp -d /tmp/nx-tunnel-revoke.XXXXXX)
chmod 0700 "$T"
NSES="sw papp t1 t2"
CLIENT=""
cleanup() {
    set +e
    [ -n "$CLIENT" ] && kill -- -"$CLIENT" 2>/dev/null
    bootstrap_stop ${P}papp "$T/root-papp"
    sleep 0.3
    for ns in $NSES; do ip netns del $P$ns 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
nsx() { ns=$1; shift; ip netns exec $P$ns "$@"; }
attr() { sed -n "s/.*<$2[^>]*$3=\"\([^\"]*\)\".*/\1/p" "$1" | head -1; }

# ---- payloads ---------------------------------------------------------------------------
export NETEXT_DEPLOY_STATE_DIR="$T/state"
"$ND" --tenant acme -o "$T/acme.bundle" export-bundle "$PLAN" || { echo "FAIL: export-bundle"; exit 1; }
for i in 1 2; do
    net=lan; [ $i = 2 ] && net=lan2
    cat > "$T/tenant$i.xml" <<EOF
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="acme.bundle">
  <source-host name="src" uri="test:///default"/>
  <appliance host="src" production-network="$net" extends="web">
    <static ip="10.1.0.$((i + 1))/24" gateway="10.1.0.1"/>
  </appliance>
</netext-tenant>
EOF
    "$ND" --host src -o "$T/t$i.xml" payload "$T/tenant$i.xml" || { echo "FAIL: tenant payload $i"; exit 1; }
    "$ND" --host src -o "$T/t$i-again.xml" payload "$T/tenant$i.xml"
    cmp -s "$T/t$i.xml" "$T/t$i-again.xml" && ok "appliance $i: the same payload on a second run" ||
        not_ok "appliance $i: payload changed between runs"
    # the appliance's credentials as its OpenVPN client reads them
    $PY - "$T/t$i.xml" "$T/c$i" <<'EOF' || exit 1
import os, sys, xml.etree.ElementTree as ET
ns = '{urn:netext-deploy:payload:1}'
pki = ET.parse(sys.argv[1]).getroot().find(ns + 'pki')
os.umask(0o077)
for tag, ext in (('ca-certificate', 'ca'), ('certificate', 'crt'), ('private-key', 'key')):
    open(sys.argv[2] + '.' + ext, 'w').write(pki.find(ns + tag).text)
EOF
done
cmp -s "$T/c1.crt" "$T/c2.crt" && not_ok "both appliances got one certificate" ||
    ok "each tenant-side appliance has its own certificate"
grep -q "netext-t-acme-lan2" "$T/t2.xml" || not_ok "unexpected appliance name in $T/t2.xml"

"$ND" payload --tenant acme --host esx1 -o "$T/provider.xml" "$PLAN" || { echo "FAIL: SP payload"; exit 1; }
P_PROD_MAC=$(attr "$T/provider.xml" production mac)
P_WEB_MAC=$(attr "$T/provider.xml" 'network name="web"' mac)
P_DB_MAC=$(attr "$T/provider.xml" 'network name="db"' mac)
PORT=$(attr "$T/provider.xml" 'network name="web"' tunnel-port)
fw=$T/sys-papp/sys/firmware/qemu_fw_cfg/by_name/opt/org.netext-deploy/payload
mkdir -p "$fw" && base64 -w0 "$T/provider.xml" > "$fw/raw"

# ---- topology: the SP appliance and two clients on the SP production network ------------
for ns in $NSES; do ip netns add $P$ns || { echo "FAIL: netns"; exit 1; }; nsx $ns ip link set lo up; done
for br in spprod v101 v102; do nsx sw ip link add $br type bridge; nsx sw ip link set $br up; done
n=0
plug() { # plug NS IFNAME BRIDGE [MAC]
    n=$((n + 1))
    ip link add s$n netns ${P}sw type veth peer name "$2" netns $P$1 || exit 1
    [ -n "${4:-}" ] && nsx "$1" ip link set dev "$2" address "$4"
    nsx sw ip link set s$n master "$3" up
    nsx "$1" ip link set "$2" up
}
plug papp eth0 spprod "$P_PROD_MAC"
plug papp eth1 v101 "$P_WEB_MAC"
plug papp eth2 v102 "$P_DB_MAC"
plug t1 eth0 spprod
plug t2 eth0 spprod
nsx t1 ip addr add 192.0.2.21/24 dev eth0
nsx t2 ip addr add 192.0.2.22/24 dev eth0
nsx papp "$BOOT" --root "$T/root-papp" --sysroot "$T/sys-papp" --channel fwcfg apply ||
    { echo "FAIL: bootstrap on the SP appliance"; exit 1; }
grep -q "^crl-verify " "$T"/root-papp/etc/netext/openvpn/*.conf && ok "SP tunnel configured with crl-verify" ||
    not_ok "no crl-verify in the SP appliance's OpenVPN configuration"

# connect I: 0 if appliance I's OpenVPN client completes its TLS handshake with
# the SP appliance within 15 s (one client at a time: the tunnel is point to point)
connect() {
    log=$T/client$1.log
    : > "$log"
    ip netns exec ${P}t$1 setsid openvpn --dev tap9 --dev-type tap --proto tcp-client \
        --remote 192.0.2.10 "$PORT" --nobind --connect-retry 1 1 --tls-client \
        --ca "$T/c$1.ca" --cert "$T/c$1.crt" --key "$T/c$1.key" --remote-cert-tls server \
        --verify-x509-name provider:esx1 name --disable-dco --verb 3 </dev/null >"$log" 2>&1 &
    CLIENT=$!
    i=0 rc=1
    while [ $i -lt 150 ]; do
        grep -q "Initialization Sequence Completed" "$log" && { rc=0; break; }
        sleep 0.1
        i=$((i + 1))
    done
    kill -- -"$CLIENT" 2>/dev/null
    wait "$CLIENT" 2>/dev/null
    CLIENT=""
    sleep 1.5 # the server notices and waits for the next client
    return $rc
}
connect 1 && ok "appliance 1 connects" || not_ok "appliance 1 refused before any revocation"
connect 2 && ok "appliance 2 connects" || not_ok "appliance 2 refused before any revocation"

# ---- revoke appliance 1: a new SP payload, the SP appliance applies it -------------------
"$ND" --tenant acme --appliance netext-t-acme-lan revoke "$PLAN" || not_ok "revoke"
"$ND" payload --tenant acme --host esx1 -o "$T/provider2.xml" "$PLAN" || not_ok "SP payload after revoke"
cmp -s "$T/provider.xml" "$T/provider2.xml" && not_ok "SP payload unchanged by revoke"
base64 -w0 "$T/provider2.xml" > "$fw/raw"
nsx papp "$BOOT" --root "$T/root-papp" --sysroot "$T/sys-papp" --channel fwcfg apply >/dev/null ||
    not_ok "bootstrap: re-apply"
if connect 1; then not_ok "revoked appliance 1 still connects"; else
    ok "revoked appliance 1 is refused"
fi
grep -h "certificate revoked" "$T"/root-papp/var/log/netext/*.log | tail -1
connect 2 && ok "appliance 2 still connects" || not_ok "appliance 2 refused after revoking 1"

# ---- reinstated ------------------------------------------------------------------------------
"$ND" --tenant acme --appliance netext-t-acme-lan --undo revoke "$PLAN" || not_ok "revoke --undo"
"$ND" payload --tenant acme --host esx1 -o "$T/provider3.xml" "$PLAN" && base64 -w0 "$T/provider3.xml" > "$fw/raw"
nsx papp "$BOOT" --root "$T/root-papp" --sysroot "$T/sys-papp" --channel fwcfg apply >/dev/null ||
    not_ok "bootstrap: re-apply"
connect 1 && ok "reinstated appliance 1 connects again" || not_ok "appliance 1 refused after --undo"

[ "$NX_FAIL" = 0 ] || tail -n 5 "$T"/client*.log
finish
