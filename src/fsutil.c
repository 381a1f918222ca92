/* fsutil.c: directories, atomic writes, whole-file reads (see fsutil.h). */
#include "config.h"

#include "fsutil.h"
#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int nx_mkdir_parents(const char *path)
{
    char *tmp = nx_strdup(path);
    int ret = 0;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
            ret = nx_error_set(NX_EX_CANTCREAT, "cannot create %s: %s", tmp, strerror(errno));
            break;
        }
        *p = '/';
    }
    free(tmp);
    return ret;
}

int nx_mkdir_p(const char *path, mode_t mode)
{
    if (nx_mkdir_parents(path) < 0)
        return -1;
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return nx_error_set(NX_EX_CANTCREAT, "cannot create %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return nx_error_set(NX_EX_CANTCREAT, "%s: not a directory", path);
    return 0;
}

int nx_private_dir(const char *path, mode_t mode, bool create)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT || !create)
            return errno == ENOENT ? 1
                                   : nx_error_set(NX_EX_CANTCREAT, "state directory %s: %s", path,
                                                  strerror(errno));
        if (mkdir(path, mode) < 0 && errno != EEXIST)
            return nx_error_set(NX_EX_CANTCREAT, "cannot create %s: %s", path, strerror(errno));
        if (lstat(path, &st) < 0)
            return nx_error_set(NX_EX_CANTCREAT, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return nx_error_set(NX_EX_CANTCREAT, "%s: not a directory (symbolic links are refused)",
                            path);
    if (st.st_uid != geteuid())
        return nx_error_set(NX_EX_NOPERM,
                            "%s: owned by uid %u, not by this user; refusing to keep "
                            "private keys there",
                            path, (unsigned)st.st_uid);
    if ((st.st_mode & 07777) != mode) {
        if (create) {
            if ((st.st_mode & 077) != 0)
                nx_warn("%s: mode %04o lets others in; tightening to %04o", path,
                        (unsigned)(st.st_mode & 07777), (unsigned)mode);
            if (chmod(path, mode) < 0)
                return nx_error_set(NX_EX_CANTCREAT, "chmod %s: %s", path, strerror(errno));
        } else if ((st.st_mode & 077) != 0) {
            return nx_error_set(NX_EX_NOPERM, "%s: mode %04o lets others read private keys", path,
                                (unsigned)(st.st_mode & 07777));
        }
    }
    return 0;
}

/* The temporary name for path: ".NAME.XXXXXX" in path's directory. */
static char *temp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return nx_asprintf(".%s.XXXXXX", path);
    return nx_asprintf("%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
}

int nx_write_atomic(const char *path, const void *data, size_t len, mode_t mode, unsigned flags)
{
    char *tmp = temp_name(path);
    const char *p = data;
    int ret = -1;
    int fd = mkstemp(tmp); /* O_CREAT|O_EXCL, mode 0600 */
    if (fd < 0) {
        nx_error_set(NX_EX_CANTCREAT, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (fchmod(fd, mode) < 0) {
        nx_error_set(NX_EX_CANTCREAT, "%s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            nx_error_set(NX_EX_IOERR, "%s: write: %s", path, strerror(w < 0 ? errno : EIO));
            goto fail;
        }
        off += (size_t)w;
    }
    /* the one place that decides what is made durable when */
    if (!(flags & NX_FS_NOSYNC) && fsync(fd) < 0) {
        nx_error_set(NX_EX_IOERR, "%s: fsync: %s", path, strerror(errno));
        goto fail;
    }
    int rc = close(fd);
    fd = -1;
    if (rc < 0) {
        nx_error_set(NX_EX_IOERR, "%s: write: %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        nx_error_set(NX_EX_CANTCREAT, "%s: rename: %s", path, strerror(errno));
        goto fail;
    }
    ret = 0;
    goto cleanup;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
cleanup:
    free(tmp);
    return ret;
}

int nx_read_file(const char *path, size_t max, unsigned flags, struct strbuf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | ((flags & NX_FS_NOFOLLOW) ? O_NOFOLLOW : 0));
    if (fd < 0) {
        if (errno == ENOENT && (flags & NX_FS_MISSING_OK))
            return 1;
        return nx_error_set(NX_EX_NOINPUT, "%s: %s", path, strerror(errno));
    }
    size_t start = out->len;
    int ret = -1;
    char buf[8192];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            nx_error_set(NX_EX_IOERR, "%s: %s", path, strerror(errno));
            goto cleanup;
        }
        if ((size_t)r > max - (out->len - start)) {
            nx_error_set(NX_EX_DATAERR, "%s: larger than %zu bytes", path, max);
            goto cleanup;
        }
        strbuf_add(out, buf, (size_t)r);
    }
    ret = 0;
cleanup:
    if (flags & NX_FS_SECRET)
        nx_memzero(buf, sizeof(buf));
    if (ret < 0) {
        if (flags & NX_FS_SECRET)
            nx_memzero(out->buf + start, out->len - start);
        if (out->alloc) {
            out->len = start;
            out->buf[start] = '\0';
        }
    }
    close(fd);
    return ret;
}

int nx_fs_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return nx_error_set(NX_EX_IOERR, "%s: sync: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}
