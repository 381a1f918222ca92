# vcsim-lib.sh: VMware's vSphere simulator for the vSphere tiers (sourced
# after testlib.sh and nx_tmpdir). Every vcsim started here listens on
# 127.0.0.1 on a free port, with its own TLS certificate, and is stopped by
# PID in vcsim_stop_all (call it from the EXIT trap).

VCSIM_PIDS=""
VCSIM_USER=netext
VCSIM_PASSWORD=vcsim-test-pw

# Find vcsim and govc; build them with ../shared/tools/install-vcsim when
# the project's tool is there. Skips (77) the test when impossible.
vcsim_require() {
    # locks and keys of these runs stay in the test's directory
    NETEXT_DEPLOY_STATE_DIR="$NX_TMP/state"
    export NETEXT_DEPLOY_STATE_DIR
    if ! command -v vcsim >/dev/null 2>&1 || ! command -v govc >/dev/null 2>&1; then
        inst="$top_srcdir/../shared/tools/install-vcsim"
        if [ -x "$inst" ] && [ "${NX_NO_INSTALL:-0}" != 1 ]; then
            mkdir -p "${XDG_CACHE_HOME:-$HOME/.cache}/netext-deploy/bin"
            "$inst" "${XDG_CACHE_HOME:-$HOME/.cache}/netext-deploy/bin" >&2 ||
                skip_all "install-vcsim failed: vcsim/govc unavailable"
            PATH="${XDG_CACHE_HOME:-$HOME/.cache}/netext-deploy/bin:$PATH"
        fi
    fi
    command -v vcsim >/dev/null 2>&1 || skip_all "vcsim not found (run ../shared/tools/install-vcsim)"
    command -v govc >/dev/null 2>&1 || skip_all "govc not found (run ../shared/tools/install-vcsim)"
    command -v openssl >/dev/null 2>&1 || skip_all "openssl (the command) not found"
    command -v curl >/dev/null 2>&1 || skip_all "curl (the command) not found"
    PY=/usr/bin/python3
    [ -x "$PY" ] || PY=$(command -v python3) || skip_all "python3 not found"
}

