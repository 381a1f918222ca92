/* hyperv_dvd.h: the appliance image in a VM's DVD drive, and the firmware
 * settings that boot it (layer 3, above hyperv_jobs.h). */
#ifndef NX_HYPERV_DVD_H
#define NX_HYPERV_DVD_H

#include <stdbool.h>
#include <stddef.h>

#include "hyperv_jobs.h"

/* The VM's DVD drive holding the image, as far as it exists. */
struct hv_dvd {
    char *ctrl; /* InstanceID of the SCSI (or IDE) controller it is on */
    char *drive; /* InstanceID of the DVD drive (Msvm_ResourceAllocationSettingData) */
    char *disk; /* InstanceID of its disk (Msvm_StorageAllocationSettingData) */
    char *path; /* the disk's HostResource */
};
void hv_dvd_release(struct hv_dvd *d);

/* Firmware settings of an appliance that boots the image (generation 2):
 * its CD/DVD drive first in BootSourceOrder, Secure Boot with the Microsoft
 * UEFI Certificate Authority template (the image boots through shim); set
 * with the marker in one ModifySystemSettings. */
struct hv_firmware {
    char **boot; /* BootSourceOrder: WMI paths of Msvm_BootSourceSettingData */
    size_t n_boot;
};
void hv_firmware_release(struct hv_firmware *f);

/* Find the VM's controller, DVD drive and (disks: look for it) disk. */
int hv_find_dvd(struct hv_conn *c, const char *guid, bool disks, struct hv_dvd *d);
/* Put spec's image in the drive d, adding what is missing; *added: a drive
 * was added (its boot entry then needs to go first). */
int hv_attach_image(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                    struct hv_dvd *d, bool *added);
/* The VM's BootSourceOrder with its drives first. */
int hv_dvd_boot_first(struct hv_conn *c, const char *guid, struct hv_firmware *fw);
/* find + attach + (a drive added) boot order: *firmware tells whether *fw
 * holds settings to apply. fresh: the VM was just defined (no disks). */
int hv_put_image(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s, bool fresh,
                 struct hv_firmware *fw, bool *firmware);

#endif
