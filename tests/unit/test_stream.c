/* One-way streams: the packet format, the request checks and defaults, the
 * policy's share for streams, md_stream on one loop over 127.0.0.1 / ::1
 * (counts, duplicates, reordering, strays, late start, cancel), the
 * controller's md_oneway_compute and md_oneway_request, and two in-process
 * agents (md_daemon) driven by md_client: a stream from one to the other
 * through StreamRequest / StreamAccepted / StreamResult, refusals, cancel,
 * and a session that ends mid-stream. Only loopback addresses are used. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "daemon.h"
#include "md_pki.h"
#include "md_time.h"
#include "md_wire.h"
#include "oneway.h"
#include "policy.h"
#include "stream.h"

static char g_dir[256];
static md_tls_ctx *g_ops_ctx;

static const uint8_t TOKEN[MD_STREAM_TOKEN_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                   9, 10, 11, 12, 13, 14, 15, 16};

/* ---- a loop with a guard timer */

typedef struct loopctx {
  uv_loop_t loop;
  uv_timer_t guard;
  bool timed_out;
} loopctx;

/* The guard fired: PUMP_UNTIL gives up. */
static void on_guard(uv_timer_t *t) {
  ((loopctx *)t->data)->timed_out = true;
}

/* Run the loop until COND holds or MS milliseconds pass; then COND is asserted. */
#define PUMP_UNTIL(L, MS, COND)                                                                    \
  do {                                                                                             \
    (L)->timed_out = false;                                                                        \
    uv_timer_start(&(L)->guard, on_guard, (MS), 0);                                                \
    while (!(COND) && !(L)->timed_out)                                                             \
      uv_run(&(L)->loop, UV_RUN_ONCE);                                                             \
    uv_timer_stop(&(L)->guard);                                                                    \
    if (!(COND))                                                                                   \
      fail_msg("timed out after %d ms waiting for: %s", (int)(MS), #COND);                         \
  } while (0)

/* A fresh loop with its guard timer. */
static void loop_open(loopctx *l) {
  memset(l, 0, sizeof *l);
  assert_int_equal(uv_loop_init(&l->loop), 0);
  uv_timer_init(&l->loop, &l->guard);
  l->guard.data = l;
}

/* Close the guard and prove nothing else was left open on the loop. */
static void loop_close(loopctx *l) {
  uv_close((uv_handle_t *)&l->guard, NULL);
  uv_run(&l->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&l->loop), 0);
}

/* ---- packets */

/* Every field survives encode/decode, in the documented byte order. */
static void test_packet_roundtrip(void **state) {
  (void)state;
  md_stream_pkt p = {.seq = 0x01020304u, .count = 200, .send_real_ns = 1700000000123456789LL};
  memcpy(p.token, TOKEN, sizeof TOKEN);
  uint8_t buf[64];
  memset(buf, 0xee, sizeof buf);
  assert_int_equal(md_stream_pkt_encode(&p, buf, sizeof buf), MD_STREAM_HDR_LEN);
  const uint8_t head[8] = {'M', 'D', 'O', 'W', 1, 0, 0, 0};
  assert_memory_equal(buf, head, sizeof head);
  assert_memory_equal(buf + 8, TOKEN, 16);
  const uint8_t seq[4] = {1, 2, 3, 4};
  assert_memory_equal(buf + 24, seq, 4);
  assert_int_equal(buf[40], 0xee); /* nothing past the header is touched */
  md_stream_pkt q;
  assert_int_equal(md_stream_pkt_decode(buf, MD_STREAM_HDR_LEN, &q), 0);
  assert_int_equal(q.seq, p.seq);
  assert_int_equal(q.count, 200);
  assert_true(q.send_real_ns == p.send_real_ns);
  assert_memory_equal(q.token, TOKEN, 16);
  /* a negative timestamp (a clock before 1970) survives too */
  p.send_real_ns = -5;
  md_stream_pkt_encode(&p, buf, sizeof buf);
  assert_int_equal(md_stream_pkt_decode(buf, sizeof buf, &q), 0);
  assert_true(q.send_real_ns == -5);
}

/* Short, foreign or future-version datagrams are refused. */
static void test_packet_refused(void **state) {
  (void)state;
  md_stream_pkt p = {.seq = 1, .count = 2, .send_real_ns = 3}, q;
  uint8_t buf[MD_STREAM_HDR_LEN];
  assert_int_equal(md_stream_pkt_encode(&p, buf, sizeof buf - 1), 0);
  assert_int_equal(md_stream_pkt_encode(&p, buf, sizeof buf), MD_STREAM_HDR_LEN);
  assert_int_equal(md_stream_pkt_decode(buf, sizeof buf - 1, &q), -EBADMSG);
  assert_int_equal(md_stream_pkt_decode(NULL, 0, &q), -EBADMSG);
  buf[0] ^= 1;
  assert_int_equal(md_stream_pkt_decode(buf, sizeof buf, &q), -EBADMSG);
  buf[0] ^= 1;
  buf[4] = 2;
  assert_int_equal(md_stream_pkt_decode(buf, sizeof buf, &q), -EBADMSG);
}

/* ---- request checks */

/* A RECEIVE request with every field at its default. */
static Mtrdiag__V1__StreamRequest base_request(void) {
  Mtrdiag__V1__StreamRequest q = MTRDIAG__V1__STREAM_REQUEST__INIT;
  q.stream_id = "s1";
  q.role = MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE;
  q.peer = "127.0.0.1";
  q.token.data = (uint8_t *)TOKEN;
  q.token.len = sizeof TOKEN;
  return q;
}

