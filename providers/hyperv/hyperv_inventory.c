/* hyperv_inventory.c: discovery on a Hyper-V host: virtual switches, the
 * appliances (by the marker in their settings' Notes) with their vNICs,
 * VLANs and image, and the switches used by other VMs. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "hyperv_inventory.h"
#include "log.h"
#include "util.h"

#define VSSD_REALIZED "Microsoft:Hyper-V:System:Realized"

int hv_load_switches(struct hv_conn *c)
{
    struct nx_wsman_list l = {0};
    if (c->have_switches)
        return 0;
    if (hv_enum(c, "Msvm_VirtualEthernetSwitch", NULL, &l) < 0)
        return -1;
    for (size_t i = 0; i < l.n; i++) {
        const char *name = nx_wsman_prop(l.items[i], "ElementName");
        const char *guid = nx_wsman_prop(l.items[i], "Name");
        if (!name || !guid || !l.items[i]->epr)
            continue;
        NX_GROW(c->sw, c->alloc_sw, c->n_sw + 1);
        c->sw[c->n_sw].name = nx_strdup(name);
        c->sw[c->n_sw].guid = nx_strdup(guid);
        c->sw[c->n_sw].epr = nx_wsman_epr_dup(l.items[i]->epr);
        c->n_sw++;
    }
    nx_wsman_list_release(&l);
    c->have_switches = true;
    return 0;
}

void hv_switches_release(struct hv_conn *c)
{
    for (size_t i = 0; i < c->n_sw; i++) {
        free(c->sw[i].name);
        free(c->sw[i].guid);
        nx_wsman_epr_free(c->sw[i].epr);
    }
    NX_FREE(c->sw);
    c->n_sw = c->alloc_sw = 0;
    c->have_switches = false;
}

const struct hv_switch *hv_switch_named(const struct hv_conn *c, const char *name)
{
    const struct hv_switch *found = NULL;
    for (size_t i = 0; i < c->n_sw; i++)
        if (name && strcmp(c->sw[i].name, name) == 0) {
            if (found)
                return NULL; /* ambiguous: reported by check_placement */
            found = &c->sw[i];
        }
    return found;
}

static const struct hv_switch *switch_by_guid(const struct hv_conn *c, const char *guid)
{
    for (size_t i = 0; i < c->n_sw; i++)
        if (guid && strcasecmp(c->sw[i].guid, guid) == 0)
            return &c->sw[i];
    return NULL;
}

int hv_check_placement(struct nx_conn *base, const struct nx_appliance_spec *s)
{
    struct hv_conn *c = base->priv;
    if (hv_load_switches(c) < 0)
        return -1;
    for (size_t i = 0; i < s->n_vnics; i++) {
        const struct nx_vnic_spec *v = &s->vnics[i];
        if (!v->network)
            return nx_error_set(NX_EX_DATAERR,
                                "VLAN %u ('%s') needs the host's vlan-switch: the Hyper-V "
                                "virtual switch that carries tenant VLANs",
                                v->vlan, v->label);
        size_t n = 0;
        for (size_t k = 0; k < c->n_sw; k++)
            n += strcmp(c->sw[k].name, v->network) == 0;
        if (n == 0)
            return nx_error_set(NX_EX_DATAERR,
                                "Hyper-V virtual switch '%s' does not exist on %s (host %s)",
                                v->network, c->base->uri, c->host);
        if (n > 1)
            return nx_error_set(NX_EX_DATAERR,
                                "%zu Hyper-V virtual switches are named '%s' on %s: rename one", n,
                                v->network, c->base->uri);
    }
    if (s->placement.resource_pool)
        nx_debug("%s: Hyper-V has no resource pools; '%s' is ignored", c->base->uri,
                 s->placement.resource_pool);
    return 0;
}

/* ---- discovery ------------------------------------------------------------ */

struct hv_inv {
    struct nx_wsman_list vms, vssd, ports, allocs, vlans;
};

static void inv_release(struct hv_inv *v)
{
    nx_wsman_list_release(&v->vms);
    nx_wsman_list_release(&v->vssd);
    nx_wsman_list_release(&v->ports);
    nx_wsman_list_release(&v->allocs);
    nx_wsman_list_release(&v->vlans);
}

