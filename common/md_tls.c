/* TLS 1.3 over libuv with memory BIOs.
 *
 * Data path: uv read -> BIO_write(rbio) -> SSL_do_handshake/SSL_read ->
 * on_read; md_tls_conn_write -> plaintext queue -> SSL_write -> wbio ->
 * uv_write. Every SSL call is preceded by ERR_clear_error() and followed by
 * md__drain() (alerts, handshake flights, key updates and close_notify all
 * come out of the write BIO, also after a call that succeeded or failed).
 *
 * Closing: uv_shutdown (after the queued writes) then wait, at most the
 * linger time, for the peer's EOF before uv_close, so that our last flight
 * (an alert, a close_notify) is read by the peer instead of being destroyed
 * by an RST. on_close runs from the last handle close callback only, never
 * from inside a call made by the application.
 */
#include "md_tls.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MD__NAME_MAX 256
#define MD__ERR_MAX 512

struct md_tls_ctx {
  SSL_CTX *ssl_ctx;
  enum md_tls_role role;
};

/* One uv_write of ciphertext; owns its bytes. */
struct md__tls_wreq {
  uv_write_t req;
  size_t len;
  char data[];
};

struct md_tls_conn {
  SSL *ssl;
  BIO *rbio; /* network -> OpenSSL */
  BIO *wbio; /* OpenSSL -> network */
  uv_stream_t *stream;
  uv_timer_t timer; /* handshake timeout, then linger */
  uv_shutdown_t shut_req;
  md_tls_callbacks cb;
  void *user;
  enum md_tls_role role;
  unsigned hs_timeout_ms;
  unsigned linger_ms;

  bool started;
  bool timer_inited;
  bool hs_done;     /* verified, expectations met, on_handshake(0) called */
  bool hs_reported; /* on_handshake called */
  bool fatal;       /* no more SSL calls */
  bool closing;     /* no more application I/O */
  bool shut_sent;   /* uv_shutdown queued: no more uv_write */
  bool shut_done;
  bool eof; /* nothing more will be read */
  bool handles_closing;
  bool closed; /* on_close called */
  int open_handles;

  /* Application bytes not yet accepted by SSL_write. */
  uint8_t *plain;
  size_t plain_off, plain_len, plain_cap;
  size_t wq_bytes; /* ciphertext in uv write requests */

  bool want_name_set;
  char want_name[MD__NAME_MAX];
  char want_pin[MD_TLS_PIN_LEN];

  char peer_cn[MD__NAME_MAX];
  char **sans;
  size_t n_sans;

  /* First verification failure, recorded by md__verify_cb. */
  int vfy_err;
  char vfy_subject[MD__NAME_MAX];
  char vfy_issuer[MD__NAME_MAX];

  enum md_tls_err err_kind;
  int err_status;
  char err_msg[MD__ERR_MAX];

  uint8_t rbuf[64 * 1024]; /* uv reads land here, then go to rbio */
  uint8_t pbuf[16 * 1024]; /* SSL_read output (one record) */
};

static void md__drain(md_tls_conn *c);
static void md__begin_close(md_tls_conn *c);
static void md__flush_plain(md_tls_conn *c);
static void md__fail(md_tls_conn *c);

/* ---- errors */

