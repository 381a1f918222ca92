/* credentials.c: hypervisor credentials, from a file or the environment. */
#include "config.h"

#include "credentials.h"
#include "error.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct nx_cred_entry *entry(struct nx_credentials *c, const char *uri)
{
    for (size_t i = 0; i < c->n; i++)
        if (nx_str_eq(c->entries[i].uri, uri))
            return &c->entries[i];
    NX_GROW(c->entries, c->alloc, c->n + 1);
    struct nx_cred_entry *e = &c->entries[c->n++];
    memset(e, 0, sizeof(*e));
    e->uri = nx_strdup(uri);
    return e;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r' || s[l - 1] == '\n'))
        s[--l] = '\0';
    return s;
}

static int parse_file(struct nx_credentials *c, const char *path)
{
    /* O_NOFOLLOW + fstat: the checked file is the file read */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return nx_error_set(errno == ENOENT ? NX_EX_NOINPUT : NX_EX_NOPERM, "%s: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nx_error_set(NX_EX_NOPERM, "%s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return nx_error_set(NX_EX_NOPERM,
                            "%s: credentials file is accessible by group or others (mode %04o); "
                            "run: chmod 600 %s",
                            path, (unsigned)(st.st_mode & 07777), path);
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return nx_error_set(NX_EX_NOPERM, "%s: credentials file is owned by uid %u, not by you",
                            path, (unsigned)st.st_uid);
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return nx_error_set(NX_EX_OSERR, "%s: %s", path, strerror(errno));
    }
    char line[4096];
    unsigned lineno = 0;
    struct nx_cred_entry *cur = entry(c, NULL);
    int ret = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strrchr(s, ']');
            if (!end || end[1]) {
                ret = nx_error_set(NX_EX_CONFIG, "%s:%u: malformed section header", path, lineno);
                break;
            }
            *end = '\0';
            cur = entry(c, trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            /* never echo the line: it may hold a secret */
            ret = nx_error_set(NX_EX_CONFIG, "%s:%u: expected 'key = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (strcmp(key, "user") == 0) {
            free(cur->user);
            cur->user = nx_strdup(val);
        } else if (strcmp(key, "password") == 0) {
            nx_free_secret(cur->password);
            cur->password = nx_strdup(val);
        } else {
            ret = nx_error_set(NX_EX_CONFIG, "%s:%u: unknown key '%.32s' (user, password)", path,
                               lineno, key);
            break;
        }
    }
    nx_memzero(line, sizeof(line));
    fclose(f);
    return ret;
}

int nx_credentials_load(struct nx_credentials *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    const char *u = getenv("NETEXT_DEPLOY_USER"), *p = getenv("NETEXT_DEPLOY_PASSWORD");
    if (u || p) {
        struct nx_cred_entry *e = entry(c, NULL);
        e->user = nx_strdup(u);
        e->password = nx_strdup(p);
    }
    if (path && parse_file(c, path) < 0) {
        nx_credentials_release(c);
        return -1;
    }
    return 0;
}

void nx_credentials_release(struct nx_credentials *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].uri);
        free(c->entries[i].user);
        nx_free_secret(c->entries[i].password);
    }
    free(c->entries);
    memset(c, 0, sizeof(*c));
}

const struct nx_cred_entry *nx_credentials_for(const struct nx_credentials *c, const char *uri)
{
    const struct nx_cred_entry *def = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (c->entries[i].uri && nx_str_eq(c->entries[i].uri, uri))
            return &c->entries[i];
        if (!c->entries[i].uri)
            def = &c->entries[i];
    }
    return def;
}
