/* validate.h: semantic checks of a whole model, before anything is changed.
 *
 * Resolves references (plan -> host, subscription -> plan) and reports every
 * problem as "file:line: <element name=...>: what is wrong". Pure: no I/O. */
#ifndef NX_VALIDATE_H
#define NX_VALIDATE_H

#include "error.h"
#include "model.h"

/* Returns the number of problems added to diag (0: the model is valid). */
size_t nx_validate(struct nx_model *m, struct nx_diag *diag);

#endif
