/* Unit tests for the agent's policy (agent/policy.c): every rule accepts
 * at its limit and refuses past it, with the Error code and a message
 * naming the rule and its value; and the RunRequest -> md_trace_opts
 * mapping fills mtr's defaults. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "session.h"

#define AGENT_BASE                                                                                 \
  "name: a\n"                                                                                      \
  "listen: [\"127.0.0.1:7447\"]\n"                                                                 \
  "tls: { cert: /x/a.crt, key: /x/a.key, ca: /x/ca.crt, allowed_controllers: [ops] }\n"

typedef struct fixture {
  md_agent_config cfg;
  md_policy pol;
} fixture;

/* A policy from the YAML of the `policy:` mapping (flow style). */
static fixture *make(const char *policy_yaml) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  char text[2048], err[MD_CONFIG_ERRLEN];
  snprintf(text, sizeof text, AGENT_BASE "policy: %s\n", policy_yaml);
  int rc =
      md_agent_config_parse_string(text, strlen(text), "/t/agent.yaml", &f->cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("config: %s", err);
  md_policy_init(&f->pol, &f->cfg);
  return f;
}

static void destroy(fixture *f) {
  md_policy_free(&f->pol);
  md_agent_config_free(&f->cfg);
  free(f);
}

/* Options for a target with mtr's defaults. */
static md_trace_opts opts_for(const char *target) {
  md_trace_opts o;
  md_trace_opts_default(&o);
  if (md_addr_parse(target, &o.target) != 0)
    fail_msg("bad test address %s", target);
  return o;
}

static void accept_ok(fixture *f, const md_trace_opts *o) {
  char err[512] = "";
  int rc = md_policy_check(&f->pol, o, err, sizeof err);
  if (rc != 0)
    fail_msg("refused (%d): %s", rc, err);
}

/* Refused with this code, and the message holds every string of wants (NULL-terminated). */
static void refused_(fixture *f, const md_trace_opts *o, int want_rc, const char *const *wants) {
  char err[512] = "";
  int rc = md_policy_check(&f->pol, o, err, sizeof err);
  if (rc != want_rc)
    fail_msg("want %d, got %d (%s)", want_rc, rc, err);
  for (; *wants; wants++)
    if (!strstr(err, *wants))
      fail_msg("message \"%s\" lacks \"%s\"", err, *wants);
}

#define refused(F, O, RC, ...) refused_(F, O, RC, (const char *const[]){__VA_ARGS__, NULL})

/* ---- targets */

static void test_allow_targets(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.0/24\", \"2001:db8::/32\", \"203.0.113.7\"] }");
  md_trace_opts o = opts_for("198.51.100.10");
  accept_ok(f, &o);
  o = opts_for("198.51.100.255"); /* not a subnet of this host: an ordinary address */
  accept_ok(f, &o);
  o = opts_for("2001:db8:4::2");
  accept_ok(f, &o);
  o = opts_for("203.0.113.7");
  accept_ok(f, &o);
  o = opts_for("203.0.113.8");
  refused(f, &o, MD_POLICY_DENIED, "target 203.0.113.8", "policy.allow_targets",
          "198.51.100.0/24, 2001:db8::/32, 203.0.113.7/32");
  o = opts_for("2001:db9::1");
  refused(f, &o, MD_POLICY_DENIED, "2001:db9::1 is not in policy.allow_targets");
  assert_int_equal(md_policy_error_code(MD_POLICY_DENIED),
                   MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED);
  destroy(f);
}

static void test_allow_targets_quote_is_bounded(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\", \"192.0.2.4\","
                    " \"192.0.2.5\", \"192.0.2.6\"] }");
  md_trace_opts o = opts_for("192.0.2.9");
  refused(f, &o, MD_POLICY_DENIED, "192.0.2.4/32 and 2 more");
  o = opts_for("192.0.2.6");
  accept_ok(f, &o);
  destroy(f);
}

static void test_deny_by_default(void **state) {
  (void)state;
  fixture *f = make("{ max_cycles: 10 }");
  md_trace_opts o = opts_for("198.51.100.10");
  refused(f, &o, MD_POLICY_DENIED, "policy.allow_targets", "empty");
  destroy(f);
}

