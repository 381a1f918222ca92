/* vsphere_spec.h: ConfigSpec builders (types of the placement layer; no
 * calls: they only append XML to a strbuf, every value escaped). */
#ifndef NX_VSPHERE_SPEC_H
#define NX_VSPHERE_SPEC_H

#include "vsphere.h"
#include "vsphere_placement.h"

/* The whole CreateVM_Task request: config (vNICs, CD/DVD drive with the
 * image, boot order, marker and payload), pool and host. */
void vs_spec_create_vm(struct strbuf *sb, const struct nx_appliance_spec *spec,
                       const struct vs_resolved *r, const char *folder, const char *pool);
/* An extraConfig option. */
void vs_spec_option(struct strbuf *sb, const char *key, const char *value);
/* The marker of spec with `image` (the id of the image the VM's drive holds
 * after this change; "" none), not necessarily spec's: a payload change does
 * not change the drive. free() it. */
char *vs_marker_text(const struct nx_appliance_spec *spec, const char *image);
/* The marker (with image, as vs_marker_text) and the payload options. */
void vs_spec_payload(struct strbuf *sb, const struct nx_appliance_spec *spec, const char *image);
/* deviceChange adding a vNIC (key: a new, negative device key). */
void vs_spec_nic(struct strbuf *sb, int key, const struct nx_vnic_spec *v,
                 const struct vs_backing *b);
/* deviceChange removing the vNIC with this device key. */
void vs_spec_remove_nic(struct strbuf *sb, const char *device_type, const char *key);
/* deviceChange putting img (on ds) in vm's CD/DVD drive (*edit true), or
 * adding a drive on the first free IDE unit (the default IDE controller if
 * vm is not in the inventory); -1 (nothing added, no error set) if vm has no
 * drive and no free IDE unit. */
int vs_spec_image_drive(struct strbuf *sb, const struct vs_obj *vm, bool powered_on,
                        const struct vs_obj *ds, const struct nx_image *img, bool *edit);
/* after extraConfig (the ConfigSpec's order): boot from the CD/DVD drive */
void vs_spec_boot_cdrom(struct strbuf *sb);

#endif
