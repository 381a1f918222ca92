/* test-pki.c: the per-tenant tunnel PKI in a state directory. */
#include "config.h"

#include "testutil.h"

#include "pki.h"
#include "util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[] = "/tmp/nx-test-pki.XXXXXX";
static char *state;

static void rm_rf(const char *path)
{
    char *cmd = nx_asprintf("rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
    free(cmd);
}

static void setup(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(2);
    }
    state = nx_asprintf("%s/state/sub", root); /* parents are created too */
}

static void teardown(void)
{
    rm_rf(root);
    free(state);
}

static X509 *cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* mode of a/b ("" for b: a itself) */
static unsigned mode_of(const char *a, const char *b)
{
    char *p = nx_asprintf("%s%s%s", a, *b ? "/" : "", b);
    struct stat st;
    unsigned m = stat(p, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 01;
    free(p);
    return m;
}

/* the length of the tenant CA's certificate at the start of a CA file */
static size_t ca_len(const char *pem)
{
    const char *end = strstr(pem, "-----END CERTIFICATE-----");
    return end ? (size_t)(end - pem) : strlen(pem);
}

static void test_issue_and_verify(void)
{
    struct nx_pki *p;
    struct nx_pki_cred srv, cli;
    mode_t old = umask(0); /* modes must not depend on the caller's umask */
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx1", &srv), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_CLIENT, "t-prod", &cli), 0);
    umask(old);
    CU_ASSERT(srv.issued && cli.issued);
    CU_ASSERT_FALSE(srv.pending);
    CU_ASSERT(strstr(srv.key_pem, "BEGIN PRIVATE KEY") != NULL);
    /* one CA per tenant; a server's CA file adds the revocation list */
    CU_ASSERT_EQUAL(strncmp(srv.ca_pem, cli.ca_pem, strlen(cli.ca_pem)), 0);
    CU_ASSERT(strstr(srv.ca_pem + strlen(cli.ca_pem), "-----BEGIN X509 CRL-----") != NULL);
    CU_ASSERT_PTR_NULL(strstr(cli.ca_pem, "CRL"));

    /* chain and purpose */
    CU_ASSERT_EQUAL(nx_pki_verify(srv.ca_pem, srv.cert_pem, NX_PKI_SERVER, "acme"), 0);
    CU_ASSERT_EQUAL(nx_pki_verify(cli.ca_pem, cli.cert_pem, NX_PKI_CLIENT, "acme"), 0);
    CU_ASSERT_EQUAL(nx_pki_verify(srv.ca_pem, srv.cert_pem, NX_PKI_CLIENT, "acme"), -1);
    CU_ASSERT_EQUAL(nx_pki_verify(cli.ca_pem, cli.cert_pem, NX_PKI_SERVER, "acme"), -1);
    CU_ASSERT_EQUAL(nx_pki_verify(srv.ca_pem, srv.ca_pem, NX_PKI_SERVER, "acme"), -1);

    /* what the certificates say */
    X509 *x = cert(srv.cert_pem), *c = cert(cli.cert_pem), *ca = cert(srv.ca_pem);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    CU_ASSERT_FALSE(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    CU_ASSERT(X509_get_extended_key_usage(c) & XKU_SSL_CLIENT);
    CU_ASSERT_FALSE(X509_get_extended_key_usage(c) & XKU_SSL_SERVER);
    CU_ASSERT(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
    CU_ASSERT_FALSE(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
    CU_ASSERT(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
    CU_ASSERT_EQUAL(X509_check_ca(ca), 1);
    CU_ASSERT_EQUAL(X509_check_ca(x), 0);
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char group[64] = "";
    size_t glen = 0;
    CU_ASSERT(EVP_PKEY_is_a(pk, "EC"));
    CU_ASSERT(EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1);
    CU_ASSERT_STRING_EQUAL(group, "prime256v1");
    /* lifetimes: leaf about 2 years, CA about 10 */
    int days = 0, secs = 0;
    CU_ASSERT(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
    CU_ASSERT(days >= NX_PKI_LEAF_DAYS && days <= NX_PKI_LEAF_DAYS + 1);
    CU_ASSERT(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca)));
    CU_ASSERT(days >= NX_PKI_CA_DAYS && days <= NX_PKI_CA_DAYS + 1);
    X509_free(x);
    X509_free(c);
    X509_free(ca);

    /* modes */
    CU_ASSERT_EQUAL(mode_of(state, ""), 0700);
    CU_ASSERT_EQUAL(mode_of(state, "pki"), 0700);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme"), 0700);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/ca.key"), 0600);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/server-esx1.key"), 0600);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/client-t-prod.key"), 0600);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/server-esx1.crt"), 0644);
    CU_ASSERT_EQUAL(mode_of(state, "lock"), 0600);

    /* a second call loads the same material */
    struct nx_pki_cred again;
    CU_ASSERT_EQUAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx1", &again), 0);
    CU_ASSERT_FALSE(again.issued);
    CU_ASSERT_STRING_EQUAL(again.cert_pem, srv.cert_pem);
    CU_ASSERT_STRING_EQUAL(again.key_pem, srv.key_pem);
    nx_pki_cred_release(&again);
    nx_pki_cred_release(&srv);
    nx_pki_cred_release(&cli);
    nx_pki_close(p);
}

