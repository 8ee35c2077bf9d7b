/* prober: the process's probe sockets and the receive side.
 *
 * With CAP_NET_RAW the prober opens raw sockets once (so the agent can drop
 * the capability right after): ICMP and ICMPv6 sockets that both send ICMP
 * probes and hear every ICMP reply, raw UDP sockets that only send, and raw
 * TCP sockets that send SYNs and hear SYN-ACKs and RSTs. Each reply is parsed
 * once and handed to the trace whose probe it answers.
 *
 * Without CAP_NET_RAW each ICMP trace opens its own datagram ("ping")
 * socket; routers' time-exceeded messages then arrive on its error queue.
 * TTL, traffic class and source travel as ancillary data of each sendmsg().
 */
#include <errno.h>
#include <time.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"
#include "md_log.h"
#include "md_time.h"

/* Ask the kernel for receive timestamps: RTTs then do not include the time
 * the process took to get around to reading. */
static void want_timestamps(int fd) {
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

/* A raw socket that only sends would otherwise queue every incoming packet
 * of its protocol; a filter that accepts nothing keeps its queue empty, and
 * is locked so that nothing later in this process can take it off. */
static void drop_all_input(int fd) {
  struct sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  struct sock_fprog prog = {1, code};
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof on);
}

/* The ICMPv6 types a reply can be; neighbour discovery and the rest are
 * filtered in the kernel. */
static void icmp6_filter(int fd) {
  struct icmp6_filter f;
  ICMP6_FILTER_SETBLOCKALL(&f);
  ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
  ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &f);
  ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &f);
  ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &f);
  ICMP6_FILTER_SETPASS(ICMP6_PARAM_PROB, &f);
  setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
}

static void on_readable(uv_poll_t *h, int status, int events);

/* Register a receive socket with the loop. */
static md__rsock *rsock_new(md_prober *p, md_trace *owner, int fd, int family, int proto,
                            bool errqueue) {
  md__rsock *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->fd = fd;
  r->family = family;
  r->proto = proto;
  r->has_ip_header = (family == AF_INET && !errqueue);
  r->errqueue = errqueue;
  r->prober = p;
  r->owner = owner;
  int events = UV_READABLE;
  if (errqueue) {
    /* libuv 1.44 stops a poll handle on POLLERR without POLLPRI: ask the
     * kernel to flag the error queue as priority data and poll for it. */
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &on, sizeof on);
    events |= UV_PRIORITIZED;
  }
  if (uv_poll_init(p->loop, &r->poll, fd) != 0) {
    free(r);
    return NULL;
  }
  r->poll.data = r;
  uv_poll_start(&r->poll, events, on_readable);
  return r;
}

static void rsock_closed(uv_handle_t *h) {
  md__rsock *r = h->data;
  close(r->fd);
  free(r);
}

static void rsock_close(md__rsock *r) {
  if (r)
    uv_close((uv_handle_t *)&r->poll, rsock_closed);
}

