/* observed.h: what a provider reports it found on a hypervisor.
 *
 * The observed state the reconcile core compares with the desired state
 * (diff.h): appliances with their ownership marker and vNICs, and the
 * networks production VMs use (tenant_side.h). Providers fill these
 * (provider.h); nothing here does I/O. */
#ifndef NX_OBSERVED_H
#define NX_OBSERVED_H

#include "desired.h"

struct nx_vnic_obs {
    char *id; /* the provider's device id (device key, MAC, InstanceID) */
    char *network; /* in the same terms as nx_vnic_spec.network */
    unsigned vlan; /* 0: none */
    uint8_t mac[6];
};

/* The ownership marker every appliance carries. */
struct nx_marker {
    enum nx_role role;
    char *tenant;
    char *host; /* the plan's host name */
    char *net; /* tenant-side appliances: the production network served; else NULL */
    unsigned revision;
    char digest[65]; /* SHA-256 of the payload it carries, hex; "" if unknown */
    char image[17]; /* id of the appliance image it boots (nx_image.id); "" none */
};

struct nx_conn; /* provider.h */

struct nx_appliance_obs {
    char *id; /* provider-unique: libvirt UUID, vSphere moref, Hyper-V VM GUID */
    char *name;
    struct nx_marker marker;
    bool powered_on;
    struct nx_vnic_obs *vnics;
    size_t n_vnics, alloc_vnics;
    struct nx_conn *conn; /* set by the core: where it lives */
};

struct nx_obs_list {
    struct nx_appliance_obs **items;
    size_t n, alloc;
};

/* How many production (non-appliance) VMs use a network on a host, for the
 * tenant side's default production-network detection. */
struct nx_net_usage {
    char *network; /* in the same terms as nx_vnic_spec.network */
    unsigned vms;
};

/* Helpers for providers (observed.c). Free functions accept NULL. */
void nx_obs_free(struct nx_appliance_obs *o);
void nx_obs_list_release(struct nx_obs_list *l);
void nx_obs_list_add(struct nx_obs_list *l, struct nx_appliance_obs *o);
struct nx_vnic_obs *nx_obs_add_vnic(struct nx_appliance_obs *o);
void nx_marker_from_spec(struct nx_marker *m, const struct nx_appliance_spec *spec);
/* m->image = id when id is 16 hex digits, else "" */
void nx_marker_set_image(struct nx_marker *m, const char *id);
void nx_net_usage_free(struct nx_net_usage *u, size_t n);
void nx_marker_release(struct nx_marker *m);

/* Text form of the marker, for providers that keep it in a string field
 * (vSphere annotation, Hyper-V Notes):
 *   "netext-deploy:1 role=provider tenant=acme host=esx1 revision=1 digest=<hex>"
 * (tenant-side appliances add " net=<production network>"; appliances with an
 * image " image=<id>", after digest)
 * Values are percent-encoded. decode returns -1 (nothing set) if the text is
 * not a marker. */
char *nx_marker_encode(const struct nx_marker *m);
int nx_marker_decode(const char *text, struct nx_marker *m);

/* Namespace and element of the marker in XML-capable carriers (libvirt
 * metadata): <appliance xmlns="NX_MARKER_NS" role= tenant= host= [net=] revision= digest=
 * [image=]/> */
#define NX_MARKER_NS "urn:netext-deploy:appliance:1"

#endif
