/* Trace options: mtr's defaults and the range checks every entry point
 * (the trace command, the daemon's run requests) applies the same way. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"

void md_trace_opts_default(md_trace_opts *o) {
  memset(o, 0, sizeof *o);
  o->proto = MD_PROTO_ICMP;
  o->cycles = 10;
  o->interval_s = 1.0;
  o->psize = 64;
  o->first_ttl = 1;
  o->max_ttl = 30;
  o->max_unknown = 5;
  o->grace_s = 5.0;
}

static int fail(char *err, size_t errlen, const char *msg) {
  snprintf(err, errlen, "%s", msg);
  return -EINVAL;
}

int md_trace_opts_check(const md_trace_opts *o, char *err, size_t errlen) {
  int fam = md_addr_family(&o->target);
  if (fam != AF_INET && fam != AF_INET6)
    return fail(err, errlen, "target: no IPv4 or IPv6 address");
  if (md_addr_family(&o->source) != AF_UNSPEC && md_addr_family(&o->source) != fam)
    return fail(err, errlen, "source address: not of the target's address family");
  if (o->proto != MD_PROTO_ICMP && o->proto != MD_PROTO_UDP && o->proto != MD_PROTO_TCP)
    return fail(err, errlen, "protocol: must be icmp, udp or tcp");
  if (o->cycles < 1 || o->cycles > 1000000)
    return fail(err, errlen, "cycles: must be between 1 and 1000000");
  if (!(o->interval_s >= 0.01 && o->interval_s <= 3600))
    return fail(err, errlen, "interval: must be between 0.01 and 3600 seconds");
  int minsize = md_ip_header_len(fam) + (o->proto == MD_PROTO_TCP ? 20 : 8) + 2;
  if (o->psize < 0 || o->psize > 9000) {
    snprintf(err, errlen, "psize: must be between %d and 9000 bytes", minsize);
    return -EINVAL;
  }
  if (o->first_ttl < 1 || o->first_ttl > MD_MAX_TTL)
    return fail(err, errlen, "first-ttl: must be between 1 and 255");
  if (o->max_ttl < o->first_ttl || o->max_ttl > MD_MAX_TTL)
    return fail(err, errlen, "max-ttl: must be between first-ttl and 255");
  if (o->max_unknown < 1 || o->max_unknown > MD_MAX_TTL)
    return fail(err, errlen, "max-unknown: must be between 1 and 255");
  if (o->tos < 0 || o->tos > 255)
    return fail(err, errlen, "tos: must be between 0 and 255");
  if (!(o->grace_s >= 0.0 && o->grace_s <= 60.0))
    return fail(err, errlen, "gracetime: must be between 0 and 60 seconds");
  return 0;
}
