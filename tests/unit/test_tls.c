/* md_tls end to end: certificates from md_pki, a server and a client, both
 * md_tls, on one uv loop over 127.0.0.1. */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "md_pki.h"
#include "md_tls.h"

static char g_dir[256];  /* the deployment CA */
static char g_dir2[300]; /* another CA */

/* ---- fixtures */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void issue(const char *dir, const char *name, enum md_pki_role role, int64_t nb,
                  int64_t na) {
  char err[256] = "";
  const char *sans[] = {"127.0.0.1", "localhost"};
  int r = md_pki_issue_window(dir, name, role, sans, role == MD_PKI_AGENT ? 2 : 0, nb, na, err,
                              sizeof(err));
  if (r != 0)
    fail_msg("issue %s: %s", name, err);
}

static int setup(void **state) {
  (void)state;
  char err[256];
  snprintf(g_dir, sizeof(g_dir), "/tmp/md_tls_test.XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  snprintf(g_dir2, sizeof(g_dir2), "%s/other", g_dir);
  if (md_pki_init(g_dir, err, sizeof(err)) != 0 || md_pki_init(g_dir2, err, sizeof(err)) != 0)
    return -1;
  const int64_t day = 86400;
  issue(g_dir, "cvm", MD_PKI_AGENT, -3600, 30 * day);
  issue(g_dir, "ops", MD_PKI_CONTROLLER, -3600, 30 * day);
  issue(g_dir, "old", MD_PKI_CONTROLLER, -2 * day, -day);
  issue(g_dir2, "ops", MD_PKI_CONTROLLER, -3600, 30 * day);
  issue(g_dir2, "cvm", MD_PKI_AGENT, -3600, 30 * day);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *pth(const char *dir, const char *file) {
  static char buf[4][512];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, file);
  return buf[i];
}

static md_tls_ctx *make_ctx(enum md_tls_role role, const char *dir, const char *name,
                            const char *ca_dir) {
  md_tls_ctx *ctx = NULL;
  char err[512] = "", crt[64], key[64];
  snprintf(crt, sizeof(crt), "%s.crt", name ? name : "");
  snprintf(key, sizeof(key), "%s.key", name ? name : "");
  int r = md_tls_ctx_new(role, name ? pth(dir, crt) : NULL, name ? pth(dir, key) : NULL,
                         pth(ca_dir, "ca.crt"), &ctx, err, sizeof(err));
  if (r != 0)
    fail_msg("ctx %s: %s", name ? name : "(none)", err);
  return ctx;
}

/* ---- one end of a test connection */

enum close_how { CLOSE_GRACEFUL, CLOSE_ABORT };

struct side {
  const char *label;
  md_tls_conn *c;
  /* behaviour */
  const uint8_t *send_on_hs;
  size_t send_len;
  bool echo;
  size_t close_after; /* close once this many bytes arrived (0: never) */
  enum close_how how;
  const char *expect_name;
  const char *expect_pin;
  bool abort_at_start; /* abort right after md_tls_conn_start */
  bool close_before_start;
  bool close_on_hs; /* graceful close right after the handshake writes */
  void (*hs_hook)(md_tls_conn *c, struct side *sd);
  unsigned hs_timeout_ms;
  /* results */
  int hs_calls, hs_status;
  int closed, close_status;
  char err[512];
  enum md_tls_err kind;
  char peer[64];
  char pin[MD_TLS_PIN_LEN];
  bool san_localhost;
  uint8_t *rx;
  size_t rx_len, rx_cap, chunks;
  bool close_requested;
};

struct pair {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_tcp_t *srv_tcp, *cli_tcp;
  uv_connect_t creq;
  uv_timer_t watchdog;
  bool watchdog_fired;
  bool raw_client;      /* plain TCP client that never speaks TLS */
  const char *raw_send; /* what it sends instead, if anything */
  uv_write_t raw_wreq;
  md_tls_ctx *sctx, *cctx;
  struct side s, c;
};

static void on_hs(md_tls_conn *c, int status) {
  struct side *sd = md_tls_conn_user(c);
  sd->hs_calls++;
  sd->hs_status = status;
  if (status != 0)
    return;
  const char *n = md_tls_peer_name(c);
  snprintf(sd->peer, sizeof(sd->peer), "%s", n ? n : "");
  assert_int_equal(md_tls_peer_spki_sha256_b64(c, sd->pin), 0);
  for (size_t i = 0; i < md_tls_peer_san_count(c); i++)
    if (strcmp(md_tls_peer_san(c, i), "localhost") == 0)
      sd->san_localhost = true;
  if (sd->send_on_hs)
    assert_int_equal(md_tls_conn_write(c, sd->send_on_hs, sd->send_len), 0);
  if (sd->hs_hook)
    sd->hs_hook(c, sd);
  if (sd->close_on_hs)
    md_tls_conn_close(c);
}

static void on_read(md_tls_conn *c, const uint8_t *data, size_t len) {
  struct side *sd = md_tls_conn_user(c);
  assert_true(len > 0);
  if (sd->rx_len + len > sd->rx_cap) {
    sd->rx_cap = (sd->rx_len + len) * 2;
    sd->rx = realloc(sd->rx, sd->rx_cap);
    assert_non_null(sd->rx);
  }
  memcpy(sd->rx + sd->rx_len, data, len);
  sd->rx_len += len;
  sd->chunks++;
  if (sd->echo)
    assert_int_equal(md_tls_conn_write(c, data, len), 0);
  if (sd->close_after && sd->rx_len >= sd->close_after && !sd->close_requested) {
    sd->close_requested = true;
    if (sd->how == CLOSE_ABORT)
      md_tls_conn_abort(c);
    else
      md_tls_conn_close(c);
  }
}

static void on_close(md_tls_conn *c, int status) {
  struct side *sd = md_tls_conn_user(c);
  sd->closed++;
  sd->close_status = status;
  snprintf(sd->err, sizeof(sd->err), "%s", md_tls_last_error(c));
  sd->kind = md_tls_last_error_kind(c);
  if (getenv("MD_TEST_VERBOSE"))
    fprintf(stderr, "  %s: handshake %d, close %d, %s: \"%s\"\n", sd->label, sd->hs_status, status,
            md_tls_err_code(sd->kind), sd->err);
  uv_stream_t *s = md_tls_conn_stream(c);
  md_tls_conn_free(c);
  free(s);
  sd->c = NULL;
}

static const md_tls_callbacks g_cb = {on_hs, on_read, on_close};

static void start_side(struct pair *p, struct side *sd, md_tls_ctx *ctx, uv_tcp_t *tcp) {
  assert_int_equal(md_tls_conn_new(ctx, (uv_stream_t *)tcp, &g_cb, sd, &sd->c), 0);
  md_tls_conn_set_timeouts(sd->c, sd->hs_timeout_ms ? sd->hs_timeout_ms : 5000, 1000);
  if (sd->expect_name || sd->expect_pin)
    assert_int_equal(md_tls_conn_expect_peer(sd->c, sd->expect_name, sd->expect_pin), 0);
  if (sd->close_before_start) {
    md_tls_conn_close(sd->c);
    return;
  }
  (void)md_tls_conn_start(sd->c);
  if (sd->abort_at_start) /* on_close never runs synchronously: sd->c is valid */
    md_tls_conn_abort(sd->c);
  (void)p;
}

static void on_listener_closed(uv_handle_t *h) {
  (void)h;
}

static void on_connection(uv_stream_t *l, int status) {
  struct pair *p = l->data;
  assert_int_equal(status, 0);
  p->srv_tcp = malloc(sizeof(*p->srv_tcp));
  assert_int_equal(uv_tcp_init(&p->loop, p->srv_tcp), 0);
  assert_int_equal(uv_accept(l, (uv_stream_t *)p->srv_tcp), 0);
  uv_close((uv_handle_t *)&p->listener, on_listener_closed);
  start_side(p, &p->s, p->sctx, p->srv_tcp);
}

/* The raw client: read until EOF, then close. */
static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  static char buf[4096];
  (void)n;
  *b = uv_buf_init(buf, sizeof(buf));
}
static void raw_closed(uv_handle_t *h) {
  free(h);
}
static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0)
    uv_close((uv_handle_t *)s, raw_closed);
}

