/* hyperv_provider.c: network extension appliances as Hyper-V virtual machines,
 * through WMI (root/virtualization/v2) over WinRM (WS-Management).
 *
 * - Create: Msvm_VirtualSystemManagementService.DefineSystem with an embedded
 *   Msvm_VirtualSystemSettingData (ElementName = appliance name, generation 2,
 *   every data root in <VM root>\<folder>\<tenant>, folder default
 *   Cloud_Connect_Replication, the marker in Notes with an empty digest).
 * - vNICs: AddResourceSettings of a Msvm_SyntheticEthernetPortSettingData
 *   (static MAC), then of a Msvm_EthernetPortAllocationSettingData connecting
 *   it to the Msvm_VirtualEthernetSwitch named by the vNIC's network, then
 *   AddFeatureSettings of a Msvm_EthernetSwitchPortVlanSettingData (access
 *   mode, AccessVlanId) which is read back: a VLAN that did not apply fails.
 *   Removal: RemoveResourceSettings of the synthetic port.
 * - Payload: host-to-guest KVP items (AddKvpItems / ModifyKvpItems /
 *   RemoveKvpItems), see hv_kvp_items_build; then the marker's digest is set
 *   with ModifySystemSettings, last, so an interrupted run converges.
 * - Power: Msvm_ComputerSystem.RequestStateChange(2 on, 3 off); remove = off
 *   then DestroySystem.
 * - Jobs: ReturnValue 4096 -> poll Msvm_ConcreteJob until 7 (completed) or
 *   8/9/10 (error text from ErrorDescription).
 * - Appliance image: the SP copies the ISO to <image-store>\<image name> on
 *   the host (WS-Man has no file transfer: no stage_image). Create defines
 *   the VM with a SCSI controller (DefineSystem ResourceSettings), then adds
 *   a Synthetic DVD Drive (Msvm_ResourceAllocationSettingData 16, Parent the
 *   controller, AddressOnParent 0) and its Virtual CD/DVD Disk
 *   (Msvm_StorageAllocationSettingData 31, Parent the drive, HostResource the
 *   ISO): two AddResourceSettings, each Parent being known from the previous
 *   answer. The last ModifySystemSettings puts the drive's boot entry first
 *   in BootSourceOrder and sets Secure Boot with the Microsoft UEFI CA
 *   template (the image boots through shim). set-image points the disk's
 *   HostResource at the new ISO (ModifyResourceSettings), adding what is
 *   missing. Discovery reads the CD/DVD disks: a marker's image id counts
 *   only when a disk of the VM holds netext-appliance-<id>.iso. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "http.h"
#include "hyperv.h"
#include "log.h"
#include "provider.h"
#include "strbuf.h"
#include "util.h"
#include "wsman.h"

#define JOB_TIMEOUT_S 600
#define VSSD_REALIZED "Microsoft:Hyper-V:System:Realized"

struct hv_switch {
    char *name; /* ElementName */
    char *guid; /* Name */
    struct nx_wsman_epr *epr;
};

struct hv_conn {
    struct nx_conn base;
    struct hv_endpoint ep;
    struct nx_http *http;
    struct nx_wsman *ws;
    struct nx_wsman_epr *vsms; /* the management service */
    char *host; /* its SystemName: the host's name in WMI paths */
    char *vm_root; /* DefaultExternalDataRoot */
    struct hv_switch *sw;
    size_t n_sw, alloc_sw;
    bool have_switches;
};

static char *uri_of(const char *cls)
{
    return nx_wsman_wmi_uri(HV_NS, cls);
}

/* A WQL string literal's content: backslash and quote escaped. */
static void wql_quote(struct strbuf *sb, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '\'')
            strbuf_addch(sb, '\\');
        strbuf_addch(sb, *s);
    }
}

/* SELECT * FROM cls WHERE prop op 'value' (value quoted; suffix appended raw,
 * e.g. "%" after a LIKE prefix). */
static char *wql(const char *cls, const char *prop, const char *op, const char *value,
                 const char *suffix)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "SELECT * FROM %s WHERE %s %s '", cls, prop, op);
    wql_quote(&sb, value);
    strbuf_addf(&sb, "%s'", suffix ? suffix : "");
    return strbuf_detach(&sb, NULL);
}

static void count(struct hv_conn *c)
{
    c->base.n_requests = nx_http_requests(c->http);
}

static bool hv_probe(const char *uri)
{
    return uri &&
           (nx_str_has_prefix(uri, "hyperv://") || nx_str_has_prefix(uri, "hyperv+http://") ||
            nx_str_has_prefix(uri, "hyperv+https://"));
}

static void hv_close(struct nx_conn *base)
{
    struct hv_conn *c = (struct hv_conn *)base;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_sw; i++) {
        free(c->sw[i].name);
        free(c->sw[i].guid);
        nx_wsman_epr_free(c->sw[i].epr);
    }
    free(c->sw);
    nx_wsman_epr_free(c->vsms);
    nx_wsman_free(c->ws);
    nx_http_free(c->http);
    hv_endpoint_release(&c->ep);
    free(c->host);
    free(c->vm_root);
    free(c->base.uri);
    free(c);
}

/* Enumerate a class (optionally filtered); the list is appended to. */
static int enum_class(struct hv_conn *c, const char *cls, const char *wql, struct nx_wsman_list *l)
{
    char *uri = uri_of(cls);
    int rc = nx_wsman_enumerate(c->ws, uri, wql, l);
    free(uri);
    count(c);
    return rc;
}

static int hv_open(const char *uri, const struct nx_conn_opts *opts, struct nx_conn **out)
{
    struct hv_conn *c = nx_calloc(1, sizeof(*c));
    struct nx_wsman_list l = {0};
    *out = NULL;
    if (hv_parse_uri(uri, &c->ep) < 0)
        goto fail;
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
    c->base.uri = nx_strdup(uri);

    /* the management service: proves the credentials and names the host */
    if (enum_class(c, "Msvm_VirtualSystemManagementService", NULL, &l) < 0)
        goto fail;
    if (l.n != 1 || !l.items[0]->epr || !nx_wsman_prop(l.items[0], "SystemName")) {
        nx_error_set(NX_EX_PROTOCOL,
                     "%s: expected one Msvm_VirtualSystemManagementService with its EPR, got %zu",
                     uri, l.n);
        goto fail;
    }
    c->vsms = nx_wsman_epr_dup(l.items[0]->epr);
    c->host = nx_strdup(nx_wsman_prop(l.items[0], "SystemName"));
    nx_wsman_list_release(&l);
    if (enum_class(c, "Msvm_VirtualSystemManagementServiceSettingData", NULL, &l) < 0)
        goto fail;
    const char *root = l.n ? nx_wsman_prop(l.items[0], "DefaultExternalDataRoot") : NULL;
    if (!root || !root[0]) {
        nx_error_set(NX_EX_PROTOCOL, "%s: the host reports no DefaultExternalDataRoot", uri);
        goto fail;
    }
    c->vm_root = nx_strdup(root);
    nx_wsman_list_release(&l);
    *out = &c->base;
    return 0;
fail:
    nx_error_prefix("%s: ", uri);
    nx_wsman_list_release(&l);
    hv_close(&c->base);
    return -1;
}