/* Zero means the default; psize is raised to what holds the header. */
static void test_opts_defaults(void **state) {
  (void)state;
  Mtrdiag__V1__StreamRequest q = base_request();
  md_stream_opts o;
  char err[256] = "";
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  assert_int_equal(o.role, MD_STREAM_RECEIVE);
  assert_int_equal(o.count, MD_STREAM_DEFAULT_COUNT);
  assert_int_equal(o.interval_us, MD_STREAM_DEFAULT_INTERVAL_US);
  assert_int_equal(o.grace_ms, MD_STREAM_DEFAULT_GRACE_MS);
  assert_int_equal(o.psize, 68);
  assert_int_equal(md_addr_family(&o.local), AF_INET); /* the wildcard, any port */
  assert_true(md_addr_is_unspecified(&o.local));
  assert_int_equal(md_addr_port(&o.local), 0);
  assert_true(md_stream_pps(&o) == 0); /* a receiver sends nothing */
  assert_true(md_stream_span_ns(&o) == 99LL * 10000 * 1000);
  assert_int_equal(md_stream_payload_len(&o), MD_STREAM_HDR_LEN);
  q.psize = 10; /* below the minimum: raised */
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  assert_int_equal(o.psize, 68);
  q.psize = 1000;
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  assert_int_equal(md_stream_payload_len(&o), 1000 - 28);
  /* IPv6: bigger headers */
  q.peer = "::1";
  q.psize = 0;
  q.local = "::1";
  q.port = 40000;
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  assert_int_equal(o.psize, 88);
  assert_int_equal(md_stream_payload_len(&o), MD_STREAM_HDR_LEN);
  assert_int_equal(md_addr_port(&o.local), 40000);
  /* a sender: the port goes on the peer, its rate is its share */
  q = base_request();
  q.role = MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND;
  q.port = 5000;
  q.interval_us = 2000;
  q.tos = 0xb8;
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  assert_int_equal(md_addr_port(&o.peer), 5000);
  assert_true(fabs(md_stream_pps(&o) - 500.0) < 1e-9);
  assert_int_equal(o.tos, 0xb8);
}

/* Each bad field is refused with its name in the message. */
static void test_opts_refused(void **state) {
  (void)state;
  md_stream_opts o;
  char err[256];
  uint8_t short_token[8] = {0};
#define REFUSED(FIELD, MUTATE)                                                                     \
  do {                                                                                             \
    Mtrdiag__V1__StreamRequest q = base_request();                                                 \
    MUTATE;                                                                                        \
    err[0] = 0;                                                                                    \
    assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), -EINVAL);               \
    if (!strstr(err, FIELD))                                                                       \
      fail_msg("expected '%s' in '%s'", FIELD, err);                                               \
  } while (0)
  REFUSED("stream_id", q.stream_id = "");
  REFUSED("stream_id", q.stream_id = "a b");
  REFUSED("role", q.role = MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_UNSPECIFIED);
  REFUSED("role", q.role = 7);
  REFUSED("peer", q.peer = "example.net");
  REFUSED("peer", q.peer = "0.0.0.0");
  REFUSED("peer", q.peer = "224.0.0.1");
  REFUSED("peer", q.peer = "255.255.255.255");
  REFUSED("local", q.local = "nope");
  REFUSED("local", q.local = "::1");
  REFUSED("port", q.port = 70000);
  REFUSED("port", q.port = 80); /* privileged for a receiver */
  REFUSED("port", q.role = MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND); /* port 0 */
  REFUSED("count", q.count = MD_STREAM_MAX_COUNT + 1);
  REFUSED("interval_us", q.interval_us = 50);
  REFUSED("interval_us", q.interval_us = MD_STREAM_MAX_INTERVAL_US + 1);
  REFUSED("count x interval_us", (q.count = 100000, q.interval_us = 60000));
  REFUSED("psize", q.psize = 70000);
  REFUSED("tos", q.tos = 256);
  REFUSED("grace_ms", q.grace_ms = MD_STREAM_MAX_GRACE_MS + 1);
  REFUSED("token", q.token.len = 0);
  REFUSED("token", (q.token.data = short_token, q.token.len = sizeof short_token));
  REFUSED("start_at_real_ns", q.start_at_real_ns = -1);
#undef REFUSED
}

/* ---- policy */

/* Streams: peer like a target, psize, concurrency apart from runs, and one
 * packets-per-second budget shared with runs. */
static void test_policy_streams(void **state) {
  (void)state;
  md_agent_config cfg;
  char err[512];
  const char *text = "name: a\nlisten: [\"127.0.0.1:7447\"]\n"
                     "tls: { cert: /x.crt, key: /x.key, ca: /ca.crt }\n"
                     "policy: { allow_targets: [\"198.18.0.0/15\"], max_concurrent_runs: 2, "
                     "max_probes_per_second: 300, max_psize: 1000, min_interval: 0.01 }\n";
  if (md_agent_config_parse_string(text, strlen(text), "/t.yaml", &cfg, err, sizeof err) != 0)
    fail_msg("config: %s", err);
  md_policy p;
  md_policy_init(&p, &cfg);
  md_addr ok, other, mcast;
  md_addr_parse("198.18.4.2", &ok);
  md_addr_parse("203.0.113.9", &other);
  md_addr_parse("224.0.0.1", &mcast);
  assert_int_equal(md_policy_check_stream(&p, &ok, 100, 100, err, sizeof err), 0);
  assert_int_equal(md_policy_check_stream(&p, &other, 100, 100, err, sizeof err), MD_POLICY_DENIED);
  assert_non_null(strstr(err, "allow_targets"));
  assert_int_equal(md_policy_check_stream(&p, &mcast, 0, 100, err, sizeof err), MD_POLICY_DENIED);
  assert_int_equal(md_policy_check_stream(&p, &ok, 100, 1001, err, sizeof err), MD_POLICY_DENIED);
  assert_non_null(strstr(err, "max_psize"));
  assert_int_equal(md_policy_check_stream(&p, &ok, 301, 100, err, sizeof err), MD_POLICY_LIMIT);
  assert_non_null(strstr(err, "max_probes_per_second"));
  /* a run of 100 pps and a stream of 100: another stream of 150 is over */
  md_trace_opts t;
  md_trace_opts_default(&t);
  t.target = ok;
  t.first_ttl = 1;
  t.max_ttl = 10;
  t.interval_s = 0.1;
  assert_int_equal(md_policy_check(&p, &t, err, sizeof err), 0);
  md_policy_take(&p, &t);
  md_policy_take_stream(&p, 100);
  assert_int_equal(md_policy_check_stream(&p, &ok, 150, 100, err, sizeof err), MD_POLICY_LIMIT);
  assert_non_null(strstr(err, "1 active runs and 1 streams"));
  assert_int_equal(md_policy_check_stream(&p, &ok, 100, 100, err, sizeof err), 0);
  /* a receiver costs no packets, only a place */
  assert_int_equal(md_policy_check_stream(&p, &ok, 0, 100, err, sizeof err), 0);
  md_policy_take_stream(&p, 0);
  assert_int_equal(md_policy_check_stream(&p, &ok, 0, 100, err, sizeof err), MD_POLICY_LIMIT);
  assert_non_null(strstr(err, "max_concurrent_runs"));
  /* runs see the streams' share too */
  t.interval_s = 0.05; /* 200 pps */
  assert_int_equal(md_policy_check(&p, &t, err, sizeof err), MD_POLICY_LIMIT);
  assert_non_null(strstr(err, "streams"));
  md_policy_release_stream(&p, 0);
  md_policy_release_stream(&p, 100);
  assert_int_equal(p.streams, 0);
  assert_true(p.stream_pps == 0);
  md_policy_release(&p, &t);
  md_policy_free(&p);
  md_agent_config_free(&cfg);
}

