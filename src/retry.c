/* retry.c: attempts and exponential backoff with jitter (see retry.h). */
#include "config.h"

#include "retry.h"
#include "error.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

long nx_retry_delay_ms(int k)
{
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    if (k < 1)
        k = 1;
    long d = k > 16 ? NX_RETRY_CAP_MS : (long)NX_RETRY_BASE_MS << (k - 1);
    if (d > NX_RETRY_CAP_MS)
        d = NX_RETRY_CAP_MS;
    return d / 2 + (long)(rand_r(&seed) % (unsigned)(d / 2 + 1));
}

void nx_retry_pause(const char *who, const char *what, int k)
{
    long ms = nx_retry_delay_ms(k);
    nx_info("%s: %s: %s; retry %d/%d in %ld ms", who, what, nx_error_msg(), k,
            NX_RETRY_ATTEMPTS - 1, ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int nx_retry_run(const char *who, const char *what, nx_retry_attempt_fn *attempt,
                 nx_retry_again_fn *again, void *ctx)
{
    for (int k = 1;; k++) {
        int rc = attempt(ctx, k);
        if (k >= NX_RETRY_ATTEMPTS || !again(ctx, rc))
            return rc;
        nx_retry_pause(who, what, k);
    }
}
