/* test_wire: envelopes (md_wire_pack/unpack) for every message type, the
 * version and message checks, error codes, RunRequest sanity checks and the
 * md_path <-> Path/Hop mapping. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "md_addr.h"
#include "md_frame.h"
#include "md_path.h"
#include "md_stats.h"
#include "md_wire.h"

#define V1(x) MTRDIAG__V1__##x

static uint32_t rng_state = 0xC0FFEEu;
/* xorshift32 step. */
static uint32_t rnd(void) {
  uint32_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return rng_state = x;
}

/* Pack msg, run the bytes through a frame decoder one byte at a time and
 * unpack what comes out. Returns the envelope (checked: version, case). */
static Mtrdiag__V1__Envelope *roundtrip(const ProtobufCMessage *msg,
                                        Mtrdiag__V1__Envelope__MsgCase want) {
  uint8_t *buf;
  size_t len;
  char err[256];
  assert_int_equal(md_wire_pack(msg, &buf, &len), 0);
  assert_true(len > MD_FRAME_HDR_LEN);
  assert_int_equal(md_frame_get_header(buf), len - MD_FRAME_HDR_LEN);

  md_frame_decoder *d;
  assert_int_equal(md_frame_decoder_new(0, &d), 0);
  Mtrdiag__V1__Envelope *env = NULL;
  int frames = 0;
  for (size_t i = 0; i < len; i++) {
    const uint8_t *f;
    size_t flen, used;
    int r = md_frame_decoder_feed(d, buf + i, 1, &used, &f, &flen);
    assert_true(r == 0 || r == 1);
    if (r == 1) {
      frames++;
      assert_int_equal(md_wire_unpack(f, flen, &env, err, sizeof err), 0);
    }
  }
  assert_int_equal(frames, 1);
  md_frame_decoder_free(d);
  free(buf);
  assert_non_null(env);
  assert_int_equal(env->version, MD_WIRE_VERSION);
  assert_int_equal(env->msg_case, want);
  assert_non_null(md_wire_msg(env));
  assert_ptr_equal(md_wire_msg(env)->descriptor, msg->descriptor);
  return env;
}

/* ---- a path with everything in it ---- */

static md_addr addr(const char *s) {
  md_addr a;
  assert_int_equal(md_addr_parse(s, &a), 0);
  return a;
}

/* Four hops covering the cases: a named responder, ECMP with MPLS,
 * a silent hop, IPv6 with probes still in transit. */
static md_path *sample_path(void) {
  md_path *p = md_path_new("local", "203.0.113.7", "cvm", 1);
  assert_non_null(p);
  p->started_at_ns = 1700000000123456789LL;
  p->finished_at_ns = 1700000010987654321LL;
  p->complete = true;
  p->reached = true;
  /* TTL 1: one responder with a name; TTL 2: two (ECMP), one with MPLS;
   * TTL 3: silent; TTL 4: IPv6-mapped, all probes answered, some in transit */
  md_hop *h = md_path_hop(p, 1);
  for (int i = 0; i < 10; i++) {
    md_stats_on_sent(&h->st);
    md_stats_on_reply(&h->st, 1000.0 + 37.5 * i);
    md_addr a = addr("198.18.0.1");
    assert_non_null(md_hop_add_host(h, &a, NULL, 0));
  }
  assert_int_equal(md_host_set_hostname(&h->hosts[0], "gw.example"), 0);
  h = md_path_hop(p, 2);
  md_mpls stack[3] = {{16, 0, 0, 1}, {0xFFFFF, 7, 0, 255}, {3, 1, 1, 0}};
  for (int i = 0; i < 10; i++) {
    md_stats_on_sent(&h->st);
    if (i % 3 == 0) {
      md_stats_on_timeout(&h->st);
      continue;
    }
    md_stats_on_reply(&h->st, 5000.0 / (i + 1));
    md_addr a = addr(i % 2 ? "198.18.1.1" : "198.18.2.1");
    assert_non_null(md_hop_add_host(h, &a, i % 2 ? stack : NULL, i % 2 ? 3 : 0));
  }
  h = md_path_hop(p, 3);
  for (int i = 0; i < 10; i++) {
    md_stats_on_sent(&h->st);
    md_stats_on_timeout(&h->st);
  }
  h = md_path_hop(p, 4);
  for (int i = 0; i < 12; i++) {
    md_stats_on_sent(&h->st);
    if (i < 10) {
      md_stats_on_reply(&h->st, 20000.0 + (i * 7919 % 13) * 100.0);
      md_addr a = addr("2001:db8::7");
      assert_non_null(md_hop_add_host(h, &a, NULL, 0));
    }
  }
  return p;
}

/* md_stats equal field by field, doubles bit for bit. */
static void assert_stats_equal(const md_stats *a, const md_stats *b) {
  assert_int_equal(a->sent, b->sent);
  assert_int_equal(a->recv, b->recv);
  assert_int_equal(a->transit, b->transit);
  /* doubles travel bit-exactly */
  assert_memory_equal(&a->last_us, &b->last_us, sizeof(double));
  assert_memory_equal(&a->best_us, &b->best_us, sizeof(double));
  assert_memory_equal(&a->worst_us, &b->worst_us, sizeof(double));
  assert_memory_equal(&a->avg_us, &b->avg_us, sizeof(double));
  assert_memory_equal(&a->ssd_us, &b->ssd_us, sizeof(double));
  assert_memory_equal(&a->gmean_us, &b->gmean_us, sizeof(double));
  assert_memory_equal(&a->jitter_us, &b->jitter_us, sizeof(double));
  assert_memory_equal(&a->javg_us, &b->javg_us, sizeof(double));
  assert_memory_equal(&a->jmax_us, &b->jmax_us, sizeof(double));
  assert_memory_equal(&a->jinta_us, &b->jinta_us, sizeof(double));
  /* and so do the figures derived from them */
  assert_true(md_stats_loss_pct(a) == md_stats_loss_pct(b));
  assert_true(md_stats_stdev_ms(a) == md_stats_stdev_ms(b));
  assert_true(md_stats_jint_ms(a) == md_stats_jint_ms(b));
}

