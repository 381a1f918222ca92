/* test-reconcile.c: the reconcile engine's own rules, with a recording
 * provider registered in-process ("rec://"): calls to a provider that is not
 * concurrent never overlap, even with -j 8; a failing tenant does not stop the
 * others; changes confirmed late (settle) fail their own action; a refused
 * tenant gets no changing call; tunnel credentials are issued by the worker
 * that creates an appliance, reach its payload, and later runs read them
 * through the check stamps; removals on a provider that is not concurrent
 * never overlap either ("rm://"); an appliance with more vNICs than the
 * provider allows is refused before any change ("lim://"). Each is an
 * in-memory provider of fake-provider.h; the real providers are tested
 * elsewhere. */
#include "config.h"

#include "testutil.h"

#include "fake-provider.h"
#include "payload.h"
#include "pki.h"
#include "reconcile.h"
#include "strbuf.h"
#include "util.h"

#include <sys/stat.h>
#include <unistd.h>

/* ---- "rec://": not concurrent, refuses one tenant, fails two ----------- */

static struct nx_fake rec;

static void test_engine(void)
{
    nx_fake_init(&rec, "rec", "recording");
    rec.call_delay_us = 2000; /* long enough for overlaps to show */
    rec.refuse_tenant = "refused";
    rec.fail_create_tenant = "t03";
    /* t05's power-on turns out to have failed */
    rec.settle_fail_id = "vm-netext-t05-h";
    rec.settle_fail_error = "powering on netext-t05-h: InsufficientResourcesFault";
    CU_ASSERT_EQUAL_FATAL(nx_fake_register(&rec), 0);
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
    CU_ASSERT_EQUAL(rec.max_in_call, 1); /* serialised on the one connection */
    CU_ASSERT_EQUAL(rec.creates, 20); /* the refused tenant got none */
    CU_ASSERT_EQUAL(rec.powers, 19); /* t03's create failed: no power-on */
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
    CU_ASSERT_EQUAL(rec.opens, 1); /* one connection per endpoint */
    CU_ASSERT_EQUAL(rec.closes, 0);
    nx_run_release(&r);
    CU_ASSERT_EQUAL(rec.closes, 1); /* its priv freed by the provider's close */
    nx_fake_release(&rec);
    nx_model_free(m);
    nx_diag_release(&d);
    strbuf_release(&sb);
}

/* ---- "store://": keeps what was created, for runs after the first ---------- */

static struct nx_fake store;
static int st_bad_payloads;
static char st_last_cert[4096];

/* A payload must carry issued credentials, and the digest must be its own. */
static void check_payload(struct nx_fake *f, const struct nx_appliance_spec *s)
{
    (void)f;
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
    nx_fake_init(&store, "store", "store");
    store.concurrent = true;
    store.on_payload = check_payload;
    CU_ASSERT_EQUAL_FATAL(nx_fake_register(&store), 0);
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
    CU_ASSERT_EQUAL(store.creates, 6);
    CU_ASSERT_EQUAL(st_bad_payloads, 0);
    char *stamp = nx_asprintf("%s/pki/c01/server-h.ok", state);
    struct stat st;
    CU_ASSERT_EQUAL(stat(stamp, &st), 0);

    /* second run: nothing to change (digests from the stamps) */
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(changes, 0);
    CU_ASSERT_EQUAL(store.creates, 6);
    CU_ASSERT_EQUAL(store.payloads, 0);

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
    CU_ASSERT_EQUAL(store.payloads, 1);
    CU_ASSERT_EQUAL(st_bad_payloads, 0);
    CU_ASSERT_STRING_NOT_EQUAL(before, st_last_cert);
    CU_ASSERT_EQUAL(run_once(m, state, &changes), NX_EX_OK);
    CU_ASSERT_EQUAL(changes, 0);

    nx_fake_release(&store);
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

static struct nx_fake rm;

static void test_removals_serialised(void)
{
    nx_fake_init(&rm, "rm", "removing");
    rm.call_delay_us = 5000; /* a transport that is not thread-safe would be in use now */
    CU_ASSERT_EQUAL_FATAL(nx_fake_register(&rm), 0);
    for (int i = 0; i < 8; i++) {
        struct nx_appliance_obs o = {.marker = {.role = NX_ROLE_PROVIDER, .revision = 1}};
        o.id = nx_asprintf("vm-%d", i);
        o.name = nx_asprintf("netext-r%02d-h", i);
        o.marker.tenant = nx_asprintf("r%02d", i);
        o.marker.host = nx_strdup("h");
        nx_fake_add(&rm, &o);
        free(o.id);
        free(o.name);
        nx_marker_release(&o.marker);
    }
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
    CU_ASSERT_EQUAL(rm.removes, 8);
    CU_ASSERT_EQUAL(r.n_changes, 8);
    CU_ASSERT_EQUAL(rm.max_in_call, 1); /* one call at a time on the one connection */
    nx_run_release(&r);
    nx_fake_release(&rm);
    nx_model_free(m);
    nx_diag_release(&d);
    strbuf_release(&sb);
}

/* ---- "lim://": at most 4 vNICs per appliance ------------------------------ */

static struct nx_fake lim;

static void test_vnic_limit(void)
{
    nx_fake_init(&lim, "lim", "limited");
    lim.max_vnics = 4;
    CU_ASSERT_EQUAL_FATAL(nx_fake_register(&lim), 0);
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
    CU_ASSERT_EQUAL(lim.creates, 1); /* 'small' (4 vNICs) only */
    CU_ASSERT_EQUAL_FATAL(r.problems.n, 1);
    CU_ASSERT(strstr(r.problems.msgs[0],
                     "tenant 'big', host 'h': the appliance would need 5 vNICs (the production "
                     "network and 4 VLANs), more than the 4 a VM can have on limited") != NULL);
    CU_ASSERT_EQUAL(nx_run_tenant_result(&r, 1), NX_TR_REFUSED);
    CU_ASSERT_EQUAL(nx_run_tenant_result(&r, 0), NX_TR_CHANGED);
    nx_run_release(&r);
    nx_fake_release(&lim);
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
