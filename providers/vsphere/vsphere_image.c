/* vsphere_image.c: the appliance image on the hosts' datastores.
 *
 * The ISO lives at "[DS] netext-deploy/<image name>" on the host's image-store
 * datastore (default: the appliance's), uploaded through the datastore file
 * endpoint (/folder, in the SOAP session) when missing or of another size: one
 * HEAD, at most one MakeDirectory + PUT, per datastore and run (c->staged).
 * set-image puts it in the VM's CD/DVD drive in one ReconfigVM_Task. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "vsphere_image.h"
#include "vsphere_inventory.h"
#include "vsphere_placement.h"
#include "vsphere_session.h"
#include "vsphere_spec.h"
#include "vsphere_tasks.h"

static void url_escape(struct strbuf *sb, const char *s, bool keep_slash)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
            (keep_slash && ch == '/'))
            strbuf_addch(sb, (char)ch);
        else
            strbuf_addf(sb, "%%%02X", ch);
    }
}

/* c->lock held: the datacenter's inventory path ("DC0", "Folder/DC1") */
static char *dc_path_locked(const struct vs_conn *c, const struct vs_obj *dc)
{
    const char *names[64];
    size_t n = 0;
    for (const struct vs_obj *o = dc; o && n < NX_ARRAY_SIZE(names);) {
        names[n++] = o->name ? o->name : "";
        const struct vs_obj *p = vs_inv_get(c, o->parent);
        if (!vs_is_type(p, "Folder") || nx_str_eq(p->id, c->root_folder))
            break;
        o = p;
    }
    struct strbuf sb = STRBUF_INIT;
    while (n--)
        strbuf_addf(&sb, "%s%s", sb.len ? "/" : "", names[n]);
    return strbuf_detach(&sb, NULL);
}

/* /folder/netext-deploy/NAME?dcPath=DC&dsName=DS */
static char *image_url_path(const char *dc_path, const char *ds_name, const struct nx_image *img)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, "/folder/" VS_IMAGE_DIR "/");
    url_escape(&sb, img->name, false);
    strbuf_addstr(&sb, "?dcPath=");
    url_escape(&sb, dc_path, false);
    strbuf_addstr(&sb, "&dsName=");
    url_escape(&sb, ds_name, false);
    return strbuf_detach(&sb, NULL);
}

/* c->lock held: what staging img on ds gave earlier in this run */
static const struct vs_staged *find_staged(const struct vs_conn *c, const char *ds,
                                           const struct nx_image *img)
{
    for (size_t i = 0; i < c->n_staged; i++)
        if (!strcmp(c->staged[i].ds, ds) && !strcmp(c->staged[i].image, img->name))
            return &c->staged[i];
    return NULL;
}

/* c->lock held: the answer of an earlier staging (0, or -1 with its error) */
static int staged_result(const struct vs_staged *st)
{
    if (!st->error)
        return 0;
    return nx_error_set(st->code, "%s (failed earlier in this run; not tried again)", st->error);
}

/* [DS] netext-deploy, made when missing (an existing one is fine) */
static int make_image_dir(struct vs_conn *c, const char *ds_name, const char *dc)
{
    if (!c->file_manager)
        return 0; /* the PUT then has to make it */
    struct strbuf sb = STRBUF_INIT;
    struct nx_soap_resp r = {0};
    struct nx_soap_fault f = {0};
    nx_soap_begin(&sb, "MakeDirectory", "FileManager", c->file_manager);
    nx_soap_addf(&sb, "name", "[%s] " VS_IMAGE_DIR, ds_name);
    nx_soap_add_moref(&sb, "datacenter", "Datacenter", dc);
    nx_soap_add(&sb, "createParentDirectories", "true");
    nx_soap_end(&sb, "MakeDirectory");
    /* making a directory again does no harm: repeated on transient failures */
    int rc = vs_call_ex(c, "MakeDirectory", sb.buf, &r, &f, true, NULL, NULL);
    if (rc == 1 && !strcmp(f.type, "FileAlreadyExists")) {
        nx_error_clear();
        rc = 0;
    }
    if (rc != 0) {
        nx_error_prefix("making [%s] " VS_IMAGE_DIR ": ", ds_name);
        rc = -1;
    }
    nx_soap_resp_release(&r);
    nx_soap_fault_release(&f);
    strbuf_release(&sb);
    return rc;
}

struct files_args {
    struct vs_conn *c;
    const char *method, *path;
    const struct nx_image *img;
    int fd;
    struct nx_http_response *resp;
    long long *length;
};

