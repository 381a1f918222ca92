/* wsman.c: the WS-Management client (see wsman.h): requests sent over HTTP
 * with retries, enumeration paging (Enumerate, Pull, Release), Get and
 * Invoke. The messages themselves, built and parsed: wsman-msg.c. */
#include "config.h"

#include "wsman.h"
#include "error.h"
#include "http.h"
#include "log.h"
#include "retry.h"
#include "util.h"
#include "xml.h"

#include <stdlib.h>
#include <string.h>

/* Enumerations end after this many Pulls whatever the server says. */
#define MAX_PULLS 10000
#define PULL_MAX_ELEMENTS 32

struct nx_wsman {
    struct nx_http *http;
    char *to;
    long timeout_ms;
};

/* -------------------------------------------------------------- client -- */

struct nx_wsman *nx_wsman_new(struct nx_http *http, const char *to, long timeout_ms)
{
    struct nx_wsman *w = nx_calloc(1, sizeof(*w));
    w->http = http;
    w->to = nx_strdup(to);
    /* the service should answer (wsman:TimedOut at worst) before the HTTP
     * request itself times out */
    long t = timeout_ms > 0 ? timeout_ms : 60000;
    w->timeout_ms = t - t / 5;
    return w;
}

void nx_wsman_free(struct nx_wsman *w)
{
    if (!w)
        return;
    free(w->to);
    free(w);
}

static const char *class_of(const char *uri)
{
    const char *s = uri ? strrchr(uri, '/') : NULL;
    return s ? s + 1 : (uri ? uri : "?");
}

/* Retries (netext-deploy(8), Hyper-V): reads (Enumerate with its Pulls, Get)
 * are repeated on a transient failure: no answer (connection refused, reset,
 * dropped, timed out) or an answer that is not a complete SOAP envelope
 * (truncated, an HTML 5xx page). WS-Management faults, authentication errors
 * and TLS errors are final. Invoke (every method we call changes something)
 * goes on a fresh connection so that libcurl cannot repeat it, and is
 * repeated only when it certainly did not run: no connection could be made,
 * or the service answered 502, 503 or 504 without a SOAP envelope. Otherwise
 * the next run finds out from the host what happened. Attempts and backoff:
 * src/retry.h. */
static _Thread_local bool last_transient; /* a read may be repeated */
static _Thread_local bool last_unsent; /* the request certainly did not run */

/* the retry predicates (src/retry.h): a read after a transient failure, a
 * write only when it certainly did not run */
static bool read_again(void *ctx, int rc)
{
    (void)ctx;
    return rc != 0 && last_transient;
}

static bool write_again(void *ctx, int rc)
{
    (void)ctx;
    return rc != 0 && last_unsent;
}

/* Send one request and check its answer. write: a request that must never
 * be sent twice (fresh connection); sets last_transient on a failure that a
 * read may retry. */
static int roundtrip(struct nx_wsman *w, const char *what, const char *action,
                     const char *resource_uri, const struct nx_wsman_epr *selectors,
                     const char *body, xmlDocPtr *doc, xmlNodePtr *body_out, bool write)
{
    struct strbuf env = STRBUF_INIT;
    struct nx_http_response resp;
    struct nx_wsman_request req = {
        .to = w->to,
        .action = action,
        .resource_uri = resource_uri,
        .selectors = selectors,
        .body = body,
        .timeout_ms = w->timeout_ms,
    };
    int ret = -1;
    nx_http_response_init(&resp);
    nx_wsman_envelope(&env, &req);
    nx_debug("wsman: %s", what);
    last_transient = last_unsent = false;
    if (nx_http_post_ex(w->http, "application/soap+xml;charset=UTF-8", NULL, env.buf, env.len,
                        &resp, write) < 0) {
        last_transient = nx_http_transient(w->http);
        last_unsent = nx_http_unsent(w->http);
        nx_error_prefix("%s: ", what);
        goto cleanup;
    }
    ret = nx_wsman_check_answer(what, resp.status, resp.body.buf, resp.body.len, req.message_id,
                                doc, body_out);
    if (ret < 0) {
        last_transient = nx_error_code() == NX_EX_PROTOCOL;
        last_unsent = last_transient && resp.status >= 502 && resp.status <= 504;
    }
cleanup:
    strbuf_release(&env);
    nx_http_response_release(&resp);
    return ret;
}

static int take_items(xmlNodePtr items, struct nx_wsman_list *out)
{
    for (xmlNodePtr c = items ? nx_xml_first_elem(items) : NULL; c; c = nx_xml_next_elem(c)) {
        struct nx_wsman_instance *inst;
        if (nx_wsman_parse_item(c, &inst) < 0)
            return -1;
        NX_GROW(out->items, out->alloc, out->n + 1);
        out->items[out->n++] = inst;
    }
    return 0;
}

