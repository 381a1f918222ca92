/* vsphere_vm.c: the changes to appliances: create (CreateVM_Task with every
 * vNIC, the image's CD/DVD drive, the marker and the payload; confirmed in
 * settle with every other create, then powered on), vNICs and payload
 * (ReconfigVM_Task), power, remove. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere_inventory.h"
#include "vsphere_placement.h"
#include "vsphere_session.h"
#include "vsphere_spec.h"
#include "vsphere_tasks.h"
#include "vsphere_vm.h"

/* CreateVM_Task after a transient failure (docs/internals/vsphere.md, "Retries"):
 * - the request certainly did not reach the server (no connection, 502-504):
 *   sent again after the backoff;
 * - it may have run (dropped connection, timeout, truncated answer): after the
 *   backoff, look for a VM carrying the marker; found: that is the result;
 *   not found: look again after the next backoff, never create a second time
 *   (vcsim, unlike vCenter, accepts a second VM of the same name); the tenant
 *   fails if it never shows up, and the next run finds or creates it.
 * Sets *task (to confirm later) or, for a found VM, *vm. */
static int create_vm(struct vs_conn *c, const char *body, const char *folder, const char *marker,
                     const char *what, char **vm, char **task)
{
    struct nx_soap_resp r = {0};
    bool maybe_done = false;
    *vm = *task = NULL;
    for (int k = 1;; k++) {
        int transient = NX_SOAP_PERMANENT;
        int rc = 0;
        if (!maybe_done) {
            rc = vs_call_ex(c, "CreateVM_Task", body, &r, NULL, false, NULL, &transient);
            if (rc == 0) {
                *task = nx_soap_child_text(r.body, "returnval");
                nx_soap_resp_release(&r);
                if (!*task)
                    return nx_error_set(NX_EX_PROTOCOL, "%s: CreateVM_Task: no task in the answer",
                                        what);
                return 0;
            }
            if (rc != -1 || transient == NX_SOAP_PERMANENT) {
                nx_error_prefix("%s: ", what);
                return -1;
            }
            maybe_done = transient == NX_SOAP_MAYBE_DONE;
        }
        if (k >= NX_RETRY_ATTEMPTS) {
            if (maybe_done)
                nx_error_set(NX_EX_TEMPFAIL,
                             "%s: CreateVM_Task: the answer was lost and the VM has not appeared "
                             "(looked %d times); not created again: the next run finds it or "
                             "creates it",
                             what, k - 1);
            else
                nx_error_prefix("%s: ", what);
            return -1;
        }
        nx_retry_pause("vsphere", "CreateVM_Task", k);
        if (!maybe_done)
            continue;
        /* did the server create it before the answer was lost? */
        int found = vs_find_vm_by_marker(c, folder, marker, vm);
        if (found < 0) {
            nx_error_prefix("%s: looking for the VM after a lost answer: ", what);
            return -1;
        }
        if (found) {
            nx_info("vsphere: %s: the answer was lost, but the VM %s was created", what, *vm);
            return 0;
        }
    }
}

static void pending_free(struct vs_pending *p)
{
    if (!p)
        return;
    free(p->task);
    free(p->what);
    free(p->name);
    free(p->vm);
    free(p->error);
    free(p);
}

static void fill_obs(struct nx_appliance_obs *o, const char *id,
                     const struct nx_appliance_spec *spec)
{
    o->id = nx_strdup(id);
    o->name = nx_strdup(spec->name);
    nx_marker_from_spec(&o->marker, spec);
    for (size_t i = 0; i < spec->n_vnics; i++) {
        struct nx_vnic_obs *v = nx_obs_add_vnic(o);
        memcpy(v->mac, spec->vnics[i].mac, 6);
        v->vlan = spec->vnics[i].vlan;
        v->network = spec->vnics[i].network ? nx_strdup(spec->vnics[i].network) : NULL;
    }
}

