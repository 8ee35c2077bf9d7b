/* oneway: requests and figures of the agent-to-agent streams. See oneway.h. */
#include "oneway.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define MD__ONEWAY_DEFAULT_COUNT 100u
#define MD__ONEWAY_DEFAULT_INTERVAL_US 10000u
#define MD__ONEWAY_DEFAULT_GRACE_MS 1000u

/* Random bytes that make every stream's packets its own. */
int md_oneway_token(uint8_t token[MD_ONEWAY_TOKEN_LEN]) {
  size_t got = 0;
  while (got < MD_ONEWAY_TOKEN_LEN) {
    ssize_t n = getrandom(token + got, MD_ONEWAY_TOKEN_LEN - got, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    got += (size_t)n;
  }
  return 0;
}

/* The two sides differ only in role, port, and which address is peer or local. */
void md_oneway_request(const md_oneway_plan *p, Mtrdiag__V1__StreamRole role, uint16_t port,
                       int64_t start_at_agent_ns, Mtrdiag__V1__StreamRequest *out) {
  Mtrdiag__V1__StreamRequest q = MTRDIAG__V1__STREAM_REQUEST__INIT;
  bool send = role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND;
  q.stream_id = (char *)p->stream_id;
  q.role = role;
  q.peer = (char *)(send ? p->receiver_addr : p->sender_addr);
  q.local = (char *)(send ? p->sender_addr : p->receiver_addr);
  if (!q.local)
    q.local = (char *)"";
  q.port = port;
  q.count = p->count;
  q.interval_us = p->interval_us;
  q.psize = p->psize;
  q.tos = p->tos;
  q.grace_ms = send ? 0 : p->grace_ms;
  q.start_at_real_ns = start_at_agent_ns > 0 ? start_at_agent_ns : 0;
  q.token.data = (uint8_t *)p->token;
  q.token.len = MD_ONEWAY_TOKEN_LEN;
  *out = q;
}

/* (count - 1) intervals, then the receiver's grace. */
uint64_t md_oneway_duration_ms(const md_oneway_plan *p) {
  uint64_t count = p->count ? p->count : MD__ONEWAY_DEFAULT_COUNT;
  uint64_t iv = p->interval_us ? p->interval_us : MD__ONEWAY_DEFAULT_INTERVAL_US;
  uint64_t grace = p->grace_ms ? p->grace_ms : MD__ONEWAY_DEFAULT_GRACE_MS;
  return (count - 1) * iv / 1000 + grace;
}

/* The contract's sent/recv/loss/delay of one direction, offsets removed. */
int md_oneway_compute(const md_client_stream_result *sender,
                      const md_client_stream_result *receiver, int64_t offset_sender_ns,
                      int64_t offset_receiver_ns, md_oneway_dir *out) {
  if (out)
    memset(out, 0, sizeof *out);
  if (!receiver || !out || receiver->role != MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE ||
      (sender && sender->role != MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND))
    return -EINVAL;
  if (!receiver->from_agent || receiver->status != MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK)
    return -ENODATA;
  uint32_t sent = sender && sender->from_agent ? sender->sent : receiver->expected;
  if (sent == 0)
    return -ENODATA;
  uint32_t recv = receiver->received < sent ? receiver->received : sent;
  out->sent = sent;
  out->recv = recv;
  out->loss_pct = 100.0 * (double)(sent - recv) / (double)sent;
  if (recv > 0) {
    double skew = (double)offset_receiver_ns - (double)offset_sender_ns;
    out->delay_avg_ms = ((double)receiver->delay_avg_ns - skew) / 1e6;
    out->delay_stdev_ms = (double)receiver->delay_stdev_ns / 1e6;
  }
  return 0;
}
