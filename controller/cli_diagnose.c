/* `mtrctl diagnose A B`, `mtrctl history`, `mtrctl show ID`: parse the
 * options (mtr's names), run the orchestration (diagnose.c), print the
 * report in the chosen format, write the evidence bundle, keep every
 * diagnosis in the history, and exit with the contract's status. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"
#include "diagnose.h"
#include "history.h"
#include "md_time.h"
#include "render.h"

typedef struct diag_args {
  bool help;
  const char *config, *a, *b, *output, *reference;
  md_format format;
  double timeout_s;
  long cycles, psize, first_ttl, max_ttl, tos, port;
  double interval;
  char protocol[8];
  bool no_dns, no_oneway;
  int family;
  bool set_cycles, set_interval, set_psize, set_max_ttl, set_protocol;
} diag_args;

void md_cli_diagnose_usage(FILE *out) {
  fprintf(out, "usage: mtrctl [--config FILE] diagnose A B [options]\n"
               "Trace A->B and B->A at the same moment, merge both into one report, and say where\n"
               "the loss or latency is. A is an inventory agent; B is an agent or a plain address\n"
               "(then forward only, and the report says so).\n"
               "\n"
               "  -c, --cycles N          cycles (default 10, or the config's defaults.cycles)\n"
               "  -i, --interval SECONDS  time between cycles (default 1.0)\n"
               "      --protocol P        icmp, udp or tcp (default icmp)\n"
               "  -P, --port N            UDP/TCP destination port\n"
               "  -s, --psize BYTES       packet size (default 64)\n"
               "  -f, --first-ttl N       first TTL (default 1)\n"
               "  -m, --max-ttl N         last TTL (default 30)\n"
               "  -Q, --tos N             type of service\n"
               "  -n, --no-dns            no reverse DNS on the agents\n"
               "  -4 / -6                 IPv4 / IPv6 only\n"
               "      --format F          text, json, markdown or html (default text)\n"
               "  -o, --output DIR        write the evidence bundle (report.json, report.md,\n"
               "                          report.html, forward.txt, reverse.txt, meta.json)\n"
               "      --reference ADDR    target for the local-ISP check (default: config's)\n"
               "      --timeout SECONDS   limit for the whole run\n"
          "      --no-oneway         no one-way streams between the agents (then follow-up\n"
          "                          probes alone separate what the traces cannot)\n"
               "\n"
               "exit status: 0 healthy, 1 a problem was found, 2 usage or configuration error\n"
               "(also: an agent refused the request under its policy or limits; its message\n"
               "is shown as it came), 3 an agent could not be reached, authenticated or finish\n"
               "its run (a partial report is still printed and stored)\n"
               "\n"
               "example: mtrctl diagnose local cvm -c 20 -o ./ticket-4711\n");
}

/* Parse `diagnose` arguments; values left 0 take the config's defaults. */
static int parse(int argc, char **argv, diag_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->format = MD_FORMAT_TEXT;
  md_args g = {argc, argv, 1};
  while (g.i < argc) {
    const char *arg = argv[g.i], *v = NULL;
    int r;
    long n;
#define FLAG(name, alias) ((r = md_cli_opt_flag(&g, name, alias, err, errlen)) != 0)
#define VALUE(name, alias) ((r = md_cli_opt_value(&g, name, alias, &v, err, errlen)) != 0)
#define NUM(opt, lo, hi, dst, flag)                                                                \
  do {                                                                                             \
    if (r < 0 || (r = md_cli_parse_long(opt, v, lo, hi, &n, err, errlen)) < 0)                     \
      return -EINVAL;                                                                              \
    dst = n;                                                                                       \
    flag;                                                                                          \
  } while (0)
    if (FLAG("--help", "-h")) {
      if (r < 0)
        return r;
      a->help = true;
    } else if (FLAG("--no-dns", "-n")) {
      if (r < 0)
        return r;
      a->no_dns = true;
    } else if (FLAG("--no-oneway", NULL)) {
      if (r < 0)
        return r;
      a->no_oneway = true;
    } else if (FLAG("-4", NULL)) {
      a->family = 4;
    } else if (FLAG("-6", NULL)) {
      a->family = 6;
    } else if (VALUE("--cycles", "-c")) {
      NUM("--cycles", 1, 100000, a->cycles, a->set_cycles = true);
    } else if (VALUE("--psize", "-s")) {
      NUM("--psize", 28, 9000, a->psize, a->set_psize = true);
    } else if (VALUE("--first-ttl", "-f")) {
      NUM("--first-ttl", 1, 255, a->first_ttl, (void)0);
    } else if (VALUE("--max-ttl", "-m")) {
      NUM("--max-ttl", 1, 255, a->max_ttl, a->set_max_ttl = true);
    } else if (VALUE("--tos", "-Q")) {
      NUM("--tos", 0, 255, a->tos, (void)0);
    } else if (VALUE("--port", "-P")) {
      NUM("--port", 1, 65535, a->port, (void)0);
    } else if (VALUE("--interval", "-i")) {
      if (r < 0 ||
          md_cli_parse_seconds("--interval", v, 0.0099, 3600, &a->interval, err, errlen) < 0)
        return -EINVAL;
      a->set_interval = true;
    } else if (VALUE("--timeout", NULL)) {
      if (r < 0 || md_cli_parse_seconds("--timeout", v, 0, 86400, &a->timeout_s, err, errlen) < 0)
        return -EINVAL;
    } else if (VALUE("--protocol", NULL)) {
      if (r < 0)
        return r;
      if (strcmp(v, "icmp") && strcmp(v, "udp") && strcmp(v, "tcp")) {
        snprintf(err, errlen, "--protocol must be icmp, udp or tcp, not '%s'", v);
        return -EINVAL;
      }
      snprintf(a->protocol, sizeof a->protocol, "%s", v);
      a->set_protocol = true;
    } else if (VALUE("--format", NULL)) {
      if (r < 0)
        return r;
      if (md_format_parse(v, &a->format) < 0) {
        snprintf(err, errlen, "--format must be text, json, markdown or html, not '%s'", v);
        return -EINVAL;
      }
    } else if (VALUE("--output", "-o")) {
      if (r < 0)
        return r;
      a->output = v;
    } else if (VALUE("--reference", NULL)) {
      if (r < 0)
        return r;
      a->reference = v;
    } else if (VALUE("--config", NULL)) {
      if (r < 0)
        return r;
      a->config = v;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      snprintf(err, errlen, "unknown option '%s' for 'diagnose'", arg);
      return -EINVAL;
    } else if (!a->a) {
      a->a = arg;
      g.i++;
    } else if (!a->b) {
      a->b = arg;
      g.i++;
    } else {
      snprintf(err, errlen, "unexpected argument '%s' (diagnose takes A and B)", arg);
      return -EINVAL;
    }
#undef FLAG
#undef VALUE
#undef NUM
  }
  if (!a->help && (!a->a || !a->b)) {
    snprintf(err, errlen, "diagnose needs two names: A (an agent) and B (an agent or address)");
    return -EINVAL;
  }
  if (a->first_ttl && a->max_ttl && a->first_ttl > a->max_ttl) {
    snprintf(err, errlen, "--first-ttl %ld is above --max-ttl %ld", a->first_ttl, a->max_ttl);
    return -EINVAL;
  }
  return 0;
}

