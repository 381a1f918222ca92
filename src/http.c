/* http.c: the HTTP(S) transport shared by the SOAP and WS-Man layers (see
 * http.h), on one libcurl easy handle per endpoint. */
#include "config.h"

#include "http.h"
#include "error.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What clones of one endpoint share: the cookie jar (one session), DNS and,
 * unless a thumbprint is pinned, TLS sessions. */
struct http_share {
    CURLSH *sh;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t refs_lock;
    unsigned refs;
};

struct nx_http {
    CURL *curl;
    struct http_share *share;
    struct nx_conn_opts opts; /* copy, for clones; strings owned, no secrets */
    bool transient; /* the last failure may go away when repeated */
    bool unsent; /* ... and the request certainly did not reach the server */
    char *url;
    bool pinned;
    unsigned char pin[32]; /* expected SHA-256 of the leaf certificate */
    bool pin_mismatch; /* set by the verify callback, for the message */
    char seen[65]; /* the thumbprint the server presented (hex) */
    unsigned long n_requests;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int ssl_ctx_index = -1;
static bool global_ok;

static void global_init(void)
{
    global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    ssl_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* "AB:cd:..." or "abcd..." -> 32 bytes; false if not a SHA-256. */
static bool parse_thumbprint(const char *s, unsigned char out[32])
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = s; *p; p++) {
        if (*p == ':' || *p == ' ')
            continue;
        if (!isxdigit((unsigned char)*p))
            return false;
        int v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= 32)
                return false;
            out[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    return n == 32 && hi < 0;
}

/* OpenSSL verify callback when a thumbprint is pinned: the leaf certificate
 * must hash to the pin; the chain is otherwise not evaluated (that is what a
 * pin means). */
static int pin_verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    if (X509_STORE_CTX_get_error_depth(store) != 0)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct nx_http *h = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_index) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (!h || !cert)
        return 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32)
        return 0;
    for (unsigned i = 0; i < 32; i++)
        snprintf(h->seen + 2 * i, 3, "%02x", md[i]);
    if (memcmp(md, h->pin, 32) != 0) {
        h->pin_mismatch = true;
        return 0;
    }
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *userp)
{
    (void)curl;
    struct nx_http *h = userp;
    SSL_CTX *ctx = sslctx;
    if (ssl_ctx_index < 0 || !SSL_CTX_set_ex_data(ctx, ssl_ctx_index, h))
        return CURLE_SSL_CERTPROBLEM;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, pin_verify_cb);
    return CURLE_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct strbuf *sb = userp;
    size_t n = size * nmemb;
    strbuf_add(sb, data, n);
    return n;
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)handle;
    (void)access;
    struct http_share *s = userp;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userp)
{
    (void)handle;
    struct http_share *s = userp;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&s->locks[data]);
}

static struct http_share *share_new(bool ssl_sessions)
{
    struct http_share *s = nx_calloc(1, sizeof(*s));
    s->sh = curl_share_init();
    if (!s->sh) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->locks[i], NULL);
    pthread_mutex_init(&s->refs_lock, NULL);
    s->refs = 1;
    curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (ssl_sessions)
        curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return s;
}

static void share_unref(struct http_share *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->refs_lock);
    unsigned left = --s->refs;
    pthread_mutex_unlock(&s->refs_lock);
    if (left)
        return;
    curl_share_cleanup(s->sh);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    pthread_mutex_destroy(&s->refs_lock);
    free(s);
}

static struct nx_http *http_new(const char *url, const struct nx_conn_opts *opts,
                                struct http_share *share);

struct nx_http *nx_http_new(const char *url, const struct nx_conn_opts *opts)
{
    return http_new(url, opts, NULL);
}

struct nx_http *nx_http_clone(struct nx_http *h)
{
    return h ? http_new(h->url, &h->opts, h->share) : NULL;
}

