/* `mtr-agent trace`: parse mtr-style options, run one trace on a private
 * loop, print it in mtr's --report layout, mtr's --split stream, or the PATH
 * JSON of the report contract. */
#include "trace_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "md_log.h"
#include "privdrop.h"

void md_trace_cmd_usage(FILE *out) {
  fprintf(out,
          "usage: mtr-agent trace TARGET [options]\n"
          "A one-shot trace from this host, printed like `mtr --report`.\n"
          "\n"
          "  -c, --report-cycles N   cycles (default 10)\n"
          "  -i, --interval SECONDS  time between cycles (default 1.0)\n"
          "  -s, --psize BYTES       whole packet size (default 64)\n"
          "  -f, --first-ttl N       first TTL (default 1)\n"
          "  -m, --max-ttl N         last TTL (default 30)\n"
          "  -U, --max-unknown N     stop after N silent hops (default 5)\n"
          "  -Q, --tos N             type of service / traffic class (default 0)\n"
          "  -P, --port N            UDP/TCP destination port (default 33434 / 80)\n"
          "  -L, --localport N       UDP/TCP source port (default: any free one)\n"
          "  -a, --address ADDR      source address\n"
          "  -u, --udp               UDP probes\n"
          "  -T, --tcp               TCP SYN probes\n"
          "      --protocol P        icmp, udp or tcp (default icmp)\n"
          "  -4 / -6                 IPv4 / IPv6 only\n"
          "  -n, --no-dns            no reverse DNS\n"
          "  -e, --mpls              show MPLS labels\n"
          "  -G, --gracetime S       how long a probe may stay unanswered (default 5)\n"
          "      --classic           mtr's varying probes instead of constant-flow (Paris) ones\n"
          "      --no-raw            unprivileged ICMP datagram sockets even with CAP_NET_RAW\n"
          "  -j, --json              the PATH object of the report contract\n"
          "  -p, --split             mtr's split (per-probe) stream\n"
          "  -r, --report            mtr's report layout (the default)\n"
          "\n"
          "example: mtr-agent trace -n -c 20 -i 0.5 198.18.3.2\n");
}

/* Whole number in [lo, hi], or a message naming the option. */
static int parse_int(const char *name, const char *s, long lo, long hi, int *out, char *err,
                     size_t errlen) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    snprintf(err, errlen, "%s: '%s' is not a whole number between %ld and %ld", name, s, lo, hi);
    return -EINVAL;
  }
  *out = (int)v;
  return 0;
}

static int parse_secs(const char *name, const char *s, double lo, double hi, double *out, char *err,
                      size_t errlen) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
    snprintf(err, errlen, "%s: '%s' is not a number of seconds between %g and %g", name, s, lo, hi);
    return -EINVAL;
  }
  *out = v;
  return 0;
}

enum { OPT_PROTOCOL = 1000, OPT_CLASSIC, OPT_NO_RAW };

