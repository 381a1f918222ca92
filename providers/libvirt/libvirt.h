/* libvirt.h: the libvirt provider's shared types and the functions its files
 * export to the files above them (docs/internals/libvirt.md).
 *
 * The provider is a stack of layers; a file calls only the layers below it:
 *
 *   libvirt_provider.c  the ops table, placement checks, create, vNIC
 *                       changes, payload, power, remove
 *   libvirt_image.c     staging the appliance image in a storage pool
 *                       (upload, verify), set-image
 *   libvirt_domain.c    the domain XML: rendered from
 *                       templates/libvirt/domain.xml (whole, one interface,
 *                       the CD-ROM disk) and parsed back (owned appliances,
 *                       network usage)
 *   libvirt_conn.c      open and close, libvirt errors, the networks cache,
 *                       a domain by UUID
 *
 * libvirt_conn.c <- libvirt_domain.c <- libvirt_image.c, libvirt_provider.c
 * (the ops table in libvirt_provider.c refers to libvirt_image.c's functions;
 * nothing calls upward). */
#ifndef NX_LIBVIRT_H
#define NX_LIBVIRT_H

#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stddef.h>

#include "hashmap.h"
#include "provider.h"
#include "strbuf.h"

/* A libvirt network as the provider sees it (cached per connection). */
struct net_info {
    char *name;
    bool missing;
    bool ovs;
    unsigned *pg_vlans; /* portgroup VLAN tags */
    char **pg_names;
    size_t n_pg;
};

struct lv_conn {
    struct nx_conn *base; /* the core's connection; this is its priv */
    virConnectPtr conn;
    char *domain_type;
    bool is_test;
    struct nx_map nets; /* name -> struct net_info* (missing ones too) */
    struct net_info **net_list;
    size_t n_nets, alloc_nets;
    bool remote; /* the URI names a host: local files are not seen there */
    bool privileged; /* qemu:///system-like: virtlogd writes serial logs */
    struct nx_map staged; /* pool names whose image volume is current */
};

/* ---- libvirt_conn.c ----------------------------------------------------- */

/* Sets the error "what: <libvirt's last error>" with code; returns -1. */
int lv_error(int code, const char *what);
int lv_open(struct nx_conn *base, const char *uri, const struct nx_conn_opts *opts);
void lv_close(struct nx_conn *base);
/* The network `name` (looked up once per connection); NULL: it does not exist. */
struct net_info *lv_net_lookup(struct lv_conn *c, const char *name);
/* The portgroup of n carrying vlan; NULL: none, or more than one. */
const char *lv_portgroup_for(const struct net_info *n, unsigned vlan);
/* The domain of o (by UUID); NULL with the error set. */
virDomainPtr lv_lookup_domain(struct lv_conn *c, const struct nx_appliance_obs *o);

/* ---- libvirt_domain.c --------------------------------------------------- */

/* The domain XML of s (uuid NULL: libvirt picks one). */
int lv_render_domain(struct lv_conn *c, const struct nx_appliance_spec *s, const char *uuid,
                     struct strbuf *out);
/* The <interface> element of v, as in the domain XML. */
int lv_render_interface(struct lv_conn *c, const struct nx_vnic_spec *v, struct strbuf *out);
/* The CD-ROM <disk> element carrying s's image, as in the domain XML. */
int lv_render_disk(struct lv_conn *c, const struct nx_appliance_spec *s, struct strbuf *out);
int lv_list_owned(struct nx_conn *base, struct nx_obs_list *out);
int lv_network_usage(struct nx_conn *base, const char *host, struct nx_net_usage **out,
                     size_t *n_out);

/* ---- libvirt_image.c ---------------------------------------------------- */

int lv_stage_image(struct nx_conn *base, const struct nx_appliance_spec *s);
int lv_set_image(struct nx_conn *base, const struct nx_appliance_obs *o,
                 const struct nx_appliance_spec *s);

#endif
