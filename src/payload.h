/* payload.h: the bootstrap document an appliance reads at first boot.
 *
 * One versioned XML document, the same for every provider (the providers only
 * carry it): tenant, role, host, addresses, the cloud gateway endpoint, the
 * extended networks with the MAC of the vNIC each maps to and the TCP port of
 * its tunnel, the public IP rules, and the appliance's tunnel credentials
 * (tenant CA certificate, own certificate and private key). Rendering is
 * canonical (same spec, same bytes), so its SHA-256 tells whether an
 * appliance carries the current one. The payload holds a private key: it is
 * never printed (the dry run shows its digest only). Decoder: payload_parse.h.
 *
 * Version 2 (this one) added per-network tunnel ports and <pki>. */
#ifndef NX_PAYLOAD_H
#define NX_PAYLOAD_H

#include "desired.h"
#include "strbuf.h"

#define NX_PAYLOAD_NS "urn:netext-deploy:payload:1"
#define NX_PAYLOAD_VERSION 2

/* One layer-2 tunnel (OpenVPN, TAP over TCP) per extended network. Its TCP
 * port, on the cloud gateway and on the SP appliance alike, is the gateway's
 * port plus the network's SP-side VLAN id (6180 + 101 = 6281); when that
 * passes 65535, NX_TUNNEL_PORT_FALLBACK + VLAN. Both sides compute it. */
#define NX_TUNNEL_PORT_FALLBACK 20000
unsigned nx_tunnel_port(unsigned gateway_port, unsigned vlan);

struct nx_pki;
struct nx_pki_cred;

/* Render spec's payload into sb. The one renderer: every payload and digest
 * of a spec comes from here (nx_desired_compute() renders none). cred NULL
 * renders no tunnel credentials; cred->pending renders <pki pending="true"/>
 * (a dry run with material still to be issued). */
void nx_payload_render_cred(struct strbuf *sb, const struct nx_model *m,
                            const struct nx_appliance_spec *spec, const struct nx_pki_cred *cred);

/* (Re-)render spec's payload and digest with cred (e.g. the tenant bundle's). */
void nx_payload_attach_cred(struct nx_appliance_spec *spec, const struct nx_model *m,
                            const struct nx_pki_cred *cred);

/* Every spec's payload and digest without tunnel credentials: for runs and
 * tools that attach none. */
void nx_payload_render_all(struct nx_desired *d, const struct nx_model *m);

/* One spec's credentials, re-rendering its payload and digest: from pki
 * (provider role: the server certificate of (tenant, host); tenant role: the
 * client certificate named after the appliance), issuing what is missing
 * unless pki is read-only. Tenant-side specs of a tenant-side model (a
 * <netext-tenant> configuration) get the bundle's credentials instead and
 * need no pki (which may then be NULL; a provider-side spec then gets no
 * credentials). lookup_only: only what nx_pki_lookup() serves; 1 when the full
 * path is needed (nothing rendered). Returns 0 (payload and digest set), 1,
 * or -1 with nx_error set. */
int nx_payload_attach_spec(struct nx_appliance_spec *s, const struct nx_model *m,
                           struct nx_pki *pki, bool lookup_only);

/* nx_payload_attach_spec (full path) for every spec of a tenant in `tenants`
 * (NULL-terminated; NULL: all). Returns 0, or -1 with nx_error set. */
int nx_payload_attach_pki(struct nx_desired *d, const struct nx_model *m, struct nx_pki *pki,
                          const char *const *tenants);

/* One spec's payload with its tunnel credentials, for a command that hands it
 * out: the tenant bundle's in a tenant-side model, else from the PKI in
 * state_dir, issued if missing and made durable before this returns (with
 * dry_run read-only: what is missing renders as pending). Returns 0, or -1
 * with nx_error set. */
int nx_payload_issue_spec(struct nx_appliance_spec *s, const struct nx_model *m,
                          const char *state_dir, bool dry_run);

/* Free spec's payload once nothing will send it (it may hold a private key);
 * the digest stays. A 10,000-tenant run would otherwise keep 40 MiB of them. */
void nx_payload_drop(struct nx_appliance_spec *spec);

/* Lower-case hex SHA-256 of data. */
void nx_sha256_hex(const void *data, size_t len, char out[65]);

#endif
