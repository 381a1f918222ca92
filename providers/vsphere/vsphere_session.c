/* vsphere_session.c: the vSphere session, the provider's lowest layer.
 *
 * - URI: vsphere://host[:port][/path] -> https://host[:port]/path (default
 *   path /sdk). vsphere+http:// talks plain HTTP (labs only; warned about).
 * - One session per run: RetrieveServiceContent, Login (cookie
 *   vmware_soap_session kept by the transport), Logout at close; on
 *   NotAuthenticated the provider logs in again once and retries, and bumps
 *   c->session_gen so that the layers above know what went with the session.
 * - Every call goes through vs_call_ex: reads are repeated on transient
 *   failures with backoff (src/retry.h); writes only when the caller says so
 *   (see docs/internals/vsphere.md, "Retries").
 * - vs_retrieve: RetrievePropertiesEx and its continuations (paging). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "retry.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere_session.h"
#include "xml.h"

/* vsphere://host[:port][/path] -> https://host[:port]/path */
char *vs_uri_to_url(const char *uri)
{
    const char *scheme = "https://";
    const char *rest;
    if (nx_str_has_prefix(uri, "vsphere://")) {
        rest = uri + strlen("vsphere://");
    } else {
        rest = uri + strlen("vsphere+http://");
        scheme = "http://";
    }
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (hostlen == 0 || memchr(rest, '@', hostlen) || memchr(rest, '?', strlen(rest)))
        return NULL; /* no user info in URIs: credentials come from a file */
    if (!slash || !slash[1])
        return nx_asprintf("%s%.*s/sdk", scheme, (int)hostlen, rest);
    return nx_asprintf("%s%s", scheme, rest);
}

static int map_fault_code(const struct nx_soap_fault *f)
{
    if (!strcmp(f->type, "InvalidLogin") || !strcmp(f->type, "NoPermission") ||
        !strcmp(f->type, "NotAuthenticated"))
        return NX_EX_NOPERM;
    return NX_EX_FAILED;
}

/* ---- calls and retries ---------------------------------------------------- */

/* Calls that change nothing, or whose repetition does no harm: repeated on a
 * transient failure (docs/internals/vsphere.md, "Retries"). */
static bool vs_method_is_read(const char *method)
{
    static const char *const reads[] = {
        "RetrieveServiceContent",
        "RetrievePropertiesEx",
        "ContinueRetrievePropertiesEx",
        "WaitForUpdatesEx",
        "CreateContainerView",
        "CreateFilter",
        "Login",
        "Logout",
    };
    for (size_t i = 0; i < NX_ARRAY_SIZE(reads); i++)
        if (!strcmp(method, reads[i]))
            return true;
    return false;
}

struct call_args {
    struct vs_conn *c;
    const char *method, *body;
    struct nx_soap_resp *out;
    struct nx_soap_fault *fault;
    bool once, retry;
    int transient; /* enum nx_soap_transient of the last attempt */
    int *attempts;
};

static int call_attempt(void *ctx, int k)
{
    struct call_args *a = ctx;
    a->transient = a->once ? NX_SOAP_ONCE : NX_SOAP_PERMANENT;
    /* a Login whose answer was lost may have set the cookie: log in anew */
    if (k > 1 && !strcmp(a->method, "Login"))
        nx_soap_clear_cookies(a->c->soap);
    int rc = nx_soap_call_ex(a->c->soap, a->method, a->body, a->out, a->fault, &a->transient);
    if (a->attempts)
        *a->attempts = k;
    return rc;
}

/* a SOAP fault or an answer is final; a transient failure is repeated when
 * the method may be */
static bool call_again(void *ctx, int rc)
{
    const struct call_args *a = ctx;
    return rc < 0 && a->retry && a->transient;
}

/* One request, repeated on transient failures when `retry` (attempts and
 * backoff: src/retry.h). */
static int call_retry(struct vs_conn *c, const char *method, const char *body,
                      struct nx_soap_resp *out, struct nx_soap_fault *fault, bool retry,
                      int *attempts, int *transient_out)
{
    struct call_args a = {
        .c = c,
        .method = method,
        .body = body,
        .out = out,
        .fault = fault,
        /* writes that must not run twice: libcurl may re-send a request on
         * a reused connection by itself, so they go on a fresh one */
        .once = !strcmp(method, "CreateVM_Task") || !strcmp(method, "ReconfigVM_Task"),
        .retry = retry,
        .attempts = attempts,
    };
    int rc = nx_retry_run("vsphere", method, call_attempt, call_again, &a);
    if (transient_out)
        *transient_out = rc < 0 ? a.transient : NX_SOAP_PERMANENT;
    return rc;
}

