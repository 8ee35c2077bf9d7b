/* `mtrctl agents`: ask every inventory agent, all at once on one loop,
 * whether it answers, and say for each either who it is (version,
 * hostname, TLS identity, RTT, clock offset) or exactly why not. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "md_tls.h"

void md_cli_agents_usage(FILE *out) {
  fprintf(out,
          "usage: mtrctl [--config FILE] agents [NAME...] [--timeout S] [--format text|json]\n"
          "\n"
          "Connects to every agent of the inventory (or only the NAMEs given) at once over\n"
          "mutually authenticated TLS, says Hello and measures its clock, and prints one\n"
          "line per agent: version, hostname, TLS identity (its certificate name), round\n"
          "trip and clock offset (agent minus controller), or why it did not answer\n"
          "(connection refused, timeout, certificate not trusted, name or pin mismatch,\n"
          "not authorised, ...).\n"
          "\n"
          "options:\n"
          "  --timeout S     seconds each agent gets to connect and answer (default %g)\n"
          "  --format F      text (default) or json\n"
          "  --config FILE   the configuration (may also come before the command)\n"
          "  -h, --help      this text\n"
          "\n"
          "exit status: 0 every agent answered, 2 usage or configuration error,\n"
          "             3 an agent could not be reached or authenticated\n"
          "\n"
          "examples:\n"
          "  mtrctl agents\n"
          "  mtrctl --config ./lab.yaml agents cvm --timeout 2 --format json\n",
          MD_CLIENT_DEFAULT_TIMEOUT_MS / 1000.0);
}

int md_cli_agents_parse(int argc, char **argv, md_cli_agents_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->timeout_ms = MD_CLIENT_DEFAULT_TIMEOUT_MS;
  md_args g = {argc, argv, 1};
  while (g.i < argc) {
    const char *arg = argv[g.i], *v = NULL;
    int r;
    if ((r = md_cli_opt_flag(&g, "--help", "-h", err, errlen)) != 0) {
      if (r < 0)
        return r;
      a->help = true;
      continue;
    }
    if ((r = md_cli_opt_value(&g, "--timeout", NULL, &v, err, errlen)) != 0) {
      double s;
      if (r < 0 || (r = md_cli_parse_seconds("--timeout", v, 0, 3600, &s, err, errlen)) < 0)
        return r;
      a->timeout_ms = s * 1000 < 1 ? 1 : (unsigned)(s * 1000 + 0.5);
      continue;
    }
    if ((r = md_cli_opt_value(&g, "--format", NULL, &v, err, errlen)) != 0) {
      if (r < 0)
        return r;
      if (strcmp(v, "json") == 0) {
        a->json = true;
      } else if (strcmp(v, "text") == 0) {
        a->json = false;
      } else {
        snprintf(err, errlen, "--format must be text or json, not '%s'", v);
        return -EINVAL;
      }
      continue;
    }
    if ((r = md_cli_opt_value(&g, "--config", NULL, &v, err, errlen)) != 0) {
      if (r < 0)
        return r;
      a->config = v;
      continue;
    }
    if (arg[0] == '-' && arg[1] != '\0') {
      snprintf(err, errlen, "unknown option '%s' for 'agents'", arg);
      return -EINVAL;
    }
    if (a->n_names == MD_CLI_MAX_NAMES) {
      snprintf(err, errlen, "too many agent names (at most %d)", MD_CLI_MAX_NAMES);
      return -EINVAL;
    }
    a->names[a->n_names++] = arg;
    g.i++;
  }
  return 0;
}

/* ---- one agent's line */

typedef struct row {
  const md_ctl_agent *agent;
  md_client *client;
  bool done, ok;
  enum md_client_err kind;
  char reason[512];
  /* copied from md_client_info when it is ready */
  char version[MD_WIRE_NAME_MAX + 1], hostname[MD_WIRE_NAME_MAX + 1];
  char agent_name[MD_WIRE_NAME_MAX + 1], cert_name[MD_WIRE_NAME_MAX + 1];
  char peer[MD_ADDRSTRLEN + 8];
  json_t *addresses;   /* array of strings */
  md_client_info info; /* numbers only; the strings are the copies above */
} row;

static void copy(char *dst, size_t len, const char *s) {
  snprintf(dst, len, "%s", s ? s : "");
}

