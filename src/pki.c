/* pki.c: the per-tenant tunnel PKI (pki.h): its store in the state directory
 * (paths, locking, check stamps, revocation lists kept current) and what
 * issues, rotates and revokes. The certificates themselves are built and
 * verified in pki_cert.c (pki_cert.h), which knows nothing of the store.
 *
 * Why about 900 lines in one file: every operation here (get, check stamp,
 * issue, rotate, revoke) works on the same on-disk layout under one lock, and
 * the stamp that lets unchanged credentials skip decoding must stay in step
 * with how they are written; split by operation, each file would need the
 * layout's private helpers from the others. */
#include "config.h"

#include "pki.h"
#include "pki_cert.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct nx_pki {
    char *dir;
    unsigned flags;
    int lock_fd;
    bool held; /* the flock on lock_fd is held */
    bool missing; /* READONLY on a directory that does not exist */
    int dirty; /* files written since the last nx_pki_sync (atomic) */
    pthread_mutex_t mu; /* one nx_pki_get at a time, and `held` */
};

const char *nx_state_dir_default(void)
{
    const char *e = getenv(NX_STATE_DIR_ENV);
    return e && *e ? e : NX_STATE_DIR_DEFAULT;
}

const char *nx_pki_dir(const struct nx_pki *p)
{
    return p->dir;
}

/* ---- files ---------------------------------------------------------------- */

/* A name as one safe path component: [A-Za-z0-9_.-] kept (no leading '.'),
 * everything else %XX. */
static void add_component(struct strbuf *sb, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
                  (*p == '.' && p != (const unsigned char *)s);
        if (ok)
            strbuf_addch(sb, *p);
        else
            strbuf_addf(sb, "%%%02X", *p);
    }
}

/* Write data to dir/name atomically with `mode` (a key is never readable by
 * others, at no moment). No fsync here: one nx_pki_sync() makes a whole
 * run's files durable at once (an fsync per file and per directory cost 8
 * journal commits per tenant). A crash before that sync can leave a file
 * empty or missing; the next run then finds a pair that does not load and
 * issues it again, and no appliance ever carried the lost one, since callers
 * sync before the first changing call. */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len,
                        mode_t mode)
{
    char *path = nx_asprintf("%s/%s", dir, name);
    int rc = nx_write_atomic(path, data, len, mode, NX_FS_NOSYNC);
    free(path);
    return rc;
}

/* Whole file (a key or a certificate: at most 1 MiB) into a string; 1 if it
 * does not exist. */
static int read_file(const char *path, char **out)
{
    struct strbuf sb = STRBUF_INIT;
    int rc = nx_read_file(path, 1 << 20, NX_FS_MISSING_OK | NX_FS_NOFOLLOW | NX_FS_SECRET, &sb);
    *out = rc == 0 ? strbuf_detach(&sb, NULL) : NULL;
    strbuf_release_secret(&sb);
    return rc;
}

/* ---- open / lock ------------------------------------------------------------ */

