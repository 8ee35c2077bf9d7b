/* md-delay: latency injection for the namespace lab (this kernel has no netem).
 *
 *   md-delay --queue N --delay-ms D [--jitter-ms J] [--max-held K]
 *
 * Packets sent to NFQUEUE number N (iptables ... -j NFQUEUE --queue-num N) are held for D ms
 * (uniform in D-J .. D+J, never below 0, when J is given) and then accepted. Only the packet
 * id is copied to user space (NFQNL_COPY_META): the verdict needs no payload. Held packets are
 * kept in a min-heap ordered by due time; one ppoll() waits for the socket or the next due
 * time, so other packets are never blocked behind a held one and the program sleeps when
 * nothing is held. Verdicts may be given out of order (with jitter a later packet can leave
 * first, as with netem).
 *
 * At most K packets are held (default 4096); a packet beyond that gets the DROP verdict and is
 * counted. On SIGTERM, SIGINT, SIGHUP or when the parent goes away (PR_SET_PDEATHSIG) every
 * held packet is accepted at once, the queue is unbound and one summary line goes to stderr.
 * After binding, "md-delay: queue N ready" is printed on stderr (the lab waits for it).
 *
 * Exit status: 0 after a signal, 1 on a runtime error, 2 on bad arguments or when the queue
 * cannot be bound (not root, or another program holds that queue number).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define MAX_DELAY_MS 60000u
#define MAX_HELD_LIMIT 1000000u
#define DEFAULT_MAX_HELD 4096u
#define RCVBUF_BYTES (8u * 1024u * 1024u)
#define BATCH 64 /* messages read per wake-up before releasing due packets again */

struct held {
  uint64_t due_ns;
  uint32_t id;
};

struct state {
  struct nfq_q_handle *qh;
  struct held *heap;
  uint32_t nheld, max_held, max_seen;
  uint64_t delay_ns, jitter_ns;
  uint64_t rng;
  uint64_t received, delayed, dropped, flushed, lost, verdict_errors;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  g_stop = sig;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: jitter needs no more than a cheap, seeded uniform source. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static void heap_push(struct state *st, struct held h) {
  uint32_t i = st->nheld++;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (st->heap[parent].due_ns <= h.due_ns)
      break;
    st->heap[i] = st->heap[parent];
    i = parent;
  }
  st->heap[i] = h;
  if (st->nheld > st->max_seen)
    st->max_seen = st->nheld;
}

static struct held heap_pop(struct state *st) {
  struct held top = st->heap[0];
  struct held last = st->heap[--st->nheld];
  uint32_t i = 0, n = st->nheld;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && st->heap[c + 1].due_ns < st->heap[c].due_ns)
      c++;
    if (last.due_ns <= st->heap[c].due_ns)
      break;
    st->heap[i] = st->heap[c];
    i = c;
  }
  if (n > 0)
    st->heap[i] = last;
  return top;
}

static void verdict(struct state *st, uint32_t id, uint32_t v) {
  if (nfq_set_verdict(st->qh, id, v, 0, NULL) < 0) {
    if (st->verdict_errors++ == 0)
      fprintf(stderr, "md-delay: verdict for packet %" PRIu32 " failed: %s\n", id, strerror(errno));
  }
}

static uint64_t packet_delay(struct state *st) {
  if (st->jitter_ns == 0)
    return st->delay_ns;
  /* uniform in [delay - jitter, delay + jitter], in whole microseconds, floored at 0 */
  uint64_t span_us = 2 * (st->jitter_ns / 1000u) + 1;
  int64_t off_ns = (int64_t)(rng_next(&st->rng) % span_us) * 1000 - (int64_t)st->jitter_ns;
  int64_t d = (int64_t)st->delay_ns + off_ns;
  return d < 0 ? 0 : (uint64_t)d;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data) {
  (void)qh;
  (void)msg;
  struct state *st = data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph)
    return 0;
  uint32_t id = ntohl(ph->packet_id);
  st->received++;
  if (st->nheld >= st->max_held) {
    st->dropped++;
    verdict(st, id, NF_DROP);
    return 0;
  }
  heap_push(st, (struct held){.due_ns = now_ns() + packet_delay(st), .id = id});
  return 0;
}

