/* log.c: log lines on stderr. */
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
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "netext-deploy: %s: ", names[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}
