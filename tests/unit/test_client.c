/* md_client (controller/client.c) against a fake agent written here: a real
 * TLS server (md_chan_accept, certificates from md_pki in a mkdtemp dir) on
 * 127.0.0.1 that answers Hello and TimeSync, runs pretend traces, and
 * misbehaves on command. Also `mtrctl agents` (md_cli_agents_run) against
 * it. Everything runs on one uv loop per test. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "cli.h"
#include "client.h"
#include "md_chan.h"
#include "md_config.h"
#include "md_pki.h"
#include "md_time.h"
#include "md_tls.h"
#include "md_wire.h"

static char g_dir[256];  /* the deployment CA */
static char g_dir2[300]; /* another CA */
static char g_pin_cvm[MD_TLS_PIN_LEN], g_pin_ops[MD_TLS_PIN_LEN];

/* ---- certificates */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void issue(const char *dir, const char *name, enum md_pki_role role, int64_t nb,
                  int64_t na) {
  char err[256] = "";
  const char *sans[] = {"127.0.0.1"};
  if (md_pki_issue_window(dir, name, role, sans, role == MD_PKI_AGENT ? 1 : 0, nb, na, err,
                          sizeof err) != 0)
    fail_msg("issue %s: %s", name, err);
}

static const char *pth(const char *dir, const char *file) {
  static char buf[8][512];
  static int i;
  i = (i + 1) % 8;
  snprintf(buf[i], sizeof buf[i], "%s/%s", dir, file);
  return buf[i];
}

