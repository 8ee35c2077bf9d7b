/* Unit tests for the report model and its JSON (controller/md_report.c,
 * controller/report_json.c): every contract field of CONTRACT.md "The
 * report" present with its type, the null cases (no reverse path, no
 * one-way stream, no suspect), round trips (model -> JSON -> model -> JSON
 * identical; the hand-written fixtures read back to the same JSON), clean
 * numbers (3 decimals, no binary noise), and bad input: clear errors naming
 * the field, never a crash (every key removed, every value replaced). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_report.h"
#include "report_json.h"

#define FIXTURE(name) MD_TEST_DATA "/report/" name

/* --- Building a report ------------------------------------------------------------ */

static char *dup(const char *s) {
  char *d = strdup(s);
  assert_non_null(d);
  return d;
}

/* A reply at a TTL from ip after us microseconds. */
static void reply(md_path *p, int ttl, const char *ip, double us) {
  md_hop *h = md_path_hop(p, ttl);
  assert_non_null(h);
  md_stats_on_sent(&h->st);
  md_stats_on_reply(&h->st, us);
  md_addr a;
  assert_int_equal(md_addr_parse(ip, &a), 0);
  assert_non_null(md_hop_add_host(h, &a, NULL, 0));
}

/* A probe at a TTL that never came back. */
static void lost(md_path *p, int ttl) {
  md_hop *h = md_path_hop(p, ttl);
  assert_non_null(h);
  md_stats_on_sent(&h->st);
  md_stats_on_timeout(&h->st);
}

/* A path over ips[0..n) with loss from TTL loss_from (0: none) and a
 * silent hop at silent (0: none). */
static md_path *make_path(const char *src, const char *tgt, const char *name, const char **ips,
                          int n, int loss_from, int silent) {
  md_path *p = md_path_new(src, tgt, name, 1);
  assert_non_null(p);
  p->started_at_ns = 1795918200123000000LL;
  p->finished_at_ns = 1795918221456000000LL;
  p->complete = true;
  p->reached = true;
  for (int c = 0; c < 10; c++)
    for (int t = 1; t <= n; t++) {
      if (t == silent || (loss_from && t >= loss_from && c % 4 == 0))
        lost(p, t);
      else
        reply(p, t, ips[t - 1], 1000.0 * t + 50.0 * c + 0.3333);
    }
  md_hop *h = md_path_hop(p, 1);
  assert_int_equal(md_host_set_hostname(&h->hosts[0], "r1.lab.test"), 0);
  return p;
}

