/* test-payload.c: the versioned payload document, its PKI hook and its decoder. */
#include "config.h"

#include "testutil.h"

#include "payload.h"
#include "payload_parse.h"
#include "pki.h"
#include "strbuf.h"
#include "util.h"
#include "xml.h"

#include <unistd.h>

static const char plan[] =
    NX_PLAN_HEAD "<gateway address='gw.example.com' port='6180'/>"
                 "<host name='esx1' uri='test:///default' production-network='prod' "
                 "vlan-switch='vlans'/>"
                 "<host name='esx2' uri='test:///default' production-network='prod' "
                 "vlan-switch='vlans'/>"
                 "<hardware-plan name='small' host='esx1'><network name='web &amp; &quot;x&quot;' "
                 "vlan='101'/><network name='db' vlan='102'/></hardware-plan>"
                 "<hardware-plan name='other' host='esx1'><network name='lan' vlan='300'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='far' host='esx2'><network name='lan2' vlan='301'/>"
                 "</hardware-plan>"
                 "<tenant name='acme'><subscribe plan='small'/>"
                 "<appliance host='esx1'><static ip='192.0.2.10/24' gateway='192.0.2.1'>"
                 "<dns>192.0.2.53</dns></static></appliance>"
                 "<public-ip-rule public='203.0.113.10:443' replica='10.1.0.5:443'/>"
                 "<public-ip-rule public='203.0.113.10:2222' replica='10.1.0.5:22'/>"
                 "</tenant>"
                 "<tenant name='globex'><subscribe plan='other'/><subscribe plan='far'/>"
                 "</tenant>" NX_PLAN_TAIL;

static char root[] = "/tmp/nx-test-payload.XXXXXX";
static struct nx_model *model;

static int suite_init(void)
{
    struct nx_diag diag;
    if (!mkdtemp(root))
        return 1;
    model = nx_test_model(plan, &diag);
    int bad = !model || diag.n;
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.msgs[i]);
    nx_diag_release(&diag);
    return bad;
}

static int suite_clean(void)
{
    char *cmd = nx_asprintf("rm -rf '%s'", root);
    int rc = system(cmd);
    free(cmd);
    nx_model_free(model);
    return rc != 0;
}

static struct nx_appliance_spec *find(struct nx_desired *d, const char *tenant, const char *host)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->items[i]->tenant->name, tenant) && !strcmp(d->items[i]->host->name, host))
            return d->items[i];
    return NULL;
}

static char *state_dir(const char *sub)
{
    return nx_asprintf("%s/%s", root, sub);
}