static void test_never_special_addresses(void **state) {
  (void)state;
  /* even a policy that allows everything never probes these */
  fixture *f = make("{ allow_targets: [\"0.0.0.0/0\", \"::/0\"] }");
  md_trace_opts o = opts_for("0.0.0.0");
  refused(f, &o, MD_POLICY_DENIED, "0.0.0.0 is the unspecified address");
  o = opts_for("::");
  refused(f, &o, MD_POLICY_DENIED, ":: is the unspecified address");
  o = opts_for("224.0.0.1");
  refused(f, &o, MD_POLICY_DENIED, "224.0.0.1 is a multicast address");
  o = opts_for("239.255.255.250");
  refused(f, &o, MD_POLICY_DENIED, "multicast");
  o = opts_for("ff02::1");
  refused(f, &o, MD_POLICY_DENIED, "ff02::1 is a multicast address");
  o = opts_for("255.255.255.255");
  refused(f, &o, MD_POLICY_DENIED, "255.255.255.255 is a broadcast address");
  o = opts_for("::ffff:198.51.100.10");
  refused(f, &o, MD_POLICY_DENIED, "IPv4-mapped", "ask for 198.51.100.10");
  o = opts_for("198.51.100.10");
  accept_ok(f, &o);
  o = opts_for("2001:db8::1");
  accept_ok(f, &o);
  destroy(f);
}

static void test_own_addresses(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.18.0.0/15\", \"2001:db8::/32\", \"127.0.0.1\"] }");
  md_policy_own own[3];
  memset(own, 0, sizeof own);
  md_addr_parse("198.18.1.1", &own[0].addr);
  own[0].prefix = 24;
  md_addr_parse("2001:db8:1::1", &own[1].addr);
  own[1].prefix = 64;
  md_addr_parse("198.18.9.1", &own[2].addr);
  own[2].prefix = 31; /* point-to-point: no broadcast address */
  assert_int_equal(md_policy_set_own(&f->pol, own, 3), 0);
  md_trace_opts o = opts_for("198.18.1.1");
  refused(f, &o, MD_POLICY_DENIED, "198.18.1.1 is an address of this agent's own host");
  o = opts_for("2001:db8:1::1");
  refused(f, &o, MD_POLICY_DENIED, "2001:db8:1::1 is an address of this agent's own host");
  o = opts_for("198.18.1.255");
  refused(f, &o, MD_POLICY_DENIED, "198.18.1.255 is the broadcast address", "subnet 198.18.1.0/24");
  o = opts_for("198.18.1.2"); /* a neighbour on that subnet */
  accept_ok(f, &o);
  o = opts_for("198.18.9.0"); /* the other end of a /31 */
  accept_ok(f, &o);
  o = opts_for("2001:db8:1::2");
  accept_ok(f, &o);
  o = opts_for("127.0.0.1"); /* loopback is not counted as own: allowed when listed */
  accept_ok(f, &o);
  destroy(f);
}

static void test_load_own_loopback(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"127.0.0.0/8\", \"::1\"] }");
  assert_int_equal(md_policy_load_own(&f->pol), 0);
  md_addr lo4;
  md_addr_parse("127.0.0.1", &lo4);
  bool seen = false;
  for (size_t i = 0; i < f->pol.n_own; i++)
    if (md_addr_equal(&f->pol.own[i].addr, &lo4)) {
      assert_true(f->pol.own[i].loopback);
      seen = true;
    }
  assert_true(seen);
  /* loopback is no "own address" target: allowed when listed */
  md_trace_opts o = opts_for("127.0.0.1");
  accept_ok(f, &o);
  o = opts_for("::1");
  accept_ok(f, &o);
  /* and a valid source */
  o = opts_for("127.0.0.1");
  md_addr_parse("127.0.0.1", &o.source);
  accept_ok(f, &o);
  destroy(f);
}

