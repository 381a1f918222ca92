/* payload_parse.c: the decoder of the bootstrap document. */
#include "config.h"

#include "payload_parse.h"
#include "error.h"
#include "payload.h"
#include "util.h"
#include "xml.h"

#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nx_payload_release(struct nx_payload *p)
{
    if (!p)
        return;
    free(p->tenant);
    free(p->host);
    free(p->appliance);
    free(p->network);
    free(p->gw_address);
    free(p->prod_network);
    for (size_t i = 0; i < p->n_nets; i++) {
        free(p->nets[i].name);
        free(p->nets[i].sp_host);
    }
    free(p->nets);
    free(p->rules);
    free(p->ca_pem);
    free(p->cert_pem);
    nx_free_secret(p->key_pem);
    memset(p, 0, sizeof(*p));
}

bool nx_payload_safe_host(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-'))
            return false;
    return true;
}

struct ctx {
    const char *name;
    int line;
};

static int bad(const struct ctx *c, xmlNodePtr n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(const struct ctx *c, xmlNodePtr n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nx_error_set(NX_EX_DATAERR, "%s:%ld: <%s>: %s", c->name, n ? xmlGetLineNo(n) : 0L,
                        n ? (const char *)n->name : "?", msg);
}

static const char *need(const struct ctx *c, xmlNodePtr n, const char *attr)
{
    const char *v = nx_xml_attr(n, attr);
    if (!v || !*v) {
        bad(c, n, "attribute '%s' is missing or empty", attr);
        return NULL;
    }
    if (strlen(v) > 1024) {
        bad(c, n, "attribute '%s' is too long", attr);
        return NULL;
    }
    return v;
}

static int need_uint(const struct ctx *c, xmlNodePtr n, const char *attr, unsigned long min,
                     unsigned long max, unsigned *out)
{
    const char *v = need(c, n, attr);
    unsigned long x;
    if (!v)
        return -1;
    if (!nx_parse_uint(v, min, max, &x))
        return bad(c, n, "%s='%s': not a number in %lu-%lu", attr, v, min, max);
    *out = (unsigned)x;
    return 0;
}

static int need_mac(const struct ctx *c, xmlNodePtr n, uint8_t mac[6])
{
    const char *v = need(c, n, "mac");
    if (!v)
        return -1;
    if (!nx_parse_mac(v, mac))
        return bad(c, n, "mac='%s': not a MAC address", v);
    return 0;
}

/* "a.b.c.d:port" */
static int endpoint(const struct ctx *c, xmlNodePtr n, const char *attr, uint32_t *ip,
                    unsigned *port)
{
    const char *v = need(c, n, attr);
    if (!v)
        return -1;
    const char *colon = strrchr(v, ':');
    char buf[16];
    unsigned long p;
    if (!colon || (size_t)(colon - v) >= sizeof(buf))
        return bad(c, n, "%s='%s': not IPv4:port", attr, v);
    memcpy(buf, v, (size_t)(colon - v));
    buf[colon - v] = '\0';
    if (!nx_parse_ipv4(buf, ip) || !nx_parse_uint(colon + 1, 1, 65535, &p))
        return bad(c, n, "%s='%s': not IPv4:port", attr, v);
    *port = (unsigned)p;
    return 0;
}

static int parse_address(const struct ctx *c, xmlNodePtr prod, struct nx_address *a)
{
    xmlNodePtr n = nx_xml_first_elem(prod);
    if (!n || nx_xml_next_elem(n))
        return bad(c, prod, "expected exactly one <dhcp/> or <static/>");
    memset(a, 0, sizeof(*a));
    if (nx_xml_is(n, NX_PAYLOAD_NS, "dhcp")) {
        a->mode = NX_ADDR_DHCP;
        return 0;
    }
    if (!nx_xml_is(n, NX_PAYLOAD_NS, "static"))
        return bad(c, n, "unexpected element");
    a->mode = NX_ADDR_STATIC;
    const char *ip = need(c, n, "ip");
    if (!ip)
        return -1;
    if (!nx_parse_cidr(ip, &a->ip, &a->prefix) || a->prefix == 0 || a->prefix > 32)
        return bad(c, n, "ip='%s': not an IPv4 address with a prefix length", ip);
    const char *gw = nx_xml_attr(n, "gateway");
    if (gw) {
        if (!nx_parse_ipv4(gw, &a->gateway))
            return bad(c, n, "gateway='%s': not an IPv4 address", gw);
        a->has_gateway = true;
    }
    for (xmlNodePtr d = nx_xml_first_elem(n); d; d = nx_xml_next_elem(d)) {
        if (!nx_xml_is(d, NX_PAYLOAD_NS, "dns"))
            return bad(c, d, "unexpected element");
        if (a->n_dns >= NX_MAX_DNS)
            return bad(c, d, "more than %d DNS servers", NX_MAX_DNS);
        char *t = nx_xml_text(d);
        bool ok = t && nx_parse_ipv4(t, &a->dns[a->n_dns]);
        free(t);
        if (!ok)
            return bad(c, d, "not an IPv4 address");
        a->n_dns++;
    }
    return 0;
}

static int parse_net(const struct ctx *c, xmlNodePtr n, struct nx_payload *p, bool tenant)
{
    if (p->n_nets >= NX_PAYLOAD_MAX_NETS)
        return bad(c, n, "too many networks");
    NX_GROW(p->nets, p->alloc_nets, p->n_nets + 1);
    struct nx_payload_net *e = &p->nets[p->n_nets];
    memset(e, 0, sizeof(*e));
    const char *name = need(c, n, "name");
    if (!name || need_uint(c, n, "vlan", 1, 4094, &e->vlan) < 0 ||
        need_uint(c, n, "tunnel-port", 1, 65535, &e->port) < 0)
        return -1;
    if (tenant) {
        const char *h = need(c, n, "sp-host");
        if (!h)
            return -1;
        e->sp_host = nx_strdup(h);
    } else {
        if (need_mac(c, n, e->mac) < 0)
            return -1;
        e->has_mac = true;
    }
    e->name = nx_strdup(name);
    p->n_nets++;
    for (size_t i = 0; i + 1 < p->n_nets; i++) {
        if (p->nets[i].vlan == e->vlan)
            return bad(c, n, "VLAN %u appears twice", e->vlan);
        if (p->nets[i].port == e->port)
            return bad(c, n, "tunnel port %u appears twice", e->port);
        if (e->has_mac && !memcmp(p->nets[i].mac, e->mac, 6))
            return bad(c, n, "MAC appears twice");
    }
    return 0;
}

static int parse_rule(const struct ctx *c, xmlNodePtr n, struct nx_payload *p)
{
    if (p->n_rules >= NX_PAYLOAD_MAX_RULES)
        return bad(c, n, "too many rules");
    struct nx_payload_rule r = {0};
    const char *proto = nx_xml_attr(n, "protocol");
    if (!proto || !strcmp(proto, "tcp"))
        r.proto = NX_PROTO_TCP;
    else if (!strcmp(proto, "udp"))
        r.proto = NX_PROTO_UDP;
    else
        return bad(c, n, "protocol='%s': tcp or udp", proto);
    if (endpoint(c, n, "public", &r.public_ip, &r.public_port) < 0 ||
        endpoint(c, n, "replica", &r.replica_ip, &r.replica_port) < 0)
        return -1;
    if (r.public_port == NX_RESERVED_PORT)
        return bad(c, n,
                   "public port %d is reserved for the appliance's management and is never "
                   "forwarded",
                   NX_RESERVED_PORT);
    for (size_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].public_ip == r.public_ip && p->rules[i].public_port == r.public_port &&
            p->rules[i].proto == r.proto)
            return bad(c, n, "the same public endpoint appears twice");
    NX_GROW(p->rules, p->alloc_rules, p->n_rules + 1);
    p->rules[p->n_rules++] = r;
    return 0;
}