int vs_create(struct nx_conn *base, const struct nx_appliance_spec *spec,
              struct nx_appliance_obs **out)
{
    struct vs_conn *c = base->priv;
    struct vs_resolved r;
    struct strbuf sb = STRBUF_INIT;
    char *folder = NULL, *pool = NULL, *vm = NULL, *what = NULL;
    int ret = -1;
    *out = NULL;
    if (vs_resolve(c, spec, &r) < 0)
        goto cleanup;
    const char *fname = spec->placement.folder ? spec->placement.folder : NX_DEFAULT_FOLDER;
    const char *pname =
        spec->placement.resource_pool ? spec->placement.resource_pool : NX_DEFAULT_POOL;
    if (vs_ensure_container(c, "Folder", "Folder", r.dc->vm_folder, fname, &folder) < 0 ||
        vs_ensure_container(c, "ResourcePool", "ResourcePool", r.cr->root_pool, pname, &pool) < 0)
        goto cleanup;

    vs_spec_create_vm(&sb, spec, &r, folder, pool);
    what = nx_asprintf("creating %s", spec->name);
    {
        char *task = NULL;
        char *marker = vs_marker_text(spec, spec->image ? spec->image->id : "");
        int rc = create_vm(c, sb.buf, folder, marker, what, &vm, &task);
        free(marker);
        if (rc < 0)
            goto cleanup;
        if (task) {
            /* confirmed in vs_settle with every other create: the task id
             * stands for the appliance until then */
            struct vs_pending *p = nx_calloc(1, sizeof(*p));
            p->task = task;
            p->what = nx_strdup(what);
            p->name = nx_strdup(spec->name);
            pthread_mutex_lock(&c->lock);
            if (!c->pending_map.slots)
                nx_map_init(&c->pending_map);
            NX_GROW(c->pending, c->alloc_pending, c->n_pending + 1);
            c->pending[c->n_pending++] = p;
            nx_map_put(&c->pending_map, p->task, p);
            pthread_mutex_unlock(&c->lock);
            vm = nx_strdup(task);
        }
    }
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    fill_obs(o, vm, spec);
    *out = o;
    ret = 0;
cleanup:
    free(r.nics);
    free(folder);
    free(pool);
    free(vm);
    free(what);
    strbuf_release(&sb);
    return ret;
}

static const char *nic_device_type(const struct vs_conn *c, const char *vm, const char *key)
{
    const struct vs_obj *o = vs_inv_get(c, vm);
    for (size_t i = 0; o && key && i < o->n_nics; i++)
        if (nx_str_eq(o->nics[i].key, key))
            return o->nics[i].device_type;
    return "VirtualEthernetCard";
}

int vs_update_vnics(struct nx_conn *base, const struct nx_appliance_obs *obs,
                    const struct nx_appliance_spec *spec, const struct nx_vnic_spec *const *add,
                    size_t n_add, const struct nx_vnic_obs *const *remove, size_t n_remove)
{
    struct vs_conn *c = base->priv;
    struct strbuf sb = STRBUF_INIT;
    struct vs_backing *b = nx_calloc(n_add + 1, sizeof(*b));
    char *what = nx_asprintf("changing the vNICs of %s", obs->name);
    int ret = -1;
    const struct vs_obj *host = NULL;
    if (vs_inventory_load(c) < 0)
        goto cleanup;
    pthread_mutex_lock(&c->lock);
    if (n_add) {
        if (!(host = vs_find_host(c, vs_host_target(spec))))
            goto unlock;
        for (size_t i = 0; i < n_add; i++)
            if (vs_resolve_vnic(c, host, add[i], &b[i]) < 0)
                goto unlock;
    }
    nx_soap_begin(&sb, "ReconfigVM_Task", "VirtualMachine", obs->id);
    strbuf_addstr(&sb, "<spec>");
    for (size_t i = 0; i < n_remove; i++) {
        if (!remove[i]->id || !*remove[i]->id) {
            nx_error_set(NX_EX_SOFTWARE, "%s: vNIC without a device key", what);
            goto unlock;
        }
        vs_spec_remove_nic(&sb, nic_device_type(c, obs->id, remove[i]->id), remove[i]->id);
    }
    for (size_t i = 0; i < n_add; i++)
        vs_spec_nic(&sb, -100 - (int)i, add[i], &b[i]);
    strbuf_addstr(&sb, "</spec>");
    nx_soap_end(&sb, "ReconfigVM_Task");
    pthread_mutex_unlock(&c->lock);
    /* not repeated on a lost answer: a second add would add the vNICs twice;
     * the next run sees what happened and converges */
    ret = vs_run_task(c, "ReconfigVM_Task", sb.buf, what, NULL, NULL);
    goto cleanup;
unlock:
    pthread_mutex_unlock(&c->lock);
cleanup:
    free(b);
    free(what);
    strbuf_release(&sb);
    return ret;
}

