/* test-tenant.c: the tenant side (bundles, default resolution, tenant-side
 * appliances on libvirt's test driver, rescan add/remove/no-op), per-tenant
 * validity for batch mode, a 200-tenant batch with invalid and failing
 * tenants, and lock contention. */
#include "config.h"

#include "testutil.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "payload.h"
#include "reconcile.h"
#include "strbuf.h"
#include "tenant_side.h"
#include "util.h"

#define URI "test:///default"

static virConnectPtr keep;
static char tmpdir[] = "/tmp/nx-tenant-XXXXXX";

static const char sp_plan[] =
    NX_PLAN_HEAD "<gateway address='gw.sp.example.com' port='7000'/>"
                 "<host name='esx1' uri='" URI "' production-network='prod' vlan-switch='v'/>"
                 "<host name='esx2' uri='" URI "' production-network='prod' vlan-switch='v'/>"
                 "<hardware-plan name='a' host='esx1'><network name='web' vlan='101'/>"
                 "<network name='db' vlan='102'/></hardware-plan>"
                 "<hardware-plan name='b' host='esx2'><network name='web' vlan='101'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='c' host='esx1'><network name='web' vlan='101'/>"
                 "</hardware-plan>"
                 "<tenant name='acme &amp; co'><subscribe plan='a'/><subscribe plan='b'/>"
                 "<subscribe plan='c'/></tenant>" NX_PLAN_TAIL;