/* Printf into a caller's error buffer, which may be NULL. */
static void md__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void md__errf(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The oldest OpenSSL error as a short reason, emptying the queue: the
 * oldest entry is the cause, later ones are the callers giving up. */
static const char *md__ossl_reason(char *buf, size_t len) {
  unsigned long first = ERR_get_error(), e;
  while ((e = ERR_get_error()) != 0) {
  }
  if (!first) {
    snprintf(buf, len, "unknown error");
    return buf;
  }
  const char *r = ERR_reason_error_string(first);
  if (r)
    snprintf(buf, len, "%s", r);
  else
    ERR_error_string_n(first, buf, len);
  return buf;
}

/* Keep the first failure only: later ones are consequences of it. */
static void md__set_error(md_tls_conn *c, enum md_tls_err kind, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void md__set_error(md_tls_conn *c, enum md_tls_err kind, int status, const char *fmt, ...) {
  if (c->err_kind != MD_TLS_OK)
    return;
  c->err_kind = kind;
  c->err_status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
  va_end(ap);
}

/* The sentence for a certificate alert the peer sent us; NULL when the
 * alert is not about our certificate. */
static const char *md__cert_alert_text(int alert) {
  switch (alert) {
  case SSL_AD_UNKNOWN_CA:
    return "certificate not trusted (unknown CA)";
  case SSL_AD_CERTIFICATE_EXPIRED:
    return "certificate expired";
  case SSL_AD_CERTIFICATE_REQUIRED:
    return "certificate required (we sent none)";
  case SSL_AD_BAD_CERTIFICATE:
    return "bad certificate";
  case SSL_AD_UNSUPPORTED_CERTIFICATE:
    return "unsupported certificate (wrong key usage or purpose?)";
  case SSL_AD_CERTIFICATE_REVOKED:
    return "certificate revoked";
  case SSL_AD_CERTIFICATE_UNKNOWN:
    return "certificate unknown";
  default:
    return NULL;
  }
}

/* Turn a local verification failure into one of the documented sentences. */
static void md__verify_failure(md_tls_conn *c) {
  const char *who = c->vfy_subject[0] ? c->vfy_subject : "(no subject)";
  const char *by = c->vfy_issuer[0] ? c->vfy_issuer : "(no issuer)";
  switch (c->vfy_err) {
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_CERT_UNTRUSTED:
    md__set_error(c, MD_TLS_ERR_UNKNOWN_CA, -EACCES,
                  "certificate not trusted (unknown CA): %s issued by %s", who, by);
    break;
  case X509_V_ERR_CERT_HAS_EXPIRED:
    md__set_error(c, MD_TLS_ERR_EXPIRED, -EACCES, "certificate expired: %s", who);
    break;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    md__set_error(c, MD_TLS_ERR_NOT_YET_VALID, -EACCES,
                  "certificate not yet valid: %s (check the clocks)", who);
    break;
  default:
    md__set_error(c, MD_TLS_ERR_BAD_CERT, -EACCES, "certificate rejected: %s: %s",
                  X509_verify_cert_error_string(c->vfy_err), who);
    break;
  }
}

/* Record why an SSL call failed, from the verify result or the error queue.
 * Must run right after SSL_get_error, before anything else touches the queue. */
static void md__ssl_failure(md_tls_conn *c, int ssl_err) {
  if (c->vfy_err != X509_V_OK) {
    ERR_clear_error();
    md__verify_failure(c);
    return;
  }
  unsigned long e, first = 0, ssl_e = 0;
  while ((e = ERR_get_error()) != 0) {
    if (!first)
      first = e;
    if (!ssl_e && !ERR_SYSTEM_ERROR(e) && ERR_GET_LIB(e) == ERR_LIB_SSL)
      ssl_e = e;
  }
  unsigned long pick = ssl_e ? ssl_e : first;
  if (!pick) {
    md__set_error(c, MD_TLS_ERR_PROTOCOL, -EPROTO, "TLS protocol error: %s",
                  ssl_err == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "internal error");
    return;
  }
  if (ERR_SYSTEM_ERROR(pick)) {
    md__set_error(c, MD_TLS_ERR_PROTOCOL, -EPROTO, "TLS protocol error: %s",
                  strerror(ERR_GET_REASON(pick)));
    return;
  }
  int reason = ERR_GET_REASON(pick);
  if (ERR_GET_LIB(pick) == ERR_LIB_SSL) {
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      md__set_error(c, MD_TLS_ERR_NO_PEER_CERT, -EACCES, "peer sent no certificate");
      return;
    }
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
      int alert = reason - SSL_AD_REASON_OFFSET;
      const char *t = md__cert_alert_text(alert);
      if (t)
        md__set_error(c, MD_TLS_ERR_PEER_REFUSED, -EACCES, "peer refused our certificate: %s", t);
      else
        md__set_error(c, MD_TLS_ERR_PROTOCOL, -EPROTO, "TLS protocol error: peer sent alert \"%s\"",
                      SSL_alert_desc_string_long(alert));
      return;
    }
  }
  const char *r = ERR_reason_error_string(pick);
  char hex[32];
  if (!r) {
    snprintf(hex, sizeof(hex), "error %08lX", pick);
    r = hex;
  }
  md__set_error(c, MD_TLS_ERR_PROTOCOL, -EPROTO, "TLS protocol error: %s", r);
}

/* "O=mtrdiag, CN=mtrdiag CA 1a2b3c4d": a name as an operator reads it. */
static void md__name_text(const X509_NAME *n, char *buf, size_t len) {
  buf[0] = '\0';
  BIO *b = BIO_new(BIO_s_mem());
  if (!b)
    return;
  if (X509_NAME_print_ex(b, n, 0, XN_FLAG_SEP_CPLUS_SPC | ASN1_STRFLGS_RFC2253) >= 0) {
    int got = BIO_read(b, buf, (int)len - 1);
    buf[got > 0 ? got : 0] = '\0';
  }
  BIO_free(b);
}

