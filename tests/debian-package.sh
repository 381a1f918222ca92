#!/bin/sh
# debian-package.sh: build the Debian packages (debian/) from a copy of the
# source tree with dpkg-buildpackage -us -uc -b, run lintian on them, unpack
# them into an empty root that gets only the shared libraries the program
# links, and run the installed program there (chroot, when root): --version,
# validate and dry runs of the installed example plan with the installed
# files. Part of make check (about 55 s on 2 cores); `make check-package`
# runs it alone.
#
# The appliance image: NETEXT_APPLIANCE_ISO (default: the build tree's
# appliance/netext-appliance.iso from `make appliance`); without it the
# netext-appliance package is not built and its checks are skipped.
# NX_PACKAGE_CHECK=1 runs the unit suites inside the package build too
# (DEB_BUILD_OPTIONS without nocheck).
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
for t in dpkg-buildpackage dpkg-deb dh dh_autoreconf; do
    require_cmd $t "$t is missing (debhelper, dpkg-dev: tests/debian-test-deps)"
done
slow_tier "a package build takes a minute"
[ -x "$top_srcdir/debian/rules" ] || skip_all "no debian/ in $top_srcdir (a dist tarball)"
nx_tmpdir
trap 'rm -rf "$NX_TMP"' EXIT
VER=$(sed -n '1s/^netext-deploy (\([^)]*\)).*/\1/p' "$top_srcdir/debian/changelog")
SRC=$NX_TMP/netext-deploy-$VER
mkdir -p "$SRC"

# ---- a copy of the source tree: git's files, else the tree without build dirs
# (a tree inside another checkout, e.g. make distcheck's, is no checkout of its own)
if [ "$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$top_srcdir" && pwd -P)" ]; then
    (cd "$top_srcdir" && git ls-files -z -c -o --exclude-standard | xargs -0 sh -c \
        'for f; do [ -e "$f" ] && printf "%s\n" "$f"; done' sh) >"$NX_TMP/files"
    (cd "$top_srcdir" && tar -cf - -T "$NX_TMP/files") | tar -xf - -C "$SRC"
else
    (cd "$top_srcdir" && tar -cf - --exclude=./_build --exclude='./_build-*' --exclude=autom4te.cache .) |
        tar -xf - -C "$SRC"
fi
check "the copy has debian/rules" test -x "$SRC/debian/rules"

: "${NETEXT_APPLIANCE_ISO:=$top_builddir/appliance/netext-appliance.iso}"
# a copy (with its manifest): the build and the comparison see the same bytes
# even when `make appliance` runs again meanwhile
if [ -f "$NETEXT_APPLIANCE_ISO" ]; then
    have_iso=1
    mkdir -p "$NX_TMP/image"
    cp "$NETEXT_APPLIANCE_ISO" "$NX_TMP/image/netext-appliance.iso"
    manifest=$(dirname "$NETEXT_APPLIANCE_ISO")/manifest.txt
    [ -f "$manifest" ] && cp "$manifest" "$NX_TMP/image/"
    NETEXT_APPLIANCE_ISO=$NX_TMP/image/netext-appliance.iso
else
    have_iso=
fi
export NETEXT_APPLIANCE_ISO
if [ -n "${NX_PACKAGE_CHECK:-}" ]; then opts="parallel=2"; else opts="nocheck parallel=2"; fi
t0=$(date +%s)
(cd "$SRC" && DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage -us -uc -b) >"$NX_TMP/build.log" 2>&1
rc=$?
t1=$(date +%s)
if [ $rc = 0 ]; then ok "dpkg-buildpackage -us -uc -b ($((t1 - t0)) s)"; else
    not_ok "dpkg-buildpackage -us -uc -b: exit $rc"
    tail -40 "$NX_TMP/build.log" | sed 's/^/    | /'
    finish
    exit 1
