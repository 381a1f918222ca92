/* soap.h: SOAP 1.1 over the shared HTTP transport (http.h), for vSphere.
 *
 * Three parts, kept apart from the provider logic (providers/vsphere/):
 *   - building request bodies: every value goes through strbuf_add_xml_escaped;
 *   - parsing answers with libxml2 (nx_xml_read_memory: no entities, no
 *     network) and namespace-aware XPath (prefixes "soapenv", "vim", "xsi");
 *   - faults: faultstring plus the fault type from <detail> (the xsi:type of
 *     its element, under any prefix bound to the XMLSchema-instance namespace,
 *     else the element name without its "Fault" suffix).
 * A malformed or truncated answer is an error (NX_EX_PROTOCOL), never a crash. */
#ifndef NX_SOAP_H
#define NX_SOAP_H

#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdbool.h>

#include "conn_opts.h"
#include "strbuf.h"

#define NX_SOAP_ENV_NS "http://schemas.xmlsoap.org/soap/envelope/"
#define NX_XSI_NS "http://www.w3.org/2001/XMLSchema-instance"
#define NX_XSD_NS "http://www.w3.org/2001/XMLSchema"
#define NX_VIM_NS "urn:vim25"

struct nx_soap;
struct nx_http;

struct nx_soap_fault {
    char *type; /* "NotAuthenticated", "DuplicateName", ...; "" if none given */
    char *message; /* faultstring; "" if none */
    char *object; /* detail's <object> reference (DuplicateName...); NULL if none */
};

/* A parsed answer: doc owns everything; body is the first element inside
 * soapenv:Body (e.g. <RetrievePropertiesExResponse>). */
struct nx_soap_resp {
    xmlDocPtr doc;
    xmlXPathContextPtr xp;
    xmlNodePtr body;
};

/* ---- requests ------------------------------------------------------------ */

/* <method xmlns="urn:vim25"><_this type="this_type">this_val</_this> */
void nx_soap_begin(struct strbuf *sb, const char *method, const char *this_type,
                   const char *this_val);
void nx_soap_end(struct strbuf *sb, const char *method);
/* <name>escaped value</name> */
void nx_soap_add(struct strbuf *sb, const char *name, const char *value);
void nx_soap_addf(struct strbuf *sb, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* <name type="type">value</name> (a ManagedObjectReference) */
void nx_soap_add_moref(struct strbuf *sb, const char *name, const char *type, const char *value);
/* Wrap a body in the SOAP envelope. */
void nx_soap_envelope(struct strbuf *out, const char *body);

/* ---- transport ----------------------------------------------------------- */

/* url: https://host:port/sdk; soap_action: e.g. "urn:vim25/6.5". */
struct nx_soap *nx_soap_new(const char *url, const char *soap_action,
                            const struct nx_conn_opts *opts);
void nx_soap_free(struct nx_soap *s); /* accepts NULL */
void nx_soap_set_action(struct nx_soap *s, const char *soap_action);
void nx_soap_clear_cookies(struct nx_soap *s);
unsigned long nx_soap_requests(const struct nx_soap *s);
/* A new HTTP connection to the server in the session (shared cookies, same
 * TLS settings), for requests other than SOAP (e.g. vSphere's datastore file
 * access); not counted in nx_soap_requests. Free with nx_http_free (http.h). NULL with nx_error set
 * on failure. */
struct nx_http *nx_soap_http_clone(struct nx_soap *s);
/* Connections opened so far (one per concurrent caller at most). */
size_t nx_soap_connections(const struct nx_soap *s);

/* POST one request body (without envelope) and parse the answer.
 * 0: success, *out filled. 1: SOAP fault, *fault filled and nx_error set
 * ("method: Type: message"). -1: transport, HTTP or parse error (nx_error).
 * Thread-safe: concurrent callers each get a keep-alive connection of their
 * own (opened on demand, kept for later calls), all in one session (shared
 * cookie jar). */
int nx_soap_call(struct nx_soap *s, const char *method, const char *body, struct nx_soap_resp *out,
                 struct nx_soap_fault *fault);
/* Transient failures (worth repeating the call), and whether the server may
 * have run the request: a write may only be repeated blindly when it did not. */
enum nx_soap_transient {
    NX_SOAP_PERMANENT = 0, /* success, a SOAP fault, 4xx, TLS: repeating will not help */
    NX_SOAP_MAYBE_DONE, /* dropped connection, timeout, truncated/malformed answer,
                           500 without a fault: the server may have run it */
    NX_SOAP_NOT_DONE, /* no connection, or 502/503/504 without a SOAP body */
    NX_SOAP_ONCE, /* in: send on a fresh connection, which libcurl never
                     re-sends by itself (writes that must not run twice) */
};

/* The same; on -1, *transient (if not NULL) is an enum nx_soap_transient.
 * *transient == NX_SOAP_ONCE on entry: use a fresh connection. */
int nx_soap_call_ex(struct nx_soap *s, const char *method, const char *body,
                    struct nx_soap_resp *out, struct nx_soap_fault *fault, int *transient);

/* ---- answers -------------------------------------------------------------- */

/* Parse a SOAP answer (the testable core of nx_soap_call). http_status is the
 * HTTP status (200, or 500 for faults); name is used in messages. Returns like
 * nx_soap_call. */
int nx_soap_parse(const char *buf, size_t len, long http_status, const char *name,
                  struct nx_soap_resp *out, struct nx_soap_fault *fault);
void nx_soap_resp_release(struct nx_soap_resp *r);
void nx_soap_fault_release(struct nx_soap_fault *f);
/* Parse a fault element (soapenv:Fault, or a LocalizedMethodFault as found in
 * TaskInfo.error and missingSet). */
void nx_soap_fault_from_node(xmlNodePtr node, struct nx_soap_fault *f);

/* XPath (prefixes soapenv, vim, xsi, xsd) from node (NULL: the document).
 * Returns a node set object or NULL when empty; free with xmlXPathFreeObject. */
xmlXPathObjectPtr nx_soap_xpath(struct nx_soap_resp *r, xmlNodePtr node, const char *expr);

/* The local part of node's xsi:type (any prefix bound to NX_XSI_NS); NULL if none. */
const char *nx_soap_xsi_type(xmlNodePtr node);
/* First element child with this local name (any namespace); NULL if none. */
xmlNodePtr nx_soap_child(xmlNodePtr node, const char *name);
/* Its text, copied (free()); NULL if absent or empty. */
char *nx_soap_child_text(xmlNodePtr node, const char *name);
/* Text of a node, borrowed from the document when it is one text node,
 * otherwise "" (for values such as <val>...</val>). */
const char *nx_soap_text(xmlNodePtr node);

#endif