/* Fill o->vnics from the inventory lists (ports of VM guid). */
static void collect_vnics(const struct hv_conn *c, const struct hv_inv *v, const char *guid,
                          struct nx_appliance_obs *o)
{
    char *prefix = nx_asprintf("Microsoft:%s\\", guid);
    for (size_t i = 0; i < v->ports.n; i++) {
        const struct nx_wsman_instance *p = v->ports.items[i];
        const char *iid = nx_wsman_prop(p, "InstanceID");
        if (!hv_has_prefix_ci(iid, prefix))
            continue;
        struct nx_vnic_obs *vn = nx_obs_add_vnic(o);
        vn->id = nx_strdup(iid);
        hv_parse_mac(nx_wsman_prop(p, "Address"), vn->mac);
        /* its connection: Parent names the port */
        for (size_t k = 0; k < v->allocs.n; k++) {
            const struct nx_wsman_instance *a = v->allocs.items[k];
            if (!hv_path_names(nx_wsman_prop(a, "Parent"), iid))
                continue;
            char *sw = hv_wmi_path_key(nx_wsman_prop(a, "HostResource"), "Name");
            const struct hv_switch *s = switch_by_guid(c, sw);
            free(sw);
            free(vn->network);
            vn->network = s ? nx_strdup(s->name) : NULL;
            /* its VLAN: a feature setting below the port (InstanceID
             * "<port>\\C\\..." on Hyper-V; any layout under the port does) */
            char *aprefix = nx_asprintf("%s\\", iid);
            for (size_t m = 0; m < v->vlans.n; m++) {
                const struct nx_wsman_instance *vl = v->vlans.items[m];
                unsigned id = hv_access_vlan(vl);
                if (hv_has_prefix_ci(nx_wsman_prop(vl, "InstanceID"), aprefix) && id)
                    vn->vlan = id;
            }
            free(aprefix);
        }
    }
    free(prefix);
}

static int load_inventory(struct hv_conn *c, struct hv_inv *v)
{
    if (hv_load_switches(c) < 0)
        return -1;
    if (hv_enum(c, "Msvm_VirtualSystemSettingData",
                "SELECT * FROM Msvm_VirtualSystemSettingData WHERE VirtualSystemType "
                "= '" VSSD_REALIZED "'",
                &v->vssd) < 0 ||
        hv_enum(c, "Msvm_ComputerSystem", NULL, &v->vms) < 0 ||
        hv_enum(c, "Msvm_SyntheticEthernetPortSettingData", NULL, &v->ports) < 0 ||
        hv_enum(c, "Msvm_EthernetPortAllocationSettingData", NULL, &v->allocs) < 0 ||
        hv_enum(c, "Msvm_EthernetSwitchPortVlanSettingData", NULL, &v->vlans) < 0)
        return -1;
    return 0;
}

/* Whether a CD/DVD disk of VM guid has netext-appliance-<id>.iso as its
 * HostResource (in whatever directory). */
static bool holds_image(const struct nx_wsman_list *disks, const char *guid, const char *id)
{
    char *prefix = nx_asprintf("Microsoft:%s\\", guid);
    char *name = nx_asprintf("netext-appliance-%s.iso", id);
    bool found = false;
    for (size_t i = 0; i < disks->n && !found; i++) {
        const struct nx_wsman_instance *d = disks->items[i];
        if (!hv_has_prefix_ci(nx_wsman_prop(d, "InstanceID"), prefix))
            continue;
        for (size_t k = 0; k < d->n && !found; k++)
            found = !strcmp(d->props[k].name, "HostResource") &&
                    hv_path_has_name(d->props[k].value, name);
    }
    free(prefix);
    free(name);
    return found;
}

int hv_list_owned(struct nx_conn *base, struct nx_obs_list *out)
{
    struct hv_conn *c = base->priv;
    struct hv_inv v = {0};
    struct nx_wsman_list disks = {0};
    int ret = -1;
    if (load_inventory(c, &v) < 0 ||
        hv_enum(c, "Msvm_StorageAllocationSettingData",
                "SELECT * FROM Msvm_StorageAllocationSettingData WHERE ResourceSubType = "
                "'" HV_SUBTYPE_DVD_DISK "'",
                &disks) < 0)
        goto cleanup;
    for (size_t i = 0; i < v.vssd.n; i++) {
        const struct nx_wsman_instance *s = v.vssd.items[i];
        const char *guid = nx_wsman_prop(s, "VirtualSystemIdentifier");
        const char *type = nx_wsman_prop(s, "VirtualSystemType");
        if (!guid || (type && strcmp(type, VSSD_REALIZED) != 0))
            continue;
        struct nx_marker m = {0};
        if (!hv_vssd_marker(s, &m))
            continue;
        const struct nx_wsman_instance *vm = NULL;
        for (size_t k = 0; k < v.vms.n; k++)
            if (nx_str_eq(nx_wsman_prop(v.vms.items[k], "Name"), guid))
                vm = v.vms.items[k];
        if (!vm) { /* settings without a system: being destroyed */
            nx_marker_release(&m);
            continue;
        }
        struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
        o->marker = m;
        o->id = nx_strdup(guid);
        const char *name = nx_wsman_prop(vm, "ElementName");
        o->name = nx_strdup(name ? name : guid);
        unsigned long st = 0;
        nx_parse_uint(nx_wsman_prop(vm, "EnabledState"), 0, 65535, &st);
        o->powered_on = st != 3; /* 3: Disabled (off); running, paused, saved... count as on */
        collect_vnics(c, &v, guid, o);
        if (o->marker.image[0] && !holds_image(&disks, guid, o->marker.image)) {
            /* the marker says it boots the image, its DVD drive does not
             * hold it (interrupted create, ejected by hand): a set-image
             * puts it back */
            nx_debug("%s: no DVD disk holds image %s", o->name, o->marker.image);
            o->marker.image[0] = '\0';
        }
        nx_obs_list_add(out, o);
    }
    ret = 0;
cleanup:
    inv_release(&v);
    nx_wsman_list_release(&disks);
    return ret;
}

