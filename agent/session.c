/* session: one controller connection and the runs it asked for. See
 * session.h for the states, docs/protocol.md for the messages. */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "md_log.h"
#include "md_time.h"
#include "stream.h"

const char *md_agent_version(void);

typedef enum { S_HANDSHAKE, S_HELLO, S_READY, S_CLOSING } md__sstate;
typedef enum { R_SCHEDULED, R_RUNNING, R_DONE } md__rstate;

typedef struct md__run md__run;
typedef struct md__strm md__strm;

struct md_session {
  md_session_env *env;
  md_session *next, **pprev; /* env->sessions */
  md_chan *chan;             /* NULL once closed */
  md__sstate state;
  char peer[MD_ADDRSTRLEN + 8];
  char name[MD_WIRE_NAME_MAX + 1];                 /* verified certificate name ("" before TLS) */
  char who[MD_WIRE_NAME_MAX + MD_ADDRSTRLEN + 16]; /* "ops@198.18.1.1:40000" for logs */
  char outcome[400];                               /* why we ended it, for the log line */
  int64_t started_mono;
  md__run *runs; /* scheduled or probing */
  unsigned long n_runs;
  md__strm *streams; /* one-way streams not yet reported */
  unsigned long n_streams;
  bool was_ready;       /* Hello answered: its end is always logged */
  bool close_when_idle; /* shutting down: close once the runs have reported */
  char why[128];        /* RunResult message for runs cancelled by the shutdown */
};

struct md__run {
  md_session_env *env;
  md_session *s; /* NULL once the session is gone */
  md__run *next; /* s->runs */
  char id[MD_WIRE_RUN_ID_MAX + 1];
  char who[sizeof(((md_session *)0)->who)];
  char target_name[MD_WIRE_NAME_MAX + 1];
  md_trace_opts o;
  md_trace *trace;
  uv_timer_t timer; /* scheduled start */
  md__rstate state;
  int cycles_done;
  int64_t accepted_mono;
  char cancel_why[128];
};

/* A one-way stream of a session (stream.h does the packets). */
struct md__strm {
  md_session_env *env;
  md_session *s;  /* NULL once the session is gone */
  md__strm *next; /* s->streams */
  char id[MD_WIRE_RUN_ID_MAX + 1];
  char who[sizeof(((md_session *)0)->who)];
  md_stream *stream;
  double pps; /* its share of max_probes_per_second */
  bool done;
  int64_t accepted_mono;
  char cancel_why[128];
};

static void session_update_idle(md_session *s);

/* ---- text for logs */

/* A name from the peer made safe for a log line. */
static void safe_copy(char *dst, size_t len, const char *src) {
  if (!src)
    src = "";
  if (md_wire_text_ok(src, len - 1))
    snprintf(dst, len, "%s", src);
  else
    snprintf(dst, len, "(unprintable)");
}

/* "icmp to 198.18.4.2 (b) cycles 10 interval 1 s psize 64 ttl 1-30" */
static void opts_text(const md_trace_opts *o, char *buf, size_t len) {
  char t[MD_ADDRSTRLEN];
  md_addr_str(&o->target, t, sizeof t);
  snprintf(buf, len, "%s to %s%s%s%s cycles %d interval %g s psize %d ttl %d-%d%s",
           md_proto_name(o->proto), t, o->target_name ? " (" : "",
           o->target_name ? o->target_name : "", o->target_name ? ")" : "", o->cycles,
           o->interval_s, o->psize, o->first_ttl, o->max_ttl, o->no_dns ? " no-dns" : "");
}

/* ---- sending */

/* Drop every host name from hops about to be sent: the message then fits
 * the frame limit (the controller can resolve names itself). */
static void strip_names(Mtrdiag__V1__Hop **hops, size_t n) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < hops[i]->n_hosts; j++) {
      Mtrdiag__V1__Host *h = hops[i]->hosts[j];
      if (h->hostname && h->hostname != protobuf_c_empty_string) {
        free(h->hostname);
        h->hostname = (char *)protobuf_c_empty_string;
      }
    }
}

/* Send an Error about a run, echoing the run_id only when it is valid. */
static void send_run_error(md_session *s, Mtrdiag__V1__ErrorCode code, const char *run_id,
                           const char *msg) {
  const char *id = md_wire_check_run_id(run_id, NULL, 0) == 0 ? run_id : "";
  md_chan_send_error(s->chan, code, id, "%s", msg);
}

/* ---- runs */

/* The run's timer is closed: the last use of its memory. */
static void run_closed(uv_handle_t *h) {
  md__run *r = h->data;
  md_session_env *env = r->env;
  free(r);
  env->n_objects--;
  if (env->on_released)
    env->on_released(env);
}

