/* Unit tests for md_stats: mtr's per-hop figures for a known RTT series,
 * worked out by hand below, and the edge cases (no reply, one reply, all
 * probes in transit, replies around timeouts). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "md_stats.h"

#define EPS 1e-9

static void assert_near(double got, double want, const char *what) {
  if (fabs(got - want) > EPS)
    fail_msg("%s: got %.12f, want %.12f", what, got, want);
}

/* Replies of 10, 12, 11, 15, 10 ms (in µs as the engine gives them).
 *
 *   last  = 10, best = 10, worst = 15
 *   avg   = (10 + 12 + 11 + 15 + 10) / 5 = 58 / 5 = 11.6
 *   stdev: deviations from 11.6 are -1.6, 0.4, -0.6, 3.4, -1.6; squares
 *          2.56 + 0.16 + 0.36 + 11.56 + 2.56 = 17.2; 17.2 / (5 - 1) = 4.3;
 *          sqrt(4.3) = 2.073644135332772
 *   gmean = (10 * 12 * 11 * 15 * 10)^(1/5) = 198000^(1/5) = 11.463917131737604
 *   jitter per reply (|rtt - previous rtt|, the first 0): 0, 2, 1, 4, 5
 *          current 5, jmax 5, javg = (0 + 2 + 1 + 4 + 5) / 5 = 2.4
 *   jint  (jinta += jitter - jinta / 16):
 *          0 -> 0 + 0 - 0 = 0
 *            -> 0 + 2 - 0/16 = 2
 *            -> 2 + 1 - 2/16 = 2.875
 *            -> 2.875 + 4 - 2.875/16 = 6.6953125
 *            -> 6.6953125 + 5 - 6.6953125/16 = 11.27685546875
 *   Sent 7: 5 answered, 1 timed out, 1 still in transit, so
 *          drop = 7 - 1 - 5 = 1 and loss = 100 * 1 / (7 - 1) = 16.666...%
 */
static void test_known_series(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  const double rtt_ms[] = {10, 12, 11, 15, 10};
  for (int i = 0; i < 5; i++) {
    md_stats_on_sent(&s);
    md_stats_on_reply(&s, rtt_ms[i] * 1000.0);
  }
  md_stats_on_sent(&s);
  md_stats_on_timeout(&s);
  md_stats_on_sent(&s);

  assert_int_equal(s.sent, 7);
  assert_int_equal(s.recv, 5);
  assert_int_equal(s.transit, 1);
  assert_int_equal(md_stats_drop(&s), 1);
  assert_near(md_stats_loss_pct(&s), 100.0 / 6.0, "loss");
  assert_near(md_stats_last_ms(&s), 10, "last");
  assert_near(md_stats_best_ms(&s), 10, "best");
  assert_near(md_stats_worst_ms(&s), 15, "worst");
  assert_near(md_stats_avg_ms(&s), 11.6, "avg");
  assert_near(md_stats_stdev_ms(&s), 2.073644135332772, "stdev");
  assert_near(md_stats_gmean_ms(&s), 11.463917131737604, "gmean");
  assert_near(md_stats_jitter_ms(&s), 5, "jitter");
  assert_near(md_stats_jmax_ms(&s), 5, "jmax");
  assert_near(md_stats_javg_ms(&s), 2.4, "javg");
  assert_near(md_stats_jint_ms(&s), 11.27685546875, "jint");

  /* the probe in transit times out: drop 2 of 7, loss 28.57% */
  md_stats_on_timeout(&s);
  assert_int_equal(md_stats_drop(&s), 2);
  assert_near(md_stats_loss_pct(&s), 200.0 / 7.0, "loss after timeout");
}

/* Jitter compares with the previous reply, not with a lost probe, and best
 * and worst move both ways: 20, (lost), 5, 30 ms.
 *   jitter 0, |5 - 20| = 15, |30 - 5| = 25; jmax 25; javg = 40 / 3
 *   avg 55 / 3 = 18.333...; stdev: deviations 1.667, -13.333, 11.667,
 *   squares sum = 2.7778 + 177.7778 + 136.1111 = 316.6667, / 2 = 158.3333,
 *   sqrt = 12.583057392117917
 *   gmean = (20 * 5 * 30)^(1/3) = 3000^(1/3) = 14.422495703074083
 *   jint: 0 -> 15 - 0 = 15 -> 15 + 25 - 15/16 = 39.0625 */
static void test_jitter_skips_losses(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  md_stats_on_sent(&s);
  md_stats_on_reply(&s, 20000);
  md_stats_on_sent(&s);
  md_stats_on_timeout(&s);
  md_stats_on_sent(&s);
  md_stats_on_reply(&s, 5000);
  md_stats_on_sent(&s);
  md_stats_on_reply(&s, 30000);
  assert_int_equal(md_stats_drop(&s), 1);
  assert_near(md_stats_loss_pct(&s), 25.0, "loss");
  assert_near(md_stats_best_ms(&s), 5, "best");
  assert_near(md_stats_worst_ms(&s), 30, "worst");
  assert_near(md_stats_last_ms(&s), 30, "last");
  assert_near(md_stats_jitter_ms(&s), 25, "jitter");
  assert_near(md_stats_jmax_ms(&s), 25, "jmax");
  assert_near(md_stats_javg_ms(&s), 40.0 / 3.0, "javg");
  assert_near(md_stats_avg_ms(&s), 55.0 / 3.0, "avg");
  assert_near(md_stats_stdev_ms(&s), 12.583057392117917, "stdev");
  assert_near(md_stats_gmean_ms(&s), 14.422495703074083, "gmean");
  assert_near(md_stats_jint_ms(&s), 39.0625, "jint");
}

