/* test_frame: the length-prefixed frame decoder and encoder (md_frame). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "md_frame.h"

/* ---- a counting allocator for the decoder's payload buffers ---- */

static size_t n_allocs;    /* realloc calls */
static size_t max_request; /* largest size asked for */

static void *count_realloc(void *p, size_t n) {
  n_allocs++;
  if (n > max_request)
    max_request = n;
  return realloc(p, n);
}

/* Pairs with count_realloc. */
static void count_free(void *p) {
  free(p);
}

/* A decoder whose payload allocations are counted, counters reset. */
static md_frame_decoder *new_counted(uint32_t max) {
  md_frame_decoder *d = NULL;
  assert_int_equal(md_frame_decoder_new(max, &d), 0);
  assert_int_equal(md_frame_decoder_set_allocator(d, count_realloc, count_free), 0);
  n_allocs = 0;
  max_request = 0;
  return d;
}

/* ---- helpers ---- */

/* Deterministic bytes (xorshift), so failures reproduce. */
static uint32_t rng_state = 0x12345678u;
/* xorshift32 step. */
static uint32_t rnd(void) {
  uint32_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return rng_state = x;
}

/* A recognisable payload for frame number `seed`. */
static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed + i * 7);
}

/* A stream of frames with the given payload sizes; payload i is fill(.., i). */
static uint8_t *make_stream(const size_t *sizes, size_t n, size_t *len) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += MD_FRAME_HDR_LEN + sizes[i];
  uint8_t *s = malloc(total), *p = s;
  assert_non_null(s);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(md_frame_put_header(p, sizes[i]), 0);
    fill(p + MD_FRAME_HDR_LEN, sizes[i], (uint8_t)i);
    p += MD_FRAME_HDR_LEN + sizes[i];
  }
  *len = total;
  return s;
}

/* Feed `len` bytes in chunks of at most `chunk` (0: random sizes) and check
 * that exactly the frames of `sizes` come out, in order. */
static void feed_and_check(md_frame_decoder *d, const uint8_t *s, size_t len, size_t chunk,
                           const size_t *sizes, size_t n) {
  size_t got = 0, off = 0;
  while (off < len) {
    size_t c = chunk ? chunk : 1 + rnd() % 5000;
    if (c > len - off)
      c = len - off;
    const uint8_t *p = s + off;
    size_t left = c;
    while (left > 0) {
      const uint8_t *f;
      size_t flen, used;
      int r = md_frame_decoder_feed(d, p, left, &used, &f, &flen);
      assert_true(r == 0 || r == 1);
      assert_true(used <= left);
      p += used;
      left -= used;
      if (r == 1) {
        uint8_t *want = malloc(sizes[got]);
        assert_non_null(want);
        fill(want, sizes[got], (uint8_t)got);
        assert_int_equal(flen, sizes[got]);
        assert_memory_equal(f, want, flen);
        free(want);
        got++;
      } else {
        assert_int_equal(left, 0);
      }
      assert_true(md_frame_decoder_held(d) <= MD_FRAME_MAX);
    }
    off += c;
  }
  assert_int_equal(got, n);
  assert_int_equal(md_frame_decoder_pending(d), 0);
}

/* ---- tests ---- */

static void test_header_roundtrip(void **state) {
  (void)state;
  uint8_t h[MD_FRAME_HDR_LEN];
  assert_int_equal(md_frame_put_header(h, 0x010203), 0);
  assert_int_equal(h[0], 0x00);
  assert_int_equal(h[1], 0x01);
  assert_int_equal(h[2], 0x02);
  assert_int_equal(h[3], 0x03);
  assert_int_equal(md_frame_get_header(h), 0x010203);
  assert_int_equal(md_frame_put_header(h, MD_FRAME_MAX), 0);
  assert_int_equal(md_frame_get_header(h), MD_FRAME_MAX);
  assert_int_equal(md_frame_put_header(h, 0), -EBADMSG);
  assert_int_equal(md_frame_put_header(h, MD_FRAME_MAX + 1), -EMSGSIZE);
}