static void on_connect(uv_connect_t *req, int status) {
  struct pair *p = req->data;
  assert_int_equal(status, 0);
  if (p->raw_client) {
    assert_int_equal(uv_read_start((uv_stream_t *)p->cli_tcp, raw_alloc, raw_read), 0);
    if (p->raw_send) {
      uv_buf_t b = uv_buf_init((char *)p->raw_send, (unsigned)strlen(p->raw_send));
      assert_int_equal(uv_write(&p->raw_wreq, (uv_stream_t *)p->cli_tcp, &b, 1, NULL), 0);
    }
    return;
  }
  start_side(p, &p->c, p->cctx, p->cli_tcp);
}

/* Give up on a hung test: abort everything so the loop ends. */
static void on_watchdog(uv_timer_t *t) {
  struct pair *p = t->data;
  p->watchdog_fired = true;
  if (p->s.c)
    md_tls_conn_abort(p->s.c);
  if (p->c.c)
    md_tls_conn_abort(p->c.c);
  if (!uv_is_closing((uv_handle_t *)&p->listener))
    uv_close((uv_handle_t *)&p->listener, on_listener_closed);
}

/* Connect, run the loop until both ends are closed, check no handle leaks. */
static void run_pair(struct pair *p) {
  assert_int_equal(uv_loop_init(&p->loop), 0);
  p->listener.data = p;
  p->creq.data = p;
  assert_int_equal(uv_tcp_init(&p->loop, &p->listener), 0);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&p->listener, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&p->listener, 4, on_connection), 0);
  int alen = sizeof(a);
  assert_int_equal(uv_tcp_getsockname(&p->listener, (struct sockaddr *)&a, &alen), 0);
  p->cli_tcp = malloc(sizeof(*p->cli_tcp));
  assert_int_equal(uv_tcp_init(&p->loop, p->cli_tcp), 0);
  assert_int_equal(uv_tcp_connect(&p->creq, p->cli_tcp, (const struct sockaddr *)&a, on_connect),
                   0);
  assert_int_equal(uv_timer_init(&p->loop, &p->watchdog), 0);
  p->watchdog.data = p;
  uv_timer_start(&p->watchdog, on_watchdog, 20000, 0);
  uv_unref((uv_handle_t *)&p->watchdog);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&p->watchdog, NULL);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  assert_false(p->watchdog_fired);
  assert_int_equal(uv_loop_close(&p->loop), 0); /* every handle was closed */
  if (!p->raw_client)
    assert_int_equal(p->c.closed, 1);
  assert_int_equal(p->s.closed, 1);
  md_tls_ctx_free(p->sctx);
  md_tls_ctx_free(p->cctx);
}

