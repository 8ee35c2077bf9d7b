/* The agent daemon end to end in one process: md_daemon on a uv loop,
 * listening on 127.0.0.1 (a port the kernel picks), certificates from
 * md_pki in a temp dir, and controllers made with md_chan_connect (or, for
 * hostile bytes, a bare md_tls_conn) on the same loop.
 *
 * Covers: Hello -> HelloAck fields; TimeSync; a run to 127.0.0.1 (ICMP;
 * RunAccepted, HopUpdates, RunResult OK reaching it); refusals with their
 * codes and messages (policy, limits, bad requests, duplicate run_id,
 * far-future start) while the session stays up; NOT_AUTHORISED; a message
 * before Hello; Cancel (running and scheduled) and UNKNOWN_RUN; scheduled
 * start; disconnect mid-run cancels at once; the connection limit; idle
 * and handshake timeouts; stopping the daemon mid-run; hostile frames
 * (zero length, oversize, garbage) on one TLS connection while another
 * session keeps working. Probing 127.0.0.1 needs raw sockets (root) or a
 * ping_group_range that allows this group; without either the run tests
 * check the RUN_FAILED answer instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "daemon.h"
#include "md_chan.h"
#include "md_frame.h"
#include "md_pki.h"
#include "md_time.h"
#include "md_tls.h"
#include "md_wire.h"

static md_tls_ctx *g_ops_ctx, *g_intruder_ctx, *g_foreign_ctx;

/* ---- the agent */

/* An agent named agent1 on 127.0.0.1:<any>, allowing controller ops; extra
 * policy keys (flow style, without braces) may be appended. */
static void start_agent_ex(tctx *t, const char *policy_extra, const char *listen,
                           const md_daemon_opts *opts) {
  char text[4096];
  const char *extra = policy_extra ? policy_extra : "";
  /* the test defaults, unless the test sets them itself */
  bool own_interval = strstr(extra, "min_interval") != NULL;
  bool own_rate = strstr(extra, "max_probes_per_second") != NULL;
  snprintf(text, sizeof text,
           "name: agent1\n"
           "listen: [%s]\n"
           "tls: { cert: %s, key: %s, ca: %s, allowed_controllers: [ops, other] }\n"
           "policy: { allow_targets: [\"127.0.0.1/32\", \"2001:db8::/32\"]%s%s%s%s }\n",
           listen ? listen : "\"127.0.0.1:7447\"", pth("agent1.crt"), pth("agent1.key"),
           pth("ca.crt"), own_interval ? "" : ", min_interval: 0.05",
           own_rate ? "" : ", max_probes_per_second: 10000", extra[0] ? ", " : "", extra);
  start_agent_text(t, text, !listen, opts);
  assert_int_equal(md_daemon_n_listeners(t->d), t->cfg.n_listen);
  assert_int_not_equal(md_addr_port(&t->addr), 0);
}

static void start_agent(tctx *t, const char *policy_extra) {
  start_agent_ex(t, policy_extra, NULL, NULL);
}

/* ---- a controller made of md_chan */

/* How many messages of this type arrived (HopUpdates: of this run, when given). */
static size_t count(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run) {
  size_t k = 0;
  for (size_t i = 0; i < cl->n; i++) {
    Mtrdiag__V1__Envelope *e = cl->msgs[i];
    if (e->msg_case != mc)
      continue;
    if (run && mc == MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE && strcmp(e->hop_update->run_id, run))
      continue;
    k++;
  }
  return k;
}

/* Index of a message in arrival order. */
static size_t index_of(client *cl, const Mtrdiag__V1__Envelope *e) {
  for (size_t i = 0; i < cl->n; i++)
    if (cl->msgs[i] == e)
      return i;
  return (size_t)-1;
}

#define WAIT_MSG(T, CL, MC, RUN, MS) wait_msg(T, CL, MC, RUN, MS)

static bool g_can_probe; /* raw sockets or ping sockets for this group */

/* ---- tests */

