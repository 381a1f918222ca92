/* appliance.c: payload channels, rendering and writing of the appliance's files. */
#include "config.h"

#include "appliance.h"
#include "error.h"
#include "fsutil.h"
#include "payload.h"
#include "template.h"
#include "util.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

/* templates/appliance/, compiled in (src/bootstrap/appliance-templates.c) */
extern const char nx_app_tmpl_openvpn_server[];
extern const char nx_app_tmpl_openvpn_client[];
extern const char nx_app_tmpl_network_sh[];
extern const char nx_app_tmpl_lib_sh[];
extern const char nx_app_tmpl_firewall_nft[];
extern const char nx_app_tmpl_failover_full_nft[];
extern const char nx_app_tmpl_failover_full_sh[];
extern const char nx_app_tmpl_failover_off_sh[];
extern const char nx_app_tmpl_tunnel_service[];
extern const char nx_app_tmpl_bootstrap_service[];

const char *nx_app_channel_name(enum nx_app_channel c)
{
    static const char *const names[] = {"auto", "file", "fwcfg", "vmware", "hyperv"};
    return (unsigned)c < NX_ARRAY_SIZE(names) ? names[c] : "?";
}

bool nx_app_channel_parse(const char *s, enum nx_app_channel *out)
{
    for (int c = NX_CH_AUTO; c <= NX_CH_HYPERV; c++)
        if (nx_str_eq(s, nx_app_channel_name((enum nx_app_channel)c))) {
            *out = (enum nx_app_channel)c;
            return true;
        }
    return false;
}

/* ---- reading ------------------------------------------------------------- */

static int slurp(const char *path, struct strbuf *out, size_t max)
{
    return nx_read_file(path, max, 0, out);
}

int nx_app_base64_decode(const char *in, size_t len, struct strbuf *out)
{
    struct strbuf clean = STRBUF_INIT;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=')) {
            strbuf_release(&clean);
            return nx_error_set(NX_EX_DATAERR, "payload: not base64 (byte 0x%02x)",
                                (unsigned char)c);
        }
        strbuf_addch(&clean, c);
    }
    if (clean.len % 4) {
        strbuf_release(&clean);
        return nx_error_set(NX_EX_DATAERR, "payload: truncated base64");
    }
    size_t pad = 0;
    if (clean.len && clean.buf[clean.len - 1] == '=')
        pad++;
    if (clean.len > 1 && clean.buf[clean.len - 2] == '=')
        pad++;
    strbuf_grow(out, clean.len / 4 * 3 + 1);
    int n = EVP_DecodeBlock((unsigned char *)out->buf + out->len, (unsigned char *)clean.buf,
                            (int)clean.len);
    strbuf_release(&clean);
    if (n < 0 || (size_t)n < pad)
        return nx_error_set(NX_EX_DATAERR, "payload: invalid base64");
    out->len += (size_t)n - pad;
    out->buf[out->len] = '\0';
    return 0;
}

/* KVP pool files: records of a 512-byte key and a 2048-byte value. */
struct kvp_item {
    char key[NX_APP_KVP_KEY_SIZE];
    char value[NX_APP_KVP_VALUE_SIZE];
};

/* "000", "017": the slice number (zero-padded decimal), or -1. */
static long slice_index(const char *s)
{
    long v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 6)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    return n ? v : -1;
}

