/* md_chan: one control connection, either end: TCP + TLS 1.3 (md_tls) +
 * length-prefixed frames (md_frame) + Envelopes (md_wire).
 *
 * The agent accepts channels, the controller connects them; both then send
 * messages and get one callback per received Envelope. Anything the peer
 * sends that is not a valid frame holding a valid Envelope ends the channel:
 * the peer is sent an Error naming the problem where that is still possible,
 * and on_close reports it. A channel frees itself after on_close.
 */
#ifndef MD_CHAN_H
#define MD_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "md_addr.h"
#include "md_tls.h"
#include "md_wire.h"

typedef struct md_chan md_chan;

typedef struct md_chan_cb {
  /* TLS handshake finished and the peer is verified (status 0), or the
   * connection attempt failed (status < 0; on_close follows). Optional. */
  void (*on_up)(md_chan *c, int status);
  /* One received Envelope; it is freed when the callback returns. */
  void (*on_message)(md_chan *c, const Mtrdiag__V1__Envelope *env);
  /* Exactly once, the last callback. status 0: closed on purpose by either
   * side; < 0: negative errno. reason: a sentence naming the cause ("" when
   * closed on purpose). The channel is freed right after it returns. */
  void (*on_close)(md_chan *c, int status, const char *reason);
} md_chan_cb;

/* Server side: accept a pending connection on a listening stream and start
 * the TLS handshake. 0 or a negative errno (nothing to free then). */
int md_chan_accept(uv_stream_t *listener, md_tls_ctx *tls, const md_chan_cb *cb, void *ud,
                   md_chan **out);
/* Client side: connect to addr, then TLS; the agent's certificate must carry
 * tls_name, and match pin (base64 SPKI SHA-256) when pin is not NULL/"".
 * timeout_ms bounds connect + handshake. 0 or negative errno. */
int md_chan_connect(uv_loop_t *loop, md_tls_ctx *tls, const md_addr *addr, const char *tls_name,
                    const char *pin, unsigned timeout_ms, const md_chan_cb *cb, void *ud,
                    md_chan **out);

/* Send one message (a member of the Envelope's oneof). 0 or negative errno. */
int md_chan_send(md_chan *c, const ProtobufCMessage *msg);
/* Send an Error message. */
int md_chan_send_error(md_chan *c, Mtrdiag__V1__ErrorCode code, const char *run_id, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* Graceful close (pending writes are flushed). Idempotent. */
void md_chan_close(md_chan *c);
/* Close with an error: send Error(code, message) to the peer, then close;
 * on_close reports status and the same message. */
void md_chan_fail(md_chan *c, int status, Mtrdiag__V1__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Bytes written but not yet handed to the kernel (for back-pressure). */
size_t md_chan_pending(const md_chan *c);
/* The verified certificate name of the peer (after on_up(0)), else NULL. */
const char *md_chan_peer_name(const md_chan *c);
/* The peer's address as text ("198.18.1.1:40000"). */
const char *md_chan_peer_addr(const md_chan *c);
md_tls_conn *md_chan_tls(md_chan *c);
void *md_chan_data(const md_chan *c);
void md_chan_set_data(md_chan *c, void *ud);
/* Close the channel if it has not finished its handshake (and sent or received
 * any message) within ms; 0 disables. Also an idle limit after that. */
void md_chan_set_idle_timeout(md_chan *c, unsigned ms);

#endif