/* A full two-way report with a suspect, like a real degraded run. */
static md_report *make_report(void) {
  static const char *fips[] = {"198.18.1.2", "198.18.2.2", "198.18.3.2", "198.18.4.2"};
  static const char *rips[] = {"198.18.4.1", "198.18.6.1", "198.18.5.1", "198.18.1.1"};
  md_report *r = md_report_new();
  assert_non_null(r);
  r->started_at_ns = 1795918200100000000LL;
  r->finished_at_ns = 1795918231900000000LL;
  md_report_new_id(r);
  r->ran_by = dup("ops");
  snprintf(r->options.protocol, sizeof r->options.protocol, "icmp");
  r->options.cycles = 10;
  r->options.interval_ms = 1000;
  r->options.psize = 64;
  r->options.first_ttl = 1;
  r->options.max_ttl = 30;
  r->a = (md_report_agent){
      true,         dup("local"), dup("198.18.1.1:7447"), dup("198.18.1.1"), dup("local.lab.test"),
      dup("0.1.0"), 0.0};
  r->b = (md_report_agent){
      true, dup("cvm"), dup("198.18.4.2:7447"), dup("198.18.4.2"), NULL, dup("0.1.0"), -0.42};
  r->has_skew = true;
  r->start_skew_ms = 1.7000000000000002;
  r->forward = make_path("local", "198.18.4.2", "cvm", fips, 4, 0, 0);
  r->reverse = make_path("cvm", "198.18.1.1", "local", rips, 4, 2, 0);
  r->forward_verdict.present = true;
  r->forward_verdict.segment = MD_SEG_NONE;
  r->forward_verdict.text = dup("no loss");
  r->reverse_verdict.present = true;
  r->reverse_verdict.destination_loss_pct = 30.000000000000004;
  r->reverse_verdict.first_loss_ttl = 2;
  r->reverse_verdict.first_loss_ip = dup("198.18.6.1");
  r->reverse_verdict.segment = MD_SEG_TRANSIT;
  r->reverse_verdict.n_rate_limited = 1;
  r->reverse_verdict.rate_limited_ttls = calloc(1, sizeof(int));
  r->reverse_verdict.rate_limited_ttls[0] = 3;
  r->reverse_verdict.latency_jump_ttl = 2;
  r->reverse_verdict.text = dup("30% loss from TTL 2");
  r->alignment.asymmetric = true;
  r->alignment.n_shared = 2;
  r->alignment.shared = calloc(2, sizeof *r->alignment.shared);
  r->alignment.shared[0] = (md_align_pair){1, 3, "link_mate"};
  r->alignment.shared[1] = (md_align_pair){3, 1, "same_ip"};
  r->alignment.n_forward_only = 1;
  r->alignment.forward_only_ttls = calloc(1, sizeof(int));
  r->alignment.forward_only_ttls[0] = 2;
  r->alignment.n_reverse_only = 1;
  r->alignment.reverse_only_ttls = calloc(1, sizeof(int));
  r->alignment.reverse_only_ttls[0] = 2;
  r->has_oneway = true;
  r->oneway_forward = (md_oneway_dir){400, 400, 0.0, 6.1, 0.05};
  r->oneway_reverse = (md_oneway_dir){400, 300, 25.0, 21.3, 0.4};
  r->n_followup = 1;
  r->followup = calloc(1, sizeof *r->followup);
  r->followup[0] = (md_followup){dup("local"), dup("198.18.6.1"),
                                 "icmp",       50,
                                 37,           26.0,
                                 27.1,         dup("reply path avoids r3 -> r2r")};
  md_diagnosis *d = &r->diagnosis;
  d->status = MD_STATUS_DEGRADED;
  d->direction = MD_DIRECTION_REVERSE;
  d->has_suspect = true;
  d->suspect.kind = MD_SUSPECT_LOSS;
  d->suspect.path = MD_DIR_REVERSE;
  d->suspect.from_ip = dup("198.18.4.1");
  d->suspect.to_ip = dup("198.18.6.1");
  d->suspect.from_ttl = 1;
  d->suspect.to_ttl = 2;
  d->suspect.confidence = 1.0 / 3.0;
  d->suspect.n_evidence = 2;
  d->suspect.evidence = calloc(2, sizeof(char *));
  d->suspect.evidence[0] = dup("one-way: 25% loss cvm -> local");
  d->suspect.evidence[1] = dup("reverse trace: loss from TTL 2");
  d->n_rate_limited = 1;
  d->rate_limited = calloc(1, sizeof *d->rate_limited);
  d->rate_limited[0] = (md_rate_limited){MD_DIR_REVERSE, 3, dup("198.18.5.1")};
  d->summary = dup("Loss on the reverse path between r3 and r2r.");
  d->n_advice = 1;
  d->advice = calloc(1, sizeof(char *));
  d->advice[0] = dup("Ticket the owner of 198.18.6.1.");
  assert_int_equal(md_report_add_error(r, "cvm", "slow", "took %d s", 12), 0);
  assert_int_equal(md_report_add_error(r, NULL, "note", "controller says %s", "hi"), 0);
  return r;
}

/* --- Walking JSON by path --------------------------------------------------------- */

/* Type letters: s string, i integer, r real or integer (a number), b
 * boolean, o object, a array, n null; "s|n" means either. */
static bool type_ok(const json_t *v, const char *types) {
  for (const char *t = types; *t; t++) {
    switch (*t) {
    case 's':
      if (json_is_string(v))
        return true;
      break;
    case 'i':
      if (json_is_integer(v))
        return true;
      break;
    case 'r':
      if (json_is_number(v))
        return true;
      break;
    case 'b':
      if (json_is_boolean(v))
        return true;
      break;
    case 'o':
      if (json_is_object(v))
        return true;
      break;
    case 'a':
      if (json_is_array(v))
        return true;
      break;
    case 'n':
      if (json_is_null(v))
        return true;
      break;
    }
  }
  return false;
}

/* Check that the field at path ("a.b[].c": every element of array b) has
 * one of the types; arrays walked with [] must not be empty. */
static void check_path(const json_t *j, const char *path, const char *types) {
  const char *dot = strchr(path, '.');
  size_t n = dot ? (size_t)(dot - path) : strlen(path);
  char key[64];
  assert_true(n < sizeof key);
  memcpy(key, path, n);
  key[n] = '\0';
  bool each = n > 2 && strcmp(key + n - 2, "[]") == 0;
  if (each)
    key[n - 2] = '\0';
  const json_t *v = json_object_get(j, key);
  if (!v)
    fail_msg("missing field %s (at %s)", key, path);
  if (each) {
    if (!json_is_array(v) || json_array_size(v) == 0)
      fail_msg("%s: expected a non-empty array", key);
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
      if (dot)
        check_path(e, dot + 1, types);
      else if (!type_ok(e, types))
        fail_msg("%s[%zu]: wrong type (want %s)", key, i, types);
    }
    return;
  }
  if (dot) {
    if (!json_is_object(v))
      fail_msg("%s: expected an object on the way to %s", key, path);
    check_path(v, dot + 1, types);
    return;
  }
  if (!type_ok(v, types))
    fail_msg("%s: wrong type (want %s)", path, types);
}

