/* diagnose: connect, start both runs at one instant, gather, check the
 * local ISP against a reference when the procedure asks for it, analyse.
 * See diagnose.h for the shape; every step is one callback below, in the
 * order they happen. */
#include "diagnose.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "diagnosis.h"
#include "align.h"
#include "localise.h"
#include "md_log.h"
#include "md_time.h"
#include "oneway.h"
#include "verdict.h"

#define START_MARGIN_NS 300000000LL /* from "both ready" to the common first probe */
#define CONNECT_TIMEOUT_MS 10000    /* connect, TLS, hello, time sync: slow over a lossy path */
#define CANCEL_GRACE_MS 3000        /* after Ctrl-C / timeout: wait this long for results */
#define MD_FOLLOWUP_MAX 4        /* follow-up probes in one round (within max_concurrent_runs 4) */
#define FOLLOWUP_CYCLES 30       /* pings per follow-up probe */
#define FOLLOWUP_INTERVAL_MS 100 /* the default policy.min_interval */

enum run_kind { RUN_MAIN, RUN_REFERENCE };

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

/* Record why a stream produced nothing (formatted apart: the id it quotes
 * lives in the same structure). */
__attribute__((format(printf, 2, 3))) static void set_why(ow_stream *w, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  memcpy(w->why, tmp, sizeof tmp);
}

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

static void check_progress(diag *d);
static int resolve(const char *host, int family, char *out, size_t outlen, char *err,
                   size_t errlen);

static char *xstrdup(const char *s) {
  return s ? strdup(s) : NULL;
}

/* ---- live progress (a terminal only) */

static void show_progress(diag *d, bool final) {
  FILE *f = d->o->progress;
  if (!f)
    return;
  double total = d->o->run.cycles * d->o->run.interval_ms / 1000.0;
  double spent = (md_now_mono_ns() - d->t0_mono) / 1e9;
  double left = total + 1.0 - spent;
  fprintf(f, "\r\033[K");
  for (int i = 0; i < 2; i++) {
    side *s = &d->s[i];
    if (!s->agent)
      continue;
    fprintf(f, "%s%s: %u/%u cycles, %d hops", i ? "  |  " : "", i ? "reverse" : "forward",
            s->cycles_done, d->o->run.cycles, s->hops);
  }
  if (!final)
    fprintf(f, "  |  ~%.0f s left", left > 0 ? left : 0);
  else
    fputc('\n', f);
  fflush(f);
}

/* ---- ending */

static void handle_closed(uv_handle_t *h) {
  (void)h;
}

/* Everything is in (or given up): close the sessions; the report is
 * analysed once the last one has closed. */
static void finish(diag *d) {
  if (d->finished)
    return;
  d->finished = true;
  for (int i = 0; i < 2; i++)
    if (d->s[i].client && !d->s[i].closed)
      md_client_close(d->s[i].client);
  uv_close((uv_handle_t *)&d->deadline, handle_closed);
  uv_close((uv_handle_t *)&d->sigint, handle_closed);
  show_progress(d, true);
}

static bool any_open_run(diag *d) {
  for (int i = 0; i < 2; i++)
    if (d->s[i].run_open || d->s[i].ref_open || d->ow[i].recv_open || d->ow[i].send_open)
      return true;
  for (int i = 0; i < d->n_fu; i++)
    if (d->fu[i].open)
      return true;
  return false;
}

static void on_cancel_grace(uv_timer_t *t) {
  finish(t->data);
}

/* Stop early (Ctrl-C, whole-run timeout): cancel what runs, keep what came. */
static void stop(diag *d, const char *code, const char *why) {
  if (d->stopping || d->finished)
    return;
  d->stopping = true;
  md_report_add_error(d->r, NULL, code, "%s", why);
  for (int i = 0; i < 2; i++) {
    side *s = &d->s[i];
    if (s->run_open && s->client)
      md_client_run_cancel(s->client, s->run_id);
    if (s->ref_open && s->client)
      md_client_run_cancel(s->client, s->ref_id);
    ow_stream *w = &d->ow[i];
    if (w->recv_open && d->s[w->receiver].client)
      md_client_stream_cancel(d->s[w->receiver].client, w->id);
    if (w->send_open && d->s[w->sender].client)
      md_client_stream_cancel(d->s[w->sender].client, w->id);
  }
  if (!any_open_run(d)) {
    finish(d);
    return;
  }
  uv_timer_start(&d->deadline, on_cancel_grace, CANCEL_GRACE_MS, 0);
}

