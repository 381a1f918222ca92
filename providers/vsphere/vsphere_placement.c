/* vsphere_placement.c: where an appliance goes, from the inventory: its host,
 * compute resource, datacenter and datastore, the portgroup (standard or
 * distributed) behind each vNIC, the datastore the image is kept on; the
 * folder and resource pool, created when missing. VVol datastores and
 * datastore clusters (StoragePod) are refused before any change. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere_inventory.h"
#include "vsphere_placement.h"
#include "vsphere_session.h"

const char *vs_host_target(const struct nx_appliance_spec *spec)
{
    return spec->host->target ? spec->host->target : spec->host->name;
}

static bool is_network(const struct vs_obj *o)
{
    return vs_is_type(o, "Network") || vs_is_type(o, "DistributedVirtualPortgroup") ||
           vs_is_type(o, "OpaqueNetwork");
}

static bool has_ref(char *const *refs, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(refs[i], id))
            return true;
    return false;
}

const char *vs_dvs_name(const struct vs_conn *c, const struct vs_obj *pg)
{
    const struct vs_obj *d = vs_inv_get(c, pg->dvs);
    return d && d->name ? d->name : "?";
}

const struct vs_pg *vs_host_pg(const struct vs_obj *host, const char *name)
{
    for (size_t i = 0; host && name && i < host->n_pgs; i++)
        if (!strcmp(host->pgs[i].name, name))
            return &host->pgs[i];
    return NULL;
}

/* networks (standard and distributed) this host can use */
static bool host_has_net(const struct vs_obj *host, const struct vs_obj *net)
{
    return has_ref(host->refs, host->n_refs, net->id) ||
           (vs_is_type(net, "Network") && vs_host_pg(host, net->name)) ||
           (vs_is_type(net, "DistributedVirtualPortgroup") &&
            has_ref(net->refs, net->n_refs, host->id));
}

struct vs_obj *vs_find_host(struct vs_conn *c, const char *name)
{
    struct vs_obj *found = NULL;
    for (size_t i = 0; i < c->inv.n; i++) {
        struct vs_obj *o = c->inv.objs[i];
        if (vs_is_type(o, "HostSystem") && nx_str_eq(o->name, name)) {
            if (found) {
                nx_error_set(NX_EX_DATAERR, "ESXi host '%s' is ambiguous (%s, %s)", name, found->id,
                             o->id);
                return NULL;
            }
            found = o;
        }
    }
    if (!found) {
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < c->inv.n; i++)
            if (vs_is_type(c->inv.objs[i], "HostSystem"))
                strbuf_addf(&sb, "%s%s", sb.len ? ", " : "",
                            c->inv.objs[i]->name ? c->inv.objs[i]->name : c->inv.objs[i]->id);
        nx_error_set(NX_EX_DATAERR, "ESXi host '%s' not found (hosts: %s)", name,
                     sb.len ? sb.buf : "none");
        strbuf_release(&sb);
    }
    return found;
}

static void describe_net(const struct vs_conn *c, const struct vs_obj *host, struct strbuf *sb,
                         const struct vs_obj *n)
{
    if (vs_is_type(n, "DistributedVirtualPortgroup")) {
        strbuf_addf(sb, "'%s' (distributed, switch '%s'", n->name ? n->name : "",
                    vs_dvs_name(c, n));
        if (n->vlan >= 0)
            strbuf_addf(sb, ", VLAN %d", n->vlan);
        strbuf_addch(sb, ')');
    } else {
        const struct vs_pg *pg = vs_host_pg(host, n->name);
        strbuf_addf(sb, "'%s' (standard", n->name ? n->name : "");
        if (pg)
            strbuf_addf(sb, ", switch '%s', VLAN %u", pg->vswitch ? pg->vswitch : "?", pg->vlan);
        strbuf_addch(sb, ')');
    }
}

static void list_host_nets(const struct vs_conn *c, const struct vs_obj *host, struct strbuf *sb)
{
    size_t n = 0;
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *o = c->inv.objs[i];
        if (!is_network(o) || !host_has_net(host, o))
            continue;
        if (n++)
            strbuf_addstr(sb, ", ");
        describe_net(c, host, sb, o);
    }
    if (!n)
        strbuf_addstr(sb, "none");
}

