# shellcheck shell=bash
# libvirtd-lib.sh: start and stop a private Open vSwitch + virtlogd + libvirtd
# stack for the real-libvirtd test tier (sourced by tests/libvirtd-tier.sh).
#
# Isolation: every daemon runs in one private mount + network namespace
# (unshare -m -n), whose /run, /var and /etc/libvirt are bind mounts of
# directories under $LVD_TMP. libvirtd's QEMU/network/storage drivers
# hard-code those system paths when run as root (config, state, virtlogd's
# socket, QEMU pid files, capability cache); this way a system-wide libvirtd
# or Open vSwitch is never seen or touched, and the tap devices of our guests
# live in our own network namespace. The client sockets are under $LVD_TMP,
# reachable from outside the namespaces (path-named unix sockets).
#
# Every daemon is started in the foreground in the background (&), so that $!
# is its PID (unshare and nsenter exec, they do not fork); lvd_stop kills
# exactly those PIDs and the QEMU processes libvirtd started (from libvirt's
# own pid files), never by name.

LVD_TMP=
LVD_NSPID=    # ovsdb-server: the first process of the namespaces
LVD_PIDS=     # "name:pid" of every daemon started, in start order
LVD_URI=
LVD_OVSDB=
LVD_WAITPID=
LVD_MNTNS=    # our mount namespace (readlink /proc/PID/ns/mnt)

lvd_log() { printf '%s\n' "libvirtd-tier: $*" >&2; }

LVD_STEP= # what the tier is doing, for failure messages

lvd_fail() {
    lvd_log "FAIL: ${LVD_STEP:+($LVD_STEP) }$*"
    exit 1
}

lvd_skip() {
    lvd_log "SKIP: $*"
    exit 77
}

