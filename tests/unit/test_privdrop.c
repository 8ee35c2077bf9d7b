/* privdrop: who the agent becomes (md_privdrop_resolve's rules, the
 * config's `user:` key) and the drop itself, done in forked children so
 * the test process keeps its own privileges:
 *
 *   - started as root with a user: setuid to it, every capability set and
 *     the bounding set empty, no_new_privs, and a raw socket opened before
 *     the drop still sends and receives (ICMP echo to 127.0.0.1) while a
 *     new one is refused;
 *   - started as a user with ambient CAP_NET_RAW (what systemd's
 *     User= + AmbientCapabilities= gives): no setuid, and every
 *     capability, ambient included, is gone afterwards;
 *   - a second thread: refused (capset acts on one thread only);
 *   - the user database is read in a child: after resolving a known and an
 *     unknown user, no NSS module (libnss_*.so) is mapped in this process
 *     (it runs first, before anything here reads the database itself; on
 *     a machine whose nsswitch.conf names only glibc's built-in "files"
 *     there is no module to load either way).
 * The children need root; without it those tests are skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "md_config.h"
#include "privdrop.h"

/* ---- the rules */

/* Whether a shared object whose path contains needle is mapped here. */
static bool mapped(const char *needle) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f)
    return false;
  char line[512];
  bool hit = false;
  while (!hit && fgets(line, sizeof line, f))
    hit = strstr(line, needle) != NULL;
  fclose(f);
  return hit;
}

static void test_lookup_in_child(void **state) {
  (void)state;
  md_privdrop_plan p;
  char err[512];
  assert_false(mapped("libnss_"));
  assert_int_equal(md_privdrop_resolve("no-such-user-md", 0, &p, err, sizeof err), -ENOENT);
  assert_int_equal(md_privdrop_resolve("root", 0, &p, err, sizeof err), 0);
  assert_string_equal(p.user, "root");
  assert_true(p.ngroups >= 1);
  assert_int_equal(md_privdrop_resolve(NULL, 0, &p, err, sizeof err), 0);
  assert_int_equal(md_privdrop_resolve(NULL, 4242, &p, err, sizeof err), 0);
  assert_false(mapped("libnss_"));
}

static void test_resolve_rules(void **state) {
  (void)state;
  md_privdrop_plan p;
  char err[512];
  /* not root, nothing asked: stay who we are, never setuid */
  assert_int_equal(md_privdrop_resolve(NULL, 4242, &p, err, sizeof err), 0);
  assert_false(p.switch_user);
  assert_false(p.stay_root);
  assert_int_equal(p.uid, 4242);
  /* unknown user: an error that names it */
  assert_int_equal(md_privdrop_resolve("no-such-user-md", 0, &p, err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, "user 'no-such-user-md' does not exist"));
  /* root and root asked for: stays root (warned when applied) */
  assert_int_equal(md_privdrop_resolve("root", 0, &p, err, sizeof err), 0);
  assert_false(p.switch_user);
  assert_true(p.stay_root);
  assert_true(p.root_asked);
  struct passwd *nb = getpwnam("nobody");
  if (nb) {
    uid_t nuid = nb->pw_uid;
    gid_t ngid = nb->pw_gid;
    assert_int_equal(md_privdrop_resolve("nobody", 0, &p, err, sizeof err), 0);
    assert_true(p.switch_user);
    assert_false(p.stay_root);
    assert_int_equal(p.uid, nuid);
    assert_int_equal(p.gid, ngid);
    assert_string_equal(p.user, "nobody");
    /* a user that cannot setuid asks for another: refused, with the way out */
    assert_int_equal(md_privdrop_resolve("nobody", 4242, &p, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "started as uid 4242, not as root"));
    assert_non_null(strstr(err, "User=nobody"));
    /* ... and for itself: fine (systemd User= and config user: agree) */
    assert_int_equal(md_privdrop_resolve("nobody", nuid, &p, err, sizeof err), 0);
    assert_false(p.switch_user);
    assert_int_equal(p.uid, nuid);
  }
  /* root, nothing asked: the default service user if it exists, else root */
  assert_int_equal(md_privdrop_resolve(NULL, 0, &p, err, sizeof err), 0);
  if (getpwnam(MD_PRIVDROP_DEFAULT_USER)) {
    assert_true(p.switch_user);
    assert_string_equal(p.user, MD_PRIVDROP_DEFAULT_USER);
  } else {
    assert_false(p.switch_user);
    assert_true(p.stay_root);
    assert_false(p.root_asked);
    char d[256];
    md_privdrop_describe(&p, d, sizeof d);
    assert_non_null(strstr(d, "runs as root with no capabilities"));
  }
  /* "" is "not given" */
  assert_int_equal(md_privdrop_resolve("", 4242, &p, err, sizeof err), 0);
  assert_int_equal(p.uid, 4242);
}

