/* error.h: errors reported once, where they happen (after libvirt's virReportError).
 *
 * A failing function calls nx_error_set() with a sysexits-style code and a
 * message that carries its context, then returns -1 (or NULL). Callers pass the
 * failure up without reporting it again; the top level prints it once.
 * The last error is per thread. */
#ifndef NX_ERROR_H
#define NX_ERROR_H

#include <stddef.h>

/* sysexits(3) codes; documented in netext-deploy(8). */
enum {
    NX_EX_OK = 0,
    NX_EX_FAILED = 1, /* some actions failed on a hypervisor, others may have succeeded */
    NX_EX_USAGE = 64,
    NX_EX_DATAERR = 65,
    NX_EX_NOINPUT = 66,
    NX_EX_UNAVAILABLE = 69,
    NX_EX_SOFTWARE = 70,
    NX_EX_OSERR = 71,
    NX_EX_CANTCREAT = 73,
    NX_EX_IOERR = 74,
    NX_EX_TEMPFAIL = 75,
    NX_EX_PROTOCOL = 76,
    NX_EX_NOPERM = 77,
    NX_EX_CONFIG = 78,
};

/* Always returns -1, so "return nx_error_set(...)" reads naturally. */
int nx_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current error message with context ("host esx1: " ...). */
void nx_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *nx_error_msg(void); /* "" when none */
int nx_error_code(void); /* NX_EX_OK when none */
void nx_error_clear(void);

/* A list of diagnostics ("file:line: message"), for validation that reports
 * every problem it finds rather than stopping at the first. */
struct nx_diag {
    char **msgs;
    size_t n, alloc;
};
void nx_diag_init(struct nx_diag *d);
void nx_diag_release(struct nx_diag *d);
void nx_diag_add(struct nx_diag *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
