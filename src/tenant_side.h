/* tenant_side.h: the tenant side of netext-deploy.
 *
 * The provider exports, per tenant, a *bundle*: the networks extended to the
 * tenant (name, SP-side VLAN, SP host), the cloud gateway endpoint and the
 * tenant's tunnel credentials. The tenant describes its source host(s) and,
 * optionally, custom tenant-side appliances in a <netext-tenant> document
 * (netext-plan(5)); netext-deploy then keeps one tenant-side appliance per
 * production network, through the same providers and reconcile core.
 *
 * Default resolution (nx_tside_resolve, pure), documented in netext-deploy(8):
 *  - <no-appliances/>: none (no partial failover planned);
 *  - custom <appliance> elements: each on its host; production-network as
 *    given, else the network most production VMs on that host use (a tie is
 *    an error naming the candidates); extends as given ("NAME" or
 *    "NAME@SPHOST"), else the bundle network of the same name, else the only
 *    bundle network;
 *  - no <appliance>: on the (single) source host, one appliance per bundle
 *    network whose name is a network production VMs use; if the bundle has
 *    one network and no name matches, the network most production VMs use.
 *    Bundle networks left over are reported as not extended. */
#ifndef NX_TENANT_SIDE_H
#define NX_TENANT_SIDE_H

#include "error.h"
#include "model.h"
#include "observed.h"
#include "strbuf.h"

#define NX_BUNDLE_NS "urn:netext-deploy:bundle:1"

/* Tunnel credentials carried by a bundle (PEM; keys are secret). May be
 * NULL. Bundles carry the tenant CA and the tenant's client CA (pki.h), from
 * which each tenant-side appliance's certificate is derived; cert_pem/key_pem
 * (one certificate shared by all, as bundles had before) are still read. */
struct nx_bundle_creds {
    const char *ca_pem;
    const char *cert_pem;
    const char *key_pem;
    const char *clients_ca_pem;
    const char *clients_key_pem;
};

/* Render tenant t's bundle from a validated provider model. */
void nx_bundle_render(struct strbuf *sb, const struct nx_model *m, const struct nx_tenant *t,
                      const struct nx_bundle_creds *creds);
/* Read a bundle into a tenant-side model: its networks, gateway and tenant.
 * Problems go to diag ("file:line: ..."); -1 with nx_error if unreadable. */
int nx_bundle_read(struct nx_model *m, const char *path, struct nx_diag *diag);
/* The same from memory (name is used in messages). */
int nx_bundle_parse(struct nx_model *m, const char *data, size_t len, const char *name,
                    struct nx_diag *diag);

/* Checks of a tenant-side model (called by nx_validate for NX_KIND_TENANT). */
void nx_validate_tenant_side(struct nx_model *m, struct nx_diag *diag);

/* Resolve defaults. usage[i]/n_usage[i]: network usage on m->hosts[i], or
 * usage[i] == NULL when it could not be detected. Errors go to diag, remarks
 * (networks not extended, appliances omitted) to notes. Pure. */
void nx_tside_resolve(struct nx_model *m, struct nx_net_usage *const *usage, const size_t *n_usage,
                      struct nx_diag *diag, struct nx_diag *notes);

/* Which hosts need network usage to resolve defaults (bool per m->hosts). */
void nx_tside_needs_usage(const struct nx_model *m, bool *need);

#endif
