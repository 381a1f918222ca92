#!/usr/bin/python3
"""hyperv_sim.py: a stateful Hyper-V WMI v2 simulator over WS-Management.

One file of about 1,700 lines, on purpose: it is one self-contained program
that the tiers start as a single script (tests/testlib.sh runs it with
Python 3 from the source tree: no package path, no install step),
and its parts (WMI paths, NTLM, CIM-XML, the state, the WMI methods, WQL,
the rendering of answers, the service, HTTP) only make sense together:
each serves one simulated Hyper-V host. They are kept apart as sections, in
that order.

Run with /usr/bin/python3 (standard library only):

    hyperv_sim.py [--port N|0] [--port-file F] [--pid-file F] [--user U]
                  [--password-file F] [--host-name H] [--switch NAME]...
                  [--vm-root PATH] [--auth basic,ntlm] [--job-polls N]
                  [--seed-vm NAME:SWITCH]... [--tls-cert PEM --tls-key PEM]
                  [--verbose]

It listens on 127.0.0.1 only (HTTPS with --tls-cert, else HTTP), on --port
(0: a free one, printed on stdout as
"PORT <n>" and written to --port-file). Clients POST SOAP 1.2 envelopes to
/wsman with HTTP Basic authentication (user from --user or HYPERV_SIM_USER,
password from --password-file or HYPERV_SIM_PASSWORD; neither is ever
logged) or NTLMv2 ([MS-NLMP]; connection-based, as HTTP.sys does for WinRM;
no signing/sealing, so clients must not ask for message encryption).
Unauthenticated requests get 401 with WWW-Authenticate: NTLM and Basic
(--auth chooses).

Test knobs, without authentication, from 127.0.0.1 only:
    POST /control  {"fail_next_job": "text", "fail_method": "AddResourceSettings",
                    "drop_vlan": true, "malformed": "truncated|garbage|html|
                    doctype|empty", "malformed_count": 1, "reject_auth": true,
                    "omit_results": true}
    GET  /state    JSON dump of VMs, ports, VLANs, KVP items, jobs, counters
Environment equivalents at start: HYPERV_SIM_DROP_VLAN=1,
HYPERV_SIM_FAIL_NEXT_JOB=text, HYPERV_SIM_MALFORMED=mode.

Sources followed (element names, namespaces, fault codes, method signatures):
  - DMTF DSP0226 WS-Management 1.x: wsman:ResourceURI, wsman:SelectorSet /
    Selector Name=, wsman:MaxEnvelopeSize, wsman:OperationTimeout,
    wsman:OptimizeEnumeration, wsman:MaxElements, wsman:EnumerationMode
    (EnumerateEPR, EnumerateObjectAndEPR), wsman:Filter Dialect=, faults
    (s:Sender / wsman:InvalidSelectors with wsman:FaultDetail
    .../faultDetail/InsufficientSelectors|UnexpectedSelectors,
    wsa:DestinationUnreachable with .../faultDetail/InvalidResourceURI,
    wsa:ActionNotSupported, wsman:EncodingLimit, wsen:CannotProcessFilter,
    wsen:InvalidEnumerationContext), the fault action
    http://schemas.dmtf.org/wbem/wsman/1/wsman/fault and the addressing
    fault action http://schemas.xmlsoap.org/ws/2004/08/addressing/fault.
  - DMTF DSP0227 WS-Management CIM binding and DSP0230 WS-CIM mapping: class
    instances as <p:Class xmlns:p=ResourceURI>, arrays as repeated elements,
    xsi:nil for NULL, Invoke as Action=ResourceURI/Method with
    <p:Method_INPUT> / <p:Method_OUTPUT>, EPR parameters (wsa:Address +
    wsa:ReferenceParameters), embedded instances.
  - WS-Enumeration (W3C member submission, 2004/09 namespace
    http://schemas.xmlsoap.org/ws/2004/09/enumeration): Enumerate /
    EnumerateResponse with EnumerationContext, Pull with MaxElements (default
    1), PullResponse with Items and EndOfSequence (the context is not
    returned once the sequence ended), Release / ReleaseResponse.
  - WS-Transfer 2004/09: Get / GetResponse.
  - Microsoft [MS-WSMV] (WS-Management Protocol Extensions for Windows
    Vista): ResourceURI prefix http://schemas.microsoft.com/wbem/wsman/1/wmi/
    <namespace>/<Class>, WQL filter dialect
    http://schemas.microsoft.com/wbem/wsman/1/WQL, the WSManFault detail
    (xmlns http://schemas.microsoft.com/wbem/wsman/1/wsmanfault, Code=,
    Message, ProviderFault) carrying the WMI error.
  - Microsoft Hyper-V WMI v2 class reference (root\\virtualization\\v2):
    Msvm_VirtualSystemManagementService.DefineSystem(SystemSettings,
    ResourceSettings[], ReferenceConfiguration -> ResultingSystem, Job),
    AddResourceSettings(AffectedConfiguration, ResourceSettings[] ->
    ResultingResourceSettings[], Job), RemoveResourceSettings(
    ResourceSettings[] REF -> Job), AddFeatureSettings(AffectedConfiguration,
    FeatureSettings[] -> ResultingFeatureSettings[], Job),
    ModifyFeatureSettings(FeatureSettings[] -> ResultingFeatureSettings[],
    Job), DestroySystem(AffectedSystem -> Job), ModifySystemSettings(
    SystemSettings -> Job), AddKvpItems / ModifyKvpItems / RemoveKvpItems(
    TargetSystem, DataItems[] -> Job); Msvm_ComputerSystem.RequestStateChange(
    RequestedState, TimeoutPeriod -> Job); return values 0, 4096 (job
    started), 32768.. vendor errors; Msvm_ConcreteJob.JobState 2..10 (4
    Running, 7 Completed, 10 Exception) with ErrorCode/ErrorDescription;
    Msvm_EthernetSwitchPortVlanSettingData OperationMode 1 = Access,
    AccessVlanId; Msvm_KvpExchangeDataItem Name/Data/Source (0: host to
    guest; Data at most 2048 bytes of UTF-16, 1024 characters).
  - Microsoft [MS-NLMP]: NEGOTIATE / CHALLENGE (with target info, so clients
    answer NTLMv2) / AUTHENTICATE, NTOWFv2 and NTProofStr; RFC 1320 (MD4).
  - Embedded instances are read as DSP0201 CIM-XML INSTANCE documents
    (CLASSNAME, PROPERTY / PROPERTY.ARRAY NAME TYPE, VALUE / VALUE.ARRAY),
    escaped text or CDATA, as Windows and libvirt's hyperv driver send them.
Simplifications: one host, no snapshots, jobs complete after --job-polls Gets
(default 1 poll in state Running), no association traversal (clients query
by InstanceID prefix instead), WQL subset: SELECT * FROM C [WHERE p op v
[AND|OR ...]] with =, !=, <>, LIKE.
"""

import argparse
import base64
import hmac
import struct
import http.server
import json
import os
import re
import ssl
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _esc

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSEN = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
NS_WSMANFAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_WSMID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WMI_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
V2_NS = "root/virtualization/v2"
V2_URI = WMI_PREFIX + V2_NS + "/"
ACT_ENUM = NS_WSEN + "/Enumerate"
ACT_PULL = NS_WSEN + "/Pull"
ACT_RELEASE = NS_WSEN + "/Release"
ACT_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
ACT_WSMAN_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ACT_WSA_FAULT = NS_WSA + "/fault"
ACT_WSEN_FAULT = NS_WSEN + "/fault"
FD = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
DIALECT_WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
DIALECT_CQL = "http://schemas.dmtf.org/wbem/cql/1/dsp0202.pdf"
DIALECT_SELECTOR = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"
KVP_MAX_DATA = 1024  # characters (2048 bytes of UTF-16)
KVP_MAX_NAME = 256

# Key properties of every class, in selector order.
KEYS = {
    "Msvm_ComputerSystem": ["CreationClassName", "Name"],
    "Msvm_VirtualSystemManagementService": [
        "CreationClassName", "Name", "SystemCreationClassName", "SystemName"],
    "Msvm_VirtualSystemManagementServiceSettingData": ["InstanceID"],
    "Msvm_VirtualSystemSettingData": ["InstanceID"],
    "Msvm_SyntheticEthernetPortSettingData": ["InstanceID"],
    "Msvm_EthernetPortAllocationSettingData": ["InstanceID"],
    "Msvm_EthernetSwitchPortVlanSettingData": ["InstanceID"],
    "Msvm_VirtualEthernetSwitch": ["CreationClassName", "Name"],
    "Msvm_KvpExchangeComponent": [
        "CreationClassName", "DeviceID", "SystemCreationClassName", "SystemName"],
    "Msvm_KvpExchangeComponentSettingData": ["InstanceID"],
    "Msvm_ConcreteJob": ["InstanceID"],
    "Msvm_ResourceAllocationSettingData": ["InstanceID"],
    "Msvm_StorageAllocationSettingData": ["InstanceID"],
    "Msvm_BootSourceSettingData": ["InstanceID"],
}

# Storage as Hyper-V documents it (Msvm_ResourceAllocationSettingData /
# Msvm_StorageAllocationSettingData ResourceType and ResourceSubType): a
# controller (ResourceType 6 SCSI, 5 IDE), a drive on it (16 DVD drive,
# Parent = the controller, AddressOnParent), a disk in the drive (31 logical
# disk, Parent = the drive, HostResource = the file).
SUB_SCSI = "Microsoft:Hyper-V:Synthetic SCSI Controller"
SUB_IDE = "Microsoft:Hyper-V:Emulated IDE Controller"
SUB_DVD_DRIVE = "Microsoft:Hyper-V:Synthetic DVD Drive"
SUB_DVD_DISK = "Microsoft:Hyper-V:Virtual CD/DVD Disk"
CONTROLLERS = {SUB_SCSI: (6, 64), SUB_IDE: (5, 2)}  # subtype -> (ResourceType, locations)
# Secure Boot templates (Set-VMFirmware -SecureBootTemplate): Microsoft Windows,
# Microsoft UEFI Certificate Authority, Open Source Shielded VM
SB_WINDOWS = "1734c6e8-3154-4dda-ba5f-a874cc483422"
SB_UEFI_CA = "272e7447-90a4-4563-a4b9-8e4ab00526ce"
SB_TEMPLATES = {SB_WINDOWS, SB_UEFI_CA, "4292ae2b-ee2c-42b5-a969-dd8f8689f6f3"}

