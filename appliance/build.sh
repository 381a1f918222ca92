#!/bin/sh
# build.sh: the netext-deploy appliance image (`make appliance` runs it).
#
#   appliance/build.sh OUTDIR NETEXT-BOOTSTRAP
#
# Makes, from Debian packages only (fetched with `apt-get download` into
# OUTDIR/cache, reused when present; APPLIANCE_REFRESH=1 fetches again) plus
# the netext-bootstrap binary of the build tree (APPLIANCE_CACHE: another
# cache directory):
#
#   OUTDIR/vmlinuz                Debian's signed kernel (linux-image-amd64's dependency)
#   OUTDIR/initrd.img             xz cpio: busybox, dash, openvpn, iproute2, nftables,
#                                 vmware-rpctool, hv_kvp_daemon, netext-bootstrap,
#                                 their shared libraries, the modules of modules.list
#   OUTDIR/netext-appliance.iso   hybrid ISO: BIOS (isolinux) and UEFI (Debian's
#                                 signed shim + GRUB: Secure Boot works)
#   OUTDIR/manifest.txt           package, version, architecture, sha256 of every
#                                 .deb used, and of netext-bootstrap
#
# Nothing is installed on the build machine: packages are unpacked with
# dpkg-deb -x. Reproducible: the same .debs and the same netext-bootstrap give
# the same bytes. Every date is SOURCE_DATE_EPOCH (default: a constant), the
# cpio archive is sorted with owner root and fixed mtimes (cpio
# --reproducible), xorriso takes its dates and volume id from
# SOURCE_DATE_EPOCH, the EFI FAT image has a fixed serial and dates.
# (appliance/check-reproducible.sh builds twice and compares.)
#
# The PID 1 is appliance/init (busybox sh); see it for what runs inside.
# Needs: apt-get, dpkg-deb, cpio, xz, xorriso, mtools, readelf, modinfo,
# depmod, strip (tests/debian-test-deps).
set -eu
export LC_ALL=C TZ=UTC
umask 022

[ $# -eq 2 ] || { echo "usage: $0 OUTDIR NETEXT-BOOTSTRAP" >&2; exit 64; }
OUT=$1
BOOT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
: "${SOURCE_DATE_EPOCH:=1767225600}" # 2026-01-01 00:00:00 UTC
export SOURCE_DATE_EPOCH
CMDLINE="console=tty0 console=ttyS0,115200 quiet panic=10"
ISO_VOLID=NETEXT_APPLIANCE
FAT_SERIAL=4e455854 # "NEXT"

for t in apt-get dpkg-deb cpio xz xorriso mformat mcopy mmd readelf modinfo depmod strip; do
    command -v $t >/dev/null 2>&1 || { echo "$0: $t is missing (see tests/debian-test-deps)" >&2; exit 69; }
done
[ -x "$BOOT" ] || { echo "$0: $BOOT: no netext-bootstrap (run make first)" >&2; exit 66; }

CACHE=${APPLIANCE_CACHE:-$OUT/cache}
mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)
CACHE=$(cd "$CACHE" && pwd)
W=$OUT/work
rm -rf "$W"
mkdir -p "$W"

# ---- packages ---------------------------------------------------------------------
pkgs=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/packages.list")
have() { ls "$CACHE/$1"_*.deb >/dev/null 2>&1; }
if [ -n "${APPLIANCE_REFRESH:-}" ]; then
    rm -f "$CACHE"/*.deb
fi
kernel=$(cd "$CACHE" && ls linux-image-*-amd64_*.deb 2>/dev/null | sed 's/_.*//' | sort | tail -1)
if [ -z "$kernel" ]; then
    kernel=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
    [ -n "$kernel" ] || { echo "$0: cannot resolve linux-image-amd64's kernel package" >&2; exit 69; }
fi
need=
for p in $kernel $pkgs; do have "$p" || need="$need $p"; done
if [ -n "$need" ]; then
    echo "appliance: apt-get download$need"
    (cd "$CACHE" && apt-get download -q $need) || { echo "$0: apt-get download failed" >&2; exit 69; }
fi
debs=
for p in $kernel $pkgs; do
    d=$(ls "$CACHE/$p"_*.deb | sort | tail -1)
    debs="$debs $d"
done

# unpack every package into one tree, then merge /bin /sbin /lib into /usr
P=$W/pkgs
mkdir -p "$P"
for d in $debs; do
    case ${d##*/} in
    linux-image-*) dpkg-deb --fsys-tarfile "$d" | tar -x -C "$P" --wildcards './boot/vmlinuz-*' './lib/modules/*' ;;
    *) dpkg-deb -x "$d" "$P" ;;
    esac
done
kver=$(ls "$P/lib/modules" | head -1)
[ -f "$P/boot/vmlinuz-$kver" ] || { echo "$0: no kernel in $kernel" >&2; exit 70; }
libdirs="$P/lib/x86_64-linux-gnu $P/usr/lib/x86_64-linux-gnu $P/lib64 $P/usr/lib64"