int md_trace_cmd_parse(int argc, char **argv, md_trace_cmd *cmd, char *err, size_t errlen) {
  static const struct option longs[] = {{"report-cycles", required_argument, 0, 'c'},
                                        {"cycles", required_argument, 0, 'c'},
                                        {"interval", required_argument, 0, 'i'},
                                        {"psize", required_argument, 0, 's'},
                                        {"first-ttl", required_argument, 0, 'f'},
                                        {"max-ttl", required_argument, 0, 'm'},
                                        {"max-unknown", required_argument, 0, 'U'},
                                        {"tos", required_argument, 0, 'Q'},
                                        {"port", required_argument, 0, 'P'},
                                        {"localport", required_argument, 0, 'L'},
                                        {"address", required_argument, 0, 'a'},
                                        {"udp", no_argument, 0, 'u'},
                                        {"tcp", no_argument, 0, 'T'},
                                        {"protocol", required_argument, 0, OPT_PROTOCOL},
                                        {"no-dns", no_argument, 0, 'n'},
                                        {"mpls", no_argument, 0, 'e'},
                                        {"gracetime", required_argument, 0, 'G'},
                                        {"classic", no_argument, 0, OPT_CLASSIC},
                                        {"no-raw", no_argument, 0, OPT_NO_RAW},
                                        {"json", no_argument, 0, 'j'},
                                        {"split", no_argument, 0, 'p'},
                                        {"report", no_argument, 0, 'r'},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};
  memset(cmd, 0, sizeof *cmd);
  md_trace_opts_default(&cmd->opts);
  cmd->family = AF_UNSPEC;
  err[0] = 0;
  optind = 1;
  opterr = 0;
  int c, rc = 0, v = 0;
  static const char *source_arg;
  source_arg = NULL;
  while (rc == 0 &&
         (c = getopt_long(argc, argv, ":c:i:s:f:m:U:Q:P:L:a:uTneG:jprh46", longs, NULL)) != -1) {
    md_trace_opts *o = &cmd->opts;
    switch (c) {
    case 'c':
      rc = parse_int("cycles", optarg, 1, 1000000, &o->cycles, err, errlen);
      break;
    case 'i':
      rc = parse_secs("interval", optarg, 0.01, 3600, &o->interval_s, err, errlen);
      break;
    case 's':
      rc = parse_int("psize", optarg, 0, 9000, &o->psize, err, errlen);
      break;
    case 'f':
      rc = parse_int("first-ttl", optarg, 1, 255, &o->first_ttl, err, errlen);
      break;
    case 'm':
      rc = parse_int("max-ttl", optarg, 1, 255, &o->max_ttl, err, errlen);
      break;
    case 'U':
      rc = parse_int("max-unknown", optarg, 1, 255, &o->max_unknown, err, errlen);
      break;
    case 'Q':
      rc = parse_int("tos", optarg, 0, 255, &o->tos, err, errlen);
      break;
    case 'P':
      rc = parse_int("port", optarg, 1, 65535, &v, err, errlen);
      o->port = (uint16_t)v;
      break;
    case 'L':
      rc = parse_int("localport", optarg, 1, 65535, &v, err, errlen);
      o->local_port = (uint16_t)v;
      break;
    case 'a':
      source_arg = optarg;
      break;
    case 'u':
      o->proto = MD_PROTO_UDP;
      break;
    case 'T':
      o->proto = MD_PROTO_TCP;
      break;
    case OPT_PROTOCOL:
      if (md_proto_parse(optarg, &o->proto) != 0) {
        snprintf(err, errlen, "protocol: '%s' is not icmp, udp or tcp", optarg);
        rc = -EINVAL;
      }
      break;
    case 'n':
      o->no_dns = true;
      break;
    case 'e':
      cmd->show_mpls = true;
      break;
    case 'G':
      rc = parse_secs("gracetime", optarg, 0, 60, &o->grace_s, err, errlen);
      break;
    case OPT_CLASSIC:
      o->classic = true;
      break;
    case OPT_NO_RAW:
      cmd->no_raw = true;
      break;
    case 'j':
      cmd->output = MD_OUT_JSON;
      break;
    case 'p':
      cmd->output = MD_OUT_SPLIT;
      break;
    case 'r':
      cmd->output = MD_OUT_REPORT;
      break;
    case '4':
      cmd->family = AF_INET;
      break;
    case '6':
      cmd->family = AF_INET6;
      break;
    case 'h':
      cmd->help = true;
      return 0;
    case ':':
      snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
      rc = -EINVAL;
      break;
    default:
      snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
      rc = -EINVAL;
      break;
    }
  }
  if (rc < 0)
    return rc;
  if (cmd->opts.max_ttl < cmd->opts.first_ttl) {
    snprintf(err, errlen, "max-ttl: %d is below first-ttl %d", cmd->opts.max_ttl,
             cmd->opts.first_ttl);
    return -EINVAL;
  }
  if (optind >= argc) {
    snprintf(err, errlen, "no TARGET given");
    return -EINVAL;
  }
  if (optind + 1 < argc) {
    snprintf(err, errlen, "one TARGET only ('%s' is extra)", argv[optind + 1]);
    return -EINVAL;
  }
  cmd->target = argv[optind];
  cmd->opts.target_name = cmd->target;
  if (source_arg && md_addr_parse(source_arg, &cmd->opts.source) != 0) {
    snprintf(err, errlen, "address: '%s' is not an IPv4 or IPv6 address", source_arg);
    return -EINVAL;
  }
  if (source_arg && cmd->family != AF_UNSPEC && md_addr_family(&cmd->opts.source) != cmd->family) {
    snprintf(err, errlen, "address: '%s' is not of the family asked for with -4/-6", source_arg);
    return -EINVAL;
  }
  return 0;
}

