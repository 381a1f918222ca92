/* test-libvirt.c: the libvirt provider through the reconcile core, on
 * libvirt's test driver (test:///default, whose state is shared by every
 * connection of this process while one stays open). */
#include "config.h"

#include "testutil.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "image.h"
#include "reconcile.h"
#include "report.h"
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

/* ---- the appliance image ------------------------------------------------ */

/* esx2 keeps the image in a storage pool; the test driver cannot upload
 * volumes (virStorageVolUpload), so uploads are proven in the libvirtd tier */
#define PLAN_IMG(plans)                                                                            \
    NX_PLAN_HEAD "<gateway address='gw.example.com'/>"                                             \
                 "<host name='esx1' uri='" URI "' production-network='sp-production' "             \
                 "vlan-switch='tenant-vlans'/>"                                                    \
                 "<host name='esx2' uri='" URI "' production-network='sp-production' "             \
                 "vlan-switch='tenant-vlans' image-store='appliances'/>"                           \
                 "<hardware-plan name='p1' host='esx1'><network name='n' vlan='401'/>"             \
                 "</hardware-plan>"                                                                \
                 "<hardware-plan name='p2' host='esx2'><network name='n' vlan='402'/>"             \
                 "</hardware-plan>"                                                                \
                 "<tenant name='umbrella'>" plans "</tenant>" NX_PLAN_TAIL
static const char plan_img[] = PLAN_IMG("<subscribe plan='p1'/>");
static const char plan_img_store[] = PLAN_IMG("<subscribe plan='p1'/><subscribe plan='p2'/>");

static char img_dir[] = "/tmp/nx-test-image.XXXXXX";

/* A file the core takes for an ISO 9660 image (the magic at 32 KiB), whose
 * bytes differ by `seed`. */
static char *make_image(const char *name, unsigned seed)
{
    char *path = nx_asprintf("%s/%s", img_dir, name);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (unsigned i = 0; i < 40960; i++) {
        int ch = i == 32769   ? 'C'
                 : i == 32770 ? 'D'
                 : i == 32771 ? '0'
                 : i == 32772 ? '0'
                 : i == 32773 ? '1'
                              : (int)((i * 7 + seed) & 0xff);
        fputc(ch, f);
    }
    fclose(f);
    return path;
}

static long run_img(const char *image, bool dry, struct strbuf *report)
{
    struct nx_model *m = load(plan_img);
    const char *tenants[] = {"umbrella", NULL};
    struct nx_run_opts o = {
        .role = NX_ROLE_PROVIDER, .tenants = tenants, .dry_run = dry, .image_file = image};
    struct nx_run r;
    int c = nx_run_execute(m, &o, &r);
    CU_ASSERT_EQUAL(c, NX_EX_OK);
    if (c != NX_EX_OK)
        fprintf(stderr, "run: exit %d: %s\n", c, nx_error_msg());
    if (report) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        nx_run_report_text(&r, "subscribe", f);
        fclose(f);
        strbuf_addstr(report, buf);
        free(buf);
    }
    long changes = dry ? (long)r.actions.n : (long)r.n_changes;
    nx_run_release(&r);
    nx_model_free(m);
    return changes;
}

/* the CD-ROM's source (file= or pool/volume) and the marker's image id */
static void cdrom_of(const char *name, char **source, char **id, bool *boots)
{
    xmlDocPtr doc = domain_xml(name);
    *source = *id = NULL;
    *boots = false;
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    size_t n_cd = 0;
    for (xmlNodePtr e = nx_xml_first_elem(find_elem(doc->children, "devices")); e;
         e = nx_xml_next_elem(e)) {
        if (!nx_xml_is(e, NULL, "disk") || !nx_str_eq(nx_xml_attr(e, "device"), "cdrom"))
            continue;
        n_cd++;
        xmlNodePtr src = find_elem(e->children, "source");
        if (src && nx_xml_attr(src, "file"))
            *source = nx_strdup(nx_xml_attr(src, "file"));
        else if (src)
            *source = nx_asprintf("%s/%s", nx_xml_attr(src, "pool"), nx_xml_attr(src, "volume"));
    }
    CU_ASSERT_EQUAL(n_cd, 1);
    xmlNodePtr boot = find_elem(find_elem(doc->children, "os"), "boot");
    *boots = boot && nx_str_eq(nx_xml_attr(boot, "dev"), "cdrom");
    *id = nx_strdup(nx_xml_attr(find_elem(doc->children, "appliance"), "image"));
    xmlFreeDoc(doc);
}

