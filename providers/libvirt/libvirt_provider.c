/* libvirt_provider.c: network extension appliances as libvirt domains
 * (docs/internals/libvirt.md; the files below it are listed in libvirt.h).
 *
 * - The ops table; which URIs are libvirt's (any the other providers leave).
 * - Placement checks: networks (Open vSwitch, or a portgroup with the VLAN),
 *   resource pool names, storage pools (datastore, image-store).
 * - Create (define), vNIC changes: attach/detach (live and config) where the
 *   driver supports it; otherwise (the test driver) the domain is redefined
 *   with its UUID. A new payload redefines the domain (fw_cfg is read at boot).
 * - Power on/off (a failed start in a resource pool partition says what the
 *   host needs) and removal. */
#include "config.h"

#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "libvirt.h"
#include "log.h"
#include "util.h"

static bool lv_probe(const char *uri)
{
    /* everything libvirt may know; vSphere and Hyper-V URIs are taken first */
    return uri && strstr(uri, ":") != NULL;
}

static bool safe_pool_name(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int lv_check_placement(struct nx_conn *base, const struct nx_appliance_spec *s)
{
    struct lv_conn *c = base->priv;
    for (size_t i = 0; i < s->n_vnics; i++) {
        const struct nx_vnic_spec *v = &s->vnics[i];
        if (!v->network)
            return nx_error_set(NX_EX_DATAERR,
                                "VLAN %u ('%s') needs the host's vlan-switch: the Open vSwitch "
                                "network that carries tenant VLANs",
                                v->vlan, v->label);
        struct net_info *n = lv_net_lookup(c, v->network);
        if (!n)
            return nx_error_set(NX_EX_DATAERR, "libvirt network '%s' does not exist on %s",
                                v->network, c->base->uri);
        if (v->vlan && !n->ovs && !lv_portgroup_for(n, v->vlan))
            return nx_error_set(NX_EX_DATAERR,
                                "libvirt network '%s' cannot carry VLAN %u: it is not an Open "
                                "vSwitch network and has no portgroup with that VLAN",
                                v->network, v->vlan);
    }
    if (s->placement.resource_pool && !safe_pool_name(s->placement.resource_pool))
        return nx_error_set(NX_EX_DATAERR,
                            "resource pool '%s': libvirt partitions take letters, digits, '_', "
                            "'-' and '.' only",
                            s->placement.resource_pool);
    if (s->placement.datastore) {
        virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, s->placement.datastore);
        if (!p)
            return nx_error_set(NX_EX_DATAERR, "storage pool '%s' does not exist on %s",
                                s->placement.datastore, c->base->uri);
        virStoragePoolFree(p);
    }
    if (s->image && s->host->image_store) {
        virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, s->host->image_store);
        if (!p)
            return nx_error_set(NX_EX_DATAERR,
                                "image-store: storage pool '%s' does not exist on %s",
                                s->host->image_store, c->base->uri);
        int active = virStoragePoolIsActive(p);
        virStoragePoolFree(p);
        if (active != 1)
            return nx_error_set(NX_EX_DATAERR, "image-store: storage pool '%s' is not active on %s",
                                s->host->image_store, c->base->uri);
    } else if (s->image && c->remote) {
        return nx_error_set(NX_EX_DATAERR,
                            "%s is a remote libvirt host: give the host an image-store (a storage "
                            "pool the appliance image is uploaded to)",
                            c->base->uri);
    }
    return 0;
}

static int lv_create(struct nx_conn *base, const struct nx_appliance_spec *s,
                     struct nx_appliance_obs **out)
{
    struct lv_conn *c = base->priv;
    struct strbuf xml = STRBUF_INIT;
    int ret = -1;
    if (lv_render_domain(c, s, NULL, &xml) < 0)
        goto cleanup;
    virDomainPtr d = virDomainDefineXML(c->conn, xml.buf);
    if (!d) {
        lv_error(NX_EX_UNAVAILABLE, s->name);
        goto cleanup;
    }
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(d, uuid);
    virDomainFree(d);
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    o->id = nx_strdup(uuid);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    *out = o;
    ret = 0;
cleanup:
    strbuf_release(&xml);
    return ret;
}

