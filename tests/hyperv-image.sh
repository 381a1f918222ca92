#!/bin/bash
# hyperv-image.sh: the appliance image on Hyper-V, against the project's
# WS-Management simulator (tests/hyperv-sim/hyperv_sim.py) on 127.0.0.1:
# create with a DVD drive holding <image-store>\netext-appliance-<id>.iso,
# boot order and Secure Boot template, marker image=<id>, an unchanged second
# run, a new image (one ModifyResourceSettings per appliance), an appliance
# made without an image, a file missing on the host, an interrupted create,
# and the simulator's own checks of DVD drives and disks. Assertions read the
# simulator's state (GET /state), not our output.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
PY=$NX_PY

hv_sim_require
require_cmd xorriso "xorriso not installed (the test makes its ISOs with it)"
require_provider hyperv

nx_tmpdir
tmp=$NX_TMP
trap 'hv_sim_stop_all; rm -rf "$tmp"' EXIT

umask 077
printf 'image pw %s\n' "$RANDOM" >"$tmp/pw"
printf 'user = administrator\npassword = %s\n' "$(cat "$tmp/pw")" >"$tmp/creds"
hv_sim_start sim --password-file "$tmp/pw" --switch Production --switch VLAN-Switch ||
    { not_ok "the simulator starts"; finish; exit 1; }
base=$HV_SIM_URL
uri=$HV_SIM_URI

# iso N: a small ISO 9660 image of its own content
iso() {
    mkdir -p "$tmp/iso$1"
    echo "netext test image $1 $RANDOM" >"$tmp/iso$1/README"
    xorriso -as mkisofs -quiet -o "$tmp/img$1.iso" "$tmp/iso$1" 2>/dev/null
}
image_id() { sha256sum "$1" | cut -c1-16; }

# plan [IMAGE-STORE]: tenants acme and beta on hv1, 3 VLANs each (4 vNICs)
plan() {
    {
        echo '<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">'
        echo '  <gateway address="cc-gateway.sp.example.com" port="6180"/>'
        printf '  <host name="hv1" uri="%s" production-network="Production" vlan-switch="VLAN-Switch"%s/>\n' \
            "$uri" "${1:+ image-store=\"$1\"}"
        echo '  <hardware-plan name="A" host="hv1"><network name="a1" vlan="101"/><network name="a2" vlan="102"/><network name="a3" vlan="103"/></hardware-plan>'
        echo '  <hardware-plan name="B" host="hv1"><network name="b1" vlan="201"/><network name="b2" vlan="202"/><network name="b3" vlan="203"/></hardware-plan>'
        echo '  <tenant name="acme"><subscribe plan="A"/></tenant>'
        echo '  <tenant name="beta"><subscribe plan="B"/></tenant>'
        echo '</netext-plan>'
    } >"$tmp/plan.xml"
}

control() { curl -s -X POST --data "$1" "$base/control" >/dev/null; }
sim() { curl -s "$base/state" | "$PY" -c "import json, sys; d = json.load(sys.stdin); $1"; }
vm() { # vm NAME EXPR: EXPR of the VM v named NAME
    sim "v = [v for v in d['vms'] if v['name'] == '$1']; v = v[0] if v else None; print($2)"
}
requests() { sim 'print(d["counters"]["requests"])'; }
method() { sim "print(d['counters']['methods'].get('$1', 0))"; }
run() {
    "$NETEXT_DEPLOY" --credentials "$tmp/creds" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
jfield() { "$PY" -c "import json, sys; print(json.load(open('$tmp/out'))['$1'])" 2>/dev/null; }
show() { sed 's/^/    | /' "$tmp/out" "$tmp/err" | head -20; }

iso 1
iso 2
iso 3
id1=$(image_id "$tmp/img1.iso")
id2=$(image_id "$tmp/img2.iso")
id3=$(image_id "$tmp/img3.iso")
store='C:\ProgramData\netext-deploy'
plan

# ---- dry run: the SP learns the file name to copy -------------------------------
run --image "$tmp/img1.iso" --dry-run subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 0 ] && grep -q "create.*netext-acme-hv1.*image netext-appliance-$id1.iso" "$tmp/out" &&
    [ "$(sim 'print(d["counters"]["invokes"])')" = 0 ]; then
    ok "dry run: the create line names netext-appliance-$id1.iso, nothing invoked"
