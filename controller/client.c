/* md_client: one control session with one agent. See client.h and
 * docs/controller.md.
 *
 * Every way a session can end goes through one place: the first failure is
 * recorded (record_failure), closing starts (begin_close), and when the
 * channel is gone finish() reports once: made-up results for the runs the
 * session outlived, then on_close. */
#include "client.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_chan.h"
#include "md_log.h"
#include "md_time.h"

#define MD__TEXT_MAX 4096    /* longest Error/RunResult message passed on */
#define MD__MAX_ADDRESSES 64 /* HelloAck.addresses kept */
/* Timestamps in a TimeSyncReply must be below this (year 2116) so that no
 * arithmetic on them can overflow. */
#define MD__TS_MAX (INT64_C(1) << 62)
/* While runs or streams are open the agent must be heard from: after this
 * long without a message the client asks (a TimeSyncRequest, which the
 * agent answers at once), and after timeout_ms of silence the session ends
 * (a partition or a frozen agent would otherwise leave it waiting forever:
 * TCP itself says nothing for many minutes). */
#define MD__ALIVE_CHECK_MS 1000

/* A run or a one-way stream asked for and not yet reported. Both are known
 * to the agent by an id from one space (Cancel and Error name either), are
 * accepted first and end with one result, so one record and one set of
 * list functions serve both; the session keeps them in two lists. */
typedef struct md__task {
  struct md__task *next;
  char *id;
  bool accepted;
  /* a run's */
  char *target, *target_name;
  uint32_t cycles_done;
  md_path *live; /* the last HopUpdate */
  /* a stream's */
  Mtrdiag__V1__StreamRole role;
} md__task;

struct md_client {
  uv_loop_t *loop;
  md_tls_ctx *tls;
  md_client_cb cb;
  md_client_stream_cb scb;
  void *ud;
  enum md_client_state state;
  /* the agent, copied from the inventory */
  char *name, *address, *host, *tls_name, *pin, *controller_name;
  uint16_t port;
  md_addr addr;
  bool has_addr;
  unsigned timeout_ms, sync_want;
  int64_t start_mono_ns;
  /* what is open */
  md_chan *chan;
  uv_timer_t timer; /* the setup deadline; then a deferred finish */
  uv_getaddrinfo_t gai;
  bool resolving, timer_closed;
  bool close_requested; /* md_client_close was called */
  /* the first failure, which on_close reports */
  bool failed;
  int fail_status;
  enum md_client_err fail_kind;
  char reason[512];
  /* what we learnt */
  md_client_info info;
  char peer_addr[MD_ADDRSTRLEN + 8];
  char *cert_name, *agent_name, *hostname, *version;
  char **addresses;
  size_t n_addresses;
  /* time sync: the request in flight */
  uint32_t sync_seq;
  int64_t sync_t1;
  /* liveness while READY (MD__ALIVE_CHECK_MS) */
  int64_t heard_mono_ns; /* the last message, or when waiting for one began */
  unsigned pings;        /* TimeSyncRequests sent as keepalives */
  md__task *runs;        /* oldest first */
  md__task *streams;     /* oldest first */
};

static void finish(md_client *c);

/* ---- small helpers */

/* A copy of s that is never NULL ("" for NULL). */
static char *dup_str(const char *s) {
  return strdup(s ? s : "");
}

/* Received text goes through md_wire_text_ok before it reaches a log or a
 * terminal; anything else is replaced, not printed. */
static const char *clean_text(const char *s) {
  if (!s)
    return "";
  return md_wire_text_ok(s, MD__TEXT_MAX) ? s : "(message not printable)";
}

/* "seconds" for messages: 5000 -> "5", 2500 -> "2.5". */
static double secs(unsigned ms) {
  return ms / 1000.0;
}

/* The address messages name: the one connected to, else the inventory's. */
static const char *where(const md_client *c) {
  return c->peer_addr[0] ? c->peer_addr : c->address;
}

/* s without a leading prefix (for TLS sentences whose first words repeat
 * our class's). */
static const char *skip_prefix(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(s, prefix, n) == 0 ? s + n : s;
}

/* A task's memory (NULL is fine). */
static void task_free(md__task *t) {
  if (!t)
    return;
  free(t->id);
  free(t->target);
  free(t->target_name);
  md_path_free(t->live);
  free(t);
}

/* A task of a list by id (messages, Errors and Cancel name it). */
static md__task *task_find(md__task *list, const char *id) {
  for (md__task *t = list; t; t = t->next)
    if (id && strcmp(t->id, id) == 0)
      return t;
  return NULL;
}

/* Take a task out of its list (it is then the caller's). */
static void task_unlink(md__task **list, md__task *t) {
  for (md__task **p = list; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      t->next = NULL;
      return;
    }
}

/* How many tasks a list holds. */
static size_t task_count(const md__task *list) {
  size_t n = 0;
  for (const md__task *t = list; t; t = t->next)
    n++;
  return n;
}

/* A whole list's memory. */
static void task_free_all(md__task *list) {
  while (list) {
    md__task *t = list;
    list = t->next;
    task_free(t);
  }
}

static void client_free(md_client *c) {
  free(c->name);
  free(c->address);
  free(c->host);
  free(c->tls_name);
  free(c->pin);
  free(c->controller_name);
  free(c->cert_name);
  free(c->agent_name);
  free(c->hostname);
  free(c->version);
  for (size_t i = 0; i < c->n_addresses; i++)
    free(c->addresses[i]);
  free(c->addresses);
  task_free_all(c->runs);
  task_free_all(c->streams);
  free(c);
}

/* The client's memory goes once nothing can call back into it. */
static void maybe_free(md_client *c) {
  if (c->state == MD_CLIENT_CLOSED && c->timer_closed && !c->resolving && !c->chan)
    client_free(c);
}

static void on_timer_closed(uv_handle_t *h) {
  md_client *c = h->data;
  c->timer_closed = true;
  maybe_free(c);
}

/* ---- ending a session: the single path */

/* Remember why the session ends; the first reason wins, and nothing is a
 * failure once the controller itself asked to close. */
