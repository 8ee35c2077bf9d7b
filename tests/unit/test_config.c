/* Unit tests for md_config: the CONTRACT.md examples load exactly, defaults
 * are applied, paths are resolved, the deploy/config examples load, and each
 * kind of error names file:line: key with a useful message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md_config.h"

#define CFG_DIR MD_TEST_DATA "/config"
#define DEPLOY_DIR MD_TEST_DATA "/../../deploy/config"
#define CTL_NAME "/etc/mtrctl/config.yaml"
#define AGENT_NAME "/etc/mtr-agent/config.yaml"

/* The SHA-256 of "mtrdiag", the pin used in the fixtures. */
static const uint8_t pin_bytes[32] = {
    0xbb, 0xb8, 0x02, 0x98, 0x95, 0xf7, 0xbf, 0x7c, 0xb2, 0xcd, 0x56, 0x36, 0x40, 0xfb, 0x3a, 0x0b,
    0x50, 0x23, 0x84, 0xc5, 0x6f, 0x42, 0x26, 0xf1, 0xd6, 0xa7, 0xd1, 0x90, 0x3d, 0xa6, 0x99, 0x9f};

/* Each test runs with a known $HOME and no $MTRCTL_CONFIG. */
static int setup(void **state) {
  (void)state;
  setenv("HOME", "/home/op", 1);
  unsetenv("MTRCTL_CONFIG");
  return 0;
}

/* The text of an address, for comparisons. */
static const char *addr_text(const md_addr *a) {
  static char buf[MD_ADDRSTRLEN];
  return md_addr_str(a, buf, sizeof buf);
}

