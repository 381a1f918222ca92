/* tenant_side.c: bundles, tenant-side checks and default resolution. */
#include "config.h"

#include "tenant_side.h"
#include "fsutil.h"
#include "util.h"
#include "xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define D(diag, loc, ...) nx_diag_add((diag), (loc).file, (loc).line, __VA_ARGS__)

/* ---- bundle --------------------------------------------------------------- */

static void pem_elem(struct strbuf *sb, const char *name, const char *pem)
{
    if (!pem)
        return;
    strbuf_addf(sb, "    <%s>", name);
    strbuf_add_xml_escaped(sb, pem);
    strbuf_addf(sb, "</%s>\n", name);
}

void nx_bundle_render(struct strbuf *sb, const struct nx_model *m, const struct nx_tenant *t,
                      const struct nx_bundle_creds *creds)
{
    strbuf_addf(sb,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<netext-bundle xmlns=\"%s\" "
                "version=\"1\" tenant=\"",
                NX_BUNDLE_NS);
    strbuf_add_xml_escaped(sb, t->name);
    strbuf_addstr(sb, "\">\n  <gateway address=\"");
    strbuf_add_xml_escaped(sb, m->gateway.address ? m->gateway.address : "");
    strbuf_addf(sb, "\" port=\"%u\"/>\n", m->gateway.port);
    /* one entry per (SP host, VLAN), the first plan network's name */
    for (size_t i = 0; i < t->n_subs; i++) {
        const struct nx_hwplan *p = t->subs[i].plan;
        for (size_t j = 0; p && j < p->n_networks; j++) {
            bool dup = false;
            for (size_t k = 0; k <= i && !dup; k++) {
                const struct nx_hwplan *q = t->subs[k].plan;
                size_t end = k == i ? j : q->n_networks;
                for (size_t l = 0; l < end && !dup; l++)
                    dup = q->host == p->host && q->networks[l].vlan == p->networks[j].vlan;
            }
            if (dup)
                continue;
            strbuf_addstr(sb, "  <network name=\"");
            strbuf_add_xml_escaped(sb, p->networks[j].name);
            strbuf_addf(sb, "\" vlan=\"%u\" host=\"", p->networks[j].vlan);
            strbuf_add_xml_escaped(sb, p->host->name);
            strbuf_addstr(sb, "\"/>\n");
        }
    }
    if (creds && (creds->ca_pem || creds->cert_pem || creds->key_pem || creds->clients_ca_pem)) {
        strbuf_addstr(sb, "  <credentials>\n");
        pem_elem(sb, "ca", creds->ca_pem);
        pem_elem(sb, "certificate", creds->cert_pem);
        pem_elem(sb, "key", creds->key_pem);
        pem_elem(sb, "client-ca", creds->clients_ca_pem);
        pem_elem(sb, "client-ca-key", creds->clients_key_pem);
        strbuf_addstr(sb, "  </credentials>\n");
    }
    strbuf_addstr(sb, "</netext-bundle>\n");
}

static unsigned line_of(xmlNodePtr n)
{
    long l = xmlGetLineNo(n);
    return l > 0 ? (unsigned)l : 0;
}

int nx_bundle_read(struct nx_model *m, const char *path, struct nx_diag *diag)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return nx_error_set(NX_EX_NOINPUT, "bundle %s: %s", path, strerror(errno));
    if (st.st_mode & 077)
        nx_diag_add(diag, path, 0,
                    "bundle is accessible by group or others (mode %04o): it holds the tenant's "
                    "tunnel key; run: chmod 600 %s",
                    (unsigned)(st.st_mode & 07777), path);
    struct strbuf sb = STRBUF_INIT;
    if (nx_read_file(path, 16u << 20, NX_FS_SECRET, &sb) < 0) {
        nx_error_prefix("bundle ");
        return -1;
    }
    int rc = nx_bundle_parse(m, sb.buf, sb.len, path, diag);
    strbuf_release_secret(&sb);
    return rc;
}