/* Hops, responders, names, counts and MPLS stacks equal. */
static void assert_hops_equal(const md_path *a, const md_path *b) {
  assert_int_equal(a->first_ttl, b->first_ttl);
  assert_int_equal(a->n_hops, b->n_hops);
  for (int i = 0; i < a->n_hops; i++) {
    const md_hop *x = &a->hops[i], *y = &b->hops[i];
    assert_int_equal(x->ttl, y->ttl);
    assert_stats_equal(&x->st, &y->st);
    assert_int_equal(x->n_hosts, y->n_hosts);
    for (int j = 0; j < x->n_hosts; j++) {
      const md_host *hx = &x->hosts[j], *hy = &y->hosts[j];
      assert_true(md_addr_equal(&hx->addr, &hy->addr));
      assert_int_equal(hx->count, hy->count);
      if (hx->hostname)
        assert_string_equal(hx->hostname, hy->hostname);
      else
        assert_null(hy->hostname);
      assert_int_equal(hx->n_mpls, hy->n_mpls);
      for (int k = 0; k < hx->n_mpls; k++) {
        assert_int_equal(hx->mpls[k].label, hy->mpls[k].label);
        assert_int_equal(hx->mpls[k].tc, hy->mpls[k].tc);
        assert_int_equal(hx->mpls[k].s, hy->mpls[k].s);
        assert_int_equal(hx->mpls[k].ttl, hy->mpls[k].ttl);
      }
    }
  }
}

/* Header and hops equal. */
static void assert_paths_equal(const md_path *a, const md_path *b) {
  assert_string_equal(a->source, b->source);
  assert_string_equal(a->target, b->target);
  assert_string_equal(a->target_name, b->target_name);
  assert_true(a->started_at_ns == b->started_at_ns);
  assert_true(a->finished_at_ns == b->finished_at_ns);
  assert_int_equal(a->complete, b->complete);
  assert_int_equal(a->reached, b->reached);
  assert_hops_equal(a, b);
}

/* ---- every message type through pack / frame / unpack ---- */

/* Hello carries versions and the controller's name. */
static void test_hello(void **state) {
  (void)state;
  Mtrdiag__V1__Hello m = MTRDIAG__V1__HELLO__INIT;
  m.protocol_version = MD_WIRE_VERSION;
  m.protocol_revision = MD_WIRE_REVISION;
  m.software_version = "0.1.0";
  m.controller_name = "ops";
  Mtrdiag__V1__Envelope *e = roundtrip(&m.base, V1(ENVELOPE__MSG_HELLO));
  assert_int_equal(e->hello->protocol_version, MD_WIRE_VERSION);
  assert_string_equal(e->hello->software_version, "0.1.0");
  assert_string_equal(e->hello->controller_name, "ops");
  assert_string_equal(md_wire_msg_name(e->msg_case), "Hello");
  md_wire_free(e);
}

/* HelloAck with addresses and capabilities. */
static void test_hello_ack(void **state) {
  (void)state;
  Mtrdiag__V1__Capabilities caps = MTRDIAG__V1__CAPABILITIES__INIT;
  Mtrdiag__V1__Protocol protos[] = {V1(PROTOCOL__PROTOCOL_ICMP), V1(PROTOCOL__PROTOCOL_UDP),
                                    V1(PROTOCOL__PROTOCOL_TCP)};
  caps.raw_sockets = 1;
  caps.n_protocols = 3;
  caps.protocols = protos;
  caps.ipv4 = 1;
  caps.ipv6 = 1;
  char *addrs[] = {"198.51.100.10", "2001:db8::10"};
  Mtrdiag__V1__HelloAck m = MTRDIAG__V1__HELLO_ACK__INIT;
  m.protocol_version = 1;
  m.agent_name = "cvm";
  m.hostname = "cvm-01.example";
  m.software_version = "0.1.0";
  m.n_addresses = 2;
  m.addresses = addrs;
  m.capabilities = &caps;
  m.server_real_ns = 1700000000000000001LL;
  Mtrdiag__V1__Envelope *e = roundtrip(&m.base, V1(ENVELOPE__MSG_HELLO_ACK));
  const Mtrdiag__V1__HelloAck *a = e->hello_ack;
  assert_string_equal(a->agent_name, "cvm");
  assert_string_equal(a->hostname, "cvm-01.example");
  assert_int_equal(a->n_addresses, 2);
  assert_string_equal(a->addresses[1], "2001:db8::10");
  assert_non_null(a->capabilities);
  assert_true(a->capabilities->raw_sockets);
  assert_int_equal(a->capabilities->n_protocols, 3);
  assert_int_equal(a->capabilities->protocols[2], V1(PROTOCOL__PROTOCOL_TCP));
  assert_true(a->capabilities->ipv6);
  assert_false(a->capabilities->one_way_stream);
  assert_true(a->server_real_ns == 1700000000000000001LL);
  md_wire_free(e);
}

/* A RunRequest with every option set to a valid non-default value. */
static Mtrdiag__V1__RunRequest full_request(void) {
  Mtrdiag__V1__RunRequest m = MTRDIAG__V1__RUN_REQUEST__INIT;
  m.run_id = "diag-42.fwd";
  m.target = "203.0.113.7";
  m.target_name = "cvm";
  m.protocol = V1(PROTOCOL__PROTOCOL_UDP);
  m.cycles = 100;
  m.interval_ms = 250;
  m.psize = 1400;
  m.first_ttl = 2;
  m.max_ttl = 40;
  m.max_unknown = 8;
  m.tos = 0xb8;
  m.port = 33434;
  m.local_port = 40000;
  m.gracetime_ms = 3000;
  m.no_dns = 1;
  m.classic = 1;
  m.source = "198.51.100.10";
  m.family = V1(FAMILY__FAMILY_IPV4);
  m.start_at_real_ns = 1700000001000000000LL;
  return m;
}