static char *write_file(const char *name, const char *content)
{
    char *path = nx_asprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(content, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

/* Export a bundle from sp_plan (optionally trimmed) and write it. */
static char *export_bundle(const char *plan, const char *file)
{
    struct nx_diag d;
    struct nx_model *m = nx_test_model(plan, &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    struct strbuf sb = STRBUF_INIT;
    nx_bundle_render(&sb, m, m->tenants[0], NULL);
    char *path = write_file(file, sb.buf);
    strbuf_release(&sb);
    nx_diag_release(&d);
    nx_model_free(m);
    return path;
}

static struct nx_model *tenant_model(const char *config, const char *bundle, struct nx_diag *d)
{
    struct nx_model *m = nx_model_new();
    nx_diag_init(d);
    CU_ASSERT_EQUAL(nx_plan_read_memory(m, config, strlen(config), "tenant.xml", d), 0);
    CU_ASSERT_EQUAL(m->kind, NX_KIND_TENANT);
    if (bundle)
        CU_ASSERT_EQUAL(nx_bundle_read(m, bundle, d), 0);
    if (m->n_syntax_errors == 0)
        nx_validate(m, d);
    return m;
}

static void test_bundle_roundtrip(void)
{
    char *path = export_bundle(sp_plan, "roundtrip.bundle");
    struct nx_diag d;
    struct nx_model *m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                                      "<source-host name='prod' uri='" URI "'/></netext-tenant>",
                                      path, &d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_EQUAL_FATAL(m->n_tenants, 1);
    CU_ASSERT_STRING_EQUAL(m->tenants[0]->name, "acme & co");
    CU_ASSERT_STRING_EQUAL(m->gateway.address, "gw.sp.example.com");
    CU_ASSERT_EQUAL(m->gateway.port, 7000);
    /* web@esx1 (once, though in two plans), db@esx1, web@esx2 */
    CU_ASSERT_EQUAL_FATAL(m->tside.n_nets, 3);
    CU_ASSERT_STRING_EQUAL(m->tside.nets[0].name, "web");
    CU_ASSERT_EQUAL(m->tside.nets[1].vlan, 102);
    CU_ASSERT_STRING_EQUAL(m->tside.nets[2].sp_host, "esx2");
    nx_diag_release(&d);
    nx_model_free(m);
    /* a bundle readable by others is refused */
    chmod(path, 0644);
    m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                     "<source-host name='prod' uri='" URI "'/></netext-tenant>",
                     path, &d);
    CU_ASSERT(d.n >= 1 && strstr(d.msgs[0], "chmod 600"));
    nx_diag_release(&d);
    nx_model_free(m);
    unlink(path);
    free(path);
}

static struct nx_net_usage *usage(const char *a, unsigned na, const char *b, unsigned nb, size_t *n)
{
    struct nx_net_usage *u = nx_calloc(2, sizeof(*u));
    u[0].network = nx_strdup(a);
    u[0].vms = na;
    *n = 1;
    if (b) {
        u[1].network = nx_strdup(b);
        u[1].vms = nb;
        *n = 2;
    }
    return u;
}

static size_t resolve(struct nx_model *m, struct nx_net_usage *u, size_t n, struct nx_diag *errs,
                      struct nx_diag *notes)
{
    struct nx_net_usage *arr[] = {u, u};
    size_t ns[] = {n, n};
    nx_diag_init(errs);
    nx_diag_init(notes);
    nx_tside_resolve(m, u ? arr : NULL, ns, errs, notes);
    return m->tside.n_res;
}

static void test_resolution(void)
{
    const char *one = NX_PLAN_HEAD "<gateway address='gw'/><host name='e' uri='" URI
                                   "' production-network='p' vlan-switch='v'/>"
                                   "<hardware-plan name='a' host='e'><network name='lan' "
                                   "vlan='5'/></hardware-plan><tenant name='t'>"
                                   "<subscribe plan='a'/></tenant>" NX_PLAN_TAIL;
    char *b1 = export_bundle(one, "one.bundle");
    char *b3 = export_bundle(sp_plan, "three.bundle");
    const char *auto_cfg = "<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                           "<source-host name='prod' uri='" URI "'/></netext-tenant>";
    struct nx_diag d, errs, notes;
    size_t n;

    /* default: the network most production VMs use, DHCP */
    struct nx_model *m = tenant_model(auto_cfg, b1, &d);
    struct nx_net_usage *u = usage("VM Network", 7, "Backup", 2, &n);
    CU_ASSERT_EQUAL(resolve(m, u, n, &errs, &notes), 1);
    CU_ASSERT_EQUAL(errs.n, 0);
    CU_ASSERT_STRING_EQUAL(m->tside.res[0].network, "VM Network");
    CU_ASSERT_STRING_EQUAL(m->tside.res[0].ext->name, "lan");
    CU_ASSERT_PTR_NULL(m->tside.res[0].addr);
    nx_net_usage_free(u, n);
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* a tie is an error that names the candidates */
    m = tenant_model(auto_cfg, b1, &d);
    u = usage("A", 3, "B", 3, &n);
    CU_ASSERT_EQUAL(resolve(m, u, n, &errs, &notes), 0);
    CU_ASSERT_EQUAL_FATAL(errs.n, 1);
    CU_ASSERT(strstr(errs.msgs[0], "ambiguous: 'A', 'B'") != NULL);
    nx_net_usage_free(u, n);
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* no production VM at all */
    m = tenant_model(auto_cfg, b1, &d);
    u = usage("A", 0, NULL, 0, &n);
    CU_ASSERT_EQUAL(resolve(m, u, n, &errs, &notes), 0);
    CU_ASSERT(errs.n == 1 && strstr(errs.msgs[0], "no production VM uses a network"));
    nx_net_usage_free(u, n);
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* several extended networks: matched by name; the rest reported */
    m = tenant_model(auto_cfg, b3, &d);
    u = usage("web", 4, "other", 9, &n);
    resolve(m, u, n, &errs, &notes);
    CU_ASSERT_EQUAL(m->tside.n_res, 0); /* web@esx1 and web@esx2 both match: ambiguous */
    CU_ASSERT(errs.n == 1 && strstr(errs.msgs[0], "matches 2 extended networks"));
    nx_net_usage_free(u, n);
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* custom: two production networks -> two appliances, static address, NAME@HOST */
    const char *custom = "<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                         "<source-host name='prod' uri='" URI "' folder='NetExt'/>"
                         "<appliance host='prod' production-network='LAN' extends='web@esx2'>"
                         "<static ip='10.0.0.9/24' gateway='10.0.0.1'/></appliance>"
                         "<appliance host='prod' production-network='DB' extends='db'/>"
                         "</netext-tenant>";
    m = tenant_model(custom, b3, &d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_EQUAL(resolve(m, NULL, 0, &errs, &notes), 2);
    CU_ASSERT_EQUAL(errs.n, 0);
    CU_ASSERT_STRING_EQUAL(m->tside.res[0].ext->sp_host, "esx2");
    CU_ASSERT_PTR_NOT_NULL(m->tside.res[0].addr);
    CU_ASSERT_EQUAL(m->tside.res[1].ext->vlan, 102);
    struct nx_desired *des = nx_desired_compute(m, NULL);
    CU_ASSERT_EQUAL_FATAL(des->n, 2);
    nx_payload_render_all(des, m);
    const struct nx_appliance_spec *s = des->items[0];
    CU_ASSERT_EQUAL(s->role, NX_ROLE_TENANT);
    CU_ASSERT_EQUAL(s->n_vnics, 1);
    CU_ASSERT_STRING_EQUAL(s->placement.folder, "NetExt");
    CU_ASSERT(strncmp(s->name, "netext-t-acme & co-", 19) == 0);
    CU_ASSERT(strstr(s->payload, "role=\"tenant\"") && strstr(s->payload, "<extends"));
    nx_desired_free(des);
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* custom with an unknown or ambiguous extended network */
    m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                     "<source-host name='prod' uri='" URI "'/>"
                     "<appliance host='prod' production-network='LAN' extends='web'/>"
                     "<appliance host='prod' production-network='X' extends='nope'/>"
                     "<appliance host='nohost' production-network='Y'/>"
                     "</netext-tenant>",
                     b3, &d);
    CU_ASSERT_EQUAL(d.n, 3);
    CU_ASSERT(d.n == 3 && strstr(d.msgs[0], "say which with NAME@SPHOST") &&
              strstr(d.msgs[1], "no such network") && strstr(d.msgs[2], "unknown source host"));
    nx_diag_release(&d);
    nx_model_free(m);

    /* two production networks may never be bridged into one extended network */
    m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                     "<source-host name='prod' uri='" URI "'/>"
                     "<appliance host='prod' production-network='LAN'/>"
                     "<appliance host='prod' production-network='DB'/>"
                     "</netext-tenant>",
                     b1, &d);
    CU_ASSERT_EQUAL(resolve(m, NULL, 0, &errs, &notes), 1);
    CU_ASSERT(errs.n == 1 && strstr(errs.msgs[0], "would be bridged to two production networks"));
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* two appliances may not get one name: the same production network name
     * on two source hosts, or names equal once sanitised ("a b", "a_b") */
    m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                     "<source-host name='h1' uri='" URI "'/><source-host name='h2' uri='" URI "'/>"
                     "<appliance host='h1' production-network='LAN' extends='web@esx1'/>"
                     "<appliance host='h2' production-network='LAN' extends='web@esx2'/>"
                     "<appliance host='h2' production-network='a b' extends='db'/>"
                     "</netext-tenant>",
                     b3, &d);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_EQUAL(resolve(m, NULL, 0, &errs, &notes), 2);
    CU_ASSERT(errs.n == 1 &&
              strstr(errs.msgs[0], "production network 'LAN' on host 'h2': appliance name "
                                   "'netext-t-acme & co-LAN' is also the name of the appliance "
                                   "for production network 'LAN' on host 'h1' (tenant.xml:1)"));
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);
    m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                     "<source-host name='prod' uri='" URI "'/>"
                     "<appliance host='prod' production-network='a b' extends='web@esx1'/>"
                     "<appliance host='prod' production-network='a_b' extends='db'/>"
                     "</netext-tenant>",
                     b3, &d);
    CU_ASSERT_EQUAL(resolve(m, NULL, 0, &errs, &notes), 1);
    CU_ASSERT(errs.n == 1 && strstr(errs.msgs[0], "appliance name 'netext-t-acme & co-a_b'"));
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);

    /* omitted */
    m = tenant_model("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                     "<source-host name='prod' uri='" URI "'/><no-appliances/></netext-tenant>",
                     b3, &d);
    CU_ASSERT_EQUAL(resolve(m, NULL, 0, &errs, &notes), 0);
    CU_ASSERT(errs.n == 0 && notes.n == 1 && strstr(notes.msgs[0], "omitted"));
    nx_diag_release(&errs);
    nx_diag_release(&notes);
    nx_diag_release(&d);
    nx_model_free(m);
    unlink(b1);
    unlink(b3);
    free(b1);
    free(b3);
}

