/* What every mtrctl command parses the same way: options with values,
 * flags, numbers, and the configuration file. See cli.h. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "--dir=..." or "--dir": the option part of argv[i] if it is `name`. */
static const char *match(const char *arg, const char *name) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0)
    return NULL;
  if (arg[n] == '\0' || (arg[n] == '=' && name[0] == '-' && name[1] == '-'))
    return arg + n;
  return NULL;
}

int md_cli_opt_value(md_args *a, const char *name, const char *alias, const char **val, char *err,
                     size_t errlen) {
  const char *arg = a->argv[a->i];
  const char *rest = match(arg, name);
  const char *shown = name;
  if (!rest && alias) {
    rest = match(arg, alias);
    shown = alias;
  }
  if (!rest)
    return 0;
  if (*rest == '=') {
    *val = rest + 1;
    a->i++;
    return 1;
  }
  if (a->i + 1 >= a->argc) {
    snprintf(err, errlen, "option %s needs a value", shown);
    return -EINVAL;
  }
  *val = a->argv[a->i + 1];
  a->i += 2;
  return 1;
}

int md_cli_opt_flag(md_args *a, const char *name, const char *alias, char *err, size_t errlen) {
  const char *arg = a->argv[a->i];
  const char *rest = match(arg, name);
  const char *shown = name;
  if (!rest && alias) {
    rest = match(arg, alias);
    shown = alias;
  }
  if (!rest)
    return 0;
  if (*rest == '=') {
    snprintf(err, errlen, "option %s takes no value", shown);
    return -EINVAL;
  }
  a->i++;
  return 1;
}

int md_cli_parse_long(const char *opt, const char *s, long min, long max, long *out, char *err,
                      size_t errlen) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || *end || errno || v < min || v > max) {
    snprintf(err, errlen, "%s must be a whole number from %ld to %ld, not '%s'", opt, min, max, s);
    return -EINVAL;
  }
  *out = v;
  return 0;
}

int md_cli_parse_seconds(const char *opt, const char *s, double min, double max, double *out,
                         char *err, size_t errlen) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !isfinite(v) || v <= min || v > max) {
    snprintf(err, errlen, "%s must be a number of seconds above %g and at most %g, not '%s'", opt,
             min, max, s);
    return -EINVAL;
  }
  *out = v;
  return 0;
}

int md_cli_load_config(const char *path, md_ctl_config *cfg, FILE *errf) {
  char def[PATH_MAX];
  char err[MD_CONFIG_ERRLEN];
  if (!path) {
    if (md_ctl_config_default_path(def, sizeof def) < 0) {
      fprintf(errf, "mtrctl: the default configuration path is too long ($HOME?)\n");
      return MD_EXIT_USAGE;
    }
    path = def;
  }
  if (md_ctl_config_load(path, cfg, err, sizeof err) < 0) {
    fprintf(errf, "mtrctl: %s\n", err);
    return MD_EXIT_USAGE;
  }
  return 0;
}
