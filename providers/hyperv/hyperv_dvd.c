/* hyperv_dvd.c: the appliance image on Hyper-V. The SP copies the ISO to
 * <image-store>\<image name> on the host (WS-Man has no file transfer: no
 * stage_image). A VM gets a SCSI controller (defined with the VM), a
 * Synthetic DVD Drive (Msvm_ResourceAllocationSettingData 16, Parent the
 * controller, AddressOnParent 0) and its Virtual CD/DVD Disk
 * (Msvm_StorageAllocationSettingData 31, Parent the drive, HostResource the
 * ISO); the drive's boot entry goes first in BootSourceOrder, with Secure
 * Boot and the Microsoft UEFI CA template. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hyperv_dvd.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#define RASD "Msvm_ResourceAllocationSettingData"
#define SASD "Msvm_StorageAllocationSettingData"

void hv_firmware_release(struct hv_firmware *f)
{
    for (size_t i = 0; f && i < f->n_boot; i++)
        free(f->boot[i]);
    if (f)
        NX_FREE(f->boot);
}

/* The settings of class cls of VM guid (InstanceID "Microsoft:<guid>\..."). */
static int vm_settings(struct hv_conn *c, const char *guid, const char *cls,
                       struct nx_wsman_list *l)
{
    char *like = nx_asprintf("Microsoft:%s\\", guid);
    int rc = hv_enum_prefix(c, cls, like, l);
    free(like);
    return rc;
}

void hv_dvd_release(struct hv_dvd *d)
{
    if (!d)
        return;
    free(d->ctrl);
    free(d->drive);
    free(d->disk);
    free(d->path);
    memset(d, 0, sizeof(*d));
}

/* Find the VM's controller, DVD drive and disk. A drive is ours when it is
 * at AddressOnParent 0 of a controller; with disks, its disk is the CD/DVD
 * disk whose Parent is that drive. */
int hv_find_dvd(struct hv_conn *c, const char *guid, bool disks, struct hv_dvd *d)
{
    struct nx_wsman_list r = {0}, s = {0};
    int rc = vm_settings(c, guid, RASD, &r);
    if (rc == 0 && disks)
        rc = vm_settings(c, guid, SASD, &s);
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
            hv_path_names(nx_wsman_prop(x, "Parent"), d->ctrl) && (!addr || !strcmp(addr, "0")))
            d->drive = nx_strdup(nx_wsman_prop(x, "InstanceID"));
    }
    for (size_t i = 0; rc == 0 && d->drive && i < s.n && !d->disk; i++) {
        const struct nx_wsman_instance *x = s.items[i];
        if (nx_str_eq(nx_wsman_prop(x, "ResourceSubType"), HV_SUBTYPE_DVD_DISK) &&
            hv_path_names(nx_wsman_prop(x, "Parent"), d->drive)) {
            d->disk = nx_strdup(nx_wsman_prop(x, "InstanceID"));
            const char *hr = nx_wsman_prop(x, "HostResource");
            d->path = hr ? nx_strdup(hr) : NULL;
        }
    }
    nx_wsman_list_release(&r);
    nx_wsman_list_release(&s);
    if (rc < 0)
        hv_dvd_release(d);
    return rc;
}

/* Put the image in the VM's DVD drive, adding what is missing: a SCSI
 * controller, the drive (AddressOnParent 0), the disk; or point the disk that
 * is there at the image (ModifyResourceSettings). *added: a drive was added
 * (its boot entry then needs to go first). One setting per
 * AddResourceSettings: the drive's Parent is the controller's path and the
 * disk's the drive's, both known only from the previous call's answer. */
int hv_attach_image(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                    struct hv_dvd *d, bool *added)
{
    struct nx_wsman_epr *vssd = hv_vssd_epr(guid);
    char *iso = hv_image_path(s->host->image_store, s->image->name);
    char *parent = NULL, *inst = NULL;
    int ret = -1;
    *added = false;
    if (!d->ctrl) {
        struct nx_cim_prop ctrl[] = {
            {.name = "ResourceType", .type = "uint16", .value = "6"},
            {.name = "ResourceSubType", .value = HV_SUBTYPE_SCSI},
        };
        if (hv_add_resource(c, vssd, RASD, ctrl, 2, &d->ctrl) < 0 ||
            (!d->ctrl && hv_find_setting(c, guid, RASD, "ResourceSubType", false, HV_SUBTYPE_SCSI,
                                         &d->ctrl) < 0))
            goto cleanup;
    }
    if (!d->drive) {
        parent = hv_setting_path(c, RASD, d->ctrl);
        struct nx_cim_prop drive[] = {
            {.name = "ResourceType", .type = "uint16", .value = "16"},
            {.name = "ResourceSubType", .value = HV_SUBTYPE_DVD_DRIVE},
            {.name = "Parent", .value = parent},
            {.name = "AddressOnParent", .value = "0"},
        };
        if (hv_add_resource(c, vssd, RASD, drive, 4, &d->drive) < 0 ||
            (!d->drive && hv_find_setting(c, guid, RASD, "Parent", true, d->ctrl, &d->drive) < 0))
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
        inst = nx_cim_instance_xml(SASD, disk, 2);
        struct nx_wsman_param p[] = {{"ResourceSettings", NX_WSMAN_EMBEDDED, inst, NULL}};
        if (hv_call(c, c->vsms, "ModifyResourceSettings", p, 1, NULL) < 0)
            goto cleanup;
    } else {
        parent = hv_setting_path(c, RASD, d->drive);
        struct nx_cim_prop disk[] = {
            {.name = "ResourceType", .type = "uint16", .value = "31"},
            {.name = "ResourceSubType", .value = HV_SUBTYPE_DVD_DISK},
            {.name = "Parent", .value = parent},
            {.name = "HostResource", .array = hr, .n_array = 1},
        };
        if (hv_add_resource(c, vssd, SASD, disk, 4, &d->disk) < 0)
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
int hv_dvd_boot_first(struct hv_conn *c, const char *guid, struct hv_firmware *fw)
{
    struct nx_wsman_epr *e = hv_vssd_epr(guid);
    struct nx_wsman_instance *vs = NULL;
    struct nx_wsman_list l = {0};
    struct strbuf q = STRBUF_INIT;
    char **ids = NULL;
    size_t n = 0;
    int ret = -1;
    memset(fw, 0, sizeof(*fw));
    if (hv_get(c, e, &vs) < 0)
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
        hv_wql_quote(&q, ids[n]);
        strbuf_addch(&q, '\'');
        n++;
    }
    if (n == 0) {
        nx_error_set(NX_EX_UNAVAILABLE, "the VM has no boot entries (BootSourceOrder is empty)");
        goto cleanup;
    }
    if (hv_enum(c, "Msvm_BootSourceSettingData", q.buf, &l) < 0)
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
        hv_firmware_release(fw);
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
int hv_put_image(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s, bool fresh,
                 struct hv_firmware *fw, bool *firmware)
{
    struct hv_dvd d = {0};
    bool added = false;
    int rc = hv_find_dvd(c, guid, !fresh, &d);
    *firmware = false;
    memset(fw, 0, sizeof(*fw));
    if (rc == 0)
        rc = hv_attach_image(c, guid, s, &d, &added);
    if (rc == 0 && added) {
        rc = hv_dvd_boot_first(c, guid, fw);
        *firmware = rc == 0;
    }
    if (rc == 0)
        nx_info("%s: DVD drive holds %s", s->name, d.path);
    hv_dvd_release(&d);
    return rc;
}
