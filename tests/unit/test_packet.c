/* Unit tests for packet.c: probes built and read back through fake ICMP
 * errors, the Paris checksum tricks checked against an independent
 * checksum, hand-written reply fixtures (MPLS, IPv6, TCP), and every prefix
 * of every packet parsed without reading past it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

#define SRC4 "198.18.0.1"
#define DST4 "198.18.9.9"
#define HOP4 "198.18.1.1"
#define SRC6 "2001:db8::1"
#define DST6 "2001:db8:9::9"
#define HOP6 "2001:db8:ff::1"
#define IDENT 0x4d44
#define UDP_PORT 33434
#define TCP_PORT 80

static const uint16_t some_seqs[] = {1,      2,      3,      77,     0x00ff, 0x0100,
                                     0x1234, 0x7fff, 0x8000, 0xbeef, 0xfffe, 0xffff};
#define N_SEQS (sizeof some_seqs / sizeof some_seqs[0])

/* --- Helpers -------------------------------------------------------------- */

static md_addr mkaddr(const char *s) {
  md_addr a;
  memset(&a, 0, sizeof a);
  if (strchr(s, ':') != NULL) {
    a.in6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, &a.in6.sin6_addr), 1);
  } else {
    a.in4.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, &a.in4.sin_addr), 1);
  }
  return a;
}

static const uint8_t *abytes(const md_addr *a) {
  if (a->sa.sa_family == AF_INET)
    return (const uint8_t *)&a->in4.sin_addr;
  return (const uint8_t *)&a->in6.sin6_addr;
}

static size_t alen(const md_addr *a) {
  return a->sa.sa_family == AF_INET ? 4 : 16;
}

static void assert_addr(const md_addr *a, const char *want) {
  md_addr w = mkaddr(want);
  assert_int_equal(a->sa.sa_family, w.sa.sa_family);
  assert_memory_equal(abytes(a), abytes(&w), alen(&w));
}

static md_probe_spec mkspec(md_proto proto, int family, bool paris) {
  md_probe_spec s;
  memset(&s, 0, sizeof s);
  s.proto = proto;
  s.src = mkaddr(family == AF_INET ? SRC4 : SRC6);
  s.dst = mkaddr(family == AF_INET ? DST4 : DST6);
  s.ident = IDENT;
  s.port = proto == MD_PROTO_TCP ? TCP_PORT : UDP_PORT;
  s.paris = paris;
  s.psize = 64;
  return s;
}

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* A checksum written independently of packet.c's: the folded sum of
 * big-endian words of one buffer. A correct packet sums to 0xffff. */
static uint16_t ref_sum(const uint8_t *p, size_t len) {
  uint32_t s = 0;
  for (size_t i = 0; i < len; i++)
    s += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
  while (s > 0xffff)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

/* Pseudo-header (v4: RFC 768; v6: RFC 8200) followed by the segment. */
static uint16_t ref_sum_pseudo(const md_probe_spec *spec, uint8_t proto, const uint8_t *seg,
                               size_t len) {
  static uint8_t buf[40 + 70000];
  size_t n = 0, al = alen(&spec->dst);
  memset(buf, 0, 40);
  memcpy(buf, abytes(&spec->src), al);
  memcpy(buf + al, abytes(&spec->dst), al);
  if (al == 4) {
    buf[9] = proto;
    wr16(buf + 10, (uint16_t)len);
    n = 12;
  } else {
    buf[34] = (uint8_t)(len >> 8);
    buf[35] = (uint8_t)len;
    buf[39] = proto;
    n = 40;
  }
  memcpy(buf + n, seg, len);
  return ref_sum(buf, n + len);
}

/* Wrap a probe into the ICMP error a router would send: v4 with the outer
 * IP header a raw socket delivers, v6 without. `quote` probe bytes follow
 * the quoted IP header. */
static size_t wrap_error(const md_probe_spec *spec, uint8_t type, uint8_t code, const char *router,
                         const uint8_t *probe, size_t plen, size_t quote, uint8_t *out) {
  md_addr hop = mkaddr(router);
  static const uint8_t nh[] = {1, 17, 6};
  size_t n = 0;
  if (quote > plen)
    quote = plen;
  if (spec->dst.sa.sa_family == AF_INET) {
    size_t total = 20 + 8 + 20 + quote;
    memset(out, 0, total);
    out[0] = 0x45;
    wr16(out + 2, (uint16_t)total);
    out[8] = 64;
    out[9] = 1;
    memcpy(out + 12, abytes(&hop), 4);
    memcpy(out + 16, abytes(&spec->src), 4);
    out[20] = type;
    out[21] = code;
    n = 28;
    out[n] = 0x45;
    wr16(out + n + 2, (uint16_t)(20 + plen));
    out[n + 8] = 1;
    out[n + 9] = nh[spec->proto];
    memcpy(out + n + 12, abytes(&spec->src), 4);
    memcpy(out + n + 16, abytes(&spec->dst), 4);
    n += 20;
  } else {
    memset(out, 0, 8 + 40);
    out[0] = type;
    out[1] = code;
    n = 8;
    out[n] = 0x60;
    wr16(out + n + 4, (uint16_t)plen);
    out[n + 6] = spec->proto == MD_PROTO_ICMP ? 58 : nh[spec->proto];
    out[n + 7] = 1;
    memcpy(out + n + 8, abytes(&spec->src), 16);
    memcpy(out + n + 24, abytes(&spec->dst), 16);
    n += 40;
  }
  memcpy(out + n, probe, quote);
  return n + quote;
}

/* Parse the way the engine does: v4 raw sockets deliver the IP header. */
static int parse(int family, int sock_proto, const uint8_t *buf, size_t len, const char *from,
                 md_reply *r) {
  md_addr f = mkaddr(from);
  md_addr to = mkaddr(family == AF_INET ? SRC4 : SRC6);
  return md_reply_parse(family, sock_proto, family == AF_INET, buf, len, &f, &to, r);
}

static int icmp_sock(int family) {
  return family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
}

/* The same reply, field by field (MPLS aside). */
static void assert_same_reply(const md_reply *a, const md_reply *b) {
  assert_int_equal(a->kind, b->kind);
  assert_int_equal(a->icmp_type, b->icmp_type);
  assert_int_equal(a->icmp_code, b->icmp_code);
  assert_memory_equal(&a->from, &b->from, sizeof a->from);
  assert_int_equal(a->proto, b->proto);
  assert_memory_equal(&a->probe_src, &b->probe_src, sizeof a->probe_src);
  assert_memory_equal(&a->probe_dst, &b->probe_dst, sizeof a->probe_dst);
  assert_int_equal(a->sport, b->sport);
  assert_int_equal(a->dport, b->dport);
  assert_int_equal(a->icmp_seq, b->icmp_seq);
  assert_int_equal(a->udp_csum, b->udp_csum);
  assert_int_equal(a->tcp_seq, b->tcp_seq);
}

/* Every prefix of a packet (in a buffer of exactly that size, so ASan sees
 * any over-read) gives an error, or the full packet's reply with at most its
 * labels. With fix_len, the IP header's length is patched to the prefix so
 * that the truncation reaches the inner layers. */
static void check_prefixes(int family, int sock_proto, bool has_ip, const uint8_t *pkt, size_t len,
                           bool fix_len) {
  md_addr from = mkaddr(family == AF_INET ? HOP4 : HOP6);
  md_addr to = mkaddr(family == AF_INET ? SRC4 : SRC6);
  md_reply full, r;
  int full_rc = md_reply_parse(family, sock_proto, has_ip, pkt, len, &from, &to, &full);

  for (size_t n = 0; n <= len; n++) {
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, pkt, n);
    if (fix_len && family == AF_INET && n >= 4)
      wr16(b + 2, (uint16_t)n);
    if (fix_len && family == AF_INET6 && n >= 40)
      wr16(b + 4, (uint16_t)(n - 40));
    int rc = md_reply_parse(family, sock_proto, has_ip, b, n, &from, &to, &r);
    if (rc == 0) {
      assert_int_equal(full_rc, 0);
      assert_same_reply(&r, &full);
      assert_true(r.n_mpls >= 0 && r.n_mpls <= full.n_mpls);
      if (r.n_mpls > 0)
        assert_memory_equal(r.mpls, full.mpls, sizeof r.mpls[0] * (size_t)r.n_mpls);
    } else {
      assert_true(rc == -EINVAL || rc == -ENOMSG);
    }
    free(b);
  }
}

