/* hyperv_kvp.h: the bootstrap payload as host-to-guest KVP items (layer 3,
 * above hyperv_jobs.h; the items themselves: hv_kvp_items_build). */
#ifndef NX_HYPERV_KVP_H
#define NX_HYPERV_KVP_H

#include <stdbool.h>

#include "hyperv_jobs.h"

/* Write spec's payload to VM guid: modify the items present, add the new,
 * remove the rest (fresh: a new VM, none present). */
int hv_write_payload(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                     bool fresh);

#endif
