/* hyperv_vnic.h: an appliance's network adapters (layer 3, above
 * hyperv_inventory.h): the synthetic port with its static MAC, its
 * connection to a virtual switch, its access VLAN, read back. */
#ifndef NX_HYPERV_VNIC_H
#define NX_HYPERV_VNIC_H

#include "hyperv_jobs.h"

/* Add vNIC v to VM guid; the switches must be loaded (hv_load_switches).
 * A VLAN the host accepts but does not show fails. */
int hv_add_vnic(struct hv_conn *c, const char *guid, const struct nx_vnic_spec *v);
/* Remove the n vNICs in one RemoveResourceSettings. */
int hv_remove_vnics(struct hv_conn *c, const struct nx_vnic_obs *const *rem, size_t n);

#endif
