#!/bin/bash
# hyperv-clients.sh: the Hyper-V simulator answers real WS-Management clients,
# not only ours: Debian's python3-winrm (pywinrm's Protocol transport, raw
# Enumerate/Pull and Invoke DefineSystem) and Debian's wsl (Dell's WS-Man
# shell client: wsl enum, wsl get, wsl invoke RequestStateChange).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
PY=$NX_PY

hv_sim_require
"$PY" -c 'import winrm' 2>/dev/null || skip_all "python3-winrm not installed"
require_cmd wsl "wsl not installed"
require_cmd xmllint "xmllint (libxml2-utils) not installed"
require_cmd uuidgen "uuidgen (uuid-runtime) not installed: wsl needs it"

nx_tmpdir
tmp=$NX_TMP
trap 'hv_sim_stop_all; rm -rf "$tmp"' EXIT

# wsl puts the password on curl's command line: use a throw-away one here.
pw="sim-$RANDOM$RANDOM"
printf '%s\n' "$pw" >"$tmp/pw"
chmod 600 "$tmp/pw"
hv_sim_start sim --user administrator --password-file "$tmp/pw" ||
    { not_ok "the simulator starts"; finish; exit 1; }
port=$HV_SIM_PORT
R=http://schemas.microsoft.com/wbem/wsman/1/wmi/root/virtualization/v2


# ---- pywinrm ----------------------------------------------------------------
cat >"$tmp/winrm_client.py" <<'EOF'
import re, sys, uuid
import xml.etree.ElementTree as ET
from winrm.protocol import Protocol
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError

port, pwfile = sys.argv[1], sys.argv[2]
pw = open(pwfile).read().strip()
url = "http://127.0.0.1:%s/wsman" % port
R = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/virtualization/v2/"
NS = {"s": "http://www.w3.org/2003/05/soap-envelope",
      "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
      "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
      "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing"}

def env(action, uri, body, selectors=""):
    return ('<s:Envelope xmlns:s="%(s)s" xmlns:wsa="%(wsa)s" xmlns:wsman="%(wsman)s" '
            'xmlns:wsen="%(wsen)s"><s:Header><wsa:To>%(url)s</wsa:To>'
            '<wsman:ResourceURI s:mustUnderstand="true">%(uri)s</wsman:ResourceURI>'
            '<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">'
            'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>'
            '<wsa:Action s:mustUnderstand="true">%(action)s</wsa:Action>'
            '<wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize>'
            '<wsa:MessageID>uuid:%(id)s</wsa:MessageID>'
            '<wsman:OperationTimeout>PT60S</wsman:OperationTimeout>%(sel)s</s:Header>'
            '<s:Body>%(body)s</s:Body></s:Envelope>'
            % dict(NS, url=url, uri=uri, action=action, id=uuid.uuid4(), body=body, sel=selectors))

p = Protocol(endpoint=url, transport="basic", username="administrator", password=pw,
             server_cert_validation="ignore")

def enum_names(query):
    """Enumerate with a WQL filter, Pull until EndOfSequence; ElementNames."""
    body = ('<wsen:Enumerate><wsman:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">'
            '%s</wsman:Filter></wsen:Enumerate>' % query)
    r = ET.fromstring(p.send_message(env(NS["wsen"] + "/Enumerate", R + "Msvm_ComputerSystem", body)))
    ctx = r.find("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext", NS).text
    names, pulls = [], 0
    while ctx:
        body = ('<wsen:Pull><wsen:EnumerationContext>%s</wsen:EnumerationContext>'
                '<wsen:MaxElements>1</wsen:MaxElements></wsen:Pull>' % ctx)
        r = ET.fromstring(p.send_message(env(NS["wsen"] + "/Pull", R + "Msvm_ComputerSystem", body)))
        pulls += 1
        pr = r.find("s:Body/wsen:PullResponse", NS)
        for item in pr.find("wsen:Items", NS):
            names.append(item.find("{%sMsvm_ComputerSystem}ElementName" % R).text)
        c = pr.find("wsen:EnumerationContext", NS)
        ctx = c.text if c is not None else None
        if pr.find("wsen:EndOfSequence", NS) is None and not ctx:
            raise SystemExit("PullResponse has neither a context nor EndOfSequence")
    return names, pulls

