/* Unit tests for md_addr: literals and host:port forms (good and bad),
 * formatting both ways, equality, prefixes and classification. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "md_addr.h"

/* Parse or fail the test. */
static md_addr addr(const char *s) {
  md_addr a;
  if (md_addr_parse(s, &a) != 0)
    fail_msg("md_addr_parse(\"%s\") failed", s);
  return a;
}

/* Formatting gives back the canonical text. */
static void assert_str(const md_addr *a, const char *want) {
  char buf[MD_ADDRSTRLEN];
  assert_string_equal(md_addr_str(a, buf, sizeof buf), want);
}

static void test_parse_v4(void **state) {
  (void)state;
  md_addr a = addr("198.18.1.2");
  assert_int_equal(md_addr_family(&a), AF_INET);
  assert_int_equal(md_addr_len(&a), sizeof(struct sockaddr_in));
  assert_int_equal(md_addr_port(&a), 0);
  assert_int_equal(ntohl(a.in4.sin_addr.s_addr), 0xc6120102);
  assert_str(&a, "198.18.1.2");
  a = addr("0.0.0.0");
  assert_str(&a, "0.0.0.0");
  a = addr("255.255.255.255");
  assert_str(&a, "255.255.255.255");
}

static void test_parse_v6(void **state) {
  (void)state;
  md_addr a = addr("2001:db8::1");
  assert_int_equal(md_addr_family(&a), AF_INET6);
  assert_int_equal(md_addr_len(&a), sizeof(struct sockaddr_in6));
  assert_str(&a, "2001:db8::1");
  a = addr("2001:0DB8:0000:0000:0000:0000:0000:0001"); /* canonicalised */
  assert_str(&a, "2001:db8::1");
  a = addr("::");
  assert_str(&a, "::");
  a = addr("::ffff:198.18.0.1");
  assert_str(&a, "::ffff:198.18.0.1");
  /* a numeric scope, and "lo" which every namespace has */
  a = addr("fe80::1%7");
  assert_int_equal(a.in6.sin6_scope_id, 7);
  a = addr("fe80::1%lo");
  assert_int_equal(a.in6.sin6_scope_id, 1);
  assert_str(&a, "fe80::1%lo");
}

static void test_parse_bad(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      " 198.18.0.1",
      "198.18.0.1 ",
      "198.18.0",
      "198.18.0.1.2",
      "198.18.0.256",
      "127.1",
      "0x7f.0.0.1",
      "1.2.3.4/24",
      "example.com",
      "2001:db8::1::2",
      "2001:db8:::1",
      "gggg::1",
      "fe80::1%",
      "fe80::1%nosuchif0",
      "fe80::1%99999999999",
      "[2001:db8::1]",
      "198.18.0.1:80",
      "-1",
  };
  md_addr a;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (md_addr_parse(bad[i], &a) != -EINVAL)
      fail_msg("md_addr_parse accepted \"%s\"", bad[i]);
  }
  assert_int_equal(md_addr_parse(NULL, &a), -EINVAL);
  assert_int_equal(md_addr_parse("1.2.3.4", NULL), -EINVAL);
  char longs[200];
  memset(longs, '1', sizeof longs - 1);
  longs[sizeof longs - 1] = '\0';
  assert_int_equal(md_addr_parse(longs, &a), -EINVAL);
}

