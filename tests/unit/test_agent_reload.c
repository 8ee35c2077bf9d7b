/* Reload (SIGHUP's md_daemon_reload_file) with the daemon and md_chan
 * controllers in one process on 127.0.0.1, certificates from md_pki:
 *
 *   - a new policy refuses a target the old one allowed, while a run
 *     started before the reload completes OK on the same connection,
 *     which stays up; the new limits apply to new requests;
 *   - a configuration error (YAML, unknown key) or unusable TLS files on
 *     reload: an error naming the file, and the old configuration, TLS
 *     context and policy stay in force;
 *   - new certificates (another CA): new connections get the new server
 *     certificate and are checked against the new CA, the connection made
 *     before goes on with the old one;
 *   - allowed_controllers: a controller removed from the list cannot
 *     connect any more; its session from before is not dropped;
 *   - many reloads with sessions and runs in flight, and a reload while
 *     stopping (refused): no leak, no use after free (ASan build).
 * Helpers are copied from test_agent_session.c (kept self-contained). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "md_chan.h"
#include "md_pki.h"
#include "md_time.h"
#include "md_tls.h"
#include "md_wire.h"

static char g_dir[256];
static md_tls_ctx *g_ops_ctx, *g_other_ctx, *g_new_ops_ctx;
static bool g_can_probe;

/* ---- fixture: a loop, an agent, a guard timer */

typedef struct tctx {
  uv_loop_t loop;
  uv_timer_t guard;
  bool timed_out;
  md_agent_config cfg;
  md_daemon *d;
  md_addr addr;
  bool stopped;
} tctx;

static void on_guard(uv_timer_t *t) {
  ((tctx *)t->data)->timed_out = true;
}

#define PUMP_UNTIL(T, MS, COND)                                                                    \
  do {                                                                                             \
    (T)->timed_out = false;                                                                        \
    uv_timer_start(&(T)->guard, on_guard, (MS), 0);                                                \
    while (!(COND) && !(T)->timed_out)                                                             \
      uv_run(&(T)->loop, UV_RUN_ONCE);                                                             \
    uv_timer_stop(&(T)->guard);                                                                    \
    if (!(COND))                                                                                   \
      fail_msg("timed out after %d ms waiting for: %s", (int)(MS), #COND);                         \
  } while (0)

static const char *pth(const char *file) {
  static char buf[8][512];
  static int i;
  i = (i + 1) % 8;
  snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, file);
  return buf[i];
}

/* The agent's configuration text: pki is "" (the first CA) or "new/";
 * allow and ctl are flow-list bodies; extra policy keys may follow. */
static void cfg_text(char *text, size_t len, const char *pki, const char *allow, const char *ctl,
                     const char *extra) {
  char crt[64], key[64], ca[64];
  snprintf(crt, sizeof crt, "%sagent1.crt", pki);
  snprintf(key, sizeof key, "%sagent1.key", pki);
  snprintf(ca, sizeof ca, "%sca.crt", pki);
  snprintf(
      text, len,
      "name: agent1\n"
      "listen: [\"127.0.0.1:7447\"]\n"
      "tls: { cert: %s, key: %s, ca: %s, allowed_controllers: [%s] }\n"
      "policy: { allow_targets: [%s], min_interval: 0.05, max_probes_per_second: 10000%s%s }\n",
      pth(crt), pth(key), pth(ca), ctl, allow, extra && extra[0] ? ", " : "", extra ? extra : "");
}