/* Every RunRequest field survives the trip; zero means default. */
static void test_run_request(void **state) {
  (void)state;
  Mtrdiag__V1__RunRequest m = full_request();
  char err[256];
  assert_int_equal(md_wire_check_run_request(&m, err, sizeof err), 0);
  Mtrdiag__V1__Envelope *e = roundtrip(&m.base, V1(ENVELOPE__MSG_RUN_REQUEST));
  const Mtrdiag__V1__RunRequest *r = e->run_request;
  assert_string_equal(r->run_id, "diag-42.fwd");
  assert_string_equal(r->target, "203.0.113.7");
  assert_string_equal(r->target_name, "cvm");
  assert_int_equal(r->protocol, V1(PROTOCOL__PROTOCOL_UDP));
  assert_int_equal(r->cycles, 100);
  assert_int_equal(r->interval_ms, 250);
  assert_int_equal(r->psize, 1400);
  assert_int_equal(r->first_ttl, 2);
  assert_int_equal(r->max_ttl, 40);
  assert_int_equal(r->max_unknown, 8);
  assert_int_equal(r->tos, 0xb8);
  assert_int_equal(r->port, 33434);
  assert_int_equal(r->local_port, 40000);
  assert_int_equal(r->gracetime_ms, 3000);
  assert_true(r->no_dns);
  assert_true(r->classic);
  assert_string_equal(r->source, "198.51.100.10");
  assert_int_equal(r->family, V1(FAMILY__FAMILY_IPV4));
  assert_true(r->start_at_real_ns == 1700000001000000000LL);
  assert_int_equal(md_wire_check_run_request(r, err, sizeof err), 0);
  md_wire_free(e);

  /* an all-default request is small and still valid */
  Mtrdiag__V1__RunRequest d = MTRDIAG__V1__RUN_REQUEST__INIT;
  d.run_id = "r";
  d.target = "2001:db8::1";
  e = roundtrip(&d.base, V1(ENVELOPE__MSG_RUN_REQUEST));
  assert_int_equal(e->run_request->cycles, 0);
  assert_int_equal(e->run_request->protocol, V1(PROTOCOL__PROTOCOL_ICMP));
  assert_string_equal(e->run_request->source, "");
  assert_int_equal(md_wire_check_run_request(e->run_request, err, sizeof err), 0);
  md_wire_free(e);
}

/* The small run-control messages. */
static void test_run_accepted_cancel_error(void **state) {
  (void)state;
  Mtrdiag__V1__RunAccepted a = MTRDIAG__V1__RUN_ACCEPTED__INIT;
  a.run_id = "r1";
  a.started_at_real_ns = 42;
  Mtrdiag__V1__Envelope *e = roundtrip(&a.base, V1(ENVELOPE__MSG_RUN_ACCEPTED));
  assert_string_equal(e->run_accepted->run_id, "r1");
  assert_true(e->run_accepted->started_at_real_ns == 42);
  md_wire_free(e);

  Mtrdiag__V1__Cancel c = MTRDIAG__V1__CANCEL__INIT;
  c.run_id = "r1";
  e = roundtrip(&c.base, V1(ENVELOPE__MSG_CANCEL));
  assert_string_equal(e->cancel->run_id, "r1");
  md_wire_free(e);

  Mtrdiag__V1__Error er = MTRDIAG__V1__ERROR__INIT;
  er.code = V1(ERROR_CODE__ERROR_CODE_POLICY_DENIED);
  er.message = "target 192.0.2.1 not in allow_targets";
  er.run_id = "r2";
  e = roundtrip(&er.base, V1(ENVELOPE__MSG_ERROR));
  assert_int_equal(e->error->code, V1(ERROR_CODE__ERROR_CODE_POLICY_DENIED));
  assert_string_equal(md_wire_error_name(e->error->code), "POLICY_DENIED");
  assert_string_equal(e->error->message, "target 192.0.2.1 not in allow_targets");
  assert_string_equal(e->error->run_id, "r2");
  md_wire_free(e);
}

/* The four timestamps of a clock offset measurement. */
static void test_time_sync(void **state) {
  (void)state;
  Mtrdiag__V1__TimeSyncRequest q = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
  q.seq = 7;
  q.client_send_real_ns = 1700000000000000000LL;
  Mtrdiag__V1__Envelope *e = roundtrip(&q.base, V1(ENVELOPE__MSG_TIME_SYNC_REQUEST));
  assert_int_equal(e->time_sync_request->seq, 7);
  assert_true(e->time_sync_request->client_send_real_ns == 1700000000000000000LL);
  md_wire_free(e);

  Mtrdiag__V1__TimeSyncReply r = MTRDIAG__V1__TIME_SYNC_REPLY__INIT;
  r.seq = 7;
  r.client_send_real_ns = 1;
  r.server_recv_real_ns = 2;
  r.server_send_real_ns = 3;
  e = roundtrip(&r.base, V1(ENVELOPE__MSG_TIME_SYNC_REPLY));
  assert_int_equal(e->time_sync_reply->seq, 7);
  assert_true(e->time_sync_reply->client_send_real_ns == 1);
  assert_true(e->time_sync_reply->server_recv_real_ns == 2);
  assert_true(e->time_sync_reply->server_send_real_ns == 3);
  md_wire_free(e);
}

/* The reserved one-way stream messages already pack and unpack. */
static void test_stream(void **state) {
  (void)state;
  uint8_t token[16];
  for (int i = 0; i < 16; i++)
    token[i] = (uint8_t)(0xA0 + i);
  Mtrdiag__V1__StreamRequest q = MTRDIAG__V1__STREAM_REQUEST__INIT;
  q.stream_id = "s1";
  q.role = V1(STREAM_ROLE__STREAM_ROLE_RECEIVE);
  q.peer = "198.51.100.10";
  q.port = 7448;
  q.count = 400;
  q.interval_us = 20000;
  q.psize = 100;
  q.start_at_real_ns = 5;
  q.token.len = sizeof token;
  q.token.data = token;
  Mtrdiag__V1__Envelope *e = roundtrip(&q.base, V1(ENVELOPE__MSG_STREAM_REQUEST));
  assert_int_equal(e->stream_request->role, V1(STREAM_ROLE__STREAM_ROLE_RECEIVE));
  assert_int_equal(e->stream_request->count, 400);
  assert_int_equal(e->stream_request->token.len, 16);
  assert_memory_equal(e->stream_request->token.data, token, 16);
  md_wire_free(e);

  Mtrdiag__V1__StreamResult r = MTRDIAG__V1__STREAM_RESULT__INIT;
  r.stream_id = "s1";
  r.status = V1(RUN_STATUS__RUN_STATUS_OK);
  r.sent = 400;
  r.received = 300;
  r.duplicates = 1;
  r.reordered = 2;
  r.delay_min_ns = -1500000; /* clocks apart: raw one-way delays may be negative */
  r.delay_avg_ns = 21300000;
  r.delay_max_ns = 40000000;
  r.delay_stdev_ns = 400000;
  e = roundtrip(&r.base, V1(ENVELOPE__MSG_STREAM_RESULT));
  assert_int_equal(e->stream_result->received, 300);
  assert_true(e->stream_result->delay_min_ns == -1500000);
  assert_true(e->stream_result->delay_stdev_ns == 400000);
  md_wire_free(e);
}

