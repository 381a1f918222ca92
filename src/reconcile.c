/* reconcile.c: discover, diff and execute through the provider interface. */
#include "config.h"

#include "reconcile.h"
#include "image.h"
#include "log.h"
#include "payload.h"
#include "pki.h"
#include "tenant_side.h"
#include "strbuf.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool tenant_selected(const struct nx_run_opts *o, const char *name)
{
    if (!o->tenants)
        return true;
    for (const char *const *t = o->tenants; *t; t++)
        if (strcmp(*t, name) == 0)
            return true;
    return false;
}

static size_t tenant_index(const struct nx_model *m, const struct nx_tenant *t)
{
    (void)m;
    return t->idx;
}

/* Providers that are not safe for concurrent calls get one at a time per
 * connection. CALL(c, expr) evaluates expr with the connection held; every
 * provider call on an open connection goes through it. */
static void conn_enter(struct nx_conn *c)
{
    if (!c->ops->concurrent)
        pthread_mutex_lock(&c->call_lock);
}

static void conn_leave(struct nx_conn *c)
{
    if (!c->ops->concurrent)
        pthread_mutex_unlock(&c->call_lock);
}

#define CALL(c, expr)                                                                              \
    ({                                                                                             \
        conn_enter(c);                                                                             \
        int rc_ = (expr);                                                                          \
        conn_leave(c);                                                                             \
        rc_;                                                                                       \
    })

static int open_connections(struct nx_run *run)
{
    struct nx_model *m = run->model;
    const struct nx_run_opts *o = run->opts;
    struct nx_map by_uri;
    nx_map_init(&by_uri);
    run->host_conn = nx_calloc(m->n_hosts + 1, sizeof(*run->host_conn));
    run->conns = nx_calloc(m->n_hosts + 1, sizeof(*run->conns));
    int ret = 0;
    for (size_t i = 0; i < m->n_hosts; i++) {
        const char *uri = o->connect ? o->connect : m->hosts[i]->uri;
        struct nx_conn *c = nx_map_get(&by_uri, uri);
        if (!c) {
            nx_info("connecting to %s", uri);
            struct nx_conn_opts co = o->conn;
            const struct nx_cred_entry *ce = o->creds ? nx_credentials_for(o->creds, uri) : NULL;
            if (ce) {
                co.user = ce->user;
                co.password = ce->password;
            }
            if (nx_conn_open(uri, &co, &c) < 0) {
                nx_error_prefix("host '%s': ", m->hosts[i]->name);
                ret = -1;
                break;
            }
            run->conns[run->n_conns++] = c;
            nx_map_put(&by_uri, c->uri, c);
        }
        run->host_conn[i] = c;
    }
    nx_map_release(&by_uri);
    return ret;
}

bool nx_run_in_scope(const struct nx_run *run, const struct nx_appliance_spec *s)
{
    return s->role == run->opts->role && tenant_selected(run->opts, s->tenant->name);
}

static void check_placements(struct nx_run *run)
{
    for (size_t i = 0; i < run->desired->n; i++) {
        const struct nx_appliance_spec *s = run->desired->items[i];
        if (!nx_run_in_scope(run, s))
            continue;
        struct nx_conn *c = run->host_conn[s->host->idx];
        nx_error_clear();
        if (c->ops->max_vnics && s->n_vnics > c->ops->max_vnics) {
            nx_diag_add(&run->problems, s->tenant->loc.file, s->tenant->loc.line,
                        "tenant '%s', host '%s': the appliance would need %zu vNICs (the "
                        "production network and %zu VLANs), more than the %u a VM can have on %s; "
                        "move some of the tenant's hardware plans to another host",
                        s->tenant->name, s->host->name, s->n_vnics, s->n_vnics - 1,
                        c->ops->max_vnics, c->ops->name);
            run->tenant_refused[tenant_index(run->model, s->tenant)] = true;
            continue;
        }
        if (CALL(c, c->ops->check_placement(c, s)) < 0) {
            nx_diag_add(&run->problems, s->tenant->loc.file, s->tenant->loc.line,
                        "tenant '%s', host '%s': %s", s->tenant->name, s->host->name,
                        nx_error_msg());
            run->tenant_refused[tenant_index(run->model, s->tenant)] = true;
        }
    }
}