static void free_pair(struct pair *p) {
  free(p->s.rx);
  free(p->c.rx);
  free(p);
}

static struct pair *new_pair(const char *srv_dir, const char *srv_name, const char *srv_ca,
                             const char *cli_dir, const char *cli_name, const char *cli_ca) {
  struct pair *p = calloc(1, sizeof(*p));
  p->s.label = "server";
  p->c.label = "client";
  p->sctx = make_ctx(MD_TLS_SERVER, srv_dir, srv_name, srv_ca);
  p->cctx = cli_ca ? make_ctx(MD_TLS_CLIENT, cli_dir, cli_name, cli_ca) : NULL;
  return p;
}

/* The normal deployment: agent cvm serves, controller ops connects. */
static struct pair *good_pair(void) {
  return new_pair(g_dir, "cvm", g_dir, g_dir, "ops", g_dir);
}

/* ---- tests */

static void test_handshake_and_echo(void **state) {
  (void)state;
  static const char greet[] = "hello from the agent";
  static const char ping[] = "ping from the controller";
  char pin[MD_TLS_PIN_LEN], err[256];
  assert_int_equal(md_tls_cert_spki_sha256_b64(pth(g_dir, "cvm.crt"), pin, err, sizeof(err)), 0);
  assert_int_equal(strlen(pin), 44);

  struct pair *p = good_pair();
  p->s.send_on_hs = (const uint8_t *)greet;
  p->s.send_len = strlen(greet);
  p->s.echo = true;
  p->c.send_on_hs = (const uint8_t *)ping;
  p->c.send_len = strlen(ping);
  p->c.close_after = strlen(greet) + strlen(ping);
  p->c.expect_name = "CVM"; /* case-insensitive */
  p->c.expect_pin = pin;
  run_pair(p);

  assert_int_equal(p->s.hs_calls, 1);
  assert_int_equal(p->s.hs_status, 0);
  assert_int_equal(p->c.hs_status, 0);
  assert_string_equal(p->s.peer, "ops");
  assert_string_equal(p->c.peer, "cvm");
  assert_true(p->c.san_localhost);
  assert_string_equal(p->c.pin, pin);
  assert_int_equal(p->c.rx_len, strlen(greet) + strlen(ping));
  assert_memory_equal(p->c.rx, greet, strlen(greet));
  assert_memory_equal(p->c.rx + strlen(greet), ping, strlen(ping));
  assert_int_equal(p->s.rx_len, strlen(ping));
  assert_memory_equal(p->s.rx, ping, strlen(ping));
  /* Both ends closed cleanly: client's close_notify, answered by the server. */
  assert_int_equal(p->c.close_status, 0);
  assert_int_equal(p->s.close_status, 0);
  assert_int_equal(p->c.kind, MD_TLS_OK);
  assert_string_equal(p->s.err, "");
  free_pair(p);
}

