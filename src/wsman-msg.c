/* wsman-msg.c: the WS-Management messages (see wsman.h), no I/O: EPRs and
 * instances, envelopes and bodies built, answers parsed (items, EPRs, CIM-XML
 * instances), faults turned into one error. The client that sends them over
 * HTTP, with retries and enumeration paging: wsman.c. */
#include "config.h"

#include "wsman.h"
#include "error.h"
#include "util.h"
#include "xml.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers -- */

struct nx_wsman_epr *nx_wsman_epr_new(const char *resource_uri)
{
    struct nx_wsman_epr *e = nx_calloc(1, sizeof(*e));
    e->resource_uri = nx_strdup(resource_uri ? resource_uri : "");
    return e;
}

void nx_wsman_epr_add(struct nx_wsman_epr *e, const char *name, const char *value)
{
    NX_GROW(e->sel, e->alloc_sel, e->n_sel + 1);
    e->sel[e->n_sel].name = nx_strdup(name);
    e->sel[e->n_sel].value = nx_strdup(value ? value : "");
    e->n_sel++;
}

struct nx_wsman_epr *nx_wsman_epr_dup(const struct nx_wsman_epr *e)
{
    if (!e)
        return NULL;
    struct nx_wsman_epr *d = nx_wsman_epr_new(e->resource_uri);
    for (size_t i = 0; i < e->n_sel; i++)
        nx_wsman_epr_add(d, e->sel[i].name, e->sel[i].value);
    return d;
}

const char *nx_wsman_epr_selector(const struct nx_wsman_epr *e, const char *name)
{
    for (size_t i = 0; e && i < e->n_sel; i++)
        if (strcmp(e->sel[i].name, name) == 0)
            return e->sel[i].value;
    return NULL;
}

void nx_wsman_epr_free(struct nx_wsman_epr *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_sel; i++) {
        free(e->sel[i].name);
        free(e->sel[i].value);
    }
    free(e->sel);
    free(e->resource_uri);
    free(e);
}

void nx_wsman_instance_free(struct nx_wsman_instance *i)
{
    if (!i)
        return;
    for (size_t k = 0; k < i->n; k++) {
        free(i->props[k].name);
        free(i->props[k].value);
        nx_wsman_epr_free(i->props[k].epr);
    }
    free(i->props);
    free(i->class_name);
    nx_wsman_epr_free(i->epr);
    free(i);
}

void nx_wsman_list_release(struct nx_wsman_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        nx_wsman_instance_free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->alloc = 0;
}

static struct nx_wsman_prop *add_prop(struct nx_wsman_instance *i, const char *name)
{
    NX_GROW(i->props, i->alloc, i->n + 1);
    struct nx_wsman_prop *p = &i->props[i->n++];
    memset(p, 0, sizeof(*p));
    p->name = nx_strdup(name);
    return p;
}

const char *nx_wsman_prop(const struct nx_wsman_instance *i, const char *name)
{
    for (size_t k = 0; i && k < i->n; k++)
        if (strcmp(i->props[k].name, name) == 0)
            return i->props[k].value;
    return NULL;
}

const struct nx_wsman_epr *nx_wsman_prop_epr(const struct nx_wsman_instance *i, const char *name)
{
    for (size_t k = 0; i && k < i->n; k++)
        if (strcmp(i->props[k].name, name) == 0 && i->props[k].epr)
            return i->props[k].epr;
    return NULL;
}

long nx_wsman_return_value(const struct nx_wsman_instance *out, const char *method)
{
    unsigned long v;
    const char *s = nx_wsman_prop(out, "ReturnValue");
    if (!s)
        return nx_error_set(NX_EX_PROTOCOL, "%s: the answer has no ReturnValue", method);
    if (!nx_parse_uint(s, 0, 0xffffffffUL, &v))
        return nx_error_set(NX_EX_PROTOCOL, "%s: ReturnValue '%s' is not a number", method, s);
    return (long)v;
}

