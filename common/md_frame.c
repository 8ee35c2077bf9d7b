/* md_frame: length-prefixed framing (see md_frame.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "md_frame.h"

#define MD__FRAME_MIN_ALLOC 4096 /* first buffer for a frame that arrives in pieces */

struct md_frame_decoder {
  uint32_t max;
  int err;                       /* sticky error, 0 when none */
  uint8_t hdr[MD_FRAME_HDR_LEN]; /* length prefix being collected */
  size_t hdr_have;               /* bytes of it collected */
  uint32_t len;                  /* payload length, once the prefix is complete */
  uint8_t *buf;                  /* payload of a frame that arrives in pieces */
  size_t cap, have;              /* its allocated size and bytes filled */
  bool delivered;                /* buf was handed out: drop it on the next call */
  void *(*realloc_fn)(void *, size_t);
  void (*free_fn)(void *);
};

/* Default allocator wrappers (realloc/free themselves may be macros). */
static void *md__frame_realloc(void *p, size_t n) {
  return realloc(p, n);
}

/* See md__frame_realloc. */
static void md__frame_free(void *p) {
  free(p);
}

/* One decoder per connection; the limit is fixed for its life. */
int md_frame_decoder_new(uint32_t max, md_frame_decoder **out) {
  if (!out || max > MD_FRAME_MAX)
    return -EINVAL;
  md_frame_decoder *d = calloc(1, sizeof *d);
  if (!d)
    return -ENOMEM;
  d->max = max ? max : MD_FRAME_MAX;
  d->realloc_fn = md__frame_realloc;
  d->free_fn = md__frame_free;
  *out = d;
  return 0;
}

/* Drop the payload buffer, keeping the allocated size honest. */
static void md__frame_release(md_frame_decoder *d) {
  if (d->buf)
    d->free_fn(d->buf);
  d->buf = NULL;
  d->cap = 0;
  d->delivered = false;
}

/* Back to "between frames" (the buffer is released separately). */
static void md__frame_next(md_frame_decoder *d) {
  d->hdr_have = 0;
  d->len = 0;
  d->have = 0;
}

/* For a new stream on the same object, or to drop a peer's partial frame. */
void md_frame_decoder_reset(md_frame_decoder *d) {
  if (!d)
    return;
  md__frame_release(d);
  md__frame_next(d);
  d->err = 0;
}

/* End of the connection: partial frame and decoder go. */
void md_frame_decoder_free(md_frame_decoder *d) {
  if (!d)
    return;
  md__frame_release(d);
  free(d);
}

/* How far into a frame we are: lets a caller spot a peer that stalls mid-frame. */
size_t md_frame_decoder_pending(const md_frame_decoder *d) {
  return d->hdr_have + d->have;
}

/* Memory held for a frame: for tests and accounting. */
size_t md_frame_decoder_held(const md_frame_decoder *d) {
  return d->cap;
}

/* Swap the payload allocator; only between frames, so a buffer is never
 * freed by a different allocator than the one that made it. */
int md_frame_decoder_set_allocator(md_frame_decoder *d, void *(*realloc_fn)(void *, size_t),
                                   void (*free_fn)(void *)) {
  if (!d || (!realloc_fn) != (!free_fn))
    return -EINVAL;
  if (d->buf)
    return -EBUSY;
  d->realloc_fn = realloc_fn ? realloc_fn : md__frame_realloc;
  d->free_fn = free_fn ? free_fn : md__frame_free;
  return 0;
}