/* Where OpenSSL tells us which certificate failed and why; remembered so the
 * failure can be told apart from the (generic) handshake error. */
static int md__verify_cb(int ok, X509_STORE_CTX *xs) {
  if (ok)
    return 1;
  SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
  md_tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
  if (c && c->vfy_err == X509_V_OK) {
    c->vfy_err = X509_STORE_CTX_get_error(xs);
    if (c->vfy_err == X509_V_OK)
      c->vfy_err = X509_V_ERR_UNSPECIFIED;
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    if (cert) {
      md__name_text(X509_get_subject_name(cert), c->vfy_subject, sizeof(c->vfy_subject));
      md__name_text(X509_get_issuer_name(cert), c->vfy_issuer, sizeof(c->vfy_issuer));
    }
  }
  return 0;
}

/* ---- closing */

/* Last step: both handles closed, tell the application. */
static void md__on_handle_closed(uv_handle_t *h) {
  md_tls_conn *c = h->data;
  if (--c->open_handles > 0)
    return;
  c->closed = true;
  if (c->cb.on_close)
    c->cb.on_close(c, c->err_status); /* c may be freed now */
}

/* Close the stream and the timer; on_close follows from the loop. */
static void md__close_handles(md_tls_conn *c) {
  if (c->handles_closing)
    return;
  c->handles_closing = true;
  c->closing = true;
  c->open_handles = 1;
  if (c->started)
    uv_read_stop(c->stream);
  if (c->timer_inited) {
    c->open_handles++;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, md__on_handle_closed);
  }
  uv_close((uv_handle_t *)c->stream, md__on_handle_closed);
}

/* Close once our last flight is out and the peer has closed (or lingered too long). */
static void md__maybe_finish(md_tls_conn *c) {
  if (c->closing && c->shut_done && (c->eof || !c->linger_ms || !c->timer_inited))
    md__close_handles(c);
}

/* The write side is shut down: all queued ciphertext has been written. */
static void md__on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  md_tls_conn *c = req->data;
  c->shut_done = true;
  md__maybe_finish(c);
}

/* Handshake timeout before the handshake, linger limit while closing. */
static void md__on_timer(uv_timer_t *t) {
  md_tls_conn *c = t->data;
  if (c->closing) {
    md__close_handles(c);
    return;
  }
  if (!c->hs_done) {
    md__set_error(c, MD_TLS_ERR_TIMEOUT, -ETIMEDOUT, "TLS handshake timed out after %u ms",
                  c->hs_timeout_ms);
    md__fail(c);
  }
}

/* Stop application I/O; shut down the write side after what is queued. */
static void md__begin_close(md_tls_conn *c) {
  if (c->closing)
    return;
  c->closing = true;
  if (!c->started) {
    md__close_handles(c);
    return;
  }
  if (c->timer_inited)
    uv_timer_stop(&c->timer);
  c->shut_req.data = c;
  if (uv_shutdown(&c->shut_req, c->stream, md__on_shutdown) == 0)
    c->shut_sent = true;
  else
    c->shut_done = true;
  if (c->timer_inited && c->linger_ms)
    uv_timer_start(&c->timer, md__on_timer, c->linger_ms, 0);
  md__maybe_finish(c);
}

/* After an error has been recorded: report a failed handshake, then close. */
static void md__fail(md_tls_conn *c) {
  bool report = !c->hs_done && !c->hs_reported && !c->closing;
  c->fatal = true;
  if (report)
    c->hs_reported = true;
  md__begin_close(c);
  if (report && c->cb.on_handshake)
    c->cb.on_handshake(c, c->err_status);
}

/* ---- I/O */

/* The ciphertext of one uv_write has gone to the kernel (or failed). */
static void md__on_write(uv_write_t *req, int status) {
  struct md__tls_wreq *w = (struct md__tls_wreq *)req;
  md_tls_conn *c = req->data;
  c->wq_bytes -= w->len;
  free(w);
  if (status < 0 && status != UV_ECANCELED && !c->closing) {
    md__set_error(c, MD_TLS_ERR_IO, status, "write failed: %s", uv_strerror(status));
    md__fail(c);
  }
}