/* The run request and the report's options, from arguments over config defaults. */
static void build_options(const diag_args *a, const md_ctl_config *cfg, md_diag_opts *o) {
  Mtrdiag__V1__RunRequest init = MTRDIAG__V1__RUN_REQUEST__INIT;
  o->run = init;
  const char *proto = a->set_protocol ? a->protocol : cfg->defaults.protocol;
  o->run.protocol = strcmp(proto, "udp") == 0   ? MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP
                    : strcmp(proto, "tcp") == 0 ? MTRDIAG__V1__PROTOCOL__PROTOCOL_TCP
                                                : MTRDIAG__V1__PROTOCOL__PROTOCOL_ICMP;
  o->run.cycles = a->set_cycles ? (uint32_t)a->cycles : cfg->defaults.cycles;
  double interval = a->set_interval ? a->interval : cfg->defaults.interval;
  o->run.interval_ms = (uint32_t)(interval * 1000 + 0.5);
  o->run.psize = a->set_psize ? (uint32_t)a->psize : cfg->defaults.psize;
  o->run.first_ttl = a->first_ttl ? (uint32_t)a->first_ttl : 1;
  o->run.max_ttl = a->set_max_ttl ? (uint32_t)a->max_ttl : cfg->defaults.max_ttl;
  o->run.tos = (uint32_t)a->tos;
  o->run.port = (uint32_t)a->port;
  o->run.no_dns = a->no_dns;
  o->run.family = a->family == 4   ? MTRDIAG__V1__FAMILY__FAMILY_IPV4
                  : a->family == 6 ? MTRDIAG__V1__FAMILY__FAMILY_IPV6
                                   : MTRDIAG__V1__FAMILY__FAMILY_ANY;
  md_report_options *ro = &o->ropts;
  snprintf(ro->protocol, sizeof ro->protocol, "%s", proto);
  ro->cycles = (int)o->run.cycles;
  ro->interval_ms = (int)o->run.interval_ms;
  ro->psize = (int)o->run.psize;
  ro->first_ttl = (int)o->run.first_ttl;
  ro->max_ttl = (int)o->run.max_ttl;
  ro->port = (int)o->run.port;
  ro->tos = (int)o->run.tos;
  ro->no_dns = a->no_dns;
  ro->family = a->family;
}

