/* md-oneway: a test driver for one-way streams between two agents, used by
 * tests/lab/test_oneway.sh. It connects to both agents of an mtrctl
 * configuration through the controller's client (controller/client.h),
 * runs one stream each way at the same time (A -> B "forward", B -> A
 * "reverse"; each direction: the receiver first, then the sender to the
 * port it names) and prints one JSON object:
 *
 *   {"forward": {"sent", "recv", "loss_pct", "delay_avg_ms", "delay_stdev_ms",
 *                "raw_delay_avg_ms", "duplicates", "reordered", "ignored"},
 *    "reverse": {...}, "offset_ms": {"a": ..., "b": ...}}
 *
 * delay_avg_ms has the clock offsets (from each session's time sync)
 * removed, as md_oneway_compute does for the report; raw_delay_avg_ms is the
 * receiver's clock minus the sender's as measured.
 *
 *   md-oneway --config FILE A B [-c COUNT] [-i SECONDS] [-s PSIZE] [--grace MS]
 *
 * Exit 0 with the JSON, 1 when a session or a stream failed (the reason on
 * stderr), 2 for usage errors. Not installed; the CLI is untouched. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "md_config.h"
#include "md_log.h"
#include "md_time.h"
#include "md_tls.h"
#include "oneway.h"

#define START_MARGIN_NS 300000000LL /* from "both ready" to the first packet */
#define CONNECT_TIMEOUT_MS 15000    /* generous: the lab may drop the control traffic too */

enum { FWD = 0, REV = 1 };
static const char *const g_ids[2] = {"ow-fwd", "ow-rev"};

typedef struct side {
  struct tool *t;
  int idx; /* 0: A, 1: B */
  const md_ctl_agent *ag;
  md_client *c;
  char probe[MD_ADDRSTRLEN];
  bool ready, closed;
  int64_t offset_ns;
} side;

typedef struct tool {
  uv_loop_t loop;
  uv_timer_t guard;
  side s[2];
  md_oneway_plan plan[2];
  int64_t start_ns; /* controller clock */
  bool started, failed;
  char why[512];
  md_client_stream_result res[2][2]; /* [direction][0 sender, 1 receiver] */
  bool have[2][2];
  int n_results;
} tool;

