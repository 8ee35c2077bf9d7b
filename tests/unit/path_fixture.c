/* Test helper: md_path objects from a compact description (path_fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "path_fixture.h"

/* The description's format is in path_fixture.h; shared so the three
 * path-reading tests build their paths the same way. */
md_path *mkpath_n(const char *source, const char *target, const char *target_name, int cycles,
                  const char *spec) {
  md_path *p = md_path_new(source, target, target_name, 1);
  assert_non_null(p);
  char *copy = strdup(spec), *save = NULL;
  assert_non_null(copy);
  md_addr t;
  bool have_t = md_addr_parse(target, &t) == 0;
  for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    double rtt_ms = -1;
    char *last = strrchr(tok, ':');
    assert_non_null(last);
    if (strstr(last, "ms")) {
      rtt_ms = atof(last + 1);
      *last = '\0';
      last = strrchr(tok, ':');
      assert_non_null(last);
    }
    assert_non_null(strchr(last, '%'));
    double loss = atof(last + 1);
    *last = '\0';
    char *colon = strchr(tok, ':');
    assert_non_null(colon);
    *colon = '\0';
    int ttl = atoi(tok);
    char *ips = colon + 1;
    if (rtt_ms < 0)
      rtt_ms = ttl;
    md_hop *h = md_path_hop(p, ttl);
    assert_non_null(h);
    md_addr hosts[MD_MAX_HOSTS];
    int n_hosts = 0;
    if (strcmp(ips, "???") != 0) {
      char *s2 = NULL;
      for (char *ip = strtok_r(ips, "|", &s2); ip; ip = strtok_r(NULL, "|", &s2)) {
        if (md_addr_parse(ip, &hosts[n_hosts]) != 0)
          fail_msg("bad address %s", ip);
        n_hosts++;
      }
    }
    int lost = n_hosts == 0 ? cycles : (int)lround(loss * cycles / 100.0);
    for (int c = 0; c < cycles; c++) {
      md_stats_on_sent(&h->st);
      if (c < lost) {
        md_stats_on_timeout(&h->st);
        continue;
      }
      md_stats_on_reply(&h->st, rtt_ms * 1000.0);
      const md_addr *from = &hosts[c % n_hosts];
      assert_non_null(md_hop_add_host(h, from, NULL, 0));
      if (have_t && md_addr_equal(from, &t))
        p->reached = true;
    }
  }
  free(copy);
  p->complete = true;
  return p;
}
