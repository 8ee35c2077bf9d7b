/* md_tls: mutually authenticated TLS 1.3 over a libuv stream.
 *
 * OpenSSL never touches the socket: ciphertext moves between the uv stream
 * and a pair of memory BIOs, so the event loop stays in charge of all I/O.
 * Both ends always present and verify a certificate signed by the
 * deployment CA (see md_pki.h); the peer's identity is its subject CN plus
 * its DNS subjectAltNames.
 *
 * Life of a connection:
 *   md_tls_conn_new(ctx, connected_stream, &cb, user, &c);
 *   md_tls_conn_expect_peer(c, "cvm", pin);        // optional, clients
 *   md_tls_conn_start(c);
 *   ... on_handshake(c, 0), on_read(c, data, len)..., md_tls_conn_write() ...
 *   md_tls_conn_close(c);                          // or md_tls_conn_abort(c)
 *   ... on_close(c, status): now md_tls_conn_free(c) and free the stream.
 *
 * TLS 1.3 and client certificates: the client finishes its handshake before
 * the server has looked at the client's certificate. A client whose
 * certificate the server refuses therefore gets on_handshake(c, 0) and
 * learns of the refusal only from the alert that follows: on_close(c, <0)
 * with md_tls_last_error() = "peer refused our certificate: ...". The
 * application must not call a connection up until the peer has said
 * something at the application layer (mtrdiag waits for HelloAck).
 *
 * The process must ignore SIGPIPE (libuv writes with write(2) on Linux).
 * All functions must be called on the loop thread.
 */
#ifndef MD_TLS_H
#define MD_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct md_tls_ctx md_tls_ctx;
typedef struct md_tls_conn md_tls_conn;

enum md_tls_role { MD_TLS_SERVER, MD_TLS_CLIENT };

/* Why a connection failed; md_tls_last_error() has the sentence. */
enum md_tls_err {
  MD_TLS_OK = 0,
  MD_TLS_ERR_UNKNOWN_CA,    /* "certificate not trusted (unknown CA)" */
  MD_TLS_ERR_EXPIRED,       /* "certificate expired" */
  MD_TLS_ERR_NOT_YET_VALID, /* "certificate not yet valid" */
  MD_TLS_ERR_NO_PEER_CERT,  /* "peer sent no certificate" */
  MD_TLS_ERR_BAD_CERT,      /* other verification failure (purpose, signature...) */
  MD_TLS_ERR_PEER_REFUSED,  /* "peer refused our certificate: ..." (alert received) */
  MD_TLS_ERR_NAME_MISMATCH, /* "name mismatch: expected X, got Y" */
  MD_TLS_ERR_PIN_MISMATCH,  /* "SPKI pin mismatch: expected X, got Y" */
  MD_TLS_ERR_PROTOCOL,      /* "TLS protocol error: ..." */
  MD_TLS_ERR_TIMEOUT,       /* "TLS handshake timed out" */
  MD_TLS_ERR_IO,            /* socket error or connection closed by the peer */
};

typedef struct md_tls_callbacks {
  /* Once, when the handshake ends. status 0: verified, the peer identity is
   * available. status < 0: failed (md_tls_last_error says why); the
   * connection is already closing and on_close follows. Not called when the
   * application closes the connection before the handshake ends. */
  void (*on_handshake)(md_tls_conn *c, int status);
  /* Decrypted application bytes; data is valid only during the call. */
  void (*on_read)(md_tls_conn *c, const uint8_t *data, size_t len);
  /* Exactly once, after the stream is closed; the last callback.
   * status 0: closed on purpose (md_tls_conn_close/abort, or the peer's
   * close_notify); < 0: negative errno of the first failure:
   * -EACCES certificate refused (ours or theirs), -EPERM name/pin mismatch,
   * -EPROTO TLS protocol error, -ETIMEDOUT handshake timeout,
   * -ECONNRESET peer closed without close_notify, other: socket error. */
  void (*on_close)(md_tls_conn *c, int status);
} md_tls_callbacks;

/* Default limits (milliseconds); see the setters below. */
#define MD_TLS_HANDSHAKE_TIMEOUT_MS 10000
#define MD_TLS_LINGER_MS 2000

/* Base64 SHA-256 of a DER SubjectPublicKeyInfo: 44 characters + NUL. */
#define MD_TLS_PIN_LEN 64

/* ---- contexts (one per program and role; shareable by many connections) */

/* Load certificate chain, private key and CA bundle; TLS 1.3 only; peer
 * verification always on (a server fails a client without a certificate).
 * cert_file/key_file may both be NULL only for tests of that refusal.
 * Errors: negative errno, and err names the file and the problem. */