static int setup_all(void **state) {
  (void)state;
  char err[256];
  signal(SIGPIPE, SIG_IGN);
  snprintf(g_dir, sizeof g_dir, "/tmp/md_client_test.XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  snprintf(g_dir2, sizeof g_dir2, "%s/other", g_dir);
  if (md_pki_init(g_dir, err, sizeof err) != 0 || md_pki_init(g_dir2, err, sizeof err) != 0)
    return -1;
  const int64_t day = 86400;
  issue(g_dir, "cvm", MD_PKI_AGENT, -3600, 30 * day);
  issue(g_dir, "ops", MD_PKI_CONTROLLER, -3600, 30 * day);
  issue(g_dir, "old", MD_PKI_CONTROLLER, -2 * day, -day);
  issue(g_dir2, "cvm", MD_PKI_AGENT, -3600, 30 * day);
  if (md_tls_cert_spki_sha256_b64(pth(g_dir, "cvm.crt"), g_pin_cvm, err, sizeof err) != 0 ||
      md_tls_cert_spki_sha256_b64(pth(g_dir, "ops.crt"), g_pin_ops, err, sizeof err) != 0)
    return -1;
  return 0;
}

static int teardown_all(void **state) {
  (void)state;
  return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static md_tls_ctx *make_ctx(enum md_tls_role role, const char *dir, const char *name,
                            const char *ca_dir) {
  md_tls_ctx *ctx = NULL;
  char err[512] = "", crt[64], key[64];
  snprintf(crt, sizeof crt, "%s.crt", name);
  snprintf(key, sizeof key, "%s.key", name);
  if (md_tls_ctx_new(role, pth(dir, crt), pth(dir, key), pth(ca_dir, "ca.crt"), &ctx, err,
                     sizeof err) != 0)
    fail_msg("ctx %s: %s", name, err);
  return ctx;
}

/* ---- the fake agent */

enum fake_mode {
  FAKE_OK,
  FAKE_NO_HELLO_ACK,    /* reads Hello, never answers */
  FAKE_NOT_AUTHORISED,  /* Error NOT_AUTHORISED, then close */
  FAKE_CLOSE_ON_HELLO,  /* closes without a word */
  FAKE_GARBAGE_FRAME,   /* answers Hello with bytes that are no frame */
  FAKE_GARBAGE_MESSAGE, /* ... with a frame that is no Envelope */
  FAKE_OLD_VERSION,     /* HelloAck.protocol_version 2 */
  FAKE_BAD_SYNC,        /* TimeSyncReply with the wrong seq */
  FAKE_CLOSE_MID_RUN,   /* drops the connection after the first HopUpdate */
  FAKE_DENY_RUN,        /* Error POLICY_DENIED for every RunRequest */
  FAKE_RAW_TCP,         /* accepts TCP, never speaks TLS */
};

struct fake {
  uv_loop_t *loop;
  uv_tcp_t listener;
  md_tls_ctx *ctx;
  int port;
  enum fake_mode mode;
  int64_t shift_ns; /* added to every server timestamp: a clock that is off */
  unsigned cycle_ms;
  /* what it saw */
  int sessions, hellos, syncs, runs, cancels, errors_in;
  Mtrdiag__V1__ErrorCode last_error_in;
  uint8_t *req; /* the last RunRequest, packed */
  size_t req_len;
  int open; /* sessions not yet closed */
  uv_tcp_t *raw[4];
  int n_raw;
};

struct session {
  struct fake *f;
  md_chan *ch;
  uv_timer_t tick;
  bool running;
  char run_id[MD_WIRE_RUN_ID_MAX + 1];
  char target[64];
  uint32_t cycles, done;
  md_path *path;
};

static int64_t fake_now(const struct fake *f) {
  return md_now_real_ns() + f->shift_ns;
}

static void session_tick_closed(uv_handle_t *h) {
  struct session *s = h->data;
  md_path_free(s->path);
  free(s);
}

static void send_result(struct session *s, Mtrdiag__V1__RunStatus st) {
  Mtrdiag__V1__RunResult *rr = NULL;
  assert_int_equal(md_wire_run_result_new(s->run_id, st, st == 1 ? "" : "cancelled by controller",
                                          s->done, s->path, &rr),
                   0);
  md_chan_send(s->ch, &rr->base);
  md_wire_free(rr);
  s->running = false;
  uv_timer_stop(&s->tick);
}

/* One pretend cycle: one responder at TTL 1, then a HopUpdate. */
static void session_tick(uv_timer_t *t) {
  struct session *s = t->data;
  md_hop *h = md_path_hop(s->path, 1);
  if (h->n_hosts == 0) {
    md_addr a;
    md_addr_parse(s->target, &a);
    md_hop_add_host(h, &a, NULL, 0);
  }
  md_stats_on_sent(&h->st);
  md_stats_on_reply(&h->st, 1000.0 + s->done);
  s->done++;
  Mtrdiag__V1__HopUpdate *u = NULL;
  assert_int_equal(md_wire_hop_update_new(s->run_id, s->done, s->path, &u), 0);
  md_chan_send(s->ch, &u->base);
  md_wire_free(u);
  if (s->f->mode == FAKE_CLOSE_MID_RUN) {
    uv_timer_stop(&s->tick);
    md_tls_conn_abort(md_chan_tls(s->ch));
    return;
  }
  if (s->done >= s->cycles) {
    s->path->complete = s->path->reached = true;
    s->path->finished_at_ns = md_now_real_ns();
    send_result(s, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  }
}

static void fake_hello(struct session *s, const Mtrdiag__V1__Hello *h) {
  struct fake *f = s->f;
  f->hellos++;
  assert_int_equal(h->protocol_version, MD_WIRE_VERSION);
  switch (f->mode) {
  case FAKE_NO_HELLO_ACK:
    return;
  case FAKE_NOT_AUTHORISED:
    md_chan_fail(s->ch, -EACCES, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED,
                 "controller 'ops' is not in allowed_controllers");
    return;
  case FAKE_CLOSE_ON_HELLO:
    md_chan_close(s->ch);
    return;
  case FAKE_GARBAGE_FRAME:
    md_tls_conn_write(md_chan_tls(s->ch), "\xff\xff\xff\xffgarbage", 11);
    return;
  case FAKE_GARBAGE_MESSAGE:
    md_tls_conn_write(md_chan_tls(s->ch), "\x00\x00\x00\x05\xff\xff\xff\xff\xff", 9);
    return;
  default:
    break;
  }
  Mtrdiag__V1__HelloAck a = MTRDIAG__V1__HELLO_ACK__INIT;
  Mtrdiag__V1__Capabilities k = MTRDIAG__V1__CAPABILITIES__INIT;
  Mtrdiag__V1__Protocol protos[] = {MTRDIAG__V1__PROTOCOL__PROTOCOL_ICMP,
                                    MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP};
  char *addrs[] = {"127.0.0.1", "::1"};
  k.raw_sockets = true;
  k.n_protocols = 2;
  k.protocols = protos;
  k.ipv4 = true;
  a.protocol_version = f->mode == FAKE_OLD_VERSION ? 2 : MD_WIRE_VERSION;
  a.agent_name = "cvm";
  a.hostname = "fakehost";
  a.software_version = "9.9.9";
  a.n_addresses = 2;
  a.addresses = addrs;
  a.capabilities = &k;
  a.server_real_ns = fake_now(f);
  md_chan_send(s->ch, &a.base);
}

static void fake_run(struct session *s, const Mtrdiag__V1__RunRequest *r) {
  struct fake *f = s->f;
  f->runs++;
  free(f->req);
  f->req_len = protobuf_c_message_get_packed_size(&r->base);
  f->req = malloc(f->req_len ? f->req_len : 1);
  protobuf_c_message_pack(&r->base, f->req);
  char err[200];
  if (md_wire_check_run_request(r, err, sizeof err) < 0) {
    md_chan_send_error(s->ch, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, r->run_id, "%s",
                       err);
    return;
  }
  if (f->mode == FAKE_DENY_RUN || s->running) {
    md_chan_send_error(s->ch, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED, r->run_id,
                       "target %s is not in allow_targets", r->target);
    return;
  }
  snprintf(s->run_id, sizeof s->run_id, "%s", r->run_id);
  snprintf(s->target, sizeof s->target, "%s", r->target);
  s->cycles = r->cycles ? r->cycles : 10;
  s->done = 0;
  md_path_free(s->path);
  s->path = md_path_new("cvm", r->target, r->target_name, 1);
  s->running = true;
  Mtrdiag__V1__RunAccepted a = MTRDIAG__V1__RUN_ACCEPTED__INIT;
  a.run_id = r->run_id;
  a.started_at_real_ns = r->start_at_real_ns ? r->start_at_real_ns : fake_now(f);
  s->path->started_at_ns = a.started_at_real_ns;
  md_chan_send(s->ch, &a.base);
  uv_timer_start(&s->tick, session_tick, f->cycle_ms, f->cycle_ms);
}

static void fake_on_message(md_chan *ch, const Mtrdiag__V1__Envelope *env) {
  struct session *s = md_chan_data(ch);
  struct fake *f = s->f;
  switch (env->msg_case) {
  case MTRDIAG__V1__ENVELOPE__MSG_HELLO:
    fake_hello(s, env->hello);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REQUEST: {
    f->syncs++;
    Mtrdiag__V1__TimeSyncReply r = MTRDIAG__V1__TIME_SYNC_REPLY__INIT;
    r.seq = env->time_sync_request->seq + (f->mode == FAKE_BAD_SYNC ? 7 : 0);
    r.client_send_real_ns = env->time_sync_request->client_send_real_ns;
    r.server_recv_real_ns = fake_now(f);
    r.server_send_real_ns = fake_now(f);
    md_chan_send(ch, &r.base);
    break;
  }
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_REQUEST:
    fake_run(s, env->run_request);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_CANCEL:
    f->cancels++;
    if (s->running && strcmp(s->run_id, env->cancel->run_id) == 0)
      send_result(s, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
    else
      md_chan_send_error(ch, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_RUN, env->cancel->run_id,
                         "no run %s", env->cancel->run_id);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_ERROR:
    f->errors_in++;
    f->last_error_in = env->error->code;
    break;
  default:
    break;
  }
}

static void fake_on_close(md_chan *ch, int status, const char *reason) {
  (void)status;
  (void)reason;
  struct session *s = md_chan_data(ch);
  s->f->open--;
  uv_close((uv_handle_t *)&s->tick, session_tick_closed);
}

static const md_chan_cb fake_cb = {NULL, fake_on_message, fake_on_close};

static void raw_closed(uv_handle_t *h) {
  free(h);
}

static void fake_on_connection(uv_stream_t *l, int status) {
  struct fake *f = l->data;
  assert_int_equal(status, 0);
  f->sessions++;
  if (f->mode == FAKE_RAW_TCP) {
    uv_tcp_t *t = malloc(sizeof *t);
    uv_tcp_init(f->loop, t);
    assert_int_equal(uv_accept(l, (uv_stream_t *)t), 0);
    assert_true(f->n_raw < 4);
    f->raw[f->n_raw++] = t;
    return;
  }
  struct session *s = calloc(1, sizeof *s);
  s->f = f;
  uv_timer_init(f->loop, &s->tick);
  s->tick.data = s;
  assert_int_equal(md_chan_accept(l, f->ctx, &fake_cb, s, &s->ch), 0);
  f->open++;
}

/* A fake agent "cvm" on 127.0.0.1 (an ephemeral port), certificate from
 * cert_dir, trusting controllers of ca_dir. */
static void fake_start(struct fake *f, uv_loop_t *loop, const char *cert_dir, const char *ca_dir,
                       enum fake_mode mode) {
  memset(f, 0, sizeof *f);
  f->loop = loop;
  f->mode = mode;
  f->cycle_ms = 10;
  f->ctx = make_ctx(MD_TLS_SERVER, cert_dir, "cvm", ca_dir);
  uv_tcp_init(loop, &f->listener);
  f->listener.data = f;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, fake_on_connection), 0);
  int len = sizeof sa;
  uv_tcp_getsockname(&f->listener, (struct sockaddr *)&sa, &len);
  f->port = ntohs(sa.sin_port);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Stop the fake, let everything close, and check that nothing was left
 * open (the client's handles included). */
static void fake_stop(struct fake *f) {
  uv_close((uv_handle_t *)&f->listener, NULL);
  for (int i = 0; i < f->n_raw; i++)
    uv_close((uv_handle_t *)f->raw[i], raw_closed);
  for (int i = 0; i < 200 && uv_loop_alive(f->loop); i++)
    uv_run(f->loop, UV_RUN_NOWAIT), usleep(10000);
  int alive = uv_loop_alive(f->loop);
  if (alive) /* sessions still lingering: close them the hard way for the next test */
    uv_walk(f->loop, walk_close, NULL), uv_run(f->loop, UV_RUN_DEFAULT);
  assert_int_equal(alive, 0);
  assert_int_equal(uv_loop_close(f->loop), 0);
  md_tls_ctx_free(f->ctx);
  free(f->req);
}

/* A port with nothing behind it: bound once, then closed. */
static int dead_port(void) {
  uv_loop_t l;
  uv_loop_init(&l);
  uv_tcp_t t;
  uv_tcp_init(&l, &t);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
  int len = sizeof sa;
  uv_tcp_getsockname(&t, (struct sockaddr *)&sa, &len);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
  uv_loop_close(&l);
  return ntohs(sa.sin_port);
}

/* ---- the client side */

struct obs {
  /* what to do */
  Mtrdiag__V1__RunRequest *req; /* start it when ready */
  bool close_on_ready, cancel_on_update, close_after_result, take_path;
  /* what happened */
  md_client *c;
  int ready, closed, accepted, updates, results, errors;
  int close_status;
  enum md_client_err kind;
  char reason[600];
  md_client_info info;
  char cert_name[64], agent_name[64], hostname[64], version[64], addr0[64];
  size_t n_addresses;
  int64_t started_at;
  uint32_t last_cycles;
  Mtrdiag__V1__RunStatus status;
  bool from_agent;
  char message[600];
  int result_hops;
  char result_source[64];
  md_path *taken;
  Mtrdiag__V1__ErrorCode err_code;
  char err_run[MD_WIRE_RUN_ID_MAX + 1];
  char err_msg[600];
  int start_rc;
};

static void obs_ready(md_client *c) {
  struct obs *o = md_client_data(c);
  const md_client_info *i = md_client_get_info(c);
  o->ready++;
  o->info = *i;
  snprintf(o->cert_name, sizeof o->cert_name, "%s", i->cert_name);
  snprintf(o->agent_name, sizeof o->agent_name, "%s", i->agent_name);
  snprintf(o->hostname, sizeof o->hostname, "%s", i->hostname);
  snprintf(o->version, sizeof o->version, "%s", i->version);
  o->n_addresses = i->n_addresses;
  if (i->n_addresses)
    snprintf(o->addr0, sizeof o->addr0, "%s", i->addresses[0]);
  assert_int_equal(md_client_get_state(c), MD_CLIENT_READY);
  if (o->req) {
    char err[256];
    o->start_rc = md_client_run_start(c, o->req, err, sizeof err);
    if (o->start_rc != 0)
      fail_msg("run_start: %s", err);
  }
  if (o->close_on_ready)
    md_client_close(c);
}

static void obs_accepted(md_client *c, const char *run_id, int64_t started) {
  struct obs *o = md_client_data(c);
  (void)run_id;
  o->accepted++;
  o->started_at = started;
}

static void obs_update(md_client *c, const char *run_id, uint32_t cycles, const md_path *live) {
  struct obs *o = md_client_data(c);
  o->updates++;
  o->last_cycles = cycles;
  assert_non_null(live);
  assert_string_equal(live->source, md_client_get_info(c)->name);
  if (o->cancel_on_update && o->updates == 1)
    assert_int_equal(md_client_run_cancel(c, run_id), 0);
}

static void obs_result(md_client *c, md_client_result *r) {
  struct obs *o = md_client_data(c);
  o->results++;
  o->status = r->status;
  o->from_agent = r->from_agent;
  snprintf(o->message, sizeof o->message, "%s", r->message);
  o->result_hops = r->path ? r->path->n_hops : -1;
  if (r->path)
    snprintf(o->result_source, sizeof o->result_source, "%s", r->path->source);
  if (o->take_path && r->path) {
    o->taken = r->path;
    r->path = NULL;
  }
  if (o->close_after_result)
    md_client_close(c);
}

static void obs_error(md_client *c, const char *run_id, Mtrdiag__V1__ErrorCode code,
                      const char *msg) {
  struct obs *o = md_client_data(c);
  o->errors++;
  o->err_code = code;
  snprintf(o->err_run, sizeof o->err_run, "%s", run_id);
  snprintf(o->err_msg, sizeof o->err_msg, "%s", msg);
  if (o->close_after_result)
    md_client_close(c);
}

static void obs_close(md_client *c, int status, enum md_client_err kind, const char *reason) {
  struct obs *o = md_client_data(c);
  o->closed++;
  o->close_status = status;
  o->kind = kind;
  snprintf(o->reason, sizeof o->reason, "%s", reason);
  assert_int_equal(md_client_get_state(c), MD_CLIENT_CLOSED);
  if (getenv("MD_TEST_VERBOSE"))
    fprintf(stderr, "  close %d %s: %s\n", status, md_client_err_code(kind), reason);
}

static const md_client_cb obs_cb = {obs_ready,  obs_accepted, obs_update,
                                    obs_result, obs_error,    obs_close};

static md_ctl_agent agent_at(int port, const char *tls_name, const char *pin) {
  static char address[64];
  md_ctl_agent a = {0};
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  a.name = "cvm";
  a.address = address;
  a.host = "127.0.0.1";
  a.port = (uint16_t)port;
  a.has_addr = true;
  md_addr_parse("127.0.0.1", &a.addr);
  md_addr_set_port(&a.addr, (uint16_t)port);
  a.tls_name = (char *)tls_name;
  a.pin_sha256 = (char *)pin;
  return a;
}

static void run_until_closed(uv_loop_t *loop, struct obs *o) {
  int64_t end = md_now_mono_ns() + INT64_C(15000000000);
  while (!o->closed) {
    if (md_now_mono_ns() > end)
      fail_msg("client did not close within 15 s");
    uv_run(loop, UV_RUN_ONCE);
  }
}

/* Connect `ctl` (a controller certificate name in ctl_dir) to the fake and
 * run until on_close. */
static void connect_obs(uv_loop_t *loop, struct fake *f, struct obs *o, const char *ctl_dir,
                        const char *ctl, const char *tls_name, const char *pin,
                        unsigned timeout_ms) {
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, ctl_dir, ctl, g_dir);
  md_ctl_agent a = agent_at(f->port, tls_name, pin);
  md_client_opts opts = {.timeout_ms = timeout_ms, .controller_name = ctl};
  assert_int_equal(md_client_connect(loop, cctx, &a, &opts, &obs_cb, o, &o->c), 0);
  run_until_closed(loop, o);
  md_tls_ctx_free(cctx);
}

/* ---- tests: sessions that work */

static void test_ready_info_and_close(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  struct obs o = {.close_on_ready = true};
  connect_obs(&loop, &f, &o, g_dir, "ops", "cvm", g_pin_cvm, 5000);
  assert_int_equal(o.ready, 1);
  assert_int_equal(o.closed, 1);
  assert_int_equal(o.close_status, 0);
  assert_int_equal(o.kind, MD_CLIENT_OK);
  assert_string_equal(o.reason, "");
  assert_string_equal(o.cert_name, "cvm");
  assert_string_equal(o.agent_name, "cvm");
  assert_string_equal(o.hostname, "fakehost");
  assert_string_equal(o.version, "9.9.9");
  assert_int_equal(o.n_addresses, 2);
  assert_string_equal(o.addr0, "127.0.0.1");
  assert_true(o.info.raw_sockets && o.info.ipv4 && !o.info.ipv6);
  assert_int_equal(o.info.protocols, 3); /* ICMP and UDP */
  assert_int_equal(o.info.protocol_revision, 0);
  assert_int_equal(f.hellos, 1);
  assert_int_equal(f.syncs, MD_CLIENT_SYNC_SAMPLES);
  assert_int_equal(o.info.sync_samples, MD_CLIENT_SYNC_SAMPLES);
  assert_true(o.info.rtt_ns >= 0 && o.info.rtt_ns < INT64_C(100000000));
  assert_true(llabs(o.info.offset_ns) < INT64_C(5000000));
  assert_true(o.info.setup_ns > 0);
  fake_stop(&f);
}

/* The fake's clock is shifted by a known amount: the measured offset must
 * be that shift, within a few ms; to/from agent time convert by it. */
static void check_shift(int64_t shift_ns) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  f.shift_ns = shift_ns;
  struct obs o = {.close_on_ready = true};
  connect_obs(&loop, &f, &o, g_dir, "ops", "cvm", NULL, 5000);
  assert_int_equal(o.ready, 1);
  int64_t err = o.info.offset_ns - shift_ns;
  if (llabs(err) > INT64_C(3000000))
    fail_msg("shift %" PRId64 " ns measured as %" PRId64 " ns", shift_ns, o.info.offset_ns);
  fake_stop(&f);
}

static void test_clock_offset(void **state) {
  (void)state;
  check_shift(INT64_C(1500000000));
  check_shift(-INT64_C(2250000000));
  check_shift(INT64_C(37000000));
}

static void test_to_agent_time(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  f.shift_ns = INT64_C(1000000000);
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  md_ctl_agent a = agent_at(f.port, "cvm", NULL);
  struct obs o = {0};
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &obs_cb, &o, &o.c), 0);
  char err[128];
  Mtrdiag__V1__RunRequest r = MTRDIAG__V1__RUN_REQUEST__INIT;
  r.run_id = "early";
  r.target = "198.18.4.2";
  assert_int_equal(md_client_run_start(o.c, &r, err, sizeof err), -ENOTCONN);
  while (!o.ready)
    uv_run(&loop, UV_RUN_ONCE);
  int64_t now = md_now_real_ns();
  int64_t there = md_client_to_agent_ns(o.c, now);
  assert_true(llabs(there - now - INT64_C(1000000000)) < INT64_C(3000000));
  assert_int_equal(md_client_from_agent_ns(o.c, there), now);
  md_client_close(o.c);
  md_client_close(o.c); /* idempotent */
  run_until_closed(&loop, &o);
  md_tls_ctx_free(cctx);
  fake_stop(&f);
}

