/* hyperv_jobs.c: the calls of the Hyper-V provider on its connection
 * (enumerate, get, invoke), method results and Msvm_ConcreteJob waits. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "http.h"
#include "hyperv_jobs.h"
#include "util.h"

#define JOB_TIMEOUT_S 600

char *hv_class_uri(const char *cls)
{
    return nx_wsman_wmi_uri(HV_NS, cls);
}

struct nx_wsman_epr *hv_vm_epr(const char *guid)
{
    char *u = hv_class_uri("Msvm_ComputerSystem");
    struct nx_wsman_epr *e = nx_wsman_epr_new(u);
    free(u);
    nx_wsman_epr_add(e, "CreationClassName", "Msvm_ComputerSystem");
    nx_wsman_epr_add(e, "Name", guid);
    return e;
}

struct nx_wsman_epr *hv_iid_epr(const char *cls, const char *iid)
{
    char *u = hv_class_uri(cls);
    struct nx_wsman_epr *e = nx_wsman_epr_new(u);
    free(u);
    nx_wsman_epr_add(e, "InstanceID", iid);
    return e;
}

struct nx_wsman_epr *hv_vssd_epr(const char *guid)
{
    char *iid = nx_asprintf("Microsoft:%s", guid);
    struct nx_wsman_epr *e = hv_iid_epr("Msvm_VirtualSystemSettingData", iid);
    free(iid);
    return e;
}

char *hv_setting_path(const struct hv_conn *c, const char *cls, const char *iid)
{
    struct nx_wsman_epr *e = hv_iid_epr(cls, iid);
    char *p = hv_wmi_path(c->host, e);
    nx_wsman_epr_free(e);
    return p;
}

static void count(struct hv_conn *c)
{
    c->base->n_requests = nx_http_requests(c->http);
}

int hv_enum(struct hv_conn *c, const char *cls, const char *wql, struct nx_wsman_list *l)
{
    char *uri = hv_class_uri(cls);
    int rc = nx_wsman_enumerate(c->ws, uri, wql, l);
    free(uri);
    count(c);
    return rc;
}

int hv_enum_prefix(struct hv_conn *c, const char *cls, const char *prefix, struct nx_wsman_list *l)
{
    char *q = hv_wql(cls, "InstanceID", "LIKE", prefix, "%");
    int rc = hv_enum(c, cls, q, l);
    free(q);
    return rc;
}

int hv_get(struct hv_conn *c, const struct nx_wsman_epr *e, struct nx_wsman_instance **out)
{
    int rc = nx_wsman_get(c->ws, e, out);
    count(c);
    return rc;
}

int hv_invoke(struct hv_conn *c, const struct nx_wsman_epr *target, const char *method,
              const struct nx_wsman_param *p, size_t n, struct nx_wsman_instance **out)
{
    int rc = nx_wsman_invoke(c->ws, target, method, p, n, out);
    count(c);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int hv_wait_result(struct hv_conn *c, const char *what, const struct nx_wsman_instance *o)
{
    long rv = nx_wsman_return_value(o, what);
    if (rv < 0)
        return -1;
    if (rv == 0)
        return 0;
    if (rv != 4096)
        return nx_error_set(NX_EX_UNAVAILABLE, "%s failed: return value %ld (%s)", what, rv,
                            hv_return_text(rv));
    const struct nx_wsman_epr *job = nx_wsman_prop_epr(o, "Job");
    if (!job)
        return nx_error_set(NX_EX_PROTOCOL, "%s: job started (4096) but no Job reference", what);
    time_t deadline = time(NULL) + JOB_TIMEOUT_S;
    long delay = 20;
    for (;;) {
        struct nx_wsman_instance *j = NULL;
        if (hv_get(c, job, &j) < 0) {
            nx_error_prefix("%s: polling its job: ", what);
            return -1;
        }
        unsigned long st = 0;
        const char *s = nx_wsman_prop(j, "JobState");
        if (!s || !nx_parse_uint(s, 0, 65535, &st)) {
            nx_wsman_instance_free(j);
            return nx_error_set(NX_EX_PROTOCOL, "%s: its job has no valid JobState", what);
        }
        if (st == 7) {
            nx_wsman_instance_free(j);
            return 0;
        }
        if (st >= 8 && st <= 10) {
            const char *desc = nx_wsman_prop(j, "ErrorDescription");
            const char *code = nx_wsman_prop(j, "ErrorCode");
            nx_error_set(NX_EX_UNAVAILABLE, "%s failed: job %s (error %s): %s", what,
                         st == 8   ? "terminated"
                         : st == 9 ? "killed"
                                   : "ended in exception",
                         code ? code : "?", desc && desc[0] ? desc : "(no description)");
            nx_wsman_instance_free(j);
            return -1;
        }
        nx_wsman_instance_free(j);
        if (time(NULL) > deadline)
            return nx_error_set(NX_EX_TEMPFAIL, "%s: its job did not end within %d s", what,
                                JOB_TIMEOUT_S);
        sleep_ms(delay);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

int hv_call(struct hv_conn *c, const struct nx_wsman_epr *target, const char *method,
            const struct nx_wsman_param *p, size_t n, struct nx_wsman_instance **out)
{
    struct nx_wsman_instance *o = NULL;
    int rc = hv_invoke(c, target, method, p, n, &o);
    if (rc == 0)
        rc = hv_wait_result(c, method, o);
    if (rc == 0 && out)
        *out = o;
    else
        nx_wsman_instance_free(o);
    return rc;
}

int hv_add_resource(struct hv_conn *c, const struct nx_wsman_epr *vssd, const char *cls,
                    const struct nx_cim_prop *props, size_t n, char **iid)
{
    char *inst = nx_cim_instance_xml(cls, props, n);
    struct nx_wsman_param p[] = {
        {"AffectedConfiguration", NX_WSMAN_REF, NULL, vssd},
        {"ResourceSettings", NX_WSMAN_EMBEDDED, inst, NULL},
    };
    struct nx_wsman_instance *o = NULL;
    int rc = hv_call(c, c->vsms, "AddResourceSettings", p, 2, &o);
    free(inst);
    *iid = NULL;
    if (rc == 0) {
        const struct nx_wsman_epr *r = nx_wsman_prop_epr(o, "ResultingResourceSettings");
        const char *v = r ? nx_wsman_epr_selector(r, "InstanceID") : NULL;
        /* absent when only the job knows the result: the caller looks it up */
        if (v)
            *iid = nx_strdup(v);
    }
    nx_wsman_instance_free(o);
    return rc;
}

int hv_find_setting(struct hv_conn *c, const char *guid, const char *cls, const char *prop,
                    bool path, const char *want, char **iid)
{
    struct nx_wsman_list l = {0};
    char *like = nx_asprintf("Microsoft:%s", guid);
    int rc = hv_enum_prefix(c, cls, like, &l);
    *iid = NULL;
    for (size_t i = 0; rc == 0 && i < l.n && !*iid; i++) {
        const char *v = nx_wsman_prop(l.items[i], prop);
        if (v && (path ? hv_path_names(v, want) : strcasecmp(v, want) == 0))
            *iid = nx_strdup(nx_wsman_prop(l.items[i], "InstanceID"));
    }
    if (rc == 0 && !*iid)
        rc = nx_error_set(NX_EX_PROTOCOL,
                          "AddResourceSettings (%s) succeeded but neither its answer nor the host "
                          "shows the new setting",
                          cls);
    nx_wsman_list_release(&l);
    free(like);
    return rc;
}
