/* cli.h: what the command implementations share (src/cmd_*.c). */
#ifndef NX_CLI_H
#define NX_CLI_H

#include <stdbool.h>

#include "error.h"
#include "model.h"
#include "provider.h"
#include "reconcile.h"

struct nx_cli {
    const char *command;
    const char *tenant;
    const char *connect;
    bool dry_run, json;
    int verbosity;
    const char *creds_path;
    const char *state_dir_opt;
    const char *bundle; /* rescan --bundle */
    const char *output; /* export-bundle -o */
    const char *role; /* payload --role (cmd_payload.c) */
    const char *host; /* payload --host (cmd_payload.c) */
    const char *appliance; /* revoke --appliance NAME (cmd_payload.c) */
    bool undo; /* revoke --undo */
    const char *image; /* --image FILE */
    bool no_image; /* --no-image */
    const char *metrics; /* --metrics FILE */
    struct nx_metrics *metrics_data; /* set with --metrics (main.c writes it) */
    unsigned jobs;
    unsigned lock_wait;
    struct nx_conn_opts conn;
    char **args; /* positional arguments after the command */
    size_t n_args;
};

/* Print nx_error's message once (and a JSON document with --json); returns code. */
int nx_cli_fail(const struct nx_cli *cli, int code);
/* Print problems (stderr; and JSON with --json) under result `result`. */
void nx_cli_problems(const struct nx_cli *cli, const struct nx_diag *d, const char *result,
                     int code);
/* Read every positional argument as a plan/configuration into *out and
 * validate it. Returns 0, or the exit code after printing why. When
 * per_tenant is set, problems that concern single tenants do not fail the
 * load (batch mode); they are printed and those tenants are marked invalid. */
int nx_cli_load(const struct nx_cli *cli, struct nx_model **out, bool per_tenant);
/* nx_cli_load for a command that takes one side only: another kind of model
 * fails with EX_USAGE and "COMMAND: why". */
int nx_cli_load_kind(const struct nx_cli *cli, struct nx_model **out, bool per_tenant,
                     enum nx_model_kind kind, const char *why);
/* Credentials and connection options for a run; -1 after nx_cli_fail. */
int nx_cli_run_opts(const struct nx_cli *cli, struct nx_credentials *creds,
                    struct nx_run_opts *opts);
/* Print the run's outcome in the chosen format. */
void nx_cli_report(const struct nx_cli *cli, const struct nx_run *run, bool status_table);

/* --metrics: take the run's figures (before nx_run_release); no-op without. */
void nx_cli_metrics(const struct nx_cli *cli, const struct nx_run *run);

int nx_cmd_validate(struct nx_cli *cli);
int nx_cmd_reconcile(struct nx_cli *cli); /* subscribe, unsubscribe, status */
int nx_cmd_export_bundle(struct nx_cli *cli);
int nx_cmd_rescan(struct nx_cli *cli);
int nx_cmd_batch(struct nx_cli *cli);

#endif