char *nx_wsman_wmi_uri(const char *ns, const char *cls)
{
    return nx_asprintf(NX_WSMAN_WMI_PREFIX "%s/%s", ns, cls);
}

/* ------------------------------------------------------------ building -- */

static void make_uuid(char out[48])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        /* never reused within a run: the counter makes it unique */
        static unsigned long counter;
        memset(b, 0, sizeof(b));
        unsigned long c = ++counter;
        memcpy(b, &c, sizeof(c) < sizeof(b) ? sizeof(c) : sizeof(b));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 48, "uuid:%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void add_selector_set(struct strbuf *sb, const struct nx_wsman_epr *e)
{
    if (!e || !e->n_sel)
        return;
    strbuf_addstr(sb, "<w:SelectorSet>");
    for (size_t i = 0; i < e->n_sel; i++) {
        strbuf_addstr(sb, "<w:Selector Name=\"");
        strbuf_add_xml_escaped(sb, e->sel[i].name);
        strbuf_addstr(sb, "\">");
        strbuf_add_xml_escaped(sb, e->sel[i].value);
        strbuf_addstr(sb, "</w:Selector>");
    }
    strbuf_addstr(sb, "</w:SelectorSet>");
}

void nx_wsman_add_epr(struct strbuf *sb, const struct nx_wsman_epr *epr)
{
    strbuf_addstr(sb, "<a:Address>" NX_WSMAN_ANONYMOUS "</a:Address><a:ReferenceParameters>"
                      "<w:ResourceURI>");
    strbuf_add_xml_escaped(sb, epr->resource_uri);
    strbuf_addstr(sb, "</w:ResourceURI>");
    add_selector_set(sb, epr);
    strbuf_addstr(sb, "</a:ReferenceParameters>");
}

void nx_wsman_envelope(struct strbuf *sb, struct nx_wsman_request *req)
{
    long t = req->timeout_ms > 0 ? req->timeout_ms : 60000;
    make_uuid(req->message_id);
    strbuf_addstr(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<s:Envelope xmlns:s=\"" NX_WSMAN_NS_SOAP "\" xmlns:a=\"" NX_WSMAN_NS_WSA
                      "\" xmlns:w=\"" NX_WSMAN_NS_WSMAN "\" xmlns:n=\"" NX_WSMAN_NS_WSEN
                      "\"><s:Header><a:To>");
    strbuf_add_xml_escaped(sb, req->to);
    strbuf_addstr(sb, "</a:To><w:ResourceURI s:mustUnderstand=\"true\">");
    strbuf_add_xml_escaped(sb, req->resource_uri);
    strbuf_addstr(
        sb, "</w:ResourceURI><a:ReplyTo><a:Address s:mustUnderstand=\"true\">" NX_WSMAN_ANONYMOUS
            "</a:Address></a:ReplyTo><a:Action s:mustUnderstand=\"true\">");
    strbuf_add_xml_escaped(sb, req->action);
    strbuf_addf(sb,
                "</a:Action><w:MaxEnvelopeSize s:mustUnderstand=\"true\">%d</w:MaxEnvelopeSize>"
                "<a:MessageID>%s</a:MessageID><w:Locale xml:lang=\"en-US\" "
                "s:mustUnderstand=\"false\"/><w:OperationTimeout>PT%ld.%03ldS</w:OperationTimeout>",
                NX_WSMAN_MAX_ENVELOPE, req->message_id, t / 1000, t % 1000);
    add_selector_set(sb, req->selectors);
    strbuf_addstr(sb, "</s:Header><s:Body>");
    if (req->body)
        strbuf_addstr(sb, req->body);
    strbuf_addstr(sb, "</s:Body></s:Envelope>\n");
}