def define(name):
    inst = ('<INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData">'
            '<PROPERTY NAME="ElementName" TYPE="string"><VALUE>%s</VALUE></PROPERTY>'
            '<PROPERTY NAME="VirtualSystemSubType" TYPE="string"><VALUE>Microsoft:Hyper-V:SubType:2</VALUE></PROPERTY>'
            '</INSTANCE>' % name)
    svc = R + "Msvm_VirtualSystemManagementService"
    sel = ('<wsman:SelectorSet><wsman:Selector Name="CreationClassName">Msvm_VirtualSystemManagementService'
           '</wsman:Selector><wsman:Selector Name="Name">vmms</wsman:Selector>'
           '<wsman:Selector Name="SystemCreationClassName">Msvm_ComputerSystem</wsman:Selector>'
           '<wsman:Selector Name="SystemName">HVSIM01</wsman:Selector></wsman:SelectorSet>')
    esc = inst.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = '<p:DefineSystem_INPUT xmlns:p="%s"><p:SystemSettings>%s</p:SystemSettings></p:DefineSystem_INPUT>' % (svc, esc)
    r = ET.fromstring(p.send_message(env(svc + "/DefineSystem", svc, body, sel)))
    out = r.find("s:Body/{%s}DefineSystem_OUTPUT" % svc, NS)
    return out.find("{%s}ReturnValue" % svc).text

what = sys.argv[3]
if what == "define":
    for n in sys.argv[4:]:
        print("DefineSystem", n, define(n))
elif what == "enum":
    names, pulls = enum_names(sys.argv[4])
    print("names=%s pulls=%d" % (",".join(sorted(names)), pulls))
elif what == "fault":
    # pywinrm turns SOAP faults into WinRMError with the parsed code/subcode
    vm = R + "Msvm_ComputerSystem"
    cases = [
        ("unknown class", NS["wsen"] + "/Enumerate", R + "Msvm_NoSuchClass", "<wsen:Enumerate/>", ""),
        ("missing key", "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", vm, "",
         '<wsman:SelectorSet><wsman:Selector Name="Name">HVSIM01</wsman:Selector>'
         '<wsman:Selector Name="Bogus">x</wsman:Selector></wsman:SelectorSet>'),
        ("stale context", NS["wsen"] + "/Pull", vm,
         "<wsen:Pull><wsen:EnumerationContext>uuid:nope</wsen:EnumerationContext></wsen:Pull>", ""),
        ("unknown method", vm + "/Explode", vm, "<p:Explode_INPUT xmlns:p='%s'/>" % vm,
         '<wsman:SelectorSet><wsman:Selector Name="CreationClassName">Msvm_ComputerSystem'
         '</wsman:Selector><wsman:Selector Name="Name">HVSIM01</wsman:Selector></wsman:SelectorSet>'),
        ("bad WQL", NS["wsen"] + "/Enumerate", vm,
         '<wsen:Enumerate><wsman:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">'
         "DROP TABLE x</wsman:Filter></wsen:Enumerate>", ""),
    ]
    for name, action, uri, body, sel in cases:
        try:
            p.send_message(env(action, uri, body, sel))
            print(name, "no fault")
        except Exception as e:
            m = re.search(r"'fault_subcode': '([^']*)'", str(e))
            print(name, m.group(1) if m else "unparsed: %s" % e)
elif what == "ntlm":
    # pywinrm's NTLM transport (requests_ntlm / ntlm_auth), without message
    # encryption: NTLMv2 authenticates the connection, as with HTTP.sys
    for user, pwd in (("administrator", pw), ("HVSIM\\administrator", pw), ("administrator", pw + "x")):
        p3 = Protocol(endpoint=url, transport="ntlm", username=user, password=pwd,
                      message_encryption="never")
        try:
            r = ET.fromstring(p3.send_message(env(NS["wsen"] + "/Enumerate", R + "Msvm_ComputerSystem",
                                                  "<wsen:Enumerate/>")))
            ok = r.find("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext", NS) is not None
            print("ntlm", user, "accepted" if ok else "bad answer")
        except InvalidCredentialsError:
            print("ntlm", user, "rejected")
elif what == "badauth":
    p2 = Protocol(endpoint=url, transport="basic", username="administrator", password=pw + "x")
    try:
        p2.send_message(env(NS["wsen"] + "/Enumerate", R + "Msvm_ComputerSystem", "<wsen:Enumerate/>"))
        print("accepted")
    except InvalidCredentialsError as e:
        print("rejected:", e)
EOF

out=$("$PY" "$tmp/winrm_client.py" "$port" "$tmp/pw" define vm-alpha vm-beta 2>&1)
if [ "$(grep -c '^DefineSystem vm-.* 4096$' <<<"$out")" = 2 ]; then ok "pywinrm: Invoke DefineSystem twice (4096: job started)"
else not_ok "pywinrm: DefineSystem: $out"; fi

out=$("$PY" "$tmp/winrm_client.py" "$port" "$tmp/pw" enum \
    "SELECT * FROM Msvm_ComputerSystem WHERE Caption = 'Virtual Machine'" 2>&1)
if [ "$out" = "names=vm-alpha,vm-beta pulls=2" ]; then ok "pywinrm: Enumerate with WQL filter, Pull until EndOfSequence ($out)"
else not_ok "pywinrm: enumerate: $out"; fi

