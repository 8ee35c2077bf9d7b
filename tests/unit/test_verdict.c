/* Unit tests for verdict: the operators' MTR procedure on one direction,
 * on synthetic paths: a clean path, loss at intermediate hops only (rate
 * limiting), the noise rule, a destination that drops probes itself, loss
 * beginning in each segment (and the precedence on short paths), silent
 * hops inside and before a lossy stretch, sampling dips, latency rises that
 * stay against one-hop spikes, unreachable destinations, and the
 * PATH.verdict strings. Every boundary tested here is in docs/verdict.md. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"
#include "path_fixture.h"

/* The verdict of a spec (10 cycles unless said), checked for success. */
static md_path_verdict verdict_of(md_path *p) {
  md_path_verdict v = {0};
  assert_int_equal(md_verdict(p, &v), 0);
  assert_true(v.present);
  assert_non_null(v.text);
  return v;
}

#define DEST "198.18.9.2"
#define H(n) #n ":198.18." #n ".2"

/* An 8-hop path with the destination at TTL 8: loss% per TTL. */
static md_path *path8(const int loss[8], int cycles) {
  char spec[512] = "";
  for (int t = 1; t <= 8; t++) {
    char tok[64];
    if (loss[t - 1] < 0)
      snprintf(tok, sizeof tok, "%d:???:100%% ", t);
    else if (t == 8)
      snprintf(tok, sizeof tok, "8:" DEST ":%d%% ", loss[7]);
    else
      snprintf(tok, sizeof tok, "%d:198.18.%d.2:%d%% ", t, t, loss[t - 1]);
    strcat(spec, tok);
  }
  return mkpath(DEST, cycles, spec);
}

/* --- Clean and rate limited ----------------------------------------------------- */

static void test_clean(void **state) {
  (void)state;
  md_path *p = mkpath(DEST, 10, H(1) ":0% " H(2) ":0% " H(3) ":0% 4:" DEST ":0%");
  md_path_verdict v = verdict_of(p);
  assert_true(v.destination_loss_pct == 0.0);
  assert_int_equal(v.first_loss_ttl, 0);
  assert_null(v.first_loss_ip);
  assert_int_equal(v.segment, MD_SEG_NONE);
  assert_int_equal(v.n_rate_limited, 0);
  assert_int_equal(v.latency_jump_ttl, 0);
  assert_string_equal(v.text, "No loss at the destination " DEST
                              " (0 of 10 probes lost): the path is fine.");
  assert_false(md_verdict_needs_reference(&v));
  md_verdict_clear(&v);
  assert_false(v.present);
  md_path_free(p);
}

static void test_intermediate_only_is_rate_limiting(void **state) {
  (void)state;
  md_path *p = mkpath(DEST, 10, H(1) ":0% " H(2) ":40% " H(3) ":60% " H(4) ":0% 5:" DEST ":0%");
  md_path_verdict v = verdict_of(p);
  assert_int_equal(v.segment, MD_SEG_NONE);
  assert_int_equal(v.first_loss_ttl, 0);
  assert_int_equal(v.n_rate_limited, 2);
  assert_int_equal(v.rate_limited_ttls[0], 2);
  assert_int_equal(v.rate_limited_ttls[1], 3);
  assert_non_null(strstr(v.text, "the path is fine; the loss at hops 2 (198.18.2.2) and 3 "
                                 "(198.18.3.2) is ICMP rate limiting on those routers"));
  md_verdict_clear(&v);
  md_path_free(p);
}

/* Silent hops are unknown, not rate limited; a lossy hop right before a
 * clean destination is still rate limiting. */
static void test_silent_hops_not_rate_limited(void **state) {
  (void)state;
  md_path *p = mkpath(DEST, 10, H(1) ":0% 2:???:100% " H(3) ":30% 4:" DEST ":0%");
  md_path_verdict v = verdict_of(p);
  assert_int_equal(v.n_rate_limited, 1);
  assert_int_equal(v.rate_limited_ttls[0], 3);
  assert_non_null(strstr(v.text, "hop 3 (198.18.3.2) is ICMP rate limiting on that router"));
  md_verdict_clear(&v);
  md_path_free(p);
}

