/* pki.h: the per-tenant tunnel PKI, kept in the state directory.
 *
 * One CA per tenant (EC P-256, 10 years), one server certificate per
 * provider-side appliance and, for tenant-side appliances derived on the
 * provider side (`payload --role tenant`) and old bundles, client certificates (EC P-256, 2 years;
 * keyUsage digitalSignature, extendedKeyUsage serverAuth resp. clientAuth). Subjects:
 * O=netext-deploy, OU=<tenant>, CN=ca | provider:<host> | tenant:<name>.
 *
 * Layout (netext-deploy(8), TUNNEL PKI; docs/internals/tunnel-pki.md):
 *   STATE/            0700, locked with flock(STATE/lock) for the whole run
 *   STATE/pki/T/      0700, T = tenant name, percent-encoded
 *   STATE/pki/T/ca.crt, ca.key, server-H.crt/.key, client-N.crt/.key
 *   STATE/pki/T/server-H.ok, client-N.ok: check stamps (a cache, pki.c)
 *   STATE/pki/T/clients-ca.crt, .key: the tenant-side client CA (below)
 *   STATE/pki/T/revoked: revoked tenant-side appliance names, one a line
 *   STATE/pki/T/ca.crl, clients-ca.crl: the revocation lists of both CAs
 * Keys are 0600, written to an O_EXCL temporary file created with mode 0600
 * and renamed into place: they are never readable by others, not even briefly.
 * Certificates are 0644 (inside the 0700 directory). Files are not fsynced
 * one by one (nx_write_atomic with NX_FS_NOSYNC, src/fsutil.h):
 * nx_pki_sync() makes them durable, once per run (one syncfs). */
#ifndef NX_PKI_H
#define NX_PKI_H

#include <stdbool.h>

#define NX_STATE_DIR_DEFAULT "/var/lib/netext-deploy"
#define NX_STATE_DIR_ENV "NETEXT_DEPLOY_STATE_DIR"

#define NX_PKI_CA_DAYS 3650
#define NX_PKI_LEAF_DAYS 730
/* A leaf certificate closer than this to its end is renewed on the next run. */
#define NX_PKI_RENEW_DAYS 30

enum nx_pki_kind { NX_PKI_SERVER = 0, NX_PKI_CLIENT };

enum {
    NX_PKI_READONLY = 1, /* never create or renew anything (dry run); shared lock */
    NX_PKI_NOWAIT = 2, /* fail (EX_TEMPFAIL) instead of waiting for the lock */
};

struct nx_pki;

/* $NETEXT_DEPLOY_STATE_DIR, else NX_STATE_DIR_DEFAULT. */
const char *nx_state_dir_default(void);

/* Open (creating it 0700 unless READONLY) and lock the state directory. A
 * directory that is not ours, or not a directory, is refused; one readable by
 * others is tightened to 0700 with a warning. READONLY on a missing directory
 * succeeds: everything is then "pending". */
int nx_pki_open(const char *dir, unsigned flags, struct nx_pki **out);
void nx_pki_close(struct nx_pki *p); /* accepts NULL; syncs; releases the lock */
/* Make every file written since the last sync durable (one syncfs of the
 * state directory's file system). Call it before anything that depends on
 * the credentials leaves the process: a payload deployed, a bundle written. */
int nx_pki_sync(struct nx_pki *p);
const char *nx_pki_dir(const struct nx_pki *p);

/* What an appliance needs. key_pem is secret: release with nx_pki_cred_release. */
struct nx_pki_cred {
    char *ca_pem;
    char *cert_pem;
    char *key_pem;
    bool pending; /* READONLY: would be issued or renewed (fields NULL) */
    bool issued; /* this call created or renewed the certificate */
};
void nx_pki_cred_release(struct nx_pki_cred *c);

/* The tenant's CA and the certificate of one appliance: loaded, or issued if
 * missing, expiring within NX_PKI_RENEW_DAYS, not matching its key, or not
 * issued by the tenant's current CA. name: the host (server) or the
 * tenant-side appliance's name (client; refused if revoked). A server's
 * ca_pem is what its OpenVPN server trusts for clients, each followed by its
 * revocation list: the tenant CA, ca.crl, and the client CA with
 * clients-ca.crl when a bundle made one (lists written when missing). */
