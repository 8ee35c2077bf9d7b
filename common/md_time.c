/* Clocks and RFC 3339 timestamps. */
#include "md_time.h"

#include <stdio.h>
#include <time.h>

static int64_t now_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t md_now_real_ns(void) { return now_ns(CLOCK_REALTIME); }

int64_t md_now_mono_ns(void) { return now_ns(CLOCK_MONOTONIC); }

/* Millisecond precision is what the reports need; UTC always ("Z"). */
const char *md_time_rfc3339(int64_t real_ns, char *buf, size_t len) {
  time_t sec = (time_t)(real_ns / 1000000000);
  int ms = (int)((real_ns % 1000000000) / 1000000);
  if (ms < 0) {
    ms += 1000;
    sec -= 1;
  }
  struct tm tm;
  gmtime_r(&sec, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}