static void test_hello_ack(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_connect(&t, &cl, g_ops_ctx);
  PUMP_UNTIL(&t, 5000, cl.up_called);
  assert_int_equal(cl.up_status, 0);
  int64_t before = md_now_real_ns();
  send_hello(&cl);
  Mtrdiag__V1__Envelope *e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL, 5000);
  int64_t after = md_now_real_ns();
  Mtrdiag__V1__HelloAck *a = e->hello_ack;
  assert_int_equal(a->protocol_version, MD_WIRE_VERSION);
  assert_int_equal(a->protocol_revision, MD_WIRE_REVISION);
  assert_string_equal(a->agent_name, "agent1");
  assert_string_equal(a->software_version, md_agent_version());
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  assert_string_equal(a->hostname, host);
  assert_true(a->server_real_ns >= before && a->server_real_ns <= after);
  assert_non_null(a->capabilities);
  assert_true(a->capabilities->n_protocols >= 1);
  assert_int_equal(a->capabilities->protocols[0], MTRDIAG__V1__PROTOCOL__PROTOCOL_ICMP);
  assert_int_equal(a->capabilities->n_protocols, a->capabilities->raw_sockets ? 3 : 1);
  assert_true(a->capabilities->one_way_stream);
  for (size_t i = 0; i < a->n_addresses; i++) {
    md_addr x;
    assert_int_equal(md_addr_parse(a->addresses[i], &x), 0);
    assert_string_not_equal(a->addresses[i], "127.0.0.1");
    assert_string_not_equal(a->addresses[i], "::1");
  }
  assert_int_equal(md_daemon_sessions(t.d), 1);
  /* a second Hello is refused, the session goes on */
  send_hello(&cl);
  e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, NULL, 5000);
  assert_int_equal(e->error->code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE);
  assert_false(cl.closed);
  client_close(&t, &cl);
  PUMP_UNTIL(&t, 5000, md_daemon_sessions(t.d) == 0);
  stop_agent(&t);
}

static void test_time_sync(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  for (uint32_t seq = 1; seq <= 3; seq++) {
    Mtrdiag__V1__TimeSyncRequest q = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
    q.seq = seq;
    q.client_send_real_ns = md_now_real_ns();
    assert_int_equal(md_chan_send(cl.chan, &q.base), 0);
    Mtrdiag__V1__Envelope *e =
        WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REPLY, NULL, 5000);
    int64_t t4 = md_now_real_ns();
    Mtrdiag__V1__TimeSyncReply *r = e->time_sync_reply;
    assert_int_equal(r->seq, seq);
    assert_true(r->client_send_real_ns == q.client_send_real_ns);
    assert_true(r->server_recv_real_ns >= q.client_send_real_ns);
    assert_true(r->server_send_real_ns >= r->server_recv_real_ns);
    assert_true(t4 >= r->server_send_real_ns);
    /* same clock on both ends: the offset is ~0, well under the RTT */
    int64_t offset =
        ((r->server_recv_real_ns - q.client_send_real_ns) + (r->server_send_real_ns - t4)) / 2;
    assert_true(offset > -(t4 - q.client_send_real_ns) && offset < (t4 - q.client_send_real_ns));
  }
  client_close(&t, &cl);
  stop_agent(&t);
}

/* Wait for the end of a run and return its RunResult. */
static Mtrdiag__V1__RunResult *wait_result(tctx *t, client *cl, const char *id, unsigned ms) {
  Mtrdiag__V1__Envelope *e = WAIT_MSG(t, cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT, id, ms);
  return e->run_result;
}

static void test_run_ok(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  send_run(&cl, "r1", "127.0.0.1", 3, 100, 0);
  if (!g_can_probe) {
    Mtrdiag__V1__Envelope *e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, "r1", 5000);
    assert_int_equal(e->error->code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED);
    print_message("no raw or ping sockets here: RUN_FAILED \"%s\"\n", e->error->message);
    client_close(&t, &cl);
    stop_agent(&t);
    return;
  }
  int64_t t0 = md_now_real_ns();
  Mtrdiag__V1__Envelope *acc =
      WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "r1", 5000);
  assert_true(acc->run_accepted->started_at_real_ns > t0 - 1000000000LL);
  assert_int_equal(md_daemon_active_runs(t.d), 1);
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "r1", 10000);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  assert_string_equal(rr->message, "");
  assert_int_equal(rr->cycles_done, 3);
  assert_non_null(rr->path);
  assert_true(rr->path->reached);
  assert_true(rr->path->complete);
  assert_string_equal(rr->path->target, "127.0.0.1");
  assert_string_equal(rr->path->target_name, "lo");
  assert_string_equal(rr->path->source, "agent1");
  assert_true(rr->path->n_hops >= 1);
  Mtrdiag__V1__Hop *last = rr->path->hops[rr->path->n_hops - 1];
  assert_true(last->n_hosts >= 1);
  assert_string_equal(last->hosts[0]->ip, "127.0.0.1");
  assert_int_equal(last->sent, 3);
  assert_int_equal(last->recv, 3);
  /* the path reads back as md_path */
  md_path *p = NULL;
  char err[256];
  assert_int_equal(md_wire_path_from_pb(rr->path, &p, err, sizeof err), 0);
  md_path_free(p);
  /* HopUpdates came between RunAccepted and RunResult, one per cycle */
  size_t nu = count(&cl, MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE, "r1");
  assert_true(nu >= 1 && nu <= 3);
  Mtrdiag__V1__Envelope *u = take(&cl, MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE, "r1");
  assert_true(index_of(&cl, u) > index_of(&cl, acc));
  for (size_t i = 0; i < cl.n; i++)
    if (cl.msgs[i]->msg_case == MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT)
      assert_true(i > index_of(&cl, u));
  assert_int_equal(u->hop_update->cycles_done, 1);
  assert_true(u->hop_update->n_hops >= 1);
  PUMP_UNTIL(&t, 2000, md_daemon_active_runs(t.d) == 0);
  md_agent_stats st;
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.runs_accepted, 1);
  assert_int_equal(st.runs_ok, 1);
  client_close(&t, &cl);
  stop_agent(&t);
}

