/* test-soap.c: the SOAP layer on recorded vcsim answers, faults, truncated
 * bodies and hostile XML. */
#include "config.h"

#include "soap.h"
#include "testutil.h"
#include "util.h"
#include "xml.h"

#include <libxml/parser.h>

static char *slurp(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/data/soap/%s", nx_test_srcdir(), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct strbuf sb = STRBUF_INIT;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_add(&sb, buf, n);
    fclose(f);
    return strbuf_detach(&sb, len);
}

/* Parse a recorded file; returns nx_soap_parse's result. */
static int parse_file(const char *name, long status, struct nx_soap_resp *r,
                      struct nx_soap_fault *f)
{
    size_t len = 0;
    char *buf = slurp(name, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    int rc = nx_soap_parse(buf, len, status, name, r, f);
    free(buf);
    return rc;
}

static void test_envelope_escapes_values(void)
{
    struct strbuf body = STRBUF_INIT, env = STRBUF_INIT;
    const char *hostile = "a<b>&\"c'</name><evil/>";
    nx_soap_begin(&body, "Login", "SessionManager", "Session<Manager");
    nx_soap_add(&body, "userName", hostile);
    nx_soap_add_moref(&body, "obj", "Folder\"x", "group-v1&");
    nx_soap_end(&body, "Login");
    nx_soap_envelope(&env, body.buf);
    CU_ASSERT(strstr(env.buf, "<evil/>") == NULL);
    xmlDocPtr doc = nx_xml_read_memory(env.buf, env.len, "envelope", NX_EX_SOFTWARE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    xmlNodePtr login = nx_xml_first_elem(nx_xml_first_elem(xmlDocGetRootElement(doc)));
    CU_ASSERT(nx_xml_is(login, NX_VIM_NS, "Login"));
    char *user = nx_soap_child_text(login, "userName");
    CU_ASSERT_STRING_EQUAL(user, hostile);
    free(user);
    xmlNodePtr this = nx_soap_child(login, "_this");
    CU_ASSERT_STRING_EQUAL(nx_soap_text(this), "Session<Manager");
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(this, "type"), "SessionManager");
    xmlNodePtr obj = nx_soap_child(login, "obj");
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(obj, "type"), "Folder\"x");
    CU_ASSERT_STRING_EQUAL(nx_soap_text(obj), "group-v1&");
    xmlFreeDoc(doc);
    strbuf_release(&body);
    strbuf_release(&env);
}

static void test_service_content(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    CU_ASSERT_EQUAL_FATAL(parse_file("service-content.xml", 200, &r, &f), 0);
    CU_ASSERT(nx_xml_is(r.body, NX_VIM_NS, "RetrieveServiceContentResponse"));
    xmlNodePtr rv = nx_soap_child(r.body, "returnval");
    char *root = nx_soap_child_text(rv, "rootFolder");
    CU_ASSERT_STRING_EQUAL(root, "group-d1");
    free(root);
    xmlXPathObjectPtr o = nx_soap_xpath(&r, NULL,
                                        "/soapenv:Envelope/soapenv:Body/"
                                        "vim:RetrieveServiceContentResponse/"
                                        "vim:returnval/vim:about/vim:apiVersion");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->nodesetval->nodeNr, 1);
    CU_ASSERT_STRING_EQUAL(nx_soap_text(o->nodesetval->nodeTab[0]), "6.5");
    xmlXPathFreeObject(o);
    /* the namespace matters: no such element outside urn:vim25 */
    CU_ASSERT_PTR_NULL(nx_soap_xpath(&r, NULL, "//soapenv:rootFolder"));
    nx_soap_resp_release(&r);
}

static void test_retrieve_properties(void)
{
    struct nx_soap_resp r;
    CU_ASSERT_EQUAL_FATAL(parse_file("retrieve-properties.xml", 200, &r, NULL), 0);
    xmlXPathObjectPtr o = nx_soap_xpath(&r, NULL, "//vim:objects[vim:obj/@type='HostSystem']");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT(o->nodesetval->nodeNr >= 2);
    xmlXPathFreeObject(o);
    /* typed values: the property "summary.type" of a datastore is an xsd:string */
    o = nx_soap_xpath(&r, NULL, "//vim:propSet[vim:name='summary.type']/vim:val");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(nx_soap_xsi_type(o->nodesetval->nodeTab[0]), "string");
    xmlXPathFreeObject(o);
    o = nx_soap_xpath(&r, NULL, "//vim:propSet[vim:name='config.hardware.device']/vim:val/*");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    bool have_nic = false;
    for (int i = 0; i < o->nodesetval->nodeNr; i++)
        have_nic |= nx_soap_child(o->nodesetval->nodeTab[i], "macAddress") != NULL;
    CU_ASSERT(have_nic);
    xmlXPathFreeObject(o);
    nx_soap_resp_release(&r);
}

