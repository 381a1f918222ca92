/* vsphere_inventory.c: the whole inventory in one RetrievePropertiesEx over a
 * ContainerView of the root folder (plus ContinueRetrievePropertiesEx while
 * the server pages), parsed into struct vs_obj. The view lives as long as the
 * session (Logout destroys it), so no DestroyView request is spent on it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere_inventory.h"
#include "vsphere_session.h"
#include "xml.h"

static const char *const view_types[] = {
    "Datacenter", "Folder",  "ComputeResource",          "ResourcePool",   "HostSystem",
    "Datastore",  "Network", "DistributedVirtualSwitch", "VirtualMachine",
};

/* type, then its properties */
static const char *const prop_specs[][8] = {
    {"Datacenter", "name", "parent", "vmFolder", NULL},
    {"Folder", "name", "parent", NULL},
    {"StoragePod", "name", "parent", NULL},
    {"ComputeResource", "name", "parent", "resourcePool", NULL},
    {"ClusterComputeResource", "name", "parent", "resourcePool", NULL},
    {"ResourcePool", "name", "parent", NULL},
    {"HostSystem", "name", "parent", "network", "datastore", "config.network.portgroup",
     "configManager.networkSystem", NULL},
    {"Datastore", "name", "parent", "summary.type", NULL},
    {"Network", "name", NULL},
    {"DistributedVirtualPortgroup", "name", "key", "host", "config.distributedVirtualSwitch",
     "config.defaultPortConfig", NULL},
    {"DistributedVirtualSwitch", "name", "uuid", NULL},
    {"VmwareDistributedVirtualSwitch", "name", "uuid", NULL},
    {"HostNetworkSystem", "networkInfo.portgroup", NULL},
    {"VirtualMachine", "name", "config.extraConfig", "config.hardware.device", "runtime.powerState",
     "runtime.host", NULL},
};

/* Free every vNIC's strings and empty the list (the array stays). */
static void release_nics(struct vs_obj *o)
{
    for (size_t i = 0; i < o->n_nics; i++) {
        struct vs_vmnic *n = &o->nics[i];
        free(n->key);
        free(n->device_type);
        free(n->network);
        free(n->device_name);
        free(n->switch_uuid);
        free(n->portgroup_key);
    }
    o->n_nics = 0;
}

static void release_cd(struct vs_vmcd *cd)
{
    free(cd->key);
    free(cd->controller);
    free(cd->file);
    free(cd->ide[0]);
    free(cd->ide[1]);
    memset(cd, 0, sizeof(*cd));
}

static void obj_free(struct vs_obj *o)
{
    if (!o)
        return;
    free(o->type);
    free(o->id);
    free(o->name);
    free(o->parent);
    free(o->vm_folder);
    free(o->netsys);
    free(o->root_pool);
    free(o->ds_type);
    for (size_t i = 0; i < o->n_pgs; i++) {
        free(o->pgs[i].name);
        free(o->pgs[i].vswitch);
    }
    free(o->pgs);
    for (size_t i = 0; i < o->n_refs; i++)
        free(o->refs[i]);
    free(o->refs);
    for (size_t i = 0; i < o->n_dss; i++)
        free(o->dss[i]);
    free(o->dss);
    free(o->dvs);
    free(o->pg_key);
    free(o->uuid);
    free(o->marker);
    free(o->vm_host);
    release_nics(o);
    free(o->nics);
    release_cd(&o->cd);
    free(o);
}

void vs_inventory_release(struct vs_inventory *inv)
{
    for (size_t i = 0; i < inv->n; i++)
        obj_free(inv->objs[i]);
    free(inv->objs);
    nx_map_release(&inv->by_id);
    memset(inv, 0, sizeof(*inv));
}

struct vs_obj *vs_inv_get(const struct vs_conn *c, const char *id)
{
    return id ? nx_map_get(&c->inv.by_id, id) : NULL;
}

struct vs_obj *vs_inv_add(struct vs_inventory *inv, const char *type, const char *id)
{
    if (!inv->by_id.slots)
        nx_map_init(&inv->by_id);
    struct vs_obj *o = nx_map_get(&inv->by_id, id);
    if (o)
        return o;
    o = nx_calloc(1, sizeof(*o));
    o->type = nx_strdup(type);
    o->id = nx_strdup(id);
    o->vlan = -1;
    NX_GROW(inv->objs, inv->alloc, inv->n + 1);
    inv->objs[inv->n++] = o;
    nx_map_put(&inv->by_id, o->id, o);
    return o;
}

bool vs_is_type(const struct vs_obj *o, const char *t)
{
    return o && !strcmp(o->type, t);
}

