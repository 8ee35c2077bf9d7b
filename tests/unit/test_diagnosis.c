/* Unit tests for diagnosis: both directions read together on synthetic
 * paths of the lab's asymmetric topology (a = "local" 198.18.1.1, b = "cvm"
 * 198.18.4.2) and longer ones: healthy, loss in transit, a destination
 * that drops probes, the two joint patterns (a fault on an end's access
 * link; loss beginning at both ends of one shared link), unreachable,
 * incomplete runs, a B that is no agent, rate limiting on both paths,
 * latency, severity and confidence, md_report_analyse on a whole report,
 * and the local-ISP reference check. */
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

#include "align.h"
#include "diagnosis.h"
#include "verdict.h"
#include "path_fixture.h"

#define A4 "198.18.1.1"
#define B4 "198.18.4.2"
#define FWD_CLEAN "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%"
#define REV_CLEAN "1:198.18.4.1:0% 2:198.18.6.1:0% 3:198.18.5.1:0% 4:" A4 ":0%"
/* 8 hops each way, b = 198.18.9.2 (link 9), no router shared */
#define B8 "198.18.9.2"
#define FWD8(l1, l2, l3, l4, l5, l6, l7, l8)                                                       \
  "1:198.18.1.2:" l1 " 2:198.18.2.2:" l2 " 3:198.18.3.2:" l3 " 4:198.18.4.2:" l4                   \
  " 5:198.18.5.2:" l5 " 6:198.18.6.2:" l6 " 7:198.18.7.2:" l7 " 8:" B8 ":" l8
#define REV8_CLEAN                                                                                 \
  "1:198.18.9.1:0% 2:198.18.20.1:0% 3:198.18.21.1:0% 4:198.18.22.1:0% 5:198.18.23.1:0% "           \
  "6:198.18.24.1:0% 7:198.18.25.1:0% 8:" A4 ":0%"

static md_path *fwd(const char *target, const char *spec) {
  return mkpath_n("local", target, "cvm", 10, spec);
}
static md_path *rev(const char *spec) {
  return mkpath_n("cvm", A4, "local", 10, spec);
}

/* Diagnose two paths (either may be NULL) with their alignment. */
static void run(md_path *f, md_path *r, bool reverse_expected, md_diagnosis *d) {
  md_alignment al = {0};
  if (f && r)
    assert_int_equal(md_align(f, r, &al), 0);
  md_diag_input in = {.forward = f,
                      .reverse = r,
                      .alignment = f && r ? &al : NULL,
                      .reverse_expected = reverse_expected};
  assert_int_equal(md_diagnose(&in, d), 0);
  assert_non_null(d->summary);
  md_alignment_clear(&al);
}

/* Some line of a list contains `needle`. */
static bool any_has(char **lines, int n, const char *needle) {
  for (int i = 0; i < n; i++)
    if (strstr(lines[i], needle))
      return true;
  return false;
}
#define ASSERT_EVIDENCE(d, s)                                                                      \
  do {                                                                                             \
    if (!any_has((d)->suspect.evidence, (d)->suspect.n_evidence, s))                               \
      fail_msg("no evidence line with \"%s\"", s);                                                 \
  } while (0)
#define ASSERT_ADVICE(d, s)                                                                        \
  do {                                                                                             \
    if (!any_has((d)->advice, (d)->n_advice, s))                                                   \
      fail_msg("no advice with \"%s\"", s);                                                        \
  } while (0)
#define ASSERT_SUMMARY(d, s)                                                                       \
  do {                                                                                             \
    if (!strstr((d)->summary, s))                                                                  \
      fail_msg("summary lacks \"%s\": %s", s, (d)->summary);                                       \
  } while (0)

static void free_all(md_path *f, md_path *r, md_diagnosis *d) {
  md_diagnosis_clear(d);
  md_path_free(f);
  md_path_free(r);
}

