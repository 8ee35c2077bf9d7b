/* md_client: the controller's side of one control session with one agent,
 * on a libuv loop (docs/controller.md, docs/protocol.md).
 *
 * A client connects (TCP, TLS 1.3 with the agent's tls_name and optional
 * pin), sends Hello, waits for HelloAck, measures the agent's clock with a
 * few TimeSync exchanges and is then READY: runs can be started, cancelled,
 * and their RunAccepted / HopUpdate / RunResult / Error come back as
 * callbacks. Everything that can go wrong ends in exactly one on_close with
 * a class (enum md_client_err) and a sentence that starts with the class's
 * words ("connection refused: ...", "not authorised: ...").
 *
 *   md_client *c;
 *   md_client_connect(loop, tls, agent, &opts, &cb, ud, &c);
 *   ... cb.on_ready(c): md_client_run_start(c, &req, err, sizeof err) ...
 *   ... cb.on_run_result(c, res) ...
 *   ... md_client_stream_start(c, &sreq, ...) (one-way streams, below) ...
 *   md_client_close(c);
 *   ... cb.on_close(c, status, kind, reason): the last callback; c is freed
 *       after it returns.
 *
 * The agent is "up" only when its HelloAck has arrived: with TLS 1.3 an
 * agent that refuses our certificate lets our handshake finish and says no
 * only afterwards (md_tls.h). All functions must be called on the loop's
 * thread; every callback may call any function of this API.
 */
#ifndef MD_CLIENT_H
#define MD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "md_config.h"
#include "md_path.h"
#include "md_tls.h"
#include "md_wire.h"

#define MD_CLIENT_DEFAULT_TIMEOUT_MS 5000 /* connect + TLS + Hello + time sync */
#define MD_CLIENT_SYNC_SAMPLES 5          /* TimeSync exchanges; the lowest RTT wins */
#define MD_CLIENT_MAX_SYNC_SAMPLES 64

typedef struct md_client md_client;

/* Where a session is. Only READY accepts runs. */
enum md_client_state {
  MD_CLIENT_RESOLVING,  /* the inventory address is a DNS name being looked up */
  MD_CLIENT_CONNECTING, /* TCP connect and TLS handshake */
  MD_CLIENT_HELLO,      /* Hello sent, waiting for HelloAck */
  MD_CLIENT_SYNCING,    /* TimeSync exchanges */
  MD_CLIENT_READY,      /* runs may be started */
  MD_CLIENT_CLOSING,    /* closing; on_close follows */
  MD_CLIENT_CLOSED,     /* on_close has been called */
};

/* Why a session ended; one class per thing an operator would do
 * differently. md_client_err_code() is the stable short code for reports. */
enum md_client_err {
  MD_CLIENT_OK = 0,             /* closed on purpose by the controller */
  MD_CLIENT_ERR_RESOLVE,        /* "resolve": the address does not resolve */
  MD_CLIENT_ERR_REFUSED,        /* "refused": nothing listens on the port */
  MD_CLIENT_ERR_UNREACHABLE,    /* "unreachable": no route to the agent */
  MD_CLIENT_ERR_TIMEOUT,        /* "timeout": connect, TLS, HelloAck or TimeSync too slow */
  MD_CLIENT_ERR_UNTRUSTED,      /* "untrusted": agent certificate not valid for our CA */
  MD_CLIENT_ERR_NAME_MISMATCH,  /* "name_mismatch": certificate does not carry tls_name */
  MD_CLIENT_ERR_PIN_MISMATCH,   /* "pin_mismatch": certificate key is not pin_sha256 */
  MD_CLIENT_ERR_NOT_AUTHORISED, /* "not_authorised": Error NOT_AUTHORISED, or TLS refused us */
  MD_CLIENT_ERR_PROTOCOL,       /* "protocol": bad frames/messages, version, sequence */
  MD_CLIENT_ERR_CLOSED,         /* "closed": the agent closed or reset the connection */
  MD_CLIENT_ERR_AGENT,          /* "agent_error": the agent ended the session with an Error */
  MD_CLIENT_ERR_LOCAL,          /* "local": out of memory, cannot create a socket */
};

/* What the session learnt about the agent. Strings are "" until known and
 * stay valid until on_close returns. */
