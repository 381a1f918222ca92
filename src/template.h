/* template.h: the project's small template engine.
 *
 * Syntax (a strict subset of Mustache):
 *   {{name}}              value of name, escaped for the template's mode
 *   {{#name}}...{{/name}} a list: once per item (items are nested contexts);
 *                         a value: once if it is set and not empty
 *   {{^name}}...{{/name}} once if name is unset or empty
 * Names are looked up in the innermost context first, then outwards. An
 * unknown name, an unclosed section or a stray tag is an error, never an
 * empty string. Escaping is applied to every value: a value can never inject
 * markup or a directive. */
#ifndef NX_TEMPLATE_H
#define NX_TEMPLATE_H

#include "strbuf.h"

enum nx_escape {
    NX_ESC_XML = 0, /* & < > " ' escaped */
    NX_ESC_CONF, /* line-oriented config files: values may not contain newlines,
                    NUL, or quotes; anything else is passed as is */
    NX_ESC_SHELL, /* single-quoted for POSIX sh */
};

struct nx_tctx;

struct nx_tctx *nx_tctx_new(void);
void nx_tctx_free(struct nx_tctx *c); /* accepts NULL */
void nx_tctx_set(struct nx_tctx *c, const char *key, const char *value);
void nx_tctx_setf(struct nx_tctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append an item to list `key` and return it (owned by c). */
struct nx_tctx *nx_tctx_add(struct nx_tctx *c, const char *key);

/* Render tmpl into out. -1 with nx_error set on a template or value error
 * (name is used in messages). */
int nx_template_render(const char *name, const char *tmpl, const struct nx_tctx *ctx,
                       enum nx_escape esc, struct strbuf *out);

#endif
