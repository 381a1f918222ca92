/* cli.c: what the command implementations share. */
#include "config.h"

#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "report.h"
#include "strbuf.h"
#include "tenant_side.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nx_cli_problems(const struct nx_cli *cli, const struct nx_diag *d, const char *result,
                     int code)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s\n", d->msgs[i]);
    if (!cli->json)
        return;
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, "{\"command\":");
    strbuf_add_json_str(&sb, cli->command);
    strbuf_addf(&sb, ",\"result\":\"%s\",\"exit_code\":%d,\"changes\":0,\"problems\":[", result,
                code);
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            strbuf_addch(&sb, ',');
        strbuf_add_json_str(&sb, d->msgs[i]);
    }
    strbuf_addstr(&sb, "]}\n");
    fputs(sb.buf, stdout);
    strbuf_release(&sb);
}

int nx_cli_fail(const struct nx_cli *cli, int code)
{
    struct nx_diag d;
    nx_diag_init(&d);
    NX_GROW(d.msgs, d.alloc, 1);
    d.msgs[d.n++] = nx_strdup(nx_error_msg());
    fprintf(stderr, "netext-deploy: ");
    nx_cli_problems(cli, &d, "error", code);
    nx_diag_release(&d);
    return code;
}

int nx_cli_load(const struct nx_cli *cli, struct nx_model **out, bool per_tenant)
{
    struct nx_model *m = nx_model_new();
    struct nx_diag diag;
    int code = 0;
    nx_diag_init(&diag);
    *out = NULL;
    for (size_t i = 0; i < cli->n_args; i++) {
        if (nx_plan_read_path(m, cli->args[i], &diag) < 0) {
            code = nx_cli_fail(cli, nx_error_code());
            goto cleanup;
        }
    }
    if (m->kind == NX_KIND_TENANT && m->n_syntax_errors == 0) {
        const char *bundle = cli->bundle ? cli->bundle : m->tside.bundle_path;
        if (bundle && nx_bundle_read(m, bundle, &diag) < 0) {
            code = nx_cli_fail(cli, nx_error_code());
            goto cleanup;
        }
    }
    if (m->n_syntax_errors == 0)
        nx_validate(m, &diag); /* value errors from reading and these, together */
    if (diag.n &&
        (!per_tenant || m->n_syntax_errors || m->n_global_errors || m->kind == NX_KIND_TENANT)) {
        code = NX_EX_DATAERR;
        nx_cli_problems(cli, &diag, "invalid", code);
        goto cleanup;
    }
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.msgs[i]);
    *out = m;
    m = NULL;
cleanup:
    nx_diag_release(&diag);
    nx_model_free(m);
    return code;
}

int nx_cli_load_kind(const struct nx_cli *cli, struct nx_model **out, bool per_tenant,
                     enum nx_model_kind kind, const char *why)
{
    int code = nx_cli_load(cli, out, per_tenant);
    if (code || (*out)->kind == kind)
        return code;
    nx_error_set(NX_EX_USAGE, "%s: %s", cli->command, why);
    code = nx_cli_fail(cli, NX_EX_USAGE);
    nx_model_free(*out);
    *out = NULL;
    return code;
}

int nx_cli_run_opts(const struct nx_cli *cli, struct nx_credentials *creds,
                    struct nx_run_opts *opts)
{
    const char *cpath = cli->creds_path ? cli->creds_path : getenv("NETEXT_DEPLOY_CREDENTIALS");
    if (nx_credentials_load(creds, cpath) < 0) {
        nx_cli_fail(cli, nx_error_code());
        return -1;
    }
    if (cli->conn.insecure)
        nx_warn("--insecure: TLS certificates are NOT verified; anyone on the path can read "
                "the credentials");
    memset(opts, 0, sizeof(*opts));
    opts->dry_run = cli->dry_run;
    opts->connect = cli->connect;
    opts->conn = cli->conn;
    opts->creds = creds;
    opts->jobs = 1;
    opts->image_file = cli->image;
    opts->no_image = cli->no_image;
    opts->image_default = true;
    return 0;
}

void nx_cli_report(const struct nx_cli *cli, const struct nx_run *run, bool status_table)
{
    for (size_t i = 0; i < run->notes.n; i++)
        fprintf(stderr, "note: %s\n", run->notes.msgs[i]);
    if (cli->json) {
        for (size_t i = 0; i < run->problems.n; i++)
            fprintf(stderr, "%s\n", run->problems.msgs[i]);
        nx_run_report_json(run, cli->command, stdout);
    } else if (status_table) {
        nx_run_report_status(run, stdout);
    } else {
        nx_run_report_text(run, cli->command, stdout);
    }
}

void nx_cli_metrics(const struct nx_cli *cli, const struct nx_run *run)
{
    if (cli->metrics_data)
        nx_metrics_collect(cli->metrics_data, run);
}