static void test_round_trip_provider(void)
{
    struct nx_desired *d = nx_desired_compute(model, NULL);
    nx_payload_render_all(d, model); /* without credentials first */
    struct nx_pki *pki;
    char *dir = state_dir("rt");
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir, 0, &pki), 0);
    char before[65];
    struct nx_appliance_spec *s = find(d, "acme", "esx1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memcpy(before, s->digest, sizeof(before));
    CU_ASSERT_PTR_NULL(strstr(s->payload, "PRIVATE KEY"));
    CU_ASSERT_EQUAL_FATAL(nx_payload_attach_pki(d, model, pki, NULL), 0);
    CU_ASSERT_STRING_NOT_EQUAL(before, s->digest);
    char check[65];
    nx_sha256_hex(s->payload, s->payload_len, check);
    CU_ASSERT_STRING_EQUAL(check, s->digest);
    CU_ASSERT(strstr(s->payload, "version=\"2\"") != NULL);

    struct nx_payload p;
    CU_ASSERT_EQUAL_FATAL(nx_payload_parse(s->payload, s->payload_len, "p.xml", &p), 0);
    CU_ASSERT_EQUAL(p.version, NX_PAYLOAD_VERSION);
    CU_ASSERT_EQUAL(p.role, NX_ROLE_PROVIDER);
    CU_ASSERT_STRING_EQUAL(p.tenant, "acme");
    CU_ASSERT_STRING_EQUAL(p.host, "esx1");
    CU_ASSERT_STRING_EQUAL(p.appliance, s->name);
    CU_ASSERT_STRING_EQUAL(p.gw_address, "gw.example.com");
    CU_ASSERT_EQUAL(p.gw_port, 6180);
    CU_ASSERT_STRING_EQUAL(p.prod_network, "prod");
    CU_ASSERT_EQUAL(memcmp(p.prod_mac, s->vnics[0].mac, 6), 0);
    CU_ASSERT_EQUAL(p.prod_addr.mode, NX_ADDR_STATIC);
    CU_ASSERT_EQUAL(p.prod_addr.prefix, 24);
    CU_ASSERT_EQUAL(p.prod_addr.ip, 0xC000020A);
    CU_ASSERT_EQUAL(p.prod_addr.gateway, 0xC0000201);
    CU_ASSERT_EQUAL(p.prod_addr.n_dns, 1);
    CU_ASSERT_EQUAL_FATAL(p.n_nets, s->n_vnics - 1);
    for (size_t i = 0; i < p.n_nets; i++) {
        CU_ASSERT_STRING_EQUAL(p.nets[i].name, s->vnics[i + 1].label);
        CU_ASSERT_EQUAL(p.nets[i].vlan, s->vnics[i + 1].vlan);
        CU_ASSERT(p.nets[i].has_mac);
        CU_ASSERT_EQUAL(memcmp(p.nets[i].mac, s->vnics[i + 1].mac, 6), 0);
        CU_ASSERT_EQUAL(p.nets[i].port, 6180 + p.nets[i].vlan);
    }
    CU_ASSERT_STRING_EQUAL(p.nets[0].name, "web & \"x\""); /* escaped and back */
    CU_ASSERT_EQUAL_FATAL(p.n_rules, 2);
    CU_ASSERT_EQUAL(p.rules[0].public_ip, 0xCB00710A);
    CU_ASSERT_EQUAL(p.rules[0].public_port, 443);
    CU_ASSERT_EQUAL(p.rules[1].public_port, 2222);
    CU_ASSERT_EQUAL(p.rules[1].replica_port, 22);
    CU_ASSERT_FALSE(p.pki_pending);
    CU_ASSERT_EQUAL(nx_pki_verify(p.ca_pem, p.cert_pem, NX_PKI_SERVER, "acme"), 0);
    struct nx_pki_cred c;
    CU_ASSERT_EQUAL(nx_pki_get(pki, "acme", NX_PKI_SERVER, "esx1", &c), 0);
    CU_ASSERT_STRING_EQUAL(c.key_pem, p.key_pem);
    nx_pki_cred_release(&c);
    nx_payload_release(&p);

    /* canonical: the same inputs give the same bytes */
    struct nx_desired *d2 = nx_desired_compute(model, NULL);
    CU_ASSERT_EQUAL(nx_payload_attach_pki(d2, model, pki, NULL), 0);
    CU_ASSERT_STRING_EQUAL(find(d2, "acme", "esx1")->digest, s->digest);
    /* rotation changes the payload (the next run updates the appliance) */
    CU_ASSERT(nx_pki_rotate(pki, "acme", false) > 0);
    struct nx_desired *d3 = nx_desired_compute(model, NULL);
    CU_ASSERT_EQUAL(nx_payload_attach_pki(d3, model, pki, NULL), 0);
    CU_ASSERT_STRING_NOT_EQUAL(find(d3, "acme", "esx1")->digest, s->digest);
    CU_ASSERT_STRING_EQUAL(find(d3, "globex", "esx1")->digest, find(d2, "globex", "esx1")->digest);
    nx_desired_free(d2);
    nx_desired_free(d3);
    nx_pki_close(pki);
    nx_desired_free(d);
    free(dir);
}

