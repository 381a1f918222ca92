/* conn_opts.h: how to reach an endpoint: credentials, TLS and timeouts.
 *
 * Filled by the CLI (struct nx_run_opts.conn, reconcile.h), passed through
 * nx_conn_open (provider.h) to a provider's open and from there to the
 * transports (http.h, soap.h), which need nothing else of the provider
 * interface. */
#ifndef NX_CONN_OPTS_H
#define NX_CONN_OPTS_H

#include <stdbool.h>

struct nx_conn_opts {
    const char *user; /* borrowed; may be NULL */
    const char *password; /* borrowed secret; never logged */
    const char *cafile; /* TLS: extra trusted CA bundle */
    const char *thumbprint; /* TLS: pinned SHA-256 of the server certificate */
    bool insecure; /* TLS: no verification (warned about) */
    long connect_timeout_ms;
    long request_timeout_ms;
};

#endif