static int list_all(struct nx_run *run)
{
    for (size_t i = 0; i < run->n_conns; i++) {
        struct nx_conn *c = run->conns[i];
        size_t before = run->obs.n;
        if (CALL(c, c->ops->list_owned(c, &run->obs)) < 0) {
            nx_error_prefix("%s: listing appliances: ", c->uri);
            return -1;
        }
        for (size_t j = before; j < run->obs.n; j++)
            run->obs.items[j]->conn = c;
    }
    return 0;
}

const char *nx_action_tenant(const struct nx_action *a)
{
    return a->spec ? a->spec->tenant->name : a->obs->marker.tenant;
}

const char *nx_action_host(const struct nx_action *a)
{
    return a->spec ? a->spec->host->name : a->obs->marker.host;
}

const char *nx_action_appliance(const struct nx_action *a)
{
    if (a->kind == NX_ACT_REMOVE)
        return a->obs->name;
    return a->obs ? a->obs->name : a->spec->name;
}

/* Actions of one appliance are adjacent: same spec (or same obs for removals). */
static bool same_group(const struct nx_action *a, const struct nx_action *b)
{
    if (a->kind == NX_ACT_REMOVE || b->kind == NX_ACT_REMOVE)
        return false; /* each removal stands alone */
    return a->spec == b->spec;
}

static bool refused(const struct nx_run *run, const struct nx_action *a)
{
    if (!a->spec)
        return false;
    return run->tenant_refused[tenant_index(run->model, a->spec->tenant)];
}

static void fail_rest(struct nx_run *run, size_t from, size_t to, const char *why)
{
    for (size_t k = from; k < to; k++) {
        if (run->status[k] != NX_ST_PLANNED)
            continue;
        run->status[k] = NX_ST_SKIPPED;
        run->errors[k] = nx_strdup(why);
    }
}

/* Action idx failed with nx_error set. */
static int fail_step(struct nx_run *run, size_t idx)
{
    pthread_mutex_lock(&run->lock);
    run->n_failed++;
    pthread_mutex_unlock(&run->lock);
    run->status[idx] = NX_ST_FAILED;
    run->errors[idx] = nx_strdup(nx_error_msg());
    nx_log(NX_LOG_ERROR, "%s", nx_error_msg());
    return -1;
}

static int do_call(struct nx_run *run, struct nx_conn *c, size_t idx, int rc)
{
    pthread_mutex_lock(&run->lock);
    c->n_changes++;
    run->n_changes++;
    pthread_mutex_unlock(&run->lock);
    if (rc < 0)
        return fail_step(run, idx);
    run->status[idx] = NX_ST_DONE;
    return 0;
}

/* A spec's payload is rendered when it is about to be sent and freed right
 * after (attach_credentials() keeps only digests): the payload of a new
 * appliance gets its tunnel credentials here, issued if need be, in the
 * worker that creates it. The spec belongs to run->desired, and only the
 * worker of its tenant touches it. */
static int need_payload(struct nx_run *run, const struct nx_action *a)
{
    struct nx_appliance_spec *spec = (struct nx_appliance_spec *)a->spec;
    if (spec->payload)
        return 0;
    if (!run->opts->tunnel_credentials) /* never dropped then */
        return nx_error_set(NX_EX_SOFTWARE, "%s: no payload", spec->name);
    return nx_payload_attach_spec(spec, run->model, run->pki, false);
}

/* The image of a spec is staged (uploaded where the provider keeps images)
 * before the create or set-image that needs it; the provider remembers what
 * it staged, so this costs one check per store and run. */
static int stage_image(struct nx_run *run, struct nx_conn *c, size_t idx,
                       const struct nx_appliance_spec *spec)
{
    if (!spec->image || !c->ops->stage_image)
        return 0;
    if (CALL(c, c->ops->stage_image(c, spec)) < 0) {
        nx_error_prefix("%s: staging the appliance image %s: ", spec->name, spec->image->name);
        return fail_step(run, idx);
    }
    return 0;
}

