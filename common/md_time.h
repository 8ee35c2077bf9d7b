/* md_time: clocks and the RFC 3339 formatting the reports use. */
#ifndef MD_TIME_H
#define MD_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Nanoseconds since the epoch (CLOCK_REALTIME): comparable with kernel
 * receive timestamps (SO_TIMESTAMPNS) and with the other agent's clock. */
int64_t md_now_real_ns(void);
/* Nanoseconds on CLOCK_MONOTONIC: for timeouts and pacing. */
int64_t md_now_mono_ns(void);
/* "2026-11-29T02:10:00.123Z" for a realtime ns value. Returns buf. */
const char *md_time_rfc3339(int64_t real_ns, char *buf, size_t len);

/* RFC 3339 ("2026-11-29T02:10:00.123Z", "...+01:00") to realtime ns: what
 * md_time_rfc3339 writes, and what other tools write. 0 or -EINVAL. */
int md_time_parse_rfc3339(const char *s, int64_t *ns);

#endif
