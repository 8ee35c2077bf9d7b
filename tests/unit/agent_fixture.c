/* Test helper: an agent daemon and md_chan controllers in one process
 * (agent_fixture.h). Shared so the agent's session and reload tests drive
 * the daemon the same way. */
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

#include "agent_fixture.h"
#include "md_pki.h"

char g_dir[256];

/* ---- the agent */

void on_guard(uv_timer_t *t) {
  tctx *c = t->data;
  c->timed_out = true;
}

const char *pth(const char *file) {
  static char buf[8][512];
  static int i;
  i = (i + 1) % 8;
  snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, file);
  return buf[i];
}

void start_agent_text(tctx *t, const char *text, bool any_port, const md_daemon_opts *opts) {
  char err[MD_CONFIG_ERRLEN];
  memset(t, 0, sizeof *t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  uv_timer_init(&t->loop, &t->guard);
  t->guard.data = t;
  if (md_agent_config_parse_string(text, strlen(text), "/test/agent.yaml", &t->cfg, err,
                                   sizeof err) != 0)
    fail_msg("config: %s", err);
  if (any_port)
    md_addr_set_port(&t->cfg.listen[0].addr, 0); /* the kernel picks */
  if (md_daemon_start(&t->loop, &t->cfg, opts, &t->d, err, sizeof err) != 0)
    fail_msg("daemon: %s", err);
  assert_int_equal(md_daemon_listen_addr(t->d, 0, &t->addr), 0);
}

void on_stopped(md_daemon *d, void *ud) {
  (void)d;
  ((tctx *)ud)->stopped = true;
}

void finish_agent(tctx *t) {
  md_daemon_free(t->d);
  uv_close((uv_handle_t *)&t->guard, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  md_agent_config_free(&t->cfg);
}

void stop_agent(tctx *t) {
  md_daemon_stop(t->d, on_stopped, t);
  PUMP_UNTIL(t, 5000, t->stopped);
  finish_agent(t);
}

/* ---- a controller made of md_chan */

/* md_chan's connected callback: remembered for the test to check. */
static void cl_up(md_chan *c, int status) {
  client *cl = md_chan_data(c);
  cl->up_called = true;
  cl->up_status = status;
}

/* Keep a copy of every received Envelope (md_chan frees its own). */
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

/* md_chan's closed callback: status and reason, for the test to check. */
static void cl_close(md_chan *c, int status, const char *reason) {
  client *cl = md_chan_data(c);
  cl->closed = true;
  cl->close_status = status;
  snprintf(cl->reason, sizeof cl->reason, "%s", reason);
  cl->chan = NULL;
}

static const md_chan_cb g_cl_cb = {cl_up, cl_msg, cl_close};

void client_connect(tctx *t, client *cl, md_tls_ctx *ctx) {
  memset(cl, 0, sizeof *cl);
  assert_int_equal(
      md_chan_connect(&t->loop, ctx, &t->addr, "agent1", NULL, 5000, &g_cl_cb, cl, &cl->chan), 0);
}

void client_free(client *cl) {
  for (size_t i = 0; i < cl->n; i++)
    md_wire_free(cl->msgs[i]);
  cl->n = 0;
}

Mtrdiag__V1__Envelope *peek(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run) {
  for (size_t i = 0; i < cl->n; i++) {
    Mtrdiag__V1__Envelope *e = cl->msgs[i];
    if (cl->used[i] || e->msg_case != mc)
      continue;
    if (run) {
      const char *id = mc == MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED ? e->run_accepted->run_id
                       : mc == MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE ? e->hop_update->run_id
                       : mc == MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT ? e->run_result->run_id
                       : mc == MTRDIAG__V1__ENVELOPE__MSG_ERROR      ? e->error->run_id
                                                                     : NULL;
      if (!id || strcmp(id, run) != 0)
        continue;
    }
    return e;
  }
  return NULL;
}

Mtrdiag__V1__Envelope *take(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run) {
  Mtrdiag__V1__Envelope *e = peek(cl, mc, run);
  for (size_t i = 0; e && i < cl->n; i++)
    if (cl->msgs[i] == e)
      cl->used[i] = true;
  return e;
}

Mtrdiag__V1__Envelope *wait_msg(tctx *t, client *cl, Mtrdiag__V1__Envelope__MsgCase mc,
                                const char *run, unsigned ms) {
  t->timed_out = false;
  uv_timer_start(&t->guard, on_guard, ms, 0);
  while (!peek(cl, mc, run) && !cl->closed && !t->timed_out)
    uv_run(&t->loop, UV_RUN_ONCE);
  uv_timer_stop(&t->guard);
  Mtrdiag__V1__Envelope *e = take(cl, mc, run);
  if (!e)
    fail_msg("no %s%s%s arrived (%s)", md_wire_msg_name(mc), run ? " for run " : "", run ? run : "",
             cl->closed ? cl->reason : "timed out");
  return e;
}

void send_hello(client *cl) {
  Mtrdiag__V1__Hello h = MTRDIAG__V1__HELLO__INIT;
  h.protocol_version = MD_WIRE_VERSION;
  h.protocol_revision = MD_WIRE_REVISION;
  h.software_version = "test";
  h.controller_name = "ops";
  assert_int_equal(md_chan_send(cl->chan, &h.base), 0);
}

void client_ready(tctx *t, client *cl, md_tls_ctx *ctx) {
  client_connect(t, cl, ctx);
  PUMP_UNTIL(t, 5000, cl->up_called);
  assert_int_equal(cl->up_status, 0);
  send_hello(cl);
  (void)wait_msg(t, cl, MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK, NULL, 5000);
}

void client_close(tctx *t, client *cl) {
  if (cl->chan)
    md_chan_close(cl->chan);
  PUMP_UNTIL(t, 5000, cl->closed);
  client_free(cl);
}

void send_run(client *cl, const char *id, const char *target, uint32_t cycles, uint32_t interval_ms,
              int64_t start_at) {
  Mtrdiag__V1__RunRequest r = MTRDIAG__V1__RUN_REQUEST__INIT;
  r.run_id = (char *)id;
  r.target = (char *)target;
  r.target_name = "lo";
  r.cycles = cycles;
  r.interval_ms = interval_ms;
  r.max_ttl = 3;
  r.gracetime_ms = 500;
  r.no_dns = 1;
  r.start_at_real_ns = start_at;
  assert_int_equal(md_chan_send(cl->chan, &r.base), 0);
}

Mtrdiag__V1__Envelope *expect_error(tctx *t, client *cl, const char *id,
                                    Mtrdiag__V1__ErrorCode code, const char *want) {
  Mtrdiag__V1__Envelope *e = wait_msg(t, cl, MTRDIAG__V1__ENVELOPE__MSG_ERROR, id, 5000);
  if (e->error->code != code)
    fail_msg("want %s, got %s: %s", md_wire_error_name(code), md_wire_error_name(e->error->code),
             e->error->message);
  if (!strstr(e->error->message, want))
    fail_msg("message \"%s\" lacks \"%s\"", e->error->message, want);
  return e;
}

/* ---- set-up */

bool probe_possible(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_prober *p = NULL;
  bool ok = false;
  if (md_prober_open(&loop, 0, &p) == 0) {
    ok = md_prober_is_raw(p);
    if (!ok) { /* datagram ICMP: only if ping_group_range lets us open one */
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

int agent_fixture_setup(const char *tmpl, char *err, size_t errlen) {
  const char *sans[] = {"127.0.0.1"};
  signal(SIGPIPE, SIG_IGN);
  snprintf(g_dir, sizeof g_dir, "%s", tmpl);
  if (!mkdtemp(g_dir)) {
    snprintf(err, errlen, "%s: %s", tmpl, strerror(errno));
    return -1;
  }
  if (md_pki_init(g_dir, err, errlen) != 0 ||
      md_pki_issue(g_dir, "agent1", MD_PKI_AGENT, sans, 1, 0, err, errlen) != 0 ||
      md_pki_issue(g_dir, "ops", MD_PKI_CONTROLLER, NULL, 0, 0, err, errlen) != 0)
    return -1;
  return 0;
}

md_tls_ctx *client_ctx(const char *name, const char *ca) {
  md_tls_ctx *ctx = NULL;
  char err[512], crt[64], key[64];
  snprintf(crt, sizeof crt, "%s.crt", name);
  snprintf(key, sizeof key, "%s.key", name);
  if (md_tls_ctx_new(MD_TLS_CLIENT, pth(crt), pth(key), pth(ca), &ctx, err, sizeof err))
    fail_msg("ctx %s: %s", name, err);
  return ctx;
}

/* nftw's callback for agent_fixture_cleanup: remove one entry. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

int agent_fixture_cleanup(void) {
  return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