/* Open the raw sockets; any failure with EPERM means no CAP_NET_RAW. */
static int open_raw(md_prober *p) {
  static const int fams[2] = {AF_INET, AF_INET6};
  for (int f = 0; f < 2; f++) {
    int fam = fams[f];
    int icmp_proto = fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    int icmp = socket(fam, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, icmp_proto);
    if (icmp < 0) {
      if (errno == EAFNOSUPPORT)
        continue; /* no IPv6 on this host */
      return -errno;
    }
    int udp = socket(fam, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    int tcp = socket(fam, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (udp < 0 || tcp < 0) {
      int e = -errno;
      close(icmp);
      if (udp >= 0)
        close(udp);
      if (tcp >= 0)
        close(tcp);
      return e;
    }
    if (fam == AF_INET6)
      icmp6_filter(icmp);
    want_timestamps(icmp);
    want_timestamps(tcp);
    drop_all_input(udp);
    if (fam == AF_INET6) {
      int on = 1;
      setsockopt(tcp, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
      setsockopt(icmp, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
    }
    p->send_fd[f][MD_PROTO_ICMP] = icmp;
    p->send_fd[f][MD_PROTO_UDP] = udp;
    p->send_fd[f][MD_PROTO_TCP] = tcp;
    p->rx[p->n_rx++] = rsock_new(p, NULL, icmp, fam, icmp_proto, false);
    p->rx[p->n_rx++] = rsock_new(p, NULL, tcp, fam, IPPROTO_TCP, false);
  }
  return 0;
}

/* Close every raw socket the prober holds (receive handles own the ICMP and
 * TCP descriptors; the send-only UDP ones are closed here). */
static void close_raw(md_prober *p) {
  for (int i = 0; i < p->n_rx; i++)
    rsock_close(p->rx[i]);
  p->n_rx = 0;
  for (int f = 0; f < 2; f++) {
    if (p->send_fd[f][MD_PROTO_UDP] >= 0)
      close(p->send_fd[f][MD_PROTO_UDP]);
    for (int i = 0; i < 3; i++)
      p->send_fd[f][i] = -1;
  }
}

int md_prober_open(uv_loop_t *loop, unsigned flags, md_prober **out) {
  md_prober *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  p->loop = loop;
  for (int f = 0; f < 2; f++)
    for (int i = 0; i < 3; i++)
      p->send_fd[f][i] = -1;
  p->ident_seed = (uint32_t)md_now_mono_ns() ^ ((uint32_t)getpid() << 16);
  int rc = (flags & MD_PROBER_NO_RAW) ? -EPERM : open_raw(p);
  if (rc == 0) {
    p->raw = true;
  } else if (rc == -EPERM || rc == -EACCES) {
    close_raw(p);
    md_warn("no CAP_NET_RAW: falling back to unprivileged ICMP datagram sockets "
            "(ICMP only; needs net.ipv4.ping_group_range to include this group)");
  } else {
    close_raw(p);
    free(p);
    return rc;
  }
  *out = p;
  return 0;
}

bool md_prober_is_raw(const md_prober *p) {
  return p->raw;
}

void md_prober_close(md_prober *p) {
  if (!p)
    return;
  close_raw(p);
  free(p);
}

/* Datagram mode: this trace's own ping socket, with the error queue on. */
int md__prober_open_dgram(md_trace *t, char *err, size_t errlen) {
  int fam = t->family;
  int proto = fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) {
    int e = -errno;
    snprintf(err, errlen,
             "cannot open an ICMP datagram socket (%s): give the agent CAP_NET_RAW, or allow "
             "its group in net.ipv4.ping_group_range",
             strerror(errno));
    return e;
  }
  int on = 1;
  if (fam == AF_INET)
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  else
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
  want_timestamps(fd);
  md_addr src = t->spec.src;
  md_addr_set_port(&src, 0);
  if (bind(fd, &src.sa, md_addr_len(&src)) != 0) {
    int e = -errno;
    snprintf(err, errlen, "cannot bind the ICMP datagram socket: %s", strerror(errno));
    close(fd);
    return e;
  }
  md_addr bound;
  socklen_t bl = sizeof bound;
  getsockname(fd, &bound.sa, &bl);
  t->spec.ident = md_addr_port(&bound); /* the kernel's echo id */
  t->dgram = rsock_new(t->prober, t, fd, fam, proto, true);
  if (!t->dgram) {
    close(fd);
    return -ENOMEM;
  }
  t->send_fd = fd;
  return 0;
}

/* Stop delivering replies to a trace that is going away. */
void md__prober_detach(md_trace *t) {
  md_prober *p = t->prober;
  for (md_trace **pp = &p->traces; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  if (t->dgram) {
    rsock_close(t->dgram);
    t->dgram = NULL;
  }
}

/* Send one probe with this TTL; TTL, TOS and source ride as ancillary data,
 * so one shared socket serves every trace. */
int md__prober_send(md_trace *t, const uint8_t *pkt, size_t len, int ttl) {
  union {
    char buf[CMSG_SPACE(sizeof(int)) * 2 + CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
  } c;
  memset(&c, 0, sizeof c);
  struct iovec iov = {(void *)pkt, len};
  md_addr dst = t->spec.dst;
  md_addr_set_port(&dst, 0); /* raw IPv6 sockets want 0 (or the protocol) here */
  struct msghdr m = {.msg_name = &dst,
                     .msg_namelen = md_addr_len(&dst),
                     .msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = c.buf,
                     .msg_controllen = sizeof c.buf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  int v4 = t->family == AF_INET;
  cm->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
  cm->cmsg_type = v4 ? IP_TTL : IPV6_HOPLIMIT;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &ttl, sizeof ttl);
  size_t used = CMSG_SPACE(sizeof(int));
  cm = CMSG_NXTHDR(&m, cm);
  int tos = t->o.tos;
  cm->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
  cm->cmsg_type = v4 ? IP_TOS : IPV6_TCLASS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &tos, sizeof tos);
  used += CMSG_SPACE(sizeof(int));
  if (md_addr_family(&t->o.source) != AF_UNSPEC && !t->dgram) {
    cm = CMSG_NXTHDR(&m, cm);
    if (v4) {
      struct in_pktinfo pi = {0};
      pi.ipi_spec_dst = t->o.source.in4.sin_addr;
      cm->cmsg_level = IPPROTO_IP;
      cm->cmsg_type = IP_PKTINFO;
      cm->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(cm), &pi, sizeof pi);
      used += CMSG_SPACE(sizeof pi);
    } else {
      struct in6_pktinfo pi = {0};
      pi.ipi6_addr = t->o.source.in6.sin6_addr;
      cm->cmsg_level = IPPROTO_IPV6;
      cm->cmsg_type = IPV6_PKTINFO;
      cm->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(cm), &pi, sizeof pi);
      used += CMSG_SPACE(sizeof pi);
    }
  }
  m.msg_controllen = used;
  ssize_t n = sendmsg(t->send_fd, &m, 0);
  return n < 0 ? -errno : 0;
}

/* Hand a parsed reply to the trace whose probe it answers. */
static void dispatch(md__rsock *rs, const md_reply *r, int64_t rx_ns) {
  uint16_t seq;
  if (rs->owner) {
    if (md_probe_match(&rs->owner->spec, r, &seq))
      md__trace_on_reply(rs->owner, seq, r, rx_ns);
    return;
  }
  for (md_trace *t = rs->prober->traces; t; t = t->next) {
    if (!t->dgram && md_probe_match(&t->spec, r, &seq)) {
      md__trace_on_reply(t, seq, r, rx_ns);
      return;
    }
  }
}

/* Read the kernel's receive timestamp (and our address, for IPv6). */
static int64_t read_cmsgs(struct msghdr *m, md_addr *to, struct sock_extended_err **ee) {
  int64_t ts = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec tv;
      memcpy(&tv, CMSG_DATA(c), sizeof tv);
      ts = (int64_t)tv.tv_sec * 1000000000 + tv.tv_nsec;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && to) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      memset(to, 0, sizeof *to);
      to->in6.sin6_family = AF_INET6;
      to->in6.sin6_addr = pi.ipi6_addr;
    } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
               (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
      *ee = (struct sock_extended_err *)CMSG_DATA(c);
    }
  }
  return ts ? ts : md_now_real_ns();
}

