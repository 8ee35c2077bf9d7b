/* verdict: the operators' MTR procedure applied to one direction.
 *
 * Reads one md_path the way operators are taught to read an mtr report:
 * first the loss at the destination; if there is none, loss at hops before
 * it is ICMP rate limiting on those routers; if there is, read from the
 * destination toward the source to the hop where the loss begins and stays,
 * and name the segment it begins in. The same reading for latency: a rise
 * that stays to the destination is real, a spike at one hop is not.
 *
 * Pure functions, no I/O. Every boundary below is defined, with examples,
 * in docs/verdict.md; the constants are the numbers that document names.
 */
#ifndef MD_VERDICT_H
#define MD_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_path.h"
#include "md_report.h"

/* A hop lost "nothing" when it lost at most max(NOISE_PROBES probes,
 * NOISE_PCT % of its decided probes). */
#define MD_VERDICT_NOISE_PROBES 1.0
#define MD_VERDICT_NOISE_PCT 2.0
/* A hop carries the destination's loss when it lost at least one probe and
 * its loss is at least CARRY_SHARE times the destination's loss. */
#define MD_VERDICT_CARRY_SHARE 0.5
/* A hop below that is a sampling dip when, at the destination's loss rate,
 * losing as few probes as it did has a probability of at least DIP_P. */
#define MD_VERDICT_DIP_P 0.05
/* TTL 1..LOCAL_HOPS: the local ISP. */
#define MD_VERDICT_LOCAL_HOPS 3
/* The DEST_ISP_HOPS hops before the destination: the destination's ISP. */
#define MD_VERDICT_DEST_ISP_HOPS 2
/* A latency rise counts when it is more than max(JUMP_MIN_MS, JUMP_SHARE
 * times the level before it). */
#define MD_VERDICT_JUMP_MIN_MS 10.0
#define MD_VERDICT_JUMP_SHARE 0.5

/* Everything the reading found, with the figures behind it (the diagnosis
 * quotes them). TTLs are the hops' TTLs; 0 means none (or the source, for
 * the *from_ttl fields). Indexes are into p->hops; -1 means none. */
typedef struct md_verdict_detail {
  bool reached;         /* the destination answered at least once */
  int dest_idx;         /* the destination's hop; -1 when not reached */
  int dest_ttl;         /* 0 when not reached */
  uint32_t dest_lost;   /* probes the destination did not answer */
  uint32_t dest_sent;   /* probes to the destination that were decided */
  double dest_loss_pct; /* 100 when not reached */
  bool dest_lossy;      /* lost above noise (always true when not reached) */
  int last_answer_idx;  /* the last hop that answered at all; -1: none did */
  int first_loss_ttl;   /* where the loss begins (unreachable: the first hop that never answered) */
  int first_loss_idx;   /* -1 when that hop is past the end of the trace, or no loss */
  int from_ttl;         /* the nearest answering hop before first_loss_ttl; 0: the source */
  md_segment segment;
  int n_dips; /* lower-loss hops tolerated inside the lossy stretch */
  int dip_ttls[MD_MAX_TTL];
  int n_silent_inside; /* silent hops inside the lossy stretch */
  int n_silent_before; /* silent hops right before its first hop: it may begin there */
  int n_rate_limited;
  int rate_limited_ttls[MD_MAX_TTL];
  int latency_jump_ttl;     /* 0: no rise that stays */
  int latency_from_ttl;     /* the answering hop before the rise; 0: the source */
  double latency_before_ms; /* the level before the rise */
  double latency_after_ms;  /* the lowest average from the rise to the end */
} md_verdict_detail;

/* The reading itself, without allocating: the verdict, the diagnosis and the
 * tests all take their figures from here so that they cannot disagree.
 * 0; -EINVAL for NULL; -ENODATA when no probe of the path was decided. */
int md_verdict_analyse(const md_path *p, md_verdict_detail *d);

/* PATH.verdict for a path: fills v (which must be empty or cleared; v is
 * left cleared on error). 0, -EINVAL, -ENODATA (as above), -ENOMEM. */
int md_verdict(const md_path *p, md_path_verdict *v);

/* Frees what md_verdict allocated and zeroes v (present = false). NULL is fine. */
void md_verdict_clear(md_path_verdict *v);

/* The documented local-ISP check (compare with a trace to a reference
 * target) is needed for this direction: the loss begins, or the responses
 * stop, within the first MD_VERDICT_LOCAL_HOPS hops. */
bool md_verdict_needs_reference(const md_path_verdict *v);

/* The noise rule: more than max(1 probe, 2 %) of `sent` decided probes lost. */
bool md_verdict_lost_above_noise(uint32_t lost, uint32_t sent);

/* The destination's hop (index into p->hops) by the rule of docs/verdict.md:
 * when p->reached, the first hop that has the target among its responders,
 * else the last hop that answered. -1 when not reached. Hops after it are
 * not read. */
int md_verdict_destination_idx(const md_path *p);

/* A hop's decided probes (sent - in transit), the ones that got no answer,
 * and that as a percentage (0 when none was decided): the figures every
 * rule here is stated in. */
uint32_t md_verdict_hop_sent(const md_hop *h);
uint32_t md_verdict_hop_lost(const md_hop *h);
double md_verdict_hop_loss_pct(const md_hop *h);

/* Numeric text of a hop's first responder into buf; "???" for a silent hop. */
const char *md_verdict_hop_ip(const md_hop *h, char *buf, size_t len);

/* The segment in operator words ("the local ISP (the first three hops)"). */
const char *md_verdict_segment_words(md_segment s);

#endif
