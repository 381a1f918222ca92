/* hyperv_inventory.h: what is on the Hyper-V host (layer 2, above
 * hyperv_jobs.h): its virtual switches, the appliances it holds (list_owned),
 * the switches other VMs use (network_usage), placement checks. Reads only. */
#ifndef NX_HYPERV_INVENTORY_H
#define NX_HYPERV_INVENTORY_H

#include "hyperv_jobs.h"

/* The host's virtual switches, enumerated once per connection. */
int hv_load_switches(struct hv_conn *c);
/* The one switch named name; NULL when none or several (check_placement
 * reports which). */
const struct hv_switch *hv_switch_named(const struct hv_conn *c, const char *name);
void hv_switches_release(struct hv_conn *c);

/* The VM DefineSystem just made, when only its job knows it: the one named
 * name whose Notes are exactly notes (our marker, unique per appliance). */
int hv_find_defined(struct hv_conn *c, const char *name, const char *notes, char **guid);

/* nx_provider_ops */
int hv_check_placement(struct nx_conn *base, const struct nx_appliance_spec *s);
int hv_list_owned(struct nx_conn *base, struct nx_obs_list *out);
int hv_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                     size_t *n_out);

#endif
