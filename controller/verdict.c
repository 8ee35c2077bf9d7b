/* verdict: the operators' MTR procedure on one direction (verdict.h,
 * docs/verdict.md). The reading is done once, in md_verdict_analyse(),
 * into an md_verdict_detail; md_verdict() only turns that into the
 * report's PATH.verdict and its one sentence. */
#include "verdict.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "sbuf.h"

/* --- Hop figures -------------------------------------------------------------- */

/* Probes at this hop that were answered or given up on (not in transit). */
uint32_t md_verdict_hop_sent(const md_hop *h) {
  return h->st.sent > h->st.transit ? h->st.sent - h->st.transit : 0;
}

/* Decided probes that got no answer. */
uint32_t md_verdict_hop_lost(const md_hop *h) {
  uint32_t sent = md_verdict_hop_sent(h);
  return sent > h->st.recv ? sent - h->st.recv : 0;
}

/* Loss in percent of the decided probes (0 when none was decided). */
double md_verdict_hop_loss_pct(const md_hop *h) {
  uint32_t sent = md_verdict_hop_sent(h);
  return sent ? 100.0 * (double)md_verdict_hop_lost(h) / (double)sent : 0.0;
}

/* A hop that answered at least once; the others are silent ("???"): they
 * tell nothing about loss and are read as unknown, never as its start. */
static bool hop_answered(const md_hop *h) {
  return h->n_hosts > 0 && h->st.recv > 0;
}

/* The noise rule (docs/verdict.md "Noise"): a probe or 2 % may go missing
 * on a healthy hop; with 10 cycles one lost probe is 10 % and means little. */
bool md_verdict_lost_above_noise(uint32_t lost, uint32_t sent) {
  double allowed = fmax(MD_VERDICT_NOISE_PROBES, MD_VERDICT_NOISE_PCT / 100.0 * (double)sent);
  return (double)lost > allowed;
}

/* The hop shows the destination's loss: at least one probe lost, and at
 * least CARRY_SHARE of the destination's loss (the intermediate hop's own
 * sample may come out lower than the destination's). */
static bool hop_carries(const md_hop *h, double dest_loss_pct) {
  return hop_answered(h) && md_verdict_hop_lost(h) >= 1 &&
         md_verdict_hop_loss_pct(h) >= MD_VERDICT_CARRY_SHARE * dest_loss_pct;
}

/* P(X <= k) for X ~ Binomial(n, p), summed in log space so that large n
 * does not underflow the first terms (0 < p < 1). */
static double binom_cdf(uint32_t k, uint32_t n, double p) {
  if (k >= n)
    return 1.0;
  double lp = log(p), lq = log1p(-p);
  double lpmf = (double)n * lq; /* P(X = 0) */
  double sum = exp(lpmf);
  for (uint32_t i = 0; i < k; i++) {
    lpmf += log((double)(n - i)) - log((double)(i + 1)) + lp - lq;
    sum += exp(lpmf);
  }
  return sum > 1.0 ? 1.0 : sum;
}

/* A hop below the carry share whose sample is still consistent with the
 * destination's loss rate: it lost few probes by chance. */
static bool hop_sampling_dip(const md_hop *h, double dest_rate) {
  if (!hop_answered(h) || dest_rate <= 0.0 || dest_rate >= 1.0)
    return false;
  return binom_cdf(md_verdict_hop_lost(h), md_verdict_hop_sent(h), dest_rate) >= MD_VERDICT_DIP_P;
}

/* Numeric text of the first responder; "???" as mtr prints a silent hop. */
const char *md_verdict_hop_ip(const md_hop *h, char *buf, size_t len) {
  if (!h || h->n_hosts == 0) {
    snprintf(buf, len, "???");
    return buf;
  }
  return md_addr_str(&h->hosts[0].addr, buf, len);
}

/* Operator words for each segment, shared with the diagnosis. */
const char *md_verdict_segment_words(md_segment s) {
  switch (s) {
  case MD_SEG_DESTINATION_HOST:
    return "the destination host itself";
  case MD_SEG_LOCAL_ISP:
    return "the local ISP (the first three hops)";
  case MD_SEG_TRANSIT:
    return "transit";
  case MD_SEG_DESTINATION_ISP:
    return "the destination's ISP (the two hops before it)";
  case MD_SEG_NONE:
    break;
  }
  return "nowhere";
}