static void execute_group(struct nx_run *run, size_t start, size_t end)
{
    struct nx_action *acts = run->actions.items;
    const struct nx_appliance_obs *cur = NULL;
    struct nx_conn *c = NULL;
    for (size_t i = start; i < end; i++) {
        struct nx_action *a = &acts[i];
        if (run->status[i] != NX_ST_PLANNED)
            continue;
        nx_error_clear();
        if (a->kind == NX_ACT_REMOVE) {
            c = a->obs->conn;
            nx_info("removing %s (%s)", a->obs->name, a->reason);
            do_call(run, c, i, CALL(c, c->ops->remove(c, a->obs)));
            continue;
        }
        if (!cur)
            cur = a->obs;
        if (cur)
            run->subjects[i] = cur->id;
        c = a->spec ? run->host_conn[a->spec->host->idx] : a->obs->conn;
        if (cur && cur->conn)
            c = cur->conn;
        int rc = 0;
        switch (a->kind) {
        case NX_ACT_CREATE: {
            struct nx_appliance_obs *made = NULL;
            if (need_payload(run, a) < 0) {
                rc = fail_step(run, i);
                break;
            }
            if ((rc = stage_image(run, c, i, a->spec)) < 0) {
                nx_payload_drop((struct nx_appliance_spec *)a->spec);
                break;
            }
            nx_info("creating %s", a->spec->name);
            rc = do_call(run, c, i, CALL(c, c->ops->create(c, a->spec, &made)));
            nx_payload_drop((struct nx_appliance_spec *)a->spec); /* see need_payload */
            if (rc == 0) {
                made->conn = c;
                pthread_mutex_lock(&run->lock);
                nx_obs_list_add(&run->created, made);
                pthread_mutex_unlock(&run->lock);
                cur = made;
                run->subjects[i] = made->id;
            }
            break;
        }
        case NX_ACT_REMOVE_VNIC:
        case NX_ACT_ADD_VNIC: {
            /* all vNIC changes of the appliance in one provider call */
            const struct nx_vnic_spec **add = nx_calloc(end - i, sizeof(*add));
            const struct nx_vnic_obs **rem = nx_calloc(end - i, sizeof(*rem));
            size_t n_add = 0, n_rem = 0, last = i;
            for (size_t k = i; k < end; k++) {
                if (acts[k].kind == NX_ACT_ADD_VNIC)
                    add[n_add++] = acts[k].vnic;
                else if (acts[k].kind == NX_ACT_REMOVE_VNIC)
                    rem[n_rem++] = acts[k].ovnic;
                else
                    continue;
                last = k;
            }
            nx_info("changing vNICs of %s: +%zu -%zu", cur->name, n_add, n_rem);
            rc = do_call(run, c, i,
                         CALL(c, c->ops->update_vnics(c, cur, a->spec, add, n_add, rem, n_rem)));
            for (size_t k = i + 1; k <= last; k++) {
                if (acts[k].kind != NX_ACT_ADD_VNIC && acts[k].kind != NX_ACT_REMOVE_VNIC)
                    continue;
                run->status[k] = run->status[i];
                if (rc < 0)
                    run->errors[k] = nx_strdup(run->errors[i]);
            }
            free(add);
            free(rem);
            break;
        }
        case NX_ACT_SET_PAYLOAD:
            if (need_payload(run, a) < 0) {
                rc = fail_step(run, i);
                break;
            }
            nx_info("updating the payload of %s", cur->name);
            rc = do_call(run, c, i, CALL(c, c->ops->set_payload(c, cur, a->spec)));
            nx_payload_drop((struct nx_appliance_spec *)a->spec); /* see need_payload */
            break;
        case NX_ACT_SET_IMAGE:
            if (!c->ops->set_image) {
                nx_error_set(NX_EX_SOFTWARE, "%s: the %s provider cannot change the image",
                             cur->name, c->ops->name);
                rc = fail_step(run, i);
                break;
            }
            if ((rc = stage_image(run, c, i, a->spec)) < 0)
                break;
            nx_info("putting image %s in %s", a->spec->image->name, cur->name);
            rc = do_call(run, c, i, CALL(c, c->ops->set_image(c, cur, a->spec)));
            break;
        case NX_ACT_POWER_ON:
        case NX_ACT_POWER_OFF:
            nx_info("powering %s %s", a->kind == NX_ACT_POWER_ON ? "on" : "off", cur->name);
            rc = do_call(run, c, i, CALL(c, c->ops->set_power(c, cur, a->kind == NX_ACT_POWER_ON)));
            break;
        default:
            break;
        }
        if (rc < 0) {
            fail_rest(run, i + 1, end, "not attempted: an earlier step of this appliance failed");
            return;
        }
    }
}

