/* image.h: the appliance image a run attaches.
 *
 * The image is the ISO `make appliance` builds. A run reads it once: its
 * size and SHA-256 identify it. Appliances carry the image's id in their
 * marker, so a new image is one set-image action per appliance, and every
 * hypervisor store keeps it under a name of its own id
 * (netext-appliance-<id>.iso), so that appliances booted from an older image
 * keep it until they are changed. */
#ifndef NX_IMAGE_H
#define NX_IMAGE_H

#include <stdint.h>

/* The appliance image: the ISO `make appliance` builds (kernel, initramfs,
 * netext-bootstrap), which every appliance boots from its CD/DVD drive.
 * A model holds the one every appliance boots (model.h). */
struct nx_image {
    char *file; /* local path of the ISO */
    char *name; /* its file name on hypervisor stores: netext-appliance-<id>.iso */
    char id[17]; /* the first 16 hex digits of its SHA-256 (markers, store names) */
    char digest[65]; /* SHA-256, hex */
    uint64_t size; /* bytes */
};

/* Where `make install` puts the image ($(pkgdatadir)/appliance). */
#define NX_IMAGE_DEFAULT NX_PKGDATADIR "/appliance/netext-appliance.iso"

/* Read and hash file. Returns 0, or -1 with nx_error set (NX_EX_NOINPUT
 * when it cannot be read, NX_EX_DATAERR when it is not an ISO 9660 image). */
int nx_image_load(const char *file, struct nx_image **out);
/* accepts NULL */
void nx_image_free(struct nx_image *img);

#endif
