/* test-libvirt.c: the libvirt provider through the reconcile core, on
 * libvirt's test driver (test:///default, whose state is shared by every
 * connection of this process while one stays open). */
#include "testutil.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <openssl/evp.h>

#include "reconcile.h"
#include "strbuf.h"
#include "util.h"
#include "xml.h"

#define URI "test:///default"

static virConnectPtr keep; /* holds the shared test driver state */

static const char plan_v1[] =
    NX_PLAN_HEAD "<gateway address='gw.example.com'/>"
                 "<defaults datastore='appliances'/>"
                 "<host name='esx1' uri='" URI "' production-network='sp-production' "
                 "vlan-switch='tenant-vlans'/>"
                 "<hardware-plan name='silver' host='esx1'><network name='web' vlan='101'/>"
                 "<network name='db' vlan='102'/></hardware-plan>"
                 "<hardware-plan name='gold' host='esx1'><network name='app' vlan='201'/>"
                 "<network name='dmz' vlan='202'/><network name='bak' vlan='203'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='other' host='esx1'><network name='lan' vlan='300'/>"
                 "</hardware-plan>"
                 "<tenant name='acme'><subscribe plan='silver'/><subscribe plan='gold'/></tenant>"
                 "<tenant name='globex'><subscribe plan='other'/></tenant>" NX_PLAN_TAIL;

/* gold loses VLAN 203 and gains 204 */
static const char plan_v2[] =
    NX_PLAN_HEAD "<gateway address='gw.example.com'/>"
                 "<defaults datastore='appliances'/>"
                 "<host name='esx1' uri='" URI "' production-network='sp-production' "
                 "vlan-switch='tenant-vlans'/>"
                 "<hardware-plan name='silver' host='esx1'><network name='web' vlan='101'/>"
                 "<network name='db' vlan='102'/></hardware-plan>"
                 "<hardware-plan name='gold' host='esx1'><network name='app' vlan='201'/>"
                 "<network name='dmz' vlan='202'/><network name='new' vlan='204'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='other' host='esx1'><network name='lan' vlan='300'/>"
                 "</hardware-plan>"
                 "<tenant name='acme'><subscribe plan='silver'/><subscribe plan='gold'/></tenant>"
                 "<tenant name='globex'><subscribe plan='other'/></tenant>" NX_PLAN_TAIL;

static int setup_driver(void)
{
    keep = virConnectOpen(URI);
    if (!keep)
        return -1;
    const char *nets[] = {
        "<network><name>sp-production</name><forward mode='bridge'/><bridge name='br-prod'/>"
        "<virtualport type='openvswitch'/></network>",
        "<network><name>tenant-vlans</name><forward mode='bridge'/><bridge name='br-t'/>"
        "<virtualport type='openvswitch'/><portgroup name='vlan-101'><vlan><tag id='101'/>"
        "</vlan></portgroup></network>",
    };
    for (size_t i = 0; i < 2; i++) {
        virNetworkPtr n = virNetworkDefineXML(keep, nets[i]);
        if (!n)
            return -1;
        virNetworkFree(n);
    }
    virStoragePoolPtr p = virStoragePoolDefineXML(
        keep, "<pool type='dir'><name>appliances</name><target><path>/tmp</path></target></pool>",
        0);
    if (!p)
        return -1;
    virStoragePoolFree(p);
    return 0;
}

static struct nx_model *load(const char *xml)
{
    struct nx_diag d;
    struct nx_model *m = nx_test_model(xml, &d);
    CU_ASSERT_EQUAL(d.n, 0);
    nx_diag_release(&d);
    return m;
}

/* One reconcile run for `tenant` (NULL: all); returns the number of changes. */
static long run(const char *xml, const char *tenant, bool dry, bool remove_all, int *code)
{
    struct nx_model *m = load(xml);
    const char *tenants[] = {tenant, NULL};
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER,
                            .tenants = tenant ? tenants : NULL,
                            .dry_run = dry,
                            .remove_all = remove_all};
    struct nx_run r;
    int c = nx_run_execute(m, &o, &r);
    if (code)
        *code = c;
    long changes = dry ? (long)r.actions.n : (long)r.n_changes;
    if (c != NX_EX_OK && c != (code ? *code : -1))
        fprintf(stderr, "run: exit %d: %s\n", c, nx_error_msg());
    nx_run_release(&r);
    nx_model_free(m);
    return changes;
}

static int count_domains(void)
{
    return virConnectNumOfDomains(keep) + virConnectNumOfDefinedDomains(keep);
}

static virDomainPtr domain(const char *name)
{
    return virDomainLookupByName(keep, name);
}

static xmlDocPtr domain_xml(const char *name)
{
    virDomainPtr d = domain(name);
    if (!d)
        return NULL;
    char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
    virDomainFree(d);
    xmlDocPtr doc = nx_xml_read_memory(xml, strlen(xml), name, NX_EX_PROTOCOL);
    free(xml);
    return doc;
}

