/* desired.h: the desired state, a pure function of the model.
 *
 * One provider-side appliance per (tenant, replication-target host); its
 * vNICs are one on the SP production network plus one per distinct VLAN across
 * every hardware plan the tenant has on that host. No I/O. */
#ifndef NX_DESIRED_H
#define NX_DESIRED_H

#include "model.h"

enum nx_role { NX_ROLE_PROVIDER = 0, NX_ROLE_TENANT };
const char *nx_role_name(enum nx_role r);
bool nx_role_parse(const char *s, enum nx_role *out);

enum nx_vnic_kind { NX_VNIC_PRODUCTION = 0, NX_VNIC_VLAN };

/* The MACs a provider may assign: prefix with its low `bits` bits free. */
struct nx_mac_range {
    uint8_t prefix[6];
    unsigned bits; /* 8..46 */
};
/* Locally administered unicast, 40 free bits: 02:xx:xx:xx:xx:xx. */
extern const struct nx_mac_range nx_mac_range_local;

struct nx_vnic_spec {
    enum nx_vnic_kind kind;
    char *label; /* the plan's network name (production: the production network) */
    char *network; /* what to connect to: production network, or the host's vlan-switch */
    unsigned vlan; /* 0: none */
    uint8_t mac[6];
};

/* Bump when the meaning of a marker or spec changes: an appliance marked with
 * a newer revision is never touched by this version. */
#define NX_MODEL_REVISION 1

/* An SP network extended to the tenant (from the tenant bundle). */
struct nx_extended_net {
    char *name; /* the network's name in the SP's hardware plan */
    unsigned vlan; /* its VLAN on the SP side */
    char *sp_host; /* the SP plan host whose appliance carries it */
};

struct nx_appliance_spec {
    enum nx_role role;
    const struct nx_tenant *tenant; /* borrowed from the model */
    const struct nx_host *host;
    char *net; /* tenant side: the production network this appliance serves */
    /* tenant side: the extended network(s) this appliance bridges to its
     * production network (one per appliance today) */
    struct nx_extended_net *extends;
    size_t n_extends;
    char *name; /* VM name */
    char *key; /* identity: "role\ntenant\nhost" */
    struct nx_placement placement; /* resolved; strings borrowed */
    const struct nx_address *addr; /* NULL: DHCP */
    bool power_on;
    const struct nx_image *image; /* the image it boots (the model's); NULL: none */
    struct nx_vnic_spec *vnics; /* production first, then VLANs ascending */
    size_t n_vnics;
    /* Not computed here: payload.c renders the bootstrap document (see
     * payload.h) with the spec's tunnel credentials and sets these. */
    char *payload; /* NULL until rendered, and again once dropped */
    size_t payload_len;
    char digest[65]; /* SHA-256 of the payload, hex; "" until rendered */
};

struct nx_desired {
    struct nx_appliance_spec **items; /* sorted by key */
    size_t n, alloc;
};

/* The hosts a tenant has appliances on, as indices into m->hosts, ascending.
 * Valid only after nx_validate() returned 0. Caller frees *out. */
size_t nx_tenant_hosts(const struct nx_model *m, const struct nx_tenant *t, size_t **out);

/* ranges[i] is the MAC range of m->hosts[i]'s provider (NULL: all local).
 * The model must have passed nx_validate(). */
struct nx_desired *nx_desired_compute(const struct nx_model *m,
                                      const struct nx_mac_range *const *ranges);
void nx_desired_free(struct nx_desired *d);

/* net: the tenant side's production network, NULL for provider-side appliances */
char *nx_appliance_key(enum nx_role role, const char *tenant, const char *host, const char *net);
char *nx_appliance_name(enum nx_role role, const char *tenant, const char *host, const char *net);

#endif