static void test_big_write(void **state) {
  (void)state;
  const size_t n = 1 << 20;
  uint8_t *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)(i * 7 + (i >> 9));
  struct pair *p = good_pair();
  p->c.send_on_hs = data;
  p->c.send_len = n;
  p->c.close_after = n;
  p->s.echo = true;
  run_pair(p);
  assert_int_equal(p->s.rx_len, n);
  assert_int_equal(p->c.rx_len, n);
  assert_memory_equal(p->s.rx, data, n);
  assert_memory_equal(p->c.rx, data, n);
  assert_true(p->s.chunks >= n / (16 * 1024)); /* arrived record by record */
  assert_true(p->c.chunks > 1);
  assert_int_equal(p->c.close_status, 0);
  assert_int_equal(p->s.close_status, 0);
  free_pair(p);
  free(data);
}

/* The outcome of one refused connection: the side that detected it and the
 * side that was told. */
struct refusal {
  enum md_tls_err det_kind, told_kind;
  char det[512], told[512];
};

static void check_refused(struct pair *p, bool server_detects, struct refusal *out) {
  struct side *det = server_detects ? &p->s : &p->c;
  struct side *told = server_detects ? &p->c : &p->s;
  assert_int_equal(det->hs_calls, 1);
  assert_true(det->hs_status < 0);
  assert_int_equal(det->close_status, det->hs_status);
  assert_int_equal(det->rx_len, 0);
  assert_int_equal(told->rx_len, 0);
  if (server_detects) {
    /* TLS 1.3: the client finished its handshake before the server judged
     * its certificate; it learns of the refusal from the alert that follows. */
    assert_int_equal(told->hs_calls, 1);
    assert_int_equal(told->hs_status, 0);
  } else {
    assert_true(told->hs_status < 0);
  }
  assert_true(told->close_status < 0);
  out->det_kind = det->kind;
  out->told_kind = told->kind;
  snprintf(out->det, sizeof(out->det), "%s", det->err);
  snprintf(out->told, sizeof(out->told), "%s", told->err);
}

static void refuse_client_without_cert(struct refusal *r) {
  struct pair *p = new_pair(g_dir, "cvm", g_dir, NULL, NULL, NULL);
  p->cctx = make_ctx(MD_TLS_CLIENT, g_dir, NULL, g_dir);
  run_pair(p);
  check_refused(p, true, r);
  assert_int_equal(p->s.close_status, -EACCES);
  free_pair(p);
}

static void refuse_client_other_ca(struct refusal *r) {
  struct pair *p = new_pair(g_dir, "cvm", g_dir, g_dir2, "ops", g_dir);
  run_pair(p);
  check_refused(p, true, r);
  free_pair(p);
}

static void refuse_client_expired(struct refusal *r) {
  struct pair *p = new_pair(g_dir, "cvm", g_dir, g_dir, "old", g_dir);
  run_pair(p);
  check_refused(p, true, r);
  free_pair(p);
}

static void refuse_server_other_ca(struct refusal *r) {
  struct pair *p = new_pair(g_dir2, "cvm", g_dir, g_dir, "ops", g_dir);
  run_pair(p);
  check_refused(p, false, r);
  free_pair(p);
}

static void refuse_pin_mismatch(struct refusal *r) {
  char wrong[MD_TLS_PIN_LEN], err[256];
  assert_int_equal(md_tls_cert_spki_sha256_b64(pth(g_dir2, "cvm.crt"), wrong, err, sizeof(err)), 0);
  struct pair *p = good_pair();
  p->c.expect_name = "cvm";
  p->c.expect_pin = wrong;
  run_pair(p);
  assert_int_equal(p->c.hs_status, -EPERM);
  assert_int_equal(p->c.close_status, -EPERM);
  /* The server saw a good handshake and then the client's close_notify. */
  assert_int_equal(p->s.hs_status, 0);
  assert_int_equal(p->s.close_status, 0);
  r->det_kind = p->c.kind;
  snprintf(r->det, sizeof(r->det), "%s", p->c.err);
  assert_non_null(strstr(r->det, wrong));
  free_pair(p);
}

