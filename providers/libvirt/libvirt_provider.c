/* libvirt_provider.c: network extension appliances as libvirt domains.
 *
 * - The domain XML is rendered from templates/libvirt/domain.xml.
 * - vNICs: <interface type='network'> with an explicit MAC and a VLAN tag, on
 *   an Open vSwitch network (or one of its portgroups carrying that VLAN).
 * - Resource pool: <resource><partition>/machine/POOL</partition>.
 *   Datastore: a storage pool, which must exist. Folder: recorded in the
 *   marker only (libvirt has no folders).
 * - Ownership marker: <metadata><nx:appliance .../> in NX_MARKER_NS.
 * - Payload: fw_cfg entry opt/org.netext-deploy/payload, base64 (libvirt 9.0
 *   passes inline fw_cfg strings to QEMU with commas unescaped; base64 has none).
 * - vNIC changes: attach/detach (live and config) where the driver supports
 *   it; otherwise (the test driver) the domain is redefined with its UUID.
 * - Appliance image: an IDE CD-ROM the domain boots from; the ISO file itself
 *   (local hypervisors), or a volume netext-appliance-<id>.iso in the storage
 *   pool the host's image-store names, uploaded when missing or different
 *   (checked by size and SHA-256, once per pool and run). The image id is in
 *   the marker. A new image changes the persistent definition: it boots at
 *   the next start.
 * - Serial console: a pty, logged by virtlogd to
 *   /var/log/libvirt/qemu/NAME-serial.log on privileged QEMU connections,
 *   where the appliance's netext-status lines can be read. */
#include "config.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embedded.h"
#include "error.h"
#include "log.h"
#include "provider.h"
#include "strbuf.h"
#include "template.h"
#include "util.h"
#include "xml.h"

#define PAYLOAD_FWCFG "opt/org.netext-deploy/payload"
#define APPLIANCE_MEMORY_MIB 256

struct net_info {
    char *name;
    bool missing;
    bool ovs;
    unsigned *pg_vlans; /* portgroup VLAN tags */
    char **pg_names;
    size_t n_pg;
};

struct lv_conn {
    struct nx_conn *base; /* the core's connection; this is its priv */
    virConnectPtr conn;
    char *domain_type;
    bool is_test;
    struct nx_map nets; /* name -> struct net_info* (missing ones too) */
    struct net_info **net_list;
    size_t n_nets, alloc_nets;
    bool remote; /* the URI names a host: local files are not seen there */
    bool privileged; /* qemu:///system-like: virtlogd writes serial logs */
    struct nx_map staged; /* pool names whose image volume is current */
};

static void silent(void *ud, virErrorPtr e)
{
    (void)ud;
    (void)e;
}

