/* main.c: the netext-deploy command line: options, help, dispatch. */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"
#include "cmd_payload.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "xml.h"

static const char usage_text[] =
    "Usage: netext-deploy [OPTIONS] COMMAND ARGS...\n"
    "\n"
    "Deploy and maintain network extension appliances for cloud disaster recovery.\n"
    "\n"
    "Provider side (PLAN: netext-plan(5) files or directories of *.xml files):\n"
    "  subscribe PLAN...       create or update the appliances of one tenant (--tenant,\n"
    "                          unless the plan has one tenant): one per replication-\n"
    "                          target host; re-run after a plan change\n"
    "  unsubscribe PLAN...     remove every provider-side appliance of --tenant\n"
    "  batch PLAN...           every tenant of the plan: validate all, then deploy with\n"
    "                          -j tenants at a time; progress, summary, --json\n"
    "  export-bundle PLAN...   write --tenant's bundle for the tenant side to -o FILE\n"
    "                          (0600: it holds the tenant's tunnel credentials)\n"
    "  payload PLAN...         print one appliance's bootstrap payload (--tenant, --host,\n"
    "                          --role provider|tenant; -o FILE writes it 0600: it holds\n"
    "                          the appliance's private key)\n"
    "  rotate PLAN...          new tunnel keys and certificates for --tenant\n"
    "  rotate-ca PLAN...       the same with a new tenant CA\n"
    "  revoke PLAN...          refuse tenant-side appliance --appliance NAME of --tenant\n"
    "                          from the next subscribe on (--undo: accept it again)\n"
    "Tenant side (CONFIG: a <netext-tenant> file, see netext-plan(5)):\n"
    "  rescan CONFIG...        reconcile the tenant-side appliances with the bundle\n"
    "                          (the hook to run after rescanning the provider)\n"
    "Both sides:\n"
    "  status PLAN|CONFIG...   existing vs. desired appliances; changes nothing\n"
    "  validate PLAN|CONFIG... check the files only; contacts no hypervisor\n"
    "\n"
    "Options:\n"
    "  -t, --tenant NAME       the tenant to act on\n"
    "  -c, --connect URI       use URI for every host instead of the plan's host URIs\n"
    "  -n, --dry-run           print the actions that would be taken; change nothing\n"
    "      --json              machine-readable result on stdout (logs stay on stderr)\n"
    "  -v, --verbose           more log lines on stderr (repeat: debug, phase timings)\n"
    "  -q, --quiet             errors only on stderr\n"
    "  -j, --jobs N            batch: tenants worked on at once (default 4, 1-64)\n"
    "  -o, --output FILE       export-bundle: where to write the bundle ('-': stdout)\n"
    "      --bundle FILE       rescan: the bundle (default: the one the CONFIG names)\n"
    "      --appliance NAME    revoke: the tenant-side appliance (as `status` on the\n"
    "                          tenant side names it)\n"
    "      --undo              revoke: take NAME off the revocation list\n"
    "      --state-dir DIR     locks and keys (default /var/lib/netext-deploy;\n"
    "                          also NETEXT_DEPLOY_STATE_DIR)\n"
    "      --lock-wait SEC     wait up to SEC seconds for a run on the same tenant to\n"
    "                          finish (default 0: fail at once with status 75)\n"
    "      --credentials FILE  user and password per URI (mode 0600); see netext-deploy(8).\n"
    "                          Also: NETEXT_DEPLOY_CREDENTIALS, NETEXT_DEPLOY_USER,\n"
    "                          NETEXT_DEPLOY_PASSWORD. Never on the command line.\n"
    "      --cacert FILE       trust the CA certificates in FILE (vSphere, Hyper-V)\n"
    "      --thumbprint HEX    accept exactly the server certificate with this SHA-256\n"
    "      --insecure          do not verify TLS certificates (warns; for labs only)\n"
    "      --timeout SEC       per-request timeout for vSphere and Hyper-V (default 60)\n"
    "      --image FILE        the appliance image (the ISO 'make appliance' builds)\n"
    "                          every appliance boots; default: the plan's <defaults\n"
    "                          image=>, else " NX_IMAGE_DEFAULT "\n"
    "                          when it exists\n"
    "      --no-image          attach no image and change none (appliances boot nothing)\n"
    "      --metrics FILE      at the end, write the run's metrics to FILE in Prometheus\n"
    "                          text format (atomically, mode 0644, for node_exporter's\n"
    "                          textfile collector): tenants by result, changes,\n"
    "                          failures, phase durations, requests per endpoint\n"
    "  -h, --help              this text\n"
    "  -V, --version           version and built-in providers\n"
    "\n"
    "Exit status: 0 done or up to date; 1 some hypervisor actions failed; 64 usage;\n"
    "65 invalid plan or placement refused (nothing changed for that tenant); 66 input\n"
    "not found; 69 hypervisor unreachable; 70 internal error; 73 cannot write output;\n"
    "74 state directory not synced; 75 another run holds the tenant's lock; 77\n"
    "credentials refused.\n"
    "See netext-deploy(8) and netext-plan(5).\n";