/* Agent path -> HopUpdate -> controller path: the same hops. */
static void test_hop_update_roundtrip(void **state) {
  (void)state;
  md_path *p = sample_path();
  Mtrdiag__V1__HopUpdate *u;
  assert_int_equal(md_wire_hop_update_new("r1", 10, p, &u), 0);
  assert_int_equal(u->n_hops, 4);
  Mtrdiag__V1__Envelope *e = roundtrip(&u->base, V1(ENVELOPE__MSG_HOP_UPDATE));
  md_wire_free(u);
  assert_string_equal(e->hop_update->run_id, "r1");
  assert_int_equal(e->hop_update->cycles_done, 10);

  md_path *q;
  char err[256];
  assert_int_equal(
      md_wire_hop_update_to_path(e->hop_update, "local", "203.0.113.7", "cvm", &q, err, sizeof err),
      0);
  assert_hops_equal(p, q);
  assert_string_equal(q->source, "local");
  md_path_free(q);
  md_wire_free(e);

  /* an update before any hop answered */
  md_path *empty = md_path_new("local", "203.0.113.7", "cvm", 3);
  assert_int_equal(md_wire_hop_update_new("r1", 0, empty, &u), 0);
  e = roundtrip(&u->base, V1(ENVELOPE__MSG_HOP_UPDATE));
  md_wire_free(u);
  assert_int_equal(e->hop_update->n_hops, 0);
  assert_int_equal(md_wire_hop_update_to_path(e->hop_update, NULL, NULL, NULL, &q, err, sizeof err),
                   0);
  assert_int_equal(q->n_hops, 0);
  md_path_free(q);
  md_wire_free(e);
  md_path_free(empty);
  md_path_free(p);
}

/* Agent path -> RunResult -> controller path, and back to the same bytes. */
static void test_run_result_roundtrip(void **state) {
  (void)state;
  md_path *p = sample_path();
  Mtrdiag__V1__RunResult *rr;
  assert_int_equal(md_wire_run_result_new("r1", md_wire_run_status(0), NULL, 10, p, &rr), 0);
  Mtrdiag__V1__Envelope *e = roundtrip(&rr->base, V1(ENVELOPE__MSG_RUN_RESULT));
  md_wire_free(rr);
  const Mtrdiag__V1__RunResult *r = e->run_result;
  assert_string_equal(r->run_id, "r1");
  assert_int_equal(r->status, V1(RUN_STATUS__RUN_STATUS_OK));
  assert_string_equal(r->message, "");
  assert_int_equal(r->cycles_done, 10);
  assert_non_null(r->path);
  assert_int_equal(r->path->first_ttl, 1);
  assert_string_equal(r->path->hops[0]->hosts[0]->hostname, "gw.example");
  assert_string_equal(r->path->hops[3]->hosts[0]->ip, "2001:db8::7");
  assert_int_equal(r->path->hops[2]->n_hosts, 0);

  md_path *q;
  char err[256];
  assert_int_equal(md_wire_path_from_pb(r->path, &q, err, sizeof err), 0);
  assert_paths_equal(p, q);

  /* and back again: the second trip is identical to the first */
  Mtrdiag__V1__Path *pb;
  assert_int_equal(md_wire_path_to_pb(q, &pb), 0);
  size_t n1 = mtrdiag__v1__path__get_packed_size(r->path);
  size_t n2 = mtrdiag__v1__path__get_packed_size(pb);
  assert_int_equal(n1, n2);
  uint8_t *b1 = malloc(n1), *b2 = malloc(n2);
  mtrdiag__v1__path__pack(r->path, b1);
  mtrdiag__v1__path__pack(pb, b2);
  assert_memory_equal(b1, b2, n1);
  free(b1);
  free(b2);
  md_wire_free(pb);
  md_path_free(q);
  md_wire_free(e);

  /* a failed run: status, message, no path */
  assert_int_equal(md_wire_run_result_new("r2", md_wire_run_status(-EADDRNOTAVAIL),
                                          "no route to 203.0.113.7", 0, NULL, &rr),
                   0);
  e = roundtrip(&rr->base, V1(ENVELOPE__MSG_RUN_RESULT));
  md_wire_free(rr);
  assert_int_equal(e->run_result->status, V1(RUN_STATUS__RUN_STATUS_FAILED));
  assert_string_equal(e->run_result->message, "no route to 203.0.113.7");
  assert_null(e->run_result->path);
  assert_int_equal(md_wire_path_from_pb(e->run_result->path, &q, err, sizeof err), MD_WIRE_EFIELD);
  assert_null(q);
  md_wire_free(e);
  assert_int_equal(md_wire_run_status(-ECANCELED), V1(RUN_STATUS__RUN_STATUS_CANCELLED));
  md_path_free(p);
}

/* The largest path md_path can hold: 255 hops x 16 responders x 8 labels,
 * each with a long host name. Over 1 MiB, so it must be refused cleanly;
 * without names it fits, and unpacks within the memory budget. */