/* ---- login -------------------------------------------------------------- */

static int do_login(struct vs_conn *c)
{
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    if (!c->user || !c->password)
        return nx_error_set(NX_EX_NOPERM,
                            "%s: no user or password (use --credentials FILE or "
                            "NETEXT_DEPLOY_USER/NETEXT_DEPLOY_PASSWORD)",
                            c->url);
    nx_soap_begin(&sb, "Login", "SessionManager", c->session_manager);
    nx_soap_add(&sb, "userName", c->user);
    nx_soap_add(&sb, "password", c->password);
    nx_soap_end(&sb, "Login");
    int rc = call_retry(c, "Login", sb.buf, &r, &f, true, NULL, NULL);
    strbuf_release_secret(&sb);
    if (rc == 1) {
        if (!strcmp(f.type, "InvalidLogin"))
            nx_error_set(NX_EX_NOPERM, "%s: login refused for user '%s' (InvalidLogin)", c->url,
                         c->user);
        else
            nx_error_set(map_fault_code(&f), "%s: Login: %s: %s", c->url, f.type, f.message);
        nx_soap_fault_release(&f);
        return -1;
    }
    if (rc < 0)
        return -1;
    nx_soap_resp_release(&r);
    pthread_mutex_lock(&c->lock);
    c->logged_in = true;
    c->n_logins++;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

unsigned long vs_logins(struct vs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    unsigned long n = c->n_logins;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int vs_relogin(struct vs_conn *c, unsigned long seen)
{
    int rc = 0;
    pthread_mutex_lock(&c->session_lock);
    if (vs_logins(c) == seen) {
        /* nobody renewed the session since this caller's request began */
        pthread_mutex_lock(&c->lock);
        c->logged_in = false;
        c->session_gen++; /* the task filter went with it */
        pthread_mutex_unlock(&c->lock);
        nx_soap_clear_cookies(c->soap);
        nx_info("vsphere: %s: session lost; logging in again", c->url);
        rc = do_login(c);
    }
    pthread_mutex_unlock(&c->session_lock);
    return rc;
}

int vs_call_ex(struct vs_conn *c, const char *method, const char *body, struct nx_soap_resp *out,
               struct nx_soap_fault *fault, bool retry, int *attempts, int *transient)
{
    struct nx_soap_fault tmp = {0};
    struct nx_soap_fault *f = fault ? fault : &tmp;
    retry = retry || vs_method_is_read(method);
    pthread_mutex_lock(&c->lock);
    unsigned long seen = c->n_logins;
    /* not c->logged_in: that is false while another thread logs in again,
     * and a call sent then (without a cookie) must retry, not fail */
    bool logged_in = c->n_logins > 0;
    pthread_mutex_unlock(&c->lock);
    int rc = call_retry(c, method, body, out, f, retry, attempts, transient);
    /* log in again once per call: a long run may outlive several sessions */
    if (rc == 1 && !strcmp(f->type, "NotAuthenticated") && logged_in) {
        nx_soap_fault_release(f);
        if (vs_relogin(c, seen) < 0) {
            nx_soap_fault_release(&tmp);
            return -1;
        }
        int more = 0;
        rc = call_retry(c, method, body, out, f, retry, &more, transient);
        if (attempts)
            *attempts += more;
    }
    /* the core's counter (metrics, -vv) follows the session's as it goes */
    pthread_mutex_lock(&c->lock);
    c->base->n_requests = nx_soap_requests(c->soap);
    pthread_mutex_unlock(&c->lock);
    if (rc == 1) {
        /* keep the message nx_soap_parse set, with the right exit code */
        char *msg = nx_strdup(nx_error_msg());
        nx_error_set(map_fault_code(f), "%s: %s", c->url, msg);
        free(msg);
    }
    nx_soap_fault_release(&tmp);
    return rc;
}

int vs_call(struct vs_conn *c, const char *method, const char *body, struct nx_soap_resp *out,
            struct nx_soap_fault *fault)
{
    return vs_call_ex(c, method, body, out, fault, false, NULL, NULL);
}

/* ---- paged retrieval ------------------------------------------------------- */

/* Replace sb with the ContinueRetrievePropertiesEx request for a paged
 * RetrievePropertiesEx's token; returns the method name. */
static const char *continue_request(struct vs_conn *c, struct strbuf *sb, const char *token)
{
    static const char method[] = "ContinueRetrievePropertiesEx";
    strbuf_reset(sb);
    nx_soap_begin(sb, method, "PropertyCollector", c->property_collector);
    nx_soap_add(sb, "token", token);
    nx_soap_end(sb, method);
    return method;
}

int vs_retrieve(struct vs_conn *c, const char *body, struct nx_soap_fault *fault,
                int (*page)(struct vs_conn *c, xmlNodePtr returnval, void *ctx), void *ctx)
{
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    const char *method = "RetrievePropertiesEx";
    int ret;
    strbuf_addstr(&sb, body);
    for (;;) {
        ret = vs_call(c, method, sb.buf, &r, fault);
        if (ret != 0)
            break;
        xmlNodePtr rv = nx_soap_child(r.body, "returnval");
        char *token = nx_soap_child_text(rv, "token");
        ret = page(c, rv, ctx);
        nx_soap_resp_release(&r);
        if (ret != 0 || !token) {
            free(token);
            break;
        }
        method = continue_request(c, &sb, token);
        free(token);
    }
    nx_soap_resp_release(&r);
    strbuf_release(&sb);
    return ret;
}

/* ---- open and close ---------------------------------------------------------- */

int vs_session_open(struct vs_conn *c, const char *uri, const struct nx_conn_opts *opts)
{
    struct nx_soap_resp r = {0};
    struct strbuf sb = STRBUF_INIT;
    int ret = -1;
    c->soap = nx_soap_new(c->url, "urn:vim25", opts);
    if (!c->soap)
        goto cleanup;
    nx_soap_begin(&sb, "RetrieveServiceContent", "ServiceInstance", "ServiceInstance");
    nx_soap_end(&sb, "RetrieveServiceContent");
    if (call_retry(c, "RetrieveServiceContent", sb.buf, &r, NULL, true, NULL, NULL) != 0) {
        nx_error_prefix("%s: ", uri);
        goto cleanup;
    }
    xmlNodePtr sc = nx_soap_child(r.body, "returnval");
    c->root_folder = nx_soap_child_text(sc, "rootFolder");
    c->property_collector = nx_soap_child_text(sc, "propertyCollector");
    c->view_manager = nx_soap_child_text(sc, "viewManager");
    c->session_manager = nx_soap_child_text(sc, "sessionManager");
    c->task_manager = nx_soap_child_text(sc, "taskManager");
    c->file_manager = nx_soap_child_text(sc, "fileManager");
    c->api_version = nx_soap_child_text(nx_soap_child(sc, "about"), "apiVersion");
    nx_soap_resp_release(&r);
    if (!c->root_folder || !c->property_collector || !c->view_manager || !c->session_manager ||
        !c->task_manager) {
        nx_error_set(NX_EX_PROTOCOL, "%s: RetrieveServiceContent: incomplete ServiceContent", uri);
        goto cleanup;
    }
    if (c->api_version) {
        char *action = nx_asprintf("urn:vim25/%s", c->api_version);
        nx_soap_set_action(c->soap, action);
        free(action);
    }
    ret = do_login(c);
cleanup:
    strbuf_release(&sb);
    return ret;
}

void vs_session_logout(struct vs_conn *c)
{
    if (c->logged_in) {
        struct strbuf sb = STRBUF_INIT;
        struct nx_soap_resp r = {0};
        nx_soap_begin(&sb, "Logout", "SessionManager", c->session_manager);
        nx_soap_end(&sb, "Logout");
        if (call_retry(c, "Logout", sb.buf, &r, NULL, false, NULL, NULL) != 0)
            nx_debug("vsphere: Logout: %s", nx_error_msg());
        nx_soap_resp_release(&r);
        strbuf_release(&sb);
    }
    c->base->n_requests = nx_soap_requests(c->soap);
    nx_debug("vsphere: %s: %lu requests", c->url, c->base->n_requests);
}

void vs_session_release(struct vs_conn *c)
{
    nx_soap_free(c->soap);
    c->soap = NULL;
    free(c->url);
    free(c->user);
    nx_free_secret(c->password);
    free(c->root_folder);
    free(c->property_collector);
    free(c->view_manager);
    free(c->session_manager);
    free(c->task_manager);
    free(c->file_manager);
    free(c->api_version);
}
