/* trace: one run toward one target, scheduled the way mtr does it.
 *
 * Each cycle sends one probe per TTL, first-ttl upward, paced evenly over the
 * interval, so every TTL of a cycle is in flight together. A cycle stops at
 * the destination's TTL once known, at max-ttl, or max-unknown TTLs past the
 * highest TTL that ever answered. A probe is pending until its reply, or
 * until the grace time has passed since it left (then it is lost); pending
 * probes count as neither received nor lost. After the last cycle the trace
 * waits for pending probes (at most the grace time) and for reverse DNS
 * answers (at most 250 ms), then reports.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"
#include "md_log.h"
#include "md_time.h"

#define SWEEP_MS 50           /* how often pending probes are checked */
#define DNS_WAIT_NS 250000000 /* how long the end waits for reverse DNS */

static void finish(md_trace *t, int status);

/* The TTL beyond which this cycle does not go, from what is known so far. */
static int cycle_limit(const md_trace *t) {
  if (t->dest_ttl)
    return t->dest_ttl;
  int base = t->highest_seen >= t->o.first_ttl ? t->highest_seen : t->o.first_ttl - 1;
  int lim = base + t->o.max_unknown;
  return lim > t->o.max_ttl ? t->o.max_ttl : lim;
}

/* Ring big enough for every probe that can be pending at once. */
static int ring_alloc(md_trace *t) {
  double per_s = (t->o.max_ttl - t->o.first_ttl + 1) / t->o.interval_s;
  double need = per_s * (t->o.grace_s + t->o.interval_s) * 1.5 + 64;
  uint32_t n = 64;
  while (n < need && n < 32768)
    n <<= 1;
  t->ring = calloc(n, sizeof *t->ring);
  if (!t->ring)
    return -ENOMEM;
  t->ring_mask = n - 1;
  return 0;
}

/* Next probe sequence: never 0, and never 0xffff (a UDP checksum cannot
 * take every value, see packet.h). */
static uint16_t next_seq(md_trace *t) {
  uint16_t s = t->next_seq++;
  if (s == 0 || s == 0xffff) {
    t->next_seq = 2;
    s = 1;
  }
  return s;
}

/* A probe is given up on: counted lost at its TTL. */
static void give_up(md_trace *t, md__probe *pr) {
  pr->pending = false;
  t->n_pending--;
  md_hop *h = md_path_hop(t->path, pr->ttl);
  if (h)
    md_stats_on_timeout(&h->st);
  if (t->cb.on_probe) {
    md_probe_event ev = {.ttl = pr->ttl, .seq = pr->seq, .replied = false};
    t->cb.on_probe(t, t->ud, &ev);
  }
}

/* Send the probe for one TTL. */
static int send_probe(md_trace *t, int ttl) {
  uint8_t pkt[9216];
  uint16_t seq = next_seq(t);
  int len = md_probe_build(&t->spec, seq, pkt, sizeof pkt);
  if (len < 0)
    return len;
  md__probe *pr = &t->ring[seq & t->ring_mask];
  if (pr->pending)
    give_up(t, pr); /* the ring wrapped: older than any grace time */
  md_hop *h = md_path_hop(t->path, ttl);
  if (!h)
    return -ENOMEM;
  pr->seq = seq;
  pr->ttl = (uint8_t)ttl;
  pr->sent_mono_ns = md_now_mono_ns();
  pr->sent_real_ns = md_now_real_ns();
  int rc = md__prober_send(t, pkt, (size_t)len, ttl);
  if (rc < 0 && rc != -EHOSTUNREACH && rc != -ENETUNREACH && rc != -ENOBUFS && rc != -EAGAIN)
    return rc;
  /* an unroutable or dropped send is a lost probe, as mtr counts it */
  pr->pending = true;
  if (t->n_pending++ == 0 || !t->sweep_due_mono)
    t->sweep_due_mono = pr->sent_mono_ns + (int64_t)(t->o.grace_s * 1e9);
  md_stats_on_sent(&h->st);
  if (ttl > t->highest_sent)
    t->highest_sent = ttl;
  return 0;
}

/* Milliseconds between two probes of this cycle: the interval spread over the
 * TTLs it is expected to probe. */
static uint64_t tick_ms(const md_trace *t) {
  int n = cycle_limit(t) - t->o.first_ttl + 1;
  if (t->cycle == 1 && !t->dest_ttl)
    n = t->o.max_ttl - t->o.first_ttl + 1 < 2 * t->o.max_unknown ? t->o.max_ttl - t->o.first_ttl + 1
                                                                 : 2 * t->o.max_unknown;
  if (n < 1)
    n = 1;
  double ms = t->o.interval_s * 1000.0 / n;
  return ms < 1 ? 1 : (uint64_t)ms;
}

