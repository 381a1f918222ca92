/* test-reconcile.c: the reconcile engine's own rules, with a recording
 * provider registered in-process ("rec://"): calls to a provider that is not
 * concurrent never overlap, even with -j 8; a failing tenant does not stop the
 * others; changes confirmed late (settle) fail their own action; a refused
 * tenant gets no changing call; tunnel credentials are issued by the worker
 * that creates an appliance, reach its payload, and later runs read them
 * through the check stamps; removals on a provider that is not concurrent
 * never overlap either ("rm://"); an appliance with more vNICs than the
 * provider allows is refused before any change ("lim://"). The real providers
 * are tested elsewhere. */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>

#include "payload.h"
#include "pki.h"
#include "reconcile.h"
#include "strbuf.h"
#include "util.h"

#include <sys/stat.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int in_call, max_in_call, creates, powers;

static bool rec_probe(const char *uri)
{
    return nx_str_has_prefix(uri, "rec://");
}

static int rec_open(struct nx_conn *c, const char *uri, const struct nx_conn_opts *o)
{
    (void)c;
    (void)uri;
    (void)o;
    return 0; /* no state of its own: priv stays NULL */
}

static void rec_close(struct nx_conn *c)
{
    (void)c;
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

/* ---- "store://": keeps what was created, for runs after the first ---------- */

static struct nx_appliance_obs *stored[16];
static size_t n_stored;
static int st_creates, st_payloads, st_bad_payloads;
static char st_last_cert[4096];

static bool st_probe(const char *uri)
{
    return nx_str_has_prefix(uri, "store://");
}

static struct nx_appliance_obs *obs_copy(const struct nx_appliance_obs *o)
{
    struct nx_appliance_obs *c = nx_calloc(1, sizeof(*c));
    c->id = nx_strdup(o->id);
    c->name = nx_strdup(o->name);
    c->marker = o->marker;
    c->marker.tenant = nx_strdup(o->marker.tenant);
    c->marker.host = nx_strdup(o->marker.host);
    c->marker.net = NULL;
    c->powered_on = o->powered_on;
    for (size_t i = 0; i < o->n_vnics; i++) {
        struct nx_vnic_obs v = o->vnics[i];
        v.id = nx_strdup(v.id);
        v.network = nx_strdup(v.network);
        NX_GROW(c->vnics, c->alloc_vnics, c->n_vnics + 1);
        c->vnics[c->n_vnics++] = v;
    }
    return c;
}

static int st_list(struct nx_conn *c, struct nx_obs_list *out)
{
    (void)c;
    for (size_t i = 0; i < n_stored; i++)
        nx_obs_list_add(out, obs_copy(stored[i]));
    return 0;
}

/* A payload must carry issued credentials, and the digest must be its own. */
static void check_payload(const struct nx_appliance_spec *s)
{
    char hex[65];
    nx_sha256_hex(s->payload ? s->payload : "", s->payload_len, hex);
    const char *cert = s->payload ? strstr(s->payload, "<certificate>") : NULL;
    const char *end = cert ? strstr(cert, "</certificate>") : NULL;
    if (!s->payload || !strstr(s->payload, "BEGIN PRIVATE KEY") || strstr(s->payload, "pending") ||
        strcmp(hex, s->digest) != 0 || !end || (size_t)(end - cert) >= sizeof(st_last_cert)) {
        st_bad_payloads++;
        return;
    }
    memcpy(st_last_cert, cert, (size_t)(end - cert));
    st_last_cert[end - cert] = '\0';
}

static int st_create(struct nx_conn *c, const struct nx_appliance_spec *s,
                     struct nx_appliance_obs **out)
{
    (void)c;
    pthread_mutex_lock(&mu);
    st_creates++;
    check_payload(s);
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    o->id = nx_asprintf("vm-%s", s->name);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    o->powered_on = true;
    for (size_t i = 0; i < s->n_vnics; i++) {
        struct nx_vnic_obs v = {
            nx_asprintf("nic%zu", i), nx_strdup(s->vnics[i].network), s->vnics[i].vlan, {0}};
        memcpy(v.mac, s->vnics[i].mac, 6);
        NX_GROW(o->vnics, o->alloc_vnics, o->n_vnics + 1);
        o->vnics[o->n_vnics++] = v;
    }
    if (n_stored < NX_ARRAY_SIZE(stored))
        stored[n_stored++] = obs_copy(o);
    pthread_mutex_unlock(&mu);
    *out = o;
    return 0;
}

static int st_set_payload(struct nx_conn *c, const struct nx_appliance_obs *o,
                          const struct nx_appliance_spec *s)
{
    (void)c;
    pthread_mutex_lock(&mu);
    st_payloads++;
    check_payload(s);
    for (size_t i = 0; i < n_stored; i++)
        if (!strcmp(stored[i]->id, o->id))
            memcpy(stored[i]->marker.digest, s->digest, sizeof(s->digest));
    pthread_mutex_unlock(&mu);
    return 0;
}

static int st_power(struct nx_conn *c, const struct nx_appliance_obs *o, bool on)
{
    (void)c;
    (void)o;
    (void)on;
    return 0;
}

static const struct nx_provider_ops st_ops = {
    .name = "store",
    .probe = st_probe,
    .mac_range = &nx_mac_range_local,
    .concurrent = true,
    .open = rec_open,
    .close = rec_close,
    .check_placement = rec_check,
    .list_owned = st_list,
    .create = st_create,
    .set_payload = st_set_payload,
    .set_power = st_power,
};

static int run_once(struct nx_model *m, const char *state, unsigned long *changes)
{
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .jobs = 4};
    o.tunnel_credentials = true;
    o.state_dir = state;
    struct nx_run r;
    int code = nx_run_execute(m, &o, &r);
    *changes = r.n_changes;
    nx_run_release(&r);
    return code;
}