/* Every refusal: code, run_id echoed, a message naming the limit; the session stays up. */
static void expect_refusal(tctx *t, client *cl, const char *id, Mtrdiag__V1__ErrorCode code,
                           const char *want) {
  (void)expect_error(t, cl, id, code, want);
  assert_null(peek(cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, id));
  assert_false(cl->closed);
}

static void test_refusals(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, "max_cycles: 100, max_concurrent_runs: 1, max_ttl: 10");
  client_ready(&t, &cl, g_ops_ctx);

  send_run(&cl, "p1", "192.0.2.1", 1, 100, 0);
  expect_refusal(&t, &cl, "p1", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "target 192.0.2.1 is not in policy.allow_targets [127.0.0.1/32, 2001:db8::/32]");
  send_run(&cl, "p2", "224.0.0.1", 1, 100, 0);
  expect_refusal(&t, &cl, "p2", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                 "not a unicast address"); /* md_wire's sanity check comes first */
  send_run(&cl, "p3", "127.0.0.1", 101, 100, 0);
  expect_refusal(&t, &cl, "p3", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "cycles 101 is over policy.max_cycles 100");
  send_run(&cl, "p4", "127.0.0.1", 1, 20, 0);
  expect_refusal(&t, &cl, "p4", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "interval 0.02 s is under policy.min_interval 0.05 s");
  Mtrdiag__V1__RunRequest r = MTRDIAG__V1__RUN_REQUEST__INIT;
  r.run_id = "p5";
  r.target = "127.0.0.1";
  r.max_ttl = 11;
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "p5", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "max_ttl 11 is over policy.max_ttl 10");
  r.run_id = "p6";
  r.max_ttl = 0; /* the default, 30, is over the policy too */
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "p6", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "max_ttl 30 is over policy.max_ttl 10");
  r.run_id = "p7";
  r.max_ttl = 3;
  r.psize = 1501;
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "p7", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "psize 1501 is over policy.max_psize 1500");
  r.run_id = "bad id!";
  r.psize = 0;
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "run_id");
  r.run_id = "p8";
  r.target = "";
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "p8", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "target: missing");
  r.run_id = "p9";
  r.target = "127.0.0.1";
  r.start_at_real_ns = md_now_real_ns() + 90 * 1000000000LL;
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "p9", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                 "more than the 60 s allowed");
  r.run_id = "p10";
  r.start_at_real_ns = 0;
  r.gracetime_ms = 61000;
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "p10", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "gracetime");

  /* a run that waits 2 s to start takes the one slot: limits and duplicates */
  send_run(&cl, "slow", "127.0.0.1", 100, 100, md_now_real_ns() + 2000000000LL);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "slow", 5000);
  assert_int_equal(md_daemon_active_runs(t.d), 1);
  send_run(&cl, "slow", "127.0.0.1", 1, 100, 0);
  expect_refusal(&t, &cl, "slow", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                 "run_id 'slow' is already in use in this session");
  send_run(&cl, "l1", "127.0.0.1", 1, 100, 0);
  expect_refusal(&t, &cl, "l1", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED,
                 "policy.max_concurrent_runs 1 reached");
  Mtrdiag__V1__Cancel c = MTRDIAG__V1__CANCEL__INIT;
  c.run_id = "slow";
  assert_int_equal(md_chan_send(cl.chan, &c.base), 0);
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "slow", 5000);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_null(rr->path); /* it never started */
  assert_int_equal(md_daemon_active_runs(t.d), 0);

  /* still up: a TimeSync is answered */
  Mtrdiag__V1__TimeSyncRequest q = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
  q.seq = 9;
  assert_int_equal(md_chan_send(cl.chan, &q.base), 0);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REPLY, NULL, 5000);
  md_agent_stats st;
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.runs_refused, 13);
  assert_int_equal(st.runs_accepted, 1);
  assert_int_equal(st.runs_cancelled, 1);
  client_close(&t, &cl);
  stop_agent(&t);
}