/* The pacing timer: send the next TTL, or end the cycle, or start the next. */
static void on_sweep(uv_timer_t *h);
static int sweep(md_trace *t, int64_t now);

/* Sending is over: replies are polled for again, and the sweep timer takes
 * over until the last pending probe is answered or given up. */
static void stop_sending(md_trace *t, int64_t now) {
  t->sending_done = true;
  t->probing_end_mono = now;
  if (t->counted_sending) {
    t->counted_sending = false;
    md__prober_sending(t->prober, -1);
  }
}

/* How early a cycle may start: libuv's millisecond clock can fire a timer
 * up to a millisecond before the nanosecond time it was aimed at; a cycle
 * that is due within this starts now instead of costing one more wakeup. */
#define CYCLE_SLACK_NS 1000000

/* Milliseconds from now to mono_ns, rounded up. */
static uint64_t ms_until(int64_t now, int64_t mono_ns) {
  return mono_ns > now ? (uint64_t)((mono_ns - now + 999999) / 1000000) : 0;
}

/* One wakeup per probe: read the replies that came since the last one,
 * give up on overdue probes, send the next TTL. The wakeup after a cycle's
 * last probe is aimed at the next cycle's start, so it ends one cycle and
 * begins the next. */
static void on_tick(uv_timer_t *h) {
  md_trace *t = h->data;
  if (t->sending_done)
    return;
  int64_t now = md_now_mono_ns();
  int64_t interval_ns = (int64_t)(t->o.interval_s * 1e9);
  md__prober_service(t->prober); /* replies that came since the last tick */
  if (t->done_called)
    return;
  sweep(t, now);
  if (t->cursor > cycle_limit(t)) {
    /* this cycle is complete; the next starts one interval after this one */
    if (t->cb.on_cycle)
      t->cb.on_cycle(t, t->ud, t->cycle);
    if (t->cycle >= t->o.cycles) {
      stop_sending(t, now);
      uv_timer_start(&t->sweep, on_sweep, 0, SWEEP_MS);
      return;
    }
    int64_t next = t->cycle_start_mono + interval_ns;
    if (next - now > CYCLE_SLACK_NS) {
      uv_timer_start(&t->tick, on_tick, ms_until(now, next), 0);
      t->cursor = -1; /* marker: waiting for the next cycle */
      return;
    }
  }
  if (t->cursor > cycle_limit(t) || t->cursor < 0) {
    /* cycles keep to their schedule (a wakeup a little late or early does
     * not shift the ones after it) unless the loop fell a whole interval behind */
    int64_t next = t->cycle_start_mono + interval_ns;
    t->cycle_start_mono = t->cycle > 0 && now - next < interval_ns ? next : now;
    t->cycle++;
    t->cursor = t->o.first_ttl;
  }
  int rc = send_probe(t, t->cursor);
  if (rc < 0) {
    md_warn("probe to TTL %d failed: %s", t->cursor, strerror(-rc));
    finish(t, rc);
    return;
  }
  t->cursor++;
  uint64_t delay = tick_ms(t);
  if (t->cursor > cycle_limit(t)) {
    uint64_t to_next = ms_until(now, t->cycle_start_mono + interval_ns);
    if (to_next > delay)
      delay = to_next;
  }
  uv_timer_start(&t->tick, on_tick, delay, 0);
}

/* Give up on probes past the grace time; the number still pending. While
 * sending this runs at every tick; afterwards the sweep timer runs it and
 * ends the run once nothing more is to come. Probes leave in order, so the
 * oldest pending one is the first to expire: the ring is only walked once
 * that time (sweep_due) has come, not at every tick. */
static int sweep(md_trace *t, int64_t now) {
  if (t->n_pending == 0 || now < t->sweep_due_mono)
    return t->n_pending;
  int64_t grace = (int64_t)(t->o.grace_s * 1e9);
  int64_t due = 0;
  for (uint32_t i = 0; i <= t->ring_mask; i++) {
    md__probe *pr = &t->ring[i];
    if (!pr->pending)
      continue;
    if (now - pr->sent_mono_ns >= grace)
      give_up(t, pr);
    else if (!due || pr->sent_mono_ns + grace < due)
      due = pr->sent_mono_ns + grace;
  }
  t->sweep_due_mono = due;
  return t->n_pending;
}

static void on_sweep(uv_timer_t *h) {
  md_trace *t = h->data;
  int64_t now = md_now_mono_ns();
  int pending = sweep(t, now);
  if (!t->sending_done)
    return;
  bool dns_busy =
      t->rdns && md__rdns_pending(t->rdns) > 0 && now - t->probing_end_mono < DNS_WAIT_NS;
  if (pending == 0 && !dns_busy)
    finish(t, 0);
}