static void fill_request(Mtrdiag__V1__RunRequest *r, const char *id, uint32_t cycles) {
  *r = (Mtrdiag__V1__RunRequest)MTRDIAG__V1__RUN_REQUEST__INIT;
  r->run_id = (char *)id;
  r->target = "198.18.4.2";
  r->target_name = "dst";
  r->protocol = MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP;
  r->cycles = cycles;
  r->interval_ms = 20;
  r->psize = 100;
  r->first_ttl = 1;
  r->max_ttl = 20;
  r->max_unknown = 3;
  r->tos = 16;
  r->port = 33435;
  r->local_port = 40000;
  r->gracetime_ms = 500;
  r->no_dns = true;
  r->classic = true;
  r->source = "198.18.1.1";
  r->family = MTRDIAG__V1__FAMILY__FAMILY_IPV4;
}

/* A whole run: every option arrives as sent, RunAccepted, HopUpdates, the
 * RunResult with its path, which the caller may take over. */
static void test_run_every_option(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  Mtrdiag__V1__RunRequest r;
  fill_request(&r, "fwd-1", 3);
  r.start_at_real_ns = md_now_real_ns() + INT64_C(50000000);
  struct obs o = {.req = &r, .close_after_result = true, .take_path = true};
  connect_obs(&loop, &f, &o, g_dir, "ops", "cvm", g_pin_cvm, 5000);
  assert_int_equal(o.accepted, 1);
  assert_int_equal(o.started_at, r.start_at_real_ns);
  assert_int_equal(o.updates, 3);
  assert_int_equal(o.last_cycles, 3);
  assert_int_equal(o.results, 1);
  assert_true(o.from_agent);
  assert_int_equal(o.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  assert_int_equal(o.result_hops, 1);
  assert_string_equal(o.result_source, "cvm");
  assert_non_null(o.taken);
  assert_int_equal(o.taken->hops[0].st.recv, 3);
  assert_true(o.taken->complete);
  md_path_free(o.taken);
  assert_int_equal(o.kind, MD_CLIENT_OK);
  /* the agent got exactly what was sent */
  assert_int_equal(f.runs, 1);
  Mtrdiag__V1__RunRequest *got = mtrdiag__v1__run_request__unpack(NULL, f.req_len, f.req);
  assert_non_null(got);
  assert_string_equal(got->run_id, "fwd-1");
  assert_string_equal(got->target, r.target);
  assert_string_equal(got->target_name, r.target_name);
  assert_int_equal(got->protocol, r.protocol);
  assert_int_equal(got->cycles, r.cycles);
  assert_int_equal(got->interval_ms, r.interval_ms);
  assert_int_equal(got->psize, r.psize);
  assert_int_equal(got->first_ttl, r.first_ttl);
  assert_int_equal(got->max_ttl, r.max_ttl);
  assert_int_equal(got->max_unknown, r.max_unknown);
  assert_int_equal(got->tos, r.tos);
  assert_int_equal(got->port, r.port);
  assert_int_equal(got->local_port, r.local_port);
  assert_int_equal(got->gracetime_ms, r.gracetime_ms);
  assert_true(got->no_dns && got->classic);
  assert_string_equal(got->source, r.source);
  assert_int_equal(got->family, r.family);
  assert_int_equal(got->start_at_real_ns, r.start_at_real_ns);
  mtrdiag__v1__run_request__free_unpacked(got, NULL);
  fake_stop(&f);
}

static void on_ready_checks(md_client *c) {
  struct obs *o = md_client_data(c);
  char err[256];
  Mtrdiag__V1__RunRequest r;
  fill_request(&r, "bad id!", 5);
  assert_int_equal(md_client_run_start(c, &r, err, sizeof err), MD_WIRE_EFIELD);
  assert_non_null(strstr(err, "run_id"));
  fill_request(&r, "r1", 1000);
  assert_int_equal(md_client_run_start(c, &r, err, sizeof err), 0);
  assert_int_equal(md_client_run_start(c, &r, err, sizeof err), -EEXIST);
  assert_int_equal(md_client_run_count(c), 1);
  assert_int_equal(md_client_run_cancel(c, "nope"), -ENOENT);
  o->ready++;
}

/* Cancel: the agent answers with RunResult CANCELLED. Local refusals of
 * bad, duplicate and unknown run ids. */
static void test_cancel_and_local_checks(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  struct obs o = {.cancel_on_update = true, .close_after_result = true};
  md_client_cb cb = obs_cb;
  cb.on_ready = on_ready_checks;
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  md_ctl_agent a = agent_at(f.port, "cvm", NULL);
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &cb, &o, &o.c), 0);
  run_until_closed(&loop, &o);
  md_tls_ctx_free(cctx);
  assert_int_equal(o.ready, 1);
  assert_int_equal(f.cancels, 1);
  assert_int_equal(o.results, 1);
  assert_true(o.from_agent);
  assert_int_equal(o.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_true(o.updates >= 1 && o.updates < 1000);
  assert_int_equal(o.kind, MD_CLIENT_OK);
  fake_stop(&f);
}