/* --- Fixtures --------------------------------------------------------------- */

/* IPv4 time exceeded from 198.18.1.1 to 198.18.0.1, RFC 4884 length 32 words
 * (128 bytes of original datagram), then an extension; total 172 bytes. */
static const uint8_t te4_mpls_head[] = {
    0x45, 0x00, 0x00, 0xac, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x01,
    0x00, 0x00, 0xc6, 0x12, 0x01, 0x01, 0xc6, 0x12, 0x00, 0x01, /* IP: 198.18.1.1 -> 198.18.0.1 */
    0x0b, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00,             /* time exceeded, length 32 */
};
/* The quoted Paris UDP probe: sport 0x4d44, dport 33434, checksum (seq) 7. */
static const uint8_t te4_mpls_quote[] = {
    0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x01, 0x11, 0x00,
    0x00, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x09, 0x09, /* IP: 198.18.0.1 -> 198.18.9.9, UDP */
    0x4d, 0x44, 0x82, 0x9a, 0x00, 0x18, 0x00, 0x07,
};
/* Extension header v2 (checksum 0x89c1) and one MPLS object of 2 entries:
 * label 16 TC 0 S 0 TTL 1; label 299792 TC 5 S 1 TTL 254. */
static const uint8_t mpls_ext[] = {
    0x20, 0x00, 0x89, 0xc1, 0x00, 0x0c, 0x01, 0x01, 0x00, 0x01, 0x00, 0x01, 0x49, 0x31, 0x0b, 0xfe,
};

/* IPv6 time exceeded quoting a Paris UDP probe (seq 5), no outer header. */
static const uint8_t te6_udp[] = {
    0x03, 0x00, 0x12, 0x34, 0x00, 0x00, 0x00, 0x00, /* time exceeded, length 0 */
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x11, 0x01, /* payload 12, UDP, hop limit 1 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* 2001:db8::1 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x09, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, /* 2001:db8:9::9 */
    0x4d, 0x44, 0x82, 0x9a, 0x00, 0x0c, 0x00, 0x05, /* UDP, checksum 5 */
};

/* IPv4 destination unreachable (communication administratively prohibited)
 * quoting a TCP SYN: sport 0x4d44, dport 80, sequence 0x4d440007. */
static const uint8_t unreach4_tcp[] = {
    0x45, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x01, 0x00, 0x00, 0xc6, 0x12,
    0x05, 0x05, 0xc6, 0x12, 0x00, 0x01, 0x03, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x01, 0x06, 0x00, 0x00, 0xc6, 0x12,
    0x00, 0x01, 0xc6, 0x12, 0x09, 0x09, 0x4d, 0x44, 0x00, 0x50, 0x4d, 0x44, 0x00, 0x07,
};

/* SYN-ACK from 198.18.9.9:80 to 198.18.0.1:0x4d44, acknowledging 0x4d440008. */
static const uint8_t synack4[] = {
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc6, 0x12,
    0x09, 0x09, 0xc6, 0x12, 0x00, 0x01, 0x00, 0x50, 0x4d, 0x44, 0x11, 0x22, 0x33, 0x44,
    0x4d, 0x44, 0x00, 0x08, 0x50, 0x12, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
};