/* --- The reading -------------------------------------------------------------- */

/* Which hop is the destination: the engine's `reached` says it answered;
 * the hop is the first one with the target among its responders (every
 * TTL past it reaches the target too, when the trace was not trimmed), else
 * (the destination answered from another address) the last that answered. */
int md_verdict_destination_idx(const md_path *p) {
  if (!p || !p->reached)
    return -1;
  md_addr target;
  bool have_target = p->target && md_addr_parse(p->target, &target) == 0;
  for (int i = 0; have_target && i < p->n_hops; i++)
    if (hop_answered(&p->hops[i]) && md_hop_find_host(&p->hops[i], &target))
      return i;
  for (int i = p->n_hops - 1; i >= 0; i--)
    if (hop_answered(&p->hops[i]))
      return i;
  return -1;
}

/* Segment of a loss that begins at TTL s on a path whose destination is at
 * TTL d: the destination itself, then the local ISP (TTL <= 3) before the
 * destination's ISP (the two TTLs before d) when both apply, else transit. */
static md_segment segment_of(int s, int d) {
  if (s >= d)
    return MD_SEG_DESTINATION_HOST;
  if (s <= MD_VERDICT_LOCAL_HOPS)
    return MD_SEG_LOCAL_ISP;
  if (s >= d - MD_VERDICT_DEST_ISP_HOPS)
    return MD_SEG_DESTINATION_ISP;
  return MD_SEG_TRANSIT;
}

/* The nearest answering hop before index i (its TTL), 0 for the source. */
static int answering_ttl_before(const md_path *p, int i) {
  for (int j = i - 1; j >= 0; j--)
    if (hop_answered(&p->hops[j]))
      return p->hops[j].ttl;
  return 0;
}

/* Read from the destination toward the source to the hop where the loss
 * begins and continues to the destination: carrying hops extend the
 * stretch, silent hops are passed over, one lower hop is tolerated when it
 * is a sampling dip and the next answering hop before it carries; a hop
 * that does neither ends the reading. */
static void read_lossy_stretch(const md_path *p, md_verdict_detail *d) {
  double dest_rate = (double)d->dest_lost / (double)d->dest_sent;
  int start = d->dest_idx, stop = -1;
  for (int i = d->dest_idx - 1; i >= 0; i--) {
    const md_hop *h = &p->hops[i];
    if (!hop_answered(h))
      continue;
    if (hop_carries(h, d->dest_loss_pct)) {
      start = i;
      continue;
    }
    if (hop_sampling_dip(h, dest_rate)) {
      int j = i - 1;
      while (j >= 0 && !hop_answered(&p->hops[j]))
        j--;
      if (j >= 0 && hop_carries(&p->hops[j], d->dest_loss_pct)) {
        d->dip_ttls[d->n_dips++] = h->ttl;
        continue;
      }
    }
    stop = i;
    break;
  }
  d->first_loss_idx = start;
  d->first_loss_ttl = p->hops[start].ttl;
  d->from_ttl = answering_ttl_before(p, start);
  d->segment = segment_of(d->first_loss_ttl, d->dest_ttl);
  for (int i = start + 1; i < d->dest_idx; i++)
    if (!hop_answered(&p->hops[i]))
      d->n_silent_inside++;
  for (int i = start - 1; i > stop; i--)
    d->n_silent_before++; /* all silent: the reading passed over them */
}

/* Responses stop: the segment is read where they stop. No answer at all is
 * the first hop; a last answering hop that is the destination's link mate
 * means the destination's own router delivered and the host did not answer. */
