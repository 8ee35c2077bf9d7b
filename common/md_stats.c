/* md_stats: mtr's per-hop statistics (net_process_ping() and the net_*()
 * getters of mtr 0.95's ui/net.c), the same formulas in floating point.
 *
 * mtr keeps every figure as an int of microseconds and truncates at each
 * step (avg, javg, gmean, stdev; jinta rounds its >>4). We keep doubles:
 * mtr's truncated running mean lags the true one (a few µs over 10 cycles,
 * up to ~0.25 ms over 1000 in a simulation), and on a LAN hop that shows
 * (mtr printed Avg 0.0 for 50 replies averaging over 0.05 ms). The renderers
 * truncate to whole microseconds at display time as mtr's columns do, so
 * given the same replies a report matches mtr's but for that drift
 * (checked on a lab: identical when mtr's int arithmetic is replayed).
 *
 * The definitions, n being the number of replies so far:
 *   last, best, worst   of the reply RTTs
 *   avg                 running mean: avg += (rtt - avg) / n
 *   stdev               sqrt(ssd / (n - 1)), ssd by Welford's update
 *                       ssd += (rtt - avg_old) * (rtt - avg_new); 0 when n < 2
 *   gmean               geometric mean: gmean = gmean^((n-1)/n) * rtt^(1/n)
 *   jitter              |rtt - previous reply's rtt|; 0 for the first reply
 *   javg                running mean of jitter over all n replies (the
 *                       first reply's jitter of 0 included)
 *   jmax                largest jitter
 *   jint                RFC 1889 A.8's accumulator, jinta += jitter - jinta/16.
 *                       mtr reports the accumulator itself ("Jint"), which is
 *                       16 times the RFC's interarrival jitter estimate.
 *   loss%               drop / (sent - transit), drop = sent - transit - recv
 */
#include "md_stats.h"

#include <math.h>
#include <string.h>

/* All zero: no probe sent yet. */
void md_stats_init(md_stats *s) {
  memset(s, 0, sizeof *s);
}

/* The probe is in transit until md_stats_on_reply or md_stats_on_timeout. */
void md_stats_on_sent(md_stats *s) {
  s->sent++;
  s->transit++;
}

/* One reply, rtt_us after its probe left. Each probe sent gets at most one
 * on_reply or on_timeout; a negative or NaN RTT counts as 0. */
void md_stats_on_reply(md_stats *s, double rtt_us) {
  if (!(rtt_us >= 0))
    rtt_us = 0;
  if (s->transit > 0)
    s->transit--;

  double jitter = fabs(rtt_us - s->last_us);
  s->last_us = rtt_us;
  if (s->recv == 0) {
    s->best_us = s->worst_us = s->gmean_us = rtt_us;
    s->avg_us = s->ssd_us = 0;
    jitter = s->jmax_us = s->jinta_us = 0;
  }
  if (rtt_us < s->best_us)
    s->best_us = rtt_us;
  if (rtt_us > s->worst_us)
    s->worst_us = rtt_us;
  if (jitter > s->jmax_us)
    s->jmax_us = jitter;
  s->jitter_us = jitter;

  s->recv++;
  double n = (double)s->recv;
  double old_avg = s->avg_us;
  s->avg_us += (rtt_us - old_avg) / n;
  s->ssd_us += (rtt_us - old_avg) * (rtt_us - s->avg_us);
  s->javg_us += (jitter - s->javg_us) / n;
  s->jinta_us += jitter - s->jinta_us / 16.0;
  if (s->recv > 1)
    s->gmean_us = pow(s->gmean_us, (n - 1.0) / n) * pow(rtt_us, 1.0 / n);
}

/* Given up on: no longer in transit, so now counted as dropped. */
void md_stats_on_timeout(md_stats *s) {
  if (s->transit > 0)
    s->transit--;
}

/* Never negative, even if a caller reported more replies than probes. */
uint32_t md_stats_drop(const md_stats *s) {
  if (s->transit > s->sent)
    return 0;
  uint32_t done = s->sent - s->transit;
  return done > s->recv ? done - s->recv : 0;
}

/* 0 when no probe has finished (all in transit, or none sent), as mtr. */
double md_stats_loss_pct(const md_stats *s) {
  if (s->transit >= s->sent)
    return 0.0;
  return 100.0 * md_stats_drop(s) / (double)(s->sent - s->transit);
}

/* The RTT figures are 0 until the first reply, as mtr shows them. */
static double replied_ms(const md_stats *s, double us) {
  return s->recv ? us / 1000.0 : 0.0;
}

/* Latest reply's RTT ("Last"). */
double md_stats_last_ms(const md_stats *s) {
  return replied_ms(s, s->last_us);
}

/* Running mean ("Avg"). */
double md_stats_avg_ms(const md_stats *s) {
  return replied_ms(s, s->avg_us);
}

/* Smallest RTT ("Best"). */
double md_stats_best_ms(const md_stats *s) {
  return replied_ms(s, s->best_us);
}

/* Largest RTT ("Wrst"). */
double md_stats_worst_ms(const md_stats *s) {
  return replied_ms(s, s->worst_us);
}

/* Sample standard deviation ("StDev", n - 1), 0 below two replies. */
double md_stats_stdev_ms(const md_stats *s) {
  if (s->recv < 2 || !(s->ssd_us > 0))
    return 0.0;
  return sqrt(s->ssd_us / (s->recv - 1.0)) / 1000.0;
}

/* Geometric mean ("Gmean"). */
double md_stats_gmean_ms(const md_stats *s) {
  return replied_ms(s, s->gmean_us);
}

/* Latest jitter ("Jttr"). */
double md_stats_jitter_ms(const md_stats *s) {
  return replied_ms(s, s->jitter_us);
}

/* Mean jitter ("Javg"). */
double md_stats_javg_ms(const md_stats *s) {
  return replied_ms(s, s->javg_us);
}

/* Largest jitter ("Jmax"). */
double md_stats_jmax_ms(const md_stats *s) {
  return replied_ms(s, s->jmax_us);
}

/* mtr's "Jint": the RFC 1889 accumulator itself, not divided by 16. */
double md_stats_jint_ms(const md_stats *s) {
  return replied_ms(s, s->jinta_us);
}