/* The contract's fields, with the types a full two-way report has. */
static const struct {
  const char *path, *types;
} contract[] = {
    {"schema", "s"},
    {"id", "s"},
    {"started_at", "s"},
    {"finished_at", "s"},
    {"options.protocol", "s"},
    {"options.cycles", "i"},
    {"options.interval_ms", "i"},
    {"options.psize", "i"},
    {"options.max_ttl", "i"},
    {"agents.a.name", "s"},
    {"agents.a.address", "s"},
    {"agents.a.probe_address", "s"},
    {"agents.a.hostname", "s|n"},
    {"agents.a.version", "s"},
    {"agents.a.clock_offset_ms", "r"},
    {"agents.b.name", "s"},
    {"agents.b.address", "s"},
    {"agents.b.probe_address", "s"},
    {"agents.b.hostname", "sn"},
    {"agents.b.version", "s"},
    {"agents.b.clock_offset_ms", "r"},
    {"start_skew_ms", "r"},
    {"forward.source", "s"},
    {"forward.target", "s"},
    {"forward.target_name", "s"},
    {"forward.started_at", "s"},
    {"forward.finished_at", "s"},
    {"forward.complete", "b"},
    {"forward.reached", "b"},
    {"forward.hops[].ttl", "i"},
    {"forward.hops[].hosts[].ip", "s"},
    {"forward.hops[].hosts[].hostname", "sn"},
    {"forward.hops[].hosts[].count", "i"},
    {"forward.hops[].hosts[].mpls", "a"},
    {"forward.hops[].sent", "i"},
    {"forward.hops[].recv", "i"},
    {"forward.hops[].drop", "i"},
    {"forward.hops[].loss_pct", "r"},
    {"forward.hops[].last_ms", "r"},
    {"forward.hops[].avg_ms", "r"},
    {"forward.hops[].best_ms", "r"},
    {"forward.hops[].worst_ms", "r"},
    {"forward.hops[].stdev_ms", "r"},
    {"forward.hops[].gmean_ms", "r"},
    {"forward.hops[].jitter_ms", "r"},
    {"forward.hops[].javg_ms", "r"},
    {"forward.hops[].jmax_ms", "r"},
    {"forward.hops[].jint_ms", "r"},
    {"forward.verdict.destination_loss_pct", "r"},
    {"forward.verdict.first_loss_ttl", "in"},
    {"forward.verdict.first_loss_ip", "sn"},
    {"forward.verdict.segment", "s"},
    {"forward.verdict.rate_limited_ttls", "a"},
    {"forward.verdict.latency_jump_ttl", "in"},
    {"forward.verdict.text", "s"},
    {"reverse.source", "s"},
    {"reverse.hops[].ttl", "i"},
    {"reverse.hops[].loss_pct", "r"},
    {"reverse.verdict.first_loss_ttl", "i"},
    {"reverse.verdict.first_loss_ip", "s"},
    {"reverse.verdict.rate_limited_ttls[]", "i"},
    {"reverse.verdict.latency_jump_ttl", "i"},
    {"reverse.verdict.segment", "s"},
    {"alignment.asymmetric", "b"},
    {"alignment.shared[].forward_ttl", "i"},
    {"alignment.shared[].reverse_ttl", "i"},
    {"alignment.shared[].how", "s"},
    {"alignment.forward_only_ttls[]", "i"},
    {"alignment.reverse_only_ttls[]", "i"},
    {"one_way.forward.sent", "i"},
    {"one_way.forward.recv", "i"},
    {"one_way.forward.loss_pct", "r"},
    {"one_way.forward.delay_avg_ms", "r"},
    {"one_way.forward.delay_stdev_ms", "r"},
    {"one_way.reverse.sent", "i"},
    {"one_way.reverse.recv", "i"},
    {"one_way.reverse.loss_pct", "r"},
    {"one_way.reverse.delay_avg_ms", "r"},
    {"one_way.reverse.delay_stdev_ms", "r"},
    {"followup[].from", "s"},
    {"followup[].target", "s"},
    {"followup[].protocol", "s"},
    {"followup[].sent", "i"},
    {"followup[].recv", "i"},
    {"followup[].loss_pct", "r"},
    {"followup[].avg_ms", "r"},
    {"followup[].why", "s"},
    {"diagnosis.status", "s"},
    {"diagnosis.direction", "s"},
    {"diagnosis.suspect.kind", "s"},
    {"diagnosis.suspect.path", "s"},
    {"diagnosis.suspect.from_ip", "s"},
    {"diagnosis.suspect.to_ip", "s"},
    {"diagnosis.suspect.from_ttl", "i"},
    {"diagnosis.suspect.to_ttl", "i"},
    {"diagnosis.suspect.confidence", "r"},
    {"diagnosis.suspect.evidence[]", "s"},
    {"diagnosis.rate_limited[].path", "s"},
    {"diagnosis.rate_limited[].ttl", "i"},
    {"diagnosis.rate_limited[].ip", "s"},
    {"diagnosis.summary", "s"},
    {"diagnosis.advice[]", "s"},
    {"errors[].agent", "sn"},
    {"errors[].code", "s"},
    {"errors[].message", "s"},
};