/* A run the agent refuses: on_error with the run id, no result, and the
 * session goes on. */
static void test_run_denied(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_DENY_RUN);
  Mtrdiag__V1__RunRequest r;
  fill_request(&r, "r9", 3);
  struct obs o = {.req = &r, .close_after_result = true};
  connect_obs(&loop, &f, &o, g_dir, "ops", "cvm", NULL, 5000);
  assert_int_equal(o.errors, 1);
  assert_int_equal(o.err_code, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED);
  assert_string_equal(o.err_run, "r9");
  assert_non_null(strstr(o.err_msg, "allow_targets"));
  assert_int_equal(o.results, 0);
  assert_int_equal(o.close_status, 0);
  fake_stop(&f);
}

/* The agent goes away mid-run: the run still gets its (made-up) result
 * with the path so far, and the session says why it ended. */
static void test_close_mid_run(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_CLOSE_MID_RUN);
  Mtrdiag__V1__RunRequest r;
  fill_request(&r, "r2", 50);
  struct obs o = {.req = &r};
  connect_obs(&loop, &f, &o, g_dir, "ops", "cvm", NULL, 5000);
  assert_int_equal(o.updates, 1);
  assert_int_equal(o.results, 1);
  assert_false(o.from_agent);
  assert_int_equal(o.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_FAILED);
  assert_int_equal(o.result_hops, 1);
  assert_non_null(strstr(o.message, "connection closed"));
  assert_int_equal(o.kind, MD_CLIENT_ERR_CLOSED);
  assert_true(o.close_status < 0);
  assert_non_null(strstr(o.reason, "connection closed: "));
  fake_stop(&f);
}

