/* diagnosis: both verdicts and the alignment read together, first version
 * (diagnosis.h; every rule is in docs/verdict.md "Diagnosis"). */
#include "diagnosis.h"
#include "localise.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "sbuf.h"
#include "verdict.h"

/* What a direction shows, in the order of severity the suspect is chosen by. */
enum { PROB_NONE = 0, PROB_LATENCY, PROB_DEST_HOST, PROB_LOSS, PROB_UNREACH };

/* Joint patterns (docs/verdict.md "Diagnosis"). */
enum { JOINT_NONE = 0, JOINT_END_LINK, JOINT_SHARED_LINK };

/* Base confidences and deductions (docs/verdict.md "Confidence"). */
#define CONF_LOSS 0.9
#define CONF_DEST_HOST 0.85
#define CONF_UNREACH 0.8
#define CONF_UNREACH_SILENT 0.6 /* no hop answered at all */
#define CONF_LATENCY 0.5
#define CONF_FEW_LOST 0.2 /* fewer than CONF_FEW_LOST_N probes lost at the destination */
#define CONF_FEW_LOST_N 3
#define CONF_PER_DIP 0.1        /* each sampling dip tolerated */
#define CONF_SILENT_BEFORE 0.15 /* the loss may begin at a silent hop before */
#define CONF_PARTIAL 0.2        /* the run did not finish all cycles */
#define CONF_JOINT_FACTOR 0.5   /* the direction of travel cannot be told */
#define CONF_MIN 0.1
#define CONF_MAX 0.95

/* One direction as the diagnosis sees it. */
typedef struct side {
  md_dir dir;
  const char *word; /* "forward" | "reverse" */
  const md_path *p; /* NULL: missing */
  bool have;        /* analysed (present and with data) */
  md_verdict_detail d;
  int prob;
  const md_path_verdict *v; /* the verdict quoted (given or own) */
  md_path_verdict own;
  const char *src_ip; /* this path's source address, for TTL 0 */
  const char *src_name, *dst_name;
} side;

/* --- Strings ------------------------------------------------------------------ */

/* A formatted, malloc'd string (NULL on OOM). */
__attribute__((format(printf, 1, 2))) static char *fmt_dup(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

/* Append a malloc'd string to a string list; the string is taken (freed on
 * failure). A NULL string is an OOM already. Equal lines are kept once. */
static int list_add(char ***list, int *n, char *s) {
  if (!s)
    return -ENOMEM;
  for (int i = 0; i < *n; i++)
    if (strcmp((*list)[i], s) == 0) {
      free(s);
      return 0;
    }
  char **l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
  if (!l) {
    free(s);
    return -ENOMEM;
  }
  l[(*n)++] = s;
  *list = l;
  return 0;
}

/* Duplicate that keeps NULL; *rc becomes -ENOMEM when the copy fails. */
static char *dup_keep(const char *s, int *rc) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *rc = -ENOMEM;
  return d;
}

/* --- Hop facts ---------------------------------------------------------------- */

/* The address of the hop at a TTL, the source's address for TTL 0 (may be
 * NULL when unknown), NULL for a hop outside the trace or silent. */
static const char *ttl_ip(const side *s, int ttl, char *buf, size_t len) {
  if (ttl == 0)
    return s->src_ip;
  const md_hop *h = md_path_hop_at(s->p, ttl);
  if (!h || h->n_hosts == 0)
    return NULL;
  return md_verdict_hop_ip(h, buf, len);
}

/* "hop 3 (198.18.3.2)", or "the source (198.18.1.1)" for TTL 0. */
static const char *hop_words(const side *s, int ttl, char *buf, size_t len) {
  char ip[MD_ADDRSTRLEN];
  const char *a = ttl_ip(s, ttl, ip, sizeof ip);
  if (ttl == 0)
    snprintf(buf, len, "%s (%s)", s->src_name, a ? a : "its own address");
  else
    snprintf(buf, len, "hop %d (%s)", ttl, a ? a : "???");
  return buf;
}

/* --- Per direction ------------------------------------------------------------ */

/* What one direction shows, from its reading. */
static int problem_of(const md_verdict_detail *d) {
  if (!d->reached)
    return PROB_UNREACH;
  if (d->dest_lossy)
    return d->segment == MD_SEG_DESTINATION_HOST ? PROB_DEST_HOST : PROB_LOSS;
  if (d->latency_jump_ttl)
    return PROB_LATENCY;
  return PROB_NONE;
}

/* Read one direction: the detail, and the verdict to quote. */
static int side_init(side *s, md_dir dir, const md_path *p, const md_path_verdict *v,
                     const char *src_ip, const char *src_name, const char *dst_name) {
  memset(s, 0, sizeof *s);
  s->dir = dir;
  s->word = dir == MD_DIR_FORWARD ? "forward" : "reverse";
  s->p = p;
  s->src_ip = src_ip;
  s->src_name = src_name;
  s->dst_name = dst_name;
  if (!p)
    return 0;
  int rc = md_verdict_analyse(p, &s->d);
  if (rc == -ENODATA)
    return 0; /* a path without a single decided probe is as good as missing */
  if (rc != 0)
    return rc;
  s->have = true;
  s->prob = problem_of(&s->d);
  if (v && v->present) {
    s->v = v;
  } else {
    if ((rc = md_verdict(p, &s->own)) != 0)
      return rc;
    s->v = &s->own;
  }
  return 0;
}