/* ---- inventory ------------------------------------------------------------ */

static int load_switches(struct hv_conn *c)
{
    struct nx_wsman_list l = {0};
    if (c->have_switches)
        return 0;
    if (enum_class(c, "Msvm_VirtualEthernetSwitch", NULL, &l) < 0)
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

static const struct hv_switch *switch_named(struct hv_conn *c, const char *name)
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

static const struct hv_switch *switch_by_guid(struct hv_conn *c, const char *guid)
{
    for (size_t i = 0; i < c->n_sw; i++)
        if (guid && strcasecmp(c->sw[i].guid, guid) == 0)
            return &c->sw[i];
    return NULL;
}

static int hv_check_placement(struct nx_conn *base, const struct nx_appliance_spec *s)
{
    struct hv_conn *c = (struct hv_conn *)base;
    if (load_switches(c) < 0)
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
                                v->network, c->base.uri, c->host);
        if (n > 1)
            return nx_error_set(NX_EX_DATAERR,
                                "%zu Hyper-V virtual switches are named '%s' on %s: rename one", n,
                                v->network, c->base.uri);
    }
    if (s->placement.resource_pool)
        nx_debug("%s: Hyper-V has no resource pools; '%s' is ignored", c->base.uri,
                 s->placement.resource_pool);
    return 0;
}

