/* cmd_payload.h: `netext-deploy payload`, `rotate`, `rotate-ca`, `revoke`.
 *
 * payload: print the bootstrap document of one appliance exactly as the
 * providers carry it (same desired state, same MACs, same tunnel
 * credentials), for netext-bootstrap --payload and for inspection. It holds
 * the appliance's private key (-o FILE writes it 0600).
 * rotate / rotate-ca: new tunnel keys and certificates for a tenant (and a
 * new tenant CA); the next subscribe carries them to the appliances. */
#ifndef NX_CMD_PAYLOAD_H
#define NX_CMD_PAYLOAD_H

#include "cli.h"

int nx_cmd_payload(struct nx_cli *cli);
int nx_cmd_rotate(struct nx_cli *cli); /* "rotate" and "rotate-ca" */
/* revoke: put --appliance NAME of --tenant on the tenant's revocation list
 * (--undo: take it off); the next subscribe carries the list to the SP
 * appliances. */
int nx_cmd_revoke(struct nx_cli *cli);

#endif
