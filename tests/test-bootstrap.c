/* test-bootstrap.c: what netext-bootstrap renders and reads (src/bootstrap/appliance.c):
 * every template and rule, escaping (no value adds a directive or a command),
 * the hypervisor channels (fw_cfg, Hyper-V KVP, file), and file modes. */
#include "config.h"

#include "testutil.h"

#include "appliance.h"
#include "payload.h"
#include "payload_parse.h"
#include "template.h"
#include "util.h"
#include "xml.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char nx_app_tmpl_openvpn_client[];
extern const char nx_app_tmpl_network_sh[];

static char tmp[] = "/tmp/nx-test-bootstrap.XXXXXX";

#define PEM_C "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define PEM_K "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
#define PKI                                                                                        \
    "<pki><ca-certificate>" PEM_C "</ca-certificate><certificate>" PEM_C                           \
    "</certificate><private-key>" PEM_K "</private-key></pki>"

static const char provider_doc[] =
    "<netext-payload xmlns='urn:netext-deploy:payload:1' version='2' role='provider' "
    "tenant='acme' host='esx1' appliance='netext-acme-esx1'>"
    "<gateway address='198.51.100.1' port='6180'/>"
    "<production network='sp-prod' vlan='0' mac='02:00:00:00:00:01'>"
    "<static ip='192.0.2.10/24' gateway='192.0.2.1'><dns>192.0.2.53</dns></static></production>"
    "<network name='web' vlan='101' mac='02:00:00:00:01:01' tunnel-port='6281'/>"
    "<network name='db' vlan='102' mac='02:00:00:00:01:02' tunnel-port='6282'/>"
    "<public-ip-rule public='198.51.100.10:8080' replica='10.1.0.5:80'/>"
    "<public-ip-rule public='198.51.100.10:2222' replica='10.1.0.5:22'/>"
    "<public-ip-rule protocol='udp' public='198.51.100.11:53' replica='10.1.0.7:53'/>"
    "<public-ip-rule public='198.51.100.12:443' replica='10.1.0.7:443'/>" PKI "</netext-payload>";

static const char tenant_doc[] =
    "<netext-payload xmlns='urn:netext-deploy:payload:1' version='2' role='tenant' "
    "tenant='acme' host='src1' appliance='netext-t-acme-src1' network='lan'>"
    "<gateway address='gw.example.com' port='6180'/>"
    "<production network='lan' vlan='0' mac='02:00:00:00:00:09'><dhcp/></production>"
    "<extends name='web' vlan='101' sp-host='esx1' tunnel-port='6281'/>"
    "<extends name='db' vlan='102' sp-host='esx 2' tunnel-port='6282'/>" PKI "</netext-payload>";

static const struct nx_app_config cfg = {"/srv/appliance-root", "/usr/sbin/openvpn",
                                         "/usr/sbin/netext-bootstrap"};

static int init(void)
{
    nx_xml_init();
    return mkdtemp(tmp) ? 0 : 1;
}

static int clean(void)
{
    char *cmd = nx_asprintf("rm -rf '%s'", tmp);
    int rc = system(cmd);
    free(cmd);
    return rc != 0;
}