# Numeric and boolean properties (everything else is a string).
INTS = {"EnabledState", "RequestedState", "HealthState", "ResourceType", "BootSourceType",
        "OperationMode", "AccessVlanId", "NativeVlanId", "JobState",
        "ErrorCode", "PercentComplete", "Source", "JobType"}
BOOLS = {"StaticMacAddress", "SecureBootEnabled"}


def new_guid():
    return str(uuid.uuid4()).upper()


class SimError(Exception):
    """A SOAP fault to send back."""

    def __init__(self, code, subcode, reason, detail=None, action=ACT_WSMAN_FAULT,
                 wmi_code=None, status=500):
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason
        self.detail, self.action, self.wmi_code = detail, action, wmi_code
        self.status = status


def fault_unknown_class(uri):
    return SimError("s:Sender", "wsa:DestinationUnreachable",
                    "The WS-Management service cannot process the request because "
                    "the resource URI is not valid: %s" % uri, FD + "InvalidResourceURI",
                    action=ACT_WSA_FAULT, wmi_code=2150858778)


def fault_not_found():
    return SimError("s:Sender", "wsa:DestinationUnreachable",
                    "No instance found with the given selectors.", None,
                    action=ACT_WSA_FAULT, wmi_code=2150859002)


def fault_selectors(detail, reason):
    return SimError("s:Sender", "wsman:InvalidSelectors", reason, FD + detail,
                    wmi_code=2150858843)


def fault_param(reason):
    return SimError("s:Sender", "wsman:InvalidParameter", reason, FD + "InvalidValue",
                    wmi_code=2150858809)


# ---------------------------------------------------------------- WMI paths --
def wmi_path(host, cls, inst):
    """WMI object path, as Hyper-V stores it in Parent / HostResource."""
    parts = []
    for k in KEYS[cls]:
        v = str(inst[k]).replace("\\", "\\\\").replace('"', '\\"')
        parts.append('%s="%s"' % (k, v))
    return "\\\\%s\\%s:%s.%s" % (host, V2_NS.replace("/", "\\"), cls, ",".join(parts))


def parse_wmi_path(path):
    m = re.match(r'^(?:\\\\[^\\]+\\[^:]+:)?(\w+)\.(.*)$', path or "")
    if not m:
        return None, {}
    keys = {}
    for km in re.finditer(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)):
        keys[km.group(1)] = re.sub(r'\\(.)', r'\1', km.group(2))
    return m.group(1), keys



# --------------------------------------------------------------------- NTLM --
# [MS-NLMP] NTLMv2 server side, enough to authenticate a connection the way
# HTTP.sys does for WinRM (no signing or sealing). MD4 is not in every
# OpenSSL build, so it is here (RFC 1320).
def md4(data):
    def f(x, y, z): return (x & y) | (~x & z)
    def g(x, y, z): return (x & y) | (x & z) | (y & z)
    def h(x, y, z): return x ^ y ^ z
    def rol(v, n): v &= 0xFFFFFFFF; return ((v << n) | (v >> (32 - n))) & 0xFFFFFFFF
    msg = bytearray(data) + b"\x80"
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", (len(data) * 8) & 0xFFFFFFFFFFFFFFFF)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", bytes(msg[off:off + 64]))
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):
            k, sft = i, (3, 7, 11, 19)[i % 4]
            if i % 4 == 0: a = rol(a + f(b, c, d) + x[k], sft)
            elif i % 4 == 1: d = rol(d + f(a, b, c) + x[k], sft)
            elif i % 4 == 2: c = rol(c + f(d, a, b) + x[k], sft)
            else: b = rol(b + f(c, d, a) + x[k], sft)
        for i in range(16):
            k, sft = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            if i % 4 == 0: a = rol(a + g(b, c, d) + x[k] + 0x5A827999, sft)
            elif i % 4 == 1: d = rol(d + g(a, b, c) + x[k] + 0x5A827999, sft)
            elif i % 4 == 2: c = rol(c + g(d, a, b) + x[k] + 0x5A827999, sft)
            else: b = rol(b + g(c, d, a) + x[k] + 0x5A827999, sft)
        for i in range(16):
            k, sft = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i], (3, 9, 11, 15)[i % 4]
            if i % 4 == 0: a = rol(a + h(b, c, d) + x[k] + 0x6ED9EBA1, sft)
            elif i % 4 == 1: d = rol(d + h(a, b, c) + x[k] + 0x6ED9EBA1, sft)
            elif i % 4 == 2: c = rol(c + h(d, a, b) + x[k] + 0x6ED9EBA1, sft)
            else: b = rol(b + h(c, d, a) + x[k] + 0x6ED9EBA1, sft)
        a, b, c, d = (a + aa) & 0xFFFFFFFF, (b + bb) & 0xFFFFFFFF, (c + cc) & 0xFFFFFFFF, (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)


NTLM_FLAGS = (0x00000001 | 0x00000004 | 0x00000200 | 0x00008000 | 0x00010000 | 0x00080000 |
              0x00800000 | 0x20000000 | 0x80000000)


def ntlm_challenge(challenge, domain, computer):
    def av(t, v):
        b = v.encode("utf-16-le")
        return struct.pack("<HH", t, len(b)) + b
    target = domain.encode("utf-16-le")
    info = av(2, domain) + av(1, computer) + av(4, domain.lower() + ".test") + \
        av(3, computer.lower() + "." + domain.lower() + ".test") + \
        struct.pack("<HHQ", 7, 8, 133000000000000000) + struct.pack("<HH", 0, 0)
    off = 56
    return (b"NTLMSSP\x00" + struct.pack("<I", 2) +
            struct.pack("<HHI", len(target), len(target), off) + struct.pack("<I", NTLM_FLAGS) +
            challenge + b"\x00" * 8 + struct.pack("<HHI", len(info), len(info), off + len(target)) +
            b"\x06\x01\xb1\x1d\x00\x00\x00\x0f" + target + info)


def ntlm_verify(msg, challenge, user, password):
    """True if msg is an NTLMv2 AUTHENTICATE for user/password (any domain)."""
    if len(msg) < 64 or msg[:8] != b"NTLMSSP\x00" or struct.unpack("<I", msg[8:12])[0] != 3:
        return False

    def field(at):
        ln, _, off = struct.unpack("<HHI", msg[at:at + 8])
        if off + ln > len(msg):
            raise ValueError("field out of range")
        return msg[off:off + ln]
    try:
        nt = field(20)
        domain = field(28).decode("utf-16-le")
        name = field(36).decode("utf-16-le")
    except (ValueError, UnicodeDecodeError, struct.error):
        return False
    if name.lower() != user.lower() or len(nt) <= 24:
        return False  # NTLMv1 and NTLM2 session responses are refused
    nthash = md4(password.encode("utf-16-le"))
    key = hmac.new(nthash, (name.upper() + domain).encode("utf-16-le"), "md5").digest()
    proof = hmac.new(key, challenge + nt[16:], "md5").digest()
    return hmac.compare_digest(proof, nt[:16])

# ------------------------------------------------------------------ CIM-XML --
def parse_embedded(text):
    """A DSP0201 INSTANCE document -> (classname, {prop: value or [values]})."""
    if text is None or "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise fault_param("embedded instance missing or not allowed")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as e:
        raise fault_param("embedded instance is not well-formed: %s" % e)
    if root.tag != "INSTANCE" or not root.get("CLASSNAME"):
        raise fault_param("embedded instance: expected <INSTANCE CLASSNAME=...>")
    props = {}
    for p in root:
        name = p.get("NAME")
        if not name:
            raise fault_param("embedded instance: PROPERTY without NAME")
        if p.tag == "PROPERTY":
            v = p.find("VALUE")
            props[name] = v.text or "" if v is not None else None
        elif p.tag == "PROPERTY.ARRAY":
            va = p.find("VALUE.ARRAY")
            props[name] = [(v.text or "") for v in va.findall("VALUE")] if va is not None else []
        else:
            raise fault_param("embedded instance: unexpected <%s>" % p.tag)
    return root.get("CLASSNAME"), props


def embedded_xml(cls, props):
    out = ['<INSTANCE CLASSNAME="%s">' % cls]
    for k, v in props.items():
        if isinstance(v, list):
            out.append('<PROPERTY.ARRAY NAME="%s" TYPE="string"><VALUE.ARRAY>%s</VALUE.ARRAY>'
                       '</PROPERTY.ARRAY>' % (k, "".join("<VALUE>%s</VALUE>" % _esc(x) for x in v)))
        else:
            t = "uint16" if k in INTS else "string"
            out.append('<PROPERTY NAME="%s" TYPE="%s"><VALUE>%s</VALUE></PROPERTY>'
                       % (k, t, _esc(str(v))))
    out.append("</INSTANCE>")
    return "".join(out)