typedef struct md_client_info {
  const char *name;             /* inventory name (the key in `agents`) */
  const char *address;          /* inventory address, as written */
  const char *peer_addr;        /* the address connected to, "198.18.4.2:7447" ("" before) */
  const char *cert_name;        /* the agent's verified certificate name (TLS identity) */
  const char *agent_name;       /* HelloAck.agent_name (informational, not trusted) */
  const char *hostname;         /* HelloAck.hostname */
  const char *version;          /* HelloAck.software_version */
  uint32_t protocol_revision;   /* agreed: the lower of ours and the agent's */
  const char *const *addresses; /* HelloAck.addresses */
  size_t n_addresses;
  bool raw_sockets, ipv4, ipv6, one_way_stream; /* HelloAck.capabilities */
  uint32_t protocols;    /* bit (1 << Mtrdiag__V1__Protocol) per protocol it runs now */
  unsigned sync_samples; /* TimeSync replies received */
  int64_t rtt_ns;        /* round trip of the best (lowest RTT) sample */
  int64_t offset_ns;     /* agent clock - controller clock (CLOCK_REALTIME) */
  int64_t setup_ns;      /* from md_client_connect to READY (monotonic) */
} md_client_info;

/* The end of a run: the agent's RunResult, or one the client made up when
 * the session ended first (from_agent false, status FAILED, or CANCELLED
 * when the controller closed the session). */
typedef struct md_client_result {
  const char *run_id;
  Mtrdiag__V1__RunStatus status; /* OK, CANCELLED or FAILED (never UNSPECIFIED) */
  const char *message;           /* why, when not OK ("" otherwise) */
  uint32_t cycles_done;
  /* What was measured (RunResult.path, or the last HopUpdate when made up);
   * NULL when nothing was. Take it over by setting it to NULL, else it is
   * freed when the callback returns. */
  md_path *path;
  bool from_agent;
} md_client_result;

/* A one-way stream accepted by the agent (StreamAccepted). Strings valid
 * during the call only. */
typedef struct md_client_stream_accepted {
  const char *stream_id;
  Mtrdiag__V1__StreamRole role; /* as requested */
  const char *local;            /* the bound address ("0.0.0.0" / "::": the wildcard) */
  uint16_t port;                /* RECEIVE: where the sender must send */
  int64_t start_at_real_ns;     /* first packet (scheduled), agent's clock */
  int64_t end_at_real_ns;       /* SEND: last packet; RECEIVE: end of listening; agent's clock */
} md_client_stream_accepted;

/* The end of a stream: the agent's StreamResult, or one the client made up
 * when the session ended first (from_agent false, all counts 0, status
 * FAILED, or CANCELLED when the controller closed the session). */
typedef struct md_client_stream_result {
  const char *stream_id;
  Mtrdiag__V1__StreamRole role;  /* as requested */
  Mtrdiag__V1__RunStatus status; /* OK, CANCELLED or FAILED (never UNSPECIFIED) */
  const char *message;           /* why, when not OK or not clean ("" otherwise) */
  uint32_t sent, send_errors;    /* SEND: packets handed to the kernel, refused by it */
  uint32_t expected, received, duplicates, reordered, ignored; /* RECEIVE */
  /* RECEIVE: receive time minus the sender's timestamp over the packets
   * received, on two different clocks (md_oneway_compute removes the offset);
   * 0 when none was received. */
  int64_t delay_min_ns, delay_avg_ns, delay_max_ns, delay_stdev_ns;
  bool from_agent;
} md_client_stream_result;

typedef struct md_client_cb {
  /* HelloAck received and the clock measured: runs may start now. Once. */
  void (*on_ready)(md_client *c);
  /* RunAccepted for a run we started: the agent's scheduled first probe. */
  void (*on_run_accepted)(md_client *c, const char *run_id, int64_t started_at_real_ns);
  /* A HopUpdate: the whole live path; valid during the call only. */
  void (*on_hop_update)(md_client *c, const char *run_id, uint32_t cycles_done,
                        const md_path *live);
  /* The last callback about a run (also for runs the session outlived). */
  void (*on_run_result)(md_client *c, md_client_result *res);
  /* An Error from the agent that does not end the session: about a run
   * (run_id not "": POLICY_DENIED, ...; a run refused before RunAccepted is
   * over, no on_run_result follows) or about the session (run_id ""). */
  void (*on_error)(md_client *c, const char *run_id, Mtrdiag__V1__ErrorCode code,
                   const char *message);
  /* Exactly once, last. status 0 / MD_CLIENT_OK: closed by md_client_close;
   * else a negative errno and the class. reason: "" or a sentence starting
   * with the class's words. c is freed after the call. */
  void (*on_close)(md_client *c, int status, enum md_client_err kind, const char *reason);
} md_client_cb;

/* The callbacks of one-way streams, apart from md_client_cb so that its
 * users need not change (md_client_set_stream_cb). A stream the agent
 * refuses gets md_client_cb.on_error with its stream_id as run_id instead,
 * and no result. */
