/* mtrctl's commands as library functions (main.c only dispatches), so the
 * unit tests can call them: argument parsing, help texts, running a command
 * with its output on any FILE. CONTRACT.md has the user-facing contract;
 * docs/controller.md the details.
 *
 * Every *_main function returns mtrctl's exit status and prints its errors
 * as "mtrctl CMD: <what is wrong>" on errf; a usage error also prints a
 * short usage line. */
#ifndef MD_CLI_H
#define MD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "md_config.h"
#include "md_pki.h"

/* Exit statuses (CONTRACT.md). */
enum {
  MD_EXIT_OK = 0,      /* done; every agent answered */
  MD_EXIT_PROBLEM = 1, /* diagnose: a problem was found; pki: could not write or read files */
  MD_EXIT_USAGE = 2,   /* usage or configuration error */
  MD_EXIT_AGENT = 3,   /* an agent could not be reached, authenticated or finish */
};

/* ---- argument helpers shared by the commands */

/* A cursor over argv: the parsers look at argv[i]. */
typedef struct md_args {
  int argc;
  char **argv;
  int i;
} md_args;

/* Does argv[i] name option `name` (or `alias`, may be NULL) that takes a
 * value ("--dir DIR" or "--dir=DIR")? 1 and *val set (i moves past it),
 * 0 when it is another word, -EINVAL with err naming the option when the
 * value is missing. */
int md_cli_opt_value(md_args *a, const char *name, const char *alias, const char **val, char *err,
                     size_t errlen);
/* Does argv[i] name flag `name` (or `alias`)? 1 (i moves on), 0, or
 * -EINVAL when given a value ("--json=1"). */
int md_cli_opt_flag(md_args *a, const char *name, const char *alias, char *err, size_t errlen);
/* A whole number in [min, max] for option `opt`. 0 or -EINVAL with err. */
int md_cli_parse_long(const char *opt, const char *s, long min, long max, long *out, char *err,
                      size_t errlen);
/* A finite decimal number in (min, max]. 0 or -EINVAL with err. */
int md_cli_parse_seconds(const char *opt, const char *s, double min, double max, double *out,
                         char *err, size_t errlen);

/* Load the controller configuration: `path`, or md_ctl_config_default_path
 * when NULL. On error prints "mtrctl: <file:line: key: message>" and
 * returns MD_EXIT_USAGE; 0 on success. */
int md_cli_load_config(const char *path, md_ctl_config *cfg, FILE *errf);

/* ---- mtrctl pki init|issue (no configuration needed) */

enum md_cli_pki_cmd { MD_CLI_PKI_NONE, MD_CLI_PKI_INIT, MD_CLI_PKI_ISSUE };

#define MD_CLI_MAX_SANS 32

typedef struct md_cli_pki_args {
  enum md_cli_pki_cmd cmd;
  bool help;
  const char *dir, *name;
  bool has_role;
  enum md_pki_role role;
  const char *sans[MD_CLI_MAX_SANS];
  size_t n_sans;
  long days; /* 0: MD_PKI_DEFAULT_DAYS */
  /* hidden, for tests: validity ends this many seconds from now (may be
   * negative: an expired certificate) */
  bool has_not_after;
  long not_after_s;
} md_cli_pki_args;

/* argv[0] is "pki". 0 or -EINVAL with err naming the problem. */
int md_cli_pki_parse(int argc, char **argv, md_cli_pki_args *a, char *err, size_t errlen);
void md_cli_pki_usage(FILE *out);
/* Parse, then create the files; prints what was written. */
int md_cli_pki_main(int argc, char **argv, FILE *out, FILE *errf);

/* ---- mtrctl agents */

#define MD_CLI_MAX_NAMES 64

typedef struct md_cli_agents_args {
  bool help;
  bool json;          /* --format json */
  const char *config; /* --config given after the command */
  unsigned timeout_ms;
  const char *names[MD_CLI_MAX_NAMES]; /* only these agents (none: all) */
  size_t n_names;
} md_cli_agents_args;

/* argv[0] is "agents". 0 or -EINVAL with err. */
int md_cli_agents_parse(int argc, char **argv, md_cli_agents_args *a, char *err, size_t errlen);
void md_cli_agents_usage(FILE *out);
/* Ask every agent (or a->names) in parallel on `loop` and print the table
 * (or JSON) on out. Runs the loop until every agent answered or failed.
 * Returns MD_EXIT_OK, MD_EXIT_AGENT, or MD_EXIT_USAGE (unknown name, TLS
 * files unusable; the message goes to errf). */
int md_cli_agents_run(uv_loop_t *loop, const md_ctl_config *cfg, const md_cli_agents_args *a,
                      FILE *out, FILE *errf);
/* Parse, load the configuration (a->config, else global_config, else the
 * default path), run on a loop of its own. */
int md_cli_agents_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf);

/* ---- mtrctl diagnose / history / show (cli_diagnose.c) */

void md_cli_diagnose_usage(FILE *out);
int md_cli_diagnose_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf);
void md_cli_history_usage(FILE *out);
int md_cli_history_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf);
void md_cli_show_usage(FILE *out);
int md_cli_show_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf);

#endif