int nx_pki_get(struct nx_pki *p, const char *tenant, enum nx_pki_kind kind, const char *name,
               struct nx_pki_cred *out);

/* Only what the check stamp vouches for (pki.c): 0 and *out filled, or 1 when
 * the full nx_pki_get() is needed. Decodes nothing, writes nothing, needs no
 * lock (files are replaced by rename, and the stamp covers all three). */
int nx_pki_lookup(struct nx_pki *p, const char *tenant, enum nx_pki_kind kind, const char *name,
                  struct nx_pki_cred *out);

/* Let other processes in between operations: each later nx_pki_get() takes
 * the lock for itself and gives it back. nx_pki_get() may be called from
 * several threads (calls are serialised). */
void nx_pki_unlock(struct nx_pki *p);

/* Rotation: new leaf keys and certificates for every appliance of the tenant
 * that has one (and, with ca, a new CA first). Returns the number of
 * certificates re-issued, or -1. The next run carries them in the payloads. */
int nx_pki_rotate(struct nx_pki *p, const char *tenant, bool ca);

/* Does cert_pem chain to ca_pem, for the purpose of kind, and name tenant in
 * its OU? 0 if so; -1 with nx_error set (the reason) if not. */
int nx_pki_verify(const char *ca_pem, const char *cert_pem, enum nx_pki_kind kind,
                  const char *tenant);

/* ---- tenant-side appliances: one certificate each -------------------------
 * The tenant side cannot be known in advance (its appliances are named after
 * its own hosts and networks), so the bundle does not carry certificates but
 * a *client CA* of the tenant's: self-signed, Ed25519, CA:TRUE pathlen:0,
 * extendedKeyUsage clientAuth, CN=clients, OU=<tenant>, NX_PKI_LEAF_DAYS.
 * The SP appliances trust it for client certificates only (their payload's
 * CA file holds it next to the tenant CA); the tenant side's clients trust
 * the tenant CA alone. Each tenant-side appliance's certificate is a pure
 * function of the client CA and the appliance's name (nx_pki_derive_client):
 * key and serial number are derived from them, Ed25519 signatures are
 * deterministic, the validity is the client CA's. So the tenant side keeps no
 * state, a second run renders the same payload, and the SP knows the serial
 * of any tenant-side appliance from its name: revocation needs no report
 * from the tenant side. See docs/internals/tunnel-pki.md. */

/* The tenant's client CA for a bundle: issued on first use, renewed within
 * NX_PKI_RENEW_DAYS of its end. out: ca_pem the tenant CA, cert_pem the
 * client CA's certificate, key_pem its key (secret). */
int nx_pki_get_clients_ca(struct nx_pki *p, const char *tenant, struct nx_pki_cred *out);

/* Pure: tenant-side appliance `name`'s credentials from a bundle's client CA
 * (certificate and key PEM). out->ca_pem is a copy of ca_pem (the tenant CA,
 * which the appliance's client verifies the SP side with). */
int nx_pki_derive_client(const char *ca_pem, const char *clients_ca_pem,
                         const char *clients_key_pem, const char *tenant, const char *name,
                         struct nx_pki_cred *out);

/* Revoke (undo: reinstate) tenant-side appliance `name` of tenant: its
 * derived certificate (clients-ca.crl) and any client certificate of that
 * name the tenant CA issued (ca.crl, e.g. "bundle": the one certificate that
 * bundles carried before). Returns 0 if the list changed, 1 if it already
 * was so, -1 with nx_error set. The next run carries the new lists in the SP
 * appliances' payloads. */
int nx_pki_revoke(struct nx_pki *p, const char *tenant, const char *name, bool undo);

/* Is name on the tenant's revocation list? */
bool nx_pki_is_revoked(struct nx_pki *p, const char *tenant, const char *name);

#endif
