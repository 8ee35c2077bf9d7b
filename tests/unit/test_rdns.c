/* rdns: reverse DNS of hop addresses (agent/probe/rdns.c). The answer for
 * an address is kept: a responder with that address that shows up later,
 * at another TTL, is named at once, without a second lookup. The address
 * is 127.0.0.1, which glibc answers from /etc/hosts ("localhost" on every
 * Debian system), so no DNS server is asked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "md_addr.h"
#include "md_path.h"

/* Whether /etc/hosts names 127.0.0.1, so the lookup never leaves the machine. */
static bool hosts_has_loopback(void) {
  FILE *f = fopen("/etc/hosts", "r");
  char line[256];
  bool yes = false;
  while (f && !yes && fgets(line, sizeof line, f))
    yes = strncmp(line, "127.0.0.1", 9) == 0 && (line[9] == ' ' || line[9] == '\t');
  if (f)
    fclose(f);
  return yes;
}

static void test_name_kept_for_later_hops(void **state) {
  (void)state;
  if (!hosts_has_loopback())
    skip(); /* it would be a DNS query */
  uv_loop_t loop;
  uv_loop_init(&loop);
  md_prober pr;
  memset(&pr, 0, sizeof pr);
  pr.loop = &loop;
  md_trace t;
  memset(&t, 0, sizeof t);
  t.prober = &pr;
  t.path = md_path_new("local", "127.0.0.1", "lo", 1);
  assert_non_null(t.path);
  md_addr a;
  assert_int_equal(md_addr_parse("127.0.0.1", &a), 0);

  md__rdns *d = md__rdns_new(&t);
  assert_non_null(d);
  md_host *h1 = md_hop_add_host(md_path_hop(t.path, 1), &a, NULL, 0);
  md__rdns_lookup(d, &a);
  assert_int_equal(md__rdns_pending(d), 1);
  md__rdns_lookup(d, &a); /* asked once */
  assert_int_equal(md__rdns_pending(d), 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(md__rdns_pending(d), 0);
  h1 = &md_path_hop(t.path, 1)->hosts[0];
  assert_non_null(h1->hostname);
  char want[64];
  snprintf(want, sizeof want, "%s", h1->hostname);

  /* the same address at TTL 3, after the answer came: named at once */
  md_host *h3 = md_hop_add_host(md_path_hop(t.path, 3), &a, NULL, 0);
  assert_null(h3->hostname);
  md__rdns_lookup(d, &a);
  assert_int_equal(md__rdns_pending(d), 0);
  h3 = &md_path_hop(t.path, 3)->hosts[0];
  assert_non_null(h3->hostname);
  assert_string_equal(h3->hostname, want);

  md__rdns_release(d);
  md_path_free(t.path);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_kept_for_later_hops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
