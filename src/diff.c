/* diff.c: desired vs observed, as an ordered list of actions. */
#include "config.h"

#include "diff.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

const char *nx_action_name(enum nx_action_kind k)
{
    static const char *const names[] = {"remove",      "create",    "remove-vnic", "add-vnic",
                                        "set-payload", "set-image", "power-on",    "power-off"};
    return (size_t)k < NX_ARRAY_SIZE(names) ? names[k] : "?";
}

bool nx_vnic_matches(const struct nx_vnic_spec *want, const struct nx_vnic_obs *have)
{
    if (memcmp(want->mac, have->mac, 6) != 0 || want->vlan != have->vlan)
        return false;
    return !want->network || nx_str_eq(want->network, have->network);
}

static void push(struct nx_actions *a, enum nx_action_kind kind,
                 const struct nx_appliance_spec *spec, const struct nx_appliance_obs *obs,
                 const char *reason)
{
    NX_GROW(a->items, a->alloc, a->n + 1);
    struct nx_action *x = &a->items[a->n++];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    x->spec = spec;
    x->obs = obs;
    x->reason = reason;
}

static bool tenant_in_scope(const struct nx_scope *sc, const char *tenant)
{
    if (!sc || !sc->tenants)
        return sc && sc->model ? nx_model_tenant(sc->model, tenant) != NULL : true;
    for (const char *const *t = sc->tenants; *t; t++)
        if (strcmp(*t, tenant) == 0)
            return true;
    return false;
}

/* How well an observed appliance matches a spec: matching vNICs count most. */
static long score(const struct nx_appliance_spec *s, const struct nx_appliance_obs *o)
{
    long sc = 0;
    for (size_t i = 0; i < s->n_vnics; i++)
        for (size_t j = 0; j < o->n_vnics; j++)
            if (nx_vnic_matches(&s->vnics[i], &o->vnics[j])) {
                sc += 4;
                break;
            }
    if (strcmp(o->marker.digest, s->digest) == 0)
        sc += 2;
    if (o->powered_on)
        sc += 1;
    return sc;
}

struct group {
    const char *key;
    const struct nx_appliance_spec *spec;
    const struct nx_appliance_obs **obs;
    size_t n_obs, alloc_obs;
    char *owned_key;
};

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const struct group *)a)->key, ((const struct group *)b)->key);
}