static void test_image(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(img_dir));
    char *a = make_image("a.iso", 1), *b = make_image("b.iso", 2);
    struct nx_image *ia = NULL, *ib = NULL;
    CU_ASSERT_EQUAL_FATAL(nx_image_load(a, &ia), 0);
    CU_ASSERT_EQUAL_FATAL(nx_image_load(b, &ib), 0);
    CU_ASSERT_STRING_NOT_EQUAL(ia->id, ib->id);
    CU_ASSERT_EQUAL(ia->size, 40960);
    /* an image store that is not active is refused before any change */
    int n_doms = count_domains();
    struct nx_model *m0 = load(plan_img_store);
    const char *t0[] = {"umbrella", NULL};
    struct nx_run_opts o0 = {.role = NX_ROLE_PROVIDER, .tenants = t0, .image_file = a};
    struct nx_run r0;
    CU_ASSERT_EQUAL(nx_run_execute(m0, &o0, &r0), NX_EX_DATAERR);
    CU_ASSERT(r0.problems.n == 1 && strstr(r0.problems.msgs[0], "'appliances' is not active"));
    nx_run_release(&r0);
    nx_model_free(m0);
    CU_ASSERT_EQUAL(count_domains(), n_doms);

    /* created with the image: the file itself */
    CU_ASSERT_EQUAL(run_img(a, false, NULL), 2);
    char *src, *id;
    bool boots;
    cdrom_of("netext-umbrella-esx1", &src, &id, &boots);
    CU_ASSERT_STRING_EQUAL(src, ia->file);
    CU_ASSERT_STRING_EQUAL(id, ia->id);
    CU_ASSERT(boots);
    free(src);
    free(id);
    /* a second run changes nothing */
    CU_ASSERT_EQUAL(run_img(a, false, NULL), 0);
    CU_ASSERT_EQUAL(run_img(a, true, NULL), 0);
    /* no image configured: nothing about images changes */
    CU_ASSERT_EQUAL(run_img(NULL, false, NULL), 0);

    /* a new image: one set-image per appliance, shown in the dry run */
    struct strbuf rep = STRBUF_INIT;
    CU_ASSERT_EQUAL(run_img(b, true, &rep), 1);
    CU_ASSERT(strstr(rep.buf, "would set-image   netext-umbrella-esx1") != NULL);
    CU_ASSERT(strstr(rep.buf, ib->name) != NULL);
    strbuf_release(&rep);
    xmlDocPtr before = domain_xml("netext-umbrella-esx1");
    size_t nics = count_elems(before->children, "interface");
    char *fw = nx_xml_text(find_elem(before->children, "entry"));
    xmlFreeDoc(before);
    CU_ASSERT_EQUAL(run_img(b, false, NULL), 1);
    cdrom_of("netext-umbrella-esx1", &src, &id, &boots);
    CU_ASSERT_STRING_EQUAL(src, ib->file);
    CU_ASSERT_STRING_EQUAL(id, ib->id);
    CU_ASSERT(boots);
    free(src);
    free(id);
    /* everything else stays */
    xmlDocPtr after = domain_xml("netext-umbrella-esx1");
    CU_ASSERT_EQUAL(count_elems(after->children, "interface"), nics);
    char *fw2 = nx_xml_text(find_elem(after->children, "entry"));
    CU_ASSERT_STRING_EQUAL(fw, fw2);
    free(fw);
    free(fw2);
    xmlFreeDoc(after);
    CU_ASSERT_EQUAL(run_img(b, false, NULL), 0);

    /* an image that is no ISO, or missing, fails the run before any change */
    char *bad = nx_asprintf("%s/bad.iso", img_dir);
    FILE *f = fopen(bad, "w");
    fputs("not an image", f);
    fclose(f);
    struct nx_image *ix = NULL;
    CU_ASSERT_EQUAL(nx_image_load(bad, &ix), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_DATAERR);
    CU_ASSERT_EQUAL(nx_image_load("/nonexistent/x.iso", &ix), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_NOINPUT);

    /* clean up: the tenant, the files */
    struct nx_model *m = load(plan_img);
    const char *tenants[] = {"umbrella", NULL};
    struct nx_run_opts o = {.role = NX_ROLE_PROVIDER, .tenants = tenants, .remove_all = true};
    struct nx_run r;
    CU_ASSERT_EQUAL(nx_run_execute(m, &o, &r), NX_EX_OK);
    nx_run_release(&r);
    nx_model_free(m);
    unlink(a);
    unlink(b);
    unlink(bad);
    rmdir(img_dir);
    free(a);
    free(b);
    free(bad);
    nx_image_free(ia);
    nx_image_free(ib);
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
    {"appliance image: CD-ROM from the file, set-image on a new one, store checked", test_image},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    virSetErrorFunc(NULL, NULL);
    return nx_test_run("libvirt provider (test driver)", suite_init, suite_clean, tests);
}