/* Noise: lost <= max(1 probe, 2 %) is no loss. */
static void test_noise_boundary(void **state) {
  (void)state;
  {
    struct {
      int cycles, loss_pct;
      bool lossy;
    } c[] = {
        {10, 10, false},                  /* 1 of 10: one probe */
        {10, 20, true},                   /* 2 of 10 */
        {100, 2, false},                  /* 2 of 100: 2 % */
        {100, 3, true},                   /* 3 of 100 */
        {1000, 2, false},                 /* 20 of 1000 */
        {1000, 3, true},  {3, 34, false}, /* 1 of 3 */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
      char spec[128];
      snprintf(spec, sizeof spec, H(1) ":0%% 2:" DEST ":%d%%", c[i].loss_pct);
      md_path *p = mkpath(DEST, c[i].cycles, spec);
      md_verdict_detail d;
      assert_int_equal(md_verdict_analyse(p, &d), 0);
      if (d.dest_lossy != c[i].lossy)
        fail_msg("case %zu: %d%% of %d: lossy %d", i, c[i].loss_pct, c[i].cycles, d.dest_lossy);
      md_path_free(p);
    }
  }
  assert_false(md_verdict_lost_above_noise(1, 10));
  assert_true(md_verdict_lost_above_noise(2, 10));
  assert_false(md_verdict_lost_above_noise(1, 1));
  assert_false(md_verdict_lost_above_noise(0, 0));
  assert_true(md_verdict_lost_above_noise(21, 1000));

  md_path *p = mkpath(DEST, 10, H(1) ":0% 2:" DEST ":10%");
  md_path_verdict v = verdict_of(p);
  assert_int_equal(v.segment, MD_SEG_NONE);
  assert_true(fabs(v.destination_loss_pct - 10.0) < 1e-9);
  assert_non_null(
      strstr(v.text, "No loss at the destination " DEST " beyond noise (1 of 10 probes lost)"));
  md_verdict_clear(&v);
  md_path_free(p);
}

/* --- Where the loss begins ------------------------------------------------------ */

static void test_destination_firewall(void **state) {
  (void)state;
  md_path *p = mkpath(DEST, 10, H(1) ":0% " H(2) ":40% " H(3) ":0% " H(4) ":0% 5:" DEST ":30%");
  md_path_verdict v = verdict_of(p);
  assert_int_equal(v.segment, MD_SEG_DESTINATION_HOST);
  assert_int_equal(v.first_loss_ttl, 5);
  assert_string_equal(v.first_loss_ip, DEST);
  assert_true(fabs(v.destination_loss_pct - 30.0) < 1e-9);
  assert_int_equal(v.n_rate_limited, 1); /* hop 2: it does not continue */
  assert_int_equal(v.rate_limited_ttls[0], 2);
  assert_string_equal(v.text, "30% loss at the destination " DEST
                              " (3 of 10 probes) and at no hop before it: the destination itself "
                              "drops probes (its firewall or configuration); the loss at hop 2 "
                              "(198.18.2.2) is ICMP rate limiting on that router, not a fault.");
  md_verdict_detail d;
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.from_ttl, 4);
  md_verdict_clear(&v);
  md_path_free(p);
}

/* One expectation: the loss per TTL of an 8-hop path and where it begins. */
static void expect_start(const int loss[8], int cycles, int ttl, md_segment seg) {
  md_path *p = path8(loss, cycles);
  md_path_verdict v = verdict_of(p);
  if (v.first_loss_ttl != ttl || v.segment != seg)
    fail_msg("expected ttl %d segment %d, got ttl %d segment %d (%s)", ttl, seg, v.first_loss_ttl,
             v.segment, v.text);
  md_verdict_clear(&v);
  md_path_free(p);
}

static void test_loss_begins_local_isp(void **state) {
  (void)state;
  expect_start((int[]){0, 30, 30, 30, 30, 30, 30, 30}, 10, 2, MD_SEG_LOCAL_ISP);
  expect_start((int[]){30, 30, 30, 30, 30, 30, 30, 30}, 10, 1, MD_SEG_LOCAL_ISP);
  expect_start((int[]){0, 0, 30, 30, 30, 30, 30, 30}, 10, 3, MD_SEG_LOCAL_ISP);

  md_path *p = path8((int[]){0, 30, 30, 30, 30, 30, 30, 30}, 10);
  md_path_verdict v = verdict_of(p);
  assert_string_equal(v.first_loss_ip, "198.18.2.2");
  assert_true(md_verdict_needs_reference(&v));
  assert_string_equal(v.text, "30% loss at the destination " DEST
                              " (3 of 10 probes), beginning at hop 2 (198.18.2.2, 30%) and "
                              "continuing to the destination: a problem in the local ISP (the "
                              "first three hops).");
  md_verdict_clear(&v);
  md_path_free(p);
}