# -------------------------------------------------------------------- state --
class State:
    def __init__(self, host, switches, vm_root, job_polls):
        self.lock = threading.RLock()
        self.host = host
        self.vm_root = vm_root
        self.job_polls = job_polls
        self.inst = {c: {} for c in KEYS}  # class -> key tuple -> props
        self.contexts = {}
        self.knobs = {"fail_next_job": None, "fail_method": None, "drop_vlan": False,
                      "malformed": None, "malformed_count": 0, "reject_auth": False,
                      "omit_results": False, "host_files": None}
        self.counters = {"requests": 0, "invokes": 0, "auth_failures": 0, "faults": 0,
                         "methods": {}}
        self.add("Msvm_ComputerSystem", {
            "CreationClassName": "Msvm_ComputerSystem", "Name": host, "ElementName": host,
            "Caption": "Hosting Computer System", "Description": "Microsoft Hosting Computer System",
            "EnabledState": 2})
        self.add("Msvm_VirtualSystemManagementService", {
            "CreationClassName": "Msvm_VirtualSystemManagementService", "Name": "vmms",
            "SystemCreationClassName": "Msvm_ComputerSystem", "SystemName": host,
            "ElementName": "Virtual Machine Management Service", "EnabledState": 2})
        self.add("Msvm_VirtualSystemManagementServiceSettingData", {
            "InstanceID": "Microsoft:" + host, "DefaultExternalDataRoot": vm_root,
            "DefaultVirtualHardDiskPath": vm_root + "\\Virtual Hard Disks"})
        for s in switches:
            self.add("Msvm_VirtualEthernetSwitch", {
                "CreationClassName": "Msvm_VirtualEthernetSwitch", "Name": new_guid(),
                "ElementName": s, "EnabledState": 2})

    def key(self, cls, props):
        return tuple(str(props.get(k, "")) for k in KEYS[cls])

    def add(self, cls, props):
        self.inst[cls][self.key(cls, props)] = props
        return props

    def find(self, cls, selectors):
        keys = KEYS[cls]
        sel = {k: v for k, v in selectors.items() if k != "__cimnamespace"}
        missing = [k for k in keys if k not in sel]
        extra = [k for k in sel if k not in keys]
        if extra:
            raise fault_selectors("UnexpectedSelectors",
                                  "The selector %s is not a key of %s." % (extra[0], cls))
        if missing:
            # Windows accepts a partial set when it still names one instance
            hits = [i for i in self.inst[cls].values()
                    if all(str(i.get(k)) == v for k, v in sel.items())]
            if len(hits) == 1 and sel:
                return hits[0]
            raise fault_selectors("InsufficientSelectors",
                                  "The selectors for %s are incomplete: %s missing."
                                  % (cls, ", ".join(missing)))
        i = self.inst[cls].get(tuple(sel[k] for k in keys))
        if i is None:
            raise fault_not_found()
        return i

    def epr_for(self, cls, props):
        return (cls, {k: str(props[k]) for k in KEYS[cls]})

    # --- jobs ---
    def new_job(self, method, effect):
        """Run effect() now (or fail on demand); returns the job's EPR."""
        jid = new_guid()
        fail = self.knobs["fail_next_job"]
        if fail and (not self.knobs["fail_method"] or self.knobs["fail_method"] == method):
            self.knobs["fail_next_job"] = None
            self.knobs["fail_method"] = None
            state, code, desc = 10, 32768, fail
        else:
            try:
                effect()
                state, code, desc = 7, 0, ""
            except SimError as e:
                state, code, desc = 10, e.wmi_code or 32768, e.reason
        job = self.add("Msvm_ConcreteJob", {
            "InstanceID": jid, "Caption": method, "Description": "%s job" % method,
            "ElementName": method, "JobState": 4, "PercentComplete": 0,
            "ErrorCode": 0, "ErrorDescription": "", "JobStatus": "Job is running",
            "_final": (state, code, desc), "_polls": self.job_polls})
        if job["_polls"] <= 0:
            self.finish_job(job)
        return self.epr_for("Msvm_ConcreteJob", job)

    def finish_job(self, job):
        state, code, desc = job["_final"]
        job["JobState"], job["ErrorCode"], job["ErrorDescription"] = state, code, desc
        job["PercentComplete"] = 100
        job["JobStatus"] = "Job completed successfully" if state == 7 else "Job failed"

    def poll_job(self, job):
        if job["JobState"] == 4:
            if job["_polls"] <= 0:
                self.finish_job(job)
            else:
                job["_polls"] -= 1

    # --- helpers for VMs ---
    def vm_by_guid(self, guid):
        i = self.inst["Msvm_ComputerSystem"].get(("Msvm_ComputerSystem", guid))
        if i is None or i.get("Caption") != "Virtual Machine":
            raise fault_param("no virtual machine %s" % guid)
        return i

    def children(self, cls, prefix):
        return [i for i in self.inst[cls].values() if str(i.get("InstanceID", "")).startswith(prefix)]

    def remove_prefix(self, prefix):
        for cls in ("Msvm_EthernetSwitchPortVlanSettingData", "Msvm_EthernetPortAllocationSettingData",
                    "Msvm_SyntheticEthernetPortSettingData", "Msvm_StorageAllocationSettingData",
                    "Msvm_ResourceAllocationSettingData", "Msvm_BootSourceSettingData"):
            for i in self.children(cls, prefix):
                del self.inst[cls][self.key(cls, i)]
                self.drop_boot_source(i["InstanceID"])

    # --- boot sources (generation 2): one per drive and network adapter,
    # appended to the VM's BootSourceOrder when the device is added ---
    def vssd_of(self, iid):
        g = re.match(r"^Microsoft:([^\\]+)", iid).group(1)
        return self.inst["Msvm_VirtualSystemSettingData"].get(("Microsoft:" + g,))

    def add_boot_source(self, device, btype, desc):
        vs = self.vssd_of(device["InstanceID"])
        if vs is None or vs.get("VirtualSystemSubType") != "Microsoft:Hyper-V:SubType:2":
            return
        bs = self.add("Msvm_BootSourceSettingData", {
            "InstanceID": device["InstanceID"] + "\\B", "BootSourceType": btype,
            "BootSourceDescription": desc, "ElementName": desc, "OtherLocation": "",
            "FirmwareDevicePath": "VMBus(%s)" % device["InstanceID"].rsplit("\\", 1)[-1]})
        vs.setdefault("BootSourceOrder", []).append(
            wmi_path(self.host, "Msvm_BootSourceSettingData", bs))

    def drop_boot_source(self, device_iid):
        bs = self.inst["Msvm_BootSourceSettingData"].pop((device_iid + "\\B",), None)
        vs = self.vssd_of(device_iid)
        if bs is not None and vs is not None:
            path = wmi_path(self.host, "Msvm_BootSourceSettingData", bs)
            vs["BootSourceOrder"] = [x for x in vs.get("BootSourceOrder", []) if x != path]

    def check_host_file(self, path):
        """Fails the job like Hyper-V when the file is not on the host (knob
        host_files: the files the SP placed; None: every file exists)."""
        files = self.knobs["host_files"]
        if files is not None and path.lower() not in [f.lower() for f in files]:
            raise SimError("", "", "Failed to add device 'Virtual CD/DVD Disk'. The system cannot "
                           "find the file specified: '%s'." % path, wmi_code=32779)

    def seed_vm(self, name, switch):
        """A VM that is not ours (no marker), running, one vNIC on switch."""
        g = new_guid()
        self.add("Msvm_ComputerSystem", {
            "CreationClassName": "Msvm_ComputerSystem", "Name": g, "ElementName": name,
            "Caption": "Virtual Machine", "Description": "Microsoft Virtual Machine",
            "EnabledState": 2, "RequestedState": 2, "HealthState": 5})
        self.add("Msvm_VirtualSystemSettingData", {
            "InstanceID": "Microsoft:" + g, "VirtualSystemIdentifier": g, "ElementName": name,
            "VirtualSystemType": "Microsoft:Hyper-V:System:Realized",
            "VirtualSystemSubType": "Microsoft:Hyper-V:SubType:2",
            "ConfigurationDataRoot": self.vm_root, "Notes": ["production VM"]})
        sw = [i for i in self.inst["Msvm_VirtualEthernetSwitch"].values() if i["ElementName"] == switch]
        if not sw:
            raise SystemExit("--seed-vm: no switch named %s" % switch)
        port = self.add("Msvm_SyntheticEthernetPortSettingData", {
            "InstanceID": "Microsoft:%s\\%s" % (g, new_guid()), "ElementName": "Network Adapter",
            "ResourceType": 10, "ResourceSubType": "Microsoft:Hyper-V:Synthetic Ethernet Port",
            "Address": "00155D%06X" % (uuid.uuid4().int & 0xFFFFFF), "StaticMacAddress": False})
        self.add("Msvm_EthernetPortAllocationSettingData", {
            "InstanceID": port["InstanceID"] + "\\C", "ResourceType": 33,
            "ResourceSubType": "Microsoft:Hyper-V:Ethernet Connection",
            "Parent": wmi_path(self.host, "Msvm_SyntheticEthernetPortSettingData", port),
            "HostResource": [wmi_path(self.host, "Msvm_VirtualEthernetSwitch", sw[0])],
            "EnabledState": 2})

    def dump(self):
        out = {"vms": [], "counters": dict(self.counters), "switches": {}}
        for sw in self.inst["Msvm_VirtualEthernetSwitch"].values():
            out["switches"][sw["Name"]] = sw["ElementName"]
        for vm in self.inst["Msvm_ComputerSystem"].values():
            if vm.get("Caption") != "Virtual Machine":
                continue
            g = vm["Name"]
            vssd = self.inst["Msvm_VirtualSystemSettingData"].get(("Microsoft:" + g,), {})
            ports = []
            for p in self.children("Msvm_SyntheticEthernetPortSettingData", "Microsoft:" + g + "\\"):
                d = {"mac": p.get("Address"), "static": p.get("StaticMacAddress"),
                     "switch": None, "vlan": None}
                for a in self.children("Msvm_EthernetPortAllocationSettingData", p["InstanceID"] + "\\"):
                    hr = a.get("HostResource") or []
                    if hr:
                        _, k = parse_wmi_path(hr[0])
                        d["switch"] = out["switches"].get(k.get("Name"))
                    for v in self.children("Msvm_EthernetSwitchPortVlanSettingData",
                                           a["InstanceID"] + "\\"):
                        d["vlan"] = v.get("AccessVlanId")
                        d["vlan_mode"] = v.get("OperationMode")
                ports.append(d)
            kvp = self.inst["Msvm_KvpExchangeComponentSettingData"].get(("Microsoft:" + g + "\\KVP",), {})
            items = {}
            for x in kvp.get("HostExchangeItems", []):
                _, pr = parse_embedded(x)
                items[pr.get("Name")] = pr.get("Data")
            ctrls, dvds = [], []
            for r in self.children("Msvm_ResourceAllocationSettingData", "Microsoft:" + g + "\\"):
                if r.get("ResourceSubType") in CONTROLLERS:
                    ctrls.append(r["ResourceSubType"])
                elif r.get("ResourceSubType") == SUB_DVD_DRIVE:
                    pcls, pk = parse_wmi_path(r.get("Parent"))
                    ctrl = self.inst["Msvm_ResourceAllocationSettingData"].get((pk.get("InstanceID"),), {})
                    disk = [d for d in self.inst["Msvm_StorageAllocationSettingData"].values()
                            if parse_wmi_path(d.get("Parent"))[1].get("InstanceID") == r["InstanceID"]]
                    dvds.append({"controller": ctrl.get("ResourceSubType"),
                                 "address": r.get("AddressOnParent"),
                                 "path": (disk[0].get("HostResource") or [None])[0] if disk else None})
            boot = []
            for b in vssd.get("BootSourceOrder", []):
                _, k = parse_wmi_path(b)
                bs = self.inst["Msvm_BootSourceSettingData"].get((k.get("InstanceID"),), {})
                boot.append(bs.get("BootSourceDescription"))
            out["vms"].append({
                "controllers": ctrls, "dvd": dvds, "boot": boot,
                "secure_boot": vssd.get("SecureBootEnabled"),
                "secure_boot_template": vssd.get("SecureBootTemplateId"),
                "guid": g, "name": vm.get("ElementName"), "state": vm.get("EnabledState"),
                "notes": vssd.get("Notes"), "subtype": vssd.get("VirtualSystemSubType"),
                "config_root": vssd.get("ConfigurationDataRoot"),
                "snapshot_root": vssd.get("SnapshotDataRoot"),
                "swap_root": vssd.get("SwapFileDataRoot"), "nics": ports, "kvp": items})
        out["jobs"] = [{"method": j["Caption"], "state": j["JobState"], "error": j["ErrorDescription"]}
                       for j in self.inst["Msvm_ConcreteJob"].values()]
        return out


