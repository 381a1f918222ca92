/* state.c: netext-bootstrap's state under --root (the state lock, the
 * failover mode file, the applied payload) and the programs it runs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bootstrap.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "util.h"

char *nx_bs_path(const struct nx_bs_opts *o, const char *rel)
{
    return nx_asprintf("%s/%s", strcmp(o->root, "/") ? o->root : "", rel);
}

/* Run a command; its output goes to our stderr/stdout. */
int nx_bs_run(const char *const argv[])
{
    if (nx_log_level() >= NX_LOG_INFO) {
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; argv[i]; i++)
            strbuf_addf(&sb, "%s%s", i ? " " : "", argv[i]);
        nx_info("running: %s", sb.buf);
        strbuf_release(&sb);
    }
    pid_t pid = fork();
    if (pid < 0)
        return nx_error_set(NX_EX_OSERR, "fork: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "netext-bootstrap: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return nx_error_set(NX_EX_OSERR, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return nx_error_set(NX_EX_OSERR, "%s failed (status %d)", argv[0],
                            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}

int nx_bs_run_script(const struct nx_bs_opts *o, const char *rel)
{
    char *p = nx_bs_path(o, rel);
    const char *argv[] = {"/bin/sh", p, NULL};
    int rc = nx_bs_run(argv);
    free(p);
    return rc;
}

/* ---- state: lock and failover mode ------------------------------------------- */

int nx_bs_lock(const struct nx_bs_opts *o)
{
    char *dir = nx_bs_path(o, "var/lib/netext");
    char *lock = nx_bs_path(o, "var/lib/netext/lock");
    int fd = -1;
    /* parents 0755, the state directory itself 0700 (also when it exists) */
    if (nx_mkdir_p(dir, 0700) < 0)
        goto cleanup;
    chmod(dir, 0700);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        nx_error_set(NX_EX_CANTCREAT, "%s: %s", lock, strerror(errno));
    else if (flock(fd, LOCK_EX) < 0) {
        nx_error_set(NX_EX_OSERR, "flock %s: %s", lock, strerror(errno));
        close(fd);
        fd = -1;
    }
cleanup:
    free(dir);
    free(lock);
    return fd;
}

/* The mode file: first line the mode, then one NET=IP/PREFIX per line. */
char *nx_bs_read_mode(const struct nx_bs_opts *o, struct strbuf *gateways)
{
    char *p = nx_bs_path(o, "var/lib/netext/failover");
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return nx_strdup("none");
    char line[256];
    char *mode = NULL;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!mode)
            mode = nx_strdup(line);
        else if (gateways && *line)
            strbuf_addf(gateways, "%s\n", line);
    }
    fclose(f);
    return mode ? mode : nx_strdup("none");
}

int nx_bs_write_mode(const struct nx_bs_opts *o, const char *mode, const struct strbuf *gateways)
{
    struct nx_app_files f = {0};
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "%s\n%s", mode, gateways ? gateways->buf : "");
    NX_GROW(f.items, f.alloc, 1);
    f.items[0].path = nx_strdup("var/lib/netext/failover");
    f.items[0].data = strbuf_detach(&sb, &f.items[0].len);
    f.items[0].mode = 0600;
    f.n = 1;
    int rc = nx_app_write_files(o->root, &f);
    nx_app_files_release(&f);
    return rc;
}

/* ---- the payload ---------------------------------------------------------------- */

int nx_bs_load_payload(const struct nx_bs_opts *o, bool from_channel, struct nx_payload *p,
                       struct strbuf *raw)
{
    enum nx_app_channel used = NX_CH_FILE;
    int rc;
    if (from_channel) {
        rc = nx_app_read_payload(o->channel, o->payload_file, o->sysroot, raw, &used);
    } else {
        char *saved = nx_bs_path(o, "etc/netext/payload.xml");
        rc = nx_app_read_payload(NX_CH_FILE, saved, "", raw, &used);
        if (rc < 0)
            nx_error_prefix("no applied payload (run 'netext-bootstrap apply' first): ");
        free(saved);
    }
    if (rc < 0)
        return -1;
    nx_info("payload: %zu bytes from %s", raw->len, nx_app_channel_name(used));
    return nx_payload_parse(raw->buf, raw->len, "payload", p);
}