/* The JSON value at a simple dotted path (no []), or NULL. */
static json_t *at(json_t *j, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  char *save = NULL;
  for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
    j = json_object_get(j, k);
  return j;
}

/* --- Tests ------------------------------------------------------------------------ */

static void test_new_free_names(void **state) {
  (void)state;
  md_report *r = md_report_new();
  assert_non_null(r);
  assert_int_equal(r->diagnosis.status, MD_STATUS_INCOMPLETE); /* never "healthy" by default */
  assert_null(r->forward);
  md_report_free(r);
  md_report_free(NULL);

  assert_string_equal(md_segment_name(MD_SEG_NONE), "none");
  assert_string_equal(md_segment_name(MD_SEG_DESTINATION_HOST), "destination_host");
  assert_string_equal(md_segment_name(MD_SEG_LOCAL_ISP), "local_isp");
  assert_string_equal(md_segment_name(MD_SEG_TRANSIT), "transit");
  assert_string_equal(md_segment_name(MD_SEG_DESTINATION_ISP), "destination_isp");
  assert_string_equal(md_status_name(MD_STATUS_HEALTHY), "healthy");
  assert_string_equal(md_status_name(MD_STATUS_DEGRADED), "degraded");
  assert_string_equal(md_status_name(MD_STATUS_UNREACHABLE), "unreachable");
  assert_string_equal(md_status_name(MD_STATUS_INCOMPLETE), "incomplete");
  assert_string_equal(md_direction_name(MD_DIRECTION_NONE), "none");
  assert_string_equal(md_direction_name(MD_DIRECTION_FORWARD), "forward");
  assert_string_equal(md_direction_name(MD_DIRECTION_REVERSE), "reverse");
  assert_string_equal(md_direction_name(MD_DIRECTION_BOTH), "both");
  assert_string_equal(md_dir_name(MD_DIR_FORWARD), "forward");
  assert_string_equal(md_dir_name(MD_DIR_REVERSE), "reverse");
  assert_string_equal(md_suspect_kind_name(MD_SUSPECT_LOSS), "loss");
  assert_string_equal(md_suspect_kind_name(MD_SUSPECT_LATENCY), "latency");
  assert_string_equal(md_suspect_kind_name(MD_SUSPECT_DESTINATION_HOST), "destination_host");
  assert_string_equal(md_suspect_kind_name(MD_SUSPECT_UNREACHABLE), "unreachable");
  assert_string_equal(md_status_name((md_status)42), "?");
}