static void test_wrong_tenant(void)
{
    struct nx_pki *p;
    struct nx_pki_cred a, g;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx1", &a), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "globex", NX_PKI_CLIENT, "esx1", &g), 0);
    CU_ASSERT_STRING_NOT_EQUAL(a.ca_pem, g.ca_pem);
    /* globex's client certificate does not chain to acme's CA, and the reverse */
    CU_ASSERT_EQUAL(nx_pki_verify(a.ca_pem, g.cert_pem, NX_PKI_CLIENT, "globex"), -1);
    CU_ASSERT(strstr(nx_error_msg(), "does not verify") != NULL);
    CU_ASSERT_EQUAL(nx_pki_verify(g.ca_pem, a.cert_pem, NX_PKI_SERVER, "acme"), -1);
    /* right chain, wrong tenant name */
    CU_ASSERT_EQUAL(nx_pki_verify(a.ca_pem, a.cert_pem, NX_PKI_SERVER, "globex"), -1);
    CU_ASSERT(strstr(nx_error_msg(), "tenant 'acme'") != NULL);
    /* a tenant's key never appears with another tenant's material */
    CU_ASSERT_PTR_NULL(strstr(g.key_pem, a.key_pem));
    CU_ASSERT_STRING_NOT_EQUAL(g.key_pem, a.key_pem);
    nx_pki_cred_release(&a);
    nx_pki_cred_release(&g);
    nx_pki_close(p);
}

static void test_rotation(void)
{
    struct nx_pki *p;
    struct nx_pki_cred before, after, cl;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx1", &before), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_CLIENT, "t-prod", &cl), 0);
    nx_pki_cred_release(&cl);
    /* leaves only: 3 certificates (esx1, t-prod, the client CA), same CA */
    CU_ASSERT_EQUAL(nx_pki_rotate(p, "acme", false), 3);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx1", &after), 0);
    CU_ASSERT_FALSE(after.issued); /* rotate already wrote them */
    CU_ASSERT_EQUAL(strncmp(before.ca_pem, after.ca_pem, ca_len(before.ca_pem)), 0);
    CU_ASSERT_STRING_NOT_EQUAL(before.cert_pem, after.cert_pem);
    CU_ASSERT_STRING_NOT_EQUAL(before.key_pem, after.key_pem);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/server-esx1.key"), 0600);
    nx_pki_cred_release(&before);
    /* with the CA: everything new, and the old leaf no longer verifies */
    CU_ASSERT_EQUAL(nx_pki_rotate(p, "acme", true), 4);
    struct nx_pki_cred third;
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx1", &third), 0);
    CU_ASSERT_STRING_NOT_EQUAL(third.ca_pem, after.ca_pem);
    CU_ASSERT_EQUAL(nx_pki_verify(third.ca_pem, third.cert_pem, NX_PKI_SERVER, "acme"), 0);
    CU_ASSERT_EQUAL(nx_pki_verify(third.ca_pem, after.cert_pem, NX_PKI_SERVER, "acme"), -1);
    nx_pki_cred_release(&after);
    nx_pki_cred_release(&third);
    nx_pki_close(p);
}