# lvd_wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it
# succeeds; gives up early when the daemon last started ($LVD_WAITPID) died
lvd_wait_for() {
    local secs=$1 what=$2
    shift 2
    for _ in $(seq $((secs * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        if [ -n "$LVD_WAITPID" ] && ! lvd_alive "$LVD_WAITPID"; then
            lvd_log "$what exited"
            return 1
        fi
        sleep 0.1
    done
    lvd_log "timed out after ${secs}s waiting for $what"
    return 1
}

# a zombie (our exited child, not yet reaped) counts as dead
lvd_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

# whether unshare has made the first process's namespaces (it does before
# it execs, so its mount namespace is final once it differs from ours)
lvd_ns_ready() {
    local ns
    ns=$(readlink "/proc/$LVD_NSPID/ns/mnt") && [ "$ns" != "$(readlink "/proc/$$/ns/mnt")" ]
}

# run a command inside our namespaces (in the foreground: to start a daemon
# in the background, write the nsenter command out, so that $! is its PID)
lvd_ns() { nsenter -t "$LVD_NSPID" -m -n -- "$@"; }

# (time limits everywhere: a hung daemon fails the tier, never blocks CI)
lvd_vsctl() { ovs-vsctl --db="$LVD_OVSDB" --timeout=20 "$@"; }

lvd_virsh() { timeout 120 virsh -q -c "$LVD_URI" "$@"; }

# lvd_check_prereqs: exit 77 when the tier cannot run here
lvd_check_prereqs() {
    [ "$(id -u)" = 0 ] || lvd_skip "needs root (starts ovs-vswitchd, virtlogd and libvirtd)"
    local p
    for p in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl virtlogd libvirtd virsh \
        qemu-system-x86_64 unshare nsenter; do
        command -v "$p" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$p" >/dev/null 2>&1 ||
            lvd_skip "$p not installed (see tests/debian-test-deps)"
    done
    [ -e /usr/share/openvswitch/vswitch.ovsschema ] ||
        lvd_skip "/usr/share/openvswitch/vswitch.ovsschema missing (openvswitch-switch)"
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
        [ -n "$(find /usr/lib* -name libvirt_driver_qemu.so 2>/dev/null | head -n1)" ] ||
        lvd_skip "libvirt's QEMU driver is not installed (libvirt-daemon-driver-qemu)"
    [ -c /dev/net/tun ] || lvd_skip "/dev/net/tun missing: no tap devices for guests"
    unshare -m -n --propagation private true 2>/dev/null ||
        lvd_skip "cannot create mount and network namespaces (unshare -m -n)"
}

# lvd_start: create $LVD_TMP, start ovsdb-server, ovs-vswitchd, virtlogd and
# libvirtd; sets LVD_URI (the libvirtd client URI) and LVD_OVSDB.
lvd_start() {
    local base=${TMPDIR:-/tmp}
    case $base in /var* | /run* | /etc*) base=/tmp ;; esac # hidden in the namespace
    LVD_TMP=$(mktemp -d "$base/netext-lvd.XXXXXX") || lvd_fail "mktemp"
    local T=$LVD_TMP
    mkdir -p "$T/run/openvswitch" "$T/run/libvirt" "$T/var/lib/libvirt" "$T/var/cache/libvirt" \
        "$T/var/log/libvirt/qemu" "$T/var/tmp" "$T/var/lib/openvswitch" "$T/etc-libvirt" "$T/sock" \
        "$T/pid" "$T/log" "$T/ovs" "$T/pool" "$T/plan"
    ln -s /run "$T/var/run"
    ln -s /run/lock "$T/var/lock"
    mkdir -p "$T/run/lock"
    chmod 700 "$T/sock"

    cat >"$T/etc-libvirt/libvirtd.conf" <<CONF
# netext-deploy test tier: private libvirtd
unix_sock_dir = "$T/sock"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
# QMP traffic (the tier checks which commands were sent to QEMU), and
# everything else from warnings up
log_filters = "2:qemu.qemu_monitor 2:qemu.qemu_monitor_json"
log_outputs = "2:file:$T/log/libvirtd.log"
CONF
    cat >"$T/etc-libvirt/virtlogd.conf" <<CONF
log_outputs = "3:file:$T/log/virtlogd.log"
CONF
    cat >"$T/etc-libvirt/qemu.conf" <<CONF
# QEMU runs as root with no security driver: a throw-away test host.
user = "root"
group = "root"
# Debian builds default the swtpm user to libvirt-qemu (libvirt-daemon-system)
swtpm_user = "root"
swtpm_group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# no private /dev namespace per guest: already inside our own namespaces
namespaces = [ ]
stdio_handler = "logd"
${LVD_QEMU_CONF:-}
CONF
    : >"$T/etc-libvirt/libvirt.conf"

    # the namespaces' view: /run, /var and /etc/libvirt are ours
    local setup="mount --bind '$T/run' /run && mount --bind '$T/var' /var &&
        mount --bind '$T/etc-libvirt' /etc/libvirt"
    # Guests run under TCG on every machine (what CI machines without
    # nested virtualisation have) unless LVD_KVM=1: /dev/kvm becomes an
    # empty regular file on a read-only bind mount, which libvirt finds not
    # usable (access(W_OK) fails with EROFS; not so for a device node, as
    # with /dev/null, which would make libvirt find KVM usable but not
    # probed, and re-probe QEMU's capabilities on nearly every call).
    if [ -e /dev/kvm ] && [ "${LVD_KVM:-0}" != 1 ]; then
        : >"$T/no-kvm"
        setup="$setup && mount --bind '$T/no-kvm' /dev/kvm && mount -o remount,bind,ro /dev/kvm"
    fi
    # libvirt's QEMU driver resolves its compiled-in default user
    # 'libvirt-qemu' before it reads qemu.conf; that account is created by
    # libvirt-daemon-system, which we do not need. Without it, give the
    # namespaces a passwd/group file that has it (the host's stays untouched).
    if ! getent passwd libvirt-qemu >/dev/null 2>&1; then
        mkdir -p "$T/etc"
        cat /etc/passwd >"$T/etc/passwd"
        cat /etc/group >"$T/etc/group"
        echo 'libvirt-qemu:x:64055:64055:netext test tier:/var/lib/libvirt:/usr/sbin/nologin' \
            >>"$T/etc/passwd"
        getent group libvirt-qemu >/dev/null 2>&1 ||
            echo 'libvirt-qemu:x:64055:' >>"$T/etc/group"
        setup="$setup && mount --bind '$T/etc/passwd' /etc/passwd &&
            mount --bind '$T/etc/group' /etc/group"
    fi
    ovsdb-tool create "$T/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema ||
        lvd_fail "ovsdb-tool create"
    LVD_OVSDB="unix:$T/run/openvswitch/db.sock"

    # shellcheck disable=SC2016
    unshare -m -n --propagation private sh -c "$setup && exec ovsdb-server '$T/ovs/conf.db' \
        --remote=punix:/run/openvswitch/db.sock --pidfile='$T/pid/ovsdb-server.pid' \
        --unixctl='$T/ovs/ovsdb-server.ctl' --log-file='$T/log/ovsdb-server.log' \
        -vconsole:off --no-chdir" </dev/null >>"$T/log/ovsdb-server.out" 2>&1 &
    LVD_NSPID=$!
    LVD_WAITPID=$!
    # its mount namespace, once unshare has made it (our processes' mark)
    lvd_wait_for 10 "the namespaces" lvd_ns_ready || lvd_fail "unshare"
    LVD_MNTNS=$(readlink "/proc/$LVD_NSPID/ns/mnt")
    LVD_PIDS="ovsdb-server:$LVD_NSPID"
    lvd_wait_for 20 "ovsdb-server" test -S "$T/run/openvswitch/db.sock" ||
        lvd_fail "ovsdb-server did not start: $(tail -n 5 "$T/log/ovsdb-server"*)"
    lvd_vsctl --no-wait init || lvd_fail "ovs-vsctl init"

    OVS_RUNDIR=/run/openvswitch nsenter -t "$LVD_NSPID" -m -n -- ovs-vswitchd unix:/run/openvswitch/db.sock \
        --pidfile="$T/pid/ovs-vswitchd.pid" --unixctl="$T/ovs/ovs-vswitchd.ctl" \
        --log-file="$T/log/ovs-vswitchd.log" -vconsole:off --no-chdir \
        </dev/null >>"$T/log/ovs-vswitchd.out" 2>&1 &
    LVD_PIDS="$LVD_PIDS ovs-vswitchd:$!"
    LVD_WAITPID=$!
    lvd_wait_for 20 "ovs-vswitchd" test -S "$T/ovs/ovs-vswitchd.ctl" ||
        lvd_fail "ovs-vswitchd did not start: $(tail -n 5 "$T/log/ovs-vswitchd"*)"

    nsenter -t "$LVD_NSPID" -m -n -- virtlogd -f "$T/etc-libvirt/virtlogd.conf" -p "$T/pid/virtlogd.pid" \
        </dev/null >>"$T/log/virtlogd.out" 2>&1 &
    LVD_PIDS="$LVD_PIDS virtlogd:$!"
    LVD_WAITPID=$!
    lvd_wait_for 20 "virtlogd" test -S "$T/run/libvirt/virtlogd-sock" ||
        lvd_fail "virtlogd did not start: $(tail -n 5 "$T/log/virtlogd"*)"

    nsenter -t "$LVD_NSPID" -m -n -- libvirtd -f "$T/etc-libvirt/libvirtd.conf" -p "$T/pid/libvirtd.pid" \
        </dev/null >>"$T/log/libvirtd.out" 2>&1 &
    LVD_PIDS="$LVD_PIDS libvirtd:$!"
    LVD_WAITPID=$!
    LVD_URI="qemu:///system?socket=$T/sock/libvirt-sock"
    lvd_wait_for 60 "libvirtd" virsh -q -c "$LVD_URI" uri ||
        lvd_fail "libvirtd did not start: $(tail -n 5 "$T/log/libvirtd"*)"
    # $! must be the daemons themselves (nsenter and unshare exec, no fork)
    local e want
    for e in $LVD_PIDS; do
        want=$(cat "$T/pid/${e%%:*}.pid" 2>/dev/null)
        [ "$want" = "${e#*:}" ] || lvd_fail "${e%%:*}: pid file says '$want', started ${e#*:}"
    done
}

lvd_pid_of() {
    local e
    for e in $LVD_PIDS; do
        [ "${e%%:*}" = "$1" ] && echo "${e#*:}"
    done
}

# lvd_kill NAME PID: SIGTERM, wait up to 10 s, then SIGKILL
lvd_kill() {
    local name=$1 pid=$2
    lvd_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        lvd_alive "$pid" || return 0
        sleep 0.1
    done
    lvd_log "$name ($pid) ignored SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null
}

# lvd_ns_pids: every process in our mount namespace (all started by us:
# the daemons, QEMU processes, helpers), found by PID, not by name
lvd_ns_pids() {
    local d
    [ -n "$LVD_MNTNS" ] || return 0
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$LVD_MNTNS" ] && echo "${d#/proc/}"
    done
}

# the QEMU processes our libvirtd started, from its pid files
lvd_qemu_pids() {
    local f pid
    for f in "$LVD_TMP"/run/libvirt/qemu/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null)
        case $pid in '' | *[!0-9]*) continue ;; esac
        # only a live QEMU in our namespace (driver.pid is libvirtd's)
        case $(readlink "/proc/$pid/exe" 2>/dev/null) in */qemu-system-*) ;; *) continue ;; esac
        [ -n "$LVD_MNTNS" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$LVD_MNTNS" ] &&
            echo "$pid"
    done
}

