/* strbuf.h: a growable string, after git's struct strbuf.
 *
 * Invariant: buf is always NUL-terminated and never NULL once initialised;
 * len excludes the NUL. STRBUF_INIT or strbuf_init() then strbuf_release(). */
#ifndef NX_STRBUF_H
#define NX_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    size_t alloc;
    size_t len;
    char *buf;
};

extern char strbuf_slopbuf[];
#define STRBUF_INIT                                                                                \
    {                                                                                              \
        0, 0, strbuf_slopbuf                                                                       \
    }

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
/* Like release, but wipes the contents first (for secrets). */
void strbuf_release_secret(struct strbuf *sb);
/* Hand the buffer to the caller (who frees it); sb is reinitialised. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* XML text/attribute escaping of s (both contexts: & < > " '). */
void strbuf_add_xml_escaped(struct strbuf *sb, const char *s);
/* JSON string literal, with quotes. */
void strbuf_add_json_str(struct strbuf *sb, const char *s);
void strbuf_add_base64(struct strbuf *sb, const void *data, size_t len);

#endif