static void record_failure(md_client *c, int status, enum md_client_err kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void record_failure(md_client *c, int status, enum md_client_err kind, const char *fmt,
                           ...) {
  if (c->failed || c->close_requested || c->state == MD_CLIENT_CLOSED)
    return;
  c->failed = true;
  c->fail_status = status < 0 ? status : -EPROTO;
  c->fail_kind = kind;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->reason, sizeof c->reason, fmt, ap);
  va_end(ap);
  md_debug("%s: %s", c->name, c->reason);
}

static void on_deferred_finish(uv_timer_t *t) {
  finish(t->data);
}

enum close_how { CLOSE_GRACEFUL, CLOSE_ABORT };

/* Closing while TCP was still connecting: as soon as md_chan has put TLS
 * on the connection, drop it (nothing was said yet, so nothing is lost). */
static void on_connect_wait(uv_timer_t *t) {
  md_client *c = t->data;
  if (!c->chan) {
    uv_timer_stop(t);
    return;
  }
  md_tls_conn *tls = md_chan_tls(c->chan);
  if (tls) {
    uv_timer_stop(t);
    md_tls_conn_abort(tls);
  }
}

/* Start closing whatever is open; finish() runs once it is closed.
 * send_code: an Error to send the agent first (0: none). CLOSE_ABORT drops
 * the connection at once: a peer that did not answer in time would not
 * answer our close_notify either, and waiting for it (md_tls's linger)
 * would only stretch the timeout. */
static void begin_close(md_client *c, Mtrdiag__V1__ErrorCode send_code, enum close_how how) {
  if (c->state >= MD_CLIENT_CLOSING)
    return;
  c->state = MD_CLIENT_CLOSING;
  uv_timer_stop(&c->timer);
  if (c->resolving) {
    uv_cancel((uv_req_t *)&c->gai); /* on_resolved finishes */
    return;
  }
  if (c->chan) {
    /* md_chan cannot stop a TCP connect in flight (md_chan_close then does
     * nothing): watch for TLS to start and drop it then; a connect that
     * fails or times out ends in chan_on_close by itself. */
    if (!md_chan_tls(c->chan)) {
      uv_timer_start(&c->timer, on_connect_wait, 10, 10);
      return;
    }
    if (send_code)
      md_chan_fail(c->chan, c->fail_status, send_code, "%s", c->reason);
    else if (how == CLOSE_ABORT)
      md_tls_conn_abort(md_chan_tls(c->chan)); /* md_chan reports it through on_close */
    else
      md_chan_close(c->chan);
    return;
  }
  uv_timer_start(&c->timer, on_deferred_finish, 0, 0);
}

/* A failure that ends the session: record it and close. */
#define FAIL(c, status, kind, code, ...)                                                           \
  do {                                                                                             \
    record_failure((c), (status), (kind), __VA_ARGS__);                                            \
    begin_close((c), (code), CLOSE_GRACEFUL);                                                      \
  } while (0)

/* Report once: runs first (each gets a result), then the session. */
static void finish(md_client *c) {
  if (c->state == MD_CLIENT_CLOSED)
    return;
  c->state = MD_CLIENT_CLOSING;
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  int status = c->failed ? c->fail_status : 0;
  enum md_client_err kind = c->failed ? c->fail_kind : MD_CLIENT_OK;
  const char *reason = c->failed ? c->reason : "";
  char msg[600];
  if (c->failed)
    snprintf(msg, sizeof msg, "session with %s ended: %s", c->name, c->reason);
  else
    snprintf(msg, sizeof msg, "session closed by the controller");
  Mtrdiag__V1__RunStatus ended = c->failed ? MTRDIAG__V1__RUN_STATUS__RUN_STATUS_FAILED
                                           : MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED;
  md__task *r;
  while ((r = c->runs) != NULL) {
    c->runs = r->next;
    md_client_result res = {
        .run_id = r->id,
        .status = ended,
        .message = msg,
        .cycles_done = r->cycles_done,
        .path = r->live,
        .from_agent = false,
    };
    r->live = NULL;
    if (c->cb.on_run_result)
      c->cb.on_run_result(c, &res);
    md_path_free(res.path);
    task_free(r);
  }
  md__task *t;
  while ((t = c->streams) != NULL) {
    c->streams = t->next;
    md_client_stream_result res = {
        .stream_id = t->id,
        .role = t->role,
        .status = ended,
        .message = msg,
        .from_agent = false,
    };
    if (c->scb.on_stream_result)
      c->scb.on_stream_result(c, &res);
    task_free(t);
  }
  c->state = MD_CLIENT_CLOSED;
  if (c->cb.on_close)
    c->cb.on_close(c, status, kind, reason);
  maybe_free(c);
}

/* Why the channel closed, from md_chan's status and md_tls's verdict, in
 * the words of our classes. Only used when nothing was recorded before. */
