/* reconcile.h: discover, diff and execute, through the provider interface.
 *
 * Order of a run, so that bad input changes nothing:
 *   1. the model is valid (the caller ran nx_validate);
 *   2. one connection per distinct URI is opened;
 *   3. every in-scope appliance's placement is checked (reads only);
 *   4. owned appliances are listed; 5. the diff is computed;
 *   6. unless dry-run, actions run appliance by appliance; a failure stops that
 *      appliance's remaining actions and is reported, the others go on. */
#ifndef NX_RECONCILE_H
#define NX_RECONCILE_H

#include <pthread.h>
#include <stdio.h>

#include "diff.h"
#include "error.h"
#include "credentials.h"
#include "provider.h"

struct nx_run_opts {
    enum nx_role role;
    const char *const *tenants; /* NULL-terminated; NULL: every tenant of the model */
    bool dry_run;
    bool remove_all; /* unsubscribe: nothing is desired for the tenants in scope */
    const char *connect; /* overrides every host's URI */
    struct nx_conn_opts conn; /* TLS and timeouts; user/password are filled */
    const struct nx_credentials *creds; /* per URI, from nx_credentials_for(); may be NULL */
    unsigned jobs; /* tenants worked on at once (0, 1: one at a time) */
    /* called after each tenant's actions finish (from worker threads, one at
     * a time): that tenant and whether it failed, tenants done so far, of
     * which failed, out of total (tenants with something to do) */
    void (*progress)(void *ud, const char *tenant, bool failed, size_t done, size_t failed_total,
                     size_t total);
    void *progress_ud;
    /* tunnel credentials (pki.h, payload.h): when set, every payload in scope
     * carries its appliance's credentials before any digest is compared; the
     * provider side's come from the tenant CA in state_dir (read-only in a dry
     * run), the tenant side's from the bundle */
    bool tunnel_credentials;
    const char *state_dir;
    /* the appliance image (image.h): image_file overrides the model's
     * <defaults image=>; with neither, image_default uses NX_IMAGE_DEFAULT
     * when that file exists. no_image: none (nothing about images changes). */
    const char *image_file;
    bool image_default;
    bool no_image;
};

/* Per-tenant outcome, for batch summaries (ordered: a later one wins). */
enum nx_tenant_result {
    NX_TR_UP_TO_DATE = 0,
    NX_TR_CHANGED,
    NX_TR_PLANNED, /* dry run */
    NX_TR_FAILED,
    NX_TR_REFUSED, /* a placement check failed: nothing done */
};
const char *nx_tenant_result_name(enum nx_tenant_result r);

/* The phases of a run, in order (-vv prints each one's duration; --metrics
 * writes them). */
enum nx_run_phase {
    NX_PHASE_CONNECT = 0,
    NX_PHASE_DESIRED,
    NX_PHASE_INVENTORY, /* placement checks and inventory */
    NX_PHASE_CREDENTIALS,
    NX_PHASE_DIFF,
    NX_PHASE_CHANGES,
    NX_PHASE_SETTLE,
    NX_PHASE_COUNT,
};
/* A short name for labels: "connect", "desired", "inventory", ... */
const char *nx_run_phase_name(enum nx_run_phase p);

enum nx_action_status {
    NX_ST_PLANNED = 0,
    NX_ST_DONE,
    NX_ST_FAILED,
    NX_ST_SKIPPED, /* not attempted: an earlier action of the appliance or its check failed */
};

struct nx_run {
    struct nx_model *model; /* borrowed */
    struct nx_desired *desired; /* owned */
    struct nx_desired empty; /* for remove_all */
    struct nx_conn **conns; /* one per distinct URI */
    size_t n_conns;
    struct nx_conn **host_conn; /* per model host */
    struct nx_obs_list obs;
    struct nx_obs_list created; /* appliances created in this run */
    struct nx_actions actions;
    enum nx_action_status *status;
    char **errors; /* per action, for FAILED/SKIPPED */
    const char **subjects; /* per action: id of the appliance it acted on (borrowed) */
    struct nx_diag problems; /* placement and other pre-change problems */
    struct nx_diag notes; /* remarks that are not problems */
    struct nx_pki *pki; /* the tunnel PKI in the state directory (NULL: none) */
    bool *tenant_refused; /* per model tenant: a check failed, nothing done */
    enum nx_tenant_result *tenant_results; /* per model tenant, after the run */
    pthread_mutex_t lock; /* counters and progress, when jobs > 1 */
    size_t tenants_done, tenants_failed, tenants_total;
    unsigned long n_changes;
    size_t n_failed;
    double phase_s[NX_PHASE_COUNT]; /* seconds spent in each phase (0: not reached) */
    int exit_code;
    const struct nx_run_opts *opts;
};

/* Runs the whole sequence. Returns the exit code (also in run->exit_code);
 * run must be released with nx_run_release() in every case. */
int nx_run_execute(struct nx_model *m, const struct nx_run_opts *opts, struct nx_run *run);
void nx_run_release(struct nx_run *run);

/* Outcome of tenant t (index in the model) after the run. */
enum nx_tenant_result nx_run_tenant_result(const struct nx_run *run, size_t t);

/* Whether s is in the run's scope (its role, a selected tenant). */
bool nx_run_in_scope(const struct nx_run *run, const struct nx_appliance_spec *s);
/* The tenant, host and appliance name an action concerns. */
const char *nx_action_tenant(const struct nx_action *a);
const char *nx_action_host(const struct nx_action *a);
const char *nx_action_appliance(const struct nx_action *a);

/* The reports of a run are in report.h. */

#endif
