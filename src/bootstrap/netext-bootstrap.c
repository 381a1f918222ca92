/* netext-bootstrap: the first-boot program inside a network extension appliance.
 *
 * Reads the payload netext-deploy gave the hypervisor (libvirt fw_cfg,
 * vSphere guestinfo, Hyper-V KVP, or --payload FILE), writes the appliance's
 * configuration under --root, sets up bridges and the firewall, starts one
 * OpenVPN tunnel per extended network, and reports its status where the
 * channel allows. Also switches the SP appliance's failover mode (partial
 * and full site failover are mutually exclusive). The design:
 * docs/internals/bootstrap.md; the parts: bootstrap.h.
 *
 * This file: the options, the command table and the commands. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "xml.h"

static const char usage_text[] =
    "Usage: netext-bootstrap [OPTIONS] [COMMAND]\n"
    "\n"
    "Set up a netext-deploy network extension appliance from its payload.\n"
    "\n"
    "Commands:\n"
    "  apply              (default) read the payload from the hypervisor channel, write the\n"
    "                     configuration, set up bridges and firewall, start the tunnels,\n"
    "                     report the status\n"
    "  render             only read the payload and write the configuration files\n"
    "  failover MODE      SP appliance: partial | full | none. Partial and full site\n"
    "                     failover are mutually exclusive: switching from one to the other\n"
    "                     is refused until 'failover none'\n"
    "  status             print the failover mode and the state of each tunnel\n"
    "  stop               stop the tunnels this program started\n"
    "  supervise          run in the appliance (its init starts it): apply (retried until\n"
    "                     the payload is there and good), then restart every tunnel whose\n"
    "                     OpenVPN died and write a 'netext-status:' line to --status-tty\n"
    "                     whenever the state changes; SIGTERM stops the tunnels and ends it\n"
    "\n"
    "Options:\n"
    "  --payload FILE     read the payload from FILE (XML, or base64 as the channels carry it)\n"
    "  --channel CH       auto (default), file, fwcfg (libvirt), vmware (guestinfo),\n"
    "                     hyperv (KVP)\n"
    "  --root DIR         write configuration and state under DIR (default /)\n"
    "  --sysroot DIR      prefix for the fw_cfg and KVP paths (tests)\n"
    "  --gateway NET=IP/PREFIX  failover full: the replicas' default gateway on extended\n"
    "                     network NET (name or VLAN id); repeat for each network\n"
    "  --openvpn PATH     the OpenVPN program (default /usr/sbin/openvpn)\n"
    "  --no-systemd       start OpenVPN directly, even when systemd runs\n"
    "  --status-tty PATH  supervise: where the status lines go (default /dev/ttyS0)\n"
    "  --interval SEC     supervise: seconds between checks (default 2)\n"
    "  -v, --verbose      more log lines; -q, --quiet errors only\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Exit status: 0 done; 1 refused (e.g. the other failover mode is active); 64 usage;\n"
    "65 bad payload; 66 no payload; 70 internal error; 71 a command failed.\n";

enum {
    OPT_PAYLOAD = 256,
    OPT_CHANNEL,
    OPT_ROOT,
    OPT_SYSROOT,
    OPT_GATEWAY,
    OPT_OPENVPN,
    OPT_NOSD,
    OPT_STATUS_TTY,
    OPT_INTERVAL,
};

static const struct option long_opts[] = {
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"channel", required_argument, NULL, OPT_CHANNEL},
    {"root", required_argument, NULL, OPT_ROOT},
    {"sysroot", required_argument, NULL, OPT_SYSROOT},
    {"gateway", required_argument, NULL, OPT_GATEWAY},
    {"openvpn", required_argument, NULL, OPT_OPENVPN},
    {"no-systemd", no_argument, NULL, OPT_NOSD},
    {"status-tty", required_argument, NULL, OPT_STATUS_TTY},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static struct nx_app_config config(const struct nx_bs_opts *o)
{
    struct nx_app_config c = {o->root, o->openvpn, o->self};
    return c;
}

/* ---- commands ------------------------------------------------------------------------ */

