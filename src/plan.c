/* plan.c: streaming reader of netext-plan(5) files into the model. */
#include "config.h"

#include "plan.h"
#include "log.h"
#include "util.h"
#include "xml.h"

#include <dirent.h>
#include <errno.h>
#include <libxml/relaxng.h>
#include <libxml/xmlreader.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static xmlRelaxNGPtr schema;
static pthread_once_t schema_once = PTHREAD_ONCE_INIT;

static void schema_compile(void)
{
    nx_xml_init();
    xmlRelaxNGParserCtxtPtr pctxt =
        xmlRelaxNGNewMemParserCtxt(nx_plan_schema, (int)nx_plan_schema_len);
    if (pctxt) {
        schema = xmlRelaxNGParse(pctxt);
        xmlRelaxNGFreeParserCtxt(pctxt);
    }
}

struct reader_ctx {
    struct nx_model *m;
    struct nx_diag *diag;
    const char *file;
    unsigned errors;
};

static void reader_error(void *arg, xmlErrorPtr e)
{
    struct reader_ctx *rc = arg;
    if (!e || e->level < XML_ERR_ERROR)
        return;
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "invalid");
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
        msg[--l] = '\0';
    const char *kind = e->domain == XML_FROM_RELAXNGV ? "schema" : "malformed XML";
    nx_diag_add(rc->diag, rc->file, e->line > 0 ? (unsigned)e->line : 0, "%s: %s", kind, msg);
    rc->errors++;
    rc->m->n_syntax_errors++;
}

static unsigned line_of(xmlNodePtr n)
{
    long l = xmlGetLineNo(n);
    return l > 0 ? (unsigned)l : 0;
}

#define DIAG(rc, node, ...) nx_diag_add((rc)->diag, (rc)->file, line_of(node), __VA_ARGS__)

static char *dup_attr(xmlNodePtr n, const char *name)
{
    return nx_strdup(nx_xml_attr(n, name));
}

static struct nx_loc loc_of(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_loc l = {rc->file, line_of(n)};
    return l;
}

/* path, relative to the directory of the file that names it */
static char *relative_to(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    if (path[0] == '/' || !slash)
        return nx_strdup(path);
    return nx_asprintf("%.*s/%s", (int)(slash - file), file, path);
}

static void read_placement(xmlNodePtr n, struct nx_placement *p)
{
    p->folder = dup_attr(n, "folder");
    p->resource_pool = dup_attr(n, "resource-pool");
    p->datastore = dup_attr(n, "datastore");
}