static void classify_close(md_client *c, md_chan *ch, int status, const char *reason) {
  md_tls_conn *t = md_chan_tls(ch);
  enum md_tls_err tk = t ? md_tls_last_error_kind(t) : MD_TLS_OK;
  const char *tmsg = t ? md_tls_last_error(t) : "";
  const char *w = where(c);
  switch (tk) {
  case MD_TLS_ERR_UNKNOWN_CA:
    record_failure(c, -EACCES, MD_CLIENT_ERR_UNTRUSTED,
                   "agent certificate not trusted: %s, which is not our tls.ca (%s)",
                   skip_prefix(tmsg, "certificate not trusted (unknown CA): "), w);
    return;
  case MD_TLS_ERR_EXPIRED:
  case MD_TLS_ERR_NOT_YET_VALID:
  case MD_TLS_ERR_BAD_CERT:
  case MD_TLS_ERR_NO_PEER_CERT:
    record_failure(c, -EACCES, MD_CLIENT_ERR_UNTRUSTED, "agent certificate not trusted: %s (%s)",
                   tmsg, w);
    return;
  case MD_TLS_ERR_NAME_MISMATCH:
    record_failure(c, -EPERM, MD_CLIENT_ERR_NAME_MISMATCH,
                   "name mismatch: agent certificate at %s: %s (agents.%s.tls_name)", w,
                   skip_prefix(tmsg, "name mismatch: "), c->name);
    return;
  case MD_TLS_ERR_PIN_MISMATCH:
    record_failure(c, -EPERM, MD_CLIENT_ERR_PIN_MISMATCH,
                   "pin mismatch: agent certificate at %s: %s (agents.%s.pin_sha256)", w,
                   skip_prefix(tmsg, "SPKI pin mismatch: "), c->name);
    return;
  case MD_TLS_ERR_PEER_REFUSED:
    record_failure(c, -EACCES, MD_CLIENT_ERR_NOT_AUTHORISED,
                   "not authorised: the agent at %s refused our certificate: %s", w,
                   skip_prefix(tmsg, "peer refused our certificate: "));
    return;
  case MD_TLS_ERR_PROTOCOL:
    record_failure(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, "protocol error: %s (%s)", tmsg, w);
    return;
  case MD_TLS_ERR_TIMEOUT:
    record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT,
                   "timeout: TLS handshake with %s did not finish within %g s", w,
                   secs(c->timeout_ms));
    return;
  default:
    break;
  }
  switch (status) {
  case UV_ECONNREFUSED:
    record_failure(c, status, MD_CLIENT_ERR_REFUSED,
                   "connection refused: nothing listens on %s (is mtr-agent running there?)", w);
    return;
  case UV_ETIMEDOUT:
    record_failure(c, status, MD_CLIENT_ERR_TIMEOUT,
                   "timeout: no TCP connection to %s within %g s (host down, or packets dropped "
                   "on the way?)",
                   w, secs(c->timeout_ms));
    return;
  case UV_ENETUNREACH:
  case UV_EHOSTUNREACH:
  case UV_EADDRNOTAVAIL:
    record_failure(c, status, MD_CLIENT_ERR_UNREACHABLE, "unreachable: cannot connect to %s: %s", w,
                   uv_strerror(status));
    return;
  case -EPROTO:
    record_failure(c, status, MD_CLIENT_ERR_PROTOCOL, "protocol error: %s (%s)", reason, w);
    return;
  default:
    break;
  }
  const char *when = c->state == MD_CLIENT_CONNECTING
                         ? " during the TLS handshake (is it at its policy.max_connections, or "
                           "stopping?)"
                     : c->state == MD_CLIENT_HELLO   ? " before answering our Hello"
                     : c->state == MD_CLIENT_SYNCING ? " during time sync"
                     : c->runs || c->streams
                         ? " in the middle of a run (did mtr-agent stop, crash or restart?)"
                         : "";
  if (status == 0 || status == -ECONNRESET)
    record_failure(c, -ECONNRESET, MD_CLIENT_ERR_CLOSED,
                   "connection closed: the agent at %s closed the connection%s", w, when);
  else
    record_failure(c, status, MD_CLIENT_ERR_CLOSED, "connection closed: %s%s (%s)",
                   reason && reason[0] ? reason : uv_strerror(status), when, w);
}

/* ---- the channel's callbacks */

static void chan_on_close(md_chan *ch, int status, const char *reason) {
  md_client *c = md_chan_data(ch);
  if (!c->failed && !c->close_requested)
    classify_close(c, ch, status, reason);
  c->chan = NULL;
  finish(c);
}

static int send_msg(md_client *c, const ProtobufCMessage *m) {
  int rc = md_chan_send(c->chan, m);
  if (rc < 0)
    FAIL(c, rc, MD_CLIENT_ERR_LOCAL, 0, "local error: cannot send to %s: %s", where(c),
         md_wire_strerror(rc));
  return rc;
}

static void chan_on_up(md_chan *ch, int status) {
  md_client *c = md_chan_data(ch);
  if (status < 0)
    return; /* chan_on_close follows with the reason */
  if (c->state >= MD_CLIENT_CLOSING) {
    md_chan_close(ch); /* closed while the TCP connect was in flight */
    return;
  }
  const char *peer = md_chan_peer_name(ch);
  free(c->cert_name);
  c->cert_name = dup_str(peer);
  c->info.cert_name = c->cert_name;
  Mtrdiag__V1__Hello h = MTRDIAG__V1__HELLO__INIT;
  h.protocol_version = MD_WIRE_VERSION;
  h.protocol_revision = MD_WIRE_REVISION;
  h.software_version = MD_VERSION;
  h.controller_name = c->controller_name;
  c->state = MD_CLIENT_HELLO;
  send_msg(c, &h.base);
}

/* One TimeSync exchange. */
static void send_sync(md_client *c) {
  Mtrdiag__V1__TimeSyncRequest r = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
  r.seq = ++c->sync_seq;
  r.client_send_real_ns = c->sync_t1 = md_now_real_ns();
  send_msg(c, &r.base);
}

/* READY: is the agent still there? Only while something is expected from
 * it (runs or streams open); an idle session is the agent's to time out. */
static void on_alive_check(uv_timer_t *t) {
  md_client *c = t->data;
  int64_t now = md_now_mono_ns();
  if (c->state != MD_CLIENT_READY || !c->chan)
    return;
  if (!c->runs && !c->streams) {
    c->heard_mono_ns = now;
    return;
  }
  int64_t silent_ms = (now - c->heard_mono_ns) / INT64_C(1000000);
  if (silent_ms >= (int64_t)c->timeout_ms) {
    record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT,
                   "timeout: nothing heard from the agent at %s for more than %g s while a run "
                   "was in progress, not even an answer to a TimeSyncRequest (network partition, "
                   "or the agent is frozen?)",
                   where(c), secs(c->timeout_ms));
    begin_close(c, 0, CLOSE_ABORT); /* it would not answer a close_notify either */
    return;
  }
  if (silent_ms >= MD__ALIVE_CHECK_MS) {
    Mtrdiag__V1__TimeSyncRequest r = MTRDIAG__V1__TIME_SYNC_REQUEST__INIT;
    r.seq = ++c->sync_seq;
    r.client_send_real_ns = md_now_real_ns();
    c->pings++;
    md_chan_send(c->chan, &r.base); /* a failure shows as the close that follows */
  }
}

