/* policy: the checks a RunRequest passes before the agent probes anything.
 * See policy.h for the rules; docs/agent.md for the operator's view. */
#include "policy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Float slack for comparing intervals that came from milliseconds with
 * seconds written in the configuration (100 ms against "0.1"). */
#define MD_POLICY_EPS 1e-9
/* allow_targets entries quoted in a refusal; the rest are counted. */
#define MD_POLICY_QUOTE_MAX 4

/* A policy with no load yet and no own addresses. */
void md_policy_init(md_policy *p, const md_agent_config *cfg) {
  memset(p, 0, sizeof *p);
  p->cfg = cfg;
}

/* The own-address list is the only memory a policy holds. */
void md_policy_free(md_policy *p) {
  free(p->own);
  p->own = NULL;
  p->n_own = 0;
}

/* Tests set the host's addresses; md_policy_load_own() reads them. */
int md_policy_set_own(md_policy *p, const md_policy_own *own, size_t n) {
  md_policy_own *copy = NULL;
  if (n > 0) {
    copy = calloc(n, sizeof *copy);
    if (!copy)
      return -ENOMEM;
    memcpy(copy, own, n * sizeof *copy);
  }
  free(p->own);
  p->own = copy;
  p->n_own = n;
  return 0;
}

/* Leading one bits of a netmask: its prefix length. */
static int mask_prefix(const md_addr *mask) {
  size_t len;
  const uint8_t *b = md_addr_bytes(mask, &len);
  int n = 0;
  for (size_t i = 0; b && i < len; i++) {
    for (int bit = 7; bit >= 0; bit--) {
      if (!(b[i] & (1u << bit)))
        return n;
      n++;
    }
  }
  return n;
}

/* This host's addresses and prefixes, from its interfaces, now. */
int md_policy_load_own(md_policy *p) {
  uv_interface_address_t *ifs = NULL;
  int count = 0;
  int rc = uv_interface_addresses(&ifs, &count);
  if (rc < 0)
    return rc;
  md_policy_own *own = calloc(count > 0 ? (size_t)count : 1, sizeof *own);
  if (!own) {
    uv_free_interface_addresses(ifs, count);
    return -ENOMEM;
  }
  size_t n = 0;
  for (int i = 0; i < count; i++) {
    md_addr a, m;
    memset(&a, 0, sizeof a);
    memset(&m, 0, sizeof m);
    if (ifs[i].address.address4.sin_family == AF_INET) {
      a.in4 = ifs[i].address.address4;
      m.in4 = ifs[i].netmask.netmask4;
      m.in4.sin_family = AF_INET;
    } else if (ifs[i].address.address6.sin6_family == AF_INET6) {
      a.in6 = ifs[i].address.address6;
      m.in6 = ifs[i].netmask.netmask6;
      m.in6.sin6_family = AF_INET6;
    } else {
      continue;
    }
    md_addr_set_port(&a, 0);
    own[n].addr = a;
    own[n].prefix = mask_prefix(&m);
    own[n].loopback = ifs[i].is_internal;
    n++;
  }
  uv_free_interface_addresses(ifs, count);
  free(p->own);
  p->own = own;
  p->n_own = n;
  return 0;
}

/* Every TTL once per interval: the most a run sends. */
double md_policy_run_pps(const md_trace_opts *o) {
  int ttls = o->max_ttl - o->first_ttl + 1;
  if (ttls < 1)
    ttls = 1;
  return o->interval_s > 0 ? ttls / o->interval_s : (double)ttls * 100.0;
}

