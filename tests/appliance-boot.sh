#!/bin/sh
# appliance-boot.sh: boot the appliance image `make appliance` made (it is not
# built here) under QEMU with TCG, 256 MiB, 1 vCPU, and read its
# `netext-status:` lines on the first serial port (-serial file:LOG).
#
#   1. the SP appliance (BIOS, isolinux), payload from `netext-deploy payload`
#      in fw_cfg as libvirt passes it (opt/org.netext-deploy/payload, base64):
#      role=provider, state=waiting, tunnels=0/2 (no peer yet); boot time to
#      that first line and the guest's memory use are printed;
#   2. the tenant appliance (UEFI, OVMF, shim + signed GRUB, 512 MiB (see below); with Secure Boot
#      on when NX_APPLIANCE_SECUREBOOT=1) on the same wire (a QEMU stream
#      netdev over a unix socket: nothing binds an IP port): its tunnel comes
#      up, the tenant reports state=ok tunnels=1/1 and the SP appliance
#      tunnels=1/2 (its second network has no tenant appliance);
#   3. the tenant VM is killed: the SP appliance goes back to tunnels=0/2;
#   4. an appliance with no payload reports state=error reason=...
#
# Root only (the policy of the QEMU tiers). Exit 77 when QEMU, OVMF or the
# image is missing. About 2 to 3 minutes. QEMU is killed by its PID only.
set -u
. "$(dirname "$0")/testlib.sh"

[ -n "${NX_SKIP_SLOW_TIERS:-}" ] && skip_all "NX_SKIP_SLOW_TIERS is set"
[ "$(id -u)" = 0 ] || skip_all "needs root"
QEMU=$(command -v qemu-system-x86_64) || skip_all "qemu-system-x86_64 is not installed (see tests/debian-test-deps)"
APP=${NX_APPLIANCE_DIR:-$top_builddir/appliance}
ISO=$APP/netext-appliance.iso
[ -f "$ISO" ] || skip_all "no $ISO: run 'make appliance' first"
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
if [ -n "${NX_APPLIANCE_SECUREBOOT:-}" ]; then
    OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.ms.fd # Secure Boot on, Microsoft's keys
    OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.ms.fd
