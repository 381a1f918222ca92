/* template.c: the project's small template engine. */
#include "config.h"

#include "template.h"
#include "error.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct tvar {
    char *key;
    char *value; /* NULL for lists */
    struct nx_tctx **items; /* list items */
    size_t n_items, alloc_items;
};

struct nx_tctx {
    struct tvar *vars;
    size_t n, alloc;
};

/* The contexts a name is looked up in, innermost first: a chain on the
 * stack, so that rendering never modifies a context (a section may iterate
 * the list it is nested in). */
struct scope {
    const struct nx_tctx *ctx;
    const struct scope *outer;
};

/* Bounds on the work a template may cause: sections nest at most this deep
 * and the output is at most this large. */
#define NX_TEMPLATE_MAX_DEPTH 8
#define NX_TEMPLATE_MAX_OUTPUT (16u << 20)

struct nx_tctx *nx_tctx_new(void)
{
    return nx_calloc(1, sizeof(struct nx_tctx));
}

void nx_tctx_free(struct nx_tctx *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->vars[i].key);
        free(c->vars[i].value);
        for (size_t j = 0; j < c->vars[i].n_items; j++)
            nx_tctx_free(c->vars[i].items[j]);
        free(c->vars[i].items);
    }
    free(c->vars);
    free(c);
}

static struct tvar *find_local(const struct nx_tctx *c, const char *key, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->vars[i].key) == len && memcmp(c->vars[i].key, key, len) == 0)
            return &c->vars[i];
    return NULL;
}

static struct tvar *get_or_add(struct nx_tctx *c, const char *key)
{
    struct tvar *v = find_local(c, key, strlen(key));
    if (v)
        return v;
    NX_GROW(c->vars, c->alloc, c->n + 1);
    v = &c->vars[c->n++];
    memset(v, 0, sizeof(*v));
    v->key = nx_strdup(key);
    return v;
}

void nx_tctx_set(struct nx_tctx *c, const char *key, const char *value)
{
    struct tvar *v = get_or_add(c, key);
    free(v->value);
    v->value = nx_strdup(value ? value : "");
}

void nx_tctx_setf(struct nx_tctx *c, const char *key, const char *fmt, ...)
{
    struct strbuf sb = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    nx_tctx_set(c, key, sb.buf);
    strbuf_release(&sb);
}

struct nx_tctx *nx_tctx_add(struct nx_tctx *c, const char *key)
{
    struct tvar *v = get_or_add(c, key);
    NX_FREE(v->value);
    NX_GROW(v->items, v->alloc_items, v->n_items + 1);
    return v->items[v->n_items++] = nx_tctx_new();
}

static const struct tvar *lookup(const struct scope *sc, const char *key, size_t len)
{
    for (; sc; sc = sc->outer) {
        struct tvar *v = find_local(sc->ctx, key, len);
        if (v)
            return v;
    }
    return NULL;
}

static int emit(const char *name, struct strbuf *out, const char *key, size_t klen,
                const char *value, enum nx_escape esc)
{
    switch (esc) {
    case NX_ESC_XML:
        strbuf_add_xml_escaped(out, value);
        return 0;
    case NX_ESC_CONF:
        for (const char *p = value; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '"' || *p == '\'' || *p == '\\')
                return nx_error_set(NX_EX_DATAERR,
                                    "template %s: value of '%.*s' contains a newline, quote or "
                                    "backslash, which this file format cannot carry safely",
                                    name, (int)klen, key);
        strbuf_addstr(out, value);
        return 0;
    case NX_ESC_SHELL:
        strbuf_addch(out, '\'');
        for (const char *p = value; *p; p++) {
            if (*p == '\'')
                strbuf_addstr(out, "'\\''");
            else
                strbuf_addch(out, *p);
        }
        strbuf_addch(out, '\'');
        return 0;
    }
    return 0;
}

