/* log.c: log lines on stderr. */
#include "config.h"

#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static int threshold = NX_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void nx_log_set_level(int level)
{
    threshold = level < NX_LOG_ERROR ? NX_LOG_ERROR : level > NX_LOG_DEBUG ? NX_LOG_DEBUG : level;
}

int nx_log_level(void)
{
    return threshold;
}

void nx_log(enum nx_log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if ((int)lvl > threshold)
        return;
    /* one line, one write: lines of several threads (and the batch progress
     * lines, also single writes) never interleave */
    char line[4096];
    int n = snprintf(line, sizeof(line), "netext-deploy: %s: ", names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(line) - 2)
        n += vsnprintf(line + n, sizeof(line) - 2 - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    line[n] = '\0';
    pthread_mutex_lock(&log_lock);
    fputs(line, stderr);
    pthread_mutex_unlock(&log_lock);
}