/* Move everything OpenSSL produced into uv_write requests. */
static void md__drain(md_tls_conn *c) {
  size_t pending;
  while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
    if (c->shut_sent || c->handles_closing) {
      (void)BIO_reset(c->wbio); /* too late to send anything */
      return;
    }
    size_t n = pending > (1u << 30) ? (1u << 30) : pending;
    struct md__tls_wreq *w = malloc(sizeof(*w) + n);
    if (!w) {
      (void)BIO_reset(c->wbio);
      md__set_error(c, MD_TLS_ERR_IO, -ENOMEM, "out of memory");
      md__fail(c);
      return;
    }
    int got = BIO_read(c->wbio, w->data, (int)n);
    if (got <= 0) {
      free(w);
      return;
    }
    w->len = (size_t)got;
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int r = uv_write(&w->req, c->stream, &b, 1, md__on_write);
    if (r < 0) {
      free(w);
      md__set_error(c, MD_TLS_ERR_IO, r, "write failed: %s", uv_strerror(r));
      md__fail(c);
      return;
    }
    c->wq_bytes += w->len;
  }
}

/* Case-insensitive equality with the CN or any DNS SAN. */
static bool md__peer_has_name(const md_tls_conn *c, const char *name) {
  if (c->peer_cn[0] && strcasecmp(c->peer_cn, name) == 0)
    return true;
  for (size_t i = 0; i < c->n_sans; i++)
    if (strcasecmp(c->sans[i], name) == 0)
      return true;
  return false;
}

/* Copy an ASN1 string that must be text without NUL bytes. */
static char *md__asn1_dup(const ASN1_STRING *s) {
  const unsigned char *d = ASN1_STRING_get0_data(s);
  int len = ASN1_STRING_length(s);
  if (!d || len <= 0 || memchr(d, 0, (size_t)len))
    return NULL;
  char *out = malloc((size_t)len + 1);
  if (out) {
    memcpy(out, d, (size_t)len);
    out[len] = '\0';
  }
  return out;
}

/* Remember the verified peer's CN and DNS SANs. */
static int md__collect_peer(md_tls_conn *c, X509 *peer) {
  X509_NAME *subj = X509_get_subject_name(peer);
  int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
  if (idx >= 0) {
    unsigned char *utf8 = NULL;
    ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    int len = ASN1_STRING_to_UTF8(&utf8, d);
    if (len > 0 && (size_t)len < sizeof(c->peer_cn) && !memchr(utf8, 0, (size_t)len)) {
      memcpy(c->peer_cn, utf8, (size_t)len);
      c->peer_cn[len] = '\0';
    }
    OPENSSL_free(utf8);
  }
  GENERAL_NAMES *gens = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
  if (!gens)
    return 0;
  int n = sk_GENERAL_NAME_num(gens);
  c->sans = n > 0 ? calloc((size_t)n, sizeof(char *)) : NULL;
  for (int i = 0; c->sans && i < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (g->type != GEN_DNS)
      continue;
    char *s = md__asn1_dup(g->d.dNSName);
    if (s)
      c->sans[c->n_sans++] = s;
  }
  GENERAL_NAMES_free(gens);
  return 0;
}

/* The pin of a certificate's public key: base64(SHA-256(DER SPKI)). */
static int md__spki_pin(X509 *x, char out[MD_TLS_PIN_LEN]) {
  unsigned char *der = NULL;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  if (len <= 0)
    return -EINVAL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
  OPENSSL_free(der);
  if (!ok || mdlen != 32)
    return -EINVAL;
  EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
  return 0;
}

/* "got" part of a name mismatch: the CN, plus DNS SANs that differ from it. */
static void md__describe_peer(const md_tls_conn *c, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, "%s", c->peer_cn[0] ? c->peer_cn : "(no CN)");
  bool first = true;
  for (size_t i = 0; i < c->n_sans && o < len; i++) {
    if (strcasecmp(c->sans[i], c->peer_cn) == 0)
      continue;
    o += (size_t)snprintf(buf + o, len - o, "%s%s", first ? " (DNS: " : ", ", c->sans[i]);
    first = false;
  }
  if (!first && o < len)
    snprintf(buf + o, len - o, ")");
}

/* OpenSSL finished the handshake: check what the application asked for,
 * then tell it. Returns 0 or the failure status. */
