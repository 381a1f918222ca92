/* pki_cert.c: the tunnel PKI's certificates (pki_cert.h): OpenSSL, no files. */
#include "config.h"

#include "pki_cert.h"
#include "error.h"
#include "strbuf.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DERIVE_KEY_LABEL "netext-deploy tenant-side key"
#define DERIVE_SERIAL_LABEL "netext-deploy tenant-side serial"

int pkc_ssl_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return nx_error_set(NX_EX_SOFTWARE, "%s: %s", what, *buf ? buf : "OpenSSL error");
}

void nx_pki_cred_release(struct nx_pki_cred *c)
{
    if (!c)
        return;
    free(c->ca_pem);
    free(c->cert_pem);
    nx_free_secret(c->key_pem);
    memset(c, 0, sizeof(*c));
}

/* ---- PEM ------------------------------------------------------------------- */

char *pkc_pem_of_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *ret = NULL;
    if (b && PEM_write_bio_X509(b, x)) {
        long n = BIO_get_mem_data(b, &data);
        ret = nx_strndup(data, (size_t)n);
    }
    BIO_free(b);
    return ret;
}

char *pkc_pem_of_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *data, *ret = NULL;
    if (!b)
        b = BIO_new(BIO_s_mem());
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
        long n = BIO_get_mem_data(b, &data);
        ret = nx_strndup(data, (size_t)n);
        nx_memzero(data, (size_t)n);
    }
    BIO_free(b);
    return ret;
}

X509 *pkc_cert_of_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return x;
}

EVP_PKEY *pkc_key_of_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return k;
}

/* ---- building certificates ------------------------------------------------- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return pkc_ssl_error("certificate extension");
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : pkc_ssl_error("certificate extension");
}

static X509_NAME *make_name(const char *tenant, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    if (!n ||
        !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"netext-deploy",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const unsigned char *)tenant, -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

struct ext {
    int nid;
    const char *value;
};

/* Everything a certificate says apart from its subject's key. */
struct cert_spec {
    const char *tenant, *cn; /* the subject (make_name) */
    X509 *issuer; /* NULL: self-signed */
    EVP_PKEY *issuer_key; /* NULL: signed with the subject's key */
    ASN1_INTEGER *serial; /* NULL: 127 random bits */
    int days; /* valid from an hour ago (clock skew) for days; 0: as the issuer */
    const struct ext *exts; /* added in this order; ends with nid 0 */
    const char *what; /* the error when a field cannot be set */
};

/* The one certificate builder: key's certificate as spec says, signed
 * (SHA-256, none for Ed25519, whose signatures are deterministic). */
static int build(const struct cert_spec *s, EVP_PKEY *key, X509 **out)
{
    X509 *x = X509_new();
    X509_NAME *name = make_name(s->tenant, s->cn);
    BIGNUM *bn = NULL;
    ASN1_INTEGER *random = NULL, *serial = s->serial;
    EVP_PKEY *signer = s->issuer_key ? s->issuer_key : key;
    int ret = -1;
    if (!serial && (!(bn = BN_new()) || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
                    !(serial = random = BN_to_ASN1_INTEGER(bn, NULL))))
        goto fail;
    if (!x || !name || !X509_set_serialNumber(x, serial) || !X509_set_version(x, 2) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer) : name) ||
        !X509_set_pubkey(x, key))
        goto fail;
    if (s->days ? !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
                      !X509_time_adj_ex(X509_getm_notAfter(x), s->days, 0, NULL)
                : !X509_set1_notBefore(x, X509_get0_notBefore(s->issuer)) ||
                      !X509_set1_notAfter(x, X509_get0_notAfter(s->issuer)))
        goto fail;
    for (const struct ext *e = s->exts; e->nid; e++)
        if (add_ext(x, s->issuer ? s->issuer : x, e->nid, e->value) < 0)
            goto cleanup;
    if (!X509_sign(x, signer, EVP_PKEY_get_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256())) {
        pkc_ssl_error("signing a certificate");
        goto cleanup;
    }
    *out = x;
    x = NULL;
    ret = 0;
    goto cleanup;