static void on_deadline(uv_timer_t *t) {
  diag *d = t->data;
  char why[512];
  size_t n = (size_t)snprintf(
      why, sizeof why, "the whole run took longer than --timeout %.0f s: stopped", d->o->timeout_s);
  const char *sep = " (still waiting for ";
  for (int i = 0; i < 2 && n < sizeof why; i++) { /* whom it waited for names the culprit */
    side *s = &d->s[i];
    if (!s->agent || !(s->connecting || s->run_open))
      continue;
    if (s->connecting)
      n +=
          (size_t)snprintf(why + n, sizeof why - n, "%s%s: not connected yet", sep, s->agent->name);
    else
      n += (size_t)snprintf(why + n, sizeof why - n,
                            "%s%s: its run at %u/%u cycles, last heard of %.1f s ago", sep,
                            s->agent->name, s->cycles_done, d->o->run.cycles,
                            (md_now_mono_ns() - s->heard_mono) / 1e9);
    sep = "; ";
  }
  if (sep[0] == ';' && n < sizeof why)
    snprintf(why + n, sizeof why - n, ")");
  stop(d, "timeout", why);
}

static void on_sigint(uv_signal_t *h, int sig) {
  (void)sig;
  diag *d = h->data;
  stop(d, "interrupted",
       "interrupted by the operator (Ctrl-C): the report holds what was gathered");
}

/* ---- starting the runs at one instant */

static void fill_request(diag *d, side *s, Mtrdiag__V1__RunRequest *req, const char *id,
                         const char *target, const char *target_name, int64_t start_ctl_ns) {
  *req = d->o->run;
  req->run_id = (char *)id;
  req->target = (char *)target;
  req->target_name = (char *)target_name;
  req->start_at_real_ns = start_ctl_ns ? md_client_to_agent_ns(s->client, start_ctl_ns) : 0;
}

/* ---- the one-way measurement (both ends are ours) */

/* Ask the receiving agent of each direction to listen; its answer (the port)
 * starts the sender (on_stream_accepted). Packets every 20 ms for as long as
 * the traces run. Only when both agents speak protocol revision 1. */
static void start_streams(diag *d) {
  side *sa = &d->s[0], *sb = &d->s[1];
  if (!sa->ready || !sb->ready)
    return;
  if (d->o->no_oneway) {
    set_why(&d->ow[0], "one-way streams not measured: --no-oneway");
    return;
  }
  const md_client_info *ia = md_client_get_info(sa->client), *ib = md_client_get_info(sb->client);
  if (!ia->one_way_stream || !ib->one_way_stream) {
    set_why(&d->ow[0], "one-way streams not measured: an agent predates protocol revision 1");
    return;
  }
  /* one packet every 20 ms, at most 1000 per direction (longer runs space
   * them out): the joint model's background-loss floor would otherwise read
   * a long clean stream as unexplained (docs/localisation.md) */
  uint64_t run_ms = (uint64_t)d->o->run.cycles * d->o->run.interval_ms;
  uint32_t count = (uint32_t)(run_ms / 20);
  count = count < 50 ? 50 : count > 1000 ? 1000 : count;
  uint64_t spacing_us = run_ms * 1000 / count;
  if (spacing_us < 20000)
    spacing_us = 20000;
  for (int i = 0; i < 2; i++) {
    ow_stream *w = &d->ow[i];
    w->sender = i;
    w->receiver = 1 - i;
    snprintf(w->id, sizeof w->id, "ow%c-%s", i == 0 ? 'f' : 'r', d->r->id);
    w->plan.stream_id = w->id;
    w->plan.sender_addr = i == 0 ? d->r->a.probe_address : d->r->b.probe_address;
    w->plan.receiver_addr = i == 0 ? d->r->b.probe_address : d->r->a.probe_address;
    w->plan.count = count;
    w->plan.interval_us = (uint32_t)spacing_us;
    w->plan.tos = d->o->run.tos;
    md_oneway_token(w->plan.token);
    Mtrdiag__V1__StreamRequest req;
    md_oneway_request(&w->plan, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0, 0, &req);
    char err[256];
    if (md_client_stream_start(d->s[w->receiver].client, &req, err, sizeof err) == 0) {
      w->planned = w->recv_open = true;
    } else {
      set_why(w, "one-way stream %s not started: %s", w->id, err);
    }
  }
}

static ow_stream *find_stream(diag *d, const char *id) {
  for (int i = 0; i < 2; i++)
    if (d->ow[i].planned && strcmp(d->ow[i].id, id) == 0)
      return &d->ow[i];
  return NULL;
}

