/* supervise.c: netext-bootstrap supervise, the appliance's long-running part:
 * applies the payload once it is there, restarts tunnels that died, and
 * publishes each change of state. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h"
#include "error.h"
#include "log.h"
#include "util.h"

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

static void pause_for(unsigned seconds)
{
    struct timespec ts = {(time_t)seconds, 0};
    while (!stopping && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int nx_bs_supervise(const struct nx_bs_opts *o)
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
        int lock = nx_bs_lock(o);
        if (lock < 0) {
            ret = -1;
            break;
        }
        struct strbuf line = STRBUF_INIT, figures = STRBUF_INIT;
        char *mode = nx_bs_read_mode(o, NULL);
        if (!have) {
            /* until the payload is there and good (Hyper-V fills its KVP pool late) */
            if (nx_bs_apply(o, true) == 0 && nx_bs_load_payload(o, false, &p, &raw) == 0) {
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
                if (nx_bs_tunnel_pid(o, tap) <= 0) {
                    nx_warn("tunnel %s: OpenVPN is not running: starting it again", tap);
                    conn[i] = 0;
                    if (nx_bs_start_tunnel(o, tap) < 0)
                        nx_warn("%s", nx_error_msg());
                }
                conn[i] = nx_bs_tunnel_connected(o, tap, conn[i]);
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
            nx_bs_sys_figures(&figures);
            strbuf_add(&out, line.buf, head);
            if (have)
                strbuf_addf(&out, " appliance=%s", p.appliance);
            if (figures.len)
                strbuf_addf(&out, " %s", figures.buf);
            strbuf_addstr(&out, line.buf + head);
            nx_bs_status_tty(o->status_tty, out.buf);
            strbuf_addf(&out, " time=%ld", (long)time(NULL));
            nx_bs_publish(o, out.buf);
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
        int lock = nx_bs_lock(o);
        if (nx_bs_tunnels(o, &p, false) < 0)
            nx_warn("%s", nx_error_msg());
        if (lock >= 0)
            close(lock);
        nx_payload_release(&p);
    }
    free(conn);
    free(last);
    return ret;
}
