#!/bin/sh
# vsphere-image.sh: the appliance image on vSphere, against vcsim. Two small
# ISO 9660 images made here with xorriso; appliances of two tenants on two
# hosts, one host with an image-store datastore of its own. Checked with govc
# and on the simulator's datastore directories: the ISO uploaded once per
# datastore (byte for byte), a CD-ROM holding it in every appliance, the boot
# order, the marker's image id; a second run changes and uploads nothing; a
# new image is one upload per datastore and one set-image per appliance.
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$top_srcdir/tests/vcsim-lib.sh"

require_provider vsphere
require_cmd xorriso "xorriso not found (to make test ISO images)"
nx_tmpdir
trap 'vcsim_stop_all; [ -n "$NX_KEEP" ] || rm -rf "$NX_TMP"' EXIT INT TERM
vcsim_require
vcsim_start vcsim -standalone-host 1 -cluster 1 -host 1 -trace -trace-file "$NX_TMP/trace" ||
    { not_ok "vcsim starts"; finish; exit 1; }
vcsim_credentials
ND() { "$NETEXT_DEPLOY" --credentials "$NX_TMP/credentials" --cacert "$NX_TMP/vcsim-cert.pem" "$@"; }
FOLDER=/DC0/vm/Cloud_Connect_Replication
H1=/DC0/host/DC0_H0/DC0_H0
H2=/DC0/host/DC0_C0/DC0_C0_H0

# ---- two images, one inventory ---------------------------------------------------
mkiso() { # mkiso FILE TEXT
    rm -rf "$NX_TMP/isodir"
    mkdir -p "$NX_TMP/isodir/boot"
    printf '%s\n' "$2" >"$NX_TMP/isodir/boot/version"
    head -c 300000 /dev/urandom >"$NX_TMP/isodir/boot/filler"
    xorriso -as mkisofs -quiet -V NETEXT -o "$1" "$NX_TMP/isodir" >/dev/null 2>&1
}
mkiso "$NX_TMP/a.iso" "image A" && mkiso "$NX_TMP/b.iso" "image B"
check "two ISO 9660 images (CD001 at 32769)" \
    sh -c "dd if='$NX_TMP/a.iso' bs=1 skip=32769 count=5 2>/dev/null | grep -q CD001"
ID_A=$(sha256sum "$NX_TMP/a.iso" | cut -c1-16)
ID_B=$(sha256sum "$NX_TMP/b.iso" | cut -c1-16)
ISO_A=netext-appliance-$ID_A.iso
ISO_B=netext-appliance-$ID_B.iso
{
    govc dvs.portgroup.add -dvs DVS0 -vlan 101 dv-101 &&
        mkdir -p "$NX_TMP/ds-isos" &&
        govc datastore.create -type local -name isos -path "$NX_TMP/ds-isos" $H2 &&
        govc folder.create -pod /DC0/datastore/pod1 &&
        mkdir -p "$NX_TMP/ds-pod" &&
        govc datastore.create -type local -name ds-pod -path "$NX_TMP/ds-pod" $H2 &&
        govc object.mv /DC0/datastore/ds-pod /DC0/datastore/pod1
} >"$NX_TMP/setup.log" 2>&1
check "inventory: portgroup dv-101, datastore 'isos' on DC0_C0_H0, a StoragePod" test $? = 0
# where the simulator keeps LocalDS_0's files
LOCALDS=$(govc datastore.info -json LocalDS_0 | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["Datastores"][0]["Info"]["Url"])')
check "LocalDS_0 is a local directory ($LOCALDS)" test -d "$LOCALDS"

