/* wsman.h: a WS-Management client for WMI over WinRM (DMTF DSP0226/DSP0227,
 * WS-Enumeration, WS-Transfer, Microsoft MS-WSMV), on the shared HTTP
 * transport (http.h) and the safe libxml2 set-up (xml.h).
 *
 * Every request carries wsa:To, wsa:Action, wsa:MessageID (a random v4 UUID),
 * wsman:ResourceURI, wsman:MaxEnvelopeSize and wsman:OperationTimeout.
 * Answers are parsed without entity expansion; a SOAP fault becomes one
 * nx_error with the WS-Man subcode, the reason, the wsman:FaultDetail and the
 * WMI error (MS-WSMV WSManFault Code and Message) when present.
 *
 * Error codes: HTTP 401/403 -> NX_EX_NOPERM; a fault -> NX_EX_UNAVAILABLE;
 * a malformed or unexpected answer -> NX_EX_PROTOCOL; transport failures as
 * set by http.c. */
#ifndef NX_WSMAN_H
#define NX_WSMAN_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define NX_WSMAN_NS_SOAP "http://www.w3.org/2003/05/soap-envelope"
#define NX_WSMAN_NS_WSA "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NX_WSMAN_NS_WSMAN "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define NX_WSMAN_NS_WSEN "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
#define NX_WSMAN_NS_FAULT "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
#define NX_WSMAN_NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define NX_WSMAN_ANONYMOUS "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
#define NX_WSMAN_DIALECT_WQL "http://schemas.microsoft.com/wbem/wsman/1/WQL"
#define NX_WSMAN_ACTION_ENUMERATE "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
#define NX_WSMAN_ACTION_PULL "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
#define NX_WSMAN_ACTION_RELEASE "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
#define NX_WSMAN_ACTION_GET "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
/* WMI classes: NX_WSMAN_WMI_PREFIX "root/virtualization/v2/Msvm_ComputerSystem" */
#define NX_WSMAN_WMI_PREFIX "http://schemas.microsoft.com/wbem/wsman/1/wmi/"

/* Bytes we accept in one answer (Windows' default MaxEnvelopeSizekb is 500). */
#define NX_WSMAN_MAX_ENVELOPE 512000

/* An endpoint reference: a resource URI and its selector set. */
struct nx_wsman_selector {
    char *name;
    char *value;
};
struct nx_wsman_epr {
    char *resource_uri;
    struct nx_wsman_selector *sel;
    size_t n_sel, alloc_sel;
};

/* A property of an instance or a method output. Arrays come as one entry
 * per element, in document order. */
struct nx_wsman_prop {
    char *name;
    char *value; /* NULL when xsi:nil or an EPR */
    struct nx_wsman_epr *epr; /* for reference-typed values */
};

/* An instance (class element), an embedded CIM-XML INSTANCE, or the
 * <Method_OUTPUT> of an Invoke. */
struct nx_wsman_instance {
    char *class_name;
    struct nx_wsman_prop *props;
    size_t n, alloc;
    struct nx_wsman_epr *epr; /* the instance's own EPR, when the answer gave one */
};

struct nx_wsman_list {
    struct nx_wsman_instance **items;
    size_t n, alloc;
};

/* Parameters of an Invoke. */
enum nx_wsman_param_kind { NX_WSMAN_STRING, NX_WSMAN_REF, NX_WSMAN_EMBEDDED };
struct nx_wsman_param {
    const char *name;
    enum nx_wsman_param_kind kind;
    const char *value; /* STRING: the text; EMBEDDED: a CIM-XML INSTANCE document */
    const struct nx_wsman_epr *ref; /* REF */
};

/* Properties of an embedded instance being built (CIM-XML, DSP0201). */
struct nx_cim_prop {
    const char *name;
    const char *type; /* "string", "uint16", "boolean", ... */
    const char *value; /* scalar; NULL with array == NULL: omitted */
    const char *const *array; /* PROPERTY.ARRAY when non-NULL */
    size_t n_array;
};

struct nx_http;
struct nx_wsman;

/* ---- the client ---- */
/* http is borrowed; to is the endpoint URL (wsa:To); timeout_ms is the HTTP
 * request timeout (0: 60 s): wsman:OperationTimeout is 80% of it, so the
 * service answers before the transport gives up. */
struct nx_wsman *nx_wsman_new(struct nx_http *http, const char *to, long timeout_ms);
void nx_wsman_free(struct nx_wsman *w); /* accepts NULL */

