/* bootstrap.h: what the parts of netext-bootstrap share (private to the
 * program). netext-bootstrap.c: options, the command table and the commands;
 * state.c: paths under --root, the state lock, the failover mode file, the
 * applied payload, running programs; tunnel.c: the OpenVPN tunnels; status.c:
 * the status line and where it goes; supervise.c: the long-running loop. */
#ifndef NX_BOOTSTRAP_H
#define NX_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "appliance.h"
#include "payload.h"
#include "strbuf.h"

struct nx_bs_opts {
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

/* state.c */
char *nx_bs_path(const struct nx_bs_opts *o, const char *rel);
int nx_bs_run(const char *const argv[]);
int nx_bs_run_script(const struct nx_bs_opts *o, const char *rel);
/* the state lock's descriptor (close to release), or -1 with nx_error set */
int nx_bs_lock(const struct nx_bs_opts *o);
char *nx_bs_read_mode(const struct nx_bs_opts *o, struct strbuf *gateways);
int nx_bs_write_mode(const struct nx_bs_opts *o, const char *mode, const struct strbuf *gateways);
/* from_channel: the hypervisor's channel, else the applied payload */
int nx_bs_load_payload(const struct nx_bs_opts *o, bool from_channel, struct nx_payload *p,
                       struct strbuf *raw);

/* tunnel.c */
bool nx_bs_use_systemd(const struct nx_bs_opts *o);
pid_t nx_bs_tunnel_pid(const struct nx_bs_opts *o, const char *tap);
int nx_bs_start_tunnel(const struct nx_bs_opts *o, const char *tap);
int nx_bs_tunnels_mode(const struct nx_bs_opts *o, const struct nx_payload *p, bool start,
                       bool ensure);
int nx_bs_tunnels(const struct nx_bs_opts *o, const struct nx_payload *p, bool start);
void nx_bs_retire_tunnels(const struct nx_bs_opts *o, const struct nx_payload *p, bool stop);
int nx_bs_tunnel_connected(const struct nx_bs_opts *o, const char *tap, int prev);

/* status.c */
void nx_bs_publish(const struct nx_bs_opts *o, const char *line);
void nx_bs_report(const struct nx_bs_opts *o, const struct nx_payload *p, const char *state);
void nx_bs_sys_figures(struct strbuf *sb);
void nx_bs_status_tty(const char *tty, const char *line);

/* netext-bootstrap.c, supervise.c */
int nx_bs_apply(const struct nx_bs_opts *o, bool start);
int nx_bs_supervise(const struct nx_bs_opts *o);

#endif