/* Datagram mode: a router's ICMP error, as the kernel queued it: the data is
 * our own echo request, the offender is the router. */
static void on_errqueue_msg(md__rsock *rs, const uint8_t *buf, size_t n, const md_addr *dst,
                            const struct sock_extended_err *ee, int64_t rx_ns) {
  if (!ee || n < 8)
    return;
  if (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6)
    return;
  md_reply r;
  memset(&r, 0, sizeof r);
  bool v4 = rs->family == AF_INET;
  r.icmp_type = ee->ee_type;
  r.icmp_code = ee->ee_code;
  if ((v4 && ee->ee_type == 11) || (!v4 && ee->ee_type == 3))
    r.kind = MD_REPLY_TIME_EXCEEDED;
  else if ((v4 && ee->ee_type == 3) || (!v4 && ee->ee_type == 1))
    r.kind = MD_REPLY_UNREACH;
  else
    return;
  const struct sockaddr *off = SO_EE_OFFENDER(ee);
  memcpy(&r.from, off, v4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
  r.proto = MD_PROTO_ICMP;
  r.probe_dst = *dst;
  r.sport = (uint16_t)(buf[4] << 8 | buf[5]);
  r.icmp_seq = (uint16_t)(buf[6] << 8 | buf[7]);
  uint16_t seq;
  if (rs->owner && md_probe_match(&rs->owner->spec, &r, &seq))
    md__trace_on_reply(rs->owner, seq, &r, rx_ns);
}

/* Replies read by one system call (recvmmsg). */
#define MD__RX_BATCH 8

/* Drain a socket: everything queued is read now, so one wakeup serves a
 * burst of replies; recvmmsg reads up to MD__RX_BATCH of them per system
 * call and returns as soon as the queue is empty, so the usual single
 * reply costs one call, not a read and a second one that finds nothing. */
static void drain(md__rsock *rs, int flags) {
  uint8_t buf[MD__RX_BATCH][2048]; /* on the stack: a callback may drain again */
  union {
    char b[512];
    struct cmsghdr align;
  } ctl[MD__RX_BATCH];
  md_addr from[MD__RX_BATCH];
  struct iovec iov[MD__RX_BATCH];
  struct mmsghdr mm[MD__RX_BATCH];
  for (int round = 0; round < 256 / MD__RX_BATCH; round++) {
    for (int i = 0; i < MD__RX_BATCH; i++) {
      memset(&from[i], 0, sizeof from[i]);
      iov[i] = (struct iovec){buf[i], sizeof buf[i]};
      mm[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                      .msg_namelen = sizeof from[i],
                                      .msg_iov = &iov[i],
                                      .msg_iovlen = 1,
                                      .msg_controllen = sizeof ctl[i].b};
      // cppcheck-suppress legacyUninitvar ; the kernel fills it
      mm[i].msg_hdr.msg_control = ctl[i].b;
      mm[i].msg_len = 0;
    }
    int got = recvmmsg(rs->fd, mm, MD__RX_BATCH, flags | MSG_DONTWAIT, NULL);
    if (got <= 0)
      return;
    for (int i = 0; i < got; i++) {
      md_addr to;
      memset(&to, 0, sizeof to);
      struct sock_extended_err *ee = NULL;
      int64_t rx = read_cmsgs(&mm[i].msg_hdr, &to, &ee);
      size_t n = mm[i].msg_len;
      if (flags & MSG_ERRQUEUE) {
        on_errqueue_msg(rs, buf[i], n, &from[i], ee, rx);
        continue;
      }
      md_reply r;
      if (md_reply_parse(rs->family, rs->proto, rs->has_ip_header, buf[i], n, &from[i],
                         md_addr_family(&to) ? &to : NULL, &r) == 0)
        dispatch(rs, &r, rx);
    }
    if (got < MD__RX_BATCH)
      return;
  }
}

/* While traces are sending, a shared socket that became readable is read
 * and then left unpolled until the next probe tick reads it again: replies
 * carry kernel timestamps, so reading them a tick later changes no RTT, and
 * the process wakes once per probe instead of twice. */
static void on_readable(uv_poll_t *h, int status, int events) {
  md__rsock *rs = h->data;
  if (status < 0 && status != UV_EBADF) {
    md_warn("probe socket poll error: %s", uv_strerror(status));
    return;
  }
  if (rs->errqueue)
    drain(rs, MSG_ERRQUEUE);
  if (events & UV_READABLE)
    drain(rs, 0);
  if (!rs->owner && rs->prober->n_sending > 0 && !rs->paused) {
    uv_poll_stop(&rs->poll);
    rs->paused = true;
  }
}

void md__prober_service(md_prober *p) {
  for (int i = 0; i < p->n_rx; i++)
    if (p->rx[i]->paused)
      drain(p->rx[i], 0);
}

void md__prober_sending(md_prober *p, int delta) {
  p->n_sending += delta;
  if (p->n_sending > 0)
    return;
  p->n_sending = 0;
  for (int i = 0; i < p->n_rx; i++) {
    md__rsock *rs = p->rx[i];
    if (!rs->paused)
      continue;
    rs->paused = false;
    uv_poll_start(&rs->poll, UV_READABLE, on_readable);
    drain(rs, 0);
  }
}
