/* history: the SQLite store of past diagnoses.
 *
 * Layout (version 1):
 *   schema_version(version)
 *   reports(id PRIMARY KEY, started_at_ns, started_at, a, b, status,
 *           direction, summary, complete, json, updated_at_ns)
 * The JSON column is the whole report (report_json.h), so `show` renders
 * exactly what was stored; the other columns serve `history` without
 * parsing every report.
 */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md_time.h"
#include "render.h"
#include "report_json.h"

#define BUSY_TIMEOUT_MS 5000

struct md_history {
  sqlite3 *db;
  char *path;
};

static void herr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Printf into the caller's error buffer, which may be NULL. */
static void herr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* A negative errno for an SQLite result code. */
static int sql_errno(sqlite3 *db, int rc) {
  switch (rc & 0xff) {
  case SQLITE_NOMEM:
    return -ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return -EBUSY;
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    return -EACCES;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    return -EBADMSG;
  case SQLITE_FULL:
    return -ENOSPC;
  case SQLITE_CANTOPEN: {
    int e = db ? sqlite3_system_errno(db) : 0;
    return e > 0 ? -e : -EACCES;
  }
  case SQLITE_CONSTRAINT:
    return -EEXIST;
  default:
    return -EIO;
  }
}

/* "history PATH: what: SQLite's message" (with a plainer word for a file
 * that is not a database). Returns the errno. */
static int sql_fail(const md_history *h, int rc, const char *what, char *err, size_t errlen) {
  const char *msg = h->db ? sqlite3_errmsg(h->db) : sqlite3_errstr(rc);
  if ((rc & 0xff) == SQLITE_NOTADB)
    herr(err, errlen, "history %s: not an SQLite database (%s)", h->path, msg);
  else if ((rc & 0xff) == SQLITE_CORRUPT)
    herr(err, errlen, "history %s: the database is damaged (%s)", h->path, msg);
  else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    herr(err, errlen, "history %s: %s: still locked by another process after %d s (%s)", h->path,
         what, BUSY_TIMEOUT_MS / 1000, msg);
  else
    herr(err, errlen, "history %s: %s: %s", h->path, what, msg);
  return sql_errno(h->db, rc);
}

/* The directories above path, created 0700 where missing. */
static int make_parents(const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
    herr(err, errlen, "history %s: name too long", path);
    return -ENAMETOOLONG;
  }
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir)
    return 0;
  *slash = '\0';
  for (char *p = dir + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    struct stat st;
    if (stat(dir, &st) != 0) {
      if (errno != ENOENT || (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
        int e = errno;
        herr(err, errlen, "history %s: cannot create directory %s: %s", path, dir, strerror(e));
        return -e;
      }
    } else if (!S_ISDIR(st.st_mode)) {
      herr(err, errlen, "history %s: %s is not a directory", path, dir);
      return -ENOTDIR;
    }
    *p = c;
    if (c == '\0')
      break;
  }
  return 0;
}

/* Run SQL without results. */
static int exec(md_history *h, const char *sql, const char *what, char *err, size_t errlen) {
  int rc = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sql_fail(h, rc, what, err, errlen);
}

/* Create the tables (in one transaction), or check the version of those
 * there. */
static int setup(md_history *h, char *err, size_t errlen) {
  int rc = exec(h, "BEGIN IMMEDIATE", "cannot open", err, errlen);
  if (rc)
    return rc;
  rc = exec(h,
            "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS reports("
            " id TEXT PRIMARY KEY,"
            " started_at_ns INTEGER NOT NULL,"
            " started_at TEXT,"
            " a TEXT, b TEXT,"
            " status TEXT NOT NULL,"
            " direction TEXT NOT NULL,"
            " summary TEXT,"
            " complete INTEGER NOT NULL,"
            " json TEXT NOT NULL,"
            " updated_at_ns INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS reports_by_start ON reports(started_at_ns DESC, id DESC);",
            "cannot create the tables", err, errlen);
  sqlite3_stmt *st = NULL;
  int version = -1;
  if (!rc) {
    int s = sqlite3_prepare_v2(h->db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    if (s == SQLITE_OK)
      s = sqlite3_step(st);
    if (s == SQLITE_ROW)
      version = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 0);
    else
      rc = sql_fail(h, s, "cannot read the schema version", err, errlen);
    sqlite3_finalize(st);
  }
  if (!rc && version == 0) {
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version(version) VALUES(%d)", MD_HISTORY_VERSION);
    rc = exec(h, sql, "cannot write the schema version", err, errlen);
  } else if (!rc && version > MD_HISTORY_VERSION) {
    herr(err, errlen,
         "history %s: made by a newer mtrctl (layout version %d; this one knows up to %d)", h->path,
         version, MD_HISTORY_VERSION);
    rc = -EPROTO;
  }
  if (rc) {
    sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return exec(h, "COMMIT", "cannot create the tables", err, errlen);
}

/* Open or create the history file. */
int md_history_open(const char *path, md_history **out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  *out = NULL;
  if (!path || !path[0]) {
    herr(err, errlen, "history: no file configured");
    return -EINVAL;
  }
  int rc = make_parents(path, err, errlen);
  if (rc)
    return rc;
  /* a new file is private from the start (the journal copies its mode) */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0)
    close(fd);
  md_history *h = calloc(1, sizeof *h);
  if (!h || !(h->path = strdup(path))) {
    free(h);
    herr(err, errlen, "history %s: out of memory", path);
    return -ENOMEM;
  }
  int s = sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (s != SQLITE_OK) {
    rc = sql_fail(h, s, "cannot open", err, errlen);
    md_history_close(h);
    return rc;
  }
  sqlite3_extended_result_codes(h->db, 1);
  sqlite3_busy_timeout(h->db, BUSY_TIMEOUT_MS);
  rc = setup(h, err, errlen);
  if (rc) {
    md_history_close(h);
    return rc;
  }
  *out = h;
  return 0;
}