/* RST-ACK from port 80 (IPv6, no IP header), acknowledging 0x4d44000a. */
static const uint8_t rstack6[] = {
    0x00, 0x50, 0x4d, 0x44, 0x00, 0x00, 0x00, 0x00, 0x4d, 0x44,
    0x00, 0x0a, 0x50, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* Our own echo request, as a raw ICMP socket also sees it. */
static const uint8_t echo_req4[] = {
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc6, 0x12,
    0x00, 0x01, 0xc6, 0x12, 0x09, 0x09, 0x08, 0x00, 0x6a, 0xb9, 0x4d, 0x44, 0x00, 0x01,
};
static const uint8_t echo_req6[] = {0x80, 0x00, 0x00, 0x00, 0x4d, 0x44, 0x00, 0x01};

/* The v4 MPLS packet: head, quote, zero padding to 128, extension. With
 * length_words 0 it is the pre-RFC 4884 form mtr also accepts. */
static size_t te4_mpls(uint8_t *buf, uint8_t length_words) {
  memset(buf, 0, 172);
  memcpy(buf, te4_mpls_head, sizeof te4_mpls_head);
  buf[25] = length_words;
  memcpy(buf + 28, te4_mpls_quote, sizeof te4_mpls_quote);
  memcpy(buf + 28 + 128, mpls_ext, sizeof mpls_ext);
  return 172;
}

/* --- Build -------------------------------------------------------------------- */

static void test_checksum_rfc1071(void **state) {
  (void)state;
  static const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  assert_int_equal(md_inet_checksum(v, sizeof v, 0), 0x220d); /* RFC 1071 3. */
  static const uint8_t odd[] = {0x12, 0x34, 0x56};
  assert_int_equal(md_inet_checksum(odd, sizeof odd, 0), (uint16_t) ~(0x1234 + 0x5600));
  assert_int_equal(md_inet_checksum(odd, sizeof odd, 0x10000), (uint16_t) ~(0x1234 + 0x5600 + 1));
}

static void test_proto_names(void **state) {
  (void)state;
  md_proto p;
  assert_string_equal(md_proto_name(MD_PROTO_ICMP), "icmp");
  assert_string_equal(md_proto_name(MD_PROTO_UDP), "udp");
  assert_string_equal(md_proto_name(MD_PROTO_TCP), "tcp");
  assert_int_equal(md_proto_parse("udp", &p), 0);
  assert_int_equal(p, MD_PROTO_UDP);
  assert_int_equal(md_proto_parse("TCP", &p), 0);
  assert_int_equal(p, MD_PROTO_TCP);
  assert_int_equal(md_proto_parse("sctp", &p), -EINVAL);
  assert_int_equal(md_proto_parse(NULL, &p), -EINVAL);
  assert_int_equal(md_ip_header_len(AF_INET), 20);
  assert_int_equal(md_ip_header_len(AF_INET6), 40);
  assert_int_equal(md_ip_header_len(AF_UNIX), -EINVAL);
}

static void test_build_sizes(void **state) {
  (void)state;
  static uint8_t buf[70000];
  md_probe_spec s = mkspec(MD_PROTO_ICMP, AF_INET, true);
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 44);
  s.psize = 0;
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 10);
  s.psize = 65535;
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 65515);
  s.psize = 65536;
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), -EINVAL);

  s = mkspec(MD_PROTO_UDP, AF_INET6, true);
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 24);
  s.psize = 41;
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 10);
  s.psize = 40 + 65535;
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 65535);
  assert_int_equal(rd16(buf + 4), 65535);

  s = mkspec(MD_PROTO_TCP, AF_INET, false);
  s.psize = 1500; /* a SYN carries no data: see packet.c */
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 20);

  s = mkspec(MD_PROTO_UDP, AF_INET, true);
  assert_int_equal(md_probe_build(&s, 1, buf, 43), -ENOSPC);
  assert_int_equal(md_probe_build(&s, 1, buf, 44), 44);
  assert_int_equal(md_probe_build(&s, 0, buf, sizeof buf), -EINVAL); /* seq 0 is never sent */
  s.src.sa.sa_family = AF_UNSPEC; /* UDP needs the source for its checksum */
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), -EINVAL);
  s = mkspec(MD_PROTO_UDP, AF_INET, true);
  s.src = mkaddr(SRC6);
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), -EINVAL);
  s = mkspec(MD_PROTO_ICMP, AF_INET6, true);
  s.src.sa.sa_family = AF_UNSPEC; /* fine: the kernel computes ICMPv6's */
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), 24);
  s.dst.sa.sa_family = AF_UNIX;
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), -EINVAL);
  s = mkspec((md_proto)7, AF_INET, true);
  assert_int_equal(md_probe_build(&s, 1, buf, sizeof buf), -EINVAL);
  assert_int_equal(md_probe_build(NULL, 1, buf, sizeof buf), -EINVAL);
}

/* Header fields of each protocol, byte by byte. */
static void test_build_fields(void **state) {
  (void)state;
  uint8_t b[64];
  md_probe_spec s = mkspec(MD_PROTO_ICMP, AF_INET, false);
  assert_int_equal(md_probe_build(&s, 0x0102, b, sizeof b), 44);
  static const uint8_t icmp4[] = {0x08, 0x00, 0xa9, 0xb9, 0x4d, 0x44, 0x01, 0x02, 0, 0};
  assert_memory_equal(b, icmp4, sizeof icmp4);
  assert_int_equal(ref_sum(b, 44), 0xffff);

  s = mkspec(MD_PROTO_ICMP, AF_INET6, false);
  assert_int_equal(md_probe_build(&s, 9, b, sizeof b), 24);
  assert_int_equal(b[0], 128);
  assert_int_equal(rd16(b + 4), IDENT);
  assert_int_equal(rd16(b + 6), 9);
  assert_int_equal(ref_sum_pseudo(&s, 58, b, 24), 0xffff);

  s = mkspec(MD_PROTO_UDP, AF_INET, false);
  assert_int_equal(md_probe_build(&s, 3, b, sizeof b), 44);
  assert_int_equal(rd16(b), IDENT + 3);
  assert_int_equal(rd16(b + 2), UDP_PORT);
  assert_int_equal(rd16(b + 4), 44);
  assert_int_equal(ref_sum_pseudo(&s, 17, b, 44), 0xffff);

  s = mkspec(MD_PROTO_TCP, AF_INET6, true);
  assert_int_equal(md_probe_build(&s, 0x0a0b, b, sizeof b), 20);
  static const uint8_t tcp[] = {0x4d, 0x44, 0x00, 0x50, 0x4d, 0x44, 0x0a, 0x0b,
                                0,    0,    0,    0,    0x50, 0x02, 0xfa, 0xf0};
  assert_memory_equal(b, tcp, sizeof tcp);
  assert_int_equal(rd16(b + 18), 0);
  assert_int_equal(ref_sum_pseudo(&s, 6, b, 20), 0xffff);
  s.paris = false;
  assert_int_equal(md_probe_build(&s, 0x0a0b, b, sizeof b), 20);
  assert_int_equal(rd16(b), (uint16_t)(IDENT + 0x0a0b));
  assert_int_equal(ref_sum_pseudo(&s, 6, b, 20), 0xffff);
}