/* The receiver listens: start the sender toward its port, 100 ms from now. */
static void c_stream_accepted(md_client *c, const md_client_stream_accepted *acc) {
  side *s = md_client_data(c);
  diag *d = s->d;
  ow_stream *w = find_stream(d, acc->stream_id);
  if (!w || acc->role != MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE || d->stopping)
    return;
  side *snd = &d->s[w->sender];
  if (!snd->ready || !snd->client)
    return;
  int64_t start = md_client_to_agent_ns(snd->client, md_now_real_ns() + 100000000LL);
  Mtrdiag__V1__StreamRequest req;
  md_oneway_request(&w->plan, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND, acc->port, start, &req);
  char err[256];
  if (md_client_stream_start(snd->client, &req, err, sizeof err) == 0)
    w->send_open = true;
  else
    set_why(w, "one-way stream %s: sender not started: %s", w->id, err);
}

static void c_stream_result(md_client *c, const md_client_stream_result *res) {
  side *s = md_client_data(c);
  diag *d = s->d;
  ow_stream *w = find_stream(d, res->stream_id);
  if (!w)
    return;
  md_client_stream_result copy = *res;
  copy.stream_id = copy.message = NULL;
  if (res->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND) {
    w->send_open = false;
    w->have_send = true;
    w->send_res = copy;
  } else {
    w->recv_open = false;
    w->have_recv = true;
    w->recv_res = copy;
  }
  if (res->status != MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK && !w->why[0])
    set_why(w, "one-way stream %s (%s side) did not finish: %s", w->id,
            res->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND ? "sending" : "receiving",
            res->message && res->message[0] ? res->message : "no reason given");
  if (w->recv_open && !w->send_open && !w->have_send && d->s[w->receiver].client &&
      res->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND)
    md_client_stream_cancel(d->s[w->receiver].client, w->id);
  check_progress(d);
}

static const md_client_stream_cb stream_cb = {c_stream_accepted, c_stream_result};

/* The clock offset to correct one-way delays with. A time-sync offset is only
 * known to within half the round trip it was measured over (the two legs
 * may differ: that asymmetry is what a faulty link makes). An offset inside
 * that band is indistinguishable from synchronised clocks (NTP), so it is
 * taken as 0; a larger one is a real clock difference and is corrected. */
static int64_t usable_offset(const side *s) {
  int64_t off = s->offset_ns, band = s->rtt_ns / 2 + 500000;
  return (off < 0 ? -off : off) <= band ? 0 : off;
}

/* one_way in the report, from both directions' results and clock offsets. */
static void compute_oneway(diag *d) {
  md_report *r = d->r;
  md_oneway_dir dir[2];
  int ok = 0;
  for (int i = 0; i < 2; i++) {
    ow_stream *w = &d->ow[i];
    memset(&dir[i], 0, sizeof dir[i]);
    if (!w->have_send || !w->have_recv)
      continue;
    int64_t off_s = usable_offset(&d->s[w->sender]);
    int64_t off_r = usable_offset(&d->s[w->receiver]);
    if (md_oneway_compute(&w->send_res, &w->recv_res, off_s, off_r, &dir[i]) != 0)
      continue;
    if (dir[i].sent > 0 && dir[i].recv == 0) {
      /* not one packet arrived while the traces got through: a firewall or
       * NAT in the stream's way, not a network losing everything */
      set_why(w,
              "one-way stream %s -> %s: no packet arrived (a firewall or NAT in the way of "
              "UDP between the agents?); the one-way figures are not used",
              w->plan.sender_addr, w->plan.receiver_addr);
      continue;
    }
    ok++;
  }
  if (ok == 2) {
    r->has_oneway = true;
    r->oneway_forward = dir[0];
    r->oneway_reverse = dir[1];
  }
}

/* Both agents are ready (or one has failed): order the runs, with one
 * start instant on the controller's clock, translated to each agent's. */
static void start_runs(diag *d) {
  if (d->started || d->stopping)
    return;
  for (int i = 0; i < 2; i++)
    if (d->s[i].agent && d->s[i].connecting)
      return; /* still waiting for this one */
  d->started = true;
  int64_t start = md_now_real_ns() + START_MARGIN_NS;
  for (int i = 0; i < 2; i++) {
    side *s = &d->s[i];
    if (!s->ready)
      continue;
    Mtrdiag__V1__RunRequest req;
    fill_request(d, s, &req, s->run_id, s->target, s->target_name, start);
    char err[256];
    if (md_client_run_start(s->client, &req, err, sizeof err) == 0)
      s->run_open = true;
    else
      md_report_add_error(d->r, s->agent->name, "bad_request", "%s", err);
  }
  start_streams(d);
  check_progress(d);
}

/* ---- the documented local-ISP check */

/* Loss begins in the first three hops of a side's own trace: trace the
 * reference target from that agent too, a short run. */
