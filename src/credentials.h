/* credentials.h: hypervisor credentials, from a file or the environment.
 *
 * Never from argv. The file must be a regular file owned by the caller and
 * not readable, writable or executable by group or others (0600 or 0400).
 * Format (netext-deploy(8)):
 *     # default for every URI
 *     user = administrator@vsphere.local
 *     password = secret
 *     [vsphere://vc2.example.com/sdk]
 *     user = other
 *     password = other-secret
 * Environment: NETEXT_DEPLOY_USER and NETEXT_DEPLOY_PASSWORD (defaults). */
#ifndef NX_CREDENTIALS_H
#define NX_CREDENTIALS_H

#include <stddef.h>

struct nx_cred_entry {
    char *uri; /* NULL: default */
    char *user;
    char *password;
};

struct nx_credentials {
    struct nx_cred_entry *entries;
    size_t n, alloc;
};

/* path may be NULL (environment only). -1 with nx_error set on error. */
int nx_credentials_load(struct nx_credentials *c, const char *path);
void nx_credentials_release(struct nx_credentials *c); /* wipes secrets */
/* The entry for uri (exact section, else default); NULL if none. */
const struct nx_cred_entry *nx_credentials_for(const struct nx_credentials *c, const char *uri);

#endif
