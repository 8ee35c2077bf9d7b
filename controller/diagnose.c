/* diagnose: the orchestration of `mtrctl diagnose A B` (docs/architecture.md).
 *
 * In the flow CLI -> orchestration -> agents -> results -> merge -> verdict
 * -> renderers, cli_diagnose.c calls md_diag_run, and this file runs the two
 * traces: connect, start both runs at one instant, gather, check the local
 * ISP against a reference when the procedure asks for it, analyse
 * (md_report_analyse: verdict, alignment, diagnosis). See diagnose.h for the
 * shape; every step is one callback below, in the order they happen.
 *
 * The other parts of the orchestration, sharing diagnose_int.h's `diag`:
 * diagnose_oneway.c (the agent-to-agent one-way streams) and
 * diagnose_followup.c (the reference check and the follow-up pings).
 * md__check_progress here decides when each of them starts.
 */
#include "diagnose.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "diagnose_int.h"
#include "diagnosis.h"
#include "md_time.h"

#define START_MARGIN_NS 300000000LL /* from "both ready" to the common first probe */
#define CONNECT_TIMEOUT_MS 10000    /* connect, TLS, hello, time sync: slow over a lossy path */
#define CANCEL_GRACE_MS 3000        /* after Ctrl-C / timeout: wait this long for results */

/* strdup that passes NULL through (optional names and addresses of the report). */
char *md__xstrdup(const char *s) {
  return s ? strdup(s) : NULL;
}

/* ---- live progress (a terminal only) */

/* One line on the terminal, rewritten in place at each HopUpdate, so an operator
 * sees both runs advance and how long is left; final: end the line. */
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

/* The timer and the signal handle live inside diag: nothing to free. */
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

/* Whether anything ordered (a run, a reference run, a stream side, a
 * follow-up) still owes its result: the diagnosis waits for all of them. */
static bool any_open_run(diag *d) {
  for (int i = 0; i < 2; i++)
    if (d->s[i].run_open || d->s[i].ref_open || d->ow[i].recv_open || d->ow[i].send_open)
      return true;
  for (int i = 0; i < d->n_fu; i++)
    if (d->fu[i].open)
      return true;
  return false;
}

/* After a stop, the results that did not come within the grace are given up. */
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

/* The whole-run timeout (--timeout): stop, naming whom it still waited for. */
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

/* Ctrl-C: stop, and still print the report of what was gathered. */
static void on_sigint(uv_signal_t *h, int sig) {
  (void)sig;
  diag *d = h->data;
  stop(d, "interrupted",
       "interrupted by the operator (Ctrl-C): the report holds what was gathered");
}

/* ---- starting the runs at one instant */

/* Every run of the diagnosis (main, reference) carries the operator's
 * options; only the id, the target and the start instant differ. */
void md__fill_request(diag *d, side *s, Mtrdiag__V1__RunRequest *req, const char *id,
                      const char *target, const char *target_name, int64_t start_ctl_ns) {
  *req = d->o->run;
  req->run_id = (char *)id;
  req->target = (char *)target;
  req->target_name = (char *)target_name;
  req->start_at_real_ns = start_ctl_ns ? md_client_to_agent_ns(s->client, start_ctl_ns) : 0;
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
    md__fill_request(d, s, &req, s->run_id, s->target, s->target_name, start);
    char err[256];
    if (md_client_run_start(s->client, &req, err, sizeof err) == 0)
      s->run_open = true;
    else
      md_report_add_error(d->r, s->agent->name, "bad_request", "%s", err);
  }
  md__start_streams(d);
  md__check_progress(d);
}

/* ---- is everything in? */

/* The one place that moves the diagnosis on, called after every event:
 * start the runs once both sessions are settled, then (when the main runs
 * are in) the reference check, then the follow-ups, then finish. */
void md__check_progress(diag *d) {
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
    if (md__start_reference(d))
      return;
  }
  if (main_done && !d->stopping && !d->followup_asked && d->r->forward && d->r->reverse) {
    d->followup_asked = true;
    if (md__start_followups(d))
      return;
  }
  finish(d);
}

/* ---- client callbacks */

/* A session is up and its clock measured: note the agent and its offset,
 * take its stream callbacks, and see whether the runs can start. */
static void c_ready(md_client *c) {
  side *s = md_client_data(c);
  const md_client_info *in = md_client_get_info(c);
  s->connecting = false;
  s->ready = true;
  free(s->ra->hostname);
  free(s->ra->version);
  s->ra->hostname = md__xstrdup(in->hostname);
  s->ra->version = md__xstrdup(in->version);
  s->ra->clock_offset_ms = in->offset_ns / 1e6;
  s->offset_ns = in->offset_ns;
  s->rtt_ns = in->rtt_ns;
  s->heard_mono = md_now_mono_ns();
  md_client_set_stream_cb(c, &md__stream_cb);
  md__check_progress(s->d);
}

/* The agent accepted a run: when its main run really starts (controller clock). */
static void c_accepted(md_client *c, const char *run_id, int64_t started_at_real_ns) {
  side *s = md_client_data(c);
  s->heard_mono = md_now_mono_ns();
  if (strcmp(run_id, s->run_id) == 0)
    s->accepted_ctl_ns = md_client_from_agent_ns(c, started_at_real_ns);
}