fail:
    pkc_ssl_error(s->what);
cleanup:
    ASN1_INTEGER_free(random);
    BN_free(bn);
    X509_NAME_free(name);
    X509_free(x);
    return ret;
}

/* build() for a new key (NULL: "generating a key" failed). */
static int build_new(const struct cert_spec *s, EVP_PKEY *key, X509 **cert_out, EVP_PKEY **key_out)
{
    if (!key)
        return pkc_ssl_error("generating a key");
    if (build(s, key, cert_out) < 0) {
        EVP_PKEY_free(key);
        return -1;
    }
    *key_out = key;
    return 0;
}

int pkc_issue(const char *tenant, const char *cn, bool is_ca, enum nx_pki_kind kind, X509 *ca,
              EVP_PKEY *ca_key, X509 **cert_out, EVP_PKEY **key_out)
{
    static const struct ext ca_exts[] = {
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
        {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {0, NULL},
    };
    const struct ext leaf_exts[] = {
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, kind == NX_PKI_SERVER ? "serverAuth" : "clientAuth"},
        {0, NULL},
    };
    struct cert_spec s = {
        .tenant = tenant,
        .cn = cn,
        .issuer = ca,
        .issuer_key = ca_key,
        .days = is_ca ? NX_PKI_CA_DAYS : NX_PKI_LEAF_DAYS,
        .exts = is_ca ? ca_exts : leaf_exts,
        .what = "building a certificate",
    };
    return build_new(&s, EVP_EC_gen("P-256"), cert_out, key_out);
}

int pkc_issue_clients_ca(const char *tenant, X509 **cert_out, EVP_PKEY **key_out)
{
    static const struct ext exts[] = {
        {NID_subject_key_identifier, "hash"},
        {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_ext_key_usage, "clientAuth"},
        {0, NULL},
    };
    struct cert_spec s = {
        .tenant = tenant,
        .cn = "clients",
        .days = NX_PKI_LEAF_DAYS,
        .exts = exts,
        .what = "building a certificate",
    };
    return build_new(&s, EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), cert_out, key_out);
}

/* ---- tenant-side certificates, derived ------------------------------------- */

/* The serial number of name's derived certificate: 128 bits of SHA-256(label,
 * the client CA's DER, name), positive, first byte 0x40-0x7f. */
ASN1_INTEGER *pkc_derived_serial(X509 *clients_ca, const char *name)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int len = i2d_X509(clients_ca, &der);
    ASN1_INTEGER *ret = NULL;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (len > 0 && c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
        EVP_DigestUpdate(c, DERIVE_SERIAL_LABEL, sizeof(DERIVE_SERIAL_LABEL)) &&
        EVP_DigestUpdate(c, der, (size_t)len) && EVP_DigestUpdate(c, name, strlen(name)) &&
        EVP_DigestFinal_ex(c, md, &mdlen) && mdlen >= 16) {
        md[0] = (unsigned char)((md[0] & 0x3f) | 0x40);
        BIGNUM *bn = BN_bin2bn(md, 16, NULL);
        ret = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
        BN_free(bn);
    }
    EVP_MD_CTX_free(c);
    OPENSSL_free(der);
    if (!ret)
        pkc_ssl_error("deriving a serial number");
    return ret;
}

/* name's key from the client CA's: Ed25519 from HMAC-SHA256(the CA's raw key;
 * label, tenant, name). NULL with nx_error set. */