static bool parse_vlan(struct reader_ctx *rc, xmlNodePtr n, const char *what, const char *s,
                       unsigned *out)
{
    unsigned long v;
    if (!nx_parse_uint(s, 1, 4094, &v)) {
        DIAG(rc, n, "%s: VLAN '%s' is not a number in 1-4094", what, s);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static void read_gateway(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_model *m = rc->m;
    if (m->has_gateway) {
        DIAG(rc, n, "<gateway>: defined twice (first at %s:%u)", m->gateway.loc.file,
             m->gateway.loc.line);
        m->n_global_errors++;
        return;
    }
    m->has_gateway = true;
    m->gateway.loc = loc_of(rc, n);
    m->gateway.address = dup_attr(n, "address");
    m->gateway.port = NX_DEFAULT_GATEWAY_PORT;
    const char *port = nx_xml_attr(n, "port");
    unsigned long v;
    if (port && !nx_parse_uint(port, 1, 65535, &v)) {
        DIAG(rc, n, "<gateway>: port '%s' is not a number in 1-65535", port);
        m->n_global_errors++;
    } else if (port)
        m->gateway.port = (unsigned)v;
}

static void read_defaults(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_model *m = rc->m;
    if (m->has_defaults) {
        DIAG(rc, n, "<defaults>: defined twice (first at %s:%u)", m->defaults_loc.file,
             m->defaults_loc.line);
        m->n_global_errors++;
        return;
    }
    m->has_defaults = true;
    m->defaults_loc = loc_of(rc, n);
    read_placement(n, &m->defaults);
    const char *power = nx_xml_attr(n, "power");
    if (power)
        m->power_on = strcmp(power, "off") != 0;
    const char *image = nx_xml_attr(n, "image");
    if (image && !*image) {
        DIAG(rc, n, "<defaults>: image is empty");
        m->n_global_errors++;
    } else if (image) {
        m->image_file = relative_to(rc->file, image);
        m->image_loc = loc_of(rc, n);
    }
}

static void read_host(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_host *h = nx_calloc(1, sizeof(*h));
    h->loc = loc_of(rc, n);
    h->name = dup_attr(n, "name");
    h->uri = dup_attr(n, "uri");
    h->target = dup_attr(n, "target");
    h->production_network = dup_attr(n, "production-network");
    h->vlan_switch = dup_attr(n, "vlan-switch");
    h->image_store = dup_attr(n, "image-store");
    read_placement(n, &h->placement);
    const char *pv = nx_xml_attr(n, "production-vlan");
    if (pv && !parse_vlan(rc, n, "<host> production-vlan", pv, &h->production_vlan))
        h->invalid = true;
    NX_GROW(rc->m->hosts, rc->m->alloc_hosts, rc->m->n_hosts + 1);
    rc->m->hosts[rc->m->n_hosts++] = h;
}

static void read_hwplan(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_hwplan *p = nx_calloc(1, sizeof(*p));
    p->loc = loc_of(rc, n);
    p->name = dup_attr(n, "name");
    p->host_name = dup_attr(n, "host");
    for (xmlNodePtr c = nx_xml_first_elem(n); c; c = nx_xml_next_elem(c)) {
        if (!nx_xml_is(c, NX_PLAN_NS, "network"))
            continue;
        NX_GROW(p->networks, p->alloc_networks, p->n_networks + 1);
        struct nx_network *net = &p->networks[p->n_networks++];
        net->loc = loc_of(rc, c);
        net->name = dup_attr(c, "name");
        const char *vlan = nx_xml_attr(c, "vlan");
        if (vlan && !parse_vlan(rc, c, "<network>", vlan, &net->vlan))
            p->invalid = true;
    }
    NX_GROW(rc->m->plans, rc->m->alloc_plans, rc->m->n_plans + 1);
    rc->m->plans[rc->m->n_plans++] = p;
}

static void read_address(struct reader_ctx *rc, xmlNodePtr n, struct nx_address *a)
{
    memset(a, 0, sizeof(*a));
    a->mode = NX_ADDR_DHCP;
    a->loc = loc_of(rc, n);
    xmlNodePtr c = nx_xml_first_elem(n);
    if (!c || nx_xml_is(c, NX_PLAN_NS, "dhcp"))
        return;
    if (!nx_xml_is(c, NX_PLAN_NS, "static"))
        return; /* the schema reports it */
    a->mode = NX_ADDR_STATIC;
    a->loc = loc_of(rc, c);
    const char *ip = nx_xml_attr(c, "ip");
    if (ip && !nx_parse_cidr(ip, &a->ip, &a->prefix)) {
        DIAG(rc, c, "<static>: ip '%s' is not an IPv4 address with a prefix (a.b.c.d/n)", ip);
    } else if (ip && (a->prefix < 1 || a->prefix > 30)) {
        DIAG(rc, c, "<static>: prefix /%u leaves no room for hosts (use /1 to /30)", a->prefix);
    } else if (ip) {
        uint32_t mask = 0xffffffffu << (32 - a->prefix);
        if ((a->ip & ~mask) == 0 || (a->ip & ~mask) == ~mask)
            DIAG(rc, c, "<static>: ip '%s' is the network or broadcast address of its subnet", ip);
    }
    const char *gw = nx_xml_attr(c, "gateway");
    if (gw) {
        if (!nx_parse_ipv4(gw, &a->gateway)) {
            DIAG(rc, c, "<static>: gateway '%s' is not an IPv4 address", gw);
        } else {
            a->has_gateway = true;
            uint32_t mask = a->prefix ? 0xffffffffu << (32 - a->prefix) : 0;
            if (ip && a->prefix && (a->gateway & mask) != (a->ip & mask))
                DIAG(rc, c, "<static>: gateway '%s' is outside the subnet of '%s'", gw, ip);
            else if (ip && a->gateway == a->ip)
                DIAG(rc, c, "<static>: gateway '%s' is the appliance's own address", gw);
        }
    }
    for (xmlNodePtr d = nx_xml_first_elem(c); d; d = nx_xml_next_elem(d)) {
        if (!nx_xml_is(d, NX_PLAN_NS, "dns"))
            continue;
        char *txt = nx_xml_text(d);
        uint32_t v;
        if (!txt || !nx_parse_ipv4(txt, &v))
            DIAG(rc, d, "<dns>: '%s' is not an IPv4 address", txt ? txt : "");
        else if (a->n_dns == NX_MAX_DNS)
            DIAG(rc, d, "<dns>: at most %d DNS servers", NX_MAX_DNS);
        else
            a->dns[a->n_dns++] = v;
        free(txt);
    }
}

/* "a.b.c.d:port" */
static bool parse_endpoint(const char *s, uint32_t *ip, unsigned *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon - s > 15)
        return false;
    char buf[16];
    memcpy(buf, s, (size_t)(colon - s));
    buf[colon - s] = '\0';
    unsigned long p;
    if (!nx_parse_ipv4(buf, ip) || !nx_parse_uint(colon + 1, 1, 65535, &p))
        return false;
    *port = (unsigned)p;
    return true;
}

static void read_tenant(struct reader_ctx *rc, xmlNodePtr n)
{
    size_t before = rc->diag->n;
    struct nx_tenant *t = nx_calloc(1, sizeof(*t));
    t->loc = loc_of(rc, n);
    t->name = dup_attr(n, "name");
    for (xmlNodePtr c = nx_xml_first_elem(n); c; c = nx_xml_next_elem(c)) {
        if (nx_xml_is(c, NX_PLAN_NS, "subscribe")) {
            NX_GROW(t->subs, t->alloc_subs, t->n_subs + 1);
            struct nx_subscription *s = &t->subs[t->n_subs++];
            s->loc = loc_of(rc, c);
            s->plan_name = dup_attr(c, "plan");
        } else if (nx_xml_is(c, NX_PLAN_NS, "appliance")) {
            NX_GROW(t->appliances, t->alloc_appliances, t->n_appliances + 1);
            struct nx_tenant_appliance *a = &t->appliances[t->n_appliances++];
            a->loc = loc_of(rc, c);
            a->host_name = dup_attr(c, "host");
            read_address(rc, c, &a->addr);
        } else if (nx_xml_is(c, NX_PLAN_NS, "public-ip-rule")) {
            NX_GROW(t->rules, t->alloc_rules, t->n_rules + 1);
            struct nx_rule *r = &t->rules[t->n_rules++];
            r->loc = loc_of(rc, c);
            r->host_name = dup_attr(c, "host");
            const char *pub = nx_xml_attr(c, "public"), *rep = nx_xml_attr(c, "replica");
            const char *proto = nx_xml_attr(c, "protocol");
            r->proto = proto && strcmp(proto, "udp") == 0 ? NX_PROTO_UDP : NX_PROTO_TCP;
            if (pub && !parse_endpoint(pub, &r->public_ip, &r->public_port))
                DIAG(rc, c, "<public-ip-rule>: public '%s' is not IPv4:port (port 1-65535)", pub);
            if (rep && !parse_endpoint(rep, &r->replica_ip, &r->replica_port))
                DIAG(rc, c, "<public-ip-rule>: replica '%s' is not IPv4:port (port 1-65535)", rep);
        }
    }
    t->invalid = rc->diag->n > before;
    NX_GROW(rc->m->tenants, rc->m->alloc_tenants, rc->m->n_tenants + 1);
    rc->m->tenants[rc->m->n_tenants++] = t;
}

static void read_source_host(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_host *h = nx_calloc(1, sizeof(*h));
    h->loc = loc_of(rc, n);
    h->name = dup_attr(n, "name");
    h->uri = dup_attr(n, "uri");
    h->target = dup_attr(n, "target");
    h->image_store = dup_attr(n, "image-store");
    read_placement(n, &h->placement);
    NX_GROW(rc->m->hosts, rc->m->alloc_hosts, rc->m->n_hosts + 1);
    rc->m->hosts[rc->m->n_hosts++] = h;
}

static void read_tside_appliance(struct reader_ctx *rc, xmlNodePtr n)
{
    struct nx_tenant_side *ts = &rc->m->tside;
    NX_GROW(ts->appliances, ts->alloc_appliances, ts->n_appliances + 1);
    struct nx_tside_appliance *a = &ts->appliances[ts->n_appliances++];
    memset(a, 0, sizeof(*a));
    a->loc = loc_of(rc, n);
    a->host_name = dup_attr(n, "host");
    a->production_network = dup_attr(n, "production-network");
    a->extends = dup_attr(n, "extends");
    read_address(rc, n, &a->addr);
}

static void read_top(struct reader_ctx *rc, xmlNodePtr n)
{
    if (rc->m->kind == NX_KIND_TENANT) {
        if (nx_xml_is(n, NX_PLAN_NS, "defaults"))
            read_defaults(rc, n);
        else if (nx_xml_is(n, NX_PLAN_NS, "source-host"))
            read_source_host(rc, n);
        else if (nx_xml_is(n, NX_PLAN_NS, "appliance"))
            read_tside_appliance(rc, n);
        else if (nx_xml_is(n, NX_PLAN_NS, "no-appliances")) {
            rc->m->tside.no_appliances = true;
            rc->m->tside.no_appliances_loc = loc_of(rc, n);
        }
        return;
    }
    if (nx_xml_is(n, NX_PLAN_NS, "gateway"))
        read_gateway(rc, n);
    else if (nx_xml_is(n, NX_PLAN_NS, "defaults"))
        read_defaults(rc, n);
    else if (nx_xml_is(n, NX_PLAN_NS, "host"))
        read_host(rc, n);
    else if (nx_xml_is(n, NX_PLAN_NS, "hardware-plan"))
        read_hwplan(rc, n);
    else if (nx_xml_is(n, NX_PLAN_NS, "tenant"))
        read_tenant(rc, n);
    /* anything else: the schema reports it */
}

/* Find a DOCTYPE in the prolog (before the root element) of the first len
 * bytes: plans never have one, and refusing it before the parser sees it
 * means no entity declaration is ever processed. Returns its line or 0. */
static unsigned prolog_doctype_line(const char *buf, size_t len)
{
    unsigned line = 1;
    size_t i = 0;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
        i = 3;
    while (i < len) {
        char ch = buf[i];
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == ' ' || ch == '\t' || ch == '\r') {
            i++;
        } else if (ch != '<' || i + 1 >= len) {
            return 0;
        } else if (buf[i + 1] == '?' || (i + 3 < len && !memcmp(buf + i, "<!--", 4))) {
            const char *end = buf[i + 1] == '?' ? "?>" : "-->";
            const char *e = NULL;
            for (size_t k = i + 2; k + strlen(end) <= len; k++) {
                if (buf[k] == '\n')
                    line++;
                if (!memcmp(buf + k, end, strlen(end))) {
                    e = buf + k + strlen(end);
                    break;
                }
            }
            if (!e)
                return 0;
            i = (size_t)(e - buf);
        } else if (i + 9 <= len && !memcmp(buf + i, "<!DOCTYPE", 9)) {
            return line;
        } else {
            return 0; /* the root element */
        }
    }
    return 0;
}