static int lv_error(int code, const char *what)
{
    const char *msg = virGetLastErrorMessage();
    return nx_error_set(code, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

static bool lv_probe(const char *uri)
{
    /* everything libvirt may know; vSphere and Hyper-V URIs are taken first */
    return uri && strstr(uri, ":") != NULL;
}

static void lv_close(struct nx_conn *base)
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

static int lv_open(struct nx_conn *base, const char *uri, const struct nx_conn_opts *opts)
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

/* ---- inventory ---------------------------------------------------------- */

static struct net_info *net_lookup(struct lv_conn *c, const char *name)
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

static const char *portgroup_for(const struct net_info *n, unsigned vlan)
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

static bool safe_pool_name(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int lv_check_placement(struct nx_conn *base, const struct nx_appliance_spec *s)
{
    struct lv_conn *c = base->priv;
    for (size_t i = 0; i < s->n_vnics; i++) {
        const struct nx_vnic_spec *v = &s->vnics[i];
        if (!v->network)
            return nx_error_set(NX_EX_DATAERR,
                                "VLAN %u ('%s') needs the host's vlan-switch: the Open vSwitch "
                                "network that carries tenant VLANs",
                                v->vlan, v->label);
        struct net_info *n = net_lookup(c, v->network);
        if (!n)
            return nx_error_set(NX_EX_DATAERR, "libvirt network '%s' does not exist on %s",
                                v->network, c->base->uri);
        if (v->vlan && !n->ovs && !portgroup_for(n, v->vlan))
            return nx_error_set(NX_EX_DATAERR,
                                "libvirt network '%s' cannot carry VLAN %u: it is not an Open "
                                "vSwitch network and has no portgroup with that VLAN",
                                v->network, v->vlan);
    }
    if (s->placement.resource_pool && !safe_pool_name(s->placement.resource_pool))
        return nx_error_set(NX_EX_DATAERR,
                            "resource pool '%s': libvirt partitions take letters, digits, '_', "
                            "'-' and '.' only",
                            s->placement.resource_pool);
    if (s->placement.datastore) {
        virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, s->placement.datastore);
        if (!p)
            return nx_error_set(NX_EX_DATAERR, "storage pool '%s' does not exist on %s",
                                s->placement.datastore, c->base->uri);
        virStoragePoolFree(p);
    }
    if (s->image && s->host->image_store) {
        virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, s->host->image_store);
        if (!p)
            return nx_error_set(NX_EX_DATAERR,
                                "image-store: storage pool '%s' does not exist on %s",
                                s->host->image_store, c->base->uri);
        int active = virStoragePoolIsActive(p);
        virStoragePoolFree(p);
        if (active != 1)
            return nx_error_set(NX_EX_DATAERR, "image-store: storage pool '%s' is not active on %s",
                                s->host->image_store, c->base->uri);
    } else if (s->image && c->remote) {
        return nx_error_set(NX_EX_DATAERR,
                            "%s is a remote libvirt host: give the host an image-store (a storage "
                            "pool the appliance image is uploaded to)",
                            c->base->uri);
    }
    return 0;
}

/* ---- rendering ---------------------------------------------------------- */

static void vnic_ctx(struct lv_conn *c, struct nx_tctx *item, const struct nx_vnic_spec *v)
{
    char mac[18];
    nx_format_mac(v->mac, mac);
    nx_tctx_set(item, "mac", mac);
    nx_tctx_set(item, "network", v->network);
    struct net_info *n = net_lookup(c, v->network);
    const char *pg = n && v->vlan ? portgroup_for(n, v->vlan) : NULL;
    nx_tctx_set(item, "portgroup", pg ? pg : "");
    if (v->vlan)
        nx_tctx_setf(item, "vlan", "%u", v->vlan);
    else
        nx_tctx_set(item, "vlan", "");
}

static void image_ctx(struct lv_conn *c, struct nx_tctx *t, const struct nx_appliance_spec *s)
{
    const char *store = s->image ? s->host->image_store : NULL;
    nx_tctx_set(t, "image_id", s->image ? s->image->id : "");
    nx_tctx_set(t, "image_file", s->image && !store ? s->image->file : "");
    nx_tctx_set(t, "image_pool", store ? store : "");
    nx_tctx_set(t, "image_volume", store ? s->image->name : "");
    if (c->privileged)
        nx_tctx_setf(t, "serial_log", "/var/log/libvirt/qemu/%s-serial.log", s->name);
    else
        nx_tctx_set(t, "serial_log", "");
}

static int render_domain(struct lv_conn *c, const struct nx_appliance_spec *s, const char *uuid,
                         struct strbuf *out)
{
    struct nx_tctx *t = nx_tctx_new();
    struct strbuf b64 = STRBUF_INIT;
    nx_tctx_set(t, "domain_type", c->domain_type);
    nx_tctx_set(t, "name", s->name);
    nx_tctx_set(t, "uuid", uuid ? uuid : "");
    nx_tctx_set(t, "role", nx_role_name(s->role));
    nx_tctx_set(t, "tenant", s->tenant->name);
    nx_tctx_set(t, "host", s->host->name);
    nx_tctx_set(t, "net", s->net ? s->net : "");
    nx_tctx_setf(t, "revision", "%d", NX_MODEL_REVISION);
    nx_tctx_set(t, "digest", s->digest);
    nx_tctx_set(t, "folder", s->placement.folder ? s->placement.folder : "");
    nx_tctx_set(t, "datastore", s->placement.datastore ? s->placement.datastore : "");
    nx_tctx_setf(t, "memory_mib", "%d", APPLIANCE_MEMORY_MIB);
    if (s->placement.resource_pool && *s->placement.resource_pool)
        nx_tctx_setf(t, "partition", "/machine/%s", s->placement.resource_pool);
    else
        nx_tctx_set(t, "partition", "");
    nx_tctx_set(t, "machine", c->is_test ? "" : "pc");
    image_ctx(c, t, s);
    strbuf_add_base64(&b64, s->payload, s->payload_len);
    nx_tctx_set(t, "payload_b64", b64.buf);
    for (size_t i = 0; i < s->n_vnics; i++)
        vnic_ctx(c, nx_tctx_add(t, "vnics"), &s->vnics[i]);
    int rc = nx_template_render("libvirt/domain.xml", nx_tmpl_libvirt_domain, t, NX_ESC_XML, out);
    strbuf_release(&b64);
    nx_tctx_free(t);
    return rc;
}

static int render_interface(struct lv_conn *c, const struct nx_vnic_spec *v, struct strbuf *out)
{
    /* the <interface> element of the domain template, rendered alone */
    const char *start = strstr(nx_tmpl_libvirt_domain, "{{#vnics}}");
    const char *end = strstr(nx_tmpl_libvirt_domain, "{{/vnics}}");
    if (!start || !end)
        return nx_error_set(NX_EX_SOFTWARE, "libvirt/domain.xml: no {{#vnics}} section");
    start += strlen("{{#vnics}}");
    char *tmpl = nx_strndup(start, (size_t)(end - start));
    struct nx_tctx *t = nx_tctx_new();
    vnic_ctx(c, t, v);
    int rc = nx_template_render("libvirt/domain.xml#vnics", tmpl, t, NX_ESC_XML, out);
    nx_tctx_free(t);
    free(tmpl);
    return rc;
}

/* ---- discovery ---------------------------------------------------------- */

static struct nx_appliance_obs *parse_domain(const char *xml, bool active)
{
    xmlDocPtr doc = nx_xml_read_memory(xml, strlen(xml), "domain XML", NX_EX_PROTOCOL);
    if (!doc)
        return NULL;
    struct nx_appliance_obs *o = NULL;
    xmlNodePtr root = xmlDocGetRootElement(doc), md = NULL, mk = NULL, devs = NULL;
    const char *uuid = NULL, *name = NULL;
    char *uuid_s = NULL, *name_s = NULL;
    for (xmlNodePtr e = nx_xml_first_elem(root); e; e = nx_xml_next_elem(e)) {
        if (nx_xml_is(e, NULL, "metadata"))
            md = e;
        else if (nx_xml_is(e, NULL, "devices"))
            devs = e;
        else if (nx_xml_is(e, NULL, "uuid"))
            uuid = (const char *)(uuid_s = nx_xml_text(e));
        else if (nx_xml_is(e, NULL, "name"))
            name = (const char *)(name_s = nx_xml_text(e));
    }
    for (xmlNodePtr e = nx_xml_first_elem(md); e; e = nx_xml_next_elem(e))
        if (nx_xml_is(e, NX_MARKER_NS, "appliance"))
            mk = e;
    if (!mk || !uuid)
        goto cleanup;
    struct nx_marker m = {0};
    if (!nx_role_parse(nx_xml_attr(mk, "role"), &m.role) || !nx_xml_attr(mk, "tenant") ||
        !nx_xml_attr(mk, "host"))
        goto cleanup;
    o = nx_calloc(1, sizeof(*o));
    o->marker = m;
    o->marker.tenant = nx_strdup(nx_xml_attr(mk, "tenant"));
    o->marker.host = nx_strdup(nx_xml_attr(mk, "host"));
    o->marker.net = nx_strdup(nx_xml_attr(mk, "net"));
    unsigned long rev = 0;
    nx_parse_uint(nx_xml_attr(mk, "revision"), 0, 1000000, &rev);
    o->marker.revision = (unsigned)rev;
    const char *dg = nx_xml_attr(mk, "digest");
    if (dg && strlen(dg) == 64)
        memcpy(o->marker.digest, dg, 65);
    nx_marker_set_image(&o->marker, nx_xml_attr(mk, "image"));
    o->id = nx_strdup(uuid);
    o->name = nx_strdup(name ? name : uuid);
    o->powered_on = active;
    for (xmlNodePtr e = nx_xml_first_elem(devs); e; e = nx_xml_next_elem(e)) {
        if (!nx_xml_is(e, NULL, "interface"))
            continue;
        struct nx_vnic_obs *v = nx_obs_add_vnic(o);
        for (xmlNodePtr f = nx_xml_first_elem(e); f; f = nx_xml_next_elem(f)) {
            if (nx_xml_is(f, NULL, "mac")) {
                const char *mac = nx_xml_attr(f, "address");
                if (mac)
                    nx_parse_mac(mac, v->mac);
                free(v->id);
                v->id = nx_strdup(mac);
            } else if (nx_xml_is(f, NULL, "source")) {
                v->network = nx_strdup(nx_xml_attr(f, "network"));
            } else if (nx_xml_is(f, NULL, "vlan")) {
                xmlNodePtr tag = nx_xml_first_elem(f);
                unsigned long id;
                if (tag && nx_parse_uint(nx_xml_attr(tag, "id"), 1, 4094, &id))
                    v->vlan = (unsigned)id;
            }
        }
    }
cleanup:
    free(uuid_s);
    free(name_s);
    xmlFreeDoc(doc);
    return o;
}

static int lv_list_owned(struct nx_conn *base, struct nx_obs_list *out)
{
    struct lv_conn *c = base->priv;
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c->conn, &doms, 0);
    if (n < 0)
        return lv_error(NX_EX_UNAVAILABLE, "listing domains");
    int ret = 0;
    for (int i = 0; i < n; i++) {
        if (ret == 0) {
            /* the persistent definition is the desired state's counterpart */
            char *xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
            if (!xml) {
                virErrorPtr e = virGetLastError();
                if (!e || e->code != VIR_ERR_NO_DOMAIN) /* vanished meanwhile: fine */
                    ret = lv_error(NX_EX_UNAVAILABLE, "reading domain XML");
            } else {
                int active = virDomainIsActive(doms[i]);
                struct nx_appliance_obs *o = parse_domain(xml, active == 1);
                if (o)
                    nx_obs_list_add(out, o);
                free(xml);
            }
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    return ret;
}

/* ---- changes ------------------------------------------------------------ */

static virDomainPtr lookup(struct lv_conn *c, const struct nx_appliance_obs *o)
{
    virDomainPtr d = virDomainLookupByUUIDString(c->conn, o->id);
    if (!d)
        lv_error(NX_EX_UNAVAILABLE, o->name);
    return d;
}

static int lv_create(struct nx_conn *base, const struct nx_appliance_spec *s,
                     struct nx_appliance_obs **out)
{
    struct lv_conn *c = base->priv;
    struct strbuf xml = STRBUF_INIT;
    int ret = -1;
    if (render_domain(c, s, NULL, &xml) < 0)
        goto cleanup;
    virDomainPtr d = virDomainDefineXML(c->conn, xml.buf);
    if (!d) {
        lv_error(NX_EX_UNAVAILABLE, s->name);
        goto cleanup;
    }
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(d, uuid);
    virDomainFree(d);
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    o->id = nx_strdup(uuid);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    *out = o;
    ret = 0;
cleanup:
    strbuf_release(&xml);
    return ret;
}

static int redefine(struct lv_conn *c, const struct nx_appliance_obs *o,
                    const struct nx_appliance_spec *s)
{
    struct strbuf xml = STRBUF_INIT;
    int ret = -1;
    if (render_domain(c, s, o->id, &xml) < 0)
        goto cleanup;
    virDomainPtr d = virDomainDefineXML(c->conn, xml.buf);
    if (!d) {
        lv_error(NX_EX_UNAVAILABLE, s->name);
        goto cleanup;
    }
    virDomainFree(d);
    ret = 0;
cleanup:
    strbuf_release(&xml);
    return ret;
}

/* whether a domain XML (as libvirt formats it) has an interface with MAC */
static bool live_has_mac(const char *xml, const char *mac)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "<mac address='%s'/>", mac);
    return xml && strstr(xml, needle) != NULL;
}