/* The actions of one tenant: [start, end). Actions are sorted by key, whose
 * first fields are role and tenant, so a tenant's actions are adjacent. */
struct range {
    size_t start, end;
};

struct work {
    struct nx_run *run;
    struct range *ranges;
    size_t n_ranges, next;
};

static void execute_tenant(struct nx_run *run, struct range r)
{
    size_t i = r.start;
    while (i < r.end) {
        size_t j = i + 1;
        while (j < r.end && same_group(&run->actions.items[i], &run->actions.items[j]))
            j++;
        if (refused(run, &run->actions.items[i]))
            fail_rest(run, i, j, "not attempted: the tenant failed a check (see above)");
        else
            execute_group(run, i, j);
        i = j;
    }
    bool failed = false;
    for (size_t k = r.start; k < r.end; k++)
        failed |= run->status[k] == NX_ST_FAILED || run->status[k] == NX_ST_SKIPPED;
    pthread_mutex_lock(&run->lock);
    run->tenants_done++;
    run->tenants_failed += failed;
    if (run->opts->progress)
        run->opts->progress(run->opts->progress_ud, nx_action_tenant(&run->actions.items[r.start]),
                            failed, run->tenants_done, run->tenants_failed, run->tenants_total);
    pthread_mutex_unlock(&run->lock);
}

static void *worker(void *arg)
{
    struct work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->run->lock);
        size_t k = w->next < w->n_ranges ? w->next++ : w->n_ranges;
        pthread_mutex_unlock(&w->run->lock);
        if (k == w->n_ranges)
            return NULL;
        execute_tenant(w->run, w->ranges[k]);
    }
}

static void execute(struct nx_run *run)
{
    size_t n = run->actions.n, n_ranges = 0, alloc = 0;
    struct range *ranges = NULL;
    for (size_t i = 0; i < n;) {
        const char *t = nx_action_tenant(&run->actions.items[i]);
        size_t j = i + 1;
        while (j < n && strcmp(nx_action_tenant(&run->actions.items[j]), t) == 0)
            j++;
        NX_GROW(ranges, alloc, n_ranges + 1);
        ranges[n_ranges].start = i;
        ranges[n_ranges++].end = j;
        i = j;
    }
    run->tenants_total = n_ranges;
    struct work w = {run, ranges, n_ranges, 0};
    unsigned jobs = run->opts->jobs ? run->opts->jobs : 1;
    if (jobs > n_ranges)
        jobs = (unsigned)n_ranges;
    if (jobs <= 1) {
        worker(&w);
    } else {
        pthread_t *tids = nx_calloc(jobs, sizeof(*tids));
        unsigned started = 0;
        for (unsigned t = 0; t < jobs; t++)
            if (pthread_create(&tids[t], NULL, worker, &w) == 0)
                started++;
            else
                break;
        if (started == 0)
            worker(&w);
        for (unsigned t = 0; t < started; t++)
            pthread_join(tids[t], NULL);
        free(tids);
    }
    free(ranges);
}

/* One pass over the actions; tenants are found by name in the model. */
static void compute_results(struct nx_run *run)
{
    struct nx_model *m = run->model;
    run->tenant_results = nx_calloc(m->n_tenants + 1, sizeof(*run->tenant_results));
    for (size_t i = 0; i < run->actions.n; i++) {
        const struct nx_tenant *t = nx_model_tenant(m, nx_action_tenant(&run->actions.items[i]));
        if (!t)
            continue;
        enum nx_tenant_result *r = &run->tenant_results[t->idx];
        enum nx_tenant_result now = run->status[i] == NX_ST_DONE      ? NX_TR_CHANGED
                                    : run->status[i] == NX_ST_PLANNED ? NX_TR_PLANNED
                                                                      : NX_TR_FAILED;
        if (now > *r)
            *r = now;
    }
    for (size_t t = 0; t < m->n_tenants; t++)
        if (run->tenant_refused[t])
            run->tenant_results[t] = NX_TR_REFUSED;
}