static void test_probe_rate_limit(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, "max_probes_per_second: 50, max_concurrent_runs: 8");
  client_ready(&t, &cl, g_ops_ctx);
  /* 3 TTLs every 50 ms = 60 probes/s */
  send_run(&cl, "fast", "127.0.0.1", 10, 50, 0);
  expect_refusal(&t, &cl, "fast", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED,
                 "policy.max_probes_per_second 50");
  /* 30/s scheduled (not probing yet, but counted), then another 30/s is too much */
  send_run(&cl, "a", "127.0.0.1", 10, 100, md_now_real_ns() + 3000000000LL);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "a", 5000);
  send_run(&cl, "b", "127.0.0.1", 10, 100, 0);
  expect_refusal(&t, &cl, "b", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED,
                 "the 1 active runs ~30");
  client_close(&t, &cl);
  PUMP_UNTIL(&t, 1000, md_daemon_active_runs(t.d) == 0);
  stop_agent(&t);
}

static void test_not_authorised(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_connect(&t, &cl, g_intruder_ctx);
  /* TLS 1.3: the client's handshake completes before the agent has judged it */
  PUMP_UNTIL(&t, 5000, cl.closed);
  Mtrdiag__V1__Envelope *e = take(&cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, NULL);
  assert_non_null(e);
  assert_int_equal(e->error->code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED);
  assert_string_equal(e->error->message,
                      "controller certificate name 'intruder' is not in allowed_controllers");
  assert_null(peek(&cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL));
  md_agent_stats st;
  PUMP_UNTIL(&t, 5000, md_daemon_sessions(t.d) == 0);
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.not_authorised, 1);
  client_free(&cl);
  /* the same name from another CA does not even get through TLS */
  client_connect(&t, &cl, g_foreign_ctx);
  PUMP_UNTIL(&t, 5000, cl.closed);
  assert_true(cl.close_status < 0);
  assert_null(peek(&cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL));
  client_free(&cl);
  PUMP_UNTIL(&t, 5000, md_daemon_sessions(t.d) == 0);
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.not_authorised, 1);
  assert_int_equal(st.connections, 2);
  stop_agent(&t);
}

static void test_message_before_hello(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_connect(&t, &cl, g_ops_ctx);
  PUMP_UNTIL(&t, 5000, cl.up_called);
  send_run(&cl, "r1", "127.0.0.1", 1, 100, 0);
  PUMP_UNTIL(&t, 5000, cl.closed);
  Mtrdiag__V1__Envelope *e = take(&cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, NULL);
  assert_non_null(e);
  assert_int_equal(e->error->code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE);
  assert_string_equal(e->error->message, "expected Hello first, got RunRequest");
  assert_int_equal(md_daemon_active_runs(t.d), 0);
  client_free(&cl);
  stop_agent(&t);
}

static void test_cancel(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  Mtrdiag__V1__Cancel c = MTRDIAG__V1__CANCEL__INIT;
  c.run_id = "nope";
  assert_int_equal(md_chan_send(cl.chan, &c.base), 0);
  Mtrdiag__V1__Envelope *e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, "nope", 5000);
  assert_int_equal(e->error->code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_RUN);
  if (!g_can_probe) {
    skip();
    return;
  }
  send_run(&cl, "long", "127.0.0.1", 1000, 100, 0);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "long", 5000);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE, "long", 5000);
  c.run_id = "long";
  assert_int_equal(md_chan_send(cl.chan, &c.base), 0);
  int64_t t0 = md_now_mono_ns();
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "long", 5000);
  assert_true(md_now_mono_ns() - t0 < 1000000000LL);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_string_equal(rr->message, "cancelled by the controller");
  assert_non_null(rr->path); /* the path so far */
  assert_false(rr->path->complete);
  assert_true(rr->cycles_done >= 1 && rr->cycles_done < 1000);
  assert_int_equal(md_daemon_active_runs(t.d), 0);
  /* the run is over: cancelling it again is UNKNOWN_RUN, and its id is free again */
  assert_int_equal(md_chan_send(cl.chan, &c.base), 0);
  e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, "long", 5000);
  assert_int_equal(e->error->code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_RUN);
  client_close(&t, &cl);
  stop_agent(&t);
}

