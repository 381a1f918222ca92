/* retry.h: the one retry policy of the transports (SOAP for vSphere, WS-Man
 * for Hyper-V): how many attempts, and how long to wait between them.
 *
 * NX_RETRY_ATTEMPTS attempts in all (the first try and 3 retries); before
 * retry k (1, 2, ...) a delay uniform in [d/2, d] (jitter), where
 * d = min(NX_RETRY_CAP_MS, NX_RETRY_BASE_MS * 2^(k-1)): 125-250, 250-500,
 * 500-1000 ms. WHICH failures may be repeated is the caller's decision
 * (which methods, which failures count as transient: src/http.h, src/soap.h,
 * docs/internals/vsphere.md and hyperv.md); this file only counts and
 * waits. */
#ifndef NX_RETRY_H
#define NX_RETRY_H

#include <stdbool.h>

#define NX_RETRY_ATTEMPTS 4
#define NX_RETRY_BASE_MS 250
#define NX_RETRY_CAP_MS 2000

/* The delay before retry k (1, 2, ...), in milliseconds, jittered. */
long nx_retry_delay_ms(int k);
/* After attempt k failed with the error in nx_error: log (info)
 * "WHO: WHAT: ERROR; retry k/3 in N ms" and sleep that long. */
void nx_retry_pause(const char *who, const char *what, int k);

/* One attempt; k is its number (1, 2, ...). Returns what the caller's
 * function returns (0 success, -1 failure with nx_error set, ...). */
typedef int nx_retry_attempt_fn(void *ctx, int k);
/* Whether attempt k's result rc may be followed by another attempt (a
 * transient failure of a request that may be repeated). */
typedef bool nx_retry_again_fn(void *ctx, int rc);

/* Call attempt until again() says no or NX_RETRY_ATTEMPTS attempts were
 * made, with nx_retry_pause(who, what, k) between; returns the last rc. */
int nx_retry_run(const char *who, const char *what, nx_retry_attempt_fn *attempt,
                 nx_retry_again_fn *again, void *ctx);

#endif