/* Take a run off its session's list (the session may live on). */
static void run_unlink(md__run *r) {
  if (!r->s)
    return;
  for (md__run **pp = &r->s->runs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  r->next = NULL;
}

/* The RunResult of a run, with its path if it ever started. */
static void send_result(md__run *r, Mtrdiag__V1__RunStatus st, const char *msg) {
  md_session *s = r->s;
  if (!s || !s->chan)
    return;
  const md_path *p = r->trace ? md_trace_path(r->trace) : NULL;
  Mtrdiag__V1__RunResult *rr = NULL;
  if (md_wire_run_result_new(r->id, st, msg, (uint32_t)r->cycles_done, p, &rr) < 0) {
    md_chan_send_error(s->chan, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL, r->id,
                       "out of memory building the RunResult");
    return;
  }
  int rc = md_chan_send(s->chan, &rr->base);
  if (rc == -EMSGSIZE && rr->path) {
    strip_names(rr->path->hops, rr->path->n_hops);
    rc = md_chan_send(s->chan, &rr->base);
  }
  if (rc < 0 && rc != -EPIPE)
    md_warn("run %s for %s: cannot send its RunResult: %s", r->id, r->who, md_wire_strerror(rc));
  md_wire_free(rr);
}

/* The single place a run ends: its RunResult, one log line, the policy's
 * count, and the memory (after the timer has closed). */
static void run_end(md__run *r, int status, const char *failure) {
  if (r->state == R_DONE)
    return;
  bool started = r->trace != NULL;
  r->state = R_DONE;
  md_session_env *env = r->env;
  Mtrdiag__V1__RunStatus st = md_wire_run_status(status);
  char msg[300] = "";
  if (status == -ECANCELED)
    snprintf(msg, sizeof msg, "%s", r->cancel_why[0] ? r->cancel_why : "cancelled");
  else if (status < 0 && failure)
    snprintf(msg, sizeof msg, "%s", failure);
  else if (status < 0)
    snprintf(msg, sizeof msg, "probing stopped: %s", strerror(-status));
  send_result(r, st, msg);

  char opts[400], how[200] = "";
  opts_text(&r->o, opts, sizeof opts);
  const md_path *p = started ? md_trace_path(r->trace) : NULL;
  double secs = (double)(md_now_mono_ns() - r->accepted_mono) / 1e9;
  if (p)
    snprintf(how, sizeof how, ", %d cycles, %s, %d hops, %.1f s", r->cycles_done,
             p->reached ? "reached" : "not reached", p->n_hops, secs);
  else
    snprintf(how, sizeof how, ", never started, %.1f s", secs);
  md_info("run %s for %s: %s: %s%s%s%s%s", r->id, r->who, opts,
          st == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK          ? "OK"
          : st == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED ? "CANCELLED"
                                                                : "FAILED",
          msg[0] ? " (" : "", msg, msg[0] ? ")" : "", how);
  if (st == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK)
    env->stats.runs_ok++;
  else if (st == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED)
    env->stats.runs_cancelled++;
  else
    env->stats.runs_failed++;

  md_policy_release(&env->policy, &r->o);
  env->stats.active_runs = env->policy.runs;
  md_session *s = r->s;
  run_unlink(r);
  r->s = NULL;
  md_trace_free(r->trace); /* memory goes on the loop; the path is no longer ours */
  r->trace = NULL;
  uv_close((uv_handle_t *)&r->timer, run_closed);
  if (s && s->chan) {
    if (s->close_when_idle && !s->runs && !s->streams)
      md_chan_close(s->chan);
    else
      session_update_idle(s);
  }
}

/* After each cycle: the whole path so far, unless the peer is not reading. */
static void on_cycle(md_trace *t, void *ud, int cycles_done) {
  md__run *r = ud;
  r->cycles_done = cycles_done;
  md_session *s = r->s;
  if (!s || !s->chan || md_chan_pending(s->chan) > MD_SESSION_BACKLOG_MAX)
    return;
  Mtrdiag__V1__HopUpdate *u = NULL;
  if (md_wire_hop_update_new(r->id, (uint32_t)cycles_done, md_trace_path(t), &u) < 0)
    return; /* out of memory: the next snapshot has it all */
  int rc = md_chan_send(s->chan, &u->base);
  if (rc == -EMSGSIZE) {
    strip_names(u->hops, u->n_hops);
    md_chan_send(s->chan, &u->base);
  }
  md_wire_free(u);
}

/* The engine is done with a run (all cycles, cancelled or failed). */
static void on_done(md_trace *t, void *ud, int status) {
  (void)t;
  run_end(ud, status, NULL);
}

/* Start probing. 0, or negative errno with the reason in err. */
static int run_start(md__run *r, char *err, size_t errlen) {
  static const md_trace_cb cb = {.on_cycle = on_cycle, .on_done = on_done};
  int rc = md_trace_start(r->env->prober, &r->o, &cb, r, &r->trace, err, errlen);
  if (rc < 0) {
    r->trace = NULL;
    return rc;
  }
  r->state = R_RUNNING;
  return 0;
}

/* The scheduled start time has come. */
static void on_start_timer(uv_timer_t *h) {
  md__run *r = h->data;
  if (r->state != R_SCHEDULED)
    return;
  char err[256] = "";
  int rc = run_start(r, err, sizeof err);
  if (rc < 0)
    run_end(r, rc, err);
}

/* Stop a run: at once if it has not started, else through the engine
 * (its on_done follows from the loop). */
static void run_cancel(md__run *r, const char *why) {
  if (r->state == R_DONE)
    return;
  if (!r->cancel_why[0])
    snprintf(r->cancel_why, sizeof r->cancel_why, "%s", why);
  if (r->state == R_SCHEDULED)
    run_end(r, -ECANCELED, NULL);
  else
    md_trace_cancel(r->trace);
}

int md_run_opts_from_request(const Mtrdiag__V1__RunRequest *r, const char *source_name,
                             md_trace_opts *o, char *err, size_t errlen) {
  md_trace_opts_default(o);
  if (!r->target || md_addr_parse(r->target, &o->target) < 0) {
    snprintf(err, errlen, "target: not a numeric IPv4 or IPv6 address");
    return -EINVAL;
  }
  if (r->source && r->source[0] && md_addr_parse(r->source, &o->source) < 0) {
    snprintf(err, errlen, "source: not a numeric IPv4 or IPv6 address");
    return -EINVAL;
  }
  o->target_name = r->target_name && r->target_name[0] ? r->target_name : NULL;
  o->source_name = source_name;
  o->proto = (md_proto)r->protocol;
  if (r->cycles)
    o->cycles = (int)r->cycles;
  if (r->interval_ms)
    o->interval_s = r->interval_ms / 1000.0;
  if (r->psize)
    o->psize = (int)r->psize;
  if (r->first_ttl)
    o->first_ttl = (int)r->first_ttl;
  if (r->max_ttl)
    o->max_ttl = (int)r->max_ttl;
  if (r->max_unknown)
    o->max_unknown = (int)r->max_unknown;
  if (r->gracetime_ms)
    o->grace_s = r->gracetime_ms / 1000.0;
  o->tos = (int)r->tos;
  o->port = (uint16_t)r->port;
  o->local_port = (uint16_t)r->local_port;
  o->no_dns = r->no_dns;
  o->classic = r->classic;
  return md_trace_opts_check(o, err, errlen);
}

/* ---- messages */

/* This host's interface addresses for HelloAck (path alignment needs
 * them): no loopback, no IPv6 link-local, no duplicates. *out is one
 * malloc'd block of pointers and strings; free() it. */
static int host_addresses(char ***out, size_t *n, bool *v4, bool *v6) {
  uv_interface_address_t *ifs = NULL;
  int count = 0;
  *out = NULL;
  *n = 0;
  *v4 = *v6 = false;
  int rc = uv_interface_addresses(&ifs, &count);
  if (rc < 0)
    return rc;
  size_t cnt = count > 0 ? (size_t)count : 0;
  char **list = malloc(cnt * (sizeof(char *) + MD_ADDRSTRLEN) + 1);
  if (!list) {
    uv_free_interface_addresses(ifs, count);
    return -ENOMEM;
  }
  char *text = (char *)(list + cnt);
  size_t k = 0;
  for (size_t i = 0; i < cnt; i++) {
    md_addr a;
    memset(&a, 0, sizeof a);
    if (ifs[i].is_internal)
      continue;
    if (ifs[i].address.address4.sin_family == AF_INET)
      a.in4 = ifs[i].address.address4;
    else if (ifs[i].address.address6.sin6_family == AF_INET6)
      a.in6 = ifs[i].address.address6;
    else
      continue;
    if (md_addr_family(&a) == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&a.in6.sin6_addr))
      continue;
    char *s = text + k * MD_ADDRSTRLEN;
    md_addr_str(&a, s, MD_ADDRSTRLEN);
    bool dup = false;
    for (size_t j = 0; j < k && !dup; j++)
      dup = strcmp(list[j], s) == 0;
    if (dup)
      continue;
    *(md_addr_family(&a) == AF_INET ? v4 : v6) = true;
    list[k++] = s;
  }
  uv_free_interface_addresses(ifs, count);
  *out = list;
  *n = k;
  return 0;
}

