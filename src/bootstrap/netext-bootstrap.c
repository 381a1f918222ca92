/* netext-bootstrap: the first-boot program inside a network extension appliance.
 *
 * Reads the payload netext-deploy gave the hypervisor (libvirt fw_cfg,
 * vSphere guestinfo, Hyper-V KVP, or --payload FILE), writes the appliance's
 * configuration under --root, sets up bridges and the firewall, starts one
 * OpenVPN tunnel per extended network, and reports its status where the
 * channel allows. Also switches the SP appliance's failover mode (partial
 * and full site failover are mutually exclusive). The design:
 * docs/internals/bootstrap.md. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "appliance.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "payload.h"
#include "strbuf.h"
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

struct opts {
    const char *command;
    const char *mode;
    const char *payload_file;
    enum nx_app_channel channel;
    const char *root;
    const char *sysroot;
    const char *openvpn;
    char *self;
    bool no_systemd;
    const char **gateways;
    size_t n_gateways;
    const char *status_tty;
    unsigned interval;
};

static struct nx_app_config config(const struct opts *o)
{
    struct nx_app_config c = {o->root, o->openvpn, o->self};
    return c;
}

static char *path_in(const struct opts *o, const char *rel)
{
    return nx_asprintf("%s/%s", strcmp(o->root, "/") ? o->root : "", rel);
}

/* Run a command; its output goes to our stderr/stdout. */
static int run(const char *const argv[])
{
    if (nx_log_level() >= NX_LOG_INFO) {
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; argv[i]; i++)
            strbuf_addf(&sb, "%s%s", i ? " " : "", argv[i]);
        nx_info("running: %s", sb.buf);
        strbuf_release(&sb);
    }
    pid_t pid = fork();
    if (pid < 0)
        return nx_error_set(NX_EX_OSERR, "fork: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "netext-bootstrap: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return nx_error_set(NX_EX_OSERR, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return nx_error_set(NX_EX_OSERR, "%s failed (status %d)", argv[0],
                            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}

static int run_script(const struct opts *o, const char *rel)
{
    char *p = path_in(o, rel);
    const char *argv[] = {"/bin/sh", p, NULL};
    int rc = run(argv);
    free(p);
    return rc;
}

/* ---- state: lock and failover mode ------------------------------------------- */

static int lock_state(const struct opts *o)
{
    char *dir = path_in(o, "var/lib/netext");
    char *lock = path_in(o, "var/lib/netext/lock");
    int fd = -1;
    /* parents 0755, the state directory itself 0700 (also when it exists) */
    if (nx_mkdir_p(dir, 0700) < 0)
        goto cleanup;
    chmod(dir, 0700);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        nx_error_set(NX_EX_CANTCREAT, "%s: %s", lock, strerror(errno));
    else if (flock(fd, LOCK_EX) < 0) {
        nx_error_set(NX_EX_OSERR, "flock %s: %s", lock, strerror(errno));
        close(fd);
        fd = -1;
    }
cleanup:
    free(dir);
    free(lock);
    return fd;
}

/* The mode file: first line the mode, then one NET=IP/PREFIX per line. */
static char *read_mode(const struct opts *o, struct strbuf *gateways)
{
    char *p = path_in(o, "var/lib/netext/failover");
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return nx_strdup("none");
    char line[256];
    char *mode = NULL;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!mode)
            mode = nx_strdup(line);
        else if (gateways && *line)
            strbuf_addf(gateways, "%s\n", line);
    }
    fclose(f);
    return mode ? mode : nx_strdup("none");
}

static int write_mode(const struct opts *o, const char *mode, const struct strbuf *gateways)
{
    struct nx_app_files f = {0};
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "%s\n%s", mode, gateways ? gateways->buf : "");
    NX_GROW(f.items, f.alloc, 1);
    f.items[0].path = nx_strdup("var/lib/netext/failover");
    f.items[0].data = strbuf_detach(&sb, &f.items[0].len);
    f.items[0].mode = 0600;
    f.n = 1;
    int rc = nx_app_write_files(o->root, &f);
    nx_app_files_release(&f);
    return rc;
}

