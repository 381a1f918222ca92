/* vsphere_tasks.c: waiting for tasks with one PropertyCollector filter.
 *
 * One filter per session watches TaskManager.recentTask (traversed to every
 * Task's info), created at the first wait; WaitForUpdatesEx with the last
 * version then reports every task that changed, so one collector serves every
 * task of the run and no task is polled on its own. Tasks nobody needs to wait
 * for right away (power-on) are deferred: their completion arrives with a
 * later wait, or with vs_tasks_flush() at the end.
 *
 * Under -j N, one thread at a time (c->waiting) runs WaitForUpdatesEx for
 * everybody and records every task it hears of; the others sleep on
 * c->task_cond and look at their task again when it returns.
 *
 * A batch's create and power-on tasks are not waited for through the filter:
 * vs_tasks_collect() reads them all in one RetrievePropertiesEx at settle
 * (recentTask keeps only 200, and vcsim's WaitForUpdatesEx takes >= 250 ms).
 *
 * The filter lives in a session: when the session layer gives one up
 * (c->session_gen changes), the filter is made again at the next wait, and a
 * wait that spanned the change is not trusted. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere_session.h"
#include "vsphere_tasks.h"
#include "xml.h"

#define WAIT_SECONDS 20
#define TASK_DEADLINE_SECONDS 1800

/* c->lock held */
static struct vs_task *find_task(struct vs_conn *c, const char *id)
{
    return c->task_map.slots ? nx_map_get(&c->task_map, id) : NULL;
}

/* c->lock held; task pointers stay valid until vs_tasks_release */
static struct vs_task *get_task(struct vs_conn *c, const char *id)
{
    struct vs_task *t = find_task(c, id);
    if (t)
        return t;
    if (!c->task_map.slots)
        nx_map_init(&c->task_map);
    t = nx_calloc(1, sizeof(*t));
    t->id = nx_strdup(id);
    NX_GROW(c->tasks, c->alloc_tasks, c->n_tasks + 1);
    c->tasks[c->n_tasks++] = t;
    nx_map_put(&c->task_map, t->id, t);
    return t;
}

static void apply_info(struct vs_task *t, xmlNodePtr info)
{
    const char *state = nx_soap_text(nx_soap_child(info, "state"));
    if (!strcmp(state, "success")) {
        t->state = 1;
        free(t->result);
        t->result = nx_soap_child_text(info, "result");
    } else if (!strcmp(state, "error")) {
        struct nx_soap_fault f = {0};
        xmlNodePtr err = nx_soap_child(info, "error");
        nx_soap_fault_from_node(err, &f);
        t->state = -1;
        free(t->error);
        t->error = nx_asprintf("%s%s%s", *f.type ? f.type : "task failed", *f.message ? ": " : "",
                               f.message);
        free(t->fault);
        t->fault = nx_strdup(f.type);
        nx_soap_fault_release(&f);
    }
    if (t->state && t->deferred)
        t->deferred = false; /* a failure is reported by vs_tasks_settle() */
}

/* c->lock held */
static void release_filter(struct vs_conn *c)
{
    NX_FREE(c->task_filter);
    NX_FREE(c->version);
}