static void become_ready(md_client *c) {
  c->state = MD_CLIENT_READY;
  uv_timer_stop(&c->timer);
  c->heard_mono_ns = md_now_mono_ns();
  uv_timer_start(&c->timer, on_alive_check, MD__ALIVE_CHECK_MS, MD__ALIVE_CHECK_MS);
  c->info.setup_ns = md_now_mono_ns() - c->start_mono_ns;
  md_debug("%s: ready: %s %s at %s, rtt %.3f ms, offset %+.3f ms", c->name, c->info.agent_name,
           c->info.version, where(c), c->info.rtt_ns / 1e6, c->info.offset_ns / 1e6);
  if (c->cb.on_ready)
    c->cb.on_ready(c);
}

/* A message that has no business arriving now: before READY the session
 * cannot be trusted and ends; afterwards the agent hears about it and the
 * session goes on (docs/protocol.md). */
static void unexpected(md_client *c, const Mtrdiag__V1__Envelope *env, const char *run_id,
                       const char *why) {
  const char *m = md_wire_msg_name(env->msg_case);
  if (c->state != MD_CLIENT_READY) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
         "protocol error: unexpected %s from the agent at %s while %s%s%s", m, where(c),
         md_client_state_name(c->state), why ? ": " : "", why ? why : "");
    return;
  }
  md_warn("%s: unexpected %s%s%s", c->name, m, why ? ": " : "", why ? why : "");
  md_chan_send_error(c->chan, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE, run_id,
                     "unexpected %s%s%s", m, why ? ": " : "", why ? why : "");
}

/* Keep a copy of received text that was checked to be clean. */
static int take_text(md_client *c, char **dst, const char *s, const char *field) {
  if (!md_wire_text_ok(s, MD_WIRE_NAME_MAX)) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
         "protocol error: HelloAck.%s from %s is not clean UTF-8 of at most %d bytes", field,
         where(c), MD_WIRE_NAME_MAX);
    return -EPROTO;
  }
  char *d = dup_str(s);
  if (!d) {
    FAIL(c, -ENOMEM, MD_CLIENT_ERR_LOCAL, 0, "local error: out of memory");
    return -ENOMEM;
  }
  free(*dst);
  *dst = d;
  return 0;
}

static void on_hello_ack(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__HelloAck *a = env->hello_ack;
  if (c->state != MD_CLIENT_HELLO) {
    unexpected(c, env, NULL, "HelloAck was already received");
    return;
  }
  if (a->protocol_version != MD_WIRE_VERSION) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH,
         "protocol error: the agent at %s speaks protocol version %u, we speak %u", where(c),
         a->protocol_version, MD_WIRE_VERSION);
    return;
  }
  if (take_text(c, &c->agent_name, a->agent_name, "agent_name") < 0 ||
      take_text(c, &c->hostname, a->hostname, "hostname") < 0 ||
      take_text(c, &c->version, a->software_version, "software_version") < 0)
    return;
  size_t n = a->n_addresses < MD__MAX_ADDRESSES ? a->n_addresses : MD__MAX_ADDRESSES;
  c->addresses = calloc(n ? n : 1, sizeof *c->addresses);
  if (!c->addresses) {
    FAIL(c, -ENOMEM, MD_CLIENT_ERR_LOCAL, 0, "local error: out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (take_text(c, &c->addresses[i], a->addresses[i], "addresses") < 0)
      return;
    c->n_addresses = i + 1;
  }
  c->info.agent_name = c->agent_name;
  c->info.hostname = c->hostname;
  c->info.version = c->version;
  c->info.addresses = (const char *const *)c->addresses;
  c->info.n_addresses = c->n_addresses;
  uint32_t ours = MD_WIRE_REVISION;
  c->info.protocol_revision = a->protocol_revision < ours ? a->protocol_revision : ours;
  if (a->capabilities) {
    const Mtrdiag__V1__Capabilities *k = a->capabilities;
    c->info.raw_sockets = k->raw_sockets;
    c->info.ipv4 = k->ipv4;
    c->info.ipv6 = k->ipv6;
    c->info.one_way_stream = k->one_way_stream;
    for (size_t i = 0; i < k->n_protocols; i++)
      if ((unsigned)k->protocols[i] < 32)
        c->info.protocols |= 1u << k->protocols[i];
  }
  c->state = MD_CLIENT_SYNCING;
  send_sync(c);
}

/* NTP-style: offset = ((t2 - t1) + (t3 - t4)) / 2, rtt = (t4 - t1) - (t3 - t2);
 * the sample with the lowest rtt is the least disturbed by queueing. */
static void on_sync_reply(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__TimeSyncReply *r = env->time_sync_reply;
  int64_t t4 = md_now_real_ns();
  if (c->state == MD_CLIENT_READY && c->pings > 0)
    return; /* the answer to a keepalive: hearing it was the point */
  if (c->state != MD_CLIENT_SYNCING) {
    unexpected(c, env, NULL, "no time sync in progress");
    return;
  }
  if (r->seq != c->sync_seq || r->client_send_real_ns != c->sync_t1) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
         "protocol error: TimeSyncReply from %s does not answer our request (seq %u, expected "
         "%u)",
         where(c), r->seq, c->sync_seq);
    return;
  }
  int64_t t1 = c->sync_t1, t2 = r->server_recv_real_ns, t3 = r->server_send_real_ns;
  if (t2 <= 0 || t3 <= 0 || t2 >= MD__TS_MAX || t3 >= MD__TS_MAX || t1 <= 0 || t1 >= MD__TS_MAX ||
      t4 >= MD__TS_MAX) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
         "protocol error: TimeSyncReply from %s has impossible timestamps", where(c));
    return;
  }
  int64_t rtt = (t4 - t1) - (t3 - t2);
  if (rtt < 0)
    rtt = 0; /* clock granularity; the sample is still the best kind */
  int64_t offset = ((t2 - t1) + (t3 - t4)) / 2;
  if (c->info.sync_samples == 0 || rtt < c->info.rtt_ns) {
    c->info.rtt_ns = rtt;
    c->info.offset_ns = offset;
  }
  c->info.sync_samples++;
  if (c->info.sync_samples < c->sync_want)
    send_sync(c);
  else
    become_ready(c);
}