static void test_loss_begins_transit(void **state) {
  (void)state;
  expect_start((int[]){0, 0, 0, 30, 30, 30, 30, 30}, 10, 4, MD_SEG_TRANSIT);
  expect_start((int[]){0, 0, 0, 0, 30, 30, 30, 30}, 10, 5, MD_SEG_TRANSIT);
  /* rate limiting before the start does not move it */
  expect_start((int[]){0, 50, 0, 30, 30, 30, 30, 30}, 10, 4, MD_SEG_TRANSIT);
  /* hops inside the stretch may lose more than the destination */
  expect_start((int[]){0, 0, 0, 30, 80, 30, 50, 30}, 10, 4, MD_SEG_TRANSIT);
}

static void test_loss_begins_destination_isp(void **state) {
  (void)state;
  expect_start((int[]){0, 0, 0, 0, 0, 30, 30, 30}, 10, 6, MD_SEG_DESTINATION_ISP);
  expect_start((int[]){0, 0, 0, 0, 0, 0, 30, 30}, 10, 7, MD_SEG_DESTINATION_ISP);
  expect_start((int[]){0, 0, 0, 0, 0, 0, 0, 30}, 10, 8, MD_SEG_DESTINATION_HOST);
}

/* Short paths: the first three hops and the two before the destination
 * overlap; the local ISP wins. */
static void test_short_path_precedence(void **state) {
  (void)state;
  struct {
    const char *spec;
    int ttl;
    md_segment seg;
  } c[] = {
      {H(1) ":0% " H(2) ":0% " H(3) ":30% 4:" DEST ":30%", 3, MD_SEG_LOCAL_ISP},
      {H(1) ":0% " H(2) ":30% 3:" DEST ":30%", 2, MD_SEG_LOCAL_ISP},
      {H(1) ":0% " H(2) ":0% " H(3) ":0% " H(4) ":30% 5:" DEST ":30%", 4, MD_SEG_DESTINATION_ISP},
      {H(1) ":0% " H(2) ":0% " H(3) ":0% " H(4) ":30% " H(5) ":30% " H(6) ":30% 7:" DEST ":30%", 4,
       MD_SEG_TRANSIT},
      {"1:" DEST ":30%", 1, MD_SEG_DESTINATION_HOST},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    md_path *p = mkpath(DEST, 10, c[i].spec);
    md_path_verdict v = verdict_of(p);
    if (v.first_loss_ttl != c[i].ttl || v.segment != c[i].seg)
      fail_msg("case %zu: ttl %d seg %d (%s)", i, v.first_loss_ttl, v.segment, v.text);
    md_verdict_clear(&v);
    md_path_free(p);
  }
}

/* Silent hops inside the stretch are passed over; silent hops right
 * before its first answering hop are counted (it may begin there) but are
 * never its start. */
static void test_silent_hops_in_lossy_stretch(void **state) {
  (void)state;
  md_path *p = path8((int[]){0, 0, 0, 30, -1, 30, -1, 30}, 10);
  md_verdict_detail d;
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.first_loss_ttl, 4);
  assert_int_equal(d.segment, MD_SEG_TRANSIT);
  assert_int_equal(d.n_silent_inside, 2);
  assert_int_equal(d.n_silent_before, 0);
  assert_int_equal(d.from_ttl, 3);
  md_path_free(p);

  p = path8((int[]){0, 0, 0, -1, 30, 30, 30, 30}, 10);
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.first_loss_ttl, 5);
  assert_int_equal(d.n_silent_before, 1);
  assert_int_equal(d.from_ttl, 3); /* the nearest hop that answered */
  md_path_free(p);

  /* only silent hops before the destination: destination_host, may begin earlier */
  p = mkpath(DEST, 10, H(1) ":0% 2:???:100% 3:???:100% 4:" DEST ":40%");
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.segment, MD_SEG_DESTINATION_HOST);
  assert_int_equal(d.n_silent_before, 2);
  assert_int_equal(d.from_ttl, 1);
  md_path_free(p);

  /* everything before is silent: the source is "from" */
  p = mkpath(DEST, 10, "1:???:100% 2:" DEST ":40%");
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.first_loss_ttl, 2);
  assert_int_equal(d.from_ttl, 0);
  assert_int_equal(d.n_silent_before, 1);
  md_path_free(p);
}