static void on_ready(md_client *c) {
  row *r = md_client_data(c);
  const md_client_info *i = md_client_get_info(c);
  r->ok = true;
  r->info = *i;
  /* the strings die with the client: keep copies, not pointers */
  r->info.name = r->info.address = r->info.peer_addr = r->info.cert_name = NULL;
  r->info.agent_name = r->info.hostname = r->info.version = NULL;
  r->info.addresses = NULL;
  copy(r->version, sizeof r->version, i->version);
  copy(r->hostname, sizeof r->hostname, i->hostname);
  copy(r->agent_name, sizeof r->agent_name, i->agent_name);
  copy(r->cert_name, sizeof r->cert_name, i->cert_name);
  copy(r->peer, sizeof r->peer, i->peer_addr);
  r->addresses = json_array();
  for (size_t k = 0; r->addresses && k < i->n_addresses; k++)
    json_array_append_new(r->addresses, json_string(i->addresses[k]));
  md_client_close(c);
}

static void on_close(md_client *c, int status, enum md_client_err kind, const char *reason) {
  row *r = md_client_data(c);
  if (status < 0) {
    r->ok = false;
    r->kind = kind;
    copy(r->reason, sizeof r->reason, reason);
    copy(r->peer, sizeof r->peer, md_client_get_info(c)->peer_addr);
  }
  r->done = true;
  r->client = NULL;
}

/* ---- output */

static size_t width(size_t w, const char *s) {
  size_t n = strlen(s);
  return n > w ? n : w;
}

static void print_text(FILE *out, row *rows, size_t n) {
  size_t wn = strlen("AGENT"), wa = strlen("ADDRESS"), wv = strlen("VERSION"),
         wh = strlen("HOSTNAME"), wi = strlen("IDENTITY");
  for (size_t k = 0; k < n; k++) {
    wn = width(wn, rows[k].agent->name);
    wa = width(wa, rows[k].agent->address);
    if (rows[k].ok) {
      wv = width(wv, rows[k].version);
      wh = width(wh, rows[k].hostname);
      wi = width(wi, rows[k].cert_name);
    }
  }
  fprintf(out, "%-*s  %-*s  %-6s  %-*s  %-*s  %-*s  %8s  %10s\n", (int)wn, "AGENT", (int)wa,
          "ADDRESS", "STATUS", (int)wv, "VERSION", (int)wh, "HOSTNAME", (int)wi, "IDENTITY",
          "RTT_MS", "OFFSET_MS");
  for (size_t k = 0; k < n; k++) {
    const row *r = &rows[k];
    fprintf(out, "%-*s  %-*s  ", (int)wn, r->agent->name, (int)wa, r->agent->address);
    double off = r->info.offset_ns / 1e6;
    if (fabs(off) < 0.0005)
      off = 0; /* no "-0.000" */
    if (r->ok)
      fprintf(out, "%-6s  %-*s  %-*s  %-*s  %8.3f  %+10.3f\n", "ok", (int)wv, r->version, (int)wh,
              r->hostname, (int)wi, r->cert_name, r->info.rtt_ns / 1e6, off);
    else
      fprintf(out, "%-6s  %s\n", "FAILED", r->reason);
  }
}

static json_t *protocols_json(uint32_t mask) {
  static const char *names[] = {"icmp", "udp", "tcp"};
  json_t *a = json_array();
  for (unsigned p = 0; a && p < 3; p++)
    if (mask & (1u << p))
      json_array_append_new(a, json_string(names[p]));
  return a;
}

static int print_json(FILE *out, FILE *errf, row *rows, size_t n, bool all_ok) {
  json_t *arr = json_array();
  for (size_t k = 0; arr && k < n; k++) {
    row *r = &rows[k];
    json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "name", r->agent->name, "address",
                          r->agent->address, "tls_name", r->agent->tls_name, "ok", r->ok);
    if (!o)
      continue;
    if (r->ok) {
      json_object_set_new(o, "peer_address", json_string(r->peer));
      json_object_set_new(o, "version", json_string(r->version));
      json_object_set_new(o, "hostname", json_string(r->hostname));
      json_object_set_new(o, "agent_name", json_string(r->agent_name));
      json_object_set_new(o, "cert_name", json_string(r->cert_name));
      json_object_set_new(o, "rtt_ms", json_real(r->info.rtt_ns / 1e6));
      json_object_set_new(o, "clock_offset_ms", json_real(r->info.offset_ns / 1e6));
      json_object_set_new(o, "protocol_revision", json_integer(r->info.protocol_revision));
      json_object_set_new(o, "addresses", r->addresses ? json_incref(r->addresses) : json_array());
      json_object_set_new(o, "capabilities",
                          json_pack("{s:b, s:o, s:b, s:b, s:b}", "raw_sockets", r->info.raw_sockets,
                                    "protocols", protocols_json(r->info.protocols), "ipv4",
                                    r->info.ipv4, "ipv6", r->info.ipv6, "one_way_stream",
                                    r->info.one_way_stream));
    } else {
      json_object_set_new(
          o, "error",
          json_pack("{s:s, s:s}", "code", md_client_err_code(r->kind), "message", r->reason));
    }
    json_array_append_new(arr, o);
  }
  json_t *doc = json_pack("{s:b, s:o}", "all_ok", all_ok, "agents", arr);
  if (!doc) {
    fprintf(errf, "mtrctl agents: out of memory\n");
    return -ENOMEM;
  }
  json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fputc('\n', out);
  json_decref(doc);
  return 0;
}

