/* hyperv_ops.c: network extension appliances as Hyper-V virtual machines,
 * through WMI (root/virtualization/v2) over WinRM (WS-Management): the
 * nx_provider_ops (top layer). Each operation is a short sequence of the
 * lower files' steps; the WMI classes and methods, the order of the calls
 * and why it converges after an interrupted run: docs/internals/hyperv.md.
 *
 * - Create: DefineSystem (the marker in Notes with an empty digest, with the
 *   SCSI controller when there is an image), the image (hyperv_dvd.c), the
 *   vNICs (hyperv_vnic.c), the boot order, the payload (hyperv_kvp.c), then
 *   ModifySystemSettings with the marker's digest and the firmware, last.
 * - Power: Msvm_ComputerSystem.RequestStateChange (2 on, 3 off); remove =
 *   off, then DestroySystem. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http.h"
#include "hyperv_dvd.h"
#include "hyperv_inventory.h"
#include "hyperv_jobs.h"
#include "hyperv_kvp.h"
#include "hyperv_vnic.h"
#include "log.h"
#include "provider.h"
#include "util.h"
#include "wsman.h"

static bool hv_probe(const char *uri)
{
    return uri &&
           (nx_str_has_prefix(uri, "hyperv://") || nx_str_has_prefix(uri, "hyperv+http://") ||
            nx_str_has_prefix(uri, "hyperv+https://"));
}

static void hv_close(struct nx_conn *base)
{
    struct hv_conn *c = base->priv;
    if (!c)
        return;
    hv_switches_release(c);
    nx_wsman_epr_free(c->vsms);
    nx_wsman_free(c->ws);
    nx_http_free(c->http);
    hv_endpoint_release(&c->ep);
    free(c->host);
    free(c->vm_root);
    free(c);
    base->priv = NULL;
}

static int hv_open(struct nx_conn *base, const char *uri, const struct nx_conn_opts *opts)
{
    struct hv_conn *c = nx_calloc(1, sizeof(*c));
    struct nx_wsman_list l = {0};
    bool parsed = false; /* hv_parse_uri's messages name uri, the others do not */
    c->base = base;
    base->priv = c;
    if (hv_parse_uri(uri, &c->ep) < 0)
        goto fail;
    parsed = true;
    if (c->ep.plain_http)
        nx_warn("%s: plain HTTP: the WS-Man messages%s travel unencrypted; real Hyper-V hosts "
                "refuse this unless WinRM's AllowUnencrypted is true. Use hyperv:// (HTTPS, "
                "port 5986).",
                uri, c->ep.ntlm ? "" : " and the Basic credentials");
    if (opts && opts->insecure && !c->ep.plain_http)
        nx_warn("%s: TLS certificate verification is off (--insecure)", uri);
    c->http = nx_http_new(c->ep.url, opts);
    if (!c->http)
        goto fail;
    if ((c->ep.ntlm ? nx_http_set_ntlm_auth : nx_http_set_basic_auth)(
            c->http, opts ? opts->user : NULL, opts ? opts->password : NULL) < 0)
        goto fail;
    c->ws = nx_wsman_new(c->http, c->ep.url, opts ? opts->request_timeout_ms : 0);

    /* the management service: proves the credentials and names the host */
    if (hv_enum(c, "Msvm_VirtualSystemManagementService", NULL, &l) < 0)
        goto fail;
    if (l.n != 1 || !l.items[0]->epr || !nx_wsman_prop(l.items[0], "SystemName")) {
        nx_error_set(NX_EX_PROTOCOL,
                     "expected one Msvm_VirtualSystemManagementService with its EPR, got %zu", l.n);
        goto fail;
    }
    c->vsms = nx_wsman_epr_dup(l.items[0]->epr);
    c->host = nx_strdup(nx_wsman_prop(l.items[0], "SystemName"));
    nx_wsman_list_release(&l);
    if (hv_enum(c, "Msvm_VirtualSystemManagementServiceSettingData", NULL, &l) < 0)
        goto fail;
    const char *root = l.n ? nx_wsman_prop(l.items[0], "DefaultExternalDataRoot") : NULL;
    if (!root || !root[0]) {
        nx_error_set(NX_EX_PROTOCOL, "the host reports no DefaultExternalDataRoot");
        goto fail;
    }
    c->vm_root = nx_strdup(root);
    nx_wsman_list_release(&l);
    return 0;