static int lv_update_vnics(struct nx_conn *base, const struct nx_appliance_obs *o,
                           const struct nx_appliance_spec *s, const struct nx_vnic_spec *const *add,
                           size_t n_add, const struct nx_vnic_obs *const *rem, size_t n_rem)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = lookup(c, o);
    if (!d)
        return -1;
    int ret = -1;
    struct strbuf xml = STRBUF_INIT;
    /* The observed vNICs are the persistent definition's; the running guest
     * may differ: a detach stays pending until the guest acknowledges it
     * (ACPI eject), and a vNIC may have been removed from the config only.
     * Change the live guest only where it differs, else attaching a MAC
     * that is still live would give the guest two NICs with that MAC. */
    char *live = virDomainIsActive(d) == 1 ? virDomainGetXMLDesc(d, 0) : NULL;
    for (size_t i = 0; i < n_rem; i++) {
        char mac[18];
        nx_format_mac(rem[i]->mac, mac);
        unsigned flags = live_has_mac(live, mac) ? VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_AFFECT_LIVE
                                                 : VIR_DOMAIN_AFFECT_CONFIG;
        strbuf_reset(&xml);
        strbuf_addf(&xml, "<interface type='network'><mac address='%s'/>", mac);
        strbuf_addstr(&xml, "<source network='");
        strbuf_add_xml_escaped(&xml, rem[i]->network ? rem[i]->network : "");
        strbuf_addstr(&xml, "'/></interface>");
        if (virDomainDetachDeviceFlags(d, xml.buf, flags) < 0) {
            if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT)
                goto redefine;
            lv_error(NX_EX_UNAVAILABLE, o->name);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < n_add; i++) {
        char mac[18];
        nx_format_mac(add[i]->mac, mac);
        unsigned flags = live && !live_has_mac(live, mac)
                             ? VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_AFFECT_LIVE
                             : VIR_DOMAIN_AFFECT_CONFIG;
        strbuf_reset(&xml);
        if (render_interface(c, add[i], &xml) < 0)
            goto cleanup;
        if (virDomainAttachDeviceFlags(d, xml.buf, flags) < 0) {
            if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT)
                goto redefine;
            lv_error(NX_EX_UNAVAILABLE, o->name);
            goto cleanup;
        }
    }
    ret = 0;
    goto cleanup;