static int parse_gateways(const struct nx_bs_opts *o, const struct nx_payload *p, const char *saved,
                          struct nx_app_gateway **out, size_t *n, struct strbuf *canon)
{
    *out = nx_calloc(o->n_gateways + 32, sizeof(**out));
    *n = 0;
    struct strbuf all = STRBUF_INIT;
    for (size_t i = 0; i < o->n_gateways; i++)
        strbuf_addf(&all, "%s\n", o->gateways[i]);
    if (!o->n_gateways && saved)
        strbuf_addstr(&all, saved);
    int ret = 0;
    char *save = NULL;
    for (char *line = strtok_r(all.buf, "\n", &save); line && ret == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strrchr(line, '=');
        uint32_t ip;
        unsigned prefix;
        if (!eq || !nx_parse_cidr(eq + 1, &ip, &prefix) || prefix < 1 || prefix > 30) {
            ret = nx_error_set(NX_EX_USAGE, "--gateway '%s': expected NETWORK=IP/PREFIX", line);
            break;
        }
        *eq = '\0';
        const struct nx_payload_net *net = NULL;
        unsigned long vlan;
        for (size_t k = 0; k < p->n_nets && !net; k++)
            if (!strcmp(p->nets[k].name, line) ||
                (nx_parse_uint(line, 1, 4094, &vlan) && p->nets[k].vlan == vlan))
                net = &p->nets[k];
        if (!net) {
            ret = nx_error_set(NX_EX_USAGE,
                               "--gateway: '%s' is not an extended network of this "
                               "appliance",
                               line);
            break;
        }
        if (*n >= o->n_gateways + 32) {
            ret = nx_error_set(NX_EX_USAGE, "too many gateways");
            break;
        }
        (*out)[*n].net = net;
        (*out)[*n].ip = ip;
        (*out)[*n].prefix = prefix;
        (*n)++;
        char a[16];
        nx_format_ipv4(ip, a);
        strbuf_addf(canon, "%u=%s/%u\n", net->vlan, a, prefix);
    }
    strbuf_release(&all);
    return ret;
}

static int enter_full(const struct nx_bs_opts *o, const struct nx_payload *p, const char *saved,
                      bool write)
{
    struct nx_app_gateway *gw = NULL;
    size_t n_gw = 0;
    struct strbuf canon = STRBUF_INIT;
    struct nx_app_files f = {0};
    struct nx_app_config c = config(o);
    int rc = parse_gateways(o, p, saved, &gw, &n_gw, &canon);
    if (rc == 0 && n_gw == 0 && p->n_nets)
        nx_warn("full site failover without --gateway: the replicas have no default gateway "
                "on their networks (only the public IP rules reach them)");
    if (rc == 0)
        rc = nx_app_render_failover(p, &c, gw, n_gw, &f);
    if (rc == 0)
        rc = nx_app_write_files(o->root, &f);
    if (rc == 0)
        rc = nx_bs_tunnels(o, p, false); /* the production site is gone: no tunnels */
    if (rc == 0)
        rc = nx_bs_run_script(o, "etc/netext/failover-full.sh");
    if (rc == 0 && write)
        rc = nx_bs_write_mode(o, "full", &canon);
    nx_app_files_release(&f);
    strbuf_release(&canon);
    free(gw);
    return rc;
}

int nx_bs_apply(const struct nx_bs_opts *o, bool start)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT;
    struct nx_app_files f = {0};
    struct nx_app_config c = config(o);
    int rc = nx_bs_load_payload(o, true, &p, &raw);
    if (rc < 0)
        goto out;
    rc = nx_app_render(&p, &c, &f);
    if (rc == 0) {
        NX_GROW(f.items, f.alloc, f.n + 1);
        struct nx_app_file *e = &f.items[f.n++];
        e->path = nx_strdup("etc/netext/payload.xml");
        e->data = nx_strndup(raw.buf, raw.len);
        e->len = raw.len;
        e->mode = 0600;
        rc = nx_app_write_files(o->root, &f);
    }
    if (rc < 0)
        goto done;
    nx_bs_retire_tunnels(o, &p, start); /* networks no longer in the payload */
    if (!start)
        goto done;
    rc = nx_bs_run_script(o, "etc/netext/network.sh");
    if (rc == 0) {
        char *nft = nx_bs_path(o, "etc/netext/firewall.nft");
        const char *argv[] = {"nft", "-f", nft, NULL};
        rc = nx_bs_run(argv);
        free(nft);
    }
    if (rc == 0) {
        struct strbuf saved = STRBUF_INIT;
        char *mode = nx_bs_read_mode(o, &saved);
        if (p.role == NX_ROLE_PROVIDER && !strcmp(mode, "full"))
            rc = enter_full(o, &p, saved.buf, false); /* a reboot keeps the mode */
        else
            rc = nx_bs_tunnels(o, &p, true);
        free(mode);
        strbuf_release(&saved);
    }
    nx_bs_report(o, &p, rc == 0 ? "ok" : "error");
