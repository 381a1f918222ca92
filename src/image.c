/* image.c: reading and identifying the appliance image. */
#include "config.h"

#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

/* An ISO 9660 image has its first volume descriptor at 32 KiB: type, "CD001". */
#define ISO_VD_OFFSET 32768
#define ISO_MAGIC "CD001"

void nx_image_free(struct nx_image *img)
{
    if (!img)
        return;
    free(img->file);
    free(img->name);
    free(img);
}

int nx_image_load(const char *file, struct nx_image **out)
{
    int ret = -1;
    struct nx_image *img = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *buf = NULL;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nx_error_set(NX_EX_NOINPUT, "appliance image %s: %s", file, strerror(errno));
        goto cleanup;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        nx_error_set(NX_EX_NOINPUT, "appliance image %s: not a regular file", file);
        goto cleanup;
    }
    enum { CHUNK = 1 << 20 };
    buf = nx_malloc(CHUNK);
    md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        nx_error_set(NX_EX_SOFTWARE, "appliance image %s: SHA-256 unavailable", file);
        goto cleanup;
    }
    uint64_t total = 0;
    bool magic = false;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            nx_error_set(NX_EX_IOERR, "appliance image %s: %s", file, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        if (total == 0 && (size_t)n >= ISO_VD_OFFSET + 6)
            magic = memcmp(buf + ISO_VD_OFFSET + 1, ISO_MAGIC, 5) == 0;
        EVP_DigestUpdate(md, buf, (size_t)n);
        total += (uint64_t)n;
    }
    if (!magic) {
        nx_error_set(NX_EX_DATAERR, "appliance image %s: not an ISO 9660 image", file);
        goto cleanup;
    }
    unsigned char d[32];
    unsigned dlen = 0;
    EVP_DigestFinal_ex(md, d, &dlen);
    img = nx_calloc(1, sizeof(*img));
    for (unsigned i = 0; i < 32; i++)
        snprintf(img->digest + 2 * i, 3, "%02x", d[i]);
    memcpy(img->id, img->digest, 16);
    img->id[16] = '\0';
    img->size = total;
    img->name = nx_asprintf("netext-appliance-%s.iso", img->id);
    img->file = realpath(file, NULL);
    if (!img->file)
        img->file = nx_strdup(file);
    *out = img;
    img = NULL;
    ret = 0;
cleanup:
    nx_image_free(img);
    EVP_MD_CTX_free(md);
    free(buf);
    if (fd >= 0)
        close(fd);
    return ret;
}