static void test_scheduled_start(void **state) {
  (void)state;
  if (!g_can_probe) {
    skip();
    return;
  }
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  int64_t at = md_now_real_ns() + 400000000LL;
  send_run(&cl, "s1", "127.0.0.1", 2, 50, at);
  Mtrdiag__V1__Envelope *e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "s1", 5000);
  assert_true(e->run_accepted->started_at_real_ns == at);
  assert_true(md_now_real_ns() < at); /* accepted at once, before the start */
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "s1", 10000);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  assert_non_null(rr->path);
  int64_t skew = rr->path->started_at_real_ns - at;
  print_message("scheduled start: first probe %.3f ms after the asked instant\n", skew / 1e6);
  assert_true(skew >= -1000000LL && skew < 50000000LL);
  client_close(&t, &cl);
  stop_agent(&t);
}

/* A scheduled run that cannot start when its time comes: RunResult FAILED
 * with the reason (here: no file descriptor left for the engine). */
static void test_scheduled_start_fails(void **state) {
  (void)state;
  if (!g_can_probe) {
    skip();
    return;
  }
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  send_run(&cl, "f1", "127.0.0.1", 2, 50, md_now_real_ns() + 300000000LL);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "f1", 5000);
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  lim = old;
  if (lim.rlim_cur > 512)
    lim.rlim_cur = 512;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
  static int fds[600];
  int n = 0, fd;
  while (n < 600 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    fds[n++] = fd;
  assert_true(n < 600);
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "f1", 5000);
  while (n > 0)
    close(fds[--n]);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_FAILED);
  assert_non_null(strstr(rr->message, "open files"));
  assert_null(rr->path);
  assert_int_equal(md_daemon_active_runs(t.d), 0);
  client_close(&t, &cl);
  stop_agent(&t);
}

static void test_disconnect_cancels_runs(void **state) {
  (void)state;
  if (!g_can_probe) {
    skip();
    return;
  }
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  send_run(&cl, "d1", "127.0.0.1", 1000, 100, 0);
  send_run(&cl, "d2", "127.0.0.1", 1000, 100, md_now_real_ns() + 30000000000LL);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE, "d1", 5000);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "d2", 5000);
  assert_int_equal(md_daemon_active_runs(t.d), 2);
  int64_t t0 = md_now_mono_ns();
  md_chan_close(cl.chan);
  PUMP_UNTIL(&t, 1000, md_daemon_active_runs(t.d) == 0);
  print_message("runs cancelled %.1f ms after the disconnect\n", (md_now_mono_ns() - t0) / 1e6);
  PUMP_UNTIL(&t, 5000, cl.closed && md_daemon_sessions(t.d) == 0);
  md_agent_stats st;
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.runs_cancelled, 2);
  client_free(&cl);
  stop_agent(&t);
}

static void test_stop_mid_run(void **state) {
  (void)state;
  if (!g_can_probe) {
    skip();
    return;
  }
  tctx t;
  client cl;
  start_agent(&t, NULL);
  client_ready(&t, &cl, g_ops_ctx);
  send_run(&cl, "x1", "127.0.0.1", 1000, 100, 0);
  (void)WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE, "x1", 5000);
  md_daemon_stop(t.d, on_stopped, &t);
  PUMP_UNTIL(&t, 5000, t.stopped && cl.closed);
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "x1", 1);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_string_equal(rr->message, "the agent is shutting down");
  assert_int_equal(cl.close_status, 0); /* a clean close after the RunResult */
  client_free(&cl);
  stop_agent(&t); /* already stopped: frees */
}

static void test_connection_limit(void **state) {
  (void)state;
  tctx t;
  client a, b, c;
  start_agent(&t, "max_connections: 1");
  client_ready(&t, &a, g_ops_ctx);
  client_connect(&t, &b, g_ops_ctx);
  client_connect(&t, &c, g_ops_ctx);
  PUMP_UNTIL(&t, 5000, b.closed && c.closed);
  assert_true(b.up_status < 0 || !b.up_called);
  md_agent_stats st;
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.over_limit, 2);
  assert_int_equal(st.sessions, 1);
  /* the first one is unaffected */
  Mtrdiag__V1__TimeSyncRequest q = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
  assert_int_equal(md_chan_send(a.chan, &q.base), 0);
  (void)WAIT_MSG(&t, &a, MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REPLY, NULL, 5000);
  client_close(&t, &a);
  PUMP_UNTIL(&t, 5000, md_daemon_sessions(t.d) == 0);
  /* room again */
  client_ready(&t, &b, g_ops_ctx);
  client_close(&t, &b);
  client_free(&c);
  stop_agent(&t);
}

