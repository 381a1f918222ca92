/* validate.c: semantic checks of a whole model. */
#include "config.h"

#include "validate.h"
#include "desired.h"
#include "tenant_side.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D(diag, loc, ...) nx_diag_add((diag), (loc).file, (loc).line, __VA_ARGS__)

/* Names end up in VM names, file names and payloads: printable, no path
 * separators, bounded. UTF-8 is guaranteed by the XML parser. */
static bool check_name(struct nx_diag *diag, struct nx_loc loc, const char *what, const char *name,
                       size_t max)
{
    if (!name || !*name) {
        D(diag, loc, "%s: the name is empty", what);
        return false;
    }
    size_t len = strlen(name);
    if (len > max) {
        D(diag, loc, "%s name=\"%s\": longer than %zu bytes", what, name, max);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\') {
            D(diag, loc, "%s name=\"%s\": contains a control character, '/' or '\\'", what, name);
            return false;
        }
    }
    if (name[0] == ' ' || name[len - 1] == ' ') {
        D(diag, loc, "%s name=\"%s\": starts or ends with a space", what, name);
        return false;
    }
    return true;
}

static bool valid_hostname(const char *s)
{
    if (!s || !*s || strlen(s) > 253)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static void check_hosts(struct nx_model *m, struct nx_diag *diag)
{
    for (size_t i = 0; i < m->n_hosts; i++) {
        struct nx_host *h = m->hosts[i];
        size_t before = diag->n;
        h->idx = i;
        const char *what = m->kind == NX_KIND_TENANT ? "<source-host>" : "<host>";
        if (!check_name(diag, h->loc, what, h->name, NX_HOST_NAME_MAX)) {
            h->invalid = true;
            continue;
        }
        struct nx_host *prev = nx_map_put(&m->host_by_name, h->name, h);
        if (prev) {
            D(diag, h->loc, "%.*s name=\"%s\">: duplicate name (first at %s:%u)",
              (int)strlen(what) - 1, what, h->name, prev->loc.file, prev->loc.line);
            prev->invalid = true;
        }
        if (!h->uri || !*h->uri)
            D(diag, h->loc, "<host name=\"%s\">: uri is empty", h->name);
        else if (!strstr(h->uri, ":"))
            D(diag, h->loc, "<host name=\"%s\">: uri '%s' has no scheme (e.g. qemu:///system)",
              h->name, h->uri);
        if (m->kind != NX_KIND_TENANT && (!h->production_network || !*h->production_network))
            D(diag, h->loc, "<host name=\"%s\">: production-network is empty", h->name);
        h->invalid |= diag->n > before;
    }
}

static void check_plans(struct nx_model *m, struct nx_diag *diag)
{
    for (size_t i = 0; i < m->n_plans; i++) {
        struct nx_hwplan *p = m->plans[i];
        if (!check_name(diag, p->loc, "<hardware-plan>", p->name, 128))
            continue;
        struct nx_hwplan *prev = nx_map_put(&m->plan_by_name, p->name, p);
        if (prev)
            D(diag, p->loc, "<hardware-plan name=\"%s\">: duplicate name (first at %s:%u)", p->name,
              prev->loc.file, prev->loc.line);
        p->host = p->host_name ? nx_model_host(m, p->host_name) : NULL;
        if (!p->host)
            D(diag, p->loc, "<hardware-plan name=\"%s\">: unknown host '%s'", p->name,
              p->host_name ? p->host_name : "");
        if (p->n_networks == 0)
            D(diag, p->loc, "<hardware-plan name=\"%s\">: the plan has no networks", p->name);
        for (size_t j = 0; j < p->n_networks; j++) {
            struct nx_network *n = &p->networks[j];
            check_name(diag, n->loc, "<network>", n->name, 128);
            for (size_t k = 0; k < j; k++) {
                struct nx_network *o = &p->networks[k];
                if (n->name && o->name && strcmp(n->name, o->name) == 0)
                    D(diag, n->loc,
                      "<network name=\"%s\">: duplicate name in hardware plan '%s' (first at "
                      "line %u)",
                      n->name, p->name, o->loc.line);
                else if (n->vlan && n->vlan == o->vlan)
                    D(diag, n->loc,
                      "<network name=\"%s\">: VLAN %u is already network '%s' of hardware "
                      "plan '%s' (line %u)",
                      n->name, n->vlan, o->name, p->name, o->loc.line);
            }
            if (p->host && n->vlan && n->vlan == p->host->production_vlan)
                D(diag, n->loc,
                  "<network name=\"%s\">: VLAN %u is the SP production VLAN of host '%s'", n->name,
                  n->vlan, p->host->name);
        }
    }
}

/* One owner per (host, VLAN) across all tenants; one owner per static address;
 * one owner per public endpoint. Keys are built into scratch strings kept in
 * an array so the map can borrow them. */
struct owner {
    const struct nx_tenant *tenant;
    struct nx_loc loc;
    const struct nx_host *host; /* public addresses: the host of the appliance */
};

struct keyset {
    struct nx_map map;
    char **keys;
    struct owner *owners;
    size_t n, alloc, alloc_o;
};

static struct owner *keyset_claim(struct keyset *ks, char *key, const struct nx_tenant *t,
                                  struct nx_loc loc)
{
    struct owner *prev = nx_map_get(&ks->map, key);
    if (prev) {
        free(key);
        return prev;
    }
    /* owners are allocated one by one so map values stay valid as we grow */
    struct owner *o = nx_malloc(sizeof(*o));
    o->tenant = t;
    o->loc = loc;
    o->host = NULL;
    NX_GROW(ks->keys, ks->alloc, ks->n + 1);
    ks->keys[ks->n++] = key;
    nx_map_put(&ks->map, key, o);
    return NULL;
}

static void keyset_release(struct keyset *ks)
{
    for (size_t i = 0; i < ks->map.cap; i++)
        if (ks->map.slots[i].key)
            free(ks->map.slots[i].value);
    for (size_t i = 0; i < ks->n; i++)
        free(ks->keys[i]);
    free(ks->keys);
    nx_map_release(&ks->map);
}

static bool tenant_on_host(const struct nx_tenant *t, const struct nx_host *h)
{
    for (size_t i = 0; i < t->n_subs; i++)
        if (t->subs[i].plan && t->subs[i].plan->host == h)
            return true;
    return false;
}

/* Addresses no rule may use: NULL if a can be a unicast host address. */
static const char *bad_rule_address(uint32_t a)
{
    if (a >> 24 == 0)
        return "unspecified (0.0.0.0/8)";
    if (a == 0xffffffffu)
        return "the broadcast address";
    if (a >> 28 == 0xe)
        return "multicast (224.0.0.0/4)";
    if (a >> 24 == 127)
        return "loopback (127.0.0.0/8)";
    if (a >> 16 == 0xa9fe)
        return "link-local (169.254.0.0/16)";
    return NULL;
}

/* What tenants claim, across tenants: a VLAN on a host, a static address, a
 * public endpoint, a public address on an SP production network. */
struct claims {
    struct keyset vlans, addrs, endpoints, publics;
};

static void check_subscriptions(struct nx_model *m, struct nx_tenant *t, struct claims *cl,
                                struct nx_diag *diag, bool *any_subscribed)
{
    for (size_t j = 0; j < t->n_subs; j++) {
        struct nx_subscription *s = &t->subs[j];
        s->plan = s->plan_name ? nx_model_plan(m, s->plan_name) : NULL;
        if (!s->plan) {
            D(diag, s->loc, "<subscribe plan=\"%s\">: unknown hardware plan (tenant '%s')",
              s->plan_name ? s->plan_name : "", t->name);
            continue;
        }
        *any_subscribed = true;
        for (size_t k = 0; k < j; k++)
            if (t->subs[k].plan == s->plan)
                D(diag, s->loc,
                  "<subscribe plan=\"%s\">: tenant '%s' is already subscribed to it (line "
                  "%u)",
                  s->plan_name, t->name, t->subs[k].loc.line);
        if (!s->plan->host)
            continue;
        /* tenant isolation: a VLAN on a host belongs to one tenant */
        for (size_t k = 0; k < s->plan->n_networks; k++) {
            const struct nx_network *n = &s->plan->networks[k];
            if (!n->vlan)
                continue;
            char *key = nx_asprintf("%s\n%u", s->plan->host->name, n->vlan);
            struct owner *o = keyset_claim(&cl->vlans, key, t, n->loc);
            if (o && o->tenant != t)
                D(diag, s->loc,
                  "<subscribe plan=\"%s\">: VLAN %u on host '%s' (network '%s') already "
                  "belongs to tenant '%s' (%s:%u); tenants never share a VLAN",
                  s->plan_name, n->vlan, s->plan->host->name, n->name, o->tenant->name, o->loc.file,
                  o->loc.line);
        }
    }
}

static void check_tenant_appliances(struct nx_model *m, struct nx_tenant *t, struct claims *cl,
                                    struct nx_diag *diag)
{
    for (size_t j = 0; j < t->n_appliances; j++) {
        struct nx_tenant_appliance *a = &t->appliances[j];
        struct nx_host *h = a->host_name ? nx_model_host(m, a->host_name) : NULL;
        if (!h) {
            D(diag, a->loc, "<appliance host=\"%s\">: unknown host (tenant '%s')",
              a->host_name ? a->host_name : "", t->name);
            continue;
        }
        if (!tenant_on_host(t, h))
            D(diag, a->loc,
              "<appliance host=\"%s\">: tenant '%s' has no hardware plan on this host",
              a->host_name, t->name);
        for (size_t k = 0; k < j; k++)
            if (nx_str_eq(t->appliances[k].host_name, a->host_name))
                D(diag, a->loc, "<appliance host=\"%s\">: defined twice for tenant '%s'",
                  a->host_name, t->name);
        if (a->addr.mode == NX_ADDR_STATIC && a->addr.ip) {
            char ip[16];
            nx_format_ipv4(a->addr.ip, ip);
            struct owner *o = keyset_claim(&cl->addrs, nx_strdup(ip), t, a->addr.loc);
            if (o)
                D(diag, a->addr.loc,
                  "<static ip=\"%s\">: address already used by tenant '%s' (%s:%u)", ip,
                  o->tenant->name, o->loc.file, o->loc.line);
        }
    }
}

/* One public IP rule of t, whose appliances are on hosts[0..n_hosts). */
static void check_rule(struct nx_model *m, struct nx_tenant *t, const struct nx_rule *r,
                       const size_t *hosts, size_t n_hosts, struct claims *cl, struct nx_diag *diag)
{
    char pub[16], rep[16];
    nx_format_ipv4(r->public_ip, pub);
    nx_format_ipv4(r->replica_ip, rep);
    const char *bad_pub = bad_rule_address(r->public_ip);
    const char *bad_rep = bad_rule_address(r->replica_ip);
    if (bad_pub)
        D(diag, r->loc, "<public-ip-rule public=\"%s:%u\">: the public address is %s", pub,
          r->public_port, bad_pub);
    if (bad_rep)
        D(diag, r->loc, "<public-ip-rule replica=\"%s:%u\">: the replica address is %s", rep,
          r->replica_port, bad_rep);
    if (r->public_port == NX_RESERVED_PORT)
        D(diag, r->loc,
          "<public-ip-rule public=\"%s:%u\">: port %d is reserved for the appliance's "
          "management and cannot be a public port",
          pub, r->public_port, NX_RESERVED_PORT);
    if (r->host_name) {
        struct nx_host *h = nx_model_host(m, r->host_name);
        if (!h || !tenant_on_host(t, h))
            D(diag, r->loc,
              "<public-ip-rule host=\"%s\">: tenant '%s' has no appliance on this host",
              r->host_name, t->name);
    } else if (n_hosts > 1) {
        D(diag, r->loc,
          "<public-ip-rule public=\"%s:%u\">: tenant '%s' has appliances on %zu hosts; "
          "say which with host=\"...\"",
          pub, r->public_port, t->name, n_hosts);
    } else if (n_hosts == 0) {
        D(diag, r->loc,
          "<public-ip-rule public=\"%s:%u\">: tenant '%s' has no hardware plan, so no "
          "appliance to carry the rule",
          pub, r->public_port, t->name);
    }
    char *key =
        nx_asprintf("%s:%u/%s", pub, r->public_port, r->proto == NX_PROTO_UDP ? "udp" : "tcp");
    struct owner *o = keyset_claim(&cl->endpoints, key, t, r->loc);
    if (o) {
        D(diag, r->loc,
          "<public-ip-rule public=\"%s:%u\">: public endpoint already used by tenant "
          "'%s' (%s:%u)",
          pub, r->public_port, o->tenant->name, o->loc.file, o->loc.line);
        return;
    }
    /* the appliance carrying a public address answers ARP for it on its
     * host's SP production network: one appliance per address and network,
     * across tenants and hosts */
    struct nx_host *rh = r->host_name   ? nx_model_host(m, r->host_name)
                         : n_hosts == 1 ? m->hosts[hosts[0]]
                                        : NULL;
    if (!rh || !rh->production_network || !tenant_on_host(t, rh) || bad_pub)
        return;
    key = nx_asprintf("%s\n%u\n%s", rh->production_network, rh->production_vlan, pub);
    o = keyset_claim(&cl->publics, key, t, r->loc);
    if (!o) {
        struct owner *mine = nx_map_get(&cl->publics.map, cl->publics.keys[cl->publics.n - 1]);
        mine->host = rh;
        return;
    }
    if (o->tenant != t || o->host != rh)
        D(diag, r->loc,
          "<public-ip-rule public=\"%s:%u\">: public address %s on SP production "
          "network '%s' is already used by tenant '%s' on host '%s' (%s:%u): two "
          "appliances would answer ARP for it",
          pub, r->public_port, pub, rh->production_network, o->tenant->name, o->host->name,
          o->loc.file, o->loc.line);
}

static void check_rules(struct nx_model *m, struct nx_tenant *t, struct claims *cl,
                        struct nx_diag *diag)
{
    size_t *hosts;
    size_t n_hosts = nx_tenant_hosts(m, t, &hosts);
    for (size_t j = 0; j < t->n_rules; j++)
        check_rule(m, t, &t->rules[j], hosts, n_hosts, cl, diag);
    free(hosts);
}

/* The cloud gateway endpoint, which tenant appliances need. */
static void check_gateway(struct nx_model *m, bool any_subscribed, struct nx_diag *diag)
{
    size_t before_global = diag->n;
    if (any_subscribed && !m->has_gateway)
        nx_diag_add(diag, m->n_files ? m->files[0] : NULL, 0,
                    "no <gateway> defined: tenant appliances need the cloud gateway endpoint");
    if (m->has_gateway && !valid_hostname(m->gateway.address))
        D(diag, m->gateway.loc, "<gateway address=\"%s\">: not a host name or IPv4 address",
          m->gateway.address ? m->gateway.address : "");
    m->n_global_errors += diag->n - before_global;
}

static void check_tenants(struct nx_model *m, struct nx_diag *diag)
{
    struct claims cl = {0};
    bool any_subscribed = false;

    for (size_t i = 0; i < m->n_tenants; i++) {
        struct nx_tenant *t = m->tenants[i];
        size_t before = diag->n;
        t->idx = i;
        if (!check_name(diag, t->loc, "<tenant>", t->name, NX_TENANT_NAME_MAX)) {
            t->invalid = true;
            continue;
        }
        struct nx_tenant *prev = nx_map_put(&m->tenant_by_name, t->name, t);
        if (prev) {
            D(diag, t->loc, "<tenant name=\"%s\">: duplicate name (first at %s:%u)", t->name,
              prev->loc.file, prev->loc.line);
            t->invalid = prev->invalid = true;
            continue;
        }
        check_subscriptions(m, t, &cl, diag, &any_subscribed);
        check_tenant_appliances(m, t, &cl, diag);
        check_rules(m, t, &cl, diag);
        t->invalid |= diag->n > before;
    }
    check_gateway(m, any_subscribed, diag);
    keyset_release(&cl.vlans);
    keyset_release(&cl.addrs);
    keyset_release(&cl.endpoints);
    keyset_release(&cl.publics);
}

/* Appliance names are built from tenant and host names joined by '-', so two
 * (tenant, host) pairs can give one name ("a-b" on "c", "a" on "b-c"); names
 * must be unique wherever the hypervisor requires it (a libvirt connection, a
 * vCenter folder), which the model cannot tell, so they are unique across the
 * whole model. The later tenant (in reading order) is refused, naming both. */
struct name_owner {
    const struct nx_tenant *tenant;
    const struct nx_host *host;
};

static void check_appliance_names(struct nx_model *m, struct nx_diag *diag)
{
    struct nx_map names;
    nx_map_init(&names);
    char **keys = NULL;
    struct name_owner *owners = NULL;
    size_t n = 0, alloc = 0, total = 0;
    for (size_t i = 0; i < m->n_tenants; i++)
        total += m->tenants[i]->n_subs;
    owners = nx_calloc(total + 1, sizeof(*owners));
    for (size_t i = 0; i < m->n_tenants; i++) {
        struct nx_tenant *t = m->tenants[i];
        if (!t->name || nx_model_tenant(m, t->name) != t)
            continue; /* invalid or a duplicate: reported already */
        size_t *hosts;
        size_t n_hosts = nx_tenant_hosts(m, t, &hosts);
        for (size_t j = 0; j < n_hosts; j++) {
            const struct nx_host *h = m->hosts[hosts[j]];
            char *name = nx_appliance_name(NX_ROLE_PROVIDER, t->name, h->name, NULL);
            const struct name_owner *o = nx_map_get(&names, name);
            if (o) {
                D(diag, t->loc,
                  "<tenant name=\"%s\">: appliance name '%s' (host '%s') is also the appliance "
                  "name of tenant '%s' on host '%s' (%s:%u); rename one of the tenants or hosts",
                  t->name, name, h->name, o->tenant->name, o->host->name, o->tenant->loc.file,
                  o->tenant->loc.line);
                t->invalid = true;
                free(name);
                continue;
            }
            owners[n].tenant = t;
            owners[n].host = h;
            NX_GROW(keys, alloc, n + 1);
            keys[n] = name;
            nx_map_put(&names, name, &owners[n]);
            n++;
        }
        free(hosts);
    }
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(owners);
    nx_map_release(&names);
}

size_t nx_validate(struct nx_model *m, struct nx_diag *diag)
{
    size_t before = diag->n;
    /* maps are (re)built here: validation may run once per model */
    nx_map_release(&m->host_by_name);
    nx_map_release(&m->plan_by_name);
    nx_map_release(&m->tenant_by_name);
    for (size_t i = 0; i < m->n_tenants; i++)
        m->tenants[i]->idx = i;
    check_hosts(m, diag);
    if (m->kind == NX_KIND_TENANT) {
        nx_validate_tenant_side(m, diag);
        return diag->n - before;
    }
    check_plans(m, diag);
    check_tenants(m, diag);
    check_appliance_names(m, diag);
    return diag->n - before;
}