static bool start_reference(diag *d) {
  if (!d->reference || d->stopping)
    return false;
  md_path_verdict fv = {0}, rv = {0};
  if (d->r->forward)
    md_verdict(d->r->forward, &fv);
  if (d->r->reverse)
    md_verdict(d->r->reverse, &rv);
  d->reference_from = md_reference_checks(&fv, &rv);
  md_verdict_clear(&fv);
  md_verdict_clear(&rv);
  bool any = false;
  for (int i = 0; i < 2; i++) {
    side *s = &d->s[i];
    if (!(d->reference_from & (1u << i)) || !s->ready || s->closed)
      continue;
    if (!d->ref_addr[0]) {
      char err[256];
      if (resolve(d->reference, 0, d->ref_addr, sizeof d->ref_addr, err, sizeof err) < 0) {
        snprintf(d->ref_note, sizeof d->ref_note, "reference check not run: %s", err);
        return false;
      }
    }
    Mtrdiag__V1__RunRequest req;
    fill_request(d, s, &req, s->ref_id, d->ref_addr, d->reference, 0);
    char err[256];
    if (md_client_run_start(s->client, &req, err, sizeof err) == 0) {
      s->ref_open = true;
      any = true;
    }
  }
  return any;
}

/* The reference run's figures, as a follow-up entry of the report. */
static void add_reference_followup(diag *d, side *s, const md_path *p) {
  md_report *r = d->r;
  md_followup *nf = realloc(r->followup, (r->n_followup + 1) * sizeof *nf);
  if (!nf)
    return;
  r->followup = nf;
  md_followup *f = &nf[r->n_followup++];
  memset(f, 0, sizeof *f);
  f->from = xstrdup(s->agent->name);
  f->target = xstrdup(d->ref_addr[0] ? d->ref_addr : d->reference);
  snprintf(f->protocol, sizeof f->protocol, "%s", r->options.protocol);
  const md_hop *last = p && p->n_hops ? &p->hops[p->n_hops - 1] : NULL;
  if (last && p->reached) {
    f->sent = last->st.sent - last->st.transit;
    f->recv = last->st.recv;
    f->loss_pct = md_stats_loss_pct(&last->st);
    f->avg_ms = md_stats_avg_ms(&last->st);
  } else if (last) {
    f->sent = last->st.sent - last->st.transit;
    f->loss_pct = 100.0;
  }
  char why[256];
  snprintf(why, sizeof why,
           "documented check before blaming the local ISP: loss begins in the first three hops "
           "of the %s path, so the same agent traced the reference target %s",
           s->idx == 0 ? "forward" : "reverse", d->reference);
  f->why = strdup(why);
}

/* ---- follow-up probes: separate what the runs could not */

/* Where the joint model finds explanations it cannot tell apart, ping the
 * addresses it picks (from A or B) while the agents are still connected;
 * each ping's figures go into the report as evidence and into the model. */
static bool start_followups(diag *d) {
  md_report *r = d->r;
  if (d->stopping || !d->s[0].ready || !d->s[1].ready)
    return false;
  compute_oneway(d);
  md_path_verdict fv = {0}, rv = {0};
  md_alignment al = {0};
  bool started = false;
  if (r->forward && r->reverse && md_align(r->forward, r->reverse, &al) == 0) {
    md_alignment saved = r->alignment;
    r->alignment = al;
    md_localise *m = NULL;
    if (md_report_localise(r, &m) == 0) {
      md_localise_verdict v;
      memset(&v, 0, sizeof v);
      md_followup_plan plan[MD_FOLLOWUP_MAX];
      int n = 0;
      if (md_localise_conclude(m, &v) == 0 && v.found && v.needs_followup &&
          md_localise_plan_followups(m, MD_FOLLOWUP_MAX, plan, &n) == 0) {
        for (int i = 0; i < n && d->n_fu < MD_FOLLOWUP_MAX; i++) {
          struct fu *f = &d->fu[d->n_fu];
          side *s = &d->s[plan[i].from == MD_AGENT_A ? 0 : 1];
          f->side = s->idx;
          snprintf(f->id, sizeof f->id, "fu%d-%s", d->n_fu, r->id);
          snprintf(f->target, sizeof f->target, "%s", plan[i].target);
          snprintf(f->why, sizeof f->why, "%s", plan[i].why);
          Mtrdiag__V1__RunRequest req = MTRDIAG__V1__RUN_REQUEST__INIT;
          req.run_id = f->id;
          req.target = f->target;
          req.target_name = (char *)"follow-up";
          req.cycles = FOLLOWUP_CYCLES;
          req.interval_ms = FOLLOWUP_INTERVAL_MS;
          req.first_ttl = req.max_ttl = 30; /* end to end only: a ping */
          req.no_dns = true;
          req.gracetime_ms = 1000;
          char err[256];
          if (md_client_run_start(s->client, &req, err, sizeof err) == 0) {
            f->open = true;
            d->n_fu++;
            started = true;
          }
        }
      }
      md_localise_verdict_clear(&v);
      md_localise_free(m);
    }
    r->alignment = saved;
    md_alignment_clear(&al);
  }
  md_verdict_clear(&fv);
  md_verdict_clear(&rv);
  return started;
}

