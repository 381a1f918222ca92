/* vsphere_provider.c: network extension appliances on ESXi/vCenter through the
 * vSphere Web Services (SOAP) API.
 *
 * - URI: vsphere://host[:port][/path] -> https://host[:port]/path (default
 *   path /sdk). vsphere+http:// talks plain HTTP (labs only; warned about).
 * - One session per run: RetrieveServiceContent, Login (cookie
 *   vmware_soap_session kept by the transport), Logout at close; on
 *   NotAuthenticated the provider logs in again once and retries.
 * - Placement: folder (default Cloud_Connect_Replication) under the
 *   datacenter's VM folder and a resource pool of the same name under the
 *   host's (or cluster's) root pool, created when missing; VVol datastores and
 *   datastore clusters (StoragePod) are refused before any change.
 * - vNICs: vmxnet3 with a static MAC in 00:50:56:00:00:00/22, backed by the
 *   standard or distributed portgroup carrying the VLAN on that host.
 * - Marker: extraConfig netext-deploy.marker (nx_marker_encode text).
 *   Payload: guestinfo.netext.payload (base64) + .encoding, as cloud-init's
 *   VMware datasource reads it.
 * - Appliance image: the ISO at "[DS] netext-deploy/<image name>" on the
 *   host's image-store datastore (default: the appliance's), uploaded through
 *   the datastore file endpoint (/folder, in the SOAP session) when missing or
 *   of another size: one HEAD, at most one MakeDirectory + PUT, per datastore
 *   and run. A VirtualCdrom on the default IDE controller holds it, in the
 *   CreateVM_Task spec, and the VM boots from it (bootOrder). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere.h"
#include "xml.h"

#define APPLIANCE_MEMORY_MIB 512
#define APPLIANCE_GUEST_ID "otherLinux64Guest"

static const struct nx_mac_range vs_mac_range = {{0x00, 0x50, 0x56, 0x00, 0x00, 0x00}, 22};

/* ---- session ------------------------------------------------------------- */

static bool vs_probe(const char *uri)
{
    return uri &&
           (nx_str_has_prefix(uri, "vsphere://") || nx_str_has_prefix(uri, "vsphere+http://"));
}

/* vsphere://host[:port][/path] -> https://host[:port]/path */
static char *uri_to_url(const char *uri)
{
    const char *scheme = "https://";
    const char *rest;
    if (nx_str_has_prefix(uri, "vsphere://")) {
        rest = uri + strlen("vsphere://");
    } else {
        rest = uri + strlen("vsphere+http://");
        scheme = "http://";
    }
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (hostlen == 0 || memchr(rest, '@', hostlen) || memchr(rest, '?', strlen(rest)))
        return NULL; /* no user info in URIs: credentials come from a file */
    if (!slash || !slash[1])
        return nx_asprintf("%s%.*s/sdk", scheme, (int)hostlen, rest);
    return nx_asprintf("%s%s", scheme, rest);
}

static int map_fault_code(const struct nx_soap_fault *f)
{
    if (!strcmp(f->type, "InvalidLogin") || !strcmp(f->type, "NoPermission") ||
        !strcmp(f->type, "NotAuthenticated"))
        return NX_EX_NOPERM;
    return NX_EX_FAILED;
}

/* ---- calls, retries, session -------------------------------------------- */

#define RETRY_ATTEMPTS VS_RETRY_ATTEMPTS
#define RETRY_BASE_MS 250
#define RETRY_CAP_MS 2000

/* Calls that change nothing, or whose repetition does no harm: repeated on a
 * transient failure (see /work/notes/retries.md). */
static bool vs_method_is_read(const char *method)
{
    static const char *const reads[] = {
        "RetrieveServiceContent",
        "RetrievePropertiesEx",
        "ContinueRetrievePropertiesEx",
        "WaitForUpdatesEx",
        "CreateContainerView",
        "CreateFilter",
        "Login",
        "Logout",
    };
    for (size_t i = 0; i < NX_ARRAY_SIZE(reads); i++)
        if (!strcmp(method, reads[i]))
            return true;
    return false;
}

/* Sleep before retry `k` (1, 2, ...): exponential backoff with jitter,
 * uniform in [d/2, d] where d = min(CAP, BASE * 2^(k-1)). */
