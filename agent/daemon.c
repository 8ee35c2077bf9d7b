/* daemon: start-up (configuration, TLS, probe sockets, listeners), the
 * privilege drop, the connection limit, reload, signals and a clean stop.
 * Sessions themselves are in session.c. See daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "md_log.h"
#include "privdrop.h"

#define MD_DAEMON_BACKLOG 128
#define MD_DAEMON_LOGLIM_FLUSH_MS 10000 /* how often the per-peer log windows are checked */
#define MD_DAEMON_STOP_GUARD_MS 10000
#define MD_DAEMON_EXIT_LINGER_MS 1000

/* A configuration installed by a reload: the daemon's to free. */
typedef struct md__cfg {
  md_agent_config cfg;
  struct md__cfg *next;
} md__cfg;

struct md_daemon {
  md_session_env env; /* first: on_released gets &d->env */
  md_daemon_opts opts;
  md__cfg *cfg_own; /* the configuration in force when a reload installed it, else NULL */
  md__cfg *retired; /* replaced by a reload; freed once no session or run exists */
  uv_tcp_t *listeners;
  md_addr *bound;
  size_t n_listeners;
  unsigned open_handles;   /* listeners, the log timer and over-limit connections not yet closed */
  uv_timer_t loglim_timer; /* ends the per-peer log windows (session.h) */
  bool loglim_timer_on;
  bool stopping, stopped, free_when_stopped;
  void (*done)(md_daemon *d, void *ud);
  void *done_ud;
};

/* Everything closed while stopping: the probe sockets and TLS context go
 * last, then the owner hears of it. */
static void maybe_stopped(md_daemon *d) {
  if (!d->stopping || d->stopped || d->open_handles > 0 || d->env.n_objects > 0)
    return;
  d->stopped = true;
  md_session_log_flush(&d->env, true); /* what the windows kept back */
  md_prober_close(d->env.prober);
  d->env.prober = NULL;
  md_tls_ctx_free(d->env.tls);
  d->env.tls = NULL;
  if (d->done)
    d->done(d, d->done_ud);
  if (d->free_when_stopped)
    md_daemon_free(d);
}

/* Configurations a reload replaced: sessions and runs may hold pointers
 * into the one they started under (the run's source name...), so they go
 * only when no session or run is left. */
static void free_retired(md_daemon *d, bool all) {
  if (!all && d->env.n_objects > 0)
    return;
  while (d->retired) {
    md__cfg *c = d->retired;
    d->retired = c->next;
    md_agent_config_free(&c->cfg);
    free(c);
  }
}

/* A session or run was freed. When none is left the agent is idle again:
 * the heap pages that the connection's TLS buffers and the runs' paths
 * used go back to the kernel (glibc keeps freed memory otherwise). */
static void on_released(md_session_env *env) {
  md_daemon *d = (md_daemon *)env;
  free_retired(d, false);
  if (env->n_objects == 0)
    malloc_trim(0);
  maybe_stopped(d);
}

/* A listener is gone (stop or failed start). */
static void listener_closed(uv_handle_t *h) {
  md_daemon *d = h->data;
  d->open_handles--;
  maybe_stopped(d);
}

/* An over-limit connection is gone: its handle was ours to free. */
static void rejected_closed(uv_handle_t *h) {
  md_daemon *d = h->data;
  free(h);
  d->open_handles--;
  maybe_stopped(d);
}

/* Over the connection limit: accept and close at once, and say so once
 * per peer address per minute (session.h: the count of the others follows). */