int nx_app_kvp_read(const char *pool, struct strbuf *out)
{
    struct strbuf raw = STRBUF_INIT, b64 = STRBUF_INIT;
    int ret = -1;
    if (slurp(pool, &raw, 64UL << 20) < 0)
        goto cleanup;
    size_t n = raw.len / sizeof(struct kvp_item);
    const struct kvp_item *items = (const struct kvp_item *)raw.buf;
    const size_t plen = strlen(NX_APP_KVP_PREFIX);
    unsigned long count = 0;
    char sha[65] = "";
    bool have_count = false;
    for (size_t i = 0; i < n; i++) {
        const char *k = items[i].key;
        if (strnlen(k, sizeof(items[i].key)) == sizeof(items[i].key) ||
            strnlen(items[i].value, sizeof(items[i].value)) == sizeof(items[i].value))
            continue; /* not terminated: not ours */
        if (!strcmp(k, NX_APP_KVP_PREFIX "count"))
            have_count = nx_parse_uint(items[i].value, 1, 10000, &count);
        else if (!strcmp(k, NX_APP_KVP_PREFIX "sha256"))
            snprintf(sha, sizeof(sha), "%s", items[i].value);
    }
    if (!have_count) {
        nx_error_set(NX_EX_NOINPUT, "%s: no %scount item", pool, NX_APP_KVP_PREFIX);
        goto cleanup;
    }
    for (unsigned long c = 0; c < count; c++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            const char *k = items[i].key;
            if (strncmp(k, NX_APP_KVP_PREFIX, plen) ||
                strnlen(k, sizeof(items[i].key)) == sizeof(items[i].key) ||
                slice_index(k + plen) != (long)c)
                continue;
            strbuf_add(&b64, items[i].value, strnlen(items[i].value, sizeof(items[i].value)));
            found = true;
        }
        if (!found) {
            nx_error_set(NX_EX_DATAERR, "%s: payload slice %lu of %lu is missing", pool, c, count);
            goto cleanup;
        }
    }
    size_t before = out->len;
    if (nx_app_base64_decode(b64.buf, b64.len, out) < 0)
        goto cleanup;
    char digest[65];
    nx_sha256_hex(out->buf + before, out->len - before, digest);
    if (*sha && strcmp(sha, digest) != 0) {
        nx_error_set(NX_EX_DATAERR, "%s: the payload's SHA-256 does not match (incomplete update?)",
                     pool);
        goto cleanup;
    }
    ret = 0;
cleanup:
    strbuf_release_secret(&raw);
    strbuf_release_secret(&b64);
    return ret;
}

