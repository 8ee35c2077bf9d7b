/* diagnosis: the first combined reading of both directions (CONTRACT.md
 * "diagnosis"): status, which direction, the suspect link with its
 * evidence and confidence, the rate-limited routers of both paths, a
 * summary operators can forward, and advice.
 *
 * This first version reads the two verdicts side by side and knows two
 * joint patterns (docs/verdict.md "Diagnosis"): a destination that seems to
 * drop probes while the other trace loses from its first link (one fault on
 * that end's access link), and loss beginning on both sides of one shared
 * link. It cannot tell the direction of travel in those two cases; the
 * one-way stream and follow-up probes of the next version will.
 *
 * Pure functions, no I/O.
 */
#ifndef MD_DIAGNOSIS_H
#define MD_DIAGNOSIS_H

#include <stdbool.h>

#include "md_path.h"
#include "md_report.h"

typedef struct md_diag_input {
  const md_path *forward; /* A -> B; NULL: A's run produced nothing */
  const md_path *reverse; /* B -> A; NULL: B is no agent, or its run produced nothing */
  /* The verdicts md_verdict() made of these paths; quoted in the summary.
   * NULL (or not present): made here. The decisions are always taken from
   * the paths through md_verdict_analyse(), so they cannot disagree. */
  const md_path_verdict *forward_verdict, *reverse_verdict;
  const md_alignment *alignment; /* NULL: none (then no joint pattern on a shared link) */
  bool reverse_expected;         /* B is an agent: a missing reverse path is a failure */
  /* The agents' own addresses, for a suspect link leaving the source (TTL
   * 0). NULL: the other path's target (A = reverse->target, B =
   * forward->target), else the path's source name. */
  const char *a_address, *b_address;
} md_diag_input;

/* Fill d (empty or cleared) from the input. 0; -EINVAL (NULL in or d);
 * -ENOMEM (d left cleared). */
int md_diagnose(const md_diag_input *in, md_diagnosis *d);

/* Frees what md_diagnose allocated and zeroes d. NULL is fine. */
void md_diagnosis_clear(md_diagnosis *d);

/* The whole reading for a report, what the orchestration calls once both
 * runs are in: r->forward_verdict, r->reverse_verdict, r->alignment and
 * r->diagnosis are cleared (md_verdict_clear & co.) and filled from
 * r->forward, r->reverse, r->b.present and the agents' probe addresses.
 * 0 or -ENOMEM (what was filled stays, consistent). */
int md_report_analyse(md_report *r);

/* The joint model of a report (localise.h) with its one-way figures and
 * follow-ups fed in, for the orchestration to plan follow-up probes.
 * 0, -ENODATA (a path missing or not reached), -ENOMEM. */
struct md_localise;
int md_report_localise(const md_report *r, struct md_localise **out);

/* The documented local-ISP check: which agents should trace a reference
 * target, because the loss begins (or responses stop) within the first
 * three hops of their own trace. A bit set of these, 0 for none. */
enum { MD_REFERENCE_FROM_A = 1u << 0, MD_REFERENCE_FROM_B = 1u << 1 };
unsigned md_reference_checks(const md_path_verdict *forward, const md_path_verdict *reverse);

#endif
