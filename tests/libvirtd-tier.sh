#!/bin/bash
# libvirtd-tier.sh: netext-deploy's libvirt provider against a real libvirtd
# (QEMU driver, guests started under TCG or KVM with no disk) whose guests are
# plugged into Open vSwitch (userspace datapath) bridges.
#
# Needs root and the Debian packages in tests/debian-test-deps; exits 77
# (automake SKIP) saying why when it cannot run. Every daemon it starts runs
# in private namespaces with its own files under one temp dir (see
# tests/libvirtd-lib.sh); all are stopped by PID on exit.
#
# Steps: deploy tenant acme (6 vNICs) and check the domain, its marker, its
# payload, that it runs and that OVS tags its ports; a second run changes
# nothing; a plan change hot-plugs exactly the added and removed vNICs; a
# duplicate, an orphan and a missing vNIC (what an interrupted run leaves)
# converge; unsubscribe removes the appliance; a run killed half-way
# converges on the next run.
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$srcdir/tests/libvirtd-lib.sh"
DATA=$srcdir/tests/data/libvirtd
NETEXT_DEPLOY=${NETEXT_DEPLOY:-${top_builddir:-.}/src/netext-deploy}
MARKER_NS=urn:netext-deploy:appliance:1
FWCFG=opt/org.netext-deploy/payload

lvd_check_prereqs
for p in xmllint base64; do
    command -v "$p" >/dev/null 2>&1 || lvd_skip "$p not installed (see tests/debian-test-deps)"
done
[ -x "$NETEXT_DEPLOY" ] || lvd_fail "no netext-deploy at $NETEXT_DEPLOY"

started=$(date +%s)
trap 'lvd_stop' EXIT
trap 'exit 1' INT TERM HUP
step() {
    # shellcheck disable=SC2034 # read by lvd_fail
    LVD_STEP=$*
    lvd_log "--- $*"
}

step "starting ovsdb-server, ovs-vswitchd, virtlogd, libvirtd"
lvd_start
T=$LVD_TMP

step "OVS bridges, libvirt networks and storage pool"
for br in nxt-prod nxt-tenants; do
    lvd_vsctl add-br "$br" -- set bridge "$br" datapath_type=netdev || lvd_fail "add-br $br"
done
for n in production tenants; do
    lvd_virsh net-define "$DATA/net-$n.xml" >/dev/null || lvd_fail "net-define $n"
done
for n in sp-production tenant-vlans; do
    lvd_virsh net-start "$n" >/dev/null || lvd_fail "net-start $n"
done
lvd_virsh pool-define-as appliances dir --target "$T/pool" >/dev/null &&
    lvd_virsh pool-start appliances >/dev/null || lvd_fail "storage pool"

PLAN=$T/plan/plan.xml
# the resource pool is a cgroup partition, host-wide: one per run
POOL=Cloud_Connect_Replication_${T##*.}
sed -e "s|@URI@|$LVD_URI|" -e "s|@POOL@|$POOL|" "$DATA/plan.xml.in" >"$PLAN" || lvd_fail "plan"

# ---- helpers ----------------------------------------------------------------

# nx LABEL ARGS...: run netext-deploy --json; stdout in $T/LABEL.json, stderr
# in $T/LABEL.err; sets RC
nx() {
    local label=$1
    shift
    timeout 300 "$NETEXT_DEPLOY" --json "$@" >"$T/$label.json" 2>"$T/$label.err"
    RC=$?
}
nx_show() { lvd_log "netext-deploy ($1): exit $RC"; cat "$T/$1.json" "$T/$1.err" >&2; }

xp() { xmllint --xpath "$1" - 2>/dev/null; } # xp XPATH <xml

# domains carrying our marker for tenant $1 (and host $2 when given)
owned() {
    local d m
    for d in $(lvd_virsh list --all --name); do
        m=$(lvd_virsh metadata "$d" "$MARKER_NS" 2>/dev/null) || continue
        [ "$(echo "$m" | xp 'string(/*/@tenant)')" = "$1" ] || continue
        [ -z "${2:-}" ] || [ "$(echo "$m" | xp 'string(/*/@host)')" = "$2" ] || continue
        echo "$d"
    done
}

# ifaces DOMAIN [--inactive]: "MAC NETWORK VLAN" per <interface> (VLAN 0: none)
ifaces() {
    local xml n i e vlan
    xml=$(lvd_virsh dumpxml ${2:-} "$1") || return 1
    n=$(echo "$xml" | xp 'count(/domain/devices/interface)')
    for i in $(seq "$n"); do
        e="/domain/devices/interface[$i]"
        vlan=$(echo "$xml" | xp "string($e/vlan/tag/@id)")
        echo "$(echo "$xml" | xp "string($e/mac/@address)") $(echo "$xml" |
            xp "string($e/source/@network)") ${vlan:-0}"
    done | sort
}

