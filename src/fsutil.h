/* fsutil.h: file-system helpers: directories, atomic writes, whole-file reads.
 *
 * Every function reports its failure once with nx_error_set() (the path in
 * the message) and returns -1; callers add their context with
 * nx_error_prefix(). Exit codes: EX_CANTCREAT when a directory or file cannot
 * be created, EX_IOERR on write errors, EX_NOINPUT when a file cannot be
 * opened for reading, EX_DATAERR when it is larger than the caller allows. */
#ifndef NX_FSUTIL_H
#define NX_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct strbuf;

/* mkdir -p for path's parent directories, not path itself: each missing one
 * is created 0755, existing ones are left as they are. "/a/b/c" makes "/a"
 * and "/a/b". */
int nx_mkdir_parents(const char *path);
/* mkdir -p: path's parents (0755) and path itself (mode, when created);
 * path must end up a directory (symbolic links to one are followed). */
int nx_mkdir_p(const char *path, mode_t mode);

/* A directory that holds secrets: path must be a real directory (no symbolic
 * link) owned by this user with exactly `mode`. create: make it (mode) when
 * missing and tighten a looser mode (with a warning when others could get
 * in); otherwise a missing directory returns 1 and a mode that lets group or
 * others in is an error (EX_NOPERM, as is another owner). */
int nx_private_dir(const char *path, mode_t mode, bool create);

enum {
    /* nx_write_atomic: no fsync; the caller makes the file durable later,
     * with one nx_fs_sync() for many files */
    NX_FS_NOSYNC = 1,
    /* nx_read_file: 1 (no error set) when the file does not exist */
    NX_FS_MISSING_OK = 2,
    /* nx_read_file: refuse a symbolic link */
    NX_FS_NOFOLLOW = 4,
    /* nx_read_file: the contents are secret: wipe every copy not handed out */
    NX_FS_SECRET = 8,
};

/* Replace path with len bytes of data, atomically: an O_EXCL temporary file
 * next to it (".NAME.XXXXXX": hidden, and it never ends like NAME does)
 * created 0600 and set to `mode` before the first byte is written (a secret
 * is never readable by others, at no moment), written, fsynced (unless
 * NX_FS_NOSYNC), closed, renamed onto path. On failure the temporary file is
 * removed and path is unchanged. The rename itself is made durable by the
 * next sync of the file system (nx_fs_sync), not here. */
int nx_write_atomic(const char *path, const void *data, size_t len, mode_t mode, unsigned flags);

/* Append the whole of path to out. At most max bytes (more is EX_DATAERR).
 * flags: NX_FS_MISSING_OK, NX_FS_NOFOLLOW, NX_FS_SECRET. On failure out
 * keeps its former contents (what was appended is wiped with
 * NX_FS_SECRET). */
int nx_read_file(const char *path, size_t max, unsigned flags, struct strbuf *out);

/* Make everything written to the file system that holds path durable
 * (syncfs(2)): one journal commit for any number of files written with
 * NX_FS_NOSYNC, and their renames. */
int nx_fs_sync(const char *path);

#endif
