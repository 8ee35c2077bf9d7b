/* bundle: the evidence bundle (--output DIR). Each file is rendered into
 * memory, written to a mkstemp() name in DIR, flushed, given mode 0644 and
 * renamed over the final name. */
#include "bundle.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md_time.h"
#include "render.h"
#include "report_json.h"

static void berr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Printf into the caller's error buffer, which may be NULL. */
static void berr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* mkdir -p with mode for every directory created. */
static int mkdirs(const char *dir, mode_t mode, char *err, size_t errlen) {
  char path[PATH_MAX];
  if (!dir || !dir[0]) {
    berr(err, errlen, "output directory: empty name");
    return -EINVAL;
  }
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
    berr(err, errlen, "%s: name too long", dir);
    return -ENAMETOOLONG;
  }
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    struct stat st;
    if (stat(path, &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        berr(err, errlen, "%s: exists and is not a directory", path);
        return -ENOTDIR;
      }
    } else if (errno != ENOENT || (mkdir(path, mode) != 0 && errno != EEXIST)) {
      int e = errno;
      berr(err, errlen, "%s: %s", path, strerror(e));
      return -e;
    }
    *p = c;
    if (c == '\0')
      break;
    while (p[1] == '/')
      p++;
    if (p[1] == '\0')
      break;
  }
  return 0;
}

/* Write len bytes of data as dir/name, atomically, mode 0644. */
static int write_file(const char *dir, const char *name, const char *data, size_t len, char *err,
                      size_t errlen) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
      snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= (int)sizeof tmp) {
    berr(err, errlen, "%s/%s: name too long", dir, name);
    return -ENAMETOOLONG;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    berr(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  int e = 0;
  size_t off = 0;
  while (off < len && !e) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno != EINTR)
      e = errno;
    else if (n > 0)
      off += (size_t)n;
  }
  if (!e && fchmod(fd, 0644) != 0)
    e = errno;
  if (!e && fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
    e = errno;
  if (close(fd) != 0 && !e)
    e = errno;
  if (!e && rename(tmp, path) != 0)
    e = errno;
  if (e) {
    unlink(tmp);
    berr(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  return 0;
}

/* The renderers write to a FILE; this captures one into memory. */
typedef struct membuf {
  char *buf;
  size_t len;
  FILE *f;
} membuf;

/* Open a memory stream. */
static int mem_open(membuf *m) {
  m->buf = NULL;
  m->len = 0;
  m->f = open_memstream(&m->buf, &m->len);
  return m->f ? 0 : -ENOMEM;
}

/* Close it; the text stays in m->buf (caller frees). */
static int mem_close(membuf *m) {
  int rc = fclose(m->f) == 0 && m->buf ? 0 : -ENOMEM;
  m->f = NULL;
  return rc;
}

/* Render one format (or a path report) and write it as dir/name. */
static int write_rendered(const md_report *r, const char *dir, const char *name, int what,
                          char *err, size_t errlen) {
  membuf m;
  if (mem_open(&m) != 0) {
    berr(err, errlen, "%s/%s: out of memory", dir, name);
    return -ENOMEM;
  }
  int rc;
  if (what == 100 + MD_DIR_FORWARD || what == 100 + MD_DIR_REVERSE)
    rc = md_render_path_report(r, (md_dir)(what - 100), m.f);
  else
    rc = md_render(r, (md_format)what, m.f);
  int rc2 = mem_close(&m);
  if (rc || rc2) {
    free(m.buf);
    berr(err, errlen, "%s/%s: cannot render: %s", dir, name, strerror(-(rc ? rc : rc2)));
    return rc ? rc : rc2;
  }
  rc = write_file(dir, name, m.buf, m.len, err, errlen);
  free(m.buf);
  return rc;
}

/* Who ran it: info->user, else $USER, else the password database. */
static const char *who(const md_bundle_info *info, char *buf, size_t len) {
  if (info && info->user)
    return info->user;
  const char *u = getenv("USER");
  if (u && u[0])
    return u;
  struct passwd pw, *res = NULL;
  char pwbuf[1024];
  if (getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res) {
    snprintf(buf, len, "%s", pw.pw_name);
    return buf;
  }
  snprintf(buf, len, "uid %u", (unsigned)getuid());
  return buf;
}

/* The controller's host name. */
static const char *host(const md_bundle_info *info, char *buf, size_t len) {
  if (info && info->controller_host)
    return info->controller_host;
  if (gethostname(buf, len) != 0)
    snprintf(buf, len, "unknown");
  buf[len - 1] = '\0';
  return buf;
}

/* An RFC 3339 time or null. */
static json_t *jtime(int64_t ns) {
  char b[40];
  return ns ? json_string(md_time_rfc3339(ns, b, sizeof b)) : json_null();
}

/* A string or null (json_null for NULL or for text jansson refuses). */
static json_t *jstr(const char *s) {
  json_t *j = s ? json_string(s) : NULL;
  return j ? j : json_null();
}

/* The agent part of meta.json. */
static json_t *meta_agent(const md_report_agent *a) {
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:b}", "name", jstr(a->name), "address",
                   jstr(a->address), "probe_address", jstr(a->probe_address), "hostname",
                   jstr(a->hostname), "version", jstr(a->version), "is_agent", (int)a->present);
}

