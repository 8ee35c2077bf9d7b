/* stream: one-way measurement packets, sent on a timer or counted as they
 * arrive. See stream.h for the packet and the rules; docs/protocol.md for
 * the messages around it. */
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_time.h"
#include "md_wire.h"

#define MD__RX_BATCH 32     /* datagrams per recvmmsg */
#define MD__RX_ROUNDS 32    /* recvmmsg calls per readable event, then back to the loop */
#define MD__RX_BUF 64       /* bytes kept of each datagram: the header is all that counts */
#define MD__TX_BURST 256    /* packets sent per timer tick when the loop fell behind */
#define MD__IP4_UDP_HDR 28u /* IPv4 header without options + UDP header */
#define MD__IP6_UDP_HDR 48u /* IPv6 header + UDP header */

struct md_stream {
  uv_loop_t *loop;
  md_stream_opts o;
  md_stream_stats st;
  md_stream_done_fn done;
  void *ud;
  int fd;
  md_addr bound;
  uv_timer_t timer; /* SEND: pacing; RECEIVE: the end; both: a deferred done */
  uv_poll_t poll;   /* RECEIVE only */
  bool has_poll;
  bool finished; /* no more packets; done called or on its way */
  bool done_called, closing;
  int status; /* for a deferred done */
  unsigned open_handles;
  void (*closed)(void *ud);
  void *closed_ud;
  int64_t start_real, end_real;
  int64_t start_mono, interval_ns;
  /* SEND */
  uint32_t next_seq;
  uint8_t *pkt;
  size_t pkt_len;
  /* RECEIVE */
  uint8_t *seen; /* count bits */
  uint32_t max_seq;
  int64_t end_mono, hard_end_mono, last_rx_mono;
  double mean, m2; /* Welford over raw delays, ns */
};

/* ---- packets */

/* Big-endian stores and loads: the packet is the same on every host. */
static void put32(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)(v >> 24);
  b[1] = (uint8_t)(v >> 16);
  b[2] = (uint8_t)(v >> 8);
  b[3] = (uint8_t)v;
}

/* The other half of put32. */
static uint32_t get32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The header fields in the order stream.h documents. */
size_t md_stream_pkt_encode(const md_stream_pkt *p, uint8_t *buf, size_t len) {
  if (!p || !buf || len < MD_STREAM_HDR_LEN)
    return 0;
  put32(buf, MD_STREAM_MAGIC);
  buf[4] = MD_STREAM_VERSION;
  buf[5] = 0;
  buf[6] = buf[7] = 0;
  memcpy(buf + 8, p->token, MD_STREAM_TOKEN_LEN);
  put32(buf + 24, p->seq);
  put32(buf + 28, p->count);
  uint64_t ts = (uint64_t)p->send_real_ns;
  put32(buf + 32, (uint32_t)(ts >> 32));
  put32(buf + 36, (uint32_t)ts);
  return MD_STREAM_HDR_LEN;
}

/* Anything too short or not ours is refused before a field is trusted. */
int md_stream_pkt_decode(const uint8_t *buf, size_t len, md_stream_pkt *out) {
  if (!buf || !out || len < MD_STREAM_HDR_LEN || get32(buf) != MD_STREAM_MAGIC ||
      buf[4] != MD_STREAM_VERSION)
    return -EBADMSG;
  memcpy(out->token, buf + 8, MD_STREAM_TOKEN_LEN);
  out->seq = get32(buf + 24);
  out->count = get32(buf + 28);
  out->send_real_ns = (int64_t)((uint64_t)get32(buf + 32) << 32 | get32(buf + 36));
  return 0;
}

/* ---- options */

/* IP and UDP headers plus ours: a smaller packet cannot carry a stream packet. */
uint32_t md_stream_min_psize(int family) {
  return (family == AF_INET6 ? MD__IP6_UDP_HDR : MD__IP4_UDP_HDR) + MD_STREAM_HDR_LEN;
}