/* The confidence of a single-direction suspect (docs/verdict.md). */
static double confidence(const side *s, int prob) {
  const md_verdict_detail *d = &s->d;
  double c = 0;
  switch (prob) {
  case PROB_LOSS:
  case PROB_DEST_HOST:
    c = prob == PROB_LOSS ? CONF_LOSS : CONF_DEST_HOST;
    if (d->dest_lost < CONF_FEW_LOST_N)
      c -= CONF_FEW_LOST;
    c -= CONF_PER_DIP * d->n_dips;
    if (d->n_silent_before > 0)
      c -= CONF_SILENT_BEFORE;
    break;
  case PROB_UNREACH:
    c = d->last_answer_idx < 0 ? CONF_UNREACH_SILENT : CONF_UNREACH;
    break;
  case PROB_LATENCY:
    c = CONF_LATENCY;
    break;
  }
  if (!s->p->complete)
    c -= CONF_PARTIAL;
  return c < CONF_MIN ? CONF_MIN : c > CONF_MAX ? CONF_MAX : c;
}

/* The figures behind a direction's finding, as evidence lines. */
static int evidence_for(md_suspect *sp, const side *s) {
  const md_verdict_detail *d = &s->d;
  const md_path *p = s->p;
  char w1[MD_ADDRSTRLEN + 48];
  const char *target = p->target ? p->target : "?";
  int rc = 0;
#define EV(...)                                                                                    \
  do {                                                                                             \
    if (rc == 0)                                                                                   \
      rc = list_add(&sp->evidence, &sp->n_evidence, fmt_dup(__VA_ARGS__));                         \
  } while (0)
  if (!d->reached) {
    uint32_t sent = 0;
    for (int i = 0; i < p->n_hops; i++)
      sent = md_verdict_hop_sent(&p->hops[i]) > sent ? md_verdict_hop_sent(&p->hops[i]) : sent;
    EV("%s: the destination %s answered none of %u probes", s->word, target, (unsigned)sent);
    if (d->last_answer_idx < 0) {
      EV("%s: no hop answered at all", s->word);
    } else {
      const md_hop *h = &p->hops[d->last_answer_idx];
      EV("%s: the last hop that answered is %s, %u of %u answered", s->word,
         hop_words(s, h->ttl, w1, sizeof w1), (unsigned)h->st.recv,
         (unsigned)md_verdict_hop_sent(h));
      if (d->segment == MD_SEG_DESTINATION_HOST)
        EV("%s: that hop is on the destination's own point-to-point link (same %s)", s->word,
           strchr(target, ':') ? "/126 or /127" : "/30 or /31");
    }
  } else if (d->dest_lossy) {
    EV("%s: the destination %s lost %u of %u probes (%.1f%%)", s->word, target,
       (unsigned)d->dest_lost, (unsigned)d->dest_sent, d->dest_loss_pct);
    if (d->segment == MD_SEG_DESTINATION_HOST) {
      EV("%s: no hop before the destination carries that loss", s->word);
    } else {
      const md_hop *h = &p->hops[d->first_loss_idx];
      EV("%s: the loss begins at %s, which lost %u of %u (%.1f%%), and every answering hop "
         "from there to the destination shows it%s",
         s->word, hop_words(s, d->first_loss_ttl, w1, sizeof w1), (unsigned)md_verdict_hop_lost(h),
         (unsigned)md_verdict_hop_sent(h), md_verdict_hop_loss_pct(h),
         d->n_dips ? " but for sampling dips" : "");
    }
    for (int i = 0; i < d->n_dips; i++) {
      const md_hop *h = md_path_hop_at(p, d->dip_ttls[i]);
      EV("%s: %s lost only %u of %u (%.1f%%): a sampling dip, consistent with the "
         "destination's %.1f%%",
         s->word, hop_words(s, d->dip_ttls[i], w1, sizeof w1), (unsigned)md_verdict_hop_lost(h),
         (unsigned)md_verdict_hop_sent(h), md_verdict_hop_loss_pct(h), d->dest_loss_pct);
    }
    if (d->from_ttl > 0) {
      const md_hop *h = md_path_hop_at(p, d->from_ttl);
      EV("%s: %s just before it lost %u of %u (%.1f%%)%s", s->word,
         hop_words(s, d->from_ttl, w1, sizeof w1), (unsigned)md_verdict_hop_lost(h),
         (unsigned)md_verdict_hop_sent(h), md_verdict_hop_loss_pct(h),
         md_verdict_lost_above_noise(md_verdict_hop_lost(h), md_verdict_hop_sent(h))
             ? ", a loss that does not continue"
             : "");
    }
    if (d->n_silent_before > 0)
      EV("%s: %d hop%s just before %s never answered: the loss may begin there", s->word,
         d->n_silent_before, d->n_silent_before == 1 ? "" : "s",
         hop_words(s, d->first_loss_ttl, w1, sizeof w1));
    if (d->n_silent_inside > 0)
      EV("%s: %d hop%s inside the lossy stretch never answered (unknown, passed over)", s->word,
         d->n_silent_inside, d->n_silent_inside == 1 ? "" : "s");
    if (d->dest_lost < CONF_FEW_LOST_N)
      EV("%s: only %u probes lost: a small sample", s->word, (unsigned)d->dest_lost);
  }
  if (d->latency_jump_ttl && (s->prob == PROB_LATENCY || d->reached)) {
    const md_hop *dh = d->reached ? &p->hops[d->dest_idx] : NULL;
    if (rc == 0) {
      char w2[MD_ADDRSTRLEN + 48];
      rc = list_add(&sp->evidence, &sp->n_evidence,
                    fmt_dup("%s: the average RTT rises from %.1f ms (%s) to at least %.1f ms at %s "
                            "and stays there to %s",
                            s->word, d->latency_before_ms,
                            hop_words(s, d->latency_from_ttl, w1, sizeof w1), d->latency_after_ms,
                            hop_words(s, d->latency_jump_ttl, w2, sizeof w2),
                            dh ? "the destination" : "the last hop that answered"));
    }
    if (dh)
      EV("%s: the destination's average is %.1f ms, stdev %.1f ms", s->word,
         md_stats_avg_ms(&dh->st), md_stats_stdev_ms(&dh->st));
  }
  if (!p->complete)
    EV("%s: the run did not finish all its cycles", s->word);
#undef EV
  return rc;
}