/* meta.json: who, when, from where, which versions, what the files are. */
static char *meta_json(const md_report *r, const char *user, const char *chost,
                       const md_bundle_info *info, int64_t now) {
  json_t *files = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "report.json", "the report (" MD_REPORT_SCHEMA ")",
      "report.md", "the report as markdown, for a ticket", "report.html",
      "the report as one self-contained web page with a drawing of both paths", "forward.txt",
      "A -> B in mtr's --report layout", "reverse.txt", "B -> A in mtr's --report layout",
      "meta.json", "this file", "README.txt", "the same for people");
  json_t *m = json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:{s:o, s:o}, "
      "s:o}",
      "schema", "mtrdiag.bundle.v1", "report_id", r->id, "report_schema", MD_REPORT_SCHEMA,
      "ran_by", jstr(r->ran_by), "user", jstr(user), "controller_host", jstr(chost), "command",
      jstr(info ? info->command : NULL), "controller_version", MD_VERSION, "started_at",
      jtime(r->started_at_ns), "finished_at", jtime(r->finished_at_ns), "written_at", jtime(now),
      "summary", jstr(r->diagnosis.summary), "status", md_status_name(r->diagnosis.status),
      "direction", md_direction_name(r->diagnosis.direction), "errors", json_integer(r->n_errors),
      "agents", "a", meta_agent(&r->a), "b", meta_agent(&r->b), "files", files);
  if (!m)
    return NULL;
  char *s = json_dumps(m, JSON_INDENT(2));
  json_decref(m);
  if (!s)
    return NULL;
  size_t n = strlen(s);
  char *t = realloc(s, n + 2);
  if (!t) {
    free(s);
    return NULL;
  }
  t[n] = '\n';
  t[n + 1] = '\0';
  return t;
}