/* Carry share and sampling dips (10 cycles, destination 30 %). */
static void test_sampling_dips(void **state) {
  (void)state;
  /* 1 of 10 at 30 %: P(X <= 1) = 0.149, a dip; the stretch goes on */
  expect_start((int[]){0, 0, 0, 30, 10, 30, 30, 30}, 10, 4, MD_SEG_TRANSIT);
  /* 0 of 10 at 30 %: P(X = 0) = 0.028, not a dip: the stretch begins after it */
  expect_start((int[]){0, 0, 0, 30, 0, 30, 30, 30}, 10, 6, MD_SEG_DESTINATION_ISP);
  /* two lower hops in a row: the reading stops at the first */
  expect_start((int[]){0, 0, 30, 30, 10, 10, 30, 30}, 10, 7, MD_SEG_DESTINATION_ISP);
  /* a dip needs a carrying hop before it */
  expect_start((int[]){0, 0, 0, 0, 10, 30, 30, 30}, 10, 6, MD_SEG_DESTINATION_ISP);
  /* a dip with silent hops between it and the carrier */
  expect_start((int[]){0, 0, 30, -1, 10, 30, 30, 30}, 10, 3, MD_SEG_LOCAL_ISP);
  /* half the destination's loss carries (15 % of 30 %: 2 of 10 = 20 %) */
  expect_start((int[]){0, 0, 0, 20, 20, 20, 20, 30}, 10, 4, MD_SEG_TRANSIT);
  /* 100 cycles: 10 % against 30 % is no dip (P ~ 1e-6) */
  expect_start((int[]){0, 0, 0, 30, 10, 30, 30, 30}, 100, 6, MD_SEG_DESTINATION_ISP);
  /* ... but 20 % carries (>= 15 %) */
  expect_start((int[]){0, 0, 0, 30, 20, 30, 30, 30}, 100, 4, MD_SEG_TRANSIT);

  md_path *p = path8((int[]){0, 0, 0, 30, 10, 30, 30, 30}, 10);
  md_verdict_detail d;
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.n_dips, 1);
  assert_int_equal(d.dip_ttls[0], 5);
  md_path_free(p);
}

/* --- Latency -------------------------------------------------------------------- */

static void expect_jump(const char *spec, int ttl, double before, double after) {
  md_path *p = mkpath(DEST, 10, spec);
  md_verdict_detail d;
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  if (d.latency_jump_ttl != ttl)
    fail_msg("%s: jump at %d, expected %d", spec, d.latency_jump_ttl, ttl);
  if (ttl) {
    assert_true(fabs(d.latency_before_ms - before) < 1e-6);
    assert_true(fabs(d.latency_after_ms - after) < 1e-6);
  }
  md_path_free(p);
}

static void test_latency_rise_persists(void **state) {
  (void)state;
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:40ms " H(4) ":0%:41ms 5:" DEST ":0%:42ms",
              3, 2.0, 40.0);
  md_path *p =
      mkpath(DEST, 10,
             H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:40ms " H(4) ":0%:41ms 5:" DEST ":0%:42ms");
  md_path_verdict v = verdict_of(p);
  assert_int_equal(v.latency_jump_ttl, 3);
  assert_non_null(strstr(v.text, "the path is fine; latency rises from 2.0 ms to 40.0 ms at hop 3 "
                                 "(198.18.3.2) and stays there to the destination."));
  md_verdict_clear(&v);
  md_path_free(p);
  /* at the destination itself */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms 3:" DEST ":0%:30ms", 3, 2.0, 30.0);
}

static void test_latency_spike_is_not(void **state) {
  (void)state;
  /* one hop slow to answer (ICMP slow path) */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:80ms " H(4) ":0%:3ms 5:" DEST ":0%:4ms", 0,
              0, 0);
  /* a rise that falls back before the destination */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:30ms " H(3) ":0%:31ms " H(4) ":0%:35ms 5:" DEST ":0%:5ms",
              0, 0, 0);
  /* a spike then a real rise: placed where the level stays above, hop 3 */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:100ms " H(4) ":0%:30ms 5:" DEST ":0%:31ms",
              3, 2.0, 30.0);
  /* unreachable: the last hop that answered cannot be the rise ... */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:40ms 3:???:100%", 0, 0, 0);
  /* ... but a rise before it that it keeps counts */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:40ms " H(3) ":0%:41ms 4:???:100%", 2, 1.0, 40.0);
  /* silent hops are passed over */
  expect_jump(H(1) ":0%:1ms 2:???:100% " H(3) ":0%:25ms 4:" DEST ":0%:26ms", 3, 1.0, 25.0);
}