int vs_set_payload(struct nx_conn *base, const struct nx_appliance_obs *obs,
                   const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = base->priv;
    struct strbuf sb = STRBUF_INIT;
    char *what = nx_asprintf("updating the payload of %s", obs->name);
    nx_soap_begin(&sb, "ReconfigVM_Task", "VirtualMachine", obs->id);
    strbuf_addstr(&sb, "<spec>");
    vs_spec_payload(&sb, spec, obs->marker.image);
    strbuf_addstr(&sb, "</spec>");
    nx_soap_end(&sb, "ReconfigVM_Task");
    /* setting extraConfig values again is harmless: repeated when lost */
    struct vs_task_opts o = {.retry = true};
    int ret = vs_run_task(c, "ReconfigVM_Task", sb.buf, what, &o, NULL);
    free(what);
    strbuf_release(&sb);
    return ret;
}

/* defer: wait later (vs_settle), reporting a failure for appliance id `defer`;
 * *fault (fault may be NULL): as vs_run_task's */
static int power(struct vs_conn *c, const char *vm, const char *name, bool on, const char *defer,
                 char **fault)
{
    struct strbuf sb = STRBUF_INIT;
    const char *method = on ? "PowerOnVM_Task" : "PowerOffVM_Task";
    char *what = nx_asprintf("powering %s %s", on ? "on" : "off", name);
    nx_soap_begin(&sb, method, "VirtualMachine", vm);
    nx_soap_end(&sb, method);
    /* refused because the VM is in that state already: done */
    struct vs_task_opts o = {.retry = true, .done_fault = "InvalidPowerState", .defer = defer};
    int ret = vs_run_task(c, method, sb.buf, what, &o, fault);
    free(what);
    strbuf_release(&sb);
    return ret;
}

struct power_job {
    struct vs_conn *c;
    struct vs_pending **p;
    size_t n, next;
    pthread_mutex_t lock;
};

static void *power_worker(void *arg)
{
    struct power_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next < j->n ? j->next++ : j->n;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->n)
            return NULL;
        struct vs_pending *p = j->p[i];
        if (!p->vm || !p->power_on)
            continue;
        nx_error_clear();
        if (power(j->c, p->vm, p->name, true, p->task, NULL) < 0)
            p->error = nx_strdup(nx_error_msg());
    }
}

/* Creates (and the power-ons after them) are confirmed here, for all
 * appliances at once: one wait round usually reports every CreateVM task,
 * then the new VMs are powered on (as many at a time as there were
 * connections: the run's concurrency), and one last round confirms those. */