static int md__handshake_done(md_tls_conn *c) {
  X509 *peer = SSL_get0_peer_certificate(c->ssl);
  if (!peer) {
    md__set_error(c, MD_TLS_ERR_NO_PEER_CERT, -EACCES, "peer sent no certificate");
  } else {
    md__collect_peer(c, peer);
    if (c->want_name_set && !md__peer_has_name(c, c->want_name)) {
      char got[MD__ERR_MAX / 2];
      md__describe_peer(c, got, sizeof(got));
      md__set_error(c, MD_TLS_ERR_NAME_MISMATCH, -EPERM, "name mismatch: expected %s, got %s",
                    c->want_name, got);
    } else if (c->want_pin[0]) {
      char pin[MD_TLS_PIN_LEN] = "";
      if (md__spki_pin(peer, pin) != 0 || strcmp(pin, c->want_pin) != 0)
        md__set_error(c, MD_TLS_ERR_PIN_MISMATCH, -EPERM, "SPKI pin mismatch: expected %s, got %s",
                      c->want_pin, pin);
    }
  }
  if (c->err_kind != MD_TLS_OK) {
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl); /* close_notify: the peer did nothing wrong in TLS terms */
    md__drain(c);
    md__fail(c);
    return c->err_status;
  }
  if (c->timer_inited)
    uv_timer_stop(&c->timer);
  c->hs_done = true;
  c->hs_reported = true;
  if (c->cb.on_handshake)
    c->cb.on_handshake(c, 0);
  if (!c->closing)
    md__flush_plain(c);
  return c->closing && c->err_status ? c->err_status : 0;
}

/* Advance the handshake with whatever is in rbio. */
static int md__handshake_step(md_tls_conn *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
  bool want = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
  if (r != 1 && !want)
    md__ssl_failure(c, e);
  md__drain(c);
  if (c->closing)
    return c->err_status ? c->err_status : -EPIPE;
  if (r == 1)
    return md__handshake_done(c);
  if (want)
    return 0;
  md__fail(c);
  return c->err_status;
}

/* Encrypt queued application bytes as far as OpenSSL will take them. */
static void md__flush_plain(md_tls_conn *c) {
  while (!c->closing && !c->fatal && c->hs_done && c->plain_off < c->plain_len) {
    size_t left = c->plain_len - c->plain_off;
    int chunk = left > INT_MAX ? INT_MAX : (int)left;
    ERR_clear_error();
    int n = SSL_write(c->ssl, c->plain + c->plain_off, chunk);
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    bool want = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    if (n <= 0 && !want)
      md__ssl_failure(c, e);
    md__drain(c);
    if (n > 0) {
      c->plain_off += (size_t)n;
      continue;
    }
    if (!want)
      md__fail(c);
    return; /* WANT_READ: retried after the next read */
  }
  if (c->plain_off == c->plain_len) {
    c->plain_off = c->plain_len = 0;
    if (c->plain_cap > 64 * 1024) { /* do not keep a big burst's buffer */
      free(c->plain);
      c->plain = NULL;
      c->plain_cap = 0;
    }
  }
}

/* Decrypt and deliver everything rbio holds. */
static void md__read_records(md_tls_conn *c) {
  while (!c->closing) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, c->pbuf, (int)sizeof(c->pbuf));
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    bool want = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    if (n <= 0 && !want && e != SSL_ERROR_ZERO_RETURN)
      md__ssl_failure(c, e);
    md__drain(c);
    if (n > 0) {
      if (c->cb.on_read)
        c->cb.on_read(c, c->pbuf, (size_t)n);
      continue;
    }
    if (want)
      return;
    if (e == SSL_ERROR_ZERO_RETURN) { /* the peer's close_notify: answer and close */
      md__flush_plain(c);
      if (c->closing)
        return;
      ERR_clear_error();
      (void)SSL_shutdown(c->ssl);
      md__drain(c);
      md__begin_close(c);
      return;
    }
    md__fail(c);
    return;
  }
}

/* Hand libuv our read buffer; its bytes are copied into rbio at once. */
static void md__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  md_tls_conn *c = h->data;
  *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

/* Ciphertext from the peer (or EOF/error). */
static void md__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  md_tls_conn *c = s->data;
  if (nread < 0) {
    c->eof = true;
    uv_read_stop(s);
    if (c->closing) {
      md__maybe_finish(c);
      return;
    }
    if (nread != UV_EOF)
      md__set_error(c, MD_TLS_ERR_IO, (int)nread, "read failed: %s", uv_strerror((int)nread));
    else if (!c->hs_done)
      md__set_error(c, MD_TLS_ERR_IO, -ECONNRESET,
                    "connection closed by peer during TLS handshake");
    else
      md__set_error(c, MD_TLS_ERR_IO, -ECONNRESET,
                    "connection closed by peer without close_notify");
    md__fail(c);
    return;
  }
  if (nread == 0 || c->closing)
    return; /* closing: the peer's last bytes do not matter any more */
  if (BIO_write(c->rbio, c->rbuf, (int)nread) != (int)nread) {
    md__set_error(c, MD_TLS_ERR_IO, -ENOMEM, "out of memory");
    md__fail(c);
    return;
  }
  if (!c->hs_done && (md__handshake_step(c) != 0 || !c->hs_done))
    return;
  md__read_records(c);
  if (!c->closing)
    md__flush_plain(c); /* an SSL_write that wanted a read may go on now */
}