/* Accept every held packet whose time has come (all of them when `all`). */
static void release(struct state *st, bool all) {
  uint64_t now = now_ns();
  while (st->nheld > 0 && (all || st->heap[0].due_ns <= now)) {
    struct held h = heap_pop(st);
    if (all && h.due_ns > now)
      st->flushed++;
    else
      st->delayed++;
    verdict(st, h.id, NF_ACCEPT);
  }
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: md-delay --queue N --delay-ms D [--jitter-ms J] [--max-held K]\n"
          "  --queue N      NFQUEUE number to bind (0..65535)\n"
          "  --delay-ms D   hold each packet D ms before accepting it (0..%u)\n"
          "  --jitter-ms J  per packet delay uniform in D-J..D+J, floored at 0 (0..%u)\n"
          "  --max-held K   hold at most K packets, drop beyond (1..%u, default %u)\n",
          MAX_DELAY_MS, MAX_DELAY_MS, MAX_HELD_LIMIT, DEFAULT_MAX_HELD);
}

/* A whole decimal number in lo..hi, or exit 2 naming the option. */
static uint32_t parse_num(const char *opt, const char *s, uint32_t lo, uint32_t hi) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || *end || errno || v < lo || v > hi) {
    fprintf(stderr, "md-delay: %s must be a whole number in %" PRIu32 "..%" PRIu32 ", not '%s'\n",
            opt, lo, hi, s);
    exit(2);
  }
  return (uint32_t)v;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"queue", required_argument, NULL, 'q'},
                                       {"delay-ms", required_argument, NULL, 'd'},
                                       {"jitter-ms", required_argument, NULL, 'j'},
                                       {"max-held", required_argument, NULL, 'k'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  long queue = -1, delay_ms = -1;
  uint32_t jitter_ms = 0, max_held = DEFAULT_MAX_HELD;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'q':
      queue = parse_num("--queue", optarg, 0, 65535);
      break;
    case 'd':
      delay_ms = parse_num("--delay-ms", optarg, 0, MAX_DELAY_MS);
      break;
    case 'j':
      jitter_ms = parse_num("--jitter-ms", optarg, 0, MAX_DELAY_MS);
      break;
    case 'k':
      max_held = parse_num("--max-held", optarg, 1, MAX_HELD_LIMIT);
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      fprintf(stderr, "md-delay: unknown option or missing value: %s\n", argv[optind - 1]);
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "md-delay: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (queue < 0 || delay_ms < 0) {
    fprintf(stderr, "md-delay: --queue and --delay-ms are required\n");
    usage(stderr);
    return 2;
  }

  /* Die with whoever started us (the lab script); if it is already gone, do not start. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
    fprintf(stderr, "md-delay: parent process gone at start\n");
    return 1;
  }

  /* Wake up on time: the default 50 us timer slack is needless error for a delay line. */
  prctl(PR_SET_TIMERSLACK, 1UL);

  /* Signals are only delivered inside ppoll(), so the loop never misses one. */
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGHUP);
  sigprocmask(SIG_BLOCK, &block, &waitmask);
  sigdelset(&waitmask, SIGTERM);
  sigdelset(&waitmask, SIGINT);
  sigdelset(&waitmask, SIGHUP);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  struct state st = {.max_held = max_held,
                     .delay_ns = (uint64_t)delay_ms * 1000000u,
                     .jitter_ns = (uint64_t)jitter_ms * 1000000u,
                     .rng = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull};
  st.heap = calloc(max_held, sizeof *st.heap);
  if (!st.heap) {
    fprintf(stderr, "md-delay: out of memory for %" PRIu32 " held packets\n", max_held);
    return 1;
  }

  /* Kernels since 3.8 need no nfq_bind_pf(): queues serve every family. */
  struct nfq_handle *h = nfq_open();
  if (!h) {
    fprintf(stderr, "md-delay: cannot open nfnetlink queue socket: %s\n", strerror(errno));
    free(st.heap);
    return 2;
  }
  st.qh = nfq_create_queue(h, (uint16_t)queue, on_packet, &st);
  if (!st.qh) {
    /* The kernel answers EPERM both without CAP_NET_ADMIN and for a queue bound elsewhere. */
    int err = errno;
    const char *hint = err != EPERM     ? ""
                       : geteuid() == 0 ? " (another program is bound to that queue number)"
                                        : " (needs root/CAP_NET_ADMIN, or the queue is in use)";
    fprintf(stderr, "md-delay: cannot bind NFQUEUE %ld: %s%s\n", queue, strerror(err), hint);
    nfq_close(h);
    free(st.heap);
    return 2;
  }
  if (nfq_set_mode(st.qh, NFQNL_COPY_META, 0) < 0) {
    fprintf(stderr, "md-delay: cannot set NFQUEUE %ld to metadata-only copy: %s\n", queue,
            strerror(errno));
    nfq_destroy_queue(st.qh);
    nfq_close(h);
    free(st.heap);
    return 2;
  }
  /* The kernel queue holds our held packets plus those not read yet; let --max-held decide. */
  uint32_t kmax = max_held > UINT32_MAX - 1024 ? UINT32_MAX : max_held + 1024;
  if (nfq_set_queue_maxlen(st.qh, kmax) < 0)
    fprintf(stderr, "md-delay: cannot set kernel queue length %" PRIu32 ": %s\n", kmax,
            strerror(errno));
  /* GSO packets as they are (no segmentation for a verdict that ignores the payload). */
  nfq_set_queue_flags(st.qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);
  nfnl_rcvbufsiz(nfq_nfnlh(h), RCVBUF_BYTES);

  int fd = nfq_fd(h);
  fprintf(stderr,
          "md-delay: queue %ld ready (delay %ld ms, jitter %" PRIu32 " ms, max held %" PRIu32 ")\n",
          queue, delay_ms, jitter_ms, max_held);

  static char buf[65536] __attribute__((aligned(8)));
  int rc = 0;
  while (!g_stop) {
    release(&st, false);
    struct timespec ts, *tmo = NULL;
    if (st.nheld > 0) {
      uint64_t now = now_ns(), due = st.heap[0].due_ns;
      uint64_t wait = due > now ? due - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000u);
      ts.tv_nsec = (long)(wait % 1000000000u);
      tmo = &ts;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = ppoll(&pfd, 1, tmo, &waitmask);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "md-delay: ppoll: %s\n", strerror(errno));
      rc = 1;
      break;
    }
    if (n == 0 || !(pfd.revents & (POLLIN | POLLERR)))
      continue;
    for (int i = 0; i < BATCH; i++) {
      ssize_t len = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (len < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
          break;
        if (errno == ENOBUFS) {
          /* The socket overran: some packets' messages were lost (they stay queued in the
           * kernel until we exit, which drops them). Count it and go on. */
          st.lost++;
          continue;
        }
        fprintf(stderr, "md-delay: recv: %s\n", strerror(errno));
        rc = 1;
        break;
      }
      nfq_handle_packet(h, buf, (int)len);
    }
    if (rc)
      break;
  }

  release(&st, true);
  nfq_destroy_queue(st.qh);
  nfq_close(h);
  free(st.heap);
  fprintf(stderr,
          "md-delay: queue %ld: %" PRIu64 " packets, %" PRIu64 " delayed, %" PRIu64
          " dropped (over --max-held %" PRIu32 "), %" PRIu64 " released early at exit, %" PRIu64
          " socket overruns, %" PRIu64 " verdict errors, at most %" PRIu32 " held\n",
          queue, st.received, st.delayed, st.dropped, max_held, st.flushed, st.lost,
          st.verdict_errors, st.max_seen);
  return rc;
}
