#!/bin/bash
# libvirtd-batch.sh: the real batches of libvirt-bench.sh with the test driver
# hosted by a private libvirtd (tests/libvirtd-lib.sh: own namespaces, socket
# under a temporary directory), so that the domains live in libvirtd and
# netext-deploy's peak RSS is its own, as against a real hypervisor.
#
#   libvirtd-batch.sh DIR N...   runs DIR/plan-N.xml (written by
#   libvirt-bench.sh for test://NODE) against test+unix://NODE?socket=...
#   and prints one line per N: "N wall_s cpu_s peak_rss_kib done libvirtd_hwm_kib exit"
# Exit 77 when the private libvirtd cannot run here (lvd_check_prereqs).
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${NETEXT_DEPLOY:=$top_builddir/src/netext-deploy}"
. "$top_srcdir/tests/libvirtd-lib.sh"
dir=$1
shift
trap 'lvd_stop' EXIT
trap 'exit 1' INT TERM
lvd_check_prereqs
lvd_start >"$dir/libvirtd-start.log" 2>&1 || exit 1
sock=${LVD_URI#*socket=}
pid=$(lvd_pid_of libvirtd)
for n in "$@"; do
    sed -e "s|uri='test://\([^']*\)'|uri='test+unix://\1?socket=$sock'|" "$dir/plan-$n.xml" \
        >"$dir/plan-daemon-$n.xml"
    /usr/bin/time -f "%e %M %U %S" -o "$dir/daemon$n.time" \
        "$NETEXT_DEPLOY" -q -j 4 batch "$dir/plan-daemon-$n.xml" >"$dir/daemon$n.out" 2>&1
    rc=$?
    set -- $(tail -1 "$dir/daemon$n.time")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    echo "$n $1 $(awk "BEGIN{printf \"%.2f\", $3 + $4}") $2 $(grep -c ' changed$' "$dir/daemon$n.out") ${hwm:-0} $rc"
done
