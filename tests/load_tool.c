/* md-load: load for one mtr-agent, used by tests/lab/test_agent_load.sh and
 * tests/lab/test_agent_valgrind.sh. It opens N connections to the agent,
 * at most P of them setting up at a time, each behaving as MODE says:
 *
 *   hello     mutual TLS with --cert/--key, Hello, wait for the HelloAck,
 *             then stay connected and idle until --hold seconds have passed
 *             or SIGTERM/SIGINT (a well-formed but quiet controller)
 *   nocert    TCP + TLS without a client certificate: the agent must refuse
 *   silent    TCP connect, then send nothing (the handshake limit must end it)
 *   stall     TCP connect and the first bytes of a TLS ClientHello, then
 *             nothing (a handshake stalled in the middle)
 *   zero      mutual TLS, then a frame with length 0
 *   oversize  mutual TLS, then a length prefix of 0xffffffff
 *   garbage   mutual TLS, then a frame of random bytes (not an Envelope)
 *   random    TCP connect, then random bytes instead of TLS
 *   malformed zero, oversize, garbage and random in turn
 *
 *   md-load --connect ADDR:PORT --mode MODE --ca FILE [--cert FILE --key FILE]
 *           [--tls-name NAME] [-n N] [-p P] [--rate PER_SECOND] [--hold SECONDS]
 *           [--time-limit SECONDS]
 *
 * --rate spreads the N connections over time (at most that many started per
 * second), so that a load lasts long enough to overlap other work.
 *
 * Each connection ends with one outcome: ready (hello mode: the HelloAck
 * came; later closed by us), refused (the agent refused our certificate or
 * its absence), agent_error (the agent sent an Error, then closed; counted
 * per code), agent_closed (the agent closed without a word), connect_failed,
 * failed (anything else: TLS errors of ours, our own timeouts) and aborted
 * (still open at the time limit). For connections that the agent ended,
 * close_after is the time from the TCP connect to the agent's close.
 *
 * Output (stdout, one line each, key=value):
 *   md-load: holding ready=200 ...      hello mode, once every connection is up
 *                                        or has failed (the hold starts then)
 *   md-load: done mode=... n=... ready=... refused=... agent_error=...
 *            agent_closed=... connect_failed=... failed=... aborted=...
 *            max_open=... elapsed_s=... close_after_s=min/avg/max codes=...
 * Reasons of the first few failures go to stderr. Exit 0 when every
 * connection ended before the time limit, 1 otherwise, 2 for usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "md_addr.h"
#include "md_frame.h"
#include "md_log.h"
#include "md_time.h"
#include "md_tls.h"
#include "md_wire.h"

enum mode {
  M_HELLO,
  M_NOCERT,
  M_SILENT,
  M_STALL,
  M_ZERO,
  M_OVERSIZE,
  M_GARBAGE,
  M_RANDOM,
  M_MIXED
};
static const char *const g_mode_names[] = {"hello",    "nocert",  "silent", "stall",    "zero",
                                           "oversize", "garbage", "random", "malformed"};

enum outcome {
  O_NONE,
  O_READY,
  O_REFUSED,
  O_AGENT_ERROR,
  O_AGENT_CLOSED,
  O_CONNECT_FAILED,
  O_FAILED,
  O_ABORTED
};

#define MAX_CODES 16
#define MAX_REPORTED_FAILURES 5

typedef struct tool tool;

typedef struct conn {
  tool *t;
  enum mode m; /* this connection's own (malformed: one of four) */
  uv_tcp_t *tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uint8_t wbuf[512];
  md_tls_conn *tls;
  md_frame_decoder *dec;
  int64_t t_connected; /* monotonic ns, 0 before */
  enum outcome out;
  bool connected, ready, setting_up, closing, by_us;
} conn;

struct tool {
  uv_loop_t loop;
  uv_timer_t limit, hold, tick;
  uv_signal_t sigterm, sigint;
  md_tls_ctx *ctx;
  md_addr addr;
  const char *tls_name;
  enum mode mode;
  unsigned n, parallel;
  double hold_s, limit_s, rate;
  conn *conns;
  unsigned next;     /* connections started so far */
  unsigned setup;    /* connections setting up now (count against parallel) */
  unsigned open;     /* connections not yet closed */
  unsigned max_open; /* the most open at once */
  unsigned n_ended;  /* connections with an outcome */
  unsigned count[O_ABORTED + 1];
  unsigned codes[MAX_CODES];
  unsigned reported;
  bool holding, stopping, limit_hit;
  int64_t t0;
  double ca_min, ca_max, ca_sum; /* close_after, seconds */
  unsigned ca_n;
  uint64_t rng;
};