/* ---- md_stream on one loop */

typedef struct done_rec {
  bool done, closed;
  int status;
  md_stream_stats st;
} done_rec;

/* Keep the final figures: the stream goes when it is closed. */
static void rec_done(md_stream *s, void *ud, int status) {
  done_rec *r = ud;
  r->done = true;
  r->status = status;
  r->st = *md_stream_get_stats(s);
}

/* The stream's memory is gone. */
static void rec_closed(void *ud) {
  ((done_rec *)ud)->closed = true;
}

/* Options for a stream over loopback of family fam. */
static md_stream_opts loop_opts(md_stream_role role, const char *addr, uint16_t port,
                                uint32_t count, uint32_t interval_us) {
  md_stream_opts o;
  memset(&o, 0, sizeof o);
  o.role = role;
  md_addr_parse(addr, &o.peer);
  if (role == MD_STREAM_SEND) {
    md_addr_set_port(&o.peer, port);
  } else {
    md_addr_parse(addr, &o.local);
  }
  o.count = count;
  o.interval_us = interval_us;
  o.psize = 200;
  o.grace_ms = 300;
  memcpy(o.token, TOKEN, sizeof TOKEN);
  return o;
}

/* Receiver and sender on one loop: everything arrives, delays are tiny and positive. */
static void stream_pair(const char *addr) {
  loopctx l;
  loop_open(&l);
  done_rec rr = {0}, sr = {0};
  md_stream *rx, *tx;
  char err[256];
  md_stream_opts ro = loop_opts(MD_STREAM_RECEIVE, addr, 0, 50, 1000);
  if (md_stream_start(&l.loop, &ro, rec_done, &rr, &rx, err, sizeof err) != 0) {
    if (strchr(addr, ':')) { /* no IPv6 loopback here */
      loop_close(&l);
      return;
    }
    fail_msg("receiver: %s", err);
  }
  md_addr b;
  md_stream_local(rx, &b);
  assert_int_not_equal(md_addr_port(&b), 0);
  md_stream_opts so = loop_opts(MD_STREAM_SEND, addr, md_addr_port(&b), 50, 1000);
  so.start_at_real_ns = md_now_real_ns() + 20000000; /* 20 ms from now */
  so.tos = 0x20;
  assert_int_equal(md_stream_start(&l.loop, &so, rec_done, &sr, &tx, err, sizeof err), 0);
  assert_true(md_stream_start_real_ns(tx) >= so.start_at_real_ns);
  assert_true(md_stream_end_real_ns(tx) == md_stream_start_real_ns(tx) + 49LL * 1000000);
  PUMP_UNTIL(&l, 5000, rr.done && sr.done);
  assert_int_equal(sr.status, 0);
  assert_int_equal(sr.st.sent, 50);
  assert_int_equal(sr.st.send_errors, 0);
  assert_int_equal(rr.status, 0);
  assert_int_equal(rr.st.expected, 50);
  assert_int_equal(rr.st.received, 50);
  assert_int_equal(rr.st.duplicates, 0);
  assert_int_equal(rr.st.reordered, 0);
  assert_int_equal(rr.st.ignored, 0);
  /* one clock, loopback: raw delays are real delays, small and not negative */
  assert_true(rr.st.delay_min_ns >= 0);
  assert_true(rr.st.delay_min_ns <= rr.st.delay_avg_ns);
  assert_true(rr.st.delay_avg_ns <= rr.st.delay_max_ns);
  assert_true(rr.st.delay_max_ns < 50000000);
  assert_true(rr.st.delay_stdev_ns >= 0);
  md_stream_close(rx, rec_closed, &rr);
  md_stream_close(tx, rec_closed, &sr);
  PUMP_UNTIL(&l, 2000, rr.closed && sr.closed);
  loop_close(&l);
}

/* The pair over IPv4 loopback. */
static void test_stream_ipv4(void **state) {
  (void)state;
  stream_pair("127.0.0.1");
}

/* The pair over IPv6 loopback (skipped when ::1 is missing). */
static void test_stream_ipv6(void **state) {
  (void)state;
  stream_pair("::1");
}

/* A plain UDP socket to hand-craft datagrams for a receiver. */
static int raw_sender(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  return fd;
}

/* Send one stream packet (or junk) to a port on 127.0.0.1. */
static void send_pkt(int fd, uint16_t port, const uint8_t *token, uint32_t seq, int64_t ts) {
  md_addr to;
  md_addr_parse("127.0.0.1", &to);
  md_addr_set_port(&to, port);
  uint8_t buf[100] = {0};
  md_stream_pkt p = {.seq = seq, .count = 10, .send_real_ns = ts};
  memcpy(p.token, token, MD_STREAM_TOKEN_LEN);
  md_stream_pkt_encode(&p, buf, sizeof buf);
  assert_int_equal(sendto(fd, buf, sizeof buf, 0, &to.sa, md_addr_len(&to)), (ssize_t)sizeof buf);
}