static void test_latency_thresholds(void **state) {
  (void)state;
  /* +6 ms: below 10 ms */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:8ms 4:" DEST ":0%:9ms", 0, 0, 0);
  /* exactly +10 ms is not more than 10 */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:12ms 4:" DEST ":0%:12ms", 0, 0, 0);
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:2ms " H(3) ":0%:12.5ms 4:" DEST ":0%:13ms", 3, 2.0, 12.5);
  /* at 100 ms the rise must exceed 50 ms */
  expect_jump(H(1) ":0%:100ms " H(2) ":0%:100ms " H(3) ":0%:140ms 4:" DEST ":0%:141ms", 1, 0.0,
              100.0);
  expect_jump(H(1) ":0%:5ms " H(2) ":0%:100ms " H(3) ":0%:140ms 4:" DEST ":0%:141ms", 2, 5.0,
              100.0);
  expect_jump(H(1) ":0%:5ms " H(2) ":0%:8ms " H(3) ":0%:100ms " H(4) ":0%:160ms 5:" DEST
                                                                     ":0%:161ms",
              3, 8.0, 100.0);
  /* two rises: the larger one is named */
  expect_jump(H(1) ":0%:1ms " H(2) ":0%:20ms " H(3) ":0%:21ms " H(4) ":0%:90ms 5:" DEST ":0%:91ms",
              4, 21.0, 90.0);
  /* the first hop rises from the source (0 ms) */
  expect_jump(H(1) ":0%:15ms " H(2) ":0%:16ms 3:" DEST ":0%:17ms", 1, 0.0, 15.0);
}

/* --- Unreachable ---------------------------------------------------------------- */

static void test_unreachable(void **state) {
  (void)state;
  md_path *p = mkpath(DEST, 10, H(1) ":0% " H(2) ":20% 3:???:100% 4:???:100%");
  assert_false(p->reached);
  md_path_verdict v = verdict_of(p);
  assert_true(v.destination_loss_pct == 100.0);
  assert_int_equal(v.first_loss_ttl, 3);
  assert_null(v.first_loss_ip);
  assert_int_equal(v.segment, MD_SEG_LOCAL_ISP);
  assert_int_equal(v.n_rate_limited, 0); /* hop 2 is where the responses stop */
  assert_true(md_verdict_needs_reference(&v));
  assert_string_equal(v.text, "The destination " DEST
                              " never answered (10 probes per hop); responses stop after hop 2 "
                              "(198.18.2.2), in the local ISP (the first three hops).");
  md_verdict_detail d;
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_false(d.reached);
  assert_int_equal(d.from_ttl, 2);
  assert_int_equal(d.first_loss_idx, 2);
  md_verdict_clear(&v);
  md_path_free(p);

  /* further out: transit; trailing silent hops trimmed: the hop is past the end */
  p = mkpath(DEST, 10, H(1) ":0% " H(2) ":30% " H(3) ":0% " H(4) ":0%");
  p->reached = false;
  v = verdict_of(p);
  assert_int_equal(v.first_loss_ttl, 5);
  assert_int_equal(v.segment, MD_SEG_TRANSIT);
  assert_int_equal(v.n_rate_limited, 1);
  assert_int_equal(v.rate_limited_ttls[0], 2);
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.first_loss_idx, -1);
  md_verdict_clear(&v);
  md_path_free(p);

  /* the last hop that answered is on the destination's own /30 */
  p = mkpath(DEST, 10, H(1) ":0% " H(2) ":0% " H(3) ":0% 4:198.18.9.1:0% 5:???:100%");
  v = verdict_of(p);
  assert_int_equal(v.segment, MD_SEG_DESTINATION_HOST);
  assert_int_equal(v.first_loss_ttl, 5);
  assert_string_equal(v.first_loss_ip, DEST);
  assert_non_null(strstr(v.text, "is on the destination's own link"));
  md_verdict_clear(&v);
  md_path_free(p);

  /* nothing answered at all */
  p = mkpath(DEST, 10, "1:???:100% 2:???:100%");
  v = verdict_of(p);
  assert_int_equal(v.first_loss_ttl, 1);
  assert_int_equal(v.segment, MD_SEG_LOCAL_ISP);
  assert_non_null(strstr(v.text, "no hop answered either"));
  md_verdict_clear(&v);
  md_path_free(p);
}

/* --- Odds and ends -------------------------------------------------------------- */

