/* soap.c: SOAP 1.1 envelopes, answers and faults (see soap.h). */
#include "config.h"

#include "soap.h"
#include "error.h"
#include "http.h"
#include "log.h"
#include "util.h"
#include "xml.h"

#include <libxml/xpathInternals.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct nx_soap {
    struct nx_http *http; /* the first connection; clones share its cookies */
    pthread_mutex_t lock; /* guards the pool */
    struct nx_http **idle; /* connections nobody uses now (keep-alive) */
    size_t n_idle, alloc_idle;
    struct nx_http **all; /* every connection, for counting and freeing */
    size_t n_all, alloc_all;
    char *url;
    char *action_header; /* "SOAPAction: \"urn:vim25/6.5\"" */
};

/* ---- requests ------------------------------------------------------------ */

void nx_soap_begin(struct strbuf *sb, const char *method, const char *this_type,
                   const char *this_val)
{
    strbuf_addf(sb, "<%s xmlns=\"" NX_VIM_NS "\">", method);
    nx_soap_add_moref(sb, "_this", this_type, this_val);
}

void nx_soap_end(struct strbuf *sb, const char *method)
{
    strbuf_addf(sb, "</%s>", method);
}

void nx_soap_add(struct strbuf *sb, const char *name, const char *value)
{
    strbuf_addf(sb, "<%s>", name);
    strbuf_add_xml_escaped(sb, value ? value : "");
    strbuf_addf(sb, "</%s>", name);
}

void nx_soap_addf(struct strbuf *sb, const char *name, const char *fmt, ...)
{
    struct strbuf v = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vaddf(&v, fmt, ap);
    va_end(ap);
    nx_soap_add(sb, name, v.buf);
    strbuf_release(&v);
}

void nx_soap_add_moref(struct strbuf *sb, const char *name, const char *type, const char *value)
{
    strbuf_addf(sb, "<%s type=\"", name);
    strbuf_add_xml_escaped(sb, type ? type : "");
    strbuf_addstr(sb, "\">");
    strbuf_add_xml_escaped(sb, value ? value : "");
    strbuf_addf(sb, "</%s>", name);
}

void nx_soap_envelope(struct strbuf *out, const char *body)
{
    strbuf_addstr(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                       "<soapenv:Envelope xmlns:soapenv=\"" NX_SOAP_ENV_NS "\""
                       " xmlns:xsd=\"" NX_XSD_NS "\" xmlns:xsi=\"" NX_XSI_NS "\">"
                       "<soapenv:Body>");
    strbuf_addstr(out, body);
    strbuf_addstr(out, "</soapenv:Body></soapenv:Envelope>");
}

/* ---- answers -------------------------------------------------------------- */

const char *nx_soap_xsi_type(xmlNodePtr node)
{
    if (!node || node->type != XML_ELEMENT_NODE)
        return NULL;
    for (xmlAttrPtr a = node->properties; a; a = a->next) {
        if (!a->ns || !a->ns->href || strcmp((const char *)a->ns->href, NX_XSI_NS) != 0 ||
            strcmp((const char *)a->name, "type") != 0)
            continue;
        const char *v =
            a->children && a->children->content ? (const char *)a->children->content : "";
        const char *colon = strchr(v, ':');
        return colon ? colon + 1 : v;
    }
    return NULL;
}

xmlNodePtr nx_soap_child(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr c = nx_xml_first_elem(node); c; c = nx_xml_next_elem(c))
        if (strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

char *nx_soap_child_text(xmlNodePtr node, const char *name)
{
    xmlNodePtr c = nx_soap_child(node, name);
    return c ? nx_xml_text(c) : NULL;
}

const char *nx_soap_text(xmlNodePtr node)
{
    if (node && node->children && node->children->type == XML_TEXT_NODE && !node->children->next &&
        node->children->content)
        return (const char *)node->children->content;
    return "";
}

void nx_soap_fault_release(struct nx_soap_fault *f)
{
    if (!f)
        return;
    NX_FREE(f->type);
    NX_FREE(f->message);
    NX_FREE(f->object);
}

static char *strip_fault_suffix(const char *name)
{
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, "Fault") == 0)
        n -= 5;
    return nx_strndup(name, n);
}

void nx_soap_fault_from_node(xmlNodePtr node, struct nx_soap_fault *f)
{
    nx_soap_fault_release(f);
    xmlNodePtr detail_elem = NULL;
    char *msg = NULL;
    if (nx_xml_is(node, NX_SOAP_ENV_NS, "Fault") || nx_soap_child(node, "faultstring")) {
        /* soapenv:Fault: faultcode, faultstring, detail/<XFault xsi:type="X"> */
        msg = nx_soap_child_text(node, "faultstring");
        detail_elem = nx_xml_first_elem(nx_soap_child(node, "detail"));
    } else {
        /* LocalizedMethodFault: <fault xsi:type="X">, <localizedMessage> */
        msg = nx_soap_child_text(node, "localizedMessage");
        detail_elem = nx_soap_child(node, "fault");
    }
    const char *t = nx_soap_xsi_type(detail_elem);
    if (t && *t)
        f->type = strip_fault_suffix(t);
    else if (detail_elem && strcmp((const char *)detail_elem->name, "fault") != 0)
        f->type = strip_fault_suffix((const char *)detail_elem->name);
    else
        f->type = nx_strdup("");
    if (!msg && detail_elem) {
        /* some servers only fill the detail; take a message if it has one */
        msg = nx_soap_child_text(detail_elem, "msg");
        if (!msg)
            msg = nx_soap_child_text(detail_elem, "faultMessage");
    }
    f->message = msg ? msg : nx_strdup("");
    f->object = detail_elem ? nx_soap_child_text(detail_elem, "object") : NULL;
}

