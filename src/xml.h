/* xml.h: libxml2 set up safely, and small DOM helpers shared by every parser.
 *
 * Every document this program reads (plans, SOAP and WS-Man answers, payloads)
 * goes through nx_xml_parse_options(): no network access, no entity
 * substitution, no DTD loading; nx_xml_init() also installs an external-entity
 * loader that refuses everything. */
#ifndef NX_XML_H
#define NX_XML_H

#include <libxml/tree.h>
#include <stdbool.h>

void nx_xml_init(void);
int nx_xml_parse_options(void);

/* Parse an in-memory document; NULL (with nx_error set, code) on failure or if
 * it has a DOCTYPE. name is used in messages. */
xmlDocPtr nx_xml_read_memory(const char *buf, size_t len, const char *name, int code);

/* Attribute value (no namespace) without copying; NULL when absent. */
const char *nx_xml_attr(xmlNodePtr node, const char *name);
/* Next element sibling / first element child (skips text, comments). */
xmlNodePtr nx_xml_first_elem(xmlNodePtr parent);
xmlNodePtr nx_xml_next_elem(xmlNodePtr node);
bool nx_xml_is(xmlNodePtr node, const char *ns, const char *name);
/* Text content, copied with nx_strdup (free()); NULL when empty. */
char *nx_xml_text(xmlNodePtr node);

#endif