static void start_more(tool *t);
static void maybe_hold(tool *t);
static void maybe_done(tool *t);

/* xorshift64*: random bytes without touching the process's rand(). */
static uint64_t rnd(tool *t) {
  t->rng ^= t->rng >> 12;
  t->rng ^= t->rng << 25;
  t->rng ^= t->rng >> 27;
  return t->rng * 0x2545F4914F6CDD1DULL;
}

static void fill_random(tool *t, uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(rnd(t) >> 32);
}

/* The one place a connection gets its outcome (the first one wins). */
static void set_outcome(conn *c, enum outcome o, const char *why) {
  if (c->out != O_NONE)
    return;
  c->out = o;
  tool *t = c->t;
  t->count[o]++;
  t->n_ended++;
  if (o != O_READY && c->connected && !c->by_us && o != O_CONNECT_FAILED) {
    double s = (md_now_mono_ns() - c->t_connected) / 1e9;
    if (t->ca_n == 0 || s < t->ca_min)
      t->ca_min = s;
    if (s > t->ca_max)
      t->ca_max = s;
    t->ca_sum += s;
    t->ca_n++;
    if (s > 1.0 && c->m != M_SILENT && c->m != M_STALL && t->reported < MAX_REPORTED_FAILURES) {
      t->reported++;
      fprintf(stderr, "md-load: connection %ld (%s): ended by the agent only after %.3f s: %s\n",
              (long)(c - t->conns), g_mode_names[c->m], s, why ? why : "");
    }
  }
  if ((o == O_FAILED || o == O_CONNECT_FAILED) && t->reported < MAX_REPORTED_FAILURES) {
    t->reported++;
    fprintf(stderr, "md-load: connection %ld (%s): %s: %s\n", (long)(c - t->conns),
            g_mode_names[c->m], o == O_FAILED ? "failed" : "connect failed", why ? why : "");
  }
  if (c->setting_up) {
    c->setting_up = false;
    t->setup--;
  }
}

/* ---- closing */

static void conn_closed_common(conn *c) {
  tool *t = c->t;
  if (c->setting_up) {
    c->setting_up = false;
    t->setup--;
  }
  md_frame_decoder_free(c->dec);
  c->dec = NULL;
  t->open--;
  start_more(t);
  maybe_hold(t);
  maybe_done(t);
}

static void raw_closed(uv_handle_t *h) {
  conn *c = h->data;
  free(c->tcp);
  c->tcp = NULL;
  conn_closed_common(c);
}

/* A plain TCP connection (no TLS on it) ends. */
static void raw_close(conn *c) {
  if (c->closing)
    return;
  c->closing = true;
  uv_close((uv_handle_t *)c->tcp, raw_closed);
}

/* ---- TLS connections */

static void tls_on_close(md_tls_conn *tc, int status) {
  conn *c = md_tls_conn_user(tc);
  if (c->out == O_NONE) {
    enum md_tls_err k = md_tls_last_error_kind(tc);
    const char *msg = md_tls_last_error(tc);
    if (c->by_us)
      set_outcome(c, O_ABORTED, "closed by us");
    else if (k == MD_TLS_ERR_PEER_REFUSED)
      set_outcome(c, O_REFUSED, msg);
    else if (status == 0 || status == -ECONNRESET || k == MD_TLS_ERR_IO)
      set_outcome(c, O_AGENT_CLOSED, msg[0] ? msg : "closed by the agent");
    else
      set_outcome(c, O_FAILED, msg[0] ? msg : strerror(-status));
  }
  uv_stream_t *s = md_tls_conn_stream(tc);
  md_tls_conn_free(tc);
  c->tls = NULL;
  free(s);
  c->tcp = NULL;
  conn_closed_common(c);
}

