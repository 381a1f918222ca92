/* desired.c: the desired state, a pure function of the model. */
#include "desired.h"
#include "payload.h"
#include "strbuf.h"
#include "util.h"
#include "validate.h"

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

char *nx_appliance_key(enum nx_role role, const char *tenant, const char *host)
{
    return nx_asprintf("%s\n%s\n%s", nx_role_name(role), tenant, host);
}

char *nx_appliance_name(enum nx_role role, const char *tenant, const char *host)
{
    return nx_asprintf("netext-%s%s-%s", role == NX_ROLE_TENANT ? "t-" : "", tenant, host);
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
    s->key = nx_appliance_key(s->role, t->name, h->name);
    s->name = nx_appliance_name(s->role, t->name, h->name);
    struct nx_placement tmp;
    nx_placement_merge(&tmp, &h->placement, &m->defaults);
    nx_placement_merge(&s->placement, &tmp, &builtin);
    s->addr = tenant_address(t, h->name);
    s->power_on = m->power_on;

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
    qsort(s->vnics, s->n_vnics, sizeof(*s->vnics), cmp_vlan);
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

struct nx_desired *nx_desired_compute(const struct nx_model *m,
                                      const struct nx_mac_range *const *ranges)
{
    struct nx_desired *d = nx_calloc(1, sizeof(*d));
    for (size_t i = 0; i < m->n_tenants; i++) {
        const struct nx_tenant *t = m->tenants[i];
        size_t *hosts;
        size_t n = nx_tenant_hosts(m, t, &hosts);
        for (size_t j = 0; j < n; j++) {
            NX_GROW(d->items, d->alloc, d->n + 1);
            d->items[d->n++] = build_spec(m, t, m->hosts[hosts[j]]);
        }
        free(hosts);
    }
    qsort(d->items, d->n, sizeof(*d->items), cmp_spec);
    assign_macs(d, ranges);
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < d->n; i++) {
        struct nx_appliance_spec *s = d->items[i];
        strbuf_reset(&sb);
        nx_payload_render(&sb, m, s);
        s->payload = nx_strndup(sb.buf, sb.len);
        s->payload_len = sb.len;
        nx_sha256_hex(s->payload, s->payload_len, s->digest);
    }
    strbuf_release(&sb);
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
        free(s->name);
        free(s->key);
        free(s->payload);
        free(s);
    }
    free(d->items);
    free(d);
}