static void test_idle_and_handshake_timeouts(void **state) {
  (void)state;
  tctx t;
  client cl;
  start_agent(&t, "idle_timeout: 0.3, handshake_timeout: 0.3");
  client_ready(&t, &cl, g_ops_ctx);
  int64_t t0 = md_now_mono_ns();
  PUMP_UNTIL(&t, 3000, cl.closed);
  double waited = (md_now_mono_ns() - t0) / 1e9;
  assert_true(waited >= 0.25 && waited < 2.0);
  Mtrdiag__V1__Envelope *e = take(&cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, NULL);
  assert_non_null(e);
  assert_non_null(strstr(e->error->message, "idle"));
  client_free(&cl);
  /* connected, TLS up, but no Hello: closed after the handshake limit */
  client_connect(&t, &cl, g_ops_ctx);
  PUMP_UNTIL(&t, 3000, cl.closed);
  assert_true(cl.up_called);
  assert_null(peek(&cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL));
  client_free(&cl);
  PUMP_UNTIL(&t, 3000, md_daemon_sessions(t.d) == 0);
  stop_agent(&t);
}

/* A run keeps the session from being idle even when the controller is quiet. */
static void test_not_idle_while_running(void **state) {
  (void)state;
  if (!g_can_probe) {
    skip();
    return;
  }
  tctx t;
  client cl;
  start_agent(&t, "idle_timeout: 0.3");
  client_ready(&t, &cl, g_ops_ctx);
  send_run(&cl, "q1", "127.0.0.1", 8, 100, 0);
  Mtrdiag__V1__RunResult *rr = wait_result(&t, &cl, "q1", 5000);
  assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  PUMP_UNTIL(&t, 3000, cl.closed); /* idle again afterwards */
  client_free(&cl);
  stop_agent(&t);
}

/* ---- hostile bytes on a TLS connection (not md_chan) */

typedef struct raw_tls {
  uv_tcp_t *tcp;
  uv_connect_t creq;
  md_tls_conn *tls;
  md_frame_decoder *dec;
  const uint8_t *send;
  size_t send_len;
  bool hs_done, closed, got_error;
  Mtrdiag__V1__ErrorCode code;
  char msg[256];
} raw_tls;

static void raw_hs(md_tls_conn *c, int status) {
  raw_tls *r = md_tls_conn_user(c);
  if (status != 0)
    return;
  r->hs_done = true;
  assert_int_equal(md_tls_conn_write(c, r->send, r->send_len), 0);
}

static void raw_read(md_tls_conn *c, const uint8_t *data, size_t len) {
  raw_tls *r = md_tls_conn_user(c);
  while (len > 0) {
    const uint8_t *f;
    size_t flen, used;
    int rc = md_frame_decoder_feed(r->dec, data, len, &used, &f, &flen);
    assert_true(rc >= 0);
    data += used;
    len -= used;
    if (rc == 1) {
      Mtrdiag__V1__Envelope *env = NULL;
      assert_int_equal(md_wire_unpack(f, flen, &env, NULL, 0), 0);
      if (env->msg_case == MTRDIAG__V1__ENVELOPE__MSG_ERROR) {
        r->got_error = true;
        r->code = env->error->code;
        snprintf(r->msg, sizeof r->msg, "%s", env->error->message);
      }
      md_wire_free(env);
    }
  }
}

static void raw_close(md_tls_conn *c, int status) {
  (void)status;
  raw_tls *r = md_tls_conn_user(c);
  r->closed = true;
  uv_stream_t *s = md_tls_conn_stream(c);
  md_tls_conn_free(c);
  free(s);
  r->tls = NULL;
}

static const md_tls_callbacks g_raw_cb = {raw_hs, raw_read, raw_close};

static void raw_connected(uv_connect_t *req, int status) {
  raw_tls *r = req->data;
  assert_int_equal(status, 0);
  assert_int_equal(md_tls_conn_new(g_ops_ctx, (uv_stream_t *)r->tcp, &g_raw_cb, r, &r->tls), 0);
  assert_int_equal(md_tls_conn_expect_peer(r->tls, "agent1", NULL), 0);
  assert_int_equal(md_tls_conn_start(r->tls), 0);
}

