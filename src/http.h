/* http.h: the HTTP(S) transport shared by the SOAP (vSphere) and WS-Man
 * (Hyper-V) layers, on libcurl.
 *
 * One struct nx_http per endpoint: one keep-alive connection reused for every
 * request, cookies kept in memory (vSphere's vmware_soap_session), no
 * "Expect: 100-continue". TLS is verified by default (system CAs, or
 * opts->cafile); opts->thumbprint pins the server certificate by the SHA-256
 * of its DER encoding (hex, ':' optional, case-insensitive) and is then the
 * only thing checked; opts->insecure turns verification off. Credentials are
 * set with nx_http_set_basic_auth()/nx_http_set_ntlm_auth() and never logged.
 * Counts every request it sends (nx_http.n_requests). One struct nx_http is
 * not thread-safe (one user at a time); nx_http_clone() makes another
 * connection to the same endpoint, with the same options, sharing the cookie
 * jar (one session), DNS cache and TLS sessions, for another thread. */
#ifndef NX_HTTP_H
#define NX_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "conn_opts.h"
#include "strbuf.h"

struct nx_http;

struct nx_http_response {
    long status; /* HTTP status; 0 if no response */
    struct strbuf body; /* response body (NUL-terminated) */
    char *content_type; /* may be NULL */
};

/* url: https://host:port/path. NULL with nx_error set on a bad URL. */
struct nx_http *nx_http_new(const char *url, const struct nx_conn_opts *opts);
void nx_http_free(struct nx_http *h); /* accepts NULL */
/* Another handle (connection) to h's endpoint sharing h's cookies; auth set
 * with nx_http_set_*_auth is not copied. Free each with nx_http_free, in any
 * order. */
struct nx_http *nx_http_clone(struct nx_http *h);
int nx_http_set_basic_auth(struct nx_http *h, const char *user, const char *password);
int nx_http_set_ntlm_auth(struct nx_http *h, const char *user, const char *password);
/* Forget cookies (e.g. after a server-side session drop). */
void nx_http_clear_cookies(struct nx_http *h);

/* POST body with the given Content-Type and extra headers (NULL-terminated
 * "Name: value" strings, may be NULL). Transport failures (connect, TLS,
 * timeout) return -1 with nx_error set (NX_EX_UNAVAILABLE); any HTTP status
 * returns 0 with resp->status set: the caller decides (SOAP faults come with
 * 500). resp must be initialised with nx_http_response_init(). */
int nx_http_post(struct nx_http *h, const char *content_type, const char *const *headers,
                 const char *body, size_t len, struct nx_http_response *resp);
/* The same; fresh: on a new connection (libcurl silently sends a request a
 * second time when a reused connection dies before any answer; a fresh one
 * never is; use it for writes that must not run twice). */
int nx_http_post_ex(struct nx_http *h, const char *content_type, const char *const *headers,
                    const char *body, size_t len, struct nx_http_response *resp, bool fresh);
/* Other resources on h's server: path is an absolute path with its query
 * ("/folder/x?dcPath=y"), sent to the scheme, host and port of h's URL
 * through h's connection, cookies (session) and TLS settings. Like
 * nx_http_post: transport failures -1, any HTTP status 0 with resp->status.
 * HEAD: *length gets Content-Length (-1: none). PUT: streams size bytes of fd
 * from offset 0 (never all in memory); libcurl may send it a second time by
 * itself (see nx_http_post_ex), so use it for idempotent PUTs only; no limit
 * on the whole transfer, but it fails when under 1 KiB/s for the request
 * timeout. Both count as requests of h. */
int nx_http_head(struct nx_http *h, const char *path, struct nx_http_response *resp,
                 long long *length);
int nx_http_put_file(struct nx_http *h, const char *path, const char *content_type, int fd,
                     unsigned long long size, struct nx_http_response *resp);
void nx_http_response_init(struct nx_http_response *r);
void nx_http_response_release(struct nx_http_response *r);

unsigned long nx_http_requests(const struct nx_http *h);
/* After nx_http_post returned -1: true if the failure may go away when the
 * request is repeated (connection refused/reset/dropped, timeout), false for
 * TLS/certificate and configuration errors. */
bool nx_http_transient(const struct nx_http *h);
/* After nx_http_post returned -1: true if the request certainly never reached
 * the server (no connection could be made). */
bool nx_http_unsent(const struct nx_http *h);

#endif