/* snprintf into err, tolerating a NULL buffer. */
static int refuse(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(int rc, char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* The IPv4 directed broadcast of one of this host's subnets, if a is one. */
static const md_policy_own *directed_broadcast(const md_policy *p, const md_addr *a) {
  if (md_addr_family(a) != AF_INET)
    return NULL;
  uint32_t t = ntohl(a->in4.sin_addr.s_addr);
  for (size_t i = 0; i < p->n_own; i++) {
    const md_policy_own *o = &p->own[i];
    if (o->loopback || md_addr_family(&o->addr) != AF_INET || o->prefix < 1 || o->prefix > 30)
      continue;
    uint32_t mask = 0xffffffffu << (32 - o->prefix);
    uint32_t net = ntohl(o->addr.in4.sin_addr.s_addr) & mask;
    if (t == (net | ~mask))
      return o;
  }
  return NULL;
}

/* "198.51.100.10/32, 2001:db8::/32 and 3 more" for a refusal. */
static void quote_allowed(const md_agent_config *cfg, char *buf, size_t len) {
  size_t n = cfg->policy.n_allow_targets, off = 0;
  buf[0] = 0;
  for (size_t i = 0; i < n && i < MD_POLICY_QUOTE_MAX && off < len; i++) {
    char a[MD_ADDRSTRLEN];
    md_addr_str(&cfg->policy.allow_targets[i].addr, a, sizeof a);
    int w = snprintf(buf + off, len - off, "%s%s/%d", i ? ", " : "", a,
                     cfg->policy.allow_targets[i].prefix);
    if (w < 0)
      return;
    off += (size_t)w;
  }
  if (n > MD_POLICY_QUOTE_MAX && off < len)
    snprintf(buf + off, len - off, " and %zu more", n - MD_POLICY_QUOTE_MAX);
}

/* The target rules: never special addresses, then only allowed prefixes. */
static int check_target(const md_policy *p, const md_addr *t, char *err, size_t errlen) {
  char a[MD_ADDRSTRLEN];
  md_addr_str(t, a, sizeof a);
  if (md_addr_is_unspecified(t))
    return refuse(MD_POLICY_DENIED, err, errlen,
                  "target %s is the unspecified address: never probed", a);
  if (md_addr_is_broadcast(t))
    return refuse(MD_POLICY_DENIED, err, errlen, "target %s is a broadcast address: never probed",
                  a);
  if (md_addr_is_multicast(t))
    return refuse(MD_POLICY_DENIED, err, errlen, "target %s is a multicast address: never probed",
                  a);
  if (md_addr_family(t) == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&t->in6.sin6_addr)) {
    char v4[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &t->in6.sin6_addr.s6_addr[12], v4, sizeof v4);
    return refuse(MD_POLICY_DENIED, err, errlen,
                  "target %s is an IPv4-mapped IPv6 address: ask for %s instead", a, v4);
  }
  const md_policy_own *bc = directed_broadcast(p, t);
  if (bc) {
    char net[INET_ADDRSTRLEN];
    uint32_t mask = 0xffffffffu << (32 - bc->prefix);
    struct in_addr n = {htonl(ntohl(bc->addr.in4.sin_addr.s_addr) & mask)};
    inet_ntop(AF_INET, &n, net, sizeof net);
    return refuse(MD_POLICY_DENIED, err, errlen,
                  "target %s is the broadcast address of this host's subnet %s/%d: never probed", a,
                  net, bc->prefix);
  }
  for (size_t i = 0; i < p->n_own; i++)
    if (!p->own[i].loopback && md_addr_equal(&p->own[i].addr, t))
      return refuse(MD_POLICY_DENIED, err, errlen,
                    "target %s is an address of this agent's own host: never probed", a);
  const md_agent_config *cfg = p->cfg;
  for (size_t i = 0; i < cfg->policy.n_allow_targets; i++) {
    const md_cidr *c = &cfg->policy.allow_targets[i];
    if (md_addr_same_prefix(&c->addr, t, c->prefix))
      return 0;
  }
  if (cfg->policy.n_allow_targets == 0)
    return refuse(MD_POLICY_DENIED, err, errlen,
                  "target %s is not in policy.allow_targets, which is empty: this agent may "
                  "probe nothing",
                  a);
  char list[256];
  quote_allowed(cfg, list, sizeof list);
  return refuse(MD_POLICY_DENIED, err, errlen, "target %s is not in policy.allow_targets [%s]", a,
                list);
}

/* A source address (-a) must be one of this host's: raw sockets would put
 * any address the request names into the packets. */
static int check_source(const md_policy *p, const md_addr *src, char *err, size_t errlen) {
  if (md_addr_family(src) == AF_UNSPEC)
    return 0;
  for (size_t i = 0; i < p->n_own; i++)
    if (md_addr_equal(&p->own[i].addr, src))
      return 0;
  char a[MD_ADDRSTRLEN];
  return refuse(MD_POLICY_DENIED, err, errlen,
                "source %s is not an address of this host: probes are sent only from its own "
                "addresses",
                md_addr_str(src, a, sizeof a));
}

/* Targets first, then options, then the load: the first refusal wins. */
int md_policy_check(const md_policy *p, const md_trace_opts *o, char *err, size_t errlen) {
  const md_agent_config *cfg = p->cfg;
  int rc = check_target(p, &o->target, err, errlen);
  if (rc == 0)
    rc = check_source(p, &o->source, err, errlen);
  if (rc < 0)
    return rc;
  if (o->cycles < 0 || (unsigned)o->cycles > cfg->policy.max_cycles)
    return refuse(MD_POLICY_DENIED, err, errlen, "cycles %d is over policy.max_cycles %u",
                  o->cycles, cfg->policy.max_cycles);
  if (o->interval_s < cfg->policy.min_interval - MD_POLICY_EPS)
    return refuse(MD_POLICY_DENIED, err, errlen, "interval %g s is under policy.min_interval %g s",
                  o->interval_s, cfg->policy.min_interval);
  if (o->psize < 0 || (unsigned)o->psize > cfg->policy.max_psize)
    return refuse(MD_POLICY_DENIED, err, errlen, "psize %d is over policy.max_psize %u", o->psize,
                  cfg->policy.max_psize);
  if (o->max_ttl < 0 || (unsigned)o->max_ttl > cfg->policy.max_ttl)
    return refuse(MD_POLICY_DENIED, err, errlen, "max_ttl %d is over policy.max_ttl %u", o->max_ttl,
                  cfg->policy.max_ttl);
  if (p->runs >= cfg->policy.max_concurrent_runs)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "policy.max_concurrent_runs %u reached: %u runs are active",
                  cfg->policy.max_concurrent_runs, p->runs);
  double need = md_policy_run_pps(o), cap = cfg->policy.max_probes_per_second;
  if (need > cap + MD_POLICY_EPS)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "this run needs ~%.0f probes/s (TTLs %d-%d every %g s), over "
                  "policy.max_probes_per_second %u",
                  need, o->first_ttl, o->max_ttl, o->interval_s, cfg->policy.max_probes_per_second);
  double used = (p->runs ? p->pps : 0) + (p->streams ? p->stream_pps : 0);
  if (used + need > cap + MD_POLICY_EPS && p->streams == 0)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "this run needs ~%.0f probes/s and the %u active runs ~%.0f: over "
                  "policy.max_probes_per_second %u",
                  need, p->runs, used, cfg->policy.max_probes_per_second);
  if (used + need > cap + MD_POLICY_EPS)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "this run needs ~%.0f probes/s and the %u active runs and %u streams ~%.0f: "
                  "over policy.max_probes_per_second %u",
                  need, p->runs, p->streams, used, cfg->policy.max_probes_per_second);
  return 0;
}