/* Close the database. */
void md_history_close(md_history *h) {
  if (!h)
    return;
  sqlite3_close_v2(h->db);
  free(h->path);
  free(h);
}

/* The file name. */
const char *md_history_path(const md_history *h) {
  return h ? h->path : NULL;
}

/* Insert (begin) or upsert (finish) one report's row. */
static int store(md_history *h, const md_report *r, bool complete, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!h || !r || !r->id[0]) {
    herr(err, errlen, "history %s: report has no id", h ? h->path : "?");
    return -EINVAL;
  }
  json_t *j = md_report_to_json(r);
  if (j && !complete) {
    json_t *d = json_object_get(j, "diagnosis");
    if (json_object_set_new(d, "status", json_string(md_status_name(MD_STATUS_INCOMPLETE)))) {
      json_decref(j);
      j = NULL;
    }
  }
  char *text = j ? json_dumps(j, MD_REPORT_JSON_FLAGS_COMPACT) : NULL;
  json_decref(j);
  if (!text) {
    herr(err, errlen, "history %s: report %s: out of memory", h->path, r->id);
    return -ENOMEM;
  }
  const char *sql =
      complete
          ? "INSERT INTO reports(id, started_at_ns, started_at, a, b, status, direction,"
            " summary, complete, json, updated_at_ns) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,1,?9,?10)"
            " ON CONFLICT(id) DO UPDATE SET started_at_ns=?2, started_at=?3, a=?4, b=?5,"
            " status=?6, direction=?7, summary=?8, complete=1, json=?9, updated_at_ns=?10"
          : "INSERT INTO reports(id, started_at_ns, started_at, a, b, status, direction,"
            " summary, complete, json, updated_at_ns) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,0,?9,?10)";
  int64_t now = md_now_real_ns();
  int64_t started = r->started_at_ns ? r->started_at_ns : now;
  char when[40];
  md_time_rfc3339(started, when, sizeof when);
  md_status status = complete ? r->diagnosis.status : MD_STATUS_INCOMPLETE;
  sqlite3_stmt *st = NULL;
  int s = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
  if (s == SQLITE_OK) {
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, started);
    sqlite3_bind_text(st, 3, when, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, md_report_agent_label(&r->a, "A"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, md_report_agent_label(&r->b, "B"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, md_status_name(status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, md_direction_name(r->diagnosis.direction), -1, SQLITE_STATIC);
    if (r->diagnosis.summary)
      sqlite3_bind_text(st, 8, r->diagnosis.summary, -1, SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, 8);
    sqlite3_bind_text(st, 9, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 10, now);
    s = sqlite3_step(st);
  }
  free(text);
  int rc = 0;
  if (s != SQLITE_DONE) {
    if ((s & 0xff) == SQLITE_CONSTRAINT && !complete) {
      herr(err, errlen, "history %s: report %s is already stored", h->path, r->id);
      rc = -EEXIST;
    } else {
      rc = sql_fail(h, s, complete ? "cannot store the report" : "cannot store the new report", err,
                    errlen);
    }
  }
  sqlite3_finalize(st);
  return rc;
}

/* The row for a diagnosis that starts now. */
int md_history_begin(md_history *h, const md_report *r, char *err, size_t errlen) {
  return store(h, r, false, err, errlen);
}

/* The row for a diagnosis that has ended. */
int md_history_finish(md_history *h, const md_report *r, char *err, size_t errlen) {
  return store(h, r, true, err, errlen);
}

/* A status by name ("incomplete" for anything unknown). */
static md_status status_of(const char *s) {
  for (int i = MD_STATUS_HEALTHY; s && i <= MD_STATUS_INCOMPLETE; i++)
    if (strcmp(s, md_status_name((md_status)i)) == 0)
      return (md_status)i;
  return MD_STATUS_INCOMPLETE;
}

/* A direction by name ("none" for anything unknown). */
static md_direction direction_of(const char *s) {
  for (int i = MD_DIRECTION_NONE; s && i <= MD_DIRECTION_BOTH; i++)
    if (strcmp(s, md_direction_name((md_direction)i)) == 0)
      return (md_direction)i;
  return MD_DIRECTION_NONE;
}

/* A copy of a text column, NULL for SQL NULL; *ok cleared on OOM. */
static char *col_dup(sqlite3_stmt *st, int i, bool *ok) {
  const unsigned char *t = sqlite3_column_text(st, i);
  if (!t)
    return NULL;
  char *d = strdup((const char *)t);
  if (!d)
    *ok = false;
  return d;
}

/* Free a list from md_history_list. */
void md_history_list_free(md_history_entry *e, int n) {
  for (int i = 0; e && i < n; i++) {
    free(e[i].a);
    free(e[i].b);
    free(e[i].summary);
  }
  free(e);
}

/* Newest first, at most limit rows. */
int md_history_list(md_history *h, int limit, md_history_entry **out, int *n, char *err,
                    size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = NULL;
  int s = sqlite3_prepare_v2(h->db,
                             "SELECT id, started_at_ns, a, b, status, direction, summary, "
                             "complete FROM reports ORDER BY started_at_ns DESC, id DESC LIMIT ?1",
                             -1, &st, NULL);
  if (s != SQLITE_OK)
    return sql_fail(h, s, "cannot list the reports", err, errlen);
  sqlite3_bind_int(st, 1, limit > 0 ? limit : -1);
  md_history_entry *v = NULL;
  int count = 0, cap = 0, rc = 0;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (count == cap) {
      int ncap = cap ? cap * 2 : 16;
      md_history_entry *nv = realloc(v, (size_t)ncap * sizeof *nv);
      if (!nv) {
        rc = -ENOMEM;
        break;
      }
      v = nv;
      cap = ncap;
    }
    md_history_entry *e = &v[count++];
    memset(e, 0, sizeof *e);
    bool ok = true;
    const unsigned char *id = sqlite3_column_text(st, 0);
    snprintf(e->id, sizeof e->id, "%s", id ? (const char *)id : "");
    e->started_at_ns = sqlite3_column_int64(st, 1);
    e->a = col_dup(st, 2, &ok);
    e->b = col_dup(st, 3, &ok);
    e->status = status_of((const char *)sqlite3_column_text(st, 4));
    e->direction = direction_of((const char *)sqlite3_column_text(st, 5));
    e->summary = col_dup(st, 6, &ok);
    e->complete = sqlite3_column_int(st, 7) != 0;
    if (!ok) {
      rc = -ENOMEM;
      break;
    }
  }
  if (!rc && s != SQLITE_DONE)
    rc = sql_fail(h, s, "cannot list the reports", err, errlen);
  else if (rc == -ENOMEM)
    herr(err, errlen, "history %s: out of memory", h->path);
  sqlite3_finalize(st);
  if (rc) {
    md_history_list_free(v, count);
    return rc;
  }
  *out = v;
  *n = count;
  return 0;
}