/* Record a reply to one of our probes. */
void md__trace_on_reply(md_trace *t, uint16_t seq, const md_reply *r, int64_t rx_real_ns) {
  md__probe *pr = &t->ring[seq & t->ring_mask];
  if (!pr->pending || pr->seq != seq)
    return; /* a duplicate, or one we already gave up on */
  pr->pending = false;
  t->n_pending--;
  int ttl = pr->ttl;
  bool at_target = md_addr_equal(&r->from, &t->spec.dst);
  if (at_target && (!t->dest_ttl || ttl < t->dest_ttl))
    t->dest_ttl = ttl;
  if (t->dest_ttl && ttl > t->dest_ttl)
    return; /* beyond the destination: the destination again, not a hop */
  double rtt_us = (double)(rx_real_ns - pr->sent_real_ns) / 1000.0;
  if (rtt_us < 0)
    rtt_us = 0;
  md_hop *h = md_path_hop(t->path, ttl);
  if (!h)
    return;
  md_stats_on_reply(&h->st, rtt_us);
  md_host *host = md_hop_add_host(h, &r->from, r->mpls, r->n_mpls);
  if (host && host->count == 1 && !t->o.no_dns && t->rdns)
    md__rdns_lookup(t->rdns, &r->from);
  if (at_target)
    t->path->reached = true;
  if (ttl > t->highest_seen)
    t->highest_seen = ttl;
  if (t->cb.on_probe) {
    md_probe_event ev = {
        .ttl = ttl, .seq = seq, .replied = true, .from = r->from, .rtt_ms = rtt_us / 1000.0};
    t->cb.on_probe(t, t->ud, &ev);
  }
}

/* The address the kernel would send from toward the target: checksums over
 * the pseudo-header need it. */
static int pick_source(md_trace *t, char *err, size_t errlen) {
  if (md_addr_family(&t->o.source) != AF_UNSPEC) {
    t->spec.src = t->o.source;
    return 0;
  }
  int fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  md_addr dst = t->spec.dst;
  md_addr_set_port(&dst, 33434);
  int rc = 0;
  socklen_t len = sizeof t->spec.src;
  if (connect(fd, &dst.sa, md_addr_len(&dst)) != 0 || getsockname(fd, &t->spec.src.sa, &len) != 0) {
    rc = -errno;
    char a[MD_ADDRSTRLEN];
    snprintf(err, errlen, "no route to %s: %s", md_addr_str(&t->spec.dst, a, sizeof a),
             strerror(errno));
  }
  close(fd);
  md_addr_set_port(&t->spec.src, 0);
  return rc;
}

/* Reserve the source port of constant-flow UDP and TCP probes, so no other
 * socket on this host is given it while the trace runs. */