# ------------------------------------------------------------------ methods --
class Methods:
    """Invoke handlers: (state, instance, params) -> (return value, outputs).

    params: name -> list of values; a value is a str, or ("EPR", cls, selectors).
    outputs: list of (name, value) where value is str/int or ("EPR", cls, sel)."""

    def __init__(self, st):
        self.st = st

    def one(self, params, name, required=True):
        v = params.get(name) or []
        if not v:
            if required:
                raise fault_param("missing parameter %s" % name)
            return None
        return v[0]

    def epr_instance(self, v, cls_expected):
        if not isinstance(v, tuple):
            raise fault_param("expected an endpoint reference")
        _, cls, sel = v
        if cls not in KEYS:
            raise fault_unknown_class(cls)
        if cls_expected and cls not in cls_expected:
            raise fault_param("reference to %s where %s was expected" % (cls, "/".join(cls_expected)))
        return cls, self.st.find(cls, sel)

    def job(self, method, effect, outputs=None):
        epr = self.st.new_job(method, effect)
        return 4096, (outputs or []) + [("Job", ("EPR",) + epr)]

    # Msvm_VirtualSystemManagementService
    def DefineSystem(self, inst, params):
        st = self.st
        cls, ss = parse_embedded(self.one(params, "SystemSettings"))
        if cls != "Msvm_VirtualSystemSettingData":
            raise fault_param("SystemSettings must be Msvm_VirtualSystemSettingData, not %s" % cls)
        name = ss.get("ElementName") or "New Virtual Machine"
        guid = new_guid()
        sub = ss.get("VirtualSystemSubType") or "Microsoft:Hyper-V:SubType:1"
        if sub not in ("Microsoft:Hyper-V:SubType:1", "Microsoft:Hyper-V:SubType:2"):
            raise fault_param("VirtualSystemSubType %s is not supported" % sub)
        # resource settings of the new VM: controllers only in this simulator
        # (a generation 1 VM also gets its two IDE controllers)
        extra = []
        for r in params.get("ResourceSettings", []):
            rcls, rp = parse_embedded(r)
            if rcls != "Msvm_ResourceAllocationSettingData" or \
                    rp.get("ResourceSubType") not in CONTROLLERS:
                raise fault_param("DefineSystem: resource %s %s is not supported here"
                                  % (rcls, rp.get("ResourceSubType")))
            if rp["ResourceSubType"] == SUB_IDE:
                raise fault_param("IDE controllers cannot be added")
            self._check_type(rp, CONTROLLERS[rp["ResourceSubType"]][0])
            extra.append(rp["ResourceSubType"])
        if sub == "Microsoft:Hyper-V:SubType:1":
            extra = [SUB_IDE, SUB_IDE] + extra
        root = ss.get("ConfigurationDataRoot") or st.vm_root
        if not re.match(r"^[A-Za-z]:\\", root):
            return 32773, []  # invalid parameter
        notes = ss.get("Notes") or []
        if isinstance(notes, str):
            notes = [notes]
        vm = {"CreationClassName": "Msvm_ComputerSystem", "Name": guid, "ElementName": name,
              "Caption": "Virtual Machine", "Description": "Microsoft Virtual Machine",
              "EnabledState": 3, "RequestedState": 5, "HealthState": 5}

        def effect():
            st.add("Msvm_ComputerSystem", vm)
            st.add("Msvm_VirtualSystemSettingData", {
                "InstanceID": "Microsoft:" + guid, "VirtualSystemIdentifier": guid,
                "ElementName": name, "VirtualSystemType": "Microsoft:Hyper-V:System:Realized",
                "VirtualSystemSubType": sub, "ConfigurationDataRoot": root,
                "ConfigurationFile": root + "\\Virtual Machines\\" + guid + ".vmcx",
                "SnapshotDataRoot": ss.get("SnapshotDataRoot") or root,
                "SwapFileDataRoot": ss.get("SwapFileDataRoot") or root,
                "SuspendDataRoot": ss.get("SuspendDataRoot") or root,
                "LogDataRoot": ss.get("LogDataRoot") or root, "Notes": notes,
                **({"BootSourceOrder": [], "SecureBootEnabled": True,
                    "SecureBootTemplateId": SB_WINDOWS}
                   if sub == "Microsoft:Hyper-V:SubType:2" else {})})
            for i, ctrl in enumerate(extra):
                st.add("Msvm_ResourceAllocationSettingData", {
                    "InstanceID": "Microsoft:%s\\%s" % (guid, new_guid()), "ResourceSubType": ctrl,
                    "ResourceType": CONTROLLERS[ctrl][0], "Address": str(i) if ctrl == SUB_IDE else "",
                    "ElementName": "IDE Controller" if ctrl == SUB_IDE else "SCSI Controller"})
            st.add("Msvm_KvpExchangeComponent", {
                "CreationClassName": "Msvm_KvpExchangeComponent",
                "DeviceID": "Microsoft:" + guid + "\\KVP", "SystemCreationClassName": "Msvm_ComputerSystem",
                "SystemName": guid, "ElementName": "Key-Value Pair Exchange", "EnabledState": 2,
                "GuestIntrinsicExchangeItems": []})
            st.add("Msvm_KvpExchangeComponentSettingData", {
                "InstanceID": "Microsoft:" + guid + "\\KVP", "ElementName": "Key-Value Pair Exchange",
                "HostExchangeItems": [], "HostOnlyItems": []})

        rv, out = self.job("DefineSystem", effect)
        if ("Msvm_ComputerSystem", guid) in st.inst["Msvm_ComputerSystem"] and \
                not st.knobs["omit_results"]:
            out.insert(0, ("ResultingSystem", ("EPR",) + st.epr_for("Msvm_ComputerSystem", vm)))
        return rv, out

    def DestroySystem(self, inst, params):
        st = self.st
        _, vm = self.epr_instance(self.one(params, "AffectedSystem"), ["Msvm_ComputerSystem"])
        if vm.get("Caption") != "Virtual Machine":
            raise fault_param("AffectedSystem is not a virtual machine")
        g = vm["Name"]

        def effect():
            if vm["EnabledState"] != 3:
                raise SimError("", "", "The virtual machine must be turned off to be deleted.",
                               wmi_code=32775)
            st.remove_prefix("Microsoft:" + g + "\\")
            for cls in ("Msvm_VirtualSystemSettingData", "Msvm_KvpExchangeComponentSettingData",
                        "Msvm_KvpExchangeComponent"):
                for k, i in list(st.inst[cls].items()):
                    if str(i.get("InstanceID", i.get("SystemName"))).startswith("Microsoft:" + g) \
                            or i.get("SystemName") == g:
                        del st.inst[cls][k]
            del st.inst["Msvm_ComputerSystem"][("Msvm_ComputerSystem", g)]
        return self.job("DestroySystem", effect)

    def ModifySystemSettings(self, inst, params):
        st = self.st
        cls, ss = parse_embedded(self.one(params, "SystemSettings"))
        if cls != "Msvm_VirtualSystemSettingData" or not ss.get("InstanceID"):
            raise fault_param("SystemSettings must be a Msvm_VirtualSystemSettingData with InstanceID")
        vssd = st.find("Msvm_VirtualSystemSettingData", {"InstanceID": ss["InstanceID"]})
        gen2 = vssd.get("VirtualSystemSubType") == "Microsoft:Hyper-V:SubType:2"
        fw = {}
        if "BootSourceOrder" in ss:
            order = ss["BootSourceOrder"]
            order = [order] if isinstance(order, str) else order
            if not gen2:
                raise fault_param("BootSourceOrder is for generation 2 virtual machines")
            own = vssd.get("BootSourceOrder", [])
            for b in order:
                _, k = parse_wmi_path(b)
                bs = st.inst["Msvm_BootSourceSettingData"].get((k.get("InstanceID"),))
                if bs is None or not bs["InstanceID"].startswith(ss["InstanceID"] + "\\"):
                    raise fault_param("BootSourceOrder entry %s is not a boot source of this "
                                      "virtual machine" % b)
            if len(set(order)) != len(order):
                raise fault_param("BootSourceOrder names an entry twice")
            fw["BootSourceOrder"] = order + [b for b in own if b not in order]
        if "SecureBootEnabled" in ss:
            if not gen2:
                raise fault_param("Secure Boot can only be enabled for generation 2 VMs")
            fw["SecureBootEnabled"] = str(ss["SecureBootEnabled"]).lower() == "true"
        if "SecureBootTemplateId" in ss:
            if str(ss["SecureBootTemplateId"]).lower() not in SB_TEMPLATES:
                raise fault_param("SecureBootTemplateId %s is not a template of this host"
                                  % ss["SecureBootTemplateId"])
            fw["SecureBootTemplateId"] = ss["SecureBootTemplateId"].lower()

        def effect():
            vssd.update(fw)
            for k in ("ElementName", "Notes"):
                if k in ss:
                    v = ss[k]
                    vssd[k] = ([v] if isinstance(v, str) else v) if k == "Notes" else v
            if "ElementName" in ss:
                st.vm_by_guid(vssd["VirtualSystemIdentifier"])["ElementName"] = ss["ElementName"]
        return self.job("ModifySystemSettings", effect)

    def AddResourceSettings(self, inst, params):
        st = self.st
        _, target = self.epr_instance(self.one(params, "AffectedConfiguration"),
                                      ["Msvm_VirtualSystemSettingData"])
        g = target["VirtualSystemIdentifier"]
        created = []
        plans = []
        for r in params.get("ResourceSettings", []):
            cls, p = parse_embedded(r)
            if cls == "Msvm_SyntheticEthernetPortSettingData":
                mac = (p.get("Address") or "").upper()
                static = str(p.get("StaticMacAddress", "")).lower() == "true"
                if static and not re.match(r"^[0-9A-F]{12}$", mac):
                    raise fault_param("Address must be 12 hexadecimal digits")
                dev = p.get("VirtualSystemIdentifiers")
                dev = (dev[0] if isinstance(dev, list) and dev else dev) or "{" + new_guid() + "}"
                iid = "Microsoft:%s\\%s" % (g, dev.strip("{}").upper())
                plans.append(("Msvm_SyntheticEthernetPortSettingData", {
                    "InstanceID": iid, "ElementName": p.get("ElementName") or "Network Adapter",
                    "ResourceType": 10, "ResourceSubType": "Microsoft:Hyper-V:Synthetic Ethernet Port",
                    "Address": mac if static else "00155D%06X" % (uuid.uuid4().int & 0xFFFFFF),
                    "StaticMacAddress": static, "VirtualSystemIdentifiers": ["{%s}" % dev.strip("{}")]}))
            elif cls == "Msvm_EthernetPortAllocationSettingData":
                pcls, pkeys = parse_wmi_path(p.get("Parent"))
                if pcls != "Msvm_SyntheticEthernetPortSettingData":
                    raise fault_param("Parent must be the path of a synthetic ethernet port")
                port = st.find(pcls, pkeys)
                if not port["InstanceID"].startswith("Microsoft:%s\\" % g):
                    raise fault_param("Parent belongs to another virtual machine")
                hr = p.get("HostResource") or []
                hr = [hr] if isinstance(hr, str) else hr
                for h in hr:
                    hcls, hkeys = parse_wmi_path(h)
                    if hcls != "Msvm_VirtualEthernetSwitch":
                        raise fault_param("HostResource must be the path of a virtual switch")
                    st.find(hcls, hkeys)
                plans.append(("Msvm_EthernetPortAllocationSettingData", {
                    "InstanceID": port["InstanceID"] + "\\C", "ElementName": "Dynamic Ethernet Switch Port",
                    "ResourceType": 33, "ResourceSubType": "Microsoft:Hyper-V:Ethernet Connection",
                    "Parent": p.get("Parent"), "HostResource": hr, "EnabledState": 2}))
            elif cls == "Msvm_ResourceAllocationSettingData":
                plans.append((cls, self._storage_rasd(g, p, plans)))
            elif cls == "Msvm_StorageAllocationSettingData":
                plans.append((cls, self._storage_sasd(g, p, plans)))
            else:
                raise fault_param("AddResourceSettings: class %s is not supported here" % cls)

        def effect():
            for cls, props in plans:
                if props["InstanceID"] in [i["InstanceID"] for i in st.inst[cls].values()]:
                    raise SimError("", "", "A device with this identifier already exists.",
                                   wmi_code=32773)
                if cls == "Msvm_StorageAllocationSettingData":
                    st.check_host_file(props["HostResource"][0])
                st.add(cls, props)
                created.append(("EPR",) + st.epr_for(cls, props))
                if cls == "Msvm_SyntheticEthernetPortSettingData":
                    st.add_boot_source(props, 2, "Network Adapter (%s)" % props["Address"])
                elif props.get("ResourceSubType") == SUB_DVD_DRIVE:
                    st.add_boot_source(props, 1, "SCSI DVD (0,%s)" % props["AddressOnParent"])
        rv, out = self.job("AddResourceSettings", effect)
        if st.knobs["omit_results"]:  # only the job tells (Msvm_AffectedJobElement)
            return rv, out
        return rv, [("ResultingResourceSettings", e) for e in created] + out

    def _check_type(self, p, rtype):
        try:
            got = int(p.get("ResourceType") or -1)
        except ValueError:
            got = -1
        if got != rtype:
            raise fault_param("ResourceType %s does not match ResourceSubType %s (expected %d)"
                              % (p.get("ResourceType"), p.get("ResourceSubType"), rtype))

    def _own(self, g, path, cls, what):
        """The setting a Parent path names: of class cls, of VM g."""
        pcls, pkeys = parse_wmi_path(path)
        if pcls != cls or "InstanceID" not in pkeys:
            raise fault_param("Parent must be the path of %s, not '%s'" % (what, path))
        i = self.st.inst[cls].get((pkeys["InstanceID"],))
        if i is None:
            raise fault_param("Parent %s does not exist" % path)
        if not i["InstanceID"].startswith("Microsoft:%s\\" % g):
            raise fault_param("Parent belongs to another virtual machine")
        return i

    def _storage_rasd(self, g, p, plans):
        """A controller or a DVD drive (Msvm_ResourceAllocationSettingData)."""
        st = self.st
        sub = p.get("ResourceSubType")
        if sub == SUB_SCSI:
            self._check_type(p, 6)
            n = sum(1 for r in st.children("Msvm_ResourceAllocationSettingData", "Microsoft:%s\\" % g)
                    if r.get("ResourceSubType") == SUB_SCSI)
            if n >= 4:
                raise fault_param("a virtual machine has at most 4 SCSI controllers")
            return {"InstanceID": "Microsoft:%s\\%s" % (g, new_guid()), "ResourceType": 6,
                    "ResourceSubType": SUB_SCSI, "ElementName": "SCSI Controller", "Address": ""}
        if sub == SUB_DVD_DRIVE:
            self._check_type(p, 16)
            ctrl = self._own(g, p.get("Parent"), "Msvm_ResourceAllocationSettingData",
                             "a SCSI or IDE controller")
            if ctrl.get("ResourceSubType") not in CONTROLLERS:
                raise fault_param("the Parent of a DVD drive must be a SCSI or IDE controller, not %s"
                                  % ctrl.get("ResourceSubType"))
            vs = st.vssd_of(ctrl["InstanceID"])
            if ctrl["ResourceSubType"] == SUB_IDE and \
                    vs.get("VirtualSystemSubType") == "Microsoft:Hyper-V:SubType:2":
                raise fault_param("generation 2 virtual machines have no IDE controller")
            try:
                addr = int(p.get("AddressOnParent") or "0")
            except ValueError:
                raise fault_param("AddressOnParent must be a number")
            if not 0 <= addr < CONTROLLERS[ctrl["ResourceSubType"]][1]:
                raise fault_param("AddressOnParent %d is out of the controller's range" % addr)
            taken = [r for r in st.inst["Msvm_ResourceAllocationSettingData"].values()
                     if r.get("Parent") and parse_wmi_path(r["Parent"])[1].get("InstanceID") ==
                     ctrl["InstanceID"] and str(r.get("AddressOnParent")) == str(addr)]
            if taken:
                raise fault_param("location %d of the controller is in use" % addr)
            return {"InstanceID": "%s\\%d\\0\\D" % (ctrl["InstanceID"], addr), "ResourceType": 16,
                    "ResourceSubType": SUB_DVD_DRIVE, "ElementName": "DVD Drive",
                    "Parent": p["Parent"], "AddressOnParent": str(addr)}
        raise fault_param("Msvm_ResourceAllocationSettingData %s is not supported here" % sub)

    def _check_iso(self, hr):
        hr = [hr] if isinstance(hr, str) else (hr or [])
        if len(hr) != 1 or not re.match(r"^([A-Za-z]:\\|\\\\)[^\n]*\.iso$", hr[0], re.I):
            raise fault_param("HostResource of a CD/DVD disk must be one absolute path of an .iso "
                              "file, not %r" % (hr,))
        return hr

    def _storage_sasd(self, g, p, plans):
        """A CD/DVD disk (Msvm_StorageAllocationSettingData) in a DVD drive."""
        st = self.st
        if p.get("ResourceSubType") != SUB_DVD_DISK:
            raise fault_param("Msvm_StorageAllocationSettingData %s is not supported here"
                              % p.get("ResourceSubType"))
        self._check_type(p, 31)
        drive = self._own(g, p.get("Parent"), "Msvm_ResourceAllocationSettingData", "a DVD drive")
        if drive.get("ResourceSubType") != SUB_DVD_DRIVE:
            raise fault_param("the Parent of a CD/DVD disk must be a DVD drive, not %s"
                              % drive.get("ResourceSubType"))
        if st.children("Msvm_StorageAllocationSettingData", drive["InstanceID"] + "\\"):
            raise fault_param("the DVD drive holds a disk already: use ModifyResourceSettings")
        return {"InstanceID": drive["InstanceID"] + "\\L", "ResourceType": 31,
                "ResourceSubType": SUB_DVD_DISK, "ElementName": "DVD Disk",
                "Parent": p["Parent"], "HostResource": self._check_iso(p.get("HostResource"))}

    def ModifyResourceSettings(self, inst, params):
        st = self.st
        plans = []
        for r in params.get("ResourceSettings", []):
            cls, p = parse_embedded(r)
            if cls != "Msvm_StorageAllocationSettingData" or not p.get("InstanceID"):
                raise fault_param("ModifyResourceSettings: only CD/DVD disks "
                                  "(Msvm_StorageAllocationSettingData with InstanceID) here")
            cur = st.find(cls, {"InstanceID": p["InstanceID"]})
            if cur.get("ResourceSubType") != SUB_DVD_DISK:
                raise fault_param("ModifyResourceSettings: %s is not a CD/DVD disk" % p["InstanceID"])
            for k in p:
                if k not in ("InstanceID", "HostResource", "ResourceType", "ResourceSubType",
                             "Parent", "ElementName"):
                    raise fault_param("ModifyResourceSettings: %s cannot be changed here" % k)
                if k in ("ResourceType", "ResourceSubType", "Parent") and str(p[k]) != str(cur[k]):
                    raise fault_param("ModifyResourceSettings: %s is read-only" % k)
            plans.append((cur, self._check_iso(p.get("HostResource"))))
        if not plans:
            raise fault_param("missing parameter ResourceSettings")
        done = []

        def effect():
            for cur, hr in plans:
                st.check_host_file(hr[0])
                cur["HostResource"] = hr
                done.append(("EPR",) + st.epr_for("Msvm_StorageAllocationSettingData", cur))
        rv, out = self.job("ModifyResourceSettings", effect)
        return rv, [("ResultingResourceSettings", e) for e in done] + out

    def RemoveResourceSettings(self, inst, params):
        st = self.st
        targets = [self.epr_instance(v, ["Msvm_SyntheticEthernetPortSettingData",
                                         "Msvm_EthernetPortAllocationSettingData",
                                         "Msvm_ResourceAllocationSettingData",
                                         "Msvm_StorageAllocationSettingData"])
                   for v in params.get("ResourceSettings", [])]
        if not targets:
            raise fault_param("missing parameter ResourceSettings")

        def effect():
            for cls, i in targets:
                if st.key(cls, i) in st.inst[cls]:
                    st.remove_prefix(i["InstanceID"] + "\\")
                    del st.inst[cls][st.key(cls, i)]
                    st.drop_boot_source(i["InstanceID"])
        return self.job("RemoveResourceSettings", effect)

    def _feature(self, port, p, existing=None):
        mode = int(p.get("OperationMode") or 0)
        vid = int(p.get("AccessVlanId") or 0)
        if mode == 1 and not 1 <= vid <= 4094:
            raise fault_param("AccessVlanId must be within 1-4094 in access mode")
        if mode not in (1, 2, 3):
            raise fault_param("OperationMode %d is not supported" % mode)
        props = existing if existing is not None else {
            "InstanceID": "%s\\%s" % (port["InstanceID"], new_guid()),
            "ElementName": "Ethernet Switch Port VLAN Settings"}
        return props, mode, vid

    def AddFeatureSettings(self, inst, params):
        st = self.st
        _, port = self.epr_instance(self.one(params, "AffectedConfiguration"),
                                    ["Msvm_EthernetPortAllocationSettingData"])
        plans = []
        for f in params.get("FeatureSettings", []):
            cls, p = parse_embedded(f)
            if cls != "Msvm_EthernetSwitchPortVlanSettingData":
                raise fault_param("AddFeatureSettings: class %s is not supported here" % cls)
            if st.children(cls, port["InstanceID"] + "\\"):
                raise fault_param("the port already has VLAN settings: use ModifyFeatureSettings")
            plans.append(self._feature(port, p))
        created = []

        def effect():
            for props, mode, vid in plans:
                props.update({"OperationMode": mode, "AccessVlanId": vid, "NativeVlanId": 0})
                created.append(("EPR",) + st.epr_for("Msvm_EthernetSwitchPortVlanSettingData", props))
                if not st.knobs["drop_vlan"]:  # "succeeds" without applying
                    st.add("Msvm_EthernetSwitchPortVlanSettingData", props)
        rv, out = self.job("AddFeatureSettings", effect)
        return rv, [("ResultingFeatureSettings", e) for e in created] + out

    def ModifyFeatureSettings(self, inst, params):
        st = self.st
        plans = []
        for f in params.get("FeatureSettings", []):
            cls, p = parse_embedded(f)
            if cls != "Msvm_EthernetSwitchPortVlanSettingData" or not p.get("InstanceID"):
                raise fault_param("FeatureSettings must be VLAN settings with InstanceID")
            cur = st.find(cls, {"InstanceID": p["InstanceID"]})
            plans.append(self._feature(None, p, cur))

        def effect():
            if not st.knobs["drop_vlan"]:
                for props, mode, vid in plans:
                    props.update({"OperationMode": mode, "AccessVlanId": vid})
        return self.job("ModifyFeatureSettings", effect)

    def _kvp(self, method, params):
        st = self.st
        _, vm = self.epr_instance(self.one(params, "TargetSystem"), ["Msvm_ComputerSystem"])
        if vm.get("Caption") != "Virtual Machine":
            raise fault_param("TargetSystem is not a virtual machine")
        kvp = st.find("Msvm_KvpExchangeComponentSettingData",
                      {"InstanceID": "Microsoft:%s\\KVP" % vm["Name"]})
        items = []
        for d in params.get("DataItems", []):
            cls, p = parse_embedded(d)
            if cls != "Msvm_KvpExchangeDataItem":
                raise fault_param("DataItems must be Msvm_KvpExchangeDataItem")
            name, data = p.get("Name") or "", p.get("Data") or ""
            if not name or len(name) > KVP_MAX_NAME or len(data) > KVP_MAX_DATA:
                return 32773, []  # invalid parameter: over the pool's item limits
            if str(p.get("Source", "0")) != "0":
                raise fault_param("only Source 0 (host to guest) is writable")
            items.append((name, data))
        if not items:
            raise fault_param("missing parameter DataItems")

        def effect():
            cur = {}
            for x in kvp["HostExchangeItems"]:
                _, pr = parse_embedded(x)
                cur[pr["Name"]] = pr.get("Data") or ""
            for name, data in items:
                if method == "AddKvpItems" and name in cur:
                    raise SimError("", "", "The KVP item %s already exists." % name, wmi_code=32773)
                if method != "AddKvpItems" and name not in cur:
                    raise SimError("", "", "The KVP item %s does not exist." % name, wmi_code=32773)
                if method == "RemoveKvpItems":
                    del cur[name]
                else:
                    cur[name] = data
            kvp["HostExchangeItems"] = [
                embedded_xml("Msvm_KvpExchangeDataItem", {"Name": n, "Data": d, "Source": 0})
                for n, d in sorted(cur.items())]
        return self.job(method, effect)

    def AddKvpItems(self, inst, params):
        return self._kvp("AddKvpItems", params)

    def ModifyKvpItems(self, inst, params):
        return self._kvp("ModifyKvpItems", params)

    def RemoveKvpItems(self, inst, params):
        return self._kvp("RemoveKvpItems", params)

    # Msvm_ComputerSystem
    def RequestStateChange(self, inst, params):
        if inst.get("Caption") != "Virtual Machine":
            return 32775, []
        try:
            want = int(self.one(params, "RequestedState"))
        except (TypeError, ValueError):
            raise fault_param("RequestedState must be an integer")
        if want not in (2, 3, 4, 6, 9, 10, 11):
            return 32773, []
        if want == 11:
            want = 2
        if inst["EnabledState"] == want:
            return 32775, []  # invalid state for this operation

        def effect():
            inst["EnabledState"] = want
            inst["RequestedState"] = want
        return self.job("RequestStateChange", effect)


