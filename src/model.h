/* model.h: the subscription model, as read from netext-plan(5) files.
 *
 * The model is a plain tree of structs; every element remembers where it was
 * written (file and line) so that validation can say "file:line: what is wrong".
 * All strings are owned by the model and freed by nx_model_free(). */
#ifndef NX_MODEL_H
#define NX_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"
#include "image.h"

/* Limits every model obeys (validate.c and the tenant side check them). */
#define NX_TENANT_NAME_MAX 48
#define NX_HOST_NAME_MAX 24
#define NX_RESERVED_PORT 22 /* the appliance's management port: never a public IP rule */

struct nx_loc {
    const char *file; /* owned by the model's file list */
    unsigned line;
};

enum nx_addr_mode { NX_ADDR_DHCP = 0, NX_ADDR_STATIC };

#define NX_MAX_DNS 4

struct nx_address {
    enum nx_addr_mode mode;
    uint32_t ip; /* host byte order */
    unsigned prefix;
    bool has_gateway;
    uint32_t gateway;
    uint32_t dns[NX_MAX_DNS];
    size_t n_dns;
    struct nx_loc loc;
};

/* Where an appliance goes. Unset fields are NULL; see nx_placement_merge(). */
struct nx_placement {
    char *folder;
    char *resource_pool;
    char *datastore;
};

struct nx_host {
    struct nx_loc loc;
    char *name; /* the plan's name for this replication target */
    char *uri; /* connection URI of the hypervisor managing it */
    char *target; /* the hypervisor's own name for the host (default: name) */
    char *production_network; /* SP production network (portgroup, libvirt network, switch) */
    unsigned production_vlan; /* 0: untagged / as the network defines it */
    char *vlan_switch; /* switch/network carrying the tenant VLANs (provider-specific) */
    /* where the appliance image is kept on this hypervisor (image-store=;
     * provider-specific, see netext-plan(5)); NULL: the provider's default */
    char *image_store;
    struct nx_placement placement;
    size_t idx; /* index in nx_model.hosts, set by validation */
    bool invalid; /* validation found a problem with it */
};

struct nx_network {
    struct nx_loc loc;
    char *name;
    unsigned vlan; /* 1..4094 */
};

struct nx_hwplan {
    struct nx_loc loc;
    char *name;
    char *host_name;
    struct nx_host *host; /* resolved by validation; NULL if unknown */
    struct nx_network *networks;
    size_t n_networks, alloc_networks;
    bool invalid;
};

enum nx_proto { NX_PROTO_TCP = 0, NX_PROTO_UDP };

struct nx_rule {
    struct nx_loc loc;
    char *host_name; /* optional when the tenant has one host */
    uint32_t public_ip;
    unsigned public_port;
    uint32_t replica_ip;
    unsigned replica_port;
    enum nx_proto proto;
};

/* Per-host settings of a tenant's provider-side appliance. */
struct nx_tenant_appliance {
    struct nx_loc loc;
    char *host_name;
    struct nx_address addr;
};

struct nx_subscription {
    struct nx_loc loc;
    char *plan_name;
    struct nx_hwplan *plan; /* resolved by validation */
};

struct nx_tenant {
    struct nx_loc loc;
    char *name;
    struct nx_subscription *subs;
    size_t n_subs, alloc_subs;
    struct nx_tenant_appliance *appliances;
    size_t n_appliances, alloc_appliances;
    struct nx_rule *rules;
    size_t n_rules, alloc_rules;
    size_t idx; /* index in nx_model.tenants, set by validation */
    bool invalid; /* a problem in the tenant or in what it subscribes to */
};

struct nx_gateway {
    struct nx_loc loc;
    char *address; /* DNS name or IPv4 of the cloud gateway */
    unsigned port;
};

/* ---- tenant side: a <netext-tenant> document and the bundle it names ---- */

/* A network the SP extends to the tenant, from the tenant bundle. */
struct nx_bundle_net {
    struct nx_loc loc;
    char *name; /* as in the SP's hardware plan */
    unsigned vlan; /* SP-side VLAN */
    char *sp_host; /* SP plan host whose appliance carries it */
};