redefine:
    /* the driver cannot hot-plug (e.g. the test driver): define the whole
     * desired configuration under the same UUID */
    nx_debug("%s: driver cannot attach devices; redefining", o->name);
    ret = redefine(c, o, s);
cleanup:
    free(live);
    strbuf_release(&xml);
    virDomainFree(d);
    return ret;
}

static int lv_set_payload(struct nx_conn *base, const struct nx_appliance_obs *o,
                          const struct nx_appliance_spec *s)
{
    /* fw_cfg is read at boot: the new payload applies at the next start */
    return redefine(base->priv, o, s);
}

/* ---- the appliance image ------------------------------------------------ */

static int send_file(virStreamPtr st, char *data, size_t n, void *opaque)
{
    (void)st;
    ssize_t r;
    do
        r = read(*(int *)opaque, data, n);
    while (r < 0 && errno == EINTR);
    return (int)r;
}

struct hash_sink {
    EVP_MD_CTX *md;
    unsigned long long n;
};

static int hash_data(virStreamPtr st, const char *data, size_t n, void *opaque)
{
    (void)st;
    struct hash_sink *h = opaque;
    EVP_DigestUpdate(h->md, data, n);
    h->n += n;
    return (int)n;
}

/* whether vol holds exactly the image: same capacity and SHA-256 */
static int volume_is_image(struct lv_conn *c, virStorageVolPtr vol, const struct nx_image *img,
                           bool *same)
{
    virStorageVolInfo info;
    *same = false;
    if (virStorageVolGetInfo(vol, &info) < 0)
        return lv_error(NX_EX_UNAVAILABLE, img->name);
    if (info.capacity != img->size)
        return 0;
    int ret = -1;
    struct hash_sink h = {EVP_MD_CTX_new(), 0};
    virStreamPtr st = virStreamNew(c->conn, 0);
    if (!h.md || !st || !EVP_DigestInit_ex(h.md, EVP_sha256(), NULL)) {
        lv_error(NX_EX_SOFTWARE, img->name);
        goto cleanup;
    }
    if (virStorageVolDownload(vol, st, 0, img->size, 0) < 0 ||
        virStreamRecvAll(st, hash_data, &h) < 0 || virStreamFinish(st) < 0) {
        virStreamAbort(st);
        lv_error(NX_EX_UNAVAILABLE, img->name);
        goto cleanup;
    }
    unsigned char d[32];
    unsigned dl = 0;
    char hex[65];
    EVP_DigestFinal_ex(h.md, d, &dl);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    *same = h.n == img->size && strcmp(hex, img->digest) == 0;
    ret = 0;
cleanup:
    if (st)
        virStreamFree(st);
    EVP_MD_CTX_free(h.md);
    return ret;
}