out=$("$PY" "$tmp/winrm_client.py" "$port" "$tmp/pw" fault 2>&1)
want='unknown class wsa:DestinationUnreachable
missing key wsman:InvalidSelectors
stale context wsen:InvalidEnumerationContext
unknown method wsa:ActionNotSupported
bad WQL wsen:CannotProcessFilter'
if [ "$out" = "$want" ]; then ok "pywinrm parses the simulator's faults (5 kinds, DSP0226 subcodes)"
else not_ok "pywinrm: faults: $out"; fi

out=$("$PY" "$tmp/winrm_client.py" "$port" "$tmp/pw" badauth 2>&1)
if grep -q '^rejected' <<<"$out"; then ok "pywinrm: wrong password rejected (401)"
else not_ok "pywinrm: bad auth: $out"; fi

# ntlm_auth needs MD4, which OpenSSL 3 keeps in its legacy provider
printf '%s\n' 'openssl_conf = openssl_init' '[openssl_init]' 'providers = provider_sect' \
    '[provider_sect]' 'default = default_sect' 'legacy = legacy_sect' '[default_sect]' \
    'activate = 1' '[legacy_sect]' 'activate = 1' >"$tmp/openssl-legacy.cnf"
out=$(OPENSSL_CONF="$tmp/openssl-legacy.cnf" "$PY" "$tmp/winrm_client.py" "$port" "$tmp/pw" ntlm 2>&1)
want='ntlm administrator accepted
ntlm HVSIM\administrator accepted
ntlm administrator rejected'
if [ "$out" = "$want" ]; then
    ok "pywinrm NTLM transport: NTLMv2 accepted (with and without domain), wrong password rejected"
elif grep -q "unsupported hash type md4" <<<"$out"; then
    echo "# pywinrm NTLM not checked: this OpenSSL has no MD4 even with the legacy provider"
else not_ok "pywinrm NTLM: $out"; fi

# ---- wsl --------------------------------------------------------------------
mkdir -p "$tmp/home" "$tmp/wsl"
cat >"$tmp/home/.wsl-config" <<EOF
WSNOSSL=true
KEEPHISTORY=0
OUTPREFIX=$tmp/wsl
EOF
export HOME="$tmp/home" WSENDPOINT="127.0.0.1:$port" WSUSER=administrator WSPASS="$pw"
cd "$tmp/wsl" || exit 1

# -opti 1: one instance per message, so wsl must Pull until the end
out=$(wsl enum "$R/Msvm_ComputerSystem" -opti 1 2>&1)
rc=$?
n=$(grep -c '<p:ElementName>' <<<"$out")
if [ $rc = 0 ] && [ "$n" = 3 ] && grep -q 'PullResponse' <<<"$out"; then
    ok "wsl enum: host and 2 VMs over Enumerate + Pull"
else not_ok "wsl enum (rc=$rc, $n instances): $out"; fi

# properties come in name order: <p:Name> follows <p:ElementName>
guid=$(grep -A20 '<p:ElementName>vm-alpha<' <<<"$out" | sed -n 's/.*<p:Name>\(.*\)<\/p:Name>.*/\1/p' | head -1)
out=$(wsl get "$R/Msvm_ComputerSystem" CreationClassName=Msvm_ComputerSystem "Name=$guid" 2>&1)
rc=$?
if [ $rc = 0 ] && grep -q '<p:ElementName>vm-alpha</p:ElementName>' <<<"$out" &&
    grep -q '<p:EnabledState>3</p:EnabledState>' <<<"$out"; then
    ok "wsl get: one VM by its selectors (off)"
else not_ok "wsl get $guid (rc=$rc): $out"; fi

out=$(wsl get "$R/Msvm_ComputerSystem" CreationClassName=Msvm_ComputerSystem Name=NO-SUCH-VM 2>&1)
if grep -q 'DestinationUnreachable' <<<"$out"; then ok "wsl get: unknown instance gives wsa:DestinationUnreachable"
else not_ok "wsl get unknown: $out"; fi

out=$(wsl invoke "$R/Msvm_ComputerSystem" RequestStateChange RequestedState=2 \
    -filter "select * from Msvm_ComputerSystem where ElementName='vm-alpha'" 2>&1)
rc=$?
if [ $rc = 0 ] && grep -q 'RequestStateChange_OUTPUT' <<<"$out" &&
    grep -q '<p:ReturnValue>4096</p:ReturnValue>' <<<"$out"; then
    ok "wsl invoke: RequestStateChange(2) accepted, job started"
else not_ok "wsl invoke (rc=$rc): $out"; fi

state=$(curl -s "http://127.0.0.1:$port/state" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s=%s" % (v["name"], v["state"]) for v in sorted(d["vms"], key=lambda v: v["name"])))')
if [ "$state" = "vm-alpha=2 vm-beta=3" ]; then ok "simulator state after wsl invoke: $state"
else not_ok "simulator state: $state"; fi

if grep -q -- "$pw" "$tmp/sim.out" "$tmp/sim.err"; then not_ok "the simulator logged the password"
else ok "the simulator never logs the password"; fi

finish
