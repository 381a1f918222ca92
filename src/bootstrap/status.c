/* status.c: netext-bootstrap's status line and where it goes: run/netext/status,
 * Hyper-V KVP, vSphere guestinfo, the status tty. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h"
#include "error.h"
#include "log.h"
#include "util.h"

static void status_line(const struct nx_bs_opts *o, const struct nx_payload *p, const char *state,
                        struct strbuf *sb)
{
    char *mode = nx_bs_read_mode(o, NULL);
    size_t up = 0;
    for (size_t i = 0; i < p->n_nets; i++) {
        char tap[16];
        nx_app_tap_name(p->nets[i].vlan, tap);
        up += nx_bs_use_systemd(o) || nx_bs_tunnel_pid(o, tap) > 0;
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
void nx_bs_publish(const struct nx_bs_opts *o, const char *line)
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
        if (nx_bs_run(argv) < 0)
            nx_warn("status to guestinfo: %s", nx_error_msg());
        free(arg);
    }
    nx_info("status: %s", sb.buf);
    free(kvp);
    free(kvpdir);
    strbuf_release(&sb);
}

void nx_bs_report(const struct nx_bs_opts *o, const struct nx_payload *p, const char *state)
{
    struct strbuf sb = STRBUF_INIT;
    status_line(o, p, state, &sb);
    nx_bs_publish(o, sb.buf);
    strbuf_release(&sb);
}

/* " uptime=SECONDS mem_used_kib=N" (MemTotal - MemAvailable), as far as known. */
void nx_bs_sys_figures(struct strbuf *sb)
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
void nx_bs_status_tty(const char *tty, const char *line)
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