static void parse(const char *doc, struct nx_payload *p)
{
    int rc = nx_payload_parse(doc, strlen(doc), "test", p);
    if (rc < 0)
        fprintf(stderr, "\n%s\n", nx_error_msg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static const char *file(const struct nx_app_files *f, const char *path)
{
    const struct nx_app_file *e = nx_app_files_find(f, path);
    if (!e)
        fprintf(stderr, "\nmissing %s\n", path);
    return e ? e->data : "";
}

static bool has(const char *text, const char *needle)
{
    bool ok = strstr(text, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\nexpected '%s'\n", needle);
    return ok;
}

static void test_provider_files(void)
{
    struct nx_payload p;
    struct nx_app_files f = {0};
    parse(provider_doc, &p);
    CU_ASSERT_EQUAL_FATAL(nx_app_render(&p, &cfg, &f), 0);
    const struct nx_app_file *key = nx_app_files_find(&f, "etc/netext/pki/appliance.key");
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_EQUAL(key->mode, 0600);
    CU_ASSERT_STRING_EQUAL(key->data, PEM_K);
    const char *s = file(&f, "etc/netext/openvpn/nxt101.conf");
    CU_ASSERT(has(s, "\ndev nxt101\ndev-type tap\n"));
    CU_ASSERT(has(s, "\nproto tcp-server\nlport 6281\ntls-server\n"));
    CU_ASSERT(has(s, "\nca /srv/appliance-root/etc/netext/pki/ca.crt\n"));
    CU_ASSERT(has(s, "\nkey /srv/appliance-root/etc/netext/pki/appliance.key\n"));
    CU_ASSERT(has(s, "\nremote-cert-tls client\n"));
    CU_ASSERT(has(s, "\ndisable-dco\n"));
    CU_ASSERT(has(s, "\nwritepid /srv/appliance-root/run/netext/nxt101.pid\n"));
    CU_ASSERT_PTR_NULL(strstr(s, "\nmode server"));
    CU_ASSERT(has(file(&f, "etc/netext/openvpn/nxt102.conf"), "\nlport 6282\n"));
    CU_ASSERT_EQUAL(nx_app_files_find(&f, "etc/netext/openvpn/nxt102.conf")->mode, 0600);
    const char *sh = file(&f, "etc/netext/network.sh");
    CU_ASSERT(has(sh, "prod=$(if_by_mac '02:00:00:00:00:01')"));
    /* the scripts' shared helpers come with them */
    CU_ASSERT(has(sh, ". \"${0%/*}/lib.sh\""));
    CU_ASSERT(has(file(&f, "etc/netext/lib.sh"), "\nif_by_mac() {\n"));
    CU_ASSERT(has(sh, "ip addr replace '192.0.2.10/24' dev \"$addr_dev\""));
    CU_ASSERT(has(sh, "ip route replace default via '192.0.2.1'"));
    CU_ASSERT(has(sh, "nic=$(if_by_mac '02:00:00:00:01:01')\nip link set dev \"$nic\" master "
                      "'nxb101'"));
    CU_ASSERT(has(sh, "ip link set dev 'nxt102' master 'nxb102'"));
    CU_ASSERT_PTR_NULL(strstr(sh, "nxb0")); /* the tenant-side bridge */
    CU_ASSERT_PTR_NULL(strstr(sh, "dhclient -nw"));
    const char *fw = file(&f, "etc/netext/firewall.nft");
    CU_ASSERT(has(fw, "policy drop;"));
    CU_ASSERT(has(fw, "tcp dport { 6281, 6282 } accept"));
    CU_ASSERT(has(fw, "fib daddr type local tcp dport 22 accept"));
    CU_ASSERT(has(file(&f, "etc/netext/resolv.conf"), "nameserver 192.0.2.53\n"));
    CU_ASSERT(has(file(&f, "etc/systemd/system/netext-tunnel@.service"),
                  "ExecStart=/usr/sbin/openvpn --suppress-timestamps --config "
                  "/srv/appliance-root/etc/netext/openvpn/%i.conf"));
    CU_ASSERT(has(file(&f, "etc/systemd/system/netext-bootstrap.service"),
                  "ExecStart=/usr/sbin/netext-bootstrap apply"));
    nx_app_files_release(&f);
    nx_payload_release(&p);
}

static void test_tenant_files(void)
{
    struct nx_payload p;
    struct nx_app_files f = {0};
    parse(tenant_doc, &p);
    CU_ASSERT_EQUAL_FATAL(nx_app_render(&p, &cfg, &f), 0);
    const char *c = file(&f, "etc/netext/openvpn/nxt101.conf");
    CU_ASSERT(has(c, "\nproto tcp-client\nremote gw.example.com 6281\nnobind\n"));
    CU_ASSERT(has(c, "\ntls-client\n"));
    CU_ASSERT(has(c, "\nremote-cert-tls server\n"));
    CU_ASSERT(has(c, "\nverify-x509-name provider:esx1 name\n"));
    CU_ASSERT(has(c, "\ndisable-dco\n"));
    /* a host name that is no safe word is not put in the file at all */
    const char *c2 = file(&f, "etc/netext/openvpn/nxt102.conf");
    CU_ASSERT_PTR_NULL(strstr(c2, "verify-x509-name"));
    CU_ASSERT(has(c2, "\nremote gw.example.com 6282\n"));
    const char *sh = file(&f, "etc/netext/network.sh");
    CU_ASSERT(has(sh, "ip link set dev \"$prod\" master nxb0"));
    CU_ASSERT(has(sh, "ip link set dev nxb0 address '02:00:00:00:00:09'"));
    CU_ASSERT(has(sh, "ip link set dev 'nxt101' master nxb0"));
    CU_ASSERT(has(sh, "dhclient -nw \"$addr_dev\""));
    const char *fw = file(&f, "etc/netext/firewall.nft");
    CU_ASSERT_PTR_NULL(strstr(fw, "tcp dport {")); /* the client opens no port */
    CU_ASSERT_PTR_NULL(nx_app_files_find(&f, "etc/netext/resolv.conf"));
    /* failover is the SP appliance's */
    struct nx_app_files g = {0};
    CU_ASSERT_EQUAL(nx_app_render_failover(&p, &cfg, NULL, 0, &g), -1);
    CU_ASSERT(strstr(nx_error_msg(), "SP appliance") != NULL);
    nx_app_files_release(&g);
    nx_app_files_release(&f);
    nx_payload_release(&p);
}

static void test_failover_rules(void)
{
    struct nx_payload p;
    struct nx_app_files f = {0};
    parse(provider_doc, &p);
    /* a rule on port 22 can only come from a forged payload: never rendered */
    NX_GROW(p.rules, p.alloc_rules, p.n_rules + 1);
    struct nx_payload_rule r22 = {NX_PROTO_TCP, 0xC633640A, 22, 0x0A010005, 22};
    p.rules[p.n_rules++] = r22;
    struct nx_app_gateway gw[1] = {{&p.nets[0], 0x0A010001, 24}};
    CU_ASSERT_EQUAL_FATAL(nx_app_render_failover(&p, &cfg, gw, 1, &f), 0);
    const char *nft = file(&f, "etc/netext/failover-full.nft");
    CU_ASSERT(has(nft, "ip daddr 198.51.100.10 tcp dport 8080 dnat to 10.1.0.5:80\n"));
    CU_ASSERT(has(nft, "ip daddr 198.51.100.10 tcp dport 2222 dnat to 10.1.0.5:22\n"));
    CU_ASSERT(has(nft, "ip daddr 198.51.100.11 udp dport 53 dnat to 10.1.0.7:53\n"));
    CU_ASSERT(has(nft, "ip daddr 198.51.100.12 tcp dport 443 dnat to 10.1.0.7:443\n"));
    CU_ASSERT_PTR_NULL(strstr(nft, "dport 22 dnat"));
    /* the guard comes before every translation */
    CU_ASSERT(strstr(nft, "tcp dport 22 return") < strstr(nft, "dnat to"));
    CU_ASSERT(has(nft, "udp dport 22 return"));
    /* one SNAT per replica, with the first public address it was given */
    CU_ASSERT(has(nft, "ip saddr 10.1.0.5 snat to 198.51.100.10\n"));
    CU_ASSERT(has(nft, "ip saddr 10.1.0.7 snat to 198.51.100.11\n"));
    CU_ASSERT_PTR_NULL(strstr(nft, "snat to 198.51.100.12"));
    CU_ASSERT(has(nft, "masquerade"));
    CU_ASSERT(has(nft, "elements = { 198.51.100.10, 198.51.100.11, 198.51.100.12 }"));
    CU_ASSERT(has(nft, "ip daddr @public drop"));
    const char *sh = file(&f, "etc/netext/failover-full.sh");
    CU_ASSERT(has(sh, "ip addr replace '10.1.0.1/24' dev 'nxb101'"));
    CU_ASSERT(has(sh, "ip neigh replace proxy '198.51.100.10' dev \"$prod\""));
    CU_ASSERT(has(sh, "ip route replace '198.51.100.12'/32 dev lo"));
    CU_ASSERT(has(sh, "nft -f '/srv/appliance-root/etc/netext/failover-full.nft'"));
    const char *off = file(&f, "etc/netext/failover-off.sh");
    CU_ASSERT(has(off, "nft delete table ip netext_failover"));
    CU_ASSERT(has(off, "ip addr del '10.1.0.1/24' dev 'nxb101'"));
    CU_ASSERT(has(off, "ip neigh del proxy '198.51.100.11' dev \"$prod\""));
    nx_app_files_release(&f);
    nx_payload_release(&p);
}

/* Run one line of a rendered script with sh; true if marker was NOT created. */
static bool line_is_inert(const char *script, const char *prefix, const char *next,
                          const char *marker)
{
    const char *l = strstr(script, prefix);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    /* the quoted value may span lines: take up to the line that starts with next */
    const char *end = strstr(l, next);
    char *line = nx_strndup(l, end ? (size_t)(end - l) : strlen(l));
    char *path = nx_asprintf("%s/line.sh", tmp);
    FILE *fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fprintf(fp, "%s\n", line);
    fclose(fp);
    char *cmd = nx_asprintf("sh '%s' >/dev/null 2>&1", path);
    int rc = system(cmd);
    bool inert = rc == 0 && access(marker, F_OK) != 0;
    free(cmd);
    free(path);
    free(line);
    return inert;
}

static void test_escaping(void)
{
    struct nx_payload p;
    struct nx_app_files f = {0};
    char *marker = nx_asprintf("%s/pwned", tmp);
    /* network and tenant names may hold anything the plan allows, and more: in
     * scripts they are quoted, in OpenVPN and nftables files they never appear */
    char *evil =
        nx_asprintf("web'; touch %s; echo '\n$(touch %s)`touch %s`\"x", marker, marker, marker);
    parse(provider_doc, &p);
    free(p.nets[0].name);
    p.nets[0].name = nx_strdup(evil);
    free(p.tenant);
    p.tenant = nx_strdup("O'Brien \"&\" sons\nremote evil.example 1");
    free(p.appliance);
    p.appliance = nx_strdup("x'\n$(touch /tmp/nx-never)");
    CU_ASSERT_EQUAL_FATAL(nx_app_render(&p, &cfg, &f), 0);
    for (size_t i = 0; i < f.n; i++) {
        if (!strstr(f.items[i].path, ".sh")) {
            CU_ASSERT_PTR_NULL(strstr(f.items[i].data, "evil.example"));
            CU_ASSERT_PTR_NULL(strstr(f.items[i].data, "touch"));
        }
    }
    const char *sh = file(&f, "etc/netext/network.sh");
    CU_ASSERT(line_is_inert(sh, ": extended network", "\nip ", marker));
    CU_ASSERT(line_is_inert(sh, "appliance=", "\nrole=", "/tmp/nx-never"));
    char *cmd = nx_asprintf("sh -n '%s/line.sh'", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);

    /* the whole script parses */
    char *path = nx_asprintf("%s/network.sh", tmp);
    FILE *fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(sh, fp);
    fclose(fp);
    cmd = nx_asprintf("sh -n '%s'", path);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);
    free(path);
    nx_app_files_release(&f);

    /* values that do reach CONF files are checked: a gateway address, and the
     * template engine itself refuses a newline or a quote */
    free(p.gw_address);
    p.gw_address = nx_strdup("gw.example.com\nremote evil.example");
    struct nx_app_files g = {0};
    CU_ASSERT_EQUAL(nx_app_render(&p, &cfg, &g), -1);
    CU_ASSERT(strstr(nx_error_msg(), "not a host name") != NULL);
    nx_app_files_release(&g);
    struct nx_tctx *t = nx_tctx_new();
    nx_tctx_set(t, "vlan", "101");
    nx_tctx_set(t, "tap", "nxt101");
    nx_tctx_set(t, "port", "6281\nscript-security 2");
    nx_tctx_set(t, "gw_address", "gw");
    nx_tctx_set(t, "server_cn", "");
    nx_tctx_set(t, "ca", "/a");
    nx_tctx_set(t, "cert", "/b");
    nx_tctx_set(t, "key", "/c");
    nx_tctx_set(t, "pidfile", "/d");
    nx_tctx_set(t, "statusfile", "/e");
    struct strbuf out = STRBUF_INIT;
    CU_ASSERT_EQUAL(nx_template_render("client", nx_app_tmpl_openvpn_client, t, NX_ESC_CONF, &out),
                    -1);
    CU_ASSERT(strstr(nx_error_msg(), "newline") != NULL);
    nx_tctx_set(t, "port", "6281");
    nx_tctx_set(t, "ca", "/a\" up \"/bin/sh");
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_template_render("client", nx_app_tmpl_openvpn_client, t, NX_ESC_CONF, &out),
                    -1);
    nx_tctx_set(t, "ca", "/a");
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_template_render("client", nx_app_tmpl_openvpn_client, t, NX_ESC_CONF, &out),
                    0);
    strbuf_release(&out);
    nx_tctx_free(t);

    /* a root that would break the files is refused */
    struct nx_app_config bad = cfg;
    bad.root = "/srv/my root";
    CU_ASSERT_EQUAL(nx_app_render(&p, &bad, &g), -1);
    bad.root = "relative";
    CU_ASSERT_EQUAL(nx_app_render(&p, &bad, &g), -1);
    nx_app_files_release(&g);
    CU_ASSERT_NOT_EQUAL(access(marker, F_OK), 0);
    CU_ASSERT_NOT_EQUAL(access("/tmp/nx-never", F_OK), 0);
    free(evil);
    free(marker);
    nx_payload_release(&p);
}