static void reject_connection(md_daemon *d, uv_stream_t *server) {
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t)
    return;
  uv_tcp_init(d->env.loop, t);
  t->data = d;
  d->open_handles++;
  if (uv_accept(server, (uv_stream_t *)t) == 0) {
    d->env.stats.over_limit++;
    md_addr a;
    int len = sizeof a;
    memset(&a, 0, sizeof a);
    if (!d->stopping && uv_tcp_getpeername(t, &a.sa, &len) == 0) {
      char what[64];
      snprintf(what, sizeof what, "policy.max_connections %u reached",
               d->env.cfg->policy.max_connections);
      if (md_session_log_allowed(&d->env, &a, MD_SESSION_LOG_OVER_LIMIT, what)) {
        char peer[MD_ADDRSTRLEN + 8];
        md_warn("connection from %s refused: %s (logged once per address per %u s)",
                md_addr_str_hostport(&a, peer, sizeof peer), what,
                MD_SESSION_LOGLIM_WINDOW_MS / 1000u);
      }
    }
  }
  uv_close((uv_handle_t *)t, rejected_closed);
}

/* A controller connects: a session, unless the limit is reached. */
static void on_connection(uv_stream_t *server, int status) {
  md_daemon *d = server->data;
  if (status < 0) {
    md_warn("accepting a connection failed: %s", uv_strerror(status));
    return;
  }
  if (d->stopping || d->env.stats.sessions >= d->env.cfg->policy.max_connections) {
    reject_connection(d, server);
    return;
  }
  int rc = md_session_accept(&d->env, server);
  if (rc < 0) {
    md_warn("cannot take a connection: %s", strerror(-rc));
    reject_connection(d, server); /* libuv waits for an accept before it listens on */
  }
}

/* The per-peer log windows that are over get their summary line. */
static void on_loglim_timer(uv_timer_t *t) {
  md_daemon *d = t->data;
  md_session_log_flush(&d->env, false);
}

/* One listener per configured address. */
static int listen_all(md_daemon *d, char *err, size_t errlen) {
  const md_agent_config *cfg = d->env.cfg;
  for (size_t i = 0; i < cfg->n_listen; i++) {
    uv_tcp_t *l = &d->listeners[i];
    const md_addr *a = &cfg->listen[i].addr;
    uv_tcp_init(d->env.loop, l);
    l->data = d;
    d->open_handles++;
    d->n_listeners = i + 1;
    unsigned flags = md_addr_family(a) == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    int rc = uv_tcp_bind(l, &a->sa, flags);
    if (rc == 0)
      rc = uv_listen((uv_stream_t *)l, MD_DAEMON_BACKLOG, on_connection);
    if (rc < 0) {
      snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen[i].text, uv_strerror(rc));
      return rc;
    }
    int len = sizeof d->bound[i];
    uv_tcp_getsockname(l, &d->bound[i].sa, &len);
  }
  return 0;
}

/* "ops, oncall" from tls.allowed_controllers, or "none". */
static void controllers_str(const md_agent_config *cfg, char *ctl, size_t len) {
  size_t off = 0;
  ctl[0] = '\0';
  for (size_t i = 0; i < cfg->tls.n_allowed_controllers && off < len; i++) {
    int w = snprintf(ctl + off, len - off, "%s%s", i ? ", " : "", cfg->tls.allowed_controllers[i]);
    off += w > 0 ? (size_t)w : 0;
  }
  if (!ctl[0])
    snprintf(ctl, len, "none");
}

/* What an empty list means, said at start and at every reload. */
static void warn_empty(const md_agent_config *cfg) {
  if (cfg->tls.n_allowed_controllers == 0)
    md_warn("tls.allowed_controllers is empty: no controller may command this agent");
  if (cfg->policy.n_allow_targets == 0)
    md_warn("policy.allow_targets is empty: every run will be refused");
}

