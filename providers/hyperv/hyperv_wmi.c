/* hyperv_wmi.c: connection-independent helpers of the Hyper-V provider. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "hyperv.h"
#include "strbuf.h"
#include "util.h"

int hv_parse_uri(const char *uri, struct hv_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    const char *rest;
    bool http = false;
    if (nx_str_has_prefix(uri, "hyperv://"))
        rest = uri + strlen("hyperv://");
    else if (nx_str_has_prefix(uri, "hyperv+https://"))
        rest = uri + strlen("hyperv+https://");
    else if (nx_str_has_prefix(uri, "hyperv+http://")) {
        rest = uri + strlen("hyperv+http://");
        http = true;
    } else
        return nx_error_set(NX_EX_CONFIG, "%s: not a Hyper-V URI", uri);

    size_t hostlen = strcspn(rest, "/?#");
    char *hostport = nx_strndup(rest, hostlen);
    const char *after = rest + hostlen;
    size_t pathlen = strcspn(after, "?#");
    char *path = pathlen > 1 ? nx_strndup(after, pathlen) : nx_strdup("/wsman");
    const char *query = after[pathlen] == '?' ? after + pathlen + 1 : NULL;
    int ret = -1;

    if (!hostport[0] || strchr(hostport, '@')) {
        nx_error_set(NX_EX_CONFIG,
                     "%s: expected hyperv://HOST[:PORT]/wsman (credentials never go in the URI)",
                     uri);
        goto cleanup;
    }
    /* host, [v6], optional :port */
    const char *colon = NULL;
    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (!rb || (rb[1] && rb[1] != ':')) {
            nx_error_set(NX_EX_CONFIG, "%s: bad IPv6 address", uri);
            goto cleanup;
        }
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strchr(hostport, ':');
    }
    unsigned long port = http ? 5985 : 5986;
    if (colon) {
        if (!nx_parse_uint(colon + 1, 1, 65535, &port)) {
            nx_error_set(NX_EX_CONFIG, "%s: bad port '%s'", uri, colon + 1);
            goto cleanup;
        }
        hostport[colon - hostport] = '\0';
    }
    for (const char *p = hostport; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("-._[]:", *p))) {
            nx_error_set(NX_EX_CONFIG, "%s: bad host name", uri);
            goto cleanup;
        }
    for (const char *q = query; q && *q;) {
        size_t l = strcspn(q, "&");
        if (l == 9 && strncmp(q, "auth=ntlm", 9) == 0)
            out->ntlm = true;
        else if (l == 10 && strncmp(q, "auth=basic", 10) == 0)
            out->ntlm = false;
        else {
            nx_error_set(NX_EX_CONFIG, "%s: unknown parameter '%.*s' (known: auth=basic|ntlm)", uri,
                         (int)l, q);
            goto cleanup;
        }
        q += l;
        if (*q == '&')
            q++;
    }
    out->plain_http = http;
    out->url = nx_asprintf("%s://%s:%lu%s", http ? "http" : "https", hostport, port, path);
    ret = 0;
cleanup:
    free(hostport);
    free(path);
    return ret;
}

void hv_endpoint_release(struct hv_endpoint *e)
{
    if (e)
        NX_FREE(e->url);
}

char *hv_wmi_path(const char *host, const struct nx_wsman_epr *epr)
{
    struct strbuf sb = STRBUF_INIT;
    const char *slash = strrchr(epr->resource_uri, '/');
    strbuf_addf(&sb, "\\\\%s\\root\\virtualization\\v2:%s.", host,
                slash ? slash + 1 : epr->resource_uri);
    bool first = true;
    for (size_t i = 0; i < epr->n_sel; i++) {
        if (strcmp(epr->sel[i].name, "__cimnamespace") == 0)
            continue;
        strbuf_addf(&sb, "%s%s=\"", first ? "" : ",", epr->sel[i].name);
        for (const char *v = epr->sel[i].value; *v; v++) {
            if (*v == '\\' || *v == '"')
                strbuf_addch(&sb, '\\');
            strbuf_addch(&sb, *v);
        }
        strbuf_addch(&sb, '"');
        first = false;
    }
    return strbuf_detach(&sb, NULL);
}