static void test_config_user_key(void **state) {
  (void)state;
  md_agent_config cfg;
  char err[MD_CONFIG_ERRLEN];
  const char *ok = "name: a\nlisten: [\"127.0.0.1:7447\"]\nuser: mtr-agent\n"
                   "tls: { cert: a.crt, key: a.key, ca: ca.crt }\n";
  assert_int_equal(md_agent_config_parse_string(ok, strlen(ok), "/t/a.yaml", &cfg, err, sizeof err),
                   0);
  assert_string_equal(cfg.user, "mtr-agent");
  md_agent_config_free(&cfg);
  const char *none = "name: a\nlisten: [\"127.0.0.1:7447\"]\n"
                     "tls: { cert: a.crt, key: a.key, ca: ca.crt }\n";
  assert_int_equal(
      md_agent_config_parse_string(none, strlen(none), "/t/a.yaml", &cfg, err, sizeof err), 0);
  assert_null(cfg.user);
  md_agent_config_free(&cfg);
  const char *bad = "name: a\nlisten: [\"127.0.0.1:7447\"]\nuser: \"mtr agent\"\n"
                    "tls: { cert: a.crt, key: a.key, ca: ca.crt }\n";
  assert_int_equal(
      md_agent_config_parse_string(bad, strlen(bad), "/t/a.yaml", &cfg, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "/t/a.yaml:3: user"));
  const char *twice = "name: a\nuser: x\nuser: y\nlisten: [\"127.0.0.1:7447\"]\n"
                      "tls: { cert: a.crt, key: a.key, ca: ca.crt }\n";
  assert_int_equal(
      md_agent_config_parse_string(twice, strlen(twice), "/t/a.yaml", &cfg, err, sizeof err),
      -EINVAL);
  assert_non_null(strstr(err, "duplicate key 'user'"));
}

/* ---- the drop, in children */

/* A hex field of /proc/self/status ("CapBnd"), or ~0 when missing. */
static unsigned long long status_hex(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long v = ~0ULL;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':')
      v = strtoull(line + kl + 1, NULL, 16);
  if (f)
    fclose(f);
  return v;
}

static unsigned long long status_dec(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long v = ~0ULL;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':')
      v = strtoull(line + kl + 1, NULL, 10);
  if (f)
    fclose(f);
  return v;
}

static uint16_t csum(const uint8_t *b, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (n & 1)
    s += (uint32_t)b[n - 1] << 8;
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

/* An echo request to 127.0.0.1 on a raw socket opened before the drop,
 * and its reply heard on it: what a trace does after the drop. 0 or the
 * step that failed (as an exit code). */
static int raw_echo(int fd, uint16_t id) {
  uint8_t pkt[16] = {8, 0, 0, 0, (uint8_t)(id >> 8), (uint8_t)id, 0, 1, 'm', 'd'};
  uint16_t c = csum(pkt, sizeof pkt);
  pkt[2] = (uint8_t)(c >> 8);
  pkt[3] = (uint8_t)c;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)sizeof pkt)
    return 20;
  for (int tries = 0; tries < 20; tries++) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 1000) <= 0)
      return 21;
    uint8_t buf[256];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 28)
      continue;
    size_t ihl = (size_t)(buf[0] & 15) * 4;
    if ((size_t)n >= ihl + 8 && buf[ihl] == 0 && buf[ihl + 4] == (uint8_t)(id >> 8) &&
        buf[ihl + 5] == (uint8_t)id)
      return 0; /* the echo reply */
  }
  return 22;
}

/* What every drop must leave: no capability anywhere, no_new_privs, and
 * no way to open a raw socket any more, while the old one still works. */