/* ---- contexts */

/* Never prompt on a terminal for an encrypted key: fail instead. */
static int md__no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* Give a precise errno message for a file that cannot even be opened. */
static int md__check_readable(const char *what, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    md__errf(err, errlen, "%s %s: %s", what, path, strerror(e));
    return -e;
  }
  fclose(f);
  return 0;
}

/* Build an SSL_CTX for one role: TLS 1.3 only, peer certificate required. */
int md_tls_ctx_new(enum md_tls_role role, const char *cert_file, const char *key_file,
                   const char *ca_file, md_tls_ctx **out, char *err, size_t errlen) {
  char why[256];
  int r;
  *out = NULL;
  if (!ca_file || !*ca_file) {
    md__errf(err, errlen, "no CA file configured (tls: ca)");
    return -EINVAL;
  }
  if (!cert_file != !key_file || (role == MD_TLS_SERVER && !cert_file)) {
    md__errf(err, errlen, "both a certificate and a key are needed (tls: cert, key)");
    return -EINVAL;
  }
  if (cert_file && ((r = md__check_readable("certificate", cert_file, err, errlen)) != 0 ||
                    (r = md__check_readable("key", key_file, err, errlen)) != 0))
    return r;
  if ((r = md__check_readable("CA file", ca_file, err, errlen)) != 0)
    return r;

  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(role == MD_TLS_SERVER ? TLS_server_method() : TLS_client_method());
  if (!ctx) {
    md__errf(err, errlen, "cannot create TLS context: %s", md__ossl_reason(why, sizeof(why)));
    return -ENOMEM;
  }
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
    md__errf(err, errlen, "TLS 1.3 not available: %s", md__ossl_reason(why, sizeof(why)));
    r = -ENOTSUP;
    goto fail;
  }
  SSL_CTX_set_default_passwd_cb(ctx, md__no_password);
  if (cert_file) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
      md__errf(err, errlen, "certificate %s: cannot load: %s", cert_file,
               md__ossl_reason(why, sizeof(why)));
      r = -EINVAL;
      goto fail;
    }
    /* Read the key ourselves so "cannot load" and "does not match" differ. */
    EVP_PKEY *pkey = NULL;
    FILE *kf = fopen(key_file, "r");
    if (kf) {
      pkey = PEM_read_PrivateKey(kf, NULL, md__no_password, NULL);
      fclose(kf);
    }
    if (!pkey) {
      md__errf(err, errlen, "key %s: cannot load (PEM private key, not encrypted): %s", key_file,
               md__ossl_reason(why, sizeof(why)));
      r = -EINVAL;
      goto fail;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pkey);
    if (!ok) {
      ERR_clear_error();
      md__errf(err, errlen, "key %s does not match certificate %s", key_file, cert_file);
      r = -EINVAL;
      goto fail;
    }
  }
  if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    md__errf(err, errlen, "CA file %s: cannot load: %s", ca_file,
             md__ossl_reason(why, sizeof(why)));
    r = -EINVAL;
    goto fail;
  }
  if (role == MD_TLS_SERVER) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names)
      SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, md__verify_cb);
    SSL_CTX_set_num_tickets(ctx, 0); /* no resumption: every connection proves its identity */
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, md__verify_cb);
  }
  SSL_CTX_set_verify_depth(ctx, 4);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* No partial writes: a memory BIO never blocks, so one SSL_write takes a
   * whole application write and one uv_write carries it. The queue may be
   * realloc'd between a WANT_* and its retry, hence the moving buffer. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  md_tls_ctx *t = calloc(1, sizeof(*t));
  if (!t) {
    md__errf(err, errlen, "out of memory");
    r = -ENOMEM;
    goto fail;
  }
  t->ssl_ctx = ctx;
  t->role = role;
  *out = t;
  return 0;
fail:
  SSL_CTX_free(ctx);
  return r;
}

/* Drop our reference; live connections keep the SSL_CTX alive. */
void md_tls_ctx_free(md_tls_ctx *ctx) {
  if (!ctx)
    return;
  SSL_CTX_free(ctx->ssl_ctx);
  free(ctx);
}

/* ---- connections */

