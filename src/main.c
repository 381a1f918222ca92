/* main.c: the netext-deploy command line. */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "error.h"
#include "log.h"
#include "plan.h"
#include "reconcile.h"
#include "strbuf.h"
#include "util.h"
#include "validate.h"
#include "xml.h"

static const char usage_text[] =
    "Usage: netext-deploy [OPTIONS] COMMAND PLAN... \n"
    "\n"
    "Deploy and maintain network extension appliances for cloud disaster recovery.\n"
    "\n"
    "Commands:\n"
    "  subscribe PLAN...     create or update the provider-side appliances of one tenant\n"
    "                        (one per replication-target host; --tenant when the plan has\n"
    "                        several tenants)\n"
    "  unsubscribe PLAN...   remove every provider-side appliance of --tenant\n"
    "  status PLAN...        show existing vs. desired appliances; changes nothing\n"
    "  validate PLAN...      check the plan files only; contacts no hypervisor\n"
    "\n"
    "PLAN is a netext-plan(5) file or a directory of *.xml plan files, read together.\n"
    "\n"
    "Options:\n"
    "  -t, --tenant NAME     the tenant to act on\n"
    "  -c, --connect URI     use URI for every host instead of the plan's host URIs\n"
    "  -n, --dry-run         print the actions that would be taken; change nothing\n"
    "      --json            machine-readable result on stdout (logs stay on stderr)\n"
    "  -v, --verbose         more log lines on stderr (repeat for debug)\n"
    "  -q, --quiet           errors only on stderr\n"
    "      --credentials FILE  user and password per URI (mode 0600); see netext-deploy(8).\n"
    "                        Also: NETEXT_DEPLOY_CREDENTIALS, NETEXT_DEPLOY_USER,\n"
    "                        NETEXT_DEPLOY_PASSWORD. Never on the command line.\n"
    "      --cacert FILE     trust the CA certificates in FILE (vSphere, Hyper-V)\n"
    "      --thumbprint HEX  accept exactly the server certificate with this SHA-256\n"
    "      --insecure        do not verify TLS certificates (warns; for labs only)\n"
    "      --timeout SEC     per-request timeout for vSphere and Hyper-V (default 60)\n"
    "  -h, --help            this text\n"
    "  -V, --version         version and built-in providers\n"
    "\n"
    "Exit status: 0 done or up to date; 1 some hypervisor actions failed; 64 usage;\n"
    "65 invalid plan or placement refused (nothing changed); 66 plan not found;\n"
    "69 hypervisor unreachable; 70 internal error; 77 credentials refused.\n"
    "See netext-deploy(8) and netext-plan(5).\n";

enum { OPT_JSON = 256, OPT_CREDS, OPT_CACERT, OPT_THUMB, OPT_INSECURE, OPT_TIMEOUT };

static const struct option long_opts[] = {
    {"tenant", required_argument, NULL, 't'},
    {"connect", required_argument, NULL, 'c'},
    {"dry-run", no_argument, NULL, 'n'},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"credentials", required_argument, NULL, OPT_CREDS},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"thumbprint", required_argument, NULL, OPT_THUMB},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

struct cli {
    const char *command;
    const char *tenant;
    const char *connect;
    bool dry_run, json;
    int verbosity;
    const char *creds_path;
    struct nx_conn_opts conn;
    char **plans;
    size_t n_plans;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netext-deploy: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'netext-deploy --help'.\n");
    va_end(ap);
    return NX_EX_USAGE;
}

