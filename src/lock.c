/* lock.c: advisory locks in the state directory. */
#include "config.h"

#include "lock.h"
#include "error.h"
#include "fsutil.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NX_DEFAULT_STATE_DIR "/var/lib/netext-deploy"

const char *nx_state_dir(const char *option)
{
    if (option && *option)
        return option;
    const char *env = getenv("NETEXT_DEPLOY_STATE_DIR");
    return env && *env ? env : NX_DEFAULT_STATE_DIR;
}

int nx_state_dir_ensure(const char *dir)
{
    /* parents with the usual modes, the directory itself 0700 */
    if (nx_mkdir_p(dir, 0700) < 0) {
        nx_error_prefix("state directory: ");
        return -1;
    }
    return 0;
}

int nx_lock_acquire(struct nx_lock *l, const char *state_dir, const char *name, bool shared,
                    unsigned wait_s)
{
    l->fd = -1;
    if (nx_state_dir_ensure(state_dir) < 0)
        return -1;
    char *locks = nx_asprintf("%s/locks", state_dir);
    if (nx_mkdir_p(locks, 0700) < 0) {
        free(locks);
        return -1;
    }
    /* file names from a hash: tenant names may hold any character */
    char *path = nx_asprintf("%s/%016llx.lock", locks,
                             (unsigned long long)nx_hash64(name, strlen(name), 0x6c6f636bULL));
    free(locks);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        nx_error_set(NX_EX_CANTCREAT, "lock %s: %s", path, strerror(e));
        free(path);
        return -1;
    }
    time_t deadline = time(NULL) + (time_t)wait_s;
    for (;;) {
        if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            nx_error_set(NX_EX_OSERR, "lock %s: %s", path, strerror(e));
            free(path);
            return -1;
        }
        if (time(NULL) >= deadline) {
            char holder[64] = "";
            ssize_t got = pread(fd, holder, sizeof(holder) - 1, 0);
            holder[got > 0 ? got : 0] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
            close(fd);
            nx_error_set(NX_EX_TEMPFAIL,
                         "another netext-deploy run holds the lock for %s%s%s%s (%s); try again "
                         "later or wait with --lock-wait SECONDS",
                         name, *holder ? " (pid " : "", holder, *holder ? ")" : "", path);
            free(path);
            return -1;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!shared) {
        char pid[32];
        int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) < 0)
            (void)0; /* the pid is a courtesy for error messages */
    }
    free(path);
    l->fd = fd;
    return 0;
}

void nx_lock_release(struct nx_lock *l)
{
    if (l->fd >= 0) {
        flock(l->fd, LOCK_UN);
        close(l->fd);
    }
    l->fd = -1;
}