/* Paris ICMP: one checksum for every seq of a trace, and a correct one. */
static void test_paris_icmp_constant(void **state) {
  (void)state;
  static const int fams[] = {AF_INET, AF_INET6};
  uint8_t b[128];
  for (size_t f = 0; f < 2; f++) {
    for (int psize = 0; psize <= 100; psize += 33) {
      md_probe_spec s = mkspec(MD_PROTO_ICMP, fams[f], true);
      s.psize = psize;
      int len = md_probe_build(&s, 1, b, sizeof b);
      assert_true(len >= 10);
      uint16_t first = rd16(b + 2);
      for (uint32_t seq = 1; seq <= 0xffff; seq++) {
        assert_int_equal(md_probe_build(&s, (uint16_t)seq, b, sizeof b), len);
        assert_int_equal(rd16(b + 2), first);
        assert_int_equal(rd16(b + 6), seq);
        uint16_t sum =
            fams[f] == AF_INET ? ref_sum(b, (size_t)len) : ref_sum_pseudo(&s, 58, b, (size_t)len);
        assert_int_equal(sum, 0xffff);
      }
    }
  }
}

/* Paris UDP: the checksum field is seq, and it is the true checksum. */
static void test_paris_udp_checksum_is_seq(void **state) {
  (void)state;
  static const int fams[] = {AF_INET, AF_INET6};
  uint8_t b[128];
  for (size_t f = 0; f < 2; f++) {
    for (int psize = 0; psize <= 100; psize += 25) {
      md_probe_spec s = mkspec(MD_PROTO_UDP, fams[f], true);
      s.psize = psize;
      for (uint32_t seq = 1; seq <= 0xffff; seq++) {
        int len = md_probe_build(&s, (uint16_t)seq, b, sizeof b);
        assert_true(len >= 10);
        assert_int_equal(rd16(b), IDENT);
        assert_int_equal(rd16(b + 2), UDP_PORT);
        assert_int_equal(rd16(b + 6), seq);
        assert_int_equal(ref_sum_pseudo(&s, 17, b, (size_t)len), 0xffff);
      }
    }
  }
}

/* --- Round trips ---------------------------------------------------------- */

/* Every protocol, family and mode: build, wrap into a time exceeded, parse,
 * match, get the seq back; other traces do not claim it. */
static void test_round_trip_time_exceeded(void **state) {
  (void)state;
  static const int fams[] = {AF_INET, AF_INET6};
  static const md_proto protos[] = {MD_PROTO_ICMP, MD_PROTO_UDP, MD_PROTO_TCP};
  static const size_t quotes[] = {8, 20, 2000};
  uint8_t probe[256], pkt[512];
  md_reply r;
  uint16_t got;

  for (size_t f = 0; f < 2; f++) {
    int fam = fams[f];
    for (size_t p = 0; p < 3; p++) {
      for (int paris = 0; paris <= 1; paris++) {
        md_probe_spec s = mkspec(protos[p], fam, paris);
        for (size_t i = 0; i < N_SEQS; i++) {
          uint16_t seq = some_seqs[i];
          int len = md_probe_build(&s, seq, probe, sizeof probe);
          assert_true(len > 0);
          for (size_t q = 0; q < 3; q++) {
            size_t n = wrap_error(&s, fam == AF_INET ? 11 : 3, 0, fam == AF_INET ? HOP4 : HOP6,
                                  probe, (size_t)len, quotes[q], pkt);
            assert_int_equal(parse(fam, icmp_sock(fam), pkt, n, fam == AF_INET ? HOP4 : HOP6, &r),
                             0);
            assert_int_equal(r.kind, MD_REPLY_TIME_EXCEEDED);
            assert_int_equal(r.icmp_type, fam == AF_INET ? 11 : 3);
            assert_addr(&r.from, fam == AF_INET ? HOP4 : HOP6);
            assert_addr(&r.probe_src, fam == AF_INET ? SRC4 : SRC6);
            assert_addr(&r.probe_dst, fam == AF_INET ? DST4 : DST6);
            assert_int_equal(r.proto, protos[p]);
            assert_int_equal(r.n_mpls, 0);
            got = 0;
            assert_true(md_probe_match(&s, &r, &got));
            assert_int_equal(got, seq);

            md_probe_spec other = s;
            other.dst = mkaddr(fam == AF_INET ? HOP4 : HOP6);
            assert_false(md_probe_match(&other, &r, &got));
            other = s;
            other.proto = (md_proto)((protos[p] + 1) % 3);
            assert_false(md_probe_match(&other, &r, &got));
            if (paris || protos[p] == MD_PROTO_TCP) {
              other = s;
              other.ident = IDENT + 1;
              assert_false(md_probe_match(&other, &r, &got));
            }
            if (protos[p] != MD_PROTO_ICMP) {
              other = s;
              other.port++;
              assert_false(md_probe_match(&other, &r, &got));
            }
          }
        }
      }
    }
  }
}

