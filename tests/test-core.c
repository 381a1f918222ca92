/* test-core.c: strbuf, util, hashmap, template engine, marker, credentials. */
#include "config.h"

#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "hashmap.h"
#include "provider.h"
#include "strbuf.h"
#include "template.h"
#include "util.h"

static void test_strbuf(void)
{
    struct strbuf sb = STRBUF_INIT;
    CU_ASSERT_STRING_EQUAL(sb.buf, "");
    for (int i = 0; i < 1000; i++)
        strbuf_addf(&sb, "%d,", i);
    CU_ASSERT_EQUAL(sb.len, strlen(sb.buf));
    CU_ASSERT(strncmp(sb.buf, "0,1,2,", 6) == 0);
    CU_ASSERT(strstr(sb.buf, ",999,") != NULL);
    strbuf_reset(&sb);
    strbuf_add_xml_escaped(&sb, "<a href=\"x\">&'</a>");
    CU_ASSERT_STRING_EQUAL(sb.buf, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
    strbuf_reset(&sb);
    strbuf_add_json_str(&sb, "q\"b\\\n\x01");
    CU_ASSERT_STRING_EQUAL(sb.buf, "\"q\\\"b\\\\\\n\\u0001\"");
    strbuf_reset(&sb);
    strbuf_add_base64(&sb, "any carnal pleas", 16);
    CU_ASSERT_STRING_EQUAL(sb.buf, "YW55IGNhcm5hbCBwbGVhcw==");
    strbuf_reset(&sb);
    strbuf_add_base64(&sb, "any carnal pleasu", 17);
    CU_ASSERT_STRING_EQUAL(sb.buf, "YW55IGNhcm5hbCBwbGVhc3U=");
    size_t len;
    char *s = strbuf_detach(&sb, &len);
    CU_ASSERT_EQUAL(len, 24);
    CU_ASSERT_EQUAL(sb.len, 0);
    free(s);
    strbuf_release(&sb);
}

static void test_parse_numbers(void)
{
    unsigned long v;
    uint32_t ip;
    unsigned p;
    CU_ASSERT(nx_parse_uint("4094", 1, 4094, &v) && v == 4094);
    CU_ASSERT(!nx_parse_uint("4095", 1, 4094, &v));
    CU_ASSERT(!nx_parse_uint("0", 1, 4094, &v));
    CU_ASSERT(!nx_parse_uint("010", 1, 4094, &v));
    CU_ASSERT(!nx_parse_uint("-1", 1, 4094, &v));
    CU_ASSERT(!nx_parse_uint("12a", 1, 4094, &v));
    CU_ASSERT(!nx_parse_uint("", 1, 4094, &v));
    CU_ASSERT(!nx_parse_uint("99999999999999999999999", 0, ~0UL, &v));
    CU_ASSERT(nx_parse_ipv4("192.0.2.1", &ip) && ip == 0xc0000201);
    CU_ASSERT(!nx_parse_ipv4("192.0.2.256", &ip));
    CU_ASSERT(!nx_parse_ipv4("192.0.2", &ip));
    CU_ASSERT(!nx_parse_ipv4("192.0.2.1.5", &ip));
    CU_ASSERT(!nx_parse_ipv4("192.0.02.1", &ip));
    CU_ASSERT(!nx_parse_ipv4(" 192.0.2.1", &ip));
    CU_ASSERT(nx_parse_cidr("10.0.0.5/24", &ip, &p) && p == 24 && ip == 0x0a000005);
    CU_ASSERT(!nx_parse_cidr("10.0.0.5/33", &ip, &p));
    CU_ASSERT(!nx_parse_cidr("10.0.0.5", &ip, &p));
    uint8_t mac[6];
    char buf[18];
    CU_ASSERT(nx_parse_mac("02:AB:cd:00:11:ff", mac));
    nx_format_mac(mac, buf);
    CU_ASSERT_STRING_EQUAL(buf, "02:ab:cd:00:11:ff");
    CU_ASSERT(!nx_parse_mac("02:ab:cd:00:11", mac));
    CU_ASSERT(!nx_parse_mac("02:ab:cd:00:11:ff:00", mac));
}

static void test_hashmap(void)
{
    struct nx_map m;
    nx_map_init(&m);
    char keys[5000][8];
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        CU_ASSERT_PTR_NULL(nx_map_put(&m, keys[i], (void *)(long)(i + 1)));
    }
    CU_ASSERT_EQUAL(m.n, 5000);
    for (int i = 0; i < 5000; i++)
        CU_ASSERT_EQUAL((long)nx_map_get(&m, keys[i]), i + 1);
    CU_ASSERT_PTR_NULL(nx_map_get(&m, "absent"));
    CU_ASSERT_EQUAL((long)nx_map_put(&m, "k7", (void *)99L), 8); /* existing kept */
    nx_map_release(&m);
}

