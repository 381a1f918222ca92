/* test-plan.c: reading netext-plan(5) files and validating them.
 * The bad-input corpus lives in tests/data/bad: NAME.xml with NAME.expect
 * holding "LINE: expected message" (LINE 0: any line). */
#include "config.h"

#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static struct nx_model *read_files(const char *const *paths, struct nx_diag *diag)
{
    struct nx_model *m = nx_model_new();
    nx_diag_init(diag);
    for (; *paths; paths++)
        CU_ASSERT_EQUAL(nx_plan_read_path(m, *paths, diag), 0);
    if (m->n_syntax_errors == 0)
        nx_validate(m, diag);
    return m;
}

static void dump(const struct nx_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "    | %s\n", d->msgs[i]);
}

static void test_examples(void)
{
    const char *names[] = {"examples/acme.xml", "examples/seed.xml"};
    for (size_t i = 0; i < 2; i++) {
        char *path = nx_asprintf("%s/%s", nx_test_srcdir(), names[i]);
        const char *paths[] = {path, NULL};
        struct nx_diag d;
        struct nx_model *m = read_files(paths, &d);
        CU_ASSERT_EQUAL(d.n, 0);
        if (d.n)
            dump(&d);
        CU_ASSERT(m->n_tenants >= 1);
        nx_diag_release(&d);
        nx_model_free(m);
        free(path);
    }
}

static void test_values(void)
{
    struct nx_diag d;
    struct nx_model *m = nx_test_model(
        NX_PLAN_HEAD
        "<gateway address='198.51.100.7' port='443'/>"
        "<defaults folder='F' resource-pool='RP' power='off'/>"
        "<host name='h' uri='test:///default' target='esx-01.sp.local' "
        "production-network='prod' production-vlan='5' vlan-switch='dvs' datastore='ds1'/>"
        "<hardware-plan name='p' host='h'><network name='n1' vlan='10'/>"
        "<network name='n2' vlan='11'/></hardware-plan>"
        "<tenant name='T &lt;&amp;&quot;&apos;&gt; Ü'><subscribe plan='p'/>"
        "<appliance host='h'><static ip='192.0.2.9/25' gateway='192.0.2.1'>"
        "<dns>192.0.2.53</dns><dns>192.0.2.54</dns></static></appliance>"
        "<public-ip-rule public='203.0.113.1:8443' replica='10.0.0.1:443' protocol='udp'/>"
        "</tenant>" NX_PLAN_TAIL,
        &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    CU_ASSERT_STRING_EQUAL(m->gateway.address, "198.51.100.7");
    CU_ASSERT_EQUAL(m->gateway.port, 443);
    CU_ASSERT_FALSE(m->power_on);
    CU_ASSERT_STRING_EQUAL(m->defaults.folder, "F");
    struct nx_host *h = nx_model_host(m, "h");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_STRING_EQUAL(h->target, "esx-01.sp.local");
    CU_ASSERT_EQUAL(h->production_vlan, 5);
    CU_ASSERT_STRING_EQUAL(h->placement.datastore, "ds1");
    struct nx_tenant *t = nx_model_tenant(m, "T <&\"'> Ü");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->n_appliances, 1);
    struct nx_address *a = &t->appliances[0].addr;
    CU_ASSERT_EQUAL(a->mode, NX_ADDR_STATIC);
    CU_ASSERT_EQUAL(a->ip, 0xc0000209);
    CU_ASSERT_EQUAL(a->prefix, 25);
    CU_ASSERT_EQUAL(a->n_dns, 2);
    CU_ASSERT_EQUAL(t->n_rules, 1);
    CU_ASSERT_EQUAL(t->rules[0].proto, NX_PROTO_UDP);
    CU_ASSERT_EQUAL(t->rules[0].public_port, 8443);
    CU_ASSERT_EQUAL(t->rules[0].replica_port, 443);
    CU_ASSERT_PTR_EQUAL(t->subs[0].plan, nx_model_plan(m, "p"));
    nx_diag_release(&d);
    nx_model_free(m);
}

static char *slurp_line(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[1024];
    char *r = fgets(buf, sizeof(buf), f) ? nx_strdup(buf) : NULL;
    fclose(f);
    if (r && strchr(r, '\n'))
        *strchr(r, '\n') = '\0';
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every bad file gets its expected "file:line: message", and nothing else
 * crashes or passes. */
static void test_bad_corpus(void)
{
    char *dir = nx_asprintf("%s/tests/data/bad", nx_test_srcdir());
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char **names = NULL;
    size_t n = 0, alloc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 4 && !strcmp(de->d_name + l - 4, ".xml")) {
            NX_GROW(names, alloc, n + 1);
            names[n++] = nx_strndup(de->d_name, l - 4);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    CU_ASSERT(n >= 30);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        char *xml = nx_asprintf("%s/%s.xml", dir, names[i]);
        char *exp = nx_asprintf("%s/%s.expect", dir, names[i]);
        char *want = slurp_line(exp);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        unsigned long line = strtoul(want, NULL, 10);
        const char *msg = strstr(want, ": ") + 2;
        const char *paths[] = {xml, NULL};
        struct nx_diag diag;
        struct nx_model *m = read_files(paths, &diag);
        char *prefix = line ? nx_asprintf("%s:%lu: ", xml, line) : nx_asprintf("%s:", xml);
        bool found = false;
        for (size_t k = 0; k < diag.n && !found; k++)
            found = !strncmp(diag.msgs[k], prefix, strlen(prefix)) && strstr(diag.msgs[k], msg);
        if (!found) {
            failures++;
            fprintf(stderr, "\n  %s: expected \"%s%s\", got %zu message(s):\n", names[i], prefix,
                    msg, diag.n);
            dump(&diag);
        }
        CU_ASSERT(found);
        free(prefix);
        nx_diag_release(&diag);
        nx_model_free(m);
        free(want);
        free(xml);
        free(exp);
        free(names[i]);
    }
    free(names);
    free(dir);
    CU_ASSERT_EQUAL(failures, 0);
}