/* ---- jobs ----------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Check a method's ReturnValue; wait for its job when it is 4096. */
static int wait_result(struct hv_conn *c, const char *what, const struct nx_wsman_instance *o)
{
    long rv = nx_wsman_return_value(o, what);
    if (rv < 0)
        return -1;
    if (rv == 0)
        return 0;
    if (rv != 4096)
        return nx_error_set(NX_EX_UNAVAILABLE, "%s failed: return value %ld (%s)", what, rv,
                            hv_return_text(rv));
    const struct nx_wsman_epr *job = nx_wsman_prop_epr(o, "Job");
    if (!job)
        return nx_error_set(NX_EX_PROTOCOL, "%s: job started (4096) but no Job reference", what);
    time_t deadline = time(NULL) + JOB_TIMEOUT_S;
    long delay = 20;
    for (;;) {
        struct nx_wsman_instance *j = NULL;
        int rc = nx_wsman_get(c->ws, job, &j);
        count(c);
        if (rc < 0) {
            nx_error_prefix("%s: polling its job: ", what);
            return -1;
        }
        unsigned long st = 0;
        const char *s = nx_wsman_prop(j, "JobState");
        if (!s || !nx_parse_uint(s, 0, 65535, &st)) {
            nx_wsman_instance_free(j);
            return nx_error_set(NX_EX_PROTOCOL, "%s: its job has no valid JobState", what);
        }
        if (st == 7) {
            nx_wsman_instance_free(j);
            return 0;
        }
        if (st >= 8 && st <= 10) {
            const char *desc = nx_wsman_prop(j, "ErrorDescription");
            const char *code = nx_wsman_prop(j, "ErrorCode");
            nx_error_set(NX_EX_UNAVAILABLE, "%s failed: job %s (error %s): %s", what,
                         st == 8   ? "terminated"
                         : st == 9 ? "killed"
                                   : "ended in exception",
                         code ? code : "?", desc && desc[0] ? desc : "(no description)");
            nx_wsman_instance_free(j);
            return -1;
        }
        nx_wsman_instance_free(j);
        if (time(NULL) > deadline)
            return nx_error_set(NX_EX_TEMPFAIL, "%s: its job did not end within %d s", what,
                                JOB_TIMEOUT_S);
        sleep_ms(delay);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

/* Invoke and wait; *out (may be NULL) receives the method output. */
static int call(struct hv_conn *c, const struct nx_wsman_epr *target, const char *method,
                const struct nx_wsman_param *p, size_t n, struct nx_wsman_instance **out)
{
    struct nx_wsman_instance *o = NULL;
    int rc = nx_wsman_invoke(c->ws, target, method, p, n, &o);
    count(c);
    if (rc == 0)
        rc = wait_result(c, method, o);
    if (rc == 0 && out)
        *out = o;
    else
        nx_wsman_instance_free(o);
    return rc;
}

/* ---- EPRs ----------------------------------------------------------------- */

static struct nx_wsman_epr *vm_epr(const char *guid)
{
    char *u = uri_of("Msvm_ComputerSystem");
    struct nx_wsman_epr *e = nx_wsman_epr_new(u);
    free(u);
    nx_wsman_epr_add(e, "CreationClassName", "Msvm_ComputerSystem");
    nx_wsman_epr_add(e, "Name", guid);
    return e;
}

static struct nx_wsman_epr *iid_epr(const char *cls, const char *iid)
{
    char *u = uri_of(cls);
    struct nx_wsman_epr *e = nx_wsman_epr_new(u);
    free(u);
    nx_wsman_epr_add(e, "InstanceID", iid);
    return e;
}

static struct nx_wsman_epr *vssd_epr(const char *guid)
{
    char *iid = nx_asprintf("Microsoft:%s", guid);
    struct nx_wsman_epr *e = iid_epr("Msvm_VirtualSystemSettingData", iid);
    free(iid);
    return e;
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

static bool starts_with_ci(const char *s, const char *prefix)
{
    return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Fill o->vnics from the inventory lists (ports of VM guid). */
static void collect_vnics(struct hv_conn *c, struct hv_inv *v, const char *guid,
                          struct nx_appliance_obs *o)
{
    char *prefix = nx_asprintf("Microsoft:%s\\", guid);
    for (size_t i = 0; i < v->ports.n; i++) {
        const struct nx_wsman_instance *p = v->ports.items[i];
        const char *iid = nx_wsman_prop(p, "InstanceID");
        if (!starts_with_ci(iid, prefix))
            continue;
        struct nx_vnic_obs *vn = nx_obs_add_vnic(o);
        vn->id = nx_strdup(iid);
        hv_parse_mac(nx_wsman_prop(p, "Address"), vn->mac);
        /* its connection: Parent names the port */
        for (size_t k = 0; k < v->allocs.n; k++) {
            const struct nx_wsman_instance *a = v->allocs.items[k];
            char *pid = hv_wmi_path_key(nx_wsman_prop(a, "Parent"), "InstanceID");
            bool mine = pid && strcasecmp(pid, iid) == 0;
            free(pid);
            if (!mine)
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
                unsigned long id = 0, mode = 0;
                if (!starts_with_ci(nx_wsman_prop(vl, "InstanceID"), aprefix))
                    continue;
                if (nx_parse_uint(nx_wsman_prop(vl, "OperationMode"), 0, 65535, &mode) &&
                    mode == 1 && nx_parse_uint(nx_wsman_prop(vl, "AccessVlanId"), 1, 4094, &id))
                    vn->vlan = (unsigned)id;
            }
            free(aprefix);
        }
    }
    free(prefix);
}

static int load_inventory(struct hv_conn *c, struct hv_inv *v, const char *guid)
{
    char *q = NULL;
    if (load_switches(c) < 0)
        return -1;
    if (guid)
        q = wql("Msvm_VirtualSystemSettingData", "VirtualSystemIdentifier", "=", guid, NULL);
    int rc = enum_class(c, "Msvm_VirtualSystemSettingData",
                        q ? q
                          : "SELECT * FROM Msvm_VirtualSystemSettingData WHERE VirtualSystemType "
                            "= '" VSSD_REALIZED "'",
                        &v->vssd);
    free(q);
    if (rc < 0 || enum_class(c, "Msvm_ComputerSystem", NULL, &v->vms) < 0 ||
        enum_class(c, "Msvm_SyntheticEthernetPortSettingData", NULL, &v->ports) < 0 ||
        enum_class(c, "Msvm_EthernetPortAllocationSettingData", NULL, &v->allocs) < 0 ||
        enum_class(c, "Msvm_EthernetSwitchPortVlanSettingData", NULL, &v->vlans) < 0)
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
        if (!starts_with_ci(nx_wsman_prop(d, "InstanceID"), prefix))
            continue;
        for (size_t k = 0; k < d->n && !found; k++)
            found = !strcmp(d->props[k].name, "HostResource") &&
                    hv_path_has_name(d->props[k].value, name);
    }
    free(prefix);
    free(name);
    return found;
}

static int hv_list_owned(struct nx_conn *base, struct nx_obs_list *out)
{
    struct hv_conn *c = (struct hv_conn *)base;
    struct hv_inv v = {0};
    struct nx_wsman_list disks = {0};
    int ret = -1;
    if (load_inventory(c, &v, NULL) < 0 ||
        enum_class(c, "Msvm_StorageAllocationSettingData",
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
        bool marked = false;
        for (size_t k = 0; k < s->n && !marked; k++)
            if (strcmp(s->props[k].name, "Notes") == 0 && s->props[k].value &&
                nx_marker_decode(s->props[k].value, &m) == 0)
                marked = true;
        if (!marked)
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

/* Virtual switches used by VMs that are not appliances (a VM counts once per
 * switch). A WinRM endpoint is one host, so `host` is not needed to filter. */
static int hv_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                            size_t *n_out)
{
    struct hv_conn *c = (struct hv_conn *)base;
    struct hv_inv v = {0};
    struct nx_net_usage *u = NULL;
    size_t nu = 0, alloc = 0;
    (void)host;
    *out = NULL;
    *n_out = 0;
    if (load_inventory(c, &v, NULL) < 0) {
        inv_release(&v);
        return -1;
    }
    for (size_t i = 0; i < v.vms.n; i++) {
        const char *guid = nx_wsman_prop(v.vms.items[i], "Name");
        if (!guid || nx_str_eq(guid, c->host))
            continue;
        bool appliance = false;
        for (size_t k = 0; k < v.vssd.n && !appliance; k++) {
            const struct nx_wsman_instance *s = v.vssd.items[k];
            if (!nx_str_eq(nx_wsman_prop(s, "VirtualSystemIdentifier"), guid))
                continue;
            for (size_t p = 0; p < s->n && !appliance; p++) {
                struct nx_marker m = {0};
                if (strcmp(s->props[p].name, "Notes") == 0 && s->props[p].value &&
                    nx_marker_decode(s->props[p].value, &m) == 0) {
                    appliance = true;
                    nx_marker_release(&m);
                }
            }
        }
        if (appliance)
            continue;
        struct nx_appliance_obs tmp = {0};
        collect_vnics(c, &v, guid, &tmp);
        for (size_t k = 0; k < tmp.n_vnics; k++) {
            const char *net = tmp.vnics[k].network;
            bool seen = false;
            for (size_t j = 0; j < k && !seen; j++)
                seen = nx_str_eq(tmp.vnics[j].network, net);
            if (!net || seen)
                continue;
            size_t j = 0;
            while (j < nu && strcmp(u[j].network, net) != 0)
                j++;
            if (j == nu) {
                NX_GROW(u, alloc, nu + 1);
                u[nu].network = nx_strdup(net);
                u[nu++].vms = 0;
            }
            u[j].vms++;
        }
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

/* ---- changes -------------------------------------------------------------- */

/* Firmware settings of an appliance that boots the image (generation 2):
 * its CD/DVD drive first in BootSourceOrder, Secure Boot with the Microsoft
 * UEFI Certificate Authority template (the image boots through shim). */
struct hv_firmware {
    char **boot; /* BootSourceOrder: WMI paths of Msvm_BootSourceSettingData */
    size_t n_boot;
};

static void firmware_release(struct hv_firmware *f)
{
    for (size_t i = 0; f && i < f->n_boot; i++)
        free(f->boot[i]);
    if (f)
        NX_FREE(f->boot);
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
    int rc = call(c, c->vsms, "ModifySystemSettings", p, 1, NULL);
    free(inst);
    free(iid);
    free(notes);
    return rc;
}

/* Add one resource setting; *iid receives the InstanceID of the result. */
static int add_resource(struct hv_conn *c, const struct nx_wsman_epr *vssd, const char *cls,
                        const struct nx_cim_prop *props, size_t n, char **iid)
{
    char *inst = nx_cim_instance_xml(cls, props, n);
    struct nx_wsman_param p[] = {
        {"AffectedConfiguration", NX_WSMAN_REF, NULL, vssd},
        {"ResourceSettings", NX_WSMAN_EMBEDDED, inst, NULL},
    };
    struct nx_wsman_instance *o = NULL;
    int rc = call(c, c->vsms, "AddResourceSettings", p, 2, &o);
    free(inst);
    *iid = NULL;
    if (rc == 0) {
        const struct nx_wsman_epr *r = nx_wsman_prop_epr(o, "ResultingResourceSettings");
        const char *v = r ? nx_wsman_epr_selector(r, "InstanceID") : NULL;
        /* absent when only the job knows the result: the caller looks it up */
        if (v)
            *iid = nx_strdup(v);
    }
    nx_wsman_instance_free(o);
    return rc;
}

/* The VLAN setting below the port pid, read back from the host with the
 * rule discovery uses (collect_vnics). */
static int read_vlan(struct hv_conn *c, const char *guid, const char *pid, unsigned *vlan)
{
    struct nx_wsman_list l = {0};
    char *like = nx_asprintf("Microsoft:%s", guid);
    char *q = wql("Msvm_EthernetSwitchPortVlanSettingData", "InstanceID", "LIKE", like, "%");
    free(like);
    char *prefix = nx_asprintf("%s\\", pid);
    int rc = enum_class(c, "Msvm_EthernetSwitchPortVlanSettingData", q, &l);
    *vlan = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        unsigned long id = 0, mode = 0;
        if (starts_with_ci(nx_wsman_prop(l.items[i], "InstanceID"), prefix) &&
            nx_parse_uint(nx_wsman_prop(l.items[i], "OperationMode"), 0, 65535, &mode) &&
            mode == 1 && nx_parse_uint(nx_wsman_prop(l.items[i], "AccessVlanId"), 1, 4094, &id))
            *vlan = (unsigned)id;
    }
    nx_wsman_list_release(&l);
    free(q);
    free(prefix);
    return rc;
}

/* The InstanceID of the resource setting of cls under VM guid whose prop
 * equals want (for a path-valued prop, whose path's InstanceID does). For
 * hosts that give the result of AddResourceSettings only through its job. */
static int find_setting(struct hv_conn *c, const char *guid, const char *cls, const char *prop,
                        bool path, const char *want, char **iid)
{
    struct nx_wsman_list l = {0};
    char *like = nx_asprintf("Microsoft:%s", guid);
    char *q = wql(cls, "InstanceID", "LIKE", like, "%");
    int rc = enum_class(c, cls, q, &l);
    *iid = NULL;
    for (size_t i = 0; rc == 0 && i < l.n && !*iid; i++) {
        const char *v = nx_wsman_prop(l.items[i], prop);
        char *key = path ? hv_wmi_path_key(v, "InstanceID") : NULL;
        if (v && strcasecmp(path ? (key ? key : "") : v, want) == 0)
            *iid = nx_strdup(nx_wsman_prop(l.items[i], "InstanceID"));
        free(key);
    }
    if (rc == 0 && !*iid)
        rc = nx_error_set(NX_EX_PROTOCOL,
                          "AddResourceSettings (%s) succeeded but neither its answer nor the host "
                          "shows the new setting",
                          cls);
    nx_wsman_list_release(&l);
    free(q);
    free(like);
    return rc;
}

static int add_vnic(struct hv_conn *c, const char *guid, const struct nx_vnic_spec *v)
{
    struct nx_wsman_epr *vssd = vssd_epr(guid);
    char *port_iid = NULL, *alloc_iid = NULL, *port_path = NULL, *sw_path = NULL;
    char *vlan_inst = NULL;
    char mac[13], vid[16], devid[48];
    int ret = -1;
    hv_format_mac(v->mac, mac);
    const struct hv_switch *sw = switch_named(c, v->network);
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
    if (add_resource(c, vssd, "Msvm_SyntheticEthernetPortSettingData", port, NX_ARRAY_SIZE(port),
                     &port_iid) < 0 ||
        (!port_iid && find_setting(c, guid, "Msvm_SyntheticEthernetPortSettingData", "Address",
                                   false, mac, &port_iid) < 0))
        goto cleanup;
    struct nx_wsman_epr *pe = iid_epr("Msvm_SyntheticEthernetPortSettingData", port_iid);
    port_path = hv_wmi_path(c->host, pe);
    nx_wsman_epr_free(pe);
    sw_path = hv_wmi_path(c->host, sw->epr);
    const char *hr[] = {sw_path};
    struct nx_cim_prop conn[] = {
        {.name = "ResourceType", .type = "uint16", .value = "33"},
        {.name = "ResourceSubType", .value = "Microsoft:Hyper-V:Ethernet Connection"},
        {.name = "Parent", .value = port_path},
        {.name = "HostResource", .array = hr, .n_array = 1},
        {.name = "EnabledState", .type = "uint16", .value = "2"},
    };
    if (add_resource(c, vssd, "Msvm_EthernetPortAllocationSettingData", conn, NX_ARRAY_SIZE(conn),
                     &alloc_iid) < 0 ||
        (!alloc_iid && find_setting(c, guid, "Msvm_EthernetPortAllocationSettingData", "Parent",
                                    true, port_iid, &alloc_iid) < 0))
        goto cleanup;
    if (v->vlan) {
        snprintf(vid, sizeof(vid), "%u", v->vlan);
        struct nx_cim_prop vl[] = {
            {.name = "OperationMode", .type = "uint32", .value = "1"},
            {.name = "AccessVlanId", .type = "uint16", .value = vid},
        };
        vlan_inst = nx_cim_instance_xml("Msvm_EthernetSwitchPortVlanSettingData", vl, 2);
        struct nx_wsman_epr *ae = iid_epr("Msvm_EthernetPortAllocationSettingData", alloc_iid);
        struct nx_wsman_param p[] = {
            {"AffectedConfiguration", NX_WSMAN_REF, NULL, ae},
            {"FeatureSettings", NX_WSMAN_EMBEDDED, vlan_inst, NULL},
        };
        int rc = call(c, c->vsms, "AddFeatureSettings", p, 2, NULL);
        nx_wsman_epr_free(ae);
        if (rc < 0)
            goto cleanup;
        unsigned got = 0;
        if (read_vlan(c, guid, port_iid, &got) < 0)
            goto cleanup;
        if (got != v->vlan) {
            nx_error_set(NX_EX_UNAVAILABLE,
                         "vNIC %s on switch '%s': VLAN %u did not apply (read back: %s%.0u); "
                         "the host accepted the setting but does not show it",
                         mac, v->network, v->vlan, got ? "VLAN " : "none", got);
            goto cleanup;
        }
    }
    ret = 0;
cleanup:
    nx_wsman_epr_free(vssd);
    free(port_iid);
    free(alloc_iid);
    free(port_path);
    free(sw_path);
    free(vlan_inst);
    return ret;
}

static int remove_vnics(struct hv_conn *c, const struct nx_vnic_obs *const *rem, size_t n)
{
    if (!n)
        return 0;
    struct nx_wsman_epr **e = nx_calloc(n, sizeof(*e));
    struct nx_wsman_param *p = nx_calloc(n, sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        e[i] = iid_epr("Msvm_SyntheticEthernetPortSettingData", rem[i]->id);
        p[i] = (struct nx_wsman_param){"ResourceSettings", NX_WSMAN_REF, NULL, e[i]};
    }
    int rc = call(c, c->vsms, "RemoveResourceSettings", p, n, NULL);
    for (size_t i = 0; i < n; i++)
        nx_wsman_epr_free(e[i]);
    free(e);
    free(p);
    return rc;
}

/* Names of KVP items of ours already in the VM's host-to-guest pool. */
static int kvp_existing(struct hv_conn *c, const char *guid, char ***names, size_t *n)
{
    struct nx_wsman_list l = {0};
    char *like = nx_asprintf("Microsoft:%s", guid);
    char *q = wql("Msvm_KvpExchangeComponentSettingData", "InstanceID", "LIKE", like, "%");
    free(like);
    size_t alloc = 0;
    *names = NULL;
    *n = 0;
    int rc = enum_class(c, "Msvm_KvpExchangeComponentSettingData", q, &l);
    free(q);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const struct nx_wsman_instance *s = l.items[i];
        for (size_t k = 0; k < s->n; k++) {
            struct nx_wsman_instance *item = NULL;
            if (strcmp(s->props[k].name, "HostExchangeItems") != 0 || !s->props[k].value)
                continue;
            if (nx_cim_instance_parse(s->props[k].value, &item) < 0) {
                rc = -1;
                nx_error_prefix("HostExchangeItems of %s: ", guid);
                break;
            }
            const char *nm = nx_wsman_prop(item, "Name");
            if (nm && nx_str_has_prefix(nm, HV_KVP_PREFIX)) {
                NX_GROW(*names, alloc, *n + 1);
                (*names)[(*n)++] = nx_strdup(nm);
            }
            nx_wsman_instance_free(item);
        }
    }
    nx_wsman_list_release(&l);
    return rc;
}

static int kvp_call(struct hv_conn *c, const char *guid, const char *method, char **names,
                    char **values, size_t n)
{
    if (!n)
        return 0;
    struct nx_wsman_epr *vm = vm_epr(guid);
    struct nx_wsman_param *p = nx_calloc(n + 1, sizeof(*p));
    char **docs = nx_calloc(n, sizeof(*docs));
    p[0] = (struct nx_wsman_param){"TargetSystem", NX_WSMAN_REF, NULL, vm};
    for (size_t i = 0; i < n; i++) {
        struct nx_cim_prop props[] = {
            {.name = "Name", .value = names[i]},
            {.name = "Data", .value = values ? values[i] : ""},
            {.name = "Source", .type = "uint16", .value = "0"},
        };
        docs[i] = nx_cim_instance_xml("Msvm_KvpExchangeDataItem", props, 3);
        p[i + 1] = (struct nx_wsman_param){"DataItems", NX_WSMAN_EMBEDDED, docs[i], NULL};
    }
    int rc = call(c, c->vsms, method, p, n + 1, NULL);
    for (size_t i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
    free(p);
    nx_wsman_epr_free(vm);
    return rc;
}

/* Write the payload items: modify those present, add the new, remove the rest. */
static int write_payload(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                         bool fresh)
{
    struct hv_kvp_items k;
    char **have = NULL;
    size_t n_have = 0;
    int ret = -1;
    hv_kvp_items_build(s->payload ? s->payload : "", s->payload_len, s->digest, &k);
    if (!fresh && kvp_existing(c, guid, &have, &n_have) < 0)
        goto cleanup;
    char **mn = nx_calloc(k.n + 1, sizeof(char *)), **mv = nx_calloc(k.n + 1, sizeof(char *));
    char **an = nx_calloc(k.n + 1, sizeof(char *)), **av = nx_calloc(k.n + 1, sizeof(char *));
    char **rn = nx_calloc(n_have + 1, sizeof(char *));
    size_t nm = 0, na = 0, nr = 0;
    for (size_t i = 0; i < k.n; i++) {
        bool present = false;
        for (size_t j = 0; j < n_have && !present; j++)
            present = strcmp(have[j], k.names[i]) == 0;
        if (present) {
            mn[nm] = k.names[i];
            mv[nm++] = k.values[i];
        } else {
            an[na] = k.names[i];
            av[na++] = k.values[i];
        }
    }
    for (size_t j = 0; j < n_have; j++) {
        bool wanted = false;
        for (size_t i = 0; i < k.n && !wanted; i++)
            wanted = strcmp(have[j], k.names[i]) == 0;
        if (!wanted)
            rn[nr++] = have[j];
    }
    /* the count item comes first in k: modified first, so a guest reading
     * while we write sees a count that does not match the digest */
    if (kvp_call(c, guid, "ModifyKvpItems", mn, mv, nm) == 0 &&
        kvp_call(c, guid, "AddKvpItems", an, av, na) == 0 &&
        kvp_call(c, guid, "RemoveKvpItems", rn, NULL, nr) == 0)
        ret = 0;
    free(mn);
    free(mv);
    free(an);
    free(av);
    free(rn);
cleanup:
    for (size_t j = 0; j < n_have; j++)
        free(have[j]);
    free(have);
    hv_kvp_items_release(&k);
    if (ret < 0)
        nx_error_prefix("payload of %s: ", s->name);
    return ret;
}

/* The VM DefineSystem just made, when only its job knows it: the one named
 * name whose Notes are exactly notes (our marker, unique per appliance). */
static int find_defined(struct hv_conn *c, const char *name, const char *notes, char **guid)
{
    struct nx_wsman_list l = {0};
    char *q = wql("Msvm_VirtualSystemSettingData", "ElementName", "=", name, NULL);
    int rc = enum_class(c, "Msvm_VirtualSystemSettingData", q, &l);
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

/* ---- the appliance image ---------------------------------------------------- */

/* The VM's DVD drive holding the image, as far as it exists. */
struct hv_dvd {
    char *ctrl; /* InstanceID of the SCSI (or IDE) controller it is on */
    char *drive; /* InstanceID of the DVD drive (Msvm_ResourceAllocationSettingData) */
    char *disk; /* InstanceID of its disk (Msvm_StorageAllocationSettingData) */
    char *path; /* the disk's HostResource */
};

static void dvd_release(struct hv_dvd *d)
{
    free(d->ctrl);
    free(d->drive);
    free(d->disk);
    free(d->path);
    memset(d, 0, sizeof(*d));
}

/* The settings of class cls of VM guid (InstanceID "Microsoft:<guid>\..."). */
static int enum_vm_settings(struct hv_conn *c, const char *guid, const char *cls,
                            struct nx_wsman_list *l)
{
    char *like = nx_asprintf("Microsoft:%s\\", guid);
    char *q = wql(cls, "InstanceID", "LIKE", like, "%");
    int rc = enum_class(c, cls, q, l);
    free(q);
    free(like);
    return rc;
}

static bool path_names(const char *path, const char *iid)
{
    char *k = hv_wmi_path_key(path, "InstanceID");
    bool r = k && iid && strcasecmp(k, iid) == 0;
    free(k);
    return r;
}

/* Find the VM's controller, DVD drive and disk. A drive is ours when it is
 * at AddressOnParent 0 of a controller; with disks, its disk is the CD/DVD
 * disk whose Parent is that drive. */
static int find_dvd(struct hv_conn *c, const char *guid, bool disks, struct hv_dvd *d)
{
    struct nx_wsman_list r = {0}, s = {0};
    int rc = enum_vm_settings(c, guid, "Msvm_ResourceAllocationSettingData", &r);
    if (rc == 0 && disks)
        rc = enum_vm_settings(c, guid, "Msvm_StorageAllocationSettingData", &s);
    memset(d, 0, sizeof(*d));
    /* a SCSI controller first; an IDE one (generation 1) otherwise */
    for (int pass = 0; rc == 0 && pass < 2 && !d->ctrl; pass++)
        for (size_t i = 0; i < r.n && !d->ctrl; i++)
            if (nx_str_eq(nx_wsman_prop(r.items[i], "ResourceSubType"),
                          pass ? HV_SUBTYPE_IDE : HV_SUBTYPE_SCSI))
                d->ctrl = nx_strdup(nx_wsman_prop(r.items[i], "InstanceID"));
    for (size_t i = 0; rc == 0 && d->ctrl && i < r.n && !d->drive; i++) {
        const struct nx_wsman_instance *x = r.items[i];
        const char *addr = nx_wsman_prop(x, "AddressOnParent");
        if (nx_str_eq(nx_wsman_prop(x, "ResourceSubType"), HV_SUBTYPE_DVD_DRIVE) &&
            path_names(nx_wsman_prop(x, "Parent"), d->ctrl) && (!addr || !strcmp(addr, "0")))
            d->drive = nx_strdup(nx_wsman_prop(x, "InstanceID"));
    }
    for (size_t i = 0; rc == 0 && d->drive && i < s.n && !d->disk; i++) {
        const struct nx_wsman_instance *x = s.items[i];
        if (nx_str_eq(nx_wsman_prop(x, "ResourceSubType"), HV_SUBTYPE_DVD_DISK) &&
            path_names(nx_wsman_prop(x, "Parent"), d->drive)) {
            d->disk = nx_strdup(nx_wsman_prop(x, "InstanceID"));
            const char *hr = nx_wsman_prop(x, "HostResource");
            d->path = hr ? nx_strdup(hr) : NULL;
        }
    }
    nx_wsman_list_release(&r);
    nx_wsman_list_release(&s);
    if (rc < 0)
        dvd_release(d);
    return rc;
}

static char *setting_path(struct hv_conn *c, const char *cls, const char *iid)
{
    struct nx_wsman_epr *e = iid_epr(cls, iid);
    char *p = hv_wmi_path(c->host, e);
    nx_wsman_epr_free(e);
    return p;
}

/* Put the image in the VM's DVD drive, adding what is missing: a SCSI
 * controller, the drive (AddressOnParent 0), the disk; or point the disk that
 * is there at the image (ModifyResourceSettings). *added: a drive was added
 * (its boot entry then needs to go first). One setting per
 * AddResourceSettings: the drive's Parent is the controller's path and the
 * disk's the drive's, both known only from the previous call's answer. */
static int attach_image(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                        struct hv_dvd *d, bool *added)
{
    struct nx_wsman_epr *vssd = vssd_epr(guid);
    char *iso = hv_image_path(s->host->image_store, s->image->name);
    char *parent = NULL, *inst = NULL;
    int ret = -1;
    *added = false;
    if (!d->ctrl) {
        struct nx_cim_prop ctrl[] = {
            {.name = "ResourceType", .type = "uint16", .value = "6"},
            {.name = "ResourceSubType", .value = HV_SUBTYPE_SCSI},
        };
        if (add_resource(c, vssd, "Msvm_ResourceAllocationSettingData", ctrl, 2, &d->ctrl) < 0 ||
            (!d->ctrl && find_setting(c, guid, "Msvm_ResourceAllocationSettingData",
                                      "ResourceSubType", false, HV_SUBTYPE_SCSI, &d->ctrl) < 0))
            goto cleanup;
    }
    if (!d->drive) {
        parent = setting_path(c, "Msvm_ResourceAllocationSettingData", d->ctrl);
        struct nx_cim_prop drive[] = {
            {.name = "ResourceType", .type = "uint16", .value = "16"},
            {.name = "ResourceSubType", .value = HV_SUBTYPE_DVD_DRIVE},
            {.name = "Parent", .value = parent},
            {.name = "AddressOnParent", .value = "0"},
        };
        if (add_resource(c, vssd, "Msvm_ResourceAllocationSettingData", drive, 4, &d->drive) < 0 ||
            (!d->drive && find_setting(c, guid, "Msvm_ResourceAllocationSettingData", "Parent",
                                       true, d->ctrl, &d->drive) < 0))
            goto cleanup;
        *added = true;
        NX_FREE(parent);
    }
    const char *hr[] = {iso};
    if (d->disk) {
        /* the drive holds a disk: it gets the image's path */
        struct nx_cim_prop disk[] = {
            {.name = "InstanceID", .value = d->disk},
            {.name = "HostResource", .array = hr, .n_array = 1},
        };
        inst = nx_cim_instance_xml("Msvm_StorageAllocationSettingData", disk, 2);
        struct nx_wsman_param p[] = {{"ResourceSettings", NX_WSMAN_EMBEDDED, inst, NULL}};
        if (call(c, c->vsms, "ModifyResourceSettings", p, 1, NULL) < 0)
            goto cleanup;
    } else {
        parent = setting_path(c, "Msvm_ResourceAllocationSettingData", d->drive);
        struct nx_cim_prop disk[] = {
            {.name = "ResourceType", .type = "uint16", .value = "31"},
            {.name = "ResourceSubType", .value = HV_SUBTYPE_DVD_DISK},
            {.name = "Parent", .value = parent},
            {.name = "HostResource", .array = hr, .n_array = 1},
        };
        if (add_resource(c, vssd, "Msvm_StorageAllocationSettingData", disk, 4, &d->disk) < 0)
            goto cleanup;
    }
    free(d->path);
    d->path = iso;
    iso = NULL;
    ret = 0;
cleanup:
    if (ret < 0)
        nx_error_prefix("appliance image %s: ", iso);
    nx_wsman_epr_free(vssd);
    free(iso);
    free(parent);
    free(inst);
    return ret;
}

/* The VM's BootSourceOrder with its drives (the DVD drive: appliances have
 * no disks) first, the rest in their order: read from its settings
 * (Msvm_VirtualSystemSettingData.BootSourceOrder, paths of
 * Msvm_BootSourceSettingData), each entry's BootSourceType (1: drive) from a
 * query naming their InstanceIDs. */
static int dvd_boot_first(struct hv_conn *c, const char *guid, struct hv_firmware *fw)
{
    struct nx_wsman_epr *e = vssd_epr(guid);
    struct nx_wsman_instance *vs = NULL;
    struct nx_wsman_list l = {0};
    struct strbuf q = STRBUF_INIT;
    char **ids = NULL;
    size_t n = 0;
    int ret = -1;
    memset(fw, 0, sizeof(*fw));
    int rc = nx_wsman_get(c->ws, e, &vs);
    count(c);
    if (rc < 0)
        goto cleanup;
    for (size_t i = 0; i < vs->n; i++)
        if (!strcmp(vs->props[i].name, "BootSourceOrder") && vs->props[i].value)
            n++;
    ids = nx_calloc(n + 1, sizeof(*ids));
    fw->boot = nx_calloc(n + 1, sizeof(*fw->boot));
    n = 0;
    strbuf_addstr(&q, "SELECT * FROM Msvm_BootSourceSettingData WHERE ");
    for (size_t i = 0; i < vs->n; i++) {
        const char *v = vs->props[i].value;
        if (strcmp(vs->props[i].name, "BootSourceOrder") != 0 || !v)
            continue;
        ids[n] = hv_wmi_path_key(v, "InstanceID");
        if (!ids[n]) {
            nx_error_set(NX_EX_PROTOCOL, "BootSourceOrder entry '%s' is not a WMI object path", v);
            goto cleanup;
        }
        strbuf_addf(&q, "%sInstanceID = '", n ? " OR " : "");
        wql_quote(&q, ids[n]);
        strbuf_addch(&q, '\'');
        n++;
    }
    if (n == 0) {
        nx_error_set(NX_EX_UNAVAILABLE, "the VM has no boot entries (BootSourceOrder is empty)");
        goto cleanup;
    }
    if (enum_class(c, "Msvm_BootSourceSettingData", q.buf, &l) < 0)
        goto cleanup;
    /* drives first, then the others, each in the order they had */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0, k = 0; i < vs->n; i++) {
            const char *v = vs->props[i].value;
            if (strcmp(vs->props[i].name, "BootSourceOrder") != 0 || !v)
                continue;
            unsigned long type = 0;
            for (size_t j = 0; j < l.n; j++)
                if (nx_str_eq(nx_wsman_prop(l.items[j], "InstanceID"), ids[k]))
                    nx_parse_uint(nx_wsman_prop(l.items[j], "BootSourceType"), 0, 65535, &type);
            k++;
            if ((type == 1) == (pass == 0))
                fw->boot[fw->n_boot++] = nx_strdup(v);
        }
    bool drive = false;
    for (size_t j = 0; j < l.n; j++)
        drive |= nx_str_eq(nx_wsman_prop(l.items[j], "BootSourceType"), "1");
    if (!drive) {
        nx_error_set(NX_EX_UNAVAILABLE, "no drive among the VM's %zu boot entries", n);
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (ret < 0) {
        nx_error_prefix("boot order: ");
        firmware_release(fw);
    }
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    strbuf_release(&q);
    nx_wsman_list_release(&l);
    nx_wsman_instance_free(vs);
    nx_wsman_epr_free(e);
    return ret;
}

/* Attach spec's image to VM guid; *fw receives the firmware settings when a
 * drive was added (fw->boot NULL otherwise). fresh: the VM was just
 * defined (no disks to look for). */
static int put_image(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                     bool fresh, struct hv_firmware *fw, bool *firmware)
{
    struct hv_dvd d = {0};
    bool added = false;
    int rc = find_dvd(c, guid, !fresh, &d);
    *firmware = false;
    memset(fw, 0, sizeof(*fw));
    if (rc == 0)
        rc = attach_image(c, guid, s, &d, &added);
    if (rc == 0 && added) {
        rc = dvd_boot_first(c, guid, fw);
        *firmware = rc == 0;
    }
    if (rc == 0)
        nx_info("%s: DVD drive holds %s", s->name, d.path);
    dvd_release(&d);
    return rc;
}

static int hv_set_image(struct nx_conn *base, const struct nx_appliance_obs *o,
                        const struct nx_appliance_spec *s)
{
    struct hv_conn *c = (struct hv_conn *)base;
    struct hv_firmware fw = {0};
    struct nx_marker m = {0};
    bool firmware = false;
    int rc = put_image(c, o->id, s, false, &fw, &firmware);
    if (rc == 0) {
        /* the spec's marker: a set-payload before this one in the run
         * succeeded, or was not needed (digest and revision current) */
        nx_marker_from_spec(&m, s);
        rc = set_system(c, o->id, &m, firmware ? &fw : NULL);
    }
    nx_marker_release(&m);
    firmware_release(&fw);
    if (rc < 0)
        nx_error_prefix("%s: ", o->name);
    return rc;
}

static int hv_create(struct nx_conn *base, const struct nx_appliance_spec *s,
                     struct nx_appliance_obs **out)
{
    struct hv_conn *c = (struct hv_conn *)base;
    struct nx_marker m = {0};
    struct nx_wsman_instance *o = NULL;
    struct hv_dvd dvd = {0};
    struct hv_firmware fw = {0};
    char *root = NULL, *notes = NULL, *inst = NULL, *ctrl = NULL, *guid = NULL;
    int ret = -1;
    *out = NULL;
    if (load_switches(c) < 0)
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
    if (call(c, c->vsms, "DefineSystem", p, ctrl ? 2 : 1, &o) < 0)
        goto cleanup;
    const struct nx_wsman_epr *rs = nx_wsman_prop_epr(o, "ResultingSystem");
    const char *g = rs ? nx_wsman_epr_selector(rs, "Name") : NULL;
    if (g)
        guid = nx_strdup(g);
    else if (find_defined(c, s->name, notes, &guid) < 0)
        goto cleanup;
    nx_info("%s: defined virtual machine %s in %s", s->name, guid, root);
    struct nx_appliance_obs *obs = nx_calloc(1, sizeof(*obs));
    obs->id = nx_strdup(guid);
    obs->name = nx_strdup(s->name);
    nx_marker_from_spec(&obs->marker, s);
    *out = obs;
    if (s->image) {
        bool added = false;
        if (find_dvd(c, guid, false, &dvd) < 0 || attach_image(c, guid, s, &dvd, &added) < 0)
            goto cleanup;
        nx_info("%s: DVD drive holds %s", s->name, dvd.path);
    }
    for (size_t i = 0; i < s->n_vnics; i++) {
        if (add_vnic(c, guid, &s->vnics[i]) < 0)
            goto cleanup;
        struct nx_vnic_obs *vn = nx_obs_add_vnic(obs);
        memcpy(vn->mac, s->vnics[i].mac, 6);
        vn->network = nx_strdup(s->vnics[i].network);
        vn->vlan = s->vnics[i].vlan;
    }
    /* every device is there: the DVD drive goes first in the boot order */
    if (s->image && dvd_boot_first(c, guid, &fw) < 0)
        goto cleanup;
    if (write_payload(c, guid, s, true) < 0)
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
    dvd_release(&dvd);
    firmware_release(&fw);
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
    struct hv_conn *c = (struct hv_conn *)base;
    if (load_switches(c) < 0 || remove_vnics(c, rem, n_rem) < 0)
        goto fail;
    for (size_t i = 0; i < n_add; i++)
        if (add_vnic(c, o->id, add[i]) < 0)
            goto fail;
    return 0;
fail:
    nx_error_prefix("%s: ", s ? s->name : o->name);
    return -1;
}

static int hv_set_payload(struct nx_conn *base, const struct nx_appliance_obs *o,
                          const struct nx_appliance_spec *s)
{
    struct hv_conn *c = (struct hv_conn *)base;
    struct nx_marker m = {0};
    if (write_payload(c, o->id, s, false) < 0)
        return -1;
    nx_marker_from_spec(&m, s);
    int rc = set_system(c, o->id, &m, NULL);
    nx_marker_release(&m);
    if (rc < 0)
        nx_error_prefix("%s: ", s->name);
    return rc;
}

static int request_state(struct hv_conn *c, const char *guid, const char *name, unsigned state)
{
    struct nx_wsman_epr *vm = vm_epr(guid);
    struct nx_wsman_instance *o = NULL;
    char st[8];
    snprintf(st, sizeof(st), "%u", state);
    struct nx_wsman_param p[] = {{"RequestedState", NX_WSMAN_STRING, st, NULL}};
    int rc = nx_wsman_invoke(c->ws, vm, "RequestStateChange", p, 1, &o);
    count(c);
    if (rc == 0 && nx_wsman_return_value(o, "RequestStateChange") == 32775) {
        /* invalid state for this operation: fine if it is already there */
        struct nx_wsman_instance *cur = NULL;
        unsigned long es = 0;
        rc = nx_wsman_get(c->ws, vm, &cur);
        count(c);
        if (rc == 0 &&
            !(nx_parse_uint(nx_wsman_prop(cur, "EnabledState"), 0, 65535, &es) && es == state))
            rc = nx_error_set(NX_EX_UNAVAILABLE,
                              "RequestStateChange(%u) failed: invalid state for this operation "
                              "(EnabledState %lu)",
                              state, es);
        nx_wsman_instance_free(cur);
    } else if (rc == 0) {
        rc = wait_result(c, "RequestStateChange", o);
    }
    if (rc < 0)
        nx_error_prefix("%s: powering %s: ", name, state == 2 ? "on" : "off");
    nx_wsman_instance_free(o);
    nx_wsman_epr_free(vm);
    return rc;
}

static int hv_set_power(struct nx_conn *base, const struct nx_appliance_obs *o, bool on)
{
    return request_state((struct hv_conn *)base, o->id, o->name, on ? 2 : 3);
}

static int hv_remove(struct nx_conn *base, const struct nx_appliance_obs *o)
{
    struct hv_conn *c = (struct hv_conn *)base;
    if (o->powered_on && request_state(c, o->id, o->name, 3) < 0)
        return -1;
    struct nx_wsman_epr *vm = vm_epr(o->id);
    struct nx_wsman_param p[] = {{"AffectedSystem", NX_WSMAN_REF, NULL, vm}};
    int rc = call(c, c->vsms, "DestroySystem", p, 1, NULL);
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