static int upload_image(struct lv_conn *c, virStoragePoolPtr pool, const struct nx_image *img)
{
    int ret = -1, fd = -1;
    virStreamPtr st = NULL;
    struct strbuf xml = STRBUF_INIT;
    strbuf_addstr(&xml, "<volume><name>");
    strbuf_add_xml_escaped(&xml, img->name);
    strbuf_addf(&xml,
                "</name><capacity unit='bytes'>%llu</capacity>"
                "<target><format type='raw'/></target></volume>",
                (unsigned long long)img->size);
    virStorageVolPtr vol = virStorageVolCreateXML(pool, xml.buf, 0);
    if (!vol) {
        lv_error(NX_EX_UNAVAILABLE, img->name);
        goto cleanup;
    }
    fd = open(img->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nx_error_set(NX_EX_NOINPUT, "%s: %s", img->file, strerror(errno));
        goto cleanup;
    }
    st = virStreamNew(c->conn, 0);
    if (!st || virStorageVolUpload(vol, st, 0, img->size, 0) < 0 ||
        virStreamSendAll(st, send_file, &fd) < 0 || virStreamFinish(st) < 0) {
        lv_error(NX_EX_UNAVAILABLE, img->name);
        if (st)
            virStreamAbort(st);
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (ret < 0 && vol)
        virStorageVolDelete(vol, 0); /* never leave a partial image behind */
    if (vol)
        virStorageVolFree(vol);
    if (st)
        virStreamFree(st);
    if (fd >= 0)
        close(fd);
    strbuf_release(&xml);
    return ret;
}

static int lv_stage_image(struct nx_conn *base, const struct nx_appliance_spec *s)
{
    struct lv_conn *c = base->priv;
    const char *store = s->host->image_store;
    if (!s->image || !store || nx_map_get(&c->staged, store))
        return 0; /* the file is used in place, or staged already in this run */
    virStoragePoolPtr pool = virStoragePoolLookupByName(c->conn, store);
    if (!pool)
        return lv_error(NX_EX_UNAVAILABLE, store);
    int ret = -1;
    bool same = false;
    virStorageVolPtr vol = virStorageVolLookupByName(pool, s->image->name);
    if (vol && volume_is_image(c, vol, s->image, &same) < 0)
        goto cleanup;
    if (vol && !same) {
        nx_info("%s: volume %s differs from the image; uploading it again", store, s->image->name);
        if (virStorageVolDelete(vol, 0) < 0) {
            lv_error(NX_EX_UNAVAILABLE, s->image->name);
            goto cleanup;
        }
    }
    if (!same) {
        nx_info("uploading %s to storage pool %s (%llu bytes)", s->image->name, store,
                (unsigned long long)s->image->size);
        if (upload_image(c, pool, s->image) < 0)
            goto cleanup;
        virStoragePoolRefresh(pool, 0);
    }
    nx_map_put(&c->staged, store, (void *)1);
    ret = 0;
cleanup:
    if (vol)
        virStorageVolFree(vol);
    virStoragePoolFree(pool);
    return ret;
}

/* The persistent definition with spec's image in its CD-ROM (and the marker
 * saying so); everything else stays as it is. */
static int lv_set_image(struct nx_conn *base, const struct nx_appliance_obs *o,
                        const struct nx_appliance_spec *s)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = lookup(c, o);
    if (!d)
        return -1;
    int ret = -1;
    char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    xmlDocPtr doc = xml ? nx_xml_read_memory(xml, strlen(xml), "domain XML", NX_EX_PROTOCOL) : NULL;
    struct strbuf disk = STRBUF_INIT;
    struct nx_tctx *t = nx_tctx_new();
    xmlDocPtr frag = NULL;
    xmlChar *out = NULL;
    if (!xml) {
        lv_error(NX_EX_UNAVAILABLE, o->name);
        goto cleanup;
    }
    if (!doc)
        goto cleanup;
    /* the <disk> of the domain template, rendered alone */
    const char *tm = nx_tmpl_libvirt_domain;
    const char *key = s->host->image_store ? "image_volume" : "image_file";
    char open_tag[32], close_tag[32];
    snprintf(open_tag, sizeof(open_tag), "{{#%s}}", key);
    snprintf(close_tag, sizeof(close_tag), "{{/%s}}", key);
    const char *a = strstr(tm, open_tag), *b = a ? strstr(a, close_tag) : NULL;
    if (!a || !b) {
        nx_error_set(NX_EX_SOFTWARE, "libvirt/domain.xml: no %s section", open_tag);
        goto cleanup;
    }
    image_ctx(c, t, s);
    char *sect = nx_strndup(a, (size_t)(b - a) + strlen(close_tag));
    int rc = nx_template_render("libvirt/domain.xml#disk", sect, t, NX_ESC_XML, &disk);
    free(sect);
    if (rc < 0)
        goto cleanup;
    frag = nx_xml_read_memory(disk.buf, disk.len, "disk XML", NX_EX_SOFTWARE);
    if (!frag)
        goto cleanup;
    xmlNodePtr root = xmlDocGetRootElement(doc), devs = NULL, os = NULL, md = NULL;
    for (xmlNodePtr e = nx_xml_first_elem(root); e; e = nx_xml_next_elem(e)) {
        if (nx_xml_is(e, NULL, "devices"))
            devs = e;
        else if (nx_xml_is(e, NULL, "os"))
            os = e;
        else if (nx_xml_is(e, NULL, "metadata"))
            md = e;
    }
    if (!devs || !os || !md) {
        nx_error_set(NX_EX_PROTOCOL, "%s: domain XML without devices, os or metadata", o->name);
        goto cleanup;
    }
    for (xmlNodePtr e = nx_xml_first_elem(devs), next; e; e = next) {
        next = nx_xml_next_elem(e);
        if (nx_xml_is(e, NULL, "disk") && nx_str_eq(nx_xml_attr(e, "device"), "cdrom")) {
            xmlUnlinkNode(e);
            xmlFreeNode(e);
        }
    }
    xmlNodePtr nd = xmlDocCopyNode(xmlDocGetRootElement(frag), doc, 1);
    xmlNodePtr first = nx_xml_first_elem(devs);
    if (first)
        xmlAddPrevSibling(first, nd);
    else
        xmlAddChild(devs, nd);
    bool boot = false;
    for (xmlNodePtr e = nx_xml_first_elem(os); e; e = nx_xml_next_elem(e))
        boot |= nx_xml_is(e, NULL, "boot") && nx_str_eq(nx_xml_attr(e, "dev"), "cdrom");
    if (!boot)
        xmlSetProp(xmlNewChild(os, NULL, BAD_CAST "boot", NULL), BAD_CAST "dev", BAD_CAST "cdrom");
    for (xmlNodePtr e = nx_xml_first_elem(md); e; e = nx_xml_next_elem(e))
        if (nx_xml_is(e, NX_MARKER_NS, "appliance"))
            xmlSetProp(e, BAD_CAST "image", BAD_CAST s->image->id);
    int len = 0;
    xmlDocDumpMemory(doc, &out, &len);
    virDomainPtr nd2 = out ? virDomainDefineXML(c->conn, (const char *)out) : NULL;
    if (!nd2) {
        lv_error(NX_EX_UNAVAILABLE, o->name);
        goto cleanup;
    }
    virDomainFree(nd2);
    ret = 0;
cleanup:
    xmlFree(out);
    xmlFreeDoc(frag);
    xmlFreeDoc(doc);
    nx_tctx_free(t);
    strbuf_release(&disk);
    if (xml)
        nx_free_secret(xml);
    virDomainFree(d);
    return ret;
}

