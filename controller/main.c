/* mtrctl: the controller CLI. This file only reads the global options and
 * hands the command to its implementation (cli.h); every command returns
 * the exit status of CONTRACT.md: 0 fine, 1 a problem found, 2 usage or
 * configuration error, 3 an agent failed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "md_log.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: mtrctl [--config FILE] [-v] COMMAND [ARGS...]\n"
          "\n"
          "commands:\n"
          "  diagnose A B [opts]    trace A->B and B->A at once; one merged report and verdict\n"
          "  history [--limit N]    past diagnoses, newest first\n"
          "  show ID [--format F]   one stored diagnosis, rendered again\n"
          "  agents [NAME...]       list inventory agents and whether each answers\n"
          "                         (version, TLS identity, RTT, clock offset, or why not)\n"
          "  pki init --dir DIR     create the deployment CA\n"
          "  pki issue --dir DIR --name NAME --role agent|controller [--san X]...\n"
          "                         issue a certificate signed by it\n"
          "  help [COMMAND]         this text, or a command's\n"
          "\n"
          "global options:\n"
          "  --config FILE   configuration file (default: $MTRCTL_CONFIG, else\n"
          "                  ~/.config/mtrctl/config.yaml, else /etc/mtrctl/config.yaml)\n"
          "  -v, --verbose   log what happens on stderr\n"
          "  -h, --help      this text\n"
          "  -V, --version   print the version\n"
          "\n"
          "exit status: 0 ok (diagnose: healthy), 1 diagnose found a problem, 2 usage or\n"
          "configuration error, 3 an agent failed\n"
          "\n"
          "examples:\n"
          "  mtrctl diagnose local cvm -c 20 -o ./ticket-4711\n"
          "  mtrctl agents\n"
          "  mtrctl --config ./lab.yaml agents --timeout 2\n"
          "  mtrctl pki issue --dir /etc/mtrdiag/pki --name cvm --role agent --san 203.0.113.7\n"
          "\n"
          "'mtrctl COMMAND --help' or 'mtrctl help COMMAND' describes one command.\n");
}

/* `mtrctl help [COMMAND]`: the same text as `mtrctl COMMAND --help`. */
static int help(int argc, char **argv) {
  if (argc < 2) {
    usage(stdout);
    return MD_EXIT_OK;
  }
  if (argc > 3 || (argc == 3 && strcmp(argv[1], "pki") != 0)) {
    fprintf(stderr, "mtrctl help: unexpected argument '%s'\n", argv[argc - 1]);
    return MD_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "agents") == 0) {
    md_cli_agents_usage(stdout);
    return MD_EXIT_OK;
  }
  if (strcmp(cmd, "pki") == 0) {
    if (argc == 3 && strcmp(argv[2], "init") != 0 && strcmp(argv[2], "issue") != 0) {
      fprintf(stderr, "mtrctl help: unknown pki command '%s' (init or issue)\n", argv[2]);
      return MD_EXIT_USAGE;
    }
    md_cli_pki_usage(stdout);
    return MD_EXIT_OK;
  }
  if (strcmp(cmd, "help") == 0) {
    usage(stdout);
    return MD_EXIT_OK;
  }
  if (strcmp(cmd, "diagnose") == 0) {
    md_cli_diagnose_usage(stdout);
    return MD_EXIT_OK;
  }
  if (strcmp(cmd, "history") == 0) {
    md_cli_history_usage(stdout);
    return MD_EXIT_OK;
  }
  if (strcmp(cmd, "show") == 0) {
    md_cli_show_usage(stdout);
    return MD_EXIT_OK;
  }
  fprintf(stderr, "mtrctl help: unknown command '%s'\n", cmd);
  return MD_EXIT_USAGE;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); /* md_tls: libuv writes with write(2) */
  md_log_init("mtrctl", MD_LOG_WARN);
  const char *config = NULL;
  char err[256];
  md_args g = {argc, argv, 1};
  while (g.i < argc && argv[g.i][0] == '-') {
    const char *v;
    int r;
    if ((r = md_cli_opt_value(&g, "--config", NULL, &v, err, sizeof err)) != 0) {
      if (r < 0) {
        fprintf(stderr, "mtrctl: %s\n", err);
        usage(stderr);
        return MD_EXIT_USAGE;
      }
      config = v;
      continue;
    }
    if ((r = md_cli_opt_flag(&g, "--help", "-h", err, sizeof err)) != 0) {
      if (r < 0)
        break;
      usage(stdout);
      return MD_EXIT_OK;
    }
    if ((r = md_cli_opt_flag(&g, "--version", "-V", err, sizeof err)) != 0) {
      if (r < 0)
        break;
      printf("mtrctl %s\n", MD_VERSION);
      return MD_EXIT_OK;
    }
    if ((r = md_cli_opt_flag(&g, "--verbose", "-v", err, sizeof err)) != 0) {
      if (r < 0)
        break;
      md_log_init("mtrctl", MD_LOG_DEBUG);
      continue;
    }
    snprintf(err, sizeof err, "unknown option '%s'", argv[g.i]);
    break;
  }
  if (g.i < argc && argv[g.i][0] == '-') {
    fprintf(stderr, "mtrctl: %s\n", err);
    usage(stderr);
    return MD_EXIT_USAGE;
  }
  if (g.i >= argc) {
    fprintf(stderr, "mtrctl: no command given\n");
    usage(stderr);
    return MD_EXIT_USAGE;
  }
  const char *cmd = argv[g.i];
  int cargc = argc - g.i;
  char **cargv = argv + g.i;
  if (strcmp(cmd, "agents") == 0)
    return md_cli_agents_main(cargc, cargv, config, stdout, stderr);
  if (strcmp(cmd, "pki") == 0)
    return md_cli_pki_main(cargc, cargv, stdout, stderr);
  if (strcmp(cmd, "help") == 0)
    return help(cargc, cargv);
  if (strcmp(cmd, "diagnose") == 0)
    return md_cli_diagnose_main(cargc, cargv, config, stdout, stderr);
  if (strcmp(cmd, "history") == 0)
    return md_cli_history_main(cargc, cargv, config, stdout, stderr);
  if (strcmp(cmd, "show") == 0)
    return md_cli_show_main(cargc, cargv, config, stdout, stderr);
  fprintf(stderr, "mtrctl: unknown command '%s'\n", cmd);
  usage(stderr);
  return MD_EXIT_USAGE;
}