enum {
    OPT_JSON = 256,
    OPT_CREDS,
    OPT_CACERT,
    OPT_THUMB,
    OPT_INSECURE,
    OPT_IMAGE,
    OPT_NO_IMAGE,
    OPT_TIMEOUT,
    OPT_STATE_DIR,
    OPT_LOCK_WAIT,
    OPT_BUNDLE,
    OPT_ROLE,
    OPT_HOST,
    OPT_METRICS,
    OPT_APPLIANCE,
    OPT_UNDO,
};

static const struct option long_opts[] = {
    {"tenant", required_argument, NULL, 't'},
    {"connect", required_argument, NULL, 'c'},
    {"dry-run", no_argument, NULL, 'n'},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"jobs", required_argument, NULL, 'j'},
    {"output", required_argument, NULL, 'o'},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
    {"credentials", required_argument, NULL, OPT_CREDS},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"thumbprint", required_argument, NULL, OPT_THUMB},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"no-image", no_argument, NULL, OPT_NO_IMAGE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"role", required_argument, NULL, OPT_ROLE},
    {"host", required_argument, NULL, OPT_HOST},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"appliance", required_argument, NULL, OPT_APPLIANCE},
    {"undo", no_argument, NULL, OPT_UNDO},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

struct command {
    const char *name;
    int (*run)(struct nx_cli *cli);
};

static const struct command commands[] = {
    {"subscribe", nx_cmd_reconcile}, {"unsubscribe", nx_cmd_reconcile},
    {"status", nx_cmd_reconcile},    {"validate", nx_cmd_validate},
    {"batch", nx_cmd_batch},         {"export-bundle", nx_cmd_export_bundle},
    {"rescan", nx_cmd_rescan},       {"payload", nx_cmd_payload},
    {"rotate", nx_cmd_rotate},       {"rotate-ca", nx_cmd_rotate},
    {"revoke", nx_cmd_revoke},
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

static int parse_args(int argc, char **argv, struct nx_cli *cli)
{
    int c;
    unsigned long v;
    cli->verbosity = NX_LOG_WARN;
    cli->jobs = 4;
    cli->conn.request_timeout_ms = 60000;
    cli->conn.connect_timeout_ms = 15000;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:c:nvqj:o:hV", long_opts, NULL)) != -1) {
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
        case 'j':
            if (!nx_parse_uint(optarg, 1, 64, &v))
                return usage_error("--jobs '%s': not a number in 1-64", optarg);
            cli->jobs = (unsigned)v;
            break;
        case 'o':
            cli->output = optarg;
            break;
        case OPT_BUNDLE:
            cli->bundle = optarg;
            break;
        case OPT_STATE_DIR:
            cli->state_dir_opt = optarg;
            break;
        case OPT_LOCK_WAIT:
            if (!nx_parse_uint(optarg, 0, 86400, &v))
                return usage_error("--lock-wait '%s': not a number of seconds (0-86400)", optarg);
            cli->lock_wait = (unsigned)v;
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
        case OPT_IMAGE:
            cli->image = optarg;
            break;
        case OPT_NO_IMAGE:
            cli->no_image = true;
            break;
        case OPT_TIMEOUT:
            if (!nx_parse_uint(optarg, 1, 86400, &v))
                return usage_error("--timeout '%s': not a number of seconds (1-86400)", optarg);
            cli->conn.request_timeout_ms = (long)v * 1000;
            break;
        case OPT_ROLE:
            cli->role = optarg;
            break;
        case OPT_HOST:
            cli->host = optarg;
            break;
        case OPT_APPLIANCE:
            cli->appliance = optarg;
            break;
        case OPT_UNDO:
            cli->undo = true;
            break;
        case OPT_METRICS:
            cli->metrics = optarg;
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
    cli->args = argv + optind;
    cli->n_args = (size_t)(argc - optind);
    return 0;
}

/* Passwords and keys live in this process's memory: no core dumps, and no
 * ptrace by other users' processes (PR_SET_DUMPABLE also makes /proc/PID
 * files root-owned). */
static void protect_secrets(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    struct nx_cli cli = {0};
    protect_secrets();
    int rc = parse_args(argc, argv, &cli);
    if (rc != 0)
        return rc < 0 ? NX_EX_OK : rc;
    nx_log_set_level(cli.verbosity);
    nx_xml_init();
    for (size_t i = 0; i < NX_ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, cli.command) != 0)
            continue;
        if (cli.n_args == 0)
            return usage_error("%s: no plan or configuration file given", cli.command);
        if (!cli.metrics)
            return commands[i].run(&cli);
        struct nx_metrics mt;
        nx_metrics_init(&mt, cli.command, cli.dry_run);
        cli.metrics_data = &mt;
        rc = commands[i].run(&cli);
        if (nx_metrics_write(cli.metrics, &mt, rc) < 0) {
            fprintf(stderr, "netext-deploy: %s\n", nx_error_msg());
            if (rc == NX_EX_OK)
                rc = NX_EX_CANTCREAT;
        }
        nx_metrics_release(&mt);
        return rc;
    }
    return usage_error("unknown command '%s'", cli.command);
}