void nx_wsman_invoke_body(struct strbuf *sb, const char *resource_uri, const char *method,
                          const struct nx_wsman_param *params, size_t n)
{
    strbuf_addf(sb, "<p:%s_INPUT xmlns:p=\"", method);
    strbuf_add_xml_escaped(sb, resource_uri);
    strbuf_addstr(sb, "\">");
    for (size_t i = 0; i < n; i++) {
        const struct nx_wsman_param *p = &params[i];
        strbuf_addf(sb, "<p:%s>", p->name);
        if (p->kind == NX_WSMAN_REF && p->ref)
            nx_wsman_add_epr(sb, p->ref);
        else if (p->value)
            strbuf_add_xml_escaped(sb, p->value); /* embedded documents too: text */
        strbuf_addf(sb, "</p:%s>", p->name);
    }
    strbuf_addf(sb, "</p:%s_INPUT>", method);
}

char *nx_cim_instance_xml(const char *class_name, const struct nx_cim_prop *props, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, "<INSTANCE CLASSNAME=\"");
    strbuf_add_xml_escaped(&sb, class_name);
    strbuf_addstr(&sb, "\">");
    for (size_t i = 0; i < n; i++) {
        const struct nx_cim_prop *p = &props[i];
        const char *type = p->type ? p->type : "string";
        if (p->array) {
            strbuf_addstr(&sb, "<PROPERTY.ARRAY NAME=\"");
            strbuf_add_xml_escaped(&sb, p->name);
            strbuf_addstr(&sb, "\" TYPE=\"");
            strbuf_add_xml_escaped(&sb, type);
            strbuf_addstr(&sb, "\"><VALUE.ARRAY>");
            for (size_t k = 0; k < p->n_array; k++) {
                strbuf_addstr(&sb, "<VALUE>");
                strbuf_add_xml_escaped(&sb, p->array[k]);
                strbuf_addstr(&sb, "</VALUE>");
            }
            strbuf_addstr(&sb, "</VALUE.ARRAY></PROPERTY.ARRAY>");
        } else if (p->value) {
            strbuf_addstr(&sb, "<PROPERTY NAME=\"");
            strbuf_add_xml_escaped(&sb, p->name);
            strbuf_addstr(&sb, "\" TYPE=\"");
            strbuf_add_xml_escaped(&sb, type);
            strbuf_addstr(&sb, "\"><VALUE>");
            strbuf_add_xml_escaped(&sb, p->value);
            strbuf_addstr(&sb, "</VALUE></PROPERTY>");
        }
    }
    strbuf_addstr(&sb, "</INSTANCE>");
    return strbuf_detach(&sb, NULL);
}

/* ------------------------------------------------------------- parsing -- */

xmlNodePtr nx_wsman_child(xmlNodePtr parent, const char *ns, const char *name)
{
    for (xmlNodePtr c = nx_xml_first_elem(parent); c; c = nx_xml_next_elem(c))
        if (nx_xml_is(c, ns, name))
            return c;
    return NULL;
}

static const char *local(xmlNodePtr n)
{
    return (const char *)n->name;
}

int nx_wsman_parse_epr(xmlNodePtr node, struct nx_wsman_epr **out)
{
    *out = NULL;
    xmlNodePtr rp = nx_wsman_child(node, NX_WSMAN_NS_WSA, "ReferenceParameters");
    if (!rp)
        return nx_error_set(NX_EX_PROTOCOL, "endpoint reference without wsa:ReferenceParameters");
    xmlNodePtr ru = nx_wsman_child(rp, NX_WSMAN_NS_WSMAN, "ResourceURI");
    char *uri = ru ? nx_xml_text(ru) : NULL;
    if (!uri)
        return nx_error_set(NX_EX_PROTOCOL, "endpoint reference without wsman:ResourceURI");
    struct nx_wsman_epr *e = nx_wsman_epr_new(uri);
    free(uri);
    xmlNodePtr ss = nx_wsman_child(rp, NX_WSMAN_NS_WSMAN, "SelectorSet");
    for (xmlNodePtr s = ss ? nx_xml_first_elem(ss) : NULL; s; s = nx_xml_next_elem(s)) {
        if (!nx_xml_is(s, NX_WSMAN_NS_WSMAN, "Selector"))
            continue;
        const char *name = nx_xml_attr(s, "Name");
        if (!name) {
            nx_wsman_epr_free(e);
            return nx_error_set(NX_EX_PROTOCOL, "wsman:Selector without a Name");
        }
        char *v = nx_xml_text(s);
        nx_wsman_epr_add(e, name, v ? v : "");
        free(v);
    }
    *out = e;
    return 0;
}

