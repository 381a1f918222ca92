#!/usr/bin/python3
"""vsphere_check.py: independent checks of vcsim's state and trace for the fault
and crash tests (what govc and vcsim say, not what netext-deploy says).

  vsphere_check.py state PLAN VMS.json PGS.json [partial]
      VMS.json: `govc object.collect -json -type m / name runtime.powerState
      config.hardware.device config.extraConfig`; PGS.json: `govc
      object.collect -json -type DistributedVirtualPortgroup / name config.key
      config.defaultPortConfig`. Compares with the plan: every tenant has
      exactly one appliance per host of its hardware plans (found by marker),
      named netext-TENANT-HOST, powered on, with one production vNIC on the
      host's production network and one vNIC per VLAN of its plans on a
      portgroup carrying that VLAN; no two VMs share a marker or a name, no
      marker names a tenant or host that is not in the plan (orphans), and no
      netext-* VM lacks a marker (with "partial": appliances of tenants that
      are not in the plan are not looked at). Prints one line per problem and a summary;
      exit 1 on any problem.

  vsphere_check.py trace TRACE START [END]
      Counts the changing methods in vcsim's -trace-file between byte offsets
      START and END, per object: CreateVM_Task by VM name, ReconfigVM_Task,
      PowerOnVM_Task, PowerOffVM_Task and Destroy_Task by VM moref; the
      ReconfigVM_Tasks also split into :devices (vNIC changes) and :config
      (extraConfig only: the payload and marker). Prints
      JSON {"CreateVM_Task": {name: n}, "ReconfigVM_Task": {moref: n}, ...}.

  vsphere_check.py names VMS.json
      Prints JSON {moref: name}.
"""

import json
import re
import sys
import xml.etree.ElementTree as ET

NS = "{urn:netext-deploy:plan:1}"


def stream(path):
    text = open(path, encoding="utf-8").read()
    dec = json.JSONDecoder()
    i = 0
    out = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        if isinstance(obj, list):
            out.extend(obj)
        else:
            out.append(obj)


def objects(path):
    """moref -> {property: value} from govc's JSON update stream."""
    res = {}
    for u in stream(path):
        obj = u.get("Obj") or {}
        props = res.setdefault(obj.get("Value"), {})
        for c in u.get("ChangeSet") or []:
            props[c["Name"]] = c.get("Val")
    return res


def g(d, k):
    if not isinstance(d, dict):
        return None
    return d.get(k, d.get(k[0].lower() + k[1:]))


def expected(plan):
    doc = ET.parse(plan).getroot()
    hosts = {h.get("name"): h for h in doc.iter(NS + "host")}
    hplans = {p.get("name"): p for p in doc.iter(NS + "hardware-plan")}
    want = {}
    for t in doc.iter(NS + "tenant"):
        for s in t.iter(NS + "subscribe"):
            hp = hplans[s.get("plan")]
            h = hp.get("host")
            vl = want.setdefault((t.get("name"), h), {"prod": hosts[h].get("production-network"),
                                                      "vlans": set()})
            for n in hp.iter(NS + "network"):
                vl["vlans"].add(int(n.get("vlan")))
    return want