static void release_context(struct nx_wsman *w, const char *uri, const char *ctx)
{
    struct strbuf b = STRBUF_INIT;
    xmlDocPtr doc = NULL;
    xmlNodePtr body;
    strbuf_addstr(&b, "<n:Release><n:EnumerationContext>");
    strbuf_add_xml_escaped(&b, ctx);
    strbuf_addstr(&b, "</n:EnumerationContext></n:Release>");
    /* best effort: keep the error that made us give up */
    char *saved = nx_strdup(nx_error_msg());
    int code = nx_error_code();
    bool transient = last_transient;
    if (roundtrip(w, "Release", NX_WSMAN_ACTION_RELEASE, uri, NULL, b.buf, &doc, &body, false) == 0)
        xmlFreeDoc(doc);
    if (code != NX_EX_OK)
        nx_error_set(code, "%s", saved);
    last_transient = transient;
    free(saved);
    strbuf_release(&b);
}

static int enumerate_once(struct nx_wsman *w, const char *resource_uri, const char *wql,
                          struct nx_wsman_list *out)
{
    struct strbuf b = STRBUF_INIT;
    char *what = nx_asprintf("Enumerate %s", class_of(resource_uri));
    char *ctx = NULL;
    xmlDocPtr doc = NULL;
    xmlNodePtr body;
    int ret = -1;
    size_t first = out->n;

    strbuf_addstr(&b, "<n:Enumerate><w:OptimizeEnumeration/>");
    strbuf_addf(&b, "<w:MaxElements>%d</w:MaxElements>", PULL_MAX_ELEMENTS);
    strbuf_addstr(&b, "<w:EnumerationMode>EnumerateObjectAndEPR</w:EnumerationMode>");
    if (wql) {
        strbuf_addstr(&b, "<w:Filter Dialect=\"" NX_WSMAN_DIALECT_WQL "\">");
        strbuf_add_xml_escaped(&b, wql);
        strbuf_addstr(&b, "</w:Filter>");
    }
    strbuf_addstr(&b, "</n:Enumerate>");
    if (roundtrip(w, what, NX_WSMAN_ACTION_ENUMERATE, resource_uri, NULL, b.buf, &doc, &body,
                  false) < 0)
        goto cleanup;
    xmlNodePtr resp = nx_wsman_child(body, NX_WSMAN_NS_WSEN, "EnumerateResponse");
    if (!resp) {
        nx_error_set(NX_EX_PROTOCOL, "%s: the answer has no wsen:EnumerateResponse", what);
        goto cleanup;
    }
    xmlNodePtr c = nx_wsman_child(resp, NX_WSMAN_NS_WSEN, "EnumerationContext");
    ctx = c ? nx_xml_text(c) : NULL;
    bool end = nx_wsman_child(resp, NX_WSMAN_NS_WSMAN, "EndOfSequence") != NULL;
    if (take_items(nx_wsman_child(resp, NX_WSMAN_NS_WSMAN, "Items"), out) < 0) {
        nx_error_prefix("%s: ", what);
        goto cleanup;
    }
    if (!end && !ctx) {
        nx_error_set(NX_EX_PROTOCOL, "%s: neither an enumeration context nor EndOfSequence", what);
        goto cleanup;
    }
    for (unsigned pulls = 0; !end; pulls++) {
        if (pulls >= MAX_PULLS) {
            nx_error_set(NX_EX_PROTOCOL, "%s: the enumeration does not end after %d Pulls", what,
                         MAX_PULLS);
            goto cleanup;
        }
        xmlFreeDoc(doc);
        doc = NULL;
        strbuf_reset(&b);
        strbuf_addstr(&b, "<n:Pull><n:EnumerationContext>");
        strbuf_add_xml_escaped(&b, ctx);
        strbuf_addf(&b, "</n:EnumerationContext><n:MaxElements>%d</n:MaxElements></n:Pull>",
                    PULL_MAX_ELEMENTS);
        if (roundtrip(w, what, NX_WSMAN_ACTION_PULL, resource_uri, NULL, b.buf, &doc, &body,
                      false) < 0)
            goto cleanup;
        resp = nx_wsman_child(body, NX_WSMAN_NS_WSEN, "PullResponse");
        if (!resp) {
            nx_error_set(NX_EX_PROTOCOL, "%s: the answer has no wsen:PullResponse", what);
            goto cleanup;
        }
        if (take_items(nx_wsman_child(resp, NX_WSMAN_NS_WSEN, "Items"), out) < 0) {
            nx_error_prefix("%s: ", what);
            goto cleanup;
        }
        end = nx_wsman_child(resp, NX_WSMAN_NS_WSEN, "EndOfSequence") != NULL;
        c = nx_wsman_child(resp, NX_WSMAN_NS_WSEN, "EnumerationContext");
        if (c) {
            free(ctx);
            ctx = nx_xml_text(c);
        }
        if (!end && !c) {
            nx_error_set(NX_EX_PROTOCOL,
                         "%s: a PullResponse with neither a context nor EndOfSequence", what);
            goto cleanup;
        }
        if (end)
            NX_FREE(ctx); /* the sequence ended: the context is gone */
    }
    ret = 0;
cleanup:
    if (ret < 0) {
        if (ctx && ctx[0] && nx_error_code() != NX_EX_NOPERM)
            release_context(w, resource_uri, ctx);
        for (size_t i = first; i < out->n; i++)
            nx_wsman_instance_free(out->items[i]);
        out->n = first;
    }
    xmlFreeDoc(doc);
    free(ctx);
    free(what);
    strbuf_release(&b);
    return ret;
}