# payload DOMAIN: the decoded fw_cfg payload of the persistent definition
payload() {
    lvd_virsh dumpxml --inactive "$1" |
        xp "string(/domain/sysinfo[@type='fwcfg']/entry[@name='$FWCFG'])" | base64 -d
}

# "MAC VLAN" pairs the payload announces to the guest (no vlan attribute: 0)
payload_macs() {
    local xml n i vlan
    xml=$(payload "$1") || return 1
    n=$(echo "$xml" | xp "count(//*[@mac])")
    for i in $(seq "$n"); do
        vlan=$(echo "$xml" | xp "string((//*[@mac])[$i]/@vlan)")
        echo "$(echo "$xml" | xp "string((//*[@mac])[$i]/@mac)") ${vlan:-0}"
    done | sort
}

qemu_pid() { cat "$T/run/libvirt/qemu/$1.pid" 2>/dev/null; }

# check_appliance VLAN...: exactly one appliance for acme on kvm1, fully as
# the plan wants: one untagged vNIC on sp-production, one vNIC per VLAN on
# tenant-vlans; marker, payload, running, OVS ports tagged. Sets DOM.
check_appliance() {
    local want_vlans="$*" doms have mac net vlan port br tag pid
    doms=$(owned acme)
    [ "$(echo "$doms" | grep -c .)" = 1 ] || lvd_fail "want one appliance of acme, have: $doms"
    DOM=$doms
    [ "$(owned acme kvm1)" = "$DOM" ] || lvd_fail "$DOM: marker host is not kvm1"
    lvd_virsh metadata "$DOM" "$MARKER_NS" | xp 'string(/*/@role)' | grep -qx provider ||
        lvd_fail "$DOM: marker role is not provider"

    # persistent definition
    have=$(ifaces "$DOM" --inactive) || lvd_fail "dumpxml $DOM"
    [ "$(echo "$have" | awk '$2 == "sp-production" && $3 == 0' | wc -l)" = 1 ] ||
        lvd_fail "$DOM: want one untagged vNIC on sp-production, have:
$have"
    [ "$(echo "$have" | awk '$2 == "tenant-vlans" {print $3}' | sort -n | xargs)" = \
        "$(echo "$want_vlans" | tr ' ' '\n' | sort -n | xargs)" ] ||
        lvd_fail "$DOM: want VLANs $want_vlans on tenant-vlans, have:
$have"
    [ "$(echo "$have" | wc -l)" = $(($# + 1)) ] || lvd_fail "$DOM: want $(($# + 1)) vNICs:
$have"
    [ "$(echo "$have" | awk '{print $1}' | sort -u | wc -l)" = $(($# + 1)) ] ||
        lvd_fail "$DOM: duplicate MACs"
    echo "$have" | awk '{print $1}' | grep -qv '^02:..:..:..:..:..$' &&
        lvd_fail "$DOM: MACs not locally administered unicast (02:...)"

    # the payload tells the guest which MAC carries which VLAN: must agree
    payload "$DOM" | xmllint --noout - || lvd_fail "$DOM: fw_cfg payload is not XML"
    payload "$DOM" | grep -q 'tenant="acme"' || lvd_fail "$DOM: payload does not name acme"
    [ "$(payload_macs "$DOM")" = "$(echo "$have" | awk '{print $1, $3}' | sort)" ] ||
        lvd_fail "$DOM: payload MAC/VLAN pairs differ from the interfaces:
$(payload_macs "$DOM")"

    # running, with the same vNICs live, fw_cfg handed to QEMU
    [ "$(lvd_virsh domstate "$DOM")" = running ] || lvd_fail "$DOM is not running"
    [ "$(ifaces "$DOM")" = "$have" ] || lvd_fail "$DOM: live vNICs differ from config:
$(ifaces "$DOM")"
    pid=$(qemu_pid "$DOM")
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "name=$FWCFG" ||
        lvd_fail "$DOM: QEMU ($pid) has no fw_cfg $FWCFG"

    # Open vSwitch: each vNIC is a port on the right bridge with its tag
    while read -r mac net vlan; do
        port=$(lvd_vsctl --bare --columns=name find interface "external_ids:attached-mac=\"$mac\"")
        [ -n "$port" ] || lvd_fail "no OVS interface for $mac"
        [ "$(echo "$port" | wc -l)" = 1 ] || lvd_fail "several OVS interfaces for $mac: $port"
        br=$(lvd_vsctl port-to-br "$port")
        tag=$(lvd_vsctl get port "$port" tag)
        case $net in
        sp-production) [ "$br" = nxt-prod ] && [ "$tag" = "[]" ] ;;
        tenant-vlans) [ "$br" = nxt-tenants ] && [ "$tag" = "$vlan" ] ;;
        esac || lvd_fail "$mac (VLAN $vlan): OVS port $port on bridge $br, tag $tag"
    done <<<"$have"
}

dom_id() { lvd_virsh domid "$1"; }

# ---- 1. deploy --------------------------------------------------------------
VLANS1="101 102 201 202 203"
step "subscribe: deploy acme's appliance"
nx deploy subscribe "$PLAN"
if [ "$RC" = 1 ] && grep -q "partition /machine/$POOL" "$T/deploy.err"; then
    # What an administrator must do on hosts without systemd-machined (see
    # netext-deploy(8)): the domain is defined, starting it failed with a
    # message that says so. Create the partition; the next run powers on.
    lvd_log "no resource partition /machine/$POOL on this host, as expected: creating it"
    grep -q '"action":"create","status":"done"' "$T/deploy.json" || lvd_fail "no create"
    lvd_cgroup_partition "$POOL" || lvd_fail "cannot create cgroup partition $POOL"
    nx deploy2 subscribe "$PLAN"
    [ "$RC" = 0 ] || {
        nx_show deploy2
        lvd_fail "power-on after creating the partition"
    }
    grep -q '"changes":1,' "$T/deploy2.json" && grep -q '"action":"power-on"' "$T/deploy2.json" ||
        lvd_fail "re-run after failed power-on: want exactly one change, power-on: $(cat "$T/deploy2.json")"
elif [ "$RC" != 0 ]; then
    nx_show deploy
    lvd_fail "subscribe"
fi
check_appliance $VLANS1
# the MACs netext-deploy reported are the ones deployed
[ "$(grep -o '"action":"create"[^}]*' "$T/deploy.json" | grep -o '02\(:[0-9a-f][0-9a-f]\)\{5\}' |
    sort | xargs)" = "$(ifaces "$DOM" --inactive | awk '{print $1}' | xargs)" ] ||
    lvd_fail "reported MACs differ from the deployed ones"
lvd_log "deployed $DOM: $(ifaces "$DOM" | wc -l) vNICs, OVS tags right"

# ---- 2. idempotency across runs ---------------------------------------------
step "second subscribe: up to date, nothing changed"
before_xml=$(lvd_virsh dumpxml --inactive "$DOM")
before_id=$(dom_id "$DOM")
nx again subscribe "$PLAN"
[ "$RC" = 0 ] || {
    nx_show again
    lvd_fail "second subscribe"
}
grep -q '"result":"up-to-date"' "$T/again.json" && grep -q '"changes":0,' "$T/again.json" ||
    lvd_fail "second run not up to date: $(cat "$T/again.json")"
[ "$(lvd_virsh dumpxml --inactive "$DOM")" = "$before_xml" ] || lvd_fail "definition changed"
[ "$(dom_id "$DOM")" = "$before_id" ] || lvd_fail "domain was restarted"

# ---- 3. plan change: add VLAN 301, remove VLAN 202 (hot-plug) ------------------
step "plan change: +VLAN 301 (no portgroup), -VLAN 202: attach/detach live and config"
PLAN2=$T/plan/plan2.xml
sed 's|<network name="dmz" vlan="202"/>|<network name="ha" vlan="301"/>|' "$PLAN" >"$PLAN2"
grep -q 'vlan="301"' "$PLAN2" || lvd_fail "plan2"
before=$(ifaces "$DOM" --inactive)
# libvirt's alias (QEMU device id) of VLAN 202's vNIC, to find its device_del
alias202=$(lvd_virsh dumpxml "$DOM" | xp "string(/domain/devices/interface[vlan/tag/@id='202']/alias/@name)")
[ -n "$alias202" ] || lvd_fail "no alias for VLAN 202's vNIC"
nx change subscribe "$PLAN2"
[ "$RC" = 0 ] || {
    nx_show change
    lvd_fail "subscribe after plan change"
}
grep -o '"action":"[a-z-]*"' "$T/change.json" | sort | uniq -c >"$T/change.actions"
grep -q '1 "action":"add-vnic"' "$T/change.actions" &&
    grep -q '1 "action":"remove-vnic"' "$T/change.actions" &&
    ! grep -qE '"action":"(create|remove)"' "$T/change.json" ||
    lvd_fail "want one add-vnic and one remove-vnic, nothing else: $(cat "$T/change.json")"
[ "$(dom_id "$DOM")" = "$before_id" ] || lvd_fail "domain was restarted, not hot-plugged"
after=$(ifaces "$DOM" --inactive)
# every vNIC but VLAN 202's kept its MAC; exactly one new one, on VLAN 301
[ "$(comm -23 <(echo "$before") <(echo "$after") | awk '{print $3}')" = 202 ] ||
    lvd_fail "want only VLAN 202's vNIC gone; before:
$before
after:
$after"
[ "$(comm -13 <(echo "$before") <(echo "$after") | awk '{print $3}')" = 301 ] ||
    lvd_fail "want only a VLAN 301 vNIC added; after:
$after"
# Live: the new vNIC was hot-plugged (its OVS port carries VLAN 301) and
# QEMU was asked to unplug VLAN 202's (device_del). PCI unplug completes
# only when the guest acknowledges it (ACPI eject); these guests run no OS,
# so until their next reset the vNIC stays attached live. The reset below
# stands for the acknowledgement (a guest OS would give it at once).
added_mac=$(comm -13 <(echo "$before") <(echo "$after") | awk '{print $1}')
ifaces "$DOM" | grep -qx "$added_mac tenant-vlans 301" || lvd_fail "VLAN 301 vNIC not attached live"
port=$(lvd_vsctl --bare --columns=name find interface "external_ids:attached-mac=\"$added_mac\"")
[ -n "$port" ] && [ "$(lvd_vsctl get port "$port" tag)" = 301 ] ||
    lvd_fail "hot-plugged vNIC $added_mac: OVS port '$port' not tagged 301"
grep -q "\"execute\":\"device_del\",\"arguments\":{\"id\":\"$alias202\"}" "$T/log/libvirtd.log" ||
    lvd_fail "no device_del of $alias202 (VLAN 202) sent to QEMU"
lvd_virsh reset "$DOM" >/dev/null || lvd_fail "reset $DOM"
for i in $(seq 50); do
    ifaces "$DOM" | grep -q ' 202$' || break
    sleep 0.2
done
[ "$(dom_id "$DOM")" = "$before_id" ] || lvd_fail "domain was restarted"
check_appliance 101 102 201 203 301
removed_mac=$(comm -23 <(echo "$before") <(echo "$after") | awk '{print $1}')
[ -z "$(lvd_vsctl --bare --columns=name find interface "external_ids:attached-mac=\"$removed_mac\"")" ] ||
    lvd_fail "OVS still has the port of the removed vNIC $removed_mac"

nx change2 subscribe "$PLAN2"
grep -q '"result":"up-to-date"' "$T/change2.json" || lvd_fail "not up to date after plan change"

# ---- 4. what an interrupted run leaves behind converges -----------------------
step "interrupted-run leftovers: duplicate appliance, orphan, missing vNIC"
# A run killed between defining a domain and recording it would leave a
# second domain with the same marker; one killed before an orphan's removal
# leaves a domain of acme on a host the plan no longer has; one killed between
# two vNIC changes leaves a vNIC missing.
xml=$(lvd_virsh dumpxml --inactive "$DOM")
strip='/<uuid>/d; /<mac address/d; /<target dev=/d; /<alias /d'
echo "$xml" | sed -e "s|<name>$DOM</name>|<name>$DOM-dup</name>|" -e "$strip" \
    >"$T/dup.xml"
echo "$xml" | sed -e "s|<name>$DOM</name>|<name>netext-acme-kvm-old</name>|" -e "$strip" \
    -e "s|host=\"kvm1\"|host=\"kvm-old\"|" >"$T/orphan.xml"
lvd_virsh define "$T/dup.xml" >/dev/null || lvd_fail "define duplicate"
lvd_virsh define "$T/orphan.xml" >/dev/null || lvd_fail "define orphan"
[ "$(owned acme kvm1 | wc -l)" = 2 ] || lvd_fail "duplicate not seen as acme's"
[ "$(owned acme kvm-old)" = netext-acme-kvm-old ] || lvd_fail "orphan not seen as acme's"
# VLAN 201's vNIC gone live and from the config (the reset completes the
# unplug); VLAN 101's gone from the config only, still live (as while a
# detach waits for the guest): it must come back in the config without a
# second live NIC with its MAC.
miss=$(ifaces "$DOM" --inactive | awk '$3 == 201 {print $1}')
# (live, the interface's type is the network's actual one, 'bridge': match by MAC)
echo "<interface type='network'><mac address='$miss'/><source network='tenant-vlans'/></interface>" >"$T/miss.xml"
lvd_virsh detach-device "$DOM" "$T/miss.xml" --config --live >/dev/null ||
    lvd_fail "detach $miss"
lvd_virsh reset "$DOM" >/dev/null || lvd_fail "reset $DOM"
for i in $(seq 50); do
    ifaces "$DOM" | grep -q ' 201$' || break
    sleep 0.2
done
ifaces "$DOM" | grep -q ' 201$' && lvd_fail "VLAN 201's vNIC not unplugged"
miss=$(ifaces "$DOM" --inactive | awk '$3 == 101 {print $1}')
lvd_virsh detach-interface "$DOM" network --mac "$miss" --config >/dev/null ||
    lvd_fail "detach $miss"
nx converge subscribe "$PLAN2"
[ "$RC" = 0 ] || {
    nx_show converge
    lvd_fail "subscribe after interruption"
}
acts=$(grep -o '"action":"[a-z-]*","status":"[a-z]*","appliance":"[^"]*"' "$T/converge.json" |
    sed 's/"[a-z]*"://g; s/"//g' | sort | xargs)
[ "$acts" = "$(printf '%s\n' "add-vnic,done,$DOM" "add-vnic,done,$DOM" "remove,done,$DOM-dup" \
    remove,done,netext-acme-kvm-old | sort | xargs)" ] ||
    lvd_fail "converging run: want the duplicate and the orphan removed, two vNICs added; did: $acts"
[ -z "$(owned acme kvm-old)" ] || lvd_fail "orphan still there"
lvd_virsh list --all --name | grep -qx netext-acme-kvm-old && lvd_fail "orphan domain not removed"
check_appliance 101 102 201 203 301
# the copy with the appliance's own name stays, complete and running
[ "$(lvd_virsh list --all --name | grep -c "^$DOM")" = 1 ] || lvd_fail "duplicate left"
nx converge2 subscribe "$PLAN2"
grep -q '"result":"up-to-date"' "$T/converge2.json" || lvd_fail "not up to date after converging"

# ---- 5. unsubscribe ---------------------------------------------------------
# unsubscribe LABEL: remove acme's appliance, check nothing of it is left
unsubscribe() {
    local pid
    pid=$(qemu_pid "$DOM")
    nx "$1" unsubscribe --tenant acme "$PLAN2"
    [ "$RC" = 0 ] || {
        nx_show "$1"
        lvd_fail "unsubscribe"
    }
    grep -q '"action":"remove","status":"done"' "$T/$1.json" || lvd_fail "nothing removed"
    [ -z "$(owned acme)" ] || lvd_fail "appliance left after unsubscribe: $(owned acme)"
    [ -z "$(lvd_virsh list --all --name)" ] || lvd_fail "domains left: $(lvd_virsh list --all)"
    [ -z "$pid" ] || ! lvd_alive "$pid" || lvd_fail "QEMU $pid still running"
    [ -z "$(lvd_vsctl list-ports nxt-prod; lvd_vsctl list-ports nxt-tenants)" ] ||
        lvd_fail "OVS ports left after unsubscribe: $(lvd_vsctl show)"
}
step "unsubscribe --tenant acme"
unsubscribe unsub

# ---- 6. a run killed half-way ---------------------------------------------------
# SIGKILL netext-deploy as soon as the domain is defined (before or while it
# is powered on: where exactly varies); the next run must converge.
step "subscribe killed half-way (SIGKILL once the domain exists), then re-run"
"$NETEXT_DEPLOY" --json subscribe "$PLAN2" >"$T/killed.json" 2>"$T/killed.err" &
nxpid=$!
for i in $(seq 600); do
    lvd_virsh list --all --name 2>/dev/null | grep -q . && break
    lvd_alive "$nxpid" || break
    sleep 0.05
done
kill -KILL "$nxpid" 2>/dev/null
wait "$nxpid" 2>/dev/null
lvd_log "killed at: $(lvd_virsh list --all | xargs)"
# a start the killed client asked for goes on in libvirtd (QEMU runs paused
# until libvirt has set it up): let it end before looking
for i in $(seq 300); do
    lvd_virsh list --all | grep -q paused || break
    sleep 0.1
done
nx resumed subscribe "$PLAN2"
[ "$RC" = 0 ] || {
    nx_show resumed
    lvd_fail "subscribe after a killed run"
}
check_appliance 101 102 201 203 301
[ "$(lvd_virsh list --all --name | grep -c .)" = 1 ] || lvd_fail "duplicate after a killed run"
nx resumed2 subscribe "$PLAN2"
grep -q '"result":"up-to-date"' "$T/resumed2.json" || lvd_fail "not up to date after a killed run"
unsubscribe unsub2

lvd_log "PASS in $(($(date +%s) - started)) s"
