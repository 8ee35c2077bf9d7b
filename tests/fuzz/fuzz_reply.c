/* libFuzzer target for the receive side: arbitrary bytes, as any raw socket
 * might deliver them, through md_reply_parse for every family / socket /
 * header combination, and every parsed reply through md_probe_match.
 * libFuzzer hands over a heap buffer of exactly `size` bytes, so ASan
 * reports any read past it.
 *
 * The same input also drives a property of the send side: a probe built
 * from a spec taken out of the first bytes, wrapped into a time exceeded
 * and parsed back, must match its own spec with its own seq. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

static const struct {
  int family, sock_proto;
} combos[] = {
    {AF_INET, IPPROTO_ICMP}, {AF_INET, IPPROTO_TCP},    {AF_INET6, IPPROTO_ICMPV6},
    {AF_INET6, IPPROTO_TCP}, {AF_INET, IPPROTO_ICMPV6}, /* invalid: must say so */
    {AF_INET6, IPPROTO_UDP},                            /* invalid too */
};

/* A fixed address of each family, for from/to and for specs. */
static md_addr addr_of(int family, uint8_t last) {
  md_addr a;
  memset(&a, 0, sizeof a);
  if (family == AF_INET) {
    a.in4.sin_family = AF_INET;
    uint8_t b[4] = {198, 18, 0, last};
    memcpy(&a.in4.sin_addr, b, 4);
  } else {
    a.in6.sin6_family = AF_INET6;
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
    b[15] = last;
    memcpy(&a.in6.sin6_addr, b, 16);
  }
  return a;
}

/* Match a reply against specs built from its own fields (which must match
 * unless seq is 0 or the encodings disagree) and against a fixed one. */
static void match_all(int family, const md_reply *r) {
  if (r->n_mpls < 0 || r->n_mpls > MD_MAX_MPLS)
    abort();
  for (int paris = 0; paris <= 1; paris++) {
    md_probe_spec s;
    memset(&s, 0, sizeof s);
    s.proto = r->proto;
    s.src = r->probe_src;
    s.dst = r->probe_dst;
    s.ident = r->sport;
    s.port = r->dport;
    s.paris = paris;
    uint16_t seq = 0;
    if (md_probe_match(&s, r, &seq) && seq == 0)
      abort();
    s.dst = addr_of(family, 9);
    s.ident = 0x4d44;
    s.port = 33434;
    if (md_probe_match(&s, r, &seq) && seq == 0)
      abort();
  }
}

/* Parse the input every way the engine might, with and without the
 * addresses recvmsg() gives. */
static void parse_all(const uint8_t *data, size_t size) {
  for (size_t c = 0; c < sizeof combos / sizeof combos[0]; c++) {
    int fam = combos[c].family;
    md_addr from = addr_of(fam, 1), to = addr_of(fam, 2);
    for (int hdr = 0; hdr <= 1; hdr++) {
      for (int addrs = 0; addrs <= 1; addrs++) {
        md_reply r;
        int rc = md_reply_parse(fam, combos[c].sock_proto, hdr, data, size, addrs ? &from : NULL,
                                addrs ? &to : NULL, &r);
        if (rc == 0)
          match_all(fam, &r);
        else if (rc != -EINVAL && rc != -ENOMSG)
          abort();
      }
    }
  }
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* Build, wrap the first `quote` bytes into an ICMP time exceeded as a
 * router would (v4 with the outer header, v6 without), parse, match. */
static void round_trip(const uint8_t *data, size_t size) {
  static uint8_t probe[2048], pkt[2048 + 128];
  if (size < 9)
    return;
  int fam = data[0] & 1 ? AF_INET6 : AF_INET;
  md_probe_spec s;
  memset(&s, 0, sizeof s);
  s.proto = (md_proto)((data[0] >> 1) % 3);
  s.paris = data[0] & 0x08;
  s.src = addr_of(fam, data[1]);
  s.dst = addr_of(fam, data[2]);
  s.ident = (uint16_t)(data[3] << 8 | data[4]);
  s.port = (uint16_t)(data[5] << 8 | data[6]);
  s.psize = (data[7] & 0x07) * 150 + (data[7] >> 3);
  uint16_t seq = (uint16_t)(data[8] << 8 | (size > 9 ? data[9] : 1));
  size_t quote = size > 10 ? data[10] : 8;
  if (seq == 0)
    return;
  int len = md_probe_build(&s, seq, probe, sizeof probe);
  if (len < 0)
    abort();
  if (quote < 8)
    quote = 8;
  if (quote > (size_t)len)
    quote = (size_t)len;

  static const uint8_t nh4[] = {1, 17, 6}, nh6[] = {58, 17, 6};
  size_t n = 0, al = fam == AF_INET ? 4 : 16;
  const uint8_t *src =
      fam == AF_INET ? (const uint8_t *)&s.src.in4.sin_addr : (const uint8_t *)&s.src.in6.sin6_addr;
  const uint8_t *dst =
      fam == AF_INET ? (const uint8_t *)&s.dst.in4.sin_addr : (const uint8_t *)&s.dst.in6.sin6_addr;
  md_addr hop = addr_of(fam, 0xfe);
  memset(pkt, 0, 28 + 40);
  if (fam == AF_INET) {
    pkt[0] = 0x45;
    put16(pkt + 2, (uint16_t)(48 + quote));
    pkt[9] = 1;
    memcpy(pkt + 12, &hop.in4.sin_addr, 4);
    memcpy(pkt + 16, src, 4);
    pkt[20] = 11;
    n = 28;
    pkt[n] = 0x45;
    pkt[n + 9] = nh4[s.proto];
  } else {
    pkt[0] = 3;
    n = 8;
    pkt[n] = 0x60;
    pkt[n + 6] = nh6[s.proto];
  }
  memcpy(pkt + n + (fam == AF_INET ? 12 : 8), src, al);
  memcpy(pkt + n + (fam == AF_INET ? 16 : 24), dst, al);
  n += fam == AF_INET ? 20 : 40;
  memcpy(pkt + n, probe, quote);
  n += quote;

  md_reply r;
  uint16_t got = 0;
  if (md_reply_parse(fam, fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6, fam == AF_INET, pkt, n,
                     &hop, &s.src, &r) != 0)
    abort();
  if (!md_probe_match(&s, &r, &got) || got != seq)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parse_all(data, size);
  round_trip(data, size);
  return 0;
}
