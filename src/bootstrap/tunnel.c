/* tunnel.c: netext-bootstrap's OpenVPN tunnels, one per extended network:
 * started, stopped and retired (by systemd or as daemons of our own), and
 * their state from their logs. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "util.h"

bool nx_bs_use_systemd(const struct nx_bs_opts *o)
{
    return !o->no_systemd && !strcmp(o->root, "/") && access("/run/systemd/system", F_OK) == 0;
}

/* The PID in the tunnel's pid file, if that process runs our configuration. */
pid_t nx_bs_tunnel_pid(const struct nx_bs_opts *o, const char *tap)
{
    char *pf = nx_asprintf("run/netext/%s.pid", tap), *pidfile = nx_bs_path(o, pf);
    char *conf = nx_asprintf("etc/netext/openvpn/%s.conf", tap), *cpath = nx_bs_path(o, conf);
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

static void stop_tunnel(const struct nx_bs_opts *o, const char *tap)
{
    if (nx_bs_use_systemd(o)) {
        char *unit = nx_asprintf("netext-tunnel@%s.service", tap);
        const char *argv[] = {"systemctl", "stop", unit, NULL};
        if (nx_bs_run(argv) < 0)
            nx_warn("%s", nx_error_msg());
        free(unit);
        return;
    }
    pid_t pid = nx_bs_tunnel_pid(o, tap);
    if (pid <= 0)
        return;
    nx_info("stopping tunnel %s (pid %ld)", tap, (long)pid);
    kill(pid, SIGTERM);
    for (int i = 0; i < 50 && kill(pid, 0) == 0; i++)
        usleep(100000);
    if (kill(pid, 0) == 0)
        kill(pid, SIGKILL);
}

int nx_bs_start_tunnel(const struct nx_bs_opts *o, const char *tap)
{
    if (nx_bs_use_systemd(o)) {
        char *unit = nx_asprintf("netext-tunnel@%s.service", tap);
        const char *en[] = {"systemctl", "enable", unit, NULL};
        const char *rs[] = {"systemctl", "restart", unit, NULL};
        int rc = nx_bs_run(en) < 0 || nx_bs_run(rs) < 0 ? -1 : 0;
        free(unit);
        return rc;
    }
    stop_tunnel(o, tap); /* a changed configuration takes effect */
    char *conf = nx_asprintf("etc/netext/openvpn/%s.conf", tap), *cpath = nx_bs_path(o, conf);
    char *log = nx_asprintf("var/log/netext/%s.log", tap), *lpath = nx_bs_path(o, log);
    char *logdir = nx_bs_path(o, "var/log/netext/x");
    char *pidf = nx_asprintf("run/netext/%s.pid", tap), *ppath = nx_bs_path(o, pidf);
    char *name = nx_asprintf("netext-%s", tap);
    /* best effort: OpenVPN reports what it cannot create */
    if (nx_mkdir_parents(logdir) < 0)
        nx_error_clear();
    if (nx_mkdir_parents(ppath) < 0)
        nx_error_clear();
    unlink(ppath);
    const char *argv[] = {o->openvpn, "--daemon", name,  "--log-append",
                          lpath,      "--config", cpath, NULL};
    int rc = nx_bs_run(argv);
    for (int i = 0; rc == 0 && i < 50 && nx_bs_tunnel_pid(o, tap) <= 0; i++)
        usleep(100000);
    if (rc == 0 && nx_bs_tunnel_pid(o, tap) <= 0)
        rc = nx_error_set(NX_EX_OSERR, "tunnel %s did not start; see %s", tap, lpath);
    else if (rc == 0)
        nx_info("tunnel %s started (pid %ld)", tap, (long)nx_bs_tunnel_pid(o, tap));
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
int nx_bs_tunnels_mode(const struct nx_bs_opts *o, const struct nx_payload *p, bool start,
                       bool ensure)
{
    if (start && nx_bs_use_systemd(o)) {
        const char *argv[] = {"systemctl", "daemon-reload", NULL};
        if (nx_bs_run(argv) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->n_nets; i++) {
        char tap[16];
        nx_app_tap_name(p->nets[i].vlan, tap);
        if (!start)
            stop_tunnel(o, tap);
        else if (ensure && !nx_bs_use_systemd(o) && nx_bs_tunnel_pid(o, tap) > 0)
            continue;
        else if (nx_bs_start_tunnel(o, tap) < 0)
            return -1;
    }
    return 0;
}

int nx_bs_tunnels(const struct nx_bs_opts *o, const struct nx_payload *p, bool start)
{
    return nx_bs_tunnels_mode(o, p, start, false);
}

/* A payload that lost an extended network: stop its tunnel (if stop) and
 * remove its configuration, found as etc/netext/openvpn/nxt<VLAN>.conf. */
void nx_bs_retire_tunnels(const struct nx_bs_opts *o, const struct nx_payload *p, bool stop)
{
    char *dir = nx_bs_path(o, "etc/netext/openvpn");
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
            if (nx_bs_use_systemd(o)) {
                char *unit = nx_asprintf("netext-tunnel@%s.service", tap);
                const char *argv[] = {"systemctl", "disable", unit, NULL};
                if (nx_bs_run(argv) < 0)
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

/* A tunnel's state from its OpenVPN log (prev when the log says nothing new);
 * a log grown past NX_APP_LOG_MAX is emptied (OpenVPN appends: it goes on). */
int nx_bs_tunnel_connected(const struct nx_bs_opts *o, const char *tap, int prev)
{
    char *rel = nx_asprintf("var/log/netext/%s.log", tap), *path = nx_bs_path(o, rel);
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
