/* fake-provider.c: the in-memory provider of the unit suites (fake-provider.h). */
#include "config.h"

#include "fake-provider.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

/* probe() gets only the URI: one probe function per registered fake */
static struct nx_fake *slots[4];

static bool matches(const struct nx_fake *f, const char *uri)
{
    size_t n = strlen(f->scheme);
    return uri && strncmp(uri, f->scheme, n) == 0 && strncmp(uri + n, "://", 3) == 0;
}

#define FAKE_PROBE(i)                                                                              \
    static bool probe##i(const char *uri)                                                          \
    {                                                                                              \
        return slots[i] && matches(slots[i], uri);                                                 \
    }
FAKE_PROBE(0)
FAKE_PROBE(1)
FAKE_PROBE(2)
FAKE_PROBE(3)
static bool (*const probes[])(const char *) = {probe0, probe1, probe2, probe3};

/* A connection's priv: which fake it reaches. */
struct fake_conn {
    struct nx_fake *fake;
};

static struct nx_fake *fake_of(struct nx_conn *c)
{
    return ((struct fake_conn *)c->priv)->fake;
}

static struct nx_appliance_obs *obs_copy(const struct nx_appliance_obs *o)
{
    struct nx_appliance_obs *c = nx_calloc(1, sizeof(*c));
    c->id = nx_strdup(o->id);
    c->name = nx_strdup(o->name);
    c->marker = o->marker;
    c->marker.tenant = nx_strdup(o->marker.tenant);
    c->marker.host = nx_strdup(o->marker.host);
    c->marker.net = nx_strdup(o->marker.net);
    c->powered_on = o->powered_on;
    for (size_t i = 0; i < o->n_vnics; i++) {
        struct nx_vnic_obs *v = nx_obs_add_vnic(c);
        *v = o->vnics[i];
        v->id = nx_strdup(o->vnics[i].id);
        v->network = nx_strdup(o->vnics[i].network);
    }
    return c;
}

/* the stored appliance with o's id, or NULL; f->lock held */
static struct nx_appliance_obs *stored(struct nx_fake *f, const struct nx_appliance_obs *o)
{
    for (size_t i = 0; i < f->store.n; i++)
        if (!strcmp(f->store.items[i]->id, o->id))
            return f->store.items[i];
    return NULL;
}

static void add_vnic(struct nx_appliance_obs *o, const struct nx_vnic_spec *s)
{
    struct nx_vnic_obs *v = nx_obs_add_vnic(o);
    v->id = nx_asprintf("nic%zu", o->n_vnics - 1);
    v->network = nx_strdup(s->network);
    v->vlan = s->vlan;
    memcpy(v->mac, s->mac, sizeof(v->mac));
}

/* A changing call begins: counted, and kept inside long enough to overlap. */
static void enter(struct nx_fake *f, int *counter)
{
    pthread_mutex_lock(&f->lock);
    (*counter)++;
    if (++f->in_call > f->max_in_call)
        f->max_in_call = f->in_call;
    pthread_mutex_unlock(&f->lock);
    if (f->call_delay_us)
        usleep(f->call_delay_us);
    pthread_mutex_lock(&f->lock);
}

static void leave(struct nx_fake *f)
{
    f->in_call--;
    pthread_mutex_unlock(&f->lock);
}

static int fake_open(struct nx_conn *c, const char *uri, const struct nx_conn_opts *opts)
{
    (void)opts;
    struct fake_conn *fc = nx_calloc(1, sizeof(*fc));
    for (size_t i = 0; i < NX_ARRAY_SIZE(slots) && !fc->fake; i++)
        if (slots[i] && &slots[i]->ops == c->ops && matches(slots[i], uri))
            fc->fake = slots[i];
    if (!fc->fake) {
        free(fc);
        return nx_error_set(NX_EX_CONFIG, "%s: no fake provider for this URI", uri);
    }
    pthread_mutex_lock(&fc->fake->lock);
    fc->fake->opens++;
    pthread_mutex_unlock(&fc->fake->lock);
    c->priv = fc;
    return 0;
}

static void fake_close(struct nx_conn *c)
{
    struct fake_conn *fc = c->priv;
    if (!fc)
        return;
    pthread_mutex_lock(&fc->fake->lock);
    fc->fake->closes++;
    pthread_mutex_unlock(&fc->fake->lock);
    free(fc);
    c->priv = NULL;
}

static int fake_check(struct nx_conn *c, const struct nx_appliance_spec *s)
{
    struct nx_fake *f = fake_of(c);
    if (f->refuse_tenant && !strcmp(s->tenant->name, f->refuse_tenant))
        return nx_error_set(NX_EX_DATAERR, "datastore 'vvol1' is a VVol datastore");
    return 0;
}

static int fake_list(struct nx_conn *c, struct nx_obs_list *out)
{
    struct nx_fake *f = fake_of(c);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->store.n; i++)
        nx_obs_list_add(out, obs_copy(f->store.items[i]));
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int fake_create(struct nx_conn *c, const struct nx_appliance_spec *s,
                       struct nx_appliance_obs **out)
{
    struct nx_fake *f = fake_of(c);
    struct nx_appliance_obs *o = NULL;
    int rc = 0;
    enter(f, &f->creates);
    if (f->on_payload)
        f->on_payload(f, s);
    if (f->fail_create_tenant && !strcmp(s->tenant->name, f->fail_create_tenant)) {
        rc = nx_error_set(NX_EX_UNAVAILABLE, "%s: no space left on the datastore", s->name);
        goto cleanup;
    }
    o = nx_calloc(1, sizeof(*o));
    o->id = nx_asprintf("vm-%s", s->name);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    for (size_t i = 0; i < s->n_vnics; i++)
        add_vnic(o, &s->vnics[i]);
    nx_obs_list_add(&f->store, obs_copy(o));
    *out = o;
cleanup:
    leave(f);
    return rc;
}

