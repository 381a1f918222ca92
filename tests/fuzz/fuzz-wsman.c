/* fuzz-wsman.c: the WS-Management answer parser of the Hyper-V provider,
 * including embedded CIM-XML instances. */
#include "config.h"

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "wsman.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmlDocPtr doc = NULL;
    xmlNodePtr body = NULL;
    if (nx_wsman_check_answer("fuzz", 200, (const char *)data, size, NULL, &doc, &body) == 0) {
        for (xmlNodePtr n = nx_xml_first_elem(body); n; n = nx_xml_next_elem(n)) {
            struct nx_wsman_instance *inst = NULL;
            if (nx_wsman_parse_item(n, &inst) == 0)
                nx_wsman_instance_free(inst);
            for (xmlNodePtr c = nx_xml_first_elem(n); c; c = nx_xml_next_elem(c)) {
                inst = NULL;
                if (nx_wsman_parse_item(c, &inst) == 0)
                    nx_wsman_instance_free(inst);
            }
        }
    }
    xmlFreeDoc(doc);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct nx_wsman_instance *inst = NULL;
    if (nx_cim_instance_parse(text, &inst) == 0)
        nx_wsman_instance_free(inst);
    free(text);
    return 0;
}
