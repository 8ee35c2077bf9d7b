/* `mtrctl pki init|issue`: the deployment's CA and its certificates, on top
 * of md_pki. Needs no configuration: it is how the configuration's TLS
 * files come to exist. */
#include "cli.h"

#include <errno.h>
#include <string.h>

#include "md_tls.h"

void md_cli_pki_usage(FILE *out) {
  fprintf(out,
          "usage: mtrctl pki init  --dir DIR\n"
          "       mtrctl pki issue --dir DIR --name NAME --role agent|controller\n"
          "                        [--san IP_OR_DNS]... [--days N]\n"
          "\n"
          "  init   a new deployment CA: DIR/ca.crt and DIR/ca.key (mode 0600); DIR is\n"
          "         created (mode 0700) if missing. Nothing is ever overwritten.\n"
          "  issue  DIR/NAME.crt and DIR/NAME.key (mode 0600) signed by DIR/ca.*, and the\n"
          "         certificate's pin_sha256. NAME is the certificate name: an agent's\n"
          "         tls_name in mtrctl's config, or a controller name for the agents'\n"
          "         tls.allowed_controllers.\n"
          "\n"
          "options:\n"
          "  --dir DIR          the CA directory\n"
          "  --name NAME        1-%d characters of [A-Za-z0-9._-], not \"ca\"\n"
          "  --role ROLE        agent (serves controllers) or controller (commands agents)\n"
          "  --san IP_OR_DNS    an extra subjectAltName (repeatable), e.g. the agent's address\n"
          "  --days N           validity in days (default %d, at most %d)\n"
          "  -h, --help         this text\n"
          "\n"
          "examples:\n"
          "  mtrctl pki init  --dir /etc/mtrdiag/pki\n"
          "  mtrctl pki issue --dir /etc/mtrdiag/pki --name cvm --role agent --san 203.0.113.7\n"
          "  mtrctl pki issue --dir /etc/mtrdiag/pki --name ops --role controller\n",
          MD_PKI_NAME_MAX, MD_PKI_DEFAULT_DAYS, MD_PKI_MAX_DAYS);
}

/* The options of init and issue; what is not allowed for the command in
 * hand is "unknown", so a typo never passes silently. */
static int parse_opts(md_args *g, md_cli_pki_args *a, const char *cmd, char *err, size_t errlen) {
  bool issue = a->cmd == MD_CLI_PKI_ISSUE;
  while (g->i < g->argc) {
    const char *arg = g->argv[g->i], *v = NULL;
    int r;
    if ((r = md_cli_opt_flag(g, "--help", "-h", err, errlen)) != 0) {
      if (r < 0)
        return r;
      a->help = true;
      continue;
    }
    if ((r = md_cli_opt_value(g, "--dir", NULL, &v, err, errlen)) != 0) {
      if (r < 0)
        return r;
      if (!*v) {
        snprintf(err, errlen, "--dir must not be empty");
        return -EINVAL;
      }
      a->dir = v;
      continue;
    }
    if (issue && (r = md_cli_opt_value(g, "--name", NULL, &v, err, errlen)) != 0) {
      if (r < 0)
        return r;
      char why[200];
      if (md_pki_check_name(v, why, sizeof why) < 0) {
        snprintf(err, errlen, "--name '%s': %s", v, why);
        return -EINVAL;
      }
      a->name = v;
      continue;
    }
    if (issue && (r = md_cli_opt_value(g, "--role", NULL, &v, err, errlen)) != 0) {
      if (r < 0)
        return r;
      if (md_pki_role_parse(v, &a->role) < 0) {
        snprintf(err, errlen, "--role must be agent or controller, not '%s'", v);
        return -EINVAL;
      }
      a->has_role = true;
      continue;
    }
    if (issue && (r = md_cli_opt_value(g, "--san", NULL, &v, err, errlen)) != 0) {
      if (r < 0)
        return r;
      if (!*v) {
        snprintf(err, errlen, "--san must not be empty");
        return -EINVAL;
      }
      if (a->n_sans == MD_CLI_MAX_SANS) {
        snprintf(err, errlen, "too many --san (at most %d)", MD_CLI_MAX_SANS);
        return -EINVAL;
      }
      a->sans[a->n_sans++] = v;
      continue;
    }
    if (issue && (r = md_cli_opt_value(g, "--days", NULL, &v, err, errlen)) != 0) {
      if (r < 0 ||
          (r = md_cli_parse_long("--days", v, 1, MD_PKI_MAX_DAYS, &a->days, err, errlen)) < 0)
        return r;
      continue;
    }
    if (issue && (r = md_cli_opt_value(g, "--not-after-seconds", NULL, &v, err, errlen)) != 0) {
      const long max = (long)MD_PKI_MAX_DAYS * 86400;
      if (r < 0 || (r = md_cli_parse_long("--not-after-seconds", v, -max / 2, max, &a->not_after_s,
                                          err, errlen)) < 0)
        return r;
      a->has_not_after = true;
      continue;
    }
    if (arg[0] == '-')
      snprintf(err, errlen, "unknown option '%s' for 'pki %s'", arg, cmd);
    else
      snprintf(err, errlen, "unexpected argument '%s' for 'pki %s'", arg, cmd);
    return -EINVAL;
  }
  return 0;
}

