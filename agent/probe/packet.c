/* packet: probe packets out, replies in, as pure functions over bytes.
 *
 * Every field is read and written byte by byte in network order, so no
 * structure is ever laid over a buffer (no alignment or aliasing concerns)
 * and every read is preceded by a length check.
 *
 * Encodings (see packet.h), with the decisions packet.h leaves open:
 *   - The payload is zero bytes, except 2 "adjust" bytes at transport offset 8
 *     (ICMP and UDP), which is an even offset, so they form one checksum word.
 *   - Paris ICMP: adjust = ~seq. seq + ~seq is 0xffff, a one's complement
 *     zero, so the checksum is ~(type/code + id + pseudo-header) for every seq
 *     of a trace. It does not depend on the checksum we write, so it also
 *     holds where the kernel computes it (raw ICMPv6, ping sockets).
 *   - Paris UDP: the checksum field is seq. adjust is chosen so that the sum
 *     over pseudo-header, header and payload is ~seq; seq 0xffff works through
 *     RFC 768's rule (a computed 0 is sent as 0xffff). seq 0 is never built
 *     (-EINVAL): in IPv4 it would mean "no checksum".
 *   - TCP: a bare 20-byte SYN, psize is not used. A reset acknowledges the SYN
 *     plus any data it carried (RFC 9293 3.10.7.1), so with data "ack - 1"
 *     would no longer give back our sequence number.
 *   - The UDP and TCP checksums are always ours; the kernel computes none of
 *     them on raw sockets (do not set IPV6_CHECKSUM on the v6 UDP socket). */
#include "packet.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define IP4_HLEN 20
#define IP6_HLEN 40
#define ICMP_HLEN 8
#define UDP_HLEN 8
#define TCP_HLEN 20
#define ADJUST_LEN 2           /* payload bytes Paris probes adjust */
#define TCP_WINDOW 64240       /* what Linux offers in a SYN on Ethernet */
#define RFC4884_COMPAT_LEN 128 /* where pre-RFC 4884 routers put extensions */

/* ICMP types, spelled out here: <netinet/ip_icmp.h> defines `icmp_seq` as a
 * macro, which would rename md_reply's field. */
#define ICMP4_ECHO_REPLY 0
#define ICMP4_DEST_UNREACH 3
#define ICMP4_ECHO_REQUEST 8
#define ICMP4_TIME_EXCEEDED 11
#define ICMP6_DEST_UNREACH 1
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* --- Protocol names ----------------------------------------------------- */

/* The names the CLI, the config and the report use. */
const char *md_proto_name(md_proto p) {
  switch (p) {
  case MD_PROTO_ICMP:
    return "icmp";
  case MD_PROTO_UDP:
    return "udp";
  case MD_PROTO_TCP:
    return "tcp";
  }
  return "unknown";
}

/* The inverse of md_proto_name, for options and config values. */
int md_proto_parse(const char *s, md_proto *out) {
  static const md_proto all[] = {MD_PROTO_ICMP, MD_PROTO_UDP, MD_PROTO_TCP};
  if (s == NULL || out == NULL)
    return -EINVAL;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (strcasecmp(s, md_proto_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  }
  return -EINVAL;
}

/* --- Bytes and checksums ------------------------------------------------ */

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v) {
  wr16(p, (uint16_t)(v >> 16));
  wr16(p + 2, (uint16_t)v);
}

/* Add the bytes as big-endian 16-bit words to a running sum (an odd last
 * byte is the high half of a word). The sum is folded only at the end. */
static uint64_t sum_words(const uint8_t *p, size_t len, uint64_t acc) {
  size_t i;
  for (i = 0; i + 1 < len; i += 2)
    acc += rd16(p + i);
  if (i < len)
    acc += (uint64_t)p[i] << 8;
  return acc;
}

/* Fold a running sum into 16 bits with end-around carry. A non-zero sum
 * folds to 1..0xffff, never to 0: the checksum tricks below rely on it. */