static int redefine(struct lv_conn *c, const struct nx_appliance_obs *o,
                    const struct nx_appliance_spec *s)
{
    struct strbuf xml = STRBUF_INIT;
    int ret = -1;
    if (lv_render_domain(c, s, o->id, &xml) < 0)
        goto cleanup;
    virDomainPtr d = virDomainDefineXML(c->conn, xml.buf);
    if (!d) {
        lv_error(NX_EX_UNAVAILABLE, s->name);
        goto cleanup;
    }
    virDomainFree(d);
    ret = 0;
cleanup:
    strbuf_release(&xml);
    return ret;
}

/* whether a domain XML (as libvirt formats it) has an interface with MAC */
static bool live_has_mac(const char *xml, const char *mac)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "<mac address='%s'/>", mac);
    return xml && strstr(xml, needle) != NULL;
}

static int lv_update_vnics(struct nx_conn *base, const struct nx_appliance_obs *o,
                           const struct nx_appliance_spec *s, const struct nx_vnic_spec *const *add,
                           size_t n_add, const struct nx_vnic_obs *const *rem, size_t n_rem)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = lv_lookup_domain(c, o);
    if (!d)
        return -1;
    int ret = -1;
    struct strbuf xml = STRBUF_INIT;
    /* The observed vNICs are the persistent definition's; the running guest
     * may differ: a detach stays pending until the guest acknowledges it
     * (ACPI eject), and a vNIC may have been removed from the config only.
     * Change the live guest only where it differs, else attaching a MAC
     * that is still live would give the guest two NICs with that MAC. */
    char *live = virDomainIsActive(d) == 1 ? virDomainGetXMLDesc(d, 0) : NULL;
    for (size_t i = 0; i < n_rem; i++) {
        char mac[18];
        nx_format_mac(rem[i]->mac, mac);
        unsigned flags = live_has_mac(live, mac) ? VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_AFFECT_LIVE
                                                 : VIR_DOMAIN_AFFECT_CONFIG;
        strbuf_reset(&xml);
        strbuf_addf(&xml, "<interface type='network'><mac address='%s'/>", mac);
        strbuf_addstr(&xml, "<source network='");
        strbuf_add_xml_escaped(&xml, rem[i]->network ? rem[i]->network : "");
        strbuf_addstr(&xml, "'/></interface>");
        if (virDomainDetachDeviceFlags(d, xml.buf, flags) < 0) {
            if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT)
                goto redefine;
            lv_error(NX_EX_UNAVAILABLE, o->name);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < n_add; i++) {
        char mac[18];
        nx_format_mac(add[i]->mac, mac);
        unsigned flags = live && !live_has_mac(live, mac)
                             ? VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_AFFECT_LIVE
                             : VIR_DOMAIN_AFFECT_CONFIG;
        strbuf_reset(&xml);
        if (lv_render_interface(c, add[i], &xml) < 0)
            goto cleanup;
        if (virDomainAttachDeviceFlags(d, xml.buf, flags) < 0) {
            if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT)
                goto redefine;
            lv_error(NX_EX_UNAVAILABLE, o->name);
            goto cleanup;
        }
    }
    ret = 0;
    goto cleanup;
redefine:
    /* the driver cannot hot-plug (e.g. the test driver): define the whole
     * desired configuration under the same UUID */
    nx_debug("%s: driver cannot attach devices; redefining", o->name);
    ret = redefine(c, o, s);
cleanup:
    free(live);
    strbuf_release(&xml);
    virDomainFree(d);
    return ret;
}