int md_cli_pki_parse(int argc, char **argv, md_cli_pki_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  md_args g = {argc, argv, 1};
  if (g.i >= argc) {
    snprintf(err, errlen, "no pki command given (init or issue)");
    return -EINVAL;
  }
  const char *cmd = argv[g.i];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
    a->help = true;
    return 0;
  }
  if (strcmp(cmd, "init") == 0) {
    a->cmd = MD_CLI_PKI_INIT;
  } else if (strcmp(cmd, "issue") == 0) {
    a->cmd = MD_CLI_PKI_ISSUE;
  } else {
    snprintf(err, errlen, "unknown pki command '%s' (init or issue)", cmd);
    return -EINVAL;
  }
  g.i++;
  int r = parse_opts(&g, a, cmd, err, errlen);
  if (r < 0 || a->help)
    return r;
  if (!a->dir) {
    snprintf(err, errlen, "--dir is required for 'pki %s'", cmd);
    return -EINVAL;
  }
  if (a->cmd == MD_CLI_PKI_ISSUE) {
    if (!a->name) {
      snprintf(err, errlen, "--name is required for 'pki issue'");
      return -EINVAL;
    }
    if (!a->has_role) {
      snprintf(err, errlen, "--role is required for 'pki issue' (agent or controller)");
      return -EINVAL;
    }
    if (a->days && a->has_not_after) {
      snprintf(err, errlen, "--days and --not-after-seconds exclude each other");
      return -EINVAL;
    }
  }
  return 0;
}

/* "DIR/FILE" for messages. */
static const char *file_in(char *buf, size_t len, const char *dir, const char *name,
                           const char *ext) {
  size_t n = strlen(dir);
  snprintf(buf, len, "%s%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name, ext);
  return buf;
}

/* md_pki's -EINVAL is about what was asked (a bad SAN...): a usage error;
 * anything else (a file exists, cannot write) is a failure to do it. */
static int pki_failed(int rc, const char *cmd, const char *err, FILE *errf) {
  fprintf(errf, "mtrctl pki %s: %s\n", cmd, err);
  return rc == -EINVAL ? MD_EXIT_USAGE : MD_EXIT_PROBLEM;
}

static int do_init(const md_cli_pki_args *a, FILE *out, FILE *errf) {
  char err[512], crt[4096], key[4096];
  int rc = md_pki_init(a->dir, err, sizeof err);
  if (rc < 0)
    return pki_failed(rc, "init", err, errf);
  fprintf(out,
          "created the deployment CA:\n"
          "  %s  certificate: every agent's and controller's tls.ca\n"
          "  %s  private key (mode 0600): keep it here, only 'mtrctl pki issue' needs it\n",
          file_in(crt, sizeof crt, a->dir, "ca", ".crt"),
          file_in(key, sizeof key, a->dir, "ca", ".key"));
  return MD_EXIT_OK;
}

static int do_issue(const md_cli_pki_args *a, FILE *out, FILE *errf) {
  char err[512], crt[4096], key[4096], pin[MD_TLS_PIN_LEN];
  int rc;
  if (a->has_not_after) {
    /* valid from a day before it ends (or the usual backdating), to the end asked for */
    int64_t na = a->not_after_s;
    int64_t nb = na - 86400 < -MD_PKI_BACKDATE_S ? na - 86400 : -MD_PKI_BACKDATE_S;
    rc = md_pki_issue_window(a->dir, a->name, a->role, a->sans, a->n_sans, nb, na, err, sizeof err);
  } else {
    rc = md_pki_issue(a->dir, a->name, a->role, a->sans, a->n_sans, (int)a->days, err, sizeof err);
  }
  if (rc < 0)
    return pki_failed(rc, "issue", err, errf);
  file_in(crt, sizeof crt, a->dir, a->name, ".crt");
  file_in(key, sizeof key, a->dir, a->name, ".key");
  fprintf(out, "issued %s certificate \"%s\" (", md_pki_role_name(a->role), a->name);
  if (a->has_not_after && a->not_after_s <= 0)
    fprintf(out, "expired %ld s ago: for tests", -a->not_after_s);
  else if (a->has_not_after)
    fprintf(out, "valid for %ld s", a->not_after_s);
  else
    fprintf(out, "valid %ld days", a->days ? a->days : (long)MD_PKI_DEFAULT_DAYS);
  fprintf(out, "; subjectAltNames DNS:%s", a->name);
  for (size_t i = 0; i < a->n_sans; i++)
    fprintf(out, ", %s", a->sans[i]);
  fprintf(out, ")\n  %s\n  %s  (mode 0600)\n", crt, key);
  if (md_tls_cert_spki_sha256_b64(crt, pin, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl pki issue: the certificate was written but its pin cannot be read: %s\n",
            err);
    return MD_EXIT_PROBLEM;
  }
  fprintf(out, "pin_sha256: %s\n", pin);
  if (a->role == MD_PKI_AGENT)
    fprintf(out,
            "in mtrctl's config: agents: { %s: { address: \"HOST:7447\", pin_sha256: \"%s\" } }\n"
            "in the agent's config: name: %s, tls: { cert: %s.crt, key: %s.key, ca: ca.crt }\n",
            a->name, pin, a->name, a->name, a->name);
  else
    fprintf(out,
            "in mtrctl's config: tls: { cert: %s.crt, key: %s.key, ca: ca.crt }\n"
            "on each agent that %s may command: tls.allowed_controllers: [%s]\n",
            a->name, a->name, a->name, a->name);
  return MD_EXIT_OK;
}

int md_cli_pki_main(int argc, char **argv, FILE *out, FILE *errf) {
  md_cli_pki_args a;
  char err[512];
  if (md_cli_pki_parse(argc, argv, &a, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl pki: %s\n(see 'mtrctl pki --help')\n", err);
    return MD_EXIT_USAGE;
  }
  if (a.help) {
    md_cli_pki_usage(out);
    return MD_EXIT_OK;
  }
  return a.cmd == MD_CLI_PKI_INIT ? do_init(&a, out, errf) : do_issue(&a, out, errf);
}