/* Enumerate (EnumerateObjectAndEPR, optional WQL filter) then Pull until the
 * end of the sequence; appends to out. */
int nx_wsman_enumerate(struct nx_wsman *w, const char *resource_uri, const char *wql,
                       struct nx_wsman_list *out);
int nx_wsman_get(struct nx_wsman *w, const struct nx_wsman_epr *epr,
                 struct nx_wsman_instance **out);
/* Invoke method on the instance target; *out is the <method_OUTPUT> (its
 * ReturnValue checked by the caller with nx_wsman_return_value). */
int nx_wsman_invoke(struct nx_wsman *w, const struct nx_wsman_epr *target, const char *method,
                    const struct nx_wsman_param *params, size_t n_params,
                    struct nx_wsman_instance **out);

/* ---- building blocks, also used by the unit tests ---- */
struct nx_wsman_request {
    const char *to;
    const char *action;
    const char *resource_uri;
    const struct nx_wsman_epr *selectors; /* may be NULL */
    const char *body; /* inner XML of s:Body, already escaped; may be NULL */
    long timeout_ms;
    char message_id[48]; /* set by nx_wsman_envelope: "uuid:..." */
};
void nx_wsman_envelope(struct strbuf *sb, struct nx_wsman_request *req);
void nx_wsman_add_epr(struct strbuf *sb, const struct nx_wsman_epr *epr); /* Address + RefParams */
/* <p:method_INPUT xmlns:p=resource_uri> with the parameters, escaped. */
void nx_wsman_invoke_body(struct strbuf *sb, const char *resource_uri, const char *method,
                          const struct nx_wsman_param *params, size_t n);
/* A CIM-XML INSTANCE document (not yet escaped for the envelope). */
char *nx_cim_instance_xml(const char *class_name, const struct nx_cim_prop *props, size_t n);
/* Parse an embedded CIM-XML INSTANCE document into *out. */
int nx_cim_instance_parse(const char *xml, struct nx_wsman_instance **out);

/* Check an answer: HTTP status, well-formed SOAP envelope, faults; on success
 * *doc (free with xmlFreeDoc) and *body (its s:Body). relates_to (may be
 * NULL) must match wsa:RelatesTo when the answer has one. what names the
 * operation in messages ("Enumerate Msvm_ComputerSystem"). */
int nx_wsman_check_answer(const char *what, long status, const char *data, size_t len,
                          const char *relates_to, xmlDocPtr *doc, xmlNodePtr *body);
/* One instance element, a wsman:Item (instance + EPR) or a bare EPR. */
int nx_wsman_parse_item(xmlNodePtr node, struct nx_wsman_instance **out);
int nx_wsman_parse_epr(xmlNodePtr node,
                       struct nx_wsman_epr **out); /* node holds Address/RefParams */
/* The properties (child elements) of el added to inst. */
int nx_wsman_parse_props(xmlNodePtr el, struct nx_wsman_instance *inst);
/* The first child element ns:name of parent, or NULL. */
xmlNodePtr nx_wsman_child(xmlNodePtr parent, const char *ns, const char *name);

/* ---- helpers ---- */
struct nx_wsman_epr *nx_wsman_epr_new(const char *resource_uri);
void nx_wsman_epr_add(struct nx_wsman_epr *e, const char *name, const char *value);
struct nx_wsman_epr *nx_wsman_epr_dup(const struct nx_wsman_epr *e);
const char *nx_wsman_epr_selector(const struct nx_wsman_epr *e, const char *name);
void nx_wsman_epr_free(struct nx_wsman_epr *e);
void nx_wsman_instance_free(struct nx_wsman_instance *i);
void nx_wsman_list_release(struct nx_wsman_list *l);
/* First value of a property; NULL if absent or nil. */
const char *nx_wsman_prop(const struct nx_wsman_instance *i, const char *name);
/* First EPR-valued property of that name; NULL if none. */
const struct nx_wsman_epr *nx_wsman_prop_epr(const struct nx_wsman_instance *i, const char *name);
/* ReturnValue of a method output; -1 with nx_error set if missing/invalid. */
long nx_wsman_return_value(const struct nx_wsman_instance *out, const char *method);
/* NX_WSMAN_WMI_PREFIX ns "/" cls */
char *nx_wsman_wmi_uri(const char *ns, const char *cls);

#endif