typedef struct md_client_stream_cb {
  /* StreamAccepted for a stream we started. Optional. */
  void (*on_stream_accepted)(md_client *c, const md_client_stream_accepted *acc);
  /* The last callback about a stream (also for streams the session outlived). */
  void (*on_stream_result)(md_client *c, const md_client_stream_result *res);
} md_client_stream_cb;

typedef struct md_client_opts {
  unsigned timeout_ms;         /* connect to READY; 0: MD_CLIENT_DEFAULT_TIMEOUT_MS */
  unsigned sync_samples;       /* 0: MD_CLIENT_SYNC_SAMPLES; at most MD_CLIENT_MAX_SYNC_SAMPLES */
  const char *controller_name; /* Hello.controller_name, informational (NULL: "") */
} md_client_opts;

/* Start a session with one inventory agent (its name, address or host and
 * port, tls_name, pin_sha256 are copied). tls: the controller's client
 * context; keep it until on_close (md_chan uses it once TCP is connected,
 * and only then does the connection hold its own reference). Failures after this returns 0 are
 * reported by on_close, never synchronously. 0, -EINVAL (missing agent fields, bad opts) or
 * -ENOMEM. */
int md_client_connect(uv_loop_t *loop, md_tls_ctx *tls, const md_ctl_agent *agent,
                      const md_client_opts *opts, const md_client_cb *cb, void *ud,
                      md_client **out);

/* Graceful close. Runs still open end with on_run_result (CANCELLED, made
 * up; the agent cancels them when the session ends), then on_close(0).
 * Idempotent; nothing after on_close. */
void md_client_close(md_client *c);

/* Send a RunRequest (req is copied; set every option, run_id included).
 * start_at_real_ns is on the agent's clock: see md_client_to_agent_ns.
 * Checked with md_wire_check_run_request first. 0; -ENOTCONN (not READY);
 * -EEXIST (run_id in use in this session); MD_WIRE_EFIELD (err names the
 * field); -ENOMEM. */
int md_client_run_start(md_client *c, const Mtrdiag__V1__RunRequest *req, char *err, size_t errlen);
/* Ask the agent to stop a run: its RunResult (CANCELLED) follows. 0,
 * -ENOENT (no such open run), -ENOTCONN. */
int md_client_run_cancel(md_client *c, const char *run_id);
/* Open runs (started, no result yet). */
size_t md_client_run_count(const md_client *c);

/* Ask the agent for one side of a one-way stream (docs/protocol.md,
 * "One-way streams"); req is copied. The receiving side goes first: its
 * StreamAccepted names the port the sending side's request must carry.
 * start_at_real_ns is on the agent's clock (md_client_to_agent_ns). Stream
 * ids share the session's run ids. Checked first: stream_id, role, a numeric
 * peer, a 16-byte token. 0; -ENOTCONN (not READY); -EOPNOTSUPP (the agent does
 * not offer one_way_stream at an agreed protocol_revision >= 1); -EEXIST (id in
 * use); MD_WIRE_EFIELD (err names the field); -ENOMEM. */
int md_client_stream_start(md_client *c, const Mtrdiag__V1__StreamRequest *req, char *err,
                           size_t errlen);
/* Set (copy) the stream callbacks; any time, usually in on_ready. NULL clears them. */
void md_client_set_stream_cb(md_client *c, const md_client_stream_cb *cb);
/* Ask the agent to stop a stream: its StreamResult (CANCELLED) follows. 0,
 * -ENOENT (no such open stream), -ENOTCONN. */
int md_client_stream_cancel(md_client *c, const char *stream_id);
/* Open streams (started, no result yet). */
size_t md_client_stream_count(const md_client *c);

/* Controller realtime <-> agent realtime, with the measured offset. */
int64_t md_client_to_agent_ns(const md_client *c, int64_t local_real_ns);
int64_t md_client_from_agent_ns(const md_client *c, int64_t agent_real_ns);

enum md_client_state md_client_get_state(const md_client *c);
const md_client_info *md_client_get_info(const md_client *c);
void *md_client_data(const md_client *c);
void md_client_set_data(md_client *c, void *ud);

/* "refused", "timeout", ... (the comments of enum md_client_err); "ok". */
const char *md_client_err_code(enum md_client_err kind);
/* "connection refused", "timeout", ...: the words a reason starts with. */
const char *md_client_err_text(enum md_client_err kind);
/* "connecting", "ready", ... for logs. */
const char *md_client_state_name(enum md_client_state s);

#endif