/* A follow-up ping came back: its end-to-end figures, as a report entry. */
static bool followup_result(diag *d, side *s, md_client_result *res) {
  for (int i = 0; i < d->n_fu; i++) {
    struct fu *f = &d->fu[i];
    if (!f->open || f->side != s->idx || strcmp(res->run_id, f->id) != 0)
      continue;
    f->open = false;
    md_report *r = d->r;
    md_followup *nf = realloc(r->followup, (r->n_followup + 1) * sizeof *nf);
    if (!nf)
      return true;
    r->followup = nf;
    md_followup *e = &nf[r->n_followup++];
    memset(e, 0, sizeof *e);
    e->from = xstrdup(s->agent->name);
    e->target = xstrdup(f->target);
    snprintf(e->protocol, sizeof e->protocol, "icmp");
    const md_path *p = res->path;
    const md_hop *h = p && p->n_hops ? &p->hops[p->n_hops - 1] : NULL;
    if (h) {
      e->sent = h->st.sent - h->st.transit;
      e->recv = h->st.recv;
      e->loss_pct = md_stats_loss_pct(&h->st);
      e->avg_ms = md_stats_avg_ms(&h->st);
    }
    e->why = xstrdup(f->why);
    return true;
  }
  return false;
}

/* A refused reference check becomes a line of advice. */
static void ref_refused(diag *d, side *s, const char *message) {
  md_diagnosis *g = &d->r->diagnosis;
  char line[600];
  snprintf(line, sizeof line, "reference check from %s toward %s not run: %s", s->agent->name,
           d->reference, message);
  (void)g;
  snprintf(d->ref_note, sizeof d->ref_note, "%s", line);
}

/* ---- is everything in? */

static void check_progress(diag *d) {
  if (d->finished)
    return;
  bool waiting_connect = false;
  for (int i = 0; i < 2; i++)
    if (d->s[i].agent && d->s[i].connecting)
      waiting_connect = true;
  if (waiting_connect)
    return;
  if (!d->started && !d->stopping) {
    start_runs(d);
    return;
  }
  if (any_open_run(d))
    return;
  bool main_done = true;
  for (int i = 0; i < 2; i++)
    if (d->s[i].run_open)
      main_done = false;
  if (main_done && !d->stopping && !d->reference_asked && d->reference &&
      (d->r->forward || d->r->reverse)) {
    d->reference_asked = true;
    if (start_reference(d))
      return;
  }
  if (main_done && !d->stopping && !d->followup_asked && d->r->forward && d->r->reverse) {
    d->followup_asked = true;
    if (start_followups(d))
      return;
  }
  finish(d);
}

/* ---- client callbacks */

static void c_ready(md_client *c) {
  side *s = md_client_data(c);
  const md_client_info *in = md_client_get_info(c);
  s->connecting = false;
  s->ready = true;
  free(s->ra->hostname);
  free(s->ra->version);
  s->ra->hostname = xstrdup(in->hostname);
  s->ra->version = xstrdup(in->version);
  s->ra->clock_offset_ms = in->offset_ns / 1e6;
  s->offset_ns = in->offset_ns;
  s->rtt_ns = in->rtt_ns;
  s->heard_mono = md_now_mono_ns();
  md_client_set_stream_cb(c, &stream_cb);
  check_progress(s->d);
}

static void c_accepted(md_client *c, const char *run_id, int64_t started_at_real_ns) {
  side *s = md_client_data(c);
  s->heard_mono = md_now_mono_ns();
  if (strcmp(run_id, s->run_id) == 0)
    s->accepted_ctl_ns = md_client_from_agent_ns(c, started_at_real_ns);
}

static void c_update(md_client *c, const char *run_id, uint32_t cycles, const md_path *live) {
  side *s = md_client_data(c);
  s->heard_mono = md_now_mono_ns();
  if (strcmp(run_id, s->run_id) != 0)
    return;
  s->cycles_done = cycles;
  s->hops = live ? live->n_hops : 0;
  show_progress(s->d, false);
}

/* A path rebuilt from the last HopUpdate (the agent died mid-run) carries no
 * "reached" flag and may hold probes past the destination: set the one and
 * cut the other, as the agent would have. */