else not_ok "dry run: rc=$rc"; show; fi

# ---- a new appliance without an image (beta), then one with it (acme) ----------
r0=$(requests)
run --no-image subscribe --tenant beta "$tmp/plan.xml"
r1=$(requests)
run --image "$tmp/img1.iso" subscribe --tenant acme "$tmp/plan.xml"
r2=$(requests)
[ $rc = 0 ] || { not_ok "subscribe --image: rc=$rc"; show; }
echo "# requests per new appliance (4 vNICs, this run's setup included): without an image $((r1 - r0)), with it $((r2 - r1))"
check "the image costs at most 12 requests more per new appliance ($((r1 - r0)) -> $((r2 - r1)))" \
    [ $((r2 - r1)) -le $((r1 - r0 + 12)) ]
got=$(vm netext-acme-hv1 'len(v["dvd"]), v["dvd"][0]["controller"], v["dvd"][0]["address"], v["dvd"][0]["path"], v["controllers"]')
want="1 Microsoft:Hyper-V:Synthetic SCSI Controller 0 $store\\netext-appliance-$id1.iso ['Microsoft:Hyper-V:Synthetic SCSI Controller']"
if [ "$got" = "$want" ]; then
    ok "create: one SCSI controller, a DVD drive at location 0 holding $store\\netext-appliance-$id1.iso"
else not_ok "create: DVD $got"; fi
got=$(vm netext-acme-hv1 'v["boot"][0], len(v["boot"]), v["secure_boot"], v["secure_boot_template"], ("image=" + "'"$id1"'") in v["notes"][0], v["state"]')
if [ "$got" = "SCSI DVD (0,0) 5 True 272e7447-90a4-4563-a4b9-8e4ab00526ce True 2" ]; then
    ok "create: the DVD first of 5 boot entries, Secure Boot with the Microsoft UEFI CA template, image=$id1 in Notes, running"
else not_ok "create: boot/firmware/marker $got"; fi
got=$(vm netext-beta-hv1 'v["dvd"], v["controllers"], v["secure_boot_template"], "image=" in v["notes"][0]')
[ "$got" = "[] [] 1734c6e8-3154-4dda-ba5f-a874cc483422 False" ] &&
    ok "--no-image: no DVD drive, firmware untouched, no image in the marker" ||
    not_ok "--no-image appliance: $got"