/* Parse controller text or fail the test with the message. */
static void ctl_ok(const char *text, md_ctl_config *cfg) {
  char err[MD_CONFIG_ERRLEN];
  int rc = md_ctl_config_parse_string(text, strlen(text), CTL_NAME, cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("unexpected error %d: %s", rc, err);
}

/* The message must hold every string of wants (NULL-terminated). */
static void check_msg(const char *err, const char *const *wants) {
  for (; *wants; wants++)
    if (!strstr(err, *wants))
      fail_msg("message \"%s\" lacks \"%s\"", err, *wants);
}

/* Controller text must fail with -EINVAL and a message holding every
 * string given. */
#define ctl_err(text, ...) ctl_err_(text, (const char *const[]){__VA_ARGS__, NULL})
static void ctl_err_(const char *text, const char *const *wants) {
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config cfg;
  int rc = md_ctl_config_parse_string(text, strlen(text), CTL_NAME, &cfg, err, sizeof err);
  if (rc == 0)
    fail_msg("accepted: %s", text);
  assert_int_equal(rc, -EINVAL);
  assert_null(cfg.agents);
  check_msg(err, wants);
}

/* The same for the agent's file. */
static void agent_ok(const char *text, md_agent_config *cfg) {
  char err[MD_CONFIG_ERRLEN];
  int rc = md_agent_config_parse_string(text, strlen(text), AGENT_NAME, cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("unexpected error %d: %s", rc, err);
}

#define agent_err(text, ...) agent_err_(text, (const char *const[]){__VA_ARGS__, NULL})
static void agent_err_(const char *text, const char *const *wants) {
  char err[MD_CONFIG_ERRLEN];
  md_agent_config cfg;
  int rc = md_agent_config_parse_string(text, strlen(text), AGENT_NAME, &cfg, err, sizeof err);
  if (rc == 0)
    fail_msg("accepted: %s", text);
  assert_int_equal(rc, -EINVAL);
  assert_null(cfg.name);
  check_msg(err, wants);
}

/* Loading a file must fail with rc and a message holding want. */
static void load_err(bool ctl, const char *path, int rc_want, const char *want) {
  char err[MD_CONFIG_ERRLEN];
  int rc;
  if (ctl) {
    md_ctl_config cfg;
    rc = md_ctl_config_load(path, &cfg, err, sizeof err);
  } else {
    md_agent_config cfg;
    rc = md_agent_config_load(path, &cfg, err, sizeof err);
  }
  assert_int_equal(rc, rc_want);
  if (!strstr(err, want))
    fail_msg("message \"%s\" lacks \"%s\"", err, want);
}

/* A minimal valid controller file plus extra text (for one key at a time). */
#define CTL_BASE "tls: {cert: a, key: b, ca: c}\nagents: {x: {address: \"192.0.2.1:7447\"}}\n"
/* A minimal valid agent file. */
#define AGENT_BASE "name: a\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: a, key: b, ca: c}\n"

/* --- Good files ----------------------------------------------------------- */

static void test_ctl_contract(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config cfg;
  int rc = md_ctl_config_load(CFG_DIR "/ctl_contract.yaml", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_string_equal(cfg.path, CFG_DIR "/ctl_contract.yaml");
  assert_string_equal(cfg.tls.cert, "/etc/mtrctl/ops.crt");
  assert_string_equal(cfg.tls.key, "/etc/mtrctl/ops.key");
  assert_string_equal(cfg.tls.ca, "/etc/mtrctl/ca.crt");
  assert_string_equal(cfg.history, "/home/op/.local/share/mtrctl/history.db");
  assert_int_equal(cfg.n_agents, 2);

  const md_ctl_agent *l = &cfg.agents[0], *v = &cfg.agents[1];
  assert_string_equal(l->name, "local");
  assert_string_equal(l->address, "198.51.100.10:7447");
  assert_string_equal(l->host, "198.51.100.10");
  assert_int_equal(l->port, 7447);
  assert_true(l->has_addr);
  assert_string_equal(addr_text(&l->addr), "198.51.100.10");
  assert_int_equal(md_addr_port(&l->addr), 7447);
  assert_string_equal(l->probe_address, "198.51.100.10");
  assert_true(l->has_probe_addr);
  assert_int_equal(md_addr_port(&l->probe_addr), 0);
  assert_string_equal(l->tls_name, "local");
  assert_null(l->pin_sha256);
  assert_false(l->has_pin);
  assert_int_equal(l->line, 6);

  assert_string_equal(v->name, "cvm");
  assert_string_equal(v->address, "203.0.113.7:7447");
  assert_string_equal(v->probe_address, "203.0.113.7"); /* the default: host of address */
  assert_true(v->has_probe_addr);
  assert_string_equal(addr_text(&v->probe_addr), "203.0.113.7");
  assert_string_equal(v->tls_name, "cvm");
  assert_string_equal(v->pin_sha256, "u7gCmJX3v3yyzVY2QPs6C1AjhMVvQibx1qfRkD2mmZ8=");
  assert_true(v->has_pin);
  assert_memory_equal(v->pin, pin_bytes, 32);

  assert_string_equal(cfg.defaults.protocol, "icmp");
  assert_int_equal(cfg.defaults.cycles, 10);
  assert_true(cfg.defaults.interval == 1.0);
  assert_int_equal(cfg.defaults.psize, 64);
  assert_int_equal(cfg.defaults.max_ttl, 30);
  assert_null(cfg.defaults.reference);
  assert_true(cfg.timeout == 0);

  assert_ptr_equal(md_ctl_config_find_agent(&cfg, "cvm"), v);
  assert_null(md_ctl_config_find_agent(&cfg, "nope"));
  md_ctl_config_free(&cfg);
  assert_null(cfg.agents);
  md_ctl_config_free(&cfg); /* twice is fine */
}

/* CONTRACT.md's text has a placeholder where the pin goes: it is refused,
 * naming the key, because a pin that is not a hash can never match. */
static void test_ctl_contract_placeholder_pin(void **state) {
  (void)state;
  ctl_err("tls: { cert: /etc/mtrctl/ops.crt, key: /etc/mtrctl/ops.key, ca: /etc/mtrctl/ca.crt }\n"
          "history: ~/.local/share/mtrctl/history.db      # SQLite; this is the default\n"
          "agents:\n"
          "  local: { address: \"198.51.100.10:7447\", probe_address: \"198.51.100.10\" }\n"
          "  cvm:   { address: \"203.0.113.7:7447\", tls_name: cvm, pin_sha256: \"base64 SPKI "
          "hash (optional)\" }\n"
          "defaults: { protocol: icmp, cycles: 10, interval: 1.0 }\n",
          CTL_NAME ":5: agents.cvm.pin_sha256: \"base64 SPKI hash (optional)\": not a base64 "
                   "SHA-256");
}

static void test_agent_contract(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_agent_config cfg;
  int rc = md_agent_config_load(CFG_DIR "/agent_contract.yaml", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_string_equal(cfg.name, "cvm");
  assert_int_equal(cfg.n_listen, 2);
  assert_string_equal(cfg.listen[0].text, "0.0.0.0:7447");
  assert_int_equal(md_addr_family(&cfg.listen[0].addr), AF_INET);
  assert_string_equal(addr_text(&cfg.listen[0].addr), "0.0.0.0");
  assert_int_equal(md_addr_port(&cfg.listen[0].addr), 7447);
  assert_string_equal(cfg.listen[1].text, "[::]:7447");
  assert_int_equal(md_addr_family(&cfg.listen[1].addr), AF_INET6);
  assert_string_equal(addr_text(&cfg.listen[1].addr), "::");
  assert_int_equal(md_addr_port(&cfg.listen[1].addr), 7447);
  assert_string_equal(cfg.tls.cert, "/etc/mtr-agent/cvm.crt");
  assert_string_equal(cfg.tls.key, "/etc/mtr-agent/cvm.key");
  assert_string_equal(cfg.tls.ca, "/etc/mtr-agent/ca.crt");
  assert_int_equal(cfg.tls.n_allowed_controllers, 1);
  assert_string_equal(cfg.tls.allowed_controllers[0], "ops");
  assert_int_equal(cfg.policy.n_allow_targets, 1);
  assert_string_equal(addr_text(&cfg.policy.allow_targets[0].addr), "198.51.100.10");
  assert_int_equal(cfg.policy.allow_targets[0].prefix, 32);
  assert_int_equal(cfg.policy.max_concurrent_runs, 4);
  assert_int_equal(cfg.policy.max_probes_per_second, 100);
  assert_true(cfg.policy.min_interval == 0.1);
  assert_int_equal(cfg.policy.max_cycles, 1000);
  /* not in the file: defaults */
  assert_int_equal(cfg.policy.max_psize, 1500);
  assert_int_equal(cfg.policy.max_ttl, 64);
  assert_int_equal(cfg.policy.max_connections, 64);
  assert_true(cfg.policy.handshake_timeout == 10);
  assert_true(cfg.policy.idle_timeout == 300);
  md_agent_config_free(&cfg);
  assert_null(cfg.name);
}

/* Only what is required: every default applies, relative paths resolve
 * against the file's directory. */
static void test_agent_defaults(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_agent_config cfg;
  int rc = md_agent_config_load(CFG_DIR "/agent_minimal.yaml", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_string_equal(cfg.name, "local");
  assert_int_equal(cfg.n_listen, 1);
  assert_string_equal(addr_text(&cfg.listen[0].addr), "127.0.0.1");
  assert_string_equal(cfg.tls.cert, CFG_DIR "/local.crt");
  assert_string_equal(cfg.tls.key, CFG_DIR "/local.key");
  assert_string_equal(cfg.tls.ca, CFG_DIR "/ca.crt");
  assert_int_equal(cfg.tls.n_allowed_controllers, 0);
  assert_int_equal(cfg.policy.n_allow_targets, 0); /* deny everything */
  assert_int_equal(cfg.policy.max_concurrent_runs, 4);
  assert_int_equal(cfg.policy.max_probes_per_second, 100);
  assert_true(cfg.policy.min_interval == 0.1);
  assert_int_equal(cfg.policy.max_cycles, 1000);
  assert_int_equal(cfg.policy.max_psize, 1500);
  assert_int_equal(cfg.policy.max_ttl, 64);
  assert_int_equal(cfg.policy.max_connections, 64);
  assert_true(cfg.policy.handshake_timeout == 10);
  assert_true(cfg.policy.idle_timeout == 300);
  md_agent_config_free(&cfg);
}

/* Every policy key, block style, IPv6 prefixes, an empty policy. */
static void test_agent_policy(void **state) {
  (void)state;
  md_agent_config cfg;
  agent_ok(AGENT_BASE "policy:\n"
                      "  allow_targets:\n"
                      "    - 192.0.2.0/24\n"
                      "    - 2001:db8::/32\n"
                      "    - 2001:db8::1\n"
                      "    - 0.0.0.0/0\n"
                      "  max_concurrent_runs: 2\n"
                      "  max_probes_per_second: \"500\"\n"
                      "  min_interval: 0\n"
                      "  max_cycles: 5\n"
                      "  max_psize: 9000\n"
                      "  max_ttl: 255\n"
                      "  max_connections: 3\n"
                      "  handshake_timeout: 2.5\n"
                      "  idle_timeout: 1e3\n",
           &cfg);
  assert_int_equal(cfg.policy.n_allow_targets, 4);
  assert_string_equal(addr_text(&cfg.policy.allow_targets[0].addr), "192.0.2.0");
  assert_int_equal(cfg.policy.allow_targets[0].prefix, 24);
  assert_string_equal(addr_text(&cfg.policy.allow_targets[1].addr), "2001:db8::");
  assert_int_equal(cfg.policy.allow_targets[1].prefix, 32);
  assert_int_equal(cfg.policy.allow_targets[2].prefix, 128);
  assert_int_equal(cfg.policy.allow_targets[3].prefix, 0);
  assert_int_equal(cfg.policy.max_concurrent_runs, 2);
  assert_int_equal(cfg.policy.max_probes_per_second, 500);
  assert_true(cfg.policy.min_interval == 0);
  assert_int_equal(cfg.policy.max_cycles, 5);
  assert_int_equal(cfg.policy.max_psize, 9000);
  assert_int_equal(cfg.policy.max_ttl, 255);
  assert_int_equal(cfg.policy.max_connections, 3);
  assert_true(cfg.policy.handshake_timeout == 2.5);
  assert_true(cfg.policy.idle_timeout == 1000);
  md_agent_config_free(&cfg);

  agent_ok(AGENT_BASE "policy:\n", &cfg);
  assert_int_equal(cfg.policy.n_allow_targets, 0);
  assert_int_equal(cfg.policy.max_ttl, 64);
  md_agent_config_free(&cfg);

  agent_ok("name: a\nlisten: [\"[2001:db8::1]:80\", 10.1.2.3, \"[::1]\"]\n"
           "tls: {cert: a, key: b, ca: c, allowed_controllers: [ops, ops2.example.net]}\n"
           "policy: {allow_targets: []}\n",
           &cfg);
  assert_int_equal(cfg.n_listen, 3);
  assert_int_equal(md_addr_port(&cfg.listen[0].addr), 80);
  assert_int_equal(md_addr_port(&cfg.listen[1].addr), MD_CONFIG_DEFAULT_PORT);
  assert_int_equal(md_addr_port(&cfg.listen[2].addr), MD_CONFIG_DEFAULT_PORT);
  assert_int_equal(cfg.tls.n_allowed_controllers, 2);
  assert_string_equal(cfg.tls.allowed_controllers[1], "ops2.example.net");
  /* parse_string: paths relative to the display name's directory */
  assert_string_equal(cfg.tls.cert, "/etc/mtr-agent/a");
  assert_string_equal(cfg.path, AGENT_NAME);
  md_agent_config_free(&cfg);
}

/* Block style, every key, relative and ~ paths, IPv6 and DNS names, file
 * order of the agents kept. */
static void test_ctl_block(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config cfg;
  int rc = md_ctl_config_load(CFG_DIR "/ctl_block.yaml", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_string_equal(cfg.tls.cert, CFG_DIR "/certs/ops.crt");
  assert_string_equal(cfg.tls.key, CFG_DIR "/./certs/ops.key");
  assert_string_equal(cfg.tls.ca, "/home/op/pki/ca.crt");
  assert_string_equal(cfg.history, CFG_DIR "/state/history.db");
  assert_int_equal(cfg.n_agents, 3);
  assert_string_equal(cfg.agents[0].name, "zeta");
  assert_string_equal(cfg.agents[1].name, "alpha");
  assert_string_equal(cfg.agents[2].name, "mid");

  const md_ctl_agent *z = &cfg.agents[0], *a = &cfg.agents[1], *m = &cfg.agents[2];
  assert_string_equal(z->host, "2001:db8::7");
  assert_true(z->has_addr);
  assert_int_equal(md_addr_family(&z->addr), AF_INET6);
  assert_int_equal(md_addr_port(&z->addr), 7447);
  assert_string_equal(z->probe_address, "2001:db8::7");
  assert_true(z->has_probe_addr);
  assert_int_equal(z->line, 8);

  assert_string_equal(a->address, "agent.example.net:8443");
  assert_string_equal(a->host, "agent.example.net");
  assert_int_equal(a->port, 8443);
  assert_false(a->has_addr);
  assert_string_equal(a->probe_address, "192.0.2.44");
  assert_true(a->has_probe_addr);
  assert_string_equal(addr_text(&a->probe_addr), "192.0.2.44");
  assert_string_equal(a->tls_name, "alpha.example.net");

  assert_string_equal(m->host, "192.0.2.9");
  assert_int_equal(m->port, MD_CONFIG_DEFAULT_PORT);
  assert_int_equal(md_addr_port(&m->addr), MD_CONFIG_DEFAULT_PORT);

  assert_string_equal(cfg.defaults.protocol, "udp");
  assert_int_equal(cfg.defaults.cycles, 50);
  assert_true(cfg.defaults.interval == 0.25);
  assert_int_equal(cfg.defaults.psize, 1400);
  assert_int_equal(cfg.defaults.max_ttl, 40);
  assert_string_equal(cfg.defaults.reference, "192.0.2.1");
  assert_true(cfg.timeout == 90);
  md_ctl_config_free(&cfg);
}

/* Only what is required; history falls back to $HOME's default. */
static void test_ctl_defaults(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config cfg;
  setenv("HOME", "/srv/ops/", 1);
  int rc = md_ctl_config_load(CFG_DIR "/ctl_minimal.yaml", &cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_string_equal(cfg.history, "/srv/ops/.local/share/mtrctl/history.db");
  assert_string_equal(cfg.tls.ca, CFG_DIR "/ca.crt");
  assert_int_equal(cfg.n_agents, 1);
  assert_string_equal(cfg.agents[0].tls_name, "one");
  assert_string_equal(cfg.defaults.protocol, "icmp");
  assert_int_equal(cfg.defaults.cycles, 10);
  assert_true(cfg.defaults.interval == 1.0);
  assert_int_equal(cfg.defaults.psize, 64);
  assert_int_equal(cfg.defaults.max_ttl, 30);
  md_ctl_config_free(&cfg);

  /* empty defaults, a DNS reference, a quoted number */
  ctl_ok(CTL_BASE "defaults: {}\n", &cfg);
  assert_int_equal(cfg.defaults.cycles, 10);
  md_ctl_config_free(&cfg);
  ctl_ok(CTL_BASE "defaults: {reference: isp-gw.example.net, cycles: \"20\", protocol: tcp}\n"
                  "timeout: 0.5\n",
         &cfg);
  assert_string_equal(cfg.defaults.reference, "isp-gw.example.net");
  assert_int_equal(cfg.defaults.cycles, 20);
  assert_string_equal(cfg.defaults.protocol, "tcp");
  assert_true(cfg.timeout == 0.5);
  md_ctl_config_free(&cfg);
}

/* A relative config path: paths become absolute from the cwd, so they stay
 * right if the program changes directory. */
static void test_relative_config_path(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN], old[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 32];
  md_agent_config cfg;
  assert_non_null(getcwd(old, sizeof old));
  assert_non_null(realpath(MD_TEST_DATA, real));
  assert_int_equal(chdir(MD_TEST_DATA), 0);
  int rc = md_agent_config_load("config/agent_minimal.yaml", &cfg, err, sizeof err);
  assert_int_equal(chdir(old), 0);
  if (rc != 0)
    fail_msg("%s", err);
  snprintf(want, sizeof want, "%s/config/local.crt", real);
  assert_string_equal(cfg.tls.cert, want);
  md_agent_config_free(&cfg);
}

/* The documented examples in deploy/config load. */
static void test_deploy_examples(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config ctl;
  md_agent_config ag;
  int rc = md_ctl_config_load(DEPLOY_DIR "/mtrctl.example.yaml", &ctl, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_int_equal(ctl.n_agents, 2);
  assert_string_equal(ctl.agents[0].name, "local");
  assert_string_equal(ctl.agents[1].name, "cvm");
  assert_string_equal(ctl.history, "/home/op/.local/share/mtrctl/history.db");
  md_ctl_config_free(&ctl);
  rc = md_agent_config_load(DEPLOY_DIR "/mtr-agent.example.yaml", &ag, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_string_equal(ag.name, "cvm");
  assert_int_equal(ag.n_listen, 2);
  assert_int_equal(ag.policy.n_allow_targets, 3);
  assert_int_equal(ag.policy.max_concurrent_runs, 4);
  md_agent_config_free(&ag);
}

/* --- Errors --------------------------------------------------------------- */

/* The example from the brief: file:line: key: "value": problem. */
static void test_err_port(void **state) {
  (void)state;
  load_err(true, CFG_DIR "/bad_port.yaml", -EINVAL,
           CFG_DIR "/bad_port.yaml:7: agents.cvm.address: \"203.0.113.7:99999\": port out of "
                   "range");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"203.0.113.7:0\" }\n",
          CTL_NAME ":3: agents.cvm.address: \"203.0.113.7:0\": port out of range");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"203.0.113.7:\" }\n",
          ":3: agents.cvm.address:", "missing port");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"203.0.113.7:http\" }\n",
          ":3: agents.cvm.address:", "port is not a number");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"300.0.113.7:80\" }\n",
          ":3: agents.cvm.address:", "not a valid IPv4 address");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"bad host:80\" }\n",
          ":3: agents.cvm.address:", "not an IP address or host name");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"[2001:db8::1:80\" }\n",
          ":3: agents.cvm.address:", "missing ']'");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"[192.0.2.1]:80\" }\n",
          ":3: agents.cvm.address:", "not an IPv6 address inside");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: { address: \"fe80::1::2:80\" }\n",
          ":3: agents.cvm.address:", "needs brackets");
  ctl_err(CTL_BASE "defaults: {reference: \"192.0.2.1:80\"}\n",
          ":3: defaults.reference: \"192.0.2.1:80\": expected an address or host name without a "
          "port");
  ctl_err("tls: {cert: a, key: b, ca: c}\n"
          "agents: {x: {address: \"192.0.2.1:7447\", probe_address: \"-bad-\"}}\n",
          ":2: agents.x.probe_address: \"-bad-\": not an IP address or host name");
}

static void test_err_unknown_key(void **state) {
  (void)state;
  load_err(true, CFG_DIR "/bad_unknown_key.yaml", -EINVAL,
           "bad_unknown_key.yaml:4: agents.cvm: unknown key 'adress' (did you mean 'address'?)");
  ctl_err(CTL_BASE "colour: blue\n", ":3: unknown key 'colour'");
  ctl_err(CTL_BASE "Defaults: {}\n", ":3: unknown key 'Defaults' (did you mean 'defaults'?)");
  ctl_err(CTL_BASE "defaults: {cycle: 5}\n",
          ":3: defaults: unknown key 'cycle' (did you mean 'cycles'?)");
  agent_err(AGENT_BASE "policy: {max_ttls: 5}\n",
            AGENT_NAME ":4: policy: unknown key 'max_ttls' (did you mean 'max_ttl'?)");
  agent_err(AGENT_BASE "tls2: {}\n", ":4: unknown key 'tls2' (did you mean 'tls'?)");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: a, key: b, ca: c, crt: d}\n",
            ":3: tls: unknown key 'crt' (did you mean 'cert'?)");
  /* the other program's file */
  load_err(false, CFG_DIR "/ctl_contract.yaml", -EINVAL,
           "ctl_contract.yaml:4: unknown key 'history' (this looks like mtrctl's configuration, "
           "not mtr-agent's)");
  load_err(true, CFG_DIR "/agent_contract.yaml", -EINVAL,
           "agent_contract.yaml:2: unknown key 'name' (this looks like mtr-agent's "
           "configuration, not mtrctl's)");
  /* keys that are not strings */
  ctl_err(CTL_BASE "? [a, b]\n: c\n", ":3: keys must be plain strings, got a list");
  ctl_err(CTL_BASE "~: c\n", ":3: empty key");
}