static void test_renew_broken(void)
{
    /* a certificate that does not match its key (interrupted write) is re-issued */
    struct nx_pki *p;
    struct nx_pki_cred a, b;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx2", &a), 0);
    char *from = nx_asprintf("%s/pki/acme/server-esx1.key", state);
    char *to = nx_asprintf("%s/pki/acme/server-esx2.key", state);
    char *cmd = nx_asprintf("cp '%s' '%s'", from, to);
    CU_ASSERT_EQUAL(system(cmd), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx2", &b), 0);
    CU_ASSERT(b.issued);
    CU_ASSERT_STRING_NOT_EQUAL(a.cert_pem, b.cert_pem);
    free(from);
    free(to);
    free(cmd);
    nx_pki_cred_release(&a);
    nx_pki_cred_release(&b);
    nx_pki_close(p);
}

static void test_lock_and_readonly(void)
{
    struct nx_pki *p, *q = NULL;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL(nx_pki_open(state, NX_PKI_NOWAIT, &q), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_TEMPFAIL);
    CU_ASSERT(strstr(nx_error_msg(), "locked") != NULL);
    CU_ASSERT_PTR_NULL(q);
    CU_ASSERT_EQUAL(nx_pki_open(state, NX_PKI_NOWAIT | NX_PKI_READONLY, &q), -1);
    nx_pki_close(p);
    CU_ASSERT_EQUAL(nx_pki_open(state, NX_PKI_NOWAIT, &q), 0);
    nx_pki_close(q);

    /* read-only on a state directory that does not exist: pending, nothing created */
    char *missing = nx_asprintf("%s/missing", root);
    struct nx_pki_cred c;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(missing, NX_PKI_READONLY, &q), 0);
    CU_ASSERT_EQUAL(nx_pki_get(q, "acme", NX_PKI_SERVER, "esx1", &c), 0);
    CU_ASSERT(c.pending);
    CU_ASSERT_PTR_NULL(c.key_pem);
    nx_pki_close(q);
    CU_ASSERT_NOT_EQUAL(access(missing, F_OK), 0);
    /* read-only, existing: loads what is there, pending for what is not */
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, NX_PKI_READONLY, &q), 0);
    CU_ASSERT_EQUAL(nx_pki_get(q, "acme", NX_PKI_SERVER, "esx1", &c), 0);
    CU_ASSERT_FALSE(c.pending);
    CU_ASSERT_PTR_NOT_NULL(c.key_pem);
    nx_pki_cred_release(&c);
    CU_ASSERT_EQUAL(nx_pki_get(q, "acme", NX_PKI_SERVER, "never-seen", &c), 0);
    CU_ASSERT(c.pending);
    nx_pki_close(q);
    char *never = nx_asprintf("%s/pki/acme/server-never-seen.crt", state);
    CU_ASSERT_NOT_EQUAL(access(never, F_OK), 0);
    free(never);
    free(missing);
}