/* Frames from the agent: HelloAck (hello mode) or an Error. */
static void tls_on_read(md_tls_conn *tc, const uint8_t *data, size_t len) {
  conn *c = md_tls_conn_user(tc);
  tool *t = c->t;
  while (len > 0) {
    size_t used = 0, flen = 0;
    const uint8_t *f = NULL;
    int r = md_frame_decoder_feed(c->dec, data, len, &used, &f, &flen);
    if (r < 0) {
      set_outcome(c, O_FAILED, "bad frame from the agent");
      md_tls_conn_abort(tc);
      return;
    }
    data += used;
    len -= used;
    if (r == 0)
      return;
    Mtrdiag__V1__Envelope *env = NULL;
    char err[200];
    if (md_wire_unpack(f, flen, &env, err, sizeof err) < 0) {
      set_outcome(c, O_FAILED, err);
      md_tls_conn_abort(tc);
      return;
    }
    if (env->msg_case == MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK && c->m == M_HELLO && !c->ready) {
      c->ready = true;
      set_outcome(c, O_READY, NULL);
      maybe_hold(t);
      start_more(t);
    } else if (env->msg_case == MTRDIAG__V1__ENVELOPE__MSG_ERROR) {
      int code = (int)env->error->code;
      if (code >= 0 && code < MAX_CODES && c->out == O_NONE)
        t->codes[code]++;
      if (env->error->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED)
        set_outcome(c, O_REFUSED, env->error->message);
      else
        set_outcome(c, O_AGENT_ERROR, env->error->message);
    }
    md_wire_free(env);
  }
}

/* Handshake over: send what this mode sends. */
static void tls_on_handshake(md_tls_conn *tc, int status) {
  conn *c = md_tls_conn_user(tc);
  tool *t = c->t;
  if (status < 0)
    return; /* on_close follows */
  uint8_t b[64];
  size_t n = 0;
  switch (c->m) {
  case M_HELLO: {
    Mtrdiag__V1__Hello h = MTRDIAG__V1__HELLO__INIT;
    h.protocol_version = MD_WIRE_VERSION;
    h.protocol_revision = MD_WIRE_REVISION;
    h.software_version = (char *)"md-load";
    h.controller_name = (char *)"md-load";
    uint8_t *buf = NULL;
    size_t blen = 0;
    if (md_wire_pack(&h.base, &buf, &blen) < 0 || md_tls_conn_write(tc, buf, blen) < 0) {
      set_outcome(c, O_FAILED, "cannot send Hello");
      md_tls_conn_abort(tc);
    }
    free(buf);
    return;
  }
  case M_ZERO:
    memset(b, 0, 8);
    n = 8;
    break;
  case M_OVERSIZE:
    memset(b, 0xff, 8);
    n = 8;
    break;
  case M_GARBAGE:
    b[0] = b[1] = b[2] = 0;
    b[3] = 32;
    fill_random(t, b + 4, 32);
    b[4] = 0xff; /* field 31, wire type 7: no Envelope unpacks from this */
    n = 36;
    break;
  default: /* nocert: nothing; the agent's refusal comes as an alert */
    return;
  }
  if (md_tls_conn_write(tc, b, n) < 0) {
    set_outcome(c, O_FAILED, "cannot write");
    md_tls_conn_abort(tc);
  }
}

static const md_tls_callbacks g_tls_cb = {tls_on_handshake, tls_on_read, tls_on_close};

/* ---- plain TCP connections (silent, stall, random) */

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char scratch[4096]; /* what the agent says is not kept */
  *buf = uv_buf_init(scratch, sizeof scratch);
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn *c = s->data;
  if (nread >= 0)
    return;
  set_outcome(c, O_AGENT_CLOSED, nread == UV_EOF ? "closed by the agent" : uv_strerror((int)nread));
  raw_close(c);
}

static void raw_written(uv_write_t *req, int status) {
  conn *c = req->data;
  if (status < 0 && status != UV_ECANCELED && !c->closing) {
    set_outcome(c, O_AGENT_CLOSED, uv_strerror(status));
    raw_close(c);
  }
}

/* ---- connecting */

