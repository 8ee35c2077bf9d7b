/* Clocks and RFC 3339 timestamps. */
#include "md_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t md_now_real_ns(void) {
  return now_ns(CLOCK_REALTIME);
}

int64_t md_now_mono_ns(void) {
  return now_ns(CLOCK_MONOTONIC);
}

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

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* RFC 3339 ("2026-11-29T02:10:00.123Z", "...+01:00") to realtime ns. What
 * md_time_rfc3339 writes, and what other tools write. 0 or -EINVAL. */
int md_time_parse_rfc3339(const char *s, int64_t *ns) {
  if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    return -EINVAL;
  int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2);
  int hour = digits(s + 11, 2), min = digits(s + 14, 2), sec = digits(s + 17, 2);
  if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
      min < 0 || min > 59 || sec < 0 || sec > 60)
    return -EINVAL;
  const char *p = s + 19;
  int64_t frac = 0;
  if (*p == '.') {
    int n = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, n++)
      if (n < 9)
        frac = frac * 10 + (*p - '0');
    if (n == 0)
      return -EINVAL;
    for (; n < 9; n++)
      frac *= 10;
  }
  int offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh = digits(p + 1, 2), om = (oh >= 0 && p[3] == ':') ? digits(p + 4, 2) : -1;
    if (oh < 0 || oh > 23 || om < 0 || om > 59)
      return -EINVAL;
    offset = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return -EINVAL;
  }
  if (*p != '\0')
    return -EINVAL;
  /* a leap second (:60) is taken as :59 + 1 s, so the check below holds */
  struct tm tm = {.tm_year = year - 1900,
                  .tm_mon = mon - 1,
                  .tm_mday = day,
                  .tm_hour = hour,
                  .tm_min = min,
                  .tm_sec = sec > 59 ? 59 : sec};
  time_t t = timegm(&tm);
  if (t == (time_t)-1 || tm.tm_mday != day) /* timegm turns Feb 30 into March 2 */
    return -EINVAL;
  *ns = ((int64_t)t + (sec > 59) - offset) * 1000000000 + frac;
  return 0;
}
