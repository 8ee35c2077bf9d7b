/* oneway: the report's one_way figures (CONTRACT.md) from the agent-to-agent
 * streams of a diagnosis (docs/protocol.md, "One-way streams").
 *
 * One direction (say A -> B) is two streams with one stream_id and token:
 *
 *   md_oneway_plan p = {.stream_id = "ow-fwd", .sender_addr = A's probe address,
 *                       .receiver_addr = B's probe address, .count = 200,
 *                       .interval_us = 10000};
 *   md_oneway_token(p.token);
 *   start = md_now_real_ns() + margin;                      // controller clock
 *   md_oneway_request(&p, RECEIVE, 0, md_client_to_agent_ns(b, start), &q);
 *   md_client_stream_start(b, &q, ...);
 *   ... B's on_stream_accepted(acc): acc->port is where A must send ...
 *   md_oneway_request(&p, SEND, acc->port, md_client_to_agent_ns(a, start), &q);
 *   md_client_stream_start(a, &q, ...);
 *   ... both on_stream_result: keep copies of the numbers ...
 *   md_oneway_compute(&a_result, &b_result, offset_a, offset_b, &report->oneway_forward);
 *
 * A caveat the numbers cannot show: the offsets come from TimeSync over the
 * control connections, which assumes each control path is as fast one way
 * as the other. When a control path itself crosses the asymmetric fault (a
 * controller on A's side, extra delay only toward B), B's offset is off by
 * half that asymmetry and the delay is split between the directions
 * (forward + reverse stays right). Loss is unaffected.
 */
#ifndef MD_ONEWAY_H
#define MD_ONEWAY_H

#include <stdint.h>

#include "client.h"
#include "md_report.h"

#define MD_ONEWAY_TOKEN_LEN 16

/* What the two requests of one direction share. Strings are not copied. */
typedef struct md_oneway_plan {
  const char *stream_id;     /* the same on both agents (each session has its own ids) */
  const char *sender_addr;   /* sender's probe address: its source, the receiver's expected peer */
  const char *receiver_addr; /* receiver's probe address: where it listens */
  uint32_t count;            /* packets; 0: the agent's default (100) */
  uint32_t interval_us;      /* 0: the agent's default (10000) */
  uint32_t psize;            /* whole IP packet bytes; 0: the smallest (68 IPv4, 88 IPv6) */
  uint32_t tos;
  uint32_t grace_ms; /* receiver's wait after the last packet's time; 0: 1000 */
  uint8_t token[MD_ONEWAY_TOKEN_LEN];
} md_oneway_plan;

/* Fresh random bytes for a plan's token (getrandom). 0 or negative errno. */
int md_oneway_token(uint8_t token[MD_ONEWAY_TOKEN_LEN]);

/* The StreamRequest of one side: RECEIVE (port 0: any free) or SEND (port: the one the receiver's
 * StreamAccepted named). start_at_agent_ns: the first packet on that agent's clock (0: now).
 * *out points into p (keep p alive until md_client_stream_start returns). */
void md_oneway_request(const md_oneway_plan *p, Mtrdiag__V1__StreamRole role, uint16_t port,
                       int64_t start_at_agent_ns, Mtrdiag__V1__StreamRequest *out);

/* How long a direction lasts from its first packet to the receiver's end, ms
 * (defaults applied as the agent applies them): for the caller's timeouts. */
uint64_t md_oneway_duration_ms(const md_oneway_plan *p);

/* One direction's figures from its two results. sender may be NULL (its
 * result never came: the receiver's expected count stands in for sent);
 * offsets are each agent's clock minus the controller's (md_client_info.offset_ns).
 *   sent  = the sender's sent (else the receiver's expected)
 *   recv  = the receiver's received (at most sent)
 *   loss_pct = 100 * (sent - recv) / sent
 *   delay_avg_ms = (raw avg - (offset_receiver - offset_sender)) / 1e6
 *   delay_stdev_ms = raw stdev / 1e6        (both 0 when nothing arrived)
 * 0; -EINVAL (receiver NULL or not a RECEIVE result, out NULL); -ENODATA
 * (the receiver's result is not the agent's or not OK, or nothing was sent):
 * *out is zeroed on error. */
int md_oneway_compute(const md_client_stream_result *sender,
                      const md_client_stream_result *receiver, int64_t offset_sender_ns,
                      int64_t offset_receiver_ns, md_oneway_dir *out);

#endif
