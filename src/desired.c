/* desired.c: the desired state, a pure function of the model. */
#include "config.h"

#include "desired.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct nx_mac_range nx_mac_range_local = {{0x02, 0, 0, 0, 0, 0}, 40};

const char *nx_role_name(enum nx_role r)
{
    return r == NX_ROLE_TENANT ? "tenant" : "provider";
}

bool nx_role_parse(const char *s, enum nx_role *out)
{
    if (nx_str_eq(s, "provider"))
        *out = NX_ROLE_PROVIDER;
    else if (nx_str_eq(s, "tenant"))
        *out = NX_ROLE_TENANT;
    else
        return false;
    return true;
}

char *nx_appliance_key(enum nx_role role, const char *tenant, const char *host, const char *net)
{
    if (net)
        return nx_asprintf("%s\n%s\n%s\n%s", nx_role_name(role), tenant, host, net);
    return nx_asprintf("%s\n%s\n%s", nx_role_name(role), tenant, host);
}

/* provider side: netext-TENANT-HOST; tenant side: netext-t-TENANT-NETWORK,
 * with characters of the network name other than [A-Za-z0-9._-] as '_' */
char *nx_appliance_name(enum nx_role role, const char *tenant, const char *host, const char *net)
{
    if (role != NX_ROLE_TENANT || !net)
        return nx_asprintf("netext-%s-%s", tenant, host);
    char *name = nx_asprintf("netext-t-%s-%s", tenant, net);
    for (char *p = name + strlen(name) - strlen(net); *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            *p = '_';
    return name;
}

static int cmp_vlan(const void *a, const void *b)
{
    const struct nx_vnic_spec *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind == NX_VNIC_PRODUCTION ? -1 : 1;
    return (x->vlan > y->vlan) - (x->vlan < y->vlan);
}

static int cmp_spec(const void *a, const void *b)
{
    const struct nx_appliance_spec *x = *(const struct nx_appliance_spec *const *)a;
    const struct nx_appliance_spec *y = *(const struct nx_appliance_spec *const *)b;
    return strcmp(x->key, y->key);
}

static const struct nx_address *tenant_address(const struct nx_tenant *t, const char *host)
{
    for (size_t i = 0; i < t->n_appliances; i++)
        if (nx_str_eq(t->appliances[i].host_name, host))
            return t->appliances[i].addr.mode == NX_ADDR_STATIC ? &t->appliances[i].addr : NULL;
    return NULL;
}

static struct nx_appliance_spec *build_spec(const struct nx_model *m, const struct nx_tenant *t,
                                            const struct nx_host *h)
{
    static const struct nx_placement builtin = {NX_DEFAULT_FOLDER, NX_DEFAULT_POOL, NULL};
    struct nx_appliance_spec *s = nx_calloc(1, sizeof(*s));
    s->role = NX_ROLE_PROVIDER;
    s->tenant = t;
    s->host = h;
    s->key = nx_appliance_key(s->role, t->name, h->name, NULL);
    s->name = nx_appliance_name(s->role, t->name, h->name, NULL);
    struct nx_placement tmp;
    nx_placement_merge(&tmp, &h->placement, &m->defaults);
    nx_placement_merge(&s->placement, &tmp, &builtin);
    s->addr = tenant_address(t, h->name);
    s->power_on = m->power_on;
    s->image = m->image;

    size_t alloc = 0;
    NX_GROW(s->vnics, alloc, 1);
    s->vnics[0].kind = NX_VNIC_PRODUCTION;
    s->vnics[0].label = nx_strdup(h->production_network);
    s->vnics[0].network = nx_strdup(h->production_network);
    s->vnics[0].vlan = h->production_vlan;
    s->n_vnics = 1;
    for (size_t i = 0; i < t->n_subs; i++) {
        const struct nx_hwplan *p = t->subs[i].plan;
        if (!p || p->host != h)
            continue;
        for (size_t j = 0; j < p->n_networks; j++) {
            const struct nx_network *n = &p->networks[j];
            bool dup = false;
            for (size_t k = 1; k < s->n_vnics && !dup; k++)
                dup = s->vnics[k].vlan == n->vlan;
            if (dup)
                continue; /* the same VLAN in two plans: one vNIC */
            NX_GROW(s->vnics, alloc, s->n_vnics + 1);
            struct nx_vnic_spec *v = &s->vnics[s->n_vnics++];
            v->kind = NX_VNIC_VLAN;
            v->label = nx_strdup(n->name);
            v->network = nx_strdup(h->vlan_switch);
            v->vlan = n->vlan;
        }
    }
    nx_qsort(s->vnics, s->n_vnics, sizeof(*s->vnics), cmp_vlan);
    return s;
}

/* MACs: a hash of the vNIC's identity in the provider's range; a collision
 * with an earlier vNIC (in key order) is resolved by rehashing with a salt. */
static void assign_macs(struct nx_desired *d, const struct nx_mac_range *const *ranges)
{
    struct nx_map seen;
    nx_map_init(&seen);
    char(*keys)[13] = NULL;
    size_t total = 0, used = 0;
    for (size_t i = 0; i < d->n; i++)
        total += d->items[i]->n_vnics;
    keys = nx_calloc(total ? total : 1, sizeof(*keys));
    for (size_t i = 0; i < d->n; i++) {
        struct nx_appliance_spec *s = d->items[i];
        const struct nx_mac_range *r = ranges ? ranges[s->host->idx] : NULL;
        if (!r)
            r = &nx_mac_range_local;
        uint64_t mask = r->bits >= 48 ? ~0ULL : ((1ULL << r->bits) - 1);
        uint64_t prefix = 0;
        for (int b = 0; b < 6; b++)
            prefix = (prefix << 8) | r->prefix[b];
        prefix &= ~mask;
        for (size_t j = 0; j < s->n_vnics; j++) {
            struct nx_vnic_spec *v = &s->vnics[j];
            char id[256];
            int idlen =
                snprintf(id, sizeof(id), "%s\n%u", s->key, v->kind == NX_VNIC_VLAN ? v->vlan : 0);
            if (idlen < 0 || (size_t)idlen >= sizeof(id))
                idlen = (int)sizeof(id) - 1;
            for (uint64_t salt = 0;; salt++) {
                uint64_t mac = prefix | (nx_hash64(id, (size_t)idlen, salt) & mask);
                snprintf(keys[used], sizeof(keys[used]), "%012llx", (unsigned long long)mac);
                if (nx_map_put(&seen, keys[used], v))
                    continue;
                used++;
                for (int b = 5; b >= 0; b--) {
                    v->mac[b] = (uint8_t)(mac & 0xff);
                    mac >>= 8;
                }
                break;
            }
        }
    }
    nx_map_release(&seen);
    free(keys);
}

/* A tenant-side appliance: one vNIC on its production network, bridged to
 * the extended network it carries. */
static struct nx_appliance_spec *build_tenant_spec(const struct nx_model *m,
                                                   const struct nx_tside_resolved *r)
{
    static const struct nx_placement builtin = {NX_DEFAULT_FOLDER, NX_DEFAULT_POOL, NULL};
    const struct nx_tenant *t = m->tenants[0];
    struct nx_appliance_spec *s = nx_calloc(1, sizeof(*s));
    s->role = NX_ROLE_TENANT;
    s->tenant = t;
    s->host = r->host;
    s->net = nx_strdup(r->network);
    s->key = nx_appliance_key(s->role, t->name, r->host->name, r->network);
    s->name = nx_appliance_name(s->role, t->name, r->host->name, r->network);
    struct nx_placement tmp;
    nx_placement_merge(&tmp, &r->host->placement, &m->defaults);
    nx_placement_merge(&s->placement, &tmp, &builtin);
    s->addr = r->addr;
    s->power_on = m->power_on;
    s->image = m->image;
    s->vnics = nx_calloc(1, sizeof(*s->vnics));
    s->vnics[0].kind = NX_VNIC_PRODUCTION;
    s->vnics[0].label = nx_strdup(r->network);
    s->vnics[0].network = nx_strdup(r->network);
    s->n_vnics = 1;
    s->extends = nx_calloc(1, sizeof(*s->extends));
    s->extends[0].name = nx_strdup(r->ext->name);
    s->extends[0].vlan = r->ext->vlan;
    s->extends[0].sp_host = nx_strdup(r->ext->sp_host);
    s->n_extends = 1;
    return s;
}

size_t nx_tenant_hosts(const struct nx_model *m __attribute__((unused)), const struct nx_tenant *t,
                       size_t **out)
{
    /* hosts are few per tenant: a small sorted array */
    size_t *idx = NULL, n = 0, alloc = 0;
    for (size_t i = 0; i < t->n_subs; i++) {
        const struct nx_hwplan *p = t->subs[i].plan;
        if (!p || !p->host)
            continue;
        size_t hi = p->host->idx;
        size_t j = 0;
        while (j < n && idx[j] < hi)
            j++;
        if (j < n && idx[j] == hi)
            continue;
        NX_GROW(idx, alloc, n + 1);
        if (n > j)
            memmove(idx + j + 1, idx + j, (n - j) * sizeof(*idx));
        idx[j] = hi;
        n++;
    }
    *out = idx;
    return n;
}

struct nx_desired *nx_desired_compute(const struct nx_model *m,
                                      const struct nx_mac_range *const *ranges)
{
    struct nx_desired *d = nx_calloc(1, sizeof(*d));
    for (size_t i = 0; m->kind == NX_KIND_TENANT && m->n_tenants && i < m->tside.n_res; i++) {
        NX_GROW(d->items, d->alloc, d->n + 1);
        d->items[d->n++] = build_tenant_spec(m, &m->tside.res[i]);
    }
    for (size_t i = 0; m->kind != NX_KIND_TENANT && i < m->n_tenants; i++) {
        const struct nx_tenant *t = m->tenants[i];
        size_t *hosts;
        size_t n = nx_tenant_hosts(m, t, &hosts);
        for (size_t j = 0; j < n; j++) {
            NX_GROW(d->items, d->alloc, d->n + 1);
            d->items[d->n++] = build_spec(m, t, m->hosts[hosts[j]]);
        }
        free(hosts);
    }
    nx_qsort(d->items, d->n, sizeof(*d->items), cmp_spec);
    assign_macs(d, ranges);
    return d;
}

void nx_desired_free(struct nx_desired *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        struct nx_appliance_spec *s = d->items[i];
        for (size_t j = 0; j < s->n_vnics; j++) {
            free(s->vnics[j].label);
            free(s->vnics[j].network);
        }
        free(s->vnics);
        for (size_t j = 0; j < s->n_extends; j++) {
            free(s->extends[j].name);
            free(s->extends[j].sp_host);
        }
        free(s->extends);
        free(s->net);
        free(s->name);
        free(s->key);
        nx_free_secret(s->payload); /* it carries the appliance's private key */
        free(s);
    }
    free(d->items);
    free(d);
}