static int render(const char *tmpl, struct nx_tctx *c, enum nx_escape e, char **out)
{
    struct strbuf sb = STRBUF_INIT;
    nx_error_clear();
    int rc = nx_template_render("t", tmpl, c, e, &sb);
    *out = strbuf_detach(&sb, NULL);
    return rc;
}

static void test_template(void)
{
    struct nx_tctx *c = nx_tctx_new();
    char *out;
    nx_tctx_set(c, "name", "a<b>&\"c'");
    nx_tctx_set(c, "empty", "");
    for (int i = 0; i < 3; i++)
        nx_tctx_setf(nx_tctx_add(c, "items"), "v", "%d", i);
    CU_ASSERT_EQUAL(render("<x n='{{name}}'/>", c, NX_ESC_XML, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "<x n='a&lt;b&gt;&amp;&quot;c&apos;'/>");
    free(out);
    CU_ASSERT_EQUAL(render("[{{#items}}{{v}}{{name}};{{/items}}]", c, NX_ESC_CONF, &out), -1);
    CU_ASSERT(strstr(nx_error_msg(), "'name'") != NULL); /* quote not allowed in CONF */
    free(out);
    CU_ASSERT_EQUAL(render("[{{#items}}{{v}};{{/items}}]", c, NX_ESC_CONF, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "[0;1;2;]");
    free(out);
    CU_ASSERT_EQUAL(render("{{#empty}}x{{/empty}}{{^empty}}y{{/empty}}{{^nope}}z{{/nope}}", c,
                           NX_ESC_XML, &out),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "yz");
    free(out);
    CU_ASSERT_EQUAL(render("echo {{name}}", c, NX_ESC_SHELL, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "echo 'a<b>&\"c'\\'''");
    free(out);
    /* strictness: unknown names, stray and unclosed tags are errors */
    CU_ASSERT_EQUAL(render("{{unknown}}", c, NX_ESC_XML, &out), -1);
    CU_ASSERT(strstr(nx_error_msg(), "no value for 'unknown'") != NULL);
    free(out);
    CU_ASSERT_EQUAL(render("{{#items}}x", c, NX_ESC_XML, &out), -1);
    free(out);
    CU_ASSERT_EQUAL(render("x{{/items}}", c, NX_ESC_XML, &out), -1);
    free(out);
    CU_ASSERT_EQUAL(render("{{name", c, NX_ESC_XML, &out), -1);
    free(out);
    CU_ASSERT_EQUAL(render("{{Name}}", c, NX_ESC_XML, &out), -1);
    free(out);
    /* a section nested in itself iterates the same list (found by fuzzing:
     * this used to loop forever); depth and output are bounded */
    CU_ASSERT_EQUAL(render("{{#items}}{{#items}}{{v}}{{/items}}|{{/items}}", c, NX_ESC_XML, &out),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "012|012|012|");
    free(out);
    CU_ASSERT_EQUAL(render("{{#items}}{{#items}}{{#items}}{{#items}}{{#items}}{{#items}}{{#items}}"
                           "{{#items}}{{#items}}x{{/items}}{{/items}}{{/items}}{{/items}}"
                           "{{/items}}{{/items}}{{/items}}{{/items}}{{/items}}",
                           c, NX_ESC_XML, &out),
                    -1);
    CU_ASSERT(strstr(nx_error_msg(), "nested too deeply") != NULL);
    free(out);
    /* a value that looks like a tag is data, not a directive */
    nx_tctx_set(c, "evil", "{{name}}");
    CU_ASSERT_EQUAL(render("{{evil}}", c, NX_ESC_XML, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "{{name}}");
    free(out);
    nx_tctx_free(c);
    nx_tctx_free(NULL);
}

static void test_marker(void)
{
    struct nx_marker m = {0}, back = {0};
    m.role = NX_ROLE_PROVIDER;
    m.tenant = nx_strdup("Ac me <&\"'> Ümlaut=x");
    m.host = nx_strdup("esx 1");
    m.revision = 1;
    memset(m.digest, 'a', 64);
    char *text = nx_marker_encode(&m);
    CU_ASSERT(strchr(text, '<') == NULL && strchr(text, '"') == NULL);
    CU_ASSERT_EQUAL(nx_marker_decode(text, &back), 0);
    CU_ASSERT_STRING_EQUAL(back.tenant, m.tenant);
    CU_ASSERT_STRING_EQUAL(back.host, m.host);
    CU_ASSERT_EQUAL(back.role, NX_ROLE_PROVIDER);
    CU_ASSERT_EQUAL(back.revision, 1);
    CU_ASSERT_STRING_EQUAL(back.digest, m.digest);
    CU_ASSERT_STRING_EQUAL(back.image, ""); /* none: no image= field */
    CU_ASSERT(strstr(text, "image=") == NULL);
    nx_marker_release(&back);
    /* the image id round-trips; anything but 16 hex digits reads as none */
    memcpy(m.image, "0123456789abcdef", 17);
    char *with = nx_marker_encode(&m);
    CU_ASSERT(strstr(with, " image=0123456789abcdef") != NULL);
    CU_ASSERT_EQUAL(nx_marker_decode(with, &back), 0);
    CU_ASSERT_STRING_EQUAL(back.image, "0123456789abcdef");
    nx_marker_release(&back);
    free(with);
    CU_ASSERT_EQUAL(
        nx_marker_decode("netext-deploy:1 role=provider tenant=a host=x image=xyz", &back), 0);
    CU_ASSERT_STRING_EQUAL(back.image, "");
    nx_marker_release(&back);
    /* not markers */
    CU_ASSERT_EQUAL(nx_marker_decode("hello", &back), -1);
    CU_ASSERT_EQUAL(nx_marker_decode("netext-deploy:1 role=provider host=x", &back), -1);
    CU_ASSERT_EQUAL(nx_marker_decode("netext-deploy:1 role=boss tenant=a host=x", &back), -1);
    CU_ASSERT_EQUAL(nx_marker_decode("netext-deploy:1 role=provider tenant=a%00b host=x", &back),
                    -1);
    CU_ASSERT_EQUAL(nx_marker_decode(NULL, &back), -1);
    free(text);
    nx_marker_release(&m);
}

static char *write_tmp(const char *content, mode_t mode)
{
    char *path = nx_strdup("/tmp/nx-creds-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
    fchmod(fd, mode);
    close(fd);
    return path;
}

static void test_credentials(void)
{
    struct nx_credentials c;
    unsetenv("NETEXT_DEPLOY_USER");
    unsetenv("NETEXT_DEPLOY_PASSWORD");
    char *ok = write_tmp("# c\nuser = root\npassword = s3cret=x\n[vsphere://vc2/sdk]\nuser=other\n"
                         "password=p2\n",
                         0600);
    CU_ASSERT_EQUAL(nx_credentials_load(&c, ok), 0);
    const struct nx_cred_entry *e = nx_credentials_for(&c, "qemu:///system");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->user, "root");
    CU_ASSERT_STRING_EQUAL(e->password, "s3cret=x");
    e = nx_credentials_for(&c, "vsphere://vc2/sdk");
    CU_ASSERT_STRING_EQUAL(e->user, "other");
    nx_credentials_release(&c);

    char *open_file = write_tmp("user=a\npassword=b\n", 0644);
    CU_ASSERT_EQUAL(nx_credentials_load(&c, open_file), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_NOPERM);
    CU_ASSERT(strstr(nx_error_msg(), "chmod 600") != NULL);

    char *bad = write_tmp("user=a\nthis line has the secret hunter2\n", 0600);
    CU_ASSERT_EQUAL(nx_credentials_load(&c, bad), -1);
    CU_ASSERT(strstr(nx_error_msg(), ":2:") != NULL);
    CU_ASSERT(strstr(nx_error_msg(), "hunter2") == NULL); /* never echo a line */

    setenv("NETEXT_DEPLOY_USER", "envuser", 1);
    setenv("NETEXT_DEPLOY_PASSWORD", "envpw", 1);
    CU_ASSERT_EQUAL(nx_credentials_load(&c, NULL), 0);
    e = nx_credentials_for(&c, "x");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->password, "envpw");
    nx_credentials_release(&c);
    unsetenv("NETEXT_DEPLOY_USER");
    unsetenv("NETEXT_DEPLOY_PASSWORD");
    unlink(ok);
    unlink(open_file);
    unlink(bad);
    free(ok);
    free(open_file);
    free(bad);
}

static void test_error(void)
{
    nx_error_clear();
    CU_ASSERT_EQUAL(nx_error_code(), 0);
    CU_ASSERT_EQUAL(nx_error_set(NX_EX_DATAERR, "thing %d failed", 3), -1);
    nx_error_prefix("host '%s': ", "esx1");
    CU_ASSERT_STRING_EQUAL(nx_error_msg(), "host 'esx1': thing 3 failed");
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_DATAERR);
    struct nx_diag d;
    nx_diag_init(&d);
    nx_diag_add(&d, "f.xml", 7, "bad %s", "x");
    CU_ASSERT_STRING_EQUAL(d.msgs[0], "f.xml:7: bad x");
    nx_diag_release(&d);
}

static CU_TestInfo tests[] = {
    {"strbuf", test_strbuf},
    {"number, address and MAC parsing", test_parse_numbers},
    {"hash map", test_hashmap},
    {"template engine", test_template},
    {"ownership marker text", test_marker},
    {"credentials file", test_credentials},
    {"error reporting", test_error},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("core", tests)