static int files_attempt(void *ctx, int k)
{
    struct files_args *a = ctx;
    (void)k;
    if (!strcmp(a->method, "HEAD"))
        return nx_http_head(a->c->files, a->path, a->resp, a->length);
    return nx_http_put_file(a->c->files, a->path, "application/octet-stream", a->fd, a->img->size,
                            a->resp);
}

/* a transport failure that may go away, or 502/503/504 */
static bool files_again(void *ctx, int rc)
{
    struct files_args *a = ctx;
    if (rc < 0)
        return nx_http_transient(a->c->files);
    if (a->resp->status != 502 && a->resp->status != 503 && a->resp->status != 504)
        return false;
    /* for the retry's log line; the caller reads the status of the last */
    nx_error_set(NX_EX_UNAVAILABLE, "%s %s: HTTP %ld", a->method, a->path, a->resp->status);
    return true;
}

/* A HEAD or PUT through c->files, repeated on transient failures (both are
 * idempotent: a PUT sends the same bytes again). */
static int files_request(struct vs_conn *c, const char *method, const char *path,
                         const struct nx_image *img, int fd, struct nx_http_response *resp,
                         long long *length)
{
    struct files_args a = {c, method, path, img, fd, resp, length};
    return nx_retry_run("vsphere", method, files_attempt, files_again, &a);
}

/* c->stage_lock held: make img present on the datastore (one HEAD; when
 * missing or of another size, MakeDirectory and one PUT) */
static int stage_on(struct vs_conn *c, const struct nx_image *img, const char *ds_name,
                    const char *dc, const char *dc_path)
{
    int ret = -1, fd = -1;
    struct nx_http_response resp;
    long long len = -1;
    char *path = image_url_path(dc_path, ds_name, img);
    nx_http_response_init(&resp);
    if (!c->files && !(c->files = nx_soap_http_clone(c->soap)))
        goto cleanup;
    pthread_mutex_lock(&c->lock);
    c->n_image_checks++;
    pthread_mutex_unlock(&c->lock);
    if (files_request(c, "HEAD", path, img, -1, &resp, &len) < 0)
        goto cleanup;
    if (resp.status == 200 && len >= 0 && (unsigned long long)len == img->size) {
        nx_debug("vsphere: [%s] " VS_IMAGE_DIR "/%s is there (%lld bytes)", ds_name, img->name,
                 len);
        ret = 0;
        goto cleanup;
    }
    if (resp.status == 401 || resp.status == 403) {
        nx_error_set(NX_EX_NOPERM, "HEAD %s: HTTP %ld (datastore file access refused)", path,
                     resp.status);
        goto cleanup;
    }
    if (resp.status == 200)
        nx_info("vsphere: [%s] " VS_IMAGE_DIR "/%s has %lld bytes, the image %llu: uploading it "
                "again",
                ds_name, img->name, len, (unsigned long long)img->size);
    else if (resp.status != 404)
        nx_info("vsphere: HEAD %s: HTTP %ld; uploading the image", path, resp.status);
    if (make_image_dir(c, ds_name, dc) < 0)
        goto cleanup;
    fd = open(img->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nx_error_set(NX_EX_NOINPUT, "%s: %s", img->file, strerror(errno));
        goto cleanup;
    }
    nx_info("vsphere: uploading %s to [%s] " VS_IMAGE_DIR "/ (%llu bytes)", img->name, ds_name,
            (unsigned long long)img->size);
    double t0 = nx_monotonic_s();
    if (files_request(c, "PUT", path, img, fd, &resp, NULL) < 0)
        goto cleanup;
    double dt = nx_monotonic_s() - t0;
    if (resp.status != 200 && resp.status != 201 && resp.status != 204) {
        nx_error_set(resp.status == 401 || resp.status == 403 ? NX_EX_NOPERM : NX_EX_UNAVAILABLE,
                     "PUT %s: HTTP %ld%s%.200s", path, resp.status, resp.body.len ? ": " : "",
                     resp.body.len ? resp.body.buf : "");
        goto cleanup;
    }
    pthread_mutex_lock(&c->lock);
    c->n_uploads++;
    c->upload_bytes += img->size;
    c->upload_seconds += dt;
    pthread_mutex_unlock(&c->lock);
    nx_info("vsphere: uploaded %s to [%s] (%llu bytes in %.2f s)", img->name, ds_name,
            (unsigned long long)img->size, dt);
    ret = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    nx_http_response_release(&resp);
    free(path);
    return ret;
}

