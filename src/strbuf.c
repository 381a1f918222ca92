/* strbuf.c: a growable string, after git's struct strbuf. */
#include "config.h"

#include "strbuf.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char strbuf_slopbuf[1];

void strbuf_init(struct strbuf *sb, size_t hint)
{
    sb->alloc = sb->len = 0;
    sb->buf = strbuf_slopbuf;
    if (hint)
        strbuf_grow(sb, hint);
}

void strbuf_release(struct strbuf *sb)
{
    if (sb->alloc)
        free(sb->buf);
    strbuf_init(sb, 0);
}

void strbuf_release_secret(struct strbuf *sb)
{
    if (sb->alloc)
        nx_memzero(sb->buf, sb->alloc);
    strbuf_release(sb);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
    if (!sb->alloc)
        strbuf_grow(sb, 0);
    char *r = sb->buf;
    if (len)
        *len = sb->len;
    strbuf_init(sb, 0);
    return r;
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->alloc)
        sb->buf[0] = '\0';
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
    size_t want = sb->len + extra + 1;
    if (want <= sb->alloc)
        return;
    size_t n = sb->alloc ? sb->alloc : 64;
    while (n < want)
        n *= 2;
    if (sb->alloc) {
        sb->buf = nx_realloc(sb->buf, n);
    } else {
        sb->buf = nx_malloc(n);
        sb->buf[0] = '\0';
    }
    sb->alloc = n;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
    strbuf_grow(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
    strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, int c)
{
    strbuf_grow(sb, 1);
    sb->buf[sb->len++] = (char)c;
    sb->buf[sb->len] = '\0';
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(sb->buf + sb->len, sb->alloc ? sb->alloc - sb->len : 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    if ((size_t)n >= (sb->alloc ? sb->alloc - sb->len : 0)) {
        strbuf_grow(sb, (size_t)n);
        vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
    }
    sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vaddf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_add_xml_escaped(struct strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            strbuf_addstr(sb, "&amp;");
            break;
        case '<':
            strbuf_addstr(sb, "&lt;");
            break;
        case '>':
            strbuf_addstr(sb, "&gt;");
            break;
        case '"':
            strbuf_addstr(sb, "&quot;");
            break;
        case '\'':
            strbuf_addstr(sb, "&apos;");
            break;
        case '\n':
            strbuf_addstr(sb, "&#10;");
            break;
        case '\r':
            strbuf_addstr(sb, "&#13;");
            break;
        case '\t':
            strbuf_addstr(sb, "&#9;");
            break;
        default:
            strbuf_addch(sb, *s);
        }
    }
}

void strbuf_add_json_str(struct strbuf *sb, const char *s)
{
    strbuf_addch(sb, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            strbuf_addstr(sb, "\\\"");
            break;
        case '\\':
            strbuf_addstr(sb, "\\\\");
            break;
        case '\n':
            strbuf_addstr(sb, "\\n");
            break;
        case '\r':
            strbuf_addstr(sb, "\\r");
            break;
        case '\t':
            strbuf_addstr(sb, "\\t");
            break;
        default:
            if (*p < 0x20)
                strbuf_addf(sb, "\\u%04x", *p);
            else
                strbuf_addch(sb, *p);
        }
    }
    strbuf_addch(sb, '"');
}

void strbuf_add_base64(struct strbuf *sb, const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    strbuf_grow(sb, (len + 2) / 3 * 4);
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        strbuf_addch(sb, tbl[(v >> 18) & 63]);
        strbuf_addch(sb, tbl[(v >> 12) & 63]);
        strbuf_addch(sb, i + 1 < len ? tbl[(v >> 6) & 63] : '=');
        strbuf_addch(sb, i + 2 < len ? tbl[v & 63] : '=');
    }
}