vcsim_free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A CA-less self-signed certificate for 127.0.0.1 (the "untrusted" server cert).
vcsim_make_cert() {
    [ -f "$NX_TMP/vcsim-cert.pem" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$NX_TMP/vcsim-key.pem" \
        -out "$NX_TMP/vcsim-cert.pem" >/dev/null 2>&1
}

# vcsim_start NAME [vcsim options...]: sets VCSIM_PORT, VCSIM_URL, GOVC_* and
# VCSIM_PID; the log goes to $NX_TMP/NAME.log.
vcsim_start() {
    name=$1
    shift
    vcsim_make_cert || return 1
    for attempt in 1 2 3; do
        VCSIM_PORT=$(vcsim_free_port)
        vcsim -l "127.0.0.1:$VCSIM_PORT" -tlscert "$NX_TMP/vcsim-cert.pem" \
            -tlskey "$NX_TMP/vcsim-key.pem" -username "$VCSIM_USER" \
            -password "$VCSIM_PASSWORD" "$@" >"$NX_TMP/$name.log" 2>&1 &
        VCSIM_PID=$!
        VCSIM_PIDS="$VCSIM_PIDS $VCSIM_PID"
        export GOVC_URL="https://127.0.0.1:$VCSIM_PORT/sdk"
        export GOVC_USERNAME="$VCSIM_USER" GOVC_PASSWORD="$VCSIM_PASSWORD"
        export GOVC_TLS_CA_CERTS="$NX_TMP/vcsim-cert.pem"
        unset GOVC_INSECURE
        i=0
        while [ $i -lt 100 ]; do
            if ! kill -0 "$VCSIM_PID" 2>/dev/null; then
                break
            fi
            if govc about >/dev/null 2>&1; then
                VCSIM_URI="vsphere://127.0.0.1:$VCSIM_PORT/sdk"
                return 0
            fi
            sleep 0.2
            i=$((i + 1))
        done
        vcsim_stop "$VCSIM_PID"
    done
    echo "vcsim did not start; log:" >&2
    cat "$NX_TMP/$name.log" >&2
    return 1
}

vcsim_stop() {
    nx_stop "$1"
}

vcsim_stop_all() {
    nx_stop $VCSIM_PIDS
    VCSIM_PIDS=""
}

# The credentials file netext-deploy reads (mode 0600; never argv).
vcsim_credentials() {
    umask 077
    printf 'user = %s\npassword = %s\n' "$VCSIM_USER" "$VCSIM_PASSWORD" >"$NX_TMP/credentials"
    chmod 600 "$NX_TMP/credentials"
}

# vcsim_soap BODY: one raw SOAP call in a fresh session (for what govc cannot
# do, e.g. a VVol datastore); prints the answer.
vcsim_soap() {
    jar="$NX_TMP/soap-cookies"
    rm -f "$jar"
    env="<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>"
    end="</soapenv:Body></soapenv:Envelope>"
    curl -s --cacert "$NX_TMP/vcsim-cert.pem" -c "$jar" -b "$jar" -H 'Content-Type: text/xml' \
        -H 'SOAPAction: "urn:vim25/6.5"' \
        --data-binary "$env<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this><userName>$VCSIM_USER</userName><password>$VCSIM_PASSWORD</password></Login>$end" \
        "$GOVC_URL" >/dev/null || return 1
    curl -s --cacert "$NX_TMP/vcsim-cert.pem" -c "$jar" -b "$jar" -H 'Content-Type: text/xml' \
        -H 'SOAPAction: "urn:vim25/6.5"' --data-binary "$env$1$end" "$GOVC_URL"
}

# Number of requests in a vcsim -trace-file, and per method.
vcsim_trace_count() {
    tr -d '\000' <"$1" | grep -a -c '^Request: '
}
vcsim_trace_methods() {
    tr -d '\000' <"$1" | grep -a '^Request: ' |
        sed -n 's/.*<soapenv:Body><\([A-Za-z_]*\).*/\1/p' | sort | uniq -c
}

# vcsim_batch_plan FILE N URI [FIRST]: a batch plan of N tenants (numbered from
# FIRST, default 1), one provider appliance each with the production vNIC and
# 3 tenant VLANs (101-103, distributed portgroups dv-101..dv-103 made by
# vcsim_batch_setup). Every tenant has its own plan host (VLAN ownership is
# per plan host) on one of two ESXi hosts, DC0_H0 and DC0_C0_H0.
vcsim_batch_plan() {
    "$PY" - "$@" <<'PYEOF'
import sys
out, n, uri = sys.argv[1], int(sys.argv[2]), sys.argv[3]
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
hosts = ["DC0_H0", "DC0_C0_H0"]
with open(out, "w") as f:
    f.write('<netext-plan xmlns="urn:netext-deploy:plan:1" version="1">\n'
            '<gateway address="gw.example.com"/>\n')
    for i in range(first, first + n):
        f.write('<host name="h%d" uri="%s" target="%s" production-network="VM Network"/>\n'
                % (i, uri, hosts[i % 2]))
        f.write('<hardware-plan name="p%d" host="h%d"><network name="a" vlan="101"/>'
                '<network name="b" vlan="102"/><network name="c" vlan="103"/>'
                '</hardware-plan>\n' % (i, i))
        f.write('<tenant name="t%05d"><subscribe plan="p%d"/></tenant>\n' % (i, i))
    f.write('</netext-plan>\n')
PYEOF
}

# The distributed portgroups vcsim_batch_plan's tenants use.
vcsim_batch_setup() {
    for v in 101 102 103; do
        govc dvs.portgroup.add -dvs DVS0 -vlan $v dv-$v >/dev/null 2>&1 || return 1
    done
}

# vcsim_appliances FILE: every VM carrying a netext-deploy marker, one line
# each, independent of morefs and creation order: name, power state, marker,
# payload digest, and its vNICs (type, MAC, backing portgroup by name).
vcsim_appliances() {
    govc object.collect -json -type DistributedVirtualPortgroup / name key >"$NX_TMP/pgs.json" &&
        govc object.collect -json -type Network / name >"$NX_TMP/nets.json" &&
        govc object.collect -json -type m / name runtime.powerState config.extraConfig \
            config.hardware.device >"$NX_TMP/vms.json" || return 1
    "$PY" - "$NX_TMP" >"$1" <<'PYEOF'
import hashlib, json, sys
d = sys.argv[1]
def stream(path):
    s, dec, i, out = open(path).read(), json.JSONDecoder(), 0, []
    while True:
        while i < len(s) and s[i].isspace():
            i += 1
        if i >= len(s):
            return out
        o, i = dec.raw_decode(s, i)
        out.append(o)
def props(o):
    return {c["Name"]: c.get("Val") for c in (o.get("ChangeSet") or [])}
pg = {}
for o in stream(d + "/pgs.json"):
    p = props(o)
    pg[p.get("key")] = p.get("name")
lines = []
for o in stream(d + "/vms.json"):
    p = props(o)
    ec = {e["Key"]: e.get("Value") for e in ((p.get("config.extraConfig") or {}).get("OptionValue") or [])}
    if "netext-deploy.marker" not in ec:
        continue
    nics = []
    for dev in ((p.get("config.hardware.device") or {}).get("VirtualDevice") or []):
        if "MacAddress" not in dev:
            continue
        b = dev.get("Backing") or {}
        where = pg.get((b.get("Port") or {}).get("PortgroupKey")) or b.get("DeviceName") or "?"
        nics.append("%s/%s" % (dev["MacAddress"], where))
    payload = hashlib.sha256((ec.get("guestinfo.netext.payload") or "").encode()).hexdigest()[:16]
    lines.append("%s %s marker=%s payload=%s nics=%s" % (p.get("name"), p.get("runtime.powerState"),
                 ec["netext-deploy.marker"], payload, ",".join(sorted(nics))))
print("\n".join(sorted(lines)))
PYEOF
}