static int check_dropped(int raw, uid_t uid, bool bounding_empty) {
  uint64_t e = 1, p = 1, i = 1;
  if (md_privdrop_caps(&e, &p, &i) != 0 || e || p || i)
    return 10;
  if (status_hex("CapEff") != 0 || status_hex("CapPrm") != 0 || status_hex("CapAmb") != 0 ||
      status_hex("CapInh") != 0)
    return 11;
  if (bounding_empty && status_hex("CapBnd") != 0)
    return 12;
  if (status_dec("NoNewPrivs") != 1)
    return 13;
  if (getuid() != uid || geteuid() != uid)
    return 14;
  if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
    return 15;
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd >= 0 || errno != EPERM)
    return 16;
  if (uid != 0 && setuid(0) == 0)
    return 17;
  return raw_echo(raw, (uint16_t)(getpid() & 0xffff));
}

/* Run fn in a child and return its exit status (or 100 + signal). */
static int in_child(int (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(fn());
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* Root, --user nobody: the agent's path as a root-started daemon. */
static int child_root_to_nobody(void) {
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (raw < 0)
    return 2;
  md_privdrop_plan p;
  char err[512];
  if (md_privdrop_resolve("nobody", geteuid(), &p, err, sizeof err) != 0)
    return 3;
  if (md_privdrop_apply(&p, err, sizeof err) != 0) {
    fprintf(stderr, "apply: %s\n", err);
    return 4;
  }
  if (getgid() != p.gid || getegid() != p.gid)
    return 5;
  gid_t groups[64];
  int ng = getgroups(64, groups);
  for (int k = 0; k < ng; k++)
    if (groups[k] == 0)
      return 6; /* root's group kept */
  return check_dropped(raw, p.uid, true);
}

static void test_drop_from_root(void **state) {
  (void)state;
  if (geteuid() != 0 || !getpwnam("nobody"))
    skip();
  assert_int_equal(in_child(child_root_to_nobody), 0);
}

/* What systemd does for User=nobody AmbientCapabilities=CAP_NET_RAW:
 * a non-root process holding CAP_NET_RAW in every set but the bounding. */
static int become_systemd_like(void) {
  struct passwd *nb = getpwnam("nobody");
  if (!nb)
    return 30;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 ||
      setresgid(nb->pw_gid, nb->pw_gid, nb->pw_gid) != 0 ||
      setresuid(nb->pw_uid, nb->pw_uid, nb->pw_uid) != 0)
    return 31;
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  d[0].permitted = d[0].effective = d[0].inheritable = 1u << CAP_NET_RAW;
  if (syscall(SYS_capset, &h, d) != 0)
    return 32;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0)
    return 33;
  if (status_hex("CapAmb") != (1ULL << CAP_NET_RAW))
    return 34;
  return 0;
}

static int child_systemd_like(void) {
  int rc = become_systemd_like();
  if (rc)
    return rc;
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); /* with the ambient capability */
  if (raw < 0)
    return 35;
  md_privdrop_plan p;
  char err[512];
  if (md_privdrop_resolve(NULL, geteuid(), &p, err, sizeof err) != 0 || p.switch_user)
    return 36; /* never setuid when not started as root */
  if (md_privdrop_apply(&p, err, sizeof err) != 0) {
    fprintf(stderr, "apply: %s\n", err);
    return 37;
  }
  return check_dropped(raw, getpwnam("nobody")->pw_uid, false);
}

static void test_drop_systemd_like(void **state) {
  (void)state;
  if (geteuid() != 0 || !getpwnam("nobody"))
    skip();
  assert_int_equal(in_child(child_systemd_like), 0);
}

static void *sleeper(void *arg) {
  (void)arg;
  pause();
  return NULL;
}

/* A thread already running: the drop would miss it, so it is refused. */
static int child_with_thread(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, sleeper, NULL) != 0)
    return 40;
  md_privdrop_plan p;
  char err[512];
  if (md_privdrop_resolve(NULL, 4242, &p, err, sizeof err) != 0)
    return 41;
  if (md_privdrop_apply(&p, err, sizeof err) != -EBUSY || !strstr(err, "2 threads"))
    return 42;
  return 0;
}

static void test_refuses_with_threads(void **state) {
  (void)state;
  assert_int_equal(in_child(child_with_thread), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookup_in_child),   cmocka_unit_test(test_resolve_rules),
      cmocka_unit_test(test_config_user_key),   cmocka_unit_test(test_drop_from_root),
      cmocka_unit_test(test_drop_systemd_like), cmocka_unit_test(test_refuses_with_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