int nx_pki_open(const char *dir, unsigned flags, struct nx_pki **out)
{
    *out = NULL;
    if (!dir || dir[0] != '/')
        return nx_error_set(NX_EX_USAGE, "state directory '%s': must be an absolute path",
                            dir ? dir : "");
    struct nx_pki *p = nx_calloc(1, sizeof(*p));
    p->dir = nx_strdup(dir);
    p->flags = flags;
    p->lock_fd = -1;
    pthread_mutex_init(&p->mu, NULL);
    bool ro = flags & NX_PKI_READONLY;
    int rc = 0;
    if (!ro)
        rc = nx_mkdir_parents(dir);
    if (rc == 0)
        rc = nx_private_dir(dir, 0700, !ro);
    if (rc < 0)
        goto fail;
    if (rc == 1) { /* READONLY, missing */
        p->missing = true;
        *out = p;
        return 0;
    }
    char *lock = nx_asprintf("%s/lock", dir);
    p->lock_fd = open(lock, (ro ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (p->lock_fd < 0 && ro && errno == ENOENT) {
        free(lock);
        *out = p; /* nothing written yet: nothing to lock against */
        return 0;
    }
    if (p->lock_fd < 0) {
        nx_error_set(NX_EX_CANTCREAT, "%s: %s", lock, strerror(errno));
        free(lock);
        goto fail;
    }
    int op = ro ? LOCK_SH : LOCK_EX;
    if (flock(p->lock_fd, op | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK || (flags & NX_PKI_NOWAIT)) {
            nx_error_set(NX_EX_TEMPFAIL,
                         "state directory %s is locked by another netext-deploy run (%s)", dir,
                         lock);
            free(lock);
            goto fail;
        }
        nx_info("waiting for the lock on %s", lock);
        while (flock(p->lock_fd, op) < 0) {
            if (errno != EINTR) {
                nx_error_set(NX_EX_OSERR, "flock %s: %s", lock, strerror(errno));
                free(lock);
                goto fail;
            }
        }
    }
    free(lock);
    p->held = true;
    char *pki = nx_asprintf("%s/pki", dir);
    rc = nx_private_dir(pki, 0700, !ro);
    free(pki);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    nx_pki_close(p);
    return -1;
}

void nx_pki_close(struct nx_pki *p)
{
    if (!p)
        return;
    if (nx_pki_sync(p) < 0) {
        nx_warn("%s", nx_error_msg());
        nx_error_clear();
    }
    if (p->lock_fd >= 0)
        close(p->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&p->mu);
    free(p->dir);
    free(p);
}

void nx_pki_unlock(struct nx_pki *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->held && flock(p->lock_fd, LOCK_UN) == 0)
        p->held = false;
    pthread_mutex_unlock(&p->mu);
}

/* Take the flock again for one operation (p->mu held). 1 if taken here. */
static int relock(struct nx_pki *p)
{
    if (p->held || p->lock_fd < 0)
        return 0;
    int op = (p->flags & NX_PKI_READONLY) ? LOCK_SH : LOCK_EX;
    while (flock(p->lock_fd, op) < 0)
        if (errno != EINTR)
            return nx_error_set(NX_EX_OSERR, "flock %s/lock: %s", p->dir, strerror(errno));
    p->held = true;
    return 1;
}

/* One operation's hold on the store: p->mu, and the flock again if
 * nx_pki_unlock() gave it back. Returns what end_op() takes: 1 if the flock
 * was taken here, 0, or -1 (nx_error set; p->mu held all the same). */
static int begin_op(struct nx_pki *p)
{
    pthread_mutex_lock(&p->mu);
    return relock(p);
}

static void end_op(struct nx_pki *p, int took)
{
    if (took == 1 && flock(p->lock_fd, LOCK_UN) == 0)
        p->held = false;
    pthread_mutex_unlock(&p->mu);
}

/* ---- the tenant's files ------------------------------------------------------- */

static char *tenant_dir(const struct nx_pki *p, const char *tenant)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "%s/pki/", p->dir);
    add_component(&sb, tenant);
    return strbuf_detach(&sb, NULL);
}

static char *leaf_base(enum nx_pki_kind kind, const char *name)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, kind == NX_PKI_SERVER ? "server-" : "client-");
    add_component(&sb, name);
    return strbuf_detach(&sb, NULL);
}

/* A certificate and its key: decoded, and the PEM text kept on disk. */
struct pair {
    X509 *x;
    EVP_PKEY *k;
    char *crt;
    char *key; /* secret */
};

static void pair_release(struct pair *pr)
{
    X509_free(pr->x);
    EVP_PKEY_free(pr->k);
    free(pr->crt);
    nx_free_secret(pr->key);
    memset(pr, 0, sizeof(*pr));
}

/* Encode pr->x and pr->k, write key then certificate (a crash in between
 * leaves a pair that does not match, which the next run re-issues). */
