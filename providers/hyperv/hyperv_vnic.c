/* hyperv_vnic.c: vNICs of Hyper-V appliances: AddResourceSettings of a
 * Msvm_SyntheticEthernetPortSettingData (static MAC), then of a
 * Msvm_EthernetPortAllocationSettingData connecting it to the switch, then
 * AddFeatureSettings of a Msvm_EthernetSwitchPortVlanSettingData (access
 * mode), read back; removal: RemoveResourceSettings of the ports. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "hyperv_inventory.h"
#include "hyperv_vnic.h"
#include "util.h"

/* The VLAN setting below the port pid, read back from the host with the
 * rule discovery uses (hv_access_vlan under the port's InstanceID). */
static int read_vlan(struct hv_conn *c, const char *guid, const char *pid, unsigned *vlan)
{
    struct nx_wsman_list l = {0};
    char *like = nx_asprintf("Microsoft:%s", guid);
    char *prefix = nx_asprintf("%s\\", pid);
    int rc = hv_enum_prefix(c, "Msvm_EthernetSwitchPortVlanSettingData", like, &l);
    *vlan = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        unsigned id = hv_access_vlan(l.items[i]);
        if (hv_has_prefix_ci(nx_wsman_prop(l.items[i], "InstanceID"), prefix) && id)
            *vlan = id;
    }
    nx_wsman_list_release(&l);
    free(like);
    free(prefix);
    return rc;
}

/* AddFeatureSettings of the access VLAN on the connection alloc_iid, then
 * read back below the port port_iid. */
static int set_vlan(struct hv_conn *c, const char *guid, const char *port_iid,
                    const char *alloc_iid, const struct nx_vnic_spec *v, const char *mac)
{
    char vid[16];
    snprintf(vid, sizeof(vid), "%u", v->vlan);
    struct nx_cim_prop vl[] = {
        {.name = "OperationMode", .type = "uint32", .value = "1"},
        {.name = "AccessVlanId", .type = "uint16", .value = vid},
    };
    char *vlan_inst = nx_cim_instance_xml("Msvm_EthernetSwitchPortVlanSettingData", vl, 2);
    struct nx_wsman_epr *ae = hv_iid_epr("Msvm_EthernetPortAllocationSettingData", alloc_iid);
    struct nx_wsman_param p[] = {
        {"AffectedConfiguration", NX_WSMAN_REF, NULL, ae},
        {"FeatureSettings", NX_WSMAN_EMBEDDED, vlan_inst, NULL},
    };
    int rc = hv_call(c, c->vsms, "AddFeatureSettings", p, 2, NULL);
    nx_wsman_epr_free(ae);
    free(vlan_inst);
    unsigned got = 0;
    if (rc == 0)
        rc = read_vlan(c, guid, port_iid, &got);
    if (rc == 0 && got != v->vlan)
        rc = nx_error_set(NX_EX_UNAVAILABLE,
                          "vNIC %s on switch '%s': VLAN %u did not apply (read back: %s%.0u); "
                          "the host accepted the setting but does not show it",
                          mac, v->network, v->vlan, got ? "VLAN " : "none", got);
    return rc;
}

int hv_add_vnic(struct hv_conn *c, const char *guid, const struct nx_vnic_spec *v)
{
    struct nx_wsman_epr *vssd = hv_vssd_epr(guid);
    char *port_iid = NULL, *alloc_iid = NULL, *port_path = NULL, *sw_path = NULL;
    char mac[13], devid[48];
    int ret = -1;
    hv_format_mac(v->mac, mac);
    const struct hv_switch *sw = hv_switch_named(c, v->network);
    if (!sw) {
        nx_error_set(NX_EX_DATAERR, "Hyper-V virtual switch '%s' not found (or ambiguous)",
                     v->network ? v->network : "(none)");
        goto cleanup;
    }
    /* a device id of our own, derived from the MAC: stable and unique per VM */
    snprintf(devid, sizeof(devid), "{6E78E7D0-0000-4000-8000-%s}", mac);
    const char *ids[] = {devid};
    struct nx_cim_prop port[] = {
        {.name = "ElementName", .value = v->label ? v->label : "Network Adapter"},
        {.name = "ResourceType", .type = "uint16", .value = "10"},
        {.name = "ResourceSubType", .value = "Microsoft:Hyper-V:Synthetic Ethernet Port"},
        {.name = "StaticMacAddress", .type = "boolean", .value = "true"},
        {.name = "Address", .value = mac},
        {.name = "VirtualSystemIdentifiers", .array = ids, .n_array = 1},
    };
    if (hv_add_resource(c, vssd, "Msvm_SyntheticEthernetPortSettingData", port, NX_ARRAY_SIZE(port),
                        &port_iid) < 0 ||
        (!port_iid && hv_find_setting(c, guid, "Msvm_SyntheticEthernetPortSettingData", "Address",
                                      false, mac, &port_iid) < 0))
        goto cleanup;
    port_path = hv_setting_path(c, "Msvm_SyntheticEthernetPortSettingData", port_iid);
    sw_path = hv_wmi_path(c->host, sw->epr);
    const char *hr[] = {sw_path};
    struct nx_cim_prop conn[] = {
        {.name = "ResourceType", .type = "uint16", .value = "33"},
        {.name = "ResourceSubType", .value = "Microsoft:Hyper-V:Ethernet Connection"},
        {.name = "Parent", .value = port_path},
        {.name = "HostResource", .array = hr, .n_array = 1},
        {.name = "EnabledState", .type = "uint16", .value = "2"},
    };
    if (hv_add_resource(c, vssd, "Msvm_EthernetPortAllocationSettingData", conn,
                        NX_ARRAY_SIZE(conn), &alloc_iid) < 0 ||
        (!alloc_iid && hv_find_setting(c, guid, "Msvm_EthernetPortAllocationSettingData", "Parent",
                                       true, port_iid, &alloc_iid) < 0))
        goto cleanup;
    if (v->vlan && set_vlan(c, guid, port_iid, alloc_iid, v, mac) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    nx_wsman_epr_free(vssd);
    free(port_iid);
    free(alloc_iid);
    free(port_path);
    free(sw_path);
    return ret;
}

int hv_remove_vnics(struct hv_conn *c, const struct nx_vnic_obs *const *rem, size_t n)
{
    if (!n)
        return 0;
    struct nx_wsman_epr **e = nx_calloc(n, sizeof(*e));
    struct nx_wsman_param *p = nx_calloc(n, sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        e[i] = hv_iid_epr("Msvm_SyntheticEthernetPortSettingData", rem[i]->id);
        p[i] = (struct nx_wsman_param){"ResourceSettings", NX_WSMAN_REF, NULL, e[i]};
    }
    int rc = hv_call(c, c->vsms, "RemoveResourceSettings", p, n, NULL);
    for (size_t i = 0; i < n; i++)
        nx_wsman_epr_free(e[i]);
    free(e);
    free(p);
    return rc;
}