static void test_err_types(void **state) {
  (void)state;
  ctl_err("tls: [a, b]\nagents: {x: {address: a}}\n",
          CTL_NAME ":1: tls: expected a mapping, got a list");
  ctl_err("tls: {cert: [a], key: b, ca: c}\nagents: {x: {address: a}}\n",
          ":1: tls.cert: expected a path, got a list");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents: {x: {address: {host: a}}}\n",
          ":2: agents.x.address: expected host:port, got a mapping");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents: [x, y]\n",
          ":2: agents: expected a mapping, got a list");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents: {x: 192.0.2.1}\n",
          ":2: agents.x: expected a mapping, got a scalar");
  ctl_err(CTL_BASE "defaults: {cycles: [1]}\n",
          ":3: defaults.cycles: expected a number, got a list");
  agent_err("name: a\nlisten: \"127.0.0.1:7447\"\ntls: {cert: a, key: b, ca: c}\n",
            ":2: listen: expected a list, e.g. [\"0.0.0.0:7447\", \"[::]:7447\"], got a scalar");
  agent_err(AGENT_BASE "policy: {allow_targets: 192.0.2.0/24}\n",
            ":4: policy.allow_targets: expected a list");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: a, key: b, ca: c, "
            "allowed_controllers: ops}\n",
            ":3: tls.allowed_controllers: expected a list");
  agent_err(AGENT_BASE "policy: [1]\n", ":4: policy: expected a mapping, got a list");
  agent_err("name: [a]\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: a, key: b, ca: c}\n",
            ":1: name: expected a name, got a list");
  agent_err("- name: a\n- listen: []\n",
            AGENT_NAME ":1: expected a mapping of settings at the top level, got a list");
  agent_err("just a string\n", ":1: expected a mapping of settings at the top level, got a scalar");
}

