/* md-floor: the least a paced prober can do per probe, as a yardstick for
 * bench_trace.sh. It sends ICMP echo requests with mtr's pacing (TTL 1..HOPS
 * each cycle, one probe every INTERVAL/HOPS seconds, one timer wakeup per
 * probe) and does nothing else: no statistics, no parsing beyond counting,
 * no output but one line. What it costs per 1000 probes is the kernel's
 * part of paced probing on this machine (the wakeup, one sendmsg, reading
 * the reply), which any prober with mtr's pacing pays, mtr-agent included.
 *
 *   md-floor TARGET HOPS CYCLES INTERVAL_S [BURST]     (root: a raw socket)
 *
 * BURST (default 1, mtr's pacing) sends that many TTLs per wakeup in one
 * sendmmsg call; BURST = HOPS sends a whole cycle at once, unpaced, to show
 * what giving up pacing would save. Prints "sent N received M" on stderr.
 * IPv4 or IPv6 by the address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The Internet checksum (RFC 1071) of an ICMPv4 message. */
static uint16_t cksum(const uint8_t *p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1)
    s += (uint32_t)p[n - 1] << 8;
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every reply queued, in one recvmmsg call as a rule; the number read. */
static int drain(int fd) {
  static uint8_t buf[8][1500];
  struct iovec iov[8];
  struct mmsghdr mm[8];
  int total = 0, got;
  do {
    for (int i = 0; i < 8; i++) {
      iov[i] = (struct iovec){buf[i], sizeof buf[i]};
      memset(&mm[i], 0, sizeof mm[i]);
      mm[i].msg_hdr.msg_iov = &iov[i];
      mm[i].msg_hdr.msg_iovlen = 1;
    }
    got = recvmmsg(fd, mm, 8, MSG_DONTWAIT, NULL);
    if (got > 0)
      total += got;
  } while (got == 8);
  return total;
}

/* One echo request for ttl into slot i of the batch. */
static void build(int i, bool v6, int seq, int ttl, uint8_t pkt[][64], struct iovec *iov,
                  struct mmsghdr *mm, void *ctl, size_t ctl_len, struct sockaddr_storage *to) {
  memset(pkt[i], 0, 64);
  pkt[i][0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
  pkt[i][4] = 0x4d, pkt[i][5] = 0x46; /* identifier */
  pkt[i][6] = (uint8_t)(seq >> 8), pkt[i][7] = (uint8_t)seq;
  if (!v6) {
    uint16_t k = cksum(pkt[i], 64);
    pkt[i][2] = (uint8_t)(k >> 8), pkt[i][3] = (uint8_t)k;
  } /* ICMPv6: the kernel fills in the checksum */
  iov[i] = (struct iovec){pkt[i], 64};
  memset(&mm[i], 0, sizeof mm[i]);
  struct msghdr *m = &mm[i].msg_hdr;
  m->msg_name = to;
  m->msg_namelen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  m->msg_iov = &iov[i];
  m->msg_iovlen = 1;
  m->msg_control = ctl;
  m->msg_controllen = ctl_len;
  struct cmsghdr *cm = CMSG_FIRSTHDR(m);
  cm->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
  cm->cmsg_type = v6 ? IPV6_HOPLIMIT : IP_TTL;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &ttl, sizeof ttl);
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: md-floor TARGET HOPS CYCLES INTERVAL_S [BURST]\n");
    return 2;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  bool v6 = strchr(argv[1], ':') != NULL;
  if (v6 ? inet_pton(AF_INET6, argv[1], &s6->sin6_addr) != 1
         : inet_pton(AF_INET, argv[1], &s4->sin_addr) != 1) {
    fprintf(stderr, "md-floor: bad address %s\n", argv[1]);
    return 2;
  }
  ss.ss_family = v6 ? AF_INET6 : AF_INET;
  int hops = atoi(argv[2]), cycles = atoi(argv[3]), burst = argc == 6 ? atoi(argv[5]) : 1;
  double interval = atof(argv[4]);
  if (hops < 1 || hops > 64 || cycles < 1 || interval <= 0 || burst < 1 || burst > hops) {
    fprintf(stderr, "md-floor: HOPS 1..64, CYCLES >= 1, INTERVAL_S > 0, BURST 1..HOPS\n");
    return 2;
  }
  int fd = socket(ss.ss_family, SOCK_RAW | SOCK_CLOEXEC, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
  int ep = epoll_create1(EPOLL_CLOEXEC); /* no descriptors: a pure timer, as a loop's */
  if (fd < 0 || ep < 0) {
    fprintf(stderr, "md-floor: %s\n", strerror(errno));
    return 1;
  }
  int wakeups = (hops + burst - 1) / burst; /* per cycle */
  int gap_ms = (int)(interval * 1000 / wakeups);
  int sent = 0, received = 0;
  int64_t next = now_ms();
  static uint8_t pkt[64][64];
  static union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[64];
  struct iovec iov[64];
  struct mmsghdr mm[64];
  for (int c = 0; c < cycles; c++) {
    for (int ttl = 1; ttl <= hops;) {
      int n = 0;
      for (; n < burst && ttl <= hops; n++, ttl++)
        build(n, v6, sent + n, ttl, pkt, iov, mm, ctl[n].b, sizeof ctl[n].b, &ss);
      int ok = n == 1 ? (sendmsg(fd, &mm[0].msg_hdr, 0) > 0) : sendmmsg(fd, mm, (unsigned)n, 0);
      sent += ok > 0 ? ok : 0;
      next += gap_ms;
      int64_t wait = next - now_ms();
      struct epoll_event ev;
      if (wait > 0)
        epoll_wait(ep, &ev, 1, (int)wait);
      received += drain(fd);
    }
  }
  fprintf(stderr, "sent %d received %d\n", sent, received);
  return 0;
}
