/* cmd_provider.c: validate, subscribe, unsubscribe, status, export-bundle. */
#include "config.h"

#include "cli.h"
#include "desired.h"
#include "fsutil.h"
#include "lock.h"
#include "pki.h"
#include "log.h"
#include "strbuf.h"
#include "tenant_side.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int nx_cmd_validate(struct nx_cli *cli)
{
    struct nx_model *m;
    int code = nx_cli_load(cli, &m, false);
    if (code)
        return code;
    if (m->kind == NX_KIND_TENANT) {
        const struct nx_tenant_side *ts = &m->tside;
        if (cli->json)
            printf("{\"command\":\"validate\",\"result\":\"valid\",\"exit_code\":0,\"side\":"
                   "\"tenant\",\"source_hosts\":%zu,\"appliances\":%zu,\"extended_networks\":"
                   "%zu}\n",
                   m->n_hosts, ts->n_appliances, ts->n_nets);
        else
            printf("valid: tenant side of '%s': %zu source hosts, %zu configured appliances%s, "
                   "%zu extended networks\n",
                   m->n_tenants ? m->tenants[0]->name : "?", m->n_hosts, ts->n_appliances,
                   ts->no_appliances  ? " (omitted)"
                   : ts->n_appliances ? ""
                                      : " (defaults)",
                   ts->n_nets);
        nx_model_free(m);
        return NX_EX_OK;
    }
    struct nx_desired *d = nx_desired_compute(m, NULL);
    if (cli->json)
        printf("{\"command\":\"validate\",\"result\":\"valid\",\"exit_code\":0,\"side\":"
               "\"provider\",\"hosts\":%zu,\"hardware_plans\":%zu,\"tenants\":%zu,"
               "\"appliances\":%zu}\n",
               m->n_hosts, m->n_plans, m->n_tenants, d->n);
    else
        printf("valid: %zu hosts, %zu hardware plans, %zu tenants, %zu provider-side "
               "appliances\n",
               m->n_hosts, m->n_plans, m->n_tenants, d->n);
    nx_desired_free(d);
    nx_model_free(m);
    return NX_EX_OK;
}

/* The tenant a single-tenant command acts on; NULL after printing why. */
static const char *pick_tenant(struct nx_cli *cli, struct nx_model *m, bool must_exist, int *code)
{
    if (m->kind == NX_KIND_TENANT)
        return m->n_tenants ? m->tenants[0]->name : NULL;
    if (cli->tenant) {
        if (must_exist && !nx_model_tenant(m, cli->tenant)) {
            nx_error_set(NX_EX_DATAERR, "tenant '%s' is not in the plan", cli->tenant);
            *code = nx_cli_fail(cli, NX_EX_DATAERR);
            return NULL;
        }
        return cli->tenant;
    }
    if (m->n_tenants == 1)
        return m->tenants[0]->name;
    nx_error_set(NX_EX_USAGE, "the plan has %zu tenants: say which with --tenant", m->n_tenants);
    *code = nx_cli_fail(cli, NX_EX_USAGE);
    return NULL;
}

/* subscribe, unsubscribe, status (and rescan, through nx_cmd_rescan) */
static int reconcile(struct nx_cli *cli, struct nx_model *m, bool status, bool remove_all)
{
    struct nx_credentials creds = {0};
    struct nx_lock side = NX_LOCK_INIT, own = NX_LOCK_INIT;
    int code = 0;
    const char *tenant = NULL;
    bool tenant_side = m->kind == NX_KIND_TENANT;

    if (status && !cli->tenant && !tenant_side) {
        tenant = NULL; /* status of every tenant */
    } else {
        tenant = pick_tenant(cli, m, !remove_all, &code);
        if (!tenant)
            goto cleanup;
    }
    if (!status && !cli->dry_run) {
        /* runs on different tenants go in parallel; batch excludes them all */
        const char *dir = nx_state_dir(cli->state_dir_opt);
        char *name = nx_asprintf("%s/%s", tenant_side ? "tenant" : "provider", tenant);
        int rc = nx_lock_acquire(&side, dir, tenant_side ? "tenant-side" : "provider-side", true,
                                 cli->lock_wait);
        if (rc == 0)
            rc = nx_lock_acquire(&own, dir, name, false, cli->lock_wait);
        free(name);
        if (rc < 0) {
            code = nx_cli_fail(cli, nx_error_code());
            goto cleanup;
        }
    }
    struct nx_run_opts opts;
    if (nx_cli_run_opts(cli, &creds, &opts) < 0) {
        code = nx_error_code();
        goto cleanup;
    }
    const char *tenants[2] = {tenant, NULL};
    opts.role = tenant_side ? NX_ROLE_TENANT : NX_ROLE_PROVIDER;
    opts.tenants = tenant ? tenants : NULL;
    opts.dry_run = cli->dry_run || status;
    opts.remove_all = remove_all;
    opts.tunnel_credentials = true;
    opts.state_dir = nx_state_dir(cli->state_dir_opt);
    struct nx_run run;
    code = nx_run_execute(m, &opts, &run);
    nx_cli_metrics(cli, &run);
    if (!run.status && run.problems.n) {
        nx_cli_problems(cli, &run.problems, "refused", code);
    } else if (!run.status) {
        code = nx_cli_fail(cli, code);
    } else {
        nx_cli_report(cli, &run, status);
    }
    nx_run_release(&run);
cleanup:
    nx_lock_release(&own);
    nx_lock_release(&side);
    nx_credentials_release(&creds);
    return code;
}

