#!/bin/sh
# check-reproducible.sh: build the appliance image again from the same .debs
# and the same netext-bootstrap, and compare the bytes (sha256) with the image
# `make appliance` made in OUTDIR (built twice here if there is none).
#
#   appliance/check-reproducible.sh OUTDIR NETEXT-BOOTSTRAP
#
# Exit 0 identical, 1 different (the files are kept for diffoscope), 77 when
# a build is impossible here.
set -u
[ $# -eq 2 ] || { echo "usage: $0 OUTDIR NETEXT-BOOTSTRAP" >&2; exit 64; }
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$1
BOOT=$2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
APPLIANCE_CACHE=$OUT/cache
export APPLIANCE_CACHE
build() {
    sh "$HERE/build.sh" "$1" "$BOOT" >"$1.log" 2>&1 || {
        rc=$?
        echo "build into $1 failed ($rc):"
        tail -5 "$1.log"
        [ $rc = 69 ] && exit 77
        exit 1
    }
}
REF=$OUT
if [ ! -f "$OUT/netext-appliance.iso" ]; then
    build "$OUT"
fi
AGAIN=$OUT/repro
rm -rf "$AGAIN"
sleep 1 # another second: a date that leaked in would differ
build "$AGAIN"
fail=0
for f in netext-appliance.iso vmlinuz initrd.img manifest.txt; do
    a=$(sha256sum <"$REF/$f" | cut -d' ' -f1)
    b=$(sha256sum <"$AGAIN/$f" | cut -d' ' -f1)
    if [ "$a" = "$b" ]; then
        echo "reproducible: $f $a"
    else
        echo "NOT reproducible: $f $a != $b (kept in $AGAIN)"
        fail=1
    fi
done
[ $fail = 0 ] && rm -rf "$AGAIN" "$AGAIN.log"
exit $fail