plan() { # plan FILE [ESX2-IMAGE-STORE]
    cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">
  <gateway address="cc-gateway.sp.example.com"/>
  <host name="esx1" uri="$VCSIM_URI" target="DC0_H0" production-network="VM Network"/>
  <host name="esx2" uri="$VCSIM_URI" target="DC0_C0_H0" production-network="VM Network" image-store="${2:-isos}"/>
  <hardware-plan name="p1" host="esx1"><network name="web" vlan="101"/></hardware-plan>
  <hardware-plan name="p2" host="esx2"><network name="app" vlan="101"/></hardware-plan>
  <hardware-plan name="q1" host="esx1"><network name="web" vlan="102"/></hardware-plan>
  <hardware-plan name="q2" host="esx2"><network name="app" vlan="102"/></hardware-plan>
  <tenant name="acme"><subscribe plan="p1"/><subscribe plan="p2"/></tenant>
  <tenant name="bigco"><subscribe plan="q1"/><subscribe plan="q2"/></tenant>
</netext-plan>
EOF
}
govc dvs.portgroup.add -dvs DVS0 -vlan 102 dv-102 >/dev/null 2>&1
plan "$NX_TMP/plan.xml"
nvms() { govc find / -type m | wc -l; }
before=$(nvms)
# the SOAP methods vcsim saw since the trace was emptied
methods() { vcsim_trace_methods "$NX_TMP/trace"; }
count() { # count METHOD [FILE]: FILE is a saved `methods` output
    if [ -n "$2" ]; then cat "$2"; else methods; fi | awk -v m="$1" '$2 == m {n = $1} END {print n + 0}'
}

# ---- refusals before any change ---------------------------------------------------
plan "$NX_TMP/nostore.xml" nope
expect_exit 65 "image-store naming no datastore refused" ND --image "$NX_TMP/a.iso" batch "$NX_TMP/nostore.xml"
check "image-store: the error names it" grep -q "image-store.*'nope' not found on host 'DC0_C0_H0'" "$NX_TMP/err"
plan "$NX_TMP/podstore.xml" ds-pod
expect_exit 65 "image-store in a StoragePod refused" ND --image "$NX_TMP/a.iso" batch "$NX_TMP/podstore.xml"
check "image-store in a pod: the error names both" grep -q "image-store.*ds-pod.*pod1" "$NX_TMP/err"
check "refusals: zero VMs created, nothing uploaded" \
    sh -c "test $(nvms) = $before && ! ls '$NX_TMP/ds-isos' '$LOCALDS' | grep -q netext-deploy"

# ---- dry run ---------------------------------------------------------------------------
expect_exit 0 "dry run with --image" ND --dry-run --image "$NX_TMP/a.iso" -t acme subscribe "$NX_TMP/plan.xml"
check "dry run: the creates name the image" test "$(grep -c "create.*image $ISO_A" "$NX_TMP/out")" = 2
check "dry run: nothing created or uploaded" \
    sh -c "test $(nvms) = $before && ! test -e '$LOCALDS/netext-deploy' && ! test -e '$NX_TMP/ds-isos/netext-deploy'"

# ---- first run -------------------------------------------------------------------------
: >"$NX_TMP/trace"
expect_exit 0 "subscribe with --image (4 appliances, 2 image datastores)" \
    ND -vv --image "$NX_TMP/a.iso" batch "$NX_TMP/plan.xml"
cp "$NX_TMP/err" "$NX_TMP/run1.err"
methods >"$NX_TMP/run1.methods"
total=$(vcsim_trace_count "$NX_TMP/trace")
check "4 appliances made" test "$(govc ls $FOLDER | wc -l)" = 4
check "two uploads, one per datastore" test "$(grep -c 'vsphere: uploaded ' "$NX_TMP/run1.err")" = 2
check "the summary counts 2 checks and 2 uploads" \
    grep -q "appliance image: 2 datastore checks, 2 uploads ($(stat -c %s "$NX_TMP/a.iso" | awk '{print $1 * 2}') bytes" "$NX_TMP/run1.err"
check "LocalDS_0 holds the image byte for byte" cmp -s "$NX_TMP/a.iso" "$LOCALDS/netext-deploy/$ISO_A"
check "isos holds the image byte for byte" cmp -s "$NX_TMP/a.iso" "$NX_TMP/ds-isos/netext-deploy/$ISO_A"
SIZE_A=$(stat -c %s "$NX_TMP/a.iso")
check "govc datastore.ls: the file with its size" \
    sh -c "govc datastore.ls -l -ds isos -json netext-deploy | grep -q '\"FileSize\": *$SIZE_A,'"
M1=$NX_TMP/run1.methods
check "one CreateVM_Task per appliance, no ReconfigVM_Task" \
    test "$(count CreateVM_Task $M1):$(count ReconfigVM_Task $M1)" = 4:0
check "one MakeDirectory per upload" test "$(count MakeDirectory $M1)" = 2
# requests per appliance beyond login, inventory, folder and pools, image directories
setup=$(($(count RetrieveServiceContent $M1) + $(count Login $M1) + $(count CreateContainerView $M1) + 1 + \
    $(count CreateFolder $M1) + $(count CreateResourcePool $M1) + $(count MakeDirectory $M1)))