int md_tls_ctx_new(enum md_tls_role role, const char *cert_file, const char *key_file,
                   const char *ca_file, md_tls_ctx **out, char *err, size_t errlen);
/* Safe while connections made from ctx still exist (they hold a reference). */
void md_tls_ctx_free(md_tls_ctx *ctx);

/* ---- connections */

/* Bind a TLS endpoint to a connected stream (uv_tcp_t after uv_accept or the
 * connect callback). The connection takes over stream->data and will
 * uv_close the stream; the caller keeps the stream's memory valid until
 * on_close. On failure nothing is taken over. 0, -ENOMEM or -EPROTO. */
int md_tls_conn_new(md_tls_ctx *ctx, uv_stream_t *stream, const md_tls_callbacks *cb, void *user,
                    md_tls_conn **out);
/* Before md_tls_conn_start: the handshake then also fails unless the peer's
 * CN or a DNS SAN equals name (ASCII case-insensitive; NULL: any name) and,
 * when pin_sha256 is not NULL/empty, its SPKI hash equals pin_sha256.
 * 0 or -EINVAL (already started, name too long). */
int md_tls_conn_expect_peer(md_tls_conn *c, const char *name, const char *pin_sha256);
/* 0 disables a timer. Defaults MD_TLS_HANDSHAKE_TIMEOUT_MS and MD_TLS_LINGER_MS
 * (how long a closing connection waits for the peer to close its side). */
void md_tls_conn_set_timeouts(md_tls_conn *c, unsigned handshake_ms, unsigned linger_ms);
/* Start reading and (client) send the ClientHello. 0, or a negative errno:
 * then on_handshake is not called, the connection is closing and on_close
 * follows (from the loop, as always). */
int md_tls_conn_start(md_tls_conn *c);
/* Queue application bytes (copied). Before the handshake ends they wait;
 * afterwards they are encrypted and uv_write'n at once. 0, -EPIPE when the
 * connection is closing, -ENOMEM. */
int md_tls_conn_write(md_tls_conn *c, const void *data, size_t len);
/* Bytes accepted by md_tls_conn_write but not yet handed to the kernel
 * (plaintext waiting plus ciphertext in uv write requests): for back-pressure. */
size_t md_tls_conn_pending(const md_tls_conn *c);
/* Graceful close: flush, send close_notify, shut down the write side, wait
 * (at most the linger time) for the peer to close, uv_close. Idempotent. */
void md_tls_conn_close(md_tls_conn *c);
/* Forced close: uv_close now; queued data is dropped. Idempotent. */
void md_tls_conn_abort(md_tls_conn *c);
/* Only after on_close (or after md_tls_conn_new, before start). Does not
 * free the stream. NULL is fine. */
void md_tls_conn_free(md_tls_conn *c);

void *md_tls_conn_user(const md_tls_conn *c);
uv_stream_t *md_tls_conn_stream(const md_tls_conn *c);

/* ---- the verified peer (after on_handshake(c, 0); NULL/0 before) */

/* Certificate name: the subject CN. */
const char *md_tls_peer_name(const md_tls_conn *c);
size_t md_tls_peer_san_count(const md_tls_conn *c);
/* The i-th DNS subjectAltName, or NULL. */
const char *md_tls_peer_san(const md_tls_conn *c, size_t i);
/* The peer's pin (same form as pin_sha256 in the config). 0 or -ENOTCONN. */
int md_tls_peer_spki_sha256_b64(const md_tls_conn *c, char out[MD_TLS_PIN_LEN]);
/* 0 when the peer's CN or a DNS SAN equals expected (ASCII case-insensitive);
 * otherwise -EPERM and the connection's last error becomes
 * "name mismatch: expected X, got Y" (the connection stays open). */
int md_tls_check_peer_name(md_tls_conn *c, const char *expected);

/* ---- errors */

/* The first failure of the connection as a sentence; "" when none. */
const char *md_tls_last_error(const md_tls_conn *c);
enum md_tls_err md_tls_last_error_kind(const md_tls_conn *c);
/* Stable short code for reports and logs: "tls_unknown_ca", "tls_expired"... */
const char *md_tls_err_code(enum md_tls_err kind);

/* ---- helpers */

/* The pin of the public key in a PEM certificate file, for configuring
 * pin_sha256 (for instance printed by `mtrctl pki`). 0 or negative errno with err set. */
int md_tls_cert_spki_sha256_b64(const char *cert_file, char out[MD_TLS_PIN_LEN], char *err,
                                size_t errlen);

#endif