/* The one start-up line: where, who, how it probes, who may command it. */
static void log_started(const md_daemon *d) {
  const md_agent_config *cfg = d->env.cfg;
  char where[512] = "", ctl[256];
  size_t off = 0;
  for (size_t i = 0; i < d->n_listeners && off < sizeof where; i++) {
    char a[MD_ADDRSTRLEN + 8];
    int w = snprintf(where + off, sizeof where - off, "%s%s", i ? ", " : "",
                     md_addr_str_hostport(&d->bound[i], a, sizeof a));
    off += w > 0 ? (size_t)w : 0;
  }
  controllers_str(cfg, ctl, sizeof ctl);
  md_info("listening on %s as '%s' (mtr-agent %s, %s; controllers: %s; %zu allowed target "
          "prefixes)",
          where, cfg->name, md_agent_version(),
          md_prober_is_raw(d->env.prober) ? "raw sockets: icmp, udp, tcp"
                                          : "no raw sockets: icmp only",
          ctl, cfg->policy.n_allow_targets);
  warn_empty(cfg);
}

int md_daemon_start(uv_loop_t *loop, const md_agent_config *cfg, const md_daemon_opts *opts,
                    md_daemon **out, char *err, size_t errlen) {
  *out = NULL;
  md_daemon *d = calloc(1, sizeof *d);
  if (!d)
    return -ENOMEM;
  if (opts)
    d->opts = *opts;
  d->env.loop = loop;
  d->env.cfg = cfg;
  d->env.on_released = on_released;
  md_policy_init(&d->env.policy, cfg);
  d->listeners = calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof *d->listeners);
  d->bound = calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof *d->bound);
  int rc = (d->listeners && d->bound) ? 0 : -ENOMEM;
  if (rc < 0)
    snprintf(err, errlen, "out of memory");
  if (rc == 0) {
    rc = md_tls_ctx_new(MD_TLS_SERVER, cfg->tls.cert, cfg->tls.key, cfg->tls.ca, &d->env.tls, err,
                        errlen);
    if (rc < 0)
      rc = MD_DAEMON_ETLS;
  }
  if (rc == 0) {
    rc = md_prober_open(loop, d->opts.prober_flags, &d->env.prober);
    if (rc < 0)
      snprintf(err, errlen, "cannot open probe sockets: %s", strerror(-rc));
  }
  if (rc == 0)
    rc = listen_all(d, err, errlen);
  if (rc < 0) {
    d->free_when_stopped = true;
    md_daemon_stop(d, NULL, NULL); /* may free d at once */
    return rc;
  }
  uv_timer_init(loop, &d->loglim_timer);
  d->loglim_timer.data = d;
  d->open_handles++;
  d->loglim_timer_on = true;
  uv_timer_start(&d->loglim_timer, on_loglim_timer, MD_DAEMON_LOGLIM_FLUSH_MS,
                 MD_DAEMON_LOGLIM_FLUSH_MS);
  uv_unref((uv_handle_t *)&d->loglim_timer); /* the listeners keep the loop alive */
  log_started(d);
  *out = d;
  return 0;
}

/* Begin the orderly stop; maybe_stopped() finishes it. */
void md_daemon_stop(md_daemon *d, void (*done)(md_daemon *d, void *ud), void *ud) {
  if (d->stopping)
    return;
  d->stopping = true;
  d->done = done;
  d->done_ud = ud;
  for (size_t i = 0; i < d->n_listeners; i++)
    uv_close((uv_handle_t *)&d->listeners[i], listener_closed);
  if (d->loglim_timer_on) {
    d->loglim_timer_on = false;
    uv_close((uv_handle_t *)&d->loglim_timer, listener_closed);
  }
  md_session_shutdown_all(&d->env, "the agent is shutting down");
  maybe_stopped(d);
}

/* Release the memory, or finish the stop first and free then. */
void md_daemon_free(md_daemon *d) {
  if (!d)
    return;
  if (!d->stopped) { /* still open: finish the stop first, then free */
    d->free_when_stopped = true;
    md_daemon_stop(d, d->done, d->done_ud);
    return;
  }
  md_policy_free(&d->env.policy);
  free_retired(d, true);
  if (d->cfg_own) {
    md_agent_config_free(&d->cfg_own->cfg);
    free(d->cfg_own);
  }
  free(d->listeners);
  free(d->bound);
  free(d);
}