/* ---- the payload ---------------------------------------------------------------- */

static int load_payload(const struct opts *o, bool from_channel, struct nx_payload *p,
                        struct strbuf *raw)
{
    enum nx_app_channel used = NX_CH_FILE;
    int rc;
    if (from_channel) {
        rc = nx_app_read_payload(o->channel, o->payload_file, o->sysroot, raw, &used);
    } else {
        char *saved = path_in(o, "etc/netext/payload.xml");
        rc = nx_app_read_payload(NX_CH_FILE, saved, "", raw, &used);
        if (rc < 0)
            nx_error_prefix("no applied payload (run 'netext-bootstrap apply' first): ");
        free(saved);
    }
    if (rc < 0)
        return -1;
    nx_info("payload: %zu bytes from %s", raw->len, nx_app_channel_name(used));
    return nx_payload_parse(raw->buf, raw->len, "payload", p);
}

/* ---- tunnels ----------------------------------------------------------------------- */

static bool use_systemd(const struct opts *o)
{
    return !o->no_systemd && !strcmp(o->root, "/") && access("/run/systemd/system", F_OK) == 0;
}

/* The PID in the tunnel's pid file, if that process runs our configuration. */
static pid_t tunnel_pid(const struct opts *o, const char *tap)
{
    char *pf = nx_asprintf("run/netext/%s.pid", tap), *pidfile = path_in(o, pf);
    char *conf = nx_asprintf("etc/netext/openvpn/%s.conf", tap), *cpath = path_in(o, conf);
    pid_t pid = 0;
    FILE *f = fopen(pidfile, "r");
    long v;
    if (f && fscanf(f, "%ld", &v) == 1 && v > 1) {
        char *cmdf = nx_asprintf("/proc/%ld/cmdline", v);
        struct strbuf cmd = STRBUF_INIT;
        int fd = open(cmdf, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[4096];
            ssize_t r = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            for (ssize_t i = 0; i < r; i++)
                strbuf_addch(&cmd, buf[i] ? buf[i] : ' ');
        }
        if (strstr(cmd.buf, cpath))
            pid = (pid_t)v;
        strbuf_release(&cmd);
        free(cmdf);
    }
    if (f)
        fclose(f);
    free(pf);
    free(pidfile);
    free(conf);
    free(cpath);
    return pid;
}

static void stop_tunnel(const struct opts *o, const char *tap)
{
    if (use_systemd(o)) {
        char *unit = nx_asprintf("netext-tunnel@%s.service", tap);
        const char *argv[] = {"systemctl", "stop", unit, NULL};
        if (run(argv) < 0)
            nx_warn("%s", nx_error_msg());
        free(unit);
        return;
    }
    pid_t pid = tunnel_pid(o, tap);
    if (pid <= 0)
        return;
    nx_info("stopping tunnel %s (pid %ld)", tap, (long)pid);
    kill(pid, SIGTERM);
    for (int i = 0; i < 50 && kill(pid, 0) == 0; i++)
        usleep(100000);
    if (kill(pid, 0) == 0)
        kill(pid, SIGKILL);
}

static int start_tunnel(const struct opts *o, const char *tap)
{
    if (use_systemd(o)) {
        char *unit = nx_asprintf("netext-tunnel@%s.service", tap);
        const char *en[] = {"systemctl", "enable", unit, NULL};
        const char *rs[] = {"systemctl", "restart", unit, NULL};
        int rc = run(en) < 0 || run(rs) < 0 ? -1 : 0;
        free(unit);
        return rc;
    }
    stop_tunnel(o, tap); /* a changed configuration takes effect */
    char *conf = nx_asprintf("etc/netext/openvpn/%s.conf", tap), *cpath = path_in(o, conf);
    char *log = nx_asprintf("var/log/netext/%s.log", tap), *lpath = path_in(o, log);
    char *logdir = path_in(o, "var/log/netext/x");
    char *pidf = nx_asprintf("run/netext/%s.pid", tap), *ppath = path_in(o, pidf);
    char *name = nx_asprintf("netext-%s", tap);
    /* best effort: OpenVPN reports what it cannot create */
    if (nx_mkdir_parents(logdir) < 0)
        nx_error_clear();
    if (nx_mkdir_parents(ppath) < 0)
        nx_error_clear();
    unlink(ppath);
    const char *argv[] = {o->openvpn, "--daemon", name,  "--log-append",
                          lpath,      "--config", cpath, NULL};
    int rc = run(argv);
    for (int i = 0; rc == 0 && i < 50 && tunnel_pid(o, tap) <= 0; i++)
        usleep(100000);
    if (rc == 0 && tunnel_pid(o, tap) <= 0)
        rc = nx_error_set(NX_EX_OSERR, "tunnel %s did not start; see %s", tap, lpath);
    else if (rc == 0)
        nx_info("tunnel %s started (pid %ld)", tap, (long)tunnel_pid(o, tap));
    free(conf);
    free(cpath);
    free(log);
    free(lpath);
    free(logdir);
    free(pidf);
    free(ppath);
    free(name);
    return rc;
}

