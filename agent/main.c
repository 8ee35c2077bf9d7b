/* mtr-agent: the agent daemon (`mtr-agent --config FILE`, a later step) and
 * `mtr-agent trace TARGET`, a one-shot local trace. */
#include <stdio.h>
#include <string.h>

#include "md_log.h"
#include "trace_cmd.h"

const char *md_agent_version(void);

static void usage(FILE *out) {
  fprintf(out, "usage: mtr-agent trace TARGET [options]   one-shot local trace (see trace --help)\n"
               "       mtr-agent --version\n");
}

int main(int argc, char **argv) {
  md_log_init("mtr-agent", MD_LOG_INFO);
  if (argc >= 2 && strcmp(argv[1], "trace") == 0) {
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
  if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
    printf("mtr-agent %s\n", md_agent_version());
    return 0;
  }
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "mtr-agent: %s\n", argc >= 2 ? "unknown command" : "no command given");
  usage(stderr);
  return 2;
}
