/* vsphere_observed.c: the appliances this tool owns (by marker) and the
 * networks other VMs use, from the inventory, in the terms the core compares
 * (nx_appliance_obs, nx_net_usage). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vsphere_inventory.h"
#include "vsphere_observed.h"
#include "vsphere_placement.h"

/* Describe an observed vNIC in the terms of nx_vnic_spec: the production
 * portgroup by name with the host's production VLAN; any other by its switch
 * and the portgroup's VLAN. */
static void describe_vmnic(const struct vs_conn *c, const struct vs_obj *vm,
                           const struct vs_hostinfo *hi, const struct vs_vmnic *n,
                           struct nx_vnic_obs *out)
{
    const char *pgname = NULL, *sw = NULL;
    int vlan = 0;
    if (n->portgroup_key) {
        const struct vs_obj *o = vs_dvpg_by_key(c, n->portgroup_key);
        if (o) {
            pgname = o->name;
            sw = vs_dvs_name(c, o);
            vlan = o->vlan;
        }
    } else {
        const struct vs_obj *net = vs_inv_get(c, n->network);
        pgname = net && net->name ? net->name : n->device_name;
        const struct vs_pg *pg = vs_host_pg(vs_inv_get(c, vm->vm_host), pgname);
        if (pg) {
            sw = pg->vswitch;
            vlan = (int)pg->vlan;
        }
    }
    memcpy(out->mac, n->mac, 6);
    out->id = nx_strdup(n->key ? n->key : "");
    for (size_t i = 0; hi && pgname && i < hi->n_prod; i++)
        if (!strcmp(pgname, hi->prod_nets[i])) {
            out->network = nx_strdup(pgname);
            out->vlan = hi->prod_vlans[i];
            return;
        }
    out->network = nx_strdup(sw ? sw : pgname ? pgname : "?");
    out->vlan = vlan > 0 && vlan <= 4094 ? (unsigned)vlan : 0;
}

int vs_list_owned(struct nx_conn *base, struct nx_obs_list *out)
{
    struct vs_conn *c = base->priv;
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *vm = c->inv.objs[i];
        struct nx_marker m = {0};
        if (!vs_is_type(vm, "VirtualMachine") || !vm->marker ||
            nx_marker_decode(vm->marker, &m) < 0)
            continue;
        struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
        o->id = nx_strdup(vm->id);
        o->name = nx_strdup(vm->name ? vm->name : vm->id);
        /* the marker's image counts only while the drive holds it (changed
         * by hand: a set-image puts it back) */
        if (m.image[0] && !(vm->cd.file && strstr(vm->cd.file, m.image)))
            m.image[0] = '\0';
        o->marker = m;
        o->powered_on = vm->powered_on;
        const struct vs_hostinfo *hi = vs_hostinfo(c, m.host);
        for (size_t j = 0; j < vm->n_nics; j++)
            describe_vmnic(c, vm, hi, &vm->nics[j], nx_obs_add_vnic(o));
        nx_obs_list_add(out, o);
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* The portgroup a vNIC is connected to, by name; NULL if unknown. */
static const char *nic_pg_name(const struct vs_conn *c, const struct vs_vmnic *nic)
{
    if (nic->portgroup_key) {
        const struct vs_obj *o = vs_dvpg_by_key(c, nic->portgroup_key);
        return o ? o->name : NULL;
    }
    const struct vs_obj *net = vs_inv_get(c, nic->network);
    return net && net->name ? net->name : nic->device_name;
}

/* The networks (portgroup names) used by the VMs on `host` that are not
 * appliances, with how many VMs use each: the tenant side's
 * production-network detection. */
int vs_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                     size_t *n_out)
{
    struct vs_conn *c = base->priv;
    struct nx_net_usage *u = NULL;
    size_t n = 0;
    *out = NULL;
    *n_out = 0;
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    const struct vs_obj *h = vs_find_host(c, host);
    if (!h) {
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *vm = c->inv.objs[i];
        struct nx_marker m = {0};
        if (!vs_is_type(vm, "VirtualMachine") || !nx_str_eq(vm->vm_host, h->id))
            continue;
        if (vm->marker && nx_marker_decode(vm->marker, &m) == 0) {
            nx_marker_release(&m);
            continue; /* an appliance */
        }
        for (size_t j = 0; j < vm->n_nics; j++) {
            const char *name = nic_pg_name(c, &vm->nics[j]);
            bool dup = !name;
            for (size_t k = 0; k < j && !dup; k++) /* each VM counts once per network */
                dup = nx_str_eq(nic_pg_name(c, &vm->nics[k]), name);
            if (dup)
                continue;
            size_t k = 0;
            while (k < n && strcmp(u[k].network, name) != 0)
                k++;
            if (k == n) {
                u = nx_realloc(u, (n + 1) * sizeof(*u));
                u[n].network = nx_strdup(name);
                u[n].vms = 0;
                n++;
            }
            u[k].vms++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    *out = u;
    *n_out = n;
    return 0;
}