METHODS = {
    "Msvm_VirtualSystemManagementService": {
        "DefineSystem", "DestroySystem", "ModifySystemSettings", "AddResourceSettings",
        "ModifyResourceSettings", "RemoveResourceSettings", "AddFeatureSettings", "ModifyFeatureSettings",
        "AddKvpItems", "ModifyKvpItems", "RemoveKvpItems"},
    "Msvm_ComputerSystem": {"RequestStateChange"},
}


# --------------------------------------------------------------------- WQL --
def wql_parse(q):
    m = re.match(r"^\s*select\s+\*\s+from\s+(\w+)\s*(?:where\s+(.*))?$", q or "", re.I | re.S)
    if not m:
        raise SimError("s:Sender", "wsen:CannotProcessFilter",
                       "The WQL query is not supported by this service: %s" % q,
                       action=ACT_WSEN_FAULT, wmi_code=2150858773)
    cls, where = m.group(1), m.group(2)
    terms, ops = [], []
    if where:
        pos = 0
        tok = re.compile(r"\s*(\w+)\s*(=|!=|<>|\blike\b)\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+|true|false)\s*",
                         re.I)
        while True:
            mm = tok.match(where, pos)
            if not mm:
                raise SimError("s:Sender", "wsen:CannotProcessFilter",
                               "The WQL condition is not supported: %s" % where[pos:],
                               action=ACT_WSEN_FAULT, wmi_code=2150858773)
            v = mm.group(3)
            if v[0] in "'\"":
                v = re.sub(r"\\(.)", r"\1", v[1:-1])
            terms.append((mm.group(1), mm.group(2).lower(), v))
            pos = mm.end()
            if pos >= len(where):
                break
            cm = re.compile(r"(and|or)\b", re.I).match(where, pos)
            if not cm:
                raise SimError("s:Sender", "wsen:CannotProcessFilter",
                               "The WQL condition is not supported: %s" % where[pos:],
                               action=ACT_WSEN_FAULT, wmi_code=2150858773)
            ops.append(cm.group(1).lower())
            pos = cm.end()
    return cls, terms, ops


