/* cmd_payload.c: `netext-deploy payload` and `netext-deploy rotate`. */
#include "config.h"

#include "cmd_payload.h"
#include "lock.h"
#include "desired.h"
#include "error.h"
#include "log.h"
#include "payload.h"
#include "pki.h"
#include "plan.h"
#include "provider.h"
#include "strbuf.h"
#include "tenant_side.h"
#include "util.h"
#include "validate.h"
#include "xml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct args {
    const char *tenant, *host, *network, *address, *output, *connect;
    enum nx_role role;
    bool dry_run, base64;
};

/* INTERIM (until the tenant-side desired state produces tenant-role specs for
 * this model): the tenant-side appliance that extends every network of the
 * provider-side appliance `p`, with one production vNIC ("tenant-production",
 * a MAC hashed from its key in the locally administered range) and the
 * address given with --address (default DHCP). */
struct interim {
    struct nx_appliance_spec spec;
    struct nx_vnic_spec vnic;
    struct nx_address addr;
    struct nx_extended_net *ext;
};

static int interim_tenant_spec(const struct args *a, const struct nx_appliance_spec *p,
                               struct interim *t)
{
    memset(t, 0, sizeof(*t));
    t->spec = *p;
    t->spec.role = NX_ROLE_TENANT;
    t->spec.net = (char *)(a->network ? a->network : "tenant-production");
    t->spec.key = nx_asprintf("tenant\n%s\n%s\n%s", p->tenant->name, p->host->name, t->spec.net);
    t->spec.name = nx_asprintf("netext-t-%s-%s", p->tenant->name, p->host->name);
    t->vnic.kind = NX_VNIC_PRODUCTION;
    t->vnic.label = t->spec.net;
    t->vnic.network = t->spec.net;
    uint64_t h = nx_hash64(t->spec.key, strlen(t->spec.key), 0);
    t->vnic.mac[0] = 0x02;
    for (int b = 5; b >= 1; b--, h >>= 8)
        t->vnic.mac[b] = (uint8_t)(h & 0xff);
    t->spec.vnics = &t->vnic;
    t->spec.n_vnics = 1;
    t->spec.addr = NULL;
    if (a->address) {
        char *copy = nx_strdup(a->address), *gw = strchr(copy, ',');
        if (gw)
            *gw++ = '\0';
        t->addr.mode = NX_ADDR_STATIC;
        bool ok = nx_parse_cidr(copy, &t->addr.ip, &t->addr.prefix) && t->addr.prefix >= 1 &&
                  t->addr.prefix <= 32 && (!gw || nx_parse_ipv4(gw, &t->addr.gateway));
        t->addr.has_gateway = gw != NULL;
        free(copy);
        if (!ok)
            return nx_error_set(NX_EX_USAGE, "--address '%s': expected IP/PREFIX[,GATEWAY]",
                                a->address);
        t->spec.addr = &t->addr;
    }
    t->spec.n_extends = p->n_vnics ? p->n_vnics - 1 : 0;
    t->ext = nx_calloc(t->spec.n_extends + 1, sizeof(*t->ext));
    for (size_t i = 1; i < p->n_vnics; i++) {
        t->ext[i - 1].name = p->vnics[i].label;
        t->ext[i - 1].vlan = p->vnics[i].vlan;
        t->ext[i - 1].sp_host = p->host->name;
    }
    t->spec.extends = t->ext;
    t->spec.payload = NULL;
    return 0;
}

static void interim_release(struct interim *t)
{
    free(t->spec.key);
    free(t->spec.name);
    nx_free_secret(t->spec.payload);
    free(t->ext);
}

