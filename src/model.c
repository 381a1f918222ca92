/* model.c: construction and destruction of the subscription model. */
#include "config.h"

#include "model.h"
#include "image.h"
#include "util.h"

#include <stdlib.h>

struct nx_model *nx_model_new(void)
{
    struct nx_model *m = nx_calloc(1, sizeof(*m));
    m->power_on = true;
    nx_map_init(&m->host_by_name);
    nx_map_init(&m->plan_by_name);
    nx_map_init(&m->tenant_by_name);
    return m;
}

void nx_placement_release(struct nx_placement *p)
{
    NX_FREE(p->folder);
    NX_FREE(p->resource_pool);
    NX_FREE(p->datastore);
}

void nx_placement_merge(struct nx_placement *out, const struct nx_placement *a,
                        const struct nx_placement *b)
{
    out->folder = a && a->folder ? a->folder : b ? b->folder : NULL;
    out->resource_pool = a && a->resource_pool ? a->resource_pool : b ? b->resource_pool : NULL;
    out->datastore = a && a->datastore ? a->datastore : b ? b->datastore : NULL;
}

static void host_free(struct nx_host *h)
{
    if (!h)
        return;
    free(h->name);
    free(h->uri);
    free(h->target);
    free(h->production_network);
    free(h->vlan_switch);
    free(h->image_store);
    nx_placement_release(&h->placement);
    free(h);
}

static void plan_free(struct nx_hwplan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_networks; i++)
        free(p->networks[i].name);
    free(p->networks);
    free(p->name);
    free(p->host_name);
    free(p);
}

static void tenant_free(struct nx_tenant *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_subs; i++)
        free(t->subs[i].plan_name);
    for (size_t i = 0; i < t->n_appliances; i++)
        free(t->appliances[i].host_name);
    for (size_t i = 0; i < t->n_rules; i++)
        free(t->rules[i].host_name);
    free(t->subs);
    free(t->appliances);
    free(t->rules);
    free(t->name);
    free(t);
}

static void tside_release(struct nx_tenant_side *ts)
{
    free(ts->bundle_path);
    free(ts->bundle_file);
    for (size_t i = 0; i < ts->n_appliances; i++) {
        free(ts->appliances[i].host_name);
        free(ts->appliances[i].production_network);
        free(ts->appliances[i].extends);
    }
    free(ts->appliances);
    for (size_t i = 0; i < ts->n_nets; i++) {
        free(ts->nets[i].name);
        free(ts->nets[i].sp_host);
    }
    free(ts->nets);
    free(ts->ca_pem);
    free(ts->cert_pem);
    nx_free_secret(ts->key_pem);
    free(ts->clients_ca_pem);
    nx_free_secret(ts->clients_key_pem);
    for (size_t i = 0; i < ts->n_res; i++)
        free(ts->res[i].network);
    free(ts->res);
}

bool nx_tenant_valid(const struct nx_tenant *t)
{
    if (t->invalid)
        return false;
    for (size_t i = 0; i < t->n_subs; i++) {
        const struct nx_hwplan *p = t->subs[i].plan;
        if (!p || p->invalid || !p->host || p->host->invalid)
            return false;
    }
    return true;
}

void nx_model_free(struct nx_model *m)
{
    if (!m)
        return;
    tside_release(&m->tside);
    for (size_t i = 0; i < m->n_hosts; i++)
        host_free(m->hosts[i]);
    for (size_t i = 0; i < m->n_plans; i++)
        plan_free(m->plans[i]);
    for (size_t i = 0; i < m->n_tenants; i++)
        tenant_free(m->tenants[i]);
    free(m->hosts);
    free(m->plans);
    free(m->tenants);
    free(m->gateway.address);
    nx_placement_release(&m->defaults);
    free(m->image_file);
    nx_image_free(m->image);
    nx_map_release(&m->host_by_name);
    nx_map_release(&m->plan_by_name);
    nx_map_release(&m->tenant_by_name);
    for (size_t i = 0; i < m->n_files; i++)
        free(m->files[i]);
    free(m->files);
    free(m);
}

struct nx_host *nx_model_host(const struct nx_model *m, const char *name)
{
    return nx_map_get(&m->host_by_name, name);
}

struct nx_hwplan *nx_model_plan(const struct nx_model *m, const char *name)
{
    return nx_map_get(&m->plan_by_name, name);
}

struct nx_tenant *nx_model_tenant(const struct nx_model *m, const char *name)
{
    return nx_map_get(&m->tenant_by_name, name);
}
