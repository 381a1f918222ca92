/* validate.h: semantic checks of a whole model, before anything is changed.
 *
 * Resolves references (plan -> host, subscription -> plan) and reports every
 * problem as "file:line: <element name=...>: what is wrong". Pure: no I/O. */
#ifndef NX_VALIDATE_H
#define NX_VALIDATE_H

#include "error.h"
#include "model.h"

#define NX_TENANT_NAME_MAX 48
#define NX_HOST_NAME_MAX 24
#define NX_RESERVED_PORT 22 /* the appliance's management port: never a public IP rule */

/* Returns the number of problems added to diag (0: the model is valid). */
size_t nx_validate(struct nx_model *m, struct nx_diag *diag);

/* The hosts a tenant has appliances on, as indices into m->hosts, ascending.
 * Valid only after nx_validate() returned 0. Caller frees *out. */
size_t nx_tenant_hosts(const struct nx_model *m, const struct nx_tenant *t, size_t **out);

#endif