/* Called by the waiter only (c->waiting), without c->lock. */
static int create_filter(struct vs_conn *c)
{
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    nx_soap_begin(&sb, "CreateFilter", "PropertyCollector", c->property_collector);
    strbuf_addstr(&sb, "<spec><propSet><type>Task</type><pathSet>info</pathSet></propSet>"
                       "<objectSet>");
    nx_soap_add_moref(&sb, "obj", "TaskManager", c->task_manager);
    strbuf_addstr(&sb, "<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>tasks</name>"
                       "<type>TaskManager</type><path>recentTask</path><skip>false</skip>"
                       "</selectSet></objectSet></spec><partialUpdates>false</partialUpdates>");
    nx_soap_end(&sb, "CreateFilter");
    int rc = vs_call(c, "CreateFilter", sb.buf, &r, NULL);
    strbuf_release(&sb);
    if (rc != 0)
        return -1;
    char *filter = nx_soap_child_text(r.body, "returnval");
    nx_soap_resp_release(&r);
    if (!filter)
        return nx_error_set(NX_EX_PROTOCOL, "CreateFilter: no filter in the answer");
    pthread_mutex_lock(&c->lock);
    release_filter(c);
    c->task_filter = filter;
    c->filter_session = c->session_gen; /* as the old code: the session it was made in */
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* c->lock held: record what one WaitForUpdatesEx answer says about tasks. */
static void apply_updates(struct vs_conn *c, xmlNodePtr rv)
{
    char *v = nx_soap_child_text(rv, "version");
    if (v) {
        free(c->version);
        c->version = v;
    }
    for (xmlNodePtr fs = nx_xml_first_elem(rv); fs; fs = nx_xml_next_elem(fs)) {
        if (strcmp((const char *)fs->name, "filterSet") != 0)
            continue;
        for (xmlNodePtr os = nx_xml_first_elem(fs); os; os = nx_xml_next_elem(os)) {
            if (strcmp((const char *)os->name, "objectSet") != 0)
                continue;
            const char *id = nx_soap_text(nx_soap_child(os, "obj"));
            if (!*id)
                continue;
            for (xmlNodePtr ch = nx_xml_first_elem(os); ch; ch = nx_xml_next_elem(ch)) {
                if (strcmp((const char *)ch->name, "changeSet") != 0 ||
                    strcmp(nx_soap_text(nx_soap_child(ch, "name")), "info") != 0)
                    continue;
                xmlNodePtr val = nx_soap_child(ch, "val");
                /* every task, also those nobody waits for yet: another thread
                 * may have started it and not registered it so far */
                if (val)
                    apply_info(get_task(c, id), val);
            }
        }
    }
}

/* One WaitForUpdatesEx round by the waiter (c->waiting), without c->lock. */
static int wait_round(struct vs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->task_filter && c->filter_session != c->session_gen)
        release_filter(c); /* it went with its session */
    bool need_filter = !c->task_filter;
    pthread_mutex_unlock(&c->lock);
    if (need_filter && create_filter(c) < 0)
        return -1;
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    pthread_mutex_lock(&c->lock);
    unsigned long gen = c->session_gen;
    nx_soap_begin(&sb, "WaitForUpdatesEx", "PropertyCollector", c->property_collector);
    nx_soap_add(&sb, "version", c->version ? c->version : "");
    pthread_mutex_unlock(&c->lock);
    strbuf_addf(&sb, "<options><maxWaitSeconds>%d</maxWaitSeconds></options>", WAIT_SECONDS);
    nx_soap_end(&sb, "WaitForUpdatesEx");
    int attempts = 0;
    int rc = vs_call_ex(c, "WaitForUpdatesEx", sb.buf, &r, NULL, true, &attempts, NULL);
    strbuf_release(&sb);
    if (rc != 0)
        return -1;
    bool resync = attempts > 1;
    pthread_mutex_lock(&c->lock);
    /* unless the session (and our filter with it) was renewed meanwhile */
    if (gen == c->session_gen && c->filter_session == gen && c->task_filter) {
        xmlNodePtr rv = nx_soap_child(r.body, "returnval");
        if (rv)
            apply_updates(c, rv);
        else
            resync = true; /* nothing in maxWaitSeconds */
    }
    pthread_mutex_unlock(&c->lock);
    nx_soap_resp_release(&r);
    return resync ? 1 : 0;
}

/* After a WaitForUpdatesEx answer was lost (a server whose versions do not
 * replay, like vcsim, has then forgotten those changes) or a round that saw
 * nothing: read every unfinished task directly, in one request. */
static int resync_tasks(struct vs_conn *c)
{
    char **ids = NULL;
    size_t n = 0, alloc = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_tasks; i++)
        if (c->tasks[i]->state == 0) {
            NX_GROW(ids, alloc, n + 1);
            ids[n++] = nx_strdup(c->tasks[i]->id);
        }
    pthread_mutex_unlock(&c->lock);
    int rc = n ? vs_tasks_collect(c, ids, n) : 0;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}

int vs_task_wait(struct vs_conn *c, const char *task, const char *what, char **result, char **fault)
{
    int ret = 0;
    if (result)
        *result = NULL;
    if (fault)
        *fault = NULL;
    time_t deadline = time(NULL) + TASK_DEADLINE_SECONDS;
    pthread_mutex_lock(&c->lock);
    struct vs_task *t = get_task(c, task);
    free(t->what);
    t->what = nx_strdup(what);
    t->deferred = false;
    while (t->state == 0) {
        if (time(NULL) > deadline) {
            ret = nx_error_set(NX_EX_TEMPFAIL, "%s: task %s still running after %d s", what, task,
                               TASK_DEADLINE_SECONDS);
            goto out;
        }
        if (c->waiting) {
            /* someone is waiting for all of us */
            pthread_cond_wait(&c->task_cond, &c->lock);
            continue;
        }
        c->waiting = true;
        pthread_mutex_unlock(&c->lock);
        int rc = wait_round(c);
        if (rc > 0)
            rc = resync_tasks(c);
        pthread_mutex_lock(&c->lock);
        c->waiting = false;
        pthread_cond_broadcast(&c->task_cond);
        if (rc < 0) {
            nx_error_prefix("%s: waiting for task %s: ", what, task);
            ret = -1;
            goto out;
        }
    }
    if (t->state < 0) {
        ret = nx_error_set(NX_EX_FAILED, "%s: %s", what, t->error);
        if (fault)
            *fault = nx_strdup(t->fault ? t->fault : "");
    } else if (result && t->result)
        *result = nx_strdup(t->result);
out:
    pthread_mutex_unlock(&c->lock);
    return ret;
}