/* Same listen addresses in the same order. */
static bool same_listen(const md_agent_config *a, const md_agent_config *b) {
  if (a->n_listen != b->n_listen)
    return false;
  for (size_t i = 0; i < a->n_listen; i++)
    if (!md_addr_equal(&a->listen[i].addr, &b->listen[i].addr) ||
        md_addr_port(&a->listen[i].addr) != md_addr_port(&b->listen[i].addr))
      return false;
  return true;
}

static bool same_str(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

/* New TLS context first (the step that can fail), then the swap. */
int md_daemon_reload(md_daemon *d, md_agent_config *cfg, char *err, size_t errlen) {
  if (d->stopping) {
    snprintf(err, errlen, "the agent is stopping");
    return -ESHUTDOWN;
  }
  md_tls_ctx *tls = NULL;
  if (md_tls_ctx_new(MD_TLS_SERVER, cfg->tls.cert, cfg->tls.key, cfg->tls.ca, &tls, err, errlen) <
      0)
    return MD_DAEMON_ETLS;
  md__cfg *node = calloc(1, sizeof *node);
  if (!node) {
    md_tls_ctx_free(tls);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  const md_agent_config *old = d->env.cfg;
  if (!same_listen(old, cfg))
    md_warn("%s: listen changed: the agent goes on listening where it listens now until it is "
            "restarted",
            cfg->path);
  if (!same_str(old->user, cfg->user))
    md_warn("%s: user changed: it takes effect when the agent is restarted", cfg->path);
  node->cfg = *cfg;
  memset(cfg, 0, sizeof *cfg);
  /* Live connections hold their own reference to the old SSL_CTX. */
  md_tls_ctx_free(d->env.tls);
  d->env.tls = tls;
  d->env.cfg = &node->cfg;
  d->env.policy.cfg = &node->cfg;
  if (d->cfg_own) {
    d->cfg_own->next = d->retired;
    d->retired = d->cfg_own;
  }
  d->cfg_own = node;
  free_retired(d, false);
  char ctl[256];
  controllers_str(&node->cfg, ctl, sizeof ctl);
  md_info("configuration reloaded from %s: name '%s', certificate %s, controllers: %s, %zu allowed "
          "target prefixes (%u connections and %u runs in flight go on)",
          node->cfg.path, node->cfg.name, node->cfg.tls.cert, ctl, node->cfg.policy.n_allow_targets,
          d->env.stats.sessions, d->env.policy.runs);
  warn_empty(&node->cfg);
  return 0;
}

/* SIGHUP's work: load, then reload; the old configuration stays on error. */
int md_daemon_reload_file(md_daemon *d, const char *path, char *err, size_t errlen) {
  md_agent_config cfg;
  int rc = md_agent_config_load(path, &cfg, err, errlen);
  if (rc < 0)
    return rc;
  rc = md_daemon_reload(d, &cfg, err, errlen);
  md_agent_config_free(&cfg); /* zeroed on success: nothing left to free */
  return rc;
}

const md_agent_config *md_daemon_config(const md_daemon *d) {
  return d->env.cfg;
}

/* The policy counts runs from acceptance to RunResult: that is "active". */
unsigned md_daemon_active_runs(const md_daemon *d) {
  return d->env.policy.runs;
}

/* Open controller connections, for tests and the connection limit. */
unsigned md_daemon_sessions(const md_daemon *d) {
  return d->env.stats.sessions;
}

/* A copy of the counters, with the live run count. */
void md_daemon_get_stats(const md_daemon *d, md_agent_stats *out) {
  *out = d->env.stats;
  out->active_runs = d->env.policy.runs;
}

/* How many listeners were opened (one per listen entry). */
size_t md_daemon_n_listeners(const md_daemon *d) {
  return d->n_listeners;
}

/* The bound address of a listener: tests ask the kernel for a port. */
int md_daemon_listen_addr(const md_daemon *d, size_t i, md_addr *out) {
  if (i >= d->n_listeners)
    return -ENOENT;
  *out = d->bound[i];
  return 0;
}

/* ---- the program */

typedef struct md__main {
  uv_loop_t loop;
  md_daemon *d;
  const char *config_path;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t guard; /* bounds the stop, then the wait for stray DNS lookups */
  bool stopping, forced;
} md__main;

/* The program's own handles live in md__main: nothing to free. */
static void main_handle_closed(uv_handle_t *h) {
  (void)h;
}

/* Only stray DNS lookups keep the loop alive: leave without them. */
static void on_linger_over(uv_timer_t *t) {
  uv_stop(t->loop);
}

/* Stopped: drop the signal handlers; give stray reverse-DNS lookups (which
 * may wait on a dead server) a second, not the resolver's timeout. */
static void on_stopped(md_daemon *d, void *ud) {
  (void)d;
  md__main *m = ud;
  uv_close((uv_handle_t *)&m->sigterm, main_handle_closed);
  uv_close((uv_handle_t *)&m->sigint, main_handle_closed);
  uv_close((uv_handle_t *)&m->sighup, main_handle_closed);
  uv_timer_stop(&m->guard);
  uv_timer_start(&m->guard, on_linger_over, MD_DAEMON_EXIT_LINGER_MS, 0);
  uv_unref((uv_handle_t *)&m->guard);
}

/* The stop hangs (it should not): exit rather than ignore SIGTERM. */
static void on_guard(uv_timer_t *t) {
  md__main *m = t->data;
  md_warn("stop did not finish within %d s: exiting anyway", MD_DAEMON_STOP_GUARD_MS / 1000);
  m->forced = true;
  uv_stop(&m->loop);
}

/* "SIGTERM" rather than strsignal()'s "Terminated" in the log. */
static const char *signame(int signum) {
  return signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "signal";
}

/* SIGTERM/SIGINT: stop cleanly; a second one: leave now. */
static void on_signal(uv_signal_t *h, int signum) {
  md__main *m = h->data;
  if (m->stopping) {
    md_warn("%s again: exiting now", signame(signum));
    m->forced = true;
    uv_stop(&m->loop);
    return;
  }
  m->stopping = true;
  md_info("%s: stopping (cancelling runs, closing connections)", signame(signum));
  uv_timer_start(&m->guard, on_guard, MD_DAEMON_STOP_GUARD_MS, 0);
  md_daemon_stop(m->d, on_stopped, m);
}

/* SIGHUP: reload certificates and policy; on any error the running
 * configuration stays (and says so). */
static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  md__main *m = h->data;
  if (m->stopping)
    return;
  char err[MD_CONFIG_ERRLEN] = "";
  md_info("SIGHUP: reloading %s", m->config_path);
  if (md_daemon_reload_file(m->d, m->config_path, err, sizeof err) < 0)
    md_error("reload failed, the running configuration stays: %s%s", err,
             geteuid() != 0 && strstr(err, strerror(EACCES))
                 ? " (the agent no longer runs as root: the configuration and TLS files must be "
                   "readable by its user, see docs/security.md)"
                 : "");
}

/* --user wins over the config's user: */
static const char *wanted_user(const md_agent_config *cfg, const md_daemon_opts *opts) {
  return opts && opts->user && opts->user[0] ? opts->user : cfg->user;
}

/* The daemon process from configuration to exit status. */
int md_daemon_main(const char *config_path, const md_daemon_opts *opts) {
  md_agent_config cfg;
  char err[MD_CONFIG_ERRLEN] = "";
  if (md_agent_config_load(config_path, &cfg, err, sizeof err) < 0) {
    md_error("%s", err);
    return 2;
  }
  md_privdrop_plan plan;
  if (md_privdrop_resolve(wanted_user(&cfg, opts), geteuid(), &plan, err, sizeof err) < 0) {
    md_error("%s", err);
    md_agent_config_free(&cfg);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2) */
  md__main m;
  memset(&m, 0, sizeof m);
  m.config_path = config_path;
  uv_loop_init(&m.loop);
  /* Before anything can take a while: a SIGHUP must never kill the agent. */
  uv_signal_init(&m.loop, &m.sighup);
  m.sighup.data = &m;
  uv_signal_start(&m.sighup, on_sighup, SIGHUP);
  int rc = md_daemon_start(&m.loop, &cfg, opts, &m.d, err, sizeof err);
  if (rc == 0) {
    /* Raw sockets, TLS context and listeners exist: nothing privileged is left to do. */
    rc = md_privdrop_apply(&plan, err, sizeof err);
    if (rc < 0) {
      md_error("cannot drop privileges, stopping: %s", err);
      md_daemon_free(m.d); /* stops, then frees itself once closed */
      uv_close((uv_handle_t *)&m.sighup, main_handle_closed);
      uv_run(&m.loop, UV_RUN_DEFAULT);
      uv_loop_close(&m.loop);
      md_agent_config_free(&cfg);
      return 1;
    }
  } else {
    md_error("%s", err);
    uv_close((uv_handle_t *)&m.sighup, main_handle_closed);
    uv_run(&m.loop, UV_RUN_DEFAULT); /* the handles of the failed start close */
    uv_loop_close(&m.loop);
    md_agent_config_free(&cfg);
    return rc == MD_DAEMON_ETLS ? 2 : 1;
  }
  malloc_trim(0); /* what reading the configuration and the certificates needed is free */
  uv_signal_init(&m.loop, &m.sigterm);
  uv_signal_init(&m.loop, &m.sigint);
  uv_timer_init(&m.loop, &m.guard);
  m.sigterm.data = m.sigint.data = m.guard.data = &m;
  uv_signal_start(&m.sigterm, on_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_signal, SIGINT);
  uv_run(&m.loop, UV_RUN_DEFAULT);
  if (m.forced) {
    fflush(stderr);
    return 1;
  }
  md_daemon_free(m.d);
  uv_close((uv_handle_t *)&m.guard, main_handle_closed);
  uv_run(&m.loop, UV_RUN_NOWAIT);
  bool clean = uv_loop_close(&m.loop) == 0;
  md_agent_config_free(&cfg);
  md_info("stopped%s", clean ? "" : " (reverse DNS lookups still pending were abandoned)");
  return 0;
}

/* `--check-config`: what start-up would refuse, without listening. */
int md_daemon_check_config(const char *config_path, const md_daemon_opts *opts) {
  md_agent_config cfg;
  char err[MD_CONFIG_ERRLEN] = "";
  if (md_agent_config_load(config_path, &cfg, err, sizeof err) < 0) {
    md_error("%s", err);
    return 2;
  }
  md_privdrop_plan plan;
  char who[256];
  if (md_privdrop_resolve(wanted_user(&cfg, opts), geteuid(), &plan, err, sizeof err) < 0) {
    md_error("%s", err);
    md_agent_config_free(&cfg);
    return 2;
  }
  md_privdrop_describe(&plan, who, sizeof who);
  md_tls_ctx *tls = NULL;
  int rc =
      md_tls_ctx_new(MD_TLS_SERVER, cfg.tls.cert, cfg.tls.key, cfg.tls.ca, &tls, err, sizeof err);
  if (rc < 0) {
    md_error("%s", err);
    md_agent_config_free(&cfg);
    return 2;
  }
  md_tls_ctx_free(tls);
  printf("%s: configuration OK: name '%s', %zu listen address%s, %zu allowed controller%s, %zu "
         "allowed target prefix%s; %s\n",
         cfg.path, cfg.name, cfg.n_listen, cfg.n_listen == 1 ? "" : "es",
         cfg.tls.n_allowed_controllers, cfg.tls.n_allowed_controllers == 1 ? "" : "s",
         cfg.policy.n_allow_targets, cfg.policy.n_allow_targets == 1 ? "" : "es", who);
  md_agent_config_free(&cfg);
  return 0;
}