int nx_cmd_reconcile(struct nx_cli *cli)
{
    bool unsub = !strcmp(cli->command, "unsubscribe"), status = !strcmp(cli->command, "status");
    if (unsub && !cli->tenant) {
        fprintf(stderr, "netext-deploy: unsubscribe: --tenant is required\n");
        return NX_EX_USAGE;
    }
    struct nx_model *m;
    int code = nx_cli_load(cli, &m, false);
    if (code)
        return code;
    if (m->kind == NX_KIND_TENANT && !status) {
        nx_error_set(NX_EX_USAGE,
                     "%s: this is a tenant-side configuration; use 'rescan' (and "
                     "<no-appliances/> to remove the tenant-side appliances)",
                     cli->command);
        code = nx_cli_fail(cli, NX_EX_USAGE);
    } else {
        code = reconcile(cli, m, status, unsub);
    }
    nx_model_free(m);
    return code;
}

int nx_cmd_rescan(struct nx_cli *cli)
{
    struct nx_model *m;
    int code = nx_cli_load_kind(cli, &m, false, NX_KIND_TENANT,
                                "give a <netext-tenant> configuration, not a provider "
                                "plan; the provider side uses 'subscribe'");
    if (code)
        return code;
    code = reconcile(cli, m, false, false);
    nx_model_free(m);
    return code;
}

int nx_cmd_export_bundle(struct nx_cli *cli)
{
    if (!cli->tenant || !cli->output) {
        fprintf(stderr, "netext-deploy: export-bundle: --tenant and -o FILE are required (the "
                        "bundle is a secret: it is written 0600)\n");
        return NX_EX_USAGE;
    }
    struct nx_model *m;
    int code = nx_cli_load(cli, &m, false);
    if (code)
        return code;
    const struct nx_tenant *t =
        m->kind == NX_KIND_PROVIDER ? nx_model_tenant(m, cli->tenant) : NULL;
    if (!t) {
        nx_error_set(NX_EX_DATAERR, "tenant '%s' is not in the provider plan", cli->tenant);
        code = nx_cli_fail(cli, NX_EX_DATAERR);
        goto cleanup;
    }
    /* the tenant's tunnel credentials: the tenant CA and the tenant's client
     * CA, from which the tenant side derives one certificate per appliance
     * (pki.h; issued on first export) */
    struct nx_pki *pki = NULL;
    struct nx_pki_cred pc = {0};
    if (nx_pki_open(nx_state_dir(cli->state_dir_opt), 0, &pki) < 0 ||
        nx_pki_get_clients_ca(pki, t->name, &pc) < 0 || nx_pki_sync(pki) < 0) {
        code = nx_cli_fail(cli, nx_error_code());
        nx_pki_close(pki);
        goto cleanup;
    }
    nx_pki_close(pki);
    struct nx_bundle_creds bc = {pc.ca_pem, NULL, NULL, pc.cert_pem, pc.key_pem};
    struct strbuf sb = STRBUF_INIT;
    nx_bundle_render(&sb, m, t, &bc);
    nx_pki_cred_release(&pc);
    if (!strcmp(cli->output, "-")) {
        fwrite(sb.buf, 1, sb.len, stdout);
    } else if (nx_write_atomic(cli->output, sb.buf, sb.len, 0600, 0) < 0) {
        code = nx_cli_fail(cli, nx_error_code());
    } else {
        nx_info("wrote the bundle of tenant '%s' to %s", t->name, cli->output);
    }
    strbuf_release_secret(&sb);
cleanup:
    nx_model_free(m);
    return code;
}
