/* metrics.c: a run's outcome as a Prometheus text-format file. */
#include "config.h"

#include "metrics.h"
#include "error.h"
#include "fsutil.h"
#include "model.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void nx_metrics_init(struct nx_metrics *mt, const char *command, bool dry_run)
{
    memset(mt, 0, sizeof(*mt));
    mt->command = command;
    mt->dry_run = dry_run;
    mt->start_mono = nx_monotonic_s();
}

/* uri without "user[:password]@" (labels are read by anyone who can scrape) */
static char *strip_userinfo(const char *uri)
{
    const char *auth = strstr(uri, "://");
    if (!auth)
        return nx_strdup(uri);
    auth += 3;
    size_t hostpart = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', hostpart);
    if (!at)
        return nx_strdup(uri);
    return nx_asprintf("%.*s%s", (int)(auth - uri), uri, at + 1);
}

void nx_metrics_collect(struct nx_metrics *mt, const struct nx_run *run)
{
    const struct nx_model *m = run->model;
    bool *in_scope = nx_calloc(m->n_tenants + 1, sizeof(*in_scope));
    for (size_t t = 0; t < m->n_tenants; t++)
        in_scope[t] = !run->opts || !run->opts->tenants;
    for (size_t i = 0; run->opts && run->opts->tenants && run->opts->tenants[i]; i++) {
        const struct nx_tenant *t = nx_model_tenant(m, run->opts->tenants[i]);
        if (t)
            in_scope[t->idx] = true;
    }
    mt->have_run = true;
    memset(mt->tenants, 0, sizeof(mt->tenants));
    for (size_t t = 0; t < m->n_tenants; t++) {
        if (m->kind == NX_KIND_PROVIDER && !nx_tenant_valid(m->tenants[t]))
            mt->tenants[NX_METRICS_INVALID]++;
        else if (in_scope[t])
            mt->tenants[nx_run_tenant_result(run, t)]++;
    }
    mt->appliances = 0;
    for (size_t i = 0; run->desired && i < run->desired->n; i++)
        if (in_scope[run->desired->items[i]->tenant->idx])
            mt->appliances++;
    free(in_scope);
    mt->changes = run->n_changes;
    mt->failed_actions = 0;
    for (size_t i = 0; run->status && i < run->actions.n; i++)
        if (run->status[i] == NX_ST_FAILED)
            mt->failed_actions++;
    memcpy(mt->phase_s, run->phase_s, sizeof(mt->phase_s));
    for (size_t i = 0; i < mt->n_endpoints; i++)
        free(mt->endpoints[i].uri);
    free(mt->endpoints);
    mt->endpoints = nx_calloc(run->n_conns + 1, sizeof(*mt->endpoints));
    mt->n_endpoints = 0;
    for (size_t i = 0; i < run->n_conns; i++) {
        const struct nx_conn *c = run->conns[i];
        if (!c)
            continue;
        struct nx_metrics_endpoint *e = &mt->endpoints[mt->n_endpoints++];
        e->uri = strip_userinfo(c->uri ? c->uri : "");
        e->provider = c->ops->name;
        e->requests = c->n_requests;
        e->changes = c->n_changes;
    }
}

/* a label value: backslash, double quote and newline escaped */
static void add_label(struct strbuf *out, const char *name, const char *value)
{
    strbuf_addf(out, "%s=\"", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            strbuf_addch(out, '\\');
        if (*p == '\n')
            strbuf_addstr(out, "\\n");
        else
            strbuf_addch(out, *p);
    }
    strbuf_addch(out, '"');
}