/* The suspect link of one direction's finding. */
static int fill_suspect(md_suspect *sp, const side *s, int prob) {
  const md_verdict_detail *d = &s->d;
  char b1[MD_ADDRSTRLEN], b2[MD_ADDRSTRLEN];
  int rc = 0;
  sp->path = s->dir;
  switch (prob) {
  case PROB_LOSS:
    sp->kind = MD_SUSPECT_LOSS;
    sp->from_ttl = d->from_ttl;
    sp->to_ttl = d->first_loss_ttl;
    break;
  case PROB_DEST_HOST:
    sp->kind = MD_SUSPECT_DESTINATION_HOST;
    sp->from_ttl = d->from_ttl;
    sp->to_ttl = d->dest_ttl;
    break;
  case PROB_UNREACH:
    sp->kind = MD_SUSPECT_UNREACHABLE;
    sp->from_ttl = d->from_ttl;
    sp->to_ttl = d->first_loss_ttl;
    break;
  case PROB_LATENCY:
    sp->kind = MD_SUSPECT_LATENCY;
    sp->from_ttl = d->latency_from_ttl;
    sp->to_ttl = d->latency_jump_ttl;
    break;
  }
  sp->from_ip = dup_keep(ttl_ip(s, sp->from_ttl, b1, sizeof b1), &rc);
  const char *to = ttl_ip(s, sp->to_ttl, b2, sizeof b2);
  if (prob == PROB_DEST_HOST || (prob == PROB_UNREACH && d->segment == MD_SEG_DESTINATION_HOST))
    to = s->p->target; /* the destination, as the contract asks */
  sp->to_ip = dup_keep(to, &rc);
  sp->confidence = confidence(s, prob);
  if (rc == 0)
    rc = evidence_for(sp, s);
  return rc;
}

/* --- Joint patterns ----------------------------------------------------------- */

/* One fault at a shared end: x's destination seems to drop probes while y,
 * which starts where x ends, loses from its first link. A loss on that
 * access link in either direction gives exactly this pair of readings. */
static bool end_link(const side *x, const side *y) {
  return x->have && y->have && x->prob == PROB_DEST_HOST && y->prob == PROB_LOSS &&
         y->d.from_ttl == 0;
}

/* One fault on a shared link: both traces' loss begins at the two ends of
 * one link the alignment found (link_mate). */
static bool shared_link(const side *f, const side *r, const md_alignment *al) {
  if (!f->have || !r->have || f->prob != PROB_LOSS || r->prob != PROB_LOSS)
    return false;
  const md_align_pair *pr = md_alignment_find(al, f->d.first_loss_ttl, r->d.first_loss_ttl);
  return pr && strcmp(pr->how, "link_mate") == 0;
}

/* --- Summary and advice -------------------------------------------------------- */