int nx_bundle_parse(struct nx_model *m, const char *data, size_t len, const char *name,
                    struct nx_diag *diag)
{
    struct nx_tenant_side *ts = &m->tside;
    NX_GROW(m->files, m->alloc_files, m->n_files + 1);
    const char *file = m->files[m->n_files++] = nx_strdup(name);
    free(ts->bundle_file);
    ts->bundle_file = nx_strdup(name);
    xmlDocPtr doc = nx_xml_read_memory(data, len, file, NX_EX_DATAERR);
    if (!doc) {
        nx_diag_add(diag, file, 0, "%s", nx_error_msg());
        m->n_global_errors++;
        return 0;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!nx_xml_is(root, NX_BUNDLE_NS, "netext-bundle") ||
        !nx_str_eq(nx_xml_attr(root, "version"), "1") || !nx_xml_attr(root, "tenant")) {
        nx_diag_add(diag, file, root ? line_of(root) : 0,
                    "not a netext-deploy tenant bundle (version 1)");
        m->n_global_errors++;
        xmlFreeDoc(doc);
        return 0;
    }
    struct nx_tenant *t = nx_calloc(1, sizeof(*t));
    t->name = nx_strdup(nx_xml_attr(root, "tenant"));
    t->loc.file = file;
    t->loc.line = line_of(root);
    NX_GROW(m->tenants, m->alloc_tenants, m->n_tenants + 1);
    m->tenants[m->n_tenants++] = t;
    for (xmlNodePtr e = nx_xml_first_elem(root); e; e = nx_xml_next_elem(e)) {
        struct nx_loc loc = {file, line_of(e)};
        unsigned long v;
        if (nx_xml_is(e, NX_BUNDLE_NS, "gateway")) {
            m->has_gateway = true;
            m->gateway.loc = loc;
            free(m->gateway.address);
            m->gateway.address = nx_strdup(nx_xml_attr(e, "address"));
            m->gateway.port = nx_parse_uint(nx_xml_attr(e, "port"), 1, 65535, &v)
                                  ? (unsigned)v
                                  : NX_DEFAULT_GATEWAY_PORT;
        } else if (nx_xml_is(e, NX_BUNDLE_NS, "network")) {
            const char *nname = nx_xml_attr(e, "name"), *host = nx_xml_attr(e, "host");
            if (!nname || !*nname || !host || !*host ||
                !nx_parse_uint(nx_xml_attr(e, "vlan"), 1, 4094, &v)) {
                D(diag, loc, "<network>: needs name, host and a VLAN in 1-4094");
                m->n_global_errors++;
                continue;
            }
            NX_GROW(ts->nets, ts->alloc_nets, ts->n_nets + 1);
            struct nx_bundle_net *n = &ts->nets[ts->n_nets++];
            n->loc = loc;
            n->name = nx_strdup(nname);
            n->vlan = (unsigned)v;
            n->sp_host = nx_strdup(host);
        } else if (nx_xml_is(e, NX_BUNDLE_NS, "credentials")) {
            for (xmlNodePtr c = nx_xml_first_elem(e); c; c = nx_xml_next_elem(c)) {
                char **slot = nx_xml_is(c, NX_BUNDLE_NS, "ca")              ? &ts->ca_pem
                              : nx_xml_is(c, NX_BUNDLE_NS, "certificate")   ? &ts->cert_pem
                              : nx_xml_is(c, NX_BUNDLE_NS, "key")           ? &ts->key_pem
                              : nx_xml_is(c, NX_BUNDLE_NS, "client-ca")     ? &ts->clients_ca_pem
                              : nx_xml_is(c, NX_BUNDLE_NS, "client-ca-key") ? &ts->clients_key_pem
                                                                            : NULL;
                if (slot) {
                    nx_free_secret(*slot);
                    *slot = nx_xml_text(c);
                }
            }
        }
    }
    if (!m->has_gateway) {
        nx_diag_add(diag, file, line_of(root), "bundle has no <gateway>");
        m->n_global_errors++;
    }
    ts->bundle_loaded = true;
    xmlFreeDoc(doc);
    return 0;
}

/* ---- checks --------------------------------------------------------------- */

