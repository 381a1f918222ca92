/* xml.c: libxml2 set up safely, and small DOM helpers. */
#include "config.h"

#include "xml.h"
#include "error.h"
#include "util.h"

#include <libxml/parser.h>
#include <pthread.h>
#include <string.h>

static xmlExternalEntityLoader default_loader;

/* The main document of a parse (no input open yet) loads as usual, which
 * libraries such as libvirt rely on; anything a document asks for (DTDs,
 * external entities) is refused. */
static xmlParserInputPtr refuse_entity_loader(const char *url, const char *id,
                                              xmlParserCtxtPtr ctxt)
{
    if (ctxt && ctxt->inputNr == 0 && default_loader)
        return default_loader(url, id, ctxt);
    return NULL;
}

static void silent_error(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void do_init(void)
{
    xmlInitParser();
    default_loader = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(refuse_entity_loader);
    xmlSetGenericErrorFunc(NULL, silent_error);
}

void nx_xml_init(void)
{
    pthread_once(&init_once, do_init);
}

int nx_xml_parse_options(void)
{
    /* Deliberately absent: XML_PARSE_NOENT, XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR,
     * XML_PARSE_HUGE, XML_PARSE_XINCLUDE. */
    return XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES |
           XML_PARSE_NOCDATA;
}

xmlDocPtr nx_xml_read_memory(const char *buf, size_t len, const char *name, int code)
{
    nx_xml_init();
    if (len > (size_t)INT32_MAX) {
        nx_error_set(code, "%s: document too large", name);
        return NULL;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        nx_error_set(NX_EX_SOFTWARE, "%s: cannot create XML parser", name);
        return NULL;
    }
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, buf, (int)len, name, NULL, nx_xml_parse_options());
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        nx_error_set(code, "%s:%d: malformed XML: %s", name, e ? e->line : 0,
                     e && e->message ? e->message : "parse error");
        /* libxml2 messages end with a newline */
        size_t l = strlen(nx_error_msg());
        if (l && nx_error_msg()[l - 1] == '\n')
            ((char *)nx_error_msg())[l - 1] = '\0';
    } else if (doc->intSubset || doc->extSubset) {
        nx_error_set(code, "%s: a DOCTYPE is not allowed (entities are never expanded)", name);
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

const char *nx_xml_attr(xmlNodePtr node, const char *name)
{
    for (xmlAttrPtr a = node->properties; a; a = a->next) {
        if (a->ns == NULL && strcmp((const char *)a->name, name) == 0) {
            if (a->children && a->children->type == XML_TEXT_NODE && !a->children->next)
                return (const char *)a->children->content;
            return a->children ? (const char *)a->children->content : "";
        }
    }
    return NULL;
}

xmlNodePtr nx_xml_first_elem(xmlNodePtr parent)
{
    xmlNodePtr c = parent ? parent->children : NULL;
    while (c && c->type != XML_ELEMENT_NODE)
        c = c->next;
    return c;
}

xmlNodePtr nx_xml_next_elem(xmlNodePtr node)
{
    xmlNodePtr c = node ? node->next : NULL;
    while (c && c->type != XML_ELEMENT_NODE)
        c = c->next;
    return c;
}

bool nx_xml_is(xmlNodePtr node, const char *ns, const char *name)
{
    if (!node || node->type != XML_ELEMENT_NODE || strcmp((const char *)node->name, name) != 0)
        return false;
    if (!ns)
        return true;
    return node->ns && node->ns->href && strcmp((const char *)node->ns->href, ns) == 0;
}

char *nx_xml_text(xmlNodePtr node)
{
    xmlChar *c = xmlNodeGetContent(node);
    if (!c)
        return NULL;
    char *r = *c ? nx_strdup((const char *)c) : NULL;
    xmlFree(c);
    return r;
}