struct vs_obj *vs_dvpg_by_key(const struct vs_conn *c, const char *key)
{
    for (size_t i = 0; key && i < c->inv.n; i++)
        if (vs_is_type(c->inv.objs[i], "DistributedVirtualPortgroup") &&
            nx_str_eq(c->inv.objs[i]->pg_key, key))
            return c->inv.objs[i];
    return NULL;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v && *v ? nx_strdup(v) : NULL;
}

static void add_ref(char ***arr, size_t *n, const char *v)
{
    *arr = nx_realloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[(*n)++] = nx_strdup(v);
}

static void parse_refs(xmlNodePtr val, char ***arr, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*arr)[i]);
    *n = 0;
    for (xmlNodePtr r = nx_xml_first_elem(val); r; r = nx_xml_next_elem(r))
        add_ref(arr, n, nx_soap_text(r));
}

static void parse_portgroups(struct vs_obj *o, xmlNodePtr val)
{
    for (xmlNodePtr pg = nx_xml_first_elem(val); pg; pg = nx_xml_next_elem(pg)) {
        xmlNodePtr spec = nx_soap_child(pg, "spec");
        if (!spec)
            continue;
        o->pgs = nx_realloc(o->pgs, (o->n_pgs + 1) * sizeof(*o->pgs));
        struct vs_pg *p = &o->pgs[o->n_pgs++];
        p->name = nx_soap_child_text(spec, "name");
        p->vswitch = nx_soap_child_text(spec, "vswitchName");
        unsigned long v = 0;
        nx_parse_uint(nx_soap_text(nx_soap_child(spec, "vlanId")), 0, 4095, &v);
        p->vlan = (unsigned)v;
        if (!p->name)
            p->name = nx_strdup("");
    }
}

static void parse_extra_config(struct vs_obj *o, xmlNodePtr val)
{
    for (xmlNodePtr ov = nx_xml_first_elem(val); ov; ov = nx_xml_next_elem(ov)) {
        if (strcmp(nx_soap_text(nx_soap_child(ov, "key")), VS_MARKER_KEY) == 0)
            set_str(&o->marker, nx_soap_text(nx_soap_child(ov, "value")));
    }
}

/* The CD/DVD drive, the IDE controllers and which of their units are taken. */
static void parse_cd(struct vs_vmcd *cd, xmlNodePtr val)
{
    release_cd(cd);
    for (xmlNodePtr d = nx_xml_first_elem(val); d; d = nx_xml_next_elem(d)) {
        const char *t = nx_soap_xsi_type(d);
        if (t && !strcmp(t, "VirtualIDEController")) {
            for (int i = 0; i < 2; i++)
                if (!cd->ide[i]) {
                    cd->ide[i] = nx_soap_child_text(d, "key");
                    break;
                }
        }
    }
    for (xmlNodePtr d = nx_xml_first_elem(val); d; d = nx_xml_next_elem(d)) {
        const char *t = nx_soap_xsi_type(d);
        const char *ctl = nx_soap_text(nx_soap_child(d, "controllerKey"));
        unsigned long unit = 0;
        bool has_unit = nx_parse_uint(nx_soap_text(nx_soap_child(d, "unitNumber")), 0, 1, &unit);
        for (int i = 0; i < 2 && has_unit; i++)
            if (cd->ide[i] && !strcmp(cd->ide[i], ctl))
                cd->ide_used |= 1u << (2 * i + (int)unit);
        if (!t || strcmp(t, "VirtualCdrom") != 0 || cd->key)
            continue;
        cd->key = nx_soap_child_text(d, "key");
        cd->controller = *ctl ? nx_strdup(ctl) : NULL;
        unsigned long u = 0;
        nx_parse_uint(nx_soap_text(nx_soap_child(d, "unitNumber")), 0, 64, &u);
        cd->unit = (int)u;
        xmlNodePtr b = nx_soap_child(d, "backing");
        const char *bt = nx_soap_xsi_type(b);
        if (bt && !strcmp(bt, "VirtualCdromIsoBackingInfo"))
            cd->file = nx_soap_child_text(b, "fileName");
    }
}