/* The controller closes with a run open: the run ends CANCELLED (made up). */
static void test_close_with_open_run(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  Mtrdiag__V1__RunRequest r;
  fill_request(&r, "r3", 1000);
  struct obs o = {.req = &r};
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  md_ctl_agent a = agent_at(f.port, "cvm", NULL);
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &obs_cb, &o, &o.c), 0);
  while (o.updates < 2)
    uv_run(&loop, UV_RUN_ONCE);
  md_client_close(o.c);
  run_until_closed(&loop, &o);
  md_tls_ctx_free(cctx);
  assert_int_equal(o.results, 1);
  assert_false(o.from_agent);
  assert_int_equal(o.status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED);
  assert_true(o.result_hops == 1);
  assert_int_equal(o.close_status, 0);
  fake_stop(&f);
}

/* Closing at once, before the TCP connect is through. */
static void test_close_while_connecting(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  md_ctl_agent a = agent_at(f.port, "cvm", NULL);
  struct obs o = {0};
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &obs_cb, &o, &o.c), 0);
  assert_int_equal(md_client_get_state(o.c), MD_CLIENT_CONNECTING);
  md_client_close(o.c);
  assert_int_equal(o.closed, 0); /* never synchronously */
  run_until_closed(&loop, &o);
  md_tls_ctx_free(cctx);
  assert_int_equal(o.ready, 0);
  assert_int_equal(o.close_status, 0);
  assert_int_equal(o.kind, MD_CLIENT_OK);
  assert_int_equal(f.hellos, 0);
  fake_stop(&f);
}