/* Starting failed. libvirt does not create a resource partition other than
 * /machine when it manages cgroups itself (hosts without systemd-machined):
 * the start then fails with a cgroup error naming a file under the partition
 * (e.g. ".../machine/POOL.partition/..." or, before any guest ever ran,
 * ".../machine/cgroup.controllers"). libvirt has no API to query partitions,
 * so this cannot be checked before the start: say what the host needs. */
static int start_error(virDomainPtr d, const struct nx_appliance_obs *o)
{
    /* copied: the next libvirt call resets the last error */
    const char *last = virGetLastErrorMessage();
    char *msg = nx_strdup(last ? last : "unknown libvirt error");
    char *xml = NULL, *part = NULL;
    if (strstr(msg, "cgroup") && (xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE))) {
        const char *p = strstr(xml, "<partition>"), *e = p ? strstr(p, "</partition>") : NULL;
        if (p && e)
            part = nx_strndup(p + strlen("<partition>"), (size_t)(e - p) - strlen("<partition>"));
    }
    int rc;
    if (part && strncmp(part, "/machine/", 9) == 0 && part[9])
        rc = nx_error_set(NX_EX_UNAVAILABLE,
                          "%s: cannot start in resource pool partition %s: %s (the partition "
                          "must exist on the host before a guest starts: with systemd, the slice "
                          "machine-%s.slice; without, a cgroup %s.partition under /machine in "
                          "every cgroup controller; or leave resource-pool unset)",
                          o->name, part, msg, part + 9, part + 9);
    else
        rc = nx_error_set(NX_EX_UNAVAILABLE, "%s: %s", o->name, msg);
    free(part);
    free(xml);
    free(msg);
    return rc;
}