static void fix_partial_path(md_path *p, const char *target) {
  md_addr t;
  if (md_addr_parse(target, &t) != 0)
    return;
  for (int i = 0; i < p->n_hops; i++) {
    for (int j = 0; j < p->hops[i].n_hosts; j++) {
      if (md_addr_equal(&p->hops[i].hosts[j].addr, &t)) {
        p->reached = true;
        md_path_truncate(p, p->hops[i].ttl);
        return;
      }
    }
  }
}

static void c_result(md_client *c, md_client_result *res) {
  side *s = md_client_data(c);
  diag *d = s->d;
  if (strcmp(res->run_id, s->ref_id) == 0) {
    s->ref_open = false;
    add_reference_followup(d, s, res->path);
    check_progress(d);
    return;
  }
  if (followup_result(d, s, res)) {
    check_progress(d);
    return;
  }
  s->run_open = false;
  md_path **slot = s->idx == 0 ? &d->r->forward : &d->r->reverse;
  if (res->path && !res->from_agent)
    fix_partial_path(res->path, s->target);
  if (res->path) {
    md_path_free(*slot);
    *slot = res->path;
    res->path = NULL;
    free((*slot)->source);
    (*slot)->source = xstrdup(s->agent->name);
    s->hops = (*slot)->n_hops;
  }
  s->cycles_done = res->cycles_done;
  if (res->status != MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK && !d->stopping)
    md_report_add_error(d->r, s->agent->name,
                        res->status == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED
                            ? "run_cancelled"
                            : "run_failed",
                        "%s's run toward %s did not finish: %s", s->agent->name, s->target,
                        res->message && res->message[0] ? res->message : "no reason given");
  check_progress(d);
}

static void c_error(md_client *c, const char *run_id, Mtrdiag__V1__ErrorCode code,
                    const char *message) {
  side *s = md_client_data(c);
  diag *d = s->d;
  ow_stream *w = run_id && run_id[0] ? find_stream(d, run_id) : NULL;
  if (w) { /* a refused stream is no failed diagnosis: it is only not measured */
    if (s->idx == w->receiver)
      w->recv_open = false;
    else
      w->send_open = false;
    set_why(w, "one-way stream %s refused by %s: %s", w->id, s->agent->name, message);
    check_progress(d);
    return;
  }
  for (int i = 0; run_id && i < d->n_fu; i++) {
    if (d->fu[i].open && strcmp(run_id, d->fu[i].id) == 0) {
      /* a refused follow-up (the policy may not allow router addresses) only
       * leaves the model less sure; it is no failed diagnosis */
      d->fu[i].open = false;
      check_progress(d);
      return;
    }
  }
  char lc[32];
  snprintf(lc, sizeof lc, "%s", md_wire_error_name(code));
  for (char *p = lc; *p; p++)
    *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
  if (run_id && strcmp(run_id, s->ref_id) == 0) {
    /* the reference check is advice, not the diagnosis: a refusal is noted */
    s->ref_open = false;
    ref_refused(d, s, message);
    check_progress(d);
    return;
  }
  md_report_add_error(d->r, s->agent->name, lc, "%s", message);
  if (run_id && strcmp(run_id, s->run_id) == 0)
    s->run_open = false; /* refused before RunAccepted: no result follows */
  if (run_id && strcmp(run_id, s->ref_id) == 0)
    s->ref_open = false;
  check_progress(d);
}

static void c_close(md_client *c, int status, enum md_client_err kind, const char *reason) {
  side *s = md_client_data(c);
  diag *d = s->d;
  s->closed = true;
  s->client = NULL;
  if (status != 0 && kind != MD_CLIENT_OK)
    md_report_add_error(d->r, s->agent->name, md_client_err_code(kind), "%s: %s", s->agent->name,
                        reason && reason[0] ? reason : md_client_err_text(kind));
  s->connecting = false;
  s->ready = false;
  s->run_open = s->ref_open = false; /* their results came first (made up if need be) */
  check_progress(d);
}

static const md_client_cb client_cb = {c_ready, c_accepted, c_update, c_result, c_error, c_close};

/* ---- setting up */

/* A numeric address for a name or literal, of the family asked for. */
static int resolve(const char *host, int family, char *out, size_t outlen, char *err,
                   size_t errlen) {
  md_addr a;
  if (md_addr_parse(host, &a) == 0) {
    if (family && md_addr_family(&a) != family) {
      snprintf(err, errlen, "%s is not an IPv%d address", host, family == AF_INET ? 4 : 6);
      return -EINVAL;
    }
    md_addr_str(&a, out, outlen);
    return 0;
  }
  struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_DGRAM}, *res = NULL;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc != 0 || !res) {
    snprintf(err, errlen,
             "'%s' is neither an agent of the inventory nor an address that resolves "
             "(%s)",
             host, gai_strerror(rc));
    return -EINVAL;
  }
  memcpy(&a, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  md_addr_str(&a, out, outlen);
  return 0;
}