static void test_biggest_path(void **state) {
  (void)state;
  md_path *p = md_path_new("local", "2001:db8::ffff", "cvm", 1);
  md_mpls stack[MD_MAX_MPLS];
  for (int k = 0; k < MD_MAX_MPLS; k++)
    stack[k] = (md_mpls){(uint32_t)(0xF0000 + k), 5, k == MD_MAX_MPLS - 1, 254};
  char name[250];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = 0;
  for (int ttl = 1; ttl <= MD_MAX_TTL; ttl++) {
    md_hop *h = md_path_hop(p, ttl);
    for (int i = 0; i < 100; i++) {
      md_stats_on_sent(&h->st);
      md_stats_on_reply(&h->st, 12345.678 + i);
    }
    for (int j = 0; j < MD_MAX_HOSTS; j++) {
      char ip[64];
      snprintf(ip, sizeof ip, "2001:db8:%x:%x:ffff:ffff:ffff:%x", ttl, j, ttl * 16 + j);
      md_addr a = addr(ip);
      md_host *host = md_hop_add_host(h, &a, stack, MD_MAX_MPLS);
      host->count = 100000;
      assert_int_equal(md_host_set_hostname(host, name), 0);
    }
  }
  Mtrdiag__V1__RunResult *rr;
  uint8_t *buf;
  size_t len;
  assert_int_equal(md_wire_run_result_new("big", V1(RUN_STATUS__RUN_STATUS_OK), "", 100, p, &rr),
                   0);
  assert_int_equal(md_wire_pack(&rr->base, &buf, &len), -EMSGSIZE);
  md_wire_free(rr);

  for (int ttl = 1; ttl <= MD_MAX_TTL; ttl++)
    for (int j = 0; j < MD_MAX_HOSTS; j++) {
      assert_int_equal(md_host_set_hostname(&p->hops[ttl - 1].hosts[j], NULL), 0);
    }
  assert_int_equal(md_wire_run_result_new("big", V1(RUN_STATUS__RUN_STATUS_OK), "", 100, p, &rr),
                   0);
  Mtrdiag__V1__Envelope *e = roundtrip(&rr->base, V1(ENVELOPE__MSG_RUN_RESULT));
  md_wire_free(rr);
  md_path *q;
  char err[256];
  assert_int_equal(md_wire_path_from_pb(e->run_result->path, &q, err, sizeof err), 0);
  assert_paths_equal(p, q);
  md_path_free(q);
  md_wire_free(e);
  md_path_free(p);
}

/* ---- what unpack refuses ---- */

/* Pack an envelope as-is (no version fixing) into bytes. */
static uint8_t *raw_envelope(const Mtrdiag__V1__Envelope *env, size_t *len) {
  *len = mtrdiag__v1__envelope__get_packed_size(env);
  uint8_t *b = malloc(*len ? *len : 1);
  mtrdiag__v1__envelope__pack(env, b);
  return b;
}

/* Another protocol version, or none, is refused with the number named. */
static void test_wrong_version(void **state) {
  (void)state;
  Mtrdiag__V1__Cancel c = MTRDIAG__V1__CANCEL__INIT;
  c.run_id = "r1";
  Mtrdiag__V1__Envelope env = MTRDIAG__V1__ENVELOPE__INIT;
  env.msg_case = V1(ENVELOPE__MSG_CANCEL);
  env.cancel = &c;
  Mtrdiag__V1__Envelope *out = (void *)1;
  char err[256];
  size_t len;

  env.version = 2;
  uint8_t *b = raw_envelope(&env, &len);
  assert_int_equal(md_wire_unpack(b, len, &out, err, sizeof err), MD_WIRE_EVERSION);
  assert_null(out);
  assert_non_null(strstr(err, "version 2"));
  assert_int_equal(md_wire_error_code(MD_WIRE_EVERSION),
                   V1(ERROR_CODE__ERROR_CODE_VERSION_MISMATCH));
  free(b);

  env.version = 0; /* absent */
  b = raw_envelope(&env, &len);
  assert_int_equal(md_wire_unpack(b, len, &out, err, sizeof err), MD_WIRE_EVERSION);
  assert_non_null(strstr(err, "no protocol version"));
  free(b);
}

/* An envelope without a message, or with one from a newer revision. */
static void test_no_or_unknown_message(void **state) {
  (void)state;
  Mtrdiag__V1__Envelope *out;
  char err[256];
  /* version 1 and nothing else */
  const uint8_t bare[] = {0x08, 0x01};
  assert_int_equal(md_wire_unpack(bare, sizeof bare, &out, err, sizeof err), MD_WIRE_ENOMSG);
  assert_non_null(strstr(err, "no message"));
  /* version 1 and a message field (15) from a newer revision */
  const uint8_t newer[] = {0x08, 0x01, 0x7a, 0x02, 0x08, 0x05};
  assert_int_equal(md_wire_unpack(newer, sizeof newer, &out, err, sizeof err), MD_WIRE_ENOMSG);
  assert_non_null(strstr(err, "field 15"));
  assert_int_equal(md_wire_error_code(MD_WIRE_ENOMSG),
                   V1(ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE));
  /* an empty payload is an envelope without a version */
  assert_int_equal(md_wire_unpack(NULL, 0, &out, err, sizeof err), MD_WIRE_EVERSION);
  /* unknown fields inside a known message are ignored: Cancel { run_id = "r1", field 31 = 7 } */
  const uint8_t extra2[] = {0x08, 0x01, 0x42, 0x07, 0x0a, 0x02, 'r', '1', 0xf8, 0x01, 0x07};
  assert_int_equal(md_wire_unpack(extra2, sizeof extra2, &out, err, sizeof err), 0);
  assert_string_equal(out->cancel->run_id, "r1");
  md_wire_free(out);
}