static void test_tenant_isolation(void)
{
    struct nx_desired *d = nx_desired_compute(model, NULL);
    struct nx_pki *pki;
    char *dir = state_dir("iso");
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir, 0, &pki), 0);
    CU_ASSERT_EQUAL_FATAL(nx_payload_attach_pki(d, model, pki, NULL), 0);
    struct nx_appliance_spec *a = find(d, "acme", "esx1"), *g = find(d, "globex", "esx1"),
                             *g2 = find(d, "globex", "esx2");
    struct nx_payload pa, pg, pg2;
    CU_ASSERT_EQUAL_FATAL(nx_payload_parse(a->payload, a->payload_len, "a", &pa), 0);
    CU_ASSERT_EQUAL_FATAL(nx_payload_parse(g->payload, g->payload_len, "g", &pg), 0);
    CU_ASSERT_EQUAL_FATAL(nx_payload_parse(g2->payload, g2->payload_len, "g2", &pg2), 0);
    /* no key of one tenant in another's payload */
    CU_ASSERT_PTR_NULL(strstr(g->payload, pa.key_pem));
    CU_ASSERT_PTR_NULL(strstr(g2->payload, pa.key_pem));
    CU_ASSERT_PTR_NULL(strstr(a->payload, pg.key_pem));
    CU_ASSERT_PTR_NULL(strstr(a->payload, pg2.key_pem));
    CU_ASSERT_PTR_NULL(strstr(a->payload, pg.ca_pem));
    /* one CA per tenant; one server certificate per appliance */
    CU_ASSERT_STRING_EQUAL(pg.ca_pem, pg2.ca_pem);
    CU_ASSERT_STRING_NOT_EQUAL(pg.cert_pem, pg2.cert_pem);
    CU_ASSERT_EQUAL(nx_pki_verify(pa.ca_pem, pg.cert_pem, NX_PKI_SERVER, "globex"), -1);
    CU_ASSERT_EQUAL(nx_pki_verify(pg.ca_pem, pa.cert_pem, NX_PKI_SERVER, "acme"), -1);
    /* rules are the tenant's own only */
    CU_ASSERT_EQUAL(pg.n_rules, 0);
    nx_payload_release(&pa);
    nx_payload_release(&pg);
    nx_payload_release(&pg2);

    /* scope: only the named tenant gets material */
    struct nx_desired *d2 = nx_desired_compute(model, NULL);
    nx_payload_render_all(d2, model); /* without credentials first */
    const char *only[] = {"globex", NULL};
    char *dir2 = state_dir("scope");
    struct nx_pki *pki2;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir2, 0, &pki2), 0);
    CU_ASSERT_EQUAL(nx_payload_attach_pki(d2, model, pki2, only), 0);
    CU_ASSERT_PTR_NULL(strstr(find(d2, "acme", "esx1")->payload, "<pki"));
    CU_ASSERT(strstr(find(d2, "globex", "esx1")->payload, "PRIVATE KEY") != NULL);
    char *acme_dir = nx_asprintf("%s/pki/acme", dir2);
    CU_ASSERT_NOT_EQUAL(access(acme_dir, F_OK), 0);
    free(acme_dir);
    nx_pki_close(pki2);
    nx_desired_free(d2);
    free(dir2);
    nx_pki_close(pki);
    nx_desired_free(d);
    free(dir);
}

static void test_dry_run(void)
{
    /* read-only (dry run) on an empty state: pending, never a key, digest differs */
    struct nx_desired *d = nx_desired_compute(model, NULL);
    struct nx_pki *ro, *rw;
    char *dir = state_dir("dry");
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir, NX_PKI_READONLY, &ro), 0);
    CU_ASSERT_EQUAL_FATAL(nx_payload_attach_pki(d, model, ro, NULL), 0);
    nx_pki_close(ro);
    struct nx_appliance_spec *s = find(d, "acme", "esx1");
    CU_ASSERT(strstr(s->payload, "<pki pending=\"true\"/>") != NULL);
    CU_ASSERT_PTR_NULL(strstr(s->payload, "PRIVATE KEY"));
    CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0);
    struct nx_payload p;
    CU_ASSERT_EQUAL(nx_payload_parse(s->payload, s->payload_len, "dry", &p), 0);
    CU_ASSERT(p.pki_pending);
    nx_payload_release(&p);
    /* after a real run, a dry run computes the very same digest */
    struct nx_desired *real = nx_desired_compute(model, NULL),
                      *again = nx_desired_compute(model, NULL);
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir, 0, &rw), 0);
    CU_ASSERT_EQUAL(nx_payload_attach_pki(real, model, rw, NULL), 0);
    nx_pki_close(rw);
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir, NX_PKI_READONLY, &ro), 0);
    CU_ASSERT_EQUAL(nx_payload_attach_pki(again, model, ro, NULL), 0);
    nx_pki_close(ro);
    CU_ASSERT_STRING_EQUAL(find(real, "acme", "esx1")->digest, find(again, "acme", "esx1")->digest);
    CU_ASSERT_STRING_NOT_EQUAL(find(real, "acme", "esx1")->digest, s->digest);
    nx_desired_free(real);
    nx_desired_free(again);
    nx_desired_free(d);
    free(dir);
}

