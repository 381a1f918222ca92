/* payload.c: rendering of the bootstrap document. */
#include "payload.h"
#include "util.h"

#include <openssl/evp.h>
#include <stdio.h>

void nx_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void attr(struct strbuf *sb, const char *name, const char *value)
{
    strbuf_addf(sb, " %s=\"", name);
    strbuf_add_xml_escaped(sb, value ? value : "");
    strbuf_addch(sb, '"');
}

static void address(struct strbuf *sb, const struct nx_address *a)
{
    char ip[16];
    if (!a) {
        strbuf_addstr(sb, "    <dhcp/>\n");
        return;
    }
    nx_format_ipv4(a->ip, ip);
    strbuf_addf(sb, "    <static ip=\"%s/%u\"", ip, a->prefix);
    if (a->has_gateway) {
        nx_format_ipv4(a->gateway, ip);
        strbuf_addf(sb, " gateway=\"%s\"", ip);
    }
    strbuf_addstr(sb, a->n_dns ? ">\n" : "/>\n");
    for (size_t i = 0; i < a->n_dns; i++) {
        nx_format_ipv4(a->dns[i], ip);
        strbuf_addf(sb, "      <dns>%s</dns>\n", ip);
    }
    if (a->n_dns)
        strbuf_addstr(sb, "    </static>\n");
}

static bool rule_applies(const struct nx_rule *r, const struct nx_appliance_spec *s)
{
    return !r->host_name || nx_str_eq(r->host_name, s->host->name);
}

void nx_payload_render(struct strbuf *sb, const struct nx_model *m,
                       const struct nx_appliance_spec *s)
{
    char mac[18], a[16], b[16];
    strbuf_addf(sb,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<netext-payload xmlns=\"%s\" "
                "version=\"%d\"",
                NX_PAYLOAD_NS, NX_PAYLOAD_VERSION);
    attr(sb, "role", nx_role_name(s->role));
    attr(sb, "tenant", s->tenant->name);
    attr(sb, "host", s->host->name);
    attr(sb, "appliance", s->name);
    if (s->net)
        attr(sb, "network", s->net);
    strbuf_addstr(sb, ">\n");
    if (m->has_gateway)
        strbuf_addf(sb, "  <gateway address=\"%s\" port=\"%u\"/>\n",
                    m->gateway.address ? m->gateway.address : "", m->gateway.port);
    for (size_t i = 0; i < s->n_vnics; i++) {
        const struct nx_vnic_spec *v = &s->vnics[i];
        nx_format_mac(v->mac, mac);
        if (v->kind == NX_VNIC_PRODUCTION) {
            strbuf_addstr(sb, "  <production");
            attr(sb, "network", v->label);
            strbuf_addf(sb, " vlan=\"%u\" mac=\"%s\">\n", v->vlan, mac);
            address(sb, s->addr);
            strbuf_addstr(sb, "  </production>\n");
        } else {
            strbuf_addstr(sb, "  <network");
            attr(sb, "name", v->label);
            strbuf_addf(sb, " vlan=\"%u\" mac=\"%s\"/>\n", v->vlan, mac);
        }
    }
    /* tenant side: the extended network(s) bridged to the production network */
    for (size_t i = 0; i < s->n_extends; i++) {
        strbuf_addstr(sb, "  <extends");
        attr(sb, "name", s->extends[i].name);
        strbuf_addf(sb, " vlan=\"%u\"", s->extends[i].vlan);
        attr(sb, "sp-host", s->extends[i].sp_host);
        strbuf_addstr(sb, "/>\n");
    }
    for (size_t i = 0; s->role == NX_ROLE_PROVIDER && i < s->tenant->n_rules; i++) {
        const struct nx_rule *r = &s->tenant->rules[i];
        if (!rule_applies(r, s))
            continue;
        nx_format_ipv4(r->public_ip, a);
        nx_format_ipv4(r->replica_ip, b);
        strbuf_addf(sb, "  <public-ip-rule protocol=\"%s\" public=\"%s:%u\" replica=\"%s:%u\"/>\n",
                    r->proto == NX_PROTO_UDP ? "udp" : "tcp", a, r->public_port, b,
                    r->replica_port);
    }
    strbuf_addstr(sb, "</netext-payload>\n");
}