static void test_hostport(void **state) {
  (void)state;
  md_addr a;
  char buf[MD_ADDRSTRLEN];
  assert_int_equal(md_addr_parse_hostport("198.51.100.10:7447", &a), 0);
  assert_int_equal(md_addr_family(&a), AF_INET);
  assert_int_equal(md_addr_port(&a), 7447);
  assert_str(&a, "198.51.100.10");
  assert_string_equal(md_addr_str_hostport(&a, buf, sizeof buf), "198.51.100.10:7447");

  assert_int_equal(md_addr_parse_hostport("[2001:db8::7]:7447", &a), 0);
  assert_int_equal(md_addr_family(&a), AF_INET6);
  assert_int_equal(md_addr_port(&a), 7447);
  assert_string_equal(md_addr_str_hostport(&a, buf, sizeof buf), "[2001:db8::7]:7447");

  assert_int_equal(md_addr_parse_hostport("[::]:7447", &a), 0);
  assert_true(md_addr_is_unspecified(&a));
  assert_int_equal(md_addr_parse_hostport("0.0.0.0:7447", &a), 0);
  assert_true(md_addr_is_unspecified(&a));

  /* bare literals: port 0 */
  assert_int_equal(md_addr_parse_hostport("198.18.0.1", &a), 0);
  assert_int_equal(md_addr_port(&a), 0);
  assert_int_equal(md_addr_parse_hostport("2001:db8::1", &a), 0);
  assert_int_equal(md_addr_port(&a), 0);
  assert_str(&a, "2001:db8::1");
  assert_int_equal(md_addr_parse_hostport("[2001:db8::1]", &a), 0);
  assert_int_equal(md_addr_port(&a), 0);

  /* the port range, both ends */
  assert_int_equal(md_addr_parse_hostport("198.18.0.1:0", &a), 0);
  assert_int_equal(md_addr_port(&a), 0);
  assert_int_equal(md_addr_parse_hostport("198.18.0.1:65535", &a), 0);
  assert_int_equal(md_addr_port(&a), 65535);
  assert_int_equal(md_addr_parse_hostport("[2001:db8::1]:1", &a), 0);
  assert_int_equal(md_addr_port(&a), 1);
  assert_int_equal(md_addr_parse_hostport("[fe80::1%lo]:80", &a), 0);
  assert_int_equal(a.in6.sin6_scope_id, 1);
  assert_string_equal(md_addr_str_hostport(&a, buf, sizeof buf), "[fe80::1%lo]:80");
}

static void test_hostport_bad(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      ":80",
      "198.18.0.1:",
      "198.18.0.1:65536",
      "198.18.0.1:99999",
      "198.18.0.1:123456",
      "198.18.0.1:-1",
      "198.18.0.1:+80",
      "198.18.0.1: 80",
      "198.18.0.1:80 ",
      "198.18.0.1:0x50",
      "198.18.0.1:http",
      "198.18.0.1:80:81",
      "example.com:80",
      "[198.18.0.1]:80", /* brackets are for IPv6 */
      "[2001:db8::1]:",
      "[2001:db8::1]:65536",
      "[2001:db8::1]80",
      "[2001:db8::1",
      "2001:db8::1]:80",
      "[]:80",
      "[[2001:db8::1]]:80",
      "2001:db8::g:80",
  };
  md_addr a;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (md_addr_parse_hostport(bad[i], &a) != -EINVAL)
      fail_msg("md_addr_parse_hostport accepted \"%s\"", bad[i]);
  }
  assert_int_equal(md_addr_parse_hostport(NULL, &a), -EINVAL);
}

static void test_ports(void **state) {
  (void)state;
  md_addr a = addr("198.18.0.1");
  md_addr_set_port(&a, 33434);
  assert_int_equal(md_addr_port(&a), 33434);
  assert_int_equal(ntohs(a.in4.sin_port), 33434);
  md_addr b = addr("2001:db8::1");
  md_addr_set_port(&b, 443);
  assert_int_equal(md_addr_port(&b), 443);
  /* an unset address has no port, no length, no bytes */
  md_addr z;
  memset(&z, 0, sizeof z);
  md_addr_set_port(&z, 80);
  assert_int_equal(md_addr_port(&z), 0);
  assert_int_equal(md_addr_family(&z), AF_UNSPEC);
  assert_int_equal(md_addr_len(&z), 0);
  size_t len = 99;
  assert_null(md_addr_bytes(&z, &len));
  assert_int_equal(len, 0);
  assert_int_equal(md_addr_family(NULL), AF_UNSPEC);
  assert_str(&z, "?");
}

static void test_equal(void **state) {
  (void)state;
  md_addr a = addr("198.18.0.1"), b = addr("198.18.0.1"), c = addr("198.18.0.2");
  md_addr_set_port(&b, 80);
  assert_true(md_addr_equal(&a, &b)); /* ports ignored */
  assert_false(md_addr_equal(&a, &c));
  md_addr m = addr("::ffff:198.18.0.1");
  assert_false(md_addr_equal(&a, &m)); /* families differ */
  md_addr d = addr("2001:db8::1"), e = addr("2001:db8:0::1"), f = addr("2001:db8::2");
  assert_true(md_addr_equal(&d, &e));
  assert_false(md_addr_equal(&d, &f));
  md_addr z1, z2;
  memset(&z1, 0, sizeof z1);
  memset(&z2, 0, sizeof z2);
  assert_false(md_addr_equal(&z1, &z2)); /* unset addresses equal nothing */
  size_t len;
  const unsigned char *bytes = md_addr_bytes(&d, &len);
  assert_int_equal(len, 16);
  assert_int_equal(bytes[0], 0x20);
  assert_int_equal(bytes[15], 0x01);
}