static void on_connected(uv_connect_t *req, int status) {
  conn *c = req->data;
  tool *t = c->t;
  if (status < 0) {
    set_outcome(c, status == UV_ECANCELED ? O_ABORTED : O_CONNECT_FAILED, uv_strerror(status));
    raw_close(c);
    return;
  }
  c->connected = true;
  c->t_connected = md_now_mono_ns();
  if (c->closing)
    return;
  if (t->stopping) { /* the time limit came while connecting */
    c->by_us = true;
    set_outcome(c, O_ABORTED, "time limit");
    raw_close(c);
    return;
  }
  switch (c->m) {
  case M_SILENT:
  case M_STALL:
  case M_RANDOM: {
    size_t n = 0;
    if (c->m == M_STALL) {
      /* a TLS record header announcing a 512-byte ClientHello, and its first bytes */
      static const uint8_t part[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                     0x00, 0x01, 0xfc, 0x03, 0x03};
      memcpy(c->wbuf, part, sizeof part);
      n = sizeof part;
    } else if (c->m == M_RANDOM) {
      n = 64 + rnd(t) % 400;
      fill_random(t, c->wbuf, n);
      c->wbuf[0] = 0x47; /* not a TLS record type, and a version no TLS has: */
      c->wbuf[1] = 0xff; /* never a record the agent waits to complete */
    }
    c->tcp->data = c;
    uv_read_start((uv_stream_t *)c->tcp, raw_alloc, raw_read);
    if (n) {
      uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)n);
      c->wreq.data = c;
      uv_write(&c->wreq, (uv_stream_t *)c->tcp, &b, 1, raw_written);
    }
    /* these modes are "set up" once connected: the agent decides the rest */
    if (c->setting_up) {
      c->setting_up = false;
      t->setup--;
      start_more(t);
    }
    return;
  }
  default:
    break;
  }
  if (md_frame_decoder_new(0, &c->dec) < 0 ||
      md_tls_conn_new(t->ctx, (uv_stream_t *)c->tcp, &g_tls_cb, c, &c->tls) < 0) {
    set_outcome(c, O_FAILED, "cannot start TLS");
    raw_close(c);
    return;
  }
  if (t->tls_name)
    md_tls_conn_expect_peer(c->tls, t->tls_name, NULL);
  md_tls_conn_start(c->tls); /* a failure ends in tls_on_close */
}

static void start_one(tool *t) {
  conn *c = &t->conns[t->next];
  c->t = t;
  c->m = t->mode;
  if (t->mode == M_MIXED) {
    static const enum mode mix[] = {M_ZERO, M_OVERSIZE, M_GARBAGE, M_RANDOM};
    c->m = mix[t->next % 4];
  }
  t->next++;
  c->tcp = malloc(sizeof *c->tcp);
  if (!c->tcp) {
    set_outcome(c, O_FAILED, "out of memory");
    return;
  }
  uv_tcp_init(&t->loop, c->tcp);
  c->tcp->data = c;
  c->setting_up = true;
  t->setup++;
  t->open++;
  if (t->open > t->max_open)
    t->max_open = t->open;
  c->creq.data = c;
  int rc = uv_tcp_connect(&c->creq, c->tcp, &t->addr.sa, on_connected);
  if (rc < 0) {
    set_outcome(c, O_CONNECT_FAILED, uv_strerror(rc));
    raw_close(c);
  }
}

/* --rate: may one more connection start now? */
static bool rate_allows(const tool *t) {
  if (t->rate <= 0)
    return true;
  double el = (md_now_mono_ns() - t->t0) / 1e9;
  return t->next < (unsigned)(el * t->rate) + 1;
}

static void on_tick(uv_timer_t *h) {
  tool *t = h->data;
  start_more(t);
  if (t->stopping || t->next >= t->n)
    uv_timer_stop(h);
}

/* Keep P connections setting up until all N have been started. */
static void start_more(tool *t) {
  while (!t->stopping && t->next < t->n && t->setup < t->parallel && rate_allows(t))
    start_one(t);
  if (t->rate > 0 && !t->stopping && t->next < t->n && !uv_is_active((uv_handle_t *)&t->tick))
    uv_timer_start(&t->tick, on_tick, 2, 2);
}

/* ---- the end */

static void close_all(tool *t) {
  for (unsigned i = 0; i < t->next; i++) {
    conn *c = &t->conns[i];
    if (c->closing)
      continue;
    if (c->tls) {
      c->by_us = true;
      c->closing = true;
      if (c->ready)
        md_tls_conn_close(c->tls); /* a controller leaving politely */
      else
        md_tls_conn_abort(c->tls);
    } else if (c->tcp) {
      c->by_us = true;
      if (c->connected)
        set_outcome(c, O_ABORTED, "closed by us");
      raw_close(c);
    }
  }
}