/* Duplicates, reordering, strays and loss, then the end after grace. */
static void test_stream_counting(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  done_rec rr = {0};
  md_stream *rx;
  char err[256];
  md_stream_opts ro = loop_opts(MD_STREAM_RECEIVE, "127.0.0.1", 0, 10, 1000);
  ro.grace_ms = 200;
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &rx, err, sizeof err), 0);
  md_addr b;
  md_stream_local(rx, &b);
  uint16_t port = md_addr_port(&b);
  int fd = raw_sender();
  int64_t now = md_now_real_ns();
  uint8_t wrong[MD_STREAM_TOKEN_LEN] = {0};
  send_pkt(fd, port, TOKEN, 0, now);
  send_pkt(fd, port, TOKEN, 3, now);
  send_pkt(fd, port, TOKEN, 1, now);  /* after 3: reordered */
  send_pkt(fd, port, TOKEN, 3, now);  /* again: a duplicate */
  send_pkt(fd, port, TOKEN, 2, now);  /* after 3: reordered */
  send_pkt(fd, port, wrong, 4, now);  /* another stream: ignored */
  send_pkt(fd, port, TOKEN, 10, now); /* past count: ignored */
  md_addr to = b;
  assert_int_equal(sendto(fd, "junk", 4, 0, &to.sa, md_addr_len(&to)), 4); /* ignored */
  int64_t t0 = md_now_mono_ns();
  PUMP_UNTIL(&l, 3000, rr.done);
  double secs = (md_now_mono_ns() - t0) / 1e9;
  assert_int_equal(rr.status, 0);
  assert_int_equal(rr.st.expected, 10);
  assert_int_equal(rr.st.received, 4);
  assert_int_equal(rr.st.duplicates, 1);
  assert_int_equal(rr.st.reordered, 2);
  assert_int_equal(rr.st.ignored, 3);
  /* it waited the grace after the last packet's time (9 ms), not much more */
  assert_true(secs > 0.15 && secs < 1.5);
  md_stream_close(rx, rec_closed, &rr);
  PUMP_UNTIL(&l, 2000, rr.closed);
  close(fd);
  loop_close(&l);
}

/* Delay figures: known send timestamps give known raw delays (and a stdev). */
static void test_stream_delays(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  done_rec rr = {0};
  md_stream *rx;
  char err[256];
  md_stream_opts ro = loop_opts(MD_STREAM_RECEIVE, "127.0.0.1", 0, 10, 1000);
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &rx, err, sizeof err), 0);
  md_addr b;
  md_stream_local(rx, &b);
  int fd = raw_sender();
  /* timestamps 1 s in the past and 1 s in the future: raw delays of about +1 s and -1 s */
  int64_t now = md_now_real_ns();
  for (uint32_t i = 0; i < 10; i++)
    send_pkt(fd, md_addr_port(&b), TOKEN, i, i % 2 ? now + 1000000000LL : now - 1000000000LL);
  PUMP_UNTIL(&l, 3000, rr.done); /* every packet in: done before the deadline */
  assert_int_equal(rr.st.received, 10);
  assert_true(rr.st.delay_min_ns < -900000000LL && rr.st.delay_min_ns > -1000000000LL);
  assert_true(rr.st.delay_max_ns > 1000000000LL && rr.st.delay_max_ns < 1100000000LL);
  assert_true(llabs(rr.st.delay_avg_ns) < 100000000LL);
  /* five at ~-1 s, five at ~+1 s: sample stdev = sqrt(10/9) s */
  assert_true(fabs(rr.st.delay_stdev_ns / 1e9 - sqrt(10.0 / 9.0)) < 0.05);
  md_stream_close(rx, rec_closed, &rr);
  PUMP_UNTIL(&l, 2000, rr.closed);
  close(fd);
  loop_close(&l);
}

/* A sender that starts late: the receiver keeps listening while packets come. */
static void test_stream_late_sender(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  done_rec rr = {0}, sr = {0};
  md_stream *rx, *tx;
  char err[256];
  md_stream_opts ro = loop_opts(MD_STREAM_RECEIVE, "127.0.0.1", 0, 20, 10000);
  ro.grace_ms = 100; /* planned end: 190 + 100 ms */
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &rx, err, sizeof err), 0);
  md_addr b;
  md_stream_local(rx, &b);
  md_stream_opts so = loop_opts(MD_STREAM_SEND, "127.0.0.1", md_addr_port(&b), 20, 10000);
  so.start_at_real_ns = md_now_real_ns() + 250000000LL; /* its last packet at 440 ms */
  assert_int_equal(md_stream_start(&l.loop, &so, rec_done, &sr, &tx, err, sizeof err), 0);
  PUMP_UNTIL(&l, 5000, rr.done && sr.done);
  assert_int_equal(sr.st.sent, 20);
  assert_int_equal(rr.st.received, 20);
  md_stream_close(rx, NULL, NULL);
  md_stream_close(tx, NULL, NULL);
  loop_close(&l);
}

/* Cancel: done(-ECANCELED) from the loop, never from inside the call;
 * closing without waiting for done is fine too. */
static void test_stream_cancel(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  done_rec rr = {0}, sr = {0}, xr = {0};
  md_stream *rx, *tx, *x;
  char err[256];
  md_stream_opts ro = loop_opts(MD_STREAM_RECEIVE, "127.0.0.1", 0, 1000, 10000);
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &rx, err, sizeof err), 0);
  md_addr b;
  md_stream_local(rx, &b);
  md_stream_opts so = loop_opts(MD_STREAM_SEND, "127.0.0.1", md_addr_port(&b), 1000, 10000);
  assert_int_equal(md_stream_start(&l.loop, &so, rec_done, &sr, &tx, err, sizeof err), 0);
  assert_int_equal(md_stream_start(&l.loop, &so, rec_done, &xr, &x, err, sizeof err), 0);
  PUMP_UNTIL(&l, 3000, md_stream_get_stats(rx)->received >= 3);
  md_stream_cancel(tx);
  md_stream_cancel(rx);
  assert_false(sr.done || rr.done);
  md_stream_cancel(rx);                /* twice: nothing more */
  md_stream_close(x, rec_closed, &xr); /* without waiting: no done */
  PUMP_UNTIL(&l, 2000, sr.done && rr.done && xr.closed);
  assert_false(xr.done);
  assert_int_equal(sr.status, -ECANCELED);
  assert_int_equal(rr.status, -ECANCELED);
  assert_true(sr.st.sent >= 3 && sr.st.sent < 1000);
  md_stream_close(rx, rec_closed, &rr);
  md_stream_close(tx, rec_closed, &sr);
  PUMP_UNTIL(&l, 2000, rr.closed && sr.closed);
  loop_close(&l);
}

