/* Option parsing of `mtr-agent trace`: defaults, mtr's letters, and an error
 * that names the option for every kind of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "trace_cmd.h"

static int parse(md_trace_cmd *c, char *err, size_t errlen, ...) {
  char *argv[32];
  int argc = 0;
  va_list ap;
  va_start(ap, errlen);
  argv[argc++] = "trace";
  for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  return md_trace_cmd_parse(argc, argv, c, err, errlen);
}

#define PARSE(...) parse(&c, err, sizeof err, __VA_ARGS__, (char *)NULL)

static void test_defaults(void **state) {
  (void)state;
  md_trace_cmd c;
  char err[256];
  assert_int_equal(PARSE("198.18.1.1"), 0);
  assert_string_equal(c.target, "198.18.1.1");
  assert_int_equal(c.opts.cycles, 10);
  assert_true(c.opts.interval_s == 1.0);
  assert_int_equal(c.opts.psize, 64);
  assert_int_equal(c.opts.first_ttl, 1);
  assert_int_equal(c.opts.max_ttl, 30);
  assert_int_equal(c.opts.max_unknown, 5);
  assert_true(c.opts.grace_s == 5.0);
  assert_int_equal(c.opts.proto, MD_PROTO_ICMP);
  assert_false(c.opts.classic);
  assert_int_equal(c.output, MD_OUT_REPORT);
}

static void test_all_options(void **state) {
  (void)state;
  md_trace_cmd c;
  char err[256];
  assert_int_equal(PARSE("-c", "20", "-i", "0.5", "-s", "100", "-f", "2", "-m", "9", "-U", "3",
                         "-Q", "16", "-P", "443", "-L", "40000", "-T", "-n", "-e", "-G", "2.5",
                         "--classic", "--json", "-6", "-a", "2001:db8::1", "2001:db8::2"),
                   0);
  assert_int_equal(c.opts.cycles, 20);
  assert_true(c.opts.interval_s == 0.5);
  assert_int_equal(c.opts.psize, 100);
  assert_int_equal(c.opts.first_ttl, 2);
  assert_int_equal(c.opts.max_ttl, 9);
  assert_int_equal(c.opts.max_unknown, 3);
  assert_int_equal(c.opts.tos, 16);
  assert_int_equal(c.opts.port, 443);
  assert_int_equal(c.opts.local_port, 40000);
  assert_int_equal(c.opts.proto, MD_PROTO_TCP);
  assert_true(c.opts.no_dns);
  assert_true(c.show_mpls);
  assert_true(c.opts.grace_s == 2.5);
  assert_true(c.opts.classic);
  assert_int_equal(c.output, MD_OUT_JSON);
  assert_int_equal(c.family, AF_INET6);
  assert_int_equal(md_addr_family(&c.opts.source), AF_INET6);
  assert_int_equal(PARSE("--protocol", "udp", "--split", "198.18.1.1"), 0);
  assert_int_equal(c.opts.proto, MD_PROTO_UDP);
  assert_int_equal(c.output, MD_OUT_SPLIT);
}

/* Each bad input is refused and the message names what is wrong. */
static void test_errors(void **state) {
  (void)state;
  md_trace_cmd c;
  char err[256];
  struct {
    const char *a, *b, *c;
    const char *want;
  } cases[] = {
      {"-c", "0", "198.18.1.1", "cycles"},
      {"-c", "ten", "198.18.1.1", "cycles: 'ten'"},
      {"-c", "10x", "198.18.1.1", "cycles"},
      {"-i", "0.001", "198.18.1.1", "interval"},
      {"-i", "nan", "198.18.1.1", "interval"},
      {"-s", "-5", "198.18.1.1", "psize"},
      {"-m", "300", "198.18.1.1", "max-ttl"},
      {"-f", "0", "198.18.1.1", "first-ttl"},
      {"-P", "70000", "198.18.1.1", "port"},
      {"-Q", "256", "198.18.1.1", "tos"},
      {"-G", "-1", "198.18.1.1", "gracetime"},
      {"--protocol", "sctp", "198.18.1.1", "protocol: 'sctp'"},
      {"-a", "not-an-ip", "198.18.1.1", "address: 'not-an-ip'"},
      {"--bogus", "198.18.1.1", NULL, "unknown option '--bogus'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = 0;
    int rc = cases[i].c ? PARSE(cases[i].a, cases[i].b, cases[i].c) : PARSE(cases[i].a, cases[i].b);
    if (rc == 0 || strstr(err, cases[i].want) == NULL)
      fail_msg("case %zu (%s %s): rc %d, message '%s', wanted '%s'", i, cases[i].a, cases[i].b, rc,
               err, cases[i].want);
  }
  assert_int_equal(PARSE("-f", "10", "-m", "5", "198.18.1.1"), -EINVAL);
  assert_non_null(strstr(err, "max-ttl"));
  assert_int_equal(PARSE("-n"), -EINVAL);
  assert_non_null(strstr(err, "no TARGET"));
  assert_int_equal(PARSE("198.18.1.1", "198.18.1.2"), -EINVAL);
  assert_non_null(strstr(err, "extra"));
  assert_int_equal(PARSE("198.18.1.1", "-c"), -EINVAL);
  assert_non_null(strstr(err, "needs a value"));
  assert_int_equal(PARSE("-4", "-a", "2001:db8::1", "198.18.1.1"), -EINVAL);
  assert_non_null(strstr(err, "family"));
}

static void test_resolve(void **state) {
  (void)state;
  md_trace_cmd c;
  char err[256];
  assert_int_equal(PARSE("-6", "198.18.1.1"), 0);
  assert_int_equal(md_trace_cmd_resolve(&c, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "address family"));
  assert_int_equal(PARSE("2001:db8::5"), 0);
  assert_int_equal(md_trace_cmd_resolve(&c, err, sizeof err), 0);
  assert_int_equal(md_addr_family(&c.opts.target), AF_INET6);
  /* (names are not tried here: a unit test must not query the host's resolver) */
}

/* The engine's own range check (the daemon's requests go through it too). */
static void test_opts_check(void **state) {
  (void)state;
  md_trace_opts o;
  char err[128];
  md_trace_opts_default(&o);
  assert_int_equal(md_trace_opts_check(&o, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "target"));
  md_addr_parse("198.18.1.1", &o.target);
  assert_int_equal(md_trace_opts_check(&o, err, sizeof err), 0);
  md_addr_parse("2001:db8::1", &o.source);
  assert_int_equal(md_trace_opts_check(&o, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "source"));
  md_trace_opts_default(&o);
  md_addr_parse("198.18.1.1", &o.target);
  o.interval_s = 0;
  assert_int_equal(md_trace_opts_check(&o, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "interval"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults), cmocka_unit_test(test_all_options),
      cmocka_unit_test(test_errors),   cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_opts_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