/* --- Single-direction findings ---------------------------------------------------- */

static void test_healthy(void **state) {
  (void)state;
  md_path *f = fwd(B4, FWD_CLEAN), *r = rev(REV_CLEAN);
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_HEALTHY);
  assert_int_equal(d.direction, MD_DIRECTION_NONE);
  assert_false(d.has_suspect);
  assert_int_equal(d.n_rate_limited, 0);
  assert_int_equal(d.n_advice, 0);
  assert_string_equal(
      d.summary,
      "Both directions between local and cvm are healthy. Forward (local -> cvm): No loss at the "
      "destination 198.18.4.2 (0 of 10 probes lost): the path is fine. Reverse (cvm -> local): No "
      "loss at the destination 198.18.1.1 (0 of 10 probes lost): the path is fine. The paths are "
      "asymmetric: 1 forward hop and 1 reverse hop have no counterpart on the other side, so a "
      "trace's replies do not come back the way its probes went.");
  free_all(f, r, &d);
}

static void test_transit_loss(void **state) {
  (void)state;
  md_path *f = fwd(B8, FWD8("0%", "0%", "0%", "0%", "30%", "40%", "30%", "30%"));
  md_path *r = mkpath_n("cvm", A4, "local", 10, REV8_CLEAN);
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_DEGRADED);
  assert_int_equal(d.direction, MD_DIRECTION_FORWARD);
  assert_true(d.has_suspect);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_LOSS);
  assert_int_equal(d.suspect.path, MD_DIR_FORWARD);
  assert_int_equal(d.suspect.from_ttl, 4);
  assert_string_equal(d.suspect.from_ip, "198.18.4.2");
  assert_int_equal(d.suspect.to_ttl, 5);
  assert_string_equal(d.suspect.to_ip, "198.18.5.2");
  assert_true(fabs(d.suspect.confidence - 0.9) < 1e-9);
  ASSERT_EVIDENCE(&d, "forward: the destination 198.18.9.2 lost 3 of 10 probes (30.0%)");
  ASSERT_EVIDENCE(&d, "forward: the loss begins at hop 5 (198.18.5.2), which lost 3 of 10 "
                      "(30.0%), and every answering hop from there to the destination shows it");
  ASSERT_EVIDENCE(&d, "forward: hop 4 (198.18.4.2) just before it lost 0 of 10 (0.0%)");
  ASSERT_ADVICE(&d, "Loss begins in transit at hop 5 (198.18.5.2)");
  ASSERT_SUMMARY(&d, "A problem was found between local and cvm on the forward path (local -> "
                     "cvm).");
  ASSERT_SUMMARY(&d, "Suspect: the link from hop 4 (198.18.4.2) to hop 5 (198.18.5.2) on the "
                     "forward path, where the loss begins (confidence 0.90).");
  assert_int_equal(md_reference_checks(NULL, NULL), 0);
  free_all(f, r, &d);
}

static void test_destination_firewall(void **state) {
  (void)state;
  md_path *f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":40%");
  md_path *r = rev(REV_CLEAN);
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_DEGRADED);
  assert_int_equal(d.direction, MD_DIRECTION_FORWARD);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_DESTINATION_HOST);
  assert_int_equal(d.suspect.from_ttl, 3);
  assert_string_equal(d.suspect.from_ip, "198.18.3.2");
  assert_int_equal(d.suspect.to_ttl, 4);
  assert_string_equal(d.suspect.to_ip, B4);
  assert_true(fabs(d.suspect.confidence - 0.85) < 1e-9);
  ASSERT_EVIDENCE(&d, "forward: no hop before the destination carries that loss");
  ASSERT_ADVICE(&d, "The destination 198.18.4.2 drops probes itself: check its firewall");
  ASSERT_SUMMARY(&d, "Suspect: the destination 198.18.4.2 itself, which drops probes");
  free_all(f, r, &d);
}

