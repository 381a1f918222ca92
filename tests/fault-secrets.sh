#!/bin/sh
# fault-secrets.sh: a canary password across the providers that take one
# (vSphere against vcsim, Hyper-V against the WS-Management simulator): it is
# planted in a 0600 credentials file, then subscribe, batch, status, --dry-run,
# --json, -vv and unsubscribe run, and the canary must appear in none of
# stdout, stderr (the -vv debug log included), the state directory, or the
# process's command line and environment, sampled from /proc while each run
# is in progress. A credentials file readable by others is refused (exit 77)
# by each provider before any connection. (libvirt: tests/cli-libvirt.sh.
# Untrusted certificates and pinned thumbprints: tests/vsphere-vcsim.sh and
# tests/hyperv-sim.sh.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"
. "$top_srcdir/tests/fault-lib.sh"

[ -x "$NETEXT_DEPLOY" ] || skip_all "netext-deploy not built ($NETEXT_DEPLOY)"
has_provider vsphere || has_provider hyperv ||
    skip_all "built without the vsphere and hyperv providers (libvirt: tests/cli-libvirt.sh)"
nx_tmpdir
trap 'vcsim_stop_all; hv_sim_stop_all; [ -n "$NX_KEEP" ] || rm -rf "$NX_TMP"' EXIT INT TERM
fp_require
CANARY="Canary-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-pw"
umask 077
: >"$NX_TMP/samples"