static void test_err_missing(void **state) {
  (void)state;
  ctl_err("agents: {x: {address: \"192.0.2.1:7447\"}}\n", CTL_NAME ":1: tls: missing required key");
  ctl_err("\n\ntls:\n  cert: a\n  key: b\nagents: {x: {address: \"192.0.2.1:7447\"}}\n",
          CTL_NAME ":4: tls.ca: missing required key");
  ctl_err("tls: {cert: a, key: b, ca: c}\n", ":1: agents: missing required key");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents: {}\n", ":2: agents: at least one agent");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n", ":2: agents: at least one agent");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: {tls_name: cvm}\n",
          ":3: agents.cvm.address: missing required key");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm:\n",
          ":3: agents.cvm.address: missing required key");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: {address: }\n",
          ":3: agents.cvm.address: missing value (expected host:port)");
  ctl_err("tls: {cert: a, key: \"\", ca: c}\nagents:\n  cvm: {address: a}\n",
          ":1: tls.key: missing value (expected a path)");
  agent_err("listen: [\"127.0.0.1:7447\"]\ntls: {cert: a, key: b, ca: c}\n",
            AGENT_NAME ":1: name: missing required key");
  agent_err("name: a\ntls: {cert: a, key: b, ca: c}\n", ":1: listen: missing required key");
  agent_err("name: a\nlisten: []\ntls: {cert: a, key: b, ca: c}\n",
            ":2: listen: at least one listen address is required");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\"]\n", ":1: tls: missing required key");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: a, ca: c}\n",
            ":3: tls.key: missing required key");
}

