#!/bin/sh
# tunnel-cli.sh: `netext-deploy payload`, `rotate`, `rotate-ca`, the bundle's
# credentials, and netext-bootstrap's refusals, through the command lines
# (no root needed; nothing is started).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
BOOT=$NETEXT_BOOTSTRAP
PLAN=$top_srcdir/tests/data/tunnel/plan.xml
ND=$NETEXT_DEPLOY
[ -x "$ND" ] && [ -x "$BOOT" ] || { echo "FAIL: build netext-deploy and netext-bootstrap first"; exit 1; }
nx_tmpdir # $T/state: netext-deploy's state directory; expect_exit's output in $T/out, $T/err
T=$NX_TMP
trap 'rm -rf "$T"' EXIT
elem() { sed -n "s/.*<$2>\(.*\)<\/$2>.*/\1/p" "$1" | head -1; }
# the tenant CA's certificate alone (an SP payload's CA file adds revocation lists)
cacert() { elem "$1" ca-certificate | sed 's/-----END CERTIFICATE-----.*//'; }

# a second host and tenant, so that --tenant and --host are needed
sed -e 's|</netext-plan>|<host name="esx2" uri="test:///default" production-network="p" vlan-switch="v"/><hardware-plan name="B" host="esx2"><network name="x" vlan="300"/></hardware-plan><tenant name="globex"><subscribe plan="B"/></tenant></netext-plan>|' \
    "$PLAN" > "$T/two.xml"

# --- dry run first: nothing issued, no key, no state directory -------------------
expect_exit 0 "payload --dry-run" "$ND" -n --tenant acme --host esx1 payload "$PLAN"
grep -q '<pki pending="true"/>' "$T/out" && ! grep -q "PRIVATE KEY" "$T/out" &&
    ok "dry-run payload: pending, no key" || not_ok "dry-run payload"
[ ! -e "$T/state" ] && ok "dry run created no state" || not_ok "dry run created $T/state"

# --- usage and refusals ------------------------------------------------------------------
expect_exit 64 "payload needs --tenant with two tenants" "$ND" --host esx1 payload "$T/two.xml"
expect_exit 64 "payload needs --host with two hosts" "$ND" --tenant acme payload "$T/two.xml"
expect_exit 65 "payload of a tenant on another host" "$ND" --tenant acme --host esx2 payload "$T/two.xml"
expect_exit 64 "payload --role bogus" "$ND" --tenant acme --host esx1 --role admin payload "$PLAN"
expect_exit 64 "rotate needs --tenant with two tenants" "$ND" rotate "$T/two.xml"
expect_exit 65 "payload of an invalid plan" "$ND" --tenant acme --host esx1 payload \
    "$top_srcdir/tests/data/bad/port-22.xml"

# --- the payload ---------------------------------------------------------------------------
expect_exit 0 "payload -o" "$ND" --tenant acme --host esx1 -o "$T/p1.xml" payload "$T/two.xml"
[ "$(stat -c %a "$T/p1.xml")" = 600 ] && ok "payload file 0600" || not_ok "payload mode"
grep -q 'version="2"' "$T/p1.xml" && grep -q "BEGIN PRIVATE KEY" "$T/p1.xml" &&
    grep -q 'tunnel-port="6281"' "$T/p1.xml" && ok "payload v2 with key and tunnel ports" ||
    not_ok "payload content"
grep -q "globex" "$T/p1.xml" && not_ok "another tenant in acme's payload"
expect_exit 0 "globex payload" "$ND" --tenant globex --host esx2 -o "$T/g.xml" payload "$T/two.xml"
k1=$(elem "$T/p1.xml" private-key)
kg=$(elem "$T/g.xml" private-key)
[ -n "$k1" ] && [ -n "$kg" ] && [ "$k1" != "$kg" ] && ! grep -qF -e "$k1" "$T/g.xml" &&
    ok "tenants' keys differ and never cross" || not_ok "keys across tenants"
expect_exit 0 "payload again" "$ND" --tenant acme --host esx1 -o "$T/p2.xml" payload "$T/two.xml"
cmp -s "$T/p1.xml" "$T/p2.xml" && ok "the same payload twice (canonical, keys kept)" || not_ok "payload changed"
NETEXT_DEPLOY_PAYLOAD_BASE64=1 "$ND" --tenant acme --host esx1 payload "$T/two.xml" > "$T/p.b64"
base64 -d "$T/p.b64" | cmp -s - "$T/p1.xml" && ok "base64 form" || not_ok "base64 form"
for f in "$T/state" "$T/state/pki" "$T/state/pki/acme"; do
    [ "$(stat -c %a "$f")" = 700 ] || not_ok "$f not 0700"