static int lv_set_payload(struct nx_conn *base, const struct nx_appliance_obs *o,
                          const struct nx_appliance_spec *s)
{
    /* fw_cfg is read at boot: the new payload applies at the next start */
    return redefine(base->priv, o, s);
}

/* Starting failed. libvirt does not create a resource partition other than
 * /machine when it manages cgroups itself (hosts without systemd-machined):
 * the start then fails with a cgroup error naming a file under the partition
 * (e.g. ".../machine/POOL.partition/..." or, before any guest ever ran,
 * ".../machine/cgroup.controllers"). libvirt has no API to query partitions,
 * so this cannot be checked before the start: say what the host needs. */
static int start_error(virDomainPtr d, const struct nx_appliance_obs *o)
{
    /* copied: the next libvirt call resets the last error */
    const char *last = virGetLastErrorMessage();
    char *msg = nx_strdup(last ? last : "unknown libvirt error");
    char *xml = NULL, *part = NULL;
    if (strstr(msg, "cgroup") && (xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE))) {
        const char *p = strstr(xml, "<partition>"), *e = p ? strstr(p, "</partition>") : NULL;
        if (p && e)
            part = nx_strndup(p + strlen("<partition>"), (size_t)(e - p) - strlen("<partition>"));
    }
    int rc;
    if (part && strncmp(part, "/machine/", 9) == 0 && part[9])
        rc = nx_error_set(NX_EX_UNAVAILABLE,
                          "%s: cannot start in resource pool partition %s: %s (the partition "
                          "must exist on the host before a guest starts: with systemd, the slice "
                          "machine-%s.slice; without, a cgroup %s.partition under /machine in "
                          "every cgroup controller; or leave resource-pool unset)",
                          o->name, part, msg, part + 9, part + 9);
    else
        rc = nx_error_set(NX_EX_UNAVAILABLE, "%s: %s", o->name, msg);
    free(part);
    free(xml);
    free(msg);
    return rc;
}

static int lv_set_power(struct nx_conn *base, const struct nx_appliance_obs *o, bool on)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = lv_lookup_domain(c, o);
    if (!d)
        return -1;
    int active = virDomainIsActive(d), rc = 0;
    if (on && active != 1) {
        if ((rc = virDomainCreate(d)) < 0)
            start_error(d, o);
    } else if (!on && active == 1) {
        if ((rc = virDomainDestroy(d)) < 0)
            lv_error(NX_EX_UNAVAILABLE, o->name);
    }
    virDomainFree(d);
    return rc < 0 ? -1 : 0;
}

static int lv_remove(struct nx_conn *base, const struct nx_appliance_obs *o)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = virDomainLookupByUUIDString(c->conn, o->id);
    if (!d)
        return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? 0
                                                          : lv_error(NX_EX_UNAVAILABLE, o->name);
    int rc = 0;
    if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0)
        rc = lv_error(NX_EX_UNAVAILABLE, o->name);
    if (rc == 0 && virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                 VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                 VIR_DOMAIN_UNDEFINE_NVRAM) < 0) {
        if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT ||
            virGetLastErrorCode() == VIR_ERR_INVALID_ARG) {
            if (virDomainUndefine(d) < 0)
                rc = lv_error(NX_EX_UNAVAILABLE, o->name);
        } else {
            rc = lv_error(NX_EX_UNAVAILABLE, o->name);
        }
    }
    virDomainFree(d);
    return rc;
}

const struct nx_provider_ops nx_libvirt_provider = {
    .name = "libvirt",
    .probe = lv_probe,
    .mac_range = &nx_mac_range_local,
    .open = lv_open,
    .close = lv_close,
    .check_placement = lv_check_placement,
    .list_owned = lv_list_owned,
    .network_usage = lv_network_usage,
    .create = lv_create,
    .update_vnics = lv_update_vnics,
    .set_payload = lv_set_payload,
    .set_power = lv_set_power,
    .remove = lv_remove,
    .stage_image = lv_stage_image,
    .set_image = lv_set_image,
};
