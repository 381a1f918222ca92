/* vsphere_placement.h: the placement layer (uses the inventory and session
 * layers). Functions named *_locked want c->lock held. */
#ifndef NX_VSPHERE_PLACEMENT_H
#define NX_VSPHERE_PLACEMENT_H

#include "vsphere.h"

/* What a vNIC is connected to. */
struct vs_backing {
    const struct vs_obj *net; /* Network or DistributedVirtualPortgroup */
    const char *switch_uuid; /* DVS */
};

/* Where an appliance goes. */
struct vs_resolved {
    struct vs_obj *host, *dc, *cr, *ds;
    struct vs_obj *image_ds; /* spec->image: where it is kept */
    struct vs_backing *nics; /* one per spec vNIC (free()) */
};

/* The name of spec's host in the inventory (its target, else its name). */
const char *vs_host_target(const struct nx_appliance_spec *spec);
/* c->lock held: lookups. */
const char *vs_dvs_name(const struct vs_conn *c, const struct vs_obj *pg); /* "?" if unknown */
const struct vs_pg *vs_host_pg(const struct vs_obj *host, const char *name);
struct vs_obj *vs_find_host(struct vs_conn *c, const char *name); /* NULL: nx_error set */
/* The object of this type and name (under parent, if not NULL); NULL if none. */
struct vs_obj *vs_find_named(struct vs_conn *c, const char *type, const char *name,
                             const char *parent);
/* c->lock held: the portgroup carrying v on host. */
int vs_resolve_vnic(struct vs_conn *c, const struct vs_obj *host, const struct nx_vnic_spec *v,
                    struct vs_backing *out);
/* c->lock held: host, compute resource, datacenter and datastore (r->nics
 * and r->image_ds untouched) */
int vs_resolve_place_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                            struct vs_resolved *r);
/* c->lock held: the datastore spec's image is kept on (r placed) */
int vs_image_datastore_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                              const struct vs_resolved *r, struct vs_obj **out);
/* Where spec goes, with its vNICs' backings and its image's datastore, from
 * the inventory (read first if needed); takes c->lock. The objects r points
 * to stay valid until the connection closes. */
int vs_resolve(struct vs_conn *c, const struct nx_appliance_spec *spec, struct vs_resolved *r);
/* c->lock held: the production networks check_placement saw for a plan host */
const struct vs_hostinfo *vs_hostinfo(const struct vs_conn *c, const char *plan_host);

/* The folder or pool (kind "Folder" or "ResourcePool") `name` under parent,
 * created when missing (threads that need the same one wait for the first);
 * *out: its moref value. */
int vs_ensure_container(struct vs_conn *c, const char *kind, const char *parent_type,
                        const char *parent, const char *name, char **out);

/* the check_placement op */
int vs_check_placement(struct nx_conn *base, const struct nx_appliance_spec *spec);
void vs_placement_release(struct vs_conn *c);

#endif
