/* md_log: one line per event to stderr ("mtr-agent: warn: ..."), which
 * journald keeps when run as a service. */
#ifndef MD_LOG_H
#define MD_LOG_H

enum md_log_level { MD_LOG_DEBUG, MD_LOG_INFO, MD_LOG_WARN, MD_LOG_ERROR };

void md_log_init(const char *progname, enum md_log_level min_level);
void md_log(enum md_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define md_debug(...) md_log(MD_LOG_DEBUG, __VA_ARGS__)
#define md_info(...) md_log(MD_LOG_INFO, __VA_ARGS__)
#define md_warn(...) md_log(MD_LOG_WARN, __VA_ARGS__)
#define md_error(...) md_log(MD_LOG_ERROR, __VA_ARGS__)

#endif