static void test_fault_not_authenticated(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    nx_error_clear();
    CU_ASSERT_EQUAL(parse_file("fault-not-authenticated.xml", 500, &r, &f), 1);
    CU_ASSERT_STRING_EQUAL(f.type, "NotAuthenticated");
    CU_ASSERT_STRING_EQUAL(f.object, "ViewManager");
    CU_ASSERT(strstr(nx_error_msg(), "NotAuthenticated") != NULL);
    CU_ASSERT_PTR_NULL(r.doc);
    nx_soap_fault_release(&f);
}

static void test_fault_invalid_login(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    CU_ASSERT_EQUAL(parse_file("fault-invalid-login.xml", 500, &r, &f), 1);
    CU_ASSERT_STRING_EQUAL(f.type, "InvalidLogin");
    CU_ASSERT(strstr(f.message, "incorrect user name or password") != NULL);
    CU_ASSERT(strstr(nx_error_msg(), "InvalidLogin: Cannot complete login") != NULL);
    nx_soap_fault_release(&f);
}

static void test_fault_any_xsi_prefix(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    CU_ASSERT_EQUAL(parse_file("fault-duplicate-name.xml", 500, &r, &f), 1);
    /* the type comes from the prefix bound to XMLSchema-instance, not "xsi:" */
    CU_ASSERT_STRING_EQUAL(f.type, "DuplicateName");
    CU_ASSERT_STRING_EQUAL(f.object, "group-v42");
    CU_ASSERT(strstr(f.message, "'Cloud_Connect_Replication' already exists") != NULL);
    nx_soap_fault_release(&f);
}

static void test_fault_without_type(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    CU_ASSERT_EQUAL(parse_file("fault-no-permission.xml", 500, &r, &f), 1);
    CU_ASSERT_STRING_EQUAL(f.type, "NoPermission"); /* from the element name */
    nx_soap_fault_release(&f);
}

static void test_missingset_not_authenticated(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    CU_ASSERT_EQUAL_FATAL(parse_file("missingset-not-authenticated.xml", 200, &r, &f), 0);
    xmlXPathObjectPtr o = nx_soap_xpath(&r, NULL, "//vim:missingSet/vim:fault");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    nx_soap_fault_from_node(o->nodesetval->nodeTab[0], &f);
    CU_ASSERT_STRING_EQUAL(f.type, "NotAuthenticated");
    xmlXPathFreeObject(o);
    nx_soap_fault_release(&f);
    nx_soap_resp_release(&r);
}

static void test_task_error(void)
{
    struct nx_soap_resp r;
    struct nx_soap_fault f = {0};
    CU_ASSERT_EQUAL_FATAL(parse_file("task-error.xml", 200, &r, NULL), 0);
    xmlXPathObjectPtr o = nx_soap_xpath(&r, NULL, "//vim:val[@xsi:type='TaskInfo']/vim:error");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    nx_soap_fault_from_node(o->nodesetval->nodeTab[0], &f);
    CU_ASSERT_STRING_EQUAL(f.type, "InvalidPowerState");
    CU_ASSERT(strstr(f.message, "current state (Powered on)") != NULL);
    xmlXPathFreeObject(o);
    nx_soap_fault_release(&f);
    nx_soap_resp_release(&r);
}

/* Every prefix of a valid answer is an error, never a crash or a success. */
static void test_truncated(void)
{
    const char *files[] = {"service-content.xml", "fault-invalid-login.xml", "task-error.xml"};
    for (size_t k = 0; k < NX_ARRAY_SIZE(files); k++) {
        size_t len = 0;
        char *buf = slurp(files[k], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
        /* strip the trailing newline: the last '>' closes the document */
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
            len--;
        size_t bad = 0;
        for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
            struct nx_soap_resp r;
            struct nx_soap_fault f = {0};
            nx_error_clear();
            int rc = nx_soap_parse(buf, cut, 200, "truncated", &r, &f);
            if (rc != -1 || nx_error_code() != NX_EX_PROTOCOL)
                bad++;
            nx_soap_resp_release(&r);
            nx_soap_fault_release(&f);
        }
        CU_ASSERT_EQUAL(bad, 0);
        free(buf);
    }
}

static void test_not_soap(void)
{
    struct nx_soap_resp r;
    const char *html = "<html><body>503 Service Unavailable</body></html>";
    CU_ASSERT_EQUAL(nx_soap_parse(html, strlen(html), 503, "html", &r, NULL), -1);
    CU_ASSERT(strstr(nx_error_msg(), "not a SOAP answer") != NULL);
    CU_ASSERT_EQUAL(nx_soap_parse("", 0, 200, "empty", &r, NULL), -1);
    const char *nobody = "<soapenv:Envelope xmlns:soapenv='" NX_SOAP_ENV_NS "'/>";
    CU_ASSERT_EQUAL(nx_soap_parse(nobody, strlen(nobody), 200, "nobody", &r, NULL), -1);
    /* a 500 without a fault is an error, not a success */
    size_t len = 0;
    char *buf = slurp("service-content.xml", &len);
    CU_ASSERT_EQUAL(nx_soap_parse(buf, len, 500, "500", &r, NULL), -1);
    free(buf);
}