/* md_frame_encode: header + payload, lengths judged first. */
static void test_encode(void **state) {
  (void)state;
  uint8_t *out;
  size_t len;
  assert_int_equal(md_frame_encode("hello", 5, &out, &len), 0);
  assert_int_equal(len, 9);
  assert_memory_equal(out, "\0\0\0\5hello", 9);
  free(out);
  assert_int_equal(md_frame_encode("", 0, &out, &len), -EBADMSG);
  /* the length is judged before the payload is looked at */
  assert_int_equal(md_frame_encode("x", (size_t)MD_FRAME_MAX + 1, &out, &len), -EMSGSIZE);
  assert_int_equal(md_frame_encode(NULL, 1, &out, &len), -EINVAL);
}

/* Limits and arguments of md_frame_decoder_new and friends. */
static void test_new_args(void **state) {
  (void)state;
  md_frame_decoder *d = NULL;
  assert_int_equal(md_frame_decoder_new(MD_FRAME_MAX + 1, &d), -EINVAL);
  assert_null(d);
  assert_int_equal(md_frame_decoder_new(0, NULL), -EINVAL);
  assert_int_equal(md_frame_decoder_new(0, &d), 0);
  assert_int_equal(md_frame_decoder_pending(d), 0);
  assert_int_equal(md_frame_decoder_held(d), 0);
  assert_int_equal(md_frame_decoder_set_allocator(d, count_realloc, NULL), -EINVAL);
  md_frame_decoder_free(d);
  md_frame_decoder_free(NULL);
}

/* The worst chunking TLS could give: every byte on its own. */
static void test_one_byte_at_a_time(void **state) {
  (void)state;
  const size_t sizes[] = {1, 2, 3, 4, 5, 300, 4096, 4097, 70000, 1};
  size_t n = sizeof sizes / sizeof sizes[0], len;
  uint8_t *s = make_stream(sizes, n, &len);
  md_frame_decoder *d = new_counted(0);
  feed_and_check(d, s, len, 1, sizes, n);
  assert_true(max_request <= 70000);
  md_frame_decoder_free(d);
  free(s);
}

/* Many frames in one read, then the same stream in random pieces. */
static void test_many_frames_one_chunk(void **state) {
  (void)state;
  size_t sizes[200], len;
  for (size_t i = 0; i < 200; i++)
    sizes[i] = 1 + (i * 37) % 1000;
  uint8_t *s = make_stream(sizes, 200, &len);
  md_frame_decoder *d = new_counted(0);

  /* whole frames inside one chunk are handed out in place: no copy, no malloc */
  const uint8_t *p = s;
  size_t left = len, got = 0;
  while (left > 0) {
    const uint8_t *f;
    size_t flen, used;
    assert_int_equal(md_frame_decoder_feed(d, p, left, &used, &f, &flen), 1);
    assert_ptr_equal(f, p + MD_FRAME_HDR_LEN);
    assert_int_equal(flen, sizes[got]);
    assert_int_equal(used, MD_FRAME_HDR_LEN + sizes[got]);
    p += used;
    left -= used;
    got++;
  }
  assert_int_equal(got, 200);
  assert_int_equal(n_allocs, 0);
  assert_int_equal(md_frame_decoder_held(d), 0);

  /* the same stream in random chunks */
  feed_and_check(d, s, len, 0, sizes, 200);
  md_frame_decoder_free(d);
  free(s);
}

/* Exactly MD_FRAME_MAX is allowed, and costs exactly that much. */
static void test_max_size_frame(void **state) {
  (void)state;
  size_t sizes[] = {MD_FRAME_MAX, 10}, len;
  uint8_t *s = make_stream(sizes, 2, &len);
  md_frame_decoder *d = new_counted(0);
  feed_and_check(d, s, len, 16384, sizes, 2); /* TLS record sized pieces */
  assert_int_equal(max_request, MD_FRAME_MAX);
  md_frame_decoder_free(d);
  free(s);
}

