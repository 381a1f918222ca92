/* libvirt_image.c: the appliance image on libvirt (docs/internals/libvirt.md).
 *
 * - Local hypervisors use the ISO file in place. With an image-store (a
 *   storage pool; required on remote hosts) the image is a volume
 *   netext-appliance-<id>.iso there, uploaded when missing or different
 *   (checked by size and SHA-256, once per pool and run); a partial upload
 *   is deleted.
 * - set-image: the persistent definition gets the new CD-ROM (rendered by
 *   libvirt_domain.c) and the marker's image id; it boots at the next start. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "libvirt.h"
#include "log.h"
#include "util.h"
#include "xml.h"

static int send_file(virStreamPtr st, char *data, size_t n, void *opaque)
{
    (void)st;
    ssize_t r;
    do
        r = read(*(int *)opaque, data, n);
    while (r < 0 && errno == EINTR);
    return (int)r;
}

struct hash_sink {
    EVP_MD_CTX *md;
    unsigned long long n;
};

static int hash_data(virStreamPtr st, const char *data, size_t n, void *opaque)
{
    (void)st;
    struct hash_sink *h = opaque;
    EVP_DigestUpdate(h->md, data, n);
    h->n += n;
    return (int)n;
}

/* whether vol holds exactly the image: same capacity and SHA-256 */
static int volume_is_image(struct lv_conn *c, virStorageVolPtr vol, const struct nx_image *img,
                           bool *same)
{
    virStorageVolInfo info;
    *same = false;
    if (virStorageVolGetInfo(vol, &info) < 0)
        return lv_error(NX_EX_UNAVAILABLE, img->name);
    if (info.capacity != img->size)
        return 0;
    int ret = -1;
    struct hash_sink h = {EVP_MD_CTX_new(), 0};
    virStreamPtr st = virStreamNew(c->conn, 0);
    if (!h.md || !st || !EVP_DigestInit_ex(h.md, EVP_sha256(), NULL)) {
        lv_error(NX_EX_SOFTWARE, img->name);
        goto cleanup;
    }
    if (virStorageVolDownload(vol, st, 0, img->size, 0) < 0 ||
        virStreamRecvAll(st, hash_data, &h) < 0 || virStreamFinish(st) < 0) {
        virStreamAbort(st);
        lv_error(NX_EX_UNAVAILABLE, img->name);
        goto cleanup;
    }
    unsigned char d[32];
    unsigned dl = 0;
    char hex[65];
    EVP_DigestFinal_ex(h.md, d, &dl);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    *same = h.n == img->size && strcmp(hex, img->digest) == 0;
    ret = 0;
cleanup:
    if (st)
        virStreamFree(st);
    EVP_MD_CTX_free(h.md);
    return ret;
}