static size_t count_elems(xmlNodePtr n, const char *name)
{
    size_t c = 0;
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
            c++;
        c += count_elems(n->children, name);
    }
    return c;
}

static xmlNodePtr find_elem(xmlNodePtr n, const char *name)
{
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
            return n;
        xmlNodePtr f = find_elem(n->children, name);
        if (f)
            return f;
    }
    return NULL;
}

static bool has_vlan(xmlDocPtr doc, unsigned vlan)
{
    char want[16];
    snprintf(want, sizeof(want), "%u", vlan);
    for (xmlNodePtr t = find_elem(doc->children, "devices"); t; t = NULL) {
        for (xmlNodePtr i = nx_xml_first_elem(t); i; i = nx_xml_next_elem(i)) {
            xmlNodePtr v = find_elem(i->children, "tag");
            if (nx_xml_is(i, NULL, "interface") && v && nx_str_eq(nx_xml_attr(v, "id"), want))
                return true;
        }
    }
    return false;
}

static void test_deploy(void)
{
    int before = count_domains();
    int code;
    CU_ASSERT_EQUAL(run(plan_v1, "acme", false, false, &code), 2); /* create + power on */
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    CU_ASSERT_EQUAL(count_domains(), before + 1);
    virDomainPtr d = domain("netext-acme-esx1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(virDomainIsActive(d), 1);
    virDomainFree(d);
    xmlDocPtr doc = domain_xml("netext-acme-esx1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(count_elems(doc->children, "interface"), 6);
    unsigned vlans[] = {101, 102, 201, 202, 203};
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT(has_vlan(doc, vlans[i]));
    xmlNodePtr mk = find_elem(doc->children, "appliance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mk);
    CU_ASSERT_STRING_EQUAL(mk->ns ? (const char *)mk->ns->href : "", NX_MARKER_NS);
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(mk, "tenant"), "acme");
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(mk, "role"), "provider");
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(mk, "folder"), "Cloud_Connect_Replication");
    xmlNodePtr part = find_elem(doc->children, "partition");
    CU_ASSERT_PTR_NOT_NULL(part);
    /* the portgroup that carries VLAN 101 is used */
    bool pg = false;
    for (xmlNodePtr s = find_elem(doc->children, "devices")->children; s; s = s->next) {
        xmlNodePtr src = s->type == XML_ELEMENT_NODE ? find_elem(s->children, "source") : NULL;
        pg |= src && nx_str_eq(nx_xml_attr(src, "portgroup"), "vlan-101");
    }
    CU_ASSERT(pg);
    /* the fw_cfg payload decodes to the desired payload document */
    xmlNodePtr entry = find_elem(doc->children, "entry");
    CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(entry, "name"), "opt/org.netext-deploy/payload");
    char *b64 = nx_xml_text(entry);
    unsigned char *raw = nx_calloc(strlen(b64) + 1, 1);
    int n = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)strlen(b64));
    CU_ASSERT(n > 0);
    CU_ASSERT(strstr((char *)raw, "<netext-payload") != NULL);
    CU_ASSERT(strstr((char *)raw, "tenant=\"acme\"") != NULL);
    CU_ASSERT(strchr(b64, ',') == NULL); /* QEMU's fw_cfg string must not contain commas */
    free(raw);
    free(b64);
    xmlFreeDoc(doc);
    /* the other tenant was not touched */
    virDomainPtr g = domain("netext-globex-esx1");
    CU_ASSERT_PTR_NULL(g);
    if (g)
        virDomainFree(g);
}

static void test_idempotent(void)
{
    int code, before = count_domains();
    CU_ASSERT_EQUAL(run(plan_v1, "acme", false, false, &code), 0);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    CU_ASSERT_EQUAL(run(plan_v1, "acme", true, false, &code), 0); /* nothing planned */
    CU_ASSERT_EQUAL(count_domains(), before);
}

static void test_change_vnics(void)
{
    virDomainPtr d = domain("netext-acme-esx1");
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(d, uuid);
    virDomainFree(d);
    int code;
    /* dry run first: planned, not done */
    CU_ASSERT_EQUAL(run(plan_v2, "acme", true, false, &code), 3);
    xmlDocPtr doc = domain_xml("netext-acme-esx1");
    CU_ASSERT(has_vlan(doc, 203) && !has_vlan(doc, 204));
    xmlFreeDoc(doc);
    /* vNIC change (one provider call) + payload */
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, false, &code), 2);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    doc = domain_xml("netext-acme-esx1");
    CU_ASSERT(!has_vlan(doc, 203) && has_vlan(doc, 204) && has_vlan(doc, 101));
    CU_ASSERT_EQUAL(count_elems(doc->children, "interface"), 6);
    xmlFreeDoc(doc);
    d = domain("netext-acme-esx1");
    char uuid2[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(d, uuid2);
    virDomainFree(d);
    CU_ASSERT_STRING_EQUAL(uuid, uuid2); /* the same VM, redefined */
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, false, &code), 0);
}

