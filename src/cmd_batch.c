/* cmd_batch.c: batch mode: every tenant of a plan in one run. */
#include "config.h"

#include "cli.h"
#include "lock.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct progress {
    bool tty, quiet;
    double start;
    bool drawn;
};

/* A progress line on a terminal; plain log lines otherwise. */
static void on_progress(void *ud, const char *tenant, bool failed, size_t done, size_t failed_total,
                        size_t total)
{
    struct progress *p = ud;
    if (p->quiet)
        return;
    double el = nx_monotonic_s() - p->start;
    if (p->tty) {
        fprintf(stderr, "\r\033[Kbatch: %zu/%zu done, %zu failed, %zu remaining, %.1f tenants/s",
                done, total, failed_total, total - done, el > 0 ? done / el : 0.0);
        p->drawn = true;
    } else {
        fprintf(stderr, "batch: [%zu/%zu] tenant %s: %s\n", done, total, tenant,
                failed ? "FAILED" : "done");
    }
    fflush(stderr);
}

struct row {
    size_t appliances, changes;
    const char *error;
    const char *result;
};

/* counts by nx_tenant_result, and [NX_INVALID] tenants refused by validation */
#define NX_INVALID 5

/* One row per tenant: its appliances, the changes made, the first error. */
static void tally(const struct nx_model *m, const struct nx_run *run, struct row *rows,
                  size_t counts[NX_INVALID + 1])
{
    for (size_t i = 0; i < run->desired->n; i++)
        rows[run->desired->items[i]->tenant->idx].appliances++;
    for (size_t i = 0; i < run->actions.n; i++) {
        const struct nx_action *a = &run->actions.items[i];
        const struct nx_tenant *t =
            nx_model_tenant(m, a->spec ? a->spec->tenant->name : a->obs->marker.tenant);
        if (!t)
            continue;
        if (run->status[i] == NX_ST_DONE)
            rows[t->idx].changes++;
        if (run->errors[i] && !rows[t->idx].error && run->status[i] == NX_ST_FAILED)
            rows[t->idx].error = run->errors[i];
    }
    for (size_t i = 0; i < m->n_tenants; i++) {
        if (!nx_tenant_valid(m->tenants[i])) {
            rows[i].result = "invalid";
            counts[NX_INVALID]++;
            continue;
        }
        enum nx_tenant_result r = nx_run_tenant_result(run, i);
        rows[i].result = nx_tenant_result_name(r);
        counts[r]++;
    }
}

static void summary_json(struct strbuf *sb, const struct nx_cli *cli, const struct nx_model *m,
                         const struct nx_run *run, const struct row *rows, const size_t *counts,
                         double elapsed)
{
    strbuf_addf(sb,
                "{\"command\":\"batch\",\"dry_run\":%s,\"jobs\":%u,\"seconds\":%.3f,"
                "\"changes\":%lu,\"totals\":{\"tenants\":%zu,\"up-to-date\":%zu,"
                "\"changed\":%zu,\"planned\":%zu,\"failed\":%zu,\"refused\":%zu,"
                "\"invalid\":%zu},\"tenants\":[",
                cli->dry_run ? "true" : "false", cli->jobs, elapsed, run->n_changes, m->n_tenants,
                counts[NX_TR_UP_TO_DATE], counts[NX_TR_CHANGED], counts[NX_TR_PLANNED],
                counts[NX_TR_FAILED], counts[NX_TR_REFUSED], counts[NX_INVALID]);
    for (size_t i = 0; i < m->n_tenants; i++) {
        strbuf_addstr(sb, i ? ",{\"tenant\":" : "{\"tenant\":");
        strbuf_add_json_str(sb, m->tenants[i]->name);
        strbuf_addf(sb, ",\"result\":\"%s\",\"appliances\":%zu,\"changes\":%zu", rows[i].result,
                    rows[i].appliances, rows[i].changes);
        if (rows[i].error) {
            strbuf_addstr(sb, ",\"error\":");
            strbuf_add_json_str(sb, rows[i].error);
        }
        strbuf_addch(sb, '}');
    }
    strbuf_addstr(sb, "],\"problems\":[");
    for (size_t i = 0; i < run->problems.n; i++) {
        if (i)
            strbuf_addch(sb, ',');
        strbuf_add_json_str(sb, run->problems.msgs[i]);
    }
    strbuf_addstr(sb, "]");
}

