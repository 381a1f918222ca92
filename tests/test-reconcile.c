/* test-reconcile.c: the reconcile engine's own rules, with a recording
 * provider registered in-process ("rec://"): calls to a provider that is not
 * concurrent never overlap, even with -j 8; a failing tenant does not stop the
 * others; changes confirmed late (settle) fail their own action; a refused
 * tenant gets no changing call. The real providers are tested elsewhere. */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>

#include "reconcile.h"
#include "strbuf.h"
#include "util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int in_call, max_in_call, creates, powers;

struct rec_conn {
    struct nx_conn base;
};

static bool rec_probe(const char *uri)
{
    return nx_str_has_prefix(uri, "rec://");
}

static int rec_open(const char *uri, const struct nx_conn_opts *o, struct nx_conn **out)
{
    (void)o;
    struct rec_conn *c = nx_calloc(1, sizeof(*c));
    c->base.uri = nx_strdup(uri);
    *out = &c->base;
    return 0;
}

static void rec_close(struct nx_conn *c)
{
    free(c->uri);
    free(c);
}

static void enter(void)
{
    pthread_mutex_lock(&mu);
    if (++in_call > max_in_call)
        max_in_call = in_call;
    pthread_mutex_unlock(&mu);
    usleep(2000); /* long enough for overlaps to show */
}

static void leave(void)
{
    pthread_mutex_lock(&mu);
    in_call--;
    pthread_mutex_unlock(&mu);
}

static int rec_check(struct nx_conn *c, const struct nx_appliance_spec *s)
{
    (void)c;
    if (strcmp(s->tenant->name, "refused") == 0)
        return nx_error_set(NX_EX_DATAERR, "datastore 'vvol1' is a VVol datastore");
    return 0;
}

static int rec_list(struct nx_conn *c, struct nx_obs_list *out)
{
    (void)c;
    (void)out;
    return 0;
}

static int rec_create(struct nx_conn *c, const struct nx_appliance_spec *s,
                      struct nx_appliance_obs **out)
{
    (void)c;
    enter();
    pthread_mutex_lock(&mu);
    creates++;
    pthread_mutex_unlock(&mu);
    int rc = 0;
    if (strcmp(s->tenant->name, "t03") == 0)
        rc = nx_error_set(NX_EX_UNAVAILABLE, "%s: no space left on the datastore", s->name);
    else {
        struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
        o->id = nx_asprintf("vm-%s", s->name);
        o->name = nx_strdup(s->name);
        nx_marker_from_spec(&o->marker, s);
        *out = o;
    }
    leave();
    return rc;
}

static int rec_power(struct nx_conn *c, const struct nx_appliance_obs *o, bool on)
{
    (void)c;
    (void)o;
    (void)on;
    enter();
    pthread_mutex_lock(&mu);
    powers++;
    pthread_mutex_unlock(&mu);
    leave();
    return 0; /* confirmed later, in settle */
}

static int rec_settle(struct nx_conn *c, struct nx_deferred_failure **out, size_t *n)
{
    (void)c;
    /* t05's power-on turns out to have failed */
    *out = nx_calloc(1, sizeof(**out));
    (*out)[0].appliance_id = nx_strdup("vm-netext-t05-h");
    (*out)[0].error = nx_strdup("powering on netext-t05-h: InsufficientResourcesFault");
    *n = 1;
    return 0;
}

static const struct nx_provider_ops rec_ops = {
    .name = "recording",
    .probe = rec_probe,
    .mac_range = &nx_mac_range_local,
    .concurrent = false,
    .open = rec_open,
    .close = rec_close,
    .check_placement = rec_check,
    .list_owned = rec_list,
    .create = rec_create,
    .set_power = rec_power,
    .settle = rec_settle,
};

static void test_engine(void)
{
    CU_ASSERT_EQUAL_FATAL(nx_provider_register(&rec_ops), 0);
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, NX_PLAN_HEAD "<gateway address='gw'/><host name='h' uri='rec://one' "
                                    "production-network='p' vlan-switch='v'/>");
    for (int i = 0; i < 20; i++)
        strbuf_addf(&sb,
                    "<hardware-plan name='p%d' host='h'><network name='n' vlan='%d'/>"
                    "</hardware-plan><tenant name='t%02d'><subscribe plan='p%d'/></tenant>",
                    i, 10 + i, i, i);
    strbuf_addstr(&sb, "<hardware-plan name='px' host='h'><network name='n' vlan='99'/>"
                       "</hardware-plan><tenant name='refused'><subscribe plan='px'/></tenant>");
    strbuf_addstr(&sb, NX_PLAN_TAIL);
    struct nx_diag d;
    struct nx_model *m = nx_test_model(sb.buf, &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .jobs = 8};
    struct nx_run r;
    int code = nx_run_execute(m, &o, &r);
    CU_ASSERT_EQUAL(code, NX_EX_FAILED);
    CU_ASSERT_EQUAL(max_in_call, 1); /* serialised on the one connection */
    CU_ASSERT_EQUAL(creates, 20); /* the refused tenant got none */
    CU_ASSERT_EQUAL(powers, 19); /* t03's create failed: no power-on */
    CU_ASSERT_EQUAL(r.tenants_done, 21);
    CU_ASSERT_EQUAL(r.problems.n, 1);
    size_t changed = 0;
    for (size_t i = 0; i < m->n_tenants; i++) {
        enum nx_tenant_result tr = nx_run_tenant_result(&r, i);
        const char *name = m->tenants[i]->name;
        if (!strcmp(name, "t03") || !strcmp(name, "t05")) {
            CU_ASSERT_EQUAL(tr, NX_TR_FAILED);
        } else if (!strcmp(name, "refused")) {
            CU_ASSERT_EQUAL(tr, NX_TR_REFUSED);
        } else {
            changed += tr == NX_TR_CHANGED;
        }
    }
    CU_ASSERT_EQUAL(changed, 18);
    /* the late failure is on t05's power-on action, with the provider's text */
    bool seen = false;
    for (size_t i = 0; i < r.actions.n; i++)
        if (r.actions.items[i].kind == NX_ACT_POWER_ON &&
            !strcmp(r.actions.items[i].spec->tenant->name, "t05")) {
            CU_ASSERT_EQUAL(r.status[i], NX_ST_FAILED);
            CU_ASSERT(r.errors[i] && strstr(r.errors[i], "InsufficientResourcesFault"));
            seen = true;
        }
    CU_ASSERT(seen);
    nx_run_release(&r);
    nx_model_free(m);
    nx_diag_release(&d);
    strbuf_release(&sb);
}

static CU_TestInfo tests[] = {
    {"serialised calls, isolation, late failures, refusals", test_engine},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("reconcile engine", tests)
