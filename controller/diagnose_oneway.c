/* diagnose_oneway: the agent-to-agent one-way streams of `mtrctl diagnose`.
 *
 * Part of the orchestration step (CLI -> orchestration -> agents -> results
 * -> merge -> verdict -> renderers). When both ends are agents, each one sends
 * a UDP stream to the other while the traces run (agent/stream.c); the two
 * sides' StreamResults and the time-sync offsets give the report's one_way
 * figures (loss and delay per direction, md_oneway_compute in oneway.c),
 * which the joint model (localise.c) uses. A stream that cannot run only
 * leaves the figures out, with an advice line saying why.
 *
 * diagnose.c calls md__start_streams when it starts the runs, installs
 * md__stream_cb on each session, and calls md__compute_oneway and
 * md__oneway_advice at the end; diagnose_followup.c calls md__compute_oneway
 * before planning its follow-ups. Shared state: diagnose_int.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "diagnose_int.h"
#include "md_time.h"
#include "oneway.h"

/* Record why a stream produced nothing (formatted apart: the id it quotes
 * lives in the same structure). */
__attribute__((format(printf, 2, 3))) void md__set_why(ow_stream *w, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  memcpy(w->why, tmp, sizeof tmp);
}

/* ---- the one-way measurement (both ends are ours) */

/* Ask the receiving agent of each direction to listen; its answer (the port)
 * starts the sender (c_stream_accepted). Packets every 20 ms for as long as
 * the traces run. Only when both agents speak protocol revision 1. */
void md__start_streams(diag *d) {
  side *sa = &d->s[0], *sb = &d->s[1];
  if (!sa->ready || !sb->ready)
    return;
  if (d->o->no_oneway) {
    md__set_why(&d->ow[0], "one-way streams not measured: --no-oneway");
    return;
  }
  const md_client_info *ia = md_client_get_info(sa->client), *ib = md_client_get_info(sb->client);
  if (!ia->one_way_stream || !ib->one_way_stream) {
    md__set_why(&d->ow[0], "one-way streams not measured: an agent predates protocol revision 1");
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
      md__set_why(w, "one-way stream %s not started: %s", w->id, err);
    }
  }
}

/* Stream events and refusals name the stream by id: which direction is it? */
ow_stream *md__find_stream(diag *d, const char *id) {
  for (int i = 0; i < 2; i++)
    if (d->ow[i].planned && strcmp(d->ow[i].id, id) == 0)
      return &d->ow[i];
  return NULL;
}

/* The receiver listens: start the sender toward its port, 100 ms from now. */
static void c_stream_accepted(md_client *c, const md_client_stream_accepted *acc) {
  side *s = md_client_data(c);
  diag *d = s->d;
  ow_stream *w = md__find_stream(d, acc->stream_id);
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
    md__set_why(w, "one-way stream %s: sender not started: %s", w->id, err);
}

/* One side of a stream is over: keep its numbers for md__compute_oneway, say
 * why when it failed, and stop a receiver whose sender ended early. */
static void c_stream_result(md_client *c, const md_client_stream_result *res) {
  side *s = md_client_data(c);
  diag *d = s->d;
  ow_stream *w = md__find_stream(d, res->stream_id);
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
    md__set_why(w, "one-way stream %s (%s side) did not finish: %s", w->id,
                res->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND ? "sending" : "receiving",
                res->message && res->message[0] ? res->message : "no reason given");
  if (w->recv_open && !w->send_open && !w->have_send && d->s[w->receiver].client &&
      res->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND)
    md_client_stream_cancel(d->s[w->receiver].client, w->id);
  md__check_progress(d);
}

/* The session callbacks of the streams; c_ready (diagnose.c) sets them. */
const md_client_stream_cb md__stream_cb = {c_stream_accepted, c_stream_result};

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
void md__compute_oneway(diag *d) {
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
      md__set_why(w,
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

/* Say why the one-way figures are missing, when both ends are agents. */
void md__oneway_advice(diag *d) {
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