/* An SSL object on two memory BIOs, bound to the application's stream. */
int md_tls_conn_new(md_tls_ctx *ctx, uv_stream_t *stream, const md_tls_callbacks *cb, void *user,
                    md_tls_conn **out) {
  *out = NULL;
  md_tls_conn *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  ERR_clear_error();
  c->ssl = SSL_new(ctx->ssl_ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->rbio || !c->wbio) {
    ERR_clear_error();
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    SSL_free(c->ssl);
    free(c);
    return -ENOMEM;
  }
  BIO_set_mem_eof_return(c->rbio, -1); /* empty means "want more", not EOF */
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_app_data(c->ssl, c);
  c->role = ctx->role;
  if (c->role == MD_TLS_SERVER)
    SSL_set_accept_state(c->ssl);
  else
    SSL_set_connect_state(c->ssl);
  c->vfy_err = X509_V_OK;
  c->stream = stream;
  c->user = user;
  if (cb)
    c->cb = *cb;
  c->hs_timeout_ms = MD_TLS_HANDSHAKE_TIMEOUT_MS;
  c->linger_ms = MD_TLS_LINGER_MS;
  stream->data = c;
  *out = c;
  return 0;
}

/* Let the connection itself refuse a peer with the wrong name or key. */
int md_tls_conn_expect_peer(md_tls_conn *c, const char *name, const char *pin_sha256) {
  if (c->started)
    return -EINVAL;
  if (name && strlen(name) >= sizeof(c->want_name))
    return -EINVAL;
  if (pin_sha256 && strlen(pin_sha256) >= sizeof(c->want_pin))
    return -EINVAL;
  c->want_name_set = name != NULL;
  snprintf(c->want_name, sizeof(c->want_name), "%s", name ? name : "");
  snprintf(c->want_pin, sizeof(c->want_pin), "%s", pin_sha256 ? pin_sha256 : "");
  return 0;
}

/* Tune the two timers (tests use short ones). */
void md_tls_conn_set_timeouts(md_tls_conn *c, unsigned handshake_ms, unsigned linger_ms) {
  c->hs_timeout_ms = handshake_ms;
  c->linger_ms = linger_ms;
}

/* Begin reading and, as a client, send the first flight. */
int md_tls_conn_start(md_tls_conn *c) {
  if (c->started || c->closing)
    return -EINVAL;
  c->started = true;
  c->hs_reported = true; /* a failure here is returned, not also called back */
  int r = uv_timer_init(c->stream->loop, &c->timer);
  if (r == 0) {
    c->timer_inited = true;
    c->timer.data = c;
    r = uv_read_start(c->stream, md__on_alloc, md__on_read);
  }
  if (r < 0) {
    md__set_error(c, MD_TLS_ERR_IO, r, "cannot read from the connection: %s", uv_strerror(r));
    md__fail(c);
    return r;
  }
  if (c->hs_timeout_ms)
    uv_timer_start(&c->timer, md__on_timer, c->hs_timeout_ms, 0);
  r = md__handshake_step(c); /* cannot complete yet: the peer has sent nothing */
  if (r == 0 && !c->closing)
    c->hs_reported = false;
  return r;
}

/* Copy application bytes into the queue and push what TLS allows. */
int md_tls_conn_write(md_tls_conn *c, const void *data, size_t len) {
  if (c->closing || c->fatal)
    return -EPIPE;
  if (len == 0)
    return 0;
  if (c->plain_off > 0 && c->plain_off == c->plain_len)
    c->plain_off = c->plain_len = 0;
  if (len > SIZE_MAX - c->plain_len)
    return -ENOMEM;
  size_t need = c->plain_len + len;
  if (need > c->plain_cap) {
    size_t cap = c->plain_cap ? c->plain_cap : 4096;
    while (cap < need)
      cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(c->plain, cap);
    if (!p)
      return -ENOMEM;
    c->plain = p;
    c->plain_cap = cap;
  }
  memcpy(c->plain + c->plain_len, data, len);
  c->plain_len += len;
  if (c->hs_done)
    md__flush_plain(c);
  return c->fatal && c->err_status ? c->err_status : 0;
}

/* Back-pressure signal for producers. */
size_t md_tls_conn_pending(const md_tls_conn *c) {
  return (c->plain_len - c->plain_off) + c->wq_bytes;
}

/* close_notify after the queued data, then the orderly TCP close. */
void md_tls_conn_close(md_tls_conn *c) {
  if (c->closing)
    return;
  if (c->started && c->hs_done && !c->fatal) {
    md__flush_plain(c);
    if (c->closing)
      return;
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl);
    md__drain(c);
  }
  md__begin_close(c);
}

/* Drop everything and close now. */
void md_tls_conn_abort(md_tls_conn *c) {
  c->closing = true;
  md__close_handles(c);
}

