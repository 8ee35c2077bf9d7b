/* mtr-agent: the agent daemon (`mtr-agent [--config FILE]`, daemon.c) and
 * `mtr-agent trace TARGET`, a one-shot local trace (trace_cmd.c). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "md_log.h"
#include "privdrop.h"
#include "trace_cmd.h"

/* Everything an operator needs to start the daemon, with an example. */
static void usage(FILE *out) {
  fprintf(out,
          "usage: mtr-agent [--config FILE] [options]   serve controllers (the daemon)\n"
          "       mtr-agent trace TARGET [options]      one-shot local trace (see trace --help)\n"
          "\n"
          "  -c, --config FILE    agent configuration (default %s)\n"
          "  -t, --check-config   load the configuration and TLS files, report, exit\n"
          "      --no-raw         ICMP datagram sockets even with CAP_NET_RAW (ICMP only)\n"
          "  -u, --user NAME      started as root: run as NAME once the sockets are open\n"
          "                       (default: config user:, else %s when it exists)\n"
          "  -v, --verbose        debug messages too\n"
          "  -h, --help           this text\n"
          "  -V, --version        the version\n"
          "\n"
          "The daemon listens for controllers (mtrctl) over mutually authenticated TLS 1.3 and\n"
          "traces on their command, within its policy. It logs one line per connection and per\n"
          "run to stderr; SIGTERM or SIGINT stop it cleanly (runs cancelled, exit 0); SIGHUP\n"
          "reloads certificates and policy from the file (connections and runs go on).\n"
          "Once its raw sockets and listeners are open it gives up root and every capability\n"
          "(docs/security.md): the TLS files and the config must be readable by its user.\n"
          "\n"
          "exit status: 0 stopped on request, 2 configuration or TLS file error or unknown\n"
          "user, 1 other errors.\n"
          "\n"
          "example:\n"
          "  mtrctl pki issue --dir /etc/mtrdiag/pki --name cvm --role agent --san 203.0.113.7\n"
          "  cat >/etc/mtr-agent/config.yaml <<EOF\n"
          "  name: cvm\n"
          "  listen: [\"0.0.0.0:7447\", \"[::]:7447\"]\n"
          "  tls: { cert: cvm.crt, key: cvm.key, ca: ca.crt, allowed_controllers: [ops] }\n"
          "  policy: { allow_targets: [\"198.51.100.10/32\"] }\n"
          "  EOF\n"
          "  mtr-agent --config /etc/mtr-agent/config.yaml\n",
          MD_AGENT_CONFIG_DEFAULT_PATH, MD_PRIVDROP_DEFAULT_USER);
}

/* `mtr-agent trace ...`, exactly as before the daemon existed. */
static int trace_main(int argc, char **argv) {
  md_trace_cmd cmd;
  char err[256];
  if (md_trace_cmd_parse(argc - 1, argv + 1, &cmd, err, sizeof err) < 0) {
    fprintf(stderr, "mtr-agent trace: %s\n", err);
    md_trace_cmd_usage(stderr);
    return 2;
  }
  if (cmd.help) {
    md_trace_cmd_usage(stdout);
    return 0;
  }
  if (md_trace_cmd_resolve(&cmd, err, sizeof err) < 0) {
    fprintf(stderr, "mtr-agent trace: %s\n", err);
    return 2;
  }
  return md_trace_cmd_run(&cmd);
}

/* `trace` keeps its own parser; everything else is the daemon's. */
int main(int argc, char **argv) {
  md_log_init("mtr-agent", MD_LOG_INFO);
  if (argc >= 2 && strcmp(argv[1], "trace") == 0)
    return trace_main(argc, argv);

  enum { OPT_NO_RAW = 1000 };
  static const struct option longs[] = {
      {"config", required_argument, 0, 'c'},  {"check-config", no_argument, 0, 't'},
      {"no-raw", no_argument, 0, OPT_NO_RAW}, {"user", required_argument, 0, 'u'},
      {"verbose", no_argument, 0, 'v'},       {"help", no_argument, 0, 'h'},
      {"version", no_argument, 0, 'V'},       {0, 0, 0, 0}};
  const char *config = MD_AGENT_CONFIG_DEFAULT_PATH;
  bool check = false;
  md_daemon_opts opts = {0};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":c:tu:vhV", longs, NULL)) != -1) {
    switch (c) {
    case 'c':
      config = optarg;
      break;
    case 't':
      check = true;
      break;
    case OPT_NO_RAW:
      opts.prober_flags |= MD_PROBER_NO_RAW;
      break;
    case 'u':
      opts.user = optarg;
      break;
    case 'v':
      md_log_init("mtr-agent", MD_LOG_DEBUG);
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("mtr-agent %s\n", md_agent_version());
      return 0;
    case ':':
      fprintf(stderr, "mtr-agent: option '%s' needs a value\n", argv[optind - 1]);
      usage(stderr);
      return 2;
    default:
      fprintf(stderr, "mtr-agent: unknown option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "mtr-agent: unknown command '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (check)
    return md_daemon_check_config(config, &opts);
  return md_daemon_main(config, &opts);
}
