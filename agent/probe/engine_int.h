/* Internals shared by prober.c, trace.c and rdns.c. Not a public header. */
#ifndef MD_ENGINE_INT_H
#define MD_ENGINE_INT_H

#include "engine.h"

/* One probe in the ring of a trace. */
typedef struct md__probe {
  uint16_t seq; /* 0: slot free */
  uint8_t ttl;
  bool pending; /* sent, neither answered nor given up */
  int64_t sent_real_ns;
  int64_t sent_mono_ns;
} md__probe;

/* A receive socket of the prober (or of a datagram-mode trace). */
typedef struct md__rsock {
  uv_poll_t poll;
  int fd;
  int family;
  int proto;          /* IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP */
  bool has_ip_header; /* IPv4 raw sockets */
  bool errqueue;      /* datagram ICMP socket: time exceeded arrives on the error queue */
  bool paused;        /* not polled: read at the next probe tick instead */
  md_prober *prober;
  md_trace *owner; /* datagram socket of one trace; NULL for shared raw sockets */
} md__rsock;

struct md_prober {
  uv_loop_t *loop;
  bool raw;
  int send_fd[2][3]; /* [v4=0,v6=1][md_proto]: raw send sockets, -1 if absent */
  md__rsock *rx[4];  /* icmp4, icmp6, tcp4, tcp6 receive sockets */
  int n_rx;
  md_trace *traces; /* active traces, linked through next */
  int n_sending;    /* traces still sending probes: while > 0 replies are read at ticks */
  uint32_t ident_seed;
};

typedef struct md__rdns md__rdns;

struct md_trace {
  md_prober *prober;
  md_trace *next;
  md_trace_opts o;
  md_trace_cb cb;
  void *ud;
  md_probe_spec spec;
  md_path *path;
  int family;

  int send_fd;      /* the prober's raw socket, or the datagram socket */
  md__rsock *dgram; /* datagram mode: this trace's own socket */
  int reserve_fd;   /* keeps the Paris UDP/TCP source port ours */

  md__probe *ring;
  uint32_t ring_mask;
  int n_pending;          /* probes of the ring sent and neither answered nor given up */
  int64_t sweep_due_mono; /* no pending probe expires before this (0: none pending) */
  uint16_t next_seq;

  uv_timer_t tick;  /* paces the probes of a cycle */
  uv_timer_t sweep; /* gives up on probes after the grace time; ends the run */
  int cycle;        /* cycles started */
  int cursor;       /* next TTL to send in this cycle */
  int64_t cycle_start_mono;
  int64_t probing_end_mono; /* when the last probe left; 0 while probing */
  int dest_ttl;             /* lowest TTL the target answered at; 0 unknown */
  int highest_seen;         /* highest TTL that answered */
  int highest_sent;         /* highest TTL probed */
  int status;
  bool sending_done, done_called, cancelled;
  bool counted_sending; /* counted in prober->n_sending */
  int closing;          /* handles still to close before free */
  bool free_requested;

  md__rdns *rdns;
};

/* prober.c */
int md__prober_send(md_trace *t, const uint8_t *pkt, size_t len, int ttl);
int md__prober_open_dgram(md_trace *t, char *err, size_t errlen);
void md__prober_detach(md_trace *t);
/* Read what the paused receive sockets hold (called at every probe tick). */
void md__prober_service(md_prober *p);
/* A trace starts (+1) or stops (-1) sending; at 0 the sockets are polled again. */
void md__prober_sending(md_prober *p, int delta);

/* trace.c: a reply that matched probe `seq` of trace t. */
void md__trace_on_reply(md_trace *t, uint16_t seq, const md_reply *r, int64_t rx_real_ns);

/* rdns.c: reverse lookups off the probe path (libuv's thread pool). */
md__rdns *md__rdns_new(md_trace *t);
void md__rdns_lookup(md__rdns *d, const md_addr *a);
int md__rdns_pending(const md__rdns *d);
/* Detach from the trace: answers arriving later are dropped. */
void md__rdns_release(md__rdns *d);

#endif