static void read_unreachable(const md_path *p, md_verdict_detail *d) {
  int r = d->last_answer_idx;
  if (r < 0) {
    d->first_loss_idx = 0;
    d->first_loss_ttl = p->hops[0].ttl;
    d->from_ttl = 0;
    d->segment = d->first_loss_ttl <= MD_VERDICT_LOCAL_HOPS ? MD_SEG_LOCAL_ISP : MD_SEG_TRANSIT;
    return;
  }
  const md_hop *last = &p->hops[r];
  d->first_loss_ttl = last->ttl + 1;
  d->first_loss_idx = r + 1 < p->n_hops ? r + 1 : -1;
  d->from_ttl = last->ttl;
  md_addr target;
  bool mate = false;
  if (p->target && md_addr_parse(p->target, &target) == 0)
    for (int k = 0; k < last->n_hosts && !mate; k++)
      mate = md_align_link_mates(&last->hosts[k].addr, &target);
  if (mate)
    d->segment = MD_SEG_DESTINATION_HOST;
  else
    d->segment = d->first_loss_ttl <= MD_VERDICT_LOCAL_HOPS ? MD_SEG_LOCAL_ISP : MD_SEG_TRANSIT;
}

/* The latency rise that stays: for each answering hop, the floor from it to
 * the end (lowest average from there on, destination included) compared
 * with the level before it (the previous answering hop's average, or the
 * floor if lower; 0 ms, the source, before the first). Spikes at one hop
 * do not lower a floor, so they never count. The largest rise wins. The
 * end is the destination; without one (unreachable), the last hop that
 * answered, which cannot itself be the rise: nothing after it shows that
 * the rise stays. */
static void read_latency(const md_path *p, int end, md_verdict_detail *d) {
  int idx[MD_MAX_TTL + 1];
  double avg[MD_MAX_TTL + 1], floor_from[MD_MAX_TTL + 1];
  int m = 0;
  for (int i = 0; i <= end && m <= MD_MAX_TTL; i++)
    if (hop_answered(&p->hops[i])) {
      idx[m] = i;
      avg[m++] = md_stats_avg_ms(&p->hops[i].st);
    }
  if (m == 0)
    return;
  floor_from[m - 1] = avg[m - 1];
  for (int q = m - 2; q >= 0; q--)
    floor_from[q] = fmin(avg[q], floor_from[q + 1]);
  double best = 0.0;
  for (int q = 0; q < (d->reached ? m : m - 1); q++) {
    double before = q == 0 ? 0.0 : fmin(avg[q - 1], floor_from[q]);
    double rise = floor_from[q] - before;
    double threshold = fmax(MD_VERDICT_JUMP_MIN_MS, MD_VERDICT_JUMP_SHARE * before);
    if (rise > threshold && rise > best) {
      best = rise;
      d->latency_jump_ttl = p->hops[idx[q]].ttl;
      d->latency_from_ttl = q == 0 ? 0 : p->hops[idx[q - 1]].ttl;
      d->latency_before_ms = before;
      d->latency_after_ms = floor_from[q];
    }
  }
}

/* The whole procedure (docs/verdict.md): destination loss, where it begins,
 * rate-limited hops, latency. */
int md_verdict_analyse(const md_path *p, md_verdict_detail *d) {
  if (!p || !d)
    return -EINVAL;
  memset(d, 0, sizeof *d);
  d->dest_idx = d->first_loss_idx = d->last_answer_idx = -1;
  uint64_t decided = 0;
  for (int i = 0; i < p->n_hops; i++) {
    decided += md_verdict_hop_sent(&p->hops[i]);
    if (hop_answered(&p->hops[i]))
      d->last_answer_idx = i;
  }
  if (p->n_hops == 0 || decided == 0)
    return -ENODATA;

  d->dest_idx = md_verdict_destination_idx(p);
  d->reached = d->dest_idx >= 0;
  int rate_limit_end; /* hops before this index may be listed as rate limited */
  if (d->reached) {
    const md_hop *dh = &p->hops[d->dest_idx];
    d->dest_ttl = dh->ttl;
    d->dest_sent = md_verdict_hop_sent(dh);
    d->dest_lost = md_verdict_hop_lost(dh);
    d->dest_loss_pct = md_verdict_hop_loss_pct(dh);
    d->dest_lossy = md_verdict_lost_above_noise(d->dest_lost, d->dest_sent);
    if (d->dest_lossy)
      read_lossy_stretch(p, d);
    rate_limit_end = d->dest_lossy ? d->first_loss_idx : d->dest_idx;
    read_latency(p, d->dest_idx, d);
  } else {
    d->dest_loss_pct = 100.0;
    d->dest_lossy = true;
    read_unreachable(p, d);
    rate_limit_end = d->last_answer_idx; /* the last answering hop is where they stop */
    read_latency(p, d->last_answer_idx, d);
  }
  d->segment = d->dest_lossy ? d->segment : MD_SEG_NONE;
  for (int i = 0; i < rate_limit_end; i++) {
    const md_hop *h = &p->hops[i];
    if (hop_answered(h) &&
        md_verdict_lost_above_noise(md_verdict_hop_lost(h), md_verdict_hop_sent(h)))
      d->rate_limited_ttls[d->n_rate_limited++] = h->ttl;
  }
  return 0;
}