static void test_unreachable(void **state) {
  (void)state;
  md_path *f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:???:100% 4:???:100%");
  md_path *r = rev(REV_CLEAN);
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_UNREACHABLE);
  assert_int_equal(d.direction, MD_DIRECTION_FORWARD);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_UNREACHABLE);
  assert_int_equal(d.suspect.from_ttl, 2);
  assert_string_equal(d.suspect.from_ip, "198.18.2.2");
  assert_int_equal(d.suspect.to_ttl, 3);
  assert_null(d.suspect.to_ip); /* that hop never answered */
  assert_true(fabs(d.suspect.confidence - 0.8) < 1e-9);
  ASSERT_EVIDENCE(&d, "forward: the destination 198.18.4.2 answered none of 10 probes");
  ASSERT_EVIDENCE(&d, "forward: the last hop that answered is hop 2 (198.18.2.2), 10 of 10");
  ASSERT_SUMMARY(&d, "cvm cannot be reached from local.");
  ASSERT_SUMMARY(&d, "Suspect: beyond hop 2 (198.18.2.2) on the forward path, where responses "
                     "stop (confidence 0.80).");
  ASSERT_ADVICE(&d, "Responses stop after hop 2 (198.18.2.2) on the forward path");
  free_all(f, r, &d);

  /* the destination's own router answers, the destination does not */
  f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.4.1:0% 4:???:100%");
  r = rev(REV_CLEAN);
  run(f, r, true, &d);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_UNREACHABLE);
  assert_string_equal(d.suspect.to_ip, B4);
  ASSERT_ADVICE(&d, "198.18.4.2 does not answer although its own router does");
  free_all(f, r, &d);
}

static void test_latency(void **state) {
  (void)state;
  md_path *f =
      fwd(B4, "1:198.18.1.2:0%:1ms 2:198.18.2.2:0%:2ms 3:198.18.3.2:0%:42ms 4:" B4 ":0%:43ms");
  md_path *r = rev(REV_CLEAN);
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_DEGRADED);
  assert_int_equal(d.direction, MD_DIRECTION_FORWARD);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_LATENCY);
  assert_int_equal(d.suspect.from_ttl, 2);
  assert_int_equal(d.suspect.to_ttl, 3);
  assert_string_equal(d.suspect.to_ip, "198.18.3.2");
  assert_true(fabs(d.suspect.confidence - 0.5) < 1e-9);
  ASSERT_EVIDENCE(&d, "forward: the average RTT rises from 2.0 ms (hop 2 (198.18.2.2)) to at "
                      "least 42.0 ms at hop 3 (198.18.3.2)");
  ASSERT_EVIDENCE(&d, "the destination's average is 43.0 ms, stdev 0.0 ms");
  ASSERT_ADVICE(&d, "Latency rises at hop 3 (198.18.3.2) on the forward path and stays");
  free_all(f, r, &d);
}

/* --- Joint patterns ---------------------------------------------------------------- */

/* Loss on a's access link (either direction): the forward trace loses from
 * its first hop; the reverse trace sees only its destination, a, lose. */