static bool is_nil(xmlNodePtr n)
{
    xmlChar *v = xmlGetNsProp(n, BAD_CAST "nil", BAD_CAST NX_WSMAN_NS_XSI);
    bool nil = v && (xmlStrcmp(v, BAD_CAST "true") == 0 || xmlStrcmp(v, BAD_CAST "1") == 0);
    xmlFree(v);
    return nil;
}

/* Children of an instance or method output element become properties. */
int nx_wsman_parse_props(xmlNodePtr el, struct nx_wsman_instance *inst)
{
    for (xmlNodePtr c = nx_xml_first_elem(el); c; c = nx_xml_next_elem(c)) {
        struct nx_wsman_prop *p = add_prop(inst, local(c));
        if (is_nil(c))
            continue;
        if (nx_wsman_child(c, NX_WSMAN_NS_WSA, "ReferenceParameters")) {
            if (nx_wsman_parse_epr(c, &p->epr) < 0) {
                nx_error_prefix("property %s: ", local(c));
                return -1;
            }
            continue;
        }
        xmlNodePtr sub = nx_xml_first_elem(c);
        /* cim:Datetime / cim:Interval wrap their value */
        p->value = nx_xml_text(sub ? sub : c);
        if (!p->value)
            p->value = nx_strdup("");
    }
    return 0;
}

int nx_wsman_parse_item(xmlNodePtr node, struct nx_wsman_instance **out)
{
    *out = NULL;
    struct nx_wsman_instance *inst = nx_calloc(1, sizeof(*inst));
    xmlNodePtr obj = node, epr = NULL;
    if (nx_xml_is(node, NX_WSMAN_NS_WSMAN, "Item")) {
        obj = NULL;
        for (xmlNodePtr c = nx_xml_first_elem(node); c; c = nx_xml_next_elem(c)) {
            if (nx_xml_is(c, NX_WSMAN_NS_WSA, "EndpointReference"))
                epr = c;
            else if (!obj)
                obj = c;
        }
    } else if (nx_xml_is(node, NX_WSMAN_NS_WSA, "EndpointReference")) {
        epr = node;
        obj = NULL;
    }
    if (epr && nx_wsman_parse_epr(epr, &inst->epr) < 0)
        goto fail;
    if (obj) {
        inst->class_name = nx_strdup(local(obj));
        if (nx_wsman_parse_props(obj, inst) < 0)
            goto fail;
    } else if (inst->epr) {
        const char *slash = strrchr(inst->epr->resource_uri, '/');
        inst->class_name = nx_strdup(slash ? slash + 1 : inst->epr->resource_uri);
    } else {
        nx_error_set(NX_EX_PROTOCOL, "an enumeration item holds neither an instance nor an EPR");
        goto fail;
    }
    *out = inst;
    return 0;
fail:
    nx_wsman_instance_free(inst);
    return -1;
}