int nx_app_kvp_write(const char *pool, const char *key, const char *value)
{
    if (strlen(key) >= NX_APP_KVP_KEY_SIZE || strlen(value) >= NX_APP_KVP_VALUE_SIZE)
        return nx_error_set(NX_EX_SOFTWARE, "KVP item %s too long", key);
    int fd = open(pool, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return nx_error_set(NX_EX_IOERR, "%s: %s", pool, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int ret = -1;
    if (fcntl(fd, F_SETLKW, &fl) < 0) {
        nx_error_set(NX_EX_IOERR, "lock %s: %s", pool, strerror(errno));
        goto cleanup;
    }
    struct kvp_item it;
    off_t off = 0, where = -1;
    while (pread(fd, &it, sizeof(it), off) == (ssize_t)sizeof(it)) {
        if (!strncmp(it.key, key, sizeof(it.key))) {
            where = off;
            break;
        }
        off += (off_t)sizeof(it);
    }
    if (where < 0)
        where = off;
    memset(&it, 0, sizeof(it));
    snprintf(it.key, sizeof(it.key), "%s", key);
    snprintf(it.value, sizeof(it.value), "%s", value);
    if (pwrite(fd, &it, sizeof(it), where) != (ssize_t)sizeof(it)) {
        nx_error_set(NX_EX_IOERR, "write %s: %s", pool, strerror(errno));
        goto cleanup;
    }
    ret = 0;
cleanup:
    close(fd);
    return ret;
}

/* Run argv, capturing stdout into out (if not NULL). Exit status, or -1. */
static int run_capture(char *const argv[], struct strbuf *out)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return nx_error_set(NX_EX_OSERR, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return nx_error_set(NX_EX_OSERR, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    char buf[4096];
    ssize_t r;
    while ((r = read(pfd[0], buf, sizeof(buf))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (out && out->len < (8UL << 20))
            strbuf_add(out, buf, (size_t)r);
    }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return nx_error_set(NX_EX_OSERR, "waitpid: %s", strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/sbin:/usr/bin:/sbin:/bin";
    char *copy = nx_strdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = nx_asprintf("%s/%s", d, prog);
        found = access(p, X_OK) == 0;
        free(p);
    }
    free(copy);
    return found;
}

bool nx_app_on_vmware(const char *sysroot)
{
    char vendor[64] = "";
    char *path = nx_asprintf("%s/sys/class/dmi/id/sys_vendor", sysroot ? sysroot : "");
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return true;
    if (!fgets(vendor, sizeof(vendor), f))
        vendor[0] = '\0';
    fclose(f);
    return strstr(vendor, "VMware") != NULL;
}

static int read_vmware(struct strbuf *out)
{
    struct strbuf enc = STRBUF_INIT, b64 = STRBUF_INIT;
    char *get_enc[] = {(char *)"vmware-rpctool", (char *)"info-get " NX_APP_VMWARE_KEY ".encoding",
                       NULL};
    char *get[] = {(char *)"vmware-rpctool", (char *)"info-get " NX_APP_VMWARE_KEY, NULL};
    int ret = -1;
    int rc = run_capture(get_enc, &enc);
    if (rc < 0)
        goto cleanup;
    while (enc.len && (enc.buf[enc.len - 1] == '\n' || enc.buf[enc.len - 1] == ' '))
        enc.buf[--enc.len] = '\0';
    if (rc == 0 && enc.len && strcmp(enc.buf, "base64") && strcmp(enc.buf, "b64")) {
        nx_error_set(NX_EX_DATAERR, "%s.encoding '%s' is not supported (base64 only)",
                     NX_APP_VMWARE_KEY, enc.buf);
        goto cleanup;
    }
    rc = run_capture(get, &b64);
    if (rc != 0) {
        if (rc > 0)
            nx_error_set(NX_EX_NOINPUT, "vmware-rpctool: no %s in this VM's guestinfo",
                         NX_APP_VMWARE_KEY);
        goto cleanup;
    }
    ret = nx_app_base64_decode(b64.buf, b64.len, out);
cleanup:
    strbuf_release(&enc);
    strbuf_release_secret(&b64);
    return ret;
}

static int read_file_payload(const char *file, struct strbuf *out)
{
    struct strbuf raw = STRBUF_INIT;
    int ret = slurp(file, &raw, 4UL * NX_PAYLOAD_MAX_BYTES);
    if (ret == 0) {
        const char *p = raw.buf;
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            p++;
        if (*p == '<')
            strbuf_add(out, raw.buf, raw.len);
        else
            ret = nx_app_base64_decode(raw.buf, raw.len, out);
        if (ret < 0)
            nx_error_prefix("%s: ", file);
    }
    strbuf_release_secret(&raw);
    return ret;
}

int nx_app_read_payload(enum nx_app_channel ch, const char *file, const char *sysroot,
                        struct strbuf *out, enum nx_app_channel *used)
{
    char *fwcfg = nx_asprintf("%s%s", sysroot ? sysroot : "", NX_APP_FWCFG_PATH);
    char *kvp = nx_asprintf("%s%s", sysroot ? sysroot : "", NX_APP_KVP_IN);
    int ret = -1;
    if (ch == NX_CH_AUTO) {
        if (file)
            ch = NX_CH_FILE;
        else if (access(fwcfg, R_OK) == 0)
            ch = NX_CH_FWCFG;
        else if (access(kvp, R_OK) == 0)
            ch = NX_CH_HYPERV;
        else if (in_path("vmware-rpctool") && nx_app_on_vmware(sysroot))
            ch = NX_CH_VMWARE;
        else {
            nx_error_set(NX_EX_NOINPUT,
                         "no payload: none of %s (libvirt fw_cfg), %s (Hyper-V KVP), "
                         "vmware-rpctool on VMware (vSphere guestinfo) is available; use "
                         "--payload FILE",
                         fwcfg, kvp);
            goto cleanup;
        }
    }
    *used = ch;
    switch (ch) {
    case NX_CH_FILE:
        if (!file) {
            nx_error_set(NX_EX_USAGE, "--channel file needs --payload FILE");
            goto cleanup;
        }
        ret = read_file_payload(file, out);
        break;
    case NX_CH_FWCFG: {
        struct strbuf raw = STRBUF_INIT;
        ret = slurp(fwcfg, &raw, 4UL * NX_PAYLOAD_MAX_BYTES);
        if (ret == 0 && (ret = nx_app_base64_decode(raw.buf, raw.len, out)) < 0)
            nx_error_prefix("%s: ", fwcfg);
        strbuf_release_secret(&raw);
        break;
    }
    case NX_CH_HYPERV:
        ret = nx_app_kvp_read(kvp, out);
        break;
    case NX_CH_VMWARE:
        ret = read_vmware(out);
        break;
    default:
        nx_error_set(NX_EX_SOFTWARE, "unknown channel");
        break;
    }
cleanup:
    free(fwcfg);
    free(kvp);
    return ret;
}

/* ---- files ----------------------------------------------------------------- */

void nx_app_files_release(struct nx_app_files *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].path);
        nx_memzero(f->items[i].data, f->items[i].len);
        free(f->items[i].data);
    }
    free(f->items);
    memset(f, 0, sizeof(*f));
}

const struct nx_app_file *nx_app_files_find(const struct nx_app_files *f, const char *path)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->items[i].path, path))
            return &f->items[i];
    return NULL;
}