static void test_no_credentials(void)
{
    const char doc[] = "<netext-payload xmlns='urn:netext-deploy:payload:1' version='2' "
                       "role='provider' tenant='t' host='h' appliance='a'>"
                       "<gateway address='gw' port='6180'/>"
                       "<production network='p' vlan='0' mac='02:00:00:00:00:01'><dhcp/>"
                       "</production><network name='n' vlan='5' mac='02:00:00:00:00:02' "
                       "tunnel-port='6185'/><pki pending='true'/></netext-payload>";
    struct nx_payload p;
    struct nx_app_files f = {0};
    parse(doc, &p);
    CU_ASSERT_EQUAL(nx_app_render(&p, &cfg, &f), -1);
    CU_ASSERT(strstr(nx_error_msg(), "no tunnel credentials (it was made by a dry run)") != NULL);
    nx_app_files_release(&f);
    nx_payload_release(&p);
}

static char *b64(const char *s)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_add_base64(&sb, s, strlen(s));
    return strbuf_detach(&sb, NULL);
}

static void write_text(const char *path, const char *text)
{
    char *dir = nx_strdup(path);
    *strrchr(dir, '/') = '\0';
    char *cmd = nx_asprintf("mkdir -p '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    free(cmd);
    free(dir);
}

static void kvp_record(FILE *f, const char *k, const char *v)
{
    char key[NX_APP_KVP_KEY_SIZE] = {0}, val[NX_APP_KVP_VALUE_SIZE] = {0};
    snprintf(key, sizeof(key), "%s", k);
    snprintf(val, sizeof(val), "%s", v);
    fwrite(key, 1, sizeof(key), f);
    fwrite(val, 1, sizeof(val), f);
}

static void test_channels(void)
{
    struct strbuf out = STRBUF_INIT;
    enum nx_app_channel used;
    char *sys = nx_asprintf("%s/sys1", tmp);
    /* nothing there */
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_FWCFG, NULL, sys, &out, &used), -1);
    /* libvirt: base64 in fw_cfg, with line breaks */
    char *enc = b64(tenant_doc);
    struct strbuf wrapped = STRBUF_INIT;
    for (size_t i = 0; enc[i]; i++) {
        strbuf_addch(&wrapped, enc[i]);
        if (i % 76 == 75)
            strbuf_addch(&wrapped, '\n');
    }
    char *fw = nx_asprintf("%s%s", sys, NX_APP_FWCFG_PATH);
    write_text(fw, wrapped.buf);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_AUTO, NULL, sys, &out, &used), 0);
    CU_ASSERT_EQUAL(used, NX_CH_FWCFG);
    CU_ASSERT_STRING_EQUAL(out.buf, tenant_doc);
    write_text(fw, "bm90IGJhc2U2NA=!");
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_FWCFG, NULL, sys, &out, &used), -1);
    CU_ASSERT(strstr(nx_error_msg(), "base64") != NULL);

    /* a file: XML as is, or base64 */
    char *xf = nx_asprintf("%s/p.xml", tmp), *bf = nx_asprintf("%s/p.b64", tmp);
    write_text(xf, provider_doc);
    write_text(bf, enc);
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_AUTO, xf, sys, &out, &used), 0);
    CU_ASSERT_EQUAL(used, NX_CH_FILE);
    CU_ASSERT_STRING_EQUAL(out.buf, provider_doc);
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_FILE, bf, sys, &out, &used), 0);
    CU_ASSERT_STRING_EQUAL(out.buf, tenant_doc);

    /* Hyper-V: KVP items in any order, with the payload's SHA-256 */
    char *sys2 = nx_asprintf("%s/sys2", tmp);
    char *pool = nx_asprintf("%s%s", sys2, NX_APP_KVP_IN);
    write_text(pool, "");
    char digest[65];
    nx_sha256_hex(tenant_doc, strlen(tenant_doc), digest);
    size_t len = strlen(enc), n = (len + 299) / 300;
    FILE *f = fopen(pool, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    kvp_record(f, "other.key", "other");
    for (size_t i = n; i-- > 0;) {
        char k[64], *slice = nx_strndup(enc + i * 300, len - i * 300 < 300 ? len - i * 300 : 300);
        snprintf(k, sizeof(k), NX_APP_KVP_PREFIX "%03zu", i);
        kvp_record(f, k, slice);
        free(slice);
    }
    char count[32];
    snprintf(count, sizeof(count), "%zu", n);
    kvp_record(f, NX_APP_KVP_PREFIX "sha256", digest);
    kvp_record(f, NX_APP_KVP_PREFIX "count", count);
    fclose(f);
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_AUTO, NULL, sys2, &out, &used), 0);
    CU_ASSERT_EQUAL(used, NX_CH_HYPERV);
    CU_ASSERT_STRING_EQUAL(out.buf, tenant_doc);
    /* an incomplete update (a slice missing, or the digest of another payload) */
    CU_ASSERT_EQUAL(nx_app_kvp_write(pool, NX_APP_KVP_PREFIX "sha256", "00"), 0);
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_HYPERV, NULL, sys2, &out, &used), -1);
    CU_ASSERT(strstr(nx_error_msg(), "SHA-256 does not match") != NULL);
    CU_ASSERT_EQUAL(nx_app_kvp_write(pool, NX_APP_KVP_PREFIX "count", "99"), 0);
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_HYPERV, NULL, sys2, &out, &used), -1);
    CU_ASSERT(strstr(nx_error_msg(), "missing") != NULL);
    /* status back to the host: one record, replaced in place */
    char *outpool = nx_asprintf("%s/kvp_pool_1", tmp);
    CU_ASSERT_EQUAL(nx_app_kvp_write(outpool, NX_APP_KVP_STATUS_KEY, "state=starting"), 0);
    CU_ASSERT_EQUAL(nx_app_kvp_write(outpool, NX_APP_KVP_STATUS_KEY, "state=ok"), 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(outpool, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, NX_APP_KVP_KEY_SIZE + NX_APP_KVP_VALUE_SIZE);

    /* auto with nothing at all says what it tried */
    char *none = nx_asprintf("%s/none", tmp);
    const char *path = getenv("PATH");
    char *saved = path ? nx_strdup(path) : NULL;
    setenv("PATH", "/nonexistent", 1);
    strbuf_reset(&out);
    CU_ASSERT_EQUAL(nx_app_read_payload(NX_CH_AUTO, NULL, none, &out, &used), -1);
    CU_ASSERT(strstr(nx_error_msg(), "--payload FILE") != NULL);
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
    free(none);
    free(outpool);
    free(pool);
    free(sys2);
    free(xf);
    free(bf);
    free(fw);
    free(enc);
    free(sys);
    strbuf_release(&wrapped);
    strbuf_release(&out);
}