/* start: (re)start every tunnel (apply: the configuration may have changed);
 * ensure: start those that do not run; neither: stop them. */
static int for_each_tunnel_mode(const struct opts *o, const struct nx_payload *p, bool start,
                                bool ensure)
{
    if (start && use_systemd(o)) {
        const char *argv[] = {"systemctl", "daemon-reload", NULL};
        if (run(argv) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->n_nets; i++) {
        char tap[16];
        nx_app_tap_name(p->nets[i].vlan, tap);
        if (!start)
            stop_tunnel(o, tap);
        else if (ensure && !use_systemd(o) && tunnel_pid(o, tap) > 0)
            continue;
        else if (start_tunnel(o, tap) < 0)
            return -1;
    }
    return 0;
}

static int for_each_tunnel(const struct opts *o, const struct nx_payload *p, bool start)
{
    return for_each_tunnel_mode(o, p, start, false);
}

/* ---- status ------------------------------------------------------------------------- */

static void status_line(const struct opts *o, const struct nx_payload *p, const char *state,
                        struct strbuf *sb)
{
    char *mode = read_mode(o, NULL);
    size_t up = 0;
    for (size_t i = 0; i < p->n_nets; i++) {
        char tap[16];
        nx_app_tap_name(p->nets[i].vlan, tap);
        up += use_systemd(o) || tunnel_pid(o, tap) > 0;
    }
    strbuf_addf(sb, "state=%s version=%u role=%s failover=%s tunnels=%zu/%zu time=%ld", state,
                p->version, p->role == NX_ROLE_TENANT ? "tenant" : "provider", mode, up, p->n_nets,
                (long)time(NULL));
    free(mode);
}

/* Report back where the hypervisor allows: vSphere guestinfo (vmware-rpctool
 * info-set), Hyper-V KVP (guest pool, which the host reads as
 * GuestExchangeItems). libvirt's fw_cfg is one-way: the status stays in the
 * guest (run/netext/status). */
static void publish(const struct opts *o, const char *line)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, line);
    struct nx_app_files f = {0};
    NX_GROW(f.items, f.alloc, 1);
    f.items[0].path = nx_strdup("run/netext/status");
    strbuf_addch(&sb, '\n');
    f.items[0].data = nx_strdup(sb.buf);
    f.items[0].len = sb.len;
    f.items[0].mode = 0644;
    f.n = 1;
    if (nx_app_write_files(o->root, &f) < 0)
        nx_warn("%s", nx_error_msg());
    nx_app_files_release(&f);
    if (sb.len)
        sb.buf[--sb.len] = '\0';
    char *kvp = nx_asprintf("%s%s", o->sysroot, NX_APP_KVP_OUT);
    char *kvpdir = nx_asprintf("%s/var/lib/hyperv", o->sysroot);
    if (access(kvpdir, W_OK) == 0) {
        if (nx_app_kvp_write(kvp, NX_APP_KVP_STATUS_KEY, sb.buf) < 0)
            nx_warn("status to Hyper-V KVP: %s", nx_error_msg());
    }
    if (!*o->sysroot && nx_app_on_vmware("") && access("/usr/bin/vmware-rpctool", X_OK) == 0) {
        char *arg = nx_asprintf("info-set %s %s", NX_APP_VMWARE_STATUS_KEY, sb.buf);
        const char *argv[] = {"vmware-rpctool", arg, NULL};
        if (run(argv) < 0)
            nx_warn("status to guestinfo: %s", nx_error_msg());
        free(arg);
    }
    nx_info("status: %s", sb.buf);
    free(kvp);
    free(kvpdir);
    strbuf_release(&sb);
}