static int store(struct nx_pki *p, const char *dir, const char *base, struct pair *pr)
{
    char *kname = nx_asprintf("%s.key", base), *cname = nx_asprintf("%s.crt", base);
    int ret = -1;
    pr->key = pkc_pem_of_key(pr->k);
    pr->crt = pkc_pem_of_cert(pr->x);
    __atomic_store_n(&p->dirty, 1, __ATOMIC_RELAXED);
    if (!pr->key || !pr->crt)
        pkc_ssl_error("encoding PEM");
    else if (write_atomic(dir, kname, pr->key, strlen(pr->key), 0600) == 0 &&
             write_atomic(dir, cname, pr->crt, strlen(pr->crt), 0644) == 0)
        ret = 0;
    free(kname);
    free(cname);
    return ret;
}

/* Load dir/base.crt and .key; 1 if either is missing or unreadable as PEM. */
static int load(const char *dir, const char *base, struct pair *pr)
{
    char *cpath = nx_asprintf("%s/%s.crt", dir, base), *kpath = nx_asprintf("%s/%s.key", dir, base);
    memset(pr, 0, sizeof(*pr));
    int rc = read_file(cpath, &pr->crt);
    if (rc == 0)
        rc = read_file(kpath, &pr->key);
    if (rc == 0) {
        struct stat st;
        if (stat(kpath, &st) == 0 && (st.st_mode & 077)) {
            nx_warn("%s: mode %04o; tightening to 0600", kpath, (unsigned)(st.st_mode & 07777));
            chmod(kpath, 0600);
        }
        pr->x = pkc_cert_of_pem(pr->crt);
        pr->k = pkc_key_of_pem(pr->key);
        if (!pr->x || !pr->k)
            rc = 1;
    }
    if (rc != 0)
        pair_release(pr);
    free(cpath);
    free(kpath);
    return rc;
}

/* ---- the check stamp --------------------------------------------------------
 * Decoding PEM keys and certificates costs OpenSSL 3 about 1 ms per appliance,
 * which dominated a no-change run. Once a leaf has passed every check
 * (key matches, chains to the tenant's current CA, not expiring), base.ok
 * records the SHA-256 of the three files' texts (ca.crt, base.crt, base.key)
 * and the earlier of the two end dates. A later run whose files hash the same
 * and whose end date is not within NX_PKI_RENEW_DAYS serves the texts as they
 * are, decoding nothing; any other change (rotation, a new CA, an edited or
 * damaged file, a missing stamp) takes the full path, which checks again and
 * rewrites the stamp. The stamp is a cache: it is written without sync, and
 * losing it costs one full check. */
#define STAMP_MAGIC "netext-deploy pki check 1"

static int stamp_digest(const char *ca, const char *crt, const char *key, char hex[65])
{
    const char *parts[] = {ca, crt, key};
    return pkc_digest(parts, NX_ARRAY_SIZE(parts), hex);
}

/* Record that ca + leaf passed (best effort: a failure only costs a check). */
static void stamp_write(const char *dir, const char *base, const struct pair *ca,
                        const struct pair *leaf)
{
    char hex[65];
    time_t a = pkc_not_after(ca->x), b = pkc_not_after(leaf->x);
    if (a <= 0 || b <= 0 || stamp_digest(ca->crt, leaf->crt, leaf->key, hex) < 0)
        return;
    char *name = nx_asprintf("%s.ok", base);
    char *text = nx_asprintf(STAMP_MAGIC " %s %lld\n", hex, (long long)(a < b ? a : b));
    if (write_atomic(dir, name, text, strlen(text), 0600) < 0)
        nx_error_clear();
    free(name);
    free(text);
}

/* The texts of dir/ca.crt, base.crt and base.key if base.ok vouches for them;
 * 1 (and nothing set) otherwise. */