/* Advice for one direction's finding (docs/verdict.md "Advice"). */
static int advise(md_diagnosis *dg, const side *s) {
  const md_verdict_detail *d = &s->d;
  char w[MD_ADDRSTRLEN + 48];
  const char *target = s->p->target ? s->p->target : "?";
  char *a = NULL;
  switch (s->prob) {
  case PROB_NONE:
    return 0;
  case PROB_LOSS:
    if (d->segment == MD_SEG_LOCAL_ISP)
      a = fmt_dup("Loss begins in the first three hops of the %s path: check the local network "
                  "and ISP of %s; compare with a trace to a reference target (--reference).",
                  s->word, s->src_name);
    else if (d->segment == MD_SEG_DESTINATION_ISP)
      a = fmt_dup("Loss begins next to the destination, at %s: raise it with the ISP of %s "
                  "(the network just before it), quoting this report.",
                  hop_words(s, d->first_loss_ttl, w, sizeof w), s->dst_name);
    else
      a = fmt_dup("Loss begins in transit at %s: raise it with the network that operates that "
                  "router, quoting this report; neither end's own network is at fault.",
                  hop_words(s, d->first_loss_ttl, w, sizeof w));
    break;
  case PROB_DEST_HOST:
    a = fmt_dup("The destination %s drops probes itself: check its firewall (ICMP rate limits, "
                "drop rules) and its load; the network up to it is clean.",
                target);
    break;
  case PROB_UNREACH:
    if (d->last_answer_idx < 0)
      a = fmt_dup("No hop answered on the %s path: check the local network of %s, its "
                  "firewall, and that probes of this protocol may leave it.",
                  s->word, s->src_name);
    else if (d->segment == MD_SEG_DESTINATION_HOST)
      a = fmt_dup("%s does not answer although its own router does: check that it is up and that "
                  "its firewall lets the probes in.",
                  target);
    else
      a = fmt_dup("Responses stop after %s on the %s path: check routing and filters at and "
                  "after that router; try another protocol (--protocol udp or tcp) in case ICMP "
                  "is filtered.",
                  hop_words(s, d->from_ttl, w, sizeof w), s->word);
    break;
  case PROB_LATENCY:
    a = fmt_dup("Latency rises at %s on the %s path and stays: if that link is a long-distance "
                "one this is propagation delay; otherwise look for congestion there (run again at "
                "another time and compare the stdev).",
                hop_words(s, d->latency_jump_ttl, w, sizeof w), s->word);
    break;
  }
  return list_add(&dg->advice, &dg->n_advice, a);
}

/* The status sentence that opens the summary. */
static void sb_status(md__sbuf *b, const md_diagnosis *dg, const side *f, const side *r, int joint,
                      const char *an, const char *bn) {
  switch (dg->status) {
  case MD_STATUS_HEALTHY:
    if (r->have)
      md__sb_add(b, "Both directions between %s and %s are healthy.", an, bn);
    else
      md__sb_add(b, "The path from %s to %s is healthy.", an, bn);
    break;
  case MD_STATUS_DEGRADED:
    if (joint)
      md__sb_add(b, "A problem was found between %s and %s on one link that both directions cross.",
                 an, bn);
    else if (dg->direction == MD_DIRECTION_BOTH)
      md__sb_add(b, "Problems were found between %s and %s in both directions.", an, bn);
    else
      md__sb_add(b, "A problem was found between %s and %s on the %s path (%s -> %s).", an, bn,
                 dg->direction == MD_DIRECTION_FORWARD ? "forward" : "reverse",
                 dg->direction == MD_DIRECTION_FORWARD ? an : bn,
                 dg->direction == MD_DIRECTION_FORWARD ? bn : an);
    break;
  case MD_STATUS_UNREACHABLE:
    if (f->prob == PROB_UNREACH && r->prob == PROB_UNREACH)
      md__sb_add(b, "Neither %s nor %s reaches the other.", an, bn);
    else if (f->prob == PROB_UNREACH)
      md__sb_add(b, "%s cannot be reached from %s.", bn, an);
    else
      md__sb_add(b, "%s cannot be reached from %s.", an, bn);
    break;
  case MD_STATUS_INCOMPLETE:
    if (!f->have && !r->have)
      md__sb_add(b, "No trace between %s and %s came back: nothing to read.", an, bn);
    else if (f->have && r->have)
      md__sb_add(b,
                 "This diagnosis is incomplete: the %s trace was cut short (see errors); what it "
                 "gathered is shown, but it may be missing hops and probes.",
                 !f->p->complete && !r->p->complete ? "forward and the reverse"
                 : !f->p->complete                  ? "forward"
                                                    : "reverse");
    else
      md__sb_add(b,
                 "This diagnosis is incomplete: the %s trace (%s -> %s) is missing, so it reads "
                 "one direction only.",
                 f->have ? "reverse" : "forward", f->have ? bn : an, f->have ? an : bn);
    break;
  }
}