/* Malformed protobuf is "bytes do not unpack as an Envelope". */
static void test_bad_bytes(void **state) {
  (void)state;
  Mtrdiag__V1__Envelope *out = (void *)1;
  char err[256];
  /* a length-delimited field running past the end */
  const uint8_t trunc[] = {0x08, 0x01, 0x42, 0x7f, 0x0a};
  assert_int_equal(md_wire_unpack(trunc, sizeof trunc, &out, err, sizeof err), MD_WIRE_EUNPACK);
  assert_null(out);
  assert_non_null(strstr(err, "do not unpack as an Envelope"));
  /* wire type 7 does not exist */
  const uint8_t wt[] = {0x0f};
  assert_int_equal(md_wire_unpack(wt, sizeof wt, &out, err, sizeof err), MD_WIRE_EUNPACK);
  /* varint that never ends */
  const uint8_t vi[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(md_wire_unpack(vi, sizeof vi, &out, err, sizeof err), MD_WIRE_EUNPACK);
  /* field number 0, as an overlong tag inside a Cancel: protobuf-c keeps it
   * as an unknown field, which would re-pack into bytes nothing unpacks */
  uint8_t f0[] = {0x08, 0x01, 0x42, 0x07, 0x0a, 0x02, 'r', '1', 0x80, 0x00, 0x05};
  assert_int_equal(md_wire_unpack(f0, sizeof f0, &out, err, sizeof err), MD_WIRE_EUNPACK);
  assert_non_null(strstr(err, "field number 0"));
  f0[9] = 0x01; /* the same as field 16: a legitimate unknown field */
  assert_int_equal(md_wire_unpack(f0, sizeof f0, &out, err, sizeof err), 0);
  md_wire_free(out);
  assert_int_equal(md_wire_unpack(NULL, 3, &out, err, sizeof err), -EINVAL);
  assert_int_equal(md_wire_error_code(MD_WIRE_EUNPACK), V1(ERROR_CODE__ERROR_CODE_BAD_MESSAGE));
}

/* Random payloads: only the documented outcomes, never a crash or a leak. */
static void test_random_bytes(void **state) {
  (void)state;
  int ok = 0;
  for (int round = 0; round < 20000; round++) {
    uint8_t buf[300];
    size_t n = rnd() % sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = (uint8_t)rnd();
    if (n >= 2 && round % 4 == 0) { /* start like a real envelope */
      buf[0] = 0x08;
      buf[1] = 0x01;
    }
    Mtrdiag__V1__Envelope *out = (void *)1;
    char err[256] = "";
    int r = md_wire_unpack(buf, n, &out, err, sizeof err);
    if (r == 0) {
      ok++;
      assert_non_null(md_wire_msg(out));
      md_wire_free(out);
    } else {
      assert_true(r == MD_WIRE_EUNPACK || r == MD_WIRE_EVERSION || r == MD_WIRE_ENOMSG);
      assert_null(out);
      assert_true(err[0] != 0);
    }
  }
  (void)ok;
}

/* An Envelope holding a HopUpdate of n empty Hops, as raw bytes. */
static uint8_t *empty_hops_envelope(size_t n_hops, size_t *len) {
  size_t body = 2 * n_hops;
  uint8_t *b = malloc(3 + 5 + body), *p = b;
  *p++ = 0x08; /* version = 1 */
  *p++ = 0x01;
  *p++ = 0x32; /* field 6 (hop_update), length-delimited */
  for (size_t v = body;; v >>= 7) {
    if (v < 0x80) {
      *p++ = (uint8_t)v;
      break;
    }
    *p++ = (uint8_t)(v | 0x80);
  }
  for (size_t i = 0; i < n_hops; i++) {
    *p++ = 0x1a; /* HopUpdate.hops (field 3), empty */
    *p++ = 0x00;
  }
  *len = (size_t)(p - b);
  return b;
}

/* A 600 KB frame of empty Hops would cost ~50 MiB to unpack: refused. */
static void test_unpack_budget(void **state) {
  (void)state;
  Mtrdiag__V1__Envelope *out = (void *)1;
  char err[256];
  size_t len;
  uint8_t *b = empty_hops_envelope(300000, &len);
  assert_true(len <= MD_FRAME_MAX);
  assert_int_equal(md_wire_unpack(b, len, &out, err, sizeof err), MD_WIRE_EBUDGET);
  assert_null(out);
  assert_int_equal(md_wire_error_code(MD_WIRE_EBUDGET), V1(ERROR_CODE__ERROR_CODE_BAD_MESSAGE));
  free(b);
  /* a few thousand are fine */
  b = empty_hops_envelope(2000, &len);
  assert_int_equal(md_wire_unpack(b, len, &out, err, sizeof err), 0);
  assert_int_equal(out->hop_update->n_hops, 2000);
  md_wire_free(out);
  free(b);
}

/* Pack refuses non-members and messages over the frame limit. */
static void test_pack_refuses(void **state) {
  (void)state;
  uint8_t *buf;
  size_t len;
  /* not an Envelope member */
  Mtrdiag__V1__Hop hop = MTRDIAG__V1__HOP__INIT;
  assert_int_equal(md_wire_pack(&hop.base, &buf, &len), -EINVAL);
  assert_int_equal(md_wire_pack(NULL, &buf, &len), -EINVAL);
  /* over the frame limit */
  char *big = malloc(MD_FRAME_MAX + 1);
  memset(big, 'x', MD_FRAME_MAX);
  big[MD_FRAME_MAX] = 0;
  Mtrdiag__V1__Error e = MTRDIAG__V1__ERROR__INIT;
  e.message = big;
  assert_int_equal(md_wire_pack(&e.base, &buf, &len), -EMSGSIZE);
  free(big);
}

/* ---- errors ---- */

static void test_error_names(void **state) {
  (void)state;
  const int codes[] = {MD_WIRE_EUNPACK, MD_WIRE_EBUDGET, MD_WIRE_EVERSION, MD_WIRE_ENOMSG,
                       MD_WIRE_EFIELD,  -EMSGSIZE,       -EBADMSG,         -ENOMEM};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    assert_non_null(md_wire_strerror(codes[i]));
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(md_wire_strerror(codes[i]), md_wire_strerror(codes[j]));
  }
  assert_string_equal(md_wire_strerror(MD_WIRE_EUNPACK), "bytes do not unpack as an Envelope");
  assert_int_equal(md_wire_error_code(-EMSGSIZE), V1(ERROR_CODE__ERROR_CODE_BAD_FRAME));
  assert_int_equal(md_wire_error_code(-EBADMSG), V1(ERROR_CODE__ERROR_CODE_BAD_FRAME));
  assert_int_equal(md_wire_error_code(MD_WIRE_EFIELD), V1(ERROR_CODE__ERROR_CODE_BAD_REQUEST));
  assert_int_equal(md_wire_error_code(-ENOMEM), V1(ERROR_CODE__ERROR_CODE_INTERNAL));
  assert_string_equal(md_wire_error_name(V1(ERROR_CODE__ERROR_CODE_BAD_FRAME)), "BAD_FRAME");
  assert_string_equal(md_wire_error_name(V1(ERROR_CODE__ERROR_CODE_UNKNOWN_RUN)), "UNKNOWN_RUN");
  assert_string_equal(md_wire_error_name((Mtrdiag__V1__ErrorCode)999), "UNKNOWN");
  assert_string_equal(md_wire_error_name((Mtrdiag__V1__ErrorCode)-1), "UNKNOWN");
  /* every code in the schema has a name */
  for (unsigned i = 0; i < mtrdiag__v1__error_code__descriptor.n_values; i++) {
    const ProtobufCEnumValue *v = &mtrdiag__v1__error_code__descriptor.values[i];
    assert_string_equal(md_wire_error_name((Mtrdiag__V1__ErrorCode)v->value),
                        v->name + strlen("ERROR_CODE_"));
  }
  /* and every message type a name */
  for (unsigned i = 0; i < mtrdiag__v1__envelope__descriptor.n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &mtrdiag__v1__envelope__descriptor.fields[i];
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
      assert_string_equal(md_wire_msg_name((Mtrdiag__V1__Envelope__MsgCase)f->id),
                          ((const ProtobufCMessageDescriptor *)f->descriptor)->short_name);
  }
}