int vs_resolve_vnic(struct vs_conn *c, const struct vs_obj *host, const struct nx_vnic_spec *v,
                    struct vs_backing *out)
{
    const struct vs_obj *cand[16];
    size_t n = 0;
    struct strbuf sb = STRBUF_INIT;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *o = c->inv.objs[i];
        if (!is_network(o) || !host_has_net(host, o))
            continue;
        bool match;
        if (v->kind == NX_VNIC_PRODUCTION) {
            match = nx_str_eq(o->name, v->network);
        } else if (vs_is_type(o, "DistributedVirtualPortgroup")) {
            match = o->vlan == (int)v->vlan &&
                    (!v->network || nx_str_eq(vs_dvs_name(c, o), v->network));
        } else {
            const struct vs_pg *pg = vs_host_pg(host, o->name);
            match =
                pg && pg->vlan == v->vlan && (!v->network || nx_str_eq(pg->vswitch, v->network));
        }
        if (match && n < NX_ARRAY_SIZE(cand))
            cand[n++] = o;
    }
    if (n == 1) {
        out->net = cand[0];
        if (vs_is_type(cand[0], "DistributedVirtualPortgroup")) {
            const struct vs_obj *d = vs_inv_get(c, cand[0]->dvs);
            if (!d || !d->uuid) {
                nx_error_set(NX_EX_DATAERR,
                             "portgroup '%s': its distributed switch (%s) has no UUID in the "
                             "inventory",
                             cand[0]->name, cand[0]->dvs ? cand[0]->dvs : "none");
                return -1;
            }
            out->switch_uuid = d->uuid;
        }
        return 0;
    }
    if (n > 1) {
        for (size_t i = 0; i < n; i++) {
            if (i)
                strbuf_addstr(&sb, ", ");
            describe_net(c, host, &sb, cand[i]);
        }
        if (v->kind == NX_VNIC_PRODUCTION)
            nx_error_set(NX_EX_DATAERR,
                         "production network '%s' matches %zu networks on host '%s': %s",
                         v->network, n, host->name, sb.buf);
        else
            nx_error_set(NX_EX_DATAERR,
                         "VLAN %u ('%s') is carried by %zu portgroups on host '%s': %s (set "
                         "vlan-switch on the host to choose)",
                         v->vlan, v->label, n, host->name, sb.buf);
    } else {
        list_host_nets(c, host, &sb);
        if (v->kind == NX_VNIC_PRODUCTION)
            nx_error_set(NX_EX_DATAERR,
                         "production network '%s' not found on host '%s' (networks: %s)",
                         v->network, host->name, sb.buf);
        else
            nx_error_set(NX_EX_DATAERR,
                         "no portgroup carries VLAN %u ('%s') on host '%s'%s%s%s (networks: %s)",
                         v->vlan, v->label, host->name, v->network ? " on switch '" : "",
                         v->network ? v->network : "", v->network ? "'" : "", sb.buf);
    }
    strbuf_release(&sb);
    return -1;
}

struct vs_obj *vs_find_named(struct vs_conn *c, const char *type, const char *name,
                             const char *parent)
{
    for (size_t i = 0; i < c->inv.n; i++) {
        struct vs_obj *o = c->inv.objs[i];
        if (vs_is_type(o, type) && nx_str_eq(o->name, name) &&
            (!parent || nx_str_eq(o->parent, parent)))
            return o;
    }
    return NULL;
}

/* A datastore the appliance may live on: not VVol, not a datastore cluster
 * nor in one. NULL with the reason in *why. */
static bool datastore_ok(struct vs_conn *c, const struct vs_obj *ds, char **why)
{
    const struct vs_obj *p = vs_inv_get(c, ds->parent);
    if (ds->ds_type && !strcmp(ds->ds_type, "VVOL")) {
        *why = nx_asprintf("datastore '%s' is a VVol datastore (summary.type VVOL): not "
                           "supported for appliances; choose a VMFS or NFS datastore",
                           ds->name ? ds->name : ds->id);
        return false;
    }
    if (vs_is_type(p, "StoragePod")) {
        *why = nx_asprintf("datastore '%s' belongs to the datastore cluster (StoragePod) '%s': "
                           "not supported; choose a datastore outside datastore clusters",
                           ds->name ? ds->name : ds->id, p->name ? p->name : p->id);
        return false;
    }
    return true;
}

/* c->lock held: the datastore `name` on host, refused (with the reason,
 * after `prefix`) when it is not one an appliance may use, also where the
 * host does not see it. */
static int datastore_by_name_locked(struct vs_conn *c, const struct vs_obj *host, const char *name,
                                    const char *prefix, struct vs_obj **out)
{
    char *why = NULL;
    *out = NULL;
    if (vs_find_named(c, "StoragePod", name, NULL))
        return nx_error_set(NX_EX_DATAERR,
                            "%sdatastore '%s' is a datastore cluster (StoragePod): not "
                            "supported; name one datastore outside datastore clusters",
                            prefix, name);
    struct vs_obj *ds = NULL;
    for (size_t i = 0; i < host->n_dss && !ds; i++) {
        struct vs_obj *d = vs_inv_get(c, host->dss[i]);
        if (d && nx_str_eq(d->name, name))
            ds = d; /* names are unique in a datacenter */
    }
    /* refuse what the name designates even where the host does not see it */
    struct vs_obj *any = ds ? ds : vs_find_named(c, "Datastore", name, NULL);
    if (any && !datastore_ok(c, any, &why)) {
        nx_error_set(NX_EX_DATAERR, "%s%s", prefix, why);
        free(why);
        return -1;
    }
    if (!ds)
        return nx_error_set(NX_EX_DATAERR, "%sdatastore '%s' not found on host '%s'", prefix, name,
                            host->name);
    *out = ds;
    return 0;
}

