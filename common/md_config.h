/* md_config: the YAML configuration of both programs, loaded into plain C
 * structs (CONTRACT.md, "Configuration (YAML)").
 *
 *   md_ctl_config    mtrctl: TLS files, history database, the agent inventory
 *                    (in file order), defaults for `diagnose`.
 *   md_agent_config  mtr-agent: name, listen addresses, TLS files and the
 *                    controllers allowed to command it, the probing policy.
 *
 * Loading is strict: unknown keys, duplicate keys, wrong types, missing
 * required keys, values out of range, YAML aliases and tags are errors. Every
 * error message names the file, the 1-based line and the key path, e.g.
 *   /etc/mtrctl/config.yaml:7: agents.cvm.address: "203.0.113.7:99999": port out of range (1-65535)
 * Inputs are bounded (MD_CONFIG_MAX_*), so arbitrary bytes cannot make the
 * loader use unbounded memory or recurse.
 *
 * Paths (tls.*, history) may start with "~/" ($HOME); relative paths are
 * resolved against the directory of the configuration file.
 *
 * All strings are malloc'd and owned by the struct; the _free functions
 * release them (not the struct itself) and leave it zeroed. The load
 * functions return 0, or a negative errno with a message in err:
 * -ENOENT/-EACCES/... (file not readable), -EFBIG (over MD_CONFIG_MAX_BYTES),
 * -EINVAL (anything wrong inside), -ENOMEM. On error *cfg is left zeroed. */
#ifndef MD_CONFIG_H
#define MD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_addr.h"

#define MD_CONFIG_MAX_BYTES (1024 * 1024) /* larger files are refused */
#define MD_CONFIG_MAX_NODES 10000         /* YAML scalars + collections per file */
#define MD_CONFIG_MAX_DEPTH 32            /* nesting of collections */
#define MD_CONFIG_ERRLEN 512              /* a comfortable size for err buffers */
#define MD_CONFIG_DEFAULT_PORT 7447       /* when an address has no ":port" */
#define MD_AGENT_CONFIG_DEFAULT_PATH "/etc/mtr-agent/config.yaml"
#define MD_PIN_SHA256_LEN 32 /* bytes of a decoded pin_sha256 */

/* An address prefix from allow_targets: "198.51.100.0/24", "2001:db8::/32";
 * a bare address is a host prefix (/32 or /128). Host bits are always zero. */
typedef struct md_cidr {
  md_addr addr; /* port 0 */
  int prefix;   /* 0-32 (IPv4) or 0-128 (IPv6) */
} md_cidr;

/* One listen address: the text as written and what it parsed to. */
typedef struct md_listen {
  char *text;   /* "0.0.0.0:7447", "[::]:7447" */
  md_addr addr; /* numeric, with the port (MD_CONFIG_DEFAULT_PORT if none given) */
} md_listen;

typedef struct md_agent_config {
  char *path; /* the file it was loaded from (display name), for messages */
  char *name; /* this agent's name (its certificate name) */
  char *user; /* `user:` the service user to run as when started as root, or NULL */
  md_listen *listen;
  size_t n_listen; /* >= 1 */
  struct {
    char *cert, *key, *ca;      /* resolved paths */
    char **allowed_controllers; /* certificate names; may be empty */
    size_t n_allowed_controllers;
  } tls;
  struct {
    md_cidr *allow_targets; /* deny by default: empty allows nothing */
    size_t n_allow_targets;
    unsigned max_concurrent_runs;   /* default 4 */
    unsigned max_probes_per_second; /* default 100 */
    double min_interval;            /* seconds, default 0.1 */
    unsigned max_cycles;            /* default 1000 */
    unsigned max_psize;             /* bytes, default 1500 */
    unsigned max_ttl;               /* default 64 */
    unsigned max_connections;       /* default 64 */
    double handshake_timeout;       /* seconds, default 10 */
    double idle_timeout;            /* seconds, default 300 */
  } policy;
} md_agent_config;

/* One agent of the controller's inventory. */
typedef struct md_ctl_agent {
  char *name;    /* the key in `agents` */
  char *address; /* as written: "203.0.113.7:7447", "cvm.example.net:7447" */
  char *host;    /* host part of address, without brackets */
  uint16_t port; /* port of address (MD_CONFIG_DEFAULT_PORT if none given) */
  bool has_addr; /* host is a numeric IP: addr holds it, with the port */
  md_addr addr;
  char *probe_address; /* host to trace to; default: host */
  bool has_probe_addr; /* probe_address is numeric: probe_addr holds it (port 0) */
  md_addr probe_addr;
  char *tls_name;   /* expected certificate name; default: name */
  char *pin_sha256; /* as written (base64), or NULL */
  bool has_pin;     /* pin holds the decoded SHA-256 of the agent's SPKI */
  uint8_t pin[MD_PIN_SHA256_LEN];
  int line; /* line of its definition, for later messages */
} md_ctl_agent;

typedef struct md_ctl_config {
  char *path; /* the file it was loaded from (display name), for messages */
  struct {
    char *cert, *key, *ca; /* resolved paths */
  } tls;
  char *history;        /* resolved path; default ~/.local/share/mtrctl/history.db */
  md_ctl_agent *agents; /* in file order; >= 1 */
  size_t n_agents;
  struct {
    char protocol[8]; /* "icmp" (default), "udp" or "tcp" */
    unsigned cycles;  /* default 10 */
    double interval;  /* seconds, default 1.0 */
    unsigned psize;   /* bytes, default 64 */
    unsigned max_ttl; /* default 30 */
    char *reference;  /* optional target for the local-ISP check, or NULL */
  } defaults;
  double timeout; /* seconds, whole-run limit; 0 when not set */
} md_ctl_config;

/* Read and check the agent's configuration file. */
int md_agent_config_load(const char *path, md_agent_config *cfg, char *err, size_t errlen);
/* The same from text (len bytes, need not be NUL-terminated); name is the
 * display name used in messages and as the base for relative paths. */
int md_agent_config_parse_string(const char *text, size_t len, const char *name,
                                 md_agent_config *cfg, char *err, size_t errlen);
void md_agent_config_free(md_agent_config *cfg);

/* Read and check the controller's configuration file. */
int md_ctl_config_load(const char *path, md_ctl_config *cfg, char *err, size_t errlen);
int md_ctl_config_parse_string(const char *text, size_t len, const char *name, md_ctl_config *cfg,
                               char *err, size_t errlen);
void md_ctl_config_free(md_ctl_config *cfg);

/* The agent called name, or NULL. */
const md_ctl_agent *md_ctl_config_find_agent(const md_ctl_config *cfg, const char *name);

/* The controller's configuration file when --config is not given:
 * $MTRCTL_CONFIG, else ~/.config/mtrctl/config.yaml, else
 * /etc/mtrctl/config.yaml, the first that exists. When none exists, the ~
 * one (so loading it fails naming it). 0, or -ENAMETOOLONG. */
int md_ctl_config_default_path(char *buf, size_t len);

#endif
