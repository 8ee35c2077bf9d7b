/* packet: build probe packets and parse what comes back, as pure functions
 * over byte buffers (no sockets here), so both are testable from fixtures.
 *
 * A probe is identified by a 16-bit sequence number `seq` (never 0), encoded
 * in a field that ICMP errors quote back (the first 8 bytes of the transport
 * header are always quoted):
 *   ICMP  echo id = spec.ident, echo seq = seq. Paris: the checksum is kept
 *         constant across a trace by adjusting 2 payload bytes.
 *   UDP   Paris: sport = spec.ident, dport = spec.port, the UDP checksum = seq
 *         (2 payload bytes adjusted). Classic: sport = spec.ident + seq
 *         (mod 2^16), checksum computed normally.
 *   TCP   SYN; sport = spec.ident, dport = spec.port, TCP seq number =
 *         (spec.ident << 16) | seq. Classic: sport = spec.ident + seq.
 * The IP header is never built here: the kernel adds it, and the TTL and TOS
 * travel as ancillary data of sendmsg(). */
#ifndef MD_PACKET_H
#define MD_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_addr.h"
#include "md_path.h"

typedef enum md_proto { MD_PROTO_ICMP = 0, MD_PROTO_UDP = 1, MD_PROTO_TCP = 2 } md_proto;

const char *md_proto_name(md_proto p);
int md_proto_parse(const char *s, md_proto *out); /* "icmp"|"udp"|"tcp"; 0 or -EINVAL */

/* Everything that stays the same for every probe of one trace. */
typedef struct md_probe_spec {
  md_proto proto;
  md_addr src;    /* source address actually used (needed for checksums) */
  md_addr dst;    /* target */
  uint16_t ident; /* ICMP id, or UDP/TCP source port (base) */
  uint16_t port;  /* UDP/TCP destination port */
  bool paris;     /* constant flow (default) or mtr's classic varying fields */
  int psize;      /* whole IP packet size, like mtr -s; clamped to the minimum */
} md_probe_spec;

/* Size of the IP header the kernel will add (20 for v4, 40 for v6). */
int md_ip_header_len(int family);
/* Build the transport header + payload of probe `seq` into buf.
 * Returns the length written, or -EINVAL / -ENOSPC. */
int md_probe_build(const md_probe_spec *spec, uint16_t seq, uint8_t *buf, size_t buflen);

typedef enum md_reply_kind {
  MD_REPLY_TIME_EXCEEDED = 1, /* from a router on the way */
  MD_REPLY_UNREACH, /* ICMP destination unreachable (port unreachable = reached for UDP) */
  MD_REPLY_ECHO,    /* ICMP echo reply from the target */
  MD_REPLY_TCP,     /* SYN-ACK or RST from the target */
} md_reply_kind;

/* A parsed reply. Quoted fields describe the probe it answers. */
typedef struct md_reply {
  md_reply_kind kind;
  int icmp_type, icmp_code;
  md_addr from;      /* responder: from the IP header where there is one, else as given */
  md_proto proto;    /* protocol of the probe answered */
  md_addr probe_src; /* source of the probe answered (quoted, or our side of the reply) */
  md_addr probe_dst; /* destination of the probe answered */
  uint16_t sport;    /* probe's ICMP id or UDP/TCP source port */
  uint16_t dport;    /* probe's UDP/TCP destination port (0 for ICMP) */
  uint16_t icmp_seq; /* probe's ICMP echo sequence */
  uint16_t udp_csum; /* probe's UDP checksum */
  uint32_t tcp_seq;  /* probe's TCP sequence number (reply ack - 1 for a direct TCP reply) */
  int n_mpls;
  md_mpls mpls[MD_MAX_MPLS]; /* RFC 4950 label stack from RFC 4884 extensions */
} md_reply;

/* Parse one packet read from a raw socket.
 *   family: AF_INET or AF_INET6.
 *   sock_proto: IPPROTO_ICMP / IPPROTO_ICMPV6 / IPPROTO_TCP (which raw socket it came from).
 *   has_ip_header: IPv4 raw sockets deliver the IP header; IPv6 ones and
 *   ping (datagram) sockets do not.
 *   from: the sender as recvmsg() gave it (used when there is no IP header),
 *   to: our address the packet came to, may be NULL (used when there is no IP header).
 * Returns 0, or -ENOMSG for a packet that is no reply to any probe (e.g. an
 * echo request, a TCP segment without SYN-ACK/RST), or -EINVAL for a
 * malformed one. Never reads outside buf[0..len). */
int md_reply_parse(int family, int sock_proto, bool has_ip_header, const uint8_t *buf, size_t len,
                   const md_addr *from, const md_addr *to, md_reply *out);

/* Does the reply answer a probe of this spec? If so, store its seq and
 * return true. Checks protocol, addresses, ports/ids and the encoding above. */
bool md_probe_match(const md_probe_spec *spec, const md_reply *r, uint16_t *seq);

/* Internet checksum helper (RFC 1071), exposed for tests. */
uint16_t md_inet_checksum(const void *data, size_t len, uint32_t initial);

#endif