rpa=$(awk "BEGIN{printf \"%.2f\", ($total - $setup) / 4}")
echo "# SOAP requests per new appliance with an image: $rpa ($total in all)"
check "<= 3 SOAP requests per new appliance with an image ($rpa)" awk "BEGIN{exit !($rpa <= 3)}"

# the VMs: CD-ROM, boot order, marker
cdrom() { # cdrom VM: "file startConnected controller-type" of its CD-ROM drives
    govc object.collect -json "$1" config.hardware.device >"$NX_TMP/dev.json" &&
        "$PY" - "$NX_TMP/dev.json" <<'EOF'
import json, sys
devs = json.load(open(sys.argv[1]))[0]["Val"]["VirtualDevice"]
by_key = {d["Key"]: d for d in devs}
for d in devs:
    b = d.get("Backing") or {}
    if "FileName" in b and "Connectable" in d and d.get("UnitNumber") is not None and "MacAddress" not in d:
        ctl = by_key.get(d.get("ControllerKey"), {})
        ide = "ide" if "BusNumber" in ctl and "Device" in ctl and ctl.get("Key") in (200, 201) else "other"
        print(b["FileName"], str(d["Connectable"]["StartConnected"]).lower(), ide)
EOF
}
for vm in netext-acme-esx1 netext-acme-esx2 netext-bigco-esx1 netext-bigco-esx2; do
    case $vm in *esx1) ds=LocalDS_0 ;; *) ds=isos ;; esac
    check "$vm: one CD-ROM on IDE with [$ds] netext-deploy/$ISO_A, connected at power-on" \
        test "$(cdrom $FOLDER/$vm)" = "[$ds] netext-deploy/$ISO_A true ide"
    check "$vm: marker ends in image=$ID_A" sh -c "govc vm.info -e $FOLDER/$vm | grep -q 'netext-deploy.marker:.* image=$ID_A\$'"
done
check "boot order: the CD-ROM" \
    sh -c "govc object.collect -dump $FOLDER/netext-acme-esx1 config.bootOptions | grep -q VirtualMachineBootOptionsBootableCdromDevice"
check "the appliances run" test "$(govc object.collect -s $FOLDER/netext-acme-esx2 runtime.powerState)" = poweredOn

# ---- second run: nothing changes, nothing is uploaded -----------------------------------
: >"$NX_TMP/trace"
ND -vv --json --image "$NX_TMP/a.iso" batch "$NX_TMP/plan.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
check "second run: up to date, 0 changes" \
    sh -c "grep -q '\"result\":\"up-to-date\"' '$NX_TMP/json' && grep -q '\"changes\":0' '$NX_TMP/json'"
methods >"$NX_TMP/run2.methods"
check "second run: no changing SOAP call" \
    sh -c "! grep -E 'CreateVM_Task|ReconfigVM_Task|MakeDirectory|PowerOn|Destroy' '$NX_TMP/run2.methods'"
check "second run: no upload, no check (nothing to stage)" \
    sh -c "! grep -q 'uploading\|appliance image: .* checks' '$NX_TMP/err'"

# ---- status and dry run with a new image ---------------------------------------------
ND --image "$NX_TMP/b.iso" -t acme status "$NX_TMP/plan.xml" >"$NX_TMP/status" 2>"$NX_TMP/err"
check "status: acme's 2 appliances 'image outdated'" test "$(grep -c 'image outdated' "$NX_TMP/status")" = 2
expect_exit 0 "dry run with a new image" ND --dry-run --image "$NX_TMP/b.iso" -t acme subscribe "$NX_TMP/plan.xml"
check "dry run: one set-image per appliance, nothing else" \
    sh -c "test \$(grep -c 'set-image' '$NX_TMP/out') = 2 && ! grep -q 'create\|add-vnic\|set-payload' '$NX_TMP/out'"
check "dry run: set-image names the new image and the old id" grep -q "set-image.*$ISO_B (was $ID_A)" "$NX_TMP/out"
check "dry run: nothing uploaded" sh -c "! test -e '$LOCALDS/netext-deploy/$ISO_B'"