static struct nx_http *http_new(const char *url, const struct nx_conn_opts *opts,
                                struct http_share *share)
{
    pthread_once(&global_once, global_init);
    if (!global_ok) {
        nx_error_set(NX_EX_SOFTWARE, "libcurl: global initialisation failed");
        return NULL;
    }
    if (!url || !(nx_str_has_prefix(url, "https://") || nx_str_has_prefix(url, "http://"))) {
        nx_error_set(NX_EX_CONFIG, "%s: not an http(s) URL", url ? url : "(null)");
        return NULL;
    }
    struct nx_http *h = nx_calloc(1, sizeof(*h));
    h->url = nx_strdup(url);
    if (opts && opts->thumbprint && !opts->insecure) {
        if (!parse_thumbprint(opts->thumbprint, h->pin)) {
            nx_error_set(NX_EX_USAGE,
                         "--thumbprint '%s': not a SHA-256 fingerprint (64 hex digits, ':' "
                         "optional)",
                         opts->thumbprint);
            goto fail;
        }
        h->pinned = true;
    }
    if (opts) {
        h->opts.cafile = opts->cafile ? nx_strdup(opts->cafile) : NULL;
        h->opts.thumbprint = opts->thumbprint ? nx_strdup(opts->thumbprint) : NULL;
        h->opts.insecure = opts->insecure;
        h->opts.connect_timeout_ms = opts->connect_timeout_ms;
        h->opts.request_timeout_ms = opts->request_timeout_ms;
    }
    if (share) {
        pthread_mutex_lock(&share->refs_lock);
        share->refs++;
        pthread_mutex_unlock(&share->refs_lock);
        h->share = share;
    } else {
        h->share = share_new(!h->pinned);
    }
    h->curl = curl_easy_init();
    if (!h->curl || !h->share) {
        nx_error_set(NX_EX_SOFTWARE, "libcurl: cannot create a handle");
        goto fail;
    }
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* in-memory cookie engine */
    curl_easy_setopt(c, CURLOPT_SHARE, h->share->sh); /* before any cookie arrives */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl decodes */
    long cto = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 15000;
    long rto = opts && opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 60000;
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cto);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rto);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    if (opts && opts->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (h->pinned) {
        /* the pin replaces chain and name checks; verified in pin_verify_cb */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, h);
        if (curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb) != CURLE_OK) {
            nx_error_set(NX_EX_SOFTWARE,
                         "libcurl: this TLS backend cannot pin a certificate thumbprint");
            goto fail;
        }
    } else {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        if (opts && opts->cafile)
            curl_easy_setopt(c, CURLOPT_CAINFO, opts->cafile);
    }
    return h;
fail:
    nx_http_free(h);
    return NULL;
}

void nx_http_free(struct nx_http *h)
{
    if (!h)
        return;
    if (h->curl) {
        /* wipe credentials libcurl keeps */
        curl_easy_setopt(h->curl, CURLOPT_USERNAME, NULL);
        curl_easy_setopt(h->curl, CURLOPT_PASSWORD, NULL);
        curl_easy_cleanup(h->curl);
    }
    share_unref(h->share);
    free((char *)h->opts.cafile);
    free((char *)h->opts.thumbprint);
    free(h->url);
    nx_memzero(h->pin, sizeof(h->pin));
    free(h);
}

static int set_auth(struct nx_http *h, long how, const char *user, const char *password)
{
    if (!user || !password)
        return nx_error_set(NX_EX_NOPERM, "%s: no user or password given (see --credentials)",
                            h->url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPAUTH, how);
    curl_easy_setopt(h->curl, CURLOPT_USERNAME, user);
    curl_easy_setopt(h->curl, CURLOPT_PASSWORD, password);
    return 0;
}

int nx_http_set_basic_auth(struct nx_http *h, const char *user, const char *password)
{
    return set_auth(h, CURLAUTH_BASIC, user, password);
}