/* Hello: answer with who and what this agent is; the session is up. */
static void on_hello(md_session *s, const Mtrdiag__V1__Hello *h) {
  if (h->protocol_version && h->protocol_version != MD_WIRE_VERSION) {
    snprintf(s->outcome, sizeof s->outcome, "protocol version %u is not spoken here",
             h->protocol_version);
    md_chan_fail(s->chan, -EPROTO, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH,
                 "protocol version %u is not spoken here (this agent speaks %d)",
                 h->protocol_version, MD_WIRE_VERSION);
    s->state = S_CLOSING;
    return;
  }
  char ctl[64], sw[64];
  safe_copy(ctl, sizeof ctl, h->controller_name);
  safe_copy(sw, sizeof sw, h->software_version);
  md_debug("hello from %s: controller '%s', mtrctl %s, revision %u", s->who, ctl, sw,
           h->protocol_revision);

  Mtrdiag__V1__HelloAck ack = MTRDIAG__V1__HELLO_ACK__INIT;
  Mtrdiag__V1__Capabilities caps = MTRDIAG__V1__CAPABILITIES__INIT;
  Mtrdiag__V1__Protocol protos[3] = {MTRDIAG__V1__PROTOCOL__PROTOCOL_ICMP,
                                     MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP,
                                     MTRDIAG__V1__PROTOCOL__PROTOCOL_TCP};
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  char **addrs = NULL;
  size_t n_addrs = 0;
  bool v4 = false, v6 = false;
  host_addresses(&addrs, &n_addrs, &v4, &v6);
  caps.raw_sockets = md_prober_is_raw(s->env->prober);
  caps.protocols = protos;
  caps.n_protocols = caps.raw_sockets ? 3 : 1;
  caps.ipv4 = v4;
  caps.ipv6 = v6;
  caps.one_way_stream = true;
  ack.protocol_version = MD_WIRE_VERSION;
  ack.protocol_revision = MD_WIRE_REVISION;
  ack.agent_name = s->env->cfg->name ? s->env->cfg->name : (char *)"";
  ack.hostname = host;
  ack.software_version = (char *)md_agent_version();
  ack.addresses = addrs;
  ack.n_addresses = n_addrs;
  ack.capabilities = &caps;
  ack.server_real_ns = md_now_real_ns();
  int rc = md_chan_send(s->chan, &ack.base);
  free(addrs);
  if (rc < 0) {
    md_chan_fail(s->chan, rc, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
                 "cannot send HelloAck: %s", md_wire_strerror(rc));
    s->state = S_CLOSING;
    return;
  }
  s->state = S_READY;
  s->was_ready = true;
  session_update_idle(s);
}

