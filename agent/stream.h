/* stream: the agent's half of a one-way measurement (docs/protocol.md,
 * "One-way streams"): a paced sender of sequenced, timestamped UDP packets,
 * or the receiver that counts them, on the agent's uv loop.
 *
 *   sender:   one uv_timer; packet i leaves at start + i * interval (the
 *             timer has millisecond resolution: a packet may leave up to
 *             ~1 ms late, its timestamp is taken just before sendto);
 *   receiver: one uv_poll on its UDP socket, recvmmsg in batches, kernel
 *             receive timestamps (SO_TIMESTAMPNS, CLOCK_REALTIME); a bitmap
 *             of count bits (at most MD_STREAM_MAX_COUNT) for duplicates;
 *             ends when every packet is in, or grace after the last
 *             packet's scheduled time (longer while packets still come,
 *             up to twice the stream's length).
 *
 * The packet (UDP payload, network byte order), then zeros up to psize:
 *
 *    0  u32 magic 0x4D444F57 ("MDOW")     24  u32 sequence number (0 .. count - 1)
 *    4  u8  version 1                     28  u32 count of the stream
 *    5  u8  flags 0, u16 reserved 0       32  i64 sender's CLOCK_REALTIME at sendto, ns
 *    8  u8[16] token of the stream        40  zero padding
 *
 * A datagram counts only when it comes from the expected peer address and
 * carries the magic, version 1, the stream's token and a sequence number
 * below count; anything else is `ignored`.
 *
 *   md_stream_opts o;
 *   md_stream_opts_from_request(req, &o, err, sizeof err);
 *   md_stream_start(loop, &o, done_cb, ud, &s, err, sizeof err);
 *   ... done_cb(s, ud, status): read md_stream_get_stats(s), then
 *   md_stream_close(s, closed_cb, ud)   (closed_cb once its handles are gone)
 */
#ifndef MD_STREAM_H
#define MD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "md_addr.h"
#include "mtrdiag.pb-c.h"

#define MD_STREAM_MAGIC 0x4D444F57u /* "MDOW" */
#define MD_STREAM_VERSION 1
#define MD_STREAM_TOKEN_LEN 16
#define MD_STREAM_HDR_LEN 40 /* the packet header; the smallest payload */

#define MD_STREAM_DEFAULT_COUNT 100u
#define MD_STREAM_MAX_COUNT 100000u
#define MD_STREAM_DEFAULT_INTERVAL_US 10000u
#define MD_STREAM_MIN_INTERVAL_US 100u
#define MD_STREAM_MAX_INTERVAL_US 60000000u
#define MD_STREAM_MAX_DURATION_NS (3600LL * 1000000000LL) /* count x interval */
#define MD_STREAM_DEFAULT_GRACE_MS 1000u
#define MD_STREAM_MAX_GRACE_MS 60000u
#define MD_STREAM_MAX_PSIZE 65535u
#define MD_STREAM_MIN_LISTEN_PORT 1024u /* a RECEIVE port, when one is asked for */

typedef enum md_stream_role { MD_STREAM_SEND = 1, MD_STREAM_RECEIVE = 2 } md_stream_role;

/* What one stream does; md_stream_opts_from_request fills it from a request. */
typedef struct md_stream_opts {
  md_stream_role role;
  md_addr peer;  /* SEND: destination address and port; RECEIVE: expected source (port ignored) */
  md_addr local; /* address (RECEIVE: and port) to bind; AF_UNSPEC: the wildcard. When it is
                    not an address of this host (behind NAT), the wildcard is used instead. */
  uint32_t count, interval_us;
  uint32_t psize; /* whole IP packet bytes, at least md_stream_min_psize() */
  uint32_t tos;
  uint32_t grace_ms;
  int64_t start_at_real_ns; /* first packet; 0: now */
  uint8_t token[MD_STREAM_TOKEN_LEN];
} md_stream_opts;

/* What a stream measured; the delays are over the first copy of each packet. */
typedef struct md_stream_stats {
  uint32_t sent, send_errors;                                       /* SEND */
  uint32_t expected, received, duplicates, reordered, ignored;      /* RECEIVE */
  int64_t delay_min_ns, delay_avg_ns, delay_max_ns, delay_stdev_ns; /* raw: recv - send */
  int last_error; /* negative errno of the last failed send or receive, 0 none */
} md_stream_stats;

/* One packet's header fields. */
typedef struct md_stream_pkt {
  uint8_t token[MD_STREAM_TOKEN_LEN];
  uint32_t seq, count;
  int64_t send_real_ns;
} md_stream_pkt;

typedef struct md_stream md_stream;

/* Once per stream, from the loop: 0 it ran to its end, -ECANCELED after
 * md_stream_cancel, another negative errno when it failed. */
typedef void (*md_stream_done_fn)(md_stream *s, void *ud, int status);

/* ---- packets */

/* Write p's header into buf (len >= MD_STREAM_HDR_LEN). MD_STREAM_HDR_LEN, or 0 when it does
 * not fit. */
size_t md_stream_pkt_encode(const md_stream_pkt *p, uint8_t *buf, size_t len);
/* Read a header: 0, or -EBADMSG (too short, wrong magic, version). */
int md_stream_pkt_decode(const uint8_t *buf, size_t len, md_stream_pkt *out);

/* ---- options */

/* The smallest psize for a family: IP + UDP headers + MD_STREAM_HDR_LEN. */
uint32_t md_stream_min_psize(int family);
/* UDP payload bytes for o's psize and family. */
size_t md_stream_payload_len(const md_stream_opts *o);
/* Packets per second a stream sends (0 for a receiver): its share of max_probes_per_second. */
double md_stream_pps(const md_stream_opts *o);
/* Scheduled length from the first packet to the last, ns. */
int64_t md_stream_span_ns(const md_stream_opts *o);

/* Check a StreamRequest and turn it into options, defaults filled in
 * (docs/protocol.md): stream_id, role, numeric unicast peer, local of the
 * same family, port, count, interval, span, psize, tos, grace, token, start
 * time not negative. 0, or -EINVAL with the field named in err. Policy
 * (allowed peer, rates) comes after, in md_policy_check_stream. */
int md_stream_opts_from_request(const Mtrdiag__V1__StreamRequest *q, md_stream_opts *o, char *err,
                                size_t errlen);

/* ---- streams */

/* Open the socket (bound now, also for a later start) and schedule the
 * stream. 0, or a negative errno with a sentence in err (nothing is kept
 * then, no callback follows). */
int md_stream_start(uv_loop_t *loop, const md_stream_opts *o, md_stream_done_fn done, void *ud,
                    md_stream **out, char *err, size_t errlen);
/* Stop early; done(-ECANCELED) follows from the loop. Nothing when done already came. */
void md_stream_cancel(md_stream *s);
/* Release the stream (after done, or instead of waiting for it: then done
 * never comes). closed(ud) (optional) is called once its handles are closed
 * and its memory freed. */
void md_stream_close(md_stream *s, void (*closed)(void *ud), void *ud);

/* The figures so far (final in and after done). */
const md_stream_stats *md_stream_get_stats(const md_stream *s);
/* The bound address and port of the socket. */
void md_stream_local(const md_stream *s, md_addr *out);
/* The scheduled first packet, and the end (SEND: the last packet; RECEIVE:
 * when it stops listening unless packets still come), agent's realtime ns. */
int64_t md_stream_start_real_ns(const md_stream *s);
int64_t md_stream_end_real_ns(const md_stream *s);
const md_stream_opts *md_stream_get_opts(const md_stream *s);

#endif
