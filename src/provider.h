/* provider.h: the one interface every hypervisor provider implements.
 *
 * After libvirt's driver tables: each provider lives in providers/<name>/ and
 * exports one `const struct nx_provider_ops`; the core chooses it from the
 * connection URI (nx_provider_for_uri) and never knows which is behind it.
 *
 * Contract for every function returning int: 0 on success; -1 on failure,
 * after reporting the error once with nx_error_set() (context included).
 * Functions that change nothing may be called freely; the changing ones
 * (create, update_vnics, set_payload, set_power, remove) are only called by
 * the reconcile core after every check passed. */
#ifndef NX_PROVIDER_H
#define NX_PROVIDER_H

#include <pthread.h>

#include "conn_opts.h"
#include "desired.h"
#include "observed.h"

/* A change a provider started but confirmed only in settle(), that failed. */
struct nx_deferred_failure {
    char *appliance_id; /* nx_appliance_obs.id */
    char *error;
};

/* One open connection to an endpoint. Ownership: the core (nx_conn_open)
 * allocates it, sets ops, uri, call_lock and the counters, then calls
 * ops->open(conn, uri, opts), which puts the provider's own state in priv.
 * ops->close(conn) frees priv only; nx_conn_close frees the rest. Providers
 * never allocate or free a struct nx_conn, nor its uri. */
struct nx_conn {
    const struct nx_provider_ops *ops;
    char *uri; /* owned by the core */
    pthread_mutex_t call_lock; /* the core holds it around calls unless ops->concurrent */
    unsigned long n_changes; /* changing provider calls, counted by the core */
    unsigned long n_requests; /* wire requests, where the provider counts them */
    void *priv; /* the provider's: set by ops->open, freed by ops->close */
};

struct nx_provider_ops {
    const char *name;
    /* true if this provider handles uri */
    bool (*probe)(const char *uri);
    /* MACs this provider assigns to vNICs */
    const struct nx_mac_range *mac_range;
    /* true if the functions below may be called from several threads at once
     * on one connection; otherwise the core serialises calls per connection */
    bool concurrent;
    /* The most vNICs (production vNIC included) an appliance can have on a
     * host of this provider; 0: no practical bound. The core refuses, before
     * any change, an appliance that would need more. */
    unsigned max_vnics;

    /* Connect to uri (== c->uri) and set c->priv. On failure (-1) it has
     * released what it allocated: the core frees c without calling close. */
    int (*open)(struct nx_conn *c, const char *uri, const struct nx_conn_opts *opts);
    /* Release c->priv (which may be NULL), nothing else of c. */
    void (*close)(struct nx_conn *c);

    /* Inventory lookup and validation of spec's placement, networks and
     * storage on its host (and of its image store when spec->image is set).
     * Changes nothing. */
    int (*check_placement)(struct nx_conn *c, const struct nx_appliance_spec *spec);
    /* Every appliance on this connection that carries a marker. */
    int (*list_owned)(struct nx_conn *c, struct nx_obs_list *out);
    /* Optional (NULL: detection unsupported). The networks used by VMs on
     * `host` (the hypervisor's name for it, nx_host.target or name) that are
     * not appliances, with how many VMs use each. Caller frees with
     * nx_net_usage_free(). */
    int (*network_usage)(struct nx_conn *c, const char *host, struct nx_net_usage **out, size_t *n);

    /* Create the appliance with all its vNICs, marker and payload, powered off,
     * and, when spec->image is set, a CD/DVD drive holding that image, which
     * it boots from (the marker's image is then spec->image->id).
     * *out describes what was created (free with nx_obs_free). */
    int (*create)(struct nx_conn *c, const struct nx_appliance_spec *spec,
                  struct nx_appliance_obs **out);
    /* Remove and add vNICs in one change where the hypervisor allows. */
    int (*update_vnics)(struct nx_conn *c, const struct nx_appliance_obs *obs,
                        const struct nx_appliance_spec *spec, const struct nx_vnic_spec *const *add,
                        size_t n_add, const struct nx_vnic_obs *const *remove, size_t n_remove);
    /* Replace the payload and the marker's digest. */
    int (*set_payload)(struct nx_conn *c, const struct nx_appliance_obs *obs,
                       const struct nx_appliance_spec *spec);
    int (*set_power)(struct nx_conn *c, const struct nx_appliance_obs *obs, bool on);
    /* Optional (NULL: the image is used where it is). Make spec->image
     * available where spec's appliance goes: upload it to the host's image
     * store (nx_host.image_store, provider-specific) when it is missing or of
     * another size there. The core calls it before every create and set_image
     * of a spec with an image; the provider remembers per connection what it
     * staged, so a store gets one check (and at most one upload) per run.
     * Changes the hypervisor's storage only. */
    int (*stage_image)(struct nx_conn *c, const struct nx_appliance_spec *spec);
    /* Put spec->image in the appliance's CD/DVD drive (adding the drive if it
     * has none) and its id in the marker. Takes effect at the next boot. */
    int (*set_image)(struct nx_conn *c, const struct nx_appliance_obs *obs,
                     const struct nx_appliance_spec *spec);
    /* Power off (if needed) and delete the appliance and what belongs to it. */
    int (*remove)(struct nx_conn *c, const struct nx_appliance_obs *obs);
    /* Optional. Providers may return from create and set_power before the
     * hypervisor confirmed them, to batch the waits; the core calls settle()
     * after all changes and before reporting. It waits for everything
     * outstanding and returns the failures (caller frees with
     * nx_deferred_free); each failure marks the first not yet failed create
     * or power action of that appliance id. */
    int (*settle)(struct nx_conn *c, struct nx_deferred_failure **out, size_t *n);
};

/* Registry: the providers built in (see configure --with-<provider>). */
const struct nx_provider_ops *nx_provider_for_uri(const char *uri);
const struct nx_provider_ops *const *nx_providers(size_t *n);
/* Add a provider ahead of the built-in ones (tests, plug-ins); at most 4. */
int nx_provider_register(const struct nx_provider_ops *ops);

/* Open/close through the registry (see struct nx_conn for who owns what);
 * nx_conn_open sets nx_error on failure; nx_conn_close accepts NULL. */
int nx_conn_open(const char *uri, const struct nx_conn_opts *opts, struct nx_conn **out);
void nx_conn_close(struct nx_conn *c);

/* Helpers for providers (the observed types' own are in observed.h). */
void nx_deferred_free(struct nx_deferred_failure *f, size_t n);

#endif