/* Infrastructure in one file and tenants in another, read as a directory;
 * a duplicate across files names both places. */
static void test_directory(void)
{
    char tmpl[] = "/tmp/nx-plan-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char *a = nx_asprintf("%s/00-infra.xml", dir), *b = nx_asprintf("%s/10-acme.xml", dir);
    char *c = nx_asprintf("%s/README", dir);
    FILE *f = fopen(a, "w");
    fputs(NX_PLAN_HEAD "<gateway address='gw'/><host name='h' uri='test:///default' "
                       "production-network='p' vlan-switch='v'/>"
                       "<hardware-plan name='p' host='h'><network name='n' vlan='9'/>"
                       "</hardware-plan>" NX_PLAN_TAIL,
          f);
    fclose(f);
    f = fopen(b, "w");
    fputs(NX_PLAN_HEAD "<tenant name='acme'><subscribe plan='p'/></tenant>" NX_PLAN_TAIL, f);
    fclose(f);
    f = fopen(c, "w"); /* not *.xml: ignored */
    fputs("not a plan", f);
    fclose(f);
    const char *paths[] = {dir, NULL};
    struct nx_diag d;
    struct nx_model *m = read_files(paths, &d);
    CU_ASSERT_EQUAL(d.n, 0);
    if (d.n)
        dump(&d);
    CU_ASSERT_EQUAL(m->n_tenants, 1);
    CU_ASSERT_PTR_NOT_NULL(nx_model_tenant(m, "acme"));
    nx_diag_release(&d);
    nx_model_free(m);
    /* the same directory twice: every name is a duplicate of the first read */
    const char *twice[] = {dir, dir, NULL};
    m = read_files(twice, &d);
    bool dup = false;
    for (size_t i = 0; i < d.n; i++)
        dup |= strstr(d.msgs[i], "duplicate name (first at") != NULL;
    CU_ASSERT(dup);
    nx_diag_release(&d);
    nx_model_free(m);
    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
    free(a);
    free(b);
    free(c);
}

static void test_missing_file(void)
{
    struct nx_model *m = nx_model_new();
    struct nx_diag d;
    nx_diag_init(&d);
    CU_ASSERT_EQUAL(nx_plan_read_path(m, "/nonexistent/plan.xml", &d), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_NOINPUT);
    CU_ASSERT(strstr(nx_error_msg(), "/nonexistent/plan.xml") != NULL);
    nx_diag_release(&d);
    nx_model_free(m);
}

/* Many problems in one file are all reported, each with its own line. */
static void test_all_errors_reported(void)
{
    struct nx_diag d;
    struct nx_model *m = nx_test_model(
        NX_PLAN_HEAD "\n<gateway address='gw'/>\n"
                     "<host name='h' uri='test:///default' production-network='p'/>\n"
                     "<hardware-plan name='a' host='nope'>\n"
                     "<network name='n' vlan='5000'/>\n"
                     "</hardware-plan>\n"
                     "<tenant name='t'><subscribe plan='zz'/></tenant>\n" NX_PLAN_TAIL,
        &d);
    CU_ASSERT_EQUAL(d.n, 3);
    if (d.n != 3)
        dump(&d);
    bool l5 = false, l4 = false, l7 = false;
    for (size_t i = 0; i < d.n; i++) {
        l5 |= !strncmp(d.msgs[i], "test.xml:5: ", 12) && strstr(d.msgs[i], "5000");
        l4 |= !strncmp(d.msgs[i], "test.xml:4: ", 12) && strstr(d.msgs[i], "unknown host");
        l7 |= !strncmp(d.msgs[i], "test.xml:7: ", 12) && strstr(d.msgs[i], "unknown hardware");
    }
    CU_ASSERT(l4 && l5 && l7);
    nx_diag_release(&d);
    nx_model_free(m);
}

static CU_TestInfo tests[] = {
    {"shipped examples are valid", test_examples},
    {"values are read correctly", test_values},
    {"bad-input corpus: each gets its file:line: message", test_bad_corpus},
    {"a directory of plan files", test_directory},
    {"a missing plan file", test_missing_file},
    {"every problem is reported with its line", test_all_errors_reported},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("plan", tests)