/* UTF-8 validation and control characters. */
static void test_text_ok(void **state) {
  (void)state;
  assert_true(md_wire_text_ok(NULL, 0));
  assert_true(md_wire_text_ok("", 0));
  assert_true(md_wire_text_ok("gw-1.example.net", 255));
  assert_true(md_wire_text_ok("r\xc3\xa9seau \xe2\x86\x92 \xf0\x9f\x9b\xb0", 255));
  assert_false(md_wire_text_ok("abcd", 3));
  assert_false(md_wire_text_ok("a\nb", 255));
  assert_false(md_wire_text_ok("a\x1b[31m", 255)); /* terminal escapes */
  assert_false(md_wire_text_ok("\x7f", 255));
  assert_false(md_wire_text_ok("\xc2\x85", 255));         /* C1 control NEL */
  assert_false(md_wire_text_ok("\xc0\xaf", 255));         /* overlong '/' */
  assert_false(md_wire_text_ok("\xe0\x80\xaf", 255));     /* overlong, 3 bytes */
  assert_false(md_wire_text_ok("\xed\xa0\x80", 255));     /* surrogate */
  assert_false(md_wire_text_ok("\xf4\x90\x80\x80", 255)); /* over U+10FFFF */
  assert_false(md_wire_text_ok("\xe2\x86", 255));         /* truncated */
  assert_false(md_wire_text_ok("\xff", 255));
}

/* ---- RunRequest sanity ---- */

static void expect_bad(const Mtrdiag__V1__RunRequest *r, const char *field) {
  char err[256] = "";
  assert_int_equal(md_wire_check_run_request(r, err, sizeof err), MD_WIRE_EFIELD);
  if (!strstr(err, field))
    fail_msg("error \"%s\" does not name %s", err, field);
}

/* Each nonsense value is refused with its field named; limits pass. */
static void test_check_run_request(void **state) {
  (void)state;
  Mtrdiag__V1__RunRequest r;
  char err[256];

#define BAD(field, stmt)                                                                           \
  do {                                                                                             \
    r = full_request();                                                                            \
    stmt;                                                                                          \
    expect_bad(&r, field);                                                                         \
  } while (0)
  BAD("run_id", r.run_id = "");
  BAD("run_id", r.run_id = "a b");
  BAD("run_id", r.run_id = "r/../x");
  BAD("run_id",
      r.run_id = "0123456789012345678901234567890123456789012345678901234567890123456789");
  BAD("target", r.target = "");
  BAD("target", r.target = "cvm.example.com");
  BAD("target", r.target = "0.0.0.0");
  BAD("target", r.target = "::");
  BAD("target", r.target = "224.0.0.1");
  BAD("target", r.target = "255.255.255.255");
  BAD("target", r.target = "203.0.113.7:80");
  BAD("protocol", r.protocol = (Mtrdiag__V1__Protocol)3);
  BAD("family", r.family = V1(FAMILY__FAMILY_IPV6));
  BAD("family", r.family = (Mtrdiag__V1__Family)9);
  BAD("source", r.source = "2001:db8::1");
  BAD("source", r.source = "not-an-address");
  BAD("cycles", r.cycles = MD_WIRE_MAX_CYCLES + 1);
  BAD("interval_ms", r.interval_ms = MD_WIRE_MAX_INTERVAL_MS + 1);
  BAD("psize", r.psize = 65536);
  BAD("first_ttl", r.first_ttl = 256);
  BAD("max_ttl", r.max_ttl = 256);
  BAD("max_unknown", r.max_unknown = 1000);
  BAD("tos", r.tos = 256);
  BAD("port", r.port = 65536);
  BAD("local_port", r.local_port = 70000);
  BAD("gracetime_ms", r.gracetime_ms = MD_WIRE_MAX_GRACE_MS + 1);
  BAD("first_ttl", (r.first_ttl = 41, r.max_ttl = 40));
  BAD("first_ttl", (r.first_ttl = 31, r.max_ttl = 0)); /* beyond the default 30 */
  BAD("start_at_real_ns", r.start_at_real_ns = -1);
  BAD("target_name", r.target_name = "cvm\x1b]0;pwned\x07");
  BAD("target_name", {
    static char name[300];
    memset(name, 'a', 299);
    r.target_name = name;
  });
#undef BAD
  assert_int_equal(md_wire_check_run_request(NULL, err, sizeof err), MD_WIRE_EFIELD);

  /* limits themselves pass */
  r = full_request();
  r.first_ttl = 255;
  r.max_ttl = 255;
  r.port = 65535;
  r.tos = 255;
  r.cycles = MD_WIRE_MAX_CYCLES;
  assert_int_equal(md_wire_check_run_request(&r, err, sizeof err), 0);
  r = full_request();
  r.family = V1(FAMILY__FAMILY_ANY);
  r.target = "2001:db8::7";
  r.source = "";
  assert_int_equal(md_wire_check_run_request(&r, NULL, 0), 0);
  assert_int_equal(md_wire_check_run_id("a-Z_0.9:x", NULL, 0), 0);
}

