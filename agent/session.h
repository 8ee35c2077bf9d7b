/* session: one controller connection on the agent, from TLS handshake to
 * close (docs/agent.md, "Sessions").
 *
 *   HANDSHAKE --TLS up, name allowed--> HELLO --Hello/HelloAck--> READY
 *       |                                 |                          |
 *       +-- name not allowed: Error NOT_AUTHORISED, close            |
 *                                         +-- anything else: Error UNEXPECTED_MESSAGE, close
 *   READY serves TimeSyncRequest, RunRequest, StreamRequest and Cancel; runs
 *   report back with RunAccepted, HopUpdate and RunResult, one-way streams
 *   (stream.h) with StreamAccepted and StreamResult. When the connection
 *   ends, its runs and streams are cancelled at once.
 *
 * Sessions and runs share one md_session_env, owned by the daemon: the
 * loop, the configuration, the prober, the policy (which counts runs over
 * all sessions) and the counters.
 */
#ifndef MD_SESSION_H
#define MD_SESSION_H

#include <stdbool.h>
#include <uv.h>

#include "engine.h"
#include "md_chan.h"
#include "md_config.h"
#include "policy.h"

/* Whole-agent counters (md_daemon_get_stats). */
typedef struct md_agent_stats {
  unsigned sessions;         /* controller connections open now */
  unsigned active_runs;      /* runs scheduled or probing now */
  unsigned long connections; /* accepted since start */
  unsigned long over_limit;  /* closed at once: policy.max_connections reached */
  unsigned long not_authorised;
  unsigned long runs_accepted, runs_refused;
  unsigned long runs_ok, runs_cancelled, runs_failed;
  unsigned active_streams; /* one-way streams open now (either role) */
  unsigned long streams_accepted, streams_refused;
} md_agent_stats;

typedef struct md_session md_session;

/* Log lines a peer can cause without a session that is up are rate-limited
 * per peer address (docs/agent.md, "Logging"): the first of each kind is
 * logged, the next ones within MD_SESSION_LOGLIM_WINDOW_MS are only counted,
 * and one summary line with the count follows when the window ends. */
enum md_session_logkind {
  MD_SESSION_LOG_EARLY_END,  /* a connection that ended before its session was up */
  MD_SESSION_LOG_OVER_LIMIT, /* refused: policy.max_connections reached */
  MD_SESSION_LOG_KINDS
};
#define MD_SESSION_LOGLIM_WINDOW_MS 60000u
#define MD_SESSION_LOGLIM_MAX 128 /* peers remembered (the oldest window makes room) */
typedef struct md_session_loglim {
  md_addr addr;             /* port 0 */
  uint64_t since_ms;        /* uv_now() when its window began */
  unsigned long suppressed; /* lines not logged in this window */
  char last[160];           /* the last suppressed outcome, for the summary */
  unsigned kind;
  bool used;
} md_session_loglim;

/* What every session and run shares; embedded in the daemon. */
typedef struct md_session_env {
  uv_loop_t *loop;
  const md_agent_config *cfg;
  md_tls_ctx *tls;
  md_prober *prober;
  md_policy policy;
  md_session *sessions; /* open sessions */
  unsigned n_objects;   /* sessions and runs not yet freed */
  md_agent_stats stats;
  md_session_loglim loglim[MD_SESSION_LOGLIM_MAX]; /* per-peer log rate limit */
  /* Called after a session or a run has been freed (for the daemon's
   * connection limit and its stop). Optional. */
  void (*on_released)(struct md_session_env *env);
} md_session_env;

/* HopUpdates are skipped while more than this is waiting to be written. */
#define MD_SESSION_BACKLOG_MAX (256u * 1024u)
/* A RunRequest may start at most this far in the future. */
#define MD_SESSION_MAX_START_DELAY_NS (60LL * 1000000000LL)

/* Accept a pending connection on a listener and start its TLS handshake.
 * 0 or negative errno (nothing was kept then). */
int md_session_accept(md_session_env *env, uv_stream_t *listener);

/* End a session on purpose (the agent stops): cancel its runs, let their
 * RunResults (CANCELLED, message `why`) go out, then close. */
void md_session_shutdown(md_session *s, const char *why);
/* The same for every open session. */
void md_session_shutdown_all(md_session_env *env, const char *why);

/* Should a line of this kind about peer be logged now? true for the first
 * of a window; false: it is counted (what, e.g. the outcome, is kept for
 * the summary). */
bool md_session_log_allowed(md_session_env *env, const md_addr *peer, unsigned kind,
                            const char *what);
/* Log the summary of every window that is over (all: of every window, at
 * stop) and forget it. The daemon calls it from a timer. */
void md_session_log_flush(md_session_env *env, bool all);

/* The trace options a RunRequest asks for, mtr's defaults filled in for
 * zero fields (docs/protocol.md). o->target_name points into r (copy it
 * before r goes); o->source_name is source_name. 0, or -EINVAL with the
 * field named in err. */
int md_run_opts_from_request(const Mtrdiag__V1__RunRequest *r, const char *source_name,
                             md_trace_opts *o, char *err, size_t errlen);

#endif