/* One paragraph: status, each direction's verdict, the suspect, the alignment. */
static char *summary(const md_diagnosis *dg, const side *f, const side *r, const md_alignment *al,
                     int joint, bool reverse_expected, const char *an, const char *bn) {
  md__sbuf b = {0};
  sb_status(&b, dg, f, r, joint, an, bn);
  if (f->have)
    md__sb_add(&b, " Forward (%s -> %s): %s", an, bn, f->v->text ? f->v->text : "(no verdict)");
  if (r->have)
    md__sb_add(&b, " Reverse (%s -> %s): %s", bn, an, r->v->text ? r->v->text : "(no verdict)");
  else if (!reverse_expected)
    md__sb_add(&b, " %s is no agent, so the reverse path (the one replies take) was not traced.",
               bn);
  if (dg->has_suspect) {
    const md_suspect *sp = &dg->suspect;
    const side *s = sp->path == MD_DIR_FORWARD ? f : r;
    char w1[MD_ADDRSTRLEN + 48], w2[MD_ADDRSTRLEN + 48];
    switch (sp->kind) {
    case MD_SUSPECT_DESTINATION_HOST:
      md__sb_add(&b, " Suspect: the destination %s itself, which drops probes", sp->to_ip);
      break;
    case MD_SUSPECT_UNREACHABLE:
      if (s->d.last_answer_idx < 0)
        md__sb_add(&b, " Suspect: the first hop of the %s path, where no response ever came",
                   s->word);
      else
        md__sb_add(&b, " Suspect: beyond %s on the %s path, where responses stop",
                   hop_words(s, sp->from_ttl, w1, sizeof w1), s->word);
      break;
    case MD_SUSPECT_LOSS:
    case MD_SUSPECT_LATENCY:
      md__sb_add(&b, " Suspect: the link from %s to %s on the %s path, where %s",
                 hop_words(s, sp->from_ttl, w1, sizeof w1), hop_words(s, sp->to_ttl, w2, sizeof w2),
                 s->word,
                 sp->kind == MD_SUSPECT_LOSS ? "the loss begins" : "latency rises and stays");
      break;
    }
    md__sb_add(&b, " (confidence %.2f)%s.", sp->confidence,
               joint ? "; the traces cannot tell which direction of that link is at fault" : "");
  }
  if (al && f->have && r->have) {
    if (!al->asymmetric)
      md__sb_add(&b,
                 " The paths look symmetric: every answering router has a counterpart on the "
                 "other side (%d pair%s).",
                 al->n_shared, al->n_shared == 1 ? "" : "s");
    else
      md__sb_add(&b,
                 " The paths are asymmetric: %d forward hop%s and %d reverse hop%s have no "
                 "counterpart on the other side, so a trace's replies do not come back the way its "
                 "probes went.",
                 al->n_forward_only, al->n_forward_only == 1 ? "" : "s", al->n_reverse_only,
                 al->n_reverse_only == 1 ? "" : "s");
  }
  return md__sb_take(&b);
}

/* --- The diagnosis ------------------------------------------------------------ */