static int lv_set_power(struct nx_conn *base, const struct nx_appliance_obs *o, bool on)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = lookup(c, o);
    if (!d)
        return -1;
    int active = virDomainIsActive(d), rc = 0;
    if (on && active != 1) {
        if ((rc = virDomainCreate(d)) < 0)
            start_error(d, o);
    } else if (!on && active == 1) {
        if ((rc = virDomainDestroy(d)) < 0)
            lv_error(NX_EX_UNAVAILABLE, o->name);
    }
    virDomainFree(d);
    return rc < 0 ? -1 : 0;
}

static int lv_remove(struct nx_conn *base, const struct nx_appliance_obs *o)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = virDomainLookupByUUIDString(c->conn, o->id);
    if (!d)
        return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? 0
                                                          : lv_error(NX_EX_UNAVAILABLE, o->name);
    int rc = 0;
    if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0)
        rc = lv_error(NX_EX_UNAVAILABLE, o->name);
    if (rc == 0 && virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                 VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                 VIR_DOMAIN_UNDEFINE_NVRAM) < 0) {
        if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT ||
            virGetLastErrorCode() == VIR_ERR_INVALID_ARG) {
            if (virDomainUndefine(d) < 0)
                rc = lv_error(NX_EX_UNAVAILABLE, o->name);
        } else {
            rc = lv_error(NX_EX_UNAVAILABLE, o->name);
        }
    }
    virDomainFree(d);
    return rc;
}

