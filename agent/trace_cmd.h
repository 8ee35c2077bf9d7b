/* trace_cmd: `mtr-agent trace TARGET [options]`, a one-shot local trace with
 * no control channel, for checking the probe engine against mtr by hand. */
#ifndef MD_TRACE_CMD_H
#define MD_TRACE_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "engine.h"

typedef enum md_trace_output { MD_OUT_REPORT, MD_OUT_JSON, MD_OUT_SPLIT } md_trace_output;

typedef struct md_trace_cmd {
  md_trace_opts opts;
  const char *target; /* as typed */
  int family;         /* AF_UNSPEC, or AF_INET / AF_INET6 from -4 / -6 */
  md_trace_output output;
  bool show_mpls;     /* -e */
  bool no_raw;        /* --no-raw: use datagram sockets even with CAP_NET_RAW */
  bool help;
} md_trace_cmd;

/* Parse argv (argv[0] is "trace"). 0, or -EINVAL with a message naming the
 * option in err. Does not resolve the target. */
int md_trace_cmd_parse(int argc, char **argv, md_trace_cmd *cmd, char *err, size_t errlen);
/* Resolve the target (and -a source) per -4/-6. 0 or -EINVAL with message. */
int md_trace_cmd_resolve(md_trace_cmd *cmd, char *err, size_t errlen);
/* Run it and print; returns the process exit status. */
int md_trace_cmd_run(md_trace_cmd *cmd);
void md_trace_cmd_usage(FILE *out);

#endif
