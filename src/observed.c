/* observed.c: helpers for the observed types (observed.h): building and
 * freeing observed appliances, and the ownership marker's text form. */
#include "config.h"

#include "observed.h"
#include "strbuf.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void nx_marker_release(struct nx_marker *m)
{
    NX_FREE(m->tenant);
    NX_FREE(m->host);
    NX_FREE(m->net);
}

void nx_net_usage_free(struct nx_net_usage *u, size_t n)
{
    for (size_t i = 0; u && i < n; i++)
        free(u[i].network);
    free(u);
}

void nx_obs_free(struct nx_appliance_obs *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_vnics; i++) {
        free(o->vnics[i].id);
        free(o->vnics[i].network);
    }
    free(o->vnics);
    free(o->id);
    free(o->name);
    nx_marker_release(&o->marker);
    free(o);
}

void nx_obs_list_release(struct nx_obs_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        nx_obs_free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void nx_obs_list_add(struct nx_obs_list *l, struct nx_appliance_obs *o)
{
    NX_GROW(l->items, l->alloc, l->n + 1);
    l->items[l->n++] = o;
}

struct nx_vnic_obs *nx_obs_add_vnic(struct nx_appliance_obs *o)
{
    NX_GROW(o->vnics, o->alloc_vnics, o->n_vnics + 1);
    struct nx_vnic_obs *v = &o->vnics[o->n_vnics++];
    memset(v, 0, sizeof(*v));
    return v;
}

void nx_marker_set_image(struct nx_marker *m, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    bool hex = n == sizeof(m->image) - 1;
    for (size_t i = 0; hex && i < n; i++)
        hex = isxdigit((unsigned char)id[i]) != 0;
    if (hex)
        memcpy(m->image, id, sizeof(m->image));
    else
        m->image[0] = '\0'; /* unknown: a set-image puts the right one */
}

void nx_marker_from_spec(struct nx_marker *m, const struct nx_appliance_spec *spec)
{
    m->role = spec->role;
    m->tenant = nx_strdup(spec->tenant->name);
    m->host = nx_strdup(spec->host->name);
    m->net = nx_strdup(spec->net);
    m->revision = NX_MODEL_REVISION;
    memcpy(m->digest, spec->digest, sizeof(m->digest));
    if (spec->image)
        memcpy(m->image, spec->image->id, sizeof(m->image));
    else
        m->image[0] = '\0';
}

static void pct_encode(struct strbuf *sb, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.')
            strbuf_addch(sb, *p);
        else
            strbuf_addf(sb, "%%%02X", *p);
    }
}

static char *pct_decode(const char *s, size_t len)
{
    char *out = nx_malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            unsigned v = (unsigned)strtoul(hex, NULL, 16);
            if (v == 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)v;
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

#define MARKER_MAGIC "netext-deploy:1 "

char *nx_marker_encode(const struct nx_marker *m)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, MARKER_MAGIC "role=%s tenant=", nx_role_name(m->role));
    pct_encode(&sb, m->tenant ? m->tenant : "");
    strbuf_addstr(&sb, " host=");
    pct_encode(&sb, m->host ? m->host : "");
    if (m->net) {
        strbuf_addstr(&sb, " net=");
        pct_encode(&sb, m->net);
    }
    strbuf_addf(&sb, " revision=%u digest=%s", m->revision, m->digest);
    if (m->image[0])
        strbuf_addf(&sb, " image=%s", m->image);
    return strbuf_detach(&sb, NULL);
}

int nx_marker_decode(const char *text, struct nx_marker *out)
{
    struct nx_marker m = {0};
    bool have_role = false;
    if (!text)
        return -1;
    const char *p = strstr(text, MARKER_MAGIC);
    if (!p)
        return -1;
    p += strlen(MARKER_MAGIC);
    while (*p && *p != '\n') {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        if (!eq)
            break;
        const char *end = eq + 1;
        while (*end && *end != ' ' && *end != '\n')
            end++;
        size_t klen = (size_t)(eq - p);
        char *val = pct_decode(eq + 1, (size_t)(end - eq - 1));
        if (!val)
            goto fail;
        if (klen == 4 && !strncmp(p, "role", 4)) {
            have_role = nx_role_parse(val, &m.role);
            free(val);
        } else if (klen == 6 && !strncmp(p, "tenant", 6)) {
            free(m.tenant);
            m.tenant = val;
        } else if (klen == 4 && !strncmp(p, "host", 4)) {
            free(m.host);
            m.host = val;
        } else if (klen == 3 && !strncmp(p, "net", 3)) {
            free(m.net);
            m.net = val;
        } else if (klen == 8 && !strncmp(p, "revision", 8)) {
            unsigned long r;
            if (nx_parse_uint(val, 0, 1000000, &r))
                m.revision = (unsigned)r;
            free(val);
        } else if (klen == 6 && !strncmp(p, "digest", 6)) {
            if (strlen(val) == 64)
                memcpy(m.digest, val, 65);
            free(val);
        } else if (klen == 5 && !strncmp(p, "image", 5)) {
            nx_marker_set_image(&m, val);
            free(val);
        } else {
            free(val); /* unknown keys: from a newer version */
        }
        p = end;
    }
    if (!have_role || !m.tenant || !*m.tenant || !m.host || !*m.host)
        goto fail;
    if ((m.role == NX_ROLE_TENANT) != (m.net != NULL && *m.net))
        goto fail; /* tenant-side markers name their network; others do not */
    *out = m;
    return 0;
fail:
    nx_marker_release(&m);
    return -1;
}