static void test_dir_checks(void)
{
    struct nx_pki *p;
    /* a directory open to others is tightened */
    CU_ASSERT_EQUAL(chmod(state, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    nx_pki_close(p);
    CU_ASSERT_EQUAL(mode_of(state, ""), 0700);
    /* a symbolic link is refused */
    char *link = nx_asprintf("%s/link", root);
    CU_ASSERT_EQUAL(symlink(state, link), 0);
    CU_ASSERT_EQUAL(nx_pki_open(link, 0, &p), -1);
    CU_ASSERT(strstr(nx_error_msg(), "not a directory") != NULL);
    /* relative paths are refused */
    CU_ASSERT_EQUAL(nx_pki_open("relative/dir", 0, &p), -1);
    /* tenant names cannot escape the directory */
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    struct nx_pki_cred c;
    CU_ASSERT_EQUAL(nx_pki_get(p, "../evil", NX_PKI_SERVER, "../../x", &c), 0);
    nx_pki_cred_release(&c);
    nx_pki_close(p);
    CU_ASSERT_EQUAL(mode_of(state, "pki/%2E.%2Fevil"), 0700);
    CU_ASSERT_EQUAL(mode_of(state, "pki/%2E.%2Fevil/server-%2E.%2F..%2Fx.key"), 0600);
    free(link);
}

static char *slurp(const char *rel)
{
    char *path = nx_asprintf("%s/%s", state, rel);
    FILE *f = fopen(path, "r");
    char *buf = nx_calloc(1, 65536);
    if (f) {
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
    }
    free(path);
    return buf;
}

static void spill(const char *rel, const char *text)
{
    char *path = nx_asprintf("%s/%s", state, rel);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static void test_check_stamp(void)
{
    struct nx_pki *p;
    struct nx_pki_cred a, b, g;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx3", &a), 0);
    CU_ASSERT(a.issued);
    /* the stamp: 0600, the magic, a digest, an end date about 2 years away */
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/server-esx3.ok"), 0600);
    char *stamp = slurp("pki/acme/server-esx3.ok");
    char hex[65] = "";
    long long end = 0;
    CU_ASSERT_EQUAL(sscanf(stamp, "netext-deploy pki check 1 %64s %lld", hex, &end), 2);
    CU_ASSERT_EQUAL(strlen(hex), 64);
    long long days = (end - (long long)time(NULL)) / 86400;
    CU_ASSERT(days >= NX_PKI_LEAF_DAYS - 1 && days <= NX_PKI_LEAF_DAYS);

    /* the stamp vouches for the files: a damaged CA key goes unnoticed until
     * something must be issued (nothing is decoded), and the texts are served
     * as they are on disk */
    char *cakey = slurp("pki/acme/ca.key");
    spill("pki/acme/ca.key", "not a key\n");
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx3", &b), 0);
    CU_ASSERT_FALSE(b.issued);
    CU_ASSERT_STRING_EQUAL(a.ca_pem, b.ca_pem);
    CU_ASSERT_STRING_EQUAL(a.cert_pem, b.cert_pem);
    CU_ASSERT_STRING_EQUAL(a.key_pem, b.key_pem);
    char *crt = slurp("pki/acme/server-esx3.crt");
    CU_ASSERT_STRING_EQUAL(b.cert_pem, crt);
    free(crt);
    nx_pki_cred_release(&b);
    spill("pki/acme/ca.key", cakey);
    free(cakey);

    /* an end date within NX_PKI_RENEW_DAYS: the full check runs (nothing is
     * renewed: the certificate itself is good) and writes the true date */
    char *near =
        nx_asprintf("netext-deploy pki check 1 %s %lld\n", hex, (long long)time(NULL) + 86400);
    spill("pki/acme/server-esx3.ok", near);
    free(near);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx3", &b), 0);
    CU_ASSERT_FALSE(b.issued);
    CU_ASSERT_STRING_EQUAL(a.cert_pem, b.cert_pem);
    nx_pki_cred_release(&b);
    char *rewritten = slurp("pki/acme/server-esx3.ok");
    CU_ASSERT_STRING_EQUAL(rewritten, stamp);
    free(rewritten);

    /* another tenant's pair copied in: the digest differs, the full check
     * finds the wrong chain and re-issues */
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "globex", NX_PKI_SERVER, "esx3", &g), 0);
    spill("pki/acme/server-esx3.crt", g.cert_pem);
    spill("pki/acme/server-esx3.key", g.key_pem);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx3", &b), 0);
    CU_ASSERT(b.issued);
    CU_ASSERT_EQUAL(nx_pki_verify(a.ca_pem, b.cert_pem, NX_PKI_SERVER, "acme"), 0);
    nx_pki_cred_release(&b);
    nx_pki_cred_release(&g);

    /* a key readable by others is not served from the stamp: the full path
     * tightens it */
    char *key = nx_asprintf("%s/pki/acme/server-esx3.key", state);
    CU_ASSERT_EQUAL(chmod(key, 0644), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx3", &b), 0);
    CU_ASSERT_FALSE(b.issued);
    CU_ASSERT_EQUAL(mode_of(state, "pki/acme/server-esx3.key"), 0600);
    nx_pki_cred_release(&b);
    free(key);

    /* a garbled stamp only costs the full check */
    spill("pki/acme/server-esx3.ok", "netext-deploy pki check 1 zz 1\n");
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "acme", NX_PKI_SERVER, "esx3", &b), 0);
    CU_ASSERT_FALSE(b.issued);
    nx_pki_cred_release(&b);
    rewritten = slurp("pki/acme/server-esx3.ok");
    CU_ASSERT(strncmp(rewritten, "netext-deploy pki check 1 ", 26) == 0 && strlen(rewritten) > 90);
    free(rewritten);
    free(stamp);
    nx_pki_cred_release(&a);
    CU_ASSERT_EQUAL(nx_pki_sync(p), 0);
    nx_pki_close(p);
}