static void handle_closed(uv_handle_t *h) {
  (void)h;
}

static void print_summary(tool *t) {
  double el = (md_now_mono_ns() - t->t0) / 1e9;
  char codes[256] = "";
  size_t off = 0;
  for (int i = 0; i < MAX_CODES && off < sizeof codes; i++)
    if (t->codes[i]) {
      int w = snprintf(codes + off, sizeof codes - off, "%s%s:%u", off ? "," : "",
                       md_wire_error_name((Mtrdiag__V1__ErrorCode)i), t->codes[i]);
      off += w > 0 ? (size_t)w : 0;
    }
  printf("md-load: done mode=%s n=%u ready=%u refused=%u agent_error=%u agent_closed=%u "
         "connect_failed=%u failed=%u aborted=%u max_open=%u elapsed_s=%.2f rate_per_s=%.0f "
         "close_after_s=%.3f/%.3f/%.3f codes=%s%s\n",
         g_mode_names[t->mode], t->n, t->count[O_READY], t->count[O_REFUSED],
         t->count[O_AGENT_ERROR], t->count[O_AGENT_CLOSED], t->count[O_CONNECT_FAILED],
         t->count[O_FAILED], t->count[O_ABORTED], t->max_open, el, el > 0 ? t->n / el : 0.0,
         t->ca_n ? t->ca_min : 0.0, t->ca_n ? t->ca_sum / t->ca_n : 0.0, t->ca_n ? t->ca_max : 0.0,
         codes[0] ? codes : "-", t->limit_hit ? " time_limit_hit=1" : "");
  fflush(stdout);
}

/* Stop starting, close what is open; the loop ends when all is closed. */
static void stop(tool *t) {
  if (t->stopping)
    return;
  t->stopping = true;
  close_all(t);
  uv_timer_stop(&t->hold);
  uv_timer_stop(&t->tick);
  maybe_done(t);
}

static void maybe_done(tool *t) {
  if (t->open > 0 || (t->next < t->n && !t->stopping))
    return;
  if (t->mode == M_HELLO && !t->stopping && t->count[O_READY] > 0)
    return; /* holding */
  if (uv_is_closing((uv_handle_t *)&t->limit))
    return;
  uv_close((uv_handle_t *)&t->limit, handle_closed);
  uv_close((uv_handle_t *)&t->hold, handle_closed);
  uv_close((uv_handle_t *)&t->tick, handle_closed);
  uv_close((uv_handle_t *)&t->sigterm, handle_closed);
  uv_close((uv_handle_t *)&t->sigint, handle_closed);
}

static void on_hold_over(uv_timer_t *h) {
  stop(h->data);
}

/* hello mode: every connection is up or has failed: say so, hold. */
static void maybe_hold(tool *t) {
  if (t->mode != M_HELLO || t->holding || t->stopping || t->next < t->n || t->setup > 0)
    return;
  t->holding = true;
  printf("md-load: holding ready=%u refused=%u agent_closed=%u failed=%u connect_failed=%u "
         "setup_s=%.2f\n",
         t->count[O_READY], t->count[O_REFUSED], t->count[O_AGENT_CLOSED], t->count[O_FAILED],
         t->count[O_CONNECT_FAILED], (md_now_mono_ns() - t->t0) / 1e9);
  fflush(stdout);
  if (t->hold_s > 0)
    uv_timer_start(&t->hold, on_hold_over, (uint64_t)(t->hold_s * 1000), 0);
}

static void on_limit(uv_timer_t *h) {
  tool *t = h->data;
  t->limit_hit = true;
  fprintf(stderr, "md-load: time limit of %.1f s reached: closing %u open connections\n",
          t->limit_s, t->open);
  stop(t);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  stop(h->data);
}