static void refuse_name_mismatch(struct refusal *r) {
  struct pair *p = good_pair();
  p->c.expect_name = "local";
  run_pair(p);
  assert_int_equal(p->c.hs_status, -EPERM);
  r->det_kind = p->c.kind;
  snprintf(r->det, sizeof(r->det), "%s", p->c.err);
  free_pair(p);
}

static void test_refuse_client_without_cert(void **state) {
  (void)state;
  struct refusal r;
  refuse_client_without_cert(&r);
  assert_int_equal(r.det_kind, MD_TLS_ERR_NO_PEER_CERT);
  assert_non_null(strstr(r.det, "peer sent no certificate"));
  assert_int_equal(r.told_kind, MD_TLS_ERR_PEER_REFUSED);
  assert_non_null(strstr(r.told, "peer refused our certificate: certificate required"));
}

static void test_refuse_client_other_ca(void **state) {
  (void)state;
  struct refusal r;
  refuse_client_other_ca(&r);
  assert_int_equal(r.det_kind, MD_TLS_ERR_UNKNOWN_CA);
  assert_non_null(strstr(r.det, "certificate not trusted (unknown CA)"));
  assert_non_null(strstr(r.det, "CN=ops"));
  assert_int_equal(r.told_kind, MD_TLS_ERR_PEER_REFUSED);
  assert_non_null(strstr(r.told, "peer refused our certificate: certificate not trusted"));
}

static void test_refuse_client_expired(void **state) {
  (void)state;
  struct refusal r;
  refuse_client_expired(&r);
  assert_int_equal(r.det_kind, MD_TLS_ERR_EXPIRED);
  assert_non_null(strstr(r.det, "certificate expired"));
  assert_non_null(strstr(r.det, "CN=old"));
  assert_int_equal(r.told_kind, MD_TLS_ERR_PEER_REFUSED);
  assert_non_null(strstr(r.told, "peer refused our certificate: certificate expired"));
}

static void test_refuse_server_other_ca(void **state) {
  (void)state;
  struct refusal r;
  refuse_server_other_ca(&r);
  assert_int_equal(r.det_kind, MD_TLS_ERR_UNKNOWN_CA);
  assert_non_null(strstr(r.det, "certificate not trusted (unknown CA)"));
  assert_int_equal(r.told_kind, MD_TLS_ERR_PEER_REFUSED);
  assert_non_null(strstr(r.told, "peer refused our certificate"));
}

static void test_refuse_pin_mismatch(void **state) {
  (void)state;
  struct refusal r;
  refuse_pin_mismatch(&r);
  assert_int_equal(r.det_kind, MD_TLS_ERR_PIN_MISMATCH);
  assert_non_null(strstr(r.det, "SPKI pin mismatch: expected "));
}

static void test_refuse_name_mismatch(void **state) {
  (void)state;
  struct refusal r;
  refuse_name_mismatch(&r);
  assert_int_equal(r.det_kind, MD_TLS_ERR_NAME_MISMATCH);
  assert_non_null(strstr(r.det, "name mismatch: expected local, got cvm"));
}

/* Every failure an operator can meet reads differently. */
static void test_messages_distinct(void **state) {
  (void)state;
  struct refusal r[6];
  refuse_client_without_cert(&r[0]);
  refuse_client_other_ca(&r[1]);
  refuse_client_expired(&r[2]);
  refuse_server_other_ca(&r[3]);
  refuse_pin_mismatch(&r[4]);
  refuse_name_mismatch(&r[5]);
  /* The server-side view of "client from another CA" and the client-side
   * view of "server from another CA" are the same fact, seen from the other
   * end; skip that one pair. */
  for (int i = 0; i < 6; i++)
    for (int j = i + 1; j < 6; j++)
      if (!(i == 1 && j == 3))
        assert_string_not_equal(r[i].det, r[j].det);
  const char *codes[] = {md_tls_err_code(r[0].det_kind), md_tls_err_code(r[1].det_kind),
                         md_tls_err_code(r[2].det_kind), md_tls_err_code(r[4].det_kind),
                         md_tls_err_code(r[5].det_kind)};
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++)
      assert_string_not_equal(codes[i], codes[j]);
  /* What the refused client is told differs per cause too. */
  assert_string_not_equal(r[0].told, r[1].told);
  assert_string_not_equal(r[0].told, r[2].told);
  assert_string_not_equal(r[1].told, r[2].told);
}