/* Deferred changes (e.g. power-on waits batched by the provider) are
 * confirmed before anything is reported: a failure marks its action. */
static void settle(struct nx_run *run)
{
    for (size_t k = 0; k < run->n_conns; k++) {
        struct nx_conn *c = run->conns[k];
        struct nx_deferred_failure *f = NULL;
        size_t n = 0;
        if (!c->ops->settle)
            continue;
        nx_error_clear();
        if (CALL(c, c->ops->settle(c, &f, &n)) < 0 && n == 0)
            nx_warn("%s: confirming changes: %s", c->uri, nx_error_msg());
        for (size_t j = 0; j < n; j++) {
            bool found = false;
            /* a power action first; else the create (confirmed late too) */
            for (size_t i = 0; i < 2 * run->actions.n && !found; i++) {
                size_t a = i % run->actions.n;
                enum nx_action_kind kind = run->actions.items[a].kind;
                bool want = i < run->actions.n ? kind == NX_ACT_POWER_ON || kind == NX_ACT_POWER_OFF
                                               : kind == NX_ACT_CREATE;
                if (!want || run->status[a] != NX_ST_DONE || !run->subjects[a] ||
                    strcmp(run->subjects[a], f[j].appliance_id) != 0)
                    continue;
                found = true;
                run->status[a] = NX_ST_FAILED;
                run->errors[a] = nx_strdup(f[j].error);
                run->n_failed++;
            }
            if (!found)
                nx_log(NX_LOG_ERROR, "%s", f[j].error);
        }
        nx_deferred_free(f, n);
    }
}

/* Tenant side: detect production networks where the configuration leaves
 * them open, then resolve which appliances are wanted. */
static int resolve_tenant_side(struct nx_run *run)
{
    struct nx_model *m = run->model;
    bool *need = nx_calloc(m->n_hosts + 1, sizeof(bool));
    struct nx_net_usage **usage = nx_calloc(m->n_hosts + 1, sizeof(*usage));
    size_t *n_usage = nx_calloc(m->n_hosts + 1, sizeof(size_t));
    nx_tside_needs_usage(m, need);
    for (size_t i = 0; i < m->n_hosts; i++) {
        struct nx_conn *c = run->host_conn[i];
        if (!need[i] || !c->ops->network_usage)
            continue;
        const char *target = m->hosts[i]->target ? m->hosts[i]->target : m->hosts[i]->name;
        nx_error_clear();
        if (CALL(c, c->ops->network_usage(c, target, &usage[i], &n_usage[i])) < 0) {
            nx_diag_add(&run->problems, m->hosts[i]->loc.file, m->hosts[i]->loc.line,
                        "source host '%s': detecting the production network: %s", m->hosts[i]->name,
                        nx_error_msg());
            usage[i] = NULL;
        } else if (!usage[i]) {
            usage[i] = nx_calloc(1, sizeof(**usage)); /* known: no networks */
        }
    }
    if (run->problems.n == 0)
        nx_tside_resolve(m, usage, n_usage, &run->problems, &run->notes);
    for (size_t i = 0; i < m->n_hosts; i++)
        nx_net_usage_free(usage[i], n_usage[i]);
    free(usage);
    free(n_usage);
    free(need);
    return run->problems.n ? -1 : 0;
}

/* Payload digests, with tunnel credentials unless the run attaches none
 * (after the inventory, before the diff; the desired state renders no
 * payload). What a check stamp vouches for is read as it is; the rest needs
 * the full path (decode, verify, maybe issue), which runs here for appliances
 * that exist (the diff compares their payload digests) and in a dry run. For
 * appliances still to be created it is left to the worker that creates them
 * (need_payload), so that issuing 1,000 tenants' certificates overlaps the
 * hypervisor's round trips instead of preceding them all. Payloads are not
 * kept, only digests: need_payload renders what must be sent. The state
 * directory's lock is held only while credentials are read or issued. */