void nx_soap_resp_release(struct nx_soap_resp *r)
{
    if (!r)
        return;
    if (r->xp)
        xmlXPathFreeContext(r->xp);
    if (r->doc)
        xmlFreeDoc(r->doc);
    memset(r, 0, sizeof(*r));
}

xmlXPathObjectPtr nx_soap_xpath(struct nx_soap_resp *r, xmlNodePtr node, const char *expr)
{
    if (!r->xp) {
        r->xp = xmlXPathNewContext(r->doc);
        if (!r->xp)
            return NULL;
        xmlXPathRegisterNs(r->xp, BAD_CAST "soapenv", BAD_CAST NX_SOAP_ENV_NS);
        xmlXPathRegisterNs(r->xp, BAD_CAST "vim", BAD_CAST NX_VIM_NS);
        xmlXPathRegisterNs(r->xp, BAD_CAST "xsi", BAD_CAST NX_XSI_NS);
        xmlXPathRegisterNs(r->xp, BAD_CAST "xsd", BAD_CAST NX_XSD_NS);
    }
    xmlXPathObjectPtr o = node ? xmlXPathNodeEval(node, BAD_CAST expr, r->xp)
                               : xmlXPathEvalExpression(BAD_CAST expr, r->xp);
    if (o && (o->type != XPATH_NODESET || !o->nodesetval || o->nodesetval->nodeNr == 0)) {
        xmlXPathFreeObject(o);
        o = NULL;
    }
    return o;
}

int nx_soap_parse(const char *buf, size_t len, long http_status, const char *name,
                  struct nx_soap_resp *out, struct nx_soap_fault *fault)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return nx_error_set(NX_EX_PROTOCOL, "%s: empty answer (HTTP %ld)", name, http_status);
    xmlDocPtr doc = nx_xml_read_memory(buf, len, name, NX_EX_PROTOCOL);
    if (!doc) {
        if (http_status != 200)
            nx_error_prefix("HTTP %ld: ", http_status);
        return -1;
    }
    xmlNodePtr env = xmlDocGetRootElement(doc);
    xmlNodePtr body = NULL;
    if (nx_xml_is(env, NX_SOAP_ENV_NS, "Envelope"))
        for (xmlNodePtr c = nx_xml_first_elem(env); c; c = nx_xml_next_elem(c))
            if (nx_xml_is(c, NX_SOAP_ENV_NS, "Body"))
                body = c;
    xmlNodePtr first = nx_xml_first_elem(body);
    if (!first) {
        xmlFreeDoc(doc);
        return nx_error_set(NX_EX_PROTOCOL, "%s: not a SOAP answer (HTTP %ld)", name, http_status);
    }
    if (nx_xml_is(first, NX_SOAP_ENV_NS, "Fault")) {
        struct nx_soap_fault tmp = {0};
        struct nx_soap_fault *f = fault ? fault : &tmp;
        nx_soap_fault_from_node(first, f);
        nx_error_set(NX_EX_FAILED, "%s: %s%s%s", name, *f->type ? f->type : "fault",
                     *f->message ? ": " : "", f->message);
        nx_soap_fault_release(&tmp);
        xmlFreeDoc(doc);
        return 1;
    }
    if (http_status != 200) {
        xmlFreeDoc(doc);
        return nx_error_set(NX_EX_PROTOCOL, "%s: HTTP %ld without a SOAP fault", name, http_status);
    }
    out->doc = doc;
    out->body = first;
    return 0;
}

/* ---- transport ----------------------------------------------------------- */

struct nx_soap *nx_soap_new(const char *url, const char *soap_action,
                            const struct nx_conn_opts *opts)
{
    struct nx_http *h = nx_http_new(url, opts);
    if (!h)
        return NULL;
    struct nx_soap *s = nx_calloc(1, sizeof(*s));
    s->http = h;
    pthread_mutex_init(&s->lock, NULL);
    NX_GROW(s->all, s->alloc_all, 1);
    s->all[s->n_all++] = h;
    NX_GROW(s->idle, s->alloc_idle, 1);
    s->idle[s->n_idle++] = h;
    s->url = nx_strdup(url);
    nx_soap_set_action(s, soap_action);
    return s;
}