/* A port in use, and bad options: an error at once, nothing kept. */
static void test_stream_start_errors(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  done_rec rr = {0};
  md_stream *rx, *ry;
  char err[256];
  md_stream_opts ro = loop_opts(MD_STREAM_RECEIVE, "127.0.0.1", 0, 10, 1000);
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &rx, err, sizeof err), 0);
  md_addr b;
  md_stream_local(rx, &b);
  ro.local = b;
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &ry, err, sizeof err), -EADDRINUSE);
  assert_null(ry);
  assert_non_null(strstr(err, "cannot bind"));
  ro.count = 0;
  assert_int_equal(md_stream_start(&l.loop, &ro, rec_done, &rr, &ry, err, sizeof err), -EINVAL);
  /* a local address that is not this host's (NAT): the wildcard instead */
  md_stream_opts nat = loop_opts(MD_STREAM_RECEIVE, "127.0.0.1", 0, 10, 1000);
  md_addr_parse("198.51.100.77", &nat.local);
  assert_int_equal(md_stream_start(&l.loop, &nat, rec_done, &rr, &ry, err, sizeof err), 0);
  md_stream_local(ry, &b);
  assert_true(md_addr_is_unspecified(&b));
  md_stream_close(ry, NULL, NULL);
  md_stream_close(rx, NULL, NULL);
  loop_close(&l);
}

/* ---- the controller's arithmetic */

/* A made result of one role. */
static md_client_stream_result result(Mtrdiag__V1__StreamRole role) {
  md_client_stream_result r;
  memset(&r, 0, sizeof r);
  r.stream_id = "s";
  r.role = role;
  r.status = MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK;
  r.message = "";
  r.from_agent = true;
  return r;
}

/* Offsets come off the raw delay; loss from sent and received. */
static void test_oneway_compute(void **state) {
  (void)state;
  md_client_stream_result s = result(MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND);
  md_client_stream_result r = result(MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE);
  md_oneway_dir d;
  s.sent = 200;
  r.expected = 200;
  r.received = 140;
  /* receiver clock 50 ms ahead of the controller, sender 10 ms behind: the
   * raw delay holds +60 ms of clock difference on top of 21.3 ms */
  r.delay_avg_ns = 81300000;
  r.delay_stdev_ns = 400000;
  assert_int_equal(md_oneway_compute(&s, &r, -10000000, 50000000, &d), 0);
  assert_int_equal(d.sent, 200);
  assert_int_equal(d.recv, 140);
  assert_true(fabs(d.loss_pct - 30.0) < 1e-9);
  assert_true(fabs(d.delay_avg_ms - 21.3) < 1e-9);
  assert_true(fabs(d.delay_stdev_ms - 0.4) < 1e-9);
  /* clocks the other way round: negative raw delays are normal */
  r.delay_avg_ns = -30000000;
  assert_int_equal(md_oneway_compute(&s, &r, 40000000, -10000000, &d), 0);
  assert_true(fabs(d.delay_avg_ms - 20.0) < 1e-9);
  /* the sender's count wins over the receiver's expectation (it failed part-way) */
  s.sent = 150;
  s.status = MTRDIAG__V1__RUN_STATUS__RUN_STATUS_FAILED;
  assert_int_equal(md_oneway_compute(&s, &r, 0, 0, &d), 0);
  assert_int_equal(d.sent, 150);
  assert_true(fabs(d.loss_pct - 100.0 * 10 / 150) < 1e-9);
  /* no sender result: the receiver's expected count stands in */
  assert_int_equal(md_oneway_compute(NULL, &r, 0, 0, &d), 0);
  assert_int_equal(d.sent, 200);
  s.from_agent = false; /* made up by the client: the same */
  assert_int_equal(md_oneway_compute(&s, &r, 0, 0, &d), 0);
  assert_int_equal(d.sent, 200);
  /* duplicates never make loss negative */
  s = result(MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND);
  s.sent = 100;
  r.received = 120;
  assert_int_equal(md_oneway_compute(&s, &r, 0, 0, &d), 0);
  assert_int_equal(d.recv, 100);
  assert_true(d.loss_pct == 0.0);
  /* nothing arrived: 100 % loss, no delay */
  r.received = 0;
  r.delay_avg_ns = 0;
  assert_int_equal(md_oneway_compute(&s, &r, 5000000, 0, &d), 0);
  assert_true(d.loss_pct == 100.0);
  assert_true(d.delay_avg_ms == 0.0 && d.delay_stdev_ms == 0.0);
  /* no figures: the receiver did not finish, or nothing was sent */
  r.received = 10;
  r.status = MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED;
  assert_int_equal(md_oneway_compute(&s, &r, 0, 0, &d), -ENODATA);
  assert_int_equal(d.sent, 0);
  r.status = MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK;
  r.from_agent = false;
  assert_int_equal(md_oneway_compute(&s, &r, 0, 0, &d), -ENODATA);
  r.from_agent = true;
  s.sent = 0;
  assert_int_equal(md_oneway_compute(&s, &r, 0, 0, &d), -ENODATA);
  /* roles swapped, or no receiver */
  assert_int_equal(md_oneway_compute(&r, &s, 0, 0, &d), -EINVAL);
  assert_int_equal(md_oneway_compute(&s, NULL, 0, 0, &d), -EINVAL);
}