static int stamp_get(const char *dir, const char *base, struct nx_pki_cred *out)
{
    char *path = NULL, *stamp = NULL, *ca = NULL, *crt = NULL, *key = NULL;
    char want[65], have[65];
    long long end = 0;
    struct stat st;
    int ret = 1;
    if (nx_private_dir(dir, 0700, false) != 0)
        goto cleanup;
    path = nx_asprintf("%s/%s.ok", dir, base);
    if (read_file(path, &stamp) != 0 ||
        sscanf(stamp, STAMP_MAGIC " %64[0-9a-f] %lld", want, &end) != 2 || strlen(want) != 64 ||
        end <= (long long)time(NULL) + (long long)NX_PKI_RENEW_DAYS * 86400)
        goto cleanup;
    free(path);
    path = nx_asprintf("%s/%s.key", dir, base);
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
        read_file(path, &key) != 0)
        goto cleanup;
    free(path);
    path = nx_asprintf("%s/%s.crt", dir, base);
    if (read_file(path, &crt) != 0)
        goto cleanup;
    free(path);
    path = nx_asprintf("%s/ca.crt", dir);
    if (read_file(path, &ca) != 0 || stamp_digest(ca, crt, key, have) < 0 ||
        strcmp(want, have) != 0)
        goto cleanup;
    out->ca_pem = ca;
    out->cert_pem = crt;
    out->key_pem = key;
    ca = crt = key = NULL;
    ret = 0;
cleanup:
    if (ret != 0)
        nx_error_clear(); /* the full path reports what is wrong */
    free(path);
    free(stamp);
    free(ca);
    free(crt);
    nx_free_secret(key);
    return ret;
}

/* The tenant's CA: loaded, or issued (renew: force a new one). 1 if READONLY
 * and it would be issued. */
static int get_ca(struct nx_pki *p, const char *dir, const char *tenant, bool renew,
                  struct pair *ca)
{
    bool ro = p->flags & NX_PKI_READONLY;
    int rc = p->missing ? 1 : 0;
    memset(ca, 0, sizeof(*ca));
    if (rc == 0 && (rc = nx_private_dir(dir, 0700, !ro)) < 0)
        return -1;
    if (rc == 0 && !renew && (rc = load(dir, "ca", ca)) < 0)
        return -1;
    if (rc == 0 && !renew && pkc_pair_ok(ca->x, ca->k, NX_PKI_RENEW_DAYS))
        return 0;
    pair_release(ca);
    if (ro)
        return 1;
    nx_info("tenant '%s': issuing a new tunnel CA", tenant);
    if (pkc_issue(tenant, "ca", true, NX_PKI_SERVER, NULL, NULL, &ca->x, &ca->k) < 0 ||
        store(p, dir, "ca", ca) < 0) {
        pair_release(ca);
        return -1;
    }
    return 0;
}

/* base: leaf_base(kind, name), the files' name without extension */
static int get_leaf(struct nx_pki *p, const char *dir, const char *tenant, enum nx_pki_kind kind,
                    const char *name, const char *base, const struct pair *ca, bool renew,
                    struct nx_pki_cred *out)
{
    char *cn = nx_asprintf("%s:%s", kind == NX_PKI_SERVER ? "provider" : "tenant", name);
    struct pair leaf = {0};
    int ret = -1;
    int rc = renew ? 1 : load(dir, base, &leaf);
    if (rc < 0)
        goto cleanup;
    if (rc == 0 && (!pkc_pair_ok(leaf.x, leaf.k, NX_PKI_RENEW_DAYS) ||
                    pkc_verify(ca->x, leaf.x, kind, tenant) < 0))
        rc = 1;
    nx_error_clear();
    if (rc == 1) {
        if (p->flags & NX_PKI_READONLY) {
            out->pending = true;
            ret = 0;
            goto cleanup;
        }
        pair_release(&leaf);
        nx_info("tenant '%s': issuing the %s certificate '%s'", tenant,
                kind == NX_PKI_SERVER ? "server" : "client", cn);
        if (pkc_issue(tenant, cn, false, kind, ca->x, ca->k, &leaf.x, &leaf.k) < 0 ||
            store(p, dir, base, &leaf) < 0)
            goto cleanup;
        out->issued = true;
    }
    if (!(p->flags & NX_PKI_READONLY))
        stamp_write(dir, base, ca, &leaf);
    out->ca_pem = nx_strdup(ca->crt);
    out->cert_pem = leaf.crt;
    out->key_pem = leaf.key;
    leaf.crt = leaf.key = NULL;
    ret = 0;
cleanup:
    pair_release(&leaf);
    free(cn);
    return ret;
}