int nx_cim_instance_parse(const char *xml, struct nx_wsman_instance **out)
{
    *out = NULL;
    if (!xml)
        return nx_error_set(NX_EX_PROTOCOL, "embedded instance: empty");
    xmlDocPtr doc = nx_xml_read_memory(xml, strlen(xml), "embedded instance", NX_EX_PROTOCOL);
    if (!doc)
        return -1;
    int ret = -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    const char *cls = root ? nx_xml_attr(root, "CLASSNAME") : NULL;
    if (!root || strcmp(local(root), "INSTANCE") != 0 || !cls) {
        nx_error_set(NX_EX_PROTOCOL, "embedded instance: expected <INSTANCE CLASSNAME=...>");
        goto cleanup;
    }
    struct nx_wsman_instance *inst = nx_calloc(1, sizeof(*inst));
    inst->class_name = nx_strdup(cls);
    for (xmlNodePtr p = nx_xml_first_elem(root); p; p = nx_xml_next_elem(p)) {
        const char *name = nx_xml_attr(p, "NAME");
        if (!name)
            continue;
        if (strcmp(local(p), "PROPERTY") == 0) {
            struct nx_wsman_prop *pr = add_prop(inst, name);
            xmlNodePtr v = nx_xml_first_elem(p);
            if (v && strcmp(local(v), "VALUE") == 0) {
                pr->value = nx_xml_text(v);
                if (!pr->value)
                    pr->value = nx_strdup("");
            }
        } else if (strcmp(local(p), "PROPERTY.ARRAY") == 0) {
            xmlNodePtr va = nx_xml_first_elem(p);
            for (xmlNodePtr v = va ? nx_xml_first_elem(va) : NULL; v; v = nx_xml_next_elem(v)) {
                struct nx_wsman_prop *pr = add_prop(inst, name);
                pr->value = nx_xml_text(v);
                if (!pr->value)
                    pr->value = nx_strdup("");
            }
        }
    }
    *out = inst;
    ret = 0;
cleanup:
    xmlFreeDoc(doc);
    return ret;
}

/* The text of the first descendant element named name (any namespace in
 * ns, or exactly ns). */
static char *find_text(xmlNodePtr n, const char *ns, const char *name, int depth)
{
    if (!n || depth > 8)
        return NULL;
    for (xmlNodePtr c = nx_xml_first_elem(n); c; c = nx_xml_next_elem(c)) {
        if (nx_xml_is(c, ns, name) && !nx_xml_first_elem(c)) {
            char *t = nx_xml_text(c);
            if (t)
                return t;
        }
        char *t = find_text(c, ns, name, depth + 1);
        if (t)
            return t;
    }
    return NULL;
}

/* Turn an s:Fault into one error message. */
static int report_fault(const char *what, xmlNodePtr fault, long status)
{
    xmlNodePtr code = nx_wsman_child(fault, NX_WSMAN_NS_SOAP, "Code");
    xmlNodePtr sub = code ? nx_wsman_child(code, NX_WSMAN_NS_SOAP, "Subcode") : NULL;
    xmlNodePtr subv = sub ? nx_wsman_child(sub, NX_WSMAN_NS_SOAP, "Value") : NULL;
    xmlNodePtr codev = code ? nx_wsman_child(code, NX_WSMAN_NS_SOAP, "Value") : NULL;
    xmlNodePtr reason = nx_wsman_child(fault, NX_WSMAN_NS_SOAP, "Reason");
    xmlNodePtr rtext = reason ? nx_wsman_child(reason, NX_WSMAN_NS_SOAP, "Text") : NULL;
    xmlNodePtr detail = nx_wsman_child(fault, NX_WSMAN_NS_SOAP, "Detail");
    char *c = nx_xml_text(subv ? subv : codev);
    char *r = nx_xml_text(rtext);
    char *fd = detail ? find_text(detail, NX_WSMAN_NS_WSMAN, "FaultDetail", 0) : NULL;
    xmlNodePtr wf = detail ? nx_wsman_child(detail, NX_WSMAN_NS_FAULT, "WSManFault") : NULL;
    const char *wcode = wf ? nx_xml_attr(wf, "Code") : NULL;
    char *wmsg = wf ? find_text(wf, NX_WSMAN_NS_FAULT, "Message", 0) : NULL;
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "%s: WS-Management fault %s", what, c ? c : "(no code)");
    if (fd) {
        const char *slash = strrchr(fd, '/');
        strbuf_addf(&sb, " (%s)", slash ? slash + 1 : fd);
    }
    strbuf_addf(&sb, ": %s", r ? r : "(no reason given)");
    if (wcode || (wmsg && (!r || strcmp(wmsg, r) != 0))) {
        strbuf_addf(&sb, " [WMI error %s", wcode ? wcode : "?");
        if (wmsg && (!r || strcmp(wmsg, r) != 0))
            strbuf_addf(&sb, ": %s", wmsg);
        strbuf_addstr(&sb, "]");
    }
    /* A rejected login may also come as a fault (access denied) */
    int ec = (status == 401 || status == 403 || (wcode && strcmp(wcode, "5") == 0))
                 ? NX_EX_NOPERM
                 : NX_EX_UNAVAILABLE;
    nx_error_set(ec, "%s", sb.buf);
    strbuf_release(&sb);
    free(c);
    free(r);
    free(fd);
    free(wmsg);
    return -1;
}