/* one VM's config.hardware.device into o->nics (replacing them) and o->cd */
static void parse_devices(struct vs_obj *o, xmlNodePtr val)
{
    release_nics(o);
    parse_cd(&o->cd, val);
    for (xmlNodePtr d = nx_xml_first_elem(val); d; d = nx_xml_next_elem(d)) {
        xmlNodePtr mac = nx_soap_child(d, "macAddress");
        xmlNodePtr backing = nx_soap_child(d, "backing");
        if (!mac || !backing)
            continue; /* not an Ethernet card */
        o->nics = nx_realloc(o->nics, (o->n_nics + 1) * sizeof(*o->nics));
        struct vs_vmnic *n = &o->nics[o->n_nics++];
        memset(n, 0, sizeof(*n));
        n->key = nx_soap_child_text(d, "key");
        const char *t = nx_soap_xsi_type(d);
        n->device_type = nx_strdup(t ? t : "VirtualEthernetCard");
        nx_parse_mac(nx_soap_text(mac), n->mac);
        n->device_name = nx_soap_child_text(backing, "deviceName");
        n->network = nx_soap_child_text(backing, "network");
        xmlNodePtr port = nx_soap_child(backing, "port");
        if (port) {
            n->switch_uuid = nx_soap_child_text(port, "switchUuid");
            n->portgroup_key = nx_soap_child_text(port, "portgroupKey");
        }
    }
}

static void parse_prop(struct vs_conn *c, struct vs_obj *o, const char *name, xmlNodePtr val)
{
    (void)c;
    const char *text = nx_soap_text(val);
    if (!strcmp(name, "name"))
        set_str(&o->name, text);
    else if (!strcmp(name, "parent"))
        set_str(&o->parent, text);
    else if (!strcmp(name, "vmFolder"))
        set_str(&o->vm_folder, text);
    else if (!strcmp(name, "resourcePool"))
        set_str(&o->root_pool, text);
    else if (!strcmp(name, "summary.type"))
        set_str(&o->ds_type, text);
    else if (!strcmp(name, "network") || !strcmp(name, "host"))
        parse_refs(val, &o->refs, &o->n_refs);
    else if (!strcmp(name, "datastore"))
        parse_refs(val, &o->dss, &o->n_dss);
    else if (!strcmp(name, "configManager.networkSystem"))
        set_str(&o->netsys, text);
    else if (!strcmp(name, "config.network.portgroup") || !strcmp(name, "networkInfo.portgroup"))
        parse_portgroups(o, val);
    else if (!strcmp(name, "key"))
        set_str(&o->pg_key, text);
    else if (!strcmp(name, "config.distributedVirtualSwitch"))
        set_str(&o->dvs, text);
    else if (!strcmp(name, "config.defaultPortConfig")) {
        xmlNodePtr vlan = nx_soap_child(val, "vlan");
        const char *t = nx_soap_xsi_type(vlan);
        unsigned long v;
        o->vlan = -1;
        if (vlan && (!t || !strcmp(t, "VmwareDistributedVirtualSwitchVlanIdSpec")) &&
            nx_parse_uint(nx_soap_text(nx_soap_child(vlan, "vlanId")), 0, 4094, &v))
            o->vlan = (int)v;
    } else if (!strcmp(name, "uuid"))
        set_str(&o->uuid, text);
    else if (!strcmp(name, "config.extraConfig"))
        parse_extra_config(o, val);
    else if (!strcmp(name, "config.hardware.device"))
        parse_devices(o, val);
    else if (!strcmp(name, "runtime.powerState"))
        o->powered_on = !strcmp(text, "poweredOn");
    else if (!strcmp(name, "runtime.host"))
        set_str(&o->vm_host, text);
}

/* what parse_result returns when the session was dropped (a vs_retrieve stop) */
#define SESSION_DROPPED 2

/* Parse one page of a RetrieveResult (returnval), a vs_retrieve page().
 * Returns SESSION_DROPPED if a missingSet carried NotAuthenticated. */
static int parse_result(struct vs_conn *c, xmlNodePtr rv, void *ctx)
{
    (void)ctx;
    if (!rv)
        return 0; /* nothing matched */
    for (xmlNodePtr e = nx_xml_first_elem(rv); e; e = nx_xml_next_elem(e)) {
        if (strcmp((const char *)e->name, "objects") != 0)
            continue;
        xmlNodePtr obj = nx_soap_child(e, "obj");
        const char *type = obj ? nx_xml_attr(obj, "type") : NULL;
        const char *id = obj ? nx_soap_text(obj) : "";
        if (!type || !*id)
            return nx_error_set(NX_EX_PROTOCOL,
                                "RetrievePropertiesEx: an object without a reference");
        struct vs_obj *o = vs_inv_add(&c->inv, type, id);
        for (xmlNodePtr p = nx_xml_first_elem(e); p; p = nx_xml_next_elem(p)) {
            if (!strcmp((const char *)p->name, "propSet")) {
                const char *pname = nx_soap_text(nx_soap_child(p, "name"));
                xmlNodePtr val = nx_soap_child(p, "val");
                if (val)
                    parse_prop(c, o, pname, val);
            } else if (!strcmp((const char *)p->name, "missingSet")) {
                struct nx_soap_fault f = {0};
                nx_soap_fault_from_node(nx_soap_child(p, "fault"), &f);
                bool noauth = !strcmp(f.type, "NotAuthenticated");
                if (!noauth)
                    nx_debug("vsphere: %s %s: property %s missing: %s", type, id,
                             nx_soap_text(nx_soap_child(p, "path")), f.type);
                nx_soap_fault_release(&f);
                if (noauth)
                    return SESSION_DROPPED;
            }
        }
    }
    return 0;
}