static void print_version(void)
{
    size_t n;
    const struct nx_provider_ops *const *p = nx_providers(&n);
    printf("netext-deploy %s\nproviders:", PACKAGE_VERSION);
    for (size_t i = 0; i < n; i++)
        printf(" %s", p[i]->name);
    printf("\n");
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
    int c;
    unsigned long v;
    cli->verbosity = NX_LOG_WARN;
    cli->conn.request_timeout_ms = 60000;
    cli->conn.connect_timeout_ms = 15000;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:c:nvqhV", long_opts, NULL)) != -1) {
        switch (c) {
        case 't':
            cli->tenant = optarg;
            break;
        case 'c':
            cli->connect = optarg;
            break;
        case 'n':
            cli->dry_run = true;
            break;
        case OPT_JSON:
            cli->json = true;
            break;
        case 'v':
            cli->verbosity++;
            break;
        case 'q':
            cli->verbosity = NX_LOG_ERROR;
            break;
        case OPT_CREDS:
            cli->creds_path = optarg;
            break;
        case OPT_CACERT:
            cli->conn.cafile = optarg;
            break;
        case OPT_THUMB:
            cli->conn.thumbprint = optarg;
            break;
        case OPT_INSECURE:
            cli->conn.insecure = true;
            break;
        case OPT_TIMEOUT:
            if (!nx_parse_uint(optarg, 1, 86400, &v))
                return usage_error("--timeout '%s': not a number of seconds (1-86400)", optarg);
            cli->conn.request_timeout_ms = (long)v * 1000;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case 'V':
            print_version();
            return -1;
        case ':':
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("no command given");
    cli->command = argv[optind++];
    cli->plans = argv + optind;
    cli->n_plans = (size_t)(argc - optind);
    return 0;
}

static void print_problems(const struct cli *cli, const struct nx_diag *d, const char *result,
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

static int fail(const struct cli *cli, int code)
{
    struct nx_diag d;
    nx_diag_init(&d);
    /* nx_diag_add formats "file:line: msg"; here the message stands alone */
    NX_GROW(d.msgs, d.alloc, 1);
    d.msgs[d.n++] = nx_strdup(nx_error_msg());
    fprintf(stderr, "netext-deploy: ");
    print_problems(cli, &d, "error", code);
    nx_diag_release(&d);
    return code;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    struct nx_model *m = NULL;
    struct nx_credentials creds = {0};
    struct nx_diag diag;
    int code;
    nx_diag_init(&diag);

    int rc = parse_args(argc, argv, &cli);
    if (rc != 0)
        return rc < 0 ? NX_EX_OK : rc;
    nx_log_set_level(cli.verbosity);
    nx_xml_init();

    bool is_sub = !strcmp(cli.command, "subscribe"), is_unsub = !strcmp(cli.command, "unsubscribe");
    bool is_status = !strcmp(cli.command, "status"), is_validate = !strcmp(cli.command, "validate");
    if (!is_sub && !is_unsub && !is_status && !is_validate)
        return usage_error("unknown command '%s'", cli.command);
    if (cli.n_plans == 0)
        return usage_error("%s: no plan file given", cli.command);
    if (is_unsub && !cli.tenant)
        return usage_error("%s: --tenant is required", cli.command);

    m = nx_model_new();
    for (size_t i = 0; i < cli.n_plans; i++) {
        if (nx_plan_read_path(m, cli.plans[i], &diag) < 0) {
            code = fail(&cli, nx_error_code());
            goto cleanup;
        }
    }
    if (m->n_syntax_errors == 0)
        nx_validate(m, &diag); /* value errors from reading and these, together */
    if (diag.n) {
        code = NX_EX_DATAERR;
        print_problems(&cli, &diag, "invalid", code);
        goto cleanup;
    }
    if (is_validate) {
        size_t napp = 0;
        struct nx_desired *d = nx_desired_compute(m, NULL);
        napp = d->n;
        nx_desired_free(d);
        if (cli.json)
            printf("{\"command\":\"validate\",\"result\":\"valid\",\"exit_code\":0,\"hosts\":%zu,"
                   "\"hardware_plans\":%zu,\"tenants\":%zu,\"appliances\":%zu}\n",
                   m->n_hosts, m->n_plans, m->n_tenants, napp);
        else
            printf("valid: %zu hosts, %zu hardware plans, %zu tenants, %zu provider-side "
                   "appliances\n",
                   m->n_hosts, m->n_plans, m->n_tenants, napp);
        code = NX_EX_OK;
        goto cleanup;
    }

    const char *tenants[2] = {NULL, NULL};
    if (cli.tenant) {
        if (!is_unsub && !nx_model_tenant(m, cli.tenant)) {
            nx_error_set(NX_EX_DATAERR, "tenant '%s' is not in the plan", cli.tenant);
            code = fail(&cli, NX_EX_DATAERR);
            goto cleanup;
        }
        tenants[0] = cli.tenant;
    } else if (m->n_tenants == 1) {
        tenants[0] = m->tenants[0]->name;
    } else if (is_sub) {
        nx_error_set(NX_EX_USAGE, "the plan has %zu tenants: say which with --tenant",
                     m->n_tenants);
        code = fail(&cli, NX_EX_USAGE);
        goto cleanup;
    }

    const char *cpath = cli.creds_path ? cli.creds_path : getenv("NETEXT_DEPLOY_CREDENTIALS");
    if (nx_credentials_load(&creds, cpath) < 0) {
        code = fail(&cli, nx_error_code());
        goto cleanup;
    }
    if (cli.conn.insecure)
        nx_warn("--insecure: TLS certificates are NOT verified; anyone on the path can read "
                "the credentials");

    struct nx_run_opts opts = {
        .role = NX_ROLE_PROVIDER,
        .tenants = tenants[0] ? tenants : NULL,
        .dry_run = cli.dry_run || is_status,
        .remove_all = is_unsub,
        .connect = cli.connect,
        .conn = cli.conn,
        .creds = &creds,
    };
    struct nx_run run;
    code = nx_run_execute(m, &opts, &run);
    if (!run.status) {
        /* the run stopped before the diff: one error */
        code = fail(&cli, code);
    } else if (cli.json) {
        for (size_t i = 0; i < run.problems.n; i++)
            fprintf(stderr, "%s\n", run.problems.msgs[i]);
        nx_run_report_json(&run, cli.command, stdout);
    } else if (is_status) {
        nx_run_report_status(&run, stdout);
    } else {
        nx_run_report_text(&run, cli.command, stdout);
    }
    nx_run_release(&run);

cleanup:
    nx_credentials_release(&creds);
    nx_diag_release(&diag);
    nx_model_free(m);
    return code;
}
