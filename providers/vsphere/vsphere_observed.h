/* vsphere_observed.h: observed appliances and network usage (uses the
 * placement and inventory layers). */
#ifndef NX_VSPHERE_OBSERVED_H
#define NX_VSPHERE_OBSERVED_H

#include "vsphere.h"

/* the list_owned and network_usage ops */
int vs_list_owned(struct nx_conn *base, struct nx_obs_list *out);
int vs_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                     size_t *n_out);

#endif