static void build_spec(struct strbuf *sb, const char *view)
{
    strbuf_addstr(sb, "<specSet>");
    for (size_t i = 0; i < NX_ARRAY_SIZE(prop_specs); i++) {
        strbuf_addstr(sb, "<propSet>");
        nx_soap_add(sb, "type", prop_specs[i][0]);
        for (size_t j = 1; j < NX_ARRAY_SIZE(prop_specs[i]) && prop_specs[i][j]; j++)
            nx_soap_add(sb, "pathSet", prop_specs[i][j]);
        strbuf_addstr(sb, "</propSet>");
    }
    strbuf_addstr(sb, "<objectSet>");
    nx_soap_add_moref(sb, "obj", "ContainerView", view);
    strbuf_addstr(sb, "<skip>true</skip><selectSet xsi:type=\"TraversalSpec\">"
                      "<name>view</name><type>ContainerView</type><path>view</path>"
                      "<skip>false</skip>"
                      "<selectSet xsi:type=\"TraversalSpec\"><name>netsys</name>"
                      "<type>HostSystem</type><path>configManager.networkSystem</path>"
                      "<skip>false</skip></selectSet>"
                      /* datastores inside datastore clusters (vcsim's view
                       * does not descend into StoragePods) */
                      "<selectSet xsi:type=\"TraversalSpec\"><name>pod</name>"
                      "<type>StoragePod</type><path>childEntity</path>"
                      "<skip>false</skip></selectSet>"
                      "</selectSet></objectSet></specSet>");
}

static int load_once(struct vs_conn *c)
{
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    char *view = NULL;
    int ret = -1;

    nx_soap_begin(&sb, "CreateContainerView", "ViewManager", c->view_manager);
    nx_soap_add_moref(&sb, "container", "Folder", c->root_folder);
    for (size_t i = 0; i < NX_ARRAY_SIZE(view_types); i++)
        nx_soap_add(&sb, "type", view_types[i]);
    nx_soap_add(&sb, "recursive", "true");
    nx_soap_end(&sb, "CreateContainerView");
    if (vs_call(c, "CreateContainerView", sb.buf, &r, NULL) != 0)
        goto cleanup;
    view = nx_soap_child_text(r.body, "returnval");
    nx_soap_resp_release(&r);
    if (!view) {
        nx_error_set(NX_EX_PROTOCOL, "CreateContainerView: no view in the answer");
        goto cleanup;
    }

    strbuf_reset(&sb);
    nx_soap_begin(&sb, "RetrievePropertiesEx", "PropertyCollector", c->property_collector);
    build_spec(&sb, view);
    strbuf_addstr(&sb, "<options></options>");
    nx_soap_end(&sb, "RetrievePropertiesEx");
    struct nx_soap_fault f = {0};
    int rc = vs_retrieve(c, sb.buf, &f, parse_result, NULL);
    /* our view can only vanish with our session (vcsim says so this way) */
    bool view_gone = rc == 1 && !strcmp(f.type, "ManagedObjectNotFound") &&
                     (!f.object || !strcmp(f.object, view));
    nx_soap_fault_release(&f);
    if (view_gone || rc == SESSION_DROPPED) {
        ret = 1; /* session dropped under us: the caller logs in again */
        goto cleanup;
    }
    if (rc != 0)
        goto cleanup;
    ret = 0;
cleanup:
    free(view);
    nx_soap_resp_release(&r);
    strbuf_release(&sb);
    return ret;
}

static int load_locked(struct vs_conn *c);

int vs_inventory_load(struct vs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    bool have = c->have_inventory;
    pthread_mutex_unlock(&c->lock);
    if (have)
        return 0;
    /* the first caller reads it; the others wait for that */
    pthread_mutex_lock(&c->load_lock);
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    have = c->have_inventory;
    pthread_mutex_unlock(&c->lock);
    if (!have)
        rc = load_locked(c);
    pthread_mutex_unlock(&c->load_lock);
    return rc;
}