static void report(const struct opts *o, const struct nx_payload *p, const char *state)
{
    struct strbuf sb = STRBUF_INIT;
    status_line(o, p, state, &sb);
    publish(o, sb.buf);
    strbuf_release(&sb);
}

/* ---- commands ------------------------------------------------------------------------ */

static int parse_gateways(const struct opts *o, const struct nx_payload *p, const char *saved,
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

static int enter_full(const struct opts *o, const struct nx_payload *p, const char *saved,
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
        rc = for_each_tunnel(o, p, false); /* the production site is gone: no tunnels */
    if (rc == 0)
        rc = run_script(o, "etc/netext/failover-full.sh");
    if (rc == 0 && write)
        rc = write_mode(o, "full", &canon);
    nx_app_files_release(&f);
    strbuf_release(&canon);
    free(gw);
    return rc;
}

/* A payload that lost an extended network: stop its tunnel (if stop) and
 * remove its configuration, found as etc/netext/openvpn/nxt<VLAN>.conf. */
static void retire_tunnels(const struct opts *o, const struct nx_payload *p, bool stop)
{
    char *dir = path_in(o, "etc/netext/openvpn");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned vlan;
        char tail[8];
        if (sscanf(e->d_name, "nxt%u.con%7s", &vlan, tail) != 2 || strcmp(tail, "f"))
            continue;
        bool wanted = false;
        for (size_t i = 0; i < p->n_nets && !wanted; i++)
            wanted = p->nets[i].vlan == vlan;
        if (wanted)
            continue;
        char tap[16];
        nx_app_tap_name(vlan, tap);
        nx_info("network with VLAN %u is no longer extended: retiring tunnel %s", vlan, tap);
        if (stop) {
            stop_tunnel(o, tap);
            if (use_systemd(o)) {
                char *unit = nx_asprintf("netext-tunnel@%s.service", tap);
                const char *argv[] = {"systemctl", "disable", unit, NULL};
                if (run(argv) < 0)
                    nx_warn("%s", nx_error_msg());
                free(unit);
            }
        }
        char *conf = nx_asprintf("%s/%s", dir, e->d_name);
        unlink(conf);
        free(conf);
    }
    if (d)
        closedir(d);
    free(dir);
}

static int cmd_apply(const struct opts *o, bool start)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT;
    struct nx_app_files f = {0};
    struct nx_app_config c = config(o);
    int rc = load_payload(o, true, &p, &raw);
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
    retire_tunnels(o, &p, start); /* networks no longer in the payload */
    if (!start)
        goto done;
    rc = run_script(o, "etc/netext/network.sh");
    if (rc == 0) {
        char *nft = path_in(o, "etc/netext/firewall.nft");
        const char *argv[] = {"nft", "-f", nft, NULL};
        rc = run(argv);
        free(nft);
    }
    if (rc == 0) {
        struct strbuf saved = STRBUF_INIT;
        char *mode = read_mode(o, &saved);
        if (p.role == NX_ROLE_PROVIDER && !strcmp(mode, "full"))
            rc = enter_full(o, &p, saved.buf, false); /* a reboot keeps the mode */
        else
            rc = for_each_tunnel(o, &p, true);
        free(mode);
        strbuf_release(&saved);
    }
    report(o, &p, rc == 0 ? "ok" : "error");
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