int nx_http_set_ntlm_auth(struct nx_http *h, const char *user, const char *password)
{
    return set_auth(h, CURLAUTH_NTLM, user, password);
}

void nx_http_clear_cookies(struct nx_http *h)
{
    if (h && h->curl)
        curl_easy_setopt(h->curl, CURLOPT_COOKIELIST, "ALL");
}

void nx_http_response_init(struct nx_http_response *r)
{
    r->status = 0;
    strbuf_init(&r->body, 0);
    r->content_type = NULL;
}

void nx_http_response_release(struct nx_http_response *r)
{
    if (!r)
        return;
    strbuf_release(&r->body);
    NX_FREE(r->content_type);
    r->status = 0;
}

/* nx_error and h->transient/unsent for a failed curl_easy_perform */
/* one request on c: what the last one left is forgotten, and it is counted */
static CURLcode perform(struct nx_http *h, CURL *c)
{
    h->errbuf[0] = '\0';
    h->pin_mismatch = false;
    h->transient = false;
    h->unsent = false;
    h->n_requests++;
    return curl_easy_perform(c);
}

/* status and content type of the answer just received */
static void response_head(CURL *c, struct nx_http_response *resp)
{
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    char *ctype = NULL;
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
        resp->content_type = nx_strdup(ctype);
}

static void report_failure(struct nx_http *h, CURLcode rc)
{
    if (h->pin_mismatch)
        nx_error_set(NX_EX_UNAVAILABLE,
                     "%s: the server certificate's SHA-256 thumbprint %s does not match "
                     "--thumbprint",
                     h->url, h->seen);
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
             rc == CURLE_SSL_CERTPROBLEM)
        nx_error_set(NX_EX_UNAVAILABLE,
                     "%s: TLS certificate not trusted: %s (use --cacert FILE or "
                     "--thumbprint SHA256)",
                     h->url, h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    else {
        nx_error_set(NX_EX_UNAVAILABLE, "%s: %s", h->url,
                     h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
        /* connection refused, reset, dropped answer, timeout */
        h->transient = rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_URL_MALFORMAT &&
                       rc != CURLE_SSL_CONNECT_ERROR && rc != CURLE_OUT_OF_MEMORY &&
                       rc != CURLE_LOGIN_DENIED;
        h->unsent = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                    rc == CURLE_COULDNT_RESOLVE_PROXY;
    }
}

int nx_http_post(struct nx_http *h, const char *content_type, const char *const *headers,
                 const char *body, size_t len, struct nx_http_response *resp)
{
    return nx_http_post_ex(h, content_type, headers, body, len, resp, false);
}

int nx_http_post_ex(struct nx_http *h, const char *content_type, const char *const *headers,
                    const char *body, size_t len, struct nx_http_response *resp, bool fresh)
{
    struct curl_slist *hl = NULL;
    char *ct = nx_asprintf("Content-Type: %s", content_type ? content_type : "text/xml");
    int ret = -1;
    hl = curl_slist_append(hl, ct);
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue stall */
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    free(ct);
    if (!hl)
        return nx_error_set(NX_EX_SOFTWARE, "libcurl: out of memory");

    strbuf_reset(&resp->body);
    NX_FREE(resp->content_type);
    resp->status = 0;
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    /* on a reused connection that dies before answering, libcurl sends the
     * request again by itself: harmless for reads, not for every write */
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
    CURLcode rc = perform(h, c);
    if (rc != CURLE_OK) {
        report_failure(h, rc);
        strbuf_reset(&resp->body);
        goto cleanup;
    }
    response_head(c, resp);
    ret = 0;
cleanup:
    /* the body and headers belong to the caller / this call */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    curl_slist_free_all(hl);
    return ret;
}

/* ---- other resources on the server --------------------------------------- */

/* scheme://host[:port] of h's URL, then path */
static char *resource_url(const struct nx_http *h, const char *path)
{
    const char *p = strstr(h->url, "://");
    const char *slash = p ? strchr(p + 3, '/') : NULL;
    size_t n = slash ? (size_t)(slash - h->url) : strlen(h->url);
    return nx_asprintf("%.*s%s", (int)n, h->url, path);
}

/* One request to path with the options the caller set; h's URL again after. */
static int perform_at(struct nx_http *h, const char *path, struct nx_http_response *resp)
{
    CURL *c = h->curl;
    char *url = resource_url(h, path);
    int ret = -1;
    strbuf_reset(&resp->body);
    NX_FREE(resp->content_type);
    resp->status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 0L);
    CURLcode rc = perform(h, c);
    if (rc != CURLE_OK) {
        report_failure(h, rc);
        /* the message names the resource, not the endpoint */
        char *msg = nx_strdup(nx_error_msg());
        size_t ul = strlen(h->url);
        if (!strncmp(msg, h->url, ul))
            nx_error_set(nx_error_code(), "%s%s", url, msg + ul);
        free(msg);
        strbuf_reset(&resp->body);
        goto cleanup;
    }
    response_head(c, resp);
    ret = 0;
cleanup:
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    free(url);
    return ret;
}

