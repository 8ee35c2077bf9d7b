/* libFuzzer target for everything a peer's bytes reach before the daemon's
 * own logic: the frame decoder, md_wire_unpack with its version and message
 * checks, and what a received message goes through next (RunRequest and
 * run_id checks, Path and HopUpdate into md_path).
 *
 * Input: the first byte picks the mode. With its top bit set the rest is a
 * byte stream for the frame decoder, fed in chunks of (low 7 bits + 1)
 * bytes, every frame unpacked; otherwise the rest is one frame's payload,
 * so the fuzzer reaches protobuf parsing without having to learn headers.
 *
 * Properties (abort on violation, beyond ASan/UBSan's own findings):
 *  - the decoder hands out frames of 1..limit bytes, holds at most the limit,
 *    and consumes what it says it consumed;
 *  - every error has a name, a peer code and a reason;
 *  - whatever unpacks re-packs, and the re-packed frame unpacks to the same
 *    message type;
 *  - an md_path accepted from the wire converts back to a Path that is
 *    accepted again and whose second conversion gives the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md_frame.h"
#include "md_path.h"
#include "md_wire.h"

#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c))                                                                                      \
      abort();                                                                                     \
  } while (0)

/* A Path packed to bytes (caller frees). */
static uint8_t *path_bytes(const Mtrdiag__V1__Path *pb, size_t *len) {
  *len = mtrdiag__v1__path__get_packed_size(pb);
  uint8_t *b = malloc(*len ? *len : 1);
  CHECK(b);
  mtrdiag__v1__path__pack(pb, b);
  return b;
}

/* md_path -> Path -> md_path -> Path: both Paths identical. */
static void path_roundtrip(const md_path *p) {
  Mtrdiag__V1__Path *a = NULL, *b = NULL;
  md_path *q = NULL;
  char err[256];
  if (md_wire_path_to_pb(p, &a) < 0)
    return; /* out of memory only */
  int r = md_wire_path_from_pb(a, &q, err, sizeof err);
  CHECK(r == 0 || r == -ENOMEM);
  if (r == 0 && md_wire_path_to_pb(q, &b) == 0) {
    size_t la, lb;
    uint8_t *ba = path_bytes(a, &la), *bb = path_bytes(b, &lb);
    CHECK(la == lb && memcmp(ba, bb, la) == 0);
    free(ba);
    free(bb);
  }
  md_wire_free(b);
  md_path_free(q);
  md_wire_free(a);
}

/* What the daemon and the controller do with a message after unpacking. */
static void use_message(const Mtrdiag__V1__Envelope *env) {
  char err[256];
  md_path *p = NULL;
  switch (env->msg_case) {
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_REQUEST:
    if (md_wire_check_run_request(env->run_request, err, sizeof err) < 0)
      CHECK(err[0]);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_CANCEL:
    (void)md_wire_check_run_id(env->cancel->run_id, err, sizeof err);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_ERROR:
    (void)md_wire_error_name(env->error->code);
    (void)md_wire_text_ok(env->error->message, 4096);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_RESULT:
    if (md_wire_path_from_pb(env->run_result->path, &p, err, sizeof err) == 0) {
      path_roundtrip(p);
      md_path_free(p);
    }
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_HOP_UPDATE:
    if (md_wire_hop_update_to_path(env->hop_update, "a", "198.18.0.1", "b", &p, err, sizeof err) ==
        0) {
      Mtrdiag__V1__HopUpdate *u = NULL;
      if (md_wire_hop_update_new("fuzz", env->hop_update->cycles_done, p, &u) == 0) {
        CHECK(u->n_hops == (size_t)p->n_hops);
        md_wire_free(u);
      }
      path_roundtrip(p);
      md_path_free(p);
    }
    break;
  default:
    break;
  }
}

/* One frame's payload, as the receive path handles it. */
static void handle_payload(const uint8_t *data, size_t len) {
  Mtrdiag__V1__Envelope *env = NULL;
  char err[256] = "";
  int r = md_wire_unpack(data, len, &env, err, sizeof err);
  if (r < 0) {
    CHECK(!env);
    CHECK(err[0]);
    CHECK(md_wire_strerror(r) != NULL);
    CHECK(md_wire_error_code(r) != MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED);
    return;
  }
  CHECK(env && env->version == MD_WIRE_VERSION);
  const ProtobufCMessage *msg = md_wire_msg(env);
  CHECK(msg);
  (void)md_wire_msg_name(env->msg_case);
  use_message(env);

  /* it re-packs, and the result unpacks to the same type (re-encoding can
   * shrink the bytes and so the unpack budget: EBUDGET is allowed) */
  uint8_t *buf = NULL;
  size_t blen = 0;
  r = md_wire_pack(msg, &buf, &blen);
  CHECK(r == 0 || r == -ENOMEM || r == -EMSGSIZE);
  if (r == 0) {
    Mtrdiag__V1__Envelope *again = NULL;
    CHECK(md_frame_get_header(buf) == blen - MD_FRAME_HDR_LEN);
    r = md_wire_unpack(buf + MD_FRAME_HDR_LEN, blen - MD_FRAME_HDR_LEN, &again, err, sizeof err);
    CHECK(r == 0 || r == MD_WIRE_EBUDGET);
    if (r == 0)
      CHECK(again->msg_case == env->msg_case);
    md_wire_free(again);
    free(buf);
  }
  md_wire_free(env);
}

/* The stream mode: the frame decoder in fixed-size chunks. */
static void feed_stream(const uint8_t *data, size_t size, size_t chunk) {
  const uint32_t limit = 64 * 1024;
  md_frame_decoder *d = NULL;
  if (md_frame_decoder_new(limit, &d) < 0)
    return;
  size_t off = 0;
  while (off < size) {
    size_t c = size - off < chunk ? size - off : chunk;
    const uint8_t *p = data + off;
    size_t left = c;
    int r = 0;
    while (left > 0) {
      const uint8_t *f = NULL;
      size_t flen = 0, used = 0;
      r = md_frame_decoder_feed(d, p, left, &used, &f, &flen);
      CHECK(used <= left);
      CHECK(md_frame_decoder_held(d) <= limit);
      if (r < 0) {
        CHECK(r == -EMSGSIZE || r == -EBADMSG || r == -ENOMEM);
        break;
      }
      if (r == 1) {
        CHECK(f && flen >= 1 && flen <= limit);
        handle_payload(f, flen);
      } else {
        CHECK(used == left);
      }
      p += used;
      left -= used;
    }
    if (r < 0)
      break;
    off += c;
  }
  md_frame_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer's entry: mode byte, then a stream or a payload. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  if (data[0] & 0x80)
    feed_stream(data + 1, size - 1, (size_t)(data[0] & 0x7f) + 1);
  else
    handle_payload(data + 1, size - 1);
  return 0;
}