/* psize counts the whole IP packet, as mtr's -s does. */
size_t md_stream_payload_len(const md_stream_opts *o) {
  int fam = md_addr_family(&o->peer);
  uint32_t min = md_stream_min_psize(fam);
  uint32_t ps = o->psize < min ? min : o->psize;
  return ps - (fam == AF_INET6 ? MD__IP6_UDP_HDR : MD__IP4_UDP_HDR);
}

/* A receiver sends nothing; a sender one packet per interval. */
double md_stream_pps(const md_stream_opts *o) {
  if (o->role != MD_STREAM_SEND || o->interval_us == 0)
    return 0;
  return 1e6 / o->interval_us;
}

/* From the first packet's scheduled time to the last one's. */
int64_t md_stream_span_ns(const md_stream_opts *o) {
  return o->count > 1 ? (int64_t)(o->count - 1) * o->interval_us * 1000 : 0;
}

/* snprintf into an optional err buffer, returning -EINVAL for one-line refusals. */
static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* Everything a request may get wrong is refused here, before policy or sockets. */
int md_stream_opts_from_request(const Mtrdiag__V1__StreamRequest *q, md_stream_opts *o, char *err,
                                size_t errlen) {
  memset(o, 0, sizeof *o);
  char why[128];
  if (md_wire_check_run_id(q->stream_id, why, sizeof why) < 0)
    return bad(err, errlen, "stream_id%s", strchr(why, ':') ? strchr(why, ':') : ": invalid");
  if (q->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND)
    o->role = MD_STREAM_SEND;
  else if (q->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE)
    o->role = MD_STREAM_RECEIVE;
  else
    return bad(err, errlen, "role: must be SEND or RECEIVE, not %d", (int)q->role);
  bool send = o->role == MD_STREAM_SEND;
  if (!q->peer || md_addr_parse(q->peer, &o->peer) < 0)
    return bad(err, errlen, "peer: not a numeric IPv4 or IPv6 address");
  if (md_addr_is_unspecified(&o->peer) || md_addr_is_multicast(&o->peer) ||
      md_addr_is_broadcast(&o->peer))
    return bad(err, errlen, "peer: %s is not a unicast address", q->peer);
  int fam = md_addr_family(&o->peer);
  if (q->local && q->local[0]) {
    if (md_addr_parse(q->local, &o->local) < 0)
      return bad(err, errlen, "local: not a numeric IPv4 or IPv6 address");
    if (md_addr_family(&o->local) != fam)
      return bad(err, errlen, "local: %s is not of the peer's address family", q->local);
    if (md_addr_is_multicast(&o->local) || md_addr_is_broadcast(&o->local))
      return bad(err, errlen, "local: %s is not a unicast address", q->local);
  }
  if (q->port > 65535)
    return bad(err, errlen, "port: %u is over 65535", q->port);
  if (send && q->port == 0)
    return bad(err, errlen, "port: a SEND stream needs the receiver's port");
  if (!send && q->port != 0 && q->port < MD_STREAM_MIN_LISTEN_PORT)
    return bad(err, errlen,
               "port: %u is a privileged port; a receiver listens on 0 (any) or %u-65535", q->port,
               MD_STREAM_MIN_LISTEN_PORT);
  if (send) {
    md_addr_set_port(&o->peer, (uint16_t)q->port);
  } else {
    if (md_addr_family(&o->local) == AF_UNSPEC) { /* the wildcard of the peer's family */
      o->local.sa.sa_family = (sa_family_t)fam;
    }
    md_addr_set_port(&o->local, (uint16_t)q->port);
  }
  o->count = q->count ? q->count : MD_STREAM_DEFAULT_COUNT;
  if (o->count > MD_STREAM_MAX_COUNT)
    return bad(err, errlen, "count: %u is over %u", o->count, MD_STREAM_MAX_COUNT);
  o->interval_us = q->interval_us ? q->interval_us : MD_STREAM_DEFAULT_INTERVAL_US;
  if (o->interval_us < MD_STREAM_MIN_INTERVAL_US || o->interval_us > MD_STREAM_MAX_INTERVAL_US)
    return bad(err, errlen, "interval_us: %u is outside %u-%u", o->interval_us,
               MD_STREAM_MIN_INTERVAL_US, MD_STREAM_MAX_INTERVAL_US);
  if (md_stream_span_ns(o) > MD_STREAM_MAX_DURATION_NS)
    return bad(err, errlen, "count x interval_us: %.0f s is over the %lld s a stream may last",
               (double)md_stream_span_ns(o) / 1e9, MD_STREAM_MAX_DURATION_NS / 1000000000LL);
  if (q->psize > MD_STREAM_MAX_PSIZE)
    return bad(err, errlen, "psize: %u is over %u", q->psize, MD_STREAM_MAX_PSIZE);
  uint32_t min = md_stream_min_psize(fam);
  o->psize = q->psize < min ? min : q->psize;
  if (q->tos > 255)
    return bad(err, errlen, "tos: %u is over 255", q->tos);
  o->tos = q->tos;
  o->grace_ms = q->grace_ms ? q->grace_ms : MD_STREAM_DEFAULT_GRACE_MS;
  if (o->grace_ms > MD_STREAM_MAX_GRACE_MS)
    return bad(err, errlen, "grace_ms: %u is over %u", o->grace_ms, MD_STREAM_MAX_GRACE_MS);
  if (q->token.len != MD_STREAM_TOKEN_LEN || !q->token.data)
    return bad(err, errlen, "token: must be %d bytes, not %zu", MD_STREAM_TOKEN_LEN, q->token.len);
  memcpy(o->token, q->token.data, MD_STREAM_TOKEN_LEN);
  if (q->start_at_real_ns < 0)
    return bad(err, errlen, "start_at_real_ns: negative");
  o->start_at_real_ns = q->start_at_real_ns;
  return 0;
}