done
for k in "$T"/state/pki/*/*.key; do [ "$(stat -c %a "$k")" = 600 ] || not_ok "$k not 0600"; done

# --- netext-bootstrap reads it (file, base64) and refuses what it must ---------------------
expect_exit 0 "bootstrap render (XML)" "$BOOT" --root "$T/r1" --payload "$T/p1.xml" render
expect_exit 0 "bootstrap render (base64)" "$BOOT" --root "$T/r2" --payload "$T/p.b64" render
cmp -s "$T/r1/etc/netext/pki/appliance.key" "$T/r2/etc/netext/pki/appliance.key" &&
    grep -q "^lport 6281$" "$T/r2/etc/netext/openvpn/nxt101.conf" &&
    [ "$(stat -c %a "$T/r1/etc/netext/pki/appliance.key")" = 600 ] &&
    [ "$(stat -c %a "$T/r1/etc/netext")" = 700 ] && ok "rendered files and modes" || not_ok "rendered"
sed 's/version="2"/version="1"/' "$T/p1.xml" > "$T/v1.xml"
expect_exit 65 "bootstrap refuses payload version 1" "$BOOT" --root "$T/r3" --payload "$T/v1.xml" render
grep -q "payload version 1 is not supported" "$T/err" && ok "says why" || not_ok "version message"
NETEXT_DEPLOY_STATE_DIR=$T/empty "$ND" -n --tenant acme --host esx1 payload "$PLAN" > "$T/dry.xml"
expect_exit 65 "bootstrap refuses a dry-run payload" "$BOOT" --root "$T/r4" --payload "$T/dry.xml" render
grep -q "dry run" "$T/err" && ok "says it was a dry run" || not_ok "dry-run message"
expect_exit 66 "bootstrap without any payload" "$BOOT" --root "$T/r5" --sysroot "$T/nothing" --channel fwcfg render
expect_exit 66 "failover before apply" "$BOOT" --root "$T/r5" failover full
expect_exit 64 "failover without a mode" "$BOOT" --root "$T/r1" failover
expect_exit 64 "failover bogus" "$BOOT" --root "$T/r1" failover sideways
expect_exit 64 "bootstrap bad channel" "$BOOT" --channel carrier-pigeon render

# --- rotation ----------------------------------------------------------------------------------
c1=$(elem "$T/p1.xml" certificate)
ca1=$(cacert "$T/p1.xml")
expect_exit 0 "rotate" "$ND" --tenant acme rotate "$T/two.xml"
"$ND" --tenant acme --host esx1 -o "$T/p3.xml" payload "$T/two.xml"
[ "$(elem "$T/p3.xml" certificate)" != "$c1" ] && [ "$(cacert "$T/p3.xml")" = "$ca1" ] &&
    [ "$(elem "$T/p3.xml" private-key)" != "$k1" ] && ok "rotate: new certificate and key, same CA" ||
    not_ok "rotate"
gca=$(elem "$T/g.xml" ca-certificate)
expect_exit 0 "rotate-ca" "$ND" --tenant acme rotate-ca "$T/two.xml"
"$ND" --tenant acme --host esx1 -o "$T/p4.xml" payload "$T/two.xml"
[ "$(cacert "$T/p4.xml")" != "$ca1" ] && ok "rotate-ca: new CA" || not_ok "rotate-ca"
"$ND" --tenant globex --host esx2 -o "$T/g2.xml" payload "$T/two.xml"
[ -n "$gca" ] && [ "$(elem "$T/g2.xml" ca-certificate)" = "$gca" ] &&
    ok "another tenant's CA untouched" || not_ok "globex CA changed"

# --- the bundle carries the tenant's client credentials from the same CA ------------------------
expect_exit 0 "export-bundle" "$ND" --tenant acme -o "$T/acme.bundle" export-bundle "$T/two.xml"
ca_line=$(elem "$T/p4.xml" ca-certificate | sed 's/&#10;/\n/g' | sed -n 2p)
grep -q "BEGIN PRIVATE KEY" "$T/acme.bundle" && [ -n "$ca_line" ] &&
    grep -qF -e "$ca_line" "$T/acme.bundle" &&
    ok "bundle: client key and the tenant's current CA" || not_ok "bundle credentials"
grep -q "<client-ca>" "$T/acme.bundle" && grep -q "<client-ca-key>" "$T/acme.bundle" &&
    ! grep -q "<certificate>" "$T/acme.bundle" &&
    ok "bundle: the tenant's client CA, no shared certificate" || not_ok "bundle: client CA"

# --- revocation ------------------------------------------------------------------------------------
expect_exit 64 "revoke needs --appliance" "$ND" --tenant acme revoke "$T/two.xml"
"$ND" --tenant acme --host esx1 -o "$T/p5.xml" payload "$T/two.xml"
n=$(elem "$T/p5.xml" ca-certificate | grep -o "BEGIN X509 CRL" | wc -l)
[ "$n" = 2 ] && ok "SP payload: both CAs with their revocation lists" || not_ok "SP payload: $n lists"
expect_exit 0 "revoke" "$ND" --tenant acme --appliance acme-src-lan revoke "$T/two.xml"
out=$("$ND" --tenant acme --appliance acme-src-lan revoke "$T/two.xml")
case $out in *"already revoked"*) ok "revoke again: $out" ;; *) not_ok "revoke again: $out" ;; esac
"$ND" --tenant acme --host esx1 -o "$T/p6.xml" payload "$T/two.xml"
[ "$(elem "$T/p6.xml" ca-certificate)" != "$(elem "$T/p5.xml" ca-certificate)" ] &&
    [ "$(cacert "$T/p6.xml")" = "$(cacert "$T/p5.xml")" ] &&
    [ "$(elem "$T/p6.xml" certificate)" = "$(elem "$T/p5.xml" certificate)" ] &&
    ok "revoke: the SP payload carries new lists, same certificates" || not_ok "revoke: SP payload"
grep -q "acme-src-lan" "$T/state/pki/acme/revoked" && ok "revoked list in the state directory" ||
    not_ok "revoked list"
expect_exit 0 "revoke --undo" "$ND" --tenant acme --appliance acme-src-lan --undo revoke "$T/two.xml"
grep -q "acme-src-lan" "$T/state/pki/acme/revoked" && not_ok "undo left the name"

finish