/* Both directions, the joint patterns, the suspect, the paragraph, the advice. */
static int diagnose(const md_diag_input *in, md_diagnosis *dg, side *f, side *r) {
  const md_path *fp = in->forward, *rp = in->reverse;
  const char *an = fp && fp->source ? fp->source : rp && rp->target_name ? rp->target_name : "A";
  const char *bn = fp && fp->target_name ? fp->target_name
                   : fp && fp->target    ? fp->target
                   : rp && rp->source    ? rp->source
                                         : "B";
  const char *a_ip = in->a_address ? in->a_address : rp ? rp->target : NULL;
  const char *b_ip = in->b_address ? in->b_address : fp ? fp->target : NULL;
  int rc = side_init(f, MD_DIR_FORWARD, fp, in->forward_verdict, a_ip, an, bn);
  if (rc == 0)
    rc = side_init(r, MD_DIR_REVERSE, rp, in->reverse_verdict, b_ip, bn, an);
  if (rc != 0)
    return rc;

  /* status */
  /* a run cut short (agent died, Ctrl-C, timeout) leaves the diagnosis
   * incomplete even though part of its path is shown */
  if (!f->have || (in->reverse_expected && !r->have) || !f->p->complete ||
      (r->have && !r->p->complete))
    dg->status = MD_STATUS_INCOMPLETE;
  else if (f->prob == PROB_UNREACH || r->prob == PROB_UNREACH)
    dg->status = MD_STATUS_UNREACHABLE;
  else if (f->prob || r->prob)
    dg->status = MD_STATUS_DEGRADED;
  else
    dg->status = MD_STATUS_HEALTHY;

  /* joint patterns, then the suspect: the most severe finding, the higher
   * destination loss on a tie, the forward path on a tie again */
  int joint = JOINT_NONE;
  const side *sus = NULL;
  if (end_link(r, f)) {
    joint = JOINT_END_LINK;
    sus = f;
  } else if (end_link(f, r)) {
    joint = JOINT_END_LINK;
    sus = r;
  } else if (shared_link(f, r, in->alignment)) {
    joint = JOINT_SHARED_LINK;
    sus = r->d.dest_loss_pct > f->d.dest_loss_pct ? r : f;
  } else if (f->prob || r->prob) {
    sus = r->prob > f->prob || (r->prob == f->prob && r->d.dest_loss_pct > f->d.dest_loss_pct) ? r
                                                                                               : f;
  }
  if (joint || (f->prob && r->prob))
    dg->direction = MD_DIRECTION_BOTH;
  else if (f->prob)
    dg->direction = MD_DIRECTION_FORWARD;
  else if (r->prob)
    dg->direction = MD_DIRECTION_REVERSE;
  else
    dg->direction = MD_DIRECTION_NONE;

  if (sus) {
    dg->has_suspect = true;
    if ((rc = fill_suspect(&dg->suspect, sus, sus->prob)) != 0)
      return rc;
    const side *other = sus == f ? r : f;
    md_suspect *sp = &dg->suspect;
    char w1[MD_ADDRSTRLEN + 48], w2[MD_ADDRSTRLEN + 48];
    if (joint == JOINT_END_LINK) {
      sp->confidence *= CONF_JOINT_FACTOR;
      rc = list_add(&sp->evidence, &sp->n_evidence,
                    fmt_dup("%s: the destination %s loses %.1f%% (%u of %u) while no %s hop does, "
                            "and the %s trace loses from its first link: one fault on the link at "
                            "%s's end explains both; loss on it in either direction looks the "
                            "same in both traces",
                            other->word, other->p->target ? other->p->target : "?",
                            other->d.dest_loss_pct, (unsigned)other->d.dest_lost,
                            (unsigned)other->d.dest_sent, other->word, sus->word, sus->src_name));
    } else if (joint == JOINT_SHARED_LINK) {
      sp->confidence *= CONF_JOINT_FACTOR;
      rc = list_add(
          &sp->evidence, &sp->n_evidence,
          fmt_dup("alignment: forward %s and reverse %s are the two ends of one link (link_mate) "
                  "and both traces' loss begins there: one fault on that link; loss on it in "
                  "either direction looks the same in both traces",
                  hop_words(f, f->d.first_loss_ttl, w1, sizeof w1),
                  hop_words(r, r->d.first_loss_ttl, w2, sizeof w2)));
    }
    if (rc == 0 && other->have && (joint || other->prob) && other->v->text)
      rc = list_add(&sp->evidence, &sp->n_evidence, fmt_dup("%s: %s", other->word, other->v->text));
    if (rc == 0 && sp->confidence < CONF_MIN)
      sp->confidence = CONF_MIN;
    if (rc != 0)
      return rc;
  }

  /* rate limited routers of both paths */
  const side *sides[2] = {f, r};
  for (int k = 0; k < 2; k++) {
    const side *s = sides[k];
    if (!s->have || s->d.n_rate_limited == 0)
      continue;
    md_rate_limited *l =
        realloc(dg->rate_limited, (size_t)(dg->n_rate_limited + s->d.n_rate_limited) * sizeof *l);
    if (!l)
      return -ENOMEM;
    dg->rate_limited = l;
    for (int i = 0; i < s->d.n_rate_limited; i++) {
      char ip[MD_ADDRSTRLEN];
      md_rate_limited *e = &dg->rate_limited[dg->n_rate_limited++];
      e->path = s->dir;
      e->ttl = s->d.rate_limited_ttls[i];
      e->ip = NULL;
      e->ip = dup_keep(ttl_ip(s, e->ttl, ip, sizeof ip), &rc);
      if (rc != 0)
        return rc;
    }
  }

  /* the paragraph */
  if (!(dg->summary = summary(dg, f, r, in->alignment, joint, in->reverse_expected, an, bn)))
    return -ENOMEM;

  /* advice: the suspect's direction first */
  if (sus && (rc = advise(dg, sus)) != 0)
    return rc;
  if (joint)
    rc = list_add(&dg->advice, &dg->n_advice,
                  fmt_dup("Measure one-way loss between the agents (or ping, from one agent, an "
                          "address the other's trace found) to tell which direction of that link "
                          "drops packets."));
  for (int k = 0; k < 2 && rc == 0; k++)
    if (sides[k] != sus && sides[k]->have && !joint)
      rc = advise(dg, sides[k]);
  if (rc == 0 && dg->n_rate_limited > 0) {
    md__sbuf b = {0};
    md__sb_add(&b, "Loss shown only at ");
    for (int i = 0; i < dg->n_rate_limited; i++) {
      const md_rate_limited *e = &dg->rate_limited[i];
      md__sb_add(&b, "%s%s hop %d (%s)",
                 i == 0                        ? ""
                 : i == dg->n_rate_limited - 1 ? " and "
                                               : ", ",
                 e->path == MD_DIR_FORWARD ? "forward" : "reverse", e->ttl, e->ip ? e->ip : "???");
    }
    md__sb_add(&b, " is ICMP rate limiting (or deprioritised ICMP) on %s: ignore it.",
               dg->n_rate_limited == 1 ? "that router" : "those routers");
    rc = list_add(&dg->advice, &dg->n_advice, md__sb_take(&b));
  }
  if (rc == 0 && dg->status == MD_STATUS_INCOMPLETE && (f->have || r->have))
    rc = list_add(&dg->advice, &dg->n_advice,
                  fmt_dup("Run again once %s answers: the %s trace is missing (see errors).",
                          f->have ? bn : an, f->have ? "reverse" : "forward"));
  if (rc == 0 && !in->reverse_expected && !r->have)
    rc = list_add(&dg->advice, &dg->n_advice,
                  fmt_dup("Install mtr-agent on %s to trace the reverse path: a trace from one "
                          "end cannot see the path its replies take.",
                          bn));
  return rc;
}