/* ---- ending and closing */

/* The last handle is closed: the memory goes, then the owner hears of it. */
static void handle_closed(uv_handle_t *h) {
  md_stream *s = h->data;
  if (--s->open_handles > 0)
    return;
  if (s->fd >= 0)
    close(s->fd);
  void (*closed)(void *) = s->closed;
  void *ud = s->closed_ud;
  free(s->pkt);
  free(s->seen);
  free(s);
  if (closed)
    closed(ud);
}

/* Tell the owner, once. */
static void report_done(md_stream *s, int status) {
  if (s->done_called || s->closing)
    return;
  s->done_called = true;
  if (s->done)
    s->done(s, s->ud, status);
}

/* No more packets go or count; the owner hears now (from a loop callback). */
static void finish(md_stream *s, int status) {
  if (s->finished)
    return;
  s->finished = true;
  uv_timer_stop(&s->timer);
  if (s->has_poll)
    uv_poll_stop(&s->poll);
  report_done(s, status);
}

/* md_stream_cancel's done comes from the loop, never from inside the call. */
static void on_deferred_done(uv_timer_t *t) {
  md_stream *s = t->data;
  report_done(s, s->status);
}

/* Stop sending or counting now; the owner hears from the loop, like any other end. */
void md_stream_cancel(md_stream *s) {
  if (!s || s->finished || s->closing)
    return;
  s->finished = true;
  s->status = -ECANCELED;
  if (s->has_poll)
    uv_poll_stop(&s->poll);
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, on_deferred_done, 0, 0);
}