done:
    if (rc == 0)
        printf("netext-bootstrap: appliance %s (tenant %s, %s side): %zu tunnel%s %s\n",
               p.appliance, p.tenant, p.role == NX_ROLE_TENANT ? "tenant" : "provider", p.n_nets,
               p.n_nets == 1 ? "" : "s", start ? "started" : "rendered");
    nx_payload_release(&p);
out:
    nx_app_files_release(&f);
    strbuf_release_secret(&raw);
    return rc;
}

static int cmd_failover(const struct nx_bs_opts *o, int *exit_code)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT, saved = STRBUF_INIT;
    if (nx_bs_load_payload(o, false, &p, &raw) < 0) {
        strbuf_release_secret(&raw);
        return -1;
    }
    strbuf_release_secret(&raw);
    const char *want = o->mode;
    char *cur = nx_bs_read_mode(o, &saved);
    int rc = 0;
    if (p.role != NX_ROLE_PROVIDER) {
        rc = nx_error_set(NX_EX_USAGE, "failover: this is the tenant-side appliance; site "
                                       "failover is switched on the SP appliance");
    } else if (strcmp(want, "partial") && strcmp(want, "full") && strcmp(want, "none")) {
        rc = nx_error_set(NX_EX_USAGE, "failover: mode '%s': partial, full or none", want);
    } else if (strcmp(cur, "none") && strcmp(want, "none") && strcmp(cur, want)) {
        *exit_code = 1;
        rc = nx_error_set(1,
                          "failover %s refused: tenant '%s' is in %s site failover; partial and "
                          "full site failover are mutually exclusive (end it first with "
                          "'netext-bootstrap failover none')",
                          want, p.tenant, cur);
    } else if (!strcmp(want, "full")) {
        rc = enter_full(o, &p, saved.buf, true);
    } else if (!strcmp(want, "partial")) {
        rc = nx_bs_tunnels_mode(o, &p, true, true);
        if (rc == 0)
            rc = nx_bs_write_mode(o, "partial", NULL);
    } else { /* none */
        if (!strcmp(cur, "full")) {
            rc = nx_bs_run_script(o, "etc/netext/failover-off.sh");
            if (rc == 0)
                rc = nx_bs_tunnels_mode(o, &p, true, true);
        }
        if (rc == 0)
            rc = nx_bs_write_mode(o, "none", NULL);
    }
    if (rc == 0) {
        printf("netext-bootstrap: tenant %s: %s%s\n", p.tenant,
               !strcmp(want, "none") ? "no site failover" : want,
               !strcmp(want, "none") ? "" : " site failover");
        nx_bs_report(o, &p, "ok");
    }
    free(cur);
    strbuf_release(&saved);
    nx_payload_release(&p);
    return rc;
}

static int cmd_status(const struct nx_bs_opts *o, bool stop)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT;
    int rc = nx_bs_load_payload(o, false, &p, &raw);
    strbuf_release_secret(&raw);
    if (rc < 0)
        return -1;
    if (stop) {
        rc = nx_bs_tunnels(o, &p, false);
    } else {
        char *mode = nx_bs_read_mode(o, NULL);
        printf("appliance %s tenant %s role %s failover %s\n", p.appliance, p.tenant,
               p.role == NX_ROLE_TENANT ? "tenant" : "provider", mode);
        free(mode);
        for (size_t i = 0; i < p.n_nets; i++) {
            char tap[16];
            nx_app_tap_name(p.nets[i].vlan, tap);
            pid_t pid = nx_bs_tunnel_pid(o, tap);
            if (pid > 0)
                printf("tunnel %s network %s vlan %u port %u running pid %ld\n", tap,
                       p.nets[i].name, p.nets[i].vlan, p.nets[i].port, (long)pid);
            else
                printf("tunnel %s network %s vlan %u port %u stopped\n", tap, p.nets[i].name,
                       p.nets[i].vlan, p.nets[i].port);
        }
    }
    nx_payload_release(&p);
    return rc;
}
/* The options; -1 to go on, else the exit status (--help, --version, a
 * usage error). */