static int fake_update_vnics(struct nx_conn *c, const struct nx_appliance_obs *o,
                             const struct nx_appliance_spec *s,
                             const struct nx_vnic_spec *const *add, size_t n_add,
                             const struct nx_vnic_obs *const *rem, size_t n_rem)
{
    (void)s;
    struct nx_fake *f = fake_of(c);
    enter(f, &f->vnic_updates);
    struct nx_appliance_obs *st = stored(f, o);
    for (size_t r = 0; st && r < n_rem; r++)
        for (size_t i = 0; i < st->n_vnics; i++)
            if (!strcmp(st->vnics[i].id, rem[r]->id)) {
                free(st->vnics[i].id);
                free(st->vnics[i].network);
                memmove(&st->vnics[i], &st->vnics[i + 1],
                        (st->n_vnics - i - 1) * sizeof(st->vnics[0]));
                st->n_vnics--;
                break;
            }
    for (size_t i = 0; st && i < n_add; i++)
        add_vnic(st, add[i]);
    leave(f);
    return 0;
}

static int fake_set_payload(struct nx_conn *c, const struct nx_appliance_obs *o,
                            const struct nx_appliance_spec *s)
{
    struct nx_fake *f = fake_of(c);
    enter(f, &f->payloads);
    if (f->on_payload)
        f->on_payload(f, s);
    struct nx_appliance_obs *st = stored(f, o);
    if (st)
        memcpy(st->marker.digest, s->digest, sizeof(st->marker.digest));
    leave(f);
    return 0;
}

static int fake_set_image(struct nx_conn *c, const struct nx_appliance_obs *o,
                          const struct nx_appliance_spec *s)
{
    struct nx_fake *f = fake_of(c);
    enter(f, &f->images);
    struct nx_appliance_obs *st = stored(f, o);
    if (st)
        nx_marker_set_image(&st->marker, s->image ? s->image->id : NULL);
    leave(f);
    return 0;
}

static int fake_set_power(struct nx_conn *c, const struct nx_appliance_obs *o, bool on)
{
    struct nx_fake *f = fake_of(c);
    enter(f, &f->powers);
    struct nx_appliance_obs *st = stored(f, o);
    if (st)
        st->powered_on = on;
    leave(f);
    return 0; /* confirmed later, in settle */
}

static int fake_remove(struct nx_conn *c, const struct nx_appliance_obs *o)
{
    struct nx_fake *f = fake_of(c);
    enter(f, &f->removes);
    for (size_t i = 0; i < f->store.n; i++)
        if (!strcmp(f->store.items[i]->id, o->id)) {
            nx_obs_free(f->store.items[i]);
            memmove(&f->store.items[i], &f->store.items[i + 1],
                    (f->store.n - i - 1) * sizeof(f->store.items[0]));
            f->store.n--;
            break;
        }
    leave(f);
    return 0;
}

static int fake_settle(struct nx_conn *c, struct nx_deferred_failure **out, size_t *n)
{
    struct nx_fake *f = fake_of(c);
    *out = NULL;
    *n = 0;
    if (!f->settle_fail_id)
        return 0;
    *out = nx_calloc(1, sizeof(**out));
    (*out)[0].appliance_id = nx_strdup(f->settle_fail_id);
    (*out)[0].error = nx_strdup(f->settle_fail_error ? f->settle_fail_error : "failed");
    *n = 1;
    return 0;
}

void nx_fake_init(struct nx_fake *f, const char *scheme, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->scheme = scheme;
    f->name = name;
    pthread_mutex_init(&f->lock, NULL);
}

int nx_fake_register(struct nx_fake *f)
{
    size_t i = 0;
    while (i < NX_ARRAY_SIZE(slots) && slots[i])
        i++;
    if (i == NX_ARRAY_SIZE(slots))
        return -1;
    f->ops = (struct nx_provider_ops){
        .name = f->name,
        .probe = probes[i],
        .mac_range = &nx_mac_range_local,
        .concurrent = f->concurrent,
        .max_vnics = f->max_vnics,
        .open = fake_open,
        .close = fake_close,
        .check_placement = fake_check,
        .list_owned = fake_list,
        .create = fake_create,
        .update_vnics = fake_update_vnics,
        .set_payload = fake_set_payload,
        .set_power = fake_set_power,
        .set_image = fake_set_image,
        .remove = fake_remove,
        .settle = fake_settle,
    };
    if (nx_provider_register(&f->ops) < 0)
        return -1;
    slots[i] = f;
    return 0;
}

void nx_fake_add(struct nx_fake *f, const struct nx_appliance_obs *o)
{
    pthread_mutex_lock(&f->lock);
    nx_obs_list_add(&f->store, obs_copy(o));
    pthread_mutex_unlock(&f->lock);
}

void nx_fake_release(struct nx_fake *f)
{
    pthread_mutex_lock(&f->lock);
    nx_obs_list_release(&f->store);
    pthread_mutex_unlock(&f->lock);
}