/* TimeSyncRequest: four timestamps, answered at once. */
static void on_time_sync(md_session *s, const Mtrdiag__V1__TimeSyncRequest *q, int64_t recv_ns) {
  Mtrdiag__V1__TimeSyncReply r = MTRDIAG__V1__TIME_SYNC_REPLY__INIT;
  r.seq = q->seq;
  r.client_send_real_ns = q->client_send_real_ns;
  r.server_recv_real_ns = recv_ns;
  r.server_send_real_ns = md_now_real_ns();
  md_chan_send(s->chan, &r.base);
}

/* A run of this session by run_id, for Cancel and duplicates. */
static md__run *find_run(md_session *s, const char *id) {
  for (md__run *r = s->runs; r; r = r->next)
    if (strcmp(r->id, id) == 0)
      return r;
  return NULL;
}

/* A stream of this session by stream_id (runs and streams share the ids). */
static md__strm *find_strm(md_session *s, const char *id) {
  for (md__strm *t = s->streams; t; t = t->next)
    if (strcmp(t->id, id) == 0)
      return t;
  return NULL;
}

/* A refused RunRequest: Error to the controller, one log line. */
static void refuse_run(md_session *s, const Mtrdiag__V1__RunRequest *q, const md_trace_opts *o,
                       Mtrdiag__V1__ErrorCode code, const char *msg) {
  send_run_error(s, code, q->run_id, msg);
  s->env->stats.runs_refused++;
  char id[MD_WIRE_RUN_ID_MAX + 1] = "(invalid)", opts[400] = "";
  if (md_wire_check_run_id(q->run_id, NULL, 0) == 0)
    snprintf(id, sizeof id, "%s", q->run_id);
  if (o)
    opts_text(o, opts, sizeof opts);
  md_info("run %s for %s: %s%srefused %s: %s", id, s->who, opts, o ? ": " : "",
          md_wire_error_name(code), msg);
}