def wql_match(inst, terms, ops):
    def one(t):
        prop, op, v = t
        x = inst.get(prop)
        if isinstance(x, bool):
            x = "true" if x else "false"
        x = "" if x is None else str(x)
        if op == "like":
            rx = "^" + "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in v) + "$"
            return re.match(rx, x, re.I | re.S) is not None
        eq = x.lower() == v.lower()
        return eq if op == "=" else not eq
    if not terms:
        return True
    # AND binds tighter than OR
    groups, cur = [], [terms[0]]
    for op, t in zip(ops, terms[1:]):
        if op == "and":
            cur.append(t)
        else:
            groups.append(cur)
            cur = [t]
    groups.append(cur)
    return any(all(one(t) for t in g) for g in groups)


# ---------------------------------------------------------------- rendering --
def xml_instance(cls, props, tag_prefix="p"):
    uri = V2_URI + cls
    out = ['<%s:%s xmlns:%s="%s" xmlns:xsi="%s">' % (tag_prefix, cls, tag_prefix, uri, NS_XSI)]
    for k in sorted(props):
        if k.startswith("_"):
            continue
        v = props[k]
        vals = v if isinstance(v, list) else [v]
        if isinstance(v, list) and not v:
            continue
        for x in vals:
            if x is None:
                out.append('<%s:%s xsi:nil="true"/>' % (tag_prefix, k))
                continue
            if isinstance(x, bool):
                x = "true" if x else "false"
            out.append("<%s:%s>%s</%s:%s>" % (tag_prefix, k, _esc(str(x)), tag_prefix, k))
    out.append("</%s:%s>" % (tag_prefix, cls))
    return "".join(out)


def xml_epr_children(cls, sel):
    s = "".join('<wsman:Selector Name="%s">%s</wsman:Selector>' % (_esc(k), _esc(v))
                for k, v in sel.items())
    return ("<wsa:Address>%s</wsa:Address><wsa:ReferenceParameters>"
            "<wsman:ResourceURI>%s</wsman:ResourceURI><wsman:SelectorSet>%s"
            '<wsman:Selector Name="__cimnamespace">%s</wsman:Selector>'
            "</wsman:SelectorSet></wsa:ReferenceParameters>" % (ANON, V2_URI + cls, s, V2_NS))


def xml_epr(cls, sel):
    return "<wsa:EndpointReference>%s</wsa:EndpointReference>" % xml_epr_children(cls, sel)


def envelope(action, relates_to, body):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<s:Envelope xmlns:s="%s" xmlns:wsa="%s" xmlns:wsman="%s" xmlns:wsen="%s">'
            "<s:Header><wsa:To>%s</wsa:To><wsa:Action>%s</wsa:Action>"
            "<wsa:MessageID>uuid:%s</wsa:MessageID>%s</s:Header>"
            "<s:Body>%s</s:Body></s:Envelope>\n"
            % (NS_S, NS_WSA, NS_WSMAN, NS_WSEN, ANON, _esc(action), new_guid(),
               "<wsa:RelatesTo>%s</wsa:RelatesTo>" % _esc(relates_to) if relates_to else "", body))