/* ---- tests: each failure has its own class and words */

static void expect_failure(enum fake_mode mode, const char *cert_dir, const char *trust_dir,
                           const char *ctl, const char *tls_name, const char *pin,
                           unsigned timeout_ms, enum md_client_err kind, const char *words,
                           struct fake *out) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, cert_dir, trust_dir, mode);
  struct obs o = {.close_on_ready = true};
  connect_obs(&loop, &f, &o, g_dir, ctl, tls_name, pin, timeout_ms);
  if (o.kind != kind || !strstr(o.reason, words))
    fail_msg("expected %s \"%s...\", got %s: \"%s\"", md_client_err_code(kind), words,
             md_client_err_code(o.kind), o.reason);
  assert_int_equal(o.ready, 0);
  assert_true(o.close_status < 0);
  assert_int_equal(strncmp(o.reason, md_client_err_text(kind), strlen(md_client_err_text(kind))),
                   0);
  if (out)
    *out = f;
  fake_stop(&f);
}

static void test_no_hello_ack_times_out(void **state) {
  (void)state;
  int64_t t0 = md_now_mono_ns();
  expect_failure(FAKE_NO_HELLO_ACK, g_dir, g_dir, "ops", "cvm", NULL, 300, MD_CLIENT_ERR_TIMEOUT,
                 "no HelloAck from 127.0.0.1:", NULL);
  int64_t ms = (md_now_mono_ns() - t0) / 1000000;
  assert_true(ms >= 250 && ms < 2000);
}