static void test_err_duplicate(void **state) {
  (void)state;
  ctl_err(CTL_BASE "tls: {cert: a, key: b, ca: c}\n",
          CTL_NAME ":3: duplicate key 'tls' (first at line 1)");
  ctl_err("tls: {cert: a, key: b, ca: c}\nagents:\n  a: {address: x}\n  b: {address: y}\n"
          "  a: {address: z}\n",
          ":5: agents: duplicate agent 'a' (first at line 3)");
  ctl_err("tls: {cert: a, key: b, ca: c, cert: d}\nagents: {a: {address: x}}\n",
          ":1: tls: duplicate key 'cert' (first at line 1)");
  agent_err(AGENT_BASE "policy:\n  max_ttl: 3\n  max_ttl: 4\n",
            ":6: policy: duplicate key 'max_ttl' (first at line 5)");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\", \"127.0.0.1:7447\"]\n"
            "tls: {cert: a, key: b, ca: c}\n",
            ":2: listen[1]: \"127.0.0.1:7447\": listed twice");
}

static void test_err_numbers(void **state) {
  (void)state;
  ctl_err(CTL_BASE "defaults: {cycles: 0}\n",
          CTL_NAME ":3: defaults.cycles: \"0\": out of range (1-1000000)");
  ctl_err(CTL_BASE "defaults: {cycles: -3}\n", ":3: defaults.cycles: \"-3\": must not be negative");
  ctl_err(CTL_BASE "defaults: {cycles: 1.5}\n", ":3: defaults.cycles: \"1.5\": expected a whole "
                                                "number");
  ctl_err(CTL_BASE "defaults: {cycles: ten}\n", ":3: defaults.cycles: \"ten\": expected a number");
  ctl_err(CTL_BASE "defaults: {cycles: 0x10}\n", "expected a number");
  ctl_err(CTL_BASE "defaults: {cycles: 99999999999999999999999}\n", "out of range");
  ctl_err(CTL_BASE "defaults: {max_ttl: 256}\n",
          ":3: defaults.max_ttl: \"256\": out of range (1-255)");
  ctl_err(CTL_BASE "defaults: {interval: -1}\n",
          ":3: defaults.interval: \"-1\": must not be negative");
  ctl_err(CTL_BASE "defaults: {interval: 0}\n",
          ":3: defaults.interval: \"0\": must be greater than 0");
  ctl_err(CTL_BASE "defaults: {interval: .nan}\n", "expected a number of seconds");
  ctl_err(CTL_BASE "defaults: {interval: inf}\n", "expected a number of seconds");
  ctl_err(CTL_BASE "defaults: {interval: 1e999}\n", "expected a number of seconds");
  ctl_err(CTL_BASE "defaults: {interval: 1s}\n", "expected a number of seconds");
  ctl_err(CTL_BASE "defaults: {interval: 7200}\n", "out of range (at most 3600)");
  ctl_err(CTL_BASE "timeout: -5\n", ":3: timeout: \"-5\": must not be negative");
  ctl_err(CTL_BASE "defaults: {protocol: sctp}\n",
          ":3: defaults.protocol: \"sctp\": unknown protocol (icmp, udp or tcp)");
  agent_err(AGENT_BASE "policy:\n  min_interval: -0.5\n",
            AGENT_NAME ":5: policy.min_interval: \"-0.5\": must not be negative");
  agent_err(AGENT_BASE "policy:\n  max_concurrent_runs: 0\n",
            ":5: policy.max_concurrent_runs: \"0\": out of range (1-1024)");
  agent_err(AGENT_BASE "policy:\n  handshake_timeout: 0\n",
            ":5: policy.handshake_timeout: \"0\": must be greater than 0");
}