/* A HopUpdate: the main run is alive; refresh the progress line. */
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

/* A RunResult: a reference run, a follow-up, or this side's main run, whose
 * path becomes the report's forward (A) or reverse (B) path. */
static void c_result(md_client *c, md_client_result *res) {
  side *s = md_client_data(c);
  diag *d = s->d;
  if (strcmp(res->run_id, s->ref_id) == 0) {
    s->ref_open = false;
    md__add_reference_followup(d, s, res->path);
    md__check_progress(d);
    return;
  }
  if (md__followup_result(d, s, res)) {
    md__check_progress(d);
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
    (*slot)->source = md__xstrdup(s->agent->name);
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
  md__check_progress(d);
}

/* The agent refused something: a stream or a follow-up is only not measured,
 * a reference run becomes advice, anything else is an error of the report. */
static void c_error(md_client *c, const char *run_id, Mtrdiag__V1__ErrorCode code,
                    const char *message) {
  side *s = md_client_data(c);
  diag *d = s->d;
  /* "" is an error about no run: it must not match a run or check not started */
  bool about_run = run_id && run_id[0];
  ow_stream *w = about_run ? md__find_stream(d, run_id) : NULL;
  if (w) { /* a refused stream is no failed diagnosis: it is only not measured */
    if (s->idx == w->receiver)
      w->recv_open = false;
    else
      w->send_open = false;
    md__set_why(w, "one-way stream %s refused by %s: %s", w->id, s->agent->name, message);
    md__check_progress(d);
    return;
  }
  for (int i = 0; about_run && i < d->n_fu; i++) {
    if (d->fu[i].open && strcmp(run_id, d->fu[i].id) == 0) {
      /* a refused follow-up (the policy may not allow router addresses) only
       * leaves the model less sure; it is no failed diagnosis */
      d->fu[i].open = false;
      md__check_progress(d);
      return;
    }
  }
  char lc[32];
  snprintf(lc, sizeof lc, "%s", md_wire_error_name(code));
  for (char *p = lc; *p; p++)
    *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
  if (about_run && strcmp(run_id, s->ref_id) == 0) {
    /* the reference check is advice, not the diagnosis: a refusal is noted */
    s->ref_open = false;
    md__ref_refused(d, s, message);
    md__check_progress(d);
    return;
  }
  md_report_add_error(d->r, s->agent->name, lc, "%s", message);
  if (about_run && strcmp(run_id, s->run_id) == 0)
    s->run_open = false; /* refused before RunAccepted: no result follows */
  md__check_progress(d);
}

/* A session ended (at the end, or failed): record why, and move on without it. */
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
  md__check_progress(d);
}

/* The session callbacks of both sides (the streams' are md__stream_cb). */
static const md_client_cb client_cb = {c_ready, c_accepted, c_update, c_result, c_error, c_close};

/* ---- setting up */

/* A numeric address for a name or literal, of the family asked for. */
int md__resolve(const char *host, int family, char *out, size_t outlen, char *err, size_t errlen) {
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
  if (md__resolve(pa, family, out, outlen, err, errlen) < 0) {
    char e2[300];
    snprintf(e2, sizeof e2, "agent %s: probe address: %s", ag->name, err);
    snprintf(err, errlen, "%s", e2);
    return -EINVAL;
  }
  return 0;
}

/* The report's description of an agent (name, control and probe address). */
static void fill_agent(md_report_agent *ra, const md_ctl_agent *ag, const char *probe) {
  ra->present = true;
  ra->name = md__xstrdup(ag->name);
  ra->address = md__xstrdup(ag->address);
  ra->probe_address = md__xstrdup(probe);
}

/* Before any connection: find A and B, each side's target and the run ids;
 * a usage error (unknown agent, bad B) is reported before anything starts. */
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
    if (md__resolve(o->b, family, sa->target, sizeof sa->target, err, errlen) < 0)
      return -EINVAL;
    r->b.present = false;
    r->b.name = md__xstrdup(o->b);
    r->b.probe_address = md__xstrdup(sa->target);
    snprintf(sa->target_name, sizeof sa->target_name, "%s", o->b);
  }
  snprintf(sa->run_id, sizeof sa->run_id, "fwd-%s", r->id);
  snprintf(sb->run_id, sizeof sb->run_id, "rev-%s", r->id);
  snprintf(sa->ref_id, sizeof sa->ref_id, "ref-a-%s", r->id);
  snprintf(sb->ref_id, sizeof sb->ref_id, "ref-b-%s", r->id);
  return 0;
}

/* Open the session with one agent; the callbacks above take it from there. */
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

/* The entry point (diagnose.h): set up, connect both, run the loop until
 * finish(), then analyse the report and add the advice of each part. */
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
  r->ran_by = md__xstrdup(o->ran_by);
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
  md__check_progress(d);
  uv_run(loop, UV_RUN_DEFAULT);

  r->finished_at_ns = md_now_real_ns();
  measure_skew(d);
  md__compute_oneway(d);
  md_report_analyse(r);
  md__reference_advice(d);
  md__oneway_advice(d);
  *out = r;
  free(d);
  return 0;
}

/* The contract's exit status, read from the finished report (diagnose.h). */
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