# ---- second run: nothing changes ----------------------------------------------
before=$(sim 'print(d["counters"]["invokes"])')
r0=$(requests)
run --image "$tmp/img1.iso" --json subscribe --tenant acme "$tmp/plan.xml"
after=$(sim 'print(d["counters"]["invokes"])')
echo "# requests of the no-change run: $(($(requests) - r0))"
if [ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && [ "$before" = "$after" ]; then
    ok "second run with the same image: 0 changes, no method invoked"
else not_ok "second run: rc=$rc invokes $before->$after"; show; fi
run --image "$tmp/img1.iso" status --tenant acme "$tmp/plan.xml"
[ $rc = 0 ] && grep -q "netext-acme-hv1.*up to date" "$tmp/out" && ok "status: up to date" ||
    { not_ok "status: rc=$rc"; show; }

# ---- the appliance made without an image gets it: drive and disk added ---------
run --image "$tmp/img1.iso" --dry-run subscribe --tenant beta "$tmp/plan.xml"
grep -q "set-image.*netext-beta-hv1.*netext-appliance-$id1.iso (was none)" "$tmp/out" &&
    ok "dry run: set-image for the appliance without one (was none)" || { not_ok "dry run beta"; show; }
a0=$(method AddResourceSettings)
run --image "$tmp/img1.iso" subscribe --tenant beta "$tmp/plan.xml"
a1=$(method AddResourceSettings)
got=$(vm netext-beta-hv1 'len(v["dvd"]), v["dvd"][0]["path"], v["boot"][0], v["secure_boot_template"], ("image='"$id1"'") in v["notes"][0]')
if [ $rc = 0 ] && [ $((a1 - a0)) = 3 ] &&
    [ "$got" = "1 $store\\netext-appliance-$id1.iso SCSI DVD (0,0) 272e7447-90a4-4563-a4b9-8e4ab00526ce True" ]; then
    ok "set-image on an appliance without a drive: controller, drive and disk added (3 AddResourceSettings), DVD boots first"
else not_ok "set-image beta: rc=$rc adds=$((a1 - a0)) $got"; show; fi

# ---- a new image in another store: one ModifyResourceSettings per appliance ------
plan 'D:\Images\'
run --image "$tmp/img2.iso" status "$tmp/plan.xml"
[ "$(grep -c "image outdated" "$tmp/out")" = 2 ] && ok "status: both appliances' image outdated" ||
    { not_ok "status with a new image: rc=$rc"; show; }
run --image "$tmp/img2.iso" --dry-run subscribe --tenant acme "$tmp/plan.xml"
grep -q "set-image.*netext-acme-hv1.*netext-appliance-$id2.iso (was $id1)" "$tmp/out" &&
    ok "dry run: set-image netext-appliance-$id2.iso (was $id1)" || { not_ok "dry run new image"; show; }
m0=$(method ModifyResourceSettings)
a0=$(method AddResourceSettings)
changes=0
for t in acme beta; do
    run --image "$tmp/img2.iso" --json subscribe --tenant $t "$tmp/plan.xml"
    [ $rc = 0 ] || { not_ok "new image, tenant $t: rc=$rc"; show; }
    changes=$((changes + $(jfield changes)))
done
m1=$(method ModifyResourceSettings)
a1=$(method AddResourceSettings)
got=$(sim "print(' '.join('%s:%s:%s' % (v['name'], ','.join(x['path'] for x in v['dvd']), ('image=$id2') in v['notes'][0]) for v in sorted(d['vms'], key=lambda v: v['name'])))")
want="netext-acme-hv1:D:\\Images\\netext-appliance-$id2.iso:True netext-beta-hv1:D:\\Images\\netext-appliance-$id2.iso:True"
if [ "$changes" = 2 ] && [ $((m1 - m0)) = 2 ] && [ $((a1 - a0)) = 0 ]; then
    ok "new image: 2 changes, one ModifyResourceSettings per appliance, nothing added"
else not_ok "new image: changes=$changes modify=$((m1 - m0)) add=$((a1 - a0))"; fi
[ "$got" = "$want" ] && ok "new image: both DVD drives hold D:\\Images\\netext-appliance-$id2.iso, image=$id2 in Notes" ||
    not_ok "new image state: $got"
run --image "$tmp/img2.iso" --json subscribe --tenant beta "$tmp/plan.xml"
[ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "then up to date" || { not_ok "after the new image"; show; }

# ---- the SP has not copied the file: the host's error, then converges ---------
control "{\"host_files\": [\"D:\\\\Images\\\\netext-appliance-$id2.iso\"]}"
run --image "$tmp/img3.iso" subscribe --tenant acme "$tmp/plan.xml"
if [ $rc = 1 ] && grep -q "cannot find the file specified: 'D:\\\\Images\\\\netext-appliance-$id3.iso'" "$tmp/err" &&
    [ "$(vm netext-acme-hv1 "('image=$id2') in v['notes'][0]")" = True ]; then
    ok "ISO missing on the host: the host's error names the path, exit 1, marker unchanged"
else not_ok "missing ISO: rc=$rc"; show; fi
control "{\"host_files\": null}"
run --image "$tmp/img3.iso" --json subscribe --tenant acme "$tmp/plan.xml"
[ $rc = 0 ] && [ "$(vm netext-acme-hv1 "v['dvd'][0]['path'], ('image=$id3') in v['notes'][0]")" = "D:\\Images\\netext-appliance-$id3.iso True" ] &&
    ok "file placed: the next run puts it in" || { not_ok "after placing the file: rc=$rc"; show; }

# ---- a create interrupted after DefineSystem converges, DVD included ----------
run unsubscribe --tenant beta "$tmp/plan.xml"
control '{"fail_next_job": "Simulated failure: device busy", "fail_method": "AddResourceSettings"}'
run --image "$tmp/img3.iso" subscribe --tenant beta "$tmp/plan.xml"
first=$rc
half=$(vm netext-beta-hv1 'v["dvd"]')
run --image "$tmp/img3.iso" --json subscribe --tenant beta "$tmp/plan.xml"
got=$(vm netext-beta-hv1 'len(v["dvd"]), v["dvd"][0]["path"], v["boot"][0], len(v["nics"]), ("image='"$id3"'") in v["notes"][0]')
n=$(sim 'print(sum(1 for v in d["vms"] if v["name"] == "netext-beta-hv1"))')
if [ "$first" = 1 ] && [ "$half" = "[]" ] && [ $rc = 0 ] && [ "$n" = 1 ] &&
    [ "$got" = "1 D:\\Images\\netext-appliance-$id3.iso SCSI DVD (0,0) 4 True" ]; then
    ok "create failed at the DVD drive: the next run adds drive, disk and vNICs to the same VM"
else not_ok "interrupted create: first=$first half=$half rc=$rc vms=$n $got"; show; fi
run --image "$tmp/img3.iso" --json subscribe --tenant beta "$tmp/plan.xml"
[ $rc = 0 ] && [ "$(jfield changes)" = 0 ] && ok "then up to date" || { not_ok "after the interrupted create"; show; }

# ---- the simulator checks storage settings as Hyper-V documents them ---------
# (so that the checks above can fail): AddResourceSettings with a DVD drive on
# a network adapter, a disk on a controller, a drive with a wrong ResourceType
out=$("$PY" - "$base/wsman" "$(cat "$tmp/pw")" <<'PY'
import base64, json, re, sys, urllib.request, uuid
url, pw = sys.argv[1], sys.argv[2]
V2 = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/virtualization/v2/"
state = json.load(urllib.request.urlopen(url.replace("/wsman", "/state")))
def post(action, uri, body, sel=""):
    env = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
           'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
           'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
           '<a:To>%s</a:To><a:Action>%s</a:Action><a:MessageID>uuid:%s</a:MessageID>'
           '<w:ResourceURI>%s</w:ResourceURI>%s</s:Header><s:Body>%s</s:Body></s:Envelope>'
           % (url, action, uuid.uuid4(), uri, sel, body))
    rq = urllib.request.Request(url, env.encode(), {"Content-Type": "application/soap+xml;charset=UTF-8",
        "Authorization": "Basic " + base64.b64encode(("administrator:" + pw).encode()).decode()})
    try:
        return urllib.request.urlopen(rq).read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()
def enum(cls, where):
    r = post("http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate", V2 + cls,
             '<n:Enumerate xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">'
             '<w:OptimizeEnumeration/><w:MaxElements>100</w:MaxElements>'
             '<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT * FROM %s WHERE %s'
             '</w:Filter></n:Enumerate>' % (cls, where))
    return re.findall(r"<p:InstanceID>([^<]*)</p:InstanceID>", r)
g = [v["guid"] for v in state["vms"] if v["name"] == "netext-acme-hv1"][0]
host = "HVSIM01"
def path(cls, iid):
    return '\\\\%s\\root\\virtualization\\v2:%s.InstanceID="%s"' % (host, cls, iid.replace("\\", "\\\\"))
ctrl = [i for i in enum("Msvm_ResourceAllocationSettingData",
        "ResourceSubType = 'Microsoft:Hyper-V:Synthetic SCSI Controller'") if g in i][0]
port = [i for i in enum("Msvm_SyntheticEthernetPortSettingData", "InstanceID LIKE 'Microsoft:%s%%'" % g)][0]
disks = enum("Msvm_StorageAllocationSettingData", "ResourceSubType = 'Microsoft:Hyper-V:Virtual CD/DVD Disk'")
def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
def add(cls, props):
    inst = '<INSTANCE CLASSNAME="%s">%s</INSTANCE>' % (cls, "".join(
        '<PROPERTY NAME="%s" TYPE="string"><VALUE>%s</VALUE></PROPERTY>' % (k, esc(v)) for k, v in props))
    vsms = V2 + "Msvm_VirtualSystemManagementService"
    body = ('<p:AddResourceSettings_INPUT xmlns:p="%s"><p:AffectedConfiguration>'
            '<a:Address>x</a:Address><a:ReferenceParameters><w:ResourceURI>%sMsvm_VirtualSystemSettingData'
            '</w:ResourceURI><w:SelectorSet><w:Selector Name="InstanceID">Microsoft:%s</w:Selector>'
            '</w:SelectorSet></a:ReferenceParameters></p:AffectedConfiguration>'
            '<p:ResourceSettings>%s</p:ResourceSettings></p:AddResourceSettings_INPUT>'
            % (vsms, V2, g, esc(inst)))
    sel = ('<w:SelectorSet><w:Selector Name="CreationClassName">Msvm_VirtualSystemManagementService'
           '</w:Selector><w:Selector Name="Name">vmms</w:Selector><w:Selector Name="SystemCreationClassName">'
           'Msvm_ComputerSystem</w:Selector><w:Selector Name="SystemName">%s</w:Selector></w:SelectorSet>' % host)
    r = post(vsms + "/AddResourceSettings", vsms, body, sel)
    m = re.search(r"<s:Text[^>]*>([^<]*)</s:Text>", r)
    return m.group(1) if m else "accepted"
drive = "Microsoft:Hyper-V:Synthetic DVD Drive"
print(len(disks))
print(add("Msvm_ResourceAllocationSettingData", [("ResourceType", "16"), ("ResourceSubType", drive),
      ("Parent", path("Msvm_SyntheticEthernetPortSettingData", port)), ("AddressOnParent", "1")]))
print(add("Msvm_StorageAllocationSettingData", [("ResourceType", "31"),
      ("ResourceSubType", "Microsoft:Hyper-V:Virtual CD/DVD Disk"),
      ("Parent", path("Msvm_ResourceAllocationSettingData", ctrl)), ("HostResource", "C:\\x.iso")]))
print(add("Msvm_ResourceAllocationSettingData", [("ResourceType", "31"), ("ResourceSubType", drive),
      ("Parent", path("Msvm_ResourceAllocationSettingData", ctrl)), ("AddressOnParent", "1")]))
print(add("Msvm_ResourceAllocationSettingData", [("ResourceType", "16"), ("ResourceSubType", drive),
      ("Parent", path("Msvm_ResourceAllocationSettingData", ctrl)), ("AddressOnParent", "0")]))
PY
)
if [ "$(echo "$out" | sed -n 1p)" = 2 ] &&
    echo "$out" | sed -n 2p | grep -q "^Parent must be the path of a SCSI or IDE controller, not .*Msvm_SyntheticEthernetPortSettingData" &&
    [ "$(echo "$out" | sed -n 3p)" = "the Parent of a CD/DVD disk must be a DVD drive, not Microsoft:Hyper-V:Synthetic SCSI Controller" ] &&
    [ "$(echo "$out" | sed -n 4p)" = "ResourceType 31 does not match ResourceSubType Microsoft:Hyper-V:Synthetic DVD Drive (expected 16)" ] &&
    [ "$(echo "$out" | sed -n 5p)" = "location 0 of the controller is in use" ]; then
    ok "simulator: 2 CD/DVD disks by WS-Man Enumerate; refuses a drive on a network adapter, a disk on a controller, a wrong ResourceType, a taken location"
else not_ok "simulator checks: $out"; fi

finish