void vs_task_defer(struct vs_conn *c, const char *task, const char *what, const char *subject,
                   const char *done_fault)
{
    pthread_mutex_lock(&c->lock);
    struct vs_task *t = get_task(c, task);
    free(t->what);
    t->what = nx_strdup(what);
    free(t->subject);
    t->subject = nx_strdup(subject);
    free(t->done_fault);
    t->done_fault = done_fault ? nx_strdup(done_fault) : NULL;
    t->deferred = t->state == 0;
    t->watched = true;
    pthread_mutex_unlock(&c->lock);
}

/* c->lock taken: record one page of Task infos (a vs_retrieve page()). */
static int collect_page(struct vs_conn *c, xmlNodePtr rv, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&c->lock);
    for (xmlNodePtr e = nx_xml_first_elem(rv); e; e = nx_xml_next_elem(e)) {
        if (strcmp((const char *)e->name, "objects") != 0)
            continue;
        const char *id = nx_soap_text(nx_soap_child(e, "obj"));
        if (!*id)
            continue;
        struct vs_task *t = get_task(c, id);
        for (xmlNodePtr p = nx_xml_first_elem(e); p; p = nx_xml_next_elem(p)) {
            if (!strcmp((const char *)p->name, "propSet") && nx_soap_child(p, "val")) {
                apply_info(t, nx_soap_child(p, "val"));
            } else if (!strcmp((const char *)p->name, "missingSet") && t->state == 0) {
                struct nx_soap_fault f = {0};
                nx_soap_fault_from_node(nx_soap_child(p, "fault"), &f);
                t->state = -1;
                free(t->error);
                t->error = nx_asprintf("the task's result is no longer available (%s)",
                                       *f.type ? f.type : "missing");
                free(t->fault);
                t->fault = nx_strdup(f.type);
                nx_soap_fault_release(&f);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* One RetrievePropertiesEx (plus continuations) for the info of up to `n`
 * tasks: the tasks of a whole batch, which may have left
 * TaskManager.recentTask (vCenter and vcsim keep 200) before anyone waited. */
static int collect_some(struct vs_conn *c, char *const *ids, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    nx_soap_begin(&sb, "RetrievePropertiesEx", "PropertyCollector", c->property_collector);
    strbuf_addstr(&sb, "<specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet>");
    for (size_t i = 0; i < n; i++) {
        strbuf_addstr(&sb, "<objectSet>");
        nx_soap_add_moref(&sb, "obj", "Task", ids[i]);
        strbuf_addstr(&sb, "</objectSet>");
    }
    strbuf_addstr(&sb, "</specSet><options></options>");
    nx_soap_end(&sb, "RetrievePropertiesEx");
    int rc = vs_retrieve(c, sb.buf, NULL, collect_page, NULL);
    strbuf_release(&sb);
    return rc == 0 ? 0 : -1;
}

#define COLLECT_CHUNK 2000

int vs_tasks_collect(struct vs_conn *c, char *const *ids, size_t n)
{
    /* only those not known to be finished */
    char **want = nx_calloc(n + 1, sizeof(*want));
    size_t nw = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        struct vs_task *t = find_task(c, ids[i]);
        if (!t || t->state == 0)
            want[nw++] = ids[i];
    }
    pthread_mutex_unlock(&c->lock);
    int ret = 0;
    for (size_t i = 0; i < nw && ret == 0; i += COLLECT_CHUNK)
        ret = collect_some(c, want + i, nw - i < COLLECT_CHUNK ? nw - i : COLLECT_CHUNK);
    free(want);
    return ret;
}

int vs_tasks_settle(struct vs_conn *c, struct nx_deferred_failure **out, size_t *n)
{
    int ret = vs_tasks_flush(c);
    struct nx_deferred_failure *f = NULL;
    size_t nf = 0, alloc = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_tasks; i++) {
        struct vs_task *t = c->tasks[i];
        if (!t->watched || t->state == 0)
            continue;
        t->watched = false;
        if (t->state > 0)
            continue;
        /* e.g. a power-on (-off) refused because the VM already is in that
         * state: done (a request repeated after a lost answer, or someone
         * else) */
        if (t->fault && t->done_fault && !strcmp(t->fault, t->done_fault)) {
            nx_info("vsphere: %s: %s: already done", t->what, t->error);
            continue;
        }
        NX_GROW(f, alloc, nf + 1);
        f[nf].appliance_id = nx_strdup(t->subject ? t->subject : t->id);
        f[nf++].error = nx_asprintf("%s: %s", t->what ? t->what : t->id, t->error);
    }
    pthread_mutex_unlock(&c->lock);
    *out = f;
    *n = nf;
    return ret;
}

/* Add the current error to errs ("; "-separated) and clear it. */
static void keep_error(struct strbuf *errs, int *code)
{
    strbuf_addf(errs, "%s%s", errs->len ? "; " : "", nx_error_msg());
    if (!*code)
        *code = nx_error_code();
    nx_error_clear();
}

int vs_tasks_flush(struct vs_conn *c)
{
    struct strbuf errs = STRBUF_INIT;
    int code = 0;
    /* everything deferred in one read first; wait rounds for what still runs */
    char **ids = NULL;
    size_t nids = 0, alloc = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_tasks; i++)
        if (c->tasks[i]->deferred && c->tasks[i]->state == 0) {
            NX_GROW(ids, alloc, nids + 1);
            ids[nids++] = nx_strdup(c->tasks[i]->id);
        }
    pthread_mutex_unlock(&c->lock);
    if (nids && vs_tasks_collect(c, ids, nids) < 0)
        keep_error(&errs, &code);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&c->lock);
        if (i >= c->n_tasks) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        struct vs_task *t = c->tasks[i];
        char *id = t->deferred ? nx_strdup(t->id) : NULL;
        char *what = t->deferred ? nx_strdup(t->what ? t->what : t->id) : NULL;
        pthread_mutex_unlock(&c->lock);
        char *fault = NULL;
        if (id && vs_task_wait(c, id, what, NULL, &fault) < 0) {
            /* a failed task is reported by vs_tasks_settle; only a failure
             * to learn its state is an error of this call */
            if (!fault)
                keep_error(&errs, &code);
            nx_error_clear();
        }
        free(fault);
        free(id);
        free(what);
    }
    int ret = 0;
    if (errs.len)
        ret = nx_error_set(code ? code : NX_EX_FAILED, "%s", errs.buf);
    strbuf_release(&errs);
    return ret;
}