static void head(struct strbuf *out, const char *name, const char *help)
{
    strbuf_addf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void value(struct strbuf *out, const char *name, double v)
{
    strbuf_addf(out, "%s %.17g\n", name, v);
}

void nx_metrics_render(const struct nx_metrics *mt, int exit_code, double end_unix, double duration,
                       struct strbuf *out)
{
    static const char *const results[NX_METRICS_RESULTS] = {"up-to-date", "changed", "planned",
                                                            "failed",     "refused", "invalid"};
    head(out, "netext_deploy_run_info", "The last run's command and version (always 1).");
    strbuf_addstr(out, "netext_deploy_run_info{");
    add_label(out, "command", mt->command ? mt->command : "");
    strbuf_addch(out, ',');
    add_label(out, "dry_run", mt->dry_run ? "true" : "false");
    strbuf_addch(out, ',');
    add_label(out, "version", PACKAGE_VERSION);
    strbuf_addstr(out, "} 1\n");
    head(out, "netext_deploy_run_timestamp_seconds",
         "When the last run ended, in seconds since the epoch.");
    strbuf_addf(out, "netext_deploy_run_timestamp_seconds %.3f\n", end_unix);
    head(out, "netext_deploy_run_duration_seconds", "How long the last run took.");
    strbuf_addf(out, "netext_deploy_run_duration_seconds %.6f\n", duration);
    head(out, "netext_deploy_run_exit_code",
         "The last run's exit status (0: done or up to date; see netext-deploy(8)).");
    value(out, "netext_deploy_run_exit_code", exit_code);
    head(out, "netext_deploy_run_success", "1 if the last run exited with status 0, else 0.");
    value(out, "netext_deploy_run_success", exit_code == 0);
    head(out, "netext_deploy_run_reached_hypervisors",
         "1 if the last run got as far as connecting (the figures below are its own), else 0.");
    value(out, "netext_deploy_run_reached_hypervisors", mt->have_run);
    head(out, "netext_deploy_tenants", "Tenants of the last run by result.");
    for (size_t r = 0; r < NX_METRICS_RESULTS; r++) {
        strbuf_addstr(out, "netext_deploy_tenants{");
        add_label(out, "result", results[r]);
        strbuf_addf(out, "} %zu\n", mt->tenants[r]);
    }
    head(out, "netext_deploy_appliances", "Desired appliances of the tenants of the last run.");
    strbuf_addf(out, "netext_deploy_appliances %zu\n", mt->appliances);
    head(out, "netext_deploy_changes", "Changing hypervisor calls the last run made.");
    strbuf_addf(out, "netext_deploy_changes %lu\n", mt->changes);
    head(out, "netext_deploy_failed_actions", "Actions of the last run that failed.");
    strbuf_addf(out, "netext_deploy_failed_actions %zu\n", mt->failed_actions);
    head(out, "netext_deploy_phase_duration_seconds",
         "Seconds the last run spent in each phase (0: not reached).");
    for (size_t p = 0; p < NX_PHASE_COUNT; p++) {
        strbuf_addstr(out, "netext_deploy_phase_duration_seconds{");
        add_label(out, "phase", nx_run_phase_name((enum nx_run_phase)p));
        strbuf_addf(out, "} %.6f\n", mt->phase_s[p]);
    }
    if (!mt->n_endpoints)
        return;
    static const char *const per_ep[2][2] = {
        {"netext_deploy_endpoint_requests",
         "Wire requests the last run sent to each endpoint (providers that count them)."},
        {"netext_deploy_endpoint_changes", "Changing calls the last run made on each endpoint."},
    };
    for (size_t k = 0; k < 2; k++) {
        head(out, per_ep[k][0], per_ep[k][1]);
        for (size_t i = 0; i < mt->n_endpoints; i++) {
            const struct nx_metrics_endpoint *e = &mt->endpoints[i];
            strbuf_addf(out, "%s{", per_ep[k][0]);
            add_label(out, "endpoint", e->uri);
            strbuf_addch(out, ',');
            add_label(out, "provider", e->provider ? e->provider : "");
            strbuf_addf(out, "} %lu\n", k ? e->changes : e->requests);
        }
    }
}

int nx_metrics_write(const char *path, const struct nx_metrics *mt, int exit_code)
{
    struct strbuf sb = STRBUF_INIT;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    nx_metrics_render(mt, exit_code, (double)now.tv_sec + now.tv_nsec / 1e9,
                      nx_monotonic_s() - mt->start_mono, &sb);
    /* the collector reads *.prom only: the temporary name never ends so */
    int rc = nx_write_atomic(path, sb.buf, sb.len, 0644, 0);
    if (rc < 0)
        nx_error_prefix("--metrics ");
    strbuf_release(&sb);
    return rc;
}

void nx_metrics_release(struct nx_metrics *mt)
{
    if (!mt)
        return;
    for (size_t i = 0; i < mt->n_endpoints; i++)
        free(mt->endpoints[i].uri);
    free(mt->endpoints);
    mt->endpoints = NULL;
    mt->n_endpoints = 0;
}