char *hv_wmi_path_key(const char *path, const char *key)
{
    if (!path)
        return NULL;
    const char *dot = strchr(path, ':');
    dot = strchr(dot ? dot : path, '.');
    size_t kl = strlen(key);
    for (const char *p = dot ? dot + 1 : NULL; p && *p;) {
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return NULL;
        bool match = (size_t)(eq - p) == kl && strncmp(p, key, kl) == 0;
        struct strbuf v = STRBUF_INIT;
        const char *q = eq + 2;
        for (; *q && *q != '"'; q++) {
            if (*q == '\\' && q[1])
                q++;
            strbuf_addch(&v, *q);
        }
        if (*q != '"') {
            strbuf_release(&v);
            return NULL;
        }
        if (match)
            return strbuf_detach(&v, NULL);
        strbuf_release(&v);
        p = q + 1;
        if (*p == ',')
            p++;
    }
    return NULL;
}

void hv_format_mac(const uint8_t mac[6], char out[13])
{
    snprintf(out, 13, "%02X%02X%02X%02X%02X%02X", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

bool hv_parse_mac(const char *s, uint8_t mac[6])
{
    if (!s || strlen(s) != 12)
        return false;
    for (int i = 0; i < 6; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        mac[i] = (uint8_t)v;
    }
    return true;
}

static void kvp_add(struct hv_kvp_items *k, size_t *alloc, char *name, char *value)
{
    if (k->n + 1 > *alloc) {
        *alloc = *alloc ? *alloc * 2 : 8;
        k->names = nx_realloc(k->names, *alloc * sizeof(*k->names));
        k->values = nx_realloc(k->values, *alloc * sizeof(*k->values));
    }
    k->names[k->n] = name;
    k->values[k->n] = value;
    k->n++;
}

void hv_kvp_items_build(const char *payload, size_t len, const char *sha256hex,
                        struct hv_kvp_items *out)
{
    struct strbuf b64 = STRBUF_INIT;
    size_t alloc = 0;
    memset(out, 0, sizeof(*out));
    strbuf_add_base64(&b64, payload, len);
    size_t chunks = (b64.len + HV_KVP_CHUNK - 1) / HV_KVP_CHUNK;
    kvp_add(out, &alloc, nx_strdup(HV_KVP_PREFIX "count"), nx_asprintf("%zu", chunks));
    kvp_add(out, &alloc, nx_strdup(HV_KVP_PREFIX "sha256"), nx_strdup(sha256hex));
    for (size_t i = 0; i < chunks; i++) {
        size_t off = i * HV_KVP_CHUNK;
        size_t l = b64.len - off < HV_KVP_CHUNK ? b64.len - off : HV_KVP_CHUNK;
        kvp_add(out, &alloc, nx_asprintf(HV_KVP_PREFIX "%03zu", i), nx_strndup(b64.buf + off, l));
    }
    strbuf_release(&b64);
}

void hv_kvp_items_release(struct hv_kvp_items *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->names[i]);
        free(k->values[i]);
    }
    free(k->names);
    free(k->values);
    memset(k, 0, sizeof(*k));
}

char *hv_path_component(const char *s)
{
    char *r = nx_strdup(s ? s : "");
    for (char *p = r; *p; p++)
        if (strchr("<>:\"/\\|?*", *p) || (unsigned char)*p < 0x20)
            *p = '_';
    if (!r[0] || strcmp(r, ".") == 0 || strcmp(r, "..") == 0) {
        free(r);
        r = nx_strdup("_");
    }
    return r;
}