static void test_end_link(void **state) {
  (void)state;
  md_path *f = fwd(B4, "1:198.18.1.2:30% 2:198.18.2.2:30% 3:198.18.3.2:30% 4:" B4 ":30%");
  md_path *r = rev("1:198.18.4.1:0% 2:198.18.6.1:0% 3:198.18.5.1:0% 4:" A4 ":30%");
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_DEGRADED);
  assert_int_equal(d.direction, MD_DIRECTION_BOTH);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_LOSS);
  assert_int_equal(d.suspect.path, MD_DIR_FORWARD);
  assert_int_equal(d.suspect.from_ttl, 0);
  assert_string_equal(d.suspect.from_ip, A4); /* the reverse trace's target */
  assert_int_equal(d.suspect.to_ttl, 1);
  assert_string_equal(d.suspect.to_ip, "198.18.1.2");
  assert_true(fabs(d.suspect.confidence - 0.45) < 1e-9);
  ASSERT_EVIDENCE(&d, "one fault on the link at local's end explains both");
  ASSERT_EVIDENCE(&d, "reverse: 30% loss at the destination 198.18.1.1");
  ASSERT_ADVICE(&d, "Measure one-way loss between the agents");
  ASSERT_ADVICE(&d, "Loss begins in the first three hops of the forward path: check the local "
                    "network and ISP of local; compare with a trace to a reference target "
                    "(--reference).");
  ASSERT_SUMMARY(&d, "on one link that both directions cross");
  ASSERT_SUMMARY(&d, "Suspect: the link from local (198.18.1.1) to hop 1 (198.18.1.2) on the "
                     "forward path, where the loss begins (confidence 0.45); the traces cannot "
                     "tell which direction of that link is at fault.");
  free_all(f, r, &d);

  /* the same at b's end, with b's address given */
  f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":30%");
  r = rev("1:198.18.4.1:30% 2:198.18.6.1:30% 3:198.18.5.1:30% 4:" A4 ":30%");
  md_alignment al = {0};
  assert_int_equal(md_align(f, r, &al), 0);
  md_diag_input in = {.forward = f,
                      .reverse = r,
                      .alignment = &al,
                      .reverse_expected = true,
                      .b_address = "203.0.113.7"};
  assert_int_equal(md_diagnose(&in, &d), 0);
  assert_int_equal(d.suspect.path, MD_DIR_REVERSE);
  assert_int_equal(d.suspect.from_ttl, 0);
  assert_string_equal(d.suspect.from_ip, "203.0.113.7");
  assert_string_equal(d.suspect.to_ip, "198.18.4.1");
  md_alignment_clear(&al);
  free_all(f, r, &d);
}

/* The linear lab traced both ways with loss on link 2 (r1 - r2): the
 * forward loss begins at r2 (198.18.2.2), the reverse at r1 (198.18.2.1),
 * the two ends of that link. */
static void test_shared_link(void **state) {
  (void)state;
  md_path *f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:30% 3:198.18.3.2:30% 4:" B4 ":30%");
  md_path *r = rev("1:198.18.4.1:0% 2:198.18.3.1:0% 3:198.18.2.1:30% 4:" A4 ":30%");
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.direction, MD_DIRECTION_BOTH);
  assert_int_equal(d.suspect.path, MD_DIR_FORWARD); /* equal loss: forward */
  assert_int_equal(d.suspect.from_ttl, 1);
  assert_int_equal(d.suspect.to_ttl, 2);
  assert_true(fabs(d.suspect.confidence - 0.45) < 1e-9);
  ASSERT_EVIDENCE(&d, "alignment: forward hop 2 (198.18.2.2) and reverse hop 3 (198.18.2.1) are "
                      "the two ends of one link (link_mate)");
  ASSERT_ADVICE(&d, "Measure one-way loss");
  free_all(f, r, &d);

  /* without the alignment the two findings stay independent */
  f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:30% 3:198.18.3.2:30% 4:" B4 ":30%");
  r = rev("1:198.18.4.1:0% 2:198.18.3.1:0% 3:198.18.2.1:40% 4:" A4 ":40%");
  md_diag_input in = {.forward = f, .reverse = r, .reverse_expected = true};
  assert_int_equal(md_diagnose(&in, &d), 0);
  assert_int_equal(d.direction, MD_DIRECTION_BOTH);
  assert_int_equal(d.suspect.path, MD_DIR_REVERSE); /* the higher loss */
  assert_true(fabs(d.suspect.confidence - 0.9) < 1e-9);
  ASSERT_SUMMARY(&d, "Problems were found between local and cvm in both directions.");
  ASSERT_EVIDENCE(&d, "forward: 30% loss at the destination 198.18.4.2");
  free_all(f, r, &d);
}

