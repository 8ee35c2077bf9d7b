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
 * The daemon and controller helpers are shared with test_agent_session.c
 * (agent_fixture.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "daemon.h"
#include "md_chan.h"
#include "md_pki.h"
#include "md_time.h"
#include "md_tls.h"
#include "md_wire.h"

static md_tls_ctx *g_ops_ctx, *g_other_ctx, *g_new_ops_ctx;
static bool g_can_probe;

/* ---- the agent */

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

/* agent1 on 127.0.0.1:<any>, of the first CA, allowing ops and other to
 * probe 127.0.0.1. */
static void start_agent(tctx *t) {
  char text[4096];
  cfg_text(text, sizeof text, "", "\"127.0.0.1/32\"", "ops, other", NULL);
  start_agent_text(t, text, true, NULL);
}

/* Reload from a file written now; the result code. */
static int reload_text(tctx *t, const char *text, char *err, size_t errlen) {
  return md_daemon_reload_file(t->d, write_cfg("reload.yaml", text), err, errlen);
}

/* ---- a controller made of md_chan */

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

/* A refusal: the Error expected (agent_fixture.c), and the session stays up. */
static void expect_refusal(tctx *t, client *cl, const char *id, Mtrdiag__V1__ErrorCode code,
                           const char *want) {
  (void)expect_error(t, cl, id, code, want);
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
  send_run(&cl, "r1", "127.0.0.1", 8, 150, 0); /* ~1.2 s */
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
  send_run(&cl, "r2", "127.0.0.1", 3, 100, 0);
  expect_refusal(&t, &cl, "r2", MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED,
                 "target 127.0.0.1 is not in policy.allow_targets [198.18.0.0/15]");
  send_run(&cl, "r3", "198.18.0.1", 6, 100, 0); /* checked only, never probed */
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
  send_run(&cl, "r4", "127.0.0.1", 2, 100, 0);
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
  send_run(&cl, "r1", "203.0.113.9", 3, 100, 0);
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
    send_run(&cl, "r1", "127.0.0.1", 3, 100, 0);
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
  finish_agent(&t);
}

/* ---- set-up */

static int setup(void **state) {
  (void)state;
  char err[256];
  const char *sans[] = {"127.0.0.1"};
  if (agent_fixture_setup("/tmp/md_reload_test.XXXXXX", err, sizeof err) != 0 ||
      md_pki_issue(g_dir, "other", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0 ||
      md_pki_init(pth("new"), err, sizeof err) != 0 ||
      md_pki_issue(pth("new"), "agent1", MD_PKI_AGENT, sans, 1, 0, err, sizeof err) != 0 ||
      md_pki_issue(pth("new"), "ops", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof err) != 0) {
    fprintf(stderr, "pki: %s\n", err);
    return -1;
  }
  g_ops_ctx = client_ctx("ops", "ca.crt");
  g_other_ctx = client_ctx("other", "ca.crt");
  g_new_ops_ctx = client_ctx("new/ops", "new/ca.crt");
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
  return agent_fixture_cleanup();
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