static void test_errors_and_edges(void **state) {
  (void)state;
  md_path_verdict v = {0};
  md_verdict_detail d;
  assert_int_equal(md_verdict(NULL, &v), -EINVAL);
  assert_int_equal(md_verdict_analyse(NULL, &d), -EINVAL);
  md_path *p = md_path_new("local", DEST, "cvm", 1);
  assert_int_equal(md_verdict(p, &v), -ENODATA);
  assert_false(v.present);
  md_path_hop(p, 1); /* a hop with nothing decided yet */
  assert_int_equal(md_verdict_analyse(p, &d), -ENODATA);
  md_path_free(p);
  md_verdict_clear(NULL);
  assert_false(md_verdict_needs_reference(NULL));

  /* probes still in transit are neither lost nor answered */
  p = mkpath(DEST, 10, H(1) ":0% 2:" DEST ":0%");
  md_hop *h = md_path_hop(p, 2);
  md_stats_on_sent(&h->st);
  md_stats_on_sent(&h->st);
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_false(d.dest_lossy);
  assert_int_equal(d.dest_sent, 10);
  md_path_free(p);

  /* the destination answering from another address: the last hop that answered */
  p = mkpath(DEST, 10, H(1) ":0% 2:198.18.77.1:30%");
  p->reached = true;
  assert_int_equal(md_verdict_destination_idx(p), 1);
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.segment, MD_SEG_DESTINATION_HOST);
  md_path_free(p);

  /* an untrimmed trace: every TTL past the destination reaches it too; the
   * first is the destination and the rest are not read */
  p = mkpath(DEST, 10, H(1) ":0% 2:" DEST ":0% 3:" DEST ":0% 4:" DEST ":50%");
  assert_int_equal(md_verdict_destination_idx(p), 1);
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_false(d.dest_lossy);
  assert_int_equal(d.n_rate_limited, 0);
  md_path_free(p);

  /* a first TTL above 1 keeps absolute TTLs */
  p = md_path_new("local", DEST, "cvm", 5);
  for (int ttl = 5; ttl <= 8; ttl++) {
    h = md_path_hop(p, ttl);
    md_addr a;
    char ip[32];
    snprintf(ip, sizeof ip, ttl == 8 ? DEST : "198.18.%d.2", ttl);
    assert_int_equal(md_addr_parse(ip, &a), 0);
    for (int c = 0; c < 10; c++) {
      md_stats_on_sent(&h->st);
      if (ttl >= 6 && c < 3) {
        md_stats_on_timeout(&h->st);
      } else {
        md_stats_on_reply(&h->st, 1000.0);
        md_hop_add_host(h, &a, NULL, 0);
      }
    }
  }
  p->reached = true;
  assert_int_equal(md_verdict_analyse(p, &d), 0);
  assert_int_equal(d.first_loss_ttl, 6);
  assert_int_equal(d.segment, MD_SEG_DESTINATION_ISP);
  md_path_free(p);

  assert_string_equal(md_verdict_segment_words(MD_SEG_TRANSIT), "transit");
}

/* IPv6 paths read the same way. */
static void test_ipv6(void **state) {
  (void)state;
  md_path *p = mkpath("2001:db8:4::2", 10,
                      "1:2001:db8:1::2:0% 2:2001:db8:2::2:50% 3:2001:db8:3::2:0% "
                      "4:2001:db8:4::2:30%");
  md_path_verdict v = verdict_of(p);
  assert_int_equal(v.segment, MD_SEG_DESTINATION_HOST);
  assert_string_equal(v.first_loss_ip, "2001:db8:4::2");
  assert_int_equal(v.n_rate_limited, 1);
  md_verdict_clear(&v);
  md_path_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean),
      cmocka_unit_test(test_intermediate_only_is_rate_limiting),
      cmocka_unit_test(test_silent_hops_not_rate_limited),
      cmocka_unit_test(test_noise_boundary),
      cmocka_unit_test(test_destination_firewall),
      cmocka_unit_test(test_loss_begins_local_isp),
      cmocka_unit_test(test_loss_begins_transit),
      cmocka_unit_test(test_loss_begins_destination_isp),
      cmocka_unit_test(test_short_path_precedence),
      cmocka_unit_test(test_silent_hops_in_lossy_stretch),
      cmocka_unit_test(test_sampling_dips),
      cmocka_unit_test(test_latency_rise_persists),
      cmocka_unit_test(test_latency_spike_is_not),
      cmocka_unit_test(test_latency_thresholds),
      cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_errors_and_edges),
      cmocka_unit_test(test_ipv6),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