fail:
    if (parsed)
        nx_error_prefix("%s: ", uri);
    nx_wsman_list_release(&l);
    hv_close(base);
    return -1;
}

/* The VSSD Notes carry the marker; digest "" until the payload is in place.
 * fw (may be NULL): the firmware settings change in the same call. */
static int set_system(struct hv_conn *c, const char *guid, const struct nx_marker *m,
                      const struct hv_firmware *fw)
{
    char *notes = nx_marker_encode(m);
    char *iid = nx_asprintf("Microsoft:%s", guid);
    const char *arr[] = {notes};
    struct nx_cim_prop props[] = {
        {.name = "InstanceID", .value = iid},
        {.name = "Notes", .array = arr, .n_array = 1},
        {.name = "BootSourceOrder",
         .array = fw && fw->n_boot ? (const char *const *)fw->boot : NULL,
         .n_array = fw ? fw->n_boot : 0},
        {.name = "SecureBootEnabled", .type = "boolean", .value = fw ? "true" : NULL},
        {.name = "SecureBootTemplateId", .value = fw ? HV_SECURE_BOOT_UEFI_CA : NULL},
    };
    char *inst = nx_cim_instance_xml("Msvm_VirtualSystemSettingData", props, NX_ARRAY_SIZE(props));
    struct nx_wsman_param p[] = {{"SystemSettings", NX_WSMAN_EMBEDDED, inst, NULL}};
    int rc = hv_call(c, c->vsms, "ModifySystemSettings", p, 1, NULL);
    free(inst);
    free(iid);
    free(notes);
    return rc;
}

static int hv_set_image(struct nx_conn *base, const struct nx_appliance_obs *o,
                        const struct nx_appliance_spec *s)
{
    struct hv_conn *c = base->priv;
    struct hv_firmware fw = {0};
    struct nx_marker m = {0};
    bool firmware = false;
    int rc = hv_put_image(c, o->id, s, false, &fw, &firmware);
    if (rc == 0) {
        /* the spec's marker: a set-payload before this one in the run
         * succeeded, or was not needed (digest and revision current) */
        nx_marker_from_spec(&m, s);
        rc = set_system(c, o->id, &m, firmware ? &fw : NULL);
    }
    nx_marker_release(&m);
    hv_firmware_release(&fw);
    if (rc < 0)
        nx_error_prefix("%s: ", o->name);
    return rc;
}

