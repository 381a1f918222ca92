/* fuzz-marker.c: the text form of the ownership marker (read back from
 * vSphere extraConfig and Hyper-V Notes, which anyone may edit). */
#include "config.h"

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct nx_marker m = {0};
    if (nx_marker_decode(text, &m) == 0) {
        char *again = nx_marker_encode(&m);
        struct nx_marker m2 = {0};
        /* what we write we must read back identically */
        if (nx_marker_decode(again, &m2) != 0 || strcmp(m.tenant, m2.tenant) != 0 ||
            strcmp(m.host, m2.host) != 0)
            abort();
        nx_marker_release(&m2);
        free(again);
        nx_marker_release(&m);
    }
    free(text);
    return 0;
}