static void test_credentials(void)
{
    CU_ASSERT_EQUAL_FATAL(nx_provider_register(&st_ops), 0);
    char root[] = "/tmp/nx-test-reconcile.XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
    char *state = nx_asprintf("%s/state", root);
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, NX_PLAN_HEAD "<gateway address='gw'/><host name='h' uri='store://one' "
                                    "production-network='p' vlan-switch='v'/>");
    for (int i = 0; i < 6; i++)
        strbuf_addf(&sb,
                    "<hardware-plan name='p%d' host='h'><network name='n' vlan='%d'/>"
                    "</hardware-plan><tenant name='c%02d'><subscribe plan='p%d'/></tenant>",
                    i, 10 + i, i, i);
    strbuf_addstr(&sb, NX_PLAN_TAIL);
    struct nx_diag d;
    struct nx_model *m = nx_test_model(sb.buf, &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    unsigned long changes = 0;

    /* first run: every appliance is created with credentials issued for it */
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(st_creates, 6);
    CU_ASSERT_EQUAL(st_bad_payloads, 0);
    char *stamp = nx_asprintf("%s/pki/c01/server-h.ok", state);
    struct stat st;
    CU_ASSERT_EQUAL(stat(stamp, &st), 0);

    /* second run: nothing to change (digests from the stamps) */
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(changes, 0);
    CU_ASSERT_EQUAL(st_creates, 6);
    CU_ASSERT_EQUAL(st_payloads, 0);

    /* without a stamp: the full check, the same credentials, nothing to do */
    CU_ASSERT_EQUAL(unlink(stamp), 0);
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(changes, 0);
    CU_ASSERT_EQUAL(stat(stamp, &st), 0);

    /* rotation: the next run sends c01 a payload with the new certificate */
    struct nx_pki *p;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL(nx_pki_rotate(p, "c01", false), 2); /* server certificate, client CA */
    nx_pki_close(p);
    char before[sizeof(st_last_cert)];
    memcpy(before, st_last_cert, sizeof(before));
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(changes, 1);
    CU_ASSERT_EQUAL(st_payloads, 1);
    CU_ASSERT_EQUAL(st_bad_payloads, 0);
    CU_ASSERT_STRING_NOT_EQUAL(before, st_last_cert);
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(changes, 0);

    for (size_t i = 0; i < n_stored; i++)
        nx_obs_free(stored[i]);
    char *cmd = nx_asprintf("rm -rf '%s'", root);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);
    free(stamp);
    free(state);
    nx_model_free(m);
    nx_diag_release(&d);
    strbuf_release(&sb);
}

/* ---- "rm://": not concurrent, owns one appliance per tenant, removes them - */

static int rm_in, rm_max, rm_removes;

static bool rm_probe(const char *uri)
{
    return nx_str_has_prefix(uri, "rm://");
}

static int rm_list(struct nx_conn *c, struct nx_obs_list *out)
{
    (void)c;
    for (int i = 0; i < 8; i++) {
        struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
        o->id = nx_asprintf("vm-%d", i);
        o->name = nx_asprintf("netext-r%02d-h", i);
        o->marker.role = NX_ROLE_PROVIDER;
        o->marker.tenant = nx_asprintf("r%02d", i);
        o->marker.host = nx_strdup("h");
        o->marker.revision = 1;
        nx_obs_list_add(out, o);
    }
    return 0;
}

static int rm_remove(struct nx_conn *c, const struct nx_appliance_obs *o)
{
    (void)c;
    (void)o;
    pthread_mutex_lock(&mu);
    rm_removes++;
    if (++rm_in > rm_max)
        rm_max = rm_in;
    pthread_mutex_unlock(&mu);
    usleep(5000); /* a transport that is not thread-safe would be in use now */
    pthread_mutex_lock(&mu);
    rm_in--;
    pthread_mutex_unlock(&mu);
    return 0;
}