static bool refuse_doctype(struct nx_model *m, const char *file, const char *buf, size_t len,
                           struct nx_diag *diag)
{
    unsigned line = prolog_doctype_line(buf, len);
    if (!line)
        return false;
    nx_diag_add(diag, file, line,
                "a DOCTYPE is not allowed in a plan (entities are never expanded)");
    m->n_syntax_errors++;
    return true;
}

/* The root element says what the file describes; all files of a model
 * describe the same side. */
static int root_kind(struct reader_ctx *rc, xmlTextReaderPtr reader)
{
    const char *name = (const char *)xmlTextReaderConstLocalName(reader);
    const char *ns = (const char *)xmlTextReaderConstNamespaceUri(reader);
    if (!ns || strcmp(ns, NX_PLAN_NS) != 0)
        return 0; /* the schema reports it */
    enum nx_model_kind kind = nx_str_eq(name, "netext-tenant") ? NX_KIND_TENANT
                              : nx_str_eq(name, "netext-plan") ? NX_KIND_PROVIDER
                                                               : NX_KIND_NONE;
    if (kind == NX_KIND_NONE)
        return 0;
    unsigned line = (unsigned)xmlTextReaderGetParserLineNumber(reader);
    if (rc->m->kind != NX_KIND_NONE && rc->m->kind != kind) {
        nx_diag_add(rc->diag, rc->file, line,
                    "<%s>: cannot be read together with %s files (provider plans and tenant "
                    "configurations are separate)",
                    name, rc->m->kind == NX_KIND_TENANT ? "<netext-tenant>" : "<netext-plan>");
        rc->m->n_syntax_errors++;
        return -1;
    }
    rc->m->kind = kind;
    if (kind == NX_KIND_TENANT) {
        struct nx_tenant_side *ts = &rc->m->tside;
        xmlChar *bundle = xmlTextReaderGetAttribute(reader, BAD_CAST "bundle");
        if (bundle && ts->bundle_path) {
            nx_diag_add(rc->diag, rc->file, line,
                        "<netext-tenant>: a second bundle (first at %s:%u)", ts->loc.file,
                        ts->loc.line);
        } else if (bundle) {
            ts->bundle_path = relative_to(rc->file, (const char *)bundle);
            ts->loc.file = rc->file;
            ts->loc.line = line;
        }
        xmlFree(bundle);
    }
    return 0;
}