def fault_body(e, host):
    sub = ('<s:Subcode><s:Value>%s</s:Value></s:Subcode>' % e.subcode) if e.subcode else ""
    detail = ""
    if e.detail or e.wmi_code:
        detail = "<s:Detail>"
        if e.detail:
            detail += "<wsman:FaultDetail>%s</wsman:FaultDetail>" % e.detail
        if e.wmi_code:
            detail += ('<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>%s</f:Message>'
                       "</f:WSManFault>" % (NS_WSMANFAULT, e.wmi_code, _esc(host), _esc(e.reason)))
        detail += "</s:Detail>"
    return ('<s:Fault><s:Code><s:Value>%s</s:Value>%s</s:Code><s:Reason>'
            '<s:Text xml:lang="en-US">%s</s:Text></s:Reason>%s</s:Fault>'
            % (e.code or "s:Receiver", sub, _esc(e.reason), detail))


# ------------------------------------------------------------------ service --
class Service:
    def __init__(self, st):
        self.st = st
        self.methods = Methods(st)

    @staticmethod
    def class_of(uri):
        if not uri:
            raise SimError("s:Sender", "wsa:DestinationUnreachable",
                           "The request has no wsman:ResourceURI.", FD + "InvalidResourceURI",
                           action=ACT_WSA_FAULT, wmi_code=2150858778)
        if uri == V2_URI + "*":
            return "*"
        if not uri.startswith(V2_URI):
            raise fault_unknown_class(uri)
        cls = uri[len(V2_URI):]
        if cls not in KEYS:
            raise fault_unknown_class(uri)
        return cls

    def handle(self, doc):
        h = doc.find("{%s}Header" % NS_S)
        b = doc.find("{%s}Body" % NS_S)
        if h is None or b is None:
            raise SimError("s:Sender", "wsman:SchemaValidationError",
                           "The SOAP envelope has no Header or Body.", wmi_code=2150858817)

        def ht(name, ns):
            e = h.find("{%s}%s" % (ns, name))
            return e.text.strip() if e is not None and e.text else None
        action = ht("Action", NS_WSA)
        msgid = ht("MessageID", NS_WSA)
        uri = ht("ResourceURI", NS_WSMAN)
        if not action:
            raise SimError("s:Sender", "wsa:MessageInformationHeaderRequired",
                           "The request has no wsa:Action header.", action=ACT_WSA_FAULT)
        if not msgid:
            raise SimError("s:Sender", "wsa:MessageInformationHeaderRequired",
                           "The request has no wsa:MessageID header.", action=ACT_WSA_FAULT)
        mes = ht("MaxEnvelopeSize", NS_WSMAN)
        limit = None
        if mes is not None:
            try:
                limit = int(mes)
            except ValueError:
                raise SimError("s:Sender", "wsman:EncodingLimit", "MaxEnvelopeSize is not a number.",
                               FD + "MaxEnvelopeSize")
            if limit < 8192:
                raise SimError("s:Sender", "wsman:EncodingLimit",
                               "MaxEnvelopeSize %d is below the minimum (8192)." % limit,
                               FD + "MinimumEnvelopeLimit")
        sel = {}
        ss = h.find("{%s}SelectorSet" % NS_WSMAN)
        if ss is not None:
            for s in ss.findall("{%s}Selector" % NS_WSMAN):
                if not s.get("Name"):
                    raise fault_selectors("InvalidValue", "A selector has no Name attribute.")
                if s.get("Name") in sel:
                    raise fault_selectors("DuplicateSelectors", "Duplicate selector %s." % s.get("Name"))
                sel[s.get("Name")] = (s.text or "").strip()
        if sel.get("__cimnamespace", V2_NS).replace("\\", "/").lower() != V2_NS:
            raise fault_unknown_class(uri)
        with self.st.lock:
            if action == ACT_ENUM:
                body, rac = self.enumerate(uri, b, limit), ACT_ENUM + "Response"
            elif action == ACT_PULL:
                body, rac = self.pull(b, limit), ACT_PULL + "Response"
            elif action == ACT_RELEASE:
                body, rac = self.release(b), ACT_RELEASE + "Response"
            elif action == ACT_GET:
                cls = self.class_of(uri)
                if cls == "*":
                    raise fault_unknown_class(uri)
                inst = self.st.find(cls, sel)
                if cls == "Msvm_ConcreteJob":
                    self.st.poll_job(inst)
                body, rac = xml_instance(cls, inst), ACT_GET + "Response"
            elif uri and action.startswith(uri + "/"):
                body, rac = self.invoke(uri, action[len(uri) + 1:], sel, b), action + "Response"
            elif uri and action.startswith(V2_URI):
                raise SimError("s:Sender", "wsa:ActionNotSupported",
                               "The action %s is not supported for %s." % (action, uri),
                               FD + "ActionMismatch", action=ACT_WSA_FAULT, wmi_code=2150858759)
            else:
                raise SimError("s:Sender", "wsa:ActionNotSupported",
                               "The action %s is not supported by this service." % action,
                               action=ACT_WSA_FAULT, wmi_code=2150858759)
        out = envelope(rac, msgid, body)
        if limit and len(out.encode()) > limit:
            raise SimError("s:Receiver", "wsman:EncodingLimit",
                           "The response exceeds MaxEnvelopeSize (%d)." % limit, FD + "MaxEnvelopeSize")
        return out

    def enumerate(self, uri, body, limit):
        en = body.find("{%s}Enumerate" % NS_WSEN)
        if en is None:
            raise SimError("s:Sender", "wsman:SchemaValidationError",
                           "Enumerate needs a wsen:Enumerate body.", wmi_code=2150858817)
        cls = self.class_of(uri)
        mode = en.findtext("{%s}EnumerationMode" % NS_WSMAN) or ""
        mode = mode.strip()
        if mode not in ("", "EnumerateEPR", "EnumerateObjectAndEPR"):
            raise SimError("s:Sender", "wsman:UnsupportedFeature", "EnumerationMode %s" % mode,
                           FD + "EnumerationMode")
        flt = en.find("{%s}Filter" % NS_WSMAN)
        if flt is None:
            flt = en.find("{%s}Filter" % NS_WSEN)
        terms, ops = [], []
        if flt is not None:
            dialect = flt.get("Dialect") or DIALECT_WQL
            if dialect in (DIALECT_WQL, DIALECT_CQL):
                qcls, terms, ops = wql_parse("".join(flt.itertext()))
                if cls == "*":
                    cls = qcls
                if qcls != cls or cls not in KEYS:
                    raise SimError("s:Sender", "wsen:CannotProcessFilter",
                                   "The query names class %s, the resource URI %s." % (qcls, uri),
                                   action=ACT_WSEN_FAULT, wmi_code=2150858773)
            elif dialect == DIALECT_SELECTOR:
                for s in flt.iter("{%s}Selector" % NS_WSMAN):
                    terms.append((s.get("Name"), "=", (s.text or "").strip()))
                    ops.append("and")
                ops = ops[:-1]
            else:
                raise SimError("s:Sender", "wsen:FilterDialectRequestedUnavailable",
                               "The filter dialect %s is not supported." % dialect,
                               action=ACT_WSEN_FAULT, wmi_code=2150858775)
        if cls == "*":
            raise SimError("s:Sender", "wsen:CannotProcessFilter",
                           "Enumerating every class needs a WQL filter.", action=ACT_WSEN_FAULT)
        items = [(cls, i) for i in self.st.inst[cls].values() if wql_match(i, terms, ops)]
        for _, i in items:
            if cls == "Msvm_ConcreteJob":
                self.st.poll_job(i)
        ctx = "uuid:" + new_guid()
        self.st.contexts[ctx] = {"items": items, "mode": mode}
        opt = en.find("{%s}OptimizeEnumeration" % NS_WSMAN) is not None
        if opt:
            mx = int(en.findtext("{%s}MaxElements" % NS_WSMAN) or "1")
            inner, end = self.take(ctx, mx, limit)
            if end:
                return ("<wsen:EnumerateResponse><wsman:Items>%s</wsman:Items><wsman:EndOfSequence/>"
                        "</wsen:EnumerateResponse>" % inner)
            return ("<wsen:EnumerateResponse><wsen:EnumerationContext>%s</wsen:EnumerationContext>"
                    "<wsman:Items>%s</wsman:Items></wsen:EnumerateResponse>" % (ctx, inner))
        return ("<wsen:EnumerateResponse><wsen:EnumerationContext>%s</wsen:EnumerationContext>"
                "</wsen:EnumerateResponse>" % ctx)

    def render_item(self, cls, i, mode):
        epr = self.st.epr_for(cls, i)
        if mode == "EnumerateEPR":
            return xml_epr(*epr)
        if mode == "EnumerateObjectAndEPR":
            return "<wsman:Item>%s%s</wsman:Item>" % (xml_instance(cls, i), xml_epr(*epr))
        return xml_instance(cls, i)

    def take(self, ctx, mx, limit):
        c = self.st.contexts[ctx]
        out, size = [], 0
        budget = (limit or 512000) - 2048
        while c["items"] and len(out) < max(1, mx):
            x = self.render_item(c["items"][0][0], c["items"][0][1], c["mode"])
            if out and size + len(x) > budget:
                break
            out.append(x)
            size += len(x)
            c["items"].pop(0)
        end = not c["items"]
        if end:
            del self.st.contexts[ctx]
        return "".join(out), end

    def context_of(self, body, op):
        e = body.find("{%s}%s" % (NS_WSEN, op))
        ctx = e.findtext("{%s}EnumerationContext" % NS_WSEN) if e is not None else None
        ctx = (ctx or "").strip()
        if ctx not in self.st.contexts:
            raise SimError("s:Sender", "wsen:InvalidEnumerationContext",
                           "The enumeration context is not valid (expired or unknown).",
                           action=ACT_WSEN_FAULT, wmi_code=2150858777)
        return e, ctx

    def pull(self, body, limit):
        e, ctx = self.context_of(body, "Pull")
        try:
            mx = int(e.findtext("{%s}MaxElements" % NS_WSEN) or "1")
        except ValueError:
            raise fault_param("MaxElements is not a number")
        inner, end = self.take(ctx, mx, limit)
        if end:
            return ("<wsen:PullResponse><wsen:Items>%s</wsen:Items><wsen:EndOfSequence/>"
                    "</wsen:PullResponse>" % inner)
        return ("<wsen:PullResponse><wsen:EnumerationContext>%s</wsen:EnumerationContext>"
                "<wsen:Items>%s</wsen:Items></wsen:PullResponse>" % (ctx, inner))

    def release(self, body):
        _, ctx = self.context_of(body, "Release")
        del self.st.contexts[ctx]
        return ""

    def param_value(self, el):
        """A method parameter: EPR tuple, or its text."""
        rp = el.find("{%s}ReferenceParameters" % NS_WSA)
        if rp is None:
            epr = el.find("{%s}EndpointReference" % NS_WSA)
            if epr is not None:
                rp = epr.find("{%s}ReferenceParameters" % NS_WSA)
        if rp is not None:
            ruri = (rp.findtext("{%s}ResourceURI" % NS_WSMAN) or "").strip()
            cls = self.class_of(ruri)
            sel = {}
            for s in rp.iter("{%s}Selector" % NS_WSMAN):
                if s.get("Name") != "__cimnamespace":
                    sel[s.get("Name")] = (s.text or "").strip()
            return ("EPR", cls, sel)
        if el.get("{%s}nil" % NS_XSI) == "true":
            return None
        return "".join(el.itertext())

    def invoke(self, uri, method, sel, body):
        cls = self.class_of(uri)
        if cls == "*" or method not in METHODS.get(cls, ()):
            raise SimError("s:Sender", "wsa:ActionNotSupported",
                           "The method %s is not supported by %s." % (method, cls),
                           FD + "ActionMismatch", action=ACT_WSA_FAULT, wmi_code=2150858759)
        if not sel:
            raise fault_selectors("InsufficientSelectors",
                                  "Invoking %s.%s needs the selectors of an instance." % (cls, method))
        inst = self.st.find(cls, sel)
        inp = body.find("{%s}%s_INPUT" % (uri, method))
        if inp is None:
            raise SimError("s:Sender", "wsman:SchemaValidationError",
                           "The body must be <p:%s_INPUT xmlns:p=\"%s\">." % (method, uri),
                           wmi_code=2150858817)
        params = {}
        for el in inp:
            if not el.tag.startswith("{%s}" % uri):
                raise fault_param("parameter %s is not in the class namespace" % el.tag)
            params.setdefault(el.tag[len(uri) + 2:], []).append(self.param_value(el))
        self.st.counters["invokes"] += 1
        by = self.st.counters["methods"]
        by[method] = by.get(method, 0) + 1
        rv, outs = getattr(self.methods, method)(inst, params)
        o = ['<p:%s_OUTPUT xmlns:p="%s">' % (method, uri)]
        for name, v in outs:
            if isinstance(v, tuple):
                o.append("<p:%s>%s</p:%s>" % (name, xml_epr_children(v[1], v[2]), name))
            else:
                o.append("<p:%s>%s</p:%s>" % (name, _esc(str(v)), name))
        o.append("<p:ReturnValue>%d</p:ReturnValue></p:%s_OUTPUT>" % (rv, method))
        return "".join(o)