static void test_source_must_be_own(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.0/24\"] }");
  md_policy_own own[2];
  memset(own, 0, sizeof own);
  md_addr_parse("198.18.1.1", &own[0].addr);
  own[0].prefix = 30;
  md_addr_parse("127.0.0.1", &own[1].addr);
  own[1].prefix = 8;
  own[1].loopback = true;
  assert_int_equal(md_policy_set_own(&f->pol, own, 2), 0);
  md_trace_opts o = opts_for("198.51.100.10");
  accept_ok(f, &o); /* no source: routing decides */
  md_addr_parse("198.18.1.1", &o.source);
  accept_ok(f, &o);
  md_addr_parse("198.51.100.99", &o.source); /* someone else's address: spoofing */
  refused(f, &o, MD_POLICY_DENIED, "source 198.51.100.99 is not an address of this host");
  destroy(f);
}

/* ---- options */

static void test_max_cycles(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], max_cycles: 50 }");
  md_trace_opts o = opts_for("198.51.100.10");
  o.cycles = 50;
  accept_ok(f, &o);
  o.cycles = 51;
  refused(f, &o, MD_POLICY_DENIED, "cycles 51 is over policy.max_cycles 50");
  destroy(f);
}

static void test_min_interval(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], min_interval: 0.1 }");
  md_trace_opts o = opts_for("198.51.100.10");
  o.interval_s = 100 / 1000.0; /* as from interval_ms 100 */
  o.max_ttl = 5;
  accept_ok(f, &o);
  o.interval_s = 0.09;
  refused(f, &o, MD_POLICY_DENIED, "interval 0.09 s is under policy.min_interval 0.1 s");
  destroy(f);
}

static void test_max_psize(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], max_psize: 1500 }");
  md_trace_opts o = opts_for("198.51.100.10");
  o.psize = 1500;
  accept_ok(f, &o);
  o.psize = 1501;
  refused(f, &o, MD_POLICY_DENIED, "psize 1501 is over policy.max_psize 1500");
  destroy(f);
}

static void test_max_ttl(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], max_ttl: 20 }");
  md_trace_opts o = opts_for("198.51.100.10");
  refused(f, &o, MD_POLICY_DENIED, "max_ttl 30 is over policy.max_ttl 20"); /* default 30 */
  o.max_ttl = 20;
  accept_ok(f, &o);
  destroy(f);
}

/* ---- load over all runs */

static void test_max_concurrent_runs(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], max_concurrent_runs: 2, "
                    "max_probes_per_second: 1000 }");
  md_trace_opts o = opts_for("198.51.100.10");
  accept_ok(f, &o);
  md_policy_take(&f->pol, &o);
  accept_ok(f, &o);
  md_policy_take(&f->pol, &o);
  refused(f, &o, MD_POLICY_LIMIT, "policy.max_concurrent_runs 2 reached", "2 runs are active");
  assert_int_equal(md_policy_error_code(MD_POLICY_LIMIT),
                   MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED);
  md_policy_release(&f->pol, &o);
  accept_ok(f, &o);
  md_policy_release(&f->pol, &o);
  assert_int_equal(f->pol.runs, 0);
  assert_true(f->pol.pps == 0);
  destroy(f);
}

static void test_max_probes_per_second(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], max_probes_per_second: 100, "
                    "min_interval: 0.01 }");
  md_trace_opts o = opts_for("198.51.100.10");
  /* 30 TTLs every second: 30/s */
  assert_true(md_policy_run_pps(&o) == 30.0);
  o.first_ttl = 3;
  o.max_ttl = 12;
  o.interval_s = 0.25;
  assert_true(md_policy_run_pps(&o) == 40.0);
  md_trace_opts_default(&o);
  md_addr_parse("198.51.100.10", &o.target);
  /* one run alone: 30 TTLs every 0.25 s = 120/s */
  o.interval_s = 0.25;
  refused(f, &o, MD_POLICY_LIMIT, "~120 probes/s", "policy.max_probes_per_second 100");
  o.interval_s = 0.3; /* exactly 100/s: at the limit */
  accept_ok(f, &o);
  /* several runs: 3 x 30/s fit, the fourth does not */
  md_trace_opts_default(&o);
  md_addr_parse("198.51.100.10", &o.target);
  for (int i = 0; i < 3; i++) {
    accept_ok(f, &o);
    md_policy_take(&f->pol, &o);
  }
  refused(f, &o, MD_POLICY_LIMIT, "~30 probes/s", "3 active runs ~90",
          "policy.max_probes_per_second 100");
  o.max_ttl = 10; /* 10/s still fits */
  accept_ok(f, &o);
  md_trace_opts_default(&o);
  md_addr_parse("198.51.100.10", &o.target);
  md_policy_release(&f->pol, &o);
  accept_ok(f, &o);
  destroy(f);
}

