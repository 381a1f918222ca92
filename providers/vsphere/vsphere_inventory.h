/* vsphere_inventory.h: the inventory layer (uses the session layer only). */
#ifndef NX_VSPHERE_INVENTORY_H
#define NX_VSPHERE_INVENTORY_H

#include "vsphere.h"

/* Read the whole inventory once per run (the first caller reads it, the
 * others wait); later calls return at once. */
int vs_inventory_load(struct vs_conn *c);
void vs_inventory_release(struct vs_inventory *inv);
/* The VM in folder whose extraConfig marker is exactly `marker`: 1 and *vm
 * set (moref value), 0 if none, -1 on error. One RetrievePropertiesEx. */
int vs_find_vm_by_marker(struct vs_conn *c, const char *folder, const char *marker, char **vm);

/* Lookups (c->lock held). */
struct vs_obj *vs_inv_get(const struct vs_conn *c, const char *id);
/* The object (created empty if new): for objects this run creates. */
struct vs_obj *vs_inv_add(struct vs_inventory *inv, const char *type, const char *id);
bool vs_is_type(const struct vs_obj *o, const char *t); /* o may be NULL */
/* The distributed portgroup with this key; NULL if none (or key NULL). */
struct vs_obj *vs_dvpg_by_key(const struct vs_conn *c, const char *key);

#endif