/* Send bytes over TLS as the first application data; expect Error code, then the close. */
static void hostile(tctx *t, client *good, const uint8_t *bytes, size_t len,
                    Mtrdiag__V1__ErrorCode want, const char *want_msg) {
  raw_tls r;
  memset(&r, 0, sizeof r);
  r.send = bytes;
  r.send_len = len;
  assert_int_equal(md_frame_decoder_new(0, &r.dec), 0);
  r.tcp = malloc(sizeof *r.tcp);
  uv_tcp_init(&t->loop, r.tcp);
  r.creq.data = &r;
  assert_int_equal(uv_tcp_connect(&r.creq, r.tcp, &t->addr.sa, raw_connected), 0);
  PUMP_UNTIL(t, 5000, r.closed);
  assert_true(r.hs_done);
  assert_true(r.got_error);
  if (r.code != want)
    fail_msg("want %s, got %s: %s", md_wire_error_name(want), md_wire_error_name(r.code), r.msg);
  if (!strstr(r.msg, want_msg))
    fail_msg("message \"%s\" lacks \"%s\"", r.msg, want_msg);
  md_frame_decoder_free(r.dec);
  /* the well-behaved session goes on */
  Mtrdiag__V1__TimeSyncRequest q = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
  assert_int_equal(md_chan_send(good->chan, &q.base), 0);
  (void)WAIT_MSG(t, good, MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REPLY, NULL, 5000);
}

static void test_hostile_frames(void **state) {
  (void)state;
  tctx t;
  client good;
  start_agent(&t, NULL);
  client_ready(&t, &good, g_ops_ctx);
  if (g_can_probe) /* and a run of the good session survives it all */
    send_run(&good, "g1", "127.0.0.1", 30, 50, 0);

  static const uint8_t zero[] = {0, 0, 0, 0, 1, 2, 3};
  hostile(&t, &good, zero, sizeof zero, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME, "bad frame");
  static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0};
  hostile(&t, &good, huge, sizeof huge, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME,
          "over the 1 MiB limit");
  static const uint8_t just_over[] = {0x00, 0x10, 0x00, 0x01};
  hostile(&t, &good, just_over, sizeof just_over, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME,
          "bad frame");
  static const uint8_t garbage[] = {0, 0, 0, 6, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa};
  hostile(&t, &good, garbage, sizeof garbage, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "");
  /* a well-formed Envelope of another version */
  static const uint8_t v2[] = {0, 0, 0, 4, 0x08, 0x02, 0x12, 0x00}; /* version 2, empty Hello */
  hostile(&t, &good, v2, sizeof v2, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH, "");
  /* an Envelope with no message in it, before Hello */
  static const uint8_t empty[] = {0, 0, 0, 2, 0x08, 0x01};
  hostile(&t, &good, empty, sizeof empty, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
          "");

  if (g_can_probe) {
    Mtrdiag__V1__RunResult *rr = wait_result(&t, &good, "g1", 10000);
    assert_int_equal(rr->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  }
  client_close(&t, &good);
  PUMP_UNTIL(&t, 5000, md_daemon_sessions(t.d) == 0);
  stop_agent(&t);
}

/* Without raw sockets: HelloAck says ICMP only, and UDP is RUN_FAILED with the reason. */
static void test_no_raw_sockets(void **state) {
  (void)state;
  tctx t;
  client cl;
  md_daemon_opts o = {.prober_flags = MD_PROBER_NO_RAW};
  start_agent_ex(&t, NULL, NULL, &o);
  client_connect(&t, &cl, g_ops_ctx);
  PUMP_UNTIL(&t, 5000, cl.up_called);
  send_hello(&cl);
  Mtrdiag__V1__Envelope *e = WAIT_MSG(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL, 5000);
  assert_false(e->hello_ack->capabilities->raw_sockets);
  assert_int_equal(e->hello_ack->capabilities->n_protocols, 1);
  Mtrdiag__V1__RunRequest r = MTRDIAG__V1__RUN_REQUEST__INIT;
  r.run_id = "u1";
  r.target = "127.0.0.1";
  r.protocol = MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP;
  r.max_ttl = 3;
  assert_int_equal(md_chan_send(cl.chan, &r.base), 0);
  expect_refusal(&t, &cl, "u1", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED, "need raw sockets");
  assert_int_equal(md_daemon_active_runs(t.d), 0);
  client_close(&t, &cl);
  stop_agent(&t);
}

/* A free TCP port on both 0.0.0.0 and :: (found by binding, then released). */
static int free_port(void) {
  for (int tries = 0; tries < 20; tries++) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
      return -1;
    int off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
      port = ntohs(a.sin6_port);
    close(fd);
    if (port > 0)
      return port;
  }
  return -1;
}