/* The address the other agent should trace to (probe_address, CONTRACT.md). */
static int probe_target(const md_ctl_agent *ag, int family, char *out, size_t outlen, char *err,
                        size_t errlen) {
  const char *pa = ag->probe_address && ag->probe_address[0] ? ag->probe_address : ag->host;
  if (resolve(pa, family, out, outlen, err, errlen) < 0) {
    char e2[300];
    snprintf(e2, sizeof e2, "agent %s: probe address: %s", ag->name, err);
    snprintf(err, errlen, "%s", e2);
    return -EINVAL;
  }
  return 0;
}

static void fill_agent(md_report_agent *ra, const md_ctl_agent *ag, const char *probe) {
  ra->present = true;
  ra->name = xstrdup(ag->name);
  ra->address = xstrdup(ag->address);
  ra->probe_address = xstrdup(probe);
}

static int setup(diag *d, char *err, size_t errlen) {
  const md_diag_opts *o = d->o;
  int family = o->run.family == MTRDIAG__V1__FAMILY__FAMILY_IPV4   ? AF_INET
               : o->run.family == MTRDIAG__V1__FAMILY__FAMILY_IPV6 ? AF_INET6
                                                                   : 0;
  const md_ctl_agent *a = md_ctl_config_find_agent(o->cfg, o->a);
  if (!a) {
    snprintf(err, errlen, "A: '%s' is not an agent of the inventory (%s)", o->a, o->cfg->path);
    return -EINVAL;
  }
  const md_ctl_agent *b = md_ctl_config_find_agent(o->cfg, o->b);
  if (b == a) {
    snprintf(err, errlen, "A and B are the same agent '%s'", o->a);
    return -EINVAL;
  }
  md_report *r = d->r;
  side *sa = &d->s[0], *sb = &d->s[1];
  sa->d = sb->d = d;
  sa->idx = 0;
  sb->idx = 1;
  sa->agent = a;
  sb->agent = b;
  sa->ra = &r->a;
  sb->ra = &r->b;
  char a_probe[MD_ADDRSTRLEN];
  if (probe_target(a, family, a_probe, sizeof a_probe, err, errlen) < 0)
    return -EINVAL;
  fill_agent(&r->a, a, a_probe);
  if (b) {
    if (probe_target(b, family, sa->target, sizeof sa->target, err, errlen) < 0)
      return -EINVAL;
    fill_agent(&r->b, b, sa->target);
    snprintf(sa->target_name, sizeof sa->target_name, "%s", b->name);
    snprintf(sb->target, sizeof sb->target, "%s", a_probe);
    snprintf(sb->target_name, sizeof sb->target_name, "%s", a->name);
  } else {
    if (resolve(o->b, family, sa->target, sizeof sa->target, err, errlen) < 0)
      return -EINVAL;
    r->b.present = false;
    r->b.name = xstrdup(o->b);
    r->b.probe_address = xstrdup(sa->target);
    snprintf(sa->target_name, sizeof sa->target_name, "%s", o->b);
  }
  snprintf(sa->run_id, sizeof sa->run_id, "fwd-%s", r->id);
  snprintf(sb->run_id, sizeof sb->run_id, "rev-%s", r->id);
  snprintf(sa->ref_id, sizeof sa->ref_id, "ref-a-%s", r->id);
  snprintf(sb->ref_id, sizeof sb->ref_id, "ref-b-%s", r->id);
  return 0;
}

static void connect_side(diag *d, side *s) {
  md_client_opts co = {.timeout_ms = CONNECT_TIMEOUT_MS, .controller_name = d->o->ran_by};
  s->connecting = true;
  int rc = md_client_connect(d->loop, d->tls, s->agent, &co, &client_cb, s, &s->client);
  if (rc < 0) {
    s->connecting = false;
    s->closed = true;
    md_report_add_error(d->r, s->agent->name, "local", "%s: cannot start a session: %s",
                        s->agent->name, strerror(-rc));
  }
}

/* start_skew_ms: when each run really sent its first probe (the paths'
 * start times, on each agent's clock), brought to the controller's clock. */
static void measure_skew(diag *d) {
  md_report *r = d->r;
  if (!r->forward || !r->reverse || !r->forward->started_at_ns || !r->reverse->started_at_ns)
    return;
  double fa = r->forward->started_at_ns / 1e6 - r->a.clock_offset_ms;
  double rb = r->reverse->started_at_ns / 1e6 - r->b.clock_offset_ms;
  r->has_skew = true;
  r->start_skew_ms = fa > rb ? fa - rb : rb - fa;
}

