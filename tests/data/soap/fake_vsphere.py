#!/usr/bin/python3
"""fake_vsphere.py MODE PORTFILE LOGFILE: a scripted vSphere SOAP endpoint
(plain HTTP, 127.0.0.1, a free port written to PORTFILE) that answers from the
recorded vcsim answers next to this file, for what vcsim cannot show:

  page        RetrievePropertiesEx pages: half the objects and a token, then
              ContinueRetrievePropertiesEx with the rest
  missingset  the first RetrievePropertiesEx answers HTTP 200 with
              NotAuthenticated inside missingSet (session dropped)
  truncated   RetrievePropertiesEx answer cut in the middle
  html        RetrievePropertiesEx answered by a 503 HTML page
  slow        RetrievePropertiesEx never answers in time
  garbage     RetrievePropertiesEx answers with random bytes

Every request's method is appended to LOGFILE (one per line)."""
import os
import random
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
MODE, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


SERVICE_CONTENT = load("service-content.xml")
PROPS = load("retrieve-properties.xml")
MISSINGSET = load("missingset-not-authenticated.xml")
NOT_AUTH = load("fault-not-authenticated.xml")
OBJECTS = re.findall(r"<objects>.*?</objects>", PROPS, flags=re.S)
HEAD = PROPS[: PROPS.index("<returnval>")]
TAIL = "</RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>\n"


def envelope(method, inner):
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<%sResponse xmlns="urn:vim25">%s</%sResponse></soapenv:Body></soapenv:Envelope>'
        % (method, inner, method)
    )


state = {"logins": 0, "retrieves": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="text/xml; charset=utf-8", cookie=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        m = re.search(r"<soapenv:Body><(\w+)", body)
        method = m.group(1) if m else "?"
        with open(LOGFILE, "a") as f:
            f.write(method + "\n")
        session = "vmware_soap_session=s%d" % state["logins"]
        cookie = self.headers.get("Cookie", "")
        if method == "RetrieveServiceContent":
            return self.send(200, SERVICE_CONTENT)
        if method == "Login":
            state["logins"] += 1
            return self.send(
                200,
                envelope("Login", "<returnval><key>k</key><userName>u</userName></returnval>"),
                cookie="vmware_soap_session=s%d; Path=/; HttpOnly" % state["logins"],
            )
        if session not in cookie:
            return self.send(500, NOT_AUTH)
        if method == "Logout":
            return self.send(200, envelope("Logout", ""))
        if method == "CreateContainerView":
            return self.send(
                200,
                envelope("CreateContainerView",
                         '<returnval type="ContainerView">session[x]view</returnval>'),
            )
        if method in ("RetrievePropertiesEx", "ContinueRetrievePropertiesEx"):
            state["retrieves"] += 1
            if MODE == "missingset" and state["retrieves"] == 1:
                return self.send(200, MISSINGSET)
            # (a dropped reused connection is retried once by libcurl itself:
            # flakydrop drops twice so that the provider's retry is needed)
            if MODE.startswith("flaky") and (state["retrieves"] == 1 or (
                    MODE == "flakydrop" and state["retrieves"] == 2)):
                # the first inventory read fails once, transiently
                if MODE == "flaky503":
                    return self.send(503, "<html><body>Service Unavailable</body></html>",
                                     ctype="text/html")
                if MODE == "flakytrunc":
                    return self.send(200, PROPS[: len(PROPS) // 3])
                if MODE == "flakydrop":
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return None
            if MODE == "truncated":
                return self.send(200, PROPS[: len(PROPS) // 2])
            if MODE == "garbage":
                random.seed(7)
                return self.send(200, bytes(random.randrange(256) for _ in range(4096)))
            if MODE == "html":
                return self.send(503, "<html><body>Service Unavailable</body></html>",
                                 ctype="text/html")
            if MODE == "slow":
                time.sleep(5)
                return self.send(200, PROPS)
            if MODE == "page":
                half = len(OBJECTS) // 2
                if method == "RetrievePropertiesEx":
                    if "<token>" in body:
                        return self.send(500, NOT_AUTH)
                    return self.send(200, HEAD + "<returnval><token>page-2</token>"
                                     + "".join(OBJECTS[:half]) + "</returnval>" + TAIL)
                if "<token>page-2</token>" not in body:
                    return self.send(500, NOT_AUTH)
                body = HEAD.replace("RetrievePropertiesExResponse",
                                    "ContinueRetrievePropertiesExResponse")
                return self.send(200, body + "<returnval>" + "".join(OBJECTS[half:])
                                 + "</returnval>" + TAIL.replace(
                                     "RetrievePropertiesExResponse",
                                     "ContinueRetrievePropertiesExResponse"))
            return self.send(200, PROPS)
        return self.send(500, NOT_AUTH)


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
