/* payload_parse.h: the decoder of the bootstrap document (payload.h).
 *
 * Strict: the document must be a <netext-payload> of exactly this program's
 * NX_PAYLOAD_VERSION in NX_PAYLOAD_NS; unknown elements, bad numbers, bad
 * addresses, duplicate VLANs or tunnel ports, and public IP rules on the
 * reserved port 22 are refused with a message naming what is wrong. Parsed
 * with nx_xml_read_memory (no DTD, no entities, no network). */
#ifndef NX_PAYLOAD_PARSE_H
#define NX_PAYLOAD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "desired.h"
#include "model.h"

#define NX_PAYLOAD_MAX_BYTES (1024 * 1024)
#define NX_PAYLOAD_MAX_NETS 4094
#define NX_PAYLOAD_MAX_RULES 4096

/* An extended network: <network> (provider side, with the vNIC's MAC) or
 * <extends> (tenant side, with the SP host that carries it). */
struct nx_payload_net {
    char *name;
    unsigned vlan;
    bool has_mac;
    uint8_t mac[6];
    unsigned port; /* tunnel TCP port */
    char *sp_host; /* tenant side */
};

struct nx_payload_rule {
    enum nx_proto proto;
    uint32_t public_ip;
    unsigned public_port;
    uint32_t replica_ip;
    unsigned replica_port;
};

struct nx_payload {
    unsigned version;
    enum nx_role role;
    char *tenant, *host, *appliance;
    char *network; /* tenant side: the production network served */
    bool has_gateway;
    char *gw_address;
    unsigned gw_port;
    char *prod_network;
    unsigned prod_vlan;
    uint8_t prod_mac[6];
    struct nx_address prod_addr; /* mode NX_ADDR_DHCP or NX_ADDR_STATIC */
    struct nx_payload_net *nets;
    size_t n_nets, alloc_nets;
    struct nx_payload_rule *rules;
    size_t n_rules, alloc_rules;
    bool pki_pending;
    char *ca_pem, *cert_pem, *key_pem; /* key_pem is secret */
};

/* 0, or -1 with nx_error set (EX_DATAERR; name prefixes the message). */
int nx_payload_parse(const char *buf, size_t len, const char *name, struct nx_payload *out);
/* Frees everything, wiping the private key. Accepts a zeroed struct. */
void nx_payload_release(struct nx_payload *p);

/* A host name or IPv4 address safe to use anywhere: [A-Za-z0-9.-], 1-253. */
bool nx_payload_safe_host(const char *s);

#endif