/* --- Both directions, severity, confidence ----------------------------------------- */

static void test_severity(void **state) {
  (void)state;
  /* unreachable beats loss */
  md_path *f = fwd(B4, "1:198.18.1.2:0% 2:???:100%");
  md_path *r = mkpath_n("cvm", A4, "local", 10, REV8_CLEAN);
  md_hop *h = md_path_hop(r, 8);
  for (int i = 0; i < 5; i++) { /* destination a loses 5 of 15 */
    md_stats_on_sent(&h->st);
    md_stats_on_timeout(&h->st);
  }
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_UNREACHABLE);
  assert_int_equal(d.direction, MD_DIRECTION_BOTH);
  assert_int_equal(d.suspect.kind, MD_SUSPECT_UNREACHABLE);
  assert_int_equal(d.suspect.path, MD_DIR_FORWARD);
  ASSERT_ADVICE(&d, "Responses stop after hop 1 (198.18.1.2)");
  ASSERT_ADVICE(&d, "The destination 198.18.1.1 drops probes itself");
  free_all(f, r, &d);
}

static void test_confidence(void **state) {
  (void)state;
  /* few lost probes, one sampling dip (0 of 10 against 20 %: P = 0.107), a
   * silent hop before, a partial run */
  md_path *f = fwd(B8, FWD8("0%", "0%", "0%", "100%", "30%", "0%", "30%", "20%"));
  md_path_hop(f, 4)->n_hosts = 0; /* silent: answers nothing */
  md_path_hop(f, 4)->st.recv = 0;
  f->complete = false;
  md_verdict_detail vd;
  assert_int_equal(md_verdict_analyse(f, &vd), 0);
  assert_int_equal(vd.first_loss_ttl, 5);
  assert_int_equal(vd.n_dips, 1);
  assert_int_equal(vd.n_silent_before, 1);
  md_path *r = mkpath_n("cvm", A4, "local", 10, REV8_CLEAN);
  md_diagnosis d;
  run(f, r, true, &d);
  /* 0.9 - 0.2 (2 lost) - 0.1 (dip) - 0.15 (silent before) - 0.2 (partial) */
  assert_true(fabs(d.suspect.confidence - 0.25) < 1e-9);
  ASSERT_EVIDENCE(&d, "forward: hop 6 (198.18.6.2) lost only 0 of 10 (0.0%): a sampling dip, "
                      "consistent with the destination's 20.0%");
  ASSERT_EVIDENCE(&d, "forward: 1 hop just before hop 5 (198.18.5.2) never answered");
  ASSERT_EVIDENCE(&d, "forward: only 2 probes lost: a small sample");
  ASSERT_EVIDENCE(&d, "forward: the run did not finish all its cycles");
  assert_int_equal(d.suspect.from_ttl, 3);
  free_all(f, r, &d);
}

static void test_rate_limited_both(void **state) {
  (void)state;
  md_path *f = fwd(B4, "1:198.18.1.2:0% 2:198.18.2.2:40% 3:198.18.3.2:0% 4:" B4 ":0%");
  md_path *r = rev("1:198.18.4.1:0% 2:198.18.6.1:0% 3:198.18.5.1:50% 4:" A4 ":10%");
  md_diagnosis d;
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_HEALTHY);
  assert_int_equal(d.n_rate_limited, 2);
  assert_int_equal(d.rate_limited[0].path, MD_DIR_FORWARD);
  assert_int_equal(d.rate_limited[0].ttl, 2);
  assert_string_equal(d.rate_limited[0].ip, "198.18.2.2");
  assert_int_equal(d.rate_limited[1].path, MD_DIR_REVERSE);
  assert_int_equal(d.rate_limited[1].ttl, 3);
  assert_string_equal(d.rate_limited[1].ip, "198.18.5.1");
  assert_int_equal(d.n_advice, 1);
  assert_string_equal(d.advice[0], "Loss shown only at forward hop 2 (198.18.2.2) and reverse hop "
                                   "3 (198.18.5.1) is ICMP rate limiting (or deprioritised ICMP) "
                                   "on those routers: ignore it.");
  free_all(f, r, &d);
}