/* Decode a %XX-encoded component back (names were encoded by add_component). */
static char *decode_component(const char *s, size_t len)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < len && sscanf(s + i + 1, "%2x", &v) == 1) {
            strbuf_addch(&sb, (int)v);
            i += 2;
        } else {
            strbuf_addch(&sb, s[i]);
        }
    }
    return strbuf_detach(&sb, NULL);
}

/* ---- the client CA and revocation -----------------------------------------
 * (pki.h; the derived certificates are pki_cert.c's). Files: clients-ca.crt/.key, revoked (one
 * %XX-encoded name a line, sorted), ca.crl (tenant CA: client-NAME certificates of revoked names),
 * clients-ca.crl (client CA: derived serials of revoked names). The lists
 * are rewritten whenever what they cover changes: revoke, rotate, a new
 * client CA, and (nx_pki_get, server) when one is missing or was not signed
 * by the current CA. */
#define CLIENTS_CA "clients-ca"

/* The revoked names (decoded), sorted as in the file. */
static void read_revoked(const char *dir, char ***names, size_t *n)
{
    char *path = nx_asprintf("%s/revoked", dir), *text = NULL;
    size_t alloc = 0;
    *names = NULL;
    *n = 0;
    if (read_file(path, &text) == 0) {
        for (char *line = text, *end; *line; line = end) {
            end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            end = end ? end + 1 : line + len;
            if (len == 0 || line[0] == '#')
                continue;
            NX_GROW(*names, alloc, *n + 1);
            (*names)[(*n)++] = decode_component(line, len);
        }
    }
    nx_error_clear();
    free(text);
    free(path);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rewrite ca.crl and clients-ca.crl from the revoked names (ca: the tenant's
 * current CA). */
static int write_crls(struct nx_pki *p, const char *dir, const struct pair *ca)
{
    char **names, *pem = NULL;
    size_t n;
    read_revoked(dir, &names, &n);
    ASN1_INTEGER **serials = nx_calloc(n + 1, sizeof(*serials));
    size_t ns = 0;
    struct pair cc = {0};
    int ret = -1;
    for (size_t i = 0; i < n; i++) {
        char *base = leaf_base(NX_PKI_CLIENT, names[i]);
        struct pair leaf;
        if (load(dir, base, &leaf) == 0)
            serials[ns++] = ASN1_INTEGER_dup(X509_get0_serialNumber(leaf.x));
        nx_error_clear();
        pair_release(&leaf);
        free(base);
    }
    __atomic_store_n(&p->dirty, 1, __ATOMIC_RELAXED);
    if (pkc_make_crl(ca->x, ca->k, serials, ns, &pem) < 0 ||
        write_atomic(dir, "ca.crl", pem, strlen(pem), 0644) < 0)
        goto cleanup;
    for (size_t i = 0; i < ns; i++)
        ASN1_INTEGER_free(serials[i]);
    ns = 0;
    free(pem);
    pem = NULL;
    int rc = load(dir, CLIENTS_CA, &cc);
    nx_error_clear();
    if (rc != 0) {
        char *path = nx_asprintf("%s/" CLIENTS_CA ".crl", dir);
        unlink(path);
        free(path);
        ret = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        if (!(serials[ns++] = pkc_derived_serial(cc.x, names[i])))
            goto cleanup;
    if (pkc_make_crl(cc.x, cc.k, serials, ns, &pem) < 0 ||
        write_atomic(dir, CLIENTS_CA ".crl", pem, strlen(pem), 0644) < 0)
        goto cleanup;
    ret = 0;
cleanup:
    for (size_t i = 0; i < ns; i++)
        ASN1_INTEGER_free(serials[i]);
    free(serials);
    free(pem);
    pair_release(&cc);
    free_names(names, n);
    return ret;
}

/* Does dir/name hold a CRL that issuer signed? */
static bool crl_ok(const char *dir, const char *name, X509 *issuer)
{
    char *path = nx_asprintf("%s/%s", dir, name), *text = NULL;
    bool ok = false;
    if (read_file(path, &text) == 0)
        ok = pkc_crl_ok(text, issuer);
    nx_error_clear();
    free(text);
    free(path);
    return ok;
}

/* A server's ca_pem (pki.h): out->ca_pem (the tenant CA) followed by ca.crl,
 * then the client CA and its list when there is one. ca: the decoded CA (full
 * path: missing or stale lists are rewritten first) or NULL (stamp path: 1 if
 * a list is missing). */
static int add_crls(struct nx_pki *p, const char *dir, const char *tenant, const struct pair *ca,
                    struct nx_pki_cred *out)
{
    char *cpath = nx_asprintf("%s/" CLIENTS_CA ".crt", dir);
    struct stat st;
    bool have_cc = lstat(cpath, &st) == 0;
    int ret = -1, rc;
    if (ca && !have_cc) {
        /* made with the server certificates, so that the SP appliances trust
         * it before the first bundle is exported */
        struct pair cc = {0};
        if (p->flags & NX_PKI_READONLY) {
            nx_pki_cred_release(out);
            out->pending = true;
            ret = 0;
            goto cleanup;
        }
        nx_info("tenant '%s': issuing the client CA for tenant-side appliances", tenant);
        rc = pkc_issue_clients_ca(tenant, &cc.x, &cc.k) < 0 || store(p, dir, CLIENTS_CA, &cc) < 0
                 ? -1
                 : write_crls(p, dir, ca);
        pair_release(&cc);
        if (rc < 0)
            goto cleanup;
        have_cc = true;
    }
    if (ca) {
        bool stale = !crl_ok(dir, "ca.crl", ca->x);
        if (!stale && have_cc) {
            struct pair cc;
            if (load(dir, CLIENTS_CA, &cc) == 0)
                stale = !crl_ok(dir, CLIENTS_CA ".crl", cc.x);
            pair_release(&cc);
            nx_error_clear();
        }
        if (stale && (p->flags & NX_PKI_READONLY)) {
            nx_pki_cred_release(out);
            out->pending = true;
            ret = 0;
            goto cleanup;
        }
        if (stale && write_crls(p, dir, ca) < 0)
            goto cleanup;
    }
    const char *parts[] = {"ca.crl", CLIENTS_CA ".crt", CLIENTS_CA ".crl"};
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, out->ca_pem);
    for (size_t i = 0; i < (have_cc ? 3u : 1u); i++) {
        char *path = nx_asprintf("%s/%s", dir, parts[i]), *text = NULL;
        rc = read_file(path, &text);
        free(path);
        if (rc != 0) {
            strbuf_release(&sb);
            if (rc > 0 && !ca) {
                ret = 1;
                goto cleanup;
            }
            if (rc > 0)
                nx_error_set(NX_EX_IOERR, "%s/%s: missing", dir, parts[i]);
            goto cleanup;
        }
        strbuf_addstr(&sb, text);
        free(text);
    }
    free(out->ca_pem);
    out->ca_pem = strbuf_detach(&sb, NULL);
    ret = 0;
cleanup:
    free(cpath);
    return ret;
}

bool nx_pki_is_revoked(struct nx_pki *p, const char *tenant, const char *name)
{
    char *dir = tenant_dir(p, tenant), **names;
    size_t n;
    read_revoked(dir, &names, &n);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = nx_str_eq(names[i], name);
    free_names(names, n);
    free(dir);
    return found;
}

int nx_pki_get_clients_ca(struct nx_pki *p, const char *tenant, struct nx_pki_cred *out)
{
    memset(out, 0, sizeof(*out));
    char *dir = tenant_dir(p, tenant);
    struct pair ca = {0}, cc = {0};
    int ret = -1;
    int took = begin_op(p);
    if (took < 0)
        goto cleanup;
    int rc = get_ca(p, dir, tenant, false, &ca);
    if (rc != 0) {
        if (rc > 0)
            nx_error_set(NX_EX_USAGE, "the state directory is open read-only");
        goto cleanup;
    }
    rc = load(dir, CLIENTS_CA, &cc);
    nx_error_clear();
    if (rc == 0 && (!pkc_pair_ok(cc.x, cc.k, NX_PKI_RENEW_DAYS) || !pkc_is_ed25519(cc.k)))
        rc = 1;
    if (rc != 0) {
        pair_release(&cc);
        nx_info("tenant '%s': issuing the client CA for tenant-side appliances", tenant);
        if (pkc_issue_clients_ca(tenant, &cc.x, &cc.k) < 0 || store(p, dir, CLIENTS_CA, &cc) < 0 ||
            write_crls(p, dir, &ca) < 0)
            goto cleanup;
    }
    out->ca_pem = nx_strdup(ca.crt);
    out->cert_pem = cc.crt;
    out->key_pem = cc.key;
    cc.crt = cc.key = NULL;
    ret = 0;
cleanup:
    end_op(p, took);
    if (ret < 0)
        nx_error_prefix("tenant '%s': tunnel PKI in %s: ", tenant, p->dir);
    pair_release(&ca);
    pair_release(&cc);
    free(dir);
    return ret;
}

int nx_pki_revoke(struct nx_pki *p, const char *tenant, const char *name, bool undo)
{
    if (p->flags & NX_PKI_READONLY)
        return nx_error_set(NX_EX_USAGE, "revoke: the state directory is open read-only");
    char *dir = tenant_dir(p, tenant), **names;
    size_t n;
    struct pair ca = {0};
    int ret = -1;
    int took = begin_op(p);
    read_revoked(dir, &names, &n);
    if (took < 0 || get_ca(p, dir, tenant, false, &ca) != 0)
        goto cleanup;
    size_t at = n;
    for (size_t i = 0; i < n; i++)
        if (nx_str_eq(names[i], name))
            at = i;
    if ((at < n) != undo) {
        ret = 1; /* already so; the lists are rewritten anyway (cheap, and heals) */
    } else if (undo) {
        free(names[at]);
        names[at] = names[--n];
    } else {
        names = nx_realloc(names, (n + 1) * sizeof(*names));
        names[n++] = nx_strdup(name);
    }
    qsort(names, n, sizeof(*names), cmp_str);
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, "# netext-deploy: revoked tenant-side appliances (netext-deploy revoke)\n");
    for (size_t i = 0; i < n; i++) {
        add_component(&sb, names[i]);
        strbuf_addch(&sb, '\n');
    }
    int rc = write_atomic(dir, "revoked", sb.buf, sb.len, 0644);
    strbuf_release(&sb);
    if (rc < 0 || write_crls(p, dir, &ca) < 0 || nx_pki_sync(p) < 0)
        ret = -1;
    else if (ret != 1)
        ret = 0;
cleanup:
    end_op(p, took);
    if (ret < 0)
        nx_error_prefix("tenant '%s': revoking '%s': ", tenant, name);
    free_names(names, n);
    pair_release(&ca);
    free(dir);
    return ret;
}