fi
[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || skip_all "no OVMF ($OVMF_CODE; package ovmf)"
command -v base64 >/dev/null || skip_all "no base64"
[ -x "$NETEXT_DEPLOY" ] || { echo "FAIL: build netext-deploy first"; exit 1; }
: "${APPLIANCE_BOOT_TIMEOUT:=150}" # seconds, for each wait

nx_tmpdir
T=$NX_TMP
QPIDS=""
cleanup() {
    for pid in $QPIDS; do kill "$pid" 2>/dev/null; done
    for pid in $QPIDS; do wait "$pid" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
attr() { sed -n "s/.*<$2[^>]*$3=\"\([^\"]*\)\".*/\1/p" "$1" | head -1; }

# ---- payloads: the tunnel plan, with the SP appliance as the tenant's gateway ----
# (the tenant appliance connects straight to it: one wire, no relay)
sed 's/<gateway address="198.51.100.1" port="6180"\/>/<gateway address="192.0.2.10" port="6180"\/>/' \
    "$top_srcdir/tests/data/tunnel/plan.xml" >"$T/plan.xml"
"$NETEXT_DEPLOY" payload --tenant acme --host esx1 -o "$T/provider.xml" "$T/plan.xml" >/dev/null ||
    { echo "FAIL: netext-deploy payload (provider)"; exit 1; }
"$NETEXT_DEPLOY" --tenant acme -o "$T/acme.bundle" export-bundle "$T/plan.xml" >/dev/null ||
    { echo "FAIL: netext-deploy export-bundle"; exit 1; }
cat >"$T/tenant-config.xml" <<EOF
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="acme.bundle">
  <source-host name="src" uri="test:///default"/>
  <appliance host="src" production-network="lan" extends="web">
    <static ip="192.0.2.20/24" gateway="192.0.2.1"/>
  </appliance>
</netext-tenant>
EOF
"$NETEXT_DEPLOY" --host src -o "$T/tenant.xml" payload "$T/tenant-config.xml" >/dev/null ||
    { echo "FAIL: netext-deploy payload (tenant)"; exit 1; }
# libvirt's fw_cfg: base64 of the document (providers/libvirt, templates/libvirt/domain.xml)
base64 -w0 "$T/provider.xml" >"$T/provider.b64"
base64 -w0 "$T/tenant.xml" >"$T/tenant.b64"
P_PROD=$(attr "$T/provider.xml" production mac)
P_WEB=$(attr "$T/provider.xml" 'network name="web"' mac)
P_DB=$(attr "$T/provider.xml" 'network name="db"' mac)
T_PROD=$(attr "$T/tenant.xml" production mac)
[ -n "$P_PROD" ] && [ -n "$P_WEB" ] && [ -n "$P_DB" ] && [ -n "$T_PROD" ] ||
    { echo "FAIL: unexpected payloads"; exit 1; }

# boot NAME LOG [QEMU ARGS...]: start a VM in the background, its PID in QPID
boot() {
    name=$1 log=$2
    shift 2
    : >"$log"
    "$QEMU" -name "nx-$name" -machine q35 -accel tcg -m "${MEM:-256}" -smp 1 -nographic -no-reboot \
        -monitor none -serial "file:$log" -nodefaults -vga none "$@" \
        >"$T/$name.qemu.out" 2>&1 </dev/null &
    QPID=$!
    QPIDS="$QPIDS $QPID"
}
# wait_line LOG REGEX: wait for a netext-status line matching REGEX; prints it
wait_line() {
    deadline=$(($(date +%s) + APPLIANCE_BOOT_TIMEOUT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        l=$(tr -d '\r' <"$1" | grep -a '^netext-status: ' | grep -E "$2" | tail -1)
        [ -n "$l" ] && { echo "$l"; return 0; }
        sleep 0.2
    done
    return 1
}
# wait_last LOG REGEX: wait until the LAST netext-status line matches REGEX
wait_last() {
    deadline=$(($(date +%s) + APPLIANCE_BOOT_TIMEOUT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        tr -d '\r' <"$1" | grep -a '^netext-status: ' | tail -1 | grep -qE "$2" && return 0
        sleep 0.2
    done
    return 1
}
field() { echo "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
stop_vm() { # stop_vm PID
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    QPIDS=$(echo "$QPIDS" | sed "s/ $1\b//")
}

SOCK=$T/wire.sock
# ---- 1. the SP appliance, BIOS ----------------------------------------------------------------
t0=$(now)
boot provider "$T/provider.log" -cdrom "$ISO" \
    -fw_cfg "name=opt/org.netext-deploy/payload,file=$T/provider.b64" \
    -netdev "stream,id=prod,server=on,addr.type=unix,addr.path=$SOCK" \
    -device "virtio-net-pci,netdev=prod,mac=$P_PROD" \
    -netdev hubport,id=web,hubid=1 -device "virtio-net-pci,netdev=web,mac=$P_WEB" \
    -netdev hubport,id=db,hubid=2 -device "virtio-net-pci,netdev=db,mac=$P_DB"
PROV=$QPID
if line=$(wait_line "$T/provider.log" .); then
    t1=$(now)
    echo "# boot to first status (BIOS, TCG): $(elapsed "$t0" "$t1") s (guest uptime $(field "$line" uptime) s, memory used $(($(field "$line" mem_used_kib) / 1024)) MiB)"
    echo "# $line"
    case $line in *" role=provider "*) ok "SP appliance: role=provider" ;; *) not_ok "SP appliance: $line" ;; esac
    case $line in *"state=waiting "*"tunnels=0/2"*) ok "no peer: state=waiting tunnels=0/2" ;;
    *) not_ok "no peer: wanted state=waiting tunnels=0/2: $line" ;; esac
else
    not_ok "SP appliance: no netext-status line in $APPLIANCE_BOOT_TIMEOUT s"
    tail -n 30 "$T/provider.log" | sed 's/^/    | /'
    finish
    exit
fi
grep -aq 'firmware=bios' "$T/provider.log" && ok "booted by BIOS (isolinux)" || not_ok "no firmware=bios line"

# ---- 2. the tenant appliance, UEFI, on the same wire ---------------------------------------
cp "$OVMF_VARS" "$T/vars.fd"
sbargs=
[ -n "${NX_APPLIANCE_SECUREBOOT:-}" ] && sbargs="-global driver=cfi.pflash01,property=secure,value=on"
t2=$(now)
# shellcheck disable=SC2086
# UEFI: GRUB 2.06 (Debian 12's signed build) reports "out of memory" loading
# kernel and initrd under OVMF with 256 MiB; the tenant VM gets 512 MiB
MEM=${APPLIANCE_UEFI_MEM:-512}
boot tenant "$T/tenant.log" -cdrom "$ISO" \
    -machine q35,smm=on $sbargs \
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
    -drive "if=pflash,format=raw,unit=1,file=$T/vars.fd" \
    -fw_cfg "name=opt/org.netext-deploy/payload,file=$T/tenant.b64" \
    -netdev "stream,id=prod,server=off,addr.type=unix,addr.path=$SOCK" \
    -device "virtio-net-pci,netdev=prod,mac=$T_PROD"
TEN=$QPID
MEM=256
if line=$(wait_line "$T/tenant.log" .); then
    echo "# tenant: boot to first status (UEFI, TCG): $(elapsed "$t2" "$(now)") s: $line"
    grep -aq 'firmware=uefi' "$T/tenant.log" && ok "booted by UEFI (shim, GRUB)" || not_ok "no firmware=uefi line"
    if [ -n "${NX_APPLIANCE_SECUREBOOT:-}" ]; then
        grep -aq 'secureboot=enabled' "$T/tenant.log" && ok "Secure Boot enabled" || not_ok "Secure Boot not enabled"
    fi
else
    not_ok "tenant appliance: no netext-status line"
    tail -n 30 "$T/tenant.log" | sed 's/^/    | /'
fi
if line=$(wait_line "$T/tenant.log" 'state=ok .*tunnels=1/1'); then
    t3=$(now)
    echo "# boot to tunnel ready (tenant, UEFI): $(elapsed "$t2" "$t3") s"
    case $line in *" role=tenant "*) ok "tenant appliance: role=tenant, state=ok tunnels=1/1" ;;
    *) not_ok "tenant: $line" ;; esac
else
    not_ok "tenant appliance: tunnel not up: $(tr -d '\r' <"$T/tenant.log" | grep -a netext-status | tail -1)"
fi
if line=$(wait_line "$T/provider.log" 'state=waiting .*tunnels=1/2'); then
    ok "SP appliance: the web tunnel is connected (tunnels=1/2)"
else
    not_ok "SP appliance: no tunnels=1/2 line"
fi

# ---- 3. the peer goes away -------------------------------------------------------------------
stop_vm "$TEN"
t4=$(now)
if wait_last "$T/provider.log" 'tunnels=0/2'; then
    ok "peer gone: SP appliance back to tunnels=0/2 in $(elapsed "$t4" "$(now)") s"
else
    not_ok "peer gone: SP appliance still reports $(tr -d '\r' <"$T/provider.log" | grep -a netext-status | tail -1)"
fi
n=$(tr -d '\r' <"$T/provider.log" | grep -ac '^netext-status: ')
[ "$n" -ge 3 ] && ok "one line per change ($n lines)" || not_ok "expected >= 3 status lines, got $n"
stop_vm "$PROV"

# ---- 4. no payload ---------------------------------------------------------------------------------
boot nopayload "$T/nopayload.log" -cdrom "$ISO" -netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0
if line=$(wait_line "$T/nopayload.log" .); then
    case $line in *"state=error "*" reason="*) ok "no payload: state=error with a reason" ;;
    *) not_ok "no payload: $line" ;; esac
    echo "# $line"
else
    not_ok "no payload: no status line"
fi
stop_vm "$QPID"
finish
