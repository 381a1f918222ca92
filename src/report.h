/* report.h: a run's outcome for the user (report.c). */
#ifndef NX_REPORT_H
#define NX_REPORT_H

#include <stdio.h>

#include "reconcile.h"

/* The actions (done, failed, planned with --dry-run) and a summary line on
 * out; the problems on stderr. */
void nx_run_report_text(const struct nx_run *run, const char *command, FILE *out);
/* status: one line per appliance in scope, from the diff. */
void nx_run_report_status(const struct nx_run *run, FILE *out);
/* --json: the whole outcome as one JSON object. */
void nx_run_report_json(const struct nx_run *run, const char *command, FILE *out);

#endif
