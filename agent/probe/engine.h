/* engine: traces paths the way mtr does, on a libuv loop.
 *
 *   md_prober  the process's probe sockets (raw with CAP_NET_RAW, else ICMP
 *              datagram sockets) and the receive side that hands each reply
 *              to the trace it belongs to. Open it once, before dropping
 *              privileges; many traces share it.
 *   md_trace   one run toward one target: cycles of probes, all TTLs of a
 *              cycle in flight together, paced over the interval; per-TTL
 *              statistics in an md_path; callbacks per probe, per cycle and
 *              at the end.
 */
#ifndef MD_ENGINE_H
#define MD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "md_addr.h"
#include "md_path.h"
#include "packet.h"

typedef struct md_trace_opts {
  md_addr target;          /* numeric; resolve names before calling */
  const char *target_name; /* for the report; may be NULL */
  const char *source_name; /* for the report; may be NULL (hostname used) */
  md_addr source;          /* unspecified: chosen by the kernel's routing */
  md_proto proto;          /* default ICMP */
  int cycles;              /* -c, default 10 */
  double interval_s;       /* -i, default 1.0 */
  int psize;               /* -s, default 64 */
  int first_ttl;           /* -f, default 1 */
  int max_ttl;             /* -m, default 30 */
  int max_unknown;         /* -U, default 5 */
  int tos;                 /* -Q, default 0 */
  uint16_t port;           /* -P, default 33434 for UDP, 80 for TCP */
  uint16_t local_port;     /* -L, 0: chosen */
  double grace_s;          /* --gracetime, default 5.0: how long a probe may stay unanswered */
  bool no_dns;             /* -n */
  bool classic;            /* mtr's varying fields instead of constant-flow probes */
} md_trace_opts;

/* mtr's defaults. */
void md_trace_opts_default(md_trace_opts *o);
/* Check ranges; on error return -EINVAL and write a message naming the option. */
int md_trace_opts_check(const md_trace_opts *o, char *err, size_t errlen);

typedef struct md_prober md_prober;
typedef struct md_trace md_trace;

/* One probe's fate, for mtr's --split stream and for live displays. */
typedef struct md_probe_event {
  int ttl;
  uint16_t seq;
  bool replied; /* false: given up after grace time */
  md_addr from; /* responder when replied */
  double rtt_ms;
} md_probe_event;

typedef struct md_trace_cb {
  void (*on_probe)(md_trace *t, void *ud, const md_probe_event *ev); /* optional */
  void (*on_cycle)(md_trace *t, void *ud, int cycles_done);          /* optional */
  /* Always called exactly once, from the loop: status 0 (all cycles ran),
   * -ECANCELED (md_trace_cancel), or another negative errno (send failed...). */
  void (*on_done)(md_trace *t, void *ud, int status);
} md_trace_cb;

enum { MD_PROBER_NO_RAW = 1 }; /* for tests: behave as if CAP_NET_RAW were missing */

/* Open the probe sockets on this loop. Raw sockets where permitted; else
 * ICMP datagram sockets (logged once). 0 or -errno. */
int md_prober_open(uv_loop_t *loop, unsigned flags, md_prober **out);
/* True when raw sockets are in use (UDP and TCP need them). */
bool md_prober_is_raw(const md_prober *p);
/* Close after every trace on it has finished; close_cb may be NULL. */
void md_prober_close(md_prober *p);

/* Start a trace. 0 or -errno (-EPROTONOSUPPORT: UDP/TCP without raw sockets;
 * -EADDRNOTAVAIL: no route / bad source). err gets a readable reason. */
int md_trace_start(md_prober *p, const md_trace_opts *o, const md_trace_cb *cb, void *ud,
                   md_trace **out, char *err, size_t errlen);
/* Stop sending now; on_done(-ECANCELED) follows from the loop. */
void md_trace_cancel(md_trace *t);
/* The statistics so far (valid until md_trace_free). */
const md_path *md_trace_path(const md_trace *t);
const md_trace_opts *md_trace_options(const md_trace *t);
/* Reverse DNS lookups still running (they may outlive the trace). */
int md_trace_rdns_pending(const md_trace *t);
/* Release a trace after on_done. */
void md_trace_free(md_trace *t);

#endif