/* c->lock held: host, compute resource, datacenter and datastore */
int vs_resolve_place_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                            struct vs_resolved *r)
{
    r->host = vs_find_host(c, vs_host_target(spec));
    if (!r->host)
        return -1;
    r->cr = vs_inv_get(c, r->host->parent);
    if (!r->cr || !r->cr->root_pool)
        return nx_error_set(NX_EX_DATAERR, "host '%s': no compute resource with a root pool",
                            r->host->name);
    struct vs_obj *o = r->host;
    for (int depth = 0; o && !vs_is_type(o, "Datacenter") && depth < 64; depth++)
        o = vs_inv_get(c, o->parent);
    r->dc = vs_is_type(o, "Datacenter") ? o : NULL;
    if (!r->dc || !r->dc->vm_folder)
        return nx_error_set(NX_EX_DATAERR, "host '%s': its datacenter was not found",
                            r->host->name);

    const char *dsname = spec->placement.datastore;
    char *why = NULL;
    if (dsname) {
        if (datastore_by_name_locked(c, r->host, dsname, "", &r->ds) < 0)
            return -1;
    } else {
        for (size_t i = 0; i < r->host->n_dss && !r->ds; i++) {
            struct vs_obj *d = vs_inv_get(c, r->host->dss[i]);
            if (d && datastore_ok(c, d, &why))
                r->ds = d;
            NX_FREE(why);
        }
        if (!r->ds)
            return nx_error_set(NX_EX_DATAERR,
                                "host '%s': no usable datastore (VVol and datastore clusters "
                                "are not supported); name one in the plan",
                                r->host->name);
    }
    return 0;
}

/* c->lock held: the datastore spec's image is kept on (r placed) */
int vs_image_datastore_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                              const struct vs_resolved *r, struct vs_obj **out)
{
    const char *name = spec->host->image_store;
    *out = NULL;
    if (!name) {
        *out = r->ds;
        return 0;
    }
    return datastore_by_name_locked(c, r->host, name, "image-store: ", out);
}

/* c->lock held */
static int resolve_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                          struct vs_resolved *r)
{
    if (vs_resolve_place_locked(c, spec, r) < 0)
        return -1;
    if (spec->image && vs_image_datastore_locked(c, spec, r, &r->image_ds) < 0)
        return -1;
    r->nics = nx_calloc(spec->n_vnics + 1, sizeof(*r->nics));
    for (size_t i = 0; i < spec->n_vnics; i++)
        if (vs_resolve_vnic(c, r->host, &spec->vnics[i], &r->nics[i]) < 0) {
            NX_FREE(r->nics);
            return -1;
        }
    return 0;
}

/* Where spec goes, from the inventory (read first if needed). The objects
 * r points to stay valid until the connection closes. */
