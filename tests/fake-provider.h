/* fake-provider.h: an in-memory provider for the unit suites.
 *
 * A struct nx_fake is one fake hypervisor, reached by the URIs that start
 * with "<scheme>://". Registered with nx_fake_register (through
 * nx_provider_register), it serves the reconcile core like a real provider:
 * the core opens connections to it (each gets a small priv of its own), lists
 * what it stores and calls the changing functions, which the fake counts and
 * applies to its store. The store outlives connections, so a later run in the
 * same process finds what an earlier one created ("store://").
 *
 * Configurable behaviour (set the fields before registering):
 *  - concurrent / max_vnics: as in struct nx_provider_ops;
 *  - call_delay_us: every changing call sleeps this long inside the fake, so
 *    that overlapping calls show in max_in_call;
 *  - refuse_tenant: check_placement refuses this tenant's appliances (a VVol
 *    datastore);
 *  - fail_create_tenant: create fails for this tenant (no space left);
 *  - settle_fail_id / settle_fail_error: settle reports this late failure;
 *  - on_payload: called (under the fake's lock) with the spec of every create
 *    and set_payload, to check payloads.
 * Not thread-safe to configure; the calls themselves are. At most 4 fakes. */
#ifndef NX_FAKE_PROVIDER_H
#define NX_FAKE_PROVIDER_H

#include <pthread.h>

#include "provider.h"

struct nx_fake {
    /* configuration */
    const char *scheme; /* URIs "<scheme>://..." */
    const char *name; /* the provider's name in messages */
    bool concurrent;
    unsigned max_vnics;
    unsigned call_delay_us;
    const char *refuse_tenant;
    const char *fail_create_tenant;
    const char *settle_fail_id;
    const char *settle_fail_error;
    void (*on_payload)(struct nx_fake *f, const struct nx_appliance_spec *s);
    void *data; /* for on_payload */

    /* what happened (read after a run; the fake's lock guards them) */
    int creates, payloads, powers, removes, vnic_updates, images;
    int in_call, max_in_call; /* changing calls inside the fake at once; the most seen */
    int opens, closes;

    /* the store: appliances the fake hypervisor holds */
    struct nx_obs_list store;

    /* private */
    pthread_mutex_t lock;
    struct nx_provider_ops ops;
};

/* Set defaults (not concurrent, no bound, no failures, empty store). */
void nx_fake_init(struct nx_fake *f, const char *scheme, const char *name);
/* Register f with the core (nx_provider_register); f must outlive its use. */
int nx_fake_register(struct nx_fake *f);
/* Put a copy of o in the store, as if an earlier run had created it. */
void nx_fake_add(struct nx_fake *f, const struct nx_appliance_obs *o);
/* Frees the store (f stays registered: do not use its URIs after this). */
void nx_fake_release(struct nx_fake *f);

#endif