fi
grep -E "^dpkg-genchanges|debian/rules: no appliance image" "$NX_TMP/build.log" | sed 's/^/    | /'
DEB=$(ls "$NX_TMP"/netext-deploy_"$VER"_*.deb 2>/dev/null | head -1)
ADEB=$(ls "$NX_TMP"/netext-appliance_"$VER"_all.deb 2>/dev/null | head -1)
check "netext-deploy .deb built" test -f "$DEB"
for d in "$NX_TMP"/*.deb; do
    echo "    $(basename "$d"): $(stat -c %s "$d") bytes, installed size $(dpkg-deb -f "$d" Installed-Size) KiB"
done
if [ -n "$have_iso" ]; then
    check "netext-appliance .deb built (image $NETEXT_APPLIANCE_ISO)" test -f "$ADEB"
else
    echo "    (no appliance image at $NETEXT_APPLIANCE_ISO: netext-appliance not built; run make appliance)"
    check "without the image, no netext-appliance .deb" test -z "$ADEB"
fi

# ---- what the packages hold
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$NX_TMP/contents"
for f in /usr/sbin/netext-deploy /usr/sbin/netext-bootstrap /usr/share/man/man8/netext-deploy.8.gz \
    /usr/share/man/man5/netext-plan.5.gz /usr/share/man/man8/netext-bootstrap.8.gz \
    /usr/share/netext-deploy/netext-plan.rng /usr/share/netext-deploy/templates/libvirt/domain.xml \
    /usr/share/netext-deploy/templates/appliance/openvpn-server.conf \
    /usr/share/doc/netext-deploy/examples/acme.xml /usr/share/doc/netext-deploy/README.gz \
    /usr/share/doc/netext-deploy/copyright /usr/share/bash-completion/completions/netext-deploy \
    /lib/systemd/system/netext-deploy-batch@.service /lib/systemd/system/netext-deploy-batch@.timer \
    /lib/systemd/system/netext-deploy-rescan@.service /var/lib/prometheus/node-exporter/; do
    check "netext-deploy holds $f" grep -qx -e "$f" "$NX_TMP/contents"
done
check "netext-deploy depends on libvirt0, libcurl4, libxml2" sh -c \
    "dpkg-deb -f '$DEB' Depends | grep -q libvirt0 && dpkg-deb -f '$DEB' Depends | grep -q libcurl4 && dpkg-deb -f '$DEB' Depends | grep -q libxml2"
echo "    Depends: $(dpkg-deb -f "$DEB" Depends)"

# ---- lintian: no error or warning (info and pedantic tags are printed)
if command -v lintian >/dev/null 2>&1; then
    lintian --display-info --pedantic "$NX_TMP"/*.changes >"$NX_TMP/lintian" 2>&1
    sed 's/^/    lintian| /' "$NX_TMP/lintian"
    check "lintian: no error or warning tag" sh -c "! grep -E '^[EW]: ' '$NX_TMP/lintian' | grep -q ."
else
    echo "    (lintian is missing: not run)"
fi

# ---- a clean root: the packages' files and the libraries the programs link
R=$NX_TMP/root
mkdir -p "$R"
for d in "$NX_TMP"/*.deb; do dpkg-deb -x "$d" "$R"; done
for bin in "$R/usr/sbin/netext-deploy" "$R/usr/sbin/netext-bootstrap"; do
    ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'
done | sort -u >"$NX_TMP/libs"
while read -r lib; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done <"$NX_TMP/libs"
echo "    clean root: $(wc -l <"$NX_TMP/libs") shared libraries copied, $(du -sk "$R" | cut -f1) KiB in all"
mkdir -p "$R/tmp" "$R/dev" "$R/etc" "$R/var/lib/netext-deploy"
chmod 1777 "$R/tmp"
chmod 0700 "$R/var/lib/netext-deploy" # as StateDirectoryMode= makes it
: >"$R/dev/null"

if [ "$(id -u)" = 0 ] && chroot "$R" /usr/sbin/netext-deploy --version >/dev/null 2>&1; then
    run() { chroot "$R" "$@"; }
    where="chroot"
else
    # not root: the installed program from the unpacked tree (its data
    # directory is compiled in as /usr/share/netext-deploy, which then is
    # the host's; plans and the node file are the unpacked ones)
    run() { "$R$1" "$(shift; printf '%s' "$@")"; }
    skip_all "chroot needs root: the unpacked packages were checked, the program not run"
fi
EX=/usr/share/doc/netext-deploy/examples
expect_exit 0 "$where: netext-deploy --version" run /usr/sbin/netext-deploy --version
for p in libvirt vsphere hyperv; do
    check "$where: --version lists the $p provider" grep -q "^providers:.* $p" "$NX_TMP/out"
done
sed 's/^/    | /' "$NX_TMP/out"
expect_exit 0 "$where: validate the installed example" run /usr/sbin/netext-deploy validate $EX/acme.xml
expect_exit 0 "$where: dry run of the installed example on the installed test node" \
    run /usr/sbin/netext-deploy --state-dir /var/lib/netext-deploy --connect "test://$EX/testnode.xml" -n subscribe $EX/acme.xml
check "$where: the dry run plans a create" grep -q "^would create *netext-acme-esx1" "$NX_TMP/out"
sed 's/^/    | /' "$NX_TMP/out" "$NX_TMP/err" | head -8
expect_exit 65 "$where: dry run on test:///default (the brief's command): refused placement" \
    run /usr/sbin/netext-deploy --state-dir /var/lib/netext-deploy --connect test:///default -n subscribe $EX/acme.xml
check "$where: refused because test:///default lacks the plan's network" grep -q "network 'sp-production' does not exist" "$NX_TMP/err"
if [ -n "$have_iso" ]; then
    check "netext-appliance: the manifest in its documentation" \
        test -s "$R/usr/share/doc/netext-appliance/manifest.txt"
    check "netext-appliance: the image at netext-deploy's default path" \
        cmp "$NETEXT_APPLIANCE_ISO" "$R/usr/share/netext-deploy/appliance/netext-appliance.iso"
    expect_exit 0 "$where: dry run uses the installed image by default" \
        run /usr/sbin/netext-deploy -v --state-dir /var/lib/netext-deploy --connect "test://$EX/testnode.xml" -n subscribe $EX/acme.xml
    check "$where: the installed image is loaded" grep -q "appliance image /usr/share/netext-deploy/appliance/netext-appliance.iso" "$NX_TMP/err"
    check "$where: no 'no appliance image' warning" sh -c "! grep -q 'no appliance image' '$NX_TMP/err'"
else
    expect_exit 0 "$where: dry run without the image package" \
        run /usr/sbin/netext-deploy --state-dir /var/lib/netext-deploy --connect "test://$EX/testnode.xml" -n subscribe $EX/acme.xml
    check "$where: warns that no image is installed (default path)" grep -q "no appliance image .*/usr/share/netext-deploy/appliance/netext-appliance.iso" "$NX_TMP/err"
fi
expect_exit 0 "$where: netext-bootstrap runs" run /usr/sbin/netext-bootstrap --help
for u in netext-deploy-batch@.service netext-deploy-batch@.timer netext-deploy-rescan@.service; do
    check "installed $u is contrib/systemd's" cmp "$top_srcdir/contrib/systemd/$u" "$R/lib/systemd/system/$u"
done
if command -v bash >/dev/null 2>&1; then
    check "installed completion defines _netext_deploy" bash --norc -c ". '$R/usr/share/bash-completion/completions/netext-deploy' && complete -p netext-deploy | grep -q _netext_deploy"
fi
finish