static const struct nx_bundle_net *find_ext(const struct nx_tenant_side *ts, const char *spec,
                                            struct nx_diag *diag, struct nx_loc loc)
{
    /* "NAME" or "NAME@SPHOST" */
    const char *at = strrchr(spec, '@');
    size_t nlen = at ? (size_t)(at - spec) : strlen(spec);
    const struct nx_bundle_net *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < ts->n_nets; i++) {
        const struct nx_bundle_net *n = &ts->nets[i];
        if (strlen(n->name) != nlen || strncmp(n->name, spec, nlen) != 0)
            continue;
        if (at && !nx_str_eq(n->sp_host, at + 1))
            continue;
        found = n;
        matches++;
    }
    if (matches == 1)
        return found;
    if (diag && matches == 0)
        D(diag, loc, "extends=\"%s\": the bundle extends no such network", spec);
    else if (diag)
        D(diag, loc,
          "extends=\"%s\": %zu extended networks have this name on different SP hosts; say "
          "which with NAME@SPHOST",
          spec, matches);
    return NULL;
}

void nx_validate_tenant_side(struct nx_model *m, struct nx_diag *diag)
{
    struct nx_tenant_side *ts = &m->tside;
    size_t before = diag->n;
    if (!ts->bundle_path && !ts->bundle_loaded)
        nx_diag_add(diag, m->n_files ? m->files[0] : NULL, 0,
                    "<netext-tenant>: no bundle (give bundle=\"FILE\" or --bundle FILE)");
    if (m->n_hosts == 0)
        nx_diag_add(diag, m->n_files ? m->files[0] : NULL, 0,
                    "<netext-tenant>: no <source-host>: where do tenant-side appliances go?");
    if (ts->no_appliances && ts->n_appliances)
        D(diag, ts->no_appliances_loc, "<no-appliances/> together with <appliance> elements");
    for (size_t i = 0; i < ts->n_appliances; i++) {
        struct nx_tside_appliance *a = &ts->appliances[i];
        if (!a->host_name || !nx_model_host(m, a->host_name))
            D(diag, a->loc, "<appliance host=\"%s\">: unknown source host",
              a->host_name ? a->host_name : "");
        if (a->extends && ts->bundle_loaded)
            find_ext(ts, a->extends, diag, a->loc);
        if (a->production_network && !*a->production_network)
            D(diag, a->loc, "<appliance>: production-network is empty");
        for (size_t k = 0; k < i; k++) {
            struct nx_tside_appliance *b = &ts->appliances[k];
            if (a->production_network && b->production_network &&
                nx_str_eq(a->host_name, b->host_name) &&
                nx_str_eq(a->production_network, b->production_network))
                D(diag, a->loc,
                  "<appliance production-network=\"%s\">: already served by the appliance at "
                  "line %u (one appliance per production network)",
                  a->production_network, b->loc.line);
            if (a->addr.mode == NX_ADDR_STATIC && b->addr.mode == NX_ADDR_STATIC &&
                a->addr.ip == b->addr.ip)
                D(diag, a->loc, "<static>: address already used by the appliance at line %u",
                  b->loc.line);
        }
    }
    for (size_t i = 0; i < m->n_tenants; i++) {
        const struct nx_tenant *t = m->tenants[i];
        if (!t->name || !*t->name || strlen(t->name) > NX_TENANT_NAME_MAX || strchr(t->name, '/'))
            D(diag, t->loc, "bundle: tenant name \"%s\" is not valid", t->name ? t->name : "");
        else
            nx_map_put(&m->tenant_by_name, t->name, (void *)t);
    }
    if (m->n_tenants > 1)
        nx_diag_add(diag, m->tenants[1]->loc.file, m->tenants[1]->loc.line,
                    "a second bundle: one tenant-side configuration serves one tenant");
    m->n_global_errors += diag->n - before;
}

/* ---- resolution (pure) ---------------------------------------------------- */