static void usage(FILE *f) {
  fprintf(f, "usage: md-load --connect ADDR:PORT --mode "
             "hello|nocert|silent|stall|zero|oversize|garbage|random|malformed\n"
             "               --ca FILE [--cert FILE --key FILE] [--tls-name NAME]\n"
             "               [-n N] [-p PARALLEL] [--rate PER_SECOND] [--hold SECONDS]\n"
             "               [--time-limit SECONDS]\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"connect", required_argument, NULL, 'a'},
                                       {"mode", required_argument, NULL, 'm'},
                                       {"ca", required_argument, NULL, 'C'},
                                       {"cert", required_argument, NULL, 'c'},
                                       {"key", required_argument, NULL, 'k'},
                                       {"tls-name", required_argument, NULL, 't'},
                                       {"hold", required_argument, NULL, 'H'},
                                       {"time-limit", required_argument, NULL, 'L'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  tool t;
  memset(&t, 0, sizeof t);
  t.n = 1;
  t.parallel = 50;
  t.limit_s = 60;
  t.mode = M_HELLO;
  const char *where = NULL, *ca = NULL, *cert = NULL, *key = NULL;
  bool mode_given = false;
  int o;
  while ((o = getopt_long(argc, argv, "n:p:h", opts, NULL)) != -1) {
    switch (o) {
    case 'a':
      where = optarg;
      break;
    case 'm': {
      bool found = false;
      for (int i = 0; i <= M_MIXED; i++)
        if (strcmp(optarg, g_mode_names[i]) == 0) {
          t.mode = (enum mode)i;
          found = true;
        }
      if (!found) {
        fprintf(stderr, "md-load: unknown mode '%s'\n", optarg);
        return 2;
      }
      mode_given = true;
      break;
    }
    case 'C':
      ca = optarg;
      break;
    case 'c':
      cert = optarg;
      break;
    case 'k':
      key = optarg;
      break;
    case 't':
      t.tls_name = optarg;
      break;
    case 'H':
      t.hold_s = atof(optarg);
      break;
    case 'L':
      t.limit_s = atof(optarg);
      break;
    case 'r':
      t.rate = atof(optarg);
      break;
    case 'n':
      t.n = (unsigned)strtoul(optarg, NULL, 10);
      break;
    case 'p':
      t.parallel = (unsigned)strtoul(optarg, NULL, 10);
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (!where || !mode_given || !ca || t.n == 0 || t.n > 100000 || t.parallel == 0 ||
      t.limit_s <= 0 || md_addr_parse_hostport(where, &t.addr) < 0) {
    usage(stderr);
    return 2;
  }
  bool needs_cert =
      t.mode != M_NOCERT && t.mode != M_SILENT && t.mode != M_STALL && t.mode != M_RANDOM;
  if (needs_cert && (!cert || !key)) {
    fprintf(stderr, "md-load: mode %s needs --cert and --key\n", g_mode_names[t.mode]);
    return 2;
  }
  md_log_init("md-load", MD_LOG_ERROR);
  signal(SIGPIPE, SIG_IGN);
  char err[512];
  if (md_tls_ctx_new(MD_TLS_CLIENT, t.mode == M_NOCERT ? NULL : cert,
                     t.mode == M_NOCERT ? NULL : key, ca, &t.ctx, err, sizeof err) < 0) {
    fprintf(stderr, "md-load: %s\n", err);
    return 2;
  }
  t.conns = calloc(t.n, sizeof *t.conns);
  if (!t.conns) {
    md_tls_ctx_free(t.ctx);
    return 2;
  }
  t.rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)md_now_real_ns();
  uv_loop_init(&t.loop);
  uv_timer_init(&t.loop, &t.limit);
  uv_timer_init(&t.loop, &t.hold);
  uv_timer_init(&t.loop, &t.tick);
  t.limit.data = t.hold.data = t.tick.data = &t;
  uv_signal_init(&t.loop, &t.sigterm);
  uv_signal_init(&t.loop, &t.sigint);
  t.sigterm.data = t.sigint.data = &t;
  uv_signal_start(&t.sigterm, on_signal, SIGTERM);
  uv_signal_start(&t.sigint, on_signal, SIGINT);
  uv_timer_start(&t.limit, on_limit, (uint64_t)(t.limit_s * 1000), 0);
  t.t0 = md_now_mono_ns();
  start_more(&t);
  maybe_hold(&t);
  maybe_done(&t);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  print_summary(&t);
  int rc = uv_loop_close(&t.loop) == 0 && !t.limit_hit ? 0 : 1;
  md_tls_ctx_free(t.ctx);
  free(t.conns);
  return rc;
}