lvd_stop() {
    [ -n "$LVD_TMP" ] || return 0
    local pid e
    pid=$(lvd_pid_of libvirtd)
    if [ -n "$pid" ] && lvd_alive "$pid"; then
        for e in $(timeout 20 virsh -q -c "$LVD_URI" list --name 2>/dev/null); do
            timeout 20 virsh -q -c "$LVD_URI" destroy "$e" >/dev/null 2>&1
        done
    fi
    for pid in $(lvd_qemu_pids); do
        lvd_kill qemu "$pid"
    done
    # reverse start order
    for e in $(echo "$LVD_PIDS" | tr ' ' '\n' | sed -n '1!G;h;$p'); do
        lvd_kill "${e%%:*}" "${e#*:}"
    done
    # anything else still in our namespace (nothing, normally)
    for pid in $(lvd_ns_pids); do
        lvd_log "left in our namespace: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        lvd_kill leftover "$pid"
    done
    LVD_PIDS=
    lvd_cgroup_cleanup
    if [ -n "${LVD_KEEP:-}" ]; then
        lvd_log "kept $LVD_TMP (LVD_KEEP set)"
    else
        rm -rf "$LVD_TMP"
    fi
    LVD_TMP=
}

# ---- cgroup resource partitions -------------------------------------------
# libvirt creates no partition other than /machine when it manages cgroups
# itself (no systemd-machined; always the case in our namespaces, whose /run
# hides systemd and D-Bus): an administrator creates /machine/NAME.partition
# in every cgroup hierarchy. lvd_cgroup_partition NAME does that; lvd_stop
# removes what it created. cgroups are host-wide: concurrent runs use their
# own NAME, and share the /machine groups that a run created, listed in
# $LVD_CGREG (under a lock): the last run out removes them.
LVD_CGREG=/tmp/netext-lvd-cgroups

