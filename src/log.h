/* log.h: log lines on stderr; -q and -v move the threshold.
 * Nothing secret is ever passed to these functions. */
#ifndef NX_LOG_H
#define NX_LOG_H

enum nx_log_level { NX_LOG_ERROR = 0, NX_LOG_WARN, NX_LOG_INFO, NX_LOG_DEBUG };

void nx_log_set_level(int level);
int nx_log_level(void);
void nx_log(enum nx_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define nx_warn(...) nx_log(NX_LOG_WARN, __VA_ARGS__)
#define nx_info(...) nx_log(NX_LOG_INFO, __VA_ARGS__)
#define nx_debug(...) nx_log(NX_LOG_DEBUG, __VA_ARGS__)

#endif