/* "0.0.0.0:P" and "[::]:P" together: the IPv6 listener is IPv6-only. */
static void test_dual_stack_listeners(void **state) {
  (void)state;
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) {
    skip();
    return;
  }
  close(fd);
  int port = free_port();
  assert_true(port > 0);
  char listen[128];
  snprintf(listen, sizeof listen, "\"0.0.0.0:%d\", \"[::]:%d\"", port, port);
  tctx t;
  client a, b;
  start_agent_ex(&t, NULL, listen, NULL);
  assert_int_equal(md_daemon_n_listeners(t.d), 2);
  md_addr l6;
  assert_int_equal(md_daemon_listen_addr(t.d, 1, &l6), 0);
  assert_int_equal(md_addr_family(&l6), AF_INET6);
  assert_int_equal(md_addr_port(&l6), port);
  md_addr_parse("127.0.0.1", &t.addr);
  md_addr_set_port(&t.addr, (uint16_t)port);
  client_ready(&t, &a, g_ops_ctx);
  md_addr_parse("::1", &t.addr);
  md_addr_set_port(&t.addr, (uint16_t)port);
  client_ready(&t, &b, g_ops_ctx);
  assert_int_equal(md_daemon_sessions(t.d), 2);
  client_close(&t, &a);
  client_close(&t, &b);
  stop_agent(&t);
}

/* ---- start-up errors */

static void test_start_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_agent_config cfg;
  char text[2048], err[MD_CONFIG_ERRLEN] = "";
  md_daemon *d = NULL;
  /* a key that is not there */
  snprintf(text, sizeof text,
           "name: agent1\nlisten: [\"127.0.0.1:7447\"]\n"
           "tls: { cert: %s, key: %s, ca: %s }\n",
           pth("agent1.crt"), pth("missing.key"), pth("ca.crt"));
  assert_int_equal(
      md_agent_config_parse_string(text, strlen(text), "/t.yaml", &cfg, err, sizeof err), 0);
  assert_int_equal(md_daemon_start(&loop, &cfg, NULL, &d, err, sizeof err), MD_DAEMON_ETLS);
  assert_null(d);
  assert_non_null(strstr(err, "missing.key"));
  md_agent_config_free(&cfg);
  /* two listeners on one address: the second cannot bind */
  tctx t;
  start_agent(&t, NULL);
  char a[MD_ADDRSTRLEN + 8];
  snprintf(text, sizeof text,
           "name: agent1\nlisten: [\"%s\"]\n"
           "tls: { cert: %s, key: %s, ca: %s }\n",
           md_addr_str_hostport(&t.addr, a, sizeof a), pth("agent1.crt"), pth("agent1.key"),
           pth("ca.crt"));
  assert_int_equal(
      md_agent_config_parse_string(text, strlen(text), "/t.yaml", &cfg, err, sizeof err), 0);
  assert_int_equal(md_daemon_start(&loop, &cfg, NULL, &d, err, sizeof err), UV_EADDRINUSE);
  assert_null(d);
  assert_non_null(strstr(err, "cannot listen on"));
  uv_run(&loop, UV_RUN_DEFAULT); /* the failed start's handles close */
  assert_int_equal(uv_loop_close(&loop), 0);
  md_agent_config_free(&cfg);
  stop_agent(&t);
}

/* ---- set-up */

static int setup(void **state) {
  (void)state;
  char err[256];
  if (agent_fixture_setup("/tmp/md_agent_test.XXXXXX", err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "intruder", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0 ||
      md_pki_init(pth("other"), err, sizeof err) != 0 ||
      md_pki_issue(pth("other"), "ops", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0) {
    fprintf(stderr, "pki: %s\n", err);
    return -1;
  }
  g_ops_ctx = client_ctx("ops", "ca.crt");
  g_intruder_ctx = client_ctx("intruder", "ca.crt");
  g_foreign_ctx = client_ctx("other/ops", "ca.crt"); /* issued by another CA */
  g_can_probe = probe_possible();
  if (!g_can_probe)
    fprintf(stderr, "note: no raw or ping sockets: run tests check RUN_FAILED instead\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  md_tls_ctx_free(g_ops_ctx);
  md_tls_ctx_free(g_intruder_ctx);
  md_tls_ctx_free(g_foreign_ctx);
  return agent_fixture_cleanup();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello_ack),
      cmocka_unit_test(test_time_sync),
      cmocka_unit_test(test_run_ok),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_probe_rate_limit),
      cmocka_unit_test(test_not_authorised),
      cmocka_unit_test(test_message_before_hello),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_scheduled_start),
      cmocka_unit_test(test_scheduled_start_fails),
      cmocka_unit_test(test_disconnect_cancels_runs),
      cmocka_unit_test(test_stop_mid_run),
      cmocka_unit_test(test_connection_limit),
      cmocka_unit_test(test_idle_and_handshake_timeouts),
      cmocka_unit_test(test_not_idle_while_running),
      cmocka_unit_test(test_hostile_frames),
      cmocka_unit_test(test_no_raw_sockets),
      cmocka_unit_test(test_dual_stack_listeners),
      cmocka_unit_test(test_start_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
