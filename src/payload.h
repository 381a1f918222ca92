/* payload.h: the bootstrap document an appliance reads at first boot.
 *
 * One versioned XML document, the same for every provider (the providers only
 * carry it): tenant, role, host, addresses, the cloud gateway endpoint, the
 * extended networks with the MAC of the vNIC each maps to, and the public IP
 * rules. Rendering is canonical (same spec, same bytes), so its SHA-256 tells
 * whether an appliance carries the current one. */
#ifndef NX_PAYLOAD_H
#define NX_PAYLOAD_H

#include "desired.h"
#include "strbuf.h"

#define NX_PAYLOAD_NS "urn:netext-deploy:payload:1"
#define NX_PAYLOAD_VERSION 1

/* Render spec's payload (everything but the payload fields) into sb. */
void nx_payload_render(struct strbuf *sb, const struct nx_model *m,
                       const struct nx_appliance_spec *spec);
/* Lower-case hex SHA-256 of data. */
void nx_sha256_hex(const void *data, size_t len, char out[65]);

#endif