/* --- PATH.verdict ------------------------------------------------------------- */

/* "hop 2 (198.18.2.2)", "hops 2 (a) and 3 (b)", "hops 2 (a), 3 (b) and 5 (c)". */
static void sb_hop_list(md__sbuf *b, const md_path *p, const int *ttls, int n) {
  char ip[MD_ADDRSTRLEN];
  md__sb_add(b, "%s", n == 1 ? "hop " : "hops ");
  for (int i = 0; i < n; i++) {
    const md_hop *h = md_path_hop_at(p, ttls[i]);
    md__sb_add(b, "%s%d (%s)",
               i == 0       ? ""
               : i == n - 1 ? " and "
                            : ", ",
               ttls[i], md_verdict_hop_ip(h, ip, sizeof ip));
  }
}

/* The rate-limiting clause, shared by the clean and the lossy sentences. */
static void sb_rate_limited(md__sbuf *b, const md_path *p, const md_verdict_detail *d,
                            const char *lead) {
  if (d->n_rate_limited == 0)
    return;
  md__sb_add(b, "%sthe loss at ", lead);
  sb_hop_list(b, p, d->rate_limited_ttls, d->n_rate_limited);
  md__sb_add(b, " is ICMP rate limiting on %s, not a fault",
             d->n_rate_limited == 1 ? "that router" : "those routers");
}

/* One sentence in operator words (docs/verdict.md has one per case). */
static char *verdict_text(const md_path *p, const md_verdict_detail *d) {
  md__sbuf b = {0};
  char ip[MD_ADDRSTRLEN];
  const char *target = p->target ? p->target : "?";
  if (!d->reached) {
    uint32_t sent = 0; /* probes per TTL: the most any hop was sent */
    for (int i = 0; i < p->n_hops; i++)
      if (md_verdict_hop_sent(&p->hops[i]) > sent)
        sent = md_verdict_hop_sent(&p->hops[i]);
    md__sb_add(&b, "The destination %s never answered (%u probes per hop)", target, (unsigned)sent);
    if (d->last_answer_idx < 0)
      md__sb_add(&b, " and no hop answered either: the trace stops at the first hop, in %s",
                 md_verdict_segment_words(d->segment));
    else if (d->segment == MD_SEG_DESTINATION_HOST)
      md__sb_add(&b,
                 "; the last hop that answered, hop %d (%s), is on the destination's own link: "
                 "the destination itself does not answer (down, or its firewall drops the probes)",
                 d->from_ttl, md_verdict_hop_ip(&p->hops[d->last_answer_idx], ip, sizeof ip));
    else
      md__sb_add(&b, "; responses stop after hop %d (%s), in %s", d->from_ttl,
                 md_verdict_hop_ip(&p->hops[d->last_answer_idx], ip, sizeof ip),
                 md_verdict_segment_words(d->segment));
    sb_rate_limited(&b, p, d, "; ");
  } else if (!d->dest_lossy) {
    md__sb_add(&b, "No loss at the destination %s%s (%u of %u probes lost): the path is fine",
               target, d->dest_lost ? " beyond noise" : "", (unsigned)d->dest_lost,
               (unsigned)d->dest_sent);
    sb_rate_limited(&b, p, d, "; ");
  } else if (d->segment == MD_SEG_DESTINATION_HOST) {
    md__sb_add(&b,
               "%.0f%% loss at the destination %s (%u of %u probes) and at no hop before it: the "
               "destination itself drops probes (its firewall or configuration)",
               d->dest_loss_pct, target, (unsigned)d->dest_lost, (unsigned)d->dest_sent);
    sb_rate_limited(&b, p, d, "; ");
  } else {
    const md_hop *h = &p->hops[d->first_loss_idx];
    md__sb_add(
        &b,
        "%.0f%% loss at the destination %s (%u of %u probes), beginning at hop %d (%s, %.0f%%) "
        "and continuing to the destination: a problem in %s",
        d->dest_loss_pct, target, (unsigned)d->dest_lost, (unsigned)d->dest_sent, d->first_loss_ttl,
        md_verdict_hop_ip(h, ip, sizeof ip), md_verdict_hop_loss_pct(h),
        md_verdict_segment_words(d->segment));
    sb_rate_limited(&b, p, d, "; before it, ");
  }
  if (d->latency_jump_ttl) {
    const md_hop *h = md_path_hop_at(p, d->latency_jump_ttl);
    char ip2[MD_ADDRSTRLEN];
    md__sb_add(&b, "; latency rises from %.1f ms to %.1f ms at hop %d (%s) and stays there to %s",
               d->latency_before_ms, d->latency_after_ms, d->latency_jump_ttl,
               md_verdict_hop_ip(h, ip2, sizeof ip2),
               d->reached ? "the destination" : "the last hop that answered");
  }
  md__sb_add(&b, ".");
  return md__sb_take(&b);
}