/* The open task of list that a message about id (what: "run" or
 * "stream") is for, when it is in the state the message needs (accepted
 * or not yet); otherwise the message is unexpected() and NULL comes back. */
static md__task *task_for(md_client *c, const Mtrdiag__V1__Envelope *env, md__task *list,
                          const char *id, bool accepted, const char *what) {
  md__task *t = c->state == MD_CLIENT_READY ? task_find(list, id) : NULL;
  if (t && t->accepted == accepted)
    return t;
  char why[48];
  if (t)
    snprintf(why, sizeof why, "%s %s", what, accepted ? "not accepted yet" : "already accepted");
  else
    snprintf(why, sizeof why, "no such %s", what);
  unexpected(c, env, id, why);
  return NULL;
}

/* A final status as the agent sent it, for callers: OK, CANCELLED, or
 * FAILED for anything else. */
static Mtrdiag__V1__RunStatus result_status(Mtrdiag__V1__RunStatus st) {
  if (st != MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK &&
      st != MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED)
    st = MTRDIAG__V1__RUN_STATUS__RUN_STATUS_FAILED;
  return st;
}

static void on_run_accepted(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__RunAccepted *a = env->run_accepted;
  md__task *r = task_for(c, env, c->runs, a->run_id, false, "run");
  if (!r)
    return;
  r->accepted = true;
  if (c->cb.on_run_accepted)
    c->cb.on_run_accepted(c, r->id, a->started_at_real_ns);
}

static void on_hop_update(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__HopUpdate *u = env->hop_update;
  md__task *r = task_for(c, env, c->runs, u->run_id, true, "run");
  if (!r)
    return;
  md_path *p = NULL;
  char err[256];
  int rc = md_wire_hop_update_to_path(u, c->name, r->target, r->target_name, &p, err, sizeof err);
  if (rc < 0) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
         "protocol error: bad HopUpdate for run %s from %s: %s", r->id, where(c), err);
    return;
  }
  md_path_free(r->live);
  r->live = p;
  r->cycles_done = u->cycles_done;
  if (c->cb.on_hop_update)
    c->cb.on_hop_update(c, r->id, u->cycles_done, p);
}

static void on_run_result(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__RunResult *rr = env->run_result;
  md__task *r = task_for(c, env, c->runs, rr->run_id, true, "run");
  if (!r)
    return;
  md_path *p = NULL;
  char err[256];
  if (rr->path && md_wire_path_from_pb(rr->path, &p, err, sizeof err) < 0) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
         "protocol error: bad RunResult for run %s from %s: %s", r->id, where(c), err);
    return;
  }
  task_unlink(&c->runs, r);
  md_client_result res = {
      .run_id = r->id,
      .status = result_status(rr->status),
      .message = clean_text(rr->message),
      .cycles_done = rr->cycles_done,
      .path = p,
      .from_agent = true,
  };
  if (c->cb.on_run_result)
    c->cb.on_run_result(c, &res);
  md_path_free(res.path);
  task_free(r);
}

/* StreamAccepted: the receiver's port for the sender's request. */
static void on_stream_accepted(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__StreamAccepted *a = env->stream_accepted;
  md__task *t = task_for(c, env, c->streams, a->stream_id, false, "stream");
  if (!t)
    return;
  md_addr la;
  if (a->port > 65535 || !a->local || md_addr_parse(a->local, &la) < 0) {
    FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
         "protocol error: bad StreamAccepted for stream %s from %s: local '%s' port %u", t->id,
         where(c), clean_text(a->local), a->port);
    return;
  }
  t->accepted = true;
  char local[MD_ADDRSTRLEN];
  md_client_stream_accepted acc = {
      .stream_id = t->id,
      .role = t->role,
      .local = md_addr_str(&la, local, sizeof local),
      .port = (uint16_t)a->port,
      .start_at_real_ns = a->start_at_real_ns,
      .end_at_real_ns = a->end_at_real_ns,
  };
  if (c->scb.on_stream_accepted)
    c->scb.on_stream_accepted(c, &acc);
}

/* StreamResult: the last message about a stream. */
static void on_stream_result(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__StreamResult *r = env->stream_result;
  md__task *t = task_for(c, env, c->streams, r->stream_id, true, "stream");
  if (!t)
    return;
  task_unlink(&c->streams, t);
  md_client_stream_result res = {
      .stream_id = t->id,
      .role = t->role,
      .status = result_status(r->status),
      .message = clean_text(r->message),
      .sent = r->sent,
      .send_errors = r->send_errors,
      .expected = r->expected,
      .received = r->received,
      .duplicates = r->duplicates,
      .reordered = r->reordered,
      .ignored = r->ignored,
      .delay_min_ns = r->delay_min_ns,
      .delay_avg_ns = r->delay_avg_ns,
      .delay_max_ns = r->delay_max_ns,
      .delay_stdev_ns = r->delay_stdev_ns,
      .from_agent = true,
  };
  if (c->scb.on_stream_result)
    c->scb.on_stream_result(c, &res);
  task_free(t);
}

/* Session errors that end the session (docs/protocol.md, "Error"). */
static bool error_closes(Mtrdiag__V1__ErrorCode code) {
  switch (code) {
  case MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME:
  case MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE:
  case MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH:
  case MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED:
    return true;
  default:
    return false;
  }
}

/* An Error about a task of list that the agent refused, or does not know:
 * no result will come, so the Error ends the task. Whether it did. */
static bool error_ends_task(md_client *c, md__task **list, const Mtrdiag__V1__Error *e,
                            const char *msg) {
  md__task *t = task_find(*list, e->run_id);
  if (!t || (t->accepted && e->code != MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_RUN))
    return false;
  task_unlink(list, t);
  if (c->cb.on_error)
    c->cb.on_error(c, t->id, e->code, msg);
  task_free(t);
  return true;
}