static EVP_PKEY *derived_key(EVP_PKEY *cak, const char *tenant, const char *name)
{
    unsigned char raw[64], seed[32];
    size_t rawlen = sizeof(raw), seedlen = 0;
    struct strbuf msg = STRBUF_INIT;
    EVP_PKEY *key = NULL;
    if (EVP_PKEY_get_id(cak) != EVP_PKEY_ED25519 ||
        !EVP_PKEY_get_raw_private_key(cak, raw, &rawlen)) {
        nx_error_set(NX_EX_DATAERR, "the client CA's key is not an Ed25519 key");
        ERR_clear_error();
        goto cleanup;
    }
    strbuf_add(&msg, DERIVE_KEY_LABEL, sizeof(DERIVE_KEY_LABEL));
    strbuf_add(&msg, tenant, strlen(tenant) + 1);
    strbuf_addstr(&msg, name);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, raw, rawlen, (unsigned char *)msg.buf,
                   msg.len, seed, sizeof(seed), &seedlen) ||
        seedlen != sizeof(seed) ||
        !(key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed))))
        pkc_ssl_error("deriving a tenant-side certificate");
cleanup:
    nx_memzero(raw, sizeof(raw));
    nx_memzero(seed, sizeof(seed));
    strbuf_release(&msg);
    return key;
}

/* name's key and certificate from the client CA: deterministic (the key and
 * serial derived, the validity the CA's, Ed25519 signatures). */
static int derive_leaf(X509 *cax, EVP_PKEY *cak, const char *tenant, const char *name,
                       X509 **cert_out, EVP_PKEY **key_out)
{
    static const struct ext exts[] = {
        {NID_authority_key_identifier, "keyid:always"},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "clientAuth"},
        {0, NULL},
    };
    char *cn = nx_asprintf("tenant:%s", name);
    struct cert_spec s = {
        .tenant = tenant,
        .cn = cn,
        .issuer = cax,
        .issuer_key = cak,
        .exts = exts,
        .what = "deriving a tenant-side certificate",
    };
    EVP_PKEY *key = derived_key(cak, tenant, name);
    int ret = -1;
    if (key && (s.serial = pkc_derived_serial(cax, name)) && build(&s, key, cert_out) == 0) {
        *key_out = key;
        key = NULL;
        ret = 0;
    }
    ASN1_INTEGER_free(s.serial);
    EVP_PKEY_free(key);
    free(cn);
    return ret;
}

int nx_pki_derive_client(const char *ca_pem, const char *clients_ca_pem,
                         const char *clients_key_pem, const char *tenant, const char *name,
                         struct nx_pki_cred *out)
{
    memset(out, 0, sizeof(*out));
    X509 *cax = clients_ca_pem ? pkc_cert_of_pem(clients_ca_pem) : NULL, *x = NULL;
    EVP_PKEY *cak = clients_key_pem ? pkc_key_of_pem(clients_key_pem) : NULL, *k = NULL;
    int ret = -1;
    if (!cax || !cak || !ca_pem) {
        nx_error_set(NX_EX_DATAERR, "the bundle's client CA is not a PEM certificate and key");
        goto cleanup;
    }
    if (X509_check_private_key(cax, cak) != 1) {
        ERR_clear_error();
        nx_error_set(NX_EX_DATAERR, "the bundle's client CA does not match its key");
        goto cleanup;
    }
    if (derive_leaf(cax, cak, tenant, name, &x, &k) < 0)
        goto cleanup;
    out->cert_pem = pkc_pem_of_cert(x);
    out->key_pem = pkc_pem_of_key(k);
    out->ca_pem = nx_strdup(ca_pem);
    if (!out->cert_pem || !out->key_pem) {
        nx_pki_cred_release(out);
        pkc_ssl_error("encoding PEM");
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (ret < 0)
        nx_error_prefix("tenant-side appliance '%s': ", name);
    X509_free(cax);
    X509_free(x);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(k);
    return ret;
}

/* ---- checks ---------------------------------------------------------------- */

static bool expires_soon(X509 *x, int days)
{
    time_t t = time(NULL) + (time_t)days * 86400;
    return X509_cmp_time(X509_get0_notAfter(x), &t) <= 0;
}

bool pkc_pair_ok(X509 *x, EVP_PKEY *k, int days)
{
    bool ok = X509_check_private_key(x, k) == 1 && !expires_soon(x, days);
    ERR_clear_error();
    return ok;
}

bool pkc_is_ed25519(EVP_PKEY *k)
{
    return EVP_PKEY_get_id(k) == EVP_PKEY_ED25519;
}

time_t pkc_not_after(X509 *x)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        return 0;
    return timegm(&tm);
}