int nx_wsman_check_answer(const char *what, long status, const char *data, size_t len,
                          const char *relates_to, xmlDocPtr *doc_out, xmlNodePtr *body_out)
{
    *doc_out = NULL;
    *body_out = NULL;
    if (status == 401 || status == 403)
        return nx_error_set(NX_EX_NOPERM,
                            "%s: authentication failed (HTTP %ld): check the user and password, "
                            "and that the host allows this authentication method",
                            what, status);
    if (len == 0)
        return nx_error_set(NX_EX_PROTOCOL, "%s: empty answer (HTTP %ld)", what, status);
    if (len > NX_WSMAN_MAX_ENVELOPE * 2)
        return nx_error_set(NX_EX_PROTOCOL, "%s: answer of %zu bytes exceeds MaxEnvelopeSize", what,
                            len);
    xmlDocPtr doc = nx_xml_read_memory(data, len, what, NX_EX_PROTOCOL);
    if (!doc) {
        if (status != 200)
            nx_error_prefix("HTTP %ld: ", status);
        return -1;
    }
    xmlNodePtr env = xmlDocGetRootElement(doc);
    xmlNodePtr body = NULL, header = NULL;
    if (!env || !nx_xml_is(env, NX_WSMAN_NS_SOAP, "Envelope")) {
        nx_error_set(NX_EX_PROTOCOL, "%s: the answer (HTTP %ld) is not a SOAP 1.2 envelope", what,
                     status);
        goto fail;
    }
    header = nx_wsman_child(env, NX_WSMAN_NS_SOAP, "Header");
    body = nx_wsman_child(env, NX_WSMAN_NS_SOAP, "Body");
    if (!body) {
        nx_error_set(NX_EX_PROTOCOL, "%s: the SOAP envelope has no Body", what);
        goto fail;
    }
    xmlNodePtr fault = nx_wsman_child(body, NX_WSMAN_NS_SOAP, "Fault");
    if (fault) {
        report_fault(what, fault, status);
        goto fail;
    }
    if (status != 200) {
        nx_error_set(NX_EX_PROTOCOL, "%s: HTTP status %ld without a SOAP fault", what, status);
        goto fail;
    }
    xmlNodePtr rel = header ? nx_wsman_child(header, NX_WSMAN_NS_WSA, "RelatesTo") : NULL;
    if (rel && relates_to) {
        char *r = nx_xml_text(rel);
        bool same = r && strcmp(r, relates_to) == 0;
        free(r);
        if (!same) {
            nx_error_set(NX_EX_PROTOCOL, "%s: the answer relates to another request", what);
            goto fail;
        }
    }
    *doc_out = doc;
    *body_out = body;
    return 0;
fail:
    xmlFreeDoc(doc);
    return -1;
}
