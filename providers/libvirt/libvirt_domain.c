/* libvirt_domain.c: the libvirt provider's domain XML (docs/internals/libvirt.md).
 *
 * - Rendered from templates/libvirt/domain.xml: the whole domain, one
 *   <interface> (for hot-plug) and the CD-ROM <disk> (for set-image) are
 *   the template's own sections, rendered alone.
 * - vNICs: <interface type='network'> with an explicit MAC and a VLAN tag, on
 *   an Open vSwitch network (or one of its portgroups carrying that VLAN).
 * - Resource pool: <resource><partition>/machine/POOL</partition>.
 *   Datastore and folder: recorded in the marker only.
 * - Ownership marker: <metadata><nx:appliance .../> in NX_MARKER_NS.
 * - Payload: fw_cfg entry opt/org.netext-deploy/payload, base64 (libvirt 9.0
 *   passes inline fw_cfg strings to QEMU with commas unescaped; base64 has none).
 * - Appliance image: an IDE CD-ROM the domain boots from; the ISO file itself
 *   (local hypervisors) or the volume in the host's image-store pool.
 * - Serial console: a pty, logged by virtlogd to
 *   /var/log/libvirt/qemu/NAME-serial.log on privileged QEMU connections,
 *   where the appliance's netext-status lines can be read.
 * - Parsed back: the owned appliances (by marker; the persistent definition)
 *   and the networks used by domains that are not appliances. */
#include "config.h"

#include <libvirt/virterror.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "error.h"
#include "libvirt.h"
#include "template.h"
#include "util.h"
#include "xml.h"

#define APPLIANCE_MEMORY_MIB 256

static void vnic_ctx(struct lv_conn *c, struct nx_tctx *item, const struct nx_vnic_spec *v)
{
    char mac[18];
    nx_format_mac(v->mac, mac);
    nx_tctx_set(item, "mac", mac);
    nx_tctx_set(item, "network", v->network);
    struct net_info *n = lv_net_lookup(c, v->network);
    const char *pg = n && v->vlan ? lv_portgroup_for(n, v->vlan) : NULL;
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

int lv_render_domain(struct lv_conn *c, const struct nx_appliance_spec *s, const char *uuid,
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

int lv_render_interface(struct lv_conn *c, const struct nx_vnic_spec *v, struct strbuf *out)
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

int lv_render_disk(struct lv_conn *c, const struct nx_appliance_spec *s, struct strbuf *out)
{
    /* the <disk> of the domain template, rendered alone */
    const char *tm = nx_tmpl_libvirt_domain;
    const char *key = s->host->image_store ? "image_volume" : "image_file";
    char open_tag[32], close_tag[32];
    snprintf(open_tag, sizeof(open_tag), "{{#%s}}", key);
    snprintf(close_tag, sizeof(close_tag), "{{/%s}}", key);
    const char *a = strstr(tm, open_tag), *b = a ? strstr(a, close_tag) : NULL;
    if (!a || !b)
        return nx_error_set(NX_EX_SOFTWARE, "libvirt/domain.xml: no %s section", open_tag);
    struct nx_tctx *t = nx_tctx_new();
    image_ctx(c, t, s);
    char *sect = nx_strndup(a, (size_t)(b - a) + strlen(close_tag));
    int rc = nx_template_render("libvirt/domain.xml#disk", sect, t, NX_ESC_XML, out);
    free(sect);
    nx_tctx_free(t);
    return rc;
}
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

int lv_list_owned(struct nx_conn *base, struct nx_obs_list *out)
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

/* Networks used by domains that are not appliances. A libvirt connection is
 * one host, so `host` is not needed to filter. */
int lv_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
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