static void add_file(struct nx_app_files *f, char *path, const char *data, size_t len, mode_t mode)
{
    NX_GROW(f->items, f->alloc, f->n + 1);
    struct nx_app_file *e = &f->items[f->n++];
    e->path = path;
    e->data = nx_strndup(data, len);
    e->len = len;
    e->mode = mode;
}

static int add_rendered(struct nx_app_files *f, char *path, const char *tmpl,
                        const struct nx_tctx *ctx, enum nx_escape esc, mode_t mode)
{
    struct strbuf sb = STRBUF_INIT;
    if (nx_template_render(path, tmpl, ctx, esc, &sb) < 0) {
        free(path);
        strbuf_release(&sb);
        return -1;
    }
    add_file(f, path, sb.buf, sb.len, mode);
    strbuf_release(&sb);
    return 0;
}

int nx_app_write_files(const char *root, const struct nx_app_files *f)
{
    const char *r = strcmp(root, "/") ? root : "";
    for (size_t i = 0; i < f->n; i++) {
        const struct nx_app_file *e = &f->items[i];
        char *final = nx_asprintf("%s/%s", r, e->path);
        /* mode set before the first byte: keys are never readable by others */
        int ret = nx_mkdir_parents(final);
        if (ret == 0)
            ret = nx_write_atomic(final, e->data, e->len, e->mode, 0);
        free(final);
        if (ret < 0)
            return -1;
    }
    /* the configuration directory holds a private key */
    char *etc = nx_asprintf("%s/etc/netext", r);
    struct stat st;
    if (stat(etc, &st) == 0)
        chmod(etc, 0700);
    free(etc);
    return 0;
}

/* ---- rendering ------------------------------------------------------------------ */

void nx_app_tap_name(unsigned vlan, char out[16])
{
    snprintf(out, 16, "nxt%u", vlan);
}

void nx_app_bridge_name(unsigned vlan, char out[16])
{
    snprintf(out, 16, "nxb%u", vlan);
}

static bool safe_path(const char *s)
{
    if (!s || s[0] != '/')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '/' || *s == '.' || *s == '_' || *s == '-' || *s == '+'))
            return false;
    return true;
}