static const char *intern_file(struct nx_model *m, const char *name)
{
    NX_GROW(m->files, m->alloc_files, m->n_files + 1);
    m->files[m->n_files] = nx_strdup(name);
    return m->files[m->n_files++];
}

static int read_with(struct nx_model *m, xmlTextReaderPtr reader, const char *file,
                     struct nx_diag *diag)
{
    struct reader_ctx rc = {m, diag, file, 0};
    pthread_once(&schema_once, schema_compile);
    if (!schema)
        return nx_error_set(NX_EX_SOFTWARE, "internal error: the plan schema does not compile");
    xmlTextReaderSetStructuredErrorHandler(reader, reader_error, &rc);
    if (xmlTextReaderRelaxNGSetSchema(reader, schema) != 0) {
        m->n_syntax_errors++;
        nx_diag_add(diag, file, 0, "cannot start schema validation");
        return 0;
    }
    int ret;
    bool root_seen = false;
    while ((ret = xmlTextReaderRead(reader)) == 1) {
        int type = xmlTextReaderNodeType(reader);
        if (type == XML_READER_TYPE_DOCUMENT_TYPE) {
            nx_diag_add(diag, file, (unsigned)xmlTextReaderGetParserLineNumber(reader),
                        "a DOCTYPE is not allowed in a plan (entities are never expanded)");
            rc.errors++;
            m->n_syntax_errors++;
            break;
        }
        if (type != XML_READER_TYPE_ELEMENT)
            continue;
        int depth = xmlTextReaderDepth(reader);
        if (depth == 0) {
            root_seen = true;
            if (root_kind(&rc, reader) < 0)
                break;
            continue;
        }
        if (depth != 1)
            continue;
        xmlNodePtr node = xmlTextReaderExpand(reader);
        if (!node)
            break; /* the error handler has the parse error */
        read_top(&rc, node);
        /* move past the subtree; the reader validates and frees it */
        while ((ret = xmlTextReaderNext(reader)) == 1) {
            type = xmlTextReaderNodeType(reader);
            if (type == XML_READER_TYPE_ELEMENT && xmlTextReaderDepth(reader) == 1) {
                node = xmlTextReaderExpand(reader);
                if (!node)
                    break;
                read_top(&rc, node);
                continue;
            }
            if (type == XML_READER_TYPE_END_ELEMENT && xmlTextReaderDepth(reader) == 0)
                break;
        }
        if (ret != 1)
            break;
    }
    if (ret < 0 && rc.errors == 0) {
        nx_diag_add(diag, file, (unsigned)xmlTextReaderGetParserLineNumber(reader),
                    "malformed XML");
        m->n_syntax_errors++;
    }
    if (ret >= 0 && !root_seen && rc.errors == 0) {
        nx_diag_add(diag, file, 1, "empty document");
        m->n_syntax_errors++;
    }
    if (rc.errors == 0 && xmlTextReaderIsValid(reader) != 1 && root_seen) {
        nx_diag_add(diag, file, 0, "schema: document is not a valid netext-plan");
        m->n_syntax_errors++;
    }
    return 0;
}