static void on_error(md_client *c, const Mtrdiag__V1__Envelope *env) {
  const Mtrdiag__V1__Error *e = env->error;
  const char *msg = clean_text(e->message);
  const char *name = md_wire_error_name(e->code);
  bool about_run = e->run_id && e->run_id[0];
  if (!about_run && (c->state != MD_CLIENT_READY || error_closes(e->code))) {
    if (e->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED)
      FAIL(c, -EACCES, MD_CLIENT_ERR_NOT_AUTHORISED, 0,
           "not authorised: the agent at %s does not accept our certificate name: %s", where(c),
           msg);
    else if (e->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME ||
             e->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE ||
             e->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH ||
             e->code == MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE)
      FAIL(c, -EPROTO, MD_CLIENT_ERR_PROTOCOL, 0, "protocol error: the agent at %s says %s: %s",
           where(c), name, msg);
    else
      FAIL(c, -EPROTO, MD_CLIENT_ERR_AGENT, 0, "agent error: %s: %s (%s)", name, msg, where(c));
    return;
  }
  if (about_run &&
      (error_ends_task(c, &c->streams, e, msg) || error_ends_task(c, &c->runs, e, msg)))
    return;
  if (c->cb.on_error)
    c->cb.on_error(c, about_run ? e->run_id : "", e->code, msg);
}