static void test_write_modes(void)
{
    struct nx_payload p;
    struct nx_app_files f = {0};
    char *root = nx_asprintf("%s/root", tmp);
    struct nx_app_config c = cfg;
    c.root = root;
    parse(provider_doc, &p);
    CU_ASSERT_EQUAL_FATAL(nx_app_render(&p, &c, &f), 0);
    mode_t old = umask(0);
    CU_ASSERT_EQUAL(nx_app_write_files(root, &f), 0);
    umask(old);
    struct stat st;
    char *key = nx_asprintf("%s/etc/netext/pki/appliance.key", root);
    char *etc = nx_asprintf("%s/etc/netext", root);
    char *sh = nx_asprintf("%s/etc/netext/network.sh", root);
    CU_ASSERT_EQUAL(stat(key, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    CU_ASSERT_EQUAL(stat(etc, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
    CU_ASSERT_EQUAL(stat(sh, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
    free(key);
    free(etc);
    free(sh);
    free(root);
    nx_app_files_release(&f);
    nx_payload_release(&p);
}

/* supervise: a tunnel's state from its OpenVPN log, the status line, VMware */
static void test_supervise_state(void)
{
    static const char starting[] = "OpenVPN 2.6.14 x86_64-pc-linux-gnu\n"
                                   "TCP/UDP: Preserving recently used remote address\n"
                                   "Attempting to establish TCP connection with 192.0.2.10:6281\n";
    static const char up[] = "TCP connection established with [AF_INET]192.0.2.10:6281\n"
                             "Peer Connection Initiated with [AF_INET]192.0.2.10:6281\n"
                             "Initialization Sequence Completed\n";
    static const char lost[] = "[provider:esx1] Inactivity timeout (--ping-restart), restarting\n"
                               "SIGUSR1[soft,ping-restart] received, process restarting\n";
    static const char reset[] = "Connection reset, restarting [0]\n";
    static const char listening[] =
        "Listening for incoming TCP connection on [AF_INET][undef]:6281\n";
    struct strbuf log = STRBUF_INIT;
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(NULL, 0), -1);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state("", 0), -1);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state("TUN/TAP device nxt101 opened\n", 29), -1);
    strbuf_addstr(&log, starting);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 0);
    strbuf_addstr(&log, up);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 1);
    strbuf_addstr(&log, lost);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 0);
    strbuf_addstr(&log, starting);
    strbuf_addstr(&log, up);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 1);
    /* a tail cut inside the marker is not "up" */
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len - 5), 0);
    strbuf_addstr(&log, reset);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 0);
    strbuf_reset(&log);
    strbuf_addstr(&log, listening);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 0);
    strbuf_addstr(&log, up);
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, log.len), 1);
    /* only the part given counts */
    CU_ASSERT_EQUAL(nx_app_tunnel_log_state(log.buf, strlen(listening)), 0);

    strbuf_reset(&log);
    nx_app_status_format(&log, "waiting", "provider", "none", 1, 2, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(log.buf, "state=waiting role=provider failover=none tunnels=1/2");
    strbuf_reset(&log);
    nx_app_status_format(&log, "error", "unknown", "none", 0, 0, "uptime=3.2",
                         "no payload:\nline two\x7f");
    CU_ASSERT_STRING_EQUAL(log.buf, "state=error role=unknown failover=none tunnels=0/0 uptime=3.2 "
                                    "reason=no payload: line two ");
    strbuf_reset(&log);
    char longer[400];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    nx_app_status_format(&log, "error", "unknown", "none", 0, 0, "", longer);
    CU_ASSERT_EQUAL(log.len,
                    strlen("state=error role=unknown failover=none tunnels=0/0 reason=") + 300);

    /* vmware-rpctool is tried on VMware only (DMI), or when there is no DMI */
    char *vendor = nx_asprintf("%s/vm/sys/class/dmi/id/sys_vendor", tmp);
    char *vm = nx_asprintf("%s/vm", tmp), *novm = nx_asprintf("%s/no-dmi", tmp);
    CU_ASSERT(nx_app_on_vmware(novm));
    write_text(vendor, "QEMU\n");
    CU_ASSERT(!nx_app_on_vmware(vm));
    write_text(vendor, "VMware, Inc.\n");
    CU_ASSERT(nx_app_on_vmware(vm));
    free(vendor);
    free(vm);
    free(novm);
    strbuf_release(&log);
}

static CU_TestInfo tests[] = {
    {"provider side: OpenVPN server, bridges, firewall, units", test_provider_files},
    {"tenant side: OpenVPN client, one bridge, DHCP", test_tenant_files},
    {"full failover: every DNAT/SNAT rule, port 22 never", test_failover_rules},
    {"no value adds a directive or a command", test_escaping},
    {"no credentials, no tunnel", test_no_credentials},
    {"channels: fw_cfg, file, Hyper-V KVP, status", test_channels},
    {"written files and their modes", test_write_modes},
    {"supervise: tunnel state from the OpenVPN log, status line, VMware", test_supervise_state},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    return nx_test_run("bootstrap", init, clean, tests);
}
