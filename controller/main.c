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

/* The commands of CONTRACT.md this build does not have yet. */
static const char *const not_implemented[] = {"diagnose", "history", "show"};

static void usage(FILE *out) {
  fprintf(out,
          "usage: mtrctl [--config FILE] [-v] COMMAND [ARGS...]\n"
          "\n"
          "commands:\n"
          "  agents [NAME...]       list inventory agents and whether each answers\n"
          "                         (version, TLS identity, RTT, clock offset, or why not)\n"
          "  pki init --dir DIR     create the deployment CA\n"
          "  pki issue --dir DIR --name NAME --role agent|controller [--san X]...\n"
          "                         issue a certificate signed by it\n"
          "  help [COMMAND]         this text, or a command's\n"
          "  (diagnose, history and show are not implemented in this version)\n"
          "\n"
          "global options:\n"
          "  --config FILE   configuration file (default: $MTRCTL_CONFIG, else\n"
          "                  ~/.config/mtrctl/config.yaml, else /etc/mtrctl/config.yaml)\n"
          "  -v, --verbose   log what happens on stderr\n"
          "  -h, --help      this text\n"
          "  -V, --version   print the version\n"
          "\n"
          "exit status: 0 ok, 2 usage or configuration error, 3 an agent failed\n"
          "\n"
          "examples:\n"
          "  mtrctl agents\n"
          "  mtrctl --config ./lab.yaml agents --timeout 2\n"
          "  mtrctl pki issue --dir /etc/mtrdiag/pki --name cvm --role agent --san 203.0.113.7\n"
          "\n"
          "'mtrctl COMMAND --help' or 'mtrctl help COMMAND' describes one command.\n");
}

static bool is_not_implemented(const char *cmd) {
  for (size_t i = 0; i < sizeof not_implemented / sizeof *not_implemented; i++)
    if (strcmp(cmd, not_implemented[i]) == 0)
      return true;
  return false;
}

static int refuse_not_implemented(const char *cmd) {
  fprintf(stderr, "mtrctl: '%s' is not implemented in this version\n", cmd);
  return MD_EXIT_USAGE;
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
  if (is_not_implemented(cmd))
    return refuse_not_implemented(cmd);
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
  if (is_not_implemented(cmd))
    return refuse_not_implemented(cmd);
  fprintf(stderr, "mtrctl: unknown command '%s'\n", cmd);
  usage(stderr);
  return MD_EXIT_USAGE;
}