int nx_pki_lookup(struct nx_pki *p, const char *tenant, enum nx_pki_kind kind, const char *name,
                  struct nx_pki_cred *out)
{
    memset(out, 0, sizeof(*out));
    if (p->missing)
        return 1;
    char *dir = tenant_dir(p, tenant);
    char *base = leaf_base(kind, name);
    int rc = kind == NX_PKI_CLIENT && nx_pki_is_revoked(p, tenant, name)
                 ? 1 /* the full path says so */
                 : stamp_get(dir, base, out);
    if (rc == 0 && kind == NX_PKI_SERVER && (rc = add_crls(p, dir, tenant, NULL, out)) != 0) {
        nx_pki_cred_release(out);
        nx_error_clear();
        rc = 1;
    }
    free(base);
    free(dir);
    return rc;
}

int nx_pki_get(struct nx_pki *p, const char *tenant, enum nx_pki_kind kind, const char *name,
               struct nx_pki_cred *out)
{
    memset(out, 0, sizeof(*out));
    char *dir = tenant_dir(p, tenant);
    char *base = leaf_base(kind, name);
    struct pair ca = {0};
    int ret = -1;
    int took = begin_op(p);
    if (took < 0)
        goto cleanup;
    if (kind == NX_PKI_CLIENT && !p->missing && nx_pki_is_revoked(p, tenant, name)) {
        nx_error_set(NX_EX_DATAERR,
                     "client certificate '%s': revoked (netext-deploy revoke --undo reinstates "
                     "it)",
                     name);
        goto cleanup;
    }
    if (!p->missing && stamp_get(dir, base, out) == 0) {
        if (kind == NX_PKI_CLIENT || add_crls(p, dir, tenant, NULL, out) == 0) {
            ret = 0;
            goto cleanup;
        }
        nx_pki_cred_release(out);
        nx_error_clear();
    }
    int rc = get_ca(p, dir, tenant, false, &ca);
    if (rc < 0)
        goto cleanup;
    if (rc == 1) {
        out->pending = true;
        ret = 0;
        goto cleanup;
    }
    ret = get_leaf(p, dir, tenant, kind, name, base, &ca, false, out);
    if (ret == 0 && kind == NX_PKI_SERVER && !out->pending)
        ret = add_crls(p, dir, tenant, &ca, out) < 0 ? -1 : 0;
cleanup:
    end_op(p, took);
    if (ret < 0)
        nx_error_prefix("tenant '%s': tunnel PKI in %s: ", tenant, p->dir);
    pair_release(&ca);
    free(base);
    free(dir);
    return ret;
}

