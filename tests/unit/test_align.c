/* Unit tests for align: pairing the forward and reverse paths' hops.
 * The lab's asymmetric topology (tests/lab/README.md "asym": a -1- r1 -2-
 * r2f -3- r3 -4- b, r1 -5- r2r -6- r3; a->b over r2f, b->a over r2r) in
 * IPv4 and IPv6, the linear lab traced both ways (symmetric), routers
 * answering from one address, ECMP responders, silent hops, the agents
 * never paired, and a router on both paths that no rule can match.
 *
 * Which lab routers the rules match (docs/verdict.md "Alignment"):
 *   r1  forward TTL 1 answers 198.18.1.2 (link 1, from a), reverse TTL 3
 *       answers 198.18.5.1 (link 5, from r2r): different links, so neither
 *       same_ip nor link_mate; 198.18.1.2 is the link mate of a's own
 *       198.18.1.1 (the reverse destination, never paired): the gateway
 *       rule matches it to the reverse hop before a, TTL 3.
 *   r3  forward TTL 3 answers 198.18.3.2 (link 3), reverse TTL 1 answers
 *       198.18.4.1 (link 4): the gateway rule again, through b's 198.18.4.2.
 *   r2f forward TTL 2 only, r2r reverse TTL 2 only: correctly one-sided.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "path_fixture.h"

#define A4 "198.18.1.1"
#define B4 "198.18.4.2"
#define A6 "2001:db8:1::1"
#define B6 "2001:db8:4::2"

/* An expected alignment: the pairs as "F-R-how" words, the one-sided TTLs. */
static void expect(const md_alignment *al, const char *pairs, const char *fwd_only,
                   const char *rev_only, bool asymmetric) {
  char got[512] = "", tmp[64];
  for (int i = 0; i < al->n_shared; i++) {
    snprintf(tmp, sizeof tmp, "%s%d-%d-%s", i ? " " : "", al->shared[i].forward_ttl,
             al->shared[i].reverse_ttl, al->shared[i].how);
    strcat(got, tmp);
  }
  if (strcmp(got, pairs) != 0)
    fail_msg("pairs: got \"%s\", expected \"%s\"", got, pairs);
  got[0] = '\0';
  for (int i = 0; i < al->n_forward_only; i++) {
    snprintf(tmp, sizeof tmp, "%s%d", i ? " " : "", al->forward_only_ttls[i]);
    strcat(got, tmp);
  }
  if (strcmp(got, fwd_only) != 0)
    fail_msg("forward only: got \"%s\", expected \"%s\"", got, fwd_only);
  got[0] = '\0';
  for (int i = 0; i < al->n_reverse_only; i++) {
    snprintf(tmp, sizeof tmp, "%s%d", i ? " " : "", al->reverse_only_ttls[i]);
    strcat(got, tmp);
  }
  if (strcmp(got, rev_only) != 0)
    fail_msg("reverse only: got \"%s\", expected \"%s\"", got, rev_only);
  assert_int_equal(al->asymmetric, asymmetric);
}

/* Align two specs (forward to `b`, reverse to `a`) and check. */
static void check(const char *a, const char *b, const char *fwd, const char *rev, const char *pairs,
                  const char *fwd_only, const char *rev_only, bool asym) {
  md_path *f = mkpath(b, 10, fwd), *r = mkpath(a, 10, rev);
  md_alignment al = {0};
  assert_int_equal(md_align(f, r, &al), 0);
  expect(&al, pairs, fwd_only, rev_only, asym);
  md_alignment_clear(&al);
  assert_int_equal(al.n_shared, 0);
  assert_null(al.shared);
  md_path_free(f);
  md_path_free(r);
}

/* --- Link mates ------------------------------------------------------------------ */

static bool mates(const char *x, const char *y) {
  md_addr a, b;
  assert_int_equal(md_addr_parse(x, &a), 0);
  assert_int_equal(md_addr_parse(y, &b), 0);
  bool m = md_align_link_mates(&a, &b);
  assert_int_equal(m, md_align_link_mates(&b, &a)); /* symmetric */
  return m;
}