/* Whether the VM guid carries our marker (an appliance). */
static bool is_appliance(const struct hv_inv *v, const char *guid)
{
    for (size_t k = 0; k < v->vssd.n; k++) {
        const struct nx_wsman_instance *s = v->vssd.items[k];
        if (nx_str_eq(nx_wsman_prop(s, "VirtualSystemIdentifier"), guid) && hv_vssd_marker(s, NULL))
            return true;
    }
    return false;
}

/* Count the VM's switches in u (a VM counts once per switch). */
static void count_networks(const struct nx_appliance_obs *vm, struct nx_net_usage **u, size_t *nu,
                           size_t *alloc)
{
    for (size_t k = 0; k < vm->n_vnics; k++) {
        const char *net = vm->vnics[k].network;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = nx_str_eq(vm->vnics[j].network, net);
        if (!net || seen)
            continue;
        size_t j = 0;
        while (j < *nu && strcmp((*u)[j].network, net) != 0)
            j++;
        if (j == *nu) {
            NX_GROW(*u, *alloc, *nu + 1);
            (*u)[*nu].network = nx_strdup(net);
            (*u)[(*nu)++].vms = 0;
        }
        (*u)[j].vms++;
    }
}

/* Virtual switches used by VMs that are not appliances (a VM counts once per
 * switch). A WinRM endpoint is one host, so `host` is not needed to filter. */
int hv_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                     size_t *n_out)
{
    struct hv_conn *c = base->priv;
    struct hv_inv v = {0};
    struct nx_net_usage *u = NULL;
    size_t nu = 0, alloc = 0;
    (void)host;
    *out = NULL;
    *n_out = 0;
    if (load_inventory(c, &v) < 0) {
        inv_release(&v);
        return -1;
    }
    for (size_t i = 0; i < v.vms.n; i++) {
        const char *guid = nx_wsman_prop(v.vms.items[i], "Name");
        if (!guid || nx_str_eq(guid, c->host) || is_appliance(&v, guid))
            continue;
        struct nx_appliance_obs tmp = {0};
        collect_vnics(c, &v, guid, &tmp);
        count_networks(&tmp, &u, &nu, &alloc);
        for (size_t k = 0; k < tmp.n_vnics; k++) {
            free(tmp.vnics[k].id);
            free(tmp.vnics[k].network);
        }
        free(tmp.vnics);
    }
    inv_release(&v);
    *out = u;
    *n_out = nu;
    return 0;
}

int hv_find_defined(struct hv_conn *c, const char *name, const char *notes, char **guid)
{
    struct nx_wsman_list l = {0};
    char *q = hv_wql("Msvm_VirtualSystemSettingData", "ElementName", "=", name, NULL);
    int rc = hv_enum(c, "Msvm_VirtualSystemSettingData", q, &l);
    size_t hits = 0;
    *guid = NULL;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *g = nx_wsman_prop(l.items[i], "VirtualSystemIdentifier");
        if (g && nx_str_eq(nx_wsman_prop(l.items[i], "Notes"), notes) && ++hits == 1)
            *guid = nx_strdup(g);
    }
    if (rc == 0 && hits != 1) {
        rc = nx_error_set(NX_EX_PROTOCOL,
                          "DefineSystem succeeded without naming the new VM, and %zu VMs named "
                          "'%s' carry its marker",
                          hits, name);
        NX_FREE(*guid);
    }
    nx_wsman_list_release(&l);
    free(q);
    return rc;
}