void vs_backoff(const char *method, int k)
{
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    long d = RETRY_BASE_MS << (k - 1);
    if (d > RETRY_CAP_MS)
        d = RETRY_CAP_MS;
    long ms = d / 2 + (long)(rand_r(&seed) % (unsigned)(d / 2 + 1));
    nx_info("vsphere: %s: %s; retry %d/%d in %ld ms", method, nx_error_msg(), k, RETRY_ATTEMPTS - 1,
            ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One request, repeated on transient failures when `retry`. */
static int call_retry(struct vs_conn *c, const char *method, const char *body,
                      struct nx_soap_resp *out, struct nx_soap_fault *fault, bool retry,
                      int *attempts, int *transient_out)
{
    int rc;
    int transient = NX_SOAP_PERMANENT;
    /* writes that must not run twice: libcurl may re-send a request on a
     * reused connection by itself, so they go on a fresh one */
    bool once = !strcmp(method, "CreateVM_Task") || !strcmp(method, "ReconfigVM_Task");
    for (int k = 1;; k++) {
        transient = once ? NX_SOAP_ONCE : NX_SOAP_PERMANENT;
        /* a Login whose answer was lost may have set the cookie: log in anew */
        if (k > 1 && !strcmp(method, "Login"))
            nx_soap_clear_cookies(c->soap);
        rc = nx_soap_call_ex(c->soap, method, body, out, fault, &transient);
        if (attempts)
            *attempts = k;
        if (rc >= 0 || !retry || !transient || k >= RETRY_ATTEMPTS)
            break;
        vs_backoff(method, k);
    }
    if (transient_out)
        *transient_out = rc < 0 ? transient : NX_SOAP_PERMANENT;
    return rc;
}

static int do_login(struct vs_conn *c)
{
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    if (!c->user || !c->password)
        return nx_error_set(NX_EX_NOPERM,
                            "%s: no user or password (use --credentials FILE or "
                            "NETEXT_DEPLOY_USER/NETEXT_DEPLOY_PASSWORD)",
                            c->url);
    nx_soap_begin(&sb, "Login", "SessionManager", c->session_manager);
    nx_soap_add(&sb, "userName", c->user);
    nx_soap_add(&sb, "password", c->password);
    nx_soap_end(&sb, "Login");
    int rc = call_retry(c, "Login", sb.buf, &r, &f, true, NULL, NULL);
    strbuf_release_secret(&sb);
    if (rc == 1) {
        if (!strcmp(f.type, "InvalidLogin"))
            nx_error_set(NX_EX_NOPERM, "%s: login refused for user '%s' (InvalidLogin)", c->url,
                         c->user);
        else
            nx_error_set(map_fault_code(&f), "%s: Login: %s: %s", c->url, f.type, f.message);
        nx_soap_fault_release(&f);
        return -1;
    }
    if (rc < 0)
        return -1;
    nx_soap_resp_release(&r);
    pthread_mutex_lock(&c->lock);
    c->logged_in = true;
    c->n_logins++;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

unsigned long vs_logins(struct vs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    unsigned long n = c->n_logins;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int vs_relogin(struct vs_conn *c, unsigned long seen)
{
    int rc = 0;
    pthread_mutex_lock(&c->session_lock);
    if (vs_logins(c) == seen) {
        /* nobody renewed the session since this caller's request began */
        pthread_mutex_lock(&c->lock);
        c->logged_in = false;
        pthread_mutex_unlock(&c->lock);
        nx_soap_clear_cookies(c->soap);
        vs_tasks_session_lost(c);
        nx_info("vsphere: %s: session lost; logging in again", c->url);
        rc = do_login(c);
    }
    pthread_mutex_unlock(&c->session_lock);
    return rc;
}

int vs_call_ex(struct vs_conn *c, const char *method, const char *body, struct nx_soap_resp *out,
               struct nx_soap_fault *fault, bool retry, int *attempts, int *transient)
{
    struct nx_soap_fault tmp = {0};
    struct nx_soap_fault *f = fault ? fault : &tmp;
    retry = retry || vs_method_is_read(method);
    pthread_mutex_lock(&c->lock);
    unsigned long seen = c->n_logins;
    /* not c->logged_in: that is false while another thread logs in again,
     * and a call sent then (without a cookie) must retry, not fail */
    bool logged_in = c->n_logins > 0;
    pthread_mutex_unlock(&c->lock);
    int rc = call_retry(c, method, body, out, f, retry, attempts, transient);
    /* log in again once per call: a long run may outlive several sessions */
    if (rc == 1 && !strcmp(f->type, "NotAuthenticated") && logged_in) {
        nx_soap_fault_release(f);
        if (vs_relogin(c, seen) < 0) {
            nx_soap_fault_release(&tmp);
            return -1;
        }
        int more = 0;
        rc = call_retry(c, method, body, out, f, retry, &more, transient);
        if (attempts)
            *attempts += more;
    }
    if (rc == 1) {
        /* keep the message nx_soap_parse set, with the right exit code */
        char *msg = nx_strdup(nx_error_msg());
        nx_error_set(map_fault_code(f), "%s: %s", c->url, msg);
        free(msg);
    }
    nx_soap_fault_release(&tmp);
    return rc;
}

int vs_call(struct vs_conn *c, const char *method, const char *body, struct nx_soap_resp *out,
            struct nx_soap_fault *fault)
{
    return vs_call_ex(c, method, body, out, fault, false, NULL, NULL);
}

static int vs_settle(struct nx_conn *base, struct nx_deferred_failure **out, size_t *n);

static void vs_close(struct nx_conn *base)
{
    struct vs_conn *c = (struct vs_conn *)base;
    if (!c)
        return;
    if (c->logged_in) {
        /* what settle did not confirm (the core always calls it; others may not) */
        struct nx_deferred_failure *f = NULL;
        size_t nf = 0;
        vs_settle(&c->base, &f, &nf); /* logs what failed */
        nx_deferred_free(f, nf);
        struct strbuf sb = STRBUF_INIT;
        struct nx_soap_resp r = {0};
        nx_soap_begin(&sb, "Logout", "SessionManager", c->session_manager);
        nx_soap_end(&sb, "Logout");
        if (call_retry(c, "Logout", sb.buf, &r, NULL, false, NULL, NULL) != 0)
            nx_debug("vsphere: Logout: %s", nx_error_msg());
        nx_soap_resp_release(&r);
        strbuf_release(&sb);
    }
    c->base.n_requests = nx_soap_requests(c->soap);
    nx_debug("vsphere: %s: %lu requests", c->url, c->base.n_requests);
    if (c->n_image_checks)
        nx_debug("vsphere: %s: appliance image: %lu datastore checks, %lu uploads (%llu bytes in "
                 "%.2f s)",
                 c->url, c->n_image_checks, c->n_uploads, c->upload_bytes, c->upload_seconds);
    nx_http_free(c->files);
    for (size_t i = 0; i < c->n_staged; i++) {
        free(c->staged[i].ds);
        free(c->staged[i].image);
        free(c->staged[i].error);
    }
    free(c->staged);
    vs_tasks_release(c);
    vs_inventory_release(&c->inv);
    for (size_t i = 0; i < c->n_hosts; i++) {
        free(c->hosts[i].plan_host);
        for (size_t j = 0; j < c->hosts[i].n_prod; j++)
            free(c->hosts[i].prod_nets[j]);
        free(c->hosts[i].prod_nets);
        free(c->hosts[i].prod_vlans);
    }
    free(c->hosts);
    for (size_t i = 0; i < c->n_made; i++)
        free(c->made_keys[i]);
    free(c->made_keys);
    nx_map_release(&c->made);
    nx_soap_free(c->soap);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->load_lock);
    pthread_mutex_destroy(&c->container_lock);
    pthread_mutex_destroy(&c->session_lock);
    pthread_mutex_destroy(&c->stage_lock);
    pthread_cond_destroy(&c->task_cond);
    free(c->url);
    free(c->user);
    nx_free_secret(c->password);
    free(c->root_folder);
    free(c->property_collector);
    free(c->view_manager);
    free(c->session_manager);
    free(c->task_manager);
    free(c->file_manager);
    free(c->api_version);
    free(c->base.uri);
    free(c);
}

static int vs_open(const char *uri, const struct nx_conn_opts *opts, struct nx_conn **out)
{
    struct nx_soap_resp r = {0};
    struct strbuf sb = STRBUF_INIT;
    char *url = uri_to_url(uri);
    *out = NULL;
    if (!url)
        return nx_error_set(NX_EX_CONFIG,
                            "%s: not a vSphere URI (vsphere://HOST[:PORT][/sdk]; credentials "
                            "come from --credentials, never from the URI)",
                            uri);
    if (nx_str_has_prefix(url, "http://"))
        nx_warn("%s: plain HTTP: the vSphere password and session travel unencrypted (labs "
                "only)",
                uri);
    struct vs_conn *c = nx_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->load_lock, NULL);
    pthread_mutex_init(&c->container_lock, NULL);
    pthread_mutex_init(&c->session_lock, NULL);
    pthread_mutex_init(&c->stage_lock, NULL);
    pthread_cond_init(&c->task_cond, NULL);
    c->url = url;
    c->base.uri = nx_strdup(uri);
    nx_map_init(&c->made);
    c->user = opts && opts->user ? nx_strdup(opts->user) : NULL;
    c->password = opts && opts->password ? nx_strdup(opts->password) : NULL;
    c->soap = nx_soap_new(url, "urn:vim25", opts);
    if (!c->soap)
        goto fail;

    nx_soap_begin(&sb, "RetrieveServiceContent", "ServiceInstance", "ServiceInstance");
    nx_soap_end(&sb, "RetrieveServiceContent");
    if (call_retry(c, "RetrieveServiceContent", sb.buf, &r, NULL, true, NULL, NULL) != 0) {
        nx_error_prefix("%s: ", uri);
        goto fail;
    }
    xmlNodePtr sc = nx_soap_child(r.body, "returnval");
    c->root_folder = nx_soap_child_text(sc, "rootFolder");
    c->property_collector = nx_soap_child_text(sc, "propertyCollector");
    c->view_manager = nx_soap_child_text(sc, "viewManager");
    c->session_manager = nx_soap_child_text(sc, "sessionManager");
    c->task_manager = nx_soap_child_text(sc, "taskManager");
    c->file_manager = nx_soap_child_text(sc, "fileManager");
    c->api_version = nx_soap_child_text(nx_soap_child(sc, "about"), "apiVersion");
    nx_soap_resp_release(&r);
    if (!c->root_folder || !c->property_collector || !c->view_manager || !c->session_manager ||
        !c->task_manager) {
        nx_error_set(NX_EX_PROTOCOL, "%s: RetrieveServiceContent: incomplete ServiceContent", uri);
        goto fail;
    }
    if (c->api_version) {
        char *action = nx_asprintf("urn:vim25/%s", c->api_version);
        nx_soap_set_action(c->soap, action);
        free(action);
    }
    if (do_login(c) < 0)
        goto fail;
    strbuf_release(&sb);
    *out = &c->base;
    return 0;
fail:
    strbuf_release(&sb);
    vs_close(&c->base);
    return -1;
}

/* ---- placement lookups ---------------------------------------------------- */

struct backing {
    const struct vs_obj *net; /* Network or DistributedVirtualPortgroup */
    const char *switch_uuid; /* DVS */
};

struct resolved {
    struct vs_obj *host, *dc, *cr, *ds;
    struct vs_obj *image_ds; /* spec->image: where it is kept */
    struct backing *nics; /* one per spec vNIC */
};

static const char *host_target(const struct nx_appliance_spec *spec)
{
    return spec->host->target ? spec->host->target : spec->host->name;
}

static bool is_type(const struct vs_obj *o, const char *t)
{
    return o && !strcmp(o->type, t);
}

static bool is_network(const struct vs_obj *o)
{
    return is_type(o, "Network") || is_type(o, "DistributedVirtualPortgroup") ||
           is_type(o, "OpaqueNetwork");
}

static bool has_ref(char *const *refs, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(refs[i], id))
            return true;
    return false;
}

static const char *dvs_name(const struct vs_conn *c, const struct vs_obj *pg)
{
    const struct vs_obj *d = vs_inv_get(c, pg->dvs);
    return d && d->name ? d->name : "?";
}

static const struct vs_pg *host_pg(const struct vs_obj *host, const char *name)
{
    for (size_t i = 0; host && name && i < host->n_pgs; i++)
        if (!strcmp(host->pgs[i].name, name))
            return &host->pgs[i];
    return NULL;
}

/* networks (standard and distributed) this host can use */
static bool host_has_net(const struct vs_obj *host, const struct vs_obj *net)
{
    return has_ref(host->refs, host->n_refs, net->id) ||
           (is_type(net, "Network") && host_pg(host, net->name)) ||
           (is_type(net, "DistributedVirtualPortgroup") &&
            has_ref(net->refs, net->n_refs, host->id));
}

static struct vs_obj *find_host(struct vs_conn *c, const char *name)
{
    struct vs_obj *found = NULL;
    for (size_t i = 0; i < c->inv.n; i++) {
        struct vs_obj *o = c->inv.objs[i];
        if (is_type(o, "HostSystem") && nx_str_eq(o->name, name)) {
            if (found) {
                nx_error_set(NX_EX_DATAERR, "ESXi host '%s' is ambiguous (%s, %s)", name, found->id,
                             o->id);
                return NULL;
            }
            found = o;
        }
    }
    if (!found) {
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < c->inv.n; i++)
            if (is_type(c->inv.objs[i], "HostSystem"))
                strbuf_addf(&sb, "%s%s", sb.len ? ", " : "",
                            c->inv.objs[i]->name ? c->inv.objs[i]->name : c->inv.objs[i]->id);
        nx_error_set(NX_EX_DATAERR, "ESXi host '%s' not found (hosts: %s)", name,
                     sb.len ? sb.buf : "none");
        strbuf_release(&sb);
    }
    return found;
}

static void describe_net(const struct vs_conn *c, const struct vs_obj *host, struct strbuf *sb,
                         const struct vs_obj *n)
{
    if (is_type(n, "DistributedVirtualPortgroup")) {
        strbuf_addf(sb, "'%s' (distributed, switch '%s'", n->name ? n->name : "", dvs_name(c, n));
        if (n->vlan >= 0)
            strbuf_addf(sb, ", VLAN %d", n->vlan);
        strbuf_addch(sb, ')');
    } else {
        const struct vs_pg *pg = host_pg(host, n->name);
        strbuf_addf(sb, "'%s' (standard", n->name ? n->name : "");
        if (pg)
            strbuf_addf(sb, ", switch '%s', VLAN %u", pg->vswitch ? pg->vswitch : "?", pg->vlan);
        strbuf_addch(sb, ')');
    }
}