static uint16_t fold(uint64_t acc) {
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

/* RFC 1071. `initial` is a running sum (a pseudo-header's) in the same
 * arithmetic; the result is in host order, to be stored big-endian. */
uint16_t md_inet_checksum(const void *data, size_t len, uint32_t initial) {
  return (uint16_t)~fold(sum_words(data, len, initial));
}

/* --- Addresses ------------------------------------------------------------ */

static const uint8_t zero_addr[16];

/* The raw bytes of an address of `family`; zeros for a missing one. */
static const uint8_t *addr_bytes(const md_addr *a, int family) {
  if (a == NULL || a->sa.sa_family != family)
    return zero_addr;
  if (family == AF_INET)
    return (const uint8_t *)&a->in4.sin_addr;
  return (const uint8_t *)&a->in6.sin6_addr;
}

/* Store address bytes found in a packet (port 0, no scope). */
static void set_addr(md_addr *a, int family, const uint8_t *bytes) {
  memset(a, 0, sizeof *a);
  if (family == AF_INET) {
    a->in4.sin_family = AF_INET;
    memcpy(&a->in4.sin_addr, bytes, 4);
  } else {
    a->in6.sin6_family = AF_INET6;
    memcpy(&a->in6.sin6_addr, bytes, 16);
  }
}

/* Copy an address recvmsg() gave us, keeping the v6 scope, dropping the port. */
static void copy_addr(md_addr *dst, const md_addr *src) {
  memset(dst, 0, sizeof *dst);
  if (src == NULL)
    return;
  if (src->sa.sa_family == AF_INET) {
    dst->in4 = src->in4;
    dst->in4.sin_port = 0;
  } else if (src->sa.sa_family == AF_INET6) {
    dst->in6 = src->in6;
    dst->in6.sin6_port = 0;
  }
}

/* Same family and same address bytes; the scope is not compared, since
 * addresses read from packets carry none. */
static bool addr_same(const md_addr *a, const md_addr *b) {
  if (a->sa.sa_family != b->sa.sa_family)
    return false;
  if (a->sa.sa_family == AF_INET)
    return memcmp(&a->in4.sin_addr, &b->in4.sin_addr, 4) == 0;
  if (a->sa.sa_family == AF_INET6)
    return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
  return false;
}

/* --- Building probes ---------------------------------------------------- */

/* The kernel adds the IP header; psize counts it, so the engine and
 * probe_len need its size. Options are never sent. */
int md_ip_header_len(int family) {
  if (family == AF_INET)
    return IP4_HLEN;
  if (family == AF_INET6)
    return IP6_HLEN;
  return -EINVAL;
}

/* Running sum of the UDP/TCP/ICMPv6 pseudo-header (RFC 768, RFC 8200 8.1). */
static uint32_t pseudo_sum(int family, const md_probe_spec *spec, uint8_t proto, size_t len) {
  size_t alen = family == AF_INET ? 4 : 16;
  uint64_t acc = sum_words(addr_bytes(&spec->src, family), alen, 0);
  acc = sum_words(addr_bytes(&spec->dst, family), alen, acc);
  acc += proto + (len >> 16) + (len & 0xffff);
  return fold(acc);
}

/* Transport length of one probe: psize less the IP header, raised to the
 * smallest probe that carries the adjust bytes; -EINVAL when too big for IP. */
static int probe_len(const md_probe_spec *spec, int family) {
  long want = (long)spec->psize - md_ip_header_len(family);
  long max = family == AF_INET ? 65535 - IP4_HLEN : 65535;
  long min = (spec->proto == MD_PROTO_ICMP ? ICMP_HLEN : UDP_HLEN) + ADJUST_LEN;

  if (spec->proto == MD_PROTO_TCP)
    return TCP_HLEN;
  if (want < min)
    want = min;
  if (want > max)
    return -EINVAL;
  return (int)want;
}

/* Echo request: id = ident, sequence = seq; Paris keeps the checksum fixed. */
static void build_icmp(const md_probe_spec *spec, int family, uint16_t seq, uint8_t *p,
                       size_t len) {
  uint32_t initial = 0;

  p[0] = family == AF_INET ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST;
  p[1] = 0;
  wr16(p + 4, spec->ident);
  wr16(p + 6, seq);
  if (spec->paris)
    wr16(p + 8, (uint16_t)~seq);
  if (family == AF_INET6)
    initial = pseudo_sum(family, spec, IPPROTO_ICMPV6, len);
  wr16(p + 2, md_inet_checksum(p, len, initial));
}

/* UDP: Paris puts seq in the checksum field and makes it the true checksum
 * by choosing the adjust word; classic varies the source port. */
static void build_udp(const md_probe_spec *spec, int family, uint16_t seq, uint8_t *p, size_t len) {
  uint32_t initial = pseudo_sum(family, spec, IPPROTO_UDP, len);

  wr16(p, spec->paris ? spec->ident : (uint16_t)(spec->ident + seq));
  wr16(p + 2, spec->port);
  wr16(p + 4, (uint16_t)len);
  if (spec->paris) {
    /* Want sum(everything but the checksum) == ~seq, so that the checksum
     * ~sum is seq. For seq 0xffff that is 0, which a non-zero sum cannot
     * fold to; aim at 0xffff instead, whose checksum 0 is sent as 0xffff. */
    uint16_t have = fold(sum_words(p, len, initial));
    uint16_t want = seq == 0xffff ? 0xffff : (uint16_t)~seq;
    wr16(p + 8, fold((uint32_t)want + (uint16_t)~have)); /* want - have */
    wr16(p + 6, seq);
  } else {
    uint16_t csum = md_inet_checksum(p, len, initial);
    wr16(p + 6, csum == 0 ? 0xffff : csum);
  }
}

/* TCP SYN with no options and no data; the sequence number carries ident
 * and seq, and comes back in the acknowledgment of a SYN-ACK or reset. */
static void build_tcp(const md_probe_spec *spec, int family, uint16_t seq, uint8_t *p, size_t len) {
  wr16(p, spec->paris ? spec->ident : (uint16_t)(spec->ident + seq));
  wr16(p + 2, spec->port);
  wr32(p + 4, (uint32_t)spec->ident << 16 | seq);
  p[12] = (TCP_HLEN / 4) << 4;
  p[13] = TCP_SYN;
  wr16(p + 14, TCP_WINDOW);
  wr16(p + 16, md_inet_checksum(p, len, pseudo_sum(family, spec, IPPROTO_TCP, len)));
}

/* Check the spec, size the probe and hand it to the builder of its protocol. */
int md_probe_build(const md_probe_spec *spec, uint16_t seq, uint8_t *buf, size_t buflen) {
  if (spec == NULL || seq == 0)
    return -EINVAL;
  int family = spec->dst.sa.sa_family;
  if (family != AF_INET && family != AF_INET6)
    return -EINVAL;
  /* UDP and TCP checksums cover the source address: it must be known.
   * ICMPv4 has no pseudo-header, and the kernel fills in ICMPv6's. */
  int src_family = spec->src.sa.sa_family;
  if (src_family != family && (src_family != AF_UNSPEC || spec->proto != MD_PROTO_ICMP))
    return -EINVAL;
  if (spec->proto != MD_PROTO_ICMP && spec->proto != MD_PROTO_UDP && spec->proto != MD_PROTO_TCP)
    return -EINVAL;

  int len = probe_len(spec, family);
  if (len < 0)
    return len;
  if (buf == NULL || buflen < (size_t)len)
    return -ENOSPC;
  memset(buf, 0, (size_t)len);
  if (spec->proto == MD_PROTO_ICMP)
    build_icmp(spec, family, seq, buf, (size_t)len);
  else if (spec->proto == MD_PROTO_UDP)
    build_udp(spec, family, seq, buf, (size_t)len);
  else
    build_tcp(spec, family, seq, buf, (size_t)len);
  return len;
}

/* --- Parsing replies ------------------------------------------------------ */

/* The IP header a raw socket delivers: checks it, records the sender and our
 * address, and narrows the packet to the IP payload. Trailing bytes beyond
 * the IP length are dropped. A packet shorter than its IP length was cut by
 * the receive buffer (the kernel drops short packets before any socket sees
 * them), e.g. the echo reply to a 9000-byte probe: what is there is read. */
static int parse_outer_ip(int family, int sock_proto, const uint8_t **p, size_t *len, md_reply *out,
                          md_addr *local) {
  const uint8_t *ip = *p;
  size_t hlen, total;

  if (family == AF_INET) {
    if (*len < IP4_HLEN || ip[0] >> 4 != 4)
      return -EINVAL;
    hlen = (size_t)(ip[0] & 0x0f) * 4;
    total = rd16(ip + 2);
    if (hlen < IP4_HLEN || total < hlen || hlen > *len)
      return -EINVAL;
    if ((rd16(ip + 6) & 0x1fff) != 0) /* a later fragment: no header of ours */
      return -ENOMSG;
    if (ip[9] != sock_proto)
      return -ENOMSG;
    set_addr(&out->from, AF_INET, ip + 12);
    set_addr(local, AF_INET, ip + 16);
  } else {
    if (*len < IP6_HLEN || ip[0] >> 4 != 6)
      return -EINVAL;
    hlen = IP6_HLEN;
    total = IP6_HLEN + (size_t)rd16(ip + 4);
    if (ip[6] != sock_proto) /* extension headers: the kernel strips them */
      return -ENOMSG;
    set_addr(&out->from, AF_INET6, ip + 8);
    set_addr(local, AF_INET6, ip + 24);
  }
  *p = ip + hlen;
  *len = (total < *len ? total : *len) - hlen;
  return 0;
}

/* One RFC 4950 label stack entry: label 20 bits, TC 3, S 1, TTL 8. */
static void decode_mpls_entry(const uint8_t *e, md_mpls *m) {
  m->label = (uint32_t)e[0] << 12 | (uint32_t)e[1] << 4 | e[2] >> 4;
  m->tc = (e[2] >> 1) & 0x07;
  m->s = e[2] & 0x01;
  m->ttl = e[3];
}

/* Walk the objects of an RFC 4884 extension structure (its 4-byte header
 * already checked) and keep the MPLS label stack entries (class 1, c-type 1).
 * A malformed object ends the walk; what was read before it stays. */
static void parse_extension_objects(const uint8_t *ext, size_t len, md_reply *out) {
  size_t pos = 4;

  while (len - pos >= 4) {
    size_t olen = rd16(ext + pos);
    if (olen < 4 || olen > len - pos)
      return;
    if (ext[pos + 2] == 1 && ext[pos + 3] == 1) {
      for (size_t i = 4; i + 4 <= olen && out->n_mpls < MD_MAX_MPLS; i += 4)
        decode_mpls_entry(ext + pos + i, &out->mpls[out->n_mpls++]);
    }
    pos += olen;
  }
}

/* Is there an extension structure (version 2) at ext? Where it was found by
 * guessing (pre-RFC 4884 routers), a non-zero checksum must also hold, so
 * that quoted bytes are not mistaken for one. */
static bool is_extension(const uint8_t *ext, size_t len, bool guessed) {
  if (len < 4 || ext[0] >> 4 != 2)
    return false;
  if (guessed && rd16(ext + 2) != 0 && md_inet_checksum(ext, len, 0) != 0)
    return false;
  return true;
}

/* The quoted original datagram: our probe's IP header and at least 8 bytes
 * of its transport header, which name the probe. */
static int parse_quoted(int family, const uint8_t *q, size_t len, md_reply *out) {
  const uint8_t *t;
  uint8_t proto, icmp_proto, echo_request;

  if (family == AF_INET) {
    if (len < IP4_HLEN || q[0] >> 4 != 4)
      return -EINVAL;
    size_t hlen = (size_t)(q[0] & 0x0f) * 4;
    if (hlen < IP4_HLEN || len < hlen + 8)
      return -EINVAL;
    if ((rd16(q + 6) & 0x1fff) != 0)
      return -ENOMSG;
    proto = q[9];
    set_addr(&out->probe_src, AF_INET, q + 12);
    set_addr(&out->probe_dst, AF_INET, q + 16);
    t = q + hlen;
    icmp_proto = IPPROTO_ICMP;
    echo_request = ICMP4_ECHO_REQUEST;
  } else {
    if (len < IP6_HLEN + 8 || q[0] >> 4 != 6)
      return -EINVAL;
    proto = q[6];
    set_addr(&out->probe_src, AF_INET6, q + 8);
    set_addr(&out->probe_dst, AF_INET6, q + 24);
    t = q + IP6_HLEN;
    icmp_proto = IPPROTO_ICMPV6;
    echo_request = ICMP6_ECHO_REQUEST;
  }

  if (proto == icmp_proto) {
    if (t[0] != echo_request)
      return -ENOMSG;
    out->proto = MD_PROTO_ICMP;
    out->sport = rd16(t + 4);
    out->icmp_seq = rd16(t + 6);
  } else if (proto == IPPROTO_UDP) {
    out->proto = MD_PROTO_UDP;
    out->sport = rd16(t);
    out->dport = rd16(t + 2);
    out->udp_csum = rd16(t + 6);
  } else if (proto == IPPROTO_TCP) {
    out->proto = MD_PROTO_TCP;
    out->sport = rd16(t);
    out->dport = rd16(t + 2);
    out->tcp_seq = rd32(t + 4);
  } else {
    return -ENOMSG;
  }
  return 0;
}

/* Time exceeded or destination unreachable: the quoted probe, then any
 * RFC 4884 extensions. The "length" field (v4: byte 5, 32-bit words; v6:
 * byte 4, 64-bit words) says where the quote ends; when it is 0, look at
 * offset 128 as mtr does for routers that predate RFC 4884. */
static int parse_icmp_error(int family, const uint8_t *icmp, size_t len, md_reply *out) {
  const uint8_t *body = icmp + ICMP_HLEN;
  size_t blen = len - ICMP_HLEN;
  size_t orig = family == AF_INET ? (size_t)icmp[5] * 4 : (size_t)icmp[4] * 8;
  size_t qlen = blen;
  const uint8_t *ext = NULL;
  size_t elen = 0;

  if (orig != 0 && orig <= blen) {
    qlen = orig;
    if (is_extension(body + orig, blen - orig, false)) {
      ext = body + orig;
      elen = blen - orig;
    }
  } else if (orig == 0 && blen > RFC4884_COMPAT_LEN &&
             is_extension(body + RFC4884_COMPAT_LEN, blen - RFC4884_COMPAT_LEN, true)) {
    qlen = RFC4884_COMPAT_LEN;
    ext = body + RFC4884_COMPAT_LEN;
    elen = blen - RFC4884_COMPAT_LEN;
  }
  /* A length beyond the packet: a router that got it wrong; no extensions. */

  int rc = parse_quoted(family, body, qlen, out);
  if (rc == 0 && ext != NULL)
    parse_extension_objects(ext, elen, out);
  return rc;
}

/* An ICMP or ICMPv6 message: an echo reply from the target, or an error
 * quoting a probe. Anything else (echo requests, neighbour discovery...)
 * is no reply. */
static int parse_icmp(int family, const uint8_t *p, size_t len, const md_addr *local,
                      md_reply *out) {
  if (len < ICMP_HLEN)
    return -EINVAL;
  out->icmp_type = p[0];
  out->icmp_code = p[1];

  bool v4 = family == AF_INET;
  if (p[0] == (v4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY)) {
    out->kind = MD_REPLY_ECHO;
    out->proto = MD_PROTO_ICMP;
    out->probe_src = *local;
    out->probe_dst = out->from;
    out->sport = rd16(p + 4);
    out->icmp_seq = rd16(p + 6);
    return 0;
  }
  if (p[0] == (v4 ? ICMP4_TIME_EXCEEDED : ICMP6_TIME_EXCEEDED))
    out->kind = MD_REPLY_TIME_EXCEEDED;
  else if (p[0] == (v4 ? ICMP4_DEST_UNREACH : ICMP6_DEST_UNREACH))
    out->kind = MD_REPLY_UNREACH;
  else
    return -ENOMSG;
  return parse_icmp_error(family, p, len, out);
}

/* A SYN-ACK or a reset from the target, answering our SYN: its ports are
 * ours swapped and it acknowledges our sequence number + 1. */
static int parse_tcp(const uint8_t *p, size_t len, const md_addr *local, md_reply *out) {
  if (len < TCP_HLEN)
    return -EINVAL;
  size_t doff = (size_t)(p[12] >> 4) * 4;
  if (doff < TCP_HLEN || doff > len)
    return -EINVAL;
  uint8_t flags = p[13] & (TCP_SYN | TCP_RST | TCP_ACK | TCP_FIN);
  if (flags != (TCP_SYN | TCP_ACK) && flags != (TCP_RST | TCP_ACK))
    return -ENOMSG;

  out->kind = MD_REPLY_TCP;
  out->icmp_type = -1; /* no ICMP involved */
  out->icmp_code = -1;
  out->proto = MD_PROTO_TCP;
  out->probe_src = *local;
  out->probe_dst = out->from;
  out->sport = rd16(p + 2);
  out->dport = rd16(p);
  out->tcp_seq = rd32(p + 8) - 1;
  return 0;
}

/* Entry point of the receive side: peel the IP header where the socket
 * delivers one, then read the ICMP message or the TCP segment. */
int md_reply_parse(int family, int sock_proto, bool has_ip_header, const uint8_t *buf, size_t len,
                   const md_addr *from, const md_addr *to, md_reply *out) {
  md_addr local;

  if (out == NULL)
    return -EINVAL;
  memset(out, 0, sizeof *out);
  memset(&local, 0, sizeof local);
  if (buf == NULL)
    return -EINVAL;
  if (family == AF_INET) {
    if (sock_proto != IPPROTO_ICMP && sock_proto != IPPROTO_TCP)
      return -EINVAL;
  } else if (family == AF_INET6) {
    if (sock_proto != IPPROTO_ICMPV6 && sock_proto != IPPROTO_TCP)
      return -EINVAL;
  } else {
    return -EINVAL;
  }

  const uint8_t *p = buf;
  if (has_ip_header) {
    int rc = parse_outer_ip(family, sock_proto, &p, &len, out, &local);
    if (rc < 0)
      return rc;
  } else {
    copy_addr(&out->from, from);
    copy_addr(&local, to);
  }

  int rc = sock_proto == IPPROTO_TCP ? parse_tcp(p, len, &local, out)
                                     : parse_icmp(family, p, len, &local, out);
  if (rc < 0)
    memset(out, 0, sizeof *out); /* no half-filled replies */
  return rc;
}

/* --- Matching ------------------------------------------------------------- */

/* Undo the encodings of the builders: which probe of this trace, if any,
 * does the reply answer? The probe's source is not compared: the ident,
 * port and destination already tell traces apart. */
bool md_probe_match(const md_probe_spec *spec, const md_reply *r, uint16_t *seq) {
  uint16_t s;

  if (spec == NULL || r == NULL || r->proto != spec->proto)
    return false;
  if (!addr_same(&r->probe_dst, &spec->dst))
    return false;

  switch (spec->proto) {
  case MD_PROTO_ICMP:
    if (r->kind == MD_REPLY_TCP || r->sport != spec->ident)
      return false;
    s = r->icmp_seq;
    break;
  case MD_PROTO_UDP:
    if (r->kind != MD_REPLY_TIME_EXCEEDED && r->kind != MD_REPLY_UNREACH)
      return false;
    if (r->dport != spec->port)
      return false;
    if (spec->paris) {
      if (r->sport != spec->ident)
        return false;
      s = r->udp_csum;
    } else {
      s = (uint16_t)(r->sport - spec->ident);
    }
    break;
  case MD_PROTO_TCP:
    if (r->kind == MD_REPLY_ECHO || r->dport != spec->port || r->tcp_seq >> 16 != spec->ident)
      return false;
    s = (uint16_t)r->tcp_seq;
    if (spec->paris ? r->sport != spec->ident : (uint16_t)(r->sport - spec->ident) != s)
      return false;
    break;
  default:
    return false;
  }
  if (s == 0)
    return false;
  if (seq != NULL)
    *seq = s;
  return true;
}