/* Sent three, all timed out: 100% loss, every time 0 (mtr prints 0.0). */
static void test_no_replies(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  for (int i = 0; i < 3; i++) {
    md_stats_on_sent(&s);
    md_stats_on_timeout(&s);
  }
  assert_int_equal(md_stats_drop(&s), 3);
  assert_near(md_stats_loss_pct(&s), 100, "loss");
  assert_near(md_stats_last_ms(&s), 0, "last");
  assert_near(md_stats_avg_ms(&s), 0, "avg");
  assert_near(md_stats_best_ms(&s), 0, "best");
  assert_near(md_stats_worst_ms(&s), 0, "worst");
  assert_near(md_stats_stdev_ms(&s), 0, "stdev");
  assert_near(md_stats_gmean_ms(&s), 0, "gmean");
  assert_near(md_stats_jitter_ms(&s), 0, "jitter");
  assert_near(md_stats_javg_ms(&s), 0, "javg");
  assert_near(md_stats_jmax_ms(&s), 0, "jmax");
  assert_near(md_stats_jint_ms(&s), 0, "jint");
}

/* One reply of 7.5 ms: every RTT figure is 7.5, the spread ones 0. */
static void test_one_reply(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  md_stats_on_sent(&s);
  md_stats_on_reply(&s, 7500);
  assert_int_equal(md_stats_drop(&s), 0);
  assert_near(md_stats_loss_pct(&s), 0, "loss");
  assert_near(md_stats_last_ms(&s), 7.5, "last");
  assert_near(md_stats_avg_ms(&s), 7.5, "avg");
  assert_near(md_stats_best_ms(&s), 7.5, "best");
  assert_near(md_stats_worst_ms(&s), 7.5, "worst");
  assert_near(md_stats_gmean_ms(&s), 7.5, "gmean");
  assert_near(md_stats_stdev_ms(&s), 0, "stdev");
  assert_near(md_stats_jitter_ms(&s), 0, "jitter");
  assert_near(md_stats_javg_ms(&s), 0, "javg");
  assert_near(md_stats_jmax_ms(&s), 0, "jmax");
  assert_near(md_stats_jint_ms(&s), 0, "jint");
}

/* Probes still out count as neither received nor lost: with all four in
 * transit, mtr's loss is 0 (not 100), and so is the drop count. */
static void test_all_in_transit(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  assert_near(md_stats_loss_pct(&s), 0, "loss with nothing sent");
  for (int i = 0; i < 4; i++)
    md_stats_on_sent(&s);
  assert_int_equal(s.sent, 4);
  assert_int_equal(s.transit, 4);
  assert_int_equal(md_stats_drop(&s), 0);
  assert_near(md_stats_loss_pct(&s), 0, "loss");
  /* one answers, three remain out: still no loss */
  md_stats_on_reply(&s, 1000);
  assert_near(md_stats_loss_pct(&s), 0, "loss, 1 of 1 finished");
  /* one more times out: 1 of 2 finished probes lost */
  md_stats_on_timeout(&s);
  assert_near(md_stats_loss_pct(&s), 50, "loss, 1 of 2 finished");
}

/* A negative or NaN RTT (clock step) counts as 0, never poisons the
 * averages; more replies than probes never make the drop count wrap. */
static void test_bad_inputs(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  md_stats_on_sent(&s);
  md_stats_on_reply(&s, -5);
  md_stats_on_sent(&s);
  md_stats_on_reply(&s, NAN);
  assert_near(md_stats_avg_ms(&s), 0, "avg");
  assert_near(md_stats_gmean_ms(&s), 0, "gmean");
  assert_false(isnan(md_stats_stdev_ms(&s)));
  md_stats_on_reply(&s, 1000); /* a reply without a probe */
  md_stats_on_timeout(&s);     /* and a timeout without one */
  assert_int_equal(md_stats_drop(&s), 0);
  assert_near(md_stats_loss_pct(&s), 0, "loss");
}

/* Welford's update stays exact where the textbook sum of squares cancels:
 * 1e9 + 4, + 7, + 13, + 16 µs: variance 30 (µs^2), stdev sqrt(30) µs. */
static void test_stdev_large_offset(void **state) {
  (void)state;
  md_stats s;
  md_stats_init(&s);
  const double v[] = {1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16};
  for (int i = 0; i < 4; i++) {
    md_stats_on_sent(&s);
    md_stats_on_reply(&s, v[i]);
  }
  /* deviations from the mean (1e9 + 10): -6, -3, 3, 6; squares 36+9+9+36 = 90;
   * 90 / 3 = 30 */
  if (fabs(md_stats_stdev_ms(&s) - sqrt(30.0) / 1000.0) > 1e-9)
    fail_msg("stdev %.12f", md_stats_stdev_ms(&s));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_series),       cmocka_unit_test(test_jitter_skips_losses),
      cmocka_unit_test(test_no_replies),         cmocka_unit_test(test_one_reply),
      cmocka_unit_test(test_all_in_transit),     cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_stdev_large_offset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