int nx_pki_sync(struct nx_pki *p)
{
    if (!p || !__atomic_load_n(&p->dirty, __ATOMIC_RELAXED))
        return 0;
    if (nx_fs_sync(p->dir) < 0) {
        nx_error_prefix("state directory ");
        return -1;
    }
    __atomic_store_n(&p->dirty, 0, __ATOMIC_RELAXED);
    return 0;
}

int nx_pki_rotate(struct nx_pki *p, const char *tenant, bool ca)
{
    if (p->flags & NX_PKI_READONLY)
        return nx_error_set(NX_EX_USAGE, "rotate: the state directory is open read-only");
    char *dir = tenant_dir(p, tenant);
    struct pair cap = {0};
    int count = -1;
    DIR *d = NULL;
    if (get_ca(p, dir, tenant, ca, &cap) < 0)
        goto cleanup;
    count = ca ? 1 : 0;
    d = opendir(dir);
    if (!d) {
        count = nx_error_set(NX_EX_IOERR, "%s: %s", dir, strerror(errno));
        goto cleanup;
    }
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, alloc = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 12 || strcmp(e->d_name + l - 4, ".crt") != 0)
            continue;
        if (strncmp(e->d_name, "server-", 7) && strncmp(e->d_name, "client-", 7))
            continue;
        NX_GROW(names, alloc, n + 1);
        names[n++] = nx_strdup(e->d_name);
    }
    for (size_t i = 0; i < n; i++) {
        enum nx_pki_kind kind = names[i][0] == 's' ? NX_PKI_SERVER : NX_PKI_CLIENT;
        char *name = decode_component(names[i] + 7, strlen(names[i]) - 11);
        names[i][strlen(names[i]) - 4] = '\0'; /* the base: no ".crt" */
        struct nx_pki_cred c;
        memset(&c, 0, sizeof(c));
        int rc = get_leaf(p, dir, tenant, kind, name, names[i], &cap, true, &c);
        nx_pki_cred_release(&c);
        free(name);
        if (rc < 0 && count >= 0)
            count = -1;
        else if (count >= 0)
            count++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    /* the client CA too (the tenant side needs a new bundle), then the lists */
    struct pair cc;
    int rc = load(dir, CLIENTS_CA, &cc);
    pair_release(&cc);
    nx_error_clear();
    if (rc == 0 && count >= 0) {
        if (pkc_issue_clients_ca(tenant, &cc.x, &cc.k) < 0 || store(p, dir, CLIENTS_CA, &cc) < 0)
            count = -1;
        else
            count++;
        pair_release(&cc);
    }
    if (count >= 0 && write_crls(p, dir, &cap) < 0)
        count = -1;
cleanup:
    if (d)
        closedir(d);
    if (count >= 0 && nx_pki_sync(p) < 0)
        count = -1;
    if (count < 0)
        nx_error_prefix("tenant '%s': rotating the tunnel PKI: ", tenant);
    pair_release(&cap);
    free(dir);
    return count;
}