static void test_new_id(void **state) {
  (void)state;
  md_report *r = md_report_new();
  r->started_at_ns = 1795918200999000000LL; /* 2026-11-29T02:10:00.999Z */
  md_report_new_id(r);
  char first[40];
  snprintf(first, sizeof first, "%s", r->id);
  assert_int_equal(strlen(first), 23);
  for (int i = 0; i < 23; i++) {
    char c = first[i];
    if (i == 8)
      assert_int_equal(c, 'T');
    else if (i == 15)
      assert_int_equal(c, 'Z');
    else if (i == 16)
      assert_int_equal(c, '-');
    else if (i < 15)
      assert_true(isdigit((unsigned char)c));
    else
      assert_true(isxdigit((unsigned char)c) && !isupper((unsigned char)c));
  }
  char ts[32];
  time_t sec = (time_t)(r->started_at_ns / 1000000000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
  assert_memory_equal(first, ts, 16); /* from the start time, so ids sort by time */
  int same = 0;
  for (int i = 0; i < 20; i++) {
    md_report_new_id(r);
    same += strcmp(first, r->id) == 0;
  }
  assert_true(same <= 1); /* 24 random bits */
  md_report_free(r);

  r = md_report_new(); /* not started: now */
  md_report_new_id(r);
  assert_int_equal(strlen(r->id), 23);
  md_report_free(r);
}

static void test_add_error(void **state) {
  (void)state;
  md_report *r = md_report_new();
  for (int i = 0; i < 5; i++)
    assert_int_equal(md_report_add_error(r, i % 2 ? "cvm" : NULL, "run_failed", "step %d", i), 0);
  assert_int_equal(r->n_errors, 5);
  assert_null(r->errors[0].agent);
  assert_string_equal(r->errors[1].agent, "cvm");
  assert_string_equal(r->errors[4].code, "run_failed");
  assert_string_equal(r->errors[4].message, "step 4");
  assert_int_equal(md_report_add_error(NULL, NULL, "x", "y"), -EINVAL);
  md_report_free(r);
}

static void test_contract_fields(void **state) {
  (void)state;
  md_report *r = make_report();
  json_t *j = md_report_to_json(r);
  assert_non_null(j);
  for (size_t i = 0; i < sizeof contract / sizeof contract[0]; i++)
    check_path(j, contract[i].path, contract[i].types);
  assert_string_equal(json_string_value(json_object_get(j, "schema")), "mtrdiag.report.v1");
  assert_string_equal(json_string_value(json_object_get(j, "id")), r->id);
  assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                      "2026-11-29T02:10:00.100Z");
  assert_string_equal(json_string_value(at(j, "diagnosis.status")), "degraded");
  assert_string_equal(json_string_value(at(j, "diagnosis.direction")), "reverse");
  assert_string_equal(json_string_value(at(j, "diagnosis.suspect.kind")), "loss");
  assert_string_equal(json_string_value(at(j, "diagnosis.suspect.path")), "reverse");
  assert_true(json_is_null(at(j, "agents.b.hostname")));
  assert_true(json_is_null(at(j, "forward.verdict.first_loss_ttl")));
  assert_true(json_is_null(at(j, "errors")) == false);
  assert_true(
      json_is_null(json_object_get(json_array_get(json_object_get(j, "errors"), 1), "agent")));
  /* the contract's top-level order */
  static const char *order[] = {"schema",    "id",      "started_at",    "finished_at", "ran_by",
                                "options",   "agents",  "start_skew_ms", "forward",     "reverse",
                                "alignment", "one_way", "followup",      "diagnosis",   "errors"};
  const char *key;
  json_t *v;
  size_t k = 0;
  json_object_foreach(j, key, v) {
    assert_true(k < sizeof order / sizeof order[0]);
    assert_string_equal(key, order[k++]);
  }
  json_decref(j);
  md_report_free(r);
}

static void test_null_cases(void **state) {
  (void)state;
  md_report *r = make_report();
  /* B is no agent: no reverse path, no stream, no suspect, no skew */
  md_path_free(r->reverse);
  r->reverse = NULL;
  r->b.present = false;
  r->has_oneway = false;
  r->has_skew = false;
  r->diagnosis.has_suspect = false;
  r->forward_verdict.present = false;
  json_t *j = md_report_to_json(r);
  assert_non_null(j);
  assert_true(json_is_null(json_object_get(j, "reverse")));
  assert_true(json_is_null(json_object_get(j, "one_way")));
  assert_true(json_is_null(json_object_get(j, "start_skew_ms")));
  assert_true(json_is_null(at(j, "diagnosis.suspect")));
  assert_true(json_is_null(at(j, "forward.verdict")));
  assert_true(json_is_false(at(j, "agents.b.is_agent")));
  assert_true(json_is_true(at(j, "agents.a.is_agent")));
  assert_true(json_is_null(at(j, "agents.b.clock_offset_ms")));
  check_path(j, "forward.hops[].ttl", "i");
  /* and it reads back the same */
  char err[256];
  md_report *back = md_report_from_json(j, err, sizeof err);
  if (!back)
    fail_msg("%s", err);
  assert_null(back->reverse);
  assert_false(back->b.present);
  assert_false(back->has_oneway);
  assert_false(back->has_skew);
  assert_false(back->diagnosis.has_suspect);
  assert_false(back->forward_verdict.present);
  json_t *j2 = md_report_to_json(back);
  assert_true(json_equal(j, j2));
  json_decref(j2);
  md_report_free(back);
  json_decref(j);
  md_report_free(r);

  /* a report that has only begun: no paths, no options, nothing */
  r = md_report_new();
  snprintf(r->id, sizeof r->id, "20261129T021000Z-000000");
  r->a.present = true;
  r->a.name = dup("local");
  r->b.present = true;
  r->b.name = dup("cvm");
  j = md_report_to_json(r);
  assert_true(json_is_null(json_object_get(j, "forward")));
  assert_true(json_is_null(json_object_get(j, "started_at")));
  assert_string_equal(json_string_value(at(j, "diagnosis.status")), "incomplete");
  back = md_report_from_json(j, err, sizeof err);
  if (!back)
    fail_msg("%s", err);
  json_decref(j);
  md_report_free(back);
  md_report_free(r);
}