int vs_stage_image(struct nx_conn *base, const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = base->priv;
    const struct nx_image *img = spec->image;
    struct vs_resolved r;
    struct vs_obj *ds = NULL;
    char *ds_id = NULL, *ds_name = NULL, *dc = NULL, *dc_path = NULL;
    int ret = -1;
    if (!img)
        return 0;
    memset(&r, 0, sizeof(r));
    if (vs_inventory_load(c) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    if (vs_resolve_place_locked(c, spec, &r) < 0 ||
        vs_image_datastore_locked(c, spec, &r, &ds) < 0) {
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
    const struct vs_staged *st = find_staged(c, ds->id, img);
    if (st) {
        ret = staged_result(st);
        pthread_mutex_unlock(&c->lock);
        return ret;
    }
    ds_id = nx_strdup(ds->id);
    ds_name = nx_strdup(ds->name ? ds->name : "");
    dc = nx_strdup(r.dc->id);
    dc_path = dc_path_locked(c, r.dc);
    pthread_mutex_unlock(&c->lock);

    /* one thread checks (and uploads); the others wait for its answer */
    pthread_mutex_lock(&c->stage_lock);
    pthread_mutex_lock(&c->lock);
    st = find_staged(c, ds_id, img);
    if (st)
        ret = staged_result(st);
    pthread_mutex_unlock(&c->lock);
    if (!st) {
        nx_error_clear();
        ret = stage_on(c, img, ds_name, dc, dc_path);
        pthread_mutex_lock(&c->lock);
        NX_GROW(c->staged, c->alloc_staged, c->n_staged + 1);
        struct vs_staged *n = &c->staged[c->n_staged++];
        n->ds = nx_strdup(ds_id);
        n->image = nx_strdup(img->name);
        n->error = ret < 0 ? nx_strdup(nx_error_msg()) : NULL;
        n->code = ret < 0 ? nx_error_code() : 0;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&c->stage_lock);
    free(ds_id);
    free(ds_name);
    free(dc);
    free(dc_path);
    return ret;
}

int vs_set_image(struct nx_conn *base, const struct nx_appliance_obs *obs,
                 const struct nx_appliance_spec *spec)
{
    struct vs_conn *c = base->priv;
    struct vs_resolved r;
    struct strbuf sb = STRBUF_INIT;
    char *what = nx_asprintf("putting image %s in %s", spec->image->name, obs->name);
    char *marker = NULL;
    int ret = -1;
    bool edit = false;
    memset(&r, 0, sizeof(r));
    if (vs_inventory_load(c) < 0)
        goto cleanup;
    pthread_mutex_lock(&c->lock);
    const struct vs_obj *vm = vs_inv_get(c, obs->id);
    if (vs_resolve_place_locked(c, spec, &r) < 0 ||
        vs_image_datastore_locked(c, spec, &r, &r.image_ds) < 0) {
        pthread_mutex_unlock(&c->lock);
        nx_error_prefix("%s: ", what);
        goto cleanup;
    }
    nx_soap_begin(&sb, "ReconfigVM_Task", "VirtualMachine", obs->id);
    strbuf_addstr(&sb, "<spec>");
    int rc = vs_spec_image_drive(&sb, vm, obs->powered_on, r.image_ds, spec->image, &edit);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0) {
        nx_error_set(NX_EX_FAILED, "%s: no CD/DVD drive and no free IDE unit for one", what);
        goto cleanup;
    }
    marker = vs_marker_text(spec, spec->image->id);
    vs_spec_option(&sb, VS_MARKER_KEY, marker);
    vs_spec_boot_cdrom(&sb);
    strbuf_addstr(&sb, "</spec>");
    nx_soap_end(&sb, "ReconfigVM_Task");
    /* an edit is the same when repeated; an add is not (two drives): the next
     * run sees what happened */
    struct vs_task_opts o = {.retry = edit};
    ret = vs_run_task(c, "ReconfigVM_Task", sb.buf, what, &o, NULL);
cleanup:
    free(marker);
    free(what);
    strbuf_release(&sb);
    return ret;
}

void vs_image_release(struct vs_conn *c)
{
    if (c->n_image_checks)
        nx_debug("vsphere: %s: appliance image: %lu datastore checks, %lu uploads (%llu bytes in "
                 "%.2f s)",
                 c->url, c->n_image_checks, c->n_uploads, c->upload_bytes, c->upload_seconds);
    nx_http_free(c->files);
    c->files = NULL;
    for (size_t i = 0; i < c->n_staged; i++) {
        free(c->staged[i].ds);
        free(c->staged[i].image);
        free(c->staged[i].error);
    }
    free(c->staged);
    c->staged = NULL;
    c->n_staged = c->alloc_staged = 0;
}