static void test_prefix(void **state) {
  (void)state;
  md_addr a = addr("198.18.1.1"), b = addr("198.18.1.2"), c = addr("198.19.1.1");
  assert_true(md_addr_same_prefix(&a, &b, 0));
  assert_true(md_addr_same_prefix(&a, &b, 24));
  assert_true(md_addr_same_prefix(&a, &b, 30)); /* .1 and .2 share a /30 */
  assert_false(md_addr_same_prefix(&a, &b, 31));
  assert_false(md_addr_same_prefix(&a, &b, 32));
  assert_true(md_addr_same_prefix(&a, &a, 32));
  assert_true(md_addr_same_prefix(&a, &c, 15)); /* 198.18.0.0/15 */
  assert_false(md_addr_same_prefix(&a, &c, 16));
  assert_false(md_addr_same_prefix(&a, &b, 33));
  assert_false(md_addr_same_prefix(&a, &b, -1));
  md_addr d = addr("2001:db8::1"), e = addr("2001:db8::2"), f = addr("2001:db9::1");
  assert_true(md_addr_same_prefix(&d, &e, 126));
  assert_false(md_addr_same_prefix(&d, &e, 127));
  assert_true(md_addr_same_prefix(&d, &f, 31));
  assert_false(md_addr_same_prefix(&d, &f, 32));
  assert_true(md_addr_same_prefix(&d, &d, 128));
  assert_false(md_addr_same_prefix(&d, &e, 129));
  assert_false(md_addr_same_prefix(&a, &d, 0)); /* families differ */
}

static void test_classify(void **state) {
  (void)state;
  struct {
    const char *s;
    bool unspec, mcast, bcast;
  } cases[] = {
      {"0.0.0.0", true, false, false},
      {"::", true, false, false},
      {"198.18.0.1", false, false, false},
      {"224.0.0.1", false, true, false},
      {"239.255.255.255", false, true, false},
      {"223.255.255.255", false, false, false},
      {"240.0.0.1", false, false, false},
      {"255.255.255.255", false, true, true},
      {"198.18.255.255", false, false, false}, /* a directed broadcast needs the prefix */
      {"ff02::1", false, true, false},
      {"ff0e::101", false, true, false},
      {"fe80::1", false, false, false},
      {"2001:db8::1", false, false, false},
      {"::ffff:224.0.0.5", false, true, false},
      {"::ffff:255.255.255.255", false, true, true},
      {"::1", false, false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    md_addr a = addr(cases[i].s);
    if (md_addr_is_unspecified(&a) != cases[i].unspec ||
        md_addr_is_multicast(&a) != cases[i].mcast || md_addr_is_broadcast(&a) != cases[i].bcast)
      fail_msg("classification of %s", cases[i].s);
  }
  md_addr z;
  memset(&z, 0, sizeof z);
  assert_true(md_addr_is_unspecified(&z));
  assert_false(md_addr_is_multicast(&z));
  assert_false(md_addr_is_broadcast(&z));
}

/* Formatting into a short buffer truncates and terminates. */
static void test_str_short_buffer(void **state) {
  (void)state;
  md_addr a = addr("2001:db8:1:2:3:4:5:6");
  char buf[8];
  md_addr_str(&a, buf, sizeof buf);
  assert_true(strlen(buf) < sizeof buf);
  md_addr_str_hostport(&a, buf, sizeof buf);
  assert_true(strlen(buf) < sizeof buf);
  char big[MD_ADDRSTRLEN];
  md_addr s = addr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295");
  md_addr_set_port(&s, 65535);
  md_addr_str_hostport(&s, big, sizeof big);
  assert_string_equal(big, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_v4),     cmocka_unit_test(test_parse_v6),
      cmocka_unit_test(test_parse_bad),    cmocka_unit_test(test_hostport),
      cmocka_unit_test(test_hostport_bad), cmocka_unit_test(test_ports),
      cmocka_unit_test(test_equal),        cmocka_unit_test(test_prefix),
      cmocka_unit_test(test_classify),     cmocka_unit_test(test_str_short_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