/* ---- what md_wire_path_from_pb refuses ---- */

static void expect_bad_path(void (*spoil)(Mtrdiag__V1__Path *pb), const char *what) {
  md_path *p = sample_path(), *q = (void *)1;
  Mtrdiag__V1__Path *pb;
  char err[256] = "";
  assert_int_equal(md_wire_path_to_pb(p, &pb), 0);
  spoil(pb);
  assert_int_equal(md_wire_path_from_pb(pb, &q, err, sizeof err), MD_WIRE_EFIELD);
  assert_null(q);
  if (!strstr(err, what))
    fail_msg("error \"%s\" does not mention %s", err, what);
  md_wire_free(pb);
  md_path_free(p);
}

/* Ways a received Path can be wrong, one each. */
static void spoil_ttl_order(Mtrdiag__V1__Path *pb) {
  pb->hops[2]->ttl = 1;
}
static void spoil_ttl_range(Mtrdiag__V1__Path *pb) {
  pb->hops[3]->ttl = 256;
}
static void spoil_first_ttl(Mtrdiag__V1__Path *pb) {
  pb->first_ttl = 2;
}
static void spoil_counts(Mtrdiag__V1__Path *pb) {
  pb->hops[0]->recv = pb->hops[0]->sent + 1;
}
static void spoil_nan(Mtrdiag__V1__Path *pb) {
  pb->hops[1]->avg_us = NAN;
}
static void spoil_negative(Mtrdiag__V1__Path *pb) {
  pb->hops[1]->jmax_us = -1;
}
static void spoil_ip(Mtrdiag__V1__Path *pb) {
  free(pb->hops[0]->hosts[0]->ip);
  pb->hops[0]->hosts[0]->ip = strdup("gw.example");
}
static void spoil_dup(Mtrdiag__V1__Path *pb) {
  free(pb->hops[1]->hosts[1]->ip);
  pb->hops[1]->hosts[1]->ip = strdup(pb->hops[1]->hosts[0]->ip);
}
static void spoil_label(Mtrdiag__V1__Path *pb) {
  Mtrdiag__V1__Host *h =
      pb->hops[1]->hosts[0]->n_mpls ? pb->hops[1]->hosts[0] : pb->hops[1]->hosts[1];
  h->mpls[0]->label = 0x100000;
}
static void spoil_hosts(Mtrdiag__V1__Path *pb) {
  Mtrdiag__V1__Hop *h = pb->hops[0];
  Mtrdiag__V1__Host **hosts = realloc(h->hosts, (MD_MAX_HOSTS + 1) * sizeof *hosts);
  for (size_t i = h->n_hosts; i < MD_MAX_HOSTS + 1; i++) {
    hosts[i] = malloc(sizeof **hosts);
    mtrdiag__v1__host__init(hosts[i]);
    char ip[32];
    snprintf(ip, sizeof ip, "198.18.9.%zu", i);
    hosts[i]->ip = strdup(ip);
  }
  h->hosts = hosts;
  h->n_hosts = MD_MAX_HOSTS + 1;
}
static void spoil_mpls_count(Mtrdiag__V1__Path *pb) {
  Mtrdiag__V1__Host *h = pb->hops[0]->hosts[0];
  h->mpls = calloc(MD_MAX_MPLS + 1, sizeof *h->mpls);
  for (size_t i = 0; i < MD_MAX_MPLS + 1; i++) {
    h->mpls[i] = malloc(sizeof **h->mpls);
    mtrdiag__v1__mpls__init(h->mpls[i]);
  }
  h->n_mpls = MD_MAX_MPLS + 1;
}
static void spoil_name_bytes(Mtrdiag__V1__Path *pb) {
  free(pb->hops[0]->hosts[0]->hostname);
  pb->hops[0]->hosts[0]->hostname = strdup("gw\xff.example");
}
static void spoil_source(Mtrdiag__V1__Path *pb) {
  free(pb->source);
  pb->source = strdup("local\r\nX: y");
}
static void spoil_name(Mtrdiag__V1__Path *pb) {
  free(pb->hops[0]->hosts[0]->hostname);
  pb->hops[0]->hosts[0]->hostname = malloc(400);
  memset(pb->hops[0]->hosts[0]->hostname, 'h', 399);
  pb->hops[0]->hosts[0]->hostname[399] = 0;
}

/* Each spoiled Path is refused, the reason naming what is wrong. */
static void test_path_from_pb_refuses(void **state) {
  (void)state;
  expect_bad_path(spoil_ttl_order, "out of order");
  expect_bad_path(spoil_ttl_range, "TTL 256");
  expect_bad_path(spoil_first_ttl, "out of order");
  expect_bad_path(spoil_counts, "sent");
  expect_bad_path(spoil_nan, "avg_us");
  expect_bad_path(spoil_negative, "jmax_us");
  expect_bad_path(spoil_ip, "numeric");
  expect_bad_path(spoil_dup, "twice");
  expect_bad_path(spoil_label, "MPLS");
  expect_bad_path(spoil_hosts, "responders");
  expect_bad_path(spoil_mpls_count, "MPLS");
  expect_bad_path(spoil_name, "host name");
  expect_bad_path(spoil_name_bytes, "host name");
  expect_bad_path(spoil_source, "source");
}

/* Each test is independent; cmocka runs them in order. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello),
      cmocka_unit_test(test_hello_ack),
      cmocka_unit_test(test_run_request),
      cmocka_unit_test(test_run_accepted_cancel_error),
      cmocka_unit_test(test_time_sync),
      cmocka_unit_test(test_stream),
      cmocka_unit_test(test_hop_update_roundtrip),
      cmocka_unit_test(test_run_result_roundtrip),
      cmocka_unit_test(test_biggest_path),
      cmocka_unit_test(test_wrong_version),
      cmocka_unit_test(test_no_or_unknown_message),
      cmocka_unit_test(test_bad_bytes),
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_unpack_budget),
      cmocka_unit_test(test_pack_refuses),
      cmocka_unit_test(test_error_names),
      cmocka_unit_test(test_text_ok),
      cmocka_unit_test(test_check_run_request),
      cmocka_unit_test(test_path_from_pb_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
