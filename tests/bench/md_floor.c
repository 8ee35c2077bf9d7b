/* md-floor: the least a paced prober can do per probe, as a yardstick for
 * bench_trace.sh. It sends ICMP echo requests with mtr's pacing (TTL 1..HOPS
 * each cycle, one probe every INTERVAL/HOPS seconds, one timer wakeup per
 * probe) and does nothing else: no statistics, no parsing beyond counting,
 * no output but one line. What it costs per 1000 probes is the kernel's
 * part of paced probing on this machine (the wakeup, one sendmsg, reading
 * the reply), which any prober with mtr's pacing pays, mtr-agent included.
 *
 *   md-floor TARGET HOPS CYCLES INTERVAL_S     (root: a raw socket)
 *
 * Prints "sent N received M" on stderr. IPv4 or IPv6 by the address.
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

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: md-floor TARGET HOPS CYCLES INTERVAL_S\n");
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
  int hops = atoi(argv[2]), cycles = atoi(argv[3]);
  double interval = atof(argv[4]);
  if (hops < 1 || hops > 64 || cycles < 1 || interval <= 0) {
    fprintf(stderr, "md-floor: HOPS 1..64, CYCLES >= 1, INTERVAL_S > 0\n");
    return 2;
  }
  int fd = socket(ss.ss_family, SOCK_RAW | SOCK_CLOEXEC, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
  int ep = epoll_create1(EPOLL_CLOEXEC); /* no descriptors: a pure timer, as a loop's */
  if (fd < 0 || ep < 0) {
    fprintf(stderr, "md-floor: %s\n", strerror(errno));
    return 1;
  }
  int gap_ms = (int)(interval * 1000 / hops);
  int sent = 0, received = 0;
  int64_t next = now_ms();
  for (int c = 0; c < cycles; c++) {
    for (int ttl = 1; ttl <= hops; ttl++) {
      uint8_t pkt[64] = {0};
      pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
      pkt[4] = 0x4d, pkt[5] = 0x46; /* identifier */
      pkt[6] = (uint8_t)(sent >> 8), pkt[7] = (uint8_t)sent;
      if (!v6) {
        uint16_t k = cksum(pkt, sizeof pkt);
        pkt[2] = (uint8_t)(k >> 8), pkt[3] = (uint8_t)k;
      } /* ICMPv6: the kernel fills in the checksum */
      union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
      } ctl;
      struct iovec iov = {pkt, sizeof pkt};
      struct msghdr m = {.msg_name = &ss,
                         .msg_namelen = v6 ? sizeof *s6 : sizeof *s4,
                         .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.b,
                         .msg_controllen = sizeof ctl.b};
      struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
      cm->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      cm->cmsg_type = v6 ? IPV6_HOPLIMIT : IP_TTL;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(cm), &ttl, sizeof ttl);
      if (sendmsg(fd, &m, 0) > 0)
        sent++;
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