static void add_res(struct nx_model *m, const struct nx_host *h, const char *network,
                    const struct nx_bundle_net *ext, const struct nx_address *addr,
                    struct nx_loc loc, struct nx_diag *diag)
{
    struct nx_tenant_side *ts = &m->tside;
    /* appliance names are the tenant's and the network's, with some
     * characters replaced (nx_appliance_name): two appliances must not get
     * one, whether on one host or two (which may share a hypervisor) */
    const char *tenant = m->n_tenants ? m->tenants[0]->name : "";
    char *name = nx_appliance_name(NX_ROLE_TENANT, tenant, h->name, network);
    for (size_t i = 0; i < ts->n_res; i++) {
        char *other =
            nx_appliance_name(NX_ROLE_TENANT, tenant, ts->res[i].host->name, ts->res[i].network);
        bool clash = nx_str_eq(name, other);
        free(other);
        if (clash && !(ts->res[i].host == h && nx_str_eq(ts->res[i].network, network))) {
            D(diag, loc,
              "production network '%s' on host '%s': appliance name '%s' is also the name of the "
              "appliance for production network '%s' on host '%s' (%s:%u); rename one of the "
              "networks",
              network, h->name, name, ts->res[i].network, ts->res[i].host->name,
              ts->res[i].loc.file, ts->res[i].loc.line);
            free(name);
            return;
        }
        if (ts->res[i].host == h && nx_str_eq(ts->res[i].network, network)) {
            D(diag, loc,
              "production network '%s' on host '%s' would be served twice (one appliance per "
              "production network)",
              network, h->name);
            free(name);
            return;
        }
        if (ts->res[i].ext == ext) {
            /* two production networks bridged into one extended network
             * would join them at layer 2 */
            D(diag, loc,
              "extended network '%s' (VLAN %u on SP host '%s') would be bridged to two "
              "production networks ('%s' and '%s'); set extends=\"...\" on the <appliance> "
              "elements",
              ext->name, ext->vlan, ext->sp_host, ts->res[i].network, network);
            free(name);
            return;
        }
    }
    free(name);
    NX_GROW(ts->res, ts->alloc_res, ts->n_res + 1);
    struct nx_tside_resolved *r = &ts->res[ts->n_res++];
    r->host = h;
    r->network = nx_strdup(network);
    r->ext = ext;
    r->addr = addr && addr->mode == NX_ADDR_STATIC ? addr : NULL;
    r->loc = loc;
}

/* The network used by the most production VMs; NULL (with a diag) on a tie,
 * no data or no network. */
static const char *most_used(const struct nx_host *h, const struct nx_net_usage *u, size_t n,
                             bool detectable, struct nx_diag *diag, struct nx_loc loc)
{
    if (!detectable) {
        D(diag, loc,
          "host '%s': the production network cannot be detected through this provider; set "
          "production-network=\"...\" on an <appliance>",
          h->name);
        return NULL;
    }
    const struct nx_net_usage *best = NULL;
    bool tie = false;
    for (size_t i = 0; i < n; i++) {
        if (!best || u[i].vms > best->vms) {
            best = &u[i];
            tie = false;
        } else if (u[i].vms == best->vms) {
            tie = true;
        }
    }
    if (!best || best->vms == 0) {
        D(diag, loc,
          "host '%s': no production VM uses a network, so none can be detected; set "
          "production-network=\"...\" on an <appliance>",
          h->name);
        return NULL;
    }
    if (tie) {
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < n; i++)
            if (u[i].vms == best->vms)
                strbuf_addf(&sb, "%s'%s'", sb.len ? ", " : "", u[i].network);
        D(diag, loc,
          "host '%s': the production network is ambiguous: %s are each used by %u VMs; set "
          "production-network=\"...\" on an <appliance>",
          h->name, sb.buf, best->vms);
        strbuf_release(&sb);
        return NULL;
    }
    return best->network;
}

void nx_tside_needs_usage(const struct nx_model *m, bool *need)
{
    const struct nx_tenant_side *ts = &m->tside;
    for (size_t i = 0; i < m->n_hosts; i++)
        need[i] = false;
    if (ts->no_appliances)
        return;
    if (ts->n_appliances == 0) {
        for (size_t i = 0; i < m->n_hosts; i++)
            need[i] = true;
        return;
    }
    for (size_t i = 0; i < ts->n_appliances; i++) {
        const struct nx_host *h = nx_model_host(m, ts->appliances[i].host_name);
        if (h && !ts->appliances[i].production_network)
            need[h->idx] = true;
    }
}

