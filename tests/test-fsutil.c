/* test-fsutil.c: src/fsutil.c (directories, atomic writes, whole-file reads)
 * and src/retry.c (attempts, backoff). */
#include "config.h"

#include "fsutil.h"
#include "retry.h"
#include "strbuf.h"
#include "testutil.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char *base;

static int suite_init(void)
{
    char tmpl[] = "/tmp/nx-test-fsutil.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    base = nx_strdup(tmpl);
    return 0;
}

static int suite_clean(void)
{
    char *cmd = nx_asprintf("rm -rf '%s'", base);
    int rc = system(cmd);
    free(cmd);
    free(base);
    return rc == 0 ? 0 : -1;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* entries of dir whose name starts with '.' (but not . and ..) */
static int hidden_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_mkdir(void)
{
    char *deep = nx_asprintf("%s/a/b/c", base);
    char *parent = nx_asprintf("%s/a/b", base);
    CU_ASSERT_EQUAL(nx_mkdir_parents(deep), 0);
    CU_ASSERT_EQUAL(mode_of(parent), 0755);
    CU_ASSERT_EQUAL(mode_of(deep), (mode_t)-1); /* not the last component */
    CU_ASSERT_EQUAL(nx_mkdir_p(deep, 0700), 0);
    CU_ASSERT_EQUAL(mode_of(deep), 0700);
    CU_ASSERT_EQUAL(nx_mkdir_p(deep, 0700), 0); /* exists: fine */
    /* a file in the way */
    char *file = nx_asprintf("%s/file", base);
    CU_ASSERT_EQUAL(nx_write_atomic(file, "x", 1, 0644, 0), 0);
    CU_ASSERT_EQUAL(nx_mkdir_p(file, 0700), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_CANTCREAT);
    CU_ASSERT(strstr(nx_error_msg(), "not a directory") != NULL);
    char *under = nx_asprintf("%s/file/x/y", base);
    CU_ASSERT_EQUAL(nx_mkdir_parents(under), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_CANTCREAT);
    nx_error_clear();
    free(under);
    free(file);
    free(parent);
    free(deep);
}

static void test_private_dir(void)
{
    char *d = nx_asprintf("%s/priv", base);
    CU_ASSERT_EQUAL(nx_private_dir(d, 0700, false), 1); /* missing, not created */
    CU_ASSERT_EQUAL(mode_of(d), (mode_t)-1);
    CU_ASSERT_EQUAL(nx_private_dir(d, 0700, true), 0);
    CU_ASSERT_EQUAL(mode_of(d), 0700);
    chmod(d, 0755);
    CU_ASSERT_EQUAL(nx_private_dir(d, 0700, false), -1); /* others may read */
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_NOPERM);
    CU_ASSERT_EQUAL(nx_private_dir(d, 0700, true), 0); /* tightened */
    CU_ASSERT_EQUAL(mode_of(d), 0700);
    char *link = nx_asprintf("%s/privlink", base);
    CU_ASSERT_EQUAL(symlink(d, link), 0);
    CU_ASSERT_EQUAL(nx_private_dir(link, 0700, true), -1);
    CU_ASSERT(strstr(nx_error_msg(), "symbolic links are refused") != NULL);
    nx_error_clear();
    free(link);
    free(d);
}