/* A tenant-side appliance as configured (custom settings). */
struct nx_tside_appliance {
    struct nx_loc loc;
    char *host_name; /* the source host */
    char *production_network; /* NULL: detected */
    char *extends; /* NULL: the bundle network of the same name, or the only one */
    struct nx_address addr;
};

/* A tenant-side appliance after defaults were resolved (see tenant_side.h). */
struct nx_tside_resolved {
    const struct nx_host *host;
    char *network; /* production network */
    const struct nx_bundle_net *ext; /* the extended network it bridges */
    const struct nx_address *addr; /* NULL: DHCP */
    struct nx_loc loc;
};

enum nx_model_kind { NX_KIND_NONE = 0, NX_KIND_PROVIDER, NX_KIND_TENANT };

struct nx_tenant_side {
    struct nx_loc loc;
    char *bundle_path; /* resolved against the file that names it */
    bool no_appliances;
    struct nx_loc no_appliances_loc;
    struct nx_tside_appliance *appliances;
    size_t n_appliances, alloc_appliances;
    /* from the bundle */
    bool bundle_loaded;
    char *bundle_file;
    struct nx_bundle_net *nets;
    size_t n_nets, alloc_nets;
    char *ca_pem, *cert_pem, *key_pem; /* tunnel credentials; key is secret */
    /* the client CA (pki.h): each appliance's certificate is derived from it;
     * NULL in bundles made before (one shared cert_pem/key_pem) */
    char *clients_ca_pem, *clients_key_pem; /* key is secret */
    /* after nx_tside_resolve() */
    bool resolved;
    struct nx_tside_resolved *res;
    size_t n_res, alloc_res;
};

struct nx_model {
    enum nx_model_kind kind; /* what the files describe */
    struct nx_tenant_side tside;
    size_t n_global_errors; /* problems not attributable to one tenant */
    char **files; /* every file read, for nx_loc.file */
    size_t n_files, alloc_files;
    size_t n_syntax_errors; /* malformed XML or schema violations seen while reading */

    bool has_gateway;
    struct nx_gateway gateway;
    bool has_defaults;
    struct nx_loc defaults_loc;
    struct nx_placement defaults;
    bool power_on; /* desired power state of appliances (default true) */
    /* <defaults image=>: the appliance image (resolved against the file that
     * names it); NULL: none named */
    char *image_file;
    struct nx_loc image_loc;
    /* the image every appliance boots, once loaded (nx_image_load, by the
     * caller of nx_desired_compute); NULL: none. Owned by the model. */
    struct nx_image *image;

    struct nx_host **hosts;
    size_t n_hosts, alloc_hosts;
    struct nx_hwplan **plans;
    size_t n_plans, alloc_plans;
    struct nx_tenant **tenants;
    size_t n_tenants, alloc_tenants;

    struct nx_map host_by_name, plan_by_name, tenant_by_name;
};

/* The folder and resource pool every provider-side appliance goes to unless
 * the plan says otherwise. */
#define NX_DEFAULT_FOLDER "Cloud_Connect_Replication"
#define NX_DEFAULT_POOL "Cloud_Connect_Replication"
#define NX_DEFAULT_GATEWAY_PORT 6180

struct nx_model *nx_model_new(void);
void nx_model_free(struct nx_model *m);

struct nx_host *nx_model_host(const struct nx_model *m, const char *name);
struct nx_hwplan *nx_model_plan(const struct nx_model *m, const char *name);
struct nx_tenant *nx_model_tenant(const struct nx_model *m, const char *name);

/* out = first non-NULL of (a, b) field by field; strings are borrowed. */
void nx_placement_merge(struct nx_placement *out, const struct nx_placement *a,
                        const struct nx_placement *b);
void nx_placement_release(struct nx_placement *p);

/* A tenant is acted on by batch mode only if it, its plans and their hosts
 * passed validation. */
bool nx_tenant_valid(const struct nx_tenant *t);

#endif