static void test_round_trip(void **state) {
  (void)state;
  md_report *r = make_report();
  char *s1 = md_report_to_json_string(r, 1);
  assert_non_null(s1);
  char err[256];
  md_report *back = md_report_from_json_string(s1, strlen(s1), err, sizeof err);
  if (!back)
    fail_msg("%s", err);
  char *s2 = md_report_to_json_string(back, 1);
  assert_string_equal(s1, s2);
  /* the model came back, not only the text */
  assert_string_equal(back->id, r->id);
  assert_int_equal(back->reverse->n_hops, 4);
  assert_int_equal(back->diagnosis.suspect.to_ttl, 2);
  assert_string_equal(back->alignment.shared[0].how, "link_mate");
  assert_int_equal(back->n_errors, 2);
  assert_string_equal(back->followup[0].protocol, "icmp");
  assert_int_equal(back->reverse_verdict.rate_limited_ttls[0], 3);
  /* once more, through the compact form */
  char *c = md_report_to_json_string(back, 0);
  assert_null(strchr(c, '\n'));
  md_report *again = md_report_from_json_string(c, strlen(c), err, sizeof err);
  assert_non_null(again);
  char *s3 = md_report_to_json_string(again, 1);
  assert_string_equal(s1, s3);
  free(s1);
  free(s2);
  free(s3);
  free(c);
  md_report_free(again);
  md_report_free(back);
  md_report_free(r);
}

static void test_fixtures_read_back_identical(void **state) {
  (void)state;
  static const char *files[] = {FIXTURE("asymmetric.json"), FIXTURE("forward_only.json"),
                                FIXTURE("errors.json")};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char err[512];
    md_report *r = md_report_load_json_file(files[i], err, sizeof err);
    if (!r)
      fail_msg("%s", err);
    json_error_t je;
    json_t *want = json_load_file(files[i], 0, &je);
    assert_non_null(want);
    json_t *got = md_report_to_json(r);
    if (!json_equal(want, got)) {
      char *g = json_dumps(got, MD_REPORT_JSON_FLAGS);
      fail_msg("%s does not read back identically; got:\n%s", files[i], g);
    }
    json_decref(want);
    json_decref(got);
    md_report_free(r);
  }
}

/* Every number in the text has at most 3 decimals. */
static void assert_clean_numbers(const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '"') { /* skip strings */
      for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
          p++;
      continue;
    }
    if (*p == '.' && p > s && isdigit((unsigned char)p[-1])) {
      int n = 0;
      while (isdigit((unsigned char)p[1 + n]))
        n++;
      if (n > 3)
        fail_msg("noisy number near: %.40s", p - 10 > s ? p - 10 : s);
    }
  }
}

static void test_numbers_rounded(void **state) {
  (void)state;
  md_report *r = make_report();
  char *s = md_report_to_json_string(r, 1);
  assert_clean_numbers(s);
  assert_non_null(strstr(s, "\"start_skew_ms\": 1.7,"));
  assert_non_null(strstr(s, "\"delay_stdev_ms\": 0.05"));
  assert_non_null(strstr(s, "\"delay_avg_ms\": 21.3,"));
  assert_non_null(strstr(s, "\"confidence\": 0.333,"));
  assert_non_null(strstr(s, "\"destination_loss_pct\": 30.0,"));
  assert_non_null(strstr(s, "\"clock_offset_ms\": -0.42,"));
  free(s);
  FILE *f = tmpfile();
  assert_int_equal(md_report_write_json(r, f), 0);
  long len = ftell(f);
  rewind(f);
  char *buf = calloc(1, (size_t)len + 1);
  assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
  assert_int_equal(buf[len - 1], '\n');
  assert_clean_numbers(buf);
  fclose(f);
  free(buf);
  md_report_free(r);
  assert_true(md_round3(0.1 + 0.2) == 0.3);
  assert_true(md_round3(-0.0001) == 0.0);
  assert_true(md_round3(1.0 / 0.0) == 0.0);
}