static char *pem_text(const struct ctx *c, xmlNodePtr n, const char *kind)
{
    char *t = nx_xml_text(n);
    char *begin = nx_asprintf("-----BEGIN %s", kind);
    bool ok = t && strstr(t, begin) && strstr(t, "-----END ");
    free(begin);
    if (!ok) {
        nx_free_secret(t);
        bad(c, n, "not a PEM %s", kind);
        return NULL;
    }
    return t;
}

static int parse_pki(const struct ctx *c, xmlNodePtr n, struct nx_payload *p)
{
    if (p->ca_pem || p->pki_pending)
        return bad(c, n, "appears twice");
    if (nx_str_eq(nx_xml_attr(n, "pending"), "true")) {
        if (nx_xml_first_elem(n))
            return bad(c, n, "a pending <pki> has no content");
        p->pki_pending = true;
        return 0;
    }
    xmlNodePtr ca = nx_xml_first_elem(n), cert = ca ? nx_xml_next_elem(ca) : NULL,
               key = cert ? nx_xml_next_elem(cert) : NULL;
    if (!ca || !cert || !key || nx_xml_next_elem(key) ||
        !nx_xml_is(ca, NX_PAYLOAD_NS, "ca-certificate") ||
        !nx_xml_is(cert, NX_PAYLOAD_NS, "certificate") ||
        !nx_xml_is(key, NX_PAYLOAD_NS, "private-key"))
        return bad(c, n, "expected <ca-certificate>, <certificate>, <private-key>");
    if (!(p->ca_pem = pem_text(c, ca, "CERTIFICATE")) ||
        !(p->cert_pem = pem_text(c, cert, "CERTIFICATE")) ||
        !(p->key_pem = pem_text(c, key, "PRIVATE KEY")))
        return -1;
    return 0;
}

