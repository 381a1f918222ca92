/* hyperv.h: the bottom layer of the Hyper-V provider (WMI v2 over
 * WS-Management): what does not depend on a live connection, implemented in
 * hyperv_wmi.c and unit tested on its own (URI parsing, WMI object paths,
 * WQL, KVP payload items, MAC formats, reading settings out of instances).
 *
 * The provider's files, each calling only the ones below it (the design and
 * the call graph: docs/internals/hyperv.md):
 *   hyperv_ops.c        the nx_provider_ops: open, create, set-*, remove
 *   hyperv_vnic.c       adapters, their switch connection and VLAN (read back)
 *   hyperv_kvp.c        the payload as host-to-guest KVP items
 *   hyperv_dvd.c        the image: SCSI controller, DVD drive, disk, boot order
 *   hyperv_inventory.c  switches, discovery (list_owned), network usage
 *   hyperv_jobs.c       the connection's calls: enumerate, get, invoke, jobs
 *   hyperv_wmi.c        this header: no connection */
#ifndef NX_HYPERV_H
#define NX_HYPERV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provider.h"
#include "wsman.h"

#define HV_NS "root/virtualization/v2"
#define HV_DEFAULT_FOLDER "Cloud_Connect_Replication"
/* Host-to-guest KVP items: Data holds at most 2048 bytes of UTF-16 with its
 * terminator; we stay well below with ASCII (base64) slices. */
#define HV_KVP_CHUNK 1000
#define HV_KVP_PREFIX "netext-deploy.payload."
/* The appliance image: a DVD drive on a SCSI controller, its disk the ISO
 * at <image-store>\<image name> on the host (the SP copies it there). */
#define HV_DEFAULT_IMAGE_STORE "C:\\ProgramData\\netext-deploy"
#define HV_SUBTYPE_SCSI "Microsoft:Hyper-V:Synthetic SCSI Controller"
#define HV_SUBTYPE_IDE "Microsoft:Hyper-V:Emulated IDE Controller"
#define HV_SUBTYPE_DVD_DRIVE "Microsoft:Hyper-V:Synthetic DVD Drive"
#define HV_SUBTYPE_DVD_DISK "Microsoft:Hyper-V:Virtual CD/DVD Disk"
/* SecureBootTemplateId of "Microsoft UEFI Certificate Authority" (what
 * Set-VMFirmware -SecureBootTemplate MicrosoftUEFICertificateAuthority sets) */
#define HV_SECURE_BOOT_UEFI_CA "272e7447-90a4-4563-a4b9-8e4ab00526ce"

struct hv_endpoint {
    char *url; /* http(s)://host:port/path */
    bool plain_http; /* hyperv+http:// */
    bool ntlm; /* ?auth=ntlm */
};
/* hyperv://host[:port][/path][?auth=basic|ntlm], hyperv+https://...,
 * hyperv+http://... (port 5986 for https, 5985 for http; path /wsman). */
int hv_parse_uri(const char *uri, struct hv_endpoint *out);
void hv_endpoint_release(struct hv_endpoint *e);

/* \\HOST\root\virtualization\v2:Class.Key="value",... (backslashes and
 * quotes in values escaped), as Hyper-V stores Parent / HostResource. */
char *hv_wmi_path(const char *host, const struct nx_wsman_epr *epr);
/* Value of key in a WMI object path; NULL if absent. Caller frees. */
char *hv_wmi_path_key(const char *path, const char *key);

/* "02:AB:..." <-> "02AB..." (12 hex digits, Hyper-V's Address format). */
void hv_format_mac(const uint8_t mac[6], char out[13]);
bool hv_parse_mac(const char *s, uint8_t mac[6]);

/* The KVP items carrying a payload: NAME.count, NAME.sha256, NAME.000...
 * (base64 of the payload split in HV_KVP_CHUNK slices). names/values are
 * parallel arrays, freed with hv_kvp_items_release. */
struct hv_kvp_items {
    char **names;
    char **values;
    size_t n;
};
void hv_kvp_items_build(const char *payload, size_t len, const char *sha256hex,
                        struct hv_kvp_items *out);
void hv_kvp_items_release(struct hv_kvp_items *k);

/* Windows path component: characters Windows refuses become '_'. */
char *hv_path_component(const char *s);
/* The data root: folder absolute (X:\ or \\) -> folder; else
 * vm_root\folder; then \tenant. folder NULL/"" -> HV_DEFAULT_FOLDER. */
char *hv_data_root(const char *vm_root, const char *folder, const char *tenant);

/* Where the image is on the host: store (NULL/"": HV_DEFAULT_IMAGE_STORE,
 * trailing separators dropped) \ name. */
char *hv_image_path(const char *store, const char *name);
/* Whether a Windows path names the file name (last component, any case). */
bool hv_path_has_name(const char *path, const char *name);

/* Text of a CIM return value (0, 4096, 32768..). */
const char *hv_return_text(long rv);

/* A WQL string literal's content: backslash and quote escaped. */
void hv_wql_quote(struct strbuf *sb, const char *s);
/* SELECT * FROM cls WHERE prop op 'value' (value quoted; suffix appended raw,
 * e.g. "%" after a LIKE prefix). */
char *hv_wql(const char *cls, const char *prop, const char *op, const char *value,
             const char *suffix);

/* Whether s starts with prefix, ignoring case (InstanceIDs: GUIDs in any case). */
bool hv_has_prefix_ci(const char *s, const char *prefix);
/* Whether the WMI object path (Parent, HostResource) names InstanceID iid. */
bool hv_path_names(const char *path, const char *iid);
/* The access VLAN of a Msvm_EthernetSwitchPortVlanSettingData: AccessVlanId
 * when OperationMode is 1 (access) and the id is 1..4094; 0 otherwise. */
unsigned hv_access_vlan(const struct nx_wsman_instance *vl);
/* Whether a Msvm_VirtualSystemSettingData's Notes hold our marker; *m (may
 * be NULL) receives it. */
bool hv_vssd_marker(const struct nx_wsman_instance *vssd, struct nx_marker *m);

#endif