/* A stream's peer is a target like any other; its rate shares the runs' budget. */
int md_policy_check_stream(const md_policy *p, const md_addr *peer, double pps, unsigned psize,
                           char *err, size_t errlen) {
  const md_agent_config *cfg = p->cfg;
  int rc = check_target(p, peer, err, errlen);
  if (rc < 0)
    return rc;
  if (psize > cfg->policy.max_psize)
    return refuse(MD_POLICY_DENIED, err, errlen, "psize %u is over policy.max_psize %u", psize,
                  cfg->policy.max_psize);
  if (p->streams >= cfg->policy.max_concurrent_runs)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "policy.max_concurrent_runs %u reached: %u streams are active",
                  cfg->policy.max_concurrent_runs, p->streams);
  double cap = cfg->policy.max_probes_per_second;
  if (pps > cap + MD_POLICY_EPS)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "this stream sends ~%.0f packets/s, over policy.max_probes_per_second %u", pps,
                  cfg->policy.max_probes_per_second);
  double used = (p->runs ? p->pps : 0) + (p->streams ? p->stream_pps : 0);
  if (pps > 0 && used + pps > cap + MD_POLICY_EPS)
    return refuse(MD_POLICY_LIMIT, err, errlen,
                  "this stream sends ~%.0f packets/s and the %u active runs and %u streams ~%.0f: "
                  "over policy.max_probes_per_second %u",
                  pps, p->runs, p->streams, used, cfg->policy.max_probes_per_second);
  return 0;
}

/* An accepted stream counts from now (also one scheduled for later). */
void md_policy_take_stream(md_policy *p, double pps) {
  p->streams++;
  p->stream_pps += pps;
}

/* A stream has sent its StreamResult: its share is free again. */
void md_policy_release_stream(md_policy *p, double pps) {
  if (p->streams > 0)
    p->streams--;
  p->stream_pps -= pps;
  if (p->streams == 0 || p->stream_pps < 0)
    p->stream_pps = 0;
}

/* An accepted run (also a scheduled one) counts from now. */
void md_policy_take(md_policy *p, const md_trace_opts *o) {
  p->runs++;
  p->pps += md_policy_run_pps(o);
}

/* A run has sent its RunResult: its share is free again. */
void md_policy_release(md_policy *p, const md_trace_opts *o) {
  if (p->runs > 0)
    p->runs--;
  p->pps -= md_policy_run_pps(o);
  if (p->runs == 0 || p->pps < 0)
    p->pps = 0; /* no drift from repeated float sums */
}

Mtrdiag__V1__ErrorCode md_policy_error_code(int rc) {
  switch (rc) {
  case 0:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED;
  case MD_POLICY_DENIED:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED;
  case MD_POLICY_LIMIT:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED;
  default:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL;
  }
}