static int cmp_obs_id(const void *a, const void *b)
{
    const struct nx_appliance_obs *x = *(const struct nx_appliance_obs *const *)a;
    const struct nx_appliance_obs *y = *(const struct nx_appliance_obs *const *)b;
    return strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

static void diff_existing(struct nx_actions *out, const struct nx_appliance_spec *s,
                          const struct nx_appliance_obs *o)
{
    bool *used = nx_calloc(o->n_vnics + 1, sizeof(*used));
    bool *have = nx_calloc(s->n_vnics + 1, sizeof(*have));
    for (size_t i = 0; i < s->n_vnics; i++)
        for (size_t j = 0; j < o->n_vnics; j++)
            if (!used[j] && nx_vnic_matches(&s->vnics[i], &o->vnics[j])) {
                used[j] = have[i] = true;
                break;
            }
    for (size_t j = 0; j < o->n_vnics; j++)
        if (!used[j]) {
            push(out, NX_ACT_REMOVE_VNIC, s, o, "not desired");
            out->items[out->n - 1].ovnic = &o->vnics[j];
        }
    for (size_t i = 0; i < s->n_vnics; i++)
        if (!have[i]) {
            push(out, NX_ACT_ADD_VNIC, s, o, "missing");
            out->items[out->n - 1].vnic = &s->vnics[i];
        }
    /* the image before the payload: a payload change rewrites the marker from
     * the spec, image id included, which is then true */
    if (s->image && strcmp(o->marker.image, s->image->id) != 0)
        push(out, NX_ACT_SET_IMAGE, s, o, o->marker.image[0] ? "new image" : "no image");
    if (strcmp(o->marker.digest, s->digest) != 0 || o->marker.revision != NX_MODEL_REVISION)
        push(out, NX_ACT_SET_PAYLOAD, s, o, "payload changed");
    if (s->power_on && !o->powered_on)
        push(out, NX_ACT_POWER_ON, s, o, "powered off");
    else if (!s->power_on && o->powered_on)
        push(out, NX_ACT_POWER_OFF, s, o, "powered on");
    free(used);
    free(have);
}

void nx_diff(const struct nx_desired *d, const struct nx_obs_list *obs,
             const struct nx_scope *scope, struct nx_actions *out)
{
    enum nx_role role = scope ? scope->role : NX_ROLE_PROVIDER;
    struct group *groups = NULL;
    size_t n = 0, alloc = 0;
    struct nx_map by_key;
    nx_map_init(&by_key);

    memset(out, 0, sizeof(*out));
    /* groups own nothing but owned_key; map values are indices + 1 */
    for (size_t i = 0; i < d->n; i++) {
        const struct nx_appliance_spec *s = d->items[i];
        if (s->role != role || !tenant_in_scope(scope, s->tenant->name))
            continue;
        NX_GROW(groups, alloc, n + 1);
        groups[n].key = s->key;
        groups[n].spec = s;
        nx_map_put(&by_key, s->key, (void *)(n + 1));
        n++;
    }
    for (size_t i = 0; i < obs->n; i++) {
        const struct nx_appliance_obs *o = obs->items[i];
        if (o->marker.role != role || !tenant_in_scope(scope, o->marker.tenant))
            continue;
        if (o->marker.revision > NX_MODEL_REVISION) {
            NX_GROW(out->skipped, out->alloc_skipped, out->n_skipped + 1);
            out->skipped[out->n_skipped++] = o;
            continue;
        }
        char *key =
            nx_appliance_key(o->marker.role, o->marker.tenant, o->marker.host, o->marker.net);
        size_t gi = (size_t)nx_map_get(&by_key, key);
        if (!gi) {
            NX_GROW(groups, alloc, n + 1);
            memset(&groups[n], 0, sizeof(groups[n]));
            groups[n].key = groups[n].owned_key = key; /* heap string: stable */
            nx_map_put(&by_key, key, (void *)(n + 1));
            gi = ++n;
        } else {
            free(key);
        }
        struct group *g = &groups[gi - 1];
        NX_GROW(g->obs, g->alloc_obs, g->n_obs + 1);
        g->obs[g->n_obs++] = o;
    }
    nx_map_release(&by_key);
    nx_qsort(groups, n, sizeof(*groups), cmp_group);

    for (size_t i = 0; i < n; i++) {
        struct group *g = &groups[i];
        if (!g->spec) {
            for (size_t j = 0; j < g->n_obs; j++)
                push(out, NX_ACT_REMOVE, NULL, g->obs[j], "not subscribed");
            continue;
        }
        if (g->n_obs == 0) {
            push(out, NX_ACT_CREATE, g->spec, NULL, "missing");
            if (g->spec->power_on)
                push(out, NX_ACT_POWER_ON, g->spec, NULL, "new");
            continue;
        }
        /* keep the best match (ties: lowest id), remove the other copies */
        nx_qsort(g->obs, g->n_obs, sizeof(*g->obs), cmp_obs_id);
        size_t best = 0;
        long best_score = score(g->spec, g->obs[0]);
        for (size_t j = 1; j < g->n_obs; j++) {
            long sc = score(g->spec, g->obs[j]);
            if (sc > best_score) {
                best = j;
                best_score = sc;
            }
        }
        for (size_t j = 0; j < g->n_obs; j++)
            if (j != best)
                push(out, NX_ACT_REMOVE, g->spec, g->obs[j], "duplicate");
        diff_existing(out, g->spec, g->obs[best]);
    }
    for (size_t i = 0; i < n; i++) {
        free(groups[i].obs);
        free(groups[i].owned_key);
    }
    free(groups);
}

void nx_actions_release(struct nx_actions *a)
{
    free(a->items);
    free(a->skipped);
    memset(a, 0, sizeof(*a));
}
