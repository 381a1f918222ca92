/* libvirt_conn.c: the libvirt provider's connection (docs/internals/libvirt.md).
 *
 * - Open (with the plan's credentials through a libvirt auth callback) and
 *   close; whether the URI names a remote host (local files are not seen
 *   there) and a privileged QEMU connection (virtlogd writes serial logs).
 * - libvirt errors reported once, with libvirt's own printing silenced.
 * - The networks cache: each network looked up once per connection, with
 *   whether it is Open vSwitch and its portgroups' VLAN tags.
 * - A domain by UUID. */
#include "config.h"

#include <libvirt/virterror.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "libvirt.h"
#include "util.h"
#include "xml.h"

static void silent(void *ud, virErrorPtr e)
{
    (void)ud;
    (void)e;
}

int lv_error(int code, const char *what)
{
    const char *msg = virGetLastErrorMessage();
    return nx_error_set(code, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

void lv_close(struct nx_conn *base)
{
    struct lv_conn *c = base->priv;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_nets; i++) {
        struct net_info *n = c->net_list[i];
        for (size_t j = 0; j < n->n_pg; j++)
            free(n->pg_names[j]);
        free(n->pg_names);
        free(n->pg_vlans);
        free(n->name);
        free(n);
    }
    free(c->net_list);
    nx_map_release(&c->nets);
    nx_map_release(&c->staged);
    if (c->conn)
        virConnectClose(c->conn);
    free(c->domain_type);
    free(c);
    base->priv = NULL;
}

static int auth_cb(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
    const struct nx_conn_opts *o = cbdata;
    for (unsigned i = 0; i < ncred; i++) {
        const char *v = NULL;
        if (cred[i].type == VIR_CRED_AUTHNAME || cred[i].type == VIR_CRED_USERNAME)
            v = o->user;
        else if (cred[i].type == VIR_CRED_PASSPHRASE)
            v = o->password;
        if (!v)
            return -1;
        cred[i].result = strdup(v);
        cred[i].resultlen = (unsigned)strlen(v);
    }
    return 0;
}

/* driver[+transport]://[user@]host[:port]/path names a host */
static bool uri_is_remote(const char *uri)
{
    const char *p = strstr(uri, "://");
    if (!p)
        return false;
    p += 3;
    return *p && *p != '/';
}

/* whether the URI's path (between host and query) is `path` */
static bool uri_path_is(const char *uri, const char *path)
{
    const char *p = strstr(uri, "://");
    if (!p)
        return false;
    p = strchr(p + 3, '/');
    if (!p)
        return false;
    size_t n = strcspn(p, "?#");
    return n == strlen(path) && strncmp(p, path, n) == 0;
}

int lv_open(struct nx_conn *base, const char *uri, const struct nx_conn_opts *opts)
{
    virSetErrorFunc(NULL, silent);
    struct lv_conn *c = nx_calloc(1, sizeof(*c));
    c->base = base;
    base->priv = c;
    int credtype[] = {VIR_CRED_AUTHNAME, VIR_CRED_USERNAME, VIR_CRED_PASSPHRASE};
    virConnectAuth auth = {credtype, NX_ARRAY_SIZE(credtype), auth_cb, (void *)opts};
    c->conn = virConnectOpenAuth(uri, opts && (opts->user || opts->password) ? &auth : NULL, 0);
    if (!c->conn) {
        lv_error(NX_EX_UNAVAILABLE, "cannot connect");
        lv_close(base);
        return -1;
    }
    nx_map_init(&c->nets);
    nx_map_init(&c->staged);
    c->remote = uri_is_remote(uri);
    const char *type = virConnectGetType(c->conn);
    c->is_test = type && strcmp(type, "TEST") == 0;
    if (c->is_test) {
        c->domain_type = nx_strdup("test");
    } else {
        char *caps = virConnectGetCapabilities(c->conn);
        c->domain_type = nx_strdup(caps && strstr(caps, "<domain type='kvm'") ? "kvm" : "qemu");
        free(caps);
        c->privileged = uri_path_is(uri, "/system");
    }
    return 0;
}

struct net_info *lv_net_lookup(struct lv_conn *c, const char *name)
{
    struct net_info *n = nx_map_get(&c->nets, name);
    if (n)
        return n->missing ? NULL : n;
    n = nx_calloc(1, sizeof(*n));
    n->name = nx_strdup(name);
    NX_GROW(c->net_list, c->alloc_nets, c->n_nets + 1);
    c->net_list[c->n_nets++] = n;
    nx_map_put(&c->nets, n->name, n);
    virNetworkPtr net = virNetworkLookupByName(c->conn, name);
    if (!net) {
        n->missing = true;
        return NULL;
    }
    char *xml = virNetworkGetXMLDesc(net, 0);
    virNetworkFree(net);
    xmlDocPtr doc = xml ? nx_xml_read_memory(xml, strlen(xml), name, NX_EX_PROTOCOL) : NULL;
    free(xml);
    if (doc) {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        size_t alloc = 0, alloc2 = 0;
        for (xmlNodePtr e = nx_xml_first_elem(root); e; e = nx_xml_next_elem(e)) {
            if (nx_xml_is(e, NULL, "virtualport") &&
                nx_str_eq(nx_xml_attr(e, "type"), "openvswitch"))
                n->ovs = true;
            if (!nx_xml_is(e, NULL, "portgroup"))
                continue;
            xmlNodePtr vl = nx_xml_first_elem(e);
            while (vl && !nx_xml_is(vl, NULL, "vlan"))
                vl = nx_xml_next_elem(vl);
            xmlNodePtr tag = vl ? nx_xml_first_elem(vl) : NULL;
            unsigned long id;
            if (!tag || !nx_parse_uint(nx_xml_attr(tag, "id"), 1, 4094, &id))
                continue;
            NX_GROW(n->pg_vlans, alloc, n->n_pg + 1);
            NX_GROW(n->pg_names, alloc2, n->n_pg + 1);
            n->pg_vlans[n->n_pg] = (unsigned)id;
            n->pg_names[n->n_pg++] = nx_strdup(nx_xml_attr(e, "name"));
        }
        xmlFreeDoc(doc);
    }
    return n;
}

const char *lv_portgroup_for(const struct net_info *n, unsigned vlan)
{
    const char *found = NULL;
    for (size_t i = 0; i < n->n_pg; i++)
        if (n->pg_vlans[i] == vlan) {
            if (found)
                return NULL; /* ambiguous: tag the interface only */
            found = n->pg_names[i];
        }
    return found;
}

virDomainPtr lv_lookup_domain(struct lv_conn *c, const struct nx_appliance_obs *o)
{
    virDomainPtr d = virDomainLookupByUUIDString(c->conn, o->id);
    if (!d)
        lv_error(NX_EX_UNAVAILABLE, o->name);
    return d;
}
