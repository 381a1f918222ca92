/* fuzz-template.c: the template engine. Input: TEMPLATE NUL VALUE NUL VALUE...
 * Values become a, b, c and a list "items" of them, in every escape mode. */
#include "config.h"

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *tmpl = buf;
    const char *vals[3] = {"", "", ""};
    size_t off = strlen(tmpl) + 1;
    for (int i = 0; i < 3 && off < size; i++) {
        vals[i] = buf + off;
        off += strlen(vals[i]) + 1;
    }
    struct nx_tctx *c = nx_tctx_new();
    nx_tctx_set(c, "a", vals[0]);
    nx_tctx_set(c, "b", vals[1]);
    nx_tctx_set(c, "c", vals[2]);
    for (int i = 0; i < 3; i++)
        nx_tctx_set(nx_tctx_add(c, "items"), "v", vals[i]);
    for (int e = NX_ESC_XML; e <= NX_ESC_SHELL; e++) {
        struct strbuf sb = STRBUF_INIT;
        nx_template_render("fuzz", tmpl, c, (enum nx_escape)e, &sb);
        strbuf_release(&sb);
    }
    nx_tctx_free(c);
    free(buf);
    return 0;
}
