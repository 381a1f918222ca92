/* util.c: memory helpers and small shared utilities. */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void nx_oom(void)
{
    fputs("netext-deploy: out of memory\n", stderr);
    abort();
}

void *nx_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        nx_oom();
    return p;
}

void *nx_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        nx_oom();
    return p;
}

void *nx_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        nx_oom();
    return q;
}

char *nx_strdup(const char *s)
{
    return s ? nx_strndup(s, strlen(s)) : NULL;
}

char *nx_strndup(const char *s, size_t n)
{
    char *p = nx_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *nx_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        nx_oom();
    char *p = nx_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void nx_grow(void **arr, size_t *alloc, size_t want, size_t elem)
{
    if (want <= *alloc)
        return;
    size_t n = *alloc ? *alloc : 4;
    while (n < want) {
        if (n > SIZE_MAX / 2 / elem)
            nx_oom();
        n *= 2;
    }
    *arr = nx_realloc(*arr, n * elem);
    memset((char *)*arr + *alloc * elem, 0, (n - *alloc) * elem);
    *alloc = n;
}

void nx_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

void nx_memzero(void *p, size_t n)
{
    explicit_bzero(p, n); /* never optimised away */
}

double nx_monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void nx_free_secret(char *s)
{
    if (!s)
        return;
    nx_memzero(s, strlen(s));
    free(s);
}

bool nx_str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool nx_str_has_prefix(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool nx_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    if (s[0] == '0' && s[1] != '\0')
        return false; /* no leading zeros: "010" is ambiguous */
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool nx_parse_ipv4(const char *s, uint32_t *out)
{
    uint32_t addr = 0;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)*s))
            return false;
        unsigned v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (unsigned)(*s++ - '0');
            if (++digits > 3 || v > 255)
                return false;
        }
        if (digits > 1 && s[-digits] == '0')
            return false; /* leading zero: octal in some parsers */
        addr = (addr << 8) | v;
        if (i < 3 && *s++ != '.')
            return false;
    }
    if (*s)
        return false;
    *out = addr;
    return true;
}

bool nx_parse_cidr(const char *s, uint32_t *addr, unsigned *prefix)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash - s > 15)
        return false;
    char buf[16];
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    unsigned long p;
    if (!nx_parse_ipv4(buf, addr) || !nx_parse_uint(slash + 1, 0, 32, &p))
        return false;
    *prefix = (unsigned)p;
    return true;
}

void nx_format_ipv4(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", (a >> 24) & 255, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

void nx_format_mac(const uint8_t m[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool nx_parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        int hi = hexval((unsigned char)s[0]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)s[1]);
        if (lo < 0)
            return false;
        mac[i] = (uint8_t)(hi * 16 + lo);
        s += 2;
        if (i < 5) {
            if (*s != ':' && *s != '-')
                return false;
            s++;
        }
    }
    return *s == '\0';
}

uint64_t nx_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    /* murmur3's finaliser: every input bit reaches every output bit */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}