/* One stored report, read back from its JSON. */
int md_history_load(md_history *h, const char *id, md_report **out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  *out = NULL;
  if (!id || !id[0]) {
    herr(err, errlen, "history %s: no report id given", h->path);
    return -EINVAL;
  }
  sqlite3_stmt *st = NULL;
  int s = sqlite3_prepare_v2(h->db, "SELECT json FROM reports WHERE id = ?1", -1, &st, NULL);
  if (s != SQLITE_OK)
    return sql_fail(h, s, "cannot read a report", err, errlen);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
  s = sqlite3_step(st);
  int rc = 0;
  if (s == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(st, 0);
    int len = sqlite3_column_bytes(st, 0);
    char msg[384];
    md_report *r = text ? md_report_from_json_string(text, (size_t)len, msg, sizeof msg) : NULL;
    if (r) {
      *out = r;
    } else {
      herr(err, errlen, "history %s: report %s does not read back: %s", h->path, id,
           text ? msg : "no JSON stored");
      rc = -EBADMSG;
    }
  } else if (s == SQLITE_DONE) {
    herr(err, errlen, "history %s: no report with id %s", h->path, id);
    rc = -ENOENT;
  } else {
    rc = sql_fail(h, s, "cannot read a report", err, errlen);
  }
  sqlite3_finalize(st);
  return rc;
}
