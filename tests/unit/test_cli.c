/* mtrctl's command line: every argument error names the problem and exits
 * 2; help texts exit 0; configuration errors carry the loader's
 * file:line: key message. The commands' parsers are called in-process
 * (controller/cli.h); the global dispatch of main.c by running the mtrctl
 * binary next to this test's build directory. Only loopback is used. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "md_tls.h"

static char g_tmp[256];
static char g_mtrctl[PATH_MAX + 32];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int setup_all(void **state) {
  (void)state;
  snprintf(g_tmp, sizeof g_tmp, "/tmp/md_cli_test.XXXXXX");
  if (!mkdtemp(g_tmp))
    return -1;
  /* build/tests/test_cli -> build/controller/mtrctl */
  char self[PATH_MAX - 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) {
      *slash = '\0';
      snprintf(g_mtrctl, sizeof g_mtrctl, "%s/../controller/mtrctl", self);
    }
  }
  return 0;
}

static int teardown_all(void **state) {
  (void)state;
  return nftw(g_tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers */

/* Split a command line at spaces (no quoting needed in these tests). */
static int split(char *line, char **argv, int max) {
  int n = 0;
  for (char *t = strtok(line, " "); t && n < max - 1; t = strtok(NULL, " "))
    argv[n++] = t;
  argv[n] = NULL;
  return n;
}

/* Parse `line` with the pki parser; returns its code, err holds the text. */
static int pki_parse(const char *line, md_cli_pki_args *a, char *err, size_t errlen) {
  static char buf[2048]; /* a's strings point into it */
  char *argv[128];
  snprintf(buf, sizeof buf, "%s", line);
  int argc = split(buf, argv, 128);
  err[0] = '\0';
  return md_cli_pki_parse(argc, argv, a, err, errlen);
}

static void pki_bad(const char *line, const char *words) {
  md_cli_pki_args a;
  char err[512];
  int rc = pki_parse(line, &a, err, sizeof err);
  if (rc != -EINVAL || !strstr(err, words))
    fail_msg("'%s': expected an error with \"%s\", got %d \"%s\"", line, words, rc, err);
}

static void agents_bad(const char *line, const char *words) {
  char buf[1024], *argv[64], err[512] = "";
  snprintf(buf, sizeof buf, "%s", line);
  int argc = split(buf, argv, 64);
  md_cli_agents_args a;
  int rc = md_cli_agents_parse(argc, argv, &a, err, sizeof err);
  if (rc != -EINVAL || !strstr(err, words))
    fail_msg("'%s': expected an error with \"%s\", got %d \"%s\"", line, words, rc, err);
}

/* Run a *_main function with captured output; returns its exit status. */
static int capture(int (*fn)(int, char **, const char *, FILE *, FILE *), const char *global,
                   const char *line, char **out, char **err) {
  char buf[2048], *argv[64];
  snprintf(buf, sizeof buf, "%s", line);
  int argc = split(buf, argv, 64);
  size_t ol = 0, el = 0;
  FILE *o = open_memstream(out, &ol), *e = open_memstream(err, &el);
  int rc = fn(argc, argv, global, o, e);
  fclose(o);
  fclose(e);
  return rc;
}

static int pki_main_adapter(int argc, char **argv, const char *g, FILE *o, FILE *e) {
  (void)g;
  return md_cli_pki_main(argc, argv, o, e);
}

/* Run the mtrctl binary; stdout and stderr into malloc'ed strings. */
static int run_mtrctl(const char *const *args, const char *env_config, char **out, char **err) {
  char of[300], ef[300];
  snprintf(of, sizeof of, "%s/out", g_tmp);
  snprintf(ef, sizeof ef, "%s/err", g_tmp);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fo = open(of, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(ef, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    if (env_config)
      setenv("MTRCTL_CONFIG", env_config, 1);
    else
      unsetenv("MTRCTL_CONFIG");
    char *argv[32];
    int n = 0;
    argv[n++] = g_mtrctl;
    for (; args[n - 1] && n < 31; n++)
      argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    execv(g_mtrctl, argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  const char *files[] = {of, ef};
  char **dst[] = {out, err};
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen(files[i], "r");
    assert_non_null(f);
    char *b = calloc(1, 65536);
    size_t r = fread(b, 1, 65535, f);
    b[r] = '\0';
    fclose(f);
    *dst[i] = b;
  }
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void expect_binary(const char *const *args, const char *env_config, int code,
                          const char *in_out, const char *in_err) {
  char *out, *err;
  int rc = run_mtrctl(args, env_config, &out, &err);
  if (rc != code || (in_out && !strstr(out, in_out)) || (in_err && !strstr(err, in_err)))
    fail_msg("mtrctl %s %s: expected %d with \"%s\" / \"%s\", got %d\n--- stdout\n%s--- stderr\n%s",
             args[0] ? args[0] : "", args[0] && args[1] ? args[1] : "", code, in_out ? in_out : "",
             in_err ? in_err : "", rc, out, err);
  free(out);
  free(err);
}

static bool have_binary(void) {
  if (access(g_mtrctl, X_OK) == 0)
    return true;
  fprintf(stderr, "  (skipped: %s not built)\n", g_mtrctl);
  return false;
}

/* ---- pki */

static void test_pki_parse_ok(void **state) {
  (void)state;
  md_cli_pki_args a;
  char err[512];
  assert_int_equal(pki_parse("pki init --dir /x", &a, err, sizeof err), 0);
  assert_int_equal(a.cmd, MD_CLI_PKI_INIT);
  assert_string_equal(a.dir, "/x");
  assert_int_equal(pki_parse("pki issue --dir=/x --name cvm --role agent --san 198.18.4.2 "
                             "--san cvm.example --days 30",
                             &a, err, sizeof err),
                   0);
  assert_int_equal(a.cmd, MD_CLI_PKI_ISSUE);
  assert_string_equal(a.name, "cvm");
  assert_int_equal(a.role, MD_PKI_AGENT);
  assert_int_equal(a.n_sans, 2);
  assert_string_equal(a.sans[1], "cvm.example");
  assert_int_equal(a.days, 30);
  assert_int_equal(pki_parse("pki issue --dir /x --name old --role controller "
                             "--not-after-seconds -60",
                             &a, err, sizeof err),
                   0);
  assert_true(a.has_not_after);
  assert_int_equal(a.not_after_s, -60);
  assert_int_equal(pki_parse("pki --help", &a, err, sizeof err), 0);
  assert_true(a.help);
  assert_int_equal(pki_parse("pki issue -h", &a, err, sizeof err), 0);
  assert_true(a.help);
}

static void test_pki_parse_errors(void **state) {
  (void)state;
  pki_bad("pki", "no pki command given");
  pki_bad("pki frob --dir x", "unknown pki command 'frob'");
  pki_bad("pki init", "--dir is required");
  pki_bad("pki init --dir", "option --dir needs a value");
  pki_bad("pki init --dir=", "--dir must not be empty");
  pki_bad("pki init --dir x --name y", "unknown option '--name' for 'pki init'");
  pki_bad("pki init --dir x extra", "unexpected argument 'extra' for 'pki init'");
  pki_bad("pki issue --dir x --role agent", "--name is required");
  pki_bad("pki issue --dir x --name y", "--role is required");
  pki_bad("pki issue --name y --role agent", "--dir is required");
  pki_bad("pki issue --dir x --name y --role boss",
          "--role must be agent or controller, not 'boss'");
  pki_bad("pki issue --dir x --name ../y --role agent", "--name '../y'");
  pki_bad("pki issue --dir x --name ca --role agent", "--name 'ca'");
  pki_bad("pki issue --dir x --name y --role agent --days 0", "--days must be a whole number");
  pki_bad("pki issue --dir x --name y --role agent --days 99999", "from 1 to 36500");
  pki_bad("pki issue --dir x --name y --role agent --days 3x", "not '3x'");
  pki_bad("pki issue --dir x --name y --role agent --days", "option --days needs a value");
  pki_bad("pki issue --dir x --name y --role agent --sna 1.2.3.4", "unknown option '--sna'");
  pki_bad("pki issue --dir x --name y --role agent --san=", "--san must not be empty");
  pki_bad("pki issue --dir x --name y --role agent --days 3 --not-after-seconds 5",
          "exclude each other");
  pki_bad("pki issue --help=yes", "option --help takes no value");
  char line[2048] = "pki issue --dir x --name y --role agent";
  for (int i = 0; i <= MD_CLI_MAX_SANS; i++)
    strcat(line, " --san h");
  pki_bad(line, "too many --san");
}

/* The whole command: files written, the pin printed is the certificate's,
 * nothing is overwritten (exit 1), bad requests exit 2. */
static void test_pki_main(void **state) {
  (void)state;
  char *out, *err, line[512], dir[300];
  snprintf(dir, sizeof dir, "%s/pki", g_tmp);
  snprintf(line, sizeof line, "pki init --dir %s", dir);
  assert_int_equal(capture(pki_main_adapter, NULL, line, &out, &err), 0);
  assert_non_null(strstr(out, "/ca.crt"));
  assert_non_null(strstr(out, "/ca.key"));
  free(out);
  free(err);
  assert_int_equal(capture(pki_main_adapter, NULL, line, &out, &err), MD_EXIT_PROBLEM);
  assert_non_null(strstr(err, "mtrctl pki init: "));
  free(out);
  free(err);
  snprintf(line, sizeof line, "pki issue --dir %s --name cvm --role agent --san 198.18.4.2", dir);
  assert_int_equal(capture(pki_main_adapter, NULL, line, &out, &err), 0);
  char crt[400], pin[MD_TLS_PIN_LEN], e2[256], want[200];
  snprintf(crt, sizeof crt, "%s/cvm.crt", dir);
  assert_int_equal(md_tls_cert_spki_sha256_b64(crt, pin, e2, sizeof e2), 0);
  snprintf(want, sizeof want, "\npin_sha256: %s\n", pin);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "/cvm.key"));
  struct stat st;
  snprintf(crt, sizeof crt, "%s/cvm.key", dir);
  assert_int_equal(stat(crt, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  free(out);
  free(err);
  assert_int_equal(capture(pki_main_adapter, NULL, line, &out, &err), MD_EXIT_PROBLEM);
  assert_non_null(strstr(err, "already exists"));
  free(out);
  free(err);
  snprintf(line, sizeof line, "pki issue --dir %s --name z --role agent --san bad!san", dir);
  assert_int_equal(capture(pki_main_adapter, NULL, line, &out, &err), MD_EXIT_USAGE);
  assert_non_null(strstr(err, "bad!san"));
  free(out);
  free(err);
  snprintf(line, sizeof line,
           "pki issue --dir %s --name gone --role controller "
           "--not-after-seconds -120",
           dir);
  assert_int_equal(capture(pki_main_adapter, NULL, line, &out, &err), 0);
  assert_non_null(strstr(out, "expired 120 s ago"));
  free(out);
  free(err);
  assert_int_equal(capture(pki_main_adapter, NULL, "pki issue --dir", &out, &err), MD_EXIT_USAGE);
  assert_non_null(strstr(err, "mtrctl pki: option --dir needs a value"));
  free(out);
  free(err);
  assert_int_equal(capture(pki_main_adapter, NULL, "pki --help", &out, &err), 0);
  assert_non_null(strstr(out, "examples:"));
  free(out);
  free(err);
}

/* ---- agents */

static void test_agents_parse(void **state) {
  (void)state;
  char buf[256] = "agents cvm --timeout 2.5 --format json local --config /c.yaml", *argv[16];
  int argc = split(buf, argv, 16);
  md_cli_agents_args a;
  char err[256];
  assert_int_equal(md_cli_agents_parse(argc, argv, &a, err, sizeof err), 0);
  assert_int_equal(a.timeout_ms, 2500);
  assert_true(a.json);
  assert_int_equal(a.n_names, 2);
  assert_string_equal(a.names[1], "local");
  assert_string_equal(a.config, "/c.yaml");
  char buf2[64] = "agents";
  argc = split(buf2, argv, 16);
  assert_int_equal(md_cli_agents_parse(argc, argv, &a, err, sizeof err), 0);
  assert_int_equal(a.timeout_ms, 5000);
  assert_false(a.json);
  agents_bad("agents --timeout 0", "--timeout must be a number of seconds above 0");
  agents_bad("agents --timeout -1", "not '-1'");
  agents_bad("agents --timeout 5s", "not '5s'");
  agents_bad("agents --timeout 4000", "at most 3600");
  agents_bad("agents --timeout", "option --timeout needs a value");
  agents_bad("agents --format xml", "--format must be text or json, not 'xml'");
  agents_bad("agents --fast", "unknown option '--fast' for 'agents'");
  agents_bad("agents -x", "unknown option '-x' for 'agents'");
  agents_bad("agents --config", "option --config needs a value");
}

static void test_agents_config_errors(void **state) {
  (void)state;
  char *out, *err, path[400], line[600];
  /* missing file */
  snprintf(path, sizeof path, "%s/none.yaml", g_tmp);
  assert_int_equal(capture(md_cli_agents_main, path, "agents", &out, &err), MD_EXIT_USAGE);
  assert_non_null(strstr(err, "none.yaml: cannot open"));
  free(out);
  free(err);
  /* the loader's file:line: key message */
  assert_int_equal(
      capture(md_cli_agents_main, MD_TEST_DATA "/config/bad_port.yaml", "agents", &out, &err),
      MD_EXIT_USAGE);
  assert_non_null(strstr(err, "bad_port.yaml:7: agents.cvm.address:"));
  free(out);
  free(err);
  /* --config after the command wins over the global one */
  snprintf(line, sizeof line, "agents --config %s", path);
  assert_int_equal(
      capture(md_cli_agents_main, MD_TEST_DATA "/config/bad_port.yaml", line, &out, &err),
      MD_EXIT_USAGE);
  assert_non_null(strstr(err, "none.yaml"));
  free(out);
  free(err);
  /* a good file whose TLS files do not exist; an unknown agent name */
  snprintf(path, sizeof path, "%s/ctl.yaml", g_tmp);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "tls: {cert: no.crt, key: no.key, ca: noca.crt}\n"
             "agents: {a: {address: \"127.0.0.1:1\"}, b: {address: \"127.0.0.1:2\"}}\n");
  fclose(f);
  assert_int_equal(capture(md_cli_agents_main, path, "agents", &out, &err), MD_EXIT_USAGE);
  assert_non_null(strstr(err, "ctl.yaml: tls: "));
  assert_non_null(strstr(err, "no.crt"));
  free(out);
  free(err);
  assert_int_equal(capture(md_cli_agents_main, path, "agents zzz", &out, &err), MD_EXIT_USAGE);
  assert_non_null(strstr(err, "unknown agent 'zzz'"));
  assert_non_null(strstr(err, " a b)"));
  free(out);
  free(err);
  /* parse errors come before the configuration is read */
  assert_int_equal(capture(md_cli_agents_main, "/nonexistent", "agents --timeout x", &out, &err),
                   MD_EXIT_USAGE);
  assert_non_null(strstr(err, "mtrctl agents: --timeout"));
  assert_null(strstr(err, "nonexistent"));
  free(out);
  free(err);
  assert_int_equal(capture(md_cli_agents_main, "/nonexistent", "agents -h", &out, &err), 0);
  assert_non_null(strstr(out, "examples:"));
  free(out);
  free(err);
}

/* ---- the binary: global options and dispatch (main.c) */

static void test_binary_dispatch(void **state) {
  (void)state;
  if (!have_binary())
    return;
  expect_binary((const char *[]){NULL}, NULL, 2, NULL, "mtrctl: no command given");
  expect_binary((const char *[]){"bogus", NULL}, NULL, 2, NULL, "unknown command 'bogus'");
  expect_binary((const char *[]){"bogus", NULL}, NULL, 2, NULL, "usage: mtrctl");
  expect_binary((const char *[]){"--bogus", "agents", NULL}, NULL, 2, NULL,
                "unknown option '--bogus'");
  expect_binary((const char *[]){"--config", NULL}, NULL, 2, NULL, "option --config needs a value");
  expect_binary((const char *[]){"--help=1", NULL}, NULL, 2, NULL, "takes no value");
  expect_binary((const char *[]){"diagnose", "a", NULL}, NULL, 2, NULL,
                "diagnose needs two names");
  expect_binary((const char *[]){"diagnose", "a", "b", "-c", "0", NULL}, NULL, 2, NULL,
                "--cycles");
  expect_binary((const char *[]){"diagnose", "a", "b", "--format", "pdf", NULL}, NULL, 2, NULL,
                "--format must be text, json, markdown or html, not 'pdf'");
  expect_binary((const char *[]){"diagnose", "a", "b", "--bogus", NULL}, NULL, 2, NULL,
                "unknown option '--bogus' for 'diagnose'");
  expect_binary((const char *[]){"history", "--limit", "x", NULL}, NULL, 2, NULL, "--limit");
  expect_binary((const char *[]){"show", NULL}, NULL, 2, NULL, "give its ID");
  expect_binary((const char *[]){"--help", NULL}, NULL, 0, "usage: mtrctl", NULL);
  expect_binary((const char *[]){"-h", NULL}, NULL, 0, "examples:", NULL);
  expect_binary((const char *[]){"--version", NULL}, NULL, 0, "mtrctl " MD_VERSION, NULL);
  expect_binary((const char *[]){"help", NULL}, NULL, 0, "usage: mtrctl", NULL);
  expect_binary((const char *[]){"help", "agents", NULL}, NULL, 0,
                "mtrctl --config ./lab.yaml agents", NULL);
  expect_binary((const char *[]){"agents", "--help", NULL}, NULL, 0, "exit status:", NULL);
  expect_binary((const char *[]){"help", "pki", "issue", NULL}, NULL, 0, "pki issue --dir", NULL);
  expect_binary((const char *[]){"pki", "issue", "--help", NULL}, NULL, 0, "examples:", NULL);
  expect_binary((const char *[]){"help", "pki", "frob", NULL}, NULL, 2, NULL,
                "unknown pki command 'frob'");
  expect_binary((const char *[]){"help", "nosuch", NULL}, NULL, 2, NULL,
                "unknown command 'nosuch'");
  expect_binary((const char *[]){"help", "diagnose", NULL}, NULL, 0, "example: mtrctl diagnose", NULL);
  expect_binary((const char *[]){"diagnose", "--help", NULL}, NULL, 0, "exit status:", NULL);
  expect_binary((const char *[]){"help", "history", NULL}, NULL, 0, "example:", NULL);
  expect_binary((const char *[]){"show", "--help", NULL}, NULL, 0, "example:", NULL);
  expect_binary((const char *[]){"pki", NULL}, NULL, 2, NULL, "no pki command given");
  expect_binary((const char *[]){"pki", "issue", "--dir", "/x", NULL}, NULL, 2, NULL,
                "--name is required");
  expect_binary((const char *[]){"agents", "--fast", NULL}, NULL, 2, NULL,
                "unknown option '--fast' for 'agents'");
}

static void test_binary_config(void **state) {
  (void)state;
  if (!have_binary())
    return;
  char none[400];
  snprintf(none, sizeof none, "%s/absent.yaml", g_tmp);
  expect_binary((const char *[]){"--config", none, "agents", NULL}, NULL, 2, NULL,
                "absent.yaml: cannot open");
  expect_binary((const char *[]){"--config=" MD_TEST_DATA "/config/bad_port.yaml", "agents", NULL},
                NULL, 2, NULL, "bad_port.yaml:7: agents.cvm.address:");
  /* the default path: $MTRCTL_CONFIG */
  expect_binary((const char *[]){"agents", NULL}, none, 2, NULL, "absent.yaml: cannot open");
  /* pki needs no configuration */
  char dir[400];
  snprintf(dir, sizeof dir, "%s/pki2", g_tmp);
  expect_binary((const char *[]){"--config", none, "pki", "init", "--dir", dir, NULL}, none, 0,
                "ca.crt", NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pki_parse_ok),
      cmocka_unit_test(test_pki_parse_errors),
      cmocka_unit_test(test_pki_main),
      cmocka_unit_test(test_agents_parse),
      cmocka_unit_test(test_agents_config_errors),
      cmocka_unit_test(test_binary_dispatch),
      cmocka_unit_test(test_binary_config),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
