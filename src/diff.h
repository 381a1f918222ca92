/* diff.h: the difference between desired and observed state, as actions.
 * Pure: no I/O, unit-tested without a hypervisor. */
#ifndef NX_DIFF_H
#define NX_DIFF_H

#include "desired.h"
#include "observed.h"

enum nx_action_kind {
    NX_ACT_REMOVE = 0, /* remove an appliance (orphan or duplicate) */
    NX_ACT_CREATE, /* create an appliance with all vNICs and its payload */
    NX_ACT_REMOVE_VNIC, /* remove one vNIC */
    NX_ACT_ADD_VNIC, /* add one vNIC */
    NX_ACT_SET_PAYLOAD, /* replace the bootstrap payload */
    NX_ACT_SET_IMAGE, /* put the current appliance image in the CD/DVD drive */
    NX_ACT_POWER_ON,
    NX_ACT_POWER_OFF,
};
const char *nx_action_name(enum nx_action_kind k);

struct nx_action {
    enum nx_action_kind kind;
    const struct nx_appliance_spec *spec; /* NULL for REMOVE */
    const struct nx_appliance_obs *obs; /* NULL for CREATE (and what follows it) */
    const struct nx_vnic_spec *vnic; /* ADD_VNIC */
    const struct nx_vnic_obs *ovnic; /* REMOVE_VNIC */
    const char *reason; /* static text */
};

struct nx_actions {
    struct nx_action *items;
    size_t n, alloc;
    /* appliances left alone because a newer netext-deploy owns them */
    const struct nx_appliance_obs **skipped;
    size_t n_skipped, alloc_skipped;
};

/* Which observed appliances the diff may act on: those of `role` whose tenant
 * passes the filter (NULL tenants: every tenant named in `desired` or in
 * `tenants`). Desired specs outside the filter are ignored. */
struct nx_scope {
    enum nx_role role;
    const char *const *tenants; /* NULL-terminated, or NULL for all of the model */
    const struct nx_model *model;
};

/* Actions are ordered by appliance key; per appliance: remove duplicates,
 * create, remove vNICs, add vNICs, image, payload, power. */
void nx_diff(const struct nx_desired *d, const struct nx_obs_list *obs,
             const struct nx_scope *scope, struct nx_actions *out);
void nx_actions_release(struct nx_actions *a);

bool nx_vnic_matches(const struct nx_vnic_spec *want, const struct nx_vnic_obs *have);

#endif