int pkc_verify(X509 *ca, X509 *x, enum nx_pki_kind kind, const char *tenant)
{
    int ret = -1;
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!st || !ctx || !X509_STORE_add_cert(st, ca) || !X509_STORE_CTX_init(ctx, st, x, NULL)) {
        pkc_ssl_error("certificate verification");
        goto cleanup;
    }
    X509_STORE_CTX_set_purpose(ctx, kind == NX_PKI_SERVER ? X509_PURPOSE_SSL_SERVER
                                                          : X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) != 1) {
        nx_error_set(NX_EX_DATAERR, "certificate does not verify: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto cleanup;
    }
    char ou[256] = "";
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName, ou,
                                  sizeof(ou)) < 0 ||
        strcmp(ou, tenant) != 0) {
        nx_error_set(NX_EX_DATAERR, "certificate belongs to tenant '%s', not '%s'", ou, tenant);
        goto cleanup;
    }
    ret = 0;
cleanup:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    return ret;
}

int nx_pki_verify(const char *ca_pem, const char *cert_pem, enum nx_pki_kind kind,
                  const char *tenant)
{
    X509 *ca = ca_pem ? pkc_cert_of_pem(ca_pem) : NULL,
         *x = cert_pem ? pkc_cert_of_pem(cert_pem) : NULL;
    int ret;
    if (!ca || !x)
        ret = nx_error_set(NX_EX_DATAERR, "not a PEM certificate");
    else
        ret = pkc_verify(ca, x, kind, tenant);
    X509_free(ca);
    X509_free(x);
    return ret;
}

/* ---- revocation lists ------------------------------------------------------ */

int pkc_make_crl(X509 *issuer, EVP_PKEY *ik, ASN1_INTEGER **serials, size_t n, char **pem)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = ASN1_TIME_adj(NULL, time(NULL), 0, 0);
    BIO *b = BIO_new(BIO_s_mem());
    int ret = -1;
    *pem = NULL;
    if (!crl || !now || !b || !X509_CRL_set_version(crl, 1) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
        !X509_CRL_set1_lastUpdate(crl, now) ||
        !X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(issuer))) /* lives with its CA */
        goto fail;
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        if (!r || !X509_REVOKED_set_serialNumber(r, serials[i]) ||
            !X509_REVOKED_set_revocationDate(r, now) || !X509_CRL_add0_revoked(crl, r)) {
            X509_REVOKED_free(r);
            goto fail;
        }
    }
    X509_CRL_sort(crl);
    if (!X509_CRL_sign(crl, ik, EVP_PKEY_get_id(ik) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) ||
        !PEM_write_bio_X509_CRL(b, crl))
        goto fail;
    char *data;
    long len = BIO_get_mem_data(b, &data);
    *pem = nx_strndup(data, (size_t)len);
    ret = 0;
    goto cleanup;
fail:
    pkc_ssl_error("building a revocation list");
cleanup:
    BIO_free(b);
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    return ret;
}

bool pkc_crl_ok(const char *pem, X509 *issuer)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    bool ok = crl && X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1;
    X509_CRL_free(crl);
    BIO_free(b);
    ERR_clear_error();
    return ok;
}

/* ---- digest ---------------------------------------------------------------- */

int pkc_digest(const char *const *parts, size_t nparts, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < nparts; i++) {
        char len[32];
        int l = snprintf(len, sizeof(len), "%zu\n", strlen(parts[i]));
        ok = EVP_DigestUpdate(c, len, (size_t)l) && EVP_DigestUpdate(c, parts[i], strlen(parts[i]));
    }
    ok = ok && EVP_DigestFinal_ex(c, md, &n) && n == 32;
    EVP_MD_CTX_free(c);
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}