void nx_soap_set_action(struct nx_soap *s, const char *soap_action)
{
    free(s->action_header);
    s->action_header = soap_action ? nx_asprintf("SOAPAction: \"%s\"", soap_action) : NULL;
}

void nx_soap_free(struct nx_soap *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_all; i++)
        nx_http_free(s->all[i]);
    free(s->all);
    free(s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s->url);
    free(s->action_header);
    free(s);
}

static struct nx_http *acquire(struct nx_soap *s);
static void release(struct nx_soap *s, struct nx_http *h);

void nx_soap_clear_cookies(struct nx_soap *s)
{
    if (!s)
        return;
    /* the jar is shared: clearing it through any idle connection clears all */
    struct nx_http *h = acquire(s);
    if (h) {
        nx_http_clear_cookies(h);
        release(s, h);
    }
}

unsigned long nx_soap_requests(const struct nx_soap *s)
{
    unsigned long n = 0;
    if (!s)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    for (size_t i = 0; i < s->n_all; i++)
        n += nx_http_requests(s->all[i]);
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return n;
}

struct nx_http *nx_soap_http_clone(struct nx_soap *s)
{
    return s ? nx_http_clone(s->http) : NULL;
}

size_t nx_soap_connections(const struct nx_soap *s)
{
    return s ? s->n_all : 0;
}

/* An idle connection, or a new one sharing the session cookie. */
static struct nx_http *acquire(struct nx_soap *s)
{
    struct nx_http *h = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->n_idle)
        h = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->lock);
    if (h)
        return h;
    h = nx_http_clone(s->http);
    if (!h)
        return NULL;
    pthread_mutex_lock(&s->lock);
    NX_GROW(s->all, s->alloc_all, s->n_all + 1);
    s->all[s->n_all++] = h;
    pthread_mutex_unlock(&s->lock);
    return h;
}

static void release(struct nx_soap *s, struct nx_http *h)
{
    pthread_mutex_lock(&s->lock);
    NX_GROW(s->idle, s->alloc_idle, s->n_idle + 1);
    s->idle[s->n_idle++] = h;
    pthread_mutex_unlock(&s->lock);
}

int nx_soap_call(struct nx_soap *s, const char *method, const char *body, struct nx_soap_resp *out,
                 struct nx_soap_fault *fault)
{
    return nx_soap_call_ex(s, method, body, out, fault, NULL);
}

int nx_soap_call_ex(struct nx_soap *s, const char *method, const char *body,
                    struct nx_soap_resp *out, struct nx_soap_fault *fault, int *transient)
{
    struct strbuf env = STRBUF_INIT;
    struct nx_http_response resp;
    const char *headers[] = {s->action_header, NULL};
    int ret;
    memset(out, 0, sizeof(*out));
    nx_soap_envelope(&env, body);
    nx_http_response_init(&resp);
    nx_debug("vsphere: %s", method);
    /* NX_SOAP_ONCE in: on a fresh connection (never sent twice by libcurl) */
    bool once = transient && *transient == NX_SOAP_ONCE;
    if (transient)
        *transient = once ? NX_SOAP_ONCE : NX_SOAP_PERMANENT;
    struct nx_http *h = acquire(s);
    if (!h) {
        if (transient)
            *transient = NX_SOAP_PERMANENT;
        ret = -1;
        goto cleanup;
    }
    int prc = nx_http_post_ex(h, "text/xml; charset=utf-8", headers, env.buf, env.len, &resp, once);
    if (transient)
        *transient = NX_SOAP_PERMANENT;
    int lost = prc < 0 && nx_http_transient(h)
                   ? (nx_http_unsent(h) ? NX_SOAP_NOT_DONE : NX_SOAP_MAYBE_DONE)
                   : NX_SOAP_PERMANENT;
    release(s, h);
    if (prc < 0) {
        nx_error_prefix("%s: ", method);
        if (transient)
            *transient = lost;
        ret = -1;
        goto cleanup;
    }
    if (resp.status != 200 && resp.status != 500) {
        ret = nx_error_set(resp.status == 401 || resp.status == 403 ? NX_EX_NOPERM : NX_EX_PROTOCOL,
                           "%s: %s: HTTP %ld", s->url, method, resp.status);
        /* 502/503/504 without a SOAP body: a proxy or the server refused
         * the request before running it; other 5xx: it may have run */
        if (transient && resp.status >= 500 && resp.status <= 599)
            *transient =
                resp.status >= 502 && resp.status <= 504 ? NX_SOAP_NOT_DONE : NX_SOAP_MAYBE_DONE;
        goto cleanup;
    }
    ret = nx_soap_parse(resp.body.buf, resp.body.len, resp.status, method, out, fault);
    /* truncated, malformed, not SOAP, or a 500 without a fault */
    if (ret < 0 && transient)
        *transient = NX_SOAP_MAYBE_DONE;
cleanup:
    /* requests may carry the password (Login): wipe them */
    strbuf_release_secret(&env);
    nx_http_response_release(&resp);
    return ret;
}