static void list_host_nets(const struct vs_conn *c, const struct vs_obj *host, struct strbuf *sb)
{
    size_t n = 0;
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *o = c->inv.objs[i];
        if (!is_network(o) || !host_has_net(host, o))
            continue;
        if (n++)
            strbuf_addstr(sb, ", ");
        describe_net(c, host, sb, o);
    }
    if (!n)
        strbuf_addstr(sb, "none");
}

static int resolve_vnic(struct vs_conn *c, const struct vs_obj *host,
                        const struct nx_appliance_spec *spec, const struct nx_vnic_spec *v,
                        struct backing *out)
{
    const struct vs_obj *cand[16];
    size_t n = 0;
    struct strbuf sb = STRBUF_INIT;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *o = c->inv.objs[i];
        if (!is_network(o) || !host_has_net(host, o))
            continue;
        bool match;
        if (v->kind == NX_VNIC_PRODUCTION) {
            match = nx_str_eq(o->name, v->network);
        } else if (is_type(o, "DistributedVirtualPortgroup")) {
            match =
                o->vlan == (int)v->vlan && (!v->network || nx_str_eq(dvs_name(c, o), v->network));
        } else {
            const struct vs_pg *pg = host_pg(host, o->name);
            match =
                pg && pg->vlan == v->vlan && (!v->network || nx_str_eq(pg->vswitch, v->network));
        }
        if (match && n < NX_ARRAY_SIZE(cand))
            cand[n++] = o;
    }
    if (n == 1) {
        out->net = cand[0];
        if (is_type(cand[0], "DistributedVirtualPortgroup")) {
            const struct vs_obj *d = vs_inv_get(c, cand[0]->dvs);
            if (!d || !d->uuid) {
                nx_error_set(NX_EX_DATAERR,
                             "portgroup '%s': its distributed switch (%s) has no UUID in the "
                             "inventory",
                             cand[0]->name, cand[0]->dvs ? cand[0]->dvs : "none");
                return -1;
            }
            out->switch_uuid = d->uuid;
        }
        return 0;
    }
    if (n > 1) {
        for (size_t i = 0; i < n; i++) {
            if (i)
                strbuf_addstr(&sb, ", ");
            describe_net(c, host, &sb, cand[i]);
        }
        if (v->kind == NX_VNIC_PRODUCTION)
            nx_error_set(NX_EX_DATAERR,
                         "production network '%s' matches %zu networks on host '%s': %s",
                         v->network, n, host->name, sb.buf);
        else
            nx_error_set(NX_EX_DATAERR,
                         "VLAN %u ('%s') is carried by %zu portgroups on host '%s': %s (set "
                         "vlan-switch on the host to choose)",
                         v->vlan, v->label, n, host->name, sb.buf);
    } else {
        list_host_nets(c, host, &sb);
        if (v->kind == NX_VNIC_PRODUCTION)
            nx_error_set(NX_EX_DATAERR,
                         "production network '%s' not found on host '%s' (networks: %s)",
                         v->network, host->name, sb.buf);
        else
            nx_error_set(NX_EX_DATAERR,
                         "no portgroup carries VLAN %u ('%s') on host '%s'%s%s%s (networks: %s)",
                         v->vlan, v->label, host->name, v->network ? " on switch '" : "",
                         v->network ? v->network : "", v->network ? "'" : "", sb.buf);
    }
    (void)spec;
    strbuf_release(&sb);
    return -1;
}

static struct vs_obj *find_named(struct vs_conn *c, const char *type, const char *name,
                                 const char *parent)
{
    for (size_t i = 0; i < c->inv.n; i++) {
        struct vs_obj *o = c->inv.objs[i];
        if (is_type(o, type) && nx_str_eq(o->name, name) &&
            (!parent || nx_str_eq(o->parent, parent)))
            return o;
    }
    return NULL;
}

/* A datastore the appliance may live on: not VVol, not a datastore cluster
 * nor in one. NULL with the reason in *why. */
static bool datastore_ok(struct vs_conn *c, const struct vs_obj *ds, char **why)
{
    const struct vs_obj *p = vs_inv_get(c, ds->parent);
    if (ds->ds_type && !strcmp(ds->ds_type, "VVOL")) {
        *why = nx_asprintf("datastore '%s' is a VVol datastore (summary.type VVOL): not "
                           "supported for appliances; choose a VMFS or NFS datastore",
                           ds->name ? ds->name : ds->id);
        return false;
    }
    if (is_type(p, "StoragePod")) {
        *why = nx_asprintf("datastore '%s' belongs to the datastore cluster (StoragePod) '%s': "
                           "not supported; choose a datastore outside datastore clusters",
                           ds->name ? ds->name : ds->id, p->name ? p->name : p->id);
        return false;
    }
    return true;
}

/* c->lock held: host, compute resource, datacenter and datastore */
static int resolve_place_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                                struct resolved *r)
{
    r->host = find_host(c, host_target(spec));
    if (!r->host)
        return -1;
    r->cr = vs_inv_get(c, r->host->parent);
    if (!r->cr || !r->cr->root_pool)
        return nx_error_set(NX_EX_DATAERR, "host '%s': no compute resource with a root pool",
                            r->host->name);
    struct vs_obj *o = r->host;
    for (int depth = 0; o && !is_type(o, "Datacenter") && depth < 64; depth++)
        o = vs_inv_get(c, o->parent);
    r->dc = is_type(o, "Datacenter") ? o : NULL;
    if (!r->dc || !r->dc->vm_folder)
        return nx_error_set(NX_EX_DATAERR, "host '%s': its datacenter was not found",
                            r->host->name);

    const char *dsname = spec->placement.datastore;
    char *why = NULL;
    if (dsname) {
        if (find_named(c, "StoragePod", dsname, NULL))
            return nx_error_set(NX_EX_DATAERR,
                                "datastore '%s' is a datastore cluster (StoragePod): not "
                                "supported; name one datastore outside datastore clusters",
                                dsname);
        struct vs_obj *ds = NULL;
        for (size_t i = 0; i < r->host->n_dss; i++) {
            struct vs_obj *d = vs_inv_get(c, r->host->dss[i]);
            if (d && nx_str_eq(d->name, dsname))
                ds = d;
        }
        /* refuse what the name designates even where the host does not see it */
        struct vs_obj *any = ds ? ds : find_named(c, "Datastore", dsname, NULL);
        if (any && !datastore_ok(c, any, &why)) {
            nx_error_set(NX_EX_DATAERR, "%s", why);
            free(why);
            return -1;
        }
        if (!ds)
            return nx_error_set(NX_EX_DATAERR, "datastore '%s' not found on host '%s'", dsname,
                                r->host->name);
        r->ds = ds;
    } else {
        for (size_t i = 0; i < r->host->n_dss && !r->ds; i++) {
            struct vs_obj *d = vs_inv_get(c, r->host->dss[i]);
            if (d && datastore_ok(c, d, &why))
                r->ds = d;
            NX_FREE(why);
        }
        if (!r->ds)
            return nx_error_set(NX_EX_DATAERR,
                                "host '%s': no usable datastore (VVol and datastore clusters "
                                "are not supported); name one in the plan",
                                r->host->name);
    }
    return 0;
}

/* c->lock held: the datastore spec's image is kept on (r placed) */
static int image_datastore_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                                  const struct resolved *r, struct vs_obj **out)
{
    const char *name = spec->host->image_store;
    char *why = NULL;
    *out = NULL;
    if (!name) {
        *out = r->ds;
        return 0;
    }
    if (find_named(c, "StoragePod", name, NULL))
        return nx_error_set(NX_EX_DATAERR,
                            "image-store: datastore '%s' is a datastore cluster (StoragePod): "
                            "not supported; name one datastore outside datastore clusters",
                            name);
    struct vs_obj *ds = NULL;
    for (size_t i = 0; i < r->host->n_dss && !ds; i++) {
        struct vs_obj *d = vs_inv_get(c, r->host->dss[i]);
        if (d && nx_str_eq(d->name, name))
            ds = d;
    }
    struct vs_obj *any = ds ? ds : find_named(c, "Datastore", name, NULL);
    if (any && !datastore_ok(c, any, &why)) {
        nx_error_set(NX_EX_DATAERR, "image-store: %s", why);
        free(why);
        return -1;
    }
    if (!ds)
        return nx_error_set(NX_EX_DATAERR, "image-store: datastore '%s' not found on host '%s'",
                            name, r->host->name);
    *out = ds;
    return 0;
}

/* c->lock held */
static int resolve_locked(struct vs_conn *c, const struct nx_appliance_spec *spec,
                          struct resolved *r)
{
    if (resolve_place_locked(c, spec, r) < 0)
        return -1;
    if (spec->image && image_datastore_locked(c, spec, r, &r->image_ds) < 0)
        return -1;
    r->nics = nx_calloc(spec->n_vnics + 1, sizeof(*r->nics));
    for (size_t i = 0; i < spec->n_vnics; i++)
        if (resolve_vnic(c, r->host, spec, &spec->vnics[i], &r->nics[i]) < 0) {
            NX_FREE(r->nics);
            return -1;
        }
    return 0;
}