/* ---- on the test driver --------------------------------------------------- */

static long run_model(struct nx_model *m, enum nx_role role, const char *const *tenants,
                      unsigned jobs, int *code)
{
    struct nx_run_opts o = {.role = role, .tenants = tenants, .jobs = jobs};
    struct nx_run r;
    *code = nx_run_execute(m, &o, &r);
    long changes = (long)r.n_changes;
    if (*code && r.problems.n)
        fprintf(stderr, "    | %s\n", r.problems.msgs[0]);
    nx_run_release(&r);
    return changes;
}

static long rescan(const char *config, const char *bundle, int *code)
{
    struct nx_diag d;
    struct nx_model *m = tenant_model(config, bundle, &d);
    CU_ASSERT_EQUAL(d.n, 0);
    long c = run_model(m, NX_ROLE_TENANT, NULL, 1, code);
    nx_diag_release(&d);
    nx_model_free(m);
    return c;
}

static int count_prefix(const char *prefix)
{
    virDomainPtr *doms;
    int n = virConnectListAllDomains(keep, &doms, 0), c = 0;
    for (int i = 0; i < n; i++) {
        c += strncmp(virDomainGetName(doms[i]), prefix, strlen(prefix)) == 0;
        virDomainFree(doms[i]);
    }
    free(doms);
    return c;
}