static void test_tenant_role(void)
{
    /* a tenant-side spec, built by hand (the shape desired.c produces) */
    struct nx_desired *d = nx_desired_compute(model, NULL);
    struct nx_appliance_spec *src = find(d, "acme", "esx1");
    struct nx_appliance_spec t = *src;
    struct nx_extended_net ext[2] = {{(char *)"web", 101, (char *)"esx1"},
                                     {(char *)"db", 102, (char *)"esx1"}};
    t.role = NX_ROLE_TENANT;
    t.name = (char *)"netext-t-acme-src1-lan";
    t.net = (char *)"lan";
    t.n_vnics = 1;
    t.addr = NULL;
    t.extends = ext;
    t.n_extends = 2;
    t.payload = NULL;
    struct nx_pki *pki;
    char *dir = state_dir("tenant");
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(dir, 0, &pki), 0);
    struct nx_pki_cred c;
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(pki, "acme", NX_PKI_CLIENT, t.name, &c), 0);
    nx_payload_attach_cred(&t, model, &c);
    struct nx_payload p;
    CU_ASSERT_EQUAL_FATAL(nx_payload_parse(t.payload, t.payload_len, "t", &p), 0);
    CU_ASSERT_EQUAL(p.role, NX_ROLE_TENANT);
    CU_ASSERT_STRING_EQUAL(p.network, "lan");
    CU_ASSERT_EQUAL(p.prod_addr.mode, NX_ADDR_DHCP);
    CU_ASSERT_EQUAL_FATAL(p.n_nets, 2);
    CU_ASSERT_STRING_EQUAL(p.nets[1].sp_host, "esx1");
    CU_ASSERT_EQUAL(p.nets[1].port, 6282);
    CU_ASSERT_FALSE(p.nets[1].has_mac);
    CU_ASSERT_EQUAL(p.n_rules, 0); /* public IP rules are the SP appliance's */
    CU_ASSERT_EQUAL(nx_pki_verify(p.ca_pem, p.cert_pem, NX_PKI_CLIENT, "acme"), 0);
    nx_payload_release(&p);
    nx_pki_cred_release(&c);
    nx_free_secret(t.payload);
    nx_pki_close(pki);
    nx_desired_free(d);
    free(dir);
}

/* ---- hostile and wrong input --------------------------------------------- */

#define HEAD                                                                                       \
    "<netext-payload xmlns='urn:netext-deploy:payload:1' version='2' role='provider' "             \
    "tenant='t' host='h' appliance='a'>"
#define PROD "<production network='p' vlan='0' mac='02:00:00:00:00:01'><dhcp/></production>"
#define GW "<gateway address='gw.example.com' port='6180'/>"

static void expect_refused(const char *doc, const char *msg)
{
    struct nx_payload p;
    nx_error_clear();
    int rc = nx_payload_parse(doc, strlen(doc), "hostile.xml", &p);
    CU_ASSERT_EQUAL(rc, -1);
    if (rc == 0) {
        fprintf(stderr, "\naccepted: %s\n", doc);
        nx_payload_release(&p);
        return;
    }
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_DATAERR);
    if (!strstr(nx_error_msg(), msg))
        fprintf(stderr, "\nexpected '%s' in: %s\n", msg, nx_error_msg());
    CU_ASSERT(strstr(nx_error_msg(), msg) != NULL);
}