/* Find the {{/key}} closing the section that starts at p, honouring nesting. */
static const char *find_close(const char *p, const char *key, size_t klen, const char **after)
{
    int depth = 1;
    while ((p = strstr(p, "{{"))) {
        const char *end = strstr(p, "}}");
        if (!end)
            return NULL;
        char kind = p[2];
        const char *k = p + 3;
        size_t l = (size_t)(end - k);
        if ((kind == '#' || kind == '^') && l == klen && !memcmp(k, key, klen))
            depth++;
        else if (kind == '/' && l == klen && !memcmp(k, key, klen) && --depth == 0) {
            *after = end + 2;
            return p;
        }
        p = end + 2;
    }
    return NULL;
}

static int render(const char *name, const char *p, const char *stop, const struct scope *sc,
                  enum nx_escape esc, struct strbuf *out, int depth)
{
    if (depth > NX_TEMPLATE_MAX_DEPTH)
        return nx_error_set(NX_EX_SOFTWARE, "template %s: sections nested too deeply", name);
    while (p < stop) {
        if (out->len > NX_TEMPLATE_MAX_OUTPUT)
            return nx_error_set(NX_EX_SOFTWARE, "template %s: output larger than %u MiB", name,
                                NX_TEMPLATE_MAX_OUTPUT >> 20);
        const char *open = strstr(p, "{{");
        if (!open || open >= stop) {
            strbuf_add(out, p, (size_t)(stop - p));
            return 0;
        }
        strbuf_add(out, p, (size_t)(open - p));
        const char *close = strstr(open, "}}");
        if (!close || close >= stop)
            return nx_error_set(NX_EX_SOFTWARE, "template %s: unclosed '{{'", name);
        char kind = open[2];
        const char *key = open + 2;
        if (kind == '#' || kind == '^' || kind == '/')
            key++;
        size_t klen = (size_t)(close - key);
        if (klen == 0 || klen > 64)
            return nx_error_set(NX_EX_SOFTWARE, "template %s: empty or overlong tag", name);
        for (size_t i = 0; i < klen; i++)
            if (!(key[i] == '_' || (key[i] >= 'a' && key[i] <= 'z') ||
                  (key[i] >= '0' && key[i] <= '9')))
                return nx_error_set(NX_EX_SOFTWARE, "template %s: bad tag name '%.*s'", name,
                                    (int)klen, key);
        if (kind == '/')
            return nx_error_set(NX_EX_SOFTWARE, "template %s: '{{/%.*s}}' closes nothing", name,
                                (int)klen, key);
        const struct tvar *v = lookup(sc, key, klen);
        if (kind != '#' && kind != '^') {
            if (!v || !v->value)
                return nx_error_set(NX_EX_SOFTWARE, "template %s: no value for '%.*s'", name,
                                    (int)klen, key);
            if (emit(name, out, key, klen, v->value, esc) < 0)
                return -1;
            p = close + 2;
            continue;
        }
        const char *after;
        const char *end = find_close(close + 2, key, klen, &after);
        if (!end || end > stop)
            return nx_error_set(NX_EX_SOFTWARE, "template %s: section '%.*s' is not closed", name,
                                (int)klen, key);
        bool truthy = v && (v->value ? *v->value != '\0' : v->n_items > 0);
        if (kind == '^') {
            if (!truthy && render(name, close + 2, end, sc, esc, out, depth + 1) < 0)
                return -1;
        } else if (v && !v->value) {
            for (size_t i = 0; i < v->n_items; i++) {
                struct scope inner = {v->items[i], sc};
                if (render(name, close + 2, end, &inner, esc, out, depth + 1) < 0)
                    return -1;
            }
        } else if (truthy) {
            if (render(name, close + 2, end, sc, esc, out, depth + 1) < 0)
                return -1;
        }
        p = after;
    }
    return 0;
}

int nx_template_render(const char *name, const char *tmpl, const struct nx_tctx *ctx,
                       enum nx_escape esc, struct strbuf *out)
{
    struct scope sc = {ctx, NULL};
    return render(name, tmpl, tmpl + strlen(tmpl), &sc, esc, out, 0);
}
