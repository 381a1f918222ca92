/* lock.h: advisory locks in the state directory, so that runs that would
 * touch the same tenant never overlap.
 *
 * Locks are flock(2) locks on files under STATE_DIR/locks/, which are never
 * removed (removing them would race). A lock is held until released or the
 * process exits (also on kill -9). */
#ifndef NX_LOCK_H
#define NX_LOCK_H

#include <stdbool.h>

struct nx_lock {
    int fd; /* -1: not held */
};

#define NX_LOCK_INIT                                                                               \
    {                                                                                              \
        -1                                                                                         \
    }

/* The state directory: --state-dir, else $NETEXT_DEPLOY_STATE_DIR, else
 * /var/lib/netext-deploy. Created 0700 when missing. */
const char *nx_state_dir(const char *option);
int nx_state_dir_ensure(const char *dir);

/* Take lock `name` (any text; a tenant name is fine), exclusive or shared,
 * waiting up to wait_s seconds (0: fail at once). -1 with nx_error set
 * (NX_EX_TEMPFAIL when busy, naming the holder's pid when known). */
int nx_lock_acquire(struct nx_lock *l, const char *state_dir, const char *name, bool shared,
                    unsigned wait_s);
void nx_lock_release(struct nx_lock *l); /* accepts a lock not held */

#endif
