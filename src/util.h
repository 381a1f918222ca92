/* util.h: memory helpers and small shared utilities. */
#ifndef NX_UTIL_H
#define NX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define NX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation never returns NULL: out of memory aborts with a message. */
void *nx_malloc(size_t n);
void *nx_calloc(size_t nmemb, size_t size);
void *nx_realloc(void *p, size_t n);
char *nx_strdup(const char *s);
char *nx_strndup(const char *s, size_t n);
char *nx_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grow *arr (of *alloc elements of size elem) so that it holds at least want. */
void nx_grow(void **arr, size_t *alloc, size_t want, size_t elem);
#define NX_GROW(arr, alloc, want) nx_grow((void **)&(arr), &(alloc), (want), sizeof(*(arr)))

/* Free *p and set it to NULL. */
#define NX_FREE(p)                                                                                 \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

/* qsort that accepts an empty (possibly NULL) array. */
void nx_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* Overwrite memory that held a secret, in a way the compiler keeps. */
void nx_memzero(void *p, size_t n);
/* Seconds on the monotonic clock (for durations). */
double nx_monotonic_s(void);
/* nx_memzero + free for a NUL-terminated secret; accepts NULL. */
void nx_free_secret(char *s);

bool nx_str_eq(const char *a, const char *b); /* NULL-safe */
bool nx_str_has_prefix(const char *s, const char *prefix);

/* Parse a decimal unsigned number in [min, max]; whole string must match. */
bool nx_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* IPv4 helpers. Addresses are in host byte order. */
bool nx_parse_ipv4(const char *s, uint32_t *out);
/* "a.b.c.d/p" */
bool nx_parse_cidr(const char *s, uint32_t *addr, unsigned *prefix);
void nx_format_ipv4(uint32_t addr, char buf[16]);

void nx_format_mac(const uint8_t mac[6], char buf[18]);
bool nx_parse_mac(const char *s, uint8_t mac[6]);

/* 64-bit FNV-1a, for hashing keys (not for security). */
uint64_t nx_hash64(const void *data, size_t len, uint64_t seed);

#endif