static bool safe_word(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int check_config(const struct nx_app_config *c)
{
    if (!safe_path(c->root))
        return nx_error_set(NX_EX_USAGE,
                            "root '%s': must be an absolute path of [A-Za-z0-9/._+-] "
                            "(it is written into configuration files)",
                            c->root ? c->root : "");
    if (!safe_path(c->openvpn) || !safe_path(c->bootstrap))
        return nx_error_set(NX_EX_USAGE, "the openvpn and netext-bootstrap paths must be "
                                         "absolute paths of [A-Za-z0-9/._+-]");
    return 0;
}

static char *rooted(const struct nx_app_config *c, const char *rel)
{
    return nx_asprintf("%s/%s", strcmp(c->root, "/") ? c->root : "", rel);
}

static void set2(struct nx_tctx *a, struct nx_tctx *b, const char *key, const char *value)
{
    nx_tctx_set(a, key, value);
    nx_tctx_set(b, key, value);
}

static void common(struct nx_tctx *t, const struct nx_payload *p)
{
    char mac[18];
    nx_format_mac(p->prod_mac, mac);
    nx_tctx_set(t, "appliance", p->appliance);
    nx_tctx_set(t, "tenant", p->tenant);
    nx_tctx_set(t, "role", nx_role_name(p->role));
    nx_tctx_set(t, "prod_mac", mac);
    nx_tctx_set(t, "is_tenant", p->role == NX_ROLE_TENANT ? "1" : "");
    nx_tctx_set(t, "is_provider", p->role == NX_ROLE_PROVIDER ? "1" : "");
}

int nx_app_render(const struct nx_payload *p, const struct nx_app_config *c,
                  struct nx_app_files *out)
{
    if (check_config(c) < 0)
        return -1;
    if (p->gw_address && !nx_payload_safe_host(p->gw_address))
        return nx_error_set(NX_EX_DATAERR, "gateway address '%s': not a host name or IPv4 address",
                            p->gw_address);
    if (p->n_nets && (!p->ca_pem || !p->cert_pem || !p->key_pem))
        return nx_error_set(NX_EX_DATAERR,
                            "the payload carries no tunnel credentials%s: nothing can connect",
                            p->pki_pending ? " (it was made by a dry run)" : "");
    struct nx_tctx *t = nx_tctx_new();
    int ret = -1;
    char *ca = rooted(c, "etc/netext/pki/ca.crt"),
         *cert = rooted(c, "etc/netext/pki/appliance.crt"),
         *key = rooted(c, "etc/netext/pki/appliance.key"), *etc = rooted(c, "etc/netext"),
         *run = rooted(c, "run/netext");
    common(t, p);
    nx_tctx_set(t, "ca", ca);
    nx_tctx_set(t, "cert", cert);
    nx_tctx_set(t, "key", key);
    nx_tctx_set(t, "etc", etc);
    nx_tctx_set(t, "run", run);
    nx_tctx_set(t, "openvpn", c->openvpn);
    nx_tctx_set(t, "bootstrap", c->bootstrap);
    nx_tctx_set(t, "gw_address", p->gw_address ? p->gw_address : "");
    if (p->ca_pem) {
        add_file(out, nx_strdup("etc/netext/pki/ca.crt"), p->ca_pem, strlen(p->ca_pem), 0644);
        add_file(out, nx_strdup("etc/netext/pki/appliance.crt"), p->cert_pem, strlen(p->cert_pem),
                 0644);
        add_file(out, nx_strdup("etc/netext/pki/appliance.key"), p->key_pem, strlen(p->key_pem),
                 0600);
    }
    /* production address */
    char ip[16];
    if (p->prod_addr.mode == NX_ADDR_STATIC) {
        nx_format_ipv4(p->prod_addr.ip, ip);
        nx_tctx_setf(t, "static", "%s/%u", ip, p->prod_addr.prefix);
        if (p->prod_addr.has_gateway) {
            nx_format_ipv4(p->prod_addr.gateway, ip);
            nx_tctx_set(t, "gateway", ip);
        } else {
            nx_tctx_set(t, "gateway", "");
        }
        nx_tctx_set(t, "dhcp", "");
        if (p->prod_addr.n_dns) {
            struct strbuf rc = STRBUF_INIT;
            strbuf_addstr(&rc, "# netext-deploy: DNS servers from the payload\n");
            for (size_t i = 0; i < p->prod_addr.n_dns; i++) {
                nx_format_ipv4(p->prod_addr.dns[i], ip);
                strbuf_addf(&rc, "nameserver %s\n", ip);
            }
            add_file(out, nx_strdup("etc/netext/resolv.conf"), rc.buf, rc.len, 0644);
            strbuf_release(&rc);
        }
    } else {
        nx_tctx_set(t, "static", "");
        nx_tctx_set(t, "gateway", "");
        nx_tctx_set(t, "dhcp", "1");
    }
    /* one tunnel per extended network */
    struct strbuf ports = STRBUF_INIT;
    nx_tctx_set(t, "nets", NULL);
    for (size_t i = 0; i < p->n_nets; i++) {
        const struct nx_payload_net *n = &p->nets[i];
        struct nx_tctx *it = nx_tctx_add(t, "nets");
        /* the tunnel's own file is rendered with a context of its own */
        struct nx_tctx *own = nx_tctx_new();
        common(own, p);
        nx_tctx_set(own, "ca", ca);
        nx_tctx_set(own, "cert", cert);
        nx_tctx_set(own, "key", key);
        nx_tctx_set(own, "gw_address", p->gw_address ? p->gw_address : "");
        char tap[16], br[16], mac[18];
        nx_app_tap_name(n->vlan, tap);
        nx_app_bridge_name(n->vlan, br);
        set2(it, own, "name", n->name);
        char num[16];
        snprintf(num, sizeof(num), "%u", n->vlan);
        set2(it, own, "vlan", num);
        snprintf(num, sizeof(num), "%u", n->port);
        set2(it, own, "port", num);
        set2(it, own, "tap", tap);
        set2(it, own, "bridge", br);
        set2(it, own, "sp_host", n->sp_host ? n->sp_host : "");
        if (n->has_mac) {
            nx_format_mac(n->mac, mac);
            set2(it, own, "mac", mac);
        }
        /* the client accepts only the SP appliance of the host that carries the network */
        char *cn = n->sp_host && safe_word(n->sp_host) ? nx_asprintf("provider:%s", n->sp_host)
                                                       : nx_strdup("");
        set2(it, own, "server_cn", cn);
        free(cn);
        char *pid = nx_asprintf("%s/%s.pid", run, tap), *st = nx_asprintf("%s/%s.status", run, tap);
        nx_tctx_set(own, "pidfile", pid);
        nx_tctx_set(own, "statusfile", st);
        free(pid);
        free(st);
        strbuf_addf(&ports, "%s%u", ports.len ? ", " : "", n->port);
        int rc = add_rendered(out, nx_asprintf("etc/netext/openvpn/%s.conf", tap),
                              p->role == NX_ROLE_PROVIDER ? nx_app_tmpl_openvpn_server
                                                          : nx_app_tmpl_openvpn_client,
                              own, NX_ESC_CONF, 0600);
        nx_tctx_free(own);
        if (rc < 0)
            goto cleanup;
    }
    nx_tctx_set(t, "tunnel_ports", p->role == NX_ROLE_PROVIDER ? ports.buf : "");
    if (add_rendered(out, nx_strdup("etc/netext/lib.sh"), nx_app_tmpl_lib_sh, t, NX_ESC_SHELL,
                     0600) < 0 ||
        add_rendered(out, nx_strdup("etc/netext/network.sh"), nx_app_tmpl_network_sh, t,
                     NX_ESC_SHELL, 0700) < 0 ||
        add_rendered(out, nx_strdup("etc/netext/firewall.nft"), nx_app_tmpl_firewall_nft, t,
                     NX_ESC_CONF, 0600) < 0 ||
        add_rendered(out, nx_strdup("etc/systemd/system/netext-tunnel@.service"),
                     nx_app_tmpl_tunnel_service, t, NX_ESC_CONF, 0644) < 0 ||
        add_rendered(out, nx_strdup("etc/systemd/system/netext-bootstrap.service"),
                     nx_app_tmpl_bootstrap_service, t, NX_ESC_CONF, 0644) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    if (ret < 0)
        nx_error_prefix("appliance %s: ", p->appliance);
    strbuf_release(&ports);
    nx_tctx_free(t);
    free(ca);
    free(cert);
    free(key);
    free(etc);
    free(run);
    return ret;
}

int nx_app_render_failover(const struct nx_payload *p, const struct nx_app_config *c,
                           const struct nx_app_gateway *gw, size_t n_gw, struct nx_app_files *out)
{
    if (check_config(c) < 0)
        return -1;
    if (p->role != NX_ROLE_PROVIDER)
        return nx_error_set(NX_EX_USAGE, "site failover is switched on the SP appliance, not on "
                                         "the tenant's");
    struct nx_tctx *t = nx_tctx_new();
    struct strbuf list = STRBUF_INIT;
    char *nft = rooted(c, "etc/netext/failover-full.nft");
    int ret = -1;
    char a[16], b[16], br[16];
    common(t, p);
    nx_tctx_set(t, "nft", nft);
    nx_tctx_set(t, "gateways", NULL);
    nx_tctx_set(t, "public_ips", NULL);
    nx_tctx_set(t, "rules", NULL);
    nx_tctx_set(t, "snat", NULL);
    for (size_t i = 0; i < n_gw; i++) {
        struct nx_tctx *it = nx_tctx_add(t, "gateways");
        nx_format_ipv4(gw[i].ip, a);
        nx_app_bridge_name(gw[i].net->vlan, br);
        nx_tctx_setf(it, "cidr", "%s/%u", a, gw[i].prefix);
        nx_tctx_set(it, "bridge", br);
    }
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct nx_payload_rule *r = &p->rules[i];
        if (r->public_port == NX_RESERVED_PORT)
            continue; /* refused by the decoder already; never forwarded */
        nx_format_ipv4(r->public_ip, a);
        nx_format_ipv4(r->replica_ip, b);
        struct nx_tctx *it = nx_tctx_add(t, "rules");
        nx_tctx_set(it, "public_ip", a);
        nx_tctx_set(it, "proto", r->proto == NX_PROTO_UDP ? "udp" : "tcp");
        nx_tctx_setf(it, "public_port", "%u", r->public_port);
        nx_tctx_set(it, "replica_ip", b);
        nx_tctx_setf(it, "replica_port", "%u", r->replica_port);
        bool seen_pub = false, seen_rep = false;
        for (size_t j = 0; j < i; j++) {
            seen_pub |= p->rules[j].public_ip == r->public_ip;
            seen_rep |= p->rules[j].replica_ip == r->replica_ip;
        }
        if (!seen_pub) {
            nx_tctx_set(nx_tctx_add(t, "public_ips"), "ip", a);
            strbuf_addf(&list, "%s%s", list.len ? ", " : "", a);
        }
        if (!seen_rep) { /* a replica leaves with the first public address it was given */
            struct nx_tctx *s = nx_tctx_add(t, "snat");
            nx_tctx_set(s, "replica_ip", b);
            nx_tctx_set(s, "public_ip", a);
        }
    }
    nx_tctx_set(t, "public_list", list.buf);
    if (add_rendered(out, nx_strdup("etc/netext/lib.sh"), nx_app_tmpl_lib_sh, t, NX_ESC_SHELL,
                     0600) < 0 ||
        add_rendered(out, nx_strdup("etc/netext/failover-full.nft"), nx_app_tmpl_failover_full_nft,
                     t, NX_ESC_CONF, 0600) < 0 ||
        add_rendered(out, nx_strdup("etc/netext/failover-full.sh"), nx_app_tmpl_failover_full_sh, t,
                     NX_ESC_SHELL, 0700) < 0 ||
        add_rendered(out, nx_strdup("etc/netext/failover-off.sh"), nx_app_tmpl_failover_off_sh, t,
                     NX_ESC_SHELL, 0700) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    if (ret < 0)
        nx_error_prefix("appliance %s: ", p->appliance);
    strbuf_release(&list);
    nx_tctx_free(t);
    free(nft);
    return ret;
}

/* ---- supervision ------------------------------------------------------------------ */

/* Start of the last occurrence of needle in [s, s + len), or NULL. */
static const char *last_of(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    const char *found = NULL;
    for (size_t i = 0; n && i + n <= len; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, n))
            found = s + i;
    return found;
}

int nx_app_tunnel_log_state(const char *log, size_t len)
{
    /* what OpenVPN 2.6 logs at verb 3 when a tunnel is not (or no longer) up */
    static const char *const down[] = {
        "process restarting", /* SIGUSR1: ping-restart, connection reset, TLS error */
        "Inactivity timeout",
        "Connection reset",
        "Listening for incoming TCP connection", /* server waiting for its client */
        "Attempting to establish TCP connection", /* client (re)connecting */
        "TCP: connect to", /* ... failed */
        "process exiting",
        "Exiting due to fatal error",
    };
    if (!log)
        return -1;
    const char *up = last_of(log, len, "Initialization Sequence Completed");
    const char *last_down = NULL;
    for (size_t i = 0; i < NX_ARRAY_SIZE(down); i++) {
        const char *d = last_of(log, len, down[i]);
        if (d && (!last_down || d > last_down))
            last_down = d;
    }
    if (!up && !last_down)
        return -1;
    return up && (!last_down || up > last_down) ? 1 : 0;
}

void nx_app_status_format(struct strbuf *sb, const char *state, const char *role,
                          const char *failover, size_t up, size_t total, const char *extra,
                          const char *reason)
{
    strbuf_addf(sb, "state=%s role=%s failover=%s tunnels=%zu/%zu", state, role, failover, up,
                total);
    if (extra && *extra)
        strbuf_addf(sb, " %s", extra);
    if (!reason)
        return;
    strbuf_addstr(sb, " reason=");
    for (size_t i = 0; reason[i] && i < 300; i++) {
        unsigned char c = (unsigned char)reason[i];
        strbuf_addch(sb, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}