int vs_settle(struct nx_conn *base, struct nx_deferred_failure **out, size_t *n)
{
    struct vs_conn *c = base->priv;
    pthread_mutex_lock(&c->lock);
    struct vs_pending **p = c->pending;
    size_t np = c->n_pending;
    c->pending = NULL;
    c->n_pending = c->alloc_pending = 0;
    nx_map_release(&c->pending_map);
    size_t threads = nx_soap_connections(c->soap);
    pthread_mutex_unlock(&c->lock);
    /* their tasks may have left recentTask already: read them all at once */
    char **ids = nx_calloc(np + 1, sizeof(*ids));
    for (size_t i = 0; i < np; i++)
        ids[i] = p[i]->task;
    if (np && vs_tasks_collect(c, ids, np) < 0)
        nx_warn("%s: reading the create tasks: %s", c->url, nx_error_msg());
    free(ids);
    for (size_t i = 0; i < np; i++) {
        nx_error_clear();
        if (vs_task_wait(c, p[i]->task, p[i]->what, &p[i]->vm, NULL) < 0) {
            p[i]->error = nx_strdup(nx_error_msg());
            NX_FREE(p[i]->vm);
        } else if (!p[i]->vm) {
            p[i]->error = nx_asprintf("%s: the task returned no virtual machine", p[i]->what);
        }
    }
    struct power_job job = {.c = c, .p = p, .n = np};
    pthread_mutex_init(&job.lock, NULL);
    if (threads > 16)
        threads = 16;
    pthread_t *tids = nx_calloc(threads + 1, sizeof(*tids));
    size_t started = 0;
    for (size_t t = 1; t < threads && np > 1; t++)
        if (pthread_create(&tids[started], NULL, power_worker, &job) == 0)
            started++;
    power_worker(&job);
    for (size_t t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    free(tids);
    pthread_mutex_destroy(&job.lock);

    nx_error_clear();
    int ret = vs_tasks_settle(c, out, n);
    char *unconfirmed = ret < 0 ? nx_strdup(nx_error_msg()) : NULL;
    int code = nx_error_code();
    size_t alloc = *n;
    for (size_t i = 0; i < np; i++) {
        if (p[i]->error) {
            /* the create failed (and the power-on after it cannot happen) */
            for (int k = 0; k < (p[i]->vm ? 1 : 1 + p[i]->power_on); k++) {
                NX_GROW(*out, alloc, *n + 1);
                (*out)[*n].appliance_id = nx_strdup(p[i]->task);
                (*out)[(*n)++].error = nx_strdup(p[i]->error);
            }
        }
        pending_free(p[i]);
    }
    free(p);
    /* reported here, as the core reports a change that fails at once */
    for (size_t i = 0; i < *n; i++)
        nx_log(NX_LOG_ERROR, "%s", (*out)[i].error);
    /* what could not be confirmed: the core reports the error only when
     * there is no failure (provider.h), so it is reported here otherwise */
    if (unconfirmed && *n)
        nx_log(NX_LOG_ERROR, "%s", unconfirmed);
    if (unconfirmed)
        nx_error_set(code, "%s", unconfirmed);
    free(unconfirmed);
    return ret;
}

int vs_set_power(struct nx_conn *base, const struct nx_appliance_obs *obs, bool on)
{
    struct vs_conn *c = base->priv;
    if (on) {
        pthread_mutex_lock(&c->lock);
        struct vs_pending *p = c->pending_map.slots ? nx_map_get(&c->pending_map, obs->id) : NULL;
        if (p)
            p->power_on = true; /* right after its creation, in vs_settle */
        pthread_mutex_unlock(&c->lock);
        if (p)
            return 0;
    }
    /* a power-on is confirmed by a later wait (vs_settle): no round trip of
     * its own */
    return power(c, obs->id, obs->name, on, on ? obs->id : NULL, NULL);
}

int vs_remove(struct nx_conn *base, const struct nx_appliance_obs *obs)
{
    struct vs_conn *c = base->priv;
    char *fault = NULL;
    if (obs->powered_on && power(c, obs->id, obs->name, false, NULL, &fault) < 0) {
        bool off = fault && !strcmp(fault, "InvalidPowerState");
        free(fault);
        if (!off)
            return -1;
        nx_error_clear(); /* already off */
    }
    struct strbuf sb = STRBUF_INIT;
    char *what = nx_asprintf("removing %s", obs->name);
    nx_soap_begin(&sb, "Destroy_Task", "VirtualMachine", obs->id);
    nx_soap_end(&sb, "Destroy_Task");
    /* gone already: done */
    struct vs_task_opts o = {.retry = true, .done_fault = "ManagedObjectNotFound"};
    int ret = vs_run_task(c, "Destroy_Task", sb.buf, what, &o, NULL);
    free(what);
    strbuf_release(&sb);
    return ret;
}