static void test_billion_laughs(void)
{
    struct nx_soap_resp r;
    nx_error_clear();
    CU_ASSERT_EQUAL(parse_file("billion-laughs.xml", 200, &r, NULL), -1);
    CU_ASSERT_PTR_NULL(r.doc);
    /* refused either by the parser (entity amplification) or for its DOCTYPE */
    CU_ASSERT(strstr(nx_error_msg(), "billion-laughs.xml") != NULL);
    CU_ASSERT(strstr(nx_error_msg(), "lollol") == NULL);
}

static void test_external_entity(void)
{
    struct nx_soap_resp r;
    nx_error_clear();
    CU_ASSERT_EQUAL(parse_file("external-entity.xml", 200, &r, NULL), -1);
    CU_ASSERT_PTR_NULL(r.doc);
    CU_ASSERT(strstr(nx_error_msg(), "root:") == NULL);
}

static void test_xsi_type_prefix(void)
{
    const char *doc = "<a xmlns:i='" NX_XSI_NS "' xmlns:xsi='urn:other'>"
                      "<b i:type='vim25:HostSystem'/><c xsi:type='Nope'/><d type='Nope'/></a>";
    xmlDocPtr d = nx_xml_read_memory(doc, strlen(doc), "t", NX_EX_SOFTWARE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    xmlNodePtr a = xmlDocGetRootElement(d);
    CU_ASSERT_STRING_EQUAL(nx_soap_xsi_type(nx_soap_child(a, "b")), "HostSystem");
    CU_ASSERT_PTR_NULL(nx_soap_xsi_type(nx_soap_child(a, "c")));
    CU_ASSERT_PTR_NULL(nx_soap_xsi_type(nx_soap_child(a, "d")));
    xmlFreeDoc(d);
}

/* Random byte changes in recorded answers: every outcome is a clean result,
 * a fault or an error (run under the sanitizers by --enable-sanitizers). */
static void test_mutations(void)
{
    const char *files[] = {"service-content.xml", "fault-duplicate-name.xml", "task-error.xml",
                           "missingset-not-authenticated.xml"};
    unsigned seed = 12345;
    size_t outcomes[3] = {0, 0, 0};
    for (size_t k = 0; k < NX_ARRAY_SIZE(files); k++) {
        size_t len = 0;
        char *orig = slurp(files[k], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
        char *buf = nx_malloc(len + 1);
        for (int iter = 0; iter < 500; iter++) {
            memcpy(buf, orig, len + 1);
            int flips = 1 + (int)(rand_r(&seed) % 8);
            for (int i = 0; i < flips; i++)
                buf[rand_r(&seed) % len] = (char)(rand_r(&seed) % 256);
            struct nx_soap_resp r;
            struct nx_soap_fault f = {0};
            int rc = nx_soap_parse(buf, len, 200, "mutated", &r, &f);
            CU_ASSERT(rc >= -1 && rc <= 1);
            outcomes[rc + 1]++;
            if (rc == 0) {
                xmlXPathObjectPtr o = nx_soap_xpath(&r, NULL, "//vim:fault | //vim:error");
                for (int i = 0; o && i < o->nodesetval->nodeNr; i++)
                    nx_soap_fault_from_node(o->nodesetval->nodeTab[i], &f);
                xmlXPathFreeObject(o);
            }
            nx_soap_fault_release(&f);
            nx_soap_resp_release(&r);
        }
        free(buf);
        free(orig);
    }
    CU_ASSERT(outcomes[0] > 0); /* most mutations break the document */
}

static CU_TestInfo tests[] = {
    {"request values are XML-escaped", test_envelope_escapes_values},
    {"ServiceContent (recorded)", test_service_content},
    {"RetrievePropertiesEx (recorded), namespace-aware XPath", test_retrieve_properties},
    {"fault NotAuthenticated", test_fault_not_authenticated},
    {"fault InvalidLogin with faultstring", test_fault_invalid_login},
    {"fault type under any XMLSchema-instance prefix", test_fault_any_xsi_prefix},
    {"fault type from the detail element name", test_fault_without_type},
    {"NotAuthenticated inside missingSet (HTTP 200)", test_missingset_not_authenticated},
    {"task error (LocalizedMethodFault)", test_task_error},
    {"truncated answers are errors", test_truncated},
    {"non-SOAP, empty and fault-less 500 answers", test_not_soap},
    {"billion laughs is refused", test_billion_laughs},
    {"external entities are not fetched", test_external_entity},
    {"xsi:type recognised by namespace, not prefix", test_xsi_type_prefix},
    {"randomly damaged answers", test_mutations},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("soap", tests)