/* The handles close on the loop; the memory goes in handle_closed. */
void md_stream_close(md_stream *s, void (*closed)(void *ud), void *ud) {
  if (!s || s->closing)
    return;
  s->closing = true;
  s->finished = true;
  s->closed = closed;
  s->closed_ud = ud;
  uv_close((uv_handle_t *)&s->timer, handle_closed);
  if (s->has_poll)
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

/* ---- the receiver's figures */

/* The delay figures from the running sums; the rest is counted live. */
static void fill_delays(md_stream *s) {
  md_stream_stats *st = &s->st;
  if (st->received == 0) {
    st->delay_min_ns = st->delay_max_ns = st->delay_avg_ns = st->delay_stdev_ns = 0;
    return;
  }
  st->delay_avg_ns = llround(s->mean);
  st->delay_stdev_ns = st->received > 1 ? llround(sqrt(s->m2 / (st->received - 1))) : 0;
}

/* The counts are live; the delay figures are derived on demand. */
const md_stream_stats *md_stream_get_stats(const md_stream *s) {
  fill_delays((md_stream *)s);
  return &s->st;
}

/* Where the socket is bound: StreamAccepted tells the controller. */
void md_stream_local(const md_stream *s, md_addr *out) {
  *out = s->bound;
}

/* The scheduled first packet, for StreamAccepted. */
int64_t md_stream_start_real_ns(const md_stream *s) {
  return s->start_real;
}

/* The scheduled end, for StreamAccepted. */
int64_t md_stream_end_real_ns(const md_stream *s) {
  return s->end_real;
}

/* The options as checked, for log lines. */
const md_stream_opts *md_stream_get_opts(const md_stream *s) {
  return &s->o;
}

/* One datagram: is it ours, which packet, how late. */
static void count_packet(md_stream *s, const md_addr *from, const uint8_t *buf, size_t len,
                         int64_t rx_real_ns) {
  md_stream_stats *st = &s->st;
  md_stream_pkt p;
  if (!md_addr_equal(from, &s->o.peer) || md_stream_pkt_decode(buf, len, &p) < 0 ||
      memcmp(p.token, s->o.token, MD_STREAM_TOKEN_LEN) != 0 || p.seq >= s->o.count) {
    st->ignored++;
    return;
  }
  uint8_t bit = (uint8_t)(1u << (p.seq & 7));
  if (s->seen[p.seq >> 3] & bit) {
    st->duplicates++;
    return;
  }
  s->seen[p.seq >> 3] |= bit;
  if (st->received > 0 && p.seq < s->max_seq)
    st->reordered++;
  if (st->received == 0 || p.seq > s->max_seq)
    s->max_seq = p.seq;
  int64_t d = rx_real_ns - p.send_real_ns;
  if (st->received == 0 || d < st->delay_min_ns)
    st->delay_min_ns = d;
  if (st->received == 0 || d > st->delay_max_ns)
    st->delay_max_ns = d;
  st->received++;
  double delta = (double)d - s->mean;
  s->mean += delta / st->received;
  s->m2 += delta * ((double)d - s->mean);
  s->last_rx_mono = md_now_mono_ns();
}

/* The kernel's receive time of a datagram, else now. */
static int64_t rx_time(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
  }
  return md_now_real_ns();
}

/* Readable: take what is queued in batches, bounded so the loop stays responsive. */
static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  md_stream *s = h->data;
  if (s->finished)
    return;
  if (status < 0) { /* a pending socket error: clear it and keep listening */
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el);
    s->st.last_error = status;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
  }
  struct mmsghdr msgs[MD__RX_BATCH];
  struct iovec iov[MD__RX_BATCH];
  uint8_t bufs[MD__RX_BATCH][MD__RX_BUF];
  md_addr from[MD__RX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
  } ctl[MD__RX_BATCH];
  memset(ctl, 0, sizeof ctl);
  for (int round = 0; round < MD__RX_ROUNDS && !s->finished; round++) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < MD__RX_BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_control = ctl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
    int n = recvmmsg(s->fd, msgs, MD__RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        s->st.last_error = -errno;
      break;
    }
    for (int i = 0; i < n && !s->finished; i++) {
      size_t len = msgs[i].msg_len < MD__RX_BUF ? msgs[i].msg_len : MD__RX_BUF;
      count_packet(s, &from[i], bufs[i], len, rx_time(&msgs[i].msg_hdr));
      if (s->st.received == s->o.count)
        finish(s, 0); /* every packet is in: nothing more to wait for */
    }
    if (n < MD__RX_BATCH)
      break;
  }
}