/* A length over the limit is refused on the header alone: no allocation. */
static void test_oversize_rejected_before_alloc(void **state) {
  (void)state;
  const uint8_t huge[] = {0xFF, 0xFF, 0xFF, 0xFF, 'x', 'y'};
  const uint8_t *f;
  size_t flen, used;

  md_frame_decoder *d = new_counted(0);
  assert_int_equal(md_frame_decoder_feed(d, huge, sizeof huge, &used, &f, &flen), -EMSGSIZE);
  assert_int_equal(used, MD_FRAME_HDR_LEN);
  assert_null(f);
  assert_int_equal(n_allocs, 0);
  assert_int_equal(md_frame_decoder_held(d), 0);
  /* the error sticks */
  assert_int_equal(md_frame_decoder_feed(d, huge + 4, 2, &used, &f, &flen), -EMSGSIZE);
  assert_int_equal(used, 0);

  /* one over the limit, header split across calls */
  md_frame_decoder_reset(d);
  uint8_t h[4] = {0x00, 0x10, 0x00, 0x01}; /* MD_FRAME_MAX + 1 */
  assert_int_equal(md_frame_decoder_feed(d, h, 3, &used, &f, &flen), 0);
  assert_int_equal(md_frame_decoder_feed(d, h + 3, 1, &used, &f, &flen), -EMSGSIZE);
  assert_int_equal(n_allocs, 0);

  /* a decoder with a smaller limit */
  md_frame_decoder_free(d);
  d = new_counted(100);
  uint8_t s[4 + 101];
  assert_int_equal(md_frame_put_header(s, 101), 0);
  assert_int_equal(md_frame_decoder_feed(d, s, sizeof s, &used, &f, &flen), -EMSGSIZE);
  md_frame_decoder_reset(d);
  assert_int_equal(md_frame_put_header(s, 100), 0);
  assert_int_equal(md_frame_decoder_feed(d, s, 104, &used, &f, &flen), 1);
  assert_int_equal(flen, 100);
  assert_int_equal(n_allocs, 0);
  md_frame_decoder_free(d);
}

/* A large announced length costs memory only as bytes come. */
static void test_memory_follows_arrival(void **state) {
  (void)state;
  uint8_t s[4 + 10] = {0};
  const uint8_t *f;
  size_t flen, used;
  md_frame_decoder *d = new_counted(0);
  /* announce 1 MiB, send 10 bytes: only a small buffer is allocated */
  assert_int_equal(md_frame_put_header(s, MD_FRAME_MAX), 0);
  assert_int_equal(md_frame_decoder_feed(d, s, sizeof s, &used, &f, &flen), 0);
  assert_int_equal(used, sizeof s);
  assert_int_equal(md_frame_decoder_pending(d), 14);
  assert_true(md_frame_decoder_held(d) <= 4096);
  assert_true(max_request <= 4096);
  assert_int_equal(md_frame_decoder_set_allocator(d, NULL, NULL), -EBUSY);
  md_frame_decoder_free(d);
}

/* Length 0 is an error (there is no empty Envelope worth sending). */
static void test_zero_length(void **state) {
  (void)state;
  const uint8_t z[] = {0, 0, 0, 0, 0, 0, 0, 1, 'a'};
  const uint8_t *f;
  size_t flen, used;
  md_frame_decoder *d = new_counted(0);
  assert_int_equal(md_frame_decoder_feed(d, z, sizeof z, &used, &f, &flen), -EBADMSG);
  assert_int_equal(used, 4);
  assert_int_equal(md_frame_decoder_feed(d, z + 4, 5, &used, &f, &flen), -EBADMSG);
  md_frame_decoder_reset(d);
  assert_int_equal(md_frame_decoder_feed(d, z + 4, 5, &used, &f, &flen), 1);
  assert_int_equal(flen, 1);
  assert_int_equal(f[0], 'a');
  assert_int_equal(n_allocs, 0);
  md_frame_decoder_free(d);
}