static int cmd_failover(const struct opts *o, int *exit_code)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT, saved = STRBUF_INIT;
    if (load_payload(o, false, &p, &raw) < 0) {
        strbuf_release_secret(&raw);
        return -1;
    }
    strbuf_release_secret(&raw);
    const char *want = o->mode;
    char *cur = read_mode(o, &saved);
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
        rc = for_each_tunnel_mode(o, &p, true, true);
        if (rc == 0)
            rc = write_mode(o, "partial", NULL);
    } else { /* none */
        if (!strcmp(cur, "full")) {
            rc = run_script(o, "etc/netext/failover-off.sh");
            if (rc == 0)
                rc = for_each_tunnel_mode(o, &p, true, true);
        }
        if (rc == 0)
            rc = write_mode(o, "none", NULL);
    }
    if (rc == 0) {
        printf("netext-bootstrap: tenant %s: %s%s\n", p.tenant,
               !strcmp(want, "none") ? "no site failover" : want,
               !strcmp(want, "none") ? "" : " site failover");
        report(o, &p, "ok");
    }
    free(cur);
    strbuf_release(&saved);
    nx_payload_release(&p);
    return rc;
}

static int cmd_status(const struct opts *o, bool stop)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT;
    int rc = load_payload(o, false, &p, &raw);
    strbuf_release_secret(&raw);
    if (rc < 0)
        return -1;
    if (stop) {
        rc = for_each_tunnel(o, &p, false);
    } else {
        char *mode = read_mode(o, NULL);
        printf("appliance %s tenant %s role %s failover %s\n", p.appliance, p.tenant,
               p.role == NX_ROLE_TENANT ? "tenant" : "provider", mode);
        free(mode);
        for (size_t i = 0; i < p.n_nets; i++) {
            char tap[16];
            nx_app_tap_name(p.nets[i].vlan, tap);
            pid_t pid = tunnel_pid(o, tap);
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

/* ---- supervise: the appliance's long-running part ------------------------------------ */

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

/* A tunnel's state from its OpenVPN log (prev when the log says nothing new);
 * a log grown past NX_APP_LOG_MAX is emptied (OpenVPN appends: it goes on). */
static int tunnel_connected(const struct opts *o, const char *tap, int prev)
{
    char *rel = nx_asprintf("var/log/netext/%s.log", tap), *path = path_in(o, rel);
    int state = prev;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        static char buf[NX_APP_LOG_TAIL];
        off_t off = st.st_size > (off_t)sizeof(buf) ? st.st_size - (off_t)sizeof(buf) : 0;
        ssize_t r = pread(fd, buf, sizeof(buf), off);
        int s = r > 0 ? nx_app_tunnel_log_state(buf, (size_t)r) : -1;
        if (s >= 0)
            state = s;
        if ((unsigned long)st.st_size > NX_APP_LOG_MAX && truncate(path, 0) < 0)
            nx_warn("%s: %s", path, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    free(rel);
    free(path);
    return state;
}

/* " uptime=SECONDS mem_used_kib=N" (MemTotal - MemAvailable), as far as known. */
static void sys_figures(struct strbuf *sb)
{
    FILE *f = fopen("/proc/uptime", "r");
    double up;
    if (f && fscanf(f, "%lf", &up) == 1)
        strbuf_addf(sb, "uptime=%.1f", up);
    if (f)
        fclose(f);
    f = fopen("/proc/meminfo", "r");
    unsigned long total = 0, avail = 0, v;
    char line[128];
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %lu kB", &v) == 1)
            total = v;
        else if (sscanf(line, "MemAvailable: %lu kB", &v) == 1)
            avail = v;
    }
    if (f)
        fclose(f);
    if (total && avail <= total)
        strbuf_addf(sb, "%smem_used_kib=%lu", sb->len ? " " : "", total - avail);
}

/* One "netext-status: ..." line, in one write (the kernel may share the port). */
static void status_tty(const char *tty, const char *line)
{
    int fd = open(tty, O_WRONLY | O_NOCTTY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        nx_warn("%s: %s", tty, strerror(errno));
        return;
    }
    char *out = nx_asprintf("netext-status: %s\r\n", line);
    size_t n = strlen(out);
    if (write(fd, out, n) != (ssize_t)n)
        nx_warn("%s: %s", tty, strerror(errno));
    free(out);
    close(fd);
}

static void pause_for(unsigned seconds)
{
    struct timespec ts = {(time_t)seconds, 0};
    while (!stopping && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmd_supervise(const struct opts *o)
{
    struct nx_payload p;
    struct strbuf raw = STRBUF_INIT;
    bool have = false;
    int *conn = NULL;
    char *last = NULL;
    int ret = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* OpenVPN daemonizes: its processes become our children, reaped below */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        nx_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    while (!stopping) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        int lock = lock_state(o);
        if (lock < 0) {
            ret = -1;
            break;
        }
        struct strbuf line = STRBUF_INIT, figures = STRBUF_INIT;
        char *mode = read_mode(o, NULL);
        if (!have) {
            /* until the payload is there and good (Hyper-V fills its KVP pool late) */
            if (cmd_apply(o, true) == 0 && load_payload(o, false, &p, &raw) == 0) {
                have = true;
                conn = nx_calloc(p.n_nets + 1, sizeof(*conn));
            } else {
                nx_app_status_format(&line, "error", "unknown", mode, 0, 0, NULL, nx_error_msg());
            }
            strbuf_release_secret(&raw);
        }
        if (have) {
            bool full = p.role == NX_ROLE_PROVIDER && !strcmp(mode, "full");
            size_t up = 0;
            for (size_t i = 0; i < p.n_nets; i++) {
                char tap[16];
                nx_app_tap_name(p.nets[i].vlan, tap);
                if (full) { /* the production site is gone: no tunnels, by design */
                    conn[i] = 0;
                    continue;
                }
                if (tunnel_pid(o, tap) <= 0) {
                    nx_warn("tunnel %s: OpenVPN is not running: starting it again", tap);
                    conn[i] = 0;
                    if (start_tunnel(o, tap) < 0)
                        nx_warn("%s", nx_error_msg());
                }
                conn[i] = tunnel_connected(o, tap, conn[i]);
                up += conn[i] == 1;
            }
            nx_app_status_format(&line, full || up == p.n_nets ? "ok" : "waiting",
                                 p.role == NX_ROLE_TENANT ? "tenant" : "provider", mode, up,
                                 p.n_nets, NULL, NULL);
        }
        if (!last || strcmp(last, line.buf)) {
            /* the figures are not part of the comparison: a change of state is */
            struct strbuf out = STRBUF_INIT;
            const char *reason = strstr(line.buf, " reason=");
            size_t head = reason ? (size_t)(reason - line.buf) : line.len;
            sys_figures(&figures);
            strbuf_add(&out, line.buf, head);
            if (have)
                strbuf_addf(&out, " appliance=%s", p.appliance);
            if (figures.len)
                strbuf_addf(&out, " %s", figures.buf);
            strbuf_addstr(&out, line.buf + head);
            status_tty(o->status_tty, out.buf);
            strbuf_addf(&out, " time=%ld", (long)time(NULL));
            publish(o, out.buf);
            strbuf_release(&out);
            free(last);
            last = strbuf_detach(&line, NULL);
        }
        free(mode);
        strbuf_release(&line);
        strbuf_release(&figures);
        close(lock);
        pause_for(have ? o->interval : 3 * o->interval); /* errors: less often */
    }
    if (have) {
        int lock = lock_state(o);
        if (for_each_tunnel(o, &p, false) < 0)
            nx_warn("%s", nx_error_msg());
        if (lock >= 0)
            close(lock);
        nx_payload_release(&p);
    }
    free(conn);
    free(last);
    return ret;
}

/* The options; -1 to go on, else the exit status (--help, --version, a
 * usage error). */
static int parse_options(int argc, char **argv, struct opts *o, int *level)
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

static int run_apply(const struct opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_apply(o, true);
}

static int run_render(const struct opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_apply(o, false);
}

static int run_status(const struct opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_status(o, false);
}

static int run_stop(const struct opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_status(o, true);
}

static int run_supervise(const struct opts *o, int *exit_code __attribute__((unused)))
{
    return cmd_supervise(o);
}

struct command {
    const char *name;
    /* 0, or -1 with nx_error set; *exit_code: a status of the command's own */
    int (*run)(const struct opts *o, int *exit_code);
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
    struct opts o = {.root = "/",
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
    int lock = locks_itself ? -1 : lock_state(&o);
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