/* A failed Pull cannot be repeated (the context may have moved on): the
 * whole enumeration starts again. */
struct enumerate_args {
    struct nx_wsman *w;
    const char *resource_uri, *wql;
    struct nx_wsman_list *out;
};

static int enumerate_attempt(void *ctx, int k)
{
    struct enumerate_args *a = ctx;
    (void)k;
    return enumerate_once(a->w, a->resource_uri, a->wql, a->out);
}

int nx_wsman_enumerate(struct nx_wsman *w, const char *resource_uri, const char *wql,
                       struct nx_wsman_list *out)
{
    struct enumerate_args a = {w, resource_uri, wql, out};
    return nx_retry_run("wsman", class_of(resource_uri), enumerate_attempt, read_again, &a);
}

static int get_once(struct nx_wsman *w, const struct nx_wsman_epr *epr,
                    struct nx_wsman_instance **out)
{
    char *what = nx_asprintf("Get %s", class_of(epr->resource_uri));
    xmlDocPtr doc = NULL;
    xmlNodePtr body;
    int ret = -1;
    *out = NULL;
    if (roundtrip(w, what, NX_WSMAN_ACTION_GET, epr->resource_uri, epr, NULL, &doc, &body, false) <
        0)
        goto cleanup;
    xmlNodePtr obj = nx_xml_first_elem(body);
    if (!obj) {
        nx_error_set(NX_EX_PROTOCOL, "%s: the answer has an empty Body", what);
        goto cleanup;
    }
    if (nx_wsman_parse_item(obj, out) < 0) {
        nx_error_prefix("%s: ", what);
        goto cleanup;
    }
    ret = 0;
cleanup:
    xmlFreeDoc(doc);
    free(what);
    return ret;
}

struct get_args {
    struct nx_wsman *w;
    const struct nx_wsman_epr *epr;
    struct nx_wsman_instance **out;
};

static int get_attempt(void *ctx, int k)
{
    struct get_args *a = ctx;
    (void)k;
    return get_once(a->w, a->epr, a->out);
}

int nx_wsman_get(struct nx_wsman *w, const struct nx_wsman_epr *epr, struct nx_wsman_instance **out)
{
    struct get_args a = {w, epr, out};
    return nx_retry_run("wsman", class_of(epr->resource_uri), get_attempt, read_again, &a);
}

static int invoke_once(struct nx_wsman *w, const struct nx_wsman_epr *target, const char *method,
                       const struct nx_wsman_param *params, size_t n_params,
                       struct nx_wsman_instance **out)
{
    struct strbuf b = STRBUF_INIT;
    char *what = nx_asprintf("%s.%s", class_of(target->resource_uri), method);
    char *action = nx_asprintf("%s/%s", target->resource_uri, method);
    char *outname = nx_asprintf("%s_OUTPUT", method);
    xmlDocPtr doc = NULL;
    xmlNodePtr body;
    int ret = -1;
    *out = NULL;
    nx_wsman_invoke_body(&b, target->resource_uri, method, params, n_params);
    if (roundtrip(w, what, action, target->resource_uri, target, b.buf, &doc, &body, true) < 0)
        goto cleanup;
    xmlNodePtr o = nx_wsman_child(body, target->resource_uri, outname);
    if (!o) {
        nx_error_set(NX_EX_PROTOCOL, "%s: the answer has no %s", what, outname);
        goto cleanup;
    }
    struct nx_wsman_instance *inst = nx_calloc(1, sizeof(*inst));
    inst->class_name = nx_strdup(outname);
    if (nx_wsman_parse_props(o, inst) < 0) {
        nx_error_prefix("%s: ", what);
        nx_wsman_instance_free(inst);
        goto cleanup;
    }
    *out = inst;
    ret = 0;
cleanup:
    xmlFreeDoc(doc);
    free(what);
    free(action);
    free(outname);
    strbuf_release(&b);
    return ret;
}

struct invoke_args {
    struct nx_wsman *w;
    const struct nx_wsman_epr *target;
    const char *method;
    const struct nx_wsman_param *params;
    size_t n_params;
    struct nx_wsman_instance **out;
};

static int invoke_attempt(void *ctx, int k)
{
    struct invoke_args *a = ctx;
    (void)k;
    return invoke_once(a->w, a->target, a->method, a->params, a->n_params, a->out);
}

int nx_wsman_invoke(struct nx_wsman *w, const struct nx_wsman_epr *target, const char *method,
                    const struct nx_wsman_param *params, size_t n_params,
                    struct nx_wsman_instance **out)
{
    struct invoke_args a = {w, target, method, params, n_params, out};
    return nx_retry_run("wsman", method, invoke_attempt, write_again, &a);
}
