"""selftest.py: checks faultproxy.py against a small upstream in the same process.

Run as `faultproxy.py --self-test`. Prints "ok N - ..." lines and a
"N passed, N failed" summary; returns non-zero on any failure.
"""

import http.client
import http.server
import json
import os
import socket
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import faultproxy

SOAP11 = ('<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
          'envelope/"><soapenv:Body><%s xmlns="urn:vim25"><_this type="VirtualMachine">vm-7</_this>'
          '<password>pw-canary-1</password></%s></soapenv:Body></soapenv:Envelope>')
SOAP12 = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.'
          'xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action s:mustUnderstand="true">http://'
          'schemas.microsoft.com/wbem/wsman/1/wmi/root/virtualization/v2/Msvm_VirtualSystemManagement'
          'Service/%s</a:Action></s:Header><s:Body/></s:Envelope>')


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Upstream.seen.append((faultproxy.soap_method(body), body, self.headers.get("Cookie")))
        m = faultproxy.soap_method(body) or "none"
        out = ("<r><method>%s</method>%s</r>" % (m, "x" * 200)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Set-Cookie", "vmware_soap_session=abc; Path=/")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class T:
    def __init__(self):
        self.n = self.passed = self.failed = 0

    def check(self, cond, what):
        self.n += 1
        if cond:
            self.passed += 1
            print("ok %d - %s" % (self.n, what))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, what))


def start(handler_srv):
    t = threading.Thread(target=handler_srv.serve_forever, daemon=True)
    t.start()
    return handler_srv