/* The target's own answers: echo reply, port unreachable, SYN-ACK and RST. */
static void test_round_trip_reached(void **state) {
  (void)state;
  static const int fams[] = {AF_INET, AF_INET6};
  uint8_t probe[256], pkt[512];
  md_reply r;
  uint16_t got;

  for (size_t f = 0; f < 2; f++) {
    int fam = fams[f];
    bool v4 = fam == AF_INET;
    const char *dst = v4 ? DST4 : DST6;
    for (int paris = 0; paris <= 1; paris++) {
      /* Echo reply: the probe with the type changed, from the target. */
      md_probe_spec s = mkspec(MD_PROTO_ICMP, fam, paris);
      int len = md_probe_build(&s, 0x2222, probe, sizeof probe);
      size_t off = v4 ? 20 : 0;
      memset(pkt, 0, off);
      if (v4) {
        pkt[0] = 0x45;
        wr16(pkt + 2, (uint16_t)(20 + len));
        pkt[9] = 1;
        memcpy(pkt + 12, abytes(&s.dst), 4);
        memcpy(pkt + 16, abytes(&s.src), 4);
      }
      memcpy(pkt + off, probe, (size_t)len);
      pkt[off] = v4 ? 0 : 129;
      assert_int_equal(parse(fam, icmp_sock(fam), pkt, off + (size_t)len, dst, &r), 0);
      assert_int_equal(r.kind, MD_REPLY_ECHO);
      assert_addr(&r.from, dst);
      assert_addr(&r.probe_dst, dst);
      assert_addr(&r.probe_src, v4 ? SRC4 : SRC6);
      assert_true(md_probe_match(&s, &r, &got));
      assert_int_equal(got, 0x2222);

      /* UDP port unreachable from the target. */
      s = mkspec(MD_PROTO_UDP, fam, paris);
      len = md_probe_build(&s, 0x3333, probe, sizeof probe);
      size_t n = wrap_error(&s, v4 ? 3 : 1, v4 ? 3 : 4, dst, probe, (size_t)len, 8, pkt);
      assert_int_equal(parse(fam, icmp_sock(fam), pkt, n, dst, &r), 0);
      assert_int_equal(r.kind, MD_REPLY_UNREACH);
      assert_int_equal(r.icmp_code, v4 ? 3 : 4);
      assert_addr(&r.from, dst);
      assert_true(md_probe_match(&s, &r, &got));
      assert_int_equal(got, 0x3333);

      /* SYN-ACK, then RST-ACK, answering a SYN. */
      s = mkspec(MD_PROTO_TCP, fam, paris);
      len = md_probe_build(&s, 0x4444, probe, sizeof probe);
      assert_int_equal(len, 20);
      for (int rst = 0; rst <= 1; rst++) {
        uint8_t seg[20] = {0};
        memcpy(seg, probe + 2, 2); /* ports swapped */
        memcpy(seg + 2, probe, 2);
        uint32_t ack = ((uint32_t)rd16(probe + 4) << 16 | rd16(probe + 6)) + 1;
        wr16(seg + 8, (uint16_t)(ack >> 16));
        wr16(seg + 10, (uint16_t)ack);
        seg[12] = 0x50;
        seg[13] = rst ? 0x14 : 0x12;
        memset(pkt, 0, 20);
        if (v4) {
          pkt[0] = 0x45;
          wr16(pkt + 2, 40);
          pkt[9] = 6;
          memcpy(pkt + 12, abytes(&s.dst), 4);
          memcpy(pkt + 16, abytes(&s.src), 4);
        }
        memcpy(pkt + off, seg, 20);
        assert_int_equal(parse(fam, IPPROTO_TCP, pkt, off + 20, dst, &r), 0);
        assert_int_equal(r.kind, MD_REPLY_TCP);
        assert_addr(&r.from, dst);
        assert_addr(&r.probe_dst, dst);
        assert_addr(&r.probe_src, v4 ? SRC4 : SRC6);
        assert_int_equal(r.sport, rd16(probe));
        assert_int_equal(r.dport, TCP_PORT);
        assert_true(md_probe_match(&s, &r, &got));
        assert_int_equal(got, 0x4444);
      }
    }
  }
}

/* --- Fixtures parsed -------------------------------------------------------- */

static void assert_two_labels(const md_reply *r) {
  assert_int_equal(r->n_mpls, 2);
  assert_int_equal(r->mpls[0].label, 16);
  assert_int_equal(r->mpls[0].tc, 0);
  assert_int_equal(r->mpls[0].s, 0);
  assert_int_equal(r->mpls[0].ttl, 1);
  assert_int_equal(r->mpls[1].label, 299792);
  assert_int_equal(r->mpls[1].tc, 5);
  assert_int_equal(r->mpls[1].s, 1);
  assert_int_equal(r->mpls[1].ttl, 254);
}

static void test_mpls_rfc4884(void **state) {
  (void)state;
  uint8_t pkt[172];
  md_reply r;
  uint16_t got;
  size_t n = te4_mpls(pkt, 32);
  assert_int_equal(ref_sum(mpls_ext, sizeof mpls_ext), 0xffff); /* the fixture is right */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, pkt, n, "192.0.2.99", &r), 0);
  assert_int_equal(r.kind, MD_REPLY_TIME_EXCEEDED);
  assert_addr(&r.from, HOP4); /* from the IP header, not recvmsg's */
  assert_addr(&r.probe_src, SRC4);
  assert_addr(&r.probe_dst, DST4);
  assert_int_equal(r.proto, MD_PROTO_UDP);
  assert_int_equal(r.sport, IDENT);
  assert_int_equal(r.dport, UDP_PORT);
  assert_int_equal(r.udp_csum, 7);
  assert_two_labels(&r);
  md_probe_spec s = mkspec(MD_PROTO_UDP, AF_INET, true);
  assert_true(md_probe_match(&s, &r, &got));
  assert_int_equal(got, 7);

  /* Compliant length, checksum not verified there: a zero one is fine too. */
  pkt[156 + 2] = 0;
  pkt[156 + 3] = 0;
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, pkt, n, HOP4, &r), 0);
  assert_two_labels(&r);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, pkt, n, false);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, pkt, n, true);
}

static void test_mpls_non_compliant_128(void **state) {
  (void)state;
  uint8_t pkt[172];
  md_reply r;
  size_t n = te4_mpls(pkt, 0);
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, pkt, n, HOP4, &r), 0);
  assert_int_equal(r.udp_csum, 7);
  assert_two_labels(&r);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, pkt, n, true);

  /* A guessed extension whose checksum fails is quoted data, not labels. */
  pkt[156 + 3] ^= 1;
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, pkt, n, HOP4, &r), 0);
  assert_int_equal(r.n_mpls, 0);
  /* Nor is anything that is not version 2. */
  te4_mpls(pkt, 0);
  pkt[156] = 0x10;
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, pkt, n, HOP4, &r), 0);
  assert_int_equal(r.n_mpls, 0);
}