static void test_err_agent_values(void **state) {
  (void)state;
  agent_err("name: a\nlisten: [\"localhost:7447\"]\ntls: {cert: a, key: b, ca: c}\n",
            ":2: listen[0]: \"localhost:7447\": a listen address must be a numeric IP address");
  agent_err("name: a\nlisten:\n  - 127.0.0.1:7447\n  - 0.0.0.0:70000\n"
            "tls: {cert: a, key: b, ca: c}\n",
            ":4: listen[1]: \"0.0.0.0:70000\": port out of range (1-65535)");
  agent_err(AGENT_BASE "policy:\n  allow_targets: [192.0.2.0/24, \"198.51.100.10/24\"]\n",
            ":5: policy.allow_targets[1]: \"198.51.100.10/24\": host bits set (did you mean "
            "\"198.51.100.0/24\"?)");
  agent_err(AGENT_BASE "policy: {allow_targets: [192.0.2.0/33]}\n",
            "prefix length out of range (0-32)");
  agent_err(AGENT_BASE "policy: {allow_targets: [\"2001:db8::/129\"]}\n",
            "prefix length out of range (0-128)");
  agent_err(AGENT_BASE "policy: {allow_targets: [\"192.0.2.0/\"]}\n",
            "prefix length is not a number");
  agent_err(AGENT_BASE "policy: {allow_targets: [example.net]}\n",
            ":4: policy.allow_targets[0]: \"example.net\": not an address prefix");
  agent_err(AGENT_BASE "policy: {allow_targets: [\"2001:db8::1/64\"]}\n",
            "did you mean \"2001:db8::/64\"?");
  agent_err("name: bad name\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: a, key: b, ca: c}\n",
            ":1: name: \"bad name\": not a valid name");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\"]\n"
            "tls: {cert: a, key: b, ca: c, allowed_controllers: [ok, \"not ok\"]}\n",
            ":3: tls.allowed_controllers[1]: \"not ok\": not a valid certificate name");
  agent_err("name: a\nlisten: [\"127.0.0.1:7447\"]\ntls: {cert: ~root/a, key: b, ca: c}\n",
            ":3: tls.cert: \"~root/a\": '~user' paths are not supported");
}

static void test_err_pin(void **state) {
  (void)state;
  static const char *bad[] = {
      "u7gCmJX3v3yyzVY2QPs6C1AjhMVvQibx1qfRkD2mmZ8",  /* no padding */
      "u7gCmJX3v3yyzVY2QPs6C1AjhMVvQibx1qfRkD2mmZ9=", /* spare bits set */
      "u7gCmJX3v3yyzVY2QPs6C1AjhMVvQibx1qfRkD2mmZ==", /* 31 bytes */
      "u7gCmJX3v3yyzVY2QPs6C1AjhMVvQibx1qfRkD2mm-8=", /* url-safe alphabet */
      "bbb80298",                                     /* hex */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[256];
    snprintf(text, sizeof text,
             "tls: {cert: a, key: b, ca: c}\nagents:\n  cvm: {address: x, pin_sha256: \"%s\"}\n",
             bad[i]);
    ctl_err(text, ":3: agents.cvm.pin_sha256:", "not a base64 SHA-256");
  }
}