static int emit(const struct args *a, const char *data, size_t len)
{
    struct strbuf sb = STRBUF_INIT;
    if (a->base64) {
        strbuf_add_base64(&sb, data, len);
        strbuf_addch(&sb, '\n');
    } else {
        strbuf_add(&sb, data, len);
    }
    int fd = 1, ret = 0;
    if (a->output) {
        fd = open(a->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            strbuf_release_secret(&sb);
            return nx_error_set(NX_EX_CANTCREAT, "%s: %s", a->output, strerror(errno));
        }
        if (fchmod(fd, 0600) < 0)
            ret = nx_error_set(NX_EX_CANTCREAT, "%s: %s", a->output, strerror(errno));
    } else if (isatty(1)) {
        nx_warn("the payload holds the appliance's private key");
    }
    for (size_t off = 0; ret == 0 && off < sb.len;) {
        ssize_t w = write(fd, sb.buf + off, sb.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            ret = nx_error_set(NX_EX_IOERR, "write: %s", strerror(errno));
        else
            off += (size_t)w;
    }
    if (a->output && close(fd) < 0 && ret == 0)
        ret = nx_error_set(NX_EX_IOERR, "%s: %s", a->output, strerror(errno));
    strbuf_release_secret(&sb);
    return ret;
}

/* A <netext-tenant> configuration: resolve its appliances without a
 * hypervisor, so each needs its production network named. */
static int resolve_tenant(struct nx_cli *cli, struct nx_model *m, int *code)
{
    bool *need = nx_calloc(m->n_hosts + 1, sizeof(bool));
    struct nx_net_usage **usage = nx_calloc(m->n_hosts + 1, sizeof(*usage));
    size_t *n_usage = nx_calloc(m->n_hosts + 1, sizeof(size_t));
    struct nx_diag diag, notes;
    int ret = 0;
    nx_diag_init(&diag);
    nx_diag_init(&notes);
    nx_tside_needs_usage(m, need);
    for (size_t i = 0; i < m->n_hosts; i++)
        if (need[i]) {
            nx_error_set(NX_EX_USAGE,
                         "payload: source host '%s': the configuration leaves its production "
                         "network to detection, which needs the hypervisor; name it with "
                         "<appliance production-network=\"...\">",
                         m->hosts[i]->name);
            *code = nx_cli_fail(cli, NX_EX_USAGE);
            ret = -1;
            goto out;
        }
    nx_tside_resolve(m, usage, n_usage, &diag, &notes);
    if (diag.n) {
        nx_cli_problems(cli, &diag, "invalid", NX_EX_DATAERR);
        *code = NX_EX_DATAERR;
        ret = -1;
    }
out:
    nx_diag_release(&diag);
    nx_diag_release(&notes);
    free(need);
    free(usage);
    free(n_usage);
    return ret;
}

/* The desired state with the MACs of the provider behind each host, as
 * reconcile computes them (--connect: that provider for every host). */
static struct nx_desired *desired_state(const struct nx_model *m, const char *connect)
{
    const struct nx_mac_range **ranges = nx_calloc(m->n_hosts + 1, sizeof(*ranges));
    for (size_t i = 0; i < m->n_hosts; i++) {
        const struct nx_provider_ops *p = nx_provider_for_uri(connect ? connect : m->hosts[i]->uri);
        ranges[i] = p ? p->mac_range : NULL;
    }
    struct nx_desired *d = nx_desired_compute(m, ranges);
    free(ranges);
    return d;
}

/* The spec of a's (role, tenant, host) in d, or the interim tenant-side one
 * (in *t) derived from the provider-side one. NULL with nx_error set. */
static struct nx_appliance_spec *find_spec(const struct args *a, const struct nx_desired *d,
                                           struct interim *t, bool *have_interim)
{
    struct nx_appliance_spec *spec = NULL, *prov = NULL;
    for (size_t i = 0; i < d->n; i++) {
        struct nx_appliance_spec *s = d->items[i];
        if (!nx_str_eq(s->tenant->name, a->tenant) || !nx_str_eq(s->host->name, a->host))
            continue;
        if (s->role == NX_ROLE_PROVIDER)
            prov = s;
        if (s->role == a->role && !spec)
            spec = s;
    }
    if (!spec && a->role == NX_ROLE_TENANT && prov) {
        nx_info("tenant-side appliance derived from the provider-side one (interim)");
        if (interim_tenant_spec(a, prov, t) < 0)
            return NULL;
        *have_interim = true;
        spec = &t->spec;
    }
    if (!spec)
        nx_error_set(NX_EX_DATAERR, "payload: no %s-side appliance of tenant '%s' on host '%s'",
                     nx_role_name(a->role), a->tenant, a->host);
    return spec;
}

/* The options of `payload`; 0, or the exit status of a usage error. */
static int parse_args(const struct nx_cli *cli, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->tenant = cli->tenant;
    a->host = cli->host;
    a->output = cli->output && strcmp(cli->output, "-") ? cli->output : NULL;
    a->connect = cli->connect;
    a->dry_run = cli->dry_run;
    a->address = getenv("NETEXT_DEPLOY_PAYLOAD_ADDRESS");
    a->base64 = nx_str_eq(getenv("NETEXT_DEPLOY_PAYLOAD_BASE64"), "1");
    if (cli->role && !nx_role_parse(cli->role, &a->role)) {
        fprintf(stderr, "netext-deploy: payload: --role '%s': provider or tenant\n", cli->role);
        return NX_EX_USAGE;
    }
    return 0;
}

/* The tenant and host a names or the model implies (its only one); a
 * tenant-side model has tenant-side appliances only. false if either is
 * missing. */
static bool pick_target(const struct nx_model *m, struct args *a)
{
    if (m->kind == NX_KIND_TENANT) {
        a->role = NX_ROLE_TENANT;
        if (!a->tenant && m->n_tenants)
            a->tenant = m->tenants[0]->name;
    } else if (!a->tenant && m->n_tenants == 1) {
        a->tenant = m->tenants[0]->name;
    }
    if (!a->host && m->n_hosts == 1)
        a->host = m->hosts[0]->name;
    return a->tenant && a->host;
}

/* NETEXT_DEPLOY_PAYLOAD_ADDRESS=IP/PREFIX[,GATEWAY]: the interim tenant-side
 * appliance's address (default DHCP); NETEXT_DEPLOY_PAYLOAD_BASE64=1: print
 * base64 as the hypervisor channels carry it. */
int nx_cmd_payload(struct nx_cli *cli)
{
    struct args a;
    int code = parse_args(cli, &a);
    if (code)
        return code;
    struct nx_model *m;
    code = nx_cli_load(cli, &m, false);
    if (code)
        return code;
    if (!pick_target(m, &a)) {
        nx_model_free(m);
        fprintf(stderr, "netext-deploy: payload: --tenant and --host are required\n");
        return NX_EX_USAGE;
    }
    if (m->kind == NX_KIND_TENANT && resolve_tenant(cli, m, &code) < 0) {
        nx_model_free(m);
        return code;
    }
    struct interim t;
    bool have_interim = false;
    memset(&t, 0, sizeof(t));
    struct nx_desired *d = desired_state(m, a.connect);
    struct nx_appliance_spec *spec = find_spec(&a, d, &t, &have_interim);
    if (!spec || nx_payload_issue_spec(spec, m, nx_state_dir(cli->state_dir_opt), a.dry_run) < 0) {
        code = nx_cli_fail(cli, nx_error_code());
        goto cleanup;
    }
    nx_info("payload of %s: %zu bytes, sha256 %s", spec->name, spec->payload_len, spec->digest);
    if (emit(&a, spec->payload, spec->payload_len) < 0)
        code = nx_cli_fail(cli, nx_error_code());
cleanup:
    if (have_interim)
        interim_release(&t);
    nx_desired_free(d);
    nx_model_free(m);
    return code;
}

/* rotate, revoke: the provider plan, and the tenant they act on (--tenant, or
 * the plan's only one; NULL when neither) */
static int load_pki_tenant(const struct nx_cli *cli, const char *why, struct nx_model **m,
                           const char **tenant)
{
    int code = nx_cli_load_kind(cli, m, false, NX_KIND_PROVIDER, why);
    if (code)
        return code;
    *tenant = cli->tenant;
    if (!*tenant && (*m)->n_tenants == 1)
        *tenant = (*m)->tenants[0]->name;
    return 0;
}

int nx_cmd_rotate(struct nx_cli *cli)
{
    bool ca = !strcmp(cli->command, "rotate-ca");
    struct nx_model *m;
    const char *tenant;
    int code = load_pki_tenant(cli,
                               "the tunnel PKI lives on the provider side; give the "
                               "provider plan",
                               &m, &tenant);
    if (code)
        return code;
    struct nx_pki *pki = NULL;
    if (!tenant || !nx_model_tenant(m, tenant)) {
        nx_error_set(NX_EX_USAGE, "%s: --tenant NAME of a tenant in the plan is required",
                     cli->command);
        code = nx_cli_fail(cli, NX_EX_USAGE);
    } else if (cli->dry_run) {
        printf("%s: dry run: tenant %s would get new tunnel certificates%s\n", cli->command, tenant,
               ca ? " and a new CA" : "");
    } else if (nx_pki_open(nx_state_dir(cli->state_dir_opt), 0, &pki) < 0) {
        code = nx_cli_fail(cli, nx_error_code());
    } else {
        int n = nx_pki_rotate(pki, tenant, ca);
        if (n < 0)
            code = nx_cli_fail(cli, nx_error_code());
        else
            printf("%s: tenant %s: %d certificate%s re-issued%s; the next subscribe updates "
                   "the appliances' payloads\n",
                   cli->command, tenant, n, n == 1 ? "" : "s", ca ? " (with a new CA)" : "");
    }
    nx_pki_close(pki);
    nx_model_free(m);
    return code;
}

int nx_cmd_revoke(struct nx_cli *cli)
{
    struct nx_model *m;
    const char *tenant;
    int code = load_pki_tenant(cli,
                               "the revocation lists live on the provider side; give the "
                               "provider plan",
                               &m, &tenant);
    if (code)
        return code;
    struct nx_pki *pki = NULL;
    const char *verb = cli->undo ? "reinstated" : "revoked";
    if (!tenant || !nx_model_tenant(m, tenant) || !cli->appliance || !*cli->appliance) {
        nx_error_set(NX_EX_USAGE,
                     "revoke: --tenant NAME of a tenant in the plan and --appliance NAME are "
                     "required");
        code = nx_cli_fail(cli, NX_EX_USAGE);
    } else if (cli->dry_run) {
        printf("revoke: dry run: tenant %s: appliance %s would be %s\n", tenant, cli->appliance,
               verb);
    } else if (nx_pki_open(nx_state_dir(cli->state_dir_opt), 0, &pki) < 0) {
        code = nx_cli_fail(cli, nx_error_code());
    } else {
        int rc = nx_pki_revoke(pki, tenant, cli->appliance, cli->undo);
        if (rc < 0)
            code = nx_cli_fail(cli, nx_error_code());
        else
            printf("revoke: tenant %s: appliance %s %s%s; the next subscribe updates the SP "
                   "appliances' payloads\n",
                   tenant, cli->appliance, rc == 1 ? "was already " : "", verb);
    }
    nx_pki_close(pki);
    nx_model_free(m);
    return code;
}