/* PATH.verdict from the reading. */
int md_verdict(const md_path *p, md_path_verdict *v) {
  if (!p || !v)
    return -EINVAL;
  memset(v, 0, sizeof *v);
  md_verdict_detail *d = malloc(sizeof *d);
  if (!d)
    return -ENOMEM;
  int rc = md_verdict_analyse(p, d);
  if (rc != 0) {
    free(d);
    return rc;
  }
  v->present = true;
  v->destination_loss_pct = d->dest_loss_pct;
  v->segment = d->segment;
  v->latency_jump_ttl = d->latency_jump_ttl;
  if (d->dest_lossy) {
    v->first_loss_ttl = d->first_loss_ttl;
    if (d->reached) {
      char ip[MD_ADDRSTRLEN];
      v->first_loss_ip = strdup(md_verdict_hop_ip(&p->hops[d->first_loss_idx], ip, sizeof ip));
    } else if (d->segment == MD_SEG_DESTINATION_HOST && p->target)
      v->first_loss_ip = strdup(p->target);
    /* else: the first hop that never answered has no address (null) */
    if (v->first_loss_ip == NULL && (d->reached || d->segment == MD_SEG_DESTINATION_HOST))
      rc = -ENOMEM;
  }
  if (rc == 0 && d->n_rate_limited > 0) {
    v->rate_limited_ttls = malloc((size_t)d->n_rate_limited * sizeof(int));
    if (v->rate_limited_ttls) {
      memcpy(v->rate_limited_ttls, d->rate_limited_ttls, (size_t)d->n_rate_limited * sizeof(int));
      v->n_rate_limited = d->n_rate_limited;
    } else {
      rc = -ENOMEM;
    }
  }
  if (rc == 0 && !(v->text = verdict_text(p, d)))
    rc = -ENOMEM;
  free(d);
  if (rc != 0)
    md_verdict_clear(v);
  return rc;
}

/* Frees the strings and the TTL list; present becomes false. */
void md_verdict_clear(md_path_verdict *v) {
  if (!v)
    return;
  free(v->first_loss_ip);
  free(v->rate_limited_ttls);
  free(v->text);
  memset(v, 0, sizeof *v);
}

/* The local-ISP check of the procedure: loss (or the end of the responses)
 * begins within the first three hops. */
bool md_verdict_needs_reference(const md_path_verdict *v) {
  return v && v->present && v->segment == MD_SEG_LOCAL_ISP;
}