/* The fixture text with one substitution (first occurrence of from). */
static char *fixture_with(const char *from, const char *to) {
  FILE *f = fopen(FIXTURE("asymmetric.json"), "r");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strstr(buf, from);
  if (!p)
    fail_msg("fixture has no %s", from);
  char *out = calloc(1, n + strlen(to) + 1);
  memcpy(out, buf, (size_t)(p - buf));
  strcat(out, to);
  strcat(out, p + strlen(from));
  free(buf);
  return out;
}

static void test_bad_input(void **state) {
  (void)state;
  static const struct {
    const char *from, *to, *want;
  } cases[] = {
      {"\"schema\": \"mtrdiag.report.v1\"", "\"schema\": \"mtrdiag.report.v2\"",
       "schema: expected"},
      {"\"schema\": \"mtrdiag.report.v1\",", "", "schema: missing"},
      {"\"id\": \"20261129T021000Z-1a2b3c\"", "\"id\": \"../../etc\"", "id: expected"},
      {"\"id\": \"20261129T021000Z-1a2b3c\"", "\"id\": 7", "id: expected"},
      {"\"started_at\": \"2026-11-29T02:10:00.100Z\"", "\"started_at\": \"yesterday\"",
       "started_at: expected an RFC 3339"},
      {"\"protocol\": \"icmp\"", "\"protocol\": \"sctp\"", "options.protocol: expected one of"},
      {"\"cycles\": 20", "\"cycles\": \"20\"", "options.cycles: expected an integer"},
      {"\"max_ttl\": 30", "\"max_ttl\": 300", "options.max_ttl: 300 out of range 0..255"},
      {"\"name\": \"local\"", "\"name\": 1", "agents.a.name: expected a string"},
      {"\"start_skew_ms\": 1.7", "\"start_skew_ms\": \"1.7\"", "start_skew_ms: expected a number"},
      {"\"ip\": \"198.18.1.2\"", "\"ip\": \"not-an-ip\"", "forward.hops[0].hosts[0].ip"},
      {"\"segment\": \"transit\"", "\"segment\": \"moon\"", "forward.verdict.segment: expected"},
      {"\"forward_ttl\": 1", "\"forward_ttl\": 0", "alignment.shared[0].forward_ttl"},
      {"\"how\": \"link_mate\"", "\"how\": \"a-very-long-how-name\"", "alignment.shared[0].how"},
      {"\"forward_only_ttls\": [", "\"forward_only_ttls\": [\"x\", ",
       "alignment.forward_only_ttls: [0]"},
      {"\"delay_avg_ms\": 6.1", "\"delay_avg_ms\": null", "one_way.forward.delay_avg_ms"},
      {"\"loss_pct\": 26.0", "\"loss_pct\": 260.0", "followup[1].loss_pct"},
      {"\"kind\": \"loss\"", "\"kind\": \"bogus\"",
       "diagnosis.suspect.kind: expected one of loss|latency|destination_host|unreachable"},
      {"\"confidence\": 0.85", "\"confidence\": 2", "diagnosis.suspect.confidence"},
      {"\"status\": \"degraded\"", "\"status\": \"fine\"", "diagnosis.status: expected one of"},
      {"\"evidence\": [", "\"evidence\": [1, ", "diagnosis.suspect.evidence: [0]"},
      {"\"rate_limited\": [",
       "\"rate_limited\": [{\"path\": \"forward\", \"ttl\": -2, \"ip\": null}, ",
       "diagnosis.rate_limited[0].ttl"},
      {"\"errors\": []", "\"errors\": [{\"agent\": null, \"code\": \"x\"}]",
       "errors[0].message: missing"},
      {"\"errors\": []", "\"errors\": [\"boom\"]", "errors[0]: expected an object"},
      {"\"errors\": []", "\"errors\": {}", "errors: expected an array"},
      {"\"diagnosis\": {", "\"diagnosis\": 5, \"x\": {", "diagnosis: expected an object"},
      {"\"reverse\": {", "\"reverse\": [], \"y\": {", "reverse: expected an object or null"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = fixture_with(cases[i].from, cases[i].to);
    char err[512] = "";
    md_report *r = md_report_from_json_string(text, strlen(text), err, sizeof err);
    if (r)
      fail_msg("case %zu (%s) was accepted", i, cases[i].to);
    if (!strstr(err, cases[i].want))
      fail_msg("case %zu: error \"%s\" does not say \"%s\"", i, err, cases[i].want);
    free(text);
  }
  /* not JSON at all */
  static const char *junk[] = {"",
                               "{",
                               "[]",
                               "null",
                               "42",
                               "{\"schema\": \"mtrdiag.report.v1\"",
                               "{\"a\":1,\"a\":2}",
                               "\xff\xfe{}"};
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
    char err[256] = "";
    assert_null(md_report_from_json_string(junk[i], strlen(junk[i]), err, sizeof err));
    assert_true(err[0] != '\0');
  }
  char err[256];
  assert_null(md_report_from_json_string("[]", 2, err, sizeof err));
  assert_string_equal(err, "report: expected a JSON object");
  assert_null(md_report_from_json_string("{", 1, err, sizeof err));
  assert_non_null(strstr(err, "line 1"));
  assert_null(md_report_from_json_string(NULL, 0, err, sizeof err));
  assert_null(md_report_from_json_string("{}", 2, NULL, 0)); /* no error buffer: fine */
  /* a file that is not there names itself */
  assert_null(md_report_load_json_file("/nonexistent/report.json", err, sizeof err));
  assert_non_null(strstr(err, "/nonexistent/report.json: "));
}