static void test_link_mates(void **state) {
  (void)state;
  assert_true(mates("198.18.1.1", "198.18.1.2"));  /* /30: .1 and .2 */
  assert_true(mates("198.18.1.0", "198.18.1.1"));  /* /31 */
  assert_true(mates("198.18.1.2", "198.18.1.3"));  /* /31 */
  assert_true(mates("198.18.1.5", "198.18.1.6"));  /* /30 198.18.1.4 */
  assert_false(mates("198.18.1.1", "198.18.1.1")); /* same address */
  assert_false(mates("198.18.1.1", "198.18.1.3")); /* /30 network+broadcast pattern */
  assert_false(mates("198.18.1.0", "198.18.1.3"));
  assert_false(mates("198.18.1.0", "198.18.1.2"));
  assert_false(mates("198.18.1.3", "198.18.1.4")); /* adjacent but two subnets */
  assert_false(mates("198.18.1.2", "198.18.2.1")); /* two links of one router */
  assert_false(mates("198.18.1.1", "2001:db8:1::2"));
  assert_true(mates("2001:db8:1::1", "2001:db8:1::2")); /* /126 */
  assert_true(mates("2001:db8:1::2", "2001:db8:1::3")); /* /127 */
  assert_true(mates("fe80::", "fe80::1"));              /* /127 */
  assert_false(mates("2001:db8:1::1", "2001:db8:1::5"));
  assert_false(mates("2001:db8:1::1", "2001:db8:2::2"));
  assert_false(md_align_link_mates(NULL, NULL));
}

/* --- The lab's paths ------------------------------------------------------------- */

/* asym: a->b over r2f, b->a over r2r. Only the gateway rule finds r1 and r3. */
static void test_lab_asymmetric_v4(void **state) {
  (void)state;
  check(A4, B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:198.18.6.1:0% 3:198.18.5.1:0% 4:" A4 ":0%", "1-3-gateway 3-1-gateway",
        "2", "2", true);
}

static void test_lab_asymmetric_v6(void **state) {
  (void)state;
  check(A6, B6, "1:2001:db8:1::2:0% 2:2001:db8:2::2:0% 3:2001:db8:3::2:0% 4:" B6 ":0%",
        "1:2001:db8:4::1:0% 2:2001:db8:6::1:0% 3:2001:db8:5::1:0% 4:" A6 ":0%",
        "1-3-gateway 3-1-gateway", "2", "2", true);
}

/* linear, traced both ways: every inner link is crossed both ways, so the
 * two ends of links 2 and 3 pair as link mates (each trace sees the router
 * at the far end of the link); r1 and r3 pair through the gateway rule. */
static void test_lab_symmetric_v4(void **state) {
  (void)state;
  check(A4, B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:198.18.3.1:0% 3:198.18.2.1:0% 4:" A4 ":0%",
        "1-3-gateway 2-3-link_mate 3-1-gateway 3-2-link_mate", "", "", false);
}

static void test_lab_symmetric_v6(void **state) {
  (void)state;
  check(A6, B6, "1:2001:db8:1::2:0% 2:2001:db8:2::2:0% 3:2001:db8:3::2:0% 4:" B6 ":0%",
        "1:2001:db8:4::1:0% 2:2001:db8:3::1:0% 3:2001:db8:2::1:0% 4:" A6 ":0%",
        "1-3-gateway 2-3-link_mate 3-1-gateway 3-2-link_mate", "", "", false);
}

/* Routers that answer from one address (a loopback) pair by same_ip, at
 * mirrored TTLs. Loopbacks from one block are neighbours (.1 and .2 look
 * like the two ends of a /30): a hop paired by same_ip keeps only that. */
static void test_same_ip(void **state) {
  (void)state;
  check(A4, B4, "1:198.18.100.1:0% 2:198.18.100.2:0% 3:198.18.100.3:0% 4:" B4 ":0%",
        "1:198.18.100.3:0% 2:198.18.100.2:0% 3:198.18.100.1:0% 4:" A4 ":0%",
        "1-3-same_ip 2-2-same_ip 3-1-same_ip", "", "", false);
  /* same_ip beats link_mate for one pair of hops (ECMP holding both) */
  check(A4, B4, "1:198.18.100.1:0% 2:198.18.7.1|198.18.100.2:0% 3:" B4 ":0%",
        "1:198.18.7.2|198.18.100.2:0% 2:198.18.100.1:0% 3:" A4 ":0%", "1-2-same_ip 2-1-same_ip", "",
        "", false);
}

/* Every ECMP responder counts: forward TTL 2 answered by r2f and r2r; r2r's
 * 198.18.5.2 is the link mate of r1's 198.18.5.1 at reverse TTL 3. */
static void test_ecmp_hosts(void **state) {
  (void)state;
  check(A4, B4, "1:198.18.1.2:0% 2:198.18.2.2|198.18.5.2:0% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:198.18.6.1:0% 3:198.18.5.1:0% 4:" A4 ":0%",
        "1-3-gateway 2-3-link_mate 3-1-gateway", "", "2", true);
}

/* Silent hops are unknown: in neither list. A gateway whose counterpart
 * (the hop before the other destination) is silent is unknown too. */
