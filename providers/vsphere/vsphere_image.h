/* vsphere_image.h: the appliance image (uses the spec, placement, task,
 * inventory and session layers). */
#ifndef NX_VSPHERE_IMAGE_H
#define NX_VSPHERE_IMAGE_H

#include "vsphere.h"

/* the stage_image and set_image ops */
int vs_stage_image(struct nx_conn *base, const struct nx_appliance_spec *spec);
int vs_set_image(struct nx_conn *base, const struct nx_appliance_obs *obs,
                 const struct nx_appliance_spec *spec);
/* Log the run's image figures (debug) and free the staging state. */
void vs_image_release(struct vs_conn *c);

#endif