/* Where spec goes, from the inventory (read first if needed). The objects
 * r points to stay valid until the connection closes. */
static int resolve(struct vs_conn *c, const struct nx_appliance_spec *spec, struct resolved *r)
{
    memset(r, 0, sizeof(*r));
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    int rc = resolve_locked(c, spec, r);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* c->lock held */
static void remember_host(struct vs_conn *c, const struct nx_appliance_spec *spec)
{
    struct vs_hostinfo *h = NULL;
    for (size_t i = 0; i < c->n_hosts && !h; i++)
        if (!strcmp(c->hosts[i].plan_host, spec->host->name))
            h = &c->hosts[i];
    if (!h) {
        NX_GROW(c->hosts, c->alloc_hosts, c->n_hosts + 1);
        h = &c->hosts[c->n_hosts++];
        memset(h, 0, sizeof(*h));
        h->plan_host = nx_strdup(spec->host->name);
    }
    for (size_t i = 0; i < spec->n_vnics; i++) {
        const struct nx_vnic_spec *v = &spec->vnics[i];
        bool have = false;
        if (v->kind != NX_VNIC_PRODUCTION || !v->network)
            continue;
        for (size_t j = 0; j < h->n_prod && !have; j++)
            have = !strcmp(h->prod_nets[j], v->network);
        if (have)
            continue;
        h->prod_nets = nx_realloc(h->prod_nets, (h->n_prod + 1) * sizeof(*h->prod_nets));
        h->prod_vlans = nx_realloc(h->prod_vlans, (h->n_prod + 1) * sizeof(*h->prod_vlans));
        h->prod_nets[h->n_prod] = nx_strdup(v->network);
        h->prod_vlans[h->n_prod] = v->vlan;
        h->n_prod++;
    }
}

static int vs_check_placement(struct nx_conn *base, const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = (struct vs_conn *)base;
    struct resolved r;
    pthread_mutex_lock(&c->lock);
    remember_host(c, spec);
    pthread_mutex_unlock(&c->lock);
    int rc = resolve(c, spec, &r);
    free(r.nics);
    return rc;
}

/* ---- observed appliances --------------------------------------------------- */

static const struct vs_hostinfo *hostinfo(const struct vs_conn *c, const char *plan_host)
{
    for (size_t i = 0; i < c->n_hosts; i++)
        if (nx_str_eq(c->hosts[i].plan_host, plan_host))
            return &c->hosts[i];
    return NULL;
}

/* Describe an observed vNIC in the terms of nx_vnic_spec: the production
 * portgroup by name with the host's production VLAN; any other by its switch
 * and the portgroup's VLAN. */
static void describe_vmnic(const struct vs_conn *c, const struct vs_obj *vm,
                           const struct vs_hostinfo *hi, const struct vs_vmnic *n,
                           struct nx_vnic_obs *out)
{
    const char *pgname = NULL, *sw = NULL;
    int vlan = 0;
    if (n->portgroup_key) {
        for (size_t i = 0; i < c->inv.n; i++) {
            const struct vs_obj *o = c->inv.objs[i];
            if (is_type(o, "DistributedVirtualPortgroup") &&
                nx_str_eq(o->pg_key, n->portgroup_key)) {
                pgname = o->name;
                sw = dvs_name(c, o);
                vlan = o->vlan;
                break;
            }
        }
    } else {
        const struct vs_obj *net = vs_inv_get(c, n->network);
        pgname = net && net->name ? net->name : n->device_name;
        const struct vs_pg *pg = host_pg(vs_inv_get(c, vm->vm_host), pgname);
        if (pg) {
            sw = pg->vswitch;
            vlan = (int)pg->vlan;
        }
    }
    memcpy(out->mac, n->mac, 6);
    out->id = nx_strdup(n->key ? n->key : "");
    for (size_t i = 0; hi && pgname && i < hi->n_prod; i++)
        if (!strcmp(pgname, hi->prod_nets[i])) {
            out->network = nx_strdup(pgname);
            out->vlan = hi->prod_vlans[i];
            return;
        }
    out->network = nx_strdup(sw ? sw : pgname ? pgname : "?");
    out->vlan = vlan > 0 && vlan <= 4094 ? (unsigned)vlan : 0;
}

static int vs_list_owned(struct nx_conn *base, struct nx_obs_list *out)
{
    struct vs_conn *c = (struct vs_conn *)base;
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *vm = c->inv.objs[i];
        struct nx_marker m = {0};
        if (!is_type(vm, "VirtualMachine") || !vm->marker || nx_marker_decode(vm->marker, &m) < 0)
            continue;
        struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
        o->id = nx_strdup(vm->id);
        o->name = nx_strdup(vm->name ? vm->name : vm->id);
        /* the marker's image counts only while the drive holds it (changed
         * by hand: a set-image puts it back) */
        if (m.image[0] && !(vm->cd.file && strstr(vm->cd.file, m.image)))
            m.image[0] = '\0';
        o->marker = m;
        o->powered_on = vm->powered_on;
        const struct vs_hostinfo *hi = hostinfo(c, m.host);
        for (size_t j = 0; j < vm->n_nics; j++)
            describe_vmnic(c, vm, hi, &vm->nics[j], nx_obs_add_vnic(o));
        nx_obs_list_add(out, o);
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* The portgroup a vNIC is connected to, by name; NULL if unknown. */
static const char *nic_pg_name(const struct vs_conn *c, const struct vs_vmnic *nic)
{
    if (nic->portgroup_key) {
        for (size_t k = 0; k < c->inv.n; k++)
            if (is_type(c->inv.objs[k], "DistributedVirtualPortgroup") &&
                nx_str_eq(c->inv.objs[k]->pg_key, nic->portgroup_key))
                return c->inv.objs[k]->name;
        return NULL;
    }
    const struct vs_obj *net = vs_inv_get(c, nic->network);
    return net && net->name ? net->name : nic->device_name;
}

/* The networks (portgroup names) used by the VMs on `host` that are not
 * appliances, with how many VMs use each: the tenant side's
 * production-network detection. */
static int vs_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                            size_t *n_out)
{
    struct vs_conn *c = (struct vs_conn *)base;
    struct nx_net_usage *u = NULL;
    size_t n = 0;
    *out = NULL;
    *n_out = 0;
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    const struct vs_obj *h = find_host(c, host);
    if (!h) {
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
    for (size_t i = 0; i < c->inv.n; i++) {
        const struct vs_obj *vm = c->inv.objs[i];
        struct nx_marker m = {0};
        if (!is_type(vm, "VirtualMachine") || !nx_str_eq(vm->vm_host, h->id))
            continue;
        if (vm->marker && nx_marker_decode(vm->marker, &m) == 0) {
            nx_marker_release(&m);
            continue; /* an appliance */
        }
        for (size_t j = 0; j < vm->n_nics; j++) {
            const char *name = nic_pg_name(c, &vm->nics[j]);
            bool dup = !name;
            for (size_t k = 0; k < j && !dup; k++) /* each VM counts once per network */
                dup = nx_str_eq(nic_pg_name(c, &vm->nics[k]), name);
            if (dup)
                continue;
            size_t k = 0;
            while (k < n && strcmp(u[k].network, name) != 0)
                k++;
            if (k == n) {
                u = nx_realloc(u, (n + 1) * sizeof(*u));
                u[n].network = nx_strdup(name);
                u[n].vms = 0;
                n++;
            }
            u[k].vms++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    *out = u;
    *n_out = n;
    return 0;
}

/* ---- changes --------------------------------------------------------------- */

/* The folder or pool `name` under `parent`, created when missing; a
 * DuplicateName fault (someone created it meanwhile) counts as success. */
static int ensure_container_locked(struct vs_conn *c, const char *kind, const char *parent_type,
                                   const char *parent, const char *name, char **out);

/* Threads that need the same folder wait for the first one to create it. */
static int ensure_container(struct vs_conn *c, const char *kind, const char *parent_type,
                            const char *parent, const char *name, char **out)
{
    pthread_mutex_lock(&c->lock);
    struct vs_obj *o = find_named(c, kind, name, parent);
    *out = o ? nx_strdup(o->id) : NULL;
    pthread_mutex_unlock(&c->lock);
    if (*out)
        return 0;
    pthread_mutex_lock(&c->container_lock);
    int rc = ensure_container_locked(c, kind, parent_type, parent, name, out);
    pthread_mutex_unlock(&c->container_lock);
    return rc;
}

/* c->container_lock held */
static int ensure_container_locked(struct vs_conn *c, const char *kind, const char *parent_type,
                                   const char *parent, const char *name, char **out)
{
    pthread_mutex_lock(&c->lock);
    struct vs_obj *o = find_named(c, kind, name, parent);
    *out = o ? nx_strdup(o->id) : NULL;
    pthread_mutex_unlock(&c->lock);
    if (*out)
        return 0;
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    const char *method = !strcmp(kind, "Folder") ? "CreateFolder" : "CreateResourcePool";
    nx_soap_begin(&sb, method, parent_type, parent);
    nx_soap_add(&sb, "name", name);
    if (strcmp(kind, "Folder") != 0) {
        static const char alloc[] = "<reservation>0</reservation>"
                                    "<expandableReservation>true</expandableReservation>"
                                    "<limit>-1</limit><shares><shares>0</shares>"
                                    "<level>normal</level></shares>";
        strbuf_addf(&sb,
                    "<spec><cpuAllocation>%s</cpuAllocation><memoryAllocation>%s"
                    "</memoryAllocation></spec>",
                    alloc, alloc);
    }
    nx_soap_end(&sb, method);
    int rc = vs_call_ex(c, method, sb.buf, &r, &f, true, NULL, NULL);
    strbuf_release(&sb);
    if (rc == 1 && !strcmp(f.type, "DuplicateName") && f.object) {
        nx_info("vsphere: %s '%s' was created meanwhile; using it", kind, name);
        *out = nx_strdup(f.object);
        rc = 0;
    } else if (rc == 0) {
        *out = nx_soap_child_text(r.body, "returnval");
        if (!*out)
            rc = nx_error_set(NX_EX_PROTOCOL, "%s: no reference in the answer", method);
        else
            nx_info("vsphere: created %s '%s'",
                    !strcmp(kind, "Folder") ? "folder" : "resource pool", name);
    } else {
        nx_error_prefix("creating %s '%s': ", !strcmp(kind, "Folder") ? "folder" : "resource pool",
                        name);
        rc = -1;
    }
    nx_soap_resp_release(&r);
    nx_soap_fault_release(&f);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        struct vs_obj *n = vs_inv_add(&c->inv, kind, *out);
        free(n->name);
        n->name = nx_strdup(name);
        free(n->parent);
        n->parent = nx_strdup(parent);
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

static void add_option(struct strbuf *sb, const char *key, const char *value)
{
    strbuf_addstr(sb, "<extraConfig>");
    nx_soap_add(sb, "key", key);
    strbuf_addstr(sb, "<value xsi:type=\"xsd:string\">");
    strbuf_add_xml_escaped(sb, value);
    strbuf_addstr(sb, "</value></extraConfig>");
}

/* The marker of spec with `image` (the id of the image the VM's drive holds
 * after this change; "" none), not necessarily spec's: a payload change does
 * not change the drive. */
static char *marker_text(const struct nx_appliance_spec *spec, const char *image)
{
    struct nx_marker m = {0};
    nx_marker_from_spec(&m, spec);
    nx_marker_set_image(&m, image);
    char *marker = nx_marker_encode(&m);
    nx_marker_release(&m);
    return marker;
}

static void add_payload_options(struct strbuf *sb, const struct nx_appliance_spec *spec,
                                const char *image)
{
    struct strbuf b64 = STRBUF_INIT;
    char *marker = marker_text(spec, image);
    strbuf_add_base64(&b64, spec->payload ? spec->payload : "", spec->payload_len);
    add_option(sb, VS_MARKER_KEY, marker);
    add_option(sb, VS_PAYLOAD_KEY, b64.buf);
    add_option(sb, VS_ENCODING_KEY, "base64");
    strbuf_release(&b64);
    free(marker);
}

static void add_nic(struct strbuf *sb, int key, const struct nx_vnic_spec *v,
                    const struct backing *b)
{
    char mac[18];
    nx_format_mac(v->mac, mac);
    strbuf_addstr(sb, "<deviceChange><operation>add</operation>"
                      "<device xsi:type=\"VirtualVmxnet3\">");
    strbuf_addf(sb, "<key>%d</key><deviceInfo>", key);
    nx_soap_add(sb, "label", v->label);
    nx_soap_addf(sb, "summary", "%s", v->kind == NX_VNIC_PRODUCTION ? "production" : "tenant VLAN");
    strbuf_addstr(sb, "</deviceInfo>");
    if (b->switch_uuid) {
        strbuf_addstr(sb,
                      "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\">"
                      "<port>");
        nx_soap_add(sb, "switchUuid", b->switch_uuid);
        nx_soap_add(sb, "portgroupKey", b->net->pg_key);
        strbuf_addstr(sb, "</port></backing>");
    } else {
        strbuf_addstr(sb, "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">");
        nx_soap_add(sb, "deviceName", b->net->name);
        nx_soap_add_moref(sb, "network", b->net->type, b->net->id);
        strbuf_addstr(sb, "</backing>");
    }
    strbuf_addstr(sb, "<connectable><startConnected>true</startConnected>"
                      "<allowGuestControl>true</allowGuestControl><connected>false</connected>"
                      "</connectable>");
    strbuf_addstr(sb, "<addressType>manual</addressType>");
    nx_soap_add(sb, "macAddress", mac);
    strbuf_addstr(sb, "</device></deviceChange>");
}

/* Run a task-returning method and wait for it (or defer).
 * defer: the VM id the task acts on, to confirm it in vs_settle(); NULL: wait
 * now. retry: repeat the request on a transient failure; done_fault: the
 * fault that, on a repeated request, means the first one did it (the answer
 * was lost): success. */
static int run_task_ex(struct vs_conn *c, const char *method, const char *body, const char *what,
                       const char *defer, char **result, bool retry, const char *done_fault)
{
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    int attempts = 0;
    if (result)
        *result = NULL;
    int crc = vs_call_ex(c, method, body, &r, &f, retry, &attempts, NULL);
    /* also on the first attempt: libcurl itself may have sent it twice */
    if (crc == 1 && done_fault && !strcmp(f.type, done_fault)) {
        nx_info("vsphere: %s: %s: already done (a lost answer, or someone else)", what, f.type);
        nx_soap_fault_release(&f);
        nx_error_clear();
        return 0;
    }
    nx_soap_fault_release(&f);
    if (crc != 0) {
        nx_error_prefix("%s: ", what);
        return -1;
    }
    char *task = nx_soap_child_text(r.body, "returnval");
    nx_soap_resp_release(&r);
    if (!task)
        return nx_error_set(NX_EX_PROTOCOL, "%s: %s: no task in the answer", what, method);
    int rc = 0;
    if (defer)
        vs_task_defer(c, task, what, defer);
    else
        rc = vs_task_wait(c, task, what, result);
    free(task);
    return rc;
}

static int run_task(struct vs_conn *c, const char *method, const char *body, const char *what,
                    const char *defer, char **result)
{
    return run_task_ex(c, method, body, what, defer, result, false, NULL);
}

/* ---- the appliance image --------------------------------------------------- */

/* "[DS] netext-deploy/<image name>" */
static char *image_file(const struct vs_obj *ds, const struct nx_image *img)
{
    return nx_asprintf("[%s] " VS_IMAGE_DIR "/%s", ds->name ? ds->name : "", img->name);
}

static void url_escape(struct strbuf *sb, const char *s, bool keep_slash)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
            (keep_slash && ch == '/'))
            strbuf_addch(sb, (char)ch);
        else
            strbuf_addf(sb, "%%%02X", ch);
    }
}

/* c->lock held: the datacenter's inventory path ("DC0", "Folder/DC1") */
static char *dc_path_locked(const struct vs_conn *c, const struct vs_obj *dc)
{
    const char *names[64];
    size_t n = 0;
    for (const struct vs_obj *o = dc; o && n < NX_ARRAY_SIZE(names);) {
        names[n++] = o->name ? o->name : "";
        const struct vs_obj *p = vs_inv_get(c, o->parent);
        if (!is_type(p, "Folder") || nx_str_eq(p->id, c->root_folder))
            break;
        o = p;
    }
    struct strbuf sb = STRBUF_INIT;
    while (n--)
        strbuf_addf(&sb, "%s%s", sb.len ? "/" : "", names[n]);
    return strbuf_detach(&sb, NULL);
}

/* /folder/netext-deploy/NAME?dcPath=DC&dsName=DS */
static char *image_url_path(const char *dc_path, const char *ds_name, const struct nx_image *img)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, "/folder/" VS_IMAGE_DIR "/");
    url_escape(&sb, img->name, false);
    strbuf_addstr(&sb, "?dcPath=");
    url_escape(&sb, dc_path, false);
    strbuf_addstr(&sb, "&dsName=");
    url_escape(&sb, ds_name, false);
    return strbuf_detach(&sb, NULL);
}

/* c->lock held: what staging img on ds gave earlier in this run */
static const struct vs_staged *find_staged(const struct vs_conn *c, const char *ds,
                                           const struct nx_image *img)
{
    for (size_t i = 0; i < c->n_staged; i++)
        if (!strcmp(c->staged[i].ds, ds) && !strcmp(c->staged[i].image, img->name))
            return &c->staged[i];
    return NULL;
}

/* c->lock held: the answer of an earlier staging (0, or -1 with its error) */
static int staged_result(const struct vs_staged *st)
{
    if (!st->error)
        return 0;
    return nx_error_set(st->code, "%s (failed earlier in this run; not tried again)", st->error);
}

/* [DS] netext-deploy, made when missing (an existing one is fine) */
static int make_image_dir(struct vs_conn *c, const char *ds_name, const char *dc)
{
    if (!c->file_manager)
        return 0; /* the PUT then has to make it */
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    nx_soap_begin(&sb, "MakeDirectory", "FileManager", c->file_manager);
    nx_soap_addf(&sb, "name", "[%s] " VS_IMAGE_DIR, ds_name);
    nx_soap_add_moref(&sb, "datacenter", "Datacenter", dc);
    nx_soap_add(&sb, "createParentDirectories", "true");
    nx_soap_end(&sb, "MakeDirectory");
    /* making a directory again does no harm: repeated on transient failures */
    int rc = vs_call_ex(c, "MakeDirectory", sb.buf, &r, &f, true, NULL, NULL);
    if (rc == 1 && !strcmp(f.type, "FileAlreadyExists")) {
        nx_error_clear();
        rc = 0;
    }
    if (rc != 0) {
        nx_error_prefix("making [%s] " VS_IMAGE_DIR ": ", ds_name);
        rc = -1;
    }
    nx_soap_resp_release(&r);
    nx_soap_fault_release(&f);
    strbuf_release(&sb);
    return rc;
}

/* A HEAD or PUT through c->files, repeated on transient failures (both are
 * idempotent: a PUT sends the same bytes again). */
static int files_request(struct vs_conn *c, const char *method, const char *path,
                         const struct nx_image *img, int fd, struct nx_http_response *resp,
                         long long *length)
{
    for (int k = 1;; k++) {
        int rc =
            !strcmp(method, "HEAD")
                ? nx_http_head(c->files, path, resp, length)
                : nx_http_put_file(c->files, path, "application/octet-stream", fd, img->size, resp);
        bool again = rc < 0 ? nx_http_transient(c->files)
                            : resp->status == 502 || resp->status == 503 || resp->status == 504;
        if (!again || k >= RETRY_ATTEMPTS)
            return rc;
        if (rc == 0)
            nx_error_set(NX_EX_UNAVAILABLE, "%s %s: HTTP %ld", method, path, resp->status);
        vs_backoff(method, k);
    }
}

/* c->stage_lock held: make img present on the datastore (one HEAD; when
 * missing or of another size, MakeDirectory and one PUT) */
static int stage_on(struct vs_conn *c, const struct nx_image *img, const char *ds_name,
                    const char *dc, const char *dc_path)
{
    int ret = -1, fd = -1;
    struct nx_http_response resp;
    long long len = -1;
    char *path = image_url_path(dc_path, ds_name, img);
    nx_http_response_init(&resp);
    if (!c->files && !(c->files = nx_soap_http_clone(c->soap)))
        goto cleanup;
    pthread_mutex_lock(&c->lock);
    c->n_image_checks++;
    pthread_mutex_unlock(&c->lock);
    if (files_request(c, "HEAD", path, img, -1, &resp, &len) < 0)
        goto cleanup;
    if (resp.status == 200 && len >= 0 && (unsigned long long)len == img->size) {
        nx_debug("vsphere: [%s] " VS_IMAGE_DIR "/%s is there (%lld bytes)", ds_name, img->name,
                 len);
        ret = 0;
        goto cleanup;
    }
    if (resp.status == 401 || resp.status == 403) {
        nx_error_set(NX_EX_NOPERM, "HEAD %s: HTTP %ld (datastore file access refused)", path,
                     resp.status);
        goto cleanup;
    }
    if (resp.status == 200)
        nx_info("vsphere: [%s] " VS_IMAGE_DIR "/%s has %lld bytes, the image %llu: uploading it "
                "again",
                ds_name, img->name, len, (unsigned long long)img->size);
    else if (resp.status != 404)
        nx_info("vsphere: HEAD %s: HTTP %ld; uploading the image", path, resp.status);
    if (make_image_dir(c, ds_name, dc) < 0)
        goto cleanup;
    fd = open(img->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nx_error_set(NX_EX_NOINPUT, "%s: %s", img->file, strerror(errno));
        goto cleanup;
    }
    nx_info("vsphere: uploading %s to [%s] " VS_IMAGE_DIR "/ (%llu bytes)", img->name, ds_name,
            (unsigned long long)img->size);
    double t0 = nx_monotonic_s();
    if (files_request(c, "PUT", path, img, fd, &resp, NULL) < 0)
        goto cleanup;
    double dt = nx_monotonic_s() - t0;
    if (resp.status != 200 && resp.status != 201 && resp.status != 204) {
        nx_error_set(resp.status == 401 || resp.status == 403 ? NX_EX_NOPERM : NX_EX_UNAVAILABLE,
                     "PUT %s: HTTP %ld%s%.200s", path, resp.status, resp.body.len ? ": " : "",
                     resp.body.len ? resp.body.buf : "");
        goto cleanup;
    }
    pthread_mutex_lock(&c->lock);
    c->n_uploads++;
    c->upload_bytes += img->size;
    c->upload_seconds += dt;
    pthread_mutex_unlock(&c->lock);
    nx_info("vsphere: uploaded %s to [%s] (%llu bytes in %.2f s)", img->name, ds_name,
            (unsigned long long)img->size, dt);
    ret = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    nx_http_response_release(&resp);
    free(path);
    return ret;
}

static int vs_stage_image(struct nx_conn *base, const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = (struct vs_conn *)base;
    const struct nx_image *img = spec->image;
    struct resolved r;
    struct vs_obj *ds = NULL;
    char *ds_id = NULL, *ds_name = NULL, *dc = NULL, *dc_path = NULL;
    int ret = -1;
    if (!img)
        return 0;
    memset(&r, 0, sizeof(r));
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    if (resolve_place_locked(c, spec, &r) < 0 || image_datastore_locked(c, spec, &r, &ds) < 0) {
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
    const struct vs_staged *st = find_staged(c, ds->id, img);
    if (st) {
        ret = staged_result(st);
        pthread_mutex_unlock(&c->lock);
        return ret;
    }
    ds_id = nx_strdup(ds->id);
    ds_name = nx_strdup(ds->name ? ds->name : "");
    dc = nx_strdup(r.dc->id);
    dc_path = dc_path_locked(c, r.dc);
    pthread_mutex_unlock(&c->lock);

    /* one thread checks (and uploads); the others wait for its answer */
    pthread_mutex_lock(&c->stage_lock);
    pthread_mutex_lock(&c->lock);
    st = find_staged(c, ds_id, img);
    if (st)
        ret = staged_result(st);
    pthread_mutex_unlock(&c->lock);
    if (!st) {
        nx_error_clear();
        ret = stage_on(c, img, ds_name, dc, dc_path);
        pthread_mutex_lock(&c->lock);
        NX_GROW(c->staged, c->alloc_staged, c->n_staged + 1);
        struct vs_staged *n = &c->staged[c->n_staged++];
        n->ds = nx_strdup(ds_id);
        n->image = nx_strdup(img->name);
        n->error = ret < 0 ? nx_strdup(nx_error_msg()) : NULL;
        n->code = ret < 0 ? nx_error_code() : 0;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&c->stage_lock);
    free(ds_id);
    free(ds_name);
    free(dc);
    free(dc_path);
    return ret;
}

/* A VirtualCdrom holding img (op "add" or "edit"), connected at power-on. */
static void add_cdrom(struct strbuf *sb, const char *op, const char *key, const char *controller,
                      int unit, bool connected, const struct vs_obj *ds, const struct nx_image *img)
{
    char *file = image_file(ds, img);
    strbuf_addstr(sb, "<deviceChange>");
    nx_soap_add(sb, "operation", op);
    strbuf_addstr(sb, "<device xsi:type=\"VirtualCdrom\">");
    nx_soap_add(sb, "key", key);
    /* (vcsim fails an edit without deviceInfo) */
    strbuf_addstr(sb, "<deviceInfo><label>CD/DVD drive 1</label>");
    nx_soap_add(sb, "summary", file);
    strbuf_addstr(sb, "</deviceInfo><backing xsi:type=\"VirtualCdromIsoBackingInfo\">");
    nx_soap_add(sb, "fileName", file);
    nx_soap_add_moref(sb, "datastore", "Datastore", ds->id);
    strbuf_addstr(sb, "</backing>");
    strbuf_addf(sb,
                "<connectable><startConnected>true</startConnected>"
                "<allowGuestControl>false</allowGuestControl><connected>%s</connected>"
                "</connectable>",
                connected ? "true" : "false");
    nx_soap_add(sb, "controllerKey", controller);
    strbuf_addf(sb, "<unitNumber>%d</unitNumber>", unit);
    strbuf_addstr(sb, "</device></deviceChange>");
    free(file);
}

/* after extraConfig (the ConfigSpec's order): boot from the CD/DVD drive */
static void add_boot_options(struct strbuf *sb)
{
    strbuf_addstr(
        sb, "<bootOptions><bootOrder xsi:type=\"VirtualMachineBootOptionsBootableCdromDevice\"/>"
            "</bootOptions>");
}

/* The key every new VM's first IDE controller has (ESXi and vCenter create
 * IDE 0 and 1, keys 200 and 201, with every VM; vcsim does the same). */
#define VS_DEFAULT_IDE "200"

static int vs_set_image(struct nx_conn *base, const struct nx_appliance_obs *obs,
                        const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = (struct vs_conn *)base;
    struct resolved r;
    struct strbuf sb = STRBUF_INIT;
    char *what = nx_asprintf("putting image %s in %s", spec->image->name, obs->name);
    char *marker = NULL;
    int ret = -1;
    bool edit = false;
    memset(&r, 0, sizeof(r));
    if (vs_inventory_load(c) < 0)
        goto cleanup;
    pthread_mutex_lock(&c->lock);
    const struct vs_obj *vm = vs_inv_get(c, obs->id);
    if (resolve_place_locked(c, spec, &r) < 0 ||
        image_datastore_locked(c, spec, &r, &r.image_ds) < 0) {
        pthread_mutex_unlock(&c->lock);
        nx_error_prefix("%s: ", what);
        goto cleanup;
    }
    nx_soap_begin(&sb, "ReconfigVM_Task", "VirtualMachine", obs->id);
    strbuf_addstr(&sb, "<spec>");
    if (vm && vm->cd.key && vm->cd.controller) {
        edit = true;
        add_cdrom(&sb, "edit", vm->cd.key, vm->cd.controller, vm->cd.unit, obs->powered_on,
                  r.image_ds, spec->image);
    } else {
        /* a drive on the first free IDE unit */
        int slot = -1;
        for (int i = 0; i < 4 && slot < 0; i++)
            if (vm && vm->cd.ide[i / 2] && !(vm->cd.ide_used & (1u << i)))
                slot = i;
        if (vm && vm->cd.ide[0] && slot < 0) {
            pthread_mutex_unlock(&c->lock);
            nx_error_set(NX_EX_FAILED, "%s: no CD/DVD drive and no free IDE unit for one", what);
            goto cleanup;
        }
        add_cdrom(&sb, "add", "-10", slot >= 0 ? vm->cd.ide[slot / 2] : VS_DEFAULT_IDE,
                  slot >= 0 ? slot % 2 : 0, obs->powered_on, r.image_ds, spec->image);
    }
    pthread_mutex_unlock(&c->lock);
    marker = marker_text(spec, spec->image->id);
    add_option(&sb, VS_MARKER_KEY, marker);
    add_boot_options(&sb);
    strbuf_addstr(&sb, "</spec>");
    nx_soap_end(&sb, "ReconfigVM_Task");
    /* an edit is the same when repeated; an add is not (two drives): the next
     * run sees what happened */
    ret = run_task_ex(c, "ReconfigVM_Task", sb.buf, what, NULL, NULL, edit, NULL);
cleanup:
    free(marker);
    free(what);
    strbuf_release(&sb);
    return ret;
}

/* CreateVM_Task after a transient failure (see /work/notes/retries.md):
 * - the request certainly did not reach the server (no connection, 502-504):
 *   sent again after the backoff;
 * - it may have run (dropped connection, timeout, truncated answer): after the
 *   backoff, look for a VM carrying the marker; found: that is the result;
 *   not found: look again after the next backoff, never create a second time
 *   (vcsim, unlike vCenter, accepts a second VM of the same name); the tenant
 *   fails if it never shows up, and the next run finds or creates it.
 * Sets *task (to confirm later) or, for a found VM, *vm. */
static int create_vm(struct vs_conn *c, const char *body, const char *folder, const char *marker,
                     const char *what, char **vm, char **task)
{
    struct nx_soap_resp r = {0};
    bool maybe_done = false;
    *vm = *task = NULL;
    for (int k = 1;; k++) {
        int transient = NX_SOAP_PERMANENT;
        int rc = 0;
        if (!maybe_done) {
            rc = vs_call_ex(c, "CreateVM_Task", body, &r, NULL, false, NULL, &transient);
            if (rc == 0) {
                *task = nx_soap_child_text(r.body, "returnval");
                nx_soap_resp_release(&r);
                if (!*task)
                    return nx_error_set(NX_EX_PROTOCOL, "%s: CreateVM_Task: no task in the answer",
                                        what);
                return 0;
            }
            if (rc != -1 || transient == NX_SOAP_PERMANENT) {
                nx_error_prefix("%s: ", what);
                return -1;
            }
            maybe_done = transient == NX_SOAP_MAYBE_DONE;
        }
        if (k >= RETRY_ATTEMPTS) {
            if (maybe_done)
                nx_error_set(NX_EX_TEMPFAIL,
                             "%s: CreateVM_Task: the answer was lost and the VM has not appeared "
                             "(looked %d times); not created again: the next run finds it or "
                             "creates it",
                             what, k - 1);
            else
                nx_error_prefix("%s: ", what);
            return -1;
        }
        vs_backoff("CreateVM_Task", k);
        if (!maybe_done)
            continue;
        /* did the server create it before the answer was lost? */
        int found = vs_find_vm_by_marker(c, folder, marker, vm);
        if (found < 0) {
            nx_error_prefix("%s: looking for the VM after a lost answer: ", what);
            return -1;
        }
        if (found) {
            nx_info("vsphere: %s: the answer was lost, but the VM %s was created", what, *vm);
            return 0;
        }
    }
}

static void pending_free(struct vs_pending *p)
{
    if (!p)
        return;
    free(p->task);
    free(p->what);
    free(p->name);
    free(p->vm);
    free(p->error);
    free(p);
}

static void fill_obs(struct nx_appliance_obs *o, const char *id,
                     const struct nx_appliance_spec *spec)
{
    o->id = nx_strdup(id);
    o->name = nx_strdup(spec->name);
    nx_marker_from_spec(&o->marker, spec);
    for (size_t i = 0; i < spec->n_vnics; i++) {
        struct nx_vnic_obs *v = nx_obs_add_vnic(o);
        memcpy(v->mac, spec->vnics[i].mac, 6);
        v->vlan = spec->vnics[i].vlan;
        v->network = spec->vnics[i].network ? nx_strdup(spec->vnics[i].network) : NULL;
    }
}

static int vs_create(struct nx_conn *base, const struct nx_appliance_spec *spec,
                     struct nx_appliance_obs **out)
{
    struct vs_conn *c = (struct vs_conn *)base;
    struct resolved r;
    struct strbuf sb = STRBUF_INIT;
    char *folder = NULL, *pool = NULL, *vm = NULL, *what = NULL;
    int ret = -1;
    *out = NULL;
    if (resolve(c, spec, &r) < 0)
        goto cleanup;
    const char *fname = spec->placement.folder ? spec->placement.folder : NX_DEFAULT_FOLDER;
    const char *pname =
        spec->placement.resource_pool ? spec->placement.resource_pool : NX_DEFAULT_POOL;
    if (ensure_container(c, "Folder", "Folder", r.dc->vm_folder, fname, &folder) < 0 ||
        ensure_container(c, "ResourcePool", "ResourcePool", r.cr->root_pool, pname, &pool) < 0)
        goto cleanup;

    nx_soap_begin(&sb, "CreateVM_Task", "Folder", folder);
    strbuf_addstr(&sb, "<config>");
    nx_soap_add(&sb, "name", spec->name);
    nx_soap_add(&sb, "guestId", APPLIANCE_GUEST_ID);
    nx_soap_addf(&sb, "annotation", "netext-deploy appliance of tenant %s on host %s",
                 spec->tenant->name, spec->host->name);
    strbuf_addstr(&sb, "<files>");
    nx_soap_addf(&sb, "vmPathName", "[%s]", r.ds->name ? r.ds->name : "");
    strbuf_addstr(&sb, "</files>");
    strbuf_addf(&sb, "<numCPUs>1</numCPUs><memoryMB>%d</memoryMB>", APPLIANCE_MEMORY_MIB);
    for (size_t i = 0; i < spec->n_vnics; i++)
        add_nic(&sb, -100 - (int)i, &spec->vnics[i], &r.nics[i]);
    if (spec->image)
        add_cdrom(&sb, "add", "-10", VS_DEFAULT_IDE, 0, false, r.image_ds, spec->image);
    add_payload_options(&sb, spec, spec->image ? spec->image->id : "");
    if (spec->image)
        add_boot_options(&sb);
    strbuf_addstr(&sb, "</config>");
    nx_soap_add_moref(&sb, "pool", "ResourcePool", pool);
    nx_soap_add_moref(&sb, "host", "HostSystem", r.host->id);
    nx_soap_end(&sb, "CreateVM_Task");
    what = nx_asprintf("creating %s", spec->name);
    {
        char *task = NULL;
        char *marker = marker_text(spec, spec->image ? spec->image->id : "");
        int rc = create_vm(c, sb.buf, folder, marker, what, &vm, &task);
        free(marker);
        if (rc < 0)
            goto cleanup;
        if (task) {
            /* confirmed in vs_settle with every other create: the task id
             * stands for the appliance until then */
            struct vs_pending *p = nx_calloc(1, sizeof(*p));
            p->task = task;
            p->what = nx_strdup(what);
            p->name = nx_strdup(spec->name);
            pthread_mutex_lock(&c->lock);
            if (!c->pending_map.slots)
                nx_map_init(&c->pending_map);
            NX_GROW(c->pending, c->alloc_pending, c->n_pending + 1);
            c->pending[c->n_pending++] = p;
            nx_map_put(&c->pending_map, p->task, p);
            pthread_mutex_unlock(&c->lock);
            vm = nx_strdup(task);
        }
    }
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    fill_obs(o, vm, spec);
    *out = o;
    ret = 0;
cleanup:
    free(r.nics);
    free(folder);
    free(pool);
    free(vm);
    free(what);
    strbuf_release(&sb);
    return ret;
}

static const char *nic_device_type(const struct vs_conn *c, const char *vm, const char *key)
{
    const struct vs_obj *o = vs_inv_get(c, vm);
    for (size_t i = 0; o && key && i < o->n_nics; i++)
        if (nx_str_eq(o->nics[i].key, key))
            return o->nics[i].device_type;
    return "VirtualEthernetCard";
}

static int vs_update_vnics(struct nx_conn *base, const struct nx_appliance_obs *obs,
                           const struct nx_appliance_spec *spec,
                           const struct nx_vnic_spec *const *add, size_t n_add,
                           const struct nx_vnic_obs *const *remove, size_t n_remove)
{
    struct vs_conn *c = (struct vs_conn *)base;
    struct strbuf sb = STRBUF_INIT;
    struct backing *b = nx_calloc(n_add + 1, sizeof(*b));
    char *what = nx_asprintf("changing the vNICs of %s", obs->name);
    int ret = -1;
    const struct vs_obj *host = NULL;
    if (vs_inventory_load(c) < 0)
        goto cleanup;
    pthread_mutex_lock(&c->lock);
    if (n_add) {
        if (!(host = find_host(c, host_target(spec))))
            goto unlock;
        for (size_t i = 0; i < n_add; i++)
            if (resolve_vnic(c, host, spec, add[i], &b[i]) < 0)
                goto unlock;
    }
    nx_soap_begin(&sb, "ReconfigVM_Task", "VirtualMachine", obs->id);
    strbuf_addstr(&sb, "<spec>");
    for (size_t i = 0; i < n_remove; i++) {
        if (!remove[i]->id || !*remove[i]->id) {
            nx_error_set(NX_EX_SOFTWARE, "%s: vNIC without a device key", what);
            goto unlock;
        }
        strbuf_addstr(&sb, "<deviceChange><operation>remove</operation><device xsi:type=\"");
        strbuf_add_xml_escaped(&sb, nic_device_type(c, obs->id, remove[i]->id));
        strbuf_addstr(&sb, "\">");
        nx_soap_add(&sb, "key", remove[i]->id);
        strbuf_addstr(&sb, "</device></deviceChange>");
    }
    for (size_t i = 0; i < n_add; i++)
        add_nic(&sb, -100 - (int)i, add[i], &b[i]);
    strbuf_addstr(&sb, "</spec>");
    nx_soap_end(&sb, "ReconfigVM_Task");
    pthread_mutex_unlock(&c->lock);
    /* not repeated on a lost answer: a second add would add the vNICs twice;
     * the next run sees what happened and converges */
    ret = run_task(c, "ReconfigVM_Task", sb.buf, what, NULL, NULL);
    goto cleanup;
unlock:
    pthread_mutex_unlock(&c->lock);
cleanup:
    free(b);
    free(what);
    strbuf_release(&sb);
    return ret;
}

static int vs_set_payload(struct nx_conn *base, const struct nx_appliance_obs *obs,
                          const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = (struct vs_conn *)base;
    struct strbuf sb = STRBUF_INIT;
    char *what = nx_asprintf("updating the payload of %s", obs->name);
    nx_soap_begin(&sb, "ReconfigVM_Task", "VirtualMachine", obs->id);
    strbuf_addstr(&sb, "<spec>");
    add_payload_options(&sb, spec, obs->marker.image);
    strbuf_addstr(&sb, "</spec>");
    nx_soap_end(&sb, "ReconfigVM_Task");
    /* setting extraConfig values again is harmless: repeated when lost */
    int ret = run_task_ex(c, "ReconfigVM_Task", sb.buf, what, NULL, NULL, true, NULL);
    free(what);
    strbuf_release(&sb);
    return ret;
}

/* defer: wait later (vs_settle), reporting a failure for appliance id `defer` */
static int power(struct vs_conn *c, const char *vm, const char *name, bool on, const char *defer)
{
    struct strbuf sb = STRBUF_INIT;
    const char *method = on ? "PowerOnVM_Task" : "PowerOffVM_Task";
    char *what = nx_asprintf("powering %s %s", on ? "on" : "off", name);
    nx_soap_begin(&sb, method, "VirtualMachine", vm);
    nx_soap_end(&sb, method);
    int ret = run_task_ex(c, method, sb.buf, what, defer, NULL, true, "InvalidPowerState");
    free(what);
    strbuf_release(&sb);
    return ret;
}

struct power_job {
    struct vs_conn *c;
    struct vs_pending **p;
    size_t n, next;
    pthread_mutex_t lock;
};

static void *power_worker(void *arg)
{
    struct power_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next < j->n ? j->next++ : j->n;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->n)
            return NULL;
        struct vs_pending *p = j->p[i];
        if (!p->vm || !p->power_on)
            continue;
        nx_error_clear();
        if (power(j->c, p->vm, p->name, true, p->task) < 0)
            p->error = nx_strdup(nx_error_msg());
    }
}