static void test_tls_handshake_times_out(void **state) {
  (void)state;
  expect_failure(FAKE_RAW_TCP, g_dir, g_dir, "ops", "cvm", NULL, 300, MD_CLIENT_ERR_TIMEOUT,
                 "TLS handshake with 127.0.0.1:", NULL);
}

static void test_not_authorised_error(void **state) {
  (void)state;
  expect_failure(FAKE_NOT_AUTHORISED, g_dir, g_dir, "ops", "cvm", NULL, 5000,
                 MD_CLIENT_ERR_NOT_AUTHORISED, "not in allowed_controllers", NULL);
}

/* The agent trusts another CA: TLS 1.3 lets our handshake finish, the
 * refusal comes after (md_tls.h). */
static void test_not_authorised_tls(void **state) {
  (void)state;
  expect_failure(FAKE_OK, g_dir, g_dir2, "ops", "cvm", NULL, 5000, MD_CLIENT_ERR_NOT_AUTHORISED,
                 "refused our certificate: certificate not trusted", NULL);
}

static void test_expired_controller(void **state) {
  (void)state;
  expect_failure(FAKE_OK, g_dir, g_dir, "old", "cvm", NULL, 5000, MD_CLIENT_ERR_NOT_AUTHORISED,
                 "refused our certificate: certificate expired", NULL);
}

static void test_untrusted_agent(void **state) {
  (void)state;
  expect_failure(FAKE_OK, g_dir2, g_dir, "ops", "cvm", NULL, 5000, MD_CLIENT_ERR_UNTRUSTED,
                 "which is not our tls.ca", NULL);
}

static void test_name_mismatch(void **state) {
  (void)state;
  expect_failure(FAKE_OK, g_dir, g_dir, "ops", "local", NULL, 5000, MD_CLIENT_ERR_NAME_MISMATCH,
                 "expected local, got cvm", NULL);
}

static void test_pin_mismatch(void **state) {
  (void)state;
  expect_failure(FAKE_OK, g_dir, g_dir, "ops", "cvm", g_pin_ops, 5000, MD_CLIENT_ERR_PIN_MISMATCH,
                 g_pin_ops, NULL);
}

static void test_garbage(void **state) {
  (void)state;
  expect_failure(FAKE_GARBAGE_FRAME, g_dir, g_dir, "ops", "cvm", NULL, 5000, MD_CLIENT_ERR_PROTOCOL,
                 "bad frame", NULL);
  struct fake f;
  expect_failure(FAKE_GARBAGE_MESSAGE, g_dir, g_dir, "ops", "cvm", NULL, 5000,
                 MD_CLIENT_ERR_PROTOCOL, "protocol error: ", &f);
}

static void test_protocol_violations(void **state) {
  (void)state;
  expect_failure(FAKE_OLD_VERSION, g_dir, g_dir, "ops", "cvm", NULL, 5000, MD_CLIENT_ERR_PROTOCOL,
                 "protocol version 2", NULL);
  struct fake f;
  expect_failure(FAKE_BAD_SYNC, g_dir, g_dir, "ops", "cvm", NULL, 5000, MD_CLIENT_ERR_PROTOCOL,
                 "does not answer our request", &f);
  assert_int_equal(f.errors_in, 1); /* the agent was told */
  assert_int_equal(f.last_error_in, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
}

static void test_agent_closes(void **state) {
  (void)state;
  expect_failure(FAKE_CLOSE_ON_HELLO, g_dir, g_dir, "ops", "cvm", NULL, 5000, MD_CLIENT_ERR_CLOSED,
                 "before answering our Hello", NULL);
}

static void test_refused(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  int port = dead_port();
  md_ctl_agent a = agent_at(port, "cvm", NULL);
  struct obs o = {0};
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &obs_cb, &o, &o.c), 0);
  run_until_closed(&loop, &o);
  md_tls_ctx_free(cctx);
  assert_int_equal(o.kind, MD_CLIENT_ERR_REFUSED);
  assert_int_equal(o.close_status, UV_ECONNREFUSED);
  assert_non_null(strstr(o.reason, "connection refused: nothing listens on 127.0.0.1:"));
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_resolve(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  md_ctl_agent a = agent_at(f.port, "cvm", NULL);
  a.has_addr = false;
  a.host = "localhost";
  struct obs o = {.close_on_ready = true};
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &obs_cb, &o, &o.c), 0);
  assert_int_equal(md_client_get_state(o.c), MD_CLIENT_RESOLVING);
  run_until_closed(&loop, &o);
  /* localhost may be ::1 first where nothing listens: either is fine */
  assert_true(o.ready == 1 || o.kind == MD_CLIENT_ERR_REFUSED);
  md_tls_ctx_free(cctx);
  fake_stop(&f);
}