/* Networks used by domains that are not appliances. A libvirt connection is
 * one host, so `host` is not needed to filter. */
static int lv_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                            size_t *n_out)
{
    struct lv_conn *c = base->priv;
    virDomainPtr *doms = NULL;
    (void)host;
    int n = virConnectListAllDomains(c->conn, &doms, 0);
    if (n < 0)
        return lv_error(NX_EX_UNAVAILABLE, "listing domains");
    struct nx_net_usage *u = NULL;
    int *last = NULL; /* the domain that last counted each network: a VM counts once */
    size_t nu = 0, alloc = 0, alloc_last = 0;
    for (int i = 0; i < n; i++) {
        char *xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
        virDomainFree(doms[i]);
        xmlDocPtr doc =
            xml ? nx_xml_read_memory(xml, strlen(xml), "domain XML", NX_EX_PROTOCOL) : NULL;
        free(xml);
        if (!doc)
            continue;
        xmlNodePtr root = xmlDocGetRootElement(doc), devs = NULL;
        bool appliance = false;
        for (xmlNodePtr e = nx_xml_first_elem(root); e; e = nx_xml_next_elem(e)) {
            if (nx_xml_is(e, NULL, "devices"))
                devs = e;
            if (nx_xml_is(e, NULL, "metadata"))
                for (xmlNodePtr f = nx_xml_first_elem(e); f; f = nx_xml_next_elem(f))
                    appliance |= nx_xml_is(f, NX_MARKER_NS, "appliance");
        }
        for (xmlNodePtr e = nx_xml_first_elem(devs); e && !appliance; e = nx_xml_next_elem(e)) {
            if (!nx_xml_is(e, NULL, "interface") || !nx_str_eq(nx_xml_attr(e, "type"), "network"))
                continue;
            const char *net = NULL;
            for (xmlNodePtr f = nx_xml_first_elem(e); f; f = nx_xml_next_elem(f))
                if (nx_xml_is(f, NULL, "source"))
                    net = nx_xml_attr(f, "network");
            if (!net)
                continue;
            size_t k = 0;
            while (k < nu && strcmp(u[k].network, net) != 0)
                k++;
            if (k == nu) {
                NX_GROW(u, alloc, nu + 1);
                NX_GROW(last, alloc_last, nu + 1);
                u[nu].network = nx_strdup(net);
                u[nu].vms = 0;
                last[nu++] = -1;
            }
            if (last[k] != i) {
                u[k].vms++;
                last[k] = i;
            }
        }
        xmlFreeDoc(doc);
    }
    free(doms);
    free(last);
    *out = u;
    *n_out = nu;
    return 0;
}

const struct nx_provider_ops nx_libvirt_provider = {
    .name = "libvirt",
    .probe = lv_probe,
    .mac_range = &nx_mac_range_local,
    .open = lv_open,
    .close = lv_close,
    .check_placement = lv_check_placement,
    .list_owned = lv_list_owned,
    .network_usage = lv_network_usage,
    .create = lv_create,
    .update_vnics = lv_update_vnics,
    .set_payload = lv_set_payload,
    .set_power = lv_set_power,
    .remove = lv_remove,
    .stage_image = lv_stage_image,
    .set_image = lv_set_image,
};