/* --- Missing paths ----------------------------------------------------------------- */

static void test_incomplete(void **state) {
  (void)state;
  md_path *f = fwd(B8, FWD8("0%", "0%", "0%", "0%", "30%", "30%", "30%", "30%"));
  md_diagnosis d;
  run(f, NULL, true, &d);
  assert_int_equal(d.status, MD_STATUS_INCOMPLETE);
  assert_int_equal(d.direction, MD_DIRECTION_FORWARD);
  assert_true(d.has_suspect);
  assert_int_equal(d.suspect.from_ttl, 4);
  assert_string_equal(d.suspect.from_ip, "198.18.4.2");
  ASSERT_SUMMARY(&d, "This diagnosis is incomplete: the reverse trace (cvm -> local) is missing");
  ASSERT_ADVICE(&d, "Run again once cvm answers: the reverse trace is missing (see errors).");
  free_all(f, NULL, &d);

  md_path *r = rev(REV_CLEAN);
  run(NULL, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_INCOMPLETE);
  assert_false(d.has_suspect);
  ASSERT_SUMMARY(&d, "the forward trace (local -> cvm) is missing");
  free_all(NULL, r, &d);

  run(NULL, NULL, true, &d);
  assert_int_equal(d.status, MD_STATUS_INCOMPLETE);
  assert_string_equal(d.summary, "No trace between A and B came back: nothing to read.");
  free_all(NULL, NULL, &d);

  /* a path without one decided probe counts as missing */
  f = md_path_new("local", B4, "cvm", 1);
  md_path_hop(f, 1);
  r = rev(REV_CLEAN);
  run(f, r, true, &d);
  assert_int_equal(d.status, MD_STATUS_INCOMPLETE);
  free_all(f, r, &d);
}

static void test_b_no_agent(void **state) {
  (void)state;
  md_path *f = fwd("203.0.113.7", "1:198.18.1.2:0% 2:198.18.2.2:0% 3:203.0.113.7:0%");
  free(f->target_name);
  f->target_name = NULL;
  md_diagnosis d;
  run(f, NULL, false, &d);
  assert_int_equal(d.status, MD_STATUS_HEALTHY);
  ASSERT_SUMMARY(&d, "The path from local to 203.0.113.7 is healthy.");
  ASSERT_SUMMARY(&d, "203.0.113.7 is no agent, so the reverse path (the one replies take) was not "
                     "traced.");
  ASSERT_ADVICE(&d, "Install mtr-agent on 203.0.113.7 to trace the reverse path");
  free_all(f, NULL, &d);
}

/* --- The report and the reference check --------------------------------------------- */