/* What an interrupted run leaves behind converges on the next run. */
static void test_converges(void)
{
    virDomainPtr d = domain("netext-acme-esx1");
    char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
    virDomainFree(d);
    /* a second copy with the same marker, another name and UUID, two vNICs */
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, xml);
    char *p = strstr(sb.buf, "<uuid>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char *e = strstr(p, "</uuid>") + 7;
    memmove(p, e, strlen(e) + 1);
    p = strstr(sb.buf, "netext-acme-esx1</name>");
    memcpy(p, "netext-acme-esxX", 16);
    char *third = strstr(strstr(strstr(sb.buf, "<interface") + 1, "<interface") + 1, "<interface");
    char *end = strstr(sb.buf, "<serial");
    memmove(third, end, strlen(end) + 1);
    virDomainPtr dup = virDomainDefineXML(keep, sb.buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dup);
    virDomainFree(dup);
    strbuf_release(&sb);
    free(xml);
    int before = count_domains(), code;
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, false, &code), 1); /* remove the duplicate */
    CU_ASSERT_EQUAL(count_domains(), before - 1);
    dup = domain("netext-acme-esxX");
    CU_ASSERT_PTR_NULL(dup);
    if (dup)
        virDomainFree(dup);
    /* created but never started (killed between create and power-on) */
    d = domain("netext-acme-esx1");
    virDomainDestroy(d);
    virDomainFree(d);
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, false, &code), 1); /* power on only */
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, false, &code), 0);
}

/* A placement the host cannot satisfy is refused before any change. */
static void test_refused(void)
{
    static const char bad[] = NX_PLAN_HEAD
        "<gateway address='gw'/><host name='esx1' uri='" URI
        "' production-network='sp-production' vlan-switch='default'/>"
        "<hardware-plan name='x' host='esx1'><network name='n' vlan='7'/>"
        "</hardware-plan><tenant name='initech'><subscribe plan='x'/></tenant>" NX_PLAN_TAIL;
    int before = count_domains(), code;
    struct nx_model *m = load(bad);
    const char *tenants[] = {"initech", NULL};
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .tenants = tenants};
    struct nx_run r;
    code = nx_run_execute(m, &o, &r);
    CU_ASSERT_EQUAL(code, NX_EX_DATAERR);
    CU_ASSERT_EQUAL(r.n_changes, 0);
    CU_ASSERT_EQUAL(r.problems.n, 1);
    CU_ASSERT(r.problems.n && strstr(r.problems.msgs[0], "cannot carry VLAN 7") != NULL);
    nx_run_release(&r);
    nx_model_free(m);
    CU_ASSERT_EQUAL(count_domains(), before);
    /* an unknown network too */
    static const char missing[] = NX_PLAN_HEAD
        "<gateway address='gw'/><host name='esx1' uri='" URI
        "' production-network='nope' vlan-switch='tenant-vlans'/>"
        "<hardware-plan name='x' host='esx1'><network name='n' vlan='7'/>"
        "</hardware-plan><tenant name='initech'><subscribe plan='x'/></tenant>" NX_PLAN_TAIL;
    CU_ASSERT_EQUAL(run(missing, "initech", false, false, &code), 0);
    CU_ASSERT_EQUAL(code, NX_EX_DATAERR);
    CU_ASSERT_EQUAL(count_domains(), before);
}

static void test_unsubscribe(void)
{
    int code;
    CU_ASSERT_EQUAL(run(plan_v2, "globex", false, false, &code), 2);
    int before = count_domains();
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, true, &code), 1);
    CU_ASSERT_EQUAL(code, NX_EX_OK);
    CU_ASSERT_EQUAL(count_domains(), before - 1);
    virDomainPtr d = domain("netext-globex-esx1");
    CU_ASSERT_PTR_NOT_NULL(d); /* the other tenant stays */
    if (d)
        virDomainFree(d);
    CU_ASSERT_EQUAL(run(plan_v2, "acme", false, true, &code), 0);
}

static int suite_init(void)
{
    return setup_driver();
}

static int suite_clean(void)
{
    return keep ? virConnectClose(keep) < 0 : 0;
}

static CU_TestInfo tests[] = {
    {"deploy: one domain, 6 vNICs, marker, VLANs, fw_cfg payload", test_deploy},
    {"second run: zero changes", test_idempotent},
    {"plan change: exactly those vNICs, same VM", test_change_vnics},
    {"interrupted runs converge: duplicate, not started", test_converges},
    {"bad placement: refused before any change", test_refused},
    {"unsubscribe removes only that tenant", test_unsubscribe},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    virSetErrorFunc(NULL, NULL);
    return nx_test_run("libvirt provider (test driver)", suite_init, suite_clean, tests);
}