# --------------------------------------------------------------------- HTTP --
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("hyperv-sim: %s\n" % (fmt % args))

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline().strip():
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
                if len(data) > 4 << 20:
                    raise ValueError("request too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > 4 << 20:
            raise ValueError("request too large")
        return self.rfile.read(n)

    def send(self, status, body, ctype="application/soap+xml;charset=UTF-8", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra.items() if isinstance(extra, dict) else extra or []):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/state":
            with self.server.state.lock:
                self.send(200, json.dumps(self.server.state.dump(), indent=1), "application/json")
        else:
            self.send(404, "not found\n", "text/plain")

    def authorised(self):
        """True, False, or the value of a WWW-Authenticate NTLM challenge."""
        st = self.server.state
        if st.knobs["reject_auth"]:
            return False
        h = self.headers.get("Authorization") or ""
        if not h and getattr(self, "ntlm_ok", False):
            return True  # NTLM authenticates the connection (HTTP.sys)
        if h.startswith("NTLM ") and "ntlm" in self.server.auth:
            try:
                msg = base64.b64decode(h[5:])
            except ValueError:
                return False
            if msg[8:12] == struct.pack("<I", 1):
                self.ntlm_challenge = os.urandom(8)
                self.ntlm_ok = False
                return "NTLM " + base64.b64encode(ntlm_challenge(
                    self.ntlm_challenge, "HVSIM", st.host)).decode()
            ch = getattr(self, "ntlm_challenge", None)
            self.ntlm_challenge = None
            self.ntlm_ok = bool(ch) and ntlm_verify(msg, ch, self.server.user, self.server.password)
            return self.ntlm_ok
        if not h.startswith("Basic ") or "basic" not in self.server.auth:
            return False
        try:
            user, _, pw = base64.b64decode(h[6:]).decode("utf-8").partition(":")
        except Exception:
            return False
        return user == self.server.user and pw == self.server.password

    def do_POST(self):
        st = self.server.state
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            self.send(413, "", "text/plain", {"Connection": "close"})
            self.close_connection = True
            return
        if self.path == "/control":
            try:
                knobs = json.loads(raw or b"{}")
                with st.lock:
                    for k, v in knobs.items():
                        if k not in st.knobs and k != "job_polls":
                            raise KeyError(k)
                        if k == "job_polls":
                            st.job_polls = int(v)
                        else:
                            st.knobs[k] = v
                    if knobs.get("malformed") and "malformed_count" not in knobs:
                        st.knobs["malformed_count"] = 1
                self.send(200, json.dumps(st.knobs), "application/json")
            except (ValueError, KeyError) as e:
                self.send(400, "bad control request: %s\n" % e, "text/plain")
            return
        if self.path.rstrip("/").lower() != "/wsman":
            self.send(404, "", "text/plain")
            return
        with st.lock:
            st.counters["requests"] += 1
        auth = self.authorised()
        if isinstance(auth, str):  # NTLM handshake, second leg
            self.send(401, "", "text/plain", [("WWW-Authenticate", auth)])
            return
        if not auth:
            with st.lock:
                st.counters["auth_failures"] += 1
            offers = [("WWW-Authenticate", "NTLM")] if "ntlm" in self.server.auth else []
            if "basic" in self.server.auth:
                offers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
            self.send(401, "", "text/plain", offers)
            return
        ctype = (self.headers.get("Content-Type") or "").lower()
        if not ctype.startswith("application/soap+xml"):
            self.send(415, "", "text/plain")
            return
        with st.lock:
            mal = st.knobs["malformed"] if st.knobs["malformed_count"] > 0 else None
            if mal:
                st.knobs["malformed_count"] -= 1
                if st.knobs["malformed_count"] <= 0:
                    st.knobs["malformed"] = None
        status = 200
        try:
            text = raw.decode("utf-8")
            if "<!DOCTYPE" in text or "<!ENTITY" in text:
                raise SimError("s:Sender", "wsman:SchemaValidationError",
                               "Document type declarations are not accepted.", wmi_code=2150858817)
            try:
                doc = ET.fromstring(text)
            except ET.ParseError as e:
                raise SimError("s:Sender", "wsman:SchemaValidationError",
                               "The request is not well-formed XML: %s" % e, wmi_code=2150858817)
            if doc.tag != "{%s}Envelope" % NS_S:
                raise SimError("s:Sender", "s:VersionMismatch" if doc.tag.endswith("Envelope") else
                               "wsman:SchemaValidationError",
                               "The request is not a SOAP 1.2 envelope.", wmi_code=2150858817)
            out = Service(st).handle(doc)
        except SimError as e:
            with st.lock:
                st.counters["faults"] += 1
            status = e.status
            out = envelope(e.action, None, fault_body(e, st.host))
        except UnicodeDecodeError:
            status = 400
            out = envelope(ACT_WSMAN_FAULT, None, fault_body(SimError(
                "s:Sender", "wsman:EncodingLimit", "The request is not UTF-8.",
                FD + "CharacterSet"), st.host))
        if mal == "truncated":
            out = out[: len(out) // 2]
        elif mal == "garbage":
            out = "\x00\x01 this is not XML at all <<<"
        elif mal == "html":
            self.send(200, "<html><body>Service Unavailable</body></html>", "text/html")
            return
        elif mal == "doctype":
            out = ('<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaa">'
                   '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   '<s:Envelope xmlns:s="%s"><s:Body>&b;&x;</s:Body></s:Envelope>' % NS_S)
        elif mal == "empty":
            out = ""
        self.send(status, out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="Hyper-V WS-Management simulator (tests only)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--pid-file")
    ap.add_argument("--user", default=os.environ.get("HYPERV_SIM_USER", "administrator"))
    ap.add_argument("--password-file")
    ap.add_argument("--host-name", default="HVSIM01")
    ap.add_argument("--auth", default="basic,ntlm",
                    help="schemes offered: basic, ntlm (NTLMv2, connection-based) or both")
    ap.add_argument("--switch", action="append")
    ap.add_argument("--vm-root", default="C:\\ProgramData\\Microsoft\\Windows\\Hyper-V")
    ap.add_argument("--job-polls", type=int, default=1,
                    help="Gets of a job that still answer Running before it ends")
    ap.add_argument("--seed-vm", action="append", default=[], metavar="NAME:SWITCH",
                    help="a running VM that is not an appliance, with one vNIC on SWITCH")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    ap.add_argument("--tls-key", help="its PEM private key")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if a.password_file:
        with open(a.password_file, encoding="utf-8") as f:
            password = f.read().rstrip("\n")
    else:
        password = os.environ.get("HYPERV_SIM_PASSWORD")
    if not password:
        ap.error("a password is required (--password-file or HYPERV_SIM_PASSWORD)")
    st = State(a.host_name, a.switch or ["Production", "VLAN-Switch"], a.vm_root, a.job_polls)
    for sv in a.seed_vm:
        name, _, switch = sv.partition(":")
        st.seed_vm(name, switch)
    if os.environ.get("HYPERV_SIM_DROP_VLAN") == "1":
        st.knobs["drop_vlan"] = True
    if os.environ.get("HYPERV_SIM_FAIL_NEXT_JOB"):
        st.knobs["fail_next_job"] = os.environ["HYPERV_SIM_FAIL_NEXT_JOB"]
    if os.environ.get("HYPERV_SIM_MALFORMED"):
        st.knobs["malformed"], st.knobs["malformed_count"] = os.environ["HYPERV_SIM_MALFORMED"], 1
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state, srv.user, srv.password, srv.verbose = st, a.user, password, a.verbose
    srv.auth = {x.strip().lower() for x in a.auth.split(",") if x.strip()}
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    port = srv.server_address[1]
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
