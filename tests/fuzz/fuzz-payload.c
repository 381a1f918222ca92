/* fuzz-payload.c: the payload decoder the appliance runs at first boot. */
#include "config.h"

#include "fuzz.h"

#include <string.h>

#include "payload_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nx_payload p;
    memset(&p, 0, sizeof(p));
    nx_payload_parse((const char *)data, size, "fuzz", &p);
    nx_payload_release(&p);
    return 0;
}