static void test_silent_hops(void **state) {
  (void)state;
  check(A4, B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:???:100% 3:198.18.5.1:0% 4:" A4 ":0%", "1-3-gateway 3-1-gateway", "2",
        "", true);
  check(A4, B4, "1:198.18.1.2:0% 2:???:100% 3:???:100% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:198.18.6.1:0% 3:???:100% 4:" A4 ":0%", "", "", "2", true);
  /* both sides silent in the middle, ends matched: symmetric as far as known */
  check(A4, B4, "1:198.18.1.2:0% 2:???:100% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:???:100% 3:198.18.2.1:0% 4:" A4 ":0%", "1-3-gateway 3-1-gateway", "", "",
        false);
}

/* The agents are never paired: forward's last hop (b, 198.18.4.2) is the
 * link mate of reverse TTL 1 (198.18.4.1) and the reverse's last hop (a)
 * the link mate of forward TTL 1, yet neither pair appears; an unreached
 * destination leaves the gateway on the other side unknown. */
static void test_agents_not_paired(void **state) {
  (void)state;
  md_path *f = mkpath(B4, 10, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%");
  md_path *r = mkpath(A4, 10, "1:198.18.4.1:0% 2:198.18.6.1:0% 3:198.18.5.1:0% 4:" A4 ":0%");
  md_alignment al = {0};
  assert_int_equal(md_align(f, r, &al), 0);
  for (int i = 0; i < al.n_shared; i++) {
    assert_int_not_equal(al.shared[i].forward_ttl, 4);
    assert_int_not_equal(al.shared[i].reverse_ttl, 4);
  }
  assert_non_null(md_alignment_find(&al, 1, 3));
  assert_null(md_alignment_find(&al, 1, 4));
  assert_null(md_alignment_find(NULL, 1, 3));
  md_alignment_clear(&al);
  md_path_free(f);
  md_path_free(r);

  /* the reverse did not reach a: forward TTL 1 (a's gateway) is unknown */
  check(A4, B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:198.18.6.1:0% 3:???:100%", "3-1-gateway", "2", "2", true);
}

/* A router on both paths that no rule can match: x is forward TTL 2
 * (entered from r1 over link 2, 198.18.2.2) and reverse TTL 3 (entered
 * from z over link 8, 198.18.8.2); neither address equals or neighbours
 * the other, and x is next to neither agent. The rules list it on both
 * sides, as one-sided: the alignment errs towards "asymmetric". */
static void test_router_rules_cannot_match(void **state) {
  (void)state;
  check(A4, B4, "1:198.18.1.2:0% 2:198.18.2.2:0% 3:198.18.3.2:0% 4:" B4 ":0%",
        "1:198.18.4.1:0% 2:198.18.7.2:0% 3:198.18.8.2:0% 4:198.18.9.2:0% 5:198.18.10.2:0% "
        "6:" A4 ":0%",
        "1-5-gateway 3-1-gateway", "2", "2 3 4", true);
}

static void test_errors(void **state) {
  (void)state;
  md_alignment al = {0};
  md_path *f = mkpath(B4, 10, "1:" B4 ":0%");
  assert_int_equal(md_align(NULL, f, &al), -EINVAL);
  assert_int_equal(md_align(f, NULL, &al), -EINVAL);
  assert_int_equal(md_align(f, f, NULL), -EINVAL);
  /* one hop each way, nothing between the agents */
  md_path *r = mkpath(A4, 10, "1:" A4 ":0%");
  assert_int_equal(md_align(f, r, &al), 0);
  expect(&al, "", "", "", false);
  md_alignment_clear(&al);
  /* empty paths */
  md_path *e1 = md_path_new("a", B4, "b", 1), *e2 = md_path_new("b", A4, "a", 1);
  assert_int_equal(md_align(e1, e2, &al), 0);
  expect(&al, "", "", "", false);
  md_alignment_clear(&al);
  md_alignment_clear(NULL);
  md_path_free(e1);
  md_path_free(e2);
  md_path_free(f);
  md_path_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_link_mates),
      cmocka_unit_test(test_lab_asymmetric_v4),
      cmocka_unit_test(test_lab_asymmetric_v6),
      cmocka_unit_test(test_lab_symmetric_v4),
      cmocka_unit_test(test_lab_symmetric_v6),
      cmocka_unit_test(test_same_ip),
      cmocka_unit_test(test_ecmp_hosts),
      cmocka_unit_test(test_silent_hops),
      cmocka_unit_test(test_agents_not_paired),
      cmocka_unit_test(test_router_rules_cannot_match),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