/* The first failure is the one reported. */
static void fail(tool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(tool *t, const char *fmt, ...) {
  if (!t->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    t->failed = true;
  }
  for (int i = 0; i < 2; i++)
    if (t->s[i].c && !t->s[i].closed)
      md_client_close(t->s[i].c);
  uv_timer_stop(&t->guard);
}

/* Both sessions up: each direction's receiver is asked first. */
static void start_streams(tool *t) {
  t->started = true;
  t->start_ns = md_now_real_ns() + START_MARGIN_NS;
  for (int d = 0; d < 2; d++) {
    side *rx = &t->s[d == FWD ? 1 : 0];
    Mtrdiag__V1__StreamRequest q;
    char err[256];
    md_oneway_request(&t->plan[d], MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0,
                      md_client_to_agent_ns(rx->c, t->start_ns), &q);
    if (md_client_stream_start(rx->c, &q, err, sizeof err) < 0) {
      fail(t, "%s: cannot start receiving %s: %s", rx->ag->name, g_ids[d], err);
      return;
    }
  }
}

/* Everything is in: close both sessions (the loop then ends). */
static void maybe_done(tool *t) {
  if (t->n_results < 4)
    return;
  uv_timer_stop(&t->guard);
  for (int i = 0; i < 2; i++)
    if (t->s[i].c && !t->s[i].closed)
      md_client_close(t->s[i].c);
}

/* A session is ready: remember its clock offset, start once both are. */
static void on_ready(md_client *c);

/* An Error about a stream (a refusal) or the session. */
static void on_error(md_client *c, const char *run_id, Mtrdiag__V1__ErrorCode code,
                     const char *message) {
  side *s = md_client_data(c);
  fail(s->t, "%s refused %s: %s: %s", s->ag->name, run_id && run_id[0] ? run_id : "the session",
       md_wire_error_name(code), message);
}

/* The session ended; before all results came, that is a failure. */
static void on_close(md_client *c, int status, enum md_client_err kind, const char *reason) {
  side *s = md_client_data(c);
  s->closed = true;
  s->c = NULL;
  if (status != 0)
    fail(s->t, "%s: %s", s->ag->name, reason && reason[0] ? reason : md_client_err_text(kind));
  else if (s->t->n_results < 4)
    fail(s->t, "%s: session closed before the streams ended", s->ag->name);
  for (int i = 0; i < 2; i++)
    if (s->t->s[i].c)
      return;
  if (!uv_is_closing((uv_handle_t *)&s->t->guard))
    uv_close((uv_handle_t *)&s->t->guard, NULL);
}

/* The receiver's port is known: now the sender of that direction. */
static void on_stream_accepted(md_client *c, const md_client_stream_accepted *a) {
  side *s = md_client_data(c);
  tool *t = s->t;
  if (a->role != MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE)
    return;
  int d = strcmp(a->stream_id, g_ids[FWD]) == 0 ? FWD : REV;
  side *tx = &t->s[d == FWD ? 0 : 1];
  Mtrdiag__V1__StreamRequest q;
  char err[256];
  md_oneway_request(&t->plan[d], MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND, a->port,
                    md_client_to_agent_ns(tx->c, t->start_ns), &q);
  if (md_now_real_ns() > t->start_ns)
    fprintf(stderr, "md-oneway: %s accepted after the start time: the sender starts late\n",
            a->stream_id);
  if (md_client_stream_start(tx->c, &q, err, sizeof err) < 0)
    fail(t, "%s: cannot start sending %s: %s", tx->ag->name, a->stream_id, err);
}

/* Keep the numbers of each of the four results. */
static void on_stream_result(md_client *c, const md_client_stream_result *r) {
  side *s = md_client_data(c);
  tool *t = s->t;
  int d = strcmp(r->stream_id, g_ids[FWD]) == 0 ? FWD : REV;
  int k = r->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND ? 0 : 1;
  if (t->have[d][k])
    return;
  t->have[d][k] = true;
  t->res[d][k] = *r;
  t->res[d][k].stream_id = NULL;
  t->res[d][k].message = "";
  t->n_results++;
  if (r->status != MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK) {
    fail(t, "%s: stream %s (%s) did not finish: %s", s->ag->name, r->stream_id,
         k ? "receive" : "send", r->message);
    return;
  }
  maybe_done(t);
}

static const md_client_cb g_cb = {.on_ready = on_ready, .on_error = on_error, .on_close = on_close};
static const md_client_stream_cb g_scb = {on_stream_accepted, on_stream_result};

/* A session is ready: its offset, its stream callbacks; both ready: start. */
static void on_ready(md_client *c) {
  side *s = md_client_data(c);
  s->ready = true;
  s->offset_ns = md_client_get_info(c)->offset_ns;
  md_client_set_stream_cb(c, &g_scb);
  if (s->t->s[0].ready && s->t->s[1].ready && !s->t->started)
    start_streams(s->t);
}

/* The whole thing took too long. */
static void on_guard(uv_timer_t *h) {
  tool *t = h->data;
  fail(t, "timed out waiting for the streams (%d of 4 results)", t->n_results);
}

/* One direction as JSON. */
static void print_dir(const char *name, const tool *t, int d, bool comma) {
  const md_client_stream_result *snd = &t->res[d][0], *rcv = &t->res[d][1];
  int64_t off_s = t->s[d == FWD ? 0 : 1].offset_ns, off_r = t->s[d == FWD ? 1 : 0].offset_ns;
  md_oneway_dir o;
  int rc = md_oneway_compute(snd, rcv, off_s, off_r, &o);
  printf("  \"%s\": {\"sent\": %u, \"recv\": %u, \"loss_pct\": %.3f, \"delay_avg_ms\": %.3f, "
         "\"delay_stdev_ms\": %.3f, \"raw_delay_avg_ms\": %.3f, \"raw_delay_min_ms\": %.3f, "
         "\"raw_delay_max_ms\": %.3f, \"duplicates\": %u, \"reordered\": %u, \"ignored\": %u, "
         "\"computed\": %s}%s\n",
         name, o.sent, o.recv, o.loss_pct, o.delay_avg_ms, o.delay_stdev_ms,
         rcv->delay_avg_ns / 1e6, rcv->delay_min_ns / 1e6, rcv->delay_max_ns / 1e6, rcv->duplicates,
         rcv->reordered, rcv->ignored, rc == 0 ? "true" : "false", comma ? "," : "");
}

/* Usage on stderr, exit 2. */
static int usage(const char *msg) {
  fprintf(stderr,
          "md-oneway: %s\nusage: md-oneway --config FILE A B [-c COUNT] [-i SECONDS] [-s PSIZE] "
          "[--grace MS]\n",
          msg);
  return 2;
}

/* Arguments, configuration, both sessions, the loop, the JSON. */
int main(int argc, char **argv) {
  const char *config = NULL, *names[2] = {NULL, NULL};
  unsigned count = 200, psize = 0, grace = 1000;
  double interval = 0.01;
  int n_names = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--config") == 0 && v) {
      config = v;
      i++;
    } else if (strcmp(a, "-c") == 0 && v) {
      count = (unsigned)strtoul(v, NULL, 10);
      i++;
    } else if (strcmp(a, "-i") == 0 && v) {
      interval = strtod(v, NULL);
      i++;
    } else if (strcmp(a, "-s") == 0 && v) {
      psize = (unsigned)strtoul(v, NULL, 10);
      i++;
    } else if (strcmp(a, "--grace") == 0 && v) {
      grace = (unsigned)strtoul(v, NULL, 10);
      i++;
    } else if (a[0] != '-' && n_names < 2) {
      names[n_names++] = a;
    } else {
      return usage("bad arguments");
    }
  }
  if (!config || n_names != 2 || count == 0 || interval <= 0)
    return usage("need --config FILE, two agent names, a count and an interval");
  md_log_init("md-oneway", MD_LOG_WARN);
  signal(SIGPIPE, SIG_IGN);
  md_ctl_config cfg;
  char err[MD_CONFIG_ERRLEN];
  if (md_ctl_config_load(config, &cfg, err, sizeof err) < 0)
    return usage(err);
  static tool t;
  for (int i = 0; i < 2; i++) {
    side *s = &t.s[i];
    s->t = &t;
    s->idx = i;
    s->ag = md_ctl_config_find_agent(&cfg, names[i]);
    if (!s->ag)
      return usage("an agent is not in the configuration");
    const char *pa =
        s->ag->probe_address && s->ag->probe_address[0] ? s->ag->probe_address : s->ag->host;
    md_addr x;
    if (md_addr_parse(pa, &x) < 0)
      return usage("probe addresses must be numeric");
    md_addr_str(&x, s->probe, sizeof s->probe);
  }
  for (int d = 0; d < 2; d++) {
    md_oneway_plan *p = &t.plan[d];
    p->stream_id = g_ids[d];
    p->sender_addr = t.s[d == FWD ? 0 : 1].probe;
    p->receiver_addr = t.s[d == FWD ? 1 : 0].probe;
    p->count = count;
    p->interval_us = (uint32_t)(interval * 1e6 + 0.5);
    p->psize = psize;
    p->grace_ms = grace;
    if (md_oneway_token(p->token) < 0)
      return usage("no random bytes");
  }
  md_tls_ctx *tls = NULL;
  if (md_tls_ctx_new(MD_TLS_CLIENT, cfg.tls.cert, cfg.tls.key, cfg.tls.ca, &tls, err, sizeof err) <
      0)
    return usage(err);
  uv_loop_init(&t.loop);
  uv_timer_init(&t.loop, &t.guard);
  t.guard.data = &t;
  uv_timer_start(&t.guard, on_guard,
                 CONNECT_TIMEOUT_MS + START_MARGIN_NS / 1000000 +
                     md_oneway_duration_ms(&t.plan[0]) + 15000,
                 0);
  md_client_opts co = {.timeout_ms = CONNECT_TIMEOUT_MS, .controller_name = "md-oneway"};
  for (int i = 0; i < 2; i++) {
    int rc = md_client_connect(&t.loop, tls, t.s[i].ag, &co, &g_cb, &t.s[i], &t.s[i].c);
    if (rc < 0) {
      t.s[i].closed = true;
      t.s[i].c = NULL;
      fail(&t, "%s: cannot connect: %s", t.s[i].ag->name, strerror(-rc));
    }
  }
  if (!t.s[0].c && !t.s[1].c)
    uv_close((uv_handle_t *)&t.guard, NULL);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  uv_loop_close(&t.loop);
  md_tls_ctx_free(tls);
  int rc = 0;
  if (t.failed) {
    fprintf(stderr, "md-oneway: %s\n", t.why);
    rc = 1;
  } else {
    printf("{\n");
    print_dir("forward", &t, FWD, true);
    print_dir("reverse", &t, REV, true);
    printf("  \"offset_ms\": {\"a\": %.3f, \"b\": %.3f}\n}\n", t.s[0].offset_ns / 1e6,
           t.s[1].offset_ns / 1e6);
  }
  md_ctl_config_free(&cfg);
  return rc;
}