static int hv_create(struct nx_conn *base, const struct nx_appliance_spec *s,
                     struct nx_appliance_obs **out)
{
    struct hv_conn *c = base->priv;
    struct nx_marker m = {0};
    struct nx_wsman_instance *o = NULL;
    struct hv_dvd dvd = {0};
    struct hv_firmware fw = {0};
    char *root = NULL, *notes = NULL, *inst = NULL, *ctrl = NULL, *guid = NULL;
    int ret = -1;
    *out = NULL;
    if (hv_load_switches(c) < 0)
        return -1;
    nx_marker_from_spec(&m, s);
    m.digest[0] = '\0'; /* set once the payload is in place */
    notes = nx_marker_encode(&m);
    root = hv_data_root(c->vm_root, s->placement.folder, s->tenant ? s->tenant->name : "");
    const char *arr[] = {notes};
    struct nx_cim_prop vssd[] = {
        {.name = "ElementName", .value = s->name},
        {.name = "VirtualSystemSubType", .value = "Microsoft:Hyper-V:SubType:2"},
        {.name = "ConfigurationDataRoot", .value = root},
        {.name = "SnapshotDataRoot", .value = root},
        {.name = "SwapFileDataRoot", .value = root},
        {.name = "SuspendDataRoot", .value = root},
        {.name = "LogDataRoot", .value = root},
        {.name = "Notes", .array = arr, .n_array = 1},
    };
    inst = nx_cim_instance_xml("Msvm_VirtualSystemSettingData", vssd, NX_ARRAY_SIZE(vssd));
    /* with an image, the SCSI controller its DVD drive goes on is defined
     * with the VM (DefineSystem takes resource settings) */
    struct nx_cim_prop scsi[] = {
        {.name = "ResourceType", .type = "uint16", .value = "6"},
        {.name = "ResourceSubType", .value = HV_SUBTYPE_SCSI},
    };
    ctrl = s->image ? nx_cim_instance_xml("Msvm_ResourceAllocationSettingData", scsi, 2) : NULL;
    struct nx_wsman_param p[] = {{"SystemSettings", NX_WSMAN_EMBEDDED, inst, NULL},
                                 {"ResourceSettings", NX_WSMAN_EMBEDDED, ctrl, NULL}};
    if (hv_call(c, c->vsms, "DefineSystem", p, ctrl ? 2 : 1, &o) < 0)
        goto cleanup;
    const struct nx_wsman_epr *rs = nx_wsman_prop_epr(o, "ResultingSystem");
    const char *g = rs ? nx_wsman_epr_selector(rs, "Name") : NULL;
    if (g)
        guid = nx_strdup(g);
    else if (hv_find_defined(c, s->name, notes, &guid) < 0)
        goto cleanup;
    nx_info("%s: defined virtual machine %s in %s", s->name, guid, root);
    struct nx_appliance_obs *obs = nx_calloc(1, sizeof(*obs));
    obs->id = nx_strdup(guid);
    obs->name = nx_strdup(s->name);
    nx_marker_from_spec(&obs->marker, s);
    *out = obs;
    if (s->image) {
        bool added = false;
        if (hv_find_dvd(c, guid, false, &dvd) < 0 || hv_attach_image(c, guid, s, &dvd, &added) < 0)
            goto cleanup;
        nx_info("%s: DVD drive holds %s", s->name, dvd.path);
    }
    for (size_t i = 0; i < s->n_vnics; i++) {
        if (hv_add_vnic(c, guid, &s->vnics[i]) < 0)
            goto cleanup;
        struct nx_vnic_obs *vn = nx_obs_add_vnic(obs);
        memcpy(vn->mac, s->vnics[i].mac, 6);
        vn->network = nx_strdup(s->vnics[i].network);
        vn->vlan = s->vnics[i].vlan;
    }
    /* every device is there: the DVD drive goes first in the boot order */
    if (s->image && hv_dvd_boot_first(c, guid, &fw) < 0)
        goto cleanup;
    if (hv_write_payload(c, guid, s, true) < 0)
        goto cleanup;
    if (set_system(c, guid, &obs->marker, s->image ? &fw : NULL) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    if (ret < 0) {
        nx_error_prefix("%s: ", s->name);
        /* what was created stays, marked with an empty digest: the next run
         * completes it (missing vNICs, payload) instead of duplicating it */
        nx_obs_free(*out);
        *out = NULL;
    }
    nx_wsman_instance_free(o);
    nx_marker_release(&m);
    hv_dvd_release(&dvd);
    hv_firmware_release(&fw);
    free(notes);
    free(root);
    free(inst);
    free(ctrl);
    free(guid);
    return ret;
}

static int hv_update_vnics(struct nx_conn *base, const struct nx_appliance_obs *o,
                           const struct nx_appliance_spec *s, const struct nx_vnic_spec *const *add,
                           size_t n_add, const struct nx_vnic_obs *const *rem, size_t n_rem)
{
    struct hv_conn *c = base->priv;
    if (hv_load_switches(c) < 0 || hv_remove_vnics(c, rem, n_rem) < 0)
        goto fail;
    for (size_t i = 0; i < n_add; i++)
        if (hv_add_vnic(c, o->id, add[i]) < 0)
            goto fail;
    return 0;
fail:
    nx_error_prefix("%s: ", s ? s->name : o->name);
    return -1;
}

static int hv_set_payload(struct nx_conn *base, const struct nx_appliance_obs *o,
                          const struct nx_appliance_spec *s)
{
    struct hv_conn *c = base->priv;
    struct nx_marker m = {0};
    int rc = hv_write_payload(c, o->id, s, false);
    if (rc == 0) {
        nx_marker_from_spec(&m, s);
        rc = set_system(c, o->id, &m, NULL);
    }
    nx_marker_release(&m);
    if (rc < 0)
        nx_error_prefix("%s: ", s->name);
    return rc;
}

static int request_state(struct hv_conn *c, const char *guid, const char *name, unsigned state)
{
    struct nx_wsman_epr *vm = hv_vm_epr(guid);
    struct nx_wsman_instance *o = NULL;
    char st[8];
    snprintf(st, sizeof(st), "%u", state);
    struct nx_wsman_param p[] = {{"RequestedState", NX_WSMAN_STRING, st, NULL}};
    int rc = hv_invoke(c, vm, "RequestStateChange", p, 1, &o);
    if (rc == 0 && nx_wsman_return_value(o, "RequestStateChange") == 32775) {
        /* invalid state for this operation: fine if it is already there */
        struct nx_wsman_instance *cur = NULL;
        unsigned long es = 0;
        rc = hv_get(c, vm, &cur);
        if (rc == 0 &&
            !(nx_parse_uint(nx_wsman_prop(cur, "EnabledState"), 0, 65535, &es) && es == state))
            rc = nx_error_set(NX_EX_UNAVAILABLE,
                              "RequestStateChange(%u) failed: invalid state for this operation "
                              "(EnabledState %lu)",
                              state, es);
        nx_wsman_instance_free(cur);
    } else if (rc == 0) {
        rc = hv_wait_result(c, "RequestStateChange", o);
    }
    if (rc < 0)
        nx_error_prefix("%s: powering %s: ", name, state == 2 ? "on" : "off");
    nx_wsman_instance_free(o);
    nx_wsman_epr_free(vm);
    return rc;
}

static int hv_set_power(struct nx_conn *base, const struct nx_appliance_obs *o, bool on)
{
    return request_state(base->priv, o->id, o->name, on ? 2 : 3);
}

static int hv_remove(struct nx_conn *base, const struct nx_appliance_obs *o)
{
    struct hv_conn *c = base->priv;
    if (o->powered_on && request_state(c, o->id, o->name, 3) < 0)
        return -1;
    struct nx_wsman_epr *vm = hv_vm_epr(o->id);
    struct nx_wsman_param p[] = {{"AffectedSystem", NX_WSMAN_REF, NULL, vm}};
    int rc = hv_call(c, c->vsms, "DestroySystem", p, 1, NULL);
    nx_wsman_epr_free(vm);
    if (rc < 0)
        nx_error_prefix("%s: ", o->name);
    return rc;
}

const struct nx_provider_ops nx_hyperv_provider = {
    .name = "hyperv",
    .probe = hv_probe,
    .mac_range = &nx_mac_range_local,
    .max_vnics = 8, /* synthetic adapters on Windows Server 2016 (64 on 2019+) */
    .open = hv_open,
    .close = hv_close,
    .check_placement = hv_check_placement,
    .list_owned = hv_list_owned,
    .network_usage = hv_network_usage,
    .create = hv_create,
    .update_vnics = hv_update_vnics,
    .set_payload = hv_set_payload,
    .set_power = hv_set_power,
    .set_image = hv_set_image,
    .remove = hv_remove,
};