/* Name checks done by the application, as the agent does for
 * allowed_controllers: accepted names, then a refused one. */
static void check_names_hook(md_tls_conn *c, struct side *sd) {
  assert_int_equal(md_tls_check_peer_name(c, "cvm"), 0);
  assert_int_equal(md_tls_check_peer_name(c, "LOCALHOST"), 0); /* a DNS SAN */
  assert_string_equal(md_tls_last_error(c), "");
  assert_int_equal(md_tls_check_peer_name(c, "ops"), -EPERM);
  assert_int_equal(md_tls_last_error_kind(c), MD_TLS_ERR_NAME_MISMATCH);
  snprintf(sd->err, sizeof(sd->err), "%s", md_tls_last_error(c));
  md_tls_conn_close(c);
}

static void test_app_name_check(void **state) {
  (void)state;
  struct pair *p = good_pair();
  p->c.hs_hook = check_names_hook;
  run_pair(p);
  assert_int_equal(p->c.hs_status, 0);
  assert_int_equal(p->c.kind, MD_TLS_ERR_NAME_MISMATCH);
  assert_non_null(strstr(p->c.err, "name mismatch: expected ops, got cvm (DNS: localhost)"));
  assert_int_equal(p->c.close_status, -EPERM); /* the first failure is reported at close */
  assert_int_equal(p->s.close_status, 0);
  free_pair(p);
}

/* ---- close paths (ASan checks that none of them leaks) */

static void test_abort_during_handshake(void **state) {
  (void)state;
  struct pair *p = good_pair();
  p->c.abort_at_start = true;
  run_pair(p);
  assert_int_equal(p->c.hs_calls, 0); /* closed by the application: no on_handshake */
  assert_int_equal(p->c.close_status, 0);
  assert_int_equal(p->s.hs_calls, 1);
  assert_true(p->s.hs_status < 0);
  assert_int_equal(p->s.kind, MD_TLS_ERR_IO);
  free_pair(p);
}

static void test_close_before_start(void **state) {
  (void)state;
  struct pair *p = good_pair();
  p->c.close_before_start = true;
  run_pair(p);
  assert_int_equal(p->c.hs_calls, 0);
  assert_int_equal(p->c.close_status, 0);
  assert_int_equal(p->s.hs_status, -ECONNRESET);
  assert_non_null(strstr(p->s.err, "during TLS handshake"));
  free_pair(p);
}

static void test_abort_mid_stream(void **state) {
  (void)state;
  const size_t n = 256 * 1024;
  uint8_t *data = calloc(1, n);
  struct pair *p = good_pair();
  p->c.send_on_hs = data;
  p->c.send_len = n;
  p->s.close_after = 1000; /* server drops the connection in the middle */
  p->s.how = CLOSE_ABORT;
  run_pair(p);
  assert_int_equal(p->s.close_status, 0);
  assert_true(p->s.rx_len < n);
  assert_true(p->c.close_status < 0); /* reset or EOF without close_notify */
  assert_int_equal(p->c.kind, MD_TLS_ERR_IO);
  free_pair(p);
  free(data);
}

static void test_server_closes_first(void **state) {
  (void)state;
  static const char bye[] = "bye";
  struct pair *p = good_pair();
  p->s.send_on_hs = (const uint8_t *)bye;
  p->s.send_len = 3;
  p->s.hs_hook = NULL;
  p->s.close_on_hs = true; /* write, then close at once: the data must still arrive */
  run_pair(p);
  assert_int_equal(p->c.rx_len, 3);
  assert_memory_equal(p->c.rx, bye, 3);
  assert_int_equal(p->c.close_status, 0);
  assert_int_equal(p->s.close_status, 0);
  free_pair(p);
}