static void test_rescan(void)
{
    /* production VMs on the tenant's source host: 3 on LAN, 1 on DB */
    const char *vms[] = {"LAN", "LAN", "LAN", "DB"};
    for (size_t i = 0; i < 4; i++) {
        char xml[512];
        snprintf(xml, sizeof(xml),
                 "<domain type='test'><name>prodvm%zu</name><memory>65536</memory>"
                 "<os><type>hvm</type></os><devices><interface type='network'>"
                 "<source network='%s'/></interface></devices></domain>",
                 i, vms[i]);
        virDomainPtr d = virDomainDefineXML(keep, xml);
        CU_ASSERT_PTR_NOT_NULL(d);
        if (d)
            virDomainFree(d);
    }
    const char *one = NX_PLAN_HEAD "<gateway address='gw'/><host name='e' uri='" URI
                                   "' production-network='p' vlan-switch='v'/>"
                                   "<hardware-plan name='a' host='e'><network name='lan' "
                                   "vlan='5'/></hardware-plan><tenant name='initech'>"
                                   "<subscribe plan='a'/></tenant>" NX_PLAN_TAIL;
    const char *two =
        NX_PLAN_HEAD "<gateway address='gw'/><host name='e' uri='" URI
                     "' production-network='p' vlan-switch='v'/>"
                     "<hardware-plan name='a' host='e'><network name='LAN' "
                     "vlan='5'/><network name='DB' vlan='6'/></hardware-plan>"
                     "<tenant name='initech'><subscribe plan='a'/></tenant>" NX_PLAN_TAIL;
    char *b1 = export_bundle(one, "initech.bundle");
    const char *cfg = "<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                      "<source-host name='src' uri='" URI "'/></netext-tenant>";
    int code;
    /* default: detected network LAN (3 VMs), DHCP: create + power on */
    CU_ASSERT_EQUAL(rescan(cfg, b1, &code), 2);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    virDomainPtr d = virDomainLookupByName(keep, "netext-t-initech-LAN");
    CU_ASSERT_PTR_NOT_NULL(d);
    if (d) {
        char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        CU_ASSERT(strstr(xml, "net='LAN'") || strstr(xml, "net=\"LAN\""));
        CU_ASSERT(strstr(xml, "<source network='LAN'/>") != NULL);
        free(xml);
        virDomainFree(d);
    }
    /* unchanged: zero changing calls */
    CU_ASSERT_EQUAL(rescan(cfg, b1, &code), 0);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    /* the SP extends a second network named like a production network: one
     * more appliance; the first is kept (its payload changes: extends by name) */
    free(b1);
    b1 = export_bundle(two, "initech.bundle");
    long c = rescan(cfg, b1, &code);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    CU_ASSERT(c >= 2);
    CU_ASSERT_EQUAL(count_prefix("netext-t-initech-"), 2);
    CU_ASSERT_EQUAL(rescan(cfg, b1, &code), 0);
    /* the network goes away again: its appliance is removed */
    free(b1);
    b1 = export_bundle(one, "initech.bundle");
    rescan(cfg, b1, &code);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    CU_ASSERT_EQUAL(count_prefix("netext-t-initech-"), 1);
    /* omitted: the tenant-side appliance is removed */
    CU_ASSERT_EQUAL(rescan("<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                           "<source-host name='src' uri='" URI "'/><no-appliances/>"
                           "</netext-tenant>",
                           b1, &code),
                    1);
    CU_ASSERT_EQUAL(count_prefix("netext-t-initech-"), 0);
    unlink(b1);
    free(b1);
}