static int attach_credentials(struct nx_run *run)
{
    struct nx_model *m = run->model;
    const struct nx_run_opts *o = run->opts;
    if (!o->tunnel_credentials) { /* payloads without, kept until sent */
        for (size_t i = 0; i < run->desired->n; i++)
            if (nx_run_in_scope(run, run->desired->items[i]))
                nx_payload_attach_cred(run->desired->items[i], m, NULL);
        return 0;
    }
    if (m->kind != NX_KIND_TENANT &&
        nx_pki_open(o->state_dir, o->dry_run ? NX_PKI_READONLY : 0, &run->pki) < 0)
        return -1;
    struct nx_map seen;
    nx_map_init(&seen);
    char **keys = nx_calloc(run->obs.n + 1, sizeof(*keys));
    for (size_t i = 0; i < run->obs.n; i++) {
        const struct nx_marker *mk = &run->obs.items[i]->marker;
        keys[i] = nx_appliance_key(mk->role, mk->tenant, mk->host, mk->net);
        nx_map_put(&seen, keys[i], keys[i]);
    }
    int ret = 0;
    for (size_t i = 0; ret == 0 && i < run->desired->n; i++) {
        struct nx_appliance_spec *s = run->desired->items[i];
        int rc = 0;
        if (nx_run_in_scope(run, s)) {
            rc = nx_payload_attach_spec(s, m, run->pki, true);
            if (rc == 1 && (o->dry_run || nx_map_get(&seen, s->key)))
                rc = nx_payload_attach_spec(s, m, run->pki, false);
        }
        if (rc < 0)
            ret = -1;
        nx_payload_drop(s);
    }
    nx_map_release(&seen);
    for (size_t i = 0; i < run->obs.n; i++)
        free(keys[i]);
    free(keys);
    nx_pki_unlock(run->pki);
    return ret;
}

/* The appliance image every appliance boots: --image, else the plan's
 * <defaults image=>, else the installed one if there is one. A named image
 * that cannot be read fails the run before any change. */
static int load_image(struct nx_run *run)
{
    struct nx_model *m = run->model;
    const struct nx_run_opts *o = run->opts;
    if (m->image || o->no_image || o->remove_all)
        return 0;
    const char *file = o->image_file ? o->image_file : m->image_file;
    if (!file && o->image_default && access(NX_IMAGE_DEFAULT, F_OK) == 0)
        file = NX_IMAGE_DEFAULT;
    if (!file)
        return 0;
    if (nx_image_load(file, &m->image) < 0) {
        if (!o->image_file && m->image_file)
            nx_error_prefix("%s:%u: ", m->image_loc.file, m->image_loc.line);
        return -1;
    }
    nx_info("appliance image %s: %s, %llu bytes", m->image->file, m->image->id,
            (unsigned long long)m->image->size);
    return 0;
}

static const char *const phase_names[NX_PHASE_COUNT][2] = {
    {"connect", "connect"},
    {"desired", "desired state"},
    {"inventory", "placement checks and inventory"},
    {"credentials", "tunnel credentials"},
    {"diff", "diff"},
    {"changes", "changes"},
    {"settle", "settle"},
};

const char *nx_run_phase_name(enum nx_run_phase p)
{
    return (size_t)p < NX_PHASE_COUNT ? phase_names[p][0] : "?";
}

/* where a run's time goes, phase by phase: run->phase_s, and -vv */
static void phase_done(struct nx_run *run, double *t0, enum nx_run_phase phase)
{
    double t = nx_monotonic_s();
    run->phase_s[phase] = t - *t0;
    nx_debug("phase %s: %.3f s", phase_names[phase][1], t - *t0);
    *t0 = t;
}

