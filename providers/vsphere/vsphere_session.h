/* vsphere_session.h: the session layer of the vSphere provider (the lowest
 * one: it calls nothing else in providers/vsphere/). */
#ifndef NX_VSPHERE_SESSION_H
#define NX_VSPHERE_SESSION_H

#include "retry.h" /* NX_RETRY_ATTEMPTS, nx_retry_pause */
#include "vsphere.h"

/* vsphere://host[:port][/path] -> https://host[:port]/path (vsphere+http://:
 * http://); NULL if the URI is not one (user info is refused). */
char *vs_uri_to_url(const char *uri);

/* c->url, the locks and the credentials set: connect, read the
 * ServiceContent and log in. */
int vs_session_open(struct vs_conn *c, const char *uri, const struct nx_conn_opts *opts);
/* Log out (if logged in) and count the requests (c->base->n_requests). */
void vs_session_logout(struct vs_conn *c);
/* Free what vs_open and vs_session_open set (after everything that uses
 * the transport, e.g. c->files, is gone). */
void vs_session_release(struct vs_conn *c);

/* One SOAP call with re-login on NotAuthenticated and, for the reads
 * (calls that change nothing or whose repetition does no harm; see
 * docs/internals/vsphere.md), retries with backoff on transient failures.
 * Returns as nx_soap_call; fault may be NULL. Thread-safe; never call it with
 * c->lock held. */
int vs_call(struct vs_conn *c, const char *method, const char *body, struct nx_soap_resp *out,
            struct nx_soap_fault *fault);
/* The same; retry: also retry this (write) method on transient failures;
 * *attempts (may be NULL) gets how many times it was sent; *transient (may be
 * NULL) whether a -1 was transient: an enum nx_soap_transient. */
int vs_call_ex(struct vs_conn *c, const char *method, const char *body, struct nx_soap_resp *out,
               struct nx_soap_fault *fault, bool retry, int *attempts, int *transient);

/* Log in again unless someone did since `seen` (an earlier vs_logins()). */
int vs_relogin(struct vs_conn *c, unsigned long seen);
unsigned long vs_logins(struct vs_conn *c);

/* A RetrievePropertiesEx (body: the whole request) and the
 * ContinueRetrievePropertiesEx calls while the server pages: each page's
 * returnval (may be NULL: nothing matched) goes to page(); a non-zero answer
 * of page() stops and is returned. A fault on any page: 1, with *fault (may
 * be NULL) filled; -1 on other errors. */
int vs_retrieve(struct vs_conn *c, const char *body, struct nx_soap_fault *fault,
                int (*page)(struct vs_conn *c, xmlNodePtr returnval, void *ctx), void *ctx);

#endif