/* 200 tenants: 5 invalid (shared VLAN), 5 failing (a foreign domain holds
 * their appliance's name), 190 deployed; the re-run changes nothing. */
static void test_batch(void)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, NX_PLAN_HEAD "<gateway address='gw'/>");
    for (int h = 0; h < 4; h++)
        strbuf_addf(&sb,
                    "<host name='b%d' uri='" URI "' production-network='prod' "
                    "vlan-switch='v'/>",
                    h);
    for (int i = 0; i < 200; i++) {
        int h = i % 4, vlan = 100 + i / 4;
        if (i % 40 == 1)
            vlan = 100 + (i - 1) / 4; /* the VLAN of tenant i-1... on another host: fine */
        if (i % 40 == 5)
            vlan = 100 + (i - 4) / 4; /* tenant i-4 is on the same host: refused */
        strbuf_addf(&sb,
                    "<hardware-plan name='p%d' host='b%d'><network name='n' vlan='%d'/>"
                    "</hardware-plan><tenant name='t%03d'><subscribe plan='p%d'/></tenant>",
                    i, h, vlan, i, i);
    }
    strbuf_addstr(&sb, NX_PLAN_TAIL);
    struct nx_diag d;
    struct nx_model *m = nx_test_model(sb.buf, &d);
    CU_ASSERT_EQUAL(d.n, 5);
    CU_ASSERT_EQUAL(m->n_global_errors, 0);
    const char **valid = nx_calloc(201, sizeof(*valid));
    size_t nv = 0;
    for (size_t i = 0; i < m->n_tenants; i++)
        if (nx_tenant_valid(m->tenants[i]))
            valid[nv++] = m->tenants[i]->name;
    CU_ASSERT_EQUAL(nv, 195);
    /* foreign domains squatting on 5 appliance names */
    for (int i = 10; i < 200; i += 40) {
        char xml[256];
        snprintf(xml, sizeof(xml),
                 "<domain type='test'><name>netext-t%03d-b%d</name><memory>65536</memory>"
                 "<os><type>hvm</type></os></domain>",
                 i, i % 4);
        virDomainPtr dom = virDomainDefineXML(keep, xml);
        CU_ASSERT_PTR_NOT_NULL(dom);
        if (dom)
            virDomainFree(dom);
    }
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .tenants = valid, .jobs = 4};
    struct nx_run r;
    int code = nx_run_execute(m, &o, &r);
    CU_ASSERT_EQUAL(code, NX_EX_FAILED);
    size_t changed = 0, failed = 0, other = 0;
    for (size_t i = 0; i < m->n_tenants; i++) {
        if (!nx_tenant_valid(m->tenants[i]))
            continue;
        enum nx_tenant_result tr = nx_run_tenant_result(&r, i);
        changed += tr == NX_TR_CHANGED;
        failed += tr == NX_TR_FAILED;
        other += tr != NX_TR_CHANGED && tr != NX_TR_FAILED;
    }
    CU_ASSERT_EQUAL(changed, 190);
    CU_ASSERT_EQUAL(failed, 5);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT_EQUAL(r.tenants_done, 195);
    nx_run_release(&r);
    CU_ASSERT_EQUAL(count_prefix("netext-t"), 190 + 5 /* squatters */);
    /* re-run: only the failing ones are tried again */
    code = nx_run_execute(m, &o, &r);
    CU_ASSERT_EQUAL(code, NX_EX_FAILED);
    CU_ASSERT_EQUAL(r.n_changes, 5);
    nx_run_release(&r);
    free(valid);
    strbuf_release(&sb);
    nx_diag_release(&d);
    nx_model_free(m);
}