static int upload_image(struct lv_conn *c, virStoragePoolPtr pool, const struct nx_image *img)
{
    int ret = -1, fd = -1;
    virStreamPtr st = NULL;
    struct strbuf xml = STRBUF_INIT;
    strbuf_addstr(&xml, "<volume><name>");
    strbuf_add_xml_escaped(&xml, img->name);
    strbuf_addf(&xml,
                "</name><capacity unit='bytes'>%llu</capacity>"
                "<target><format type='raw'/></target></volume>",
                (unsigned long long)img->size);
    virStorageVolPtr vol = virStorageVolCreateXML(pool, xml.buf, 0);
    if (!vol) {
        lv_error(NX_EX_UNAVAILABLE, img->name);
        goto cleanup;
    }
    fd = open(img->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nx_error_set(NX_EX_NOINPUT, "%s: %s", img->file, strerror(errno));
        goto cleanup;
    }
    st = virStreamNew(c->conn, 0);
    if (!st || virStorageVolUpload(vol, st, 0, img->size, 0) < 0 ||
        virStreamSendAll(st, send_file, &fd) < 0 || virStreamFinish(st) < 0) {
        lv_error(NX_EX_UNAVAILABLE, img->name);
        if (st)
            virStreamAbort(st);
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (ret < 0 && vol)
        virStorageVolDelete(vol, 0); /* never leave a partial image behind */
    if (vol)
        virStorageVolFree(vol);
    if (st)
        virStreamFree(st);
    if (fd >= 0)
        close(fd);
    strbuf_release(&xml);
    return ret;
}

int lv_stage_image(struct nx_conn *base, const struct nx_appliance_spec *s)
{
    struct lv_conn *c = base->priv;
    const char *store = s->host->image_store;
    if (!s->image || !store || nx_map_get(&c->staged, store))
        return 0; /* the file is used in place, or staged already in this run */
    virStoragePoolPtr pool = virStoragePoolLookupByName(c->conn, store);
    if (!pool)
        return lv_error(NX_EX_UNAVAILABLE, store);
    int ret = -1;
    bool same = false;
    virStorageVolPtr vol = virStorageVolLookupByName(pool, s->image->name);
    if (vol && volume_is_image(c, vol, s->image, &same) < 0)
        goto cleanup;
    if (vol && !same) {
        nx_info("%s: volume %s differs from the image; uploading it again", store, s->image->name);
        if (virStorageVolDelete(vol, 0) < 0) {
            lv_error(NX_EX_UNAVAILABLE, s->image->name);
            goto cleanup;
        }
    }
    if (!same) {
        nx_info("uploading %s to storage pool %s (%llu bytes)", s->image->name, store,
                (unsigned long long)s->image->size);
        if (upload_image(c, pool, s->image) < 0)
            goto cleanup;
        virStoragePoolRefresh(pool, 0);
    }
    nx_map_put(&c->staged, store, (void *)1);
    ret = 0;
cleanup:
    if (vol)
        virStorageVolFree(vol);
    virStoragePoolFree(pool);
    return ret;
}

/* The persistent definition with spec's image in its CD-ROM (and the marker
 * saying so); everything else stays as it is. */
int lv_set_image(struct nx_conn *base, const struct nx_appliance_obs *o,
                 const struct nx_appliance_spec *s)
{
    struct lv_conn *c = base->priv;
    virDomainPtr d = lv_lookup_domain(c, o);
    if (!d)
        return -1;
    int ret = -1;
    char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    xmlDocPtr doc = xml ? nx_xml_read_memory(xml, strlen(xml), "domain XML", NX_EX_PROTOCOL) : NULL;
    struct strbuf disk = STRBUF_INIT;
    xmlDocPtr frag = NULL;
    xmlChar *out = NULL;
    if (!xml) {
        lv_error(NX_EX_UNAVAILABLE, o->name);
        goto cleanup;
    }
    if (!doc)
        goto cleanup;
    if (lv_render_disk(c, s, &disk) < 0)
        goto cleanup;
    frag = nx_xml_read_memory(disk.buf, disk.len, "disk XML", NX_EX_SOFTWARE);
    if (!frag)
        goto cleanup;
    xmlNodePtr root = xmlDocGetRootElement(doc), devs = NULL, os = NULL, md = NULL;
    for (xmlNodePtr e = nx_xml_first_elem(root); e; e = nx_xml_next_elem(e)) {
        if (nx_xml_is(e, NULL, "devices"))
            devs = e;
        else if (nx_xml_is(e, NULL, "os"))
            os = e;
        else if (nx_xml_is(e, NULL, "metadata"))
            md = e;
    }
    if (!devs || !os || !md) {
        nx_error_set(NX_EX_PROTOCOL, "%s: domain XML without devices, os or metadata", o->name);
        goto cleanup;
    }
    for (xmlNodePtr e = nx_xml_first_elem(devs), next; e; e = next) {
        next = nx_xml_next_elem(e);
        if (nx_xml_is(e, NULL, "disk") && nx_str_eq(nx_xml_attr(e, "device"), "cdrom")) {
            xmlUnlinkNode(e);
            xmlFreeNode(e);
        }
    }
    xmlNodePtr nd = xmlDocCopyNode(xmlDocGetRootElement(frag), doc, 1);
    xmlNodePtr first = nx_xml_first_elem(devs);
    if (first)
        xmlAddPrevSibling(first, nd);
    else
        xmlAddChild(devs, nd);
    bool boot = false;
    for (xmlNodePtr e = nx_xml_first_elem(os); e; e = nx_xml_next_elem(e))
        boot |= nx_xml_is(e, NULL, "boot") && nx_str_eq(nx_xml_attr(e, "dev"), "cdrom");
    if (!boot)
        xmlSetProp(xmlNewChild(os, NULL, BAD_CAST "boot", NULL), BAD_CAST "dev", BAD_CAST "cdrom");
    for (xmlNodePtr e = nx_xml_first_elem(md); e; e = nx_xml_next_elem(e))
        if (nx_xml_is(e, NX_MARKER_NS, "appliance"))
            xmlSetProp(e, BAD_CAST "image", BAD_CAST s->image->id);
    int len = 0;
    xmlDocDumpMemory(doc, &out, &len);
    virDomainPtr nd2 = out ? virDomainDefineXML(c->conn, (const char *)out) : NULL;
    if (!nd2) {
        lv_error(NX_EX_UNAVAILABLE, o->name);
        goto cleanup;
    }
    virDomainFree(nd2);
    ret = 0;
cleanup:
    xmlFree(out);
    xmlFreeDoc(frag);
    xmlFreeDoc(doc);
    strbuf_release(&disk);
    if (xml)
        nx_free_secret(xml);
    virDomainFree(d);
    return ret;
}