def run():
    t = T()
    up = start(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream))
    up.daemon_threads = True
    tmp = tempfile.mkdtemp(prefix="faultproxy-selftest.")
    log = os.path.join(tmp, "log")
    a = faultproxy.parse_args(["--upstream", "http://127.0.0.1:%d" % up.server_address[1],
                               "--log", log, "--delay", "0.3"])
    px = start(faultproxy.make_server(a))
    port = px.server_address[1]

    def config(d):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/faultproxy/config", json.dumps(d))
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    def call(method, soap12=False, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        body = (SOAP12 % method) if soap12 else (SOAP11 % (method, method))
        ctype = "application/soap+xml;charset=UTF-8" if soap12 else "text/xml"
        c.request("POST", "/sdk", body, {"Content-Type": ctype, "Cookie": "k=v"})
        r = c.getresponse()
        return r, r.read()

    def forced(fault, **extra):
        rule = {"fault": fault, "times": 1}
        rule.update(extra)
        return config({"rules": [rule]})

    # plain forwarding, keep-alive, headers both ways
    Upstream.seen.clear()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    r1, b1 = call("RetrieveServiceContent", conn=c)
    r2, b2 = call("Login", conn=c)
    t.check(r1.status == 200 and b"RetrieveServiceContent" in b1 and b"Login" in b2,
            "rate 0: requests forwarded, answers passed back (keep-alive, 2 on one connection)")
    t.check(r1.getheader("Set-Cookie", "").startswith("vmware_soap_session=abc") and
            Upstream.seen[0][2] == "k=v", "cookies pass both ways")
    c.close()
    t.check(faultproxy.soap_method((SOAP12 % "DefineSystem").encode()) == "DefineSystem" and
            faultproxy.soap_method((SOAP11 % ("CreateVM_Task", "CreateVM_Task")).encode()) ==
            "CreateVM_Task", "method names: WS-Addressing Action and SOAP 1.1 body element")

    # each fault
    Upstream.seen.clear()
    forced("drop-before")
    try:
        call("CreateVM_Task")
        got = "answered"
    except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
        got = "dropped"
    t.check(got == "dropped" and not Upstream.seen, "drop-before: connection closed, nothing forwarded")
    forced("drop-after")
    try:
        call("CreateVM_Task")
        got = "answered"
    except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
        got = "dropped"
    t.check(got == "dropped" and [m for m, _, _ in Upstream.seen] == ["CreateVM_Task"],
            "drop-after: forwarded once, then closed without an answer")
    Upstream.seen.clear()
    for code in (500, 503):
        forced("http-%d" % code)
        r, b = call("Login")
        t.check(r.status == code and not Upstream.seen and (code != 503 or r.getheader("Retry-After")),
                "http-%d: answered by the proxy, nothing forwarded" % code)
    forced("soap-fault", fault_type="InsufficientResourcesFault", message="no room <here>")
    r, b = call("PowerOnVM_Task")
    doc = ET.fromstring(b)
    fs = doc.find(".//faultstring")
    t.check(r.status == 500 and fs is not None and fs.text == "no room <here>" and
            b"InsufficientResourcesFault" in b and not Upstream.seen,
            "soap-fault (SOAP 1.1): a well-formed fault with the rule's type and message")
    forced("soap-fault")
    r, b = call("DefineSystem", soap12=True)
    doc = ET.fromstring(b)
    ns = {"s": "http://www.w3.org/2003/05/soap-envelope"}
    t.check(r.status == 500 and doc.find(".//s:Fault/s:Code/s:Value", ns).text == "s:Receiver" and
            r.getheader("Content-Type").startswith("application/soap+xml"),
            "soap-fault (SOAP 1.2 for WS-Management): s:Receiver fault")
    forced("truncate")
    try:
        call("RetrievePropertiesEx")
        got = "complete"
    except http.client.IncompleteRead:
        got = "incomplete"
    t.check(got == "incomplete" and Upstream.seen[-1][0] == "RetrievePropertiesEx",
            "truncate: forwarded, half the body under the full Content-Length")
    forced("cut")
    r, b = call("RetrievePropertiesEx")
    try:
        ET.fromstring(b)
        wf = True
    except ET.ParseError:
        wf = False
    t.check(r.status == 200 and not wf and len(b) == int(r.getheader("Content-Length")),
            "cut: consistent Content-Length, malformed XML")
    forced("delay")
    t0 = time.time()
    r, b = call("WaitForUpdatesEx")
    t.check(r.status == 200 and time.time() - t0 >= 0.29, "delay: answered after --delay")
    Upstream.seen.clear()
    forced("task-error", method="PowerOnVM_Task")
    r, b = call("PowerOnVM_Task")
    t.check([m for m, _, _ in Upstream.seen] == ["CustomizeVM_Task"] and b"vm-7" in Upstream.seen[0][1] and
            Upstream.seen[0][1].count(b"<nicSettingMap>") == 16,
            "task-error: the power-on reaches the server as a failing CustomizeVM_Task of the same VM")
    # rules: method filter, skip, times
    Upstream.seen.clear()
    config({"rules": [{"method": "Logout", "fault": "http-500", "skip": 1, "times": 2}]})
    st = [call(m)[0].status for m in ("Login", "Logout", "Logout", "Logout", "Logout")]
    t.check(st == [200, 200, 500, 500, 200], "rules: method, skip and times (%s)" % st)
    config({"rules": []})

    # random faults: rate, seed, reproducibility
    def sequence(seed, rate, only=()):
        config({"seed": seed, "rate": rate, "faults": ["http-500", "http-503"], "only": list(only)})
        return [call("M%d" % (i % 3))[0].status for i in range(60)]
    s1 = sequence(7, 0.3)
    s2 = sequence(7, 0.3)
    s3 = sequence(8, 0.3)
    nf = sum(1 for s in s1 if s != 200)
    t.check(s1 == s2 and s1 != s3, "same seed, same faults; another seed, others")
    t.check(8 <= nf <= 30, "rate 0.3: %d of 60 requests faulted" % nf)
    t.check(all(s == 200 for s in sequence(7, 0.0)), "rate 0: no fault")
    s4 = sequence(7, 1.0, only=["M1"])
    t.check(all((s != 200) == (i % 3 == 1) for i, s in enumerate(s4)), "--only: only those methods")
    config({"rate": 0, "only": []})

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/faultproxy/stats")
    stats = json.loads(c.getresponse().read())
    c.close()
    t.check(stats["faults"].get("drop-after") == 1 and stats["requests"] > 60, "stats count faults")
    lines = [json.loads(x) for x in open(log)]
    t.check(len(lines) == stats["requests"] and any(x["fault"] == "drop-after" and x["forwarded"]
                                                  for x in lines) and
            all("pw-canary-1" not in json.dumps(x) for x in lines) and
            any(x.get("obj") == "vm-7" for x in lines),
            "log: one line per request, forwarded or not, the object acted on, no bodies")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("POST", "/faultproxy/config", json.dumps({"faults": ["nonsense"]}))
    t.check(c.getresponse().status == 400, "an unknown fault in a config is refused")
    c.close()

    # the listening socket is on 127.0.0.1 only
    t.check(px.server_address[0] == "127.0.0.1", "listens on 127.0.0.1")
    px.shutdown()
    up.shutdown()
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    print("%d passed, %d failed" % (t.passed, t.failed))
    return 0 if t.failed == 0 else 1