/* Milliseconds until a monotonic instant (rounded up, so the timer is never early). */
static uint64_t ms_until(int64_t mono_ns, int64_t now) {
  return mono_ns > now ? (uint64_t)((mono_ns - now + 999999) / 1000000) : 0;
}

/* The end of listening: later only while packets still come, within the hard end. */
static void on_rx_end(uv_timer_t *t) {
  md_stream *s = t->data;
  int64_t now = md_now_mono_ns();
  int64_t grace = (int64_t)s->o.grace_ms * 1000000;
  if (s->st.received < s->o.count && s->last_rx_mono && now - s->last_rx_mono < grace &&
      now < s->hard_end_mono) {
    int64_t next = s->last_rx_mono + grace;
    if (next > s->hard_end_mono)
      next = s->hard_end_mono;
    uv_update_time(s->loop);
    uv_timer_start(&s->timer, on_rx_end, ms_until(next, now), 0);
    return;
  }
  finish(s, 0);
}

/* ---- the sender */

/* One packet, stamped just before it goes. */
static void send_one(md_stream *s) {
  md_stream_pkt p;
  memcpy(p.token, s->o.token, MD_STREAM_TOKEN_LEN);
  p.seq = s->next_seq++;
  p.count = s->o.count;
  p.send_real_ns = md_now_real_ns();
  md_stream_pkt_encode(&p, s->pkt, s->pkt_len);
  ssize_t n = sendto(s->fd, s->pkt, s->pkt_len, 0, &s->o.peer.sa, md_addr_len(&s->o.peer));
  if (n < 0) {
    s->st.send_errors++;
    s->st.last_error = -errno;
  } else {
    s->st.sent++;
  }
}

/* Every packet that is due goes; then the timer waits for the next one. */
static void on_tx_tick(uv_timer_t *t) {
  md_stream *s = t->data;
  int64_t now = md_now_mono_ns();
  for (int burst = 0; burst < MD__TX_BURST && s->next_seq < s->o.count &&
                      s->start_mono + (int64_t)s->next_seq * s->interval_ns <= now;
       burst++)
    send_one(s);
  if (s->next_seq >= s->o.count) {
    finish(s, s->st.sent > 0 ? 0 : (s->st.last_error ? s->st.last_error : -EIO));
    return;
  }
  int64_t due = s->start_mono + (int64_t)s->next_seq * s->interval_ns;
  now = md_now_mono_ns();
  uv_update_time(s->loop);
  uv_timer_start(&s->timer, on_tx_tick, ms_until(due, now), 0);
}

/* ---- starting */

/* Bind to the requested local address; when it is not this host's (NAT), to the wildcard. */
static int bind_local(md_stream *s, int fam) {
  md_addr a = s->o.local;
  if (md_addr_family(&a) == AF_UNSPEC) {
    memset(&a, 0, sizeof a);
    a.sa.sa_family = (sa_family_t)fam;
  }
  if (bind(s->fd, &a.sa, md_addr_len(&a)) == 0)
    return 0;
  int e = errno;
  if (e != EADDRNOTAVAIL || md_addr_is_unspecified(&a))
    return -e;
  uint16_t port = md_addr_port(&a);
  memset(&a, 0, sizeof a);
  a.sa.sa_family = (sa_family_t)fam;
  md_addr_set_port(&a, port);
  return bind(s->fd, &a.sa, md_addr_len(&a)) == 0 ? 0 : -errno;
}

/* The socket: non-blocking UDP of the peer's family, bound, with the
 * sender's TOS or the receiver's timestamps. */