def check_state(plan, vms_path, pgs_path, partial=False):
    want = expected(plan)
    tenants = {t for t, _ in want}
    pgs = objects(pgs_path)
    pg_vlan = {}
    for ref, p in pgs.items():
        vlan = g(g(p.get("config.defaultPortConfig"), "Vlan"), "VlanId")
        pg_vlan[p.get("config.key") or ref] = (p.get("name"), vlan)
    problems = []
    seen_marker = {}
    seen_name = {}
    macs = {}
    for ref, v in objects(vms_path).items():
        name = v.get("name") or ""
        marker = None
        ec = v.get("config.extraConfig") or {}
        for opt in (g(ec, "OptionValue") or []) if isinstance(ec, dict) else ec:
            if g(opt, "Key") == "netext-deploy.marker":
                marker = g(opt, "Value")
        if marker is None:
            if name.startswith("netext-"):
                problems.append("%s (%s): an appliance name without a marker" % (name, ref))
            continue
        m = dict(kv.split("=", 1) for kv in marker.split()[1:] if "=" in kv)
        key = (m.get("tenant"), m.get("host"))
        if partial and key[0] not in tenants:
            continue
        seen_name.setdefault(name, []).append(ref)
        if key in seen_marker:
            problems.append("duplicate appliance for tenant %s host %s: %s and %s"
                            % (key[0], key[1], seen_marker[key], name))
            continue
        seen_marker[key] = "%s (%s)" % (name, ref)
        if key not in want:
            problems.append("orphan: %s (%s) is marked for tenant %s host %s, not in the plan"
                            % (name, ref, key[0], key[1]))
            continue
        w = want[key]
        if name != "netext-%s-%s" % key:
            problems.append("%s: marked for %s/%s but named otherwise" % (name, key[0], key[1]))
        if v.get("runtime.powerState") != "poweredOn":
            problems.append("%s: %s" % (name, v.get("runtime.powerState")))
        prod, vlans = 0, []
        devs = g(v.get("config.hardware.device") or {}, "VirtualDevice") or []
        for d in devs:
            mac = g(d, "MacAddress")
            if mac is None:
                continue
            if mac in macs:
                problems.append("%s: MAC %s also on %s" % (name, mac, macs[mac]))
            macs[mac] = name
            b = g(d, "Backing") or {}
            port = g(b, "Port")
            if port:
                pgname, vlan = pg_vlan.get(g(port, "PortgroupKey"), (None, None))
                vlans.append(vlan)
            elif g(b, "DeviceName") == w["prod"]:
                prod += 1
            else:
                problems.append("%s: a vNIC on %r, neither production nor a tenant VLAN"
                                % (name, g(b, "DeviceName")))
        if prod != 1:
            problems.append("%s: %d production vNICs, wanted 1" % (name, prod))
        if sorted(vlans) != sorted(w["vlans"]):
            problems.append("%s: vNICs on VLANs %s, wanted %s" % (name, sorted(vlans),
                                                                 sorted(w["vlans"])))
    for n, refs in seen_name.items():
        if len(refs) > 1:
            problems.append("name %s used by %d VMs: %s" % (n, len(refs), " ".join(refs)))
    for key in want:
        if key not in seen_marker:
            problems.append("missing: no appliance for tenant %s host %s" % key)
    for p in problems:
        print(p)
    print("state: %d appliances expected, %d found, %d problems"
          % (len(want), len(seen_marker), len(problems)))
    return 1 if problems else 0


CALL_RE = re.compile(r"<(CreateVM_Task|ReconfigVM_Task|PowerOnVM_Task|PowerOffVM_Task|Destroy_Task)"
                     r"\b[^>]*>\s*<_this[^>]*>([^<]*)</_this>(.*?)</\1>", re.S)
NAME_RE = re.compile(r"<config>\s*<name>([^<]*)</name>", re.S)


def trace(path, start, end=None):
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    text = data.replace(b"\0", b"").decode("utf-8", "replace")
    out = {m: {} for m in ("CreateVM_Task", "ReconfigVM_Task", "ReconfigVM_Task:devices",
                           "ReconfigVM_Task:config", "PowerOnVM_Task", "PowerOffVM_Task",
                           "Destroy_Task")}
    for line in text.split("\nResponse: "):
        # only the request part of each exchange
        for m in CALL_RE.finditer(line.split("Response:")[0]):
            method, this, rest = m.group(1), m.group(2), m.group(3)
            if method == "CreateVM_Task":
                n = NAME_RE.search(rest)
                k = n.group(1) if n else "?"
            else:
                k = this
            out[method][k] = out[method].get(k, 0) + 1
            if method == "ReconfigVM_Task":
                kind = method + (":devices" if "<deviceChange>" in rest else ":config")
                out[kind][k] = out[kind].get(k, 0) + 1
    print(json.dumps(out, sort_keys=True))
    return 0


def main(a):
    if a[:1] == ["state"] and len(a) in (4, 5):
        return check_state(a[1], a[2], a[3], a[4:] == ["partial"])
    if a[:1] == ["trace"] and len(a) in (3, 4):
        return trace(a[1], int(a[2]), int(a[3]) if len(a) == 4 else None)
    if a[:1] == ["names"] and len(a) == 2:
        print(json.dumps({r: v.get("name") for r, v in objects(a[1]).items()}))
        return 0
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