/* c->load_lock held; nobody reads c->inv before have_inventory is set. */
static int load_locked(struct vs_conn *c)
{
    unsigned long logins = vs_logins(c);
    int rc = load_once(c);
    if (rc < 0 && vs_logins(c) != logins) {
        /* vs_call logged in again on NotAuthenticated: the view went with the
         * old session, so start over in the new one */
        vs_inventory_release(&c->inv);
        logins = vs_logins(c);
        rc = load_once(c);
    }
    if (rc == 1) {
        nx_info("vsphere: %s: the session was dropped (NotAuthenticated in missingSet, or our "
                "view is gone); logging in again",
                c->url);
        vs_inventory_release(&c->inv);
        if (vs_relogin(c, logins) < 0)
            return -1;
        rc = load_once(c);
        if (rc == 1)
            return nx_error_set(NX_EX_NOPERM,
                                "%s: RetrievePropertiesEx: NotAuthenticated after logging in "
                                "again",
                                c->url);
    }
    if (rc < 0) {
        vs_inventory_release(&c->inv);
        return -1;
    }
    /* standard portgroups: the host's config, completed by its network system
     * (which some servers, vcsim among them, keep more current) */
    for (size_t i = 0; i < c->inv.n; i++) {
        struct vs_obj *h = c->inv.objs[i];
        struct vs_obj *ns = h->netsys ? nx_map_get(&c->inv.by_id, h->netsys) : NULL;
        for (size_t j = 0; ns && j < ns->n_pgs; j++) {
            bool have = false;
            for (size_t k = 0; k < h->n_pgs && !have; k++)
                have = !strcmp(h->pgs[k].name, ns->pgs[j].name);
            if (have)
                continue;
            h->pgs = nx_realloc(h->pgs, (h->n_pgs + 1) * sizeof(*h->pgs));
            h->pgs[h->n_pgs].name = nx_strdup(ns->pgs[j].name);
            h->pgs[h->n_pgs].vswitch = ns->pgs[j].vswitch ? nx_strdup(ns->pgs[j].vswitch) : NULL;
            h->pgs[h->n_pgs].vlan = ns->pgs[j].vlan;
            h->n_pgs++;
        }
    }
    pthread_mutex_lock(&c->lock);
    c->have_inventory = true;
    pthread_mutex_unlock(&c->lock);
    nx_debug("vsphere: inventory: %zu objects", c->inv.n);
    return 0;
}

int vs_find_vm_by_marker(struct vs_conn *c, const char *folder, const char *marker, char **vm)
{
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    int ret = 0;
    *vm = NULL;
    nx_soap_begin(&sb, "RetrievePropertiesEx", "PropertyCollector", c->property_collector);
    strbuf_addstr(&sb, "<specSet><propSet><type>VirtualMachine</type>"
                       "<pathSet>config.extraConfig</pathSet></propSet><objectSet>");
    nx_soap_add_moref(&sb, "obj", "Folder", folder);
    strbuf_addstr(&sb, "<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>f</name>"
                       "<type>Folder</type><path>childEntity</path><skip>false</skip>"
                       "</selectSet></objectSet></specSet><options></options>");
    nx_soap_end(&sb, "RetrievePropertiesEx");
    if (vs_call(c, "RetrievePropertiesEx", sb.buf, &r, NULL) != 0) {
        strbuf_release(&sb);
        return -1;
    }
    strbuf_release(&sb);
    /* only the first page is looked at (servers page at hundreds of
     * objects); a VM beyond it counts as not found */
    xmlNodePtr rv = nx_soap_child(r.body, "returnval");
    for (xmlNodePtr e = nx_xml_first_elem(rv); e && !*vm; e = nx_xml_next_elem(e)) {
        if (strcmp((const char *)e->name, "objects") != 0)
            continue;
        xmlNodePtr obj = nx_soap_child(e, "obj");
        const char *type = obj ? nx_xml_attr(obj, "type") : NULL;
        if (!type || strcmp(type, "VirtualMachine") != 0)
            continue;
        struct vs_obj tmp = {0};
        for (xmlNodePtr p = nx_xml_first_elem(e); p; p = nx_xml_next_elem(p))
            if (!strcmp((const char *)p->name, "propSet") && nx_soap_child(p, "val"))
                parse_extra_config(&tmp, nx_soap_child(p, "val"));
        if (tmp.marker && !strcmp(tmp.marker, marker)) {
            *vm = nx_strdup(nx_soap_text(obj));
            ret = 1;
        }
        free(tmp.marker);
    }
    nx_soap_resp_release(&r);
    return ret;
}