# ---- the new image ------------------------------------------------------------------------
: >"$NX_TMP/trace"
expect_exit 0 "subscribe with a new image" ND -vv --image "$NX_TMP/b.iso" batch "$NX_TMP/plan.xml"
cp "$NX_TMP/err" "$NX_TMP/run3.err"
methods >"$NX_TMP/run3.methods"
M3=$NX_TMP/run3.methods
check "new image: two uploads" test "$(grep -c 'vsphere: uploaded ' "$NX_TMP/run3.err")" = 2
check "new image: one ReconfigVM_Task per appliance, nothing else changed" \
    test "$(count ReconfigVM_Task $M3):$(count CreateVM_Task $M3):$(count PowerOnVM_Task $M3)" = 4:0:0
check "new image: both datastores hold it" \
    sh -c "cmp -s '$NX_TMP/b.iso' '$LOCALDS/netext-deploy/$ISO_B' && cmp -s '$NX_TMP/b.iso' '$NX_TMP/ds-isos/netext-deploy/$ISO_B'"
check "new image: the old one stays" test -f "$LOCALDS/netext-deploy/$ISO_A"
for vm in netext-acme-esx1 netext-bigco-esx2; do
    case $vm in *esx1) ds=LocalDS_0 ;; *) ds=isos ;; esac
    check "$vm: its CD-ROM (still one) holds $ISO_B" \
        test "$(cdrom $FOLDER/$vm)" = "[$ds] netext-deploy/$ISO_B true ide"
    check "$vm: marker image=$ID_B" sh -c "govc vm.info -e $FOLDER/$vm | grep -q 'netext-deploy.marker:.* image=$ID_B'"
done
check "new image: the appliances still run (it boots at the next start)" \
    test "$(govc object.collect -s $FOLDER/netext-acme-esx1 runtime.powerState)" = poweredOn
ND --json --image "$NX_TMP/b.iso" batch "$NX_TMP/plan.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
check "new image: next run up to date" grep -q '"changes":0' "$NX_TMP/json"

# ---- repairs: a truncated store file, a drive changed by hand ----------------------------
# (a store is checked when an appliance there needs the image: acme-esx1 here)
head -c 1000 "$NX_TMP/b.iso" >"$LOCALDS/netext-deploy/$ISO_B"
govc device.cdrom.insert -vm $FOLDER/netext-acme-esx1 -device "$(govc device.ls -vm $FOLDER/netext-acme-esx1 | awk '/VirtualCdrom/ {print $1}')" \
    -ds LocalDS_0 "netext-deploy/$ISO_A" >/dev/null 2>&1
check "repairs: a drive changed by hand (govc device.cdrom.insert)" \
    test "$(cdrom $FOLDER/netext-acme-esx1)" = "[LocalDS_0] netext-deploy/$ISO_A true ide"
: >"$NX_TMP/trace"
ND -v --json --image "$NX_TMP/b.iso" batch "$NX_TMP/plan.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
methods >"$NX_TMP/run4.methods"
check "repairs: the store file of another size is uploaded again (one upload)" \
    sh -c "test \$(grep -c 'vsphere: uploaded ' '$NX_TMP/err') = 1 && cmp -s '$NX_TMP/b.iso' '$LOCALDS/netext-deploy/$ISO_B'"
check "repairs: the drive changed by hand gets the image back (one ReconfigVM_Task)" \
    test "$(count ReconfigVM_Task $NX_TMP/run4.methods):$(cdrom $FOLDER/netext-acme-esx1)" = "1:[LocalDS_0] netext-deploy/$ISO_B true ide"

# ---- no image configured: images are left alone ------------------------------------------
: >"$NX_TMP/trace"
ND --json --no-image batch "$NX_TMP/plan.xml" >"$NX_TMP/json" 2>"$NX_TMP/err"
check "--no-image: 0 changes, the drives keep their image" \
    test "$(grep -c '"changes":0' "$NX_TMP/json"):$(count ReconfigVM_Task)" = 1:0

[ -z "$NX_PAUSE" ] || { echo "# paused: GOVC_URL=$GOVC_URL"; sleep "$NX_PAUSE"; }
expect_exit 0 "unsubscribe acme" ND -t acme unsubscribe "$NX_TMP/plan.xml"
expect_exit 0 "unsubscribe bigco" ND -t bigco unsubscribe "$NX_TMP/plan.xml"
check "unsubscribe: the appliances are gone" test "$(govc ls $FOLDER | wc -l)" = 0
finish
