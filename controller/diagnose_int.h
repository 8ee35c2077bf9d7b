/* diagnose_int.h: the state shared by the three parts of `mtrctl diagnose`.
 * Not a public header (diagnose.h is).
 *
 * The flow is CLI (cli_diagnose.c) -> orchestration -> agents -> results ->
 * merge -> verdict -> renderers; the orchestration step is split in three:
 *
 *   diagnose.c           the two runs: setup, connecting, starting both at
 *                        one instant, progress, deadline and Ctrl-C, the
 *                        client callbacks, finishing, the exit status
 *   diagnose_oneway.c    the agent-to-agent one-way streams and their figures
 *   diagnose_followup.c  the reference check (local ISP) and the follow-up
 *                        pings that separate the joint model's explanations
 *
 * All three share one `diag` (with its two `side`s) and run on one libuv
 * loop; the functions below are the only calls between the files.
 */
#ifndef MD_DIAGNOSE_INT_H
#define MD_DIAGNOSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client.h"
#include "diagnose.h"
#include "md_addr.h"
#include "md_path.h"
#include "md_report.h"
#include "oneway.h"

#define MD_FOLLOWUP_MAX 4 /* follow-up probes in one round (within max_concurrent_runs 4) */

/* One end of the diagnosis: an agent (or, for B, a plain address), its
 * session, and the runs it was ordered to do. */
typedef struct side {
  struct diag *d;
  int idx;                   /* 0: A, 1: B */
  const md_ctl_agent *agent; /* NULL: B is a plain address */
  md_report_agent *ra;
  md_client *client;
  bool connecting, ready, closed;
  char target[MD_ADDRSTRLEN]; /* numeric address this side traces to */
  char target_name[256];
  char run_id[48], ref_id[48];
  bool run_open, ref_open; /* started, no result yet */
  int64_t accepted_ctl_ns; /* scheduled first probe, controller clock */
  uint32_t cycles_done;
  int hops;
  int64_t offset_ns, rtt_ns; /* from time sync */
  int64_t heard_mono;        /* last news of its run (ready, accepted, HopUpdate) */
} side;

/* One direction of the one-way measurement: the sender is one agent, the
 * receiver the other; the receiver is asked first (it says its port). */
typedef struct ow_stream {
  bool planned, recv_open, send_open;
  int sender, receiver; /* side indexes */
  char id[48];
  md_oneway_plan plan;
  bool have_send, have_recv;
  md_client_stream_result send_res, recv_res; /* numbers only (strings dropped) */
  char why[512];                              /* why it produced nothing, when it did not */
} ow_stream;

/* One `mtrctl diagnose` in progress: both sides, the timers, the streams,
 * the reference check and the follow-up probes. Lives for md_diag_run. */
typedef struct diag {
  uv_loop_t *loop;
  md_tls_ctx *tls;
  const md_diag_opts *o;
  md_report *r;
  side s[2];
  uv_timer_t deadline;
  uv_signal_t sigint;
  bool started, stopping, finished;
  int64_t t0_mono;
  const char *reference;
  unsigned reference_from; /* MD_REFERENCE_FROM_* */
  bool reference_asked;
  char ref_note[600];           /* why the reference check did not run */
  char ref_addr[MD_ADDRSTRLEN]; /* the reference, numeric */
  ow_stream ow[2];              /* [0] A->B, [1] B->A */
  bool followup_asked;
  int n_fu; /* follow-up probes started */
  struct fu {
    int side;
    char id[64];
    char target[MD_ADDRSTRLEN];
    char why[512];
    bool open;
  } fu[MD_FOLLOWUP_MAX];
} diag;

/* ---- diagnose.c: the orchestration */

/* Everything is in, or a step has more to start: called after every event
 * (a session ready or closed, a result, a refusal) to move the run on. */
void md__check_progress(diag *d);
/* A numeric address for a name or literal, of the family asked for (0: any). */
int md__resolve(const char *host, int family, char *out, size_t outlen, char *err, size_t errlen);
/* A RunRequest with the diagnosis's options for one run of side s; start_ctl_ns
 * (controller clock) 0: start at once. */
void md__fill_request(diag *d, side *s, Mtrdiag__V1__RunRequest *req, const char *id,
                      const char *target, const char *target_name, int64_t start_ctl_ns);
/* strdup that passes NULL through. */
char *md__xstrdup(const char *s);

/* ---- diagnose_oneway.c: the one-way streams */

/* The session callbacks of the streams (set on each session when it is ready). */
extern const md_client_stream_cb md__stream_cb;
/* Both agents ready: ask each direction's receiver to listen. */
void md__start_streams(diag *d);
/* The stream with this id, or NULL. */
ow_stream *md__find_stream(diag *d, const char *id);
/* Record why a stream produced nothing. */
__attribute__((format(printf, 2, 3))) void md__set_why(ow_stream *w, const char *fmt, ...);
/* The report's one_way figures from both directions' results. */
void md__compute_oneway(diag *d);
/* An advice line saying why the one-way figures are missing. */
void md__oneway_advice(diag *d);

/* ---- diagnose_followup.c: the reference check and the follow-up probes */

/* Start the reference trace(s) when the procedure asks; true if one started. */
bool md__start_reference(diag *d);
/* A reference run's result, as a follow-up entry of the report. */
void md__add_reference_followup(diag *d, side *s, const md_path *p);
/* Start the follow-up pings the joint model asks for; true if one started. */
bool md__start_followups(diag *d);
/* A result that belongs to a follow-up ping; false if it is not one. */
bool md__followup_result(diag *d, side *s, md_client_result *res);
/* The agent refused the reference run: note it for the advice. */
void md__ref_refused(diag *d, side *s, const char *message);
/* Advice lines from the reference check. */
void md__reference_advice(diag *d);

#endif