/* Entry point: work on the two sides, release their own verdicts. */
int md_diagnose(const md_diag_input *in, md_diagnosis *dg) {
  if (!in || !dg)
    return -EINVAL;
  memset(dg, 0, sizeof *dg);
  side *sides = calloc(2, sizeof *sides); /* each holds two TTL tables: not for the stack */
  if (!sides)
    return -ENOMEM;
  int rc = diagnose(in, dg, &sides[0], &sides[1]);
  md_verdict_clear(&sides[0].own);
  md_verdict_clear(&sides[1].own);
  free(sides);
  if (rc != 0)
    md_diagnosis_clear(dg);
  return rc;
}

/* Frees the suspect's strings, the lists and the paragraph; zeroes d. */
void md_diagnosis_clear(md_diagnosis *d) {
  if (!d)
    return;
  free(d->suspect.from_ip);
  free(d->suspect.to_ip);
  for (int i = 0; i < d->suspect.n_evidence; i++)
    free(d->suspect.evidence[i]);
  free(d->suspect.evidence);
  for (int i = 0; i < d->n_rate_limited; i++)
    free(d->rate_limited[i].ip);
  free(d->rate_limited);
  free(d->summary);
  for (int i = 0; i < d->n_advice; i++)
    free(d->advice[i]);
  free(d->advice);
  memset(d, 0, sizeof *d);
}

/* Verdicts, alignment and diagnosis of a report, in that order. */
/* Build the joint model (localise.c) from a report: both paths, their
 * alignment, the one-way figures and the follow-up probes already made.
 * 0, -ENODATA (a path did not reach its end: the model does not apply). */
int md_report_localise(const md_report *r, md_localise **out) {
  md_localise_input li = {
      .forward = r->forward,
      .reverse = r->reverse,
      .alignment = &r->alignment,
      .a_address = r->a.probe_address,
      .b_address = r->b.probe_address,
      .oneway_forward = r->has_oneway ? &r->oneway_forward : NULL,
      .oneway_reverse = r->has_oneway ? &r->oneway_reverse : NULL,
  };
  if (!r->forward || !r->reverse || !r->forward->reached || !r->reverse->reached)
    return -ENODATA;
  int rc = md_localise_new(&li, out);
  if (rc < 0)
    return rc;
  for (int i = 0; i < r->n_followup; i++) {
    const md_followup *f = &r->followup[i];
    if (!f->from || !f->target)
      continue;
    md_agent_side side = r->a.name && strcmp(f->from, r->a.name) == 0 ? MD_AGENT_A : MD_AGENT_B;
    md_localise_add_followup(*out, side, f->target, f->sent,
                             f->recv); /* unknown targets: ignored */
  }
  return 0;
}

static void free_suspect(md_suspect *s) {
  free(s->from_ip);
  free(s->to_ip);
  for (int i = 0; i < s->n_evidence; i++)
    free(s->evidence[i]);
  free(s->evidence);
  memset(s, 0, sizeof *s);
}

/* Where the suspect is, in operator words: "the link 198.18.2.2 -> 198.18.3.2
 * (forward: local -> cvm)". */
static char *where_words(const md_report *r, const md_suspect *s) {
  const char *src = s->path == MD_DIR_FORWARD ? r->a.name : r->b.name;
  const char *dst = s->path == MD_DIR_FORWARD ? r->b.name : r->a.name;
  if (s->kind == MD_SUSPECT_DESTINATION_HOST)
    return fmt_dup("the destination host %s itself (%s trace: %s -> %s)", s->to_ip ? s->to_ip : "?",
                   md_dir_name(s->path), src ? src : "A", dst ? dst : "B");
  return fmt_dup("the link %s -> %s%s (%s direction: %s -> %s)", s->from_ip ? s->from_ip : "?",
                 s->to_ip ? s->to_ip : "?", s->from_ttl == 0 ? ", the one leaving the source" : "",
                 md_dir_name(s->path), src ? src : "A", dst ? dst : "B");
}

/* Summary and advice rebuilt from the joint suspect, so that nothing in the
 * report contradicts it (the per-direction readings stay in each path's
 * verdict). */