char *hv_data_root(const char *vm_root, const char *folder, const char *tenant)
{
    char *t = hv_path_component(tenant);
    char *r;
    if (!folder || !folder[0])
        folder = HV_DEFAULT_FOLDER;
    bool absolute = (isalpha((unsigned char)folder[0]) && folder[1] == ':' &&
                     (folder[2] == '\\' || folder[2] == '/')) ||
                    strncmp(folder, "\\\\", 2) == 0;
    if (absolute) {
        size_t l = strlen(folder);
        while (l > 3 && (folder[l - 1] == '\\' || folder[l - 1] == '/'))
            l--;
        r = nx_asprintf("%.*s\\%s", (int)l, folder, t);
    } else {
        size_t l = strlen(vm_root);
        while (l > 3 && vm_root[l - 1] == '\\')
            l--;
        /* folder is relative: one or more components, '/' or '\' */
        struct strbuf sb = STRBUF_INIT;
        strbuf_addf(&sb, "%.*s", (int)l, vm_root);
        char *f = nx_strdup(folder);
        for (char *tok = strtok(f, "/\\"); tok; tok = strtok(NULL, "/\\")) {
            char *c = hv_path_component(tok);
            strbuf_addf(&sb, "\\%s", c);
            free(c);
        }
        free(f);
        strbuf_addf(&sb, "\\%s", t);
        r = strbuf_detach(&sb, NULL);
    }
    free(t);
    return r;
}

char *hv_image_path(const char *store, const char *name)
{
    if (!store || !store[0])
        store = HV_DEFAULT_IMAGE_STORE;
    size_t l = strlen(store);
    while (l > 3 && (store[l - 1] == '\\' || store[l - 1] == '/'))
        l--;
    return nx_asprintf("%.*s\\%s", (int)l, store, name);
}

bool hv_path_has_name(const char *path, const char *name)
{
    if (!path || !name)
        return false;
    const char *b = path;
    for (const char *p = path; *p; p++)
        if (*p == '\\' || *p == '/' || *p == ':')
            b = p + 1;
    return strcasecmp(b, name) == 0;
}

const char *hv_return_text(long rv)
{
    switch (rv) {
    case 0:
        return "completed";
    case 1:
        return "not supported";
    case 2:
        return "failed";
    case 3:
        return "timeout";
    case 4:
        return "invalid parameter";
    case 5:
        return "invalid state";
    case 4096:
        return "job started";
    case 32768:
        return "failed";
    case 32769:
        return "access denied";
    case 32770:
        return "not supported";
    case 32771:
        return "status is unknown";
    case 32772:
        return "timeout";
    case 32773:
        return "invalid parameter";
    case 32774:
        return "system is in use";
    case 32775:
        return "invalid state for this operation";
    case 32776:
        return "incorrect data type";
    case 32777:
        return "system is not available";
    case 32778:
        return "out of memory";
    case 32779:
        return "file not found";
    default:
        return "unknown error";
    }
}

void hv_wql_quote(struct strbuf *sb, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '\'')
            strbuf_addch(sb, '\\');
        strbuf_addch(sb, *s);
    }
}

char *hv_wql(const char *cls, const char *prop, const char *op, const char *value,
             const char *suffix)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "SELECT * FROM %s WHERE %s %s '", cls, prop, op);
    hv_wql_quote(&sb, value);
    strbuf_addf(&sb, "%s'", suffix ? suffix : "");
    return strbuf_detach(&sb, NULL);
}

bool hv_has_prefix_ci(const char *s, const char *prefix)
{
    return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool hv_path_names(const char *path, const char *iid)
{
    char *k = hv_wmi_path_key(path, "InstanceID");
    bool r = k && iid && strcasecmp(k, iid) == 0;
    free(k);
    return r;
}

unsigned hv_access_vlan(const struct nx_wsman_instance *vl)
{
    unsigned long id = 0, mode = 0;
    if (nx_parse_uint(nx_wsman_prop(vl, "OperationMode"), 0, 65535, &mode) && mode == 1 &&
        nx_parse_uint(nx_wsman_prop(vl, "AccessVlanId"), 1, 4094, &id))
        return (unsigned)id;
    return 0;
}

bool hv_vssd_marker(const struct nx_wsman_instance *vssd, struct nx_marker *m)
{
    for (size_t k = 0; k < vssd->n; k++) {
        struct nx_marker tmp = {0};
        if (strcmp(vssd->props[k].name, "Notes") != 0 || !vssd->props[k].value ||
            nx_marker_decode(vssd->props[k].value, &tmp) != 0)
            continue;
        if (m)
            *m = tmp;
        else
            nx_marker_release(&tmp);
        return true;
    }
    return false;
}