/* Write a configuration file in the temp dir; its path. */
static const char *write_cfg(const char *name, const char *text) {
  const char *path = pth(name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static void start_agent(tctx *t) {
  memset(t, 0, sizeof *t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  uv_timer_init(&t->loop, &t->guard);
  t->guard.data = t;
  char text[4096], err[MD_CONFIG_ERRLEN];
  cfg_text(text, sizeof text, "", "\"127.0.0.1/32\"", "ops, other", NULL);
  if (md_agent_config_parse_string(text, strlen(text), "/test/agent.yaml", &t->cfg, err,
                                   sizeof err) != 0)
    fail_msg("config: %s", err);
  md_addr_set_port(&t->cfg.listen[0].addr, 0); /* the kernel picks */
  if (md_daemon_start(&t->loop, &t->cfg, NULL, &t->d, err, sizeof err) != 0)
    fail_msg("daemon: %s", err);
  assert_int_equal(md_daemon_listen_addr(t->d, 0, &t->addr), 0);
}

static void on_stopped(md_daemon *d, void *ud) {
  (void)d;
  ((tctx *)ud)->stopped = true;
}

static void stop_agent(tctx *t) {
  md_daemon_stop(t->d, on_stopped, t);
  PUMP_UNTIL(t, 5000, t->stopped);
  md_daemon_free(t->d);
  uv_close((uv_handle_t *)&t->guard, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  md_agent_config_free(&t->cfg);
}

/* Reload from a file written now; the result code. */
static int reload_text(tctx *t, const char *text, char *err, size_t errlen) {
  return md_daemon_reload_file(t->d, write_cfg("reload.yaml", text), err, errlen);
}

/* ---- a controller made of md_chan */

#define MAX_MSGS 512

typedef struct client {
  md_chan *chan;
  bool up_called;
  int up_status;
  bool closed;
  char reason[256];
  Mtrdiag__V1__Envelope *msgs[MAX_MSGS];
  bool used[MAX_MSGS];
  size_t n;
} client;

static void cl_up(md_chan *c, int status) {
  client *cl = md_chan_data(c);
  cl->up_called = true;
  cl->up_status = status;
}

static void cl_msg(md_chan *c, const Mtrdiag__V1__Envelope *env) {
  client *cl = md_chan_data(c);
  assert_true(cl->n < MAX_MSGS);
  size_t len = protobuf_c_message_get_packed_size(&env->base);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  protobuf_c_message_pack(&env->base, buf);
  cl->msgs[cl->n++] = mtrdiag__v1__envelope__unpack(NULL, len, buf);
  assert_non_null(cl->msgs[cl->n - 1]);
  free(buf);
}

static void cl_close(md_chan *c, int status, const char *reason) {
  (void)status;
  client *cl = md_chan_data(c);
  cl->closed = true;
  snprintf(cl->reason, sizeof cl->reason, "%s", reason);
  cl->chan = NULL;
}

static const md_chan_cb g_cl_cb = {cl_up, cl_msg, cl_close};

static void client_connect(tctx *t, client *cl, md_tls_ctx *ctx) {
  memset(cl, 0, sizeof *cl);
  assert_int_equal(
      md_chan_connect(&t->loop, ctx, &t->addr, "agent1", NULL, 5000, &g_cl_cb, cl, &cl->chan), 0);
}

static void client_free(client *cl) {
  for (size_t i = 0; i < cl->n; i++)
    md_wire_free(cl->msgs[i]);
  cl->n = 0;
}

static const char *run_of(const Mtrdiag__V1__Envelope *e) {
  switch (e->msg_case) {
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED:
    return e->run_accepted->run_id;
  case MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE:
    return e->hop_update->run_id;
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT:
    return e->run_result->run_id;
  case MTRDIAG__V1__ENVELOPE__MSG_ERROR:
    return e->error->run_id;
  default:
    return NULL;
  }
}

static Mtrdiag__V1__Envelope *take(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run) {
  for (size_t i = 0; i < cl->n; i++) {
    Mtrdiag__V1__Envelope *e = cl->msgs[i];
    if (cl->used[i] || e->msg_case != mc)
      continue;
    if (run && (!run_of(e) || strcmp(run_of(e), run) != 0))
      continue;
    cl->used[i] = true;
    return e;
  }
  return NULL;
}

static bool has(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run) {
  for (size_t i = 0; i < cl->n; i++) {
    Mtrdiag__V1__Envelope *e = cl->msgs[i];
    if (!cl->used[i] && e->msg_case == mc && (!run || (run_of(e) && !strcmp(run_of(e), run))))
      return true;
  }
  return false;
}

static Mtrdiag__V1__Envelope *wait_msg(tctx *t, client *cl, Mtrdiag__V1__Envelope__MsgCase mc,
                                       const char *run, unsigned ms) {
  t->timed_out = false;
  uv_timer_start(&t->guard, on_guard, ms, 0);
  while (!has(cl, mc, run) && !cl->closed && !t->timed_out)
    uv_run(&t->loop, UV_RUN_ONCE);
  uv_timer_stop(&t->guard);
  Mtrdiag__V1__Envelope *e = take(cl, mc, run);
  if (!e)
    fail_msg("no %s%s%s arrived (%s)", md_wire_msg_name(mc), run ? " for run " : "", run ? run : "",
             cl->closed ? cl->reason : "timed out");
  return e;
}

static void send_hello(client *cl) {
  Mtrdiag__V1__Hello h = MTRDIAG__V1__HELLO__INIT;
  h.protocol_version = MD_WIRE_VERSION;
  h.protocol_revision = MD_WIRE_REVISION;
  h.software_version = "test";
  h.controller_name = "ops";
  assert_int_equal(md_chan_send(cl->chan, &h.base), 0);
}

static void client_ready(tctx *t, client *cl, md_tls_ctx *ctx) {
  client_connect(t, cl, ctx);
  PUMP_UNTIL(t, 5000, cl->up_called);
  assert_int_equal(cl->up_status, 0);
  send_hello(cl);
  (void)wait_msg(t, cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL, 5000);
}

static void client_close(tctx *t, client *cl) {
  if (cl->chan)
    md_chan_close(cl->chan);
  PUMP_UNTIL(t, 5000, cl->closed);
  client_free(cl);
}

/* A TimeSync round trip: the session is alive and served. */
static void time_sync(tctx *t, client *cl) {
  Mtrdiag__V1__TimeSyncRequest q = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
  q.seq = 7;
  q.client_send_real_ns = md_now_real_ns();
  assert_int_equal(md_chan_send(cl->chan, &q.base), 0);
  Mtrdiag__V1__Envelope *e =
      wait_msg(t, cl, MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REPLY, NULL, 5000);
  assert_int_equal(e->time_sync_reply->seq, 7);
}

static void send_run(client *cl, const char *id, const char *target, uint32_t cycles,
                     uint32_t interval_ms) {
  Mtrdiag__V1__RunRequest r = MTRDIAG__V1__RUN_REQUEST__INIT;
  r.run_id = (char *)id;
  r.target = (char *)target;
  r.target_name = "lo";
  r.cycles = cycles;
  r.interval_ms = interval_ms;
  r.max_ttl = 3;
  r.gracetime_ms = 500;
  r.no_dns = 1;
  assert_int_equal(md_chan_send(cl->chan, &r.base), 0);
}

static void expect_refusal(tctx *t, client *cl, const char *id, Mtrdiag__V1__ErrorCode code,
                           const char *want) {
  Mtrdiag__V1__Envelope *e = wait_msg(t, cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, id, 5000);
  if (e->error->code != code)
    fail_msg("want %s, got %s: %s", md_wire_error_name(code), md_wire_error_name(e->error->code),
             e->error->message);
  if (!strstr(e->error->message, want))
    fail_msg("message \"%s\" lacks \"%s\"", e->error->message, want);
  assert_false(cl->closed);
}

/* ---- tests */

/* The issue's case: a new policy refuses a target the old one allowed,
 * while a run started before the reload completes OK. */
static void test_reload_policy_run_in_flight(void **state) {
  (void)state;
  if (!g_can_probe)
    skip(); /* no raw or ping sockets: no run can be in flight */
  tctx t;
  client cl;
  char text[4096], err[MD_CONFIG_ERRLEN];
  start_agent(&t);
  const md_agent_config *before = md_daemon_config(t.d);
  assert_ptr_equal(before, &t.cfg);
  client_ready(&t, &cl, g_ops_ctx);
  send_run(&cl, "r1", "127.0.0.1", 8, 150); /* ~1.2 s */
  (void)wait_msg(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "r1", 5000);
  assert_int_equal(md_daemon_active_runs(t.d), 1);

  cfg_text(text, sizeof text, "", "\"198.18.0.0/15\"", "ops, other", "max_cycles: 5");
  if (reload_text(&t, text, err, sizeof err) != 0)
    fail_msg("reload: %s", err);
  const md_agent_config *now = md_daemon_config(t.d);
  assert_ptr_not_equal(now, before);
  assert_int_equal(now->policy.max_cycles, 5);
  assert_int_equal(md_daemon_sessions(t.d), 1);
  assert_int_equal(md_daemon_active_runs(t.d), 1); /* the run goes on, still counted */

  /* the same connection: the new policy answers */
  send_run(&cl, "r2", "127.0.0.1", 3, 100);
  expect_refusal(&t, &cl, "r2", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "target 127.0.0.1 is not in policy.allow_targets [198.18.0.0/15]");
  send_run(&cl, "r3", "198.18.0.1", 6, 100); /* checked only, never probed */
  expect_refusal(&t, &cl, "r3", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "cycles 6 is over policy.max_cycles 5");
  time_sync(&t, &cl);

  /* the run accepted under the old policy finishes as it was asked */
  Mtrdiag__V1__Envelope *e = wait_msg(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT, "r1", 15000);
  assert_int_equal(e->run_result->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  assert_int_equal(e->run_result->cycles_done, 8);
  assert_non_null(e->run_result->path);
  assert_true(e->run_result->path->reached);
  assert_string_equal(e->run_result->path->source, "agent1");
  PUMP_UNTIL(&t, 2000, md_daemon_active_runs(t.d) == 0);
  assert_false(cl.closed);
  md_agent_stats st;
  md_daemon_get_stats(t.d, &st);
  assert_int_equal(st.runs_ok, 1);
  assert_int_equal(st.connections, 1);

  /* and back: the old target is allowed again, on the same connection */
  cfg_text(text, sizeof text, "", "\"127.0.0.1/32\"", "ops", NULL);
  assert_int_equal(reload_text(&t, text, err, sizeof err), 0);
  send_run(&cl, "r4", "127.0.0.1", 2, 100);
  (void)wait_msg(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "r4", 5000);
  e = wait_msg(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT, "r4", 10000);
  assert_int_equal(e->run_result->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
  client_close(&t, &cl);
  stop_agent(&t);
}

/* Errors on reload: named, and nothing changes. */
static void test_reload_errors_keep_old(void **state) {
  (void)state;
  tctx t;
  client cl;
  char text[4096], err[MD_CONFIG_ERRLEN];
  start_agent(&t);
  client_ready(&t, &cl, g_ops_ctx);
  const md_agent_config *before = md_daemon_config(t.d);

  /* not YAML the loader takes */
  int rc = reload_text(&t, "name: agent1\nlisten: [\"127.0.0.1:7447\"\n", err, sizeof err);
  assert_int_equal(rc, -EINVAL);
  assert_non_null(strstr(err, pth("reload.yaml")));
  /* an unknown key, with file:line: key */
  cfg_text(text, sizeof text, "", "\"127.0.0.1/32\"", "ops", "max_cyclez: 5");
  assert_int_equal(reload_text(&t, text, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "reload.yaml:4: policy: unknown key 'max_cyclez'"));
  /* a file that is not there */
  assert_int_equal(md_daemon_reload_file(t.d, pth("missing.yaml"), err, sizeof err), -ENOENT);
  /* TLS files that do not load: the whole reload is refused */
  cfg_text(text, sizeof text, "nowhere/", "\"198.18.0.0/15\"", "ops", NULL);
  assert_int_equal(reload_text(&t, text, err, sizeof err), MD_DAEMON_ETLS);
  assert_non_null(strstr(err, "nowhere/agent1.crt"));
  /* a key that belongs to another certificate */
  snprintf(text, sizeof text,
           "name: agent1\nlisten: [\"127.0.0.1:7447\"]\n"
           "tls: { cert: %s, key: %s, ca: %s, allowed_controllers: [ops] }\n"
           "policy: { allow_targets: [\"198.18.0.0/15\"] }\n",
           pth("agent1.crt"), pth("new/agent1.key"), pth("ca.crt"));
  assert_int_equal(reload_text(&t, text, err, sizeof err), MD_DAEMON_ETLS);

  /* still the first configuration, policy and TLS context */
  assert_ptr_equal(md_daemon_config(t.d), before);
  assert_int_equal(md_daemon_config(t.d)->policy.n_allow_targets, 1);
  send_run(&cl, "r1", "203.0.113.9", 3, 100);
  expect_refusal(&t, &cl, "r1", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "not in policy.allow_targets [127.0.0.1/32]");
  time_sync(&t, &cl);
  client c2;
  client_ready(&t, &c2, g_ops_ctx); /* the old certificate still serves new connections */
  client_close(&t, &c2);
  client_close(&t, &cl);
  stop_agent(&t);
}

/* Certificate rotation to a new CA: new connections get the new context,
 * the one from before keeps going. */
static void test_reload_certificates(void **state) {
  (void)state;
  tctx t;
  client old_cl, c;
  char text[4096], err[MD_CONFIG_ERRLEN];
  start_agent(&t);
  client_ready(&t, &old_cl, g_ops_ctx);
  cfg_text(text, sizeof text, "new/", "\"127.0.0.1/32\"", "ops", NULL);
  if (reload_text(&t, text, err, sizeof err) != 0)
    fail_msg("reload: %s", err);

  /* a controller of the old CA no longer gets in: it does not trust the
   * new server certificate (and the agent no longer trusts its) */
  client_connect(&t, &c, g_ops_ctx);
  PUMP_UNTIL(&t, 5000, c.closed || (c.up_called && c.up_status != 0));
  if (c.chan)
    md_chan_close(c.chan);
  PUMP_UNTIL(&t, 5000, c.closed);
  client_free(&c);
  /* one of the new CA does */
  client_ready(&t, &c, g_new_ops_ctx);
  time_sync(&t, &c);
  client_close(&t, &c);
  /* the connection made before the reload is untouched */
  assert_false(old_cl.closed);
  time_sync(&t, &old_cl);
  client_close(&t, &old_cl);
  stop_agent(&t);
}

/* allowed_controllers shrinks: new connections of the removed name are
 * refused; its session from before stays. */
static void test_reload_allowed_controllers(void **state) {
  (void)state;
  tctx t;
  client before, after;
  char text[4096], err[MD_CONFIG_ERRLEN];
  start_agent(&t);
  client_ready(&t, &before, g_other_ctx);
  cfg_text(text, sizeof text, "", "\"127.0.0.1/32\"", "ops", NULL);
  assert_int_equal(reload_text(&t, text, err, sizeof err), 0);
  client_connect(&t, &after, g_other_ctx);
  PUMP_UNTIL(&t, 5000, after.closed);
  bool refused = false;
  for (size_t i = 0; i < after.n; i++)
    if (after.msgs[i]->msg_case == MTRDIAG__V1__ENVELOPE__MSG_ERROR &&
        after.msgs[i]->error->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED)
      refused = true;
  assert_true(refused);
  client_free(&after);
  time_sync(&t, &before);
  assert_false(before.closed);
  client_close(&t, &before);
  stop_agent(&t);
}

/* Many reloads around sessions and runs; a reload while stopping. Under
 * ASan this is the check that replaced configurations are neither leaked
 * nor freed while a session or run could still use them. */
static void test_reload_lifetime(void **state) {
  (void)state;
  tctx t;
  client cl;
  char text[4096], err[MD_CONFIG_ERRLEN];
  start_agent(&t);
  cfg_text(text, sizeof text, "", "\"127.0.0.1/32\"", "ops", NULL);
  for (int i = 0; i < 3; i++) /* no session: each old one goes at once */
    assert_int_equal(reload_text(&t, text, err, sizeof err), 0);
  client_ready(&t, &cl, g_ops_ctx);
  if (g_can_probe) {
    send_run(&cl, "r1", "127.0.0.1", 3, 100);
    (void)wait_msg(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED, "r1", 5000);
  }
  for (int i = 0; i < 5; i++) /* session (and run) in flight: the old ones wait */
    assert_int_equal(reload_text(&t, text, err, sizeof err), 0);
  if (g_can_probe) {
    Mtrdiag__V1__Envelope *e =
        wait_msg(&t, &cl, MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT, "r1", 10000);
    assert_int_equal(e->run_result->status, MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK);
    assert_string_equal(e->run_result->path->source, "agent1");
  }
  client_close(&t, &cl);
  PUMP_UNTIL(&t, 5000, md_daemon_sessions(t.d) == 0);
  /* a struct reload: the daemon takes the contents */
  md_agent_config c2;
  assert_int_equal(
      md_agent_config_parse_string(text, strlen(text), "/t2.yaml", &c2, err, sizeof err), 0);
  assert_int_equal(md_daemon_reload(t.d, &c2, err, sizeof err), 0);
  assert_null(c2.name); /* moved */
  assert_string_equal(md_daemon_config(t.d)->path, "/t2.yaml");
  /* stopping: refused, the caller keeps its configuration */
  md_daemon_stop(t.d, on_stopped, &t);
  assert_int_equal(
      md_agent_config_parse_string(text, strlen(text), "/t3.yaml", &c2, err, sizeof err), 0);
  assert_int_equal(md_daemon_reload(t.d, &c2, err, sizeof err), -ESHUTDOWN);
  assert_non_null(c2.name);
  md_agent_config_free(&c2);
  PUMP_UNTIL(&t, 5000, t.stopped);
  md_daemon_free(t.d);
  uv_close((uv_handle_t *)&t.guard, NULL);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t.loop), 0);
  md_agent_config_free(&t.cfg);
}

/* ---- set-up */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static md_tls_ctx *client_ctx(const char *pki, const char *name) {
  md_tls_ctx *ctx = NULL;
  char err[512], crt[64], key[64], ca[64];
  snprintf(crt, sizeof crt, "%s%s.crt", pki, name);
  snprintf(key, sizeof key, "%s%s.key", pki, name);
  snprintf(ca, sizeof ca, "%sca.crt", pki);
  if (md_tls_ctx_new(MD_TLS_CLIENT, pth(crt), pth(key), pth(ca), &ctx, err, sizeof err))
    fail_msg("ctx %s: %s", name, err);
  return ctx;
}

/* Can this process probe 127.0.0.1 (raw sockets, or ping sockets)? */
static bool probe_possible(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_prober *p = NULL;
  bool ok = false;
  if (md_prober_open(&loop, 0, &p) == 0) {
    ok = md_prober_is_raw(p);
    if (!ok) {
      int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
      ok = fd >= 0;
      if (fd >= 0)
        close(fd);
    }
    md_prober_close(p);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return ok;
}

static int setup(void **state) {
  (void)state;
  char err[256];
  signal(SIGPIPE, SIG_IGN);
  snprintf(g_dir, sizeof g_dir, "/tmp/md_reload_test.XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  const char *sans[] = {"127.0.0.1"};
  if (md_pki_init(g_dir, err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "agent1", MD_PKI_AGENT, sans, 1, 0, err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "ops", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "other", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0 ||
      md_pki_init(pth("new"), err, sizeof err) != 0 ||
      md_pki_issue(pth("new"), "agent1", MD_PKI_AGENT, sans, 1, 0, err, sizeof err) != 0 ||
      md_pki_issue(pth("new"), "ops", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0) {
    fprintf(stderr, "pki: %s\n", err);
    return -1;
  }
  g_ops_ctx = client_ctx("", "ops");
  g_other_ctx = client_ctx("", "other");
  g_new_ops_ctx = client_ctx("new/", "ops");
  g_can_probe = probe_possible();
  if (!g_can_probe)
    fprintf(stderr, "note: no raw or ping sockets: the run-in-flight test is skipped\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  md_tls_ctx_free(g_ops_ctx);
  md_tls_ctx_free(g_other_ctx);
  md_tls_ctx_free(g_new_ops_ctx);
  return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reload_policy_run_in_flight),
      cmocka_unit_test(test_reload_errors_keep_old),
      cmocka_unit_test(test_reload_certificates),
      cmocka_unit_test(test_reload_allowed_controllers),
      cmocka_unit_test(test_reload_lifetime),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