/* The two requests of a direction mirror each other. */
static void test_oneway_request(void **state) {
  (void)state;
  md_oneway_plan p = {.stream_id = "fwd",
                      .sender_addr = "198.18.1.1",
                      .receiver_addr = "198.18.4.2",
                      .count = 200,
                      .interval_us = 10000,
                      .grace_ms = 500};
  uint8_t zero[MD_ONEWAY_TOKEN_LEN] = {0};
  assert_int_equal(md_oneway_token(p.token), 0);
  assert_memory_not_equal(p.token, zero, sizeof zero);
  Mtrdiag__V1__StreamRequest q;
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0, 123, &q);
  assert_string_equal(q.stream_id, "fwd");
  assert_string_equal(q.peer, "198.18.1.1");
  assert_string_equal(q.local, "198.18.4.2");
  assert_int_equal(q.port, 0);
  assert_int_equal(q.grace_ms, 500);
  assert_true(q.start_at_real_ns == 123);
  assert_int_equal(q.token.len, 16);
  assert_memory_equal(q.token.data, p.token, 16);
  md_stream_opts o;
  char err[256];
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND, 40000, -1, &q);
  assert_string_equal(q.peer, "198.18.4.2");
  assert_string_equal(q.local, "198.18.1.1");
  assert_int_equal(q.port, 40000);
  assert_true(q.start_at_real_ns == 0);
  assert_int_equal(md_stream_opts_from_request(&q, &o, err, sizeof err), 0);
  assert_int_equal(md_oneway_duration_ms(&p), 1990 + 500);
  md_oneway_plan d = {0};
  assert_int_equal(md_oneway_duration_ms(&d), 990 + 1000);
}

/* StreamAccepted goes through the wire like every message. */
static void test_wire_stream_accepted(void **state) {
  (void)state;
  Mtrdiag__V1__StreamAccepted a = MTRDIAG__V1__STREAM_ACCEPTED__INIT;
  a.stream_id = "fwd";
  a.local = "198.18.4.2";
  a.port = 40000;
  a.start_at_real_ns = 5;
  a.end_at_real_ns = 6;
  uint8_t *buf;
  size_t len;
  assert_int_equal(md_wire_pack(&a.base, &buf, &len), 0);
  Mtrdiag__V1__Envelope *e;
  char err[128];
  assert_int_equal(md_wire_unpack(buf + 4, len - 4, &e, err, sizeof err), 0);
  assert_int_equal(e->msg_case, MTRDIAG__V1__ENVELOPE__MSG_STREAM_ACCEPTED);
  assert_string_equal(md_wire_msg_name(e->msg_case), "StreamAccepted");
  assert_int_equal(e->stream_accepted->port, 40000);
  assert_string_equal(e->stream_accepted->local, "198.18.4.2");
  md_wire_free(e);
  free(buf);
  assert_true(MD_WIRE_REVISION >= 1);
}

/* ---- two agents and a controller in one process */

typedef struct agent {
  md_agent_config cfg;
  md_daemon *d;
  md_addr addr;
  bool stopped;
} agent;

/* An agent named NAME on 127.0.0.1:<any> that may send to 127.0.0.1. */
static void agent_start(loopctx *l, agent *a, const char *name, const char *policy_extra) {
  memset(a, 0, sizeof *a);
  char text[2048], err[MD_CONFIG_ERRLEN], crt[300], key[300], ca[300];
  snprintf(crt, sizeof crt, "%s/%s.crt", g_dir, name);
  snprintf(key, sizeof key, "%s/%s.key", g_dir, name);
  snprintf(ca, sizeof ca, "%s/ca.crt", g_dir);
  snprintf(
      text, sizeof text,
      "name: %s\nlisten: [\"127.0.0.1:7447\"]\n"
      "tls: { cert: %s, key: %s, ca: %s, allowed_controllers: [ops] }\n"
      "policy: { allow_targets: [\"127.0.0.1/32\", \"::1/128\"], max_probes_per_second: 5000%s%s "
      "}\n",
      name, crt, key, ca, policy_extra ? ", " : "", policy_extra ? policy_extra : "");
  if (md_agent_config_parse_string(text, strlen(text), "/test/agent.yaml", &a->cfg, err,
                                   sizeof err) != 0)
    fail_msg("config: %s", err);
  md_addr_set_port(&a->cfg.listen[0].addr, 0);
  md_daemon_opts opts = {.prober_flags = 0};
  if (md_daemon_start(&l->loop, &a->cfg, &opts, &a->d, err, sizeof err) != 0)
    fail_msg("daemon: %s", err);
  assert_int_equal(md_daemon_listen_addr(a->d, 0, &a->addr), 0);
}

/* The daemon has stopped. */
static void agent_stopped(md_daemon *d, void *ud) {
  (void)d;
  ((agent *)ud)->stopped = true;
}

/* Stop an agent, and check it holds no stream any more. */
static void agent_stop(loopctx *l, agent *a) {
  md_agent_stats st;
  md_daemon_get_stats(a->d, &st);
  assert_int_equal(st.active_streams, 0);
  md_daemon_stop(a->d, agent_stopped, a);
  PUMP_UNTIL(l, 5000, a->stopped);
  md_daemon_free(a->d);
  md_agent_config_free(&a->cfg);
}

/* What the controller side saw. */
typedef struct ctl {
  md_client *c;
  bool ready, closed;
  int n_accepted, n_results, n_errors;
  char acc_local[MD_ADDRSTRLEN];
  uint16_t acc_port;
  int64_t acc_start, acc_end;
  md_client_stream_result res;
  char res_msg[256];
  char err_id[80], err_msg[256];
  Mtrdiag__V1__ErrorCode err_code;
} ctl;

/* READY: the stream callbacks go on now. */
static void c_ready(md_client *c);
/* An Error about a stream: a refusal. */
static void c_error(md_client *c, const char *run_id, Mtrdiag__V1__ErrorCode code,
                    const char *message) {
  ctl *x = md_client_data(c);
  x->n_errors++;
  x->err_code = code;
  snprintf(x->err_id, sizeof x->err_id, "%s", run_id);
  snprintf(x->err_msg, sizeof x->err_msg, "%s", message);
}