static const struct nx_provider_ops rm_ops = {
    .name = "removing",
    .probe = rm_probe,
    .mac_range = &nx_mac_range_local,
    .concurrent = false,
    .open = rec_open,
    .close = rec_close,
    .check_placement = rec_check,
    .list_owned = rm_list,
    .remove = rm_remove,
};

static void test_removals_serialised(void)
{
    CU_ASSERT_EQUAL_FATAL(nx_provider_register(&rm_ops), 0);
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, NX_PLAN_HEAD "<gateway address='gw'/><host name='h' uri='rm://one' "
                                    "production-network='p' vlan-switch='v'/>");
    for (int i = 0; i < 8; i++)
        strbuf_addf(&sb,
                    "<hardware-plan name='p%d' host='h'><network name='n' vlan='%d'/>"
                    "</hardware-plan><tenant name='r%02d'><subscribe plan='p%d'/></tenant>",
                    i, 10 + i, i, i);
    strbuf_addstr(&sb, NX_PLAN_TAIL);
    struct nx_diag d;
    struct nx_model *m = nx_test_model(sb.buf, &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .jobs = 4, .remove_all = true};
    struct nx_run r;
    CU_ASSERT_EQUAL(nx_run_execute(m, &o, &r), NX_EX_OK);
    CU_ASSERT_EQUAL(rm_removes, 8);
    CU_ASSERT_EQUAL(r.n_changes, 8);
    CU_ASSERT_EQUAL(rm_max, 1); /* one call at a time on the one connection */
    nx_run_release(&r);
    nx_model_free(m);
    nx_diag_release(&d);
    strbuf_release(&sb);
}

/* ---- "lim://": at most 4 vNICs per appliance ------------------------------ */

static int lim_creates;

static bool lim_probe(const char *uri)
{
    return nx_str_has_prefix(uri, "lim://");
}

static int lim_create(struct nx_conn *c, const struct nx_appliance_spec *s,
                      struct nx_appliance_obs **out)
{
    (void)c;
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    o->id = nx_asprintf("vm-%s", s->name);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    *out = o;
    lim_creates++;
    return 0;
}

static const struct nx_provider_ops lim_ops = {
    .name = "limited",
    .probe = lim_probe,
    .mac_range = &nx_mac_range_local,
    .max_vnics = 4,
    .open = rec_open,
    .close = rec_close,
    .check_placement = rec_check,
    .list_owned = rec_list,
    .create = lim_create,
    .set_power = st_power,
};

static void test_vnic_limit(void)
{
    CU_ASSERT_EQUAL_FATAL(nx_provider_register(&lim_ops), 0);
    const char *plan = NX_PLAN_HEAD
        "<gateway address='gw'/><host name='h' uri='lim://one' "
        "production-network='p' vlan-switch='v'/>"
        "<hardware-plan name='s' host='h'><network name='a' vlan='10'/>"
        "<network name='b' vlan='11'/><network name='c' vlan='12'/></hardware-plan>"
        "<hardware-plan name='b1' host='h'><network name='a' vlan='20'/>"
        "<network name='b' vlan='21'/></hardware-plan>"
        "<hardware-plan name='b2' host='h'><network name='c' vlan='22'/>"
        "<network name='d' vlan='23'/></hardware-plan>"
        "<tenant name='small'><subscribe plan='s'/></tenant>"
        "<tenant name='big'><subscribe plan='b1'/><subscribe plan='b2'/></tenant>" NX_PLAN_TAIL;
    struct nx_diag d;
    struct nx_model *m = nx_test_model(plan, &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .jobs = 2};
    struct nx_run r;
    nx_run_execute(m, &o, &r);
    CU_ASSERT_EQUAL(lim_creates, 1); /* 'small' (4 vNICs) only */
    CU_ASSERT_EQUAL_FATAL(r.problems.n, 1);
    CU_ASSERT(strstr(r.problems.msgs[0],
                     "tenant 'big', host 'h': the appliance would need 5 vNICs (the production "
                     "network and 4 VLANs), more than the 4 a VM can have on limited") != NULL);
    CU_ASSERT_EQUAL(nx_run_tenant_result(&r, 1), NX_TR_REFUSED);
    CU_ASSERT_EQUAL(nx_run_tenant_result(&r, 0), NX_TR_CHANGED);
    nx_run_release(&r);
    nx_model_free(m);
    nx_diag_release(&d);
}

static CU_TestInfo tests[] = {
    {"serialised calls, isolation, late failures, refusals", test_engine},
    {"tunnel credentials: issued at creation, read back from stamps, rotated", test_credentials},
    {"removals on a provider that is not concurrent are serialised", test_removals_serialised},
    {"more vNICs than the provider allows: refused before any change", test_vnic_limit},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("reconcile engine", tests)