/* Replace the value at every position of the tree (depth first) with each
 * of a few wrong values, and remove each key: from_json must fail cleanly
 * or succeed, and never crash or leak (ASan run). */
static int mutations;
static void mutate_all(json_t *root, json_t *node) {
  static const char *const wrongs[] = {"null", "\"x\"", "-1", "1e300", "[]", "{}", "true", "0.5"};
  if (json_is_object(node)) {
    /* the keys first: deleting and re-adding a key moves it to the end */
    size_t nkeys = json_object_size(node), i = 0;
    char **keys = calloc(nkeys + 1, sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach(node, key, v) keys[i++] = strdup(key);
    for (i = 0; i < nkeys; i++) {
      char *k = keys[i];
      v = json_incref(json_object_get(node, k));
      for (size_t w = 0; w < sizeof wrongs / sizeof wrongs[0]; w++) {
        json_object_set_new(node, k, json_loads(wrongs[w], JSON_DECODE_ANY, NULL));
        char err[256];
        md_report_free(md_report_from_json(root, err, sizeof err));
        mutations++;
      }
      json_object_del(node, k);
      char err[256];
      md_report *r = md_report_from_json(root, err, sizeof err);
      if (!r && !strstr(err, k) && !strstr(err, "expected"))
        fail_msg("removing %s: error \"%s\" does not name it", k, err);
      md_report_free(r);
      json_object_set(node, k, v);
      mutate_all(root, v);
      json_decref(v);
      free(k);
    }
    free(keys);
  } else if (json_is_array(node) && json_array_size(node) > 0) {
    json_t *first = json_array_get(node, 0);
    json_incref(first);
    for (size_t w = 0; w < sizeof wrongs / sizeof wrongs[0]; w++) {
      json_array_set_new(node, 0, json_loads(wrongs[w], JSON_DECODE_ANY, NULL));
      char err[256];
      md_report_free(md_report_from_json(root, err, sizeof err));
      mutations++;
    }
    json_array_set(node, 0, first);
    mutate_all(root, first);
    json_decref(first);
  }
}

static void test_no_crash_on_mutations(void **state) {
  (void)state;
  static const char *files[] = {FIXTURE("asymmetric.json"), FIXTURE("errors.json")};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    json_t *j = json_load_file(files[i], 0, NULL);
    assert_non_null(j);
    mutate_all(j, j);
    /* unchanged at the end, and still good */
    char err[256];
    md_report *r = md_report_from_json(j, err, sizeof err);
    if (!r)
      fail_msg("%s", err);
    md_report_free(r);
    json_decref(j);
  }
  assert_true(mutations > 1000);
}

static void test_bad_utf8_written(void **state) {
  (void)state;
  md_report *r = make_report();
  free(r->diagnosis.summary);
  r->diagnosis.summary = dup("bad \xff\xfe bytes \xc3\xa9 ok");
  char *s = md_report_to_json_string(r, 0);
  assert_non_null(s);
  assert_non_null(strstr(s, "\"summary\":\"bad ?? bytes \xc3\xa9 ok\""));
  free(s);
  md_report_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_free_names),
      cmocka_unit_test(test_new_id),
      cmocka_unit_test(test_add_error),
      cmocka_unit_test(test_contract_fields),
      cmocka_unit_test(test_null_cases),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_fixtures_read_back_identical),
      cmocka_unit_test(test_numbers_rounded),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_no_crash_on_mutations),
      cmocka_unit_test(test_bad_utf8_written),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
