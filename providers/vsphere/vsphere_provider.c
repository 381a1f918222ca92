/* vsphere_provider.c: network extension appliances on ESXi/vCenter through the
 * vSphere Web Services (SOAP) API: the ops table, open and close.
 *
 * The work is done by the layers below (vsphere.h lists them; each calls only
 * those under it): session, inventory, tasks, placement, spec, then image,
 * observed and vm, which implement the ops. docs/internals/vsphere.md tells
 * the design: one session, one-call inventory, one task filter, deferred
 * creates and power-ons, retries, concurrency. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "util.h"
#include "vsphere_image.h"
#include "vsphere_inventory.h"
#include "vsphere_observed.h"
#include "vsphere_placement.h"
#include "vsphere_session.h"
#include "vsphere_tasks.h"
#include "vsphere_vm.h"

static const struct nx_mac_range vs_mac_range = {{0x00, 0x50, 0x56, 0x00, 0x00, 0x00}, 22};

static bool vs_probe(const char *uri)
{
    return uri &&
           (nx_str_has_prefix(uri, "vsphere://") || nx_str_has_prefix(uri, "vsphere+http://"));
}

static void vs_close(struct nx_conn *base)
{
    struct vs_conn *c = base->priv;
    if (!c)
        return;
    if (c->logged_in) {
        /* what settle did not confirm (the core always calls it; others may not) */
        struct nx_deferred_failure *f = NULL;
        size_t nf = 0;
        vs_settle(base, &f, &nf); /* logs what failed */
        nx_deferred_free(f, nf);
    }
    vs_session_logout(c);
    vs_image_release(c);
    vs_tasks_release(c);
    vs_inventory_release(&c->inv);
    vs_placement_release(c);
    vs_session_release(c);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->load_lock);
    pthread_mutex_destroy(&c->container_lock);
    pthread_mutex_destroy(&c->session_lock);
    pthread_mutex_destroy(&c->stage_lock);
    pthread_cond_destroy(&c->task_cond);
    free(c);
    base->priv = NULL;
}

static int vs_open(struct nx_conn *base, const char *uri, const struct nx_conn_opts *opts)
{
    char *url = vs_uri_to_url(uri);
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
    c->base = base;
    base->priv = c;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->load_lock, NULL);
    pthread_mutex_init(&c->container_lock, NULL);
    pthread_mutex_init(&c->session_lock, NULL);
    pthread_mutex_init(&c->stage_lock, NULL);
    pthread_cond_init(&c->task_cond, NULL);
    c->url = url;
    c->user = opts && opts->user ? nx_strdup(opts->user) : NULL;
    c->password = opts && opts->password ? nx_strdup(opts->password) : NULL;
    if (vs_session_open(c, uri, opts) < 0) {
        vs_close(base);
        return -1;
    }
    return 0;
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