static void test_handshake_timeout(void **state) {
  (void)state;
  struct pair *p = good_pair();
  p->raw_client = true; /* connects, never sends a ClientHello */
  p->s.hs_timeout_ms = 100;
  run_pair(p);
  assert_int_equal(p->s.hs_status, -ETIMEDOUT);
  assert_int_equal(p->s.kind, MD_TLS_ERR_TIMEOUT);
  assert_non_null(strstr(p->s.err, "timed out"));
  free_pair(p);
}

static void test_not_tls_is_protocol_error(void **state) {
  (void)state;
  struct pair *p = good_pair();
  p->raw_client = true;
  p->raw_send = "GET / HTTP/1.1\r\nHost: cvm\r\n\r\n";
  run_pair(p);
  assert_int_equal(p->s.hs_status, -EPROTO);
  assert_int_equal(p->s.kind, MD_TLS_ERR_PROTOCOL);
  assert_non_null(strstr(p->s.err, "TLS protocol error: "));
  free_pair(p);
}

static void test_ctx_load_errors(void **state) {
  (void)state;
  md_tls_ctx *ctx = NULL;
  char err[512] = "";
  char missing[512];
  snprintf(missing, sizeof(missing), "%s", pth(g_dir, "nope.crt"));
  assert_int_equal(md_tls_ctx_new(MD_TLS_SERVER, missing, pth(g_dir, "cvm.key"),
                                  pth(g_dir, "ca.crt"), &ctx, err, sizeof(err)),
                   -ENOENT);
  assert_non_null(strstr(err, missing));
  assert_null(ctx);

  assert_int_equal(md_tls_ctx_new(MD_TLS_SERVER, pth(g_dir, "cvm.crt"), pth(g_dir, "ops.key"),
                                  pth(g_dir, "ca.crt"), &ctx, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "does not match"));
  assert_non_null(strstr(err, "ops.key"));

  /* A key where the certificate should be. */
  assert_int_equal(md_tls_ctx_new(MD_TLS_CLIENT, pth(g_dir, "ops.key"), pth(g_dir, "ops.key"),
                                  pth(g_dir, "ca.crt"), &ctx, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "ops.key: cannot load"));

  /* A CA file without certificates. */
  assert_int_equal(md_tls_ctx_new(MD_TLS_CLIENT, pth(g_dir, "ops.crt"), pth(g_dir, "ops.key"),
                                  pth(g_dir, "ops.key"), &ctx, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "CA file"));

  assert_int_equal(
      md_tls_ctx_new(MD_TLS_SERVER, NULL, NULL, pth(g_dir, "ca.crt"), &ctx, err, sizeof(err)),
      -EINVAL);
  assert_int_equal(md_tls_ctx_new(MD_TLS_CLIENT, pth(g_dir, "ops.crt"), pth(g_dir, "ops.key"), NULL,
                                  &ctx, err, sizeof(err)),
                   -EINVAL);
  char pin[MD_TLS_PIN_LEN];
  assert_int_equal(md_tls_cert_spki_sha256_b64(missing, pin, err, sizeof(err)), -ENOENT);
  assert_non_null(strstr(err, missing));
  assert_int_equal(md_tls_cert_spki_sha256_b64(pth(g_dir, "ops.key"), pin, err, sizeof(err)),
                   -EINVAL);

  /* The controller certificate is clientAuth only: no good as a server. */
  struct pair *p = new_pair(g_dir, "ops", g_dir, g_dir, "ops", g_dir);
  run_pair(p);
  assert_int_equal(p->c.kind, MD_TLS_ERR_BAD_CERT);
  assert_non_null(strstr(p->c.err, "unsuitable certificate purpose"));
  free_pair(p);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_and_echo),
      cmocka_unit_test(test_big_write),
      cmocka_unit_test(test_refuse_client_without_cert),
      cmocka_unit_test(test_refuse_client_other_ca),
      cmocka_unit_test(test_refuse_client_expired),
      cmocka_unit_test(test_refuse_server_other_ca),
      cmocka_unit_test(test_refuse_pin_mismatch),
      cmocka_unit_test(test_refuse_name_mismatch),
      cmocka_unit_test(test_messages_distinct),
      cmocka_unit_test(test_app_name_check),
      cmocka_unit_test(test_abort_during_handshake),
      cmocka_unit_test(test_close_before_start),
      cmocka_unit_test(test_abort_mid_stream),
      cmocka_unit_test(test_server_closes_first),
      cmocka_unit_test(test_handshake_timeout),
      cmocka_unit_test(test_not_tls_is_protocol_error),
      cmocka_unit_test(test_ctx_load_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
