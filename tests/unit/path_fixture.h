/* Test helper shared by test_align.c, test_verdict.c and test_diagnosis.c:
 * md_path objects built from a compact text description. A malformed
 * description fails the running cmocka test. */
#ifndef PATH_FIXTURE_H
#define PATH_FIXTURE_H

#include "md_path.h"

/* "TTL:IP:LOSS%[:RTTms]" separated by spaces; IP "???" is a silent hop,
 * "a|b" two ECMP responders (replies alternate). Every hop is sent
 * `cycles` probes; round(LOSS% of cycles) of them are lost; each reply
 * takes RTT ms (default: TTL ms). reached = the target answered. IPv6
 * works: the fields are cut from the right. */
md_path *mkpath_n(const char *source, const char *target, const char *target_name, int cycles,
                  const char *spec);

/* The same from "local" toward "cvm": the one direction most tests need. */
static inline md_path *mkpath(const char *target, int cycles, const char *spec) {
  return mkpath_n("local", target, "cvm", cycles, spec);
}

#endif
