/* policy: what a controller may make this agent do, checked for every
 * RunRequest after md_wire_check_run_request (docs/agent.md, "Policy").
 *
 *   - targets: deny by default; only addresses inside policy.allow_targets,
 *     and never an unspecified, multicast, broadcast (also the directed
 *     broadcast of a subnet of this host), IPv4-mapped, or own address;
 *   - source (-a): only an address of this host (raw sockets would send
 *     any source the request names: no spoofing on a controller's word);
 *   - options: policy.max_cycles, min_interval, max_psize, max_ttl;
 *   - load over all runs: policy.max_concurrent_runs and
 *     policy.max_probes_per_second, where a run is reckoned to send
 *     (max_ttl - first_ttl + 1) / interval probes per second;
 *   - one-way streams (md_policy_check_stream): the peer obeys the target
 *     rules; psize obeys max_psize; at most max_concurrent_runs streams at a
 *     time (counted apart from runs); a sending stream's packets per second
 *     count against max_probes_per_second together with the runs'.
 *
 * Every refusal names the rule and its value ("cycles 5000 is over
 * policy.max_cycles 1000"). Option and target refusals are MD_POLICY_DENIED
 * (Error POLICY_DENIED), load refusals MD_POLICY_LIMIT (LIMIT_EXCEEDED).
 */
#ifndef MD_POLICY_H
#define MD_POLICY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "md_config.h"
#include "mtrdiag.pb-c.h"

enum {
  MD_POLICY_DENIED = -EACCES, /* target or options outside the policy */
  MD_POLICY_LIMIT = -EBUSY,   /* too many runs or probes per second right now */
};

/* One address of this host, with its prefix length (for directed broadcasts). */
typedef struct md_policy_own {
  md_addr addr;
  int prefix;
  bool loopback; /* a valid source, but not refused as a target */
} md_policy_own;

typedef struct md_policy {
  const md_agent_config *cfg; /* limits and allow_targets; not owned */
  md_policy_own *own;         /* this host's addresses (never targets) */
  size_t n_own;
  unsigned runs;     /* accepted runs not yet finished (scheduled or probing) */
  double pps;        /* their estimated probes per second, summed */
  unsigned streams;  /* accepted one-way streams not yet finished (either role) */
  double stream_pps; /* packets per second of the sending ones, summed */
} md_policy;

/* Bind a policy to a configuration (which must outlive it); no load yet. */
void md_policy_init(md_policy *p, const md_agent_config *cfg);
/* Release the own-address list. */
void md_policy_free(md_policy *p);

/* Replace this host's address list (tests; md_policy_load_own uses it). 0 or -ENOMEM. */
int md_policy_set_own(md_policy *p, const md_policy_own *own, size_t n);
/* Refresh this host's addresses from its interfaces. Loopback addresses
 * are kept as sources but not refused as targets (a policy may allow
 * 127.0.0.1 on purpose). 0 or negative errno. */
int md_policy_load_own(md_policy *p);

/* The probes per second a run is reckoned to send at most. */
double md_policy_run_pps(const md_trace_opts *o);

/* May a run with these (defaults applied) options start now? 0,
 * MD_POLICY_DENIED or MD_POLICY_LIMIT, with the reason in err. */
int md_policy_check(const md_policy *p, const md_trace_opts *o, char *err, size_t errlen);

/* Count an accepted run against the load limits, and give it back when it ends. */
void md_policy_take(md_policy *p, const md_trace_opts *o);
void md_policy_release(md_policy *p, const md_trace_opts *o);

/* May a one-way stream start now? peer: the other agent's address
 * (checked like a trace target); pps: packets per second it sends (0 for a
 * receiver); psize: whole IP packet bytes. 0, MD_POLICY_DENIED or
 * MD_POLICY_LIMIT, with the reason in err. */
int md_policy_check_stream(const md_policy *p, const md_addr *peer, double pps, unsigned psize,
                           char *err, size_t errlen);
/* Count an accepted stream, and give it back when its StreamResult is sent. */
void md_policy_take_stream(md_policy *p, double pps);
void md_policy_release_stream(md_policy *p, double pps);

/* The Error code to send for a result of md_policy_check. */
Mtrdiag__V1__ErrorCode md_policy_error_code(int rc);

#endif