static int parse_root(const struct ctx *c, xmlNodePtr root, struct nx_payload *p)
{
    if (!nx_xml_is(root, NX_PAYLOAD_NS, "netext-payload"))
        return bad(c, root, "not a netext-deploy payload (expected <netext-payload xmlns='%s'>)",
                   NX_PAYLOAD_NS);
    unsigned long v;
    const char *ver = nx_xml_attr(root, "version");
    if (!ver || !nx_parse_uint(ver, 0, 1000000, &v))
        return bad(c, root, "version='%s': not a number", ver ? ver : "");
    p->version = (unsigned)v;
    if (p->version != NX_PAYLOAD_VERSION)
        return bad(c, root,
                   "payload version %u is not supported: this program reads version %d "
                   "(update the appliance's netext-bootstrap, or netext-deploy)",
                   p->version, NX_PAYLOAD_VERSION);
    const char *role = need(c, root, "role"), *t, *h, *a;
    if (!role)
        return -1;
    if (!strcmp(role, "provider"))
        p->role = NX_ROLE_PROVIDER;
    else if (!strcmp(role, "tenant"))
        p->role = NX_ROLE_TENANT;
    else
        return bad(c, root, "role='%s': provider or tenant", role);
    if (!(t = need(c, root, "tenant")) || !(h = need(c, root, "host")) ||
        !(a = need(c, root, "appliance")))
        return -1;
    p->tenant = nx_strdup(t);
    p->host = nx_strdup(h);
    p->appliance = nx_strdup(a);
    const char *net = nx_xml_attr(root, "network");
    if (net)
        p->network = nx_strdup(net);
    bool prod = false;
    for (xmlNodePtr n = nx_xml_first_elem(root); n; n = nx_xml_next_elem(n)) {
        if (nx_xml_is(n, NX_PAYLOAD_NS, "gateway")) {
            if (p->has_gateway)
                return bad(c, n, "appears twice");
            const char *addr = need(c, n, "address");
            if (!addr || need_uint(c, n, "port", 1, 65535, &p->gw_port) < 0)
                return -1;
            if (!nx_payload_safe_host(addr))
                return bad(c, n, "address='%s': not a host name or IPv4 address", addr);
            p->gw_address = nx_strdup(addr);
            p->has_gateway = true;
        } else if (nx_xml_is(n, NX_PAYLOAD_NS, "production")) {
            if (prod)
                return bad(c, n, "appears twice");
            prod = true;
            const char *pn = need(c, n, "network");
            if (!pn || need_uint(c, n, "vlan", 0, 4094, &p->prod_vlan) < 0 ||
                need_mac(c, n, p->prod_mac) < 0 || parse_address(c, n, &p->prod_addr) < 0)
                return -1;
            p->prod_network = nx_strdup(pn);
        } else if (nx_xml_is(n, NX_PAYLOAD_NS, "network") && p->role == NX_ROLE_PROVIDER) {
            if (parse_net(c, n, p, false) < 0)
                return -1;
        } else if (nx_xml_is(n, NX_PAYLOAD_NS, "extends") && p->role == NX_ROLE_TENANT) {
            if (parse_net(c, n, p, true) < 0)
                return -1;
        } else if (nx_xml_is(n, NX_PAYLOAD_NS, "public-ip-rule") && p->role == NX_ROLE_PROVIDER) {
            if (parse_rule(c, n, p) < 0)
                return -1;
        } else if (nx_xml_is(n, NX_PAYLOAD_NS, "pki")) {
            if (parse_pki(c, n, p) < 0)
                return -1;
        } else {
            return bad(c, n, "unexpected element in a %s payload", role);
        }
    }
    if (!prod)
        return bad(c, root, "no <production> network");
    if (p->n_nets && !p->has_gateway)
        return bad(c, root, "extended networks but no <gateway>");
    return 0;
}

int nx_payload_parse(const char *buf, size_t len, const char *name, struct nx_payload *out)
{
    memset(out, 0, sizeof(*out));
    if (len > NX_PAYLOAD_MAX_BYTES)
        return nx_error_set(NX_EX_DATAERR, "%s: payload larger than %d bytes", name,
                            NX_PAYLOAD_MAX_BYTES);
    xmlDocPtr doc = nx_xml_read_memory(buf, len, name, NX_EX_DATAERR);
    if (!doc)
        return -1;
    struct ctx c = {name, 0};
    int rc = parse_root(&c, xmlDocGetRootElement(doc), out);
    xmlFreeDoc(doc);
    if (rc < 0)
        nx_payload_release(out);
    return rc;
}
