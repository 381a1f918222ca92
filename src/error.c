/* error.c: per-thread last error and diagnostic lists. */
#include "config.h"

#include "error.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NX_ERROR_MAX 2048

static _Thread_local struct {
    int code;
    char msg[NX_ERROR_MAX];
} last;

int nx_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last.msg, sizeof(last.msg), fmt, ap);
    va_end(ap);
    last.code = code ? code : NX_EX_SOFTWARE;
    return -1;
}

void nx_error_prefix(const char *fmt, ...)
{
    char pre[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    size_t pl = strlen(pre), ol = strlen(last.msg);
    if (pl + ol >= sizeof(last.msg)) /* keep the end of the old message's room */
        ol = sizeof(last.msg) - pl - 1;
    memmove(last.msg + pl, last.msg, ol);
    memcpy(last.msg, pre, pl);
    last.msg[pl + ol] = '\0';
    if (!last.code)
        last.code = NX_EX_SOFTWARE;
}

const char *nx_error_msg(void)
{
    return last.msg;
}

int nx_error_code(void)
{
    return last.code;
}

void nx_error_clear(void)
{
    last.code = 0;
    last.msg[0] = '\0';
}

void nx_diag_init(struct nx_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void nx_diag_release(struct nx_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msgs[i]);
    free(d->msgs);
    nx_diag_init(d);
}

void nx_diag_add(struct nx_diag *d, const char *file, unsigned line, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    NX_GROW(d->msgs, d->alloc, d->n + 1);
    d->msgs[d->n++] = nx_asprintf("%s:%u: %s", file ? file : "<input>", line, body);
}
