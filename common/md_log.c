/* Logging: one line per event on stderr, prefixed with the program name and
 * the level, so journald and a terminal both read it well. */
#include "md_log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *g_prog = "mtrdiag";
static enum md_log_level g_min = MD_LOG_INFO;

void md_log_init(const char *progname, enum md_log_level min_level) {
  g_prog = progname;
  g_min = min_level;
}

void md_log(enum md_log_level level, const char *fmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (level < g_min)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s: %s\n", g_prog, names[level], line);
}
