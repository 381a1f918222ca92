/* payload.c: rendering of the bootstrap document. */
#include "config.h"

#include "payload.h"
#include "pki.h"
#include "util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nx_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

unsigned nx_tunnel_port(unsigned gateway_port, unsigned vlan)
{
    unsigned p = gateway_port + vlan;
    return p <= 65535 ? p : NX_TUNNEL_PORT_FALLBACK + vlan;
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

static void pem_elem(struct strbuf *sb, const char *name, const char *pem)
{
    strbuf_addf(sb, "    <%s>", name);
    strbuf_add_xml_escaped(sb, pem);
    strbuf_addf(sb, "</%s>\n", name);
}

void nx_payload_render_cred(struct strbuf *sb, const struct nx_model *m,
                            const struct nx_appliance_spec *s, const struct nx_pki_cred *cred)
{
    char mac[18], a[16], b[16];
    unsigned gw_port = m->has_gateway ? m->gateway.port : NX_DEFAULT_GATEWAY_PORT;
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
    if (m->has_gateway) {
        strbuf_addstr(sb, "  <gateway");
        attr(sb, "address", m->gateway.address);
        strbuf_addf(sb, " port=\"%u\"/>\n", m->gateway.port);
    }
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
            strbuf_addf(sb, " vlan=\"%u\" mac=\"%s\" tunnel-port=\"%u\"/>\n", v->vlan, mac,
                        nx_tunnel_port(gw_port, v->vlan));
        }
    }
    /* tenant side: the extended network(s) bridged to the production network */
    for (size_t i = 0; i < s->n_extends; i++) {
        strbuf_addstr(sb, "  <extends");
        attr(sb, "name", s->extends[i].name);
        strbuf_addf(sb, " vlan=\"%u\"", s->extends[i].vlan);
        attr(sb, "sp-host", s->extends[i].sp_host);
        strbuf_addf(sb, " tunnel-port=\"%u\"/>\n", nx_tunnel_port(gw_port, s->extends[i].vlan));
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
    if (cred && cred->pending) {
        strbuf_addstr(sb, "  <pki pending=\"true\"/>\n");
    } else if (cred && cred->ca_pem && cred->cert_pem && cred->key_pem) {
        strbuf_addstr(sb, "  <pki>\n");
        pem_elem(sb, "ca-certificate", cred->ca_pem);
        pem_elem(sb, "certificate", cred->cert_pem);
        pem_elem(sb, "private-key", cred->key_pem);
        strbuf_addstr(sb, "  </pki>\n");
    }
    strbuf_addstr(sb, "</netext-payload>\n");
}

void nx_payload_attach_cred(struct nx_appliance_spec *s, const struct nx_model *m,
                            const struct nx_pki_cred *cred)
{
    struct strbuf sb = STRBUF_INIT;
    nx_payload_render_cred(&sb, m, s, cred);
    nx_free_secret(s->payload); /* the old one may hold a key too */
    s->payload_len = sb.len;
    s->payload = strbuf_detach(&sb, NULL);
    nx_sha256_hex(s->payload, s->payload_len, s->digest);
}

/* one buffer for all, each payload copied at its size: 10,000 specs keep
 * them all */
void nx_payload_render_all(struct nx_desired *d, const struct nx_model *m)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < d->n; i++) {
        struct nx_appliance_spec *s = d->items[i];
        strbuf_reset(&sb);
        nx_payload_render_cred(&sb, m, s, NULL);
        nx_free_secret(s->payload);
        s->payload = nx_strndup(sb.buf, sb.len);
        s->payload_len = sb.len;
        nx_sha256_hex(s->payload, s->payload_len, s->digest);
    }
    strbuf_release(&sb);
}

static bool in_scope(const char *const *tenants, const char *name)
{
    if (!tenants)
        return true;
    for (; *tenants; tenants++)
        if (nx_str_eq(*tenants, name))
            return true;
    return false;
}

void nx_payload_drop(struct nx_appliance_spec *s)
{
    nx_free_secret(s->payload);
    s->payload = NULL;
    s->payload_len = 0;
}

int nx_payload_attach_spec(struct nx_appliance_spec *s, const struct nx_model *m,
                           struct nx_pki *pki, bool lookup_only)
{
    if (s->role == NX_ROLE_TENANT && m->kind == NX_KIND_TENANT) {
        /* tenant side: this appliance's certificate, derived from the
         * bundle's client CA (pki.h); a bundle made before carries one
         * certificate for all */
        const struct nx_tenant_side *ts = &m->tside;
        if (ts->ca_pem && ts->clients_ca_pem && ts->clients_key_pem) {
            struct nx_pki_cred d;
            if (nx_pki_derive_client(ts->ca_pem, ts->clients_ca_pem, ts->clients_key_pem,
                                     s->tenant->name, s->name, &d) < 0)
                return -1;
            nx_payload_attach_cred(s, m, &d);
            nx_pki_cred_release(&d);
            return 0;
        }
        struct nx_pki_cred b = {(char *)ts->ca_pem, (char *)ts->cert_pem, (char *)ts->key_pem,
                                false, false};
        nx_payload_attach_cred(s, m, ts->ca_pem && ts->cert_pem && ts->key_pem ? &b : NULL);
        return 0;
    }
    if (!pki) {
        nx_payload_attach_cred(s, m, NULL);
        return 0;
    }
    enum nx_pki_kind kind = s->role == NX_ROLE_PROVIDER ? NX_PKI_SERVER : NX_PKI_CLIENT;
    const char *name = s->role == NX_ROLE_PROVIDER ? s->host->name : s->name;
    struct nx_pki_cred c;
    int rc = lookup_only ? nx_pki_lookup(pki, s->tenant->name, kind, name, &c)
                         : nx_pki_get(pki, s->tenant->name, kind, name, &c);
    if (rc == 0)
        nx_payload_attach_cred(s, m, &c);
    nx_pki_cred_release(&c);
    return rc;
}

int nx_payload_attach_pki(struct nx_desired *d, const struct nx_model *m, struct nx_pki *pki,
                          const char *const *tenants)
{
    for (size_t i = 0; i < d->n; i++)
        if (in_scope(tenants, d->items[i]->tenant->name) &&
            nx_payload_attach_spec(d->items[i], m, pki, false) < 0)
            return -1;
    return 0;
}

int nx_payload_issue_spec(struct nx_appliance_spec *s, const struct nx_model *m,
                          const char *state_dir, bool dry_run)
{
    struct nx_pki *pki = NULL;
    int ret = -1;
    if (m->kind != NX_KIND_TENANT &&
        nx_pki_open(state_dir, dry_run ? NX_PKI_READONLY : 0, &pki) < 0)
        goto cleanup;
    if (nx_payload_attach_spec(s, m, pki, false) < 0 || nx_pki_sync(pki) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    nx_pki_close(pki);
    return ret;
}