/* IPv6: length in 64-bit words at byte 4; and objects that lie. */
static void test_mpls_v6_and_bad_objects(void **state) {
  (void)state;
  uint8_t pkt[8 + 128 + 64];
  md_reply r;
  memset(pkt, 0, sizeof pkt);
  memcpy(pkt, te6_udp, sizeof te6_udp);
  pkt[4] = 16;
  memcpy(pkt + 8 + 128, mpls_ext, sizeof mpls_ext);
  size_t n = 8 + 128 + sizeof mpls_ext;
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, pkt, n, HOP6, &r), 0);
  assert_int_equal(r.udp_csum, 5);
  assert_two_labels(&r);
  check_prefixes(AF_INET6, IPPROTO_ICMPV6, false, pkt, n, false);

  /* A second object of another class, then a third MPLS one: kept in order. */
  static const uint8_t more[] = {0x00, 0x08, 0x02, 0x01, 0xaa, 0xbb, 0xcc, 0xdd,
                                 0x00, 0x08, 0x01, 0x01, 0x00, 0x02, 0x01, 0x40};
  memcpy(pkt + n, more, sizeof more);
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, pkt, n + sizeof more, HOP6, &r), 0);
  assert_int_equal(r.n_mpls, 3);
  assert_int_equal(r.mpls[2].label, 32);
  assert_int_equal(r.mpls[2].s, 1);
  assert_int_equal(r.mpls[2].ttl, 0x40);

  /* An object longer than the packet ends the walk, labels before it stay. */
  pkt[n + 9] = 0xff;
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, pkt, n + sizeof more, HOP6, &r), 0);
  assert_int_equal(r.n_mpls, 2);
  /* An object shorter than its header too. */
  pkt[136 + 5] = 2;
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, pkt, n, HOP6, &r), 0);
  assert_int_equal(r.n_mpls, 0);

  /* A stack longer than MD_MAX_MPLS is cut there. */
  memset(pkt + 136, 0, sizeof pkt - 136);
  pkt[136] = 0x20;
  size_t olen = 4 + 4 * (MD_MAX_MPLS + 4);
  pkt[136 + 4] = 0;
  pkt[136 + 5] = (uint8_t)olen;
  pkt[136 + 6] = 1;
  pkt[136 + 7] = 1;
  for (int i = 0; i < MD_MAX_MPLS + 4; i++)
    pkt[136 + 8 + 4 * i + 3] = (uint8_t)(i + 1);
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, pkt, 136 + 4 + olen, HOP6, &r), 0);
  assert_int_equal(r.n_mpls, MD_MAX_MPLS);
  assert_int_equal(r.mpls[MD_MAX_MPLS - 1].ttl, MD_MAX_MPLS);

  /* A length beyond the packet: no extensions, the quote still counts. */
  pkt[4] = 200;
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, pkt, 136 + 4 + olen, HOP6, &r), 0);
  assert_int_equal(r.n_mpls, 0);
  assert_int_equal(r.udp_csum, 5);
}

static void test_v6_time_exceeded_udp(void **state) {
  (void)state;
  md_reply r;
  uint16_t got;
  md_addr from = mkaddr(HOP6);
  from.in6.sin6_port = htons(58); /* whatever recvmsg says, the port is dropped */
  from.in6.sin6_scope_id = 3;
  assert_int_equal(
      md_reply_parse(AF_INET6, IPPROTO_ICMPV6, false, te6_udp, sizeof te6_udp, &from, NULL, &r), 0);
  assert_int_equal(r.kind, MD_REPLY_TIME_EXCEEDED);
  assert_int_equal(r.icmp_type, 3);
  assert_addr(&r.from, HOP6);
  assert_int_equal(r.from.in6.sin6_port, 0);
  assert_int_equal(r.from.in6.sin6_scope_id, 3);
  assert_addr(&r.probe_src, SRC6);
  assert_addr(&r.probe_dst, DST6);
  assert_int_equal(r.proto, MD_PROTO_UDP);
  assert_int_equal(r.sport, IDENT);
  assert_int_equal(r.dport, UDP_PORT);
  assert_int_equal(r.udp_csum, 5);
  md_probe_spec s = mkspec(MD_PROTO_UDP, AF_INET6, true);
  assert_true(md_probe_match(&s, &r, &got));
  assert_int_equal(got, 5);
  s.paris = false; /* classic reads the sport: 0 from the ident, never a probe */
  assert_false(md_probe_match(&s, &r, &got));
  check_prefixes(AF_INET6, IPPROTO_ICMPV6, false, te6_udp, sizeof te6_udp, false);
}

/* IPv6 raw sockets deliver no header, but one given is read like v4's. */
static void test_v6_with_ip_header(void **state) {
  (void)state;
  uint8_t pkt[40 + sizeof te6_udp + 8];
  md_reply r;
  md_addr hop = mkaddr(HOP6), me = mkaddr(SRC6), other = mkaddr("2001:db8::99");
  memset(pkt, 0, sizeof pkt);
  pkt[0] = 0x60;
  wr16(pkt + 4, sizeof te6_udp);
  pkt[6] = 58;
  pkt[7] = 64;
  memcpy(pkt + 8, abytes(&hop), 16);
  memcpy(pkt + 24, abytes(&me), 16);
  memcpy(pkt + 40, te6_udp, sizeof te6_udp);
  size_t n = 40 + sizeof te6_udp;
  assert_int_equal(md_reply_parse(AF_INET6, IPPROTO_ICMPV6, true, pkt, n + 8, &other, &other, &r),
                   0);
  assert_addr(&r.from, HOP6);
  assert_int_equal(r.udp_csum, 5);
  check_prefixes(AF_INET6, IPPROTO_ICMPV6, true, pkt, n, false);
  check_prefixes(AF_INET6, IPPROTO_ICMPV6, true, pkt, n, true);
  pkt[5] -= 9; /* payload length cutting into the quoted UDP header */
  assert_int_equal(md_reply_parse(AF_INET6, IPPROTO_ICMPV6, true, pkt, n, &other, &other, &r),
                   -EINVAL);
  pkt[5] += 9;
  pkt[6] = 0; /* a hop-by-hop header: not for us */
  assert_int_equal(md_reply_parse(AF_INET6, IPPROTO_ICMPV6, true, pkt, n, &other, &other, &r),
                   -ENOMSG);
  pkt[6] = 58;
  pkt[0] = 0x40;
  assert_int_equal(md_reply_parse(AF_INET6, IPPROTO_ICMPV6, true, pkt, n, &other, &other, &r),
                   -EINVAL);
}

