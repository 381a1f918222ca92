#!/usr/bin/python3
"""faultproxy.py: the project's fault-injecting HTTP(S) reverse proxy (tests only).

Standard library only; run with /usr/bin/python3.

    faultproxy.py --upstream URL [--upstream-cacert PEM | --upstream-insecure]
                  [--port N|0] [--port-file F] [--tls-cert PEM --tls-key PEM]
                  [--rate R] [--seed N] [--faults LIST] [--delay MIN[:MAX]]
                  [--only METHODS] [--skip METHODS] [--log FILE] [--verbose]
    faultproxy.py --self-test

It listens on 127.0.0.1 only (HTTPS with --tls-cert, else HTTP) and forwards
every request to --upstream (vcsim's https://127.0.0.1:P, the Hyper-V
simulator's http://127.0.0.1:P), one upstream connection per client
connection (so connection-based authentication such as NTLM still works).
With probability --rate a request gets one fault, drawn from --faults with a
random.Random(--seed), so a run can be replayed:

  delay        forward, then hold the answer for --delay seconds (default
               0.2:1.5, uniform): the change is made, the answer is late
  drop-before  close the connection without forwarding (nothing reached the server)
  drop-after   forward, then close the connection without answering (the
               change is made, the client never hears of it)
  http-500     answer 500 (an HTML page) without forwarding
  http-503     answer 503 with Retry-After: 1 without forwarding
  soap-fault   answer 500 with a SOAP fault without forwarding (SOAP 1.1
               ServerFaultCode/SystemError for vSphere, SOAP 1.2
               s:Receiver/w:InternalError for WS-Management, chosen from the
               request's Content-Type)
  truncate     forward, then send the upstream headers with the full
               Content-Length but only half the body, and close
  cut          forward, then send half the body with a matching
               Content-Length (well-formed HTTP, malformed XML)

The SOAP method of a request (for --only, --skip, rules and the log) is the
last segment of its WS-Addressing Action (WS-Management) or the first element
of the SOAP Body (vSphere). --only/--skip are comma-separated method names.

Rules, consulted before the random draw, make a fault deterministic:
    {"method": "PowerOnVM_Task", "fault": "soap-fault", "times": 1,
     "fault_type": "InsufficientResourcesFault", "message": "..."}
"times" (default 1; -1: always) counts the requests the rule fires on; "skip"
lets that many matching requests through first. One more fault exists for
rules only:
  task-error   (vSphere power-on) forward the request as a CustomizeVM_Task
               of the same VM with 16 NIC settings, which the server accepts
               and runs as a task that fails (NicSettingMismatch) without
               touching the VM; the answer is renamed back, so the client
               sees its power-on task fail, and the VM stays off
Control, not forwarded, from 127.0.0.1:
    GET  /faultproxy/stats    counters: requests, faults by kind, methods
    POST /faultproxy/config   JSON: any of rate, seed, faults, only, skip,
                              delay ([min, max]), rules (replaces), log_reset
The log (--log) has one JSON line per request: n, conn, method, obj (a
vSphere call's _this), vm (CreateVM_Task's VM name), fault, status (upstream,
or injected; null when none was sent), forwarded (whether the server saw the
request), ms. Bodies are never logged (they hold
passwords).
"""

import argparse
import http.client
import http.server
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse

FAULTS = ("delay", "drop-before", "drop-after", "http-500", "http-503", "soap-fault",
          "truncate", "cut")
RULE_ONLY = ("task-error",)
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailer", "transfer-encoding", "upgrade", "content-length", "host", "expect"}
ACTION_RE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?Action\b[^>]*>\s*([^<\s]+)\s*</", re.S)
BODY_RE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?Body\b[^>]*>\s*<(?:[A-Za-z0-9_]+:)?([A-Za-z0-9_]+)", re.S)
THIS_RE = re.compile(rb'<_this type="VirtualMachine">([^<]+)</_this>')
OBJ_RE = re.compile(rb'<_this type="[A-Za-z]+">([^<]+)</_this>')
VMNAME_RE = re.compile(rb"<config>\s*<name>([^<]+)</name>")


def soap_method(body):
    m = ACTION_RE.search(body)
    if m:
        return m.group(1).decode("utf-8", "replace").rstrip("/").rsplit("/", 1)[-1]
    m = BODY_RE.search(body)
    if m:
        return m.group(1).decode("utf-8", "replace")
    return None


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def soap_fault(soap12, fault_type, message):
    if soap12:
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
                'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
                'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">'
                '<s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action>'
                '</s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value>'
                '<s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code>'
                '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>'
                '</s:Fault></s:Body></s:Envelope>' % esc(message))
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            '<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>'
            '<detail><%sFault xmlns="urn:vim25" xsi:type="%s"><reason>%s</reason></%sFault>'
            '</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>'
            % (esc(message), fault_type, fault_type, esc(message), fault_type))