static int joint_summary(md_report *r, const md_localise_verdict *v) {
  md_diagnosis *g = &r->diagnosis;
  const md_suspect *s = &g->suspect;
  char *where = where_words(r, s);
  if (!where)
    return -ENOMEM;
  const char *what = s->kind == MD_SUSPECT_LATENCY            ? "added latency"
                     : s->kind == MD_SUSPECT_DESTINATION_HOST ? "probes dropped"
                                                              : "packet loss";
  char *sum = fmt_dup(
      "%s: %s at %s, confidence %.0f%%. Read together, both traces%s explain the figures of "
      "every hop best this way%s. Forward (%s -> %s): %s Reverse (%s -> %s): %s",
      md_status_name(g->status), what, where, s->confidence * 100,
      r->has_oneway ? " and the one-way stream between the agents" : "",
      v->needs_followup ? ", though other explanations remain close" : "",
      r->a.name ? r->a.name : "A", r->b.name ? r->b.name : "B",
      r->forward_verdict.text ? r->forward_verdict.text : "", r->b.name ? r->b.name : "B",
      r->a.name ? r->a.name : "A", r->reverse_verdict.text ? r->reverse_verdict.text : "");
  if (!sum) {
    free(where);
    return -ENOMEM;
  }
  free(g->summary);
  g->summary = sum;
  for (int i = 0; i < g->n_advice; i++)
    free(g->advice[i]);
  free(g->advice);
  g->advice = NULL;
  g->n_advice = 0;
  int rc;
  if (s->kind == MD_SUSPECT_DESTINATION_HOST)
    rc = list_add(&g->advice, &g->n_advice,
                  fmt_dup("The destination %s drops probes addressed to it: check its firewall "
                          "and ICMP settings before blaming a network.",
                          s->to_ip ? s->to_ip : "?"));
  else if (s->from_ttl == 0)
    rc = list_add(&g->advice, &g->n_advice,
                  fmt_dup("The fault is on %s: check that host's uplink and its local ISP first; "
                          "attach the evidence bundle (-o DIR) to the ticket.",
                          where));
  else
    rc = list_add(&g->advice, &g->n_advice,
                  fmt_dup("Report the %s on %s to the network that operates that link; attach "
                          "the evidence bundle (-o DIR), which shows both directions.",
                          what, where));
  if (rc == 0 && g->n_rate_limited > 0)
    rc = list_add(&g->advice, &g->n_advice,
                  fmt_dup("Loss at intermediate hops only (%d of them, see rate_limited) is ICMP "
                          "rate limiting on those routers: ignore it.",
                          g->n_rate_limited));
  free(where);
  return rc;
}

/* The joint reading takes over the suspect when it names one: it uses both
 * runs, the one-way stream and the follow-ups, where the first diagnosis
 * reads each direction on its own (docs/localisation.md). */
static int apply_joint_model(md_report *r) {
  md_diagnosis *g = &r->diagnosis;
  if (g->status == MD_STATUS_INCOMPLETE || g->status == MD_STATUS_UNREACHABLE)
    return 0;
  md_localise *m = NULL;
  int rc = md_report_localise(r, &m);
  if (rc == -ENODATA || rc == -EINVAL)
    return 0;
  if (rc < 0)
    return rc;
  md_localise_verdict v;
  memset(&v, 0, sizeof v);
  rc = md_localise_conclude(m, &v);
  if (rc == 0 && v.found) {
    free_suspect(&g->suspect);
    g->suspect = v.suspect;
    memset(&v.suspect, 0, sizeof v.suspect);
    g->has_suspect = true;
    g->direction = g->suspect.path == MD_DIR_FORWARD ? MD_DIRECTION_FORWARD : MD_DIRECTION_REVERSE;
    if (g->status == MD_STATUS_HEALTHY)
      g->status = MD_STATUS_DEGRADED;
    rc = joint_summary(r, &v);
    if (v.needs_oneway && !r->has_oneway)
      rc = list_add(&g->advice, &g->n_advice,
                    fmt_dup("Only the one-way stream between the agents can tell which direction "
                            "of this link drops packets; it was not measured in this run."));
    else if (v.needs_followup)
      rc = list_add(&g->advice, &g->n_advice,
                    fmt_dup("%d explanations fit the data almost equally well; the follow-up "
                            "probes could not separate them: run again with more cycles.",
                            v.n_contenders));
  }
  md_localise_verdict_clear(&v);
  md_localise_free(m);
  return rc < 0 && rc != -ENODATA ? rc : 0;
}

int md_report_analyse(md_report *r) {
  if (!r)
    return -EINVAL;
  md_verdict_clear(&r->forward_verdict);
  md_verdict_clear(&r->reverse_verdict);
  md_alignment_clear(&r->alignment);
  md_diagnosis_clear(&r->diagnosis);
  int rc;
  if (r->forward && (rc = md_verdict(r->forward, &r->forward_verdict)) == -ENOMEM)
    return rc;
  if (r->reverse && (rc = md_verdict(r->reverse, &r->reverse_verdict)) == -ENOMEM)
    return rc;
  bool both = r->forward && r->reverse;
  if (both && (rc = md_align(r->forward, r->reverse, &r->alignment)) != 0)
    return rc;
  md_diag_input in = {
      .forward = r->forward,
      .reverse = r->reverse,
      .forward_verdict = &r->forward_verdict,
      .reverse_verdict = &r->reverse_verdict,
      .alignment = both ? &r->alignment : NULL,
      .reverse_expected = r->b.present,
      .a_address = r->a.probe_address,
      .b_address = r->b.probe_address,
  };
  rc = md_diagnose(&in, &r->diagnosis);
  if (rc == 0 && both)
    rc = apply_joint_model(r);
  return rc;
}

/* Which agents should run the local-ISP check (docs/verdict.md). */
unsigned md_reference_checks(const md_path_verdict *forward, const md_path_verdict *reverse) {
  unsigned m = 0;
  if (md_verdict_needs_reference(forward))
    m |= MD_REFERENCE_FROM_A;
  if (md_verdict_needs_reference(reverse))
    m |= MD_REFERENCE_FROM_B;
  return m;
}