int nx_plan_read_memory(struct nx_model *m, const char *buf, size_t len, const char *name,
                        struct nx_diag *diag)
{
    nx_xml_init();
    const char *file = intern_file(m, name);
    if (len > NX_PLAN_MAX_BYTES) {
        m->n_syntax_errors++;
        nx_diag_add(diag, file, 0, "plan is larger than %lu MiB", NX_PLAN_MAX_BYTES >> 20);
        return 0;
    }
    if (len == 0) {
        nx_diag_add(diag, file, 1, "empty document");
        m->n_syntax_errors++;
        return 0;
    }
    if (refuse_doctype(m, file, buf, len, diag))
        return 0;
    xmlTextReaderPtr r = xmlReaderForMemory(buf, (int)len, file, NULL, nx_xml_parse_options());
    if (!r)
        return nx_error_set(NX_EX_SOFTWARE, "%s: cannot create XML reader", file);
    int ret = read_with(m, r, file, diag);
    xmlFreeTextReader(r);
    return ret;
}

int nx_plan_read_file(struct nx_model *m, const char *path, struct nx_diag *diag)
{
    nx_xml_init();
    struct stat st;
    if (stat(path, &st) != 0)
        return nx_error_set(NX_EX_NOINPUT, "%s: %s", path, strerror(errno));
    const char *file = intern_file(m, path);
    if (!S_ISREG(st.st_mode)) {
        m->n_syntax_errors++;
        nx_diag_add(diag, file, 0, "not a regular file");
        return 0;
    }
    if ((unsigned long)st.st_size > NX_PLAN_MAX_BYTES) {
        m->n_syntax_errors++;
        nx_diag_add(diag, file, 0, "plan is larger than %lu MiB", NX_PLAN_MAX_BYTES >> 20);
        return 0;
    }
    if (st.st_size == 0) {
        nx_diag_add(diag, file, 1, "empty document");
        m->n_syntax_errors++;
        return 0;
    }
    char head[65536];
    FILE *f = fopen(path, "rb");
    if (!f)
        return nx_error_set(NX_EX_NOINPUT, "%s: %s", path, strerror(errno));
    size_t got = fread(head, 1, sizeof(head), f);
    fclose(f);
    if (refuse_doctype(m, file, head, got, diag))
        return 0;
    xmlTextReaderPtr r = xmlReaderForFile(path, NULL, nx_xml_parse_options());
    if (!r)
        return nx_error_set(NX_EX_NOINPUT, "%s: cannot open", path);
    int ret = read_with(m, r, file, diag);
    xmlFreeTextReader(r);
    return ret;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int nx_plan_read_path(struct nx_model *m, const char *path, struct nx_diag *diag)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return nx_error_set(NX_EX_NOINPUT, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return nx_plan_read_file(m, path, diag);
    DIR *d = opendir(path);
    if (!d)
        return nx_error_set(NX_EX_NOINPUT, "%s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, alloc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".xml") != 0)
            continue;
        NX_GROW(names, alloc, n + 1);
        names[n++] = nx_asprintf("%s/%s", path, de->d_name);
    }
    closedir(d);
    nx_qsort(names, n, sizeof(*names), cmp_str);
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        if (ret == 0 && nx_plan_read_file(m, names[i], diag) < 0)
            ret = -1;
        free(names[i]);
    }
    free(names);
    if (n == 0 && ret == 0)
        return nx_error_set(NX_EX_NOINPUT, "%s: no *.xml plan files in this directory", path);
    return ret;
}