int vs_resolve(struct vs_conn *c, const struct nx_appliance_spec *spec, struct vs_resolved *r)
{
    memset(r, 0, sizeof(*r));
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    int rc = resolve_locked(c, spec, r);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* c->lock held */
static void remember_host(struct vs_conn *c, const struct nx_appliance_spec *spec)
{
    struct vs_hostinfo *h = NULL;
    for (size_t i = 0; i < c->n_hosts && !h; i++)
        if (!strcmp(c->hosts[i].plan_host, spec->host->name))
            h = &c->hosts[i];
    if (!h) {
        NX_GROW(c->hosts, c->alloc_hosts, c->n_hosts + 1);
        h = &c->hosts[c->n_hosts++];
        memset(h, 0, sizeof(*h));
        h->plan_host = nx_strdup(spec->host->name);
    }
    for (size_t i = 0; i < spec->n_vnics; i++) {
        const struct nx_vnic_spec *v = &spec->vnics[i];
        bool have = false;
        if (v->kind != NX_VNIC_PRODUCTION || !v->network)
            continue;
        for (size_t j = 0; j < h->n_prod && !have; j++)
            have = !strcmp(h->prod_nets[j], v->network);
        if (have)
            continue;
        h->prod_nets = nx_realloc(h->prod_nets, (h->n_prod + 1) * sizeof(*h->prod_nets));
        h->prod_vlans = nx_realloc(h->prod_vlans, (h->n_prod + 1) * sizeof(*h->prod_vlans));
        h->prod_nets[h->n_prod] = nx_strdup(v->network);
        h->prod_vlans[h->n_prod] = v->vlan;
        h->n_prod++;
    }
}

int vs_check_placement(struct nx_conn *base, const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = base->priv;
    struct vs_resolved r;
    pthread_mutex_lock(&c->lock);
    remember_host(c, spec);
    pthread_mutex_unlock(&c->lock);
    int rc = vs_resolve(c, spec, &r);
    free(r.nics);
    return rc;
}

const struct vs_hostinfo *vs_hostinfo(const struct vs_conn *c, const char *plan_host)
{
    for (size_t i = 0; i < c->n_hosts; i++)
        if (nx_str_eq(c->hosts[i].plan_host, plan_host))
            return &c->hosts[i];
    return NULL;
}

/* ---- folder and resource pool ------------------------------------------- */

/* The moref value (copied) of the folder or pool `name` under `parent` the
 * inventory knows; NULL if none. */
static char *known_container(struct vs_conn *c, const char *kind, const char *parent,
                             const char *name)
{
    pthread_mutex_lock(&c->lock);
    struct vs_obj *o = vs_find_named(c, kind, name, parent);
    char *id = o ? nx_strdup(o->id) : NULL;
    pthread_mutex_unlock(&c->lock);
    return id;
}

/* c->container_lock held: the folder or pool `name` under `parent`, created
 * when missing; a DuplicateName fault (someone created it meanwhile) counts
 * as success. */
static int ensure_container_locked(struct vs_conn *c, const char *kind, const char *parent_type,
                                   const char *parent, const char *name, char **out)
{
    if ((*out = known_container(c, kind, parent, name)))
        return 0;
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    const char *method = !strcmp(kind, "Folder") ? "CreateFolder" : "CreateResourcePool";
    nx_soap_begin(&sb, method, parent_type, parent);
    nx_soap_add(&sb, "name", name);
    if (strcmp(kind, "Folder") != 0) {
        static const char alloc[] = "<reservation>0</reservation>"
                                    "<expandableReservation>true</expandableReservation>"
                                    "<limit>-1</limit><shares><shares>0</shares>"
                                    "<level>normal</level></shares>";
        strbuf_addf(&sb,
                    "<spec><cpuAllocation>%s</cpuAllocation><memoryAllocation>%s"
                    "</memoryAllocation></spec>",
                    alloc, alloc);
    }
    nx_soap_end(&sb, method);
    int rc = vs_call_ex(c, method, sb.buf, &r, &f, true, NULL, NULL);
    strbuf_release(&sb);
    if (rc == 1 && !strcmp(f.type, "DuplicateName") && f.object) {
        nx_info("vsphere: %s '%s' was created meanwhile; using it", kind, name);
        *out = nx_strdup(f.object);
        rc = 0;
    } else if (rc == 0) {
        *out = nx_soap_child_text(r.body, "returnval");
        if (!*out)
            rc = nx_error_set(NX_EX_PROTOCOL, "%s: no reference in the answer", method);
        else
            nx_info("vsphere: created %s '%s'",
                    !strcmp(kind, "Folder") ? "folder" : "resource pool", name);
    } else {
        nx_error_prefix("creating %s '%s': ", !strcmp(kind, "Folder") ? "folder" : "resource pool",
                        name);
        rc = -1;
    }
    nx_soap_resp_release(&r);
    nx_soap_fault_release(&f);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        struct vs_obj *n = vs_inv_add(&c->inv, kind, *out);
        free(n->name);
        n->name = nx_strdup(name);
        free(n->parent);
        n->parent = nx_strdup(parent);
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

/* Threads that need the same folder wait for the first one to create it. */
int vs_ensure_container(struct vs_conn *c, const char *kind, const char *parent_type,
                        const char *parent, const char *name, char **out)
{
    if ((*out = known_container(c, kind, parent, name)))
        return 0;
    pthread_mutex_lock(&c->container_lock);
    int rc = ensure_container_locked(c, kind, parent_type, parent, name, out);
    pthread_mutex_unlock(&c->container_lock);
    return rc;
}

void vs_placement_release(struct vs_conn *c)
{
    for (size_t i = 0; i < c->n_hosts; i++) {
        free(c->hosts[i].plan_host);
        for (size_t j = 0; j < c->hosts[i].n_prod; j++)
            free(c->hosts[i].prod_nets[j]);
        free(c->hosts[i].prod_nets);
        free(c->hosts[i].prod_vlans);
    }
    free(c->hosts);
    c->hosts = NULL;
    c->n_hosts = c->alloc_hosts = 0;
}
