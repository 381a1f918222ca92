/* vsphere_tasks.h: the task layer (uses the session layer only). */
#ifndef NX_VSPHERE_TASKS_H
#define NX_VSPHERE_TASKS_H

#include "vsphere.h"

/* How vs_run_task treats a method. */
struct vs_task_opts {
    bool retry; /* repeat the request on a transient failure */
    /* the fault that, on a repeated request, means the first one did it (the
     * answer was lost): success; for a deferred task, a task failing with it
     * is not reported by vs_tasks_settle either */
    const char *done_fault;
    /* the VM id the task acts on: do not wait now, vs_tasks_settle reports a
     * failure for it; NULL: wait now */
    const char *defer;
};

/* Run a task-returning method and wait for it (or defer it). opts may be
 * NULL (no retry, no done fault, wait now). On -1, *fault (fault may be NULL)
 * is the fault type when the call or the task failed with one ("" if the
 * server named none), NULL otherwise. */
int vs_run_task(struct vs_conn *c, const char *method, const char *body, const char *what,
                const struct vs_task_opts *opts, char **fault);

/* Wait for task (a moref value) to finish; *result gets info.result (may be
 * NULL). what names the operation in messages. On -1, *fault (fault may be
 * NULL) is the task's fault type if the task itself failed ("" if unnamed),
 * NULL if its outcome could not be learned (the wait failed, or the
 * deadline passed). */
int vs_task_wait(struct vs_conn *c, const char *task, const char *what, char **result,
                 char **fault);
/* Remember a task that nobody waits for now; vs_tasks_flush checks it.
 * done_fault: as in struct vs_task_opts (may be NULL). */
void vs_task_defer(struct vs_conn *c, const char *task, const char *what, const char *subject,
                   const char *done_fault);
/* Read the state of these tasks now, in one request (those already known to
 * be finished are skipped); tasks still running are left to vs_task_wait. */
int vs_tasks_collect(struct vs_conn *c, char *const *ids, size_t n);
/* Wait for every deferred task and return those that failed, by VM (for the
 * provider's settle op). -1 (nx_error set, nothing logged) if the outcome of
 * some could not be learned. */
int vs_tasks_settle(struct vs_conn *c, struct nx_deferred_failure **out, size_t *n);
/* Wait for every deferred task; -1 with nx_error set (every such failure,
 * "; "-separated; nothing logged) if the outcome of one could not be learned.
 * Failed tasks are left to vs_tasks_settle. */
int vs_tasks_flush(struct vs_conn *c);
void vs_tasks_release(struct vs_conn *c);

#endif