void nx_tside_resolve(struct nx_model *m, struct nx_net_usage *const *usage, const size_t *n_usage,
                      struct nx_diag *diag, struct nx_diag *notes)
{
    struct nx_tenant_side *ts = &m->tside;
    ts->resolved = true;
    if (ts->no_appliances) {
        D(notes, ts->no_appliances_loc,
          "tenant-side appliances omitted (<no-appliances/>): partial site failover will not "
          "be possible");
        return;
    }
    if (ts->n_appliances) {
        for (size_t i = 0; i < ts->n_appliances; i++) {
            const struct nx_tside_appliance *a = &ts->appliances[i];
            const struct nx_host *h = nx_model_host(m, a->host_name);
            if (!h)
                continue;
            const char *net = a->production_network;
            if (!net)
                net = most_used(h, usage ? usage[h->idx] : NULL, n_usage ? n_usage[h->idx] : 0,
                                usage && usage[h->idx], diag, a->loc);
            if (!net)
                continue;
            const struct nx_bundle_net *ext = NULL;
            if (a->extends) {
                ext = find_ext(ts, a->extends, diag, a->loc);
            } else {
                ext = find_ext(ts, net, NULL, a->loc);
                if (!ext && ts->n_nets == 1)
                    ext = &ts->nets[0];
                if (!ext)
                    D(diag, a->loc,
                      "<appliance>: production network '%s': the bundle has %zu extended "
                      "networks and none is named so; set extends=\"...\"",
                      net, ts->n_nets);
            }
            if (ext)
                add_res(m, h, net, ext, &a->addr, a->loc, diag);
        }
        return;
    }
    /* automatic: no <appliance> */
    struct nx_loc loc = ts->loc;
    if (m->n_hosts != 1) {
        if (m->n_hosts > 1)
            D(diag, loc,
              "%zu source hosts and no <appliance>: say which host serves which production "
              "network",
              m->n_hosts);
        return;
    }
    const struct nx_host *h = m->hosts[0];
    if (ts->n_nets == 0) {
        D(notes, loc, "the bundle extends no network: no tenant-side appliance is needed");
        return;
    }
    const struct nx_net_usage *u = usage ? usage[0] : NULL;
    size_t n = n_usage ? n_usage[0] : 0;
    if (!u) {
        most_used(h, NULL, 0, false, diag, loc);
        return;
    }
    bool *used = nx_calloc(ts->n_nets, sizeof(bool));
    size_t added = 0;
    for (size_t i = 0; i < ts->n_nets; i++) {
        for (size_t k = 0; k < n; k++) {
            if (!u[k].vms || !nx_str_eq(u[k].network, ts->nets[i].name))
                continue;
            /* two extended networks of this name (on two SP hosts): which? */
            size_t same = 0;
            for (size_t j = 0; j < ts->n_nets; j++)
                same += nx_str_eq(ts->nets[j].name, ts->nets[i].name);
            if (same > 1) {
                used[i] = true; /* reported here, not as "not extended" */
                bool first = true;
                for (size_t j = 0; j < i; j++)
                    first &= !nx_str_eq(ts->nets[j].name, ts->nets[i].name);
                if (first)
                    D(diag, loc,
                      "production network '%s' matches %zu extended networks of that name on "
                      "different SP hosts; add <appliance production-network=\"%s\" "
                      "extends=\"%s@SPHOST\">",
                      u[k].network, same, u[k].network, u[k].network);
                continue;
            }
            size_t before = diag->n;
            add_res(m, h, u[k].network, &ts->nets[i], NULL, loc, diag);
            used[i] = diag->n == before;
            added += used[i];
        }
    }
    if (added == 0 && ts->n_nets == 1) {
        const char *net = most_used(h, u, n, true, diag, loc);
        if (net) {
            add_res(m, h, net, &ts->nets[0], NULL, loc, diag);
            used[0] = true;
        }
    }
    for (size_t i = 0; i < ts->n_nets; i++)
        if (!used[i])
            D(notes, ts->nets[i].loc,
              "extended network '%s' (VLAN %u on SP host '%s') is not extended: no production "
              "network of that name on host '%s' (add <appliance extends=\"%s\" ...>)",
              ts->nets[i].name, ts->nets[i].vlan, ts->nets[i].sp_host, h->name, ts->nets[i].name);
    free(used);
}