void vs_tasks_release(struct vs_conn *c)
{
    for (size_t i = 0; i < c->n_tasks; i++) {
        free(c->tasks[i]->id);
        free(c->tasks[i]->result);
        free(c->tasks[i]->error);
        free(c->tasks[i]->what);
        free(c->tasks[i]->subject);
        free(c->tasks[i]->fault);
        free(c->tasks[i]->done_fault);
        free(c->tasks[i]);
    }
    free(c->tasks);
    c->tasks = NULL;
    c->n_tasks = c->alloc_tasks = 0;
    nx_map_release(&c->task_map);
    release_filter(c);
}

int vs_run_task(struct vs_conn *c, const char *method, const char *body, const char *what,
                const struct vs_task_opts *opts, char **fault)
{
    static const struct vs_task_opts none = {0};
    const struct vs_task_opts *o = opts ? opts : &none;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    if (fault)
        *fault = NULL;
    int crc = vs_call_ex(c, method, body, &r, &f, o->retry, NULL, NULL);
    /* also on the first attempt: libcurl itself may have sent it twice */
    if (crc == 1 && o->done_fault && !strcmp(f.type, o->done_fault)) {
        nx_info("vsphere: %s: %s: already done (a lost answer, or someone else)", what, f.type);
        nx_soap_fault_release(&f);
        nx_error_clear();
        return 0;
    }
    if (crc == 1 && fault)
        *fault = nx_strdup(f.type);
    nx_soap_fault_release(&f);
    if (crc != 0) {
        nx_error_prefix("%s: ", what);
        return -1;
    }
    char *task = nx_soap_child_text(r.body, "returnval");
    nx_soap_resp_release(&r);
    if (!task)
        return nx_error_set(NX_EX_PROTOCOL, "%s: %s: no task in the answer", what, method);
    int rc = 0;
    if (o->defer)
        vs_task_defer(c, task, what, o->defer, o->done_fault);
    else
        rc = vs_task_wait(c, task, what, NULL, fault);
    free(task);
    return rc;
}
