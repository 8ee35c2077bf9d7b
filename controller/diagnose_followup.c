/* diagnose_followup: the reference check and the follow-up probes of
 * `mtrctl diagnose`.
 *
 * Part of the orchestration step (CLI -> orchestration -> agents -> results
 * -> merge -> verdict -> renderers). Once both main runs are in, and while
 * the agents are still connected, md__check_progress (diagnose.c) asks here
 * for more evidence, in this order:
 *
 *   - the documented local-ISP check: when loss begins in the first three
 *     hops of a side's own trace (md_reference_checks, diagnosis.c), that agent
 *     traces the reference target (--reference) too;
 *   - follow-up pings: when the joint model (localise.c) finds explanations it
 *     cannot tell apart, the agents ping the addresses it picks.
 *
 * Their figures become the report's followup entries (merge); the joint
 * model reads the pings, the reference check gives advice lines. A refused
 * ping only leaves the model less sure; a refused reference run becomes
 * advice. Shared state: diagnose_int.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "client.h"
#include "diagnose_int.h"
#include "diagnosis.h"
#include "localise.h"
#include "verdict.h"

#define FOLLOWUP_CYCLES 30       /* pings per follow-up probe */
#define FOLLOWUP_INTERVAL_MS 100 /* the default policy.min_interval */

/* ---- the documented local-ISP check */

/* Loss begins in the first three hops of a side's own trace: trace the
 * reference target from that agent too, a short run. */
bool md__start_reference(diag *d) {
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
      if (md__resolve(d->reference, 0, d->ref_addr, sizeof d->ref_addr, err, sizeof err) < 0) {
        snprintf(d->ref_note, sizeof d->ref_note, "reference check not run: %s", err);
        return false;
      }
    }
    Mtrdiag__V1__RunRequest req;
    md__fill_request(d, s, &req, s->ref_id, d->ref_addr, d->reference, 0);
    char err[256];
    if (md_client_run_start(s->client, &req, err, sizeof err) == 0) {
      s->ref_open = true;
      any = true;
    }
  }
  return any;
}

/* The reference run's figures, as a follow-up entry of the report. */
void md__add_reference_followup(diag *d, side *s, const md_path *p) {
  md_report *r = d->r;
  md_followup *nf = realloc(r->followup, (r->n_followup + 1) * sizeof *nf);
  if (!nf)
    return;
  r->followup = nf;
  md_followup *f = &nf[r->n_followup++];
  memset(f, 0, sizeof *f);
  f->from = md__xstrdup(s->agent->name);
  f->target = md__xstrdup(d->ref_addr[0] ? d->ref_addr : d->reference);
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
bool md__start_followups(diag *d) {
  md_report *r = d->r;
  if (d->stopping || !d->s[0].ready || !d->s[1].ready)
    return false;
  md__compute_oneway(d);
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
  return started;
}

/* A follow-up ping came back: its end-to-end figures, as a report entry. */
bool md__followup_result(diag *d, side *s, md_client_result *res) {
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
    e->from = md__xstrdup(s->agent->name);
    e->target = md__xstrdup(f->target);
    snprintf(e->protocol, sizeof e->protocol, "icmp");
    const md_path *p = res->path;
    const md_hop *h = p && p->n_hops ? &p->hops[p->n_hops - 1] : NULL;
    if (h) {
      e->sent = h->st.sent - h->st.transit;
      e->recv = h->st.recv;
      e->loss_pct = md_stats_loss_pct(&h->st);
      e->avg_ms = md_stats_avg_ms(&h->st);
    }
    e->why = md__xstrdup(f->why);
    return true;
  }
  return false;
}

/* A refused reference check becomes a line of advice. */
void md__ref_refused(diag *d, side *s, const char *message) {
  snprintf(d->ref_note, sizeof d->ref_note, "reference check from %s toward %s not run: %s",
           s->agent->name, d->reference, message);
}

/* What the reference trace says, as advice an operator can act on. */
void md__reference_advice(diag *d) {
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