/* Printable text for README.txt: control characters as '?'. */
static void plain(FILE *f, const char *s) {
  for (const unsigned char *p = (const unsigned char *)(s ? s : "-"); *p; p++)
    fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

/* One agent's README line. */
static void readme_agent(FILE *f, const char *tag, const md_report_agent *a) {
  fprintf(f, "  %s: ", tag);
  plain(f, md_report_agent_label(a, tag));
  if (!a->present) {
    fputs(" (no agent: a plain address, so only the forward path was traced)\n", f);
    return;
  }
  fputs(", control address ", f);
  plain(f, a->address);
  fputs(", host ", f);
  plain(f, a->hostname);
  fputs(", mtr-agent ", f);
  plain(f, a->version);
  fputc('\n', f);
}

/* README.txt. */
static int readme(const md_report *r, const char *user, const char *chost,
                  const md_bundle_info *info, int64_t now, membuf *m) {
  if (mem_open(m) != 0)
    return -ENOMEM;
  FILE *f = m->f;
  char b1[40], b2[40], b3[40];
  fputs("mtrdiag evidence bundle\n=======================\n\n", f);
  fputs("Report ", f);
  plain(f, r->id);
  fprintf(f, ": %s", md_status_name(r->diagnosis.status));
  if (r->diagnosis.direction != MD_DIRECTION_NONE)
    fprintf(f, ", fault direction %s", md_direction_name(r->diagnosis.direction));
  fputs("\n", f);
  if (r->diagnosis.summary && r->diagnosis.summary[0]) {
    plain(f, r->diagnosis.summary);
    fputc('\n', f);
  }
  fputs("\nRan by ", f);
  plain(f, r->ran_by ? r->ran_by : user);
  fputs(" (user ", f);
  plain(f, user);
  fputs(" on ", f);
  plain(f, chost);
  fprintf(f, ", mtrctl %s)\n", MD_VERSION);
  if (info && info->command) {
    fputs("Command: ", f);
    plain(f, info->command);
    fputc('\n', f);
  }
  fprintf(f, "Started %s, finished %s, bundle written %s (UTC)\n",
          r->started_at_ns ? md_time_rfc3339(r->started_at_ns, b1, sizeof b1) : "-",
          r->finished_at_ns ? md_time_rfc3339(r->finished_at_ns, b2, sizeof b2) : "-",
          md_time_rfc3339(now, b3, sizeof b3));
  fputs("Agents:\n", f);
  readme_agent(f, "A", &r->a);
  readme_agent(f, "B", &r->b);
  if (r->n_errors > 0)
    fprintf(f, "Errors: %d (see report.md or report.json)\n", r->n_errors);
  fputs("\nFiles\n"
        "  report.json   the report, machine-readable (" MD_REPORT_SCHEMA ")\n"
        "  report.md     the report as markdown, ready to paste into a ticket\n"
        "  report.html   one self-contained web page: both paths drawn side by side\n"
        "  forward.txt   A -> B as `mtr --report` prints it\n"
        "  reverse.txt   B -> A as `mtr --report` prints it\n"
        "  meta.json     who ran this, when, from which agents and versions\n"
        "  README.txt    this file\n",
        f);
  return mem_close(m);
}

/* The bundle: every file, stopping at the first that cannot be written. */
int md_bundle_write(const md_report *r, const char *dir, const md_bundle_info *info, char *err,
                    size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!r) {
    berr(err, errlen, "no report");
    return -EINVAL;
  }
  int rc = mkdirs(dir, 0755, err, errlen);
  if (rc)
    return rc;
  static const struct {
    const char *name;
    int what;
  } files[] = {{"report.json", MD_FORMAT_JSON},
               {"report.md", MD_FORMAT_MARKDOWN},
               {"report.html", MD_FORMAT_HTML},
               {"forward.txt", 100 + MD_DIR_FORWARD},
               {"reverse.txt", 100 + MD_DIR_REVERSE}};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    rc = write_rendered(r, dir, files[i].name, files[i].what, err, errlen);
    if (rc)
      return rc;
  }
  char ubuf[256], hbuf[256];
  const char *user = who(info, ubuf, sizeof ubuf);
  const char *chost = host(info, hbuf, sizeof hbuf);
  int64_t now = md_now_real_ns();
  char *meta = meta_json(r, user, chost, info, now);
  if (!meta) {
    berr(err, errlen, "%s/meta.json: out of memory", dir);
    return -ENOMEM;
  }
  rc = write_file(dir, "meta.json", meta, strlen(meta), err, errlen);
  free(meta);
  if (rc)
    return rc;
  membuf m;
  if (readme(r, user, chost, info, now, &m) != 0) {
    free(m.buf);
    berr(err, errlen, "%s/README.txt: out of memory", dir);
    return -ENOMEM;
  }
  rc = write_file(dir, "README.txt", m.buf, m.len, err, errlen);
  free(m.buf);
  return rc;
}