/* Target rules come first: a refused target is named even when limits are also hit. */
static void test_order_of_rules(void **state) {
  (void)state;
  fixture *f = make("{ allow_targets: [\"198.51.100.10\"], max_cycles: 5 }");
  md_trace_opts o = opts_for("192.0.2.1");
  o.cycles = 100;
  refused(f, &o, MD_POLICY_DENIED, "not in policy.allow_targets");
  destroy(f);
}

/* ---- RunRequest mapping */

static void test_opts_from_request(void **state) {
  (void)state;
  Mtrdiag__V1__RunRequest r = MTRDIAG__V1__RUN_REQUEST__INIT;
  md_trace_opts o;
  char err[256];
  r.run_id = "r1";
  r.target = "198.51.100.10";
  assert_int_equal(md_run_opts_from_request(&r, "cvm", &o, err, sizeof err), 0);
  assert_int_equal(o.cycles, 10);
  assert_true(o.interval_s == 1.0);
  assert_int_equal(o.psize, 64);
  assert_int_equal(o.first_ttl, 1);
  assert_int_equal(o.max_ttl, 30);
  assert_int_equal(o.max_unknown, 5);
  assert_true(o.grace_s == 5.0);
  assert_int_equal(o.proto, MD_PROTO_ICMP);
  assert_null(o.target_name);
  assert_string_equal(o.source_name, "cvm");

  r.target_name = "b";
  r.protocol = MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP;
  r.cycles = 3;
  r.interval_ms = 250;
  r.psize = 100;
  r.first_ttl = 2;
  r.max_ttl = 9;
  r.max_unknown = 3;
  r.tos = 16;
  r.port = 53;
  r.local_port = 40000;
  r.gracetime_ms = 1500;
  r.no_dns = 1;
  r.classic = 1;
  r.source = "198.51.100.1";
  assert_int_equal(md_run_opts_from_request(&r, "cvm", &o, err, sizeof err), 0);
  assert_string_equal(o.target_name, "b");
  assert_int_equal(o.proto, MD_PROTO_UDP);
  assert_int_equal(o.cycles, 3);
  assert_true(o.interval_s == 0.25);
  assert_int_equal(o.psize, 100);
  assert_int_equal(o.first_ttl, 2);
  assert_int_equal(o.max_ttl, 9);
  assert_int_equal(o.max_unknown, 3);
  assert_int_equal(o.tos, 16);
  assert_int_equal(o.port, 53);
  assert_int_equal(o.local_port, 40000);
  assert_true(o.grace_s == 1.5);
  assert_true(o.no_dns && o.classic);
  assert_int_equal(md_addr_family(&o.source), AF_INET);

  /* what the engine cannot do is a BAD_REQUEST, named */
  r.gracetime_ms = 120000;
  assert_int_equal(md_run_opts_from_request(&r, "cvm", &o, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "gracetime"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allow_targets),
      cmocka_unit_test(test_allow_targets_quote_is_bounded),
      cmocka_unit_test(test_deny_by_default),
      cmocka_unit_test(test_never_special_addresses),
      cmocka_unit_test(test_own_addresses),
      cmocka_unit_test(test_load_own_loopback),
      cmocka_unit_test(test_source_must_be_own),
      cmocka_unit_test(test_max_cycles),
      cmocka_unit_test(test_min_interval),
      cmocka_unit_test(test_max_psize),
      cmocka_unit_test(test_max_ttl),
      cmocka_unit_test(test_max_concurrent_runs),
      cmocka_unit_test(test_max_probes_per_second),
      cmocka_unit_test(test_order_of_rules),
      cmocka_unit_test(test_opts_from_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
