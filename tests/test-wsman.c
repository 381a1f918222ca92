/* test-wsman.c: the WS-Management layer without a network (envelopes,
 * escaping, answers recorded in Windows' own prefixes, faults, truncated and
 * hostile XML) and the Hyper-V provider's connection-independent helpers. */
#include "config.h"

#include "testutil.h"

#include <libxml/tree.h>
#include <openssl/evp.h>

#include "hyperv.h"
#include "strbuf.h"
#include "util.h"
#include "wsman.h"
#include "xml.h"

static char *slurp(const char *name, size_t *len)
{
    char *path = nx_asprintf("%s/tests/data/wsman/%s", nx_test_srcdir(), name);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return NULL;
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_add(&sb, buf, n);
    fclose(f);
    return strbuf_detach(&sb, len);
}

static xmlNodePtr elem(xmlNodePtr parent, const char *ns, const char *name)
{
    for (xmlNodePtr c = nx_xml_first_elem(parent); c; c = nx_xml_next_elem(c))
        if (nx_xml_is(c, ns, name))
            return c;
    return NULL;
}

static char *header_text(xmlDocPtr doc, const char *ns, const char *name)
{
    xmlNodePtr h = elem(xmlDocGetRootElement(doc), NX_WSMAN_NS_SOAP, "Header");
    return nx_xml_text(elem(h, ns, name));
}

static void test_envelope(void)
{
    struct nx_wsman_epr *e = nx_wsman_epr_new(NX_WSMAN_WMI_PREFIX "root/virtualization/v2/X");
    nx_wsman_epr_add(e, "InstanceID", "Microsoft:<a&b>\"c'\\d");
    struct nx_wsman_request r1 = {.to = "https://hv1:5986/wsman?x=1&y=2",
                                  .action = NX_WSMAN_ACTION_GET,
                                  .resource_uri = e->resource_uri,
                                  .selectors = e,
                                  .timeout_ms = 90500};
    struct nx_wsman_request r2 = r1;
    struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
    nx_wsman_envelope(&a, &r1);
    nx_wsman_envelope(&b, &r2);
    CU_ASSERT_STRING_NOT_EQUAL(r1.message_id, r2.message_id);
    CU_ASSERT_EQUAL(strlen(r1.message_id), strlen("uuid:") + 36);
    CU_ASSERT_EQUAL(r1.message_id[5 + 14], '4'); /* version 4 */

    xmlDocPtr doc = nx_xml_read_memory(a.buf, a.len, "envelope", NX_EX_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    char *t = header_text(doc, NX_WSMAN_NS_WSA, "To");
    CU_ASSERT_STRING_EQUAL(t, "https://hv1:5986/wsman?x=1&y=2");
    free(t);
    t = header_text(doc, NX_WSMAN_NS_WSA, "MessageID");
    CU_ASSERT_STRING_EQUAL(t, r1.message_id);
    free(t);
    t = header_text(doc, NX_WSMAN_NS_WSMAN, "MaxEnvelopeSize");
    CU_ASSERT_STRING_EQUAL(t, "512000");
    free(t);
    t = header_text(doc, NX_WSMAN_NS_WSMAN, "OperationTimeout");
    CU_ASSERT_STRING_EQUAL(t, "PT90.500S");
    free(t);
    t = header_text(doc, NX_WSMAN_NS_WSMAN, "ResourceURI");
    CU_ASSERT_STRING_EQUAL(t, e->resource_uri);
    free(t);
    xmlNodePtr h = elem(xmlDocGetRootElement(doc), NX_WSMAN_NS_SOAP, "Header");
    xmlNodePtr sel = elem(elem(h, NX_WSMAN_NS_WSMAN, "SelectorSet"), NX_WSMAN_NS_WSMAN, "Selector");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sel);
    CU_ASSERT_STRING_EQUAL(nx_xml_attr(sel, "Name"), "InstanceID");
    t = nx_xml_text(sel);
    CU_ASSERT_STRING_EQUAL(t, "Microsoft:<a&b>\"c'\\d");
    free(t);
    xmlFreeDoc(doc);
    strbuf_release(&a);
    strbuf_release(&b);
    nx_wsman_epr_free(e);
}

/* An embedded instance is a document inside a string: escaped once for the
 * CIM-XML, once more for the envelope, and must come back intact. */
