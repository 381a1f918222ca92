/* pki_cert.h: the tunnel PKI's certificates (pki_cert.c), private to pki.c.
 *
 * OpenSSL only: keys, certificates and revocation lists built, encoded,
 * decoded and verified, and the tenant-side certificates derived. Pure
 * functions of their arguments (and of the clock and the random source):
 * no files, no state directory, nothing of struct nx_pki. The store that
 * keeps them in the state directory is pki.c (pki.h). */
#ifndef NX_PKI_CERT_H
#define NX_PKI_CERT_H

#include "pki.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* nx_error_set(NX_EX_SOFTWARE) with OpenSSL's first queued error; the queue
 * is cleared. Returns -1. */
int pkc_ssl_error(const char *what);

/* PEM text of x / k (NULL if it cannot be encoded), and back (NULL if pem
 * holds none; OpenSSL's errors cleared). */
char *pkc_pem_of_cert(X509 *x);
char *pkc_pem_of_key(EVP_PKEY *k); /* secret: release with nx_free_secret */
X509 *pkc_cert_of_pem(const char *pem);
EVP_PKEY *pkc_key_of_pem(const char *pem);

/* A new EC P-256 key and its certificate, O=netext-deploy, OU=tenant, CN=cn:
 * a CA (NX_PKI_CA_DAYS, self-signed when ca and ca_key are NULL) or a leaf
 * for kind signed by ca (NX_PKI_LEAF_DAYS). */
int pkc_issue(const char *tenant, const char *cn, bool is_ca, enum nx_pki_kind kind, X509 *ca,
              EVP_PKEY *ca_key, X509 **cert_out, EVP_PKEY **key_out);
/* The tenant's client CA (pki.h): a new Ed25519 key, self-signed. */
int pkc_issue_clients_ca(const char *tenant, X509 **cert_out, EVP_PKEY **key_out);
/* The serial number of name's derived certificate (nx_pki_derive_client);
 * NULL with nx_error set. */
ASN1_INTEGER *pkc_derived_serial(X509 *clients_ca, const char *name);

/* Does k belong to x, and is x valid for more than days? */
bool pkc_pair_ok(X509 *x, EVP_PKEY *k, int days);
bool pkc_is_ed25519(EVP_PKEY *k);
/* x's end of validity (0 if it cannot be read). */
time_t pkc_not_after(X509 *x);
/* nx_pki_verify on decoded certificates. */
int pkc_verify(X509 *ca, X509 *x, enum nx_pki_kind kind, const char *tenant);

/* A revocation list of issuer's (next update: the issuer's end) revoking
 * serials[0..n), as PEM in *pem. */
int pkc_make_crl(X509 *issuer, EVP_PKEY *ik, ASN1_INTEGER **serials, size_t n, char **pem);
/* Does pem hold a revocation list that issuer signed? */
bool pkc_crl_ok(const char *pem, X509 *issuer);

/* SHA-256 (hex) of the strings parts[0..n), each preceded by its length. */
int pkc_digest(const char *const *parts, size_t n, char hex[65]);

#endif