static const char *who_ran(void) {
  const char *u = getenv("USER");
  if (u && u[0])
    return u;
  struct passwd *pw = getpwuid(getuid());
  return pw ? pw->pw_name : "unknown";
}

typedef struct begin_ctx {
  md_history *hist;
  FILE *errf;
} begin_ctx;

/* Stored as incomplete the moment it begins: an interrupted diagnosis is
 * never lost. */
static void on_begin(const md_report *r, void *ud) {
  begin_ctx *b = ud;
  char err[512];
  if (b->hist && md_history_begin(b->hist, r, err, sizeof err) < 0)
    fprintf(b->errf, "mtrctl diagnose: history: %s\n", err);
}

int md_cli_diagnose_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf) {
  diag_args a;
  char err[512];
  if (parse(argc, argv, &a, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl diagnose: %s\n(see 'mtrctl diagnose --help')\n", err);
    return MD_EXIT_USAGE;
  }
  if (a.help) {
    md_cli_diagnose_usage(out);
    return MD_EXIT_OK;
  }
  md_ctl_config cfg;
  int rc = md_cli_load_config(a.config ? a.config : global_config, &cfg, errf);
  if (rc != 0)
    return rc;
  md_tls_ctx *tls = NULL;
  if (md_tls_ctx_new(MD_TLS_CLIENT, cfg.tls.cert, cfg.tls.key, cfg.tls.ca, &tls, err, sizeof err) <
      0) {
    fprintf(errf, "mtrctl diagnose: %s\n", err);
    md_ctl_config_free(&cfg);
    return MD_EXIT_USAGE;
  }
  md_history *hist = NULL;
  if (md_history_open(cfg.history, &hist, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl diagnose: history: %s\n", err);
    hist = NULL; /* the diagnosis still runs; it is just not kept */
  }
  md_diag_opts o = {.cfg = &cfg,
                    .a = a.a,
                    .b = a.b,
                    .timeout_s = a.timeout_s,
                    .reference = a.reference,
                    .ran_by = who_ran(), .no_oneway = a.no_oneway};
  build_options(&a, &cfg, &o);
  if (a.timeout_s == 0 && cfg.timeout > 0)
    o.timeout_s = cfg.timeout;
  if (isatty(fileno(stderr)))
    o.progress = stderr;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  begin_ctx bc = {hist, errf};
  md_diag_hooks hooks = {on_begin, &bc};
  md_report *r = NULL;
  rc = md_diag_run(&loop, tls, &o, &hooks, &r, err, sizeof err);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  int status;
  if (rc < 0) {
    fprintf(errf, "mtrctl diagnose: %s\n", err);
    status = MD_EXIT_USAGE;
  } else {
    if (hist && md_history_finish(hist, r, err, sizeof err) < 0)
      fprintf(errf, "mtrctl diagnose: history: %s\n", err);
    md_render(r, a.format, out);
    fflush(out);
    if (a.output) {
      char cmdline[1024] = "mtrctl";
      for (int i = 0; i < argc; i++) {
        size_t l = strlen(cmdline);
        snprintf(cmdline + l, sizeof cmdline - l, " %s", argv[i]);
      }
      md_bundle_info info = {.user = o.ran_by, .command = cmdline};
      if (md_bundle_write(r, a.output, &info, err, sizeof err) < 0)
        fprintf(errf, "mtrctl diagnose: bundle: %s\n", err);
      else
        fprintf(errf, "mtrctl diagnose: evidence bundle written to %s\n", a.output);
    }
    for (int i = 0; i < r->n_errors; i++)
      fprintf(errf, "mtrctl diagnose: %s%s%s\n", r->errors[i].agent ? r->errors[i].agent : "",
              r->errors[i].agent ? ": " : "", r->errors[i].message);
    status = md_diag_exit_status(r);
    md_report_free(r);
  }
  md_history_close(hist);
  md_tls_ctx_free(tls);
  md_ctl_config_free(&cfg);
  return status;
}

/* ---- history and show */

void md_cli_history_usage(FILE *out) {
  fprintf(out, "usage: mtrctl [--config FILE] history [--limit N]\n"
               "Past diagnoses, newest first (id, start, A, B, status, direction, summary).\n"
               "\n"
               "example: mtrctl history --limit 5\n");
}

void md_cli_show_usage(FILE *out) {
  fprintf(out, "usage: mtrctl [--config FILE] show ID [--format text|json|markdown|html]\n"
               "One stored diagnosis, rendered again.\n"
               "\n"
               "example: mtrctl show 20261129T021000Z-1a2b3c --format markdown\n");
}

/* Open the history named by the configuration, for reading. */
static int open_history(int argc_cfg, const char *config, md_ctl_config *cfg, md_history **h,
                        FILE *errf, const char *cmd) {
  (void)argc_cfg;
  int rc = md_cli_load_config(config, cfg, errf);
  if (rc != 0)
    return rc;
  char err[512];
  if (md_history_open(cfg->history, h, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl %s: %s\n", cmd, err);
    md_ctl_config_free(cfg);
    return MD_EXIT_USAGE;
  }
  return 0;
}

int md_cli_history_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf) {
  char err[256];
  long limit = 20;
  const char *config = global_config;
  md_args g = {argc, argv, 1};
  while (g.i < argc) {
    const char *v;
    int r;
    if ((r = md_cli_opt_flag(&g, "--help", "-h", err, sizeof err)) > 0) {
      md_cli_history_usage(out);
      return MD_EXIT_OK;
    } else if (r == 0 && (r = md_cli_opt_value(&g, "--limit", NULL, &v, err, sizeof err)) > 0) {
      if (md_cli_parse_long("--limit", v, 1, 100000, &limit, err, sizeof err) < 0)
        r = -EINVAL;
    } else if (r == 0 && (r = md_cli_opt_value(&g, "--config", NULL, &v, err, sizeof err)) > 0) {
      config = v;
    } else if (r == 0) {
      snprintf(err, sizeof err, "unexpected argument '%s' for 'history'", argv[g.i]);
      r = -EINVAL;
    }
    if (r < 0) {
      fprintf(errf, "mtrctl history: %s\n(see 'mtrctl history --help')\n", err);
      return MD_EXIT_USAGE;
    }
  }
  md_ctl_config cfg;
  md_history *h;
  int rc = open_history(argc, config, &cfg, &h, errf, "history");
  if (rc != 0)
    return rc;
  md_history_entry *e = NULL;
  int n = 0;
  char lerr[512];
  if (md_history_list(h, (int)limit, &e, &n, lerr, sizeof lerr) < 0) {
    fprintf(errf, "mtrctl history: %s\n", lerr);
    rc = MD_EXIT_USAGE;
  } else {
    for (int i = 0; i < n; i++) {
      char t[40];
      fprintf(out, "%-28s %s  %s -> %s  %-11s %-8s %s\n", e[i].id,
              md_time_rfc3339(e[i].started_at_ns, t, sizeof t), e[i].a ? e[i].a : "?",
              e[i].b ? e[i].b : "?", e[i].complete ? md_status_name(e[i].status) : "incomplete",
              md_direction_name(e[i].direction), e[i].summary ? e[i].summary : "");
    }
    if (n == 0)
      fprintf(out, "(no diagnoses stored in %s yet)\n", md_history_path(h));
    md_history_list_free(e, n);
  }
  md_history_close(h);
  md_ctl_config_free(&cfg);
  return rc;
}

int md_cli_show_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf) {
  char err[512];
  const char *id = NULL, *config = global_config;
  md_format fmt = MD_FORMAT_TEXT;
  md_args g = {argc, argv, 1};
  while (g.i < argc) {
    const char *v;
    int r;
    if ((r = md_cli_opt_flag(&g, "--help", "-h", err, sizeof err)) > 0) {
      md_cli_show_usage(out);
      return MD_EXIT_OK;
    } else if (r == 0 && (r = md_cli_opt_value(&g, "--format", NULL, &v, err, sizeof err)) > 0) {
      if (md_format_parse(v, &fmt) < 0) {
        snprintf(err, sizeof err, "--format must be text, json, markdown or html, not '%s'", v);
        r = -EINVAL;
      }
    } else if (r == 0 && (r = md_cli_opt_value(&g, "--config", NULL, &v, err, sizeof err)) > 0) {
      config = v;
    } else if (r == 0 && argv[g.i][0] != '-' && !id) {
      id = argv[g.i++];
    } else if (r == 0) {
      snprintf(err, sizeof err, "unexpected argument '%s' for 'show'", argv[g.i]);
      r = -EINVAL;
    }
    if (r < 0) {
      fprintf(errf, "mtrctl show: %s\n(see 'mtrctl show --help')\n", err);
      return MD_EXIT_USAGE;
    }
  }
  if (!id) {
    fprintf(errf, "mtrctl show: which diagnosis? give its ID (see 'mtrctl history')\n");
    return MD_EXIT_USAGE;
  }
  md_ctl_config cfg;
  md_history *h;
  int rc = open_history(argc, config, &cfg, &h, errf, "show");
  if (rc != 0)
    return rc;
  md_report *r = NULL;
  if (md_history_load(h, id, &r, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl show: %s\n", err);
    rc = MD_EXIT_USAGE;
  } else {
    md_render(r, fmt, out);
    md_report_free(r);
  }
  md_history_close(h);
  md_ctl_config_free(&cfg);
  return rc;
}
