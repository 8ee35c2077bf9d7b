/* diagnose: the orchestration of `mtrctl diagnose A B`.
 *
 *   connect to A (and B when B is an agent), measure their clocks
 *   -> order A->B and B->A to start at the same instant (each on its own clock)
 *   -> collect live hop updates and the results
 *   -> the documented local-ISP check (a reference target) when it applies
 *   -> one report: paths, alignment, verdicts, diagnosis (md_report_analyse)
 *
 * Whatever fails (an agent unreachable, refusing, dying mid-run; Ctrl-C; the
 * whole-run timeout), the data gathered so far is kept and the report names
 * what failed. The caller renders, stores and chooses the exit status.
 */
#ifndef MD_DIAGNOSE_H
#define MD_DIAGNOSE_H

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "md_config.h"
#include "md_report.h"
#include "md_tls.h"
#include "md_wire.h"

typedef struct md_diag_opts {
  const md_ctl_config *cfg;
  const char *a;               /* inventory name of A */
  const char *b;               /* inventory name, or an address / DNS name (no agent) */
  Mtrdiag__V1__RunRequest run; /* options for both runs (run_id, target, start filled here) */
  md_report_options ropts;     /* the same options, as the report shows them */
  double timeout_s;            /* whole run; 0: cycles * interval + grace + 30 s */
  const char *reference;       /* target of the local-ISP check; NULL: config's, else none */
  FILE *progress;              /* live progress (a terminal); NULL: none */
  const char *ran_by;          /* for the report: who ran it */
  bool no_oneway;              /* skip the agent-to-agent one-way streams */
} md_diag_opts;

/* Hooks the CLI gives so an interrupted run is stored before it ends. */
typedef struct md_diag_hooks {
  /* The report exists (agents named, nothing measured yet). */
  void (*on_begin)(const md_report *r, void *ud);
  void *ud;
} md_diag_hooks;

/* Run one diagnosis on loop (returns when it is over). *out is the report
 * (always set on 0, also when agents failed: see its errors). SIGINT during
 * the run cancels both runs and finishes with what was gathered.
 * 0, or -EINVAL with err set for usage errors (unknown agent, bad B). */
int md_diag_run(uv_loop_t *loop, md_tls_ctx *tls, const md_diag_opts *o, const md_diag_hooks *hooks,
                md_report **out, char *err, size_t errlen);

/* Exit status for a finished report: 2 an agent refused the request (policy,
 * limits), 3 an agent failed or the run was cut short, 1 a problem found,
 * 0 healthy. */
int md_diag_exit_status(const md_report *r);

#endif
