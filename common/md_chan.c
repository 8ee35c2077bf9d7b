/* md_chan: TCP + TLS + frames + Envelopes, for both ends of a control
 * connection. See md_chan.h. */
#include "md_chan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_frame.h"

struct md_chan {
  uv_tcp_t tcp;
  uv_timer_t timer; /* connect timeout, then idle timeout */
  md_tls_conn *tls;
  md_frame_decoder *dec;
  md_chan_cb cb;
  void *ud;
  char peer[MD_ADDRSTRLEN + 8];
  char reason[256];
  int fail_status;
  unsigned idle_ms;
  bool up, closing, closed;
  int handles; /* uv handles still open (tcp before TLS owns it, timer) */
  uv_connect_t connect_req;
  char *tls_name, *pin;
  unsigned timeout_ms;
  md_tls_ctx *tls_ctx; /* client: used once connected */
};

static void chan_free_if_done(md_chan *c) {
  if (!c->closed || c->handles > 0)
    return;
  md_tls_conn_free(c->tls);
  md_frame_decoder_free(c->dec);
  free(c->tls_name);
  free(c->pin);
  free(c);
}

static void handle_closed(uv_handle_t *h) {
  md_chan *c = h->data;
  c->handles--;
  chan_free_if_done(c);
}

/* The single place a channel ends: report once, then release. */
static void finish(md_chan *c, int status, const char *reason) {
  if (c->closed)
    return;
  c->closed = true;
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, handle_closed);
  if (c->cb.on_close)
    c->cb.on_close(c, status, reason ? reason : "");
  chan_free_if_done(c);
}

/* Why a TLS-level close happened, in words an operator can act on. */
static const char *close_reason(md_chan *c, int status) {
  if (c->reason[0])
    return c->reason;
  const char *tls = c->tls ? md_tls_last_error(c->tls) : "";
  if (tls && tls[0])
    snprintf(c->reason, sizeof c->reason, "%s", tls);
  else if (status == -ECONNRESET)
    snprintf(c->reason, sizeof c->reason, "connection closed by the peer");
  else if (status < 0)
    snprintf(c->reason, sizeof c->reason, "%s", strerror(-status));
  return c->reason;
}

static void tls_on_close(md_tls_conn *t, int status) {
  md_chan *c = md_tls_conn_user(t);
  c->handles--; /* the stream, closed by md_tls */
  if (c->fail_status)
    status = c->fail_status;
  finish(c, status, close_reason(c, status));
}

static void tls_on_handshake(md_tls_conn *t, int status) {
  md_chan *c = md_tls_conn_user(t);
  if (status == 0)
    c->up = true;
  if (c->cb.on_up)
    c->cb.on_up(c, status);
}

static void on_idle(uv_timer_t *h) {
  md_chan *c = h->data;
  md_chan_fail(c, -ETIMEDOUT, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
               c->up ? "idle for %u s: closing" : "no TLS handshake within %u s",
               c->idle_ms / 1000);
}

static void arm_idle(md_chan *c) {
  if (c->idle_ms && !c->closing)
    uv_timer_start(&c->timer, on_idle, c->idle_ms, 0);
}

/* Decrypted bytes: cut them into frames, unpack each, hand it over. */
static void tls_on_read(md_tls_conn *t, const uint8_t *data, size_t len) {
  md_chan *c = md_tls_conn_user(t);
  while (len > 0 && !c->closing) {
    size_t used = 0;
    const uint8_t *frame;
    size_t flen;
    int r = md_frame_decoder_feed(c->dec, data, len, &used, &frame, &flen);
    data += used;
    len -= used;
    if (r < 0) {
      md_chan_fail(c, -EPROTO, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME, "bad frame: %s",
                   r == -EMSGSIZE ? "length zero or over the 1 MiB limit" : strerror(-r));
      return;
    }
    if (r == 0)
      return;
    Mtrdiag__V1__Envelope *env = NULL;
    char err[200];
    int u = md_wire_unpack(frame, flen, &env, err, sizeof err);
    if (u < 0) {
      Mtrdiag__V1__ErrorCode code =
          u == MD_WIRE_EVERSION ? MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH
          : u == MD_WIRE_ENOMSG ? MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE
                                : MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE;
      md_chan_fail(c, -EPROTO, code, "%s", err);
      return;
    }
    arm_idle(c);
    if (c->cb.on_message)
      c->cb.on_message(c, env);
    md_wire_free(env);
  }
}

static const md_tls_callbacks tls_cb = {tls_on_handshake, tls_on_read, tls_on_close};

static md_chan *chan_new(uv_loop_t *loop, const md_chan_cb *cb, void *ud) {
  md_chan *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (md_frame_decoder_new(MD_FRAME_MAX, &c->dec) < 0) {
    free(c);
    return NULL;
  }
  c->cb = *cb;
  c->ud = ud;
  uv_tcp_init(loop, &c->tcp);
  uv_timer_init(loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  return c;
}

/* Put TLS on a connected stream and start the handshake. */
static int start_tls(md_chan *c, md_tls_ctx *tls) {
  int rc = md_tls_conn_new(tls, (uv_stream_t *)&c->tcp, &tls_cb, c, &c->tls);
  if (rc < 0)
    return rc;
  if (c->tls_name || c->pin)
    md_tls_conn_expect_peer(c->tls, c->tls_name, c->pin);
  if (c->timeout_ms)
    md_tls_conn_set_timeouts(c->tls, c->timeout_ms, MD_TLS_LINGER_MS);
  return md_tls_conn_start(c->tls); /* on failure on_close follows */
}

int md_chan_accept(uv_stream_t *listener, md_tls_ctx *tls, const md_chan_cb *cb, void *ud,
                   md_chan **out) {
  md_chan *c = chan_new(listener->loop, cb, ud);
  if (!c)
    return -ENOMEM;
  int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc == 0) {
    md_addr a;
    int len = sizeof a;
    if (uv_tcp_getpeername(&c->tcp, &a.sa, &len) == 0)
      md_addr_str_hostport(&a, c->peer, sizeof c->peer);
    rc = md_tls_conn_new(tls, (uv_stream_t *)&c->tcp, &tls_cb, c, &c->tls);
  }
  if (rc < 0) {
    c->closed = true;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    return rc;
  }
  *out = c;
  md_tls_conn_start(c->tls); /* a failure ends in on_close */
  return 0;
}