/* Creates (and the power-ons after them) are confirmed here, for all
 * appliances at once: one wait round usually reports every CreateVM task,
 * then the new VMs are powered on (as many at a time as there were
 * connections: the run's concurrency), and one last round confirms those. */
static int vs_settle(struct nx_conn *base, struct nx_deferred_failure **out, size_t *n)
{
    struct vs_conn *c = (struct vs_conn *)base;
    pthread_mutex_lock(&c->lock);
    struct vs_pending **p = c->pending;
    size_t np = c->n_pending;
    c->pending = NULL;
    c->n_pending = c->alloc_pending = 0;
    nx_map_release(&c->pending_map);
    size_t threads = nx_soap_connections(c->soap);
    pthread_mutex_unlock(&c->lock);
    /* their tasks may have left recentTask already: read them all at once */
    char **ids = nx_calloc(np + 1, sizeof(*ids));
    for (size_t i = 0; i < np; i++)
        ids[i] = p[i]->task;
    if (np && vs_tasks_collect(c, ids, np) < 0)
        nx_warn("%s: reading the create tasks: %s", c->url, nx_error_msg());
    free(ids);
    for (size_t i = 0; i < np; i++) {
        nx_error_clear();
        if (vs_task_wait(c, p[i]->task, p[i]->what, &p[i]->vm) < 0) {
            p[i]->error = nx_strdup(nx_error_msg());
            NX_FREE(p[i]->vm);
        } else if (!p[i]->vm) {
            p[i]->error = nx_asprintf("%s: the task returned no virtual machine", p[i]->what);
        }
    }
    struct power_job job = {.c = c, .p = p, .n = np};
    pthread_mutex_init(&job.lock, NULL);
    if (threads > 16)
        threads = 16;
    pthread_t *tids = nx_calloc(threads + 1, sizeof(*tids));
    size_t started = 0;
    for (size_t t = 1; t < threads && np > 1; t++)
        if (pthread_create(&tids[started], NULL, power_worker, &job) == 0)
            started++;
    power_worker(&job);
    for (size_t t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    free(tids);
    pthread_mutex_destroy(&job.lock);

    int ret = vs_tasks_settle(c, out, n);
    size_t alloc = *n;
    for (size_t i = 0; i < np; i++) {
        if (p[i]->error) {
            /* the create failed (and the power-on after it cannot happen) */
            for (int k = 0; k < (p[i]->vm ? 1 : 1 + p[i]->power_on); k++) {
                NX_GROW(*out, alloc, *n + 1);
                (*out)[*n].appliance_id = nx_strdup(p[i]->task);
                (*out)[(*n)++].error = nx_strdup(p[i]->error);
            }
        }
        pending_free(p[i]);
    }
    free(p);
    /* reported here, as the core reports a change that fails at once */
    for (size_t i = 0; i < *n; i++)
        nx_log(NX_LOG_ERROR, "%s", (*out)[i].error);
    return ret;
}

static int vs_set_power(struct nx_conn *base, const struct nx_appliance_obs *obs, bool on)
{
    struct vs_conn *c = (struct vs_conn *)base;
    if (on) {
        pthread_mutex_lock(&c->lock);
        struct vs_pending *p = c->pending_map.slots ? nx_map_get(&c->pending_map, obs->id) : NULL;
        if (p)
            p->power_on = true; /* right after its creation, in vs_settle */
        pthread_mutex_unlock(&c->lock);
        if (p)
            return 0;
    }
    /* a power-on is confirmed by a later wait (vs_settle): no round trip of
     * its own */
    return power(c, obs->id, obs->name, on, on ? obs->id : NULL);
}

static int vs_remove(struct nx_conn *base, const struct nx_appliance_obs *obs)
{
    struct vs_conn *c = (struct vs_conn *)base;
    if (obs->powered_on && power(c, obs->id, obs->name, false, NULL) < 0) {
        if (!strstr(nx_error_msg(), "InvalidPowerState"))
            return -1;
        nx_error_clear(); /* already off */
    }
    struct strbuf sb = STRBUF_INIT;
    char *what = nx_asprintf("removing %s", obs->name);
    nx_soap_begin(&sb, "Destroy_Task", "VirtualMachine", obs->id);
    nx_soap_end(&sb, "Destroy_Task");
    int ret =
        run_task_ex(c, "Destroy_Task", sb.buf, what, NULL, NULL, true, "ManagedObjectNotFound");
    free(what);
    strbuf_release(&sb);
    return ret;
}

const struct nx_provider_ops nx_vsphere_provider = {
    .name = "vsphere",
    .probe = vs_probe,
    .mac_range = &vs_mac_range,
    .max_vnics = 10, /* vSphere: 10 vNICs per VM */
    .concurrent = true,
    .open = vs_open,
    .close = vs_close,
    .check_placement = vs_check_placement,
    .list_owned = vs_list_owned,
    .network_usage = vs_network_usage,
    .create = vs_create,
    .update_vnics = vs_update_vnics,
    .set_payload = vs_set_payload,
    .set_power = vs_set_power,
    .settle = vs_settle,
    .remove = vs_remove,
    .stage_image = vs_stage_image,
    .set_image = vs_set_image,
};