/* What the reference trace says, as advice an operator can act on. */
static void reference_advice(diag *d) {
  md_diagnosis *g = &d->r->diagnosis;
  if (d->ref_note[0]) {
    char **na = realloc(g->advice, (g->n_advice + 1) * sizeof *na);
    if (na) {
      g->advice = na;
      g->advice[g->n_advice++] = strdup(d->ref_note);
    }
  }
  for (int i = 0; i < d->r->n_followup; i++) {
    const md_followup *f = &d->r->followup[i];
    if (strcmp(f->why ? f->why : "", "") == 0 || strstr(f->why, "local ISP") == NULL)
      continue;
    char line[512];
    if (f->recv == 0)
      snprintf(line, sizeof line,
               "reference check: %s -> %s got no answer at all: the check is inconclusive (is the "
               "reference reachable and answering pings?)",
               f->from, f->target);
    else if (f->loss_pct > 0)
      snprintf(line, sizeof line,
               "reference check: %s -> %s shows %.1f%% loss as well: the loss is near %s (its "
               "uplink or local ISP), not specific to this path",
               f->from, f->target, f->loss_pct, f->from);
    else
      snprintf(line, sizeof line,
               "reference check: %s -> %s shows no loss (%u/%u answered): the loss is specific to "
               "the path toward the other end, not %s's local ISP as a whole",
               f->from, f->target, f->recv, f->sent, f->from);
    char **na = realloc(g->advice, (g->n_advice + 1) * sizeof *na);
    if (!na)
      return;
    g->advice = na;
    g->advice[g->n_advice++] = strdup(line);
  }
}

/* Say why the one-way figures are missing, when both ends are agents. */
static void oneway_advice(diag *d) {
  if (d->r->has_oneway || !d->r->b.present)
    return;
  const char *why = d->ow[0].why[0] ? d->ow[0].why : d->ow[1].why;
  if (!why[0])
    return;
  md_diagnosis *g = &d->r->diagnosis;
  char **na = realloc(g->advice, (g->n_advice + 1) * sizeof *na);
  if (!na)
    return;
  g->advice = na;
  g->advice[g->n_advice++] = strdup(why);
}

int md_diag_run(uv_loop_t *loop, md_tls_ctx *tls, const md_diag_opts *o, const md_diag_hooks *hooks,
                md_report **out, char *err, size_t errlen) {
  diag *d = calloc(1, sizeof *d);
  md_report *r = md_report_new();
  if (!d || !r) {
    free(d);
    md_report_free(r);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  d->loop = loop;
  d->tls = tls;
  d->o = o;
  d->r = r;
  md_report_new_id(r);
  r->started_at_ns = md_now_real_ns();
  r->options = o->ropts;
  r->ran_by = xstrdup(o->ran_by);
  d->reference = o->reference ? o->reference : o->cfg->defaults.reference;
  int rc = setup(d, err, errlen);
  if (rc < 0) {
    md_report_free(r);
    free(d);
    return rc;
  }
  if (hooks && hooks->on_begin)
    hooks->on_begin(r, hooks->ud);
  d->t0_mono = md_now_mono_ns();
  uv_timer_init(loop, &d->deadline);
  d->deadline.data = d;
  double limit =
      o->timeout_s > 0 ? o->timeout_s : o->run.cycles * o->run.interval_ms / 1000.0 + 5.0 + 30.0;
  uv_timer_start(&d->deadline, on_deadline, (uint64_t)(limit * 1000), 0);
  uv_signal_init(loop, &d->sigint);
  d->sigint.data = d;
  uv_signal_start(&d->sigint, on_sigint, SIGINT);
  for (int i = 0; i < 2; i++)
    if (d->s[i].agent)
      connect_side(d, &d->s[i]);
  check_progress(d);
  uv_run(loop, UV_RUN_DEFAULT);

  r->finished_at_ns = md_now_real_ns();
  measure_skew(d);
  compute_oneway(d);
  md_report_analyse(r);
  reference_advice(d);
  oneway_advice(d);
  *out = r;
  free(d);
  return 0;
}

int md_diag_exit_status(const md_report *r) {
  /* an agent that refused the request (its policy, its limits) is a usage
   * matter: the operator asked for something the agent does not allow */
  for (int i = 0; i < r->n_errors; i++) {
    const char *c = r->errors[i].code ? r->errors[i].code : "";
    if (!strcmp(c, "policy_denied") || !strcmp(c, "limit_exceeded") || !strcmp(c, "bad_request"))
      return 2;
  }
  if (r->n_errors > 0)
    return 3;
  return r->diagnosis.status == MD_STATUS_HEALTHY ? 0 : 1;
}