/* Hello.controller_name: our certificate file's name without ".crt"
 * (informational only; the agent goes by the certificate). */
static void controller_name(const char *cert, char *buf, size_t len) {
  const char *b = strrchr(cert, '/');
  b = b ? b + 1 : cert;
  snprintf(buf, len, "%s", b);
  char *dot = strrchr(buf, '.');
  if (dot && dot != buf)
    *dot = '\0';
}

int md_cli_agents_run(uv_loop_t *loop, const md_ctl_config *cfg, const md_cli_agents_args *a,
                      FILE *out, FILE *errf) {
  char err[512];
  for (size_t k = 0; k < a->n_names; k++)
    if (!md_ctl_config_find_agent(cfg, a->names[k])) {
      fprintf(errf, "mtrctl agents: unknown agent '%s' (not in %s; it lists:", a->names[k],
              cfg->path);
      for (size_t j = 0; j < cfg->n_agents; j++)
        fprintf(errf, " %s", cfg->agents[j].name);
      fprintf(errf, ")\n");
      return MD_EXIT_USAGE;
    }
  md_tls_ctx *tls = NULL;
  if (md_tls_ctx_new(MD_TLS_CLIENT, cfg->tls.cert, cfg->tls.key, cfg->tls.ca, &tls, err,
                     sizeof err) < 0) {
    fprintf(errf, "mtrctl: %s: tls: %s\n", cfg->path, err);
    return MD_EXIT_USAGE;
  }
  size_t n = a->n_names ? a->n_names : cfg->n_agents;
  row *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows) {
    md_tls_ctx_free(tls);
    fprintf(errf, "mtrctl agents: out of memory\n");
    return MD_EXIT_AGENT;
  }
  char cname[256];
  controller_name(cfg->tls.cert, cname, sizeof cname);
  md_client_opts opts = {.timeout_ms = a->timeout_ms, .controller_name = cname};
  md_client_cb cb = {.on_ready = on_ready, .on_close = on_close};
  for (size_t k = 0; k < n; k++) {
    row *r = &rows[k];
    r->agent = a->n_names ? md_ctl_config_find_agent(cfg, a->names[k]) : &cfg->agents[k];
    int rc = md_client_connect(loop, tls, r->agent, &opts, &cb, r, &r->client);
    if (rc < 0) {
      r->done = true;
      r->kind = MD_CLIENT_ERR_LOCAL;
      snprintf(r->reason, sizeof r->reason, "local error: cannot start: %s", strerror(-rc));
    }
  }
  /* Until every client has called on_close; the loop may hold other
   * handles (tests), so run it step by step rather than to the end. */
  for (;;) {
    bool busy = false;
    for (size_t k = 0; k < n; k++)
      busy |= !rows[k].done;
    if (!busy)
      break;
    uv_run(loop, UV_RUN_ONCE);
  }
  md_tls_ctx_free(tls);
  bool all_ok = true;
  for (size_t k = 0; k < n; k++)
    all_ok &= rows[k].ok;
  if (a->json)
    print_json(out, errf, rows, n, all_ok);
  else
    print_text(out, rows, n);
  fflush(out);
  for (size_t k = 0; k < n; k++)
    json_decref(rows[k].addresses);
  free(rows);
  return all_ok ? MD_EXIT_OK : MD_EXIT_AGENT;
}

int md_cli_agents_main(int argc, char **argv, const char *global_config, FILE *out, FILE *errf) {
  md_cli_agents_args a;
  char err[512];
  if (md_cli_agents_parse(argc, argv, &a, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl agents: %s\n(see 'mtrctl agents --help')\n", err);
    return MD_EXIT_USAGE;
  }
  if (a.help) {
    md_cli_agents_usage(out);
    return MD_EXIT_OK;
  }
  md_ctl_config cfg;
  int rc = md_cli_load_config(a.config ? a.config : global_config, &cfg, errf);
  if (rc != 0)
    return rc;
  uv_loop_t loop;
  if (uv_loop_init(&loop) < 0) {
    md_ctl_config_free(&cfg);
    fprintf(errf, "mtrctl agents: cannot create an event loop\n");
    return MD_EXIT_AGENT;
  }
  rc = md_cli_agents_run(&loop, &cfg, &a, out, errf);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the closed connections release their handles */
  uv_loop_close(&loop);
  md_ctl_config_free(&cfg);
  return rc;
}