static int open_socket(md_stream *s, char *err, size_t errlen) {
  int fam = md_addr_family(&s->o.peer);
  s->fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    int rc = -errno;
    snprintf(err, errlen, "cannot open a UDP socket: %s", strerror(-rc));
    return rc;
  }
  int on = 1;
  if (fam == AF_INET6)
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (s->o.role == MD_STREAM_RECEIVE) {
    if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) {
      int rc = -errno;
      snprintf(err, errlen, "cannot ask for receive timestamps: %s", strerror(-rc));
      return rc;
    }
  } else if (s->o.tos) {
    int tos = (int)s->o.tos;
    int rc = fam == AF_INET6 ? setsockopt(s->fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos)
                             : setsockopt(s->fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    if (rc < 0) {
      rc = -errno;
      snprintf(err, errlen, "cannot set tos %u: %s", s->o.tos, strerror(-rc));
      return rc;
    }
  }
  int rc = bind_local(s, fam);
  if (rc < 0) {
    char a[MD_ADDRSTRLEN + 8];
    md_addr_str_hostport(&s->o.local, a, sizeof a);
    snprintf(err, errlen, "cannot bind a UDP socket to %s: %s", a, strerror(-rc));
    return rc;
  }
  socklen_t len = sizeof s->bound;
  getsockname(s->fd, &s->bound.sa, &len);
  return 0;
}

/* Socket first (a refusal leaves nothing behind), then the handles and the schedule. */
int md_stream_start(uv_loop_t *loop, const md_stream_opts *o, md_stream_done_fn done, void *ud,
                    md_stream **out, char *err, size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  *out = NULL;
  if (!loop || !o || o->count == 0 || o->count > MD_STREAM_MAX_COUNT || o->interval_us == 0 ||
      (o->role != MD_STREAM_SEND && o->role != MD_STREAM_RECEIVE)) {
    snprintf(err, errlen, "invalid stream options");
    return -EINVAL;
  }
  md_stream *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->loop = loop;
  s->o = *o;
  s->done = done;
  s->ud = ud;
  s->fd = -1;
  s->st.expected = o->role == MD_STREAM_RECEIVE ? o->count : 0;
  s->interval_ns = (int64_t)o->interval_us * 1000;
  int rc = 0;
  if (o->role == MD_STREAM_SEND) {
    s->pkt_len = md_stream_payload_len(o);
    s->pkt = calloc(1, s->pkt_len);
    rc = s->pkt ? 0 : -ENOMEM;
  } else {
    s->seen = calloc(1, (o->count + 7) / 8);
    rc = s->seen ? 0 : -ENOMEM;
  }
  if (rc < 0)
    snprintf(err, errlen, "out of memory");
  if (rc == 0)
    rc = open_socket(s, err, errlen);
  if (rc == 0 && o->role == MD_STREAM_RECEIVE) {
    rc = uv_poll_init_socket(loop, &s->poll, s->fd);
    if (rc < 0)
      snprintf(err, errlen, "cannot watch the UDP socket: %s", uv_strerror(rc));
    else
      s->has_poll = true;
  }
  if (rc < 0) { /* no handle was made yet: nothing to wait for */
    if (s->fd >= 0)
      close(s->fd);
    free(s->pkt);
    free(s->seen);
    free(s);
    return rc;
  }
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->poll.data = s;
  s->open_handles = s->has_poll ? 2 : 1;

  int64_t now_real = md_now_real_ns(), now_mono = md_now_mono_ns();
  int64_t lead = o->start_at_real_ns > now_real ? o->start_at_real_ns - now_real : 0;
  s->start_real = now_real + lead;
  s->start_mono = now_mono + lead;
  int64_t span = md_stream_span_ns(o);
  uv_update_time(loop);
  if (o->role == MD_STREAM_SEND) {
    s->end_real = s->start_real + span;
    uv_timer_start(&s->timer, on_tx_tick, ms_until(s->start_mono, now_mono), 0);
  } else {
    int64_t grace = (int64_t)o->grace_ms * 1000000;
    s->end_mono = s->start_mono + span + grace;
    s->hard_end_mono = s->end_mono + span + s->interval_ns;
    s->end_real = s->start_real + span + grace;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    uv_timer_start(&s->timer, on_rx_end, ms_until(s->end_mono, now_mono), 0);
  }
  *out = s;
  return 0;
}