static void test_quoted_tcp(void **state) {
  (void)state;
  md_reply r;
  uint16_t got;
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, unreach4_tcp, sizeof unreach4_tcp, HOP4, &r), 0);
  assert_int_equal(r.kind, MD_REPLY_UNREACH);
  assert_int_equal(r.icmp_type, 3);
  assert_int_equal(r.icmp_code, 13);
  assert_addr(&r.from, "198.18.5.5");
  assert_int_equal(r.proto, MD_PROTO_TCP);
  assert_int_equal(r.sport, IDENT);
  assert_int_equal(r.dport, TCP_PORT);
  assert_int_equal(r.tcp_seq, 0x4d440007);
  md_probe_spec s = mkspec(MD_PROTO_TCP, AF_INET, true);
  assert_true(md_probe_match(&s, &r, &got));
  assert_int_equal(got, 7);
  s.paris = false; /* classic: sport - ident is 0, disagreeing with the seq */
  assert_false(md_probe_match(&s, &r, &got));
  check_prefixes(AF_INET, IPPROTO_ICMP, true, unreach4_tcp, sizeof unreach4_tcp, true);
}

static void test_direct_tcp(void **state) {
  (void)state;
  md_reply r;
  uint16_t got;
  md_probe_spec s = mkspec(MD_PROTO_TCP, AF_INET, true);
  assert_int_equal(parse(AF_INET, IPPROTO_TCP, synack4, sizeof synack4, "192.0.2.1", &r), 0);
  assert_int_equal(r.kind, MD_REPLY_TCP);
  assert_addr(&r.from, DST4);
  assert_addr(&r.probe_dst, DST4);
  assert_addr(&r.probe_src, SRC4);
  assert_int_equal(r.sport, IDENT);
  assert_int_equal(r.dport, TCP_PORT);
  assert_int_equal(r.tcp_seq, 0x4d440007);
  assert_true(md_probe_match(&s, &r, &got));
  assert_int_equal(got, 7);
  check_prefixes(AF_INET, IPPROTO_TCP, true, synack4, sizeof synack4, true);

  md_addr from = mkaddr(DST6), to = mkaddr(SRC6);
  s = mkspec(MD_PROTO_TCP, AF_INET6, true);
  assert_int_equal(
      md_reply_parse(AF_INET6, IPPROTO_TCP, false, rstack6, sizeof rstack6, &from, &to, &r), 0);
  assert_int_equal(r.kind, MD_REPLY_TCP);
  assert_addr(&r.from, DST6);
  assert_addr(&r.probe_src, SRC6);
  assert_int_equal(r.tcp_seq, 0x4d440009);
  assert_true(md_probe_match(&s, &r, &got));
  assert_int_equal(got, 9);
  check_prefixes(AF_INET6, IPPROTO_TCP, false, rstack6, sizeof rstack6, false);

  /* Without `to` the local side is unknown, but the reply still matches. */
  assert_int_equal(
      md_reply_parse(AF_INET6, IPPROTO_TCP, false, rstack6, sizeof rstack6, &from, NULL, &r), 0);
  assert_int_equal(r.probe_src.sa.sa_family, AF_UNSPEC);
  assert_true(md_probe_match(&s, &r, &got));
}

/* --- Not replies, malformed --------------------------------------------------- */

static void test_not_replies(void **state) {
  (void)state;
  md_reply r;
  uint8_t b[64];
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, echo_req4, sizeof echo_req4, SRC4, &r), -ENOMSG);
  assert_int_equal(r.kind, 0); /* nothing half-filled */
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, echo_req6, sizeof echo_req6, SRC6, &r), -ENOMSG);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, echo_req4, sizeof echo_req4, true);

  /* Neighbour solicitation, redirect: no replies either. */
  memcpy(b, echo_req6, sizeof echo_req6);
  b[0] = 135;
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, b, 8, HOP6, &r), -ENOMSG);
  memcpy(b, echo_req4, sizeof echo_req4);
  b[20] = 5;
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof echo_req4, HOP4, &r), -ENOMSG);

  /* TCP: a bare SYN, a bare ACK, a RST without ACK, SYN+RST. */
  static const uint8_t flags[] = {0x02, 0x10, 0x04, 0x16, 0x11, 0x00};
  for (size_t i = 0; i < sizeof flags; i++) {
    memcpy(b, synack4, sizeof synack4);
    b[33] = flags[i];
    assert_int_equal(parse(AF_INET, IPPROTO_TCP, b, sizeof synack4, DST4, &r), -ENOMSG);
  }
  /* An ICMP error quoting something we never send. */
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[28 + 9] = 47; /* GRE */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -ENOMSG);
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[28 + 9] = 1; /* ICMP, but the "echo request" byte is 0x4d */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -ENOMSG);
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[28 + 7] = 0x10; /* a quoted later fragment */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -ENOMSG);
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[9] = 6; /* outer protocol not the socket's */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -ENOMSG);
}

