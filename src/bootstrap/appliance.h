/* appliance.h: what runs inside the appliance (used by netext-bootstrap).
 *
 * Reads the payload from the hypervisor channel, renders the appliance's
 * files from templates/appliance/ with the project's template engine
 * (CONF escaping for OpenVPN and nftables files, SHELL quoting for scripts:
 * a value can never add a directive or a command), and writes them under a
 * root directory. */
#ifndef NX_APPLIANCE_H
#define NX_APPLIANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "payload_parse.h"
#include "strbuf.h"

/* Where each hypervisor puts the payload (see netext-deploy's providers). */
#define NX_APP_FWCFG_PATH "/sys/firmware/qemu_fw_cfg/by_name/opt/org.netext-deploy/payload/raw"
#define NX_APP_VMWARE_KEY "guestinfo.netext.payload"
#define NX_APP_VMWARE_STATUS_KEY "guestinfo.netext.status"
#define NX_APP_KVP_IN "/var/lib/hyperv/.kvp_pool_0" /* host-to-guest (external) pool */
#define NX_APP_KVP_OUT "/var/lib/hyperv/.kvp_pool_1" /* guest pool, read by the host */
#define NX_APP_KVP_PREFIX "netext-deploy.payload."
#define NX_APP_KVP_STATUS_KEY "netext-deploy.status"
#define NX_APP_KVP_KEY_SIZE 512
#define NX_APP_KVP_VALUE_SIZE 2048

enum nx_app_channel {
    NX_CH_AUTO = 0,
    NX_CH_FILE,
    NX_CH_FWCFG, /* libvirt/QEMU */
    NX_CH_VMWARE, /* vSphere guestinfo through vmware-rpctool */
    NX_CH_HYPERV, /* Hyper-V KVP */
};
const char *nx_app_channel_name(enum nx_app_channel c);
bool nx_app_channel_parse(const char *s, enum nx_app_channel *out);

/* Whether this VM runs on VMware (DMI sys_vendor under sysroot; true when
 * there is no DMI to tell): vmware-rpctool works only there. */
bool nx_app_on_vmware(const char *sysroot);
/* Read the payload document. FILE: `file` holds the XML itself or its
 * base64. sysroot prefixes the fw_cfg, KVP and DMI paths (tests); "" normally.
 * AUTO: file, else fw_cfg, else KVP, else guestinfo when on VMware.
 * *used is set to the channel that delivered it. */
int nx_app_read_payload(enum nx_app_channel ch, const char *file, const char *sysroot,
                        struct strbuf *out, enum nx_app_channel *used);
/* base64 (whitespace ignored) -> bytes. */
int nx_app_base64_decode(const char *in, size_t len, struct strbuf *out);
/* Reassemble NX_APP_KVP_PREFIX{count,sha256,000...} from a KVP pool file. */
int nx_app_kvp_read(const char *pool, struct strbuf *out);
/* Set key=value in a KVP pool file (replace or append a record). */
int nx_app_kvp_write(const char *pool, const char *key, const char *value);

struct nx_app_file {
    char *path; /* relative to the root, no leading '/' */
    char *data;
    size_t len;
    mode_t mode;
};
struct nx_app_files {
    struct nx_app_file *items;
    size_t n, alloc;
};
void nx_app_files_release(struct nx_app_files *f); /* wipes contents (keys) */
const struct nx_app_file *nx_app_files_find(const struct nx_app_files *f, const char *path);

struct nx_app_config {
    const char *root; /* absolute; "/" in the appliance */
    const char *openvpn; /* the openvpn binary, for the service unit */
    const char *bootstrap; /* this program, for the service unit */
};

/* Full site failover: the replicas' default gateway on one network. */
struct nx_app_gateway {
    const struct nx_payload_net *net;
    uint32_t ip;
    unsigned prefix;
};

/* Names of the devices for one extended network. */
void nx_app_tap_name(unsigned vlan, char out[16]);
void nx_app_bridge_name(unsigned vlan, char out[16]);

/* Everything the payload makes: PKI files, one OpenVPN configuration per
 * extended network, network.sh, firewall.nft, the systemd units. */
int nx_app_render(const struct nx_payload *p, const struct nx_app_config *c,
                  struct nx_app_files *out);
/* failover-full.sh, failover-full.nft and failover-off.sh (provider side). */
int nx_app_render_failover(const struct nx_payload *p, const struct nx_app_config *c,
                           const struct nx_app_gateway *gw, size_t n_gw, struct nx_app_files *out);
/* Write files under root: parent directories 0755 (etc/netext 0700), each
 * file atomically with its mode from the start. */
int nx_app_write_files(const char *root, const struct nx_app_files *f);

/* Supervision (netext-bootstrap supervise). */
#define NX_APP_LOG_TAIL 16384 /* bytes of an OpenVPN log read for its state */
#define NX_APP_LOG_MAX (1UL << 20) /* an OpenVPN log is emptied beyond this size */
/* The state of one tunnel from the tail of its OpenVPN log (verb 3): 1 when
 * "Initialization Sequence Completed" comes after the last line that says it
 * is (re)starting, waiting for its peer or gone; 0 when such a line comes
 * last; -1 when the text has neither (keep what was known). */
int nx_app_tunnel_log_state(const char *log, size_t len);
/* The status line: "state=S role=R failover=F tunnels=UP/TOTAL", then extra
 * (if not NULL or ""), then " reason=..." (if not NULL; last, so it may hold
 * spaces; control characters become spaces, at most 300 bytes). */
void nx_app_status_format(struct strbuf *sb, const char *state, const char *role,
                          const char *failover, size_t up, size_t total, const char *extra,
                          const char *reason);

#endif
