#!/bin/sh
# systemd-units.sh: contrib/systemd/*: `systemd-analyze verify` on instances
# of each unit (with ExecStart pointing at the built program), the hardening
# they promise, and each service's command line run as systemd would run it
# (specifiers and credentials directory replaced by temporary paths) against
# libvirt's test driver.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
require_cmd systemd-analyze "systemd-analyze is missing (package systemd)"
nx_tmpdir
trap 'rm -rf "$NX_TMP"' EXIT
ND=$NETEXT_DEPLOY
U=$NX_TMP/units
mkdir -p "$U"
for f in "$top_srcdir"/contrib/systemd/*; do
    sed "s|/usr/sbin/netext-deploy|$ND|" "$f" >"$U/${f##*/}"
done
ln -s netext-deploy-batch@.service "$U/netext-deploy-batch@sp1.service"
ln -s netext-deploy-batch@.timer "$U/netext-deploy-batch@sp1.timer"
ln -s netext-deploy-rescan@.service "$U/netext-deploy-rescan@acme.service"
verify() {
    systemd-analyze verify --man=no "$@" >"$NX_TMP/verify" 2>&1
    rc=$?
    sed 's/^/    | /' "$NX_TMP/verify"
    [ $rc = 0 ] && ! grep -q . "$NX_TMP/verify"
}
for u in netext-deploy-batch@sp1.service netext-deploy-batch@sp1.timer netext-deploy-rescan@acme.service; do
    check "systemd-analyze verify $u" verify "$U/$u"
done
# the check can fail: an unknown option, a missing program
sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$U/netext-deploy-batch@.service" >"$U/broken@.service"
ln -s broken@.service "$U/broken@x.service"
broken_ok() { ! verify "$U/broken@x.service" >/dev/null; }
check "verify refuses a misspelt option" broken_ok
check "verify reports the misspelt option" sh -c "systemd-analyze verify --man=no '$U/broken@x.service' 2>&1 | grep -q ProtectSystm"
sed "s|$ND|/nonexistent/netext-deploy|" "$U/netext-deploy-batch@.service" >"$U/nobin@.service"
ln -s nobin@.service "$U/nobin@x.service"
check "verify refuses a missing program" sh -c "! systemd-analyze verify --man=no '$U/nobin@x.service' >/dev/null 2>&1"

# what the units promise
for svc in netext-deploy-batch@.service netext-deploy-rescan@.service; do
    for opt in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes \
        CapabilityBoundingSet= StateDirectory=netext-deploy \
        'LoadCredential=credentials:' 'Environment=NETEXT_DEPLOY_CREDENTIALS=%d/credentials'; do
        check "$svc: $opt" grep -q "^$opt" "$top_srcdir/contrib/systemd/$svc"
    done
    check "$svc: no password in the environment" sh -c "! grep -q 'NETEXT_DEPLOY_PASSWORD' '$top_srcdir/contrib/systemd/$svc'"
done
check "timer: WantedBy=timers.target" grep -q "^WantedBy=timers.target" "$top_srcdir/contrib/systemd/netext-deploy-batch@.timer"

# ExecStart as systemd runs it: %i, %d (credentials directory, files 0400),
# %S (/var/lib) and the fixed paths under /etc and /var/lib/prometheus moved
# into the temporary directory; extra arguments through NETEXT_DEPLOY_ARGS
execline() { # unit instance -> the command line
    sed -n '/^ExecStart=/,/[^\\]$/p' "$top_srcdir/contrib/systemd/$1" | sed 's/\\$//' | tr '\n' ' ' |
        sed -e 's/^ExecStart=//' -e "s|/usr/sbin/netext-deploy|$ND|" -e "s|%i|$2|g" \
            -e "s|%d|$NX_TMP/creds|g" -e "s|%S|$NX_TMP/var/lib|g" -e "s|/etc/|$NX_TMP/etc/|g" \
            -e "s|/var/lib/prometheus|$NX_TMP/var/lib/prometheus|g" \
            -e "s|\\\$NETEXT_DEPLOY_ARGS|--connect test://$top_srcdir/examples/testnode.xml|"
}
mkdir -p "$NX_TMP/etc/netext-deploy/sp1" "$NX_TMP/creds" "$NX_TMP/var/lib/prometheus/node-exporter"
cp "$top_srcdir/examples/seed.xml" "$NX_TMP/etc/netext-deploy/sp1/"
printf 'user = u\npassword = canary-9f2c\n' >"$NX_TMP/creds/credentials"
chmod 0400 "$NX_TMP/creds/credentials"
cmd=$(execline netext-deploy-batch@.service sp1)
echo "    batch: $cmd"
expect_exit 0 "batch@sp1's ExecStart runs (credentials from %d, state from %S)" \
    env NETEXT_DEPLOY_CREDENTIALS="$NX_TMP/creds/credentials" NETEXT_DEPLOY_STATE_DIR="$NX_TMP/var/lib/netext-deploy" $cmd
check "batch@sp1: both tenants of the plan directory changed" grep -q "2 changed" "$NX_TMP/out"
check "batch@sp1: metrics for node_exporter written" grep -q '^netext_deploy_tenants{result="changed"} 2' \
    "$NX_TMP/var/lib/prometheus/node-exporter/netext-deploy-sp1.prom"
check "batch@sp1: state directory used" test -d "$NX_TMP/var/lib/netext-deploy"
check "batch@sp1: the password is not printed" sh -c "! grep -q canary-9f2c '$NX_TMP/out' '$NX_TMP/err'"

# rescan: a tenant configuration and its bundle (exported by the provider side)
mkdir -p "$NX_TMP/etc/netext-deploy/acme"
cat >"$NX_TMP/sp.xml" <<XML
<netext-plan xmlns="urn:netext-deploy:plan:1">
  <gateway address="gw.sp.example.com"/>
  <host name="esx1" uri="test:///default" production-network="prod" vlan-switch="v"/>
  <hardware-plan name="p" host="esx1"><network name="lan" vlan="10"/></hardware-plan>
  <tenant name="acme"><subscribe plan="p"/></tenant>
</netext-plan>
XML
cat >"$NX_TMP/etc/netext-deploy/acme/tenant.xml" <<XML
<netext-tenant xmlns="urn:netext-deploy:plan:1" bundle="not-here.bundle">
  <source-host name="src" uri="test:///default"/>
  <appliance host="src" production-network="default"/>
</netext-tenant>
XML
"$ND" --state-dir "$NX_TMP/var/lib/netext-deploy" -t acme -o "$NX_TMP/creds/bundle" \
    export-bundle "$NX_TMP/sp.xml" 2>/dev/null
chmod 0400 "$NX_TMP/creds/bundle"
cmd=$(execline netext-deploy-rescan@.service acme | sed "s|--connect test://[^ ]*|--connect test:///default|")
echo "    rescan: $cmd"
expect_exit 0 "rescan@acme's ExecStart runs (bundle from %d, not the one the configuration names)" \
    env NETEXT_DEPLOY_CREDENTIALS="$NX_TMP/creds/credentials" NETEXT_DEPLOY_STATE_DIR="$NX_TMP/var/lib/netext-deploy" $cmd
check_json "rescan@acme: JSON result 'changed'" "d['result'] == 'changed'"
check "rescan@acme: metrics written" grep -q '^netext_deploy_run_info{command="rescan"' \
    "$NX_TMP/var/lib/prometheus/node-exporter/netext-deploy-rescan-acme.prom"
finish