static void on_connect_timeout(uv_timer_t *h) {
  md_chan *c = h->data;
  snprintf(c->reason, sizeof c->reason, "timed out connecting to %s after %u ms", c->peer,
           c->timeout_ms);
  if (c->tls) {
    c->fail_status = -ETIMEDOUT;
    md_tls_conn_abort(c->tls);
    return;
  }
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
  if (c->cb.on_up)
    c->cb.on_up(c, -ETIMEDOUT);
  finish(c, -ETIMEDOUT, c->reason);
}

static void on_connected(uv_connect_t *req, int status) {
  md_chan *c = req->data;
  if (c->closed)
    return; /* timed out already */
  if (status < 0) {
    snprintf(c->reason, sizeof c->reason, "cannot connect to %s: %s", c->peer,
             status == UV_ECONNREFUSED ? "connection refused (is mtr-agent running there?)"
                                       : uv_strerror(status));
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    if (c->cb.on_up)
      c->cb.on_up(c, status);
    finish(c, status, c->reason);
    return;
  }
  /* from here on TLS owns the stream and its handshake timer; ours stops */
  uv_timer_stop(&c->timer);
  if (start_tls(c, c->tls_ctx) < 0 && !c->tls) {
    snprintf(c->reason, sizeof c->reason, "cannot start TLS with %s", c->peer);
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    if (c->cb.on_up)
      c->cb.on_up(c, -EPROTO);
    finish(c, -EPROTO, c->reason);
  }
}

int md_chan_connect(uv_loop_t *loop, md_tls_ctx *tls, const md_addr *addr, const char *tls_name,
                    const char *pin, unsigned timeout_ms, const md_chan_cb *cb, void *ud,
                    md_chan **out) {
  md_chan *c = chan_new(loop, cb, ud);
  if (!c)
    return -ENOMEM;
  c->tls_ctx = tls;
  c->timeout_ms = timeout_ms;
  c->tls_name = tls_name ? strdup(tls_name) : NULL;
  c->pin = pin && pin[0] ? strdup(pin) : NULL;
  md_addr_str_hostport(addr, c->peer, sizeof c->peer);
  c->connect_req.data = c;
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, &addr->sa, on_connected);
  if (rc < 0) {
    c->closed = true;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    return rc;
  }
  if (timeout_ms)
    uv_timer_start(&c->timer, on_connect_timeout, timeout_ms, 0);
  *out = c;
  return 0;
}

int md_chan_send(md_chan *c, const ProtobufCMessage *msg) {
  if (c->closing || c->closed || !c->tls)
    return -EPIPE;
  uint8_t *buf;
  size_t len;
  int rc = md_wire_pack(msg, &buf, &len);
  if (rc < 0)
    return rc;
  rc = md_tls_conn_write(c->tls, buf, len);
  free(buf);
  return rc;
}

static int send_verror(md_chan *c, Mtrdiag__V1__ErrorCode code, const char *run_id, const char *fmt,
                       va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  Mtrdiag__V1__Error e = MTRDIAG__V1__ERROR__INIT;
  e.code = code;
  e.message = msg;
  e.run_id = (char *)(run_id ? run_id : "");
  return md_chan_send(c, &e.base);
}

int md_chan_send_error(md_chan *c, Mtrdiag__V1__ErrorCode code, const char *run_id, const char *fmt,
                       ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = send_verror(c, code, run_id, fmt, ap);
  va_end(ap);
  return rc;
}

void md_chan_close(md_chan *c) {
  if (c->closing || c->closed)
    return;
  c->closing = true;
  uv_timer_stop(&c->timer);
  if (c->tls) {
    md_tls_conn_close(c->tls);
    return;
  }
  /* still connecting: the connect callback sees ECANCELED and finds us closed */
  uv_close((uv_handle_t *)&c->tcp, handle_closed);
  finish(c, c->fail_status, c->reason);
}

void md_chan_fail(md_chan *c, int status, Mtrdiag__V1__ErrorCode code, const char *fmt, ...) {
  if (c->closing || c->closed)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->reason, sizeof c->reason, fmt, ap);
  va_end(ap);
  c->fail_status = status;
  if (c->up)
    md_chan_send_error(c, code, NULL, "%s", c->reason);
  md_chan_close(c);
}

size_t md_chan_pending(const md_chan *c) {
  return c->tls ? md_tls_conn_pending(c->tls) : 0;
}

const char *md_chan_peer_name(const md_chan *c) {
  return c->up && c->tls ? md_tls_peer_name(c->tls) : NULL;
}

const char *md_chan_peer_addr(const md_chan *c) {
  return c->peer;
}

md_tls_conn *md_chan_tls(md_chan *c) {
  return c->tls;
}

void *md_chan_data(const md_chan *c) {
  return c->ud;
}

void md_chan_set_data(md_chan *c, void *ud) {
  c->ud = ud;
}

void md_chan_set_idle_timeout(md_chan *c, unsigned ms) {
  c->idle_ms = ms;
  if (ms)
    arm_idle(c);
  else
    uv_timer_stop(&c->timer);
}
