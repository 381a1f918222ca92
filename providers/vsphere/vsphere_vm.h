/* vsphere_vm.h: changes to appliances (uses the spec, placement, task,
 * inventory and session layers). */
#ifndef NX_VSPHERE_VM_H
#define NX_VSPHERE_VM_H

#include "vsphere.h"

/* the create, update_vnics, set_payload, set_power, settle and remove ops */
int vs_create(struct nx_conn *base, const struct nx_appliance_spec *spec,
              struct nx_appliance_obs **out);
int vs_update_vnics(struct nx_conn *base, const struct nx_appliance_obs *obs,
                    const struct nx_appliance_spec *spec, const struct nx_vnic_spec *const *add,
                    size_t n_add, const struct nx_vnic_obs *const *remove, size_t n_remove);
int vs_set_payload(struct nx_conn *base, const struct nx_appliance_obs *obs,
                   const struct nx_appliance_spec *spec);
int vs_set_power(struct nx_conn *base, const struct nx_appliance_obs *obs, bool on);
/* Creates (and the power-ons after them) are confirmed here, for all
 * appliances at once; every failure is logged. */
int vs_settle(struct nx_conn *base, struct nx_deferred_failure **out, size_t *n);
int vs_remove(struct nx_conn *base, const struct nx_appliance_obs *obs);

#endif