static void test_err_syntax(void **state) {
  (void)state;
  load_err(false, CFG_DIR "/bad_syntax.yaml", -EINVAL, "bad_syntax.yaml:3: YAML syntax error: ");
  agent_err("name: a\n  bad: indent\nlisten: []\n", AGENT_NAME ":2: YAML syntax error: ");
  ctl_err("tls: {cert: a\n", ":2: YAML syntax error: ", "flow mapping");
  ctl_err("a: \"unterminated\n", ":2: YAML syntax error: ");
  ctl_err("a: b\n\t- c\n", "YAML syntax error");
  /* two documents */
  ctl_err(CTL_BASE "---\n" CTL_BASE, ":3: more than one YAML document");
  /* tags */
  ctl_err(CTL_BASE "defaults: {cycles: !!int 5}\n", ":3: YAML tags are not supported");
  ctl_err("--- !local\n" CTL_BASE, "YAML tags are not supported");
  /* NUL and invalid UTF-8 */
  ctl_err(CTL_BASE "defaults: {reference: \"a\\0b\"}\n", ":3: NUL characters are not allowed");
  ctl_err(CTL_BASE "\xff\xfe\xfd: x\n", ":3: invalid input");
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config cfg;
  static const char nul[] = "tls: {cert: a\0, key: b}\n";
  assert_int_equal(md_ctl_config_parse_string(nul, sizeof nul - 1, CTL_NAME, &cfg, err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, ":1: invalid input"));
}

static void test_err_alias(void **state) {
  (void)state;
  load_err(true, CFG_DIR "/bad_alias.yaml", -EINVAL,
           "bad_alias.yaml:4: YAML aliases (*t) are not supported");
  /* the classic billion laughs stops at the first alias */
  ctl_err("a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
          "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
          ":2: YAML aliases (*a) are not supported");
  /* an anchor alone is harmless */
  md_ctl_config cfg;
  ctl_ok("tls: &t {cert: a, key: b, ca: c}\nagents: {x: {address: \"192.0.2.1:7447\"}}\n", &cfg);
  md_ctl_config_free(&cfg);
}

static void test_err_empty(void **state) {
  (void)state;
  load_err(true, CFG_DIR "/empty.yaml", -EINVAL, "empty.yaml:1: empty file");
  load_err(false, CFG_DIR "/empty.yaml", -EINVAL, "empty.yaml:1: empty file");
  load_err(true, CFG_DIR "/only_comment.yaml", -EINVAL, "only_comment.yaml:1: empty configuration");
  ctl_err("---\n...\n", ":1: empty configuration");
  ctl_err("~\n", ":1: empty configuration");
}

static void test_err_file(void **state) {
  (void)state;
  load_err(true, "/nonexistent/mtrctl/config.yaml", -ENOENT,
           "/nonexistent/mtrctl/config.yaml: cannot open: No such file or directory");
  load_err(false, "/nonexistent/agent.yaml", -ENOENT,
           "/nonexistent/agent.yaml: cannot open: No such file or directory");
  load_err(true, CFG_DIR, -EISDIR, CFG_DIR ": cannot read: Is a directory");
  if (geteuid() != 0) {
    char path[] = "/tmp/md_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(path, 0), 0);
    load_err(true, path, -EACCES, "cannot open: Permission denied");
    unlink(path);
  }
}

/* Files over 1 MiB, too many nodes, too deep: refused before much work. */
static void test_err_limits(void **state) {
  (void)state;
  char path[] = "/tmp/md_config_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = MD_CONFIG_MAX_BYTES + 1;
  char *big = malloc(n);
  assert_non_null(big);
  memset(big, '#', n);
  assert_int_equal(write(fd, big, n), (ssize_t)n);
  close(fd);
  load_err(true, path, -EFBIG, "file too large");
  unlink(path);
  md_ctl_config cfg;
  char err[MD_CONFIG_ERRLEN];
  assert_int_equal(md_ctl_config_parse_string(big, n, CTL_NAME, &cfg, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "file too large"));

  /* 10001 scalars in one list */
  size_t len = 0;
  len += (size_t)sprintf(big + len, "x: [");
  for (int i = 0; i < MD_CONFIG_MAX_NODES + 1; i++)
    len += (size_t)sprintf(big + len, "1,");
  len += (size_t)sprintf(big + len, "1]\n");
  assert_int_equal(md_ctl_config_parse_string(big, len, CTL_NAME, &cfg, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, CTL_NAME ":1: too many YAML nodes (the limit is 10000)"));
  free(big);

  load_err(false, CFG_DIR "/bad_deep.yaml", -EINVAL,
           "bad_deep.yaml:2: nesting deeper than 32 levels");
  /* block-style nesting, one level per line */
  char deep[4096];
  len = 0;
  for (int i = 0; i < 40; i++)
    len += (size_t)snprintf(deep + len, sizeof deep - len, "%*sk%d:\n", i, "", i);
  ctl_err(deep, ":33: nesting deeper than 32 levels");
}