static void test_locks(void)
{
    struct nx_lock a = NX_LOCK_INIT, b = NX_LOCK_INIT, c = NX_LOCK_INIT;
    char *dir = nx_asprintf("%s/state", tmpdir);
    CU_ASSERT_EQUAL(nx_lock_acquire(&a, dir, "provider/acme", false, 0), 0);
    CU_ASSERT_EQUAL(nx_lock_acquire(&b, dir, "provider/acme", false, 0), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_TEMPFAIL);
    CU_ASSERT(strstr(nx_error_msg(), "provider/acme") && strstr(nx_error_msg(), "pid "));
    CU_ASSERT_EQUAL(nx_lock_acquire(&c, dir, "provider/globex", false, 0), 0);
    nx_lock_release(&c);
    /* shared locks coexist; an exclusive one waits for them */
    CU_ASSERT_EQUAL(nx_lock_acquire(&b, dir, "side", true, 0), 0);
    CU_ASSERT_EQUAL(nx_lock_acquire(&c, dir, "side", true, 0), 0);
    struct nx_lock x = NX_LOCK_INIT;
    CU_ASSERT_EQUAL(nx_lock_acquire(&x, dir, "side", false, 1), -1); /* waited 1 s */
    nx_lock_release(&b);
    nx_lock_release(&c);
    CU_ASSERT_EQUAL(nx_lock_acquire(&x, dir, "side", false, 0), 0);
    nx_lock_release(&x);
    nx_lock_release(&a);
    nx_lock_release(&a); /* twice is fine */
    CU_ASSERT_EQUAL(nx_lock_acquire(&b, dir, "provider/acme", false, 0), 0);
    nx_lock_release(&b);
    struct stat st;
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    free(dir);
}

static int suite_init(void)
{
    if (!mkdtemp(tmpdir))
        return -1;
    keep = virConnectOpen(URI);
    if (!keep)
        return -1;
    const char *nets[] = {"prod", "v", "LAN", "DB"};
    for (size_t i = 0; i < NX_ARRAY_SIZE(nets); i++) {
        char xml[256];
        snprintf(xml, sizeof(xml),
                 "<network><name>%s</name><forward mode='bridge'/><bridge name='br%zu'/>"
                 "<virtualport type='openvswitch'/></network>",
                 nets[i], i);
        virNetworkPtr n = virNetworkDefineXML(keep, xml);
        if (!n)
            return -1;
        virNetworkFree(n);
    }
    return 0;
}

static int suite_clean(void)
{
    char *cmd = nx_asprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    virConnectClose(keep);
    return rc != 0;
}

static CU_TestInfo tests[] = {
    {"bundle: export and read back; must be private", test_bundle_roundtrip},
    {"resolution: detection, ties, names, custom, omitted", test_resolution},
    {"rescan: default appliance, no-op, add, remove, omit", test_rescan},
    {"batch: 200 tenants, 5 invalid, 5 failing, re-run", test_batch},
    {"locks: contention, shared/exclusive, wait", test_locks},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    virSetErrorFunc(NULL, NULL);
    return nx_test_run("tenant side and batch", suite_init, suite_clean, tests);
}