int nx_http_head(struct nx_http *h, const char *path, struct nx_http_response *resp,
                 long long *length)
{
    CURL *c = h->curl;
    *length = -1;
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    int ret = perform_at(h, path, resp);
    curl_off_t cl = -1;
    if (ret == 0 && curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
        *length = cl;
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    return ret;
}

struct file_source {
    int fd;
    unsigned long long off, size;
};

static size_t file_read_cb(char *buf, size_t size, size_t nmemb, void *userp)
{
    struct file_source *f = userp;
    size_t want = size * nmemb;
    if (f->size - f->off < want)
        want = (size_t)(f->size - f->off);
    if (!want)
        return 0;
    ssize_t r;
    do
        r = pread(f->fd, buf, want, (off_t)f->off);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return CURL_READFUNC_ABORT; /* unreadable, or shorter than announced */
    f->off += (unsigned long long)r;
    return (size_t)r;
}

/* libcurl rewinds before sending the request again (a reused connection that
 * died, an authentication round) */
static int file_seek_cb(void *userp, curl_off_t offset, int origin)
{
    struct file_source *f = userp;
    if (origin != SEEK_SET || offset < 0 || (unsigned long long)offset > f->size)
        return CURL_SEEKFUNC_CANTSEEK;
    f->off = (unsigned long long)offset;
    return CURL_SEEKFUNC_OK;
}

int nx_http_put_file(struct nx_http *h, const char *path, const char *content_type, int fd,
                     unsigned long long size, struct nx_http_response *resp)
{
    CURL *c = h->curl;
    struct file_source src = {fd, 0, size};
    struct curl_slist *hl = NULL;
    char *ct =
        nx_asprintf("Content-Type: %s", content_type ? content_type : "application/octet-stream");
    hl = curl_slist_append(hl, ct);
    hl = curl_slist_append(hl, "Expect:");
    free(ct);
    if (!hl)
        return nx_error_set(NX_EX_SOFTWARE, "libcurl: out of memory");
    long rto = h->opts.request_timeout_ms > 0 ? h->opts.request_timeout_ms : 60000;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, file_read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, file_seek_cb);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &src);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    /* no limit on the whole transfer; a stalled one fails */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (rto + 999) / 1000);
    int ret = perform_at(h, path, resp);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, NULL);
    curl_easy_setopt(c, CURLOPT_READDATA, NULL);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, NULL);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, NULL);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)-1);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rto);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    return ret;
}

bool nx_http_transient(const struct nx_http *h)
{
    return h && h->transient;
}

bool nx_http_unsent(const struct nx_http *h)
{
    return h && h->unsent;
}

unsigned long nx_http_requests(const struct nx_http *h)
{
    return h ? h->n_requests : 0;
}