static void test_hostile(void)
{
    struct nx_payload p;
    const char ok[] = HEAD GW PROD "<network name='n' vlan='5' mac='02:00:00:00:00:02' "
                                   "tunnel-port='6185'/></netext-payload>";
    CU_ASSERT_EQUAL(nx_payload_parse(ok, strlen(ok), "ok", &p), 0);
    nx_payload_release(&p);

    expect_refused("<netext-payload xmlns='urn:netext-deploy:payload:1' version='1' "
                   "role='provider' tenant='t' host='h' appliance='a'>" PROD "</netext-payload>",
                   "payload version 1 is not supported: this program reads version 2");
    expect_refused("<netext-payload xmlns='urn:netext-deploy:payload:1' version='3' "
                   "role='provider' tenant='t' host='h' appliance='a'>" PROD "</netext-payload>",
                   "payload version 3 is not supported");
    expect_refused("<netext-payload xmlns='urn:other' version='2'/>",
                   "not a netext-deploy payload");
    expect_refused("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b "
                   "'&a;&a;&a;&a;'>]>" HEAD PROD "<network name='&b;' vlan='5' "
                   "mac='02:00:00:00:00:02' tunnel-port='1'/></netext-payload>",
                   "DOCTYPE");
    expect_refused("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                   "<x>&e;</x>",
                   "hostile.xml");
    expect_refused(HEAD GW PROD "<network name='n' vlan='5' mac='02:00:00:00:00:02' "
                                "tunnel-port='6185'", /* truncated */
                   "malformed XML");
    expect_refused("", "hostile.xml");
    expect_refused("\x01\x02garbage", "malformed XML");
    expect_refused(HEAD GW "</netext-payload>", "no <production>");
    expect_refused(HEAD PROD PROD "</netext-payload>", "appears twice");
    expect_refused(HEAD GW PROD "<public-ip-rule public='1.2.3.4:22' replica='10.0.0.1:22'/>"
                                "</netext-payload>",
                   "public port 22 is reserved");
    expect_refused(HEAD GW PROD "<public-ip-rule public='1.2.3.4:80' replica='10.0.0.1'/>"
                                "</netext-payload>",
                   "not IPv4:port");
    expect_refused(HEAD GW PROD "<public-ip-rule protocol='icmp' public='1.2.3.4:80' "
                                "replica='10.0.0.1:80'/></netext-payload>",
                   "tcp or udp");
    expect_refused(HEAD GW PROD "<network name='n' vlan='4095' mac='02:00:00:00:00:02' "
                                "tunnel-port='1'/></netext-payload>",
                   "vlan='4095'");
    expect_refused(HEAD GW PROD "<network name='n' vlan='5' mac='zz' tunnel-port='1'/>"
                                "</netext-payload>",
                   "not a MAC");
    expect_refused(HEAD GW PROD "<network name='n' vlan='5' mac='02:00:00:00:00:02' "
                                "tunnel-port='7'/><network name='m' vlan='5' "
                                "mac='02:00:00:00:00:03' tunnel-port='8'/></netext-payload>",
                   "VLAN 5 appears twice");
    expect_refused(HEAD GW PROD "<network name='n' vlan='5' mac='02:00:00:00:00:02' "
                                "tunnel-port='99999'/></netext-payload>",
                   "tunnel-port='99999'");
    expect_refused(HEAD PROD "<network name='n' vlan='5' mac='02:00:00:00:00:02' "
                             "tunnel-port='7'/></netext-payload>",
                   "no <gateway>");
    expect_refused(HEAD "<gateway address='gw;rm -rf /' port='1'/>" PROD "</netext-payload>",
                   "not a host name");
    expect_refused(HEAD "<gateway address='gw\nremote evil' port='1'/>" PROD "</netext-payload>",
                   "not a host name");
    expect_refused(HEAD GW PROD "<script/></netext-payload>", "unexpected element");
    /* tenant elements in a provider payload and the reverse */
    expect_refused(HEAD GW PROD "<extends name='n' vlan='5' sp-host='h' tunnel-port='1'/>"
                                "</netext-payload>",
                   "unexpected element");
    expect_refused(HEAD GW PROD "<pki><ca-certificate>x</ca-certificate><certificate>y"
                                "</certificate><private-key>z</private-key></pki>"
                                "</netext-payload>",
                   "not a PEM");
    expect_refused(HEAD GW PROD "<pki><certificate>y</certificate></pki></netext-payload>",
                   "expected <ca-certificate>");
    expect_refused("<netext-payload xmlns='urn:netext-deploy:payload:1' version='2' "
                   "role='admin' tenant='t' host='h' appliance='a'/>",
                   "role='admin'");
    expect_refused("<netext-payload xmlns='urn:netext-deploy:payload:1' version='2' "
                   "role='provider' host='h' appliance='a'/>",
                   "'tenant' is missing");
    /* too large */
    size_t big = NX_PAYLOAD_MAX_BYTES + 10;
    char *huge = nx_malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    expect_refused(huge, "larger than");
    free(huge);
}

static CU_TestInfo tests[] = {
    {"provider payload round trip with PKI", test_round_trip_provider},
    {"a tenant's keys never in another tenant's payload", test_tenant_isolation},
    {"dry run: pending, no key, same digest once issued", test_dry_run},
    {"tenant-side payload", test_tenant_role},
    {"hostile and wrong-version input refused", test_hostile},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    nx_xml_init();
    return nx_test_run("payload", suite_init, suite_clean, tests);
}