static void chan_on_message(md_chan *ch, const Mtrdiag__V1__Envelope *env) {
  md_client *c = md_chan_data(ch);
  if (c->state >= MD_CLIENT_CLOSING)
    return;
  c->heard_mono_ns = md_now_mono_ns();
  switch (env->msg_case) {
  case MTRDIAG__V1__ENVELOPE__MSG_HELLO_ACK:
    on_hello_ack(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REPLY:
    on_sync_reply(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_ACCEPTED:
    on_run_accepted(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE:
    on_hop_update(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT:
    on_run_result(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_ERROR:
    on_error(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_STREAM_ACCEPTED:
    on_stream_accepted(c, env);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_STREAM_RESULT:
    on_stream_result(c, env);
    break;
  default:
    unexpected(c, env, NULL, "not a message an agent sends");
    break;
  }
}

static const md_chan_cb chan_cb = {chan_on_up, chan_on_message, chan_on_close};

/* ---- connecting */

static void on_deadline(uv_timer_t *t) {
  md_client *c = t->data;
  const char *w = where(c);
  double s = secs(c->timeout_ms);
  switch (c->state) {
  case MD_CLIENT_RESOLVING:
    record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT, "timeout: %s did not resolve within %g s",
                   c->host, s);
    break;
  case MD_CLIENT_CONNECTING:
    if (c->chan && md_chan_tls(c->chan))
      record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT,
                     "timeout: TLS handshake with %s did not finish within %g s", w, s);
    else
      record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT,
                     "timeout: no TCP connection to %s within %g s (host down, or packets "
                     "dropped on the way?)",
                     w, s);
    break;
  case MD_CLIENT_HELLO:
    record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT,
                   "timeout: no HelloAck from %s within %g s (TLS is up: is it an mtr-agent, "
                   "and is it overloaded?)",
                   w, s);
    break;
  default:
    record_failure(c, -ETIMEDOUT, MD_CLIENT_ERR_TIMEOUT,
                   "timeout: time sync with %s did not finish within %g s (%u of %u replies)", w, s,
                   c->info.sync_samples, c->sync_want);
    break;
  }
  begin_close(c, 0, CLOSE_ABORT);
}

/* TCP, then TLS (md_chan), within what is left of the deadline. */
static void start_connect(md_client *c) {
  int64_t left_ms =
      (int64_t)c->timeout_ms - (md_now_mono_ns() - c->start_mono_ns) / INT64_C(1000000);
  if (left_ms < 1)
    left_ms = 1;
  md_addr_str_hostport(&c->addr, c->peer_addr, sizeof c->peer_addr);
  c->info.peer_addr = c->peer_addr;
  c->state = MD_CLIENT_CONNECTING;
  int rc = md_chan_connect(c->loop, c->tls, &c->addr, c->tls_name, c->pin, (unsigned)left_ms,
                           &chan_cb, c, &c->chan);
  if (rc < 0) {
    c->chan = NULL;
    if (rc == UV_ENETUNREACH || rc == UV_EHOSTUNREACH || rc == UV_EADDRNOTAVAIL)
      FAIL(c, rc, MD_CLIENT_ERR_UNREACHABLE, 0, "unreachable: cannot connect to %s: %s",
           c->peer_addr, uv_strerror(rc));
    else
      FAIL(c, rc, MD_CLIENT_ERR_LOCAL, 0, "local error: cannot connect to %s: %s", c->peer_addr,
           uv_strerror(rc));
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  md_client *c = req->data;
  c->resolving = false;
  if (c->state >= MD_CLIENT_CLOSING) {
    uv_freeaddrinfo(res);
    finish(c);
    return;
  }
  if (status < 0 || !res || res->ai_addrlen > sizeof c->addr) {
    FAIL(c, status < 0 ? status : -ENOENT, MD_CLIENT_ERR_RESOLVE, 0, "cannot resolve: %s: %s",
         c->host, status < 0 ? uv_strerror(status) : "no address");
    uv_freeaddrinfo(res);
    return;
  }
  memset(&c->addr, 0, sizeof c->addr);
  memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
  md_addr_set_port(&c->addr, c->port);
  uv_freeaddrinfo(res);
  start_connect(c);
}

int md_client_connect(uv_loop_t *loop, md_tls_ctx *tls, const md_ctl_agent *agent,
                      const md_client_opts *opts, const md_client_cb *cb, void *ud,
                      md_client **out) {
  if (!loop || !tls || !agent || !cb || !out || !agent->name || !agent->name[0] ||
      (!agent->has_addr && (!agent->host || !agent->host[0])))
    return -EINVAL;
  unsigned samples = opts && opts->sync_samples ? opts->sync_samples : MD_CLIENT_SYNC_SAMPLES;
  if (samples > MD_CLIENT_MAX_SYNC_SAMPLES)
    return -EINVAL;
  md_client *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->loop = loop;
  c->tls = tls;
  c->cb = *cb;
  c->ud = ud;
  c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : MD_CLIENT_DEFAULT_TIMEOUT_MS;
  c->sync_want = samples;
  c->name = dup_str(agent->name);
  c->address = dup_str(agent->address ? agent->address : agent->host);
  c->host = dup_str(agent->host);
  c->tls_name = dup_str(agent->tls_name && agent->tls_name[0] ? agent->tls_name : agent->name);
  c->pin = dup_str(agent->pin_sha256);
  c->controller_name = dup_str(opts ? opts->controller_name : NULL);
  c->cert_name = dup_str(NULL);
  c->agent_name = dup_str(NULL);
  c->hostname = dup_str(NULL);
  c->version = dup_str(NULL);
  if (!c->name || !c->address || !c->host || !c->tls_name || !c->pin || !c->controller_name ||
      !c->cert_name || !c->agent_name || !c->hostname || !c->version) {
    client_free(c);
    return -ENOMEM;
  }
  c->port = agent->port ? agent->port : MD_CONFIG_DEFAULT_PORT;
  c->has_addr = agent->has_addr;
  if (c->has_addr) {
    c->addr = agent->addr;
    if (md_addr_port(&c->addr) == 0)
      md_addr_set_port(&c->addr, c->port);
  }
  c->info = (md_client_info){
      .name = c->name,
      .address = c->address,
      .peer_addr = c->peer_addr,
      .cert_name = c->cert_name,
      .agent_name = c->agent_name,
      .hostname = c->hostname,
      .version = c->version,
  };
  c->start_mono_ns = md_now_mono_ns();
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->gai.data = c;
  if (c->has_addr) {
    start_connect(c);
  } else {
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->state = MD_CLIENT_RESOLVING;
    int rc = uv_getaddrinfo(loop, &c->gai, on_resolved, c->host, port, &hints);
    if (rc == 0)
      c->resolving = true;
    else
      FAIL(c, rc, MD_CLIENT_ERR_RESOLVE, 0, "cannot resolve: %s: %s", c->host, uv_strerror(rc));
  }
  if (c->state < MD_CLIENT_CLOSING)
    uv_timer_start(&c->timer, on_deadline, c->timeout_ms, 0);
  *out = c;
  return 0;
}

/* ---- the API for diagnose */

void md_client_close(md_client *c) {
  if (!c || c->state >= MD_CLIENT_CLOSING)
    return;
  c->close_requested = true;
  begin_close(c, 0, CLOSE_GRACEFUL);
}

/* What md_client_run_start and _stream_start check first: err cleared,
 * and the session READY. */
static int start_ready(const md_client *c, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (c->state == MD_CLIENT_READY)
    return 0;
  if (err)
    snprintf(err, errlen, "agent %s is not ready (%s)", c->name, md_client_state_name(c->state));
  return -ENOTCONN;
}

/* Runs and streams share one id space in a session (Cancel and Error name
 * either); field names the id in the message. */
static int id_unused(md_client *c, const char *field, const char *id, char *err, size_t errlen) {
  if (!task_find(c->runs, id) && !task_find(c->streams, id))
    return 0;
  if (err)
    snprintf(err, errlen, "%s %s is already in use with agent %s", field, id, c->name);
  return -EEXIST;
}

/* Send the request (what) that opens t and keep t at the end of list. t
 * is freed when it is not complete (out of memory: nothing is sent) or the
 * request cannot be sent. */
static int task_open(md_client *c, md__task **list, md__task *t, bool complete,
                     const ProtobufCMessage *req, const char *what, char *err, size_t errlen) {
  if (!complete) {
    task_free(t);
    if (err)
      snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  int rc = md_chan_send(c->chan, req);
  if (rc < 0) {
    task_free(t);
    if (err)
      snprintf(err, errlen, "cannot send the %s: %s", what, md_wire_strerror(rc));
    return rc;
  }
  md__task **p = list;
  while (*p)
    p = &(*p)->next;
  *p = t;
  return 0;
}

/* Cancel a task of list; the agent looks for the id among its runs and
 * streams alike. */
static int task_cancel(md_client *c, md__task *list, const char *id) {
  if (c->state != MD_CLIENT_READY)
    return -ENOTCONN;
  md__task *t = task_find(list, id);
  if (!t)
    return -ENOENT;
  Mtrdiag__V1__Cancel m = MTRDIAG__V1__CANCEL__INIT;
  m.run_id = t->id;
  return md_chan_send(c->chan, &m.base);
}

int md_client_run_start(md_client *c, const Mtrdiag__V1__RunRequest *req, char *err,
                        size_t errlen) {
  int rc = start_ready(c, err, errlen);
  if (rc < 0)
    return rc;
  rc = md_wire_check_run_request(req, err, errlen);
  if (rc < 0)
    return rc;
  rc = id_unused(c, "run_id", req->run_id, err, errlen);
  if (rc < 0)
    return rc;
  md__task *r = calloc(1, sizeof *r);
  if (r) {
    r->id = dup_str(req->run_id);
    r->target = dup_str(req->target);
    r->target_name = dup_str(req->target_name);
  }
  return task_open(c, &c->runs, r, r && r->id && r->target && r->target_name, &req->base,
                   "RunRequest", err, errlen);
}

int md_client_run_cancel(md_client *c, const char *run_id) {
  return task_cancel(c, c->runs, run_id);
}

size_t md_client_run_count(const md_client *c) {
  return task_count(c->runs);
}

/* The checks an agent would refuse at once, so the caller hears of them synchronously. */
static int check_stream_request(const Mtrdiag__V1__StreamRequest *q, char *err, size_t errlen) {
  char why[128];
  md_addr a;
  if (md_wire_check_run_id(q->stream_id, why, sizeof why) < 0) {
    if (err)
      snprintf(err, errlen, "stream_id%s", strchr(why, ':') ? strchr(why, ':') : ": invalid");
    return MD_WIRE_EFIELD;
  }
  if (q->role != MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND &&
      q->role != MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE) {
    if (err)
      snprintf(err, errlen, "role: must be SEND or RECEIVE");
    return MD_WIRE_EFIELD;
  }
  if (!q->peer || md_addr_parse(q->peer, &a) < 0) {
    if (err)
      snprintf(err, errlen, "peer: not a numeric IPv4 or IPv6 address");
    return MD_WIRE_EFIELD;
  }
  if (q->local && q->local[0] && md_addr_parse(q->local, &a) < 0) {
    if (err)
      snprintf(err, errlen, "local: not a numeric IPv4 or IPv6 address");
    return MD_WIRE_EFIELD;
  }
  if (q->token.len != 16 || !q->token.data) {
    if (err)
      snprintf(err, errlen, "token: must be 16 bytes, not %zu", q->token.len);
    return MD_WIRE_EFIELD;
  }
  if (q->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND && (q->port == 0 || q->port > 65535)) {
    if (err)
      snprintf(err, errlen, "port: a SEND stream needs the receiver's port (1-65535)");
    return MD_WIRE_EFIELD;
  }
  return 0;
}

/* One side of a one-way stream, tracked until its result. */
int md_client_stream_start(md_client *c, const Mtrdiag__V1__StreamRequest *req, char *err,
                           size_t errlen) {
  int rc = start_ready(c, err, errlen);
  if (rc < 0)
    return rc;
  if (c->info.protocol_revision < 1 || !c->info.one_way_stream) {
    if (err)
      snprintf(err, errlen,
               "agent %s does not offer one-way streams (mtr-agent %s, protocol revision %u)",
               c->name, c->info.version, c->info.protocol_revision);
    return -EOPNOTSUPP;
  }
  rc = check_stream_request(req, err, errlen);
  if (rc < 0)
    return rc;
  rc = id_unused(c, "stream_id", req->stream_id, err, errlen);
  if (rc < 0)
    return rc;
  md__task *t = calloc(1, sizeof *t);
  if (t) {
    t->id = dup_str(req->stream_id);
    t->role = req->role;
  }
  return task_open(c, &c->streams, t, t && t->id, &req->base, "StreamRequest", err, errlen);
}

/* Cancel shares run ids with streams: the agent looks in both. */
int md_client_stream_cancel(md_client *c, const char *stream_id) {
  return task_cancel(c, c->streams, stream_id);
}

/* Stream callbacks live apart so md_client_cb stays as it was. */
void md_client_set_stream_cb(md_client *c, const md_client_stream_cb *cb) {
  if (cb)
    c->scb = *cb;
  else
    memset(&c->scb, 0, sizeof c->scb);
}

/* Open streams, for the caller's bookkeeping. */
size_t md_client_stream_count(const md_client *c) {
  return task_count(c->streams);
}

int64_t md_client_to_agent_ns(const md_client *c, int64_t local_real_ns) {
  return local_real_ns + c->info.offset_ns;
}

int64_t md_client_from_agent_ns(const md_client *c, int64_t agent_real_ns) {
  return agent_real_ns - c->info.offset_ns;
}

enum md_client_state md_client_get_state(const md_client *c) {
  return c->state;
}

const md_client_info *md_client_get_info(const md_client *c) {
  return &c->info;
}

void *md_client_data(const md_client *c) {
  return c->ud;
}

void md_client_set_data(md_client *c, void *ud) {
  c->ud = ud;
}

const char *md_client_err_code(enum md_client_err kind) {
  switch (kind) {
  case MD_CLIENT_OK:
    return "ok";
  case MD_CLIENT_ERR_RESOLVE:
    return "resolve";
  case MD_CLIENT_ERR_REFUSED:
    return "refused";
  case MD_CLIENT_ERR_UNREACHABLE:
    return "unreachable";
  case MD_CLIENT_ERR_TIMEOUT:
    return "timeout";
  case MD_CLIENT_ERR_UNTRUSTED:
    return "untrusted";
  case MD_CLIENT_ERR_NAME_MISMATCH:
    return "name_mismatch";
  case MD_CLIENT_ERR_PIN_MISMATCH:
    return "pin_mismatch";
  case MD_CLIENT_ERR_NOT_AUTHORISED:
    return "not_authorised";
  case MD_CLIENT_ERR_PROTOCOL:
    return "protocol";
  case MD_CLIENT_ERR_CLOSED:
    return "closed";
  case MD_CLIENT_ERR_AGENT:
    return "agent_error";
  case MD_CLIENT_ERR_LOCAL:
    return "local";
  }
  return "unknown";
}

const char *md_client_err_text(enum md_client_err kind) {
  switch (kind) {
  case MD_CLIENT_OK:
    return "ok";
  case MD_CLIENT_ERR_RESOLVE:
    return "cannot resolve";
  case MD_CLIENT_ERR_REFUSED:
    return "connection refused";
  case MD_CLIENT_ERR_UNREACHABLE:
    return "unreachable";
  case MD_CLIENT_ERR_TIMEOUT:
    return "timeout";
  case MD_CLIENT_ERR_UNTRUSTED:
    return "agent certificate not trusted";
  case MD_CLIENT_ERR_NAME_MISMATCH:
    return "name mismatch";
  case MD_CLIENT_ERR_PIN_MISMATCH:
    return "pin mismatch";
  case MD_CLIENT_ERR_NOT_AUTHORISED:
    return "not authorised";
  case MD_CLIENT_ERR_PROTOCOL:
    return "protocol error";
  case MD_CLIENT_ERR_CLOSED:
    return "connection closed";
  case MD_CLIENT_ERR_AGENT:
    return "agent error";
  case MD_CLIENT_ERR_LOCAL:
    return "local error";
  }
  return "unknown";
}

const char *md_client_state_name(enum md_client_state s) {
  switch (s) {
  case MD_CLIENT_RESOLVING:
    return "resolving";
  case MD_CLIENT_CONNECTING:
    return "connecting";
  case MD_CLIENT_HELLO:
    return "waiting for HelloAck";
  case MD_CLIENT_SYNCING:
    return "syncing clocks";
  case MD_CLIENT_READY:
    return "ready";
  case MD_CLIENT_CLOSING:
    return "closing";
  case MD_CLIENT_CLOSED:
    return "closed";
  }
  return "unknown";
}