static int reserve_port(md_trace *t) {
  int type = t->o.proto == MD_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
  int fd = socket(t->family, type | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  md_addr a = t->spec.src;
  md_addr_set_port(&a, t->o.local_port);
  socklen_t len = sizeof a;
  if (bind(fd, &a.sa, md_addr_len(&a)) != 0 || getsockname(fd, &a.sa, &len) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  t->reserve_fd = fd;
  t->spec.ident = md_addr_port(&a);
  return 0;
}

/* A 16-bit ICMP id not used by another trace of this prober. */
static uint16_t pick_ident(md_prober *p) {
  for (;;) {
    p->ident_seed = p->ident_seed * 1103515245u + 12345u;
    uint16_t id = (uint16_t)(p->ident_seed >> 16);
    if (id == 0)
      continue;
    bool used = false;
    for (md_trace *o = p->traces; o; o = o->next)
      if (o->spec.proto == MD_PROTO_ICMP && o->spec.ident == id)
        used = true;
    if (!used)
      return id;
  }
}

int md_trace_start(md_prober *p, const md_trace_opts *o, const md_trace_cb *cb, void *ud,
                   md_trace **out, char *err, size_t errlen) {
  int rc = md_trace_opts_check(o, err, errlen);
  if (rc < 0)
    return rc;
  if (!p->raw && o->proto != MD_PROTO_ICMP) {
    snprintf(err, errlen, "%s probes need raw sockets (CAP_NET_RAW); only ICMP works without",
             md_proto_name(o->proto));
    return -EPROTONOSUPPORT;
  }
  md_trace *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  t->prober = p;
  t->o = *o;
  t->cb = *cb;
  t->ud = ud;
  t->family = md_addr_family(&o->target);
  t->reserve_fd = -1;
  t->send_fd = -1;
  t->next_seq = 1;
  t->spec.proto = o->proto;
  t->spec.dst = o->target;
  md_addr_set_port(&t->spec.dst, 0);
  t->spec.paris = !o->classic;
  t->spec.psize = o->psize;
  t->spec.port = o->port ? o->port : (o->proto == MD_PROTO_TCP ? 80 : 33434);
  rc = pick_source(t, err, errlen);
  if (rc == 0 && o->proto != MD_PROTO_ICMP) {
    rc = reserve_port(t);
    if (rc < 0)
      snprintf(err, errlen, "cannot reserve local port %u: %s", o->local_port, strerror(-rc));
  }
  if (rc == 0 && o->proto == MD_PROTO_ICMP)
    t->spec.ident = pick_ident(p);
  if (rc == 0 && !p->raw)
    rc = md__prober_open_dgram(t, err, errlen);
  else if (rc == 0)
    t->send_fd = p->send_fd[t->family == AF_INET6][o->proto];
  if (rc == 0 && t->send_fd < 0) {
    snprintf(err, errlen, "no %s socket for this address family", md_proto_name(o->proto));
    rc = -EAFNOSUPPORT;
  }
  if (rc == 0)
    rc = ring_alloc(t);
  char tbuf[MD_ADDRSTRLEN], host[256] = "localhost";
  if (rc == 0) {
    gethostname(host, sizeof host - 1);
    md_addr_str(&t->spec.dst, tbuf, sizeof tbuf);
    t->path = md_path_new(o->source_name ? o->source_name : host, tbuf,
                          o->target_name ? o->target_name : tbuf, o->first_ttl);
    if (!t->path)
      rc = -ENOMEM;
  }
  if (rc < 0) {
    if (err[0] == 0)
      snprintf(err, errlen, "cannot start the trace: %s", strerror(-rc));
    if (t->dgram)
      md__prober_detach(t);
    if (t->reserve_fd >= 0)
      close(t->reserve_fd);
    free(t->ring);
    free(t);
    return rc;
  }
  t->path->started_at_ns = md_now_real_ns();
  if (!o->no_dns)
    t->rdns = md__rdns_new(t);
  uv_timer_init(p->loop, &t->tick);
  uv_timer_init(p->loop, &t->sweep);
  t->tick.data = t->sweep.data = t;
  t->next = p->traces;
  p->traces = t;
  t->cursor = -1;
  t->counted_sending = true;
  md__prober_sending(p, +1);
  uv_timer_start(&t->tick, on_tick, 0, 0);
  *out = t;
  return 0;
}

/* End the run: stop the timers, drop probes still pending (they are neither
 * received nor lost), trim hops past the destination, report once. */
static void finish(md_trace *t, int status) {
  if (t->done_called)
    return;
  t->done_called = true;
  stop_sending(t, md_now_mono_ns());
  uv_timer_stop(&t->tick);
  uv_timer_stop(&t->sweep);
  md__prober_detach(t);
  t->status = status;
  t->path->finished_at_ns = md_now_real_ns();
  t->path->complete = (status == 0);
  /* as mtr shows it: up to the destination, else one silent hop past the
   * last one that answered */
  int last = t->dest_ttl;
  if (!last) {
    last = t->highest_seen ? t->highest_seen + 1 : t->o.first_ttl;
    if (last > t->highest_sent)
      last = t->highest_sent;
  }
  if (last)
    md_path_truncate(t->path, last);
  t->cb.on_done(t, t->ud, status);
}

static void on_cancelled(uv_timer_t *h) {
  finish(h->data, -ECANCELED);
}

void md_trace_cancel(md_trace *t) {
  if (t->done_called || t->cancelled)
    return;
  t->cancelled = true;
  stop_sending(t, md_now_mono_ns());
  uv_timer_stop(&t->tick);
  /* report from the loop, never from inside the caller's stack */
  uv_timer_start(&t->sweep, on_cancelled, 0, 0);
}

const md_path *md_trace_path(const md_trace *t) {
  return t->path;
}

const md_trace_opts *md_trace_options(const md_trace *t) {
  return &t->o;
}

int md_trace_rdns_pending(const md_trace *t) {
  return t->rdns ? md__rdns_pending(t->rdns) : 0;
}

static void timer_closed(uv_handle_t *h) {
  md_trace *t = h->data;
  if (--t->closing == 0) {
    md_path_free(t->path);
    free(t->ring);
    free(t);
  }
}

void md_trace_free(md_trace *t) {
  if (!t)
    return;
  if (t->rdns)
    md__rdns_release(t->rdns);
  if (t->reserve_fd >= 0)
    close(t->reserve_fd);
  if (!t->done_called)
    md__prober_detach(t);
  if (t->counted_sending) {
    t->counted_sending = false;
    md__prober_sending(t->prober, -1);
  }
  t->closing = 2;
  uv_close((uv_handle_t *)&t->tick, timer_closed);
  uv_close((uv_handle_t *)&t->sweep, timer_closed);
}