static void test_report_analyse(void **state) {
  (void)state;
  md_report r;
  memset(&r, 0, sizeof r);
  char a_addr[] = A4, b_addr[] = B4;
  r.a.present = r.b.present = true;
  r.a.probe_address = a_addr;
  r.b.probe_address = b_addr;
  r.forward = fwd(B4, "1:198.18.1.2:20% 2:198.18.2.2:30% 3:198.18.3.2:30% 4:" B4 ":30%");
  r.reverse = rev("1:198.18.4.1:0% 2:198.18.6.1:60% 3:198.18.5.1:0% 4:" A4 ":0%");
  for (int round = 0; round < 2; round++) { /* a second run replaces the first */
    assert_int_equal(md_report_analyse(&r), 0);
    assert_true(r.forward_verdict.present);
    assert_int_equal(r.forward_verdict.segment, MD_SEG_LOCAL_ISP);
    assert_int_equal(r.forward_verdict.first_loss_ttl, 1);
    assert_true(r.reverse_verdict.present);
    assert_int_equal(r.reverse_verdict.n_rate_limited, 1);
    assert_int_equal(r.alignment.n_shared, 2);
    assert_true(r.alignment.asymmetric);
    assert_int_equal(r.diagnosis.status, MD_STATUS_DEGRADED);
    assert_int_equal(r.diagnosis.direction, MD_DIRECTION_FORWARD);
    assert_int_equal(r.diagnosis.suspect.from_ttl, 0);
    assert_string_equal(r.diagnosis.suspect.from_ip, A4);
    assert_int_equal(md_reference_checks(&r.forward_verdict, &r.reverse_verdict),
                     MD_REFERENCE_FROM_A);
  }
  md_verdict_clear(&r.forward_verdict);
  md_verdict_clear(&r.reverse_verdict);
  md_alignment_clear(&r.alignment);
  md_diagnosis_clear(&r.diagnosis);
  md_path_free(r.forward);
  md_path_free(r.reverse);

  /* B is no agent: no reverse, no alignment */
  memset(&r, 0, sizeof r);
  r.a.present = true;
  r.forward = fwd(B4, FWD_CLEAN);
  assert_int_equal(md_report_analyse(&r), 0);
  assert_false(r.reverse_verdict.present);
  assert_int_equal(r.alignment.n_shared, 0);
  assert_int_equal(r.diagnosis.status, MD_STATUS_HEALTHY);
  md_verdict_clear(&r.forward_verdict);
  md_diagnosis_clear(&r.diagnosis);
  md_path_free(r.forward);
  assert_int_equal(md_report_analyse(NULL), -EINVAL);
}

/* The verdicts given are quoted as they are. */
static void test_given_verdicts(void **state) {
  (void)state;
  md_path *f = fwd(B4, FWD_CLEAN), *r = rev(REV_CLEAN);
  char text[] = "Quoted.";
  md_path_verdict fv = {.present = true, .text = text};
  md_diag_input in = {.forward = f, .reverse = r, .forward_verdict = &fv, .reverse_expected = true};
  md_diagnosis d;
  assert_int_equal(md_diagnose(&in, &d), 0);
  ASSERT_SUMMARY(&d, "Forward (local -> cvm): Quoted. Reverse (cvm -> local): No loss");
  free_all(f, r, &d);
  assert_int_equal(md_diagnose(NULL, &d), -EINVAL);
  assert_int_equal(md_diagnose(&in, NULL), -EINVAL);
  md_diagnosis_clear(NULL);
}

static void test_reference_checks(void **state) {
  (void)state;
  md_path_verdict local = {.present = true, .segment = MD_SEG_LOCAL_ISP};
  md_path_verdict transit = {.present = true, .segment = MD_SEG_TRANSIT};
  md_path_verdict absent = {.segment = MD_SEG_LOCAL_ISP};
  assert_int_equal(md_reference_checks(&local, &transit), MD_REFERENCE_FROM_A);
  assert_int_equal(md_reference_checks(&transit, &local), MD_REFERENCE_FROM_B);
  assert_int_equal(md_reference_checks(&local, &local), MD_REFERENCE_FROM_A | MD_REFERENCE_FROM_B);
  assert_int_equal(md_reference_checks(&absent, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_healthy),
      cmocka_unit_test(test_transit_loss),
      cmocka_unit_test(test_destination_firewall),
      cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_latency),
      cmocka_unit_test(test_end_link),
      cmocka_unit_test(test_shared_link),
      cmocka_unit_test(test_severity),
      cmocka_unit_test(test_confidence),
      cmocka_unit_test(test_rate_limited_both),
      cmocka_unit_test(test_incomplete),
      cmocka_unit_test(test_b_no_agent),
      cmocka_unit_test(test_report_analyse),
      cmocka_unit_test(test_given_verdicts),
      cmocka_unit_test(test_reference_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
