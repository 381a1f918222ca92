/* metrics.h: a run's outcome as a Prometheus text-format file (--metrics).
 *
 * node_exporter's textfile collector convention: the whole file is written
 * at the end of a run, to a temporary file in the same directory that is
 * renamed over FILE (mode 0644), so that a scrape never sees half a file.
 * Every metric is a gauge describing the last run; see netext-deploy(8),
 * METRICS. */
#ifndef NX_METRICS_H
#define NX_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "reconcile.h"
#include "strbuf.h"

/* tenants by result: the nx_tenant_result values, then "invalid" */
#define NX_METRICS_INVALID (NX_TR_REFUSED + 1)
#define NX_METRICS_RESULTS (NX_METRICS_INVALID + 1)

struct nx_metrics_endpoint {
    char *uri; /* without user information */
    const char *provider; /* static */
    unsigned long requests, changes;
};

struct nx_metrics {
    const char *command; /* borrowed */
    bool dry_run;
    double start_mono; /* nx_monotonic_s() at the start */
    bool have_run; /* nx_metrics_collect was called */
    size_t tenants[NX_METRICS_RESULTS];
    size_t appliances; /* desired appliances of the tenants in scope */
    unsigned long changes;
    size_t failed_actions;
    double phase_s[NX_PHASE_COUNT];
    struct nx_metrics_endpoint *endpoints;
    size_t n_endpoints;
};

void nx_metrics_init(struct nx_metrics *mt, const char *command, bool dry_run);
/* Take run's figures (before nx_run_release). Tenants out of the run's scope
 * are not counted, except a provider model's invalid tenants. */
void nx_metrics_collect(struct nx_metrics *mt, const struct nx_run *run);
/* The text format, for a run that ended at end_unix (seconds since the
 * epoch) after duration seconds with exit_code. Pure. */
void nx_metrics_render(const struct nx_metrics *mt, int exit_code, double end_unix, double duration,
                       struct strbuf *out);
/* Render now and write path atomically (0644). Returns 0, or -1 with
 * nx_error set (NX_EX_CANTCREAT). */
int nx_metrics_write(const char *path, const struct nx_metrics *mt, int exit_code);
/* accepts NULL */
void nx_metrics_release(struct nx_metrics *mt);

#endif