# sampled RUN-LABEL ARGS...: runs netext-deploy in the background, reads its
# /proc/PID/cmdline and environ until it ends; output in $NX_TMP/LABEL.{out,err}
sampled() {
    label=$1
    shift
    # govc's password (the canary) is in this script's environment: not passed on
    env -u GOVC_PASSWORD "$NETEXT_DEPLOY" "$@" >"$NX_TMP/$label.out" 2>"$NX_TMP/$label.err" &
    pid=$!
    n=0
    exe=$(readlink -f "$NETEXT_DEPLOY")
    while kill -0 "$pid" 2>/dev/null; do
        # until it execs, $pid is the env(1) wrapper, which still holds this
        # script's own environment (govc's password): sample netext-deploy only
        if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" != "$exe" ]; then
            sleep 0.001
            continue
        fi
        if tr '\0' ' ' <"/proc/$pid/cmdline" >>"$NX_TMP/samples" 2>/dev/null; then
            tr '\0' '\n' <"/proc/$pid/environ" >>"$NX_TMP/samples" 2>/dev/null
            echo >>"$NX_TMP/samples"
            n=$((n + 1))
        fi
        sleep 0.01
    done
    wait "$pid"
    echo "# $label: exit $?, /proc sampled $n times"
    SAMPLES=$((SAMPLES + n))
}
SAMPLES=0
leaks() { # leaks: files that contain the canary
    grep -l -r -F -- "$CANARY" "$NX_TMP"/*.out "$NX_TMP"/*.err "$NX_TMP/samples" "$NETEXT_DEPLOY_STATE_DIR" 2>/dev/null |
        grep -v -e "/credentials$" -e "/pw$" -e "/vcsim.log$" -e "/sim\.\(out\|err\)$"
}

# ---- vSphere --------------------------------------------------------------------------
if has_provider vsphere && command -v vcsim >/dev/null 2>&1 &&
    command -v govc >/dev/null 2>&1; then
    vcsim_require
    VCSIM_PASSWORD=$CANARY
    if vcsim_start vcsim; then
        printf 'user = %s\npassword = %s\n' "$VCSIM_USER" "$CANARY" >"$NX_TMP/vs-creds"
        chmod 600 "$NX_TMP/vs-creds"
        vs_add_dv_portgroups "$(dvs_moref)" 100 101
        vs_plan "$NX_TMP/vs.xml" "$VCSIM_URI" 4
        V="--credentials $NX_TMP/vs-creds --cacert $NX_TMP/vcsim-cert.pem"
        sampled vs-dry $V -vv --dry-run subscribe --tenant t000 "$NX_TMP/vs.xml"
        sampled vs-sub $V -vv --json subscribe --tenant t000 "$NX_TMP/vs.xml"
        check "vSphere: subscribe -vv --json deployed" grep -q '"exit_code":0' "$NX_TMP/vs-sub.out"
        sampled vs-batch $V -vv -j 2 batch "$NX_TMP/vs.xml"
        sampled vs-bjson $V -vv --json batch "$NX_TMP/vs.xml"
        sampled vs-status $V -vv status "$NX_TMP/vs.xml"
        sampled vs-sjson $V --json status "$NX_TMP/vs.xml"
        sampled vs-unsub $V -vv unsubscribe --tenant t001 "$NX_TMP/vs.xml"
        check "vSphere: -vv logged the SOAP calls (the debug log was looked at)" grep -q "debug: vsphere: Login" "$NX_TMP/vs-sub.err"
        printf 'user = %s\npassword = wrong-%s\n' "$VCSIM_USER" "$CANARY" >"$NX_TMP/vs-bad"
        chmod 600 "$NX_TMP/vs-bad"
        sampled vs-wrong -vv --credentials "$NX_TMP/vs-bad" --cacert "$NX_TMP/vcsim-cert.pem" status "$NX_TMP/vs.xml"
        check "vSphere: a wrong password is refused (InvalidLogin)" grep -q "InvalidLogin" "$NX_TMP/vs-wrong.err"
        chmod 644 "$NX_TMP/vs-creds"
        expect_exit 77 "vSphere: a credentials file readable by others is refused" \
            "$NETEXT_DEPLOY" --credentials "$NX_TMP/vs-creds" --cacert "$NX_TMP/vcsim-cert.pem" status "$NX_TMP/vs.xml"
        check "vSphere: ... saying how to fix it" grep -q "chmod 600" "$NX_TMP/err"
        check "vSphere: ... before any connection" sh -c "! grep -q -i 'connect\|Login' '$NX_TMP/err'"
        chmod 600 "$NX_TMP/vs-creds"
        vcsim_stop_all
    else
        not_ok "vcsim starts"
    fi
else
    echo "# vSphere not tested: no vsphere provider, vcsim or govc"
fi

# ---- Hyper-V ----------------------------------------------------------------------------
if has_provider hyperv; then
    printf '%s\n' "$CANARY" >"$NX_TMP/pw"
    hv_sim_start sim --password-file "$NX_TMP/pw" --switch Production --switch VLAN-Switch
    HURI="hyperv+http://127.0.0.1:$HV_SIM_PORT/wsman"
    printf 'user = administrator\npassword = %s\n' "$CANARY" >"$NX_TMP/hv-creds"
    chmod 600 "$NX_TMP/hv-creds"
    cat >"$NX_TMP/hv.xml" <<EOF
<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">
  <gateway address="cc-gateway.sp.example.com" port="6180"/>
  <host name="hv1" uri="$HURI" production-network="Production" vlan-switch="VLAN-Switch"/>
  <hardware-plan name="a" host="hv1"><network name="n" vlan="101"/></hardware-plan>
  <hardware-plan name="b" host="hv1"><network name="n" vlan="102"/></hardware-plan>
  <tenant name="acme"><subscribe plan="a"/></tenant>
  <tenant name="beta"><subscribe plan="b"/></tenant>
</netext-plan>
EOF
    H="--credentials $NX_TMP/hv-creds"
    sampled hv-dry $H -vv --dry-run subscribe --tenant acme "$NX_TMP/hv.xml"
    sampled hv-sub $H -vv --json subscribe --tenant acme "$NX_TMP/hv.xml"
    check "Hyper-V: subscribe -vv --json deployed" grep -q '"exit_code":0' "$NX_TMP/hv-sub.out"
    sampled hv-batch $H -vv batch "$NX_TMP/hv.xml"
    sampled hv-bjson $H -vv --json batch "$NX_TMP/hv.xml"
    sampled hv-status $H -vv status "$NX_TMP/hv.xml"
    sampled hv-sjson $H --json status "$NX_TMP/hv.xml"
    sampled hv-unsub $H -vv unsubscribe --tenant beta "$NX_TMP/hv.xml"
    check "Hyper-V: -vv logged the WS-Man calls (the debug log was looked at)" grep -q "wsman: Enumerate" "$NX_TMP/hv-sub.err"
    # NTLM: the password is used for the NTLMv2 response, never sent
    sed "s|$HURI|$HURI?auth=ntlm|" "$NX_TMP/hv.xml" >"$NX_TMP/hv-ntlm.xml"
    sampled hv-ntlm $H -vv --json status "$NX_TMP/hv-ntlm.xml"
    chmod 640 "$NX_TMP/hv-creds"
    expect_exit 77 "Hyper-V: a credentials file readable by its group is refused" \
        "$NETEXT_DEPLOY" --credentials "$NX_TMP/hv-creds" status "$NX_TMP/hv.xml"
    check "Hyper-V: ... saying how to fix it" grep -q "chmod 600" "$NX_TMP/err"
    chmod 600 "$NX_TMP/hv-creds"
else
    echo "# Hyper-V not tested: no hyperv provider"
fi

check "the process's command line and environment were sampled while it ran ($SAMPLES samples)" test "$SAMPLES" -gt 0
L=$(leaks)
check "the canary password is in no stdout, stderr, -vv log, --json, state file, argv or environ${L:+ (found in: $L)}" test -z "$L"
finish