static void test_bad_arguments(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_tls_ctx *cctx = make_ctx(MD_TLS_CLIENT, g_dir, "ops", g_dir);
  md_ctl_agent a = agent_at(1, "cvm", NULL);
  md_client *c = NULL;
  md_client_opts opts = {.sync_samples = MD_CLIENT_MAX_SYNC_SAMPLES + 1};
  assert_int_equal(md_client_connect(&loop, cctx, &a, &opts, &obs_cb, NULL, &c), -EINVAL);
  a.name = NULL;
  assert_int_equal(md_client_connect(&loop, cctx, &a, NULL, &obs_cb, NULL, &c), -EINVAL);
  assert_null(c);
  assert_string_equal(md_client_err_code(MD_CLIENT_ERR_NOT_AUTHORISED), "not_authorised");
  assert_string_equal(md_client_err_text(MD_CLIENT_ERR_REFUSED), "connection refused");
  assert_string_equal(md_client_state_name(MD_CLIENT_READY), "ready");
  md_tls_ctx_free(cctx);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- mtrctl agents against the fake */

static char *agents_output(uv_loop_t *loop, const char *yaml, bool json, unsigned timeout_ms,
                           int *rc) {
  md_ctl_config cfg;
  char err[MD_CONFIG_ERRLEN];
  char name[600];
  snprintf(name, sizeof name, "%s/ctl.yaml", g_dir); /* relative tls paths resolve into g_dir */
  if (md_ctl_config_parse_string(yaml, strlen(yaml), name, &cfg, err, sizeof err) != 0)
    fail_msg("config: %s", err);
  md_cli_agents_args a = {.json = json, .timeout_ms = timeout_ms};
  char *buf = NULL, *ebuf = NULL;
  size_t len = 0, elen = 0;
  FILE *out = open_memstream(&buf, &len), *errf = open_memstream(&ebuf, &elen);
  *rc = md_cli_agents_run(loop, &cfg, &a, out, errf);
  fclose(out);
  fclose(errf);
  if (getenv("MD_TEST_VERBOSE"))
    fprintf(stderr, "%s%s", buf, ebuf);
  free(ebuf);
  md_ctl_config_free(&cfg);
  return buf;
}

static void test_agents_command(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_start(&f, &loop, g_dir, g_dir, FAKE_OK);
  int dead = dead_port();
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "tls: {cert: ops.crt, key: ops.key, ca: ca.crt}\n"
           "agents:\n"
           "  cvm: {address: \"127.0.0.1:%d\", pin_sha256: \"%s\"}\n"
           "  wrongname: {address: \"127.0.0.1:%d\"}\n"
           "  wrongpin: {address: \"127.0.0.1:%d\", tls_name: cvm, pin_sha256: \"%s\"}\n"
           "  gone: {address: \"127.0.0.1:%d\"}\n",
           f.port, g_pin_cvm, f.port, f.port, g_pin_ops, dead);
  int rc;
  char *text = agents_output(&loop, yaml, false, 3000, &rc);
  assert_int_equal(rc, MD_EXIT_AGENT);
  assert_non_null(strstr(text, "AGENT"));
  assert_non_null(strstr(text, "OFFSET_MS"));
  char *line = strstr(text, "\ncvm ");
  assert_non_null(line);
  assert_non_null(strstr(line, " ok "));
  assert_non_null(strstr(line, "9.9.9"));
  assert_non_null(strstr(line, "fakehost"));
  assert_non_null(strstr(text, "FAILED  name mismatch: "));
  assert_non_null(strstr(text, "FAILED  pin mismatch: "));
  assert_non_null(strstr(text, "FAILED  connection refused: "));
  free(text);

  char *js = agents_output(&loop, yaml, true, 3000, &rc);
  assert_int_equal(rc, MD_EXIT_AGENT);
  json_error_t je;
  json_t *doc = json_loads(js, 0, &je);
  assert_non_null(doc);
  assert_false(json_is_true(json_object_get(doc, "all_ok")));
  json_t *arr = json_object_get(doc, "agents");
  assert_int_equal(json_array_size(arr), 4);
  const char *codes[] = {NULL, "name_mismatch", "pin_mismatch", "refused"};
  for (size_t i = 0; i < 4; i++) {
    json_t *o = json_array_get(arr, i);
    if (!codes[i]) {
      assert_true(json_is_true(json_object_get(o, "ok")));
      assert_string_equal(json_string_value(json_object_get(o, "cert_name")), "cvm");
      assert_true(json_is_number(json_object_get(o, "rtt_ms")));
      assert_true(json_is_number(json_object_get(o, "clock_offset_ms")));
    } else {
      assert_false(json_is_true(json_object_get(o, "ok")));
      json_t *e = json_object_get(o, "error");
      assert_string_equal(json_string_value(json_object_get(e, "code")), codes[i]);
    }
  }
  json_decref(doc);
  free(js);

  /* all answer: exit 0 */
  snprintf(yaml, sizeof yaml,
           "tls: {cert: ops.crt, key: ops.key, ca: ca.crt}\n"
           "agents: {cvm: {address: \"127.0.0.1:%d\"}}\n",
           f.port);
  text = agents_output(&loop, yaml, false, 3000, &rc);
  assert_int_equal(rc, MD_EXIT_OK);
  free(text);
  fake_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ready_info_and_close),
      cmocka_unit_test(test_clock_offset),
      cmocka_unit_test(test_to_agent_time),
      cmocka_unit_test(test_run_every_option),
      cmocka_unit_test(test_cancel_and_local_checks),
      cmocka_unit_test(test_run_denied),
      cmocka_unit_test(test_close_mid_run),
      cmocka_unit_test(test_close_with_open_run),
      cmocka_unit_test(test_close_while_connecting),
      cmocka_unit_test(test_no_hello_ack_times_out),
      cmocka_unit_test(test_tls_handshake_times_out),
      cmocka_unit_test(test_not_authorised_error),
      cmocka_unit_test(test_not_authorised_tls),
      cmocka_unit_test(test_expired_controller),
      cmocka_unit_test(test_untrusted_agent),
      cmocka_unit_test(test_name_mismatch),
      cmocka_unit_test(test_pin_mismatch),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_protocol_violations),
      cmocka_unit_test(test_agent_closes),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_agents_command),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