lvd_cgroup_partition() {
    (
        flock 9 || exit 1
        while read -r _ mnt type opts _; do
            case $type in
            cgroup) case ",$opts," in *,name=*) continue ;; esac ;; # named: no controller
            cgroup2) ;;
            *) continue ;;
            esac
            for dir in "$mnt/machine" "$mnt/machine/$1.partition"; do
                [ -d "$dir" ] && continue
                mkdir "$dir" || exit 1
                if [ "${dir##*/}" = machine ]; then
                    echo "$dir" >>"$LVD_CGREG"
                else
                    echo "$dir" >>"$LVD_TMP/cgroups"
                fi
                # cgroup v1 cpuset: a new group has no CPUs/memory nodes
                if [ "$type" = cgroup ] && [ -f "$dir/cpuset.cpus" ]; then
                    cat "${dir%/*}/cpuset.cpus" >"$dir/cpuset.cpus" &&
                        cat "${dir%/*}/cpuset.mems" >"$dir/cpuset.mems" || exit 1
                fi
                # cgroup v2: hand the controllers it got on to its children
                # (libvirt's guest groups); best effort
                if [ "$type" = cgroup2 ]; then
                    for c in $(cat "$dir/cgroup.controllers" 2>/dev/null); do
                        echo "+$c" >"$dir/cgroup.subtree_control" 2>/dev/null
                    done
                fi
            done
        done </proc/self/mounts
    ) 9<"${LVD_CGREG%/*}" # lock: the directory (no lock file left behind)
}

lvd_cgroup_cleanup() {
    [ -f "$LVD_TMP/cgroups" ] || return 0
    (
        flock 9 || exit 1
        local dir keep=
        while read -r dir; do
            [ -d "$dir" ] || continue
            # below our partition only libvirt's groups of our guests (gone by now)
            find "$dir" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
            rmdir "$dir" 2>/dev/null || lvd_log "could not remove cgroup $dir"
        done <"$LVD_TMP/cgroups"
        [ -f "$LVD_CGREG" ] || exit 0
        while read -r dir; do # /machine: stays while another run's partition is in it
            [ -d "$dir" ] && ! rmdir "$dir" 2>/dev/null && keep="$keep$dir
"
        done <"$LVD_CGREG"
        if [ -n "$keep" ]; then printf '%s' "$keep" >"$LVD_CGREG"; else rm -f "$LVD_CGREG"; fi
    ) 9<"${LVD_CGREG%/*}" # lock: the directory (no lock file left behind)
    rm -f "$LVD_TMP/cgroups"
}