/* A frame that stops: the decoder waits; reset drops it. */
static void test_truncated_then_reset(void **state) {
  (void)state;
  size_t sizes[] = {5000}, len;
  uint8_t *s = make_stream(sizes, 1, &len);
  const uint8_t *f;
  size_t flen, used;
  md_frame_decoder *d = new_counted(0);

  /* half a header: waits */
  assert_int_equal(md_frame_decoder_feed(d, s, 2, &used, &f, &flen), 0);
  assert_int_equal(used, 2);
  assert_int_equal(md_frame_decoder_pending(d), 2);
  assert_int_equal(md_frame_decoder_held(d), 0);
  /* the rest of the header and part of the payload: still waits */
  assert_int_equal(md_frame_decoder_feed(d, s + 2, 1000, &used, &f, &flen), 0);
  assert_int_equal(used, 1000);
  assert_int_equal(md_frame_decoder_pending(d), 1002);
  assert_true(md_frame_decoder_held(d) >= 998);
  /* nothing more: nothing happens */
  assert_int_equal(md_frame_decoder_feed(d, s + 1002, 0, &used, &f, &flen), 0);
  assert_int_equal(used, 0);

  /* the peer went away: reset drops the partial frame and its memory */
  md_frame_decoder_reset(d);
  assert_int_equal(md_frame_decoder_pending(d), 0);
  assert_int_equal(md_frame_decoder_held(d), 0);
  assert_int_equal(md_frame_decoder_set_allocator(d, count_realloc, count_free), 0);

  /* and the decoder is good for a new stream */
  feed_and_check(d, s, len, 777, sizes, 1);
  /* the buffer of a delivered frame goes at the next call */
  assert_true(md_frame_decoder_held(d) > 0);
  assert_int_equal(md_frame_decoder_feed(d, NULL, 0, &used, &f, &flen), 0);
  assert_int_equal(md_frame_decoder_held(d), 0);
  md_frame_decoder_free(d);
  free(s);
}

/* Things that are not our protocol, and random streams. */
static void test_garbage(void **state) {
  (void)state;
  const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  const uint8_t tls_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
  const uint8_t *f;
  size_t flen, used;
  md_frame_decoder *d = new_counted(0);

  /* "GET " is a length of ~1.2 GB */
  assert_int_equal(md_frame_decoder_feed(d, http, strlen(http), &used, &f, &flen), -EMSGSIZE);
  md_frame_decoder_reset(d);
  /* a TLS ClientHello talking to a plaintext peer: 369 MB */
  assert_int_equal(md_frame_decoder_feed(d, tls_hello, sizeof tls_hello, &used, &f, &flen),
                   -EMSGSIZE);
  assert_int_equal(n_allocs, 0);
  md_frame_decoder_free(d);

  /* random streams in random chunks, small limit: whatever comes out is in bounds */
  for (int round = 0; round < 2000; round++) {
    uint8_t buf[512];
    size_t n = rnd() % sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = (uint8_t)rnd();
    if (n >= 4 && (round & 1))
      buf[0] = buf[1] = 0; /* plausible lengths, so frames do come out */
    assert_int_equal(md_frame_decoder_new(round % 3 ? 70000 : 0, &d), 0);
    size_t off = 0;
    while (off < n) {
      size_t c = 1 + rnd() % 64;
      if (c > n - off)
        c = n - off;
      int r = md_frame_decoder_feed(d, buf + off, c, &used, &f, &flen);
      if (r < 0) {
        assert_true(r == -EMSGSIZE || r == -EBADMSG);
        break;
      }
      if (r == 1) {
        assert_true(flen > 0 && flen <= 70000);
        assert_true(f != NULL);
      }
      assert_true(used <= c);
      assert_true(md_frame_decoder_held(d) <= 70000);
      off += used;
    }
    md_frame_decoder_free(d);
  }
}

/* NULL where a pointer is needed: -EINVAL, no crash. */
static void test_bad_args(void **state) {
  (void)state;
  const uint8_t *f;
  size_t flen, used;
  md_frame_decoder *d = new_counted(0);
  assert_int_equal(md_frame_decoder_feed(d, NULL, 3, &used, &f, &flen), -EINVAL);
  assert_int_equal(md_frame_decoder_feed(NULL, "x", 1, &used, &f, &flen), -EINVAL);
  assert_int_equal(md_frame_decoder_feed(d, "x", 1, NULL, &f, &flen), -EINVAL);
  md_frame_decoder_free(d);
}

/* Each test is independent; cmocka runs them in order. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_roundtrip),
      cmocka_unit_test(test_encode),
      cmocka_unit_test(test_new_args),
      cmocka_unit_test(test_one_byte_at_a_time),
      cmocka_unit_test(test_many_frames_one_chunk),
      cmocka_unit_test(test_max_size_frame),
      cmocka_unit_test(test_oversize_rejected_before_alloc),
      cmocka_unit_test(test_memory_follows_arrival),
      cmocka_unit_test(test_zero_length),
      cmocka_unit_test(test_truncated_then_reset),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