/* Big-endian length prefix, byte by byte: no alignment or endianness assumptions. */
uint32_t md_frame_get_header(const uint8_t hdr[MD_FRAME_HDR_LEN]) {
  return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

/* The one place a length is judged, for both directions. */
static int md__frame_check_len(size_t len, uint32_t max) {
  if (len == 0)
    return -EBADMSG;
  if (len > max)
    return -EMSGSIZE;
  return 0;
}

/* The sending side of the length rule. */
int md_frame_put_header(uint8_t hdr[MD_FRAME_HDR_LEN], size_t len) {
  int r = md__frame_check_len(len, MD_FRAME_MAX);
  if (r < 0)
    return r;
  hdr[0] = (uint8_t)(len >> 24);
  hdr[1] = (uint8_t)(len >> 16);
  hdr[2] = (uint8_t)(len >> 8);
  hdr[3] = (uint8_t)len;
  return 0;
}

/* Header and payload in one buffer, so one write sends the frame. */
int md_frame_encode(const void *payload, size_t len, uint8_t **out, size_t *out_len) {
  uint8_t hdr[MD_FRAME_HDR_LEN];
  if (!out || !out_len || (!payload && len))
    return -EINVAL;
  int r = md_frame_put_header(hdr, len);
  if (r < 0)
    return r;
  uint8_t *b = malloc(MD_FRAME_HDR_LEN + len);
  if (!b)
    return -ENOMEM;
  memcpy(b, hdr, MD_FRAME_HDR_LEN);
  memcpy(b + MD_FRAME_HDR_LEN, payload, len);
  *out = b;
  *out_len = MD_FRAME_HDR_LEN + len;
  return 0;
}

/* Make room for `want` payload bytes: double from a small start so memory
 * follows what has arrived, never beyond the announced length. */
static int md__frame_grow(md_frame_decoder *d, size_t want) {
  if (want <= d->cap)
    return 0;
  size_t cap = d->cap ? d->cap : MD__FRAME_MIN_ALLOC;
  while (cap < want)
    cap *= 2;
  if (cap > d->len)
    cap = d->len;
  uint8_t *b = d->realloc_fn(d->buf, cap);
  if (!b)
    return -ENOMEM;
  d->buf = b;
  d->cap = cap;
  return 0;
}

/* Record a fatal stream error; it sticks until reset. */
static int md__frame_fail(md_frame_decoder *d, int err) {
  md__frame_release(d);
  md__frame_next(d);
  d->err = err;
  return err;
}

/* The receive path: bytes in, at most one frame out per call (so the
 * caller may stop between frames, e.g. when the connection closes). */
int md_frame_decoder_feed(md_frame_decoder *d, const void *data, size_t len, size_t *used,
                          const uint8_t **frame, size_t *frame_len) {
  const uint8_t *p = data;
  size_t n = len;

  if (!d || !used || !frame || !frame_len || (!data && len))
    return -EINVAL;
  *used = 0;
  *frame = NULL;
  *frame_len = 0;
  if (d->err)
    return d->err;
  if (d->delivered)
    md__frame_release(d); /* the caller is done with the last frame */
  if (len == 0)
    return 0;

  if (d->hdr_have < MD_FRAME_HDR_LEN) {
    size_t take = MD_FRAME_HDR_LEN - d->hdr_have;
    if (take > n)
      take = n;
    memcpy(d->hdr + d->hdr_have, p, take);
    d->hdr_have += take;
    p += take;
    n -= take;
    if (d->hdr_have < MD_FRAME_HDR_LEN) {
      *used = len;
      return 0;
    }
    uint32_t flen = md_frame_get_header(d->hdr);
    int r = md__frame_check_len(flen, d->max);
    if (r < 0) {
      *used = len - n;
      return md__frame_fail(d, r);
    }
    d->len = flen;
  }

  size_t need = d->len - d->have;
  if (d->have == 0 && n >= need) {
    /* the whole payload is in this chunk: hand it out in place */
    *frame = p;
    *frame_len = need;
    *used = len - n + need;
    md__frame_next(d);
    return 1;
  }
  size_t take = n < need ? n : need;
  if (take == 0) {
    *used = len;
    return 0;
  }
  int r = md__frame_grow(d, d->have + take);
  if (r < 0) {
    *used = len - n;
    return md__frame_fail(d, r);
  }
  memcpy(d->buf + d->have, p, take);
  d->have += take;
  n -= take;
  *used = len - n;
  if (d->have < d->len)
    return 0;
  *frame = d->buf;
  *frame_len = d->len;
  d->delivered = true;
  md__frame_next(d);
  return 1;
}