/* The session is over. */
static void c_close(md_client *c, int status, enum md_client_err kind, const char *reason) {
  (void)status;
  (void)kind;
  (void)reason;
  ctl *x = md_client_data(c);
  x->closed = true;
  x->c = NULL;
}

/* StreamAccepted: where to send. */
static void c_stream_accepted(md_client *c, const md_client_stream_accepted *a) {
  ctl *x = md_client_data(c);
  x->n_accepted++;
  snprintf(x->acc_local, sizeof x->acc_local, "%s", a->local);
  x->acc_port = a->port;
  x->acc_start = a->start_at_real_ns;
  x->acc_end = a->end_at_real_ns;
}

/* StreamResult: keep the numbers (the strings die with the call). */
static void c_stream_result(md_client *c, const md_client_stream_result *r) {
  ctl *x = md_client_data(c);
  x->n_results++;
  x->res = *r;
  snprintf(x->res_msg, sizeof x->res_msg, "%s", r->message);
  x->res.message = x->res_msg;
  x->res.stream_id = NULL;
}

static const md_client_cb g_ccb = {.on_ready = c_ready, .on_error = c_error, .on_close = c_close};
static const md_client_stream_cb g_scb = {c_stream_accepted, c_stream_result};

/* READY: the stream callbacks go on now. */
static void c_ready(md_client *c) {
  ctl *x = md_client_data(c);
  x->ready = true;
  md_client_set_stream_cb(c, &g_scb);
}

/* A controller session with one of the agents. */
static void ctl_connect(loopctx *l, ctl *x, agent *a, const char *name) {
  memset(x, 0, sizeof *x);
  md_ctl_agent ca = {0};
  char address[64];
  md_addr_str_hostport(&a->addr, address, sizeof address);
  ca.name = (char *)name;
  ca.address = address;
  ca.host = "127.0.0.1";
  ca.port = md_addr_port(&a->addr);
  ca.has_addr = true;
  ca.addr = a->addr;
  md_client_opts opts = {.timeout_ms = 5000, .controller_name = "ops"};
  assert_int_equal(md_client_connect(&l->loop, g_ops_ctx, &ca, &opts, &g_ccb, x, &x->c), 0);
  PUMP_UNTIL(l, 5000, x->ready || x->closed);
  assert_true(x->ready);
  const md_client_info *in = md_client_get_info(x->c);
  assert_true(in->one_way_stream);
  assert_int_equal(in->protocol_revision, 1);
}

/* Close a controller session and wait for it. */
static void ctl_close(loopctx *l, ctl *x) {
  if (x->c)
    md_client_close(x->c);
  PUMP_UNTIL(l, 5000, x->closed);
}

/* A stream from agent A to agent B through both agents' sessions, as the
 * diagnosis orders it: B receives first, A sends to the port B names. */