static void test_malformed(void **state) {
  (void)state;
  md_reply r;
  uint8_t b[64];
  md_addr hop = mkaddr(HOP4);

  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[0] = 0x44; /* IHL 4 */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -EINVAL);
  b[0] = 0x65; /* version 6 */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -EINVAL);
  b[0] = 0x4f; /* IHL beyond the packet */
  uint8_t *exact = malloc(40);
  assert_non_null(exact);
  memcpy(exact, b, 40);
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, exact, 40, HOP4, &r), -EINVAL);
  free(exact);

  /* IP options (IHL 6) are skipped, in the outer header and in the quote. */
  uint8_t opt[sizeof unreach4_tcp + 8];
  memcpy(opt, unreach4_tcp, 20);
  memset(opt + 20, 1, 4); /* NOPs */
  memcpy(opt + 24, unreach4_tcp + 20, 28);
  memset(opt + 52, 1, 4);
  memcpy(opt + 56, unreach4_tcp + 48, 8);
  opt[0] = 0x46;
  opt[3] = sizeof opt;
  opt[24 + 8] = 0x46;
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, opt, sizeof opt, HOP4, &r), 0);
  assert_int_equal(r.tcp_seq, 0x4d440007);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, opt, sizeof opt, false);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, opt, sizeof opt, true);
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[3] = 0x13; /* total length shorter than the IP header */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -EINVAL);
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[28] = 0x46; /* quoted IHL 6: the 8 transport bytes no longer fit */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -EINVAL);
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  b[25] = 3; /* RFC 4884 length 12 bytes: shorter than the quoted header */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp, HOP4, &r), -EINVAL);

  /* Trailing bytes beyond the IP total length are ignored. */
  memcpy(b, unreach4_tcp, sizeof unreach4_tcp);
  memset(b + sizeof unreach4_tcp, 0xee, 8);
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, b, sizeof unreach4_tcp + 8, HOP4, &r), 0);

  /* Arguments. */
  assert_int_equal(md_reply_parse(AF_INET, IPPROTO_UDP, true, b, 56, &hop, NULL, &r), -EINVAL);
  assert_int_equal(md_reply_parse(AF_INET, IPPROTO_ICMPV6, true, b, 56, &hop, NULL, &r), -EINVAL);
  assert_int_equal(md_reply_parse(AF_INET6, IPPROTO_ICMP, false, b, 56, &hop, NULL, &r), -EINVAL);
  assert_int_equal(md_reply_parse(AF_UNIX, IPPROTO_TCP, false, b, 56, &hop, NULL, &r), -EINVAL);
  assert_int_equal(md_reply_parse(AF_INET, IPPROTO_ICMP, true, NULL, 0, &hop, NULL, &r), -EINVAL);
  assert_int_equal(md_reply_parse(AF_INET, IPPROTO_ICMP, true, b, 56, &hop, NULL, NULL), -EINVAL);

  /* TCP data offset below 5 or beyond the segment. */
  memcpy(b, rstack6, sizeof rstack6);
  b[12] = 0x40;
  assert_int_equal(parse(AF_INET6, IPPROTO_TCP, b, sizeof rstack6, DST6, &r), -EINVAL);
  b[12] = 0x60;
  assert_int_equal(parse(AF_INET6, IPPROTO_TCP, b, sizeof rstack6, DST6, &r), -EINVAL);

  /* A v6 error quoting a v4 header. */
  memcpy(b, te6_udp, sizeof te6_udp);
  b[8] = 0x45;
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, b, sizeof te6_udp, HOP6, &r), -EINVAL);
}

/* A reply longer than the receive buffer (the echo reply to a jumbo probe)
 * is read as far as it was received. */
static void test_cut_by_receive_buffer(void **state) {
  (void)state;
  static uint8_t pkt[20 + 9000];
  md_reply r;
  uint16_t got;
  md_probe_spec s = mkspec(MD_PROTO_ICMP, AF_INET, true);
  s.psize = 9000;
  assert_int_equal(md_probe_build(&s, 42, pkt + 20, sizeof pkt - 20), 8980);
  memset(pkt, 0, 20);
  pkt[0] = 0x45;
  wr16(pkt + 2, 9000);
  pkt[9] = 1;
  memcpy(pkt + 12, abytes(&s.dst), 4);
  memcpy(pkt + 16, abytes(&s.src), 4);
  pkt[20] = 0; /* echo reply */
  assert_int_equal(parse(AF_INET, IPPROTO_ICMP, pkt, 2048, DST4, &r), 0);
  assert_int_equal(r.kind, MD_REPLY_ECHO);
  assert_true(md_probe_match(&s, &r, &got));
  assert_int_equal(got, 42);
  check_prefixes(AF_INET, IPPROTO_ICMP, true, pkt, 64, false);
}

/* Every built probe wrapped into an error survives every prefix. */
static void test_prefixes_of_round_trips(void **state) {
  (void)state;
  static const int fams[] = {AF_INET, AF_INET6};
  static const md_proto protos[] = {MD_PROTO_ICMP, MD_PROTO_UDP, MD_PROTO_TCP};
  uint8_t probe[256], pkt[512];
  for (size_t f = 0; f < 2; f++) {
    for (size_t p = 0; p < 3; p++) {
      md_probe_spec s = mkspec(protos[p], fams[f], true);
      int len = md_probe_build(&s, 0x0506, probe, sizeof probe);
      size_t n = wrap_error(&s, fams[f] == AF_INET ? 11 : 3, 0, fams[f] == AF_INET ? HOP4 : HOP6,
                            probe, (size_t)len, 2000, pkt);
      check_prefixes(fams[f], icmp_sock(fams[f]), fams[f] == AF_INET, pkt, n, true);
    }
  }
}

/* Match against a reply it cannot be for. */
static void test_match_edges(void **state) {
  (void)state;
  md_reply r;
  uint16_t got = 0;
  md_probe_spec s = mkspec(MD_PROTO_UDP, AF_INET6, true);
  assert_int_equal(parse(AF_INET6, IPPROTO_ICMPV6, te6_udp, sizeof te6_udp, HOP6, &r), 0);
  assert_false(md_probe_match(NULL, &r, &got));
  assert_false(md_probe_match(&s, NULL, &got));
  assert_true(md_probe_match(&s, &r, NULL));
  r.udp_csum = 0; /* "no checksum" is no seq */
  assert_false(md_probe_match(&s, &r, &got));
  r.udp_csum = 5;
  r.kind = MD_REPLY_ECHO; /* UDP is never echoed */
  assert_false(md_probe_match(&s, &r, &got));
  s.dst = mkaddr(DST4);
  r.kind = MD_REPLY_TIME_EXCEEDED;
  assert_false(md_probe_match(&s, &r, &got));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checksum_rfc1071),
      cmocka_unit_test(test_proto_names),
      cmocka_unit_test(test_build_sizes),
      cmocka_unit_test(test_build_fields),
      cmocka_unit_test(test_paris_icmp_constant),
      cmocka_unit_test(test_paris_udp_checksum_is_seq),
      cmocka_unit_test(test_round_trip_time_exceeded),
      cmocka_unit_test(test_round_trip_reached),
      cmocka_unit_test(test_mpls_rfc4884),
      cmocka_unit_test(test_mpls_non_compliant_128),
      cmocka_unit_test(test_mpls_v6_and_bad_objects),
      cmocka_unit_test(test_v6_time_exceeded_udp),
      cmocka_unit_test(test_v6_with_ip_header),
      cmocka_unit_test(test_quoted_tcp),
      cmocka_unit_test(test_direct_tcp),
      cmocka_unit_test(test_not_replies),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_cut_by_receive_buffer),
      cmocka_unit_test(test_prefixes_of_round_trips),
      cmocka_unit_test(test_match_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