/* RunRequest: sanity, policy, then start now or at start_at_real_ns. */
static void on_run_request(md_session *s, const Mtrdiag__V1__RunRequest *q) {
  md_session_env *env = s->env;
  char err[512] = "";
  md_trace_opts o;
  if (md_wire_check_run_request(q, err, sizeof err) < 0) {
    refuse_run(s, q, NULL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  if (s->close_when_idle) {
    refuse_run(s, q, NULL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED, s->why);
    return;
  }
  if (find_run(s, q->run_id) || find_strm(s, q->run_id)) {
    snprintf(err, sizeof err, "run_id '%s' is already in use in this session", q->run_id);
    refuse_run(s, q, NULL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  if (md_run_opts_from_request(q, env->cfg->name, &o, err, sizeof err) < 0) {
    refuse_run(s, q, NULL, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  int64_t now = md_now_real_ns();
  int64_t delay = q->start_at_real_ns > 0 ? q->start_at_real_ns - now : 0;
  if (delay > MD_SESSION_MAX_START_DELAY_NS) {
    snprintf(err, sizeof err,
             "start_at_real_ns: %.1f s in the future, more than the %lld s allowed",
             (double)delay / 1e9, MD_SESSION_MAX_START_DELAY_NS / 1000000000LL);
    refuse_run(s, q, &o, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  md_policy_load_own(&env->policy); /* addresses change (DHCP, failover) */
  int rc = md_policy_check(&env->policy, &o, err, sizeof err);
  if (rc < 0) {
    refuse_run(s, q, &o, md_policy_error_code(rc), err);
    return;
  }
  if (o.proto != MD_PROTO_ICMP && !md_prober_is_raw(env->prober)) { /* also for later starts */
    snprintf(err, sizeof err, "%s probes need raw sockets (CAP_NET_RAW), which this agent lacks",
             md_proto_name(o.proto));
    refuse_run(s, q, &o, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED, err);
    return;
  }

  md__run *r = calloc(1, sizeof *r);
  if (!r) {
    refuse_run(s, q, &o, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
    return;
  }
  r->env = env;
  r->s = s;
  snprintf(r->id, sizeof r->id, "%s", q->run_id);
  snprintf(r->who, sizeof r->who, "%s", s->who);
  r->o = o;
  if (o.target_name) {
    snprintf(r->target_name, sizeof r->target_name, "%s", o.target_name);
    r->o.target_name = r->target_name;
  }
  r->accepted_mono = md_now_mono_ns();
  uv_timer_init(env->loop, &r->timer);
  r->timer.data = r;
  env->n_objects++;

  int64_t started_at;
  if (delay > 1000000) { /* more than a millisecond away: schedule it */
    r->state = R_SCHEDULED;
    started_at = q->start_at_real_ns;
    uv_update_time(env->loop);
    uv_timer_start(&r->timer, on_start_timer, (uint64_t)((delay + 999999) / 1000000), 0);
  } else {
    rc = run_start(r, err, sizeof err);
    if (rc < 0) {
      refuse_run(s, q, &o,
                 rc == -EINVAL ? MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST
                               : MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED,
                 err);
      r->state = R_DONE;
      uv_close((uv_handle_t *)&r->timer, run_closed);
      return;
    }
    started_at = md_trace_path(r->trace)->started_at_ns;
  }
  md_policy_take(&env->policy, &r->o);
  env->stats.active_runs = env->policy.runs;
  env->stats.runs_accepted++;
  r->next = s->runs;
  s->runs = r;
  s->n_runs++;

  Mtrdiag__V1__RunAccepted acc = MTRDIAG__V1__RUN_ACCEPTED__INIT;
  acc.run_id = r->id;
  acc.started_at_real_ns = started_at;
  md_chan_send(s->chan, &acc.base);
  char opts[400];
  opts_text(&r->o, opts, sizeof opts);
  if (r->state == R_SCHEDULED)
    md_debug("run %s for %s: %s: accepted, starts in %.3f s", r->id, s->who, opts,
             (double)delay / 1e9);
  else
    md_debug("run %s for %s: %s: accepted, started", r->id, s->who, opts);
  session_update_idle(s);
}

/* ---- one-way streams */

/* "send 200 packets every 10 ms to 198.18.4.2:40000" / "receive 200 packets from 198.18.1.1 on
 * 198.18.4.2:40000" for log lines. */
static void strm_text(const md_stream *st, char *buf, size_t len) {
  const md_stream_opts *o = md_stream_get_opts(st);
  char peer[MD_ADDRSTRLEN + 8], local[MD_ADDRSTRLEN + 8];
  md_addr b;
  md_stream_local(st, &b);
  md_addr_str_hostport(&b, local, sizeof local);
  if (o->role == MD_STREAM_SEND) {
    md_addr_str_hostport(&o->peer, peer, sizeof peer);
    snprintf(buf, len, "send %u packets every %g ms to %s from %s psize %u", o->count,
             o->interval_us / 1000.0, peer, local, o->psize);
  } else {
    md_addr_str(&o->peer, peer, sizeof peer);
    snprintf(buf, len, "receive %u packets (every %g ms) from %s on %s", o->count,
             o->interval_us / 1000.0, peer, local);
  }
}

/* The stream's handles are closed: the last use of its memory. */
static void strm_closed(void *ud) {
  md__strm *t = ud;
  md_session_env *env = t->env;
  free(t);
  env->n_objects--;
  if (env->on_released)
    env->on_released(env);
}

/* Take a stream off its session's list. */
static void strm_unlink(md__strm *t) {
  if (!t->s)
    return;
  for (md__strm **pp = &t->s->streams; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  t->next = NULL;
}

/* The single place a stream ends: its StreamResult, one log line, the
 * policy's count, and the memory (after its handles have closed). */
static void strm_end(md__strm *t, int status) {
  if (t->done)
    return;
  t->done = true;
  md_session_env *env = t->env;
  const md_stream_stats *x = md_stream_get_stats(t->stream);
  const md_stream_opts *o = md_stream_get_opts(t->stream);
  bool send = o->role == MD_STREAM_SEND;
  Mtrdiag__V1__RunStatus st = md_wire_run_status(status);
  char msg[300] = "";
  if (status == -ECANCELED)
    snprintf(msg, sizeof msg, "%s", t->cancel_why[0] ? t->cancel_why : "cancelled");
  else if (status < 0)
    snprintf(msg, sizeof msg, "%s: %s", send ? "sending failed" : "receiving failed",
             strerror(-status));
  else if (send && x->send_errors)
    snprintf(msg, sizeof msg, "%u of %u packets could not be sent: %s", x->send_errors, o->count,
             strerror(-x->last_error));
  md_session *s = t->s;
  if (s && s->chan) {
    Mtrdiag__V1__StreamResult r = MTRDIAG__V1__STREAM_RESULT__INIT;
    r.stream_id = t->id;
    r.status = st;
    r.message = msg;
    r.role = send ? MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND
                  : MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_RECEIVE;
    r.sent = x->sent;
    r.send_errors = x->send_errors;
    r.expected = x->expected;
    r.received = x->received;
    r.duplicates = x->duplicates;
    r.reordered = x->reordered;
    r.ignored = x->ignored;
    r.delay_min_ns = x->delay_min_ns;
    r.delay_avg_ns = x->delay_avg_ns;
    r.delay_max_ns = x->delay_max_ns;
    r.delay_stdev_ns = x->delay_stdev_ns;
    int rc = md_chan_send(s->chan, &r.base);
    if (rc < 0 && rc != -EPIPE)
      md_warn("stream %s for %s: cannot send its StreamResult: %s", t->id, t->who,
              md_wire_strerror(rc));
  }
  char what[400], how[200];
  strm_text(t->stream, what, sizeof what);
  double secs = (double)(md_now_mono_ns() - t->accepted_mono) / 1e9;
  if (send)
    snprintf(how, sizeof how, ", %u sent, %u failed, %.1f s", x->sent, x->send_errors, secs);
  else
    snprintf(how, sizeof how,
             ", %u/%u received, %u duplicates, %u reordered, %u ignored, raw delay avg %.3f ms, "
             "%.1f s",
             x->received, x->expected, x->duplicates, x->reordered, x->ignored,
             x->delay_avg_ns / 1e6, secs);
  md_info("stream %s for %s: %s: %s%s%s%s%s", t->id, t->who, what,
          st == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK          ? "OK"
          : st == MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED ? "CANCELLED"
                                                                : "FAILED",
          msg[0] ? " (" : "", msg, msg[0] ? ")" : "", how);
  md_policy_release_stream(&env->policy, t->pps);
  env->stats.active_streams = env->policy.streams;
  strm_unlink(t);
  t->s = NULL;
  md_stream_close(t->stream, strm_closed, t);
  if (s && s->chan) {
    if (s->close_when_idle && !s->runs && !s->streams)
      md_chan_close(s->chan);
    else
      session_update_idle(s);
  }
}

/* stream.h's done: all sent, listening over, cancelled or failed. */
static void on_stream_done(md_stream *st, void *ud, int status) {
  (void)st;
  strm_end(ud, status);
}

/* Stop a stream; its StreamResult (CANCELLED) follows from the loop. */
static void strm_cancel(md__strm *t, const char *why) {
  if (t->done)
    return;
  if (!t->cancel_why[0])
    snprintf(t->cancel_why, sizeof t->cancel_why, "%s", why);
  md_stream_cancel(t->stream);
}

/* A refused StreamRequest: Error (run_id = stream_id) to the controller, one log line. */
static void refuse_stream(md_session *s, const Mtrdiag__V1__StreamRequest *q,
                          Mtrdiag__V1__ErrorCode code, const char *msg) {
  send_run_error(s, code, q->stream_id, msg);
  s->env->stats.streams_refused++;
  char id[MD_WIRE_RUN_ID_MAX + 1] = "(invalid)", peer[MD_ADDRSTRLEN] = "?";
  if (md_wire_check_run_id(q->stream_id, NULL, 0) == 0)
    snprintf(id, sizeof id, "%s", q->stream_id);
  md_addr a;
  if (q->peer && md_addr_parse(q->peer, &a) == 0)
    md_addr_str(&a, peer, sizeof peer);
  md_info("stream %s for %s: %s %s: refused %s: %s", id, s->who,
          q->role == MTRDIAG__V1__STREAM_ROLE__STREAM_ROLE_SEND ? "send to" : "receive from", peer,
          md_wire_error_name(code), msg);
}

/* StreamRequest: sanity, policy, then the socket now and the packets at
 * start_at_real_ns; StreamAccepted says where (docs/protocol.md). */
static void on_stream_request(md_session *s, const Mtrdiag__V1__StreamRequest *q) {
  md_session_env *env = s->env;
  char err[512] = "";
  md_stream_opts o;
  if (md_stream_opts_from_request(q, &o, err, sizeof err) < 0) {
    refuse_stream(s, q, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  if (s->close_when_idle) {
    refuse_stream(s, q, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED, s->why);
    return;
  }
  if (find_run(s, q->stream_id) || find_strm(s, q->stream_id)) {
    snprintf(err, sizeof err, "stream_id '%s' is already in use in this session", q->stream_id);
    refuse_stream(s, q, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  int64_t delay = o.start_at_real_ns > 0 ? o.start_at_real_ns - md_now_real_ns() : 0;
  if (delay > MD_SESSION_MAX_START_DELAY_NS) {
    snprintf(err, sizeof err,
             "start_at_real_ns: %.1f s in the future, more than the %lld s allowed",
             (double)delay / 1e9, MD_SESSION_MAX_START_DELAY_NS / 1000000000LL);
    refuse_stream(s, q, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST, err);
    return;
  }
  md_policy_load_own(&env->policy); /* addresses change (DHCP, failover) */
  double pps = md_stream_pps(&o);
  int rc = md_policy_check_stream(&env->policy, &o.peer, pps, o.psize, err, sizeof err);
  if (rc < 0) {
    refuse_stream(s, q, md_policy_error_code(rc), err);
    return;
  }
  md__strm *t = calloc(1, sizeof *t);
  if (!t) {
    refuse_stream(s, q, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
    return;
  }
  t->env = env;
  t->s = s;
  t->pps = pps;
  snprintf(t->id, sizeof t->id, "%s", q->stream_id);
  snprintf(t->who, sizeof t->who, "%s", s->who);
  t->accepted_mono = md_now_mono_ns();
  rc = md_stream_start(env->loop, &o, on_stream_done, t, &t->stream, err, sizeof err);
  if (rc < 0) {
    free(t);
    refuse_stream(s, q, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED, err);
    return;
  }
  env->n_objects++;
  md_policy_take_stream(&env->policy, pps);
  env->stats.active_streams = env->policy.streams;
  env->stats.streams_accepted++;
  t->next = s->streams;
  s->streams = t;
  s->n_streams++;

  md_addr b;
  char local[MD_ADDRSTRLEN];
  md_stream_local(t->stream, &b);
  Mtrdiag__V1__StreamAccepted acc = MTRDIAG__V1__STREAM_ACCEPTED__INIT;
  acc.stream_id = t->id;
  acc.local = (char *)md_addr_str(&b, local, sizeof local);
  acc.port = md_addr_port(&b);
  acc.start_at_real_ns = md_stream_start_real_ns(t->stream);
  acc.end_at_real_ns = md_stream_end_real_ns(t->stream);
  md_chan_send(s->chan, &acc.base);
  char what[400];
  strm_text(t->stream, what, sizeof what);
  md_debug("stream %s for %s: %s: accepted, starts in %.3f s", t->id, s->who, what,
           (double)(delay > 0 ? delay : 0) / 1e9);
  session_update_idle(s);
}

/* Cancel: the run's RunResult (CANCELLED) answers, or UNKNOWN_RUN. */
static void on_cancel(md_session *s, const Mtrdiag__V1__Cancel *c) {
  md__run *r = c->run_id ? find_run(s, c->run_id) : NULL;
  md__strm *t = c->run_id && !r ? find_strm(s, c->run_id) : NULL;
  if (t) {
    strm_cancel(t, "cancelled by the controller");
    return;
  }
  if (!r) {
    char id[MD_WIRE_RUN_ID_MAX + 1] = "";
    if (md_wire_check_run_id(c->run_id, NULL, 0) == 0)
      snprintf(id, sizeof id, "%s", c->run_id);
    send_run_error(s, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_RUN, id,
                   "no run with this run_id is active in this session");
    return;
  }
  run_cancel(r, "cancelled by the controller");
}

/* An Error from the controller: logged; the session goes on. */
static void on_peer_error(md_session *s, const Mtrdiag__V1__Error *e) {
  char msg[256], id[MD_WIRE_RUN_ID_MAX + 1];
  safe_copy(msg, sizeof msg, e->message);
  safe_copy(id, sizeof id, e->run_id);
  md_warn("controller %s sent Error %s%s%s: %s", s->who, md_wire_error_name(e->code),
          id[0] ? " about run " : "", id, msg);
}

/* READY: one handler per message type; the rest is UNEXPECTED_MESSAGE. */
static void dispatch(md_session *s, const Mtrdiag__V1__Envelope *env, int64_t recv_ns) {
  switch (env->msg_case) {
  case MTRDIAG__V1__ENVELOPE__MSG_TIME_SYNC_REQUEST:
    on_time_sync(s, env->time_sync_request, recv_ns);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_RUN_REQUEST:
    on_run_request(s, env->run_request);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_CANCEL:
    on_cancel(s, env->cancel);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_ERROR:
    on_peer_error(s, env->error);
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_HELLO:
    md_chan_send_error(s->chan, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE, NULL,
                       "Hello: the session is already up");
    break;
  case MTRDIAG__V1__ENVELOPE__MSG_STREAM_REQUEST:
    on_stream_request(s, env->stream_request);
    break;
  default:
    md_chan_send_error(s->chan, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE, NULL,
                       "%s: not a message an agent accepts", md_wire_msg_name(env->msg_case));
    break;
  }
}

/* ---- the channel's callbacks */

/* Idle means no messages and no runs: a long run with a quiet controller
 * is not idle. Before Hello the handshake limit applies instead. */
static void session_update_idle(md_session *s) {
  if (!s->chan || s->state != S_READY)
    return;
  double secs = s->runs || s->streams ? 0 : s->env->cfg->policy.idle_timeout;
  md_chan_set_idle_timeout(s->chan, (unsigned)(secs * 1000.0));
}

/* Is this certificate name in tls.allowed_controllers (ASCII case-insensitive, as TLS names)? */
static bool allowed(const md_agent_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->tls.n_allowed_controllers; i++)
    if (strcasecmp(cfg->tls.allowed_controllers[i], name) == 0)
      return true;
  return false;
}

/* TLS is up and the peer verified: authorise it by certificate name. */
static void on_up(md_chan *c, int status) {
  md_session *s = md_chan_data(c);
  if (status < 0)
    return; /* on_close follows with the reason */
  const char *name = md_chan_peer_name(c);
  safe_copy(s->name, sizeof s->name, name);
  snprintf(s->who, sizeof s->who, "%s@%s", s->name, s->peer);
  if (!name || !allowed(s->env->cfg, name)) {
    s->env->stats.not_authorised++;
    snprintf(s->outcome, sizeof s->outcome,
             "refused: certificate name '%s' is not in allowed_controllers", s->name);
    s->state = S_CLOSING;
    md_chan_fail(c, -EACCES, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED,
                 "controller certificate name '%s' is not in allowed_controllers", s->name);
    return;
  }
  s->state = S_HELLO;
}

/* One Envelope: Hello first, then the READY messages. */
static void on_message(md_chan *c, const Mtrdiag__V1__Envelope *env) {
  int64_t recv_ns = md_now_real_ns();
  md_session *s = md_chan_data(c);
  switch (s->state) {
  case S_HELLO:
    if (env->msg_case == MTRDIAG__V1__ENVELOPE__MSG_HELLO) {
      on_hello(s, env->hello);
      return;
    }
    snprintf(s->outcome, sizeof s->outcome, "closed: %s before Hello",
             md_wire_msg_name(env->msg_case));
    s->state = S_CLOSING;
    md_chan_fail(c, -EPROTO, MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
                 "expected Hello first, got %s", md_wire_msg_name(env->msg_case));
    return;
  case S_READY:
    dispatch(s, env, recv_ns);
    return;
  default:
    return;
  }
}

/* The connection is gone: one log line, its runs cancelled, the session freed. */
static void on_close(md_chan *c, int status, const char *reason) {
  md_session *s = md_chan_data(c);
  md_session_env *env = s->env;
  s->chan = NULL;
  s->state = S_CLOSING;
  double secs = (double)(md_now_mono_ns() - s->started_mono) / 1e9;
  const char *what =
      s->outcome[0] ? s->outcome
      : reason && reason[0]
          ? reason
          : (status == 0 ? "closed by the controller" : strerror(status < 0 ? -status : status));
  char streams[32] = "";
  if (s->n_streams)
    snprintf(streams, sizeof streams, ", %lu streams", s->n_streams);
  /* a peer that never got a session up (no certificate, refused, bad bytes,
   * too slow) is logged once per address per window, not per connection */
  md_addr pa;
  if (s->was_ready || md_addr_parse_hostport(s->peer, &pa) < 0 ||
      md_session_log_allowed(env, &pa, MD_SESSION_LOG_EARLY_END, what))
    md_info("connection from %s cert '%s' (%.1f s, %lu runs%s): %s", s->peer,
            s->name[0] ? s->name : "-", secs, s->n_runs, streams, what);
  /* the runs of a connection that is gone stop now */
  while (s->runs) {
    md__run *r = s->runs;
    s->runs = r->next;
    r->next = NULL;
    r->s = NULL;
    run_cancel(r, "the controller disconnected");
  }
  while (s->streams) {
    md__strm *t = s->streams;
    s->streams = t->next;
    t->next = NULL;
    t->s = NULL;
    strm_cancel(t, "the controller disconnected");
  }
  *s->pprev = s->next;
  if (s->next)
    s->next->pprev = s->pprev;
  env->stats.sessions--;
  free(s);
  env->n_objects--;
  if (env->on_released)
    env->on_released(env);
}

/* ---- log lines per peer */

/* What the summary line says a kind of line was about. */
static const char *const g_logkind_words[MD_SESSION_LOG_KINDS] = {
    [MD_SESSION_LOG_EARLY_END] = "ended before their session was up",
    [MD_SESSION_LOG_OVER_LIMIT] = "refused at once",
};

/* The end of one peer's window: how many lines it did not log. */
static void loglim_summary(const md_session_loglim *e, uint64_t now) {
  if (!e->suppressed)
    return;
  char a[MD_ADDRSTRLEN];
  md_log(e->kind == MD_SESSION_LOG_OVER_LIMIT ? MD_LOG_WARN : MD_LOG_INFO,
         "connections from %s: %lu more %s in the last %.0f s, not logged one by one (logged once "
         "per address per %u s; the last: %s)",
         md_addr_str(&e->addr, a, sizeof a), e->suppressed, g_logkind_words[e->kind],
         (double)(now - e->since_ms) / 1000.0, MD_SESSION_LOGLIM_WINDOW_MS / 1000u,
         e->last[0] ? e->last : "-");
}

bool md_session_log_allowed(md_session_env *env, const md_addr *peer, unsigned kind,
                            const char *what) {
  uint64_t now = uv_now(env->loop);
  md_session_loglim *e = NULL, *empty = NULL, *oldest = NULL;
  for (size_t i = 0; i < MD_SESSION_LOGLIM_MAX && !e; i++) {
    md_session_loglim *x = &env->loglim[i];
    if (!x->used)
      empty = empty ? empty : x;
    else if (x->kind == kind && md_addr_equal(&x->addr, peer))
      e = x;
    else if (!oldest || x->since_ms < oldest->since_ms)
      oldest = x;
  }
  if (e && now - e->since_ms < MD_SESSION_LOGLIM_WINDOW_MS) {
    e->suppressed++;
    snprintf(e->last, sizeof e->last, "%s", what ? what : ""); /* our own words */
    return false;
  }
  if (e) /* its window is over: say what it kept back; this line opens the next */
    loglim_summary(e, now);
  else if (empty)
    e = empty;
  else { /* full: the oldest window ends early */
    loglim_summary(oldest, now);
    e = oldest;
  }
  memset(e, 0, sizeof *e);
  e->used = true;
  e->kind = kind < MD_SESSION_LOG_KINDS ? kind : MD_SESSION_LOG_EARLY_END;
  e->addr = *peer;
  md_addr_set_port(&e->addr, 0);
  e->since_ms = now;
  return true;
}

void md_session_log_flush(md_session_env *env, bool all) {
  uint64_t now = uv_now(env->loop);
  for (size_t i = 0; i < MD_SESSION_LOGLIM_MAX; i++) {
    md_session_loglim *e = &env->loglim[i];
    if (!e->used || (!all && now - e->since_ms < MD_SESSION_LOGLIM_WINDOW_MS))
      continue;
    loglim_summary(e, now);
    e->used = false;
  }
}

/* A new connection becomes a session in HANDSHAKE, with the handshake limit armed. */
int md_session_accept(md_session_env *env, uv_stream_t *listener) {
  static const md_chan_cb cb = {.on_up = on_up, .on_message = on_message, .on_close = on_close};
  md_session *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->env = env;
  s->started_mono = md_now_mono_ns();
  int rc = md_chan_accept(listener, env->tls, &cb, s, &s->chan);
  if (rc < 0) {
    free(s);
    return rc;
  }
  snprintf(s->peer, sizeof s->peer, "%s", md_chan_peer_addr(s->chan));
  snprintf(s->who, sizeof s->who, "-@%s", s->peer);
  md_chan_set_idle_timeout(s->chan, (unsigned)(env->cfg->policy.handshake_timeout * 1000.0));
  s->next = env->sessions;
  if (s->next)
    s->next->pprev = &s->next;
  s->pprev = &env->sessions;
  env->sessions = s;
  env->n_objects++;
  env->stats.sessions++;
  env->stats.connections++;
  md_debug("connection from %s: TLS handshake", s->peer);
  return 0;
}

/* The agent stops: runs end with RunResult CANCELLED, then the connection closes. */
void md_session_shutdown(md_session *s, const char *why) {
  if (!s->chan || s->close_when_idle)
    return;
  s->close_when_idle = true;
  snprintf(s->why, sizeof s->why, "%s", why);
  if (!s->outcome[0])
    snprintf(s->outcome, sizeof s->outcome, "closed: %s", why);
  md__run *r = s->runs;
  while (r) {
    md__run *next = r->next; /* run_cancel may unlink r */
    run_cancel(r, why);
    r = next;
  }
  for (md__strm *t = s->streams; t; t = t->next)
    strm_cancel(t, why); /* their results come from the loop */
  if (s->chan && !s->runs && !s->streams)
    md_chan_close(s->chan);
}

/* Every open session, for the daemon's stop. */
void md_session_shutdown_all(md_session_env *env, const char *why) {
  md_session *s = env->sessions;
  while (s) {
    md_session *next = s->next;
    md_session_shutdown(s, why);
    s = next;
  }
}