static void test_agents_stream(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  agent A, B;
  agent_start(&l, &A, "agentA", NULL);
  agent_start(&l, &B, "agentB", NULL);
  ctl ca, cb;
  ctl_connect(&l, &ca, &A, "agentA");
  ctl_connect(&l, &cb, &B, "agentB");

  md_oneway_plan p = {.stream_id = "fwd",
                      .sender_addr = "127.0.0.1",
                      .receiver_addr = "127.0.0.1",
                      .count = 100,
                      .interval_us = 2000,
                      .grace_ms = 300};
  assert_int_equal(md_oneway_token(p.token), 0);
  int64_t start = md_now_real_ns() + 100000000;
  Mtrdiag__V1__StreamRequest q;
  char err[256];
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0,
                    md_client_to_agent_ns(cb.c, start), &q);
  assert_int_equal(md_client_stream_start(cb.c, &q, err, sizeof err), 0);
  assert_int_equal(md_client_stream_start(cb.c, &q, err, sizeof err), -EEXIST);
  assert_int_equal(md_client_stream_count(cb.c), 1);
  PUMP_UNTIL(&l, 3000, cb.n_accepted == 1);
  assert_string_equal(cb.acc_local, "127.0.0.1");
  assert_true(cb.acc_port >= 1024);
  assert_true(cb.acc_end > cb.acc_start);
  md_agent_stats st;
  md_daemon_get_stats(B.d, &st);
  assert_int_equal(st.active_streams, 1);
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND, cb.acc_port,
                    md_client_to_agent_ns(ca.c, start), &q);
  assert_int_equal(md_client_stream_start(ca.c, &q, err, sizeof err), 0);
  PUMP_UNTIL(&l, 5000, ca.n_results == 1 && cb.n_results == 1);
  assert_int_equal(ca.n_accepted, 1);
  assert_true(ca.res.from_agent);
  assert_int_equal(ca.res.role, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND);
  assert_int_equal(ca.res.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  assert_int_equal(ca.res.sent, 100);
  assert_int_equal(cb.res.role, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE);
  assert_int_equal(cb.res.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  assert_int_equal(cb.res.expected, 100);
  assert_int_equal(cb.res.received, 100);
  assert_int_equal(cb.res.ignored, 0);
  md_oneway_dir d;
  const md_client_info *ia = md_client_get_info(ca.c), *ib = md_client_get_info(cb.c);
  assert_int_equal(md_oneway_compute(&ca.res, &cb.res, ia->offset_ns, ib->offset_ns, &d), 0);
  assert_int_equal(d.sent, 100);
  assert_int_equal(d.recv, 100);
  assert_true(d.loss_pct == 0.0);
  assert_true(fabs(d.delay_avg_ms) < 5.0); /* one clock, loopback */
  assert_int_equal(md_client_stream_count(ca.c) + md_client_stream_count(cb.c), 0);

  /* refusals come as on_error with the stream id, and no result */
  md_oneway_plan bad = p;
  bad.stream_id = "far";
  bad.sender_addr = "198.51.100.1"; /* not in allow_targets */
  md_oneway_request(&bad, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0, 0, &q);
  assert_int_equal(md_client_stream_start(cb.c, &q, err, sizeof err), 0);
  PUMP_UNTIL(&l, 3000, cb.n_errors == 1);
  assert_string_equal(cb.err_id, "far");
  assert_int_equal(cb.err_code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED);
  assert_non_null(strstr(cb.err_msg, "allow_targets"));
  assert_int_equal(md_client_stream_count(cb.c), 0);
  bad = p;
  bad.stream_id = "fast";
  bad.interval_us = 100; /* 10000 packets/s */
  md_oneway_request(&bad, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND, 9, 0, &q);
  assert_int_equal(md_client_stream_start(ca.c, &q, err, sizeof err), 0);
  PUMP_UNTIL(&l, 3000, ca.n_errors == 1);
  assert_int_equal(ca.err_code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED);
  /* checks the client makes itself */
  q.token.len = 3;
  assert_int_equal(md_client_stream_start(ca.c, &q, err, sizeof err), MD_WIRE_EFIELD);
  assert_non_null(strstr(err, "token"));
  q.token.len = 16;
  q.port = 0;
  assert_int_equal(md_client_stream_start(ca.c, &q, err, sizeof err), MD_WIRE_EFIELD);
  assert_non_null(strstr(err, "port"));

  /* cancel: a StreamResult CANCELLED, and the ids are free again */
  p.stream_id = "long";
  p.count = 10000;
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0, 0, &q);
  assert_int_equal(md_client_stream_start(cb.c, &q, err, sizeof err), 0);
  PUMP_UNTIL(&l, 3000, cb.n_accepted == 2);
  assert_int_equal(md_client_stream_cancel(cb.c, "nope"), -ENOENT);
  assert_int_equal(md_client_stream_cancel(cb.c, "long"), 0);
  PUMP_UNTIL(&l, 3000, cb.n_results == 2);
  assert_true(cb.res.from_agent);
  assert_int_equal(cb.res.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_non_null(strstr(cb.res.message, "cancelled"));

  /* the session ends mid-stream: a made-up result here, the agent cancels its side */
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0, 0, &q);
  assert_int_equal(md_client_stream_start(cb.c, &q, err, sizeof err), 0);
  PUMP_UNTIL(&l, 3000, cb.n_accepted == 3);
  md_client_close(cb.c);
  PUMP_UNTIL(&l, 3000, cb.closed);
  assert_int_equal(cb.n_results, 3);
  assert_false(cb.res.from_agent);
  assert_int_equal(cb.res.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  PUMP_UNTIL(&l, 3000, md_daemon_sessions(B.d) == 0);
  md_daemon_get_stats(B.d, &st);
  assert_int_equal(st.active_streams, 0);
  assert_true(st.streams_accepted >= 3);
  assert_true(st.streams_refused >= 1);

  ctl_close(&l, &ca);
  agent_stop(&l, &A);
  agent_stop(&l, &B);
  loop_close(&l);
}

/* The agent stops mid-stream: its StreamResult says CANCELLED before the session closes. */
static void test_agent_stops_mid_stream(void **state) {
  (void)state;
  loopctx l;
  loop_open(&l);
  agent B;
  agent_start(&l, &B, "agentB", NULL);
  ctl cb;
  ctl_connect(&l, &cb, &B, "agentB");
  md_oneway_plan p = {.stream_id = "s", .sender_addr = "127.0.0.1", .count = 5000};
  md_oneway_token(p.token);
  Mtrdiag__V1__StreamRequest q;
  char err[256];
  md_oneway_request(&p, MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE, 0, 0, &q);
  assert_int_equal(md_client_stream_start(cb.c, &q, err, sizeof err), 0);
  PUMP_UNTIL(&l, 3000, cb.n_accepted == 1);
  md_daemon_stop(B.d, agent_stopped, &B);
  PUMP_UNTIL(&l, 5000, B.stopped && cb.closed);
  assert_int_equal(cb.n_results, 1);
  assert_true(cb.res.from_agent);
  assert_int_equal(cb.res.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_non_null(strstr(cb.res.message, "shutting down"));
  md_daemon_free(B.d);
  md_agent_config_free(&B.cfg);
  loop_close(&l);
}

/* ---- set-up */

/* nftw callback: remove one file or directory. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* A CA, two agents and a controller certificate in a temp dir. */
static int setup(void **state) {
  (void)state;
  char err[256];
  signal(SIGPIPE, SIG_IGN);
  snprintf(g_dir, sizeof g_dir, "/tmp/md_stream_test.XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  const char *sans[] = {"127.0.0.1"};
  if (md_pki_init(g_dir, err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "agentA", MD_PKI_AGENT, sans, 1, 0, err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "agentB", MD_PKI_AGENT, sans, 1, 0, err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "ops", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0) {
    fprintf(stderr, "pki: %s\n", err);
    return -1;
  }
  char crt[300], key[300], ca[300];
  snprintf(crt, sizeof crt, "%s/ops.crt", g_dir);
  snprintf(key, sizeof key, "%s/ops.key", g_dir);
  snprintf(ca, sizeof ca, "%s/ca.crt", g_dir);
  if (md_tls_ctx_new(MD_TLS_CLIENT, crt, key, ca, &g_ops_ctx, err, sizeof err) != 0) {
    fprintf(stderr, "tls: %s\n", err);
    return -1;
  }
  return 0;
}

/* The temp dir and the TLS context go. */
static int teardown(void **state) {
  (void)state;
  md_tls_ctx_free(g_ops_ctx);
  return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_packet_roundtrip),
      cmocka_unit_test(test_packet_refused),
      cmocka_unit_test(test_opts_defaults),
      cmocka_unit_test(test_opts_refused),
      cmocka_unit_test(test_policy_streams),
      cmocka_unit_test(test_stream_ipv4),
      cmocka_unit_test(test_stream_ipv6),
      cmocka_unit_test(test_stream_counting),
      cmocka_unit_test(test_stream_delays),
      cmocka_unit_test(test_stream_late_sender),
      cmocka_unit_test(test_stream_cancel),
      cmocka_unit_test(test_stream_start_errors),
      cmocka_unit_test(test_oneway_compute),
      cmocka_unit_test(test_oneway_request),
      cmocka_unit_test(test_wire_stream_accepted),
      cmocka_unit_test(test_agents_stream),
      cmocka_unit_test(test_agent_stops_mid_stream),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