static void test_invoke_body_escaping(void)
{
    const char *hostile = "</p:Notes><p:X>&amp; ]]> <INSTANCE>";
    const char *arr[] = {hostile, "second"};
    struct nx_cim_prop props[] = {
        {.name = "ElementName", .value = "a<b"},
        {.name = "Notes", .array = arr, .n_array = 2},
        {.name = "Skipped", .value = NULL},
    };
    char *inst = nx_cim_instance_xml("Msvm_VirtualSystemSettingData", props, 3);
    struct nx_wsman_epr *ref = nx_wsman_epr_new("urn:r");
    nx_wsman_epr_add(ref, "Name", "x&y");
    struct nx_wsman_param p[] = {
        {"SystemSettings", NX_WSMAN_EMBEDDED, inst, NULL},
        {"AffectedSystem", NX_WSMAN_REF, NULL, ref},
        {"RequestedState", NX_WSMAN_STRING, "2", NULL},
    };
    struct strbuf body = STRBUF_INIT;
    strbuf_addstr(&body, "<r xmlns:a=\"" NX_WSMAN_NS_WSA "\" xmlns:w=\"" NX_WSMAN_NS_WSMAN "\">");
    nx_wsman_invoke_body(&body, "urn:cls", "DefineSystem", p, 3);
    strbuf_addstr(&body, "</r>");
    xmlDocPtr doc = nx_xml_read_memory(body.buf, body.len, "body", NX_EX_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    xmlNodePtr in = elem(xmlDocGetRootElement(doc), "urn:cls", "DefineSystem_INPUT");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char *text = nx_xml_text(elem(in, "urn:cls", "SystemSettings"));
    CU_ASSERT_STRING_EQUAL(text, inst);
    struct nx_wsman_instance *back = NULL;
    CU_ASSERT_EQUAL_FATAL(nx_cim_instance_parse(text, &back), 0);
    CU_ASSERT_STRING_EQUAL(back->class_name, "Msvm_VirtualSystemSettingData");
    CU_ASSERT_STRING_EQUAL(nx_wsman_prop(back, "ElementName"), "a<b");
    CU_ASSERT_STRING_EQUAL(nx_wsman_prop(back, "Notes"), hostile);
    CU_ASSERT_PTR_NULL(nx_wsman_prop(back, "Skipped"));
    size_t notes = 0;
    for (size_t i = 0; i < back->n; i++)
        notes += strcmp(back->props[i].name, "Notes") == 0;
    CU_ASSERT_EQUAL(notes, 2);
    struct nx_wsman_epr *epr = NULL;
    CU_ASSERT_EQUAL_FATAL(nx_wsman_parse_epr(elem(in, "urn:cls", "AffectedSystem"), &epr), 0);
    CU_ASSERT_STRING_EQUAL(nx_wsman_epr_selector(epr, "Name"), "x&y");
    nx_wsman_epr_free(epr);
    nx_wsman_instance_free(back);
    free(text);
    xmlFreeDoc(doc);
    strbuf_release(&body);
    nx_wsman_epr_free(ref);
    free(inst);
}

static int check_file(const char *name, long status, const char *relates, xmlDocPtr *doc,
                      xmlNodePtr *body)
{
    size_t len = 0;
    char *data = slurp(name, &len);
    CU_ASSERT_PTR_NOT_NULL(data);
    if (!data)
        return -2;
    nx_error_clear();
    int rc = nx_wsman_check_answer(name, status, data, len, relates, doc, body);
    free(data);
    return rc;
}

static void test_enumerate_windows(void)
{
    xmlDocPtr doc;
    xmlNodePtr body;
    CU_ASSERT_EQUAL_FATAL(check_file("enumerate-windows.xml", 200,
                                     "uuid:00000000-0000-4000-8000-000000000001", &doc, &body),
                          0);
    xmlNodePtr resp = elem(body, NX_WSMAN_NS_WSEN, "EnumerateResponse");
    xmlNodePtr items = elem(resp, NX_WSMAN_NS_WSMAN, "Items");
    CU_ASSERT_PTR_NOT_NULL_FATAL(items);
    struct nx_wsman_instance *i = NULL;
    CU_ASSERT_EQUAL_FATAL(nx_wsman_parse_item(nx_xml_first_elem(items), &i), 0);
    CU_ASSERT_STRING_EQUAL(i->class_name, "Msvm_VirtualSystemSettingData");
    CU_ASSERT_STRING_EQUAL(nx_wsman_prop(i, "ConfigurationDataRoot"),
                           "D:\\Hyper-V\\Cloud_Connect_Replication\\acme");
    CU_ASSERT_STRING_EQUAL(nx_wsman_prop(i, "CreationTime"), "2026-11-24T10:00:00Z");
    CU_ASSERT_STRING_EQUAL(nx_wsman_prop(i, "Notes"), "first line & <more>");
    CU_ASSERT_PTR_NULL(nx_wsman_prop(i, "Parent")); /* xsi:nil */
    CU_ASSERT_PTR_NOT_NULL_FATAL(i->epr);
    CU_ASSERT_STRING_EQUAL(nx_wsman_epr_selector(i->epr, "InstanceID"),
                           "Microsoft:3F2504E0-4F89-41D3-9A0C-0305E82C3301");
    /* the second Notes element is our marker */
    struct nx_marker m = {0};
    int found = -1;
    for (size_t k = 0; k < i->n; k++)
        if (strcmp(i->props[k].name, "Notes") == 0 && nx_marker_decode(i->props[k].value, &m) == 0)
            found = (int)k;
    CU_ASSERT(found > 0);
    if (found > 0) {
        CU_ASSERT_STRING_EQUAL(m.tenant, "acme");
        CU_ASSERT_STRING_EQUAL(m.host, "hv1");
        nx_marker_release(&m);
    }
    nx_wsman_instance_free(i);
    xmlFreeDoc(doc);

    /* the same answer to another request is refused */
    CU_ASSERT_EQUAL(check_file("enumerate-windows.xml", 200, "uuid:other", &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_PROTOCOL);
}

static void test_define_output(void)
{
    xmlDocPtr doc;
    xmlNodePtr body;
    CU_ASSERT_EQUAL_FATAL(check_file("define-output.xml", 200, NULL, &doc, &body), 0);
    struct nx_wsman_instance *o = NULL;
    CU_ASSERT_EQUAL_FATAL(nx_wsman_parse_item(nx_xml_first_elem(body), &o), 0);
    CU_ASSERT_EQUAL(nx_wsman_return_value(o, "DefineSystem"), 4096);
    const struct nx_wsman_epr *job = nx_wsman_prop_epr(o, "Job");
    const struct nx_wsman_epr *rs = nx_wsman_prop_epr(o, "ResultingSystem");
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    CU_ASSERT_STRING_EQUAL(nx_wsman_epr_selector(job, "InstanceID"),
                           "E4A1C2B3-5555-4D6E-8F70-8192A3B4C5D6");
    CU_ASSERT_STRING_EQUAL(nx_wsman_epr_selector(rs, "Name"),
                           "3F2504E0-4F89-41D3-9A0C-0305E82C3301");
    CU_ASSERT(strstr(rs->resource_uri, "/Msvm_ComputerSystem") != NULL);
    nx_wsman_instance_free(o);
    xmlFreeDoc(doc);
}

static void test_faults(void)
{
    xmlDocPtr doc = NULL;
    xmlNodePtr body;
    CU_ASSERT_EQUAL(check_file("fault-invalid-selectors.xml", 500, NULL, &doc, &body), -1);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_UNAVAILABLE);
    const char *msg = nx_error_msg();
    CU_ASSERT(strstr(msg, "w:InvalidSelectors") != NULL);
    CU_ASSERT(strstr(msg, "InsufficientSelectors") != NULL);
    CU_ASSERT(strstr(msg, "invalid selectors") != NULL);
    CU_ASSERT(strstr(msg, "WMI error 2150858843") != NULL);
    CU_ASSERT(strstr(msg, "Not found") != NULL);

    nx_error_clear();
    CU_ASSERT_EQUAL(nx_wsman_check_answer("Get X", 401, "", 0, NULL, &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_NOPERM);
    CU_ASSERT(strstr(nx_error_msg(), "authentication failed") != NULL);

    /* a fault-less 500 is not success */
    const char *ok = "<s:Envelope xmlns:s=\"" NX_WSMAN_NS_SOAP "\"><s:Body/></s:Envelope>";
    CU_ASSERT_EQUAL(nx_wsman_check_answer("X", 500, ok, strlen(ok), NULL, &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_PROTOCOL);
    /* SOAP 1.1 is not what WS-Man speaks */
    const char *s11 = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                      "<s:Body/></s:Envelope>";
    CU_ASSERT_EQUAL(nx_wsman_check_answer("X", 200, s11, strlen(s11), NULL, &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_PROTOCOL);
}

static void test_malformed(void)
{
    xmlDocPtr doc = NULL;
    xmlNodePtr body;
    CU_ASSERT_EQUAL(check_file("truncated.xml", 200, NULL, &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_PROTOCOL);
    CU_ASSERT(strstr(nx_error_msg(), "malformed") != NULL);
    CU_ASSERT_EQUAL(check_file("not-soap.html", 200, NULL, &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_PROTOCOL);
    CU_ASSERT_EQUAL(check_file("hostile-doctype.xml", 500, NULL, &doc, &body), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_PROTOCOL);
    /* refused: libxml2 stops at the entity amplification, or we at the DOCTYPE */
    CU_ASSERT(strstr(nx_error_msg(), "DOCTYPE") != NULL ||
              strstr(nx_error_msg(), "entity") != NULL);
    CU_ASSERT(strstr(nx_error_msg(), "root:") == NULL); /* /etc/passwd never read */
    const char *ext =
        "<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<s:Envelope xmlns:s=\"" NX_WSMAN_NS_SOAP "\"><s:Body>&x;</s:Body></s:Envelope>";
    CU_ASSERT_EQUAL(nx_wsman_check_answer("X", 200, ext, strlen(ext), NULL, &doc, &body), -1);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT(strstr(nx_error_msg(), "DOCTYPE") != NULL);
    CU_ASSERT_EQUAL(nx_wsman_check_answer("X", 200, "", 0, NULL, &doc, &body), -1);
    CU_ASSERT_PTR_NULL(doc);
    struct nx_wsman_instance *i = NULL;
    CU_ASSERT_EQUAL(nx_cim_instance_parse("<INSTANCE>", &i), -1);
    CU_ASSERT_EQUAL(nx_cim_instance_parse("<PROPERTY NAME='x'/>", &i), -1);
    CU_ASSERT_PTR_NULL(i);
}

static void test_uri(void)
{
    struct hv_endpoint e;
    CU_ASSERT_EQUAL_FATAL(hv_parse_uri("hyperv://hv1.example.com/wsman", &e), 0);
    CU_ASSERT_STRING_EQUAL(e.url, "https://hv1.example.com:5986/wsman");
    CU_ASSERT(!e.plain_http && !e.ntlm);
    hv_endpoint_release(&e);
    CU_ASSERT_EQUAL_FATAL(hv_parse_uri("hyperv+http://127.0.0.1:4711/wsman?auth=ntlm", &e), 0);
    CU_ASSERT_STRING_EQUAL(e.url, "http://127.0.0.1:4711/wsman");
    CU_ASSERT(e.plain_http && e.ntlm);
    hv_endpoint_release(&e);
    CU_ASSERT_EQUAL_FATAL(hv_parse_uri("hyperv+http://hv2", &e), 0);
    CU_ASSERT_STRING_EQUAL(e.url, "http://hv2:5985/wsman");
    hv_endpoint_release(&e);
    CU_ASSERT_EQUAL_FATAL(hv_parse_uri("hyperv://[fd00::1]:5999", &e), 0);
    CU_ASSERT_STRING_EQUAL(e.url, "https://[fd00::1]:5999/wsman");
    hv_endpoint_release(&e);
    CU_ASSERT_EQUAL(hv_parse_uri("hyperv://user:pw@hv1/wsman", &e), -1);
    CU_ASSERT_EQUAL(hv_parse_uri("hyperv://hv1:99999/wsman", &e), -1);
    CU_ASSERT_EQUAL(hv_parse_uri("hyperv://hv1/wsman?auth=kerberos", &e), -1);
    CU_ASSERT_EQUAL(hv_parse_uri("hyperv://", &e), -1);
}

static void test_wmi_path(void)
{
    struct nx_wsman_epr *e = nx_wsman_epr_new(
        NX_WSMAN_WMI_PREFIX "root/virtualization/v2/Msvm_SyntheticEthernetPortSettingData");
    nx_wsman_epr_add(e, "InstanceID", "Microsoft:ABC\\DEF\"x");
    nx_wsman_epr_add(e, "__cimnamespace", "root/virtualization/v2");
    char *p = hv_wmi_path("HV1", e);
    CU_ASSERT_STRING_EQUAL(
        p, "\\\\HV1\\root\\virtualization\\v2:Msvm_SyntheticEthernetPortSettingData."
           "InstanceID=\"Microsoft:ABC\\\\DEF\\\"x\"");
    char *k = hv_wmi_path_key(p, "InstanceID");
    CU_ASSERT_STRING_EQUAL(k, "Microsoft:ABC\\DEF\"x");
    free(k);
    CU_ASSERT_PTR_NULL(hv_wmi_path_key(p, "Name"));
    const char *sw = "\\\\HV1\\root\\virtualization\\v2:Msvm_VirtualEthernetSwitch."
                     "CreationClassName=\"Msvm_VirtualEthernetSwitch\",Name=\"1B33EB4B\"";
    k = hv_wmi_path_key(sw, "Name");
    CU_ASSERT_STRING_EQUAL(k, "1B33EB4B");
    free(k);
    CU_ASSERT_PTR_NULL(hv_wmi_path_key("garbage", "Name"));
    CU_ASSERT_PTR_NULL(hv_wmi_path_key("\\\\H\\r:C.Name=\"unterminated", "Name"));
    free(p);
    nx_wsman_epr_free(e);
}

static void test_kvp_items(void)
{
    size_t len = 2500;
    char *payload = nx_malloc(len);
    for (size_t i = 0; i < len; i++)
        payload[i] = (char)(i * 7 + 3);
    struct hv_kvp_items k;
    hv_kvp_items_build(payload, len, "ab12", &k);
    /* base64 of 2500 bytes is 3336 characters: 4 slices */
    CU_ASSERT_EQUAL_FATAL(k.n, 2 + 4);
    CU_ASSERT_STRING_EQUAL(k.names[0], HV_KVP_PREFIX "count");
    CU_ASSERT_STRING_EQUAL(k.values[0], "4");
    CU_ASSERT_STRING_EQUAL(k.values[1], "ab12");
    struct strbuf all = STRBUF_INIT;
    for (size_t i = 2; i < k.n; i++) {
        char want[64];
        snprintf(want, sizeof(want), HV_KVP_PREFIX "%03zu", i - 2);
        CU_ASSERT_STRING_EQUAL(k.names[i], want);
        CU_ASSERT(strlen(k.values[i]) <= HV_KVP_CHUNK);
        CU_ASSERT(strlen(k.values[i]) < 1024); /* the host-to-guest pool's limit */
        strbuf_addstr(&all, k.values[i]);
    }
    unsigned char *dec = nx_malloc(all.len);
    int n = EVP_DecodeBlock(dec, (const unsigned char *)all.buf, (int)all.len);
    /* EVP_DecodeBlock counts the padding bytes too */
    CU_ASSERT(n >= (int)len && n <= (int)len + 2);
    CU_ASSERT(memcmp(dec, payload, len) == 0);
    free(dec);
    strbuf_release(&all);
    hv_kvp_items_release(&k);
    hv_kvp_items_build("", 0, "e3b0", &k);
    CU_ASSERT_EQUAL(k.n, 2);
    CU_ASSERT_STRING_EQUAL(k.values[0], "0");
    hv_kvp_items_release(&k);
    free(payload);
}

static void test_paths_and_macs(void)
{
    char *r = hv_data_root("C:\\ProgramData\\Microsoft\\Windows\\Hyper-V", NULL, "acme");
    CU_ASSERT_STRING_EQUAL(r, "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V\\Cloud_Connect_"
                              "Replication\\acme");
    free(r);
    r = hv_data_root("D:\\VMs\\", "DR/tenants", "a:b*c");
    CU_ASSERT_STRING_EQUAL(r, "D:\\VMs\\DR\\tenants\\a_b_c");
    free(r);
    r = hv_data_root("D:\\VMs", "E:\\Replicas\\", "..");
    CU_ASSERT_STRING_EQUAL(r, "E:\\Replicas\\_");
    free(r);
    r = hv_data_root("D:\\VMs", "\\\\filer\\share", "t");
    CU_ASSERT_STRING_EQUAL(r, "\\\\filer\\share\\t");
    free(r);
    uint8_t mac[6] = {0x02, 0xab, 0x00, 0x10, 0xfe, 0x01}, back[6];
    char s[13];
    hv_format_mac(mac, s);
    CU_ASSERT_STRING_EQUAL(s, "02AB0010FE01");
    CU_ASSERT(hv_parse_mac("02ab0010fe01", back) && memcmp(back, mac, 6) == 0);
    CU_ASSERT(!hv_parse_mac("02:AB:00:10:FE:01", back));
    CU_ASSERT(!hv_parse_mac("02AB0010FE0G", back));
    CU_ASSERT(!hv_parse_mac(NULL, back));
    CU_ASSERT_STRING_EQUAL(hv_return_text(32775), "invalid state for this operation");
}

static CU_TestInfo tests[] = {
    {"envelope headers, MessageID, selector escaping", test_envelope},
    {"invoke body: EPR and embedded instance escaped twice", test_invoke_body_escaping},
    {"recorded Windows EnumerateResponse (ObjectAndEPR, nil, Datetime, marker)",
     test_enumerate_windows},
    {"recorded DefineSystem_OUTPUT: Job, ResultingSystem, ReturnValue", test_define_output},
    {"faults: WS-Man subcode, detail, WMI error; 401; fault-less 500", test_faults},
    {"truncated, non-SOAP, DOCTYPE/entities, empty answers", test_malformed},
    {"hyperv URIs", test_uri},
    {"WMI object paths", test_wmi_path},
    {"KVP payload items under the pool limit", test_kvp_items},
    {"data roots and MAC formats", test_paths_and_macs},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("wsman", tests)