int nx_run_execute(struct nx_model *m, const struct nx_run_opts *opts, struct nx_run *run)
{
    memset(run, 0, sizeof(*run));
    run->model = m;
    run->opts = opts;
    pthread_mutex_init(&run->lock, NULL);
    nx_diag_init(&run->problems);
    nx_diag_init(&run->notes);
    run->tenant_refused = nx_calloc(m->n_tenants + 1, sizeof(bool));
    double t0 = nx_monotonic_s();

    if (load_image(run) < 0 || open_connections(run) < 0) {
        run->exit_code = nx_error_code();
        return run->exit_code;
    }
    if (m->kind == NX_KIND_TENANT && !m->tside.resolved && resolve_tenant_side(run) < 0) {
        run->exit_code = NX_EX_DATAERR;
        return run->exit_code;
    }
    /* MAC ranges come from the provider behind each host's URI */
    const struct nx_mac_range **ranges = nx_calloc(m->n_hosts + 1, sizeof(*ranges));
    for (size_t i = 0; i < m->n_hosts; i++)
        ranges[i] = run->host_conn[i]->ops->mac_range;
    phase_done(run, &t0, NX_PHASE_CONNECT);
    run->desired = nx_desired_compute(m, ranges);
    free(ranges);
    phase_done(run, &t0, NX_PHASE_DESIRED);
    check_placements(run);
    if (list_all(run) < 0) {
        run->exit_code = nx_error_code();
        return run->exit_code;
    }
    phase_done(run, &t0, NX_PHASE_INVENTORY);
    if (!opts->remove_all && attach_credentials(run) < 0) {
        run->exit_code = nx_error_code();
        return run->exit_code;
    }
    phase_done(run, &t0, NX_PHASE_CREDENTIALS);
    struct nx_scope scope = {opts->role, opts->tenants, m};
    nx_diff(opts->remove_all ? &run->empty : run->desired, &run->obs, &scope, &run->actions);
    phase_done(run, &t0, NX_PHASE_DIFF);
    run->status = nx_calloc(run->actions.n + 1, sizeof(*run->status));
    run->errors = nx_calloc(run->actions.n + 1, sizeof(*run->errors));
    run->subjects = nx_calloc(run->actions.n + 1, sizeof(*run->subjects));
    for (size_t i = 0; i < run->actions.n_skipped; i++)
        nx_warn("%s: marked by a newer netext-deploy (revision %u); left alone",
                run->actions.skipped[i]->name, run->actions.skipped[i]->marker.revision);
    for (size_t i = 0; !m->image && !opts->no_image && i < run->actions.n; i++)
        if (run->actions.items[i].kind == NX_ACT_CREATE) {
            nx_warn("no appliance image (--image FILE, <defaults image=>, or %s): new "
                    "appliances boot nothing; build one with 'make appliance'",
                    NX_IMAGE_DEFAULT);
            break;
        }

    if (opts->dry_run) {
        for (size_t i = 0; i < run->actions.n; i++)
            if (refused(run, &run->actions.items[i])) {
                run->status[i] = NX_ST_SKIPPED;
                run->errors[i] = nx_strdup("not attempted: the tenant failed a check");
            }
    } else {
        execute(run);
        phase_done(run, &t0, NX_PHASE_CHANGES);
        settle(run);
        phase_done(run, &t0, NX_PHASE_SETTLE);
    }
    compute_results(run);
    /* credentials issued during the run are made durable here, at once */
    int synced = nx_pki_sync(run->pki);
    if (synced < 0)
        nx_log(NX_LOG_ERROR, "%s", nx_error_msg());
    if (run->n_failed)
        run->exit_code = NX_EX_FAILED;
    else if (run->problems.n)
        run->exit_code = NX_EX_DATAERR;
    else if (synced < 0)
        run->exit_code = NX_EX_IOERR;
    else
        run->exit_code = NX_EX_OK;
    return run->exit_code;
}

const char *nx_tenant_result_name(enum nx_tenant_result r)
{
    static const char *const names[] = {"up-to-date", "changed", "planned", "failed", "refused"};
    return (size_t)r < NX_ARRAY_SIZE(names) ? names[r] : "?";
}

enum nx_tenant_result nx_run_tenant_result(const struct nx_run *run, size_t t)
{
    return run->tenant_results ? run->tenant_results[t] : NX_TR_UP_TO_DATE;
}

void nx_run_release(struct nx_run *run)
{
    for (size_t i = 0; i < run->actions.n; i++)
        free(run->errors ? run->errors[i] : NULL);
    free(run->errors);
    free(run->subjects);
    free(run->status);
    nx_actions_release(&run->actions);
    nx_obs_list_release(&run->obs);
    nx_obs_list_release(&run->created);
    for (size_t i = 0; i < run->n_conns; i++)
        nx_conn_close(run->conns[i]);
    free(run->conns);
    free(run->host_conn);
    nx_desired_free(run->desired);
    nx_pki_close(run->pki);
    nx_diag_release(&run->problems);
    nx_diag_release(&run->notes);
    free(run->tenant_refused);
    free(run->tenant_results);
    pthread_mutex_destroy(&run->lock);
    memset(run, 0, sizeof(*run));
}