class Config:
    def __init__(self, a):
        self.lock = threading.Lock()
        self.rate = a.rate
        self.seed = a.seed
        self.rng = random.Random(a.seed)
        self.faults = list(a.faults)
        self.only = set(a.only)
        self.skip = set(a.skip)
        self.delay = a.delay
        self.rules = []
        self.n = 0
        self.conns = 0
        self.stats = {"requests": 0, "forwarded": 0, "faults": {}, "methods": {}}
        self.log_path = a.log
        self.log = open(a.log, "a", buffering=1) if a.log else None

    def update(self, d):
        with self.lock:
            for k, v in d.items():
                if k == "rate":
                    self.rate = float(v)
                elif k == "seed":
                    self.seed = int(v)
                    self.rng = random.Random(self.seed)
                elif k == "faults":
                    bad = [f for f in v if f not in FAULTS]
                    if bad:
                        raise ValueError("unknown fault %s" % bad[0])
                    self.faults = list(v)
                elif k == "only":
                    self.only = set(v)
                elif k == "skip":
                    self.skip = set(v)
                elif k == "delay":
                    self.delay = (float(v[0]), float(v[1]))
                elif k == "rules":
                    for r in v:
                        if r.get("fault") not in FAULTS + RULE_ONLY:
                            raise ValueError("unknown fault in rule: %r" % r.get("fault"))
                    self.rules = [dict(r) for r in v]
                elif k == "log_reset":
                    self.stats = {"requests": 0, "forwarded": 0, "faults": {}, "methods": {}}
                else:
                    raise ValueError("unknown setting %s" % k)

    def choose(self, method):
        """The fault for the next request (or None), its rule, delay and request number."""
        with self.lock:
            self.n += 1
            n = self.n
            self.stats["requests"] += 1
            self.stats["methods"][method or "?"] = self.stats["methods"].get(method or "?", 0) + 1
            fault, rule = None, None
            for r in self.rules:
                if r.get("method") not in (None, method) or r.get("times", 1) == 0:
                    continue
                if r.get("skip", 0) > 0:
                    r["skip"] -= 1
                    continue
                if r.get("times", 1) > 0:
                    r["times"] = r.get("times", 1) - 1
                fault, rule = r["fault"], r
                break
            # the draw happens for every request, so a sequence does not
            # depend on whether rules fired
            x = self.rng.random()
            pick = self.rng.choice(self.faults) if self.faults else None
            d = self.rng.uniform(*self.delay)
            if fault is None and x < self.rate and pick and \
                    (not self.only or method in self.only) and method not in self.skip:
                fault = pick
            if fault:
                self.stats["faults"][fault] = self.stats["faults"].get(fault, 0) + 1
            return n, fault, rule, d

    def record(self, **kw):
        if kw.get("forwarded"):
            with self.lock:
                self.stats["forwarded"] += 1
        if self.log:
            self.log.write(json.dumps(kw, sort_keys=True) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    sys_version = ""
    upstream = None

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("faultproxy: %s\n" % (fmt % args))

    def setup(self):
        super().setup()
        with self.server.cfg.lock:
            self.server.cfg.conns += 1
            self.conn_id = self.server.cfg.conns

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

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
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, body, ctype, headers=None, length=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers or []:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def drop(self):
        """Close the client connection without an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def connect_upstream(self):
        u = self.server.up
        if self.upstream is None:
            if u.scheme == "https":
                self.upstream = http.client.HTTPSConnection(
                    u.hostname, u.port or 443, context=self.server.up_ctx, timeout=300)
            else:
                self.upstream = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
        return self.upstream

    def forward(self, body):
        hdrs = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP]
        hdrs.append(("Host", self.server.up.netloc))
        for attempt in (1, 2):
            c = self.connect_upstream()
            try:
                c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in hdrs:
                    c.putheader(k, v)
                c.putheader("Content-Length", str(len(body)))
                c.endheaders(body)
                r = c.getresponse()
                data = r.read()
                return r.status, r.reason, [(k, v) for k, v in r.getheaders() if k.lower() not in HOP], data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the upstream closed its idle keep-alive connection: reconnect once
                c.close()
                self.upstream = None
                if attempt == 2:
                    raise

    def do_GET(self):
        if self.path == "/faultproxy/stats":
            with self.server.cfg.lock:
                s = json.dumps(self.server.cfg.stats, sort_keys=True)
            return self.answer(200, s, "application/json")
        return self.handle_any(b"")

    def do_POST(self):
        body = self.read_body()
        if self.path == "/faultproxy/config":
            try:
                self.server.cfg.update(json.loads(body or b"{}"))
            except (ValueError, TypeError, KeyError, IndexError) as e:
                return self.answer(400, "bad config: %s\n" % e, "text/plain")
            return self.answer(200, "ok\n", "text/plain")
        return self.handle_any(body)

    def handle_any(self, body):
        cfg = self.server.cfg
        method = soap_method(body)
        n, fault, rule, delay = cfg.choose(method)
        soap12 = "soap+xml" in (self.headers.get("Content-Type") or "").lower()
        t0 = time.time()
        rec = {"n": n, "conn": self.conn_id, "method": method, "fault": fault,
               "forwarded": False, "status": None}
        # the object a vSphere call acts on (a moref; a new VM's name): no secrets
        o = OBJ_RE.search(body)
        if o:
            rec["obj"] = o.group(1).decode("utf-8", "replace")
        if method == "CreateVM_Task":
            o = VMNAME_RE.search(body)
            rec["vm"] = o.group(1).decode("utf-8", "replace") if o else None

        def done():
            rec["ms"] = int((time.time() - t0) * 1000)
            cfg.record(**rec)

        if fault == "drop-before":
            self.drop()
            return done()
        if fault in ("http-500", "http-503", "soap-fault"):
            if fault == "http-500":
                rec["status"] = 500
                self.answer(500, "<html><body><h1>500 Internal Server Error</h1></body></html>",
                            "text/html")
            elif fault == "http-503":
                rec["status"] = 503
                self.answer(503, "<html><body><h1>503 Service Unavailable</h1></body></html>",
                            "text/html", [("Retry-After", "1")])
            else:
                rec["status"] = 500
                ftype = (rule or {}).get("fault_type", "SystemError")
                msg = (rule or {}).get("message", "faultproxy: injected fault (%s)" % (method or "?"))
                self.answer(500, soap_fault(soap12, ftype, msg),
                            "application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8")
            return done()
        send_body = body
        if fault == "task-error":
            vm = THIS_RE.search(body)
            if method != "PowerOnVM_Task" or not vm:
                fault = rec["fault"] = None
            else:
                nics = ('<nicSettingMap><adapter><ip xsi:type="CustomizationDhcpIpGenerator"/>'
                        '</adapter></nicSettingMap>') * 16
                send_body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                             'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
                             '<CustomizeVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">%s'
                             '</_this><spec><identity xsi:type="CustomizationLinuxPrep"><hostName '
                             'xsi:type="CustomizationFixedName"><name>faultproxy</name></hostName>'
                             '<domain>invalid</domain></identity><globalIPSettings/>%s</spec>'
                             '</CustomizeVM_Task></soapenv:Body></soapenv:Envelope>'
                             % (vm.group(1).decode(), nics)).encode()
        try:
            status, reason, hdrs, data = self.forward(send_body)
        except (OSError, http.client.HTTPException) as e:
            rec["error"] = "upstream: %s" % e.__class__.__name__
            rec["status"] = 502
            self.answer(502, "faultproxy: upstream failed\n", "text/plain")
            return done()
        rec["forwarded"] = True
        rec["status"] = status
        if fault == "task-error":
            data = data.replace(b"CustomizeVM_TaskResponse", b"PowerOnVM_TaskResponse")
        ctype = "text/xml"
        rest = []
        for k, v in hdrs:
            if k.lower() == "content-type":
                ctype = v
            else:
                rest.append((k, v))
        if fault == "drop-after":
            self.drop()
            return done()
        if fault == "delay":
            rec["delay_ms"] = int(delay * 1000)
            time.sleep(delay)
        try:
            if fault == "truncate":
                self.send_response(status, reason)
                self.send_header("Content-Type", ctype)
                for k, v in rest:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.drop()
            elif fault == "cut":
                self.send_response(status, reason)
                self.send_header("Content-Type", ctype)
                for k, v in rest:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data) // 2))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
            else:
                self.send_response(status, reason)
                self.send_header("Content-Type", ctype)
                for k, v in rest:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            rec["error"] = "client went away"
            self.close_connection = True
        return done()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # clients that go away (the faults make them) are not errors
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def make_server(a):
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.cfg = Config(a)
    srv.verbose = a.verbose
    srv.up = urllib.parse.urlsplit(a.upstream)
    if srv.up.scheme not in ("http", "https") or not srv.up.hostname:
        raise SystemExit("faultproxy: --upstream must be http(s)://HOST:PORT")
    srv.up_ctx = None
    if srv.up.scheme == "https":
        if a.upstream_insecure:
            srv.up_ctx = ssl._create_unverified_context()
        else:
            srv.up_ctx = ssl.create_default_context(cafile=a.upstream_cacert)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    return srv


def parse_args(argv):
    ap = argparse.ArgumentParser(description="fault-injecting HTTP proxy (tests only)")
    ap.add_argument("--upstream")
    ap.add_argument("--upstream-cacert")
    ap.add_argument("--upstream-insecure", action="store_true")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--pid-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--delay", default="0.2:1.5")
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("--log")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    a.faults = [f for f in a.faults.split(",") if f]
    for f in a.faults:
        if f not in FAULTS:
            ap.error("unknown fault %s (known: %s)" % (f, ", ".join(FAULTS)))
    lo, _, hi = a.delay.partition(":")
    a.delay = (float(lo), float(hi or lo))
    a.only = [m for m in a.only.split(",") if m]
    a.skip = [m for m in a.skip.split(",") if m]
    if not a.self_test and not a.upstream:
        ap.error("--upstream is required")
    return a


def main(argv):
    a = parse_args(argv)
    if a.self_test:
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        sys.dont_write_bytecode = True  # no __pycache__ in the source tree
        import selftest
        return selftest.run()
    srv = make_server(a)
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