static void test_write_read(void)
{
    char *dir = nx_asprintf("%s/w", base);
    char *path = nx_asprintf("%s/secret.key", dir);
    CU_ASSERT_EQUAL_FATAL(nx_mkdir_p(dir, 0700), 0);
    CU_ASSERT_EQUAL(nx_write_atomic(path, "first", 5, 0600, 0), 0);
    CU_ASSERT_EQUAL(mode_of(path), 0600);
    CU_ASSERT_EQUAL(nx_write_atomic(path, "second!", 7, 0640, NX_FS_NOSYNC), 0);
    CU_ASSERT_EQUAL(mode_of(path), 0640);
    CU_ASSERT_EQUAL(hidden_entries(dir), 0); /* no temporary file left */
    CU_ASSERT_EQUAL(nx_fs_sync(dir), 0);

    struct strbuf sb = STRBUF_INIT;
    strbuf_addstr(&sb, "kept:");
    CU_ASSERT_EQUAL(nx_read_file(path, 100, NX_FS_SECRET, &sb), 0);
    CU_ASSERT_STRING_EQUAL(sb.buf, "kept:second!");
    /* too large: an error, and out keeps what it had */
    CU_ASSERT_EQUAL(nx_read_file(path, 6, NX_FS_SECRET, &sb), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_DATAERR);
    CU_ASSERT_STRING_EQUAL(sb.buf, "kept:second!");
    CU_ASSERT_EQUAL(nx_read_file(path, 7, 0, &sb), 0); /* exactly max */
    strbuf_release(&sb);

    /* missing: 1 only when asked, else EX_NOINPUT */
    char *missing = nx_asprintf("%s/none", dir);
    nx_error_clear();
    CU_ASSERT_EQUAL(nx_read_file(missing, 10, NX_FS_MISSING_OK, &sb), 1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_OK);
    CU_ASSERT_EQUAL(nx_read_file(missing, 10, 0, &sb), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_NOINPUT);
    /* a symbolic link: refused with NX_FS_NOFOLLOW */
    char *link = nx_asprintf("%s/link", dir);
    CU_ASSERT_EQUAL(symlink(path, link), 0);
    CU_ASSERT_EQUAL(nx_read_file(link, 100, 0, &sb), 0);
    CU_ASSERT_EQUAL(nx_read_file(link, 100, NX_FS_NOFOLLOW, &sb), -1);
    strbuf_release(&sb);
    /* a write into a missing directory creates nothing */
    char *nodir = nx_asprintf("%s/nodir/x", dir);
    CU_ASSERT_EQUAL(nx_write_atomic(nodir, "x", 1, 0600, 0), -1);
    CU_ASSERT_EQUAL(nx_error_code(), NX_EX_CANTCREAT);
    CU_ASSERT(strstr(nx_error_msg(), nodir) != NULL);
    /* onto a directory: the rename fails, no temporary file is left */
    CU_ASSERT_EQUAL(nx_mkdir_p(missing, 0700), 0);
    CU_ASSERT_EQUAL(nx_write_atomic(missing, "x", 1, 0600, 0), -1);
    CU_ASSERT_EQUAL(hidden_entries(dir), 0);
    nx_error_clear();
    free(nodir);
    free(link);
    free(missing);
    free(path);
    free(dir);
}

static void test_retry_delays(void)
{
    /* uniform in [d/2, d], d = min(2000, 250 * 2^(k-1)) */
    for (int k = 1; k <= 8; k++) {
        long d = k >= 4 ? NX_RETRY_CAP_MS : NX_RETRY_BASE_MS << (k - 1);
        for (int i = 0; i < 200; i++) {
            long ms = nx_retry_delay_ms(k);
            CU_ASSERT(ms >= d / 2 && ms <= d);
        }
    }
}

struct counter {
    int calls, fail_until;
    bool transient;
};

static int attempt(void *ctx, int k)
{
    struct counter *c = ctx;
    c->calls++;
    CU_ASSERT_EQUAL(k, c->calls);
    if (k < c->fail_until)
        return nx_error_set(NX_EX_UNAVAILABLE, "attempt %d failed", k);
    return 0;
}

static bool again(void *ctx, int rc)
{
    struct counter *c = ctx;
    return rc < 0 && c->transient;
}

static void test_retry_run(void)
{
    struct counter c = {0, 2, true}; /* fails once, then succeeds */
    CU_ASSERT_EQUAL(nx_retry_run("test", "op", attempt, again, &c), 0);
    CU_ASSERT_EQUAL(c.calls, 2);
    c = (struct counter){0, 100, true}; /* always fails: 4 attempts in all */
    CU_ASSERT_EQUAL(nx_retry_run("test", "op", attempt, again, &c), -1);
    CU_ASSERT_EQUAL(c.calls, NX_RETRY_ATTEMPTS);
    c = (struct counter){0, 100, false}; /* permanent: never repeated */
    CU_ASSERT_EQUAL(nx_retry_run("test", "op", attempt, again, &c), -1);
    CU_ASSERT_EQUAL(c.calls, 1);
    nx_error_clear();
}

static CU_TestInfo tests[] = {
    {"mkdir -p and parents", test_mkdir},
    {"private directories", test_private_dir},
    {"atomic write, whole-file read", test_write_read},
    {"retry delays", test_retry_delays},
    {"retry attempts", test_retry_run},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    return nx_test_run("fsutil", suite_init, suite_clean, tests);
}