/* 0 if leaf_pem verifies for a client against the CA file ca_file (its
 * certificates and revocation lists, as OpenVPN's crl-verify reads them),
 * else the X509_V_ERR code. */
static int verify_with_crls(const char *ca_file, const char *leaf_pem)
{
    BIO *b = BIO_new_mem_buf(ca_file, -1);
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
    X509_STORE *st = X509_STORE_new();
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *in = sk_X509_INFO_value(infos, i);
        if (in->x509)
            X509_STORE_add_cert(st, in->x509);
        if (in->crl)
            X509_STORE_add_crl(st, in->crl);
    }
    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    X509 *x = cert(leaf_pem);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, x, NULL);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    int rc = X509_verify_cert(ctx) == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_free(x);
    X509_STORE_free(st);
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(b);
    return rc;
}

static unsigned count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_tenant_side_certs(void)
{
    struct nx_pki *p;
    struct nx_pki_cred cc, cc2, a, a2, b, srv, legacy;
    CU_ASSERT_EQUAL_FATAL(nx_pki_open(state, 0, &p), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get_clients_ca(p, "initech", &cc), 0);
    CU_ASSERT_EQUAL(mode_of(state, "pki/initech/clients-ca.key"), 0600);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get_clients_ca(p, "initech", &cc2), 0);
    CU_ASSERT_STRING_EQUAL(cc.cert_pem, cc2.cert_pem); /* kept, not re-issued */
    CU_ASSERT_STRING_EQUAL(cc.key_pem, cc2.key_pem);
    nx_pki_cred_release(&cc2);
    X509 *cax = cert(cc.cert_pem);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cax);
    CU_ASSERT_EQUAL(X509_check_ca(cax), 1);
    CU_ASSERT(X509_get_extended_key_usage(cax) & XKU_SSL_CLIENT);
    CU_ASSERT_FALSE(X509_get_extended_key_usage(cax) & XKU_SSL_SERVER);
    CU_ASSERT(EVP_PKEY_is_a(X509_get0_pubkey(cax), "ED25519"));
    X509_free(cax);

    /* one certificate per appliance, a pure function of the client CA and the name */
    CU_ASSERT_EQUAL_FATAL(
        nx_pki_derive_client(cc.ca_pem, cc.cert_pem, cc.key_pem, "initech", "t-a", &a), 0);
    CU_ASSERT_EQUAL_FATAL(
        nx_pki_derive_client(cc.ca_pem, cc.cert_pem, cc.key_pem, "initech", "t-a", &a2), 0);
    CU_ASSERT_EQUAL_FATAL(
        nx_pki_derive_client(cc.ca_pem, cc.cert_pem, cc.key_pem, "initech", "t-b", &b), 0);
    CU_ASSERT_STRING_EQUAL(a.cert_pem, a2.cert_pem);
    CU_ASSERT_STRING_EQUAL(a.key_pem, a2.key_pem);
    nx_pki_cred_release(&a2); /* used again below */
    CU_ASSERT_STRING_EQUAL(a.ca_pem, cc.ca_pem);
    CU_ASSERT_STRING_NOT_EQUAL(a.cert_pem, b.cert_pem);
    CU_ASSERT_STRING_NOT_EQUAL(a.key_pem, b.key_pem);
    X509 *xa = cert(a.cert_pem), *xb = cert(b.cert_pem);
    CU_ASSERT_NOT_EQUAL(ASN1_INTEGER_cmp(X509_get0_serialNumber(xa), X509_get0_serialNumber(xb)),
                        0);
    X509_free(xa);
    X509_free(xb);
    CU_ASSERT_EQUAL(nx_pki_verify(cc.cert_pem, a.cert_pem, NX_PKI_CLIENT, "initech"), 0);
    CU_ASSERT_EQUAL(nx_pki_verify(cc.cert_pem, a.cert_pem, NX_PKI_SERVER, "initech"), -1);
    CU_ASSERT_EQUAL(nx_pki_verify(cc.ca_pem, a.cert_pem, NX_PKI_CLIENT, "initech"), -1);
    /* a wrong key for the client CA is refused */
    CU_ASSERT_EQUAL(nx_pki_derive_client(cc.ca_pem, cc.cert_pem, a.key_pem, "initech", "t-a", &a2),
                    -1);
    nx_pki_cred_release(&a2);

    /* the SP side: tenant CA, its list, client CA, its list; both accepted */
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "initech", NX_PKI_SERVER, "esx1", &srv), 0);
    CU_ASSERT_EQUAL(count(srv.ca_pem, "-----BEGIN X509 CRL-----"), 2);
    CU_ASSERT_EQUAL(count(srv.ca_pem, "-----BEGIN CERTIFICATE-----"), 2);
    CU_ASSERT(strstr(srv.ca_pem, cc.cert_pem) != NULL);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, a.cert_pem), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, b.cert_pem), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "initech", NX_PKI_CLIENT, "bundle", &legacy), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, legacy.cert_pem), 0);
    nx_pki_cred_release(&srv);

    /* revoke one: only it is refused; the list travels in the server's CA file */
    CU_ASSERT_EQUAL(nx_pki_revoke(p, "initech", "t-a", false), 0);
    CU_ASSERT_EQUAL(nx_pki_revoke(p, "initech", "t-a", false), 1);
    CU_ASSERT(nx_pki_is_revoked(p, "initech", "t-a"));
    CU_ASSERT_FALSE(nx_pki_is_revoked(p, "initech", "t-b"));
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "initech", NX_PKI_SERVER, "esx1", &srv), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, a.cert_pem), X509_V_ERR_CERT_REVOKED);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, b.cert_pem), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, legacy.cert_pem), 0);
    /* the lookup path serves the same file */
    struct nx_pki_cred fast;
    CU_ASSERT_EQUAL(nx_pki_lookup(p, "initech", NX_PKI_SERVER, "esx1", &fast), 0);
    CU_ASSERT_STRING_EQUAL(fast.ca_pem, srv.ca_pem);
    nx_pki_cred_release(&fast);
    nx_pki_cred_release(&srv);
    /* the certificate bundles carried before: revoked by its name, on the CA's list */
    CU_ASSERT_EQUAL(nx_pki_revoke(p, "initech", "bundle", false), 0);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "initech", NX_PKI_SERVER, "esx1", &srv), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, legacy.cert_pem), X509_V_ERR_CERT_REVOKED);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, b.cert_pem), 0);
    nx_pki_cred_release(&srv);
    struct nx_pki_cred none;
    CU_ASSERT_EQUAL(nx_pki_get(p, "initech", NX_PKI_CLIENT, "bundle", &none), -1);
    CU_ASSERT(strstr(nx_error_msg(), "revoked") != NULL);
    CU_ASSERT_EQUAL(nx_pki_lookup(p, "initech", NX_PKI_CLIENT, "bundle", &none), 1);
    nx_pki_cred_release(&none);
    /* undo */
    CU_ASSERT_EQUAL(nx_pki_revoke(p, "initech", "t-a", true), 0);
    CU_ASSERT_EQUAL(nx_pki_revoke(p, "initech", "t-a", true), 1);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "initech", NX_PKI_SERVER, "esx1", &srv), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, a.cert_pem), 0);
    nx_pki_cred_release(&srv);

    /* rotation: a new client CA; the old derived certificates are no longer
     * trusted, the new ones are, and a revoked name stays revoked */
    CU_ASSERT_EQUAL(nx_pki_revoke(p, "initech", "t-b", false), 0);
    CU_ASSERT(nx_pki_rotate(p, "initech", false) >= 2);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get_clients_ca(p, "initech", &cc2), 0);
    CU_ASSERT_STRING_NOT_EQUAL(cc.cert_pem, cc2.cert_pem);
    struct nx_pki_cred na, nb;
    CU_ASSERT_EQUAL_FATAL(
        nx_pki_derive_client(cc2.ca_pem, cc2.cert_pem, cc2.key_pem, "initech", "t-a", &na), 0);
    CU_ASSERT_EQUAL_FATAL(
        nx_pki_derive_client(cc2.ca_pem, cc2.cert_pem, cc2.key_pem, "initech", "t-b", &nb), 0);
    CU_ASSERT_STRING_NOT_EQUAL(na.cert_pem, a.cert_pem);
    CU_ASSERT_EQUAL_FATAL(nx_pki_get(p, "initech", NX_PKI_SERVER, "esx1", &srv), 0);
    CU_ASSERT_PTR_NULL(strstr(srv.ca_pem, cc.cert_pem));
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, na.cert_pem), 0);
    CU_ASSERT_EQUAL(verify_with_crls(srv.ca_pem, nb.cert_pem), X509_V_ERR_CERT_REVOKED);
    CU_ASSERT_NOT_EQUAL(verify_with_crls(srv.ca_pem, a.cert_pem), 0);
    nx_pki_cred_release(&srv);
    nx_pki_cred_release(&na);
    nx_pki_cred_release(&nb);
    nx_pki_cred_release(&cc2);
    nx_pki_cred_release(&legacy);
    nx_pki_cred_release(&a);
    nx_pki_cred_release(&b);
    nx_pki_cred_release(&cc);
    nx_pki_close(p);
}

static CU_TestInfo tests[] = {
    {"issue, verify, key usage, modes", test_issue_and_verify},
    {"another tenant's certificate is rejected", test_wrong_tenant},
    {"rotation of leaves and CA", test_rotation},
    {"a broken pair is re-issued", test_renew_broken},
    {"lock and read-only (dry run)", test_lock_and_readonly},
    {"state directory checks", test_dir_checks},
    {"the check stamp: served as is, re-checked on any change", test_check_stamp},
    {"tenant side: one certificate per appliance, revocation, rotation", test_tenant_side_certs},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    setup();
    int rc = nx_test_run("pki", NULL, NULL, tests);
    teardown();
    return rc;
}