int md_trace_cmd_resolve(md_trace_cmd *cmd, char *err, size_t errlen) {
  int fam = cmd->family;
  if (fam == AF_UNSPEC && md_addr_family(&cmd->opts.source) != AF_UNSPEC)
    fam = md_addr_family(&cmd->opts.source);
  if (md_addr_parse(cmd->target, &cmd->opts.target) == 0) {
    if (fam != AF_UNSPEC && md_addr_family(&cmd->opts.target) != fam) {
      snprintf(err, errlen, "target %s is not of the address family asked for", cmd->target);
      return -EINVAL;
    }
    return 0;
  }
  struct addrinfo hints = {.ai_family = fam, .ai_socktype = SOCK_DGRAM}, *res = NULL;
  int rc = getaddrinfo(cmd->target, NULL, &hints, &res);
  if (rc != 0 || !res) {
    snprintf(err, errlen, "target %s: %s", cmd->target, gai_strerror(rc));
    return -EINVAL;
  }
  memcpy(&cmd->opts.target, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

typedef struct run_ctx {
  uv_loop_t *loop;
  int status;
} run_ctx;

/* --split: one line per probe, as it happens. */
static void on_probe(md_trace *t, void *ud, const md_probe_event *ev) {
  (void)ud;
  md_path_render_split(md_trace_path(t), ev->ttl, stdout);
  fflush(stdout);
}

static void on_done(md_trace *t, void *ud, int status) {
  (void)t;
  run_ctx *rc = ud;
  rc->status = status;
  uv_stop(rc->loop);
}

/* Once the probe sockets are open and the trace has started, the command
 * needs no privilege at all: every capability goes, and no_new_privs is
 * set, as mtr's mtr-packet drops its own. A root user stays uid 0 (what it
 * reads and writes are its own files) but holds no capability while the
 * replies from the network are parsed. */
static int drop_privileges(char *err, size_t errlen) {
  md_privdrop_plan p;
  memset(&p, 0, sizeof p);
  p.uid = geteuid();
  p.gid = getegid();
  p.stay_root = p.uid == 0;
  p.quiet = true;
  return md_privdrop_apply(&p, err, errlen);
}

int md_trace_cmd_run(md_trace_cmd *cmd) {
  char err[256] = "";
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_prober *pr = NULL;
  int rc = md_prober_open(&loop, cmd->no_raw ? MD_PROBER_NO_RAW : 0, &pr);
  if (rc < 0) {
    md_error("cannot open probe sockets: %s", strerror(-rc));
    return 1;
  }
  run_ctx ctx = {.loop = &loop, .status = 1};
  md_trace_cb cb = {.on_done = on_done};
  if (cmd->output == MD_OUT_SPLIT)
    cb.on_probe = on_probe;
  md_trace *t = NULL;
  rc = md_trace_start(pr, &cmd->opts, &cb, &ctx, &t, err, sizeof err);
  if (rc < 0) {
    md_error("%s", err);
    md_prober_close(pr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc == -EINVAL ? 2 : 1;
  }
  rc = drop_privileges(err, sizeof err);
  if (rc < 0) {
    md_error("cannot drop privileges, not tracing: %s", err);
    md_trace_cancel(t);
    uv_run(&loop, UV_RUN_DEFAULT); /* until on_done */
    md_trace_free(t);
    md_prober_close(pr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  const md_path *p = md_trace_path(t);
  if (ctx.status < 0)
    md_error("trace ended early: %s", strerror(-ctx.status));
  if (cmd->output == MD_OUT_JSON) {
    json_t *j = md_path_to_json(p);
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
    json_decref(j);
  } else if (cmd->output == MD_OUT_REPORT) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    md_path_render_report(p, stdout, host, cmd->show_mpls);
  }
  fflush(stdout);
  int status = ctx.status < 0 ? 1 : 0;
  /* Lookups still waiting on a dead DNS server hold thread-pool workers, and
   * libuv joins those at exit: leave without waiting for them. */
  if (md_trace_rdns_pending(t) > 0) {
    fflush(stderr);
    _exit(status);
  }
  md_trace_free(t);
  md_prober_close(pr);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the handles close */
  uv_loop_close(&loop);
  return status;
}
