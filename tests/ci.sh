#!/bin/sh
# tests/ci.sh: the README's test command, and what .ci/run calls.
# On a fresh Debian 12 machine, as root: installs the Debian packages the build
# and every test tier need, builds in _build/, runs `make check` (all tiers),
# the style check and `make distcheck`. Needs no input; exits non-zero on any
# failure.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

pkgs=$(cat tests/debian-build-deps tests/debian-test-deps | sed 's/#.*//' | tr -s ' \n' '\n' | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    for p in $pkgs; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
            missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "ci: installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $missing >/dev/null
    fi
    # VMware's simulator for the vSphere tier, built from Debian's packages by
    # the workplace tool next to this checkout (skipped when absent).
    if ! command -v vcsim >/dev/null 2>&1; then
        for tool in "${NX_INSTALL_VCSIM:-}" "$top/../shared/tools/install-vcsim"; do
            if [ -n "$tool" ] && [ -x "$tool" ]; then
                "$tool" /usr/local/bin && break
            fi
        done
    fi
else
    echo "ci: not root or no apt-get: not installing packages (tiers that need them will skip)"
fi

[ -x configure ] || autoreconf -fi
mkdir -p _build
cd _build
[ -f Makefile ] || ../configure --enable-werror
make -j2
# the appliance image (Debian packages, fetched from the archive): the boot
# and end-to-end tiers of make check boot it
make appliance
make -j2 check || { cat tests/*.log 2>/dev/null | tail -200; exit 1; }
make check-style
# the unit suites (and the fuzz replays) under valgrind
make check-valgrind
# distcheck rebuilds and reruns the unit suites from the tarball; the slow
# tiers already ran above.
make distcheck NX_SKIP_SLOW_TIERS=1 DISTCHECK_CONFIGURE_FLAGS=--enable-werror
cd "$top"
# the unit suites and fuzz replays built with ASan + UBSan
mkdir -p _build-asan
(cd _build-asan && { [ -f Makefile ] || ../configure -q --enable-sanitizers --enable-werror; } &&
    make -j2 && ASAN_OPTIONS=detect_leaks=1 make check-unit) ||
    { cat _build-asan/tests/*.log 2>/dev/null | tail -100; exit 1; }
# libFuzzer, bounded time per target
FUZZ_SECONDS=${NX_FUZZ_SECONDS:-20} make -C _build fuzz
echo "ci: all done"
