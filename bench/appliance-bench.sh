#!/bin/sh
# appliance-bench.sh: the appliance image's figures under TCG (no KVM):
# image size, build time (appliance/build.sh again, from the cached .debs),
# boot to the first netext-status line, boot to tunnel ready (tenant
# appliance, state=ok), the guest's memory use. Fails (exit 1) when the ISO
# is over 30 MiB or the first status line takes over 20 s.
#
#   bench/appliance-bench.sh [BUILDDIR]     (root; `make appliance` first)
#
# The boots are tests/appliance-boot.sh's (it prints the times); exit 77 when
# it cannot run here.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-.}" && pwd)
APP=$B/appliance
ISO=$APP/netext-appliance.iso
[ -f "$ISO" ] || { echo "SKIP: no $ISO: run 'make appliance' first"; exit 77; }
MAX_BYTES=$((30 * 1024 * 1024))
MAX_STATUS=20
fail=0
size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "appliance: ISO $(mib "$(size "$ISO")") ($(size "$ISO") bytes), kernel $(mib "$(size "$APP/vmlinuz")"), initrd $(mib "$(size "$APP/initrd.img")")"
[ "$(size "$ISO")" -le $MAX_BYTES ] || { echo "FAIL: the ISO is over 30 MiB"; fail=1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/nx-appliance-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
s=$(date +%s.%N)
if APPLIANCE_CACHE=$APP/cache sh "$top_srcdir/appliance/build.sh" "$T/build" "$B/src/bootstrap/netext-bootstrap" >"$T/build.log" 2>&1; then
    e=$(date +%s.%N)
    echo "appliance: build time $(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.1f", b - a }') s (cached .debs)"
    cmp -s "$ISO" "$T/build/netext-appliance.iso" && echo "appliance: the rebuilt ISO is byte for byte the same" ||
        echo "appliance: note: the rebuilt ISO differs from $ISO (another netext-bootstrap or .debs?)"
else
    echo "FAIL: build: $(tail -3 "$T/build.log")"
    fail=1
fi
rm -rf "$T/build"

top_builddir=$B NX_APPLIANCE_DIR=$APP top_srcdir=$top_srcdir \
    sh "$top_srcdir/tests/appliance-boot.sh" >"$T/boot.log" 2>&1
rc=$?
[ $rc = 77 ] && { cat "$T/boot.log"; exit 77; }
grep '^#' "$T/boot.log" | sed 's/^# /appliance: /'
[ $rc = 0 ] || { echo "FAIL: tests/appliance-boot.sh:"; grep '^not ok' "$T/boot.log"; fail=1; }
first=$(sed -n 's/^# boot to first status (BIOS, TCG): \([0-9.]*\) s.*/\1/p' "$T/boot.log")
if [ -z "$first" ]; then
    echo "FAIL: no boot-to-status time"
    fail=1
elif awk -v t="$first" -v m=$MAX_STATUS 'BEGIN { exit !(t > m) }'; then
    echo "FAIL: boot to first status $first s > $MAX_STATUS s"
    fail=1
fi
exit $fail
