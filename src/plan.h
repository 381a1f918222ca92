/* plan.h: reading netext-plan(5) files into the model.
 *
 * Files are read with libxml2's streaming reader and validated against the
 * shipped RelaxNG schema while they stream, so memory stays proportional to
 * the model, not to the document tree. */
#ifndef NX_PLAN_H
#define NX_PLAN_H

#include "error.h"
#include "model.h"

#define NX_PLAN_NS "urn:netext-deploy:plan:1"
/* Plans larger than this are refused before parsing. */
#define NX_PLAN_MAX_BYTES (256UL * 1024 * 1024)

/* The schema, compiled into the program (the same text is installed as
 * $(pkgdatadir)/netext-plan.rng for other tools). */
extern const char nx_plan_schema[];
extern const unsigned long nx_plan_schema_len;

/* Read one file (or, for a directory, every *.xml file in it, sorted by name)
 * into m. Syntax, schema and value problems are added to diag, each as
 * "file:line: message". Returns -1 with nx_error set when a file cannot be
 * read at all (EX_NOINPUT), 0 otherwise (check diag->n). */
int nx_plan_read_path(struct nx_model *m, const char *path, struct nx_diag *diag);
int nx_plan_read_file(struct nx_model *m, const char *path, struct nx_diag *diag);
int nx_plan_read_memory(struct nx_model *m, const char *buf, size_t len, const char *name,
                        struct nx_diag *diag);

#endif