static void summary_text(struct strbuf *sb, const struct nx_cli *cli, const struct nx_model *m,
                         const struct nx_run *run, const struct row *rows, const size_t *counts,
                         double elapsed)
{
    strbuf_addf(sb, "%-32s %10s %8s  %s\n", "TENANT", "APPLIANCES", "CHANGES", "RESULT");
    for (size_t i = 0; i < m->n_tenants; i++) {
        strbuf_addf(sb, "%-32s %10zu %8zu  %s", m->tenants[i]->name, rows[i].appliances,
                    rows[i].changes, rows[i].result);
        if (rows[i].error)
            strbuf_addf(sb, ": %s", rows[i].error);
        strbuf_addch(sb, '\n');
    }
    strbuf_addf(sb,
                "batch: %zu tenants: %zu changed, %zu up to date, %zu planned, %zu failed, "
                "%zu refused, %zu invalid; %lu changes in %.1f s with -j %u",
                m->n_tenants, counts[NX_TR_CHANGED], counts[NX_TR_UP_TO_DATE],
                counts[NX_TR_PLANNED], counts[NX_TR_FAILED], counts[NX_TR_REFUSED],
                counts[NX_INVALID], run->n_changes, elapsed, cli->jobs);
}

/* The table (or JSON) of a finished run; returns the batch's exit status. */
static int report(const struct nx_cli *cli, const struct nx_model *m, const struct nx_run *run,
                  double elapsed)
{
    struct row *rows = nx_calloc(m->n_tenants + 1, sizeof(*rows));
    size_t counts[NX_INVALID + 1] = {0};
    for (size_t i = 0; i < run->problems.n; i++)
        fprintf(stderr, "%s\n", run->problems.msgs[i]);
    tally(m, run, rows, counts);
    struct strbuf sb = STRBUF_INIT;
    if (cli->json)
        summary_json(&sb, cli, m, run, rows, counts, elapsed);
    else
        summary_text(&sb, cli, m, run, rows, counts, elapsed);
    int code;
    if (counts[NX_TR_FAILED])
        code = NX_EX_FAILED;
    else if (counts[NX_TR_REFUSED] || counts[NX_INVALID])
        code = NX_EX_DATAERR;
    else
        code = NX_EX_OK;
    if (cli->json)
        strbuf_addf(&sb, ",\"exit_code\":%d}", code);
    puts(sb.buf);
    strbuf_release(&sb);
    free(rows);
    return code;
}

int nx_cmd_batch(struct nx_cli *cli)
{
    struct nx_model *m;
    int code =
        nx_cli_load_kind(cli, &m, true, NX_KIND_PROVIDER, "give provider plans (<netext-plan>)");
    if (code)
        return code;
    struct nx_credentials creds = {0};
    struct nx_lock lock = NX_LOCK_INIT;
    const char **valid = nx_calloc(m->n_tenants + 1, sizeof(*valid));
    size_t n_valid = 0;
    for (size_t i = 0; i < m->n_tenants; i++)
        if (nx_tenant_valid(m->tenants[i]))
            valid[n_valid++] = m->tenants[i]->name;

    if (!cli->dry_run && nx_lock_acquire(&lock, nx_state_dir(cli->state_dir_opt), "provider-side",
                                         false, cli->lock_wait) < 0) {
        code = nx_cli_fail(cli, nx_error_code());
        goto cleanup;
    }
    struct nx_run_opts opts;
    if (nx_cli_run_opts(cli, &creds, &opts) < 0) {
        code = nx_error_code();
        goto cleanup;
    }
    struct progress prog = {isatty(STDERR_FILENO) == 1, cli->verbosity < NX_LOG_WARN,
                            nx_monotonic_s(), false};
    opts.role = NX_ROLE_PROVIDER;
    opts.tenants = valid;
    opts.tunnel_credentials = true; /* as subscribe: payloads carry the tenant PKI */
    opts.state_dir = nx_state_dir(cli->state_dir_opt);
    opts.jobs = cli->jobs;
    opts.progress = on_progress;
    opts.progress_ud = &prog;
    struct nx_run run;
    code = nx_run_execute(m, &opts, &run);
    nx_cli_metrics(cli, &run);
    if (prog.drawn)
        fputc('\n', stderr);
    double elapsed = nx_monotonic_s() - prog.start;
    if (!run.status)
        code = nx_cli_fail(cli, code);
    else
        code = report(cli, m, &run, elapsed);
    nx_run_release(&run);
cleanup:
    nx_lock_release(&lock);
    nx_credentials_release(&creds);
    free(valid);
    nx_model_free(m);
    return code;
}