static int parse_options(int argc, char **argv, struct nx_bs_opts *o, int *level)
{
    size_t alloc_gw = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhV", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_PAYLOAD:
            o->payload_file = optarg;
            break;
        case OPT_CHANNEL:
            if (!nx_app_channel_parse(optarg, &o->channel)) {
                fprintf(stderr,
                        "netext-bootstrap: --channel '%s': auto, file, fwcfg, vmware or "
                        "hyperv\n",
                        optarg);
                return NX_EX_USAGE;
            }
            break;
        case OPT_ROOT:
            o->root = optarg;
            break;
        case OPT_SYSROOT:
            o->sysroot = optarg;
            break;
        case OPT_GATEWAY:
            NX_GROW(o->gateways, alloc_gw, o->n_gateways + 1);
            o->gateways[o->n_gateways++] = optarg;
            break;
        case OPT_OPENVPN:
            o->openvpn = optarg;
            break;
        case OPT_NOSD:
            o->no_systemd = true;
            break;
        case OPT_STATUS_TTY:
            o->status_tty = optarg;
            break;
        case OPT_INTERVAL: {
            unsigned long v;
            if (!nx_parse_uint(optarg, 1, 3600, &v)) {
                fprintf(stderr, "netext-bootstrap: --interval '%s': 1 to 3600 seconds\n", optarg);
                return NX_EX_USAGE;
            }
            o->interval = (unsigned)v;
            break;
        }
        case 'v':
            (*level)++;
            break;
        case 'q':
            *level = NX_LOG_ERROR;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            printf("netext-bootstrap %s (payload version %d)\n", PACKAGE_VERSION,
                   NX_PAYLOAD_VERSION);
            return 0;
        default:
            fprintf(stderr, "netext-bootstrap: bad option '%s'\nTry 'netext-bootstrap --help'.\n",
                    argv[optind - 1]);
            return NX_EX_USAGE;
        }
    }
    return -1;
}

static int run_apply(const struct nx_bs_opts *o, int *exit_code __attribute__((unused)))
{
    return nx_bs_apply(o, true);
}

static int run_render(const struct nx_bs_opts *o, int *exit_code __attribute__((unused)))
{
    return nx_bs_apply(o, false);
}

static int run_status(const struct nx_bs_opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_status(o, false);
}

static int run_stop(const struct nx_bs_opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_status(o, true);
}

static int run_supervise(const struct nx_bs_opts *o, int *exit_code __attribute__((unused)))
{
    return nx_bs_supervise(o);
}

struct command {
    const char *name;
    /* 0, or -1 with nx_error set; *exit_code: a status of the command's own */
    int (*run)(const struct nx_bs_opts *o, int *exit_code);
    bool takes_mode; /* one argument: failover MODE */
    bool locks_itself; /* supervise takes the state lock each round */
};

static const struct command commands[] = {
    {"apply", run_apply, false, false},      {"render", run_render, false, false},
    {"failover", cmd_failover, true, false}, {"status", run_status, false, false},
    {"stop", run_stop, false, false},        {"supervise", run_supervise, false, true},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NX_ARRAY_SIZE(commands); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct nx_bs_opts o = {.root = "/",
                           .sysroot = "",
                           .openvpn = "/usr/sbin/openvpn",
                           .status_tty = "/dev/ttyS0",
                           .interval = 2};
    int level = NX_LOG_WARN;
    int done = parse_options(argc, argv, &o, &level);
    if (done >= 0) {
        free(o.gateways);
        return done;
    }
    nx_log_set_level(level);
    nx_xml_init();
    o.command = optind < argc ? argv[optind++] : "apply";
    const struct command *cmd = find_command(o.command);
    if (cmd && cmd->takes_mode) {
        if (optind >= argc) {
            fprintf(stderr, "netext-bootstrap: failover needs a mode: partial, full or none\n");
            return NX_EX_USAGE;
        }
        o.mode = argv[optind++];
    }
    if (optind < argc) {
        fprintf(stderr, "netext-bootstrap: unexpected argument '%s'\n", argv[optind]);
        return NX_EX_USAGE;
    }
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    o.self = nx_strdup(sl > 0 ? (self[sl] = '\0', self) : "/usr/sbin/netext-bootstrap");
    if (o.root[0] != '/') {
        fprintf(stderr, "netext-bootstrap: --root must be an absolute path\n");
        return NX_EX_USAGE;
    }
    int exit_code = 0, rc;
    bool locks_itself = cmd && cmd->locks_itself;
    int lock = locks_itself ? -1 : nx_bs_lock(&o);
    if (!locks_itself && lock < 0) {
        rc = -1;
    } else if (cmd) {
        rc = cmd->run(&o, &exit_code);
    } else {
        fprintf(stderr, "netext-bootstrap: unknown command '%s'\n", o.command);
        rc = 0;
        exit_code = NX_EX_USAGE;
    }
    if (rc < 0) {
        fprintf(stderr, "netext-bootstrap: %s\n", nx_error_msg());
        if (!exit_code)
            exit_code = nx_error_code() ? nx_error_code() : NX_EX_SOFTWARE;
    }
    if (lock >= 0)
        close(lock);
    free(o.gateways);
    free(o.self);
    return exit_code;
}
