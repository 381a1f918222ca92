/* provider.c: the provider registry and connections (provider.h). */
#include "config.h"

#include "provider.h"
#include "config.h"
#include "error.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#ifdef WITH_VSPHERE
extern const struct nx_provider_ops nx_vsphere_provider;
#endif
#ifdef WITH_HYPERV
extern const struct nx_provider_ops nx_hyperv_provider;
#endif
#ifdef WITH_LIBVIRT
extern const struct nx_provider_ops nx_libvirt_provider;
#endif

/* Order matters: the libvirt provider accepts any other URI libvirt knows. */
static const struct nx_provider_ops *const registry[] = {
#ifdef WITH_VSPHERE
    &nx_vsphere_provider,
#endif
#ifdef WITH_HYPERV
    &nx_hyperv_provider,
#endif
#ifdef WITH_LIBVIRT
    &nx_libvirt_provider,
#endif
    NULL,
};

const struct nx_provider_ops *const *nx_providers(size_t *n)
{
    *n = NX_ARRAY_SIZE(registry) - 1;
    return registry;
}

static const struct nx_provider_ops *extra[4];

int nx_provider_register(const struct nx_provider_ops *ops)
{
    for (size_t i = 0; i < NX_ARRAY_SIZE(extra); i++)
        if (!extra[i]) {
            extra[i] = ops;
            return 0;
        }
    return -1;
}

const struct nx_provider_ops *nx_provider_for_uri(const char *uri)
{
    for (size_t i = 0; i < NX_ARRAY_SIZE(extra) && extra[i]; i++)
        if (extra[i]->probe(uri))
            return extra[i];
    for (size_t i = 0; registry[i]; i++)
        if (registry[i]->probe(uri))
            return registry[i];
    return NULL;
}

/* what the core allocated in nx_conn_open */
static void conn_free(struct nx_conn *c)
{
    pthread_mutex_destroy(&c->call_lock);
    free(c->uri);
    free(c);
}

int nx_conn_open(const char *uri, const struct nx_conn_opts *opts, struct nx_conn **out)
{
    const struct nx_provider_ops *ops = nx_provider_for_uri(uri);
    *out = NULL;
    if (!ops)
        return nx_error_set(NX_EX_CONFIG, "%s: no provider for this URI (built in:%s%s%s)", uri,
#ifdef WITH_VSPHERE
                            " vsphere",
#else
                            "",
#endif
#ifdef WITH_HYPERV
                            " hyperv",
#else
                            "",
#endif
#ifdef WITH_LIBVIRT
                            " libvirt"
#else
                            ""
#endif
        );
    struct nx_conn *c = nx_calloc(1, sizeof(*c));
    c->ops = ops;
    c->uri = nx_strdup(uri);
    pthread_mutex_init(&c->call_lock, NULL);
    if (ops->open(c, uri, opts) < 0) {
        conn_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void nx_conn_close(struct nx_conn *c)
{
    if (!c)
        return;
    c->ops->close(c);
    conn_free(c);
}

void nx_deferred_free(struct nx_deferred_failure *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].appliance_id);
        free(f[i].error);
    }
    free(f);
}