# ---- the initramfs tree -------------------------------------------------------------
R=$W/root
mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib/x86_64-linux-gnu" "$R/usr/lib64" \
    "$R/etc/netext-appliance" "$R/usr/share/udhcpc" "$R/proc" "$R/sys" "$R/dev" "$R/run" \
    "$R/tmp" "$R/var/lib" "$R/var/log" "$R/root"
for d in bin sbin lib lib64; do
    case $d in lib) ln -s usr/lib "$R/lib" ;; *) ln -s usr/$d "$R/$d" ;; esac
done
chmod 0700 "$R/root"

copy_prog() { # copy_prog FILE-IN-PKGS DEST-IN-ROOT
    [ -f "$P/$1" ] || { echo "$0: $1 is not in the packages" >&2; exit 70; }
    cp -L "$P/$1" "$R/$2"
    chmod 0755 "$R/$2"
}
copy_prog bin/busybox usr/bin/busybox
copy_prog bin/dash usr/bin/dash
ln -s dash "$R/usr/bin/sh"
copy_prog usr/sbin/openvpn usr/sbin/openvpn
copy_prog bin/ip usr/bin/ip
copy_prog usr/sbin/nft usr/sbin/nft
copy_prog usr/bin/vmware-rpctool usr/bin/vmware-rpctool
copy_prog usr/sbin/hv_kvp_daemon usr/sbin/hv_kvp_daemon
strip --strip-unneeded -o "$R/usr/sbin/netext-bootstrap" "$BOOT"
chmod 0755 "$R/usr/sbin/netext-bootstrap"
# busybox applets (not where a real program is)
for a in $("$R/usr/bin/busybox" --list-full); do
    name=${a##*/}
    [ -e "$R/usr/bin/$name" ] || [ -e "$R/usr/sbin/$name" ] || [ "$name" = busybox ] && continue
    case $a in *sbin/*) ln -s ../bin/busybox "$R/usr/sbin/$name" ;; *) ln -s busybox "$R/usr/bin/$name" ;; esac
done

# shared libraries: the closure of DT_NEEDED, found in the packages only
find_lib() {
    for d in $libdirs; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}
queue=$(find "$R/usr" -type f -perm -u+x)
seen=" "
while [ -n "$queue" ]; do
    next=
    for f in $queue; do
        for so in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            case $seen in *" $so "*) continue ;; esac
            seen="$seen$so "
            src=$(find_lib "$so") || { echo "$0: $so (needed by ${f#$R}) is in no package of packages.list" >&2; exit 70; }
            cp -L "$src" "$R/usr/lib/x86_64-linux-gnu/$so"
            next="$next $R/usr/lib/x86_64-linux-gnu/$so"
        done
    done
    queue=$next
done
ldso=$(find_lib ld-linux-x86-64.so.2) || { echo "$0: no ld-linux-x86-64.so.2" >&2; exit 70; }
[ -e "$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || cp -L "$ldso" "$R/usr/lib/x86_64-linux-gnu/"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/usr/lib64/ld-linux-x86-64.so.2"

# kernel modules of modules.list and their dependencies
M=$P/lib/modules/$kver
# index: module name (with _) and path relative to $M
(cd "$M" && find kernel -name '*.ko' | sort) | awk '{ n = $0; sub(/.*\//, "", n); sub(/\.ko$/, "", n); gsub(/-/, "_", n); print n, $0 }' >"$W/modindex"
modfile() { awk -v n="$(echo "$1" | tr - _)" '$1 == n { print $2; exit }' "$W/modindex"; }
mods=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/modules.list")
todo=$mods
done_mods=" "
while [ -n "$todo" ]; do
    next=
    for m in $todo; do
        case $done_mods in *" $m "*) continue ;; esac
        done_mods="$done_mods$m "
        if grep -qE "/$(echo "$m" | sed 's/[-_]/[-_]/g')\.ko$" "$M/modules.builtin"; then
            continue # built into the kernel
        fi
        k=$(modfile "$m")
        [ -n "$k" ] || { echo "$0: module $m is not in $kernel" >&2; exit 70; }
        mkdir -p "$R/usr/lib/modules/$kver/${k%/*}"
        cp "$M/$k" "$R/usr/lib/modules/$kver/$k"
        next="$next $(modinfo -F depends "$M/$k" | tr , ' ')"
    done
    todo=$next
done
cp "$M/modules.builtin" "$M/modules.order" "$R/usr/lib/modules/$kver/"
[ -f "$M/modules.builtin.modinfo" ] && cp "$M/modules.builtin.modinfo" "$R/usr/lib/modules/$kver/"
depmod -b "$R" "$kver"
printf '%s\n' $mods >"$R/etc/netext-appliance/modules"

# configuration
cp "$HERE/init" "$R/init"
chmod 0755 "$R/init"
cp "$HERE/udhcpc.script" "$R/usr/share/udhcpc/default.script"
chmod 0755 "$R/usr/share/udhcpc/default.script"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$R/etc/nsswitch.conf"
cp "$P/etc/protocols" "$P/etc/services" "$R/etc/"
printf '127.0.0.1 localhost netext-appliance\n::1 localhost\n' >"$R/etc/hosts"
echo netext-appliance >"$R/etc/hostname"
mkdir -p "$R/etc/netext"
chmod 0700 "$R/etc/netext"
ln -s netext/resolv.conf "$R/etc/resolv.conf"
bver=$("$BOOT" --version | head -1)
echo "$bver, $kernel" >"$R/etc/netext-appliance/version"

# ---- initrd: sorted newc cpio, fixed owners and dates, xz (crc32: the kernel's check)
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$R" && find . -mindepth 1 | sort | cpio --quiet --reproducible -o -H newc -R 0:0) |
    xz -T1 --check=crc32 --x86 --lzma2=preset=9e,dict=32MiB >"$W/initrd.img"

# ---- the ISO --------------------------------------------------------------------------
I=$W/iso
mkdir -p "$I/live" "$I/isolinux" "$I/boot/grub" "$I/.disk"
cp "$P/boot/vmlinuz-$kver" "$I/live/vmlinuz"
cp "$W/initrd.img" "$I/live/initrd.img"
cp "$P/usr/lib/ISOLINUX/isolinux.bin" "$P/usr/lib/syslinux/modules/bios/ldlinux.c32" "$I/isolinux/"
sed "s|@CMDLINE@|$CMDLINE|" "$HERE/isolinux.cfg" >"$I/isolinux/isolinux.cfg"
sed "s|@CMDLINE@|$CMDLINE|" "$HERE/grub.cfg" >"$I/boot/grub/grub.cfg"
echo "netext-deploy appliance ($bver)" >"$I/.disk/info"
# EFI system partition image: shim as the removable-media loader, Debian's
# signed GRUB (the CD build, which finds /.disk/info) next to it
shim=$P/usr/lib/shim/shimx64.efi.signed
grub=$P/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed
kib=$(( ($(stat -c %s "$shim") + $(stat -c %s "$grub")) / 1024 + 256 ))
efi=$I/boot/grub/efi.img
dd if=/dev/zero of="$efi" bs=1024 count=$kib status=none
mdate=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M.%S)
cp "$shim" "$W/BOOTX64.EFI"
cp "$grub" "$W/GRUBX64.EFI"
touch -d "@$SOURCE_DATE_EPOCH" "$W/BOOTX64.EFI" "$W/GRUBX64.EFI"
export MTOOLS_SKIP_CHECK=1
mformat -i "$efi" -N "$FAT_SERIAL" -v NETEXT_EFI ::
mmd -i "$efi" ::/EFI ::/EFI/BOOT
mcopy -m -i "$efi" "$W/BOOTX64.EFI" "$W/GRUBX64.EFI" ::/EFI/BOOT/
find "$I" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$W/netext-appliance.iso"
xorriso -report_about WARNING -as mkisofs -o "$W/netext-appliance.iso" \
    -V "$ISO_VOLID" -r -J -joliet-long \
    -isohybrid-mbr "$P/usr/lib/ISOLINUX/isohdpfx.bin" \
    -c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
    -eltorito-alt-boot -e boot/grub/efi.img -no-emul-boot -isohybrid-gpt-basdat \
    "$I"

# ---- manifest and results ------------------------------------------------------------------
{
    echo "# netext-deploy appliance: what netext-appliance.iso is made of"
    echo "# SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH kernel=$kver"
    echo "# package version architecture sha256"
    for d in $debs; do
        printf '%s %s %s %s\n' "$(dpkg-deb -f "$d" Package)" "$(dpkg-deb -f "$d" Version)" \
            "$(dpkg-deb -f "$d" Architecture)" "$(sha256sum <"$d" | cut -d' ' -f1)"
    done | sort
    printf 'netext-bootstrap %s - %s\n' "$(echo "$bver" | cut -d' ' -f2)" "$(sha256sum <"$BOOT" | cut -d' ' -f1)"
} >"$W/manifest.txt"
cp "$I/live/vmlinuz" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
mv "$W/initrd.img" "$OUT/initrd.img"
mv "$W/manifest.txt" "$OUT/manifest.txt"
mv "$W/netext-appliance.iso" "$OUT/netext-appliance.iso"
rm -rf "$W"
ls -l "$OUT/netext-appliance.iso" "$OUT/vmlinuz" "$OUT/initrd.img" | awk '{ printf "appliance: %s %d bytes\n", $NF, $5 }'