/* Release memory; the handles must be closed (on_close has run). */
void md_tls_conn_free(md_tls_conn *c) {
  if (!c)
    return;
  assert(!c->handles_closing || c->closed);
  SSL_free(c->ssl); /* frees both BIOs */
  for (size_t i = 0; i < c->n_sans; i++)
    free(c->sans[i]);
  free(c->sans);
  free(c->plain);
  free(c);
}

void *md_tls_conn_user(const md_tls_conn *c) {
  return c->user;
}

uv_stream_t *md_tls_conn_stream(const md_tls_conn *c) {
  return c->stream;
}

/* ---- peer identity */

const char *md_tls_peer_name(const md_tls_conn *c) {
  return c->hs_done && c->peer_cn[0] ? c->peer_cn : NULL;
}

size_t md_tls_peer_san_count(const md_tls_conn *c) {
  return c->hs_done ? c->n_sans : 0;
}

const char *md_tls_peer_san(const md_tls_conn *c, size_t i) {
  return c->hs_done && i < c->n_sans ? c->sans[i] : NULL;
}

/* The verified peer's pin, to compare with pin_sha256 or to log it. */
int md_tls_peer_spki_sha256_b64(const md_tls_conn *c, char out[MD_TLS_PIN_LEN]) {
  out[0] = '\0';
  X509 *peer = c->hs_done ? SSL_get0_peer_certificate(c->ssl) : NULL;
  if (!peer)
    return -ENOTCONN;
  return md__spki_pin(peer, out);
}

/* For callers that check names themselves (allowed_controllers, tls_name). */
int md_tls_check_peer_name(md_tls_conn *c, const char *expected) {
  if (!c->hs_done)
    return -ENOTCONN;
  if (expected && md__peer_has_name(c, expected))
    return 0;
  char got[MD__ERR_MAX / 2];
  md__describe_peer(c, got, sizeof(got));
  md__set_error(c, MD_TLS_ERR_NAME_MISMATCH, -EPERM, "name mismatch: expected %s, got %s",
                expected ? expected : "(none)", got);
  return -EPERM;
}

/* ---- errors */

const char *md_tls_last_error(const md_tls_conn *c) {
  return c->err_msg;
}

enum md_tls_err md_tls_last_error_kind(const md_tls_conn *c) {
  return c->err_kind;
}

/* Codes for machine-readable reports (the "code" of report errors). */
const char *md_tls_err_code(enum md_tls_err kind) {
  switch (kind) {
  case MD_TLS_OK:
    return "ok";
  case MD_TLS_ERR_UNKNOWN_CA:
    return "tls_unknown_ca";
  case MD_TLS_ERR_EXPIRED:
    return "tls_cert_expired";
  case MD_TLS_ERR_NOT_YET_VALID:
    return "tls_cert_not_yet_valid";
  case MD_TLS_ERR_NO_PEER_CERT:
    return "tls_no_peer_cert";
  case MD_TLS_ERR_BAD_CERT:
    return "tls_bad_cert";
  case MD_TLS_ERR_PEER_REFUSED:
    return "tls_peer_refused_cert";
  case MD_TLS_ERR_NAME_MISMATCH:
    return "tls_name_mismatch";
  case MD_TLS_ERR_PIN_MISMATCH:
    return "tls_pin_mismatch";
  case MD_TLS_ERR_PROTOCOL:
    return "tls_protocol";
  case MD_TLS_ERR_TIMEOUT:
    return "tls_timeout";
  case MD_TLS_ERR_IO:
    return "tls_io";
  }
  return "tls_unknown";
}

/* ---- helpers */

/* Pin of a certificate file, so operators can fill in pin_sha256. */
int md_tls_cert_spki_sha256_b64(const char *cert_file, char out[MD_TLS_PIN_LEN], char *err,
                                size_t errlen) {
  out[0] = '\0';
  FILE *f = fopen(cert_file, "r");
  if (!f) {
    int e = errno;
    md__errf(err, errlen, "certificate %s: %s", cert_file, strerror(e));
    return -e;
  }
  ERR_clear_error();
  X509 *x = PEM_read_X509(f, NULL, md__no_password, NULL);
  fclose(f);
  if (!x) {
    char why[256];
    md__errf(err, errlen, "certificate %s: cannot load: %s", cert_file,
             md__ossl_reason(why, sizeof(why)));
    return -EINVAL;
  }
  int r = md__spki_pin(x, out);
  X509_free(x);
  if (r != 0)
    md__errf(err, errlen, "certificate %s: cannot encode its public key", cert_file);
  return r;
}