/* Values in messages cannot carry terminal control sequences. */
static void test_err_sanitized(void **state) {
  (void)state;
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config cfg;
  const char *text = CTL_BASE "\"\\e[31mred\\u009b\": 1\n";
  assert_int_equal(md_ctl_config_parse_string(text, strlen(text), CTL_NAME, &cfg, err, sizeof err),
                   -EINVAL);
  assert_null(strchr(err, '\x1b'));
  assert_null(strstr(err, "\xc2\x9b"));
  assert_non_null(strstr(err, "unknown key '?[31mred?'"));
  /* long values are cut */
  char longv[600];
  int n = snprintf(longv, sizeof longv, CTL_BASE "defaults: {reference: \"");
  memset(longv + n, 'a', 300);
  snprintf(longv + n + 300, sizeof longv - (size_t)n - 300, "\"}\n");
  ctl_err(longv, "aaa...\": not an IP address or host name");
}

/* Callers may pass no error buffer, or a tiny one. */
static void test_err_buffers(void **state) {
  (void)state;
  md_ctl_config cfg;
  md_agent_config ag;
  char tiny[8];
  assert_int_equal(md_ctl_config_parse_string("x", 1, NULL, &cfg, NULL, 0), -EINVAL);
  assert_int_equal(md_ctl_config_parse_string("x", 1, CTL_NAME, &cfg, tiny, sizeof tiny), -EINVAL);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
  assert_int_equal(md_agent_config_load("/nonexistent", &ag, NULL, 0), -ENOENT);
  assert_int_equal(md_ctl_config_parse_string(NULL, 0, "n", &cfg, tiny, sizeof tiny), -EINVAL);
  assert_int_equal(md_ctl_config_load(NULL, &cfg, NULL, 0), -EINVAL);
  char err[MD_CONFIG_ERRLEN];
  assert_int_equal(md_agent_config_parse_string("x", 1, NULL, &ag, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "<config>:1:"));
  memset(&cfg, 0, sizeof cfg);
  md_ctl_config_free(&cfg);
  md_ctl_config_free(NULL);
  md_agent_config_free(NULL);
}

/* $MTRCTL_CONFIG, then ~/.config/mtrctl/config.yaml, then /etc. */
static void test_default_path(void **state) {
  (void)state;
  char buf[PATH_MAX], want[PATH_MAX + 64];
  setenv("MTRCTL_CONFIG", "/srv/x/mtrctl.yaml", 1);
  assert_int_equal(md_ctl_config_default_path(buf, sizeof buf), 0);
  assert_string_equal(buf, "/srv/x/mtrctl.yaml");
  char small[8];
  assert_int_equal(md_ctl_config_default_path(small, sizeof small), -ENAMETOOLONG);
  unsetenv("MTRCTL_CONFIG");
  setenv("MTRCTL_CONFIG", "", 1); /* empty: as if unset */

  char home[] = "/tmp/md_config_home_XXXXXX";
  assert_non_null(mkdtemp(home));
  setenv("HOME", home, 1);
  bool etc = access("/etc/mtrctl/config.yaml", F_OK) == 0;
  snprintf(want, sizeof want, "%s/.config/mtrctl/config.yaml", home);
  assert_int_equal(md_ctl_config_default_path(buf, sizeof buf), 0);
  assert_string_equal(buf, etc ? "/etc/mtrctl/config.yaml" : want);

  /* none exists: the ~ one, and loading it names it */
  if (!etc) {
    char err[MD_CONFIG_ERRLEN];
    md_ctl_config cfg;
    assert_int_equal(md_ctl_config_load(buf, &cfg, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "No such file or directory"));
  }

  char dir[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/.config", home);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(dir, sizeof dir, "%s/.config/mtrctl", home);
  assert_int_equal(mkdir(dir, 0700), 0);
  FILE *f = fopen(want, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(md_ctl_config_default_path(buf, sizeof buf), 0);
  assert_string_equal(buf, want);
  unlink(want);
  rmdir(dir);
  snprintf(dir, sizeof dir, "%s/.config", home);
  rmdir(dir);
  rmdir(home);
  unsetenv("MTRCTL_CONFIG");
}

/* Without $HOME, "~" cannot be expanded; the message says so. */
static void test_no_home(void **state) {
  (void)state;
  md_ctl_config cfg;
  unsetenv("HOME");
  /* the password database may still know a home directory */
  ctl_ok(CTL_BASE, &cfg);
  assert_non_null(cfg.history);
  md_ctl_config_free(&cfg);
  setenv("HOME", "/home/op", 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_ctl_contract, setup),
      cmocka_unit_test_setup(test_ctl_contract_placeholder_pin, setup),
      cmocka_unit_test_setup(test_agent_contract, setup),
      cmocka_unit_test_setup(test_agent_defaults, setup),
      cmocka_unit_test_setup(test_agent_policy, setup),
      cmocka_unit_test_setup(test_ctl_block, setup),
      cmocka_unit_test_setup(test_ctl_defaults, setup),
      cmocka_unit_test_setup(test_relative_config_path, setup),
      cmocka_unit_test_setup(test_deploy_examples, setup),
      cmocka_unit_test_setup(test_err_port, setup),
      cmocka_unit_test_setup(test_err_unknown_key, setup),
      cmocka_unit_test_setup(test_err_types, setup),
      cmocka_unit_test_setup(test_err_missing, setup),
      cmocka_unit_test_setup(test_err_duplicate, setup),
      cmocka_unit_test_setup(test_err_numbers, setup),
      cmocka_unit_test_setup(test_err_agent_values, setup),
      cmocka_unit_test_setup(test_err_pin, setup),
      cmocka_unit_test_setup(test_err_syntax, setup),
      cmocka_unit_test_setup(test_err_alias, setup),
      cmocka_unit_test_setup(test_err_empty, setup),
      cmocka_unit_test_setup(test_err_file, setup),
      cmocka_unit_test_setup(test_err_limits, setup),
      cmocka_unit_test_setup(test_err_sanitized, setup),
      cmocka_unit_test_setup(test_err_buffers, setup),
      cmocka_unit_test_setup(test_default_path, setup),
      cmocka_unit_test_setup(test_no_home, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
